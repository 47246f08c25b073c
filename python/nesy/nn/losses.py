"""Loss functions.

A loss is called as ``loss(pred, target) -> float`` (``forward``) and then ``loss.backward()``
returns the gradient with respect to ``pred`` (same shape and dtype as ``pred``), ready to be
passed to ``model.backward``. Classification losses take raw logits: the (log-)softmax or
sigmoid is part of the loss, computed stably.

``reduction="none"`` (as PyTorch's) makes ``forward`` return the unreduced losses, an array
(one per sample, or per element for :class:`MSELoss` and :class:`BCEWithLogitsLoss`); then
``backward(grad_output)`` takes their gradient, an array of that shape (``weights / n`` for a
weighted mean, as ``(losses * weights).mean().backward()`` in PyTorch). With ``"mean"`` and
``"sum"``, ``backward()`` is the gradient of the number, and ``backward(c)`` that of ``c``
times it.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from nesy._checks import check_int
from nesy.nn.activations import log_softmax, sigmoid
from nesy.nn.module import real_array
from nesy.optim._base import _number

__all__ = ["Loss", "MSELoss", "CrossEntropyLoss", "BCEWithLogitsLoss", "SoftCrossEntropyLoss"]


def _float_pred(pred: Any, name: str = "pred") -> np.ndarray:
    pred = real_array(pred, name)
    if not np.issubdtype(pred.dtype, np.floating):
        pred = pred.astype(np.float64)
    if pred.size == 0:
        raise ValueError(f"{name} is empty (shape {pred.shape})")
    return pred


def _match_target(pred: np.ndarray, target: Any) -> np.ndarray:
    """Target as a float array of ``pred``'s shape; ``(n,)`` is accepted for ``(n, 1)``."""
    t = real_array(target, "target").astype(pred.dtype, copy=False)
    if t.shape == pred.shape:
        return t
    if pred.ndim >= 1 and pred.shape[-1] == 1 and t.shape == pred.shape[:-1]:
        return t.reshape(pred.shape)
    raise ValueError(f"target has shape {t.shape}, expected pred's shape {pred.shape}")


def _check_reduction(reduction: str) -> str:
    if not isinstance(reduction, str) or reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _upstream(reduction: str, grad_output: Any, shape: Tuple[int, ...],
              dtype: np.dtype) -> Any:
    """The gradient ``backward`` receives for the loss: None (one) or a number with a reduced
    loss; with ``reduction="none"``, an array of ``shape`` (the unreduced losses' shape)."""
    if reduction != "none":
        if grad_output is None:
            return None
        return dtype.type(_number("grad_output", grad_output, finite=True))
    if grad_output is None:
        raise ValueError(
            f"grad_output: required with reduction='none': the gradient of the {shape} "
            "unreduced losses (e.g. weights / n for a weighted mean, ones for their sum)")
    g = real_array(grad_output, "grad_output")
    if g.shape != shape:
        raise ValueError(f"grad_output: has shape {g.shape}, expected the losses' shape {shape}")
    return g.astype(dtype, copy=False)


class Loss:
    """Base class: ``forward(pred, target) -> float``, ``backward() -> grad wrt pred``."""

    def __init__(self) -> None:
        self._ctx: Optional[Tuple[Any, ...]] = None

    def forward(self, pred: np.ndarray, target: np.ndarray) -> Any:
        raise NotImplementedError

    def backward(self, grad_output: Any = None) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> Any:
        return self.forward(pred, target)

    def _saved(self) -> Tuple[Any, ...]:
        if self._ctx is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called before forward(); run forward first"
            )
        return self._ctx

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSELoss(Loss):
    """Mean squared error ``mean((pred - target)**2)`` over all elements.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}
        ``"none"``: ``forward`` returns the squared errors, an array of ``pred``'s shape.

    Notes
    -----
    ``pred`` and ``target`` have the same shape, e.g. ``(n_samples, n_outputs)``; a target of
    shape ``(n_samples,)`` is accepted for a prediction of shape ``(n_samples, 1)``.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _check_reduction(reduction)

    def forward(self, pred: np.ndarray, target: np.ndarray) -> Any:
        pred = _float_pred(pred)
        diff = pred - _match_target(pred, target)
        scale = 1.0 / diff.size if self.reduction == "mean" else 1.0
        self._ctx = (diff, scale)
        if self.reduction == "none":
            return np.square(diff)
        return float(np.sum(np.square(diff), dtype=np.float64) * scale)

    def backward(self, grad_output: Any = None) -> np.ndarray:
        diff, scale = self._saved()
        up = _upstream(self.reduction, grad_output, diff.shape, diff.dtype)
        if up is None:
            return diff * diff.dtype.type(2.0 * scale)
        return diff * (up * diff.dtype.type(2.0 * scale))


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy between logits and integer class labels.

    Parameters
    ----------
    weight : array-like of shape (n_classes,), optional
        Per-class weights; with ``reduction="mean"`` the sum is divided by the summed weights of
        the targets (as in PyTorch).
    label_smoothing : float in [0, 1), default 0.0
        The target becomes ``(1 - eps) * one_hot + eps / n_classes``.
    reduction : {"mean", "sum", "none"}
        ``"none"``: ``forward`` returns the ``(n_samples,)`` losses (0 for an ignored target).
    ignore_index : int, default -100
        Targets equal to it contribute nothing (loss and gradient 0) and do not count in the
        mean's denominator, as PyTorch's (a mean over only ignored targets is an error, where
        PyTorch returns NaN).

    Notes
    -----
    ``pred`` has shape ``(n_samples, n_classes)``, ``target`` shape ``(n_samples,)`` with
    integer labels in ``[0, n_classes)`` (or ``ignore_index``). Matches
    ``torch.nn.CrossEntropyLoss`` with class-index targets; for probability targets use
    :class:`SoftCrossEntropyLoss`.
    """

    def __init__(
        self,
        weight: Optional[np.ndarray] = None,
        label_smoothing: float = 0.0,
        reduction: str = "mean",
        ignore_index: int = -100,
    ) -> None:
        super().__init__()
        smoothing = _number("label_smoothing", label_smoothing, finite=True)
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = smoothing
        self.ignore_index = check_int("ignore_index", ignore_index)
        self.reduction = _check_reduction(reduction)
        if weight is not None:
            weight = real_array(weight, "weight").astype(np.float64)
            if weight.ndim != 1 or np.any(weight < 0) or not np.all(np.isfinite(weight)):
                raise ValueError("weight must be a 1-D array of finite non-negative numbers")
        self.weight = weight

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        logits = _float_pred(pred)
        if logits.ndim != 2:
            raise ValueError(f"pred must have shape (n_samples, n_classes), got {logits.shape}")
        n, c = logits.shape
        labels, keep = _labels(target, n, c, self.ignore_index)
        dt = logits.dtype.type
        if self.weight is None:
            w = np.ones(c, dtype=logits.dtype)
        else:
            if self.weight.shape != (c,):
                raise ValueError(f"weight has shape {self.weight.shape}, expected ({c},)")
            w = self.weight.astype(logits.dtype)
        eps = self.label_smoothing
        rows = np.arange(n)
        # q: target distribution times class weights, shape (n, c)
        if eps > 0.0:
            q = np.broadcast_to(w * dt(eps / c), (n, c)).copy()
        else:
            q = np.zeros((n, c), dtype=logits.dtype)
        q[rows, labels] += dt(1.0 - eps) * w[labels]
        if keep is not None:
            q[~keep] = 0  # an ignored target: no loss, no gradient
        if self.reduction == "mean":
            weights = w[labels] if keep is None else w[labels][keep]
            denom = float(np.sum(weights, dtype=np.float64))
            if keep is not None and not keep.any():
                raise ValueError(f"target: every target is ignore_index "
                                 f"({self.ignore_index}), so the mean is over no sample")
        else:
            denom = 1.0
        if denom == 0.0:
            raise ValueError("the class weights of all targets are zero")
        logp = log_softmax(logits)
        self._ctx = (logp, q, denom)
        if self.reduction == "none":
            return -np.sum(q * logp, axis=1)
        return -float(np.sum(q * logp, dtype=np.float64)) / denom

    def backward(self, grad_output: Any = None) -> np.ndarray:
        logp, q, denom = self._saved()
        up = _upstream(self.reduction, grad_output, logp.shape[:1], logp.dtype)
        grad = np.exp(logp) * q.sum(axis=1, keepdims=True) - q
        if up is None:
            grad *= grad.dtype.type(1.0 / denom)
        elif self.reduction == "none":
            grad *= up[:, None]
        else:
            grad *= up / grad.dtype.type(denom)
        return grad

    def __repr__(self) -> str:
        return f"CrossEntropyLoss(label_smoothing={self.label_smoothing})"


def _labels(target: Any, n: int, c: int,
            ignore_index: Optional[int] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Class indices ``(n,)`` and, when some target is ``ignore_index``, the mask of the
    others (an ignored target's index is then 0, and its row must be left out)."""
    y = real_array(target, "target")
    if y.shape != (n,):
        raise ValueError(f"target must have shape ({n},) of class labels, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        integral = np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y))
        if not (integral and np.all(y == np.round(y))):
            raise ValueError(f"target must hold integer class labels, got dtype {y.dtype}")
    ignored = None if ignore_index is None else (y == ignore_index)
    if ignored is not None and not ignored.any():
        ignored = None
    out = (y < 0) | (y >= c)  # before any cast, which could wrap 1e30
    if ignored is not None:
        out &= ~ignored
    bad = np.flatnonzero(out)
    if bad.size:
        i = int(bad[0])
        raise IndexError(f"target[{i}] = {y[i]} is out of range for {c} classes")
    if ignored is None:
        return y.astype(np.intp, copy=False), None
    return np.where(ignored, 0, y).astype(np.intp), ~ignored


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits, ``-[t log s(z) + (1 - t) log(1 - s(z))]``, computed
    stably as ``max(z, 0) - z t + log(1 + exp(-|z|))``.

    Parameters
    ----------
    pos_weight : array-like, optional
        Weight of positive examples, broadcast along the last axis (as in PyTorch).
    reduction : {"mean", "sum", "none"}
        ``"none"``: ``forward`` returns the losses, an array of ``pred``'s shape.

    Notes
    -----
    ``pred`` and ``target`` have the same shape, e.g. ``(n_samples, n_outputs)``; targets are
    probabilities in ``[0, 1]`` (checked: PyTorch accepts any target, but outside ``[0, 1]``
    the loss is unbounded below). A target of shape ``(n_samples,)`` is accepted for
    ``(n_samples, 1)``. ``pos_weight`` holds finite numbers ``>= 0``.
    """

    def __init__(self, pos_weight: Optional[np.ndarray] = None, reduction: str = "mean") -> None:
        super().__init__()
        if pos_weight is not None:
            pos_weight = real_array(pos_weight, "pos_weight").astype(np.float64)
            if not np.all(np.isfinite(pos_weight) & (pos_weight >= 0)):
                raise ValueError("pos_weight: must hold finite numbers >= 0")
        self.pos_weight = pos_weight
        self.reduction = _check_reduction(reduction)

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        z = _float_pred(pred)
        t = _match_target(z, target)
        if not np.all((t >= 0) & (t <= 1)):
            raise ValueError("target: must hold probabilities in [0, 1] (NaN is not one)")
        pw_shape = () if self.pos_weight is None else self.pos_weight.shape
        try:
            fits = np.broadcast_shapes(pw_shape, z.shape) == z.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"pos_weight: has shape {pw_shape}, which does not broadcast to "
                             f"pred's shape {z.shape}")
        # log(1 + exp(-z)) = softplus(-z), stable
        softplus_neg = np.log1p(np.exp(-np.abs(z))) + np.maximum(-z, 0)
        if self.pos_weight is None:
            lw = None
            per = (1 - t) * z + softplus_neg
        else:
            pw = self.pos_weight.astype(z.dtype)
            lw = 1 + (pw - 1) * t
            per = (1 - t) * z + lw * softplus_neg
        scale = 1.0 / z.size if self.reduction == "mean" else 1.0
        self._ctx = (z, t, lw, scale)
        if self.reduction == "none":
            return per
        return float(np.sum(per, dtype=np.float64) * scale)

    def backward(self, grad_output: Any = None) -> np.ndarray:
        z, t, lw, scale = self._saved()
        up = _upstream(self.reduction, grad_output, z.shape, z.dtype)
        s = sigmoid(z)
        grad = s - t if lw is None else (1 - t) - lw * (1 - s)
        if up is None:
            return grad * grad.dtype.type(scale)
        return grad * (up * grad.dtype.type(scale))


class SoftCrossEntropyLoss(Loss):
    """Cross-entropy against a soft target distribution:
    ``-mean_i sum_c q_ic log softmax(z_i / T)_c``.

    Parameters
    ----------
    temperature : float, default 1.0
        Logits are divided by ``T`` before the softmax. For knowledge distillation the
        caller usually multiplies the loss (and gradient) by ``T**2`` (Hinton et al. 2015).
    reduction : {"mean", "sum", "none"}
        ``"mean"`` divides by ``n_samples``; ``"none"``: ``forward`` returns the
        ``(n_samples,)`` losses.

    Notes
    -----
    ``pred`` holds logits of shape ``(n_samples, n_classes)`` and ``target`` probabilities of
    the same shape (rows normally sum to one; the gradient is exact either way). Targets are
    checked to be finite and ``>= 0`` (``ValueError`` naming ``target``): with negative
    "probabilities" the loss is unbounded below.
    """

    def __init__(self, temperature: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        temperature = _number("temperature", temperature, finite=True)
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.reduction = _check_reduction(reduction)

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        z = _float_pred(pred)
        if z.ndim != 2:
            raise ValueError(f"pred must have shape (n_samples, n_classes), got {z.shape}")
        q = real_array(target, "target").astype(z.dtype, copy=False)
        if q.shape != z.shape:
            raise ValueError(f"target has shape {q.shape}, expected pred's shape {z.shape}")
        if not np.all((q >= 0) & (q < np.inf)):
            raise ValueError("target: must hold finite probabilities >= 0 (NaN is not one)")
        logp = log_softmax(z / z.dtype.type(self.temperature))
        scale = 1.0 / z.shape[0] if self.reduction == "mean" else 1.0
        self._ctx = (logp, q, scale)
        if self.reduction == "none":
            return -np.sum(q * logp, axis=1)
        return -float(np.sum(q * logp, dtype=np.float64)) * scale

    def backward(self, grad_output: Any = None) -> np.ndarray:
        logp, q, scale = self._saved()
        up = _upstream(self.reduction, grad_output, logp.shape[:1], logp.dtype)
        grad = np.exp(logp) * q.sum(axis=1, keepdims=True) - q
        grad *= grad.dtype.type(scale / self.temperature)
        if up is not None:
            grad *= up[:, None] if self.reduction == "none" else up
        return grad

    def __repr__(self) -> str:
        return f"SoftCrossEntropyLoss(temperature={self.temperature})"
