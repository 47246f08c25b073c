"""Pieces shared by the rule extractors: CART leaves as rules, conjunctions as boxes, and
TREPAN-style sampling of synthetic rows inside sparse boxes.

A *conjunction* is a tuple of :class:`~nesy.rules.ruleset.Condition`; :func:`merge` keeps only
the tightest bound per feature and direction, and its *box* is the interval ``(lo, hi]`` per
feature it allows.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from nesy.rules.ruleset import Condition

__all__ = ["merge", "box", "is_empty", "tree_leaves", "fit_tree", "sample_near",
           "sample_in_boxes"]

Conj = Tuple[Condition, ...]


def merge(conditions: Sequence[Condition]) -> Optional[Conj]:
    """Merge redundant thresholds: the smallest ``<=`` and the largest ``>`` per feature, sorted
    by feature. Returns None if the conjunction can hold for no value (``lo >= hi``)."""
    upper: Dict[int, float] = {}
    lower: Dict[int, float] = {}
    for c in conditions:
        if c.op == "<=":
            upper[c.feature] = min(upper.get(c.feature, np.inf), c.threshold)
        else:
            lower[c.feature] = max(lower.get(c.feature, -np.inf), c.threshold)
    out: List[Condition] = []
    for f in sorted(set(upper) | set(lower)):
        lo, hi = lower.get(f, -np.inf), upper.get(f, np.inf)
        if lo >= hi:
            return None
        if f in lower:
            out.append(Condition(f, ">", lo))
        if f in upper:
            out.append(Condition(f, "<=", hi))
    return tuple(out)


def is_empty(conditions: Sequence[Condition]) -> bool:
    """Whether the conjunction is unsatisfiable."""
    return merge(conditions) is None


def box(conditions: Sequence[Condition], n_features: int) -> Tuple[np.ndarray, np.ndarray]:
    """Bounds ``(lo, hi)`` of shape ``(n_features,)``: the conjunction allows ``lo < x <= hi``."""
    lo = np.full(n_features, -np.inf)
    hi = np.full(n_features, np.inf)
    for c in conditions:
        if c.op == "<=":
            hi[c.feature] = min(hi[c.feature], c.threshold)
        else:
            lo[c.feature] = max(lo[c.feature], c.threshold)
    return lo, hi


def fit_tree(X: np.ndarray, labels: np.ndarray, max_leaf_nodes: Optional[int] = None,
             max_depth: Optional[int] = None, min_samples_leaf: int = 1,
             random_state: int = 0) -> DecisionTreeClassifier:
    """scikit-learn's CART (Gini, best-first when ``max_leaf_nodes`` is set)."""
    tree = DecisionTreeClassifier(max_leaf_nodes=max_leaf_nodes, max_depth=max_depth,
                                  min_samples_leaf=min_samples_leaf,
                                  random_state=random_state)
    return tree.fit(X, labels)


def tree_leaves(tree: DecisionTreeClassifier) -> List[Tuple[int, Conj, np.ndarray]]:
    """Every leaf of a fitted CART tree as ``(node id, merged path conditions, class
    weights)``, depth first; the weights are over ``tree.classes_`` (fractions of the leaf's
    training rows)."""
    t = tree.tree_
    out: List[Tuple[int, Conj, np.ndarray]] = []
    stack: List[Tuple[int, Tuple[Condition, ...]]] = [(0, ())]
    while stack:
        node, path = stack.pop()
        left, right = t.children_left[node], t.children_right[node]
        if left == right:  # leaf
            merged = merge(path)
            assert merged is not None  # a tree path is always satisfiable
            w = np.asarray(t.value[node][0], dtype=np.float64)
            out.append((node, merged, w / max(w.sum(), 1e-300)))
            continue
        f, thr = int(t.feature[node]), float(t.threshold[node])
        stack.append((right, path + (Condition(f, ">", thr),)))
        stack.append((left, path + (Condition(f, "<=", thr),)))
    return out


def sample_near(X: np.ndarray, n: int, bandwidth: float,
                rng: np.random.Generator) -> np.ndarray:
    """``n`` rows from a Gaussian kernel density estimate of ``X``: a random row plus noise of
    ``bandwidth`` times each feature's standard deviation."""
    base = X[rng.integers(0, X.shape[0], n)]
    return base + rng.standard_normal(base.shape) * (bandwidth * X.std(axis=0))


def sample_in_boxes(X: np.ndarray, boxes: Sequence[Tuple[np.ndarray, np.ndarray]],
                    counts: Sequence[int], bandwidth: float,
                    rng: np.random.Generator) -> np.ndarray:
    """TREPAN-style synthetic rows: ``counts[k]`` rows inside box ``k``.

    Each feature is drawn independently from its marginal (a training value plus kernel noise)
    restricted to the box: from the training values inside the box when there are any, else
    uniformly over the box clipped to the training range. Rows end up inside the box.
    """
    n_features = X.shape[1]
    std = X.std(axis=0)
    xmin, xmax = X.min(axis=0), X.max(axis=0)
    out = []
    for (lo, hi), k in zip(boxes, counts):
        if k <= 0:
            continue
        rows = np.empty((k, n_features))
        for j in range(n_features):
            col = X[:, j]
            inside = col[(col > lo[j]) & (col <= hi[j])]
            if inside.size:
                v = rng.choice(inside, k) + rng.standard_normal(k) * bandwidth * std[j]
            else:
                a = max(lo[j], xmin[j]) if np.isfinite(lo[j]) else xmin[j]
                b = min(hi[j], xmax[j]) if np.isfinite(hi[j]) else xmax[j]
                a, b = (min(a, b), max(a, b))
                v = rng.uniform(a, b, k) if b > a else np.full(k, b)
            hi_j = hi[j]
            lo_j = np.nextafter(lo[j], np.inf) if np.isfinite(lo[j]) else -np.inf
            rows[:, j] = np.clip(v, lo_j, hi_j)
        out.append(rows)
    return np.vstack(out) if out else np.empty((0, n_features))
