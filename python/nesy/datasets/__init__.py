"""Data sets shipped with nesy (so demos and tests run offline) and loaders for standard formats.

Shipped files live in ``nesy/datasets/data/`` next to their source and licence
(``data/README.md``).
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from nesy.datasets.kg import KGData, UnknownLabelError, UnseenReport, load_kg
from nesy.datasets.planetoid import Planetoid, load_planetoid

__all__ = ["load_sunspots"]
__all__ += ["Planetoid", "load_planetoid"]
__all__ += ["KGData", "UnknownLabelError", "UnseenReport", "load_kg"]


def load_sunspots(kind: str = "yearly") -> tuple[np.ndarray, np.ndarray]:
    """Mean sunspot numbers (NOAA NGDC, public domain).

    Parameters
    ----------
    kind : {"yearly", "monthly"}
        ``"yearly"``: 1700-2008, 309 values; ``"monthly"``: January 1749 - 2009, 3,126 values.

    Returns
    -------
    time : ndarray of shape (n,)
        The year (yearly) or fractional year ``year + (month - 1) / 12`` (monthly).
    values : ndarray of shape (n,)
        Float64 sunspot numbers.
    """
    if kind not in ("yearly", "monthly"):
        raise ValueError(f"kind: expected 'yearly' or 'monthly', got {kind!r}")
    path = resources.files("nesy.datasets") / "data" / f"sunspots_{kind}.csv"
    with path.open("r") as fh:
        table = np.loadtxt(fh, delimiter=",", skiprows=1, dtype=np.float64)
    if kind == "yearly":
        return table[:, 0], table[:, 1]
    return table[:, 0] + (table[:, 1] - 1) / 12.0, table[:, 2]
