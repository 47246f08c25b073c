"""Decompositional (DeepRED-style) rule extraction from ReLU networks, layer by layer.

DeepRED (Zilke, Loza Mencia and Janssen 2016) reads rules out of the network's own
structure instead of treating it as a black box:

1. Run the network on the training rows (plus kernel-density samples) and keep every hidden
   layer's activations ``h_1 .. h_L``.
2. Fit a CART tree from the last hidden layer ``h_L`` to the network's class: its leaves are
   rules over hidden units, ``h_L[j] > t AND ... THEN class``.
3. Every hidden term ``h_l[j] > t`` is itself learned as a shallow tree over the layer below
   (``h_{l-1}``, or the inputs for ``l = 1``); its ``True`` leaves are a DNF for the term, its
   ``False`` leaves a DNF for the negation.
4. Substitute downwards: a conjunction of terms becomes the product of their DNFs (empty
   intersections and terms that cover no row are dropped, the ``max_terms`` best-supported kept)
   until every rule is over the input features.
5. Prune and simplify as the pedagogical extractor does.

Supported networks: :class:`nesy.nn.MLPClassifier` and ``Sequential`` stacks of
:class:`~nesy.nn.Dense` / :class:`~nesy.nn.ReLU` (/ ``Dropout``) from :mod:`nesy.nn`, and
scikit-learn's ``MLPClassifier``, all with ReLU hidden layers. An unfitted ``MLPClassifier`` (and
``model=None``: a default nesy one) is first fitted on ``(X, y)``, as in
:class:`~nesy.rules.PedagogicalRuleExtractor`.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.frozen import FrozenEstimator
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from nesy._fit import keeps_state_on_error
from nesy.distill.teachers import Teacher
from nesy.nn.activations import ReLU
from nesy.nn.estimators import MLPClassifier
from nesy.nn.layers import Dense, Dropout, Sequential
from nesy.nn.module import Identity
from nesy.rules.pedagogical import RuleExtractorMixin, _held_out, _option, _rng
from nesy.rules.ruleset import Condition
from nesy.rules.simplify import Candidate, Evaluator, choose_default, prune, select_size
from nesy.rules.trees import Conj, fit_tree, merge, sample_near, tree_leaves

__all__ = ["DecompositionalRuleExtractor", "ReluNetwork", "relu_network"]

Layers = List[Tuple[np.ndarray, np.ndarray]]


class ReluNetwork:
    """A ReLU network as plain arrays: ``preprocess`` then hidden ``relu(h @ W + b)`` layers and
    a linear output layer giving ``n_classes`` logits.

    Parameters
    ----------
    layers : list of (W, b)
        ``W`` ``(n_in, n_out)``, ``b`` ``(n_out,)``; all but the last are followed by ReLU.
    classes : ndarray of shape (n_classes,)
    preprocess : callable, optional
        Applied to ``X`` first (e.g. standardisation).
    """

    def __init__(self, layers: Layers, classes: np.ndarray,
                 preprocess: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> None:
        self.layers = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in layers]
        self.classes = np.asarray(classes)
        self.preprocess = preprocess

    @property
    def n_features(self) -> int:
        """Input width of the network."""
        return int(self.layers[0][0].shape[0])

    def activations(self, X: np.ndarray) -> Tuple[List[np.ndarray], np.ndarray]:
        """Hidden activations ``[h_1 .. h_L]`` (each ``(n_samples, width)``) and the logits."""
        h = self.preprocess(X) if self.preprocess is not None else X
        hidden = []
        for W, b in self.layers[:-1]:
            h = np.maximum(h @ W + b, 0.0)
            hidden.append(h)
        W, b = self.layers[-1]
        return hidden, h @ W + b

    def logits(self, X: np.ndarray) -> np.ndarray:
        return self.activations(X)[1]


class _Standardise:
    """``(X - mean) / scale``: the input step of a nesy ``MLPClassifier`` (a class, not a
    closure, so that a fitted extractor pickles)."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray) -> None:
        self.mean = mean
        self.scale = scale

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) / self.scale


def _from_sequential(seq: Sequential) -> Layers:
    layers: Layers = []
    mods = list(seq)
    for i, m in enumerate(mods):
        if isinstance(m, Dense):
            b = m.bias if m.use_bias else np.zeros(m.out_features)
            layers.append((m.weight, b))
            rest = [r for r in mods[i + 1:] if not isinstance(r, (Dropout, Identity))]
            if rest and not isinstance(rest[0], ReLU):
                raise TypeError(f"model: layer {i} is followed by {type(rest[0]).__name__}; "
                                "decompositional extraction needs ReLU hidden layers")
        elif not isinstance(m, (ReLU, Dropout, Identity)):
            raise TypeError(f"model: unsupported layer {type(m).__name__} (Dense, ReLU and "
                            "Dropout only)")
    if not layers:
        raise TypeError("model: the Sequential has no Dense layer")
    if isinstance([m for m in mods if not isinstance(m, (Dropout, Identity))][-1], ReLU):
        # argmax of relu(z) is not argmax of z when every logit is negative
        raise TypeError("model: the output layer is followed by ReLU; decompositional "
                        "extraction needs linear logits (drop the last ReLU)")
    return layers


def relu_network(model: Any) -> ReluNetwork:
    """:class:`ReluNetwork` of a nesy ``MLPClassifier`` / ``Sequential`` or a scikit-learn
    ``MLPClassifier``, also inside a ``sklearn.frozen.FrozenEstimator``; TypeError naming
    ``model`` for anything else (also a ``Sequential`` whose logits go through a ReLU), and
    ValueError for a ``Sequential`` with a single output."""
    if isinstance(model, FrozenEstimator):
        model = model.estimator
    if isinstance(model, ReluNetwork):
        return model
    if isinstance(model, MLPClassifier):
        if model.activation != "relu" or not hasattr(model, "model_"):
            raise TypeError("model: needs a fitted MLPClassifier with activation='relu'")
        return ReluNetwork(_from_sequential(model.model_), model.classes_,
                           _Standardise(model.x_mean_, model.x_scale_))
    if isinstance(model, Sequential):
        layers = _from_sequential(model)
        if layers[-1][0].shape[1] < 2:
            raise ValueError("model: the Sequential has one output, a regression value or a "
                             "single binary logit; rule extraction needs one logit per class "
                             "(two for a binary classifier)")
        return ReluNetwork(layers, np.arange(layers[-1][0].shape[1]))
    if isinstance(model, SkMLPClassifier) and not hasattr(model, "coefs_"):
        raise TypeError("model: needs a fitted scikit-learn MLPClassifier")
    if hasattr(model, "coefs_") and hasattr(model, "intercepts_"):
        if getattr(model, "activation", None) != "relu":
            raise TypeError("model: scikit-learn MLP must use activation='relu'")
        layers = list(zip(model.coefs_, model.intercepts_))
        if layers[-1][0].shape[1] == 1:  # binary logistic output: logits (0, z)
            W, b = layers[-1]
            layers[-1] = (np.hstack([np.zeros_like(W), W]), np.concatenate([[0.0], b]))
        return ReluNetwork(layers, model.classes_)
    raise TypeError(f"model: expected a ReLU MLPClassifier (nesy or scikit-learn) or a nesy "
                    f"Sequential of Dense/ReLU layers, got {type(model).__name__}")


class DecompositionalRuleExtractor(RuleExtractorMixin, BaseEstimator):
    """DeepRED-style rule extraction from a ReLU network (see the module docstring).

    Parameters
    ----------
    model : object, optional
        A ReLU network (see :func:`relu_network`). An unfitted ``MLPClassifier`` is first
        fitted (a clone) on ``(X, y)``; None fits a nesy
        ``MLPClassifier(activation="relu", random_state=random_state)``.
    max_rules : int, default 10
    max_rule_length : int, optional
        As :class:`~nesy.rules.PedagogicalRuleExtractor`.
    max_output_leaves : int, optional
        Largest output-layer tree tried; default ``2 * max_rules + 2``.
    term_depth : int, default 3
        Depth of the tree learned for each hidden term.
    max_terms : int, default 32
        Conjunctions kept after each substitution step (the best-supported); the
        ``4 * max_rules`` most precise input-level rules go on to pruning.
    n_synthetic, bandwidth, prune_tolerance, validation_fraction, size_selection, random_state
        As :class:`~nesy.rules.PedagogicalRuleExtractor`.

    Attributes
    ----------
    ruleset_, classes_, model_, fidelity_, n_rules_, feature_names_, n_features_in_
        As :class:`~nesy.rules.PedagogicalRuleExtractor`.
    network_ : ReluNetwork
    n_terms_ : int
        Hidden terms that were learned as trees.
    """

    def __init__(self, model: Any = None, max_rules: int = 10,
                 max_rule_length: Optional[int] = None,
                 max_output_leaves: Optional[int] = None, term_depth: int = 3,
                 max_terms: int = 32, n_synthetic: float = 5.0, bandwidth: float = 0.1,
                 prune_tolerance: float = 0.0, validation_fraction: float = 0.25,
                 size_selection: str = "best", random_state: Optional[int] = None) -> None:
        self.model = model
        self.max_rules = max_rules
        self.max_rule_length = max_rule_length
        self.max_output_leaves = max_output_leaves
        self.term_depth = term_depth
        self.max_terms = max_terms
        self.n_synthetic = n_synthetic
        self.bandwidth = bandwidth
        self.prune_tolerance = prune_tolerance
        self.validation_fraction = validation_fraction
        self.size_selection = size_selection
        self.random_state = random_state

    @keeps_state_on_error
    def fit(self, X: Any, y: Any = None, feature_names: Optional[Sequence[str]] = None
            ) -> DecompositionalRuleExtractor:
        """Extract rules from ``model`` using rows ``X`` ``(n_samples, n_features)``; labels
        ``y`` ``(n_samples,)`` fit an unfitted ``model`` (and are only validated otherwise).
        ``feature_names`` name the columns in the rules (default: a DataFrame's column names,
        else ``x0, x1, ...``)."""
        self._check_common_options()
        _option(self, "max_output_leaves", 2, integer=True, optional=True)
        _option(self, "term_depth", 1, integer=True)
        _option(self, "max_terms", 1, integer=True)
        rng = _rng(self.random_state)  # checked before any work
        X, y = self._validate(X, y, feature_names)
        net = relu_network(self.model_)
        if X.shape[1] != net.n_features:
            raise ValueError(f"X: has {X.shape[1]} features, the model takes {net.n_features}")
        self.network_ = net
        _, classes = self._prepare(X, y, Teacher(net.logits, "logits", net.classes))
        extra = sample_near(X, int(round(float(self.n_synthetic) * len(X))),
                            float(self.bandwidth), rng)
        S = np.vstack([X, extra])
        hidden, logits = net.activations(S)
        SL = np.argmax(logits, axis=1).astype(np.intp)
        reps = [S, *hidden]  # reps[l] is the input of layer l + 1
        n_val = _held_out(float(self.validation_fraction), len(S))
        perm = rng.permutation(len(S))
        fit_idx, val_idx = perm[n_val:], perm[:n_val]
        if not n_val:
            val_idx = fit_idx
        self._terms: Dict[Tuple[int, int, float], Tuple[List[Conj], List[Conj]]] = {}
        biggest = int(self.max_output_leaves or 2 * int(self.max_rules) + 2)
        evs = [Evaluator(r[fit_idx], SL[fit_idx]) for r in reps]
        self.tree_size_ = select_size(range(2, biggest + 1),
                                      lambda k: self._candidate(evs, k, len(classes)),
                                      Evaluator(S[val_idx], SL[val_idx]),
                                      self.size_selection)
        self._terms = {}
        evs = [Evaluator(r, SL) for r in reps]
        rules, default = self._candidate(evs, self.tree_size_, len(classes))
        self.n_terms_ = len(self._terms)
        self._finish(rules, default, S, SL, classes,
                     {"method": "decompositional", "output_leaves": self.tree_size_})
        return self

    def _default_model(self) -> Any:
        return MLPClassifier(activation="relu", random_state=self.random_state)

    # ------------------------------------------------------------------ internals
    def _candidate(self, evs: List[Evaluator], leaves: int,
                   n_classes: int) -> Tuple[List[Candidate], int]:
        """Input-level decision list for an output tree of ``leaves`` leaves; ``evs[l]``
        scores conjunctions over ``reps[l]`` (the inputs for ``l = 0``)."""
        top = len(evs) - 1
        tree = fit_tree(evs[top].X, evs[top].labels, max_leaf_nodes=leaves, random_state=0)
        cands: List[Candidate] = []
        for _, conds, w in tree_leaves(tree):
            label = int(tree.classes_[np.argmax(w)])
            for conj in self._expand(conds, top, evs):
                cands.append((conj, label))
        # order overlapping rules: most precise first, then the best supported
        ev = evs[0]
        stats = []
        for r, lab in cands:
            m = ev.mask(r)
            sup = int(np.count_nonzero(m))
            stats.append((-(np.mean(ev.labels[m] == lab) if sup else 0.0), -sup))
        order = sorted(range(len(cands)), key=lambda i: stats[i])
        cands = [cands[i] for i in order if stats[i][1] < 0][: 4 * int(self.max_rules)]
        rules, default = choose_default(cands, ev.labels, n_classes)
        return prune(rules, default, ev, int(self.max_rules), float(self.prune_tolerance),
                     self.max_rule_length), default

    def _expand(self, conj: Conj, layer: int, evs: List[Evaluator]) -> List[Conj]:
        """Rewrite a conjunction over ``reps[layer]`` units as conjunctions over the inputs."""
        terms: List[Conj] = [conj]
        for lay in range(layer, 0, -1):
            below = evs[lay - 1]
            new: List[Conj] = []
            for t in terms:
                product: List[Conj] = [()]
                for c in t:
                    dnf = self._term(lay, c, evs)
                    product = self._keep([m for a in product for b in dnf
                                          if (m := merge(a + b)) is not None], below)
                new.extend(product)
            terms = self._keep(new, below)
        return terms

    def _term(self, layer: int, c: Condition, evs: List[Evaluator]) -> List[Conj]:
        """DNF over ``reps[layer - 1]`` for the hidden condition ``c`` on ``reps[layer]``."""
        key = (layer, c.feature, c.threshold)
        if key not in self._terms:
            target = evs[layer].X[:, c.feature] > c.threshold
            if target.all() or not target.any():
                true_dnf: List[Conj] = [()] if target.all() else []
                false_dnf: List[Conj] = [] if target.all() else [()]
            else:
                tree = fit_tree(evs[layer - 1].X, target, max_depth=int(self.term_depth),
                                random_state=0)
                true_dnf, false_dnf = [], []
                for _, conds, w in tree_leaves(tree):
                    (true_dnf if tree.classes_[np.argmax(w)] else false_dnf).append(conds)
            self._terms[key] = (true_dnf, false_dnf)
        true_dnf, false_dnf = self._terms[key]
        return true_dnf if c.op == ">" else false_dnf

    def _keep(self, conjs: List[Conj], ev: Evaluator) -> List[Conj]:
        """Distinct conjunctions covering at least one row, the ``max_terms`` best-supported."""
        conjs = list(dict.fromkeys(conjs))
        if not conjs:
            return []
        support = np.array([ev.support(c) for c in conjs])
        order = np.argsort(-support, kind="stable")[: int(self.max_terms)]
        return [conjs[i] for i in order if support[i] > 0]
