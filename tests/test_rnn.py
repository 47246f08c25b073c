"""nesy.rnn: kernels against the NumPy references (tests/reference.py), modules against
PyTorch when importable, finite differences through stacked layers, variable lengths, bad input.

Mirrors python/nesy/rnn/ and rust/core/src/rnn/.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_reference_rnn import textbook_layer

import nesy
from nesy import _core
from nesy.rnn import GRU, LSTM, RNN

import reference as ref

CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def _layer(cell, dtype, T=5, B=4, I=3, H=6, bias=True, seed=0):  # noqa: E741
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    a = lambda *s: (rng.standard_normal(s) * 0.5).astype(dtype)  # noqa: E731
    return dict(
        x=a(T, B, I), h0=a(B, H), c0=a(B, H) if cell == "lstm" else None,
        w_ih=a(G * H, I), w_hh=a(G * H, H),
        b_ih=a(G * H) if bias else None, b_hh=a(G * H) if bias else None,
    ), dict(dy=a(T, B, H), dh_n=a(B, H), dc_n=a(B, H) if cell == "lstm" else None)


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)) if b.size else 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lengths", [None, [5, 2, 1, 3]])
@pytest.mark.parametrize("reverse", [False, True])
def test_kernels_match_numpy_reference(cell, dtype, bias, lengths, reverse):
    inp, up = _layer(cell, dtype, bias=bias)
    lens = None if lengths is None else np.array(lengths, np.int64)
    args = [inp[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
    y, hn, cn, ws = _core.rnn_forward(cell, *args, lengths=lens, reverse=reverse)
    ry, rhn, rcn = ref.rnn_layer_forward(cell, *args, lengths=lens, reverse=reverse)
    assert y.dtype == dtype and hn.dtype == dtype
    assert _rel(y, ry) <= TOL[dtype] and _rel(hn, rhn) <= TOL[dtype]
    if cell == "lstm":
        assert _rel(cn, rcn) <= TOL[dtype]
    else:
        assert cn is None
    grads = [np.zeros_like(inp["w_ih"]), np.zeros_like(inp["w_hh"]),
             None if not bias else np.zeros_like(inp["b_ih"]),
             None if not bias else np.zeros_like(inp["b_hh"])]
    dx, dh0, dc0 = _core.rnn_backward(cell, *args, ws, up["dy"], up["dh_n"], up["dc_n"], *grads,
                                      lengths=lens, reverse=reverse)
    want = ref.rnn_layer_backward(cell, *args, up["dy"], up["dh_n"], up["dc_n"], lengths=lens,
                                  reverse=reverse)
    tol = 10 * TOL[dtype]
    assert _rel(dx, want["dx"]) <= tol and _rel(dh0, want["dh0"]) <= tol
    assert _rel(grads[0], want["dw_ih"]) <= tol and _rel(grads[1], want["dw_hh"]) <= tol
    if bias:
        assert _rel(grads[2], want["db_ih"]) <= tol and _rel(grads[3], want["db_hh"]) <= tol
    if cell == "lstm":
        assert _rel(dc0, want["dc0"]) <= tol
    # Inference mode keeps no workspace and gives the same outputs.
    y2, hn2, cn2, ws2 = _core.rnn_forward(cell, *args, lengths=lens, reverse=reverse,
                                          training=False)
    assert ws2 is None and np.array_equal(y, y2) and np.array_equal(hn, hn2)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("T", [1, 2])
@pytest.mark.parametrize("H", [6, 128])
def test_one_sequence_of_one_or_two_steps_matches_the_reference(cell, T, H):
    # One row and one or two steps: the per-step products skip the packed float32 kernel
    # (rust/core/src/rnn/mod.rs, product_level) for the general GEMM. Forward and backward
    # against the reference; inference equals training; the first steps of a longer sequence
    # (the packed kernel) agree to float32 rounding.
    inp, up = _layer(cell, np.float32, T=T + 3, B=1, I=5, H=H, seed=4)
    for k in ("w_ih", "w_hh"):
        inp[k] = (inp[k] / np.float32(np.sqrt(H))).astype(np.float32)
    long_x = inp["x"]
    inp["x"] = np.ascontiguousarray(long_x[:T])
    up = {k: None if v is None else (np.ascontiguousarray(v[:T]) if k == "dy" else v)
          for k, v in up.items()}
    args = [inp[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
    y, hn, cn, ws = _core.rnn_forward(cell, *args)
    ry, rhn, rcn = ref.rnn_layer_forward(cell, *args)
    assert _rel(y, ry) <= TOL[np.float32] and _rel(hn, rhn) <= TOL[np.float32]
    if cell == "lstm":
        assert _rel(cn, rcn) <= TOL[np.float32]
    grads = [np.zeros_like(inp[k]) for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
    dx, dh0, dc0 = _core.rnn_backward(cell, *args, ws, up["dy"], up["dh_n"], up["dc_n"], *grads)
    want = ref.rnn_layer_backward(cell, *args, up["dy"], up["dh_n"], up["dc_n"])
    tol = 10 * TOL[np.float32]
    assert _rel(dx, want["dx"]) <= tol and _rel(dh0, want["dh0"]) <= tol
    for g, k in zip(grads, ("dw_ih", "dw_hh", "db_ih", "db_hh")):
        assert _rel(g, want[k]) <= tol, k
    if cell == "lstm":
        assert _rel(dc0, want["dc0"]) <= tol
    y2, hn2, _, _ = _core.rnn_forward(cell, *args, training=False)
    assert np.array_equal(y, y2) and np.array_equal(hn, hn2)
    long_y = _core.rnn_forward(cell, long_x, *args[1:], training=False)[0]
    np.testing.assert_allclose(long_y[:T], y, rtol=0, atol=1e-6)


def test_two_steps_with_weights_worth_splitting_give_the_same_bits_on_one_and_two_threads():
    # B = 1, T = 2 and 8 MiB of float32 weights (16 MiB streamed): two threads split the hidden
    # units with the packed kernel; one thread must not take the general GEMM that one- and
    # two-step calls otherwise use (their sums run in another order).
    inp, up = _layer("lstm", np.float32, T=2, B=1, I=512, H=512, seed=5)
    for k in ("w_ih", "w_hh"):
        inp[k] = (inp[k] / np.float32(16)).astype(np.float32)
    args = [inp[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
    before = nesy.get_num_threads()
    outs = {}
    try:
        for n in (2, 1):
            nesy.set_num_threads(n)
            y, hn, cn, ws = _core.rnn_forward("lstm", *args)
            y2 = _core.rnn_forward("lstm", *args, training=False)[0]
            g = [np.zeros_like(inp[k]) for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
            dx, dh0, dc0 = _core.rnn_backward("lstm", *args, ws, up["dy"], up["dh_n"],
                                              up["dc_n"], *g)
            outs[n] = [y, y2, hn, cn, ws, dx, dh0, dc0, *g]
    finally:
        nesy.set_num_threads(before)
    for a, b in zip(outs[2], outs[1]):
        assert np.array_equal(a, b)


def test_weight_gradients_accumulate():
    inp, up = _layer("gru", np.float64)
    args = [inp[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
    _, _, _, ws = _core.rnn_forward("gru", *args)
    g1 = [np.zeros_like(inp[k]) for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
    _core.rnn_backward("gru", *args, ws, up["dy"], up["dh_n"], None, *g1)
    g2 = [g.copy() for g in g1]
    _core.rnn_backward("gru", *args, ws, up["dy"], up["dh_n"], None, *g2)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(b, 2 * a, rtol=1e-13)


def test_results_do_not_depend_on_thread_count():
    inp, up = _layer("lstm", np.float32, T=30, B=64, I=32, H=64)
    args = [inp[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
    before = nesy.get_num_threads()
    outs = []
    try:
        for n in (1, 2):
            nesy.set_num_threads(n)
            y, hn, cn, ws = _core.rnn_forward("lstm", *args)
            g = [np.zeros_like(inp[k]) for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
            dx, dh0, dc0 = _core.rnn_backward("lstm", *args, ws, up["dy"], up["dh_n"],
                                              up["dc_n"], *g)
            outs.append([y, hn, cn, dx, dh0, dc0, *g])
    finally:
        nesy.set_num_threads(before)
    for a, b in zip(*outs):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("cell,I,H", [("lstm", 32, 256), ("rnn_tanh", 8, 520),  # noqa: E741
                                      ("gru", 32, 330), ("gru", 32, 128)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
def test_small_batch_on_two_threads_gives_the_same_bits(cell, I, H, bias, reverse):  # noqa: E741
    # Weights of >= 128 KiB, at most 8 rows and >= 16 MiB of weights streamed over the steps:
    # the forward pass with two threads splits the hidden units between them
    # (rust/core/src/rnn/split.rs; 520 units cut 256 + 264, 330 as 160 + 170, 128 as 64 + 64;
    # the GRU at (32, 128) has 240 KiB, just above the threshold, and needs 69 steps; on AVX2
    # a split step needs 768 KiB of work, which the GRU at (32, 128) and 3 rows misses).
    # Outputs, workspace and the gradients computed from it must equal one thread's, and the
    # outputs the reference.
    inp, up = _layer(cell, np.float32, T=72, B=3, I=I, H=H, bias=bias, seed=3)
    for k in ("w_ih", "w_hh"):  # torch's init scale: not saturated, not chaotic
        inp[k] = (inp[k] * np.float32(2 / np.sqrt(H))).astype(np.float32)
    args = [inp[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
    lens = np.array([72, 40, 1], np.int64)
    before = nesy.get_num_threads()
    outs = {}
    try:
        for n in (2, 1):
            nesy.set_num_threads(n)
            y, hn, cn, _ = _core.rnn_forward(cell, *args, lengths=lens, reverse=reverse,
                                             training=False)
            ty, thn, tcn, ws = _core.rnn_forward(cell, *args, lengths=lens, reverse=reverse,
                                                 training=True)
            g = [None if a is None else np.zeros_like(a) for a in args[3:]]
            dx, dh0, dc0 = _core.rnn_backward(cell, *args, ws, up["dy"], up["dh_n"], up["dc_n"],
                                              *g, lengths=lens, reverse=reverse)
            outs[n] = [y, hn, ty, thn, ws, dx, dh0] + [a for a in (cn, tcn, dc0, *g)
                                                       if a is not None]
    finally:
        nesy.set_num_threads(before)
    for a, b in zip(outs[2], outs[1]):
        assert np.array_equal(a, b)
    y, hn, ty = outs[2][:3]
    assert np.array_equal(y, ty)  # inference and training give the same outputs
    ry, rhn, rcn = ref.rnn_layer_forward(cell, *args, lengths=lens, reverse=reverse)
    assert _rel(y, ry) <= 5 * TOL[np.float32] and _rel(hn, rhn) <= 5 * TOL[np.float32]
    assert np.all(y[40:, 1] == 0) and np.all(y[1:, 2] == 0)  # padding
    if cell == "lstm":
        assert _rel(outs[2][7], rcn) <= 5 * TOL[np.float32]


# ------------------------------------------------------------------------------ modules
MODULES = [(RNN, {}), (RNN, {"nonlinearity": "relu"}), (GRU, {}), (LSTM, {})]


def _loss_and_grads(m, x, lengths=None, seed=1):
    """A fixed random linear loss of output and final states; returns (loss, dx, grads)."""
    out, hn = m(x, lengths=lengths)
    rng = np.random.default_rng(seed)
    go = rng.standard_normal(out.shape)
    if isinstance(hn, tuple):
        gh = tuple(rng.standard_normal(h.shape) for h in hn)
        loss = np.sum(go * out) + sum(np.sum(g * h) for g, h in zip(gh, hn))
    else:
        gh = rng.standard_normal(hn.shape)
        loss = np.sum(go * out) + np.sum(gh * hn)
    m.zero_grad()
    dx = m.backward(go.astype(m.dtype), gh if not isinstance(gh, tuple) else
                    tuple(g.astype(m.dtype) for g in gh))
    return float(loss), dx, [g.copy() for g in m.gradients()]


@pytest.mark.parametrize("cls,kw", MODULES, ids=["rnn", "rnn_relu", "gru", "lstm"])
def test_stacked_bidirectional_module_matches_finite_differences(cls, kw):
    m = cls(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=0, **kw)
    x = np.random.default_rng(2).standard_normal((5, 3, 3))
    lengths = np.array([5, 3, 1])
    _, dx, grads = _loss_and_grads(m, x, lengths)
    eps = 1e-6

    def num(arr, idx):
        old = arr[idx]
        arr[idx] = old + eps
        up = _loss_and_grads(m, x, lengths)[0]
        arr[idx] = old - eps
        down = _loss_and_grads(m, x, lengths)[0]
        arr[idx] = old
        return (up - down) / (2 * eps)

    rng = np.random.default_rng(3)
    for _ in range(12):
        idx = tuple(rng.integers(0, s) for s in x.shape)
        assert dx[idx] == pytest.approx(num(x, idx), rel=1e-5, abs=1e-7)
    for p, g in zip(m.parameters(), grads):
        for _ in range(3):
            idx = tuple(rng.integers(0, s) for s in p.shape)
            assert g[idx] == pytest.approx(num(p, idx), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("cls,kw", MODULES, ids=["rnn", "rnn_relu", "gru", "lstm"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_module_matches_torch(cls, kw, batch_first, with_lengths):
    torch = pytest.importorskip("torch")
    tcls = getattr(torch.nn, cls.__name__)
    m = cls(4, 5, num_layers=2, bidirectional=True, batch_first=batch_first, rng=0, **kw)
    t = tcls(4, 5, num_layers=2, bidirectional=True, batch_first=batch_first, **kw)
    t.load_state_dict({k: torch.tensor(v) for k, v in m.state_dict().items()})
    T, B = 6, 3
    x = np.random.default_rng(4).standard_normal((B, T, 4) if batch_first else (T, B, 4))
    x = x.astype(np.float32)
    lengths = np.array([6, 2, 4]) if with_lengths else None
    out, hn = m(x, lengths=lengths)
    xt = torch.tensor(x, requires_grad=True)
    if with_lengths:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
        tout, thn = t(packed)
        tout, _ = torch.nn.utils.rnn.pad_packed_sequence(tout, batch_first=batch_first,
                                                         total_length=T)
    else:
        tout, thn = t(xt)
    assert _rel(out, tout.detach().numpy()) <= 1e-5
    hs = hn if isinstance(hn, tuple) else (hn,)
    ths = thn if isinstance(thn, tuple) else (thn,)
    for a, b in zip(hs, ths):
        assert _rel(a, b.detach().numpy()) <= 1e-5
    rng = np.random.default_rng(5)
    go = rng.standard_normal(out.shape).astype(np.float32)
    gh = [rng.standard_normal(h.shape).astype(np.float32) for h in hs]
    m.zero_grad()
    dx = m.backward(go, tuple(gh) if len(gh) == 2 else gh[0])
    loss = (tout * torch.tensor(go)).sum() + sum((h * torch.tensor(g)).sum()
                                                for h, g in zip(ths, gh))
    loss.backward()
    assert _rel(dx, xt.grad.numpy()) <= 1e-5
    for name, g in m.named_gradients():
        assert _rel(g, dict(t.named_parameters())[name].grad.numpy()) <= 1e-5, name


def test_unbatched_input_and_eval_mode():
    m = LSTM(3, 4, rng=0)
    x = np.random.default_rng(0).standard_normal((7, 3)).astype(np.float32)
    out, (h, c) = m(x)
    assert out.shape == (7, 4) and h.shape == (1, 4) and c.shape == (1, 4)
    batched, (hb, cb) = m(x[:, None, :])
    assert np.array_equal(out, batched[:, 0]) and np.array_equal(h, hb[:, 0])
    m.eval()
    out2, _ = m(x)
    assert np.array_equal(out, out2)
    with pytest.raises(RuntimeError, match="train"):
        m.backward(np.ones_like(out))


def test_padding_never_influences_outputs_states_or_gradients():
    m = GRU(2, 3, bidirectional=True, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 2))
    lengths = np.array([5, 2])
    out, hn = m(x, lengths=lengths)
    _, dx, grads = _loss_and_grads(m, x, lengths)
    x2 = x.copy()
    x2[2:, 1] = 1e6  # garbage in the padding of sequence 1
    out2, hn2 = m(x2, lengths=lengths)
    _, dx2, grads2 = _loss_and_grads(m, x2, lengths)
    assert np.array_equal(out, out2) and np.array_equal(hn, hn2)
    assert np.all(out[2:, 1] == 0) and np.all(dx2[2:, 1] == 0)
    for a, b in zip(grads, grads2):
        assert np.array_equal(a, b)
    # The sequence alone, unpadded, gives the same outputs and final states.
    alone, hn_alone = m(x[:2, 1:2])
    np.testing.assert_allclose(alone[:, 0], out[:2, 1], rtol=1e-12)
    np.testing.assert_allclose(hn_alone[:, 0], hn[:, 1], rtol=1e-12)


def test_dropout_between_layers_is_seeded_and_off_in_eval():
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    a = GRU(3, 5, num_layers=3, dropout=0.5, rng=7)
    b = GRU(3, 5, num_layers=3, dropout=0.5, rng=7)
    ya, _ = a(x)
    yb, _ = b(x)
    assert np.array_equal(ya, yb)
    a.eval()
    plain = GRU(3, 5, num_layers=3, rng=7)
    plain.load_state_dict(a.state_dict())
    assert np.array_equal(a(x)[0], plain(x)[0])


def test_load_state_dict_checks_names_and_shapes():
    m = LSTM(3, 4, num_layers=2)
    sd = m.state_dict()
    sd["weight_hh_l1"] = np.zeros((16, 5), np.float32)
    with pytest.raises(ValueError, match="weight_hh_l1"):
        m.load_state_dict(sd)
    names = [n for n, _ in m.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]


@pytest.mark.parametrize("bad,exc,needle", [
    (dict(x=np.zeros((2, 3, 4, 1))), ValueError, "x"),
    (dict(x=np.zeros((5, 2, 4))), ValueError, "features"),
    (dict(h0=np.zeros((1, 2, 4))), ValueError, "h0"),
    (dict(lengths=np.array([6, 1])), ValueError, "lengths"),
    (dict(lengths=np.array([0, 1])), ValueError, "lengths"),
    (dict(lengths=np.array([-1, 1])), ValueError, "lengths"),
    (dict(lengths=np.array([1, 2, 3])), ValueError, "lengths"),
    # checked before the cast to int64: the value given, not a wrapped negative one
    (dict(lengths=np.array([5, 2**63], np.uint64)), ValueError,
     r"lengths\[1\]: .* got 9223372036854775808"),
    (dict(x=np.full((5, 2, 3), np.nan)), ValueError, "NaN"),
    (dict(x=np.zeros((5, 2, 3), np.int32)), TypeError, "x"),
    (dict(x=np.zeros((0, 2, 3))), ValueError, "x"),
])
def test_bad_input_names_the_argument(bad, exc, needle):
    m = GRU(3, 5)
    args = dict(x=np.zeros((5, 2, 3), np.float32), h0=None, lengths=None)
    args.update(bad)
    with pytest.raises(exc, match=needle):
        m(args["x"], args["h0"], lengths=args["lengths"])


@pytest.mark.parametrize("batch_first,x", [(True, np.zeros((2, 5, 4))), (False, np.zeros((5, 4))),
                                           (True, np.zeros((2, 0, 3)))])
def test_shape_errors_show_the_shape_given(batch_first, x):
    """Messages report x as passed, not the time-major view made of it."""
    with pytest.raises(ValueError, match=rf"^x: .*got shape \({x.shape[0]}, {x.shape[1]}"):
        GRU(3, 4, batch_first=batch_first)(x.astype(np.float32))


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_unbatched_states_of_the_wrong_shape_name_the_argument(cls):
    """A 1-D initial state or state gradient for unbatched input used to fail with NumPy's
    'too many indices'."""
    m = cls(3, 5, num_layers=2)
    x = np.zeros((4, 3), np.float32)
    good, flat = np.zeros((2, 5), np.float32), np.zeros(5, np.float32)
    lstm = cls is LSTM
    for name, h0 in [("h0", (flat, good) if lstm else flat), ("c0", (good, flat))][:1 + lstm]:
        with pytest.raises(ValueError, match=rf"^{name}: expected shape \(2, 5\)"):
            m(x, h0)
    out, _ = m(x, (good, good) if lstm else good)
    for name, g in ([("grad_hn[0]", (flat, good)), ("grad_hn[1]", (good, flat))] if lstm
                    else [("grad_hn", flat)]):
        with pytest.raises(ValueError, match=rf"^{re.escape(name)}: expected shape \(2, 5\)"):
            m.backward(np.zeros_like(out), g)


@pytest.mark.parametrize("dropout,exc", [("a", TypeError), (None, TypeError),
                                         (float("nan"), ValueError), (1.0, ValueError)])
def test_bad_dropout_names_the_argument(dropout, exc):
    with pytest.raises(exc, match="^dropout: "):
        RNN(3, 5, num_layers=2, dropout=dropout)


def test_lstm_state_must_be_a_pair_and_kernel_checks_shapes():
    m = LSTM(3, 5)
    with pytest.raises(ValueError, match="pair"):
        m(np.zeros((4, 2, 3), np.float32), np.zeros((1, 2, 5), np.float32))
    inp, _ = _layer("gru", np.float32)
    args = [inp[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
    args[4] = args[4][:, :-1].copy()
    with pytest.raises(ValueError, match="w_"):
        _core.rnn_forward("gru", *args)
    args = [inp[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
    with pytest.raises(TypeError, match="h0"):
        _core.rnn_forward("gru", args[0], args[1].astype(np.float64), *args[2:])
    with pytest.raises(ValueError, match="cell"):
        _core.rnn_forward("elman", *args)



@pytest.mark.parametrize("batch_first,unbatched", [(False, False), (True, False), (False, True)])
def test_a_wrong_grad_out_is_named_with_the_outputs_shape(batch_first, unbatched):
    m = GRU(3, 5, num_layers=2, bidirectional=True, batch_first=batch_first, rng=0)
    shape = (4, 3) if unbatched else (2, 4, 3) if batch_first else (4, 2, 3)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    m.zero_grad()
    out, _ = m(x)
    m.backward(np.ones_like(out))  # gradients that a partial accumulation would change
    out, _ = m(x)
    before = [g.copy() for g in m.gradients()]
    assert all(np.any(g != 0) for g in before)
    with pytest.raises(ValueError, match=re.escape(f"shape {out.shape}")):
        m.backward(np.zeros(out.shape[::-1], np.float32))
    with pytest.raises(ValueError, match="grad_hn"):
        m.backward(np.ones_like(out), np.ones((3, 1, 5) if unbatched else (3, 2, 5), np.float32))
    for a, b in zip(m.gradients(), before):
        assert np.array_equal(a, b)
    assert m.backward(np.ones_like(out)).shape == x.shape
    assert any(not np.array_equal(a, b) for a, b in zip(m.gradients(), before))



# -------------------------------------------------------------- rnn_backward: bad input
def _backward_args(cell, dtype):
    """Valid arguments of ``_core.rnn_backward`` for a small layer, as a dict; the gradient
    buffers hold random values (accumulation into them is in place)."""
    inp, up = _layer(cell, dtype)
    lens = np.array([5, 2, 1, 3], np.int64)
    args = [inp[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
    _, _, _, ws = _core.rnn_forward(cell, *args, lengths=lens)
    rng = np.random.default_rng(9)
    grads = {f"d{k}": rng.standard_normal(inp[k].shape).astype(dtype)
             for k in ("w_ih", "w_hh", "b_ih", "b_hh")}
    return dict(inp, workspace=ws, dy=up["dy"], dh_n=up["dh_n"], dc_n=up["dc_n"], **grads,
                lengths=lens)


def _other(dtype):
    return np.float64 if dtype == np.float32 else np.float32


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


# (name, change to the valid arguments, exception, the argument the message must name)
BACKWARD_BAD = [
    ("dy-shape", lambda a: {"dy": a["dy"][:, :, :-1].copy()}, ValueError, "dy"),
    ("dy-dtype", lambda a: {"dy": a["dy"].astype(_other(a["dy"].dtype))}, TypeError, "dy"),
    ("dh_n-shape", lambda a: {"dh_n": a["dh_n"][:-1].copy()}, ValueError, "dh_n"),
    ("workspace-truncated", lambda a: {"workspace": a["workspace"][:-1].copy()}, ValueError,
     "workspace"),
    ("workspace-dtype", lambda a: {"workspace": a["workspace"].astype(
        _other(a["workspace"].dtype))}, TypeError, "workspace"),
    ("db_hh-dtype", lambda a: {"db_hh": a["db_hh"].astype(_other(a["db_hh"].dtype))}, TypeError,
     "db_hh"),
    ("db_hh-size", lambda a: {"db_hh": np.append(a["db_hh"], a["db_hh"][:1])}, ValueError,
     r"db_hh: shape \(\d+,\) differs from b_hh's"),
    ("db_hh-missing", lambda a: {"db_hh": None}, ValueError, r"db_hh: required"),
    ("dw_ih-shape", lambda a: {"dw_ih": a["dw_ih"][:, :-1].copy()}, ValueError, "dw_ih"),
    ("dw_ih-strided", lambda a: {"dw_ih": np.asfortranarray(a["dw_ih"])}, ValueError, "dw_ih"),
    ("dw_hh-read-only", lambda a: {"dw_hh": _readonly(a["dw_hh"])}, ValueError, "dw_hh"),
    ("lengths-range", lambda a: {"lengths": np.array([5, 2, 0, 3])}, ValueError, "lengths"),
]
BACKWARD_BAD_CASES = [pytest.param(cell, *case, id=f"{cell}-{case[0]}")
                      for cell in ("gru", "lstm") for case in BACKWARD_BAD]
BACKWARD_BAD_CASES += [
    pytest.param("lstm", "dc_n-transposed", lambda a: {"dc_n": a["dc_n"].T.copy()}, ValueError,
                 "dc_n", id="lstm-dc_n-transposed"),
    pytest.param("gru", "dc_n-given", lambda a: {"dc_n": a["dh_n"].copy()}, ValueError, "dc_n",
                 id="gru-dc_n-given"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell,case,change,exc,needle", BACKWARD_BAD_CASES)
def test_rnn_backward_bad_input_names_the_argument_and_changes_no_buffer(
        cell, case, change, exc, needle, dtype):
    a = _backward_args(cell, dtype)
    a.update(change(a))
    names = ("dw_ih", "dw_hh", "db_ih", "db_hh")
    before = {k: None if a[k] is None else a[k].copy() for k in names}
    with pytest.raises(exc) as info:
        _core.rnn_backward(cell, *[a[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih",
                                                  "b_hh", "workspace", "dy", "dh_n", "dc_n")],
                           *[a[k] for k in names], lengths=a["lengths"])
    assert re.search(rf"\b{needle}\b", str(info.value)), str(info.value)
    for k in names:
        assert (a[k] is None) == (before[k] is None) and (a[k] is None or np.array_equal(
            a[k], before[k])), k


def test_rnn_backward_valid_arguments_of_the_bad_input_test_are_accepted():
    """The arguments the bad-input cases start from are valid (so each case fails for the one
    change it makes) and the buffers accumulate the reference gradients."""
    for cell in ("gru", "lstm"):
        a = _backward_args(cell, np.float64)
        names = ("dw_ih", "dw_hh", "db_ih", "db_hh")
        before = {k: a[k].copy() for k in names}
        keys = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")
        _core.rnn_backward(cell, *[a[k] for k in keys], a["workspace"], a["dy"], a["dh_n"],
                           a["dc_n"], *[a[k] for k in names], lengths=a["lengths"])
        want = ref.rnn_layer_backward(cell, *[a[k] for k in keys], a["dy"], a["dh_n"], a["dc_n"],
                                      lengths=a["lengths"])
        for k in names:
            assert _rel(a[k] - before[k], want[k]) <= 1e-11, k


# -------------------------------------------------------------- modules vs textbook equations
def _cell_of(cls, kw):
    return {RNN: f"rnn_{kw.get('nonlinearity', 'tanh')}", GRU: "gru", LSTM: "lstm"}[cls]


def _module_params(case):
    """One layer's arrays under torch's parameter names (layer 0, forward direction)."""
    out = {"weight_ih_l0": case["w_ih"], "weight_hh_l0": case["w_hh"]}
    if case["b_ih"] is not None:
        out.update({"bias_ih_l0": case["b_ih"], "bias_hh_l0": case["b_hh"]})
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T,B", [(1, 1), (3, 2)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cls,kw", MODULES, ids=["rnn", "rnn_relu", "gru", "lstm"])
def test_module_equals_the_textbook_equations(cls, kw, bias, T, B, dtype):
    """Single-layer modules against the documented cell equations, written out by hand in
    ``test_reference_rnn.textbook_step`` (no torch, no ``reference.py``)."""
    m = cls(3, 4, bias=bias, dtype=dtype, rng=0, **kw)
    cell = _cell_of(cls, kw)
    case, _ = _layer(cell, dtype, T=T, B=B, I=3, H=4, bias=bias, seed=30 + T)
    m.load_state_dict(_module_params(case))
    h0 = case["h0"][None]
    out, hn = m(case["x"], (h0, case["c0"][None]) if cell == "lstm" else h0)
    wy, wh, wc = textbook_layer(cell, case)
    tol = TOL[dtype]
    assert out.dtype == dtype and _rel(out, wy) <= tol
    if cell == "lstm":
        assert _rel(hn[0][0], wh) <= tol and _rel(hn[1][0], wc) <= tol
    else:
        assert _rel(hn[0], wh) <= tol


@pytest.mark.parametrize("lengths", [None, [5, 2, 4]])
@pytest.mark.parametrize("cls,kw", MODULES, ids=["rnn", "rnn_relu", "gru", "lstm"])
def test_stacked_bidirectional_module_is_the_composition_of_reference_layers(cls, kw, lengths):
    """Layer 2 reads concat[forward, backward] of layer 1; the output is concat[forward,
    backward] of the last layer; h_n (and c_n) are ordered l0 forward, l0 backward, l1 forward,
    l1 backward."""
    T, B, I, H = 5, 3, 2, 4  # noqa: E741
    m = cls(I, H, num_layers=2, bidirectional=True, dtype=np.float64, rng=0, **kw)
    cell = _cell_of(cls, kw)
    lstm = cell == "lstm"
    rng = np.random.default_rng(7)
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((4, B, H))
    c0 = rng.standard_normal((4, B, H)) if lstm else None
    lens = None if lengths is None else np.array(lengths)
    out, hn = m(x, (h0, c0) if lstm else h0, lengths=lens)
    sd = m.state_dict()
    inp, want_h, want_c = x, [], []
    for layer in range(2):
        ys = []
        for d, sfx in enumerate(["", "_reverse"]):
            k = 2 * layer + d
            w = [sd[f"{n}_l{layer}{sfx}"] for n in ("weight_ih", "weight_hh", "bias_ih",
                                                    "bias_hh")]
            y, h, c = ref.rnn_layer_forward(cell, inp, h0[k], None if c0 is None else c0[k], *w,
                                            lengths=lens, reverse=d == 1)
            ys.append(y)
            want_h.append(h)
            want_c.append(c)
        inp = np.concatenate(ys, axis=2)
    assert out.shape == (T, B, 2 * H)
    np.testing.assert_allclose(out, inp, rtol=1e-12, atol=1e-14)
    hs = hn if lstm else (hn,)
    np.testing.assert_allclose(hs[0], np.stack(want_h), rtol=1e-12, atol=1e-14)
    if lstm:
        np.testing.assert_allclose(hs[1], np.stack(want_c), rtol=1e-12, atol=1e-14)
    # the four final states differ, so a different order would be caught
    assert min(np.max(np.abs(want_h[i] - want_h[j])) for i in range(4) for j in range(i)) > 1e-3

# ------------------------------------------------------------------------------ estimators
def _toy(n=200, T=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, 2)).astype(np.float32)
    return X, X[:, :, 0].sum(1) + 0.5 * X[:, -1, 1]


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_sequence_regressor_learns_and_follows_sklearn_conventions(cell):
    from sklearn.base import clone

    from nesy.rnn import SequenceRegressor

    X, y = _toy()
    est = SequenceRegressor(cell=cell, epochs=40, random_state=0)
    assert clone(est).get_params() == est.get_params()
    assert est.fit(X[:150], y[:150]) is est
    assert est.predict(X[150:]).shape == (50,)
    assert est.score(X[150:], y[150:]) > 0.9
    again = SequenceRegressor(cell=cell, epochs=40, random_state=0).fit(X[:150], y[:150])
    assert np.array_equal(est.predict(X[150:]), again.predict(X[150:]))  # seeded
    assert est.n_features_in_ == 2 and len(est.history_.history["loss"]) >= 1


def test_sequence_regressor_many_to_many_multi_target_and_bidirectional():
    from nesy.rnn import SequenceRegressor

    X, _ = _toy()
    Y = np.cumsum(X, axis=1)  # (n, T, 2): a target per step and feature
    est = SequenceRegressor(output="sequence", epochs=30, random_state=0).fit(X[:150], Y[:150])
    pred = est.predict(X[150:])
    assert pred.shape == (50, 10, 2)
    resid = np.sum((pred - Y[150:]) ** 2) / np.sum((Y[150:] - Y[150:].mean((0, 1))) ** 2)
    assert resid < 0.1  # R^2 > 0.9 over all steps and targets
    y2 = np.c_[X[:, :, 0].sum(1), X[:, :, 1].max(1)]
    est = SequenceRegressor(bidirectional=True, num_layers=2, epochs=30, random_state=0)
    assert est.fit(X[:150], y2[:150]).predict(X[150:]).shape == (50, 2)
    uni = SequenceRegressor(epochs=5, random_state=0).fit(X[:, :, 0], y2[:, 0])  # (n, T) input
    assert uni.predict(X[:3, :, 0]).shape == (3,)


def test_sequence_classifier_probabilities_and_labels():
    from nesy.rnn import SequenceClassifier

    X, y = _toy()
    labels = np.where(y > 0, "up", "down")
    clf = SequenceClassifier(epochs=30, random_state=0).fit(X[:150], labels[:150])
    proba = clf.predict_proba(X[150:])
    assert proba.shape == (50, 2) and np.allclose(proba.sum(1), 1)
    assert set(clf.predict(X[150:])) <= {"up", "down"} and list(clf.classes_) == ["down", "up"]
    assert clf.score(X[150:], labels[150:]) > 0.85



def _ragged_toy(n=240, seed=0):
    """Sequences of 3 to 14 steps, 2 features; label: is the first feature's sum positive."""
    rng = np.random.default_rng(seed)
    X = [rng.standard_normal((int(rng.integers(3, 15)), 2)) for _ in range(n)]
    return X, np.array([int(x[:, 0].sum() > 0) for x in X])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_sequences_of_different_lengths(cell):
    """A list of sequences of different lengths (many-to-one): the classifier learns a task
    that depends on every step of each sequence, padding never reaches a prediction, and each
    prediction is the one of its sequence alone."""
    from nesy.rnn import SequenceClassifier

    X, y = _ragged_toy()
    clf = SequenceClassifier(cell=cell, hidden_size=16, epochs=40, random_state=0)
    clf.fit(X[:200], y[:200])
    assert clf.model_.masked and clf.n_features_in_ == 2
    assert clf.score(X[200:], y[200:]) > 0.85
    proba = clf.predict_proba(X[200:])
    for i in (0, 7, 39):  # one sequence at a time, unpadded
        alone = clf.predict_proba([X[200 + i]] * 2)[0]  # two of one length: a regular batch
        np.testing.assert_allclose(proba[i], alone, rtol=1e-5, atol=1e-6)
    # Padding values do not matter: the masked network on a padded batch with garbage in the
    # padding gives the same outputs as on clean padding.
    Xs, lengths = clf._check_X(X[200:], fitting=False)
    mask = np.arange(Xs.shape[1])[None, :] < lengths[:, None]
    packed = np.concatenate([Xs, mask[:, :, None].astype(Xs.dtype)], axis=2)
    dirty = packed.copy()
    dirty[:, :, :-1][~mask] = 1e3
    clf.model_.eval()
    np.testing.assert_array_equal(clf.model_(dirty), clf.model_(packed))
    # The input statistics are those of the sequences' own steps, not of the padding.
    steps = np.concatenate(X[:200])
    np.testing.assert_allclose(clf.x_mean_, steps.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(clf.x_scale_, steps.std(0), rtol=1e-4)


def test_sequences_of_different_lengths_regression_and_errors():
    from nesy.rnn import SequenceRegressor

    X, y = _ragged_toy(seed=1)
    uni = [x[:, 0] for x in X]  # univariate sequences (n_steps_i,)
    reg = SequenceRegressor(epochs=30, random_state=0).fit(uni[:200], y[:200].astype(float))
    assert reg.n_features_in_ == 1 and reg.score(uni[200:], y[200:].astype(float)) > 0.5
    # Fitted on sequences of one length, it still predicts a list of different lengths
    # (each group of one length runs on its own).
    Xe = np.stack([x[:3] for x in X[:200]])
    even = SequenceRegressor(epochs=3, random_state=0).fit(Xe, y[:200].astype(float))
    assert not even.model_.masked and even.predict(X[200:]).shape == (40,)
    with pytest.raises(ValueError, match="X\\[1\\]: has 3 features, X\\[0\\] has 2"):
        SequenceRegressor(epochs=1).fit([np.zeros((4, 2)), np.zeros((5, 3))], [0.0, 1.0])
    with pytest.raises(ValueError, match="X\\[1\\]"):
        SequenceRegressor(epochs=1).fit([np.zeros((4, 2)), np.full((5, 2), np.nan)], [0, 1.0])
    with pytest.raises(ValueError, match="X\\[1\\]: Found array with 0 sample"):
        SequenceRegressor(epochs=1).fit([np.zeros((4, 2)), np.zeros((0, 2))], [0.0, 1.0])
    # A 1-D object array of sequences, of one length or several, and a list mixing
    # (n_steps,) with (n_steps, 1) (review of the first version: these failed).
    objs = np.empty(len(uni), dtype=object)
    objs[:] = uni
    np.testing.assert_array_equal(reg.predict(objs[200:]), reg.predict(uni[200:]))
    same = [i for i in range(200, 240) if len(uni[i]) == len(uni[200])]
    np.testing.assert_array_equal(reg.predict(objs[same]), reg.predict(np.stack(
        [uni[i] for i in same])))
    mixed = [uni[200], uni[201][:, None]]
    np.testing.assert_array_equal(reg.predict(mixed), reg.predict(uni[200:202]))
    with pytest.raises(ValueError, match=r"^Input X\[1\] contains NaN"):  # named once
        reg.predict([np.zeros(3), np.array([0.0, np.nan])])
    with pytest.raises(ValueError, match=r"matching X \(2 sequences\)"):
        SequenceRegressor(epochs=1).fit([np.zeros(3), np.zeros(4)], np.zeros(3))
    with pytest.raises(ValueError, match="different lengths need output='last'"):
        SequenceRegressor(output="sequence", epochs=1).fit(
            [np.zeros((4, 2)), np.zeros((5, 2))], [np.zeros(4), np.zeros(5)])

# Checks of scikit-learn's suite that read 2-D X as (n_samples, n_features). A sequence
# estimator reads it as (n_samples, n_steps) of a univariate series: its second axis is time,
# which a recurrent model takes at any length, so `n_features_in_` counts the features per step
# (1 here) and a predict-time X with another number of columns is valid input.
_TIME_AXIS = ("2-D X is (n_samples, n_steps) of a univariate series: n_features_in_ counts "
              "features per step, and any number of steps is valid at predict time")
_NOT_APPLICABLE = {"check_n_features_in": _TIME_AXIS,
                   "check_n_features_in_after_fitting": _TIME_AXIS}


@pytest.mark.parametrize("name", ["SequenceRegressor", "SequenceClassifier"])
def test_check_estimator(name):
    """scikit-learn's estimator checks (default hyper-parameters) all pass, except those that
    take X's second axis for features; the classifier's training check is run below without
    its one such assertion."""
    from sklearn.utils.estimator_checks import check_estimator

    from nesy import rnn

    expected = dict(_NOT_APPLICABLE)
    if name == "SequenceClassifier":
        expected["check_classifiers_train"] = (
            _TIME_AXIS + "; its other assertions: test_classifier_training_checks")
    check_estimator(getattr(rnn, name)(), expected_failed_checks=expected)


def test_sequence_estimators_run_in_the_dtype_asked():
    from nesy.rnn import SequenceClassifier, SequenceRegressor

    X, y = _toy(n=60)
    a = SequenceRegressor(epochs=3, dtype="float64", random_state=0).fit(X, y)
    assert all(p.dtype == np.float64 for p in a.model_.parameters())
    assert a.predict(X).dtype == np.float64
    b = SequenceRegressor(epochs=3, random_state=0).fit(X, y)  # float32 by default
    assert all(p.dtype == np.float32 for p in b.model_.parameters())
    assert b.predict(X).dtype == np.float64  # scikit-learn's regressors return float64
    c = SequenceClassifier(epochs=2, dtype=np.float64, random_state=0).fit(X, y > 0)
    assert c.predict_proba(X).shape == (60, 2)
    with pytest.raises(ValueError, match="^dtype: expected float32 or float64, got float16$"):
        SequenceRegressor(dtype="float16").fit(X, y)


@pytest.mark.parametrize("cls", ["SequenceRegressor", "SequenceClassifier"])
def test_sequence_estimators_use_the_shared_dtype_check(cls):
    """Their own dtype check said 'float32' or 'float64' in quotes, unlike every other dtype
    message of nesy (review s13 L4); None stays float64, as np.dtype(None)."""
    from nesy import rnn

    X, y = _toy(n=20, T=3)
    y = y > 0
    for bad, got in (("foo", "'foo'"), (np.int64, "int64"), (object(), "<object object")):
        est = getattr(rnn, cls)(epochs=1, dtype=bad)
        with pytest.raises(ValueError, match=f"^dtype: expected float32 or float64, got {got}"):
            est.fit(X, y)
        assert not hasattr(est, "model_")
    est = getattr(rnn, cls)(epochs=1, dtype=None, random_state=0).fit(X, y)
    assert all(p.dtype == np.float64 for p in est.model_.parameters())


def test_classifier_training_checks():
    """scikit-learn's check_classifiers_train on its own data (blobs, binary and 3 classes),
    without the assertion that predict refuses X.T (for a sequence model, 2 sequences of 300
    steps)."""
    from sklearn.datasets import make_blobs
    from sklearn.preprocessing import StandardScaler

    from nesy.rnn import SequenceClassifier

    X_m, y_m = make_blobs(n_samples=300, random_state=0)
    X_m = StandardScaler().fit_transform(X_m)
    for X, y in [(X_m[y_m != 2], y_m[y_m != 2]), (X_m, y_m)]:
        clf = SequenceClassifier(random_state=0)
        with pytest.raises(ValueError, match="y"):
            clf.fit(X, y[:-1])
        clf.fit(X.tolist(), y.tolist())
        pred = clf.predict(X)
        assert pred.shape == y.shape and np.mean(pred == y) > 0.83
        proba = clf.predict_proba(X)
        assert proba.shape == (len(y), len(np.unique(y)))
        assert np.array_equal(np.argmax(proba, axis=1), pred)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_sklearn_input_messages():
    """Inputs scikit-learn's tools send get scikit-learn's messages (which name X or y)."""
    import scipy.sparse as sp
    from sklearn.exceptions import DataConversionWarning

    from nesy.rnn import SequenceClassifier, SequenceRegressor

    X = np.random.default_rng(0).standard_normal((20, 4))
    y = X[:, 0]
    for bad, needle in [(sp.csr_matrix(X), "Sparse data"), (X + 1j, "Complex data not supported"),
                        (X[:, 0], "Reshape your data"), (X[:, :0], r"0 feature\(s\)"),
                        (np.zeros((20, 4, 0)), "at least one step and one feature")]:
        with pytest.raises((TypeError, ValueError), match=needle):
            SequenceRegressor(epochs=1).fit(bad, y)
    with pytest.raises(ValueError, match="requires y to be passed"):
        SequenceRegressor(epochs=1).fit(X, None)
    with pytest.warns(DataConversionWarning):
        clf = SequenceClassifier(epochs=1).fit(X, (y > 0)[:, None])
    assert clf.predict(X).shape == (20,)
    reg = SequenceRegressor(epochs=1).fit(X, np.c_[y, -y])
    assert reg.predict(X).dtype == np.float64 and reg.predict(X).shape == (20, 2)


@pytest.mark.parametrize("X,y,needle", [
    (np.zeros((5, 3, 2, 1)), np.zeros(5), "X"),
    (np.full((5, 3), np.nan), np.zeros(5), "X"),
    (np.zeros((5, 3)), np.zeros(4), "y"),
    (np.zeros((5, 3)), np.full(5, np.inf), "y"),
    (np.zeros((0, 3)), np.zeros(0), "^X: Found array with 0 sample"),
])
def test_estimator_bad_input(X, y, needle):
    from nesy.rnn import SequenceRegressor

    with pytest.raises(ValueError, match=needle):
        SequenceRegressor(epochs=1).fit(X, y)


def test_predict_checks_fitted_and_features():
    from sklearn.exceptions import NotFittedError

    from nesy.rnn import SequenceRegressor

    with pytest.raises(NotFittedError):
        SequenceRegressor().predict(np.zeros((2, 3)))
    est = SequenceRegressor(epochs=1).fit(np.zeros((20, 3, 2)), np.zeros(20))
    with pytest.raises(ValueError, match="features"):
        est.predict(np.zeros((2, 3, 5)))



def test_a_failed_fit_leaves_the_estimator_as_it_was():
    """As scikit-learn: bad input raises before any fitted attribute changes; a fitted
    estimator keeps predicting the same, an unfitted one stays unfitted."""
    from sklearn.exceptions import NotFittedError

    from nesy.rnn import SequenceClassifier, SequenceRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4, 2)).astype(np.float32)
    y = X[:, -1, 0]
    est = SequenceRegressor(hidden_size=4, epochs=3, random_state=0).fit(X, y)
    before = est.predict(X[:3])
    with pytest.raises(ValueError, match="y"):
        est.fit(X * 100 + 5, np.full(30, np.nan))
    with pytest.raises(ValueError, match="y"):
        est.fit(rng.standard_normal((30, 4, 7)), np.zeros(29))
    assert np.array_equal(est.predict(X[:3]), before) and est.n_features_in_ == 2
    for bad in (SequenceRegressor(tbptt=3), SequenceRegressor(output="sequence", tbptt=2,
                                                               bidirectional=True)):
        with pytest.raises(ValueError, match="tbptt"):
            bad.fit(X, y if bad.output == "last" else X[:, :, 0])
        with pytest.raises(NotFittedError):
            bad.predict(X)
    clf = SequenceClassifier(hidden_size=4, epochs=2, random_state=0).fit(X, y > 0)
    classes, proba = clf.classes_, clf.predict_proba(X[:3])
    with pytest.raises(ValueError):
        clf.fit(X, rng.standard_normal(30))  # continuous labels
    assert np.array_equal(clf.classes_, classes)
    assert np.array_equal(clf.predict_proba(X[:3]), proba)


# ------------------------------------------------------------------------------ forecasting
def test_windows_and_ar_baseline_recover_a_linear_process():
    from nesy.rnn.forecast import ar_fit_predict, windows

    rng = np.random.default_rng(0)
    s = np.zeros(2000)
    for t in range(2, 2000):
        s[t] = 0.6 * s[t - 1] - 0.3 * s[t - 2] + 1.0 + 0.01 * rng.standard_normal()
    X, y = windows(s, 2)
    assert X.shape == (1998, 2) and np.array_equal(X[5], s[5:7]) and y[5] == s[7]
    pred = ar_fit_predict(X[:1500], y[:1500], X[1500:])
    assert np.sqrt(np.mean((pred - y[1500:]) ** 2)) < 0.02
    with pytest.raises(ValueError, match="window"):
        windows(s[:5], 5)


def test_forecast_inputs_are_checked_and_named():
    from nesy.rnn.forecast import compare, windows

    s = np.sin(np.arange(60) / 3.0)
    with pytest.raises(ValueError, match=r"series: expected one value per time step"):
        windows(s[:, None], 5)  # not "window", which is in range
    with pytest.raises(TypeError, match="window: expected an integer"):
        windows(s, 2.5)
    for i, bad in ((10, np.nan), (59, np.inf)):
        t = s.copy()
        t[i] = bad  # a NaN made lstsq fail inside LAPACK, an inf gave an inf MSE
        with pytest.raises(ValueError, match=rf"series: contains NaN or infinity \(at index {i}\)"):
            compare(t, 3, cells=())
    with pytest.raises(ValueError, match="ensemble: expected an integer >= 1"):
        compare(s, 3, cells=("gru",), ensemble=0)  # was a NaN MSE
    for frac in (float("nan"), 0.0, 1.0, "0.2"):
        with pytest.raises(ValueError, match="test_fraction: expected a number in"):
            compare(s, 3, test_fraction=frac, cells=())
    assert set(compare(s, 3, cells=()).mse) == {"persistence", "AR(3)"}


def test_gru_and_lstm_beat_persistence_and_ar_on_yearly_sunspots():
    """Real data: the shipped yearly series, final 20 % held out (see README)."""
    from nesy.datasets import load_sunspots
    from nesy.rnn.forecast import SUNSPOT_SETUPS, compare

    window, params = SUNSPOT_SETUPS["yearly"]
    _, series = load_sunspots("yearly")
    assert series.shape == (309,)
    r = compare(series, window, **params)
    best_baseline = min(r.mse["persistence"], r.mse["AR(9)"])
    assert r.mse["GRU"] < best_baseline and r.mse["LSTM"] < best_baseline, r.mse


# ------------------------------------------------------------------------------ truncated BPTT
def test_state_carried_across_chunks_equals_one_pass():
    from nesy.rnn import SequenceNet

    for cell in ("gru", "lstm"):
        net = SequenceNet(cell, 2, 5, 1, num_layers=2, output="sequence", dtype=np.float64,
                          rng=0)
        x = np.random.default_rng(1).standard_normal((3, 12, 2))
        whole = net(x)
        first = net(x[:, :5])
        rest = net(x[:, 5:], net.state_)
        np.testing.assert_allclose(np.concatenate([first, rest], axis=1), whole, rtol=1e-12)


def test_tbptt_with_one_chunk_equals_full_bptt_and_learns_long_memory():
    from nesy.rnn import SequenceRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 20, 1)).astype(np.float32)
    Y = np.cumsum(X[:, :, 0], axis=1) * 0.3  # needs memory across chunk boundaries
    kw = dict(output="sequence", epochs=15, random_state=0, validation_fraction=0.0)
    full = SequenceRegressor(**kw).fit(X, Y)
    one_chunk = SequenceRegressor(tbptt=20, **kw).fit(X, Y)
    assert np.array_equal(full.predict(X), one_chunk.predict(X))
    chunked = SequenceRegressor(tbptt=5, **{**kw, "epochs": 60}).fit(X[:100], Y[:100])
    pred = chunked.predict(X[100:])
    r2 = 1 - np.sum((pred - Y[100:]) ** 2) / np.sum((Y[100:] - Y[100:].mean()) ** 2)
    assert r2 > 0.9  # sums over 20 steps learned from 5-step chunks: the state was carried
    with pytest.raises(ValueError, match="tbptt"):
        SequenceRegressor(tbptt=5).fit(X, Y[:, -1])


def test_trainer_tbptt_needs_a_target_at_every_step_of_x():
    from nesy.nn import MSELoss, Trainer
    from nesy.optim import Adam
    from nesy.rnn import SequenceNet

    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 9, 2))
    for y, out in ((rng.standard_normal((8, 12, 1)), "sequence"),  # 3 steps were dropped
                   (rng.standard_normal(8), "last")):  # was an IndexError
        net = SequenceNet("gru", 2, 3, 1, output=out, dtype=np.float64, rng=0)
        before = [p.copy() for p in net.parameters()]
        tr = Trainer(net, MSELoss(), Adam(net.parameters(), lr=1e-2), batch_size=8, epochs=1,
                     verbose=0, tbptt=3)
        with pytest.raises(ValueError, match=r"y: truncated BPTT \(tbptt\) needs a target at "
                                             r"every step, \(n, 9, \.\.\.\)"):
            tr.fit(X, y)
        assert all(np.array_equal(a, b) for a, b in zip(before, net.parameters()))
    with pytest.raises(ValueError, match="X: truncated BPTT"):
        Trainer(net, MSELoss(), Adam(net.parameters(), lr=1e-2), verbose=0,
                tbptt=3).fit(X[:, 0, 0], X[:, 0, 0])


@pytest.mark.parametrize("output", ["last", "sequence"])
def test_sequence_net_backward_checks_before_any_gradient_changes(output):
    from nesy.rnn import SequenceNet

    x = np.random.default_rng(0).standard_normal((3, 4, 2))
    net = SequenceNet("gru", 2, 5, 2, output=output, dtype=np.float64, rng=0)
    out = net(x)
    net.zero_grad()
    bad_shapes = [out.shape[::-1], (out.size,), (1, out.size)]
    for shape in bad_shapes:  # "sequence" reshaped any of them, mixing steps and samples
        with pytest.raises(ValueError, match=re.escape(
                f"grad_out: expected the output's shape {out.shape}, got {shape}")):
            net.backward(np.ones(shape))
    g = np.ones_like(out)
    g.flat[0] = np.nan  # was refused by the recurrent layer (as "grad_hn") after the head
    with pytest.raises(ValueError, match="grad_out: contains NaN or infinity"):
        net.backward(g)
    net.eval()
    net(x)
    with pytest.raises(RuntimeError, match="training mode"):
        net.backward(np.ones_like(out))
    assert not any(g.any() for _, g in net.named_gradients())  # the head's included
    net.train()
    net(x)
    net.backward(np.ones_like(out))
    assert all(g.any() for _, g in net.named_gradients())


# ------------------------------------------------------------------------------ review fixes
def test_zero_hidden_units_and_empty_shapes_do_not_crash():
    y, hn, cn, ws = _core.rnn_forward("gru", np.zeros((3, 2, 2)), np.zeros((2, 0)), None,
                                      np.zeros((0, 2)), np.zeros((0, 0)), np.zeros(0),
                                      np.zeros(0))
    assert y.shape == (3, 2, 0) and hn.shape == (2, 0)
    dx, dh0, _ = _core.rnn_backward("gru", np.zeros((3, 2, 2)), np.zeros((2, 0)), None,
                                    np.zeros((0, 2)), np.zeros((0, 0)), np.zeros(0), np.zeros(0),
                                    ws, np.zeros((3, 2, 0)), np.zeros((2, 0)), None,
                                    np.zeros((0, 2)), np.zeros((0, 0)), np.zeros(0), np.zeros(0))
    assert dx.shape == (3, 2, 2) and not dx.any()
    y, *_ = _core.rnn_forward("lstm", np.zeros((0, 0, 0)), np.zeros((0, 0)), np.zeros((0, 0)),
                              np.zeros((0, 0)), np.zeros((0, 0)), None, None)
    assert y.shape == (0, 0, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("Module", [RNN, GRU, LSTM])
def test_non_finite_padding_never_reaches_gradients(Module, dtype):
    # float32 on AVX2 and AVX-512 projects the inputs step by step inside the recurrence,
    # float64 in one GEMM before it: padding must stay out of both (outputs 0, states and
    # gradients finite).
    m = Module(2, 3, dtype=dtype, rng=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 2)).astype(dtype)
    x[3:, 1] = np.inf
    x[4:, 1, 0] = np.nan  # NaN in padding is fine too
    out, hn = m(x, lengths=np.array([5, 3]))
    assert not out[3:, 1].any()
    m.zero_grad()
    dhn = (np.ones_like(hn[0]), np.ones_like(hn[1])) if Module is LSTM else np.ones_like(hn)
    dx = m.backward(np.ones_like(out), dhn)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx))
    assert all(np.all(np.isfinite(g)) for g in m.gradients())
    m.eval()
    out_eval, _ = m(x, lengths=np.array([5, 3]))
    assert np.array_equal(out_eval, out)
    x[1, 1, 0] = np.nan  # ...but not at a real position
    with pytest.raises(ValueError, match="NaN"):
        m(x, lengths=np.array([5, 3]))


def test_review_api_errors():
    from sklearn.exceptions import NotFittedError

    from nesy.rnn import SequenceClassifier, SequenceRegressor

    X = np.random.default_rng(0).standard_normal((20, 6, 2))
    with pytest.raises(ValueError, match="bidirectional"):
        SequenceRegressor(output="sequence", tbptt=3, bidirectional=True).fit(X, X[:, :, 0])
    with pytest.raises(NotFittedError):
        SequenceClassifier().predict(X)
    with pytest.raises(ValueError, match="real"):
        SequenceRegressor(epochs=1).fit(X + 1j, X[:, 0, 0])
    with pytest.raises(ValueError):
        SequenceClassifier(epochs=1).fit(X, X[:, 0, 0])  # continuous labels
    g = GRU(2, 3)
    out, hn = g(X[:, :, :].astype(np.float32))
    with pytest.raises(ValueError, match="only the LSTM"):
        g.backward(np.ones_like(out), (hn, hn))
    lstm = LSTM(2, 3)
    out, (h, c) = lstm(X.astype(np.float32))
    with pytest.raises(ValueError, match="pair"):
        lstm.backward(np.ones_like(out), h)
    lstm.eval()  # the workspace of the training-mode forward is still there
    assert lstm.backward(np.ones_like(out)).shape == X.shape
    lstm(X.astype(np.float32))  # an eval-mode forward keeps none
    with pytest.raises(RuntimeError, match="training mode"):
        lstm.backward(np.ones_like(out))


def test_binding_lengths_dtypes_and_x_dtype_messages():
    inp, _ = _layer("gru", np.float32)
    args = [inp[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
    y32, *_ = _core.rnn_forward("gru", *args, lengths=np.array([5, 2, 1, 3], np.int32))
    y64, *_ = _core.rnn_forward("gru", *args, lengths=np.array([5, 2, 1, 3], np.int64))
    assert np.array_equal(y32, y64)
    with pytest.raises(TypeError, match="lengths"):
        _core.rnn_forward("gru", *args, lengths=np.array([5.0, 2, 1, 3]))
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.rnn_forward("gru", args[0].astype(np.float16), *args[1:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B", [12, 17, 37, 70])
def test_batches_split_into_row_chunks_match_the_reference(B, dtype):
    """Batches run as independent chunks of rows (one up to 8 rows, 2 chunks up to 64 rows,
    32 rows beyond); in float32 on AVX2 and AVX-512 each chunk also projects its own inputs."""
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for cell in ("gru", "lstm"):
        inp, up = _layer(cell, dtype, T=4, B=B, I=3, H=5, seed=B)
        lens = np.random.default_rng(B).integers(1, 5, size=B).astype(np.int64)
        args = [inp[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
        y, hn, cn, ws = _core.rnn_forward(cell, *args, lengths=lens, reverse=True)
        ry, rhn, _ = ref.rnn_layer_forward(cell, *args, lengths=lens, reverse=True)
        assert _rel(y, ry) <= tol and _rel(hn, rhn) <= tol
        grads = [np.zeros_like(inp[k]) for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
        dx, dh0, _ = _core.rnn_backward(cell, *args, ws, up["dy"], up["dh_n"], up["dc_n"],
                                        *grads, lengths=lens, reverse=True)
        want = ref.rnn_layer_backward(cell, *args, up["dy"], up["dh_n"], up["dc_n"],
                                      lengths=lens, reverse=True)
        assert _rel(dx, want["dx"]) <= 10 * tol and _rel(dh0, want["dh0"]) <= 10 * tol
        assert _rel(grads[1], want["dw_hh"]) <= 10 * tol
        y_inf, *_ = _core.rnn_forward(cell, *args, lengths=lens, reverse=True, training=False)
        assert np.array_equal(y_inf, y)


# ------------------------------------------------------------------------ s10 bad-input review
_BAD_SEQUENCE_OPTIONS = [
    # a negative fraction used to swap training and validation sets silently
    (dict(validation_fraction=-0.5), ValueError,
     r"^validation_fraction: expected a value in \[0, 1\)"),
    (dict(validation_fraction=1.0), ValueError, r"^validation_fraction: .*\[0, 1\)"),
    (dict(validation_fraction="x"), TypeError, "^validation_fraction: expected a number"),
    (dict(learning_rate=-1.0), ValueError, "^learning_rate: "),  # was param_groups[0]['lr']
    (dict(learning_rate=np.inf), ValueError, "^learning_rate: "),
    (dict(learning_rate="a"), TypeError, r"^learning_rate: expected a number in \(0.0, inf\), "
                                         "got str 'a'"),  # was ValueError, as no sibling
    (dict(weight_decay=True), TypeError, "^weight_decay: expected a number .*got bool"),
    (dict(weight_decay=-1e-3), ValueError, "^weight_decay: "),
    (dict(weight_decay=float("nan")), ValueError, "^weight_decay: "),
    (dict(epochs=2.0), TypeError, "^epochs: expected an integer"),
    (dict(epochs=0), ValueError, "^epochs: expected an integer >= 1"),
    (dict(batch_size="a"), TypeError, "^batch_size: expected an integer"),
    (dict(hidden_size=2.5), TypeError, "^hidden_size: expected an integer"),
    (dict(num_layers=0), ValueError, "^num_layers: expected an integer >= 1"),
    (dict(patience=-1), ValueError, "^patience: expected an integer >= 0"),
    (dict(patience=1.5), TypeError, "^patience: expected an integer"),
    (dict(dropout=1.0), ValueError, r"^dropout: expected a value in \[0, 1\)"),
    (dict(dropout="a"), TypeError, "^dropout: expected a number"),
    (dict(output="all"), ValueError, "^output: expected 'last' or 'sequence'"),  # was y
    (dict(cell="cnn"), ValueError, "^cell: expected one of"),
    (dict(tbptt=2.5, output="sequence"), TypeError, "^tbptt: expected an integer"),
    (dict(tbptt=0, output="sequence"), ValueError, "^tbptt: expected an integer >= 1"),
]


@pytest.mark.parametrize("bad,exc,pattern", _BAD_SEQUENCE_OPTIONS)
def test_sequence_estimator_options_are_checked_before_fitting(bad, exc, pattern):
    """Every option is checked at the start of fit with an error naming it; a fitted
    estimator is left as it was."""
    from nesy.rnn import SequenceRegressor

    X, y = _toy(n=24, T=4)
    Y = X[:, :, 0] if bad.get("output") == "sequence" else y
    est = SequenceRegressor(hidden_size=3, epochs=1, random_state=0).fit(X, y)
    params, model, before = est.get_params(), est.model_, est.predict(X)
    est.set_params(**bad)
    with pytest.raises(exc, match=pattern):
        est.fit(X, Y)
    est.set_params(**params)
    assert est.model_ is model and np.array_equal(est.predict(X), before)


def test_sequence_classifier_checks_its_options_too():
    from nesy.rnn import SequenceClassifier

    X, y = _toy(n=24, T=4)
    for bad, exc in [(dict(validation_fraction=-0.5), ValueError),
                     (dict(learning_rate=np.inf), ValueError), (dict(hidden_size=2.0), TypeError)]:
        clf = SequenceClassifier(epochs=1, **bad)
        with pytest.raises(exc, match=f"^{next(iter(bad))}: "):
            clf.fit(X, y > 0)
        assert not hasattr(clf, "model_")


def test_validation_fraction_that_leaves_no_training_sample_names_it():
    """0.96 of 10 samples rounds to all 10: named, instead of 'X is empty'."""
    from nesy.rnn import SequenceRegressor

    X, y = _toy(n=10, T=3)
    est = SequenceRegressor(epochs=1, validation_fraction=0.96)
    with pytest.raises(ValueError, match="^validation_fraction: 0.96 of 10 samples leaves none"):
        est.fit(X, y)
    assert not hasattr(est, "model_")


@pytest.mark.parametrize("cls", [RNN, GRU, LSTM])
def test_complex_or_non_numeric_states_and_gradients_are_refused(cls):
    """A complex h0 / c0 / grad_hn / grad_out used to lose its imaginary part (a ComplexWarning
    at most); strings failed with NumPy's message, object arrays turned None into NaN."""
    m = cls(3, 4)
    x = np.ones((5, 2, 3), np.float32)
    good = np.zeros((1, 2, 4), np.float32)
    lstm = cls is LSTM
    for bad in (good + 1j, np.full(good.shape, "a"), np.full(good.shape, None)):
        for name, h0 in [("h0", (bad, good) if lstm else bad), ("c0", (good, bad))][:1 + lstm]:
            with pytest.raises(TypeError, match=f"^{name}: expected real numbers"):
                m(x, h0)
    m(x, (good.astype(int), good) if lstm else good.astype(int))  # integers stay accepted
    out, _ = m(x)
    grads = {k: v.copy() for k, v in m._grads.items()}
    with pytest.raises(TypeError, match="^grad_out: expected real numbers"):
        m.backward(out + 1j)
    for name, g in ([("grad_hn[0]", (good + 1j, good)), ("grad_hn[1]", (good, good + 1j))]
                    if lstm else [("grad_hn", good + 1j)]):
        with pytest.raises(TypeError, match=f"^{re.escape(name)}: expected real numbers"):
            m.backward(np.zeros_like(out), g)
    assert all(np.array_equal(m._grads[k], v) for k, v in grads.items())


@pytest.mark.parametrize("n", [1, 17, 1000, 82_001])
def test_stream_floor_reads_every_weight_once_a_step(n):
    # The bench floor of the two-thread step: both halves' sums, every step (any pool size).
    w = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    before = nesy.get_num_threads()
    got = []
    try:
        for threads in (1, 2):
            nesy.set_num_threads(threads)
            got.append(_core.rnn_stream_floor(w, 3))
    finally:
        nesy.set_num_threads(before)
    assert got[0] == got[1]  # same bits on one and two threads
    assert got[0] == pytest.approx(3 * float(w.astype(np.float64).sum()), rel=1e-4, abs=1e-3)


def test_stream_floor_names_its_bad_arguments():
    w = np.ones(64, np.float32)
    with pytest.raises(TypeError, match="w: expected a 1-D numpy array of dtype float32"):
        _core.rnn_stream_floor(w.astype(np.float64), 1)
    with pytest.raises(TypeError, match="w: "):
        _core.rnn_stream_floor(w.reshape(8, 8), 1)
    with pytest.raises(ValueError, match="w.*C-contiguous"):
        _core.rnn_stream_floor(w[::2], 1)
    for steps in (0, -1):
        with pytest.raises(ValueError, match="steps: must be at least 1"):
            _core.rnn_stream_floor(w, steps)


# ------------------------------------------------------------------------ s13 bad-input review
def _grads_after(m, x, h0, lengths, g, ghn=None, mutate=None):
    """The parameter gradients of one forward and backward pass from zero; ``mutate`` runs
    between the two (the caller changing its arrays)."""
    out, _ = m(x, h0, lengths=lengths)
    m.zero_grad()
    if mutate is not None:
        mutate(out)
    m.backward(g(out), ghn)
    return [a.copy() for a in m.gradients()]


@pytest.mark.parametrize("cls", [RNN, GRU, LSTM])
@pytest.mark.parametrize("layout", ["time-major", "batch-first-of-one", "unbatched"])
def test_backward_uses_the_forward_values_of_arrays_the_caller_changes(cls, layout):
    """forward kept the caller's own x, h0, c0 and lengths (np.ascontiguousarray returns them
    when already contiguous): overwriting them (buffer reuse) before backward gave silently
    wrong gradients, and a NaN written into them raised after the upper layer's gradients were
    accumulated."""
    m = cls(2, 3, num_layers=2, bidirectional=True, batch_first=layout != "time-major", rng=0)
    rng = np.random.default_rng(1)
    shape, state = {"time-major": ((4, 2, 2), (4, 2, 3)), "batch-first-of-one": ((1, 4, 2),
                    (4, 1, 3)), "unbatched": ((4, 2), (4, 3))}[layout]
    x = rng.standard_normal(shape).astype(np.float32)
    h0, c0 = rng.standard_normal(state).astype(np.float32), rng.standard_normal(state)
    c0 = c0.astype(np.float32)
    lengths = np.array([4, 2]) if layout == "time-major" else None
    lstm = cls is LSTM

    def state_of(h, c):
        return (h, c) if lstm else h

    def g(out):
        return np.linspace(-1, 1, out.size, dtype=np.float32).reshape(out.shape)

    want = _grads_after(m, x.copy(), state_of(h0.copy(), c0.copy()),
                        None if lengths is None else lengths.copy(), g)
    for value in (5.0, np.nan):
        def overwrite(out, value=value):
            for a in (x, h0, c0):
                a[...] = value
            if lengths is not None:
                lengths[...] = lengths[::-1].copy()
            out[...] = 7.0  # the returned output is not needed either

        xs, hs, cs = x.copy(), h0.copy(), c0.copy()
        ls = None if lengths is None else lengths.copy()
        got = _grads_after(m, x, state_of(h0, c0), lengths, g, mutate=overwrite)
        assert all(np.array_equal(a, b) for a, b in zip(got, want))
        x[...], h0[...], c0[...] = xs, hs, cs
        if lengths is not None:
            lengths[...] = ls


@pytest.mark.parametrize("cls", [RNN, GRU, LSTM])
def test_non_finite_gradients_are_refused_before_any_gradient_changes(cls):
    """NaN or infinity in grad_out / grad_hn (or a part of the LSTM's pair) made every
    parameter gradient NaN with no error; now a ValueError naming it, with all gradients as
    they were. Padding in grad_out is never read, and may hold anything."""
    m = cls(2, 3, num_layers=2, bidirectional=True, rng=0)
    x = np.random.default_rng(0).standard_normal((4, 2, 2)).astype(np.float32)
    lengths = np.array([4, 2])
    out, hn = m(x, lengths=lengths)
    lstm = cls is LSTM
    h = hn[0] if lstm else hn
    m.backward(np.ones_like(out), (np.ones_like(h), np.ones_like(h)) if lstm else None)
    before = [a.copy() for a in m.gradients()]
    assert all(np.any(a != 0) for a in before)
    for bad in (np.nan, np.inf, -np.inf):
        go = np.ones_like(out)
        go[1, 1, 4] = bad
        with pytest.raises(ValueError, match=r"^grad_out: contains NaN or infinity \(at step 1, "
                                             r"sequence 1\)"):
            m.backward(go)
        gh = np.ones_like(h)
        gh[3, 0, 1] = bad
        cases = ([("grad_hn[0]", (gh, np.ones_like(h))), ("grad_hn[1]", (np.ones_like(h), gh))]
                 if lstm else [("grad_hn", gh)])
        for name, grad_hn in cases:
            with pytest.raises(ValueError, match=rf"^{re.escape(name)}: contains NaN or infinity"):
                m.backward(np.ones_like(out), grad_hn)
        with pytest.raises(ValueError, match=r"^grad_out: value 1e\+300 \(at step 0, sequence 0\) "
                                             r"does not fit in float32"):
            m.backward(np.full(out.shape, 1e300))
    assert all(np.array_equal(a, b) for a, b in zip(m.gradients(), before))
    go = np.ones_like(out)
    go[2:, 1] = np.nan  # sequence 1 has 2 steps
    m.zero_grad()
    m.backward(go)
    padded = [a.copy() for a in m.gradients()]
    m.zero_grad()
    m.backward(np.ones_like(out))
    assert all(np.array_equal(a, b) for a, b in zip(m.gradients(), padded))


@pytest.mark.parametrize("cls", [RNN, GRU, LSTM])
def test_float64_values_too_large_for_a_float32_layer_are_named(cls):
    """A finite float64 value beyond float32's range became infinity in the cast (NaN outputs,
    a RuntimeWarning at most); now a ValueError naming x, h0 or c0. Padding is not read."""
    m = cls(3, 4, rng=0)
    x = np.zeros((5, 2, 3))
    x[2, 1, 0] = 1e300
    with pytest.raises(ValueError, match=r"^x: value 1e\+300 \(at step 2, sequence 1\) does not "
                                         r"fit in float32 \(the layer's dtype\)"):
        m(x)
    out, _ = m(x, lengths=np.array([5, 2]))  # step 2 of sequence 1 is padding
    assert np.all(np.isfinite(out))
    good, big = np.zeros((1, 2, 4)), np.full((1, 2, 4), -1e39)
    lstm = cls is LSTM
    for name, h0 in [("h0", (big, good) if lstm else big), ("c0", (good, big))][:1 + lstm]:
        with pytest.raises(ValueError, match=rf"^{name}: value -1e\+39 does not fit in float32"):
            m(x[:2], h0)
    assert np.all(np.isfinite(cls(3, 4, dtype=np.float64, rng=0)(x * 1e-300)[0]))


@pytest.mark.parametrize("cls", [RNN, GRU, LSTM])
@pytest.mark.parametrize("dtype", ["foo", object()])
def test_an_invalid_dtype_is_named(cls, dtype):
    """dtype='foo' raised NumPy's 'data type 'foo' not understood', naming no argument."""
    with pytest.raises(TypeError, match="^dtype: expected float32 or float64, got "):
        cls(2, 3, dtype=dtype)


def test_unbatched_state_errors_show_the_shape_given_and_lists_are_pairs():
    """For unbatched input the messages showed the internal batch-of-one shape (1, 1, 5), and
    an LSTM state [h0, c0] (a list) was refused as not being a pair."""
    m = LSTM(2, 4, rng=0)
    x = np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)
    h0, c0 = np.full((1, 4), 0.5, np.float32), np.full((1, 4), -0.5, np.float32)
    with pytest.raises(ValueError, match=r"^c0: expected shape \(1, 4\) for unbatched input, "
                                         r"got \(1, 5\)$"):
        m(x, (h0, np.zeros((1, 5))))
    with pytest.raises(ValueError, match=r"^h0: expected shape \(1, 4\) for unbatched input, "
                                         r"got \(2, 4\)$"):
        m(x, (np.zeros((2, 4)), c0))
    out, (hn, cn) = m(x, [h0, c0])
    out_t, (hn_t, cn_t) = m(x, (h0, c0))
    assert np.array_equal(out, out_t) and np.array_equal(hn, hn_t) and np.array_equal(cn, cn_t)
    with pytest.raises(ValueError, match=r"^grad_hn\[1\]: expected shape \(1, 4\) for "
                                         r"unbatched input, got \(1, 5\)$"):
        m.backward(np.ones_like(out), (np.ones((1, 4)), np.ones((1, 5))))
    m.zero_grad()
    dx = m.backward(np.ones_like(out), [np.ones_like(hn), np.ones_like(cn)])
    m.zero_grad()
    assert np.array_equal(dx, m.backward(np.ones_like(out), (np.ones_like(hn),
                                                             np.ones_like(cn))))
    with pytest.raises(ValueError, match=r"^h0: the LSTM takes a pair \(h0, c0\), got a list "
                                         r"of 3"):
        m(x, [h0, c0, c0])
    with pytest.raises(ValueError, match=r"^h0: expected shape \(1, 2, 4\), got \(1, 4\)"):
        GRU(2, 4)(x[:, None, :].repeat(2, axis=1), [[0.0] * 4])  # a list is an array here


@pytest.mark.parametrize("unbatched", [False, True])
def test_lstm_backward_names_the_parts_of_grad_hn_as_passed(unbatched):
    """The LSTM's messages named the second part of grad_hn=(grad_h_n, grad_c_n) 'grad_cn',
    which is no argument (review s13 L7): the parts are grad_hn[0] and grad_hn[1]."""
    m = LSTM(2, 3, rng=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 2) if unbatched else (4, 2, 2)).astype(np.float32)
    out, (hn, _) = m(x)
    ones, bad_shape = np.ones_like(hn), np.ones(hn.shape[:-1] + (5,), np.float32)
    nan = ones.copy()
    nan[(0,) * nan.ndim] = np.nan
    for k in (0, 1):
        def pair(bad: np.ndarray, k: int = k) -> tuple:
            return (bad, ones) if k == 0 else (ones, bad)

        name = re.escape(f"grad_hn[{k}]")
        with pytest.raises(ValueError, match=rf"^{name}: expected shape "):
            m.backward(np.ones_like(out), pair(bad_shape))
        with pytest.raises(ValueError, match=rf"^{name}: contains NaN or infinity"):
            m.backward(np.ones_like(out), pair(nan))
        with pytest.raises(TypeError, match=rf"^{name}: expected real numbers"):
            m.backward(np.ones_like(out), pair(ones + 1j))
    with pytest.raises(ValueError, match=r"^grad_hn: the LSTM takes a pair \(grad_h_n, "
                                         r"grad_c_n\), got a single ndarray"):
        m.backward(np.ones_like(out), ones)


def test_sequence_estimators_do_not_depend_on_the_scale_of_the_data():
    """The statistics were float32 with an absolute + 1e-8 on the std: X or y of about 1e19 and
    up overflowed (x_scale_ inf: the model trained on zeros, or predicted inf), and features
    with a std below about 1e-8 were scaled to about 0. Now float64 statistics, and a scale of
    1 only where the std is (relatively) zero, as StandardScaler."""
    from nesy.rnn import SequenceClassifier, SequenceRegressor

    rng = np.random.default_rng(0)
    X = rng.random((40, 6, 2))
    y = X[:, :, 0].sum(1)
    yc = (y > np.median(y)).astype(int)
    kw = dict(epochs=30, hidden_size=8, random_state=0, validation_fraction=0)
    base = SequenceRegressor(**kw).fit(X, y).score(X, y)
    base_c = SequenceClassifier(**kw).fit(X, yc).score(X, yc)
    assert base > 0.95 and base_c > 0.9
    for s in (1e20, 1e-9, 1e-20):
        reg = SequenceRegressor(**kw).fit(X * s, y)
        assert np.all(np.isfinite(reg.x_scale_)) and reg.x_scale_.shape == (2,)
        assert reg.score(X * s, y) == pytest.approx(base, abs=1e-3), s
        assert SequenceClassifier(**kw).fit(X * s, yc).score(X * s, yc) == base_c, s
        reg = SequenceRegressor(**kw).fit(X, y * s)
        assert reg.y_scale_.shape == (1,) and reg.score(X, y * s) == pytest.approx(base, abs=1e-3)
        ragged = [x[: 3 + i % 4] * s for i, x in enumerate(X)]
        assert np.all(np.isfinite(SequenceRegressor(**kw).fit(ragged, y).predict(ragged)))
    const = X.copy()
    const[:, :, 1] = 3.0  # a constant feature: centred, scale 1
    reg = SequenceRegressor(**kw).fit(const, y)
    assert reg.x_scale_[1] == 1.0 and reg.x_mean_[1] == 3.0
    with pytest.raises(ValueError, match=r"^X: values too large to standardise \(feature 1"):
        SequenceRegressor(**kw, dtype="float64").fit(np.c_[X[:, :, :1], X[:, :, 1:] * 1e300],
                                                     y)
    with pytest.raises(ValueError, match=r"^y: values too large to standardise \(target 0"):
        SequenceRegressor(**kw).fit(X, y * 1e307)



def test_sequence_estimators_standardise_x_in_its_own_dtype():
    """fit, predict and score standardised X in float64 (review s13 L11): a float32 X made two
    float64 temporaries of four times its size at every call. The statistics stay float64; the
    transform runs in X's dtype and equals the float64 one up to float32 rounding."""
    import tracemalloc

    from nesy.rnn import SequenceRegressor

    X, y = _toy(n=40, T=5)
    reg = SequenceRegressor(epochs=1, hidden_size=4, random_state=0).fit(X, y)
    assert reg.x_mean_.dtype == reg.x_scale_.dtype == np.float64
    big = np.random.default_rng(1).standard_normal((4000, 50, 2)).astype(np.float32) * 3 + 1
    want = ((big - reg.x_mean_) / reg.x_scale_).astype(np.float32)
    tracemalloc.start()
    try:
        got, lengths = reg._check_X(big, fitting=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lengths is None and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    ratio = round(peak / big.nbytes, 2)
    assert ratio < 2  # the result, and no float64 copy (4 times X each, two of them before)
    ragged = [x[:3 + i % 3] for i, x in enumerate(big[:30])]
    got, lengths = reg._check_X(ragged, fitting=False)
    np.testing.assert_allclose(got, want[:30, :5] * (np.arange(5) < lengths[:, None])[:, :, None],
                               rtol=1e-6, atol=1e-6)


def test_standardised_keeps_a_narrow_float32_feature_and_never_overflows():
    """The float64 statistics applied in float32: the mean is subtracted in two parts (its
    float32 value and the rest), and values whose difference with the mean overflows float32
    are computed in float64, so the result is the float64 one cast to float32."""
    from nesy.rnn.estimators import _standardisation, _standardised

    def check(X, mask=None):
        m, s = _standardisation(X.reshape(-1, X.shape[2]), "X", "feature")
        want = (X - m) / s
        if mask is not None:
            want = want * mask[:, :, None]
        want = want.astype(X.dtype)
        assert np.all(np.isfinite(want))
        got = _standardised(X, m, s, mask)
        assert got.dtype == X.dtype and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)

    # two float32 steps around 1e6: the mean rounded to float32 moves every value by a std
    check(np.array([1e6, 1e6 + 0.0625] * 10, np.float32).reshape(4, 5, 1))
    # both signs near the float32 range: X - mean overflows float32, (X - mean) / std not
    near = np.array([-3e38, 3e38, 3e38, 3e38], np.float32).reshape(1, 4, 1)
    check(near)
    check(near, np.array([[True, True, False, False]]))
    check(np.asfortranarray(np.random.default_rng(0).standard_normal((6, 4, 3))))  # float64


@pytest.mark.parametrize("labels", ["continuous", "none"])
def test_sequence_classifier_label_errors_name_y(labels):
    """Continuous or None labels raised scikit-learn's 'Unknown label type' without naming y.
    NaN labels gave scikit-learn's 'Input y contains NaN.' unprefixed, while GraphClassifier
    said 'y: Input y contains NaN.' (review s13 L9): now one rule, "y: " once, for all."""
    from nesy.rnn import SequenceClassifier

    X, y = _toy(n=20, T=3)
    bad = {"continuous": y, "none": np.array([None, 1] * 10, dtype=object)}[labels]
    clf = SequenceClassifier(epochs=1)
    with pytest.raises(ValueError, match="^y: Unknown label type"):
        clf.fit(X, bad)
    assert not hasattr(clf, "model_")
    with pytest.raises(ValueError, match=r"^y: Input y contains NaN\.$"):
        clf.fit(X, np.where(y > 0, 1.0, np.nan))
    assert not hasattr(clf, "model_")


@pytest.mark.parametrize("sizes,name", [((2, 10**12), "hidden_size"), ((10**12, 4), "input_size"),
                                        ((2, 64, 10**9), "num_layers")])
def test_parameters_beyond_the_machines_memory_are_refused_naming_the_size(sizes, name):
    # Before: NumPy's MemoryError (or a multi-GB allocation attempt) naming no argument.
    for cls in (RNN, GRU, LSTM):
        with pytest.raises(ValueError, match=rf"^{name}: \d+ makes parameters of .* GiB, more than "
                                             "this machine's memory"):
            cls(*sizes)



# ------------------------------------------------------------------------ s14 gap review
def test_pickled_layers_and_estimators_hold_no_data_of_the_last_pass():
    """A pickled layer carried the last forward's input, states and workspaces (and
    ``grad_h0``); a fitted estimator, the last predict's input: the pickle of a
    SequenceRegressor grew from 10 kB to 3.3 MB after one predict. The unpickled objects
    predict identically, and a layer runs forward and backward again."""
    import pickle

    from nesy.rnn import SequenceClassifier, SequenceRegressor

    rng = np.random.default_rng(0)
    for cls in (RNN, GRU, LSTM):
        layer = cls(3, 4, num_layers=2, bidirectional=True, rng=0)
        fresh = len(pickle.dumps(layer))
        x = rng.standard_normal((50, 40, 3)).astype(np.float32)
        out, hn = layer(x)
        layer.backward(np.ones_like(out))
        assert len(pickle.dumps(layer)) <= fresh + 20  # + "grad_h0": None; x alone is 24 kB
        twin = pickle.loads(pickle.dumps(layer))
        assert twin.__dict__["_ctx"] is None and twin.grad_h0 is None
        with pytest.raises(RuntimeError, match="before forward"):
            twin.backward(np.ones_like(out))
        out2, _ = twin(x)
        np.testing.assert_array_equal(out2, out)
        np.testing.assert_array_equal(twin.backward(np.ones_like(out)),
                                      layer.backward(np.ones_like(out)))
    X, y = _toy(n=60, T=8)
    big = rng.standard_normal((2000, 50, 2)).astype(np.float32)
    for est in (SequenceRegressor(hidden_size=8, epochs=2, random_state=0).fit(X, y),
                SequenceRegressor(hidden_size=8, epochs=2, random_state=0, tbptt=4,
                                  output="sequence").fit(X, np.cumsum(X[:, :, 0], axis=1)),
                SequenceClassifier(hidden_size=8, epochs=2, random_state=0).fit(X, y > 0)):
        fitted = len(pickle.dumps(est))
        est.predict(big)
        assert len(pickle.dumps(est)) == fitted  # big is 800 kB
        assert fitted < 20_000
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict(X), est.predict(X))


@pytest.mark.parametrize("cls", [RNN, GRU, LSTM])
def test_dropout_with_one_layer_warns_as_torch(cls):
    """torch warns that dropout acts between layers only; nesy accepted it silently."""
    import warnings

    with pytest.warns(UserWarning, match=r"^dropout option adds dropout after all but last "
                                         r"recurrent layer, so non-zero dropout expects "
                                         r"num_layers greater than 1, but got dropout=0.5 and "
                                         r"num_layers=1$") as rec:
        cls(3, 4, dropout=0.5)
    assert rec[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls(3, 4, num_layers=2, dropout=0.5)
        cls(3, 4, dropout=0.0)


def test_sequence_estimator_dropout_with_one_layer_warns_at_fit_naming_it():
    """The estimators' dropout (default num_layers=1) changed nothing, silently: the
    predictions with dropout=0.5 were bit-identical to those without."""
    import warnings

    from nesy.rnn import SequenceClassifier, SequenceRegressor

    X, y = _toy(n=40, T=5)
    for est, target in ((SequenceRegressor(hidden_size=4, epochs=1, dropout=0.5), y),
                        (SequenceClassifier(hidden_size=4, epochs=1, dropout=0.5), y > 0)):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            est.fit(X, target)
        assert [str(w.message) for w in rec] == [
            "dropout: 0.5 has no effect with num_layers=1 (dropout is applied between "
            "recurrent layers only); use num_layers >= 2, or dropout=0"]  # once, not twice
        assert rec[0].category is UserWarning and rec[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SequenceRegressor(hidden_size=4, epochs=1, num_layers=2, dropout=0.5).fit(X, y)


def test_sequence_regressor_score_takes_every_y_that_fit_takes():
    """score on multi-target sequences (n, T, k) raised scikit-learn's 'Found array with dim
    3', and cross_val_score returned NaN with a warning only."""
    import warnings

    from sklearn.metrics import r2_score
    from sklearn.model_selection import cross_val_score

    from nesy.rnn import SequenceRegressor

    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 8, 3)).astype(np.float32)
    Y = np.cumsum(X[:, :, :2], axis=1)  # (60, 8, 2)
    w = rng.uniform(0.5, 2.0, 60)
    kw = dict(hidden_size=8, epochs=3, random_state=0)
    cases = [("sequence", Y), ("sequence", Y[:, :, 0]), ("last", Y[:, -1]), ("last", Y[:, -1, 0])]
    for output, target in cases:
        est = SequenceRegressor(output=output, **kw).fit(X, target)
        pred = est.predict(X)
        assert pred.shape == target.shape
        n = len(target)
        want = r2_score(target.reshape(n, -1), pred.reshape(n, -1), sample_weight=w)
        assert est.score(X, target, sample_weight=w) == pytest.approx(want, rel=1e-12)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a failing fit or score only warns in sklearn
            scores = cross_val_score(SequenceRegressor(output=output, **kw), X, target, cv=2)
        assert np.isfinite(scores).all()
    est = SequenceRegressor(output="sequence", **kw).fit(X, Y)
    with pytest.raises(ValueError, match=r"^y: expected shape \(60, 8, 2\) \(the "
                                         r"predictions'\), got \(60, 8, 1\)"):
        est.score(X, Y[:, :, :1])


@pytest.mark.parametrize("cls", [RNN, GRU, LSTM])
def test_forward_takes_torchs_hx_keyword(cls):
    rng = np.random.default_rng(0)
    layer = cls(3, 4, num_layers=2, rng=0)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    h = rng.standard_normal((2, 2, 4)).astype(np.float32)
    h0 = (h, -h) if cls is LSTM else h
    out, _ = layer(x, h0)
    out2, _ = layer(x, hx=h0)
    np.testing.assert_array_equal(out2, out)
    assert not np.array_equal(layer(x)[0], out)  # hx is not ignored
    with pytest.raises(TypeError, match=r"^forward: got both h0 and hx \(torch's name for "
                                        r"h0\); pass one$"):
        layer(x, h0, hx=h0)


@pytest.mark.parametrize("cls", [RNN, GRU, LSTM])
@pytest.mark.parametrize("layout", ["time", "batch_first", "unbatched"])
def test_backward_grad_out_none_means_zeros(cls, layout):
    """A many-to-one model had to build zeros of the output's shape for grad_out."""
    rng = np.random.default_rng(0)
    layer = cls(3, 4, num_layers=2, bidirectional=True, batch_first=layout == "batch_first",
                rng=0)
    shape = {"time": (5, 2, 3), "batch_first": (2, 5, 3), "unbatched": (5, 3)}[layout]
    x = rng.standard_normal(shape).astype(np.float32)
    out, hn = layer(x)
    h = hn[0] if cls is LSTM else hn
    gh = rng.standard_normal(h.shape).astype(np.float32)
    grad_hn = (gh, np.zeros_like(gh)) if cls is LSTM else gh
    layer.zero_grad()
    want = layer.backward(np.zeros_like(out), grad_hn)
    want_grads = [g.copy() for g in layer.gradients()]
    layer.zero_grad()
    got = layer.backward(None, grad_hn)
    np.testing.assert_array_equal(got, want)
    for g, w in zip(layer.gradients(), want_grads):
        np.testing.assert_array_equal(g, w)
    with pytest.raises(ValueError, match=r"^backward: grad_out and grad_hn are both None"):
        layer.backward(None)
    with pytest.raises(ValueError, match=r"^backward: grad_out and grad_hn are both None"):
        layer.backward(None, None)


def test_lstm_takes_proj_size_zero_and_refuses_projections():
    """proj_size raised 'unexpected keyword argument'; torch's default 0 is now accepted and
    a projection refused by name."""
    assert LSTM(5, 7, proj_size=0).proj_size == 0
    assert LSTM(5, 7, 1, True, False, 0.0, False, 0).proj_size == 0  # torch's position
    with pytest.raises(ValueError, match=r"^proj_size: LSTM projections \(torch's proj_size > "
                                         r"0\) are not supported, only proj_size=0; got 3$"):
        LSTM(5, 7, proj_size=3)
    with pytest.raises(TypeError, match="^proj_size: expected an integer"):
        LSTM(5, 7, proj_size=True)
    for doc in (LSTM.__doc__, nesy.rnn.layers.__doc__):
        assert "proj_size" in doc and "device" in doc and "PackedSequence" in doc


def test_rnn_repr_shows_a_relu_nonlinearity():
    assert repr(RNN(3, 4, nonlinearity="relu")) == "RNN(3, 4, num_layers=1, nonlinearity='relu')"
    assert repr(RNN(3, 4, 2, "relu", bias=False, batch_first=True)) == (
        "RNN(3, 4, num_layers=2, nonlinearity='relu', bias=False, batch_first=True)")
    assert repr(RNN(3, 4)) == "RNN(3, 4, num_layers=1)"  # tanh, the default, is not shown


def test_validation_fraction_the_estimator_cannot_honour_warns_at_fit():
    """With fewer than 10 samples (or a fraction rounding to none) no validation split was
    made and early stopping was off, silently. The user's own fraction now warns; the
    default's documented rule does not. The docstrings say what early stopping watches."""
    import warnings

    from nesy.rnn import SequenceClassifier, SequenceRegressor

    X, y = _toy(n=20, T=4)
    for est, target in ((SequenceRegressor(hidden_size=4, epochs=2, validation_fraction=0.5),
                         y), (SequenceClassifier(hidden_size=4, epochs=2,
                                                 validation_fraction=0.5), y > 0)):
        with pytest.warns(UserWarning, match=r"^validation_fraction: a validation split needs "
                                             r"at least 10 samples, got 9; training without "
                                             r"validation or early stopping") as rec:
            est.fit(X[:9], target[:9])
        assert rec[0].filename == __file__
        assert "val_loss" not in est.history_.history
    with pytest.warns(UserWarning, match=r"^validation_fraction: 0.04 of 12 samples rounds to "
                                         "none"):
        SequenceRegressor(hidden_size=4, epochs=1, validation_fraction=0.04).fit(X[:12], y[:12])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SequenceRegressor(hidden_size=4, epochs=1).fit(X[:9], y[:9])  # the default
        SequenceRegressor(hidden_size=4, epochs=1, validation_fraction=0).fit(X[:9], y[:9])
        est = SequenceRegressor(hidden_size=4, epochs=2, validation_fraction=0.5).fit(X, y)
    assert "val_loss" in est.history_.history
    doc = SequenceRegressor.__doc__
    assert "cross-entropy for" in doc and "at least 10 samples" in doc and "on its MSE" not in doc
    assert "cross-entropy" in SequenceClassifier.__doc__


@pytest.mark.parametrize("cls", [RNN, GRU, LSTM])
@pytest.mark.parametrize("layout", ["time", "batch_first", "unbatched"])
def test_without_input_grad_backward_returns_none_and_the_same_gradients(cls, layout):
    """``input_grad=False`` (a first layer on data, as Dense's and the GNN layers') skips the
    first layer's ``dG W_ih``: backward returns None and every parameter gradient and
    ``grad_h0`` has the bits of the full backward. Two layers, both directions, padding."""
    rng = np.random.default_rng(3)
    kw = dict(num_layers=2, bidirectional=True, dtype=np.float64, rng=5,
              batch_first=layout == "batch_first")
    a, b = cls(3, 4, **kw), cls(3, 4, input_grad=False, **kw)
    assert a.input_grad and not b.input_grad
    shape = {"time": (6, 5, 3), "batch_first": (5, 6, 3), "unbatched": (6, 3)}[layout]
    x = rng.standard_normal(shape)
    lengths = None if layout == "unbatched" else np.array([6, 2, 5, 1, 3])
    out, _ = a(x, lengths=lengths)
    b(x, lengths=lengths)
    g = rng.standard_normal(out.shape)
    assert a.backward(g).shape == x.shape
    assert b.backward(g) is None
    for (na, ga), (nb, gb) in zip(a.named_gradients(), b.named_gradients()):
        assert na == nb
        np.testing.assert_array_equal(ga, gb, err_msg=na)
    parts = (lambda m: m.grad_h0) if cls is LSTM else (lambda m: (m.grad_h0,))
    for ha, hb in zip(parts(a), parts(b), strict=True):
        np.testing.assert_array_equal(ha, hb)


def test_binding_without_input_grad_returns_no_dx():
    p, g = _layer("gru", np.float32)
    y, hn, cn, ws = _core.rnn_forward("gru", **p, training=True)
    grads = [np.zeros_like(p[k]) for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
    args = ("gru", p["x"], p["h0"], None, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], ws,
            g["dy"], g["dh_n"], None, *grads)
    dx, dh0, dc0 = _core.rnn_backward(*args, input_grad=False)
    assert dx is None and dh0.shape == p["h0"].shape and dc0 is None


def test_sequence_estimators_skip_the_inputs_gradient_during_fit_only():
    from nesy.rnn import SequenceRegressor

    X, y = _toy(n=40, T=6)
    seen = []
    orig = GRU.backward  # the estimator's default cell

    def spy(self, *args, **kwargs):
        seen.append(self.input_grad)
        return orig(self, *args, **kwargs)

    GRU.backward = spy
    try:
        est = SequenceRegressor(hidden_size=4, epochs=1, random_state=0).fit(X, y)
    finally:
        del GRU.backward
    assert seen and not any(seen)
    assert est.model_.rnn.input_grad is True  # model_ is a plain network again


@pytest.mark.parametrize("cls", [RNN, GRU, LSTM])
def test_parameters_tied_within_one_layer_get_the_sum_of_both_gradients(cls):
    """Weight tying (nesy.nn: one array registered twice shares one gradient) of weight_ih and
    weight_hh of one layer (input_size == hidden_size), and of its two biases: the kernel
    refused the shared gradient array passed twice; the tied gradient is the sum of the two
    untied ones."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 4))
    free = cls(4, 4, dtype=np.float64, rng=1)
    tied = cls(4, 4, dtype=np.float64, rng=1)
    for name in ("weight_hh_l0", "bias_hh_l0"):
        src = name.replace("hh", "ih")
        delattr(free, name)
        free.register_parameter(name, getattr(free, src).copy())  # same values, untied
        delattr(tied, name)
        tied.register_parameter(name, getattr(tied, src))
    out, _ = free(x)
    out2, _ = tied(x)
    np.testing.assert_array_equal(out, out2)
    g = rng.standard_normal(out.shape)
    free.backward(g)
    tied.backward(g)
    fg, tg = dict(free.named_gradients()), dict(tied.named_gradients())
    np.testing.assert_allclose(tg["weight_ih_l0"], fg["weight_ih_l0"] + fg["weight_hh_l0"],
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tg["bias_ih_l0"], fg["bias_ih_l0"] + fg["bias_hh_l0"],
                               rtol=1e-12, atol=1e-12)
