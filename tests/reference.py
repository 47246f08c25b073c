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
    "RefRAdam",
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
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov: needs momentum > 0 and dampening = 0 (as torch.optim.SGD)")
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


# --------------------------------------------------------------------------------------- RAdam


class RefRAdam(_RefOptimizer):
    """RAdam, as ``torch.optim.RAdam`` (its operation order).

    Update rule at step ``t`` (1-based); ``bc1``, ``bc2``, ``rho_inf``, ``rho_t`` and ``rect``
    are Python floats::

        g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay)              (if decoupled_weight_decay, wd != 0)
        g = g + weight_decay * p                     (otherwise, if wd != 0)
        exp_avg = lerp(exp_avg, g, 1 - beta1)
        exp_avg_sq = exp_avg_sq * beta2 + ((1 - beta2) * g) * g
        bc1 = 1 - beta1**t;  bc2 = 1 - beta2**t
        rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 * t * beta2**t / bc2
        m_hat = exp_avg / bc1
        rho_t > 5:  rect = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                    p = p - ((m_hat * lr) * ((1 / (sqrt(exp_avg_sq) + eps)) * bc2**0.5)) * rect
        otherwise:  p = p - m_hat * lr

    State: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params)
        self.lr = lr
        self.betas = (betas[0], betas[1])
        self.eps = eps
        self.weight_decay = weight_decay
        self.decoupled_weight_decay = decoupled_weight_decay
        self.maximize = maximize

    def _update(self, i: int, p: np.ndarray, grad: np.ndarray, st: dict) -> None:
        if not st:
            st["step"] = 0
            st["exp_avg"] = np.zeros_like(p)
            st["exp_avg_sq"] = np.zeros_like(p)
        beta1, beta2 = self.betas
        lr = self.lr
        st["step"] += 1
        step = st["step"]
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                p[...] = p * _s(1 - lr * self.weight_decay, p)
            else:
                g = _add(g, p, self.weight_decay)
        m, v = st["exp_avg"], st["exp_avg_sq"]
        m[...] = lerp(m, g, 1 - beta1)
        v[...] = addcmul(v * _s(beta2, v), g, g, 1 - beta2)
        bc1, bc2 = 1 - beta1**step, 1 - beta2**step
        m_hat = m / _s(bc1, m)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bc2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                    / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            # torch's scalar / tensor is reciprocal(tensor) * scalar
            adaptive = (1 / (np.sqrt(v) + _s(self.eps, v))) * _s(bc2**0.5, v)
            p[...] = p - ((m_hat * _s(lr, p)) * adaptive) * _s(rect, p)
        else:
            p[...] = p - m_hat * _s(lr, p)


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


# =============================================================================================
# Recurrent layers
# =============================================================================================
#
# One layer, one direction of torch.nn.RNN / GRU / LSTM, computed time step by time step in
# plain NumPy, in the dtype of ``x``. Weight rows are stacked by gate in torch's order:
#
#   rnn_tanh, rnn_relu  G = 1   h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)
#   gru                 G = 3   rows r, z, n:
#                                 r  = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
#                                 z  = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
#                                 n  = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
#                                 h' = (1 - z) * n + z * h
#   lstm                G = 4   rows i, f, g, o:
#                                 i, f, o = sigmoid(...), g = tanh(...)
#                                 c' = f * c + i * g,  h' = o * tanh(c')
#
# Variable lengths: row b is *active* at time t iff t < lengths[b]. At an active step the row's
# state is updated and y[t, b] is the new h; at an inactive step h (and c) are left unchanged
# and y[t, b] = 0. Time runs 0..T-1, or T-1..0 with ``reverse=True``; so in the reverse
# direction a row keeps its initial state until t = lengths[b] - 1 and then runs back to t = 0
# (torch's packed sequences). In the backward pass dy at inactive positions is ignored and
# gradients pass through inactive steps unchanged.

_RNN_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}


def _sigmoid(v: np.ndarray) -> np.ndarray:
    """Logistic function, without overflow for large ``|v|``, in the dtype of ``v``."""
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1 / (1 + e), e / (1 + e)).astype(v.dtype, copy=False)


def _rnn_check(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths):
    """Validate shapes; return the arrays converted to the dtype of ``x`` and ``lengths``."""
    if cell not in _RNN_GATES:
        raise ValueError(f"cell must be one of {sorted(_RNN_GATES)}, got {cell!r}")
    x = np.asarray(x)
    if x.dtype not in _FLOATS:
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    dt = x.dtype
    if x.ndim != 3:
        raise ValueError(f"x must have shape (T, B, I), got {x.shape}")
    T, B, n_in = x.shape
    G = _RNN_GATES[cell]
    w_ih = np.asarray(w_ih, dtype=dt)
    w_hh = np.asarray(w_hh, dtype=dt)
    if w_hh.ndim != 2 or w_hh.shape[0] % G or w_hh.shape[1] * G != w_hh.shape[0]:
        raise ValueError(f"w_hh must have shape ({G}*H, H), got {w_hh.shape}")
    H = w_hh.shape[1]
    if w_ih.shape != (G * H, n_in):
        raise ValueError(f"w_ih must have shape {(G * H, n_in)}, got {w_ih.shape}")
    h0 = np.asarray(h0, dtype=dt)
    if h0.shape != (B, H):
        raise ValueError(f"h0 must have shape {(B, H)}, got {h0.shape}")
    if cell == "lstm":
        if c0 is None:
            raise ValueError("c0 is required for lstm")
        c0 = np.asarray(c0, dtype=dt)
        if c0.shape != (B, H):
            raise ValueError(f"c0 must have shape {(B, H)}, got {c0.shape}")
    elif c0 is not None:
        raise ValueError(f"c0 must be None for {cell}")
    if (b_ih is None) != (b_hh is None):
        raise ValueError("b_ih and b_hh must both be given or both be None")
    if b_ih is not None:
        b_ih = np.asarray(b_ih, dtype=dt)
        b_hh = np.asarray(b_hh, dtype=dt)
        for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
            if b.shape != (G * H,):
                raise ValueError(f"{name} must have shape {(G * H,)}, got {b.shape}")
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (B,) or not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError(f"lengths must be an int array of shape {(B,)}, got {lengths.shape}")
        if np.any(lengths < 1) or np.any(lengths > T):
            raise ValueError(f"lengths must lie in [1, {T}], got {lengths.tolist()}")
    return x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths


def _rnn_cell_forward(cell, x_t, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step of one cell for all rows: return ``(h_new, c_new, cache)``.

    ``c`` and ``c_new`` are ``None`` except for lstm. ``cache`` holds what
    :func:`_rnn_cell_backward` needs.
    """
    gi = x_t @ w_ih.T  # (B, G*H)
    gh = h @ w_hh.T
    if b_ih is not None:
        gi = gi + b_ih
        gh = gh + b_hh
    H = h.shape[1]
    if cell in ("rnn_tanh", "rnn_relu"):
        pre = gi + gh
        h_new = np.tanh(pre) if cell == "rnn_tanh" else np.maximum(pre, 0)
        return h_new, None, (pre, h_new)
    if cell == "gru":
        r = _sigmoid(gi[:, 0:H] + gh[:, 0:H])
        z = _sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
        ghn = gh[:, 2 * H : 3 * H]
        n = np.tanh(gi[:, 2 * H : 3 * H] + r * ghn)
        h_new = (1 - z) * n + z * h
        return h_new, None, (r, z, n, ghn, h)
    # lstm
    pre = gi + gh
    i = _sigmoid(pre[:, 0:H])
    f = _sigmoid(pre[:, H : 2 * H])
    g = np.tanh(pre[:, 2 * H : 3 * H])
    o = _sigmoid(pre[:, 3 * H : 4 * H])
    c_new = f * c + i * g
    tc = np.tanh(c_new)
    h_new = o * tc
    return h_new, c_new, (i, f, g, o, c, tc)


def _rnn_cell_backward(cell, cache, dh_new, dc_new):
    """Backward of one step of :func:`_rnn_cell_forward`.

    Given the gradients of the loss w.r.t. ``h_new`` (and ``c_new`` for lstm), return
    ``(dgi, dgh, dh, dc)``: the gradients w.r.t. the input projection ``gi = x W_ih^T + b_ih``,
    the recurrent projection ``gh = h W_hh^T + b_hh`` (both (B, G*H)), and the parts of the
    gradients w.r.t. ``h`` and ``c`` that do not go through ``gh`` (``None`` when there are none).
    """
    if cell in ("rnn_tanh", "rnn_relu"):
        pre, h_new = cache
        if cell == "rnn_tanh":
            dpre = dh_new * (1 - h_new * h_new)
        else:
            dpre = np.where(pre > 0, dh_new, 0).astype(dh_new.dtype, copy=False)
        return dpre, dpre, None, None
    if cell == "gru":
        r, z, n, ghn, h = cache
        dn = dh_new * (1 - z)
        dz = dh_new * (h - n)
        dh = dh_new * z
        dnpre = dn * (1 - n * n)
        dr = dnpre * ghn
        drpre = dr * (r * (1 - r))
        dzpre = dz * (z * (1 - z))
        dgi = np.concatenate([drpre, dzpre, dnpre], axis=1)
        dgh = np.concatenate([drpre, dzpre, dnpre * r], axis=1)
        return dgi, dgh, dh, None
    # lstm
    i, f, g, o, c, tc = cache
    do = dh_new * tc
    dcn = dc_new + dh_new * o * (1 - tc * tc)
    di = dcn * g
    df = dcn * c
    dg = dcn * i
    dc = dcn * f
    dpre = np.concatenate(
        [di * (i * (1 - i)), df * (f * (1 - f)), dg * (1 - g * g), do * (o * (1 - o))], axis=1
    )
    return dpre, dpre, None, dc


def _rnn_run(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, keep):
    """Run the layer forward; return ``y, h_n, c_n`` and, if ``keep``, the per-step records."""
    T, B, _ = x.shape
    H = h0.shape[1]
    y = np.zeros((T, B, H), dtype=x.dtype)
    h = h0.copy()
    c = c0.copy() if c0 is not None else None
    steps = []  # (t, active (B, 1) bool, h_prev, cache), in processing order
    order = range(T - 1, -1, -1) if reverse else range(T)
    for t in order:
        if lengths is None:
            active = np.ones((B, 1), dtype=bool)
        else:
            active = (t < lengths)[:, None]
        h_new, c_new, cache = _rnn_cell_forward(cell, x[t], h, c, w_ih, w_hh, b_ih, b_hh)
        if keep:
            steps.append((t, active, h, cache))
        y[t] = np.where(active, h_new, 0)
        h = np.where(active, h_new, h)
        if c is not None:
            c = np.where(active, c_new, c)
    return y, h, c, steps


def rnn_layer_forward(
    cell: str,
    x: np.ndarray,
    h0: np.ndarray,
    c0: Optional[np.ndarray],
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: Optional[np.ndarray],
    b_hh: Optional[np.ndarray],
    lengths: Optional[np.ndarray] = None,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """One direction of one recurrent layer, as ``torch.nn.RNN/GRU/LSTM``.

    Parameters
    ----------
    cell : {"rnn_tanh", "rnn_relu", "gru", "lstm"}
    x : ndarray (T, B, I)
        float32 or float64; every array is computed in this dtype.
    h0, c0 : ndarray (B, H)
        Initial state; ``c0`` only for lstm, else ``None``.
    w_ih, w_hh : ndarray (G*H, I), (G*H, H)
        Stacked gate weights, G = 1 (rnn), 3 (gru: r, z, n), 4 (lstm: i, f, g, o).
    b_ih, b_hh : ndarray (G*H,) or None
        Biases; both ``None`` for a layer without bias.
    lengths : int ndarray (B,) or None
        Row b is active at time t iff ``t < lengths[b]``; ``1 <= lengths[b] <= T``.
    reverse : bool
        Run t = T-1 down to 0 instead of 0 up to T-1.

    Returns
    -------
    y : ndarray (T, B, H)
        The new h at active steps, 0 at inactive ones.
    h_n, c_n : ndarray (B, H)
        Final state (``c_n`` is ``None`` except for lstm).
    """
    x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths = _rnn_check(
        cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths
    )
    y, h, c, _ = _rnn_run(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, False)
    return y, h, c


def rnn_layer_backward(
    cell: str,
    x: np.ndarray,
    h0: np.ndarray,
    c0: Optional[np.ndarray],
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: Optional[np.ndarray],
    b_hh: Optional[np.ndarray],
    dy: np.ndarray,
    dh_n: np.ndarray,
    dc_n: Optional[np.ndarray],
    lengths: Optional[np.ndarray] = None,
    reverse: bool = False,
) -> dict:
    """Backpropagation through time for :func:`rnn_layer_forward` (same arguments).

    Parameters
    ----------
    dy : ndarray (T, B, H)
        Gradient of the loss w.r.t. ``y``; entries at inactive positions are ignored.
    dh_n, dc_n : ndarray (B, H)
        Gradients w.r.t. ``h_n`` and ``c_n`` (``dc_n`` only for lstm, else ``None``;
        ``None`` for lstm means zero).

    Returns
    -------
    dict
        ``dx`` (T, B, I), ``dh0`` (B, H), ``dc0`` (B, H) or ``None``, ``dw_ih``, ``dw_hh``,
        ``db_ih``, ``db_hh`` (``None`` without bias), all in the dtype of ``x``.
    """
    x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths = _rnn_check(
        cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths
    )
    dt = x.dtype
    T, B, _ = x.shape
    H = h0.shape[1]
    dy = np.asarray(dy, dtype=dt)
    if dy.shape != (T, B, H):
        raise ValueError(f"dy must have shape {(T, B, H)}, got {dy.shape}")
    dh = np.array(dh_n, dtype=dt)
    if dh.shape != (B, H):
        raise ValueError(f"dh_n must have shape {(B, H)}, got {dh.shape}")
    dc = None
    if cell == "lstm":
        dc = np.zeros((B, H), dtype=dt) if dc_n is None else np.array(dc_n, dtype=dt)
        if dc.shape != (B, H):
            raise ValueError(f"dc_n must have shape {(B, H)}, got {dc.shape}")
    elif dc_n is not None:
        raise ValueError(f"dc_n must be None for {cell}")

    _, _, _, steps = _rnn_run(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, True)

    dx = np.zeros_like(x)
    dw_ih = np.zeros_like(w_ih)
    dw_hh = np.zeros_like(w_hh)
    db_ih = np.zeros(w_ih.shape[0], dtype=dt) if b_ih is not None else None
    db_hh = np.zeros(w_hh.shape[0], dtype=dt) if b_hh is not None else None
    zero = np.zeros((B, H), dtype=dt)
    for t, active, h_prev, cache in reversed(steps):
        # h_out = active ? h_new : h_prev, y[t] = active ? h_new : 0 (same for c, without y)
        dh_new = np.where(active, dh + dy[t], zero)
        dh = np.where(active, zero, dh)
        dc_new = None
        if dc is not None:
            dc_new = np.where(active, dc, zero)
            dc = np.where(active, zero, dc)
        dgi, dgh, dh_direct, dc_direct = _rnn_cell_backward(cell, cache, dh_new, dc_new)
        dx[t] = dgi @ w_ih
        dw_ih += dgi.T @ x[t]
        dw_hh += dgh.T @ h_prev
        if db_ih is not None:
            db_ih += dgi.sum(axis=0)
            db_hh += dgh.sum(axis=0)
        dh = dh + dgh @ w_hh
        if dh_direct is not None:
            dh = dh + dh_direct
        if dc_direct is not None:
            dc = dc + dc_direct
    return {
        "dx": dx,
        "dh0": dh,
        "dc0": dc,
        "dw_ih": dw_ih,
        "dw_hh": dw_hh,
        "db_ih": db_ih,
        "db_hh": db_hh,
    }


__all__ += ["rnn_layer_forward", "rnn_layer_backward"]
