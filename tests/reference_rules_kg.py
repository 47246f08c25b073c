"""Plain NumPy brute-force references for Horn rules over knowledge graphs (issue 9): exact AMIE
metrics of rule rows, an exact miner that enumerates every possible rule, rule application
(link prediction) and filtered ranks. The Rust kernels of ``rust/core/src/rules`` are tested
against them; they are checked themselves in ``tests/test_reference_rules_kg.py`` (hand-worked
graphs and an independent enumeration of every variable binding).

Everything follows the contract of ``rust/core/src/rules/rule.rs`` and :mod:`nesy.rules.kg` (rule
rows, metrics, application) word for word, and is meant to be
obviously right, not fast: one dense boolean adjacency matrix per relation, boolean matrix
products for body paths, Python loops over rules and queries.

Conventions
===========

Triples are int arrays ``(n, 3)`` of ``(head, relation, tail)``; duplicates count once. An atom
``(rel, inverse)`` read from ``A`` to ``B`` is ``rel(A, B)`` if ``inverse == 0`` else
``rel(B, A)``; its matrix is ``adj[rel]`` or ``adj[rel].T``, and a body path is the boolean
product of its atoms' matrices (intermediate entities unconstrained).

A rule row has 11 int64 columns ``(kind, head, head_inverse, constant, end, r1, i1, r2, i2, r3,
i3)``:

* ``kind 0`` closed path ``head(X, Y) <- body(X, Y)``, body length 1..3, ``head_inverse = 0``,
  ``constant = end = -1``;
* ``kind 1`` (AC1) ``q(X, c) <- body(X, d)``, ``c = constant``, ``d = end``, body length 1..2;
* ``kind 2`` (AC2) ``q(X, c) <- body(X, A)`` (dangling end), ``end = -1``, body length 1..2;

where the oriented head ``q(x, y)`` is ``head(x, y)`` if ``head_inverse == 0`` else
``head(y, x)``. Unused atoms are ``r_k = -1, i_k = 0`` and come last.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

__all__ = [
    "METRIC_KEYS",
    "COUNT_KEYS",
    "RATIO_KEYS",
    "AGGREGATIONS",
    "adjacency",
    "atom_matrix",
    "body_matrix",
    "body_of",
    "is_trivial",
    "sort_rows",
    "hits_and_mrr",
    "check_rows",
    "rule_metrics",
    "enumerate_rows",
    "mine_brute_force",
    "apply_brute_force",
    "noisy_or",
    "aggregate_order",
    "filtered_ranks_brute_force",
]

COUNT_KEYS = ("support", "body_pairs", "pca_body_pairs", "head_facts")
RATIO_KEYS = ("head_coverage", "std_confidence", "pca_confidence")
METRIC_KEYS = COUNT_KEYS + RATIO_KEYS
AGGREGATIONS = ("maxplus", "max_noisy_or", "noisy_or")
#: Maximum body length per kind.
MAX_BODY = {0: 3, 1: 2, 2: 2}


# --------------------------------------------------------------------------- graph and rows
def adjacency(triples: Any, n_ent: int, n_rel: int) -> np.ndarray:
    """Boolean ``adj[r, h, t] = (h, r, t) in triples``, shape ``(n_rel, n_ent, n_ent)``."""
    t = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
    adj = np.zeros((n_rel, n_ent, n_ent), dtype=bool)
    adj[t[:, 1], t[:, 0], t[:, 2]] = True
    return adj


def atom_matrix(adj: np.ndarray, rel: int, inverse: int) -> np.ndarray:
    """``M[a, b]`` = the atom ``(rel, inverse)`` holds read from ``a`` to ``b``."""
    return adj[rel].T if inverse else adj[rel]


def body_matrix(adj: np.ndarray, body: tuple[tuple[int, int], ...]) -> np.ndarray:
    """``B[x, y]`` = some path from ``x`` to ``y`` along ``body`` (a tuple of atoms)."""
    n = adj.shape[1]
    out = np.eye(n, dtype=bool)
    for rel, inverse in body:
        m = atom_matrix(adj, rel, inverse)
        out = (out.astype(np.int64) @ m.astype(np.int64)) > 0
    return out


def body_of(row: Any) -> tuple[tuple[int, int], ...]:
    """The atoms ``((r1, i1), ...)`` of a row (its used ``r_k >= 0`` entries)."""
    return tuple((int(row[5 + 2 * k]), int(row[6 + 2 * k])) for k in range(3)
                 if row[5 + 2 * k] >= 0)


def check_rows(rows: Any, n_ent: int, n_rel: int) -> np.ndarray:
    """Validate rule rows against the contract; returns them as int64 ``(m, 11)``."""
    r = np.asarray(rows, dtype=np.int64)
    if r.size == 0:
        return np.zeros((0, 11), dtype=np.int64)
    if r.ndim != 2 or r.shape[1] != 11:
        raise ValueError(f"rows: expected shape (m, 11), got {r.shape}")
    for k, row in enumerate(r):
        kind, head, hi, c, d = (int(v) for v in row[:5])
        used = [row[5 + 2 * j] >= 0 for j in range(3)]
        length = sum(used)
        if kind not in MAX_BODY:
            raise ValueError(f"rows[{k}]: kind {kind} is not 0, 1 or 2")
        if used != [True] * length + [False] * (3 - length) or not 1 <= length <= MAX_BODY[kind]:
            raise ValueError(f"rows[{k}]: bad body {row[5:].tolist()} for kind {kind}")
        for j in range(3):
            rel, inv = int(row[5 + 2 * j]), int(row[6 + 2 * j])
            if (rel < 0 and (rel != -1 or inv != 0)) or rel >= n_rel or inv not in (0, 1):
                raise ValueError(f"rows[{k}]: bad atom {j + 1} ({rel}, {inv})")
        if not 0 <= head < n_rel or hi not in (0, 1):
            raise ValueError(f"rows[{k}]: bad head ({head}, {hi})")
        if kind == 0 and (hi != 0 or c != -1 or d != -1):
            raise ValueError(f"rows[{k}]: closed rules have head_inverse 0, constant = end = -1")
        if kind > 0 and not 0 <= c < n_ent:
            raise ValueError(f"rows[{k}]: constant {c} out of range [0, {n_ent})")
        if kind == 1 and not 0 <= d < n_ent:
            raise ValueError(f"rows[{k}]: end {d} out of range [0, {n_ent})")
        if kind == 2 and d != -1:
            raise ValueError(f"rows[{k}]: kind 2 rules have end = -1")
    return r


def is_trivial(row: Any) -> bool:
    """The rules the miner must leave out: ``h(X,Y) <- h(X,Y)`` and ``q(X,c) <- q(X,c)``."""
    kind, head, hi, c, d = (int(v) for v in row[:5])
    body = body_of(row)
    if kind == 0:
        return body == ((head, 0),)
    if kind == 1:
        return body == ((head, hi),) and d == c
    return False


class _Graph:
    """Adjacency plus a cache of body matrices (the same body is shared by many rows)."""

    def __init__(self, triples: Any, n_ent: int, n_rel: int) -> None:
        self.n_ent, self.n_rel = n_ent, n_rel
        self.adj = adjacency(triples, n_ent, n_rel)
        self._bodies: dict[tuple[tuple[int, int], ...], np.ndarray] = {}

    def body(self, body: tuple[tuple[int, int], ...]) -> np.ndarray:
        if body not in self._bodies:
            self._bodies[body] = body_matrix(self.adj, body)
        return self._bodies[body]

    def oriented(self, head: int, hi: int) -> np.ndarray:
        """``Q[x, y] = q(x, y)`` for the oriented head ``(head, hi)``."""
        return atom_matrix(self.adj, head, hi)

    def body_vector(self, row: Any) -> np.ndarray:
        """Acyclic rows: ``b[x] = body(x)`` (path from ``x`` ending at ``d``, or anywhere)."""
        b = self.body(body_of(row))
        return b[:, int(row[4])] if int(row[0]) == 1 else b.any(axis=1)


# --------------------------------------------------------------------------- metrics
def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def _row_counts(g: _Graph, row: Any) -> tuple[int, int, int, int]:
    kind, head, hi, c = (int(v) for v in row[:4])
    if kind == 0:
        b = g.body(body_of(row))  # pairs (x, y)
        h = g.adj[head]
        has_head = h.any(axis=1)[:, None]  # exists y' head(x, y')
        return (int((b & h).sum()), int(b.sum()), int((b & has_head).sum()), int(h.sum()))
    b = g.body_vector(row)  # single variable x
    q = g.oriented(head, hi)
    qc = q[:, c]  # q(x, c)
    has_q = q.any(axis=1)  # exists y q(x, y)
    return (int((b & qc).sum()), int(b.sum()), int((b & has_q).sum()), int(qc.sum()))


def rule_metrics(triples: Any, n_ent: int, n_rel: int, rows: Any) -> dict[str, np.ndarray]:
    """Exact AMIE metrics of every rule row.

    Parameters
    ----------
    triples : ndarray of int, shape (n, 3)
    n_ent, n_rel : int
    rows : ndarray of int, shape (m, 11)

    Returns
    -------
    dict
        ``support``, ``body_pairs``, ``pca_body_pairs``, ``head_facts`` (int64, shape (m,)) and
        ``head_coverage = support / head_facts``, ``std_confidence = support / body_pairs``,
        ``pca_confidence = support / pca_body_pairs`` (float64, 0 where the denominator is 0).
    """
    r = check_rows(rows, n_ent, n_rel)
    g = _Graph(triples, n_ent, n_rel)
    counts = np.array([_row_counts(g, row) for row in r], dtype=np.int64).reshape(-1, 4)
    out = {k: counts[:, j].copy() for j, k in enumerate(COUNT_KEYS)}
    s = out["support"]
    for key, den in (("head_coverage", "head_facts"), ("std_confidence", "body_pairs"),
                     ("pca_confidence", "pca_body_pairs")):
        out[key] = np.array([_ratio(int(a), int(b)) for a, b in zip(s, out[den])],
                            dtype=np.float64)
    return out


# --------------------------------------------------------------------------- mining
def _atoms(n_rel: int) -> list[tuple[int, int]]:
    return [(rel, inv) for rel in range(n_rel) for inv in (0, 1)]


def _row(kind: int, head: int, hi: int, c: int, d: int,
         body: tuple[tuple[int, int], ...]) -> list[int]:
    tail: list[int] = []
    for rel, inv in body:
        tail += [rel, inv]
    tail += [-1, 0] * (3 - len(body))
    return [kind, head, hi, c, d] + tail


def enumerate_rows(n_ent: int, n_rel: int, max_length: int = 3,
                   max_length_acyclic: int = 2) -> np.ndarray:
    """Every possible non-trivial row: closed rules of body length ``1..max_length`` and acyclic
    rules (kinds 1 and 2) of body length ``1..max_length_acyclic``, over all relations,
    directions, constants ``c`` and ends ``d``; int64 ``(m, 11)``, sorted lexicographically."""
    if not 0 <= max_length <= 3 or not 0 <= max_length_acyclic <= 2:
        raise ValueError("max_length must be in 0..3 and max_length_acyclic in 0..2")
    atoms = _atoms(n_rel)
    rows = []
    for length in range(1, max_length + 1):
        for body in itertools.product(atoms, repeat=length):
            rows += [_row(0, h, 0, -1, -1, body) for h in range(n_rel)]
    for length in range(1, max_length_acyclic + 1):
        for body in itertools.product(atoms, repeat=length):
            for h, hi, c in itertools.product(range(n_rel), (0, 1), range(n_ent)):
                rows += [_row(1, h, hi, c, d, body) for d in range(n_ent)]
                rows.append(_row(2, h, hi, c, -1, body))
    out = np.array([r for r in rows if not is_trivial(r)], dtype=np.int64).reshape(-1, 11)
    return sort_rows(out)


def sort_rows(rows: np.ndarray) -> np.ndarray:
    """Rows sorted lexicographically (column 0 first)."""
    if rows.shape[0] == 0:
        return rows
    return rows[np.lexsort(rows.T[::-1])]


def mine_brute_force(triples: Any, n_ent: int, n_rel: int, max_length: int = 3,
                     max_length_acyclic: int = 2, min_support: int = 2,
                     min_head_coverage: float = 0.01, min_confidence: float = 0.1,
                     confidence: str = "std") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every non-trivial rule with ``support >= min_support``, ``head_coverage >=
    min_head_coverage`` and ``confidence >= min_confidence`` (``confidence`` = ``"std"`` or
    ``"pca"``).

    Returns
    -------
    rows : ndarray of int64, shape (m, 11)
        Sorted lexicographically.
    metrics : dict
        :func:`rule_metrics` of ``rows``.
    """
    if confidence not in ("std", "pca"):
        raise ValueError(f"confidence: expected 'std' or 'pca', got {confidence!r}")
    rows = enumerate_rows(n_ent, n_rel, max_length, max_length_acyclic)
    m = rule_metrics(triples, n_ent, n_rel, rows)
    conf = m["std_confidence"] if confidence == "std" else m["pca_confidence"]
    keep = ((m["support"] >= min_support) & (m["head_coverage"] >= min_head_coverage)
            & (conf >= min_confidence))
    return rows[keep], {k: v[keep] for k, v in m.items()}


# --------------------------------------------------------------------------- application
def apply_brute_force(triples: Any, n_ent: int, rows: Any, metrics: dict[str, Any],
                      queries: Any, direction: str, pc: float = 5.0,
                      exclude_query: bool = True) -> list[dict[int, list[float]]]:
    """Candidates of each query and the confidences of the rules firing for them.

    Parameters
    ----------
    triples : ndarray of int, shape (n, 3)
        The graph the rule bodies are evaluated on.
    n_ent : int
    rows : ndarray of int, shape (m, 11)
    metrics : dict
        At least ``support`` and ``body_pairs``, shape (m,); rule ``k`` has confidence
        ``support[k] / (body_pairs[k] + pc)``.
    queries : ndarray of int, shape (n_queries, 2)
        ``(entity, relation)``: the tail query ``(e, r, ?)`` if ``direction == "tail"``, the
        head query ``(?, r, e)`` if ``direction == "head"``.
    direction : {"tail", "head"}
    pc : float
        Pseudo-count of unseen negative examples (``pc >= 0``).
    exclude_query : bool
        The query entity itself is never a candidate.

    Returns
    -------
    list of dict
        One dict per query: candidate entity -> the confidences of the rules firing for it (one
        entry per rule, sorted descending).
    """
    if direction not in ("tail", "head"):
        raise ValueError(f"direction: expected 'tail' or 'head', got {direction!r}")
    if not pc >= 0:
        raise ValueError(f"pc: expected >= 0, got {pc}")
    t = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
    r = np.asarray(rows, dtype=np.int64).reshape(-1, 11)
    q = np.asarray(queries, dtype=np.int64).reshape(-1, 2)
    n_rel = 1 + max([-1] + t[:, 1].tolist() + r[:, 1].tolist() + r[:, 5::2].ravel().tolist()
                    + q[:, 1].tolist())
    r = check_rows(r, n_ent, n_rel)
    g = _Graph(t, n_ent, n_rel)
    conf = [float(s) / (float(b) + pc) if float(b) + pc > 0 else 0.0
            for s, b in zip(metrics["support"], metrics["body_pairs"])]
    q_inv = 0 if direction == "tail" else 1
    out = []
    for e, rel in q:
        cands: dict[int, list[float]] = {}
        for k, row in enumerate(r):
            if int(row[1]) != rel:
                continue
            for y in _fired(g, row, int(e), q_inv):
                if not (exclude_query and y == e):
                    cands.setdefault(y, []).append(conf[k])
        out.append({y: sorted(c, reverse=True) for y, c in sorted(cands.items())})
    return out


def _fired(g: _Graph, row: Any, e: int, q_inv: int) -> list[int]:
    """The candidates ``y`` a rule (whose head relation is the query's) proposes for query entity
    ``e`` and query orientation ``q_inv`` (0: tail query, 1: head query)."""
    kind, _, hi, c = (int(v) for v in row[:4])
    if kind == 0:
        b = g.body(body_of(row))
        hits = b[e, :] if q_inv == 0 else b[:, e]  # body(e, y) / body(y, e)
        return np.flatnonzero(hits).tolist()
    b = g.body_vector(row)
    if hi == q_inv:
        return [c] if b[e] else []
    if c == e:  # hi == 1 - q_inv
        return np.flatnonzero(b).tolist()
    return []


# --------------------------------------------------------------------------- aggregation, ranks
def noisy_or(confs: list[float]) -> float:
    """``1 - prod(1 - conf)``, the product taken over the confidences sorted descending (so equal
    multisets give bit-identical values)."""
    p = 1.0
    for c in sorted(confs, reverse=True):
        p *= 1.0 - c
    return 1.0 - p


def _key(confs: list[float], aggregation: str) -> tuple[float, ...]:
    if not confs:
        raise ValueError("a candidate needs at least one confidence")
    if aggregation == "maxplus":
        # Python compares tuples lexicographically, and a longer tuple beats its prefix.
        return tuple(sorted(confs, reverse=True))
    if aggregation == "max_noisy_or":
        return (max(confs), noisy_or(confs))
    if aggregation == "noisy_or":
        return (noisy_or(confs),)
    raise ValueError(f"aggregation: expected one of {AGGREGATIONS}, got {aggregation!r}")


def aggregate_order(cands: dict[int, list[float]], aggregation: str) -> dict[int, int]:
    """Dense level of each candidate: 0 for the best key, equal keys share a level, the next
    smaller key gets the next level."""
    keys = {y: _key(c, aggregation) for y, c in cands.items()}
    distinct = sorted(set(keys.values()), reverse=True)
    level = {k: i for i, k in enumerate(distinct)}
    return {y: level[k] for y, k in keys.items()}


def filtered_ranks_brute_force(triples_train: Any, n_ent: int, rows: Any,
                               metrics: dict[str, Any], test: Any, known: Any,
                               aggregation: str = "max_noisy_or", pc: float = 5.0,
                               exclude_query: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Filtered ranks of ``test (n, 3)`` under the rules, as ``nesy.kge.evaluate.filtered_ranks``.

    For ``(h, r, t)``, the head query ``(?, r, t)`` ranks ``h`` and the tail query ``(h, r, ?)``
    ranks ``t`` among all entities, by the aggregated confidences of the rules firing on
    ``triples_train``; every other entity ``e`` with ``(e, r, t)`` (resp. ``(h, r, e)``) in
    ``known`` is removed; entities no rule reaches tie with each other below every candidate.

    Returns
    -------
    optimistic, pessimistic : ndarray of int64, shape (n, 2)
        ``1 + #better`` and ``1 + #better or equal``; column 0 the head query, 1 the tail query.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation: expected one of {AGGREGATIONS}, got {aggregation!r}")
    test = np.asarray(test, dtype=np.int64).reshape(-1, 3)
    known_set = {tuple(int(v) for v in k) for k in np.asarray(known, dtype=np.int64).reshape(-1, 3)}
    n = test.shape[0]
    opt = np.zeros((n, 2), dtype=np.int64)
    pess = np.zeros((n, 2), dtype=np.int64)
    for col, direction in enumerate(("head", "tail")):
        fixed = test[:, 2] if direction == "head" else test[:, 0]
        target = test[:, 0] if direction == "head" else test[:, 2]
        cands = apply_brute_force(triples_train, n_ent, rows, metrics,
                                  np.stack([fixed, test[:, 1]], axis=1), direction, pc,
                                  exclude_query)
        for i in range(n):
            level = aggregate_order(cands[i], aggregation)
            bottom = len(set(level.values()))  # below every candidate
            tgt = int(target[i])
            s = level.get(tgt, bottom)
            better = equal = 0
            for e in range(n_ent):
                if e == tgt:
                    continue
                triple = ((e, int(test[i, 1]), int(fixed[i])) if direction == "head"
                          else (int(fixed[i]), int(test[i, 1]), e))
                if triple in known_set:
                    continue
                le = level.get(e, bottom)
                better += le < s
                equal += le == s
            opt[i, col] = 1 + better
            pess[i, col] = 1 + better + equal
    return opt, pess


def hits_and_mrr(opt: np.ndarray, pess: np.ndarray) -> dict[str, float]:
    """MRR and Hits@1/10 of realistic ranks (mean of optimistic and pessimistic), both columns."""
    ranks = (np.asarray(opt, dtype=np.float64) + pess) / 2.0
    r = ranks.ravel()
    return {"mrr": float(np.mean(1.0 / r)), "hits@1": float(np.mean(r <= 1)),
            "hits@10": float(np.mean(r <= 10)), "count": float(r.size)}

