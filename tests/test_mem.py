"""nesy._mem: arrays placed on (or at a given offset past) a 64-byte cache line."""

import numpy as np
import pytest

from nesy._mem import (
    LINE,
    aligned_copy,
    empty_aligned,
    is_aligned,
    matmul_aligned,
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [0, 1, 7, (3, 5), (1000, 64), (2, 3, 4)])
def test_empty_aligned_starts_on_a_line_with_the_shape_and_dtype_asked(shape, dtype):
    a = empty_aligned(shape, dtype)
    want = (shape,) if isinstance(shape, int) else shape
    assert a.shape == want and a.dtype == dtype
    assert a.flags.c_contiguous and a.flags.writeable
    if a.size:
        assert a.ctypes.data % LINE == 0 and is_aligned(a)
        a[...] = 1  # the whole array is writable memory of its own
        assert (a == 1).all()


@pytest.mark.parametrize("offset", [4, 16, 60])
def test_an_offset_places_the_first_element_that_far_past_a_line(offset):
    a = empty_aligned((100, 16), np.float32, offset=offset)
    assert a.ctypes.data % LINE == offset and not is_aligned(a)


@pytest.mark.parametrize("offset", [-4, 64, 6])
def test_offsets_outside_a_line_or_between_elements_are_refused(offset):
    with pytest.raises(ValueError, match="^offset: "):
        empty_aligned(10, np.float32, offset=offset)


def test_aligned_copy_equals_its_source_and_owns_its_memory():
    src = np.random.default_rng(0).standard_normal((50, 33)).astype(np.float32)[:, ::2]
    a = aligned_copy(src)
    assert is_aligned(a) and a.flags.c_contiguous
    np.testing.assert_array_equal(a, src)
    assert not np.shares_memory(a, src)
    b = aligned_copy(src, offset=16)
    assert b.ctypes.data % LINE == 16
    np.testing.assert_array_equal(b, src)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_aligned_is_numpys_product_on_a_line(dtype):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 70)).astype(dtype)
    b = rng.standard_normal((70, 48)).astype(dtype)
    c = matmul_aligned(a, b)
    assert is_aligned(c) and c.dtype == dtype and c.shape == (300, 48)
    np.testing.assert_array_equal(c, a @ b)
    t = matmul_aligned(a[:48].T, b[:48])  # a transposed view: the same as @ as well
    np.testing.assert_array_equal(t, a[:48].T @ b[:48])



def test_matmul_aligned_takes_2d_arrays_only():
    with pytest.raises(ValueError, match="2-D"):
        matmul_aligned(np.ones(3), np.ones((3, 2)))
