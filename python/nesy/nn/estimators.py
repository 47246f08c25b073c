"""Multi-layer perceptrons with scikit-learn conventions: :class:`MLPClassifier` and
:class:`MLPRegressor`.

``X`` is ``(n_samples, n_features)``. A stack of :class:`~nesy.nn.Dense` layers and activations
(:func:`make_mlp`) is trained by :class:`~nesy.nn.Trainer` with a nesy optimizer
(``solver``), an optional learning-rate schedule and early stopping on a held-out fraction.
Inputs (and regression targets) are standardised with the training statistics. Both estimators
pass ``sklearn.utils.estimator_checks.check_estimator``::

    from nesy.nn import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(64,), random_state=0).fit(X_train, y_train)
    clf.score(X_test, y_test)
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, Optional, Sequence, Tuple

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from nesy import optim
from nesy._checks import (
    check_bool,
    check_fits_in_memory,
    check_float_dtype,
    check_seed,
    check_verbose,
    label_encoder,
    warn_user,
)
from nesy._fit import keeps_state_on_error
from nesy.nn.activations import get_activation, softmax
from nesy.nn.layers import Dense, Dropout, Sequential
from nesy.nn.losses import CrossEntropyLoss, Loss, MSELoss
from nesy.nn.trainer import EarlyStopping, Trainer, predict

__all__ = ["MLPClassifier", "MLPRegressor", "make_mlp"]

#: ``solver`` names and the nesy optimizer each one builds.
SOLVERS = {
    "adam": optim.Adam, "adamw": optim.AdamW, "nadam": optim.NAdam, "adamax": optim.Adamax,
    "adamhd": optim.AdamHD, "sgd": optim.SGD, "sgdhd": optim.SGDHD, "rmsprop": optim.RMSprop,
    "adagrad": optim.Adagrad, "lion": optim.Lion, "radam": optim.RAdam,
}
SCHEDULES = (None, "cosine", "plateau")
#: Solvers that adapt their learning rate at every step (hypergradient descent).
HD_SOLVERS = ("adamhd", "sgdhd")


def make_mlp(n_in: int, hidden_layer_sizes: Sequence[int], n_out: int,
             activation: str = "relu", dropout: float = 0.0, dtype: Any = np.float64,
             rng: Any = None) -> Sequential:
    """``Dense -> activation [-> Dropout]`` per hidden layer, then a linear ``Dense`` output.

    Parameters
    ----------
    n_in, n_out : int
        Input features and outputs (logits for classification).
    hidden_layer_sizes : sequence of int
        Width of each hidden layer; empty for a linear model.
    activation : str
        Any name :func:`nesy.nn.get_activation` knows (``"relu"``, ``"tanh"``, ``"gelu"``, ...).
    dropout : float
        Dropout probability after each hidden activation (0 for none).
    dtype : {np.float32, np.float64}
    rng : None, int or numpy.random.Generator

    Returns
    -------
    Sequential
        Maps ``(n_samples, n_in)`` to ``(n_samples, n_out)``; hidden layers ``Dense`` sit at
        even positions ``0, 2, ...`` (``3`` apart with dropout).
    """
    rng = np.random.default_rng(check_seed("rng", rng))
    init = "he_uniform" if activation in ("relu", "leaky_relu", "gelu") else "glorot_uniform"
    net = Sequential()
    width = int(n_in)
    for h in hidden_layer_sizes:
        net.append(Dense(width, int(h), dtype=dtype, init=init, rng=rng))
        net.append(get_activation(activation))
        if dropout > 0:
            net.append(Dropout(dropout, rng=rng))
        width = int(h)
    net.append(Dense(width, int(n_out), dtype=dtype, rng=rng))
    return net


def _check_param(name: str, value: Any, kind: type, low: float, high: float = np.inf,
                 low_open: bool = False) -> None:
    """``value`` is a ``kind`` (``Integral`` or ``Real``) in the range (finite: an unbounded
    range excludes infinity): ``TypeError`` for another kind of value (a string, a bool),
    ``ValueError`` for one out of the range (NaN included), as :mod:`nesy._checks`."""
    what = "an integer" if kind is Integral else "a number"
    lo = "(" if low_open else "["
    hi = "]" if high < np.inf else ")"
    want = f"{name}: expected {what} in {lo}{low}, {high}{hi}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kind):
        raise TypeError(f"{want}, got {type(value).__name__} {value!r}")
    if not ((value > low if low_open else value >= low) and (
            value <= high if high < np.inf else value < np.inf)):
        raise ValueError(f"{want}, got {value!r}")


def _standardisation(A: np.ndarray, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """Column means and scales (standard deviations, 1 where 0) of ``A`` (n_samples, n_columns).

    Raises
    ------
    ValueError
        Naming ``name`` and the column, when a mean or standard deviation overflows (values
        near the float range are finite, but cannot be standardised)."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = A.mean(axis=0)
        scale = A.std(axis=0)
    bad = ~(np.isfinite(mean) & np.isfinite(scale))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: values too large to standardise (column {j}: its mean or "
                         f"standard deviation overflows {A.dtype}); rescale it first")
    return mean, np.where(scale > 0, scale, 1.0)


class _BaseMLP(BaseEstimator):
    """Shared parameters, validation and training; subclasses define targets and outputs."""

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu",
                 dropout: float = 0.0, solver: str = "adam", learning_rate: float = 1e-3,
                 weight_decay: float = 0.0, schedule: Optional[str] = None,
                 batch_size: int = 32, epochs: int = 200, early_stopping: bool = False,
                 validation_fraction: float = 0.1, patience: int = 10, tol: float = 1e-4,
                 dtype: Any = "float64", random_state: Any = None,
                 verbose: int = 0) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.solver = solver
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.batch_size = batch_size
        self.epochs = epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.tol = tol
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _hidden(self) -> Tuple[int, ...]:
        h = self.hidden_layer_sizes
        if isinstance(h, Integral) and not isinstance(h, (bool, np.bool_)):
            sizes: Tuple[Any, ...] = (h,)
        elif isinstance(h, (list, tuple, np.ndarray)) and np.ndim(h) == 1:
            sizes = tuple(h)
        else:
            raise TypeError(f"hidden_layer_sizes: expected an int or a sequence of ints (one "
                            f"width per hidden layer), got {type(h).__name__} {h!r}")
        if any(isinstance(s, (bool, np.bool_)) or not isinstance(s, Integral) for s in sizes):
            raise TypeError(f"hidden_layer_sizes: expected positive ints, got {h!r}")
        if any(s < 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes: expected positive ints, got {h!r}")
        return tuple(int(s) for s in sizes)

    def _check_params(self) -> np.dtype:
        self._hidden()
        if not isinstance(self.activation, str):
            raise TypeError(f"activation: expected the name of an activation (a str such as "
                            f"'relu'), got {type(self.activation).__name__} "
                            f"{self.activation!r}")
        try:
            get_activation(self.activation)
        except ValueError as e:
            raise ValueError(f"activation: {e}") from None
        if self.solver not in SOLVERS:
            raise ValueError(f"solver: expected one of {sorted(SOLVERS)}, got {self.solver!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {SCHEDULES}, got {self.schedule!r}")
        if self.schedule == "cosine" and self.solver in HD_SOLVERS:
            raise ValueError(
                f"schedule: 'cosine' sets the learning rate at every epoch, which would undo "
                f"what solver={self.solver!r} adapts (hypergradient descent); use "
                "schedule=None or 'plateau' (which scales the adapted rate), or another solver")
        dtype = check_float_dtype(self.dtype)
        _check_param("dropout", self.dropout, Real, 0.0, 1.0)
        if isinstance(self.learning_rate, str):  # scikit-learn's MLP takes a schedule name here
            raise TypeError(
                f"learning_rate: the optimizer's step size, a number (scikit-learn's "
                f"learning_rate_init); a schedule is chosen with schedule=None, 'cosine' or "
                f"'plateau', got {self.learning_rate!r}")
        _check_param("learning_rate", self.learning_rate, Real, 0.0, low_open=True)
        _check_param("weight_decay", self.weight_decay, Real, 0.0)
        _check_param("batch_size", self.batch_size, Integral, 1)
        _check_param("epochs", self.epochs, Integral, 0)
        _check_param("validation_fraction", self.validation_fraction, Real, 0.0, 0.5)
        _check_param("patience", self.patience, Integral, 0)
        _check_param("tol", self.tol, Real, 0.0)
        check_verbose("verbose", self.verbose)
        check_bool("early_stopping", self.early_stopping)
        check_seed("random_state", self.random_state)
        return dtype

    def _validate_X(self, X: Any) -> np.ndarray:
        """Validated, standardised ``X`` of a fitted estimator (checks the feature count)."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return np.ascontiguousarray((X - self.x_mean_) / self.x_scale_, dtype=self._dtype)

    # ------------------------------------------------------------------ training
    def _fit_network(self, X: np.ndarray, targets: np.ndarray, n_out: int, loss: Loss) -> None:
        """Standardise validated ``X``, build ``model_`` and train it on ``targets`` (anything
        ``loss`` accepts row by row) with the estimator's solver, schedule and early stopping."""
        dtype = self._check_params()
        hidden = self._hidden()
        widths = [X.shape[1], *hidden, n_out]
        n_params = sum(a * b + b for a, b in zip(widths, widths[1:]))
        check_fits_in_memory(2 * n_params * dtype.itemsize,
                             f"a network of {n_params} parameters (and their gradients)",
                             {"hidden_layer_sizes": max(hidden, default=0), "X": X.shape[1]})
        self._dtype = dtype
        rng = np.random.default_rng(self.random_state)
        self.x_mean_, self.x_scale_ = _standardisation(X, "X")
        Xs = np.ascontiguousarray((X - self.x_mean_) / self.x_scale_, dtype=dtype)
        n = Xs.shape[0]
        n_val = int(round(self.validation_fraction * n)) if self.early_stopping else 0
        if self.early_stopping and not (n_val >= 2 and n - n_val >= 2):
            warn_user(f"early_stopping: validation_fraction={self.validation_fraction} of "
                      f"{n} rows holds out {n_val}, and a validation split needs at least 2 "
                      "rows with at least 2 left to train on; training on all rows, with "
                      "early stopping on the training loss")
            n_val = 0
        order = rng.permutation(n)
        val, tr = order[:n_val], order[n_val:]
        self.model_ = make_mlp(Xs.shape[1], hidden, n_out, self.activation,
                               float(self.dropout), dtype, rng)
        opt = SOLVERS[self.solver](self.model_.parameters(), lr=float(self.learning_rate),
                                   weight_decay=float(self.weight_decay))
        sched: Any = None
        if self.schedule == "cosine":
            sched = optim.schedules.CosineAnnealingLR(opt, T_max=max(int(self.epochs), 1))
        elif self.schedule == "plateau":
            sched = optim.schedules.ReduceLROnPlateau(opt, factor=0.5,
                                                      patience=max(int(self.patience) // 2, 1))
        # Keras's rule, close to scikit-learn's MLP but not the same: stop after `patience`
        # epochs in a row in which the validation loss (early_stopping) or else the training
        # loss did not fall below its best by more than tol. scikit-learn stops after
        # n_iter_no_change + 1 such epochs (its count must exceed n_iter_no_change), so
        # patience=p stops where n_iter_no_change=p-1 would; with early_stopping it watches
        # the validation score (accuracy, R^2), not the loss. Here the best epoch's
        # parameters are restored in both cases; scikit-learn restores them with
        # early_stopping only.
        es = EarlyStopping(patience=int(self.patience), min_delta=float(self.tol),
                           monitor="val_loss" if n_val else "loss")
        trainer = Trainer(self.model_, loss, opt, schedule=sched,
                          batch_size=int(self.batch_size), epochs=int(self.epochs),
                          seed=int(rng.integers(2**31)), early_stopping=es,
                          verbose=int(self.verbose))
        vdata = (Xs[val], targets[val]) if n_val else None
        # Mini-batch products are small: one BLAS thread is faster, and far faster on a busy
        # machine (digits, 256x128 network: 0.4 s with one OpenBLAS thread against 8-20 s
        # with the default pool on a loaded 2-core box).
        first = self.model_[0]
        first.input_grad = False  # the data's gradient is never used: skip its product
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                self.history_ = trainer.fit(Xs[tr], targets[tr], validation_data=vdata)
        finally:
            first.input_grad = True  # model_ is a plain network again
        self.n_iter_ = len(self.history_)
        self.loss_curve_ = list(self.history_.history.get("loss", []))
        # as scikit-learn's: None when early stopping watched a validation split
        self.best_loss_ = (None if n_val or not self.loss_curve_
                           else float(min(self.loss_curve_)))
        self.model_.eval()

    def _raw(self, X: Any) -> np.ndarray:
        """Network outputs (logits for a classifier) for ``X`` ``(n_samples, n_features)``."""
        Xs = self._validate_X(X)  # first: NotFittedError before anything else
        return predict(self.model_, Xs, batch_size=4096)

    def n_parameters(self) -> int:
        """Number of trained scalars of the fitted network."""
        check_is_fitted(self, "model_")
        return self.model_.num_parameters()

    def _output_scale(self) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """``(scale, shift)`` mapping the network's outputs to the estimator's (none here)."""
        return None, None

    def _raw_layers(self) -> Tuple[list, list]:
        """Weights and biases of the network on unstandardised inputs and outputs."""
        check_is_fitted(self, "model_")
        dense = [m for m in self.model_ if isinstance(m, Dense)]
        dtype = dense[0].weight.dtype
        ws = [np.array(d.weight, dtype=np.float64) for d in dense]
        bs = [np.array(d.bias, dtype=np.float64) if d.use_bias
              else np.zeros(d.out_features) for d in dense]
        # (X - mean) / scale @ W + b  ==  X @ (W / scale[:, None]) + (b - (mean / scale) @ W)
        x_scale = np.asarray(self.x_scale_, dtype=np.float64)
        x_mean = np.asarray(self.x_mean_, dtype=np.float64)
        bs[0] = bs[0] - (x_mean / x_scale) @ ws[0]
        ws[0] = ws[0] / x_scale[:, None]
        scale, shift = self._output_scale()
        if scale is not None:  # out * scale + shift
            ws[-1] = ws[-1] * scale
            bs[-1] = bs[-1] * scale + shift
        return [w.astype(dtype) for w in ws], [b.astype(dtype) for b in bs]

    @property
    def coefs_(self) -> list:
        """Weight matrices, ``coefs_[i]`` of shape ``(n_in, n_out)`` for layer ``i``, as
        scikit-learn's: ``X @ coefs_[0] + intercepts_[0]``, the activation, and so on, with
        no activation after the last layer, give the network's outputs for unstandardised
        ``X`` (the input standardisation, and a regressor's target scaling, are folded into
        the first and last layers). Copies, computed from :attr:`model_` (changing them does
        not change the model), whose own first-layer weights act on standardised inputs.
        A classifier has ``n_classes`` outputs (logits, two for a binary problem, where
        scikit-learn's has one logistic output)."""
        return self._raw_layers()[0]

    @property
    def intercepts_(self) -> list:
        """Bias vectors, ``intercepts_[i]`` of shape ``(n_out,)``; see :attr:`coefs_`."""
        return self._raw_layers()[1]


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: softmax cross-entropy on ``n_classes`` logits.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (100,)
        Width of each hidden layer (a list or 1-D array of ints works too; anything else
        raises ``TypeError``, and a network too large for the machine's memory
        ``ValueError``, naming ``hidden_layer_sizes``).
    activation : str, default "relu"
        Hidden activation, a name :func:`nesy.nn.get_activation` knows.
    dropout : float, default 0.0
        Dropout probability after each hidden activation.
    solver : str, default "adam"
        A nesy optimizer: one of :data:`SOLVERS` (``"adam"``, ``"adamw"``, ``"sgd"``, ...).
    learning_rate, weight_decay : float
        Passed to the optimizer as ``lr`` and ``weight_decay``.
    schedule : {None, "cosine", "plateau"}
        Per-epoch learning-rate schedule: cosine annealing over ``epochs``, or halving on a
        plateau of the validation loss (of the training loss without ``early_stopping``, which
        is what holds a validation split out). ``"cosine"`` with the hypergradient solvers
        ``"sgdhd"`` and ``"adamhd"`` raises ``ValueError``: it sets the rate at every epoch,
        undoing what they adapt at every step (``"plateau"`` only scales the adapted rate).
    batch_size, epochs : int
        Mini-batch size and maximum number of passes over the data.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the rows and stop after ``patience`` epochs in which
        the validation loss did not fall by ``tol``, restoring the parameters of the epoch of
        lowest validation loss. Without it the same rule watches the training loss (as
        scikit-learn's), restoring the parameters of the epoch of lowest training loss (which
        scikit-learn does not). See the notes for how this differs from scikit-learn.
    validation_fraction : float, default 0.1
        Rows held out with ``early_stopping``. The split needs at least 2 rows, leaving at
        least 2 to train on (15 rows or more at the default): otherwise none are held out,
        early stopping watches the training loss, and ``fit`` warns.
    patience : int, default 10
        Epochs without an improvement of ``tol`` before stopping.
    tol : float, default 1e-4
    dtype : {"float64", "float32"} or a NumPy float dtype
        Dtype of the parameters and of the computation (``np.float32`` works too).
    random_state : None, int >= 0 or numpy.random.Generator, optional
        Seeds initialisation, the validation split and shuffling.
    verbose : int >= 0, default 0
        Progress bars of :class:`~nesy.nn.Trainer`.

    Notes
    -----
    Differences from ``sklearn.neural_network.MLPClassifier``: ``learning_rate`` is the step
    size (scikit-learn's ``learning_rate_init``; a schedule is ``schedule``), ``epochs`` is
    ``max_iter``. ``patience`` plays the part of ``n_iter_no_change`` but stops one epoch
    sooner: training stops after ``patience`` epochs in a row without an improvement of
    ``tol``, scikit-learn's after ``n_iter_no_change + 1``, so ``patience=p`` stops where
    ``n_iter_no_change=p - 1`` would. With ``early_stopping``, scikit-learn watches the
    validation score (accuracy) and this estimator the validation loss; without it, this
    estimator restores the epoch of lowest training loss, scikit-learn keeps the last
    epoch's parameters. ``weight_decay`` is the optimizer's (as
    torch's): ``weight_decay * p`` added to every parameter's gradient (decoupled for
    ``"adamw"``), where scikit-learn's ``alpha`` adds ``alpha * W / batch_size`` to the weights'
    gradients only. No ``sample_weight``, ``partial_fit``, ``warm_start`` or multilabel ``y``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    model_ : Sequential
        The trained network, ``(n_samples, n_features) -> (n_samples, n_classes)`` logits, on
        standardised inputs ``(X - x_mean_) / x_scale_``.
    x_mean_, x_scale_ : ndarray of shape (n_features,)
    history_ : nesy.nn.History
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    best_loss_ : float or None
        The smallest value of ``loss_curve_``; None when early stopping watched a validation
        split (as scikit-learn's, which is None with ``early_stopping=True``). The loss is
        this estimator's: mean cross-entropy, or a regressor's mean squared error on
        standardised targets (scikit-learn's holds half the squared error, plus its
        ``alpha`` penalty).
    coefs_, intercepts_ : list of ndarray
        Weights ``(n_in, n_out)`` and biases ``(n_out,)`` of each layer, as scikit-learn's,
        for unstandardised inputs (see :attr:`coefs_`); computed from ``model_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names (a DataFrame).
    """

    @keeps_state_on_error
    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Fit on ``X`` ``(n_samples, n_features)`` and labels ``y`` ``(n_samples,)``."""
        self._check_params()  # before any fitted attribute changes
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        encoder = label_encoder(y)
        self.classes_ = encoder.classes_
        codes = encoder.transform(y)
        self._fit_network(X, codes, len(self.classes_), CrossEntropyLoss())
        return self

    @keeps_state_on_error
    def _fit_distilled(self, X: Any, classes: np.ndarray, targets: np.ndarray,
                       loss: Loss) -> MLPClassifier:
        """Fit on rows ``targets`` made for ``loss`` (used by :class:`nesy.distill.Distiller`)."""
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        self.classes_ = np.asarray(classes)
        self._fit_network(X, targets, len(self.classes_), loss)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``(n_samples, n_classes)``; for two classes the logit difference
        ``(n_samples,)`` (positive means ``classes_[1]``), as scikit-learn expects."""
        z = self._raw(X).astype(np.float64)
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``."""
        return softmax(self._raw(X).astype(np.float64), axis=-1)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each row, ``(n_samples,)``."""
        z = self._raw(X)
        return self.classes_[np.argmax(z, axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: squared error on standardised targets.

    Parameters are those of :class:`MLPClassifier`; ``y`` may be ``(n_samples,)`` or
    ``(n_samples, n_targets)`` and predictions have the same shape.

    Attributes
    ----------
    model_ : Sequential
        ``(n_samples, n_features) -> (n_samples, n_targets)`` on standardised inputs and targets.
    y_mean_, y_scale_ : ndarray of shape (n_targets,)
    x_mean_, x_scale_, history_, n_iter_, loss_curve_, best_loss_, n_features_in_
        As :class:`MLPClassifier`.
    coefs_, intercepts_ : list of ndarray
        As :class:`MLPClassifier`'s, for unstandardised inputs and targets: the last layer
        gives the predictions, ``(n_samples, n_targets)``.
    """

    def _output_scale(self) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        return (np.asarray(self.y_scale_, dtype=np.float64),
                np.asarray(self.y_mean_, dtype=np.float64))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _scale_targets(self, y: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
        y = np.asarray(y, dtype=np.float64)
        self._y_ndim = y.ndim
        Y = y.reshape(y.shape[0], -1)
        self.y_mean_, self.y_scale_ = _standardisation(Y, "y")
        return [(np.asarray(a, np.float64).reshape(Y.shape[0], -1) - self.y_mean_)
                / self.y_scale_ for a in (y, *others)]

    @keeps_state_on_error
    def fit(self, X: Any, y: Any) -> MLPRegressor:
        """Fit on ``X`` ``(n_samples, n_features)`` and ``y`` ``(n_samples[, n_targets])``."""
        self._check_params()  # before any fitted attribute changes
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=True,
                             y_numeric=True)
        (Ys,) = self._scale_targets(y)
        self._fit_network(X, Ys, Ys.shape[1], MSELoss())
        return self

    @keeps_state_on_error
    def _fit_distilled(self, X: Any, y: np.ndarray, teacher_out: np.ndarray,
                       loss: Loss) -> MLPRegressor:
        """Fit on labels and teacher outputs, both standardised with the statistics of ``y``;
        ``loss`` gets rows ``[y, teacher]`` (used by :class:`nesy.distill.Distiller`)."""
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        Ys, Ts = self._scale_targets(y, teacher_out)
        self._fit_network(X, np.hstack([Ys, Ts]), Ys.shape[1], loss)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions ``(n_samples,)`` or ``(n_samples, n_targets)``, shaped like ``y``."""
        out = self._raw(X).astype(np.float64) * self.y_scale_ + self.y_mean_
        return out[:, 0] if self._y_ndim == 1 else out
