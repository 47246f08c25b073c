"""Checks of the knowledge-graph references in ``tests/reference_kge.py`` and of the loader
``nesy.datasets.load_kg``.

* Scores: the ``[re | im]`` storage of ComplEx and RotatE against NumPy complex arithmetic; 1-vs-all
  tail and head scores against the triple scores of every (query, entity) pair; float32 against
  float64.
* Gradients: every row gradient, the scatter-added table gradients (repeated entities), the
  1-vs-all table gradients, the regularisers and the losses against central finite differences in
  float64.
* PyTorch parity (skipped when torch is not importable): scores and autograd gradients of
  independent torch formulations (``torch.cdist``, complex tensors, ``torch.polar``) and the torch
  losses, float32 and float64.
* Evaluator: hand-worked ranks with ties and filtering, all-ties on real data, and agreement with
  an independent vectorised implementation on tie-heavy random scores over Kinship.
* Loader: the shipped data sets (counts, ids, identical to ``../shared/data``), CRLF / BOM / blank
  lines, malformed lines with file and line number, empty and missing splits, unknown labels.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import nesy.datasets as ds
from nesy.datasets.kg import KGData, UnknownLabelError, load_kg

try:  # tests/ as a package, or as a plain directory on sys.path
    from tests import reference_kge as ref
    from tests.test_nn import numerical_grad
except ImportError:
    import reference_kge as ref
    from test_nn import numerical_grad

SHARED_KG = Path(__file__).resolve().parents[2] / "shared" / "data" / "kg"
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


# ---------------------------------------------------------------------- helpers
def rows_case(model, n=5, rank=4, seed=0, dtype=np.float64):
    """Gathered rows ``h, r, t`` and an upstream vector, away from the distance kinks."""
    ent, rel = ref.random_embeddings(model, 2 * n, n, rank, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    return ent[:n].copy(), rel.copy(), ent[n:].copy(), rng.standard_normal(n).astype(dtype)


def complex_rows(x: np.ndarray) -> np.ndarray:
    k = x.shape[-1] // 2
    return x[..., :k] + 1j * x[..., k:]


def random_triples(n_entities, n_relations, n, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            rng.integers(0, n_entities, n),
            rng.integers(0, n_relations, n),
            rng.integers(0, n_entities, n),
        ],
        axis=1,
    )


# ---------------------------------------------------------------------- scores
def test_layout_matches_numpy_complex_arithmetic():
    h, r, t, _ = rows_case("complex", rank=6)
    want = np.real(np.sum(complex_rows(h) * complex_rows(r) * np.conj(complex_rows(t)), axis=-1))
    np.testing.assert_allclose(ref.score("complex", h, r, t), want, rtol=1e-13)

    h, theta, t, _ = rows_case("rotate", rank=6)
    assert h.shape == (5, 12) and theta.shape == (5, 6)
    rot = complex_rows(h) * np.exp(1j * theta)
    want = -np.sum(np.abs(rot - complex_rows(t)), axis=-1)
    np.testing.assert_allclose(ref.score("rotate", h, theta, t), want, rtol=1e-13)

    h, r, t, _ = rows_case("transe_l2")
    np.testing.assert_allclose(
        ref.score("transe_l2", h, r, t), -np.linalg.norm(h + r - t, axis=1), rtol=1e-13
    )
    np.testing.assert_allclose(
        ref.score("transe_l1", h, r, t), -np.linalg.norm(h + r - t, ord=1, axis=1), rtol=1e-13
    )


def test_embedding_widths_and_bad_model():
    assert ref.embedding_widths("complex", 3) == (6, 6)
    assert ref.embedding_widths("rotate", 3) == (6, 3)
    assert ref.embedding_widths("transe_l1", 3) == (3, 3)
    with pytest.raises(ValueError, match="model"):
        ref.score("transh", np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)))


@pytest.mark.parametrize("model", ref.MODELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_vs_all_scores_match_triple_scores(model, dtype):
    n_e, n_r = 17, 4
    ent, rel = ref.random_embeddings(model, n_e, n_r, 5, dtype=dtype, seed=3)
    q = random_triples(n_e, n_r, 9, seed=4)
    tails = ref.score_tails(model, ent, rel, q[:, 0], q[:, 1])
    heads = ref.score_heads(model, ent, rel, q[:, 1], q[:, 2])
    assert tails.shape == heads.shape == (9, n_e)
    assert tails.dtype == heads.dtype == dtype
    every = np.arange(n_e)
    for i, (h, r, t) in enumerate(q):
        as_tail = np.stack([np.full(n_e, h), np.full(n_e, r), every], axis=1)
        as_head = np.stack([every, np.full(n_e, r), np.full(n_e, t)], axis=1)
        np.testing.assert_allclose(
            tails[i], ref.score_triples(model, ent, rel, as_tail), **TOL[dtype]
        )
        np.testing.assert_allclose(
            heads[i], ref.score_triples(model, ent, rel, as_head), **TOL[dtype]
        )
    # the target column of the queries is where the triple's own score sits
    own = ref.score_triples(model, ent, rel, q)
    np.testing.assert_allclose(tails[np.arange(9), q[:, 2]], own, **TOL[dtype])
    np.testing.assert_allclose(heads[np.arange(9), q[:, 0]], own, **TOL[dtype])


def test_one_vs_all_blocks_cover_every_query(monkeypatch):
    """Tiny blocks (one query each) give the same matrix as one block."""
    ent, rel = ref.random_embeddings("rotate", 11, 3, 4, seed=5)
    q = random_triples(11, 3, 7, seed=6)
    whole = ref.score_tails("rotate", ent, rel, q[:, 0], q[:, 1])
    monkeypatch.setattr(ref, "_BLOCK_ELEMENTS", 1)
    np.testing.assert_array_equal(ref.score_tails("rotate", ent, rel, q[:, 0], q[:, 1]), whole)


@pytest.mark.parametrize("model", ref.MODELS)
def test_float32_scores_follow_float64(model):
    ent, rel = ref.random_embeddings(model, 30, 5, 16, seed=7)
    q = random_triples(30, 5, 12, seed=8)
    s64 = ref.score_tails(model, ent, rel, q[:, 0], q[:, 1])
    s32 = ref.score_tails(model, ent.astype(np.float32), rel.astype(np.float32), q[:, 0], q[:, 1])
    assert s32.dtype == np.float32
    np.testing.assert_allclose(s32, s64, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------------- gradients
@pytest.mark.parametrize("model", ref.MODELS)
def test_row_gradients_match_finite_differences(model):
    h, r, t, up = rows_case(model, seed=11)
    dh, dr, dt = ref.score_grad(model, h, r, t, up)
    assert dh.shape == h.shape and dr.shape == r.shape and dt.shape == t.shape

    def f():
        return float(np.sum(up * ref.score(model, h, r, t)))

    for name, arr, got in (("h", h, dh), ("r", r, dr), ("t", t, dt)):
        np.testing.assert_allclose(got, numerical_grad(f, arr), rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("model", ref.MODELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_row_gradients_keep_dtype(model, dtype):
    h, r, t, up = rows_case(model, dtype=dtype)
    h64, r64, t64, up64 = (a.astype(np.float64) for a in (h, r, t, up))
    for got, want in zip(
        ref.score_grad(model, h, r, t, up), ref.score_grad(model, h64, r64, t64, up64)
    ):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model", ["transe_l1", "transe_l2", "rotate"])
def test_distance_kinks_use_subgradient_zero(model):
    h, r, t, up = rows_case(model)
    r[:] = 0.0  # TransE: h + 0 - t; RotatE: rotation by angle 0, h o 1 - t
    t[:] = h  # zero distance everywhere
    for g in ref.score_grad(model, h, r, t, up):
        assert np.all(g == 0) and np.all(np.isfinite(g))


@pytest.mark.parametrize("model", ref.MODELS)
def test_table_gradients_accumulate_repeated_rows(model):
    ent, rel = ref.random_embeddings(model, 4, 2, 3, seed=12)
    # entity 1 is a head and a tail, triple (1, 0, 1) is a self-loop, (2, 1, 3) repeats
    triples = np.array([[1, 0, 1], [1, 1, 2], [2, 1, 3], [2, 1, 3], [0, 0, 1]])
    up = np.random.default_rng(13).standard_normal(len(triples))
    d_ent, d_rel = ref.table_grads(model, ent, rel, triples, up)

    def f():
        return float(np.sum(up * ref.score_triples(model, ent, rel, triples)))

    np.testing.assert_allclose(d_ent, numerical_grad(f, ent), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(d_rel, numerical_grad(f, rel), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("model", ref.MODELS)
def test_one_vs_all_table_gradients(model):
    ent, rel = ref.random_embeddings(model, 6, 3, 3, seed=14)
    q = random_triples(6, 3, 4, seed=15)
    up = np.random.default_rng(16).standard_normal((4, 6))

    def f_tails():
        return float(np.sum(up * ref.score_tails(model, ent, rel, q[:, 0], q[:, 1])))

    def f_heads():
        return float(np.sum(up * ref.score_heads(model, ent, rel, q[:, 1], q[:, 2])))

    for f, got in (
        (f_tails, ref.score_tails_grad(model, ent, rel, q[:, 0], q[:, 1], up)),
        (f_heads, ref.score_heads_grad(model, ent, rel, q[:, 1], q[:, 2], up)),
    ):
        np.testing.assert_allclose(got[0], numerical_grad(f, ent), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(got[1], numerical_grad(f, rel), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("complex_rows_", [False, True])
def test_regularisers(complex_rows_):
    x = np.random.default_rng(17).standard_normal((4, 6))
    value, grad = ref.n3_regulariser(x, 0.3, complex=complex_rows_)
    np.testing.assert_allclose(
        grad,
        numerical_grad(lambda: ref.n3_regulariser(x, 0.3, complex_rows_)[0], x),
        rtol=1e-6,
        atol=1e-8,
    )
    mod = np.abs(complex_rows(x)) if complex_rows_ else np.abs(x)
    assert math.isclose(value, 0.3 * np.sum(mod**3), rel_tol=1e-13)
    value, grad = ref.l2_regulariser(x, 0.3)
    assert math.isclose(value, 0.3 * np.sum(x**2), rel_tol=1e-13)
    np.testing.assert_allclose(
        grad, numerical_grad(lambda: ref.l2_regulariser(x, 0.3)[0], x), rtol=1e-6
    )
    x32 = x.astype(np.float32)
    assert ref.n3_regulariser(x32, 0.3, complex_rows_)[1].dtype == np.float32
    assert ref.l2_regulariser(x32, 0.3)[1].dtype == np.float32


# ---------------------------------------------------------------------- losses
def loss_case(seed=18, n=5, k=4):
    rng = np.random.default_rng(seed)
    return 2 * rng.standard_normal(n), 2 * rng.standard_normal((n, k))


LOSSES = {
    "margin": lambda p, q, red: ref.margin_ranking_loss(p, q, margin=1.5, reduction=red),
    "softplus": lambda p, q, red: ref.softplus_loss(p, q, reduction=red),
    "adversarial": lambda p, q, red: ref.self_adversarial_loss(p, q, 2.0, 0.7, reduction=red),
    "uniform": lambda p, q, red: ref.self_adversarial_loss(p, q, 2.0, 0.0, reduction=red),
}


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_negative_sampling_loss_gradients(name, reduction):
    pos, neg = loss_case()
    loss = LOSSES[name]
    value, dpos, dneg = loss(pos, neg, reduction)
    assert np.isfinite(value) and dpos.shape == pos.shape and dneg.shape == neg.shape
    if name != "adversarial":  # adversarial weights are constants: no plain f.d. check
        f = lambda: loss(pos, neg, reduction)[0]  # noqa: E731
        np.testing.assert_allclose(dpos, numerical_grad(f, pos), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(dneg, numerical_grad(f, neg), rtol=1e-6, atol=1e-9)
    _, dpos32, dneg32 = loss(pos.astype(np.float32), neg.astype(np.float32), reduction)
    assert dpos32.dtype == dneg32.dtype == np.float32
    np.testing.assert_allclose(dneg32, dneg, rtol=1e-4, atol=1e-6)


def test_self_adversarial_gradient_with_frozen_weights():
    """The gradient is the one of the loss with the softmax weights held fixed."""
    pos, neg = loss_case(seed=19)
    gamma, alpha = 2.0, 0.7
    w = np.exp(alpha * neg)
    w /= w.sum(axis=1, keepdims=True)

    def frozen():
        log_sig = lambda x: -np.logaddexp(0, -x)  # noqa: E731
        pos_term = -np.mean(log_sig(gamma + pos))
        neg_term = -np.mean(np.sum(w * log_sig(-gamma - neg), axis=1))
        return (pos_term + neg_term) / 2

    value, dpos, dneg = ref.self_adversarial_loss(pos, neg, gamma, alpha)
    assert math.isclose(value, frozen(), rel_tol=1e-13)
    np.testing.assert_allclose(dpos, numerical_grad(frozen, pos), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(dneg, numerical_grad(frozen, neg), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_1vsall_gradient_and_smoothing(smoothing, reduction):
    rng = np.random.default_rng(20)
    scores = 3 * rng.standard_normal((4, 7))
    labels = rng.random((4, 7)) < 0.3
    value, grad = ref.bce_1vsall_loss(scores, labels, smoothing, reduction)
    f = lambda: ref.bce_1vsall_loss(scores, labels, smoothing, reduction)[0]  # noqa: E731
    np.testing.assert_allclose(grad, numerical_grad(f, scores), rtol=1e-6, atol=1e-9)
    y = (1 - smoothing) * labels + smoothing / 7
    p = 1 / (1 + np.exp(-scores))
    direct = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert math.isclose(
        value, direct.mean() if reduction == "mean" else direct.sum(), rel_tol=1e-12
    )


def test_losses_are_finite_for_extreme_scores():
    pos = np.array([-800.0, 800.0])
    neg = np.array([[800.0, -800.0], [0.0, 800.0]])
    for name, loss in LOSSES.items():
        value, dpos, dneg = loss(pos, neg, "mean")
        assert np.isfinite(value) and np.all(np.isfinite(dpos)) and np.all(np.isfinite(dneg)), name
    value, grad = ref.bce_1vsall_loss(neg, np.eye(2, dtype=bool))
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    with pytest.raises(ValueError, match="reduction"):
        ref.softplus_loss(pos, neg, reduction="none")
    with pytest.raises(ValueError, match="label_smoothing"):
        ref.bce_1vsall_loss(neg, np.eye(2), label_smoothing=1.0)


# ---------------------------------------------------------------------- torch parity
def torch_score(torch, model, h, r, t):
    """Independent torch formulations of the scores (complex tensors, norms)."""
    if model in ("transe_l1", "transe_l2"):
        p = 1 if model == "transe_l1" else 2
        return -torch.linalg.vector_norm(h + r - t, ord=p, dim=-1)
    if model == "distmult":
        return torch.einsum("nd,nd,nd->n", h, r, t)
    k = h.shape[-1] // 2
    hc, tc = torch.complex(h[:, :k], h[:, k:]), torch.complex(t[:, :k], t[:, k:])
    if model == "complex":
        rc = torch.complex(r[:, :k], r[:, k:])
        return torch.real(torch.sum(hc * rc * torch.conj(tc), dim=-1))
    rc = torch.polar(torch.ones_like(r), r)
    return -torch.sum(torch.abs(hc * rc - tc), dim=-1)


@pytest.mark.parametrize("model", ref.MODELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_scores_and_gradients_match_torch(model, dtype):
    torch = pytest.importorskip("torch")
    h, r, t, up = rows_case(model, n=8, rank=6, seed=21, dtype=dtype)
    th, tr, tt = (torch.tensor(a, requires_grad=True) for a in (h, r, t))
    s = torch_score(torch, model, th, tr, tt)
    (s * torch.tensor(up)).sum().backward()
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(ref.score(model, h, r, t), s.detach().numpy(), **tol)
    for got, want in zip(ref.score_grad(model, h, r, t, up), (th.grad, tr.grad, tt.grad)):
        np.testing.assert_allclose(got, want.numpy(), **tol)


@pytest.mark.parametrize("p", [1, 2])
def test_transe_one_vs_all_matches_torch_cdist(p):
    torch = pytest.importorskip("torch")
    model = f"transe_l{p}"
    ent, rel = ref.random_embeddings(model, 50, 4, 8, dtype=np.float32, seed=22)
    q = random_triples(50, 4, 10, seed=23)
    want = -torch.cdist(torch.tensor(ent[q[:, 0]] + rel[q[:, 1]]), torch.tensor(ent), p=p)
    got = ref.score_tails(model, ent, rel, q[:, 0], q[:, 1])
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_match_torch(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    pos, neg = (a.astype(dtype) for a in loss_case(seed=24))
    tol = dict(rtol=1e-5, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)

    def torch_check(ours, fn):
        tp, tn = torch.tensor(pos, requires_grad=True), torch.tensor(neg, requires_grad=True)
        loss = fn(tp, tn)
        loss.backward()
        np.testing.assert_allclose(ours[0], loss.item(), **tol)
        np.testing.assert_allclose(ours[1], tp.grad.numpy(), **tol)
        np.testing.assert_allclose(ours[2], tn.grad.numpy(), **tol)

    torch_check(
        ref.margin_ranking_loss(pos, neg, margin=1.5),
        lambda tp, tn: F.margin_ranking_loss(
            tp[:, None].expand_as(tn), tn, torch.ones_like(tn), margin=1.5
        ),
    )
    torch_check(
        ref.softplus_loss(pos, neg),
        lambda tp, tn: torch.cat([F.softplus(-tp), F.softplus(tn).reshape(-1)]).mean(),
    )

    def sun_et_al(tp, tn, gamma=2.0, alpha=0.7):  # as in the RotatE authors' code
        negative_score = gamma + tn
        negative_score = (
            F.softmax(negative_score * alpha, dim=1).detach() * F.logsigmoid(-negative_score)
        ).sum(dim=1)
        positive_score = F.logsigmoid(gamma + tp)
        return (-positive_score.mean() - negative_score.mean()) / 2

    torch_check(ref.self_adversarial_loss(pos, neg, 2.0, 0.7), sun_et_al)

    labels = np.random.default_rng(25).random(neg.shape) < 0.4
    value, grad = ref.bce_1vsall_loss(neg, labels, label_smoothing=0.1)
    ts = torch.tensor(neg, requires_grad=True)
    target = torch.tensor(0.9 * labels + 0.1 / neg.shape[1], dtype=ts.dtype)
    loss = F.binary_cross_entropy_with_logits(ts, target)
    loss.backward()
    np.testing.assert_allclose(value, loss.item(), **tol)
    np.testing.assert_allclose(grad, ts.grad.numpy(), **tol)


# ---------------------------------------------------------------------- evaluator
def hand_case():
    """Two test triples over 5 entities with ties, worked out by hand below."""
    triples = np.array([[0, 0, 1], [2, 1, 4]])
    known = np.array(
        [
            [0, 0, 1],
            [2, 1, 4],  # the test triples themselves (never filtered for themselves)
            [0, 0, 2],  # filters entity 2 from the tail query (0, 0, ?)
            [3, 0, 1],  # filters entity 3 from the head query (?, 0, 1)
            [0, 0, 4],  # filters entity 4 from (0, 0, ?): it scores below the target anyway
            [1, 1, 1],  # unrelated
        ]
    )
    tail_scores = np.array(
        [
            [0.5, 0.7, 0.9, 0.7, 0.1],  # target 1 (0.7); 2 filtered; 3 ties -> opt 1, pess 2
            [0.2, 0.2, 0.2, 0.2, 0.2],  # target 4; all tie -> opt 1, pess 5
        ]
    )
    head_scores = np.array(
        [
            [0.3, 0.8, 0.8, 0.8, 0.9],  # target 0 (0.3); 3 filtered; 1, 2, 4 better -> 4, 4
            [0.0, 0.0, 1.0, -1.0, 0.5],  # target 2 (1.0): best -> 1, 1
        ]
    )
    return tail_scores, head_scores, triples, known


def test_filtered_ranks_by_hand():
    ranks = ref.filtered_ranks(*hand_case())
    np.testing.assert_array_equal(ranks["tail"]["optimistic"], [1, 1])
    np.testing.assert_array_equal(ranks["tail"]["pessimistic"], [2, 5])
    np.testing.assert_array_equal(ranks["tail"]["realistic"], [1.5, 3.0])
    np.testing.assert_array_equal(ranks["head"]["optimistic"], [4, 1])
    np.testing.assert_array_equal(ranks["head"]["pessimistic"], [4, 1])
    np.testing.assert_array_equal(ranks["head"]["realistic"], [4.0, 1.0])


def test_evaluate_by_hand():
    res = ref.evaluate(*hand_case())
    both = res["both"]  # realistic ranks 1.5, 3, 4, 1
    assert both["count"] == 4
    assert math.isclose(both["mr"], (1.5 + 3 + 4 + 1) / 4)
    assert math.isclose(both["mrr"], (1 / 1.5 + 1 / 3 + 1 / 4 + 1) / 4)
    assert (both["hits@1"], both["hits@3"], both["hits@10"]) == (0.25, 0.75, 1.0)
    assert math.isclose(res["tail"]["mrr"], (1 / 1.5 + 1 / 3) / 2)
    assert res["head"]["hits@1"] == 0.5
    assert sorted(res["per_relation"]) == [0, 1]
    assert math.isclose(res["per_relation"][0]["both"]["mr"], (1.5 + 4) / 2)
    assert math.isclose(res["per_relation"][1]["tail"]["mr"], 3.0)
    opt = ref.evaluate(*hand_case(), ties="optimistic")["both"]
    pess = ref.evaluate(*hand_case(), ties="pessimistic")["both"]
    assert (opt["mr"], pess["mr"]) == ((1 + 1 + 4 + 1) / 4, (2 + 5 + 4 + 1) / 4)
    assert (opt["hits@1"], pess["hits@1"]) == (0.75, 0.25)


def test_evaluator_rejects_bad_input():
    tails, heads, triples, known = hand_case()
    with pytest.raises(ValueError, match="ties"):
        ref.evaluate(tails, heads, triples, known, ties="mean")
    bad = tails.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="tail_scores"):
        ref.filtered_ranks(bad, heads, triples, known)
    with pytest.raises(ValueError, match="head_scores"):
        ref.filtered_ranks(tails, heads[:1], triples, known)


def vectorised_ranks(tail_scores, head_scores, triples, known, n_entities):
    """Independent implementation: a dense filter mask from integer keys, array comparisons."""
    out = {}
    for direction, scores, (a, b), target in (
        ("tail", tail_scores, (0, 1), 2),
        ("head", head_scores, (1, 2), 0),
    ):
        # key of (fixed pair, candidate entity) as one integer
        known_keys = (known[:, a] * n_entities + known[:, b]) * n_entities + known[:, target]
        base = (triples[:, a] * n_entities + triples[:, b]) * n_entities
        filt = np.isin(base[:, None] + np.arange(n_entities)[None, :], known_keys)
        rows, tgt = np.arange(len(triples)), triples[:, target]
        filt[rows, tgt] = True  # the target is not its own competitor
        s = scores[rows, tgt][:, None]
        better = np.sum((scores > s) & ~filt, axis=1)
        equal = np.sum((scores == s) & ~filt, axis=1)
        out[direction] = (1 + better, 1 + better + equal)
    return out


def test_evaluator_matches_vectorised_version_on_kinship():
    kg = load_kg("kinship")
    rng = np.random.default_rng(26)
    n, n_e = len(kg.test), kg.n_entities
    tails = rng.integers(0, 4, (n, n_e)).astype(np.float32)  # many ties
    heads = rng.integers(0, 4, (n, n_e)).astype(np.float32)
    known = kg.all_triples()
    ranks = ref.filtered_ranks(tails, heads, kg.test, known)
    want = vectorised_ranks(tails, heads, kg.test, known, n_e)
    for d in ("tail", "head"):
        np.testing.assert_array_equal(ranks[d]["optimistic"], want[d][0])
        np.testing.assert_array_equal(ranks[d]["pessimistic"], want[d][1])
    assert np.any(ranks["tail"]["optimistic"] != ranks["tail"]["pessimistic"])


def test_all_ties_on_nations_give_the_middle_rank():
    """All-zero embeddings: every candidate ties, realistic rank = (1 + #candidates) / 2."""
    kg = load_kg("nations")
    ent = np.zeros((kg.n_entities, 4))
    rel = np.zeros((kg.n_relations, 4))
    known = kg.all_triples()
    res = ref.evaluate_model("distmult", ent, rel, kg.test, known)
    n_known_tails = [np.sum((known[:, 0] == h) & (known[:, 1] == r)) for h, r, _ in kg.test]
    n_known_heads = [np.sum((known[:, 1] == r) & (known[:, 2] == t)) for _, r, t in kg.test]
    want_tail = (1 + kg.n_entities - np.array(n_known_tails) + 1) / 2
    want_head = (1 + kg.n_entities - np.array(n_known_heads) + 1) / 2
    assert math.isclose(res["tail"]["mr"], want_tail.mean())
    assert math.isclose(res["head"]["mr"], want_head.mean())
    # pooled and per-relation summaries agree with each other
    per = res["per_relation"]
    assert sum(m["both"]["count"] for m in per.values()) == 2 * len(kg.test)
    pooled = sum(m["both"]["mrr"] * m["both"]["count"] for m in per.values()) / (2 * len(kg.test))
    assert math.isclose(pooled, res["both"]["mrr"])


def test_perfect_scores_rank_first_despite_other_true_triples():
    kg = load_kg("umls")
    known = kg.all_triples()
    tails = np.zeros((len(kg.test), kg.n_entities))
    heads = np.zeros((len(kg.test), kg.n_entities))
    for i, (h, _, t) in enumerate(kg.test):  # every known answer scores 1, the target too
        tails[i, known[(known[:, 0] == h) & (known[:, 1] == kg.test[i, 1]), 2]] = 1
        heads[i, known[(known[:, 2] == t) & (known[:, 1] == kg.test[i, 1]), 0]] = 1
    res = ref.evaluate(tails, heads, kg.test, known, ties="pessimistic")
    assert res["both"]["mrr"] == 1.0 and res["both"]["mr"] == 1.0


# ---------------------------------------------------------------------- loader: shipped data
SHIPPED = {  # entities, relations, train, valid, test (../shared/data/README.md)
    "nations": (14, 55, 1592, 199, 201),
    "umls": (135, 46, 5216, 652, 661),
    "kinship": (104, 25, 8544, 1068, 1074),
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_knowledge_graphs(name):
    kg = load_kg(name)
    assert isinstance(kg, KGData)
    assert (kg.n_entities, kg.n_relations, len(kg.train), len(kg.valid), len(kg.test)) == (
        SHIPPED[name]
    )
    for split in ("train", "valid", "test"):
        arr = kg.split(split)
        assert arr.dtype == np.int64 and arr.ndim == 2 and arr.shape[1] == 3
        assert arr[:, [0, 2]].max() < kg.n_entities and arr[:, 1].max() < kg.n_relations
    assert len(kg.unseen_test) == 0
    assert kg.source == f"nesy.datasets:data/kg/{name}"
    assert len(kg.all_triples()) == sum(SHIPPED[name][2:])  # no triple is in two splits
    # ids: order of first appearance, head before tail
    first = kg.decode(kg.train[:1])[0]
    assert kg.entity_id(first[0]) == 0 and kg.relation_id(first[1]) == 0
    assert kg.entities.index(first[2]) == kg.entity_to_id[first[2]] <= 1
    assert kg.entity_to_id == {e: i for i, e in enumerate(kg.entities)}
    assert kg.relation_to_id == {r: i for i, r in enumerate(kg.relations)}
    assert load_kg(name.upper()).entities == kg.entities


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_copies_equal_shared_data(name):
    folder = SHARED_KG / name
    if not folder.is_dir():
        pytest.skip("../shared/data/kg not present")
    shipped = load_kg(name)
    shared = load_kg(folder)
    assert shared.name == name and shared.entities == shipped.entities
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(shared.split(split), shipped.split(split))
        lines = (folder / f"{split}.txt").read_text().splitlines()
        assert shipped.decode(shipped.split(split)) == [tuple(x.split("\t")) for x in lines]


def test_wn18rr_by_path_reports_unseen_test_entities():
    folder = SHARED_KG / "wn18rr"
    if not folder.is_dir():
        pytest.skip("../shared/data/kg/wn18rr not present")
    with pytest.warns(UserWarning, match="never seen in train"):
        kg = load_kg(str(folder))
    assert (kg.n_entities, kg.n_relations) == (40943, 11)
    assert (len(kg.train), len(kg.valid), len(kg.test)) == (86835, 3034, 3134)
    rep = kg.unseen_test
    assert len(rep) == 210 and len(rep.relations) == 0 and len(rep.entities) > 0
    # entities first seen outside train get the largest ids
    n_train_ents = len(np.unique(kg.train[:, [0, 2]]))
    assert rep.entities.min() >= n_train_ents
    bad = kg.test[rep.rows]
    assert np.all((bad[:, 0] >= n_train_ents) | (bad[:, 2] >= n_train_ents))
    assert "210 of 3,134" in str(rep)


# ---------------------------------------------------------------------- loader: edge cases
def write_kg(
    folder: Path,
    train: str,
    valid: str = "a\tr\tb\n",
    test: str = "b\tr\ta\n",
    newline: str = "\n",
    bom: bool = False,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        data = text.replace("\n", newline).encode()
        (folder / f"{name}.txt").write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return folder


TRAIN = "a\tr\tb\nb\ts\tc\nc\tr\ta\n"


def test_first_appearance_ids_and_unseen_report(tmp_path):
    with pytest.warns(UserWarning, match="never seen in train"):
        kg = load_kg(write_kg(tmp_path / "g", TRAIN, valid="c\tt\td\n",
                              test="d\tr\te\na\tr\tc\n"))
    assert kg.entities == ["a", "b", "c", "d", "e"] and kg.relations == ["r", "s", "t"]
    np.testing.assert_array_equal(kg.train, [[0, 0, 1], [1, 1, 2], [2, 0, 0]])
    np.testing.assert_array_equal(kg.test, [[3, 0, 4], [0, 0, 2]])
    rep = kg.unseen_test
    np.testing.assert_array_equal(rep.rows, [0])
    np.testing.assert_array_equal(rep.entities, [3, 4])
    assert len(rep.relations) == 0
    valid_rep = kg.unseen("valid")
    np.testing.assert_array_equal(valid_rep.relations, [2])
    np.testing.assert_array_equal(valid_rep.entities, [3])
    assert kg.name == "g" and "5 entities" in repr(kg)
    with pytest.raises(ValueError, match="split"):
        kg.unseen("train")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
def test_crlf_bom_blank_lines_and_trailing_spaces(tmp_path, newline, bom):
    messy = "a\tr\tb  \n\n  \nb\ts\tc\n c\tr\ta\n\n \t \n"
    kg = load_kg(write_kg(tmp_path / "m", messy, newline=newline, bom=bom))
    clean = load_kg(write_kg(tmp_path / "c", TRAIN))
    assert kg.entities == clean.entities and kg.relations == clean.relations
    np.testing.assert_array_equal(kg.train, clean.train)


@pytest.mark.parametrize(
    "bad_line, fields",
    [("c\tr\n", 2), ("c\tr\ta\tx\n", 4), ("c r a\n", 1), ("c\t\ta\n", 3)],
)
def test_malformed_line_names_file_and_line(tmp_path, bad_line, fields):
    folder = write_kg(tmp_path / "bad", TRAIN, test="a\tr\tb\n\n" + bad_line)
    with pytest.raises(ValueError, match=rf"test\.txt, line 3: .*got {fields} field") as err:
        load_kg(folder)
    assert str(folder) in str(err.value)


def test_invalid_utf8_names_file_and_line(tmp_path):
    folder = write_kg(tmp_path / "u", TRAIN)
    (folder / "valid.txt").write_bytes(b"a\tr\tb\nb\tr\t\xff\xfe\n")
    with pytest.raises(ValueError, match=r"valid\.txt, line 2: not valid UTF-8"):
        load_kg(folder)


def test_kgdata_builds_label_maps():
    kg = KGData("toy", "memory", *(np.zeros((1, 3), dtype=np.int64),) * 3, ["x", "y"], ["r"])
    assert kg.entity_to_id == {"x": 0, "y": 1} and kg.relation_id("r") == 0


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_empty_split_is_an_error(tmp_path, split):
    texts = {"train": TRAIN, "valid": "a\tr\tb\n", "test": "b\tr\ta\n"}
    texts[split] = "\n  \n"
    with pytest.raises(ValueError, match=rf"{split}\.txt: the split is empty"):
        load_kg(write_kg(tmp_path / "e", **texts))


def test_missing_files_and_folders(tmp_path):
    folder = write_kg(tmp_path / "g", TRAIN)
    (folder / "valid.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"valid\.txt: no such file"):
        load_kg(folder)
    with pytest.raises(FileNotFoundError, match="neither a shipped"):
        load_kg(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="neither a shipped"):
        load_kg("fb15k-237")
    with pytest.raises(TypeError, match="name_or_path"):
        load_kg(3)  # type: ignore[arg-type]


def test_labels_and_ids_round_trip_with_clear_errors():
    kg = load_kg("umls")
    labels = kg.decode(kg.test)
    np.testing.assert_array_equal(kg.encode(labels), kg.test)
    assert kg.entity_label(kg.entity_id("virus")) == "virus"
    np.testing.assert_array_equal(kg.relation_id(kg.relations[:3]), [0, 1, 2])
    assert kg.relation_label(np.array([2, 0])) == [kg.relations[2], kg.relations[0]]
    with pytest.raises(UnknownLabelError, match="unknown entity label 'nope' at position 1"):
        kg.entity_id(["virus", "nope"])
    with pytest.raises(KeyError):  # also a KeyError ...
        kg.relation_id("nope")
    with pytest.raises(ValueError, match=r"unknown relation label 'isa ' in triples\[0\]\[1\]"):
        kg.encode([("virus", "isa ", "virus")])  # ... and a ValueError
    with pytest.raises(ValueError, match="row 0 has 2 items"):
        kg.encode([("virus", "isa")])
    with pytest.raises(IndexError, match="entity id 135 out of range"):
        kg.entity_label([0, 135])
    with pytest.raises(IndexError, match="relation id -1"):
        kg.decode(np.array([[0, -1, 0]]))
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        kg.decode(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="integers"):
        kg.entity_label(np.array([0.0]))


def test_datasets_exports():
    assert {"load_kg", "KGData", "UnseenReport", "UnknownLabelError"} <= set(ds.__all__)
