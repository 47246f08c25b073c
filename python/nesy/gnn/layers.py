"""Graph convolution layers as :class:`nesy.nn.Module` s: :class:`GCNConv`, :class:`SAGEConv`,
:class:`GINConv` and :class:`GATConv`.

Every layer is called as ``forward(graph, x)`` with ``x`` of shape ``(n_nodes, in_features)``
and returns ``(n_nodes, out_features)``; ``backward(grad_out)`` accumulates the parameter
gradients and returns the gradient with respect to ``x`` (``None`` when the layer was built with
``input_grad=False``, which skips that product for the first layer of a model). ``x`` may be
:class:`~nesy.gnn.sparse.SparseFeatures` (bag-of-words rows): its products with the weights run
on the sparse structure (GIN and max-SAGE densify it). Message passing
runs in the Rust kernels of :mod:`nesy.gnn.graph`; the dense products are NumPy (BLAS).

Derived graphs (GCN normalisation, GAT self-loops) are cached per input graph: the cache is
keyed on the identity of the :class:`Graph` object, so a graph must not be modified in place
after it was passed to a layer (build a new one instead).

Coming from PyG (``torch_geometric.nn``):

* ``in_channels`` / ``out_channels`` are ``in_features`` / ``out_features`` (the first two
  positional arguments in both); pass the other options by keyword, as their positions
  differ. They keep PyG's names: ``improved``, ``cached``, ``add_self_loops``,
  ``normalize``, ``bias``, ``root_weight``, ``heads``, ``concat``, ``negative_slope``,
  ``dropout``, ``eps``, ``train_eps``.
* GINConv's ``nn`` is ``mlp``.
* ``conv(x, edge_index)`` (``forward(x, edge_index)``) is ``conv(Graph(edge_index,
  num_nodes), x)``: the graph comes first, as a :class:`Graph` built once (its derived
  graphs are then cached, see above) rather than an edge index per call.
* State dicts use nesy's own names, and the weights are ``(in_features, out_features)``
  (PyG's ``lin.weight`` is ``(out, in)``), so a PyG state dict needs its keys mapped and
  its weights transposed.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Optional, Union

import numpy as np

from nesy import _core
from nesy._checks import check_fits_in_memory, check_float_dtype, check_int
from nesy.gnn import graph as _g
from nesy.gnn.graph import Graph
from nesy.gnn.sparse import SparseFeatures, densify, matmul, t_matmul
from nesy.nn import init as _init
from nesy.nn.activations import leaky_relu, leaky_relu_backward
from nesy.nn.layers import Sequential
from nesy.nn.module import Module

__all__ = ["GCNConv", "SAGEConv", "GINConv", "GATConv", "check_node_input"]


def check_node_input(graph: Any, x: Any, in_features: Optional[int], dtype: Any,
                     name: str = "x") -> Any:
    """``x`` as a C-contiguous ``dtype`` array of shape ``(graph.num_nodes, in_features)``.

    Raises
    ------
    TypeError
        ``graph`` is not a :class:`Graph`, or ``x`` is not numeric.
    ValueError
        Wrong shape (naming ``name``, the node count and the shape) or NaN / infinity.
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"graph: expected a nesy.gnn.Graph, got {type(graph).__name__}"
                        f"{_swapped_hint(graph, x)}")
    _g._check_consistent(graph)
    if isinstance(x, SparseFeatures):
        return _check_sparse(graph, x, in_features, dtype, name)
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
        raise TypeError(f"{name}: expected real numbers, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[0] != graph.num_nodes:
        raise ValueError(f"{name}: expected one row per node, shape ({graph.num_nodes}, "
                         f"n_features), got {x.shape}")
    if in_features is not None and x.shape[1] != in_features:
        raise ValueError(f"{name}: expected {in_features} features, got {x.shape[1]}")
    # NaN or infinity, or a finite value the cast to ``dtype`` makes infinite, each named
    return _g._finite_cast(x, dtype, name)


def _as_array(a: Any) -> Optional[np.ndarray]:
    """``a`` as an array when it is one (an ndarray, or an object with ``__array__`` such as a
    CPU torch tensor), else None: lists are not converted on this error path."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "__array__"):
        try:
            return np.asarray(a)
        except Exception:  # a tensor on another device: no hint
            return None
    return None


def _is_edge_index(a: Optional[np.ndarray]) -> bool:
    return (a is not None and a.ndim == 2 and a.shape[0] == 2 and a.dtype != np.bool_
            and np.issubdtype(a.dtype, np.integer))


def _swapped_hint(graph: Any, x: Any) -> str:
    """The end of the error for a first argument that is not a :class:`Graph`: the PyG call
    order ``conv(x, edge_index)`` and an edge index in place of a Graph are said as such."""
    first = _as_array(graph)
    if first is None:
        return ""
    build = "build the graph with Graph(edge_index, num_nodes)"
    if isinstance(x, Graph):
        return ": the arguments are (graph, x), not (x, graph); call conv(graph, x)"
    if _is_edge_index(_as_array(x)) and not _is_edge_index(first):
        return (": the arguments are (graph, x), not PyG's (x, edge_index); "
                f"{build} and call conv(graph, x)")
    if _is_edge_index(first):
        return (f" (integers of shape {first.shape}, as an edge index: if it is one, "
                f"{build})")
    return ""


def _check_sparse(graph: Graph, x: SparseFeatures, in_features: Optional[int], dtype: Any,
                  name: str) -> SparseFeatures:
    if x.shape[0] != graph.num_nodes:
        raise ValueError(f"{name}: expected one row per node, shape ({graph.num_nodes}, "
                         f"n_features), got {x.shape}")
    if in_features is not None and x.shape[1] != in_features:
        raise ValueError(f"{name}: expected {in_features} features, got {x.shape[1]}")
    x = x.astype(dtype)
    if not x.all_finite():
        raise ValueError(f"{name}: contains NaN or infinity")
    return x


def _sizes(in_features: int, out_features: int) -> tuple[int, int]:
    """Both sizes as ints >= 1; floats and strings are refused, not truncated (as Dense)."""
    return check_int("in_features", in_features, 1), check_int("out_features", out_features, 1)


def _scalar(v: Any) -> Any:
    """A 0-d NumPy array of a real dtype as its Python value; anything else as it is."""
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "biuf":
        return v.item()
    return v


def _conv_dtype(dtype: Any) -> np.dtype:
    """The ``dtype`` option as float32 or float64; TypeError naming ``dtype`` otherwise."""
    return check_float_dtype(dtype, TypeError)


def _check_weight_size(shape: tuple[int, ...], dtype: np.dtype, sizes: dict[str, int]) -> None:
    """Refuses, before allocating, a weight larger than the machine's memory (a MemoryError or
    NumPy's 'array is too big' would name no argument); the error names the largest of
    ``sizes``, the arguments the shape was made of."""
    check_fits_in_memory(math.prod(shape) * dtype.itemsize, f"a weight of shape {shape}", sizes)


class _Conv(Module):
    """Shared plumbing: dtype, initialiser, the per-graph cache, the input-grad switch and the
    check of ``grad_out``."""

    def _setup(self, dtype: Any, rng: _init.RngLike, input_grad: bool) -> np.random.Generator:
        self.dtype = _conv_dtype(dtype)
        self.input_grad = bool(input_grad)
        object.__setattr__(self, "_cache", (None, None))
        return np.random.default_rng(rng)

    def _glorot(self, name: str, shape: tuple[int, ...], rng: np.random.Generator,
                sizes: Optional[dict[str, int]] = None) -> None:
        """A Glorot-uniform parameter; ``sizes`` (the arguments ``shape`` came from) are named
        when it would not fit in memory (default: in_features and out_features)."""
        if sizes is None:
            sizes = {"in_features": self.in_features, "out_features": self.out_features}
        _check_weight_size(shape, self.dtype, sizes)
        self.register_parameter(name, _init.glorot_uniform(shape, rng, self.dtype))

    def _cached(self, graph: Graph, build: Any, options: tuple[Any, ...] = ()) -> Graph:
        """``build(graph)``, kept for the next call with the same Graph object and the same
        ``options`` (the layer's settings that shape the derived graph: changing one, e.g.
        ``improved``, between calls builds it again)."""
        key, value = self.__dict__["_cache"]
        # (a pickle from before 2026-11-27 may hold a bare Graph as the key: built again)
        if isinstance(key, tuple) and key[0] is graph and key[1] == options:
            return value
        value = build(graph)
        object.__setattr__(self, "_cache", ((graph, options), value))
        return value

    def _check_grad(self, grad_out: Any, want: tuple[int, ...]) -> np.ndarray:
        """``grad_out`` as a C-contiguous array of the layer's dtype, checked to have the
        output's shape ``want`` and to be finite before any parameter gradient is touched."""
        g = np.asarray(grad_out)
        if not (np.issubdtype(g.dtype, np.number) or g.dtype == np.bool_) or np.iscomplexobj(g):
            raise TypeError(f"grad_out: expected real numbers, got dtype {g.dtype}")
        if g.shape != want:
            raise ValueError(f"grad_out: expected the output's shape {want}, got {g.shape}")
        g = np.ascontiguousarray(g, dtype=self.dtype)
        if not _core.all_finite([g]):
            raise ValueError("grad_out: contains NaN or infinity")
        return g


class GCNConv(_Conv):
    """Graph convolution of Kipf and Welling (2017): ``out = D^-1/2 (A + I) D^-1/2 x W + b``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    add_self_loops : bool, optional
        Give every node without one a loop ``i -> i`` (weight 1, or 2 with ``improved``)
        before normalising; existing loops are kept as they are (PyG's
        ``add_remaining_self_loops``). Defaults to ``normalize``; loops without normalisation
        are refused, as in PyG (``normalize=False`` is ``A x W + b``: add loops to the graph
        itself if you want them).
    normalize : bool, default True
        Symmetric normalisation with the weighted in-degree (see :meth:`Graph.gcn_norm`); the
        graph's own edge weights are used when it has them.
    improved : bool, default False
        PyG's ``improved``: the added self-loops weigh 2 (``A + 2I``), so a node keeps more of
        its own features. No effect without added self-loops (as in PyG).
    cached : bool, default False
        Accepted for PyG code; it changes nothing. nesy always keeps the normalised graph of
        the last :class:`Graph` object passed (keyed on its identity) and builds it again for
        another one, so the results are those of PyG's ``cached=False`` for any sequence of
        graphs, and a graph passed again is not normalised again (the speed of
        ``cached=True``, without PyG's reuse of the first graph's normalisation for a
        different graph). A graph must not be modified in place (see the module docstring).
    dtype : {np.float32, np.float64}, default np.float32
    rng : None, int or numpy.random.Generator
        Glorot-uniform weight initialisation; the bias starts at zero.
    input_grad : bool, default True

    Attributes
    ----------
    weight : ndarray of shape (in_features, out_features)
    bias : ndarray of shape (out_features,)
    """

    weight: np.ndarray
    bias: np.ndarray

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 add_self_loops: Optional[bool] = None, normalize: bool = True,
                 dtype: Any = np.float32, rng: _init.RngLike = None,
                 input_grad: bool = True, *, improved: bool = False,
                 cached: bool = False) -> None:
        super().__init__()
        normalize = bool(normalize)
        add_self_loops = normalize if add_self_loops is None else bool(add_self_loops)
        if add_self_loops and not normalize:
            raise ValueError("add_self_loops: GCNConv adds self-loops only with normalize=True "
                             "(as PyG); add them to the graph (Graph.add_remaining_self_loops) "
                             "for an unnormalised (A + I) x W")
        self.in_features, self.out_features = _sizes(in_features, out_features)
        gen = self._setup(dtype, rng, input_grad)
        self.use_bias, self.add_self_loops, self.normalize = bias, add_self_loops, normalize
        self.improved, self.cached = bool(improved), bool(cached)
        self._glorot("weight", (self.in_features, self.out_features), gen)
        if bias:
            self.register_parameter("bias", np.zeros(self.out_features, self.dtype))

    def _prepare(self, graph: Graph) -> Graph:
        g = graph.gcn_norm(self.add_self_loops, self.improved) if self.normalize else graph
        return g._with_weight_dtype(self.dtype)

    def forward(self, graph: Graph, x: Any) -> np.ndarray:  # type: ignore[override]
        """``(n_nodes, in_features)`` -> ``(n_nodes, out_features)``."""
        x = check_node_input(graph, x, self.in_features, self.dtype)
        g = self._cached(graph, self._prepare,
                         (self.add_self_loops, self.improved, self.normalize, self.dtype))
        # The product with the narrower side first: (A x) W when in <= out, else A (x W).
        if self.in_features <= self.out_features and not isinstance(x, SparseFeatures):
            ax = _g._layer_aggregate(g, x)[0]
            out = matmul(ax, self.weight)
            self._save(g, x, ax, True)
        else:
            h = matmul(x, self.weight)
            out = _g._layer_aggregate(g, h)[0]
            self._save(g, x, h, False)
        if self.use_bias:
            out += self.bias
        return out

    def backward(self, grad_out: np.ndarray) -> Any:
        g, x, mid, aggregate_first = self._saved()
        grad = self._check_grad(grad_out, (g.num_nodes, self.out_features))
        if self.use_bias:
            self._grads["bias"] += grad.sum(axis=0)
        if aggregate_first:
            self._grads["weight"] += mid.T @ grad
            if not self.input_grad:
                return None
            return _g._layer_aggregate_backward(g, mid, matmul(grad, self.weight.T))[0]
        gh = _g._layer_aggregate_backward(g, mid, grad)[0]
        self._grads["weight"] += t_matmul(x, gh)
        return matmul(gh, self.weight.T) if self.input_grad else None

    def extra_repr(self) -> str:
        improved = ", improved=True" if self.improved else ""
        return f"{self.in_features}, {self.out_features}, bias={self.use_bias}{improved}"


class SAGEConv(_Conv):
    """GraphSAGE (Hamilton et al. 2017): ``out = aggr_{j -> i} x_j W_neigh + x_i W_root + b``.

    Parameters
    ----------
    in_features, out_features : int
    aggr : {"mean", "max"}, default "mean"
        Reduction over in-neighbours (0 for a node without in-edges); edge weights are ignored.
    root_weight : bool, default True
        Add the node's own transformed features ``x_i W_root``.
    normalize : bool, default False
        Divide every output row by its L2 norm (``max(norm, 1e-12)``).
    bias, dtype, rng, input_grad
        As :class:`GCNConv`.

    Attributes
    ----------
    weight_neigh, weight_root : ndarray of shape (in_features, out_features)
    bias : ndarray of shape (out_features,)
    """

    weight_neigh: np.ndarray
    weight_root: np.ndarray
    bias: np.ndarray

    def __init__(self, in_features: int, out_features: int, aggr: str = "mean",
                 root_weight: bool = True, normalize: bool = False, bias: bool = True,
                 dtype: Any = np.float32, rng: _init.RngLike = None,
                 input_grad: bool = True) -> None:
        super().__init__()
        if aggr not in ("mean", "max"):
            raise ValueError(f"aggr: expected 'mean' or 'max', got {aggr!r}")
        self.in_features, self.out_features = _sizes(in_features, out_features)
        gen = self._setup(dtype, rng, input_grad)
        self.aggr, self.root_weight, self.normalize, self.use_bias = (
            aggr, root_weight, normalize, bias)
        self._glorot("weight_neigh", (self.in_features, self.out_features), gen)
        if root_weight:
            self._glorot("weight_root", (self.in_features, self.out_features), gen)
        if bias:
            self.register_parameter("bias", np.zeros(self.out_features, self.dtype))

    def forward(self, graph: Graph, x: Any) -> np.ndarray:  # type: ignore[override]
        x = check_node_input(graph, x, self.in_features, self.dtype)
        # mean is linear: transform first when that narrows the rows the kernel moves
        sparse = isinstance(x, SparseFeatures)
        transform_first = self.aggr == "mean" and (sparse or self.out_features < self.in_features)
        if transform_first:
            h = matmul(x, self.weight_neigh)
            out, arg = _g._layer_aggregate(graph, h, "mean", use_weights=False)
            agg = h
        else:
            x = densify(x)
            agg, arg = _g._layer_aggregate(graph, x, self.aggr, use_weights=False)
            out = matmul(agg, self.weight_neigh)
        if self.root_weight:
            out += matmul(x, self.weight_root)
        if self.use_bias:
            out += self.bias
        norm = None
        if self.normalize:
            norm = np.maximum(np.sqrt(np.sum(out * out, axis=1, keepdims=True)),
                              self.dtype.type(1e-12))
            out /= norm  # in place: out is this call's own array, on a cache line
        self._save(graph, x, agg, arg, transform_first, out, norm)
        return out

    def backward(self, grad_out: np.ndarray) -> Any:
        graph, x, agg, arg, transform_first, out, norm = self._saved()
        grad = self._check_grad(grad_out, out.shape)
        if norm is not None:  # y = o / max(|o|, eps)
            inside = norm > 1e-12
            grad = (grad - np.where(inside, out * np.sum(grad * out, axis=1, keepdims=True),
                                    0)) / norm
        if self.use_bias:
            self._grads["bias"] += grad.sum(axis=0)
        dx = None
        if self.root_weight:
            self._grads["weight_root"] += t_matmul(x, grad)
            if self.input_grad:
                dx = matmul(grad, self.weight_root.T)
        if transform_first:
            gh = _g._layer_aggregate_backward(graph, agg, grad, "mean", use_weights=False)[0]
            self._grads["weight_neigh"] += t_matmul(x, gh)
            d_neigh = matmul(gh, self.weight_neigh.T) if self.input_grad else None
        else:
            self._grads["weight_neigh"] += agg.T @ grad
            d_neigh = None
            if self.input_grad:
                d_neigh = _g._layer_aggregate_backward(
                    graph, x, matmul(grad, self.weight_neigh.T), self.aggr, arg=arg,
                    use_weights=False)[0]
        if not self.input_grad:
            return None
        if dx is None:
            return d_neigh
        dx += d_neigh  # in place, keeping dx on its cache line
        return dx

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, aggr={self.aggr!r}"


class GINConv(_Conv):
    """Graph isomorphism network layer (Xu et al. 2019):
    ``out = mlp((1 + eps) x_i + sum_{j -> i} x_j)``.

    Parameters
    ----------
    mlp : Module
        Applied to the ``(n_nodes, in_features)`` sums, e.g.
        ``Sequential(Dense(f, h), ReLU(), Dense(h, h))``; its parameters are the layer's.
    eps : float, default 0.0
        Held as an array of shape ``(1,)``: a buffer (in the state dict, as PyG's ``eps``
        buffer), or with ``train_eps`` a parameter.
    train_eps : bool, default False
        Learn ``eps`` (a parameter of shape ``(1,)``).
    dtype : {np.float32, np.float64}, default np.float32
        Of ``eps`` and of the input passed to ``mlp``.
    input_grad : bool, default True

    Notes
    -----
    Edge weights are ignored (a plain sum over in-edges, duplicates counted).
    """

    mlp: Module
    train_eps: bool
    eps: np.ndarray  # (1,): a buffer, or a trainable parameter with train_eps

    def __init__(self, mlp: Module, eps: float = 0.0, train_eps: bool = False,
                 dtype: Any = np.float32, input_grad: bool = True) -> None:
        super().__init__()
        if not isinstance(mlp, Module):
            raise TypeError(f"mlp: expected a nesy.nn.Module, got {type(mlp).__name__}")
        self._setup(dtype, None, input_grad)
        if isinstance(eps, bool) or not isinstance(eps, Real):
            raise TypeError(f"eps: expected a real number, got {type(eps).__name__} {eps!r}")
        if not math.isfinite(eps):
            raise ValueError(f"eps: expected a finite number, got {eps!r}")
        self.train_eps = bool(train_eps)
        if self.train_eps:
            self.register_parameter("eps", np.array([eps], dtype=self.dtype))
        else:  # a buffer: saved and loaded with the state dict, as PyG's
            self.register_buffer("eps", np.array([eps], dtype=self.dtype))
        self.mlp = mlp

    # A fixed eps became a buffer (in the state dict) on 2026-11-27: files saved before lack it.
    _state_dict_optional = ("eps",)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickling. A layer pickled before a fixed ``eps`` was a buffer held it as a plain
        float: it becomes the ``(1,)`` buffer of a new layer. ``Module.__setstate__`` runs
        first, so a trainable ``eps`` is recorded as a parameter (and ties when registered on
        another module)."""
        super().__setstate__(state)
        if not isinstance(self.__dict__.get("eps"), np.ndarray):
            eps = np.array([self.__dict__["eps"]], dtype=self.dtype)
            self.__dict__["_buffers"]["eps"] = eps
            object.__setattr__(self, "eps", eps)

    def forward(self, graph: Graph, x: Any) -> np.ndarray:  # type: ignore[override]
        width = _mlp_in_features(self.mlp)
        x = check_node_input(graph, x, None, self.dtype)
        if width is not None and x.shape[1] != width:  # named here, not by the MLP's layer
            raise ValueError(f"x: expected {width} features (the input of the mlp), got "
                             f"{x.shape[1]}")
        x = densify(x)
        eps = self.eps[0]
        h = _g._layer_aggregate(graph, x, "sum", use_weights=False)[0]
        h += (1 + eps) * x
        out = self.mlp.forward(h)  # its first layer checks x's width: save only after it
        self._save(graph, x, eps, out.shape)
        return out

    def backward(self, grad_out: np.ndarray) -> Any:
        graph, x, eps, out_shape = self._saved()
        self._check_grad(grad_out, out_shape)  # the MLP keeps its own dtype
        gh = np.ascontiguousarray(self.mlp.backward(grad_out), dtype=self.dtype)
        if self.train_eps:
            self._grads["eps"] += np.sum(gh * x, dtype=np.float64)
        if not self.input_grad:
            return None
        dx = _g._layer_aggregate_backward(graph, x, gh, "sum", use_weights=False)[0]
        dx += (1 + eps) * gh
        return dx

    def extra_repr(self) -> str:
        return f"train_eps={self.train_eps}"


def _mlp_in_features(mlp: Module) -> Optional[int]:
    """The input width of ``mlp`` when it says (a Dense, or a Sequential starting with one),
    else None."""
    while isinstance(mlp, Sequential) and len(mlp):
        mlp = next(iter(mlp))
    n = getattr(mlp, "in_features", None)
    return int(n) if isinstance(n, Integral) and not isinstance(n, bool) else None


def _with_self_loops(graph: Graph) -> Graph:
    """Unweighted copy of ``graph`` with exactly one self-loop per node."""
    ei = graph.edge_index()
    return Graph(ei[:, ei[0] != ei[1]], graph.num_nodes).add_self_loops()


class GATConv(_Conv):
    """Graph attention layer (Velickovic et al. 2018), multi-head.

    For head ``h``: ``z = x W_h``, score ``e_ij = LeakyReLU(a_src,h . z_j + a_dst,h . z_i)``
    for every edge ``j -> i``, ``alpha = softmax_j(e_ij)`` over ``i``'s in-edges, dropout on
    ``alpha`` in training, and ``out_i,h = sum_j alpha_ij z_j``. Heads are concatenated
    (``concat=True``: ``(n_nodes, heads * out_features)``) or averaged (``(n_nodes,
    out_features)``), then the bias is added.

    Parameters
    ----------
    in_features, out_features : int
        ``out_features`` per head.
    heads : int, default 1
    concat : bool, default True
    negative_slope : float, default 0.2
    dropout : float in [0, 1), default 0.0
        Dropout on the attention coefficients during training.
    add_self_loops : bool, default True
        Replace existing self-loops by exactly one per node (so every node attends to itself).
    bias, dtype, rng, input_grad
        As :class:`GCNConv`. ``rng`` also draws the attention-dropout masks.

    Attributes
    ----------
    weight : ndarray of shape (in_features, heads * out_features)
    att_src, att_dst : ndarray of shape (heads, out_features)
    bias : ndarray of shape (heads * out_features,) or (out_features,)

    Notes
    -----
    Edge weights of the graph are ignored: the attention coefficients replace them.
    """

    weight: np.ndarray
    att_src: np.ndarray
    att_dst: np.ndarray
    bias: np.ndarray

    def __init__(self, in_features: int, out_features: int, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
                 bias: bool = True, dtype: Any = np.float32, rng: _init.RngLike = None,
                 input_grad: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = _sizes(in_features, out_features)
        heads = check_int("heads", heads, 1)
        # 0-d NumPy arrays count as numbers (np.float32(0.2), np.array(0.2))
        negative_slope, dropout = _scalar(negative_slope), _scalar(dropout)
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, Real):
            raise TypeError(f"negative_slope: expected a finite real number, got "
                            f"{type(negative_slope).__name__} {negative_slope!r}")
        if not math.isfinite(negative_slope):
            raise ValueError(f"negative_slope: expected a finite real number, got "
                             f"{negative_slope!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, Real):
            raise TypeError(f"dropout: expected a number in [0, 1), got "
                            f"{type(dropout).__name__} {dropout!r}")
        if not 0.0 <= float(dropout) < 1.0:  # NaN too
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout}")
        self.heads, self.concat = int(heads), bool(concat)
        self.negative_slope, self.dropout = float(negative_slope), float(dropout)
        self.add_self_loops, self.use_bias = add_self_loops, bias
        gen = self._setup(dtype, rng, input_grad)
        self.rng = gen
        hf = self.heads * self.out_features
        self._glorot("weight", (self.in_features, hf), gen,
                     {"in_features": self.in_features, "out_features": self.out_features,
                      "heads": self.heads})
        self._glorot("att_src", (self.heads, self.out_features), gen)
        self._glorot("att_dst", (self.heads, self.out_features), gen)
        if bias:
            self.register_parameter("bias", np.zeros(hf if concat else self.out_features,
                                                     self.dtype))

    def forward(self, graph: Graph, x: Any) -> np.ndarray:  # type: ignore[override]
        x = check_node_input(graph, x, self.in_features, self.dtype)
        g = self._cached(graph, _with_self_loops) if self.add_self_loops else graph
        n, heads, f = graph.num_nodes, self.heads, self.out_features
        h = matmul(x, self.weight)
        h3 = h.reshape(n, heads, f)
        s_src = np.einsum("nhf,hf->nh", h3, self.att_src)
        s_dst = np.einsum("nhf,hf->nh", h3, self.att_dst)
        s_src, s_dst = np.ascontiguousarray(s_src), np.ascontiguousarray(s_dst)
        e = _g._layer_sddmm(g, s_src, s_dst, "add", heads)
        alpha = _g._layer_edge_softmax(g, leaky_relu(e, self.negative_slope))
        mask = None
        if self.training and self.dropout > 0:
            keep = self.rng.random(alpha.shape, dtype=np.float32) >= self.dropout
            mask = keep.astype(self.dtype) * self.dtype.type(1.0 / (1.0 - self.dropout))
            weights = alpha * mask
        else:
            weights = alpha
        out = _g._layer_aggregate(g, h, "sum", edge_weight=weights)[0]
        if not self.concat:
            out = out.reshape(n, heads, f).mean(axis=1)
        if self.use_bias:
            out += self.bias
        self._save(g, x, h, s_src, s_dst, e, alpha, mask, weights)
        return out

    def backward(self, grad_out: np.ndarray) -> Any:
        g, x, h, s_src, s_dst, e, alpha, mask, weights = self._saved()
        n, heads, f = h.shape[0], self.heads, self.out_features
        grad = self._check_grad(grad_out, (n, heads * f if self.concat else f))
        if self.use_bias:
            self._grads["bias"] += grad.sum(axis=0)
        if not self.concat:
            grad = np.repeat(grad[:, None, :] / self.dtype.type(heads), heads, axis=1)
            grad = np.ascontiguousarray(grad.reshape(n, heads * f))
        gh, g_weights = _g._layer_aggregate_backward(g, h, grad, "sum", edge_weight=weights,
                                                     weight_grad=True)
        g_alpha = g_weights if mask is None else g_weights * mask
        g_scores = _g._layer_edge_softmax_backward(g, alpha, g_alpha)
        g_e = leaky_relu_backward(g_scores, e, self.negative_slope)
        g_src, g_dst = _g._layer_sddmm_backward(g, s_src, s_dst, g_e, "add", heads)
        h3 = h.reshape(n, heads, f)
        self._grads["att_src"] += np.einsum("nh,nhf->hf", g_src, h3)
        self._grads["att_dst"] += np.einsum("nh,nhf->hf", g_dst, h3)
        gh = gh.reshape(n, heads, f)
        gh += g_src[:, :, None] * self.att_src + g_dst[:, :, None] * self.att_dst
        gh = gh.reshape(n, heads * f)
        self._grads["weight"] += t_matmul(x, gh)
        return matmul(gh, self.weight.T) if self.input_grad else None

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, heads={self.heads}, "
                f"concat={self.concat}, dropout={self.dropout}")


Conv = Union[GCNConv, SAGEConv, GINConv, GATConv]
