"""Checks of the recurrent-layer references in ``tests/reference.py``.

* Every gradient returned by ``rnn_layer_backward`` is compared with central finite differences
  of the scalar loss ``L = sum(dy * y) + sum(dh_n * h_n) (+ sum(dc_n * c_n))`` in float64, for
  every cell, with and without bias, with and without ``lengths``, in both directions.
* The ``lengths`` contract is checked directly: a padded row gives the same outputs as the same
  row run alone on its unpadded sequence, and padding values never matter.
* Forward outputs and all gradients are compared with ``torch.nn.RNN/GRU/LSTM`` (reverse
  direction through ``bidirectional=True``; lengths through packed sequences), in float32 and
  float64 (skipped when torch is not importable).
"""

from __future__ import annotations

import numpy as np
import pytest

try:  # tests/ as a package, or as a plain directory on sys.path
    from tests import reference as ref
except ImportError:
    import reference as ref

CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}
GRAD_NAMES = ["dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh"]


def make_case(cell, T, B, n_in, H, bias, dtype, seed):
    """Random inputs, parameters and output gradients for one layer."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]

    def rnd(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    case = {
        "x": rnd(T, B, n_in),
        "h0": rnd(B, H, scale=0.5),
        "c0": rnd(B, H, scale=0.5) if cell == "lstm" else None,
        "w_ih": rnd(G * H, n_in, scale=0.6),
        "w_hh": rnd(G * H, H, scale=0.6),
        "b_ih": rnd(G * H, scale=0.3) if bias else None,
        "b_hh": rnd(G * H, scale=0.3) if bias else None,
    }
    grads = {
        "dy": rnd(T, B, H),
        "dh_n": rnd(B, H),
        "dc_n": rnd(B, H) if cell == "lstm" else None,
    }
    return case, grads


def forward(cell, case, lengths, reverse):
    return ref.rnn_layer_forward(
        cell,
        case["x"],
        case["h0"],
        case["c0"],
        case["w_ih"],
        case["w_hh"],
        case["b_ih"],
        case["b_hh"],
        lengths=lengths,
        reverse=reverse,
    )


def backward(cell, case, grads, lengths, reverse):
    return ref.rnn_layer_backward(
        cell,
        case["x"],
        case["h0"],
        case["c0"],
        case["w_ih"],
        case["w_hh"],
        case["b_ih"],
        case["b_hh"],
        grads["dy"],
        grads["dh_n"],
        grads["dc_n"],
        lengths=lengths,
        reverse=reverse,
    )


def loss(cell, case, grads, lengths, reverse):
    y, h_n, c_n = forward(cell, case, lengths, reverse)
    val = np.sum(grads["dy"] * y) + np.sum(grads["dh_n"] * h_n)
    if c_n is not None:
        val += np.sum(grads["dc_n"] * c_n)
    return float(val)


def rel_diff(a, b):
    """max |a - b| / max |b| (absolute when b is zero)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(float(np.max(np.abs(b))), 1.0e-300) if b.size else 1.0
    return float(np.max(np.abs(a - b))) / scale if b.size else 0.0


# ------------------------------------------------------------------------- finite differences


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [4, 2, 1], [3, 1, 2]])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cell", CELLS)
def test_backward_matches_finite_differences(cell, bias, lengths, reverse):
    T, B, n_in, H = 4, 3, 2, 3
    case, grads = make_case(
        cell, T, B, n_in, H, bias, np.float64, seed=10 * CELLS.index(cell) + bias
    )
    lens = None if lengths is None else np.array(lengths)
    got = backward(cell, case, grads, lens, reverse)

    eps = 1.0e-6
    for name in ["x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"]:
        gname = "d" + name
        if case[name] is None:
            assert got[gname] is None, gname
            continue
        arr = case[name]
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            lp = loss(cell, case, grads, lens, reverse)
            arr[idx] = old - eps
            lm = loss(cell, case, grads, lens, reverse)
            arr[idx] = old
            num[idx] = (lp - lm) / (2 * eps)
        assert got[gname].shape == arr.shape, gname
        assert got[gname].dtype == np.float64, gname
        np.testing.assert_allclose(got[gname], num, rtol=1e-6, atol=1e-8, err_msg=gname)
    if lens is not None:
        # padded inputs receive no gradient
        for b in range(B):
            assert np.all(got["dx"][lens[b] :, b] == 0)


# ------------------------------------------------------------------------ lengths semantics


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_lengths_equal_unpadded_rows(cell, reverse):
    T, B, n_in, H = 5, 4, 3, 4
    lengths = np.array([5, 2, 1, 3])
    case, grads = make_case(cell, T, B, n_in, H, True, np.float64, seed=7)
    y, h_n, c_n = forward(cell, case, lengths, reverse)
    g = backward(cell, case, grads, lengths, reverse)
    for b in range(B):
        L = lengths[b]
        sub = dict(case)
        sub["x"] = case["x"][:L, b : b + 1].copy()
        sub["h0"] = case["h0"][b : b + 1]
        sub["c0"] = None if case["c0"] is None else case["c0"][b : b + 1]
        sub_grads = {
            "dy": grads["dy"][:L, b : b + 1],
            "dh_n": grads["dh_n"][b : b + 1],
            "dc_n": None if grads["dc_n"] is None else grads["dc_n"][b : b + 1],
        }
        ys, hs, cs = forward(cell, sub, None, reverse)
        np.testing.assert_allclose(y[:L, b], ys[:, 0], rtol=1e-13, atol=1e-15)
        assert np.all(y[L:, b] == 0)
        np.testing.assert_allclose(h_n[b], hs[0], rtol=1e-13, atol=1e-15)
        if c_n is not None:
            np.testing.assert_allclose(c_n[b], cs[0], rtol=1e-13, atol=1e-15)
        gs = backward(cell, sub, sub_grads, None, reverse)
        np.testing.assert_allclose(g["dx"][:L, b], gs["dx"][:, 0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(g["dh0"][b], gs["dh0"][0], rtol=1e-12, atol=1e-14)
        if c_n is not None:
            np.testing.assert_allclose(g["dc0"][b], gs["dc0"][0], rtol=1e-12, atol=1e-14)

    # padding values and dy at padded positions change nothing
    case2 = dict(case)
    case2["x"] = case["x"].copy()
    grads2 = dict(grads)
    grads2["dy"] = grads["dy"].copy()
    for b in range(B):
        case2["x"][lengths[b] :, b] = 1.0e3
        grads2["dy"][lengths[b] :, b] = -7.0
    y2, h2, c2 = forward(cell, case2, lengths, reverse)
    g2 = backward(cell, case2, grads2, lengths, reverse)
    assert np.array_equal(y, y2) and np.array_equal(h_n, h2)
    if c_n is not None:
        assert np.array_equal(c_n, c2)
    for name in GRAD_NAMES:
        if g[name] is not None:
            assert np.array_equal(g[name], g2[name]), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", CELLS)
def test_dtype_preserved(cell, dtype):
    case, grads = make_case(cell, 3, 2, 2, 3, True, dtype, seed=1)
    y, h_n, c_n = forward(cell, case, None, False)
    assert y.dtype == dtype and h_n.dtype == dtype
    assert (c_n is None) == (cell != "lstm")
    if c_n is not None:
        assert c_n.dtype == dtype
    g = backward(cell, case, grads, np.array([3, 1]), True)
    for name in GRAD_NAMES:
        if g[name] is not None:
            assert g[name].dtype == dtype, name


# ------------------------------------------------------------------------------------- torch


def torch_run(cell, case, grads, lengths, reverse, dtype):
    """Forward and backward through torch; return (y, h_n, c_n, grads dict) as float64 arrays."""
    torch = pytest.importorskip("torch")
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    T, B, n_in = case["x"].shape
    H = case["h0"].shape[1]
    bias = case["b_ih"] is not None
    if cell == "lstm":
        mod = torch.nn.LSTM(n_in, H, bias=bias, bidirectional=reverse)
    elif cell == "gru":
        mod = torch.nn.GRU(n_in, H, bias=bias, bidirectional=reverse)
    else:
        nl = "tanh" if cell == "rnn_tanh" else "relu"
        mod = torch.nn.RNN(n_in, H, nonlinearity=nl, bias=bias, bidirectional=reverse)
    mod = mod.to(tdt)
    sfx = "_reverse" if reverse else ""
    d = 1 if reverse else 0
    ndir = 2 if reverse else 1
    params = {
        "w_ih": getattr(mod, "weight_ih_l0" + sfx),
        "w_hh": getattr(mod, "weight_hh_l0" + sfx),
    }
    if bias:
        params["b_ih"] = getattr(mod, "bias_ih_l0" + sfx)
        params["b_hh"] = getattr(mod, "bias_hh_l0" + sfx)
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(torch.from_numpy(case[k]))

    x = torch.from_numpy(case["x"].copy()).requires_grad_(True)
    h0_all = torch.zeros(ndir, B, H, dtype=tdt)
    h0_all[d] = torch.from_numpy(case["h0"])
    h0_all.requires_grad_(True)
    hx = h0_all
    if cell == "lstm":
        c0_all = torch.zeros(ndir, B, H, dtype=tdt)
        c0_all[d] = torch.from_numpy(case["c0"])
        c0_all.requires_grad_(True)
        hx = (h0_all, c0_all)

    if lengths is None:
        out, hn = mod(x, hx)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x, torch.as_tensor(lengths, dtype=torch.int64), enforce_sorted=False
        )
        out_p, hn = mod(packed, hx)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, total_length=T)
    if cell == "lstm":
        h_n, c_n = hn[0][d], hn[1][d]
    else:
        h_n, c_n = hn[d], None
    y = out[:, :, d * H : (d + 1) * H]
    L = (y * torch.from_numpy(grads["dy"])).sum() + (h_n * torch.from_numpy(grads["dh_n"])).sum()
    if c_n is not None:
        L = L + (c_n * torch.from_numpy(grads["dc_n"])).sum()
    L.backward()

    def np64(t):
        return None if t is None else t.detach().to(torch.float64).numpy()

    tg = {
        "dx": np64(x.grad),
        "dh0": np64(h0_all.grad[d]),
        "dc0": np64(c0_all.grad[d]) if cell == "lstm" else None,
        "dw_ih": np64(params["w_ih"].grad),
        "dw_hh": np64(params["w_hh"].grad),
        "db_ih": np64(params["b_ih"].grad) if bias else None,
        "db_hh": np64(params["b_hh"].grad) if bias else None,
    }
    return np64(y), np64(h_n), np64(c_n), tg


def compare_with_torch(cell, bias, lengths, reverse, dtype):
    """Return {name: relative difference} between the references and torch."""
    T, B, n_in, H = 5, 4, 3, 6
    case, grads = make_case(cell, T, B, n_in, H, bias, dtype, seed=11)
    ty, th, tc, tg = torch_run(cell, case, grads, lengths, reverse, dtype)
    lens = None if lengths is None else np.array(lengths)
    y, h_n, c_n = forward(cell, case, lens, reverse)
    g = backward(cell, case, grads, lens, reverse)
    diffs = {"y": rel_diff(y, ty), "h_n": rel_diff(h_n, th)}
    if cell == "lstm":
        diffs["c_n"] = rel_diff(c_n, tc)
    else:
        assert c_n is None
    for name in GRAD_NAMES:
        if tg[name] is None:
            assert g[name] is None, name
        else:
            diffs[name] = rel_diff(g[name], tg[name])
    return diffs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lengths", [None, [5, 2, 1, 3], [3, 2, 1, 3]])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cell", CELLS)
def test_matches_torch(cell, bias, reverse, lengths, dtype):
    pytest.importorskip("torch")
    tol = 1.0e-10 if dtype == np.float64 else 1.0e-5
    diffs = compare_with_torch(cell, bias, lengths, reverse, dtype)
    bad = {k: v for k, v in diffs.items() if not v <= tol}
    assert not bad, f"relative differences above {tol}: {bad}"


# -------------------------------------------------------------- cell equations, written by hand


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def textbook_step(cell, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step of one cell in float64, written from the torch.nn.RNN/GRU/LSTM documentation.

    ``x`` (I,), ``h`` and ``c`` (H,) for ONE sequence; the stacked weights are split into the
    documented per-gate blocks (GRU: r, z, n; LSTM: i, f, g, o) and every gate is spelt out.
    Returns ``(h_new, c_new)`` (``c_new`` None except for lstm).
    """
    x, h = np.asarray(x, np.float64), np.asarray(h, np.float64)
    w_ih, w_hh = np.asarray(w_ih, np.float64), np.asarray(w_hh, np.float64)
    G = GATES[cell]
    b_ih = np.zeros(w_ih.shape[0]) if b_ih is None else np.asarray(b_ih, np.float64)
    b_hh = np.zeros(w_hh.shape[0]) if b_hh is None else np.asarray(b_hh, np.float64)
    Wi, Wh = np.split(w_ih, G), np.split(w_hh, G)
    bi, bh = np.split(b_ih, G), np.split(b_hh, G)
    if cell == "rnn_tanh":  # h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
        return np.tanh(Wi[0] @ x + bi[0] + Wh[0] @ h + bh[0]), None
    if cell == "rnn_relu":  # h' = relu(W_ih x + b_ih + W_hh h + b_hh)
        return np.maximum(Wi[0] @ x + bi[0] + Wh[0] @ h + bh[0], 0.0), None
    if cell == "gru":
        W_ir, W_iz, W_in = Wi
        W_hr, W_hz, W_hn = Wh
        b_ir, b_iz, b_in = bi
        b_hr, b_hz, b_hn = bh
        r = _sig(W_ir @ x + b_ir + W_hr @ h + b_hr)
        z = _sig(W_iz @ x + b_iz + W_hz @ h + b_hz)
        n = np.tanh(W_in @ x + b_in + r * (W_hn @ h + b_hn))  # reset gate on (W_hn h + b_hn)
        return (1.0 - z) * n + z * h, None
    W_ii, W_if, W_ig, W_io = Wi
    W_hi, W_hf, W_hg, W_ho = Wh
    b_ii, b_if, b_ig, b_io = bi
    b_hi, b_hf, b_hg, b_ho = bh
    i = _sig(W_ii @ x + b_ii + W_hi @ h + b_hi)
    f = _sig(W_if @ x + b_if + W_hf @ h + b_hf)
    g = np.tanh(W_ig @ x + b_ig + W_hg @ h + b_hg)
    o = _sig(W_io @ x + b_io + W_ho @ h + b_ho)
    c_new = f * np.asarray(c, np.float64) + i * g
    return o * np.tanh(c_new), c_new


def textbook_layer(cell, case, reverse=False):
    """:func:`textbook_step` over every time step and row of ``case``: ``(y, h_n, c_n)``."""
    x = case["x"]
    T, B, _ = x.shape
    H = case["h0"].shape[1]
    y = np.zeros((T, B, H))
    h_n, c_n = np.zeros((B, H)), np.zeros((B, H))
    for b in range(B):
        h = case["h0"][b]
        c = None if case["c0"] is None else case["c0"][b]
        for t in (range(T - 1, -1, -1) if reverse else range(T)):
            h, c = textbook_step(cell, x[t, b], h, c, case["w_ih"], case["w_hh"], case["b_ih"],
                                 case["b_hh"])
            y[t, b] = h
        h_n[b] = h
        if c is not None:
            c_n[b] = c
    return y, h_n, (c_n if cell == "lstm" else None)


def test_textbook_step_pins_gate_order_and_the_gru_reset_gate():
    """The hand-written step is itself discriminating: permuting the gate blocks, or applying
    the GRU reset gate to ``W_hn h`` only (not to ``b_hn``), changes the result."""
    for cell in ("gru", "lstm"):
        case, _ = make_case(cell, 1, 1, 3, 4, True, np.float64, seed=5)
        args = [case[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
        c0 = None if case["c0"] is None else case["c0"][0]
        h, _ = textbook_step(cell, case["x"][0, 0], case["h0"][0], c0, *args)
        G = GATES[cell]
        for perm in ([1, 0, *range(2, G)], [*range(G - 2), G - 1, G - 2]):
            swapped = [np.concatenate([np.split(a, G)[k] for k in perm]) for a in args]
            h2, _ = textbook_step(cell, case["x"][0, 0], case["h0"][0], c0, *swapped)
            assert np.max(np.abs(h2 - h)) > 1e-3, (cell, perm)
    # GRU: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), not ... + r * W_hn h + b_hn
    case, _ = make_case("gru", 1, 1, 3, 4, True, np.float64, seed=5)
    H = 4
    b_hh = case["b_hh"]
    b_ih_moved = case["b_ih"].copy()
    b_ih_moved[2 * H :] += b_hh[2 * H :]
    b_hh_moved = b_hh.copy()
    b_hh_moved[2 * H :] = 0
    a = textbook_step("gru", case["x"][0, 0], case["h0"][0], None, case["w_ih"], case["w_hh"],
                      case["b_ih"], b_hh)[0]
    b = textbook_step("gru", case["x"][0, 0], case["h0"][0], None, case["w_ih"], case["w_hh"],
                      b_ih_moved, b_hh_moved)[0]
    assert np.max(np.abs(a - b)) > 1e-3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T,B", [(1, 1), (3, 2)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cell", CELLS)
def test_reference_equals_the_textbook_equations(cell, bias, T, B, dtype):
    """``rnn_layer_forward`` against the documented cell equations (no torch needed)."""
    case, _ = make_case(cell, T, B, 3, 4, bias, dtype, seed=20 + CELLS.index(cell))
    tol = 1e-14 if dtype == np.float64 else 2e-6
    for reverse in (False, True):
        y, h_n, c_n = forward(cell, case, None, reverse)
        wy, wh, wc = textbook_layer(cell, case, reverse)
        if cell == "rnn_relu":
            assert np.any(wy == 0) and np.any(wy > 0)  # both sides of the kink are exercised
        assert rel_diff(y, wy) <= tol and rel_diff(h_n, wh) <= tol
        if cell == "lstm":
            assert rel_diff(c_n, wc) <= tol
