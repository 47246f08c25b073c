"""nesy: Rust-accelerated adaptive optimisation and neuro-symbolic learning on NumPy arrays.

Subpackages: :mod:`nesy.optim` (optimizers, schedules, gradient utilities), :mod:`nesy.nn`
(modules, losses, Trainer), :mod:`nesy.rnn`, :mod:`nesy.gnn`, :mod:`nesy.kge`,
:mod:`nesy.distill`, :mod:`nesy.rules`, :mod:`nesy.meta`, :mod:`nesy.datasets`. Kernels live in
the compiled extension :mod:`nesy._core`.
"""

from __future__ import annotations

import operator
import warnings

from nesy import _core

_build = _core.build_info()
__version__: str = str(_build["version"])
if _build["thread_env_problem"]:  # a bad NESY_NUM_THREADS falls back, with a warning
    warnings.warn(str(_build["thread_env_problem"]), RuntimeWarning, stacklevel=2)
del _build


def info() -> dict:
    """Version, SIMD level detected at run time, supported levels, thread count and
    ``thread_cpus``: the CPU each kernel thread is pinned to, or None when they are not pinned
    (pinned when there is one thread per usable CPU, on Linux; ``NESY_PIN_THREADS=0``/``1``
    overrides); ``thread_env_problem``: what was wrong with ``NESY_NUM_THREADS``, or None."""
    return dict(_core.build_info())


def set_num_threads(n: int) -> None:
    """Set the number of threads nesy's kernels use (default: ``NESY_NUM_THREADS`` or all CPUs;
    at most four per CPU, or 64 on small machines)."""
    if isinstance(n, bool):
        raise TypeError(f"n: expected a whole number of threads, got {n!r}")
    try:
        k = operator.index(n)
    except TypeError:
        raise TypeError(f"n: expected a whole number of threads, got {n!r}") from None
    try:
        _core.set_num_threads(k)
    except OverflowError:  # beyond a 64-bit integer: out of range like any count above the cap
        raise ValueError(f"n: the number of threads must be at most four per CPU (or 64), "
                         f"got {k}") from None


def get_num_threads() -> int:
    """Number of threads nesy's kernels use."""
    return int(_core.get_num_threads())


__all__ = ["__version__", "info", "set_num_threads", "get_num_threads"]
