"""Teacher adapters: one interface over nesy networks, scikit-learn estimators and callables.

:func:`as_teacher` wraps

- a :class:`nesy.nn.Module` (its outputs are logits, or values for regression);
- any estimator with ``predict_proba`` (scikit-learn, :class:`nesy.nn.MLPClassifier`, ...);
- a scikit-learn regressor (``predict``);
- a PyTorch ``nn.Module`` (run without gradients on a tensor of the dtype and device of its
  first parameter, float32 when it has none);
- any callable ``f(X) -> ndarray`` returning logits or probabilities ``(n_samples, n_classes)``
  or regression values ``(n_samples,)``/``(n_samples, n_outputs)``.

Probabilities become logits as ``log p`` (clipped at ``1e-12``), so every classification teacher
answers :meth:`Teacher.logits`.

One output column is never read as a softmax over one class (that would be constant): by default
(``output="auto"``) a 1-D output or a single column is regression values, so a nesy or PyTorch
network ending in ``Dense(h, 1)`` / ``Linear(h, 1)`` is a regression teacher. A binary classifier
with a single logit ``z`` (``P(class 1) = sigmoid(z)``) must say so with
``as_teacher(model, output="binary_logit")`` (logits ``[0, z]``, classes ``[0, 1]``), or
``output="binary_proba"`` when the column is ``P(class 1)``.

Modules are queried as oracles: every submodule of a nesy or PyTorch module runs in evaluation
mode (no dropout, BatchNorm running statistics used and left unchanged) and gets its own
previous mode back afterwards.

An estimator that is not fitted yet is trained first: :func:`fitted_model` returns a clone
fitted on the training rows (so ``sklearn.base.clone`` of a distiller or rule extractor, which
unfits its model, gives an estimator that refits it, as cross-validation needs). Wrap an
already fitted model in ``sklearn.frozen.FrozenEstimator`` to keep it through clones.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
from sklearn.base import clone, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from nesy.nn.module import Module
from nesy.nn.trainer import predict as _predict_module

__all__ = ["Teacher", "as_teacher", "fitted_model", "is_unfitted_estimator"]

_KINDS = ("logits", "proba", "values", "binary_logit", "binary_proba")
_BINARY = ("binary_logit", "binary_proba")


class Teacher:
    """A model queried as a teacher (or as the network rules are extracted from).

    Parameters
    ----------
    fn : callable
        ``fn(X) -> ndarray`` for ``X`` ``(n_samples, n_features)``.
    kind : {"auto", "logits", "proba", "values", "binary_logit", "binary_proba"}
        What ``fn`` returns:

        - ``"logits"`` / ``"proba"``: class scores / probabilities ``(n_samples, n_classes)``,
          at least two columns (one column only with ``classes`` of one label, a one-class
          estimator);
        - ``"values"``: regression values ``(n_samples,)`` or ``(n_samples, n_outputs)``;
        - ``"binary_logit"``: a binary classifier's single logit ``z`` per row, ``(n_samples,)``
          or ``(n_samples, 1)``, read as the logits ``[0, z]`` (class 1 when ``z > 0``);
        - ``"binary_proba"``: the probability ``p`` of class 1, shaped the same, read as the
          probabilities ``[1 - p, p]``;
        - ``"auto"`` decides on the first call: 1-D output or a single column is regression
          values, rows of non-negative numbers summing to one are probabilities, anything else
          logits.
    classes : array-like of shape (n_classes,), optional
        Labels of the output columns (default ``0 .. n_classes - 1``; ``[0, 1]`` for the
        binary kinds).
    """

    def __init__(self, fn: Callable[[np.ndarray], Any], kind: str = "auto",
                 classes: Optional[Any] = None) -> None:
        if not callable(fn):
            raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
        if kind not in (*_KINDS, "auto"):
            raise ValueError(f"kind: expected one of {(*_KINDS, 'auto')}, got {kind!r}")
        self.fn = fn
        self.kind = kind
        self.classes = None if classes is None else np.asarray(classes)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Raw output of the wrapped model for ``X``, as a float64 array."""
        out = np.asarray(self.fn(X), dtype=np.float64)
        if out.ndim not in (1, 2) or out.shape[0] != len(X):
            raise ValueError(f"teacher: returned shape {out.shape} for {len(X)} rows; expected "
                             "(n_samples,) or (n_samples, n_outputs)")
        if not np.all(np.isfinite(out)):
            raise ValueError("teacher: returned NaN or infinity")
        if self.kind == "auto":
            self.kind = _guess_kind(out)
        if self.kind in _BINARY:
            if out.ndim == 2 and out.shape[1] != 1:
                raise ValueError(f"teacher: kind {self.kind!r} expects one score per row, "
                                 f"(n_samples,) or (n_samples, 1); got shape {out.shape}")
            if self.kind == "binary_proba" and (np.any(out < 0) or np.any(out > 1)):
                raise ValueError("teacher: kind 'binary_proba' expects probabilities in [0, 1]")
            if self.classes is None:
                self.classes = np.arange(2)
        elif self.kind != "values":
            one_class = self.classes is not None and len(self.classes) == 1
            if out.ndim != 2 or (out.shape[1] == 1 and not one_class):
                raise ValueError(
                    f"teacher: kind {self.kind!r} needs one column per class, got shape "
                    f"{out.shape}; a single column is not a softmax over classes: pass "
                    f"output='binary_logit' (or 'binary_proba') for a binary classifier with "
                    f"one output, or output='values' for regression")
            if self.classes is None:
                self.classes = np.arange(out.shape[1])
        return out

    @property
    def is_classifier(self) -> bool:
        """Whether the teacher gives class scores (known after the first call unless set)."""
        return self.kind in ("logits", "proba", *_BINARY)

    def _columns(self, out: np.ndarray) -> np.ndarray:
        """One column per class of a raw output: logits or probabilities."""
        if self.kind == "values":
            raise ValueError("teacher: gives regression values, not class scores")
        if self.kind == "binary_logit":
            z = out.reshape(-1)
            return np.column_stack([np.zeros_like(z), z])
        if self.kind == "binary_proba":
            p = out.reshape(-1)
            return np.column_stack([1.0 - p, p])
        return out

    def logits_from(self, out: np.ndarray) -> np.ndarray:
        """Class logits ``(n_samples, n_classes)`` of a raw output ``out = teacher(X)`` (so
        one query of the teacher gives both)."""
        cols = self._columns(out)
        if self.kind in ("proba", "binary_proba"):
            return np.log(np.clip(cols, 1e-12, None))
        return cols

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Class logits ``(n_samples, n_classes)`` (``log p`` for a probability teacher,
        ``[0, z]`` for a binary one-logit teacher)."""
        return self.logits_from(self(X))

    def values(self, X: np.ndarray) -> np.ndarray:
        """Regression outputs ``(n_samples,)`` or ``(n_samples, n_outputs)``."""
        out = self(X)
        if self.kind != "values":
            raise ValueError("teacher: gives class scores, not regression values")
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The teacher's labels (argmax mapped to :attr:`classes`) or regression values."""
        out = self(X)
        if self.kind == "values":
            return out
        assert self.classes is not None
        cols = self._columns(out)
        if len(self.classes) != cols.shape[1]:
            raise ValueError(f"teacher: {cols.shape[1]} output columns but "
                             f"{len(self.classes)} classes")
        return self.classes[np.argmax(cols, axis=1)]

    def __repr__(self) -> str:
        return f"Teacher(kind={self.kind!r}, fn={self.fn!r})"


def _guess_kind(out: np.ndarray) -> str:
    # one column is regression: a softmax over a single column is constant, so it is never
    # class scores (a binary classifier with one logit passes kind "binary_logit")
    if out.ndim == 1 or out.shape[1] == 1:
        return "values"
    sums = out.sum(axis=1)
    if np.all(out >= 0) and np.all(out <= 1) and np.allclose(sums, 1.0, atol=1e-4):
        return "proba"
    return "logits"


def _is_torch_module(obj: Any) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module"
               for c in type(obj).__mro__)


def _torch_fn(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    def run(X: np.ndarray) -> np.ndarray:
        # The dtype and device of the module's first parameter (float32 on the CPU when it
        # has none): a float64 module refuses float32 input.
        first = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
        dtype = torch.float32 if first is None else first.dtype
        device = None if first is None else first.device
        x = torch.as_tensor(np.asarray(X, np.float64), dtype=dtype, device=device)
        # An oracle: evaluation mode (deterministic dropout, BatchNorm statistics untouched),
        # then every submodule's own mode back, also after an error.
        modes = [(m, m.training) for m in model.modules()] if hasattr(model, "modules") else []
        if modes:
            model.eval()
        try:
            with torch.no_grad():
                return model(x).detach().cpu().numpy()
        finally:
            for m, training in modes:
                m.training = training

    return run


def _is_regressor(obj: Any) -> bool:
    if not hasattr(obj, "fit"):
        return False  # plain callables (bound methods, functions) are not estimators
    try:
        return bool(is_regressor(obj))
    except (AttributeError, TypeError):
        return getattr(obj, "_estimator_type", None) == "regressor"


def as_teacher(teacher: Any, output: str = "auto") -> Teacher:
    """Wrap ``teacher`` in a :class:`Teacher` (see the module docstring for what is accepted).

    Parameters
    ----------
    teacher : object
    output : {"auto", "logits", "proba", "values", "binary_logit", "binary_proba"}
        What a callable (or nesy / PyTorch module) returns (see :class:`Teacher`'s ``kind``);
        estimators are recognised by their methods and ignore it, as does a :class:`Teacher`.
        With ``"auto"`` one output column is regression values: a binary classifier with a
        single logit needs ``"binary_logit"`` (``"binary_proba"`` for ``P(class 1)``).

    Raises
    ------
    TypeError
        When ``teacher`` has neither ``predict_proba`` (nor ``predict`` as a regressor) nor a
        callable interface.
    """
    if output not in (*_KINDS, "auto"):
        raise ValueError(f"output: expected one of {(*_KINDS, 'auto')}, got {output!r}")
    if isinstance(teacher, Teacher):
        return teacher
    if isinstance(teacher, Module):
        return Teacher(lambda X: _predict_module(teacher, X), output)
    if hasattr(teacher, "predict_proba") and not _is_regressor(teacher):
        return Teacher(teacher.predict_proba, "proba", getattr(teacher, "classes_", None))
    if _is_regressor(teacher) and hasattr(teacher, "predict"):
        return Teacher(teacher.predict, "values")
    if _is_torch_module(teacher):
        return Teacher(_torch_fn(teacher), output)
    if callable(teacher):
        return Teacher(teacher, output)
    raise TypeError(
        f"teacher: expected a nesy Module, an estimator with predict_proba, a regressor, or a "
        f"callable returning logits or probabilities; got {type(teacher).__name__} with none "
        f"of these"
    )


def is_unfitted_estimator(model: Any) -> bool:
    """Whether ``model`` is an estimator (it has ``fit``; nesy Modules, PyTorch modules and
    plain callables are used as they are) that ``check_is_fitted`` finds unfitted."""
    if model is None or isinstance(model, Module) or not hasattr(model, "fit"):
        return False
    try:
        check_is_fitted(model)
    except NotFittedError:
        return True
    except TypeError:  # fit is not an estimator's (check_is_fitted refuses the object)
        return False
    return False


def fitted_model(model: Any, X: np.ndarray, y: Any) -> Any:
    """``model`` itself, or for an unfitted estimator a clone fitted on ``X``
    ``(n_samples, n_features)`` and ``y`` ``(n_samples,)`` (``model`` is left as it is)."""
    return clone(model).fit(X, y) if is_unfitted_estimator(model) else model
