"""nesy.gnn: Graph construction, neighbourhood aggregation (shared and per-head weights), SDDMM
and edge softmax against SciPy/NumPy references, finite differences, thread-count and SIMD
invariance, and bad input.

Mirrors python/nesy/gnn/ and rust/core/src/gnn/.
"""

from __future__ import annotations

import re

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


def _backward_reference(src, dst, n, x, w, up, reduce):
    """``(grad_x, grad_w)`` of ``sum(aggregate(x) * up)`` by a loop over destination nodes
    (float64). ``w`` has shape ``(n_edges, heads)``; head ``h`` weighs its own group of
    columns; max/min route the gradient to the edge that wins each column."""
    heads = w.shape[1]
    fh = x.shape[1] // heads
    wf = np.repeat(w, fh, axis=1)  # (n_edges, n_features): the weight of every column
    gx = np.zeros_like(x)
    gwf = np.zeros_like(wf)
    cols = np.arange(x.shape[1])
    for d in range(n):
        edges = np.flatnonzero(dst == d)
        if edges.size == 0:
            continue
        vals = wf[edges] * x[src[edges]]
        if reduce in ("sum", "mean"):
            dvals = np.tile(up[d] / (edges.size if reduce == "mean" else 1), (edges.size, 1))
        else:
            win = vals.argmax(0) if reduce == "max" else vals.argmin(0)
            dvals = np.zeros_like(vals)
            dvals[win, cols] = up[d]
        np.add.at(gx, src[edges], dvals * wf[edges])
        gwf[edges] += dvals * x[src[edges]]
    return gx, gwf.reshape(-1, heads, fh).sum(axis=2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_backward_matches_scipy_and_finite_differences(dtype, reduce):
    """Both dtypes against the NumPy reference (and SciPy for sum); float32 against the float64
    backward on the same (float32-representable) inputs; float64 against finite differences."""
    g, ei, w = _random_graph(n=15, e=50, seed=2)
    rng = np.random.default_rng(3)
    x64 = rng.standard_normal((15, 3)).astype(np.float32).astype(np.float64)
    up64 = rng.standard_normal((15, 3)).astype(np.float32).astype(np.float64)
    x, up = x64.astype(dtype), up64.astype(dtype)
    out, arg = aggregate(g, x, reduce)
    gx, gw = aggregate_backward(g, x, up, reduce, arg=arg, weight_grad=True)
    assert gx.dtype == gw.dtype == dtype and gw.shape == (g.num_edges,)
    src, dst = _csr_src_dst(g)
    want_x, want_w = _backward_reference(src, dst, 15, x64, g.edge_weight[:, None], up64,
                                         reduce)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gx, want_x, rtol=tol, atol=tol)
    np.testing.assert_allclose(gw, want_w[:, 0], rtol=tol, atol=tol)
    if reduce == "sum":
        np.testing.assert_allclose(gx, _dense(ei, w, 15).T @ up64, rtol=tol, atol=tol)
    if dtype == np.float32:
        _, arg64 = aggregate(g, x64, reduce)
        gx64, gw64 = aggregate_backward(g, x64, up64, reduce, arg=arg64, weight_grad=True)
        np.testing.assert_allclose(gx, gx64, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gw, gw64, rtol=1e-5, atol=1e-6)
        return
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


def _at_every_thread_count_and_simd_level(run):
    """``run(level)`` at 1 and 2 threads and every SIMD level; the thread count is restored."""
    before = nesy.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            nesy.set_num_threads(threads)
            for level in _core.simd_levels():
                results.append(run(level))
    finally:
        nesy.set_num_threads(before)
    return results


def _assert_all_identical(results):
    """Every run's arrays bitwise equal to the first run's (``None`` where it gave ``None``)."""
    for r in results[1:]:
        for a, b in zip(r, results[0]):
            assert (a is None and b is None) or np.array_equal(a, b)


def test_results_do_not_depend_on_threads_or_simd_level():
    g, _, _ = _random_graph(n=3000, e=60_000, seed=4)
    x = np.random.default_rng(5).standard_normal((3000, 32)).astype(np.float32)
    w = g.edge_weight.astype(np.float32)

    def run(level):
        out, _ = _core.gnn_aggregate(g.indptr, g.indices, x, "mean", w, simd=level)
        gx, gw = _core.gnn_aggregate_backward(g.indptr, g.indices, g.t_indptr, g.t_indices,
                                              g.perm, x, out, "mean", w, None, True, simd=level)
        return out, gx, gw

    _assert_all_identical(_at_every_thread_count_and_simd_level(run))


@pytest.fixture(scope="module")
def big_graph():
    """20k nodes and 200k weighted edges (duplicates, a node without in-edges): the kernels below
    get edges x features well above MIN_PARALLEL_WORK (1 << 15) and cut it into many blocks."""
    return _random_graph(n=20_000, e=200_000, seed=30)[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("weights", ["none", "shared", "heads"])
def test_aggregation_at_scale_does_not_depend_on_threads_or_simd_level(big_graph, dtype, reduce,
                                                                       weights):
    """Forward and backward (with the weight gradient) bitwise equal for 1 and 2 threads."""
    g = big_graph
    rng = np.random.default_rng(31)
    x = rng.standard_normal((g.num_nodes, 16)).astype(dtype)
    up = rng.standard_normal(x.shape).astype(dtype)
    w = {"none": None, "shared": g.edge_weight.astype(dtype),
         "heads": (rng.random((g.num_edges, 4)) + 0.5).astype(dtype)}[weights]

    def run(level):
        out, arg = _core.gnn_aggregate(g.indptr, g.indices, x, reduce, w, simd=level)
        gx, gw = _core.gnn_aggregate_backward(g.indptr, g.indices, g.t_indptr, g.t_indices,
                                              g.perm, x, up, reduce, w, arg, True, simd=level)
        return out, arg, gx, gw

    results = _at_every_thread_count_and_simd_level(run)
    out, arg, gx, gw = results[0]
    assert out.dtype == gx.dtype == gw.dtype == dtype
    assert gw.shape == ((g.num_edges, 4) if weights == "heads" else (g.num_edges,))
    assert (arg is not None) == (reduce in ("max", "min"))
    if reduce == "sum" and weights != "heads":  # not a run of zeros: the sum against SciPy
        a = sp.csr_matrix((np.ones(g.num_edges) if w is None else w.astype(np.float64),
                           g.indices, g.indptr), shape=(g.num_nodes, g.num_nodes))
        tol = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(out, a @ x.astype(np.float64), rtol=tol, atol=tol)
        np.testing.assert_allclose(gx, a.T @ up.astype(np.float64), rtol=tol, atol=tol)
    _assert_all_identical(results)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_additive_attention_at_scale_does_not_depend_on_threads_or_simd_level(big_graph,
                                                                              dtype):
    """SDDMM "add" (GAT's scores) and edge softmax over flat and per-head scores, forward and
    backward, bitwise equal for 1 and 2 threads (the "dot" form: test_attention_kernels_...)."""
    g = big_graph
    rng = np.random.default_rng(32)
    heads = 8
    u = rng.standard_normal((g.num_nodes, heads)).astype(dtype)
    v = rng.standard_normal((g.num_nodes, heads)).astype(dtype)
    up = rng.standard_normal((g.num_edges, heads)).astype(dtype)
    flat = np.ascontiguousarray(up[:, 0] * 4)

    def run(level):
        e = _core.gnn_sddmm(g.indptr, g.indices, u, v, "add", heads, simd=level)
        gu, gv = _core.gnn_sddmm_backward(g.indptr, g.indices, g.t_indptr, g.t_indices, g.perm,
                                          u, v, up, "add", heads, simd=level)
        alpha = _core.gnn_edge_softmax(g.indptr, g.indices, e, simd=level)
        gs = _core.gnn_edge_softmax_backward(g.indptr, g.indices, alpha, up, simd=level)
        alpha1 = _core.gnn_edge_softmax(g.indptr, g.indices, flat, simd=level)
        gs1 = _core.gnn_edge_softmax_backward(g.indptr, g.indices, alpha1, flat, simd=level)
        return e, gu, gv, alpha, gs, alpha1, gs1

    results = _at_every_thread_count_and_simd_level(run)
    e, gu, gv, alpha, gs, alpha1, gs1 = results[0]
    src, dst = _csr_src_dst(g)
    np.testing.assert_array_equal(e, u[src] + v[dst])  # one rounding either way
    assert alpha.shape == gs.shape == (g.num_edges, heads) and alpha1.shape == (g.num_edges,)
    assert np.all(alpha > 0) and np.all(alpha1 > 0) and np.any(gs1 != 0)
    _assert_all_identical(results)


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


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.uint64])
@pytest.mark.parametrize("n,e", [(0, 0), (1, 5), (7, 0), (60, 400), (3000, 20000)])
def test_graph_arrays_are_the_stable_sorts_of_the_edge_list(n, e, dtype):
    # The CSR arrays (two counting sorts in Rust) against their definition by NumPy's stable
    # argsort, with duplicates, self-loops and isolated nodes, from a non-contiguous edge index.
    rng = np.random.default_rng(e)
    pairs = rng.integers(0, max(n, 1), (e, 2)).astype(dtype)
    if e:
        pairs[: e // 10] = pairs[0]  # duplicates
    g = Graph(pairs.T, n)
    src, dst = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    order = np.argsort(dst, kind="stable")
    indices = src[order]
    perm = np.argsort(indices, kind="stable")
    want = dict(
        indptr=np.r_[0, np.cumsum(np.bincount(dst, minlength=n))], order=order, indices=indices,
        t_indptr=np.r_[0, np.cumsum(np.bincount(indices, minlength=n))], perm=perm,
        t_indices=dst[order][perm])
    for name, a in want.items():
        got = getattr(g, name)
        assert got.dtype == np.int64 and got.flags.c_contiguous, name
        np.testing.assert_array_equal(got, a, err_msg=name)


@pytest.mark.parametrize("src,dst,n,exc,needle", [
    ([0, 3], [1, 0], 3, IndexError, "edge_index: index 3 is out of range for size 3"),
    ([0, 1], [-1, 0], 3, IndexError, "edge_index: index -1"),
    ([0, 1], [1], 3, ValueError, "edge_index: 2 sources but 1 destinations"),
])
def test_csr_build_kernel_refuses_bad_edges(src, dst, n, exc, needle):
    with pytest.raises(exc, match=needle):
        _core.gnn_build_csr(np.array(src, np.int64), np.array(dst, np.int64), n)
    with pytest.raises(TypeError, match="src: expected a 1-D int64"):
        _core.gnn_build_csr(np.array(src, np.int32), np.array(dst, np.int64), n)


@pytest.mark.parametrize("n", [2**63, 2**64 - 1])
def test_csr_build_kernel_refuses_a_node_count_beyond_int64(n):
    # num_nodes + 1 overflowed into a Rust panic (PanicException escapes `except Exception`)
    empty = np.zeros(0, np.int64)
    with pytest.raises(ValueError, match="^num_nodes: .* cannot be indexed by int64 ids"):
        _core.gnn_build_csr(empty, empty, n)


@pytest.mark.parametrize("edge_index,kwargs,exc,needle", [
    (np.array([[0, 1], [1, 5]]), dict(num_nodes=3), IndexError, "edge_index"),
    (np.array([[0, -1], [1, 2]]), {}, ValueError, "edge_index"),
    (np.array([[0.0, 1.0], [1.0, 2.0]]), {}, TypeError, "edge_index"),
    (np.array([[0, 1, 2]]), {}, ValueError, "edge_index"),
    (np.array([[0, 1], [1, 2]]), dict(edge_weight=[1.0, np.nan]), ValueError, "edge_weight"),
    (np.array([[0, 1], [1, 2]]), dict(edge_weight=[1.0]), ValueError, "edge_weight"),
    (np.array([[0, 1], [1, 2]]), dict(num_nodes="a"), TypeError, "num_nodes"),
    (np.array([[0, 1], [1, 2]]), dict(num_nodes=3.5), TypeError, "num_nodes"),
    (np.array([[0, 1], [1, 2]]), dict(num_nodes=-1), ValueError, "num_nodes"),
    # checked before the cast to int64, so the message shows the value given, not a wrap
    (np.array([[0], [2**63]], np.uint64), {}, IndexError, "edge_index: node index "
     "9223372036854775808"),
])
def test_bad_graphs_name_the_argument(edge_index, kwargs, exc, needle):
    with pytest.raises(exc, match=needle):
        Graph(edge_index, **kwargs)


def test_from_scipy_rejects_a_dense_array():
    with pytest.raises(TypeError, match="matrix: expected a SciPy sparse matrix"):
        Graph.from_scipy(np.eye(3))


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_aggregate_writes_into_a_given_out(dtype, reduce):
    """``out=``: every entry overwritten (NaN before), the same bits as a fresh output, ``out``
    itself returned, reusable; unaligned and aligned outputs alike (64 features: streamed
    tiles when aligned)."""
    g, _, _ = _random_graph(n=300, e=4000, seed=9)
    x = np.random.default_rng(9).standard_normal((300, 64)).astype(dtype)
    want, want_arg = aggregate(g, x, reduce)
    buf = np.full(300 * 64 + 3, np.nan, dtype)
    for start in (0, 1, 2, 3):  # one of these offsets puts the rows on cache lines
        out = buf[start:start + 300 * 64].reshape(300, 64)
        out[...] = np.nan
        for _ in range(2):
            got, arg = aggregate(g, x, reduce, out=out)
            assert got is out
            np.testing.assert_array_equal(got, want)
            assert (arg is None) == (want_arg is None)
            if arg is not None:
                np.testing.assert_array_equal(arg, want_arg)


def test_check_finite_false_skips_only_the_nan_test():
    """``check_finite=False``: the same result for finite x, and a NaN feature propagates to
    exactly the nodes it reaches (as the NumPy sum) instead of raising; the same switch on the
    backward."""
    g, ei, w = _random_graph(n=50, e=300, seed=4)
    x = np.random.default_rng(4).standard_normal((50, 16))
    np.testing.assert_array_equal(aggregate(g, x, check_finite=False)[0], aggregate(g, x)[0])
    x[7, 3] = np.nan
    with pytest.raises(ValueError, match="x: contains NaN"):
        aggregate(g, x)
    out, _ = aggregate(g, x, check_finite=False)
    want = _reference(ei, w, 50, x, "sum")
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
    assert np.isnan(out).any()
    np.testing.assert_allclose(out[~np.isnan(want)], want[~np.isnan(want)], rtol=1e-12)
    # The backward likewise: refused by default, computed without the test (its sum-gradient
    # does not read x at all, so it is the same as for a finite x).
    up = np.ones((50, 16))
    with pytest.raises(ValueError, match="x: contains NaN"):
        aggregate_backward(g, x, up)
    gx, _ = aggregate_backward(g, x, up, check_finite=False)
    np.testing.assert_array_equal(gx, aggregate_backward(g, np.zeros_like(x), up)[0])
    # max and min, as np.max: a NaN from any in-edge, not only the first, gives NaN
    for reduce in ("max", "min"):
        out, _ = aggregate(g, x, reduce=reduce, check_finite=False)
        want = _reference(ei, w, 50, x, reduce)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
        assert np.isnan(out).any()


def test_add_self_loops_weighs_the_loops_fill_value_on_an_unweighted_graph():
    g = Graph(np.array([[0, 1], [1, 2]]), 3)
    x = np.array([[1.0], [10.0], [100.0]])
    looped = g.add_self_loops(2.0)  # fill_value was dropped without edge weights
    np.testing.assert_array_equal(aggregate(looped, x)[0][:, 0], [2.0, 21.0, 210.0])
    np.testing.assert_array_equal(looped.edge_weight,
                                  g.add_remaining_self_loops(2.0).edge_weight)
    assert g.add_self_loops().edge_weight is None  # weight 1: still unweighted


def test_a_ragged_edge_index_is_named():
    with pytest.raises(ValueError, match=r"edge_index: expected shape \(2, n_edges\), got rows "
                                         r"of different lengths"):
        Graph([[0, 1, 2], [1, 2]])


def test_aggregate_refuses_a_bad_out():
    g, _, _ = _random_graph(n=30, e=200, seed=2)
    x = np.random.default_rng(2).standard_normal((30, 8))
    with pytest.raises(ValueError, match="out: expected shape \\(30, 8\\)"):
        aggregate(g, x, out=np.zeros((30, 9)))
    with pytest.raises(TypeError, match="out"):
        aggregate(g, x, out=np.zeros((30, 8), np.float32))
    with pytest.raises(ValueError, match="out"):
        aggregate(g, x, out=np.zeros((8, 30)).T)
    ro = np.zeros((30, 8))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out.*read-only"):
        aggregate(g, x, out=ro)
    # The output may not share memory with an input: x itself, or a view of it.
    for alias in (x, x[:, :]):
        before = x.copy()
        with pytest.raises(ValueError, match="out"):
            aggregate(g, x, out=alias)
        np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("f", [1, 8, 16, 24, 40, 64, 77, 136, 256, 300, 520])
def test_every_feature_tiling_matches_scipy(f, dtype):
    """Features run in register tiles (float32: 256, 128, 64, 32, 16, 8; float64: 32, 16, 8) and
    a remainder, each over a block's edges in one pass: every split is checked against the
    reference, with weights shared and per head, and bitwise at every thread count and SIMD
    level (blocks of many rows and edges at the wide tiles). Tiles of whole cache lines of at
    least 256 bytes in rows of whole lines are streamed to memory (float32 at 64 and 256
    features, float64 at 40): the output array is aligned for it."""
    g, ei, w = _random_graph(n=80, e=600 if f < 100 else 6000, seed=f)
    rng = np.random.default_rng(f)
    x = rng.standard_normal((80, f)).astype(dtype)
    heads = 4 if f % 4 == 0 else 1
    wh = rng.random((ei.shape[1], heads)) + 0.5
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for reduce in ("sum", "mean"):
        out, _ = aggregate(g, x, reduce)
        assert out.ctypes.data % 64 == 0 and out.flags.c_contiguous and out.shape == (80, f)
        want = _reference(ei, w, 80, x.astype(np.float64), reduce)
        np.testing.assert_allclose(out, want, rtol=tol, atol=tol)
        # Per-head weights: head h scales its own f / heads columns.
        want_h = np.hstack([_reference(ei, wh[:, h], 80, x.astype(np.float64)[:, cols], reduce)
                            for h, cols in enumerate(np.split(np.arange(f), heads))])

        w_csr = wh.astype(dtype)[_edge_order(ei)]

        def run(level, reduce=reduce, w_csr=w_csr):
            return _core.gnn_aggregate(g.indptr, g.indices, x, reduce, w_csr, simd=level)[:1]

        results = _at_every_thread_count_and_simd_level(run)
        np.testing.assert_allclose(results[0][0], want_h, rtol=tol, atol=tol)
        _assert_all_identical(results)


def _edge_order(ei):
    """Indices that put per-edge arrays of the edge list ``ei`` into its graph's CSR edge order
    (a stable sort by destination)."""
    return np.lexsort((np.arange(ei.shape[1]), ei[1]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("f", [3, 16, 64, 300])
def test_gather_sum_limit_kernel_sums_every_gathered_row(f, dtype):
    """The benchmark's gather limit reads every edge's source row: the column sums of the sum
    aggregation, the same bits at every thread count and SIMD level; bad input is refused."""
    g, ei, _ = _random_graph(n=500, e=40_000, seed=f, weighted=False)
    x = np.random.default_rng(f).standard_normal((500, f)).astype(dtype)
    results = _at_every_thread_count_and_simd_level(
        lambda level: (_core.gnn_gather_sum(g.indptr, g.indices, x, simd=level),))
    _assert_all_identical(results)
    got = results[0][0]
    assert got.dtype == dtype and got.shape == (f,)
    np.testing.assert_allclose(got, x.astype(np.float64)[ei[0]].sum(0), rtol=1e-4, atol=1e-2)
    bad = g.indices.copy()
    bad[7] = 500
    with pytest.raises(IndexError, match=r"indices\[7\]"):
        _core.gnn_gather_sum(g.indptr, bad, x)
    with pytest.raises(ValueError, match="x"):
        _core.gnn_gather_sum(g.indptr, g.indices, x.ravel())


@pytest.mark.parametrize("f, offset", [(3, 0), (16, 0), (16, 16), (64, 0), (64, 16), (128, 16),
                                       (200, 0)])
@pytest.mark.parametrize("at", ["first", "middle", "last"])
@pytest.mark.parametrize("wrong", [500, -1, 2**40])
def test_every_gather_path_names_a_bad_source(f, offset, at, wrong):
    """The sum kernels test each source as they gather it (narrow tiles, register tiles, rows
    past a line at 64 and 128 features): a bad one anywhere in the graph is an IndexError naming
    it, forward, backward and the gather limit, never a read outside ``x``."""
    from nesy._mem import aligned_copy

    g, _, _ = _random_graph(n=500, e=5_000, seed=f, weighted=False)
    x = aligned_copy(np.random.default_rng(f).standard_normal((500, f), dtype=np.float32),
                     offset=offset)
    k = {"first": 0, "middle": g.num_edges // 2, "last": g.num_edges - 1}[at]
    bad = np.array(g.indices)
    bad[k] = wrong
    with pytest.raises(IndexError, match=rf"indices\[{k}\]"):
        _core.gnn_aggregate(g.indptr, bad, x, "mean")
    with pytest.raises(IndexError, match=rf"indices\[{k}\]"):
        _core.gnn_gather_sum(g.indptr, bad, x)
    t_bad = np.array(g.t_indices)
    t_bad[k] = wrong
    with pytest.raises(IndexError, match=rf"transposed\) indices\[{k}\]"):
        _core.gnn_aggregate_backward(g.indptr, g.indices, g.t_indptr, t_bad, g.perm, x, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_features_aggregate_to_empty_rows(dtype):
    """With no features there is nothing to gather: empty results, not an index error, for the
    forward (sum, mean, max), the gather limit, the backward and SDDMM's backward."""
    g, _, w = _random_graph(n=20, e=60, seed=1)
    x = np.zeros((20, 0), dtype)
    for reduce in ("sum", "mean", "max"):
        out, arg = aggregate(g, x, reduce)
        assert out.shape == (20, 0) and out.dtype == dtype
        gx = aggregate_backward(g, x, np.zeros((20, 0), dtype), reduce, arg=arg)[0]
        assert gx.shape == (20, 0)
    assert _core.gnn_gather_sum(g.indptr, g.indices, x).shape == (0,)
    gx, gw = _core.gnn_aggregate_backward(g.indptr, g.indices, g.t_indptr, g.t_indices, g.perm,
                                          x, x, "sum", w.astype(dtype), None, True)
    assert gx.shape == (20, 0) and np.array_equal(gw, np.zeros(g.num_edges, dtype))
    grads = _core.gnn_sddmm_backward(g.indptr, g.indices, g.t_indptr, g.t_indices, g.perm, x,
                                     x, np.ones((g.num_edges, 1), dtype), "dot", 1)
    assert [a.shape for a in grads] == [(20, 0), (20, 0)]


def test_backward_tests_perm_where_it_reads_it():
    """The unweighted sum/mean backward and the max/min backward (a scatter in destination
    order) never read ``perm`` (no pass over it); the weighted sum/mean reorders the weights by
    it and names a bad entry."""
    g, _, w = _random_graph(n=60, e=400, seed=3)
    x = np.random.default_rng(0).standard_normal((60, 4))
    perm = np.array(g.perm)
    perm[5] = g.num_edges
    out, arg = _core.gnn_aggregate(g.indptr, g.indices, x, "max")
    for kwargs in ({}, {"reduce": "max", "arg": arg},
                   {"reduce": "max", "arg": arg, "edge_weight": w}):
        plain = _core.gnn_aggregate_backward(g.indptr, g.indices, g.t_indptr, g.t_indices,
                                             g.perm, x, x, **kwargs)[0]
        np.testing.assert_array_equal(
            _core.gnn_aggregate_backward(g.indptr, g.indices, g.t_indptr, g.t_indices, perm, x,
                                         x, **kwargs)[0], plain)
    with pytest.raises(IndexError, match=r"perm\[5\]"):
        _core.gnn_aggregate_backward(g.indptr, g.indices, g.t_indptr, g.t_indices, perm, x, x,
                                     edge_weight=w)


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
    up = rng.standard_normal(out.shape).astype(dtype)
    gx, gw = aggregate_backward(g, x, up, reduce, arg=arg, weight_grad=True, edge_weight=w)
    assert gx.shape == x.shape and gw.shape == (g.num_edges, heads)
    assert gx.dtype == gw.dtype == dtype
    x64, w64, up64 = x.astype(np.float64), w.astype(np.float64), up.astype(np.float64)
    want_x, want_w = _backward_reference(src, dst, 60, x64, w64, up64, reduce)
    np.testing.assert_allclose(gx, want_x, rtol=tol, atol=tol)
    np.testing.assert_allclose(gw, want_w, rtol=tol, atol=tol)
    if dtype == np.float32:  # the same inputs in float64
        _, arg64 = aggregate(g, x64, reduce, edge_weight=w64)
        gx64, gw64 = aggregate_backward(g, x64, up64, reduce, arg=arg64, weight_grad=True,
                                        edge_weight=w64)
        np.testing.assert_allclose(gx, gx64, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gw, gw64, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
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
    assert gs.shape == s.shape and gs.dtype == dtype
    # alpha * (up - sum over the destination's in-edges of alpha * up), every head, in NumPy.
    a64 = alpha.astype(np.float64).reshape(g.num_edges, -1)
    u64 = up.astype(np.float64).reshape(g.num_edges, -1)
    _, dst = _csr_src_dst(g)
    rd = np.zeros((60, a64.shape[1]))
    np.add.at(rd, dst, a64 * u64)
    want = (a64 * (u64 - rd[dst])).reshape(s.shape)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gs, want, rtol=tol, atol=tol)


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

    def run(level):
        e = _core.gnn_sddmm(g.indptr, g.indices, u, v, "dot", heads, simd=level)
        alpha = _core.gnn_edge_softmax(g.indptr, g.indices, e, simd=level)
        gs = _core.gnn_edge_softmax_backward(g.indptr, g.indices, alpha, e, simd=level)
        gu, gv = _core.gnn_sddmm_backward(g.indptr, g.indices, g.t_indptr, g.t_indices, g.perm,
                                          u, v, gs, "dot", heads, simd=level)
        out, _ = _core.gnn_aggregate(g.indptr, g.indices, u, "sum", alpha, simd=level)
        return e, alpha, gs, gu, gv, out

    _assert_all_identical(_at_every_thread_count_and_simd_level(run))


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


# ---------------------------------------------------------------------- s10 bad-input review
def test_an_empty_list_of_edges_is_an_empty_graph():
    """np.asarray([[], []]) is float64: it used to be refused as a non-integer edge_index."""
    g = Graph([[], []])
    assert (g.num_nodes, g.num_edges) == (0, 0) and g.indices.dtype == np.int64
    assert Graph([[], []], num_nodes=3).num_nodes == 3
    with pytest.raises(TypeError, match="^edge_index: expected an integer array"):
        Graph([[0.0], [1.0]])  # non-empty floats still are
    with pytest.raises(ValueError, match=r"^edge_index: expected shape \(2, n_edges\)"):
        Graph([])


@pytest.mark.parametrize("edge_index,kwargs,name", [
    (np.array([[2**63 - 1], [0]]), {}, "edge_index: node id 9223372036854775807"),
    (np.array([[10**13], [0]]), {}, "edge_index: node id 10000000000000"),
    (np.zeros((2, 0), np.int64), dict(num_nodes=2**62), "num_nodes: a graph of"),
    (np.zeros((2, 0), np.int64), dict(num_nodes=2**40), "num_nodes: a graph of"),
])
def test_huge_node_ids_are_refused_before_allocating(edge_index, kwargs, name):
    """Used to end in NumPy's 'Maximum allowed dimension exceeded' / 'array is too big' or a
    MemoryError for an 8 TiB array, naming nothing. ValueError (ids must be 0..n-1), as
    KGEModel's for a huge entity id; it was a MemoryError, which suggests a bigger machine."""
    with pytest.raises(ValueError, match=f"^{name}.*node ids must be 0..n-1: remap") as err:
        Graph(edge_index, **kwargs)
    assert type(err.value) is ValueError


def test_complex_adjacency_is_refused():
    """The imaginary part used to be dropped with a ComplexWarning at most."""
    with pytest.raises(TypeError, match="^matrix: expected real values, got dtype complex128"):
        Graph.from_scipy(sp.csr_matrix(np.eye(3) * (1 + 1j)))
    assert Graph.from_scipy(sp.csr_matrix(np.eye(3, dtype=np.int32))).num_edges == 3


@pytest.mark.parametrize("heads,exc", [(2.7, TypeError), ("2", TypeError), (True, TypeError),
                                       (0, ValueError)])
def test_sddmm_heads_must_be_an_integer(heads, exc):
    """2.7 used to become 2 heads, "2" was accepted."""
    g = Graph(np.array([[0, 1, 2, 3], [1, 2, 3, 0]]))
    u = np.ones((4, 4))
    for f in (lambda: sddmm(g, u, u, "dot", heads=heads),
              lambda: sddmm_backward(g, u, u, np.ones((4, 2)), "dot", heads=heads)):
        with pytest.raises(exc, match="^heads: expected an integer"):
            f()
    assert sddmm(g, u, u, "dot", heads=np.int64(2)).shape == (4, 2)


def test_a_graph_whose_num_nodes_was_changed_by_hand_is_refused():
    """g.num_nodes = 10 on a 4-node graph used to let aggregate(g, ones((10, 2))) return 4 rows."""
    g = Graph(np.array([[0, 1, 2, 3], [1, 2, 3, 0]]))
    g.num_nodes = 10
    x = np.ones((10, 2))
    for f in (lambda: aggregate(g, x), lambda: aggregate_backward(g, x, np.ones((4, 2))),
              lambda: sddmm(g, x, x)):
        with pytest.raises(ValueError, match="^graph: num_nodes is 10 but its CSR .* 4 rows"):
            f()


def test_edge_index_and_batching_refuse_a_graph_whose_num_nodes_was_changed_by_hand():
    """These raised NumPy's "operands could not be broadcast together with shape (10,) (4,)"."""
    from nesy.gnn import batch_graphs

    g = Graph(np.array([[0, 1, 2, 3], [1, 2, 3, 0]]))
    ok = Graph(np.array([[0], [1]]))
    ei = g.edge_index()
    for n in (10, 2):
        g.num_nodes = n
        for f in (g.edge_index, g.add_self_loops, g.add_remaining_self_loops):
            with pytest.raises(ValueError, match=rf"^graph: num_nodes is {n} but its CSR "
                                                 r"\(indptr\) has 4 rows"):
                f()
        with pytest.raises(ValueError, match=rf"^graphs\[1\]: num_nodes is {n} but its CSR "
                                             r"\(indptr\) has 4 rows; a Graph must not be"):
            batch_graphs([ok, g], [np.ones((2, 3)), np.ones((n, 3))])
    g.num_nodes = 4  # put back, it is whole again
    np.testing.assert_array_equal(g.edge_index(), ei)
    assert batch_graphs([ok, g]).graph.num_nodes == 6


# ---------------------------------------------------------------------- s13 bad-input review
def test_from_scipy_drops_explicitly_stored_zeros():
    """A[d, s] != 0 is an edge: a stored 0 (from A - B, A.multiply(mask), data[k] = 0) used to
    be an edge of weight 0, which changed mean, max, min and the degrees."""
    A = sp.coo_matrix(([1.0, 0.0], ([0, 0], [1, 2])), shape=(3, 3))
    x = np.array([[0.0], [-5.0], [7.0]])
    for m in (A, A.tocsr(), A.tocsc(), sp.csr_array(A)):
        g = Graph.from_scipy(m)
        assert g.num_edges == 1 and g.edge_index().tolist() == [[1], [0]]
        assert aggregate(g, x, "max")[0][0, 0] == -5.0
        assert aggregate(g, x, "mean")[0][0, 0] == -5.0
        assert m.nnz == 2  # the caller's matrix keeps its stored zero
    np.testing.assert_array_equal(A.data, [1.0, 0.0])


def test_graph_helper_constructors_name_their_own_argument():
    """These named edge_weight / edge_index, or gave NumPy's 'inhomogeneous shape'."""
    bad = sp.csr_matrix(np.array([[0.0, np.nan], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="^matrix: contains NaN or infinity"):
        Graph.from_scipy(bad)
    with pytest.raises(TypeError, match="^edges: expected an integer array, got dtype float64"):
        Graph.from_edge_list([(0.5, 1)])
    with pytest.raises(ValueError, match=r"^edges: expected pairs \(source, destination\)"):
        Graph.from_edge_list([(0, 1), (1,)])
    with pytest.raises(ValueError, match="^edges: node indices must be >= 0"):
        Graph.from_edge_list([(0, -1)])
    with pytest.raises(ValueError, match="^edge_weight: expected shape"):  # given as such
        Graph.from_edge_list([(0, 1)], edge_weight=[1.0, 2.0])
    assert Graph.from_edge_list([], num_nodes=2).num_nodes == 2


def test_aggregate_backward_checks_grad_out_as_aggregate_checks_x():
    """grad_out was cast without a check: complex lost its imaginary part, object and NaN
    passed, a string gave NumPy's message, a 0-d value was reported as shape (1,)."""
    g = Graph(np.array([[0, 1, 2], [1, 2, 0]]))
    x = np.random.default_rng(0).random((3, 2))
    go = np.ones((3, 2))
    nan = go.copy()
    nan[1, 0] = np.nan
    for bad, exc, needle in [
            (go + 1j, TypeError, "^grad_out: expected floats, got dtype complex128"),
            (go.astype(object), TypeError, "^grad_out: expected floats, got dtype object"),
            (np.array([["a"] * 2] * 3), TypeError, "^grad_out: expected floats"),
            (go.astype(np.int64), TypeError, "^grad_out: expected floats"),
            (nan, ValueError, "^grad_out: contains NaN or infinity"),
            (np.where(nan == 1, np.inf, 1.0), ValueError, "^grad_out: contains NaN or infinity"),
            (5.0, ValueError, r"^grad_out: expected shape \(3, 2\), got \(\)$"),
            (go[:, 0], ValueError, r"^grad_out: expected shape \(3, 2\), got \(3,\)$"),
            (go[:2], ValueError, r"^grad_out: expected shape \(3, 2\), got \(2, 2\)$")]:
        with pytest.raises(exc, match=needle):
            aggregate_backward(g, x, bad)
    # float32 x: a float64 grad_out beyond float32's range overflows in the cast
    with pytest.raises(ValueError, match="^grad_out: .*overflow.* float32"):
        aggregate_backward(g, x.astype(np.float32), np.full((3, 2), 1e300))
    # still accepted: another float dtype, a list, a non-contiguous array
    want = aggregate_backward(g, x, go)[0]
    for ok in (go.astype(np.float32), go.tolist(), np.ones((3, 4))[:, ::2]):
        np.testing.assert_array_equal(aggregate_backward(g, x, ok)[0], want)


def test_aggregate_backward_takes_any_layout_of_an_integer_arg():
    """A Fortran-ordered or strided arg was refused with 'arg[0]: must be C-contiguous'; one of
    the wrong shape was reported as missing ('max/min need the forward pass's arg')."""
    g = Graph(np.array([[0, 1, 2, 2], [1, 2, 0, 1]]))
    x = np.random.default_rng(1).random((3, 4))
    go = np.random.default_rng(2).random((3, 4))
    for reduce in ("max", "min"):
        _, a = aggregate(g, x, reduce)
        want = aggregate_backward(g, x, go, reduce, arg=a)[0]
        wide = np.zeros((3, 8), np.int64)
        wide[:, ::2] = a
        for ok in (np.asfortranarray(a), wide[:, ::2], a.astype(np.int32), a.tolist()):
            np.testing.assert_array_equal(aggregate_backward(g, x, go, reduce, arg=ok)[0], want)
        with pytest.raises(ValueError, match=r"^arg: expected shape \(3, 4\) \(the arg "
                                             r"aggregate returned for x\), got \(2, 4\)"):
            aggregate_backward(g, x, go, reduce, arg=a[:2])
        with pytest.raises(TypeError, match="^arg: expected integers, got dtype float64"):
            aggregate_backward(g, x, go, reduce, arg=a.astype(float))
        with pytest.raises(ValueError, match="^arg: max/min need the forward pass's arg"):
            aggregate_backward(g, x, go, reduce)


def test_aggregate_refuses_graph_weights_that_overflow_the_features_dtype():
    """Finite float64 weights beyond float32's range became inf in the cast (a RuntimeWarning
    at most) and gave non-finite sums."""
    ei = np.array([[0, 1, 2], [1, 2, 0]])
    g = Graph(ei, edge_weight=np.array([1.0, 1e300, 2.0]))
    x = np.ones((3, 2), np.float32)
    for f in (lambda: aggregate(g, x), lambda: aggregate_backward(g, x, np.ones((3, 2))),
              lambda: aggregate(g, x, edge_weight=np.array([1.0, 1e300, 2.0]))):
        with pytest.raises(ValueError, match="^edge_weight: .*overflow.*float32"):
            f()
    assert aggregate(g, x, use_weights=False)[0].dtype == np.float32
    assert np.isfinite(aggregate(g, x.astype(np.float64))[0]).all()


@pytest.mark.parametrize("graph", ["g", None, np.array([[0, 1], [1, 0]])])
def test_aggregation_functions_refuse_a_non_graph(graph):
    """aggregate('g', x) raised AttributeError: 'str' object has no attribute 'indptr'."""
    x = np.ones((2, 2))
    for f in (lambda: aggregate(graph, x), lambda: aggregate_backward(graph, x, x),
              lambda: sddmm(graph, x, x), lambda: edge_softmax(graph, np.ones(2))):
        with pytest.raises(TypeError, match="^graph: expected a nesy.gnn.Graph, got "):
            f()


def test_unchecked_backward_casts_grad_out_without_testing_for_nan():
    # check_finite=False: NaN in grad_out is the caller's, also when grad_out needs a cast;
    # an overflow of the cast is still named.
    g = Graph(np.array([[0, 1, 2], [1, 2, 0]]))
    x = np.ones((3, 2), np.float32)
    go = np.ones((3, 2))  # float64: cast to float32
    go[0, 0] = np.nan
    gx, _ = aggregate_backward(g, x, go, check_finite=False)
    assert np.isnan(gx).any()
    with pytest.raises(ValueError, match="grad_out: contains NaN"):
        aggregate_backward(g, x, go)
    go[0, 0] = 1e300
    for check in (True, False):
        with pytest.raises(ValueError, match="grad_out: a value of magnitude 1e\\+300 overflows"):
            aggregate_backward(g, x, go, check_finite=check)


def test_gat_takes_zero_dimensional_arrays_as_numbers():
    from nesy.gnn import GATConv

    layer = GATConv(3, 2, negative_slope=np.array(0.1), dropout=np.float32(0.25))
    assert layer.negative_slope == pytest.approx(0.1) and layer.dropout == 0.25


# ---------------------------------------------------------------------- s14 gap review
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_graph_takes_integer_and_boolean_edge_weights_as_from_scipy(dtype):
    """Graph(..., edge_weight=[1, 2]) was a TypeError ("expected floats") while from_scipy
    took an integer matrix: integer and boolean weights (edge counts) become float64, as
    there, and give the graph from_scipy builds from the same matrix."""
    ei = np.array([[0, 1, 2, 2], [1, 2, 0, 1]])
    w = np.array([1, 3, 2, 1]).astype(dtype)
    g = Graph(ei, 3, w)
    assert g.edge_weight.dtype == np.float64
    np.testing.assert_array_equal(g.edge_weight, w.astype(np.float64)[g.order])
    ref = Graph.from_scipy(sp.csr_matrix((w, (ei[1], ei[0])), shape=(3, 3)))
    x = np.random.default_rng(0).standard_normal((3, 2))
    np.testing.assert_array_equal(aggregate(g, x)[0], aggregate(ref, x)[0])
    e = Graph.from_edge_list(ei.T, 3, edge_weight=list(w))
    np.testing.assert_array_equal(e.edge_weight, g.edge_weight)
    assert Graph(ei, 3, w.astype(np.float32)).edge_weight.dtype == np.float32  # floats kept


@pytest.mark.parametrize("bad", [np.array([1 + 1j, 2, 0, 1]), np.array(["a", "b", "c", "d"]),
                                 np.array([1.0, None, 2.0, 1.0], dtype=object)])
def test_graph_refuses_edge_weights_that_are_not_real_numbers_as_from_scipy(bad):
    ei = np.array([[0, 1, 2, 2], [1, 2, 0, 1]])
    with pytest.raises(TypeError, match=rf"^edge_weight: expected real numbers, got dtype "
                                        rf"{re.escape(str(bad.dtype))}$"):
        Graph(ei, 3, bad)
    with pytest.raises(TypeError, match="^matrix: expected real values"):
        Graph.from_scipy(sp.csr_matrix(np.array([[0, 1 + 1j], [0, 0]])))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_aggregate_backward_gives_the_same_bits_for_grad_out_anywhere_in_memory(dtype, reduce):
    """The gathers read rows of whole lines from a grad_out on a line or 16 bytes past one
    (where NumPy puts large arrays): the same sums, and grad_out unchanged."""
    from nesy._mem import aligned_copy

    rng = np.random.default_rng(3)
    n, f = 300, 64
    g = Graph(rng.integers(0, n, (2, 3000)), n)
    x = rng.standard_normal((n, f)).astype(dtype)
    out, arg = aggregate(g, x, reduce)
    grad = rng.standard_normal((n, f)).astype(dtype)
    on_line, off = aligned_copy(grad), aligned_copy(grad, offset=16)
    want = aggregate_backward(g, x, on_line, reduce, arg=arg)[0]
    got = aggregate_backward(g, x, off, reduce, arg=arg)[0]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(off, grad)
    assert off.ctypes.data % 64 == 16
