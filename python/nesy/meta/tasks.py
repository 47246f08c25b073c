"""Task families for meta-learning and the interface of a task sampler.

A *task sampler* is any object with a method

``sample(n_tasks: int, rng: numpy.random.Generator) -> TaskBatch``

that draws ``n_tasks`` independent tasks, each with a support set (the few examples a model adapts
on) and a query set (where the adapted model is scored), stacked over a leading task axis. Every
task of a batch has the same number of support and query points. A sampler may also have a
``loss`` attribute (``"mse"`` or ``"cross_entropy"``) that :class:`~nesy.meta.MetaLearner` uses
when its own ``loss`` is left to ``"auto"``.

Writing your own: subclass nothing, just return a :class:`TaskBatch`::

    class LineTasks:
        loss = "mse"

        def sample(self, n_tasks, rng):
            slope = rng.uniform(-2, 2, (n_tasks, 1, 1))
            x = rng.uniform(-1, 1, (n_tasks, 20, 1))
            y = slope * x
            return TaskBatch(x[:, :5], y[:, :5], x[:, 5:], y[:, 5:])

Two families ship with nesy: :class:`SineTasks` (the sine-wave regression of Finn et al. 2017)
and :class:`DigitsTasks` (N-way K-shot classification of scikit-learn's 8x8 digits, meta-trained
and meta-tested on disjoint classes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from nesy._checks import check_float_dtype, check_int

__all__ = ["TaskBatch", "SineTasks", "DigitsTasks", "check_task_batch"]


@dataclass
class TaskBatch:
    """Support and query sets of ``n_tasks`` tasks.

    Attributes
    ----------
    support_x : ndarray of shape (n_tasks, n_support, *in_shape)
    support_y : ndarray of shape (n_tasks, n_support, n_outputs) or (n_tasks, n_support)
        Regression targets, or integer class labels for classification.
    query_x : ndarray of shape (n_tasks, n_query, *in_shape)
    query_y : ndarray of shape (n_tasks, n_query, n_outputs) or (n_tasks, n_query)
    info : dict
        Optional per-task descriptions (e.g. the sine amplitudes and phases).
    """

    support_x: np.ndarray
    support_y: np.ndarray
    query_x: np.ndarray
    query_y: np.ndarray
    info: Dict[str, Any] = field(default_factory=dict)

    @property
    def n_tasks(self) -> int:
        """Number of tasks (length of the leading axis)."""
        return int(np.shape(self.support_x)[0])


def check_task_batch(batch: Any, n_tasks: Optional[int] = None, where: str = "task_sampler",
                     ) -> TaskBatch:
    """Validate a sampler's output; return it with arrays converted by :func:`numpy.asarray`.

    Raises
    ------
    TypeError
        If ``batch`` is not a :class:`TaskBatch`.
    ValueError
        Naming ``where`` and the offending array, when the task counts or point counts of the
        four arrays disagree, x and y do not match, support and query have different input or
        output shapes, a set is empty, or a value is not finite.
    """
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"{where}.sample() must return a TaskBatch, got {type(batch).__name__}")
    arrays = {k: np.asarray(getattr(batch, k))
              for k in ("support_x", "support_y", "query_x", "query_y")}
    for k, a in arrays.items():
        if a.ndim < 2:
            raise ValueError(f"{where}: {k} has shape {a.shape}, expected (n_tasks, n_points, ...)")
        if a.shape[1] == 0:
            raise ValueError(f"{where}: {k} is empty (shape {a.shape})")
        if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
            raise ValueError(f"{where}: {k} holds non-finite or non-numeric values")
    sx, sy, qx, qy = arrays.values()
    t = sx.shape[0]
    for k, a in arrays.items():
        if a.shape[0] != t:
            raise ValueError(
                f"{where}: {k} has {a.shape[0]} tasks but support_x has {t} (shapes: "
                + ", ".join(f"{n}={b.shape}" for n, b in arrays.items()) + ")"
            )
    if n_tasks is not None and t != n_tasks:
        raise ValueError(f"{where}: asked for {n_tasks} tasks, got {t}")
    for xn, yn in (("support_x", "support_y"), ("query_x", "query_y")):
        if arrays[xn].shape[1] != arrays[yn].shape[1]:
            raise ValueError(
                f"{where}: {xn} has {arrays[xn].shape[1]} points per task but {yn} has "
                f"{arrays[yn].shape[1]} (shapes {arrays[xn].shape}, {arrays[yn].shape})"
            )
    if sx.shape[2:] != qx.shape[2:]:
        raise ValueError(f"{where}: support_x has shape {sx.shape} but query_x {qx.shape}; "
                         "the input shapes after the point axis must agree")
    if sy.shape[2:] != qy.shape[2:]:
        raise ValueError(f"{where}: support_y has shape {sy.shape} but query_y {qy.shape}; "
                         "the target shapes after the point axis must agree")
    return TaskBatch(sx, sy, qx, qy, dict(batch.info))


def _interval(name: str, value: Any) -> Tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a pair (low, high), got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"{name}: expected finite low <= high, got {value!r}")
    return lo, hi


class SineTasks:
    """Sine-wave regression, the protocol of Finn et al. (2017, MAML).

    A task is ``y = A sin(x - phi)`` with amplitude ``A ~ U[0.1, 5]`` and phase
    ``phi ~ U[0, pi]``; its support and query points are drawn uniformly from ``x ~ U[-5, 5]``.

    Parameters
    ----------
    k_shot : int, default 5
        Support points per task (K).
    k_query : int, optional
        Query points per task (default K, as in MAML's training; evaluation usually uses more).
    amplitude, phase, x_range : pair of float
        The uniform ranges above.
    dtype : {np.float32, np.float64}

    Notes
    -----
    ``support_x`` has shape ``(n_tasks, k_shot, 1)``, ``support_y`` ``(n_tasks, k_shot, 1)``;
    ``info`` holds ``"amplitude"`` and ``"phase"``, each ``(n_tasks,)``. Fit with a 1-40-40-1
    ReLU network and ``loss="mse"``.
    """

    loss = "mse"

    def __init__(self, k_shot: int = 5, k_query: Optional[int] = None,
                 amplitude: Sequence[float] = (0.1, 5.0), phase: Sequence[float] = (0.0, math.pi),
                 x_range: Sequence[float] = (-5.0, 5.0), dtype: Any = np.float32) -> None:
        self.k_shot = check_int("k_shot", k_shot, 1)
        self.k_query = self.k_shot if k_query is None else check_int("k_query", k_query, 1)
        self.amplitude = _interval("amplitude", amplitude)
        self.phase = _interval("phase", phase)
        self.x_range = _interval("x_range", x_range)
        self.dtype = check_float_dtype(dtype, TypeError)

    def sample(self, n_tasks: int, rng: np.random.Generator) -> TaskBatch:
        """Draw ``n_tasks`` sine tasks (see the class notes for the shapes)."""
        n_tasks = check_int("n_tasks", n_tasks, 1)
        amp = rng.uniform(*self.amplitude, n_tasks)
        phase = rng.uniform(*self.phase, n_tasks)
        x = rng.uniform(*self.x_range, (n_tasks, self.k_shot + self.k_query, 1))
        y = amp[:, None, None] * np.sin(x - phase[:, None, None])
        x, y = x.astype(self.dtype), y.astype(self.dtype)
        k = self.k_shot
        return TaskBatch(x[:, :k], y[:, :k], x[:, k:], y[:, k:],
                         {"amplitude": amp, "phase": phase})

    def __repr__(self) -> str:
        return f"SineTasks(k_shot={self.k_shot}, k_query={self.k_query})"


class DigitsTasks:
    """N-way K-shot classification episodes from scikit-learn's 8x8 digits.

    Each episode picks ``n_way`` of the sampler's classes, gives them the labels
    ``0..n_way-1`` in a random order, and draws ``k_shot`` support and ``k_query`` query images
    of each class without replacement. Meta-train and meta-test on disjoint ``digits`` to measure
    adaptation to classes never seen in meta-training (see :meth:`split`).

    Parameters
    ----------
    n_way : int, default 5
    k_shot : int, default 1
    k_query : int, default 15
        Query images per class.
    digits : sequence of int, default (0, 1, 2, 3, 4)
        The digit classes this sampler draws from.
    rotations : sequence of int, default (0,)
        Multiples of 90 degrees; each (digit, rotation) pair is a class of its own (the class
        augmentation used for Omniglot).
    dtype : {np.float32, np.float64}

    Notes
    -----
    ``support_x`` has shape ``(n_tasks, n_way * k_shot, 64)`` with pixel values scaled to
    ``[0, 1]``; ``support_y`` ``(n_tasks, n_way * k_shot)`` integer labels. Fit with
    ``loss="cross_entropy"`` and a network with ``n_way`` outputs.

    Raises
    ------
    ValueError
        Naming the argument, if ``n_way`` exceeds the number of classes or
        ``k_shot + k_query`` the number of images of the smallest class.
    """

    loss = "cross_entropy"

    def __init__(self, n_way: int = 5, k_shot: int = 1, k_query: int = 15,
                 digits: Sequence[int] = (0, 1, 2, 3, 4), rotations: Sequence[int] = (0,),
                 dtype: Any = np.float32) -> None:
        from sklearn.datasets import load_digits

        self.n_way = check_int("n_way", n_way, 2)
        self.k_shot = check_int("k_shot", k_shot, 1)
        self.k_query = check_int("k_query", k_query, 1)
        self.digits = tuple(int(d) for d in digits)
        self.rotations = tuple(int(r) % 4 for r in rotations)
        if not self.digits or any(not 0 <= d <= 9 for d in self.digits):
            raise ValueError(f"digits: expected digits in 0..9, got {digits!r}")
        if (len(set(self.digits)) != len(self.digits) or not self.rotations
                or len(set(self.rotations)) != len(self.rotations)):
            raise ValueError("digits and rotations: expected non-empty lists without repeats "
                             f"(rotations in quarter turns, mod 4), got {digits!r}, "
                             f"{rotations!r}")
        self.dtype = check_float_dtype(dtype, TypeError)
        data = load_digits()
        images = data.images.astype(self.dtype) / self.dtype.type(16.0)
        self.classes_ = [(d, r) for d in self.digits for r in self.rotations]
        self.images_ = [np.rot90(images[data.target == d], k=r, axes=(1, 2)).reshape(-1, 64)
                        for d, r in self.classes_]
        self.counts_ = np.array([len(a) for a in self.images_])
        self._padded = np.zeros((len(self.images_), int(self.counts_.max()), 64), self.dtype)
        for c, a in enumerate(self.images_):
            self._padded[c, :len(a)] = a
        if self.n_way > len(self.classes_):
            raise ValueError(f"n_way: {self.n_way} classes per episode, but the sampler has only "
                             f"{len(self.classes_)} (digits={self.digits}, "
                             f"rotations={self.rotations})")
        smallest = min(len(a) for a in self.images_)
        if self.k_shot + self.k_query > smallest:
            raise ValueError(f"k_shot + k_query: {self.k_shot} + {self.k_query} images per class "
                             f"are needed, but the smallest class has only {smallest}")

    @classmethod
    def split(cls, n_way: int = 5, k_shot: int = 1, k_query: int = 15,
              train_digits: Sequence[int] = (0, 1, 2, 3, 4),
              test_digits: Sequence[int] = (5, 6, 7, 8, 9),
              train_rotations: Sequence[int] = (0,), dtype: Any = np.float32,
              ) -> Tuple[DigitsTasks, DigitsTasks]:
        """Meta-train and meta-test samplers on disjoint digits (test images unrotated)."""
        if set(train_digits) & set(test_digits):
            raise ValueError(f"test_digits: overlap train_digits ({train_digits} vs {test_digits})")
        return (cls(n_way, k_shot, k_query, train_digits, train_rotations, dtype),
                cls(n_way, k_shot, k_query, test_digits, (0,), dtype))

    def sample(self, n_tasks: int, rng: np.random.Generator) -> TaskBatch:
        """Draw ``n_tasks`` episodes (see the class notes for the shapes)."""
        n_tasks = check_int("n_tasks", n_tasks, 1)
        n, k, q = self.n_way, self.k_shot, self.k_query
        # classes: the n smallest of random keys per task = n distinct classes in random order
        chosen = np.argsort(rng.random((n_tasks, len(self.classes_))), axis=1)[:, :n]
        # images: the k + q smallest random keys among each chosen class's own images
        keys = rng.random((n_tasks, n, self._padded.shape[1]))
        keys[np.arange(self._padded.shape[1]) >= self.counts_[chosen][..., None]] = np.inf
        idx = np.argsort(keys, axis=2)[..., :k + q]
        cls = chosen[..., None]
        sx = self._padded[cls, idx[..., :k]].reshape(n_tasks, n * k, 64)
        qx = self._padded[cls, idx[..., k:]].reshape(n_tasks, n * q, 64)
        labels = np.broadcast_to(np.arange(n)[:, None], (n, k + q))
        sy = np.ascontiguousarray(np.broadcast_to(labels[:, :k].reshape(-1), (n_tasks, n * k)))
        qy = np.ascontiguousarray(np.broadcast_to(labels[:, k:].reshape(-1), (n_tasks, n * q)))
        return TaskBatch(sx, sy, qx, qy)

    def __repr__(self) -> str:
        return (f"DigitsTasks(n_way={self.n_way}, k_shot={self.k_shot}, k_query={self.k_query}, "
                f"digits={self.digits}, rotations={self.rotations})")
