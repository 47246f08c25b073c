"""Checks of the NumPy references in ``tests/reference.py``.

* Optimizers that exist in ``torch.optim`` are run side by side with torch (single-tensor
  implementation, ``foreach=False``) for 100 steps with fresh random gradients, some of them
  ``None``, and must agree to a relative difference of 1e-6 (float32) or 1e-13 (float64) in
  parameters and state. These tests skip when torch is not importable.
* Lion and the hypergradient-descent variants are checked against independent textbook
  implementations and against properties of the algorithms (these never skip).
* The gradient utilities are checked against torch and against direct formulas.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

try:  # tests/ as a package, or as a plain directory on sys.path
    from tests import reference as ref
except ImportError:
    import reference as ref

N_STEPS = 100
SIZES = [7, 1000]
DTYPES = [np.float32, np.float64]
# max|a - b| / max|b| allowed between a reference and torch
TOL = {np.float32: 1e-6, np.float64: 1e-13}


# ------------------------------------------------------------------------------------ helpers


def max_rel(a, b) -> float:
    """``max|a - b| / max|b|`` (0 when both are all zeros; NaNs must coincide)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    a, b = a[~np.isnan(b)], b[~np.isnan(b)]
    if a.size == 0:
        return 0.0
    scale = float(np.max(np.abs(b)))
    diff = float(np.max(np.abs(a - b)))
    return diff / scale if scale > 0 else diff


@contextlib.contextmanager
def default_dtype(torch, dtype):
    """Run with torch's default dtype matching ``dtype`` (torch keeps scalar state in it)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def make_params(rng, size, dtype):
    """A vector of ``size`` elements, a small matrix and a 0-d array."""
    return [
        rng.standard_normal(size).astype(dtype),
        rng.standard_normal((3, 5)).astype(dtype),
        np.asarray(rng.standard_normal(), dtype=dtype),
    ]


def make_grads(rng, params, step):
    """Fresh random gradients; the matrix gets none every 7th step (it is skipped)."""
    grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
    if step % 7 == 3:
        grads[1] = None
    return grads


def run_against_torch(torch, ref_cls, torch_cls, kwargs, size, dtype, seed=0):
    """Run the reference and torch side by side; return the worst relative difference."""
    rng = np.random.default_rng(seed)
    params = make_params(rng, size, dtype)
    originals = [p.copy() for p in params]
    with default_dtype(torch, dtype):
        tparams = [torch.tensor(p, requires_grad=True) for p in params]
        topt = torch_cls(tparams, foreach=False, **kwargs)
        ropt = ref_cls(params, **kwargs)
        for step in range(N_STEPS):
            grads = make_grads(rng, params, step)
            kept = [None if g is None else g.copy() for g in grads]
            for tp, g in zip(tparams, grads):
                tp.grad = None if g is None else torch.tensor(g)
            topt.step()
            ropt.step(grads)
            for g, k in zip(grads, kept):  # gradients are never modified
                assert (g is None and k is None) or np.array_equal(g, k)
    for p, o in zip(params, originals):  # the caller's arrays are never modified
        assert np.array_equal(p, o)

    worst = 0.0
    for rp, tp, rst in zip(ropt.params, tparams, ropt.state):
        assert rp.dtype == dtype and rp.shape == tuple(tp.shape)
        worst = max(worst, max_rel(rp, tp.detach().numpy()))
        tst = topt.state[tp]
        for key, value in rst.items():
            assert key in tst, key
            if key == "step":
                assert isinstance(value, int)
                assert value == int(tst[key].item())
            elif key == "mu_product":
                # a tensor of torch's default dtype, a double here
                tol = 1e-15 if dtype == np.float64 else 1e-6
                assert value == pytest.approx(tst[key].item(), rel=tol)
            else:
                assert value.dtype == dtype
                worst = max(worst, max_rel(value, tst[key].numpy()))
    return worst


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


# ------------------------------------------------------------------ optimizers against torch

CASES = {
    "SGD": [
        {"lr": 0.1},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
        {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "maximize": True},
        {"lr": 0.02, "momentum": 0.5, "dampening": 0.1, "weight_decay": 0.01, "maximize": True},
    ],
    "Adagrad": [
        {"lr": 0.1},
        {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1},
        {"lr": 0.05, "initial_accumulator_value": 0.5, "eps": 1e-6, "maximize": True},
    ],
    "RMSprop": [
        {"lr": 0.01},
        {"lr": 0.01, "centered": True},
        {"lr": 0.01, "momentum": 0.9},
        {"lr": 0.005, "centered": True, "momentum": 0.5, "weight_decay": 0.1, "maximize": True},
        # 1 - alpha >= 0.5: the other branch of lerp
        {"lr": 0.01, "alpha": 0.3, "centered": True},
    ],
    "Adadelta": [
        {},
        {"lr": 0.5, "rho": 0.5, "weight_decay": 0.1},
        {"rho": 0.95, "eps": 1e-4, "maximize": True},
    ],
    "Adam": [
        {"lr": 1e-2},
        {"lr": 1e-2, "amsgrad": True},
        {"lr": 1e-2, "weight_decay": 0.1, "maximize": True},
        # 1 - beta1 >= 0.5: the other branch of lerp
        {"lr": 1e-2, "betas": (0.3, 0.9), "amsgrad": True, "weight_decay": 0.01},
    ],
    "AdamW": [
        {},
        {"lr": 1e-2, "weight_decay": 0.5, "amsgrad": True, "maximize": True},
        {"lr": 1e-2, "betas": (0.2, 0.5), "eps": 1e-3},
    ],
    "Adamax": [
        {},
        {"lr": 1e-2, "betas": (0.3, 0.5), "weight_decay": 0.1},
        {"eps": 1e-3, "maximize": True},
    ],
    "NAdam": [
        {},
        {"lr": 1e-2, "weight_decay": 0.1},
        {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
        {"momentum_decay": 0.1, "betas": (0.3, 0.9)},
    ],
    "RAdam": [
        {},
        {"lr": 1e-2, "betas": (0.8, 0.9), "weight_decay": 0.1},
        {"lr": 1e-2, "betas": (0.5, 0.99), "weight_decay": 0.1, "decoupled_weight_decay": True,
         "maximize": True, "eps": 1e-3},
    ],
}

TORCH_CASES = [(name, i) for name, cases in CASES.items() for i in range(len(cases))]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("name", "case"), TORCH_CASES)
def test_matches_torch(torch, name, case, size, dtype):
    kwargs = CASES[name][case]
    ref_cls = getattr(ref, "Ref" + name)
    torch_cls = getattr(torch.optim, name)
    worst = run_against_torch(torch, ref_cls, torch_cls, kwargs, size, dtype, seed=case)
    assert worst <= TOL[dtype], f"{name}{kwargs}: max relative difference {worst:.3g}"


BITWISE_SCRIPT = r"""
import contextlib
import sys

import numpy as np
import torch

if torch.backends.cpu.get_cpu_capability() != "DEFAULT":
    print("SKIP")
    sys.exit(0)

try:
    from tests import test_reference as T
except ImportError:
    import test_reference as T


class NumpyWithTorchSqrt:
    # NumPy, except that sqrt is torch's (not always correctly rounded)
    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def sqrt(x):
        x = np.ascontiguousarray(x)
        return torch.sqrt(torch.from_numpy(x.reshape(-1))).numpy().reshape(x.shape)


T.ref.np = NumpyWithTorchSqrt()
torch.set_default_dtype(torch.float64)  # NAdam's mu_product in double, for both dtypes
T.default_dtype = lambda torch, dtype: contextlib.nullcontext()
bad = []
for name, cases in T.CASES.items():
    for case, kwargs in enumerate(cases):
        for size in T.SIZES:
            for dtype in T.DTYPES:
                ref_cls = getattr(T.ref, "Ref" + name)
                torch_cls = getattr(torch.optim, name)
                worst = T.run_against_torch(torch, ref_cls, torch_cls, kwargs, size, dtype, case)
                if worst != 0:
                    bad.append((name, kwargs, size, np.dtype(dtype).name, worst))
print("\n".join(map(str, bad)) or "OK")
"""


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"),
    reason="elsewhere torch's scalar kernels may be compiled with fused multiply-adds",
)
def test_bitwise_with_torch_scalar_kernels(torch):
    """Torch's scalar (non-SIMD) CPU kernels reproduce the references bit for bit.

    This pins the operation order: the only differences left in ``test_matches_torch`` come
    from torch's fused multiply-adds in its SIMD kernels, its ``sqrt`` and its float32
    ``mu_product`` (see the docstring of ``reference``), all three removed here.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    # the repository root (tests as a package) and tests/ itself (tests as a plain directory)
    dirs = [os.path.dirname(here), here, os.environ.get("PYTHONPATH")]
    path = os.pathsep.join(filter(None, dirs))
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default", PYTHONPATH=path)
    run = subprocess.run(
        [sys.executable, "-c", BITWISE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    if run.stdout.strip() == "SKIP":
        pytest.skip("ATEN_CPU_CAPABILITY=default is not honoured by this torch build")
    assert run.stdout.strip() == "OK", run.stdout


def test_defaults_match_torch(torch):
    """Constructor defaults are torch's."""
    import inspect

    for name in CASES:
        tsig = inspect.signature(getattr(torch.optim, name)).parameters
        for pname, par in inspect.signature(getattr(ref, "Ref" + name)).parameters.items():
            if pname == "params":
                continue
            assert pname in tsig, (name, pname)
            assert par.default == tsig[pname].default, (name, pname)


# ------------------------------------------------------------------- interface of all classes

ALL = [
    (ref.RefSGD, {"momentum": 0.9}),
    (ref.RefAdagrad, {}),
    (ref.RefRMSprop, {"momentum": 0.9, "centered": True}),
    (ref.RefAdadelta, {}),
    (ref.RefAdam, {"amsgrad": True}),
    (ref.RefAdamW, {}),
    (ref.RefAdamax, {}),
    (ref.RefNAdam, {}),
    (ref.RefRAdam, {}),
    (ref.RefLion, {"weight_decay": 0.1}),
    (ref.RefSGDHD, {"momentum": 0.9}),
    (ref.RefAdamHD, {}),
]


@pytest.mark.parametrize(("cls", "kwargs"), ALL, ids=[c.__name__ for c, _ in ALL])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_interface(cls, kwargs, dtype):
    rng = np.random.default_rng(1)
    params = [rng.standard_normal(4).astype(dtype), np.zeros((0, 3), dtype)]
    keep = [p.copy() for p in params]
    opt = cls(params, **kwargs)
    assert all(p is not q for p, q in zip(opt.params, params))
    g = rng.standard_normal(4).astype(dtype)
    g_keep = g.copy()
    opt.step([g, np.zeros((0, 3), dtype)])
    opt.step([g, None])
    assert np.array_equal(g, g_keep)
    assert all(np.array_equal(p, k) for p, k in zip(params, keep))
    assert not np.array_equal(opt.params[0], params[0])
    assert all(p.dtype == dtype for p in opt.params)
    if "step" in opt.state[0]:
        assert opt.state[0]["step"] == 2 and opt.state[1]["step"] == 1
    with pytest.raises(ValueError):
        opt.step([g])
    with pytest.raises(ValueError):
        opt.step([g[:3], None])
    with pytest.raises(TypeError):
        opt.step([g.astype(np.float16), None])


def test_lerp_branches():
    a = np.array([1.0, -2.0, 3.0], np.float32)
    b = np.array([2.0, 5.0, -1.0], np.float32)
    assert np.array_equal(ref.lerp(a, b, 0.0), a)
    assert np.array_equal(ref.lerp(a, b, 1.0), b)
    np.testing.assert_allclose(ref.lerp(a, b, 0.3), 0.7 * a + 0.3 * b, atol=1e-6)
    np.testing.assert_allclose(ref.lerp(a, b, 0.8), 0.2 * a + 0.8 * b, atol=1e-6)
    # the small-weight branch is exact at a, the large-weight branch at b
    assert ref.lerp(a, b, 0.3)[0] == np.float32(1) + np.float32(0.3) * np.float32(1)
    assert ref.lerp(a, b, 0.8)[0] == np.float32(2) - np.float32(1) * (1 - np.float32(0.8))
    assert ref.lerp(a, b, 0.8).dtype == np.float32


# ------------------------------------------------------------------------------------- Lion


def textbook_lion(params, grads_seq, lr, beta1, beta2, wd, maximize):
    """Lion as in the paper's Algorithm 2, on one flat float64 vector, scalar by scalar."""
    x = [float(v) for v in np.concatenate([p.ravel() for p in params])]
    m = [0.0] * len(x)
    for grads in grads_seq:
        g = np.concatenate([gr.ravel() for gr in grads]).tolist()
        for i in range(len(x)):
            gi = -g[i] if maximize else g[i]
            c = beta1 * m[i] + (1 - beta1) * gi
            s = (c > 0) - (c < 0)
            x[i] = x[i] - lr * (s + wd * x[i])
            m[i] = beta2 * m[i] + (1 - beta2) * gi
    return np.array(x)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 1e-2},
        {"lr": 3e-3, "betas": (0.5, 0.9), "weight_decay": 0.1},
        {"lr": 1e-2, "betas": (0.95, 0.98), "weight_decay": 1.0, "maximize": True},
    ],
)
def test_lion_textbook(kwargs):
    rng = np.random.default_rng(2)
    params = [rng.standard_normal(50), rng.standard_normal((4, 3))]
    grads_seq = [[rng.standard_normal(p.shape) for p in params] for _ in range(N_STEPS)]
    opt = ref.RefLion(params, **kwargs)
    for grads in grads_seq:
        opt.step(grads)
    beta1, beta2 = kwargs.get("betas", (0.9, 0.99))
    want = textbook_lion(
        params,
        grads_seq,
        kwargs["lr"],
        beta1,
        beta2,
        kwargs.get("weight_decay", 0.0),
        kwargs.get("maximize", False),
    )
    got = np.concatenate([p.ravel() for p in opt.params])
    assert max_rel(got, want) <= 1e-13


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_lion_moves_by_lr(dtype):
    """Without decay every element moves by exactly +-lr (up to rounding) or not at all."""
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(200).astype(dtype)
    lr = 1e-2
    opt = ref.RefLion([p0], lr=lr, betas=(0.0, 0.0))
    g = rng.standard_normal(200).astype(dtype)
    g[:5] = 0
    opt.step([g])
    # with beta1 = 0 the direction is sign(g)
    np.testing.assert_allclose(opt.params[0] - p0, -lr * np.sign(g), atol=4 * np.finfo(dtype).eps)
    assert np.array_equal(opt.params[0][:5], p0[:5])
    assert np.array_equal(opt.state[0]["exp_avg"], g)  # beta2 = 0


# -------------------------------------------------------------------- hypergradient descent


def quadratic(rng, n, dtype=np.float64):
    """A random positive-definite quadratic: grad(x) = A x - b."""
    q = rng.standard_normal((n, n))
    a = q @ q.T / n + np.eye(n)
    b = rng.standard_normal(n)
    return lambda x: (a @ x.astype(np.float64) - b).astype(dtype)


def test_sgd_hd_quadratic_lr_rule():
    """Plain SGD-HD: lr_t - lr_{t-1} = hypergrad_lr * g_t . g_{t-1}, lr >= 0.

    ``g_{t-1}`` is recovered from the parameter change, ``-(x_t - x_{t-1}) / lr_{t-1}``.
    """
    rng = np.random.default_rng(4)
    grad = quadratic(rng, 20)
    beta = 1e-3
    opt = ref.RefSGDHD([rng.standard_normal(20)], lr=0.01, hypergrad_lr=beta)
    prev = None  # (x, lr) before the previous step
    for _ in range(60):
        g = grad(opt.params[0])
        lr0, x0 = opt.lr, opt.params[0].copy()
        opt.step([g])
        if prev is None:
            assert opt.lr == lr0
        else:
            u = -(x0 - prev[0]) / prev[1]
            assert opt.lr == pytest.approx(lr0 + beta * float(g @ u), rel=1e-9)
        assert opt.lr >= 0
        np.testing.assert_allclose(opt.params[0], x0 - opt.lr * g, rtol=1e-15, atol=1e-15)
        prev = (x0, opt.lr)
    assert opt.lr > 0.2  # it learned a larger step on this well-conditioned problem
    # a rate that overshoots makes consecutive gradients disagree: lr shrinks, clamped at 0
    opt = ref.RefSGDHD([rng.standard_normal(20)], lr=3.0, hypergrad_lr=1.0)
    for _ in range(30):
        g = grad(opt.params[0])
        u = opt.state[0].get("prev_update")
        lr0 = opt.lr
        opt.step([g])
        if u is not None:
            assert opt.lr == max(0.0, lr0 + float(g @ u))
        if opt.lr == 0.0:
            break
    assert opt.lr == 0.0


def test_sgd_hd_first_step_and_nonfinite():
    p = np.ones(3)
    opt = ref.RefSGDHD([p], lr=0.1, hypergrad_lr=10.0)
    opt.step([np.ones(3)])
    assert opt.lr == 0.1  # no previous direction yet
    opt.step([np.array([np.inf, 1.0, 1.0])])
    assert opt.lr == 0.1  # a non-finite hypergradient leaves lr unchanged
    opt2 = ref.RefSGDHD([p, p], lr=0.1, hypergrad_lr=1.0)
    opt2.step([np.ones(3), None])
    opt2.step([np.ones(3), np.ones(3)])  # the second tensor's first step adds nothing
    assert opt2.lr == pytest.approx(0.1 + 3.0)


def textbook_sgd_hd(x0, grads_fn, n_steps, lr, momentum, dampening, wd, nesterov, maximize, beta):
    """SGD-HD (Baydin et al. 2018, with SGD's momentum variants) on one flat float64 vector."""
    x = x0.copy()
    buf = u = None
    lrs = []
    for _ in range(n_steps):
        g = grads_fn(x)
        g = (-g if maximize else g) + wd * x
        if u is not None:
            lr = max(0.0, lr + beta * float(np.sum(g * u)))
        if momentum:
            buf = g if buf is None else momentum * buf + (1 - dampening) * g
            u = g + momentum * buf if nesterov else buf
        else:
            u = g
        x = x - lr * u
        lrs.append(lr)
    return x, np.array(lrs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
        {"momentum": 0.5, "dampening": 0.5, "maximize": True},
        # large enough that lr is clamped at 0 on the way
        {"momentum": 0.9, "hypergrad_lr": 5e-4},
    ],
)
def test_sgd_hd_textbook(kwargs):
    rng = np.random.default_rng(5)
    grad = quadratic(rng, 30)
    sign = -1.0 if kwargs.get("maximize") else 1.0
    x0 = rng.standard_normal(30)
    # two tensors: the optimizer sees the flat vector in two pieces
    kwargs = {"hypergrad_lr": 1e-4, **kwargs}
    opt = ref.RefSGDHD([x0[:10], x0[10:]], lr=0.01, **kwargs)
    lrs = []
    for _ in range(50):
        g = sign * grad(np.concatenate(opt.params))
        opt.step([g[:10], g[10:]])
        lrs.append(opt.lr)
    x, want_lrs = textbook_sgd_hd(
        x0,
        lambda x: sign * grad(x),
        50,
        0.01,
        kwargs.get("momentum", 0.0),
        kwargs.get("dampening", 0.0),
        kwargs.get("weight_decay", 0.0),
        kwargs.get("nesterov", False),
        kwargs.get("maximize", False),
        kwargs["hypergrad_lr"],
    )
    assert lrs[-1] != 0.01
    if kwargs["hypergrad_lr"] == 5e-4:
        assert min(lrs) == 0.0
    np.testing.assert_allclose(lrs, want_lrs, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(np.concatenate(opt.params), x, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_sgd_hd_zero_hypergrad_is_sgd(dtype):
    """With hypergrad_lr = 0 SGD-HD is bitwise SGD."""
    rng = np.random.default_rng(6)
    params = make_params(rng, 33, dtype)
    kw = {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}
    a, b = ref.RefSGD(params, **kw), ref.RefSGDHD(params, hypergrad_lr=0.0, **kw)
    for step in range(20):
        grads = make_grads(rng, params, step)
        a.step(grads)
        b.step(grads)
    assert all(np.array_equal(x, y) for x, y in zip(a.params, b.params))
    assert b.lr == 0.05


def textbook_adam_hd(x0, grads_fn, n_steps, lr, beta1, beta2, eps, wd, amsgrad, maximize, beta):
    """Adam-HD on one flat float64 vector, written with bias-corrected moments, the
    hypergradient taken from the previous parameter change."""
    x = x0.copy()
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    vmax = np.zeros_like(x)
    prev_x = prev_lr = None
    lrs = []
    for t in range(1, n_steps + 1):
        g = grads_fn(x)
        g = (-g if maximize else g) + wd * x
        if prev_x is not None:
            u = -(x - prev_x) / prev_lr  # previous update per unit lr
            lr = max(0.0, lr + beta * float(g @ u))
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        vmax = np.maximum(vmax, v)
        m_hat = m / (1 - beta1**t)
        v_hat = (vmax if amsgrad else v) / (1 - beta2**t)
        prev_x, prev_lr = x.copy(), lr
        x = x - lr * m_hat / (np.sqrt(v_hat) + eps)
        lrs.append(lr)
    return x, np.array(lrs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"amsgrad": True},
        {"weight_decay": 0.1, "maximize": True, "betas": (0.5, 0.9)},
    ],
)
def test_adam_hd_textbook(kwargs):
    rng = np.random.default_rng(7)
    grad = quadratic(rng, 30)
    sign = -1.0 if kwargs.get("maximize") else 1.0
    x0 = rng.standard_normal(30)
    opt = ref.RefAdamHD([x0[:10], x0[10:]], lr=0.01, hypergrad_lr=1e-3, **kwargs)
    lrs = []
    for _ in range(50):
        g = sign * grad(np.concatenate(opt.params))
        opt.step([g[:10], g[10:]])
        lrs.append(opt.lr)
    beta1, beta2 = kwargs.get("betas", (0.9, 0.999))
    x, want_lrs = textbook_adam_hd(
        x0,
        lambda x: sign * grad(x),
        50,
        0.01,
        beta1,
        beta2,
        1e-8,
        kwargs.get("weight_decay", 0.0),
        kwargs.get("amsgrad", False),
        kwargs.get("maximize", False),
        1e-3,
    )
    assert lrs[0] == 0.01  # the first step leaves lr unchanged
    assert lrs[-1] != 0.01
    np.testing.assert_allclose(lrs, want_lrs, rtol=1e-9)
    np.testing.assert_allclose(np.concatenate(opt.params), x, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_adam_hd_zero_hypergrad_is_adam(dtype):
    rng = np.random.default_rng(8)
    params = make_params(rng, 33, dtype)
    kw = {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}
    a, b = ref.RefAdam(params, **kw), ref.RefAdamHD(params, hypergrad_lr=0.0, **kw)
    for step in range(20):
        grads = make_grads(rng, params, step)
        a.step(grads)
        b.step(grads)
    assert all(np.array_equal(x, y) for x, y in zip(a.params, b.params))
    assert b.lr == 0.01


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_adam_hd_step_one_keeps_lr(dtype):
    rng = np.random.default_rng(9)
    params = make_params(rng, 10, dtype)
    opt = ref.RefAdamHD(params, lr=0.01, hypergrad_lr=1.0)
    opt.step([rng.standard_normal(p.shape).astype(dtype) for p in params])
    assert opt.lr == 0.01
    opt.step([rng.standard_normal(p.shape).astype(dtype) for p in params])
    assert opt.lr != 0.01 and opt.lr >= 0


# ------------------------------------------------------------------------ gradient utilities


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("norm_type", [1.0, 2.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(torch, dtype, norm_type, max_norm):
    rng = np.random.default_rng(10)
    grads = make_params(rng, 1000, dtype)
    keep = [g.copy() for g in grads]
    clipped, total = ref.clip_grad_norm(grads, max_norm, norm_type)
    assert all(np.array_equal(g, k) for g, k in zip(grads, keep))
    with default_dtype(torch, dtype):
        tps = [torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype) for g in grads]
        for tp, g in zip(tps, grads):
            tp.grad = torch.tensor(g)
        ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type, foreach=False)
    # torch accumulates the norm in the gradients' dtype, the reference in float64
    assert total == pytest.approx(ttotal.item(), rel=TOL[dtype])
    for c, tp, g in zip(clipped, tps, grads):
        assert c.dtype == dtype
        assert max_rel(c, tp.grad.numpy()) <= TOL[dtype]
        if max_norm > total:
            assert np.array_equal(c, g)


def test_clip_grad_norm_direct():
    grads = [np.array([3.0, 0.0], np.float32), np.array([[4.0]])]
    clipped, total = ref.clip_grad_norm(grads, 1.0)
    assert total == 5.0
    coef = 1.0 / (5.0 + 1e-6)
    assert np.array_equal(clipped[0], grads[0] * np.float32(coef))
    assert clipped[0].dtype == np.float32 and clipped[1].dtype == np.float64
    assert ref.clip_grad_norm(grads, 1.0, math.inf)[1] == 4.0
    assert ref.clip_grad_norm(grads, 1.0, 1.0)[1] == 7.0
    assert ref.clip_grad_norm([], 1.0) == ([], 0.0)
    nan_clipped, nan_total = ref.clip_grad_norm([np.array([np.nan, 1.0])], 1.0, math.inf)
    assert math.isnan(nan_total) and np.isnan(nan_clipped[0]).all()  # as torch
    with pytest.raises(ValueError):
        ref.clip_grad_norm(grads, 1.0, 3.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_clip_grad_value_matches_torch(torch, dtype):
    rng = np.random.default_rng(11)
    grads = make_params(rng, 1000, dtype)
    grads[0][:3] = [np.nan, np.inf, -np.inf]
    keep = [g.copy() for g in grads]
    clipped = ref.clip_grad_value(grads, 0.7)
    assert all(np.array_equal(g, k, equal_nan=True) for g, k in zip(grads, keep))
    tps = [torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype) for g in grads]
    for tp, g in zip(tps, grads):
        tp.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_(tps, 0.7, foreach=False)
    for c, tp in zip(clipped, tps):
        assert c.dtype == dtype
        assert np.array_equal(c, tp.grad.numpy(), equal_nan=True)
    assert np.isnan(clipped[0][0]) and clipped[0][1] == dtype(0.7)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_penalty(dtype):
    rng = np.random.default_rng(12)
    params = make_params(rng, 50, dtype)
    params[0][:4] = 0
    grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
    keep = [g.copy() for g in grads]
    l1, l2 = 0.3, 0.1
    new, value = ref.penalty(grads, params, l1, l2)
    assert all(np.array_equal(g, k) for g, k in zip(grads, keep))
    flat = np.concatenate([p.astype(np.float64).ravel() for p in params])
    assert value == pytest.approx(l1 * np.abs(flat).sum() + 0.5 * l2 * (flat**2).sum(), rel=1e-14)
    for n, g, p in zip(new, grads, params):
        assert n.dtype == dtype
        g64, p64 = g.astype(np.float64), p.astype(np.float64)
        want = g64 + l1 * np.sign(p64) + l2 * p64
        # two roundings in the dtype, each within eps/2 of the running magnitude
        bound = 2 * np.finfo(dtype).eps * (np.abs(g64) + l1 + l2 * np.abs(p64))
        assert np.all(np.abs(n - want) <= bound)
    assert np.array_equal(new[0][:4], grads[0][:4])  # sign(0) = 0 and 0 * l2
    same, zero = ref.penalty(grads, params, 0.0, 0.0)
    assert zero == 0.0 and all(np.array_equal(a, b) for a, b in zip(same, grads))
    only_l2, v2 = ref.penalty(grads, params, 0.0, l2)
    assert v2 == pytest.approx(0.5 * l2 * (flat**2).sum(), rel=1e-14)


# ------------------------------------------------------- two-step textbook optimizers (no torch)
# Each algorithm as the pseudo-code in the torch.optim documentation, for ONE scalar parameter in
# Python floats: ``textbook(theta, grads, **options)`` returns theta after every step.


def _tb_sgd(theta, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
            maximize=False):
    out, b = [], None
    for g in grads:
        g = (-g if maximize else g) + weight_decay * theta
        if momentum:
            b = g if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        theta = theta - lr * g
        out.append(theta)
    return out


def _tb_adagrad(theta, grads, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                eps=1e-10, maximize=False):
    out, state_sum = [], initial_accumulator_value
    for t, g in enumerate(grads, 1):
        g = (-g if maximize else g) + weight_decay * theta
        clr = lr / (1 + (t - 1) * lr_decay)
        state_sum += g * g
        theta = theta - clr * g / (math.sqrt(state_sum) + eps)
        out.append(theta)
    return out


def _tb_rmsprop(theta, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                centered=False, maximize=False):
    out, v, g_ave, b = [], 0.0, 0.0, 0.0
    for g in grads:
        g = (-g if maximize else g) + weight_decay * theta
        v = alpha * v + (1 - alpha) * g * g
        v_tilde = v
        if centered:
            g_ave = alpha * g_ave + (1 - alpha) * g
            v_tilde = v - g_ave * g_ave
        if momentum > 0:
            b = momentum * b + g / (math.sqrt(v_tilde) + eps)
            theta = theta - lr * b
        else:
            theta = theta - lr * g / (math.sqrt(v_tilde) + eps)
        out.append(theta)
    return out


def _tb_adadelta(theta, grads, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    out, v, u = [], 0.0, 0.0
    for g in grads:
        g = (-g if maximize else g) + weight_decay * theta
        v = rho * v + (1 - rho) * g * g
        dx = math.sqrt(u + eps) / math.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * dx * dx
        theta = theta - lr * dx
        out.append(theta)
    return out


def _tb_adam(theta, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
             maximize=False):
    (b1, b2), out, m, v, v_max = betas, [], 0.0, 0.0, 0.0
    for t, g in enumerate(grads, 1):
        g = (-g if maximize else g) + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_max = max(v_max, v)
        v_hat = (v_max if amsgrad else v) / (1 - b2**t)
        theta = theta - lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(theta)
    return out


def _tb_adamax(theta, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
               maximize=False):
    (b1, b2), out, m, u = betas, [], 0.0, 0.0
    for t, g in enumerate(grads, 1):
        g = (-g if maximize else g) + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        u = max(b2 * u, abs(g) + eps)  # the infinity norm
        theta = theta - lr * m / ((1 - b1**t) * u)
        out.append(theta)
    return out


def _tb_nadam(theta, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              momentum_decay=4e-3, maximize=False):
    (b1, b2), out, m, v = betas, [], 0.0, 0.0

    def mu(t):  # the momentum schedule mu_t
        return b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))

    for t, g in enumerate(grads, 1):
        g = (-g if maximize else g) + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        prod_t = math.prod(mu(i) for i in range(1, t + 1))
        m_hat = mu(t + 1) * m / (1 - prod_t * mu(t + 1)) + (1 - mu(t)) * g / (1 - prod_t)
        v_hat = v / (1 - b2**t)
        theta = theta - lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(theta)
    return out


def _tb_radam(theta, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              maximize=False):
    (b1, b2), out, m, v = betas, [], 0.0, 0.0
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(grads, 1):
        g = (-g if maximize else g) + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho_t > 5:
            r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                          / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            v_hat = v / (1 - b2**t)
            theta = theta - lr * r * m_hat / (math.sqrt(v_hat) + eps / math.sqrt(1 - b2**t))
        else:
            theta = theta - lr * m_hat
        out.append(theta)
    return out


TEXTBOOK = {
    "SGD": _tb_sgd, "Adagrad": _tb_adagrad, "RMSprop": _tb_rmsprop, "Adadelta": _tb_adadelta,
    "Adam": _tb_adam, "Adamax": _tb_adamax, "NAdam": _tb_nadam, "RAdam": _tb_radam,
}
TEXTBOOK_CASES = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.5, "dampening": 0.3, "nesterov": False, "maximize": True}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.1, "initial_accumulator_value": 0.75}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.5, "initial_accumulator_value": 0.2,
                 "weight_decay": 0.1, "eps": 1e-3}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.8, "centered": True}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.6, "momentum": 0.5, "centered": True,
                 "weight_decay": 0.1, "maximize": True}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.6, "eps": 1e-3, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.1, "betas": (0.8, 0.9), "amsgrad": True}),
    ("Adam", {"lr": 0.1, "betas": (0.5, 0.6), "amsgrad": True, "weight_decay": 0.1}),
    ("Adamax", {"lr": 0.1, "betas": (0.8, 0.5)}),
    ("Adamax", {"lr": 0.1, "betas": (0.8, 0.9), "eps": 0.1, "weight_decay": 0.1}),
    ("NAdam", {"lr": 0.1, "betas": (0.8, 0.9)}),
    ("NAdam", {"lr": 0.1, "betas": (0.8, 0.9), "momentum_decay": 0.5, "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.1, "betas": (0.8, 0.9)}),  # two steps: both unrectified (rho_t <= 5)
]
TEXTBOOK_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(TEXTBOOK_CASES)]
# three independent scalars: the parameter's elements and their two gradients. The second
# gradient of element 1 is small (AMSGrad keeps the larger first v; Adamax's max keeps the decayed
# u) and of element 2 changes sign (momentum, centring and Nesterov terms all matter).
TEXTBOOK_THETA = [1.0, -0.5, 2.0]
TEXTBOOK_GRADS = [[0.5, 1.5, -0.8], [0.75, 0.1, 0.6]]


def textbook_trajectory(name, kwargs):
    """Parameter values after steps 1 and 2, shape (2, 3), from the scalar textbook code."""
    per_elem = [TEXTBOOK[name](th, [g[k] for g in TEXTBOOK_GRADS], **kwargs)
                for k, th in enumerate(TEXTBOOK_THETA)]
    return np.array(per_elem).T


@pytest.mark.parametrize(("name", "kwargs"), TEXTBOOK_CASES, ids=TEXTBOOK_IDS)
def test_two_steps_match_textbook(name, kwargs):
    want = textbook_trajectory(name, kwargs)
    opt = getattr(ref, "Ref" + name)([np.array(TEXTBOOK_THETA)], **kwargs)
    for k, g in enumerate(TEXTBOOK_GRADS):
        opt.step([np.array(g)])
        assert max_rel(opt.params[0], want[k]) <= 1e-14, (k, opt.params[0], want[k])
    assert np.all(np.abs(want[1] - want[0]) > 1e-4)  # both steps move every element


@pytest.mark.parametrize("kwargs", [{"lr": 0.05, "betas": (0.8, 0.9)},
                                    {"lr": 0.05, "betas": (0.5, 0.9), "weight_decay": 0.1,
                                     "maximize": True}])
def test_radam_matches_textbook_through_rectification(kwargs):
    """RAdam changes form at rho_t > 5 (step 6 for beta2 = 0.9): 12 steps cover both."""
    rng = np.random.default_rng(3)
    grads = rng.standard_normal((12, 3))
    opt = ref.RefRAdam([np.array(TEXTBOOK_THETA)], **kwargs)
    want = np.array([_tb_radam(th, list(grads[:, k]), **kwargs)
                     for k, th in enumerate(TEXTBOOK_THETA)]).T
    for t, g in enumerate(grads):
        opt.step([g.copy()])
        assert max_rel(opt.params[0], want[t]) <= 1e-13, (t, opt.params[0], want[t])


def test_textbook_values_by_hand():
    """The scalar textbook code on numbers worked out by hand."""
    # SGD, Nesterov: b = 0.5, theta = 1 - 0.1 (0.5 + 0.9 * 0.5) = 0.905; then
    # b = 0.45 - 0.25 = 0.2, theta = 0.905 - 0.1 (-0.25 + 0.18) = 0.912
    assert _tb_sgd(1.0, [0.5, -0.25], 0.1, 0.9, nesterov=True) == pytest.approx([0.905, 0.912],
                                                                                 rel=1e-15)
    # SGD, dampening 0.3: b = 0.5 (no dampening on the first step), theta = 0.95; then
    # b = 0.45 + 0.7 * (-0.25) = 0.275, theta = 0.9225
    assert _tb_sgd(1.0, [0.5, -0.25], 0.1, 0.9, 0.3) == pytest.approx([0.95, 0.9225], rel=1e-15)
    # Adagrad, accumulator 0.75: sum = 1, theta = 1 - 0.1 * 0.5 = 0.95; then the rate is
    # 0.1 / (1 + 0.1), sum = 1 + 0.5625 = 1.25**2, theta = 0.95 - (0.1 / 1.1) * 0.75 / 1.25
    assert _tb_adagrad(1.0, [0.5, 0.75], 0.1, 0.1, initial_accumulator_value=0.75, eps=0.0) == \
        pytest.approx([0.95, 0.95 - 0.06 / 1.1], rel=1e-15)
    # Adamax, beta1 0.5, beta2 0.5, eps 0: m = 0.25, u = 0.5, theta = 1 - 0.1 * 0.25 / (0.5 * 0.5)
    # = 0.9; then m = 0.125 + 0.05 = 0.175, u = max(0.25, 0.1) = 0.25 (the decayed old maximum),
    # theta = 0.9 - 0.1 * 0.175 / (0.75 * 0.25)
    assert _tb_adamax(1.0, [0.5, 0.1], 0.1, (0.5, 0.5), eps=0.0) == \
        pytest.approx([0.9, 0.9 - 0.0175 / 0.1875], rel=1e-15)
    # Adam, AMSGrad, betas 0.5: m = 0.25, v = 0.125, theta = 1 - 0.1 (0.5 / sqrt(0.25)) = 0.9;
    # then g = 0: m = 0.125, v = 0.0625 but v_max = 0.125, m_hat = 0.125 / 0.75,
    # v_hat = 0.125 / 0.75, theta = 0.9 - 0.1 * sqrt(0.125 / 0.75)
    assert _tb_adam(1.0, [0.5, 0.0], 0.1, (0.5, 0.5), eps=0.0, amsgrad=True) == \
        pytest.approx([0.9, 0.9 - 0.1 * math.sqrt(0.125 / 0.75)], rel=1e-15)
    # NAdam, first step, momentum_decay 0: mu = mu_next = 0.5 beta1 = 0.4 (beta1 0.8),
    # m = 0.2 g, v = 0.1 g^2, v_hat = g^2, m_hat = 0.4 * 0.2 g / (1 - 0.16) + 0.6 g / 0.6
    # = (0.08 / 0.84 + 1) g, theta = 1 - 0.1 (0.08 / 0.84 + 1)
    assert _tb_nadam(1.0, [0.5], 0.1, (0.8, 0.9), eps=0.0, momentum_decay=0.0)[0] == \
        pytest.approx(1 - 0.1 * (0.08 / 0.84 + 1), rel=1e-15)
    # Adadelta, first step, rho 0.5, eps 0.01: v = 0.5 * 0.25, dx = sqrt(0.01) / sqrt(0.135) g
    assert _tb_adadelta(1.0, [0.5], rho=0.5, eps=0.01)[0] == \
        pytest.approx(1 - 0.1 / math.sqrt(0.135) * 0.5, rel=1e-15)
    # centered RMSprop, first step, alpha 0.5, momentum 0.9: v = 0.125, g_ave = 0.25,
    # v_tilde = 0.125 - 0.0625 = 0.0625, b = 0.5 / 0.25 = 2, theta = 1 - 0.01 * 2
    assert _tb_rmsprop(1.0, [0.5], 0.01, 0.5, eps=0.0, momentum=0.9, centered=True)[0] == \
        pytest.approx(0.98, rel=1e-15)
