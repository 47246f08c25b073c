"""pytest-benchmark suite: one FOMAML meta-iteration on the sine protocol (1-40-40-1 ReLU,
25 tasks, K = 5, one inner SGD step, outer Adam), nesy batched over tasks vs a plain PyTorch loop
over tasks vs PyTorch batched over tasks. ``nesy.meta.report.speed_table`` prints the same
comparison as meta-iterations per second.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nesy.meta import report

GROUP = "FOMAML meta-iteration, sine 5-shot, 25 tasks"


@pytest.fixture(scope="module")
def batches():
    return report.sine_batches(20)


def test_nesy_fomaml(benchmark, batches):
    from nesy.meta import BatchedMLP
    from nesy.optim import Adam

    backend = BatchedMLP(report.mlp([1, 40, 40, 1]))
    opt = Adam(backend.parameters(), lr=1e-3)
    cycle = itertools.cycle(batches)
    benchmark.group = GROUP
    benchmark(lambda: report.fomaml_step_nesy(backend, opt, next(cycle)))


def _torch_setup(batches):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # see report.speed_table: threads only contend at these sizes
    params = [torch.tensor(p, requires_grad=True) for p in report.mlp([1, 40, 40, 1]).parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    tb = [tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in
                (b.support_x, b.support_y, b.query_x, b.query_y)) for b in batches]
    return params, opt, itertools.cycle(tb)


def test_torch_fomaml_loop_over_tasks(benchmark, batches):
    params, opt, cycle = _torch_setup(batches)
    benchmark.group = GROUP
    benchmark(lambda: report.torch_fomaml_loop(params, opt, next(cycle)))


def test_torch_fomaml_batched(benchmark, batches):
    params, opt, cycle = _torch_setup(batches)
    benchmark.group = GROUP
    benchmark(lambda: report.torch_fomaml_batched(params, opt, next(cycle)))
