"""Tests of nesy.optim.schedules: closed forms, torch parity, state dicts, warm-up, plateau."""

from __future__ import annotations

import json
import math
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nesy.optim import schedules as S

BASE_LRS = (0.1, 0.01)
HYP = settings(max_examples=30, deadline=None)


class _Opt:
    """The smallest optimizer a schedule accepts: groups with a mutable ``lr``."""

    def __init__(self, lrs=BASE_LRS):
        self.param_groups = [{"lr": lr} for lr in lrs]


def _lrs(opt):
    return [g["lr"] for g in opt.param_groups]


def _run(sched, n):
    """Learning rates at steps 0..n-1 (as written into the optimizer), stepping after each."""
    out = []
    for _ in range(n):
        assert sched.get_last_lr() == _lrs(sched.optimizer)
        out.append(_lrs(sched.optimizer))
        sched.step()
    return out


def _torch_run(make, n, lrs=BASE_LRS):
    """Same as _run for a torch scheduler on a torch SGD with one group per learning rate."""
    torch = pytest.importorskip("torch")
    params = [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)) for _ in lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lr=lrs[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make(opt)
        out = []
        for _ in range(n):
            out.append([float(g["lr"]) for g in opt.param_groups])
            opt.step()
            sched.step()
    return out


def _assert_close(got, want, rel=1e-12):
    assert len(got) == len(want)
    for t, (g_row, w_row) in enumerate(zip(got, want)):
        for g, w in zip(g_row, w_row):
            assert math.isclose(g, w, rel_tol=rel, abs_tol=0.0), (t, g, w)


# ------------------------------------------------------------------------------ closed forms
CLOSED = {
    "Constant": lambda o: S.Constant(o),
    "ConstantLR": lambda o: S.ConstantLR(o, factor=0.25, total_iters=7),
    "StepLR": lambda o: S.StepLR(o, step_size=4, gamma=0.7),
    "MultiStepLR": lambda o: S.MultiStepLR(o, milestones=[30, 5, 60, 60], gamma=0.5),
    "ExponentialLR": lambda o: S.ExponentialLR(o, gamma=0.97),
    "InverseTimeLR": lambda o: S.InverseTimeLR(o, decay=0.05),
    "InverseSqrtLR": lambda o: S.InverseSqrtLR(o, decay=0.3),
    "PolynomialLR": lambda o: S.PolynomialLR(o, total_iters=90, power=1.7),
    "CosineAnnealingLR": lambda o: S.CosineAnnealingLR(o, T_max=37, eta_min=1e-4),
    "WarmRestarts": lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=1e-5),
    "WarmRestarts1": lambda o: S.CosineAnnealingWarmRestarts(o, T_0=11),
    "OneCycleLR": lambda o: S.OneCycleLR(o, max_lr=[0.5, 0.3], total_steps=150),
    "OneCycle3": lambda o: S.OneCycleLR(
        o, max_lr=0.7, total_steps=150, three_phase=True, anneal_strategy="linear"
    ),
    "Warmup+Cosine": lambda o: S.LinearWarmup(S.CosineAnnealingLR(o, T_max=120), 15, 0.1),
    "Warmup+Restarts": lambda o: S.LinearWarmup(
        S.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=3), 10
    ),
}


def _closed_form(sched, t):
    if isinstance(sched, S.OneCycleLR):
        return [sched.lr_at(t, b, m) for b, m in zip(sched.base_lrs, sched.max_lrs)]
    return [sched.lr_at(t, b) for b in sched.base_lrs]


@pytest.mark.parametrize("name", sorted(CLOSED))
def test_step_equals_closed_form(name):
    opt = _Opt()
    sched = CLOSED[name](opt)
    n = 151
    seq = _run(sched, n if "OneCycle" not in name else 150)
    for t, row in enumerate(seq):
        assert row == _closed_form(sched, t), t
    assert sched.last_epoch == len(seq)


def _formula(name, t, b):
    """Independent textbook formulas (not the module's code)."""
    if name == "Constant":
        return b
    if name == "ConstantLR":
        return b * 0.25 if t < 7 else b
    if name == "StepLR":
        return b * 0.7 ** (t // 4)
    if name == "MultiStepLR":
        return b * 0.5 ** sum(m <= t for m in [5, 30, 60, 60])
    if name == "ExponentialLR":
        return b * 0.97**t
    if name == "InverseTimeLR":
        return b / (1 + 0.05 * t)
    if name == "InverseSqrtLR":
        return b / math.sqrt(1 + 0.3 * t)
    if name == "PolynomialLR":
        return b * (1 - min(t, 90) / 90) ** 1.7
    if name == "CosineAnnealingLR":
        return 1e-4 + (b - 1e-4) * (1 + math.cos(math.pi * t / 37)) / 2
    if name == "WarmRestarts1":
        return (b) * (1 + math.cos(math.pi * (t % 11) / 11)) / 2
    if name == "WarmRestarts":  # cycles of 3, 6, 12, 24, ... starting at 0, 3, 9, 21, 45, ...
        start, length = 0, 3
        while t >= start + length:
            start, length = start + length, length * 2
        return 1e-5 + (b - 1e-5) * (1 + math.cos(math.pi * (t - start) / length)) / 2
    if name == "Warmup+Cosine":
        inner = b * (1 + math.cos(math.pi * t / 120)) / 2
        return inner * (0.1 + 0.9 * t / 15) if t < 15 else inner
    if name == "Warmup+Restarts":  # cycles of 4, 12, 36, ... from 0, 4, 16, 52, ...; the
        start, length = 0, 4  # warm-up (from 0, over 10 steps) scales the first 10 steps
        while t >= start + length:
            start, length = start + length, length * 3
        inner = b * (1 + math.cos(math.pi * (t - start) / length)) / 2
        return inner * t / 10 if t < 10 else inner
    raise KeyError(name)


@pytest.mark.parametrize(
    "name",
    [
        "Constant",
        "ConstantLR",
        "StepLR",
        "MultiStepLR",
        "ExponentialLR",
        "InverseTimeLR",
        "InverseSqrtLR",
        "PolynomialLR",
        "CosineAnnealingLR",
        "WarmRestarts",
        "WarmRestarts1",
        "Warmup+Cosine",
        "Warmup+Restarts",
    ],
)
def test_closed_form_matches_textbook_formula(name):
    sched = CLOSED[name](_Opt())
    for t in range(200):
        for b in sched.base_lrs:
            assert math.isclose(sched.lr_at(t, b), _formula(name, t, b), rel_tol=1e-13), t
    # ... and so does what step() writes into the optimizer
    for t, row in enumerate(_run(CLOSED[name](_Opt()), 151)):
        for g, b in zip(row, BASE_LRS):
            assert math.isclose(g, _formula(name, t, b), rel_tol=1e-13), t


def _onecycle_formula(t, max_lr, n, pct, strategy, three_phase, div=25.0, final_div=1e4):
    """Smith's 1cycle as torch documents it: from initial = max_lr / div up to max_lr at step
    pct * n - 1, then (three_phase) back to initial at step 2 pct n - 2, then down to
    initial / final_div at step n - 1; each phase a half cosine or a straight line."""
    initial = max_lr / div
    low = initial / final_div
    if three_phase:
        knots = [(0.0, initial), (pct * n - 1, max_lr), (2 * pct * n - 2, initial),
                 (n - 1.0, low)]
    else:
        knots = [(0.0, initial), (pct * n - 1, max_lr), (n - 1.0, low)]
    for (t0, a), (t1, b) in zip(knots, knots[1:]):
        if t <= t1 or t1 == n - 1.0:
            p = (t - t0) / (t1 - t0)
            if strategy == "linear":
                return a + (b - a) * p
            return b + (a - b) * (1 + math.cos(math.pi * p)) / 2
    raise AssertionError(t)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("n,pct,max_lrs", [(150, 0.3, (0.5, 0.3)), (97, 0.2, (0.9, 0.9)),
                                           (40, 0.45, (1.0, 0.02))])
def test_onecycle_matches_textbook_formula(strategy, three_phase, n, pct, max_lrs):
    opt = _Opt(max_lrs)
    sched = S.OneCycleLR(opt, max_lr=list(max_lrs), total_steps=n, pct_start=pct,
                         anneal_strategy=strategy, three_phase=three_phase, div_factor=8.0,
                         final_div_factor=300.0)
    for t, row in enumerate(_run(sched, n)):
        for g, m in zip(row, max_lrs):
            want = _onecycle_formula(t, m, n, pct, strategy, three_phase, 8.0, 300.0)
            assert math.isclose(g, want, rel_tol=1e-12), (t, g, want)


@pytest.mark.parametrize("strategy,three_phase,want", [
    # total 40, pct_start 0.25: knots at steps 9 (max) [18 (initial)] 39 (min);
    # max_lr 1, div_factor 10 (initial 0.1), final_div_factor 100 (min 0.001)
    ("linear", True, {0: 0.1, 3: 0.4, 9: 1.0, 12: 0.7, 18: 0.1, 25: 0.067, 39: 0.001}),
    ("cos", True, {0: 0.1, 3: 0.325, 9: 1.0, 15: 0.325, 18: 0.1, 39: 0.001}),
    ("linear", False, {0: 0.1, 6: 0.7, 9: 1.0, 19: 1.0 - 0.999 / 3, 39: 0.001}),
    ("cos", False, {0: 0.1, 3: 0.325, 9: 1.0, 24: 0.5005, 39: 0.001}),
])
def test_onecycle_values_by_hand(strategy, three_phase, want):
    sched = S.OneCycleLR(_Opt((1.0,)), max_lr=1.0, total_steps=40, pct_start=0.25,
                         anneal_strategy=strategy, three_phase=three_phase, div_factor=10.0,
                         final_div_factor=100.0)
    seq = [row[0] for row in _run(sched, 40)]
    for t, lr in want.items():
        assert math.isclose(seq[t], lr, rel_tol=1e-12), (t, seq[t], lr)


def test_onecycle_shape():
    opt = _Opt()
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=100, pct_start=0.3)
    seq = [row[0] for row in _run(sched, 100)]
    assert math.isclose(seq[0], 1.0 / 25.0, rel_tol=1e-14)  # torch's formula: not exact
    assert max(seq) == seq[29] == 1.0  # peak exactly max_lr at step pct_start*total - 1
    assert math.isclose(seq[99], 1.0 / 25.0 / 1e4, rel_tol=1e-12)
    assert all(a < b for a, b in zip(seq[:29], seq[1:30]))
    assert all(a > b for a, b in zip(seq[29:99], seq[30:100]))
    # groups get initial_lr = max_lr / div_factor, overwriting what was there (as torch)
    assert opt.param_groups[1]["initial_lr"] == 1.0 / 25.0
    assert set(opt.param_groups[0]) == {"lr", "initial_lr"}


def test_onecycle_past_total_steps_raises_and_changes_nothing():
    opt = _Opt()
    sched = S.OneCycleLR(opt, max_lr=0.2, total_steps=5)
    for _ in range(5):
        sched.step()
    before = (sched.last_epoch, _lrs(opt), sched.state_dict())
    with pytest.raises(ValueError, match="total_steps"):
        sched.step()
    assert (sched.last_epoch, _lrs(opt), sched.state_dict()) == before
    with pytest.raises(ValueError, match="total_steps"):
        sched.lr_at(6, 0.1)


def test_onecycle_zero_length_phase_takes_end_value():
    # pct_start * total_steps == 1: torch divides by zero at step 0; we start at max_lr.
    sched = S.OneCycleLR(_Opt(), max_lr=0.4, total_steps=10, pct_start=0.1)
    assert sched.get_last_lr() == [0.4, 0.4]


def test_initial_lr_recorded_and_not_overwritten():
    opt = _Opt()
    opt.param_groups[0]["initial_lr"] = 0.5  # e.g. left by an earlier schedule
    sched = S.StepLR(opt, step_size=2)
    assert sched.base_lrs == [0.5, 0.01]
    assert opt.param_groups[1]["initial_lr"] == 0.01
    assert _lrs(opt) == [0.5, 0.01]


def test_resume_with_last_epoch():
    full = _run(S.CosineAnnealingWarmRestarts(_Opt(), T_0=2, T_mult=3), 60)
    opt = _Opt()
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    sched = S.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=3, last_epoch=19)
    assert _run(sched, 40) == full[20:]
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(_Opt(), step_size=3, last_epoch=4)


def test_get_last_lr_is_a_copy():
    opt = _Opt()
    sched = S.ExponentialLR(opt, gamma=0.5)
    sched.get_last_lr()[0] = 123.0
    assert sched.get_last_lr() == [0.1, 0.01]


def test_group_added_after_construction_raises():
    opt = _Opt()
    sched = S.StepLR(opt, step_size=1)
    opt.param_groups.append({"lr": 1.0})
    with pytest.raises(ValueError, match="parameter groups"):
        sched.step()
    assert sched.last_epoch == 0


# ------------------------------------------------------------------------------ torch parity
def _lr_sched():
    torch = pytest.importorskip("torch")
    return torch.optim.lr_scheduler


TORCH = {
    "StepLR": (
        lambda L: lambda o: L.StepLR(o, step_size=7, gamma=0.8),
        lambda o: S.StepLR(o, step_size=7, gamma=0.8),
    ),
    "MultiStepLR": (
        lambda L: lambda o: L.MultiStepLR(o, milestones=[3, 40, 40, 90], gamma=0.3),
        lambda o: S.MultiStepLR(o, milestones=[3, 40, 40, 90], gamma=0.3),
    ),
    "ExponentialLR": (
        lambda L: lambda o: L.ExponentialLR(o, gamma=0.95),
        lambda o: S.ExponentialLR(o, gamma=0.95),
    ),
    "ConstantLR": (
        lambda L: lambda o: L.ConstantLR(o, factor=0.3, total_iters=13),
        lambda o: S.ConstantLR(o, factor=0.3, total_iters=13),
    ),
    "PolynomialLR": (
        lambda L: lambda o: L.PolynomialLR(o, total_iters=80, power=2.5),
        lambda o: S.PolynomialLR(o, total_iters=80, power=2.5),
    ),
    "CosineAnnealingLR": (
        lambda L: lambda o: L.CosineAnnealingLR(o, T_max=45, eta_min=1e-3),
        lambda o: S.CosineAnnealingLR(o, T_max=45, eta_min=1e-3),
    ),
    "WarmRestarts": (
        lambda L: lambda o: L.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=1e-4),
        lambda o: S.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=1e-4),
    ),
    "WarmRestarts1": (
        lambda L: lambda o: L.CosineAnnealingWarmRestarts(o, T_0=9),
        lambda o: S.CosineAnnealingWarmRestarts(o, T_0=9),
    ),
    "OneCycleLR": (
        lambda L: (
            lambda o: L.OneCycleLR(o, max_lr=[0.5, 0.05], total_steps=149, cycle_momentum=False)
        ),
        lambda o: S.OneCycleLR(o, max_lr=[0.5, 0.05], total_steps=149),
    ),
    "OneCycle3lin": (
        lambda L: (
            lambda o: L.OneCycleLR(
                o,
                max_lr=0.9,
                total_steps=149,
                pct_start=0.2,
                anneal_strategy="linear",
                three_phase=True,
                div_factor=10.0,
                final_div_factor=100.0,
                cycle_momentum=False,
            )
        ),
        lambda o: S.OneCycleLR(
            o,
            max_lr=0.9,
            total_steps=149,
            pct_start=0.2,
            anneal_strategy="linear",
            three_phase=True,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
    ),
    "InverseTimeLR": (
        lambda L: lambda o: L.LambdaLR(o, lambda t: 1.0 / (1.0 + 0.1 * t)),
        lambda o: S.InverseTimeLR(o, decay=0.1),
    ),
    "InverseSqrtLR": (
        lambda L: lambda o: L.LambdaLR(o, lambda t: 1.0 / math.sqrt(1.0 + 0.1 * t)),
        lambda o: S.InverseSqrtLR(o, decay=0.1),
    ),
    "Constant": (
        lambda L: lambda o: L.LambdaLR(o, lambda t: 1.0),
        lambda o: S.Constant(o),
    ),
    # torch's chainable LinearLR x (multiplicative) inner schedule == our warm-up
    "Warmup+Exponential": (
        lambda L: (
            lambda o: L.ChainedScheduler(
                [L.LinearLR(o, start_factor=0.2, total_iters=12), L.ExponentialLR(o, gamma=0.98)]
            )
        ),
        lambda o: S.LinearWarmup(S.ExponentialLR(o, gamma=0.98), warmup_steps=12, start_factor=0.2),
    ),
    "Warmup+Cosine": (
        lambda L: (
            lambda o: L.ChainedScheduler(
                [L.LinearLR(o, start_factor=0.05, total_iters=20), L.CosineAnnealingLR(o, T_max=60)]
            )
        ),
        lambda o: S.LinearWarmup(S.CosineAnnealingLR(o, T_max=60), 20, start_factor=0.05),
    ),
}


@pytest.mark.parametrize("name", sorted(TORCH))
def test_matches_torch(name):
    L = _lr_sched()
    make_torch, make_ours = TORCH[name]
    n = 149 if "OneCycle" in name else 150
    want = _torch_run(make_torch(L), n)
    got = _run(make_ours(_Opt()), n)
    _assert_close(got, want)


lrs_st = st.lists(st.floats(1e-5, 10.0), min_size=1, max_size=3).map(tuple)


@HYP
@given(lrs=lrs_st, step_size=st.integers(1, 30), gamma=st.floats(0.05, 1.5))
def test_steplr_matches_torch_random(lrs, step_size, gamma):
    L = _lr_sched()
    want = _torch_run(lambda o: L.StepLR(o, step_size, gamma), 120, lrs)
    _assert_close(_run(S.StepLR(_Opt(lrs), step_size, gamma), 120), want)


@HYP
@given(lrs=lrs_st, gamma=st.floats(0.8, 1.05))
def test_exponential_matches_torch_random(lrs, gamma):
    L = _lr_sched()
    want = _torch_run(lambda o: L.ExponentialLR(o, gamma), 120, lrs)
    _assert_close(_run(S.ExponentialLR(_Opt(lrs), gamma), 120), want)


@HYP
@given(
    lrs=lrs_st,
    milestones=st.lists(st.integers(0, 130), max_size=6),
    gamma=st.floats(0.05, 2.0),
)
def test_multistep_matches_torch_random(lrs, milestones, gamma):
    L = _lr_sched()
    want = _torch_run(lambda o: L.MultiStepLR(o, milestones, gamma), 120, lrs)
    _assert_close(_run(S.MultiStepLR(_Opt(lrs), milestones, gamma), 120), want)


@HYP
@given(lrs=lrs_st, total=st.integers(1, 150), power=st.floats(0.0, 4.0))
def test_polynomial_matches_torch_random(lrs, total, power):
    L = _lr_sched()
    want = _torch_run(lambda o: L.PolynomialLR(o, total, power), 120, lrs)
    _assert_close(_run(S.PolynomialLR(_Opt(lrs), total, power), 120), want)


@HYP
@given(lrs=lrs_st, t_max=st.integers(1, 100), eta_min=st.sampled_from([0.0, 1e-6, 1e-3]))
def test_cosine_matches_torch_random(lrs, t_max, eta_min):
    L = _lr_sched()
    n = 120
    want = _torch_run(lambda o: L.CosineAnnealingLR(o, t_max, eta_min), n, lrs)
    got = _run(S.CosineAnnealingLR(_Opt(lrs), t_max, eta_min), n)
    for t, (g_row, w_row) in enumerate(zip(got, want)):
        for b, g, w in zip(lrs, g_row, w_row):
            # 1e-12 relative; torch's recursive form drifts by ulps of the schedule's scale
            # max(base_lr, eta_min) (up to ~2e-13 of it in 120 steps), which exceeds 1e-12 of
            # the rate itself when eta_min >> base_lr (a rising "anneal").
            assert math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-12 * max(b, eta_min)), (t, g, w)


@HYP
@given(
    lrs=lrs_st,
    t_0=st.integers(1, 20),
    t_mult=st.integers(1, 4),
    eta_min=st.sampled_from([0.0, 1e-4]),
)
def test_warm_restarts_match_torch_random(lrs, t_0, t_mult, eta_min):
    L = _lr_sched()
    want = _torch_run(lambda o: L.CosineAnnealingWarmRestarts(o, t_0, t_mult, eta_min), 150, lrs)
    got = _run(S.CosineAnnealingWarmRestarts(_Opt(lrs), t_0, t_mult, eta_min), 150)
    assert got == want  # same integer counters and the same float expression


@HYP
@given(
    max_lrs=lrs_st,
    total=st.integers(2, 200),
    pct=st.floats(0.0, 0.5),
    strategy=st.sampled_from(["cos", "linear"]),
    three=st.booleans(),
    div=st.floats(1.0, 100.0),
    final_div=st.floats(1.0, 1e5),
)
def test_onecycle_matches_torch_random(max_lrs, total, pct, strategy, three, div, final_div):
    # skip the set-ups where torch divides by zero (a phase of length 0 containing a step)
    ends = [float(pct * total) - 1]
    if three:
        ends.append(float(2 * pct * total) - 2)
    if any(e == s and e >= 0 for e, s in zip(ends, [0.0, *ends])):
        return
    L = _lr_sched()
    kw = dict(
        total_steps=total,
        pct_start=pct,
        anneal_strategy=strategy,
        three_phase=three,
        div_factor=div,
        final_div_factor=final_div,
    )
    want = _torch_run(
        lambda o: L.OneCycleLR(o, list(max_lrs), cycle_momentum=False, **kw), total, max_lrs
    )
    got = _run(S.OneCycleLR(_Opt(max_lrs), list(max_lrs), **kw), total)
    assert got == want  # the same float expressions as torch: bit for bit


# ------------------------------------------------------------------------------ state dicts
STATEFUL = dict(CLOSED)
STATEFUL["Warmup+OneCycle"] = lambda o: S.LinearWarmup(
    S.OneCycleLR(o, max_lr=0.3, total_steps=150), warmup_steps=8, start_factor=0.3
)


@pytest.mark.parametrize("name", sorted(STATEFUL))
@pytest.mark.parametrize("k", [0, 1, 17, 64])
def test_state_dict_round_trip_resumes_identically(name, k):
    make = STATEFUL[name]
    opt_a = _Opt()
    a = make(opt_a)
    for _ in range(k):
        a.step()
    sd = a.state_dict()
    text = json.dumps(sd, allow_nan=False)  # plain JSON
    opt_b = _Opt((0.7, 0.07))  # different starting lrs: everything must come from the state
    b = make(opt_b)
    b.load_state_dict(json.loads(text))
    assert _lrs(opt_b) == _lrs(opt_a)
    assert b.get_last_lr() == a.get_last_lr()
    assert b.base_lrs == a.base_lrs
    assert b.state_dict() == sd
    n = 150 - k - 1 if "OneCycle" in name else 80
    assert _run(b, n) == _run(a, n)


def test_state_dict_restores_hyper_parameters():
    a = S.StepLR(_Opt(), step_size=3, gamma=0.5)
    b = S.StepLR(_Opt(), step_size=10, gamma=0.9)
    b.load_state_dict(a.state_dict())
    assert (b.step_size, b.gamma) == (3, 0.5)
    assert _run(b, 20) == _run(a, 20)


def test_load_state_dict_rejects_other_schedule_and_bad_input():
    sd = S.StepLR(_Opt(), step_size=3).state_dict()
    with pytest.raises(ValueError, match="StepLR"):
        S.ExponentialLR(_Opt(), gamma=0.5).load_state_dict(sd)
    with pytest.raises(TypeError, match="state_dict"):
        S.StepLR(_Opt(), step_size=3).load_state_dict([1, 2])
    del sd["gamma"]
    with pytest.raises(ValueError, match="gamma"):
        S.StepLR(_Opt(), step_size=3).load_state_dict(sd)
    sd3 = S.StepLR(_Opt((0.1, 0.2, 0.3)), step_size=3).state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        S.StepLR(_Opt(), step_size=3).load_state_dict(sd3)


# ------------------------------------------------------------------------------ warm-up
@pytest.mark.parametrize("name", sorted(n for n in CLOSED if not n.startswith("Warmup")))
@pytest.mark.parametrize("warmup,start", [(0, 0.0), (1, 0.5), (10, 0.0), (25, 0.3)])
def test_warmup_composes_with_every_schedule(name, warmup, start):
    n = 150 if "OneCycle" in name else 151
    plain = _run(CLOSED[name](_Opt()), n)  # the inner schedule alone, same clock
    opt = _Opt()
    sched = S.LinearWarmup(CLOSED[name](opt), warmup_steps=warmup, start_factor=start)
    got = _run(sched, n)
    for t, (g_row, p_row) in enumerate(zip(got, plain)):
        f = start + (1 - start) * t / warmup if t < warmup else 1.0
        assert g_row == [f * p for p in p_row], t
    if warmup:
        assert got[0] == [start * p for p in plain[0]]
    assert got[warmup:] == plain[warmup:]


def test_warmup_lr_at_and_state():
    opt = _Opt()
    inner = S.InverseSqrtLR(opt, decay=1.0)
    w = S.LinearWarmup(inner, warmup_steps=4)
    assert w.get_last_lr() == [0.0, 0.0]
    assert w.lr_at(2, 0.1) == 0.5 * 0.1 / math.sqrt(3.0)
    assert w.lr_at(9, 0.1) == inner.lr_at(9, 0.1)
    w.step()
    assert inner.last_epoch == w.last_epoch == 1
    assert inner.get_last_lr() == [0.1 / math.sqrt(2.0), 0.01 / math.sqrt(2.0)]
    assert _lrs(opt) == [0.25 * x for x in inner.get_last_lr()]


def test_warmup_can_be_nested():
    opt = _Opt()
    w = S.LinearWarmup(S.LinearWarmup(S.StepLR(opt, 5, 0.5), 4), 2, 0.5)
    seq = _run(w, 12)
    assert seq[1] == [0.75 * (0.25 * b) for b in BASE_LRS]  # outer 1/2 + 1/2 * 1/2, inner 1/4
    assert seq[3] == [0.75 * b for b in BASE_LRS]  # outer done at 2, inner at 4
    assert seq[5] == [0.5 * b for b in BASE_LRS]


# ------------------------------------------------------------------------------ plateau
def _plateau_pair(metrics, lrs=BASE_LRS, **kw):
    """(ours, torch) after each metric: lrs and counters."""
    torch = pytest.importorskip("torch")
    params = [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)) for _ in lrs]
    topt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lr=lrs[0])
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    opt = _Opt(lrs)
    ours = S.ReduceLROnPlateau(opt, **kw)
    got, want = [], []
    for m in metrics:
        topt.step()
        ts.step(m)
        ours.step(m)
        want.append((ts.get_last_lr(), ts.num_bad_epochs, ts.cooldown_counter, ts.last_epoch))
        got.append(
            (ours.get_last_lr(), ours.num_bad_epochs, ours.cooldown_counter, ours.last_epoch)
        )
        assert _lrs(opt) == ours.get_last_lr()
        b1, b2 = ts.best, ours.best
        assert b1 == b2 or (math.isnan(b1) and math.isnan(b2))
    return got, want


SCRIPT = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.8, 0.80001, 0.9, 0.9, 0.9, 0.9, 0.7] + [0.7] * 30


@pytest.mark.parametrize(
    "kw",
    [
        dict(patience=2),
        dict(patience=0, cooldown=2),
        dict(patience=1, factor=0.5, threshold=0.05),
        dict(patience=1, threshold=0.01, threshold_mode="abs", cooldown=1),
        dict(patience=1, factor=0.5, min_lr=[0.02, 0.001]),
        dict(patience=0, factor=0.5, min_lr=0.004, eps=1e-3),
        dict(mode="max", patience=1, factor=0.2),
        dict(mode="max", patience=2, threshold_mode="abs", threshold=0.0),
    ],
)
def test_plateau_scripted_matches_torch(kw):
    got, want = _plateau_pair(SCRIPT, **kw)
    assert got == want
    assert got[-1][0] != list(BASE_LRS)  # the script does trigger reductions


def test_plateau_nan_and_inf_follow_torch():
    nan, inf = math.nan, math.inf
    got, want = _plateau_pair([nan, 1.0, nan, nan, nan, -inf, 3.0, inf, nan] * 3, patience=1)
    assert got == want


def test_plateau_scripted_by_hand():
    opt = _Opt()
    s = S.ReduceLROnPlateau(opt, patience=1, factor=0.5, cooldown=1)
    for m in [5.0, 5.0]:  # best, 1 bad
        s.step(m)
    assert _lrs(opt) == list(BASE_LRS)
    s.step(5.0)  # 2 bad > patience: reduce, cooldown 1
    assert _lrs(opt) == [0.05, 0.005] and s.in_cooldown
    s.step(5.0)  # cooldown: not counted
    s.step(5.0)  # 1 bad
    assert _lrs(opt) == [0.05, 0.005]
    s.step(5.0)  # 2 bad: reduce
    assert _lrs(opt) == [0.025, 0.0025]


# mode="max", threshold_mode="abs": better means a > best + 0.5 (strictly); patience 1,
# factor 0.5, cooldown 1, min_lr (0.03, 0), eps 1e-3. Columns: metric, then after the step
# the two learning rates, best, num_bad_epochs, cooldown_counter.
PLATEAU_MAX_ABS = [
    (10.0, 0.1, 0.01, 10.0, 0, 0),  # first value: best
    (10.5, 0.1, 0.01, 10.0, 1, 0),  # 10.5 is not > 10 + 0.5
    (10.6, 0.1, 0.01, 10.6, 0, 0),  # better by more than 0.5 (relative 0.5 would need 15)
    (10.0, 0.1, 0.01, 10.6, 1, 0),
    (11.0, 0.05, 0.005, 10.6, 0, 1),  # 2 bad > patience: halve, cooldown 1
    (9.0, 0.05, 0.005, 10.6, 0, 0),  # cooldown: not counted
    (9.0, 0.05, 0.005, 10.6, 1, 0),
    (9.0, 0.03, 0.0025, 10.6, 0, 1),  # 0.025 is below min_lr 0.03
    (11.2, 0.03, 0.0025, 11.2, 0, 0),  # better, during cooldown
    (11.0, 0.03, 0.0025, 11.2, 1, 0),
    (11.0, 0.03, 0.00125, 11.2, 0, 1),  # group 0 at min_lr; group 1 drops 0.00125 > eps
    (11.0, 0.03, 0.00125, 11.2, 0, 0),
    (11.0, 0.03, 0.00125, 11.2, 1, 0),
    (11.0, 0.03, 0.00125, 11.2, 0, 1),  # 0.000625 <= eps: skipped, cooldown starts anyway
]


@pytest.mark.parametrize("mode", ["max", "min"])
def test_plateau_max_abs_scripted_by_hand(mode):
    sign = 1.0 if mode == "max" else -1.0  # "min" on the negated metric: the same rates
    opt = _Opt()
    s = S.ReduceLROnPlateau(opt, mode=mode, threshold_mode="abs", threshold=0.5, patience=1,
                            factor=0.5, cooldown=1, min_lr=[0.03, 0.0], eps=1e-3)
    for i, (m, lr0, lr1, best, bad, cooldown) in enumerate(PLATEAU_MAX_ABS):
        s.step(sign * m)
        got = (_lrs(opt), s.best, s.num_bad_epochs, s.cooldown_counter, s.last_epoch)
        assert got == ([lr0, lr1], sign * best, bad, cooldown, i + 1), i
        assert s.get_last_lr() == [lr0, lr1]
    if mode == "max":  # relative threshold 0.5: 10.6 is no improvement on 10 (needs > 15)
        opt = _Opt()
        s = S.ReduceLROnPlateau(opt, mode=mode, threshold_mode="rel", threshold=0.5, patience=1,
                                factor=0.5, cooldown=1, min_lr=[0.03, 0.0], eps=1e-3)
        for m, *_ in PLATEAU_MAX_ABS[:3]:
            s.step(m)
        assert _lrs(opt) == [0.05, 0.005]


@HYP
@given(
    metrics=st.lists(
        st.one_of(
            st.sampled_from([1.0, 0.5, 0.49999, 2.0, -1.0, 0.0, math.nan]),
            st.floats(-10, 10),
        ),
        max_size=60,
    ),
    lrs=lrs_st,
    mode=st.sampled_from(["min", "max"]),
    threshold_mode=st.sampled_from(["rel", "abs"]),
    threshold=st.sampled_from([0.0, 1e-4, 0.1]),
    patience=st.integers(0, 4),
    cooldown=st.integers(0, 3),
    factor=st.floats(0.0, 0.99),
    min_lr=st.sampled_from([0.0, 1e-3]),
    eps=st.sampled_from([0.0, 1e-8, 1e-3]),
)
def test_plateau_matches_torch_random(metrics, lrs, **kw):
    got, want = _plateau_pair(metrics, lrs, **kw)
    assert got == want


def test_plateau_accepts_numpy_and_min_lr_list():
    np = pytest.importorskip("numpy")
    opt = _Opt()
    s = S.ReduceLROnPlateau(opt, patience=0, min_lr=[0.05, 0.0])
    s.step(np.float32(1.0))
    s.step(np.array(2.0))
    assert _lrs(opt) == [0.05, 0.001]


@pytest.mark.parametrize("k", [0, 3, 7, 12])
def test_plateau_state_dict_round_trip(k):
    metrics = SCRIPT + [math.nan, 0.1, 0.2]
    opt_a = _Opt()
    a = S.ReduceLROnPlateau(opt_a, mode="min", patience=1, cooldown=2, min_lr=[0.0, 0.001])
    for m in metrics[:k]:
        a.step(m)
    text = json.dumps(a.state_dict(), allow_nan=False)
    opt_b = _Opt((0.3, 0.3))
    b = S.ReduceLROnPlateau(opt_b, mode="max", patience=5)
    b.load_state_dict(json.loads(text))
    assert _lrs(opt_b) == _lrs(opt_a)
    assert b.state_dict() == a.state_dict()
    for m in metrics[k:]:
        a.step(m)
        b.step(m)
        assert _lrs(opt_b) == _lrs(opt_a)
        assert (b.best, b.num_bad_epochs, b.cooldown_counter) == (
            a.best,
            a.num_bad_epochs,
            a.cooldown_counter,
        )


def test_plateau_bad_metric_type():
    s = S.ReduceLROnPlateau(_Opt())
    with pytest.raises(TypeError, match="metrics"):
        s.step("abc")
    assert s.last_epoch == 0


def test_plateau_is_not_a_warmup_inner():
    with pytest.raises(TypeError, match="schedule"):
        S.LinearWarmup(S.ReduceLROnPlateau(_Opt()), 5)


# ------------------------------------------------------------------------------ bad arguments
class _NoGroups:
    pass


class _GroupsNotDicts:
    param_groups = [0.1]


class _NoLr:
    def __init__(self):
        self.param_groups = [{"params": []}]


class _NegativeLr:
    def __init__(self):
        self.param_groups = [{"lr": -0.1}]


def _opt():
    return _Opt()


BAD = [
    (lambda: S.StepLR(_NoGroups(), 3), TypeError, "optimizer"),
    (lambda: S.StepLR(_GroupsNotDicts(), 3), TypeError, r"param_groups\[0\]"),
    (lambda: S.StepLR(_NoLr(), 3), KeyError, "lr"),
    (lambda: S.StepLR(_NegativeLr(), 3), ValueError, "lr"),
    (lambda: S.ReduceLROnPlateau(_NoGroups()), TypeError, "optimizer"),
    (lambda: S.ConstantLR(_opt(), factor=1.5), ValueError, "factor"),
    (lambda: S.ConstantLR(_opt(), factor=-0.1), ValueError, "factor"),
    (lambda: S.ConstantLR(_opt(), total_iters=-1), ValueError, "total_iters"),
    (lambda: S.StepLR(_opt(), step_size=-2), ValueError, "step_size"),
    (lambda: S.StepLR(_opt(), step_size=0), ValueError, "step_size"),
    (lambda: S.StepLR(_opt(), step_size=2.5), TypeError, "step_size"),
    (lambda: S.StepLR(_opt(), step_size=2, gamma=0.0), ValueError, "gamma"),
    (lambda: S.StepLR(_opt(), step_size=2, gamma=-1.0), ValueError, "gamma"),
    (lambda: S.StepLR(_opt(), step_size=2, gamma=math.nan), ValueError, "gamma"),
    (lambda: S.StepLR(_opt(), step_size=2, gamma="0.1"), TypeError, "gamma"),
    (lambda: S.StepLR(_opt(), step_size=2, last_epoch=-2), ValueError, "last_epoch"),
    (lambda: S.MultiStepLR(_opt(), milestones=[3, -1]), ValueError, "milestones"),
    (lambda: S.MultiStepLR(_opt(), milestones=5), TypeError, "milestones"),
    (lambda: S.MultiStepLR(_opt(), milestones=[2], gamma=0), ValueError, "gamma"),
    (lambda: S.ExponentialLR(_opt(), gamma=0.0), ValueError, "gamma"),
    (lambda: S.ExponentialLR(_opt(), gamma=math.inf), ValueError, "gamma"),
    (lambda: S.InverseTimeLR(_opt(), decay=-1.0), ValueError, "decay"),
    (lambda: S.InverseSqrtLR(_opt(), decay=-1e-3), ValueError, "decay"),
    (lambda: S.PolynomialLR(_opt(), total_iters=0), ValueError, "total_iters"),
    (lambda: S.PolynomialLR(_opt(), power=-1.0), ValueError, "power"),
    (lambda: S.CosineAnnealingLR(_opt(), T_max=0), ValueError, "T_max"),
    (lambda: S.CosineAnnealingLR(_opt(), T_max=5, eta_min=-1.0), ValueError, "eta_min"),
    (lambda: S.CosineAnnealingWarmRestarts(_opt(), T_0=0), ValueError, "T_0"),
    (lambda: S.CosineAnnealingWarmRestarts(_opt(), T_0=2, T_mult=0), ValueError, "T_mult"),
    (lambda: S.CosineAnnealingWarmRestarts(_opt(), T_0=2, T_mult=1.5), TypeError, "T_mult"),
    (lambda: S.OneCycleLR(_opt(), max_lr=0.1, total_steps=0), ValueError, "total_steps"),
    (lambda: S.OneCycleLR(_opt(), max_lr=0.1, total_steps=-5), ValueError, "total_steps"),
    (lambda: S.OneCycleLR(_opt(), max_lr=0.1, total_steps=None), TypeError, "total_steps"),
    (lambda: S.OneCycleLR(_opt(), max_lr=[0.1], total_steps=10), ValueError, "max_lr"),
    (lambda: S.OneCycleLR(_opt(), max_lr=0.0, total_steps=10), ValueError, "max_lr"),
    (lambda: S.OneCycleLR(_opt(), 0.1, 10, pct_start=1.5), ValueError, "pct_start"),
    (lambda: S.OneCycleLR(_opt(), 0.1, 10, anneal_strategy="exp"), ValueError, "anneal"),
    (lambda: S.OneCycleLR(_opt(), 0.1, 10, div_factor=0), ValueError, "div_factor"),
    (lambda: S.OneCycleLR(_opt(), 0.1, 10, final_div_factor=-1), ValueError, "final_div"),
    (lambda: S.OneCycleLR(_opt(), 0.1, 10, last_epoch=10), ValueError, "total_steps"),
    (lambda: S.LinearWarmup(_opt(), 5), TypeError, "schedule"),
    (lambda: S.LinearWarmup(S.Constant(_opt()), -1), ValueError, "warmup_steps"),
    (lambda: S.LinearWarmup(S.Constant(_opt()), 3, start_factor=2.0), ValueError, "start_f"),
    (lambda: S.ReduceLROnPlateau(_opt(), mode="minimum"), ValueError, "mode"),
    (lambda: S.ReduceLROnPlateau(_opt(), factor=1.0), ValueError, "factor"),
    (lambda: S.ReduceLROnPlateau(_opt(), factor=2.0), ValueError, "factor"),
    (lambda: S.ReduceLROnPlateau(_opt(), factor=-0.5), ValueError, "factor"),
    (lambda: S.ReduceLROnPlateau(_opt(), patience=-1), ValueError, "patience"),
    (lambda: S.ReduceLROnPlateau(_opt(), threshold=-1e-4), ValueError, "threshold"),
    (lambda: S.ReduceLROnPlateau(_opt(), threshold_mode="pct"), ValueError, "threshold_mode"),
    (lambda: S.ReduceLROnPlateau(_opt(), cooldown=-1), ValueError, "cooldown"),
    (lambda: S.ReduceLROnPlateau(_opt(), min_lr=[0.0]), ValueError, "min_lr"),
    (lambda: S.ReduceLROnPlateau(_opt(), min_lr=-1.0), ValueError, "min_lr"),
    (lambda: S.ReduceLROnPlateau(_opt(), eps=-1.0), ValueError, "eps"),
    (lambda: S.StepLR(_opt(), 2).lr_at(-1, 0.1), ValueError, "t"),
    (lambda: S.StepLR(_opt(), 2).lr_at(1.5, 0.1), TypeError, "t"),
]


@pytest.mark.parametrize("call,exc,name", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_arguments(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


def test_bad_arguments_leave_optimizer_untouched():
    opt = _Opt()
    with pytest.raises(ValueError):
        S.StepLR(opt, step_size=0)
    with pytest.raises(ValueError):
        S.OneCycleLR(opt, max_lr=0.1, total_steps=10, pct_start=2.0)
    assert opt.param_groups == [{"lr": 0.1}, {"lr": 0.01}]


# ------------------------------------------------------------------------------ bad state dicts
BAD_STATES = [
    # (make, changes to a valid state dict, exception, the key the message names)
    (lambda o: S.StepLR(o, 2), {"step_size": 5, "last_epoch": "x"}, TypeError, "last_epoch"),
    (lambda o: S.StepLR(o, 2), {"step_size": 0}, ValueError, "step_size"),
    (lambda o: S.StepLR(o, 2), {"gamma": "abc"}, TypeError, "gamma"),
    (lambda o: S.StepLR(o, 2), {"base_lrs": ["x", 0.1], "last_epoch": 9}, TypeError,
     r"base_lrs'\]\[0\]"),
    (lambda o: S.StepLR(o, 2), {"base_lrs": 0.1}, TypeError, "base_lrs"),
    (lambda o: S.StepLR(o, 2), {"last_lr": [0.1, -0.2]}, ValueError, r"last_lr'\]\[1\]"),
    (lambda o: S.StepLR(o, 2), {"last_epoch": -2}, ValueError, "last_epoch"),
    (lambda o: S.MultiStepLR(o, [2, 4]), {"milestones": [1, -1]}, ValueError, "milestones"),
    (lambda o: S.ConstantLR(o, 0.5, 3), {"factor": 2.0}, ValueError, "factor"),
    (lambda o: S.PolynomialLR(o), {"power": None}, TypeError, "power"),
    (lambda o: S.CosineAnnealingWarmRestarts(o, 3), {"T_0": 0}, ValueError, "T_0"),
    (lambda o: S.CosineAnnealingWarmRestarts(o, 3), {"T_i": 0}, ValueError, "T_i"),
    (lambda o: S.CosineAnnealingWarmRestarts(o, 3), {"T_cur": 3}, ValueError, "T_cur"),
    (lambda o: S.OneCycleLR(o, 0.5, 10), {"last_epoch": 11}, ValueError, "last_epoch"),
    (lambda o: S.OneCycleLR(o, 0.5, 10), {"max_lrs": [0.5]}, ValueError, "max_lrs"),
    (lambda o: S.OneCycleLR(o, 0.5, 10), {"three_phase": "yes"}, TypeError, "three_phase"),
    (lambda o: S.OneCycleLR(o, 0.5, 10), {"anneal_strategy": "exp"}, ValueError, "anneal"),
    (lambda o: S.LinearWarmup(S.StepLR(o, 2), 3), {"warmup_steps": -3}, ValueError,
     "warmup_steps"),
    (lambda o: S.LinearWarmup(S.StepLR(o, 2), 3), {"schedule": {"gamma": -1.0}}, ValueError,
     r"schedule'\]: state_dict\['gamma'\]"),
    (lambda o: S.ReduceLROnPlateau(o), {"factor": 5.0}, ValueError, "factor"),
    (lambda o: S.ReduceLROnPlateau(o), {"patience": "a"}, TypeError, "patience"),
    (lambda o: S.ReduceLROnPlateau(o), {"best": "x"}, TypeError, "best"),
    (lambda o: S.ReduceLROnPlateau(o), {"min_lrs": [0.0]}, ValueError, "min_lrs"),
    (lambda o: S.ReduceLROnPlateau(o), {"num_bad_epochs": -1}, ValueError, "num_bad_epochs"),
]


@pytest.mark.parametrize("make,change,exc,key", BAD_STATES,
                         ids=[f"bad_state{i}" for i in range(len(BAD_STATES))])
def test_load_state_dict_checks_like_the_constructor_and_changes_nothing(make, change, exc,
                                                                          key):
    opt = _Opt()
    sched = make(opt)
    for _ in range(3):
        sched.step(1.0) if isinstance(sched, S.ReduceLROnPlateau) else sched.step()
    before, lrs = sched.state_dict(), _lrs(opt)
    bad = json.loads(json.dumps(before))
    for k, v in change.items():
        if isinstance(v, dict):
            bad[k].update(v)
        else:
            bad[k] = v
    with pytest.raises(exc, match=key):
        sched.load_state_dict(bad)
    assert sched.state_dict() == before and _lrs(opt) == lrs
    sched.load_state_dict(before)  # still loads a good state
    assert sched.state_dict() == before
