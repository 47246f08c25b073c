"""nesy.gnn: Graph construction, neighbourhood aggregation (shared and per-head weights), SDDMM
and edge softmax against SciPy/NumPy references, finite differences, thread-count and SIMD
invariance, and bad input.

Mirrors python/nesy/gnn/ and rust/core/src/gnn/.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import nesy
from nesy import _core
from nesy.gnn import (
    Graph,
    aggregate,
    aggregate_backward,
    edge_softmax,
    edge_softmax_backward,
    sddmm,
    sddmm_backward,
)


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


@pytest.mark.parametrize("reduce", ["add", "mean", "max", "min"])
def test_to_undirected_merges_the_weights_of_every_copy(reduce):
    """As PyG's to_undirected(reduce=...): every copy of s -> d, given or the reverse of a
    d -> s, is merged into one edge per direction, with the same weight both ways."""
    rng = np.random.default_rng(1)
    ei = rng.integers(0, 6, (2, 30))  # duplicates, reverses and self-loops
    w = rng.uniform(0.5, 2.0, 30)
    u = Graph(ei, 6, w).to_undirected(reduce)
    copies: dict = {}
    for (s_, d_), wi in zip(ei.T, w):
        copies.setdefault((s_, d_), []).append(wi)
        copies.setdefault((d_, s_), []).append(wi)
    op = {"add": np.sum, "mean": np.mean, "max": np.max, "min": np.min}[reduce]
    got = {(int(a), int(b)): wi for (a, b), wi in zip(u.edge_index().T, u.edge_weight)}
    assert got.keys() == copies.keys() and u.num_edges == len(copies)
    for key, ws in copies.items():
        assert got[key] == pytest.approx(op(ws), rel=1e-12)
        assert got[key] == got[key[::-1]]
    with pytest.raises(ValueError, match="reduce"):
        Graph(ei, 6, w).to_undirected("sum")


def test_to_undirected_leaves_an_undirected_graph_as_it_is_by_default():
    sym = Graph(np.array([[0, 1, 2, 2], [1, 0, 2, 0]]), 3,
                np.array([2.0, 2.0, 5.0, 1.0], np.float32))
    once = sym.to_undirected()
    twice = once.to_undirected()
    assert once.edge_weight.dtype == np.float32
    for g in (once, twice):
        got = {(int(a), int(b)): float(w) for (a, b), w in zip(g.edge_index().T, g.edge_weight)}
        assert got == {(0, 1): 2.0, (1, 0): 2.0, (2, 2): 5.0, (2, 0): 1.0, (0, 2): 1.0}
    assert sym.to_undirected("add").edge_weight.max() == 10.0  # PyG's default doubles


def test_graph_constructors_and_transforms():
    A = sp.random(20, 20, density=0.2, random_state=0, format="csr")
    g = Graph.from_scipy(A)
    x = np.random.default_rng(0).standard_normal((20, 4))
    np.testing.assert_allclose(aggregate(g, x)[0], A @ x, rtol=1e-12, atol=1e-12)
    e = Graph.from_edge_list([(0, 1), (1, 2), (2, 0)], num_nodes=4)
    assert e.num_edges == 3 and list(e.in_degree()) == [1, 1, 1, 0]
    u = e.to_undirected()
    assert u.num_edges == 6 and list(u.in_degree()) == [2, 2, 2, 0]
    # GCN normalisation against the dense formula D^-1/2 (A + I) D^-1/2, where a node that
    # already has a loop keeps its weight (A has some: PyG's add_remaining_self_loops).
    n = g.gcn_norm()
    dense = A.toarray()
    assert 0 < np.count_nonzero(np.diag(dense)) < 20
    np.fill_diagonal(dense, np.where(np.diag(dense) != 0, np.diag(dense), 1.0))
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


# ---------------------------------------------------------------- attention: SDDMM, edge softmax
def _numeric_grad(loss, x, eps=1e-6):
    """Central differences of a scalar ``loss`` at every entry of ``x`` (float64)."""
    out = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        a, b = x.copy(), x.copy()
        a[k] += eps
        b[k] -= eps
        out[k] = (loss(a) - loss(b)) / (2 * eps)
    return out


def _csr_src_dst(g):
    ei = g.edge_index()
    return ei[0], ei[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_per_head_weights_match_reference(dtype, reduce):
    g, _, _ = _random_graph(seed=11)
    heads, fh = 3, 4
    rng = np.random.default_rng(12)
    x = rng.standard_normal((60, heads * fh)).astype(dtype)
    w = (rng.random((g.num_edges, heads)) + 0.5).astype(dtype)
    out, arg = aggregate(g, x, reduce, edge_weight=w)
    src, dst = _csr_src_dst(g)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for h in range(heads):
        cols = slice(h * fh, (h + 1) * fh)
        want = _reference(np.vstack([src, dst]), w[:, h].astype(np.float64), 60,
                          x[:, cols].astype(np.float64), reduce)
        np.testing.assert_allclose(out[:, cols], want, rtol=tol, atol=tol)
    gx, gw = aggregate_backward(g, x, np.ones_like(out), reduce, arg=arg, weight_grad=True,
                                edge_weight=w)
    assert gx.shape == x.shape and gw.shape == (g.num_edges, heads) and gw.dtype == dtype


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_per_head_weight_gradients_match_finite_differences(reduce):
    g, _, _ = _random_graph(n=12, e=40, seed=13)
    heads, fh = 2, 3
    rng = np.random.default_rng(14)
    x = rng.standard_normal((12, heads * fh))
    w = rng.random((g.num_edges, heads)) + 0.5
    up = rng.standard_normal((12, heads * fh))
    _, arg = aggregate(g, x, reduce, edge_weight=w)
    gx, gw = aggregate_backward(g, x, up, reduce, arg=arg, weight_grad=True, edge_weight=w)
    np.testing.assert_allclose(
        gx, _numeric_grad(lambda a: np.sum(aggregate(g, a, reduce, edge_weight=w)[0] * up), x),
        atol=1e-6)
    np.testing.assert_allclose(
        gw, _numeric_grad(lambda a: np.sum(aggregate(g, x, reduce, edge_weight=a)[0] * up), w),
        atol=1e-6)


def _sddmm_reference(g, u, v, op, heads):
    src, dst = _csr_src_dst(g)
    if op == "add":
        return u[src] + v[dst]
    n = u.shape[1] // heads
    return np.einsum("ehf,ehf->eh", u[src].reshape(-1, heads, n), v[dst].reshape(-1, heads, n))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op,heads,width", [("add", 1, 1), ("add", 8, 8), ("dot", 1, 16),
                                            ("dot", 4, 36), ("dot", 3, 7 * 3)])
def test_sddmm_matches_numpy(dtype, op, heads, width):
    g, _, _ = _random_graph(seed=15)
    rng = np.random.default_rng(16)
    u = rng.standard_normal((60, width)).astype(dtype)
    v = rng.standard_normal((60, width)).astype(dtype)
    e = sddmm(g, u, v, op, heads)
    assert e.shape == (g.num_edges, heads) and e.dtype == dtype
    want = _sddmm_reference(g, u.astype(np.float64), v.astype(np.float64), op, heads)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(e, want, rtol=tol, atol=tol)
    up = rng.standard_normal(e.shape).astype(dtype)
    gu, gv = sddmm_backward(g, u, v, up, op, heads)
    # The adjoint identity <up, J (du, dv)> for a random direction, against NumPy.
    src, dst = _csr_src_dst(g)
    if op == "add":
        want_u = np.zeros((60, heads))
        want_v = np.zeros((60, heads))
        np.add.at(want_u, src, up)
        np.add.at(want_v, dst, up)
    else:
        n = width // heads
        upr = up.astype(np.float64)[:, :, None]
        want_u = np.zeros((60, heads, n))
        want_v = np.zeros((60, heads, n))
        np.add.at(want_u, src, upr * v.astype(np.float64)[dst].reshape(-1, heads, n))
        np.add.at(want_v, dst, upr * u.astype(np.float64)[src].reshape(-1, heads, n))
        want_u, want_v = want_u.reshape(60, width), want_v.reshape(60, width)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(gu, want_u, rtol=tol, atol=tol)
    np.testing.assert_allclose(gv, want_v, rtol=tol, atol=tol)


@pytest.mark.parametrize("op,heads,width", [("add", 2, 2), ("dot", 2, 6)])
def test_sddmm_gradients_match_finite_differences(op, heads, width):
    g, _, _ = _random_graph(n=10, e=30, seed=17)
    rng = np.random.default_rng(18)
    u, v = rng.standard_normal((2, 10, width))
    up = rng.standard_normal((g.num_edges, heads))
    gu, gv = sddmm_backward(g, u, v, up, op, heads)
    np.testing.assert_allclose(
        gu, _numeric_grad(lambda a: np.sum(sddmm(g, a, v, op, heads) * up), u), atol=1e-6)
    np.testing.assert_allclose(
        gv, _numeric_grad(lambda a: np.sum(sddmm(g, u, a, op, heads) * up), v), atol=1e-6)


def _softmax_reference(g, s):
    s2 = s.reshape(g.num_edges, -1).astype(np.float64)
    _, dst = _csr_src_dst(g)
    out = np.zeros_like(s2)
    for d in np.unique(dst):
        sel = dst == d
        z = np.exp(s2[sel] - s2[sel].max(axis=0))
        out[sel] = z / z.sum(axis=0)
    return out.reshape(s.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", ["flat", "heads"])
def test_edge_softmax_matches_numpy_and_sums_to_one(dtype, shape):
    g, _, _ = _random_graph(seed=19)
    rng = np.random.default_rng(20)
    size = (g.num_edges,) if shape == "flat" else (g.num_edges, 4)
    s = (50 * rng.standard_normal(size)).astype(dtype)  # large: needs the max shift
    alpha = edge_softmax(g, s)
    assert alpha.shape == s.shape and alpha.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(alpha, _softmax_reference(g, s), rtol=tol, atol=tol)
    sums = aggregate(g, np.ones((60, 1), dtype), "sum",
                     edge_weight=alpha.reshape(g.num_edges, -1)[:, :1].copy())[0]
    has_in = g.in_degree() > 0
    np.testing.assert_allclose(sums[has_in], 1.0, rtol=tol)
    assert np.all(sums[~has_in] == 0)  # node 3: no in-edges, no entries
    up = rng.standard_normal(size).astype(dtype)
    gs = edge_softmax_backward(g, alpha, up)
    a64 = alpha.astype(np.float64).reshape(g.num_edges, -1)
    u64 = up.astype(np.float64).reshape(g.num_edges, -1)
    row_dot = aggregate(g, np.ones((60, 1)), "sum", edge_weight=(a64 * u64)[:, :1].copy())[0]
    _, dst = _csr_src_dst(g)
    want = a64[:, :1] * (u64[:, :1] - row_dot[dst])
    np.testing.assert_allclose(gs.reshape(g.num_edges, -1)[:, :1], want, rtol=1e-4, atol=tol)


def test_edge_softmax_gradient_matches_finite_differences():
    g, _, _ = _random_graph(n=10, e=40, seed=21)
    rng = np.random.default_rng(22)
    s = rng.standard_normal((g.num_edges, 3))
    up = rng.standard_normal(s.shape)
    gs = edge_softmax_backward(g, edge_softmax(g, s), up)
    np.testing.assert_allclose(gs, _numeric_grad(lambda a: np.sum(edge_softmax(g, a) * up), s),
                               atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_attention_kernels_do_not_depend_on_threads_or_simd_level(dtype):
    g, _, _ = _random_graph(n=3000, e=60_000, seed=23)
    rng = np.random.default_rng(24)
    heads = 4
    u = rng.standard_normal((3000, heads * 8)).astype(dtype)
    v = rng.standard_normal((3000, heads * 8)).astype(dtype)
    before = nesy.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            nesy.set_num_threads(threads)
            for level in _core.simd_levels():
                e = _core.gnn_sddmm(g.indptr, g.indices, u, v, "dot", heads, simd=level)
                alpha = _core.gnn_edge_softmax(g.indptr, g.indices, e, simd=level)
                gs = _core.gnn_edge_softmax_backward(g.indptr, g.indices, alpha, e, simd=level)
                gu, gv = _core.gnn_sddmm_backward(g.indptr, g.indices, g.t_indptr, g.t_indices,
                                                  g.perm, u, v, gs, "dot", heads, simd=level)
                out, _ = _core.gnn_aggregate(g.indptr, g.indices, u, "sum", alpha, simd=level)
                results.append((e, alpha, gs, gu, gv, out))
    finally:
        nesy.set_num_threads(before)
    for r in results[1:]:
        for a, b in zip(r, results[0]):
            assert np.array_equal(a, b)


def test_attention_on_empty_graph_and_isolated_nodes():
    g = Graph(np.zeros((2, 0), np.int64), 4)
    u = np.ones((4, 2))
    assert sddmm(g, u, u, "add").shape == (0, 2)
    assert edge_softmax(g, np.zeros((0, 2))).shape == (0, 2)
    gu, gv = sddmm_backward(g, u, u, np.zeros((0, 2)), "add")
    assert np.all(gu == 0) and np.all(gv == 0)
    out, _ = aggregate(g, u, "sum", edge_weight=np.zeros((0, 2)))
    assert np.all(out == 0)


@pytest.mark.parametrize("call,exc,needle", [
    (lambda g, u: sddmm(g, u, u, "mul"), ValueError, "op"),
    (lambda g, u: sddmm(g, u[:5], u[:5]), ValueError, "u:"),
    (lambda g, u: sddmm(g, u, u[:, :2]), ValueError, "v:"),
    (lambda g, u: sddmm(g, u, u, "dot", heads=5), ValueError, "heads"),
    (lambda g, u: sddmm(g, u, u, "add", heads=2), ValueError, "per node and head"),
    (lambda g, u: sddmm(g, u.astype(np.int64), u), TypeError, "u:"),
    (lambda g, u: sddmm(g, np.where(u > 0, np.nan, u), u), ValueError, "NaN"),
    (lambda g, u: sddmm_backward(g, u, u, np.ones((3, 1))), ValueError, "grad"),
    (lambda g, u: edge_softmax(g, np.ones(3)), ValueError, "scores"),
    (lambda g, u: edge_softmax(g, np.full(g.num_edges, np.inf)), ValueError, "scores"),
    (lambda g, u: edge_softmax(g, np.ones(g.num_edges, np.int64)), TypeError, "scores"),
    (lambda g, u: edge_softmax_backward(g, np.ones(g.num_edges), np.ones((g.num_edges, 2))),
     ValueError, "grad"),
    (lambda g, u: aggregate(g, u, edge_weight=np.ones((g.num_edges, 4))), ValueError, "heads"),
    (lambda g, u: aggregate(g, u, edge_weight=np.ones(g.num_edges + 1)), ValueError,
     "edge_weight"),
])
def test_attention_bad_input_names_the_argument(call, exc, needle):
    g, _, _ = _random_graph(n=10, e=30, seed=25)
    u = np.random.default_rng(26).standard_normal((10, 6))
    with pytest.raises(exc, match=needle):
        call(g, u)
