"""nesy.datasets: ``load_kg``'s handling of its ``name_or_path`` argument and
``load_sunspots`` against the copy in ../shared/data.

Mirrors python/nesy/datasets/kg.py and python/nesy/datasets/__init__.py (``load_planetoid``:
tests/test_planetoid.py; the KGData methods: tests/test_kge.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nesy.datasets import load_kg, load_sunspots

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_an_empty_name_or_path_is_refused_not_read_as_the_current_folder(tmp_path,
                                                                         monkeypatch):
    """``load_kg("")`` read train/valid/test.txt of the current folder (``Path("")`` is
    ``"."``), e.g. when an empty environment variable or option was passed on."""
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.txt").write_text("a\tr\tb\n")
    monkeypatch.chdir(tmp_path)
    assert load_kg(".").n_entities == 2  # the current folder, when asked for
    with pytest.raises(FileNotFoundError, match=r"name_or_path: '' is empty"):
        load_kg("")


@pytest.mark.parametrize("kind, n, first, last", [
    ("yearly", 309, (1700.0, 5.0), (2008.0, 2.9)),
    ("monthly", 3126, (1749.0, 58.0), (2009 + 5 / 12, 2.6)),
])
def test_sunspots(kind, n, first, last):
    t, v = load_sunspots(kind)
    assert t.shape == v.shape == (n,) and t.dtype == v.dtype == np.float64
    assert np.all(np.diff(t) > 0)
    assert (t[0], v[0]) == first
    assert (t[-1], v[-1]) == pytest.approx(last)
    csv = SHARED / "timeseries" / f"sunspots_{kind}.csv"
    if csv.is_file():
        table = np.loadtxt(csv, delimiter=",", skiprows=1)
        np.testing.assert_array_equal(v, table[:, -1])
