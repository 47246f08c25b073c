"""nesy.kge: scores, row gradients, 1-vs-all scores, regularisers and the filtered evaluator
against the NumPy references in tests/reference_kge.py (float32 and float64), thread-count and
SIMD invariance, shipped data, and bad input.

Mirrors python/nesy/kge/ and rust/core/src/kge/.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference_kge as ref

import nesy
from nesy import _core, kge
from nesy.datasets import load_kg

MODELS = kge.MODELS
DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)


def _setup(model, dtype, n_ent=41, n_rel=5, rank=19, n=64, seed=0):
    ent, rel = ref.random_embeddings(model, n_ent, n_rel, rank, dtype, seed)
    rng = np.random.default_rng(seed + 1)
    tr = np.stack([rng.integers(0, n_ent, n), rng.integers(0, n_rel, n),
                   rng.integers(0, n_ent, n)], axis=1)
    return ent, rel, tr


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model", MODELS)
def test_scores_and_row_gradients_match_reference(model, dtype):
    ent, rel, tr = _setup(model, dtype)
    s = kge.score(model, ent, rel, tr)
    assert s.dtype == dtype and s.shape == (64,)
    np.testing.assert_allclose(s, ref.score_triples(model, ent, rel, tr), **_tol(dtype))
    up = np.random.default_rng(2).standard_normal(64).astype(dtype)
    got = kge.score_grad(model, ent, rel, tr, up)
    want = ref.score_triples_grad(model, ent, rel, tr, up)
    for g, w in zip(got, want):
        assert g.dtype == dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, **_tol(dtype))


@pytest.mark.parametrize("model", MODELS)
def test_table_gradients_match_finite_differences(model):
    ent, rel, tr = _setup(model, np.float64, n_ent=7, n_rel=3, rank=4, n=12)
    up = np.random.default_rng(3).standard_normal(12)
    gh, gr, gt = kge.score_grad(model, ent, rel, tr, up)
    d_ent, d_rel = np.zeros_like(ent), np.zeros_like(rel)
    np.add.at(d_ent, tr[:, 0], gh)
    np.add.at(d_ent, tr[:, 2], gt)
    np.add.at(d_rel, tr[:, 1], gr)
    eps = 1e-6
    for table, grad, which in ((ent, d_ent, 0), (rel, d_rel, 1)):
        for k in np.ndindex(table.shape):
            a, b = table.copy(), table.copy()
            a[k] += eps
            b[k] -= eps
            args_a = (a, rel) if which == 0 else (ent, a)
            args_b = (b, rel) if which == 0 else (ent, b)
            num = (np.sum(kge.score(model, *args_a, tr) * up)
                   - np.sum(kge.score(model, *args_b, tr) * up)) / (2 * eps)
            assert grad[k] == pytest.approx(num, abs=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model", MODELS)
def test_one_vs_all_scores_match_reference(model, dtype):
    ent, rel, tr = _setup(model, dtype, seed=4)
    tails = kge.score_tails(model, ent, rel, tr[:, 0], tr[:, 1])
    heads = kge.score_heads(model, ent, rel, tr[:, 1], tr[:, 2])
    assert tails.shape == heads.shape == (64, 41) and tails.dtype == dtype
    np.testing.assert_allclose(tails, ref.score_tails(model, ent, rel, tr[:, 0], tr[:, 1]),
                               **_tol(dtype))
    np.testing.assert_allclose(heads, ref.score_heads(model, ent, rel, tr[:, 1], tr[:, 2]),
                               **_tol(dtype))
    # A scalar head/relation is one query.
    one = kge.score_tails(model, ent, rel, int(tr[0, 0]), int(tr[0, 1]))
    np.testing.assert_allclose(one[0], tails[0], **_tol(dtype))


@pytest.mark.parametrize("model", MODELS)
def test_one_vs_all_matches_torch(model):
    torch = pytest.importorskip("torch")
    ent, rel, tr = _setup(model, np.float32, seed=5)
    e = torch.from_numpy(ent)
    if model in ("transe_l1", "transe_l2"):
        q = e[tr[:, 0]] + torch.from_numpy(rel)[tr[:, 1]]
        want = -torch.cdist(q, e, p=1 if model == "transe_l1" else 2)
    elif model == "distmult":
        want = (e[tr[:, 0]] * torch.from_numpy(rel)[tr[:, 1]]) @ e.T
    else:
        k = ent.shape[1] // 2
        ec = torch.complex(e[:, :k], e[:, k:])
        if model == "complex":
            r = torch.from_numpy(rel)
            rc = torch.complex(r[:, :k], r[:, k:])
            want = ((ec[tr[:, 0]] * rc[tr[:, 1]]) @ ec.conj().T).real
        else:
            rc = torch.polar(torch.ones(rel.shape), torch.from_numpy(rel))
            q = ec[tr[:, 0]] * rc[tr[:, 1]]
            want = -(q[:, None, :] - ec[None, :, :]).abs().sum(-1)
    got = kge.score_tails(model, ent, rel, tr[:, 0], tr[:, 1])
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("complex_rows", [False, True])
@pytest.mark.parametrize("kind", ["l2", "n3"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_regularisers_match_reference(kind, complex_rows, dtype):
    if kind == "l2" and complex_rows:
        pytest.skip("L2 is the same with or without complex rows")
    x = np.random.default_rng(6).standard_normal((9, 8)).astype(dtype)
    value, grad = kge.regulariser(x, kind, 0.25, complex_rows)
    if kind == "l2":
        want_v, want_g = ref.l2_regulariser(x, 0.25)
    else:
        want_v, want_g = ref.n3_regulariser(x, 0.25, complex=complex_rows)
    assert value == pytest.approx(want_v, rel=1e-5)
    np.testing.assert_allclose(grad, want_g, **_tol(dtype))


def _with_ties(model, dtype, seed):
    """Tables where entities 2, 3 and 4 are identical (their scores tie exactly), test triples
    that hit them, and known triples that share (h, r) and (r, t) with the test."""
    ent, rel, tr = _setup(model, dtype, n_ent=31, n_rel=4, rank=6, n=50, seed=seed)
    ent[3] = ent[2]
    ent[4] = ent[2]
    tr[:5] = [[2, 0, 3], [3, 1, 4], [0, 2, 2], [4, 3, 1], [2, 0, 4]]
    rng = np.random.default_rng(seed + 7)
    extra = np.stack([tr[:20, 0], tr[:20, 1], rng.integers(0, 31, 20)], axis=1)
    known = np.concatenate([tr, extra, [[3, 1, 2]]])
    return ent, rel, tr, known


@pytest.mark.parametrize("model", MODELS)
def test_filtered_ranks_match_reference_with_ties(model):
    ent, rel, tr, known = _with_ties(model, np.float64, seed=8)
    got = kge.filtered_ranks(model, ent, rel, tr, known)
    tails = ref.score_tails(model, ent, rel, tr[:, 0], tr[:, 1])
    heads = ref.score_heads(model, ent, rel, tr[:, 1], tr[:, 2])
    want = ref.filtered_ranks(tails, heads, tr, known)
    for direction in ("head", "tail"):
        for ties in ("optimistic", "pessimistic", "realistic"):
            np.testing.assert_array_equal(got[direction][ties], want[direction][ties])
    assert np.any(got["tail"]["pessimistic"] > got["tail"]["optimistic"])  # ties exist


@pytest.mark.parametrize("model", ["distmult", "rotate"])
@pytest.mark.parametrize("ties", ["realistic", "optimistic", "pessimistic"])
def test_evaluate_matches_reference_on_umls(model, ties):
    data = load_kg("umls")
    rank = 8
    ent, rel = ref.random_embeddings(model, data.n_entities, data.n_relations, rank,
                                     np.float64, seed=9)
    test = data.test[:200]
    known = data.all_triples()
    got = kge.evaluate(model, ent, rel, test, known, ties=ties)
    want = ref.evaluate_model(model, ent, rel, test, known, ties=ties)
    for key in ("both", "head", "tail"):
        for metric, value in want[key].items():
            assert got[key][metric] == pytest.approx(value, rel=1e-12), (key, metric)
    r0 = next(iter(want["per_relation"]))
    assert got["per_relation"][r0]["both"] == pytest.approx(want["per_relation"][r0]["both"])


def test_float32_ranks_follow_float64_on_kinship():
    data = load_kg("kinship")
    ent, rel = ref.random_embeddings("complex", data.n_entities, data.n_relations, 16,
                                     np.float64, seed=10)
    known = data.all_triples()
    r64 = kge.evaluate("complex", ent, rel, data.test, known)["both"]["mrr"]
    r32 = kge.evaluate("complex", ent.astype(np.float32), rel.astype(np.float32), data.test,
                       known)["both"]["mrr"]
    assert r32 == pytest.approx(r64, rel=1e-3)


@pytest.mark.parametrize("model", MODELS)
def test_results_do_not_depend_on_threads_or_simd_level(model):
    ent, rel, tr = _setup(model, np.float32, n_ent=900, n_rel=7, rank=40, n=300, seed=11)
    h, r, t = (np.ascontiguousarray(tr[:, c]) for c in range(3))
    before = nesy.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            nesy.set_num_threads(threads)
            for level in _core.simd_levels():
                tails = _core.kge_score_all(model, ent, rel, h, r, "tail", simd=level)
                heads = _core.kge_score_all(model, ent, rel, t, r, "head", simd=level)
                ranks = _core.kge_ranks(model, ent, rel, tr, tr, simd=level)
                scores = _core.kge_score(model, ent, rel, tr)
                results.append((tails, heads, *ranks, scores))
    finally:
        nesy.set_num_threads(before)
    for r in results[1:]:
        for a, b in zip(r, results[0]):
            assert np.array_equal(a, b)


def test_bad_input_names_the_argument():
    ent, rel, tr = _setup("rotate", np.float32, n=5)
    with pytest.raises(ValueError, match="model"):
        kge.score("transh", ent, rel, tr)
    with pytest.raises(ValueError, match="rel"):
        kge.score("rotate", ent, np.zeros((5, 38), np.float32), tr)  # needs 19 columns
    with pytest.raises(ValueError, match="ent"):
        kge.score("complex", ent[:, :37], np.zeros((5, 37), np.float32), tr)  # odd width
    with pytest.raises(TypeError, match="rel"):
        kge.score("rotate", ent, rel.astype(np.float64), tr)
    with pytest.raises(ValueError, match="ent: contains NaN"):
        bad = ent.copy()
        bad[3, 1] = np.nan
        kge.score("rotate", bad, rel, tr)
    with pytest.raises(ValueError, match="triples"):
        kge.score("rotate", ent, rel, tr[:, :2])
    with pytest.raises(TypeError, match="triples"):
        kge.score("rotate", ent, rel, tr.astype(np.float64))
    bad_tr = tr.copy()
    bad_tr[2, 1] = 99
    with pytest.raises(IndexError, match=r"triples\[2\] \(relation\)"):
        kge.score("rotate", ent, rel, bad_tr)
    with pytest.raises(IndexError, match="heads|entities"):
        kge.score_tails("rotate", ent, rel, [0, 41], [0, 1])
    with pytest.raises(IndexError, match="known"):
        kge.filtered_ranks("rotate", ent, rel, tr, np.array([[0, 0, 41]]))
    with pytest.raises(ValueError, match="ties"):
        kge.evaluate("rotate", ent, rel, tr, tr, ties="average")
    with pytest.raises(ValueError, match="nothing to evaluate"):
        kge.evaluate("rotate", ent, rel, np.zeros((0, 3), np.int64), tr)
    with pytest.raises(ValueError, match="weight"):
        kge.regulariser(ent, "l2", -1.0)
    with pytest.raises(ValueError, match="regulariser"):
        kge.regulariser(ent, "l3")
    with pytest.raises(ValueError, match="upstream"):
        kge.score_grad("rotate", ent, rel, tr, np.ones(4, np.float32))
