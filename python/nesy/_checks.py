"""Checks of scalar arguments shared by every Python module of nesy.

Each check returns the value in its plain Python type or raises ``TypeError`` (the wrong kind
of value) or ``ValueError`` (the right kind, out of range), with a message that starts with the
argument's name, as every error of nesy does.
"""

from __future__ import annotations

import numbers
import os
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

if TYPE_CHECKING:
    from sklearn.preprocessing import LabelEncoder


def check_int(name: str, value: Any, minimum: Optional[int] = None,
              maximum: Optional[int] = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (either bound optional).

    Python and NumPy integers are accepted; booleans and floats are not, even integral ones
    (as scikit-learn's and PyTorch's integer options).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        if maximum is None:
            want = f">= {minimum}"
        elif minimum is None:
            want = f"<= {maximum}"
        else:
            want = f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name}: expected an integer {want}, got {v}")
    return v


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a ``bool``: Python's or NumPy's booleans, or the integers 0 and 1.

    Anything else (a string such as ``"false"``, None, 2, a float) is a TypeError rather than
    its truth value, so that ``"no"`` read from a configuration file does not mean True.
    """
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    if getattr(getattr(value, "dtype", None), "kind", None) == "b" and not getattr(
        value, "shape", ()
    ):
        return bool(value)
    raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")


def check_verbose(name: str, value: Any) -> int:
    """A verbosity level as an ``int`` >= 0: an integer, or a bool (True is 1, as
    scikit-learn's estimators document ``verbose`` as a bool and Keras-style loops as 0, 1, 2).
    Anything else (``"yes"``, None, 2.7) is a TypeError naming ``name``."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    return check_int(name, value, 0)


_SEED_OBJECTS = (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence,
                 np.random.RandomState)


def check_seed(name: str, value: Any) -> Any:
    """``value`` if :func:`numpy.random.default_rng` takes it as a seed: None, an int >= 0, a
    list or tuple of them, or a NumPy ``Generator`` / ``BitGenerator`` / ``SeedSequence`` /
    ``RandomState``. Else ``TypeError`` (another kind: a float, a string, a bool) or
    ``ValueError`` (a negative int) naming ``name`` (``rng``, ``seed``, ``random_state``):
    NumPy's own messages name no argument, and come only when the seed is used."""
    if value is None or isinstance(value, _SEED_OBJECTS):
        return value
    if isinstance(value, (list, tuple)) and value:
        for i, v in enumerate(value):
            _check_seed_int(f"{name}[{i}]", v)
        return value
    return _check_seed_int(name, value)


def _check_seed_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected None, an int >= 0 or a numpy.random.Generator, got "
                        f"{type(value).__name__} {value!r}")
    return check_int(name, value, 0)


def physical_memory_bytes() -> Optional[int]:
    """Bytes of this machine's physical memory, or ``None`` where the system does not say (no
    ``os.sysconf``, as on Windows). The checks that refuse a huge id before allocating a table
    with a row per id (``Graph``, ``KGEModel.fit``) compare against it."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # no sysconf, or no such name
        return None


def check_float_dtype(value: Any, error: type[Exception] = ValueError) -> np.dtype:
    """The ``dtype`` option as ``np.dtype(float32)`` or ``np.dtype(float64)``.

    Raises ``error`` naming ``dtype`` for anything else, including a name NumPy does not know
    (its own "data type 'foo' not understood" names no argument) and integer or complex dtypes
    (a cast to them would truncate). None means float64, as for ``np.dtype``. Layer
    constructors pass ``TypeError``; estimators keep scikit-learn's convention, a
    ``ValueError`` for an invalid option at ``fit``.
    """
    try:  # None is float64, as np.dtype(None) (and these options before this check)
        dt: Optional[np.dtype] = np.dtype(value)
    except (TypeError, ValueError):
        dt = None
    if dt not in (np.float32, np.float64):
        raise error(f"dtype: expected float32 or float64, got "
                    f"{dt if dt is not None else repr(value)}")
    assert dt is not None
    return dt


def label_encoder(y: Any) -> LabelEncoder:
    """A scikit-learn ``LabelEncoder`` fitted on the class labels ``y``, after scikit-learn's
    ``check_classification_targets``, for every classifier of nesy.

    scikit-learn's messages (continuous targets, NaN or None labels, strings mixed with
    numbers) are re-raised with their type, starting with ``"y: "`` exactly once, whether or
    not they mention y already: a NaN label gives ``"y: Input y contains NaN."``.
    """
    # imported here, not with the module: most modules of nesy never need them
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils.multiclass import check_classification_targets

    try:
        check_classification_targets(y)
        return LabelEncoder().fit(y)
    except (TypeError, ValueError) as e:
        if str(e).startswith("y: "):
            raise
        raise type(e)(f"y: {e}") from e


def check_fits_in_memory(need_bytes: int, what: str, sizes: dict[str, int]) -> None:
    """Refuses, before allocating, ``need_bytes`` beyond the machine's memory (a MemoryError or
    NumPy's "array is too big" would name no argument): ``ValueError`` naming the largest of
    ``sizes``, the arguments ``what`` (e.g. "a weight of shape (4, 5)") was made of."""
    mem = physical_memory_bytes()
    if need_bytes > (mem if mem is not None else np.iinfo(np.intp).max):
        name = max(sizes, key=lambda k: sizes[k])
        raise ValueError(f"{name}: {sizes[name]} makes {what} of {need_bytes / 2**30:.3g} GiB, "
                         "more than this machine's memory")


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the user's line: the first frame
    outside the nesy package, however deep inside nesy the warning is raised (through an
    estimator's fit, a decorator, the distiller...). A fixed ``stacklevel`` pointed into nesy's
    own code when the same check was reached along a longer path."""
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 2  # level 2: warn_user's caller
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
