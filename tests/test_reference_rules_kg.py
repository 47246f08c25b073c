"""Checks of the knowledge-graph rule references in ``tests/reference_rules_kg.py``.

* Metrics: a 5-entity graph whose support, body pairs, PCA body pairs, head facts and ratios are
  worked out by hand in the comments (symmetric rule, compositions of length 2 and 3, inverse
  atoms, AC1 and AC2 rules with ``head_inverse`` 0 and 1); on random graphs, against an
  independent count over every binding of the rule's variables (no matrices).
* Miner: hand-picked rules in and out of the mined set on the 5-entity graph (thresholds, PCA,
  trivial rules); on a random graph, exactly the enumerated rules whose binding-count metrics
  pass the thresholds, unique and sorted.
* Application: hand-worked candidates and confidences of every kind of rule for tail and head
  queries; on random graphs, against the set of triples each rule predicts by its groundings.
* Aggregation and ranks: hand-worked levels where the three aggregations disagree, and
  hand-worked filtered ranks with ties.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

try:  # tests/ as a package, or as a plain directory on sys.path
    from tests import reference_rules_kg as ref
except ImportError:
    import reference_rules_kg as ref

S, P, L = 0, 1, 2  # relations of the hand-made graph: "spouse", "parent", "lives_in"
# The hand-made graph (5 entities, 3 relations), with one duplicate triple (counts once):
#   s: 0->1, 1->0, 2->3        (3->2 missing: the symmetric rule has an exception)
#   p: 0->2, 1->2, 3->4
#   l: 0->4, 1->4, 2->4
HAND = np.array([[0, S, 1], [1, S, 0], [2, S, 3],
                 [0, P, 2], [1, P, 2], [3, P, 4],
                 [0, L, 4], [1, L, 4], [2, L, 4], [0, S, 1]], dtype=np.int64)
N_ENT, N_REL = 5, 3


def closed(head, *atoms):
    return ref._row(0, head, 0, -1, -1, tuple(atoms))


def ac1(head, hi, c, d, *atoms):
    return ref._row(1, head, hi, c, d, tuple(atoms))


def ac2(head, hi, c, *atoms):
    return ref._row(2, head, hi, c, -1, tuple(atoms))


# (row, (support, body_pairs, pca_body_pairs, head_facts)), each worked out by hand.
HAND_RULES = [
    # s(X,Y) <- s(Y,X): body pairs (x, y) with s(y, x): (1,0), (0,1), (3,2); head facts
    # (0,1), (1,0), (2,3): support 2; x with some s(x, .) in {0, 1, 2} -> pca body 2 of 3.
    (closed(S, (S, 1)), (2, 3, 2, 3)),
    # p(X,Y) <- s(X,A), p(A,Y): 0-s->1-p->2, 1-s->0-p->2, 2-s->3-p->4: body (0,2), (1,2), (2,4);
    # head p: (0,2), (1,2), (3,4): support 2; x with p out in {0, 1, 3}: pca body 2.
    (closed(P, (S, 0), (P, 0)), (2, 3, 2, 3)),
    # s(X,Y) <- p(X,A), p(Y,A) (inverse second atom): x=0,a=2 -> y in {0,1}; x=1 likewise;
    # x=3,a=4 -> y=3: body (0,0), (0,1), (1,0), (1,1), (3,3) = 5; support (0,1), (1,0) = 2;
    # x in {0,1,2} (s out): 4 pairs.
    (closed(S, (P, 0), (P, 1)), (2, 5, 4, 3)),
    # l(X,Y) <- s(X,A), p(A,B), l(B,Y): 0-1-2-4, 1-0-2-4, 2-3-4-(no l out of 4): body (0,4),
    # (1,4); both facts; pca 2; l has 3 facts.
    (closed(L, (S, 0), (P, 0), (L, 0)), (2, 2, 2, 3)),
    # l(X,Y) <- l(X,A), l(B,A), l(B,Y): every x in {0,1,2} reaches 4 -> 3 pairs, all facts.
    (closed(L, (L, 0), (L, 1), (L, 0)), (3, 3, 3, 3)),
    # s(X,Y) <- s(Y,A), s(A,X)... written as atoms (s,1),(s,1): x <-s- a <-s- y, i.e. s(a,x),
    # s(y,a): x=0: a=1, y=0 -> (0,0); x=1: a=0, y=1 -> (1,1); x=3: a=2, y: s(y,2) none.
    # body (0,0), (1,1); no fact s(0,0)/s(1,1): support 0; pca 2 (x in {0,1}); head facts 3.
    (closed(S, (S, 1), (S, 1)), (0, 2, 2, 3)),
    # AC1, head_inverse 0: l(X,"4") <- p(X,"2"): body x in {0,1}; l(x,4) for x in {0,1,2}:
    # support 2, body 2, pca 2 (both have l out), head facts 3.
    (ac1(L, 0, 4, 2, (P, 0)), (2, 2, 2, 3)),
    # AC1, head_inverse 1: s("2",X) <- p(X,A), p("3",A): x -p-> a <-p- 3: a=4, x=3: body {3};
    # q(x,2) = s(2,x): x=3: support 1; pca: exists y s(y,3): yes -> 1; head facts 1.
    (ac1(S, 1, 2, 3, (P, 0), (P, 1)), (1, 1, 1, 1)),
    # AC1, head_inverse 1, no support: p("0",X) <- l("1",X): body(x) = l(1,x): {4};
    # q(x,0) = p(0,x): {2}: support 0; pca: p(y,4) for y=3: 1; head facts 1.
    (ac1(P, 1, 0, 1, (L, 1)), (0, 1, 1, 1)),
    # AC2, head_inverse 0: p(X,"2") <- s(X,A): body {0,1,2}; p(x,2): {0,1}: support 2;
    # pca: p out {0,1,3} & body = {0,1}: 2; head facts 2.
    (ac2(P, 0, 2, (S, 0)), (2, 3, 2, 2)),
    # AC2, head_inverse 1: p("0",X) <- l(X,A): body {0,1,2}; q(x,0) = p(0,x): {2}: support 1;
    # pca: x with p in: {2,4} & body = {2}: 1; head facts 1.
    (ac2(P, 1, 0, (L, 0)), (1, 3, 1, 1)),
    # AC2, head_inverse 1, length 2: p("0",X) <- p(A,X), s(A,B): x=2: a in {0,1}, both s out;
    # x=4: a=3, no s out: body {2}: support 1, pca 1, head facts 1.
    (ac2(P, 1, 0, (P, 1), (S, 0)), (1, 1, 1, 1)),
    # AC2, length 2 with no body: l(X,"4") <- l(X,A), l(A,B): nothing leaves 4: body 0.
    (ac2(L, 0, 4, (L, 0), (L, 0)), (0, 0, 0, 3)),
]


def test_hand_metrics():
    rows = np.array([r for r, _ in HAND_RULES], dtype=np.int64)
    want = np.array([c for _, c in HAND_RULES], dtype=np.int64)
    m = ref.rule_metrics(HAND, N_ENT, N_REL, rows)
    for j, key in enumerate(ref.COUNT_KEYS):
        assert m[key].dtype == np.int64
        np.testing.assert_array_equal(m[key], want[:, j], err_msg=key)
    # Ratios: exact quotients, 0 where the denominator is 0 (the last rule's confidences).
    s = want[:, 0].astype(float)
    for key, j in (("head_coverage", 3), ("std_confidence", 1), ("pca_confidence", 2)):
        expect = np.divide(s, want[:, j], out=np.zeros(len(s)), where=want[:, j] > 0)
        assert m[key].dtype == np.float64
        np.testing.assert_array_equal(m[key], expect, err_msg=key)
    assert m["std_confidence"][2] == 0.4 and m["pca_confidence"][2] == 0.5
    assert m["head_coverage"][0] == 2 / 3 and m["std_confidence"][-1] == 0.0


def test_rows_validated():
    good = closed(S, (S, 1))
    ref.check_rows(np.array([good]), N_ENT, N_REL)
    bad = [
        [0, S, 1, -1, -1, S, 1, -1, 0, -1, 0],  # closed with head_inverse 1
        [0, S, 0, 2, -1, S, 1, -1, 0, -1, 0],  # closed with a constant
        [1, S, 0, 2, -1, S, 1, -1, 0, -1, 0],  # AC1 without end
        [2, S, 0, 2, 3, S, 1, -1, 0, -1, 0],  # AC2 with end
        [1, S, 0, 2, 3, S, 1, S, 0, S, 0],  # acyclic of length 3
        [0, S, 0, -1, -1, -1, 0, S, 0, -1, 0],  # gap in the body
        [0, S, 0, -1, -1, -1, 0, -1, 0, -1, 0],  # empty body
        [0, 3, 0, -1, -1, S, 0, -1, 0, -1, 0],  # head relation out of range
        [2, S, 0, 5, -1, S, 0, -1, 0, -1, 0],  # constant out of range
        [0, S, 0, -1, -1, S, 2, -1, 0, -1, 0],  # inverse flag 2
        [3, S, 0, -1, -1, S, 0, -1, 0, -1, 0],  # kind 3
    ]
    for row in bad:
        with pytest.raises(ValueError):
            ref.check_rows(np.array([row]), N_ENT, N_REL)


# --------------------------------------------------------------------------- independent counts
def binding_path(facts, n_ent, body, x, end):
    """Some binding of the body's intermediate variables makes every atom a fact, from x to end."""
    for mid in itertools.product(range(n_ent), repeat=len(body) - 1):
        seq = (x, *mid, end)
        if all(((seq[k + 1], rel, seq[k]) if inv else (seq[k], rel, seq[k + 1])) in facts
               for k, (rel, inv) in enumerate(body)):
            return True
    return False


def grounding_metrics(triples, n_ent, row):
    """AMIE counts of one row by trying every binding of the rule's variables (no matrices)."""
    facts = {tuple(int(v) for v in t) for t in triples}
    kind, head, hi, c, d = (int(v) for v in row[:5])
    body = ref.body_of(row)
    ents = range(n_ent)

    def path(x, end):
        return binding_path(facts, n_ent, body, x, end)
    if kind == 0:
        hf = {(x, y) for x in ents for y in ents if (x, head, y) in facts}
        subjects = {x for x, _ in hf}
        bp = {(x, y) for x in ents for y in ents if path(x, y)}
        return (len(bp & hf), len(bp), len({(x, y) for x, y in bp if x in subjects}), len(hf))

    def q(x, y):
        return (y, head, x) in facts if hi else (x, head, y) in facts

    bx = {x for x in ents if (path(x, d) if kind == 1 else any(path(x, e) for e in ents))}
    hx = {x for x in ents if q(x, c)}
    sx = {x for x in ents if any(q(x, y) for y in ents)}
    return (len(bx & hx), len(bx), len(bx & sx), len(hx))


def random_graph(rng, n_ent, n_rel, n_triples):
    return np.stack([rng.integers(0, n_ent, n_triples), rng.integers(0, n_rel, n_triples),
                     rng.integers(0, n_ent, n_triples)], axis=1).astype(np.int64)


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_against_groundings(seed):
    rng = np.random.default_rng(seed)
    n_ent, n_rel = 5, 2
    t = random_graph(rng, n_ent, n_rel, 14)
    rows = ref.enumerate_rows(n_ent, n_rel)
    pick = rows[rng.choice(len(rows), 300, replace=False)]
    pick = np.concatenate([pick, rows[rows[:, 0] == 0]])  # every closed row
    m = ref.rule_metrics(t, n_ent, n_rel, pick)
    got = np.stack([m[k] for k in ref.COUNT_KEYS], axis=1)
    want = np.array([grounding_metrics(t, n_ent, r) for r in pick])
    np.testing.assert_array_equal(got, want)
    assert got[:, 0].max() > 0 and (got[:, 0] < got[:, 1]).any()  # a non-degenerate graph


def test_duplicates_count_once():
    rows = np.array([r for r, _ in HAND_RULES])
    once = ref.rule_metrics(np.unique(HAND, axis=0), N_ENT, N_REL, rows)
    twice = ref.rule_metrics(np.concatenate([HAND, HAND]), N_ENT, N_REL, rows)
    for k in ref.METRIC_KEYS:
        np.testing.assert_array_equal(once[k], twice[k])


# --------------------------------------------------------------------------- mining
def _contains(rows, row):
    return bool((rows == np.asarray(row)).all(axis=1).any())


def test_enumerate_rows_counts_and_trivial():
    rows = ref.enumerate_rows(N_ENT, N_REL)
    atoms = 2 * N_REL
    n_closed = N_REL * (atoms + atoms**2 + atoms**3) - N_REL  # minus h(X,Y) <- h(X,Y)
    per_body = N_REL * 2 * N_ENT * (N_ENT + 1)  # (head, hi, c) x (every end d, or dangling)
    n_acyclic = (atoms + atoms**2) * per_body - N_REL * 2 * N_ENT  # minus q(X,c) <- q(X,c)
    assert len(rows) == n_closed + n_acyclic
    assert len(np.unique(rows, axis=0)) == len(rows)
    assert not _contains(rows, closed(S, (S, 0)))
    assert not _contains(rows, ac1(L, 1, 4, 4, (L, 1)))
    assert _contains(rows, ac1(L, 1, 4, 3, (L, 1))) and _contains(rows, ac1(L, 0, 4, 4, (L, 1)))
    assert _contains(rows, ac2(L, 1, 4, (L, 1)))  # AC2 q(X,c) <- q(X,A) is not trivial
    assert not any(ref.is_trivial(r) for r in rows)
    np.testing.assert_array_equal(rows, ref.sort_rows(rows.copy()))


def test_mine_hand_graph():
    rows, m = ref.mine_brute_force(HAND, N_ENT, N_REL)
    assert _contains(rows, closed(S, (S, 1)))  # support 2, hc 2/3, conf 2/3
    assert _contains(rows, closed(S, (P, 0), (P, 1)))  # conf 0.4 >= 0.1
    assert _contains(rows, ac1(L, 0, 4, 2, (P, 0)))
    assert _contains(rows, ac2(P, 0, 2, (S, 0)))
    assert not _contains(rows, ac2(P, 1, 0, (L, 0)))  # support 1 < 2
    assert not _contains(rows, closed(S, (S, 0)))  # trivial, though support 3 and conf 1
    assert (m["support"] >= 2).all() and (m["std_confidence"] >= 0.1).all()
    assert (m["head_coverage"] >= 0.01).all()
    # Threshold on the standard confidence (0.4) or on the PCA confidence (0.5).
    rows_std, _ = ref.mine_brute_force(HAND, N_ENT, N_REL, min_confidence=0.5)
    rows_pca, m_pca = ref.mine_brute_force(HAND, N_ENT, N_REL, min_confidence=0.5,
                                           confidence="pca")
    assert not _contains(rows_std, closed(S, (P, 0), (P, 1)))
    assert _contains(rows_pca, closed(S, (P, 0), (P, 1)))
    assert (m_pca["pca_confidence"] >= 0.5).all() and (m_pca["std_confidence"] < 0.5).any()
    # Lengths switched off.
    r1, _ = ref.mine_brute_force(HAND, N_ENT, N_REL, max_length=1, max_length_acyclic=0)
    assert (r1[:, 0] == 0).all() and (r1[:, 7] == -1).all() and len(r1) > 0


def test_mine_random_graph_against_groundings():
    rng = np.random.default_rng(3)
    n_ent, n_rel = 6, 2
    t = random_graph(rng, n_ent, n_rel, 18)
    rows, m = ref.mine_brute_force(t, n_ent, n_rel, min_support=2, min_head_coverage=0.2,
                                   min_confidence=0.3)
    every = ref.enumerate_rows(n_ent, n_rel)
    counts = np.array([grounding_metrics(t, n_ent, r) for r in every])
    s, b, _, h = counts.T
    keep = (s >= 2) & (s >= 0.2 * h) & (s >= 0.3 * b) & (h > 0) & (b > 0)
    np.testing.assert_array_equal(rows, every[keep])
    assert len(np.unique(rows, axis=0)) == len(rows) and set(rows[:, 0]) == {0, 1, 2}


def test_mine_is_fast_enough():
    rng = np.random.default_rng(4)
    t = random_graph(rng, 12, 3, 40)
    start = time.perf_counter()
    rows, _ = ref.mine_brute_force(t, 12, 3)
    assert time.perf_counter() - start < 10.0 and len(rows) > 0


# --------------------------------------------------------------------------- application
# Rules of the application tests (metrics from test_hand_metrics), confidences with pc = 1:
APP_RULES = np.array([
    closed(S, (S, 1)),  # R0 s(X,Y) <- s(Y,X)              2 / (3 + 1) = 0.5
    closed(S, (P, 0), (P, 1)),  # R1 s(X,Y) <- p(X,A), p(Y,A)  2 / (5 + 1) = 1/3
    closed(P, (S, 0), (P, 0)),  # R2 p(X,Y) <- s(X,A), p(A,Y)  2 / (3 + 1) = 0.5
    ac1(L, 0, 4, 2, (P, 0)),  # R3 l(X,"4") <- p(X,"2")       2 / (2 + 1) = 2/3
    ac2(P, 1, 0, (L, 0)),  # R4 p("0",X) <- l(X,A)            1 / (3 + 1) = 0.25
    ac2(P, 0, 2, (S, 0)),  # R5 p(X,"2") <- s(X,A)            2 / (3 + 1) = 0.5
], dtype=np.int64)


def app_metrics():
    return ref.rule_metrics(HAND, N_ENT, N_REL, APP_RULES)


def test_apply_hand():
    m = app_metrics()
    tail = ref.apply_brute_force(HAND, N_ENT, APP_RULES, m, [[0, S], [2, P], [0, P], [1, L]],
                                 "tail", pc=1.0)
    # (0, s, ?): R0 body(0,y) = s(y,0): y=1; R1 body(0,y): y in {0 (the query), 1}.
    assert tail[0] == {1: [0.5, 1 / 3]}
    # (2, p, ?): R2 body(2,y): y=4; R5 (hi 0 = tail) body(2) holds -> c = 2 = the query: out;
    # R4 has hi 1 but c = 0 != 2: nothing.
    assert tail[1] == {4: [0.5]}
    # (0, p, ?): R2 -> 2; R4 (hi 1, c = 0 = e): every y with body(y) = l out {0,1,2} -> 1, 2;
    # R5 body(0) -> c = 2.
    assert tail[2] == {1: [0.25], 2: [0.5, 0.5, 0.25]}
    # (1, l, ?): R3 body(1) = p(1,2) -> c = 4.
    assert tail[3] == {4: [2 / 3]}
    head = ref.apply_brute_force(HAND, N_ENT, APP_RULES, m, [[3, S], [2, P], [4, L], [1, P]],
                                 "head", pc=1.0)
    # (?, s, 3): R0 body(y,3) = s(3,y): none; R1 body(y,3): y = 3, the query.
    assert head[0] == {}
    # (?, p, 2): R2 body(y,2): y in {0,1}; R4 (hi 1 = head) body(2) -> c = 0; R5 (hi 0, c = 2 =
    # e): every y with s out {0,1,2}: 0, 1.
    assert head[1] == {0: [0.5, 0.5, 0.25], 1: [0.5, 0.5]}
    # (?, l, 4): R3 (hi 0, c = 4 = e): every y with p(y,2): 0, 1.
    assert head[2] == {0: [2 / 3], 1: [2 / 3]}
    # (?, p, 1): R4 body(1) = l out of 1 -> c = 0.
    assert head[3] == {0: [0.25]}
    # The query entity kept; pc = 0 gives the standard confidence.
    keep = ref.apply_brute_force(HAND, N_ENT, APP_RULES, m, [[0, S], [3, S]], "tail", pc=0.0,
                                 exclude_query=False)
    # (3, s, ?): R0 body(3,y) = s(y,3): y = 2; R1 body(3,y): y = 3, kept.
    assert keep == [{0: [0.4], 1: [2 / 3, 0.4]}, {2: [2 / 3], 3: [0.4]}]


def predicted_triples(triples, n_ent, row):
    """Every triple a rule predicts, by its groundings: closed ``head(x, y)`` for each body
    ``(x, y)``; acyclic ``q(x, c)`` for each ``x`` with the body."""
    facts = {tuple(int(v) for v in t) for t in triples}
    kind, head, hi, c, d = (int(v) for v in row[:5])
    body = ref.body_of(row)
    ents = range(n_ent)

    def path(x, end):
        return binding_path(facts, n_ent, body, x, end)

    if kind == 0:
        return {(x, head, y) for x in ents for y in ents if path(x, y)}
    xs = [x for x in ents if (path(x, d) if kind == 1 else any(path(x, e) for e in ents))]
    return {((c, head, x) if hi else (x, head, c)) for x in xs}


@pytest.mark.parametrize("seed", [5, 6])
def test_apply_against_predicted_triples(seed):
    rng = np.random.default_rng(seed)
    n_ent, n_rel = 6, 2
    t = random_graph(rng, n_ent, n_rel, 16)
    rows, _ = ref.mine_brute_force(t, n_ent, n_rel, min_support=1, min_head_coverage=0.0,
                                   min_confidence=0.0)
    rows = rows[:: max(1, len(rows) // 300)]  # every kind, about 300 rules
    m = ref.rule_metrics(t, n_ent, n_rel, rows)
    pred = [predicted_triples(t, n_ent, r) for r in rows]
    conf = m["support"] / (m["body_pairs"] + 2.0)
    queries = np.array([(e, r) for e in range(n_ent) for r in range(n_rel)])
    for direction in ("tail", "head"):
        for exclude in (True, False):
            got = ref.apply_brute_force(t, n_ent, rows, m, queries, direction, pc=2.0,
                                        exclude_query=exclude)
            for (e, r), cands in zip(queries, got):
                want: dict[int, list[float]] = {}
                for k, p in enumerate(pred):
                    for y in range(n_ent):
                        triple = (e, r, y) if direction == "tail" else (y, r, e)
                        if triple in p and not (exclude and y == e):
                            want.setdefault(y, []).append(float(conf[k]))
                assert cands.keys() == want.keys()
                for y in want:
                    assert cands[y] == sorted(want[y], reverse=True)
    assert any(len(c) for c in got)


# --------------------------------------------------------------------------- aggregation, ranks
def test_aggregate_order():
    cands = {0: [0.6], 1: [0.5, 0.5], 2: [0.5, 0.5], 3: [0.5, 0.4]}
    # maxplus: (0.6) > (0.5, 0.5) = (0.5, 0.5) > (0.5, 0.4).
    assert ref.aggregate_order(cands, "maxplus") == {0: 0, 1: 1, 2: 1, 3: 2}
    # max then noisy-or: 0.6 first; then 1 - 0.25 = 0.75 twice, then 1 - 0.5 * 0.6 = 0.7.
    assert ref.aggregate_order(cands, "max_noisy_or") == {0: 0, 1: 1, 2: 1, 3: 2}
    # noisy-or: 0.75, 0.75, 0.7, 0.6.
    assert ref.aggregate_order(cands, "noisy_or") == {1: 0, 2: 0, 3: 1, 0: 2}
    # Where maxplus and max-noisy-or disagree: a = (0.5, 0.2, 0.2, 0.2), b = (0.5, 0.3):
    # maxplus compares 0.2 < 0.3 -> b first; noisy-or 1 - 0.5 * 0.8^3 = 0.744 > 0.65 -> a first.
    ab = {7: [0.5, 0.2, 0.2, 0.2], 8: [0.5, 0.3]}
    assert ref.aggregate_order(ab, "maxplus") == {8: 0, 7: 1}
    assert ref.aggregate_order(ab, "max_noisy_or") == {7: 0, 8: 1}
    # A longer list beats its prefix.
    assert ref.aggregate_order({1: [0.5], 2: [0.5, 0.1]}, "maxplus") == {2: 0, 1: 1}
    assert ref.aggregate_order({}, "maxplus") == {}
    with pytest.raises(ValueError):
        ref.aggregate_order({1: [0.5]}, "sum")


def test_filtered_ranks_hand():
    m = app_metrics()
    # T0 (3, l, 4), not in the graph. Tail (3, l, ?): R3 needs p(3,2): no candidate at all ->
    # the target 4 ties with the 4 other entities (filter: only the target itself).
    # Head (?, l, 4): candidates 0, 1 (2/3 each); known (e, l, 4): 0, 1, 2 filtered; left: 4,
    # tied with the target 3 below the candidates -> 1 / 2.
    # T1 (0, p, 1). Tail (0, p, ?): candidates {1: [0.25], 2: [0.5, 0.5, 0.25]}; 2 is filtered
    # (0, p, 2 known): target 1 is best -> 1 / 1. Head (?, p, 1): {0: [0.25]} = target -> 1 / 1.
    test = np.array([[3, L, 4], [0, P, 1]])
    known = np.concatenate([HAND, test])
    opt, pess = ref.filtered_ranks_brute_force(HAND, N_ENT, APP_RULES, m, test, known,
                                               "max_noisy_or", pc=1.0)
    np.testing.assert_array_equal(opt, [[1, 1], [1, 1]])
    np.testing.assert_array_equal(pess, [[2, 5], [1, 1]])
    # Only the test triples known: T0 head: 0, 1 better, 2 and 4 tie -> 3 / 5; T1 tail: 2 better.
    opt, pess = ref.filtered_ranks_brute_force(HAND, N_ENT, APP_RULES, m, test, test,
                                               "max_noisy_or", pc=1.0)
    np.testing.assert_array_equal(opt, [[3, 1], [1, 2]])
    np.testing.assert_array_equal(pess, [[5, 5], [1, 2]])
    # Query entity kept: T1 tail also gets 0 from R4 (0.25), tying with the target 1.
    opt, pess = ref.filtered_ranks_brute_force(HAND, N_ENT, APP_RULES, m, test, known,
                                               "maxplus", pc=1.0, exclude_query=False)
    np.testing.assert_array_equal(opt[1], [1, 1])
    np.testing.assert_array_equal(pess[1], [1, 2])


def test_filtered_ranks_aggregations_differ():
    # Tail query (0, p, ?) with four rules and chosen metrics (pc = 0, conf = support / body):
    #   A = R2 (-> 2) 1/4, B = R5 (-> 2) 1/4, C = R4 (-> 1, 2) 1/2, D = p(X,Y) <- s(X,Y) (-> 1)
    #   3/10: candidate 1 has (0.5, 0.3), candidate 2 has (0.5, 0.25, 0.25).
    # maxplus: 0.3 > 0.25 -> 1 first. Noisy-or: 1 - 0.5 * 0.7 = 0.65 < 1 - 0.5 * 0.75^2 =
    # 0.71875 -> 2 first (max_noisy_or: equal maxima, so the same). Others (0, 3, 4) below.
    # Nothing known: no filtering.
    rules = np.array([APP_RULES[2], APP_RULES[5], APP_RULES[4], closed(P, (S, 0))])
    m = {"support": np.array([1, 1, 1, 3]), "body_pairs": np.array([4, 4, 2, 10])}
    test, none = np.array([[0, P, 1], [0, P, 2], [0, P, 3]]), np.zeros((0, 3))
    want = {"maxplus": ([1, 2, 3], [1, 2, 5]), "max_noisy_or": ([2, 1, 3], [2, 1, 5]),
            "noisy_or": ([2, 1, 3], [2, 1, 5])}
    for agg, (o, p) in want.items():
        opt, pess = ref.filtered_ranks_brute_force(HAND, N_ENT, rules, m, test, none, agg,
                                                   pc=0.0)
        np.testing.assert_array_equal(opt[:, 1], o, err_msg=agg)
        np.testing.assert_array_equal(pess[:, 1], p, err_msg=agg)
