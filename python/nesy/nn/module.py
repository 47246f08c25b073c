"""The :class:`Module` protocol every nesy network is built from.

A module owns NumPy parameter arrays and a gradient array of the same shape and dtype for each.
``forward`` computes the output and keeps what ``backward`` needs; ``backward(grad_out)`` returns
the gradient with respect to the input and *accumulates* (``+=``) the parameter gradients.
Optimizers receive ``module.parameters()`` once and update those arrays in place on every
``step(module.gradients())``, so parameter arrays are never re-bound: assigning to a parameter
attribute copies into the existing array, with the checks of ``load_state_dict`` (NaN or
infinity in a parameter, or a finite value that overflows the array's dtype, raises
``ValueError`` naming the attribute).

Submodules are registered by attribute assignment (as in PyTorch). ``parameters()`` lists a
module's own parameters in registration order, then those of each submodule in registration
order, recursively; an array reachable twice is listed once, with one gradient array:

- the same submodule registered under two names (``self.tied = self.encoder``);
- weight tying, the same parameter array registered on two modules
  (``decoder.register_parameter("weight", encoder.weight)``, after ``del decoder.weight``):
  both modules then share that parameter's gradient array too, so ``backward`` accumulates
  the contribution of every use into it, as PyTorch sums them. Only the array object itself
  ties: a view of it is a separate parameter with its own gradient (as a PyTorch Parameter
  made from a view), and one that is not C-contiguous (``encoder.weight.T``) is copied. An
  array ties only while a module that holds it as a parameter is alive: one registered again
  after its modules were deleted starts with a new zero gradient.

``state_dict()`` lists a tied array under each of its names, as PyTorch does (so a tied
model's state dict loads into PyTorch's tied model and back), and ``load_state_dict`` takes any
of those names.

A module keeps what one ``forward`` needs for ``backward`` (its last pass), so one module
object must not be called twice in one forward pass (its first use would get the second use's
input): :class:`~nesy.nn.Sequential` and :class:`ModuleList` refuse a module they already
hold; create one module per use, and tie their parameters to share weights.
"""

from __future__ import annotations

import functools
import io
import os
import weakref
from typing import Any, BinaryIO, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from nesy._checks import check_bool
from nesy._io import atomic_savez

__all__ = ["Module", "ModuleList", "Identity"]


def real_array(x: Any, name: str) -> np.ndarray:
    """``x`` as an array of real numbers (bool, integer or floating dtype).

    Raises ``TypeError`` naming ``name`` for any other dtype: a complex array would lose its
    imaginary part when cast to float, an object array turns ``None`` into NaN, strings fail
    later with an unrelated message.
    """
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {a.dtype}")
    return a


def _copy_transposed(src: np.ndarray, dst: np.ndarray) -> None:
    """``dst[...] = src.T`` for 2-D arrays (casting as ``np.copyto``), in 64 x 64 tiles: a
    plain transposed copy of a large array strides through memory and ran 4x slower."""
    n, m = src.shape
    for i in range(0, n, 64):
        for j in range(0, m, 64):
            np.copyto(dst[j:j + 64, i:i + 64], src[i:i + 64, j:j + 64].T, casting="unsafe")


def _checked_values(key: str, src: np.ndarray, dtype: np.dtype, finite: bool,
                    what: Optional[str] = None) -> np.ndarray:
    """``src`` (floating point, loaded into an array of float ``dtype``), cast to ``dtype``
    when that narrows it. ``ValueError`` naming ``key`` (the message starting with ``what``,
    by default ``load_state_dict: key '<key>'``) for a finite value the cast would make
    infinite and, with ``finite`` (a parameter), for NaN or infinity."""
    what = f"load_state_dict: key {key!r}" if what is None else what
    if np.finfo(src.dtype).max > np.finfo(dtype).max:
        with np.errstate(over="ignore"):
            cast = src.astype(dtype)
        over = np.isinf(cast) & np.isfinite(src)
        if over.any():
            value = src[tuple(np.argwhere(over)[0])]
            raise ValueError(f"{what} holds {value:g}, which does not fit in {dtype} (the "
                             "dtype of the array it is loaded into)")
        src = cast
    if finite and not np.isfinite(src).all():
        raise ValueError(f"{what} contains NaN or infinity")
    return src


def _transposed(a: np.ndarray) -> np.ndarray:
    out = np.empty(a.shape[::-1], a.dtype)
    _copy_transposed(a, out)
    return out


def _file_head(path: Any) -> bytes:
    """The first bytes of the file ``path`` (a path or a seekable binary file object, left at
    its position); empty when they cannot be read (the reader then names the problem)."""
    try:
        if isinstance(path, (str, os.PathLike)):
            with open(path, "rb") as fh:
                return fh.read(2)
        if callable(getattr(path, "seekable", None)) and path.seekable():
            pos = path.tell()
            try:
                head = path.read(2)
            finally:
                path.seek(pos)
            return head if isinstance(head, bytes) else b""
    except (OSError, ValueError):
        pass
    return b""


def _zip_has_torch_pickle(path: Any) -> bool:
    """Whether the zip archive ``path`` (a path or a seekable binary file object, left at its
    position) has a ``data.pkl`` member, as torch.save's archives do: its names only, before
    any member is read (a checkpoint's tensors can be gigabytes)."""
    import zipfile

    pos = None
    try:
        if not isinstance(path, (str, os.PathLike)):
            pos = path.tell()
        with zipfile.ZipFile(path) as z:
            return any(n == "data.pkl" or n.endswith("/data.pkl") for n in z.namelist())
    except (OSError, ValueError, zipfile.BadZipFile, AttributeError):
        return False
    finally:
        if pos is not None:
            path.seek(pos)


def _torch_file_message(shown: Any, what: str) -> str:
    return (f"{shown!r}: not a nesy Module state file ({what}, as torch.save writes); to load "
            "a PyTorch state dict, convert its tensors to arrays: module.load_state_dict("
            "{k: v.numpy() for k, v in torch.load(path).items()}), after which module.save() "
            "writes a nesy .npz file")


class _Tie:
    """The gradient array of one parameter array, with weak references to the parameter and
    to the modules it was registered on (its owners)."""

    __slots__ = ("param", "grad", "owners")

    def __init__(self, param: weakref.ref[np.ndarray], grad: np.ndarray,
                 owners: List[weakref.ref[Module]]) -> None:
        self.param = param
        self.grad = grad
        self.owners = owners


#: The gradient array of every parameter array that a live module holds, by ``id`` of the
#: parameter: registering an array that some live module holds as a parameter (weight tying)
#: gives it the same gradient array, so that the backward passes of both modules accumulate
#: into one gradient. An entry goes when its array does, or when no live module holds the
#: array as a parameter any more (its modules were deleted, or deleted the attribute): the
#: table keeps no gradient that no module uses, and an array registered again after that
#: starts with a new zero gradient, as any new parameter.
_GRAD_OF: Dict[int, _Tie] = {}


def _holds(module: Optional[Module], param: Optional[np.ndarray], grad: np.ndarray) -> bool:
    """Whether ``module`` (alive) holds ``param`` as a parameter with the gradient ``grad``."""
    if module is None or param is None:
        return False
    params = module.__dict__.get("_parameters", {})
    grads = module.__dict__.get("_grads", {})
    # (a parameter without a gradient yet is being registered: register_parameter stores
    # the gradient this table gives it right after)
    return any(p is param and grads.get(n, grad) is grad for n, p in params.items())


def _forget(key: int, ref: weakref.ref[np.ndarray]) -> None:
    """Drop the entry of a parameter array that was freed."""
    entry = _GRAD_OF.get(key)
    if entry is not None and entry.param is ref:
        del _GRAD_OF[key]


def _prune(key: int, _ref: Any = None) -> None:
    """Drop the owners of the entry ``key`` that are gone or no longer hold its array, and
    the entry when none is left (an owner was freed, or deleted the parameter)."""
    entry = _GRAD_OF.get(key)
    if entry is None:
        return
    param = entry.param()
    entry.owners = [r for r in entry.owners if _holds(r(), param, entry.grad)]
    if not entry.owners:
        del _GRAD_OF[key]


def _gradient_of(param: np.ndarray, owner: Module,
                 grad: Optional[np.ndarray] = None) -> np.ndarray:
    """The gradient array of ``param``, which ``owner`` holds (or is about to hold) as a
    parameter: the one it already has when a live module holds it as a parameter, else
    ``grad`` (a new zero array when None), which is recorded as its gradient."""
    key = id(param)
    entry = _GRAD_OF.get(key)
    if entry is not None and entry.param() is param:
        live = [r for r in entry.owners if _holds(r(), param, entry.grad)]
        if live:
            if not any(r() is owner for r in live):
                live.append(weakref.ref(owner, functools.partial(_prune, key)))
            entry.owners = live
            return entry.grad
    if grad is None:
        grad = np.zeros_like(param)
    _GRAD_OF[key] = _Tie(weakref.ref(param, functools.partial(_forget, key)), grad,
                         [weakref.ref(owner, functools.partial(_prune, key))])
    return grad


def _some(keys: List[str], n: int = 5) -> str:
    """The first ``n`` of ``keys``, and how many more there are."""
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return f"{keys[:n]}{more}"


class Module:
    """Base class of all layers and models.

    Subclasses call ``super().__init__()`` first, register their arrays with
    :meth:`register_parameter` (and :meth:`register_buffer` for non-trained state), assign
    submodules as attributes, and implement :meth:`forward` and :meth:`backward`.

    Attributes
    ----------
    training : bool
        ``True`` in training mode (the default), ``False`` after :meth:`eval`.
    """

    training: bool
    #: Names of 2-D parameters that state dicts hold transposed (PyTorch's layout).
    _state_dict_transposed: Tuple[str, ...] = ()
    #: Names of buffers that a loaded state dict may lack, as those written before the buffer
    #: existed do (GINConv's fixed ``eps``): ``load_state_dict`` then keeps them as they are.
    _state_dict_optional: Tuple[str, ...] = ()
    _parameters: Dict[str, np.ndarray]
    _grads: Dict[str, np.ndarray]
    _buffers: Dict[str, np.ndarray]
    _modules: Dict[str, Module]
    _ctx: Optional[Tuple[Any, ...]]
    #: Attributes that hold what the last forward or backward pass left behind (its inputs and
    #: activations in ``_ctx``, a graph layer's per-graph ``_cache``; subclasses add theirs),
    #: each with the value a pickled or copied module gets instead: the data of the last
    #: batch is not written into a pickle, which holds the parameters and the configuration
    #: (as a pickled ``torch.nn.Module`` holds no autograd graph). An attribute that is not
    #: set stays unset.
    _per_pass: Dict[str, Any] = {"_ctx": None, "_cache": (None, None)}

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_grads", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_ctx", None)

    def __getstate__(self) -> Dict[str, Any]:
        """The module's attributes without what the last pass left behind (see
        ``_per_pass``): after ``pickle`` or ``copy``, ``backward`` needs a new ``forward``,
        as in a new module."""
        state = self.__dict__.copy()
        for name, empty in type(self)._per_pass.items():
            if name in state:
                state[name] = empty
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        """Restore a pickled or copied module; its parameters are recorded as such, so that
        registering one on another module ties them (see :meth:`register_parameter`). Tied
        arrays of one pickle or ``deepcopy`` come back tied: both share one gradient."""
        self.__dict__.update(state)
        params, grads = state.get("_parameters"), state.get("_grads")
        if isinstance(params, dict) and isinstance(grads, dict):
            for name, p in params.items():
                g = grads.get(name)
                if isinstance(p, np.ndarray) and isinstance(g, np.ndarray):
                    shared = _gradient_of(p, self, g)
                    if shared is not g:  # tied arrays saved with separate gradients
                        shared += g
                        grads[name] = shared

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() was called; "
                f"call super().__init__() first in {type(self).__name__}.__init__"
            )
        if name in d["_parameters"] or name in d["_buffers"]:
            store = d["_parameters"] if name in d["_parameters"] else d["_buffers"]
            target = store[name]
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(
                    f"{name!r}: cannot assign an array of shape {value.shape} to a registered "
                    f"array of shape {target.shape} (registered arrays are updated in place)"
                )
            if value.dtype.kind == "f" and target.dtype.kind == "f":
                # as load_state_dict: no overflow in the cast, no NaN or inf in a parameter
                value = _checked_values(name, value, target.dtype, finite=store is d[
                    "_parameters"], what=f"{name!r}: the assigned array")
            np.copyto(target, value, casting="same_kind")
            return
        if isinstance(value, Module):
            d["_modules"][name] = value
        elif name in d["_modules"]:
            del d["_modules"][name]
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        param = self.__dict__["_parameters"].get(name)
        for key in ("_parameters", "_grads", "_buffers", "_modules"):
            self.__dict__[key].pop(name, None)
        object.__delattr__(self, name)
        if param is not None:
            entry = _GRAD_OF.get(id(param))
            if entry is not None and entry.param() is param:
                _prune(id(param))

    def register_parameter(self, name: str, array: np.ndarray) -> np.ndarray:
        """Register ``array`` as a trainable parameter and create its zero gradient.

        Parameters
        ----------
        name : str
            Attribute name; the array is then reachable as ``self.<name>``.
        array : ndarray
            Float array. Stored as given when it is C-contiguous and writeable, else copied.
            An array that already is a parameter of a module (stored as given) ties the two:
            it keeps its one gradient array, into which both modules' ``backward`` passes
            accumulate (weight tying, as in PyTorch; see the module notes).

        Returns
        -------
        ndarray
            The stored parameter array.
        """
        self._check_new_name(name)
        arr = np.asarray(array)
        if not np.issubdtype(arr.dtype, np.floating):
            raise TypeError(f"parameter {name!r} must be a floating array, got {arr.dtype}")
        if not (arr.flags.c_contiguous and arr.flags.writeable):
            arr = np.array(arr, order="C", copy=True)
        self.__dict__["_parameters"][name] = arr
        self.__dict__["_grads"][name] = _gradient_of(arr, self)
        object.__setattr__(self, name, arr)
        return arr

    def register_buffer(self, name: str, array: np.ndarray) -> np.ndarray:
        """Register a non-trainable array that is saved in :meth:`state_dict` (e.g. statistics)."""
        self._check_new_name(name)
        arr = np.array(array, order="C", copy=True)
        self.__dict__["_buffers"][name] = arr
        object.__setattr__(self, name, arr)
        return arr

    def _check_new_name(self, name: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError("call super().__init__() before registering arrays")
        if not name or "." in name:
            raise ValueError(f"invalid array name {name!r}")
        if name in self._parameters or name in self._buffers or name in self._modules:
            raise ValueError(f"{name!r} is already registered on {type(self).__name__}")

    # ------------------------------------------------------------------ computation
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the output and keep what :meth:`backward` needs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Gradient with respect to the input of the last :meth:`forward`.

        Parameter gradients are accumulated (``+=``) into the arrays returned by
        :meth:`gradients`; call :meth:`zero_grad` between steps.

        Raises
        ------
        RuntimeError
            If called before any :meth:`forward`.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def _save(self, *values: Any) -> None:
        """Keep values from ``forward`` for ``backward`` (see :meth:`_saved`)."""
        object.__setattr__(self, "_ctx", values)

    def _saved(self) -> Tuple[Any, ...]:
        """Values kept by the last ``forward``; RuntimeError if there was none."""
        ctx = self.__dict__.get("_ctx")
        if ctx is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called before forward(); run forward first"
            )
        return ctx

    # ------------------------------------------------------------------ traversal
    def children(self) -> Iterator[Module]:
        """Direct submodules in registration order."""
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, Module]]:
        """``(name, module)`` for this module (named ``prefix``) and each descendant."""
        seen: set = set()

        def walk(mod: Module, pre: str) -> Iterator[Tuple[str, Module]]:
            if id(mod) in seen:
                return
            seen.add(id(mod))
            yield pre, mod
            for name, child in mod._modules.items():
                yield from walk(child, f"{pre}.{name}" if pre else name)

        yield from walk(self, prefix)

    def modules(self) -> Iterator[Module]:
        """This module and every descendant, depth first."""
        for _, m in self.named_modules():
            yield m

    def _named_arrays(self) -> Iterator[Tuple[str, np.ndarray, np.ndarray]]:
        """``(dotted_name, parameter, gradient)``, each parameter array once.

        Raises ``ValueError`` for a parameter array held by two modules with two different
        gradient arrays (put there without :meth:`register_parameter`): the optimizer would
        only see the gradient of one of its uses."""
        seen: Dict[int, Tuple[str, np.ndarray]] = {}
        for pre, mod in self.named_modules():
            for name, p in mod._parameters.items():
                full = f"{pre}.{name}" if pre else name
                g = mod._grads[name]
                first = seen.get(id(p))
                if first is None:
                    seen[id(p)] = (full, g)
                    yield full, p, g
                elif first[1] is not g:
                    raise ValueError(
                        f"parameter {full!r} is the same array as {first[0]!r} but has its "
                        "own gradient array, so the gradient of one of its uses would be "
                        "lost; tie parameters with register_parameter(name, array), which "
                        "shares the gradient array")

    def named_parameters(self) -> List[Tuple[str, np.ndarray]]:
        """``(dotted_name, array)`` pairs in the order of :meth:`parameters`."""
        return [(n, p) for n, p, _ in self._named_arrays()]

    def named_gradients(self) -> List[Tuple[str, np.ndarray]]:
        """``(dotted_name, gradient_array)`` pairs in the order of :meth:`gradients`."""
        return [(n, g) for n, _, g in self._named_arrays()]

    def named_buffers(self) -> List[Tuple[str, np.ndarray]]:
        """``(dotted_name, array)`` for every registered buffer."""
        out = []
        for pre, mod in self.named_modules():
            for name, b in mod._buffers.items():
                out.append(((f"{pre}.{name}" if pre else name), b))
        return out

    def parameters(self) -> List[np.ndarray]:
        """The parameter arrays themselves (not copies), in a deterministic order."""
        return [p for _, p, _ in self._named_arrays()]

    def gradients(self) -> List[np.ndarray]:
        """Gradient arrays matching :meth:`parameters` one to one (same shapes and dtypes)."""
        return [g for _, _, g in self._named_arrays()]

    def grad(self, name: str) -> np.ndarray:
        """Gradient array of the parameter with dotted name ``name`` (e.g. ``"0.weight"``)."""
        for n, _, g in self._named_arrays():
            if n == name:
                return g
        raise KeyError(f"no parameter named {name!r}")

    def num_parameters(self) -> int:
        """Total number of trainable scalars."""
        return int(sum(p.size for p in self.parameters()))

    def zero_grad(self) -> None:
        """Set every gradient array to zero, in place."""
        for g in self.gradients():
            g.fill(0)

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and all descendants; returns ``self``."""
        mode = check_bool("mode", mode)
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (``training = False``) recursively; returns ``self``."""
        return self.train(False)

    # ------------------------------------------------------------------ state
    def _state_entries(self) -> List[Tuple[str, np.ndarray, bool, bool]]:
        """``(dotted_name, array, transposed, optional)`` for every parameter, then every
        buffer, of this module and of each descendant, under every name that reaches it, as
        PyTorch's state dicts list them: a tied array (one parameter array registered on two
        modules, or one submodule registered under two names) appears once per name.
        ``transposed`` says that the state dict holds the 2-D array transposed (names a
        module lists in ``_state_dict_transposed``), ``optional`` that a loaded state dict
        may lack it (``_state_dict_optional``)."""
        out: List[Tuple[str, np.ndarray, bool, bool]] = []
        path: set = set()  # the modules above: a module that holds itself is not walked again

        def walk(mod: Module, pre: str) -> None:
            if id(mod) in path:
                return
            path.add(id(mod))
            cls = type(mod)
            flip, optional = cls._state_dict_transposed, cls._state_dict_optional
            for name, arr in mod._parameters.items():
                out.append(((f"{pre}.{name}" if pre else name), arr, name in flip, False))
            for name, arr in mod._buffers.items():
                out.append(((f"{pre}.{name}" if pre else name), arr, name in flip,
                            name in optional))
            for name, child in mod._modules.items():
                walk(child, f"{pre}.{name}" if pre else name)
            path.discard(id(mod))

        walk(self, "")
        return out

    def _state_arrays(self) -> List[Tuple[str, np.ndarray, bool]]:
        """``(dotted_name, array, transposed)`` as :meth:`_state_entries`, each array once
        (under its first name): what :meth:`snapshot` copies."""
        seen: set = set()
        unique = []
        for name, arr, transposed, _ in self._state_entries():
            if id(arr) not in seen:
                seen.add(id(arr))
                unique.append((name, arr, transposed))
        return unique

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Copies of all parameters and buffers, keyed by dotted name.

        Layouts are PyTorch's for :class:`~nesy.nn.Dense` and the recurrent layers: a ``Dense``
        weight, held as ``(in, out)`` for ``x @ W``, appears as ``(out_features, in_features)``
        like ``torch.nn.Linear``'s, so that their state dicts move between the two libraries
        unchanged. The graph layers of :mod:`nesy.gnn` use nesy's own names and
        ``(in_features, out_features)`` weights, not PyG's.

        A tied array (one parameter array registered on two modules, or one submodule
        registered under two names) is listed under each of its names, as in PyTorch, so
        that the state dict of a tied model loads into the same tied model in PyTorch and
        back (:meth:`parameters` lists it once).
        """
        return {n: (_transposed(a) if t else a.copy()) for n, a, t, _ in self._state_entries()}

    def snapshot(self) -> Dict[str, np.ndarray]:
        """Copies of all parameters and buffers as the module holds them (no layout change,
        unlike :meth:`state_dict`): what :meth:`restore` puts back, for rolling back a failed
        fit or keeping the best epoch, at the cost of a plain copy."""
        return {n: a.copy() for n, a, _ in self._state_arrays()}

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        """Copy a :meth:`snapshot` of this module (same structure) back into its arrays."""
        arrays = {n: a for n, a, _ in self._state_arrays()}
        if arrays.keys() != snapshot.keys() or any(
                snapshot[n].shape != a.shape for n, a in arrays.items()):
            raise ValueError("restore: snapshot: not a snapshot of this module")
        for n, a in arrays.items():
            np.copyto(a, snapshot[n])

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy arrays from ``state`` into the existing parameters and buffers.

        Everything is checked before anything is written, so a failing call changes nothing.

        Parameters
        ----------
        state : mapping of str to array
            As returned by :meth:`state_dict` (an ``np.load`` result of an ``.npz`` works too),
            or a PyTorch module's ``state_dict()`` (CPU tensors, or their ``.numpy()``) with the
            same names and layouts (e.g. ``torch.nn.Linear`` for :class:`~nesy.nn.Dense`).
            Floating-point values are cast to the parameter's dtype, as PyTorch does. A tied
            array has several names (see :meth:`state_dict`): any one of them is enough, also
            with ``strict`` (files saved before state dicts listed every name have the first
            one only), and names given together must hold the same values.
        strict : bool, default True
            If true, missing and unexpected keys are errors; otherwise they are skipped, as
            torch's (which loads nothing, silently, when no key matches; :meth:`load` of a
            file refuses that case, where it means the wrong file).

        Raises
        ------
        TypeError
            ``state`` is not a mapping (the message names ``state``).
        ValueError
            Naming the key, for a missing or unexpected key, a shape mismatch, a value that is
            not floating point, NaN or infinity in a parameter, or a finite value too large
            for the dtype it is cast to (a float64 1e300 into a float32 parameter or buffer).
            Buffers may hold NaN and infinity (a mask of -inf), and keep them. Naming both
            keys, for two names of one tied array that hold different values.
        """
        if not isinstance(state, Mapping) and not (
                callable(getattr(state, "keys", None)) and hasattr(state, "__getitem__")):
            raise TypeError(f"state: expected a mapping of names to arrays "
                            f"(a state_dict()), got {type(state).__name__}")
        strict = check_bool("strict", strict)
        entries = self._state_entries()
        groups: Dict[int, List[Tuple[str, np.ndarray, bool, bool]]] = {}
        for entry in entries:  # the names of each array, a tied one having several
            groups.setdefault(id(entry[1]), []).append(entry)
        params = {id(p) for _, p, _ in self._named_arrays()}
        keys = list(state.keys())
        present = set(keys)
        if strict:
            # A tied array is missing only when none of its names is given (a file saved
            # before state dicts listed every name of a tied array has its first one only).
            missing = [e[0] for group in groups.values()
                       if not any(e[0] in present or e[3] for e in group) for e in group]
            if missing:
                raise ValueError(
                    f"load_state_dict: missing key {missing[0]!r} (missing: {missing})"
                )
            names = {e[0] for e in entries}
            unexpected = [k for k in keys if k not in names]
            if unexpected:
                raise ValueError(
                    f"load_state_dict: unexpected key {unexpected[0]!r} (unexpected: {unexpected})"
                )
        pairs = []
        for group in groups.values():
            first: Optional[Tuple[str, np.ndarray]] = None  # (key, values in dst's layout)
            for k, dst, transposed, _ in group:
                if k not in present:
                    continue
                src = np.asarray(state[k])
                want = dst.T.shape if transposed else dst.shape
                if src.shape != want:
                    layout = " (torch.nn.Linear's (out_features, in_features) layout)" \
                        if transposed else ""
                    raise ValueError(
                        f"load_state_dict: key {k!r} has shape {src.shape}, expected {want}"
                        f"{layout}"
                    )
                if src.dtype != dst.dtype and not (src.dtype.kind == "f"
                                                   and dst.dtype.kind == "f"):
                    raise ValueError(
                        f"load_state_dict: key {k!r} has dtype {src.dtype}, expected {dst.dtype}"
                    )
                if dst.dtype.kind == "f":
                    src = _checked_values(k, src, dst.dtype, finite=id(dst) in params)
                if first is None:
                    pairs.append((dst, src, transposed))
                    if len(group) > 1:
                        first = (k, (src.T if transposed else src).astype(dst.dtype, copy=False))
                    continue
                # another name of a tied array: the same values, or an error naming both
                values = (src.T if transposed else src).astype(dst.dtype, copy=False)
                if not np.array_equal(values, first[1], equal_nan=dst.dtype.kind == "f"):
                    raise ValueError(
                        f"load_state_dict: keys {first[0]!r} and {k!r} name one tied array "
                        "(the same parameter of two modules) but hold different values")
        for dst, src, transposed in pairs:
            if transposed:
                _copy_transposed(src, dst)
            else:
                np.copyto(dst, src, casting="unsafe")

    def save(self, path: os.PathLike[str] | str | bytes | BinaryIO) -> None:
        """Write :meth:`state_dict` to an ``.npz`` file atomically (temporary file + rename).

        ``path`` is a ``str``, ``bytes`` or ``os.PathLike``, or a binary file object open for
        writing (as for ``np.savez`` and ``torch.save``; :meth:`load` reads one back); else
        ``TypeError`` naming it. A file object is written at its position, directly: that
        write is not atomic (a failure part-way leaves what was written), and the caller
        closes the file. A text-mode, read-only or closed file object is refused before
        anything is written.

        An existing target path that is not a regular file (``/dev/null``, a FIFO) is written
        through, not replaced. A path that is a folder or ends with a separator raises
        ``IsADirectoryError``, a missing folder ``FileNotFoundError``, before anything is
        written."""
        state = self.state_dict()
        if isinstance(path, (str, bytes, os.PathLike)) or not hasattr(path, "write"):
            atomic_savez(path, state)
            return
        if isinstance(path, io.TextIOBase):
            raise TypeError("path: expected a binary file object (opened with 'wb'), got a "
                            f"text file {getattr(path, 'name', path)!r}")
        if getattr(path, "closed", False):
            raise ValueError(f"path: the file object {getattr(path, 'name', path)!r} is closed")
        writable = getattr(path, "writable", None)
        if callable(writable) and not writable():
            raise ValueError(f"path: the file object {getattr(path, 'name', path)!r} is not "
                             "open for writing")
        np.savez(path, **state)

    def load(self, path: os.PathLike[str] | str | BinaryIO, strict: bool = True) -> None:
        """Load a file written by :meth:`save` (a path or a binary file object) into this
        module (see :meth:`load_state_dict`).

        Raises
        ------
        ValueError
            Naming ``path``: for a file that is not an ``.npz`` archive of arrays. A PyTorch
            file (``torch.save`` writes a zip archive of pickles, or a pickle) is named as
            such, with the conversion: ``module.load_state_dict({k: v.numpy() for k, v in
            torch.load(path).items()})``. With ``strict=False``, also when no key of the file
            is one of this module's (nothing would be loaded).
        TypeError
            Naming ``path``, when it is neither a path nor a file object (None, a number).
        """
        from nesy._io import read_npz

        if not isinstance(path, (str, bytes, os.PathLike)) and not callable(
                getattr(path, "read", None)):
            raise TypeError(f"path: expected a file path (str, bytes or os.PathLike) or a "
                            f"binary file object, got {type(path).__name__} {path!r}")
        strict = check_bool("strict", strict)
        shown = (os.fspath(path) if isinstance(path, (str, os.PathLike))
                 else getattr(path, "name", path))
        head = _file_head(path)
        if head.startswith(b"PK") and _zip_has_torch_pickle(path):
            raise ValueError(_torch_file_message(shown, "a PyTorch zip archive"))
        try:
            state = read_npz(path, "Module state", ())
        except ValueError as exc:
            if head.startswith(b"\x80"):  # a pickle (protocol 2 or later)
                raise ValueError(
                    f"{shown!r}: not a nesy Module state file (a pickle: pickle.dump and "
                    "torch.save's legacy format write those). A pickled nesy Module loads with "
                    "pickle.load; for a PyTorch state dict, convert its tensors to arrays: "
                    "module.load_state_dict({k: v.numpy() for k, v in torch.load(path)"
                    ".items()})") from exc
            raise
        odd = [k for k, v in state.items() if not isinstance(v, np.ndarray)]
        if odd:  # np.load hands the members that are not .npy arrays over as bytes
            if any(k == "data.pkl" or k.endswith("/data.pkl") for k in odd):
                raise ValueError(_torch_file_message(shown, "a PyTorch zip archive"))
            raise ValueError(f"{shown!r}: not a nesy Module state file (the archive member "
                             f"{odd[0]!r} is not a .npy array)")
        if not strict:
            own = [n for n, _, _, _ in self._state_entries()]
            if own and not any(k in state for k in own):
                raise ValueError(
                    f"{shown!r}: none of the file's keys is one of this "
                    f"{type(self).__name__}'s, so strict=False would load nothing (file: "
                    f"{_some(list(state))}; module: {_some(own)})")
        self.load_state_dict(state, strict=strict)

    # ------------------------------------------------------------------ display
    def extra_repr(self) -> str:
        """Arguments shown inside the parentheses of ``repr``."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self._modules.items():
            sub = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"


def _refuse_reuse(container: Module, module: Module, held: Iterable[Module],
                  expand: Optional[Callable[[Module], Iterable[Module]]] = None) -> None:
    """``ValueError`` when ``module`` is ``container`` or one of the modules ``held`` (with
    ``expand``, a function giving the modules a held module runs in its forward pass, which
    are compared too): a module keeps the context of its last ``forward`` for ``backward``, so
    one object called twice in a pass would give the first call's backward the second call's
    input, a wrong gradient without any error."""
    runs: Callable[[Module], Iterable[Module]] = (lambda m: (m,)) if expand is None else expand
    have = {id(container)}
    position = {}
    for i, child in enumerate(held):
        for m in runs(child):
            have.add(id(m))
            position.setdefault(id(m), i)
    for m in runs(module):
        if id(m) in have:
            where = ("is the container itself" if m is container else
                     f"is already held (at position {position[id(m)]})")
            what = type(m).__name__
            raise ValueError(
                f"{type(container).__name__}: this {what} {where}; a module keeps the context "
                "of its last forward pass for backward, so one object used twice in a pass "
                f"would get wrong gradients: create a separate {what} for each use (to share "
                "weights, register the same parameter array on both, see "
                "Module.register_parameter)")


class ModuleList(Module):
    """A list of submodules, registered under the names ``"0"``, ``"1"``, ...

    It only holds modules (so that their parameters are found); it has no ``forward``.
    """

    def __init__(self, modules: Optional[List[Module]] = None) -> None:
        super().__init__()
        for m in modules or []:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; returns ``self``.

        Raises
        ------
        ValueError
            When ``module`` is already in the list: a module keeps the context of one
            forward pass only (see the module notes).
        """
        if not isinstance(module, Module):
            raise TypeError(f"expected a Module, got {type(module).__name__}")
        _refuse_reuse(self, module, self._modules.values())
        setattr(self, str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __getitem__(self, index: int) -> Module:
        mods = list(self._modules.values())
        return mods[index]


class Identity(Module):
    """Returns its input unchanged; gradient passes through."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._save(True)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self._saved()
        return grad_out
