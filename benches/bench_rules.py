"""pytest-benchmark suite: evaluating a 50-rule decision list over 200 000 rows x 50 features,
nesy's blocked NumPy evaluation against the naive front-to-back loop.
``python -m nesy.rules.report --profile`` prints the 1e6-row table with the exported Python
function and coverage counting as well.
"""

from __future__ import annotations

import numpy as np
import pytest

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
