"""pytest-benchmark suite: recurrent layers, nesy vs torch.nn.RNN/GRU/LSTM, forward only and
forward + backward. Run: ``pytest benches/bench_rnn.py --benchmark-only
--benchmark-group-by=param:cell,param:case``; ``nesy bench rnn`` prints the same comparison as
one table with ratios and GFLOP/s against the GEMM peak.
"""

from __future__ import annotations

import pytest

from nesy.bench import rnn as bench

CASES = {f"{c}": c for c in bench.CASES}


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("impl", ["nesy", "torch"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("cell", list(bench.CELLS))
def test_rnn(benchmark, cell, case, impl, mode):
    if impl == "torch":
        pytest.importorskip("torch")
    fns = (bench.nesy_fns if impl == "nesy" else bench.torch_fns)(cell, *CASES[case])
    benchmark.group = f"{cell} {case} {mode}"
    count = bench.flops if mode == "fwd" else bench.train_flops
    benchmark.extra_info["gflop"] = count(cell, *CASES[case]) / 1e9
    benchmark(fns[0] if mode == "fwd" else fns[1])


def test_gemm_peak(benchmark):
    """The machine's single-precision GEMM peak in the same run (GFLOP/s)."""
    benchmark.extra_info["gflops"] = benchmark.pedantic(bench.gemm_peak, rounds=1, iterations=1)


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][1] == 1])
@pytest.mark.parametrize("cell", list(bench.CELLS))
def test_stream_floor(benchmark, cell, case):
    """Batch 1: the floor of nesy's two-thread step, T steps each reading every weight once
    (``nesy._core.rnn_stream_floor`` on an array the size of the layer's weights); grouped with
    the forward it bounds."""
    import numpy as np

    from nesy import _core

    T, _, I, H = CASES[case]  # noqa: E741
    w = np.ones(bench.CELLS[cell] * H * (I + H), np.float32)
    benchmark.group = f"{cell} {case} fwd"
    benchmark.extra_info["weights_kb"] = w.nbytes / 1024
    benchmark(_core.rnn_stream_floor, w, T)
