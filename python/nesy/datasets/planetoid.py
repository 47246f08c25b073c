"""Planetoid citation graphs (Cora, CiteSeer, PubMed) with the public split.

The files are the ones of Yang, Cohen and Salakhutdinov (2016), as distributed with Kipf and
Welling's GCN code: ``ind.<name>.{x, y, tx, ty, allx, ally, graph, test.index}``, Python 2
pickles of SciPy CSR matrices, NumPy arrays and a dict of adjacency lists. They are read with a
restricted unpickler that only rebuilds those types, and without SciPy: a pickled CSR matrix is
taken apart into its ``data``/``indices``/``indptr`` arrays. Cora is shipped in
``nesy/datasets/data/planetoid/``.
"""

from __future__ import annotations

import os
import pickle
from importlib import resources
from typing import Any, NamedTuple, Optional, Union

import numpy as np

from nesy.gnn.graph import Graph

__all__ = ["Planetoid", "load_planetoid"]

NAMES = ("cora", "citeseer", "pubmed")
_PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph")


class Planetoid(NamedTuple):
    """A Planetoid data set: unpack as ``graph, X, y, train_mask, val_mask, test_mask``.

    Attributes
    ----------
    graph : Graph
        Undirected citation graph (both directions of every edge; duplicates and self-loops
        removed), ``num_nodes = n_nodes``.
    X : ndarray of float32, shape (n_nodes, n_features)
        Raw bag-of-words (Cora, CiteSeer) or TF-IDF (PubMed) features, not normalised.
    y : ndarray of int64, shape (n_nodes,)
        Class labels.
    train_mask, val_mask, test_mask : ndarray of bool, shape (n_nodes,)
        The public split: the first ``20 * n_classes`` nodes, the next 500, and the 1,000 test
        nodes of ``test.index``.
    """

    graph: Graph
    X: np.ndarray
    y: np.ndarray
    train_mask: np.ndarray
    val_mask: np.ndarray
    test_mask: np.ndarray


class _CSRState:
    """Stands in for ``scipy.sparse.csr_matrix`` while unpickling: keeps the attributes."""

    def to_dense(self, dtype: Any = np.float32) -> np.ndarray:
        d = self.__dict__
        n_rows, n_cols = d["_shape"]
        indptr = np.asarray(d["indptr"], dtype=np.int64)
        out = np.zeros((n_rows, n_cols), dtype=dtype)
        rows = np.repeat(np.arange(n_rows), np.diff(indptr))
        np.add.at(out, (rows, np.asarray(d["indices"], dtype=np.int64)),
                  np.asarray(d["data"], dtype=dtype))
        return out


class _Unpickler(pickle.Unpickler):
    """Rebuilds only NumPy arrays, CSR matrices (as :class:`_CSRState`) and dicts of lists."""

    _ALLOWED = {
        ("collections", "defaultdict"), ("__builtin__", "list"), ("builtins", "list"),
        ("__builtin__", "int"), ("builtins", "int"), ("__builtin__", "object"),
        ("builtins", "object"), ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("scipy.sparse") and name == "csr_matrix":
            return _CSRState
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a Planetoid file")


def _read(path: str) -> Any:
    with open(path, "rb") as fh:
        return _Unpickler(fh, encoding="latin1").load()


def _dense(obj: Any, what: str) -> np.ndarray:
    if isinstance(obj, _CSRState):
        return obj.to_dense()
    arr = np.asarray(obj)
    if arr.ndim != 2:
        raise ValueError(f"{what}: expected a matrix, got shape {arr.shape}")
    return arr


def _files(name: str, root: Optional[Union[str, os.PathLike[str]]]) -> dict[str, Any]:
    if root is None:
        base = resources.files("nesy.datasets") / "data" / "planetoid"
        if not (base / f"ind.{name}.x").is_file():
            raise FileNotFoundError(
                f"name: only 'cora' ships with nesy; pass root=<folder with ind.{name}.*>")
        paths = {p: str(base / f"ind.{name}.{p}") for p in (*_PARTS, "test.index")}
    else:
        paths = {p: os.path.join(os.fspath(root), f"ind.{name}.{p}")
                 for p in (*_PARTS, "test.index")}
        missing = [p for p in paths.values() if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(f"root: missing Planetoid file {missing[0]}")
    out = {p: _read(paths[p]) for p in _PARTS}
    out["test.index"] = np.loadtxt(paths["test.index"], dtype=np.int64, ndmin=1)
    return out


def load_planetoid(name: str = "cora",
                   root: Optional[Union[str, os.PathLike[str]]] = None) -> Planetoid:
    """Load a Planetoid data set with its public split.

    Parameters
    ----------
    name : {"cora", "citeseer", "pubmed"}
    root : path, optional
        Folder holding ``ind.<name>.*``. Default: the copy shipped with nesy (Cora only).

    Returns
    -------
    Planetoid
        ``(graph, X, y, train_mask, val_mask, test_mask)``; for Cora 2,708 nodes, 10,556
        directed edges (5,278 undirected), 1,433 features, 7 classes, 140 / 500 / 1,000 nodes
        in the split.

    Notes
    -----
    Test nodes are stored in ``tx``/``ty`` in the order of ``test.index``; they are put back at
    their node ids. CiteSeer has isolated nodes missing from the test files: as in the GCN code
    and PyG, the test block is widened to the full index range, the missing nodes get zero
    features and label 0 (they are in no mask).
    """
    name = str(name).lower()
    if name not in NAMES:
        raise ValueError(f"name: expected one of {NAMES}, got {name!r}")
    f = _files(name, root)
    x, tx, allx = (_dense(f[k], k) for k in ("x", "tx", "allx"))
    y, ty, ally = (np.asarray(f[k]) for k in ("y", "ty", "ally"))
    test_index = f["test.index"]
    test_range = np.sort(test_index)
    if name == "citeseer":  # isolated test nodes: widen the test block to the full range
        lo, hi = int(test_range.min()), int(test_range.max())
        tx_full = np.zeros((hi - lo + 1, tx.shape[1]), tx.dtype)
        tx_full[test_range - lo] = tx
        ty_full = np.zeros((hi - lo + 1, ty.shape[1]), ty.dtype)
        ty_full[test_range - lo] = ty
        tx, ty = tx_full, ty_full
    X = np.vstack([allx, tx]).astype(np.float32)
    labels = np.vstack([ally, ty])
    X[test_index] = X[test_range]
    labels[test_index] = labels[test_range]
    n = X.shape[0]
    graph = _graph(f["graph"], n)
    train = np.zeros(n, bool)
    train[: y.shape[0]] = True
    val = np.zeros(n, bool)
    val[y.shape[0]: y.shape[0] + 500] = True
    test = np.zeros(n, bool)
    test[test_range] = True
    return Planetoid(graph, X, np.argmax(labels, axis=1).astype(np.int64), train, val, test)


def _graph(adjacency: Any, n: int) -> Graph:
    src: list[int] = []
    dst: list[int] = []
    for node, neighbours in dict(adjacency).items():
        src.extend([int(node)] * len(neighbours))
        dst.extend(int(v) for v in neighbours)
    ei = np.array([src, dst], dtype=np.int64).reshape(2, -1)
    ei = ei[:, ei[0] != ei[1]]  # self-loops: layers add their own
    if ei.size and int(ei.max()) >= n:
        raise ValueError(f"graph: node id {int(ei.max())} beyond the {n} feature rows")
    return Graph(ei, n).to_undirected()
