""":class:`MetaLearner`: meta-train a nesy model on a task sampler, then adapt it to new tasks."""

from __future__ import annotations

import copy
import json
import math
import numbers
import os
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

from nesy._checks import check_bool, check_int, check_seed, check_verbose
from nesy._fit import keeps_state_on_error
from nesy._io import atomic_savez
from nesy.meta.algorithms import (
    ALGORITHMS,
    InnerOptimizer,
    OptimizerFactory,
    _check_made_optimizer,
    inner_loop,
    meta_gradient,
)
from nesy.meta.functional import LOSSES, Params, batched_loss, broadcast_params, make_backend
from nesy.meta.tasks import TaskBatch, check_task_batch
from nesy.nn.module import Module, real_array
from nesy.nn.trainer import History
from nesy.optim import Adam, clip_grad_norm

__all__ = ["MetaLearner"]


def _check_pos(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    if not (math.isfinite(float(value)) and float(value) > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


def _is_plateau(schedule: Any) -> bool:
    """Whether ``schedule`` steps on a metric: a ReduceLROnPlateau (by class name, as
    :class:`~nesy.nn.Trainer` decides) or anything with a ``mode`` of ``"min"``/``"max"``."""
    names = {cls.__name__ for cls in type(schedule).__mro__}
    return "ReduceLROnPlateau" in names or getattr(schedule, "mode", None) in ("min", "max")


def _ci95(values: np.ndarray) -> float:
    """Half-width of the normal 95 % interval of the mean."""
    n = values.size
    return float(1.96 * values.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")


class MetaLearner(BaseEstimator):
    """Learn an initialisation (and for Meta-SGD, per-parameter inner learning rates) from which a
    model adapts to a new task in a few gradient steps.

    Parameters
    ----------
    model : Module
        The network whose parameters are meta-learned, in place (they are the meta-parameters
        after :meth:`fit`). A :class:`~nesy.nn.Sequential` of Dense layers with ReLU / Tanh runs
        all tasks of a meta-batch in one batched pass; any other Module loops over tasks.
    algorithm : {"fomaml", "maml", "metasgd", "reptile"}, default "fomaml"
        See :mod:`nesy.meta.algorithms`. ``"maml"`` is second order (exact Hessian-vector
        products for MLPs, finite differences otherwise).
    loss : {"auto", "mse", "cross_entropy"}, default "auto"
        ``"auto"`` takes the sampler's ``loss`` attribute.
    inner_lr : float, default 0.01
        Inner SGD rate (MAML's alpha); Meta-SGD's learned rates start at this value.
    inner_steps : int, default 1
        Adaptation steps during meta-training, and by default in :meth:`adapt` and
        :meth:`evaluate`.
    inner_optimizer : callable, optional
        ``inner_optimizer(param_groups) -> nesy optimizer`` for the inner loop instead of plain
        SGD, e.g. ``lambda g: SGDHD(g, lr=0.01, hypergrad_lr=1e-3)``; it receives one group per
        task. First-order algorithms only (``"fomaml"``, ``"reptile"``).
    outer_optimizer : callable, optional
        ``outer_optimizer(params) -> nesy optimizer`` for the meta-update; default
        ``Adam(params, lr=outer_lr)``. A factory (inner or outer) that returns no optimizer is
        a ``TypeError``, and one that returns an optimizer over other arrays a ``ValueError``,
        naming the factory, raised before the first update.
    outer_lr : float, default 1e-3
    schedule : callable, optional
        ``schedule(optimizer) -> schedule`` (:mod:`nesy.optim.schedules`), stepped once per
        meta-iteration. A :class:`~nesy.optim.schedules.ReduceLROnPlateau` (or any schedule
        with a ``mode`` of ``"min"``/``"max"``, as for :class:`~nesy.nn.Trainer`) is stepped
        instead at every history entry (every ``eval_every`` meta-iterations) with that
        entry's ``val_loss``. A factory that returns no schedule (no ``step``) is a
        ``TypeError``, and one bound to another optimizer a ``ValueError``, naming
        ``schedule``.
    meta_batch_size : int, default 25
        Tasks per meta-iteration.
    first_order : bool, default True
        Meta-SGD only: whether to drop the second-order terms.
    grad_clip : float, optional
        Clip the joint 2-norm of the meta-gradient (and Meta-SGD's rate gradient) to this value.
    eval_every : int, optional
        Meta-iterations between history entries (default ``n_iterations // 50``, at least 1).
    n_val_tasks : int, default 100
        Fresh tasks scored after adaptation at every history entry (meta-validation).
    validation_sampler : object, optional
        Where the validation tasks come from (default: the training sampler).
    batched : bool, optional
        Force (True) or forbid (False) the batched MLP path; default: batched when possible.
    verbose : int, default 1
        0: silent; 1 (or more): progress bar. An int >= 0.
    random_state : None, int >= 0 or numpy.random.Generator
        Seeds the task draws.

    Attributes
    ----------
    inner_lrs_ : list of ndarray
        Meta-SGD's learned rates (one per parameter); the constant ``inner_lr`` otherwise.
    history_ : nesy.nn.History
        ``"loss"`` (mean meta-train query loss since the previous entry), ``"val_loss"``
        (``"val_accuracy"`` for classification), ``"lr"`` and ``"time"``; ``epoch`` holds the
        meta-iteration numbers.
    n_iter_ : int
        Meta-iterations run.
    backend_ : BatchedMLP or ModuleLoop
    """

    backend_: Any

    def __init__(self, model: Module, algorithm: str = "fomaml", loss: str = "auto",
                 inner_lr: float = 0.01, inner_steps: int = 1,
                 inner_optimizer: Optional[OptimizerFactory] = None,
                 outer_optimizer: Optional[Callable[[List[np.ndarray]], Any]] = None,
                 outer_lr: float = 1e-3, schedule: Optional[Callable[[Any], Any]] = None,
                 meta_batch_size: int = 25, first_order: bool = True,
                 grad_clip: Optional[float] = None, eval_every: Optional[int] = None,
                 n_val_tasks: int = 100,
                 validation_sampler: Any = None, batched: Optional[bool] = None,
                 verbose: int = 1, random_state: Any = None) -> None:
        self.model = model
        self.algorithm = algorithm
        self.loss = loss
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.inner_optimizer = inner_optimizer
        self.outer_optimizer = outer_optimizer
        self.outer_lr = outer_lr
        self.schedule = schedule
        self.meta_batch_size = meta_batch_size
        self.first_order = first_order
        self.grad_clip = grad_clip
        self.eval_every = eval_every
        self.n_val_tasks = n_val_tasks
        self.validation_sampler = validation_sampler
        self.batched = batched
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ setup
    def _validate(self) -> None:
        if not isinstance(self.model, Module):
            raise TypeError(f"model: expected a nesy Module, got {type(self.model).__name__}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: expected one of {list(ALGORITHMS)}, "
                             f"got {self.algorithm!r}")
        if self.loss != "auto" and self.loss not in LOSSES:
            raise ValueError(f"loss: expected 'auto' or one of {list(LOSSES)}, got {self.loss!r}")
        _check_pos("inner_lr", self.inner_lr)
        _check_pos("outer_lr", self.outer_lr)
        check_int("inner_steps", self.inner_steps, 0)
        check_int("meta_batch_size", self.meta_batch_size, 1)
        check_int("n_val_tasks", self.n_val_tasks, 1)
        if self.grad_clip is not None:
            _check_pos("grad_clip", self.grad_clip)
        if self.eval_every is not None:
            check_int("eval_every", self.eval_every, 1)
        check_bool("first_order", self.first_order)
        if self.batched is not None:
            check_bool("batched", self.batched)
        check_verbose("verbose", self.verbose)
        check_seed("random_state", self.random_state)
        second = self.algorithm == "maml" or (self.algorithm == "metasgd"
                                              and not self.first_order)
        if self.inner_optimizer is not None and (second or self.algorithm == "metasgd"):
            raise ValueError(f"inner_optimizer: {self.algorithm!r} differentiates through plain "
                             "SGD steps; use 'fomaml' or 'reptile' with another inner optimizer")
        for name in ("inner_optimizer", "outer_optimizer", "schedule"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise TypeError(f"{name}: expected a callable, got {type(value).__name__}")

    def _setup(self) -> None:
        """Backend and inner rates (kept across fits; rebuilt when the model changed)."""
        if getattr(self, "backend_", None) is None or self.backend_.model is not self.model:
            self.backend_ = make_backend(self.model, self.batched)
            self.dtype_ = np.dtype(self.backend_.dtype)
            self.inner_lrs_ = [np.full_like(p, self.inner_lr) for p in self.model.parameters()]
            self._inner_opt: Optional[InnerOptimizer] = None
            self.history_ = History()
            self.n_iter_ = 0
        if self.inner_optimizer is None:
            self._inner_opt = None
        elif self._inner_opt is None or self._inner_opt.factory is not self.inner_optimizer:
            self._inner_opt = InnerOptimizer(self.inner_optimizer)

    def _resolve_loss(self, sampler: Any) -> str:
        if self.loss != "auto":
            return self.loss
        loss = getattr(sampler, "loss", None)
        if loss not in LOSSES:
            raise ValueError("loss: 'auto' needs a task_sampler with a 'loss' attribute in "
                             f"{list(LOSSES)}; got {loss!r}; pass loss= explicitly")
        return loss

    def _lr(self) -> Any:
        return self.inner_lrs_ if self.algorithm == "metasgd" else float(self.inner_lr)

    def _cast(self, batch: TaskBatch, loss: str, where: str = "") -> TaskBatch:
        """``batch`` in the model's dtype; errors name the arrays after ``where`` (the sampler
        argument), or alone without it (:meth:`adapt`'s own arguments)."""
        dt = self.dtype_
        pre = f"{where}: " if where else ""
        for name in ("support_x", "support_y", "query_x", "query_y"):
            # a complex part would be dropped silently by the cast
            real_array(getattr(batch, name), f"{where}: {name}" if where else name)
        sx = batch.support_x.astype(dt, copy=False)
        qx = batch.query_x.astype(dt, copy=False)
        if loss == "cross_entropy":
            sy, qy = batch.support_y, batch.query_y
            n_out = getattr(self.backend_, "out_features", None)
            for name, yy in (("support_y", sy), ("query_y", qy)):
                if yy.ndim != 2 or not np.all(yy == np.round(yy)):
                    shape = "(n_tasks, n_points)" if where else "(n_support,)"
                    got = yy.shape if where else yy.shape[1:]
                    raise ValueError(f"{pre}{name} must hold integer class labels of shape "
                                     f"{shape}, got {got}")
                if n_out is not None and (yy.min() < 0 or yy.max() >= n_out):
                    raise ValueError(f"{pre}{name} has labels outside [0, {n_out}) for a model "
                                     "with that many outputs")
        else:
            sy = batch.support_y.astype(dt, copy=False)
            qy = batch.query_y.astype(dt, copy=False)
        n_in = getattr(self.backend_, "in_features", None)
        if n_in is not None and sx.shape[2:] != (n_in,):
            if not where:
                raise ValueError(f"support_x: expected shape (n_support, {n_in}) for the "
                                 f"model, got {sx.shape[1:]}")
            raise ValueError(f"{pre}support_x has shape {sx.shape}, expected "
                             f"(n_tasks, n_points, {n_in}) for the model")
        return TaskBatch(sx, sy, qx, qy, batch.info)

    @staticmethod
    def _check_sampler(sampler: Any, where: str = "task_sampler") -> None:
        """``TypeError`` naming ``where`` unless ``sampler`` has a ``sample`` method (checked
        first, so that a missing sampler is not reported as a problem of ``loss='auto'``)."""
        if not callable(getattr(sampler, "sample", None)):
            raise TypeError(f"{where}: expected an object with a sample(n_tasks, rng) method, "
                            f"got {type(sampler).__name__}")

    def _sample(self, sampler: Any, n_tasks: int, rng: np.random.Generator, loss: str,
                where: str = "task_sampler") -> TaskBatch:
        self._check_sampler(sampler, where)
        return self._cast(check_task_batch(sampler.sample(n_tasks, rng), n_tasks, where), loss,
                          where)

    # ------------------------------------------------------------------ training
    @keeps_state_on_error
    def fit(self, task_sampler: Any, n_iterations: int) -> MetaLearner:
        """Meta-train for ``n_iterations`` meta-batches drawn from ``task_sampler``.

        Parameters
        ----------
        task_sampler : object with ``sample(n_tasks, rng) -> TaskBatch``
            See :mod:`nesy.meta.tasks`.
        n_iterations : int

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad arguments, or a sampler batch with inconsistent shapes (naming the array).
        FloatingPointError
            A non-finite loss during adaptation, naming the meta-iteration.

        A fit that raises leaves the learner (its ``history_`` and ``n_iter_`` included), its
        model's parameters and the learned inner learning rates as they were before it.
        """
        self._validate()  # a model that is no Module is named before it is snapshot
        before = (self.model.snapshot(), list(getattr(self, "inner_lrs_", ())))
        lrs = [a.copy() for a in before[1]]
        try:
            return self._fit(task_sampler, n_iterations)
        except Exception:
            self.model.restore(before[0])
            for a, b in zip(before[1], lrs):
                np.copyto(a, b)
            raise

    def _fit(self, task_sampler: Any, n_iterations: int) -> MetaLearner:
        self._check_sampler(task_sampler)
        if self.validation_sampler is not None:
            self._check_sampler(self.validation_sampler, "validation_sampler")
        n_iterations = check_int("n_iterations", n_iterations, 1)
        self._setup()
        # Entries go to a copy, assigned at the end: keeps_state_on_error restores attributes
        # by reference, so appending to self.history_ would outlive a fit that raises.
        history = copy.deepcopy(self.history_)
        loss = self._resolve_loss(task_sampler)
        self.loss_ = loss
        rng, val_rng = np.random.default_rng(self.random_state).spawn(2)
        val_sampler = task_sampler if self.validation_sampler is None else self.validation_sampler
        theta = self.model.parameters()
        meta_params = theta + (self.inner_lrs_ if self.algorithm == "metasgd" else [])
        if self.outer_optimizer is None:
            opt = Adam(meta_params, lr=self.outer_lr)
        else:
            opt = _check_made_optimizer("outer_optimizer", self.outer_optimizer(meta_params),
                                       meta_params)
        sched = self.schedule(opt) if self.schedule is not None else None
        if self.schedule is not None and not callable(getattr(sched, "step", None)):
            raise TypeError(f"schedule: expected a factory returning a schedule (with step()) "
                            f"for the optimizer it is given, got {type(sched).__name__} "
                            f"{sched!r}")
        if sched is not None and getattr(sched, "optimizer", opt) is not opt:
            raise ValueError("schedule: the schedule it returned is bound to another optimizer "
                             "than the one it was given")
        plateau = sched is not None and _is_plateau(sched)
        every = self.eval_every or max(1, n_iterations // 50)
        window: List[float] = []
        t0 = time.perf_counter()
        with tqdm(range(n_iterations), desc=f"meta-fit ({self.algorithm})", unit="it",
                  disable=int(self.verbose) <= 0) as bar:  # closed when a fit raises, too
            for i in bar:
                it = self.n_iter_ + 1
                batch = self._sample(task_sampler, self.meta_batch_size, rng, loss)
                step = meta_gradient(self.algorithm, self.backend_, theta, batch, loss,
                                     self.inner_steps, self._lr(), self._inner_opt,
                                     self.first_order, where=f"meta-iteration {it}")
                grads = [g.astype(p.dtype) for g, p in
                         zip(step.grads + (step.lr_grads or []), meta_params)]
                if self.grad_clip is not None:
                    clip_grad_norm(grads, self.grad_clip)
                opt.step(grads)
                if sched is not None and not plateau:
                    sched.step()
                self.n_iter_ = it
                window.append(step.loss)
                if (i + 1) % every == 0 or i + 1 == n_iterations:
                    logs = {"loss": float(np.mean(window))}
                    val = self.evaluate(val_sampler, self.n_val_tasks, rng=val_rng, loss=loss)
                    logs["val_loss"] = val["loss"]
                    if "accuracy" in val:
                        logs["val_accuracy"] = val["accuracy"]
                    logs["lr"] = float(opt.param_groups[0]["lr"])
                    logs["time"] = time.perf_counter() - t0
                    history.append(it, logs)
                    if plateau:
                        sched.step(logs["val_loss"])
                    bar.set_postfix(loss=f"{logs['loss']:.4g}",
                                    val_loss=f"{logs['val_loss']:.4g}")
                    window = []
        self.history_ = history
        return self

    # ------------------------------------------------------------------ adaptation
    def _adapt_batch(self, batch: TaskBatch, steps: int, loss: str, where: str) -> Params:
        params = broadcast_params(self.model.parameters(), batch.support_x.shape[0])
        lr = self.inner_lrs_ if self.algorithm == "metasgd" else float(self.inner_lr)
        return inner_loop(self.backend_, params, batch.support_x, batch.support_y, loss, steps,
                          lr, self._inner_opt, where=where)[0]

    def _check_fitted(self) -> None:
        if getattr(self, "backend_", None) is None:
            self._validate()
            self._setup()

    def adapt(self, support_x: np.ndarray, support_y: np.ndarray,
              steps: Optional[int] = None) -> Module:
        """A copy of the model adapted to one task's support set.

        Parameters
        ----------
        support_x : ndarray of shape (n_support, *in_shape)
        support_y : ndarray of shape (n_support, n_outputs) or (n_support,)
        steps : int, optional
            Inner steps (default ``inner_steps``); ``0`` returns a copy of the meta-model.

        Returns
        -------
        Module
            A deep copy of ``model`` holding the adapted parameters.
        """
        self._check_fitted()
        steps = self.inner_steps if steps is None else check_int("steps", steps, 0)
        sx, sy = np.asarray(support_x), np.asarray(support_y)
        if sx.ndim < 2 or sx.shape[0] == 0:
            raise ValueError(f"support_x: expected shape (n_support, ...) with n_support >= 1, "
                             f"got {sx.shape}")
        if sy.shape[:1] != sx.shape[:1]:
            raise ValueError(f"support_y: has shape {sy.shape}, expected {sx.shape[0]} rows "
                             f"like support_x {sx.shape}")
        loss = getattr(self, "loss_", None) or (self.loss if self.loss != "auto" else "mse")
        batch = check_task_batch(TaskBatch(sx[None], sy[None], sx[None], sy[None]),
                                 where="adapt")
        batch = self._cast(batch, loss)
        params = self._adapt_batch(batch, steps, loss, "adapt")
        adapted = copy.deepcopy(self.model)
        for dst, src in zip(adapted.parameters(), params):
            np.copyto(dst, src[0])
        return adapted

    def evaluate(self, task_sampler: Any, n_tasks: int = 600, steps: Optional[int] = None,
                 rng: Any = None, loss: Optional[str] = None, chunk: int = 100,
                 ) -> Dict[str, Any]:
        """Adapt to ``n_tasks`` fresh tasks and score each on its query set.

        Parameters
        ----------
        task_sampler : object with ``sample(n_tasks, rng)``
        n_tasks : int, default 600
        steps : int, optional
            Adaptation steps (default ``inner_steps``).
        rng : None, int or numpy.random.Generator
            Seeds the task draws (pass the same seed to compare learners on the same tasks).
        loss : str, optional
            Default: the loss of the last fit, or the sampler's.
        chunk : int, default 100
            Tasks adapted together.

        Returns
        -------
        dict
            ``"loss"`` (mean query loss after adaptation), ``"loss_ci95"`` (half-width of the
            95 % interval), ``"loss_before"`` (before adaptation), ``"losses"`` (per task), and
            for classification ``"accuracy"``, ``"accuracy_ci95"``.
        """
        self._check_fitted()
        n_tasks = check_int("n_tasks", n_tasks, 1)
        chunk = check_int("chunk", chunk, 1)
        check_seed("rng", rng)
        steps = self.inner_steps if steps is None else check_int("steps", steps, 0)
        self._check_sampler(task_sampler)
        loss = loss or self._resolve_loss(task_sampler)
        gen = np.random.default_rng(rng)
        before: List[np.ndarray] = []
        after: List[np.ndarray] = []
        acc: List[np.ndarray] = []
        theta = self.model.parameters()
        done = 0
        while done < n_tasks:
            m = min(chunk, n_tasks - done)
            batch = self._sample(task_sampler, m, gen, loss)
            phi = self._adapt_batch(batch, steps, loss, f"evaluate, tasks {done}..{done + m}")
            for ps, store in ((broadcast_params(theta, m), before), (phi, after)):
                with np.errstate(over="ignore", invalid="ignore"):
                    out = self.backend_.predict(ps, batch.query_x)
                    store.append(batched_loss(loss, out, batch.query_y, need_grad=False)[0])
            if not np.all(np.isfinite(after[-1])):
                t = done + int(np.flatnonzero(~np.isfinite(after[-1]))[0])
                raise FloatingPointError(f"non-finite query loss after adaptation (evaluate, "
                                         f"task {t}, {steps} steps); adaptation diverged")
            if loss == "cross_entropy":
                acc.append(np.mean(np.argmax(out, axis=2) == batch.query_y, axis=1))
            done += m
        losses = np.concatenate(after).astype(np.float64)
        res: Dict[str, Any] = {"loss": float(losses.mean()), "loss_ci95": _ci95(losses),
                               "loss_before": float(np.concatenate(before).mean()),
                               "losses": losses}
        if acc:
            a = np.concatenate(acc)
            res.update(accuracy=float(a.mean()), accuracy_ci95=_ci95(a))
        return res

    # ------------------------------------------------------------------ persistence
    def save(self, path: os.PathLike[str] | str) -> None:
        """Write the meta-parameters (and Meta-SGD's rates) to an ``.npz`` file atomically.

        Keys: ``theta/<name>`` per parameter, ``inner_lr/<name>`` per learned rate, ``config``
        (JSON bytes: algorithm, loss, inner_lr, inner_steps, n_iter).
        """
        self._check_fitted()
        arrays: Dict[str, np.ndarray] = {}
        for (name, p), lr in zip(self.model.named_parameters(), self.inner_lrs_):
            arrays[f"theta/{name}"] = p
            arrays[f"inner_lr/{name}"] = lr
        config = {"algorithm": self.algorithm, "loss": getattr(self, "loss_", self.loss),
                  "inner_lr": float(self.inner_lr), "inner_steps": int(self.inner_steps),
                  "n_iter": int(self.n_iter_)}
        arrays["config"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
        atomic_savez(path, arrays)

    def load(self, path: os.PathLike[str] | str) -> MetaLearner:
        """Load a file written by :meth:`save` into ``model`` (bit-identical); returns self.

        As PyTorch's ``load_state_dict``, this loads the learned state (the meta-parameters,
        the inner learning rates, and ``n_iter_`` when the file records it: files written
        before it was saved keep the learner's) and keeps the learner's own hyper-parameters
        (``inner_lr``, ``inner_steps``, ...; the file's are in its ``config``). Files of
        ``"maml"``, ``"fomaml"`` and ``"reptile"`` hold the same state and load into each
        other's learners (train with one, fine-tune or evaluate with another). A Meta-SGD file
        loads only into a Meta-SGD learner and the reverse: it holds learned per-parameter
        rates that another algorithm would ignore, and another algorithm's file holds no
        learned rates for Meta-SGD. To reuse such a file on purpose, load it into a learner of
        the file's algorithm, then ``set_params(algorithm=...)``.

        Raises
        ------
        ValueError
            Naming the file: it was saved by a Meta-SGD learner and this one is not (or the
            reverse), its ``n_iter`` is not an integer >= 0, or a parameter is missing, its
            shape or dtype differs, or it holds NaN or infinity (naming the key); nothing is
            changed then.
        """
        from nesy._io import read_npz

        self._check_fitted()
        shown = os.fspath(path)
        data = read_npz(path, "MetaLearner", ("config",))
        try:  # the config is read before anything is copied: a bad one changes nothing
            config = json.loads(data["config"].tobytes().decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{shown!r}: not a nesy MetaLearner file ('config' is not UTF-8 "
                             f"JSON: {exc})") from None
        if not isinstance(config, dict):
            raise ValueError(f"{shown!r}: not a nesy MetaLearner file ('config' is not a JSON "
                             "object)")
        n_iter = config.get("n_iter")  # files written before save recorded it have none
        if n_iter is not None and (isinstance(n_iter, bool) or not isinstance(n_iter, int)
                                   or n_iter < 0):
            raise ValueError(f"{shown!r}: not a nesy MetaLearner file ('config' has n_iter "
                             f"{n_iter!r}, expected an integer >= 0)")
        saved_by = config.get("algorithm", self.algorithm)
        if (saved_by == "metasgd") != (self.algorithm == "metasgd"):  # learned rates or none
            raise ValueError(f"{shown!r}: saved by a {saved_by!r} learner, this one is "
                             f"{self.algorithm!r} (algorithm); load it into a learner of "
                             f"algorithm={saved_by!r}")
        pairs = []
        for (name, p), lr in zip(self.model.named_parameters(), self.inner_lrs_):
            for key, dst in ((f"theta/{name}", p), (f"inner_lr/{name}", lr)):
                if key not in data:
                    raise ValueError(f"{shown!r}: missing key {key!r}")
                src = data[key]
                if src.shape != dst.shape or src.dtype != dst.dtype:
                    raise ValueError(f"{shown!r}: key {key!r} has {src.dtype}{src.shape}, "
                                     f"expected {dst.dtype}{dst.shape}")
                if not np.isfinite(src).all():
                    raise ValueError(f"{shown!r}: key {key!r} contains NaN or infinity")
                pairs.append((dst, src))
        for dst, src in pairs:
            np.copyto(dst, src)
        if config.get("loss") in LOSSES:
            self.loss_ = config["loss"]
        if n_iter is not None:
            self.n_iter_ = n_iter
        return self
