"""Gradient utilities fused across tensors (kernels in ``rust/core/src/optim/grad.rs``).

Each function treats a list of float32/float64 arrays as one vector and makes one call into
Rust for all of them; norms are accumulated in float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nesy import _core
from nesy._checks import check_bool
from nesy.optim._base import _number


def _arrays(xs: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """A list of the arrays: one array alone (as torch takes one tensor) is ``[xs]``, not its
    rows (``list(xs)`` would split it into NumPy scalars or row views)."""
    return [xs] if isinstance(xs, np.ndarray) else list(xs)


def _norm_type(norm_type: float | str) -> float:
    """``norm_type`` as a float; the strings ``"inf"`` and ``"infinity"`` (any case) are
    ``math.inf``, as torch accepts ``norm_type='inf'``."""
    if isinstance(norm_type, str) and norm_type.strip().lower() in ("inf", "infinity"):
        return math.inf
    return _number("norm_type", norm_type)


def clip_grad_norm(
    grads: np.ndarray | Sequence[np.ndarray],
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale ``grads`` in place so that their joint norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: the factor is ``min(1, max_norm / (norm + 1e-6))``.
    Returns the norm before clipping. With ``error_if_nonfinite``, a NaN or infinite norm raises
    ``ValueError`` and leaves ``grads`` unchanged. ``norm_type`` is 1, 2 or ``inf`` (also the
    string ``"inf"``). ``grads`` is a list of arrays, or one array (as torch takes one tensor).
    """
    return float(_core.clip_grad_norm(_arrays(grads), _number("max_norm", max_norm),
                                      _norm_type(norm_type),
                                      check_bool("error_if_nonfinite", error_if_nonfinite)))


def clip_grad_value(grads: np.ndarray | Sequence[np.ndarray], clip_value: float) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place (NaN stays).

    ``grads`` is a list of arrays, or one array."""
    _core.clip_grad_value(_arrays(grads), _number("clip_value", clip_value))


def grad_norm(xs: np.ndarray | Sequence[np.ndarray], norm_type: float | str = 2.0) -> float:
    """The joint ``norm_type`` norm (1, 2 or ``inf``, also the string ``"inf"``) of a list of
    arrays (or of one array), computed in float64."""
    return float(_core.grad_norm(_arrays(xs), _norm_type(norm_type)))


def all_finite(xs: np.ndarray | Sequence[np.ndarray]) -> bool:
    """Whether every element of every array (of a list, or of one array) is finite."""
    return bool(_core.all_finite(_arrays(xs)))


def penalty(
    grads: np.ndarray | Sequence[np.ndarray],
    params: np.ndarray | Sequence[np.ndarray],
    l1: float = 0.0,
    l2: float = 0.0,
) -> float:
    """Add the gradient of ``l1 * sum|p| + l2 / 2 * sum p**2`` to ``grads``; return the penalty.

    ``grads[i]`` must match ``params[i]`` in shape and dtype (each a list, or one array). The
    L1 subgradient at 0 is 0.
    """
    return float(_core.penalty(_arrays(grads), _arrays(params), _number("l1", l1, finite=True),
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
