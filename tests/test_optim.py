"""nesy.optim against the NumPy references (tests/reference.py), PyTorch when importable,
across thread counts and SIMD levels, with state round trips and bad input.

Mirrors python/nesy/optim/ and rust/core/src/optim/.
"""

from __future__ import annotations

import copy
import json
import multiprocessing as mp
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reference import (
    TEXTBOOK_CASES,
    TEXTBOOK_GRADS,
    TEXTBOOK_IDS,
    TEXTBOOK_THETA,
    textbook_trajectory,
)

import nesy
from nesy import _core, optim

import reference as ref

DTYPES = [np.float32, np.float64]
SIZES = [0, 1, 7, 1023]

# (nesy class, reference class, options) — several option sets per optimizer.
CONFIGS = [
    (optim.SGD, ref.RefSGD, dict(lr=0.1)),
    (optim.SGD, ref.RefSGD, dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    (optim.SGD, ref.RefSGD, dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    (optim.Adagrad, ref.RefAdagrad, dict(lr=0.1)),
    (optim.Adagrad, ref.RefAdagrad,
     dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5, maximize=True)),
    (optim.RMSprop, ref.RMSprop if hasattr(ref, "RMSprop") else ref.RefRMSprop, dict(lr=0.01)),
    (optim.RMSprop, ref.RefRMSprop, dict(lr=0.01, alpha=0.9, momentum=0.9, weight_decay=0.1)),
    (optim.RMSprop, ref.RefRMSprop, dict(lr=0.01, centered=True, momentum=0.5, maximize=True)),
    (optim.RMSprop, ref.RefRMSprop, dict(lr=0.01, centered=True)),
    (optim.Adadelta, ref.RefAdadelta, dict()),
    (optim.Adadelta, ref.RefAdadelta, dict(lr=0.5, rho=0.95, weight_decay=0.1, maximize=True)),
    (optim.Adam, ref.RefAdam, dict(lr=0.01)),
    (optim.Adam, ref.RefAdam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    (optim.Adam, ref.RefAdam, dict(lr=0.01, betas=(0.6, 0.9), maximize=True)),
    (optim.AdamW, ref.RefAdamW, dict(lr=0.01)),
    (optim.AdamW, ref.RefAdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    (optim.Adamax, ref.RefAdamax, dict(lr=0.01)),
    (optim.Adamax, ref.RefAdamax, dict(lr=0.01, weight_decay=0.1, maximize=True)),
    (optim.NAdam, ref.RefNAdam, dict(lr=0.01)),
    (optim.NAdam, ref.RefNAdam, dict(lr=0.01, weight_decay=0.1)),
    (optim.NAdam, ref.RefNAdam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    (optim.RAdam, ref.RefRAdam, dict(lr=0.01)),
    (optim.RAdam, ref.RefRAdam, dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1, maximize=True)),
    (optim.RAdam, ref.RefRAdam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    (optim.Lion, ref.RefLion, dict(lr=1e-3)),
    (optim.Lion, ref.RefLion, dict(lr=1e-3, weight_decay=0.1, maximize=True)),
    (optim.SGDHD, ref.RefSGDHD, dict(lr=0.01, hypergrad_lr=1e-3)),
    (optim.SGDHD, ref.RefSGDHD, dict(lr=0.01, momentum=0.9, nesterov=True, hypergrad_lr=1e-3)),
    (optim.AdamHD, ref.RefAdamHD, dict(lr=0.01, hypergrad_lr=1e-4)),
    (optim.AdamHD, ref.RefAdamHD, dict(lr=0.01, weight_decay=0.1, amsgrad=True, hypergrad_lr=1e-4)),
]
IDS = [f"{c[0].__name__}-{i}" for i, c in enumerate(CONFIGS)]

# Same op order as the references: any difference is a few roundings.
TOL = {np.float32: 2e-6, np.float64: 1e-13}


def _problem(dtype, sizes, seed=0, steps=50):
    """Parameters and, lazily, ``steps`` lists of fresh random gradients."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(dtype) for n in sizes]

    def grads():
        for _ in range(steps):
            yield [rng.standard_normal(n).astype(dtype) for n in sizes]

    return params, grads()


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a.astype(np.float64) - b)) / max(np.max(np.abs(b)), 1e-30))


def _run_pair(cls, refcls, opts, dtype, sizes, steps=50, seed=0):
    params, grads = _problem(dtype, sizes, seed, steps)
    mine = [p.copy() for p in params]
    opt = cls(mine, **opts)
    r = refcls(params, **opts)
    for g in grads:
        opt.step(g)
        r.step(g)
    return opt, mine, r


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls,refcls,opts", CONFIGS, ids=IDS)
def test_matches_numpy_reference(cls, refcls, opts, dtype):
    opt, mine, r = _run_pair(cls, refcls, opts, dtype, SIZES)
    for a, b in zip(mine, r.params):
        assert a.dtype == dtype
        assert _rel(a, b) <= TOL[dtype]
    if hasattr(r, "hypergrad_lr"):
        assert opt.param_groups[0]["lr"] == pytest.approx(r.lr, rel=1e-6 if dtype == np.float32
                                                          else 1e-12)
        assert opt.param_groups[0]["lr"] != opts["lr"]


@pytest.mark.parametrize("cls,refcls,opts", [CONFIGS[i] for i in (1, 3, 6, 10, 12, 16, 19, 22,
                                                                   24, 26)])
def test_matches_numpy_reference_on_a_million_parameters(cls, refcls, opts):
    opt, mine, r = _run_pair(cls, refcls, opts, np.float32, [10**6], steps=50)
    assert _rel(mine[0], r.params[0]) <= TOL[np.float32]


OPTION_SPACE = {
    optim.SGD: (ref.RefSGD, dict(lr=st.floats(0, 1), momentum=st.floats(0, 0.99),
                                  dampening=st.floats(0, 1), weight_decay=st.floats(0, 0.5),
                                  maximize=st.booleans())),
    optim.Adam: (ref.RefAdam, dict(lr=st.floats(0, 0.1), betas=st.tuples(st.floats(0, 0.99),
                                                                           st.floats(0, 0.999)),
                                    eps=st.floats(1e-10, 1e-3), weight_decay=st.floats(0, 0.5),
                                    amsgrad=st.booleans(), maximize=st.booleans())),
    optim.RMSprop: (ref.RefRMSprop, dict(lr=st.floats(0, 0.1), alpha=st.floats(0, 0.999),
                                          momentum=st.floats(0, 0.99), centered=st.booleans(),
                                          weight_decay=st.floats(0, 0.5))),
    optim.Adagrad: (ref.RefAdagrad, dict(lr=st.floats(0, 1), lr_decay=st.floats(0, 0.1),
                                          initial_accumulator_value=st.floats(0, 1))),
    optim.NAdam: (ref.RefNAdam, dict(lr=st.floats(0, 0.1), momentum_decay=st.floats(0, 0.1),
                                      weight_decay=st.floats(0, 0.5),
                                      decoupled_weight_decay=st.booleans())),
    optim.RAdam: (ref.RefRAdam, dict(lr=st.floats(0, 0.1), betas=st.tuples(st.floats(0, 0.99),
                                                                             st.floats(0, 0.999)),
                                      eps=st.floats(1e-10, 1e-3), weight_decay=st.floats(0, 0.5),
                                      decoupled_weight_decay=st.booleans(),
                                      maximize=st.booleans())),
    optim.Lion: (ref.RefLion, dict(lr=st.floats(0, 0.1), betas=st.tuples(st.floats(0, 0.99),
                                                                           st.floats(0, 0.999)),
                                    weight_decay=st.floats(0, 0.5))),
    optim.AdamW: (ref.RefAdamW, dict(lr=st.floats(0, 0.1), weight_decay=st.floats(0, 0.5),
                                      amsgrad=st.booleans(), maximize=st.booleans())),
    optim.Adadelta: (ref.RefAdadelta, dict(lr=st.floats(0, 2), rho=st.floats(0, 1),
                                            eps=st.floats(1e-8, 1e-3),
                                            weight_decay=st.floats(0, 0.5))),
    optim.Adamax: (ref.RefAdamax, dict(lr=st.floats(0, 0.1), betas=st.tuples(st.floats(0, 0.99),
                                                                               st.floats(0, 0.999)),
                                        weight_decay=st.floats(0, 0.5), maximize=st.booleans())),
    optim.SGDHD: (ref.RefSGDHD, dict(lr=st.floats(0, 0.1), momentum=st.floats(0, 0.99),
                                      weight_decay=st.floats(0, 0.5),
                                      hypergrad_lr=st.floats(0, 1e-2))),
    optim.AdamHD: (ref.RefAdamHD, dict(lr=st.floats(0, 0.1), amsgrad=st.booleans(),
                                        weight_decay=st.floats(0, 0.5),
                                        hypergrad_lr=st.floats(0, 1e-3))),
}


@pytest.mark.parametrize("cls", list(OPTION_SPACE), ids=lambda c: c.__name__)
def test_random_hyper_parameters_match_reference(cls):
    refcls, space = OPTION_SPACE[cls]

    @settings(max_examples=15, deadline=None)
    @given(opts=st.fixed_dictionaries(space), dtype=st.sampled_from(DTYPES),
           size=st.integers(0, 300), seed=st.integers(0, 2**16))
    def check(opts, dtype, size, seed):
        if opts.get("centered") and opts.get("alpha", 0.99) < 0.5:
            opts["alpha"] = 0.5  # keeps sq - ga^2 away from cancellation-driven NaN noise
        _, mine, r = _run_pair(cls, refcls, opts, dtype, [size], steps=20, seed=seed)
        a, b = mine[0], r.params[0]
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_array_equal(np.isinf(a), np.isinf(b))
        inf = np.isinf(b)
        np.testing.assert_array_equal(np.sign(a[inf]), np.sign(b[inf]))
        fin = np.isfinite(b)
        assert _rel(a[fin], b[fin]) <= 10 * TOL[dtype]

    check()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "opts"), TEXTBOOK_CASES, ids=TEXTBOOK_IDS)
def test_two_steps_match_textbook(name, opts, dtype):
    """Two steps on three scalars against the torch.optim pseudo-code written out in
    test_reference.py (no torch needed): centred RMSprop with momentum, Adadelta, NAdam's
    mu_product schedule, Adamax's infinity norm, Adagrad's lr_decay and initial accumulator,
    SGD's Nesterov and dampening, Adam's AMSGrad."""
    want = textbook_trajectory(name, opts)
    p = np.array(TEXTBOOK_THETA, dtype)
    opt = getattr(optim, name)([p], **opts)
    for k, g in enumerate(TEXTBOOK_GRADS):
        opt.step([np.array(g, dtype)])
        assert p.dtype == dtype
        assert _rel(p, want[k]) <= (1e-13 if dtype == np.float64 else 1e-6), (k, p, want[k])
    if name == "SGD" and opts.get("dampening"):
        with pytest.raises(ValueError, match="nesterov"):  # as torch
            optim.SGD([p], **{**opts, "nesterov": True})

# ----------------------------------------------------------------------------- torch parity
TORCH_CONFIGS = [c for c in CONFIGS if c[0] not in (optim.Lion, optim.SGDHD, optim.AdamHD)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls,refcls,opts", TORCH_CONFIGS,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(TORCH_CONFIGS)])
def test_matches_torch_after_100_steps(cls, refcls, opts, dtype):
    torch = pytest.importorskip("torch")
    tcls = getattr(torch.optim, cls.__name__)
    params, grads = _problem(dtype, [7, 1023], seed=1, steps=100)
    mine = [p.copy() for p in params]
    opt = cls(mine, **opts)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    try:
        ts = [torch.tensor(p) for p in params]
        topt = tcls(ts, foreach=False, **opts)
        for g in grads:
            opt.step(g)
            for t, gi in zip(ts, g):
                t.grad = torch.tensor(gi)
            topt.step()
    finally:
        torch.set_default_dtype(old)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, t in zip(mine, ts):
        assert _rel(a, t.numpy()) <= tol


def test_updates_torch_tensors_in_place_through_numpy_views():
    torch = pytest.importorskip("torch")
    w = torch.randn(5, 3)
    before = w.clone()
    opt = optim.Adam([w.numpy()], lr=0.1)
    opt.step([torch.ones(5, 3).numpy()])
    assert not torch.equal(w, before)  # the tensor itself changed
    assert torch.allclose(w, before - 0.1, atol=1e-6)  # Adam's first step moves by lr


# ----------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("cls,refcls,opts", [CONFIGS[i] for i in (2, 7, 12, 20, 24, 26)],
                         ids=lambda x: getattr(x, "__name__", ""))
def test_bitwise_identical_for_any_thread_count_and_simd_level(cls, refcls, opts):
    results = []
    threads_before = nesy.get_num_threads()
    try:
        for threads in (1, 2, 3):
            nesy.set_num_threads(threads)
            for level in _core.simd_levels():
                params, grads = _problem(np.float32, [300_000, 5, 70_001], seed=3, steps=3)
                opt = cls(params, **opts)
                opt._simd = level
                for g in grads:
                    opt.step(g)
                results.append((threads, level, params, opt.param_groups[0]["lr"]))
    finally:
        nesy.set_num_threads(threads_before)
    _, _, base, lr = results[0]
    for threads, level, params, lr2 in results[1:]:
        assert lr2 == lr, (threads, level)
        for a, b in zip(params, base):
            assert np.array_equal(a, b), (threads, level)


# ----------------------------------------------------------------------------- API
def test_param_groups_have_their_own_options_and_lr_is_mutable():
    a, b = np.ones(4), np.ones(4)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    opt.step([np.ones(4), np.ones(4)])
    assert np.allclose(a, 0.9) and np.allclose(b, 0.5)
    opt.param_groups[0]["lr"] = 0.2
    opt.step([np.ones(4), np.ones(4)])
    assert np.allclose(a, 0.7) and np.allclose(b, 0.0)


def test_add_param_group_and_options_turned_on_later():
    a = np.ones(3, np.float32)
    opt = optim.Adam([a], lr=0.1)
    opt.step([np.ones(3, np.float32)])
    b = np.ones(2)
    opt.add_param_group({"params": [b], "lr": 0.01})
    opt.param_groups[0]["amsgrad"] = True
    r = ref.RefAdam([np.ones(2)], lr=0.01)
    opt.step([np.ones(3, np.float32), np.full(2, 0.5)])
    r.step([np.full(2, 0.5)])
    np.testing.assert_array_equal(b, r.params[0])
    assert opt.state_dict()["state"][0]["step"] == 2


def test_none_gradients_skip_the_parameter_and_its_step_count():
    a, b = np.ones(3), np.ones(3)
    opt = optim.Adam([a, b], lr=0.1)
    opt.step([np.ones(3), None])
    assert np.array_equal(b, np.ones(3)) and not np.array_equal(a, np.ones(3))
    sd = opt.state_dict()
    assert sd["state"][0]["step"] == 1 and 1 not in sd["state"]


def test_mixed_dtypes_keep_their_dtype():
    a, b = np.ones(5, np.float32), np.ones(5, np.float64)
    opt = optim.RMSprop([a, b], lr=0.01, momentum=0.9)
    ra = ref.RefRMSprop([a.copy(), b.copy()], lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(10):
        g = [rng.standard_normal(5).astype(np.float32), rng.standard_normal(5)]
        opt.step(g)
        ra.step(g)
    assert a.dtype == np.float32 and b.dtype == np.float64
    assert _rel(a, ra.params[0]) <= TOL[np.float32] and _rel(b, ra.params[1]) <= TOL[np.float64]


@pytest.mark.parametrize("cls,refcls,opts", CONFIGS, ids=IDS)
def test_state_dict_round_trips_bit_identically_through_npz(cls, refcls, opts, tmp_path):
    params, grads = _problem(np.float32, [5, 0, 33], steps=20)
    grads = list(grads)
    p1 = [p.copy() for p in params]
    o1 = cls(p1, **opts)
    for g in grads[:10]:
        o1.step(g)
    path = tmp_path / "opt.npz"
    optim.save_state_dict(o1.state_dict(), path)
    p2 = [p.copy() for p in p1]
    o2 = cls(p2, **opts)
    o2.load_state_dict(optim.load_state_dict_file(path))
    for g in grads[10:]:
        o1.step(g)
        o2.step(g)
    for a, b in zip(p1, p2):
        assert np.array_equal(a, b)
    assert o1.param_groups[0]["lr"] == o2.param_groups[0]["lr"]
    assert not list(tmp_path.glob(".tmp-*"))  # the atomic write left no temp file


def test_zero_state_restarts_from_scratch():
    a = np.ones(4)
    opt = optim.Adam([a], lr=0.1)
    opt.step([np.ones(4)])
    opt.zero_state()
    b = np.ones(4)
    fresh = optim.Adam([b], lr=0.1)
    a[:] = 1.0
    opt.step([np.full(4, 0.3)])
    fresh.step([np.full(4, 0.3)])
    assert np.array_equal(a, b)


def test_check_finite_guard_raises_and_changes_nothing():
    a = np.ones(4)
    opt = optim.Adam([a], lr=0.1)
    with pytest.raises(FloatingPointError):
        opt.step([np.array([1.0, np.nan, 1.0, 1.0])], check_finite=True)
    assert np.array_equal(a, np.ones(4))
    # Without the guard NaN propagates, as in torch.
    opt.step([np.array([1.0, np.nan, 1.0, 1.0])])
    assert np.isnan(a[1]) and np.isfinite(a[0])


# ----------------------------------------------------------------------------- bad input
def _unchanged_after(exc, fn, arrays):
    before = [x.copy() for x in arrays]
    with pytest.raises(exc) as info:
        fn()
    for x, y in zip(arrays, before):
        assert np.array_equal(x, y, equal_nan=True)
    return str(info.value)


def test_bad_gradients_raise_and_change_nothing():
    a, b = np.ones(3, np.float32), np.ones((2, 2))
    opt = optim.Adam([a, b], lr=0.1)
    good = [np.ones(3, np.float32), np.ones((2, 2))]
    msg = _unchanged_after(ValueError, lambda: opt.step(good[:1]), [a, b])
    assert "grads" in msg
    msg = _unchanged_after(ValueError, lambda: opt.step([good[0], np.ones(4)]), [a, b])
    assert "grads[1]" in msg and "(4,)" in msg and "(2, 2)" in msg
    msg = _unchanged_after(TypeError, lambda: opt.step([np.ones(3), good[1]]), [a, b])
    assert "grads[0]" in msg and "float32" in msg
    msg = _unchanged_after(ValueError, lambda: opt.step([good[0], np.ones((2, 4))[:, ::2]]),
                           [a, b])
    assert "grads[1]" in msg and "contiguous" in msg
    msg = _unchanged_after(TypeError, lambda: opt.step([good[0], [[1.0, 1.0], [1.0, 1.0]]]),
                           [a, b])
    assert "grads[1]" in msg
    # A parameter passed as its own gradient would alias: refused.
    msg = _unchanged_after(ValueError, lambda: opt.step([a, good[1]]), [a, b])
    assert "params[0]" in msg
    assert opt.state_dict()["state"] == {}


def test_bad_parameters_are_refused_at_construction():
    with pytest.raises(TypeError, match="params"):
        optim.Adam(np.ones(3))
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(TypeError, match="float32 or float64"):
        optim.Adam([np.ones(3, np.int64)])
    with pytest.raises(TypeError, match="numpy array"):
        optim.Adam([[1.0, 2.0]])
    with pytest.raises(ValueError, match="contiguous"):
        optim.Adam([np.ones((3, 4))[:, ::2]])
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        optim.Adam([ro])
    a = np.ones(3)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([{"params": [a]}, {"params": [a]}])


@pytest.mark.parametrize("cls,kwargs,needle", [
    (optim.Adam, dict(lr=-1.0), "lr"),
    (optim.Adam, dict(betas=(1.0, 0.999)), "beta1"),
    (optim.Adam, dict(betas=(0.9, -0.1)), "beta2"),
    (optim.Adam, dict(betas=(0.9,)), "betas"),
    (optim.Adam, dict(eps=float("nan")), "eps"),
    (optim.SGD, dict(momentum=-0.5), "momentum"),
    (optim.SGD, dict(nesterov=True), "nesterov"),
    (optim.RMSprop, dict(weight_decay=-1.0), "weight_decay"),
    (optim.Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (optim.Adadelta, dict(rho=1.5), "rho"),
    (optim.SGDHD, dict(hypergrad_lr=-1.0), "hypergrad_lr"),
])
def test_bad_hyper_parameters_name_the_option(cls, kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        cls([np.ones(3)], **kwargs)


def test_unknown_group_option_and_bad_lr_set_later():
    with pytest.raises(ValueError, match="unknown option"):
        optim.Adam([{"params": [np.ones(2)], "momentum": 0.9}])
    with pytest.raises(TypeError):
        optim.Adam([np.ones(2)], momentum=0.9)  # type: ignore[call-arg]
    a = np.ones(2)
    opt = optim.Adam([a])
    opt.param_groups[0]["lr"] = -0.1
    msg = _unchanged_after(ValueError, lambda: opt.step([np.ones(2)]), [a])
    assert "param_groups[0]['lr']" in msg


def test_load_state_dict_rejects_mismatches_without_changing_anything():
    a = np.ones(3)
    opt = optim.Adam([a], lr=0.1)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    bad = {"state": {0: {**sd["state"][0], "exp_avg": np.ones(4)}},
           "param_groups": sd["param_groups"]}
    before = opt.state_dict()
    a_before = a.copy()
    for bad_sd, needle in [(bad, "exp_avg"),
                           ({"state": {}, "param_groups": sd["param_groups"] * 2}, "groups")]:
        with pytest.raises(ValueError, match=needle):
            opt.load_state_dict(bad_sd)
        after = opt.state_dict()
        assert after["param_groups"] == before["param_groups"]
        assert set(after["state"]) == set(before["state"])
        assert set(after["state"][0]) == set(before["state"][0])
        for k, v in before["state"][0].items():
            assert np.array_equal(after["state"][0][k], v), k
        assert np.array_equal(a, a_before) and opt.param_groups[0]["params"][0] is a


# ----------------------------------------------------------------------------- gradient utils
def test_gradient_utilities_match_reference():
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal(n).astype(d) * 3 for n, d in
             [(7, np.float32), (0, np.float64), (40_000, np.float32), (1023, np.float64)]]
    for norm_type in (1.0, 2.0, np.inf):
        want, total = ref.clip_grad_norm(grads, 1.5, norm_type)
        got = [g.copy() for g in grads]
        norm = optim.clip_grad_norm(got, 1.5, norm_type)
        assert norm == pytest.approx(total, rel=1e-12)
        for a, b in zip(got, want):
            assert _rel(a, b) <= TOL[a.dtype.type]
        assert optim.grad_norm(got, norm_type) == pytest.approx(min(total, 1.5), rel=1e-5)
    got = [g.copy() for g in grads]
    optim.clip_grad_value(got, 0.5)
    for a, b in zip(got, ref.clip_grad_value(grads, 0.5)):
        assert np.array_equal(a, b)
    params = [rng.standard_normal(g.shape).astype(g.dtype) for g in grads]
    got = [g.copy() for g in grads]
    value = optim.penalty(got, params, l1=0.01, l2=0.1)
    want, wvalue = ref.penalty(grads, params, 0.01, 0.1)
    assert value == pytest.approx(wvalue, rel=1e-12)
    for a, b in zip(got, want):
        assert np.array_equal(a, b)
    ps = [p.copy() for p in params]
    optim.decay(ps, lr=0.1, weight_decay=0.5)
    for a, b in zip(ps, params):
        assert np.array_equal(a, b * b.dtype.type(0.95))
    assert optim.all_finite(grads)
    assert not optim.all_finite([*grads, np.array([np.inf])])


def test_norm_of_nothing_is_plus_zero():
    for norm_type in (1, 2, np.inf):
        n = optim.grad_norm([], norm_type)
        assert n == 0.0 and np.copysign(1.0, n) == 1.0, (norm_type, n)
        assert np.copysign(1.0, optim.clip_grad_norm([np.zeros(0)], 1.0, norm_type)) == 1.0


def test_clip_grad_norm_non_finite_guard():
    g = [np.array([1.0, np.nan])]
    with pytest.raises(ValueError, match="non-finite"):
        optim.clip_grad_norm(g, 1.0, error_if_nonfinite=True)
    assert g[0][0] == 1.0
    assert np.isnan(optim.clip_grad_norm(g, 1.0))
    with pytest.raises(ValueError, match="norm_type"):
        optim.clip_grad_norm([np.ones(2)], 1.0, norm_type=3)
    with pytest.raises(TypeError, match=r"grads\[0\]"):
        optim.clip_grad_norm([np.ones(2, np.int32)], 1.0)



class _Sub(np.ndarray):
    """An ndarray subclass: accepted wherever a plain array is."""


def test_dtype_is_checked_by_number_and_byte_order():
    """The bindings' own dtype check (not rust-numpy's cast) accepts subclasses, refuses
    byte-swapped floats and tells float32 from float64."""
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(5).astype(np.float32)
    g0 = rng.standard_normal(5).astype(np.float32)
    plain, sub = p0.copy(), p0.copy().view(_Sub)
    optim.SGD([plain], lr=0.1, momentum=0.9).step([g0])
    optim.SGD([sub], lr=0.1, momentum=0.9).step([g0.view(_Sub)])
    assert np.array_equal(plain, np.asarray(sub))
    for bad in (g0.astype(">f4"), g0.astype(np.float64), g0.astype(np.float16)):
        a = p0.copy()
        opt = optim.SGD([a], lr=0.1)
        msg = _unchanged_after(TypeError, lambda o=opt, g=bad: o.step([g]), [a])
        assert "grads[0]" in msg
    with pytest.raises(TypeError, match=r"grads\[1\]"):
        optim.clip_grad_norm([g0.copy(), g0.astype(">f8")], 1.0)
    with pytest.raises(TypeError, match=r"params\[0\]"):
        _core.optim_step("sgd", [p0.astype(">f4")], [g0], np.zeros(1, np.int64),
                         np.zeros(1, np.int64), np.zeros(1), np.array([[0.1] + [0.0] * 5]),
                         [np.zeros(0, np.float32)], [np.zeros(0)])



def test_options_of_the_wrong_type_name_group_and_option():
    a = np.ones(3)
    for opts, needle in [(dict(lr="0.1"), r"param_groups\[0\]\['lr'\]"),
                         (dict(lr=None), r"\['lr'\]"),
                         (dict(amsgrad="yes"), r"\['amsgrad'\]"),
                         (dict(betas=(0.9, "x")), r"\['betas'\]")]:
        with pytest.raises(TypeError, match=needle):
            optim.Adam([a], **opts)
    opt = optim.Adam([{"params": [a]}, {"params": [np.ones(2)], "lr": 0.5}])
    opt.param_groups[1]["eps"] = "1e-8"
    msg = _unchanged_after(TypeError, lambda: opt.step([np.ones(3), np.ones(2)]), [a])
    assert "param_groups[1]['eps']" in msg
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['initial_accumulator_value'\]"):
        optim.Adagrad([{"params": [np.ones(2)]},
                       {"params": [np.ones(2)], "initial_accumulator_value": -1.0}])


def test_overlapping_parameters_are_refused_when_added():
    buf = np.zeros(10)
    with pytest.raises(ValueError, match=r"\['params'\]\[1\]: shares memory"):
        optim.SGD([buf[:6], buf[4:]], lr=0.1)
    opt = optim.SGD([buf[:5]], lr=0.1)
    with pytest.raises(ValueError, match="shares memory with parameter 0"):
        opt.add_param_group({"params": [buf[3:]]})
    opt.add_param_group({"params": [buf[5:]]})  # disjoint views of one buffer are fine
    opt.step([np.ones(5), np.ones(5)])
    assert np.array_equal(buf, np.full(10, -0.1))


def test_check_finite_names_the_gradient():
    a, b = np.ones(2), np.ones(3)
    opt = optim.SGD([a, b], lr=0.1)
    msg = _unchanged_after(FloatingPointError,
                           lambda: opt.step([None, np.array([1.0, np.nan, 0.0])],
                                            check_finite=True), [a, b])
    assert msg.startswith("grads[1]")


def test_adam_with_decoupled_weight_decay_is_adamw():
    params, grads = _problem(np.float64, [7, 33], steps=10)
    p1, p2 = [p.copy() for p in params], [p.copy() for p in params]
    o1 = optim.Adam(p1, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)
    o2 = optim.AdamW(p2, lr=0.01, weight_decay=0.1)
    for g in grads:
        o1.step(g)
        o2.step(g)
    for a, b in zip(p1, p2):
        assert np.array_equal(a, b)
    assert o2.param_groups[0]["decoupled_weight_decay"] is True


def test_torch_sgd_state_without_step_keeps_its_momentum():
    """torch's SGD state is only ``momentum_buffer`` (no step): loaded, momentum continues."""
    p = np.zeros(2)
    opt = optim.SGD([p], lr=1.0, momentum=0.9)
    opt.load_state_dict({"state": {0: {"momentum_buffer": np.full(2, 10.0)}},
                         "param_groups": [{"params": [0], "lr": 1.0, "momentum": 0.9,
                                           "dampening": 0, "weight_decay": 0,
                                           "nesterov": False, "maximize": False,
                                           "foreach": None, "differentiable": False,
                                           "fused": None}]})
    opt.step([np.ones(2)])
    assert np.array_equal(p, np.full(2, -10.0))  # buf = 0.9 * 10 + 1
    assert np.array_equal(opt.state_dict()["state"][0]["momentum_buffer"], np.full(2, 10.0))


@pytest.mark.parametrize("name,opts", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                       ("Adam", dict(lr=0.01, amsgrad=True)),
                                       ("AdamW", dict(lr=0.01)),
                                       ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.1))])
@pytest.mark.parametrize("as_is", [False, True], ids=["numpy", "tensors"])
def test_torch_state_dicts_load_and_continue_as_torch(name, opts, as_is):
    """A torch optimizer's state dict, as it is (tensors, a 0-d tensor step) or converted with
    ``.numpy()``, loads into the nesy optimizer (torch's execution flags ignored) and the next
    steps agree with torch's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(8)]
    tp = torch.nn.Parameter(torch.tensor(p0))
    topt = getattr(torch.optim, name)([tp], **opts)
    for g in grads[:4]:
        tp.grad = torch.tensor(g)
        topt.step()
    sd = topt.state_dict()
    state = {i: {k: (v.numpy() if torch.is_tensor(v) else v) for k, v in e.items()}
             for i, e in sd["state"].items()}
    p = tp.detach().numpy().copy()
    opt = getattr(optim, name)([p], **opts)
    opt.load_state_dict(sd if as_is else {"state": state, "param_groups": sd["param_groups"]})
    for g in grads[4:]:
        tp.grad = torch.tensor(g)
        topt.step()
        opt.step([g])
    assert _rel(p, tp.detach().numpy()) <= TOL[np.float64]


def test_save_state_dict_names_a_wrong_argument_and_writes_nothing(tmp_path):
    opt = optim.SGD([np.zeros(2)], lr=0.1)
    path = tmp_path / "s.npz"
    with pytest.raises(ValueError, match=r"^state_dict: .*'state' and 'param_groups', got keys "
                                         r"\['opt', 'sched'\]"):
        optim.save_state_dict({"opt": opt.state_dict(), "sched": {}}, path)
    with pytest.raises(TypeError, match="^state_dict: expected an optimizer's state dict"):
        optim.save_state_dict([1, 2], path)
    assert not path.exists()


def test_torch_parameters_get_a_hint_to_their_numpy_views():
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(3, 2)
    with pytest.raises(TypeError, match=r"got Parameter; .*p.detach\(\).numpy\(\)"):
        optim.SGD(list(model.parameters()), lr=0.1)
    optim.SGD([p.detach().numpy() for p in model.parameters()], lr=0.1)


def test_repr_shows_each_groups_current_options():
    opt = optim.Adam([{"params": [np.zeros(3)], "lr": 0.5}, {"params": [np.zeros(2)]}], lr=1e-2)
    opt.param_groups[0]["lr"] = 1e-4  # as a schedule does
    text = repr(opt)
    assert text.startswith("Adam (\nParameter Group 0\n") and text.endswith("\n)")
    g0, g1 = text.split("Parameter Group 1")
    assert "    lr: 0.0001\n" in g0 and "    lr: 0.01\n" in g1
    assert "betas: (0.9, 0.999)" in g1 and "params" not in text


# ----------------------------------------------------------------------------- threads
def _child_step(q):
    a = np.ones(100_000, np.float32)
    optim.Adam([a], lr=0.1).step([np.ones(100_000, np.float32)])
    q.put(float(a[0]))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_kernels_work_in_a_forked_child():
    a = np.ones(100_000, np.float32)
    optim.Adam([a], lr=0.1).step([np.ones(100_000, np.float32)])  # parent's pool is running
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_step, args=(q,))
    p.start()
    p.join(timeout=60)
    assert p.exitcode == 0, "the forked child hung or crashed"
    assert q.get(timeout=5) == pytest.approx(0.9, abs=1e-6)


def test_num_threads_from_environment():
    code = "import nesy; print(nesy.get_num_threads())"
    env = {**os.environ, "NESY_NUM_THREADS": "3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "3"
    with pytest.raises(ValueError):
        nesy.set_num_threads(0)


def test_thread_counts_are_bounded_and_named():
    before = nesy.get_num_threads()
    # Thousands of threads took seconds to start (10**6 hung): at most four per CPU, or 64.
    for n in (0, -1, 10**6):
        with pytest.raises(ValueError, match=r"^n: the number of threads must be from 1 to \d+"):
            nesy.set_num_threads(n)
    for bad in ("2", True, 2.0):
        with pytest.raises(TypeError, match="^n: expected a whole number"):
            nesy.set_num_threads(bad)
    with pytest.raises(ValueError, match="^n: the number of threads must be"):
        nesy.set_num_threads(2**70)
    assert nesy.get_num_threads() == before
    # A bad NESY_NUM_THREADS never makes nesy unusable: unset, empty or 0 mean all CPUs; too
    # many are clamped and anything else falls back to all CPUs, each with a warning.
    code = ("import warnings; warnings.simplefilter('error')\n"
            "try:\n import nesy; print(nesy.get_num_threads())\n"
            "except RuntimeWarning as w: print('warned', w)")
    unset = {k: v for k, v in os.environ.items() if k != "NESY_NUM_THREADS"}
    cpus = subprocess.run([sys.executable, "-c", code], env=unset, capture_output=True,
                          text=True, check=True).stdout.strip()
    for value, want in (("", cpus), ("0", cpus), ("2", "2"),
                        ("100000", "warned NESY_NUM_THREADS=100000 is above the maximum"),
                        ("abc", "warned NESY_NUM_THREADS=\"abc\" is not a whole number")):
        env = {**os.environ, "NESY_NUM_THREADS": value}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
        assert out.stdout.strip().startswith(want), (value, out.stdout, out.stderr)


_PLACEMENT = """
import json, os, time, numpy as np, nesy
from nesy import optim
a = np.ones(1_000_000, np.float32)
optim.SGD([a], lr=0.1).step([a.copy()])  # a kernel on the pool: its threads have started
def affinities():
    out = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/comm") as f:
            name = f.read().strip()
        if name.startswith("nesy-"):
            out[int(name[5:])] = sorted(os.sched_getaffinity(int(tid)))
    return out
cpus = nesy.info()["thread_cpus"]
deadline = time.monotonic() + 5
while (len(affinities()) < nesy.get_num_threads() or (cpus and any(
        v != [cpus[i]] for i, v in affinities().items()))) and time.monotonic() < deadline:
    time.sleep(0.01)  # a thread pins itself when it starts
print(json.dumps({"cpus": cpus, "threads": affinities(),
                  "caller": sorted(os.sched_getaffinity(0))}))
"""


def _placement(**env: str) -> dict:
    # The settings under test replace any the test run itself was started with.
    base = {k: v for k, v in os.environ.items()
            if k not in ("NESY_PIN_THREADS", "NESY_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", _PLACEMENT], env={**base, **env},
                         capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="thread pinning is Linux only")
def test_threads_are_pinned_one_per_cpu_only_when_they_fill_the_cpus():
    allowed = sorted(os.sched_getaffinity(0))
    n = len(allowed)
    # Forced, with more threads than CPUs: thread i on the (i mod n)-th allowed CPU.
    r = _placement(NESY_PIN_THREADS="1", NESY_NUM_THREADS=str(n + 1))
    expected = [allowed[i % n] for i in range(n + 1)]
    assert r["cpus"] == expected
    assert r["threads"] == {str(i): [c] for i, c in enumerate(expected)}
    assert r["caller"] == allowed  # the calling thread is never pinned
    # Switched off: every thread may run anywhere.
    r = _placement(NESY_PIN_THREADS="0", NESY_NUM_THREADS=str(n))
    assert r["cpus"] is None
    assert r["threads"] == {str(i): allowed for i in range(n)}
    # Default: pinned when there is one thread per CPU (and more than one), else not.
    r = _placement(NESY_NUM_THREADS=str(n))
    assert r["cpus"] == (allowed if n > 1 else None)
    r = _placement(NESY_NUM_THREADS="1")
    assert r["cpus"] is None and r["threads"] == {"0": allowed}
    if n > 1:
        r = _placement(NESY_NUM_THREADS=str(n - 1))
        assert r["cpus"] is None


def test_set_num_threads_below_the_cpu_count_unpins():
    forced = os.environ.get("NESY_PIN_THREADS", "").strip() == "1" and sys.platform == "linux"
    before = nesy.get_num_threads()
    try:
        nesy.set_num_threads(1)
        want = [sorted(os.sched_getaffinity(0))[0]] if forced else None  # type: ignore[attr-defined]
        assert nesy.info()["thread_cpus"] == want
    finally:
        nesy.set_num_threads(before)


# ----------------------------------------------------------------------------- state edge cases
def test_options_switched_off_then_new_parameters_keep_working():
    a = np.ones(5, np.float32)
    opt = optim.Adam([{"params": [a], "amsgrad": True}], lr=0.1)
    opt.step([np.ones(5, np.float32)])
    opt.param_groups[0]["amsgrad"] = False
    b = np.zeros(3, np.float32)
    opt.add_param_group({"params": [b]})
    opt.step([np.ones(5, np.float32), np.ones(3, np.float32)])  # no stale-size error
    opt.param_groups[0]["amsgrad"] = True
    opt.step([np.ones(5, np.float32), np.ones(3, np.float32)])
    assert np.all(np.isfinite(a)) and not np.array_equal(b, np.zeros(3))


def test_sgd_momentum_switched_on_later_starts_its_buffer_like_torch():
    p = [np.ones(4)]
    opt = optim.SGD(p, lr=0.1)
    r = ref.RefSGD([np.ones(4)], lr=0.1)
    rng = np.random.default_rng(0)
    for step in range(6):
        if step == 2:
            for o in (opt.param_groups[0], r.__dict__):
                o["momentum"], o["dampening"] = 0.9, 0.5
        g = [rng.standard_normal(4)]
        opt.step(g)
        r.step(g)
        np.testing.assert_array_equal(p[0], r.params[0])


def test_failed_load_state_dict_changes_nothing():
    a = np.ones(3)
    opt = optim.NAdam([a], lr=0.1)
    opt.step([np.ones(3)])
    good = opt.state_dict()
    before = optim.Optimizer.state_dict(opt)
    bad_step = {"state": {0: {**good["state"][0], "step": None}},
                "param_groups": [{**good["param_groups"][0], "lr": 0.5}]}
    bad_mu = {"state": {0: {**good["state"][0], "mu_product": "x"}},
              "param_groups": good["param_groups"]}
    huge = {"state": {0: {**good["state"][0], "step": 2**63 - 1}},
            "param_groups": good["param_groups"]}
    unknown = {"state": good["state"], "param_groups": [{**good["param_groups"][0], "bogus": 1}]}
    for bad, needle in [(bad_step, "step"), (bad_mu, "mu_product"), (huge, "step"),
                        (unknown, "bogus")]:
        with pytest.raises(ValueError, match=needle):
            opt.load_state_dict(bad)
        after = opt.state_dict()
        assert after["param_groups"] == before["param_groups"]
        assert after["state"][0]["step"] == 1
        for k, v in before["state"][0].items():
            assert np.array_equal(after["state"][0][k], v)


def test_numpy_scalar_options_save_and_load(tmp_path):
    a = np.ones(3, np.float32)
    opt = optim.Adam([a], lr=np.float32(0.01), amsgrad=np.bool_(True))
    opt.step([np.ones(3, np.float32)])
    path = tmp_path / "o.npz"
    optim.save_state_dict(opt.state_dict(), path)
    loaded = optim.load_state_dict_file(path)
    assert loaded["param_groups"][0]["lr"] == pytest.approx(0.01)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_bookkeeping_arrays_may_not_alias_parameters():
    steps = np.zeros(1, np.int64)
    p = steps.view(np.float64)
    with pytest.raises(ValueError, match="share memory"):
        _core.optim_step("sgd", [p], [np.ones(1)], np.zeros(1, np.int64), steps,
                         np.zeros(1), np.array([[0.1, 0, 0, 0, 0, 0]], np.float64),
                         [np.zeros(0, np.float32)], [np.zeros(0)])
    assert steps[0] == 0


def test_decay_and_clip_refuse_non_finite_or_non_numbers():
    p = np.ones(3)
    with pytest.raises(ValueError, match="lr"):
        optim.decay([p], lr=float("inf"), weight_decay=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.decay([p], lr=0.1, weight_decay=float("nan"))
    with pytest.raises(ValueError, match="weight_decay"):
        optim.decay([p], lr=0.1, weight_decay=-1.0)
    with pytest.raises(TypeError, match="lr"):
        optim.decay([p], lr="x", weight_decay=1.0)
    with pytest.raises(ValueError, match="overflows"):
        optim.decay([p], lr=1e200, weight_decay=1e200)
    with pytest.raises(TypeError, match="max_norm"):
        optim.clip_grad_norm([p], "a")
    with pytest.raises(TypeError, match="norm_type"):
        optim.clip_grad_norm([p], 1.0, norm_type=None)
    with pytest.raises(TypeError, match="clip_value"):
        optim.clip_grad_value([p], "a")
    with pytest.raises(ValueError, match="l1"):
        optim.penalty([np.zeros(3)], [p], l1=float("inf"))
    assert np.array_equal(p, np.ones(3))
    optim.decay([p], lr=np.float32(0.5), weight_decay=np.array(0.5))
    np.testing.assert_array_equal(p, np.full(3, 0.75))


def _stepped_adam():
    p = np.ones(3)
    opt = optim.Adam([p], lr=0.1)
    opt.step([np.full(3, 0.5)])
    return p, opt


@pytest.mark.parametrize("change,exc,name", [
    (lambda sd: None, TypeError, "state_dict"),
    (lambda sd: {**sd, "param_groups": [5]}, TypeError, r"param_groups\[0\]"),
    (lambda sd: {**sd, "param_groups": [{**sd["param_groups"][0], "params": 3}]}, TypeError,
     r"param_groups\[0\]"),
    (lambda sd: {**sd, "param_groups": [{**sd["param_groups"][0], "betas": 0.9}]}, ValueError,
     "betas"),
    (lambda sd: {**sd, "state": {0.7: sd["state"][0]}}, TypeError, "state key 0.7"),
    (lambda sd: {**sd, "state": {"x": sd["state"][0]}}, TypeError, "state key 'x'"),
])
def test_load_state_dict_bad_entries_name_them_and_change_nothing(change, exc, name):
    p, opt = _stepped_adam()
    before = opt.state_dict()
    with pytest.raises(exc, match=name):
        opt.load_state_dict(change(opt.state_dict()))
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    np.testing.assert_array_equal(after["state"][0]["exp_avg"], before["state"][0]["exp_avg"])
    assert after["state"][0]["step"] == before["state"][0]["step"]


def test_load_state_dict_accepts_json_string_keys():
    p, opt = _stepped_adam()
    sd = opt.state_dict()
    other = optim.Adam([np.ones(3)], lr=0.1)
    other.load_state_dict({**sd, "state": {"0": sd["state"][0]}})
    assert other.state_dict()["state"][0]["step"] == 1


def test_step_refuses_a_non_list():
    p, opt = _stepped_adam()
    with pytest.raises(TypeError, match="grads"):
        opt.step(None)
    with pytest.raises(TypeError, match="grads"):
        opt.step(5)
    assert opt.state_dict()["state"][0]["step"] == 1


def test_state_dict_files_that_are_not_name_the_path(tmp_path):
    a = np.ones(3)
    opt = optim.Adam([a])
    opt.step([np.ones(3)])
    good = tmp_path / "good.npz"
    optim.save_state_dict(opt.state_dict(), good)
    saved = dict(np.load(good))
    cases = {"garbage.npz": None, "other.npz": {"x": np.zeros(2)},
             "json.npz": {**saved, "meta": np.frombuffer(b"{oops", np.uint8)},
             "key.npz": {**saved, "state/abc/x": np.zeros(1)}}
    whys = {"garbage.npz": "not an .npz", "other.npz": "no 'meta'", "json.npz": "not UTF-8 JSON",
            "key.npz": "'state/abc/x' is not 'state/<index>/<name>'"}
    for name, arrays in cases.items():
        path = tmp_path / name
        if arrays is None:
            path.write_text("not an archive")
        else:
            np.savez(path, **arrays)
        with pytest.raises(ValueError, match=f"{name}.*not a nesy optimizer state file") as info:
            optim.load_state_dict_file(path)
        assert whys[name] in str(info.value)
    assert optim.load_state_dict_file(good)["state"][0]["step"] == 1
    with open(good, "rb") as fh:  # an open file works too, as np.load's
        assert optim.load_state_dict_file(fh)["state"][0]["step"] == 1


def test_save_state_dict_refuses_a_state_entry_that_is_not_a_dict(tmp_path):
    path = tmp_path / "s.npz"
    with pytest.raises(TypeError, match=r"^state_dict: state\[0\]: expected a dict.*got int 5"):
        optim.save_state_dict({"state": {0: 5}, "param_groups": []}, path)
    assert not path.exists()


def test_state_dict_file_with_betas_that_are_not_a_list_names_them(tmp_path):
    path = tmp_path / "betas.npz"
    meta = {"param_groups": [{"lr": 1, "betas": 5}], "scalars": {}}
    np.savez(path, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    with pytest.raises(TypeError, match=r"betas\.npz.*param_groups\[0\]\['betas'\]: expected a "
                                        r"list \(beta1, beta2\), got int 5"):
        optim.load_state_dict_file(path)


@pytest.mark.parametrize("edit", [
    lambda g, b: g["params"].append(b),                # torch would follow this append
    lambda g, b: g["params"].extend([b]),
    lambda g, b: g["params"].insert(0, b),
    lambda g, b: g["params"].pop(),
    lambda g, b: g["params"].remove(g["params"][0]),
    lambda g, b: g["params"].__setitem__(0, b),        # same length, another array
    lambda g, b: g["params"].__delitem__(0),
    lambda g, b: g["params"].__iadd__([b]),
    lambda g, b: g["params"].clear(),
])
def test_editing_a_groups_params_list_is_refused_where_it_happens(edit):
    a, b = np.ones(2), np.full(2, 5.0)
    opt = optim.Adam([a], lr=0.1)
    opt.step([np.ones(2)])
    before = a.copy()
    with pytest.raises(ValueError, match=r"^param_groups\[i\]\['params'\]: .*add_param_group"):
        edit(opt.param_groups[0], b)
    assert opt.param_groups[0]["params"] == [a] and isinstance(opt.param_groups[0]["params"],
                                                                list)
    assert np.array_equal(a, before) and b.tolist() == [5.0, 5.0]
    opt.step([np.ones(2)])  # still the optimizer it was
    assert opt._steps.tolist() == [2]
    # the list pickles and copies as a list of the same arrays
    assert copy.deepcopy(opt.param_groups[0]["params"])[0].tolist() == a.tolist()


def test_replacing_a_groups_params_list_is_refused_not_ignored():
    a, b = np.ones(2), np.full(2, 5.0)
    opt = optim.Adam([a], lr=0.1)
    opt.step([np.ones(2)])
    before, state = a.copy(), opt.state_dict()
    opt.param_groups[0]["params"] = [b]
    for call in (lambda: opt.step([np.ones(2)]), opt.state_dict,
                 lambda: opt.load_state_dict(state)):
        with pytest.raises(ValueError, match=r"^param_groups\[0\]\['params'\]: replaced after .*"
                                             r"add_param_group"):
            call()
    assert np.array_equal(a, before) and b.tolist() == [5.0, 5.0]
    assert opt._steps.tolist() == [1]


def test_a_group_appended_to_param_groups_by_hand_is_refused():
    a = np.ones(2)
    opt = optim.SGD([a], lr=0.1)
    opt.param_groups.append({"params": [np.ones(2)], "lr": 0.1})
    with pytest.raises(ValueError, match=r"^param_groups: has 2 groups.*add_param_group"):
        opt.step([np.ones(2), np.ones(2)])
    assert a.tolist() == [1.0, 1.0]
    opt.param_groups.pop()
    opt.add_param_group({"params": [np.ones(2)]})  # the supported way
    opt.step([np.ones(2), np.ones(2)])
    assert a.tolist() == [0.9, 0.9]


class _PickledAtF093027:
    """Pickles as ``opt`` did before groups kept a ``_ParamList`` (commit f093027): the same
    instance dict without ``_group_params``, each group's ``"params"`` a plain list."""

    def __init__(self, opt, edit=None):
        state = {k: v for k, v in vars(opt).items() if k != "_group_params"}
        state["param_groups"] = [dict(g, params=list(g["params"])) for g in opt.param_groups]
        if edit is not None:
            edit(state["param_groups"][0]["params"])  # that version ignored such edits
        self.cls, self.state = type(opt), state

    def __reduce__(self):
        import copyreg

        return copyreg._reconstructor, (self.cls, object, None), self.state  # cls.__new__


@pytest.mark.parametrize("kind", ["SGD", "Adam", "NAdam"])
def test_an_optimizer_pickled_before_group_lists_were_kept_unpickles_and_steps(kind):
    import pickle

    a, b = np.ones(3), np.full(2, 2.0)
    opt = getattr(optim, kind)([{"params": [a]}, {"params": [b], "lr": 0.05}], lr=0.1)
    opt.step([np.ones(3), np.ones(2)])
    twin = copy.deepcopy(opt)
    old = pickle.loads(pickle.dumps(_PickledAtF093027(opt)))
    assert type(old) is type(opt) and not any(isinstance(g["params"], optim._base._ParamList)
                                              for g in _PickledAtF093027(opt).state["param_groups"])
    for o in (old, twin):
        o.step([np.full(3, 0.5), np.full(2, -1.0)])  # AttributeError: no _group_params
    assert all(np.array_equal(p, q) for p, q in zip(old._params, twin._params))
    for gi, g in enumerate(old.param_groups):
        assert isinstance(g["params"], optim._base._ParamList)
        assert g["params"] is old._group_params[gi] and g["params"][0] is old._params[gi]
    with pytest.raises(ValueError, match=r"^param_groups\[i\]\['params'\]: .*add_param_group"):
        old.param_groups[0]["params"].append(np.ones(3))
    assert old.state_dict()["state"][0]["step"] == 2


def test_a_group_list_edited_before_an_old_pickle_is_refused_at_the_step():
    import pickle

    a = np.ones(2)
    opt = optim.SGD([a], lr=0.1)
    old = pickle.loads(pickle.dumps(_PickledAtF093027(opt, edit=lambda ps: ps.append(np.ones(2)))))
    with pytest.raises(ValueError, match=r"^param_groups\[0\]\['params'\]: replaced after it was "
                                         r"added \(2 arrays, the optimizer holds 1\)"):
        old.step([np.ones(2)])
    assert old._params[0].tolist() == [1.0, 1.0]
    opt = optim.SGD([{"params": [a]}, {"params": [np.ones(2)]}], lr=0.1)
    old = pickle.loads(pickle.dumps(_PickledAtF093027(opt, edit=lambda ps: None)))
    old.param_groups.pop()  # as if popped before pickling
    old = pickle.loads(pickle.dumps(_PickledAtF093027(old)))
    with pytest.raises(ValueError, match=r"^param_groups: has 1 groups, but the optimizer was "
                                         r"given 2"):
        old.step([np.ones(2), np.ones(2)])
    assert old._params[0].tolist() == [1.0, 1.0]


# ---------------------------------------------------------------------- s15 review (L3, L4, L9)
def test_clip_grad_norm_takes_one_array_as_torch_takes_one_tensor():
    """L3: ``clip_grad_norm(np.ones(3), 1)`` raised a TypeError about dtype float64 (``list``
    split the array into NumPy scalars), and a 2-D array was clipped row by row by luck."""
    g = np.ones(3)
    assert optim.clip_grad_norm(g, 1.0) == pytest.approx(np.sqrt(3))
    np.testing.assert_allclose(g, np.full(3, 1 / np.sqrt(3)), rtol=1e-5)
    m = np.full((2, 2), 2.0)
    assert optim.grad_norm(m) == pytest.approx(4.0)  # the joint norm, not per row
    assert optim.clip_grad_norm(m, 2.0) == pytest.approx(4.0)
    np.testing.assert_allclose(m, np.ones((2, 2)), rtol=1e-5)
    v = np.array([3.0, -5.0])
    optim.clip_grad_value(v, 1.0)
    assert v.tolist() == [1.0, -1.0]


@pytest.mark.parametrize("inf", ["inf", "Infinity", " INF", float("inf")])
def test_norm_type_inf_may_be_a_string(inf):
    """L3: torch accepts ``norm_type='inf'``; nesy said "must be a real number"."""
    g = [np.array([1.0, -4.0]), np.array([3.0])]
    assert optim.grad_norm(g, inf) == 4.0
    assert optim.clip_grad_norm(g, 2.0, inf) == 4.0
    np.testing.assert_allclose(g[0], [0.5, -2.0], rtol=1e-5)
    with pytest.raises(TypeError, match="norm_type"):
        optim.grad_norm(g, "two")


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW, optim.Adamax, optim.NAdam,
                                 optim.RAdam, optim.Lion, optim.AdamHD])
@pytest.mark.parametrize("betas", [0.9, np.float64(0.9), np.array(0.9), (0.9, 0.99, 0.999),
                                   "ab", None])
def test_betas_that_are_not_a_pair_are_named(cls, betas):
    """L4: ``Adam(params, betas=0.9)`` raised "'float' object is not iterable"."""
    with pytest.raises(ValueError, match=r"^betas: expected a pair \(beta1, beta2\), got "):
        cls([np.ones(2)], betas=betas)
    opt = cls([np.ones(2)], betas=np.array([0.8, 0.9]))  # any iterable pair, as before
    assert opt.param_groups[0]["betas"] == (0.8, 0.9)


ALL_OPTIMIZERS = [optim.SGD, optim.Adagrad, optim.RMSprop, optim.Adadelta, optim.Adam,
                  optim.AdamW, optim.Adamax, optim.NAdam, optim.RAdam, optim.Lion, optim.SGDHD,
                  optim.AdamHD]


@pytest.mark.parametrize("cls", ALL_OPTIMIZERS, ids=lambda c: c.__name__)
def test_torch_execution_keywords_are_accepted_and_ignored(cls):
    """L9: ``Adam([p], foreach=True)`` / ``SGD([p], fused=None)`` raised TypeError; they choose
    how torch runs a step, not what it computes."""
    kw = dict(lr=0.01, momentum=0.9) if cls in (optim.SGD, optim.SGDHD) else dict(lr=0.01)
    a, b = np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)
    plain = cls([a], **kw)
    torchy = cls([b], **kw, foreach=True, fused=None, capturable=False, differentiable=False)
    assert torchy.param_groups[0].keys() == plain.param_groups[0].keys()
    assert not set(torchy.param_groups[0]) & {"foreach", "fused", "capturable", "differentiable"}
    for k in range(3):
        g = np.cos(np.arange(5.0) + k)
        plain.step([g])
        torchy.step([g.copy()])
    assert np.array_equal(a, b)
    import inspect

    sig = inspect.signature(cls)
    for name in ("foreach", "fused", "capturable", "differentiable"):  # keyword-only, as torch
        assert sig.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam])
def test_zero_grad_says_where_the_gradients_are(cls):
    """L9: ``opt.zero_grad()`` was an AttributeError. A nesy optimizer holds no gradients, and
    doing nothing would let a ported torch loop accumulate them (Module.backward adds), so it
    raises naming what to call; the optimizer is unchanged."""
    a = np.ones(3)
    opt = cls([a], lr=0.1)
    opt.step([np.ones(3)])
    before = (a.copy(), opt.state_dict())
    with pytest.raises(RuntimeError, match=r"^\w+\.zero_grad\(\): nesy optimizers hold no "
                                           r"gradients .*model\.zero_grad\(\)"):
        opt.zero_grad()
    assert np.array_equal(a, before[0]) and opt.state_dict()["state"][0]["step"] == 1


# ---------------------------------------------------------------------- s22 review
def test_one_array_is_one_array_for_all_finite_and_penalty_and_refused_by_step():
    """M14: ``all_finite`` and ``penalty`` split one array into NumPy scalars (a message that
    said the expected dtype was received) or rows (a 2-D array with a NaN was "finite" row by
    row... or not); grad_norm and the clips already took one array as ``[array]``. ``step``
    given one array now says it wants a list."""
    assert optim.all_finite(np.array([1.0, np.nan])) is False
    assert optim.all_finite(np.array([[1.0, 2.0], [np.nan, 1.0]])) is False
    assert optim.all_finite(np.ones((2, 3), np.float32)) is True
    g = np.zeros(3)
    assert optim.penalty(g, np.array([1.0, -2.0, 0.0]), l1=1.0, l2=1.0) == pytest.approx(5.5)
    np.testing.assert_array_equal(g, [2.0, -3.0, 0.0])
    a = np.ones(3)
    opt = optim.Adam([a])
    with pytest.raises(TypeError, match=r"^grads: expected a list with one array per "
                                        r"parameter, got ndarray$"):
        opt.step(np.ones(3))
    np.testing.assert_array_equal(a, 1.0)
    opt.step((np.ones(3),))  # any other iterable of arrays is still taken


def test_an_option_deleted_or_added_after_construction_is_named_at_step():
    """L3: a deleted option was a bare ``KeyError: 'eps'`` from the step; a misspelt option
    added to a group was ignored, though the constructor refuses it. Both are named, and
    nothing changes."""
    a, b = np.ones(3), np.ones(2)
    opt = optim.Adam([{"params": [a]}, {"params": [b]}], lr=0.1)
    del opt.param_groups[1]["eps"]
    with pytest.raises(KeyError, match=r"param_groups\[1\]\['eps'\]: missing"):
        opt.step([np.ones(3), np.ones(2)])
    opt.param_groups[1]["eps"] = 1e-8
    opt.param_groups[0]["weight_decy"] = 0.1
    with pytest.raises(ValueError, match=r"^param_groups\[0\]: unknown option\(s\) "
                                         r"\['weight_decy'\]; Adam takes \["):
        opt.step([np.ones(3), np.ones(2)])
    np.testing.assert_array_equal(a, 1.0)
    assert opt.state_dict()["state"] == {}
    del opt.param_groups[0]["weight_decy"]
    opt.param_groups[0]["initial_lr"] = 0.1  # what a schedule adds
    opt.step([np.ones(3), np.ones(2)])
    assert a[0] < 1.0
    del opt.param_groups[0]["betas"]  # a pair behind two kernel columns
    with pytest.raises(KeyError, match=r"param_groups\[0\]\['betas'\]: missing"):
        opt.step([np.ones(3), np.ones(2)])


def test_flags_of_step_and_clip_are_bools():
    """L5: ``check_finite="no"`` and ``error_if_nonfinite="no"`` were true."""
    a = np.ones(3)
    opt = optim.SGD([a], lr=0.1)
    with pytest.raises(TypeError, match=r"^check_finite: expected a bool, got str 'no'"):
        opt.step([np.full(3, np.nan)], check_finite="no")
    np.testing.assert_array_equal(a, 1.0)
    g = np.full(3, np.inf)
    with pytest.raises(TypeError, match=r"^error_if_nonfinite: expected a bool, got str"):
        optim.clip_grad_norm([g], 1.0, error_if_nonfinite="no")
    assert optim.clip_grad_norm([np.ones(3)], 10.0, error_if_nonfinite=np.bool_(True)) > 0


def test_save_state_dict_names_the_entry_it_cannot_save(tmp_path):
    """L8: a torch state dict (tensor steps and buffers) gave "cannot save a value of type
    Tensor in a state dict", without the key. Nothing is written."""

    class Tensor:  # stands for torch.Tensor: neither an array nor JSON
        pass

    path = tmp_path / "opt.npz"
    sd = {"state": {0: {"step": Tensor(), "exp_avg": np.zeros(3)}},
          "param_groups": [{"lr": 0.1, "params": [0]}]}
    with pytest.raises(TypeError, match=r"^state_dict\['state'\]\[0\]\['step'\]: cannot save "
                                        r"a value of type Tensor in a state dict"):
        optim.save_state_dict(sd, path)
    sd = {"state": {}, "param_groups": [{"lr": Tensor(), "params": [0]}]}
    with pytest.raises(TypeError, match=r"^state_dict\['param_groups'\]\[0\]\['lr'\]: cannot"):
        optim.save_state_dict(sd, path)
    assert not path.exists()


def test_save_state_dict_of_a_torch_optimizer_names_the_tensor(tmp_path):
    torch = pytest.importorskip("torch")
    t = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([t])
    t.grad = torch.ones(3)
    opt.step()
    with pytest.raises(TypeError, match=r"^state_dict\['state'\]\[0\]\['step'\]: .* Tensor .*"
                                        r"t\.item\(\)"):
        optim.save_state_dict(opt.state_dict(), tmp_path / "t.npz")
