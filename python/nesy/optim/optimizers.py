"""The optimizers of :mod:`nesy.optim`: torch.optim's formulas, defaults and option names.

Every class is a thin declaration over :class:`~nesy.optim._base.Optimizer`; the update rules
run in Rust (``rust/core/src/optim/<rule>.rs``, whose header states each formula). ``g`` below is
the gradient (negated when ``maximize``), ``t`` the parameter's update count starting at 1.

torch's keyword-only options that choose how torch runs a step, not what it computes
(``foreach``, ``fused``, ``capturable``, ``differentiable``), are accepted by every optimizer
here and ignored: the step is always one fused call into Rust. They are not stored in the
parameter groups (``load_state_dict`` drops them from a torch state dict too). The optimizers
hold no gradients (:meth:`~nesy.optim._base.Optimizer.step` takes them), so ``zero_grad()``
raises, naming what to call instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nesy.optim._base import Optimizer, _real

Betas = tuple[float, float]


def _betas(betas: Any) -> tuple[Any, ...]:
    """``betas`` as a tuple, or ``ValueError`` naming the argument when it is not a pair
    (``betas=0.9`` is a common slip for ``betas=(0.9, 0.999)``)."""
    if isinstance(betas, (str, bytes, Mapping)) or not isinstance(betas, Iterable):
        raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
    try:
        pair = tuple(betas)
    except TypeError:  # a 0-d array
        pair = ()
    if len(pair) != 2:
        raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
    return pair


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (``torch.optim.SGD``).

    ``g += weight_decay * p``; with momentum ``buf = g`` at t = 1, then
    ``buf = momentum * buf + (1 - dampening) * g``, and ``g = g + momentum * buf`` (nesterov) or
    ``g = buf``; finally ``p -= lr * g``. ``momentum`` and ``dampening`` must be in [0, 1]
    (stricter than torch: outside, the buffer grows without bound).
    """

    _kind = "sgd"
    #: Whether the momentum buffer exists (torch starts it as ``buf = g`` at the first update
    #: with momentum, also when momentum is switched on later).
    _scalar_name = "momentum_started"
    _scalar_set_by = "momentum_buffer"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))


class Adagrad(Optimizer):
    """Adagrad (``torch.optim.Adagrad``).

    ``g += weight_decay * p``; ``clr = lr / (1 + (t - 1) * lr_decay)``; ``sum += g * g``
    (``sum`` starts at ``initial_accumulator_value``); ``p -= clr * g / (sqrt(sum) + eps)``.
    """

    _kind = "adagrad"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))

    def _state_init(self, name: str, group: Mapping[str, Any]) -> float:
        return float(group["initial_accumulator_value"])

    def _check_group(self, gi: int, group: Mapping[str, Any]) -> None:
        v = group["initial_accumulator_value"]
        if type(v) is not float and type(v) is not int:  # checked at every step: fast path
            v = _real(gi, "initial_accumulator_value", v)
        if not 0.0 <= float(v) < float("inf"):
            raise ValueError(f"param_groups[{gi}]['initial_accumulator_value'] must be a "
                             f"finite number >= 0, got {v!r}")


class RMSprop(Optimizer):
    """RMSprop (``torch.optim.RMSprop``).

    ``g += weight_decay * p``; ``sq = alpha * sq + (1 - alpha) * g * g``; centered:
    ``ga = lerp(ga, g, 1 - alpha)``, ``avg = sqrt(sq - ga * ga) + eps``, else
    ``avg = sqrt(sq) + eps``; with momentum ``buf = momentum * buf + g / avg``,
    ``p -= lr * buf``, else ``p -= lr * g / avg``. ``alpha`` and ``momentum`` must be in
    [0, 1] (stricter than torch: an ``alpha`` above 1 turns ``sq`` negative, a ``momentum``
    above 1 grows the buffer without bound).
    """

    _kind = "rmsprop"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))


class Adadelta(Optimizer):
    """Adadelta (``torch.optim.Adadelta``).

    ``g += weight_decay * p``; ``sq = rho * sq + (1 - rho) * g * g``;
    ``delta = sqrt(acc + eps) / sqrt(sq + eps) * g``;
    ``acc = rho * acc + (1 - rho) * delta * delta``; ``p -= lr * delta``.
    """

    _kind = "adadelta"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``).

    ``g += weight_decay * p``; ``m = lerp(m, g, 1 - beta1)``;
    ``v = beta2 * v + (1 - beta2) * g * g``; amsgrad: ``vmax = max(vmax, v)`` used for ``v``;
    ``p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``. With
    ``decoupled_weight_decay`` (as in torch): ``p *= 1 - lr * weight_decay`` first instead of the
    L2 term, i.e. :class:`AdamW`.
    """

    _kind = "adam"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Betas = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=_betas(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))


class AdamW(Adam):
    """AdamW (``torch.optim.AdamW``): Adam with decoupled weight decay.

    ``p *= 1 - lr * weight_decay`` first, then the Adam update without the L2 term: Adam with
    ``decoupled_weight_decay=True`` (which its parameter groups hold, as torch's do).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Betas = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)


class Adamax(Optimizer):
    """Adamax (``torch.optim.Adamax``), Adam with the infinity norm.

    ``g += weight_decay * p``; ``m = lerp(m, g, 1 - beta1)``; ``u = max(beta2 * u, |g| + eps)``;
    ``p -= lr / (1 - beta1**t) * m / u``.
    """

    _kind = "adamax"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: Betas = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=_betas(betas), eps=eps,
                                      weight_decay=weight_decay, maximize=maximize))


class NAdam(Optimizer):
    """NAdam (``torch.optim.NAdam``), Adam with Nesterov momentum.

    ``mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay))``, ``prod_t = prod_{t-1} * mu_t``;
    ``m``, ``v`` as Adam; ``denom = sqrt(v / (1 - beta2**t)) + eps``;
    ``p -= lr * (1 - mu_t) / (1 - prod_t) * g / denom``, then
    ``p -= lr * mu_{t+1} / (1 - prod_t * mu_{t+1}) * m / denom``. Weight decay is L2 or, with
    ``decoupled_weight_decay``, ``p *= 1 - lr * weight_decay``.
    """

    _kind = "nadam"
    _scalar_name = "mu_product"
    _scalar_init = 1.0

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: Betas = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=_betas(betas), eps=eps,
                                      weight_decay=weight_decay, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))


class RAdam(Optimizer):
    """RAdam (``torch.optim.RAdam``; Liu et al. 2020, "On the Variance of the Adaptive Learning
    Rate and Beyond"): Adam whose adaptive step is switched on, and scaled, only once the
    variance of ``v`` is tractable.

    ``m``, ``v`` as Adam; ``rho_inf = 2 / (1 - beta2) - 1``,
    ``rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)``. While ``rho_t <= 5``:
    ``p -= lr / (1 - beta1**t) * m``; then with
    ``r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``:
    ``p -= lr * r * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + eps)``. Weight decay
    is L2 or, with ``decoupled_weight_decay``, ``p *= 1 - lr * weight_decay``.
    """

    _kind = "radam"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Betas = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=_betas(betas), eps=eps,
                                      weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))


class Lion(Optimizer):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").

    ``p *= 1 - lr * weight_decay``; ``p -= lr * sign(beta1 * m + (1 - beta1) * g)``;
    ``m = beta2 * m + (1 - beta2) * g``. Use a learning rate 3-10x smaller than AdamW's.
    """

    _kind = "lion"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: Betas = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=_betas(betas), weight_decay=weight_decay,
                                      maximize=maximize))


class SGDHD(Optimizer):
    """SGD whose learning rate adapts by hypergradient descent (Baydin et al. 2018).

    Before each update, every group's rate moves along the hypergradient:
    ``lr = max(0, lr + hypergrad_lr * sum_i g_t,i . u_t-1,i)`` where ``u`` is the direction the
    previous step applied (``g``, or the momentum / Nesterov direction); then the SGD update with
    the new ``lr``. ``param_groups[i]["lr"]`` holds the adapted rate after each step.
    ``momentum`` and ``dampening`` in [0, 1], as :class:`SGD`'s.
    """

    _kind = "sgd_hd"
    _scalar_name = "momentum_started"
    _scalar_set_by = "momentum_buffer"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        maximize: bool = False,
        hypergrad_lr: float = 1e-3,
    ) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, hypergrad_lr=hypergrad_lr))


class AdamHD(Optimizer):
    """Adam whose learning rate adapts by hypergradient descent (Baydin et al. 2018).

    ``lr = max(0, lr + hypergrad_lr * sum_i g_t,i . u_t-1,i)`` with
    ``u = (m / (1 - beta1**(t-1))) / (sqrt(v) / sqrt(1 - beta2**(t-1)) + eps)``, the previous
    Adam step per unit of learning rate; then the Adam update with the new ``lr``.
    """

    _kind = "adam_hd"
    _fixed = {"decoupled_weight_decay": 0.0}

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Betas = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        maximize: bool = False,
        hypergrad_lr: float = 1e-7,
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=_betas(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, hypergrad_lr=hypergrad_lr))
