"""The recurrent-layer benchmark's table (``nesy.bench.rnn``): the GFLOP/s and "% of peak"
columns, and what each of the issue's targets needs, follow from the FLOP counts and times of
a row; ``run`` without torch fills nesy's columns."""

from __future__ import annotations

import pytest

from nesy.bench import rnn as bench


def _columns(text: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
            for line in lines[1:]]


def test_flop_counts():
    # Forward: G gates of H units, each a dot product over I + H values per row and step.
    assert bench.flops("LSTM", 10, 2, 3, 5) == 2 * 10 * 2 * 4 * 5 * (3 + 5)
    # Forward + backward without dx: the forward, dG W_hh per step, dW_ih and dW_hh.
    assert bench.train_flops("GRU", 10, 2, 3, 5) == 2 * 10 * 2 * 3 * 5 * (2 * 3 + 3 * 5)


def test_table_columns_and_target_needs():
    T, B, I, H = 100, 32, 32, 128  # noqa: E741
    row = {"cell": "LSTM", "case": "(100, 32, 32, 128)",
           "flops": bench.flops("LSTM", T, B, I, H),
           "train flops": bench.train_flops("LSTM", T, B, I, H),
           "nesy fwd": 4e-3, "nesy fwd+bwd": 10e-3, "torch fwd": 6e-3, "torch fwd+bwd": 12e-3}
    peak = 200.0
    (got,) = _columns(bench.table([row], peak))
    fwd_gf, train_gf = row["flops"] / 4e-3 / 1e9, row["train flops"] / 10e-3 / 1e9
    assert got["nesy fwd+bwd GF/s"] == f"{train_gf:.1f}"
    assert got["nesy fwd % of peak"] == f"{100 * fwd_gf / peak:.0f}"
    assert got["nesy fwd+bwd % of peak"] == f"{100 * train_gf / peak:.0f}"
    assert (got["x fwd"], got["x fwd+bwd"]) == ("1.5", "1.2")
    assert got["target x fwd, fwd+bwd"] == "3, 1.5"  # the LSTM's targets
    # 3x torch's forward: 2 ms for the forward's FLOPs; 1.5x its forward + backward: 8 ms.
    assert got["target fwd needs % of peak"] == f"{100 * row['flops'] / 2e-3 / 1e9 / peak:.0f}"
    want = 100 * row["train flops"] / 8e-3 / 1e9 / peak
    assert got["target fwd+bwd needs % of peak"] == f"{want:.0f}"
    assert want == pytest.approx(100 * train_gf / peak * 10 / 8)


def test_run_without_torch_fills_nesys_columns():
    rows = bench.run([(3, 2, 4, 8)], repeat=1, with_torch=False, rounds=1)
    assert [r["cell"] for r in rows] == list(bench.CELLS)
    for r in rows:
        assert r["nesy fwd"] > 0 and r["nesy fwd+bwd"] > 0 and "torch fwd" not in r
    cols = _columns(bench.table(rows, 100.0))
    assert "target x fwd, fwd+bwd" not in cols[0] and len(cols) == 3


def test_step_rows_and_table_without_torch():
    rows = bench.step_rows([(1, 1, 4, 8)], calls=3, with_torch=False)
    assert [r["cell"] for r in rows] == list(bench.CELLS)
    assert all(r["nesy fwd"] > 0 and "torch fwd" not in r for r in rows)
    (first, *_) = _columns(bench.step_table(rows))
    assert first["(T, B, I, H)"] == "(1, 1, 4, 8)"
    assert first["nesy fwd us"] == f"{rows[0]['nesy fwd'] * 1e6:.1f}" and "x fwd" not in first


def test_interleaved_medians_is_the_median_of_every_timed_call(monkeypatch):
    # A fake clock: each call of the function advances it by the next of a list of durations.
    from nesy import bench as common

    durations = iter([5.0, 1.0, 3.0, 2.0, 4.0, 100.0])
    now = [0.0]
    monkeypatch.setattr(common, "settled_time", lambda fn, repeat: 0.0)
    monkeypatch.setattr(common.time, "perf_counter", lambda: now[0])

    def fn():
        now[0] += next(durations)

    got = common.interleaved_medians({"f": fn}, calls=3, rounds=2)
    assert got == {"f": 4.0}  # sorted 1, 2, 3, 4, 5, 100: the upper median
