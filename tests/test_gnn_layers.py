"""nesy.gnn layers and batching: GCNConv, SAGEConv, GINConv, GATConv against the hand-written
NumPy layers of tests/reference_gnn.py (both dtypes), finite-difference checks of every
gradient, readout forward/backward, block-diagonal batching, edge cases and bad input.

Mirrors python/nesy/gnn/layers.py and python/nesy/gnn/batch.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import reference_gnn as rg

from nesy.gnn import (
    GATConv,
    GCNConv,
    GINConv,
    GlobalPool,
    Graph,
    SAGEConv,
    batch_graphs,
    iter_batches,
    readout,
    readout_backward,
)
from nesy.nn import Dense, ReLU, Sequential


def _graph(n=13, e=40, seed=0, weighted=False, loops=True):
    rng = np.random.default_rng(seed)
    ei = rng.integers(0, n, (2, e))
    ei[1, ei[1] == 2] = 3  # node 2 has no in-edges
    ei = np.hstack([ei, ei[:, :3]])  # duplicate edges
    if loops:
        ei = np.hstack([ei, [[5, 7], [5, 7]]])  # self-loops
    w = rng.random(ei.shape[1]) + 0.5 if weighted else None
    return Graph(ei, n, w), ei, w


def _mlp(i, h, o, dtype, seed):
    return Sequential(Dense(i, h, dtype=dtype, rng=seed), ReLU(),
                      Dense(h, o, dtype=dtype, rng=seed + 1))


def _params64(layer):
    return {k: v.astype(np.float64) for k, v in layer.named_parameters()}


def _check_gradients(layer, graph, x, n_checks=12, eps=1e-6, tol=1e-6, reseed=None):
    """Backward of a float64 layer against central differences of its forward, for the input
    and every parameter (a random sample of entries of each)."""
    rng = np.random.default_rng(0)

    def run(xx):
        if reseed is not None:
            layer.rng = np.random.default_rng(reseed)
        return layer.forward(graph, xx)

    up = rng.standard_normal(run(x).shape)
    layer.zero_grad()
    run(x)
    dx = layer.backward(up)
    arrays = [("x", x, dx)] + [(n, p, layer.grad(n)) for n, p in layer.named_parameters()]
    for name, arr, grad in arrays:
        assert grad.shape == arr.shape, name
        flat = arr.reshape(-1)
        for k in rng.choice(flat.size, min(n_checks, flat.size), replace=False):
            old = flat[k]
            flat[k] = old + eps
            hi = float(np.sum(run(x) * up))
            flat[k] = old - eps
            lo = float(np.sum(run(x) * up))
            flat[k] = old
            want = (hi - lo) / (2 * eps)
            assert grad.reshape(-1)[k] == pytest.approx(want, abs=tol, rel=1e-5), (name, k)


TOL = {np.float32: 2e-5, np.float64: 1e-12}


# ---------------------------------------------------------------------- GCN
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("sizes", [(5, 3), (3, 6)])  # transform first / aggregate first
def test_gcn_matches_numpy_layer(dtype, weighted, sizes):
    g, ei, w = _graph(weighted=weighted)
    layer = GCNConv(*sizes, dtype=dtype, rng=1)
    layer.bias[:] = np.arange(sizes[1]) * 0.1
    x = np.random.default_rng(2).standard_normal((13, sizes[0])).astype(dtype)
    out = layer(g, x)
    assert out.dtype == dtype and out.shape == (13, sizes[1])
    p = _params64(layer)
    want = rg.gcn(ei, 13, x.astype(np.float64), p["weight"], p["bias"], w)
    np.testing.assert_allclose(out, want, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("sizes", [(5, 3), (3, 6)])
@pytest.mark.parametrize("normalize,loops", [(True, True), (False, False), (True, False),
                                             (False, None)])
def test_gcn_gradients(sizes, normalize, loops):
    g, ei, w = _graph(weighted=True)
    layer = GCNConv(*sizes, dtype=np.float64, rng=1, normalize=normalize, add_self_loops=loops)
    x = np.random.default_rng(2).standard_normal((13, sizes[0]))
    p = _params64(layer)
    want = rg.gcn(ei, 13, x, p["weight"], p["bias"], w, add_self_loops=loops,
                  normalize=normalize)
    np.testing.assert_allclose(layer(g, x), want, rtol=1e-12, atol=1e-12)
    _check_gradients(layer, g, x)


def test_gcn_without_normalisation_adds_no_loops_as_pyg():
    """PyG: add_self_loops defaults to normalize, and loops without normalisation are refused;
    GCNConv(normalize=False) is A x W (nesy added loops there before)."""
    g = Graph(np.array([[0, 1, 2], [1, 2, 0]]), num_nodes=3)
    layer = GCNConv(3, 3, normalize=False, bias=False, dtype=np.float64)
    assert layer.add_self_loops is False
    layer.weight[...] = np.eye(3)
    a = np.zeros((3, 3))
    a[[1, 2, 0], [0, 1, 2]] = 1  # a[dst, src]
    np.testing.assert_array_equal(layer(g, np.eye(3)), a)
    assert GCNConv(3, 3).add_self_loops is True
    with pytest.raises(ValueError, match="^add_self_loops: .*normalize=True"):
        GCNConv(3, 3, normalize=False, add_self_loops=True)


def test_gcn_caches_the_normalised_graph_per_graph_object():
    g, ei, _ = _graph()
    layer = GCNConv(4, 2, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((13, 4))
    layer(g, x)
    cached = layer._cache[1]
    layer(g, x)
    assert layer._cache[1] is cached
    g2, ei2, _ = _graph(seed=5)
    p = _params64(layer)
    np.testing.assert_allclose(layer(g2, x), rg.gcn(ei2, 13, x, p["weight"], p["bias"]),
                               rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- SAGE
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("aggr", ["mean", "max"])
@pytest.mark.parametrize("root,normalize", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("sizes", [(5, 3), (3, 6)])
def test_sage_matches_numpy_layer(dtype, aggr, root, normalize, sizes):
    g, ei, _ = _graph(weighted=True)  # weights are ignored by SAGE
    layer = SAGEConv(*sizes, aggr=aggr, root_weight=root, normalize=normalize, dtype=dtype,
                     rng=3)
    layer.bias[:] = 0.05
    x = np.random.default_rng(4).standard_normal((13, sizes[0])).astype(dtype)
    p = _params64(layer)
    want = rg.sage(ei, 13, x.astype(np.float64), p["weight_neigh"], p.get("weight_root"),
                   p["bias"], aggr, normalize)
    np.testing.assert_allclose(layer(g, x), want, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("aggr", ["mean", "max"])
@pytest.mark.parametrize("root,normalize", [(True, False), (False, True)])
@pytest.mark.parametrize("sizes", [(5, 3), (3, 6)])
def test_sage_gradients(aggr, root, normalize, sizes):
    g, _, _ = _graph()
    layer = SAGEConv(*sizes, aggr=aggr, root_weight=root, normalize=normalize,
                     dtype=np.float64, rng=3)
    layer.bias[:] = 0.3  # keeps the output of node 2 (no in-edges) away from norm 0
    x = np.random.default_rng(4).standard_normal((13, sizes[0]))
    _check_gradients(layer, g, x)


# ---------------------------------------------------------------------- GIN
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("train_eps", [False, True])
def test_gin_matches_numpy_layer_and_gradients(dtype, train_eps):
    g, ei, _ = _graph()
    layer = GINConv(_mlp(4, 6, 3, dtype, 7), eps=0.3, train_eps=train_eps, dtype=dtype)
    x = np.random.default_rng(5).standard_normal((13, 4)).astype(dtype)
    p = _params64(layer)
    mlp = rg.mlp2(p["mlp.0.weight"], p["mlp.0.bias"], p["mlp.2.weight"], p["mlp.2.bias"])
    want = rg.gin(ei, 13, x.astype(np.float64), 0.3, mlp)
    np.testing.assert_allclose(layer(g, x), want, rtol=TOL[dtype] * 2, atol=TOL[dtype] * 2)
    assert ("eps" in dict(layer.named_parameters())) == train_eps
    if dtype == np.float64:
        _check_gradients(layer, g, x)


# ---------------------------------------------------------------------- GAT
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("heads,concat", [(1, True), (3, True), (3, False)])
@pytest.mark.parametrize("loops", [True, False])
def test_gat_matches_numpy_layer(dtype, heads, concat, loops):
    g, ei, _ = _graph(weighted=True)
    layer = GATConv(5, 4, heads=heads, concat=concat, add_self_loops=loops, dtype=dtype, rng=8)
    layer.bias[:] = 0.1
    x = np.random.default_rng(9).standard_normal((13, 5)).astype(dtype)
    p = _params64(layer)
    want = rg.gat(ei, 13, x.astype(np.float64), p["weight"], p["att_src"], p["att_dst"],
                  p["bias"], heads, concat, add_self_loops=loops)
    out = layer(g, x)
    assert out.shape == (13, heads * 4 if concat else 4)
    np.testing.assert_allclose(out, want, rtol=TOL[dtype] * 5, atol=TOL[dtype] * 5)


@pytest.mark.parametrize("heads,concat", [(1, True), (3, True), (2, False)])
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_gat_gradients(heads, concat, dropout):
    g, _, _ = _graph()
    layer = GATConv(5, 3, heads=heads, concat=concat, dropout=dropout, dtype=np.float64, rng=8)
    x = np.random.default_rng(9).standard_normal((13, 5))
    _check_gradients(layer, g, x, reseed=11 if dropout else None)


def test_gat_attention_dropout_only_in_training():
    g, ei, _ = _graph()
    layer = GATConv(5, 3, heads=2, dropout=0.5, dtype=np.float64, rng=8)
    x = np.random.default_rng(9).standard_normal((13, 5))
    a, b = layer(g, x), layer(g, x)
    assert not np.allclose(a, b)
    layer.eval()
    p = _params64(layer)
    want = rg.gat(ei, 13, x, p["weight"], p["att_src"], p["att_dst"], p["bias"], 2)
    np.testing.assert_allclose(layer(g, x), want, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- float32 vs float64
def _twins(make):
    """A float32 layer and a float64 twin with the same parameters (the float32 values)."""
    l32, l64 = make(np.float32), make(np.float64)
    for name, p in l32.named_parameters():
        if name.endswith("bias"):
            p[:] = np.linspace(-0.2, 0.3, p.size, dtype=np.float32)  # not the zero default
    for (n32, p32), (n64, p64) in zip(l32.named_parameters(), l64.named_parameters()):
        assert n32 == n64 and p32.shape == p64.shape
        p64[...] = p32
    return l32, l64


TWINS = {  # name: (in_features, make(dtype))
    "gcn-aggregate-first": (3, lambda dt: GCNConv(3, 6, dtype=dt, rng=1)),
    "gcn-transform-first": (5, lambda dt: GCNConv(5, 3, dtype=dt, rng=1)),
    "sage-mean": (5, lambda dt: SAGEConv(5, 3, dtype=dt, rng=3)),
    "sage-mean-normalize": (3, lambda dt: SAGEConv(3, 6, normalize=True, dtype=dt, rng=3)),
    "sage-max": (5, lambda dt: SAGEConv(5, 3, aggr="max", dtype=dt, rng=3)),
    "gin": (4, lambda dt: GINConv(_mlp(4, 6, 3, dt, 7), eps=0.3, train_eps=True, dtype=dt)),
    "gat-concat": (5, lambda dt: GATConv(5, 3, heads=3, dtype=dt, rng=8)),
    "gat-mean": (5, lambda dt: GATConv(5, 3, heads=3, concat=False, dtype=dt, rng=8)),
    "gat-dropout": (5, lambda dt: GATConv(5, 3, heads=2, dropout=0.4, dtype=dt, rng=8)),
}


@pytest.mark.parametrize("which", list(TWINS))
def test_float32_backward_matches_float64(which):
    """Forward, input gradient and every parameter gradient of a float32 layer against its
    float64 twin on the same input (finite differences check the float64 one above)."""
    g, _, _ = _graph(weighted=True)
    n_in, make = TWINS[which]
    l32, l64 = _twins(make)
    rng = np.random.default_rng(10)
    x = rng.standard_normal((13, n_in)).astype(np.float32)
    outs, dxs = [], []
    for layer in (l32, l64):
        if which == "gat-dropout":  # the same attention-dropout mask for both
            layer.rng = np.random.default_rng(11)
        outs.append(layer(g, x.astype(layer.dtype)))
        up = np.random.default_rng(12).standard_normal(outs[-1].shape).astype(layer.dtype)
        dxs.append(layer.backward(up))
    assert outs[0].dtype == dxs[0].dtype == np.float32
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dxs[0], dxs[1], rtol=1e-4, atol=1e-5)
    for (name, g32), (_, g64) in zip(l32.named_gradients(), l64.named_gradients()):
        assert g32.dtype == np.float32, name
        assert np.any(g64 != 0), name  # every parameter takes part
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5, err_msg=name)


# ---------------------------------------------------------------------- edge cases
def _all_layers(dtype=np.float64):
    return [GCNConv(3, 2, dtype=dtype, rng=0), SAGEConv(3, 2, dtype=dtype, rng=0),
            SAGEConv(3, 2, aggr="max", dtype=dtype, rng=0),
            GINConv(_mlp(3, 4, 2, dtype, 0), dtype=dtype),
            GATConv(3, 2, heads=2, dtype=dtype, rng=0)]


@pytest.mark.parametrize("k", range(5))
def test_graph_without_edges_and_isolated_nodes(k):
    layer = _all_layers()[k]
    empty = Graph(np.zeros((2, 0), np.int64), num_nodes=4)
    x = np.random.default_rng(0).standard_normal((4, 3))
    out = layer(empty, x)
    assert np.all(np.isfinite(out))
    dx = layer.backward(np.ones_like(out))
    assert dx.shape == x.shape and np.all(np.isfinite(dx))
    if isinstance(layer, SAGEConv):  # no neighbours: only the root term and bias
        np.testing.assert_allclose(out, x @ layer.weight_root + layer.bias, atol=1e-12)
    nothing = Graph(np.zeros((2, 0), np.int64), num_nodes=0)
    assert layer(nothing, np.zeros((0, 3))).shape[0] == 0


def test_input_grad_false_skips_the_input_gradient():
    g, _, _ = _graph()
    x = np.random.default_rng(0).standard_normal((13, 5))
    a = GCNConv(5, 3, dtype=np.float64, rng=0)
    b = GCNConv(5, 3, dtype=np.float64, rng=0, input_grad=False)
    up = np.ones((13, 3))
    a(g, x)
    b(g, x)
    assert a.backward(up) is not None and b.backward(up) is None
    np.testing.assert_array_equal(a.grad("weight"), b.grad("weight"))


@pytest.mark.parametrize("k", range(5))
def test_layers_reject_bad_features(k):
    layer = _all_layers()[k]
    g, _, _ = _graph()
    with pytest.raises(ValueError, match="x: expected one row per node"):
        layer(g, np.zeros((12, 3)))
    bad = np.zeros((13, 3))
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="x: contains NaN"):
        layer(g, bad)
    with pytest.raises(TypeError, match="graph"):
        layer(np.zeros((2, 3), np.int64), np.zeros((13, 3)))
    if not isinstance(layer, GINConv):
        with pytest.raises(ValueError, match="x: expected 3 features"):
            layer(g, np.zeros((13, 4)))
    with pytest.raises(RuntimeError, match="before forward"):
        type(layer)(*([3, 2] if not isinstance(layer, GINConv) else [_mlp(3, 4, 2, np.float64,
                                                                        0)])).backward(
            np.zeros((13, 2)))


@pytest.mark.parametrize("k", range(6))
def test_bad_grad_out_is_refused_before_any_gradient_changes(k):
    """A grad_out of the wrong shape (rows or columns), dtype or with NaN raises naming
    grad_out; the parameter gradients are untouched and a good backward still works."""
    layers = _all_layers() + [GATConv(3, 2, heads=2, concat=False, dtype=np.float64, rng=0)]
    layer = layers[k]
    g, _, _ = _graph()
    x = np.random.default_rng(0).standard_normal((13, 3))
    out = layer(g, x)
    up = np.random.default_rng(1).standard_normal(out.shape)
    layer.zero_grad()
    nan = up.copy()
    nan[3, 1] = np.nan
    bad = [(up[:12], ValueError, rf"grad_out.*\(13, {out.shape[1]}\).*\(12, "),
           (up[:, :1], ValueError, r"grad_out.*\(13, 1\)"),
           (up[:, :, None], ValueError, "grad_out"),
           (up.astype(complex), TypeError, "grad_out"),
           (nan, ValueError, "grad_out")]
    for grad, exc, needle in bad:
        with pytest.raises(exc, match=needle):
            layer.backward(grad)
        for name, a in layer.named_gradients():
            assert not a.any(), (name, grad.shape)
    dx = layer.backward(up)
    assert dx.shape == x.shape and all(a.any() for _, a in layer.named_gradients())


def _assert_failed_forwards_keep_the_last_state(layer, graph, x, bad):
    """Forward and backward on ``(graph, x)``, then every ``(graph, x)`` of ``bad`` must raise
    and change nothing: the gradients stay, and a following backward (after ``zero_grad``)
    gives the same input and parameter gradients as the first one."""
    up = np.random.default_rng(1).standard_normal(layer(graph, x).shape)
    dx = layer.backward(up)
    grads = {name: a.copy() for name, a in layer.named_gradients()}
    for g_bad, x_bad in bad:
        with pytest.raises((ValueError, TypeError)):
            layer(g_bad, x_bad)
        for name, a in layer.named_gradients():
            np.testing.assert_array_equal(a, grads[name], err_msg=name)
    layer.zero_grad()
    np.testing.assert_array_equal(layer.backward(up), dx)
    for name, a in layer.named_gradients():
        np.testing.assert_array_equal(a, grads[name], err_msg=name)


@pytest.mark.parametrize("k", range(5))
def test_a_failed_forward_keeps_the_state_of_the_last_good_one(k):
    layer = _all_layers()[k]
    g, _, _ = _graph()
    other, _, _ = _graph(n=9, e=20, seed=3)
    x = np.random.default_rng(0).standard_normal((13, 3))
    nan = x.copy()
    nan[4, 1] = np.nan
    bad = [(g, x[:12]), (g, nan), (other, x), (np.zeros((2, 3), np.int64), x),
           (g, x.astype(complex))]
    if not isinstance(layer, GINConv):  # GIN takes any width: its MLP rejects it (below)
        bad.append((g, np.ones((13, 4))))
    _assert_failed_forwards_keep_the_last_state(layer, g, x, bad)


@pytest.mark.parametrize("train_eps", [False, True])
def test_gin_failed_mlp_forward_keeps_the_state_of_the_last_good_one(train_eps):
    """x of the wrong width passes GIN's own check (it has no in_features) and fails in the
    MLP's first Dense; the layer must still hold the last good forward."""
    layer = GINConv(_mlp(3, 4, 2, np.float64, 0), eps=0.2, train_eps=train_eps,
                    dtype=np.float64)
    g, _, _ = _graph()
    x = np.random.default_rng(0).standard_normal((13, 3))
    _assert_failed_forwards_keep_the_last_state(layer, g, x, [(g, np.ones((13, 4)))])


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="aggr"):
        SAGEConv(3, 2, aggr="sum")
    with pytest.raises(ValueError, match="heads"):
        GATConv(3, 2, heads=0)
    with pytest.raises(ValueError, match="dropout"):
        GATConv(3, 2, dropout=1.0)
    with pytest.raises(TypeError, match="mlp"):
        GINConv(lambda h: h)
    with pytest.raises(ValueError, match=r"^in_features: expected an integer >= 1, got 0"):
        GCNConv(0, 2)
    for eps in (float("nan"), np.inf):
        with pytest.raises(ValueError, match="eps"):
            GINConv(_mlp(3, 4, 2, np.float64, 0), eps=eps)
    with pytest.raises(TypeError, match="eps"):
        GINConv(_mlp(3, 4, 2, np.float64, 0), eps="a", train_eps=True)


# ---------------------------------------------------------------------- batching and readout
def _small_graphs(seed=0):
    rng = np.random.default_rng(seed)
    graphs, feats = [], []
    for n in (4, 1, 6, 3):
        e = int(rng.integers(0, 2 * n))
        graphs.append(Graph(rng.integers(0, n, (2, e)), n, rng.random(e) + 0.5))
        feats.append(rng.standard_normal((n, 3)))
    graphs.append(Graph(np.zeros((2, 0), np.int64), num_nodes=0))  # an empty graph
    feats.append(np.zeros((0, 3)))
    return graphs, feats


def test_batch_is_block_diagonal_and_layers_act_per_graph():
    graphs, feats = _small_graphs()
    gb = batch_graphs(graphs, feats)
    assert gb.num_graphs == 5 and list(gb.ptr) == [0, 4, 5, 11, 14, 14]
    assert list(np.bincount(gb.batch, minlength=5)) == [4, 1, 6, 3, 0]
    ei = gb.graph.edge_index()
    assert np.all(gb.batch[ei[0]] == gb.batch[ei[1]])  # no edge crosses graphs
    assert gb.graph.num_edges == sum(g.num_edges for g in graphs)
    layer = GCNConv(3, 2, dtype=np.float64, rng=0)
    whole = layer(gb.graph, gb.x)
    for i, (g, x) in enumerate(zip(graphs, feats)):
        part = whole[gb.ptr[i]:gb.ptr[i + 1]]
        np.testing.assert_allclose(part, layer(g, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_readout_matches_numpy_and_finite_differences(dtype, reduce):
    rng = np.random.default_rng(1)
    batch = np.array([2, 0, 0, 1, 2, 2, 0, 1, 1, 2, 0])  # unsorted; graph 3 has no node
    x = rng.standard_normal((11, 4)).astype(dtype)
    out, arg = readout(x, batch, 4, reduce)
    assert out.dtype == dtype and out.shape == (4, 4) and np.all(out[3] == 0)
    np.testing.assert_allclose(out, rg.readout(x.astype(np.float64), batch, 4, reduce),
                               rtol=TOL[dtype], atol=TOL[dtype])
    up = rng.standard_normal((4, 4)).astype(dtype)
    gx = readout_backward(up, batch, reduce, arg)
    assert gx.dtype == dtype and gx.shape == x.shape
    if dtype == np.float32:  # against the float64 backward on the same values
        x64, up64 = x.astype(np.float64), up.astype(np.float64)
        gx64 = readout_backward(up64, batch, reduce, readout(x64, batch, 4, reduce)[1])
        np.testing.assert_allclose(gx, gx64, rtol=1e-4, atol=1e-5)
    else:
        eps = 1e-6
        for k in np.ndindex(x.shape):
            a, b = x.copy(), x.copy()
            a[k] += eps
            b[k] -= eps
            fd = (np.sum(rg.readout(a, batch, 4, reduce) * up)
                  - np.sum(rg.readout(b, batch, 4, reduce) * up)) / (2 * eps)
            assert gx[k] == pytest.approx(fd, abs=1e-6)
    pool = GlobalPool(reduce)
    np.testing.assert_array_equal(pool(x, batch, 4), out)
    np.testing.assert_array_equal(pool.backward(up), gx)
    # Bad graph ids or arg: an exception naming the argument, never a silent floor or wrap.
    with pytest.raises(TypeError, match="batch"):
        readout_backward(up, batch + 0.5, reduce, arg)
    with pytest.raises(IndexError, match="batch"):
        readout_backward(up, np.where(batch == 1, 4, batch), reduce, arg)
    with pytest.raises(ValueError, match="grad_out"):
        readout_backward(up[0], batch, reduce, arg)
    if reduce == "max":
        with pytest.raises(ValueError, match="arg"):
            readout_backward(up, batch, reduce, arg + 20)


def test_iter_batches_covers_every_graph_once():
    graphs, feats = _small_graphs()
    seen = []
    for idx, gb in iter_batches(graphs, feats, batch_size=2, rng=0):
        assert gb.num_graphs == len(idx) <= 2
        np.testing.assert_array_equal(gb.x, np.concatenate([feats[i] for i in idx]))
        seen.extend(idx.tolist())
    assert sorted(seen) == list(range(5))


def test_batch_and_readout_bad_input():
    graphs, feats = _small_graphs()
    with pytest.raises(ValueError, match="features: expected one matrix per graph"):
        batch_graphs(graphs, feats[:-1])
    with pytest.raises(ValueError, match=r"features\[2\]: expected shape \(6, n_features\)"):
        batch_graphs(graphs, [f if i != 2 else f[:5] for i, f in enumerate(feats)])
    nan = [f.copy() for f in feats]
    nan[0][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"features\[0\]"):
        batch_graphs(graphs, nan)
    with pytest.raises(TypeError, match=r"graphs\[1\]"):
        batch_graphs([graphs[0], "g"])
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="batch: expected shape"):
        readout(x, np.zeros(4, np.int64), 2)
    with pytest.raises(IndexError, match="batch: graph id 3"):
        readout(x, np.array([0, 1, 3, 0, 0]), 2)
    with pytest.raises(TypeError, match="batch"):
        readout(x, np.zeros(5), 1)
    with pytest.raises(ValueError, match="reduce"):
        readout(x, np.zeros(5, np.int64), 1, "min")
    with pytest.raises(TypeError, match="num_graphs"):
        readout(x, np.zeros(5, np.int64), "a")
    with pytest.raises(ValueError, match="num_graphs"):
        readout(np.zeros((0, 2)), np.zeros(0, np.int64), -2)
    with pytest.raises(ValueError, match="batch_size"):
        next(iter_batches(graphs, feats, batch_size=0))


# ---------------------------------------------------------------------- torch parity
def _torch_gat(torch, ei, n, x, p, heads, concat, slope=0.2):
    """GAT with torch scatter ops (self-loops: existing removed, one per node added)."""
    ei = ei[:, ei[0] != ei[1]]
    ei = np.hstack([ei, np.vstack([np.arange(n)] * 2)])
    src, dst = torch.from_numpy(ei[0]), torch.from_numpy(ei[1])
    f = p["att_src"].shape[1]
    z = (x @ p["weight"]).reshape(n, heads, f)
    e = (z * p["att_src"]).sum(-1)[src] + (z * p["att_dst"]).sum(-1)[dst]
    e = torch.nn.functional.leaky_relu(e, slope)
    top = torch.full((n, heads), -torch.inf, dtype=e.dtype).scatter_reduce(
        0, dst[:, None].expand(-1, heads), e, "amax")
    w = torch.exp(e - top[dst])
    alpha = w / torch.zeros(n, heads, dtype=e.dtype).index_add(0, dst, w)[dst]
    out = torch.zeros(n, heads, f, dtype=e.dtype).index_add(0, dst, alpha[:, :, None] * z[src])
    out = out.reshape(n, heads * f) if concat else out.mean(1)
    return out + p["bias"]


def _torch_sage_max(torch, ei, n, x, p):
    src, dst = torch.from_numpy(ei[0]), torch.from_numpy(ei[1])
    agg = torch.full((n, x.shape[1]), -torch.inf, dtype=x.dtype).scatter_reduce(
        0, dst[:, None].expand(-1, x.shape[1]), x[src], "amax")
    agg = torch.where(torch.isinf(agg), 0, agg)
    return agg @ p["weight_neigh"] + x @ p["weight_root"] + p["bias"]


@pytest.mark.parametrize("which", ["gat-concat", "gat-mean", "sage-max"])
def test_layers_match_torch_autograd(which):
    torch = pytest.importorskip("torch")
    g, ei, _ = _graph()
    if which == "sage-max":
        layer = SAGEConv(5, 3, aggr="max", dtype=np.float64, rng=2)
    else:
        layer = GATConv(5, 3, heads=2, concat=which == "gat-concat", dtype=np.float64, rng=2)
    layer.bias[:] = 0.2
    x = np.random.default_rng(3).standard_normal((13, 5))
    up = np.random.default_rng(4).standard_normal(layer(g, x).shape)
    layer.zero_grad()
    out = layer(g, x)
    dx = layer.backward(up)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in layer.named_parameters()}
    tx = torch.tensor(x, requires_grad=True)
    if which == "sage-max":
        tout = _torch_sage_max(torch, ei, 13, tx, tp)
    else:
        tout = _torch_gat(torch, ei, 13, tx, tp, 2, which == "gat-concat")
    (tout * torch.from_numpy(up)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    for name, t in tp.items():
        np.testing.assert_allclose(layer.grad(name), t.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


# ---------------------------------------------------------------------- s10 bad-input review
@pytest.mark.parametrize("make", [lambda i, o: GCNConv(i, o), lambda i, o: SAGEConv(i, o),
                                  lambda i, o: GATConv(i, o)])
def test_layer_sizes_must_be_integers(make):
    """GCNConv(2.9, 2) used to be GCNConv(2, 2); GCNConv("2", 2) was accepted."""
    for i, o, exc, name in [(2.9, 2, TypeError, "in_features"), ("2", 2, TypeError, "in_features"),
                            (2, 2.0, TypeError, "out_features"), (0, 2, ValueError, "in_features"),
                            (2, -1, ValueError, "out_features")]:
        with pytest.raises(exc, match=f"^{name}: expected an integer"):
            make(i, o)
    assert make(np.int64(2), 3).in_features == 2


@pytest.mark.parametrize("heads,exc", [(2.5, TypeError), ("2", TypeError), (0, ValueError)])
def test_gat_heads_must_be_an_integer(heads, exc):
    with pytest.raises(exc, match="^heads: expected an integer"):
        GATConv(3, 2, heads=heads)


def test_iter_batches_checks_its_arguments_when_called():
    """Too few feature matrices used to raise IndexError during iteration; batch_size="a" a
    NumPy message, 1.5 ran with batches of 1."""
    graphs, feats = _small_graphs()
    with pytest.raises(ValueError, match=r"^features: expected one matrix per graph \(5\), got 4"):
        iter_batches(graphs, feats[:-1])  # no next(): raised at the call
    for bad, exc in (("a", TypeError), (1.5, TypeError), (0, ValueError)):
        with pytest.raises(exc, match="^batch_size: expected an integer"):
            iter_batches(graphs, feats, batch_size=bad)
    assert sum(len(idx) for idx, _ in iter_batches(graphs, feats, batch_size=np.int32(2))) == 5


def test_layers_refuse_a_graph_whose_num_nodes_was_changed_by_hand():
    g, _, _ = _graph()
    g.num_nodes += 2
    x = np.ones((g.num_nodes, 3))
    for layer in (GCNConv(3, 2), SAGEConv(3, 2), GATConv(3, 2),
                  GINConv(_mlp(3, 4, 2, np.float32, 0))):
        with pytest.raises(ValueError, match="^graph: num_nodes is 15 but its CSR"):
            layer(g, x)


# ---------------------------------------------------------------------- s13 bad-input review
def test_global_pool_backward_uses_the_batch_of_its_forward():
    """forward kept the caller's batch array: changing it before backward routed the gradient
    to other nodes."""
    x = np.random.default_rng(0).standard_normal((7, 3))
    batch = np.array([0, 0, 1, 1, 1, 3, 3])
    up = np.random.default_rng(1).standard_normal((4, 3))
    for reduce in ("sum", "mean", "max"):
        pool = GlobalPool(reduce)
        pool(x, batch.copy(), 4)
        want = pool.backward(up)
        b = batch.copy()
        pool(x, b, 4)
        b[:] = 0  # the caller reuses its buffer
        np.testing.assert_array_equal(pool.backward(up), want)


def test_readout_backward_refuses_non_finite_grad_out():
    batch = np.array([0, 0, 1])
    _, arg = readout(np.ones((3, 2)), batch, 2, "max")
    for value in (np.nan, np.inf):
        up = np.ones((2, 2))
        up[1, 0] = value
        for reduce in ("sum", "mean", "max"):
            with pytest.raises(ValueError, match="^grad_out: contains NaN or infinity"):
                readout_backward(up, batch, reduce, arg)


def test_readout_backward_checks_that_every_arg_lies_in_its_own_graph():
    """An arg of another batch of the same shape silently routed one graph's gradient to a
    node of another."""
    x = np.random.default_rng(0).random((7, 3))
    b = np.array([0, 0, 1, 1, 1, 3, 3])
    _, arg = readout(x, b, 4, "max")
    up = np.ones((4, 3))
    assert readout_backward(up, b, "max", arg).sum() == 9  # 3 graphs with nodes, 3 columns
    with pytest.raises(ValueError, match=r"^arg\[1, 0\]: row 0 belongs to graph 0, not to "
                                         r"graph 1"):
        readout_backward(up, b, "max", np.zeros((4, 3), np.int64))
    wrong = arg.copy()
    wrong[2, 1] = 0  # graph 2 has no nodes: its entries must be -1
    with pytest.raises(ValueError, match=r"^arg\[2, 1\]: row 0 belongs to graph 0, not to "
                                         r"graph 2"):
        readout_backward(up, b, "max", wrong)


@pytest.mark.parametrize("num_graphs", [1, 3])
def test_max_readout_of_graphs_without_nodes_is_zero(num_graphs):
    """No rows but num_graphs >= 1 raised NumPy's IndexError ('index 0 is out of bounds')."""
    out, arg = readout(np.zeros((0, 3)), np.zeros(0, np.int64), num_graphs, "max")
    np.testing.assert_array_equal(out, np.zeros((num_graphs, 3)))
    np.testing.assert_array_equal(arg, np.full((num_graphs, 3), -1))
    assert readout_backward(np.ones((num_graphs, 3)), np.zeros(0, np.int64), "max",
                            arg).shape == (0, 3)


def test_too_few_rows_of_grad_out_are_named():
    """readout_backward(grad_out of 3 rows) for a batch of 4 graphs blamed only batch; the
    pool's backward, whose batch is its forward's, blamed batch too."""
    b = np.array([0, 0, 1, 3])
    with pytest.raises(IndexError, match="^batch: graph id 3 is out of range for the 3 rows "
                                         "of grad_out"):
        readout_backward(np.ones((3, 2)), b)
    pool = GlobalPool("max")
    pool(np.ones((4, 2)), b, 4)
    for bad in (np.ones((3, 2)), np.ones((4, 1)), np.ones(4)):
        with pytest.raises(ValueError, match=r"^grad_out: expected the output's shape \(4, 2\), "
                                             f"got {re.escape(str(bad.shape))}"):
            pool.backward(bad)


@pytest.mark.parametrize("call,needle", [
    (lambda: readout(np.ones((2, 3)), np.array([0, 1]), 10**12), "^num_graphs: 1000000000000 "
     "graphs"),
    (lambda: readout(np.ones((2, 3)), np.array([0, 10**12])), "^batch: graph id 1000000000000 "
     "implies 1000000000001 graphs"),
    (lambda: readout(np.ones((2, 3)), np.array([0, 2**63], np.uint64)), "^batch: graph id "
     "9223372036854775808"),
    (lambda: GCNConv(3, 10**12), "^out_features: 1000000000000 "),
    (lambda: SAGEConv(10**12, 3), "^in_features: 1000000000000 "),
    (lambda: GATConv(3, 4, heads=10**12), "^heads: 1000000000000 "),
])
def test_huge_sizes_are_refused_before_allocating(call, needle):
    """These ended in NumPy's 'Unable to allocate 7.28 TiB' / 'Maximum allowed dimension
    exceeded' or a MemoryError, naming no argument."""
    with pytest.raises(ValueError, match=needle) as err:
        call()
    assert type(err.value) is ValueError and "memory" in str(err.value)


def test_batch_graphs_refuses_complex_features_and_a_lossy_dtype():
    """Complex features were stacked as complex (or lost their imaginary part with dtype=),
    dtype=np.int32 truncated them, float32 overflowed to inf, dtype='foo' was NumPy's message."""
    g1, g2 = Graph(np.array([[0, 1], [1, 2]]), 3), Graph(np.array([[0], [1]]), 2)
    rng = np.random.default_rng(0)
    f1, f2 = rng.random((3, 2)), rng.random((2, 2))
    for dtype in (None, np.float32):
        with pytest.raises(TypeError, match=r"^features\[1\]: expected real numbers, got dtype "
                                            "complex128"):
            batch_graphs([g1, g2], [f1, f2 + 1j], dtype=dtype)
    for dtype in (np.int32, "foo", np.complex128, np.float16):
        with pytest.raises(ValueError, match=r"^dtype: expected float32 or float64, got "):
            batch_graphs([g1, g2], [f1, f2], dtype=dtype)
    with pytest.raises(ValueError, match=r"^features\[0\]: a value of magnitude 1e\+300 "
                                         "overflows float32"):
        batch_graphs([g1, g2], [f1 * 0 + 1e300, f2], dtype=np.float32)
    for dtype, want in ((None, np.float64), (np.float32, np.float32), ("float64", np.float64)):
        gb = batch_graphs([g1, g2], [f1, f2], dtype=dtype)
        assert gb.x.dtype == want
        np.testing.assert_allclose(gb.x, np.vstack([f1, f2]), rtol=1e-7)
    assert batch_graphs([g1, g2], [f1.astype(int), f2.astype(int)]).x.dtype == np.int64
    assert batch_graphs([], [], dtype=np.float32).x.dtype == np.float32


def test_gat_checks_negative_slope_and_dropout():
    """negative_slope=nan gave NaN outputs, 'a' NumPy's message; dropout='0.5' was accepted,
    None raised an unnamed TypeError."""
    for bad, exc in ((float("nan"), ValueError), (np.inf, ValueError), ("a", TypeError),
                     (None, TypeError), (True, TypeError), (1j, TypeError)):
        with pytest.raises(exc, match="^negative_slope: expected a finite real number"):
            GATConv(3, 2, negative_slope=bad)
    for bad, exc in (("0.5", TypeError), (None, TypeError), (True, TypeError),
                     (float("nan"), ValueError), (-0.1, ValueError), (1.0, ValueError)):
        with pytest.raises(exc, match=r"^dropout: expected a (number|probability) in \[0, 1\)"):
            GATConv(3, 2, dropout=bad)
    layer = GATConv(3, 2, negative_slope=np.float32(0.1), dropout=np.float64(0.5))
    assert (layer.negative_slope, layer.dropout) == (pytest.approx(0.1), 0.5)
    assert GATConv(3, 2, negative_slope=-1, dropout=0).dropout == 0.0


def test_gcn_refuses_graph_weights_that_overflow_float32():
    """A float64 weight beyond float32's range became inf: non-finite outputs."""
    ei = np.array([[0, 1, 2], [1, 2, 0]])
    g = Graph(ei, edge_weight=np.array([1.0, 1e300, 1.0]))
    layer = GCNConv(2, 2, normalize=False, rng=0)
    with pytest.raises(ValueError, match="^edge_weight: a value of magnitude 1e\\+300 "
                                         "overflows float32"):
        layer(g, np.ones((3, 2)))
    assert np.isfinite(GCNConv(2, 2, normalize=False, dtype=np.float64, rng=0)(
        g, np.ones((3, 2)))).all()


@pytest.mark.parametrize("make", [lambda d: GCNConv(3, 2, dtype=d),
                                  lambda d: SAGEConv(3, 2, dtype=d),
                                  lambda d: GATConv(3, 2, dtype=d),
                                  lambda d: GINConv(_mlp(3, 4, 2, np.float32, 0), dtype=d)])
def test_layer_dtype_errors_name_dtype(make):
    """dtype='foo' raised NumPy's "data type 'foo' not understood"."""
    for bad in ("foo", np.int32, "complex64"):
        with pytest.raises(TypeError, match="^dtype: expected float32 or float64, got "):
            make(bad)
    assert make("float64").dtype == np.float64


def test_gin_names_x_when_its_width_does_not_fit_the_mlp():
    """The MLP's own message ('Dense: x has shape (13, 2), expected (*, 3)') used to escape."""
    g, _, _ = _graph()
    layer = GINConv(_mlp(3, 4, 2, np.float64, 0), dtype=np.float64)
    with pytest.raises(ValueError, match="^x: expected 3 features .*the mlp.*, got 2"):
        layer(g, np.ones((13, 2)))
    bare = GINConv(Dense(3, 2, dtype=np.float64, rng=0), dtype=np.float64)
    with pytest.raises(ValueError, match="^x: expected 3 features .*the mlp.*, got 4"):
        bare(g, np.ones((13, 4)))
    assert layer(g, np.ones((13, 3))).shape == (13, 2)


def test_a_single_graph_where_a_list_is_expected_is_named():
    """batch_graphs(graph) raised "TypeError: 'Graph' object is not iterable"."""
    g = Graph(np.array([[0], [1]]))
    with pytest.raises(TypeError, match=r"^graphs: expected a sequence of Graphs, got one Graph "
                                        r"\(wrap it in a list"):
        batch_graphs(g)
    with pytest.raises(TypeError, match="^graphs: expected a sequence of Graphs, got one Graph"):
        iter_batches(g, [np.ones((2, 1))])
    assert batch_graphs((g, g)).num_graphs == 2


def test_node_features_that_overflow_the_layer_dtype_are_named_as_such():
    # A finite float64 value too large for a float32 layer was reported as "NaN or infinity".
    from nesy.gnn import GCNConv, Graph

    g = Graph(np.array([[0, 1, 2], [1, 2, 0]]))
    x = np.ones((3, 2))
    x[1, 0] = 1e300
    with pytest.raises(ValueError, match=r"^x: a value of magnitude 1e\+300 overflows float32"):
        GCNConv(2, 2, rng=0)(g, x)
    x[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"^x: contains NaN or infinity"):
        GCNConv(2, 2, rng=0)(g, x)


# ---------------------------------------------------------------------- s14 gap review (PyG)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("sizes", [(5, 3), (3, 6)])
def test_gcn_improved_matches_pyg_formula(dtype, weighted, sizes):
    """PyG's GCNConv(improved=True): add_remaining_self_loops(fill_value=2) (a node's own loop
    keeps its weight, 1 in an unweighted graph), then the symmetric normalisation; nesy had
    no ``improved``. The graph has loops at nodes 5 and 7 and a node without in-edges."""
    g, ei, w = _graph(weighted=weighted)
    layer = GCNConv(*sizes, dtype=dtype, rng=1, improved=True)
    layer.bias[:] = np.arange(sizes[1]) * 0.1
    x = np.random.default_rng(2).standard_normal((13, sizes[0])).astype(dtype)
    p = _params64(layer)
    want = rg.gcn(ei, 13, x.astype(np.float64), p["weight"], p["bias"], w, improved=True)
    np.testing.assert_allclose(layer(g, x), want, rtol=TOL[dtype], atol=TOL[dtype])
    plain = rg.gcn(ei, 13, x.astype(np.float64), p["weight"], p["bias"], w)
    assert np.abs(want - plain).max() > 1e-2  # the loops' weight matters
    assert "improved=True" in repr(layer)
    if dtype == np.float64:
        _check_gradients(layer, g, x)


def test_gcn_improved_is_a_plus_two_i_on_a_graph_without_loops():
    """The dense formula of PyG's docstring, written out: D^-1/2 (A + 2I) D^-1/2 x W."""
    ei = np.array([[0, 1, 1, 2, 3], [1, 0, 2, 1, 1]])
    a = np.zeros((4, 4))
    a[ei[1], ei[0]] = 1
    a_hat = a + 2 * np.eye(4)
    d = a_hat.sum(axis=1) ** -0.5
    layer = GCNConv(3, 2, dtype=np.float64, rng=0, bias=False, improved=True)
    x = np.random.default_rng(1).standard_normal((4, 3))
    np.testing.assert_allclose(layer(Graph(ei, 4), x),
                               d[:, None] * a_hat * d[None, :] @ x @ layer.weight,
                               rtol=1e-13, atol=1e-13)
    # no added loops: improved changes nothing (as PyG)
    off = GCNConv(3, 2, dtype=np.float64, rng=0, add_self_loops=False, improved=True)
    ref = GCNConv(3, 2, dtype=np.float64, rng=0, add_self_loops=False)
    np.testing.assert_array_equal(off(Graph(ei, 4), x), ref(Graph(ei, 4), x))


@pytest.mark.parametrize("cached", [True, False])
def test_gcn_takes_pyg_cached_and_it_changes_nothing(cached):
    """cached=True/False was a TypeError. nesy keeps the normalised graph per Graph object
    either way: the results are those of cached=False for a sequence of different graphs (PyG's
    cached=True would reuse the first graph's normalisation), and a graph passed again is
    not normalised again."""
    g, ei, _ = _graph()
    g2, ei2, _ = _graph(seed=5)
    layer = GCNConv(4, 2, dtype=np.float64, rng=0, cached=cached)
    ref = GCNConv(4, 2, dtype=np.float64, rng=0)
    assert layer.cached is cached
    x = np.random.default_rng(0).standard_normal((13, 4))
    for graph in (g, g, g2, g):
        np.testing.assert_array_equal(layer(graph, x), ref(graph, x))
    layer(g, x)
    kept = layer._cache[1]
    layer(g, x)
    assert layer._cache[1] is kept
    p = _params64(layer)
    np.testing.assert_allclose(layer(g2, x), rg.gcn(ei2, 13, x, p["weight"], p["bias"]),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k", range(5))
def test_pyg_argument_order_is_named(k):
    """conv(x, edge_index), conv(x, graph) and conv(edge_index, x) said only "graph: expected
    a nesy.gnn.Graph, got ndarray"."""
    layer = _all_layers()[k]
    g, ei, _ = _graph()
    x = np.random.default_rng(0).standard_normal((13, 3))
    build = re.escape("Graph(edge_index, num_nodes)")
    with pytest.raises(TypeError, match=r"^graph: .*the arguments are \(graph, x\), not PyG's "
                                        rf"\(x, edge_index\); build the graph with {build}"):
        layer(x, ei)
    with pytest.raises(TypeError, match=r"^graph: .*the arguments are \(graph, x\), not "
                                        r"\(x, graph\); call conv\(graph, x\)"):
        layer(x, g)
    with pytest.raises(TypeError, match=rf"^graph: .*integers of shape \(2, 45\), as an edge "
                       rf"index: if it is one, build the graph with {build}"):
        layer(ei, x)
    with pytest.raises(TypeError, match=r"^graph: expected a nesy.gnn.Graph, got NoneType$"):
        layer(None, x)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"^graph: .*got Tensor: the arguments are \(graph, x\)"):
        layer(torch.from_numpy(x), torch.from_numpy(ei))
    assert layer(g, x).shape[0] == 13  # the right order still works


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gin_fixed_eps_is_a_buffer_in_the_state_dict(dtype):
    """A fixed eps was a plain float, missing from the state dict (PyG registers an 'eps'
    buffer): saving and loading a GINConv lost it."""
    layer = GINConv(_mlp(4, 6, 3, dtype, 7), eps=0.3, dtype=dtype)
    state = layer.state_dict()
    assert list(state)[0] == "eps" and state["eps"].shape == (1,)
    assert state["eps"].dtype == dtype and state["eps"][0] == dtype(0.3)
    assert "eps" not in dict(layer.named_parameters())
    assert "eps" in dict(layer.named_buffers())
    g, ei, _ = _graph()
    x = np.random.default_rng(5).standard_normal((13, 4)).astype(dtype)
    other = GINConv(_mlp(4, 6, 3, dtype, 7), eps=-0.4, dtype=dtype)
    other.load_state_dict(state)
    assert other.eps[0] == dtype(0.3)
    np.testing.assert_array_equal(other(g, x), layer(g, x))
    state["eps"][0] = 1.5
    other.load_state_dict(state)
    p = _params64(other)
    mlp = rg.mlp2(p["mlp.0.weight"], p["mlp.0.bias"], p["mlp.2.weight"], p["mlp.2.bias"])
    np.testing.assert_allclose(other(g, x), rg.gin(ei, 13, x.astype(np.float64), 1.5, mlp),
                               rtol=TOL[dtype] * 2, atol=TOL[dtype] * 2)
    trained = GINConv(_mlp(4, 6, 3, dtype, 7), eps=0.3, train_eps=True, dtype=dtype)
    assert list(trained.state_dict()) == list(state)  # the same keys either way, as PyG
    assert "eps" in dict(trained.named_parameters())


def test_gnn_state_dicts_use_nesy_layouts_as_the_readme_says():
    """The README said that Module state dicts use torch's names and layouts, without
    excepting the GNN layers, whose weights are (in_features, out_features) under nesy's
    names."""
    from pathlib import Path

    state = GCNConv(4, 3).state_dict()
    assert list(state) == ["weight", "bias"] and state["weight"].shape == (4, 3)
    assert SAGEConv(4, 3).state_dict()["weight_neigh"].shape == (4, 3)
    text = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert "Module state dicts use torch's names and layouts" not in text
    assert ("The GNN layers (`nesy.gnn.GCNConv` and the others) use nesy's own names, with "
            "weights as `(in_features, out_features)`") in text


def test_gin_pickled_with_a_float_eps_loads_with_the_eps_buffer():
    """A GINConv pickled before the fixed eps became a buffer (a plain float attribute)
    unpickles into the current layout: eps in the state dict, the same output."""
    import pickle

    layer = GINConv(_mlp(4, 6, 3, np.float64, 7), eps=0.3, dtype=np.float64)
    g, _, _ = _graph()
    x = np.random.default_rng(5).standard_normal((13, 4))
    want = layer(g, x)
    old = pickle.loads(pickle.dumps(layer))
    del old.__dict__["_buffers"]["eps"]  # the layout of the earlier versions
    object.__setattr__(old, "eps", 0.3)
    back = pickle.loads(pickle.dumps(old))
    assert isinstance(back.eps, np.ndarray) and back.state_dict()["eps"].tolist() == [0.3]
    np.testing.assert_array_equal(back(g, x), want)
    same = pickle.loads(pickle.dumps(layer))  # a current pickle keeps its buffer
    assert same.state_dict()["eps"].tolist() == [0.3] and "eps" in same._buffers


@pytest.mark.parametrize("make", [
    lambda: GCNConv(48, 64, rng=0),  # aggregates first
    lambda: GCNConv(64, 48, rng=0),  # transforms first
    lambda: SAGEConv(64, 48, rng=0),
    lambda: SAGEConv(64, 48, aggr="max", normalize=True, rng=0),
    lambda: GATConv(64, 16, heads=4, rng=0),
])
def test_conv_layers_return_outputs_and_input_gradients_on_cache_lines(make):
    """The layers' products feed gathers (here or in the next layer): they are written on
    64-byte lines (nesy._mem.matmul_aligned), the aggregation outputs are already."""
    rng = np.random.default_rng(0)
    n = 2000  # large enough that NumPy's own arrays would sit 16 bytes past a line
    g = Graph(rng.integers(0, n, (2, 8000)), n)
    layer = make()
    x = rng.standard_normal((n, layer.in_features)).astype(np.float32)
    out = layer(g, x)
    dx = layer.backward(np.ones_like(out))
    assert out.ctypes.data % 64 == 0 and dx.ctypes.data % 64 == 0


def test_gin_state_saved_before_eps_was_a_buffer_still_loads():
    """State dicts written before the fixed eps was a buffer lack 'eps': they load (strict) and
    keep the layer's eps; a trainable eps (a parameter, always saved) must still be there."""
    mlp = lambda: Sequential(Dense(4, 8, rng=0), ReLU(), Dense(8, 3, rng=1))  # noqa: E731
    old = GINConv(mlp(), eps=0.25)
    state = {k: v for k, v in old.state_dict().items() if k != "eps"}
    new = GINConv(mlp(), eps=0.25)
    first = lambda layer: layer.mlp._modules["0"].weight  # noqa: E731
    first(new)[...] = 0.0  # something the load must overwrite
    new.load_state_dict(state)
    np.testing.assert_array_equal(first(new), first(old))
    assert new.eps[0] == np.float32(0.25)
    trainable = GINConv(mlp(), train_eps=True)
    with pytest.raises(ValueError, match="missing key 'eps'"):
        trainable.load_state_dict({k: v for k, v in trainable.state_dict().items() if k != "eps"})
    # nested, as in a GraphClassifier's network
    outer = Sequential(GINConv(mlp(), eps=0.5))
    nested = {k: v for k, v in outer.state_dict().items() if not k.endswith("eps")}
    Sequential(GINConv(mlp(), eps=0.5)).load_state_dict(nested)


def test_gcn_settings_changed_after_a_forward_are_seen_on_the_same_graph():
    """The normalised graph is cached per Graph object and per the settings that shape it:
    switching improved (or normalize) between calls on one graph must change the result."""
    rng = np.random.default_rng(5)
    g = Graph(rng.integers(0, 30, (2, 120)), 30)
    x = rng.standard_normal((30, 4)).astype(np.float32)
    layer = GCNConv(4, 3, rng=0)
    plain = layer(g, x)
    layer.improved = True
    improved = layer(g, x)
    np.testing.assert_allclose(improved, GCNConv(4, 3, rng=0, improved=True)(g, x), rtol=1e-6)
    assert not np.allclose(plain, improved)
    layer.improved = False
    np.testing.assert_array_equal(layer(g, x), plain)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copied_gin_with_trainable_eps_ties_like_any_parameter(how):
    """s15 finding 2: GINConv.__setstate__ skipped Module.__setstate__, so a copied layer's
    trainable eps was not recorded as a parameter: registering it on another module gave it a
    second gradient array, and listing the parameters then raised."""
    import copy
    import pickle

    from nesy.nn import Module

    layer = GINConv(_mlp(3, 4, 2, np.float64, 0), eps=0.2, train_eps=True, dtype=np.float64)
    clone = copy.deepcopy(layer) if how == "deepcopy" else pickle.loads(pickle.dumps(layer))

    class Holder(Module):
        def __init__(self, gin):
            super().__init__()
            self.gin = gin
            self.register_parameter("e2", gin.eps)

    holder = Holder(clone)
    assert holder.grad("e2") is clone.grad("eps") is not layer.grad("eps")
    assert [n for n, _ in holder.named_parameters()][0] == "e2"
    assert len(holder.parameters()) == len(layer.parameters())
