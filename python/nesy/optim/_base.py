"""The optimizer base class shared by every rule in :mod:`nesy.optim`.

An optimizer holds references to the user's parameter arrays and updates them in place. Its state
lives in flat buffers, one per state name and dtype, covering every parameter of that dtype in
order; ``state_dict()`` exposes them per parameter as torch does. One ``step(grads)`` is ONE call
into Rust (``nesy._core.optim_step``) for all tensors of all groups.

Subclasses only declare the rule name, the defaults and, where needed, how a state buffer starts.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any, BinaryIO

import numpy as np

from nesy import _core
from nesy._checks import check_bool
from nesy._io import atomic_savez

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
#: Options of torch's parameter groups that choose how torch runs, not what it computes: a
#: torch state dict loads with them ignored.
_TORCH_EXECUTION = frozenset({"foreach", "fused", "capturable", "differentiable"})


class _ParamList(list):  # type: ignore[type-arg]
    """A param group's ``"params"``: a list (torch code reads it as one) that refuses to be
    edited. torch's optimizers follow an array appended to this list; nesy's state is laid out
    for the arrays it was given, so an edit raises at once, naming :meth:`add_param_group`,
    instead of being ignored."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise ValueError("param_groups[i]['params']: the optimizer's arrays cannot be edited "
                         "in place; add parameters with add_param_group({'params': [...]}), "
                         "or build a new optimizer")

    append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and copy without calling append
        return (_ParamList, (list(self),))


class Optimizer:
    """Base class: parameter groups, flat state, one fused step.

    Parameters
    ----------
    params : list of ndarray, or list of dict
        The arrays to optimise (C-contiguous, writeable, float32 or float64; each keeps its
        dtype), or parameter groups: dicts with a ``"params"`` list and per-group options.
    defaults : dict
        Option values for groups that do not set them.
    """

    #: Name of the rule in ``nesy._core``.
    _kind: str = ""
    #: Name in ``state_dict`` of the per-parameter scalar state (NAdam's ``mu_product``), if any.
    _scalar_name: str | None = None
    _scalar_init: float = 0.0
    #: A state buffer whose presence in a loaded entry that lacks the scalar sets the scalar to
    #: 1 (torch's SGD state is only ``momentum_buffer``, which exists once momentum started).
    _scalar_set_by: str | None = None
    #: Columns that are not options of the group but fixed by the class (AdamW's decoupling).
    _fixed: dict[str, float] = {}

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if isinstance(params, np.ndarray) or isinstance(params, Mapping):
            raise TypeError(
                "params: expected a list of arrays or of parameter-group dicts, got "
                f"{type(params).__name__}"
            )
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self._columns: list[str] = list(_core.optim_columns(self._kind))
        self._params: list[np.ndarray] = []
        self._group_of: list[int] = []
        #: Each group's ``"params"`` list as added: a step checks that the group still holds
        #: that list (the flat state follows ``_params``; the lists refuse edits themselves).
        self._group_params: list[_ParamList] = []
        self._steps = np.zeros(0, dtype=np.int64)
        self._scalars = np.zeros(0, dtype=np.float64)
        self._state_names: list[str] = []
        self._flat: dict[np.dtype, list[np.ndarray]] = {d: [] for d in _FLOATS}
        self._used: list[int] = []
        self._n_alloc = 0
        self._last_hyper: np.ndarray | None = None
        #: The rows `_last_hyper` was made from (a step compares lists, not arrays).
        self._last_rows: list[list[float]] | None = None
        #: SIMD level for the kernels (None: the best this CPU has); tests pin it.
        self._simd: str | None = None
        groups = list(params)
        if not groups:
            raise ValueError("params: the optimizer got an empty parameter list")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    # ------------------------------------------------------------------------------ groups
    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group of parameters with its own options (missing ones from ``defaults``)."""
        if not isinstance(param_group, Mapping) or "params" not in param_group:
            raise TypeError("param_group: expected a dict with a 'params' list")
        group = dict(param_group)
        ps = group["params"]
        ps = [ps] if isinstance(ps, np.ndarray) else list(ps)
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise ValueError(
                f"param_groups[{len(self.param_groups)}]: unknown option(s) {sorted(unknown)}; "
                f"{type(self).__name__} takes {sorted(self.defaults)}"
            )
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        seen = {id(p) for p in self._params}
        for j, p in enumerate(ps):
            where = f"param_groups[{len(self.param_groups)}]['params'][{j}]"
            _check_param(p, where)
            if id(p) in seen:
                raise ValueError(f"{where}: the same array appears more than once")
            seen.add(id(p))
        _check_disjoint(self._params, ps, len(self.param_groups))
        ps = _ParamList(ps)
        group["params"] = ps
        g_index = len(self.param_groups)
        self.param_groups.append(group)
        try:
            self._hyper()  # validates the options (names the group and option)
        except Exception:
            self.param_groups.pop()
            raise
        self._params.extend(ps)
        self._group_params.append(ps)
        self._group_of.extend([g_index] * len(ps))
        self._steps = np.concatenate([self._steps, np.zeros(len(ps), np.int64)])
        self._scalars = np.concatenate(
            [self._scalars, np.full(len(ps), self._scalar_init, np.float64)]
        )
        self._group_idx = np.asarray(self._group_of, dtype=np.int64)
        self._alloc_state()

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickling. An optimizer pickled before groups kept their ``"params"`` list as a
        :class:`_ParamList` (nesy up to f093027) has no ``_group_params``: it is rebuilt from
        the arrays each group holds in the flat state, and each group's list becomes a
        :class:`_ParamList` when it still holds exactly those arrays (a list edited before
        pickling, which that version ignored, is left as it is: a step then refuses it)."""
        self.__dict__.update(state)
        if "_group_params" in state:
            return
        # as many groups as were added (a group popped from param_groups by hand still holds
        # its arrays, so the step's group count check refuses it)
        n_groups = max(len(self.param_groups), max(self._group_of, default=-1) + 1)
        held: list[list[np.ndarray]] = [[] for _ in range(n_groups)]
        for p, gi in zip(self._params, self._group_of):
            held[gi].append(p)
        self._group_params = [_ParamList(arrays) for arrays in held]
        for gi, g in enumerate(self.param_groups):
            ps = g.get("params") if isinstance(g, Mapping) else None
            arrays = held[gi]
            if (isinstance(g, dict) and isinstance(ps, list) and len(ps) == len(arrays)
                    and all(a is b for a, b in zip(ps, arrays))):
                g["params"] = self._group_params[gi]

    def _check_groups_unchanged(self) -> None:
        """``ValueError`` if ``param_groups`` or a group's ``"params"`` entry was replaced since
        the arrays were added: the optimizer's state is laid out for the arrays it was given,
        so it cannot follow another list. (Edits of the list itself are refused where they
        happen: it is a :class:`_ParamList`.) O(groups): it runs at every step."""
        groups, snaps = self.param_groups, self._group_params
        if len(groups) != len(snaps):
            raise ValueError(
                f"param_groups: has {len(groups)} groups, but the optimizer was given "
                f"{len(snaps)}; add a group with add_param_group({{'params': [...]}}), not by "
                "editing the list"
            )
        for gi, (g, snap) in enumerate(zip(groups, snaps)):
            ps = g.get("params") if isinstance(g, Mapping) else None
            if ps is snap:  # a _ParamList: its length cannot have changed
                continue
            have = f"{len(ps)} arrays" if isinstance(ps, (list, tuple)) else repr(ps)
            raise ValueError(
                f"param_groups[{gi}]['params']: replaced after it was added ({have}, the "
                f"optimizer holds {len(snap)}); the optimizer does not follow another list: add "
                "new parameters with add_param_group({'params': [...]}), or build a new "
                "optimizer"
            )

    # ------------------------------------------------------------------------------ state
    def _row(self, gi: int, group: Mapping[str, Any]) -> list[float]:
        """Group ``gi``'s options as one row of numbers; a value that is not a real number
        raises ``TypeError`` naming the group and option (range checks are the kernels').
        Runs at every step (to see options changed since the last one), so plain ints and
        floats take a fast path. An option deleted from the group since it was added is a
        ``KeyError``, and one added that the optimizer does not take a ``ValueError``, both
        naming the group and the option (as the constructor refuses unknown options)."""
        if len(group) != self._n_keys + ("initial_lr" in group):
            self._check_keys(gi, group)
        row = []
        for col in self._columns:
            if col in self._fixed:
                row.append(float(self._fixed[col]))
                continue
            if col == "beta1" or col == "beta2":
                betas = group["betas"]
                if type(betas) is not tuple or len(betas) != 2:
                    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
                        raise ValueError(f"param_groups[{gi}]['betas']: expected a pair "
                                         f"(beta1, beta2), got {betas!r}")
                name, v = "betas", betas[col == "beta2"]
            else:
                name, v = col, group[col]
            t = type(v)
            row.append(float(v) if t is float or t is int else _real(gi, name, v))
        self._check_group(gi, group)
        return row

    @property
    def _n_keys(self) -> int:
        """Keys of a complete group without ``"initial_lr"``: ``"params"`` and the options."""
        return len(self.defaults) + 1

    def _check_keys(self, gi: int, group: Mapping[str, Any]) -> None:
        """Group ``gi`` holds ``"params"`` and every option, and no unknown option (options
        edited after the group was added: torch ignores a misspelt one)."""
        for k in ("params", *self.defaults):
            if k not in group:
                raise KeyError(f"param_groups[{gi}]['{k}']: missing (deleted after the group "
                               f"was added?); {type(self).__name__} needs every option "
                               f"{sorted(self.defaults)}")
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise ValueError(
                f"param_groups[{gi}]: unknown option(s) {sorted(unknown)}; "
                f"{type(self).__name__} takes {sorted(self.defaults)}"
            )

    def _check_group(self, gi: int, group: Mapping[str, Any]) -> None:
        """Checks of options the kernels never see (Adagrad's initial accumulator)."""

    def _hyper(self) -> np.ndarray:
        """The hyper-parameter table (one row per group, ``optim_columns`` order).

        Rows are validated, and the state buffers each group needs looked up, only when the
        options changed since the last step, so a step stays one call into Rust.
        """
        rows = [self._row(gi, g) for gi, g in enumerate(self.param_groups)]
        if rows == self._last_rows and self._last_hyper is not None:
            return self._last_hyper  # unchanged options (NaN never compares equal)
        hyper = np.array(rows, dtype=np.float64).reshape(len(rows), -1)
        names, used = _core.optim_state(self._kind, hyper)
        self._state_names = list(names)
        self._used = used
        self._last_hyper, self._last_rows = hyper, rows
        return hyper

    def _state_init(self, name: str, group: Mapping[str, Any]) -> float:
        """Initial value of state buffer ``name`` for a parameter of ``group``."""
        return 0.0

    def _alloc_state(self) -> None:
        """(Re)allocate flat buffers after parameters or options changed.

        Existing values are kept; new parameters start at their initial value. A buffer is
        allocated when a group needs it, and every allocated buffer follows the parameter count
        (also one an option no longer uses, so that turning the option back on finds its state).
        """
        n_used = max(self._used, default=0)
        self._n_alloc = n_used
        for dtype in _FLOATS:
            total = int(sum(p.size for p in self._params if p.dtype == dtype))
            bufs = self._flat[dtype]
            while len(bufs) < len(self._state_names):
                bufs.append(np.zeros(0, dtype))
            for k, name in enumerate(self._state_names):
                have = bufs[k].size
                if have == total or (have == 0 and not (k < n_used and total > 0)):
                    continue
                fresh = self._fresh_buffer(dtype, name)
                fresh[:have] = bufs[k]
                bufs[k] = fresh

    def _fresh_buffer(self, dtype: np.dtype, name: str) -> np.ndarray:
        parts = [
            np.full(p.size, self._state_init(name, self.param_groups[g]), dtype)
            for p, g in zip(self._params, self._group_of)
            if p.dtype == dtype
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    def _views(self) -> list[dict[str, np.ndarray]]:
        """Per-parameter views into the flat buffers (allocated ones only)."""
        out: list[dict[str, np.ndarray]] = [{} for _ in self._params]
        offsets = {d: 0 for d in _FLOATS}
        for i, p in enumerate(self._params):
            o = offsets[p.dtype]
            for name, buf in zip(self._state_names, self._flat[p.dtype]):
                if buf.size:
                    out[i][name] = buf[o : o + p.size].reshape(p.shape)
            offsets[p.dtype] = o + p.size
        return out

    # ------------------------------------------------------------------------------ step
    def step(self, grads: Sequence[np.ndarray | None], *, check_finite: bool = False) -> None:
        """Update every parameter in place from its gradient.

        Parameters
        ----------
        grads : list of ndarray or None
            One gradient per parameter, in ``parameters`` order (groups concatenated), each with
            its parameter's shape and dtype; ``None`` skips that parameter (its step count too).
        check_finite : bool
            If true, raise ``FloatingPointError`` and change nothing when any gradient holds NaN
            or infinity. By default non-finite values propagate, as in PyTorch.

        Raises
        ------
        ValueError
            Before anything changes, if a group's ``"params"`` list was replaced by another
            list, or a group was added or removed by editing ``param_groups`` (torch would
            follow the change, this optimizer's flat state cannot): add parameters with
            :meth:`add_param_group`. Edits of a group's ``"params"`` list itself (an array
            appended, removed or replaced) are refused at the edit, with the same advice. Also
            for an option added to a group that the optimizer does not take (a misspelt
            ``"weight_decy"``, which torch would ignore), naming the group.
        KeyError
            Before anything changes, for an option deleted from a group, naming the group
            and the option.
        TypeError
            ``grads`` is not a list (or iterable) of arrays: one array is refused, not read as
            a list of its rows.
        """
        if not isinstance(grads, list):
            if (not isinstance(grads, Iterable) or isinstance(grads, (str, bytes, Mapping))
                    or isinstance(grads, np.ndarray)):  # an array's rows are not gradients
                raise TypeError(f"grads: expected a list with one array per parameter, got "
                                f"{type(grads).__name__}")
            grads = list(grads)
        if check_finite is not False and check_finite is not True:
            check_finite = check_bool("check_finite", check_finite)
        self._check_groups_unchanged()
        hyper = self._hyper()
        if max(self._used, default=0) > self._n_alloc:
            self._alloc_state()  # an option turned on a state buffer (amsgrad, momentum, ...)
        if check_finite and not _core.all_finite([g for g in grads if g is not None]):
            bad = next(i for i, g in enumerate(grads)
                       if g is not None and not _core.all_finite([g]))
            raise FloatingPointError(f"grads[{bad}]: holds NaN or infinity; nothing was updated")
        lrs = _core.optim_step(
            self._kind,
            self._params,
            grads,
            self._group_idx,
            self._steps,
            self._scalars,
            hyper,
            self._flat[_FLOATS[0]],
            self._flat[_FLOATS[1]],
            self._simd,
        )
        if lrs is not None:
            for g, lr in zip(self.param_groups, lrs):
                g["lr"] = lr

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Refuse, with what to do instead: a nesy optimizer holds no gradients.

        torch's optimizers clear the ``.grad`` of their parameters. Here :meth:`step` takes the
        gradients as an argument, so there is nothing to clear in the optimizer, and doing
        nothing would let the gradients of a ported torch loop accumulate without a word
        (nesy :class:`~nesy.nn.Module` backward passes add into their gradient arrays). Zero
        the gradients where they accumulate: ``model.zero_grad()`` for a nesy Module, or
        ``g[...] = 0`` for arrays of your own.

        Raises
        ------
        RuntimeError
            Always, naming ``model.zero_grad()``.
        """
        raise RuntimeError(
            f"{type(self).__name__}.zero_grad(): nesy optimizers hold no gradients (step(grads) "
            "takes them); zero them where they accumulate: model.zero_grad() for a nesy "
            "Module, g[...] = 0 for your own arrays"
        )

    def zero_state(self) -> None:
        """Forget all state: as if no step had been taken (options are kept)."""
        self._steps[:] = 0
        self._scalars[:] = self._scalar_init
        for dtype in _FLOATS:
            self._flat[dtype] = [np.zeros(0, dtype) for _ in self._state_names]
        self._alloc_state()

    # ------------------------------------------------------------------------------ state dict
    def state_dict(self) -> dict[str, Any]:
        """Torch-style state: ``{"state": {i: {...}}, "param_groups": [...]}`` with copies.

        Parameters are referred to by their index in the order of all groups concatenated.
        """
        self._check_groups_unchanged()
        state: dict[int, dict[str, Any]] = {}
        for i, views in enumerate(self._views()):
            if self._steps[i] == 0:
                continue
            entry: dict[str, Any] = {"step": int(self._steps[i])}
            in_use = self._state_names[: self._used[self._group_of[i]]]
            entry.update({k: v.copy() for k, v in views.items() if k in in_use})
            if self._scalar_name:
                entry[self._scalar_name] = float(self._scalars[i])
            state[i] = entry
        groups, start = [], 0
        for g in self.param_groups:
            d = {k: v for k, v in g.items() if k != "params"}
            d["params"] = list(range(start, start + len(g["params"])))
            start += len(g["params"])
            groups.append(d)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore options and state saved by :meth:`state_dict` (bit-identical).

        Everything is checked, and the new state built aside, before anything changes: a
        failing call leaves the optimizer as it was.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict: expected a dict with keys 'state' and 'param_groups', "
                            f"got {type(state_dict).__name__}")
        self._check_groups_unchanged()
        groups = state_dict.get("param_groups")
        state = state_dict.get("state")
        if not isinstance(groups, list) or not isinstance(state, Mapping):
            raise ValueError("state_dict: expected keys 'state' (dict) and 'param_groups' (list)")
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict: has {len(groups)} parameter groups, the optimizer has "
                f"{len(self.param_groups)}"
            )
        new_groups = []
        for gi, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            if not isinstance(saved, Mapping) or not isinstance(saved.get("params", []),
                                                                (list, tuple)):
                raise TypeError(f"state_dict: param_groups[{gi}] must be a dict with a "
                                f"'params' list, got {saved!r}")
            if len(saved.get("params", [])) != len(mine["params"]):
                raise ValueError(
                    f"state_dict: param_groups[{gi}] has {len(saved.get('params', []))} "
                    f"parameters, the optimizer's has {len(mine['params'])}"
                )
            saved = {k: v for k, v in saved.items() if k not in _TORCH_EXECUTION}
            for k in set(saved) & set(self._fixed):
                if float(saved.pop(k)) != self._fixed[k]:
                    raise ValueError(f"state_dict: param_groups[{gi}]['{k}'] is not "
                                     f"{bool(self._fixed[k])}, as {type(self).__name__} has it")
            unknown = set(saved) - set(self.defaults) - {"params", "initial_lr"}
            if unknown:
                raise ValueError(f"state_dict: param_groups[{gi}] has unknown option(s) "
                                 f"{sorted(unknown)}")
            g = dict(mine)
            g.update({k: (tuple(v) if k == "betas" and isinstance(v, (list, tuple)) else v)
                      for k, v in saved.items() if k != "params"})
            new_groups.append(g)
        # Validate the options (names group and option) without touching the optimizer.
        hyper = np.array([self._row(gi, g) for gi, g in enumerate(new_groups)],
                         dtype=np.float64)
        names, used = _core.optim_state(self._kind, hyper.reshape(len(new_groups), -1))
        names = list(names)
        steps = np.zeros_like(self._steps)
        scalars = np.full_like(self._scalars, self._scalar_init)
        entries: dict[int, dict[str, np.ndarray]] = {}
        for key, entry in state.items():
            i = _state_index(key)
            if not 0 <= i < len(self._params):
                raise IndexError(f"state_dict: state index {i} out of range")
            if not isinstance(entry, Mapping):
                raise ValueError(f"state_dict: state[{i}] must be a dict")
            # torch's SGD keeps no step count: an entry with buffers has made at least one.
            buffers = set(entry) - {"step", self._scalar_name}
            step = entry.get("step", 1 if buffers else 0)
            if not isinstance(step, (int, float, np.generic)) and hasattr(step, "__array__"):
                step = np.asarray(step)  # torch keeps the step as a 0-d float tensor
            if isinstance(step, np.ndarray) and step.ndim == 0:
                step = step[()]
            integral = isinstance(step, (int, np.integer)) or (
                isinstance(step, (float, np.floating)) and float(step).is_integer())
            if isinstance(step, (bool, np.bool_)) or not integral or not 0 <= step < 2**62:
                raise ValueError(f"state_dict: state[{i}]['step'] must be an integer in "
                                 f"[0, 2**62), got {step!r}")
            steps[i] = int(step)
            if self._scalar_name and self._scalar_name in entry:
                try:
                    scalars[i] = float(entry[self._scalar_name])
                except (TypeError, ValueError):
                    raise ValueError(f"state_dict: state[{i}][{self._scalar_name!r}] must be "
                                     f"a number") from None
            elif self._scalar_set_by is not None and self._scalar_set_by in entry:
                scalars[i] = 1.0
            arrays = {}
            for name, val in entry.items():
                if name in ("step", self._scalar_name):
                    continue
                if name not in names:
                    raise ValueError(f"state_dict: state[{i}] has unknown buffer {name!r}")
                arr = np.asarray(val)
                p = self._params[i]
                if arr.shape != p.shape or arr.dtype != p.dtype:
                    raise ValueError(
                        f"state_dict: state[{i}][{name!r}] has shape {arr.shape} and dtype "
                        f"{arr.dtype}, expected {p.shape} and {p.dtype}"
                    )
                arrays[name] = arr
            entries[i] = arrays
        # All checked: build the new state aside, then swap it in.
        saved_attrs = (self._state_names, self._used, self._flat, self._n_alloc,
                       self._last_hyper, [dict(g) for g in self.param_groups])
        for mine, g in zip(self.param_groups, new_groups):
            mine.clear()
            mine.update(g)
        self._state_names, self._used, self._last_hyper = names, used, hyper
        self._last_rows = None  # recomputed at the next step
        self._flat = {d: [np.zeros(0, d) for _ in names] for d in _FLOATS}
        try:
            self._alloc_state()
        except BaseException:
            (self._state_names, self._used, self._flat, self._n_alloc, self._last_hyper,
             old) = saved_attrs
            for mine, g in zip(self.param_groups, old):
                mine.clear()
                mine.update(g)
            raise
        views = self._views()
        for i, arrays in entries.items():
            for name, arr in arrays.items():
                if name in views[i]:
                    views[i][name][...] = arr
        self._steps, self._scalars = steps, scalars

    def __repr__(self) -> str:
        """Each group's current options (a schedule's learning rate shows), as torch prints."""
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]!r}" for k in sorted(group) if k != "params"]
        return "\n".join(lines + [")"])


def _real(gi: int, name: str, v: Any) -> float:
    """Option ``name`` of group ``gi`` as a float: any real number (a NumPy scalar, a 0-d
    array, a bool for a flag); ``TypeError`` naming it otherwise (a string, None, complex)."""
    return _number(f"param_groups[{gi}]['{name}']", v)


def _number(where: str, v: Any, finite: bool = False) -> float:
    """``v`` as a float: any real number (a NumPy scalar, a 0-d array, a bool); ``TypeError``
    naming ``where`` otherwise, and ``ValueError`` for NaN or infinity if ``finite``."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v[()]
    if not isinstance(v, (Real, np.number, np.bool_)) or isinstance(v, np.complexfloating):
        raise TypeError(f"{where} must be a real number, got {v!r}")
    try:
        f = float(v)
    except OverflowError:  # an int beyond the float range
        f = math.inf if int(v) > 0 else -math.inf
    if finite and not math.isfinite(f):
        raise ValueError(f"{where} must be a finite number, got {v!r}")
    return f


def _state_index(key: Any) -> int:
    """A key of ``state_dict['state']``: an integer, or its decimal string (after JSON)."""
    if isinstance(key, str) and key.isdigit():
        return int(key)
    if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
        raise TypeError(f"state_dict: state key {key!r} is not a parameter index (an integer)")
    return int(key)


def _check_param(p: Any, where: str) -> None:
    if not isinstance(p, np.ndarray):
        hint = ""
        if type(p).__module__.startswith("torch"):  # a Parameter or tensor: its NumPy view
            hint = ("; for PyTorch parameters pass their NumPy views, "
                    "[p.detach().numpy() for p in model.parameters()]")
        raise TypeError(f"{where}: expected a numpy array, got {type(p).__name__}{hint}")
    if p.dtype not in _FLOATS:
        raise TypeError(f"{where}: dtype must be float32 or float64, got {p.dtype}")
    if not p.flags.c_contiguous:
        raise ValueError(f"{where}: must be C-contiguous (it is updated in place)")
    if not p.flags.writeable:
        raise ValueError(f"{where}: is read-only (it is updated in place)")


def _check_disjoint(old: Sequence[np.ndarray], new: Sequence[np.ndarray], group: int) -> None:
    """Refuses new parameters that share memory with each other or with ``old`` ones (views
    of one buffer that overlap): every parameter is updated in place."""
    spans = sorted(
        (p.__array_interface__["data"][0], p.nbytes, k)
        for k, p in enumerate([*old, *new]) if p.nbytes
    )
    for (a, na, i), (b, _, j) in zip(spans, spans[1:]):
        if b < a + na:
            i, j = sorted((i, j))
            where = f"param_groups[{group}]['params'][{j - len(old)}]"
            other = (f"parameter {i} of the optimizer" if i < len(old)
                     else f"['params'][{i - len(old)}]")
            raise ValueError(f"{where}: shares memory with {other}; parameters are updated in "
                             "place and must not overlap")


def save_state_dict(state_dict: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write an optimizer state dict to ``path`` as ``.npz`` (atomically: temp file + rename).

    Arrays are stored as ``state/<i>/<name>``; the parameter groups and scalar state as JSON.
    Only an optimizer's state dict (``{"state": ..., "param_groups": ...}``; a schedule's
    state dict is plain JSON-able values, a module's ``Module.save``); ``TypeError`` /
    ``ValueError`` naming ``state_dict`` otherwise, before anything is written.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict: expected an optimizer's state dict, got "
                        f"{type(state_dict).__name__}")
    missing = [k for k in ("state", "param_groups") if k not in state_dict]
    if missing or not isinstance(state_dict["state"], Mapping):
        raise ValueError(f"state_dict: expected an optimizer's state dict with 'state' and "
                         f"'param_groups', got keys {sorted(map(str, state_dict))}")
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for i, entry in state_dict["state"].items():
        if not isinstance(entry, Mapping):
            raise TypeError(f"state_dict: state[{i!r}]: expected a dict of the parameter's "
                            f"state (step and buffers), got {type(entry).__name__} {entry!r}")
        for name, v in entry.items():
            if isinstance(v, np.ndarray):
                arrays[f"state/{i}/{name}"] = v
            else:
                scalars.setdefault(str(i), {})[name] = v
    meta = {"param_groups": state_dict["param_groups"], "scalars": scalars}
    try:
        text = json.dumps(meta, default=_json_default)
    except TypeError:
        _name_unsaveable(state_dict)
        raise
    arrays["meta"] = np.frombuffer(text.encode(), dtype=np.uint8)
    atomic_savez(path, arrays)


def _name_unsaveable(state_dict: Mapping[str, Any]) -> None:
    """``TypeError`` naming the first entry of ``state_dict`` that neither is an array nor
    converts to JSON (a torch tensor: pass ``.numpy()`` / ``.item()`` values)."""
    entries: list[tuple[str, Any]] = []
    groups = state_dict["param_groups"]
    if isinstance(groups, (list, tuple)):
        for gi, g in enumerate(groups):
            items = g.items() if isinstance(g, Mapping) else [(None, g)]
            entries += [(f"state_dict['param_groups'][{gi}]"
                         + ("" if k is None else f"[{k!r}]"), v) for k, v in items]
    for i, entry in state_dict["state"].items():
        entries += [(f"state_dict['state'][{i!r}][{name!r}]", v) for name, v in entry.items()
                    if not isinstance(v, np.ndarray)]
    for where, v in entries:
        try:
            json.dumps(v, default=_json_default)
        except TypeError:
            hint = (" (a torch tensor: save t.numpy() for a buffer, t.item() for a number)"
                    if type(v).__module__.startswith("torch") else "")
            raise TypeError(f"{where}: cannot save a value of type {type(v).__name__} in a "
                            f"state dict{hint}") from None


def load_state_dict(path: str | os.PathLike[str] | BinaryIO) -> dict[str, Any]:
    """Read a state dict written by :func:`save_state_dict` (a path or an open binary file).

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        It is not a state-dict file; the message names ``path``.
    TypeError
        A group's ``betas`` is not a list; the message names ``path`` and the group."""
    from nesy._io import read_npz

    shown = os.fspath(path) if isinstance(path, (str, os.PathLike)) else getattr(path, "name", path)

    def bad(why: str) -> ValueError:
        return ValueError(f"{shown!r}: not a nesy optimizer state file ({why})")

    f = read_npz(path, "optimizer state", ("meta",))
    try:
        meta = json.loads(f["meta"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"'meta' is not UTF-8 JSON: {exc}") from None
    if (not isinstance(meta, dict) or not isinstance(meta.get("scalars"), dict)
            or not isinstance(meta.get("param_groups"), list)
            or not all(isinstance(g, dict) for g in meta["param_groups"])):
        raise bad("'meta' lacks the 'scalars' object or the 'param_groups' list")
    state: dict[int, dict[str, Any]] = {}
    for i, entry in meta["scalars"].items():
        if not i.isdigit() or not isinstance(entry, dict):
            raise bad(f"scalars key {i!r} is not a parameter index")
        state.setdefault(int(i), {}).update(entry)
    for key, a in f.items():
        if key.startswith("state/"):
            parts = key.split("/", 2)
            if len(parts) != 3 or not parts[1].isdigit():
                raise bad(f"key {key!r} is not 'state/<index>/<name>'")
            state.setdefault(int(parts[1]), {})[parts[2]] = a
    groups = meta["param_groups"]
    for gi, g in enumerate(groups):
        if "betas" in g:
            if not isinstance(g["betas"], list):
                raise TypeError(f"{shown!r}: param_groups[{gi}]['betas']: expected a list "
                                f"(beta1, beta2), got {type(g['betas']).__name__} {g['betas']!r}")
            g["betas"] = tuple(g["betas"])
    return {"state": state, "param_groups": groups}


def _json_default(o: Any) -> Any:
    """NumPy scalars (an ``np.float32`` learning rate, ...) as Python numbers."""
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"cannot save a value of type {type(o).__name__} in a state dict")
