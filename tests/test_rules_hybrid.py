"""nesy.rules.hybrid: rules combined with knowledge-graph embeddings (each combination against a
NumPy ranking of its own definition, the embeddings-alone option against the KGE evaluator,
validation selection), and rules scored by composed relation embeddings.
Mirrors python/nesy/rules/hybrid.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from sklearn.exceptions import NotFittedError

from nesy.datasets import load_kg
from nesy.kge import KGEModel
from nesy.rules.hybrid import (
    HybridPredictor,
    compare_with_confidence,
    embedding_rule_scores,
)
from nesy.rules.kg import mine


@pytest.fixture(scope="module")
def nations():
    d = load_kg("nations")
    rules = mine(d, max_length=2, max_length_acyclic=1, min_confidence=0.2, verbose=0)
    model = KGEModel("complex", dim=16, loss="ce", optimizer="adagrad", lr=0.1,
                     batch_size=100, epochs=5, seed=0, verbose=0).fit(d.train)
    return d, rules, model


def _numpy_ranks(scores, t, known, side):
    """Realistic filtered ranks of the ``side`` queries of ``t`` from dense scores."""
    known = {tuple(k) for k in known.tolist()}
    out = []
    for row, (h, r, tl) in zip(scores, t.tolist()):
        target = h if side == "head" else tl
        s = row[target]
        better = equal = 0
        for e, v in enumerate(row):
            if e == target or ((e, r, tl) if side == "head" else (h, r, e)) in known:
                continue
            better += v > s
            equal += v == s
        out.append(1 + better + equal / 2)
    return np.array(out)


def test_embeddings_alone_equal_the_kge_evaluator(nations):
    d, rules, model = nations
    known = d.all_triples()
    h = HybridPredictor(rules, model, method="weighted", weight=0.0)
    got = h.evaluate(d.test, known)
    want = model.evaluate(d.test, known)
    assert got["both"] == want["both"]


@pytest.mark.parametrize("method,weight", [("rules_first", 0.0), ("weighted", 0.3),
                                           ("log_linear", 1.0)])
def test_each_combination_ranks_as_its_definition(nations, method, weight):
    d, rules, model = nations
    known = d.all_triples()
    t = d.test[:40]
    h = HybridPredictor(rules, model, method=method, weight=weight)
    ranks = h.ranks(t, known)
    ent, rel = model._tables()
    for side, inverse in (("tail", False), ("head", True)):
        e = t[:, 2] if inverse else t[:, 0]
        # The definition, written out: embedding scores, rule levels and confidences.
        kge = np.array([[model.score([[x, r, y] if not inverse else [y, r, x]])[0]
                         for y in range(d.n_entities)] for x, r in zip(e, t[:, 1])],
                       dtype=np.float64)
        cand = rules.candidates(e, t[:, 1], inverse)
        level = np.full(kge.shape, np.inf)
        conf = np.zeros(kge.shape)
        for i, (ids, lv, mx) in enumerate(cand):
            level[i, ids] = lv
            conf[i, ids] = mx
        p = np.exp(kge - kge.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        if method == "rules_first":
            # Lexicographic: lower level first, then higher embedding score.
            scores = np.empty_like(kge)
            for i in range(len(kge)):
                order = np.lexsort((-kge[i], level[i]))
                scores[i, order] = -np.arange(len(order), dtype=float)
                # Equal (level, score) pairs stay tied.
                key = list(zip(level[i], -kge[i]))
                for a in range(len(order) - 1):
                    if key[order[a]] == key[order[a + 1]]:
                        scores[i, order[a + 1]] = scores[i, order[a]]
        elif method == "weighted":
            scores = weight * conf + (1 - weight) * p
        else:
            scores = np.log(p) + weight * np.log(conf + 0.01)
        want = _numpy_ranks(scores, t, known, side)
        np.testing.assert_allclose(ranks[side]["realistic"], want)


def test_fit_selects_on_validation(nations):
    d, rules, model = nations
    known = d.all_triples()
    h = HybridPredictor(rules, model).fit(d.valid, known)
    mrrs = {(v["method"], v["weight"]): v["mrr"] for v in h.validation_}
    assert {m for m, _ in mrrs} == {"rules_first", "weighted", "log_linear"}
    sel = h.selection_
    assert mrrs[sel["best"]] == max(mrrs.values())
    assert mrrs[sel["baseline"]] == max(mrrs[("weighted", 0.0)], mrrs[("rules_first", 0.0)])
    chosen = sel["baseline"] if sel["kept_baseline"] else sel["best"]
    assert (h.method_, h.weight_) == chosen
    assert sel["kept_baseline"] == (sel["gain"] < sel["standard_error"]
                                    and sel["best"] != sel["baseline"])
    # A fixed method only tunes its weight.
    w = HybridPredictor(rules, model, method="weighted").fit(d.valid, known)
    assert w.method_ == "weighted"


def test_bad_input(nations):
    d, rules, model = nations
    with pytest.raises(ValueError, match="method"):
        HybridPredictor(rules, model, method="sum")
    with pytest.raises(ValueError, match="weight"):
        HybridPredictor(rules, model, method="weighted", weight=2.0)
    other = KGEModel("distmult", dim=4, epochs=1, verbose=0).fit(load_kg("umls").train)
    with pytest.raises(ValueError, match="entities"):
        HybridPredictor(rules, other)
    h = HybridPredictor(rules, model)
    with pytest.raises(ValueError, match="valid"):
        h.fit(np.zeros((0, 3), dtype=np.int64), d.all_triples())
    with pytest.raises(ValueError, match="ties"):
        h.evaluate(d.test, d.all_triples(), ties="best")


class _Fake:
    """A model stand-in with given relation embeddings."""

    def __init__(self, model, rel):
        self.model = model
        self.rel = np.asarray(rel, dtype=np.float64)

    def _tables(self):
        return np.zeros((1, self.rel.shape[1])), self.rel


def _closed(head, *atoms):
    row = [0, head, 0, -1, -1, -1, 0, -1, 0, -1, 0]
    for k, (r, inv) in enumerate(atoms):
        row[5 + 2 * k], row[6 + 2 * k] = r, inv
    return row


def test_embedding_rule_scores_compose_relations():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-np.pi, np.pi, (2, 6))
    # RotatE: r2 = r0 + r1 and r3 = r0 - r1, as phases.
    rel = np.stack([a, b, a + b, a - b])
    rows = [_closed(2, (0, 0), (1, 0)), _closed(3, (0, 0), (1, 1)), _closed(2, (0, 0), (1, 1)),
            [1, 0, 0, 1, 2, 1, 0, -1, 0, -1, 0]]
    s = embedding_rule_scores(_Fake("rotate", rel), rows)
    assert s[0] == pytest.approx(1.0) and s[1] == pytest.approx(1.0) and s[2] < 0.9
    assert np.isnan(s[3])  # acyclic rules have no composition
    # DistMult: elementwise product; ComplEx: complex product, inverse conjugated.
    x, y = rng.standard_normal((2, 6))
    s = embedding_rule_scores(_Fake("distmult", np.stack([x, y, x * y])),
                              [_closed(2, (0, 0), (1, 1))])
    assert s[0] == pytest.approx(1.0)
    zx = rng.standard_normal(3) + 1j * rng.standard_normal(3)
    zy = rng.standard_normal(3) + 1j * rng.standard_normal(3)
    split = [np.concatenate([z.real, z.imag]) for z in (zx, zy, zx * np.conj(zy))]
    s = embedding_rule_scores(_Fake("complex", np.stack(split)), [_closed(2, (0, 0), (1, 1)),
                                                                  _closed(2, (0, 0), (1, 0))])
    assert s[0] == pytest.approx(1.0) and s[1] < 0.99
    # TransE: translations add up.
    s = embedding_rule_scores(_Fake("transe_l2", np.stack([x, y, x - y])),
                              [_closed(2, (0, 0), (1, 1))])
    assert s[0] == pytest.approx(0.0, abs=1e-12)


def test_compare_with_confidence_against_scipy():
    rng = np.random.default_rng(1)
    s = rng.standard_normal(300)
    c = np.clip(0.3 * s + rng.standard_normal(300), -1, None).round(1)  # with ties
    got = compare_with_confidence(s, c, top=20)
    assert got["spearman"] == pytest.approx(scipy.stats.spearmanr(s, c).statistic)
    assert got["top_by_embedding"] == pytest.approx(c[np.argsort(-s)[:20]].mean())
    assert got["top_by_confidence"] == pytest.approx(np.sort(c)[-20:].mean())
    with pytest.raises(ValueError, match="shapes"):
        compare_with_confidence(s, c[:-1])


# --------------------------------------------------------------------------- s15 review
def _labelled(model, entities, relations):
    import copy

    m = copy.copy(model)
    m.entities_, m.relations_ = list(entities), list(relations)
    return m


def test_a_model_numbering_entities_otherwise_is_refused(nations):
    """s15 #2: only the table sizes were compared; a model whose entity ids were permuted was
    accepted and ranked with the wrong rows (MRR 0.414 against 0.686)."""
    d, rules, model = nations
    same = _labelled(model, d.entities, d.relations)
    HybridPredictor(rules, same)
    HybridPredictor(rules, model)  # a model without labels: only the sizes are compared
    with pytest.raises(ValueError, match=r"^model: its entities are not those of the rules' "
                                         r"graph \(other labels, or the same in another order\)"):
        HybridPredictor(rules, _labelled(model, d.entities[::-1], d.relations))
    with pytest.raises(ValueError, match=r"^model: its relations are not those"):
        HybridPredictor(rules, _labelled(model, d.entities, d.relations[1:] + d.relations[:1]))


def test_repr_shows_the_combination(nations):
    """s15 #9: repr was <nesy.rules.hybrid.HybridPredictor object at 0x...>."""
    d, rules, model = nations
    h = HybridPredictor(rules, model, method="weighted", weight=0.3)
    assert repr(h) == (f"HybridPredictor(method='weighted', weight=0.3; method_='weighted', "
                       f"weight_=0.3; {len(rules):,} rules, {model!r})")
    assert "; not fitted;" in repr(HybridPredictor(rules, model))  # "auto" before fit


@pytest.mark.parametrize("method,weight", [("rules_first", 0.0), ("weighted", 0.3),
                                           ("log_linear", 1.0)])
def test_predictions_are_the_best_of_the_combined_scores(nations, method, weight):
    """s15 #9: predict_tails / predict_heads as KGEModel's and KGRuleSet's: the k best of the
    scores evaluate ranks by (ties by id), filtered, padded with -1, ids or labels."""
    d, rules, model = nations
    h = HybridPredictor(rules, model, method=method, weight=weight)
    known = d.all_triples()
    q = d.test[:7]
    for side in ("tail", "head"):
        got_ids, got_scores = (h.predict_tails(q[:, 0], q[:, 1], k=5, filter_triples=known)
                               if side == "tail" else
                               h.predict_heads(q[:, 1], q[:, 2], k=5, filter_triples=known))
        s = h._combine(*h._parts(q, side), method, weight)
        for i, (a, r, b) in enumerate(q.tolist()):
            row = s[i].copy()
            drop = (known[(known[:, 0] == a) & (known[:, 1] == r), 2] if side == "tail"
                    else known[(known[:, 2] == b) & (known[:, 1] == r), 0])
            row[drop] = -np.inf
            order = np.argsort(-row, kind="stable")[:5]
            n = int(np.isfinite(row[order]).sum())
            np.testing.assert_array_equal(got_ids[i, :n], order[:n])
            np.testing.assert_array_equal(got_scores[i, :n], row[order[:n]])
            assert np.all(got_ids[i, n:] == -1) and np.all(np.isneginf(got_scores[i, n:]))
    ids, _ = h.predict_tails(d.entities[q[0, 0]], d.relations[q[0, 1]], k=20)
    assert ids.shape == (1, 20) and ids[0, -1] == -1  # 14 entities, padded
    np.testing.assert_array_equal(ids, h.predict_tails(int(q[0, 0]), int(q[0, 1]), k=20)[0])


def test_label_triples_and_errors_naming_the_arguments(nations):
    """s15 #10 and #12: evaluate took no label triples ("expected integer ids, got dtype
    <U12"), and an id out of range was "tails[0]"."""
    d, rules, model = nations
    h = HybridPredictor(rules, model, method="weighted", weight=0.2)
    known = d.all_triples()
    test = d.test[:15]
    labels = [(d.entities[a], d.relations[r], d.entities[b]) for a, r, b in test.tolist()]
    assert h.evaluate(labels, known) == h.evaluate(test, known)
    with pytest.raises(IndexError, match=r"^test\[0\] \(tail\): index 999 is out of range"):
        h.evaluate([[0, 0, 999]], known)
    with pytest.raises(IndexError, match=r"^filter_triples\[0\] \(relation\): index 99"):
        h.ranks(test, [[0, 99, 1]])
    with pytest.raises(IndexError, match=r"^valid\[0\] \(head\): index -2"):
        h.fit([[-2, 0, 1]], known)
    with pytest.raises(IndexError, match=r"^filter_triples\[0\] \(tail\): index 14"):
        h.predict_tails(0, 0, filter_triples=[[0, 0, 14]])
    with pytest.raises(ValueError, match=r"^heads: no queries"):
        h.predict_tails([], 0)
    with pytest.raises(ValueError, match=r"^k: expected an integer >= 1"):
        h.predict_heads(0, 0, k=0)


@pytest.mark.parametrize("row,exc,match", [
    ([0, -3, 0, -1, -1, 0, 0, -1, 0, -1, 0], IndexError, r"^rules\[0\]: relation ids .* out "
                                                         r"of range for the model's 4"),
    ([0, 0, 0, -1, -1, 4, 0, -1, 0, -1, 0], IndexError, r"^rules\[0\]: relation ids"),
    ([0, 0, 0, -1, -1, 0, 0, -3, 0, -1, 0], ValueError, r"^rules\[0\]: .* is not a rule row"),
    ([0, 0, 0, -1, -1, -1, 0, 1, 0, -1, 0], ValueError, r"^rules\[0\]: .* is not a rule row"),
    ([0, 0, 0, -1, -1, 1, 2, -1, 0, -1, 0], ValueError, r"^rules\[0\]: .* is not a rule row"),
    ([5, 0, 0, -1, -1, 1, 0, -1, 0, -1, 0], ValueError, r"^rules\[0\]: .* is not a rule row"),
])
def test_embedding_rule_scores_check_the_rows(row, exc, match):
    """s15 #12: a negative relation id wrapped around in NumPy indexing and returned a value;
    an id >= n was a bare NumPy IndexError."""
    rel = np.random.default_rng(0).standard_normal((4, 6))
    good = _closed(2, (0, 0), (1, 1))
    with pytest.raises(exc, match=match.replace("rules\\[0\\]", "rules\\[1\\]")):
        embedding_rule_scores(_Fake("distmult", rel), [good, row])
    with pytest.raises(TypeError, match=r"^rules: expected integer rule rows"):
        embedding_rule_scores(_Fake("distmult", rel), np.array([good], dtype=float))


# --------------------------------------------------------------------------- s22 review
@pytest.mark.parametrize("method,weight,exc,match", [
    ("log_linear", float("inf"), ValueError, r"^weight: expected a finite number >= 0, got inf"),
    ("log_linear", float("nan"), ValueError, r"^weight: expected a finite number >= 0, got nan"),
    ("weighted", -0.5, ValueError, r"^weight: expected a finite number >= 0"),
    ("log_linear", "abc", TypeError, r"^weight: expected a number, got str 'abc'"),
    ("log_linear", True, TypeError, r"^weight: expected a number, got bool True"),
    ("weighted", np.bool_(False), TypeError, r"^weight: expected a number, got bool"),
    ("auto", 5.0, ValueError, r"^weight: expected a value in \[0, 1\] for 'auto' \(tried as w "
                              r"of 'weighted' too\), got 5\.0"),
    ("weighted", 1.5, ValueError, r"^weight: expected a value in \[0, 1\] for 'weighted'"),
])
def test_weight_is_a_finite_number_in_its_range(nations, method, weight, exc, match):
    """s22 H1, L12 and M7: weight=inf made every log-linear score -inf or NaN (no candidates,
    hits@1 0.0, no error); "abc" failed in float(); True was 1.0; with method="auto" a weight
    of 5.0 was tried as w of "weighted" too, outside its [0, 1]."""
    _, rules, model = nations
    with pytest.raises(exc, match=match):
        HybridPredictor(rules, model, method=method, weight=weight)


def test_weight_of_auto_in_range_is_tried_by_every_method(nations):
    d, rules, model = nations
    h = HybridPredictor(rules, model, method="auto", weight=np.float32(0.5))
    h.fit(d.valid[:40], d.all_triples())
    tried = {(v["method"], v["weight"]) for v in h.validation_}
    assert {("weighted", 0.5), ("log_linear", 0.5)} <= tried
    assert all(0.0 <= w <= 1.0 for m, w in tried if m == "weighted")
    assert HybridPredictor(rules, model, method="log_linear", weight=5.0).weight_ == 5.0


def test_predicting_before_fit_chooses_nothing_silently(nations):
    """s22 M3: HybridPredictor(rules, model) (method="auto") predicted with "rules_first"
    before fit, and method="weighted" without a weight with w = 0.5."""
    d, rules, model = nations
    known = d.all_triples()
    for h, what in ((HybridPredictor(rules, model), "method and weight"),
                    (HybridPredictor(rules, model, method="weighted"), "weight"),
                    (HybridPredictor(rules, model, method="log_linear"), "weight")):
        assert h.method_ is None and h.weight_ is None
        for name, args in (("predict_tails", (0, 0)), ("predict_heads", (0, 0)),
                           ("ranks", (d.test[:5], known)), ("evaluate", (d.test, known))):
            with pytest.raises(NotFittedError, match=rf"is not fitted yet: fit\(valid, "
                                                     rf"filter_triples\) chooses its {what}"):
                getattr(h, name)(*args)
        h.fit(d.valid[:40], known)
        assert h.method_ is not None and h.predict_tails(0, 0, k=3)[0].shape == (1, 3)
    # Nothing to choose: usable at once.
    for method, weight in (("rules_first", None), ("weighted", 0.2), ("log_linear", 1.0)):
        h = HybridPredictor(rules, model, method=method, weight=weight)
        assert h.method_ == method and h.predict_tails(0, 0, k=3)[0].shape == (1, 3)


def test_a_model_or_rules_of_the_wrong_kind_are_named(nations):
    """s22 L12: embedding_rule_scores("complex", rows) raised AttributeError "'str' object
    has no attribute '_tables'"."""
    _, rules, model = nations
    rows = rules.rules[:5]
    with pytest.raises(TypeError, match=r"^model: expected a fitted KGEModel, got str "
                                        r"'complex'"):
        embedding_rule_scores("complex", rows)
    with pytest.raises(TypeError, match=r"^model: expected a fitted KGEModel, got NoneType"):
        HybridPredictor(rules, None)
    with pytest.raises(TypeError, match=r"^rules: expected a KGRuleSet, got ndarray"):
        HybridPredictor(rows, model)


@pytest.mark.parametrize("top,exc,match", [
    (2.5, TypeError, r"^top: expected an integer, got float 2\.5"),
    ("a", TypeError, r"^top: expected an integer, got str 'a'"),
    (0, ValueError, r"^top: expected an integer >= 1, got 0"),
    (-5, ValueError, r"^top: expected an integer >= 1, got -5"),
])
def test_compare_with_confidence_checks_top(top, exc, match):
    """s22 M8 and M12: top=-5 averaged all rules but 5 (silently wrong), top=0 gave NaN, 2.5
    and "a" failed inside NumPy naming no argument."""
    s = np.array([0.3, 0.1, 0.9, 0.5])
    c = np.array([0.2, 0.4, 0.8, 0.6])
    with pytest.raises(exc, match=match):
        compare_with_confidence(s, c, top=top)
    got = compare_with_confidence(s, c, top=np.int64(2))
    assert got["top_by_embedding"] == pytest.approx(0.7)
    assert got["top_by_confidence"] == pytest.approx(0.7)
