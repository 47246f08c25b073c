"""Sequence estimators with scikit-learn conventions: :class:`SequenceRegressor` (forecasting,
many-to-one and many-to-many) and :class:`SequenceClassifier`.

``X`` is ``(n_samples, n_steps, n_features)``, or ``(n_samples, n_steps)`` for univariate
sequences, or (many-to-one, ``output="last"``) a list of sequences of different lengths, each
``(n_steps_i, n_features)`` or ``(n_steps_i,)``. A stack of recurrent layers (:mod:`nesy.rnn`)
reads each sequence; a linear head maps the final state (``output="last"``; for a shorter
sequence, its state at its own last step) or every step's state (``output="sequence"``) to the
targets. Inputs and regression targets are standardised with the training statistics;
training uses nesy's Adam, mini-batches and early stopping on a held-out fraction.

Sequences of different lengths are padded to the longest for training, with their lengths
passed to the recurrent layers (padding never reaches an output, a final state or a gradient);
inside the estimator a padded batch carries its mask as one extra input channel, so that the
trainer's mini-batches slice it with the data. Predictions run each group of equal length
unpadded.
"""

from __future__ import annotations

import re
from numbers import Real
from typing import Any, Optional

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import check_array, column_or_1d
from sklearn.utils.validation import check_is_fitted

from nesy._checks import check_float_dtype, check_int, label_encoder, warn_user
from nesy.nn import CrossEntropyLoss, Dense, EarlyStopping, MSELoss, Trainer
from nesy.nn.activations import softmax
from nesy.nn.estimators import _check_param
from nesy.nn.module import Module, real_array
from nesy.optim import Adam
from nesy.rnn.layers import GRU, LSTM, RNN, _steps_mask

_CELLS = {"rnn": RNN, "gru": GRU, "lstm": LSTM}
#: The default ``validation_fraction``; another value is the user's, who is warned when it
#: cannot be honoured.
_VALIDATION_FRACTION = 0.1
#: Fewest samples a validation split is made from.
_MIN_SPLIT = 10


def _check_array(a: Any, name: str, est: Any, dtype: Any, **kwargs: Any) -> np.ndarray:
    """scikit-learn's ``check_array`` as ``dtype``, its messages (which scikit-learn's own checks
    and users recognise) prefixed with the argument's name where they do not give it."""
    given = getattr(a, "dtype", None)
    if isinstance(given, np.dtype) and given.kind == "c":
        # scikit-learn's wording, without its dump of the whole array
        raise ValueError(f"{name}: Complex data not supported; expected real numbers, got "
                         f"dtype {given}")
    try:
        return check_array(a, dtype=dtype, input_name=name, estimator=est, **kwargs)
    except (TypeError, ValueError) as e:
        if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", str(e)):
            raise
        raise type(e)(f"{name}: {e}") from e


def _standardisation(A: np.ndarray, name: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Means and scales of the columns of ``A`` (n_values, n_columns), in float64.

    The scale is the standard deviation, or 1 where it is zero or negligible next to the mean
    (the bound of scikit-learn's ``StandardScaler`` on the rounding error of the variance):
    a constant column is only centred, and a column of small values (a std of 1e-9) is scaled
    like any other, not wiped out by an absolute epsilon. Float64 sums do not overflow where
    float32 ones would (1e20 squared).

    Raises
    ------
    ValueError
        Naming ``name`` and the column (``what`` ``j``), when a mean or standard deviation
        overflows float64 (values near the float range are finite, but cannot be
        standardised).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean = A.mean(axis=0, dtype=np.float64)
        var = A.var(axis=0, dtype=np.float64)
        n, eps = A.shape[0], np.finfo(np.float64).eps
        constant = var <= n * eps * var + (n * mean * eps) ** 2
    bad = ~(np.isfinite(mean) & np.isfinite(var))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: values too large to standardise ({what} {j}: its mean or "
                         "standard deviation overflows float64); rescale it first")
    return mean, np.where(constant, 1.0, np.sqrt(var))


def _standardised(X: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                  mask: Optional[np.ndarray] = None) -> np.ndarray:
    """``(X - mean) / scale`` (zero where ``mask``, ``(n, n_steps)``, is False), a new
    C-contiguous array of X's dtype.

    The float64 statistics of :func:`_standardisation` are applied in X's dtype: in float64
    a float32 ``X`` would make two float64 temporaries of four times its size. The mean is
    subtracted in two parts, its value in X's dtype and the rest: the mean of a feature whose
    spread is a few of its float32 steps (1e6 +- 0.1) would otherwise move by up to half a
    step, a large part of a standard deviation. So the result is the float64 one cast to X's
    dtype up to X's rounding, except where ``X - mean`` overflows float32 (values near the
    float32 range of both signs); that is computed in float64, as the float64 result is finite.
    """
    dt = X.dtype
    hi = mean.astype(dt)
    lo = (mean - hi).astype(dt)  # zeros for a float64 X: the float64 result exactly
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is caught just below
        Z = X - hi
        Z -= lo
        Z /= scale.astype(dt)
        if mask is not None:
            Z *= mask[:, :, None]
    # one pass in float64 buffers (no temporary of X's size): finite iff every value is
    if np.isfinite(Z.sum(dtype=np.float64)):
        return np.ascontiguousarray(Z)  # X - mean keeps the layout of X (Fortran order)
    Z64 = (X - mean) / scale
    if mask is not None:
        Z64 *= mask[:, :, None]
    return np.ascontiguousarray(Z64, dtype=dt)


def _check_fraction(value: Any, name: str) -> float:
    """``value`` as a float in ``[0, 1)`` (as ``GraphClassifier``'s fractions)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name}: expected a number in [0, 1), got {type(value).__name__} "
                        f"{value!r}")
    v = float(value)
    if not 0.0 <= v < 1.0:  # NaN fails too
        raise ValueError(f"{name}: expected a value in [0, 1), got {value!r}")
    return v


def _ragged(X: Any) -> Optional[list[Any]]:
    """The sequences of ``X`` when it is a 1-D object array or Series of sequences, or a list
    (or tuple) of sequences of different shapes; None otherwise (one array, or a list that
    stacks into one), for scikit-learn's ``check_array``."""
    dt = getattr(X, "dtype", None)
    if isinstance(dt, np.dtype) and dt.kind == "O" and np.ndim(X) == 1 and len(X) > 0:
        return list(X)
    if not isinstance(X, (list, tuple)) or len(X) == 0:
        return None
    try:
        shapes = {np.shape(x) for x in X}
    except (TypeError, ValueError):  # left to check_array, which names the problem
        return None
    return list(X) if len(shapes) > 1 else None


def _pad(seqs: list[Any], est: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sequences ``(n_steps_i[, n_features])`` as ``(n, max n_steps_i, n_features)``, zero
    after each one's end, and their lengths; each checked as scikit-learn checks an array
    (the messages name ``X[i]``)."""
    arrs: list[np.ndarray] = []
    for i, x in enumerate(seqs):
        a = _check_array(x, f"X[{i}]", est, dtype, ensure_2d=False)
        a = a[:, None] if a.ndim == 1 else a
        if arrs and a.shape[1] != arrs[0].shape[1]:
            raise ValueError(f"X[{i}]: has {a.shape[1]} features, X[0] has {arrs[0].shape[1]}")
        arrs.append(a)
    lengths = np.array([a.shape[0] for a in arrs], dtype=np.int64)
    out = np.zeros((len(arrs), int(lengths.max()), arrs[0].shape[1]), dtype)
    for row, a in zip(out, arrs):
        row[: a.shape[0]] = a
    return out, lengths


class SequenceNet(Module):
    """Recurrent layers and a linear head: ``(B, T, F) -> (B, n_out)`` (``output="last"``, from
    the top layer's final states, both directions when bidirectional) or ``(B, T, n_out)``
    (``output="sequence"``).

    With ``masked=True`` (``output="last"`` only) the input is ``(B, T, F + 1)``: the last
    channel is 1 at a sequence's steps and 0 at its padding, which must follow them; each
    sequence's length is its count of ones, and the batch is cut to its longest sequence."""

    masked = False  # the default of networks pickled before the option existed
    #: the state reached by the last forward pass (for truncated BPTT) is not pickled
    _per_pass = {**Module._per_pass, "state_": None}

    def __init__(self, cell: str, n_features: int, hidden_size: int, n_out: int,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 output: str = "last", dtype: Any = np.float32, rng: Any = None,
                 masked: bool = False) -> None:
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"cell: expected one of {sorted(_CELLS)}, got {cell!r}")
        if output not in ("last", "sequence"):
            raise ValueError(f"output: expected 'last' or 'sequence', got {output!r}")
        if masked and output != "last":
            raise ValueError("masked: sequences of different lengths need output='last'")
        rng = np.random.default_rng(rng)
        self.output = output
        self.masked = bool(masked)
        self.rnn = _CELLS[cell](n_features, hidden_size, num_layers, batch_first=True,
                                dropout=dropout, bidirectional=bidirectional, dtype=dtype,
                                rng=rng)
        dirs = 2 if bidirectional else 1
        self.head = Dense(dirs * hidden_size, n_out, dtype=dtype, rng=rng)

    def forward(self, x: np.ndarray, state: Any = None) -> np.ndarray:  # type: ignore[override]
        """Outputs for ``x`` ``(B, T, F)`` from the initial ``state`` (zeros when None; for the
        LSTM a pair); the state reached is kept in ``state_`` (for truncated BPTT)."""
        lengths, in_shape = None, None
        if self.masked:
            x = np.asarray(x)
            if x.ndim != 3 or x.shape[2] < 2:
                raise ValueError(f"x: a masked batch is (B, T, F + 1), got shape {x.shape}")
            lengths = np.count_nonzero(x[:, :, -1], axis=1)
            if lengths.min(initial=1) < 1:
                raise ValueError("x: a masked batch needs at least one step per sequence")
            in_shape = x.shape
            x = x[:, : int(lengths.max()), :-1]
        out, hn = self.rnn(x, state, lengths)
        self.state_ = (hn[0].copy(), hn[1].copy()) if isinstance(hn, tuple) else hn.copy()
        if self.output == "sequence":
            B, T, _ = out.shape
            y = self.head(out.reshape(B * T, -1))
            self._save(out.shape, None, None)
            return y.reshape(B, T, -1)
        h = hn[0] if isinstance(hn, tuple) else hn
        dirs = 2 if self.rnn.bidirectional else 1
        top = h[-dirs:]  # (D, B, H): the top layer's final states
        feats = np.ascontiguousarray(top.transpose(1, 0, 2).reshape(top.shape[1], -1))
        self._save(out.shape, hn, in_shape)
        return self.head(feats)

    def backward(self, grad_out: np.ndarray) -> Optional[np.ndarray]:
        """Backpropagate ``grad_out`` (the shape of the last forward's output). Everything is
        checked before the head or the recurrent layers accumulate a gradient."""
        out_shape, hn, in_shape = self._saved()
        self.rnn._ready_for_backward()  # the head's gradients must not change if this fails
        B = out_shape[0]
        want = (B, out_shape[1], self.head.out_features) if self.output == "sequence" else (
            B, self.head.out_features)
        g = real_array(grad_out, "grad_out")
        if g.shape != want:
            raise ValueError(f"grad_out: expected the output's shape {want}, got {g.shape}")
        if not np.isfinite(g).all():
            raise ValueError("grad_out: contains NaN or infinity")
        if self.output == "sequence":
            g = self.head.backward(g.reshape(B * out_shape[1], -1))
            return self.rnn.backward(g.reshape(out_shape))
        g = self.head.backward(g)  # (B, D*H)
        dirs = 2 if self.rnn.bidirectional else 1
        h = hn[0] if isinstance(hn, tuple) else hn
        gh = np.zeros_like(h)
        gh[-dirs:] = g.reshape(g.shape[0], dirs, -1).transpose(1, 0, 2)
        grad_hn = (gh, np.zeros_like(gh)) if isinstance(hn, tuple) else gh
        gx = self.rnn.backward(None, grad_hn)  # only h_n reaches the head
        if in_shape is None or gx is None:
            return gx
        full = np.zeros(in_shape, gx.dtype)  # the mask channel and the cut steps: 0
        full[:, : gx.shape[1], :-1] = gx
        return full


class _SequenceEstimator(BaseEstimator):
    """Shared fitting logic; subclasses define the loss, the targets and the predictions."""

    def __init__(self, cell: str = "gru", hidden_size: int = 32, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, output: str = "last",
                 learning_rate: float = 1e-2, weight_decay: float = 0.0, epochs: int = 200,
                 batch_size: int = 32, validation_fraction: float = _VALIDATION_FRACTION,
                 patience: int = 20,
                 tbptt: Optional[int] = None, dtype: str = "float32",
                 random_state: Optional[int] = None, verbose: int = 0) -> None:
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.output = output
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.tbptt = tbptt
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ input handling
    def _check_X(self, X: Any, fitting: bool) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """``(X, lengths)``: ``X`` as ``(n, T, F)`` of the estimator's dtype and ``lengths``
        None, or, for sequences of different lengths, zero-padded to the longest with each
        one's length. Scaled with the fitted statistics unless ``fitting`` (then unscaled:
        :meth:`_fit` computes the statistics and scales it). scikit-learn's ``check_array``
        refuses sparse, complex, non-numeric, 1-D, empty and non-finite input with its standard
        messages (which name ``X``, or ``X[i]`` for one sequence of a list)."""
        dt = self._dtype()
        seqs = _ragged(X)
        lengths = None
        if seqs is not None:
            X, lengths = _pad(seqs, self, dt)
            if (lengths == X.shape[1]).all():
                lengths = None  # one length after all: an ordinary array
        else:
            X = _check_array(X, "X", self, dt, accept_sparse=False, allow_nd=True)
            if X.ndim == 2:
                X = X[:, :, None]  # univariate sequences: the second axis is time
        if X.ndim != 3:
            raise ValueError(f"X: expected (n_samples, n_steps[, n_features]), got {X.shape}")
        if X.shape[1] == 0 or X.shape[2] == 0:
            raise ValueError(f"X: needs at least one step and one feature, got {X.shape}")
        if lengths is not None and self.output != "last":
            raise ValueError("X: sequences of different lengths need output='last' (one "
                             "target per sequence)")
        if fitting:
            return X, lengths
        if X.shape[2] != self.n_features_in_:
            raise ValueError(f"X: has {X.shape[2]} features, the estimator was fitted with "
                             f"{self.n_features_in_}")
        mask = None if lengths is None else _steps_mask(lengths, X.shape[1])
        return _standardised(X, self.x_mean_, self.x_scale_, mask), lengths

    def _check_y_given(self, y: Any) -> None:
        if y is None:  # scikit-learn's wording, which its tools recognise
            raise ValueError(f"y: {type(self).__name__} requires y to be passed, but the "
                             "target y is None")

    def _dtype(self) -> np.dtype:
        """The ``dtype`` option (None: float64), a ValueError naming it otherwise."""
        return check_float_dtype(self.dtype)

    def _check_options(self) -> None:
        """Every option, checked before anything is built or changed (the errors name it)."""
        self._dtype()
        if self.cell not in _CELLS:
            raise ValueError(f"cell: expected one of {sorted(_CELLS)}, got {self.cell!r}")
        if self.output not in ("last", "sequence"):
            raise ValueError(f"output: expected 'last' or 'sequence', got {self.output!r}")
        for name in ("hidden_size", "num_layers", "epochs", "batch_size"):
            check_int(name, getattr(self, name), 1)
        check_int("patience", self.patience, 0)  # as EarlyStopping: 0 stops at the first miss
        if self.tbptt is not None:
            check_int("tbptt", self.tbptt, 1)
        _check_fraction(self.dropout, "dropout")
        _check_fraction(self.validation_fraction, "validation_fraction")
        # as GraphClassifier: the optimizer's own check would name param_groups[0]['lr']
        for name, low_open in (("learning_rate", True), ("weight_decay", False)):
            value = getattr(self, name)
            _check_param(name, value, Real, 0.0, low_open=low_open)  # refuses inf and NaN
        if self.tbptt is not None and self.output != "sequence":
            raise ValueError("tbptt: truncated BPTT needs a target per step (output='sequence')")
        if self.tbptt is not None and self.bidirectional:
            raise ValueError("tbptt: a bidirectional model reads each sequence from both ends, "
                             "which chunks of it cannot; use bidirectional=False")
        if self.dropout > 0 and self.num_layers == 1:  # called by fit: the warning names it
            warn_user(f"dropout: {self.dropout} has no effect with num_layers=1 (dropout "
                      "is applied between recurrent layers only); use num_layers >= 2, "
                      "or dropout=0")

    def _fit(self, X: np.ndarray, Y: np.ndarray, n_out: int, loss: Any,
             fitted: dict[str, Any], lengths: Optional[np.ndarray] = None) -> None:
        """Trains a new model on unscaled ``X`` (zero-padded sequences of ``lengths`` when
        given) and prepared targets ``Y``, then sets every fitted attribute at once
        (``fitted`` holds the target-side ones): a fit that raises leaves a fitted estimator
        as it was, and an unfitted one unfitted."""
        dt = X.dtype
        if lengths is None:
            x_mean, x_scale = _standardisation(X.reshape(-1, X.shape[2]), "X", "feature")
            X = _standardised(X, x_mean, x_scale)
        else:  # statistics of the sequences' own steps; padding stays 0, the mask appended
            mask = _steps_mask(lengths, X.shape[1])
            x_mean, x_scale = _standardisation(X[mask], "X", "feature")
            X = np.concatenate([_standardised(X, x_mean, x_scale, mask),
                                mask[:, :, None].astype(dt)], axis=2)
        rng = np.random.default_rng(self.random_state)
        n = X.shape[0]
        n_val = int(round(self.validation_fraction * n)) if n >= _MIN_SPLIT else 0
        if n_val >= n:  # a fraction close to 1 of a few samples
            raise ValueError(f"validation_fraction: {self.validation_fraction} of {n} samples "
                             "leaves none to train on")
        if n_val == 0 and self.validation_fraction > 0 \
                and self.validation_fraction != _VALIDATION_FRACTION:  # the user's own value
            why = (f"a validation split needs at least {_MIN_SPLIT} samples, got {n}"
                   if n < _MIN_SPLIT else f"{self.validation_fraction} of {n} samples rounds "
                   "to none")
            warn_user(f"validation_fraction: {why}; training without validation or early "
                      "stopping, on all samples for all epochs")
        order = rng.permutation(n)
        val, tr = order[:n_val], order[n_val:]
        n_features = X.shape[2] - (lengths is not None)
        # one layer has no dropout (fit has warned): the layer would warn again
        dropout = self.dropout if self.num_layers > 1 else 0.0
        model = SequenceNet(self.cell, n_features, self.hidden_size, n_out, self.num_layers,
                            self.bidirectional, dropout, self.output, dtype=dt, rng=rng,
                            masked=lengths is not None)
        opt = Adam(model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        es = EarlyStopping(patience=self.patience, monitor="val_loss") if n_val else None
        trainer = Trainer(model, loss, opt, batch_size=self.batch_size,
                          epochs=self.epochs, seed=int(rng.integers(2**31)),
                          early_stopping=es, verbose=self.verbose, tbptt=self.tbptt)
        vdata = (X[val], Y[val]) if n_val else None
        model.rnn.input_grad = False  # the data's gradient is never used: skip its product
        try:
            history = trainer.fit(X[tr], Y[tr], validation_data=vdata)
        finally:
            model.rnn.input_grad = True  # model_ is a plain network again
        for name, value in fitted.items():
            setattr(self, name, value)
        self.n_features_in_ = n_features
        self.x_mean_, self.x_scale_ = x_mean, x_scale
        self.model_, self.history_ = model, history

    def _raw(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X, lengths = self._check_X(X, fitting=False)
        model = self.model_
        model.eval()

        def run(x: np.ndarray) -> np.ndarray:
            if getattr(model, "masked", False):  # every step of x is a sequence's own
                x = np.concatenate([x, np.ones((*x.shape[:2], 1), x.dtype)], axis=2)
            return np.concatenate([model(x[i:i + 1024]) for i in range(0, x.shape[0], 1024)])

        if lengths is None:
            return run(X)
        out = None
        for n_steps in np.unique(lengths):  # each group of one length unpadded
            rows = np.flatnonzero(lengths == n_steps)
            got = run(np.ascontiguousarray(X[rows, :n_steps]))
            if out is None:
                out = np.empty((X.shape[0], *got.shape[1:]), got.dtype)
            out[rows] = got
        assert out is not None
        return out


class SequenceRegressor(RegressorMixin, _SequenceEstimator):
    """Regression on sequences (forecasting): GRU, LSTM or Elman layers and a linear head.

    Parameters
    ----------
    cell : {"gru", "lstm", "rnn"}
    hidden_size, num_layers, bidirectional
        As :class:`nesy.rnn.GRU`.
    dropout : float, default 0.0
        Dropout between stacked recurrent layers in training (as torch's): it needs
        ``num_layers >= 2``; with one layer it has no effect, and ``fit`` warns.
    output : {"last", "sequence"}
        ``"last"`` (many-to-one): ``y`` is ``(n_samples,)`` or ``(n_samples, n_targets)``.
        ``"sequence"`` (many-to-many): ``y`` is ``(n_samples, n_steps)`` or
        ``(n_samples, n_steps, n_targets)``, one target per step.
    learning_rate, weight_decay : float
        Of the Adam optimizer.
    epochs : int, default 200
        Largest number of passes over the training samples.
    batch_size : int, default 32
    validation_fraction : float, default 0.1
        Fraction of the samples held out for early stopping on the validation loss (the mean
        squared error of the standardised targets for the regressor, the cross-entropy for
        the classifier): training stops after ``patience`` epochs without a lower one, and
        the parameters of the best epoch are put back. 0: no validation, all epochs on all
        samples. A split needs at least 10 samples: with fewer (or a fraction that rounds to
        no sample) there is none either, and ``fit`` warns when ``validation_fraction`` is
        not the default.
    patience : int, default 20
        Epochs without a lower validation loss before stopping (0: at the first).
    tbptt : int, optional
        With ``output="sequence"``: truncated backpropagation through time in chunks of this
        many steps, the state carried from chunk to chunk (long sequences).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the parameters and of the computation (float64: for gradient checks or
        ill-conditioned data, at about half the speed).
    random_state : int, optional
        Seeds initialisation, the validation split and shuffling.
    verbose : int, default 0
        1: a progress bar over the epochs.

    Attributes
    ----------
    model_ : SequenceNet
    history_ : nesy.nn.History
    n_features_in_ : int
    """

    def fit(self, X: Any, y: Any) -> SequenceRegressor:
        """Fit on sequences ``X`` and targets ``y``; returns self. ``X`` may be a list of
        sequences of different lengths (``output="last"``)."""
        self._check_options()
        self._check_y_given(y)
        Xs, lengths = self._check_X(X, fitting=True)
        # float64: the targets are standardised before the cast to the network's dtype
        y = _check_array(y, "y", self, np.float64, ensure_2d=False, allow_nd=True)
        want = 1 if self.output == "last" else 2
        if y.ndim not in (want, want + 1) or y.shape[0] != Xs.shape[0]:
            shape = "(n_samples[, n_targets])" if want == 1 else "(n_samples, n_steps[, n_targets])"
            of = Xs.shape[:2] if lengths is None else f"({Xs.shape[0]} sequences)"
            raise ValueError(f"y: expected {shape} matching X {of}, got {y.shape}")
        if self.output == "sequence" and y.shape[1] != Xs.shape[1]:
            raise ValueError(f"y: has {y.shape[1]} steps, X has {Xs.shape[1]}")
        Y = y.reshape(*y.shape[:want], -1)
        y_mean, y_scale = _standardisation(Y.reshape(-1, Y.shape[-1]), "y", "target")
        Ys = ((Y - y_mean) / y_scale).astype(Xs.dtype)
        self._fit(Xs, Ys, Y.shape[-1], MSELoss(),
                  {"_y_ndim": y.ndim, "y_mean_": y_mean, "y_scale_": y_scale}, lengths)
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y may be (n_samples, n_targets)
        return tags

    def predict(self, X: Any) -> np.ndarray:
        """Predictions, shaped like the ``y`` given to :meth:`fit`."""
        # float64, as scikit-learn's regressors return (the network may run in float32)
        out = self._raw(X).astype(np.float64) * self.y_scale_ + self.y_mean_
        single = self._y_ndim == (1 if self.output == "last" else 2)  # y had no target axis
        return out[..., 0] if single else out

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² of :meth:`predict` on ``y``, for every shape of ``y`` that :meth:`fit` takes:
        ``(n_samples, n_steps, n_targets)`` counts each step's target as one output, as
        ``(n_samples, n_steps)`` counts each step, and the outputs' R² are averaged
        (scikit-learn's ``r2_score``, ``multioutput="uniform_average"``)."""
        pred = self.predict(X)
        if pred.ndim > 2 or np.ndim(y) > 2:
            y = _check_array(y, "y", self, np.float64, ensure_2d=False, allow_nd=True)
            if y.shape != pred.shape:
                raise ValueError(f"y: expected shape {pred.shape} (the predictions'), got "
                                 f"{y.shape}")
            y, pred = y.reshape(len(y), -1), pred.reshape(len(pred), -1)
        return float(r2_score(y, pred, sample_weight=sample_weight))


class SequenceClassifier(ClassifierMixin, _SequenceEstimator):
    """Classification of whole sequences (many-to-one): recurrent layers, a linear head and
    cross-entropy. Parameters as :class:`SequenceRegressor` (``output`` must be ``"last"``);
    early stopping watches the cross-entropy of the held-out samples.

    Attributes
    ----------
    classes_ : ndarray
        The class labels seen in :meth:`fit`.
    """

    def fit(self, X: Any, y: Any) -> SequenceClassifier:
        """Fit on sequences ``X`` (an array, or a list of sequences of different lengths) and
        labels ``y`` (n_samples,); returns self."""
        if self.output != "last":
            raise ValueError("output: a SequenceClassifier labels whole sequences ('last')")
        self._check_options()
        self._check_y_given(y)
        Xs, lengths = self._check_X(X, fitting=True)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)  # DataConversionWarning, as scikit-learn's own
        if y.ndim != 1 or y.shape[0] != Xs.shape[0]:
            raise ValueError(f"y: expected {Xs.shape[0]} labels, got shape {y.shape}")
        encoder = label_encoder(y)  # refuses continuous, NaN and None labels, mixed types
        self._fit(Xs, encoder.transform(y), len(encoder.classes_), CrossEntropyLoss(),
                  {"_encoder": encoder, "classes_": encoder.classes_}, lengths)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``."""
        return softmax(self._raw(X).astype(np.float64), axis=-1)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each sequence."""
        check_is_fitted(self, "model_")
        return self.classes_[np.argmax(self._raw(X), axis=1)]
