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
def _lam(t):
    """A LambdaLR factor (a function: torch saves no state for it)."""
    return 0.9 ** (t // 3) + 0.05 * (t % 2)


def _mul(t):
    """A MultiplicativeLR factor."""
    return 0.97 if t % 4 else 1.05


def _restarts(t, b, t_0, mult, eta_min=0.0):
    """SGDR by hand: cycles of t_0, t_0 * mult, ... starting at 0, t_0, ..."""
    start, length = 0, t_0
    while t >= start + length:
        start, length = start + length, length * mult
    return eta_min + (b - eta_min) * (1 + math.cos(math.pi * (t - start) / length)) / 2


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
    "LinearLR": lambda o: S.LinearLR(o, start_factor=0.2, end_factor=0.7, total_iters=13),
    "LambdaLR": lambda o: S.LambdaLR(o, _lam),
    "MultiplicativeLR": lambda o: S.MultiplicativeLR(o, _mul),
    "SequentialLR": lambda o: S.SequentialLR(
        o,
        [
            S.LinearLR(o, start_factor=0.1, total_iters=8),
            S.CosineAnnealingLR(o, T_max=15, eta_min=1e-3),
            S.MultiplicativeLR(o, _mul),
        ],
        milestones=[8, 20],
    ),
    "Sequential(nested)": lambda o: S.SequentialLR(
        o,
        [
            S.ChainedScheduler([S.ConstantLR(o, 0.5, 3), S.LinearLR(o, 0.25, total_iters=6)]),
            S.LinearWarmup(S.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2), 5),
        ],
        milestones=[12],
    ),
    "Chained": lambda o: S.ChainedScheduler(
        [S.ConstantLR(o, 0.5, 6), S.ExponentialLR(o, 0.97), S.LinearLR(o, 0.3, total_iters=10)]
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
        return _restarts(t, b, 3, 2, 1e-5)
    if name == "Warmup+Cosine":
        inner = b * (1 + math.cos(math.pi * t / 120)) / 2
        return inner * (0.1 + 0.9 * t / 15) if t < 15 else inner
    if name == "Warmup+Restarts":  # cycles of 4, 12, 36, ... from 0, 4, 16, 52, ...; the
        start, length = 0, 4  # warm-up (from 0, over 10 steps) scales the first 10 steps
        while t >= start + length:
            start, length = start + length, length * 3
        inner = b * (1 + math.cos(math.pi * (t - start) / length)) / 2
        return inner * t / 10 if t < 10 else inner
    if name == "LinearLR":
        return b * (0.2 + 0.5 * min(t, 13) / 13)
    if name == "LambdaLR":
        return b * _lam(t)
    if name == "MultiplicativeLR":
        return b * math.prod(_mul(s) for s in range(1, t + 1))
    if name == "SequentialLR":  # each schedule from its own step 0 at its milestone
        if t < 8:
            return b * (0.1 + 0.9 * t / 8)
        if t < 20:
            return 1e-3 + (b - 1e-3) * (1 + math.cos(math.pi * (t - 8) / 15)) / 2
        return b * math.prod(_mul(s) for s in range(1, t - 20 + 1))
    if name == "Sequential(nested)":
        if t < 12:
            return b * (0.5 if t < 3 else 1.0) * (0.25 + 0.75 * min(t, 6) / 6)
        u = t - 12
        return _restarts(u, b, 4, 2) * (u / 5 if u < 5 else 1.0)
    if name == "Chained":  # the product of the three factors
        return b * (0.5 if t < 6 else 1.0) * 0.97**t * (0.3 + 0.7 * min(t, 10) / 10)
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
        "LinearLR",
        "LambdaLR",
        "MultiplicativeLR",
        "SequentialLR",
        "Sequential(nested)",
        "Chained",
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
    "LambdaLR": (
        lambda L: lambda o: L.LambdaLR(o, [_lam, _inv]),
        lambda o: S.LambdaLR(o, [_lam, _inv]),
    ),
    "MultiplicativeLR": (
        lambda L: lambda o: L.MultiplicativeLR(o, [_mul, _inv]),
        lambda o: S.MultiplicativeLR(o, (_mul, _inv)),
    ),
    "LinearLR": (
        lambda L: lambda o: L.LinearLR(o, start_factor=0.2, end_factor=0.7, total_iters=13),
        lambda o: S.LinearLR(o, start_factor=0.2, end_factor=0.7, total_iters=13),
    ),
    "LinearLR-defaults": (lambda L: L.LinearLR, S.LinearLR),
    "LinearLR-down": (
        lambda L: lambda o: L.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=100),
        lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=100),
    ),
    "SequentialLR": (
        lambda L: lambda o: L.SequentialLR(o, _seq(L, o), milestones=[8, 20, 31]),
        lambda o: S.SequentialLR(o, _seq(S, o), milestones=[8, 20, 31]),
    ),
    "SequentialLR-doc": (  # torch's docstring example: 0.005 up to 19, then 0.05 * 0.9**(t-20)
        lambda L: lambda o: L.SequentialLR(
            o, [L.ConstantLR(o, factor=0.1, total_iters=20), L.ExponentialLR(o, gamma=0.9)], [20]
        ),
        lambda o: S.SequentialLR(
            o, [S.ConstantLR(o, factor=0.1, total_iters=20), S.ExponentialLR(o, gamma=0.9)], [20]
        ),
    ),
    "ChainedScheduler": (
        lambda L: lambda o: L.ChainedScheduler(_chain(L, o)),
        lambda o: S.ChainedScheduler(_chain(S, o)),
    ),
    "OneCycle-epochs": (
        lambda L: lambda o: L.OneCycleLR(
            o, max_lr=[0.5, 0.05], epochs=3, steps_per_epoch=50, cycle_momentum=False
        ),
        lambda o: S.OneCycleLR(o, max_lr=[0.5, 0.05], epochs=3, steps_per_epoch=50),
    ),
}
NEW_TORCH = ["LambdaLR", "MultiplicativeLR", "LinearLR", "SequentialLR", "ChainedScheduler",
             "OneCycle-epochs"]


def _inv(t):
    return 1.0 / (1.0 + 0.05 * t)


def _seq(M, o):
    """Four schedules for SequentialLR, from torch.optim.lr_scheduler or nesy (module M)."""
    return [
        M.LinearLR(o, start_factor=0.1, total_iters=8),
        M.CosineAnnealingLR(o, T_max=15, eta_min=1e-3),
        M.StepLR(o, step_size=4, gamma=0.5),
        M.LambdaLR(o, [_lam, _inv]),
    ]


def _chain(M, o):
    """Multiplicative schedules for ChainedScheduler (module M: torch's or nesy's)."""
    return [
        M.ConstantLR(o, factor=0.5, total_iters=6),
        M.ExponentialLR(o, gamma=0.97),
        M.LinearLR(o, start_factor=0.3, total_iters=10),
        M.MultiplicativeLR(o, [_mul, _inv]),
        M.StepLR(o, step_size=25, gamma=0.8),
    ]


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
    (lambda: S.OneCycleLR(_opt(), max_lr=0.1, total_steps=None), ValueError, "total_steps"),
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


# ------------------------------------------------------------------------------ lambdas, linear,
# ------------------------------------------------------------------------------ sequential, chained
def test_linear_lr_by_hand():
    # factor from 0.2 to 0.7 in 5 steps: 0.2, 0.3, ..., 0.7, then 0.7; torch's defaults
    # (1/3 to 1 in 5 steps) on base 0.3: 0.1, 0.14, 0.18, 0.22, 0.26, 0.3
    seq = [row[0] for row in _run(S.LinearLR(_Opt((1.0,)), 0.2, 0.7, 5), 9)]
    for got, want in zip(seq, [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.7, 0.7, 0.7]):
        assert math.isclose(got, want, rel_tol=1e-14), seq
    seq = [row[0] for row in _run(S.LinearLR(_Opt((0.3,))), 8)]
    for got, want in zip(seq, [0.1, 0.14, 0.18, 0.22, 0.26, 0.3, 0.3, 0.3]):
        assert math.isclose(got, want, rel_tol=1e-14), seq


def test_lambda_lr_per_group_by_hand():
    opt = _Opt((0.1, 0.01))
    sched = S.LambdaLR(opt, [lambda t: t // 3, lambda t: 0.5**t])
    seq = _run(sched, 7)
    assert [r[0] for r in seq] == [0.1 * (t // 3) for t in range(7)]
    assert [r[1] for r in seq] == [0.01 * 0.5**t for t in range(7)]
    assert sched.lr_at(5, 2.0, group=1) == 2.0 / 32 and sched.lr_at(5, 2.0) == 2.0
    with pytest.raises(ValueError, match="group"):
        sched.lr_at(5, 2.0, group=2)


def test_multiplicative_lr_per_group_by_hand():
    calls = []

    def half(t):
        calls.append(t)
        return 0.5

    opt = _Opt((0.1, 0.01))
    sched = S.MultiplicativeLR(opt, [half, lambda t: 1.0 + t])
    assert calls == []  # not called at step 0 (as torch)
    seq = _run(sched, 5)
    assert [r[0] for r in seq] == [0.1, 0.05, 0.025, 0.0125, 0.00625]
    assert [r[1] for r in seq] == [0.01, 0.01 * 2, 0.01 * 2 * 3, 0.01 * 24, 0.01 * 120]
    assert calls == [1, 2, 3, 4, 5]
    assert sched.lr_at(4, 0.01, group=1) == seq[4][1]


def test_sequential_and_chained_torch_doc_examples_by_hand():
    # torch's docstrings (lr 0.05): ConstantLR(0.1, 20) then ExponentialLR(0.9)
    seq = [r[0] for r in _run(S.SequentialLR(*_doc_pair()), 23)]
    want = [0.005] * 20 + [0.05, 0.045, 0.0405]
    assert all(math.isclose(g, w, rel_tol=1e-14) for g, w in zip(seq, want)), seq
    chain = [r[0] for r in _run(S.ChainedScheduler(_doc_pair()[1]), 22)]
    for t, w in {0: 0.005, 1: 0.0045, 2: 0.00405, 19: 0.05 * 0.1 * 0.9**19,
                 20: 0.05 * 0.9**20, 21: 0.05 * 0.9**21}.items():
        assert math.isclose(chain[t], w, rel_tol=1e-13), (t, chain[t], w)
    assert f"{chain[19]:.6f} {chain[20]:.7f}" == "0.000675 0.0060788"  # torch's doc: 0.006078


def _doc_pair():
    opt = _Opt((0.05,))
    pair = [S.ConstantLR(opt, factor=0.1, total_iters=20), S.ExponentialLR(opt, gamma=0.9)]
    return opt, pair, [20]


def test_onecycle_epochs_times_steps_per_epoch():
    a = _run(S.OneCycleLR(_Opt(), max_lr=0.4, epochs=7, steps_per_epoch=13), 91)
    b = _run(S.OneCycleLR(_Opt(), max_lr=0.4, total_steps=91), 91)
    assert a == b
    c = S.OneCycleLR(_Opt(), max_lr=0.4, total_steps=91, epochs=7, steps_per_epoch=13)
    assert c.total_steps == 91
    # torch uses total_steps when given, a lone epochs / steps_per_epoch is ignored
    assert S.OneCycleLR(_Opt(), 0.4, total_steps=50, epochs=3).total_steps == 50
    assert S.OneCycleLR(_Opt(), 0.4, None, 4, 5).total_steps == 20  # torch's argument order


def test_sequential_resume_with_last_epoch():
    full = _run(CLOSED["SequentialLR"](_Opt()), 60)
    for k in (0, 7, 8, 19, 33):
        opt = _Opt()
        inner = [S.LinearLR(opt, start_factor=0.1, total_iters=8),
                 S.CosineAnnealingLR(opt, T_max=15, eta_min=1e-3), S.MultiplicativeLR(opt, _mul)]
        sched = S.SequentialLR(opt, inner, milestones=[8, 20], last_epoch=k)
        assert sched.last_epoch == k + 1
        got = _run(sched, 60 - k - 1)
        _assert_close(got, full[k + 1:], rel=1e-13)


class _Scaled:
    """A callable object with state: torch's LambdaLR saves and restores its __dict__."""

    def __init__(self, rate):
        self.rate = rate
        self.calls = 0

    def __call__(self, t):
        self.calls += 1
        return self.rate**t


@pytest.mark.parametrize("kind", ["LambdaLR", "MultiplicativeLR"])
def test_lambda_state_dict_saves_callable_objects_like_torch(kind):
    fns = [_Scaled(0.9), _lam]
    a = getattr(S, kind)(_Opt(), fns)
    for _ in range(6):
        a.step()
    fns[0].rate = 0.8  # the state to carry over
    sd = json.loads(json.dumps(a.state_dict(), allow_nan=False))
    assert sd["lr_lambdas"] == [{"rate": 0.8, "calls": fns[0].calls}, None]
    fresh = _Scaled(0.5)
    b = getattr(S, kind)(_Opt((0.3, 0.3)), [fresh, _lam])
    b.load_state_dict(sd)
    assert (fresh.rate, fresh.calls) == (0.8, fns[0].calls)
    assert _run(b, 20) == _run(a, 20)
    torch = pytest.importorskip("torch")
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
    topt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, BASE_LRS)])
    t_fns = [_Scaled(0.9), _lam]
    ts = getattr(torch.optim.lr_scheduler, kind)(topt, t_fns)
    t_fns[0].calls = fns[0].calls
    t_fns[0].rate = 0.8
    assert ts.state_dict()["lr_lambdas"] == a.state_dict()["lr_lambdas"]


@pytest.mark.parametrize("name", NEW_TORCH)
@pytest.mark.parametrize("k", [1, 9, 21, 40])
def test_new_schedules_resume_from_state_dict_like_torch(name, k):
    # k steps, a JSON round trip into a fresh schedule on a fresh optimizer, then the rest:
    # the same values as torch's uninterrupted run (and as ours)
    L = _lr_sched()
    make_torch, make_ours = TORCH[name]
    n = 48
    want = _torch_run(make_torch(L), n)
    a = make_ours(_Opt())
    head = _run(a, k)
    b = make_ours(_Opt((0.7, 0.07)))
    b.load_state_dict(json.loads(json.dumps(a.state_dict(), allow_nan=False)))
    assert b.state_dict() == a.state_dict()
    tail = _run(b, n - k)
    _assert_close(head + tail, want)
    assert tail == _run(a, n - k)


@HYP
@given(lrs=lrs_st, start=st.floats(0.01, 1.0), end=st.floats(0.0, 1.0), total=st.integers(1, 60))
def test_linear_lr_matches_torch_random(lrs, start, end, total):
    L = _lr_sched()
    want = _torch_run(lambda o: L.LinearLR(o, start, end, total), 80, lrs)
    got = _run(S.LinearLR(_Opt(lrs), start, end, total), 80)
    for g_row, w_row, in zip(got, want):
        for b, g, w in zip(lrs, g_row, w_row):
            # torch's recursive form drifts by ulps of the scale b * max(start, end)
            assert math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-13 * b), (g, w)


@HYP
@given(lrs=lrs_st, cuts=st.lists(st.integers(1, 25), min_size=1, max_size=3),
       gamma=st.floats(0.5, 1.0))
def test_sequential_matches_torch_random(lrs, cuts, gamma):
    milestones = [sum(cuts[: i + 1]) for i in range(len(cuts))]
    L = _lr_sched()

    def make(M, o):
        pool = [lambda: M.ExponentialLR(o, gamma), lambda: M.LinearLR(o, 0.25, total_iters=7),
                lambda: M.CosineAnnealingLR(o, T_max=9), lambda: M.MultiStepLR(o, [2, 5], gamma)]
        return M.SequentialLR(o, [pool[i % 4]() for i in range(len(cuts) + 1)], milestones)

    want = _torch_run(lambda o: make(L, o), 90, lrs)
    _assert_close(_run(make(S, _Opt(lrs)), 90), want)


# ------------------------------------------------------------------------------ their bad input
def _two():
    opt = _Opt()
    return opt, S.StepLR(opt, 3), S.ExponentialLR(opt, 0.9)


BAD_NEW = [
    (lambda: S.LambdaLR(_opt(), 0.5), TypeError, "lr_lambda"),
    (lambda: S.LambdaLR(_opt(), [_lam]), ValueError, "lr_lambda: expected 2"),
    (lambda: S.LambdaLR(_opt(), [_lam, _lam, _lam]), ValueError, "lr_lambda"),
    (lambda: S.LambdaLR(_opt(), [_lam, "x"]), TypeError, r"lr_lambda\[1\]"),
    (lambda: S.LambdaLR(_opt(), lambda t: -1.0), ValueError, r"lr_lambda\[0\]\(epoch=0\)"),
    (lambda: S.LambdaLR(_opt(), lambda t: math.nan), ValueError, "lr_lambda"),
    (lambda: S.LambdaLR(_opt(), lambda t: "1"), TypeError, "lr_lambda"),
    (lambda: S.MultiplicativeLR(_opt(), None), TypeError, "lr_lambda"),
    (lambda: S.MultiplicativeLR(_opt(), (_mul,)), ValueError, "lr_lambda"),
    (lambda: S.LinearLR(_opt(), start_factor=0.0), ValueError, "start_factor"),
    (lambda: S.LinearLR(_opt(), start_factor=1.5), ValueError, "start_factor"),
    (lambda: S.LinearLR(_opt(), end_factor=-0.1), ValueError, "end_factor"),
    (lambda: S.LinearLR(_opt(), end_factor=1.1), ValueError, "end_factor"),
    (lambda: S.LinearLR(_opt(), total_iters=0), ValueError, "total_iters"),
    (lambda: S.LinearLR(_opt(), total_iters=2.0), TypeError, "total_iters"),
    (lambda: S.SequentialLR(_opt(), [], []), ValueError, "schedulers"),
    (lambda: S.SequentialLR(_opt(), S.Constant(_opt()), []), TypeError, "schedulers"),
    (lambda: S.SequentialLR(_opt(), [S.Constant(_opt())], []), ValueError,
     r"schedulers\[0\]: is bound to another optimizer"),
    (lambda: S.SequentialLR(_two()[0], list(_two()[1:]), [3]), ValueError,
     r"schedulers\[0\]: is bound to another optimizer"),
    (lambda: (lambda o, a, b: S.SequentialLR(o, [a, b], []))(*_two()), ValueError, "milestones"),
    (lambda: (lambda o, a, b: S.SequentialLR(o, [a, b], [2, 5]))(*_two()), ValueError,
     "expected 1 milestones"),
    (lambda: (lambda o, a, b: S.SequentialLR(o, [a, b, S.Constant(o)], [4, 4]))(*_two()),
     ValueError, "strictly increasing"),
    (lambda: (lambda o, a, b: S.SequentialLR(o, [a, b, b], [5, 9]))(*_two()), ValueError,
     r"schedulers\[2\]: is schedulers\[1\] again"),
    (lambda: (lambda o, a, b: S.SequentialLR(o, [a, b], [-1]))(*_two()), ValueError,
     "milestones"),
    (lambda: (lambda o, a, b: S.SequentialLR(o, [a, b], 3))(*_two()), TypeError, "milestones"),
    (lambda: (lambda o, a, b: S.SequentialLR(o, [a, S.ReduceLROnPlateau(o)], [3]))(*_two()),
     TypeError, r"schedulers\[1\].*ReduceLROnPlateau"),
    (lambda: (lambda o, a, b: S.SequentialLR(o, [a, b], [3], last_epoch=-2))(*_two()),
     ValueError, "last_epoch"),
    (lambda: S.ChainedScheduler([]), ValueError, "schedulers"),
    (lambda: S.ChainedScheduler([_two()[1], _two()[2]]), ValueError, r"schedulers\[1\]"),
    (lambda: S.ChainedScheduler(list(_two()[1:]), optimizer=_opt()), ValueError,
     r"schedulers\[0\]: is bound to another optimizer"),
    (lambda: S.ChainedScheduler([_two()[1], 3]), TypeError, r"schedulers\[1\]"),
    (lambda: S.ChainedScheduler(_two()[1]), TypeError, "schedulers"),
    (lambda: S.OneCycleLR(_opt(), 0.1), ValueError, "total_steps"),
    (lambda: S.OneCycleLR(_opt(), 0.1, epochs=3), ValueError, "steps_per_epoch"),
    (lambda: S.OneCycleLR(_opt(), 0.1, steps_per_epoch=3), ValueError, "epochs"),
    (lambda: S.OneCycleLR(_opt(), 0.1, 10, 3, 4), ValueError, "total_steps: is 10"),
    (lambda: S.OneCycleLR(_opt(), 0.1, epochs=0, steps_per_epoch=4), ValueError, "epochs"),
    (lambda: S.OneCycleLR(_opt(), 0.1, epochs=2, steps_per_epoch=1.5), TypeError,
     "steps_per_epoch"),
]


@pytest.mark.parametrize("call,exc,name", BAD_NEW, ids=[f"bad_new{i}" for i in range(len(BAD_NEW))])
def test_bad_arguments_of_new_schedules(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


@pytest.mark.parametrize("make", [
    lambda o: S.LambdaLR(o, [_lam, lambda t: -1.0]),
    lambda o: S.LambdaLR(o, lambda t: 1 / t),  # ZeroDivisionError at step 0
    lambda o: S.MultiplicativeLR(o, [_mul, _mul, _mul]),
    lambda o: S.LinearLR(o, total_iters=0),
])
def test_bad_new_schedule_leaves_optimizer_untouched(make):
    opt = _Opt()
    with pytest.raises((TypeError, ValueError, ZeroDivisionError)):
        make(opt)
    assert opt.param_groups == [{"lr": 0.1}, {"lr": 0.01}]


def test_multiplicative_resume_with_last_epoch():
    # resuming continues from the groups' current lr (a loaded optimizer state), as torch, and
    # multiplies it by lr_lambda(k + 1) at once (torch's first step leaves it as is)
    opt = _Opt((0.3, 0.03))
    for g, lr in zip(opt.param_groups, BASE_LRS):
        g["initial_lr"] = lr
    got = _run(S.MultiplicativeLR(opt, [_mul, _inv], last_epoch=6), 20)
    assert got[0] == [0.3 * _mul(7), 0.03 * _inv(7)]
    torch = pytest.importorskip("torch")
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
    topt = torch.optim.SGD([{"params": [p], "lr": lr, "initial_lr": b}
                            for p, lr, b in zip(params, (0.3, 0.03), BASE_LRS)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = torch.optim.lr_scheduler.MultiplicativeLR(topt, [_mul, _inv], last_epoch=6)
        want = []
        for _ in range(20):
            want.append([g["lr"] for g in topt.param_groups])
            topt.step()
            ts.step()
    _assert_close(got, [[w * _mul(7), v * _inv(7)] for w, v in want])


def test_sequential_chained_clock_mismatch():
    opt, a, b = _two()
    a.step()
    with pytest.raises(ValueError, match=r"schedulers\[1\]: is at step 0"):
        S.ChainedScheduler([a, b])


def _states(scheds):
    return [s.state_dict() for s in scheds]


def test_bad_composites_change_nothing():
    opt, a, b = _two()
    for s in (a, b, a):
        s.step()
    before = (_states([a, b]), _lrs(opt))
    bad = [
        lambda: S.SequentialLR(opt, [a, b], [3, 4]),
        lambda: S.SequentialLR(opt, [a, b], [0, 0]),
        lambda: S.SequentialLR(opt, [a, b, S.StepLR(_Opt(), 2)], [3, 4]),
        lambda: S.ChainedScheduler([a, b]),  # different clocks
        lambda: S.ChainedScheduler([a, a]),
    ]
    for call in bad:
        with pytest.raises((TypeError, ValueError)):
            call()
        assert (_states([a, b]), _lrs(opt)) == before


class _Boom:
    """A factor that fails at one step."""

    def __init__(self, at, value=0.5):
        self.at, self.value = at, value

    def __call__(self, t):
        if t == self.at:
            if self.value is None:
                raise RuntimeError("boom")
            return self.value
        return 0.9


def _fails_cleanly(sched, k, exc):
    """After k steps, the next step raises ``exc`` and changes nothing."""
    for _ in range(k):
        sched.step()
    before = (sched.state_dict(), _lrs(sched.optimizer))
    with pytest.raises(exc):
        sched.step()
    assert (sched.state_dict(), _lrs(sched.optimizer)) == before


@pytest.mark.parametrize("value,exc", [(None, RuntimeError), (-0.5, ValueError)])
def test_failing_step_changes_nothing(value, exc):
    # ChainedScheduler: the 2nd schedule fails after the 1st stepped: both are put back
    opt = _Opt()
    chain = S.ChainedScheduler([S.StepLR(opt, 2, 0.5), S.MultiplicativeLR(opt, _Boom(4, value))])
    _fails_cleanly(chain, 3, exc)
    # SequentialLR: the next schedule fails when it restarts at its milestone
    opt = _Opt()
    boom = _Boom(-1, value)  # harmless while constructed, fails at step 0 (the milestone)
    seq = S.SequentialLR(opt, [S.StepLR(opt, 2), S.LambdaLR(opt, boom)], [3])
    boom.at = 0
    _fails_cleanly(seq, 2, exc)


BAD_NEW_STATES = [
    (lambda o: S.LambdaLR(o, _lam), {"lr_lambdas": [None]}, ValueError, "lr_lambdas"),
    (lambda o: S.LambdaLR(o, _lam), {"lr_lambdas": None}, TypeError, "lr_lambdas"),
    (lambda o: S.LambdaLR(o, _lam), {"lr_lambdas": [{"rate": 1.0}, None]}, ValueError,
     r"lr_lambdas'\]\[0\].*function"),
    (lambda o: S.MultiplicativeLR(o, [_Scaled(0.9), _mul]), {"lr_lambdas": [3, None]},
     TypeError, r"lr_lambdas'\]\[0\]"),
    (lambda o: S.MultiplicativeLR(o, _mul), {"last_lr": [0.1, -1.0]}, ValueError, "last_lr"),
    (lambda o: S.LinearLR(o), {"start_factor": 0.0}, ValueError, "start_factor"),
    (lambda o: S.LinearLR(o), {"total_iters": 0}, ValueError, "total_iters"),
    (CLOSED["SequentialLR"], {"milestones": [8]}, ValueError, "milestones"),
    (CLOSED["SequentialLR"], {"milestones": [20, 8]}, ValueError, "increasing"),
    (CLOSED["SequentialLR"], {"schedulers": None}, TypeError, "schedulers"),
    (CLOSED["Chained"], {"schedulers": [{}, {}]}, ValueError, r"schedulers'\]: has 2 states"),
]


@pytest.mark.parametrize("make,change,exc,key", BAD_NEW_STATES,
                         ids=[f"bad_new_state{i}" for i in range(len(BAD_NEW_STATES))])
def test_load_state_dict_of_new_schedules_checks_and_changes_nothing(make, change, exc, key):
    opt = _Opt()
    sched = make(opt)
    for _ in range(3):
        sched.step()
    before, lrs = sched.state_dict(), _lrs(opt)
    bad = {**json.loads(json.dumps(before)), **change}
    with pytest.raises(exc, match=key):
        sched.load_state_dict(bad)
    assert sched.state_dict() == before and _lrs(opt) == lrs


@pytest.mark.parametrize("name", ["SequentialLR", "Chained", "Sequential(nested)"])
def test_composite_load_rolls_back_inner_schedules(name):
    # the first inner state is good (a later step), the last one is bad: nothing is loaded
    opt = _Opt()
    sched = CLOSED[name](opt)
    for _ in range(3):
        sched.step()
    before, lrs = sched.state_dict(), _lrs(opt)
    other = CLOSED[name](_Opt())
    for _ in range(30):
        other.step()
    bad = json.loads(json.dumps(other.state_dict()))
    bad["schedulers"][-1]["last_epoch"] = "x"
    with pytest.raises(TypeError, match=r"schedulers'\]\[\d\]: .*last_epoch"):
        sched.load_state_dict(bad)
    assert sched.state_dict() == before and _lrs(opt) == lrs
    sched.load_state_dict(other.state_dict())
    assert _run(sched, 40) == _run(other, 40)


@pytest.mark.parametrize("make,name,gamma,steps", [
    (lambda o: S.ExponentialLR(o, gamma=1.5), "ExponentialLR", 1.5, 2000),
    (lambda o: S.StepLR(o, step_size=1, gamma=10.0), "StepLR", 10.0, 400),
    (lambda o: S.MultiStepLR(o, milestones=range(1, 400), gamma=10.0), "MultiStepLR", 10.0, 400),
])
def test_a_growing_gamma_that_overflows_raises_a_named_value_error(make, name, gamma, steps):
    # gamma > 1 is the learning-rate range test; Python's ** used to raise a bare OverflowError
    opt = _Opt()
    sched = make(opt)
    with pytest.raises(ValueError, match=rf"^{name}: the learning rate overflows at step \d+ "
                                         rf"\(gamma={gamma}"):
        for _ in range(steps):
            sched.step()
    t, lrs = sched.last_epoch, _lrs(opt)
    assert all(math.isfinite(lr) for lr in lrs) and lrs == sched.get_last_lr()
    with pytest.raises(ValueError, match=f"overflows at step {t + 1} "):
        sched.step()
    assert sched.last_epoch == t and _lrs(opt) == lrs  # nothing changed
    with pytest.raises(ValueError, match=f"^{name}: .*overflows"):
        sched.lr_at(t + 1, 0.1)
    assert sched.lr_at(t + 1, 0.0) == 0.0  # a rate of 0 stays 0


def test_multiplicative_lr_that_overflows_raises_a_named_value_error():
    opt = _Opt()
    sched = S.MultiplicativeLR(opt, lambda epoch: 10.0)
    with pytest.raises(ValueError, match=r"^MultiplicativeLR: the learning rate overflows at "
                                         r"step \d+"):
        for _ in range(400):
            sched.step()
    t, lrs = sched.last_epoch, _lrs(opt)
    assert all(math.isfinite(lr) for lr in lrs)
    with pytest.raises(ValueError, match="MultiplicativeLR"):
        sched.step()
    assert sched.last_epoch == t and _lrs(opt) == lrs


# ------------------------------------------------------------------------------ s15 review
def test_constant_lr_defaults_are_torchs():
    """M5: ``ConstantLR(opt)`` did nothing (factor 1, total_iters 0); torch's defaults are
    factor=1/3 for 5 steps, so a ported warm start ran at 3x the rate for those steps."""
    import inspect

    sig = inspect.signature(S.ConstantLR)
    assert sig.parameters["factor"].default == pytest.approx(1 / 3)
    assert sig.parameters["total_iters"].default == 5
    got = _run(S.ConstantLR(_Opt()), 8)
    want = [[b / 3 if t < 5 else b for b in BASE_LRS] for t in range(8)]
    _assert_close(got, want, rel=1e-15)
    pytest.importorskip("torch")
    from torch.optim import lr_scheduler as L

    _assert_close(got, _torch_run(lambda o: L.ConstantLR(o), 8), rel=1e-15)


# (torch maker, nesy maker, metric for ReduceLROnPlateau)
TORCH_STATE = {
    "StepLR": (lambda L, o: L.StepLR(o, 3, 0.5), lambda o: S.StepLR(o, 3, 0.5)),
    "MultiStepLR": (lambda L, o: L.MultiStepLR(o, [2, 5], 0.5),
                    lambda o: S.MultiStepLR(o, [2, 5], 0.5)),
    "ConstantLR": (lambda L, o: L.ConstantLR(o), lambda o: S.ConstantLR(o)),
    "LinearLR": (lambda L, o: L.LinearLR(o), lambda o: S.LinearLR(o)),
    "ExponentialLR": (lambda L, o: L.ExponentialLR(o, 0.9), lambda o: S.ExponentialLR(o, 0.9)),
    "PolynomialLR": (lambda L, o: L.PolynomialLR(o, 10, 2.0),
                     lambda o: S.PolynomialLR(o, 10, 2.0)),
    "CosineAnnealingLR": (lambda L, o: L.CosineAnnealingLR(o, 10, 1e-3),
                          lambda o: S.CosineAnnealingLR(o, 10, 1e-3)),
    "WarmRestarts": (lambda L, o: L.CosineAnnealingWarmRestarts(o, 3, 2),
                     lambda o: S.CosineAnnealingWarmRestarts(o, 3, 2)),
    "LambdaLR": (lambda L, o: L.LambdaLR(o, _lam), lambda o: S.LambdaLR(o, _lam)),
    "MultiplicativeLR": (lambda L, o: L.MultiplicativeLR(o, _mul),
                         lambda o: S.MultiplicativeLR(o, _mul)),
    "OneCycleLR": (lambda L, o: L.OneCycleLR(o, [0.5, 0.2], total_steps=20,
                                             cycle_momentum=False),
                   lambda o: S.OneCycleLR(o, [0.5, 0.2], total_steps=20)),
    "SequentialLR": (lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=3),
                                                     L.ExponentialLR(o, 0.9)], [3]),
                     lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.1, total_iters=3),
                                                  S.ExponentialLR(o, 0.9)], [3])),
    "ChainedScheduler": (lambda L, o: L.ChainedScheduler([L.ConstantLR(o, 0.5, 3),
                                                          L.ExponentialLR(o, 0.9)]),
                         lambda o: S.ChainedScheduler([S.ConstantLR(o, 0.5, 3),
                                                       S.ExponentialLR(o, 0.9)])),
    "ReduceLROnPlateau": (lambda L, o: L.ReduceLROnPlateau(o, patience=1),
                          lambda o: S.ReduceLROnPlateau(o, patience=1)),
}


@pytest.mark.parametrize("name", sorted(TORCH_STATE))
@pytest.mark.parametrize("at", [2, 6])
def test_a_torch_schedulers_state_dict_loads_and_continues_as_torch(name, at):
    """L5: a torch scheduler's state dict names the last rates '_last_lr' (and carries
    '_step_count', '_is_initial', ...); ``load_state_dict`` said "missing key(s)
    ['last_lr']". Loaded mid-run, the nesy schedule continues with torch's rates."""
    torch = pytest.importorskip("torch")
    from torch.optim import lr_scheduler as L

    make_torch, make_nesy = TORCH_STATE[name]
    params = [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)) for _ in BASE_LRS]
    topt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, BASE_LRS)],
                           lr=BASE_LRS[0])
    plateau = name == "ReduceLROnPlateau"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tsched = make_torch(L, topt)

        def advance():
            topt.step()
            tsched.step(1.0) if plateau else tsched.step()

        for _ in range(at):
            advance()
        sd = tsched.state_dict()
        assert "_last_lr" in sd and "last_lr" not in sd
        nopt = _Opt()
        nsched = make_nesy(nopt)
        nsched.load_state_dict(sd)
        assert _lrs(nopt) == pytest.approx([g["lr"] for g in topt.param_groups], rel=1e-14)
        for _ in range(6):
            advance()
            nsched.step(1.0) if plateau else nsched.step()
            want = [float(g["lr"]) for g in topt.param_groups]
            assert _lrs(nopt) == pytest.approx(want, rel=1e-13, abs=1e-300)
    json.dumps(nsched.state_dict(), allow_nan=False)  # and it saves as a nesy state again


def test_a_torch_state_dict_with_a_bad_last_lr_is_named():
    bad = {"step_size": 3, "gamma": 0.5, "base_lrs": [0.1, 0.01], "last_epoch": 2,
           "_step_count": 3, "_last_lr": ["x", 0.01]}
    opt = _Opt()
    sched = S.StepLR(opt, 3, 0.5)
    with pytest.raises(TypeError, match=r"state_dict\['last_lr'\]\[0\]"):
        sched.load_state_dict(bad)
    assert sched.last_epoch == 0 and _lrs(opt) == list(BASE_LRS)


class _Scalar:
    """An object with ``__float__`` and shape ``()``, like a torch scalar tensor."""

    shape = ()

    def __init__(self, v):
        self.v = v

    def __float__(self):
        return float(self.v)


@pytest.mark.parametrize("kind", ["0-d array", "scalar object", "torch scalar"])
def test_lambda_factor_may_be_a_0d_array_or_a_scalar_object(kind):
    """L11: ``LambdaLR(o, lambda e: np.array(0.5))`` raised "expected a real number, got
    ndarray"; torch accepts any number-like factor."""
    np = pytest.importorskip("numpy")
    if kind == "torch scalar":
        torch = pytest.importorskip("torch")
        wrap = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    else:
        wrap = np.array if kind == "0-d array" else _Scalar
    got = _run(S.LambdaLR(_Opt(), lambda e: wrap(0.5 ** e)), 4)
    _assert_close(got, [[b * 0.5 ** t for b in BASE_LRS] for t in range(4)], rel=1e-15)
    got = _run(S.MultiplicativeLR(_Opt(), lambda e: wrap(0.5)), 4)
    _assert_close(got, [[b * 0.5 ** t for b in BASE_LRS] for t in range(4)], rel=1e-15)


@pytest.mark.parametrize("factor", ["np.array(True)", "np.array([0.5])", "np.array(0.5+1j)",
                                    "np.bool_(True)", "'0.5'", "None"])
def test_lambda_factor_that_is_not_one_real_number_is_still_refused(factor):
    np = pytest.importorskip("numpy")
    value = eval(factor, {"np": np})
    with pytest.raises(TypeError, match=r"^lr_lambda\[0\]\(epoch=0\): expected a real number"):
        S.LambdaLR(_Opt(), lambda e: value)


# ---------------------------------------------------------------------- s22 review (M1)
_CLOSED_FORM = {
    "StepLR": lambda o: S.StepLR(o, step_size=1, gamma=0.5),
    "CosineAnnealingLR": lambda o: S.CosineAnnealingLR(o, T_max=10),
    "ExponentialLR": lambda o: S.ExponentialLR(o, gamma=0.99),
    "LambdaLR": lambda o: S.LambdaLR(o, lambda t: 1.0),
    "OneCycleLR": lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=10),
    "Constant": S.Constant,
}


@pytest.mark.parametrize("hd", ["SGDHD", "AdamHD", "duck"])
@pytest.mark.parametrize("make", list(_CLOSED_FORM.values()), ids=list(_CLOSED_FORM))
def test_closed_form_schedules_refuse_a_hypergradient_optimizer(hd, make):
    """M1: a schedule wrote its rate over the one SGDHD / AdamHD adapt at every step, so the
    hypergradient was thrown away each epoch, without a word. Refused at construction, naming
    ``optimizer``, before the groups change (OneCycleLR writes 'initial_lr' otherwise)."""
    np = pytest.importorskip("numpy")
    from nesy import optim

    if hd == "duck":  # any optimizer whose groups hold the hypergradient rate
        opt = _Opt([0.1])
        opt.param_groups[0]["hypergrad_lr"] = 1e-3
    else:
        opt = getattr(optim, hd)([np.ones(3)], lr=0.01)
    before = [dict(g) for g in opt.param_groups]
    with pytest.raises(ValueError, match=r"^optimizer: \w+ adapts its learning rate itself "
                                         r".*ReduceLROnPlateau"):
        make(opt)
    assert opt.param_groups == before


def test_composites_refuse_a_hypergradient_optimizer_and_plateau_scales_its_rate():
    """M1: SequentialLR / ChainedScheduler refuse it too (their members are checked as well);
    ReduceLROnPlateau stays allowed: it only scales the current, adapted rate."""
    np = pytest.importorskip("numpy")
    from nesy import optim

    hd = optim.SGDHD([np.ones(3)], lr=0.01, hypergrad_lr=0.1)
    with pytest.raises(ValueError, match=r"^optimizer: SGDHD adapts"):
        S.SequentialLR(hd, [S.Constant(_Opt())], milestones=[])
    with pytest.raises(ValueError, match=r"^optimizer: SGDHD adapts"):
        S.ChainedScheduler([S.Constant(_Opt())], optimizer=hd)
    sched = S.Constant(_Opt([0.1]))
    sched.optimizer.param_groups[0]["hypergrad_lr"] = 0.1  # became adaptive after the fact
    with pytest.raises(ValueError, match=r"^optimizer: _Opt adapts"):
        S.ChainedScheduler([sched])
    plateau = S.ReduceLROnPlateau(hd, factor=0.5, patience=0)
    hd.step([np.ones(3)])
    hd.step([np.ones(3)])  # the hypergradient moves the rate
    adapted = hd.param_groups[0]["lr"]
    assert adapted != 0.01
    plateau.step(1.0)
    assert hd.param_groups[0]["lr"] == adapted  # first value: nothing to reduce
    plateau.step(1.0)
    assert hd.param_groups[0]["lr"] == adapted * 0.5  # the adapted rate, halved
