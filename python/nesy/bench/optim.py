"""Optimizer step benchmark: nesy vs plain NumPy vs torch.optim (fused and foreach).

Cases follow the foundation issue: one tensor of 10M parameters (memory-bound: compared with the
machine's copy bandwidth measured in the same run) and 1,000 tensors of 1,000 parameters
(per-tensor overhead). float32 throughout.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nesy import optim
from nesy.bench import best_time, format_table, settled_time

#: Bytes moved per parameter by one step: reads + writes of param, grad and state (float32).
BYTES_PER_PARAM = {"adam": 28, "sgd_momentum": 20, "adagrad": 20, "rmsprop": 20}
#: Arrays one step touches per parameter tensor (param, grad, state buffers).
ARRAYS = {"adam": 4, "sgd_momentum": 3, "adagrad": 3, "rmsprop": 3}

CASES = {"1 x 10M": (1, 10_000_000), "1000 x 1000": (1000, 1000)}
QUICK_CASES = {"1 x 1M": (1, 1_000_000), "100 x 1000": (100, 1000)}


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


@dataclass
class Problem:
    params: list[np.ndarray]
    grads: list[np.ndarray]

    @classmethod
    def make(cls, n_tensors: int, size: int, seed: int = 0) -> Problem:
        rng = np.random.default_rng(seed)
        params = [rng.standard_normal(size, dtype=np.float32) for _ in range(n_tensors)]
        grads = [rng.standard_normal(size, dtype=np.float32) * 1e-2 for _ in range(n_tensors)]
        return cls(params, grads)


# ----------------------------------------------------------------------------- nesy
def nesy_step(name: str, pb: Problem) -> Callable[[], None]:
    opt = {
        "adam": lambda: optim.Adam(pb.params, lr=1e-3),
        "sgd_momentum": lambda: optim.SGD(pb.params, lr=1e-3, momentum=0.9),
        "adagrad": lambda: optim.Adagrad(pb.params, lr=1e-2),
        "rmsprop": lambda: optim.RMSprop(pb.params, lr=1e-2),
    }[name]()
    grads = pb.grads
    return lambda: opt.step(grads)


# ----------------------------------------------------------------------------- NumPy
def numpy_step(name: str, pb: Problem, mode: str = "textbook") -> Callable[[], None]:
    """Plain NumPy, in two styles.

    ``"textbook"``: the update written as array expressions, as in the papers and in
    ``tests/reference.py`` (temporaries are allocated). ``"inplace"``: hand-tuned in-place ufuncs
    with one scratch buffer per tensor, about the best NumPy can do.
    """
    ps, gs = pb.params, pb.grads
    st1 = [np.zeros_like(p) for p in ps]
    st2 = [np.zeros_like(p) for p in ps]
    tmp = [np.empty_like(p) for p in ps]
    t = [0]
    b1, b2, eps = 0.9, 0.999, 1e-8

    def adam() -> None:
        t[0] += 1
        bc1, bc2 = 1 - b1 ** t[0], 1 - b2 ** t[0]
        for p, g, m, v in zip(ps, gs, st1, st2):
            m[...] = b1 * m + (1 - b1) * g
            v[...] = b2 * v + (1 - b2) * g * g
            p -= 1e-3 / bc1 * m / (np.sqrt(v) / bc2**0.5 + eps)

    def adam_inplace() -> None:
        t[0] += 1
        step = 1e-3 / (1 - b1 ** t[0])
        bc2 = (1 - b2 ** t[0]) ** 0.5
        for p, g, m, v, s in zip(ps, gs, st1, st2, tmp):
            m *= b1
            np.multiply(g, 1 - b1, out=s)
            m += s
            v *= b2
            np.multiply(g, g, out=s)
            s *= 1 - b2
            v += s
            np.sqrt(v, out=s)
            s /= bc2
            s += eps
            np.divide(m, s, out=s)
            s *= step
            p -= s

    def sgd_momentum() -> None:
        for p, g, b in zip(ps, gs, st1):
            b[...] = 0.9 * b + g
            p -= 1e-3 * b

    def sgd_momentum_inplace() -> None:
        for p, g, b, s in zip(ps, gs, st1, tmp):
            b *= 0.9
            b += g
            np.multiply(b, 1e-3, out=s)
            p -= s

    def adagrad() -> None:
        for p, g, acc in zip(ps, gs, st1):
            acc += g * g
            p -= 1e-2 * g / (np.sqrt(acc) + 1e-10)

    def adagrad_inplace() -> None:
        for p, g, acc, s in zip(ps, gs, st1, tmp):
            np.multiply(g, g, out=s)
            acc += s
            np.sqrt(acc, out=s)
            s += 1e-10
            np.divide(g, s, out=s)
            s *= 1e-2
            p -= s

    def rmsprop() -> None:
        for p, g, sq in zip(ps, gs, st1):
            sq[...] = 0.99 * sq + 0.01 * g * g
            p -= 1e-2 * g / (np.sqrt(sq) + 1e-8)

    def rmsprop_inplace() -> None:
        for p, g, sq, s in zip(ps, gs, st1, tmp):
            sq *= 0.99
            np.multiply(g, g, out=s)
            s *= 0.01
            sq += s
            np.sqrt(sq, out=s)
            s += 1e-8
            np.divide(g, s, out=s)
            s *= 1e-2
            p -= s

    table = {"adam": (adam, adam_inplace), "sgd_momentum": (sgd_momentum, sgd_momentum_inplace),
             "adagrad": (adagrad, adagrad_inplace), "rmsprop": (rmsprop, rmsprop_inplace)}
    return table[name][mode == "inplace"]


# ----------------------------------------------------------------------------- torch
def torch_step(name: str, pb: Problem, mode: str) -> Callable[[], None] | None:
    """torch.optim with ``mode`` "fused" or "foreach"; None where torch has no such mode."""
    import torch

    import nesy

    torch.set_num_threads(nesy.get_num_threads())  # same thread count on both sides
    ts = [torch.from_numpy(p.copy()) for p in pb.params]
    for t, g in zip(ts, pb.grads):
        t.grad = torch.from_numpy(g)
    kw = {"fused": True} if mode == "fused" else {"foreach": True}
    try:
        opt = {
            "adam": lambda: torch.optim.Adam(ts, lr=1e-3, **kw),
            "sgd_momentum": lambda: torch.optim.SGD(ts, lr=1e-3, momentum=0.9, **kw),
            "adagrad": lambda: torch.optim.Adagrad(ts, lr=1e-2, **kw),
            "rmsprop": lambda: torch.optim.RMSprop(ts, lr=1e-2, **kw),
        }[name]()
        opt.step()
    except (RuntimeError, TypeError, ValueError):
        return None  # e.g. no fused CPU kernel for this optimizer in this torch version

    def step() -> None:
        with torch.no_grad():
            opt.step()

    return step


# ----------------------------------------------------------------------------- limits
def memory_limits(n: int = 10_000_000, arrays: int = 4) -> dict[str, float]:
    """Streaming bandwidth in GB/s (bytes read + written) measured now, in this process.

    The optimizer steps read and write their arrays in place, so the relevant limit is an
    in-place pass over a working set of the same size: ``x *= 1`` over ``arrays`` float32 arrays
    of ``n`` elements (the size of a 10M-parameter Adam step), by nesy on all threads and by
    torch's ``mul_`` when importable; plus NumPy's single-threaded copy for reference.
    """
    from nesy import _core

    xs = [np.ones(n, dtype=np.float32) for _ in range(arrays)]
    moved = 8 * n * arrays
    out = {f"in-place x*=1 over {arrays} x {n // 10**6}M float32, nesy, all threads":
           moved / best_time(lambda: _core.scale(xs, 1.0), 10) / 1e9}
    if torch_available():
        import torch

        ts = [torch.from_numpy(x) for x in xs]

        def torch_mul() -> None:
            for t in ts:
                t.mul_(1.0)

        out[f"same, torch mul_ ({torch.get_num_threads()} threads)"] = (
            moved / best_time(torch_mul, 10) / 1e9
        )
    b = np.empty_like(xs[0])
    out["numpy copy, 1 thread"] = 8 * n / best_time(lambda: np.copyto(b, xs[0]), 10) / 1e9
    return out


def stream_limit(n_tensors: int, size: int, n_arrays: int, repeat: int = 10,
                 timer: Callable[[Callable[[], object], int], float] = best_time) -> float:
    """GB/s (read + write) of the simplest in-place pass, ``x *= 1``, by nesy on all threads,
    over as many bytes as a step touches (``n_arrays`` arrays per tensor), held in ``n_arrays``
    contiguous arrays so that no per-tensor cost enters: the memory limit of that case on this
    machine, measured now."""
    from nesy import _core

    xs = [np.ones(size * n_tensors, dtype=np.float32) for _ in range(n_arrays)]
    return 8 * size * n_tensors * n_arrays / timer(lambda: _core.scale(xs, 1.0), repeat) / 1e9


def run(cases: dict[str, tuple[int, int]] | None = None, optimizers: list[str] | None = None,
        repeat: int = 20, with_torch: bool | None = None,
        pause: float = 0.3) -> list[dict[str, object]]:
    """Time every (optimizer, case) for every implementation; returns one dict per row.

    Every column is timed with :func:`~nesy.bench.settled_time` (``pause`` seconds, then warm-up
    calls): the limit of a row used to be measured right after the previous row's torch
    columns, while torch's worker threads were still spinning, and came out 25-50 % low."""
    cases = CASES if cases is None else cases
    optimizers = list(BYTES_PER_PARAM) if optimizers is None else optimizers
    with_torch = torch_available() if with_torch is None else with_torch

    def timed(fn: Callable[[], object], n: int) -> float:
        return settled_time(fn, n, pause=pause)

    rows = []
    for name in optimizers:
        for label, (k, n) in cases.items():
            pb = Problem.make(k, n)
            row: dict[str, object] = {"optimizer": name, "case": label, "params": k * n}
            row["limit GB/s"] = stream_limit(k, n, ARRAYS[name], repeat, timed)
            row["nesy"] = timed(nesy_step(name, pb), repeat)
            row["numpy"] = timed(numpy_step(name, pb), max(3, repeat // 4))
            row["numpy inplace"] = timed(numpy_step(name, pb, "inplace"), max(3, repeat // 4))
            if with_torch:
                for mode in ("fused", "foreach"):
                    fn = torch_step(name, pb, mode)
                    row[f"torch {mode}"] = timed(fn, repeat) if fn else None
            rows.append(row)
    return rows


def table(rows: list[dict[str, object]]) -> str:
    """Times in ms, speed-ups of nesy, nesy's effective bandwidth and its % of the limit."""
    impls = [c for c in ("nesy", "torch fused", "torch foreach", "numpy", "numpy inplace")
             if c in rows[0]]
    header = ["optimizer", "case", *[f"{c} ms" for c in impls], "nesy GB/s", "limit GB/s",
              "% of limit", *[f"x vs {c}" for c in impls[1:]]]
    out = []
    for r in rows:
        t = {c: r[c] for c in impls}
        nesy_t = float(t["nesy"])  # type: ignore[arg-type]
        gbs = BYTES_PER_PARAM[str(r["optimizer"])] * int(r["params"]) / nesy_t / 1e9  # type: ignore[call-overload]
        cells = [f"{float(v) * 1e3:.2f}" if v is not None else "n/a" for v in t.values()]  # type: ignore[arg-type]
        ratios = [f"{float(t[c]) / nesy_t:.1f}" if t[c] is not None else "n/a"  # type: ignore[arg-type]
                  for c in impls[1:]]
        limit = float(r["limit GB/s"])  # type: ignore[arg-type]
        out.append([str(r["optimizer"]), str(r["case"]), *cells, f"{gbs:.1f}", f"{limit:.1f}",
                    f"{100 * gbs / limit:.0f}", *ratios])
    return format_table(header, out)
