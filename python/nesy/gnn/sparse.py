"""Sparse node features (bag-of-words rows such as Planetoid's): CSR rows whose products with
dense weights run on the aggregation kernel, since ``X @ W`` is a weighted sum of the rows of
``W`` picked by each row's non-zero columns (a rectangular CSR), and ``X^T @ G`` is the same
over the transposed structure. Dropout acts on the stored values only, which has the
distribution of dense dropout (a zero stays zero either way).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from nesy import _core
from nesy._checks import check_int
from nesy._mem import matmul_aligned

__all__ = ["SparseFeatures"]


class SparseFeatures:
    """A ``(n_rows, n_cols)`` float matrix in CSR form, for the first layer of a graph model.

    Parameters
    ----------
    indptr : ndarray of int, shape (n_rows + 1,)
    indices : ndarray of int, shape (nnz,)
        Column of every stored value.
    data : ndarray of float32 or float64, shape (nnz,)
    shape : pair of int (n_rows, n_cols)
        A tuple, list or 1-d array of two integers (NumPy integers too).

    Notes
    -----
    Build one with :meth:`from_dense` or :meth:`from_scipy`. Layers accept it wherever they
    accept ``x``; the transpose used for ``X^T @ G`` is built once and shared by the copies
    :meth:`with_data` makes (e.g. dropout masks).
    """

    def __init__(self, indptr: Any, indices: Any, data: Any, shape: tuple[int, int],
                 _transpose: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None
                 ) -> None:
        self.indptr = _index_array(indptr, "indptr")
        self.indices = _index_array(indices, "indices")
        self.data = np.ascontiguousarray(data)
        # any pair: a tuple, a list, a NumPy array (np.array([5, 4]), a SciPy matrix's shape)
        pair = (shape.ndim == 1 and len(shape) == 2 if isinstance(shape, np.ndarray)
                else isinstance(shape, Sequence) and not isinstance(shape, (str, bytes))
                and len(shape) == 2)
        if not pair:
            raise ValueError(f"shape: expected (n_rows, n_cols), got {shape!r}")
        self.shape = (check_int("shape[0]", shape[0], 0), check_int("shape[1]", shape[1], 0))
        if self.data.dtype not in (np.float32, np.float64):
            raise TypeError(f"data: expected float32 or float64, got {self.data.dtype}")
        nnz = self.indices.size
        if self.indptr.shape != (self.shape[0] + 1,) or self.data.shape != (nnz,):
            raise ValueError(f"indptr, data: expected shapes ({self.shape[0] + 1},) and "
                             f"({nnz},), got {self.indptr.shape} and {self.data.shape}")
        if nnz and (self.indices.min() < 0 or self.indices.max() >= self.shape[1]):
            raise IndexError(f"indices: a column is out of range for {self.shape[1]} columns")
        if self.indptr[0] != 0 or self.indptr[-1] != nnz or np.any(np.diff(self.indptr) < 0):
            raise ValueError("indptr: expected non-decreasing offsets from 0 to nnz")
        self._transpose = _transpose

    @classmethod
    def from_dense(cls, x: Any, dtype: Any = None) -> SparseFeatures:
        """The non-zero entries of a dense ``(n_rows, n_cols)`` array."""
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"x: expected a matrix, got shape {x.shape}")
        rows, cols = np.nonzero(x)
        indptr = np.zeros(x.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=x.shape[0]), out=indptr[1:])
        data = x[rows, cols].astype(dtype or (x.dtype if x.dtype == np.float32 else np.float64))
        return cls(indptr, cols, data, x.shape)

    @classmethod
    def from_scipy(cls, matrix: Any, dtype: Any = np.float32) -> SparseFeatures:
        """From any SciPy sparse matrix (converted to CSR, duplicates summed)."""
        m = matrix.tocsr()
        if m.dtype.kind not in "biuf":  # a complex value would lose its imaginary part
            raise TypeError(f"matrix: expected real values, got dtype {m.dtype}")
        if not m.has_canonical_format:
            # `tocsr` returns a CSR input itself, which `sum_duplicates` would sort and merge
            # in place: the caller's matrix must not change.
            m = m.copy() if m is matrix else m
            m.sum_duplicates()
        return cls(m.indptr, m.indices, np.asarray(m.data, dtype=dtype), m.shape)

    # ------------------------------------------------------------------ properties
    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    @property
    def ndim(self) -> int:
        return 2

    def _t(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._transpose is None:
            perm = np.argsort(self.indices, kind="stable").astype(np.int64)
            rows = np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.indptr))
            t_indptr = np.zeros(self.shape[1] + 1, np.int64)
            np.cumsum(np.bincount(self.indices, minlength=self.shape[1]), out=t_indptr[1:])
            self._transpose = (t_indptr, np.ascontiguousarray(rows[perm]), perm)
        return self._transpose

    # ------------------------------------------------------------------ operations
    def with_data(self, data: np.ndarray) -> SparseFeatures:
        """Same structure, new values (shares the cached transpose)."""
        return SparseFeatures(self.indptr, self.indices, data, self.shape, self._t())

    def astype(self, dtype: Any) -> SparseFeatures:
        return self if self.dtype == dtype else self.with_data(self.data.astype(dtype))

    def to_dense(self) -> np.ndarray:
        out = np.zeros(self.shape, self.dtype)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        np.add.at(out, (rows, self.indices), self.data)
        return out

    def all_finite(self) -> bool:
        return bool(_core.all_finite([self.data]))

    def row_normalize(self) -> SparseFeatures:
        """Every row divided by its L1 norm (zero rows stay zero)."""
        counts = np.diff(self.indptr)
        rows = np.repeat(np.arange(self.shape[0]), counts)
        s = np.bincount(rows, weights=np.abs(self.data), minlength=self.shape[0])
        s = np.where(s > 0, s, 1).astype(self.dtype)
        return self.with_data(self.data / np.repeat(s, counts))

    def dropout(self, p: float, rng: np.random.Generator) -> SparseFeatures:
        """Inverted dropout on the stored values."""
        if p == 0.0:
            return self
        keep = rng.random(self.nnz, dtype=np.float32) >= p
        scale = self.dtype.type(1.0 / (1.0 - p))
        return self.with_data(np.where(keep, self.data * scale, self.dtype.type(0)))

    def matmul(self, w: np.ndarray) -> np.ndarray:
        """``X @ W`` for ``W`` of shape ``(n_cols, k)``: ``(n_rows, k)``."""
        w = np.ascontiguousarray(w, dtype=self.dtype)
        return _core.gnn_aggregate(self.indptr, self.indices, w, "sum", self.data)[0]

    def t_matmul(self, g: np.ndarray) -> np.ndarray:
        """``X^T @ G`` for ``G`` of shape ``(n_rows, k)``: ``(n_cols, k)``."""
        t_indptr, t_indices, perm = self._t()
        g = np.ascontiguousarray(g, dtype=self.dtype)
        w = np.ascontiguousarray(self.data[perm])
        return _core.gnn_aggregate(t_indptr, t_indices, g, "sum", w)[0]

    def __repr__(self) -> str:
        return f"SparseFeatures(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"


def _index_array(a: Any, name: str) -> np.ndarray:
    """``a`` as int64, refusing floats (0.7 would silently become 0); an empty list, which
    NumPy makes float64, is an empty index array."""
    a = np.asarray(a)
    if a.size == 0 and a.dtype.kind == "f":
        a = a.astype(np.int64)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name}: expected an integer array, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.int64)


def matmul(x: Any, w: np.ndarray) -> np.ndarray:
    """``x @ w`` for a dense array or :class:`SparseFeatures`, on a cache line (the aggregation
    kernels gather rows of whole lines faster from there; see :mod:`nesy._mem`)."""
    return x.matmul(w) if isinstance(x, SparseFeatures) else matmul_aligned(x, w)


def t_matmul(x: Any, g: np.ndarray) -> np.ndarray:
    """``x.T @ g`` for a dense array or :class:`SparseFeatures`."""
    return x.t_matmul(g) if isinstance(x, SparseFeatures) else x.T @ g


def densify(x: Any) -> Any:
    return x.to_dense() if isinstance(x, SparseFeatures) else x
