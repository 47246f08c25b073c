"""Inner loops and meta-gradients of Reptile, first-order MAML, MAML and Meta-SGD.

Everything works on a whole meta-batch at once: parameters carry a leading task axis and the
backend (:mod:`nesy.meta.functional`) evaluates every task in one call. Notation: ``theta`` are
the meta-parameters, ``phi_t`` the parameters after adapting to task ``t``, ``L^s_t`` / ``L^q_t``
the task's support / query loss, ``alpha`` the inner learning rate (a scalar, or for Meta-SGD one
array per parameter), ``k`` the number of inner steps.

- Reptile (Nichol et al. 2018): ``phi_t`` = ``k`` inner steps on the task's support and query
  points together; meta-gradient ``theta - mean_t phi_t`` (with outer SGD of rate ``eps`` this is
  ``theta += eps * (mean phi - theta)``).
- FOMAML (Finn et al. 2017, first-order): ``phi_t`` = ``k`` inner steps on ``L^s_t``;
  meta-gradient ``mean_t grad L^q_t(phi_t)``.
- MAML (second order): inner SGD ``theta_{i+1} = theta_i - alpha grad L^s(theta_i)``; the
  meta-gradient is back-propagated through the steps, ``v_k = grad L^q(phi)``,
  ``v_i = v_{i+1} - H^s(theta_i) (alpha v_{i+1})``, meta-gradient ``mean_t v_0`` -- one
  Hessian-vector product per inner step.
- Meta-SGD (Li et al. 2017): as MAML with ``alpha`` learned per parameter; its gradient is
  ``-sum_i grad L^s(theta_i) * v_{i+1}``. First order drops the Hessian terms (``v_i = v_k``),
  which is exact for ``alpha`` with one inner step.

Inner loops other than plain SGD (any nesy optimizer, e.g. the hypergradient ones) are built
by a factory over one parameter group per task, so an optimizer whose learning rate adapts
(:class:`~nesy.optim.SGDHD`, :class:`~nesy.optim.AdamHD`) adapts it for each task separately,
and all tasks still step in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from nesy.meta.functional import Params, broadcast_params

__all__ = ["ALGORITHMS", "InnerOptimizer", "MetaStep", "inner_loop", "meta_gradient"]

ALGORITHMS = ("reptile", "fomaml", "maml", "metasgd")
Lr = Union[float, Sequence[np.ndarray]]
OptimizerFactory = Callable[[List[dict]], Any]


@dataclass
class MetaStep:
    """Result of one meta-gradient evaluation.

    Attributes
    ----------
    grads : list of ndarray
        Meta-gradient with respect to each meta-parameter (their shapes, no task axis).
    lr_grads : list of ndarray or None
        Meta-SGD: gradient with respect to each per-parameter learning rate.
    loss : float
        Mean over tasks of the query loss after adaptation (Reptile: of the loss on the task's
        points before its last inner step).
    losses : ndarray of shape (n_tasks,)
    """

    grads: Params
    lr_grads: Optional[Params]
    loss: float
    losses: np.ndarray


def _lr_times(lr: Lr, g: np.ndarray, i: int) -> np.ndarray:
    """``alpha * g`` for a scalar rate or the ``i``-th per-parameter rate (broadcast on tasks)."""
    if isinstance(lr, (float, int, np.floating)):
        return g * g.dtype.type(lr)
    return g * lr[i]


def _check_finite(losses: np.ndarray, where: str, step: int) -> None:
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        raise FloatingPointError(
            f"non-finite loss during adaptation ({where}, inner step {step}, task {int(bad[0])}:"
            f" {losses[bad[0]]}); lower the inner learning rate or check the data"
        )


def _check_made_optimizer(name: str, opt: Any, params: Sequence[np.ndarray],
                         needs: Sequence[str] = ()) -> Any:
    """The optimizer that the factory ``name`` returned for ``params`` (the arrays of its
    argument, groups concatenated). ``TypeError`` naming the factory if it returned no
    optimizer (``step``, ``param_groups`` and the methods ``needs``), ``ValueError`` if the
    optimizer holds other arrays than ``params`` in that order (its updates would go to
    them, and the model would silently not change)."""
    missing = [m for m in ("step", *needs) if not callable(getattr(opt, m, None))]
    if missing or not isinstance(getattr(opt, "param_groups", None), (list, tuple)):
        want = ", ".join(f"{m}()" for m in ("step", *needs))
        raise TypeError(f"{name}: expected a factory returning a nesy optimizer (with {want} "
                        f"and param_groups) for the parameters it is given, got "
                        f"{type(opt).__name__} {opt!r}")
    held = [p for g in opt.param_groups if isinstance(g, dict) for p in g.get("params", ())]
    if len(held) != len(params) or any(a is not b for a, b in zip(held, params)):
        n = len(held)
        what = (f"{n} array{'s' if n != 1 else ''}" if n != len(params)
                else "other arrays (copies?) or the same in another order")
        raise ValueError(f"{name}: the optimizer it returned does not hold the {len(params)} "
                         f"arrays it was given, in their order, but {what}; build it on the "
                         "factory's argument")
    return opt


class InnerOptimizer:
    """A nesy optimizer for the inner loop, built once and reused across meta-iterations.

    Building an optimizer over one parameter group per task costs more than a meta-iteration,
    so the optimizer is made once over persistent ``(n_tasks, ...)`` buffers; each
    :meth:`start` copies the new starting parameters in, forgets all optimizer state
    (``zero_state``) and restores every group's initial learning rate (hypergradient optimizers
    change it). A new optimizer is built only when the task count, shapes or dtypes change.

    Parameters
    ----------
    factory : callable
        ``factory(param_groups) -> optimizer``; it receives one group per task.
    """

    def __init__(self, factory: OptimizerFactory) -> None:
        if not callable(factory):
            raise TypeError(f"inner_optimizer: expected a callable, got {type(factory).__name__}")
        self.factory = factory
        self._key: Optional[tuple] = None
        self.buffers: Params = []
        self.opt: Any = None
        self._lr0: List[float] = []

    def start(self, params: Sequence[np.ndarray]) -> Params:
        """Load ``params`` (task axis first) and reset the optimizer; returns the buffers."""
        key = tuple((p.shape, p.dtype.str) for p in params)
        if key != self._key:
            self.buffers = [np.array(p, order="C", copy=True) for p in params]
            n_tasks = params[0].shape[0]
            groups = [{"params": [b[t] for b in self.buffers]} for t in range(n_tasks)]
            self.opt = _check_made_optimizer("inner_optimizer", self.factory(groups),
                                            [p for g in groups for p in g["params"]],
                                            needs=("zero_state",))
            self._lr0 = [g["lr"] for g in self.opt.param_groups]
            self._key = key
            return self.buffers
        self.opt.zero_state()
        for g, lr in zip(self.opt.param_groups, self._lr0):
            g["lr"] = lr
        for b, p in zip(self.buffers, params):
            np.copyto(b, p)
        return self.buffers

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """One update of every task from its gradients (task axis first)."""
        n_tasks = grads[0].shape[0]
        self.opt.step([g[t] for t in range(n_tasks) for g in grads])


def inner_loop(backend: Any, params: Params, x: np.ndarray, y: np.ndarray, loss: str,
               steps: int, lr: Lr,
               optimizer: Union[None, OptimizerFactory, InnerOptimizer] = None,
               keep: bool = False, where: str = "adapt",
               ) -> Tuple[Params, List[Tuple[Params, Params]], np.ndarray]:
    """Adapt every task's parameters with ``steps`` updates on its own data.

    Parameters
    ----------
    backend : BatchedMLP or ModuleLoop
    params : list of ndarray with the task axis
        Starting parameters (left unchanged).
    x, y : ndarray
        Each task's data, ``(n_tasks, n_points, ...)``.
    loss : {"mse", "cross_entropy"}
    steps : int
    lr : float or list of ndarray
        SGD rate: a scalar or one array per parameter (Meta-SGD); ignored with ``optimizer``.
    optimizer : callable or InnerOptimizer, optional
        ``optimizer(param_groups)`` returning a nesy optimizer; it gets one group per task
        (``{"params": [p[t] for p in params]}``) and is stepped with the matching gradients.
        Pass an :class:`InnerOptimizer` to reuse one optimizer across calls.
    keep : bool
        Whether to return the trajectory ``[(theta_i, grad_i)]`` (for second-order gradients).
    where : str
        Named in the error raised when a loss is not finite.

    Returns
    -------
    params : list of ndarray
        The adapted parameters.
    trajectory : list of (params, grads)
        The parameters and support gradients before each step (empty unless ``keep``).
    losses : ndarray of shape (n_tasks,)
        The losses computed before the last step (before adaptation when ``steps == 0``).

    Raises
    ------
    FloatingPointError
        When a task's loss is NaN or infinite, naming ``where``, the step and the task.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite losses raise below
        return _inner_loop(backend, params, x, y, loss, steps, lr, optimizer, keep, where)


def _inner_loop(backend: Any, params: Params, x: np.ndarray, y: np.ndarray, loss: str,
                steps: int, lr: Lr, optimizer: Union[None, OptimizerFactory, InnerOptimizer],
                keep: bool, where: str, rng_states: Optional[list] = None,
                ) -> Tuple[Params, List[Tuple[Params, Params]], np.ndarray]:
    """:func:`inner_loop`; with a list ``rng_states``, the backend's random state before each
    step's gradient is appended to it (second-order MAML replays it in the HVP)."""
    traj: List[Tuple[Params, Params]] = []
    losses = np.full(x.shape[0], np.nan)
    opt = None
    if optimizer is not None and steps > 0:
        opt = optimizer if isinstance(optimizer, InnerOptimizer) else InnerOptimizer(optimizer)
        params = opt.start(params)
    for s in range(steps):
        if rng_states is not None:
            rng_states.append(backend.rng_state())
        losses, grads = backend.loss_grad(params, x, y, loss)
        _check_finite(losses, where, s)
        assert grads is not None
        if keep:
            traj.append((params, grads))
        if opt is not None:
            opt.step(grads)
        else:
            params = [p - _lr_times(lr, g, i) for i, (p, g) in enumerate(zip(params, grads))]
    if opt is not None:
        params = [p.copy() for p in params]
    if steps == 0:
        losses, _ = backend.loss_grad(params, x, y, loss, need_grad=False)
    return params, traj, losses


def meta_gradient(algorithm: str, backend: Any, theta: Sequence[np.ndarray], batch: Any,
                  loss: str, steps: int, lr: Lr,
                  optimizer: Union[None, OptimizerFactory, InnerOptimizer] = None,
                  first_order: bool = True, where: str = "meta-iteration") -> MetaStep:
    """Meta-gradient of one meta-batch for ``algorithm`` (see the module docstring).

    Parameters
    ----------
    algorithm : {"reptile", "fomaml", "maml", "metasgd"}
    backend : BatchedMLP or ModuleLoop
    theta : list of ndarray
        Meta-parameters (no task axis).
    batch : TaskBatch
        Arrays already validated and cast to the parameters' dtype.
    loss, steps, lr, optimizer
        As in :func:`inner_loop`; ``lr`` is the list of per-parameter rates for Meta-SGD.
    first_order : bool
        Meta-SGD only: drop the Hessian terms.
    where : str
        Named in errors (e.g. ``"meta-iteration 17"``).
    """
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite losses raise
        return _meta_gradient(algorithm, backend, theta, batch, loss, steps, lr, optimizer,
                              first_order, where)


def _meta_gradient(algorithm: str, backend: Any, theta: Sequence[np.ndarray], batch: Any,
                   loss: str, steps: int, lr: Lr,
                   optimizer: Union[None, OptimizerFactory, InnerOptimizer],
                   first_order: bool, where: str) -> MetaStep:
    n_tasks = batch.support_x.shape[0]
    params = broadcast_params(theta, n_tasks)
    if algorithm == "reptile":
        x = np.concatenate([batch.support_x, batch.query_x], axis=1)
        y = np.concatenate([batch.support_y, batch.query_y], axis=1)
        phi, _, losses = inner_loop(backend, params, x, y, loss, steps, lr, optimizer,
                                    where=where)
        grads = [th - p.mean(axis=0) for th, p in zip(theta, phi)]
        return MetaStep(grads, None, float(np.mean(losses)), losses)
    second = algorithm == "maml" or (algorithm == "metasgd" and not first_order)
    keep = second or algorithm == "metasgd"
    # A backend with random modules (ModuleLoop over a model with Dropout): record the random
    # state of each inner step, so that its Hessian-vector product uses the masks that step's
    # gradient used (the Hessian of the loss that was differentiated, as autograd would).
    states: Optional[list] = (
        [] if second and callable(getattr(backend, "rng_state", None)) and backend.rng_state()
        else None)
    phi, traj, _ = _inner_loop(backend, params, batch.support_x, batch.support_y, loss, steps,
                               lr, optimizer, keep, where, states)
    losses, v = backend.loss_grad(phi, batch.query_x, batch.query_y, loss)
    _check_finite(losses, where + " (query loss)", steps)
    assert v is not None
    end_state = backend.rng_state() if states else None
    lr_grads: Optional[Params] = None
    if algorithm == "metasgd":
        lr_grads = [np.zeros_like(p) for p in theta]
    for i in range(len(traj) - 1, -1, -1):
        th_i, g_i = traj[i]
        if lr_grads is not None:
            for j, (gi, vj) in enumerate(zip(g_i, v)):
                lr_grads[j] -= np.einsum("t...,t...->...", gi, vj) / n_tasks
        if second:
            av = [_lr_times(lr, vj, j) for j, vj in enumerate(v)]
            if states:
                _, hv = backend.hvp(th_i, batch.support_x, batch.support_y, loss, av,
                                    rng_state=states[i])
            else:
                _, hv = backend.hvp(th_i, batch.support_x, batch.support_y, loss, av)
            v = [vj - h for vj, h in zip(v, hv)]
    if end_state is not None:
        backend.set_rng_state(end_state)  # later passes draw fresh masks, not replayed ones
    grads = [vj.mean(axis=0) for vj in v]
    return MetaStep(grads, lr_grads, float(np.mean(losses)), losses)
