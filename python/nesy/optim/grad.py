"""Gradient utilities fused across tensors (kernels in ``rust/core/src/optim/grad.rs``).

Each function treats a list of float32/float64 arrays as one vector and makes one call into
Rust for all of them; norms are accumulated in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nesy import _core
from nesy.optim._base import _number


def clip_grad_norm(
    grads: Sequence[np.ndarray],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale ``grads`` in place so that their joint norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: the factor is ``min(1, max_norm / (norm + 1e-6))``.
    Returns the norm before clipping. With ``error_if_nonfinite``, a NaN or infinite norm raises
    ``ValueError`` and leaves ``grads`` unchanged. ``norm_type`` is 1, 2 or ``inf``.
    """
    return float(_core.clip_grad_norm(list(grads), _number("max_norm", max_norm),
                                      _number("norm_type", norm_type),
                                      bool(error_if_nonfinite)))


def clip_grad_value(grads: Sequence[np.ndarray], clip_value: float) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place (NaN stays)."""
    _core.clip_grad_value(list(grads), _number("clip_value", clip_value))


def grad_norm(xs: Sequence[np.ndarray], norm_type: float = 2.0) -> float:
    """The joint ``norm_type`` norm (1, 2 or ``inf``) of arrays, computed in float64."""
    return float(_core.grad_norm(list(xs), _number("norm_type", norm_type)))


def all_finite(xs: Sequence[np.ndarray]) -> bool:
    """Whether every element of every array is finite."""
    return bool(_core.all_finite(list(xs)))


def penalty(
    grads: Sequence[np.ndarray], params: Sequence[np.ndarray], l1: float = 0.0, l2: float = 0.0
) -> float:
    """Add the gradient of ``l1 * sum|p| + l2 / 2 * sum p**2`` to ``grads``; return the penalty.

    ``grads[i]`` must match ``params[i]`` in shape and dtype. The L1 subgradient at 0 is 0.
    """
    return float(_core.penalty(list(grads), list(params), _number("l1", l1, finite=True),
                               _number("l2", l2, finite=True)))


def decay(params: Sequence[np.ndarray], lr: float, weight_decay: float) -> None:
    """Decoupled weight decay in place: ``p *= 1 - lr * weight_decay`` for every array.

    ``lr`` and ``weight_decay`` are finite numbers ``>= 0`` (``ValueError`` naming them).
    """
    factor = 1.0
    for name, v in (("lr", lr), ("weight_decay", weight_decay)):
        v = _number(name, v, finite=True)
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
        factor *= v
    if factor > 1e300:
        raise ValueError(f"lr * weight_decay overflows: {lr} * {weight_decay}")
    _core.scale(list(params), 1.0 - factor)
