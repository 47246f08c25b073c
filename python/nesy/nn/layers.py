"""Basic layers: :class:`Dense`, :class:`Dropout`, :class:`Flatten` and :class:`Sequential`."""

from __future__ import annotations

from typing import Any, Iterator, Union

import numpy as np

from nesy._checks import check_bool, check_float_dtype, check_int, check_seed
from nesy.nn import init as _init
from nesy.nn.module import Module, _refuse_reuse, real_array
from nesy.optim._base import _number

__all__ = ["Dense", "Dropout", "Flatten", "Sequential"]


class Dense(Module):
    """Fully connected layer ``y = x @ W + b``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the last input axis and of the last output axis.
    bias : bool, default True
        Whether to learn the additive bias ``b``.
    dtype : {np.float32, np.float64}, default np.float32
        Dtype of the parameters; inputs are cast to it (real dtypes only: a complex or
        object input raises ``TypeError``).
    init : str or callable, default "glorot_uniform"
        Weight initialiser: a name known to :func:`nesy.nn.init.get_initializer`
        (``"glorot_uniform"``, ``"he_normal"``, ``"orthogonal"``, ...) or a callable
        ``init(shape, rng, dtype)``. The bias starts at zero.
    rng : None, int >= 0 or numpy.random.Generator
        Source of randomness of the initialiser (anything else raises naming ``rng``).
    input_grad : bool, default True
        Whether :meth:`backward` computes the gradient with respect to the input (a first
        layer, whose input is data, does not need it: False saves a third of its backward).
        :class:`Sequential` allows False only where no module before it has parameters.

    Attributes
    ----------
    weight : ndarray of shape (in_features, out_features)
        Held for ``x @ W``; :meth:`~nesy.nn.Module.state_dict` gives (and
        :meth:`~nesy.nn.Module.load_state_dict` takes) it transposed, ``(out_features,
        in_features)``, as ``torch.nn.Linear``'s ``weight``: a torch ``Linear``'s state dict loads
        into the matching ``Dense`` unchanged.
    bias : ndarray of shape (out_features,)
        Present only when ``bias=True``.

    Notes
    -----
    ``forward`` accepts ``x`` of shape ``(*, in_features)`` (typically
    ``(n_samples, in_features)``) and returns ``(*, out_features)``.
    """

    weight: np.ndarray
    bias: np.ndarray
    _state_dict_transposed = ("weight",)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = np.float32,
        init: Union[str, _init.Initializer] = "glorot_uniform",
        rng: _init.RngLike = None,
        input_grad: bool = True,
    ) -> None:
        super().__init__()
        in_features = check_int("in_features", in_features, 1)
        out_features = check_int("out_features", out_features, 1)
        self.in_features = in_features
        self.out_features = out_features
        self.dtype = check_float_dtype(dtype, TypeError)
        self.use_bias = check_bool("bias", bias)
        self.input_grad = check_bool("input_grad", input_grad)
        rng = check_seed("rng", rng)
        initializer = _init.get_initializer(init)
        w = np.asarray(initializer((in_features, out_features), rng, self.dtype))
        if w.shape != (in_features, out_features):
            raise ValueError(
                f"initializer returned shape {w.shape}, expected {(in_features, out_features)}"
            )
        self.register_parameter("weight", np.ascontiguousarray(w, dtype=self.dtype))
        if self.use_bias:
            self.register_parameter("bias", np.zeros(out_features, dtype=self.dtype))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer to ``x`` of shape ``(*, in_features)``."""
        x = real_array(x, "x").astype(self.dtype, copy=False)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Dense: x has shape {x.shape}, expected (*, {self.in_features})"
            )
        y = x @ self.weight
        if self.use_bias:
            y += self.bias
        self._save(x)
        return y

    def backward(self, grad_out: np.ndarray) -> Any:
        """Accumulate ``dW += x^T g`` and ``db += sum(g)``; return ``g @ W^T`` (None with
        ``input_grad=False``). ``grad_out`` must hold real numbers (``TypeError`` naming it
        otherwise, as :meth:`forward` for ``x``: a complex gradient would lose its imaginary
        part, an object ``None`` would become NaN)."""
        (x,) = self._saved()
        g = real_array(grad_out, "grad_out").astype(self.dtype, copy=False)
        expected = x.shape[:-1] + (self.out_features,)
        if g.shape != expected:
            raise ValueError(f"Dense.backward: grad_out has shape {g.shape}, expected {expected}")
        x2 = x.reshape(-1, self.in_features)
        g2 = g.reshape(-1, self.out_features)
        self._grads["weight"] += x2.T @ g2
        if self.use_bias:
            self._grads["bias"] += g2.sum(axis=0)
        return g @ self.weight.T if self.input_grad else None

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.use_bias}, dtype={self.dtype.name}"
        )


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the
    survivors by ``1 / (1 - p)``; in evaluation mode (or with ``p = 0``) the identity.

    Parameters
    ----------
    p : float in [0, 1]
        Drop probability.
    rng : None, int or numpy.random.Generator
        Seeds the layer's own :class:`numpy.random.Generator` used for the masks.
    """

    def __init__(self, p: float = 0.5, rng: _init.RngLike = None) -> None:
        super().__init__()
        p = _number("p", p, finite=True)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1], got {p}")
        self.p = p
        self.rng = np.random.default_rng(check_seed("rng", rng))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply dropout to ``x`` of any shape."""
        x = np.asarray(x)
        if not self.training or self.p == 0.0:
            self._save(None)
            return x
        dt = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
        if self.p == 1.0:
            mask = np.zeros(x.shape, dtype=dt)
        else:
            keep = self.rng.random(x.shape, dtype=np.float64) >= self.p
            mask = keep.astype(dt) * dt.type(1.0 / (1.0 - self.p))
        self._save(mask)
        return x * mask

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out * mask`` (the identity when the last forward was the identity)."""
        (mask,) = self._saved()
        grad_out = np.asarray(grad_out)
        if mask is None:
            return grad_out
        if grad_out.shape != mask.shape:
            raise ValueError(
                f"Dropout.backward: grad_out has shape {grad_out.shape}, expected {mask.shape}"
            )
        return grad_out * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Flatten(Module):
    """Flatten axes ``start_axis..`` into one: ``(n_samples, d1, d2, ...)`` ->
    ``(n_samples, d1 * d2 * ...)`` for the default ``start_axis=1``."""

    def __init__(self, start_axis: int = 1) -> None:
        super().__init__()
        self.start_axis = check_int("start_axis", start_axis)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < self.start_axis:
            raise ValueError(
                f"Flatten: x has {x.ndim} dimensions, need at least {self.start_axis}"
            )
        self._save(x.shape)
        return x.reshape(x.shape[: self.start_axis] + (-1,))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        (shape,) = self._saved()
        grad_out = np.asarray(grad_out)
        flat = shape[: self.start_axis] + (int(np.prod(shape[self.start_axis :])),)
        if grad_out.shape != flat:
            raise ValueError(
                f"Flatten.backward: grad_out has shape {grad_out.shape}, expected {flat}"
            )
        return grad_out.reshape(shape)

    def extra_repr(self) -> str:
        return f"start_axis={self.start_axis}"


def _skips_input_grad(module: Module) -> bool:
    """Whether ``module``'s backward returns no input gradient: a layer with
    ``input_grad=False``, or a :class:`Sequential` whose first module is one."""
    while isinstance(module, Sequential) and module._modules:
        module = next(iter(module._modules.values()))
    return not getattr(module, "input_grad", True)


def _check_input_grads(seq: Sequential) -> None:
    """``ValueError`` naming ``input_grad`` for a module (of ``seq`` or of a nested
    Sequential) that returns no input gradient while a module before it has parameters:
    those would get no gradient in backward, after it had accumulated its own."""
    mods = list(seq._modules.values())
    for i, m in enumerate(mods):
        if _skips_input_grad(m) and _any_parameters(mods[:i]):
            raise ValueError(_input_grad_message(m, i))
        if isinstance(m, Sequential):
            _check_input_grads(m)


def _any_parameters(modules: list[Module]) -> bool:
    return any(len(m.parameters()) for m in modules)


def _input_grad_message(module: Module, position: int) -> str:
    return (f"input_grad: the {type(module).__name__} at position {position} of the "
            "Sequential has input_grad=False, so its backward gives the modules before it no "
            "gradient, and some of them have parameters; only a module with no parameters "
            "before it (the first layer on data, after an input Dropout) may skip it")


def _runs(module: Module) -> Iterator[Module]:
    """``module`` and, for a :class:`Sequential`, every module its forward pass runs."""
    yield module
    if isinstance(module, Sequential):
        for child in module._modules.values():
            yield from _runs(child)


class Sequential(Module):
    """Chain modules: ``forward`` applies them in order, ``backward`` in reverse.

    Submodules are registered under the names ``"0"``, ``"1"``, ..., so parameters are named
    ``"0.weight"``, ``"0.bias"``, ``"2.weight"``, ... and listed in that order.

    Parameters
    ----------
    *modules : Module
        Distinct objects: one module used twice (``Sequential(d, Tanh(), d)``, or one
        ``ReLU()`` object at two places, also inside a nested ``Sequential``) raises
        ``ValueError``, since a module keeps the context of one forward pass only and the
        gradients would be wrong. Create one module per place; to share weights, register the
        same parameter array on both (see :meth:`~nesy.nn.Module.register_parameter`). This is
        checked when a module is added (here or by :meth:`append`) against everything this
        ``Sequential`` runs at that moment: a module appended later to a nested ``Sequential``
        (``inner.append(d)`` after ``Sequential(inner, d)``) is not checked again.
        A module with ``input_grad=False`` (a layer whose backward returns no input gradient,
        as :class:`Dense`'s option) may follow only modules without parameters (the first layer
        on data, or one after an input :class:`Dropout`); backward stops at it. Otherwise
        ``ValueError`` naming ``input_grad``, when it is added, and in :meth:`backward`, before
        any module accumulates a gradient, for one switched off later.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end; returns ``self``.

        Raises
        ------
        ValueError
            When ``module`` (or, for a ``Sequential``, one of the modules it runs) is already
            run by this ``Sequential`` (see the class notes), or when it has
            ``input_grad=False`` after a module with parameters.
        """
        if not isinstance(module, Module):
            raise TypeError(f"Sequential takes Modules, got {type(module).__name__}")
        _refuse_reuse(self, module, self._modules.values(), _runs)
        if _skips_input_grad(module) and _any_parameters(list(self._modules.values())):
            raise ValueError(_input_grad_message(module, len(self._modules)))
        setattr(self, str(len(self._modules)), module)
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        # A layer failing halfway leaves the others as they were (nested containers restore
        # their own layers); only the direct children's contexts are kept: this runs on every
        # batch, and walking every descendant cost ~5 us a call.
        mods = tuple(self._modules.values())
        kept = [m.__dict__.get("_ctx") for m in mods]
        try:
            for m in mods:
                x = m.forward(x)
        except BaseException:
            for m, ctx in zip(mods, kept):
                object.__setattr__(m, "_ctx", ctx)
            raise
        self._save(True)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self._saved()
        _check_input_grads(self)  # before any module accumulates (input_grad set after append)
        for m in reversed(list(self._modules.values())):
            grad_out = m.backward(grad_out)
            if grad_out is None:  # input_grad=False: nothing before it has parameters
                break
        return grad_out

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __getitem__(self, index: Union[int, slice]) -> Module:
        mods = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*mods[index])
        return mods[index]
