"""Extra training points near the data, to be labelled by a teacher.

- ``"noise"``: a random training row plus Gaussian noise of ``noise_scale`` times each feature's
  standard deviation;
- ``"mixup"``: ``lam * x_i + (1 - lam) * x_j`` for random rows ``i, j`` and
  ``lam ~ Beta(mixup_alpha, mixup_alpha)`` (Zhang et al. 2018), labelled by the teacher instead
  of mixing the labels;
- ``"both"``: half of each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["augment", "AUGMENTATIONS"]

AUGMENTATIONS = ("noise", "mixup", "both")


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
    kind : {"noise", "mixup", "both"}
    n_samples : int
        Number of rows to make.
    noise_scale : float
        Noise standard deviation as a fraction of each feature's standard deviation.
    mixup_alpha : float > 0
        Parameter of the Beta distribution of the mixing weights.
    rng : None, int or numpy.random.Generator

    Returns
    -------
    ndarray of shape (n_samples, n_features)
        Float64 rows.
    """
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augment: expected one of {AUGMENTATIONS}, got {kind!r}")
    if not float(noise_scale) >= 0:
        raise ValueError(f"noise_scale: expected a number >= 0, got {noise_scale!r}")
    if not float(mixup_alpha) > 0:
        raise ValueError(f"mixup_alpha: expected a positive number, got {mixup_alpha!r}")
    n = int(n_samples)
    if n < 0:
        raise ValueError(f"n_samples: expected >= 0, got {n_samples!r}")
    X = np.asarray(X, dtype=np.float64)
    rng = np.random.default_rng(rng)
    if kind == "noise":
        return _noise(X, n, float(noise_scale), rng)
    if kind == "mixup":
        return _mixup(X, n, float(mixup_alpha), rng)
    half = n // 2
    return np.vstack([_noise(X, half, float(noise_scale), rng),
                      _mixup(X, n - half, float(mixup_alpha), rng)])
