"""Learning-rate schedules for any optimizer with ``param_groups`` (nesy's and torch's).

The interface follows :mod:`torch.optim.lr_scheduler`:

- ``Schedule(optimizer, ..., last_epoch=-1)`` records each group's ``"initial_lr"`` (set with
  ``setdefault`` in the group dict, as torch does) as :attr:`base_lrs` and writes the learning
  rate of step 0 into every group;
- :meth:`step` advances one step (call it once per epoch or once per iteration, your choice) and
  writes the new learning rate into every group; :meth:`get_last_lr` returns them;
- :meth:`state_dict` / :meth:`load_state_dict` use plain dicts of Python numbers, lists and
  strings that ``json.dumps(..., allow_nan=False)`` accepts. :meth:`load_state_dict` also
  takes the ``state_dict()`` of the matching torch scheduler (its ``'_last_lr'``, and the
  hyper-parameters torch does not save taken from the schedule, built with the same
  arguments; see ``_Base._from_torch``).

The schedules, with torch's names, arguments and formulas unless their docstrings say
otherwise:

- fixed shapes: :class:`Constant`, :class:`ConstantLR`, :class:`LinearLR`, :class:`StepLR`,
  :class:`MultiStepLR`, :class:`ExponentialLR`, :class:`InverseTimeLR`, :class:`InverseSqrtLR`,
  :class:`PolynomialLR`, :class:`CosineAnnealingLR`, :class:`CosineAnnealingWarmRestarts`,
  :class:`OneCycleLR`;
- user functions of the step: :class:`LambdaLR`, :class:`MultiplicativeLR`;
- compositions of other schedules: :class:`LinearWarmup` (a warm-up in front of any schedule),
  :class:`SequentialLR` (one after another, switching at milestones),
  :class:`ChainedScheduler` (the product of their factors);
- driven by a metric: :class:`ReduceLROnPlateau`.

Every schedule except :class:`ReduceLROnPlateau` also has a closed form ``lr_at(t, base_lr)``,
the learning rate at step ``t`` of a group whose initial learning rate is ``base_lr`` (pure,
except that :class:`LambdaLR` and :class:`MultiplicativeLR` call the user's function).
:meth:`step` evaluates that closed form, so no error accumulates from repeated multiplication
(torch's chainable ``get_lr`` multiplies; the two agree to a few ulps per step).
:class:`CosineAnnealingWarmRestarts` keeps torch's ``T_cur`` / ``T_i`` counters, but they are
integers, so its :meth:`step` and ``lr_at`` agree bit for bit; :class:`MultiplicativeLR`
multiplies at every step as torch does, and its ``lr_at`` multiplies in the same order.

A schedule's rate is its own: it writes it into the groups at every step rather than scaling
the groups' current ``"lr"`` (torch's chainable form scales it). Use
:class:`ChainedScheduler`, :class:`SequentialLR` or :class:`LinearWarmup` to combine schedules;
two schedules stepped side by side on one optimizer overwrite each other.

For the same reason the closed-form schedules (all but :class:`ReduceLROnPlateau`, also as
members of :class:`SequentialLR` and :class:`ChainedScheduler`) refuse a hypergradient
optimizer (:class:`~nesy.optim.SGDHD`, :class:`~nesy.optim.AdamHD`, or any optimizer whose
groups hold ``"hypergrad_lr"``): it adapts its learning rate at every step, and the schedule
would overwrite the adapted rate at every step. The constructor raises ``ValueError`` naming
``optimizer``. :class:`ReduceLROnPlateau` is allowed: it only multiplies the group's current
(adapted) rate by ``factor`` when the metric plateaus, and never writes a rate of its own.

Examples
--------
>>> class Opt:
...     param_groups = [{"lr": 0.1}]
>>> opt = Opt()
>>> sched = LinearWarmup(CosineAnnealingLR(opt, T_max=100), warmup_steps=5)
>>> for epoch in range(100):
...     pass  # train one epoch with opt.param_groups[0]["lr"]
...     sched.step()
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import functools
import math
import numbers
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from nesy._checks import check_bool, check_int

__all__ = [
    "LRSchedule",
    "Constant",
    "ConstantLR",
    "LinearLR",
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "InverseTimeLR",
    "InverseSqrtLR",
    "PolynomialLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "LinearWarmup",
    "SequentialLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
]


# ---------------------------------------------------------------------------------- validation
def _check_real(
    name: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """A finite real number in [lo, hi] (ends open where asked).

    Besides Python and NumPy real numbers, a 0-d real array and a scalar object with
    ``__float__`` and shape ``()`` (a torch scalar tensor) are taken, as torch takes them;
    bools and complex values are refused."""
    v = _as_real(value)
    if v is None:
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v}")
    bad = (lo is not None and (v <= lo if lo_open else v < lo)) or (
        hi is not None and (v >= hi if hi_open else v > hi)
    )
    if bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else repr(lo)
        hi_s = "inf" if hi is None else repr(hi)
        raise ValueError(f"{name}: expected a value in {left}{lo_s}, {hi_s}{right}, got {v}")
    return v


def _as_real(value: Any) -> float | None:
    """``value`` as a float if it is a real number (see :func:`_check_real`), else None."""
    if isinstance(value, (bool, str, bytes)):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    dtype = str(getattr(value, "dtype", ""))
    if ("bool" in dtype or "complex" in dtype or getattr(value, "shape", ()) != ()
            or not hasattr(value, "__float__")):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value


def _check_list(name: str, value: Any, item: Callable[[str, Any], Any]) -> list[Any]:
    """A list (or tuple) whose entries each pass ``item(f"{name}[i]", entry)``."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name}: expected a list, got {type(value).__name__} {value!r}")
    return [item(f"{name}[{i}]", v) for i, v in enumerate(value)]


def _check_milestones(name: str, value: Any) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name}: expected an iterable of integers, got {type(value).__name__}")
    return sorted(check_int(f"{name}[{i}]", m, 0) for i, m in enumerate(value))


def _check_increasing(name: str, value: Any) -> list[int]:
    """Integers ``>= 0`` in strictly increasing order (kept as given, not sorted)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name}: expected an iterable of integers, got {type(value).__name__}")
    out = [check_int(f"{name}[{i}]", m, 0) for i, m in enumerate(value)]
    if any(a >= b for a, b in zip(out, out[1:])):
        raise ValueError(f"{name}: expected strictly increasing steps, got {out}")
    return out


def _saved_float(name: str, value: Any) -> float:
    """A float from a state dict: a real number or one of the strings of :func:`_enc`."""
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    return float(value)


def _saved_lr(name: str, value: Any) -> float:
    """A learning rate from a state dict: ``>= 0`` (infinity included, after an overflow)."""
    v = _saved_float(name, value)
    if not v >= 0:
        raise ValueError(f"{name}: expected a learning rate >= 0, got {v}")
    return v


#: Checks shared by the constructors and ``load_state_dict``: ``check(name, value)`` returns
#: the value to store or raises naming ``name``.
Check = Callable[[str, Any], Any]
_positive: Check = functools.partial(_check_real, lo=0.0, lo_open=True)
_nonneg: Check = functools.partial(_check_real, lo=0.0)
_fraction: Check = functools.partial(_check_real, lo=0.0, hi=1.0)


def _int_min(minimum: int) -> Check:
    return functools.partial(check_int, minimum=minimum)


def _choice(*choices: str) -> Check:
    return functools.partial(_check_choice, choices=choices)


def _param_groups(optimizer: Any, closed_form: bool = True) -> list[MutableMapping[str, Any]]:
    """The optimizer's groups, each checked to be a dict with a finite ``lr`` >= 0.

    With ``closed_form`` (every schedule but :class:`ReduceLROnPlateau`), an optimizer that
    adapts its learning rate itself is refused (see :func:`_refuse_adaptive`)."""
    groups = getattr(optimizer, "param_groups", None)
    if groups is None:
        raise TypeError(
            "optimizer: expected an object with a 'param_groups' list of dicts (a nesy.optim or "
            f"torch.optim optimizer), got {type(optimizer).__name__}"
        )
    if not isinstance(groups, Sequence) or isinstance(groups, (str, bytes)):
        raise TypeError(
            f"optimizer.param_groups: expected a list of dicts, got {type(groups).__name__}"
        )
    if len(groups) == 0:
        raise ValueError("optimizer.param_groups: is empty")
    for i, g in enumerate(groups):
        if not isinstance(g, MutableMapping):
            raise TypeError(f"optimizer.param_groups[{i}]: expected a dict, got {type(g).__name__}")
        if "lr" not in g:
            raise KeyError(f"optimizer.param_groups[{i}]: has no 'lr'")
        _check_real(f"optimizer.param_groups[{i}]['lr']", g["lr"], lo=0.0)
    if closed_form:
        _refuse_adaptive(optimizer, groups)
    return list(groups)


def _refuse_adaptive(optimizer: Any, groups: Sequence[Mapping[str, Any]]) -> None:
    """``ValueError`` naming ``optimizer`` for a hypergradient optimizer (:class:`SGDHD`,
    :class:`AdamHD`, or any optimizer whose groups hold ``"hypergrad_lr"``): it adapts its
    learning rate at every step, and a closed-form schedule, which writes its own rate at
    every step, would throw the adapted rate away each time. Raised before anything changes."""
    if any("hypergrad_lr" in g for g in groups):
        raise ValueError(
            f"optimizer: {type(optimizer).__name__} adapts its learning rate itself "
            "(hypergradient descent: its param_groups hold 'hypergrad_lr'), and this schedule "
            "would overwrite the adapted rate at every step; use it without a schedule or "
            "with ReduceLROnPlateau (which only scales the current rate), or schedule an "
            "optimizer that does not adapt its rate"
        )


def _check_t(t: Any) -> int:
    return check_int("t", t, 0)


def _gamma_power(sched: Any, t: int, base_lr: float, k: int) -> float:
    """``base_lr * gamma**k`` of a decay schedule at step ``t``. With ``gamma > 1`` (a
    learning-rate range test) it leaves the float range after enough steps: ``ValueError``
    naming the schedule, the step and ``gamma`` (Python's ``**`` raises ``OverflowError``, a
    product that overflows gives infinity), raised before the schedule changes."""
    try:
        lr = base_lr * sched.gamma**k
    except OverflowError:
        if base_lr == 0:
            return 0.0
        lr = math.inf
    if lr == math.inf and math.isfinite(base_lr):
        raise ValueError(
            f"{type(sched).__name__}: the learning rate overflows at step {t} "
            f"(gamma={sched.gamma} to the power {k}, initial learning rate {base_lr}); stop "
            "the schedule earlier or use a smaller gamma"
        )
    return lr


# ---------------------------------------------------------------------------------- state dicts
def _enc(x: Any) -> Any:
    """JSON-safe copy: non-finite floats become the strings 'inf', '-inf', 'nan'."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, (list, tuple)):
        return [_enc(v) for v in x]
    return x


def _check_lambdas(lr_lambda: Any, n_groups: int) -> list[Callable[[int], Any]]:
    """One callable per parameter group: ``lr_lambda`` for all, or the entries of a list."""
    if isinstance(lr_lambda, (list, tuple)):
        if len(lr_lambda) != n_groups:
            raise ValueError(
                f"lr_lambda: expected {n_groups} callables (one per parameter group), "
                f"got {len(lr_lambda)}"
            )
        named = [(f"lr_lambda[{i}]", fn) for i, fn in enumerate(lr_lambda)]
    else:
        named = [("lr_lambda", lr_lambda)] * n_groups
    for name, fn in named:
        if not callable(fn):
            raise TypeError(
                f"{name}: expected a callable (epoch -> factor), got {type(fn).__name__} {fn!r}"
            )
    return [fn for _, fn in named]


def _attrs(fn: Any) -> dict[str, Any] | None:
    """The attributes of a callable object, or None for a function or lambda (as torch saves
    ``lr_lambda``: only callable objects have a state worth saving)."""
    if isinstance(fn, types.FunctionType):
        return None
    attrs = getattr(fn, "__dict__", None)
    return attrs if isinstance(attrs, dict) else None


def _lambda_updates(fns: Sequence[Any], saved: Any) -> list[tuple[Any, dict[str, Any]]]:
    """Check ``state_dict['lr_lambdas']`` against the schedule's callables and return the
    attribute updates to apply (nothing is changed here)."""
    key = "state_dict['lr_lambdas']"
    if not isinstance(saved, (list, tuple)):
        raise TypeError(f"{key}: expected a list, got {type(saved).__name__}")
    if len(saved) != len(fns):
        raise ValueError(f"{key}: has {len(saved)} entries but the schedule has {len(fns)} "
                         "lr_lambdas (one per parameter group)")
    updates = []
    for i, (fn, attrs) in enumerate(zip(fns, saved)):
        if attrs is None:
            continue
        if not isinstance(attrs, Mapping):
            raise TypeError(f"{key}[{i}]: expected None or a dict of the callable's "
                            f"attributes, got {type(attrs).__name__}")
        if _attrs(fn) is None:
            raise ValueError(f"{key}[{i}]: holds the attributes of a callable object, but "
                             f"lr_lambda of group {i} is a function (which has no state)")
        updates.append((fn, dict(attrs)))
    return updates


@contextlib.contextmanager
def _all_or_nothing(sched: LRSchedule) -> Iterator[None]:
    """If the block raises, put back the attributes of ``sched`` and of every schedule and
    callable object inside it, and the learning rates of the optimizer's groups."""
    saved = [(obj, dict(vars(obj))) for obj in sched._parts()]
    groups = sched.optimizer.param_groups
    lrs = [g["lr"] for g in groups]
    try:
        yield
    except BaseException:
        for obj, attrs in saved:
            vars(obj).clear()
            vars(obj).update(attrs)
        for g, lr in zip(groups, lrs):
            g["lr"] = lr
        raise


class _Base:
    """What every schedule shares: the optimizer, ``base_lrs`` and the last learning rates.

    Hyper-parameters are declared in ``_hyper``, name -> check: the constructor sets them
    with :meth:`_set_hyper` and ``load_state_dict`` runs the same checks on the loaded values.
    """

    optimizer: Any
    base_lrs: list[float]
    last_epoch: int
    _last_lr: list[float]
    _hyper: Mapping[str, Check] = {}
    #: Hyper-parameters that are lists with one entry per parameter group.
    _per_group: tuple[str, ...] = ()
    #: Smallest ``last_epoch`` a state may hold.
    _min_last_epoch = -1

    def _set_hyper(self, **values: Any) -> None:
        """Check hyper-parameters given to the constructor (names as the arguments)."""
        for k, v in values.items():
            setattr(self, k, self._hyper[k](k, v))

    def get_last_lr(self) -> list[float]:
        """The learning rate of every group, as last written by this schedule.

        Returns
        -------
        list of float
            One learning rate per parameter group (a copy).
        """
        return list(self._last_lr)

    def _write(self, lrs: Sequence[float]) -> None:
        groups = self.optimizer.param_groups
        for g, lr in zip(groups, lrs):
            g["lr"] = float(lr)
        self._last_lr = [float(lr) for lr in lrs]

    def _check_n_groups(self, n: int, where: str) -> None:
        have = len(self.optimizer.param_groups)
        if have != n:
            raise ValueError(
                f"{where}: has {n} learning rates but the optimizer has {have} parameter groups "
                "(was a group added after the schedule was created?)"
            )

    def _loaded(self, state_dict: Any, keys: Iterable[str]) -> Any:
        """A copy of the schedule holding the hyper-parameters, ``last_epoch``, ``base_lrs``
        and ``last_lr`` of ``state_dict``, each checked as the constructor checks it (errors
        name the key). ``self`` is not touched: the caller checks the rest on the copy and
        then swaps it in with :meth:`_swap`."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict: expected a dict, got {type(state_dict).__name__}")
        kind = state_dict.get("type", type(self).__name__)
        if kind != type(self).__name__:
            raise ValueError(
                f"state_dict: was saved by a {kind}, cannot load into a {type(self).__name__}"
            )
        state_dict = self._from_torch(state_dict, keys)
        missing = [k for k in keys if k not in state_dict]
        if missing:
            raise ValueError(f"state_dict: missing key(s) {missing}")
        new = copy.copy(self)
        for k, check in self._hyper.items():
            setattr(new, k, check(f"state_dict[{k!r}]", state_dict[k]))
        new.last_epoch = check_int(
            "state_dict['last_epoch']", state_dict["last_epoch"], self._min_last_epoch
        )
        new.base_lrs = _check_list("state_dict['base_lrs']", state_dict["base_lrs"], _nonneg)
        new._last_lr = _check_list("state_dict['last_lr']", state_dict["last_lr"], _saved_lr)
        for k in ("base_lrs", "last_lr", *self._per_group):
            have = getattr(new, "_last_lr" if k == "last_lr" else k)
            self._check_n_groups(len(have), f"state_dict[{k!r}]")
        return new

    def _from_torch(self, state_dict: Mapping[str, Any],
                    keys: Iterable[str]) -> Mapping[str, Any]:
        """``state_dict`` itself, or, for the state dict of a torch scheduler (it has
        ``'_last_lr'`` and neither ``'last_lr'`` nor ``'type'``), a copy that nesy reads: the
        last learning rates under ``'last_lr'``, and the hyper-parameters and ``base_lrs``
        that torch keeps elsewhere (OneCycleLR's ``max_lr`` and factors are in the optimizer's
        groups; ReduceLROnPlateau saves no ``base_lrs``) taken from this schedule, which was
        built with the same arguments (torch's ``load_state_dict`` assumes that too). torch's
        call counters (``'_step_count'``, ``'_is_initial'``, ``'_get_lr_called_within_step'``)
        are not read. SequentialLR's and ChainedScheduler's ``'_schedulers'`` and
        ``'_milestones'`` are read as ``'schedulers'`` and ``'milestones'``; a
        ChainedScheduler's step is that of its inner schedules (torch saves none)."""
        if (not isinstance(state_dict, Mapping) or "_last_lr" not in state_dict
                or "last_lr" in state_dict or "type" in state_dict):
            return state_dict
        out = dict(state_dict)
        for k in ("_last_lr", "_schedulers", "_milestones"):
            if k in out and k[1:] not in out:
                out[k[1:]] = out.pop(k)
        inner = out.get("schedulers")
        if ("last_epoch" not in out and isinstance(inner, (list, tuple)) and inner
                and isinstance(inner[0], Mapping) and "last_epoch" in inner[0]):
            out["last_epoch"] = inner[0]["last_epoch"]
        for k in keys:
            if k not in out and (k in self._hyper or k == "base_lrs"):
                v = getattr(self, k)
                out[k] = list(v) if isinstance(v, list) else v
        return out

    def _swap(self, new: Any) -> None:
        """Take over the (checked) attributes of ``new`` and write its learning rates."""
        vars(self).update(vars(new))
        self._write(self._last_lr)


class LRSchedule(_Base):
    """Base class of the closed-form schedules.

    A subclass declares its hyper-parameters and their checks in ``_hyper``, sets them with
    :meth:`_set_hyper` and implements :meth:`lr_at`; this class does the rest.

    Parameters
    ----------
    optimizer : object
        Anything with a ``param_groups`` list of dicts holding a float ``"lr"``
        (nesy and torch optimizers), except a hypergradient optimizer (``SGDHD``, ``AdamHD``:
        ``ValueError`` naming ``optimizer``, see the module docstring).
    last_epoch : int
        Index of the last step taken; ``-1`` (default) starts from scratch. With ``k >= 0``
        every group must already hold ``"initial_lr"`` (as torch requires), and the schedule
        starts at step ``k + 1``, whose learning rate is written at once.

    Attributes
    ----------
    optimizer : object
        The optimizer whose learning rates are set.
    base_lrs : list of float
        ``"initial_lr"`` of every group.
    last_epoch : int
        The step whose learning rate is currently set (0 right after construction).
    """

    def __init__(self, optimizer: Any, last_epoch: int = -1) -> None:
        groups = _param_groups(optimizer)
        last_epoch = check_int("last_epoch", last_epoch, -1)
        if last_epoch != -1:
            for i, g in enumerate(groups):
                if "initial_lr" not in g:
                    raise KeyError(
                        f"optimizer.param_groups[{i}]: has no 'initial_lr', which resuming with "
                        f"last_epoch={last_epoch} needs (load the optimizer's state first)"
                    )
        base = [
            _check_real(
                f"optimizer.param_groups[{i}]['initial_lr']", g.get("initial_lr", g["lr"]), lo=0.0
            )
            for i, g in enumerate(groups)
        ]
        self._pre_step_check(last_epoch + 1)
        added = [g for g in groups if "initial_lr" not in g]
        for g in added:
            g["initial_lr"] = g["lr"]
        self.optimizer = optimizer
        self.base_lrs = base
        self.last_epoch = last_epoch
        self._last_lr = [float(g["lr"]) for g in groups]
        self._init_state()
        try:
            self.step()  # raises before writing (e.g. an lr_lambda's bad value)
        except BaseException:
            for g in added:
                del g["initial_lr"]
            raise

    # -- to override --------------------------------------------------------------------------
    def lr_at(self, t: int, base_lr: float) -> float:
        """Learning rate at step ``t`` of a group whose initial learning rate is ``base_lr``.

        Parameters
        ----------
        t : int
            Step index, ``>= 0`` (0 is the learning rate set at construction).
        base_lr : float
            The group's initial learning rate.

        Returns
        -------
        float
        """
        raise NotImplementedError

    def _init_state(self) -> None:
        """Set extra counters before the first step (stateful schedules)."""

    def _pre_step_check(self, t: int) -> None:
        """Raise before anything changes if step ``t`` is not allowed."""

    def _lrs_for_step(self, t: int) -> list[float]:
        return [self.lr_at(t, b) for b in self.base_lrs]

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra(self, state_dict: Any) -> None:
        """Check and set extra counters from ``state_dict`` (called on the copy being
        loaded, after its hyper-parameters and ``last_epoch``)."""

    # -- public ---------------------------------------------------------------------------------
    def step(self) -> None:
        """Advance one step and write the new learning rate into every parameter group."""
        t = self.last_epoch + 1
        self._pre_step_check(t)
        self._check_n_groups(len(self.base_lrs), "base_lrs")
        lrs = self._lrs_for_step(t)
        self._advance(t)
        self.last_epoch = t
        self._write(lrs)

    def _advance(self, t: int) -> None:
        """Update extra counters to step ``t`` (after the learning rates were computed)."""

    # -- composition (SequentialLR, ChainedScheduler, LinearWarmup) ----------------------------
    def _children(self) -> list[LRSchedule]:
        """The schedules this one drives (composites)."""
        return []

    def _parts(self) -> list[Any]:
        """This schedule and every object whose attributes are part of its state: inner
        schedules (recursively) and callable objects (lambda schedules)."""
        out: list[Any] = [self]
        for child in self._children():
            out += child._parts()
        return out

    def _restart(self, t: int) -> None:
        """Jump to step ``t >= 0`` and write its learning rates: the state of the same
        schedule constructed with ``last_epoch=t - 1``. All or nothing."""
        with _all_or_nothing(self):
            self.last_epoch = t - 1
            self._restart_state()
            self.step()

    def _restart_state(self) -> None:
        """Set extra counters for :meth:`_restart` (``last_epoch`` is already ``t - 1``)."""
        self._init_state()

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state: counters, base learning rates and hyper-parameters.

        Returns
        -------
        dict
            Plain Python numbers, strings and lists (JSON-serialisable; non-finite floats are
            stored as the strings ``'inf'``, ``'-inf'``, ``'nan'``). The optimizer is not
            included.
        """
        out: dict[str, Any] = {
            "type": type(self).__name__,
            "last_epoch": self.last_epoch,
            "base_lrs": list(self.base_lrs),
            "last_lr": list(self._last_lr),
        }
        for k in self._hyper:
            v = getattr(self, k)
            out[k] = list(v) if isinstance(v, (list, tuple)) else v
        out.update(self._extra_state())
        return {k: _enc(v) for k, v in out.items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` and write its learning rates.

        Hyper-parameters are restored from ``state_dict`` too (as torch does). The saved
        learning rates are written into the optimizer's groups, so resuming does not depend on
        the order in which the optimizer's and the schedule's states are loaded.

        Every value is checked as the constructor checks it before anything changes: a
        failing call (``TypeError`` / ``ValueError`` naming the key) leaves the schedule and
        the optimizer as they were.

        Parameters
        ----------
        state_dict : dict
            As returned by :meth:`state_dict` (possibly after a JSON round trip).
        """
        new = self._loaded(state_dict, ("last_epoch", "base_lrs", "last_lr", *self._hyper))
        new._load_extra(state_dict)
        try:
            new._pre_step_check(new.last_epoch)
        except ValueError as exc:
            raise ValueError(f"state_dict['last_epoch']: {exc}") from None
        self._swap(new)

    def __repr__(self) -> str:
        args = [f"{k}={getattr(self, k)!r}" for k in self._hyper]
        return f"{type(self).__name__}({', '.join([*args, f'last_epoch={self.last_epoch}'])})"


# ---------------------------------------------------------------------------------- schedules
class Constant(LRSchedule):
    r"""Keep every group's initial learning rate.

    .. math:: \eta_t = \eta_0

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    last_epoch : int
        See :class:`LRSchedule`.
    """

    def lr_at(self, t: int, base_lr: float) -> float:
        _check_t(t)
        return float(base_lr)


class ConstantLR(LRSchedule):
    r"""Multiply the learning rate by ``factor`` for the first ``total_iters`` steps.

    .. math:: \eta_t = \eta_0 \cdot \begin{cases} f & t < T \\ 1 & t \ge T \end{cases}

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    factor : float
        Multiplier ``f`` in ``[0, 1]`` applied until ``total_iters``. Default 1/3, as torch's.
    total_iters : int
        Number of steps ``T >= 0`` at the reduced rate. Default 5, as torch's. With 0 the
        schedule is constant (torch would keep ``factor`` forever in that case).
    last_epoch : int
        See :class:`LRSchedule`.
    """

    factor: float
    total_iters: int
    _hyper = {"factor": _fraction, "total_iters": _int_min(0)}

    def __init__(
        self, optimizer: Any, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1
    ) -> None:
        self._set_hyper(factor=factor, total_iters=total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int, base_lr: float) -> float:
        _check_t(t)
        return base_lr * self.factor if t < self.total_iters else float(base_lr)


class LinearLR(LRSchedule):
    r"""Scale the learning rate by a factor that moves linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` steps, then stays there (torch's ``LinearLR``).

    .. math:: \eta_t = \eta_0 \left(s + (e - s) \frac{\min(t, T)}{T}\right)

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    start_factor : float
        Factor ``s`` in ``(0, 1]`` at step 0. Default 1/3.
    end_factor : float
        Factor ``e`` in ``[0, 1]`` from step ``T`` on. Default 1.0.
    total_iters : int
        Number of steps ``T >= 1`` of the linear change. Default 5. (torch also takes 0, and
        then keeps ``start_factor`` forever.)
    last_epoch : int
        See :class:`LRSchedule`.
    """

    start_factor: float
    end_factor: float
    total_iters: int
    _hyper = {
        "start_factor": functools.partial(_check_real, lo=0.0, hi=1.0, lo_open=True),
        "end_factor": _fraction,
        "total_iters": _int_min(1),
    }

    def __init__(
        self,
        optimizer: Any,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        self._set_hyper(start_factor=start_factor, end_factor=end_factor, total_iters=total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int, base_lr: float) -> float:
        _check_t(t)
        s, e, n = self.start_factor, self.end_factor, self.total_iters
        return base_lr * (s + (e - s) * min(n, t) / n)


class _LambdaSchedule(LRSchedule):
    """What :class:`LambdaLR` and :class:`MultiplicativeLR` share: one callable per group,
    its value checked at every call, and torch's way of saving the callables."""

    lr_lambdas: list[Callable[[int], Any]]

    def __init__(
        self,
        optimizer: Any,
        lr_lambda: Callable[[int], Any] | Sequence[Callable[[int], Any]],
        last_epoch: int = -1,
    ) -> None:
        self.lr_lambdas = _check_lambdas(lr_lambda, len(_param_groups(optimizer)))
        super().__init__(optimizer, last_epoch)

    def _group(self, group: Any) -> int:
        return check_int("group", group, 0, len(self.lr_lambdas) - 1)

    def _factor(self, t: int, group: int) -> float:
        """``lr_lambdas[group](t)``, which must be a finite real number ``>= 0``."""
        return _check_real(f"lr_lambda[{group}](epoch={t})", self.lr_lambdas[group](t), lo=0.0)

    def _lrs_for_step(self, t: int) -> list[float]:
        return [self.lr_at(t, b, i) for i, b in enumerate(self.base_lrs)]

    def lr_at(self, t: int, base_lr: float, group: int = 0) -> float:
        """Learning rate at step ``t`` of group ``group`` (whose ``lr_lambda`` is used) if its
        initial learning rate is ``base_lr``. See :meth:`LRSchedule.lr_at`."""
        raise NotImplementedError

    def _parts(self) -> list[Any]:
        objects = {id(f): f for f in self.lr_lambdas if _attrs(f) is not None}
        return [*super()._parts(), *objects.values()]

    def _extra_state(self) -> dict[str, Any]:
        states = [_attrs(f) for f in self.lr_lambdas]
        return {"lr_lambdas": [None if a is None else dict(a) for a in states]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` (see :meth:`LRSchedule.load_state_dict`).

        The attributes saved for callable objects in ``state_dict['lr_lambdas']`` are set on
        this schedule's callables (as torch does); functions and lambdas keep no state. A
        failing call changes neither the schedule, nor its callables, nor the optimizer.
        """
        new = self._loaded(state_dict, ("last_epoch", "base_lrs", "last_lr", "lr_lambdas"))
        updates = _lambda_updates(self.lr_lambdas, state_dict["lr_lambdas"])
        self._swap(new)
        for fn, attrs in updates:
            vars(fn).update(attrs)

    def __repr__(self) -> str:
        name, fns = type(self).__name__, self.lr_lambdas
        return f"{name}(lr_lambdas={fns!r}, last_epoch={self.last_epoch})"


class LambdaLR(_LambdaSchedule):
    r"""The initial learning rate times a function of the step (torch's ``LambdaLR``).

    .. math:: \eta_t = \eta_0 \, \lambda(t)

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    lr_lambda : callable or list of callable
        ``lr_lambda(t) -> factor`` for all groups, or one per parameter group. Each factor
        must be a finite real number ``>= 0`` (else ``TypeError`` / ``ValueError`` naming
        ``lr_lambda``, with nothing changed). It is called once per group and step.
    last_epoch : int
        See :class:`LRSchedule`.

    Notes
    -----
    :meth:`state_dict` saves, as torch does, the attributes (``__dict__``) of every
    ``lr_lambda`` that is a callable object, and ``None`` for functions and lambdas, whose
    code is not saved: load the state into a schedule constructed with the same functions. The
    state is JSON-serialisable when those attributes are.
    """

    def lr_at(self, t: int, base_lr: float, group: int = 0) -> float:
        _check_t(t)
        return base_lr * self._factor(t, self._group(group))


class MultiplicativeLR(_LambdaSchedule):
    r"""Multiply the learning rate by a function of the step at every step (torch's
    ``MultiplicativeLR``).

    .. math:: \eta_t = \eta_{t-1} \, \lambda(t) \quad (t \ge 1), \text{ from } \eta_0

    :meth:`step` multiplies the rate this schedule last wrote (torch multiplies the group's
    current ``"lr"``; the two are the same unless something else changes it between steps),
    so that it composes with :class:`SequentialLR`, :class:`ChainedScheduler` and
    :class:`LinearWarmup` as every other schedule here. Resuming with ``last_epoch = k``
    continues from the groups' current ``"lr"``, as torch does, and writes it times
    ``lr_lambda(k + 1)`` (torch's first step leaves it unchanged, so from then on its rates
    lack that factor). :meth:`lr_at` computes
    :math:`\eta_0 \prod_{s=1}^{t} \lambda(s)` in the same order, so it agrees with
    :meth:`step` bit for bit (if ``lr_lambda`` has no state); it calls ``lr_lambda`` ``t``
    times.

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    lr_lambda : callable or list of callable
        ``lr_lambda(t) -> factor``, for all groups or one per group; see :class:`LambdaLR`
        (the same checks, and the same way of saving it). Not called at step 0.
    last_epoch : int
        See :class:`LRSchedule`.
    """

    def lr_at(self, t: int, base_lr: float, group: int = 0) -> float:
        _check_t(t)
        g = self._group(group)
        lr = float(base_lr)
        for s in range(1, t + 1):
            lr = self._grown(s, lr, lr * self._factor(s, g))
        return lr

    def _lrs_for_step(self, t: int) -> list[float]:
        if t == 0:
            return list(self.base_lrs)
        return [self._grown(t, lr, lr * self._factor(t, i)) for i, lr in enumerate(self._last_lr)]

    def _grown(self, t: int, before: float, lr: float) -> float:
        """``lr``, the rate of step ``t`` (``before`` times a factor), unless the product
        overflowed: ``ValueError`` naming the schedule and the step (factors above 1 grow the
        rate without bound), raised before the schedule changes."""
        if lr == math.inf and math.isfinite(before):
            raise ValueError(
                f"MultiplicativeLR: the learning rate overflows at step {t} ({before} times "
                f"lr_lambda's factor); stop the schedule earlier or use smaller factors"
            )
        return lr

    def _restart_state(self) -> None:
        t = self.last_epoch
        if t >= 0:
            self._last_lr = [self.lr_at(t, b, i) for i, b in enumerate(self.base_lrs)]


class StepLR(LRSchedule):
    r"""Decay the learning rate by ``gamma`` every ``step_size`` steps.

    .. math:: \eta_t = \eta_0 \, \gamma^{\lfloor t / s \rfloor}

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    step_size : int
        Period ``s >= 1`` of the decay.
    gamma : float
        Multiplicative factor ``> 0``. Default 0.1.
        Above 1 the rate grows; a step whose rate leaves the float range raises
        ``ValueError`` naming the step and ``gamma``, with nothing changed.
    last_epoch : int
        See :class:`LRSchedule`.
    """

    step_size: int
    gamma: float
    _hyper = {"step_size": _int_min(1), "gamma": _positive}

    def __init__(
        self, optimizer: Any, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self._set_hyper(step_size=step_size, gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int, base_lr: float) -> float:
        _check_t(t)
        return _gamma_power(self, t, base_lr, t // self.step_size)


class MultiStepLR(LRSchedule):
    r"""Decay the learning rate by ``gamma`` at each milestone.

    .. math:: \eta_t = \eta_0 \, \gamma^{\#\{m \in M : m \le t\}}

    A milestone listed twice counts twice (as in torch).

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    milestones : iterable of int
        Steps ``>= 0`` at which the decay happens (any order; stored sorted).
    gamma : float
        Multiplicative factor ``> 0``. Default 0.1.
        Above 1 the rate grows; a step whose rate leaves the float range raises
        ``ValueError`` naming the step and ``gamma``, with nothing changed.
    last_epoch : int
        See :class:`LRSchedule`.
    """

    milestones: list[int]
    gamma: float
    _hyper = {"milestones": _check_milestones, "gamma": _positive}

    def __init__(
        self,
        optimizer: Any,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        self._set_hyper(milestones=milestones, gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int, base_lr: float) -> float:
        _check_t(t)
        return _gamma_power(self, t, base_lr, bisect.bisect_right(self.milestones, t))


class ExponentialLR(LRSchedule):
    r"""Decay the learning rate by ``gamma`` every step.

    .. math:: \eta_t = \eta_0 \, \gamma^{t}

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    gamma : float
        Multiplicative factor ``> 0``.
        Above 1 the rate grows; a step whose rate leaves the float range raises
        ``ValueError`` naming the step and ``gamma``, with nothing changed.
    last_epoch : int
        See :class:`LRSchedule`.
    """

    gamma: float
    _hyper = {"gamma": _positive}

    def __init__(self, optimizer: Any, gamma: float, last_epoch: int = -1) -> None:
        self._set_hyper(gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int, base_lr: float) -> float:
        _check_t(t)
        return _gamma_power(self, t, base_lr, t)


class InverseTimeLR(LRSchedule):
    r"""Inverse-time decay.

    .. math:: \eta_t = \frac{\eta_0}{1 + d \, t}

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    decay : float
        Decay rate ``d >= 0`` (0 keeps the rate constant).
    last_epoch : int
        See :class:`LRSchedule`.
    """

    decay: float
    _hyper = {"decay": _nonneg}

    def __init__(self, optimizer: Any, decay: float, last_epoch: int = -1) -> None:
        self._set_hyper(decay=decay)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int, base_lr: float) -> float:
        _check_t(t)
        return base_lr / (1.0 + self.decay * t)


class InverseSqrtLR(LRSchedule):
    r"""Inverse-square-root decay.

    .. math:: \eta_t = \frac{\eta_0}{\sqrt{1 + d \, t}}

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    decay : float
        Decay rate ``d >= 0`` (0 keeps the rate constant).
    last_epoch : int
        See :class:`LRSchedule`.
    """

    decay: float
    _hyper = {"decay": _nonneg}

    def __init__(self, optimizer: Any, decay: float, last_epoch: int = -1) -> None:
        self._set_hyper(decay=decay)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int, base_lr: float) -> float:
        _check_t(t)
        return base_lr / math.sqrt(1.0 + self.decay * t)


class PolynomialLR(LRSchedule):
    r"""Polynomial decay to zero over ``total_iters`` steps (then zero), as torch.

    .. math:: \eta_t = \eta_0 \left(1 - \frac{\min(t, T)}{T}\right)^{p}

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    total_iters : int
        Number of decay steps ``T >= 1``. Default 5.
    power : float
        Exponent ``p >= 0``. Default 1.0 (linear decay).
    last_epoch : int
        See :class:`LRSchedule`.
    """

    total_iters: int
    power: float
    _hyper = {"total_iters": _int_min(1), "power": _nonneg}

    def __init__(
        self, optimizer: Any, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1
    ) -> None:
        self._set_hyper(total_iters=total_iters, power=power)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int, base_lr: float) -> float:
        _check_t(t)
        return base_lr * (1.0 - min(self.total_iters, t) / self.total_iters) ** self.power


def _cosine(t_cur: float, period: float, base_lr: float, eta_min: float) -> float:
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / period)) / 2


class CosineAnnealingLR(LRSchedule):
    r"""Cosine annealing from the initial rate to ``eta_min`` over ``T_max`` steps.

    .. math::
        \eta_t = \eta_{\min} + (\eta_0 - \eta_{\min}) \,
        \frac{1 + \cos(\pi t / T_{\max})}{2}

    Past ``T_max`` the formula is applied as is, so the rate climbs back up over the next
    ``T_max`` steps (torch's recursive form does the same); use
    :class:`CosineAnnealingWarmRestarts` for restarts.

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    T_max : int
        Half-period ``>= 1`` in steps.
    eta_min : float
        Minimum learning rate ``>= 0``. Default 0.
    last_epoch : int
        See :class:`LRSchedule`.
    """

    T_max: int
    eta_min: float
    _hyper = {"T_max": _int_min(1), "eta_min": _nonneg}

    def __init__(
        self, optimizer: Any, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        self._set_hyper(T_max=T_max, eta_min=eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int, base_lr: float) -> float:
        _check_t(t)
        return _cosine(t, self.T_max, base_lr, self.eta_min)


class CosineAnnealingWarmRestarts(LRSchedule):
    r"""Cosine annealing with warm restarts (SGDR), as torch.

    .. math::
        \eta_t = \eta_{\min} + (\eta_0 - \eta_{\min}) \,
        \frac{1 + \cos(\pi T_{cur} / T_i)}{2}

    where ``T_i`` is the length of the current cycle (``T_0``, then ``T_0 * T_mult``,
    ``T_0 * T_mult**2``, ...) and ``T_cur`` the steps since its start. :meth:`step` keeps the
    integer counters ``T_cur`` and ``T_i`` as torch does; :meth:`lr_at` finds them from ``t`` by
    integer arithmetic, so both give identical values.

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    T_0 : int
        Length ``>= 1`` of the first cycle.
    T_mult : int
        Factor ``>= 1`` by which each cycle is longer than the previous one. Default 1.
    eta_min : float
        Minimum learning rate ``>= 0``. Default 0.
    last_epoch : int
        See :class:`LRSchedule`. Unlike torch, resuming with ``last_epoch = k`` places the
        counters correctly for ``T_mult > 1`` too.

    Attributes
    ----------
    T_cur : int
        Steps since the last restart.
    T_i : int
        Length of the current cycle.
    """

    T_0: int
    T_mult: int
    eta_min: float
    _hyper = {"T_0": _int_min(1), "T_mult": _int_min(1), "eta_min": _nonneg}

    def __init__(
        self,
        optimizer: Any,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        self._set_hyper(T_0=T_0, T_mult=T_mult, eta_min=eta_min)
        self.T_cur = -1
        self.T_i = self.T_0
        super().__init__(optimizer, last_epoch)

    def _cycle(self, t: int) -> tuple[int, int]:
        """``(T_cur, T_i)`` at step ``t``."""
        if self.T_mult == 1:
            return t % self.T_0, self.T_0
        t_i = self.T_0
        while t >= t_i:
            t -= t_i
            t_i *= self.T_mult
        return t, t_i

    def _init_state(self) -> None:
        if self.last_epoch >= 0:
            self.T_cur, self.T_i = self._cycle(self.last_epoch)

    def _next_counters(self, t: int) -> tuple[int, int]:
        if t == 0 or self.last_epoch < 0:
            return self._cycle(t)
        t_cur, t_i = self.T_cur + 1, self.T_i
        if t_cur >= t_i:
            t_cur %= t_i
            t_i *= self.T_mult
        return t_cur, t_i

    def _lrs_for_step(self, t: int) -> list[float]:
        t_cur, t_i = self._next_counters(t)
        return [_cosine(t_cur, t_i, b, self.eta_min) for b in self.base_lrs]

    def _advance(self, t: int) -> None:
        self.T_cur, self.T_i = self._next_counters(t)

    def lr_at(self, t: int, base_lr: float) -> float:
        t_cur, t_i = self._cycle(_check_t(t))
        return _cosine(t_cur, t_i, base_lr, self.eta_min)

    def _extra_state(self) -> dict[str, Any]:
        return {"T_cur": self.T_cur, "T_i": self.T_i}

    def _load_extra(self, state_dict: Any) -> None:
        if "T_cur" in state_dict and "T_i" in state_dict:
            self.T_i = check_int("state_dict['T_i']", state_dict["T_i"], 1)
            self.T_cur = check_int("state_dict['T_cur']", state_dict["T_cur"], -1)
            if self.T_cur >= self.T_i:
                raise ValueError(f"state_dict['T_cur']: must be < T_i = {self.T_i}, "
                                 f"got {self.T_cur}")
        else:
            self.T_cur, self.T_i = self._cycle(self.last_epoch)


def _total_steps(total_steps: Any, epochs: Any, steps_per_epoch: Any) -> int:
    """OneCycleLR's length: ``total_steps``, or ``epochs * steps_per_epoch`` (torch's rule)."""
    if epochs is None and steps_per_epoch is None:
        if total_steps is None:
            raise ValueError("total_steps: give total_steps, or both epochs and steps_per_epoch")
        return check_int("total_steps", total_steps, 1)
    if epochs is None or steps_per_epoch is None:
        if total_steps is not None:  # torch ignores a lone epochs / steps_per_epoch here
            return check_int("total_steps", total_steps, 1)
        missing = "epochs" if epochs is None else "steps_per_epoch"
        raise ValueError(f"{missing}: is needed too (or give total_steps instead)")
    product = check_int("epochs", epochs, 1) * check_int("steps_per_epoch", steps_per_epoch, 1)
    if total_steps is not None and check_int("total_steps", total_steps, 1) != product:
        raise ValueError(
            f"total_steps: is {total_steps} but epochs * steps_per_epoch = {product}; "
            "give one or the other"
        )
    return product


class OneCycleLR(LRSchedule):
    r"""The 1cycle policy (Smith & Topsakal, 2018), as torch; learning rate only.

    Every group starts at ``initial_lr = max_lr / div_factor`` (written into the group's
    ``"initial_lr"``, replacing any existing value, as torch does), rises to ``max_lr`` at step
    ``pct_start * total_steps - 1`` and then falls to ``min_lr = initial_lr / final_div_factor``
    at step ``total_steps - 1``. With ``three_phase=True`` it first comes back down to
    ``initial_lr`` at step ``2 * pct_start * total_steps - 2`` and then falls to ``min_lr``.
    Within a phase from step ``a`` (rate ``u``) to step ``b`` (rate ``v``), with
    ``p = (t - a) / (b - a)``:

    .. math::
        \eta_t = v + \frac{u - v}{2} (1 + \cos \pi p) \quad\text{(cos)}, \qquad
        \eta_t = u + (v - u) \, p \quad\text{(linear)}

    :meth:`step` may be called ``total_steps`` times after construction (the last call
    extrapolates past ``min_lr`` as torch does); one more raises ``ValueError`` and changes
    nothing.

    Unlike torch, momentum / ``beta1`` is NOT cycled (``cycle_momentum`` does not exist), and
    no ``"max_lr"`` / ``"min_lr"`` keys are added to the groups (nesy optimizers reject unknown
    group options). A phase of zero length (torch divides by zero there) takes its end value.

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    max_lr : float or list of float
        Peak learning rate ``> 0``, one for all groups or one per group.
    total_steps : int, optional
        Number of steps ``>= 1`` in the cycle. If None (default), ``epochs * steps_per_epoch``
        (as torch); give either ``total_steps`` or both of those (else ``ValueError``).
    epochs : int, optional
        Number of epochs ``>= 1`` (with ``steps_per_epoch``, when ``total_steps`` is None).
    steps_per_epoch : int, optional
        Steps per epoch ``>= 1`` (with ``epochs``). If all three are given, ``total_steps``
        must equal ``epochs * steps_per_epoch`` (torch silently uses ``total_steps``).
    pct_start : float
        Fraction in ``[0, 1]`` of the cycle spent increasing the rate. Default 0.3.
    anneal_strategy : {"cos", "linear"}
        Shape of each phase. Default "cos".
    div_factor : float
        ``initial_lr = max_lr / div_factor``, ``> 0``. Default 25.
    final_div_factor : float
        ``min_lr = initial_lr / final_div_factor``, ``> 0``. Default 1e4.
    three_phase : bool
        Use the three-phase schedule of the original paper. Default False.
    last_epoch : int
        See :class:`LRSchedule` (the number of steps already taken).

    Notes
    -----
    :meth:`lr_at` takes ``base_lr`` = the group's initial learning rate and uses
    ``base_lr * div_factor`` as the peak unless ``max_lr`` is given; :meth:`step` passes the
    exact per-group ``max_lr``.
    """

    max_lrs: list[float]
    total_steps: int
    pct_start: float
    anneal_strategy: str
    div_factor: float
    final_div_factor: float
    three_phase: bool
    _hyper = {
        "max_lrs": functools.partial(_check_list, item=_positive),
        "total_steps": _int_min(1),
        "pct_start": _fraction,
        "anneal_strategy": _choice("cos", "linear"),
        "div_factor": _positive,
        "final_div_factor": _positive,
        "three_phase": check_bool,
    }
    _per_group = ("max_lrs",)

    def __init__(
        self,
        optimizer: Any,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        groups = _param_groups(optimizer)
        total_steps = _total_steps(total_steps, epochs, steps_per_epoch)
        self._set_hyper(total_steps=total_steps, pct_start=pct_start,
                        anneal_strategy=anneal_strategy, div_factor=div_factor,
                        final_div_factor=final_div_factor, three_phase=three_phase)
        if isinstance(max_lr, (list, tuple)):
            if len(max_lr) != len(groups):
                raise ValueError(
                    f"max_lr: expected {len(groups)} values (one per parameter group), "
                    f"got {len(max_lr)}"
                )
            max_lrs = self._hyper["max_lrs"]("max_lr", max_lr)
        else:
            max_lrs = [_positive("max_lr", max_lr)] * len(groups)
        self.max_lrs = max_lrs
        check_int("last_epoch", last_epoch, -1)
        self._pre_step_check(last_epoch + 1)
        if last_epoch == -1:
            for g, m in zip(groups, max_lrs):
                g["initial_lr"] = m / self.div_factor
        super().__init__(optimizer, last_epoch)

    def _pre_step_check(self, t: int) -> None:
        if t > self.total_steps:
            raise ValueError(
                f"OneCycleLR: step {t} is past total_steps={self.total_steps}; "
                "create the schedule with a larger total_steps"
            )

    def _phases(self) -> list[tuple[float, str, str]]:
        # The same float expressions as torch, so phase boundaries agree exactly.
        p, n = self.pct_start, self.total_steps
        if self.three_phase:
            return [
                (float(p * n) - 1, "initial", "max"),
                (float(2 * p * n) - 2, "max", "initial"),
                (n - 1, "initial", "min"),
            ]
        return [(float(p * n) - 1, "initial", "max"), (n - 1, "max", "min")]

    def lr_at(self, t: int, base_lr: float, max_lr: float | None = None) -> float:
        """Learning rate at step ``t`` for a group with initial rate ``base_lr``.

        Parameters
        ----------
        t : int
            Step index in ``[0, total_steps]``.
        base_lr : float
            The group's initial learning rate (``max_lr / div_factor``).
        max_lr : float, optional
            The group's peak rate; default ``base_lr * div_factor``.

        Returns
        -------
        float
        """
        _check_t(t)
        self._pre_step_check(t)
        rates = {
            "initial": float(base_lr),
            "max": base_lr * self.div_factor if max_lr is None else float(max_lr),
            "min": base_lr / self.final_div_factor,
        }
        phases = self._phases()
        start = 0.0
        for i, (end, a, b) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                span = end - start
                pct = (t - start) / span if span != 0 else 1.0
                u, v = rates[a], rates[b]
                if self.anneal_strategy == "cos":
                    return v + (u - v) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (v - u) * pct + u
            start = end
        raise AssertionError("unreachable")  # pragma: no cover

    def _lrs_for_step(self, t: int) -> list[float]:
        return [self.lr_at(t, b, m) for b, m in zip(self.base_lrs, self.max_lrs)]


class LinearWarmup(LRSchedule):
    r"""Linear warm-up in front of any closed-form schedule.

    .. math::
        \eta_t = \begin{cases}
            \left(f + (1 - f)\, t / W\right) \, \eta^{\text{inner}}_t & t < W \\
            \eta^{\text{inner}}_t & t \ge W
        \end{cases}

    The inner schedule's clock is NOT shifted: it counts from 0 at the start of training,
    warm-up included, so ``LinearWarmup(CosineAnnealingLR(opt, T_max=100), 10)`` reaches its
    minimum at step 100 (not 110). Give the inner schedule a longer horizon if the decay should
    start after the warm-up.

    Parameters
    ----------
    schedule : LRSchedule
        The inner schedule (already constructed on the optimizer). :meth:`step` steps it.
        :class:`ReduceLROnPlateau` is not accepted (it has no closed form).
    warmup_steps : int
        Length ``W >= 0`` of the warm-up (0: no warm-up).
    start_factor : float
        Fraction ``f`` in ``[0, 1]`` of the inner rate used at step 0. Default 0.0.

    Attributes
    ----------
    schedule : LRSchedule
        The inner schedule.
    """

    warmup_steps: int
    start_factor: float
    _hyper = {"warmup_steps": _int_min(0), "start_factor": _fraction}

    def __init__(self, schedule: LRSchedule, warmup_steps: int, start_factor: float = 0.0) -> None:
        if not isinstance(schedule, LRSchedule):
            raise TypeError(
                "schedule: expected a closed-form schedule from nesy.optim.schedules (not "
                f"ReduceLROnPlateau), got {type(schedule).__name__}"
            )
        self._set_hyper(warmup_steps=warmup_steps, start_factor=start_factor)
        self.schedule = schedule
        self.optimizer = schedule.optimizer
        self.base_lrs = list(schedule.base_lrs)
        self._follow()

    def _factor(self, t: int) -> float:
        if t >= self.warmup_steps:
            return 1.0
        return self.start_factor + (1.0 - self.start_factor) * t / self.warmup_steps

    def lr_at(self, t: int, base_lr: float) -> float:
        _check_t(t)
        return self._factor(t) * self.schedule.lr_at(t, base_lr)

    def step(self) -> None:
        """Step the inner schedule and write its learning rate, scaled during warm-up."""
        self.schedule.step()
        self._follow()

    def _follow(self) -> None:
        self.last_epoch = self.schedule.last_epoch
        self._write([self._factor(self.last_epoch) * lr for lr in self.schedule.get_last_lr()])

    def _children(self) -> list[LRSchedule]:
        return [self.schedule]

    def _restart(self, t: int) -> None:
        self.schedule._restart(t)
        self._follow()

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["schedule"] = self.schedule.state_dict()
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the warm-up and the inner schedule (see :meth:`LRSchedule.load_state_dict`);
        a failing call changes neither."""
        new = self._loaded(
            state_dict, ("last_epoch", "base_lrs", "last_lr", "schedule", *self._hyper)
        )
        try:
            self.schedule.load_state_dict(state_dict["schedule"])  # checks all before changing
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"state_dict['schedule']: {exc}") from None
        self._swap(new)

    def __repr__(self) -> str:
        return (
            f"LinearWarmup({self.schedule!r}, warmup_steps={self.warmup_steps}, "
            f"start_factor={self.start_factor})"
        )


def _check_schedules(schedulers: Any, optimizer: Any) -> list[LRSchedule]:
    """A non-empty list of distinct closed-form schedules, all bound to ``optimizer`` (to the
    first one's optimizer if None), each with one learning rate per parameter group."""
    if not isinstance(schedulers, (list, tuple)):
        raise TypeError(
            f"schedulers: expected a list of schedules, got {type(schedulers).__name__}"
        )
    if len(schedulers) == 0:
        raise ValueError("schedulers: expected at least one schedule, got none")
    seen: dict[int, int] = {}
    for i, s in enumerate(schedulers):
        if not isinstance(s, LRSchedule):
            raise TypeError(
                f"schedulers[{i}]: expected a schedule from nesy.optim.schedules other than "
                f"ReduceLROnPlateau (whose step needs a metric), got {type(s).__name__}"
            )
        if optimizer is None:
            optimizer = s.optimizer
        if s.optimizer is not optimizer:
            raise ValueError(f"schedulers[{i}]: is bound to another optimizer")
        if id(s) in seen:
            raise ValueError(f"schedulers[{i}]: is schedulers[{seen[id(s)]}] again")
        seen[id(s)] = i
        n = len(_param_groups(optimizer))
        if len(s.base_lrs) != n:
            raise ValueError(f"schedulers[{i}]: has {len(s.base_lrs)} learning rates but the "
                             f"optimizer has {n} parameter groups")
    return list(schedulers)


def _product(rates: Sequence[Sequence[float]], bases: Sequence[Sequence[float]]) -> list[float]:
    """Per group: the first schedule's rate times every other schedule's factor rate / base
    (factor 0 for a base of 0)."""
    out = [float(r) for r in rates[0]]
    for row, base in zip(rates[1:], bases[1:]):
        out = [v * (r / b) if b > 0 else 0.0 for v, r, b in zip(out, row, base)]
    return out


class _Composite(LRSchedule):
    """What :class:`SequentialLR` and :class:`ChainedScheduler` share: the inner schedules,
    saved and loaded with the composite."""

    _schedulers: list[LRSchedule]

    def _children(self) -> list[LRSchedule]:
        return list(self._schedulers)

    def _check_structure(self, name: str) -> None:
        """Check hyper-parameters against the number of inner schedules."""

    def _extra_state(self) -> dict[str, Any]:
        return {"schedulers": [s.state_dict() for s in self._schedulers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`, inner schedules included (see
        :meth:`LRSchedule.load_state_dict`); a failing call changes none of them."""
        keys = ("last_epoch", "base_lrs", "last_lr", "schedulers", *self._hyper)
        state_dict = self._from_torch(state_dict, keys)  # type: ignore[assignment]
        new = self._loaded(state_dict, keys)
        new._check_structure("state_dict['milestones']")
        key = "state_dict['schedulers']"
        saved = state_dict["schedulers"]
        if not isinstance(saved, (list, tuple)):
            raise TypeError(f"{key}: expected a list, got {type(saved).__name__}")
        if len(saved) != len(self._schedulers):
            raise ValueError(f"{key}: has {len(saved)} states but this schedule has "
                             f"{len(self._schedulers)} schedulers")
        with _all_or_nothing(self):
            for i, (s, sd) in enumerate(zip(self._schedulers, saved)):
                try:
                    s.load_state_dict(sd)
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"{key}[{i}]: {exc}") from None
            self._swap(new)

    def __repr__(self) -> str:
        args = [f"{k}={getattr(self, k)!r}" for k in self._hyper]
        return (f"{type(self).__name__}(schedulers={self._schedulers!r}, "
                f"{', '.join([*args, f'last_epoch={self.last_epoch}'])})")


class SequentialLR(_Composite):
    r"""Run one schedule after another, switching at the milestones (torch's ``SequentialLR``).

    With milestones :math:`m_1 < m_2 < \dots` (and :math:`m_0 = 0`), step ``t`` in
    :math:`[m_i, m_{i+1})` gets the learning rate of ``schedulers[i]`` at its own step
    :math:`t - m_i`: each schedule restarts from its step 0 at its milestone, as in torch.

    Parameters
    ----------
    optimizer : object
        The optimizer all the schedules are bound to.
    schedulers : list of LRSchedule
        The schedules (already constructed on ``optimizer``; not :class:`ReduceLROnPlateau`).
        This schedule steps them; do not step them yourself.
    milestones : list of int
        Strictly increasing steps ``>= 0``, one fewer than ``schedulers``.
    last_epoch : int
        Index of the last step taken; ``-1`` (default) starts from scratch, ``k >= 0`` puts
        the schedule for step ``k + 1`` at its own step (torch would restart the first one).

    Notes
    -----
    Torch restarts a :class:`MultiplicativeLR` at its milestone from the rate left by the
    previous schedule times ``lr_lambda(0)``; here it restarts from its initial rate, as
    every other schedule.
    """

    milestones: list[int]
    _hyper = {"milestones": _check_increasing}

    def __init__(
        self,
        optimizer: Any,
        schedulers: Sequence[LRSchedule],
        milestones: Iterable[int],
        last_epoch: int = -1,
    ) -> None:
        groups = _param_groups(optimizer)
        self._schedulers = _check_schedules(schedulers, optimizer)
        self._set_hyper(milestones=milestones)
        self._check_structure("milestones")
        last_epoch = check_int("last_epoch", last_epoch, -1)
        self.optimizer = optimizer
        self.base_lrs = list(self._schedulers[0].base_lrs)
        self.last_epoch = last_epoch
        self._last_lr = [float(g["lr"]) for g in groups]
        self._restart(last_epoch + 1)

    def _check_structure(self, name: str) -> None:
        want = len(self._schedulers) - 1
        if len(self.milestones) != want:
            raise ValueError(f"{name}: expected {want} milestones (one fewer than schedulers), "
                             f"got {len(self.milestones)}")

    def _active(self, t: int) -> tuple[int, int]:
        """Index of the schedule in charge of step ``t`` and its own step."""
        i = bisect.bisect_right(self.milestones, t)
        return i, t - (self.milestones[i - 1] if i else 0)

    def _follow(self, i: int, t: int) -> None:
        self.last_epoch = t
        self._write(self._schedulers[i].get_last_lr())

    def step(self) -> None:
        """Step the schedule in charge (restarting it at its milestone) and write its rate."""
        t = self.last_epoch + 1
        i, local = self._active(t)
        if local == 0:
            self._schedulers[i]._restart(0)
        else:
            self._schedulers[i].step()
        self._follow(i, t)

    def _restart(self, t: int) -> None:
        i, local = self._active(t)
        self._schedulers[i]._restart(local)
        self._follow(i, t)

    def lr_at(self, t: int, base_lr: float) -> float:
        i, local = self._active(_check_t(t))
        return self._schedulers[i].lr_at(local, base_lr)


class ChainedScheduler(_Composite):
    r"""Multiply the factors of several schedules that share one clock (torch's
    ``ChainedScheduler``).

    Every :meth:`step` steps all the schedules; a group's rate is the first schedule's rate
    times, for every other schedule, its rate divided by its initial rate:

    .. math:: \eta_t = \eta^{(1)}_t \prod_{i \ge 2} \eta^{(i)}_t / \eta^{(i)}_0

    (a factor of 0 for a group whose initial rate is 0). This is what torch computes when the
    schedules are multiplicative (``StepLR``, ``MultiStepLR``, ``ConstantLR``, ``LinearLR``,
    ``ExponentialLR``, ``PolynomialLR``, ``MultiplicativeLR``, and ``CosineAnnealingLR`` with
    ``eta_min=0`` up to ``T_max``); for the others (``eta_min > 0``, warm restarts,
    ``LambdaLR``, ``OneCycleLR``) torch's result depends on their order, and is not copied.

    Parameters
    ----------
    schedulers : list of LRSchedule
        The schedules (already constructed, all at the same step, all on one optimizer; not
        :class:`ReduceLROnPlateau`). This schedule steps them; do not step them yourself.
    optimizer : object, optional
        The optimizer they are bound to; default the first schedule's.
    """

    def __init__(self, schedulers: Sequence[LRSchedule], optimizer: Any = None) -> None:
        if optimizer is not None:
            _param_groups(optimizer)
        self._schedulers = _check_schedules(schedulers, optimizer)
        first = self._schedulers[0]
        for i, s in enumerate(self._schedulers):
            if s.last_epoch != first.last_epoch:
                raise ValueError(
                    f"schedulers[{i}]: is at step {s.last_epoch} but schedulers[0] is at step "
                    f"{first.last_epoch} (chained schedules share one clock)"
                )
        self.optimizer = first.optimizer
        self.base_lrs = list(first.base_lrs)
        self._follow()

    def _follow(self) -> None:
        self.last_epoch = self._schedulers[0].last_epoch
        rates = [s.get_last_lr() for s in self._schedulers]
        self._write(_product(rates, [s.base_lrs for s in self._schedulers]))

    def step(self) -> None:
        """Step every schedule and write the product of their factors."""
        with _all_or_nothing(self):
            for s in self._schedulers:
                s.step()
            self._follow()

    def _restart(self, t: int) -> None:
        with _all_or_nothing(self):
            for s in self._schedulers:
                s._restart(t)
            self._follow()

    def lr_at(self, t: int, base_lr: float) -> float:
        _check_t(t)
        rates = [[s.lr_at(t, base_lr)] for s in self._schedulers]
        return _product(rates, [[float(base_lr)]] * len(rates))[0]


class ReduceLROnPlateau(_Base):
    """Reduce the learning rate when a metric stops improving, exactly as torch.

    After each ``step(metric)``: if the metric is better than the best seen (by more than
    ``threshold``), it becomes the best and the bad-step count resets; otherwise the count
    grows. During cooldown the count is held at 0. When the count exceeds ``patience``, every
    group's rate becomes ``max(lr * factor, min_lr)`` (skipped if that lowers it by ``eps`` or
    less), the cooldown starts and the count resets. "Better" means, for
    ``threshold_mode="rel"``: ``a < best * (1 - threshold)`` (min) or
    ``a > best * (1 + threshold)`` (max); for ``"abs"``: ``a < best - threshold`` or
    ``a > best + threshold``. A NaN metric is never better (so it counts as a bad step).

    This schedule has no closed form (``lr_at``): it depends on the metric history.

    Parameters
    ----------
    optimizer : object
        Anything with ``param_groups`` (see :class:`LRSchedule`).
    mode : {"min", "max"}
        Whether the metric should decrease or increase. Default "min".
    factor : float
        Reduction factor in ``[0, 1)``. Default 0.1.
    patience : int
        Bad steps ``>= 0`` tolerated before reducing. Default 10.
    threshold : float
        Minimal significant improvement ``>= 0``. Default 1e-4.
    threshold_mode : {"rel", "abs"}
        Relative or absolute threshold. Default "rel".
    cooldown : int
        Steps ``>= 0`` after a reduction during which bad steps are not counted. Default 0.
    min_lr : float or list of float
        Lower bound ``>= 0`` on the rate, for all groups or per group. Default 0.
    eps : float
        Reductions of ``eps`` or less are skipped, ``>= 0``. Default 1e-8.

    Attributes
    ----------
    best : float
        Best metric so far (``inf`` / ``-inf`` before the first step).
    num_bad_epochs : int
        Consecutive bad steps.
    cooldown_counter : int
        Remaining cooldown steps.
    """

    def __init__(
        self,
        optimizer: Any,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0,
        eps: float = 1e-8,
    ) -> None:
        groups = _param_groups(optimizer, closed_form=False)  # only scales the current rate
        self._set_hyper(mode=mode, factor=factor, patience=patience, threshold=threshold,
                        threshold_mode=threshold_mode, cooldown=cooldown, eps=eps)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(groups):
                raise ValueError(
                    f"min_lr: expected {len(groups)} values (one per parameter group), "
                    f"got {len(min_lr)}"
                )
            self.default_min_lr: float | None = None
            self.min_lrs = _check_list("min_lr", min_lr, _nonneg)
        else:
            self.default_min_lr = _nonneg("min_lr", min_lr)
            self.min_lrs = [self.default_min_lr] * len(groups)
        for g in groups:
            g.setdefault("initial_lr", g["lr"])
        self.optimizer = optimizer
        self.base_lrs = [float(g["initial_lr"]) for g in groups]
        self.last_epoch = 0
        self._last_lr = [float(g["lr"]) for g in groups]
        self._reset()

    @property
    def mode_worse(self) -> float:
        """The worst possible metric for ``mode``: ``inf`` (min) or ``-inf`` (max)."""
        return math.inf if self.mode == "min" else -math.inf

    @property
    def in_cooldown(self) -> bool:
        """Whether the schedule is in its cooldown period."""
        return self.cooldown_counter > 0

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics: Any) -> None:
        """Record one value of the monitored metric and reduce the rates if it has plateaued.

        Parameters
        ----------
        metrics : float
            The metric (anything ``float()`` accepts: Python or NumPy scalar, 0-d array or
            tensor). NaN counts as "not better", as in torch.
        """
        try:
            current = float(metrics)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"metrics: expected a number, got {type(metrics).__name__} {metrics!r}"
            ) from exc
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                self._check_n_groups(len(self.min_lrs), "min_lr")
            else:
                self.min_lrs = [self.default_min_lr] * len(groups)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # ignore bad steps during cooldown
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [float(g["lr"]) for g in groups]

    def _reduce_lr(self) -> None:
        for i, g in enumerate(self.optimizer.param_groups):
            old_lr = float(g["lr"])
            new_lr = max(old_lr * self.factor, self.min_lrs[i])
            if old_lr - new_lr > self.eps:
                g["lr"] = new_lr

    mode: str
    factor: float
    patience: int
    threshold: float
    threshold_mode: str
    cooldown: int
    eps: float
    _hyper = {
        "mode": _choice("min", "max"),
        "factor": functools.partial(_check_real, lo=0.0, hi=1.0, hi_open=True),
        "patience": _int_min(0),
        "threshold": _nonneg,
        "threshold_mode": _choice("rel", "abs"),
        "cooldown": _int_min(0),
        "eps": _nonneg,
    }
    _min_last_epoch = 0

    _keys = (
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "eps",
        "min_lrs",
        "default_min_lr",
        "last_epoch",
        "best",
        "num_bad_epochs",
        "cooldown_counter",
        "base_lrs",
        "last_lr",
    )

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state (JSON-serialisable; see :meth:`LRSchedule.state_dict`)."""
        out: dict[str, Any] = {"type": type(self).__name__}
        for k in self._keys:
            v = self._last_lr if k == "last_lr" else getattr(self, k)
            out[k] = _enc(list(v) if isinstance(v, list) else v)
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` and write its learning rates.

        Every value is checked as the constructor checks it before anything changes: a
        failing call (naming the key) leaves the schedule and the optimizer as they were.

        Parameters
        ----------
        state_dict : dict
            As returned by :meth:`state_dict` (possibly after a JSON round trip).
        """
        new = self._loaded(state_dict, self._keys)
        new.min_lrs = _check_list("state_dict['min_lrs']", state_dict["min_lrs"], _nonneg)
        self._check_n_groups(len(new.min_lrs), "state_dict['min_lrs']")
        d = state_dict["default_min_lr"]
        new.default_min_lr = None if d is None else _nonneg("state_dict['default_min_lr']", d)
        new.best = _saved_float("state_dict['best']", state_dict["best"])
        new.num_bad_epochs = check_int(
            "state_dict['num_bad_epochs']", state_dict["num_bad_epochs"], 0
        )
        new.cooldown_counter = check_int(
            "state_dict['cooldown_counter']", state_dict["cooldown_counter"], 0
        )
        self._swap(new)

    def __repr__(self) -> str:
        return (
            f"ReduceLROnPlateau(mode={self.mode!r}, factor={self.factor}, "
            f"patience={self.patience}, best={self.best}, num_bad_epochs={self.num_bad_epochs})"
        )
