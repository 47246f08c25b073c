"""Mini-batches of small graphs: one block-diagonal :class:`Graph` with a graph-id vector,
per-graph readout (sum, mean, max; forward and backward) and an iterator over shuffled batches.

The readout is a segment reduce run by the aggregation kernel on a rectangular CSR: one row per
graph over the rows of ``x`` (the nodes of graph ``g``, in node order).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Optional

import numpy as np

from nesy import _core
from nesy._checks import check_float_dtype, check_int, physical_memory_bytes
from nesy.gnn.graph import Graph, _check_consistent, _finite_cast
from nesy.nn.module import Module

__all__ = ["GraphBatch", "batch_graphs", "readout", "readout_backward", "GlobalPool",
           "iter_batches"]

READOUTS = ("sum", "mean", "max")


class GraphBatch:
    """Several graphs as one block-diagonal graph.

    Attributes
    ----------
    graph : Graph
        Nodes of graph ``g`` are ``ptr[g]:ptr[g + 1]``; no edge crosses two graphs.
    x : ndarray of shape (n_nodes, n_features) or None
        The stacked node features, when features were given.
    batch : ndarray of int64, shape (n_nodes,)
        Graph id of every node.
    ptr : ndarray of int64, shape (num_graphs + 1,)
        Node offsets.
    num_graphs : int
    """

    def __init__(self, graph: Graph, batch: np.ndarray, ptr: np.ndarray,
                 x: Optional[np.ndarray] = None) -> None:
        self.graph, self.batch, self.ptr, self.x = graph, batch, ptr, x
        self.num_graphs = int(ptr.size - 1)

    def __repr__(self) -> str:
        return (f"GraphBatch(num_graphs={self.num_graphs}, num_nodes={self.graph.num_nodes}, "
                f"num_edges={self.graph.num_edges})")


def batch_graphs(graphs: Sequence[Graph], features: Optional[Sequence[Any]] = None,
                 dtype: Any = None) -> GraphBatch:
    """Stack ``graphs`` (and their node features) into one :class:`GraphBatch`.

    Parameters
    ----------
    graphs : sequence of Graph
    features : sequence of array, optional
        ``features[i]`` of shape ``(graphs[i].num_nodes, n_features)``, the same
        ``n_features`` for all.
    dtype : {np.float32, np.float64}, optional
        Of the stacked features (default: NumPy's promotion of the inputs).

    Returns
    -------
    GraphBatch

    Raises
    ------
    TypeError
        ``graphs`` is a single Graph, or an element of it is not a Graph; a feature matrix is
        complex.
    ValueError
        A graph's ``num_nodes`` was changed by hand (it no longer fits its CSR), naming
        ``graphs[i]``; ``features`` has a different length than ``graphs``; a feature matrix
        has the wrong number of rows or columns, holds NaN / infinity or a value too large for
        ``dtype``; ``dtype`` is not float32 or float64.
    """
    graphs = _graph_list(graphs)
    dtype = _check_dtype(dtype)
    for i, g in enumerate(graphs):
        if not isinstance(g, Graph):
            raise TypeError(f"graphs[{i}]: expected a nesy.gnn.Graph, got {type(g).__name__}")
        try:
            _check_consistent(g)
        except ValueError as exc:  # name the graph of the list
            raise ValueError(f"graphs[{i}]: {str(exc).removeprefix('graph: ')}") from None
    sizes = np.array([g.num_nodes for g in graphs], dtype=np.int64)
    ptr = np.zeros(len(graphs) + 1, np.int64)
    np.cumsum(sizes, out=ptr[1:])
    n = int(ptr[-1])
    parts = [g.edge_index() + ptr[i] for i, g in enumerate(graphs)]
    ei = np.hstack(parts) if parts else np.zeros((2, 0), np.int64)
    weighted = any(g.edge_weight is not None for g in graphs)
    w = np.concatenate([g._weights_or_ones() for g in graphs]) if weighted else None
    batch = np.repeat(np.arange(len(graphs), dtype=np.int64), sizes)
    x = None if features is None else _stack_features(graphs, features, dtype)
    return GraphBatch(Graph(ei, n, w), batch, ptr, x)


def _graph_list(graphs: Any) -> list[Graph]:
    """``graphs`` as a list; a single Graph, a GraphBatch and anything not iterable are
    refused by name (rather than "'Graph' object is not iterable")."""
    if isinstance(graphs, Graph):
        raise TypeError("graphs: expected a sequence of Graphs, got one Graph (wrap it in a "
                        "list: [graph])")
    if isinstance(graphs, GraphBatch):
        raise TypeError("graphs: expected a sequence of Graphs, got a GraphBatch (graphs "
                        "already batched); pass the list of Graphs it was built from")
    try:
        return list(graphs)
    except TypeError:
        raise TypeError(f"graphs: expected a sequence of Graphs, got "
                        f"{type(graphs).__name__}") from None


def _check_dtype(dtype: Any) -> Optional[np.dtype]:
    """``dtype`` of :func:`batch_graphs`: None, float32 or float64 (an integer dtype would
    truncate the features)."""
    return None if dtype is None else check_float_dtype(dtype)


def _stack_features(graphs: list[Graph], features: Sequence[Any], dtype: Optional[np.dtype]
                    ) -> np.ndarray:
    feats = [np.asarray(f) for f in features]
    if len(feats) != len(graphs):
        raise ValueError(f"features: expected one matrix per graph ({len(graphs)}), got "
                         f"{len(feats)}")
    width = None
    for i, (g, f) in enumerate(zip(graphs, feats)):
        if f.ndim != 2 or f.shape[0] != g.num_nodes:
            raise ValueError(f"features[{i}]: expected shape ({g.num_nodes}, n_features) for "
                             f"a graph of {g.num_nodes} nodes, got {f.shape}")
        if width is not None and f.shape[1] != width:
            raise ValueError(f"features[{i}]: has {f.shape[1]} features, features[0] has "
                             f"{width}")
        width = f.shape[1]
        if np.iscomplexobj(f):  # the cast would drop the imaginary part
            raise TypeError(f"features[{i}]: expected real numbers, got dtype {f.dtype}")
        if not np.issubdtype(f.dtype, np.number) or not np.all(np.isfinite(f)):
            raise ValueError(f"features[{i}]: expected finite real numbers")
        if dtype is not None:
            feats[i] = _finite_cast(f, dtype, f"features[{i}]")
    if not feats:
        return np.zeros((0, 0), dtype or np.float64)
    x = np.concatenate(feats, axis=0)
    return np.ascontiguousarray(x, dtype=dtype or x.dtype)


def _check_batch_ids(b: np.ndarray) -> None:
    if b.dtype == bool or not np.issubdtype(b.dtype, np.integer):
        raise TypeError(f"batch: expected integer graph ids, got dtype {b.dtype}")


def _check_graph_count(num_graphs: int, n_features: int, itemsize: int, from_ids: bool) -> None:
    """Refuses, before anything is allocated, a graph count whose output (``num_graphs x
    n_features``) and segment offsets exceed the machine's memory: a huge id would otherwise
    end in NumPy's "Unable to allocate 7.28 TiB" naming no argument (as Graph's
    ``_check_node_count``)."""
    need = 8 * (num_graphs + 1) + itemsize * num_graphs * max(n_features, 1)
    mem = physical_memory_bytes()
    if need > (mem if mem is not None else np.iinfo(np.intp).max):
        what = (f"batch: graph id {num_graphs - 1} implies {num_graphs} graphs" if from_ids
                else f"num_graphs: {num_graphs} graphs")
        raise ValueError(f"{what}, whose readout takes {need / 2**30:.3g} GiB, more than this "
                         "machine's memory; graph ids must be 0..num_graphs-1")


def _segments(batch: Any, n_rows: int, num_graphs: int) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(batch)
    _check_batch_ids(b)
    if b.shape != (n_rows,):
        raise ValueError(f"batch: expected shape ({n_rows},) (one graph id per row of x), "
                         f"got {b.shape}")
    if b.size and (b.min() < 0 or b.max() >= num_graphs):
        bad = int(b.min()) if b.min() < 0 else int(b.max())
        raise IndexError(f"batch: graph id {bad} is out of range for num_graphs={num_graphs}")
    indices = np.argsort(b, kind="stable").astype(np.int64)
    indptr = np.zeros(num_graphs + 1, np.int64)
    np.cumsum(np.bincount(b, minlength=num_graphs), out=indptr[1:])
    return indptr, indices


def readout(x: Any, batch: Any, num_graphs: Optional[int] = None, reduce: str = "sum"
            ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Per-graph reduction of node rows.

    Parameters
    ----------
    x : ndarray of float32 or float64, shape (n_nodes, n_features)
    batch : ndarray of int, shape (n_nodes,)
        Graph id of every row.
    num_graphs : int, optional
        Default ``batch.max() + 1``.
    reduce : {"sum", "mean", "max"}

    Returns
    -------
    out : ndarray of shape (num_graphs, n_features)
        0 for a graph without nodes.
    arg : ndarray of int64 or None
        For max, the row of ``x`` that won each entry (-1 for an empty graph); needed by
        :func:`readout_backward`.
    """
    if reduce not in READOUTS:
        raise ValueError(f"reduce: expected one of {READOUTS}, got {reduce!r}")
    x = np.asarray(x)
    if x.ndim != 2 or x.dtype not in (np.float32, np.float64):
        raise ValueError(f"x: expected a float32/float64 matrix (n_nodes, n_features), got "
                         f"{x.dtype} {x.shape}")
    b = np.asarray(batch)
    _check_batch_ids(b)
    from_ids = num_graphs is None
    if from_ids:
        num_graphs = int(b.max()) + 1 if b.size else 0
    num_graphs = check_int("num_graphs", num_graphs, 0)
    _check_graph_count(num_graphs, x.shape[1], x.dtype.itemsize, from_ids)
    indptr, indices = _segments(b, x.shape[0], num_graphs)
    x = np.ascontiguousarray(x)
    if not _core.all_finite([x]):
        raise ValueError("x: contains NaN or infinity")
    out, arg = _core.gnn_aggregate(indptr, indices, x, reduce, None)
    if arg is not None:  # segment positions -> rows of x (no rows: every entry is -1)
        arg = (np.where(arg >= 0, indices[np.maximum(arg, 0)], -1) if indices.size
               else np.full_like(arg, -1))
    return out, arg


def readout_backward(grad_out: Any, batch: Any, reduce: str = "sum",
                     arg: Optional[np.ndarray] = None) -> np.ndarray:
    """Gradient of :func:`readout` with respect to ``x``: ``(n_nodes, n_features)``.

    Sum copies each graph's gradient to its nodes, mean also divides by the node count, max
    routes it to the winning row ``arg`` (each entry a row of its own graph, or -1).
    """
    if reduce not in READOUTS:
        raise ValueError(f"reduce: expected one of {READOUTS}, got {reduce!r}")
    g = np.asarray(grad_out)
    if g.ndim != 2 or g.dtype not in (np.float32, np.float64):
        raise ValueError(f"grad_out: expected a float32/float64 matrix (num_graphs, "
                         f"n_features), got {g.dtype} {g.shape}")
    g = np.ascontiguousarray(g)
    if not _core.all_finite([g]):
        raise ValueError("grad_out: contains NaN or infinity")
    b = np.asarray(batch)
    if b.ndim != 1:
        raise ValueError(f"batch: expected shape (n_nodes,) (one graph id per node), got "
                         f"{b.shape}")
    _check_batch_ids(b)
    if b.size and b.min() >= 0 and b.max() >= g.shape[0]:  # too few rows, or a wrong id
        raise IndexError(f"batch: graph id {int(b.max())} is out of range for the "
                         f"{g.shape[0]} rows of grad_out (one per graph)")
    _segments(b, b.shape[0], g.shape[0])  # integer graph ids, each in range
    if reduce == "sum":
        return g[b]
    if reduce == "mean":
        count = np.bincount(b, minlength=g.shape[0]).astype(g.dtype)
        return g[b] / count[b][:, None]
    if arg is None or np.shape(arg) != g.shape:
        raise ValueError("arg: max readout needs the arg returned by readout, shape "
                         f"{g.shape}")
    arg = np.asarray(arg)
    if not np.issubdtype(arg.dtype, np.integer) or (
            arg.size and (arg.min() < -1 or arg.max() >= b.size)):
        raise ValueError(f"arg: expected the row ids returned by readout (-1 or in "
                         f"[0, {b.size})), got dtype {arg.dtype}")
    gid, col = np.nonzero(arg >= 0)
    home = b[arg[gid, col]]
    stray = np.flatnonzero(home != gid)
    if stray.size:  # an arg of another batch: it would route gradients across graphs
        k = stray[0]
        raise ValueError(f"arg[{gid[k]}, {col[k]}]: row {arg[gid[k], col[k]]} belongs to graph "
                         f"{home[k]}, not to graph {gid[k]}; pass the arg readout returned for "
                         "this batch")
    out = np.zeros((b.size, g.shape[1]), g.dtype)
    out[arg[gid, col], col] = g[gid, col]  # one winner per (graph, feature): no collisions
    return out


class GlobalPool(Module):
    """Readout as a module: ``forward(x, batch, num_graphs)`` -> ``(num_graphs, n_features)``.

    Parameters
    ----------
    reduce : {"sum", "mean", "max"}
    """

    def __init__(self, reduce: str = "sum") -> None:
        super().__init__()
        if reduce not in READOUTS:
            raise ValueError(f"reduce: expected one of {READOUTS}, got {reduce!r}")
        self.reduce = reduce

    def forward(self, x: Any, batch: Any, num_graphs: Optional[int] = None  # type: ignore[override]
                ) -> np.ndarray:
        out, arg = readout(x, batch, num_graphs, self.reduce)
        # A copy: the caller may reuse its batch array before backward.
        self._save(np.array(batch, dtype=np.int64), arg, out.shape)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        batch, arg, shape = self._saved()
        if np.shape(grad_out) != shape:
            raise ValueError(f"grad_out: expected the output's shape {shape}, got "
                             f"{np.shape(grad_out)}")
        return readout_backward(grad_out, batch, self.reduce, arg)

    def extra_repr(self) -> str:
        return repr(self.reduce)


def iter_batches(graphs: Sequence[Graph], features: Sequence[Any], batch_size: int = 32,
                 shuffle: bool = True, rng: Any = None, dtype: Any = None
                 ) -> Iterator[tuple[np.ndarray, GraphBatch]]:
    """Yield ``(indices, GraphBatch)`` over ``graphs`` in batches of ``batch_size`` graphs,
    in a random order (``numpy.random.default_rng(rng)``) when ``shuffle``.

    ``batch_size`` and the lengths of ``graphs`` and ``features`` are checked when it is
    called, not at the first batch."""
    size = check_int("batch_size", batch_size, 1)
    graphs = _graph_list(graphs)
    if len(features) != len(graphs):
        raise ValueError(f"features: expected one matrix per graph ({len(graphs)}), got "
                         f"{len(features)}")
    return _iter_batches(graphs, features, size, shuffle, rng, dtype)


def _iter_batches(graphs: Sequence[Graph], features: Sequence[Any], size: int, shuffle: bool,
                  rng: Any, dtype: Any) -> Iterator[tuple[np.ndarray, GraphBatch]]:
    n = len(graphs)
    order = np.random.default_rng(rng).permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, size):
        idx = order[start:start + size]
        yield idx, batch_graphs([graphs[i] for i in idx], [features[i] for i in idx], dtype)
