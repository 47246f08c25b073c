"""Filtered link-prediction evaluation: ranks of test triples against every entity in both
directions, filtering every other known true triple, with MR, MRR and Hits@k overall, per
direction and per relation.

The kernel (``rust/core/src/kge/rank.rs``) scores queries in blocks and counts in one pass, so
memory stays ``O(block x n_entities)`` whatever the number of test triples.

Ties (several entities with exactly the target's score) are counted as in PyKEEN:
``"optimistic"`` (rank ``1 + #better``), ``"pessimistic"`` (``1 + #better or equal``) and
``"realistic"`` (their mean, the default).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nesy import _core
from nesy._checks import check_bool
from nesy.kge.scoring import check_model, check_tables, check_triples

TIES = ("realistic", "optimistic", "pessimistic")
HITS_AT = (1, 3, 10)


def filtered_ranks(model: str, ent: Any, rel: Any, triples: Any, known: Any
                   ) -> dict[str, dict[str, np.ndarray]]:
    """Filtered ranks of ``triples (n, 3)``.

    Parameters
    ----------
    model : str
    ent, rel : ndarray
        The embedding tables (see :mod:`nesy.kge.scoring`).
    triples : ndarray of int, shape (n, 3)
    known : ndarray of int, shape (m, 3)
        Every known true triple (train, valid and test): for the tail query of ``(h, r, t)``
        every entity ``e != t`` with ``(h, r, e)`` known is removed from the candidates, and
        likewise for heads.

    Returns
    -------
    dict
        ``ranks[direction][ties]``, direction ``"head"`` / ``"tail"``, ties ``"optimistic"``,
        ``"pessimistic"`` (int64, shape (n,)) and ``"realistic"`` (float64).
    """
    ent, rel = check_tables(ent, rel)
    t = check_triples(triples)
    k = check_triples(known, "known")
    opt, pess = _core.kge_ranks(check_model(model), ent, rel, t, k)
    out = {}
    for col, direction in enumerate(("head", "tail")):
        o, p = opt[:, col].copy(), pess[:, col].copy()
        out[direction] = {"optimistic": o, "pessimistic": p, "realistic": (o + p) / 2.0}
    return out


def ranks_of_scores(scores: Any, triples: Any, known: Any, side: str
                    ) -> dict[str, np.ndarray]:
    """Filtered ranks from given scores, with the filter and tie counting of
    :func:`filtered_ranks` (for predictors other than an embedding table: rules, hybrids).

    Parameters
    ----------
    scores : ndarray of float, shape (n, n_entities)
        Row ``i`` scores every entity as the answer of the ``side`` query of ``triples[i]``
        (``"tail"``: ``(h, r, ?)``, ``"head"``: ``(?, r, t)``); higher is better.
    triples, known : ndarray of int, shape (n, 3) and (m, 3)
    side : {"head", "tail"}
        Which entity of each triple is ranked: ``"tail"`` ranks ``t`` among the answers of
        ``(h, r, ?)``, filtering every ``(h, r, e)`` in ``known``; ``"head"`` ranks ``h`` among
        those of ``(?, r, t)``.

    Returns
    -------
    dict
        ``"optimistic"``, ``"pessimistic"`` (int64, shape (n,)) and ``"realistic"``.
    """
    if side not in ("head", "tail"):
        raise ValueError(f"side: expected 'head' or 'tail', got {side!r}")
    s = np.asarray(scores)
    if s.dtype not in (np.float32, np.float64):
        s = s.astype(np.float64)
    o, p = _core.kge_ranks_of_scores(np.ascontiguousarray(s), check_triples(triples),
                                     check_triples(known, "known"), side)
    return {"optimistic": o, "pessimistic": p, "realistic": (o + p) / 2.0}


def rank_metrics(ranks: Any) -> dict[str, float]:
    """``count``, MR, MRR (mean of ``1 / rank``) and Hits@1/3/10 of a set of ranks: a 1-D
    sequence of finite numbers ``>= 1`` (TypeError naming ``ranks`` for values that are not
    numbers, ValueError otherwise)."""
    r = np.asarray(ranks)
    if r.dtype.kind not in "iuf":  # text, None: "could not convert string to float" named nothing
        raise TypeError(f"ranks: expected numbers, got dtype {r.dtype}")
    if r.ndim != 1:  # a 2-D array was flattened silently
        raise ValueError(f"ranks: expected a 1-D sequence of ranks, got shape {r.shape}")
    r = r.astype(np.float64)
    if r.size == 0:
        raise ValueError("ranks: no ranks to summarise")
    bad = np.flatnonzero(~(r >= 1) | ~np.isfinite(r))  # NaN fails both
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"ranks: expected finite ranks >= 1, got {float(r.flat[i])} at position "
                         f"{i}")
    out = {"count": int(r.size), "mr": float(np.mean(r)), "mrr": float(np.mean(1.0 / r))}
    for k in HITS_AT:
        out[f"hits@{k}"] = float(np.mean(r <= k))
    return out


def evaluate(model: str, ent: Any, rel: Any, triples: Any, known: Any,
             ties: str = "realistic", per_relation: bool = True) -> dict[str, Any]:
    """Filtered link-prediction metrics.

    Returns
    -------
    dict
        ``{"both": m, "head": m, "tail": m, "per_relation": {r: {"both": m, "head": m,
        "tail": m}}}``, each ``m`` a :func:`rank_metrics` dict; ``"both"`` pools the head and
        tail ranks (the usual headline figure).
    """
    if ties not in TIES:
        raise ValueError(f"ties: expected one of {TIES}, got {ties!r}")
    per_relation = check_bool("per_relation", per_relation)
    t = check_triples(triples)
    if t.shape[0] == 0:
        raise ValueError("triples: nothing to evaluate (0 triples)")
    ranks = filtered_ranks(model, ent, rel, t, known)
    return summarise_ranks(t, ranks["head"][ties], ranks["tail"][ties], per_relation)


def summarise_ranks(triples: np.ndarray, head: np.ndarray, tail: np.ndarray,
                    per_relation: bool = True) -> dict[str, Any]:
    """The result of :func:`evaluate` from the head- and tail-query ranks of ``triples``
    (shared with every other predictor ranked by the same filter, e.g. rules).
    """
    per_relation = check_bool("per_relation", per_relation)

    def summary(mask: np.ndarray) -> dict[str, Any]:
        return {"both": rank_metrics(np.concatenate([head[mask], tail[mask]])),
                "head": rank_metrics(head[mask]), "tail": rank_metrics(tail[mask])}

    result = summary(np.ones(triples.shape[0], dtype=bool))
    if per_relation:
        result["per_relation"] = {int(r): summary(triples[:, 1] == r)
                                  for r in np.unique(triples[:, 1])}
    return result
