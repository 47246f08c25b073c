"""Extra training points near the data, to be labelled by a teacher.

- ``"noise"``: a random training row plus Gaussian noise of ``noise_scale`` times each feature's
  standard deviation;
- ``"mixup"``: ``lam * x_i + (1 - lam) * x_j`` for random rows ``i, j`` and
  ``lam ~ Beta(mixup_alpha, mixup_alpha)`` (Zhang et al. 2018), labelled by the teacher instead
  of mixing the labels;
- ``"both"``: half of each.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from nesy._checks import check_int, check_seed

__all__ = ["augment", "AUGMENTATIONS"]

AUGMENTATIONS = ("noise", "mixup", "both")


def _real(name: str, value: Any) -> float:
    """``value`` as a float; TypeError naming ``name`` unless it is a real number (booleans
    and strings are not)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    return float(value)


def _noise(X: np.ndarray, n: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    base = X[rng.integers(0, X.shape[0], n)]
    return base + rng.standard_normal(base.shape) * (scale * X.std(axis=0))


def _mixup(X: np.ndarray, n: int, a: float, rng: np.random.Generator) -> np.ndarray:
    i = rng.integers(0, X.shape[0], n)
    j = rng.integers(0, X.shape[0], n)
    lam = rng.beta(a, a, size=(n, 1))
    return lam * X[i] + (1.0 - lam) * X[j]


def augment(X: np.ndarray, kind: str, n_samples: int, noise_scale: float = 0.1,
            mixup_alpha: float = 0.4, rng: Any = None) -> np.ndarray:
    """Synthetic rows near ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Real and finite (NaN or infinity: ``ValueError`` naming ``X``).
    kind : {"noise", "mixup", "both"}
    n_samples : int
        Number of rows to make (an integer: 2.5 is refused, not truncated).
    noise_scale : float
        Noise standard deviation as a fraction of each feature's standard deviation.
    mixup_alpha : float > 0
        Parameter of the Beta distribution of the mixing weights.
    rng : None, int >= 0 or numpy.random.Generator

    Returns
    -------
    ndarray of shape (n_samples, n_features)
        Float64 rows.
    """
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augment: expected one of {AUGMENTATIONS}, got {kind!r}")
    scale, alpha = _real("noise_scale", noise_scale), _real("mixup_alpha", mixup_alpha)
    if not (np.isfinite(scale) and scale >= 0):
        raise ValueError(f"noise_scale: expected a finite number >= 0, got {noise_scale!r}")
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"mixup_alpha: expected a finite number > 0, got {mixup_alpha!r}")
    n = check_int("n_samples", n_samples, 0)
    check_seed("rng", rng)
    X = np.asarray(X)
    try:
        if X.dtype.kind == "c":  # the cast would drop the imaginary part
            raise TypeError
        X = X.astype(np.float64, copy=False)
    except (TypeError, ValueError):
        raise TypeError(f"X: expected real numbers, got dtype {X.dtype}") from None
    if X.ndim != 2:
        raise ValueError(f"X: expected (n_samples, n_features), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X: contains NaN or infinity (the rows made near it would too)")
    if X.shape[0] == 0 and n > 0:
        raise ValueError(f"X: no rows to make {n} rows near (shape {X.shape})")
    rng = np.random.default_rng(rng)
    if n == 0:
        return np.empty((0, X.shape[1]))
    if kind == "noise":
        return _noise(X, n, scale, rng)
    if kind == "mixup":
        return _mixup(X, n, alpha, rng)
    half = n // 2
    return np.vstack([_noise(X, half, scale, rng), _mixup(X, n - half, alpha, rng)])
