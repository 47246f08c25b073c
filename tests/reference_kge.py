"""Plain NumPy references for knowledge-graph embeddings: scores, gradients, regularisers, losses
and the filtered link-prediction evaluator. The ``nesy.kge`` kernels are tested against them;
they are checked themselves in ``tests/test_reference_kge.py`` (finite differences, hand-worked
ranks, NumPy complex arithmetic and, when importable, PyTorch).

Conventions
===========

Triples are int arrays of shape ``(n, 3)`` in ``(head, relation, tail)`` order. ``ent`` is the
entity table of shape ``(n_entities, d_e)``, ``rel`` the relation table ``(n_relations, d_r)``.
A higher score means a more plausible triple; the distance models return the NEGATIVE distance.
Every function computes in the dtype of its inputs (float32 or float64).

Storage layout of each model (``k`` is the rank, i.e. the number of complex dimensions for the
complex models)::

    model      entity row (d_e)        relation row (d_r)     score s(h, r, t)
    ---------  ----------------------  ---------------------  --------------------------------
    transe_l1  k reals                 k reals                -sum_j |h_j + r_j - t_j|
    transe_l2  k reals                 k reals                -sqrt(sum_j (h_j + r_j - t_j)^2)
    distmult   k reals                 k reals                sum_j h_j r_j t_j
    complex    2k: [re_0 .. re_{k-1},  2k: same layout        Re(sum_j h_j r_j conj(t_j))
                    im_0 .. im_{k-1}]
    rotate     2k: same layout         k phases theta_j       -sum_j |h_j e^{i theta_j} - t_j|
                                       (radians)

ComplEx (Trouillon et al. 2016) and RotatE (Sun et al. 2019) rows are stored REAL PART FIRST,
THEN IMAGINARY PART: complex component ``j`` of row ``x`` is ``x[j] + 1j * x[k + j]`` (NOT
interleaved re/im pairs). RotatE's distance is the L1 norm over complex moduli, i.e. the sum over
``j`` of ``sqrt(re_j^2 + im_j^2)`` of ``h o r - t``, as in the authors' code. The TransE-L2 score is
the Euclidean distance itself, not its square. No margin ``gamma`` is part of any score: losses
that need one (self-adversarial) take it as an argument.

Where the distance is not differentiable (a zero component for L1, a zero vector for L2, a zero
complex modulus for RotatE) the gradients use the subgradient 0.

Losses take positive scores ``pos`` of shape ``(n,)`` and negative scores ``neg`` of shape
``(n, n_neg)`` (row ``i`` holds the negatives of positive ``i``), or for 1-vs-all a score matrix
``(n, n_entities)`` with 0/1 labels; each returns ``(loss, grad(s) w.r.t. the scores)``.

The evaluator ranks each test triple against every entity in both directions, after removing
every other known true triple, counting ties optimistically, pessimistically or "realistically"
(the mean of the two, as PyKEEN's ``realistic`` rank); it loops over test triples one by one and
is meant to be obviously right, not fast.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

__all__ = [
    "MODELS",
    "COMPLEX_MODELS",
    "embedding_widths",
    "random_embeddings",
    "score",
    "score_grad",
    "score_triples",
    "score_triples_grad",
    "score_tails",
    "score_heads",
    "table_grads",
    "score_tails_grad",
    "score_heads_grad",
    "l2_regulariser",
    "n3_regulariser",
    "margin_ranking_loss",
    "softplus_loss",
    "self_adversarial_loss",
    "bce_1vsall_loss",
    "filtered_ranks",
    "rank_metrics",
    "evaluate",
    "evaluate_model",
]

MODELS = ("transe_l1", "transe_l2", "distmult", "complex", "rotate")
#: Models whose entity rows hold ``2k`` reals (real parts, then imaginary parts).
COMPLEX_MODELS = ("complex", "rotate")
TIES = ("optimistic", "pessimistic", "realistic")
HITS_AT = (1, 3, 10)

# Upper bound on the elements of one broadcast block (queries x entities x width).
_BLOCK_ELEMENTS = 1 << 22


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"model: expected one of {MODELS}, got {model!r}")


def embedding_widths(model: str, rank: int) -> tuple[int, int]:
    """``(d_e, d_r)``: columns of the entity and relation tables for a model of rank ``k``."""
    _check_model(model)
    if model == "complex":
        return 2 * rank, 2 * rank
    if model == "rotate":
        return 2 * rank, rank
    return rank, rank


def random_embeddings(
    model: str, n_entities: int, n_relations: int, rank: int, dtype=np.float64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian tables ``(ent, rel)`` of the right widths; RotatE phases uniform in [-pi, pi)."""
    rng = np.random.default_rng(seed)
    d_e, d_r = embedding_widths(model, rank)
    ent = rng.standard_normal((n_entities, d_e)).astype(dtype)
    if model == "rotate":
        rel = rng.uniform(-np.pi, np.pi, (n_relations, d_r)).astype(dtype)
    else:
        rel = rng.standard_normal((n_relations, d_r)).astype(dtype)
    return ent, rel


def _split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary parts of rows stored ``[re | im]`` along the last axis."""
    k = x.shape[-1] // 2
    return x[..., :k], x[..., k:]


def _rotate_parts(h, theta, t):
    """Real and imaginary parts of ``h o e^{i theta} - t`` (and of ``h o e^{i theta}``)."""
    hr, hi = _split(h)
    tr, ti = _split(t)
    c, s = np.cos(theta), np.sin(theta)
    ar = hr * c - hi * s
    ai = hr * s + hi * c
    return ar - tr, ai - ti, ar, ai


# ---------------------------------------------------------------------- scores of rows
def score(model: str, h: np.ndarray, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Scores of rows ``h, r, t`` (embedding along the last axis; other axes broadcast).

    Parameters
    ----------
    h, t : ndarray of shape (..., d_e)
    r : ndarray of shape (..., d_r)

    Returns
    -------
    ndarray of shape (...)
        The broadcast of the leading axes.
    """
    _check_model(model)
    if model == "transe_l1":
        return -np.sum(np.abs(h + r - t), axis=-1)
    if model == "transe_l2":
        return -np.sqrt(np.sum((h + r - t) ** 2, axis=-1))
    if model == "distmult":
        return np.sum(h * r * t, axis=-1)
    if model == "complex":
        hr, hi = _split(h)
        rr, ri = _split(r)
        tr, ti = _split(t)
        return np.sum(hr * rr * tr + hi * rr * ti + hr * ri * ti - hi * ri * tr, axis=-1)
    er, ei, _, _ = _rotate_parts(h, r, t)
    return -np.sum(np.sqrt(er * er + ei * ei), axis=-1)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den == 0`` (the subgradient at a kink)."""
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den != 0)
    return out


def score_grad(
    model: str, h: np.ndarray, r: np.ndarray, t: np.ndarray, upstream: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of ``sum(upstream * score(model, h, r, t))`` w.r.t. the rows.

    Parameters
    ----------
    h, t : ndarray of shape (n, d_e)
    r : ndarray of shape (n, d_r)
    upstream : ndarray of shape (n,)

    Returns
    -------
    dh, dr, dt : ndarrays shaped like ``h``, ``r``, ``t``
    """
    _check_model(model)
    u = upstream[:, None]
    if model == "transe_l1":
        g = np.sign(h + r - t) * u  # d(-|v|)/dv = -sign(v); dh = dr = -g, dt = +g
        return -g, -g, g
    if model == "transe_l2":
        v = h + r - t
        norm = np.sqrt(np.sum(v * v, axis=-1, keepdims=True))
        g = _safe_divide(v, norm) * u
        return -g, -g, g
    if model == "distmult":
        return u * r * t, u * h * t, u * h * r
    if model == "complex":
        hr, hi = _split(h)
        rr, ri = _split(r)
        tr, ti = _split(t)
        dh = np.concatenate([rr * tr + ri * ti, rr * ti - ri * tr], axis=-1)
        dr = np.concatenate([hr * tr + hi * ti, hr * ti - hi * tr], axis=-1)
        dt = np.concatenate([hr * rr - hi * ri, hi * rr + hr * ri], axis=-1)
        return u * dh, u * dr, u * dt
    # RotatE: s = -sum_j m_j, m_j = |e_j|, e = a - t, a = h o (cos theta + i sin theta).
    er, ei, ar, ai = _rotate_parts(h, r, t)
    m = np.sqrt(er * er + ei * ei)
    gr = -_safe_divide(er, m) * u  # ds/d(re e)
    gi = -_safe_divide(ei, m) * u  # ds/d(im e)
    c, s = np.cos(r), np.sin(r)
    dh = np.concatenate([gr * c + gi * s, -gr * s + gi * c], axis=-1)
    dtheta = -gr * ai + gi * ar  # d(ar)/dtheta = -ai, d(ai)/dtheta = ar
    dt = np.concatenate([-gr, -gi], axis=-1)
    return dh, dtheta, dt


# ---------------------------------------------------------------------- tables and triples
def _gather(ent, rel, triples):
    triples = np.asarray(triples)
    return ent[triples[:, 0]], rel[triples[:, 1]], ent[triples[:, 2]]


def score_triples(model: str, ent: np.ndarray, rel: np.ndarray, triples: np.ndarray) -> np.ndarray:
    """Scores of given triples: shape (n,)."""
    return score(model, *_gather(ent, rel, triples))


def score_triples_grad(model, ent, rel, triples, upstream):
    """Row gradients ``(dh, dr, dt)`` of ``sum(upstream * score_triples(...))``, per triple."""
    return score_grad(model, *_gather(ent, rel, triples), upstream)


def table_grads(
    model: str, ent: np.ndarray, rel: np.ndarray, triples: np.ndarray, upstream: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``sum(upstream * score_triples(...))`` w.r.t. the whole tables.

    Row gradients are scatter-added, so an entity used several times (as head and tail, or in
    several triples) accumulates every contribution.

    Returns
    -------
    d_ent : ndarray of shape (n_entities, d_e)
    d_rel : ndarray of shape (n_relations, d_r)
    """
    triples = np.asarray(triples)
    dh, dr, dt = score_triples_grad(model, ent, rel, triples, upstream)
    d_ent = np.zeros_like(ent)
    d_rel = np.zeros_like(rel)
    np.add.at(d_ent, triples[:, 0], dh)
    np.add.at(d_rel, triples[:, 1], dr)
    np.add.at(d_ent, triples[:, 2], dt)
    return d_ent, d_rel


def _blocks(n_queries: int, n_entities: int, width: int):
    step = max(1, _BLOCK_ELEMENTS // max(1, n_entities * width))
    for lo in range(0, n_queries, step):
        yield slice(lo, min(n_queries, lo + step))


def _bilinear_query(model: str, x: np.ndarray, r: np.ndarray, position: int) -> np.ndarray:
    """Rows ``q`` with ``score = q @ e`` (DistMult, ComplEx), ``e`` the entity at ``position``."""
    if model == "distmult":
        return x * r
    xr, xi = _split(x)
    rr, ri = _split(r)
    if position == 2:  # a = h r; Re(a conj(t)) = a_re t_re + a_im t_im
        return np.concatenate([xr * rr - xi * ri, xr * ri + xi * rr], axis=-1)
    # b = r conj(t); Re(h b) = h_re b_re - h_im b_im
    return np.concatenate([rr * xr + ri * xi, rr * xi - ri * xr], axis=-1)


def _one_vs_all(model, ent, rel, fixed, rels, position: int) -> np.ndarray:
    """Scores of every entity at ``position`` (2: tail, 0: head) with the other entity ``fixed``.

    DistMult and ComplEx as one matrix product ``q @ ent.T`` (:func:`_bilinear_query`); the
    distance models through :func:`score`, broadcast over blocks of queries.
    """
    _check_model(model)
    x, r = ent[np.asarray(fixed)], rel[np.asarray(rels)]
    if model in ("distmult", "complex"):
        return _bilinear_query(model, x, r, position) @ ent.T
    out = np.empty((x.shape[0], ent.shape[0]), dtype=np.result_type(ent, rel))
    every = ent[None, :, :]
    for b in _blocks(x.shape[0], ent.shape[0], ent.shape[1]):
        xb, rb = x[b, None, :], r[b, None, :]
        out[b] = score(model, xb, rb, every) if position == 2 else score(model, every, rb, xb)
    return out


def score_tails(
    model: str, ent: np.ndarray, rel: np.ndarray, heads: np.ndarray, rels: np.ndarray
) -> np.ndarray:
    """1-vs-all tail scores: ``out[i, e] = score(heads[i], rels[i], e)`` for every entity ``e``.

    DistMult and ComplEx as one matrix product ``(h o r) @ ent.T`` (ComplEx: the complex product,
    with ``conj(t)`` folded into the imaginary block); the distance models as a broadcast.

    Returns
    -------
    ndarray of shape (n_queries, n_entities)
    """
    return _one_vs_all(model, ent, rel, heads, rels, position=2)


def score_heads(
    model: str, ent: np.ndarray, rel: np.ndarray, rels: np.ndarray, tails: np.ndarray
) -> np.ndarray:
    """1-vs-all head scores: ``out[i, e] = score(e, rels[i], tails[i])`` for every entity ``e``.

    DistMult and ComplEx as one matrix product ``(r o conj(t)) @ ent.T`` (real part, with the
    sign of the imaginary block flipped); the distance models as a broadcast.

    Returns
    -------
    ndarray of shape (n_queries, n_entities)
    """
    return _one_vs_all(model, ent, rel, tails, rels, position=0)


def _all_pairs(fixed_a, fixed_b, n_entities: int, position: int) -> np.ndarray:
    """Triples ``(n_queries * n_entities, 3)`` with every entity at ``position`` (0 or 2)."""
    n = len(fixed_a)
    e = np.tile(np.arange(n_entities), n)
    a = np.repeat(np.asarray(fixed_a), n_entities)
    b = np.repeat(np.asarray(fixed_b), n_entities)
    cols = (a, b, e) if position == 2 else (e, a, b)
    return np.stack(cols, axis=1)


def score_tails_grad(model, ent, rel, heads, rels, upstream):
    """Table gradients ``(d_ent, d_rel)`` of ``sum(upstream * score_tails(...))``.

    ``upstream`` has shape (n_queries, n_entities); every (query, entity) pair is expanded into
    a triple and the row gradients scatter-added (memory ``n_queries * n_entities * d``).
    """
    triples = _all_pairs(heads, rels, ent.shape[0], position=2)
    return table_grads(model, ent, rel, triples, np.asarray(upstream).reshape(-1))


def score_heads_grad(model, ent, rel, rels, tails, upstream):
    """Table gradients ``(d_ent, d_rel)`` of ``sum(upstream * score_heads(...))``."""
    triples = _all_pairs(rels, tails, ent.shape[0], position=0)
    return table_grads(model, ent, rel, triples, np.asarray(upstream).reshape(-1))


# ---------------------------------------------------------------------- regularisers
def l2_regulariser(x: np.ndarray, weight: float) -> tuple[float, np.ndarray]:
    """``weight * sum(x ** 2)`` and its gradient ``2 * weight * x``."""
    w = x.dtype.type(weight)
    return float(w * np.sum(x * x)), (2 * w) * x


def n3_regulariser(x: np.ndarray, weight: float, complex: bool = False) -> tuple[float, np.ndarray]:
    """Nuclear 3-norm penalty (Lacroix et al. 2018): ``weight * sum(|x_j| ** 3)``.

    With ``complex=True`` the rows are complex in the ``[re | im]`` layout and ``|x_j|`` is the
    modulus of complex component ``j``; otherwise the absolute value of each real entry.

    Returns
    -------
    value : float
    grad : ndarray shaped like ``x``
        ``3 * weight * |x_j| * x`` (component-wise, both parts for complex rows).
    """
    w = x.dtype.type(weight)
    if complex:
        re, im = _split(x)
        m = np.sqrt(re * re + im * im)
        value = w * np.sum(m**3)
        grad = (3 * w) * np.concatenate([m * re, m * im], axis=-1)
        return float(value), grad
    a = np.abs(x)
    return float(w * np.sum(a**3)), (3 * w) * a * x


# ---------------------------------------------------------------------- losses
def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, stable for any ``x`` (``tanh`` form)."""
    return 0.5 * (1 + np.tanh(0.5 * x))


def _softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` without overflow."""
    return np.logaddexp(np.zeros_like(x), x)


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}")


def margin_ranking_loss(pos, neg, margin: float = 1.0, reduction: str = "mean"):
    """Pairwise hinge: terms ``max(0, margin - pos[i] + neg[i, j])`` over all ``(i, j)``.

    ``"mean"`` averages over the ``n * n_neg`` pairs (``torch.nn.MarginRankingLoss`` with
    ``y = 1`` on ``pos`` broadcast to ``neg``'s shape); the kink at 0 has gradient 0.

    Returns
    -------
    loss : float
    dpos : ndarray of shape (n,)
    dneg : ndarray of shape (n, n_neg)
    """
    _check_reduction(reduction)
    terms = pos.dtype.type(margin) - pos[:, None] + neg
    active = (terms > 0).astype(pos.dtype)
    scale = pos.dtype.type(1.0 / terms.size if reduction == "mean" else 1.0)
    loss = np.sum(np.maximum(terms, 0)) * scale
    dneg = active * scale
    return float(loss), -np.sum(dneg, axis=1), dneg


def softplus_loss(pos, neg, reduction: str = "mean"):
    """Logistic loss: ``softplus(-pos[i])`` per positive plus ``softplus(neg[i, j])`` per
    negative; ``"mean"`` averages over all ``n + n * n_neg`` terms (PyKEEN's ``SoftplusLoss``
    in sLCWA training).

    Returns
    -------
    loss : float
    dpos : ndarray of shape (n,)
        ``-sigmoid(-pos) * scale``
    dneg : ndarray of shape (n, n_neg)
        ``sigmoid(neg) * scale``
    """
    _check_reduction(reduction)
    scale = pos.dtype.type(1.0 / (pos.size + neg.size) if reduction == "mean" else 1.0)
    loss = (np.sum(_softplus(-pos)) + np.sum(_softplus(neg))) * scale
    return float(loss), -_sigmoid(-pos) * scale, _sigmoid(neg) * scale


def self_adversarial_loss(pos, neg, gamma: float, temperature: float, reduction: str = "mean"):
    """Self-adversarial negative sampling loss (Sun et al. 2019, RotatE), as in the authors' code.

    With ``w[i, :] = softmax(temperature * neg[i, :])`` (treated as a constant: no gradient
    flows through the weights, as ``.detach()`` in the paper's code)::

        L_i = -log sigmoid(gamma + pos[i]) - sum_j w[i, j] * log sigmoid(-gamma - neg[i, j])

    ``"mean"`` returns ``(mean_i pos-term + mean_i neg-term) / 2`` as the authors' code does;
    ``"sum"`` returns ``sum_i L_i``. ``temperature = 0`` gives uniform weights (plain negative
    sampling loss). The scores are this module's (negative distances, no margin), so
    ``gamma + score`` is the paper's ``gamma - d(h, t)``; pass ``gamma = 0`` for DistMult and
    ComplEx to match the authors' code for those models.

    Returns
    -------
    loss : float
    dpos : ndarray of shape (n,)
    dneg : ndarray of shape (n, n_neg)
    """
    _check_reduction(reduction)
    g = pos.dtype.type(gamma)
    z = pos.dtype.type(temperature) * neg
    z = z - np.max(z, axis=1, keepdims=True)
    w = np.exp(z)
    w = w / np.sum(w, axis=1, keepdims=True)
    pos_terms = _softplus(-(g + pos))  # -log sigmoid(gamma + pos)
    neg_terms = np.sum(w * _softplus(g + neg), axis=1)  # -log sigmoid(-gamma - neg)
    scale = pos.dtype.type(0.5 / pos.size if reduction == "mean" else 1.0)
    loss = (np.sum(pos_terms) + np.sum(neg_terms)) * scale
    dpos = -_sigmoid(-(g + pos)) * scale
    dneg = w * _sigmoid(g + neg) * scale
    return float(loss), dpos, dneg


def bce_1vsall_loss(scores, labels, label_smoothing: float = 0.0, reduction: str = "mean"):
    """Binary cross-entropy of every (query, entity) score against 0/1 labels (1-vs-all / KvsAll
    training as in ConvE), on logits.

    Targets are smoothed as ``(1 - label_smoothing) * labels + label_smoothing / n_entities``
    (note: ConvE's code adds ``1 / n_entities`` instead of ``label_smoothing / n_entities``).
    ``"mean"`` averages over all ``n * n_entities`` entries (``BCEWithLogitsLoss``).

    Returns
    -------
    loss : float
    dscores : ndarray of shape (n, n_entities)
        ``(sigmoid(scores) - targets) * scale``
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing: expected a value in [0, 1), got {label_smoothing}")
    dt = scores.dtype.type
    y = dt(1.0 - label_smoothing) * labels.astype(scores.dtype) + dt(
        label_smoothing / scores.shape[1]
    )
    scale = dt(1.0 / scores.size if reduction == "mean" else 1.0)
    # BCE on logits: softplus(s) - y * s
    loss = np.sum(_softplus(scores) - y * scores) * scale
    return float(loss), (_sigmoid(scores) - y) * scale


# ---------------------------------------------------------------------- filtered evaluation
def _known_sets(known: np.ndarray):
    tails_of: dict[tuple[int, int], set[int]] = defaultdict(set)
    heads_of: dict[tuple[int, int], set[int]] = defaultdict(set)
    for h, r, t in np.asarray(known).tolist():
        tails_of[(h, r)].add(t)
        heads_of[(r, t)].add(h)
    return tails_of, heads_of


def _rank_one(scores: np.ndarray, target: int, filtered: set[int]) -> tuple[int, int]:
    """Optimistic and pessimistic rank of ``target`` among the entities not ``filtered``."""
    keep = np.ones(scores.shape[0], dtype=bool)
    keep[list(filtered - {target})] = False
    keep[target] = False  # the candidates the target competes with
    s = scores[target]
    better = int(np.sum(scores[keep] > s))
    equal = int(np.sum(scores[keep] == s))
    return 1 + better, 1 + better + equal


def filtered_ranks(
    tail_scores: np.ndarray, head_scores: np.ndarray, triples: np.ndarray, known: np.ndarray
) -> dict[str, dict[str, np.ndarray]]:
    """Filtered ranks of each triple in both directions, with all three tie conventions.

    Parameters
    ----------
    tail_scores : ndarray of shape (n, n_entities)
        ``tail_scores[i, e]``: score of ``(h_i, r_i, e)``.
    head_scores : ndarray of shape (n, n_entities)
        ``head_scores[i, e]``: score of ``(e, r_i, t_i)``.
    triples : ndarray of shape (n, 3)
        The evaluated triples.
    known : ndarray of shape (m, 3)
        Every known true triple (train, valid and test): for the tail query of ``(h, r, t)``
        each entity ``e != t`` with ``(h, r, e)`` known is removed from the candidates (and
        likewise for heads). The target itself always stays.

    Returns
    -------
    dict
        ``ranks[direction][ties]`` with direction ``"tail"`` / ``"head"`` and ties
        ``"optimistic"`` (1 + #strictly better), ``"pessimistic"`` (1 + #better or equal) and
        ``"realistic"`` (their mean); int64 arrays of shape (n,), realistic float64.
    """
    triples = np.asarray(triples)
    for name, s in (("tail_scores", tail_scores), ("head_scores", head_scores)):
        if s.shape[0] != triples.shape[0]:
            raise ValueError(f"{name}: expected {triples.shape[0]} rows, got shape {s.shape}")
        if np.isnan(s).any():
            raise ValueError(f"{name}: contains NaN")
    tails_of, heads_of = _known_sets(known)
    n = triples.shape[0]
    out: dict[str, dict[str, np.ndarray]] = {}
    for direction in ("tail", "head"):
        opt = np.empty(n, dtype=np.int64)
        pess = np.empty(n, dtype=np.int64)
        for i, (h, r, t) in enumerate(triples.tolist()):
            if direction == "tail":
                opt[i], pess[i] = _rank_one(tail_scores[i], t, tails_of[(h, r)])
            else:
                opt[i], pess[i] = _rank_one(head_scores[i], h, heads_of[(r, t)])
        out[direction] = {
            "optimistic": opt,
            "pessimistic": pess,
            "realistic": (opt + pess) / 2.0,
        }
    return out


def rank_metrics(ranks: np.ndarray) -> dict[str, float]:
    """MR, MRR (mean of ``1 / rank``) and Hits@1/3/10 (fraction of ``rank <= k``) of ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ValueError("ranks: no ranks to summarise")
    out = {"count": int(ranks.size), "mr": float(np.mean(ranks)), "mrr": float(np.mean(1 / ranks))}
    for k in HITS_AT:
        out[f"hits@{k}"] = float(np.mean(ranks <= k))
    return out


def evaluate(
    tail_scores: np.ndarray,
    head_scores: np.ndarray,
    triples: np.ndarray,
    known: np.ndarray,
    ties: str = "realistic",
) -> dict:
    """Filtered link-prediction metrics, overall, per direction and per relation.

    Returns
    -------
    dict
        ``{"both": m, "tail": m, "head": m, "per_relation": {r: {"both": m, "tail": m,
        "head": m}}}`` where each ``m`` is a :func:`rank_metrics` dict (``count``, ``mr``,
        ``mrr``, ``hits@1``, ``hits@3``, ``hits@10``); ``"both"`` pools head and tail ranks.
    """
    if ties not in TIES:
        raise ValueError(f"ties: expected one of {TIES}, got {ties!r}")
    triples = np.asarray(triples)
    ranks = filtered_ranks(tail_scores, head_scores, triples, known)
    tail, head = ranks["tail"][ties], ranks["head"][ties]

    def summary(mask: np.ndarray) -> dict:
        return {
            "both": rank_metrics(np.concatenate([tail[mask], head[mask]])),
            "tail": rank_metrics(tail[mask]),
            "head": rank_metrics(head[mask]),
        }

    result = summary(np.ones(triples.shape[0], dtype=bool))
    result["per_relation"] = {int(r): summary(triples[:, 1] == r) for r in np.unique(triples[:, 1])}
    return result


def evaluate_model(
    model: str,
    ent: np.ndarray,
    rel: np.ndarray,
    triples: np.ndarray,
    known: np.ndarray,
    ties: str = "realistic",
) -> dict:
    """:func:`evaluate` with the 1-vs-all scores of an embedding model (:func:`score_tails` and
    :func:`score_heads`)."""
    triples = np.asarray(triples)
    tails = score_tails(model, ent, rel, triples[:, 0], triples[:, 1])
    heads = score_heads(model, ent, rel, triples[:, 1], triples[:, 2])
    return evaluate(tails, heads, triples, known, ties=ties)
