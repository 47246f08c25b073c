"""Pedagogical (TREPAN-style) rule extraction: treat the model as an oracle.

1. Query the model on the training rows plus synthetic rows from a kernel density estimate of
   them; then, for a few rounds, fit a CART tree to the answers and add TREPAN-style rows
   (:func:`~nesy.rules.trees.sample_in_boxes`) to every leaf with fewer than
   ``min_leaf_samples`` rows, so sparse regions get answers too.
2. For each tree size, turn the leaves into rules, choose the default class, prune
   conditions and rules that do not lower fidelity and cap the count at ``max_rules``; keep the
   size with the best fidelity on a held-out part of the oracle's answers, then redo it on all
   of them.
3. Round thresholds to short numbers where no row changes side.

With ``model=None`` the extractor is a plain rule learner on ``y`` (a student for
:class:`nesy.distill.Distiller`). An unfitted estimator as ``model`` is first fitted (a clone) on
``(X, y)``, so the extractor is a scikit-learn classifier that clones, cross-validates and
passes ``check_estimator``; a fitted model is used as it is (``y`` is then only validated).
``sklearn.base.clone`` unfits a fitted model: wrap it in ``sklearn.frozen.FrozenEstimator`` to
keep it.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from nesy._fit import keeps_state_on_error
from nesy.distill.teachers import Teacher, as_teacher, fitted_model, is_unfitted_estimator
from nesy.rules.ruleset import RuleSet, check_feature_names
from nesy.rules.simplify import (
    Candidate,
    Evaluator,
    build_ruleset,
    choose_default,
    prune,
    round_thresholds,
    select_size,
)
from nesy.rules.trees import box, fit_tree, sample_in_boxes, sample_near, tree_leaves

__all__ = ["PedagogicalRuleExtractor", "RuleExtractorMixin"]


def _option(est: Any, name: str, low: float, integer: bool = False,
            optional: bool = False) -> Any:
    """``est.<name>`` checked: a finite number >= ``low`` (an int when ``integer``; None when
    ``optional``); ValueError naming the option otherwise."""
    v = getattr(est, name)
    if v is None and optional:
        return None
    ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    ok = ok and math.isfinite(float(v)) and float(v) >= low
    if ok and integer:
        ok = float(v).is_integer()
    if not ok:
        kind = "an int" if integer else "a finite number"
        raise ValueError(f"{name}: expected {kind} >= {low:g}"
                         f"{' or None' if optional else ''}, got {v!r}")
    return int(v) if integer else float(v)


def _rng(random_state: Any) -> np.random.Generator:
    """The generator of ``random_state``, which takes what scikit-learn's
    ``check_random_state`` takes: None (fresh entropy), an int >= 0 (a seed), a
    ``np.random.RandomState`` (a seed drawn from it, so it advances) or a
    ``np.random.Generator`` (used as it is). Anything else is a ValueError naming
    ``random_state``, as scikit-learn's (``"x"`` used to fail inside NumPy's ``SeedSequence``)."""
    if random_state is None or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    if (isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool)
            and random_state >= 0):
        return np.random.default_rng(int(random_state))
    raise ValueError(f"random_state: expected None, an int >= 0, a "
                     f"np.random.RandomState or a np.random.Generator, got "
                     f"{type(random_state).__name__} {random_state!r}")


def _held_out(fraction: float, n: int) -> int:
    """Rows held out to choose the tree size: the fraction, but at least 2 rows stay to fit."""
    return min(int(round(fraction * n)), max(n - 2, 0))


class RuleExtractorMixin(ClassifierMixin):
    """``predict`` / ``predict_proba`` / ``fidelity`` through the fitted ``ruleset_`` and the
    oracle-querying steps both extractors share."""

    def _check_common_options(self) -> None:
        """The options both extractors take (ValueError naming the option)."""
        _option(self, "max_rules", 1, integer=True)
        _option(self, "n_synthetic", 0)
        _option(self, "bandwidth", 0)
        _option(self, "prune_tolerance", 0)
        _option(self, "max_rule_length", 1, integer=True, optional=True)
        if not 0.0 <= _option(self, "validation_fraction", 0) < 1.0:
            raise ValueError(f"validation_fraction: expected a number in [0, 1), got "
                             f"{self.validation_fraction!r}")  # type: ignore[attr-defined]

    ruleset_: RuleSet
    teacher_: Optional[Teacher]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        # y is needed to learn rules without a model, or to fit an unfitted one first
        model = getattr(self, "model", None)
        tags.target_tags.required = model is None or is_unfitted_estimator(model)
        return tags

    def _validate(self, X: Any, y: Any, feature_names: Optional[Sequence[str]]
                  ) -> Tuple[np.ndarray, Any]:
        """Validated ``X`` and ``y`` (``y`` is checked whenever given, but only used without a
        model or to fit an unfitted one); sets ``n_features_in_``, ``feature_names_`` and
        ``model_``."""
        kw = dict(dtype=np.float64, ensure_min_samples=2)
        if y is not None or self.__sklearn_tags__().target_tags.required:
            X, y = validate_data(self, X, y, **kw)  # type: ignore[arg-type]
            check_classification_targets(y)
        else:
            X = validate_data(self, X, **kw)  # type: ignore[arg-type]
        if feature_names is None and hasattr(self, "feature_names_in_"):
            feature_names = list(self.feature_names_in_)  # a DataFrame's column names
        self.feature_names_ = check_feature_names(feature_names, X.shape[1])
        model = getattr(self, "model", None)
        if model is None:
            model = self._default_model()
        self.model_ = None if model is None else fitted_model(model, X, y)
        return X, y

    def _default_model(self) -> Any:
        """The model used when ``model`` is None (None: rules are learned from ``y``)."""
        return None

    def _prepare(self, X: np.ndarray, y: Any, model: Any
                 ) -> Tuple[np.ndarray, np.ndarray]:
        """The reference labels of validated ``X`` (the model's, or ``y`` when ``model`` is
        None) as indices into the classes, and the classes."""
        if model is None:
            self.teacher_ = None
            classes, idx = np.unique(y, return_inverse=True)
            self.classes_ = classes
            return idx.astype(np.intp), classes
        teacher = as_teacher(model)
        teacher(X[:1])
        if not teacher.is_classifier:
            raise ValueError("model: rule extraction needs a classifier (logits or "
                             "probabilities), the model gives regression values; for a binary "
                             "classifier with one output logit pass "
                             "as_teacher(model, output='binary_logit')")
        self.teacher_ = teacher
        self.classes_ = np.asarray(teacher.classes)
        return self._oracle(X), self.classes_

    def _oracle(self, X: np.ndarray) -> np.ndarray:
        """The model's labels of ``X`` as indices into ``classes_`` (an empty block, as
        ``n_synthetic=0`` gives, is not asked: many models refuse 0 rows)."""
        assert self.teacher_ is not None
        if X.shape[0] == 0:
            return np.zeros(0, dtype=np.intp)
        return np.argmax(self.teacher_.logits(X), axis=1).astype(np.intp)

    def _finish(self, rules: List[Candidate], default: int, S: np.ndarray,
                L: np.ndarray, classes: np.ndarray, metadata: dict) -> None:
        rules = round_thresholds(rules, S)
        self.ruleset_ = build_ruleset(rules, default, S, L, classes, self.feature_names_,
                                      metadata)
        self.n_rules_ = self.ruleset_.n_rules
        self.fidelity_ = Evaluator(S, L).fidelity(
            [(r.conditions, r.label) for r in self.ruleset_.rules], self.ruleset_.default.label)

    def _check_X(self, X: Any) -> np.ndarray:
        """Validated ``X`` of a fitted extractor (checks the feature count)."""
        check_is_fitted(self, "ruleset_")
        return validate_data(self, X, reset=False, dtype=np.float64)  # type: ignore[arg-type]

    def predict(self, X: Any) -> np.ndarray:
        """Labels of the rule list, ``(n_samples,)``."""
        X = self._check_X(X)
        return self.ruleset_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the deciding rules, ``(n_samples, n_classes)``."""
        X = self._check_X(X)
        return self.ruleset_.predict_proba(X)

    def fidelity(self, X: Any) -> float:
        """Agreement of the rules with the model on ``X`` ``(n_samples, n_features)``."""
        X = self._check_X(X)
        if self.teacher_ is None:
            raise ValueError("fidelity: no model was given (the rules were learned from y)")
        return self.ruleset_.fidelity(X, self.teacher_.predict(X))


class PedagogicalRuleExtractor(RuleExtractorMixin, BaseEstimator):
    """TREPAN-style rule extraction with scikit-learn's CART (see the module docstring).

    Parameters
    ----------
    model : object, optional
        The network (anything :func:`nesy.distill.as_teacher` accepts: a nesy network or
        estimator, an estimator with ``predict_proba``, a PyTorch module, a callable). An
        unfitted estimator is first fitted (a clone) on ``(X, y)``. None learns rules from
        ``y`` directly. A network with one output column is a regressor and is refused; a
        binary classifier with a single logit is given as
        ``as_teacher(net, output="binary_logit")``.
    max_rules : int, default 10
        Upper bound on the number of rules (besides the default rule).
    max_rule_length : int, optional
        Upper bound on the conditions of one rule.
    n_synthetic : float, default 5.0
        Synthetic rows from the kernel density estimate, as a multiple of the training rows.
    sampling_rounds : int, default 2
        Rounds of TREPAN sampling into sparse leaves.
    min_leaf_samples : int, default 30
        A leaf with fewer oracle answers gets synthetic rows up to this count.
    bandwidth : float, default 0.1
        Kernel width as a fraction of each feature's standard deviation.
    max_leaf_nodes : int, optional
        Largest tree tried; default ``3 * max_rules + 2``.
    prune_tolerance : float, default 0.0
        Fidelity a single pruning step may cost.
    validation_fraction : float, default 0.25
        Oracle answers held out to choose the tree size.
    size_selection : {"best", "1se"}, default "best"
        Tree size with the best held-out fidelity, or the fewest rules within one standard
        error of it (see :func:`nesy.rules.simplify.select_size`).
    random_state : int, RandomState or Generator, optional
        Seeds the synthetic rows and the held-out split (see scikit-learn's
        ``check_random_state``; a ``np.random.Generator`` is taken too).

    Attributes
    ----------
    ruleset_ : RuleSet
    classes_ : ndarray
    model_ : object or None
        The model the rules imitate: ``model``, or the fitted clone of an unfitted one.
    teacher_ : Teacher or None
    fidelity_ : float
        Fidelity on the training and synthetic rows.
    n_rules_ : int
    n_queries_ : int
        Rows the model was asked about.
    feature_names_ : list of str
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names (a DataFrame).
    """

    def __init__(self, model: Any = None, max_rules: int = 10,
                 max_rule_length: Optional[int] = None, n_synthetic: float = 5.0,
                 sampling_rounds: int = 2, min_leaf_samples: int = 30, bandwidth: float = 0.1,
                 max_leaf_nodes: Optional[int] = None, prune_tolerance: float = 0.0,
                 validation_fraction: float = 0.25, size_selection: str = "best",
                 random_state: Optional[int] = None) -> None:
        self.model = model
        self.max_rules = max_rules
        self.max_rule_length = max_rule_length
        self.n_synthetic = n_synthetic
        self.sampling_rounds = sampling_rounds
        self.min_leaf_samples = min_leaf_samples
        self.bandwidth = bandwidth
        self.max_leaf_nodes = max_leaf_nodes
        self.prune_tolerance = prune_tolerance
        self.validation_fraction = validation_fraction
        self.size_selection = size_selection
        self.random_state = random_state

    def _check_params(self) -> int:
        self._check_common_options()
        _option(self, "sampling_rounds", 0, integer=True)
        _option(self, "min_leaf_samples", 0, integer=True)
        biggest = _option(self, "max_leaf_nodes", 2, integer=True, optional=True)
        return int(biggest or 3 * int(self.max_rules) + 2)

    def _query_set(self, X: np.ndarray, L: np.ndarray, biggest: int,
                   rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """Training rows plus synthetic rows (kernel density, then TREPAN rounds), labelled."""
        if self.teacher_ is None:
            return X, L
        extra = sample_near(X, int(round(float(self.n_synthetic) * len(X))),
                            float(self.bandwidth), rng)
        S, SL = np.vstack([X, extra]), np.concatenate([L, self._oracle(extra)])
        for _ in range(int(self.sampling_rounds)):
            tree = fit_tree(S, SL, max_leaf_nodes=biggest, random_state=0)
            have = np.bincount(tree.apply(S), minlength=tree.tree_.node_count)
            leaves = tree_leaves(tree)
            need = [max(int(self.min_leaf_samples) - int(have[node]), 0)
                    for node, _, _ in leaves]
            if not any(need):
                break
            boxes = [box(conds, X.shape[1]) for _, conds, _ in leaves]
            new = sample_in_boxes(X, boxes, need, float(self.bandwidth), rng)
            S, SL = np.vstack([S, new]), np.concatenate([SL, self._oracle(new)])
        return S, SL

    @keeps_state_on_error
    def fit(self, X: Any, y: Any = None,
            feature_names: Optional[Sequence[str]] = None) -> PedagogicalRuleExtractor:
        """Extract rules from ``model`` on ``X`` ``(n_samples, n_features)`` (or learn them from
        labels ``y`` ``(n_samples,)`` when ``model`` is None; ``y`` also fits an unfitted
        ``model``). ``feature_names`` name the columns in the rules (default: a DataFrame's column
        names, else ``x0, x1, ...``)."""
        biggest = self._check_params()
        rng = _rng(self.random_state)  # checked before any work
        X, y = self._validate(X, y, feature_names)
        L, classes = self._prepare(X, y, self.model_)
        S, SL = self._query_set(X, L, biggest, rng)
        self.n_queries_ = len(S) if self.teacher_ is not None else 0
        n_val = _held_out(float(self.validation_fraction), len(S))
        perm = rng.permutation(len(S))
        fit_idx, val_idx = perm[n_val:], perm[:n_val]
        if not n_val:
            val_idx = fit_idx
        ev_fit = Evaluator(S[fit_idx], SL[fit_idx])
        self.tree_size_ = select_size(range(2, biggest + 1),
                                      lambda k: self._candidate(ev_fit, k, len(classes)),
                                      Evaluator(S[val_idx], SL[val_idx]),
                                      self.size_selection)
        rules, default = self._candidate(Evaluator(S, SL), self.tree_size_, len(classes))
        self._finish(rules, default, S, SL, classes,
                     {"method": "pedagogical", "tree_leaves": self.tree_size_})
        return self

    def _candidate(self, ev: Evaluator, leaves: int,
                   n_classes: int) -> Tuple[List[Candidate], int]:
        tree = fit_tree(ev.X, ev.labels, max_leaf_nodes=leaves, random_state=0)
        cands = [(conds, int(tree.classes_[np.argmax(w)])) for _, conds, w in tree_leaves(tree)]
        rules, default = choose_default(cands, ev.labels, n_classes)
        return prune(rules, default, ev, int(self.max_rules), float(self.prune_tolerance),
                     self.max_rule_length), default

