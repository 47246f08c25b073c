"""The meta-learning tables of the README: accuracy on unseen tasks, and speed against PyTorch.

- :func:`sine_table`: 5-shot sine regression (Finn et al. 2017 protocol), MSE on 600 unseen tasks
  with 95 % intervals, for joint training + fine-tuning, Reptile, FOMAML, MAML and Meta-SGD;
- :func:`adaptive_lr_table`: the same tasks with several inner steps, comparing a fixed inner
  learning rate, Meta-SGD's learned rates and the hypergradient inner optimizers SGDHD / AdamHD;
- :func:`digits_table`: N-way K-shot accuracy on held-out digit classes against fine-tuning a
  network pre-trained on all meta-training classes;
- :func:`speed_table`: meta-iterations per second of FOMAML on the sine protocol, nesy against a
  plain PyTorch loop over tasks (and a task-batched PyTorch version), when torch is importable.

Every function returns a Markdown table (:func:`nesy.bench.format_table`) and takes the run
lengths as arguments; ``quick=True`` settings are for smoke tests only.
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, cast

import numpy as np

from nesy.bench import format_table
from nesy.meta.algorithms import meta_gradient
from nesy.meta.functional import BatchedMLP
from nesy.meta.learner import MetaLearner
from nesy.meta.tasks import DigitsTasks, SineTasks, TaskBatch
from nesy.nn import Dense, ReLU, Sequential
from nesy.optim import SGDHD, Adam, AdamHD

__all__ = ["main", "mlp", "sine_table", "adaptive_lr_table", "digits_table", "speed_table",
           "profile_table", "fomaml_step_nesy", "torch_fomaml_loop", "torch_fomaml_batched"]

EVAL_SEED = 12345  # the 600 evaluation tasks: the same for every row
Row = List[str]


def mlp(sizes: Sequence[int], dtype: Any = np.float32, seed: int = 0) -> Sequential:
    """ReLU MLP ``sizes[0] -> ... -> sizes[-1]`` (no activation after the last layer)."""
    layers: list = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(a, b, dtype=dtype, rng=seed + i))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Sequential(*layers)


def _pm(res: Dict[str, Any], key: str = "loss", scale: float = 1.0, digits: int = 3) -> str:
    return f"{scale * res[key]:.{digits}f} ± {scale * res[key + '_ci95']:.{digits}f}"


def _evaluate(learner: MetaLearner, sampler: Any, n_tasks: int, steps: Optional[int],
              ) -> Optional[Dict[str, Any]]:
    """``learner.evaluate`` on the fixed evaluation tasks; None when adaptation diverges."""
    try:
        return learner.evaluate(sampler, n_tasks, steps=steps, rng=EVAL_SEED)
    except FloatingPointError:
        return None


def _fit(model: Sequential, sampler: Any, n_iterations: int, seed: int, **kwargs: Any,
         ) -> Tuple[MetaLearner, float]:
    """Meta-train; the learner gets ``diverged_ = True`` when an adaptation diverged."""
    learner = MetaLearner(model, verbose=0, random_state=seed, n_val_tasks=50, **kwargs)
    t0 = time.perf_counter()
    try:
        learner.fit(sampler, n_iterations)
    except FloatingPointError:
        learner.diverged_ = True  # type: ignore[attr-defined]
    return learner, time.perf_counter() - t0


def _result(learner: MetaLearner, sampler: Any, n_tasks: int, steps: Optional[int],
            key: str = "loss", scale: float = 1.0, digits: int = 3) -> str:
    """``mean ± ci`` on the evaluation tasks, or why there is none."""
    if getattr(learner, "diverged_", False):
        return f"diverged (meta-iteration {learner.n_iter_ + 1})"
    res = _evaluate(learner, sampler, n_tasks, steps)
    return _pm(res, key, scale, digits) if res else "adaptation diverges"


# ---------------------------------------------------------------------------------- sine
SINE_METHODS: List[Tuple[str, Dict[str, Any]]] = [
    ("joint training + fine-tuning", dict(algorithm="fomaml", inner_steps=0)),
    ("Reptile (5 inner steps)", dict(algorithm="reptile", inner_steps=5)),
    ("FOMAML", dict(algorithm="fomaml")),
    ("MAML (second order, exact HVP)", dict(algorithm="maml")),
    ("Meta-SGD (first order)", dict(algorithm="metasgd")),
    ("Meta-SGD (second order)", dict(algorithm="metasgd", first_order=False)),
]


def sine_table(n_iterations: int = 20000, k_shot: int = 5, n_eval: int = 600,
               k_eval: int = 100, seed: int = 0,
               methods: Optional[Sequence[Tuple[str, Dict[str, Any]]]] = None) -> str:
    """Sine regression: query MSE after adaptation on ``n_eval`` unseen tasks.

    Every method meta-trains a fresh 1-40-40-1 ReLU network (float32) for ``n_iterations``
    meta-batches of 25 tasks with ``k_shot`` support and ``k_shot`` query points, inner SGD rate
    0.01, outer Adam 1e-3. Evaluation adapts on ``k_shot`` points of each of the same
    ``n_eval`` tasks and scores ``k_eval`` query points per task. The joint-training baseline
    trains the network on all tasks' points without adaptation (0 inner steps), then fine-tunes
    with the same SGD steps.
    """
    train = SineTasks(k_shot)
    test = SineTasks(k_shot, k_eval)
    rows: List[Row] = []
    for name, kw in methods or SINE_METHODS:
        learner, secs = _fit(mlp([1, 40, 40, 1], seed=seed), train, n_iterations, seed,
                             inner_lr=0.01, **kw)
        steps = max(1, int(kw.get("inner_steps", 1)))
        res = _evaluate(learner, test, n_eval, 0)
        rows.append([name, str(steps), _result(learner, test, n_eval, steps),
                     _result(learner, test, n_eval, 10),
                     f"{res['loss']:.3f}" if res else "-", f"{secs:.0f}"])
    header = ["method", "adaptation steps", f"MSE ({n_eval} tasks, ± 95 %)",
              "MSE after 10 steps", "MSE before adaptation", "meta-train s"]
    return format_table(header, rows)


def _hd(kind: str, lr: float, hypergrad_lr: float) -> Callable[[List[dict]], Any]:
    cls = SGDHD if kind == "sgd" else AdamHD
    return lambda groups: cls(groups, lr=lr, hypergrad_lr=hypergrad_lr)


ADAPTIVE_METHODS: List[Tuple[str, Dict[str, Any]]] = [
    ("fixed inner lr 0.01 (FOMAML)", dict(algorithm="fomaml")),
    ("Meta-SGD learned per-parameter lrs", dict(algorithm="metasgd")),
    ("SGDHD inner (lr0 0.01, hypergrad_lr 1e-4; FOMAML)",
     dict(algorithm="fomaml", inner_optimizer=_hd("sgd", 0.01, 1e-4))),
    ("AdamHD inner (lr0 0.01, hypergrad_lr 1e-4; FOMAML)",
     dict(algorithm="fomaml", inner_optimizer=_hd("adam", 0.01, 1e-4))),
]


def adaptive_lr_table(n_iterations: int = 10000, inner_steps: int = 2, k_shot: int = 5,
                      n_eval: int = 600, k_eval: int = 100, seed: int = 0) -> str:
    """Fixed inner lr vs Meta-SGD vs hypergradient inner optimizers, ``inner_steps`` steps.

    Same protocol as :func:`sine_table`; every row adapts with its own inner rule, for
    ``inner_steps`` steps in meta-training and evaluation, on the same evaluation tasks.
    """
    methods = [(n, dict(kw, inner_steps=inner_steps)) for n, kw in ADAPTIVE_METHODS]
    train, test = SineTasks(k_shot), SineTasks(k_shot, k_eval)
    rows: List[Row] = []
    for name, kw in methods:
        learner, secs = _fit(mlp([1, 40, 40, 1], seed=seed), train, n_iterations, seed,
                             inner_lr=0.01, **kw)
        rows.append([name, _result(learner, test, n_eval, inner_steps), f"{secs:.0f}"])
    header = ["inner learning rate", f"MSE after {inner_steps} steps ({n_eval} tasks, ± 95 %)",
              "meta-train s"]
    return format_table(header, rows)


# ---------------------------------------------------------------------------------- digits
def _pretrain(train: DigitsTasks, hidden: int, epochs: int, seed: int) -> Sequential:
    """A classifier of all meta-training classes (Adam, cross-entropy)."""
    from nesy.nn import CrossEntropyLoss, Trainer

    x = np.concatenate(train.images_)
    y = np.concatenate([np.full(len(a), c) for c, a in enumerate(train.images_)])
    net = mlp([64, hidden, hidden, len(train.images_)], seed=seed)
    Trainer(net, CrossEntropyLoss(), Adam(net.parameters(), lr=1e-3), epochs=epochs,
            batch_size=64, verbose=0).fit(x, y)
    return net


def _with_new_head(body: Sequential, n_way: int, seed: int) -> Sequential:
    """``body`` with its last Dense replaced by a zero-initialised ``n_way``-way head."""
    widths = [cast(Dense, body[i]).out_features for i in range(0, len(body) - 1, 2)]
    hidden = mlp([64, *widths, n_way], seed=seed)
    for dst, src in zip(hidden.parameters()[:-2], body.parameters()[:-2]):
        dst[...] = src
    hidden.parameters()[-2][...] = 0
    return hidden


def digits_table(shots: Sequence[int] = (1, 5), n_way: int = 5, n_iterations: int = 2000,
                 inner_lr: float = 0.1, inner_steps: int = 5, hidden: int = 64,
                 n_eval: int = 600, k_query: int = 15, seed: int = 0,
                 train_rotations: Sequence[int] = (0, 1, 2, 3), pretrain_epochs: int = 20,
                 ) -> str:
    """N-way K-shot accuracy on held-out digits 5-9 after meta-training on digits 0-4.

    Meta-training classes are (digit, rotation) pairs of digits 0-4 (``train_rotations``);
    meta-test episodes use the unrotated digits 5-9, never seen in meta-training. The networks
    are 64-``hidden``-``hidden``-``n_way`` ReLU MLPs (float32), meta-batches of 25 episodes, inner
    SGD with ``inner_lr`` for ``inner_steps`` steps in training and evaluation (Reptile: its
    inner steps on support + query). The baseline pre-trains the same body as one classifier
    of all meta-training classes, then fine-tunes a zero-initialised ``n_way`` head and the body
    on each episode's support set; its fine-tuning rate and steps are the best of a small grid
    on meta-training episodes.
    """
    rows: List[Row] = []
    for k in shots:
        train, test = DigitsTasks.split(n_way, k, k_query, train_rotations=train_rotations)
        body = _pretrain(train, hidden, pretrain_epochs, seed)
        best = None
        for lr in (0.05, 0.2, 0.5):
            for steps in (inner_steps, 20):
                cand = MetaLearner(_with_new_head(body, n_way, seed), inner_lr=lr, verbose=0)
                val = _evaluate(cand, train, 200, steps)
                if val and (best is None or val["accuracy"] > best[0]):
                    best = (val["accuracy"], lr, steps, cand)
        assert best is not None
        rows.append([f"{n_way}-way {k}-shot", f"pre-train + fine-tune (lr {best[1]}, "
                     f"{best[2]} steps)", _result(best[3], test, n_eval, best[2], "accuracy",
                                                  100, 1), "-"])
        scratch = MetaLearner(mlp([64, hidden, hidden, n_way], seed=seed), inner_lr=inner_lr,
                              verbose=0)
        rows.append([f"{n_way}-way {k}-shot", "no meta-training (random init + same "
                     "fine-tuning)", _result(scratch, test, n_eval, inner_steps, "accuracy",
                                             100, 1), "-"])
        for name, alg in (("Reptile", "reptile"), ("FOMAML", "fomaml"), ("Meta-SGD", "metasgd")):
            learner, secs = _fit(mlp([64, hidden, hidden, n_way], seed=seed), train,
                                 n_iterations, seed, algorithm=alg, inner_lr=inner_lr,
                                 inner_steps=inner_steps)
            rows.append([f"{n_way}-way {k}-shot", name,
                         _result(learner, test, n_eval, inner_steps, "accuracy", 100, 1),
                         f"{secs:.0f}"])
    header = ["episodes (held-out digits 5-9)", "method",
              f"accuracy % ({n_eval} episodes, ± 95 %)", "meta-train s"]
    return format_table(header, rows)


# ---------------------------------------------------------------------------------- speed
def fomaml_step_nesy(backend: Any, opt: Any, batch: TaskBatch, inner_lr: float = 0.01,
                     inner_steps: int = 1) -> None:
    """One FOMAML meta-iteration with nesy (batched over tasks) on a drawn batch."""
    step = meta_gradient("fomaml", backend, backend.parameters(), batch, "mse", inner_steps,
                         inner_lr)
    opt.step(step.grads)


def _torch_forward(params: list, x: Any) -> Any:
    import torch

    h = x
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i + 2 < len(params):
            h = torch.relu(h)
    return h


def torch_fomaml_loop(params: list, opt: Any, batch: Tuple[Any, ...], inner_lr: float = 0.01,
                      inner_steps: int = 1) -> None:
    """One FOMAML meta-iteration in plain PyTorch: a Python loop over the tasks, autograd for
    each task's inner steps and query gradient, then Adam on the averaged gradient."""
    import torch

    sx, sy, qx, qy = batch
    n_tasks = sx.shape[0]
    meta = [torch.zeros_like(p) for p in params]
    for t in range(n_tasks):
        fast = [p.detach().clone().requires_grad_(True) for p in params]
        for _ in range(inner_steps):
            loss = torch.mean((_torch_forward(fast, sx[t]) - sy[t]) ** 2)
            grads = torch.autograd.grad(loss, fast)
            fast = [(w - inner_lr * g).detach().requires_grad_(True) for w, g in zip(fast, grads)]
        loss = torch.mean((_torch_forward(fast, qx[t]) - qy[t]) ** 2)
        for m, g in zip(meta, torch.autograd.grad(loss, fast)):
            m += g / n_tasks
    opt.zero_grad()
    for p, m in zip(params, meta):
        p.grad = m
    opt.step()


def torch_fomaml_batched(params: list, opt: Any, batch: Tuple[Any, ...], inner_lr: float = 0.01,
                         inner_steps: int = 1) -> None:
    """The same FOMAML meta-iteration in PyTorch with the tasks batched (bmm over a task
    axis), i.e. nesy's own strategy written with torch autograd."""
    import torch

    sx, sy, qx, qy = batch
    n_tasks = sx.shape[0]

    def fwd(ps: list, x: Any) -> Any:
        h = x
        for i in range(0, len(ps), 2):
            h = torch.baddbmm(ps[i + 1].unsqueeze(1), h, ps[i])
            if i + 2 < len(ps):
                h = torch.relu(h)
        return h

    fast = [p.detach().unsqueeze(0).repeat(n_tasks, *([1] * p.dim())).requires_grad_(True)
            for p in params]
    for _ in range(inner_steps):
        loss = torch.mean((fwd(fast, sx) - sy) ** 2, dim=(1, 2)).sum()
        grads = torch.autograd.grad(loss, fast)
        fast = [(w - inner_lr * g).detach().requires_grad_(True) for w, g in zip(fast, grads)]
    loss = torch.mean((fwd(fast, qx) - qy) ** 2, dim=(1, 2)).sum()
    grads = torch.autograd.grad(loss, fast)
    opt.zero_grad()
    for p, g in zip(params, grads):
        p.grad = g.mean(dim=0)
    opt.step()


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def _rate(fn: Callable[[int], None], n_batches: int, repeat: int) -> float:
    """Best meta-iterations per second of ``fn(i)`` over ``n_batches`` iterations."""
    fn(0)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for i in range(n_batches):
            fn(i)
        best = min(best, time.perf_counter() - t0)
    return n_batches / best


def sine_batches(n: int, k_shot: int = 5, meta_batch_size: int = 25, seed: int = 0,
                 ) -> List[TaskBatch]:
    """``n`` pre-drawn meta-batches of the sine protocol (float32)."""
    rng = np.random.default_rng(seed)
    return [SineTasks(k_shot).sample(meta_batch_size, rng) for _ in range(n)]


def speed_table(n_batches: int = 50, repeat: int = 3, inner_steps: int = 1,
                with_torch: Optional[bool] = None, torch_threads: int = 1) -> str:
    """FOMAML meta-iterations per second on the sine protocol (1-40-40-1, 25 tasks, K=5).

    All implementations run the same pre-drawn batches (task sampling is not timed) and the
    same update: ``inner_steps`` SGD steps of rate 0.01 per task, the query gradient averaged
    over tasks, one Adam step. Rows: nesy (batched over tasks: each step's losses and gradients
    of all tasks are one Rust call,
    :meth:`~nesy.meta.functional.BatchedMLP.loss_grad`), nesy's full ``MetaLearner.fit``
    (sampling and bookkeeping included), plain PyTorch looping over tasks, and PyTorch batched
    over tasks. PyTorch runs with ``torch_threads`` intra-op threads
    (default 1, as the products are tiny; on a busy 2-core machine 2 torch threads made both
    torch rows 2-10x slower through thread contention).
    """
    with_torch = torch_available() if with_torch is None else with_torch
    batches = sine_batches(n_batches)
    backend = BatchedMLP(mlp([1, 40, 40, 1]))
    opt = Adam(backend.parameters(), lr=1e-3)
    rates: Dict[str, float] = {}
    rates["nesy (batched over tasks)"] = _rate(
        lambda i: fomaml_step_nesy(backend, opt, batches[i], inner_steps=inner_steps),
        n_batches, repeat)
    learner = MetaLearner(mlp([1, 40, 40, 1]), "fomaml", inner_steps=inner_steps, verbose=0,
                          eval_every=10**9, n_val_tasks=1, random_state=0)
    sampler = SineTasks(5)
    learner.fit(sampler, 5)
    t0 = time.perf_counter()
    learner.fit(sampler, n_batches * repeat)
    rates["nesy MetaLearner.fit (incl. sampling)"] = n_batches * repeat / (
        time.perf_counter() - t0)
    if with_torch:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(torch_threads)
        tnet = mlp([1, 40, 40, 1])
        params = [torch.tensor(p, requires_grad=True) for p in tnet.parameters()]
        topt = torch.optim.Adam(params, lr=1e-3)
        tb = [tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in
                    (b.support_x, b.support_y, b.query_x, b.query_y)) for b in batches]
        rates["PyTorch, loop over tasks"] = _rate(
            lambda i: torch_fomaml_loop(params, topt, tb[i], inner_steps=inner_steps),
            n_batches, repeat)
        rates["PyTorch, batched over tasks (bmm)"] = _rate(
            lambda i: torch_fomaml_batched(params, topt, tb[i], inner_steps=inner_steps),
            n_batches, repeat)
        torch.set_num_threads(threads)
    ref = rates.get("PyTorch, loop over tasks")
    rows = [[name, f"{r:.0f}", f"{r / ref:.1f}x" if ref else "-"] for name, r in rates.items()]
    return format_table(["FOMAML, sine 5-shot, 25 tasks", "meta-iterations/s",
                         "vs PyTorch loop"], rows)


# ---------------------------------------------------------------------------------- profile
def profile_table(repeat: int = 2000, k_shot: int = 5, meta_batch_size: int = 25) -> str:
    """Where a FOMAML / MAML meta-iteration on the sine protocol spends its time.

    Each part is timed on its own (best of 5 runs of ``repeat`` calls), with the number of
    calls one meta-iteration makes; the matmul rows time the bare :func:`numpy.matmul` calls of
    the forward and backward passes, the "compute" row what they would take at the FLOP rate
    of the largest one. Used to decide whether a fused Rust kernel would pay off.
    """
    import timeit

    from nesy.meta.functional import batched_loss, broadcast_params

    backend = BatchedMLP(mlp([1, 40, 40, 1]))
    theta = backend.parameters()
    batch = SineTasks(k_shot).sample(meta_batch_size, np.random.default_rng(0))
    p = broadcast_params(theta, meta_batch_size)
    out, cache = backend.forward(p, batch.support_x)
    _, g_out, _ = batched_loss("mse", out, batch.support_y)
    assert g_out is not None
    grads = backend.backward(p, cache, g_out)
    opt = Adam([q.copy() for q in theta], lr=1e-3)
    mean_grads = [g.mean(axis=0) for g in grads]
    t_, n_ = meta_batch_size, k_shot
    h1 = np.ones((t_, n_, 40), np.float32)
    w2 = np.ones((t_, 40, 40), np.float32)
    mm = {"forward matmuls (3 layers)": lambda: (np.matmul(batch.support_x, p[0]),
                                                 np.matmul(h1, w2), np.matmul(h1, p[4])),
          "backward matmuls (5)": lambda: (np.matmul(h1.transpose(0, 2, 1), h1),
                                           np.matmul(h1.transpose(0, 2, 1), out),
                                           np.matmul(batch.support_x.transpose(0, 2, 1), h1),
                                           np.matmul(out, p[4].transpose(0, 2, 1)),
                                           np.matmul(h1, w2.transpose(0, 2, 1)))}
    parts: List[Tuple[str, Callable[[], object], float]] = [
        ("FOMAML meta_gradient, 1 inner step (total)",
         lambda: meta_gradient("fomaml", backend, theta, batch, "mse", 1, 0.01), 1),
        ("  forward pass (25 tasks at once)", lambda: backend.forward(p, batch.support_x), 2),
        ("  backward pass", lambda: backend.backward(p, cache, g_out), 2),
        ("  per-task MSE and its gradient", lambda: batched_loss("mse", out, batch.support_y),
         2),
        ("  inner SGD update (6 arrays)", lambda: [a - 0.01 * b for a, b in zip(p, grads)], 1),
        ("  copy theta to 25 tasks", lambda: broadcast_params(theta, meta_batch_size), 1),
        ("  mean of the query gradients", lambda: [g.mean(axis=0) for g in grads], 1),
        ("outer Adam step (one Rust call)", lambda: opt.step(mean_grads), 1),
        ("SineTasks.sample(25)",
         lambda: SineTasks(k_shot).sample(meta_batch_size, np.random.default_rng(0)), 1),
        ("MAML meta_gradient, 1 inner step (total)",
         lambda: meta_gradient("maml", backend, theta, batch, "mse", 1, 0.01), 1),
        ("  exact Hessian-vector product (R-op)",
         lambda: backend.hvp(p, batch.support_x, batch.support_y, "mse", grads), 1),
    ]
    for name, fn in mm.items():
        parts.insert(3 if "forward" in name else 4, ("    " + name, fn, 2))
    timed = [(name, min(timeit.repeat(fn, number=repeat, repeat=5)) / repeat * 1e6, calls)
             for name, fn, calls in parts]
    flops = 2 * t_ * n_ * (40 + 40 * 40 + 40) * 3  # forward + backward (2 products) per pass
    big = min(timeit.repeat(lambda: np.matmul(h1, w2), number=repeat, repeat=5)) / repeat
    rate = 2 * t_ * n_ * 40 * 40 / big
    timed.append((f"  compute of 2 passes at {rate / 1e9:.1f} GFLOP/s", flops / rate * 1e6, 2))
    total = timed[0][1]
    rows = [[name, f"{us:.1f}", f"{calls:g}", f"{100 * us * calls / total:.0f} %"]
            for name, us, calls in timed]
    return format_table(["part", "µs per call", "calls per meta-iteration",
                         "share of FOMAML meta_gradient"], rows)


# ---------------------------------------------------------------------------------- entry point
TABLES: Dict[str, Callable[..., str]] = {"speed": speed_table, "sine": sine_table,
                                         "adaptive": adaptive_lr_table, "digits": digits_table,
                                         "profile": profile_table}
#: Settings of ``quick=True``: seconds instead of minutes; the numbers are not meaningful.
QUICK: Dict[str, Dict[str, Any]] = {
    "speed": dict(n_batches=10, repeat=2),
    "sine": dict(n_iterations=300, n_eval=100),
    "adaptive": dict(n_iterations=300, n_eval=100),
    "digits": dict(shots=(1,), n_iterations=50, n_eval=100, pretrain_epochs=2),
    "profile": dict(repeat=200),
}


def main(tables: Sequence[str] = ("speed", "sine", "adaptive", "digits"), quick: bool = False,
         ) -> None:
    """Print the chosen tables (names of :data:`TABLES`), each under its docstring's summary."""
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ValueError(f"tables: unknown {unknown}; known: {list(TABLES)}")
    for name in tables:
        fn = TABLES[name]
        doc = (fn.__doc__ or "").strip().splitlines()[0]
        t0 = time.perf_counter()
        table = fn(**(QUICK[name] if quick else {}))
        print(f"\n{doc} ({time.perf_counter() - t0:.0f} s)\n\n{table}", flush=True)
