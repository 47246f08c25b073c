"""The knowledge-graph rule benchmark (``nesy.bench.rules``): its SciPy anchor for every
length-2 closed-path rule is exact (against nesy's ``rule_metrics`` and the brute-force NumPy
reference), its agreement check rejects a wrong count, and ``main(quick=True)`` runs."""

from __future__ import annotations

import numpy as np
import pytest
import reference_rules_kg as ref

from nesy.bench import rules as bench
from nesy.rules.kg import KGGraph, rule_metrics

COUNTS = ("support", "body_pairs", "pca_body_pairs", "head_facts")
RATIOS = ("head_coverage", "std_confidence", "pca_confidence")


def _graph(n_ent: int, n_rel: int, n: int, seed: int) -> np.ndarray:
    """Random triples; relation ``n_rel - 1`` left without facts; a few duplicates."""
    rng = np.random.default_rng(seed)
    t = np.stack([rng.integers(0, n_ent, n), rng.integers(0, max(1, n_rel - 1), n),
                  rng.integers(0, n_ent, n)], axis=1).astype(np.int64)
    return np.concatenate([t, t[:5]])


def _assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for k in COUNTS:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    for k in RATIOS:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=0, err_msg=k)


def test_length2_rows_order():
    rows = bench.length2_rows(3)
    assert rows.shape == (3 * 6 * 6, 11)
    k = np.arange(len(rows))
    h, a1, a2 = k // 36, k % 36 // 6, k % 6
    np.testing.assert_array_equal(rows[:, 1], h)
    np.testing.assert_array_equal(rows[:, 5] * 2 + rows[:, 6], a1)
    np.testing.assert_array_equal(rows[:, 7] * 2 + rows[:, 8], a2)
    np.testing.assert_array_equal(rows[:, [0, 2]], 0)
    np.testing.assert_array_equal(rows[:, [3, 4, 9]], -1)
    assert (rows[:, 10] == 0).all()
    ref.check_rows(rows, 1, 3)  # valid rows of the contract


@pytest.mark.parametrize("seed,n_ent,n_rel,n", [(0, 20, 4, 120), (1, 37, 5, 300),
                                                (2, 64, 3, 900), (3, 9, 6, 40)])
@pytest.mark.parametrize("lookup_limit,budget", [(1 << 24, bench.PATH_BUDGET), (0, 50)])
def test_scipy_anchor_matches_rule_metrics(seed, n_ent, n_rel, n, lookup_limit, budget):
    t = _graph(n_ent, n_rel, n, seed)
    rows = bench.length2_rows(n_rel)
    want = rule_metrics(KGGraph.of(t, n_ent, n_rel), rows)
    ix = bench.scipy_index(t, n_ent, n_rel, lookup_limit=lookup_limit)
    assert (ix.lookup is None) == (lookup_limit == 0)
    if budget < bench.PATH_BUDGET:
        assert len(bench._blocks(ix.paths, budget)) > 1  # several products
    got = bench.scipy_length2_metrics(t, n_ent, n_rel, index=ix, budget=budget)
    assert want["support"].sum() > 0 and (want["support"] == 0).any()
    _assert_same(got, want)
    _assert_same(bench.scipy_length2_per_pair(t, n_ent, n_rel, index=ix), want)
    assert not got["head_facts"][rows[:, 1] == n_rel - 1].any()  # the relation without facts


def test_scipy_anchor_matches_the_brute_force_reference():
    t = _graph(12, 3, 60, 7)
    rows = bench.length2_rows(3)
    want = ref.rule_metrics(t, 12, 3, rows)
    _assert_same(bench.scipy_length2_metrics(t, 12, 3), {k: np.asarray(v) for k, v in
                                                         want.items()})


def test_nesy_side_and_agreement_check():
    t = _graph(30, 4, 200, 5)
    g = KGGraph.of(t, 30, 4)
    rows, nesy_m, which = bench.nesy_length2(g)
    assert which in ("length2_metrics", "rule_metrics")
    scipy_m = bench.scipy_length2_metrics(t, 30, 4)
    bench.check_same(rows, nesy_m, scipy_m, 4)
    wrong = dict(scipy_m, support=scipy_m["support"].copy())
    wrong["support"][np.flatnonzero(wrong["support"])[0]] += 1
    with pytest.raises(AssertionError, match="support"):
        bench.check_same(rows, nesy_m, wrong, 4)
    with pytest.raises(AssertionError, match="order"):
        bench.check_same(rows[::-1], nesy_m, scipy_m, 4)


def test_nesy_side_falls_back_to_rule_metrics(monkeypatch):
    import nesy.rules.kg as kg

    t = _graph(25, 3, 150, 9)
    monkeypatch.delattr(kg, "length2_metrics", raising=False)
    rows, nesy_m, which = bench.nesy_length2(KGGraph.of(t, 25, 3))
    assert which == "rule_metrics"
    bench.check_same(rows, nesy_m, bench.scipy_length2_metrics(t, 25, 3), 3)


def test_main_quick(capsys):
    bench.main(quick=True)
    out = capsys.readouterr().out
    assert "nesy bench rules --quick" in out
    assert "length-2" in out and "Rule application" in out
    lines = [ln for ln in out.splitlines() if ln.startswith("| UMLS")]
    assert len(lines) == 2  # one row in each table
    assert "389,344" in lines[0]  # 46 * 92^2 rules
    mrr = float(lines[1].split("|")[9])
    assert 0.5 < mrr <= 1.0  # the rules rank the UMLS test triples well (0.95 measured)
