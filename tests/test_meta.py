"""Tests of nesy.meta: meta-updates against hand-computed NumPy references, second-order terms
against finite differences, the batched backend against the per-task nesy.nn path, task
samplers, a short seeded sine run, persistence and bad input."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
from test_nn import numerical_grad

from nesy.meta import (
    BatchedMLP,
    DigitsTasks,
    MetaLearner,
    ModuleLoop,
    SineTasks,
    TaskBatch,
    make_backend,
    meta_gradient,
)
from nesy.meta.algorithms import InnerOptimizer, inner_loop
from nesy.meta.functional import batched_loss, broadcast_params
from nesy.nn import GELU, CrossEntropyLoss, Dense, Dropout, MSELoss, ReLU, Sequential, Tanh
from nesy.optim import SGD, SGDHD, AdamHD

DTYPES = [np.float32, np.float64]


# ---------------------------------------------------------------------- helpers
class FixedTasks:
    """A sampler that always returns the same batch (for exact one-step references)."""

    loss = "mse"

    def __init__(self, batch: TaskBatch) -> None:
        self.batch = batch

    def sample(self, n_tasks, rng):
        b = self.batch
        reps = -(-n_tasks // b.n_tasks)
        take = lambda a: np.concatenate([a] * reps)[:n_tasks]  # noqa: E731
        return TaskBatch(take(b.support_x), take(b.support_y), take(b.query_x), take(b.query_y))


def linear_batch(dtype, n_tasks=3, k=4, q=5, d=3, seed=0) -> TaskBatch:
    rng = np.random.default_rng(seed)
    mk = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    return TaskBatch(mk(n_tasks, k, d), mk(n_tasks, k, 1), mk(n_tasks, q, d), mk(n_tasks, q, 1))


def lin_grad(w, b, x, y):
    """Gradient of mean((x w + b - y)^2) for one task: the hand-computed reference."""
    r = x @ w + b - y
    n = x.shape[0]
    return 2.0 / n * x.T @ r, 2.0 / n * r.sum(axis=0)


def one_meta_step(model, algorithm, batch, alpha, steps, outer_lr):
    """One meta-iteration on ``batch`` with outer SGD; returns the learner."""
    learner = MetaLearner(model, algorithm, inner_lr=alpha, inner_steps=steps,
                          outer_optimizer=lambda ps: SGD(ps, lr=outer_lr),
                          meta_batch_size=batch.n_tasks, verbose=0)
    return learner.fit(FixedTasks(batch), 1)


def assert_linear(model, w, b, dtype):
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert model[0].weight.dtype == dtype
    np.testing.assert_allclose(model[0].weight, w, rtol=tol, atol=tol)
    np.testing.assert_allclose(model[0].bias, b, rtol=tol, atol=tol)


def lin_sgd(w, b, x, y, alpha, steps):
    """``steps`` hand-computed SGD steps of the linear model on one task (float64)."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    for _ in range(steps):
        dw, db = lin_grad(w, b, x, y)
        w, b = w - alpha * dw, b - alpha * db
    return w, b


def mlp(sizes, act=ReLU, dtype=np.float64, seed=0) -> Sequential:
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(a, b, dtype=dtype, rng=seed + i))
        if i < len(sizes) - 2:
            layers.append(act())
    return Sequential(*layers)


def perturbed(params, rng, scale=0.3):
    return [p + (scale * rng.standard_normal(p.shape)).astype(p.dtype) for p in params]


def meta_loss_fn(backend, batch, loss, steps, lr):
    """Mean query loss after ``steps`` SGD steps, as a function of (theta, per-param lrs)."""

    def f(theta, lrs):
        params = broadcast_params(theta, batch.n_tasks)
        phi = inner_loop(backend, params, batch.support_x, batch.support_y, loss, steps,
                         lrs if lrs is not None else lr)[0]
        losses, _ = backend.loss_grad(phi, batch.query_x, batch.query_y, loss, need_grad=False)
        return float(np.mean(losses.astype(np.float64)))

    return f


def fd_grad(f, arrays, eps=1e-6):
    """Central differences of ``f()`` with respect to every entry of each array."""
    return [numerical_grad(f, a, eps) for a in arrays]


def assert_close64(analytic, numeric, rtol, atol):
    for a, n in zip(analytic, numeric):
        np.testing.assert_allclose(np.asarray(a, np.float64), n, rtol=rtol, atol=atol)


def sine_batch(n_tasks, k, q, seed, dtype=np.float64):
    return SineTasks(k, q, dtype=dtype).sample(n_tasks, np.random.default_rng(seed))


# ---------------------------------------------------------------------- one-step references
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [1, 3])
def test_fomaml_update_matches_hand_computed(dtype, steps):
    batch = linear_batch(dtype)
    model = Sequential(Dense(3, 1, dtype=dtype, rng=0))
    model[0].bias[...] = np.array([0.3], dtype)
    w0, b0 = model[0].weight.astype(np.float64), model[0].bias.astype(np.float64)
    alpha, beta = 0.05, 0.1
    gw, gb = np.zeros_like(w0), np.zeros_like(b0)
    for t in range(batch.n_tasks):
        w, b = lin_sgd(w0, b0, batch.support_x[t], batch.support_y[t], alpha, steps)
        dw, db = lin_grad(w, b, batch.query_x[t].astype(np.float64),
                          batch.query_y[t].astype(np.float64))
        gw += dw / batch.n_tasks
        gb += db / batch.n_tasks
    one_meta_step(model, "fomaml", batch, alpha, steps, beta)
    assert_linear(model, w0 - beta * gw, b0 - beta * gb, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reptile_update_matches_hand_computed(dtype):
    batch = linear_batch(dtype, seed=1)
    model = Sequential(Dense(3, 1, dtype=dtype, rng=1))
    w0, b0 = model[0].weight.astype(np.float64), model[0].bias.astype(np.float64)
    alpha, eps, steps = 0.05, 0.5, 4
    mean_w, mean_b = np.zeros_like(w0), np.zeros_like(b0)
    for t in range(batch.n_tasks):
        x = np.concatenate([batch.support_x[t], batch.query_x[t]])
        y = np.concatenate([batch.support_y[t], batch.query_y[t]])
        w, b = lin_sgd(w0, b0, x, y, alpha, steps)
        mean_w += w / batch.n_tasks
        mean_b += b / batch.n_tasks
    one_meta_step(model, "reptile", batch, alpha, steps, eps)
    assert_linear(model, w0 + eps * (mean_w - w0), b0 + eps * (mean_b - b0), dtype)


def test_metasgd_one_step_update_matches_hand_computed():
    batch = linear_batch(np.float64, seed=2)
    model = Sequential(Dense(3, 1, dtype=np.float64, rng=2))
    w0, b0 = model[0].weight.copy(), model[0].bias.copy()
    alpha, beta = 0.05, 0.1
    gw, gb, gaw, gab = 0, 0, 0, 0
    for t in range(batch.n_tasks):
        dw, db = lin_grad(w0, b0, batch.support_x[t], batch.support_y[t])
        qw, qb = lin_grad(w0 - alpha * dw, b0 - alpha * db, batch.query_x[t], batch.query_y[t])
        gw, gb = gw + qw / 3, gb + qb / 3
        gaw, gab = gaw - dw * qw / 3, gab - db * qb / 3
    learner = one_meta_step(model, "metasgd", batch, alpha, 1, beta)
    assert_linear(model, w0 - beta * gw, b0 - beta * gb, np.float64)
    np.testing.assert_allclose(learner.inner_lrs_[0], alpha - beta * gaw, rtol=1e-12)
    np.testing.assert_allclose(learner.inner_lrs_[1], alpha - beta * gab, rtol=1e-12)


# ---------------------------------------------------------------------- second-order terms
@pytest.mark.parametrize("act, loss", [(ReLU, "mse"), (Tanh, "mse"), (Tanh, "cross_entropy"),
                                       (ReLU, "cross_entropy")])
def test_hvp_matches_finite_differences_float64(act, loss):
    n_out = 1 if loss == "mse" else 4
    model = mlp([3, 7, 6, n_out], act)
    backend = BatchedMLP(model)
    rng = np.random.default_rng(0)
    params = perturbed(broadcast_params(backend.parameters(), 3), rng)
    x = rng.standard_normal((3, 8, 3))
    y = rng.standard_normal((3, 8, 1)) if loss == "mse" else rng.integers(0, n_out, (3, 8))
    v = [rng.standard_normal(p.shape) for p in params]
    g, hv = backend.hvp(params, x, y, loss, v)
    _, g_ref = backend.loss_grad(params, x, y, loss)
    for a, b in zip(g, g_ref):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    eps = 1e-5
    _, gp = backend.loss_grad([p + eps * d for p, d in zip(params, v)], x, y, loss)
    _, gm = backend.loss_grad([p - eps * d for p, d in zip(params, v)], x, y, loss)
    for a, p, m in zip(hv, gp, gm):
        np.testing.assert_allclose(a, (p - m) / (2 * eps), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_hvp_float32_matches_float64(loss):
    n_out = 1 if loss == "mse" else 3
    m64, m32 = mlp([2, 9, n_out], Tanh, np.float64), mlp([2, 9, n_out], Tanh, np.float32)
    rng = np.random.default_rng(1)
    p64 = perturbed(broadcast_params(m64.parameters(), 2), rng)
    x = rng.standard_normal((2, 6, 2))
    y = rng.standard_normal((2, 6, 1)) if loss == "mse" else rng.integers(0, n_out, (2, 6))
    v = [rng.standard_normal(p.shape) for p in p64]
    _, hv64 = BatchedMLP(m64).hvp(p64, x, y, loss, v)
    as32 = lambda arrs: [a.astype(np.float32) for a in arrs]  # noqa: E731
    _, hv32 = BatchedMLP(m32).hvp(as32(p64), x.astype(np.float32), y, loss, as32(v))
    for a, b in zip(hv32, hv64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("act, dtype, bound", [(ReLU, np.float64, 1e-8), (Tanh, np.float64, 1e-8),
                                               (Tanh, np.float32, 1e-3)])
def test_finite_difference_hvp_error_is_small(act, dtype, bound):
    """ModuleLoop's finite-difference HVP against the exact R-operator (the documented error)."""
    model = mlp([1, 40, 40, 1], act, dtype)
    rng = np.random.default_rng(2)
    params = broadcast_params(model.parameters(), 25)
    batch = sine_batch(25, 5, 5, 0, dtype)
    v = [rng.standard_normal(p.shape).astype(dtype) for p in params]
    _, exact = BatchedMLP(model).hvp(params, batch.support_x, batch.support_y, "mse", v)
    _, approx = ModuleLoop(model).hvp(params, batch.support_x, batch.support_y, "mse", v)
    num = np.sqrt(sum(np.sum((a.astype(np.float64) - b) ** 2) for a, b in zip(approx, exact)))
    den = np.sqrt(sum(np.sum(b.astype(np.float64) ** 2) for b in exact))
    assert num / den < bound
    _, coarse = ModuleLoop(model, fd_eps=1e-2).hvp(params, batch.support_x, batch.support_y,
                                                   "mse", v)
    assert not all(np.allclose(a, b, rtol=1e-9, atol=0) for a, b in zip(coarse, exact))


@pytest.mark.parametrize("act", [Tanh, ReLU])
def test_maml_meta_gradient_matches_finite_differences(act):
    model = mlp([1, 6, 5, 1], act)
    backend = BatchedMLP(model)
    batch = sine_batch(3, 4, 5, 3)
    lr, steps = 0.05, 2
    theta = [p.copy() for p in model.parameters()]
    step = meta_gradient("maml", backend, theta, batch, "mse", steps, lr)
    f = meta_loss_fn(backend, batch, "mse", steps, lr)
    num = fd_grad(lambda: f(theta, None), theta, eps=1e-6)
    assert_close64(step.grads, num, rtol=1e-5, atol=1e-8)
    fo = meta_gradient("fomaml", backend, theta, batch, "mse", steps, lr)
    diff = max(np.abs(a - b).max() for a, b in zip(fo.grads, step.grads))
    assert diff > 1e-4  # the second-order terms are really there
    assert step.loss == pytest.approx(fo.loss)


@pytest.mark.parametrize("first_order, steps", [(True, 1), (False, 1), (False, 3)])
def test_metasgd_lr_gradient_matches_finite_differences(first_order, steps):
    model = mlp([1, 6, 1], Tanh)
    backend = BatchedMLP(model)
    batch = sine_batch(4, 5, 5, 4)
    theta = [p.copy() for p in model.parameters()]
    rng = np.random.default_rng(5)
    lrs = [np.full_like(p, 0.03) + 0.01 * rng.random(p.shape) for p in theta]
    step = meta_gradient("metasgd", backend, theta, batch, "mse", steps, lrs,
                         first_order=first_order)
    f = meta_loss_fn(backend, batch, "mse", steps, None)
    num = fd_grad(lambda: f(theta, lrs), lrs, eps=1e-6)
    assert_close64(step.lr_grads, num, rtol=1e-5, atol=1e-9)
    if not first_order:
        num_theta = fd_grad(lambda: f(theta, lrs), theta, eps=1e-6)
        assert_close64(step.grads, num_theta, rtol=1e-5, atol=1e-9)


def test_module_loop_backend_agrees_with_batched():
    """Same meta-gradients from the per-task nesy.nn path (FD Hessians) and the batched one."""
    model = mlp([1, 8, 8, 1], Tanh)
    batch = sine_batch(4, 5, 6, 6)
    theta = model.parameters()
    for alg in ("fomaml", "reptile", "maml"):
        a = meta_gradient(alg, BatchedMLP(model), theta, batch, "mse", 2, 0.02)
        b = meta_gradient(alg, ModuleLoop(model), theta, batch, "mse", 2, 0.02)
        for ga, gb in zip(a.grads, b.grads):
            np.testing.assert_allclose(ga, gb, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_losses_match_nesy_nn(dtype):
    rng = np.random.default_rng(7)
    out = rng.standard_normal((3, 5, 4)).astype(dtype)
    y = rng.standard_normal((3, 5, 4)).astype(dtype)
    labels = rng.integers(0, 4, (3, 5))
    for loss, fn, target in (("mse", MSELoss(), y), ("cross_entropy", CrossEntropyLoss(), labels)):
        losses, grad, _ = batched_loss(loss, out, target)
        assert grad.dtype == dtype
        for t in range(3):
            assert losses[t] == pytest.approx(fn(out[t], target[t]), rel=1e-5)
            np.testing.assert_allclose(grad[t], fn.backward(), rtol=1e-5, atol=1e-7)


def test_make_backend_choice():
    assert isinstance(make_backend(mlp([2, 3, 1])), BatchedMLP)
    odd = Sequential(Dense(2, 3, dtype=np.float64), GELU(), Dense(3, 1, dtype=np.float64))
    assert isinstance(make_backend(odd), ModuleLoop)
    with pytest.raises(TypeError, match="model"):
        make_backend(odd, batched=True)
    assert isinstance(make_backend(mlp([2, 3, 1]), batched=False), ModuleLoop)


# ---------------------------------------------------------------------- inner optimizers
def test_hypergradient_inner_optimizer_adapts_each_task_separately():
    model = mlp([1, 10, 1], Tanh)
    backend = BatchedMLP(model)
    batch = sine_batch(3, 5, 5, 8)
    make = lambda groups: SGDHD(groups, lr=0.02, hypergrad_lr=0.01)  # noqa: E731
    together = inner_loop(backend, broadcast_params(model.parameters(), 3), batch.support_x,
                          batch.support_y, "mse", 4, 0.0, make)[0]
    for t in range(3):
        alone = inner_loop(backend, broadcast_params(model.parameters(), 1),
                           batch.support_x[t:t + 1], batch.support_y[t:t + 1], "mse", 4, 0.0,
                           make)[0]
        for a, b in zip(together, alone):
            np.testing.assert_allclose(a[t], b[0], rtol=1e-12)
    plain = inner_loop(backend, broadcast_params(model.parameters(), 3), batch.support_x,
                       batch.support_y, "mse", 4, 0.02)[0]
    assert max(np.abs(a - b).max() for a, b in zip(together, plain)) > 1e-8


def test_reused_inner_optimizer_matches_a_fresh_one():
    model = mlp([1, 10, 1], Tanh)
    backend = BatchedMLP(model)
    make = lambda groups: AdamHD(groups, lr=0.02, hypergrad_lr=1e-3)  # noqa: E731
    reused = InnerOptimizer(make)
    for seed in (1, 2, 3):
        batch = sine_batch(3, 5, 5, seed)
        params = broadcast_params(model.parameters(), 3)
        a = inner_loop(backend, params, batch.support_x, batch.support_y, "mse", 3, 0.0, reused)
        b = inner_loop(backend, params, batch.support_x, batch.support_y, "mse", 3, 0.0, make)
        for x, y in zip(a[0], b[0]):
            np.testing.assert_array_equal(x, y)
        assert reused.opt.param_groups[0]["lr"] != 0.02  # the rate adapted during the loop
    np.testing.assert_array_equal(params[0], broadcast_params(model.parameters(), 3)[0])


def test_outer_schedule_is_stepped_once_per_meta_iteration():
    from nesy.optim.schedules import StepLR

    learner = MetaLearner(mlp([1, 4, 1]), outer_lr=0.1, meta_batch_size=2, eval_every=1,
                          n_val_tasks=2, verbose=0, random_state=0,
                          schedule=lambda opt: StepLR(opt, step_size=1, gamma=0.5))
    learner.fit(SineTasks(3), 3)
    assert learner.history_["lr"] == pytest.approx([0.05, 0.025, 0.0125])
    assert learner.history_.epoch == [1, 2, 3]


def test_grad_clip_bounds_the_meta_update():
    net = mlp([1, 8, 1], Tanh)
    before = [p.copy() for p in net.parameters()]
    MetaLearner(net, "fomaml", grad_clip=1e-3, outer_optimizer=lambda ps: SGD(ps, lr=1.0),
                meta_batch_size=5, verbose=0, random_state=0).fit(SineTasks(5), 1)
    step = np.sqrt(sum(np.sum((p - q) ** 2) for p, q in zip(net.parameters(), before)))
    assert 0 < step <= 1e-3 * (1 + 1e-5)


# ---------------------------------------------------------------------- end to end
def test_short_sine_run_learns_to_adapt():
    net = mlp([1, 40, 40, 1], ReLU, np.float32)
    untrained = MetaLearner(net, "fomaml", verbose=0).evaluate(SineTasks(5, 50), 200, rng=9)
    learner = MetaLearner(net, "fomaml", inner_lr=0.01, outer_lr=3e-3, verbose=0,
                          random_state=0, eval_every=100, n_val_tasks=20)
    learner.fit(SineTasks(5), 500)
    trained = learner.evaluate(SineTasks(5, 50), 200, rng=9)
    assert trained["loss"] < 0.6 * untrained["loss"]
    assert len(learner.history_) == 5 and "val_loss" in learner.history_.history
    assert learner.n_iter_ == 500


def test_fit_runs_on_any_module_and_adapt_returns_a_copy():
    net = Sequential(Dense(1, 8, dtype=np.float64, rng=0), GELU(), Dense(8, 1, dtype=np.float64))
    learner = MetaLearner(net, "maml", meta_batch_size=4, verbose=0, random_state=1)
    learner.fit(SineTasks(5), 3)
    assert isinstance(learner.backend_, ModuleLoop)
    b = sine_batch(1, 5, 5, 1)
    before = [p.copy() for p in net.parameters()]
    adapted = learner.adapt(b.support_x[0], b.support_y[0], steps=5)
    assert all(np.array_equal(p, q) for p, q in zip(net.parameters(), before))
    assert not np.array_equal(adapted.parameters()[0], before[0])
    err = lambda m: np.mean((m.forward(b.support_x[0]) - b.support_y[0]) ** 2)  # noqa: E731
    assert err(adapted) < err(net)


def test_digits_episodes_and_classification_fit():
    train, test = DigitsTasks.split(n_way=3, k_shot=2, k_query=4, train_digits=(0, 1, 2, 3),
                                    test_digits=(7, 8, 9))
    b = train.sample(5, np.random.default_rng(0))
    assert b.support_x.shape == (5, 6, 64) and b.query_y.shape == (5, 12)
    assert set(np.unique(b.support_y)) == {0, 1, 2}
    assert 0.0 <= b.support_x.min() and b.support_x.max() <= 1.0
    assert {d for d, _ in test.classes_}.isdisjoint({d for d, _ in train.classes_})
    net = mlp([64, 16, 3], ReLU, np.float32)
    learner = MetaLearner(net, "reptile", inner_lr=0.1, inner_steps=2, meta_batch_size=4,
                          verbose=0, random_state=0).fit(train, 5)
    res = learner.evaluate(test, 20, rng=0)
    assert 0.0 <= res["accuracy"] <= 1.0 and np.isfinite(res["accuracy_ci95"])
    assert learner.history_["val_accuracy"]


# ---------------------------------------------------------------------- persistence
@pytest.mark.parametrize("dtype", DTYPES)
def test_save_load_round_trip(tmp_path, dtype):
    net = mlp([1, 5, 1], Tanh, dtype)
    learner = MetaLearner(net, "metasgd", meta_batch_size=3, verbose=0, random_state=0)
    learner.fit(SineTasks(3, dtype=dtype), 3)
    path = tmp_path / "meta.npz"
    learner.save(path)
    assert os.listdir(tmp_path) == ["meta.npz"]
    other = MetaLearner(mlp([1, 5, 1], Tanh, dtype, seed=9), "metasgd", verbose=0)
    other.load(path)
    for a, b in zip(other.model.parameters() + other.inner_lrs_,
                    net.parameters() + learner.inner_lrs_):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    wrong = MetaLearner(mlp([1, 6, 1], Tanh, dtype), "metasgd", verbose=0)
    keep = [p.copy() for p in wrong.model.parameters()]
    with pytest.raises(ValueError, match="theta/0.weight"):
        wrong.load(path)
    assert all(np.array_equal(p, q) for p, q in zip(wrong.model.parameters(), keep))
    # Files that are not MetaLearner files: a ValueError naming the path, nothing copied (the
    # config is read before the parameters).
    saved = dict(np.load(path))
    keep = [p.copy() for p in other.model.parameters()]
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not an archive")
    no_config = tmp_path / "no_config.npz"
    np.savez(no_config, **{k: v for k, v in saved.items() if k != "config"})
    bad_json = tmp_path / "bad_json.npz"
    np.savez(bad_json, **{**saved, "config": np.frombuffer(b"{oops", np.uint8)})
    for bad, why in ((garbage, "not an .npz"), (no_config, "no 'config'"),
                     (bad_json, "not UTF-8 JSON")):
        with pytest.raises(ValueError, match=f"{bad.name}.*not a nesy MetaLearner file.*{why}"):
            other.load(bad)
        assert all(np.array_equal(p, q) for p, q in zip(other.model.parameters(), keep))


# ---------------------------------------------------------------------- bad input
class BadTasks:
    loss = "mse"

    def __init__(self, kind):
        self.kind = kind

    def sample(self, n_tasks, rng):
        b = SineTasks(5).sample(n_tasks, rng)
        if self.kind == "points":
            return TaskBatch(b.support_x, b.support_y[:, :3], b.query_x, b.query_y)
        if self.kind == "tasks":
            return TaskBatch(b.support_x, b.support_y, b.query_x[:-1], b.query_y[:-1])
        if self.kind == "features":
            return TaskBatch(np.repeat(b.support_x, 2, axis=2), b.support_y,
                             np.repeat(b.query_x, 2, axis=2), b.query_y)
        if self.kind == "nan":
            b.query_y[0, 0, 0] = np.nan
            return b
        if self.kind == "type":
            return (b.support_x, b.support_y)
        if self.kind == "complex":
            return TaskBatch(b.support_x, b.support_y * (1 + 0j), b.query_x, b.query_y)
        return TaskBatch(b.support_x, b.support_y * 1e30, b.query_x, b.query_y)


@pytest.mark.parametrize("kind, exc, match", [
    ("points", ValueError, "support_y"),
    ("tasks", ValueError, "query_x"),
    ("features", ValueError, "support_x"),
    ("nan", ValueError, "query_y"),
    ("type", TypeError, "TaskBatch"),
    ("complex", TypeError, "task_sampler: support_y: expected real numbers"),
    ("huge", FloatingPointError, "meta-iteration 1"),
])
def test_bad_task_samplers(kind, exc, match):
    learner = MetaLearner(mlp([1, 8, 1], ReLU, np.float32), "fomaml", inner_lr=1.0,
                          meta_batch_size=4, verbose=0)
    before = [p.copy() for p in learner.model.parameters()]
    with pytest.raises(exc, match=match):
        learner.fit(BadTasks(kind), 2)
    # Every bad batch is refused in the first meta-iteration: no update reached the model.
    after = learner.model.parameters()
    assert len(after) == len(before) == 4
    for p, q in zip(after, before):
        assert p.dtype == q.dtype and np.array_equal(p, q)


class LaterBadTasks:
    """Sine tasks for ``good`` meta-batches, then a batch with NaN targets."""

    loss = "mse"

    def __init__(self, good):
        self.good, self.calls, self.sine = good, 0, SineTasks(5)

    def sample(self, n_tasks, rng):
        self.calls += 1
        batch = self.sine.sample(n_tasks, rng)
        if self.calls > self.good:
            batch.query_y[...] = np.nan
        return batch


def test_a_fit_failing_after_some_updates_leaves_the_learner_as_it_was():
    learner = MetaLearner(mlp([1, 8, 1], Tanh), "metasgd", meta_batch_size=2, verbose=0,
                          random_state=0)
    learner.fit(SineTasks(5), 2)  # fitted: parameters, inner learning rates, history
    before = [p.copy() for p in learner.model.parameters()]
    lrs = [a.copy() for a in learner.inner_lrs_]
    attrs = {k: v for k, v in vars(learner).items() if k.endswith("_")}
    with pytest.raises((ValueError, FloatingPointError)):
        learner.fit(LaterBadTasks(good=3), 6)  # three meta-updates, then a refused batch
    assert all(np.array_equal(p, q) for p, q in zip(learner.model.parameters(), before))
    assert all(np.array_equal(a, b) for a, b in zip(learner.inner_lrs_, lrs))
    assert {k: v for k, v in vars(learner).items() if k.endswith("_")}.keys() == attrs.keys()
    assert learner.n_iter_ == attrs["n_iter_"]


def test_adapt_refuses_complex_data():
    learner = MetaLearner(mlp([1, 4, 1]), "fomaml", meta_batch_size=2, verbose=0)
    learner.fit(SineTasks(5), 1)
    with pytest.raises(TypeError, match="support_x: expected real numbers"):
        learner.adapt(np.zeros((5, 1)) * 1j, np.zeros((5, 1)))
    with pytest.raises(TypeError, match="support_y: expected real numbers"):
        learner.adapt(np.zeros((5, 1)), np.zeros((5, 1)) * 1j)


def test_sklearn_params():
    learner = MetaLearner(mlp([1, 4, 1]), "maml", inner_steps=3)
    assert learner.get_params()["algorithm"] == "maml"
    assert learner.set_params(inner_lr=0.5).inner_lr == 0.5
    assert "maml" in repr(learner)


def test_bad_arguments():
    net = mlp([1, 4, 1])
    with pytest.raises(ValueError, match="algorithm"):
        MetaLearner(net, "maml2").fit(SineTasks(), 1)
    with pytest.raises(ValueError, match="inner_optimizer"):
        MetaLearner(net, "maml", inner_optimizer=lambda g: SGD(g)).fit(SineTasks(), 1)
    with pytest.raises(ValueError, match="inner_lr"):
        MetaLearner(net, inner_lr=-1).fit(SineTasks(), 1)
    with pytest.raises(ValueError, match="n_iterations"):
        MetaLearner(net).fit(SineTasks(), 0)
    with pytest.raises(TypeError, match="task_sampler"):
        MetaLearner(net, loss="mse").fit(object(), 1)
    with pytest.raises(ValueError, match="k_shot"):
        DigitsTasks(n_way=5, k_shot=170, k_query=15)
    with pytest.raises(ValueError, match="n_way"):
        DigitsTasks(n_way=6, digits=(0, 1, 2))
    with pytest.raises(ValueError, match="rotations"):
        DigitsTasks(n_way=2, digits=(3,), rotations=(0, 4))  # 4 quarter turns = 0
    with pytest.raises(ValueError, match="k_shot"):
        SineTasks(k_shot=0)
    learner = MetaLearner(net, verbose=0)
    with pytest.raises(ValueError, match="support_y"):
        learner.adapt(np.zeros((5, 1)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="steps"):
        learner.adapt(np.zeros((5, 1)), np.zeros((5, 1)), steps=-1)


@pytest.mark.parametrize("cls", [SineTasks, DigitsTasks])
@pytest.mark.parametrize("dtype,got", [("foo", "'foo'"), (np.int32, "int32")])
def test_task_samplers_name_an_invalid_dtype(cls, dtype, got):
    """SineTasks(dtype='foo') raised NumPy's unnamed "data type 'foo' not understood"
    (review s13 L4): now the shared check, which still takes None as float64."""
    with pytest.raises(TypeError, match=rf"^dtype: expected float32 or float64, got {got}"):
        cls(dtype=dtype)
    assert SineTasks(dtype=None).sample(2, np.random.default_rng(0)).support_x.dtype == np.float64


def test_report_tables_smoke():
    from nesy.meta import report

    table = report.sine_table(n_iterations=3, n_eval=10, methods=report.SINE_METHODS[2:3])
    assert table.count("\n") == 2 and "FOMAML" in table
    speed = report.speed_table(n_batches=2, repeat=1, with_torch=False)
    assert "nesy (batched over tasks)" in speed
    with pytest.raises(ValueError, match="tables"):
        report.main(["nope"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_rust_loss_grad_matches_the_numpy_passes(dtype, loss):
    """BatchedMLP.loss_grad (one Rust call for all tasks) against its NumPy forward/backward."""
    from nesy.meta.functional import BatchedMLP, batched_loss, broadcast_params
    from nesy.nn import Dense, ReLU, Sequential, Tanh

    n_out = 1 if loss == "mse" else 4
    net = Sequential(Dense(3, 7, rng=0, dtype=dtype), Tanh(), Dense(7, 6, rng=1, dtype=dtype),
                     ReLU(), Dense(6, n_out, rng=2, dtype=dtype))
    b = BatchedMLP(net)
    rng = np.random.default_rng(0)
    params = [p + rng.standard_normal(p.shape).astype(dtype) * 0.1
              for p in broadcast_params(net.parameters(), 5)]
    x = rng.standard_normal((5, 9, 3)).astype(dtype)
    y = (rng.standard_normal((5, 9, 1)).astype(dtype) if loss == "mse"
         else rng.integers(0, n_out, (5, 9)))
    losses, grads = b.loss_grad(params, x, y, loss)
    out, cache = b.forward(params, x)
    want_l, g_out, _ = batched_loss(loss, out, y)
    want_g = b.backward(params, cache, g_out)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(losses, want_l, rtol=tol, atol=tol)
    for g, w in zip(grads, want_g):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
    only, none = b.loss_grad(params, x, y, loss, need_grad=False)
    assert none is None
    np.testing.assert_array_equal(only, losses)


def test_rust_loss_grad_refuses_bad_shapes():
    from nesy import _core

    W1, b1 = np.zeros((2, 3, 4), np.float32), np.zeros((2, 4), np.float32)
    W2, b2 = np.zeros((2, 4, 1), np.float32), np.zeros((2, 1), np.float32)
    x = np.zeros((2, 5, 3), np.float32)
    with pytest.raises(ValueError, match="y"):
        _core.meta_mlp_loss_grad([W1, b1, W2, b2], x, np.zeros((1, 10, 1), np.float32),
                                 ["relu", "identity"])
    with pytest.raises(ValueError, match="width"):
        _core.meta_mlp_loss_grad([W1[:, :, :0], b1[:, :0], W2[:, :0], b2], x,
                                 np.zeros((2, 5, 1), np.float32), ["relu", "identity"])
    with pytest.raises(ValueError, match="point"):
        _core.meta_mlp_loss_grad([W1, b1, W2, b2], x[:, :0], np.zeros((2, 0, 1), np.float32),
                                 ["relu", "identity"])
    with pytest.raises(IndexError, match=r"y\[1\]"):
        _core.meta_mlp_loss_grad([W1, b1, W2, b2], x, np.array([[0, 3, 0, 0, 0]] * 2),
                                 ["relu", "identity"], "cross_entropy")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_rust_loss_grad_does_not_depend_on_the_thread_count(dtype, loss):
    """32 tasks x 64 points through widths [3, 40, 40, 4]: enough work for the parallel path
    (rust/core/src/meta/mlp.rs, one job per task); 1 and 2 threads give the same bits."""
    import nesy
    from nesy.meta.functional import BatchedMLP

    n_tasks, n_points = 32, 64
    n_out = 4
    net = Sequential(Dense(3, 40, rng=0, dtype=dtype), Tanh(), Dense(40, 40, rng=1, dtype=dtype),
                     ReLU(), Dense(40, n_out, rng=2, dtype=dtype))
    b = BatchedMLP(net)
    rng = np.random.default_rng(1)
    params = [p + rng.standard_normal(p.shape).astype(dtype) * 0.1
              for p in broadcast_params(net.parameters(), n_tasks)]
    x = rng.standard_normal((n_tasks, n_points, 3)).astype(dtype)
    y = (rng.standard_normal((n_tasks, n_points, n_out)).astype(dtype) if loss == "mse"
         else rng.integers(0, n_out, (n_tasks, n_points)))
    before = nesy.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            nesy.set_num_threads(threads)
            assert nesy.get_num_threads() == threads
            losses, grads = b.loss_grad(params, x, y, loss)
            results.append((losses, *grads))
    finally:
        nesy.set_num_threads(before)
    assert len(results[0]) == 1 + len(params)
    for a, c in zip(*results):
        assert a.dtype == dtype and np.all(np.isfinite(a))
        np.testing.assert_array_equal(a, c)
    # Tasks differ (their parameters do), so equal bits are not a constant output.
    assert len(np.unique(results[0][0])) == n_tasks


# ---------------------------------------------------------------------- bad inputs (s10)
class _DivergingSine:
    """Sine-like tasks whose targets explode after ``after`` sample calls (the validation
    draws count too), so that a fit raises FloatingPointError part-way."""

    loss = "mse"

    def __init__(self, after):
        self.after, self.calls = after, 0

    def sample(self, n, rng):
        self.calls += 1
        x = np.ones((n, 5, 1))
        y = x * (1e300 if self.calls > self.after else 1.0)
        return TaskBatch(x, y, x, y)


def test_a_fit_that_diverges_part_way_leaves_history_and_counts_as_they_were():
    net = mlp([1, 8, 1])
    learner = MetaLearner(net, "metasgd", inner_lr=0.1, outer_lr=0.1, eval_every=1,
                          n_val_tasks=2, meta_batch_size=2, verbose=0, random_state=0)
    sampler = _DivergingSine(after=13)
    learner.fit(sampler, 3)
    history = learner.history_
    entries = (list(history.epoch), history.to_dict())
    params = [p.copy() for p in net.parameters()]
    lrs = [a.copy() for a in learner.inner_lrs_]
    state = {k: v for k, v in vars(learner).items() if k.endswith("_")}
    with pytest.raises(FloatingPointError):
        learner.fit(sampler, 20)
    assert sampler.calls > 8  # the second fit ran several iterations before diverging
    assert learner.history_ is history and len(learner.history_) == 3
    assert (list(history.epoch), history.to_dict()) == entries
    assert learner.n_iter_ == 3
    assert {k: v for k, v in vars(learner).items() if k.endswith("_")} == state
    assert all(np.array_equal(a, b) for a, b in zip(net.parameters(), params))
    assert all(np.array_equal(a, b) for a, b in zip(learner.inner_lrs_, lrs))
    learner.fit(SineTasks(3), 2)  # and a later fit that succeeds appends to it
    assert len(learner.history_) == 5 and learner.n_iter_ == 5


def test_fit_with_a_model_that_is_not_a_module_names_model():
    learner = MetaLearner(5, verbose=0)
    with pytest.raises(TypeError, match=r"^model: expected a nesy Module, got int"):
        learner.fit(SineTasks(3), 1)
    assert not hasattr(learner, "history_")


@pytest.mark.parametrize("saved_by,loaded_by", [("metasgd", "fomaml"), ("fomaml", "metasgd"),
                                                ("reptile", "metasgd"), ("metasgd", "maml")])
def test_load_refuses_a_metasgd_file_into_another_algorithm_and_the_reverse(tmp_path, saved_by,
                                                                           loaded_by):
    learner = MetaLearner(mlp([1, 5, 1], Tanh), saved_by, meta_batch_size=2, verbose=0,
                          random_state=0)
    learner.fit(SineTasks(3), 2)
    path = tmp_path / "m.npz"
    learner.save(path)
    other = MetaLearner(mlp([1, 5, 1], Tanh, seed=4), loaded_by, verbose=0)
    keep = [p.copy() for p in other.model.parameters()]
    with pytest.raises(ValueError, match=rf"m\.npz': saved by a '{saved_by}' learner, this one "
                                         rf"is '{loaded_by}' \(algorithm\)"):
        other.load(path)
    assert all(np.array_equal(p, q) for p, q in zip(other.model.parameters(), keep))
    # The learner's own hyper-parameters are kept (as torch's load_state_dict does).
    same = MetaLearner(mlp([1, 5, 1], Tanh, seed=4), saved_by, inner_lr=0.5, inner_steps=3,
                       verbose=0).load(path)
    assert same.inner_lr == 0.5 and same.inner_steps == 3
    assert all(np.array_equal(p, q) for p, q in zip(same.model.parameters(),
                                                     learner.model.parameters()))


@pytest.mark.parametrize("saved_by,loaded_by", [("maml", "fomaml"), ("reptile", "maml"),
                                                ("fomaml", "reptile")])
def test_load_takes_a_file_of_another_algorithm_without_learned_rates(tmp_path, saved_by,
                                                                      loaded_by):
    """maml, fomaml and reptile save the same state (theta and the rates filled with
    inner_lr), so their files load into each other's learners, as they did before the
    algorithm was checked; only Meta-SGD's learned rates make a file algorithm-specific."""
    learner = MetaLearner(mlp([1, 5, 1], Tanh), saved_by, meta_batch_size=2, verbose=0,
                          random_state=0)
    learner.fit(SineTasks(3), 2)
    path = tmp_path / "m.npz"
    learner.save(path)
    other = MetaLearner(mlp([1, 5, 1], Tanh, seed=4), loaded_by, verbose=0).load(path)
    assert other.algorithm == loaded_by and other.n_iter_ == 2
    assert all(np.array_equal(p, q) for p, q in zip(other.model.parameters(),
                                                     learner.model.parameters()))
    assert all(np.array_equal(p, q) for p, q in zip(other.inner_lrs_, learner.inner_lrs_))
    x, y = np.linspace(-1, 1, 5)[:, None], np.sin(np.linspace(-1, 1, 5))[:, None]
    assert np.array_equal(other.adapt(x, y).forward(x), learner.adapt(x, y).forward(x))


def test_adapt_names_support_x_when_its_features_do_not_fit_the_model():
    learner = MetaLearner(mlp([1, 5, 1]), verbose=0)
    with pytest.raises(ValueError, match=r"^support_x: expected shape \(n_support, 1\) for the "
                                         r"model, got \(5, 2\)"):
        learner.adapt(np.ones((5, 2)), np.ones((5, 1)))
    clf = MetaLearner(mlp([2, 5, 3]), loss="cross_entropy", verbose=0)
    with pytest.raises(ValueError, match=r"^support_y has labels outside \[0, 3\)"):
        clf.adapt(np.ones((4, 2)), np.array([0, 1, 2, 3]))


def test_a_fit_that_raises_closes_its_progress_bar(monkeypatch):
    """fit closed its tqdm bar only after a fit that succeeded. A failing fit relied on the
    finaliser of tqdm's iterator, which CPython runs when the generator is freed but other
    Pythons (PyPy) only at a garbage collection: ``Bar`` below iterates without it."""
    import nesy.meta.learner as learner_module

    bars = []

    class Bar(learner_module.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.closed_ = False
            bars.append(self)

        def __iter__(self):  # no try/finally closing the bar, as a freed generator does
            yield from self.iterable

        def close(self):
            self.closed_ = True
            super().close()

    monkeypatch.setattr(learner_module, "tqdm", Bar)
    learner = MetaLearner(mlp([1, 8, 1], Tanh), meta_batch_size=2, verbose=1, random_state=0)
    with pytest.raises(ValueError, match="query_y") as info:
        learner.fit(LaterBadTasks(good=2), 5)
    assert len(bars) == 1 and bars[0].closed_  # while the traceback still holds the bar
    assert info.value is not None
    learner.fit(SineTasks(3), 2)
    assert len(bars) == 2 and bars[1].closed_


def test_load_restores_n_iter_from_the_file(tmp_path):
    """save wrote n_iter into the file's config, but load ignored it."""
    learner = MetaLearner(mlp([1, 5, 1], Tanh), meta_batch_size=2, verbose=0, random_state=0)
    learner.fit(SineTasks(3), 3)
    path = tmp_path / "m.npz"
    learner.save(path)
    other = MetaLearner(mlp([1, 5, 1], Tanh, seed=4), verbose=0)
    assert other.load(path).n_iter_ == 3
    other.fit(SineTasks(3), 2)  # meta-training continues from the loaded count
    assert other.n_iter_ == 5 and list(other.history_.epoch)[-1] == 5
    saved = dict(np.load(path))

    def with_config(name, **changes):
        import json
        config = json.loads(saved["config"].tobytes().decode())
        config.update(changes)
        config = {k: v for k, v in config.items() if v is not None}
        file = tmp_path / name
        np.savez(file, **{**saved, "config": np.frombuffer(json.dumps(config).encode(),
                                                           np.uint8)})
        return file

    # A file written before n_iter was saved still loads, and keeps the learner's count.
    fresh = MetaLearner(mlp([1, 5, 1], Tanh, seed=4), verbose=0)
    fresh.load(with_config("old.npz", n_iter=None))
    assert fresh.n_iter_ == 0
    assert all(np.array_equal(p, q) for p, q in zip(fresh.model.parameters(),
                                                     learner.model.parameters()))
    # A bad count is refused before anything is copied.
    for bad in (-1, 2.5, "3", True):
        keep = [p.copy() for p in other.model.parameters()]
        with pytest.raises(ValueError, match=r"bad\.npz': not a nesy MetaLearner file \('config' "
                                             r"has n_iter .*expected an integer >= 0"):
            other.load(with_config("bad.npz", n_iter=bad))
        assert other.n_iter_ == 5
        assert all(np.array_equal(p, q) for p, q in zip(other.model.parameters(), keep))


# ---------------------------------------------------------------------- s15 review (M2, L10)
def dropout_net(p, seed=0):
    return Sequential(Dense(1, 6, dtype=np.float64, rng=seed), Tanh(), Dropout(p, rng=seed),
                      Dense(6, 1, dtype=np.float64, rng=seed + 1))


@pytest.mark.parametrize("algorithm, steps", [("maml", 1), ("maml", 2), ("metasgd", 2)])
def test_second_order_with_dropout_matches_finite_differences_for_fixed_masks(algorithm, steps):
    """M2: the finite-difference HVP of ModuleLoop ran three gradient passes with fresh dropout
    masks each, so ``(g+ - g-) / 2 eps`` divided mask noise by a tiny step (a meta-gradient
    1000x too large). Now each inner step's HVP replays that step's masks: the meta-gradient is
    the exact derivative of the query loss for the masks drawn, checked by central differences
    of the whole objective with the generators reset to the same state for every evaluation."""
    model = dropout_net(0.4)
    backend = ModuleLoop(model)
    batch = sine_batch(3, 5, 5, 8)
    theta = [p.copy() for p in model.parameters()]
    rng = np.random.default_rng(3)
    lrs = ([np.full_like(p, 0.04) + 0.02 * rng.random(p.shape) for p in theta]
           if algorithm == "metasgd" else None)
    gen = backend.work[2].rng  # the private copy's Dropout generator
    start = copy.deepcopy(gen.bit_generator.state)
    step = meta_gradient(algorithm, backend, theta, batch, "mse", steps,
                         lrs if lrs is not None else 0.05, first_order=False)
    after = copy.deepcopy(gen.bit_generator.state)
    f = meta_loss_fn(backend, batch, "mse", steps, 0.05)

    def fixed_masks():
        gen.bit_generator.state = start
        return f(theta, lrs)

    num = fd_grad(fixed_masks, theta, eps=1e-6)
    assert_close64(step.grads, num, rtol=1e-5, atol=1e-8)
    if lrs is not None:
        assert_close64(step.lr_grads, fd_grad(fixed_masks, lrs, eps=1e-6), rtol=1e-5, atol=1e-8)
    # the masks really differ between passes (else the test proves nothing), and the
    # generators end where one pass leaves them: the next meta-batch draws fresh masks
    fixed_masks()
    assert gen.bit_generator.state == after != start
    assert backend.rng_state() == [after]
    drop0 = meta_gradient(algorithm, ModuleLoop(dropout_net(0.0)), theta, batch, "mse", steps,
                          lrs if lrs is not None else 0.05, first_order=False)
    assert max(np.abs(a - b).max() for a, b in zip(step.grads, drop0.grads)) > 1e-3
    # the same size as without dropout (the old code was ~1000x off)
    norm = lambda gs: np.sqrt(sum(np.sum(g ** 2) for g in gs))  # noqa: E731
    assert 0.2 < norm(step.grads) / norm(drop0.grads) < 5


def test_module_loop_hvp_with_dropout_uses_one_set_of_masks():
    """M2: the three passes of one HVP see the same masks, so the HVP of a model with Dropout
    is linear in the direction and equals that of the same model with its masks fixed."""
    model = dropout_net(0.5, seed=4)
    backend = ModuleLoop(model)
    batch = sine_batch(2, 6, 1, 9)
    rng = np.random.default_rng(0)
    params = perturbed(broadcast_params(model.parameters(), 2), rng, 0.1)
    v = [rng.standard_normal(p.shape) for p in params]
    gen = backend.work[2].rng
    state = copy.deepcopy(gen.bit_generator.state)
    _, hv1 = backend.hvp(params, batch.support_x, batch.support_y, "mse", v)
    gen.bit_generator.state = state
    _, hv2 = backend.hvp(params, batch.support_x, batch.support_y, "mse", [2 * q for q in v])
    for a, b in zip(hv1, hv2):
        np.testing.assert_allclose(2 * a, b, rtol=1e-6, atol=1e-9)
    # an explicit state (what second-order MAML passes) gives the same
    _, hv3 = backend.hvp(params, batch.support_x, batch.support_y, "mse", v, rng_state=[state])
    for a, b in zip(hv1, hv3):
        np.testing.assert_array_equal(a, b)
    # the reference: the same network with the masks of that state baked in (deterministic)
    gen.bit_generator.state = state
    masks = [gen.random((6, 6)) >= 0.5 for _ in range(2)]

    class Fixed(Dropout):
        """Dropout whose mask for task t (the t-th call of each pass) is ``masks[t]``."""

        calls = 0

        def forward(self, x):
            mask = masks[self.calls % 2] / 0.5
            self.calls += 1
            self._save(mask)
            return x * mask

    ref_model = Sequential(model[0], model[1], Fixed(0.5), model[3])
    _, hv_ref = ModuleLoop(ref_model).hvp(params, batch.support_x, batch.support_y, "mse", v)
    for a, b in zip(hv1, hv_ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_fit_without_a_sampler_names_task_sampler():
    """L10: ``MetaLearner(net).fit(None, 2)`` complained about ``loss='auto'``."""
    learner = MetaLearner(mlp([1, 4, 1]), verbose=0)
    with pytest.raises(TypeError, match=r"^task_sampler: expected an object with a "
                                        r"sample\(n_tasks, rng\) method, got NoneType"):
        learner.fit(None, 2)
    with pytest.raises(TypeError, match=r"^task_sampler: .* got int"):
        learner.evaluate(3, 5)
    bad_val = MetaLearner(mlp([1, 4, 1]), verbose=0, validation_sampler=object())
    with pytest.raises(TypeError, match=r"^validation_sampler: expected an object with a "
                                        r"sample"):
        bad_val.fit(SineTasks(), 1)


# ---------------------------------------------------------------------- s22 review
def _small(**kw):
    kw = {"verbose": 0, "meta_batch_size": 2, "n_val_tasks": 2, "random_state": 0, **kw}
    return MetaLearner(mlp([1, 8, 1], seed=3), **kw)


@pytest.mark.parametrize("kw, exc, match", [
    ({"random_state": "a"}, TypeError,
     r"^random_state: expected None, an int >= 0 or a numpy.random.Generator, got str 'a'"),
    ({"random_state": 1.5}, TypeError, r"^random_state: expected None, an int >= 0"),
    ({"random_state": True}, TypeError, r"^random_state: expected None, an int >= 0"),
    ({"random_state": -1}, ValueError, r"^random_state: expected an integer >= 0, got -1"),
    ({"verbose": "x"}, TypeError, r"^verbose: expected an integer, got str 'x'"),
    ({"verbose": None}, TypeError, r"^verbose: expected an integer, got NoneType"),
    ({"verbose": 2.7}, TypeError, r"^verbose: expected an integer, got float 2.7"),
    ({"verbose": -1}, ValueError, r"^verbose: expected an integer >= 0, got -1"),
    ({"batched": "yes"}, TypeError, r"^batched: expected a bool, got str 'yes'"),
    ({"algorithm": "metasgd", "first_order": "no"}, TypeError,
     r"^first_order: expected a bool, got str 'no'"),
])
def test_seed_verbose_and_flags_are_checked_with_the_other_options(kw, exc, match):
    """M8, M9, L5: a bad random_state failed in NumPy's SeedSequence (naming no argument),
    verbose went through ``int()`` ("invalid literal", 2.7 truncated), and "yes" / "no" were
    truthy flags. Now each is named by fit's checks, before any work."""
    learner = _small(**kw)
    with pytest.raises(exc, match=match):
        learner.fit(SineTasks(), 2)
    assert not hasattr(learner, "history_")


def test_seed_options_still_take_what_numpy_takes():
    a = _small(random_state=np.int64(3)).fit(SineTasks(), 2)
    b = _small(random_state=np.random.default_rng(3)).fit(SineTasks(), 2)
    assert a.history_.history["loss"] == b.history_.history["loss"]
    _small(batched=np.bool_(False), verbose=np.int64(0)).fit(SineTasks(), 1)
    with pytest.raises(TypeError, match=r"^rng: expected None, an int >= 0"):
        a.evaluate(SineTasks(), 2, rng="a")


def test_factories_that_return_no_optimizer_or_schedule_are_named():
    """M12: a factory returning something else failed with "'int' object has no attribute
    'step'" (or on 'param_groups'); one building its optimizer on other arrays trained
    nothing, silently. Each is named, and the model is left as it was."""
    from nesy.optim import Adam
    from nesy.optim.schedules import StepLR

    cases = [
        ({"outer_optimizer": lambda ps: 3}, TypeError,
         r"^outer_optimizer: expected a factory returning a nesy optimizer .* got int 3"),
        ({"outer_optimizer": lambda ps: Adam([p.copy() for p in ps])}, ValueError,
         r"^outer_optimizer: the optimizer it returned does not hold the 4 arrays it was "
         r"given, in their order, but other arrays"),
        ({"inner_optimizer": lambda g: None, "inner_steps": 2}, TypeError,
         r"^inner_optimizer: expected a factory returning a nesy optimizer \(with step\(\), "
         r"zero_state\(\) and param_groups\)"),
        ({"inner_optimizer": lambda g: SGD([np.zeros(3)]), "inner_steps": 2}, ValueError,
         r"^inner_optimizer: the optimizer it returned does not hold the 8 arrays it was "
         r"given, in their order, but 1 array;"),
        ({"schedule": lambda opt: None}, TypeError,
         r"^schedule: expected a factory returning a schedule .* got NoneType None"),
        ({"schedule": lambda opt: StepLR(SGD([np.zeros(2)]), 1)}, ValueError,
         r"^schedule: the schedule it returned is bound to another optimizer"),
    ]
    for kw, exc, match in cases:
        learner = _small(meta_batch_size=2, **kw)
        before = [p.copy() for p in learner.model.parameters()]
        with pytest.raises(exc, match=match):
            learner.fit(SineTasks(), 2)
        for p, q in zip(learner.model.parameters(), before):
            np.testing.assert_array_equal(p, q)


def test_a_plateau_schedule_gets_the_validation_loss_of_every_history_entry():
    """M12: ``schedule=lambda o: ReduceLROnPlateau(o)`` failed with "step() missing 1 required
    positional argument: 'metrics'". It is stepped, as the Trainer steps it per epoch, at
    every history entry with that entry's val_loss."""
    from nesy.optim.schedules import ReduceLROnPlateau

    seen = []

    class Plateau(ReduceLROnPlateau):
        def step(self, metrics):
            seen.append(metrics)
            super().step(metrics)

    learner = _small(schedule=lambda o: Plateau(o, factor=0.5, patience=0, mode="max"),
                     eval_every=2).fit(SineTasks(), 6)
    h = learner.history_.history
    assert seen == h["val_loss"] and len(seen) == 3
    # mode="max" on a loss: every entry after the first is "worse", so each halves the rate
    assert h["lr"] == pytest.approx([1e-3, 1e-3, 5e-4])
    assert learner.history_.epoch == [2, 4, 6]


def test_load_refuses_nan_or_infinite_parameters(tmp_path):
    """M5: a file whose parameters (or Meta-SGD rates) hold NaN loaded silently, though
    Module.load_state_dict refuses them. Named with the file and the key; nothing changes."""
    learner = _small(algorithm="metasgd").fit(SineTasks(), 2)
    path = str(tmp_path / "ml.npz")
    learner.save(path)
    for prefix, value in (("theta/", np.nan), ("inner_lr/", np.inf)):
        data = dict(np.load(path))
        key = next(k for k in data if k.startswith(prefix))
        data[key] = data[key].copy()
        data[key].flat[0] = value
        bad = str(tmp_path / "bad.npz")
        np.savez(bad, **data)
        other = _small(algorithm="metasgd")
        other._check_fitted()
        before = [p.copy() for p in other.model.parameters()] + [a.copy() for a in
                                                                   other.inner_lrs_]
        with pytest.raises(ValueError, match=rf"^'{bad}': key '{key}' contains NaN or "
                                             "infinity"):
            other.load(bad)
        for p, q in zip(other.model.parameters() + other.inner_lrs_, before):
            np.testing.assert_array_equal(p, q)
