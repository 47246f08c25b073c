"""Mini-batch training loop: :class:`Trainer`, :class:`EarlyStopping`, :class:`History`."""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from tqdm.auto import tqdm

from nesy._checks import check_bool, check_int, check_seed, check_verbose
from nesy._fit import keeps_state_on_error
from nesy.nn.losses import Loss
from nesy.nn.module import Module, real_array
from nesy.optim._base import _number

__all__ = ["Trainer", "EarlyStopping", "History", "accuracy", "predict"]

Metric = Callable[[np.ndarray, np.ndarray], float]


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of correct predictions from logits (or probabilities).

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,) or (n_samples, n_classes)
        Integer labels, or one-hot / probability rows (their argmax is the label).
    y_pred : ndarray of shape (n_samples, n_classes) or (n_samples,) or (n_samples, 1)
        Model outputs. With several columns the predicted class is the argmax; with one
        column the outputs are binary *logits* and the prediction is ``y_pred > 0``.
    """
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    n = y_pred.shape[0] if y_pred.ndim else 0
    if y_pred.ndim == 2 and y_pred.shape[1] > 1:
        labels = np.argmax(y_pred, axis=1)
    elif y_pred.ndim and y_pred.size == n:
        labels = (y_pred.reshape(n) > 0).astype(np.int64)
    else:
        raise ValueError(f"y_pred: has shape {y_pred.shape}, expected (n_samples,), "
                         "(n_samples, 1) or (n_samples, n_classes)")
    shape = y_true.shape
    if y_true.ndim == 2 and y_true.shape[1] > 1:
        y_true = np.argmax(y_true, axis=1)
    if y_true.size != n:
        raise ValueError(f"y_true: has shape {shape}, expected {n} labels (or one-hot rows) "
                         f"like y_pred {y_pred.shape}")
    if n == 0:
        return float("nan")
    return float(np.mean(labels == y_true.reshape(n)))


def predict(model: Module, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Run ``model`` in evaluation mode over ``X`` in batches and concatenate the outputs.

    Every submodule gets its own previous training mode back afterwards (also after an
    error): a model with one submodule in evaluation mode (a frozen Dropout) keeps it so.

    Parameters
    ----------
    model : Module
    X : ndarray of shape (n_samples, ...)
    batch_size : int, default 1024

    Returns
    -------
    ndarray of shape (n_samples, ...)
        The model outputs.
    """
    X = np.asarray(X)
    batch_size = check_int("batch_size", batch_size, 1)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        outs = [model.forward(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]
    finally:
        for m, training in modes:
            object.__setattr__(m, "training", training)
    if not outs:
        raise ValueError("X is empty")
    return np.concatenate(outs, axis=0)


class History:
    """Per-epoch record of a :meth:`Trainer.fit` run.

    Attributes
    ----------
    history : dict of str to list
        ``"loss"``, one entry per metric, ``"val_loss"`` and ``"val_<metric>"`` when validation
        data was given, ``"lr"`` (learning rate used during the epoch) and ``"time"`` (seconds).
    epoch : list of int
        Epoch numbers, starting at 1.
    params : dict
        The Trainer settings of the run.
    stopped_epoch : int or None
        Epoch at which early stopping ended training, if it did.
    best_epoch : int or None
        Epoch of the best monitored value when early stopping was used.
    """

    def __init__(self, params: Optional[Dict[str, Any]] = None) -> None:
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []
        self.params: Dict[str, Any] = dict(params or {})
        self.stopped_epoch: Optional[int] = None
        self.best_epoch: Optional[int] = None

    def append(self, epoch: int, logs: Mapping[str, float]) -> None:
        """Record the values of one epoch."""
        self.epoch.append(int(epoch))
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def __getitem__(self, key: str) -> List[float]:
        return self.history[key]

    def __len__(self) -> int:
        return len(self.epoch)

    def to_dict(self) -> Dict[str, List[float]]:
        """Copy of :attr:`history` (JSON-serialisable)."""
        return {k: list(v) for k, v in self.history.items()}

    def plot(self, ax: Any = None, keys: Optional[Sequence[str]] = None) -> Any:
        """Plot the curves against the epoch number on a matplotlib axes.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Created with ``matplotlib.pyplot.subplots`` when omitted.
        keys : sequence of str, optional
            Curves to draw; default all except ``"lr"`` and ``"time"``.

        Returns
        -------
        matplotlib Axes

        Raises
        ------
        ImportError
            If ``ax`` is omitted and matplotlib is not installed.
        """
        if ax is None:
            try:
                import matplotlib.pyplot as plt
            except ImportError as exc:
                raise ImportError(
                    "History.plot needs matplotlib; install it (pip install matplotlib) "
                    "or pass an existing axes as ax"
                ) from exc
            _, ax = plt.subplots()
        if keys is None:
            keys = [k for k in self.history if k not in ("lr", "time")]
        for k in keys:
            if k not in self.history:
                raise KeyError(f"no curve named {k!r}; have {sorted(self.history)}")
            ax.plot(self.epoch, self.history[k], label=k)
        ax.set_xlabel("epoch")
        ax.legend()
        return ax

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


#: Words of a metric's name that make ``EarlyStopping(mode="auto")`` maximise it.
_LARGER_IS_BETTER = frozenset({"accuracy", "acc", "auc", "f1", "precision", "recall", "r2"})
#: Words of a metric's name that keep ``mode="auto"`` at ``"min"`` whatever else it says.
_SMALLER_IS_BETTER = frozenset({
    "loss", "losses", "error", "errors", "err", "brier", "mse", "mae", "rmse", "msle",
    "rmsle", "mape", "nll", "logloss", "perplexity", "ppl", "deviance", "hinge", "ece",
    "wer", "cer"})


def _auto_mode(monitor: str) -> str:
    """``"max"`` for the name of a score (accuracy, AUC, F1, ...), else ``"min"``: the rule
    of :class:`EarlyStopping`'s ``mode="auto"``, on whole ``_``-separated words."""
    words = monitor.lower().split("_")
    if len(words) > 1 and words[0] == "val":
        words = words[1:]
    if any(w in _SMALLER_IS_BETTER for w in words):
        return "min"
    if words == ["score"] or any(w in _LARGER_IS_BETTER for w in words):
        return "max"
    return "min"


class EarlyStopping:
    """Stop training when a monitored value stops improving.

    Parameters
    ----------
    patience : int, default 10
        Epochs without improvement before stopping.
    min_delta : float, default 0.0
        Smallest change that counts as an improvement.
    monitor : str, default "val_loss"
        A key of :attr:`History.history` (``"loss"``, ``"val_loss"``, ``"val_accuracy"``, ...).
    mode : {"auto", "min", "max"}, default "auto"
        Whether smaller or larger values are better. ``"auto"`` (as Keras's default) reads
        the monitor's name, lower-cased and split at ``"_"`` into words (a leading ``"val"``
        dropped), and compares whole words only:

        - ``"min"`` when a word says smaller is better: ``loss``, ``losses``, ``error``,
          ``errors``, ``err``, ``brier``, ``mse``, ``mae``, ``rmse``, ``msle``, ``rmsle``,
          ``mape``, ``nll``, ``logloss``, ``perplexity``, ``ppl``, ``deviance``, ``hinge``,
          ``ece``, ``wer`` or ``cer`` (``"val_loss"``, ``"val_brier_score"``,
          ``"acc_loss"``);
        - else ``"max"`` when a word is ``accuracy``, ``acc``, ``auc``, ``f1``,
          ``precision``, ``recall`` or ``r2``, or the name is just ``"score"`` (or
          ``"val_score"``): ``"val_accuracy"``, ``"acc"``, ``"val_f1_score"``, ``"roc_auc"``;
        - else ``"min"``: ``"mae"``, ``"log_score"``, ``"val_err2"``, ``"myacc"`` (not a
          whole word), ...

        Pass ``"min"`` or ``"max"`` for a metric that these words do not describe.
    restore_best : bool, default True
        Load the parameters of the best epoch back into the model when training ends.

    Attributes
    ----------
    best_ : float
    best_epoch_ : int or None
    stopped_epoch_ : int or None
    best_state_ : dict or None
        With ``restore_best``: the model's :meth:`~nesy.nn.Module.snapshot` at the best epoch.
    """

    def __init__(
        self,
        patience: int = 10,
        min_delta: float = 0.0,
        monitor: str = "val_loss",
        mode: str = "auto",
        restore_best: bool = True,
    ) -> None:
        patience = check_int("patience", patience, 0)
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected the name of a logged value (a str such as "
                            f"'val_loss'), got {type(monitor).__name__} {monitor!r}")
        if not isinstance(mode, str) or mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if _number("min_delta", min_delta, finite=True) < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.monitor = monitor
        self.mode = mode
        self.restore_best = check_bool("restore_best", restore_best)
        self.reset()

    @property
    def direction(self) -> str:
        """``"min"`` or ``"max"``: :attr:`mode`, with ``"auto"`` resolved from the monitor's
        name (see the class parameters)."""
        if self.mode != "auto":
            return self.mode
        return _auto_mode(self.monitor)

    def reset(self) -> None:
        """Forget everything seen (called at the start of every fit)."""
        self.best_ = math.inf if self.direction == "min" else -math.inf
        self.best_epoch_: Optional[int] = None
        self.stopped_epoch_: Optional[int] = None
        self.wait_ = 0
        self.best_state_: Optional[Dict[str, np.ndarray]] = None

    def _improved(self, value: float) -> bool:
        if self.direction == "min":
            return value < self.best_ - self.min_delta
        return value > self.best_ + self.min_delta

    def update(self, epoch: int, logs: Mapping[str, float], model: Module) -> bool:
        """Record the logs of ``epoch``; return ``True`` if training should stop."""
        value = float(logs[self.monitor])
        if math.isfinite(value) and self._improved(value):
            self.best_ = value
            self.best_epoch_ = epoch
            self.wait_ = 0
            if self.restore_best:
                self.best_state_ = model.snapshot()
            return False
        self.wait_ += 1
        if self.wait_ >= self.patience:
            self.stopped_epoch_ = epoch
            return True
        return False

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
            f"monitor={self.monitor!r}, mode={self.mode!r}, restore_best={self.restore_best})"
        )


def _check_xy(X: Any, y: Any, xname: str, yname: str) -> Tuple[np.ndarray, np.ndarray]:
    X = real_array(X, xname)
    y = real_array(y, yname)
    if X.ndim == 0 or X.shape[0] == 0:
        raise ValueError(f"{xname} is empty (shape {X.shape})")
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{xname} and {yname} have different lengths: {X.shape[0]} and "
            f"{y.shape[0] if y.ndim else 'a scalar'}"
        )
    if np.issubdtype(X.dtype, np.inexact) and not np.all(np.isfinite(X)):
        raise ValueError(f"{xname} contains NaN or infinity")
    if np.issubdtype(y.dtype, np.inexact) and not np.all(np.isfinite(y)):
        raise ValueError(f"{yname} contains NaN or infinity")
    return X, y


def _current_lr(optimizer: Any) -> float:
    groups = getattr(optimizer, "param_groups", None)
    if groups:
        try:
            return float(groups[0]["lr"])
        except (KeyError, TypeError, IndexError):
            pass
    lr = getattr(optimizer, "lr", None)
    try:
        return float(lr) if lr is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _snapshot(trainer: Trainer) -> Callable[[], None]:
    """A function that puts back what a fit changes in place, as it is now: the model's
    parameters, buffers and mode, the optimizer's and the schedule's state (when they have
    ``state_dict`` and ``load_state_dict``) and the early stopping's attributes."""
    model = trainer.model
    model_state, training = model.snapshot(), model.training
    saved = [(o, o.state_dict()) for o in (trainer.optimizer, trainer.schedule)
             if callable(getattr(o, "state_dict", None))
             and callable(getattr(o, "load_state_dict", None))]
    es = trainer.early_stopping
    es_dict = getattr(es, "__dict__", None)  # an object of one's own may have none
    es_vars = dict(es_dict) if isinstance(es_dict, dict) else None

    def restore() -> None:
        model.restore(model_state)
        model.train(training)
        for obj, state in saved:
            obj.load_state_dict(state)
        if es is not None and es_vars is not None:
            vars(es).clear()
            vars(es).update(es_vars)

    return restore


def _optimizer_arrays(optimizer: Any) -> Optional[List[np.ndarray]]:
    """The arrays in ``optimizer.param_groups`` (groups concatenated), or None when it has no
    such groups or holds something else than NumPy arrays (e.g. torch tensors)."""
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, (list, tuple)):
        return None
    arrays: List[np.ndarray] = []
    for g in groups:
        ps = g.get("params") if isinstance(g, Mapping) else None
        if not isinstance(ps, (list, tuple)) or not all(isinstance(p, np.ndarray) for p in ps):
            return None
        arrays.extend(ps)
    return arrays or None


def _optimizer_grads(model: Module, optimizer: Any) -> List[np.ndarray]:
    """The gradient arrays to pass to ``optimizer.step``: ``model.gradients()`` when the
    optimizer holds the model's parameters in order (or its arrays cannot be read), else the
    gradients of its arrays in its order (an optimizer over some of the parameters, to train
    only those; an array that views all of a parameter counts as that parameter).

    Raises
    ------
    ValueError
        When an array of the optimizer is not a parameter of the model (an optimizer built on
        another model's parameters would update that model with this one's gradients)."""
    grads = model.gradients()
    arrays = _optimizer_arrays(optimizer)
    if arrays is None:
        return grads
    params = model.parameters()
    if len(arrays) == len(params) and all(a is p for a, p in zip(arrays, params)):
        return grads
    index = {_memory(p): i for i, p in enumerate(params)}  # an exact view is the parameter
    foreign = [j for j, a in enumerate(arrays) if _memory(a) not in index]
    if len(foreign) == len(arrays):
        raise ValueError(
            f"optimizer: none of its {len(arrays)} parameter arrays is a parameter of the model "
            "(was it built on another model?); build it from model.parameters()"
        )
    if foreign:
        raise ValueError(
            f"optimizer: its parameter array {foreign[0]} is not a parameter of the model "
            f"({len(foreign)} of {len(arrays)} are not), and the Trainer only computes the "
            "model's gradients; build it from (some of) model.parameters()"
        )
    return [grads[index[_memory(a)]] for a in arrays]


def _memory(a: np.ndarray) -> Tuple[int, Tuple[int, ...], Tuple[int, ...], str]:
    """Where an array's elements are: the same for a parameter and a view of all of it."""
    return (a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str)


def _is_plateau(schedule: Any) -> bool:
    names = {cls.__name__ for cls in type(schedule).__mro__}
    return "ReduceLROnPlateau" in names or getattr(schedule, "mode", None) in ("min", "max")


class Trainer:
    """Fit a :class:`~nesy.nn.module.Module` with mini-batch gradient descent.

    Every batch: ``zero_grad``, ``forward``, loss, ``backward``, optional gradient clipping
    (``nesy.optim.clip_grad_norm``), ``optimizer.step(grads)``, where ``grads`` are the
    gradients of the optimizer's arrays in the optimizer's order: ``model.gradients()`` for an
    optimizer over all of ``model.parameters()``, the matching subset for one over some of
    them (fine-tuning). Clipping sees only those gradients, as ``clip_grad_norm_`` over the
    optimizer's parameters does in PyTorch fine-tuning.

    Parameters
    ----------
    model : Module
    loss : Loss
        E.g. :class:`~nesy.nn.losses.CrossEntropyLoss`; called as ``loss(output, y_batch)``.
        The logged training ``loss`` of an epoch is its value over the epoch's samples as
        :meth:`evaluate` and ``val_loss`` compute it: with ``reduction="sum"`` the sum of the
        batch values, else their mean weighted by batch size. ``reduction="none"`` raises
        ``ValueError``.
    optimizer : object
        Anything with ``step(grads)`` updating ``model.parameters()`` in place, e.g.
        ``nesy.optim.Adam(model.parameters(), lr=1e-3)``. An optimizer whose ``param_groups``
        hold some of the parameters only (fine-tuning) gets the gradients of those, in its
        order; one holding an array that is not a parameter of ``model`` raises
        ``ValueError``.
    schedule : object, optional
        Learning-rate schedule; ``schedule.step()`` is called once per epoch (or per batch with
        ``schedule_interval="batch"``). A ReduceLROnPlateau-like schedule (class of that name,
        or a ``mode`` attribute of ``"min"``/``"max"``) gets ``step(metric)`` with the epoch's
        ``val_loss`` (``loss`` without validation data). One bound to another optimizer (its
        ``optimizer`` attribute is not ``optimizer``) raises ``ValueError``.
    batch_size : int, default 32
    epochs : int, default 10
    shuffle : bool, default True
        Reshuffle the samples every epoch with ``np.random.default_rng(seed)``.
    seed : None, int >= 0 or numpy.random.Generator, default 0
        Anything else (a float, a string, a negative int) raises naming ``seed``.
    early_stopping : EarlyStopping, optional
        An :class:`EarlyStopping`, or an object of your own with its protocol: the methods
        ``reset()`` (called at the start of every fit) and ``update(epoch, logs, model)``
        (after every epoch; returns ``True`` to stop), and optionally the attributes
        ``monitor`` (a logged key, checked before training), ``best_epoch_`` (copied into
        the history), ``restore_best`` and ``best_state_`` (a
        :meth:`~nesy.nn.Module.snapshot` restored into the model at the end when both are
        set). ``TypeError`` for anything without ``reset`` and ``update``, such as ``True``.
    metrics : dict of str to callable, optional
        ``{"accuracy": accuracy}``; each called as ``fn(y_true, model_output) -> float`` on the
        training batches of the epoch (concatenated) and on the validation data. A list of
        names (Keras's ``["accuracy"]``) raises ``TypeError``.
    verbose : int >= 0, default 1
        0: silent; 1: a progress bar over epochs; 2 (or more): also a bar over the batches of
        each epoch.
    grad_clip : float, optional
        Maximum global norm of the gradients passed to the optimizer (those of its arrays).
    schedule_interval : {"epoch", "batch"}, default "epoch"
    tbptt : int, optional
        Truncated backpropagation through time for sequence-to-sequence models: every batch
        ``(B, T, ...)`` is cut along time into chunks of ``tbptt`` steps with one update each;
        the model is called as ``forward(x_chunk, state)`` and must expose the state it reached
        as ``state_``, which starts the next chunk (gradients do not cross chunks).

    Attributes
    ----------
    history_ : History
        Of the last :meth:`fit`.
    """

    def __init__(
        self,
        model: Module,
        loss: Loss,
        optimizer: Any,
        schedule: Any = None,
        batch_size: int = 32,
        epochs: int = 10,
        shuffle: bool = True,
        seed: int = 0,
        early_stopping: Any = None,
        metrics: Optional[Mapping[str, Metric]] = None,
        verbose: int = 1,
        grad_clip: Optional[float] = None,
        schedule_interval: str = "epoch",
        tbptt: Optional[int] = None,
    ) -> None:
        if tbptt is not None:
            tbptt = check_int("tbptt", tbptt, 1)
        if not isinstance(model, Module):
            raise TypeError(f"model must be a nesy.nn.Module, got {type(model).__name__}")
        if not callable(loss):
            raise TypeError(f"loss must be callable (a nesy.nn Loss), got {type(loss).__name__}")
        if not hasattr(optimizer, "step"):
            raise TypeError("optimizer must have a step(grads) method")
        if getattr(loss, "reduction", None) == "none":
            raise ValueError("loss: reduction='none' gives one loss per sample; the Trainer "
                             "needs one number per batch: use reduction='mean' or 'sum'")
        if schedule is not None and not callable(getattr(schedule, "step", None)):
            raise TypeError(
                f"schedule: expected a learning-rate schedule with a step() method (such as "
                f"nesy.optim.schedules.StepLR(optimizer, step_size=10)), got "
                f"{type(schedule).__name__} {schedule!r}; the learning rate itself is the "
                "optimizer's lr")
        bound = getattr(schedule, "optimizer", None)
        if schedule is not None and bound is not None and bound is not optimizer:
            raise ValueError(
                f"schedule: is bound to another optimizer ({type(bound).__name__}) than the "
                f"Trainer's ({type(optimizer).__name__}), so stepping it would not change the "
                "learning rate used; build it on this optimizer")
        if early_stopping is not None and (isinstance(early_stopping, type) or not (
                callable(getattr(early_stopping, "reset", None))
                and callable(getattr(early_stopping, "update", None)))):
            raise TypeError(
                f"early_stopping: expected an EarlyStopping object or None, got "
                f"{type(early_stopping).__name__} {early_stopping!r}; for example "
                "early_stopping=EarlyStopping(patience=10), with validation_data passed to fit "
                "(an object of your own needs EarlyStopping's methods reset() and "
                "update(epoch, logs, model))")
        _optimizer_grads(model, optimizer)  # ValueError if it holds none of the model's arrays
        batch_size = check_int("batch_size", batch_size, 1)
        epochs = check_int("epochs", epochs, 0)
        shuffle = check_bool("shuffle", shuffle)
        seed = check_seed("seed", seed)
        verbose = check_verbose("verbose", verbose)
        if grad_clip is not None and not _number("grad_clip", grad_clip) > 0:
            raise ValueError(f"grad_clip must be positive, got {grad_clip}")
        if schedule_interval not in ("epoch", "batch"):
            raise ValueError(
                f"schedule_interval must be 'epoch' or 'batch', got {schedule_interval!r}"
            )
        if schedule is not None and schedule_interval == "batch" and _is_plateau(schedule):
            raise ValueError("a ReduceLROnPlateau schedule can only step once per epoch")
        if metrics is not None and not isinstance(metrics, Mapping):
            raise TypeError(
                f"metrics: expected a dict of names to functions, such as "
                f"{{'accuracy': accuracy}} (from nesy.nn import accuracy), got "
                f"{type(metrics).__name__} {metrics!r}")
        metrics = dict(metrics or {})
        for name, fn in metrics.items():
            if not isinstance(name, str):
                raise TypeError(f"metrics: a metric's name must be a str, got {name!r}")
            if not callable(fn):
                raise TypeError(f"metric {name!r} is not callable")
            if name in ("loss", "lr", "time") or name.startswith("val_"):
                raise ValueError(f"metric name {name!r} is reserved")
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.schedule = schedule
        self.batch_size = int(batch_size)
        self.epochs = int(epochs)
        self.shuffle = shuffle
        self.seed = seed
        self.early_stopping = early_stopping
        self.metrics: Dict[str, Metric] = metrics
        self.verbose = verbose
        self.grad_clip = None if grad_clip is None else float(grad_clip)
        self.schedule_interval = schedule_interval
        self.tbptt = None if tbptt is None else int(tbptt)

    # ------------------------------------------------------------------ public API
    @keeps_state_on_error
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        validation_data: Optional[Tuple[np.ndarray, np.ndarray]] = None,
    ) -> History:
        """Train for :attr:`epochs` epochs (or until early stopping).

        Parameters
        ----------
        X : ndarray of shape (n_samples, ...)
        y : ndarray of shape (n_samples, ...)
            Targets as the loss expects them (class labels, regression targets, ...).
        validation_data : tuple (X_val, y_val), optional
            Evaluated in eval mode after every epoch (``val_loss`` and ``val_<metric>``).

        Returns
        -------
        History

        Raises
        ------
        TypeError
            Complex, object or string data (naming the argument).
        ValueError
            Empty ``X``, ``X``/``y`` length mismatch, NaN or infinity in the data (the message
            names the argument), or an early-stopping monitor that will not be logged.
        FloatingPointError
            When the training loss becomes NaN or infinite (naming the epoch and batch).

        Notes
        -----
        A fit that raises an ``Exception`` (a bad target in a late batch, a diverging loss)
        leaves the model's parameters and buffers, the optimizer's and the schedule's state
        (through their ``state_dict`` / ``load_state_dict``, when they have them), the early
        stopping and :attr:`history_` as they were before the call. A ``KeyboardInterrupt``
        is not an error: the training done so far is kept.
        """
        X, y = _check_xy(X, y, "X", "y")
        if self.tbptt is not None:
            # Each chunk's loss sees only its own steps of y: a y with other steps than X
            # would train on a part of it, unnoticed.
            if X.ndim < 2:
                raise ValueError(f"X: truncated BPTT (tbptt) needs (n, steps, ...) sequences, "
                                 f"got shape {X.shape}")
            if y.ndim < 2 or y.shape[1] != X.shape[1]:
                raise ValueError(f"y: truncated BPTT (tbptt) needs a target at every step, "
                                 f"(n, {X.shape[1]}, ...), got shape {y.shape}")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (X_val, y_val)")
            val = _check_xy(
                validation_data[0], validation_data[1], "validation_data[0]",
                "validation_data[1]",
            )
        keys = ["loss", *self.metrics]
        if val is not None:
            keys += ["val_loss", *(f"val_{m}" for m in self.metrics)]
        es = self.early_stopping
        monitor = getattr(es, "monitor", None)
        if es is not None and monitor is not None and monitor not in keys:
            raise ValueError(
                f"early_stopping monitors {monitor!r}, which is not logged; "
                f"available: {keys}"
            )
        clip = self._clipper()
        restore = _snapshot(self)
        try:
            return self._fit(X, y, val, clip)
        except Exception:
            restore()
            raise

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: Optional[Tuple[np.ndarray, np.ndarray]],
        clip: Optional[Callable[..., Any]],
    ) -> History:
        es = self.early_stopping
        if es is not None:
            es.reset()
        history = History(
            params={
                "batch_size": self.batch_size,
                "epochs": self.epochs,
                "shuffle": self.shuffle,
                "seed": self.seed,
                "n_samples": int(X.shape[0]),
            }
        )
        self.history_ = history
        rng = np.random.default_rng(self.seed)
        bar = tqdm(
            range(1, self.epochs + 1), desc="fit", unit="epoch", disable=self.verbose <= 0,
            dynamic_ncols=True,
        )
        try:
            for epoch in bar:
                t0 = time.perf_counter()
                lr = _current_lr(self.optimizer)
                logs = self._train_epoch(X, y, rng, epoch, clip)
                if val is not None:
                    logs.update(self._evaluate(val[0], val[1], prefix="val_"))
                logs["lr"] = lr
                logs["time"] = time.perf_counter() - t0
                history.append(epoch, logs)
                if self.verbose > 0:
                    bar.set_postfix(
                        {k: f"{v:.4g}" for k, v in logs.items() if k not in ("lr", "time")},
                        refresh=False,
                    )
                if self.schedule is not None and self.schedule_interval == "epoch":
                    if _is_plateau(self.schedule):
                        self.schedule.step(logs["val_loss" if val is not None else "loss"])
                    else:
                        self.schedule.step()
                if es is not None and es.update(epoch, logs, self.model):
                    history.stopped_epoch = epoch
                    break
        finally:
            bar.close()
        if es is not None:
            history.best_epoch = getattr(es, "best_epoch_", None)
            best_state = getattr(es, "best_state_", None)
            if getattr(es, "restore_best", False) and best_state is not None:
                self.model.restore(best_state)
        return history

    def predict(self, X: np.ndarray, batch_size: Optional[int] = None) -> np.ndarray:
        """Model outputs for ``X`` of shape ``(n_samples, ...)``, computed in eval mode.

        ``batch_size`` defaults to ``max(batch_size, 1024)``.
        """
        X = np.asarray(X)
        if X.ndim == 0 or X.shape[0] == 0:
            raise ValueError(f"X is empty (shape {X.shape})")
        bs = max(self.batch_size, 1024) if batch_size is None else batch_size
        return predict(self.model, X, bs)

    def evaluate(
        self, X: np.ndarray, y: np.ndarray, batch_size: Optional[int] = None
    ) -> Dict[str, float]:
        """``{"loss": ..., <metric>: ...}`` of the model on ``(X, y)`` in eval mode."""
        X, y = _check_xy(X, y, "X", "y")
        return self._evaluate(X, y, prefix="", batch_size=batch_size)

    # ------------------------------------------------------------------ internals
    def _clipper(self) -> Optional[Callable[..., Any]]:
        if self.grad_clip is None:
            return None
        try:
            from nesy.optim import clip_grad_norm
        except ImportError as exc:
            raise ImportError(
                "grad_clip needs nesy.optim.clip_grad_norm, which could not be imported"
            ) from exc
        return clip_grad_norm

    def _train_epoch(
        self,
        X: np.ndarray,
        y: np.ndarray,
        rng: np.random.Generator,
        epoch: int,
        clip: Optional[Callable[..., Any]],
    ) -> Dict[str, float]:
        n = X.shape[0]
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        # the epoch's loss as the loss reduces it: the sum of the batch sums, or the mean of
        # the batch means weighted by batch size (as evaluate's over all samples at once)
        summed = getattr(self.loss, "reduction", None) == "sum"
        model = self.model
        model.train()
        grads = _optimizer_grads(model, self.optimizer)
        total = 0.0
        outputs: List[np.ndarray] = []
        starts = range(0, n, self.batch_size)
        batches = tqdm(
            starts, desc=f"epoch {epoch}", unit="batch", leave=False,
            disable=self.verbose < 2,
        )
        try:
            for b, start in enumerate(batches, start=1):
                idx = order[start : start + self.batch_size]
                xb, yb = X[idx], y[idx]
                if self.tbptt is None:
                    value, out = self._train_step(xb, yb, None, epoch, b, clip, grads)[:2]
                else:
                    # Truncated BPTT: chunks of `tbptt` steps, one update each; the state
                    # reached at the end of a chunk starts the next (no gradient crosses).
                    steps = xb.shape[1]
                    state, value, outs = None, 0.0, []
                    for t0 in range(0, steps, self.tbptt):
                        sl = slice(t0, t0 + self.tbptt)
                        v, o, state = self._train_step(xb[:, sl], yb[:, sl], state, epoch, b,
                                                       clip, grads)
                        share = 1.0 if summed else (min(steps, t0 + self.tbptt) - t0) / steps
                        value += v * share
                        outs.append(np.asarray(o))
                    out = np.concatenate(outs, axis=1)
                total += value if summed else value * len(idx)
                if self.metrics:
                    outputs.append(np.asarray(out))
        finally:
            batches.close()
        logs = {"loss": total if summed else total / n}
        if self.metrics:
            y_seen = y[order]
            out_all = np.concatenate(outputs, axis=0)
            for name, fn in self.metrics.items():
                logs[name] = float(fn(y_seen, out_all))
        return logs

    def _train_step(
        self,
        xb: np.ndarray,
        yb: np.ndarray,
        state: Any,
        epoch: int,
        b: int,
        clip: Optional[Callable[..., Any]],
        grads: List[np.ndarray],
    ) -> Tuple[float, Any, Any]:
        """One update on one batch (or one chunk of it); returns (loss, output, final state)."""
        model, loss_fn = self.model, self.loss
        model.zero_grad()
        out = model.forward(xb) if self.tbptt is None else model.forward(xb, state)
        value = float(loss_fn(out, yb))
        if not math.isfinite(value):
            raise FloatingPointError(
                f"non-finite training loss ({value}) at epoch {epoch}, batch {b}"
            )
        model.backward(loss_fn.backward())
        if clip is not None:
            clip(grads, self.grad_clip)
        self.optimizer.step(grads)
        if self.schedule is not None and self.schedule_interval == "batch":
            self.schedule.step()
        return value, out, getattr(model, "state_", None)

    def _evaluate(
        self, X: np.ndarray, y: np.ndarray, prefix: str, batch_size: Optional[int] = None
    ) -> Dict[str, float]:
        out = self.predict(X, batch_size)
        logs = {f"{prefix}loss": float(self.loss(out, y))}
        for name, fn in self.metrics.items():
            logs[f"{prefix}{name}"] = float(fn(y, out))
        return logs

    def __repr__(self) -> str:
        return (
            f"Trainer(model={type(self.model).__name__}, loss={self.loss!r}, "
            f"optimizer={type(self.optimizer).__name__}, batch_size={self.batch_size}, "
            f"epochs={self.epochs})"
        )
