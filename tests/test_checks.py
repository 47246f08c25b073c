"""The shared argument checks (python/nesy/_checks.py)."""

import numpy as np
import pytest

from nesy._checks import check_int


@pytest.mark.parametrize("value", [3, np.int64(3), np.uint8(3), np.int32(3)])
def test_check_int_accepts_python_and_numpy_integers(value):
    out = check_int("n", value, 0, 10)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value", [True, np.bool_(False), 3.0, np.float32(2), "3", None, [3]])
def test_check_int_refuses_other_kinds_naming_the_argument(value):
    with pytest.raises(TypeError, match=r"^batch_size: expected an integer, got "):
        check_int("batch_size", value, 1)


@pytest.mark.parametrize("value,lo,hi,want", [
    (0, 1, None, r"^n: expected an integer >= 1, got 0$"),
    (11, None, 10, r"^n: expected an integer <= 10, got 11$"),
    (-1, 0, 2**64 - 1, r"^n: expected an integer in \[0, 18446744073709551615\], got -1$"),
    (2**64, 0, 2**64 - 1, r"in \[0, 18446744073709551615\], got 18446744073709551616$"),
])
def test_check_int_range_messages(value, lo, hi, want):
    with pytest.raises(ValueError, match=want):
        check_int("n", value, lo, hi)
    assert check_int("n", 5, None, None) == 5
