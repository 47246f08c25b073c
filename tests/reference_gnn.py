"""Hand-written NumPy graph layers (no nesy kernels): the references the layers of
python/nesy/gnn/layers.py and the readouts of python/nesy/gnn/batch.py are checked against.

Edges are given as an ``edge_index`` of shape (2, n_edges): sources in row 0, destinations in
row 1; every function works in float64.
"""

from __future__ import annotations

import numpy as np


def gcn(ei, n, x, weight, bias, edge_weight=None, add_self_loops=True, normalize=True,
        improved=False):
    """``D^-1/2 (A + I) D^-1/2 x W + b`` with a dense adjacency ``A[dst, src] += w``. With
    ``add_self_loops``, as PyG: every node gets one loop, of weight 1 (2 with ``improved``:
    ``A + 2I``), or of the weight of its own loop edge if it has one (the last, if several; 1
    for an unweighted graph, whose edges all weigh 1 in PyG's gcn_norm)."""
    w = np.ones(ei.shape[1]) if edge_weight is None else np.asarray(edge_weight, float)
    a = np.zeros((n, n))
    if add_self_loops:
        loop_w = np.full(n, 2.0 if improved else 1.0)
        for (s, d), wi in zip(ei.T, w):
            if s == d:
                loop_w[s] = wi
            else:
                a[d, s] += wi
        a += np.diag(loop_w)
    else:
        np.add.at(a, (ei[1], ei[0]), w)
    if normalize:
        deg = a.sum(axis=1)
        inv = np.where(deg > 0, 1 / np.sqrt(np.where(deg > 0, deg, 1)), 0)
        a = inv[:, None] * a * inv[None, :]
    out = a @ (x @ weight)
    return out if bias is None else out + bias


def neighbour_reduce(ei, n, x, reduce):
    """Sum, mean or max of ``x[src]`` over each node's in-edges (0 without in-edges)."""
    out = np.zeros((n, x.shape[1]))
    if reduce == "max":
        out[:] = -np.inf
        np.maximum.at(out, ei[1], x[ei[0]])
        out[np.isinf(out)] = 0
        return out
    np.add.at(out, ei[1], x[ei[0]])
    if reduce == "mean":
        cnt = np.bincount(ei[1], minlength=n)
        out /= np.maximum(cnt, 1)[:, None]
    return out


def sage(ei, n, x, w_neigh, w_root, bias, aggr="mean", normalize=False):
    out = neighbour_reduce(ei, n, x, aggr) @ w_neigh
    if w_root is not None:
        out = out + x @ w_root
    if bias is not None:
        out = out + bias
    if normalize:
        out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def gin(ei, n, x, eps, mlp):
    """``mlp((1 + eps) x + sum over in-edges)``; ``mlp`` is a NumPy function."""
    return mlp((1 + eps) * x + neighbour_reduce(ei, n, x, "sum"))


def mlp2(w1, b1, w2, b2):
    """Dense -> ReLU -> Dense as a NumPy function."""
    return lambda h: np.maximum(h @ w1 + b1, 0) @ w2 + b2


def gat(ei, n, x, weight, att_src, att_dst, bias, heads, concat=True, negative_slope=0.2,
        add_self_loops=True, edge_mask=None):
    """Multi-head GAT. ``edge_mask`` (n_edges_with_loops, heads) multiplies the attention
    coefficients (dropout), edges ordered as ``ei`` with self-loops appended."""
    if add_self_loops:
        ei = ei[:, ei[0] != ei[1]]
        loops = np.arange(n)
        ei = np.hstack([ei, np.vstack([loops, loops])])
    src, dst = ei
    f = att_src.shape[1]
    z = (x @ weight).reshape(n, heads, f)
    e = (z * att_src).sum(-1)[src] + (z * att_dst).sum(-1)[dst]  # (E, heads)
    e = np.where(e > 0, e, negative_slope * e)
    top = np.full((n, heads), -np.inf)
    np.maximum.at(top, dst, e)
    p = np.exp(e - top[dst])
    den = np.zeros((n, heads))
    np.add.at(den, dst, p)
    alpha = p / den[dst]
    if edge_mask is not None:
        alpha = alpha * edge_mask
    out = np.zeros((n, heads, f))
    np.add.at(out, dst, alpha[:, :, None] * z[src])
    out = out.reshape(n, heads * f) if concat else out.mean(axis=1)
    return out if bias is None else out + bias


def readout(x, batch, num_graphs, reduce):
    """Sum, mean or max of the rows of ``x`` per graph id (0 for a graph without nodes)."""
    out = np.zeros((num_graphs, x.shape[1]))
    for g in range(num_graphs):
        rows = x[batch == g]
        if len(rows):
            out[g] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0)}[reduce]
    return out
