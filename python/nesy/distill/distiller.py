"""The :class:`Distiller`: train a student on what a teacher answers."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import ClassifierTags, RegressorTags, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
from threadpoolctl import threadpool_limits

from nesy._checks import check_bool, check_int, check_seed, check_verbose
from nesy._fit import keeps_state_on_error
from nesy.distill.augment import AUGMENTATIONS, _real, augment
from nesy.distill.losses import DistillationLoss, RegressionDistillationLoss, _check_hyper
from nesy.distill.teachers import as_teacher, fitted_model, is_unfitted_estimator
from nesy.nn.activations import softmax
from nesy.nn.estimators import SOLVERS
from nesy.nn.module import Module
from nesy.nn.trainer import Trainer
from nesy.nn.trainer import predict as _predict_module

__all__ = ["Distiller", "label_indices"]


def label_indices(y: np.ndarray, classes: np.ndarray, name: str = "y") -> np.ndarray:
    """Column index in ``classes`` of every label in ``y``; ValueError naming ``name`` for a
    label that is not one of ``classes``."""
    classes = np.asarray(classes)
    y = np.asarray(y)
    order = np.argsort(classes, kind="stable")
    pos = np.searchsorted(classes[order], y)
    pos = np.clip(pos, 0, len(classes) - 1)
    bad = np.flatnonzero(classes[order][pos] != y)
    if bad.size:
        raise ValueError(f"{name}: label {y[bad[0]].tolist()!r} is not one of the teacher's "
                         f"classes {classes.tolist()}")
    return order[pos]


def _no_temperature() -> TypeError:
    return TypeError("temperature: expected a finite positive number for a classifier teacher "
                     "and a student trained on its soft targets, got None")


class Distiller(BaseEstimator):
    """Knowledge distillation from a teacher into a student (Hinton et al. 2015).

    Parameters
    ----------
    teacher : object
        Anything :func:`nesy.distill.as_teacher` accepts: a nesy network, an estimator with
        ``predict_proba`` (or a regressor), a PyTorch module, or a callable returning logits,
        probabilities or regression values. An unfitted estimator is first fitted (a clone)
        on ``(X, y)``; the distiller then is a classifier (or regressor) for scikit-learn, and
        clones and cross-validates. ``sklearn.base.clone`` unfits a fitted teacher: wrap it in
        ``sklearn.frozen.FrozenEstimator`` to keep it. A network or callable with one output
        column is a regression teacher; give a binary classifier with a single logit as
        ``as_teacher(net, output="binary_logit")`` (a regression teacher with a classifier
        student is refused). The teacher is queried once per fit (modules in evaluation mode).
    student : object
        - a :class:`nesy.nn.MLPClassifier` / :class:`~nesy.nn.MLPRegressor`: a clone is trained
          with :class:`~nesy.distill.DistillationLoss` (its own solver, epochs, ...);
        - a :class:`nesy.nn.Module`: trained *in place* with the loss, Adam-like ``solver``,
          ``learning_rate``, ``epochs`` and ``batch_size`` below, on the raw ``X``;
        - any other estimator with ``fit`` (a decision tree, a rule learner from
          :mod:`nesy.rules`, ...): a clone is fitted on the teacher's labels (hard labels, or
          values for regression) of the training and augmented rows.
    temperature : float or None, default 4.0
        Softens the teacher's and the student's class probabilities (a finite number > 0).
        None where it is unused: for a regression teacher, and for a student that is neither
        a nesy Module nor a nesy MLP (it learns the teacher's hard labels).
    alpha : float, default 0.5
        Weight of the loss on the true labels (the rest goes to the teacher's soft targets).
    t2_scaling : bool, default True
        Multiply the soft-target term by ``temperature**2``.
    augment : {None, "noise", "mixup", "both"}
        Add ``n_augment * n_samples`` synthetic rows near the data labelled by the teacher.
    n_augment : float, default 1.0
    noise_scale, mixup_alpha : float
        See :func:`nesy.distill.augment`.
    solver, learning_rate, epochs, batch_size, verbose
        Training of a :class:`nesy.nn.Module` student, checked before the teacher is fitted
        or queried (``epochs`` and ``batch_size`` ints >= 1, ``learning_rate`` a finite
        number > 0, ``verbose`` an int >= 0). The student's output count must be the
        teacher's class (or output) count: ``ValueError`` naming ``student`` before training.
    random_state : None, int >= 0 or numpy.random.Generator
        Seeds augmentation (and the training of a Module student).

    Attributes
    ----------
    teacher_model_ : object
        ``teacher``, or the fitted clone of an unfitted one.
    teacher_ : Teacher
        :func:`~nesy.distill.as_teacher` of ``teacher_model_``.
    student_ : object
        The trained student.
    classes_ : ndarray
        Classification only: the teacher's classes.
    n_augmented_ : int
    history_ : nesy.nn.History
        Module students only.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names (a DataFrame).
    """

    def __init__(self, teacher: Any, student: Any, temperature: float = 4.0,
                 alpha: float = 0.5, t2_scaling: bool = True, augment: Optional[str] = None,
                 n_augment: float = 1.0, noise_scale: float = 0.1, mixup_alpha: float = 0.4,
                 solver: str = "adam", learning_rate: float = 1e-3, epochs: int = 100,
                 batch_size: int = 32, random_state: Optional[int] = None,
                 verbose: int = 0) -> None:
        self.teacher = teacher
        self.student = student
        self.temperature = temperature
        self.alpha = alpha
        self.t2_scaling = t2_scaling
        self.augment = augment
        self.n_augment = n_augment
        self.noise_scale = noise_scale
        self.mixup_alpha = mixup_alpha
        self.solver = solver
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # y is needed to fit an unfitted teacher; a classifier / regressor teacher makes the
        # distiller one (cross-validation splits and scikit-learn's checks follow)
        tags.target_tags.required = is_unfitted_estimator(self.teacher)
        if hasattr(self.teacher, "fit") and not isinstance(self.teacher, Module):
            try:
                teacher_tags = get_tags(self.teacher)
            except (AttributeError, TypeError):  # a non-scikit-learn object with fit
                return tags
            tags.estimator_type = teacher_tags.estimator_type
            if tags.estimator_type == "classifier":
                tags.classifier_tags = ClassifierTags()
            elif tags.estimator_type == "regressor":
                tags.regressor_tags = RegressorTags()
                tags.target_tags.multi_output = teacher_tags.target_tags.multi_output
        return tags

    # ------------------------------------------------------------------ fitting
    @keeps_state_on_error
    def fit(self, X: Any, y: Any = None) -> Distiller:
        """Distil on ``X`` ``(n_samples, n_features)`` with optional true labels (or targets)
        ``y``; without ``y`` the teacher's own answers stand in for the labels (an unfitted
        teacher needs ``y``: it is fitted on it first)."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)  # a previous fit's classes_ must not outlive a regressor refit
        as_teacher(self.teacher)  # TypeError naming teacher before anything else
        if not (isinstance(self.student, Module) or hasattr(self.student, "fit")):
            raise TypeError(f"student: expected a nesy Module or an estimator with fit, got "
                            f"{type(self.student).__name__}")
        if self.augment is not None and self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment: expected None or one of {AUGMENTATIONS}, "
                             f"got {self.augment!r}")
        n_augment = _real("n_augment", self.n_augment)
        if not (np.isfinite(n_augment) and n_augment >= 0):
            raise ValueError(f"n_augment: expected a finite number >= 0, got {self.n_augment!r}")
        # before an unfitted teacher is trained; None only where the temperature is unused (a
        # regression teacher, a hard-label student), as it was before the options were checked
        _check_hyper(1.0 if self.temperature is None else self.temperature, self.alpha)
        check_bool("t2_scaling", self.t2_scaling)
        check_seed("random_state", self.random_state)
        check_verbose("verbose", self.verbose)
        if isinstance(self.student, Module):  # its training options, before the teacher works
            self._check_module_options()
        soft = isinstance(self.student, Module) or hasattr(self.student, "_fit_distilled")
        if self.temperature is None and soft and self._teacher_type() == "classifier":
            raise _no_temperature()
        if y is None:  # ValueError if the teacher must be fitted first (see __sklearn_tags__)
            X = validate_data(self, X, y, dtype=np.float64)
        else:
            X, y = validate_data(self, X, y, dtype=np.float64, multi_output=True)
        self.teacher_model_ = fitted_model(self.teacher, X, y)
        teacher = as_teacher(self.teacher_model_)
        rng = np.random.default_rng(self.random_state)
        extra = np.empty((0, X.shape[1]))
        if self.augment is not None:
            n_new = int(round(n_augment * X.shape[0]))
            extra = augment(X, self.augment, n_new, self.noise_scale, self.mixup_alpha, rng)
        X_all = np.vstack([X, extra])
        self.n_augmented_ = extra.shape[0]
        out = teacher(X_all)  # decides the teacher's kind; the only query of the teacher
        self.teacher_ = teacher
        if teacher.is_classifier and self.temperature is None and soft:  # a Module, a function
            raise _no_temperature()
        if not teacher.is_classifier and self._student_is_classifier():
            raise ValueError(
                f"teacher: gives regression values (output shape {out.shape}) but the student "
                f"is a classifier; for a binary classifier with one output logit pass "
                f"as_teacher(teacher, output='binary_logit')")
        if teacher.is_classifier:
            self._fit_classifier(X_all, teacher.logits_from(out), y, rng)
        else:
            self._fit_regressor(X_all, out, y, rng)
        return self

    def _check_module_options(self) -> None:
        """The options that train a Module student, named as ``MLPClassifier`` names them."""
        if self.solver not in SOLVERS:
            raise ValueError(f"solver: expected one of {sorted(SOLVERS)}, got {self.solver!r}")
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        lr = _real("learning_rate", self.learning_rate)
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"learning_rate: expected a finite number > 0, got "
                             f"{self.learning_rate!r}")

    def _student_is_classifier(self) -> bool:
        """Whether ``student`` is a scikit-learn classifier (from its tags)."""
        if isinstance(self.student, Module) or not hasattr(self.student, "fit"):
            return False
        try:
            return get_tags(self.student).estimator_type == "classifier"
        except (AttributeError, TypeError):  # a non-scikit-learn object with fit
            return False

    def _teacher_type(self) -> Any:
        """``"classifier"`` or ``"regressor"`` for an estimator teacher (from its tags), else
        None (a Module or a function says what it is when it is called)."""
        if hasattr(self.teacher, "fit") and not isinstance(self.teacher, Module):
            return self.__sklearn_tags__().estimator_type
        return None

    def _loss(self) -> Any:
        return DistillationLoss(self.temperature, self.alpha, self.t2_scaling)

    def _fit_classifier(self, X: np.ndarray, logits: np.ndarray, y: Any,
                        rng: np.random.Generator) -> None:
        classes = np.asarray(self.teacher_.classes)
        self.classes_ = classes
        hard = np.argmax(logits, axis=1)
        if y is not None:
            hard[: len(y)] = label_indices(column_or_1d(y, warn=True), classes)
        student = self.student
        if isinstance(student, Module):
            n = logits.shape[1]
            self._train_module(X, DistillationLoss.pack(hard, logits), self._loss(), rng, n,
                               f"the teacher has {n} classes")
        elif hasattr(student, "_fit_distilled"):
            loss = self._loss()
            self.student_ = clone(student)._fit_distilled(X, classes, loss.pack(hard, logits),
                                                          loss)
        else:  # hard labels only: the teacher's, as documented (y weighs in through alpha,
            # which only a student trained with the distillation loss has)
            self.student_ = clone(student).fit(X, classes[np.argmax(logits, axis=1)])

    def _fit_regressor(self, X: np.ndarray, out: np.ndarray, y: Any,
                       rng: np.random.Generator) -> None:
        targets = out.copy()
        if y is not None:
            y = np.asarray(y, dtype=np.float64).reshape(len(y), *out.shape[1:])
            targets[: len(y)] = y
        student = self.student
        if isinstance(student, Module):
            k = 1 if out.ndim == 1 else out.shape[1]
            packed = np.hstack([targets.reshape(-1, k), out.reshape(-1, k)])
            self._train_module(X, packed, RegressionDistillationLoss(self.alpha), rng, k,
                               f"the teacher gives {k} value{'s' if k > 1 else ''} per row")
        elif hasattr(student, "_fit_distilled"):
            self.student_ = clone(student)._fit_distilled(
                X, targets, out, RegressionDistillationLoss(self.alpha))
        else:
            self.student_ = clone(student).fit(X, out)

    def _train_module(self, X: np.ndarray, targets: np.ndarray, loss: Any,
                      rng: np.random.Generator, n_out: int, why: str) -> None:
        """Train the Module student in place; ``n_out`` is the output count the teacher needs
        (``why`` says so), checked on one row before training."""
        model = self.student
        shape = _predict_module(model, X[:1]).shape
        if len(shape) != 2 or shape[1] != n_out:
            has = f"{shape[1]} outputs" if len(shape) == 2 else f"outputs of shape {shape}"
            raise ValueError(f"student: has {has} but {why}; give the student {n_out} "
                             f"output{'s' if n_out > 1 else ''}")
        opt = SOLVERS[self.solver](model.parameters(), lr=float(self.learning_rate))
        trainer = Trainer(model, loss, opt, batch_size=int(self.batch_size),
                          epochs=int(self.epochs), seed=int(rng.integers(2**31)),
                          verbose=int(self.verbose))
        # The Module is trained in place: on an error (a diverging loss) its weights go back.
        saved = model.snapshot()
        try:
            with threadpool_limits(limits=1, user_api="blas"):  # see nesy.nn.estimators
                self.history_ = trainer.fit(X, targets)
        except Exception:
            model.restore(saved)
            raise
        model.eval()
        self.student_ = model

    # ------------------------------------------------------------------ prediction
    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "student_")
        return validate_data(self, X, reset=False, dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The student's labels (or values) for ``X`` ``(n_samples, n_features)``."""
        X = self._check_X(X)
        if isinstance(self.student_, Module):
            out = _predict_module(self.student_, X)
            if hasattr(self, "classes_"):
                return self.classes_[np.argmax(out, axis=1)]
            return out[:, 0] if out.shape[1] == 1 else out
        return self.student_.predict(X)

    def _gives_classes(self) -> bool:
        """Whether the teacher is a classifier: known after a fit, and before one from an
        estimator teacher's tags; AttributeError (``predict_proba`` is absent) if not."""
        if hasattr(self, "teacher_"):
            regressor = not hasattr(self, "classes_")
        else:
            regressor = self.__sklearn_tags__().estimator_type == "regressor"
        if regressor:
            raise AttributeError("predict_proba: the teacher is a regressor")
        return True

    @available_if(_gives_classes)
    def predict_proba(self, X: Any) -> np.ndarray:
        """The student's class probabilities ``(n_samples, n_classes)``."""
        X = self._check_X(X)
        if isinstance(self.student_, Module):
            return softmax(_predict_module(self.student_, X).astype(np.float64), axis=-1)
        # Columns in classes_ order, also when the student saw only some of the classes.
        proba = self.student_.predict_proba(X)
        seen = getattr(self.student_, "classes_", None)
        if seen is None or proba.shape[1] == len(self.classes_):
            return proba
        out = np.zeros((proba.shape[0], len(self.classes_)), np.float64)
        out[:, label_indices(np.asarray(seen), self.classes_)] = proba
        return out

    def fidelity(self, X: Any) -> float:
        """Fraction of rows where the student and the teacher agree (classification), or the
        R^2 of the student against the teacher's outputs (regression; as
        ``sklearn.metrics.r2_score``: the plain mean over the outputs of a multi-output
        teacher)."""
        pred = self.predict(X)
        ref = self.teacher_.predict(self._check_X(X))
        if hasattr(self, "classes_"):
            return float(accuracy_score(ref, pred))
        ref = np.asarray(ref, np.float64).reshape(np.shape(pred))
        return float(r2_score(ref, pred))

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (classification) or R^2 (regression) of the student on ``(X, y)``, as
        scikit-learn's classifiers and regressors score: ``accuracy_score`` and ``r2_score``
        (the plain mean over the outputs of a multi-output ``y``), with optional
        ``sample_weight`` ``(n_samples,)``."""
        pred = self.predict(X)
        y = np.asarray(y)
        if hasattr(self, "classes_"):
            return float(accuracy_score(column_or_1d(y, warn=True), pred,
                                        sample_weight=sample_weight))
        y = y.astype(np.float64).reshape(np.shape(pred))
        return float(r2_score(y, pred, sample_weight=sample_weight))
