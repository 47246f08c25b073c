"""Plain NumPy reference implementations of the ``nesy.optim`` kernels.

Every Rust optimizer kernel and gradient utility is tested against the classes and functions
of this module, which are in turn tested against ``torch.optim`` (``tests/test_reference.py``).
They follow the single-tensor (for-loop), non-capturable, non-differentiable code paths of
``torch.optim`` in torch 2.x, operation by operation:

* all array arithmetic happens in the parameter's dtype (``float32`` or ``float64``), one NumPy
  operation per torch operation, in torch's order;
* scalars derived from hyper-parameters (bias corrections, step sizes, ``1 - beta``) are
  computed in Python floats (double precision) and converted to the array dtype when they meet
  an array, as torch converts a Python scalar operand to the tensor's dtype;
* step counts are Python ints, kept per parameter; a parameter whose gradient is ``None`` is
  skipped and its step count does not advance.

The composite torch operations are spelled out as

===============================  ==================================================
torch                            NumPy here
===============================  ==================================================
``a.add(b, alpha=s)``            ``a + s * b``
``t.addcmul(a, b, value=s)``     ``t + (s * a) * b``
``t.addcdiv(a, b, value=s)``     ``t + (s * a) / b``
``a.lerp(b, w)``                 ``a + w * (b - a)`` if ``|w| < 0.5``
                                 else ``b - (b - a) * (1 - w)``
``torch.maximum(a, b)``          ``np.maximum(a, b)`` (NaN propagates)
===============================  ==================================================

and ``sqrt`` is IEEE ``np.sqrt`` (correctly rounded). With torch's scalar CPU kernels
(``ATEN_CPU_CAPABILITY=default`` on x86-64), torch's ``sqrt`` and a float64 default dtype, torch
2.x reproduces these references bit for bit (``tests/test_reference.py`` checks this). In
ordinary use torch differs by a rounding error here and there, for three reasons:

* its vectorised kernels evaluate ``add(alpha=)``, ``addcmul`` and ``lerp`` with a fused
  multiply-add (one rounding instead of two);
* its CPU ``sqrt`` is not always correctly rounded (in the MKL build measured, 1 ulp off for
  about 0.7% of inputs);
* NAdam keeps ``mu_product`` in torch's default dtype, i.e. rounded to float32 each step
  unless the default dtype is float64; here it is a Python float.

The relative differences that remain over 100 steps are below 1e-6 (float32) and 1e-14
(float64).

Each optimizer class has the interface::

    opt = RefAdam(params, lr=1e-3, ...)   # copies the arrays
    opt.step(grads)                       # updates opt.params in place; None = skip that one
    opt.params                            # list of arrays (copies, never the caller's)
    opt.state                             # list of dicts, torch's state names
    opt.lr                                # hyper-parameters are plain, mutable attributes
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

__all__ = [
    "RefSGD",
    "RefAdagrad",
    "RefRMSprop",
    "RefAdadelta",
    "RefAdam",
    "RefAdamW",
    "RefAdamax",
    "RefNAdam",
    "RefLion",
    "RefSGDHD",
    "RefAdamHD",
    "clip_grad_norm",
    "clip_grad_value",
    "penalty",
    "lerp",
    "addcmul",
    "addcdiv",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------------- torch ops


def _s(x: float, like: np.ndarray) -> np.floating:
    """Python scalar ``x`` converted to the dtype of ``like`` (round to nearest)."""
    return like.dtype.type(x)


def lerp(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """``torch.lerp(a, b, weight)`` with a scalar weight, in the dtype of ``a``.

    Parameters
    ----------
    a, b : ndarray
        Start and end, same shape and dtype.
    weight : float
        Interpolation weight; converted to the dtype of ``a`` first.

    Returns
    -------
    ndarray
        ``a + w * (b - a)`` when ``|w| < 0.5``, otherwise ``b - (b - a) * (1 - w)``
        (torch's two-branch formula, exact at ``w = 0`` and ``w = 1``).
    """
    w = _s(weight, a)
    if abs(w) < 0.5:
        return a + w * (b - a)
    return b - (b - a) * (_s(1.0, a) - w)


def addcmul(t: np.ndarray, a: np.ndarray, b: np.ndarray, value: float = 1.0) -> np.ndarray:
    """``torch.addcmul(t, a, b, value=value)``: ``t + (value * a) * b`` in the dtype of ``t``."""
    return t + (_s(value, t) * a) * b


def addcdiv(t: np.ndarray, a: np.ndarray, b: np.ndarray, value: float = 1.0) -> np.ndarray:
    """``torch.addcdiv(t, a, b, value=value)``: ``t + (value * a) / b`` in the dtype of ``t``."""
    return t + (_s(value, t) * a) / b


def _add(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """``torch.add(a, b, alpha=alpha)``: ``a + alpha * b`` in the dtype of ``a``."""
    return a + _s(alpha, a) * b


def _arr(x) -> np.ndarray:
    """``x`` as an array (NumPy returns scalars from operations on 0-d arrays)."""
    return x if isinstance(x, np.ndarray) else np.asarray(x)


def _dot64(a: np.ndarray, b: np.ndarray) -> float:
    """``sum(a * b)`` with both arrays cast to ``float64`` first."""
    return float(np.dot(a.astype(np.float64).ravel(), b.astype(np.float64).ravel()))


# ---------------------------------------------------------------------------------- base class


class _RefOptimizer:
    """Shared bookkeeping: parameter copies, per-parameter state, gradient validation.

    Parameters
    ----------
    params : list of ndarray
        Float32 or float64 arrays of any shape; they are copied.
    """

    def __init__(self, params: Sequence[np.ndarray]) -> None:
        self.params: list[np.ndarray] = []
        for i, p in enumerate(params):
            arr = np.array(p, copy=True, order="C")
            if arr.dtype not in _FLOATS:
                raise TypeError(f"params[{i}] must be float32 or float64, got {arr.dtype}")
            self.params.append(arr)
        self.state: list[dict] = [{} for _ in self.params]

    def _checked(self, grads: Sequence[Optional[np.ndarray]]) -> list[Optional[np.ndarray]]:
        """Validate ``grads`` against the parameters (count, shape, dtype)."""
        if len(grads) != len(self.params):
            raise ValueError(f"expected {len(self.params)} gradients, got {len(grads)}")
        out: list[Optional[np.ndarray]] = []
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if g is None:
                out.append(None)
                continue
            g = np.asarray(g)
            if g.shape != p.shape:
                raise ValueError(f"grads[{i}] has shape {g.shape}, params[{i}] has {p.shape}")
            if g.dtype != p.dtype:
                raise TypeError(f"grads[{i}] has dtype {g.dtype}, params[{i}] has {p.dtype}")
            out.append(g)
        return out

    def step(self, grads: Sequence[Optional[np.ndarray]]) -> None:
        """One optimisation step.

        Parameters
        ----------
        grads : list of ndarray or None
            One gradient per parameter, same shape and dtype; ``None`` skips that parameter
            (its state, including the step count, is left unchanged). Never modified.
        """
        for i, g in enumerate(self._checked(grads)):
            if g is not None:
                self._update(i, self.params[i], g, self.state[i])

    def _update(self, i: int, p: np.ndarray, grad: np.ndarray, st: dict) -> None:
        raise NotImplementedError


# ----------------------------------------------------------------------------------------- SGD


class RefSGD(_RefOptimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    Update rule, per parameter::

        g = -grad if maximize else grad
        g = g + weight_decay * p                        (if weight_decay != 0)
        if momentum != 0:
            buf = g (a copy)                            (first step)
            buf = buf * momentum + (1 - dampening) * g  (later steps)
            d = g + momentum * buf if nesterov else buf
        else:
            d = g
        p = p + (-lr) * d

    State: ``momentum_buffer`` (when ``momentum != 0``).
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params)
        self.lr = lr
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self.maximize = maximize

    def _grad(self, p: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The gradient after ``maximize`` and L2 weight decay."""
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            g = _add(g, p, self.weight_decay)
        return g

    def _direction(self, g: np.ndarray, st: dict) -> np.ndarray:
        """The direction ``d`` of ``p = p - lr * d``; updates the momentum buffer."""
        if self.momentum == 0:
            return g
        buf = st.get("momentum_buffer")
        if buf is None:
            buf = np.array(g, copy=True)  # an array even for 0-d parameters
            st["momentum_buffer"] = buf
        else:
            buf[...] = _add(buf * _s(self.momentum, buf), g, 1 - self.dampening)
        if self.nesterov:
            return _add(g, buf, self.momentum)
        return buf

    def _update(self, i: int, p: np.ndarray, grad: np.ndarray, st: dict) -> None:
        d = self._direction(self._grad(p, grad), st)
        p[...] = _add(p, d, -self.lr)


# ------------------------------------------------------------------------------------- Adagrad


class RefAdagrad(_RefOptimizer):
    """Adagrad, as ``torch.optim.Adagrad`` (dense gradients).

    Update rule at step ``t`` (1-based)::

        g = -grad if maximize else grad
        g = g + weight_decay * p                (if weight_decay != 0)
        clr = lr / (1 + (t - 1) * lr_decay)     (Python float)
        sum = sum + (1 * g) * g
        std = sqrt(sum) + eps
        p = p + (-clr * g) / std

    State: ``step``, ``sum`` (initialised to ``initial_accumulator_value`` at construction, as
    torch does).
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        maximize: bool = False,
    ) -> None:
        super().__init__(params)
        self.lr = lr
        self.lr_decay = lr_decay
        self.weight_decay = weight_decay
        self.initial_accumulator_value = initial_accumulator_value
        self.eps = eps
        self.maximize = maximize
        for p, st in zip(self.params, self.state):
            st["step"] = 0
            st["sum"] = np.full_like(p, initial_accumulator_value)

    def _update(self, i: int, p: np.ndarray, grad: np.ndarray, st: dict) -> None:
        st["step"] += 1
        step = st["step"]
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            g = _add(g, p, self.weight_decay)
        clr = self.lr / (1 + (step - 1) * self.lr_decay)
        acc = st["sum"]
        acc[...] = addcmul(acc, g, g, 1)
        std = np.sqrt(acc) + _s(self.eps, p)
        p[...] = addcdiv(p, g, std, -clr)


# ------------------------------------------------------------------------------------- RMSprop


class RefRMSprop(_RefOptimizer):
    """RMSprop, as ``torch.optim.RMSprop``.

    Update rule::

        g = -grad if maximize else grad
        g = g + weight_decay * p                                (if weight_decay != 0)
        square_avg = square_avg * alpha + ((1 - alpha) * g) * g
        if centered:
            grad_avg = lerp(grad_avg, g, 1 - alpha)
            avg = sqrt(square_avg + (-1 * grad_avg) * grad_avg)
        else:
            avg = sqrt(square_avg)
        avg = avg + eps
        if momentum > 0:
            buf = buf * momentum + (1 * g) / avg
            p = p + (-lr) * buf
        else:
            p = p + (-lr * g) / avg

    State: ``step``, ``square_avg``, ``momentum_buffer`` (if ``momentum > 0``), ``grad_avg``
    (if ``centered``), all arrays starting at zero.
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params)
        self.lr = lr
        self.alpha = alpha
        self.eps = eps
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.centered = centered
        self.maximize = maximize

    def _update(self, i: int, p: np.ndarray, grad: np.ndarray, st: dict) -> None:
        if not st:
            st["step"] = 0
            st["square_avg"] = np.zeros_like(p)
            if self.momentum > 0:
                st["momentum_buffer"] = np.zeros_like(p)
            if self.centered:
                st["grad_avg"] = np.zeros_like(p)
        st["step"] += 1
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            g = _add(g, p, self.weight_decay)
        sq = st["square_avg"]
        sq[...] = addcmul(sq * _s(self.alpha, sq), g, g, 1 - self.alpha)
        if self.centered:
            ga = st["grad_avg"]
            ga[...] = lerp(ga, g, 1 - self.alpha)
            avg = np.sqrt(addcmul(sq, ga, ga, -1))
        else:
            avg = np.sqrt(sq)
        avg = avg + _s(self.eps, avg)
        if self.momentum > 0:
            buf = st["momentum_buffer"]
            buf[...] = addcdiv(buf * _s(self.momentum, buf), g, avg, 1)
            p[...] = _add(p, buf, -self.lr)
        else:
            p[...] = addcdiv(p, g, avg, -self.lr)


# ------------------------------------------------------------------------------------ Adadelta


class RefAdadelta(_RefOptimizer):
    """Adadelta, as ``torch.optim.Adadelta``.

    Update rule::

        g = -grad if maximize else grad
        g = g + weight_decay * p                            (if weight_decay != 0)
        square_avg = square_avg * rho + ((1 - rho) * g) * g
        std = sqrt(square_avg + eps)
        delta = sqrt(acc_delta + eps)
        delta = (delta / std) * g
        acc_delta = acc_delta * rho + ((1 - rho) * delta) * delta
        p = p + (-lr) * delta

    State: ``step``, ``square_avg``, ``acc_delta`` (zeros at the first step).
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        maximize: bool = False,
    ) -> None:
        super().__init__(params)
        self.lr = lr
        self.rho = rho
        self.eps = eps
        self.weight_decay = weight_decay
        self.maximize = maximize

    def _update(self, i: int, p: np.ndarray, grad: np.ndarray, st: dict) -> None:
        if not st:
            st["step"] = 0
            st["square_avg"] = np.zeros_like(p)
            st["acc_delta"] = np.zeros_like(p)
        st["step"] += 1
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            g = _add(g, p, self.weight_decay)
        sq, acc = st["square_avg"], st["acc_delta"]
        eps = _s(self.eps, p)
        rho = _s(self.rho, p)
        sq[...] = addcmul(sq * rho, g, g, 1 - self.rho)
        std = np.sqrt(sq + eps)
        delta = np.sqrt(acc + eps)
        delta = (delta / std) * g
        acc[...] = addcmul(acc * rho, delta, delta, 1 - self.rho)
        p[...] = _add(p, delta, -self.lr)


# ---------------------------------------------------------------------------------- Adam/AdamW


class RefAdam(_RefOptimizer):
    """Adam (and AMSGrad), as ``torch.optim.Adam``.

    Update rule at step ``t`` (1-based)::

        g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay)                  (decoupled decay, AdamW only)
        g = g + weight_decay * p                         (L2 decay, Adam, if != 0)
        exp_avg = lerp(exp_avg, g, 1 - beta1)
        exp_avg_sq = exp_avg_sq * beta2 + ((1 - beta2) * g) * g
        bc1 = 1 - beta1**t;  bc2_sqrt = (1 - beta2**t) ** 0.5;  step_size = lr / bc1
        v = exp_avg_sq, or with amsgrad:
            max_exp_avg_sq = maximum(max_exp_avg_sq, exp_avg_sq);  v = max_exp_avg_sq
        denom = sqrt(v) / bc2_sqrt + eps
        p = p + (-step_size * exp_avg) / denom

    State: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (if ``amsgrad``).
    """

    _decoupled = False

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params)
        self.lr = lr
        self.betas = (betas[0], betas[1])
        self.eps = eps
        self.weight_decay = weight_decay
        self.amsgrad = amsgrad
        self.maximize = maximize

    def _init_state(self, p: np.ndarray, st: dict) -> None:
        if not st:
            st["step"] = 0
            st["exp_avg"] = np.zeros_like(p)
            st["exp_avg_sq"] = np.zeros_like(p)
            if self.amsgrad:
                st["max_exp_avg_sq"] = np.zeros_like(p)

    def _update(self, i: int, p: np.ndarray, grad: np.ndarray, st: dict) -> None:
        self._init_state(p, st)
        beta1, beta2 = self.betas
        st["step"] += 1
        step = st["step"]
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            if self._decoupled:
                p[...] = p * _s(1 - self.lr * self.weight_decay, p)
            else:
                g = _add(g, p, self.weight_decay)
        m, v = st["exp_avg"], st["exp_avg_sq"]
        m[...] = lerp(m, g, 1 - beta1)
        v[...] = addcmul(v * _s(beta2, v), g, g, 1 - beta2)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = self.lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        if self.amsgrad:
            vmax = st["max_exp_avg_sq"]
            vmax[...] = np.maximum(vmax, v)
            v = vmax
        denom = np.sqrt(v) / _s(bias_correction2_sqrt, p) + _s(self.eps, p)
        p[...] = addcdiv(p, m, denom, -step_size)


class RefAdamW(RefAdam):
    """AdamW, as ``torch.optim.AdamW``: Adam with decoupled weight decay.

    Update rule: that of :class:`RefAdam`, except that weight decay is applied to the parameter
    before the moment updates, ``p = p * (1 - lr * weight_decay)`` (factor computed in Python
    float), instead of being added to the gradient.

    State: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (if ``amsgrad``).
    """

    _decoupled = True

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)


# -------------------------------------------------------------------------------------- Adamax


class RefAdamax(_RefOptimizer):
    """Adamax, as ``torch.optim.Adamax``.

    Update rule at step ``t`` (1-based)::

        g = -grad if maximize else grad
        g = g + weight_decay * p                       (if weight_decay != 0)
        exp_avg = lerp(exp_avg, g, 1 - beta1)
        exp_inf = maximum(exp_inf * beta2, |g| + eps)  (NaN propagates)
        clr = lr / (1 - beta1**t)
        p = p + (-clr * exp_avg) / exp_inf

    State: ``step``, ``exp_avg``, ``exp_inf``.
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        maximize: bool = False,
    ) -> None:
        super().__init__(params)
        self.lr = lr
        self.betas = (betas[0], betas[1])
        self.eps = eps
        self.weight_decay = weight_decay
        self.maximize = maximize

    def _update(self, i: int, p: np.ndarray, grad: np.ndarray, st: dict) -> None:
        if not st:
            st["step"] = 0
            st["exp_avg"] = np.zeros_like(p)
            st["exp_inf"] = np.zeros_like(p)
        beta1, beta2 = self.betas
        st["step"] += 1
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            g = _add(g, p, self.weight_decay)
        m, u = st["exp_avg"], st["exp_inf"]
        m[...] = lerp(m, g, 1 - beta1)
        u[...] = np.maximum(u * _s(beta2, u), np.abs(g) + _s(self.eps, u))
        clr = self.lr / (1 - beta1 ** st["step"])
        p[...] = addcdiv(p, m, u, -clr)


# --------------------------------------------------------------------------------------- NAdam


class RefNAdam(_RefOptimizer):
    """NAdam, as ``torch.optim.NAdam``.

    Update rule at step ``t`` (1-based); ``mu``, ``mu_next``, ``mu_product`` and the step
    sizes are Python floats::

        g = -grad if maximize else grad
        bc2 = 1 - beta2**t
        p = p * (1 - lr * weight_decay)              (if decoupled_weight_decay, wd != 0)
        g = g + weight_decay * p                     (otherwise, if wd != 0)
        mu = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay))
        mu_next = beta1 * (1 - 0.5 * 0.96**((t + 1) * momentum_decay))
        mu_product = mu_product * mu
        exp_avg = lerp(exp_avg, g, 1 - beta1)
        exp_avg_sq = exp_avg_sq * beta2 + ((1 - beta2) * g) * g
        denom = sqrt(exp_avg_sq / bc2) + eps
        p = p + ((-lr * (1 - mu) / (1 - mu_product)) * g) / denom
        p = p + ((-lr * mu_next / (1 - mu_product * mu_next)) * exp_avg) / denom

    State: ``step``, ``mu_product`` (Python float, starts at 1), ``exp_avg``, ``exp_avg_sq``.
    Torch keeps ``mu_product`` as a 0-d tensor of the *default* dtype, so it matches this
    double-precision value exactly only under ``torch.set_default_dtype(torch.float64)``.
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params)
        self.lr = lr
        self.betas = (betas[0], betas[1])
        self.eps = eps
        self.weight_decay = weight_decay
        self.momentum_decay = momentum_decay
        self.decoupled_weight_decay = decoupled_weight_decay
        self.maximize = maximize

    def _update(self, i: int, p: np.ndarray, grad: np.ndarray, st: dict) -> None:
        if not st:
            st["step"] = 0
            st["mu_product"] = 1.0
            st["exp_avg"] = np.zeros_like(p)
            st["exp_avg_sq"] = np.zeros_like(p)
        beta1, beta2 = self.betas
        lr = self.lr
        st["step"] += 1
        step = st["step"]
        g = -grad if self.maximize else grad
        bias_correction2 = 1 - beta2**step
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                p[...] = p * _s(1 - lr * self.weight_decay, p)
            else:
                g = _add(g, p, self.weight_decay)
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * self.momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * self.momentum_decay)))
        st["mu_product"] *= mu
        mu_product = st["mu_product"]
        m, v = st["exp_avg"], st["exp_avg_sq"]
        m[...] = lerp(m, g, 1 - beta1)
        v[...] = addcmul(v * _s(beta2, v), g, g, 1 - beta2)
        denom = np.sqrt(v / _s(bias_correction2, v)) + _s(self.eps, v)
        mu_product_next = mu_product * mu_next
        p[...] = addcdiv(p, g, denom, -lr * (1.0 - mu) / (1.0 - mu_product))
        p[...] = addcdiv(p, m, denom, (-lr * mu_next) / (1.0 - mu_product_next))


# ---------------------------------------------------------------------------------------- Lion


class RefLion(_RefOptimizer):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").

    Update rule::

        g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay)            (if weight_decay != 0)
        c = beta1 * exp_avg + (1 - beta1) * g
        p = p + (-lr) * sign(c)                    (sign(0) = 0, sign(NaN) = NaN)
        exp_avg = beta2 * exp_avg + (1 - beta2) * g

    State: ``step``, ``exp_avg``.
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        maximize: bool = False,
    ) -> None:
        super().__init__(params)
        self.lr = lr
        self.betas = (betas[0], betas[1])
        self.weight_decay = weight_decay
        self.maximize = maximize

    def _update(self, i: int, p: np.ndarray, grad: np.ndarray, st: dict) -> None:
        if not st:
            st["step"] = 0
            st["exp_avg"] = np.zeros_like(p)
        beta1, beta2 = self.betas
        st["step"] += 1
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            p[...] = p * _s(1 - self.lr * self.weight_decay, p)
        m = st["exp_avg"]
        c = _s(beta1, m) * m + _s(1 - beta1, m) * g
        p[...] = p + _s(-self.lr, p) * np.sign(c)
        m[...] = _s(beta2, m) * m + _s(1 - beta2, m) * g


# ------------------------------------------------------------------------ hypergradient descent


def _hypergradient_lr(lr: float, hypergrad_lr: float, h: float) -> float:
    """``max(0, lr + hypergrad_lr * h)``, or ``lr`` unchanged if that is not finite."""
    new = lr + hypergrad_lr * h
    if math.isfinite(new):
        return max(0.0, new)
    return lr


class RefSGDHD(RefSGD):
    """SGD with hypergradient descent on the learning rate (Baydin et al. 2018).

    One learning rate ``lr`` for all parameters. Each step, before any update::

        g_i = (-grad_i if maximize else grad_i) + weight_decay * p_i   (decay if != 0)
        h = sum over parameters with a gradient of dot(g_i, u_i)   (float64; u_i = 0 at the
                                                                     parameter's first step)
        new = lr + hypergrad_lr * h
        lr = max(0, new)                                            (only if new is finite)

    then every parameter is updated exactly as :class:`RefSGD` with the new ``lr``, and
    ``u_i`` becomes the direction ``d`` of that update (``p = p + (-lr) * d``). Since the
    previous update moved ``p`` by ``-lr * u``, ``-dot(g, u)`` is the derivative of the loss
    with respect to the previous learning rate.

    State: ``step``, ``prev_update`` (``u_i``), ``momentum_buffer`` (if ``momentum != 0``).
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        maximize: bool = False,
        hypergrad_lr: float = 1e-3,
    ) -> None:
        super().__init__(params, lr, momentum, dampening, weight_decay, nesterov, maximize)
        self.hypergrad_lr = hypergrad_lr

    def step(self, grads: Sequence[Optional[np.ndarray]]) -> None:
        """One step: adapt ``self.lr`` from all gradients, then update every parameter.

        Parameters
        ----------
        grads : list of ndarray or None
            As :meth:`RefSGD.step`.
        """
        checked = self._checked(grads)
        h = 0.0
        for p, g, st in zip(self.params, checked, self.state):
            if g is not None and st.get("step", 0) > 0:
                h += _dot64(self._grad(p, g), st["prev_update"])
        self.lr = _hypergradient_lr(self.lr, self.hypergrad_lr, h)
        for p, g, st in zip(self.params, checked, self.state):
            if g is None:
                continue
            st["step"] = st.get("step", 0) + 1
            d = self._direction(self._grad(p, g), st)
            p[...] = _add(p, d, -self.lr)
            st["prev_update"] = np.array(d, copy=True)


class RefAdamHD(RefAdam):
    """Adam with hypergradient descent on the learning rate (Baydin et al. 2018).

    One learning rate ``lr`` for all parameters. Each step, before any update, for every
    parameter with a gradient whose coming step ``t`` is > 1::

        g_i = (-grad_i if maximize else grad_i) + weight_decay * p_i   (L2 decay if != 0)
        bc1 = 1 - beta1**(t - 1);  bc2 = 1 - beta2**(t - 1)             (Python floats)
        v = exp_avg_sq, or max_exp_avg_sq with amsgrad                  (before this step)
        u_i = (exp_avg * (1 / bc1)) / (sqrt(v) / sqrt(bc2) + eps)       (parameter dtype)

    (``u_i`` is the previous step's update per unit of learning rate), then::

        h = sum_i dot(g_i, u_i)                 (float64)
        lr = max(0, lr + hypergrad_lr * h)      (only if finite)

    and every parameter is updated exactly as :class:`RefAdam` with the new ``lr``.

    State: as :class:`RefAdam`.
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        maximize: bool = False,
        hypergrad_lr: float = 1e-7,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
        self.hypergrad_lr = hypergrad_lr

    def _prev_update(self, st: dict) -> np.ndarray:
        """The previous step's update direction per unit of lr, from the current state."""
        beta1, beta2 = self.betas
        prev = st["step"]
        bc1 = 1 - beta1**prev
        bc2 = 1 - beta2**prev
        m = st["exp_avg"]
        v = st["max_exp_avg_sq"] if self.amsgrad else st["exp_avg_sq"]
        return (m * _s(1 / bc1, m)) / (np.sqrt(v) / _s(bc2**0.5, m) + _s(self.eps, m))

    def step(self, grads: Sequence[Optional[np.ndarray]]) -> None:
        """One step: adapt ``self.lr`` from all gradients, then update every parameter.

        Parameters
        ----------
        grads : list of ndarray or None
            As :meth:`RefAdam.step`.
        """
        checked = self._checked(grads)
        h = 0.0
        for p, g, st in zip(self.params, checked, self.state):
            if g is None or st.get("step", 0) == 0:
                continue
            gi = -g if self.maximize else g
            if self.weight_decay != 0:
                gi = _add(gi, p, self.weight_decay)
            h += _dot64(gi, self._prev_update(st))
        self.lr = _hypergradient_lr(self.lr, self.hypergrad_lr, h)
        for i, g in enumerate(checked):
            if g is not None:
                self._update(i, self.params[i], g, self.state[i])


# --------------------------------------------------------------------------- gradient utilities


def _norm64(arrays: Sequence[np.ndarray], norm_type: float) -> float:
    """The ``norm_type`` norm (1, 2 or inf) of all elements of ``arrays`` together, in float64."""
    xs = [np.abs(np.asarray(a, dtype=np.float64)).ravel() for a in arrays]
    if norm_type == math.inf:
        total = 0.0  # the norm of no elements
        for x in xs:
            if x.size:
                m = float(np.max(x))  # NaN if x holds a NaN
                if math.isnan(m):
                    return m
                total = max(total, m)
        return total
    if norm_type == 2.0:
        return math.sqrt(sum(float(np.dot(x, x)) for x in xs))
    if norm_type == 1.0:
        return sum(float(np.sum(x)) for x in xs)
    raise ValueError(f"norm_type must be 1, 2 or inf, got {norm_type}")


def clip_grad_norm(
    grads: Sequence[np.ndarray], max_norm: float, norm_type: float = 2.0
) -> tuple[list[np.ndarray], float]:
    """Rescale gradients so that their joint norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``, but with the norm accumulated in float64.

    Parameters
    ----------
    grads : list of ndarray
        Gradients (float32 or float64, any shapes); not modified.
    max_norm : float
        Largest allowed norm.
    norm_type : float
        1, 2 or ``math.inf``.

    Returns
    -------
    clipped : list of ndarray
        New arrays: ``g * coef`` (in the dtype of ``g``) with ``coef = max_norm / (norm +
        1e-6)`` when ``coef < 1`` or ``coef`` is NaN (torch's ``clamp(coef, max=1)`` keeps
        NaN, so a NaN norm turns every gradient into NaN); copies of ``grads`` otherwise.
    total_norm : float
        The norm before clipping.
    """
    total = _norm64(grads, norm_type)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0 or math.isnan(coef):
        return [_arr(np.asarray(g) * _s(coef, np.asarray(g))) for g in grads], total
    return [np.array(g, copy=True) for g in grads], total


def clip_grad_value(grads: Sequence[np.ndarray], clip: float) -> list[np.ndarray]:
    """Clamp every element to ``[-clip, clip]`` (NaN stays NaN).

    Parameters
    ----------
    grads : list of ndarray
        Gradients; not modified.
    clip : float
        Bound, >= 0.

    Returns
    -------
    list of ndarray
        New arrays of the same dtypes.
    """
    out = []
    for g in grads:
        g = np.asarray(g)
        out.append(_arr(np.clip(g, _s(-clip, g), _s(clip, g))))
    return out


def penalty(
    grads: Sequence[np.ndarray], params: Sequence[np.ndarray], l1: float, l2: float
) -> tuple[list[np.ndarray], float]:
    """Add the gradient of an L1/L2 penalty to ``grads``.

    Parameters
    ----------
    grads, params : list of ndarray
        Pairwise same shapes and dtypes; not modified.
    l1, l2 : float
        Penalty weights.

    Returns
    -------
    new_grads : list of ndarray
        ``g + l1 * sign(p)`` (if ``l1 != 0``), then ``+ l2 * p`` (if ``l2 != 0``), in the
        dtype of ``g``; ``sign(0) = 0``.
    value : float
        ``l1 * sum|p| + 0.5 * l2 * sum p**2`` over all parameters, in float64 (each term only
        when its weight is non-zero).
    """
    value = 0.0
    if l1 != 0:
        value += l1 * _norm64(params, 1.0)
    if l2 != 0:
        value += 0.5 * l2 * sum(_dot64(p, p) for p in params)
    out = []
    for g, p in zip(grads, params):
        g = np.array(g, copy=True)
        p = np.asarray(p)
        if l1 != 0:
            g = g + _s(l1, g) * np.sign(p)
        if l2 != 0:
            g = g + _s(l2, g) * p
        out.append(_arr(g))
    return out, value
