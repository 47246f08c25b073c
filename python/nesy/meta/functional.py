"""Batched functional networks for meta-learning: one call runs every task of a meta-batch.

Meta-learning spends its time in many tiny forward and backward passes, one per task and inner
step. Here the parameters carry a leading task axis, ``params[i]`` of shape ``(n_tasks, *shape)``,
so one call serves all tasks and the Python overhead is paid once, not once per task. In
:class:`BatchedMLP`, ``loss_grad`` (every inner and outer gradient) runs every task's forward and
backward pass in one Rust call (``_core.meta_mlp_loss_grad``, ``rust/core/src/meta/mlp.rs``,
tasks in parallel); ``forward``, ``backward``, ``predict`` and the Hessian-vector product are
batched NumPy, one :func:`numpy.matmul` over all tasks per layer.

Two backends share one interface (``loss_grad``, ``predict``, ``hvp``, ``parameters``):

- :class:`BatchedMLP`: a :class:`~nesy.nn.Sequential` of :class:`~nesy.nn.Dense` layers with
  ReLU / Tanh / Identity activations, fully batched, with an exact Hessian-vector product
  (Pearlmutter's R-operator: a forward and a backward pass of directional derivatives);
- :class:`ModuleLoop`: any nesy :class:`~nesy.nn.Module`, one ``forward``/``backward`` per task,
  with Hessian-vector products by central finite differences of gradients.

:func:`make_backend` picks the batched one whenever the model allows it.

Losses are per task: ``"mse"`` is the mean of ``(pred - y)**2`` over the task's points and
outputs; ``"cross_entropy"`` the mean over the task's points of the softmax cross-entropy with
integer labels (the same values as :class:`~nesy.nn.MSELoss` and
:class:`~nesy.nn.CrossEntropyLoss` applied to each task).
"""

from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Tuple

import numpy as np

from nesy import _core
from nesy.nn.activations import ReLU, Tanh, log_softmax
from nesy.nn.layers import Dense, Sequential
from nesy.nn.losses import CrossEntropyLoss, Loss, MSELoss
from nesy.nn.module import Identity, Module

__all__ = [
    "LOSSES",
    "BatchedMLP",
    "ModuleLoop",
    "make_backend",
    "batched_loss",
    "broadcast_params",
    "check_loss",
]

LOSSES = ("mse", "cross_entropy")
_ACTS = {ReLU: "relu", Tanh: "tanh", Identity: "identity"}
Params = List[np.ndarray]


def check_loss(loss: str) -> str:
    """``loss`` if it is one of :data:`LOSSES`, else ValueError naming the argument."""
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {list(LOSSES)}, got {loss!r}")
    return loss


def broadcast_params(theta: Sequence[np.ndarray], n_tasks: int) -> Params:
    """Copies of the meta-parameters with a task axis: ``(n_tasks, *p.shape)`` each."""
    return [np.repeat(p[None], n_tasks, axis=0) for p in theta]


# ---------------------------------------------------------------------------------- losses
def batched_loss(
    loss: str, out: np.ndarray, y: np.ndarray, need_grad: bool = True
) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Per-task loss and its gradient with respect to the network output.

    Parameters
    ----------
    loss : {"mse", "cross_entropy"}
    out : ndarray of shape (n_tasks, n_points, n_outputs)
        Network outputs (logits for cross-entropy).
    y : ndarray of shape (n_tasks, n_points, n_outputs) or (n_tasks, n_points)
        Targets; integer labels in ``[0, n_outputs)`` for cross-entropy.
    need_grad : bool
        Whether to compute the gradient.

    Returns
    -------
    losses : ndarray of shape (n_tasks,)
    grad : ndarray of ``out``'s shape, or None
        Gradient of ``losses[t]`` with respect to ``out[t]``.
    probs : ndarray of ``out``'s shape, or None
        Softmax probabilities (cross-entropy only; the Hessian-vector product needs them).
    """
    t, n = out.shape[0], out.shape[1]
    if loss == "mse":
        yy = np.asarray(y, dtype=out.dtype).reshape(out.shape)
        diff = out - yy
        scale = 1.0 / (n * out.shape[2])
        losses = np.einsum("tij,tij->t", diff, diff) * out.dtype.type(scale)
        grad = diff * out.dtype.type(2.0 * scale) if need_grad else None
        return losses, grad, None
    labels = y.astype(np.intp, copy=False).reshape(t, n)
    logp = log_softmax(out)
    picked = np.take_along_axis(logp, labels[..., None], axis=2)[..., 0]
    losses = -picked.mean(axis=1)
    if not need_grad:
        return losses, None, None
    probs = np.exp(logp)
    grad = probs.copy()
    np.put_along_axis(grad, labels[..., None],
                      np.take_along_axis(grad, labels[..., None], axis=2) - 1, axis=2)
    grad *= out.dtype.type(1.0 / n)
    return losses, grad, probs


def _loss_hvp(loss: str, r_out: np.ndarray, probs: Optional[np.ndarray]) -> np.ndarray:
    """Directional derivative of the output gradient: ``(d^2 loss / d out^2) r_out``."""
    n = r_out.shape[1]
    if loss == "mse":
        return r_out * r_out.dtype.type(2.0 / (n * r_out.shape[2]))
    assert probs is not None
    r = probs * (r_out - np.sum(probs * r_out, axis=2, keepdims=True))
    return r * r.dtype.type(1.0 / n)


# ---------------------------------------------------------------------------------- batched MLP
class BatchedMLP:
    """A multilayer perceptron evaluated for many tasks at once.

    Layer ``l`` computes ``z_l = h_{l-1} @ W_l + b_l`` and ``h_l = act_l(z_l)``, with ``h_0 = x``.
    Parameters are ``[W_1, b_1, W_2, b_2, ...]``, ``W_l`` of shape
    ``(n_tasks, in_l, out_l)`` and ``b_l`` of shape ``(n_tasks, out_l)`` -- the order of
    ``Sequential.parameters()`` with a task axis in front.

    Parameters
    ----------
    model : Sequential
        Dense layers (with bias), each followed by at most one ReLU, Tanh or Identity. The model's
        own arrays are the meta-parameters (:meth:`parameters`).

    Raises
    ------
    TypeError
        If the model does not have that form (use :class:`ModuleLoop` then).
    """

    batched = True

    def __init__(self, model: Module) -> None:
        if not isinstance(model, Sequential):
            raise TypeError(f"model: BatchedMLP needs a Sequential, got {type(model).__name__}")
        acts: List[str] = []
        dense: List[Dense] = []
        for i, m in enumerate(model):
            if isinstance(m, Dense):
                if not m.use_bias:
                    raise TypeError(f"model[{i}]: BatchedMLP needs Dense layers with a bias")
                dense.append(m)
                acts.append("identity")
            elif type(m) in _ACTS and dense:
                if type(m) is Identity:
                    continue
                if acts[-1] != "identity":
                    raise TypeError(f"model[{i}]: two activations in a row")
                acts[-1] = _ACTS[type(m)]
            else:
                raise TypeError(
                    f"model[{i}]: BatchedMLP supports Dense, ReLU, Tanh and Identity after a "
                    f"Dense, got {type(m).__name__}"
                )
        if not dense:
            raise TypeError("model: has no Dense layer")
        if len({d.dtype for d in dense}) != 1:
            raise TypeError("model: all Dense layers must have the same dtype")
        self.model = model
        self.activations = acts
        self.sizes = [dense[0].in_features] + [d.out_features for d in dense]
        self.dtype = dense[0].dtype
        self.in_features = self.sizes[0]
        self.out_features = self.sizes[-1]

    def parameters(self) -> Params:
        """The meta-parameters: the model's own arrays, ``[W_1, b_1, ...]``."""
        return self.model.parameters()

    # ------------------------------------------------------------------ passes
    def forward(self, params: Sequence[np.ndarray], x: np.ndarray) -> Tuple[np.ndarray, list]:
        """Outputs ``(n_tasks, n_points, out_features)`` and the cache for :meth:`backward`.

        ``x`` has shape ``(n_tasks, n_points, in_features)``.
        """
        h = x
        cache = []
        for li, act in enumerate(self.activations):
            w, b = params[2 * li], params[2 * li + 1]
            z = np.matmul(h, w)
            z += b[:, None, :]
            cache.append(h)
            if act == "relu":
                h = np.maximum(z, 0)
            elif act == "tanh":
                h = np.tanh(z)
            else:
                h = z
        cache.append(h)
        return h, cache

    def _act_backward(self, li: int, g: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Gradient through the activation of layer ``li`` given its output ``h``."""
        act = self.activations[li]
        if act == "relu":
            return g * (h > 0)
        if act == "tanh":
            return g * (1 - h * h)
        return g

    def backward(self, params: Sequence[np.ndarray], cache: list, grad_out: np.ndarray,
                 ) -> Params:
        """Per-task parameter gradients given ``d loss_t / d out_t`` of shape ``out``'s."""
        n_layers = len(self.activations)
        grads: Params = [np.empty(0)] * (2 * n_layers)
        g = self._act_backward(n_layers - 1, grad_out, cache[-1])
        for li in range(n_layers - 1, -1, -1):
            h_in = cache[li]
            grads[2 * li] = np.matmul(h_in.transpose(0, 2, 1), g)
            grads[2 * li + 1] = g.sum(axis=1)
            if li:
                g = np.matmul(g, params[2 * li].transpose(0, 2, 1))
                g = self._act_backward(li - 1, g, h_in)
        return grads

    def predict(self, params: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
        """Outputs of every task's network, ``(n_tasks, n_points, out_features)``."""
        return self.forward(params, x)[0]

    def loss_grad(self, params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, loss: str,
                  need_grad: bool = True) -> Tuple[np.ndarray, Optional[Params]]:
        """Per-task losses ``(n_tasks,)`` and gradients (``params``' shapes): one call into Rust
        for all tasks (``rust/core/src/meta/mlp.rs``; tasks in parallel). :meth:`forward` and
        :meth:`backward` are the same passes in NumPy (the Hessian-vector product uses them)."""
        check_loss(loss)
        dt = self.dtype
        p = [np.ascontiguousarray(a, dtype=dt) for a in params]
        xx = np.ascontiguousarray(x, dtype=dt)
        if loss == "mse":
            yy = np.ascontiguousarray(np.asarray(y, dtype=dt).reshape(xx.shape[0], xx.shape[1],
                                                                      -1))
        else:
            yy = np.ascontiguousarray(np.asarray(y).reshape(xx.shape[0], xx.shape[1]),
                                      dtype=np.int64)
        losses, grads = _core.meta_mlp_loss_grad(p, xx, yy, self.activations, loss, need_grad)
        return losses, grads

    def hvp(self, params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, loss: str,
            v: Sequence[np.ndarray]) -> Tuple[Params, Params]:
        """Exact per-task Hessian-vector products ``H_t v_t`` by the R-operator.

        Parameters
        ----------
        params, v : list of ndarray with the task axis, same shapes
            Where the Hessian of each task's loss is taken, and the direction.
        x, y : ndarray
            The task data, as in :meth:`loss_grad`.
        loss : {"mse", "cross_entropy"}

        Returns
        -------
        grads : list of ndarray
            The gradients at ``params`` (computed on the way).
        hv : list of ndarray
            ``H_t v_t`` for every task, ``params``' shapes.

        Notes
        -----
        ReLU's second derivative is zero almost everywhere, so the result is the exact Hessian
        of the piecewise-quadratic loss (as automatic differentiation gives it).
        """
        n_layers = len(self.activations)
        # forward pass with directional derivatives r(z), r(h)
        h = x
        hs, rhs = [x], [np.zeros_like(x)]
        for li in range(n_layers):
            w, b = params[2 * li], params[2 * li + 1]
            vw, vb = v[2 * li], v[2 * li + 1]
            z = np.matmul(h, w) + b[:, None, :]
            rz = np.matmul(h, vw) + vb[:, None, :]
            if li:
                rz += np.matmul(rhs[-1], w)
            act = self.activations[li]
            if act == "relu":
                mask = z > 0
                h, rh = z * mask, rz * mask
            elif act == "tanh":
                h = np.tanh(z)
                rh = rz * (1 - h * h)
            else:
                h, rh = z, rz
            hs.append(h)
            rhs.append(rh)
        losses, g, probs = batched_loss(loss, h, y)
        assert g is not None
        rg = _loss_hvp(loss, rhs[-1], probs)
        grads: Params = [np.empty(0)] * (2 * n_layers)
        hv: Params = [np.empty(0)] * (2 * n_layers)
        # backward pass through the activation of the last layer, then the layers
        g, rg = self._act_backward_r(n_layers - 1, g, rg, hs[-1], rhs[-1])
        for li in range(n_layers - 1, -1, -1):
            h_in, rh_in = hs[li], rhs[li]
            h_t = h_in.transpose(0, 2, 1)
            grads[2 * li] = np.matmul(h_t, g)
            grads[2 * li + 1] = g.sum(axis=1)
            hw = np.matmul(h_t, rg)
            if li:
                hw += np.matmul(rh_in.transpose(0, 2, 1), g)
            hv[2 * li] = hw
            hv[2 * li + 1] = rg.sum(axis=1)
            if li:
                w_t = params[2 * li].transpose(0, 2, 1)
                gh = np.matmul(g, w_t)
                rgh = np.matmul(rg, w_t) + np.matmul(g, v[2 * li].transpose(0, 2, 1))
                g, rg = self._act_backward_r(li - 1, gh, rgh, h_in, rh_in)
        return grads, hv

    def _act_backward_r(self, li: int, g: np.ndarray, rg: np.ndarray, h: np.ndarray,
                        rh: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Backward through activation ``li`` of a gradient and of its directional derivative."""
        act = self.activations[li]
        if act == "relu":
            mask = h > 0
            return g * mask, rg * mask
        if act == "tanh":
            d = 1 - h * h
            return g * d, rg * d - g * (2 * h * rh)
        return g, rg


# ---------------------------------------------------------------------------------- any module
class ModuleLoop:
    """Backend for any nesy :class:`~nesy.nn.Module`: one forward/backward per task.

    The tasks run one after another on a private copy of the model whose parameter arrays are
    loaded from ``params[i][t]``; the model itself is only read.

    Parameters
    ----------
    model : Module
        Takes ``x[t]`` of shape ``(n_points, *in_shape)`` and returns ``(n_points, n_outputs)``.
    fd_eps : float, optional
        Relative step of the central finite differences in :meth:`hvp`:
        ``eps = fd_eps * max(1, |params|) / max(|v|, tiny)`` (norms over each task). Default
        ``1e-5`` for float64 and ``1e-3`` for float32 parameters.

    Notes
    -----
    Relative error ``|Hv_fd - Hv| / |Hv|`` of :meth:`hvp` against the exact R-operator, measured
    on a 1-40-40-1 network, 25 sine tasks of 5 points, a random direction::

        fd_eps           1e-2     1e-3     1e-4     1e-5     1e-6
        tanh float64     1.8e-4   1.8e-6   1.8e-8   1.8e-10  1.0e-10
        tanh float32     1.6e-4   6.4e-5   6.3e-4   6.1e-3   5.9e-2
        relu float64     1.5      0.41     0.12     4.7e-11  9.7e-11
        relu float32     5.6      0.30     0.25     1.5      5.9e-2

    With ReLU a difference that straddles a kink is wrong by the size of the jump, so only a
    step too small to cross one works, which float32 cannot resolve: second-order MAML in float32
    with ReLU needs the exact :class:`BatchedMLP` path.
    """

    batched = False

    def __init__(self, model: Module, fd_eps: Optional[float] = None) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"model: expected a nesy Module, got {type(model).__name__}")
        if not model.parameters():
            raise ValueError("model: has no parameters to meta-learn")
        self.model = model
        self.work = copy.deepcopy(model)
        dtypes = {p.dtype for p in model.parameters()}
        if len(dtypes) != 1:
            raise TypeError(f"model: all parameters must share one dtype, got {dtypes}")
        self.dtype = dtypes.pop()
        default = 1e-5 if self.dtype == np.float64 else 1e-3
        self.fd_eps = default if fd_eps is None else float(fd_eps)
        if not self.fd_eps > 0:
            raise ValueError(f"fd_eps: expected a number > 0, got {fd_eps!r}")
        self._losses: dict = {"mse": MSELoss(), "cross_entropy": CrossEntropyLoss()}

    def parameters(self) -> Params:
        """The meta-parameters: the model's own arrays."""
        return self.model.parameters()

    def _generators(self) -> list:
        """The random generators of the private copy's modules (a Dropout's ``rng``; any
        :class:`numpy.random.Generator` or :class:`numpy.random.RandomState` attribute)."""
        gens = []
        for m in self.work.modules():
            for v in vars(m).values():
                if isinstance(v, (np.random.Generator, np.random.RandomState)):
                    gens.append(v)
        return gens

    def rng_state(self) -> list:
        """The state of every random generator of the model's modules (see :meth:`hvp`);
        an empty list for a deterministic model."""
        return [copy.deepcopy(g.bit_generator.state if isinstance(g, np.random.Generator)
                              else g.get_state()) for g in self._generators()]

    def set_rng_state(self, state: Sequence) -> None:
        """Put back a state returned by :meth:`rng_state`: the next passes draw the same
        random numbers (the same dropout masks) as the passes that followed it."""
        gens = self._generators()
        if len(state) != len(gens):
            raise ValueError(f"rng_state: has {len(state)} generator states, the model has "
                             f"{len(gens)} generators")
        for g, st in zip(gens, state):
            if isinstance(g, np.random.Generator):
                g.bit_generator.state = copy.deepcopy(st)
            else:
                g.set_state(st)

    def _load(self, params: Sequence[np.ndarray], t: int) -> None:
        for dst, src in zip(self.work.parameters(), params):
            np.copyto(dst, src[t])

    def predict(self, params: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
        """Outputs of every task's network, stacked over the task axis."""
        outs = []
        for t in range(x.shape[0]):
            self._load(params, t)
            outs.append(np.asarray(self.work.forward(x[t])))
        return np.stack(outs)

    def loss_grad(self, params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, loss: str,
                  need_grad: bool = True) -> Tuple[np.ndarray, Optional[Params]]:
        """Per-task losses ``(n_tasks,)`` and gradients with the task axis."""
        fn: Loss = self._losses[loss]
        n_tasks = x.shape[0]
        losses = np.empty(n_tasks, dtype=np.float64)
        grads = [np.empty_like(p) for p in params] if need_grad else None
        for t in range(n_tasks):
            self._load(params, t)
            out = self.work.forward(x[t])
            losses[t] = fn(out, y[t])
            if grads is not None:
                self.work.zero_grad()
                self.work.backward(fn.backward())
                for dst, g in zip(grads, self.work.gradients()):
                    dst[t] = g
        return losses.astype(self.dtype), grads

    def hvp(self, params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, loss: str,
            v: Sequence[np.ndarray], rng_state: Optional[Sequence] = None,
            ) -> Tuple[Params, Params]:
        """Per-task ``H_t v_t`` by central differences of gradients (see ``fd_eps``).

        The error is ``O(eps^2)`` for smooth networks plus rounding ``O(ulp * |g| / eps)``; with
        ReLU a difference that straddles a kink is off by up to the size of the jump (see the
        class notes for measured errors).

        A model with random modules in training mode (Dropout) is differentiated for fixed
        random draws: the three gradient evaluations start from the same state of the
        generators its modules hold (see :meth:`rng_state`), so they use the same masks (fresh
        masks in each would put their noise, divided by the tiny step, into the result). That
        state is ``rng_state`` (from :meth:`rng_state`; second-order MAML passes the state of
        the inner step, so the Hessian is that of the loss it differentiated), else the
        current one; the generators are left as after one :meth:`loss_grad`.
        """
        state = self.rng_state() if rng_state is None else rng_state
        n_tasks = x.shape[0]
        pn = np.sqrt(sum(np.sum(p.reshape(n_tasks, -1).astype(np.float64) ** 2, axis=1)
                         for p in params))
        vn = np.sqrt(sum(np.sum(q.reshape(n_tasks, -1).astype(np.float64) ** 2, axis=1)
                         for q in v))
        eps = self.fd_eps * np.maximum(1.0, pn) / np.maximum(vn, 1e-30)
        shape = lambda p: (n_tasks,) + (1,) * (p.ndim - 1)  # noqa: E731
        plus = [p + (eps.reshape(shape(p)) * q).astype(p.dtype) for p, q in zip(params, v)]
        minus = [p - (eps.reshape(shape(p)) * q).astype(p.dtype) for p, q in zip(params, v)]
        grads = []
        for at in (plus, minus, params):
            if state:
                self.set_rng_state(state)  # the same random draws (dropout masks) each time
            grads.append(self.loss_grad(at, x, y, loss)[1])
        gp, gm, g = grads
        assert gp is not None and gm is not None and g is not None
        hv = [((a - b) / (2 * eps.reshape(shape(a)))).astype(a.dtype) for a, b in zip(gp, gm)]
        return g, hv


def make_backend(model: Module, batched: Optional[bool] = None):
    """:class:`BatchedMLP` for a plain MLP, else :class:`ModuleLoop`.

    Parameters
    ----------
    model : Module
    batched : bool, optional
        Force the choice: ``True`` raises TypeError when the model is not a plain MLP, ``False``
        always loops over tasks. Default: batched when possible.
    """
    if batched is False:
        return ModuleLoop(model)
    try:
        return BatchedMLP(model)
    except TypeError:
        if batched:
            raise
        return ModuleLoop(model)

