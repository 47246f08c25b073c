"""nesy.gnn: Graph construction and neighbourhood aggregation against SciPy/NumPy references,
finite differences, thread-count and SIMD invariance, and bad input.

Mirrors python/nesy/gnn/ and rust/core/src/gnn/.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import nesy
from nesy import _core
from nesy.gnn import Graph, aggregate, aggregate_backward


def _random_graph(n=60, e=400, seed=0, weighted=True):
    rng = np.random.default_rng(seed)
    ei = rng.integers(0, n, (2, e))
    ei[1, ei[1] == 3] = 4  # node 3 has no in-edges
    ei = np.hstack([ei, ei[:, :5]])  # duplicate edges
    w = rng.random(ei.shape[1]) + 0.5 if weighted else None
    return Graph(ei, n, w), ei, w


def _dense(ei, w, n):
    w = np.ones(ei.shape[1]) if w is None else w
    return sp.coo_matrix((w, (ei[1], ei[0])), shape=(n, n)).tocsr()  # row = destination


def _reference(ei, w, n, x, reduce):
    out = np.zeros_like(x)
    w = np.ones(ei.shape[1]) if w is None else w
    for d in range(n):
        sel = ei[1] == d
        if not sel.any():
            continue
        vals = w[sel, None] * x[ei[0, sel]]
        out[d] = {"sum": vals.sum(0), "mean": vals.mean(0), "max": vals.max(0),
                  "min": vals.min(0)}[reduce]
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("weighted", [False, True])
def test_aggregate_matches_references(dtype, reduce, weighted):
    g, ei, w = _random_graph(weighted=weighted)
    x = np.random.default_rng(1).standard_normal((60, 7)).astype(dtype)
    out, arg = aggregate(g, x, reduce)
    assert out.dtype == dtype and out.shape == (60, 7)
    want = _reference(ei, w, 60, x.astype(np.float64), reduce)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol)
    assert np.all(out[3] == 0)  # no in-edges
    if reduce == "sum":
        np.testing.assert_allclose(out, _dense(ei, w, 60) @ x.astype(np.float64), rtol=tol,
                                   atol=tol)
    if reduce in ("max", "min"):
        assert arg.shape == (60, 7) and np.all(arg[3] == -1)
    else:
        assert arg is None


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_backward_matches_scipy_and_finite_differences(reduce):
    g, ei, w = _random_graph(n=15, e=50, seed=2)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((15, 3))
    up = rng.standard_normal((15, 3))
    out, arg = aggregate(g, x, reduce)
    gx, gw = aggregate_backward(g, x, up, reduce, arg=arg, weight_grad=True)
    if reduce == "sum":
        np.testing.assert_allclose(gx, _dense(ei, w, 15).T @ up, rtol=1e-12, atol=1e-12)
    eps = 1e-6

    def loss_x(xx):
        return float(np.sum(aggregate(g, xx, reduce)[0] * up))

    for k in np.ndindex(x.shape):
        a, b = x.copy(), x.copy()
        a[k] += eps
        b[k] -= eps
        assert gx[k] == pytest.approx((loss_x(a) - loss_x(b)) / (2 * eps), abs=1e-6)
    for e in range(0, g.num_edges, 7):
        g2 = Graph(g.edge_index(), 15, g.edge_weight.copy())
        g2.edge_weight[e] += eps
        up_ = float(np.sum(aggregate(g2, x, reduce)[0] * up))
        g2.edge_weight[e] -= 2 * eps
        down = float(np.sum(aggregate(g2, x, reduce)[0] * up))
        assert gw[e] == pytest.approx((up_ - down) / (2 * eps), abs=1e-6)


def test_results_do_not_depend_on_threads_or_simd_level():
    g, _, _ = _random_graph(n=3000, e=60_000, seed=4)
    x = np.random.default_rng(5).standard_normal((3000, 32)).astype(np.float32)
    before = nesy.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            nesy.set_num_threads(threads)
            for level in _core.simd_levels():
                w = g.edge_weight.astype(np.float32)
                out, _ = _core.gnn_aggregate(g.indptr, g.indices, x, "mean", w, simd=level)
                gx, gw = _core.gnn_aggregate_backward(g.indptr, g.indices, g.t_indptr,
                                                      g.t_indices, g.perm, x, out, "mean", w,
                                                      None, True, simd=level)
                results.append((out, gx, gw))
    finally:
        nesy.set_num_threads(before)
    for r in results[1:]:
        for a, b in zip(r, results[0]):
            assert np.array_equal(a, b)


def test_graph_constructors_and_transforms():
    A = sp.random(20, 20, density=0.2, random_state=0, format="csr")
    g = Graph.from_scipy(A)
    x = np.random.default_rng(0).standard_normal((20, 4))
    np.testing.assert_allclose(aggregate(g, x)[0], A @ x, rtol=1e-12, atol=1e-12)
    e = Graph.from_edge_list([(0, 1), (1, 2), (2, 0)], num_nodes=4)
    assert e.num_edges == 3 and list(e.in_degree()) == [1, 1, 1, 0]
    u = e.to_undirected()
    assert u.num_edges == 6 and list(u.in_degree()) == [2, 2, 2, 0]
    # GCN normalisation against the dense formula D^-1/2 (A + I) D^-1/2.
    n = g.gcn_norm()
    dense = (A + sp.eye(20)).toarray()
    dinv = 1 / np.sqrt(dense.sum(1))
    np.testing.assert_allclose(aggregate(n, x)[0], (dinv[:, None] * dense * dinv) @ x,
                               rtol=1e-12, atol=1e-12)
    r = g.row_norm()
    deg = A.sum(1).A1
    want = np.where(deg[:, None] > 0, (A @ x) / np.where(deg > 0, deg, 1)[:, None], 0)
    np.testing.assert_allclose(aggregate(r, x)[0], want, rtol=1e-12, atol=1e-12)
    empty = Graph(np.zeros((2, 0), np.int64), num_nodes=5)
    assert np.all(aggregate(empty, np.ones((5, 2)), "max")[0] == 0)
    assert Graph(np.zeros((2, 0), np.int64)).num_nodes == 0


@pytest.mark.parametrize("edge_index,kwargs,exc,needle", [
    (np.array([[0, 1], [1, 5]]), dict(num_nodes=3), IndexError, "edge_index"),
    (np.array([[0, -1], [1, 2]]), {}, ValueError, "edge_index"),
    (np.array([[0.0, 1.0], [1.0, 2.0]]), {}, TypeError, "edge_index"),
    (np.array([[0, 1, 2]]), {}, ValueError, "edge_index"),
    (np.array([[0, 1], [1, 2]]), dict(edge_weight=[1.0, np.nan]), ValueError, "edge_weight"),
    (np.array([[0, 1], [1, 2]]), dict(edge_weight=[1.0]), ValueError, "edge_weight"),
])
def test_bad_graphs_name_the_argument(edge_index, kwargs, exc, needle):
    with pytest.raises(exc, match=needle):
        Graph(edge_index, **kwargs)


def test_bad_features_and_raw_kernel_input():
    g = Graph(np.array([[0, 1], [1, 2]]), num_nodes=3)
    with pytest.raises(ValueError, match="x"):
        aggregate(g, np.ones((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        aggregate(g, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="reduce"):
        aggregate(g, np.ones((3, 2)), "median")
    with pytest.raises(IndexError, match="indices"):
        _core.gnn_aggregate(np.array([0, 1, 2, 2]), np.array([0, 7]), np.ones((3, 2)))
    with pytest.raises(ValueError, match="indptr"):
        _core.gnn_aggregate(np.array([0, 2, 1, 2]), np.array([0, 1]), np.ones((3, 2)))
    with pytest.raises(TypeError, match="indices"):
        _core.gnn_aggregate(np.array([0, 1, 2, 2]), np.array([0.0, 1.0]), np.ones((3, 2)))


@pytest.mark.parametrize("f", [1, 8, 16, 24, 40, 77])
def test_every_feature_tiling_matches_scipy(f):
    """Features run in register tiles of 32, 16 and 8 and a remainder: every split is checked."""
    g, ei, w = _random_graph(n=80, e=600, seed=f)
    x = np.random.default_rng(f).standard_normal((80, f)).astype(np.float32)
    for reduce in ("sum", "mean"):
        out, _ = aggregate(g, x, reduce)
        want = _reference(ei, w, 80, x.astype(np.float64), reduce)
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
