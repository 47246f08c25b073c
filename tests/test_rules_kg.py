"""nesy.rules.kg: Horn rules over knowledge graphs against the brute-force references of
tests/reference_rules_kg.py (metrics of every rule kind, the exact miner, application and
filtered ranks), the sampling miner, explanations, files, thread invariance and bad input.
Mirrors python/nesy/rules/kg.py and rust/core/src/rules/.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference_rules_kg as ref

import nesy
from nesy import _core
from nesy.datasets import load_kg
from nesy.datasets.kg import UnknownLabelError
from nesy.rules.kg import KGGraph, KGRuleSet, length2_metrics, mine, rule_metrics


def _graph(n_ent: int, n_rel: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.stack([rng.integers(0, n_ent, n), rng.integers(0, n_rel, n),
                  rng.integers(0, n_ent, n)], axis=1).astype(np.int64)
    return np.concatenate([t, t[:3]])  # duplicate facts count once


def _every_rule(n_ent: int, n_rel: int) -> np.ndarray:
    return ref.enumerate_rows(n_ent, n_rel, 3, 2)


def _random_rows(n_ent: int, n_rel: int, m: int, seed: int) -> np.ndarray:
    """``m`` random valid rows of every kind and length."""
    rng = np.random.default_rng(seed)
    rows = np.full((m, 11), -1, dtype=np.int64)
    rows[:, 6::2] = 0
    kind = rng.integers(0, 3, m)
    length = np.where(kind == 0, rng.integers(1, 4, m), rng.integers(1, 3, m))
    rows[:, 0] = kind
    rows[:, 1] = rng.integers(0, n_rel, m)
    rows[:, 2] = np.where(kind == 0, 0, rng.integers(0, 2, m))
    rows[:, 3] = np.where(kind == 0, -1, rng.integers(0, n_ent, m))
    rows[:, 4] = np.where(kind == 1, rng.integers(0, n_ent, m), -1)
    for a in range(3):
        used = length > a
        rows[used, 5 + 2 * a] = rng.integers(0, n_rel, used.sum())
        rows[used, 6 + 2 * a] = rng.integers(0, 2, used.sum())
    return rows


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_of_every_rule_match_the_reference(seed):
    n_ent, n_rel = 6, 2
    t = _graph(n_ent, n_rel, 18, seed)
    rows = _every_rule(n_ent, n_rel)
    got = rule_metrics(KGGraph.of(t, n_ent, n_rel), rows)
    want = ref.rule_metrics(t, n_ent, n_rel, rows)
    for k in ref.METRIC_KEYS:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_metrics_on_umls_match_the_reference():
    d = load_kg("umls")
    rows = _random_rows(d.n_entities, d.n_relations, 400, seed=3)
    # Rules over relations that occur: most have non-zero counts.
    got = rule_metrics(d, rows)
    want = ref.rule_metrics(d.train, d.n_entities, d.n_relations, rows)
    for k in ref.METRIC_KEYS:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


@pytest.mark.parametrize("seed,confidence", [(0, "std"), (1, "pca"), (2, "std")])
def test_exact_miner_finds_every_rule_the_brute_force_finds(seed, confidence):
    n_ent, n_rel = 7, 2
    t = _graph(n_ent, n_rel, 26, 10 + seed)
    kw = dict(max_length=3, max_length_acyclic=2, min_support=2, min_head_coverage=0.1,
              min_confidence=0.2, confidence=confidence)
    rs = mine(KGGraph.of(t, n_ent, n_rel), verbose=0, **kw)
    rows, m = ref.mine_brute_force(t, n_ent, n_rel, **kw)
    assert len(rows) > 5
    np.testing.assert_array_equal(ref.sort_rows(rs.rules), rows)
    order = np.lexsort(rs.rules.T[::-1])
    for k in ref.METRIC_KEYS:
        np.testing.assert_array_equal(rs.metrics[k][order], m[k], err_msg=k)


def test_head_coverage_at_the_threshold_is_kept_and_heads_are_mined_once():
    """A rule whose head coverage equals min_head_coverage passes, as AMIE and the metrics
    filter test it (support / facts >= threshold; 0.28 * 25 rounds above 7), for closed and
    acyclic rules; a head relation given twice is mined once."""
    # Closed: r0(X, Y) <- r1(X, Y) holds for 7 of r0's 25 facts. Acyclic: r0(X, 500) <-
    # r1(X, 600) holds for 7 of the 25 facts r0(X, 500) (acyclic head coverage is per constant).
    closed = np.array([(i, 0, i + 100) for i in range(25)] + [(i, 1, i + 100) for i in range(7)])
    acyclic = np.array([(i, 0, 500) for i in range(25)] + [(i, 1, 600) for i in range(7)])
    kw = dict(min_support=1, min_confidence=0.0, relations=[0], verbose=0)
    for t, length, n_acyclic in ((closed, 1, 0), (acyclic, 0, 1)):
        at = mine(t, max_length=length, max_length_acyclic=n_acyclic, min_head_coverage=0.28,
                  **kw)
        every = mine(t, max_length=length, max_length_acyclic=n_acyclic, min_head_coverage=0.0,
                     **kw)
        hc = every.metrics["head_coverage"]
        assert np.any(hc == 0.28) and len(at.rules) == int(np.sum(hc >= 0.28)), n_acyclic
    twice = mine(closed, max_length=1, max_length_acyclic=1, min_head_coverage=0.0,
                 **{**kw, "relations": [0, 0]})
    once = mine(closed, max_length=1, max_length_acyclic=1, min_head_coverage=0.0, **kw)
    np.testing.assert_array_equal(twice.rules, once.rules)


def test_sampling_miner_is_deterministic_and_exact():
    n_ent, n_rel = 10, 2
    t = _graph(n_ent, n_rel, 40, 4)
    g = KGGraph.of(t, n_ent, n_rel)
    kw = dict(max_length=3, max_length_acyclic=2, min_support=2, min_head_coverage=0.1,
              min_confidence=0.2, method="sample", paths=200, seed=5, verbose=0)
    a = mine(g, max_batches=30, **kw)
    b = mine(g, max_batches=30, **kw)
    np.testing.assert_array_equal(a.rules, b.rules)
    # Every sampled rule passes the thresholds with its exact metrics ...
    want = ref.rule_metrics(t, n_ent, n_rel, a.rules)
    for k in ref.METRIC_KEYS:
        np.testing.assert_array_equal(a.metrics[k], want[k], err_msg=k)
    # ... so they are among the exact miner's rules; on a tiny graph the walks find most of
    # them (not all: a walk never takes the head fact itself as its first step, as in AnyBURL,
    # so a rule supported only through its own head fact is out of reach).
    exact = mine(g, **{k: v for k, v in kw.items()
                       if k not in ("method", "paths", "seed")})
    found = {r.tobytes() for r in a.rules}
    every = {r.tobytes() for r in exact.rules}
    assert found <= every
    assert len(found) >= 0.85 * len(every)
    assert a.info_["batches"] == 30 and a.info_["method"] == "sample"
    # A time budget stops between batches; it gives a prefix of the same batch sequence.
    timed = mine(g, time_budget=0.05, **kw)
    assert timed.info_["batches"] >= 1
    fewer = mine(g, max_batches=timed.info_["batches"], **kw)
    np.testing.assert_array_equal(timed.rules, fewer.rules)


@pytest.fixture(scope="module")
def small_rules():
    n_ent, n_rel = 12, 3
    t = _graph(n_ent, n_rel, 60, 21)
    rs = mine(KGGraph.of(t, n_ent, n_rel), max_length=3, max_length_acyclic=2, min_support=1,
              min_head_coverage=0.0, min_confidence=0.05, verbose=0)
    return t, n_ent, n_rel, rs


@pytest.mark.parametrize("pc", [0.0, 5.0])
def test_candidates_match_brute_force_application(small_rules, pc):
    t, n_ent, n_rel, rs = small_rules
    rs = KGRuleSet(rs.rules, rs.metrics, rs.graph, pc=pc)
    queries = np.array([[e, r] for e in range(n_ent) for r in range(n_rel)], dtype=np.int64)
    for inverse, direction in ((False, "tail"), (True, "head")):
        want = ref.apply_brute_force(t, n_ent, rs.rules, rs.metrics, queries, direction, pc)
        got = rs.candidates(queries[:, 0], queries[:, 1], inverse=inverse)
        for (ids, _, mx), w in zip(got, want):
            assert sorted(ids.tolist()) == sorted(w)
            for y, m in zip(ids, mx):
                assert m == pytest.approx(max(w[int(y)]), abs=0, rel=1e-15)
        # Levels follow the aggregation order.
        for agg in ref.AGGREGATIONS:
            rs.aggregation = agg
            got = rs.candidates(queries[:, 0], queries[:, 1], inverse=inverse)
            for (ids, level, _), w in zip(got, want):
                lv = ref.aggregate_order(w, agg)
                assert [lv[int(y)] for y in ids] == level.tolist()


@pytest.mark.parametrize("agg", ref.AGGREGATIONS)
def test_filtered_ranks_match_brute_force(small_rules, agg):
    t, n_ent, n_rel, rs = small_rules
    rs = KGRuleSet(rs.rules, rs.metrics, rs.graph, aggregation=agg)
    test = _graph(n_ent, n_rel, 25, 99)
    known = np.concatenate([t, test])
    want = ref.filtered_ranks_brute_force(t, n_ent, rs.rules, rs.metrics, test, known, agg)
    got = rs.ranks(test, known)
    for col, direction in enumerate(("head", "tail")):
        np.testing.assert_array_equal(got[direction]["optimistic"], want[0][:, col])
        np.testing.assert_array_equal(got[direction]["pessimistic"], want[1][:, col])
    res = rs.evaluate(test, known)
    r = (want[0] + want[1]) / 2.0
    assert res["both"]["mrr"] == pytest.approx(np.mean(1.0 / np.concatenate([r[:, 0], r[:, 1]])))
    assert set(res) == {"both", "head", "tail", "per_relation"}


def test_predict_top_k_and_filter(small_rules):
    t, n_ent, n_rel, rs = small_rules
    ids, scores = rs.predict_tails([0, 1, 2], 1, k=4)
    assert ids.shape == scores.shape == (3, 4)
    full = rs.candidates([0, 1, 2], 1)
    for i, (c, _, m) in enumerate(full):
        n = min(4, len(c))
        np.testing.assert_array_equal(ids[i, :n], c[:n])
        np.testing.assert_array_equal(scores[i, :n], m[:n])
        assert np.all(ids[i, n:] == -1) and np.all(np.isneginf(scores[i, n:]))
        # maxplus orders by the highest confidence first.
        assert np.all(np.diff(scores[i, :n]) <= 0)
    # Filtering drops known tails and refills from the rest.
    e, r = next((e, r) for e in range(n_ent) for r in range(n_rel)
                if len(rs.candidates(e, r)[0][0]) >= 3)
    c = rs.candidates(e, r)[0][0]
    fid, _ = rs.predict_tails(e, r, k=2, filter_triples=[[e, r, int(c[0])]])
    np.testing.assert_array_equal(fid[0], c[1:3])
    hid, _ = rs.predict_heads(1, 3, k=2)
    assert hid.shape == (1, 2)


def test_explanations_are_paths_of_the_graph():
    d = load_kg("umls")
    rs = mine(d, max_length=2, max_length_acyclic=1, verbose=0)
    facts = set(map(tuple, d.decode(d.train)))
    checked = 0
    for h, r, t in d.test[:20]:
        for direction in ("tail", "head"):
            ex = rs.explain(int(h), int(r), int(t), direction=direction, limit=2)
            confs = [e["confidence"] for e in ex]
            assert confs == sorted(confs, reverse=True)
            for e in ex:
                assert e["text"] == rs.text(e["rule"])
                assert 1 <= len(e["groundings"]) <= 2
                for path in e["groundings"]:
                    assert all(step in facts for step in path)
                    checked += 1
    assert checked > 20
    # Labels work as well as ids.
    h, r, t = d.decode(d.test[:1])[0]
    assert rs.explain(h, r, t) == rs.explain(*map(int, d.test[0]))


@pytest.mark.parametrize("suffix", [".txt", ".json"])
def test_save_load_round_trip(tmp_path, suffix):
    d = load_kg("nations")
    rs = mine(d, max_length=2, max_length_acyclic=1, min_support=10, min_confidence=0.9,
              verbose=0)
    assert set(rs.rules[:, 0]) == {0, 1, 2}
    path = tmp_path / f"rules{suffix}"
    rs.save(path)
    back = KGRuleSet.load(path, d)
    np.testing.assert_array_equal(back.rules, rs.rules)
    for k in ("support", "body_pairs"):
        np.testing.assert_array_equal(back.metrics[k], rs.metrics[k])
    known = d.all_triples()
    assert back.evaluate(d.test, known) == rs.evaluate(d.test, known)
    again = KGRuleSet.load(path, d, remeasure=True)
    for k in ref.METRIC_KEYS:
        np.testing.assert_array_equal(again.metrics[k], rs.metrics[k])


def test_filter_and_top():
    d = load_kg("nations")
    rs = mine(d, max_length=2, max_length_acyclic=1, verbose=0)
    strict = rs.filter(min_confidence=0.5, kinds=["closed"])
    assert 0 < len(strict) < len(rs)
    assert np.all(strict.rules[:, 0] == 0) and np.all(strict.metrics["std_confidence"] >= 0.5)
    assert np.all(rs.filter(max_length=1).lengths() == 1)
    top = rs.top(d.relations[0], 3)
    assert 1 <= len(top) <= 3 and all(d.relations[0] in line for line in top)


def _thread_outputs(d, known):
    """Everything the miners, the metrics and the rule application return on ``d``, flattened
    to a list of ``(name, array)`` in a fixed order."""
    rs = mine(d, max_length=2, max_length_acyclic=1, min_confidence=0.5, verbose=0)
    sampled = mine(d, method="sample", max_batches=3, paths=300, max_length=3, verbose=0)
    out = [("rules", rs.rules), ("sampled.rules", sampled.rules)]
    for name, s in (("rules", rs), ("sampled", sampled)):
        assert sorted(s.metrics) == sorted(ref.METRIC_KEYS)
        out += [(f"{name}.metrics[{k}]", s.metrics[k]) for k in ref.METRIC_KEYS]
    strong = rs.filter(min_confidence=0.9)  # ~40k rules: the other aggregations, predictions
    for agg, s in (("maxplus", rs), ("max_noisy_or", strong), ("noisy_or", strong)):
        r = KGRuleSet(s.rules, s.metrics, s.graph, aggregation=agg).ranks(d.test, known)
        out += [(f"ranks[{agg}][{side}][{ties}]", r[side][ties])
                for side in ("head", "tail") for ties in ("optimistic", "pessimistic",
                                                          "realistic")]
    rows, m = length2_metrics(d)
    out += [("length2.rows", rows)] + [(f"length2[{k}]", m[k]) for k in ref.METRIC_KEYS]
    q = d.test[:60]
    for name, (ids, scores) in (("predict_tails", strong.predict_tails(q[:, 0], q[:, 1], k=10)),
                                ("predict_heads", strong.predict_heads(q[:, 1], q[:, 2],
                                                                       k=10))):
        out += [(f"{name}.ids", ids), (f"{name}.scores", scores)]
    for i, (ids, level, mx) in enumerate(strong.candidates(q[:, 0], q[:, 1])):
        out += [(f"candidates[{i}]", np.concatenate([ids, level, mx]))]
    return out


def test_results_do_not_depend_on_the_thread_count():
    """Mining (exact and sampled), every metric, ranks under every aggregation and tie mode,
    all length-2 rules and the predictions on UMLS: the same bits with 1 and 2 threads."""
    d = load_kg("umls")
    known = d.all_triples()
    before = nesy.get_num_threads()
    out = []
    try:
        for threads in (1, 2):
            nesy.set_num_threads(threads)
            assert nesy.get_num_threads() == threads
            out.append(_thread_outputs(d, known))
    finally:
        nesy.set_num_threads(before)
    assert [n for n, _ in out[0]] == [n for n, _ in out[1]]
    for (name, a), (_, b) in zip(*out):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    got = dict(out[0])
    # Not trivially equal: rules were mined, queries have candidates, ranks vary.
    assert len(got["rules"]) > 50 and len(got["sampled.rules"]) > 0
    assert np.any(got["predict_tails.ids"][:, 0] >= 0)
    assert len(np.unique(got["ranks[maxplus][tail][realistic]"])) > 3


def test_bad_input_is_refused(tmp_path):
    d = load_kg("nations")
    with pytest.raises(UnknownLabelError, match="no_such_relation"):
        mine(d, relations=["no_such_relation"], verbose=0)
    with pytest.raises(ValueError, match="time_budget"):
        mine(d, method="sample", time_budget=0, verbose=0)
    with pytest.raises(ValueError, match="time_budget"):
        mine(d, method="sample", verbose=0)
    with pytest.raises(ValueError, match="max_length"):
        mine(d, max_length=4, verbose=0)
    with pytest.raises(ValueError, match="nothing to mine"):
        mine(d, max_length=0, max_length_acyclic=0, verbose=0)
    with pytest.raises(ValueError, match="min_confidence"):
        mine(d, min_confidence=1.5, verbose=0)
    with pytest.raises(ValueError, match="method"):
        mine(d, method="amie", verbose=0)
    with pytest.raises(ValueError, match="empty"):
        mine(np.zeros((0, 3), dtype=np.int64), verbose=0)
    with pytest.raises(TypeError, match="graph"):
        mine(np.zeros((3, 3)), verbose=0)
    rs = mine(d, max_length=1, max_length_acyclic=0, verbose=0)
    with pytest.raises(ValueError, match="aggregation"):
        KGRuleSet(rs.rules, rs.metrics, d, aggregation="sum")
    with pytest.raises(IndexError, match=r"^heads\[0\]: index 10000"):
        rs.predict_tails(10_000, 0)
    with pytest.raises(UnknownLabelError):
        rs.predict_tails("atlantis", d.relations[0])
    with pytest.raises(ValueError, match="k"):
        rs.predict_tails(0, 0, k=0)
    with pytest.raises(IndexError):
        rs.evaluate(np.array([[0, 99, 1]]), d.all_triples())
    bad = rs.rules.copy()
    bad[0, 0] = 7
    with pytest.raises(ValueError, match="kind"):
        rule_metrics(d, bad)
    bad = rs.rules.copy()
    bad[0, 1] = d.n_relations
    with pytest.raises(IndexError, match="head"):
        rule_metrics(d, bad)
    # A rule file naming an unknown relation is refused and nothing is half-loaded.
    path = tmp_path / "rules.txt"
    rs.save(path)
    text = path.read_text().replace(d.relations[0], "no_such_relation")
    path.write_text(text)
    with pytest.raises(UnknownLabelError, match="no_such_relation"):
        KGRuleSet.load(path, d)
    with pytest.raises(ValueError, match="C-contiguous|int64"):
        _core.rules_metrics(KGGraph.of(d).index, np.asfortranarray(rs.rules))


def test_all_length2_rules_match_the_reference():
    n_ent, n_rel = 9, 2
    t = _graph(n_ent, n_rel, 30, 6)
    rows, m = length2_metrics(KGGraph.of(t, n_ent, n_rel))
    assert rows.shape == (n_rel * (2 * n_rel) ** 2, 11)
    np.testing.assert_array_equal(rows, ref.sort_rows(rows))
    want = ref.rule_metrics(t, n_ent, n_rel, rows)
    for k in ref.METRIC_KEYS:
        np.testing.assert_array_equal(m[k], want[k], err_msg=k)


def test_ranks_of_scores_is_the_embedding_evaluator():
    # Scores of a trained-looking table ranked by kge_ranks_of_scores equal kge_ranks.
    from nesy.kge.evaluate import filtered_ranks, ranks_of_scores
    from nesy.kge.scoring import score_heads, score_tails
    rng = np.random.default_rng(0)
    ent = rng.standard_normal((40, 8))
    rel = rng.standard_normal((3, 8))
    test = _graph(40, 3, 30, 1)
    known = np.concatenate([test, _graph(40, 3, 200, 2)])
    want = filtered_ranks("distmult", ent, rel, test, known)
    got_t = ranks_of_scores(score_tails("distmult", ent, rel, test[:, 0], test[:, 1]), test,
                            known, "tail")
    got_h = ranks_of_scores(score_heads("distmult", ent, rel, test[:, 1], test[:, 2]), test,
                            known, "head")
    for got, side in ((got_t, "tail"), (got_h, "head")):
        for ties in ("optimistic", "pessimistic"):
            np.testing.assert_array_equal(got[ties], want[side][ties])
    with pytest.raises(ValueError, match="side"):
        ranks_of_scores(np.zeros((len(test), 40)), test, known, "left")
    with pytest.raises(ValueError, match="rows"):
        ranks_of_scores(np.zeros((len(test) - 1, 40)), test, known, "tail")
    with pytest.raises(IndexError):
        ranks_of_scores(np.zeros((len(test), 10)), test, known, "tail")


def test_command_line_mine_and_eval(tmp_path, capsys):
    from nesy.cli import main

    out = tmp_path / "rules.json"
    assert main(["rules", "mine", "--data", "nations", "--max-length", "1", "--min-confidence",
                 "0.5", "--out", str(out), "--show", "1", "--top", "2"]) == 0
    text = capsys.readouterr().out
    assert "closed path" in text and "saved" in text and "top rules for" in text
    assert main(["rules", "eval", "--data", "nations", "--rules", str(out)]) == 0
    text = capsys.readouterr().out
    assert "queries/s" in text and "| both" in text
    assert main(["rules", "eval", "--data", "nations", "--method", "sample", "--max-length",
                 "2", "--max-batches", "2", "--aggregation", "noisy_or"]) == 0
    assert "sample miner" in capsys.readouterr().out
    # User errors: exit 2 with a message, nothing written.
    bad = tmp_path / "bad.txt"
    assert main(["rules", "mine", "--data", "nations", "--max-length", "5",
                 "--out", str(bad)]) == 2
    assert not bad.exists()
    assert main(["rules", "eval", "--data", "umls", "--rules", str(out)]) == 2
    assert main(["rules", "mine", "--data", "nations", "--max-length", "1",
                 "--min-support", "99999999999999999999999"]) == 2  # OverflowError
    # Counts must be positive (argparse exits 2), and --out's folder is checked before mining.
    for option, value, want in (("--show", "-1", "an integer >= 0"),
                                ("--top", "x", "an integer >= 0"),
                                ("--paths", "0", "a positive integer"),
                                ("--max-batches", "0", "a positive integer")):
        with pytest.raises(SystemExit) as info:
            main(["rules", "mine", "--data", "nations", option, value])
        assert info.value.code == 2
        assert f"argument {option}: expected {want}" in capsys.readouterr().err
    assert main(["rules", "mine", "--data", "nations", "--max-length", "1", "--show", "0"]) == 0
    assert "top rules for" not in capsys.readouterr().out
    assert main(["rules", "mine", "--data", "nations", "--out",
                 str(tmp_path / "missing" / "r.json")]) == 2
    assert "no folder" in capsys.readouterr().err


def test_bad_seeds_counts_and_path_budgets_name_the_argument():
    tr = np.array([[0, 0, 1], [1, 0, 2], [2, 1, 0]])
    for seed, exc in ((-1, ValueError), (2**64, ValueError), (1.5, TypeError)):
        with pytest.raises(exc, match="seed"):
            mine(tr, method="sample", max_batches=1, seed=seed, verbose=0)
    # Refused up front (it allocated, and hung or aborted, in the sampler before).
    with pytest.raises(ValueError, match="paths: expected 1 to 10,000,000"):
        mine(tr, method="sample", paths=10**12, max_batches=1, verbose=0)
    mine(tr, method="sample", max_batches=1, seed=2**64 - 1, verbose=0)  # the largest seed
    for kw, exc, match in ((dict(n_entities=-5), ValueError, "n_entities: -5 is too small"),
                           (dict(n_entities=2), ValueError, "n_entities: 2 is too small"),
                           (dict(n_relations=2.5), TypeError, "n_relations: expected an int"),
                           (dict(n_relations=True), TypeError, "n_relations")):
        with pytest.raises(exc, match=match):
            KGGraph.of(tr, **kw)
    g = KGGraph.of(tr, n_entities=np.int64(5), n_relations=4)
    assert (g.n_entities, g.n_relations) == (5, 4) and g.index.n_entities == 5


# --------------------------------------------------------------------------- bad inputs (s10)
def _small_rules():
    return mine(_graph(14, 3, 80, 1), max_length=2, max_length_acyclic=0, min_support=1,
                min_head_coverage=0.0, min_confidence=0.0, verbose=0)


def test_rule_set_queries_name_bad_counts_and_indices():
    rs = _small_rules()
    assert len(rs) > 0
    with pytest.raises(TypeError, match=r"^k: expected an integer, got float 2\.5"):
        rs.predict_tails(0, 0, k=2.5)
    with pytest.raises(ValueError, match=r"^k: expected an integer >= 1, got 0"):
        rs.predict_heads(0, 0, k=0)
    with pytest.raises(IndexError, match=rf"^k: rule 1000000000 is out of range for {len(rs):,} "
                                         "rules"):
        rs.text(10**9)
    with pytest.raises(IndexError, match=r"^k: rule -1 is out of range"):
        rs.text(-1)
    with pytest.raises(TypeError, match=r"^k: expected an integer"):
        rs.text(1.0)
    with pytest.raises(TypeError, match=r"^k: expected an integer"):
        rs.top(0, k=2.5)
    with pytest.raises(TypeError, match=r"^limit: expected an integer"):
        rs.explain(0, 0, 1, limit=1.5)
    assert rs.text(np.int64(0)) == rs.text(0)
    with pytest.raises(IndexError, match=r"^heads\[0\]: index 14 is out of range for size 14$"):
        rs.predict_tails(14, 0)
    with pytest.raises(IndexError, match=r"^relations\[0\]: index 3 is out of range for size "
                                         r"3$"):
        rs.predict_tails(0, 3)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(min_head_coverage=float("nan")), ValueError, r"^min_head_coverage: expected a value in"),
    (dict(min_confidence=1.5), ValueError, r"^min_confidence: expected a value in \[0, 1\]"),
    (dict(min_confidence="a"), TypeError, r"^min_confidence: expected a number"),
    (dict(min_support=-1), ValueError, r"^min_support: expected an integer >= 0"),
    (dict(min_support=2.5), TypeError, r"^min_support: expected an integer"),
    (dict(max_length=1.5), TypeError, r"^max_length: expected an integer"),
])
def test_filter_checks_its_thresholds_as_mine_does(kw, exc, match):
    rs = _small_rules()
    with pytest.raises(exc, match=match):
        rs.filter(**kw)
    if "max_length" not in kw:
        with pytest.raises(exc, match=match.replace(">= 0", ">= 1")):
            mine(_graph(14, 3, 80, 1), max_length=1, max_length_acyclic=0, verbose=0, **kw)
    assert len(rs.filter(min_support=0, min_head_coverage=0.0, min_confidence=0.0)) == len(rs)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(max_length="a"), TypeError, r"^max_length: expected an integer, got str 'a'"),
    (dict(max_length=2.0), TypeError, r"^max_length: expected an integer, got float"),
    (dict(max_length=True), TypeError, r"^max_length: expected an integer, got bool"),
    (dict(max_length=-1), ValueError, r"^max_length: expected an integer in \[0, 3\], got -1"),
    (dict(max_length_acyclic=1.5), TypeError, r"^max_length_acyclic: expected an integer"),
    (dict(max_length_acyclic=3), ValueError, r"^max_length_acyclic: expected an integer in "
                                             r"\[0, 2\]"),
    (dict(method="x"), ValueError, r"^method: expected one of"),
    (dict(method=np.array(["exact"])), ValueError, r"^method: expected one of"),
    (dict(confidence=np.array(["std"])), ValueError, r"^confidence: expected 'std' or 'pca'"),
    (dict(method="sample", time_budget="a"), TypeError,
     r"^time_budget: expected a number of seconds or None, got str 'a'"),
    (dict(time_budget="a"), TypeError, r"^time_budget: expected a number"),
    (dict(method="sample", time_budget=True), TypeError, r"^time_budget: expected a number"),
    (dict(method="sample", time_budget=float("nan")), ValueError,
     r"^time_budget: expected a positive number of seconds"),
    (dict(method="sample", max_batches=1, paths="a"), TypeError,
     r"^paths: expected an integer, got str"),
    (dict(method="sample", max_batches=1, paths=2.5), TypeError, r"^paths: expected an integer"),
    (dict(method="sample", max_batches=1, paths=0), ValueError,
     r"^paths: expected 1 to 10,000,000, got 0"),
    (dict(paths="a"), TypeError, r"^paths: expected an integer"),
    (dict(method="sample", max_batches="a"), TypeError, r"^max_batches: expected an integer"),
    (dict(method="sample", max_batches=1.5), TypeError, r"^max_batches: expected an integer"),
    (dict(method="sample", max_batches=0), ValueError,
     r"^max_batches: expected an integer >= 1, got 0"),
    (dict(method="sample", max_batches=-1), ValueError, r"^max_batches: expected an integer"),
    (dict(max_batches="x"), TypeError, r"^max_batches: expected an integer"),
    (dict(method="sample", max_batches=1, seed="a"), TypeError, r"^seed: expected an integer"),
    (dict(relations=0), TypeError, r"^relations: expected a sequence of relation ids or labels, "
                                   r"got int 0 \(for one relation: \[0\]\)"),
    (dict(relations="r0"), TypeError, r"^relations: expected a sequence"),
    (dict(relations=np.int64(0)), TypeError, r"^relations: expected a sequence"),
    (dict(relations=np.array(0)), TypeError, r"^relations: expected a sequence"),
    (dict(verbose="a"), TypeError, r"^verbose: expected an integer"),
    (dict(verbose=1.0), TypeError, r"^verbose: expected an integer \(0 or None: silent"),
])
def test_every_mine_option_is_checked_up_front_and_named(kw, exc, match):
    """These leaked Python errors ('<=' not supported, could not convert string to float,
    'int' object is not iterable) or were taken silently (paths=2.5 as 2 walks, max_batches=1.5
    as 2 batches, max_batches=0 as an empty rule set, relations="r0" as the labels "r", "0")."""
    tr = _graph(14, 3, 80, 1)
    before = tr.copy()
    opts = dict(max_length=1, max_length_acyclic=0, verbose=0)
    opts.update(kw)
    with pytest.raises(exc, match=match):
        mine(tr, **opts)
    np.testing.assert_array_equal(tr, before)


def test_mine_takes_verbose_none_as_silent(capsys):
    """verbose=None was silent before the options were checked up front (tqdm's disable=not
    None), as it is for KGEModel; the check refused it."""
    tr = _graph(14, 3, 80, 1)
    want = mine(tr, max_length=2, max_length_acyclic=1, verbose=0)
    got = mine(tr, max_length=2, max_length_acyclic=1, verbose=None)
    np.testing.assert_array_equal(got.rules, want.rules)
    assert capsys.readouterr().err == ""


def test_mine_accepts_numpy_integers_and_bools_where_they_fit():
    tr = _graph(14, 3, 80, 1)
    want = mine(tr, max_length=2, max_length_acyclic=1, verbose=0)
    got = mine(tr, max_length=np.int64(2), max_length_acyclic=np.int32(1), verbose=False)
    np.testing.assert_array_equal(got.rules, want.rules)
    a = mine(tr, method="sample", paths=np.int64(50), max_batches=np.int64(2), verbose=0,
             relations=np.array([0, 1]), time_budget=np.float64(600))
    b = mine(tr, method="sample", paths=50, max_batches=2, verbose=0, relations=[0, 1])
    np.testing.assert_array_equal(a.rules, b.rules)
    assert a.info_["batches"] == 2


# --------------------------------------------------------------------------- s15 review
def test_mine_mines_only_the_relations_that_occur(monkeypatch):
    """s15 #1: mine() walked range(n_relations): one relation id of 10**6 ran for minutes,
    one of 10**9 got the process killed. Relations without facts have no rule with support,
    so the rules are those of the same graph with its relation ids made dense."""
    sparse = _graph(12, 2, 60, 3)
    sparse[:, 1] *= 5  # relations 0 and 5
    dense = sparse.copy()
    dense[:, 1] //= 5
    calls = []
    real = _core.rules_mine_exact

    def spy(index, heads, *args):
        calls.extend(heads)
        return real(index, heads, *args)

    monkeypatch.setattr(_core, "rules_mine_exact", spy)
    kw = dict(max_length=2, max_length_acyclic=1, min_support=1, verbose=0)
    got = mine(sparse, **kw)
    assert calls == [0, 5]
    want = mine(dense, **kw)
    rows = want.rules.copy()
    for col in (1, 5, 7, 9):
        rows[:, col] = np.where(rows[:, col] >= 0, rows[:, col] * 5, rows[:, col])
    np.testing.assert_array_equal(got.rules, rows)
    for k in ref.METRIC_KEYS:
        np.testing.assert_array_equal(got.metrics[k], want.metrics[k], err_msg=k)
    # The sampler seeds each head relation by its id: the relations without facts changed
    # nothing (the rules of every head given, as before).
    sampled = dict(kw, method="sample", max_batches=2, paths=50)
    a, b = mine(sparse, **sampled), mine(sparse, relations=range(6), **sampled)
    assert len(a) > 0 and a.info_["paths_per_batch"] == 2 * 50
    np.testing.assert_array_equal(a.rules, b.rules)


def test_mine_refuses_a_huge_id_up_front_saying_ids_must_be_dense(monkeypatch):
    """s15 #1: a quick ValueError naming the id (as KGEModel.fit gives), before any work."""
    import nesy.rules.kg as kg

    for n in (2**20, 10**9):
        with pytest.raises(ValueError, match=rf"^graph: {n + 1:,} relations, more than the rule "
                                             rf"index takes.*relation id {n:,} implies a table "
                                             r".*ids must be 0\.\.n-1"):
            mine(np.array([[0, n, 1]]), verbose=0)
    # An entity id far beyond the machine's memory (made small here) likewise.
    monkeypatch.setattr(kg, "physical_memory_bytes", lambda: 10**6)
    with pytest.raises(ValueError, match=r"^graph: 1 relations x 100,001 entities need .* GiB "
                                         r"for the rule index.*entity id 100,000 implies.*ids "
                                         r"must be 0\.\.n-1"):
        mine(np.array([[0, 0, 10**5]]), verbose=0)
    # Dense ids: no hint about them.
    dense = np.array([[i, 0, i + 1] for i in range(0, 10**5, 2)])
    with pytest.raises(ValueError, match=r"^graph: .*for the rule index, more than this "
                                         r"machine's [0-9.]+ GiB$"):
        _ = KGGraph.of(dense).index
    monkeypatch.undo()
    assert len(mine(np.array([[0, 0, 1], [1, 0, 2], [0, 10**5, 2]]), min_support=1,
                    verbose=0)) > 0


def _support_zero_rules():
    t = np.array([[0, 0, 1], [1, 1, 2], [2, 0, 3], [0, 1, 1]])
    rows = np.array([[0, 0, 0, -1, -1, 1, 0, -1, 0, -1, 0],   # r0(X,Y) <- r1(X,Y): support 1
                     [0, 1, 0, -1, -1, 0, 1, -1, 0, -1, 0],   # r1(X,Y) <- r0(Y,X): support 0
                     [1, 0, 0, 3, 2, 1, 0, -1, 0, -1, 0]])    # r0(X,3) <- r1(X,2): support 0
    return t, rows


def test_filter_with_min_support_zero_keeps_rules_without_support():
    """s15 #3: filter(min_support=0) (its default) dropped support-0 rules, contrary to its
    docstring, so filter(kinds=...) also changed the predictions of the kinds it kept."""
    t, rows = _support_zero_rules()
    m = rule_metrics(t, rows)
    assert m["support"].tolist() == [1, 0, 0]
    rs = KGRuleSet(rows, m, t)
    assert len(rs.filter(min_support=0)) == len(rs.filter()) == 3
    assert len(rs.filter(min_support=1)) == 1
    closed = rs.filter(kinds=["closed"])
    assert len(closed) == 2
    test = np.array([[1, 1, 2], [0, 0, 1]])
    only = KGRuleSet(rows[:2], {k: v[:2] for k, v in m.items()}, t)
    for ties in ("optimistic", "pessimistic"):
        for side in ("head", "tail"):
            np.testing.assert_array_equal(closed.ranks(test, t)[side][ties],
                                          only.ranks(test, t)[side][ties])


def test_filter_refuses_one_string_for_kinds_and_relations():
    """s15 #11: filter(kinds="closed") iterated over the characters ("unknown ['c', 'l', ...]"),
    filter(relations="r") looked the label "r" up letter by letter."""
    d = load_kg("nations")
    rs = mine(d, max_length=1, max_length_acyclic=0, verbose=0)
    with pytest.raises(TypeError, match=r"^kinds: expected a sequence of kinds among .*got str "
                                        r"'closed' \(for one kind: \['closed'\]\)"):
        rs.filter(kinds="closed")
    with pytest.raises(TypeError, match=r"^relations: expected a sequence of relation ids or "
                                        r"labels, got str 'intergovorgs' \(for one relation: "):
        rs.filter(relations="intergovorgs")
    with pytest.raises(TypeError, match=r"^relations: expected a sequence"):
        rs.filter(relations=3)
    one = rs.filter(relations=["intergovorgs"], kinds=("closed",))
    assert len(one) > 0 and set(one.rules[:, 1]) == {d.relations.index("intergovorgs")}


def test_rule_set_errors_name_the_arguments():
    """s15 #12: evaluate named the kernel's "triples" and "known"; predict_tails took a filter
    with ids out of range; an empty query list said "lengths differ"."""
    rs = _small_rules()  # 14 entities, 3 relations
    t = _graph(14, 3, 80, 1)
    with pytest.raises(IndexError, match=r"^test\[0\] \(tail\): index 999 is out of range for "
                                         r"size 14"):
        rs.evaluate([[0, 0, 999]], t)
    with pytest.raises(IndexError, match=r"^filter_triples\[1\] \(relation\): index 3"):
        rs.evaluate(t[:3], [[0, 0, 1], [0, 3, 1]])
    with pytest.raises(IndexError, match=r"^test\[0\] \(head\): index -1"):
        rs.ranks([[-1, 0, 1]], t)
    with pytest.raises(IndexError, match=r"^filter_triples\[0\] \(tail\): index 999"):
        rs.predict_tails(0, 0, filter_triples=[[0, 0, 999]])
    with pytest.raises(IndexError, match=r"^filter_triples\[0\] \(head\): index 14"):
        rs.predict_heads(0, 1, filter_triples=[[14, 0, 1]])
    with pytest.raises(ValueError, match=r"^heads: no queries \(an empty sequence\)"):
        rs.predict_tails([], 0)
    with pytest.raises(ValueError, match=r"^tails: no queries"):
        rs.predict_heads(0, [])
    with pytest.raises(ValueError, match=r"^heads \(2\) and relations \(3\): lengths differ"):
        rs.predict_tails([0, 1], [0, 1, 2])
    with pytest.raises(ValueError, match=r"^test\[0, 0\]: got a label, but this graph has no "
                                         r"entity labels"):
        rs.evaluate([["a", 0, 1]], t)


@pytest.mark.parametrize("change,exc,match", [
    (dict(support=[-5]), ValueError, r"^metrics\['support'\]\[0\]: expected an integer count "
                                     r">= 0, got -5"),
    (dict(support=[np.nan]), ValueError, r"^metrics\['support'\]\[0\]: expected an integer"),
    (dict(body_pairs=[2.5]), ValueError, r"^metrics\['body_pairs'\]\[0\]: expected an integer"),
    (dict(head_facts=[-2]), ValueError, r"^metrics\['head_facts'\]\[0\]: expected an integer "
                                        r"count >= -1"),
    (dict(std_confidence=[1.5]), ValueError, r"^metrics\['std_confidence'\]\[0\]: expected a "
                                             r"ratio in \[0, 1\]"),
    (dict(head_coverage=[np.nan]), ValueError, r"^metrics\['head_coverage'\]\[0\]: expected a "
                                               r"ratio"),
    (dict(support=["2"]), TypeError, r"^metrics\['support'\]: expected numbers, got dtype"),
    (dict(support=[True]), TypeError, r"^metrics\['support'\]: expected numbers"),
])
def test_rule_set_checks_metric_values(change, exc, match):
    """s15 #13: support -5 gave a weight of 0, NaN failed at the first prediction with the
    kernel's "confidence[0]"."""
    t, rows = _support_zero_rules()
    m = rule_metrics(t, rows[:1])
    m.update({k: np.array(v) for k, v in change.items()})
    with pytest.raises(exc, match=match):
        KGRuleSet(rows[:1], m, t)


def test_rule_set_checks_pc():
    t, rows = _support_zero_rules()
    m = rule_metrics(t, rows)
    for pc, exc, match in (("5", TypeError, r"^pc: expected a number, got str '5'"),
                           (True, TypeError, r"^pc: expected a number"),
                           (np.inf, ValueError, r"^pc: expected a finite value >= 0, got inf"),
                           (-1, ValueError, r"^pc: expected a finite value >= 0"),
                           (np.nan, ValueError, r"^pc: expected a finite value")):
        with pytest.raises(exc, match=match):
            KGRuleSet(rows, m, t, pc=pc)
    assert KGRuleSet(rows, m, t, pc=np.int64(0)).pc == 0.0
    m["support"] = m["support"].astype(np.float64)  # integral floats are counts
    assert len(KGRuleSet(rows, m, t)) == 3


def test_rule_set_takes_label_triples_where_kge_models_do():
    """s15 #10: KGEModel.evaluate takes label triples; KGRuleSet.evaluate said "test: expected
    integer ids, got dtype <U12"."""
    d = load_kg("nations")
    rs = mine(d, max_length=1, max_length_acyclic=1, verbose=0)
    test = d.test[:20]
    labels = [(d.entities[h], d.relations[r], d.entities[t]) for h, r, t in test.tolist()]
    mixed = [(h, r, int(test[i, 2])) for i, (h, r, _) in enumerate(labels)]
    known = d.all_triples()
    want = rs.evaluate(test, known)
    assert rs.evaluate(labels, known) == want
    assert rs.evaluate(np.array(labels), known) == want
    assert rs.evaluate(mixed, known) == want
    ids, _ = rs.predict_tails("usa", "intergovorgs", k=5, filter_triples=labels)
    np.testing.assert_array_equal(ids, rs.predict_tails("usa", "intergovorgs", k=5,
                                                        filter_triples=test)[0])
    with pytest.raises(UnknownLabelError, match=r"^test\[0, 0\]: unknown entity label "
                                                r"'atlantis'"):
        rs.evaluate([("atlantis", "intergovorgs", "usa")], known)


@pytest.mark.parametrize("suffix", [".txt", ".json"])
def test_rule_files_keep_how_the_rules_predict(tmp_path, suffix):
    """s15 #14: a set saved with pc=0, aggregation="noisy_or" reloaded as maxplus, pc=5.
    Files without the settings (older versions) load with the defaults as before, and the
    older reader (which skips '#' lines and unknown JSON keys) reads the new files."""
    from nesy.rules import kg_format

    d = load_kg("nations")
    rs = mine(d, max_length=1, max_length_acyclic=1, verbose=0)
    custom = KGRuleSet(rs.rules, rs.metrics, d, pc=0.5, aggregation="noisy_or",
                       exclude_query=False)
    path = tmp_path / f"r{suffix}"
    custom.save(path)
    back = KGRuleSet.load(path, d)
    assert (back.pc, back.aggregation, back.exclude_query) == (0.5, "noisy_or", False)
    np.testing.assert_array_equal(back.rules, custom.rules)
    assert back.evaluate(d.test, d.all_triples()) == custom.evaluate(d.test, d.all_triples())
    over = KGRuleSet.load(path, d, pc=2.0, exclude_query=True)
    assert (over.pc, over.aggregation, over.exclude_query) == (2.0, "noisy_or", True)
    rows, metrics = kg_format.load_rules(path, d.relations, d.entities)
    np.testing.assert_array_equal(rows, custom.rules)
    # A file without settings: the constructor's defaults.
    old = tmp_path / f"old{suffix}"
    kg_format.save_rules(old, rs.rules, rs.metrics, d.relations, d.entities)
    assert "settings" not in old.read_text()
    plain = KGRuleSet.load(old, d)
    assert (plain.pc, plain.aggregation, plain.exclude_query) == (5.0, "maxplus", True)
    # The file differs from one without settings by the settings alone.
    lines = path.read_text().splitlines()
    kept = [ln for ln in lines if "settings" in ln]
    assert len(kept) == 1 and [ln for ln in lines if ln not in kept] == \
        old.read_text().splitlines()


def test_command_line_eval_uses_the_settings_of_the_rule_file(tmp_path, capsys):
    from nesy.cli import main

    d = load_kg("nations")
    rs = mine(d, max_length=1, max_length_acyclic=0, verbose=0)
    path = tmp_path / "r.json"
    KGRuleSet(rs.rules, rs.metrics, d, pc=0.0, aggregation="noisy_or").save(path)
    assert main(["rules", "eval", "--data", "nations", "--rules", str(path)]) == 0
    assert "rules alone (noisy_or, pc=0.0), test" in capsys.readouterr().out
    assert main(["rules", "eval", "--data", "nations", "--rules", str(path), "--pc", "1"]) == 0
    assert "rules alone (noisy_or, pc=1.0), test" in capsys.readouterr().out
    assert main(["rules", "eval", "--data", "nations", "--max-length", "1",
                 "--max-length-acyclic", "0"]) == 0
    assert "rules alone (maxplus, pc=5.0), test" in capsys.readouterr().out


# --------------------------------------------------------------------------- s22 review
def test_rule_queries_name_the_argument_and_position_as_kge_models_do():
    """s22 M4: "entity: id 99 is out of range for 14 entities", "unknown entity label
    'atlantis'" and "entity: expected an id or a label" named no argument; ``inverse=1`` got
    pyo3's "'int' object is not an instance of 'bool'"."""
    d = load_kg("nations")
    rs = mine(d, max_length=1, max_length_acyclic=0, verbose=0)
    cases = [
        (lambda: rs.predict_tails(99, 0), IndexError,
         r"^heads\[0\]: index 99 is out of range for size 14$"),
        (lambda: rs.predict_tails([0, 99], 0), IndexError, r"^heads\[1\]: index 99"),
        (lambda: rs.predict_tails("atlantis", 0), UnknownLabelError,
         r"^heads: unknown entity label 'atlantis' \(not among the graph's 14 entity labels\)"),
        (lambda: rs.predict_tails(["usa", "atlantis"], 0), UnknownLabelError,
         r"^heads\[1\]: unknown entity label 'atlantis'"),
        (lambda: rs.predict_tails(0.0, 0), TypeError,
         r"^heads\[0\]: expected an id or a label, got float 0\.0"),
        (lambda: rs.predict_tails(0, 99), IndexError, r"^relations\[0\]: index 99 .* size 55"),
        (lambda: rs.predict_heads(0, [1, 99]), IndexError, r"^tails\[1\]: index 99"),
        (lambda: rs.predict_heads("nope", 0), UnknownLabelError,
         r"^relations: unknown relation label 'nope'"),
        (lambda: rs.explain(99, 0, 0), IndexError, r"^head: index 99"),
        (lambda: rs.explain(0, "nope", 0), UnknownLabelError, r"^relation: unknown relation"),
        (lambda: rs.explain(0, 0, "atlantis"), UnknownLabelError, r"^tail: unknown entity"),
        (lambda: rs.filter(relations=[0, 999]), IndexError, r"^relations\[1\]: index 999"),
        (lambda: rs.top(999), IndexError, r"^relation: index 999"),
        (lambda: mine(d, relations=[0, "nope"], verbose=0), UnknownLabelError,
         r"^relations\[1\]: unknown relation label 'nope'"),
        (lambda: rs.candidates(0, 0, inverse="no"), TypeError,
         r"^inverse: expected a bool, got str 'no'"),
        (lambda: rs.candidates(0, 0, inverse=None), TypeError, r"^inverse: expected a bool"),
        (lambda: rs.candidates(99, 0, inverse=True), IndexError, r"^tails\[0\]: index 99"),
    ]
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()
    # 0/1 and NumPy booleans are booleans; labels as a NumPy string array.
    for flag in (1, np.bool_(True)):
        assert [c[0].tolist() for c in rs.candidates(0, 0, inverse=flag)] == \
            [c[0].tolist() for c in rs.candidates(0, 0, inverse=True)]
    ids, _ = rs.predict_tails(np.array(["usa", "uk"]), "intergovorgs", k=3)
    np.testing.assert_array_equal(ids, rs.predict_tails([d.entities.index("usa"),
                                                         d.entities.index("uk")],
                                                        d.relations.index("intergovorgs"),
                                                        k=3)[0])
    # A graph of id arrays has no labels.
    small = _small_rules()
    with pytest.raises(ValueError, match=r"^heads: got a label, but this graph has no entity "
                                         r"labels"):
        small.predict_tails("a", 0)


def test_rule_set_settings_are_checked_when_given_and_when_set():
    """s22 H2 and L10: exclude_query="no" meant True; rs.pc = nan made every weight 0
    silently; rs.aggregation = "foo" failed only in the kernel."""
    t, rows = _support_zero_rules()
    m = rule_metrics(t, rows)
    for bad in ("no", "false", None, 2, 0.5):
        with pytest.raises(TypeError, match=r"^exclude_query: expected a bool"):
            KGRuleSet(rows, m, t, exclude_query=bad)
    assert KGRuleSet(rows, m, t, exclude_query=np.bool_(False)).exclude_query is False
    assert KGRuleSet(rows, m, t, exclude_query=0).exclude_query is False
    rs = KGRuleSet(rows, m, t)
    with pytest.raises(ValueError, match=r"^pc: expected a finite value >= 0, got nan"):
        rs.pc = float("nan")
    with pytest.raises(TypeError, match=r"^pc: expected a number"):
        rs.pc = "1"
    with pytest.raises(ValueError, match=r"^aggregation: expected one of"):
        rs.aggregation = "foo"
    with pytest.raises(TypeError, match=r"^exclude_query: expected a bool"):
        rs.exclude_query = "no"
    assert rs.settings() == {"pc": 5.0, "aggregation": "maxplus", "exclude_query": True}
    rs.pc, rs.aggregation, rs.exclude_query = 1, "noisy_or", False
    assert rs.settings() == {"pc": 1.0, "aggregation": "noisy_or", "exclude_query": False}
    assert type(rs.pc) is float


def test_rule_set_needs_every_metric_its_methods_use(tmp_path):
    """s22 M6: metrics of support and body_pairs alone were accepted, then filter() failed
    with KeyError 'std_confidence', top() and save() with other messages."""
    g = np.array([[0, 0, 1], [1, 1, 2], [0, 2, 2], [3, 0, 4], [4, 1, 5], [3, 2, 6]])
    rows = [[0, 2, 0, -1, -1, 0, 0, 1, 0, -1, 0]]
    with pytest.raises(ValueError, match=r"^metrics: missing \['pca_body_pairs', 'head_facts', "
                                         r"'head_coverage', 'std_confidence', "
                                         r"'pca_confidence'\]"):
        KGRuleSet(rows, {"support": [1], "body_pairs": [2]}, g)
    with pytest.raises(TypeError, match=r"^metrics: expected a dict of arrays"):
        KGRuleSet(rows, [1, 2], g)
    full = KGRuleSet(rows, rule_metrics(g, rows), g)
    assert len(full.filter()) == 1 and len(full.top(2)) == 1
    full.save(tmp_path / "r.txt")


def test_rule_set_files_name_a_path_that_is_not_one():
    """s22 M8: KGRuleSet.load(None, d) said "expected str, bytes or os.PathLike object, not
    NoneType"; save(None) too (format detection called os.fspath first)."""
    t, rows = _support_zero_rules()
    rs = KGRuleSet(rows, rule_metrics(t, rows), t)
    with pytest.raises(TypeError, match=r"^path: expected a file path .* got NoneType None"):
        rs.save(None)
    with pytest.raises(TypeError, match=r"^path: expected a file path .* got NoneType None"):
        KGRuleSet.load(None, t)
