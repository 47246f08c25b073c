"""nesy.rules.kg: exact AMIE metrics of closed-path rules against a SciPy sparse brute force
(adjacency products per relation pair), on random graphs and on UMLS; thread invariance; bad
input. Mirrors python/nesy/rules/kg.py and rust/core/src/rules/.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

import nesy
from nesy.datasets import load_kg
from nesy.rules import PathRule, rule_metrics


def _adjacency(t, r, n, inverse=False):
    sel = t[t[:, 1] == r]
    a = sp.csr_matrix((np.ones(len(sel)), (sel[:, 0], sel[:, 2])), shape=(n, n))
    a.data[:] = 1  # duplicates count once
    a = (a > 0).astype(np.int64)
    return a.T.tocsr() if inverse else a


def _brute(t, rule, n):
    body = _adjacency(t, rule.body[0][0], n, rule.body[0][1])
    if len(rule.body) == 2:
        body = body @ _adjacency(t, rule.body[1][0], n, rule.body[1][1])
    body = (body > 0).astype(np.int64)
    head = _adjacency(t, rule.head, n)
    support = int(body.multiply(head).sum())
    has_head = np.asarray(head.sum(axis=1)).ravel() > 0
    pca = int(body[has_head].sum())
    return support, int(body.sum()), pca, int(head.sum())


def _all_rules(n_rel):
    atoms = [(r, inv) for r in range(n_rel) for inv in (False, True)]
    for h in range(n_rel):
        for a in atoms:
            yield PathRule(h, (a,))
        for a, b in itertools.product(atoms, atoms):
            yield PathRule(h, (a, b))


def test_metrics_match_scipy_on_a_random_graph():
    rng = np.random.default_rng(0)
    n, n_rel = 30, 3
    t = np.stack([rng.integers(0, n, 300), rng.integers(0, n_rel, 300),
                  rng.integers(0, n, 300)], axis=1)
    t = np.vstack([t, t[:10]])  # duplicate facts
    rules = list(_all_rules(n_rel))
    m = rule_metrics(t, rules, n, n_rel)
    for k, rule in enumerate(rules):
        s, b, p, h = _brute(t, rule, n)
        assert (m["support"][k], m["body_pairs"][k], m["pca_body_pairs"][k],
                m["head_facts"][k]) == (s, b, p, h), rule
        assert m["std_confidence"][k] == pytest.approx(s / b if b else 0.0)
        assert m["pca_confidence"][k] == pytest.approx(s / p if p else 0.0)
        assert m["head_coverage"][k] == pytest.approx(s / h if h else 0.0)


def test_umls_length_two_rules_match_scipy_and_threads():
    data = load_kg("umls")
    t = data.train
    n = data.n_entities
    rng = np.random.default_rng(1)
    rules = [PathRule(int(h), ((int(a), bool(i)), (int(b), bool(j))))
             for h, a, i, b, j in zip(rng.integers(0, 46, 40), rng.integers(0, 46, 40),
                                      rng.integers(0, 2, 40), rng.integers(0, 46, 40),
                                      rng.integers(0, 2, 40))]
    before = nesy.get_num_threads()
    try:
        nesy.set_num_threads(1)
        one = rule_metrics(t, rules, n, data.n_relations)
        nesy.set_num_threads(2)
        two = rule_metrics(t, rules, n, data.n_relations)
    finally:
        nesy.set_num_threads(before)
    for key in one:
        assert np.array_equal(one[key], two[key])
    for k, rule in enumerate(rules):
        assert (one["support"][k], one["body_pairs"][k]) == _brute(t, rule, n)[:2]


def test_rule_text_and_bad_input():
    rule = PathRule(0, ((1, False), (2, True)))
    assert rule.to_text(["parent", "father", "child"]) == \
        "parent(X,Y) <- father(X,Z), child(Y,Z)"
    with pytest.raises(ValueError, match="body"):
        PathRule(0, ())
    t = np.array([[0, 0, 1], [1, 1, 2]])
    with pytest.raises(IndexError, match="head"):
        rule_metrics(t, [PathRule(5, ((0, False),))])
    with pytest.raises(IndexError, match="triples"):
        rule_metrics(t, [PathRule(0, ((0, False),))], n_entities=2)
    with pytest.raises(ValueError, match="empty"):
        rule_metrics(np.zeros((0, 3), np.int64), [])
    with pytest.raises(TypeError, match="triples"):
        rule_metrics(t.astype(float), [])
