"""The array-access checks every binding shares (rust/py/src/arrays.rs): contiguity, writeable
outputs and overlap, with messages naming the argument (and the position in a list argument)."""

import numpy as np
import pytest

from nesy import _core


def _graph():
    indptr = np.array([0, 1, 2, 3], np.int64)
    indices = np.array([1, 2, 0], np.int64)
    return indptr, indices


def test_a_single_array_argument_is_named_without_an_index():
    indptr, indices = _graph()
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"^out: must be C-contiguous"):
        _core.gnn_aggregate(indptr, indices, x, "sum", None, out=np.ones((4, 3), np.float32).T)
    ro = np.ones((3, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"^out: is read-only"):
        _core.gnn_aggregate(indptr, indices, x, "sum", None, out=ro)
    with pytest.raises(ValueError, match=r"^x and out share memory|^out and x share memory"):
        _core.gnn_aggregate(indptr, indices, x, "sum", None, out=x)


def test_an_element_of_a_list_argument_is_named_with_its_position():
    a, ro = np.ones(8, np.float32), np.ones(8, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"^xs\[1\]: is read-only"):
        _core.scale([a, ro], 2.0)
    with pytest.raises(ValueError, match=r"^xs\[0\] and xs\[1\] share memory"):
        _core.scale([a, a[2:]], 2.0)
    assert (a == 1).all()  # nothing written before the checks failed


def test_a_non_contiguous_parameter_of_the_meta_kernel_is_named_with_its_position():
    W1, b1 = np.zeros((2, 3, 4), np.float32), np.zeros((2, 4), np.float32)
    W2, b2 = np.zeros((2, 4, 1), np.float32), np.zeros((2, 1), np.float32)
    x, y = np.zeros((2, 5, 3), np.float32), np.zeros((2, 5, 1), np.float32)
    W2f = np.zeros((2, 4, 2), np.float32)[:, :, :1]  # (2, 4, 1), not C-contiguous
    assert not W2f.flags.c_contiguous
    with pytest.raises(ValueError, match=r"^params\[2\]: must be C-contiguous"):
        _core.meta_mlp_loss_grad([W1, b1, W2f, b2], x, y, ["relu", "identity"])
    _core.meta_mlp_loss_grad([W1, b1, W2, b2], x, y, ["relu", "identity"])
