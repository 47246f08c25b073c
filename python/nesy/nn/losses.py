"""Loss functions.

A loss is called as ``loss(pred, target) -> float`` (``forward``) and then ``loss.backward()``
returns the gradient with respect to ``pred`` (same shape and dtype as ``pred``), ready to be
passed to ``model.backward``. Classification losses take raw logits: the (log-)softmax or
sigmoid is part of the loss, computed stably.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from nesy.nn.activations import log_softmax, sigmoid
from nesy.nn.module import real_array

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
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    return reduction


class Loss:
    """Base class: ``forward(pred, target) -> float``, ``backward() -> grad wrt pred``."""

    def __init__(self) -> None:
        self._ctx: Optional[Tuple[Any, ...]] = None

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> float:
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
    reduction : {"mean", "sum"}

    Notes
    -----
    ``pred`` and ``target`` have the same shape, e.g. ``(n_samples, n_outputs)``; a target of
    shape ``(n_samples,)`` is accepted for a prediction of shape ``(n_samples, 1)``.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _check_reduction(reduction)

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        pred = _float_pred(pred)
        diff = pred - _match_target(pred, target)
        scale = 1.0 / diff.size if self.reduction == "mean" else 1.0
        self._ctx = (diff, scale)
        return float(np.sum(np.square(diff), dtype=np.float64) * scale)

    def backward(self) -> np.ndarray:
        diff, scale = self._saved()
        return diff * diff.dtype.type(2.0 * scale)


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy between logits and integer class labels.

    Parameters
    ----------
    weight : array-like of shape (n_classes,), optional
        Per-class weights; with ``reduction="mean"`` the sum is divided by the summed weights of
        the targets (as in PyTorch).
    label_smoothing : float in [0, 1), default 0.0
        The target becomes ``(1 - eps) * one_hot + eps / n_classes``.
    reduction : {"mean", "sum"}

    Notes
    -----
    ``pred`` has shape ``(n_samples, n_classes)``, ``target`` shape ``(n_samples,)`` with
    integer labels in ``[0, n_classes)``. Matches ``torch.nn.CrossEntropyLoss``.
    """

    def __init__(
        self,
        weight: Optional[np.ndarray] = None,
        label_smoothing: float = 0.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
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
        labels = _labels(target, n, c)
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
        denom = float(np.sum(w[labels], dtype=np.float64)) if self.reduction == "mean" else 1.0
        if denom == 0.0:
            raise ValueError("the class weights of all targets are zero")
        logp = log_softmax(logits)
        loss = -float(np.sum(q * logp, dtype=np.float64)) / denom
        self._ctx = (logp, q, denom)
        return loss

    def backward(self) -> np.ndarray:
        logp, q, denom = self._saved()
        grad = np.exp(logp) * q.sum(axis=1, keepdims=True) - q
        grad *= grad.dtype.type(1.0 / denom)
        return grad

    def __repr__(self) -> str:
        return f"CrossEntropyLoss(label_smoothing={self.label_smoothing})"


def _labels(target: Any, n: int, c: int) -> np.ndarray:
    y = real_array(target, "target")
    if y.shape != (n,):
        raise ValueError(f"target must have shape ({n},) of class labels, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        integral = np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y))
        if not (integral and np.all(y == np.round(y))):
            raise ValueError(f"target must hold integer class labels, got dtype {y.dtype}")
    bad = np.flatnonzero((y < 0) | (y >= c))  # before any cast, which could wrap 1e30
    if bad.size:
        i = int(bad[0])
        raise IndexError(f"target[{i}] = {y[i]} is out of range for {c} classes")
    return y.astype(np.intp, copy=False)


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits, ``-[t log s(z) + (1 - t) log(1 - s(z))]``, computed
    stably as ``max(z, 0) - z t + log(1 + exp(-|z|))``.

    Parameters
    ----------
    pos_weight : array-like, optional
        Weight of positive examples, broadcast along the last axis (as in PyTorch).
    reduction : {"mean", "sum"}

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
        return float(np.sum(per, dtype=np.float64) * scale)

    def backward(self) -> np.ndarray:
        z, t, lw, scale = self._saved()
        s = sigmoid(z)
        grad = s - t if lw is None else (1 - t) - lw * (1 - s)
        return grad * grad.dtype.type(scale)


class SoftCrossEntropyLoss(Loss):
    """Cross-entropy against a soft target distribution:
    ``-mean_i sum_c q_ic log softmax(z_i / T)_c``.

    Parameters
    ----------
    temperature : float, default 1.0
        Logits are divided by ``T`` before the softmax. For knowledge distillation the
        caller usually multiplies the loss (and gradient) by ``T**2`` (Hinton et al. 2015).
    reduction : {"mean", "sum"}
        ``"mean"`` divides by ``n_samples``.

    Notes
    -----
    ``pred`` holds logits of shape ``(n_samples, n_classes)`` and ``target`` probabilities of
    the same shape (rows normally sum to one; the gradient is exact either way).
    """

    def __init__(self, temperature: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)
        self.reduction = _check_reduction(reduction)

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        z = _float_pred(pred)
        if z.ndim != 2:
            raise ValueError(f"pred must have shape (n_samples, n_classes), got {z.shape}")
        q = real_array(target, "target").astype(z.dtype, copy=False)
        if q.shape != z.shape:
            raise ValueError(f"target has shape {q.shape}, expected pred's shape {z.shape}")
        logp = log_softmax(z / z.dtype.type(self.temperature))
        scale = 1.0 / z.shape[0] if self.reduction == "mean" else 1.0
        self._ctx = (logp, q, scale)
        return -float(np.sum(q * logp, dtype=np.float64)) * scale

    def backward(self) -> np.ndarray:
        logp, q, scale = self._saved()
        grad = np.exp(logp) * q.sum(axis=1, keepdims=True) - q
        grad *= grad.dtype.type(scale / self.temperature)
        return grad

    def __repr__(self) -> str:
        return f"SoftCrossEntropyLoss(temperature={self.temperature})"
