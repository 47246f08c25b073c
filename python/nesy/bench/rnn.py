"""Recurrent layer benchmark: nesy vs torch.nn.RNN/GRU/LSTM on the CPU, forward only
(inference) and forward + backward, float32, one layer, one direction.

FLOPs are counted as 2·T·B·G·H·(I+H) for the forward and 2·T·B·G·H·(2I+3H) for forward +
backward (the backward's products ``dG W_hh`` per step, ``dW_ih`` and ``dW_hh``). Neither side
computes the gradient of the input, as for a first layer on data: torch's ``x`` does not require
a gradient, nesy's layers run with ``input_grad=False``. The machine's single-precision GEMM
peak (NumPy's BLAS on 2048³) is measured in the same run.

At batch 1 a step is a matrix-vector product: it reads every weight once and does one
multiply-add with it, so the bound is the cache bandwidth, not the GEMM peak. For those cases
the bench also times the floor of nesy's two-thread step (``_core.rnn_stream_floor``: each step,
each of two threads reads its half of an array the size of the weights from its L2 cache, and
the two meet once), in the same interleaved rounds as both forwards.
"""

from __future__ import annotations

import functools
import importlib.util
import time
from collections.abc import Callable

import numpy as np

from nesy.bench import best_time, format_table, interleaved_medians, interleaved_times

CASES = [(100, 32, 32, 128), (100, 1, 32, 128), (50, 64, 64, 256), (200, 16, 8, 32)]
QUICK_CASES = [(50, 16, 16, 64), (100, 1, 16, 64)]
#: One step of one sequence (online inference, step-by-step generation): the per-call cost.
STEP_CASES = [(1, 1, 32, 128), (1, 1, 64, 256)]
QUICK_STEP_CASES = [(1, 1, 16, 64)]
CELLS = {"RNN": 1, "GRU": 3, "LSTM": 4}
#: The issue's targets, times faster than torch: (forward, forward + backward).
TARGETS = {"RNN": (3.0, 3.0), "GRU": (3.0, 3.0), "LSTM": (3.0, 1.5)}


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def gemm_peak(n: int = 2048) -> float:
    """GFLOP/s of NumPy's float32 matmul on n x n matrices (best of 3)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    return 2 * n**3 / best_time(lambda: a @ a, 3, 1) / 1e9


def flops(cell: str, T: int, B: int, I: int, H: int) -> float:  # noqa: E741
    """FLOPs of the forward pass."""
    return 2.0 * T * B * CELLS[cell] * H * (I + H)


def train_flops(cell: str, T: int, B: int, I: int, H: int) -> float:  # noqa: E741
    """FLOPs of forward + backward without the input's gradient."""
    return 2.0 * T * B * CELLS[cell] * H * (2 * I + 3 * H)


def nesy_fns(cell: str, T: int, B: int, I: int, H: int) -> tuple[Callable[[], object], ...]:  # noqa: E741
    from nesy import rnn

    m = getattr(rnn, cell)(I, H, rng=0, input_grad=False)  # x is data, as torch's below
    x = np.random.default_rng(1).standard_normal((T, B, I), dtype=np.float32)
    go = np.ones((T, B, H), np.float32)

    def infer() -> None:
        m.eval()
        m(x)

    def train() -> None:
        m.train()
        m(x)
        m.backward(go)

    return infer, train


def torch_fns(cell: str, T: int, B: int, I: int, H: int) -> tuple[Callable[[], object], ...]:  # noqa: E741
    import torch

    import nesy

    torch.set_num_threads(nesy.get_num_threads())  # same thread count on both sides
    m = getattr(torch.nn, cell)(I, H)
    x = torch.randn(T, B, I)

    def infer() -> None:
        with torch.no_grad():
            m(x)

    def train() -> None:
        out, _ = m(x)
        out.sum().backward()

    return infer, train


def run(cases: list[tuple[int, int, int, int]] | None = None, repeat: int = 10,
        with_torch: bool | None = None, rounds: int = 3) -> list[dict[str, object]]:
    """One row per cell and case: the best seconds of each column over ``rounds`` interleaved
    rounds (:func:`~nesy.bench.interleaved_times`), so that nesy and torch meet the same
    minutes of a machine whose speed drifts."""
    cases = CASES if cases is None else cases
    with_torch = torch_available() if with_torch is None else with_torch
    rows = []
    for cell in CELLS:
        for T, B, I, H in cases:  # noqa: E741
            row: dict[str, object] = {"cell": cell, "case": f"({T}, {B}, {I}, {H})",
                                      "flops": flops(cell, T, B, I, H),
                                      "train flops": train_flops(cell, T, B, I, H)}
            fns: dict[str, Callable[[], object]] = {}
            fns["nesy fwd"], fns["nesy fwd+bwd"] = nesy_fns(cell, T, B, I, H)
            if with_torch:
                fns["torch fwd"], fns["torch fwd+bwd"] = torch_fns(cell, T, B, I, H)
            row.update(interleaved_times(fns, repeat, rounds))
            rows.append(row)
    return rows


def table(rows: list[dict[str, object]], peak: float) -> str:
    """The main table. With torch's columns it also says what the issue's targets
    (:data:`TARGETS`) need: the GFLOP/s of a forward (+ backward) ``x`` times faster than
    torch's, as a % of the GEMM peak measured in the same run (over 100 %: faster than NumPy's
    SGEMM of 2048^3 in that run)."""
    torch_cols = "torch fwd" in rows[0]
    header = ["cell", "(T, B, I, H)", "nesy fwd ms", "nesy fwd+bwd ms", "nesy fwd+bwd GF/s",
              "nesy fwd % of peak", "nesy fwd+bwd % of peak"]
    if torch_cols:
        header += ["torch fwd ms", "torch fwd+bwd ms", "x fwd", "x fwd+bwd",
                   "target x fwd, fwd+bwd", "target fwd needs % of peak",
                   "target fwd+bwd needs % of peak"]
    out = []
    for r in rows:
        cell = str(r["cell"])
        f = float(r["train flops"])  # type: ignore[arg-type]
        ff = float(r["flops"])  # type: ignore[arg-type]
        nf, nt = float(r["nesy fwd"]), float(r["nesy fwd+bwd"])  # type: ignore[arg-type]
        pct = lambda flop, seconds: 100 * flop / seconds / 1e9 / peak  # noqa: E731
        cells = [cell, str(r["case"]), f"{nf * 1e3:.2f}", f"{nt * 1e3:.2f}",
                 f"{f / nt / 1e9:.1f}", f"{pct(ff, nf):.0f}", f"{pct(f, nt):.0f}"]
        if torch_cols:
            tf, tt = float(r["torch fwd"]), float(r["torch fwd+bwd"])  # type: ignore[arg-type]
            xf, xt = TARGETS[cell]
            cells += [f"{tf * 1e3:.2f}", f"{tt * 1e3:.2f}", f"{tf / nf:.1f}", f"{tt / nt:.1f}",
                      f"{xf:g}, {xt:g}", f"{pct(ff, tf / xf):.0f}", f"{pct(f, tt / xt):.0f}"]
        out.append(cells)
    return format_table(header, out)


def step_rows(cases: list[tuple[int, int, int, int]], calls: int = 200,
              with_torch: bool | None = None) -> list[dict[str, object]]:
    """Forward (inference) of each cell on the ``cases`` (one step of one sequence): median
    seconds of a call, nesy and torch in interleaved rounds (:func:`interleaved_medians`)."""
    with_torch = torch_available() if with_torch is None else with_torch
    rows = []
    for cell in CELLS:
        for T, B, I, H in cases:  # noqa: E741
            fns: dict[str, Callable[[], object]] = {"nesy fwd": nesy_fns(cell, T, B, I, H)[0]}
            if with_torch:
                fns["torch fwd"] = torch_fns(cell, T, B, I, H)[0]
            row: dict[str, object] = {"cell": cell, "case": f"({T}, {B}, {I}, {H})"}
            row.update(interleaved_medians(fns, calls))
            rows.append(row)
    return rows


def step_table(rows: list[dict[str, object]]) -> str:
    torch_cols = "torch fwd" in rows[0]
    header = ["cell", "(T, B, I, H)", "nesy fwd us"]
    if torch_cols:
        header += ["torch fwd us", "x fwd"]
    out = []
    for r in rows:
        nf = float(r["nesy fwd"])  # type: ignore[arg-type]
        cells = [str(r["cell"]), str(r["case"]), f"{nf * 1e6:.1f}"]
        if torch_cols:
            tf = float(r["torch fwd"])  # type: ignore[arg-type]
            cells += [f"{tf * 1e6:.1f}", f"{tf / nf:.1f}"]
        out.append(cells)
    return format_table(header, out)


def floor_rows(cases: list[tuple[int, int, int, int]], repeat: int = 10
               ) -> list[dict[str, object]]:
    """For the batch-1 cases: the weight-streaming floor of T steps and nesy's forward, timed in
    interleaved rounds (best seconds of each; both on nesy's pool. torch's threads are timed
    apart, in :func:`run`: run right after nesy's, they waited for its spinning threads)."""
    from nesy import _core

    rows = []
    for cell, gates in CELLS.items():
        for T, B, I, H in cases:  # noqa: E741
            if B != 1:
                continue
            w = np.ones(gates * H * (I + H), np.float32)
            fns: dict[str, Callable[[], object]] = {
                "floor": functools.partial(_core.rnn_stream_floor, w, T),
                "nesy fwd": nesy_fns(cell, T, B, I, H)[0],
            }
            row: dict[str, object] = {"cell": cell, "case": f"({T}, {B}, {I}, {H})",
                                      "weights KB": w.nbytes / 1024}
            row.update(interleaved_times(fns, repeat))
            rows.append(row)
    return rows


def floor_table(rows: list[dict[str, object]], main_rows: list[dict[str, object]]) -> str:
    """The floor rows, with torch's forward from the main table's rows (``main_rows``)."""
    torch_fwd = {(r["cell"], r["case"]): r["torch fwd"] for r in main_rows if "torch fwd" in r}
    header = ["cell", "(T, B, I, H)", "weights KB", "floor ms", "nesy fwd ms", "% of floor"]
    if torch_fwd:
        header += ["torch fwd ms", "3x torch fwd needs % of floor"]
    out = []
    for r in rows:
        fl, nf = float(r["floor"]), float(r["nesy fwd"])  # type: ignore[arg-type]
        kb = float(r["weights KB"])  # type: ignore[arg-type]
        cells = [str(r["cell"]), str(r["case"]), f"{kb:.0f}", f"{fl * 1e3:.3f}",
                 f"{nf * 1e3:.3f}", f"{100 * fl / nf:.0f}"]
        if torch_fwd:
            tf = float(torch_fwd[(r["cell"], r["case"])])  # type: ignore[arg-type]
            cells += [f"{tf * 1e3:.3f}", f"{100 * fl / (tf / 3):.0f}"]
        out.append(cells)
    return format_table(header, out)


def main(quick: bool = False, repeat: int = 10) -> None:
    """Print the benchmark table (``nesy bench rnn``)."""
    import nesy

    t0 = time.perf_counter()
    peak = gemm_peak()
    print(f"SGEMM peak (NumPy, 2048^3): {peak:.0f} GFLOP/s; {nesy.get_num_threads()} threads")
    if not torch_available():
        print("(torch is not importable: PyTorch columns omitted)")
    cases = QUICK_CASES if quick else CASES
    rows = run(cases, repeat)
    print(table(rows, peak))
    print("\nBatch 1: the floor of the two-thread step (the weights read once a step, each "
          "thread its half), forward only; floor and nesy in interleaved rounds")
    print(floor_table(floor_rows(cases, repeat), rows))
    print("\nOne step of one sequence, forward: median microseconds of a call, interleaved rounds")
    print(step_table(step_rows(QUICK_STEP_CASES if quick else STEP_CASES)))
    if __name__ == "__main__":
        print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
