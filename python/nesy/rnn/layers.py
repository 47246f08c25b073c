"""Recurrent layers with torch.nn.RNN / GRU / LSTM's interface, parameters and gate order.

Each layer-direction runs as one call into Rust over the whole sequence batch
(``nesy._core.rnn_forward`` / ``rnn_backward``, kernels in ``rust/core/src/rnn``); stacking
layers, directions and inter-layer dropout happens here.

Shapes (``batch_first=False``): input ``(T, B, input_size)``, output ``(T, B, D * hidden_size)``,
states ``(num_layers * D, B, hidden_size)`` with ``D = 2`` if bidirectional. Unbatched input
``(T, input_size)`` is accepted as in torch. Variable-length batches: ``lengths`` (B,) gives each
sequence's length; positions past it are padding, which never influences outputs (they are 0),
final states or gradients, so the reverse direction starts at each sequence's own last element.

torch's options that are not supported: LSTM projections (``proj_size`` is accepted as 0 and
refused above it), ``device`` (arrays are NumPy's, on the CPU), torch dtypes (``dtype`` is a
NumPy one: ``np.float32`` or ``np.float64``) and ``PackedSequence`` input (``lengths=`` takes
its place).
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Optional, Tuple, Union

import numpy as np

from nesy import _core
from nesy._checks import check_fits_in_memory, check_float_dtype, warn_user
from nesy.nn import init as _init
from nesy.nn.module import Module, real_array

State = Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]


def _private(a: np.ndarray, given: Any, keep: bool) -> np.ndarray:
    """``a``, made from the caller's ``given``, or, if it is kept for ``backward`` (``keep``),
    a copy of it where the two may share memory.

    ``forward`` in training mode keeps its inputs for ``backward``, which must see the values
    of the forward pass even if the caller then changes its array (or reuses it for the next
    batch). ``np.ascontiguousarray`` returns the caller's own array (or a view of it) when it
    already has the layout and dtype asked for; an array that a cast or a transposition made
    is new and is kept without a copy. Inference keeps nothing (``backward`` refuses to run
    after it), so nothing is copied.
    """
    if not keep or given is None or isinstance(given, (list, tuple)):
        return a  # np.asarray built a new array from the nested sequence
    return a.copy() if np.may_share_memory(a, np.asarray(given)) else a


def _steps_mask(lengths: np.ndarray, n_steps: int) -> np.ndarray:
    """``(B, n_steps)`` booleans: True at each sequence's own steps (batch-major; ``.T`` for
    time-major arrays)."""
    return np.arange(n_steps)[None, :] < lengths[:, None]


class RNNBase(Module):
    """Shared machinery of :class:`RNN`, :class:`GRU` and :class:`LSTM`.

    The parameters are torch's, in torch's order (:class:`RNN` has ``nonlinearity`` after
    ``num_layers``).

    Parameters
    ----------
    input_size, hidden_size : int
        Features of each input step and of the state.
    num_layers : int, default 1
        Stacked layers, each reading the previous one's output.
    bias : bool, default True
        Whether the layers have ``bias_ih`` and ``bias_hh``.
    batch_first : bool, default False
        Input and output ``(B, T, features)`` instead of ``(T, B, features)`` (states stay
        ``(num_layers * D, B, hidden_size)``).
    dropout : float, default 0.0
        Dropout on the output of every layer but the last, in training mode: with
        ``num_layers=1`` it has no effect, and a ``UserWarning`` says so (as torch's).
    bidirectional : bool, default False
        A second direction reading each sequence backwards (``D = 2``).
    dtype : np.float32 or np.float64, keyword-only
        A NumPy dtype (not a torch one) for the parameters and the computation.
    rng : None, int or numpy.random.Generator, keyword-only
        Seeds the initialisation (torch's: uniform in ``+-1/sqrt(hidden_size)``) and dropout.
    input_grad : bool, default True, keyword-only
        Whether :meth:`backward` computes the gradient with respect to ``x`` (as the other
        layers' ``input_grad``). A first layer, whose input is data, does not need it: False
        skips the first layer's product ``dG W_ih`` and ``backward`` returns None (the
        analogue of a torch input without ``requires_grad``). The parameter gradients and
        ``grad_h0`` are the same bits either way.

    :class:`LSTM` also takes torch's ``proj_size``, 0 only: projections are not supported.
    Not supported either: ``device``, and ``PackedSequence`` input (``forward``'s
    ``lengths=`` takes its place).
    """

    _gates = 1
    #: the default of layers pickled before the option existed
    input_grad = True
    #: what a backward pass leaves behind: the gradient w.r.t. the initial state
    _per_pass = {**Module._per_pass, "grad_h0": None}
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    dropout: float
    bidirectional: bool
    dtype: np.dtype

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: Any = np.float32,
        rng: _init.RngLike = None,
        input_grad: bool = True,
    ) -> None:
        super().__init__()
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: must be a positive integer, got {v!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, Real):
            raise TypeError(f"dropout: must be a real number in [0, 1), got "
                            f"{type(dropout).__name__} {dropout!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: must be in [0, 1), got {dropout}")
        if dropout > 0 and num_layers == 1:  # torch's warning, in its words
            warn_user("dropout option adds dropout after all but last recurrent layer, so "
                      "non-zero dropout expects num_layers greater than 1, but got "
                      f"dropout={dropout} and num_layers={num_layers}")
        self.dtype = check_float_dtype(dtype, TypeError)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional = bool(bidirectional)
        self.input_grad = bool(input_grad)
        self._rng = np.random.default_rng(rng)
        # torch's initialisation: every weight and bias uniform in +-1/sqrt(hidden_size).
        k = 1.0 / math.sqrt(hidden_size)
        gh = self._gates * hidden_size
        # per direction: layer 0 reads input_size values, the others the previous layer's output
        per_dir = (gh * (input_size + hidden_size)
                   + (num_layers - 1) * gh * (hidden_size * self._dirs + hidden_size)
                   + num_layers * 2 * gh * self.bias)
        n_params = self._dirs * per_dir
        # the largest parameter is drawn in float64, then cast
        largest = gh * max(input_size, hidden_size * self._dirs)
        check_fits_in_memory(n_params * self.dtype.itemsize + 8 * largest, "parameters",
                             {"input_size": input_size, "hidden_size": hidden_size,
                              "num_layers": num_layers})
        for layer in range(num_layers):
            for sfx in self._suffixes():
                in_size = input_size if layer == 0 else hidden_size * self._dirs
                shapes = [(f"weight_ih_l{layer}{sfx}", (gh, in_size)),
                          (f"weight_hh_l{layer}{sfx}", (gh, hidden_size))]
                if self.bias:
                    shapes += [(f"bias_ih_l{layer}{sfx}", (gh,)), (f"bias_hh_l{layer}{sfx}", (gh,))]
                for name, shape in shapes:
                    self.register_parameter(
                        name, self._rng.uniform(-k, k, size=shape).astype(self.dtype)
                    )

    # -------------------------------------------------------------- helpers
    @property
    def _dirs(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self) -> list[str]:
        return ["", "_reverse"] if self.bidirectional else [""]

    @property
    def _cell(self) -> str:
        raise NotImplementedError

    def _weights(self, layer: int, sfx: str) -> tuple[np.ndarray, ...]:
        p = self._parameters
        w = (p[f"weight_ih_l{layer}{sfx}"], p[f"weight_hh_l{layer}{sfx}"])
        if self.bias:
            return (*w, p[f"bias_ih_l{layer}{sfx}"], p[f"bias_hh_l{layer}{sfx}"])
        return (*w, None, None)

    def _grads_of(self, layer: int, sfx: str) -> tuple[Optional[np.ndarray], ...]:
        g = self._grads
        w = (g[f"weight_ih_l{layer}{sfx}"], g[f"weight_hh_l{layer}{sfx}"])
        if self.bias:
            return (*w, g[f"bias_ih_l{layer}{sfx}"], g[f"bias_hh_l{layer}{sfx}"])
        return (*w, None, None)

    @staticmethod
    def _untied(grads: tuple[Optional[np.ndarray], ...]
                ) -> tuple[list[Optional[np.ndarray]], list[tuple[np.ndarray, np.ndarray]]]:
        """The gradient arrays of one layer-direction for the kernel, which accumulates into
        each and refuses one array passed twice: a parameter tied to another of the same
        layer-direction (``weight_ih`` and ``weight_hh`` with ``input_size == hidden_size``, or
        the two biases) shares one gradient array, so each later use gets a zero array of its
        own, returned with the shared one to be added into it after the call."""
        out: list[Optional[np.ndarray]] = list(grads)
        tied: list[tuple[np.ndarray, np.ndarray]] = []
        for i, a in enumerate(grads):
            if a is not None and any(a is b for b in grads[:i]):
                part = np.zeros_like(a)
                out[i] = part
                tied.append((a, part))
        return out, tied

    def _cast(self, a: np.ndarray, name: str, lengths: Optional[np.ndarray] = None,
              finite: bool = False, steps: bool = False) -> np.ndarray:
        """``a`` as a C-contiguous array of the layer's dtype.

        Raises ``ValueError`` naming ``name`` for a finite value too large for that dtype
        (the cast would make it infinite; float64 into a float32 layer) and, with ``finite``,
        for NaN or infinity. ``steps``: ``a`` is time-major ``(T, B, ...)``, and the message
        gives the first bad step and sequence; with ``lengths`` only each sequence's own steps
        are checked (padding is never read).
        """
        if not finite and type(a) is np.ndarray and a.dtype == self.dtype and a.flags.c_contiguous:
            return a  # nothing to cast or check (a quarter of a one-step call's Python time)
        with np.errstate(over="ignore"):
            out = np.ascontiguousarray(a, dtype=self.dtype)
        narrows = a.dtype.kind == "f" and np.finfo(a.dtype).max > np.finfo(self.dtype).max
        if not (finite or narrows) or _core.all_finite([out]):  # one vectorised pass
            return out
        bad = ~np.isfinite(out)
        if not finite:  # NaN and infinity given as such: the kernel's check names them
            bad &= np.isfinite(a)
        if lengths is not None:
            bad &= _steps_mask(lengths, out.shape[0]).T.reshape(out.shape[:2] + (1,) * (a.ndim - 2))
        if not bad.any():
            return out
        first = tuple(np.argwhere(bad)[0])
        where = f" (at step {first[0]}, sequence {first[1]})" if steps else ""
        value = a[first]
        if np.isfinite(value):
            raise ValueError(f"{name}: value {value:g}{where} does not fit in {self.dtype} (the "
                             "layer's dtype)")
        raise ValueError(f"{name}: contains NaN or infinity{where}")

    def _check_state(self, s: Optional[np.ndarray], name: str, batch: int,
                     finite: bool = False) -> np.ndarray:
        """State ``s`` (or its gradient), ``(num_layers * D, batch, hidden_size)``, as a
        C-contiguous array of the layer's dtype (zeros for None); see :meth:`_cast`."""
        shape = (self.num_layers * self._dirs, batch, self.hidden_size)
        if s is None:
            return np.zeros(shape, self.dtype)
        s = real_array(s, name)  # a complex state would lose its imaginary part in the cast
        if s.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {s.shape}")
        return self._cast(s, name, finite=finite)

    def _unbatched_state(self, s: Optional[np.ndarray], name: str) -> Optional[np.ndarray]:
        """An unbatched state ``(num_layers * D, hidden_size)`` as a batch of one (a view).
        Messages show the shape given, not that of the batch of one."""
        if s is None:
            return None
        s = real_array(s, name)
        shape = (self.num_layers * self._dirs, self.hidden_size)
        if s.shape != shape:
            raise ValueError(f"{name}: expected shape {shape} for unbatched input, got "
                             f"{s.shape}")
        return s[:, None, :]

    @staticmethod
    def _pair(s: Any, name: str, what: str) -> tuple[Any, Any]:
        """An LSTM state (or its gradient) as its two parts: a tuple or list of two, or None."""
        if s is None:
            return None, None
        if isinstance(s, (tuple, list)) and len(s) == 2:
            return s[0], s[1]
        got = (f"a {type(s).__name__} of {len(s)}" if isinstance(s, (tuple, list))
               else f"a single {type(s).__name__}")
        raise ValueError(f"{name}: the LSTM takes a pair {what}, got {got}")

    # -------------------------------------------------------------- forward
    def forward(  # type: ignore[override]
        self, x: np.ndarray, h0: Optional[State] = None, lengths: Optional[np.ndarray] = None,
        *, hx: Optional[State] = None,
    ) -> tuple[np.ndarray, State]:
        """Run all layers and directions over ``x``.

        Parameters
        ----------
        x : ndarray
            ``(T, B, input_size)`` (``(B, T, input_size)`` if ``batch_first``) or unbatched
            ``(T, input_size)``.
        h0 : ndarray or (ndarray, ndarray), optional
            Initial state ``(num_layers * D, B, hidden_size)``; for the LSTM a pair
            ``(h0, c0)`` (a tuple or a list of two). Zeros when omitted.
        lengths : array of int, optional
            ``(B,)`` sequence lengths in ``1..T``; positions past a length are padding.
        hx : ndarray or (ndarray, ndarray), optional, keyword-only
            torch's name for ``h0``; giving both is a ``TypeError``.

        Returns
        -------
        output : ndarray
            ``(T, B, D * hidden_size)`` (batch-first or unbatched like ``x``): the last layer's
            states at every step, 0 at padded positions.
        h_n : ndarray or (ndarray, ndarray)
            Final states ``(num_layers * D, B, hidden_size)``; for the LSTM ``(h_n, c_n)``.

        Raises
        ------
        ValueError
            Naming the argument, for a shape that does not fit, NaN or infinity at a
            sequence's own steps, or a float64 value too large for a float32 layer.

        Notes
        -----
        ``backward`` uses the values of this call: in training mode ``x``, the states and
        ``lengths`` are kept as copies when they are the caller's own arrays (not when a cast
        made new ones).
        """
        if hx is not None:
            if h0 is not None:
                raise TypeError("forward: got both h0 and hx (torch's name for h0); pass one")
            h0 = hx
        x_given = x
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"x: expected a float array, got dtype {x.dtype}")
        unbatched = x.ndim == 2
        if x.ndim not in (2, 3):
            raise ValueError(f"x: expected 2 or 3 dimensions, got shape {x.shape}")
        given = x.shape  # messages show the caller's shape, not the transposed one
        if x.shape[-1] != self.input_size:
            raise ValueError(f"x: expected {self.input_size} features, got shape {given}")
        if unbatched:
            x = x[:, None, :]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        T, B = x.shape[0], x.shape[1]
        if T == 0 or B == 0:
            raise ValueError(f"x: needs at least one time step and one sequence, got shape "
                             f"{given}")
        lstm = self._gates == 4
        if lstm:
            h0, c0 = self._pair(h0, "h0", "(h0, c0)")
            h0_given, c0_given = h0, c0
            if unbatched:
                h0, c0 = self._unbatched_state(h0, "h0"), self._unbatched_state(c0, "c0")
            h0s = _private(self._check_state(h0, "h0", B), h0_given, self.training)
            c0s: Optional[np.ndarray] = _private(self._check_state(c0, "c0", B), c0_given,
                                                 self.training)
        else:
            if isinstance(h0, tuple):
                raise ValueError("h0: only the LSTM takes a pair (h0, c0)")
            h0_given = h0
            if unbatched:
                h0 = self._unbatched_state(h0, "h0")
            h0s = _private(self._check_state(h0, "h0", B), h0_given, self.training)
            c0s = None
        lens = None
        if lengths is not None:
            lens = np.asarray(lengths)
            if lens.shape != (B,) or not np.issubdtype(lens.dtype, np.integer):
                raise ValueError(f"lengths: expected {B} integers, got {lens!r}")
            bad = np.flatnonzero((lens < 1) | (lens > T))  # before the cast: no uint64 wrap
            if bad.size:
                raise ValueError(f"lengths[{bad[0]}]: must be in 1..={T} (the number of time "
                                 f"steps), got {lens[bad[0]]}")
            lens = _private(np.ascontiguousarray(lens, dtype=np.int64), lengths, self.training)
        # the kernel refuses NaN and infinity; a float64 value too large for a float32 layer
        # would become infinity in the cast, and is named here
        x = _private(self._cast(x, "x", lens, steps=True), x_given, self.training)

        hn = np.empty_like(h0s)
        cn = np.empty_like(h0s) if lstm else None
        ctx: list[Any] = []
        inp = x
        for layer in range(self.num_layers):
            outs, saved = [], []
            for d, sfx in enumerate(self._suffixes()):
                k = layer * self._dirs + d
                c0k = None if c0s is None else c0s[k]
                y, h, c, ws = _core.rnn_forward(
                    self._cell, inp, h0s[k], c0k, *self._weights(layer, sfx),
                    lengths=lens, reverse=d == 1, training=self.training,
                )
                hn[k] = h
                if cn is not None:
                    cn[k] = c
                outs.append(y)
                saved.append((h0s[k], c0k, ws))
            out = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=2)
            mask = None
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                keep = 1.0 - self.dropout
                mask = (self._rng.random(out.shape) < keep).astype(self.dtype) / self.dtype.type(
                    keep
                )
                out = out * mask
            ctx.append((inp, saved, mask))
            inp = np.ascontiguousarray(out)
        self._save(ctx, lens, unbatched, lstm)
        output = inp
        if unbatched:
            output, hn = output[:, 0, :], hn[:, 0, :]
            cn = None if cn is None else cn[:, 0, :]
        elif self.batch_first:
            output = output.transpose(1, 0, 2)
        if lstm:
            assert cn is not None
            return output, (hn, cn)
        return output, hn

    # -------------------------------------------------------------- backward
    def _ready_for_backward(self) -> tuple[Any, ...]:
        """What the last forward kept for ``backward``; RuntimeError if there was none or it
        ran in inference mode (it kept no workspace). Modules built on this layer call it
        before they accumulate any gradient of their own."""
        ctx, lens, unbatched, lstm = self._saved()
        if ctx and ctx[0][1] and ctx[0][1][0][2] is None:
            raise RuntimeError("backward() needs the last forward pass to run in training mode "
                               "(call train() before forward)")
        return ctx, lens, unbatched, lstm

    def backward(  # type: ignore[override]
        self, grad_out: Optional[np.ndarray], grad_hn: Optional[State] = None
    ) -> Optional[np.ndarray]:
        """Backpropagate through all layers and time steps (BPTT).

        Parameters
        ----------
        grad_out : ndarray or None
            Gradient of the loss w.r.t. ``output`` (same shape); None: zeros (only ``h_n``
            reaches the loss, as in a many-to-one model).
        grad_hn : ndarray or (ndarray, ndarray), optional
            Gradient w.r.t. ``h_n`` (LSTM: ``(grad_h_n, grad_c_n)``); zeros when omitted.
            ``grad_out`` and ``grad_hn`` cannot both be None.

        Returns
        -------
        ndarray or None
            Gradient w.r.t. ``x`` (same layout as ``x``); None with ``input_grad=False``.
            Parameter gradients are accumulated; the gradient w.r.t. the initial state is kept
            in ``grad_h0`` (LSTM: ``(dh0, dc0)``).

        Raises
        ------
        ValueError
            Naming the argument, for a shape that does not fit, or NaN or infinity (at a
            sequence's own steps). Every argument is checked before the first gradient is
            accumulated, so a failing call changes no gradient.
        """
        ctx, lens, unbatched, lstm = self._ready_for_backward()
        T, B = ctx[0][0].shape[0], ctx[0][0].shape[1]
        H = self._dirs * self.hidden_size
        if grad_out is None:
            if grad_hn is None:
                raise ValueError("backward: grad_out and grad_hn are both None; pass the "
                                 "gradient of the output, of h_n, or both")
            g = np.zeros((T, B, H), self.dtype)
        else:
            g = real_array(grad_out, "grad_out")
            want = (T, H) if unbatched else (B, T, H) if self.batch_first else (T, B, H)
            if g.shape != want:
                raise ValueError(f"grad_out: expected the output's shape {want}, got {g.shape}")
            if unbatched:
                g = g[:, None, :]
            elif self.batch_first:
                g = g.transpose(1, 0, 2)
            g = self._cast(g, "grad_out", lens, finite=True, steps=True)
        shape = (self.num_layers * self._dirs, B, self.hidden_size)
        if lstm:
            ghn, gcn = self._pair(grad_hn, "grad_hn", "(grad_h_n, grad_c_n)")
        elif isinstance(grad_hn, tuple):
            raise ValueError("grad_hn: only the LSTM takes a pair; pass the gradient of h_n")
        else:
            ghn, gcn = grad_hn, None
        # the LSTM's parts are named as passed, grad_hn=(grad_h_n, grad_c_n)
        hname, cname = ("grad_hn[0]", "grad_hn[1]") if lstm else ("grad_hn", "")
        if unbatched:
            ghn = self._unbatched_state(ghn, hname)
            gcn = self._unbatched_state(gcn, cname)
        dhn = self._check_state(ghn, hname, B, finite=True)
        dcn = self._check_state(gcn, cname, B, finite=True) if lstm else None
        # everything the caller passed is checked: from here on gradients are accumulated
        dh0 = np.empty(shape, self.dtype)
        dc0 = np.empty(shape, self.dtype) if lstm else None
        H = self.hidden_size
        for layer in reversed(range(self.num_layers)):
            inp, saved, mask = ctx[layer]
            if mask is not None:
                g = g * mask
            dx = None
            for d, sfx in enumerate(self._suffixes()):
                k = layer * self._dirs + d
                h0k, c0k, ws = saved[d]
                dy = np.ascontiguousarray(g[:, :, d * H:(d + 1) * H])
                grads, tied = self._untied(self._grads_of(layer, sfx))
                dxd, dh, dc = _core.rnn_backward(
                    self._cell, inp, h0k, c0k, *self._weights(layer, sfx), ws, dy, dhn[k],
                    None if dcn is None else dcn[k], *grads,
                    lengths=lens, reverse=d == 1, input_grad=layer > 0 or self.input_grad,
                )
                for shared, part in tied:
                    shared += part
                dh0[k] = dh
                if dc0 is not None:
                    dc0[k] = dc
                if dxd is not None:
                    dx = dxd if dx is None else dx + dxd
            g = dx
        if unbatched:
            dh0 = dh0[:, 0, :]
            dc0 = None if dc0 is None else dc0[:, 0, :]
        self.grad_h0 = (dh0, dc0) if lstm else dh0
        if g is None:  # input_grad=False
            return None
        if unbatched:
            g = g[:, 0, :]
        elif self.batch_first:
            g = g.transpose(1, 0, 2)
        return g

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman network, ``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` (``torch.nn.RNN``).

    ``nonlinearity`` is ``"tanh"`` (default) or ``"relu"``; the other parameters are those of
    :class:`RNNBase` (torch's; no ``proj_size``, ``device`` or torch dtype).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *, dtype: Any = np.float32,
                 rng: _init.RngLike = None, input_grad: bool = True) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype=dtype, rng=rng, input_grad=input_grad)
        self.nonlinearity = nonlinearity

    @property
    def _cell(self) -> str:
        return f"rnn_{self.nonlinearity}"

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.nonlinearity == "tanh":
            return s
        head = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        # torch's order of the arguments: nonlinearity after num_layers
        return f"{head}, nonlinearity={self.nonlinearity!r}{s[len(head):]}"


class GRU(RNNBase):
    """Gated recurrent unit (``torch.nn.GRU``), gates r, z, n in the weight rows.

    ``r = s(W_ir x + b_ir + W_hr h + b_hr)``, ``z`` likewise,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``.
    """

    _gates = 3

    @property
    def _cell(self) -> str:
        return "gru"


class LSTM(RNNBase):
    """Long short-term memory (``torch.nn.LSTM``), gates i, f, g, o in the weight rows.

    ``i, f, o = s(W x + b + W h + b)``, ``g = tanh(...)``, ``c' = f * c + i * g``,
    ``h' = o * tanh(c')``. States are pairs ``(h, c)``.

    The parameters are those of :class:`RNNBase` (torch's), and torch's ``proj_size`` in its
    place after ``bidirectional``: only 0 (no projection). LSTM projections are not
    supported, so ``proj_size > 0`` raises ``ValueError`` (and a torch state dict of a
    projected LSTM, with its ``weight_hr_l*`` keys, does not load). Not supported either:
    ``device``, torch dtypes and ``PackedSequence`` input (``lengths=`` takes its place).
    """

    _gates = 4
    proj_size = 0

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, *, dtype: Any = np.float32,
                 rng: _init.RngLike = None, input_grad: bool = True) -> None:
        if isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer)):
            raise TypeError(f"proj_size: expected an integer (0), got "
                            f"{type(proj_size).__name__} {proj_size!r}")
        if proj_size != 0:
            raise ValueError(f"proj_size: LSTM projections (torch's proj_size > 0) are not "
                             f"supported, only proj_size=0; got {proj_size}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype=dtype, rng=rng, input_grad=input_grad)

    @property
    def _cell(self) -> str:
        return "lstm"
