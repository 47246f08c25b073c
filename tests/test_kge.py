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


@pytest.mark.parametrize("model", ["transe_l1", "transe_l2"])
def test_close_neighbours_keep_their_distances_and_ranks_in_float32(model):
    """TransE's fast 1-vs-all distances are expansions that cancel when an entity lies close to
    the query against the vectors' size; such distances are recomputed directly. Unit vectors
    placed 1e-3 to 5e-3 from h + r: scores and filtered ranks agree with the exact float64
    distances (the expansion alone got the L2 distances 10 % wrong and 22 of 50 ranks)."""
    rng = np.random.default_rng(0)
    d, n_close = 64, 50
    h = rng.standard_normal(d)
    r = 0.1 * rng.standard_normal(d)
    q = h + r
    steps = np.linspace(1e-3, 5e-3, n_close)
    close = q + steps[:, None] * _unit_rows(rng.standard_normal((n_close, d)))
    far = _unit_rows(rng.standard_normal((30, d))) * np.linalg.norm(q)
    ent64 = np.vstack([h, close, far])
    rel64 = r[None, :]
    ent, rel = ent64.astype(np.float32), rel64.astype(np.float32)
    q32 = (ent[0] + rel[0]).astype(np.float64)  # the query as float32 computes it
    p = 1 if model == "transe_l1" else 2
    exact = -np.linalg.norm(ent.astype(np.float64) - q32, ord=p, axis=1)
    got = kge.score_tails(model, ent, rel, [0], [0])[0]
    np.testing.assert_allclose(got[1:n_close + 1], exact[1:n_close + 1], rtol=1e-4)
    # Each close entity as the answer, the other close ones as competitors: exact ranks.
    triples = np.array([[0, 0, 1 + i] for i in range(n_close)])
    ranks = kge.filtered_ranks(model, ent, rel, triples, triples[:1])["tail"]["optimistic"]
    want = []
    for t in triples[:, 2]:
        others = np.arange(len(exact)) != t
        others[1] = False  # (0, 0, 1) is known: filtered (or the answer itself)
        want.append(1 + int(np.sum(exact[others] > exact[t])))
    assert list(ranks) == want
    # An entity equal to the query is at distance 0.
    same = np.vstack([ent, ent[0] + rel[0]])
    assert kge.score_tails(model, same, rel, [0], [0])[0, -1] == 0.0


def _unit_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


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


# ---------------------------------------------------------------- KGEModel: training
def _fit(data, **kw):
    args = dict(dim=16, epochs=4, batch_size=64, num_negatives=8, verbose=0, seed=3)
    args.update(kw)
    return kge.KGEModel(**args).fit(data)


@pytest.mark.parametrize("model,loss", [("transe_l1", "margin"), ("transe_l2", "softplus"),
                                        ("distmult", "ce"), ("complex", "bce"),
                                        ("rotate", "self_adversarial")])
def test_training_is_reproducible_for_any_thread_count(model, loss):
    data = load_kg("nations")
    before = nesy.get_num_threads()
    try:
        nesy.set_num_threads(1)
        a = _fit(data, model=model, loss=loss, sampler="bernoulli")
        nesy.set_num_threads(2)
        b = _fit(data, model=model, loss=loss, sampler="bernoulli")
    finally:
        nesy.set_num_threads(before)
    np.testing.assert_array_equal(a.entity_embeddings_, b.entity_embeddings_)
    np.testing.assert_array_equal(a.relation_embeddings_, b.relation_embeddings_)
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]
    c = _fit(data, model=model, loss=loss, sampler="bernoulli", seed=4)
    assert not np.array_equal(a.entity_embeddings_, c.entity_embeddings_)


def test_complex_learns_umls_quickly():
    """A short seeded run of the README's configuration, far above a random model."""
    data = load_kg("umls")
    m = kge.KGEModel("complex", dim=64, loss="ce", optimizer="adagrad", lr=0.1,
                     batch_size=100, epochs=25, regulariser="n3", regulariser_weight=0.01,
                     init_scale=1e-3, eval_every=5, verbose=0).fit(data)
    r = m.evaluate(data.test, data.all_triples())
    assert r["both"]["mrr"] > 0.8 and r["both"]["hits@10"] > 0.95
    assert m.history_[-1]["loss"] < m.history_[0]["loss"]
    assert "valid_mrr" in m.history_[4] and m.best_epoch_ >= 0


@pytest.mark.parametrize("model", ["transe_l1", "rotate"])
def test_negative_sampling_models_learn_nations(model):
    data = load_kg("nations")
    m = kge.KGEModel(model, dim=32, epochs=30, lr=0.01, batch_size=128, num_negatives=16,
                     gamma=6.0, verbose=0, eval_every=0).fit(data)
    mrr = m.evaluate(data.test, data.all_triples())["both"]["mrr"]
    random_mrr = np.mean(1 / np.arange(1, 15))  # ~0.23 over 14 entities
    assert mrr > random_mrr + 0.2


def test_shared_negatives_train():
    data = load_kg("nations")
    m = _fit(data, model="distmult", loss="softplus", shared_negatives=True, epochs=20,
             lr=0.01)
    assert m.history_[-1]["loss"] < m.history_[0]["loss"]


def test_checkpoint_resume_and_save_load(tmp_path):
    data = load_kg("nations")
    ck = tmp_path / "ck.npz"
    kw = dict(model="complex", loss="ce", epochs=6, eval_every=2, checkpoint=str(ck))
    full = _fit(data, **kw)
    assert ck.exists()
    # Stop after 4 epochs, then resume to 6: the same as one run of 6 epochs.
    part = _fit(data, **{**kw, "epochs": 4})
    resumed = kge.KGEModel(**{**part.get_params(), "epochs": 6}).fit(data, resume=True)
    np.testing.assert_array_equal(resumed.entity_embeddings_, full.entity_embeddings_)
    assert len(resumed.history_) == 6
    path = tmp_path / "model.npz"
    full.save(path)
    loaded = kge.KGEModel.load(path)
    np.testing.assert_array_equal(loaded.score(data.test), full.score(data.test))
    ids, scores = loaded.predict_tails(data.test[:3, 0], data.test[:3, 1], k=5)
    assert ids.shape == scores.shape == (3, 5) and np.all(np.diff(scores, axis=1) <= 0)
    ids_f, _ = loaded.predict_tails(data.test[:3, 0], data.test[:3, 1], k=5,
                                    filter_triples=data.train)
    for (h, r), row in zip(data.test[:3, :2], ids_f):
        known = data.train[(data.train[:, 0] == h) & (data.train[:, 1] == r), 2]
        assert not set(row) & set(known)
    hid, _ = loaded.predict_heads(data.test[:2, 1], data.test[:2, 2], k=3)
    assert hid.shape == (2, 3)
    # The file keeps every parameter and the labels of the rows, and the labels are checked
    # against the data a saved model is evaluated on.
    assert loaded.get_params() == {**full.get_params(), "dtype": "float32", "checkpoint": None}
    # Parameters JSON cannot hold directly still save (a Path, NumPy betas).
    full.set_params(checkpoint=tmp_path / "other.npz", betas=np.array([0.8, 0.9]))
    full.save(path)
    assert kge.KGEModel.load(path).betas == (0.8, 0.9)
    full.set_params(checkpoint=str(ck), betas=(0.9, 0.999))
    assert loaded.entities_ == data.entities and loaded.relations_ == data.relations
    loaded.check_data(data)
    shuffled = load_kg("nations")
    object.__setattr__(shuffled, "entities", shuffled.entities[::-1])
    with pytest.raises(ValueError, match="entities"):
        loaded.check_data(shuffled)
    with pytest.raises(ValueError, match="entities"):
        loaded.check_data(load_kg("umls"))
    bare = kge.KGEModel("complex", dim=4, epochs=1, verbose=0).fit(data.train)
    assert bare.entities_ is None
    with pytest.raises(ValueError, match="has 135 entities"):
        bare.check_data(load_kg("umls"))


def test_training_bad_input():
    data = load_kg("nations")
    with pytest.raises(ValueError, match="loss"):
        _fit(data, model="rotate", loss="bce")
    with pytest.raises(ValueError, match="loss"):
        _fit(data, model="complex", loss="hinge")
    with pytest.raises(ValueError, match="sampler"):
        _fit(data, model="complex", loss="softplus", sampler="random")
    with pytest.raises(ValueError, match="sampler: 'bernoulli'"):
        _fit(data, model="distmult", loss="softplus", sampler="bernoulli",
             shared_negatives=True)
    with pytest.raises(ValueError, match="optimizer"):
        _fit(data, model="complex", optimizer="sgd")
    with pytest.raises(ValueError, match="lr"):
        _fit(data, model="complex", lr=float("nan"))
    with pytest.raises(ValueError, match="num_negatives"):
        _fit(data, model="rotate", num_negatives=0)
    with pytest.raises(ValueError, match="dim"):
        _fit(data, model="rotate", dim=0)
    with pytest.raises(ValueError, match="regulariser"):
        _fit(data, model="complex", regulariser="l1", regulariser_weight=0.1)
    with pytest.raises(IndexError, match=r"valid\[0\] \(tail\)"):
        kge.KGEModel("complex", dim=4, verbose=0).fit(np.array([[0, 0, 1]]),
                                                       valid=np.array([[0, 0, -1]]))
    with pytest.raises(ValueError, match="empty"):
        kge.KGEModel("complex", dim=4, verbose=0).fit(np.zeros((0, 3), np.int64))
    with pytest.raises(RuntimeError, match="fit"):
        kge.KGEModel("complex").score(data.test)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        _fit(data, model="complex", checkpoint=None).fit(data, resume=True)


def test_a_failed_fit_leaves_the_model_as_it_was():
    """The kernel refuses some options only when training starts, and a loss can diverge:
    either way a fitted model keeps its tables, an unfitted one stays unfitted."""
    data = load_kg("nations")
    m = _fit(data, model="transe_l2", loss="softplus", epochs=2)
    ent, scores = m.entity_embeddings_.copy(), m.score(data.test[:5])
    with pytest.raises(FloatingPointError, match="loss"):
        m.set_params(lr=1e30).fit(data)
    with pytest.raises(ValueError, match="sampler"):
        m.set_params(lr=0.01, sampler="random").fit(data)
    assert np.array_equal(m.entity_embeddings_, ent)
    assert np.array_equal(m.score(data.test[:5]), scores)
    fresh = kge.KGEModel("transe_l2", dim=8, loss="softplus", lr=1e30, verbose=0)
    with pytest.raises(FloatingPointError):
        fresh.fit(data)
    with pytest.raises(RuntimeError, match="fit"):
        fresh.score(data.test[:5])


def test_patience_eval_every_checkpoint_load_and_filtered_padding(tmp_path):
    data = load_kg("nations")
    with pytest.raises(ValueError, match="patience"):
        _fit(data, model="complex", patience=0)
    with pytest.raises(ValueError, match="eval_every"):
        _fit(data, model="complex", eval_every=-1)
    ck = tmp_path / "ck.npz"
    m = _fit(data, model="complex", eval_every=2, checkpoint=str(ck))
    loaded = kge.KGEModel.load(ck)  # a checkpoint loads like a saved model
    np.testing.assert_array_equal(loaded.entity_embeddings_, m.entity_embeddings_)
    h, r = data.train[0, 0], data.train[0, 1]
    ids, scores = m.predict_tails([h], [r], k=14, filter_triples=data.train)
    n_known = int(np.sum((data.train[:, 0] == h) & (data.train[:, 1] == r)))
    assert np.sum(ids[0] == -1) == n_known and np.all(np.isneginf(scores[0][ids[0] == -1]))


def test_training_kernel_checks_state_shapes_and_step():
    from nesy.kge.model import _TrainArgs

    data = load_kg("nations")
    ent = np.zeros((14, 8), np.float32)
    rel = np.zeros((55, 8), np.float32)
    args = _TrainArgs(loss="softplus", margin=1.0, gamma=0.0, adversarial_temperature=1.0,
                      label_smoothing=0.0, num_negatives=4, sampler="uniform",
                      shared_negatives=False, batch_size=64, optimizer="adam", lr=0.01,
                      betas=(0.9, 0.999), eps=1e-8, regulariser=None, regulariser_weight=0.0,
                      normalize_entities=False, seed=0)
    hp = np.full(55, 0.5)
    bad_state = np.zeros((1, 28, 8), np.float32)  # Adam needs (2, 14, 8)
    with pytest.raises(ValueError, match="ent_state"):
        _core.kge_train_epoch("distmult", ent, rel, bad_state, np.zeros((2, 55, 8), np.float32),
                              0, data.train, hp, 0, args)
    with pytest.raises(ValueError, match="step"):
        _core.kge_train_epoch("distmult", ent, rel, np.zeros((2, 14, 8), np.float32),
                              np.zeros((2, 55, 8), np.float32), 2**64 - 1, data.train, hp, 0,
                              args)
    with pytest.raises(IndexError, match="relation"):
        _core.kge_bernoulli_probs(data.train, 3)


def test_command_line_train_save_eval_and_errors(tmp_path, capsys):
    from nesy.cli import main

    out = tmp_path / "m.npz"
    assert main(["kge", "train", "--data", "nations", "--model", "distmult", "--dim", "8",
                 "--epochs", "2", "--save", str(out)]) == 0
    assert "MRR" in capsys.readouterr().out and out.exists()
    assert main(["kge", "eval", str(out), "--data", "nations"]) == 0
    assert main(["kge", "eval", str(out), "--data", "umls"]) == 2  # another data set
    # Same counts, other labels: refused by the labels saved with the model.
    data, other = load_kg("nations"), tmp_path / "renamed"
    other.mkdir()
    for split in ("train", "valid", "test"):
        rows = [f"x{data.entities[h]}\t{data.relations[r]}\tx{data.entities[t]}"
                for h, r, t in data.split(split)]
        (other / f"{split}.txt").write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    assert main(["kge", "eval", str(out), "--data", str(other)]) == 2
    assert "entities are not the ones the model was trained on" in capsys.readouterr().err
    # Resume from a checkpoint: 2 epochs, then on to 4, as one run of 4.
    ck, a, b = tmp_path / "ck.npz", tmp_path / "a.npz", tmp_path / "b.npz"
    args = ["kge", "train", "--data", "nations", "--model", "distmult", "--dim", "8"]
    assert main([*args, "--epochs", "4", "--save", str(a)]) == 0
    assert main([*args, "--epochs", "2", "--checkpoint", str(ck)]) == 0
    assert main([*args, "--epochs", "4", "--checkpoint", str(ck), "--resume",
                 "--save", str(b)]) == 0
    np.testing.assert_array_equal(kge.KGEModel.load(a).entity_embeddings_,
                                  kge.KGEModel.load(b).entity_embeddings_)
    assert main([*args, "--resume"]) == 2
    # A directory where a file is expected (an OSError) is a user error too: exit 2.
    assert main(["kge", "eval", str(tmp_path), "--data", "nations"]) == 2
    # A diverging loss is a user error: exit 2 and a message, no traceback.
    assert main(["kge", "train", "--data", "nations", "--model", "transe_l2", "--dim", "8",
                 "--epochs", "2", "--lr", "1e30", "--loss", "softplus"]) == 2
    assert "error: loss: not finite" in capsys.readouterr().err
