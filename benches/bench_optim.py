"""pytest-benchmark suite: one optimizer step, nesy vs plain NumPy vs torch.optim, side by side.

Run: ``pytest benches/bench_optim.py --benchmark-only --benchmark-group-by=param:case,param:name``
(``nesy bench optim`` prints the same comparison as one table with ratios and GB/s).
Implementations come from :mod:`nesy.bench.optim`, shared with the command line.
"""

from __future__ import annotations

import pytest

from nesy.bench import optim as bench

IMPLS = ["nesy", "numpy", "numpy inplace", "torch fused", "torch foreach"]


@pytest.fixture(scope="module", params=list(bench.CASES), ids=list(bench.CASES))
def case(request):
    return request.param


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", list(bench.BYTES_PER_PARAM))
def test_step(benchmark, case, name, impl):
    k, n = bench.CASES[case]
    pb = bench.Problem.make(k, n)
    if impl == "nesy":
        fn = bench.nesy_step(name, pb)
    elif impl.startswith("numpy"):
        fn = bench.numpy_step(name, pb, "inplace" if impl.endswith("inplace") else "textbook")
    else:
        pytest.importorskip("torch")
        fn = bench.torch_step(name, pb, impl.split()[1])
        if fn is None:
            pytest.skip(f"torch has no {impl} {name} on CPU")
    benchmark.group = f"{name} {case}"
    benchmark.extra_info["bytes_per_param"] = bench.BYTES_PER_PARAM[name]
    benchmark.extra_info["params"] = k * n
    benchmark(fn)


def test_memory_limits(benchmark):
    """The memory limit in the same run: GB/s of in-place streaming over the same working set."""
    result = benchmark.pedantic(bench.memory_limits, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
