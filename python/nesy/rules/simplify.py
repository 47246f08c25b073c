"""From candidate rules to a small :class:`~nesy.rules.ruleset.RuleSet`: choose the default
class, drop conditions and rules that do not lower fidelity, cap the number of rules, round
thresholds where no row changes side, and attach per-rule statistics.

Fidelity is measured by an :class:`Evaluator` on reference rows ``X`` with the model's labels
(column indices into ``classes``): the training rows plus the synthetic rows the extractor
queried.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from nesy.rules.ruleset import Condition, Rule, RuleSet, apply_rules
from nesy.rules.trees import Conj, merge

__all__ = ["Candidate", "Evaluator", "choose_default", "fidelity", "prune",
           "round_thresholds", "build_ruleset", "select_size"]

#: A candidate rule: merged conditions and the class index it predicts.
Candidate = Tuple[Conj, int]


def choose_default(candidates: Sequence[Candidate], labels: np.ndarray,
                   n_classes: int) -> Tuple[List[Candidate], int]:
    """Pick the default class that leaves the fewest rules (ties: the most frequent label in
    ``labels``) and drop the candidates predicting it; for disjoint candidates (tree leaves)
    this changes no prediction."""
    counts = np.bincount(labels, minlength=n_classes)
    per_class = np.bincount([c for _, c in candidates], minlength=n_classes)
    default = int(min(range(n_classes), key=lambda k: (len(candidates) - per_class[k],
                                                        -counts[k])))
    return [c for c in candidates if c[1] != default], default


class Evaluator:
    """Decision lists scored on fixed rows ``X`` ``(n_samples, n_features)`` against
    ``labels`` ``(n_samples,)``; every condition's and conjunction's mask is computed once, so
    the thousands of trial lists of :func:`prune` cost a few array operations each."""

    def __init__(self, X: np.ndarray, labels: np.ndarray) -> None:
        self.X = X
        self.labels = np.asarray(labels)
        self._cond: Dict[Condition, np.ndarray] = {}
        self._conj: Dict[Conj, np.ndarray] = {}

    def mask(self, conds: Conj) -> np.ndarray:
        """Rows where every condition of ``conds`` holds (all rows for an empty one)."""
        m = self._conj.get(conds)
        if m is None:
            m = np.ones(len(self.X), dtype=bool)
            for c in conds:
                cm = self._cond.get(c)
                if cm is None:
                    cm = self._cond[c] = c.mask(self.X)
                m &= cm
            self._conj[conds] = m
        return m

    def support(self, conds: Conj) -> int:
        """Rows covered by the conjunction."""
        return int(np.count_nonzero(self.mask(conds)))

    def predict(self, rules: Sequence[Candidate], default: int) -> np.ndarray:
        """Class index the decision list gives each row (later rules written first)."""
        out = np.full(len(self.X), default, dtype=np.intp)
        for conds, label in reversed(rules):
            np.copyto(out, label, where=self.mask(conds))
        return out

    def fidelity(self, rules: Sequence[Candidate], default: int) -> float:
        """Agreement of the decision list with :attr:`labels`."""
        return float(np.mean(self.predict(rules, default) == self.labels))


def fidelity(rules: Sequence[Candidate], default: int, X: np.ndarray,
             labels: np.ndarray) -> float:
    """Agreement of the decision list ``rules`` + ``default`` with ``labels`` on ``X``."""
    out = np.array([c for _, c in rules] + [default], dtype=np.intp)
    return float(np.mean(out[apply_rules([r for r, _ in rules], X)] == labels))


def _drop_condition(rules: List[Candidate], i: int, j: int) -> List[Candidate]:
    conds, label = rules[i]
    return rules[:i] + [(conds[:j] + conds[j + 1:], label)] + rules[i + 1:]


def prune(rules: List[Candidate], default: int, ev: Evaluator, max_rules: int,
          tolerance: float = 0.0, max_length: Optional[int] = None) -> List[Candidate]:
    """Greedy simplification of a decision list.

    First, while a rule has more than ``max_length`` conditions, drop its condition whose
    removal costs least. Then repeat until nothing changes: drop any condition, then any rule,
    whose removal lowers the fidelity on the evaluator's rows by at most ``tolerance`` from the
    current value. Last, while there are more than ``max_rules`` rules, drop the one whose
    removal costs least.
    """
    rules = list(rules)
    if max_length is not None:
        for i in range(len(rules)):
            while len(rules[i][0]) > max_length:
                scores = [ev.fidelity(_drop_condition(rules, i, j), default)
                          for j in range(len(rules[i][0]))]
                rules = _drop_condition(rules, i, int(np.argmax(scores)))
    best = ev.fidelity(rules, default)
    changed = True
    while changed:
        changed = False
        for i in range(len(rules)):
            j = 0
            while j < len(rules[i][0]):
                trial = _drop_condition(rules, i, j)
                f = ev.fidelity(trial, default)
                if f >= best - tolerance:
                    rules, best, changed = trial, f, True
                else:
                    j += 1
        i = len(rules) - 1
        while i >= 0:
            trial = rules[:i] + rules[i + 1:]
            f = ev.fidelity(trial, default)
            if f >= best - tolerance:
                rules, best, changed = trial, f, True
            i -= 1
    while len(rules) > max_rules:
        scores = [ev.fidelity(rules[:i] + rules[i + 1:], default)
                  for i in range(len(rules))]
        del rules[int(np.argmax(scores))]
    return rules


def _round(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def round_thresholds(rules: List[Candidate], X: np.ndarray,
                     max_digits: int = 4) -> List[Candidate]:
    """Replace each threshold by the shortest number (1 to ``max_digits`` significant digits)
    that puts every row of ``X`` on the same side, so predictions on ``X`` do not change."""
    out: List[Candidate] = []
    for conds, label in rules:
        new = []
        for c in conds:
            col = X[:, c.feature]
            keep = c.mask(X)
            for d in range(1, max_digits + 1):
                t = _round(c.threshold, d)
                trial = col <= t if c.op == "<=" else col > t
                if np.isfinite(t) and np.array_equal(trial, keep):
                    c = Condition(c.feature, c.op, t)
                    break
            new.append(c)
        merged = merge(new)
        out.append((merged if merged is not None else tuple(new), label))
    return out


def build_ruleset(rules: Sequence[Candidate], default: int, X: np.ndarray,
                  labels: np.ndarray, classes: np.ndarray, feature_names: List[str],
                  metadata: Any = None) -> RuleSet:
    """A :class:`RuleSet` whose rules carry support, coverage and precision on
    ``(X, labels)`` and predict the class distribution of the rows they decide (add-one
    smoothed). A rule deciding any rows predicts their majority label, which can only raise
    the fidelity on ``(X, labels)``; one deciding none keeps its label and counts one row of it.
    Either way ``predict_proba``'s argmax equals ``predict``."""
    k = len(classes)
    fired = apply_rules([r for r, _ in rules], X)
    built = []
    for i, (conds, label) in enumerate([*rules, ((), default)]):
        m = fired == i
        counts = np.bincount(labels[m], minlength=k).astype(np.float64)
        sup = int(m.sum())
        if sup:
            label = int(np.argmax(counts))
        else:  # no row to count: one pseudo-row of its own class, so argmax(proba) == label
            counts[label] = 1.0
        proba = (counts + 1.0) / (counts.sum() + k)
        prec = float(counts[label] / sup) if sup else 0.0
        built.append(Rule(conds, label, tuple(proba), sup, sup / len(labels), prec))
    return RuleSet(built[:-1], built[-1], feature_names, classes, dict(metadata or {}))


def select_size(sizes: Sequence[int],
                make: Callable[[int], Tuple[List[Candidate], int]],
                val: Evaluator, rule: str = "best", patience: int = 8) -> int:
    """Choose a size (e.g. tree leaves) from the fidelity of its rules,
    ``make(size) -> (rules, default)``, on the validation rows of ``val``.

    ``rule="best"``: the highest fidelity (ties: fewer rules, then fewer conditions, then the
    smaller size). ``rule="1se"``: the fewest rules within one standard error of the highest
    fidelity (CART's "1-SE rule"; smaller rule sets, a little less fidelity). Sizes are tried
    in order until ``patience`` of them in a row did not improve on the best fidelity.
    """
    if rule not in ("best", "1se"):
        raise ValueError(f"size_selection: expected 'best' or '1se', got {rule!r}")
    results = []
    best_f, since = -1.0, 0
    for size in sizes:
        rules, default = make(size)
        f = val.fidelity(rules, default)
        results.append((size, f, len(rules), sum(len(r) for r, _ in rules)))
        best_f, since = (f, 0) if f > best_f else (best_f, since + 1)
        if since >= patience:
            break
    top = max(f for _, f, _, _ in results)
    se = float(np.sqrt(top * (1 - top) / max(len(val.labels), 1))) if rule == "1se" else 0.0
    ok = [r for r in results if r[1] >= top - se]
    return min(ok, key=lambda r: (r[2], r[3], -r[1], r[0]))[0]
