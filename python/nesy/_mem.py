"""Memory placement helpers of the Python layer (the Rust side's are in ``rust/core/src/mem.rs``).

NumPy puts an array wherever the C allocator does: anywhere on 16 bytes, and for large arrays
that glibc maps fresh (``mmap`` chunks, the usual case for arrays of a few MB until the process
has freed one that large) 16 bytes past a 64-byte cache line. A kernel that loads whole rows
with 64-byte vector loads then splits every load across two lines when the rows are multiples
of 64 bytes: a plain gather of rows of 256 float32 features ran 1.2x slower from such an array
than from one on a line (Zen 4). nesy's float32 aggregation at the AVX-512 level reads such rows
with whole-line loads instead (rust/core gnn/aggregate.rs, ``sum_rows_shifted``); other
kernels, dtypes and SIMD levels do not. torch places tensors on 64-byte boundaries, and so do
nesy's Rust kernels for the arrays they return;
:func:`empty_aligned` does it for arrays made in Python.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The cache line of the x86-64 and ARM64 machines nesy runs on.
LINE = 64


def empty_aligned(shape: int | tuple[int, ...], dtype: Any = np.float64,
                  offset: int = 0) -> np.ndarray:
    """An uninitialised C-contiguous array whose first element starts ``offset`` bytes past a
    64-byte boundary (``offset=0``: on a cache line). The array is a view of a slightly larger
    buffer, which it keeps alive.
    """
    dt = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not 0 <= offset < LINE or offset % dt.itemsize:
        raise ValueError(f"offset: expected a multiple of {dt.itemsize} in [0, {LINE}), "
                         f"got {offset}")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    buf = np.empty(nbytes + 2 * LINE, np.uint8)
    start = (-buf.ctypes.data) % LINE + offset
    return buf[start:start + nbytes].view(dt).reshape(shape)


def aligned_copy(a: np.ndarray, offset: int = 0) -> np.ndarray:
    """A C-contiguous copy of ``a`` placed as :func:`empty_aligned` places arrays."""
    out = empty_aligned(a.shape, a.dtype, offset)
    np.copyto(out, a)
    return out


def is_aligned(a: np.ndarray) -> bool:
    """Whether ``a``'s first element starts on a 64-byte boundary."""
    return a.ctypes.data % LINE == 0


def matmul_aligned(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D ``a`` and ``b``, written into a new array on a cache line (NumPy's
    ``@`` would put a large result 16 bytes past one): for products that a gather kernel reads
    next, such as ``x W`` before a graph aggregation.
    """
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul_aligned: expected 2-D arrays, got shapes {a.shape} and "
                         f"{b.shape}")
    out = empty_aligned((a.shape[0], b.shape[1]), np.result_type(a, b))
    return np.matmul(a, b, out=out)

