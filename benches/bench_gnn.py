"""pytest-benchmark suite: sum aggregation over random power-law graphs, nesy vs SciPy vs
torch (sparse CSR mm and gather + index_add_). ``nesy bench gnn`` prints the same comparison as
one table with ratios and GB/s.
"""

from __future__ import annotations

import numpy as np
import pytest

from nesy._mem import aligned_copy
from nesy.bench import gnn as bench


@pytest.fixture(scope="module", params=bench.CASES, ids=[str(c) for c in bench.CASES])
def case(request):
    import scipy.sparse as sp

    from nesy.gnn import Graph

    n, e, f = request.param
    ei = bench.random_graph(n, e)
    # on a cache line, as torch places tensors (see nesy.bench.gnn)
    x = aligned_copy(np.random.default_rng(1).standard_normal((n, f), dtype=np.float32))
    A = sp.csr_matrix((np.ones(e, np.float32), (ei[1], ei[0])), shape=(n, n))
    return request.param, Graph(ei, n), x, A, ei


def test_nesy_forward(benchmark, case):
    from nesy.gnn import aggregate

    (n, e, f), g, x, _, _ = case
    benchmark.group = f"{n} nodes, {e} edges, {f} features: forward"
    benchmark(aggregate, g, x)


def test_nesy_unchecked_forward(benchmark, case):
    """Without ``aggregate``'s NaN test over x (``check_finite=False``)."""
    from nesy.gnn import aggregate

    (n, e, f), g, x, _, _ = case
    benchmark.group = f"{n} nodes, {e} edges, {f} features: forward"
    benchmark(aggregate, g, x, check_finite=False)


def test_nesy_unchecked_forward_x_off_a_line(benchmark, case):
    """As above, with x 16 bytes past a cache line (where NumPy puts large arrays)."""
    from nesy.gnn import aggregate

    (n, e, f), g, x, _, _ = case
    benchmark.group = f"{n} nodes, {e} edges, {f} features: forward"
    benchmark(aggregate, g, aligned_copy(x, offset=16), check_finite=False)


def test_gather_limit(benchmark, case):
    """The limit of the forward's gather loop: every edge's source row read by that loop, with
    nothing written (``nesy._core.gnn_gather_sum``)."""
    from nesy import _core

    (n, e, f), g, x, _, _ = case
    benchmark.group = f"{n} nodes, {e} edges, {f} features: forward"
    benchmark(_core.gnn_gather_sum, g.indptr, g.indices, x)


def test_scipy_forward(benchmark, case):
    (n, e, f), _, x, A, _ = case
    benchmark.group = f"{n} nodes, {e} edges, {f} features: forward"
    benchmark(A.__matmul__, x)


def test_torch_sparse_forward(benchmark, case):
    torch = pytest.importorskip("torch")
    (n, e, f), _, x, A, _ = case
    At = torch.sparse_csr_tensor(torch.from_numpy(A.indptr.astype(np.int64)),
                                 torch.from_numpy(A.indices.astype(np.int64)),
                                 torch.from_numpy(A.data), size=(n, n))
    benchmark.group = f"{n} nodes, {e} edges, {f} features: forward"
    benchmark(torch.sparse.mm, At, torch.from_numpy(x))


# ==============================================================================================
# GCN training epoch on Cora (forward, backward, Adam): nesy vs the same model with torch
# sparse ops. Section added with nesy.gnn's layers; see nesy.bench.gnn.run_gcn_epoch.
# ==============================================================================================
@pytest.mark.parametrize("sparse", [True, False], ids=["sparse features", "dense features"])
def test_gcn_epoch_nesy(benchmark, sparse):
    epoch, _ = bench.gcn_epoch_nesy(sparse)
    benchmark.group = "GCN training epoch on Cora"
    benchmark(epoch)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense features", "sparse features"])
def test_gcn_epoch_torch(benchmark, sparse):
    pytest.importorskip("torch")
    epoch, _ = bench.gcn_epoch_torch(sparse)
    benchmark.group = "GCN training epoch on Cora"
    benchmark(epoch)
