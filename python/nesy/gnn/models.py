"""Graph neural network estimators with scikit-learn conventions.

* :class:`NodeClassifier`: transductive node classification (``fit(graph, X, y, train_mask,
  val_mask)``), GCN, GraphSAGE, GAT or GIN layers, dropout, weight decay, early stopping on
  validation accuracy with the best weights restored.
* :class:`GraphClassifier`: one label per graph (``fit(graphs, X, y)``), message passing, a
  sum / mean / max readout and an MLP head, trained on mini-batches of block-diagonal graphs.

The networks themselves (:class:`NodeNet`, :class:`GraphNet`) are :class:`nesy.nn.Module` s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, Optional

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from nesy._checks import check_float_dtype, check_int, label_encoder
from nesy.gnn.batch import (
    READOUTS,
    GlobalPool,
    GraphBatch,
    _graph_list,
    batch_graphs,
    iter_batches,
)
from nesy.gnn.graph import Graph
from nesy.gnn.layers import GATConv, GCNConv, GINConv, SAGEConv, check_node_input
from nesy.gnn.sparse import SparseFeatures
from nesy.nn import CrossEntropyLoss, Dense, Dropout, History, ReLU, Sequential
from nesy.nn.activations import select, softmax
from nesy.nn.estimators import _check_param
from nesy.nn.module import Module, ModuleList
from nesy.optim import Adam

__all__ = ["NodeNet", "GraphNet", "NodeClassifier", "GraphClassifier"]

MODELS = ("gcn", "sage", "gat", "gin")


class ELU(Module):
    """``x`` if ``x > 0`` else ``alpha (exp(x) - 1)`` (the activation of GAT)."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: np.ndarray) -> np.ndarray:
        neg = self.alpha * np.expm1(np.minimum(x, 0))
        self._save(x, neg)
        return select(x > 0, x, neg.astype(x.dtype, copy=False))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x, neg = self._saved()
        g = np.asarray(grad_out, dtype=x.dtype)
        return select(x > 0, g, (g * (neg + self.alpha)).astype(x.dtype, copy=False))


def _gin_mlp(i: int, o: int, hidden: int, dtype: Any, rng: np.random.Generator) -> Sequential:
    return Sequential(Dense(i, hidden, dtype=dtype, rng=rng), ReLU(),
                      Dense(hidden, o, dtype=dtype, rng=rng))


def make_conv(model: str, i: int, o: int, *, first: bool, last: bool, heads: int = 8,
              output_heads: int = 1, aggr: str = "mean", attention_dropout: float = 0.0,
              dtype: Any = np.float32, rng: Any = None) -> Module:
    """One layer of a ``model`` network from ``i`` to ``o`` features (``o`` per head for GAT;
    GAT hidden layers concatenate ``heads`` heads, the last averages ``output_heads``)."""
    grad = not first
    if model == "gcn":
        return GCNConv(i, o, dtype=dtype, rng=rng, input_grad=grad)
    if model == "sage":
        return SAGEConv(i, o, aggr=aggr, dtype=dtype, rng=rng, input_grad=grad)
    if model == "gin":
        return GINConv(_gin_mlp(i, o, i if last else o, dtype, rng), dtype=dtype,
                       input_grad=grad)
    if model == "gat":
        return GATConv(i, o, heads=output_heads if last else heads, concat=not last,
                       dropout=attention_dropout, dtype=dtype, rng=rng, input_grad=grad)
    raise ValueError(f"model: expected one of {MODELS}, got {model!r}")


class NodeNet(Module):
    """Stack of graph layers: ``dropout -> conv -> activation`` per layer (no activation after
    the last), as in the GCN and GAT papers.

    Parameters
    ----------
    model : {"gcn", "sage", "gat", "gin"}
    in_features, hidden_size, out_features : int
    num_layers : int, default 2
    heads, output_heads : int
        GAT: heads of the hidden layers (concatenated) and of the output layer (averaged).
    aggr : {"mean", "max"}
        GraphSAGE aggregation.
    dropout : float
        On the input of every layer.
    attention_dropout : float
        GAT: on the attention coefficients.
    dtype, rng
    """

    def __init__(self, model: str, in_features: int, hidden_size: int, out_features: int,
                 num_layers: int = 2, heads: int = 8, output_heads: int = 1,
                 aggr: str = "mean", dropout: float = 0.5, attention_dropout: float = 0.0,
                 dtype: Any = np.float32, rng: Any = None) -> None:
        super().__init__()
        n = check_int("num_layers", num_layers, 1)
        hidden_size = check_int("hidden_size", hidden_size, 1)
        heads = check_int("heads", heads, 1)
        gen = np.random.default_rng(rng)
        width = hidden_size * heads if model == "gat" else hidden_size
        self.convs = ModuleList()
        self.drops = ModuleList()
        self.acts = ModuleList()
        for k in range(n):
            i = in_features if k == 0 else width
            o = out_features if k == n - 1 else hidden_size
            self.drops.append(Dropout(dropout, rng=gen))
            self.convs.append(make_conv(model, i, o, first=k == 0, last=k == n - 1,
                                        heads=heads, output_heads=output_heads, aggr=aggr,
                                        attention_dropout=attention_dropout, dtype=dtype,
                                        rng=gen))
            if k < n - 1:
                self.acts.append(ELU() if model == "gat" else ReLU())

    def forward(self, graph: Graph, x: Any) -> np.ndarray:  # type: ignore[override]
        acts = list(self.acts)
        for k, (drop, conv) in enumerate(zip(self.drops, self.convs)):
            if isinstance(x, SparseFeatures):  # dropout on the stored values
                p, rng = drop.p, drop.rng  # type: ignore[attr-defined]
                x = x.dropout(p, rng) if drop.training else x
            else:
                x = drop(x)
            x = conv(graph, x)
            if k < len(acts):
                x = acts[k](x)
        self._save(True)
        return x

    def backward(self, grad_out: np.ndarray) -> Any:
        self._saved()
        acts, drops, convs = list(self.acts), list(self.drops), list(self.convs)
        grad: Any = grad_out
        for k in range(len(convs) - 1, -1, -1):
            if k < len(acts):
                grad = acts[k].backward(grad)
            grad = convs[k].backward(grad)
            if grad is None:  # the first layer skips the input gradient
                return None
            grad = drops[k].backward(grad)
        return grad


# ---------------------------------------------------------------------- input checks
def _check_graph(graph: Any, name: str = "graph") -> Graph:
    if not isinstance(graph, Graph):
        raise TypeError(f"{name}: expected a nesy.gnn.Graph, got {type(graph).__name__}")
    return graph


def _check_mask(mask: Any, n: int, name: str) -> np.ndarray:
    """A boolean mask of length ``n`` from a boolean mask or an array of node indices.

    An empty sequence (``[]``, which NumPy makes float64) selects no node. An integer array
    of ``n`` zeros and ones with repeats is a 0/1 mask (a uint8 or int mask of PyG / DGL
    data), not node indices: read as indices it would select nodes 0 and 1 only, so it is
    refused, naming ``name`` and the fix."""
    m = np.asarray(mask)
    if m.size == 0 and m.ndim == 1 and m.dtype != bool:  # [] is float64: no index
        return np.zeros(n, bool)
    if (m.ndim == 1 and m.size == n and np.issubdtype(m.dtype, np.integer)
            and m.dtype != bool and np.unique(m).size < n and np.isin(m, (0, 1)).all()):
        raise ValueError(f"{name}: got an integer array of {n} zeros and ones, a 0/1 mask: "
                         "pass it as booleans (mask.astype(bool)), or pass node indices "
                         "(np.flatnonzero(mask))")
    if m.dtype == bool:
        if m.shape != (n,):
            raise ValueError(f"{name}: expected a boolean mask of shape ({n},) (one entry per "
                             f"node), got shape {m.shape}")
        return m
    if not np.issubdtype(m.dtype, np.integer) or m.ndim != 1:
        raise TypeError(f"{name}: expected a boolean mask or a 1-D array of node indices, got "
                        f"dtype {m.dtype} and shape {m.shape}")
    if m.size and (m.min() < 0 or m.max() >= n):
        raise IndexError(f"{name}: node index {int(m.max() if m.max() >= n else m.min())} is "
                         f"out of range for {n} nodes")
    out = np.zeros(n, bool)
    out[m] = True
    return out


def _check_sample_weight(w: Any, n: int, what: str) -> Optional[np.ndarray]:
    """``sample_weight`` of ``score``: None, or ``n`` finite non-negative numbers, one per
    ``what`` (errors name ``sample_weight``)."""
    if w is None:
        return None
    a = np.asarray(w)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise TypeError(f"sample_weight: expected real numbers, got dtype {a.dtype}")
    if a.shape != (n,):
        raise ValueError(f"sample_weight: expected one weight per {what}, shape ({n},), got "
                         f"{a.shape}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all() or (a < 0).any():
        raise ValueError("sample_weight: expected finite non-negative weights")
    return a


def _accuracy(y: np.ndarray, pred: np.ndarray, w: Optional[np.ndarray]) -> float:
    """Mean of ``pred == y``, weighted by ``w`` (as ``accuracy_score``)."""
    hit = (pred == y).astype(np.float64)
    if w is None:
        return float(hit.mean())
    if w.sum() <= 0:
        raise ValueError("sample_weight: the weights of the scored samples sum to 0")
    return float(np.average(hit, weights=w))


def _row_normalize(x: np.ndarray) -> np.ndarray:
    s = np.abs(x).sum(axis=1, keepdims=True)
    return x / np.where(s > 0, s, 1).astype(x.dtype)


class _Best:
    """Tracks the best validation accuracy (ties: lower validation loss) and its weights."""

    def __init__(self, model: Module) -> None:
        self.model, self.acc, self.loss = model, -math.inf, math.inf
        self.epoch: Optional[int] = None
        self.state: Optional[dict[str, np.ndarray]] = None
        self.wait = 0

    def update(self, epoch: int, acc: float, loss: float) -> None:
        if acc > self.acc or (acc == self.acc and loss < self.loss):
            self.acc, self.loss, self.epoch, self.wait = acc, loss, epoch, 0
            self.state = self.model.snapshot()
        else:
            self.wait += 1

    def restore(self) -> None:
        if self.state is not None:
            self.model.restore(self.state)


def _adam(first: Module, rest: list[Module], lr: float, weight_decay: float,
          decay: str) -> Adam:
    if decay not in ("all", "first"):
        raise ValueError(f"weight_decay_layers: expected 'all' or 'first', got {decay!r}")
    groups = [{"params": first.parameters(), "weight_decay": weight_decay}]
    tail = [p for m in rest for p in m.parameters()]
    if tail:
        groups.append({"params": tail, "weight_decay": weight_decay if decay == "all" else 0.0})
    return Adam(groups, lr=lr)


def _check_fraction(value: float, name: str, upper: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name}: expected a number in [0, {upper}), got "
                        f"{type(value).__name__} {value!r}")
    v = float(value)
    if not 0.0 <= v < upper:
        raise ValueError(f"{name}: expected a value in [0, {upper}), got {value!r}")
    return v


def _check_dtype(value: Any) -> np.dtype:
    """The ``dtype`` option as np.float32 or np.float64 (ValueError naming ``dtype``)."""
    return check_float_dtype(value)


def _check_readout(value: Any) -> None:
    if value not in READOUTS:
        raise ValueError(f"readout: expected one of {READOUTS}, got {value!r}")


def _check_training(est: Any) -> None:
    """The training parameters both classifiers share, checked before anything is built:
    ``epochs >= 1``, ``patience`` ``None`` or ``>= 0``, a finite ``learning_rate > 0`` and
    ``weight_decay >= 0``."""
    _check_param("epochs", est.epochs, Integral, 1)
    if est.patience is not None:
        _check_param("patience", est.patience, Integral, 0)
    for name, low_open in (("learning_rate", True), ("weight_decay", False)):
        value = getattr(est, name)
        _check_param(name, value, Real, 0.0, low_open=low_open)  # finite: refuses inf, NaN


# ---------------------------------------------------------------------- node classification
class NodeClassifier(ClassifierMixin, BaseEstimator):
    """Transductive node classifier: a GCN, GraphSAGE, GAT or GIN network trained full-batch
    with Adam on the labelled nodes, early-stopped on validation accuracy.

    The defaults are the GCN paper's (Kipf and Welling 2017): 2 layers, 16 hidden units,
    dropout 0.5, learning rate 0.01, weight decay 5e-4 on the first layer, 200 epochs, features
    row-normalised; early stopping (``patience=100``) is not the paper's (``patience=None``
    trains all epochs, as the README's GCN row). For GAT (Velickovic et al. 2018) use
    ``hidden_size=8, heads=8, dropout=0.6, attention_dropout=0.6, learning_rate=0.005,
    weight_decay_layers="all", epochs=1000, patience=100``. The exact settings of the README's
    Cora table are ``nesy.gnn.report.CONFIGS``.

    Parameters
    ----------
    model : {"gcn", "sage", "gat", "gin"}, default "gcn"
    hidden_size : int, default 16
        Hidden units (per head for GAT).
    num_layers : int, default 2
    heads, output_heads : int, default 8, 1
        GAT heads in the hidden layers (concatenated) and in the output layer (averaged).
    aggr : {"mean", "max"}, default "mean"
        GraphSAGE aggregation.
    dropout : float, default 0.5
        Dropout on the input of every layer.
    attention_dropout : float, optional
        GAT dropout on attention coefficients (default: ``dropout``).
    learning_rate : float, default 0.01
    weight_decay : float, default 5e-4
        L2 penalty of Adam (``g += weight_decay * p``).
    weight_decay_layers : {"first", "all"}, default "first"
        Which layers are decayed.
    epochs : int, default 200
    patience : int or None, default 100
        Stop after this many epochs without a better validation accuracy (ties broken by the
        lower validation loss); ``None`` runs all epochs. The validation metrics are those of
        the network in evaluation mode after each epoch's step. The best epoch's weights are
        restored either way when ``val_mask`` selects at least one node; without it (or with
        an empty one) nothing is monitored: all epochs run, the last epoch's weights are
        kept and ``best_epoch_`` is None.
    normalize_features : bool, default True
        Divide every feature row by its L1 norm (zero rows stay zero).
    sparse_features : {"auto", True, False}, default "auto"
        Keep ``X`` as :class:`~nesy.gnn.sparse.SparseFeatures` for the first layer (its
        products with the weights, and input dropout, then cost O(non-zeros)). ``"auto"``: when
        ``X`` is a SciPy sparse matrix or at most 10 % of its entries are non-zero, except
        for GIN. The architecture is the same either way, and without input dropout so is the
        result; with it, the sparse and dense paths draw different dropout masks (one per
        non-zero, one per entry), so a seed gives a different (equally good) model on each.
    dtype : {np.float32, np.float64}, default np.float32
    random_state : int, optional
        Seeds initialisation and dropout.
    verbose : int, default 0
        1: a progress bar over epochs.

    Attributes
    ----------
    model_ : NodeNet
    classes_ : ndarray
    n_features_in_ : int
    history_ : nesy.nn.History
        Per epoch: ``loss``, ``accuracy`` (training nodes, evaluation mode), ``val_loss``,
        ``val_accuracy`` (with ``val_mask``) and ``time`` (seconds, including evaluation);
        ``best_epoch`` and ``stopped_epoch``. ``val_loss`` is the cross-entropy over the
        validation nodes whose label is a class of the training nodes (the others count as
        wrong in ``val_accuracy``).
    best_epoch_ : int or None
        The epoch whose weights were kept (best validation accuracy); None without
        validation.
    """

    n_features_in_: int

    def __init__(self, model: str = "gcn", hidden_size: int = 16, num_layers: int = 2,
                 heads: int = 8, output_heads: int = 1, aggr: str = "mean",
                 dropout: float = 0.5, attention_dropout: Optional[float] = None,
                 learning_rate: float = 0.01, weight_decay: float = 5e-4,
                 weight_decay_layers: str = "first", epochs: int = 200,
                 patience: Optional[int] = 100, normalize_features: bool = True,
                 sparse_features: Any = "auto", dtype: Any = np.float32,
                 random_state: Optional[int] = None, verbose: int = 0) -> None:
        self.model = model
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.heads = heads
        self.output_heads = output_heads
        self.aggr = aggr
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.weight_decay_layers = weight_decay_layers
        self.epochs = epochs
        self.patience = patience
        self.normalize_features = normalize_features
        self.sparse_features = sparse_features
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ helpers
    def _features(self, graph: Any, X: Any, fitting: bool) -> Any:
        graph = _check_graph(graph)
        dtype = _check_dtype(self.dtype)
        if self.sparse_features not in ("auto", True, False):
            raise ValueError(f"sparse_features: expected 'auto', True or False, got "
                             f"{self.sparse_features!r}")
        if hasattr(X, "tocsr") and not isinstance(X, SparseFeatures):  # SciPy sparse
            if X.dtype.kind not in "biuf":  # complex: the cast would drop the imaginary part
                raise TypeError(f"X: expected real numbers, got dtype {X.dtype}")
            X = SparseFeatures.from_scipy(X, dtype)
        x = check_node_input(graph, X, None if fitting else self.n_features_in_, dtype,
                             name="X")
        if fitting and x.shape[1] == 0:
            raise ValueError(f"X: has no features (shape {x.shape}); a node classifier needs "
                             "at least one column")
        want = self.sparse_features
        if want == "auto":
            want = self.model != "gin" and (isinstance(x, SparseFeatures)
                                            or np.count_nonzero(x) <= 0.1 * x.size)
        if want and not isinstance(x, SparseFeatures):
            x = SparseFeatures.from_dense(x, dtype)
        elif not want and isinstance(x, SparseFeatures):
            x = x.to_dense()
        if not self.normalize_features:
            return x
        return x.row_normalize() if isinstance(x, SparseFeatures) else _row_normalize(x)

    def _logits(self, graph: Any, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        x = self._features(graph, X, fitting=False)
        self.model_.eval()
        return self.model_.forward(graph, x)

    # ------------------------------------------------------------------ API
    def fit(self, graph: Graph, X: Any, y: Any, train_mask: Any = None,
            val_mask: Any = None) -> NodeClassifier:
        """Train on the nodes of ``train_mask``; early-stop on those of ``val_mask``.

        Parameters
        ----------
        graph : Graph
            Messages flow along its edges (make it undirected for citation graphs).
        X : array or SciPy sparse matrix of shape (n_nodes, n_features)
        y : array of shape (n_nodes,)
            Labels; only those of the training and validation nodes are read.
        train_mask, val_mask : boolean array of shape (n_nodes,) or array of node indices
            Default training nodes: all; no validation (no early stopping).

        Returns
        -------
        self
        """
        if self.model not in MODELS:
            raise ValueError(f"model: expected one of {MODELS}, got {self.model!r}")
        _check_training(self)
        for name in ("hidden_size", "num_layers", "heads", "output_heads"):
            check_int(name, getattr(self, name), 1)
        _check_fraction(self.dropout, "dropout")
        att = self.dropout if self.attention_dropout is None else self.attention_dropout
        _check_fraction(att, "attention_dropout")
        x = self._features(graph, X, fitting=True)
        n = graph.num_nodes
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(f"y: expected one label per node, shape ({n},), got {y.shape}")
        tr = np.ones(n, bool) if train_mask is None else _check_mask(train_mask, n, "train_mask")
        if not tr.any():
            raise ValueError("train_mask: selects no node")
        va = None if val_mask is None else _check_mask(val_mask, n, "val_mask")
        enc = label_encoder(y[tr])
        y_tr = enc.transform(y[tr])
        y_va = None
        if va is not None and va.any():
            known = np.isin(y[va], enc.classes_)
            y_va = np.full(int(va.sum()), -1, np.int64)
            y_va[known] = enc.transform(y[va][known])
        epochs = int(self.epochs)
        model = NodeNet(self.model, x.shape[1], int(self.hidden_size), len(enc.classes_),
                        int(self.num_layers), int(self.heads), int(self.output_heads),
                        self.aggr, float(self.dropout), float(att), np.dtype(self.dtype),
                        self.random_state)
        convs = list(model.convs)
        opt = _adam(convs[0], convs[1:], float(self.learning_rate), float(self.weight_decay),
                    self.weight_decay_layers)
        # Full-batch products on Cora-sized graphs are small: one BLAS thread is faster, and
        # 5-10x faster on a busy machine (GAT epoch 14 ms against 60-180 ms with the default
        # OpenBLAS pool), as in nesy.nn.estimators.
        with threadpool_limits(limits=1, user_api="blas"):
            history = self._train(model, graph, x, tr, y_tr, va, y_va, opt, epochs)
        # Set together, after training: a fit that raises leaves the estimator as it was.
        self.n_features_in_ = x.shape[1]
        self.classes_ = enc.classes_
        self.model_, self.history_, self.best_epoch_ = model, history, history.best_epoch
        return self

    def _train(self, model: NodeNet, graph: Graph, x: np.ndarray, tr: np.ndarray,
               y_tr: np.ndarray, va: Optional[np.ndarray], y_va: Optional[np.ndarray],
               opt: Adam, epochs: int) -> History:
        loss_fn, eval_loss = CrossEntropyLoss(), CrossEntropyLoss()
        grads = model.gradients()
        history = History(params={"epochs": epochs, "model": self.model})
        best = _Best(model)
        bar = tqdm(range(1, epochs + 1), desc="fit", unit="epoch", disable=self.verbose <= 0)
        for epoch in bar:
            t0 = time.perf_counter()
            model.train()
            model.zero_grad()
            out = _forward(model, graph, x, epoch)
            loss = loss_fn(out[tr], y_tr)
            if not math.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss ({loss}) at epoch {epoch}")
            grad = np.zeros_like(out)
            grad[tr] = loss_fn.backward()
            model.backward(grad)
            opt.step(grads)
            model.eval()
            out = _forward(model, graph, x, epoch)
            logs = {"loss": loss, "accuracy": float(np.mean(out[tr].argmax(1) == y_tr))}
            if y_va is not None:
                logs["val_loss"] = _masked_loss(eval_loss, out[va], y_va)
                logs["val_accuracy"] = float(np.mean(out[va].argmax(1) == y_va))
                best.update(epoch, logs["val_accuracy"], logs["val_loss"])
            logs["time"] = time.perf_counter() - t0
            history.append(epoch, logs)
            if self.patience is not None and y_va is not None and best.wait >= self.patience:
                history.stopped_epoch = epoch
                break
        bar.close()
        best.restore()
        history.best_epoch = best.epoch
        return history

    def predict_proba(self, graph: Graph, X: Any) -> np.ndarray:
        """Class probabilities of every node, ``(n_nodes, n_classes)``."""
        return softmax(self._logits(graph, X).astype(np.float64), axis=-1)

    def predict(self, graph: Graph, X: Any) -> np.ndarray:
        """Predicted label of every node, ``(n_nodes,)``."""
        logits = self._logits(graph, X)
        return self.classes_[np.argmax(logits, axis=1)]

    def score(self, graph: Graph, X: Any, y: Any, mask: Any = None,  # type: ignore[override]
              sample_weight: Any = None) -> float:
        """Accuracy on the nodes of ``mask`` (default all), weighted by ``sample_weight`` (one
        weight per node of the graph, shape ``(n_nodes,)``; those of the masked nodes are
        used), as scikit-learn's ``accuracy_score``."""
        pred = self.predict(graph, X)
        n = graph.num_nodes
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"y: expected one label per node, shape ({n},), got {y.shape}")
        m = np.ones(n, bool) if mask is None else _check_mask(mask, n, "mask")
        if not m.any():
            raise ValueError("mask: selects no node")
        w = _check_sample_weight(sample_weight, n, "node")
        return _accuracy(y[m], pred[m], None if w is None else w[m])


def _forward(model: Module, graph: Any, x: Any, epoch: int) -> np.ndarray:
    """``model.forward(graph, x)`` during training. The features were checked to be finite,
    so a non-finite value found by a layer's or the readout's check of its input is an
    activation that overflowed: the training diverged. Said so (as for a non-finite loss),
    not as the layer's "x: contains NaN or infinity", which reads as if the user's X were
    bad."""
    try:
        return model.forward(graph, x)
    except ValueError as exc:
        if "contains NaN or infinity" not in str(exc):
            raise
        raise FloatingPointError(f"non-finite activations at epoch {epoch}: the training "
                                 "diverged (lower learning_rate), or the features are too "
                                 "large for the network's dtype") from exc


def _masked_loss(loss_fn: CrossEntropyLoss, logits: np.ndarray, labels: np.ndarray) -> float:
    """Cross-entropy over the rows whose label is known (``>= 0``)."""
    keep = labels >= 0
    return float(loss_fn(logits[keep], labels[keep])) if keep.any() else math.inf


# ---------------------------------------------------------------------- graph classification
class GraphNet(Module):
    """Message passing, readout, MLP head: ``(GraphBatch, x)`` -> ``(num_graphs, n_out)``.

    Parameters
    ----------
    model : {"gin", "gcn", "sage"}
    in_features, hidden_size, out_features : int
    num_layers : int
        Graph layers, each followed by ReLU.
    readout : {"sum", "mean", "max"}
    dropout : float
        Before the last dense layer of the head.
    dtype, rng
    """

    def __init__(self, model: str, in_features: int, hidden_size: int, out_features: int,
                 num_layers: int = 3, readout: str = "sum", dropout: float = 0.0,
                 dtype: Any = np.float32, rng: Any = None) -> None:
        super().__init__()
        if model not in ("gin", "gcn", "sage"):
            raise ValueError(f"model: expected 'gin', 'gcn' or 'sage', got {model!r}")
        num_layers = check_int("num_layers", num_layers, 1)
        hidden_size = check_int("hidden_size", hidden_size, 1)
        _check_readout(readout)
        gen = np.random.default_rng(rng)
        self.convs = ModuleList()
        self.acts = ModuleList()
        for k in range(num_layers):
            i = in_features if k == 0 else hidden_size
            self.convs.append(make_conv(model, i, hidden_size, first=k == 0, last=False,
                                        dtype=dtype, rng=gen))
            self.acts.append(ReLU())
        self.pool = GlobalPool(readout)
        self.head = Sequential(Dense(hidden_size, hidden_size, dtype=dtype, rng=gen), ReLU(),
                               Dropout(dropout, rng=gen),
                               Dense(hidden_size, out_features, dtype=dtype, rng=gen))

    def forward(self, batch: GraphBatch, x: Any) -> np.ndarray:  # type: ignore[override]
        for conv, act in zip(self.convs, self.acts):
            x = act(conv(batch.graph, x))
        self._save(True)
        return self.head(self.pool(x, batch.batch, batch.num_graphs))

    def backward(self, grad_out: np.ndarray) -> Any:
        self._saved()
        grad: Any = self.pool.backward(self.head.backward(grad_out))
        for conv, act in zip(reversed(list(self.convs)), reversed(list(self.acts))):
            grad = conv.backward(act.backward(grad))
            if grad is None:
                return None
        return grad


def _feature_list(X: Any, graphs: list[Graph]) -> list[Any]:
    """``X`` of GraphClassifier as a list of per-graph matrices; None, one stacked 2-D array
    (PyG's ``x`` with a ``batch`` vector) and anything not iterable are refused naming ``X``
    (not "'NoneType' object is not iterable" or a count of rows)."""
    if X is None:
        raise TypeError("X: expected one feature matrix per graph, got None; for graphs "
                        "without node features pass constant ones, [np.ones((g.num_nodes, "
                        "1)) for g in graphs], or their degrees, [g.in_degree()[:, None] "
                        "for g in graphs]")
    if isinstance(X, GraphBatch):
        raise TypeError("X: expected one feature matrix per graph, got a GraphBatch; pass "
                        "the list of feature matrices")
    ragged = isinstance(X, np.ndarray) and X.dtype.kind == "O"  # an object array of matrices
    if getattr(X, "ndim", None) == 2 and not ragged:
        raise ValueError(f"X: expected a list of per-graph feature matrices (one per graph, "
                         f"{len(graphs)}), not one stacked array of shape "
                         f"{tuple(X.shape)}; split it with np.split(X, np.cumsum("
                         "[g.num_nodes for g in graphs])[:-1])")
    try:
        return list(X)
    except TypeError:
        raise TypeError(f"X: expected one feature matrix per graph, got "
                        f"{type(X).__name__}") from None


class GraphClassifier(ClassifierMixin, BaseEstimator):
    """Graph classification: one label per graph, from graph layers, a readout and an MLP.

    Parameters
    ----------
    model : {"gin", "gcn", "sage"}, default "gin"
    hidden_size : int, default 32
    num_layers : int, default 3
    readout : {"sum", "mean", "max"}, default "sum"
    dropout : float, default 0.0
        In the head.
    learning_rate, weight_decay : float, default 0.01, 0.0
    epochs : int, default 100
    batch_size : int, default 32
        Graphs per mini-batch.
    validation_fraction : float, default 0.1
        Fraction of the training graphs held out (at random, seeded by ``random_state``, not
        stratified) to monitor validation accuracy: ``round(validation_fraction *
        n_graphs)`` of them. Needs at least 10 graphs: with fewer, with 0, or when that
        product rounds to 0, there is no validation split and no early stopping: all epochs
        run on every graph and the last epoch's weights are kept.
    patience : int or None, default 20
        With a validation split: stop after this many epochs without a better validation
        accuracy (ties broken by the lower validation loss); ``None`` runs all epochs. Either
        way the weights of the best validation epoch are restored.
    dtype : {np.float32, np.float64}, default np.float32
    random_state : int, optional
    verbose : int, default 0

    Attributes
    ----------
    model_ : GraphNet
    classes_ : ndarray
    n_features_in_ : int
    history_ : nesy.nn.History
        ``loss`` (mean over training batches), ``val_loss`` and ``val_accuracy`` (with a
        validation split; the network in evaluation mode after the epoch), ``time``;
        ``best_epoch`` (None without validation) and ``stopped_epoch``.
    best_epoch_ : int or None
        The epoch whose weights were kept (best validation accuracy); None without a
        validation split (as :class:`NodeClassifier`'s).
    """

    n_features_in_: int

    def __init__(self, model: str = "gin", hidden_size: int = 32, num_layers: int = 3,
                 readout: str = "sum", dropout: float = 0.0, learning_rate: float = 0.01,
                 weight_decay: float = 0.0, epochs: int = 100, batch_size: int = 32,
                 validation_fraction: float = 0.1, patience: Optional[int] = 20,
                 dtype: Any = np.float32, random_state: Optional[int] = None,
                 verbose: int = 0) -> None:
        self.model = model
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.readout = readout
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def _inputs(self, graphs: Any, X: Any, fitting: bool) -> tuple[list[Graph], list[np.ndarray]]:
        if isinstance(graphs, GraphBatch):  # nesy's own batch: named, with what to pass
            raise TypeError("graphs: expected a sequence of Graphs, got a GraphBatch; pass "
                            "the list of Graphs and the list of their feature matrices "
                            "(fit(graphs, X, y), predict(graphs, X)): the classifier "
                            "batches them itself")
        graphs = _graph_list(graphs)
        X = _feature_list(X, graphs)
        if len(X) != len(graphs):
            raise ValueError(f"X: expected one feature matrix per graph ({len(graphs)}), got "
                             f"{len(X)}")
        if not graphs:
            raise ValueError("graphs: empty")
        width = None if fitting else self.n_features_in_
        dtype = _check_dtype(self.dtype)
        feats = []
        for i, (g, x) in enumerate(zip(graphs, X)):
            _check_graph(g, f"graphs[{i}]")
            f = check_node_input(g, x, width, dtype, name=f"X[{i}]")
            if f.shape[1] == 0:
                raise ValueError(f"X[{i}]: has no features (shape {f.shape}); a graph "
                                 "classifier needs at least one column")
            width = f.shape[1]
            feats.append(f)
        return graphs, feats

    def fit(self, graphs: Sequence[Graph], X: Sequence[Any], y: Any) -> GraphClassifier:
        """Train on ``graphs`` with node features ``X[i]`` of shape ``(graphs[i].num_nodes,
        n_features)`` and one label per graph in ``y``; returns self."""
        _check_training(self)
        for name in ("hidden_size", "num_layers", "batch_size"):
            check_int(name, getattr(self, name), 1)
        _check_readout(self.readout)
        _check_fraction(self.dropout, "dropout")
        _check_fraction(self.validation_fraction, "validation_fraction")
        graphs, feats = self._inputs(graphs, X, fitting=True)
        y = np.asarray(y)
        if y.shape != (len(graphs),):
            raise ValueError(f"y: expected one label per graph, shape ({len(graphs)},), got "
                             f"{y.shape}")
        enc = label_encoder(y)
        labels = enc.transform(y).astype(np.int64)
        frac = _check_fraction(self.validation_fraction, "validation_fraction")
        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(len(graphs))
        n_val = int(round(frac * len(graphs))) if len(graphs) >= 10 else 0
        if n_val >= len(graphs):
            raise ValueError(f"validation_fraction: {frac} of {len(graphs)} graphs leaves "
                             "none to train on")
        val, tr = order[:n_val], order[n_val:]
        n_features = int(feats[0].shape[1])
        model = GraphNet(self.model, n_features, int(self.hidden_size), len(enc.classes_),
                         int(self.num_layers), self.readout,
                         _check_fraction(self.dropout, "dropout"), np.dtype(self.dtype), rng)
        opt = Adam(model.parameters(), lr=float(self.learning_rate),
                   weight_decay=float(self.weight_decay))
        val_batch = (batch_graphs([graphs[i] for i in val], [feats[i] for i in val])
                     if n_val else None)
        with threadpool_limits(limits=1, user_api="blas"):  # see NodeClassifier.fit
            history = self._train(model, graphs, feats, labels, tr, val_batch, labels[val],
                                  opt, rng)
        # Set together, after training: a fit that raises leaves the estimator as it was.
        self.n_features_in_ = n_features
        self.classes_ = enc.classes_
        self.model_, self.history_ = model, history
        self.best_epoch_ = history.best_epoch
        return self

    def _train(self, model: GraphNet, graphs: list[Graph], feats: list[np.ndarray],
               labels: np.ndarray, tr: np.ndarray, val_batch: Optional[GraphBatch],
               y_val: np.ndarray, opt: Adam, rng: np.random.Generator) -> History:
        loss_fn = CrossEntropyLoss()
        grads = model.gradients()
        history = History(params={"epochs": self.epochs, "batch_size": self.batch_size})
        best = _Best(model)
        tr_graphs, tr_feats = [graphs[i] for i in tr], [feats[i] for i in tr]
        for epoch in tqdm(range(1, int(self.epochs) + 1), desc="fit", unit="epoch",
                          disable=self.verbose <= 0):
            t0 = time.perf_counter()
            model.train()
            total = 0.0
            for idx, gb in iter_batches(tr_graphs, tr_feats, self.batch_size, rng=rng):
                model.zero_grad()
                out = _forward(model, gb, gb.x, epoch)
                loss = float(loss_fn(out, labels[tr[idx]]))
                if not math.isfinite(loss):
                    raise FloatingPointError(f"non-finite training loss ({loss}) at epoch "
                                             f"{epoch}: the training diverged (lower "
                                             "learning_rate)")
                total += loss * len(idx)
                model.backward(loss_fn.backward())
                opt.step(grads)
            logs = {"loss": total / max(len(tr), 1)}
            if val_batch is not None:
                model.eval()
                out = _forward(model, val_batch, val_batch.x, epoch)
                logs["val_loss"] = float(CrossEntropyLoss()(out, y_val))
                logs["val_accuracy"] = float(np.mean(out.argmax(1) == y_val))
                best.update(epoch, logs["val_accuracy"], logs["val_loss"])
            logs["time"] = time.perf_counter() - t0
            history.append(epoch, logs)
            if (val_batch is not None and self.patience is not None
                    and best.wait >= int(self.patience)):
                history.stopped_epoch = epoch
                break
        best.restore()
        history.best_epoch = best.epoch
        return history

    def _logits(self, graphs: Any, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        graphs, feats = self._inputs(graphs, X, fitting=False)
        self.model_.eval()
        gb = batch_graphs(graphs, feats)
        return self.model_.forward(gb, gb.x)

    def predict_proba(self, graphs: Sequence[Graph], X: Sequence[Any]) -> np.ndarray:
        """Class probabilities ``(n_graphs, n_classes)``."""
        return softmax(self._logits(graphs, X).astype(np.float64), axis=-1)

    def predict(self, graphs: Sequence[Graph], X: Sequence[Any]) -> np.ndarray:
        """Predicted label of every graph."""
        logits = self._logits(graphs, X)
        return self.classes_[np.argmax(logits, axis=1)]

    def score(self, graphs: Sequence[Graph], X: Sequence[Any], y: Any,  # type: ignore[override]
              sample_weight: Any = None) -> float:
        """Accuracy over ``graphs``, weighted by ``sample_weight`` (one weight per graph), as
        scikit-learn's ``accuracy_score``."""
        pred = self.predict(graphs, X)
        y = np.asarray(y)
        if y.shape != pred.shape:
            raise ValueError(f"y: expected one label per graph, shape {pred.shape}, got "
                             f"{y.shape}")
        w = _check_sample_weight(sample_weight, len(pred), "graph")
        return _accuracy(y, pred, w)
