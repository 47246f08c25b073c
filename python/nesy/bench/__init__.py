"""Side-by-side benchmarks of nesy against NumPy and PyTorch (when importable).

One module per domain (``optim``, ...), shared by ``nesy bench <domain>`` and the
pytest-benchmark suites in ``benches/``. Timings are best-of-N wall-clock times of one call,
taken in one process on the same machine; only ratios between columns are meaningful.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def machine() -> str:
    """One line naming what a bench ran on: the CPU (with its family and model numbers, which
    tell e.g. AMD's Zen 3 from Zen 4 where the name does not), nesy's SIMD level and threads,
    and the NumPy and torch versions (torch's read from its metadata, without importing it)."""
    import os
    import platform
    from importlib import metadata

    import numpy as np

    import nesy

    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:  # not Linux
        pass
    cpu = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        cpu += f" (family {fields['cpu family']}, model {fields['model']})"
    info = nesy.info()
    parts = [f"{cpu}, {os.cpu_count()} CPUs",
             f"nesy {info['version']}, SIMD level {info['simd']}, {info['threads']} threads",
             f"NumPy {np.__version__}"]
    try:
        parts.append(f"torch {metadata.version('torch')}")
    except metadata.PackageNotFoundError:
        pass
    return "machine: " + "; ".join(parts)


def best_time(fn: Callable[[], object], repeat: int = 20, warmup: int = 2) -> float:
    """Best wall-clock seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def settled_time(fn: Callable[[], object], repeat: int = 10, warmup: int = 5,
                 pause: float = 0.3, warmup_seconds: float = 0.1) -> float:
    """:func:`best_time` in steady state, for side-by-side columns: first a pause, so that the
    previous library's worker threads have stopped spinning (OpenBLAS threads busy-wait for
    ~0.1 s after a call, OpenMP's for less, and they slowed the next block of calls by up to
    1.8x), then warm-up calls, at least ``warmup`` of them (two left a block of training calls
    still paying for fresh allocations) and for at least ``warmup_seconds``: after an idle
    spell this machine's cores take ~50-80 ms of load to reach full speed (an Adam step on 10M
    parameters went 6.3 -> 4.0 ms over its first 15 calls after a 0.3 s pause), and a count of
    calls alone warmed up the fastest column the least."""
    time.sleep(pause)
    start = time.perf_counter()
    calls = 0
    while calls < warmup or time.perf_counter() - start < warmup_seconds:
        fn()
        calls += 1
    return best_time(fn, repeat, 0)


def interleaved_times(fns: dict[str, Callable[[], object]], repeat: int = 10, rounds: int = 3
                      ) -> dict[str, float]:
    """Best seconds of every function in ``fns`` over ``rounds`` rounds, each round timing every
    function in turn with :func:`settled_time`: the implementations of one table then meet the
    same minutes of a machine whose speed drifts (+-20-30 % from minute to minute on the shared
    virtual machines nesy is measured on), and their ratios hold better than those of one block
    of calls each."""
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], settled_time(fn, repeat))
    return best


def interleaved_medians(fns: dict[str, Callable[[], object]], calls: int = 200,
                        rounds: int = 3) -> dict[str, float]:
    """Median seconds of one call of every function in ``fns``, over ``rounds`` interleaved
    rounds of ``calls`` timed calls each (every block after the pause and warm-up of
    :func:`settled_time`). For calls of a few microseconds, where what a user waits for
    includes the occasional slow hand-off to a worker thread that a best-of time leaves out."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            settled_time(fn, 1)
            for _ in range(calls):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {name: sorted(ts)[len(ts) // 2] for name, ts in times.items()}


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (readable in a terminal and pasteable into the README)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])
