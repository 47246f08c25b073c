"""nesy: Rust-accelerated adaptive optimisation and neuro-symbolic learning on NumPy arrays.

Subpackages: :mod:`nesy.optim` (optimizers, schedules, gradient utilities), :mod:`nesy.nn`
(modules, losses, Trainer), :mod:`nesy.rnn`, :mod:`nesy.gnn`, :mod:`nesy.kge`,
:mod:`nesy.distill`, :mod:`nesy.rules`, :mod:`nesy.meta`, :mod:`nesy.datasets`. Kernels live in
the compiled extension :mod:`nesy._core`.
"""

from __future__ import annotations

import operator

from nesy import _core

__version__: str = _core.build_info()["version"]


def info() -> dict:
    """Version, SIMD level detected at run time, supported levels, thread count and
    ``thread_cpus``: the CPU each kernel thread is pinned to, or None when they are not pinned
    (pinned when there is one thread per usable CPU, on Linux; ``NESY_PIN_THREADS=0``/``1``
    overrides)."""
    return dict(_core.build_info())


def set_num_threads(n: int) -> None:
    """Set the number of threads nesy's kernels use (default: ``NESY_NUM_THREADS`` or all CPUs;
    at most four per CPU, or 64 on small machines)."""
    try:
        k = operator.index(n)
    except TypeError:
        raise TypeError(f"n: expected a whole number of threads, got {n!r}") from None
    _core.set_num_threads(k)


def get_num_threads() -> int:
    """Number of threads nesy's kernels use."""
    return int(_core.get_num_threads())


__all__ = ["__version__", "info", "set_num_threads", "get_num_threads"]
