"""Rules combined with knowledge-graph embeddings.

- :class:`HybridPredictor`: a mined :class:`~nesy.rules.kg.KGRuleSet` and a trained
  :class:`~nesy.kge.KGEModel` answer the same queries. Three ways to combine them:

  * ``"rules_first"``: candidates in the rules' order (their aggregation levels); entities the
    rules rank equally, and those no rule reaches, ordered by the embedding score;
  * ``"weighted"``: ``w * max rule confidence + (1 - w) * softmax of the embedding scores``
    (``w = 0`` is the embeddings alone);
  * ``"log_linear"`` (a product of experts): ``log softmax(embedding scores) + lam * log(max
    rule confidence + 0.01)``.

  :meth:`HybridPredictor.fit` tries every method over a grid of ``w`` / ``lam`` and keeps the
  best filtered MRR on a validation split; unless that beats the better of the two baselines
  (embeddings alone, ``"rules_first"``) by at least one standard error of the paired
  difference, it keeps that baseline (small validation sets otherwise pick noise). Then
  :meth:`~HybridPredictor.evaluate` ranks test triples with the evaluator of
  :mod:`nesy.kge.evaluate` (same filter, same ties).

- :func:`embedding_rule_scores`: closed-path rules scored by how well the relation embeddings
  compose (DistMult: elementwise product; ComplEx: complex product, conjugate for an inverse
  atom; RotatE: sum of phases; TransE: sum of translations), and :func:`compare_with_confidence`
  against the mined confidences.
"""

from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence

import numpy as np
from sklearn.exceptions import NotFittedError

from nesy._checks import check_int
from nesy.kge.evaluate import TIES, ranks_of_scores, summarise_ranks
from nesy.kge.model import known_answers, top_k
from nesy.kge.scoring import score_heads, score_tails
from nesy.rules.kg import KGRuleSet, _rows

METHODS = ("rules_first", "weighted", "log_linear")
#: Weights tried by :meth:`HybridPredictor.fit`: ``w`` of ``"weighted"``, ``lam`` of
#: ``"log_linear"``.
WEIGHTS = {"weighted": (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 1.0),
           "log_linear": (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)}
#: Added to rule confidences inside the logarithm of ``"log_linear"``.
LOG_FLOOR = 0.01
#: Queries scored at once (memory: a few dense ``(block, n_entities)`` float64 arrays).
BLOCK = 256


def _softmax(s: np.ndarray) -> np.ndarray:
    z = np.exp(s - s.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class HybridPredictor:
    """Rules and embeddings answering link-prediction queries together.

    Parameters
    ----------
    rules : KGRuleSet
    model : KGEModel
        Trained on the same entity and relation ids as ``rules.graph``: ValueError when the
        table sizes differ, or when both know their labels and those differ (other labels,
        or the same in another order).
    method : {"rules_first", "weighted", "log_linear", "auto"}
        ``"auto"``: chosen by :meth:`fit`.
    weight : float, optional
        ``w`` of ``"weighted"`` (in [0, 1]) or ``lam`` of ``"log_linear"`` (a finite number
        >= 0), chosen by :meth:`fit` when not given. With ``method="auto"`` the one weight is
        tried as both, so it must be in [0, 1] (for a larger ``lam``, pass
        ``method="log_linear"``).

    Attributes
    ----------
    method_, weight_ : the combination in use: the given ones, or those :meth:`fit` chose.
        Until :meth:`fit` has chosen what was not given (``method="auto"``, or no ``weight``
        for ``"weighted"`` or ``"log_linear"``) they are None, and predictions and
        evaluations raise ``sklearn.exceptions.NotFittedError``.
    validation_ : list of dict
        Per option tried by :meth:`fit`: ``method``, ``weight``, validation ``mrr``.
    selection_ : dict
        What :meth:`fit` compared: the best option, the better baseline, the paired gain and
        its standard error.
    """

    def __init__(self, rules: KGRuleSet, model: Any, method: str = "auto",
                 weight: Optional[float] = None) -> None:
        if not isinstance(method, str) or method not in METHODS + ("auto",):
            raise ValueError(f"method: expected one of {METHODS + ('auto',)}, got {method!r}")
        if weight is not None:
            if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, numbers.Real):
                raise TypeError(f"weight: expected a number, got {type(weight).__name__} "
                                f"{weight!r}")
            if not 0.0 <= float(weight) < np.inf:
                raise ValueError(f"weight: expected a finite number >= 0, got {weight}")
            if method in ("weighted", "auto") and float(weight) > 1.0:
                also = " (tried as w of 'weighted' too)" if method == "auto" else ""
                raise ValueError(f"weight: expected a value in [0, 1] for {method!r}{also}, "
                                 f"got {weight}")
        if not isinstance(rules, KGRuleSet):
            raise TypeError(f"rules: expected a KGRuleSet, got {type(rules).__name__}")
        ent, rel = _model_tables(model)
        if ent.shape[0] != rules.graph.n_entities:
            raise ValueError(f"model: {ent.shape[0]} entities, but the rules' graph has "
                             f"{rules.graph.n_entities}")
        if rel.shape[0] != rules.graph.n_relations:
            raise ValueError(f"model: {rel.shape[0]} relations, but the rules' graph has "
                             f"{rules.graph.n_relations}")
        for name in ("entities", "relations"):
            ours, theirs = getattr(model, name + "_", None), getattr(rules.graph, name)
            if ours is not None and theirs is not None and list(ours) != list(theirs):
                raise ValueError(f"model: its {name} are not those of the rules' graph (other "
                                 f"labels, or the same in another order): the model and the "
                                 f"rules number their {name} differently")
        self.rules = rules
        self.model = model
        self.method = method
        self.weight = weight
        given = method != "auto" and (weight is not None or method == "rules_first")
        self.method_: Optional[str] = method if given else None
        self.weight_: Optional[float] = (0.5 if weight is None else float(weight)) if given \
            else None
        self.validation_: list[dict[str, Any]] = []
        self.selection_: dict[str, Any] = {}

    def __repr__(self) -> str:
        chosen = f"method_={self.method_!r}"
        if self.method_ is None:
            chosen = "not fitted"
        elif self.method_ != "rules_first":
            chosen += f", weight_={self.weight_:g}"
        return (f"HybridPredictor(method={self.method!r}, weight={self.weight!r}; {chosen}; "
                f"{len(self.rules):,} rules, {self.model!r})")

    def _check_fitted(self) -> None:
        """NotFittedError while :meth:`fit` has still to choose the method or the weight."""
        if self.method_ is None:
            what = "method and weight" if self.method == "auto" else "weight"
            raise NotFittedError(f"This HybridPredictor (method={self.method!r}, weight="
                                 f"{self.weight!r}) is not fitted yet: fit(valid, "
                                 f"filter_triples) chooses its {what}; call it first, or "
                                 f"give the method and its weight")

    def _triples(self, triples: Any, name: str) -> np.ndarray:
        """Id triples (or label triples, with the labels of the rules' graph), checked
        against its sizes with errors naming ``name``."""
        return self.rules.graph.triple_ids(triples, name)

    # ------------------------------------------------------------------ the pieces
    def _parts(self, t: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For the ``side`` queries of ``t``: embedding scores, rule order (``levels - level``
        for candidates, 0 elsewhere) and max rule confidence (0 elsewhere), each (n, n_ent)."""
        ent, rel = self.model._tables()
        name = self.model.model
        if side == "tail":
            e = t[:, 0]
            kge = score_tails(name, ent, rel, e, t[:, 1])
        else:
            e = t[:, 2]
            kge = score_heads(name, ent, rel, t[:, 1], e)
        kge = np.asarray(kge, dtype=np.float64)
        order = np.zeros_like(kge)
        conf = np.zeros_like(kge)
        for i, (ids, level, mx) in enumerate(self.rules.candidates(e, t[:, 1], side == "head")):
            if len(ids):
                order[i, ids] = level[-1] + 1 - level
                conf[i, ids] = mx
        return kge, order, conf

    @staticmethod
    def _combine(kge: np.ndarray, order: np.ndarray, conf: np.ndarray, method: str,
                 weight: float) -> np.ndarray:
        if method == "rules_first":
            lo = kge.min(axis=1, keepdims=True)
            span = kge.max(axis=1, keepdims=True) - lo
            # The embedding part stays below 1, so it only orders what the rules leave tied.
            return order + 0.999 * (kge - lo) / np.where(span > 0, span, 1.0)
        if method == "log_linear":
            z = kge - kge.max(axis=1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            return log_p + weight * np.log(conf + LOG_FLOOR)
        return weight * conf + (1.0 - weight) * _softmax(kge)

    def _ranks(self, t: np.ndarray, known: np.ndarray, options: Sequence[tuple[str, float]]
               ) -> list[dict[str, dict[str, np.ndarray]]]:
        """Filtered ranks of ``t`` under each ``(method, weight)`` option."""
        out: list[dict[str, dict[str, list[np.ndarray]]]] = [
            {"head": {}, "tail": {}} for _ in options]
        for side in ("head", "tail"):
            for start in range(0, t.shape[0], BLOCK):
                block = t[start:start + BLOCK]
                kge, order, conf = self._parts(block, side)
                for k, (method, w) in enumerate(options):
                    s = self._combine(kge, order, conf, method, w)
                    r = ranks_of_scores(s, block, known, side)
                    for ties, v in r.items():
                        out[k][side].setdefault(ties, []).append(v)
        return [{side: {ties: np.concatenate(v) for ties, v in d[side].items()}
                 for side in d} for d in out]

    # ------------------------------------------------------------------ API
    def fit(self, valid: Any, filter_triples: Any, ties: str = "realistic") -> HybridPredictor:
        """Choose the combination on ``valid`` (see the module docs)."""
        if ties not in TIES:
            raise ValueError(f"ties: expected one of {TIES}, got {ties!r}")
        v = self._triples(valid, "valid")
        if v.shape[0] == 0:
            raise ValueError("valid: no validation triples")
        known = self._triples(filter_triples, "filter_triples")
        baselines = [("weighted", 0.0), ("rules_first", 0.0)]
        methods = METHODS if self.method == "auto" else (self.method,)
        options: list[tuple[str, float]] = list(baselines)
        for m in methods:
            if m == "rules_first":
                continue
            ws = WEIGHTS[m] if self.weight is None else (float(self.weight),)
            options.extend((m, w) for w in ws if (m, w) not in options)
        ranks = self._ranks(v, known, options)
        recip = [1.0 / np.concatenate([r["head"][ties], r["tail"][ties]]) for r in ranks]
        self.validation_ = [{"method": m, "weight": w, "mrr": float(x.mean())}
                            for (m, w), x in zip(options, recip)]
        allowed = [k for k, (m, _) in enumerate(options) if m in methods]
        best = max(allowed, key=lambda k: self.validation_[k]["mrr"])
        base = max((0, 1), key=lambda k: self.validation_[k]["mrr"])
        diff = recip[best] - recip[base]
        se = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0
        gain = float(diff.mean())
        keep_base = self.method == "auto" and best != base and gain < se
        chosen = base if keep_base else best
        self.method_, self.weight_ = options[chosen]
        self.selection_ = {"best": options[best], "baseline": options[base], "gain": gain,
                           "standard_error": se, "kept_baseline": keep_base}
        return self

    def ranks(self, test: Any, filter_triples: Any) -> dict[str, dict[str, np.ndarray]]:
        """Filtered ranks of ``test`` (as :func:`nesy.kge.evaluate.filtered_ranks`); both
        arguments id triples or, when the rules' graph has labels, label triples."""
        self._check_fitted()
        t = self._triples(test, "test")
        known = self._triples(filter_triples, "filter_triples")
        return self._ranks(t, known, [(self.method_, self.weight_)])[0]

    def evaluate(self, test: Any, filter_triples: Any, ties: str = "realistic",
                 per_relation: bool = True) -> dict[str, Any]:
        """Filtered link-prediction metrics, in the format of :func:`nesy.kge.evaluate` (both
        arguments as :meth:`ranks` takes them)."""
        if ties not in TIES:
            raise ValueError(f"ties: expected one of {TIES}, got {ties!r}")
        self._check_fitted()
        t = self._triples(test, "test")
        if t.shape[0] == 0:
            raise ValueError("test: nothing to evaluate (0 triples)")
        r = self.ranks(t, filter_triples)
        return summarise_ranks(t, r["head"][ties], r["tail"][ties], per_relation)

    def _predict(self, entities: Any, relations: Any, side: str, k: Any,
                 filter_triples: Any) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        k = check_int("k", k, 1)
        names = ("heads", "relations") if side == "tail" else ("tails", "relations")
        q = self.rules.graph.queries(entities, relations, names)
        f = None if filter_triples is None else self._triples(filter_triples, "filter_triples")
        t = np.zeros((q.shape[0], 3), dtype=np.int64)
        t[:, 1] = q[:, 1]
        t[:, 0 if side == "tail" else 2] = q[:, 0]
        ids, scores = [], []
        for start in range(0, t.shape[0], BLOCK):
            block = t[start:start + BLOCK]
            s = self._combine(*self._parts(block, side), self.method_, self.weight_)
            exclude = (None if f is None else
                       known_answers(f, q[start:start + BLOCK, 0], block[:, 1], side == "tail",
                                     block.shape[0]))
            i, v = top_k(s, k, exclude)
            ids.append(i)
            scores.append(v)
        return np.concatenate(ids), np.concatenate(scores)

    def predict_tails(self, heads: Any, relations: Any, k: int = 10,
                      filter_triples: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best tails of ``(h, r, ?)`` by the combination in use (``method_``,
        ``weight_``), best first, as :meth:`nesy.kge.KGEModel.predict_tails` and
        :meth:`nesy.rules.kg.KGRuleSet.predict_tails` return them: ``(ids (n, k), scores (n,
        k))``, ``scores`` the combined scores (float64; equal scores by id), a row with
        fewer than ``k`` candidates padded with id -1 and score ``-inf``, entities with ``(h,
        r, e)`` in ``filter_triples`` left out. Heads and relations are ids, or labels when
        the rules' graph has labels."""
        return self._predict(heads, relations, "tail", k, filter_triples)

    def predict_heads(self, relations: Any, tails: Any, k: int = 10,
                      filter_triples: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best heads of ``(?, r, t)``, as :meth:`predict_tails` (entities with
        ``(e, r, t)`` in ``filter_triples`` are left out)."""
        return self._predict(tails, relations, "head", k, filter_triples)


# --------------------------------------------------------------------------- rules x embeddings
def _complex(v: np.ndarray) -> np.ndarray:
    k = v.shape[-1] // 2
    return v[..., :k] + 1j * v[..., k:]


def embedding_rule_scores(model: Any, rules: Any) -> np.ndarray:
    """How well the relation embeddings of ``model`` compose along each closed-path rule.

    For ``h(X,Y) <- b1(X,A), ..., bk(.,Y)``: the body relations composed (DistMult: elementwise
    product; ComplEx: complex product, an inverse atom conjugated; RotatE: phases summed, an
    inverse atom negated; TransE: translations summed, an inverse atom negated) compared with
    the head relation: cosine similarity for DistMult and ComplEx (real part), the mean cosine
    of the phase differences for RotatE, minus the distance for TransE. Higher is better.
    Acyclic rules (kinds 1 and 2) get NaN: their constants have no relation composition.

    Returns
    -------
    ndarray of float64, shape (m,)
    """
    rows = _rows(rules)
    _, rel = _model_tables(model)
    _check_rule_ids(rows, rel.shape[0])
    rel = np.asarray(rel, dtype=np.float64)
    name = model.model
    out = np.full(rows.shape[0], np.nan)
    closed = np.flatnonzero(rows[:, 0] == 0)
    if closed.size == 0:
        return out
    r = rows[closed]
    head = rel[r[:, 1]]
    atoms = [(r[:, 5 + 2 * a], r[:, 6 + 2 * a]) for a in range(3)]
    if name == "distmult":
        comp = np.ones_like(head)
        for ids, _ in atoms:
            used = ids >= 0
            comp[used] *= rel[ids[used]]
        score = (comp * head).sum(1) / (np.linalg.norm(comp, axis=1)
                                        * np.linalg.norm(head, axis=1) + 1e-30)
    elif name == "complex":
        h = _complex(head)
        comp = np.ones_like(h)
        for ids, inv in atoms:
            used = ids >= 0
            z = _complex(rel[ids[used]])
            comp[used] *= np.where(inv[used, None] == 1, np.conj(z), z)
        score = np.real((comp * np.conj(h)).sum(1)) / (
            np.linalg.norm(comp, axis=1) * np.linalg.norm(h, axis=1) + 1e-30)
    elif name == "rotate":
        comp = np.zeros_like(head)
        for ids, inv in atoms:
            used = ids >= 0
            sign = np.where(inv[used] == 1, -1.0, 1.0)[:, None]
            comp[used] += sign * rel[ids[used]]
        score = np.cos(head - comp).mean(1)
    elif name in ("transe_l1", "transe_l2"):
        comp = np.zeros_like(head)
        for ids, inv in atoms:
            used = ids >= 0
            sign = np.where(inv[used] == 1, -1.0, 1.0)[:, None]
            comp[used] += sign * rel[ids[used]]
        p = 1 if name == "transe_l1" else 2
        score = -np.linalg.norm(head - comp, ord=p, axis=1)
    else:
        raise ValueError(f"model: no relation composition for {name!r}")
    out[closed] = score
    return out


def _model_tables(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """The entity and relation tables of ``model``, a fitted :class:`~nesy.kge.KGEModel`;
    TypeError naming ``model`` for anything else (a model name such as ``"complex"``)."""
    if not callable(getattr(model, "_tables", None)) or not isinstance(
            getattr(model, "model", None), str):
        raise TypeError(f"model: expected a fitted KGEModel, got {type(model).__name__} "
                        f"{model!r}")
    return model._tables()


def _check_rule_ids(rows: np.ndarray, n_rel: int) -> None:
    """IndexError naming ``rules[i]`` when a row names a relation outside ``[0, n_rel)`` (the
    head, or a used body atom: relation >= 0), ValueError when its layout is not a rule
    row's (kind 0 to 2, 0/1 inverse flags, used atoms first, unused ones ``-1, 0``)."""
    atoms = rows[:, 5:11:2]
    used = atoms >= 0
    rels = np.where(used, atoms, 0)
    layout = ((rows[:, 0] < 0) | (rows[:, 0] > 2) | ~np.isin(rows[:, 2], (0, 1))
              | ~np.all(np.isin(rows[:, 6:11:2], (0, 1)), axis=1) | ~used[:, 0]
              | np.any(used[:, 1:] & ~used[:, :-1], axis=1)
              | np.any(~used & ((atoms != -1) | (rows[:, 6:11:2] != 0)), axis=1))
    bad = np.flatnonzero(layout)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"rules[{i}]: {rows[i].tolist()} is not a rule row (kind 0-2, 0/1 "
                         f"inverse flags, 1 to 3 body atoms then unused atoms -1, 0)")
    out = (rows[:, 1] < 0) | (rows[:, 1] >= n_rel) | np.any(used & (rels >= n_rel), axis=1)
    bad = np.flatnonzero(out)
    if bad.size:
        i = int(bad[0])
        raise IndexError(f"rules[{i}]: relation ids {rows[i].tolist()} out of range for the "
                         f"model's {n_rel} relations")


def _rank(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties averaged."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def compare_with_confidence(scores: Any, confidence: Any, top: int = 100) -> dict[str, float]:
    """How the embedding scores of rules agree with their mined confidences.

    Returns
    -------
    dict
        ``spearman`` (rank correlation), ``mean_confidence`` of all rules, and the mean
        confidence of the ``top`` rules (an integer >= 1; all of them when fewer) by
        embedding score (``top_by_embedding``) and by confidence itself
        (``top_by_confidence``, the best possible).
    """
    top = check_int("top", top, 1)
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(confidence, dtype=np.float64)
    if s.shape != c.shape or s.ndim != 1:
        raise ValueError(f"scores and confidence: expected equal 1-D shapes, got {s.shape} "
                         f"and {c.shape}")
    ok = np.isfinite(s) & np.isfinite(c)
    s, c = s[ok], c[ok]
    if s.size < 2:
        raise ValueError("scores: need at least two closed-path rules to compare")
    rs, rc = _rank(s), _rank(c)
    spearman = float(np.corrcoef(rs, rc)[0, 1]) if rs.std() > 0 and rc.std() > 0 else 0.0
    k = min(top, s.size)
    return {"rules": int(s.size), "spearman": spearman, "mean_confidence": float(c.mean()),
            "top_by_embedding": float(c[np.argsort(-s, kind="stable")[:k]].mean()),
            "top_by_confidence": float(np.sort(c)[::-1][:k].mean())}
