"""pytest-benchmark suite: evaluating a 50-rule decision list over 200 000 rows x 50 features,
nesy's blocked NumPy evaluation against the naive front-to-back loop.
``python -m nesy.rules.report --profile`` prints the 1e6-row table with the exported Python
function and coverage counting as well.

Knowledge-graph rules (issue 9): exact metrics of every length-2 closed-path rule of UMLS, nesy
against the SciPy sparse-product anchor, and rule application to the UMLS test queries.
``nesy bench rules`` prints both, with WN18RR, side by side.
"""

from __future__ import annotations

import numpy as np
import pytest

from nesy.bench import rules as kgbench
from nesy.datasets import load_kg
from nesy.rules.kg import KGGraph, mine
from nesy.rules.report import naive_apply_rules, random_rules
from nesy.rules.ruleset import apply_rules


@pytest.fixture(scope="module")
def case():
    X = np.random.default_rng(0).standard_normal((200_000, 50))
    return X, random_rules(50, 50, seed=0)


def test_apply_rules(benchmark, case):
    X, rules = case
    benchmark.group = "50 rules, 200k rows x 50 features"
    out = benchmark(apply_rules, rules, X)
    np.testing.assert_array_equal(out, naive_apply_rules(rules, X))


def test_naive_loop(benchmark, case):
    X, rules = case
    benchmark.group = "50 rules, 200k rows x 50 features"
    benchmark(naive_apply_rules, rules, X)



# --------------------------------------------------------------------------- knowledge graphs
L2_GROUP = "UMLS, all 389,344 length-2 rules: nesy vs SciPy"


@pytest.fixture(scope="module")
def umls():
    data = load_kg("umls")
    g = KGGraph.of(data)
    index_bytes = g.index.nbytes  # the index is built once, outside the timings
    assert index_bytes > 0
    ix = kgbench.scipy_index(data.train, data.n_entities, data.n_relations)
    return data, g, ix


def test_nesy_length2_rules_umls(benchmark, umls):
    data, g, ix = umls
    benchmark.group = L2_GROUP
    rows, metrics, _ = benchmark(kgbench.nesy_length2, g)
    kgbench.check_same(rows, metrics, kgbench.scipy_length2_metrics(
        data.train, data.n_entities, data.n_relations, index=ix), data.n_relations)


def test_scipy_length2_rules_umls(benchmark, umls):
    data, _, ix = umls
    benchmark.group = L2_GROUP
    benchmark(kgbench.scipy_length2_metrics, data.train, data.n_entities, data.n_relations,
              index=ix)


def test_nesy_rule_application_umls(benchmark, umls):
    data, _, _ = umls
    rs = mine(data, verbose=0)  # the defaults: ~540k rules
    benchmark.group = "UMLS, rule application: filtered ranks of 661 test triples x 2"
    ranks = benchmark.pedantic(rs.ranks, args=(data.test, data.all_triples()), rounds=2,
                               iterations=1)
    assert np.mean(1.0 / ranks["tail"]["realistic"]) > 0.5
