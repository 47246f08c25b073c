"""One-step-ahead forecasting of a univariate series with recurrent models, against the
persistence and AR(p) baselines, on the same windows and the same held-out final fraction.

Used by ``nesy rnn demo`` on the shipped sunspot series (:func:`nesy.datasets.load_sunspots`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from numbers import Real

import numpy as np

from nesy._checks import check_int
from nesy.rnn.estimators import SequenceRegressor


def windows(series: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(n, window)``: the ``window`` values before each target; targets ``(n,)``."""
    series = np.asarray(series, dtype=np.float64)
    if series.ndim != 1:
        raise ValueError(f"series: expected one value per time step (1 dimension), got shape "
                         f"{series.shape}")
    if not np.isfinite(series).all():
        raise ValueError(f"series: contains NaN or infinity (at index "
                         f"{np.flatnonzero(~np.isfinite(series))[0]})")
    window = check_int("window", window, 1)
    if not window < series.size:
        raise ValueError(f"window: must be in 1..{series.size - 1} for a series of "
                         f"{series.size} values, got {window}")
    X = np.lib.stride_tricks.sliding_window_view(series[:-1], window)
    return np.ascontiguousarray(X), series[window:]


def ar_fit_predict(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray) -> np.ndarray:
    """AR(p) with intercept by least squares on the same windows (p = window length)."""
    A = np.c_[X_train, np.ones(len(X_train))]
    coef, *_ = np.linalg.lstsq(A, y_train, rcond=None)
    return np.c_[X_test, np.ones(len(X_test))] @ coef


@dataclass
class ForecastResult:
    """Test MSE of each method, and the fitting seconds of the recurrent ones."""

    n_train: int
    n_test: int
    mse: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def compare(series: np.ndarray, window: int, test_fraction: float = 0.2,
            cells: tuple[str, ...] = ("gru", "lstm"), ensemble: int = 3,
            **params: object) -> ForecastResult:
    """Forecast the final ``test_fraction`` of the targets one step ahead.

    Persistence (the last value), AR(``window``) by least squares, and for every cell the mean
    of ``ensemble`` :class:`SequenceRegressor` models (seeds 0..ensemble-1) with ``params``.
    """
    ensemble = check_int("ensemble", ensemble, 1)
    if not isinstance(test_fraction, Real) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    X, y = windows(series, window)
    n_test = int(round(test_fraction * len(y)))
    if not 1 <= n_test < len(y):
        raise ValueError(f"test_fraction: leaves {n_test} test targets of {len(y)}")
    tr, te = slice(0, len(y) - n_test), slice(len(y) - n_test, len(y))
    res = ForecastResult(len(y) - n_test, n_test)
    mse = lambda p: float(np.mean((p - y[te]) ** 2))  # noqa: E731
    res.mse["persistence"] = mse(X[te, -1])
    res.mse[f"AR({window})"] = mse(ar_fit_predict(X[tr], y[tr], X[te]))
    for cell in cells:
        t0 = time.perf_counter()
        preds = [SequenceRegressor(cell=cell, random_state=seed, **params)  # type: ignore[arg-type]
                 .fit(X[tr], y[tr]).predict(X[te]) for seed in range(ensemble)]
        res.seconds[cell.upper()] = time.perf_counter() - t0
        res.mse[cell.upper()] = mse(np.mean(preds, axis=0))
    return res


#: Settings of the sunspot demo: (series, window, estimator parameters).
SUNSPOT_SETUPS = {
    "yearly": (9, dict(hidden_size=16, epochs=300, learning_rate=1e-2, batch_size=16,
                       patience=40)),
    "monthly": (48, dict(hidden_size=16, epochs=100, learning_rate=5e-3, batch_size=64,
                         patience=40)),
}


def sunspot_demo(kinds: tuple[str, ...] = ("yearly", "monthly")) -> dict[str, ForecastResult]:
    """Forecast the shipped sunspot series (final 20 % held out) and print a table."""
    from nesy.bench import format_table
    from nesy.datasets import load_sunspots

    results, rows = {}, []
    for kind in kinds:
        window, params = SUNSPOT_SETUPS[kind]
        _, series = load_sunspots(kind)
        r = compare(series, window, **params)  # type: ignore[arg-type]
        results[kind] = r
        for name, v in r.mse.items():
            secs = f"{r.seconds[name]:.1f}" if name in r.seconds else ""
            rows.append([kind, str(r.n_train), str(r.n_test), name, f"{v:.1f}", secs])
    print(format_table(["series", "train", "test", "model", "test MSE", "fit s"], rows))
    return results
