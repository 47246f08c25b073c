"""Graphs for message passing: CSR by destination, with the transpose kept for backward passes.

Edges go from a source to a destination node; an ``edge_index`` of shape ``(2, E)`` holds the
sources in row 0 and the destinations in row 1 (PyG's convention). A node's aggregate is taken
over its in-edges. The operations on a graph: :func:`aggregate` (sum, mean, max, min with
optional per-edge or per-edge-and-head weights), :func:`sddmm` (a score per edge from its
endpoints' features) and :func:`edge_softmax` (scores normalised over each node's in-edges),
each with its backward. Kernels: ``rust/core/src/gnn``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from nesy import _core
from nesy._checks import check_int, physical_memory_bytes

REDUCES = ("sum", "mean", "max", "min")


class Graph:
    """A directed graph with optional edge weights, stored as CSR by destination.

    Parameters
    ----------
    edge_index : array of int, shape (2, n_edges)
        Row 0: source nodes; row 1: destination nodes. Duplicate edges and self-loops are kept.
    num_nodes : int, optional
        Number of nodes (default: the largest index + 1; 0 for no edges).
    edge_weight : array of real numbers, shape (n_edges,), optional
        One weight per edge, in the order of ``edge_index``. Floating-point weights keep their
        dtype; integer and boolean ones (edge counts) become float64, as in :meth:`from_scipy`;
        complex, object and string arrays are refused (TypeError naming ``edge_weight``).

    Attributes
    ----------
    indptr, indices : ndarray of int64
        CSR by destination: the sources of node ``d``'s in-edges are
        ``indices[indptr[d]:indptr[d + 1]]``.
    t_indptr, t_indices, perm : ndarray of int64
        The transpose (by source): destinations of each node's out-edges, and for every one the
        position of that edge in the CSR order.
    edge_weight : ndarray or None
        Weights in CSR order.
    order : ndarray of int64
        ``order[k]`` is the position in ``edge_index`` of CSR edge ``k``.
    """

    def __init__(self, edge_index: Any, num_nodes: Optional[int] = None,
                 edge_weight: Optional[Any] = None) -> None:
        try:
            ei = np.asarray(edge_index)
        except ValueError:  # ragged: NumPy's "inhomogeneous shape"
            raise ValueError("edge_index: expected shape (2, n_edges), got rows of different "
                             "lengths") from None
        if ei.size == 0 and ei.dtype.kind == "f":  # [[], []]: an empty list is float64
            ei = ei.astype(np.int64)
        if ei.dtype == bool or not np.issubdtype(ei.dtype, np.integer):
            raise TypeError(f"edge_index: expected an integer array, got dtype {ei.dtype}")
        if ei.ndim != 2 or ei.shape[0] != 2:
            raise ValueError(f"edge_index: expected shape (2, n_edges), got {ei.shape}")
        if ei.size and ei.min() < 0:
            raise ValueError(f"edge_index: node indices must be >= 0, found {int(ei.min())}")
        if ei.size and int(ei.max()) > np.iinfo(np.int64).max:  # uint64: before the cast
            raise IndexError(f"edge_index: node index {int(ei.max())} does not fit in int64")
        ei = np.ascontiguousarray(ei, dtype=np.int64)
        top = int(ei.max()) + 1 if ei.size else 0
        from_ids = num_nodes is None
        if from_ids:
            num_nodes = top
        num_nodes = check_int("num_nodes", num_nodes, 0)
        if top > num_nodes:
            raise IndexError(f"edge_index: node index {top - 1} is out of range for "
                             f"num_nodes={num_nodes}")
        _check_node_count(num_nodes, from_ids)
        n_edges = ei.shape[1]
        w = None
        if edge_weight is not None:
            w = np.asarray(edge_weight)
            if w.dtype.kind not in "biuf":  # as from_scipy: complex would lose its imaginary part
                raise TypeError(f"edge_weight: expected real numbers, got dtype {w.dtype}")
            if w.dtype.kind != "f":  # integer counts or booleans: float64, as from_scipy
                w = w.astype(np.float64)
            if w.shape != (n_edges,):
                raise ValueError(f"edge_weight: expected shape ({n_edges},), got {w.shape}")
            if not np.all(np.isfinite(w)):
                raise ValueError("edge_weight: contains NaN or infinity")
        self.num_nodes = num_nodes
        # Two stable counting sorts (by destination, then the CSR edges by source), O(E + n).
        try:
            (self.indptr, self.order, self.indices, self.t_indptr, self.perm,
             self.t_indices) = _core.gnn_build_csr(ei[0], ei[1], num_nodes)
        except MemoryError as e:
            raise MemoryError(_too_many_nodes(num_nodes, from_ids)) from e
        self.edge_weight = None if w is None else np.ascontiguousarray(w[self.order])

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_edge_list(cls, edges: Any, num_nodes: Optional[int] = None,
                       edge_weight: Optional[Any] = None) -> Graph:
        """From ``[(source, destination), ...]``. Errors about the ids name ``edges``."""
        try:
            e = np.asarray(edges)
        except ValueError:  # ragged: NumPy's "inhomogeneous shape"
            raise ValueError("edges: expected pairs (source, destination), got sequences of "
                             "different lengths") from None
        if e.size == 0:
            e = np.zeros((0, 2), np.int64)
        if e.ndim != 2 or e.shape[1] != 2:
            raise ValueError(f"edges: expected pairs (source, destination), got shape {e.shape}")
        try:
            return cls(e.T, num_nodes, edge_weight)
        except (TypeError, ValueError, IndexError) as exc:  # the transpose is ours: name edges
            msg = str(exc)
            if not msg.startswith("edge_index: "):
                raise
            raise type(exc)("edges: " + msg.removeprefix("edge_index: ")) from None

    @classmethod
    def from_scipy(cls, matrix: Any) -> Graph:
        """From a SciPy sparse matrix ``A`` where ``A[d, s] != 0`` is an edge ``s -> d`` with
        weight ``A[d, s]`` (rows are destinations, so ``A @ x`` is the weighted sum).
        Explicitly stored zeros are no edges (``matrix`` itself is left as it is); duplicate
        entries are kept as parallel edges."""
        if not hasattr(matrix, "tocoo"):
            raise TypeError(f"matrix: expected a SciPy sparse matrix, got "
                            f"{type(matrix).__name__}")
        coo = matrix.tocoo(copy=True)  # a COO input would otherwise be its own tocoo()
        if coo.dtype.kind not in "biuf":  # a complex weight would lose its imaginary part
            raise TypeError(f"matrix: expected real values, got dtype {coo.dtype}")
        if coo.shape[0] != coo.shape[1]:
            raise ValueError(f"matrix: expected a square adjacency, got shape {coo.shape}")
        coo.eliminate_zeros()
        w = np.asarray(coo.data, dtype=np.float64)
        if not np.all(np.isfinite(w)):
            raise ValueError("matrix: contains NaN or infinity")
        return cls(np.vstack([coo.col, coo.row]), coo.shape[0], w)

    # ------------------------------------------------------------------ properties
    @property
    def num_edges(self) -> int:
        return int(self.indices.size)

    def edge_index(self) -> np.ndarray:
        """``(2, n_edges)`` in CSR order. ValueError naming ``graph`` when ``num_nodes`` was
        changed by hand and no longer fits the CSR."""
        _check_consistent(self)
        dst = np.repeat(np.arange(self.num_nodes), np.diff(self.indptr))
        return np.vstack([self.indices, dst])

    def in_degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    def out_degree(self) -> np.ndarray:
        return np.diff(self.t_indptr)

    def _weights_or_ones(self) -> np.ndarray:
        return self.edge_weight if self.edge_weight is not None else np.ones(self.num_edges)

    # ------------------------------------------------------------------ transforms
    def add_self_loops(self, fill_value: float = 1.0) -> Graph:
        """A new graph with an edge ``i -> i`` (weight ``fill_value``) added at every node."""
        loops = np.arange(self.num_nodes)
        ei = np.hstack([self.edge_index(), np.vstack([loops, loops])])
        if self.edge_weight is None and fill_value == 1.0:
            return Graph(ei, self.num_nodes)
        # given weights, or loops that weigh other than 1: the other edges keep theirs (1)
        w = np.concatenate([self._weights_or_ones(), np.full(self.num_nodes, fill_value)])
        return Graph(ei, self.num_nodes, w)

    def add_remaining_self_loops(self, fill_value: float = 1.0) -> Graph:
        """A new graph with exactly one self-loop per node, as PyG's
        ``add_remaining_self_loops``: a node that has a loop keeps it (with its weight; of
        several, the last one's), the others get one of weight ``fill_value``."""
        ei = self.edge_index()
        loop = ei[0] == ei[1]
        loops = np.arange(self.num_nodes)
        edges = np.hstack([ei[:, ~loop], np.vstack([loops, loops])])
        if self.edge_weight is None and fill_value == 1.0:
            return Graph(edges, self.num_nodes)
        loop_w = np.full(self.num_nodes, float(fill_value))
        loop_w[ei[0, loop]] = self._weights_or_ones()[loop]
        return Graph(edges, self.num_nodes,
                     np.concatenate([self._weights_or_ones()[~loop], loop_w]))

    def to_undirected(self, reduce: str = "mean") -> Graph:
        """A new graph with the reverse of every edge added and duplicate edges merged: the
        weights of all copies of an edge ``s -> d`` (given ones and reverses of ``d -> s``) are
        combined by ``reduce``, so both directions get the same weight. The default "mean"
        leaves a graph that is already undirected as it is (calling it twice changes nothing);
        "add" is PyG's default (it doubles the weights of an undirected graph); "max", "min"."""
        reducers = {"add": np.add, "max": np.maximum, "min": np.minimum, "mean": np.add}
        if reduce not in reducers:
            raise ValueError(f"reduce: expected one of {sorted(reducers)}, got {reduce!r}")
        ei = self.edge_index()
        both = np.hstack([ei, ei[::-1]])
        _, first, inverse = np.unique(both[0] * max(self.num_nodes, 1) + both[1],
                                      return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # unique edges in order of first appearance
        edges = both[:, first[order]]
        if self.edge_weight is None:
            return Graph(edges, self.num_nodes)
        w2 = np.concatenate([self.edge_weight] * 2)
        init = {"add": 0.0, "mean": 0.0, "max": -np.inf, "min": np.inf}[reduce]
        acc = np.full(first.size, init)
        reducers[reduce].at(acc, inverse, w2)
        if reduce == "mean":
            acc /= np.bincount(inverse, minlength=first.size)
        return Graph(edges, self.num_nodes, acc[order].astype(self.edge_weight.dtype))

    def gcn_norm(self, add_self_loops: bool = True, improved: bool = False) -> Graph:
        """Kipf and Welling's normalisation: weights ``w_sd / sqrt(deg(s) deg(d))`` with the
        weighted in-degree ``deg`` after giving every node one self-loop (as PyG's GCNConv:
        :meth:`add_remaining_self_loops`, so an existing loop is not doubled). ``improved``
        (PyG's): the added loops weigh 2 instead of 1; existing loops keep their weight."""
        fill = 2.0 if improved else 1.0
        g = self.add_remaining_self_loops(fill) if add_self_loops else self
        w = g._weights_or_ones()
        deg = np.zeros(g.num_nodes)
        np.add.at(deg, g.edge_index()[1], w)
        inv = np.where(deg > 0, 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0)), 0.0)
        src, dst = g.indices, g.edge_index()[1]
        out = Graph(g.edge_index(), g.num_nodes, w * inv[src] * inv[dst])
        return out

    def row_norm(self) -> Graph:
        """Weights divided by the destination's weighted in-degree (a mean over in-edges)."""
        w = self._weights_or_ones()
        deg = np.zeros(self.num_nodes)
        dst = self.edge_index()[1]
        np.add.at(deg, dst, w)
        return Graph(self.edge_index(), self.num_nodes, w / np.where(deg > 0, deg, 1.0)[dst])

    def _with_weight_dtype(self, dtype: Any) -> Graph:
        """This graph, or a shallow copy sharing its index arrays with the edge weights
        converted to ``dtype`` (the layers' kernels take weights of the features' dtype)."""
        if self.edge_weight is None or self.edge_weight.dtype == dtype:
            return self
        out = object.__new__(Graph)
        out.__dict__.update(self.__dict__)
        out.edge_weight = _finite_cast(self.edge_weight, dtype, "edge_weight", known_finite=True)
        return out

    def __repr__(self) -> str:
        weighted = ", weighted" if self.edge_weight is not None else ""
        return f"Graph(num_nodes={self.num_nodes}, num_edges={self.num_edges}{weighted})"


def _too_many_nodes(num_nodes: int, from_ids: bool) -> str:
    what = (f"edge_index: node id {num_nodes - 1} implies a graph of {num_nodes} nodes"
            if from_ids else f"num_nodes: a graph of {num_nodes} nodes")
    return (f"{what}, whose CSR offsets alone take {16 * (num_nodes + 1) / 2**30:.3g} GiB; "
            "node ids must be 0..n-1: remap sparse ids first (for example "
            "np.unique(edge_index, return_inverse=True))")


def _check_node_count(num_nodes: int, from_ids: bool) -> None:
    """Refuses, before anything is allocated, a node count whose CSR offsets (two int64 arrays
    of ``num_nodes + 1``) exceed the machine's memory: a huge id (a hash, a raw database key)
    would otherwise end in NumPy's "array is too big" or a MemoryError naming no argument.
    ValueError, as KGEModel's for a huge entity id: ids must be 0..n-1."""
    mem = physical_memory_bytes()
    if 16 * (num_nodes + 1) > (mem if mem is not None else np.iinfo(np.intp).max):
        raise ValueError(_too_many_nodes(num_nodes, from_ids))


def _check_consistent(graph: Graph) -> None:
    """``graph`` is a :class:`Graph` (TypeError naming ``graph``, not an AttributeError from
    inside) and ``graph.num_nodes`` agrees with its CSR (``len(indptr) - 1``): an attribute
    assigned by hand would otherwise make the kernels read the features of another node
    count."""
    if not isinstance(graph, Graph):
        raise TypeError(f"graph: expected a nesy.gnn.Graph, got {type(graph).__name__}")
    rows = np.shape(graph.indptr)[0] - 1 if np.ndim(graph.indptr) == 1 else None
    if rows is None or graph.num_nodes != rows:
        raise ValueError(f"graph: num_nodes is {graph.num_nodes!r} but its CSR (indptr) has "
                         f"{rows} rows; a Graph must not be modified in place, build a new one")


def _check_x(graph: Graph, x: Any, check_finite: bool = True) -> np.ndarray:
    _check_consistent(graph)
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] != graph.num_nodes:
        raise ValueError(f"x: expected shape ({graph.num_nodes}, n_features) for a graph of "
                         f"{graph.num_nodes} nodes, got {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x: expected float32 or float64, got dtype {x.dtype}")
    x = np.ascontiguousarray(x)
    if check_finite and not _core.all_finite([x]):  # one fused, threaded pass
        raise ValueError("x: contains NaN or infinity")
    return x


def _finite_cast(a: Any, dtype: Any, name: str, known_finite: bool = False) -> np.ndarray:
    """``a`` as a C-contiguous ``dtype`` array, checked to be finite after the cast: a
    ValueError naming ``name`` for NaN or infinity, or for a value too large for ``dtype``
    (float64 beyond float32's range would silently become infinity). ``known_finite``: ``a``
    was checked before (a graph's weights) or the caller vouches for it (``check_finite=False``):
    only a narrowing cast needs the pass, and only finite values it makes infinite are
    refused."""
    a = np.asarray(a)
    if known_finite and a.dtype == dtype:
        return np.ascontiguousarray(a)
    with np.errstate(over="ignore"):  # refused below, with the name
        out = np.ascontiguousarray(a, dtype=dtype)
    if _core.all_finite([out]):
        return out
    finite = np.isfinite(a)
    if not known_finite and not finite.all():
        raise ValueError(f"{name}: contains NaN or infinity")
    if known_finite and not (np.isinf(out) & finite).any():
        return out  # non-finite values given as such are the caller's (check_finite=False)
    top = float(np.max(np.abs(a[finite])))
    raise ValueError(f"{name}: a value of magnitude {top:.3g} overflows {out.dtype} (largest "
                     f"{float(np.finfo(out.dtype).max):.3g})")


def _edge_array(graph: Graph, a: Any, name: str, dtype: np.dtype, ndim: tuple[int, ...] = (1, 2)
                ) -> np.ndarray:
    """A per-edge array ``(n_edges,)`` or ``(n_edges, heads)`` in CSR order, finite."""
    _check_consistent(graph)
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{name}: expected floats, got dtype {a.dtype}")
    if a.ndim not in ndim or a.shape[0] != graph.num_edges:
        raise ValueError(f"{name}: expected shape ({graph.num_edges},) or ({graph.num_edges}, "
                         f"heads) for a graph of {graph.num_edges} edges, got {a.shape}")
    return _finite_cast(a, dtype, name)


def _weights(graph: Graph, x: np.ndarray, use_weights: bool,
             edge_weight: Optional[Any] = None) -> Optional[np.ndarray]:
    if edge_weight is not None:
        w = _edge_array(graph, edge_weight, "edge_weight", x.dtype)
        if w.ndim == 2 and (w.shape[1] == 0 or x.shape[1] % w.shape[1]):
            raise ValueError(f"edge_weight: {w.shape[1]} heads do not divide the "
                             f"{x.shape[1]} features of x")
        return w
    if not use_weights or graph.edge_weight is None:
        return None
    return _finite_cast(graph.edge_weight, x.dtype, "edge_weight", known_finite=True)


def aggregate(graph: Graph, x: Any, reduce: str = "sum", use_weights: bool = True,
              edge_weight: Optional[Any] = None, out: Optional[np.ndarray] = None,
              check_finite: bool = True) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """``out[d] = reduce over in-edges (s -> d) of w * x[s]``; 0 for a node without in-edges.

    Parameters
    ----------
    graph : Graph
    x : ndarray, shape (n_nodes, n_features)
        Its rows are gathered once per edge. Where it starts in memory does not matter for
        float32 at the AVX-512 level: rows of whole 64-byte lines that start past a line
        (NumPy often puts large arrays 16 bytes past one) are read with whole-line loads shifted
        into place. Elsewhere (float64, or below AVX-512) such rows may be read more slowly
        than from an ``x`` on a line, as torch places tensors and nesy's kernels and GNN
        layers their outputs.
    reduce : {"sum", "mean", "max", "min"}
        Mean divides the (weighted) sum by the number of in-edges.
    use_weights : bool
        Multiply by the graph's edge weights (if it has any).
    edge_weight : ndarray, shape (n_edges,) or (n_edges, heads), optional
        Weights in CSR edge order that replace the graph's own (e.g. attention coefficients
        from :func:`edge_softmax`). With ``heads`` columns, the features form ``heads`` equal
        groups and head ``h`` weighs columns ``h * F / heads`` to ``(h + 1) * F / heads``.
    out : ndarray, shape (n_nodes, n_features), optional
        Where to write the result (x's dtype, C-contiguous, writeable, not sharing memory with
        the inputs); every entry is overwritten and ``out`` itself is returned. A loop that
        aggregates arrays of a few MB each step saves an allocation per call: freshly
        allocated outputs of that size can cost the process a page fault per 4 KiB when the
        C allocator returns freed memory to the system between calls.
    check_finite : bool
        Refuse an ``x`` with NaN or infinity (a ValueError naming ``x``). One pass over ``x``:
        20 % of the forward's time at (100k nodes, 1M edges, 64 features). ``False`` skips it
        (as SciPy's ``check_finite``): a non-finite feature then only propagates into the sums
        (maxima, minima) of the nodes it reaches, as in NumPy; nothing crashes.

    Returns
    -------
    out : ndarray, shape (n_nodes, n_features)
    arg : ndarray of int64 or None
        For max/min, the CSR edge that won each entry (-1 without in-edges); needed by
        :func:`aggregate_backward`.
    """
    if reduce not in REDUCES:
        raise ValueError(f"reduce: expected one of {REDUCES}, got {reduce!r}")
    x = _check_x(graph, x, check_finite)
    return _core.gnn_aggregate(graph.indptr, graph.indices, x, reduce,
                               _weights(graph, x, use_weights, edge_weight), out=out)


def aggregate_backward(graph: Graph, x: Any, grad_out: Any, reduce: str = "sum",
                       arg: Optional[np.ndarray] = None, use_weights: bool = True,
                       weight_grad: bool = False, edge_weight: Optional[Any] = None,
                       check_finite: bool = True) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Gradients of :func:`aggregate`: ``(grad_x, grad_weight)``; ``grad_weight`` (in CSR edge
    order, shaped as the weights: ``(n_edges,)`` or ``(n_edges, heads)``) only with
    ``weight_grad``. A gather over the transposed graph: no atomics, the same result for any
    thread count. ``check_finite`` as in :func:`aggregate` (the test over ``x``).

    ``grad_out`` (the output's shape, floats) is checked as ``x`` is: a TypeError or
    ValueError naming it for another dtype or shape, a value too large for ``x``'s dtype and,
    unless ``check_finite`` is false, NaN or infinity. ``arg`` is the max/min forward's (any
    integer dtype and memory layout; sum and mean ignore it)."""
    if reduce not in REDUCES:
        raise ValueError(f"reduce: expected one of {REDUCES}, got {reduce!r}")
    x = _check_x(graph, x, check_finite)
    want = (graph.num_nodes, x.shape[1])
    g = np.asarray(grad_out)
    if not np.issubdtype(g.dtype, np.floating):
        raise TypeError(f"grad_out: expected floats, got dtype {g.dtype}")
    if g.shape != want:
        raise ValueError(f"grad_out: expected shape {want}, got {g.shape}")
    if check_finite:
        g = _finite_cast(g, x.dtype, "grad_out")
    else:  # as for x: the caller vouches for finite values, only the cast is checked
        g = _finite_cast(g, x.dtype, "grad_out", known_finite=True)
    if reduce in ("max", "min") and arg is not None:
        arg = _check_arg(arg, want)
    else:
        arg = None  # sum and mean do not read it
    return _core.gnn_aggregate_backward(
        graph.indptr, graph.indices, graph.t_indptr, graph.t_indices, graph.perm, x, g, reduce,
        _weights(graph, x, use_weights, edge_weight), arg, weight_grad)


def _check_arg(arg: Any, want: tuple[int, int]) -> np.ndarray:
    """The ``arg`` of a max/min :func:`aggregate` as the C-contiguous int64 array the kernel
    takes (any integer dtype and layout); the kernel checks every entry against the graph."""
    a = np.asarray(arg)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"arg: expected integers, got dtype {a.dtype}")
    if a.shape != want:
        raise ValueError(f"arg: expected shape {want} (the arg aggregate returned for x), got "
                         f"{a.shape}")
    if a.size and a.dtype == np.uint64 and int(a.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"arg: {int(a.max())} is not an edge of the graph; pass the arg of "
                         "the forward pass")
    return np.ascontiguousarray(a, dtype=np.int64)


SDDMM_OPS = ("add", "dot")


def _check_node_array(graph: Graph, a: Any, name: str, dtype: Optional[np.dtype] = None
                      ) -> np.ndarray:
    _check_consistent(graph)
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[0] != graph.num_nodes:
        raise ValueError(f"{name}: expected shape ({graph.num_nodes}, n) for a graph of "
                         f"{graph.num_nodes} nodes, got {a.shape}")
    if dtype is None:
        if a.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name}: expected float32 or float64, got dtype {a.dtype}")
        dtype = a.dtype
    elif not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{name}: expected floats, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=dtype)
    if not _core.all_finite([a]):
        raise ValueError(f"{name}: contains NaN or infinity")
    return a


def _sddmm_inputs(graph: Graph, u: Any, v: Any, op: str, heads: Optional[int]
                  ) -> tuple[np.ndarray, np.ndarray, int]:
    if op not in SDDMM_OPS:
        raise ValueError(f"op: expected one of {SDDMM_OPS}, got {op!r}")
    u = _check_node_array(graph, u, "u")
    v = _check_node_array(graph, v, "v", u.dtype)
    if v.shape != u.shape:
        raise ValueError(f"v: expected the shape of u {u.shape}, got {v.shape}")
    if heads is None:
        heads = u.shape[1] if op == "add" else 1
    return u, v, check_int("heads", heads, 1)


def sddmm(graph: Graph, u: Any, v: Any, op: str = "dot", heads: Optional[int] = None
          ) -> np.ndarray:
    """A score per edge (and head) from its source's row of ``u`` and its destination's row of
    ``v``: the sampled dense-dense product of attention layers.

    Parameters
    ----------
    graph : Graph
    u, v : ndarray, shape (n_nodes, n)
        Source-side and destination-side node features (same dtype).
    op : {"dot", "add"}
        ``"add"``: ``n == heads``, ``e[k, h] = u[s_k, h] + v[d_k, h]`` (GAT's additive
        attention). ``"dot"``: ``n = heads * F``, ``e[k, h] = <u[s_k, h, :], v[d_k, h, :]>``.
    heads : int, optional
        Default: ``n`` for ``"add"``, 1 for ``"dot"``.

    Returns
    -------
    ndarray, shape (n_edges, heads)
        In CSR edge order (as :attr:`Graph.indices`).
    """
    u, v, heads = _sddmm_inputs(graph, u, v, op, heads)
    return _core.gnn_sddmm(graph.indptr, graph.indices, u, v, op, heads)


def sddmm_backward(graph: Graph, u: Any, v: Any, grad: Any, op: str = "dot",
                   heads: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """Gradients ``(grad_u, grad_v)`` of :func:`sddmm` from ``grad (n_edges, heads)``: gathers
    over the graph and its transpose, the same for any thread count."""
    u, v, heads = _sddmm_inputs(graph, u, v, op, heads)
    g = _edge_array(graph, grad, "grad", u.dtype)
    g = g.reshape(graph.num_edges, -1) if g.ndim == 1 else g
    return _core.gnn_sddmm_backward(graph.indptr, graph.indices, graph.t_indptr,
                                    graph.t_indices, graph.perm, u, v, g, op, heads)


def edge_softmax(graph: Graph, scores: Any) -> np.ndarray:
    """Softmax of edge scores over the in-edges of each destination node:
    ``alpha[e, h] = exp(s[e, h]) / sum over the in-edges e' of d of exp(s[e', h])`` (computed
    with the row maximum subtracted, so large scores do not overflow).

    Parameters
    ----------
    graph : Graph
    scores : ndarray, shape (n_edges,) or (n_edges, heads)
        In CSR edge order, float32 or float64, finite.

    Returns
    -------
    ndarray, shaped as ``scores``
        Sums to 1 over every node's in-edges (per head); nodes without in-edges have no entries.
    """
    s = np.asarray(scores)
    dtype = s.dtype if s.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    s = _edge_array(graph, s, "scores", dtype)
    return _core.gnn_edge_softmax(graph.indptr, graph.indices, s)


def edge_softmax_backward(graph: Graph, alpha: Any, grad: Any) -> np.ndarray:
    """Gradient of the scores of :func:`edge_softmax` from its output ``alpha`` and the
    upstream gradient ``grad`` (same shape): ``alpha * (grad - sum over the row of alpha *
    grad)``."""
    a = np.asarray(alpha)
    dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    a = _edge_array(graph, a, "alpha", dtype)
    g = _edge_array(graph, grad, "grad", dtype)
    if g.shape != a.shape:
        raise ValueError(f"grad: expected the shape of alpha {a.shape}, got {g.shape}")
    return _core.gnn_edge_softmax_backward(graph.indptr, graph.indices, a, g)


# ---------------------------------------------------------------------- the layers' entry points
# The layers (layers.py) call the kernels through these with arrays they made or checked
# themselves: C-contiguous, all of one float dtype (the graph's edge weights included), shaped
# for the graph. They skip the public functions' conversions and their pass over every array
# for NaN (GAT's per-edge arrays are E x heads: six such passes per training step); the kernels
# still check every shape and index.

def _layer_aggregate(graph: Graph, x: np.ndarray, reduce: str = "sum",
                     edge_weight: Optional[np.ndarray] = None, use_weights: bool = True
                     ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    w = edge_weight if edge_weight is not None or not use_weights else graph.edge_weight
    return _core.gnn_aggregate(graph.indptr, graph.indices, x, reduce, w)


def _layer_aggregate_backward(graph: Graph, x: np.ndarray, grad: np.ndarray,
                              reduce: str = "sum", arg: Optional[np.ndarray] = None,
                              edge_weight: Optional[np.ndarray] = None, use_weights: bool = True,
                              weight_grad: bool = False
                              ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    w = edge_weight if edge_weight is not None or not use_weights else graph.edge_weight
    return _core.gnn_aggregate_backward(
        graph.indptr, graph.indices, graph.t_indptr, graph.t_indices, graph.perm, x, grad,
        reduce, w, arg, weight_grad)


def _layer_sddmm(graph: Graph, u: np.ndarray, v: np.ndarray, op: str, heads: int) -> np.ndarray:
    return _core.gnn_sddmm(graph.indptr, graph.indices, u, v, op, heads)


def _layer_sddmm_backward(graph: Graph, u: np.ndarray, v: np.ndarray, grad: np.ndarray, op: str,
                          heads: int) -> tuple[np.ndarray, np.ndarray]:
    return _core.gnn_sddmm_backward(graph.indptr, graph.indices, graph.t_indptr,
                                    graph.t_indices, graph.perm, u, v, grad, op, heads)


def _layer_edge_softmax(graph: Graph, scores: np.ndarray) -> np.ndarray:
    return _core.gnn_edge_softmax(graph.indptr, graph.indices, scores)


def _layer_edge_softmax_backward(graph: Graph, alpha: np.ndarray, grad: np.ndarray
                                 ) -> np.ndarray:
    return _core.gnn_edge_softmax_backward(graph.indptr, graph.indices, alpha, grad)
