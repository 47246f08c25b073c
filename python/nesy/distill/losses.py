"""Hinton's distillation loss for classification and its squared-error analogue for regression.

For student logits ``s``, teacher logits ``t``, labels ``y``, temperature ``T`` and weight
``alpha`` (mean over the ``n`` rows):

``L = alpha * CE(y, softmax(s)) + (1 - alpha) * f * KL(softmax(t / T) || softmax(s / T))``

with ``f = T**2`` (Hinton et al. 2015; keeps the soft-target gradient's size independent of
``T``) or ``f = 1`` when ``t2_scaling=False``. The gradient with respect to ``s`` is
``alpha * (softmax(s) - onehot(y)) / n``
``+ (1 - alpha) * f / T * (softmax(s / T) - softmax(t / T)) / n``.
A teacher that only gives probabilities ``p`` is used through ``t = log p`` (the same soft
targets at ``T = 1``, and ``p**(1/T)`` renormalised at other temperatures).
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from nesy._checks import check_bool
from nesy.distill.augment import _real
from nesy.nn.activations import log_softmax
from nesy.nn.losses import Loss

__all__ = ["distillation_loss", "DistillationLoss", "RegressionDistillationLoss"]


def _check_hyper(temperature: Any, alpha: Any) -> Tuple[float, float]:
    T, a = _real("temperature", temperature), _real("alpha", alpha)
    if not (np.isfinite(T) and T > 0):
        raise ValueError(f"temperature: expected a finite positive number, got {temperature!r}")
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")
    return T, a


def distillation_loss(student_logits: np.ndarray, teacher_logits: np.ndarray, y: np.ndarray,
                      temperature: float = 4.0, alpha: float = 0.5,
                      t2_scaling: bool = True) -> Tuple[float, np.ndarray]:
    """Hinton's loss and its gradient with respect to the student logits.

    Parameters
    ----------
    student_logits : ndarray of shape (n_samples, n_classes)
        Float32 or float64; the gradient has the same dtype.
    teacher_logits : ndarray of shape (n_samples, n_classes)
        Teacher logits (or log-probabilities). ``-inf`` is a zero probability (its term of the
        KL divergence is 0, as ``0 log 0 = 0``); NaN, ``+inf`` and a row with no finite
        entry are refused (``ValueError`` naming ``teacher_logits``).
    y : ndarray of shape (n_samples,)
        Integer labels in ``[0, n_classes)`` for the cross-entropy term.
    temperature : float > 0
    alpha : float in [0, 1]
        Weight of the cross-entropy on the labels; ``1 - alpha`` weighs the soft targets.
    t2_scaling : bool, default True
        Multiply the soft-target term by ``temperature**2``.

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_samples, n_classes)
    """
    T, a = _check_hyper(temperature, alpha)
    t2_scaling = check_bool("t2_scaling", t2_scaling)
    s = np.asarray(student_logits)
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    if s.ndim != 2 or s.shape[0] == 0:
        raise ValueError(f"student_logits: expected (n_samples, n_classes), got {s.shape}")
    with np.errstate(over="ignore"):  # a float64 logit beyond float32: +inf, refused below
        t = np.asarray(teacher_logits, dtype=s.dtype)
    if t.shape != s.shape:
        raise ValueError(f"teacher_logits: shape {t.shape} differs from student_logits "
                         f"{s.shape}")
    bad = np.isnan(t) | np.isposinf(t)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        cast = "" if s.dtype == np.float64 else f" as {s.dtype}, the student's dtype"
        raise ValueError(f"teacher_logits: [{i}, {j}] is {t[i, j]}{cast}; a logit must be "
                         "finite, a log-probability finite or -inf (a zero probability)")
    empty = ~np.isfinite(t).any(axis=1)
    if empty.any():
        raise ValueError(f"teacher_logits: row {int(np.flatnonzero(empty)[0])} is -inf in "
                         "every class (no class has a probability > 0)")
    n, c = s.shape
    labels = np.asarray(y)
    if labels.shape != (n,):
        raise ValueError(f"y: expected shape ({n},), got {labels.shape}")
    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
        raise ValueError("y: expected integer class labels")
    labels = labels.astype(np.intp)
    if np.any((labels < 0) | (labels >= c)):
        raise IndexError(f"y: labels must be in [0, {c})")
    dt = s.dtype.type
    rows = np.arange(n)
    logp = log_softmax(s)
    logq_T = log_softmax(s / dt(T))
    logp_t = log_softmax(t / dt(T))
    p_t = np.exp(logp_t)
    factor = T * T if t2_scaling else 1.0
    ce = -float(np.sum(logp[rows, labels], dtype=np.float64)) / n
    # 0 * log 0 = 0: a class the teacher gives no probability (logit -inf) adds nothing
    kl = float(np.sum(p_t * np.where(p_t > 0, logp_t - logq_T, 0), dtype=np.float64)) / n
    loss = a * ce + (1.0 - a) * factor * kl
    hard = np.exp(logp)
    hard[rows, labels] -= 1
    grad = hard * dt(a / n) + (np.exp(logq_T) - p_t) * dt((1.0 - a) * factor / (T * n))
    return loss, grad


class DistillationLoss(Loss):
    """:func:`distillation_loss` as a :class:`~nesy.nn.Loss` for :class:`~nesy.nn.Trainer`.

    The target of each row packs the label and the teacher logits:
    ``target[:, 0]`` holds the integer label, ``target[:, 1:]`` the ``n_classes`` teacher
    logits, so ``target`` has shape ``(n_samples, 1 + n_classes)`` and can be shuffled and
    batched like ordinary targets.

    Parameters
    ----------
    temperature, alpha, t2_scaling
        As :func:`distillation_loss`.
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.5,
                 t2_scaling: bool = True) -> None:
        super().__init__()
        self.temperature, self.alpha = _check_hyper(temperature, alpha)
        self.t2_scaling = check_bool("t2_scaling", t2_scaling)

    @staticmethod
    def pack(y: np.ndarray, teacher_logits: np.ndarray) -> np.ndarray:
        """Targets ``(n_samples, 1 + n_classes)`` from labels and teacher logits."""
        t = np.asarray(teacher_logits, dtype=np.float64)
        return np.hstack([np.asarray(y, dtype=np.float64).reshape(-1, 1), t])

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        target = np.asarray(target)
        pred = np.asarray(pred)
        if target.ndim != 2 or pred.ndim != 2 or target.shape[1] != pred.shape[1] + 1:
            raise ValueError(f"target: expected (n_samples, 1 + n_classes) for pred "
                             f"{pred.shape}, got {target.shape}")
        loss, grad = distillation_loss(pred, target[:, 1:], target[:, 0], self.temperature,
                                       self.alpha, self.t2_scaling)
        self._ctx = (grad,)
        return loss

    def backward(self) -> np.ndarray:
        (grad,) = self._saved()
        return grad

    def __repr__(self) -> str:
        return (f"DistillationLoss(temperature={self.temperature}, alpha={self.alpha}, "
                f"t2_scaling={self.t2_scaling})")


class RegressionDistillationLoss(Loss):
    """``alpha * mean((s - y)**2) + (1 - alpha) * mean((s - t)**2)`` for regression.

    ``target`` is ``(n_samples, 2 * n_outputs)``: the labels ``y`` in the first half of the
    columns and the teacher outputs ``t`` in the second; ``pred`` is ``(n_samples, n_outputs)``.
    """

    def __init__(self, alpha: float = 0.5) -> None:
        super().__init__()
        _, self.alpha = _check_hyper(1.0, alpha)

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        s = np.asarray(pred)
        if not np.issubdtype(s.dtype, np.floating):
            s = s.astype(np.float64)
        target = np.asarray(target, dtype=s.dtype)
        k = s.shape[-1] if s.ndim == 2 else 0
        if s.ndim != 2 or target.shape != (s.shape[0], 2 * k):
            raise ValueError(f"target: expected (n_samples, 2 * n_outputs) for pred {s.shape}, "
                             f"got {target.shape}")
        dy, dt_ = s - target[:, :k], s - target[:, k:]
        a = self.alpha
        loss = (a * float(np.sum(dy * dy, dtype=np.float64))
                + (1 - a) * float(np.sum(dt_ * dt_, dtype=np.float64))) / s.size
        self._ctx = ((dy * s.dtype.type(a) + dt_ * s.dtype.type(1 - a))
                     * s.dtype.type(2.0 / s.size),)
        return loss

    def backward(self) -> np.ndarray:
        (grad,) = self._saved()
        return grad

    def __repr__(self) -> str:
        return f"RegressionDistillationLoss(alpha={self.alpha})"
