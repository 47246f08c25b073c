"""Tests of nesy.nn: gradient checks, module protocol, losses, initialisers, Trainer, real data."""

from __future__ import annotations

import copy
import math
import os
import re
import sys
import time
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nesy.nn as nn
from nesy.nn import activations as act
from nesy.nn import init

# ---------------------------------------------------------------------- helpers


def numerical_grad(f, arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to ``arr`` (perturbed in place)."""
    g = np.zeros_like(arr, dtype=np.float64)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        fp = f()
        arr[idx] = old - eps
        fm = f()
        arr[idx] = old
        g[idx] = (fp - fm) / (2 * eps)
    return g


def check_module_grads(module: nn.Module, x: np.ndarray, seed: int = 0, atol: float = 1e-6):
    """Compare ``backward`` with finite differences of ``sum(forward(x) * r)``, for the input
    and every parameter."""
    rng = np.random.default_rng(seed)
    r = rng.standard_normal(module.forward(x).shape)

    def f() -> float:
        return float(np.sum(module.forward(x) * r))

    module.zero_grad()
    module.forward(x)
    dx = module.backward(r)
    analytic = [g.copy() for g in module.gradients()]
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx, numerical_grad(f, x), rtol=1e-5, atol=atol)
    for (name, p), g in zip(module.named_parameters(), analytic):
        np.testing.assert_allclose(g, numerical_grad(f, p), rtol=1e-5, atol=atol, err_msg=name)


def check_loss_grad(loss: nn.Loss, pred: np.ndarray, target: np.ndarray, atol: float = 1e-7):
    value = loss(pred, target)
    assert isinstance(value, float)
    grad = loss.backward()
    assert grad.shape == pred.shape and grad.dtype == pred.dtype
    num = numerical_grad(lambda: loss(pred, target), pred)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=atol)


class StubSGD:
    """Plain NumPy SGD with momentum and the nesy optimizer interface ``step(grads)``."""

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.0) -> None:
        self.params = list(params)
        self.param_groups = [{"lr": lr}]
        self.momentum = momentum
        self.velocity = [np.zeros_like(p) for p in self.params]

    def step(self, grads) -> None:
        lr = self.param_groups[0]["lr"]
        for p, g, v in zip(self.params, grads, self.velocity):
            v *= self.momentum
            v += g
            p -= lr * v


def mlp(in_features=8, hidden=16, out=3, dtype=np.float64, seed=0, dropout=0.0):
    layers = [nn.Dense(in_features, hidden, dtype=dtype, rng=seed), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout, rng=seed + 100))
    layers.append(nn.Dense(hidden, out, dtype=dtype, rng=seed + 1))
    return nn.Sequential(*layers)


def blobs(n=120, d=8, c=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((c, d)) * 2.0
    y = rng.integers(0, c, n)
    X = centers[y] + rng.standard_normal((n, d))
    return X, y


def load_digits_split():
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    X, y = datasets.load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return model_selection.train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )


# ---------------------------------------------------------------------- gradient checks


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 4), (1, 4), (2, 3, 4)])
def test_dense_gradients(bias, shape):
    layer = nn.Dense(4, 3, bias=bias, dtype=np.float64, rng=0)
    x = np.random.default_rng(1).standard_normal(shape)
    check_module_grads(layer, x)


def _away_from_zero(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < 1e-2, x + 0.1, x)


@pytest.mark.parametrize(
    "module",
    [
        nn.ReLU(),
        nn.LeakyReLU(0.1),
        nn.Tanh(),
        nn.Sigmoid(),
        nn.GELU(),
        nn.GELU(approximate="tanh"),
        nn.Softmax(),
        nn.LogSoftmax(),
        nn.Softmax(axis=0),
        nn.Identity(),
        nn.Flatten(),
    ],
    ids=repr,
)
def test_activation_gradients(module):
    x = _away_from_zero(np.random.default_rng(2).standard_normal((4, 3, 5)) * 2)
    check_module_grads(module, x)


def test_dropout_eval_gradient_and_train_mask():
    d = nn.Dropout(0.3, rng=0)
    x = np.random.default_rng(0).standard_normal((6, 5))
    d.eval()
    check_module_grads(d, x)
    d.train()
    y = d(x)
    mask = y / x
    g = np.random.default_rng(1).standard_normal(x.shape)
    np.testing.assert_allclose(d.backward(g), g * mask)


def test_sequential_gradients():
    model = nn.Sequential(
        nn.Flatten(),
        nn.Dense(6, 7, dtype=np.float64, rng=0),
        nn.Tanh(),
        nn.Dense(7, 5, dtype=np.float64, init="he_normal", rng=1),
        nn.GELU(),
        nn.Dense(5, 3, dtype=np.float64, init="orthogonal", rng=2),
        nn.LogSoftmax(),
    )
    x = np.random.default_rng(3).standard_normal((4, 2, 3))
    check_module_grads(model, x)


def test_activation_functions_match_modules():
    x = np.random.default_rng(0).standard_normal((3, 4))
    g = np.random.default_rng(1).standard_normal((3, 4))
    pairs = [
        (act.relu, act.relu_backward, nn.ReLU(), False),
        (act.tanh, act.tanh_backward, nn.Tanh(), True),
        (act.sigmoid, act.sigmoid_backward, nn.Sigmoid(), True),
        (act.softmax, act.softmax_backward, nn.Softmax(), True),
        (act.log_softmax, act.log_softmax_backward, nn.LogSoftmax(), True),
        (act.gelu, act.gelu_backward, nn.GELU(), False),
    ]
    for fwd, bwd, mod, uses_output in pairs:
        y = fwd(x)
        np.testing.assert_array_equal(mod(x), y)
        np.testing.assert_array_equal(mod.backward(g), bwd(g, y if uses_output else x))


LOSS_CASES = [
    ("mse", lambda: nn.MSELoss(), "regression"),
    ("mse-sum", lambda: nn.MSELoss(reduction="sum"), "regression"),
    ("mse-col", lambda: nn.MSELoss(), "column"),
    ("ce", lambda: nn.CrossEntropyLoss(), "labels"),
    ("ce-sum", lambda: nn.CrossEntropyLoss(reduction="sum"), "labels"),
    ("ce-smooth", lambda: nn.CrossEntropyLoss(label_smoothing=0.2), "labels"),
    ("ce-weight", lambda: nn.CrossEntropyLoss(weight=[0.5, 2.0, 1.0, 3.0]), "labels"),
    (
        "ce-weight-smooth",
        lambda: nn.CrossEntropyLoss(weight=[0.5, 2.0, 1.0, 3.0], label_smoothing=0.1),
        "labels",
    ),
    ("bce", lambda: nn.BCEWithLogitsLoss(), "binary"),
    ("bce-posw", lambda: nn.BCEWithLogitsLoss(pos_weight=[1.0, 3.0, 0.5, 2.0]), "binary"),
    ("bce-col", lambda: nn.BCEWithLogitsLoss(), "column"),
    ("softce", lambda: nn.SoftCrossEntropyLoss(), "probs"),
    ("softce-T", lambda: nn.SoftCrossEntropyLoss(temperature=2.5), "probs"),
]


def _loss_data(kind: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    n, c = 6, 4
    if kind == "column":
        return rng.standard_normal((n, 1)), rng.integers(0, 2, n).astype(np.float64)
    pred = rng.standard_normal((n, c)) * 2
    if kind == "regression":
        return pred, rng.standard_normal((n, c))
    if kind == "labels":
        return pred, rng.integers(0, c, n)
    if kind == "binary":
        return pred, rng.integers(0, 2, (n, c)).astype(np.float64)
    q = rng.random((n, c))
    return pred, q / q.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("name,make,kind", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_gradients(name, make, kind):
    pred, target = _loss_data(kind)
    check_loss_grad(make(), pred, target)


def test_losses_float32_keep_dtype_and_agree():
    for _, make, kind in LOSS_CASES:
        pred, target = _loss_data(kind, seed=3)
        l64, l32 = make(), make()
        v64 = l64(pred, target)
        v32 = l32(pred.astype(np.float32), target)
        assert v32 == pytest.approx(v64, rel=1e-5, abs=1e-6)
        g32 = l32.backward()
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, l64.backward(), rtol=1e-4, atol=1e-6)


def test_loss_values_known():
    assert nn.MSELoss()(np.array([1.0, 2.0]), np.array([0.0, 0.0])) == pytest.approx(2.5)
    logits = np.zeros((2, 4))
    assert nn.CrossEntropyLoss()(logits, np.array([0, 3])) == pytest.approx(np.log(4))
    assert nn.BCEWithLogitsLoss()(np.zeros(3), np.ones(3)) == pytest.approx(np.log(2))


def test_losses_are_stable_for_extreme_logits():
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is benign
        big = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]])
        ce = nn.CrossEntropyLoss()
        assert ce(big, np.array([0, 1])) == pytest.approx(0.0, abs=1e-12)
        assert np.all(np.isfinite(ce.backward()))
        assert ce(big, np.array([1, 0])) == pytest.approx(2e4)
        bce = nn.BCEWithLogitsLoss()
        z = np.array([1e4, -1e4, 800.0, -800.0])
        assert bce(z, np.array([1.0, 0.0, 1.0, 0.0])) == pytest.approx(0.0, abs=1e-12)
        assert bce(z, np.array([0.0, 1.0, 1.0, 1.0])) == pytest.approx((1e4 + 1e4 + 800) / 4)
        assert np.all(np.isfinite(bce.backward()))


def test_loss_input_errors():
    ce = nn.CrossEntropyLoss()
    with pytest.raises(IndexError, match=r"target\[1\] = 5"):
        ce(np.zeros((2, 3)), np.array([0, 5]))
    with pytest.raises(ValueError, match="target must have shape"):
        ce(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="integer class labels"):
        ce(np.zeros((2, 3)), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="pred must have shape"):
        ce(np.zeros(3), np.array([0]))
    with pytest.raises(ValueError, match="target has shape"):
        nn.MSELoss()(np.zeros((3, 2)), np.zeros((3,)))
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=1.0)
    for loss in (nn.MSELoss(), ce, nn.BCEWithLogitsLoss(), nn.SoftCrossEntropyLoss()):
        with pytest.raises(RuntimeError, match="before forward"):
            loss.backward()


# ---------------------------------------------------------------------- activations


@pytest.mark.parametrize("module", [nn.ReLU(), nn.LeakyReLU(0.5), nn.Tanh(), nn.Sigmoid(),
                                    nn.GELU(), nn.GELU("tanh"), nn.Softmax()],
                         ids=lambda m: type(m).__name__)
def test_activations_of_integer_input_are_those_of_the_floats(module):
    """No constant (GELU's 0.5, a slope) is ever cast to the integer dtype of the input."""
    xi = np.array([[-3, -1, 0, 2, 5]])
    want = copy.deepcopy(module)
    y = module(xi)
    np.testing.assert_allclose(y, want(xi.astype(np.float64)), rtol=1e-12)
    np.testing.assert_allclose(module.backward(np.ones((1, 5), np.int64)),
                               want.backward(np.ones((1, 5))), rtol=1e-12)


def test_gelu_exact_fallback_matches_scipy(monkeypatch):
    x = np.linspace(-6, 6, 101)
    exact = act.gelu(x)
    g = act.gelu_backward(np.ones_like(x), x)
    monkeypatch.setattr(act, "_scipy_erf", None)
    np.testing.assert_allclose(act.gelu(x), exact, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(act.gelu_backward(np.ones_like(x), x), g, rtol=1e-14)
    assert act.erf(x.astype(np.float32)).dtype == np.float32
    # the tanh form is a close approximation
    np.testing.assert_allclose(act.gelu(x, approximate="tanh"), exact, atol=1e-3)
    with pytest.raises(ValueError, match="approximate"):
        act.gelu(x, approximate="erf")


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
        elements=st.floats(-1e6, 1e6, allow_nan=False),
    )
)
def test_stable_activations_property(x):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = act.sigmoid(x)
        p = act.softmax(x)
        lp = act.log_softmax(x)
    assert np.all((s >= 0) & (s <= 1))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(np.isfinite(lp)) and np.all(lp <= 1e-12)
    np.testing.assert_allclose(np.exp(lp), p, atol=1e-12)


def test_sigmoid_float32_extremes():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = act.sigmoid(x)
    assert s.dtype == np.float32
    np.testing.assert_allclose(s, [0.0, 1.9287e-22, 0.5, 1.0, 1.0], rtol=1e-4)


def test_get_activation():
    assert isinstance(act.get_activation("relu"), nn.ReLU)
    assert isinstance(act.get_activation("identity"), nn.Identity)
    assert act.get_activation("leaky_relu", negative_slope=0.2).negative_slope == 0.2
    with pytest.raises(ValueError, match="unknown activation"):
        act.get_activation("swishy")


# ---------------------------------------------------------------------- module protocol


def test_float32_forward_matches_float64():
    m64 = mlp(in_features=10, hidden=32, out=5, dtype=np.float64, seed=4)
    m32 = mlp(in_features=10, hidden=32, out=5, dtype=np.float32, seed=9)
    for p32, p64 in zip(m32.parameters(), m64.parameters()):
        p32[...] = p64
    x = np.random.default_rng(0).standard_normal((20, 10))
    y32, y64 = m32(x.astype(np.float32)), m64(x)
    assert y32.dtype == np.float32 and y64.dtype == np.float64
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    g = np.ones_like(y64)
    dx32, dx64 = m32.backward(g.astype(np.float32)), m64.backward(g)
    assert dx32.dtype == np.float32
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)
    for g32, g64 in zip(m32.gradients(), m64.gradients()):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


def test_sequential_parameter_order_and_identity():
    d0 = nn.Dense(3, 4, rng=0)
    d2 = nn.Dense(4, 2, bias=False, rng=1)
    d3 = nn.Dense(2, 2, rng=2)
    model = nn.Sequential(d0, nn.ReLU(), d2, d3)
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "3.weight", "3.bias"]
    expected = [d0.weight, d0.bias, d2.weight, d3.weight, d3.bias]
    assert all(a is b for a, b in zip(model.parameters(), expected))
    assert [n for n, _ in model.named_gradients()] == names
    for p, g in zip(model.parameters(), model.gradients()):
        assert p.shape == g.shape and p.dtype == g.dtype
    assert model.grad("2.weight") is model.gradients()[2]
    assert model.num_parameters() == 3 * 4 + 4 + 4 * 2 + 2 * 2 + 2
    assert len(model) == 4 and model[2] is d2 and list(model)[3] is d3
    assert [type(m).__name__ for m in model[1:]] == ["ReLU", "Dense", "Dense"]


class TwoTower(nn.Module):
    """Custom module: own parameter first, then submodules in assignment order."""

    def __init__(self) -> None:
        super().__init__()
        self.register_parameter("scale", np.ones(2))
        self.encoder = nn.Dense(2, 2, dtype=np.float64, rng=0)
        self.head = nn.Dense(2, 1, dtype=np.float64, rng=1)
        self.tied = self.encoder  # the same module twice: its arrays are listed once
        self.blocks = nn.ModuleList([nn.Dense(1, 1, dtype=np.float64, rng=2)])

    def forward(self, x):
        h = x * self.scale
        self._save(x)
        return self.blocks[0](self.head(self.encoder(h)))

    def backward(self, grad_out):
        (x,) = self._saved()
        g = self.encoder.backward(self.head.backward(self.blocks[0].backward(grad_out)))
        self._grads["scale"] += np.sum(g * x, axis=0)
        return g * self.scale


def test_custom_module_registration_and_gradients():
    m = TwoTower()
    names = [n for n, _ in m.named_parameters()]
    assert names == [
        "scale", "encoder.weight", "encoder.bias", "head.weight", "head.bias",
        "blocks.0.weight", "blocks.0.bias",
    ]
    x = np.random.default_rng(0).standard_normal((3, 2))
    check_module_grads(m, x)
    m.head = nn.Identity()  # re-assigning a submodule replaces it in place of the order
    assert [n for n, _ in m.named_parameters()][3:] == ["blocks.0.weight", "blocks.0.bias"]


def test_module_errors_and_in_place_assignment():
    layer = nn.Dense(2, 3, rng=0)
    for module in (layer, nn.Sequential(layer), nn.ReLU(), nn.Dropout(0.5), nn.GELU()):
        with pytest.raises(RuntimeError, match="before forward"):
            module.backward(np.zeros((1, 3)))
    w = layer.weight
    layer.weight = np.full((2, 3), 7.0)
    assert layer.weight is w and np.all(w == 7.0)
    with pytest.raises(ValueError, match="shape"):
        layer.weight = np.zeros((3, 2))
    with pytest.raises(ValueError, match="expected"):
        layer(np.zeros((4, 5)))

    class Forgot(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(AttributeError, match="super"):
        Forgot()
    with pytest.raises(TypeError, match="floating"):
        nn.Module().register_parameter("w", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="already registered"):
        layer.register_parameter("weight", np.zeros(2))


def test_backward_accumulates_and_zero_grad():
    layer = nn.Dense(3, 2, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((4, 3))
    g = np.ones((4, 2))
    layer(x)
    layer.backward(g)
    once = [a.copy() for a in layer.gradients()]
    layer.backward(g)
    for a, b in zip(layer.gradients(), once):
        np.testing.assert_allclose(a, 2 * b)
    grads = layer.gradients()
    layer.zero_grad()
    assert all(a is b for a, b in zip(layer.gradients(), grads))
    assert all(not a.any() for a in layer.gradients())


def test_train_eval_recursive():
    model = mlp(dropout=0.5)
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_dropout_statistics_and_eval_identity():
    p = 0.3
    d = nn.Dropout(p, rng=123)
    x = np.ones((400, 500), dtype=np.float32)
    y = d(x)
    assert y.dtype == np.float32
    zero_frac = np.mean(y == 0)
    assert abs(zero_frac - p) < 0.005  # 200k Bernoulli draws: sd ~0.001
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.01
    d.eval()
    x2 = np.random.default_rng(0).standard_normal((5, 7))
    assert np.array_equal(d(x2), x2)
    assert np.array_equal(d.backward(x2), x2)
    # own seeded generator: same seed, same masks
    a, b = nn.Dropout(0.5, rng=7), nn.Dropout(0.5, rng=7)
    assert np.array_equal(a(x2), b(x2))
    assert np.array_equal(nn.Dropout(0.0)(x2), x2)
    assert not nn.Dropout(1.0)(x2).any()
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)


def test_state_dict_round_trip_bit_identical(tmp_path):
    model = mlp(dtype=np.float32, seed=3)
    params = model.parameters()
    state = model.state_dict()
    assert list(state) == [n for n, _ in model.named_parameters()]
    assert all(s is not p for s, p in zip(state.values(), params))  # copies
    before = [p.tobytes() for p in params]
    for p in params:
        p += np.float32(0.5)
    model.load_state_dict(state)
    assert [p.tobytes() for p in model.parameters()] == before
    assert all(a is b for a, b in zip(model.parameters(), params))  # never re-bound
    path = tmp_path / "model.npz"
    model.save(path)
    other = mlp(dtype=np.float32, seed=99)
    other.load(path)
    assert [p.tobytes() for p in other.parameters()] == before
    assert not list(tmp_path.glob(".nesy-*"))  # no temporary left behind


def test_load_state_dict_errors_change_nothing():
    model = mlp(seed=0)
    good = model.state_dict()
    snapshot = [p.copy() for p in model.parameters()]

    def bad(**changes):
        state = {k: v + 1 for k, v in good.items()}
        state.update(changes)
        return state

    with pytest.raises(ValueError, match="'2.bias'.*missing|missing.*'2.bias'"):
        model.load_state_dict({k: v for k, v in bad().items() if k != "2.bias"})
    with pytest.raises(ValueError, match="unexpected key 'extra'"):
        model.load_state_dict(bad(extra=np.zeros(1)))
    with pytest.raises(ValueError, match=r"'2.weight' has shape \(16, 3\), expected \(3, 16\) "
                                         r"\(torch.nn.Linear's \(out_features, in_features\)"):
        model.load_state_dict(bad(**{"2.weight": np.zeros((16, 3))}))  # Dense's own layout
    with pytest.raises(ValueError, match="'0.bias' has dtype int32, expected float64"):
        model.load_state_dict(bad(**{"0.bias": np.zeros(16, dtype=np.int32)}))
    for p, s in zip(model.parameters(), snapshot):
        assert np.array_equal(p, s)
    model.load_state_dict({"0.bias": good["0.bias"] + 1}, strict=False)
    assert np.array_equal(model[0].bias, good["0.bias"] + 1)


def test_load_state_dict_refuses_non_finite_and_overflowing_values():
    """NaN and infinity were loaded into parameters, and a float64 value beyond float32's range
    became infinity in the cast (a RuntimeWarning at most). Now a ValueError naming the key,
    raised before any array changes; buffers may hold non-finite values (a mask of -inf)."""
    model = mlp(dtype=np.float32, seed=0)
    good = model.state_dict()
    keep = [p.copy() for p in model.parameters()]

    def bad(key, value):
        state = {k: v + 1 for k, v in good.items()}  # every key changed: none may be loaded
        state[key] = np.full(good[key].shape, value, dtype=np.float64)
        return state

    for key, value, pattern in [
            ("2.bias", np.nan, "'2.bias' contains NaN or infinity"),
            ("2.weight", -np.inf, "'2.weight' contains NaN or infinity"),  # a transposed one
            ("2.bias", 1e300, r"'2.bias' holds 1e\+300, which does not fit in float32"),
            ("2.weight", -1e39, r"'2.weight' holds -1e\+39, which does not fit in float32")]:
        with pytest.raises(ValueError, match=rf"^load_state_dict: key {pattern}"):
            model.load_state_dict(bad(key, value))
        assert all(np.array_equal(p, q) for p, q in zip(model.parameters(), keep))
    near = bad("2.bias", 3.0e38)  # large, but within float32's range
    model.load_state_dict(near)
    assert np.all(model[2].bias == np.float32(3.0e38))
    model64 = mlp(dtype=np.float64, seed=0)
    model64.load_state_dict({k: v.astype(np.float64) * 1e300 for k, v in good.items()})

    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_parameter("w", np.zeros(2, np.float32))
            self.register_buffer("mask", np.array([0.0, -np.inf], np.float32))

    m = Masked()
    m.load_state_dict(Masked().state_dict())  # its own state: -inf kept
    assert m.mask[1] == -np.inf
    with pytest.raises(ValueError, match=r"^load_state_dict: key 'mask' holds 1e\+300"):
        m.load_state_dict({"w": np.zeros(2), "mask": np.array([0.0, 1e300])})


def test_state_dict_uses_torch_layouts_and_casts_floats():
    """A Dense weight (held (in, out) for x @ W) is (out, in) in state dicts, as torch.nn.Linear's:
    a square layer cannot load transposed by accident. Floating values are cast on load."""
    model = mlp(seed=0)  # float64, Dense(8, 16) ... Dense(16, 3)
    state = model.state_dict()
    assert state["0.weight"].shape == (16, 8) and state["2.weight"].shape == (3, 16)
    np.testing.assert_array_equal(state["2.weight"], model[2].weight.T)
    assert state["2.weight"].flags.c_contiguous
    other = mlp(seed=1)
    other.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((5, 8))
    np.testing.assert_array_equal(other(x), model(x))
    sq = nn.Sequential(nn.Dense(3, 3, rng=0, dtype=np.float64))
    w = np.arange(9.0).reshape(3, 3)  # torch layout: row i holds output i's weights
    sq.load_state_dict({"0.weight": w.astype(np.float32), "0.bias": np.zeros(3)})
    np.testing.assert_array_equal(sq(np.eye(3)), np.eye(3) @ w.T)  # y = x W^T, as torch
    assert sq[0].weight.dtype == np.float64


def test_dense_without_input_grad_gives_the_same_parameter_gradients():
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((6, 5)), rng.standard_normal((6, 3))
    a = nn.Dense(5, 3, rng=1, dtype=np.float64)
    b = nn.Dense(5, 3, rng=1, dtype=np.float64, input_grad=False)
    a(x), b(x)
    assert a.backward(g).shape == (6, 5) and b.backward(g) is None
    for ga, gb in zip(a.gradients(), b.gradients()):
        np.testing.assert_array_equal(ga, gb)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_branch_free_select_is_np_where_bit_for_bit(dtype):
    """select (ReLU / leaky ReLU forward and backward) against np.where, with NaN, inf, -0.0
    and ties at 0; and its fallbacks (broadcasting, strided input)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 9)).astype(dtype)
    g = rng.standard_normal((40, 9)).astype(dtype)
    x[0, :4] = [-1, 0, 2, -0.0]
    g[0, :4] = [np.nan, np.inf, -0.0, np.nan]
    slope = dtype(0.2)
    def same(a, b):
        return np.array_equal(np.ascontiguousarray(a).view(np.uint8),
                              np.ascontiguousarray(b).view(np.uint8))

    assert same(act.relu_backward(g, x), np.where(x > 0, g, dtype(0)))
    assert same(act.leaky_relu_backward(g, x, 0.2), np.where(x > 0, g, g * slope))
    assert same(act.leaky_relu(x, 0.2), np.where(x > 0, x, x * slope))
    cond = (x > 0)[:, :1]
    assert same(act.select(cond, g[:, :1].copy()), np.where(cond, g[:, :1], dtype(0)))
    assert same(act.select((x > 0).T, g.T), np.where((x > 0).T, g.T, dtype(0)))


def test_snapshot_restores_the_arrays_as_held():
    """snapshot/restore (the Trainer's rollback and best-epoch copies) copy arrays as the module
    holds them: no transpose, and state_dict's layout is not involved."""
    model = mlp(seed=0)
    snap = model.snapshot()
    assert snap["2.weight"].shape == model[2].weight.shape == (16, 3)
    before = [p.copy() for p in model.parameters()]
    for p in model.parameters():
        p += 1.0
    model.restore(snap)
    assert all(np.array_equal(p, b) for p, b in zip(model.parameters(), before))
    with pytest.raises(ValueError, match="^restore: snapshot: not a snapshot of this module"):
        model.restore(mlp(hidden=5).snapshot())
    big = nn.Dense(150, 70, rng=0, dtype=np.float32)  # tiles of 64: ragged edges both ways
    np.testing.assert_array_equal(big.state_dict()["weight"], big.weight.T)
    other = nn.Dense(150, 70, rng=1, dtype=np.float32)
    other.load_state_dict(big.state_dict())
    np.testing.assert_array_equal(other.weight, big.weight)


def test_torch_linear_state_dict_loads_into_dense():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    n = nn.Sequential(nn.Dense(16, 16), nn.ReLU(), nn.Dense(16, 8))
    n.load_state_dict(t.state_dict())  # tensors as they are
    x = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    np.testing.assert_allclose(n(x), t(torch.from_numpy(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    back = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    back.load_state_dict({k: torch.from_numpy(v) for k, v in n.state_dict().items()})
    np.testing.assert_allclose(back(torch.from_numpy(x)).detach().numpy(), n(x), rtol=1e-5,
                               atol=1e-6)


# ---------------------------------------------------------------------- initialisers


def test_initializers_statistics():
    shape = (400, 600)
    w = init.glorot_uniform(shape, rng=0)
    bound = np.sqrt(6 / 1000)
    assert w.dtype == np.float32 and w.shape == shape
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert init.glorot_normal(shape, 0, np.float64).std() == pytest.approx(np.sqrt(2 / 1000), 0.02)
    assert init.he_normal(shape, 0).std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert init.he_uniform(shape, 0).std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert init.he_normal(shape, 0, mode="fan_out").std() == pytest.approx(
        np.sqrt(2 / 600), rel=0.02
    )
    assert init.lecun_normal(shape, 0).std() == pytest.approx(np.sqrt(1 / 400), rel=0.02)
    assert not init.zeros(shape).any()
    assert np.array_equal(init.glorot_uniform(shape, 5), init.glorot_uniform(shape, 5))
    assert init.xavier_uniform is init.glorot_uniform
    assert init.kaiming_normal is init.he_normal
    assert init.calculate_fans((3, 4, 5, 6)) == (5 * 12, 6 * 12)


@pytest.mark.parametrize("shape", [(6, 6), (10, 4), (4, 10), (2, 3, 5)])
def test_orthogonal(shape):
    w = init.orthogonal(shape, rng=0, dtype=np.float64, gain=2.0)
    m = w.reshape(-1, shape[-1])
    if m.shape[0] >= m.shape[1]:
        np.testing.assert_allclose(m.T @ m, 4 * np.eye(m.shape[1]), atol=1e-12)
    else:
        np.testing.assert_allclose(m @ m.T, 4 * np.eye(m.shape[0]), atol=1e-12)


def test_initializer_lookup_and_dense_init():
    assert init.get_initializer("He_Normal") is init.he_normal
    with pytest.raises(ValueError, match="unknown initializer"):
        init.get_initializer("glorot")
    with pytest.raises(TypeError, match="float32 or float64"):
        init.zeros((2,), dtype=np.int32)
    d = nn.Dense(3, 2, init=lambda shape, rng, dtype: np.full(shape, 0.5, dtype), rng=0)
    assert np.all(d.weight == 0.5) and d.weight.dtype == np.float32
    assert np.array_equal(nn.Dense(5, 4, rng=3).weight, nn.Dense(5, 4, rng=3).weight)


@pytest.mark.parametrize("dtype,got", [("foo", "'foo'"), (np.int32, "int32"),
                                       (np.float16, "float16"), (object(), "<object object")])
def test_dense_and_initializers_name_an_invalid_dtype(dtype, got):
    """Dense(2, 3, dtype='foo') raised NumPy's unnamed "data type 'foo' not understood", and
    the other refusals said "dtype must be ..." (review s13 L4): now the shared check."""
    msg = rf"^dtype: expected float32 or float64, got {got}"
    with pytest.raises(TypeError, match=msg):
        nn.Dense(2, 3, dtype=dtype)
    for make in (init.zeros, init.constant, init.uniform, init.glorot_uniform, init.he_normal,
                 init.orthogonal):
        with pytest.raises(TypeError, match=msg):
            make((2, 3), dtype=dtype)
    assert nn.Dense(2, 3, dtype=None, rng=0).weight.dtype == np.float64  # None as np.dtype(None)
    assert init.glorot_uniform((2, 3), 0, None).dtype == np.float64


# ---------------------------------------------------------------------- Trainer


def make_trainer(model, epochs=5, **kw):
    kw.setdefault("verbose", 0)
    opt = kw.pop("optimizer", None) or StubSGD(model.parameters(), lr=0.05, momentum=0.9)
    return nn.Trainer(model, nn.CrossEntropyLoss(), opt, epochs=epochs, batch_size=16, **kw)


def test_trainer_learns_and_records_history():
    X, y = blobs()
    model = mlp()
    hist = make_trainer(model, epochs=8, metrics={"accuracy": nn.accuracy}).fit(
        X, y, validation_data=(X[:30], y[:30])
    )
    assert isinstance(hist, nn.History) and len(hist) == 8 and hist.epoch == list(range(1, 9))
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert hist["loss"][-1] < hist["loss"][0]
    assert hist["val_accuracy"][-1] > 0.9
    assert hist["lr"] == [0.05] * 8
    d = hist.to_dict()
    assert d == hist.history and d is not hist.history


def test_trainer_seeded_reproducibility():
    X, y = blobs(seed=1)
    runs = []
    for _ in range(2):
        model = mlp(dtype=np.float32, dropout=0.2, seed=5)
        hist = make_trainer(model, epochs=4, seed=11, metrics={"acc": nn.accuracy}).fit(
            X, y, validation_data=(X[:20], y[:20])
        )
        runs.append(({k: v for k, v in hist.history.items() if k != "time"},
                     [p.tobytes() for p in model.parameters()]))
    assert runs[0] == runs[1]
    model = mlp(dtype=np.float32, dropout=0.2, seed=5)
    make_trainer(model, epochs=4, seed=12).fit(X, y)
    assert [p.tobytes() for p in model.parameters()] != runs[0][1]


class RecordingSchedule:
    """Records the model's weights at the end of every epoch (``step`` is called then)."""

    def __init__(self, model):
        self.model = model
        self.states = []

    def step(self):
        self.states.append(self.model.state_dict())


def test_early_stopping_restores_best_weights():
    X, y = blobs(seed=2)
    Xv, yv = X[:40], (y[:40] + 1) % 3  # wrong labels: the validation loss gets worse
    model = mlp(seed=1)
    sched = RecordingSchedule(model)
    es = nn.EarlyStopping(patience=3, monitor="val_loss")
    hist = make_trainer(model, epochs=50, schedule=sched, early_stopping=es).fit(
        X, y, validation_data=(Xv, yv)
    )
    best = int(np.argmin(hist["val_loss"])) + 1
    assert hist.best_epoch == es.best_epoch_ == best
    assert hist.stopped_epoch == es.stopped_epoch_ == best + 3 == len(hist)
    restored = model.state_dict()
    for k, v in sched.states[best - 1].items():
        assert np.array_equal(restored[k], v)
    assert not np.array_equal(restored["0.weight"], sched.states[-1]["0.weight"])

    # mode="max" on a metric, without restoring
    model = mlp(seed=1)
    es = nn.EarlyStopping(patience=2, monitor="val_acc", mode="max", restore_best=False)
    sched = RecordingSchedule(model)
    make_trainer(model, epochs=50, schedule=sched, early_stopping=es,
                 metrics={"acc": nn.accuracy}).fit(X, y, validation_data=(Xv, yv))
    assert es.stopped_epoch_ is not None
    assert np.array_equal(model.state_dict()["0.weight"], sched.states[-1]["0.weight"])


def test_trainer_verbose_zero_prints_nothing(capsys):
    X, y = blobs(n=40)
    make_trainer(mlp(), epochs=3, verbose=0).fit(X, y, validation_data=(X, y))
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    make_trainer(mlp(), epochs=2, verbose=2).fit(X, y)
    out, err = capsys.readouterr()
    assert "epoch" in err or "epoch" in out


def test_trainer_input_errors():
    X, y = blobs(n=20)
    t = make_trainer(mlp())
    with pytest.raises(ValueError, match="X and y have different lengths: 20 and 19"):
        t.fit(X, y[:-1])
    with pytest.raises(ValueError, match="X is empty"):
        t.fit(np.zeros((0, 8)), np.zeros(0, dtype=int))
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        t.fit(Xn, y)
    with pytest.raises(ValueError, match=r"validation_data\[0\] contains NaN"):
        t.fit(X, y, validation_data=(Xn, y))
    with pytest.raises(ValueError, match=r"validation_data\[0\] and validation_data\[1\]"):
        t.fit(X, y, validation_data=(X, y[:3]))
    with pytest.raises(ValueError, match="y contains NaN"):
        t.fit(X, np.full(20, np.nan))
    with pytest.raises(ValueError, match="'val_loss', which is not logged"):
        make_trainer(mlp(), early_stopping=nn.EarlyStopping()).fit(X, y)
    with pytest.raises(ValueError, match="batch_size"):
        nn.Trainer(mlp(), nn.CrossEntropyLoss(), StubSGD([]), batch_size=0)
    with pytest.raises(TypeError, match="step"):
        nn.Trainer(mlp(), nn.CrossEntropyLoss(), object())


class NaNAfter(nn.Module):
    """Identity that outputs NaN from its ``n``-th forward on."""

    def __init__(self, n):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, x):
        self.calls += 1
        self._save(True)
        return x * np.nan if self.calls >= self.n else x

    def backward(self, g):
        return g


def test_trainer_non_finite_loss():
    X, y = blobs(n=100)
    model = nn.Sequential(mlp(), NaNAfter(10))  # 7 batches per epoch: epoch 2, batch 3
    with pytest.raises(FloatingPointError, match="epoch 2, batch 3"):
        make_trainer(model, epochs=3).fit(X, y)


class PlateauStub:
    def __init__(self, optimizer):
        self.mode = "min"
        self.optimizer = optimizer
        self.metrics = []

    def step(self, metric):
        self.metrics.append(metric)
        self.optimizer.param_groups[0]["lr"] *= 0.5


class CountingSchedule:
    def __init__(self):
        self.calls = 0

    def step(self):
        self.calls += 1


def test_trainer_schedules():
    X, y = blobs(n=48)
    model = mlp()
    opt = StubSGD(model.parameters(), lr=0.1)
    plateau = PlateauStub(opt)
    hist = make_trainer(model, epochs=3, optimizer=opt, schedule=plateau).fit(
        X, y, validation_data=(X, y)
    )
    assert plateau.metrics == hist["val_loss"]
    assert hist["lr"] == [0.1, 0.05, 0.025]
    counter = CountingSchedule()
    make_trainer(mlp(), epochs=4, schedule=counter).fit(X, y)
    assert counter.calls == 4
    counter = CountingSchedule()
    make_trainer(mlp(), epochs=2, schedule=counter, schedule_interval="batch").fit(X, y)
    assert counter.calls == 2 * 3
    with pytest.raises(ValueError, match="once per epoch"):
        make_trainer(model, optimizer=opt, schedule=plateau, schedule_interval="batch")


def test_trainer_grad_clip_calls_nesy_optim(monkeypatch):
    import nesy.optim

    calls = []

    def fake_clip(grads, max_norm):
        calls.append((len(grads), max_norm))
        return 0.0

    monkeypatch.setattr(nesy.optim, "clip_grad_norm", fake_clip, raising=False)
    X, y = blobs(n=32)
    make_trainer(mlp(), epochs=2, grad_clip=1.5).fit(X, y)
    assert calls == [(4, 1.5)] * 4


def test_predict_evaluate_and_modes():
    X, y = blobs(n=50)
    model = mlp(dropout=0.5)
    t = make_trainer(model, epochs=2, metrics={"accuracy": nn.accuracy})
    t.fit(X, y)
    model.train()
    p1, p2 = t.predict(X, batch_size=7), t.predict(X)
    assert p1.shape == (50, 3)
    np.testing.assert_allclose(p1, p2, rtol=1e-12)  # eval mode: dropout off
    assert model.training  # mode restored
    ev = t.evaluate(X, y)
    assert set(ev) == {"loss", "accuracy"}
    assert ev["accuracy"] == nn.accuracy(y, p1)
    assert nn.accuracy(np.array([1, 0]), np.array([[2.0], [-1.0]])) == 1.0
    assert nn.accuracy(np.eye(3), np.eye(3) * 5) == 1.0


class FakeAxes:
    def __init__(self):
        self.lines = []

    def plot(self, x, yv, label=None):
        self.lines.append((list(x), list(yv), label))

    def set_xlabel(self, label):
        self.xlabel = label

    def legend(self):
        pass


def test_history_plot(monkeypatch):
    X, y = blobs(n=40)
    hist = make_trainer(mlp(), epochs=3).fit(X, y, validation_data=(X, y))
    ax = FakeAxes()
    assert hist.plot(ax=ax) is ax
    assert [label for _, _, label in ax.lines] == ["loss", "val_loss"]
    assert ax.lines[0] == ([1, 2, 3], hist["loss"], "loss")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="matplotlib"):
        hist.plot()


# ---------------------------------------------------------------------- PyTorch parity


def test_torch_parity_dense_relu_cross_entropy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((9, 6))
    y = rng.integers(0, 4, 9)
    model = nn.Sequential(
        nn.Dense(6, 5, dtype=np.float64, rng=1), nn.ReLU(), nn.Dense(5, 4, dtype=np.float64, rng=2)
    )
    loss = nn.CrossEntropyLoss()
    value = loss(model(X), y)
    dx = model.backward(loss.backward())

    tl1, tl2 = torch.nn.Linear(6, 5).double(), torch.nn.Linear(5, 4).double()
    with torch.no_grad():
        for lin, dense in ((tl1, model[0]), (tl2, model[2])):
            lin.weight.copy_(torch.from_numpy(dense.weight.T.copy()))
            lin.bias.copy_(torch.from_numpy(dense.bias))
    tx = torch.from_numpy(X).requires_grad_(True)
    tout = torch.nn.functional.cross_entropy(tl2(torch.relu(tl1(tx))), torch.from_numpy(y))
    tout.backward()
    assert value == pytest.approx(tout.item(), rel=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(model.grad("0.weight"), tl1.weight.grad.numpy().T, rtol=1e-10)
    np.testing.assert_allclose(model.grad("0.bias"), tl1.bias.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(model.grad("2.weight"), tl2.weight.grad.numpy().T, rtol=1e-10)
    np.testing.assert_allclose(model.grad("2.bias"), tl2.bias.grad.numpy(), rtol=1e-10)


def _torch_grad(torch, fn, pred):
    t = torch.from_numpy(pred.copy()).requires_grad_(True)
    out = fn(t)
    out.backward()
    return out.item(), t.grad.numpy()


@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
def test_torch_parity_losses(smoothing, weighted):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((7, 4)) * 3
    labels = rng.integers(0, 4, 7)
    w = np.array([0.2, 1.0, 2.5, 0.7]) if weighted else None
    ours = nn.CrossEntropyLoss(weight=w, label_smoothing=smoothing)
    value = ours(logits, labels)
    ref, ref_grad = _torch_grad(
        torch,
        lambda t: F.cross_entropy(
            t, torch.from_numpy(labels), label_smoothing=smoothing,
            weight=None if w is None else torch.from_numpy(w),
        ),
        logits,
    )
    assert value == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose(ours.backward(), ref_grad, rtol=1e-10, atol=1e-15)


def test_torch_parity_bce_softce_gelu():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(6)
    z = rng.standard_normal((5, 3)) * 4
    t = rng.integers(0, 2, (5, 3)).astype(np.float64)
    pw = np.array([0.5, 2.0, 3.0])
    bce = nn.BCEWithLogitsLoss(pos_weight=pw)
    ref, ref_grad = _torch_grad(
        torch,
        lambda a: F.binary_cross_entropy_with_logits(
            a, torch.from_numpy(t), pos_weight=torch.from_numpy(pw)
        ),
        z,
    )
    assert bce(z, t) == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose(bce.backward(), ref_grad, rtol=1e-10)

    q = rng.random((5, 3))
    q /= q.sum(axis=1, keepdims=True)
    soft = nn.SoftCrossEntropyLoss(temperature=2.0)
    ref, ref_grad = _torch_grad(
        torch, lambda a: F.cross_entropy(a / 2.0, torch.from_numpy(q)), z
    )
    assert soft(z, q) == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose(soft.backward(), ref_grad, rtol=1e-10)

    x = np.linspace(-5, 5, 41)
    for approx in ("none", "tanh"):
        tx = torch.from_numpy(x).requires_grad_(True)
        F.gelu(tx, approximate=approx).sum().backward()
        np.testing.assert_allclose(act.gelu(x, approx), F.gelu(tx, approximate=approx)
                                   .detach().numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(act.gelu_backward(np.ones_like(x), x, approx),
                                   tx.grad.numpy(), rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------- real data


def _digits_mlp(dtype=np.float32):
    return nn.Sequential(
        nn.Dense(64, 128, dtype=dtype, init="he_uniform", rng=0),
        nn.ReLU(),
        nn.Dense(128, 10, dtype=dtype, rng=1),
    )


def test_digits_mlp_stub_sgd_momentum():
    X_tr, X_te, y_tr, y_te = load_digits_split()
    model = _digits_mlp()
    opt = StubSGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = nn.Trainer(model, nn.CrossEntropyLoss(), opt, batch_size=32, epochs=20,
                         seed=0, verbose=0, metrics={"accuracy": nn.accuracy})
    t0 = time.perf_counter()
    hist = trainer.fit(X_tr, y_tr, validation_data=(X_te, y_te))
    elapsed = time.perf_counter() - t0
    acc = nn.accuracy(y_te, trainer.predict(X_te))
    assert acc >= 0.95, (acc, hist.to_dict())
    assert acc == hist["val_accuracy"][-1]
    assert elapsed < 30  # a few seconds normally; generous bound for loaded CI machines


def test_digits_mlp_nesy_adam():
    from nesy.optim import Adam
    X_tr, X_te, y_tr, y_te = load_digits_split()
    model = _digits_mlp()
    trainer = nn.Trainer(model, nn.CrossEntropyLoss(), Adam(model.parameters(), lr=1e-3),
                         batch_size=32, epochs=25, seed=0, verbose=0)
    trainer.fit(X_tr, y_tr)
    acc = nn.accuracy(y_te, trainer.predict(X_te))
    assert acc >= 0.95, acc


# ---------------------------------------------------------------------- NumPy references
# Written from the formulas in the torch.nn documentation, element by element in float64; the
# gradients they are compared with are central differences of these references (not of nesy).


def _ref_log_softmax(z):
    """log_softmax(z)_c = z_c - log sum_j exp(z_j), row by row (z: (n, c))."""
    z = np.asarray(z, np.float64)
    out = np.empty_like(z)
    for i, row in enumerate(z):
        m = max(row)
        out[i] = row - (m + math.log(sum(math.exp(v - m) for v in row)))
    return out


def ref_cross_entropy(z, y, weight=None, label_smoothing=0.0, reduction="mean"):
    """torch.nn.CrossEntropyLoss with class-index targets:
    ``l_n = (1 - eps) * (-w_{y_n} log p_{n,y_n}) + eps / C * sum_c (-w_c log p_{n,c})``,
    ``mean = sum_n l_n / sum_n w_{y_n}``."""
    logp = _ref_log_softmax(z)
    n, c = logp.shape
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    eps = label_smoothing
    losses = [(1 - eps) * -w[y[i]] * logp[i, y[i]]
              + eps / c * sum(-w[k] * logp[i, k] for k in range(c)) for i in range(n)]
    total = sum(losses)
    return total / sum(w[y[i]] for i in range(n)) if reduction == "mean" else total


def ref_bce_with_logits(x, t, pos_weight=None, reduction="mean"):
    """torch.nn.BCEWithLogitsLoss: ``l = -[p t log s(x) + (1 - t) log(1 - s(x))]``, ``p`` the
    pos_weight of the element's column (1 without), averaged over all elements."""
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    p = np.ones(x.shape[-1]) if pos_weight is None else np.asarray(pos_weight, np.float64)
    total = 0.0
    for idx in np.ndindex(x.shape):
        s = 1.0 / (1.0 + math.exp(-x[idx]))
        total += -(p[idx[-1]] * t[idx] * math.log(s) + (1 - t[idx]) * math.log(1 - s))
    return total / x.size if reduction == "mean" else total


def ref_soft_cross_entropy(z, q, temperature=1.0, reduction="mean"):
    """``-sum_i sum_c q_ic log softmax(z_i / T)_c``, divided by n for "mean"."""
    logp = _ref_log_softmax(np.asarray(z, np.float64) / temperature)
    total = -float(np.sum(np.asarray(q, np.float64) * logp))
    return total / logp.shape[0] if reduction == "mean" else total


def ref_gelu(x, approximate="none"):
    """``x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))``; tanh form
    ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``."""
    if approximate == "tanh":
        f = lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))  # noqa: E731
    else:
        f = lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2)))  # noqa: E731
    return np.vectorize(f, otypes=[np.float64])(np.asarray(x, np.float64))


def ref_leaky_relu(x, negative_slope):
    """``max(0, x) + negative_slope * min(0, x)``."""
    x = np.asarray(x, np.float64)
    return np.maximum(0, x) + negative_slope * np.minimum(0, x)


def ref_softmax(x):
    """``exp(x_i) / sum_j exp(x_j)`` along the last axis."""
    x = np.asarray(x, np.float64)
    rows = x.reshape(-1, x.shape[-1])
    return np.exp(_ref_log_softmax(rows)).reshape(x.shape)


def ref_log_softmax(x):
    x = np.asarray(x, np.float64)
    return _ref_log_softmax(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def fd_grad(f, x):
    """Central differences of the scalar ``f(x)`` at a float64 copy of ``x``."""
    x = np.array(x, np.float64)
    return numerical_grad(lambda: f(x), x)


def _logits(dtype, n=6, c=4, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, c)) * 3
    z[0] += 40.0  # a shifted row: the result must not depend on the shift
    return z.astype(dtype), rng


NN_TOL = {np.float32: 2e-6, np.float64: 1e-13}
GRAD_TOL = {np.float32: 2e-6, np.float64: 1e-8}  # against central differences


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weight,smoothing", [(None, 0.0), ([0.5, 2.0, 1.0, 3.0], 0.0),
                                              (None, 0.2), ([0.5, 2.0, 0.0, 3.0], 0.15)])
def test_cross_entropy_matches_numpy_reference(weight, smoothing, reduction, dtype):
    z, rng = _logits(dtype)
    y = np.array([0, 1, 2, 3, 2, 1])
    loss = nn.CrossEntropyLoss(weight=weight, label_smoothing=smoothing, reduction=reduction)
    value = loss(z, y)
    want = ref_cross_entropy(z, y, weight, smoothing, reduction)
    assert value == pytest.approx(want, rel=NN_TOL[dtype])
    g = loss.backward()
    assert g.dtype == dtype
    fd = fd_grad(lambda v: ref_cross_entropy(v, y, weight, smoothing, reduction), z)
    np.testing.assert_allclose(g, fd, rtol=0, atol=GRAD_TOL[dtype])


def test_cross_entropy_reference_values_by_hand():
    """The reference itself on numbers small enough to check by hand: logits 0, log 2, log 3
    (p = 1/6, 2/6, 3/6), label 2, weights (1, 2, 4), smoothing 0.3:
    l = 0.7 * 4 * log 2 + 0.1 * (log 6 + 2 log 3 + 4 log 2), mean divides by w_2 = 4."""
    z = np.log([[1.0, 2.0, 3.0]])
    want = 0.7 * 4 * math.log(2) + 0.1 * (math.log(6) + 2 * math.log(3) + 4 * math.log(2))
    assert ref_cross_entropy(z, [2], [1, 2, 4], 0.3, "sum") == pytest.approx(want, rel=1e-14)
    assert ref_cross_entropy(z, [2], [1, 2, 4], 0.3) == pytest.approx(want / 4, rel=1e-14)
    assert nn.CrossEntropyLoss([1, 2, 4], 0.3)(z, [2]) == pytest.approx(want / 4, rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("pos_weight", [None, [1.0, 3.0, 0.5, 2.0]])
def test_bce_with_logits_matches_numpy_reference(pos_weight, reduction, dtype):
    z, rng = _logits(dtype)
    z[0] -= 40.0
    t = rng.random(z.shape)  # soft targets in [0, 1]
    t[:3] = np.round(t[:3])
    loss = nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction=reduction)
    assert loss(z, t) == pytest.approx(ref_bce_with_logits(z, t, pos_weight, reduction),
                                       rel=NN_TOL[dtype])
    g = loss.backward()
    fd = fd_grad(lambda v: ref_bce_with_logits(v, t, pos_weight, reduction), z)
    np.testing.assert_allclose(g, fd, rtol=0, atol=GRAD_TOL[dtype])
    # by hand: pos_weight p, target 1, logit 0 gives p log 2
    assert nn.BCEWithLogitsLoss(pos_weight=[3.0])(np.zeros((1, 1)), np.ones((1, 1))) == \
        pytest.approx(3 * math.log(2), rel=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.5])
def test_soft_cross_entropy_matches_numpy_reference(temperature, reduction, dtype):
    z, rng = _logits(dtype)
    q = rng.random(z.shape)
    q /= q.sum(axis=1, keepdims=True)
    loss = nn.SoftCrossEntropyLoss(temperature=temperature, reduction=reduction)
    assert loss(z, q) == pytest.approx(ref_soft_cross_entropy(z, q, temperature, reduction),
                                       rel=NN_TOL[dtype])
    fd = fd_grad(lambda v: ref_soft_cross_entropy(v, q, temperature, reduction), z)
    np.testing.assert_allclose(loss.backward(), fd, rtol=0, atol=GRAD_TOL[dtype])


ACT_REFS = [
    ("gelu", lambda: nn.GELU(), lambda x: ref_gelu(x)),
    ("gelu-tanh", lambda: nn.GELU(approximate="tanh"), lambda x: ref_gelu(x, "tanh")),
    ("leaky_relu", lambda: nn.LeakyReLU(), lambda x: ref_leaky_relu(x, 0.01)),
    ("leaky_relu-0.3", lambda: nn.LeakyReLU(0.3), lambda x: ref_leaky_relu(x, 0.3)),
    ("softmax", lambda: nn.Softmax(), ref_softmax),
    ("log_softmax", lambda: nn.LogSoftmax(), ref_log_softmax),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,make,reference", ACT_REFS, ids=[a[0] for a in ACT_REFS])
def test_activation_matches_numpy_reference(name, make, reference, dtype):
    rng = np.random.default_rng(4)
    x = _away_from_zero(rng.standard_normal((2, 3, 5)) * 3)
    x[0, 0] += 30.0  # softmax of a shifted row
    x = x.astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    m = make()
    y = m(x)
    assert y.dtype == dtype
    scale = max(1.0, float(np.max(np.abs(reference(x)))))
    np.testing.assert_allclose(y, reference(x), rtol=0, atol=NN_TOL[dtype] * scale)
    dx = m.backward(g)
    assert dx.dtype == dtype
    fd = fd_grad(lambda v: float(np.sum(g.astype(np.float64) * reference(v))), x)
    np.testing.assert_allclose(dx, fd, rtol=0, atol=GRAD_TOL[dtype] * max(1.0, np.max(np.abs(fd))))


def test_activation_references_by_hand():
    """A few values of the references, from tables: Phi(1) = 0.841344746..., so gelu(1) =
    0.841344746; gelu(-1) = -0.158655254; softmax of (0, log 3) = (1/4, 3/4)."""
    np.testing.assert_allclose(ref_gelu([1.0, -1.0, 0.0]), [0.8413447460685429,
                                                             -0.15865525393145707, 0.0],
                               rtol=1e-15, atol=0)
    assert ref_gelu([1.0], "tanh")[0] == pytest.approx(0.5 * (1 + math.tanh(
        math.sqrt(2 / math.pi) * 1.044715)), rel=1e-15)
    np.testing.assert_allclose(ref_softmax([[0.0, math.log(3)]]), [[0.25, 0.75]], rtol=1e-15)
    np.testing.assert_allclose(ref_leaky_relu([-2.0, 3.0], 0.1), [-0.2, 3.0], rtol=1e-15)


# ---------------------------------------------------------------------- bad input (fuzz review)
def test_failed_fit_leaves_model_optimizer_and_schedule_as_they_were():
    from nesy.optim import Adam, schedules

    X, y = blobs(n=40)
    y = y.copy()
    y[-1] = 7  # out of range in the last batch: 4 updates would already be applied
    model = mlp()
    opt = Adam(model.parameters(), lr=0.1)
    sched = schedules.StepLR(opt, step_size=1, gamma=0.5)
    es = nn.EarlyStopping(monitor="loss")
    t = nn.Trainer(model, nn.CrossEntropyLoss(), opt, schedule=sched, batch_size=8, epochs=2,
                   shuffle=False, verbose=0, early_stopping=es, schedule_interval="batch")
    t.fit(X[:16], y[:16])  # a first good fit: state to keep
    params = model.state_dict()
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    history, es_best = t.history_, es.best_
    with pytest.raises(IndexError, match=r"target\[7\] = 7"):
        t.fit(X, y)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, params[k], err_msg=k)
    after = opt.state_dict()
    assert after["param_groups"] == opt_state["param_groups"]
    for i, entry in opt_state["state"].items():
        for k, v in entry.items():
            np.testing.assert_array_equal(after["state"][i][k], v)
    assert sched.state_dict() == sched_state
    assert t.history_ is history and es.best_ == es_best


def test_fit_keeps_training_after_keyboard_interrupt():
    X, y = blobs(n=40)

    class Interrupt(nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            self._save(True)
            return x

        def backward(self, g):
            return g

    model = nn.Sequential(mlp(), Interrupt())
    before = model.state_dict()
    with pytest.raises(KeyboardInterrupt):
        make_trainer(model, epochs=1).fit(X, y)  # 3 batches of 16: 2 updates, then ^C
    assert not np.array_equal(model.state_dict()["0.0.weight"], before["0.0.weight"])


@pytest.mark.parametrize("call,name", [
    (lambda: nn.Dense(2, 3).forward(np.ones((4, 2)) * 1j), "x"),
    (lambda: nn.Dense(2, 3).forward(np.array([[None, 1]])), "x"),
    (lambda: nn.MSELoss()(np.ones(3) * 1j, np.ones(3)), "pred"),
    (lambda: nn.MSELoss()(np.ones(3), np.ones(3) * 1j), "target"),
    (lambda: nn.BCEWithLogitsLoss()(np.ones(3), np.array([1, 0, 1j])), "target"),
    (lambda: nn.SoftCrossEntropyLoss()(np.ones((1, 2)), np.ones((1, 2)) * 1j), "target"),
    (lambda: nn.CrossEntropyLoss()(np.ones((1, 2)), np.array([1 + 0j])), "target"),
    (lambda: make_trainer(mlp()).fit(blobs(n=20)[0] * 1j, blobs(n=20)[1]), "X"),
    (lambda: make_trainer(mlp()).fit(blobs(n=20)[0], blobs(n=20)[1] * 1j), "y"),
])
def test_complex_and_object_input_refused(call, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning either
        with pytest.raises(TypeError, match=f"^{name}: expected real numbers"):
            call()


def test_bce_pos_weight_and_targets_checked():
    with pytest.raises(ValueError, match="target"):
        nn.BCEWithLogitsLoss()(np.ones(3), np.array([2.0, -1, 0.5]))
    with pytest.raises(ValueError, match="target"):
        nn.BCEWithLogitsLoss()(np.ones(2), np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="pos_weight"):
        nn.BCEWithLogitsLoss(pos_weight=-1)
    with pytest.raises(ValueError, match="pos_weight"):
        nn.BCEWithLogitsLoss(pos_weight=[1.0, np.inf])
    with pytest.raises(ValueError, match=r"pos_weight: has shape \(2,\)"):
        nn.BCEWithLogitsLoss(pos_weight=[1.0, 2.0])(np.ones((4, 3)), np.ones((4, 3)))
    # soft targets and a per-output pos_weight of the right shape are fine
    loss = nn.BCEWithLogitsLoss(pos_weight=[1.0, 2.0, 0.0])
    assert np.isfinite(loss(np.zeros((4, 3)), np.full((4, 3), 0.25)))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: nn.Dense("a", 3), TypeError, "in_features"),
    (lambda: nn.Dense(3, 0), ValueError, "out_features"),
    (lambda: nn.Trainer(mlp(), nn.CrossEntropyLoss(), StubSGD([]), batch_size="a"), TypeError,
     "batch_size"),
    (lambda: nn.Trainer(mlp(), nn.CrossEntropyLoss(), StubSGD([]), epochs=1.5), TypeError,
     "epochs"),
    (lambda: nn.EarlyStopping(patience="a"), TypeError, "patience"),
    (lambda: nn.Trainer(mlp(), 5, StubSGD([])), TypeError, "loss"),
    (lambda: nn.accuracy([0, 1, 2], np.ones((2, 3))), ValueError, "y_true"),
    (lambda: nn.accuracy([0, 1], np.ones((2, 3, 4))), ValueError, "y_pred"),
    (lambda: nn.CrossEntropyLoss()(np.zeros((1, 3)), np.array([1e30])), IndexError,
     r"target\[0\] = 1e\+30"),
])
def test_constructor_and_helper_errors_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_flatten_backward_checks_shape():
    f = nn.Flatten()
    f.forward(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"grad_out has shape \(2, 13\), expected \(2, 12\)"):
        f.backward(np.ones((2, 13)))
    assert f.backward(np.ones((2, 12))).shape == (2, 3, 4)


def test_module_load_of_a_file_that_is_not_names_the_path(tmp_path):
    layer = nn.Dense(2, 3, rng=0)
    keep = [p.copy() for p in layer.parameters()]
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not an archive")
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    for path, why in ((garbage, "not an .npz archive"), (single, "a single .npy array")):
        with pytest.raises(ValueError, match=f"{path.name}.*not a nesy Module state file.*{why}"):
            layer.load(path)
        assert all(np.array_equal(p, q) for p, q in zip(layer.parameters(), keep))


def test_early_stopping_and_trainer_name_non_numeric_options():
    with pytest.raises(TypeError, match="min_delta must be a real number"):
        nn.EarlyStopping(min_delta="a")
    with pytest.raises(ValueError, match="min_delta must be a finite number"):
        nn.EarlyStopping(min_delta=float("nan"))
    m = nn.Sequential(nn.Dense(2, 2, rng=0))
    from nesy.optim import SGD

    with pytest.raises(TypeError, match="grad_clip must be a real number"):
        nn.Trainer(m, nn.MSELoss(), SGD(m.parameters(), lr=0.1), grad_clip="a")


def test_trainer_tbptt_must_be_an_integer():
    m = mlp()
    with pytest.raises(TypeError, match=r"^tbptt: expected an integer, got float 2.5"):
        nn.Trainer(m, nn.CrossEntropyLoss(), StubSGD(m.parameters()), tbptt=2.5)
    with pytest.raises(TypeError, match="^tbptt: "):
        nn.Trainer(m, nn.CrossEntropyLoss(), StubSGD(m.parameters()), tbptt="x")
    with pytest.raises(ValueError, match="^tbptt: expected an integer >= 1"):
        nn.Trainer(m, nn.CrossEntropyLoss(), StubSGD(m.parameters()), tbptt=0)
    assert nn.Trainer(m, nn.CrossEntropyLoss(), StubSGD(m.parameters()), tbptt=3).tbptt == 3


def test_trainer_refuses_an_optimizer_over_another_models_parameters():
    from nesy.optim import SGD, Adam

    X, y = blobs(n=32)
    model, other = mlp(seed=0), mlp(seed=5)
    with pytest.raises(ValueError, match=r"^optimizer: none of its 4 parameter arrays is a "
                                         r"parameter of the model"):
        nn.Trainer(model, nn.CrossEntropyLoss(), Adam(other.parameters()), verbose=0)
    mixed = Adam([model.parameters()[0], other.parameters()[1]])
    with pytest.raises(ValueError, match=r"^optimizer: its parameter array 1 is not a parameter"):
        nn.Trainer(model, nn.CrossEntropyLoss(), mixed, verbose=0)
    # an optimizer over some of the parameters trains those only (fine-tuning the last layer)
    before = [p.copy() for p in model.parameters()]
    head = model.parameters()[2:]
    nn.Trainer(model, nn.CrossEntropyLoss(), SGD(head[::-1], lr=0.1), epochs=2,
               verbose=0).fit(X, y)
    after = model.parameters()
    assert all(np.array_equal(a, b) for a, b in zip(before[:2], after[:2]))
    assert not any(np.array_equal(a, b) for a, b in zip(before[2:], after[2:]))
    # views of the whole parameters are the parameters; the usual optimizer is unchanged
    nn.Trainer(model, nn.CrossEntropyLoss(), SGD([p[...] for p in model.parameters()], lr=0.1),
               epochs=1, verbose=0).fit(X, y)
    assert not np.array_equal(after[0], before[0])


def test_module_load_state_dict_of_a_non_mapping_names_state():
    layer = nn.Dense(2, 3, rng=0)
    keep = [p.copy() for p in layer.parameters()]
    for bad in ([1, 2], 5, None):
        with pytest.raises(TypeError, match=r"^state: expected a mapping of names to arrays "
                                            r"\(a state_dict\(\)\), got "):
            layer.load_state_dict(bad)
    assert all(np.array_equal(p, q) for p, q in zip(layer.parameters(), keep))


def test_module_save_checks_its_path(tmp_path):
    layer = nn.Dense(2, 3, rng=0)
    for bad in (None, 5):
        with pytest.raises(TypeError, match="^path: expected a file path"):
            layer.save(bad)
    layer.save(os.fsencode(tmp_path / "b.npz"))  # bytes, as np.save takes
    other = nn.Dense(2, 3, rng=1)
    other.load(tmp_path / "b.npz")
    assert np.array_equal(other.weight, layer.weight)
    target = str(tmp_path / "sub") + os.sep
    with pytest.raises(IsADirectoryError) as err:  # used to write a file named "sub"
        layer.save(target)
    assert err.value.filename == target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.npz"]


@pytest.mark.parametrize("fn", [act.softmax, act.log_softmax])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_softmax_of_an_empty_axis_is_empty(fn, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fn(np.ones((2, 0), dtype))
        assert out.shape == (2, 0)
        assert out.dtype == (np.float32 if dtype == np.float32 else np.float64)
        assert fn(np.ones((0, 3), dtype)).shape == (0, 3)
        assert fn(np.ones((2, 0), dtype), axis=0).shape == (2, 0)
    with pytest.raises(np.exceptions.AxisError):
        fn(np.ones((2, 0)), axis=2)
    assert nn.Softmax().forward(np.ones((2, 0))).shape == (2, 0)


@pytest.mark.parametrize("grad", [np.ones((4, 3)) * 1j, np.array([[None, 1.0, 2.0]] * 4)])
def test_dense_backward_refuses_complex_and_object_gradients(grad):
    layer = nn.Dense(2, 3, rng=0)
    layer.forward(np.ones((4, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning either
        with pytest.raises(TypeError, match=r"^grad_out: expected real numbers"):
            layer.backward(grad)
    assert not any(g.any() for g in layer.gradients())  # nothing accumulated


def test_star_import_exports_the_estimators():
    for name in ("MLPClassifier", "MLPRegressor", "make_mlp"):
        assert name in nn.__all__
    namespace: dict = {}
    exec("from nesy.nn import *", namespace)
    assert namespace["MLPClassifier"] is nn.MLPClassifier


def test_module_save_writes_to_a_binary_file_object(tmp_path):
    """Module.load took a file object but save refused one (TypeError: path: expected a file
    path)."""
    import io

    layer = nn.Sequential(nn.Dense(2, 3, rng=0), nn.ReLU(), nn.Dense(3, 1, rng=1))
    buf = io.BytesIO(b"head")
    buf.seek(4)
    layer.save(buf)  # written at the file's position, the file left open
    assert not buf.closed and buf.getvalue()[:4] == b"head"
    layer.save(tmp_path / "m.npz")
    buf.seek(4)
    from_file, from_path = dict(np.load(buf)), dict(np.load(tmp_path / "m.npz"))
    assert from_file.keys() == from_path.keys() == layer.state_dict().keys()
    assert all(np.array_equal(from_file[k], from_path[k]) for k in from_path)
    other = nn.Sequential(nn.Dense(2, 3, rng=5), nn.ReLU(), nn.Dense(3, 1, rng=6))
    buf.seek(4)
    other.load(buf)
    assert all(np.array_equal(a, b) for a, b in zip(other.parameters(), layer.parameters()))
    with open(tmp_path / "f.npz", "wb") as fh:  # a real file
        layer.save(fh)
    other.load(tmp_path / "f.npz")
    # A text-mode, read-only or closed file object is refused before anything is written.
    with open(tmp_path / "t.txt", "w") as fh:
        with pytest.raises(TypeError, match=r"^path: expected a binary file object \(opened "
                                             r"with 'wb'\), got a text file"):
            layer.save(fh)
    assert (tmp_path / "t.txt").read_bytes() == b""
    (tmp_path / "r.bin").write_bytes(b"keep")
    with open(tmp_path / "r.bin", "rb") as fh:
        with pytest.raises(ValueError, match=r"^path: the file object .*r\.bin' is not open for "
                                             r"writing"):
            layer.save(fh)
    assert (tmp_path / "r.bin").read_bytes() == b"keep"
    closed = io.BytesIO()
    closed.close()
    with pytest.raises(ValueError, match=r"^path: the file object .* is closed"):
        layer.save(closed)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npz", "m.npz", "r.bin", "t.txt"]


# ---------------------------------------------------------------------- pickles (review s14)


def test_a_pickled_module_holds_its_parameters_not_the_last_batch():
    """A pickle carried the last forward's input and activations (``_ctx``): its size grew
    with the batch and it held the user's data. Now it holds parameters and configuration;
    the unpickled module predicts identically, needs a new forward before backward (as a new
    module) and keeps training as the original does."""
    import pickle

    model = mlp(dtype=np.float64, seed=3, dropout=0.2)
    fresh = len(pickle.dumps(model))
    X, y = blobs(n=5000, seed=2)
    model(X)  # training mode: every layer keeps its input, Dropout its mask
    blob = pickle.dumps(model)
    assert len(blob) == fresh  # 5000 x 8 float64 inputs alone are 320 kB
    twin = pickle.loads(blob)
    assert model.__dict__["_ctx"] is not None and twin.__dict__["_ctx"] is None
    assert all(m.__dict__["_ctx"] is None for m in twin.modules())
    with pytest.raises(RuntimeError, match="before forward"):
        twin.backward(np.ones((50, 3)))
    model.eval()
    twin.eval()
    np.testing.assert_array_equal(twin(X[:50]), model(X[:50]))
    model.train()
    twin.train()
    # the same weights and Dropout generator state: the same training from here on
    a, b = (make_trainer(m, epochs=3, seed=4).fit(X[:200], y[:200]) for m in (model, twin))
    assert a["loss"] == b["loss"]
    assert all(np.array_equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))


def test_a_pickled_graph_layer_holds_no_graph_or_features():
    """A GNN layer kept the last graph, its normalised copy (``_cache``) and the features
    (``_ctx``) in its pickle."""
    import pickle

    from nesy.gnn import GCNConv, Graph

    rng = np.random.default_rng(0)
    n = 3000
    graph = Graph(rng.integers(0, n, size=(2, 20000)), num_nodes=n)
    x = rng.standard_normal((n, 16))
    layer = GCNConv(16, 4, dtype=np.float64, rng=1)
    fresh = len(pickle.dumps(layer))
    out = layer(graph, x)
    assert len(pickle.dumps(layer)) == fresh  # the features alone are 384 kB
    twin = pickle.loads(pickle.dumps(layer))
    np.testing.assert_array_equal(twin(graph, x), out)  # the cache is rebuilt
    grad = np.ones_like(out)
    layer.zero_grad()
    layer(graph, x)
    np.testing.assert_array_equal(twin.backward(grad), layer.backward(grad))
    for (name, g), (_, h) in zip(twin.named_gradients(), layer.named_gradients()):
        np.testing.assert_array_equal(g, h, err_msg=name)


# ---------------------------------------------------------------------- Module.load (review s14)


def test_module_load_of_a_torch_file_says_so_and_how_to_convert(tmp_path):
    """A torch.save file (a zip of pickles) was read as an .npz archive whose members are
    bytes: 'missing key', and with strict=False nothing was loaded and nothing said."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    t = torch.nn.Linear(2, 3)
    layer = nn.Dense(2, 3, rng=0)
    keep = [p.copy() for p in layer.parameters()]
    zipped, legacy = tmp_path / "lin.pt", tmp_path / "legacy.pt"
    torch.save(t.state_dict(), zipped)
    torch.save(t.state_dict(), legacy, _use_new_zipfile_serialization=False)
    for path, what in ((zipped, "a PyTorch zip archive, as torch.save writes"),
                       (legacy, "a pickle: pickle.dump and torch.save's legacy format")):
        for strict in (True, False):
            with pytest.raises(ValueError) as info:
                layer.load(path, strict=strict)
            msg = str(info.value)
            assert msg.startswith(f"{str(path)!r}: not a nesy Module state file ({what}"), msg
            assert "load_state_dict({k: v.numpy() for k, v in torch.load(path).items()})" in msg
            assert all(np.array_equal(p, q) for p, q in zip(layer.parameters(), keep))
        with open(path, "rb") as fh:  # a file object: named too, and detected the same way
            want = re.escape(f"not a nesy Module state file ({what}")
            with pytest.raises(ValueError, match=want):
                layer.load(fh)
            assert fh.tell() == 0  # left where it was
    # the conversion the message gives works
    layer.load_state_dict({k: v.numpy() for k, v in torch.load(zipped).items()})
    np.testing.assert_allclose(layer(np.ones((1, 2))),
                               t(torch.ones(1, 2, dtype=torch.float64).float()).detach().numpy(),
                               rtol=1e-6)


def test_module_load_of_a_pickled_module_points_to_pickle_load(tmp_path):
    """A pickle.dump'ed Module is not a torch file: the message says to use pickle.load."""
    import pickle

    path = tmp_path / "dense.pkl"
    with open(path, "wb") as fh:
        pickle.dump(nn.Dense(2, 3, rng=0), fh)
    with pytest.raises(ValueError, match="A pickled nesy Module loads with pickle.load"):
        nn.Dense(2, 3, rng=0).load(path)


def test_module_load_refuses_an_archive_member_that_is_not_an_array(tmp_path):
    import zipfile

    path = tmp_path / "odd.npz"
    np.savez(path, weight=np.zeros((3, 2)), bias=np.zeros(3))
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(ValueError, match=r"odd.npz'?: not a nesy Module state file \(the "
                                         r"archive member 'notes.txt' is not a .npy array\)"):
        nn.Dense(2, 3, rng=0).load(path)


def test_module_load_with_strict_false_refuses_a_file_with_no_key_of_the_module(tmp_path):
    """strict=False skipped every key of a file that had none of the module's, loading
    nothing and saying nothing."""
    layer = nn.Dense(2, 3, rng=0)
    keep = [p.copy() for p in layer.parameters()]
    path = tmp_path / "other.npz"
    np.savez(path, **{"lin.weight": np.ones((3, 2)), "lin.bias": np.ones(3)})
    with pytest.raises(ValueError, match=r"other.npz'?: none of the file's keys is one of this "
                                         r"Dense's, so strict=False would load nothing \(file: "
                                         r"\['lin.weight', 'lin.bias'\]; module: \['weight', "
                                         r"'bias'\]\)"):
        layer.load(path, strict=False)
    assert all(np.array_equal(p, q) for p, q in zip(layer.parameters(), keep))
    # one key in common is loaded, the others skipped, as before
    np.savez(path, **{"bias": np.full(3, 2.0), "extra": np.ones(1)})
    layer.load(path, strict=False)
    assert np.array_equal(layer.bias, np.full(3, 2.0))
    assert np.array_equal(layer.weight, keep[0])


# ---------------------------------------------------------------------- s15 review fixes


def _tied_pair(seed=0):
    """Two Dense layers holding one weight array (``b``'s weight tied to ``a``'s)."""
    a = nn.Dense(3, 3, dtype=np.float64, rng=seed)
    b = nn.Dense(3, 3, dtype=np.float64, rng=seed + 1)
    del b.weight
    b.register_parameter("weight", a.weight)
    return a, b


def test_weight_tying_sums_the_gradients_of_every_use():
    """H2: the second layer's contribution never reached the gradient the optimizer sees
    (max error 0.445 against finite differences); both uses now accumulate into one array,
    as torch sums them."""
    a, b = _tied_pair()
    model = nn.Sequential(a, nn.Tanh(), b)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    assert b.weight is a.weight and b.grad("weight") is a.grad("weight")
    x = np.random.default_rng(0).standard_normal((5, 3))
    check_module_grads(model, x)
    # a copy (pickle, deepcopy) is tied the same way, and its gradient is right too
    import pickle

    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert clone[2].weight is clone[0].weight and clone[0].weight is not a.weight
        assert clone[2].grad("weight") is clone[0].grad("weight")
        check_module_grads(clone, x)


def test_weight_tying_trains_as_torch():
    """Tied weights after two Adam steps equal torch's (which sums both uses' gradients)."""
    torch = pytest.importorskip("torch")
    from nesy.optim import Adam

    a, b = _tied_pair(seed=3)
    model = nn.Sequential(a, nn.Tanh(), b)
    ta, tb = torch.nn.Linear(3, 3).double(), torch.nn.Linear(3, 3).double()
    with torch.no_grad():
        ta.weight.copy_(torch.from_numpy(a.weight.T.copy()))
        ta.bias.copy_(torch.from_numpy(a.bias))
        tb.bias.copy_(torch.from_numpy(b.bias))
    tb.weight = ta.weight  # torch's weight tying
    tmodel = torch.nn.Sequential(ta, torch.nn.Tanh(), tb)
    x = np.random.default_rng(1).standard_normal((6, 3))
    y = np.random.default_rng(2).standard_normal((6, 3))
    opt = Adam(model.parameters(), lr=0.1)
    topt = torch.optim.Adam(list(tmodel.parameters()), lr=0.1)
    loss = nn.MSELoss()
    for _ in range(2):
        model.zero_grad()
        loss(model(x), y)
        model.backward(loss.backward())
        opt.step(model.gradients())
        topt.zero_grad()
        torch.nn.functional.mse_loss(tmodel(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        topt.step()
    np.testing.assert_allclose(a.weight, ta.weight.detach().numpy().T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b.bias, tb.bias.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_one_module_twice_in_a_container_is_refused():
    """H2: ``Sequential(d, Tanh(), d)`` kept one forward context for two uses, and the first
    use's backward got the second use's input (max gradient error 1.98), without an error."""
    d = nn.Dense(3, 3, dtype=np.float64, rng=0)
    with pytest.raises(ValueError, match=r"Sequential: this Dense is already held \(at "
                                         r"position 0\).*create a separate Dense"):
        nn.Sequential(d, nn.Tanh(), d)
    relu = nn.ReLU()  # one activation object at two places: the same mistake
    with pytest.raises(ValueError, match="this ReLU is already held"):
        nn.Sequential(nn.Dense(3, 3, rng=0), relu, nn.Dense(3, 3, rng=1), relu)
    with pytest.raises(ValueError, match="already held"):  # inside a nested Sequential
        nn.Sequential(d, nn.Sequential(nn.Tanh(), d))
    seq = nn.Sequential(d)
    with pytest.raises(ValueError, match="already held"):
        seq.append(d)
    with pytest.raises(ValueError, match="is the container itself"):
        seq.append(seq)
    assert len(seq) == 1  # a refused append adds nothing
    with pytest.raises(ValueError, match="ModuleList: this Dense is already held"):
        nn.ModuleList([d, d])
    # distinct objects, and one module registered under two names, are fine
    nn.Sequential(nn.Dense(3, 3, rng=0), nn.ReLU(), nn.Dense(3, 3, rng=1), nn.ReLU())
    assert len(list(nn.Sequential(d, nn.Tanh())[0:2])) == 2


def test_a_parameter_array_with_two_gradient_arrays_is_refused():
    """H2: the same array in two modules with separate gradients (set up without
    register_parameter) would lose one use's gradient: listing the parameters refuses it."""
    a, b = _tied_pair()
    model = nn.Sequential(a, nn.Tanh(), b)
    b._grads["weight"] = np.zeros_like(b.weight)
    for listing in (model.gradients, model.parameters, model.named_parameters):
        with pytest.raises(ValueError, match=r"parameter '2.weight' is the same array as "
                                             r"'0.weight' but has its own gradient array"):
            listing()


def test_early_stopping_auto_mode_keeps_the_most_accurate_epoch():
    """M1: monitor="val_accuracy" with the default mode ("min") kept and restored the least
    accurate epoch."""
    assert nn.EarlyStopping().mode == "auto"
    for monitor in ("val_accuracy", "accuracy", "acc", "val_auc", "val_f1_score", "val_r2"):
        assert nn.EarlyStopping(monitor=monitor).direction == "max", monitor
    for monitor in ("val_loss", "loss", "val_mae", "mse", "val_acc_loss", "error_rate"):
        assert nn.EarlyStopping(monitor=monitor).direction == "min", monitor
    assert nn.EarlyStopping(monitor="val_accuracy", mode="min").direction == "min"
    assert nn.EarlyStopping(monitor="val_loss", mode="max").direction == "max"
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max'"):
        nn.EarlyStopping(mode="maximum")
    with pytest.raises(TypeError, match="monitor: expected the name of a logged value"):
        nn.EarlyStopping(monitor=None)

    X, y = blobs(seed=2)
    Xv, yv = X[:40].copy(), y[:40].copy()
    yv[:12] = (yv[:12] + 1) % 3  # a validation accuracy that is not monotone
    model = mlp(seed=1)
    sched = RecordingSchedule(model)
    es = nn.EarlyStopping(patience=3, monitor="val_accuracy")
    hist = make_trainer(model, epochs=40, schedule=sched, early_stopping=es,
                        metrics={"accuracy": nn.accuracy}).fit(X, y, validation_data=(Xv, yv))
    acc = np.array(hist["val_accuracy"])
    assert acc.max() > acc.min()
    best = int(np.argmax(acc)) + 1
    assert hist.best_epoch == es.best_epoch_ == best and es.best_ == acc.max()
    for k, v in sched.states[best - 1].items():  # the most accurate epoch's weights
        assert np.array_equal(model.state_dict()[k], v)
    assert nn.accuracy(yv, model(Xv)) == acc.max()


def test_trainer_names_the_argument_of_keras_style_mistakes():
    """L1: early_stopping=True, metrics=["accuracy"] and schedule=0.1 failed with
    AttributeError or a dict() message naming no argument (schedule after a full epoch)."""
    X, y = blobs(n=20)
    with pytest.raises(TypeError, match="early_stopping: expected an EarlyStopping object or "
                                        "None, got bool True"):
        make_trainer(mlp(), early_stopping=True)
    with pytest.raises(TypeError, match=r"metrics: expected a dict of names to functions, such "
                                        r"as \{'accuracy': accuracy\}.*got list \['accuracy'\]"):
        make_trainer(mlp(), metrics=["accuracy"])
    with pytest.raises(TypeError, match="metrics: a metric's name must be a str"):
        make_trainer(mlp(), metrics={1: nn.accuracy})
    with pytest.raises(TypeError, match="schedule: expected a learning-rate schedule with a "
                                        "step.. method.*got float 0.1"):
        make_trainer(mlp(), schedule=0.1)
    model = mlp()
    with pytest.raises(ValueError, match="loss: reduction='none' gives one loss per sample"):
        nn.Trainer(model, nn.CrossEntropyLoss(reduction="none"), StubSGD(model.parameters()))
    make_trainer(mlp(), early_stopping=None, metrics=None, schedule=None).fit(X, y)


def _unreduced_cases():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((6, 4))
    t = rng.random((6, 4))
    labels = np.array([0, 3, -100, 2, 1, 3])
    q = rng.dirichlet(np.ones(4), 6)
    w = np.array([0.5, 2.0, 1.0, 3.0])
    return [
        ("mse", lambda r: nn.MSELoss(reduction=r), z, t, (6, 4)),
        ("ce", lambda r: nn.CrossEntropyLoss(weight=w, label_smoothing=0.1, reduction=r), z,
         labels, (6,)),
        ("bce", lambda r: nn.BCEWithLogitsLoss(pos_weight=[1.0, 2.0, 0.5, 1.0], reduction=r), z,
         t, (6, 4)),
        ("soft", lambda r: nn.SoftCrossEntropyLoss(temperature=2.0, reduction=r), z, q, (6,)),
    ]


@pytest.mark.parametrize("case", _unreduced_cases(), ids=lambda c: c[0])
def test_losses_reduction_none_gives_per_sample_losses_and_their_gradient(case):
    """L2: reduction="none" was refused (it is what per-sample weights need)."""
    _, make, z, target, shape = case
    loss = make("none")
    per = loss(z, target)
    assert isinstance(per, np.ndarray) and per.shape == shape and per.dtype == z.dtype
    assert float(per.sum()) == pytest.approx(make("sum")(z, target), rel=1e-12)
    weights = np.random.default_rng(5).random(shape)
    grad = loss.backward(weights)
    assert grad.shape == z.shape and grad.dtype == z.dtype
    fd = fd_grad(lambda v: float(np.sum(make("none")(v, target) * weights)), z)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="grad_output: required with reduction='none'"):
        loss.backward()
    with pytest.raises(ValueError, match="grad_output: has shape"):
        loss.backward(np.ones(shape[0] + 1))
    # a reduced loss takes an optional number: the gradient of that multiple of the loss
    summed = make("sum")
    summed(z, target)
    np.testing.assert_allclose(summed.backward(2.5), 2.5 * summed.backward(), rtol=1e-15)


def test_losses_reduction_none_and_ignore_index_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(6)
    z = rng.standard_normal((7, 4))
    y = np.array([0, 3, -100, 2, 1, -100, 3])
    w = np.array([0.5, 2.0, 1.0, 3.0])
    for reduction in ("mean", "sum", "none"):
        for smoothing in (0.0, 0.2):
            for weight in (None, w):
                ours = nn.CrossEntropyLoss(weight=weight, label_smoothing=smoothing,
                                           reduction=reduction)
                value = ours(z, y)
                up = rng.standard_normal(7) if reduction == "none" else None
                grad = ours.backward(up)
                tz = torch.tensor(z, requires_grad=True)
                ref = F.cross_entropy(tz, torch.tensor(y), None if weight is None
                                      else torch.tensor(weight), label_smoothing=smoothing,
                                      reduction=reduction)
                (ref if up is None else (ref * torch.tensor(up)).sum()).backward()
                np.testing.assert_allclose(value, ref.detach().numpy(), rtol=1e-13, atol=1e-15)
                np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-13, atol=1e-15)
    t = rng.random((7, 4))
    up = rng.standard_normal((7, 4))
    for ours, ref_fn in ((nn.MSELoss(reduction="none"), F.mse_loss),
                         (nn.BCEWithLogitsLoss(reduction="none"),
                          F.binary_cross_entropy_with_logits)):
        tz = torch.tensor(z, requires_grad=True)
        ref = ref_fn(tz, torch.tensor(t), reduction="none")
        (ref * torch.tensor(up)).sum().backward()
        np.testing.assert_allclose(ours(z, t), ref.detach().numpy(), rtol=1e-13)
        np.testing.assert_allclose(ours.backward(up), tz.grad.numpy(), rtol=1e-13, atol=1e-15)


def test_cross_entropy_ignore_index_leaves_targets_out():
    """L2: torch's default ignore_index=-100 raised IndexError."""
    rng = np.random.default_rng(7)
    z = rng.standard_normal((6, 3))
    y = np.array([2, -100, 0, 1, -100, 1])
    keep = y != -100
    loss = nn.CrossEntropyLoss()
    assert loss.ignore_index == -100
    value = loss(z, y)
    grad = loss.backward()
    kept = nn.CrossEntropyLoss()
    assert value == pytest.approx(kept(z[keep], y[keep]), rel=1e-14)
    np.testing.assert_allclose(grad[keep], kept.backward(), rtol=1e-14)
    assert not grad[~keep].any()
    # another ignore_index, inside the class range; float labels too
    other = nn.CrossEntropyLoss(ignore_index=1, reduction="sum")
    mask = y == 1
    assert other(z, np.where(y == -100, 0, y).astype(float)) == pytest.approx(
        nn.CrossEntropyLoss(reduction="sum")(z[~mask], np.where(y == -100, 0, y)[~mask]))
    with pytest.raises(ValueError, match=r"every target is ignore_index \(-100\)"):
        loss(z, np.full(6, -100))
    with pytest.raises(IndexError, match=r"target\[1\] = -1 is out of range"):
        loss(z, np.array([0, -1, 0, 0, 0, 0]))
    with pytest.raises(TypeError, match="ignore_index: expected an integer"):
        nn.CrossEntropyLoss(ignore_index=1.5)


@pytest.mark.parametrize("make, name", [
    (lambda: nn.Dropout("a"), "p"),
    (lambda: nn.CrossEntropyLoss(label_smoothing="a"), "label_smoothing"),
    (lambda: nn.SoftCrossEntropyLoss("x"), "temperature"),
    (lambda: nn.LeakyReLU("a"), "negative_slope"),
    (lambda: nn.Softmax(axis="a"), "axis"),
    (lambda: nn.LogSoftmax(axis=1.0), "axis"),
    (lambda: nn.Flatten("a"), "start_axis"),
])
def test_non_numeric_hyper_parameters_name_the_argument(make, name):
    """L2: these raised ``ValueError: could not convert string to float: 'a'``."""
    with pytest.raises(TypeError, match=rf"^{name}\b"):
        make()
    for bad in (lambda: nn.Dropout(float("nan")), lambda: nn.SoftCrossEntropyLoss(math.inf)):
        with pytest.raises(ValueError, match="finite"):
            bad()
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
        nn.MSELoss(reduction=3)


# ---------------------------------------------------------------------- s15 second review


def test_tied_state_dict_lists_every_name_and_moves_to_torch_and_back(tmp_path):
    """Finding 1: the tied weight was listed once ('0.weight'), so torch's tied model missed
    '2.weight' and nesy refused it as unexpected."""
    torch = pytest.importorskip("torch")
    a, b = _tied_pair(seed=3)
    model = nn.Sequential(a, nn.Tanh(), b)
    state = model.state_dict()
    assert sorted(state) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    np.testing.assert_array_equal(state["2.weight"], state["0.weight"])
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    assert sorted(model.snapshot()) == ["0.bias", "0.weight", "2.bias"]  # each array once

    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh(),
                                 torch.nn.Linear(3, 3)).double()
    tmodel[2].weight = tmodel[0].weight
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})  # strict
    x = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_allclose(tmodel(torch.from_numpy(x)).detach().numpy(), model(x),
                               rtol=1e-13)
    with torch.no_grad():
        for p in tmodel.parameters():
            p.mul_(0.5)
    other_a, other_b = _tied_pair(seed=8)
    back = nn.Sequential(other_a, nn.Tanh(), other_b)
    back.load_state_dict({k: v.numpy() for k, v in tmodel.state_dict().items()})  # strict
    assert other_b.weight is other_a.weight
    np.testing.assert_allclose(back(x), tmodel(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-13)

    # a state dict with the first name only (as files saved before), or the other name only
    for keep in ("0.weight", "2.weight"):
        fresh_a, fresh_b = _tied_pair(seed=9)
        fresh = nn.Sequential(fresh_a, nn.Tanh(), fresh_b)
        fresh.load_state_dict({k: v for k, v in state.items()
                               if k not in ("0.weight", "2.weight") or k == keep})
        np.testing.assert_array_equal(fresh_a.weight, a.weight)
        assert fresh_b.weight is fresh_a.weight
    with pytest.raises(ValueError, match=r"missing key '0.weight' \(missing: \['0.weight', "
                                         r"'2.weight'\]\)"):
        fresh.load_state_dict({k: v for k, v in state.items() if not k.endswith("weight")})

    # two names of one tied array with different values: an error naming both, no change
    before = fresh.snapshot()
    bad = dict(state)
    bad["2.weight"] = bad["2.weight"] + 1.0
    for strict in (True, False):
        with pytest.raises(ValueError, match=r"keys '0.weight' and '2.weight' name one tied "
                                             r"array .* but hold different values"):
            fresh.load_state_dict(bad, strict=strict)
        assert all(np.array_equal(v, fresh.snapshot()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="unexpected key 'extra'"):
        fresh.load_state_dict({**state, "extra": np.ones(1)})

    # Module.save / load: the file holds both names; a file with the first name only loads
    path = tmp_path / "tied.npz"
    model.save(path)
    with np.load(path) as f:
        assert sorted(f.files) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    fresh.load(path)
    np.testing.assert_array_equal(fresh_a.weight, a.weight)
    old = tmp_path / "old.npz"
    np.savez(old, **{k: v for k, v in state.items() if k != "2.weight"})
    c, d = _tied_pair(seed=11)
    nn.Sequential(c, nn.Tanh(), d).load(old)
    np.testing.assert_array_equal(d.weight, a.weight)


def test_tied_state_dict_of_a_shared_submodule_and_of_two_layouts():
    """Finding 1: one submodule under two names is listed under both (as torch lists it); a
    tie between a transposed (Dense, torch's layout) and a plain name compares the values in
    the array's own layout."""
    torch = pytest.importorskip("torch")

    class Twice(nn.Module):
        def __init__(self, lin):
            super().__init__()
            self.enc = lin
            self.dec = lin

    lin = nn.Dense(3, 3, dtype=np.float64, rng=0)
    model = Twice(lin)
    assert list(model.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]

    class TorchTwice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.nn.Linear(3, 3).double()
            self.dec = self.enc

    tmodel = TorchTwice()
    assert list(tmodel.state_dict()) == list(model.state_dict())
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    model.load_state_dict({k: v.numpy() for k, v in tmodel.state_dict().items()})

    class Raw(nn.Module):
        def __init__(self, w):
            super().__init__()
            self.register_parameter("w", w)

    dense = nn.Dense(3, 3, dtype=np.float64, rng=1)
    mixed = nn.Sequential(dense, Raw(dense.weight))
    state = mixed.state_dict()
    np.testing.assert_array_equal(state["0.weight"], state["1.w"].T)
    assert not np.array_equal(state["0.weight"], state["1.w"])
    dense.weight[...] = 0.0
    mixed.load_state_dict(state)  # consistent in the array's layout: accepted
    np.testing.assert_array_equal(dense.weight, state["1.w"])


def test_a_parameter_registered_after_its_modules_are_gone_starts_at_zero():
    """Finding 3: the gradient table kept a deleted module's gradient for as long as the array
    lived, and a module registering the array later started from that stale gradient."""
    import gc

    from nesy.nn import module as M

    x = np.ones((1, 2))
    a = nn.Dense(2, 2, dtype=np.float64, rng=0)
    a(x)
    a.backward(np.ones((1, 2)))
    w = a.weight
    assert a.grad("weight").any() and id(w) in M._GRAD_OF
    del a
    gc.collect()
    assert id(w) not in M._GRAD_OF  # no live module holds it: its gradient is not kept
    c = nn.Dense(2, 2, dtype=np.float64, rng=3)
    del c.weight
    c.register_parameter("weight", w)
    assert c.weight is w and not c.grad("weight").any()

    # a module that deletes the attribute no longer holds the array either
    e = nn.Dense(2, 2, dtype=np.float64, rng=4)
    v = e.weight
    del e.weight
    assert id(v) not in M._GRAD_OF

    # while one module still holds a tied array, registering it ties to that one's gradient
    p, q = _tied_pair()
    p(np.ones((1, 3)))
    p.backward(np.ones((1, 3)))
    shared, g = p.weight, p.grad("weight")
    del p
    gc.collect()
    r = nn.Dense(3, 3, dtype=np.float64, rng=5)
    del r.weight
    r.register_parameter("weight", shared)
    assert r.grad("weight") is g is q.grad("weight")


@pytest.mark.parametrize("monitor, direction", [
    ("val_brier_score", "min"), ("brier_score", "min"), ("log_score", "min"),
    ("val_err2", "min"), ("myacc", "min"), ("val_accuracy_error", "min"), ("val_mse", "min"),
    ("acc_loss", "min"), ("val", "min"), ("val_rmse", "min"), ("nll", "min"),
    ("score", "max"), ("val_score", "max"), ("val_f1_score", "max"), ("r2_score", "max"),
    ("val_roc_auc", "max"), ("Val_Accuracy", "max"), ("top_5_accuracy", "max"),
    ("val_precision", "max"), ("recall", "max"), ("val_r2", "max"), ("acc", "max"),
])
def test_early_stopping_auto_mode_matches_whole_words(monitor, direction):
    """Finding 5: "score" and "r2" matched anywhere, so val_brier_score, log_score and
    val_err2 (smaller is better) were maximised."""
    assert nn.EarlyStopping(monitor=monitor).direction == direction


def test_trainer_takes_a_duck_typed_early_stopping_again():
    """Finding 6: an object of one's own with EarlyStopping's protocol (reset, update and the
    attributes the Trainer reads) was refused with TypeError."""
    X, y = blobs(n=60)

    class StopAfter:
        monitor = "loss"
        restore_best = False
        best_state_ = None

        def __init__(self, n):
            self.n = n

        def reset(self):
            self.seen = []
            self.best_epoch_ = None

        def update(self, epoch, logs, model):
            self.seen.append(logs["loss"])
            self.best_epoch_ = epoch
            return epoch >= self.n

    es = StopAfter(2)
    hist = make_trainer(mlp(), epochs=6, early_stopping=es).fit(X, y)
    assert len(hist) == 2 and hist.stopped_epoch == 2 and hist.best_epoch == 2
    assert len(es.seen) == 2

    class Minimal:  # only the two methods, no __dict__
        __slots__ = ("calls",)

        def reset(self):
            self.calls = 0

        def update(self, epoch, logs, model):
            self.calls += 1
            return self.calls == 3

    hist = make_trainer(mlp(), epochs=6, early_stopping=Minimal()).fit(X, y)
    assert len(hist) == 3 and hist.best_epoch is None
    for bad in (True, nn.EarlyStopping, object(), "val_loss"):
        with pytest.raises(TypeError, match="early_stopping: expected an EarlyStopping object "
                                            "or None.*reset\\(\\) and update"):
            make_trainer(mlp(), early_stopping=bad)


def test_predict_gives_every_submodule_its_own_mode_back():
    """Finding 9: predict restored the root's mode on the whole tree, so a Dropout the user had
    put in eval mode came back in training mode."""
    from nesy.nn.trainer import predict

    net = nn.Sequential(nn.Dense(3, 4, rng=0), nn.Dropout(0.5, rng=0), nn.Dense(4, 2, rng=1))
    net[1].eval()
    predict(net, np.ones((5, 3)), batch_size=2)
    assert [m.training for m in net.modules()] == [True, True, False, True]
    with pytest.raises(ValueError):
        predict(net, np.ones((5, 4)))  # wrong width: the forward fails
    assert [m.training for m in net.modules()] == [True, True, False, True]
    net.eval()
    net[2].train()
    predict(net, np.ones((5, 3)))
    assert [m.training for m in net.modules()] == [False, False, False, True]


# ---------------------------------------------------------------------- review s22 (nn)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_trainer_logs_the_epoch_loss_as_the_loss_reduces_it(reduction):
    """H1: with reduction="sum" the logged loss weighted each batch's sum by its size and
    divided by n, neither the sum nor the mean; it is now the sum of the batch values, as
    evaluate's val_loss (lr=0 and the same data: equal, also with a smaller last batch)."""
    from nesy.optim import SGD

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((43, 3)), rng.standard_normal((43, 1))  # batches 10 x 4 + 3
    m = nn.Sequential(nn.Dense(3, 1, rng=0, dtype=np.float64))
    tr = nn.Trainer(m, nn.MSELoss(reduction=reduction), SGD(m.parameters(), lr=0.0),
                    verbose=0, epochs=2, batch_size=10)
    h = tr.fit(X, Y, validation_data=(X, Y))
    np.testing.assert_allclose(h["loss"], h["val_loss"], rtol=1e-12)
    assert h["loss"][0] == pytest.approx(tr.evaluate(X, Y)["loss"], rel=1e-12)


def test_trainer_tbptt_logs_the_summed_loss_over_every_chunk():
    """H1 with truncated BPTT: each chunk's sum counts once (not weighted by its steps)."""
    from nesy.optim import SGD
    from nesy.rnn import SequenceNet

    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((7, 8, 2)), rng.standard_normal((7, 8, 1))
    net = SequenceNet("gru", 2, 3, 1, output="sequence", dtype=np.float64, rng=0)
    tr = nn.Trainer(net, nn.MSELoss(reduction="sum"), SGD(net.parameters(), lr=0.0),
                    batch_size=4, epochs=1, verbose=0, tbptt=3, shuffle=False)
    h = tr.fit(X, Y, validation_data=(X, Y))
    assert h["loss"][0] == pytest.approx(h["val_loss"][0], rel=1e-12)


def test_trainer_refuses_a_schedule_bound_to_another_optimizer():
    """H2: the schedule stepped its own optimizer, the model trained at a constant rate."""
    from nesy.optim import SGD, Adam
    from nesy.optim import schedules as S

    m = nn.Sequential(nn.Dense(3, 2, rng=0))
    opt = Adam(m.parameters(), lr=0.01)
    other = S.StepLR(SGD([np.zeros(2)], lr=0.1), 1, 0.5)
    with pytest.raises(ValueError, match="^schedule: is bound to another optimizer"):
        nn.Trainer(m, nn.CrossEntropyLoss(), opt, schedule=other)
    nn.Trainer(m, nn.CrossEntropyLoss(), opt, schedule=S.StepLR(opt, 1, 0.5))  # its own: fine


def test_sequential_allows_input_grad_false_only_after_modules_without_parameters():
    """M2: a later layer without input gradient returned None to the layer below, which then
    failed (naming a () shape) after the later layer had accumulated its gradients."""
    with pytest.raises(ValueError, match="^input_grad: the Dense at position 2"):
        nn.Sequential(nn.Dense(3, 4, rng=0), nn.Tanh(), nn.Dense(4, 2, rng=1, input_grad=False))
    with pytest.raises(ValueError, match="^input_grad: the Sequential at position 1"):
        nn.Sequential(nn.Dense(3, 4, rng=0), nn.Sequential(nn.Dense(4, 2, input_grad=False)))
    inner = nn.Sequential(nn.Dense(4, 4, rng=2), nn.Tanh())
    s = nn.Sequential(nn.Dense(3, 4, rng=0, input_grad=False), nn.Tanh(), inner,
                      nn.Dense(4, 2, rng=1))
    s.forward(np.ones((2, 3)))
    assert s.backward(np.ones((2, 2))) is None  # the first may skip it
    for layer, where in ((s[3], "Dense at position 3"), (inner[0], "Sequential at position 2")):
        s.zero_grad()  # switched off after the Sequential was built
        layer.input_grad = False
        s.forward(np.ones((2, 3)))
        with pytest.raises(ValueError, match=f"^input_grad: the {where} of the Sequential"):
            s.backward(np.ones((2, 2)))
        assert all(not g.any() for g in s.gradients())  # nothing accumulated
        layer.input_grad = True
    # After modules without parameters (an input Dropout): allowed, backward stops there.
    d = nn.Sequential(nn.Dropout(0.5, rng=0), nn.Identity(),
                      nn.Dense(3, 4, rng=0, input_grad=False), nn.Tanh(), nn.Dense(4, 2, rng=1))
    d.train()
    d.forward(np.ones((2, 3)))
    assert d.backward(np.ones((2, 2))) is None
    assert all(g.any() for g in d.gradients())


def test_soft_cross_entropy_refuses_nan_and_negative_targets():
    """M7: NaN gave a NaN loss, negative mass a finite (unbounded below) loss."""
    z = np.zeros((3, 4))
    for q in (np.full((3, 4), np.nan), np.array([[-5, 3, 2, 1.0]] * 3),
              np.array([[np.inf, 0, 0, 0]] * 3)):
        with pytest.raises(ValueError, match=r"^target: must hold finite probabilities >= 0"):
            nn.SoftCrossEntropyLoss()(z, q)
    assert nn.SoftCrossEntropyLoss()(z, np.full((3, 4), 0.25)) == pytest.approx(np.log(4))


@pytest.mark.parametrize("bad,err,msg", [
    (-1, ValueError, "expected an integer >= 0, got -1"),
    (1.5, TypeError, "expected None, an int >= 0 or a numpy.random.Generator, got float"),
    ("a", TypeError, "expected None, an int >= 0 or a numpy.random.Generator, got str"),
    (True, TypeError, ".*got bool"),
])
def test_seeds_are_checked_where_the_options_are_and_named(bad, err, msg):
    """M8: numpy's messages named no argument, and the Trainer's seed failed only in fit."""
    m = mlp()
    with pytest.raises(err, match=rf"^seed: {msg}"):
        nn.Trainer(m, nn.CrossEntropyLoss(), StubSGD(m.parameters()), seed=bad)
    with pytest.raises(err, match=rf"^rng: {msg}"):
        nn.Dense(2, 3, rng=bad)
    with pytest.raises(err, match=rf"^rng: {msg}"):
        nn.Dropout(0.5, rng=bad)
    with pytest.raises(err, match=rf"^rng: {msg}"):
        init.glorot_uniform((2, 3), rng=bad)
    with pytest.raises(err, match=rf"^rng: {msg}"):
        init.orthogonal((2, 3), rng=bad)


def test_seeds_numpy_takes_are_still_taken():
    for seed in (None, 0, np.int64(3), [1, 2], np.random.default_rng(0),
                 np.random.PCG64(1), np.random.SeedSequence(2), np.random.RandomState(0)):
        nn.Dense(2, 3, rng=seed)
        m = mlp()
        nn.Trainer(m, nn.CrossEntropyLoss(), StubSGD(m.parameters()), seed=seed, verbose=0)
    np.testing.assert_array_equal(init.he_normal((3, 2), rng=[1, 2]),
                                  init.he_normal((3, 2), rng=np.random.default_rng([1, 2])))


@pytest.mark.parametrize("value,err", [("yes", TypeError), (None, TypeError),
                                       (2.7, TypeError), (-1, ValueError)])
def test_trainer_verbose_is_an_integer_named(value, err):
    """M9: int() gave Python's own messages, and 2.7 was truncated."""
    m = mlp()
    with pytest.raises(err, match="^verbose: expected an integer"):
        nn.Trainer(m, nn.CrossEntropyLoss(), StubSGD(m.parameters()), verbose=value)


def test_trainer_verbose_takes_a_bool():
    """True is level 1 (the RNN estimators pass their scikit-learn-style verbose on)."""
    m = mlp()
    for v in (True, False, np.bool_(True)):
        t = nn.Trainer(m, nn.CrossEntropyLoss(), StubSGD(m.parameters()), verbose=v)
        assert t.verbose == int(v) and type(t.verbose) is int


def test_get_activation_names_its_argument():
    """L2: get_activation(3) raised "'int' object is not callable"."""
    with pytest.raises(TypeError, match="^name: expected the name of an activation"):
        nn.get_activation(3)
    assert isinstance(nn.get_activation(nn.Tanh), nn.Tanh)


def test_assigning_a_parameter_checks_what_load_state_dict_checks():
    """L4: NaN was stored, and 1e300 became inf in a float32 parameter (a RuntimeWarning)."""
    d = nn.Dense(3, 4, rng=0)
    before = d.bias.copy()
    with pytest.raises(ValueError, match="^'bias': the assigned array contains NaN"):
        d.bias = np.full(4, np.nan)
    with pytest.raises(ValueError, match="^'bias': the assigned array holds 1e\\+300, which "
                                         "does not fit in float32"):
        d.bias = np.full(4, 1e300)
    np.testing.assert_array_equal(d.bias, before)
    d.bias = np.arange(4)  # integers are cast, as before
    d.weight = np.ones((3, 4))
    assert d.bias.dtype == np.float32 and d.bias[3] == 3 and d.weight.sum() == 12


@pytest.mark.parametrize("make", [
    lambda v: nn.Trainer(mlp(), nn.CrossEntropyLoss(), StubSGD([]), shuffle=v),
    lambda v: nn.EarlyStopping(restore_best=v),
    lambda v: nn.Dense(2, 3, bias=v),
    lambda v: nn.Dense(2, 3, input_grad=v),
    lambda v: mlp().train(v),
    lambda v: mlp().load_state_dict(mlp().state_dict(), strict=v),
], ids=["shuffle", "restore_best", "bias", "input_grad", "mode", "strict"])
def test_boolean_options_refuse_other_values(make):
    """L5: any truthy value was accepted: Trainer(shuffle="no").shuffle was True."""
    for bad in ("no", None, 2):
        with pytest.raises(TypeError, match=r"^\w+: expected a bool"):
            make(bad)


def test_module_load_names_path():
    """L8: load(None) gave "expected str, bytes or os.PathLike object, not NoneType"."""
    for bad in (None, 3):
        with pytest.raises(TypeError, match="^path: expected a file path"):
            nn.Dense(2, 3).load(bad)
