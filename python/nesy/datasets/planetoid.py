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
import warnings
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
    """The object pickled in ``path``; a damaged file raises ValueError naming it (a missing or
    unreadable one keeps its OSError)."""
    try:
        with open(path, "rb") as fh:
            return _Unpickler(fh, encoding="latin1").load()
    except OSError:
        raise
    except Exception as e:  # truncated, corrupt or refused: UnpicklingError, EOFError, ...
        raise ValueError(f"{path}: not a readable Planetoid pickle "
                         f"({type(e).__name__}: {e})") from e


def _read_index(path: str) -> np.ndarray:
    """``test.index``: one integer node id per line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty file: checked against tx below
            idx = np.loadtxt(path, dtype=np.int64, ndmin=1)
    except OSError:
        raise
    except Exception as e:
        raise ValueError(f"{path}: expected one integer node id per line ({e})") from e
    if idx.ndim != 1:
        raise ValueError(f"{path}: expected one integer node id per line, got {idx.shape[1]} "
                         "columns")
    return idx


def _matrix(obj: Any, path: str) -> np.ndarray:
    """A numeric 2-D array from a pickled CSR matrix (as float32) or array (its own dtype)."""
    try:
        arr = obj.to_dense() if isinstance(obj, _CSRState) else np.asarray(obj)
    except Exception as e:
        raise ValueError(f"{path}: not a matrix ({type(e).__name__}: {e})") from e
    if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{path}: expected a numeric matrix, got {arr.dtype} of shape "
                         f"{arr.shape}")
    return arr


def _files(name: str, root: Optional[Union[str, os.PathLike[str]]]
           ) -> tuple[dict[str, Any], dict[str, str]]:
    if root is None:
        base = resources.files("nesy.datasets") / "data" / "planetoid"
        if not (base / f"ind.{name}.x").is_file():
            raise FileNotFoundError(
                f"name: only 'cora' ships with nesy; pass root=<folder with ind.{name}.*>")
        paths = {p: str(base / f"ind.{name}.{p}") for p in (*_PARTS, "test.index")}
    else:
        folder = os.fspath(root)
        if not os.path.isdir(folder):  # say so, rather than "missing file <root>/ind..."
            kind = NotADirectoryError if os.path.exists(folder) else FileNotFoundError
            what = "is not a folder" if os.path.exists(folder) else "no such folder"
            raise kind(f"root: {folder!r}: {what} (expected the folder holding "
                       f"ind.{name}.*)")
        paths = {p: os.path.join(folder, f"ind.{name}.{p}")
                 for p in (*_PARTS, "test.index")}
        missing = [p for p in paths.values() if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(f"root: missing Planetoid file {missing[0]}")
    out = {p: _read(paths[p]) for p in _PARTS}
    out["test.index"] = _read_index(paths["test.index"])
    return out, paths


def _check_parts(blocks: dict[str, np.ndarray], paths: dict[str, str]) -> None:
    """Every label block has one row per feature row; the stacked blocks agree in width."""
    for k in ("x", "allx", "tx"):
        lk = k.replace("x", "y")
        if blocks[lk].shape[0] != blocks[k].shape[0]:
            raise ValueError(f"{paths[lk]}: {blocks[lk].shape[0]} label rows for the "
                             f"{blocks[k].shape[0]} feature rows of {paths[k]}")
    if blocks["x"].shape[0] > blocks["allx"].shape[0]:
        raise ValueError(f"{paths['x']}: {blocks['x'].shape[0]} rows, more than the "
                         f"{blocks['allx'].shape[0]} of {paths['allx']}")
    for a, b in (("allx", "tx"), ("ally", "ty")):
        if blocks[a].shape[1] != blocks[b].shape[1]:
            raise ValueError(f"{paths[b]}: {blocks[b].shape[1]} columns, {paths[a]} has "
                             f"{blocks[a].shape[1]}")


def _check_test_index(test_index: np.ndarray, n_all: int, n_test: int, span: bool,
                      path: str) -> None:
    """The test ids: one per row of ``tx``, distinct, from ``n_all`` (the rows after ``allx``)
    on; without ``span`` (all but CiteSeer, whose ids skip isolated nodes) exactly
    ``n_all .. n_all + n_test - 1``."""
    if test_index.size != n_test:
        raise ValueError(f"{path}: {test_index.size} test ids for the {n_test} rows of tx")
    if np.unique(test_index).size != test_index.size:
        values, counts = np.unique(test_index, return_counts=True)
        raise ValueError(f"{path}: node id {int(values[counts > 1][0])} appears more than once")
    if not n_test:
        return
    lo, hi = int(test_index.min()), int(test_index.max())
    top = None if span else n_all + n_test
    if lo < n_all or (top is not None and hi >= top):
        where = f"[{n_all}, {top})" if top is not None else f">= {n_all}"
        raise IndexError(f"{path}: test node id {lo if lo < n_all else hi} is out of range "
                         f"(expected {where}, the ids after the {n_all} rows of allx)")
    if lo != n_all:
        raise ValueError(f"{path}: the test ids must start right after allx, at {n_all}; the "
                         f"smallest is {lo}")


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

    Raises
    ------
    FileNotFoundError
        A file is missing, or ``root`` does not exist (``NotADirectoryError`` when it is a
        file); other ``OSError`` s of reading pass through.
    ValueError
        A file is damaged (truncated or foreign pickle, wrong content, block sizes that do not
        match, repeated or missing test ids), naming the file.
    IndexError
        A test id or graph node id out of range, naming the file and the id.
    """
    name = str(name).lower()
    if name not in NAMES:
        raise ValueError(f"name: expected one of {NAMES}, got {name!r}")
    f, paths = _files(name, root)
    blocks = {k: _matrix(f[k], paths[k]) for k in ("x", "tx", "allx", "y", "ty", "ally")}
    _check_parts(blocks, paths)
    tx, allx = blocks["tx"], blocks["allx"]
    y, ty, ally = blocks["y"], blocks["ty"], blocks["ally"]
    test_index = f["test.index"]
    _check_test_index(test_index, allx.shape[0], tx.shape[0], name == "citeseer",
                      paths["test.index"])
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
    graph = _graph(f["graph"], n, paths["graph"])
    train = np.zeros(n, bool)
    train[: y.shape[0]] = True
    val = np.zeros(n, bool)
    val[y.shape[0]: y.shape[0] + 500] = True
    test = np.zeros(n, bool)
    test[test_range] = True
    return Planetoid(graph, X, np.argmax(labels, axis=1).astype(np.int64), train, val, test)


def _graph(adjacency: Any, n: int, path: str) -> Graph:
    if not isinstance(adjacency, dict):
        raise ValueError(f"{path}: expected a dict of adjacency lists, got "
                         f"{type(adjacency).__name__}")
    src: list[int] = []
    dst: list[int] = []
    try:
        for node, neighbours in adjacency.items():
            src.extend([int(node)] * len(neighbours))
            dst.extend(int(v) for v in neighbours)
        ei = np.array([src, dst], dtype=np.int64).reshape(2, -1)
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"{path}: expected integer node ids in lists ({e})") from e
    ei = ei[:, ei[0] != ei[1]]  # self-loops: layers add their own
    if ei.size and (int(ei.max()) >= n or int(ei.min()) < 0):
        bad = int(ei.max()) if int(ei.max()) >= n else int(ei.min())
        raise IndexError(f"{path}: node id {bad} is out of range for the {n} feature rows")
    return Graph(ei, n).to_undirected()
