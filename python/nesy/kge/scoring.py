"""Scores of knowledge-graph embedding models: of given triples, their row gradients, and 1-vs-all
scores of ``(h, r, ?)`` / ``(?, r, t)`` against every entity. Kernels: ``rust/core/src/kge``.

Tables: ``ent`` of shape ``(n_entities, d_e)`` and ``rel`` of shape ``(n_relations, d_r)``, both
float32 or float64 (the same dtype). Triples: int arrays ``(n, 3)`` in ``(head, relation, tail)``
order. A higher score is a more plausible triple; the distance models return the negative
distance. Layouts (``k`` = rank):

==========  ================================  ================  ===============================
model       entity row                        relation row      score
==========  ================================  ================  ===============================
transe_l1   k reals                           k reals           -sum_j |h_j + r_j - t_j|
transe_l2   k reals                           k reals           -||h + r - t||_2
distmult    k reals                           k reals           sum_j h_j r_j t_j
complex     2k: real parts, then imaginary    2k (same)         Re(sum_j h_j r_j conj(t_j))
rotate      2k: real parts, then imaginary    k phases          -sum_j |h_j e^{i r_j} - t_j|
==========  ================================  ================  ===============================
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from nesy import _core
from nesy._checks import check_bool, check_int

MODELS = ("transe_l1", "transe_l2", "distmult", "complex", "rotate")
#: Models whose entity rows are ``2k`` reals (``[re | im]``).
COMPLEX_MODELS = ("complex", "rotate")


def check_model(model: str) -> str:
    if model not in MODELS:
        raise ValueError(f"model: expected one of {MODELS}, got {model!r}")
    return model


def widths(model: str, rank: int) -> tuple[int, int]:
    """``(d_e, d_r)``: the entity and relation table widths of a model of rank ``k``."""
    check_model(model)
    k = check_int("dim", rank, 1)  # a float dim (4.0, 2.5) is refused, not truncated
    return {"complex": (2 * k, 2 * k), "rotate": (2 * k, k)}.get(model, (k, k))


def check_tables(ent: Any, rel: Any) -> tuple[np.ndarray, np.ndarray]:
    """C-contiguous float tables of one dtype, finite."""
    ent = np.asarray(ent)
    rel = np.asarray(rel)
    if ent.dtype not in (np.float32, np.float64):
        raise TypeError(f"ent: expected float32 or float64, got dtype {ent.dtype}")
    if rel.dtype != ent.dtype:
        raise TypeError(f"rel: expected dtype {ent.dtype} (that of ent), got {rel.dtype}")
    for name, a in (("ent", ent), ("rel", rel)):
        if a.ndim != 2 or a.shape[0] == 0:
            raise ValueError(f"{name}: expected a non-empty 2-D table, got shape {a.shape}")
    ent, rel = np.ascontiguousarray(ent), np.ascontiguousarray(rel)
    for name, a in (("ent", ent), ("rel", rel)):
        if not _core.all_finite([a]):
            raise ValueError(f"{name}: contains NaN or infinity")
    return ent, rel


def check_triples(triples: Any, name: str = "triples") -> np.ndarray:
    """An int64 ``(n, 3)`` array (ranges are checked by the kernels)."""
    t = np.asarray(triples)
    if t.size == 0:
        t = t.reshape(0, 3).astype(np.int64)
    if t.dtype == bool or not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"{name}: expected integer ids, got dtype {t.dtype}")
    if t.ndim != 2 or t.shape[1] != 3:
        raise ValueError(f"{name}: expected shape (n, 3) (head, relation, tail), got {t.shape}")
    return _int64(t, name)


def check_ids(triples: np.ndarray, n_ent: int, n_rel: int, name: str) -> None:
    """IndexError naming ``name``, the first triple (``name[k]``) and its column when an id of
    the int array ``triples (n, 3)`` is outside ``[0, n_ent)`` (heads and tails) or
    ``[0, n_rel)`` (relations)."""
    for col, size, what in ((0, n_ent, "head"), (1, n_rel, "relation"), (2, n_ent, "tail")):
        bad = np.flatnonzero((triples[:, col] < 0) | (triples[:, col] >= size))
        if bad.size:
            k = int(bad[0])
            raise IndexError(f"{name}[{k}] ({what}): index {int(triples[k, col])} is out of "
                             f"range for size {size}")


def _int64(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` (integer) as C-contiguous int64; IndexError naming the first id int64 cannot hold
    (a uint64 id >= 2**63, which the cast would wrap to a negative one)."""
    if a.dtype.kind == "u" and a.dtype.itemsize >= 8 and a.size:
        big = np.argwhere(a > np.iinfo(np.int64).max)
        if big.size:
            where = ", ".join(map(str, big[0]))
            raise IndexError(f"{name}[{where}]: index {int(a[tuple(big[0])])} is out of range "
                             f"(above the int64 maximum)")
    return np.ascontiguousarray(a, dtype=np.int64)


def check_seed(seed: Any, name: str = "seed") -> int:
    """A random seed: an integer in ``[0, 2**64)``, else TypeError/ValueError naming ``name``."""
    return check_int(name, seed, 0, 2**64 - 1)


def _ids(x: Any, name: str, n: int, size: int) -> np.ndarray:
    """Ids ``x`` as a C-contiguous int64 vector of ``n`` (one id is repeated); IndexError naming
    ``name`` and the position of the first id outside ``[0, size)``."""
    a = np.atleast_1d(np.asarray(x))
    if a.size == 0 and not isinstance(x, np.ndarray):  # [] is float64 to NumPy: no ids
        a = a.astype(np.int64)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name}: expected integer ids, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of ids, got shape {a.shape}")
    a = _int64(a, name)
    bad = np.flatnonzero((a < 0) | (a >= size))
    if bad.size:
        k = int(bad[0])
        raise IndexError(f"{name}[{k}]: index {int(a[k])} is out of range for size {size}")
    return np.repeat(a, n) if a.shape[0] == 1 and n > 1 else a


def score(model: str, ent: Any, rel: Any, triples: Any) -> np.ndarray:
    """Scores of ``triples (n, 3)``: shape ``(n,)``, dtype of the tables."""
    ent, rel = check_tables(ent, rel)
    return _core.kge_score(check_model(model), ent, rel, check_triples(triples))


def score_grad(model: str, ent: Any, rel: Any, triples: Any, upstream: Any
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row gradients ``(grad_head (n, d_e), grad_rel (n, d_r), grad_tail (n, d_e))`` of
    ``sum(upstream * score(triples))``; scatter-add them into the tables with the triples' ids
    (``np.add.at``) for table gradients. Subgradient 0 at the kinks of the distances.

    ``upstream`` is ``n`` numbers, finite, as the tables (TypeError or ValueError naming it)."""
    ent, rel = check_tables(ent, rel)
    up = np.asarray(upstream)
    if up.dtype.kind not in "iuf":  # None or text would become NaN, or fail naming nothing
        got = (f"{type(upstream).__name__} {upstream!r}" if up.dtype.kind == "O"
               else f"dtype {up.dtype}")
        raise TypeError(f"upstream: expected numbers, got {got}")
    with np.errstate(over="ignore"):  # a value float32 cannot hold becomes inf, refused next
        up = np.ascontiguousarray(up, dtype=ent.dtype)
    if not _core.all_finite([up]):
        raise ValueError("upstream: contains NaN or infinity")
    return _core.kge_score_grad(check_model(model), ent, rel, check_triples(triples), up)


def score_tails(model: str, ent: Any, rel: Any, heads: Any, relations: Any) -> np.ndarray:
    """1-vs-all: ``out[i, e] = score(heads[i], relations[i], e)``, shape ``(n, n_entities)``.
    A scalar head or relation is repeated for every query."""
    ent, rel = check_tables(ent, rel)
    n = max(np.size(heads), np.size(relations))
    h = _ids(heads, "heads", n, ent.shape[0])
    r = _ids(relations, "relations", n, rel.shape[0])
    if h.shape != r.shape:
        raise ValueError(f"relations: expected {h.shape[0]} ids (one per head), got {r.shape[0]}")
    return _core.kge_score_all(check_model(model), ent, rel, h, r, "tail")


def score_heads(model: str, ent: Any, rel: Any, relations: Any, tails: Any) -> np.ndarray:
    """1-vs-all: ``out[i, e] = score(e, relations[i], tails[i])``, shape ``(n, n_entities)``."""
    ent, rel = check_tables(ent, rel)
    n = max(np.size(tails), np.size(relations))
    t = _ids(tails, "tails", n, ent.shape[0])
    r = _ids(relations, "relations", n, rel.shape[0])
    if t.shape != r.shape:
        raise ValueError(f"relations: expected {t.shape[0]} ids (one per tail), got {r.shape[0]}")
    return _core.kge_score_all(check_model(model), ent, rel, t, r, "head")


def regulariser(x: Any, kind: str = "l2", weight: float = 1.0, complex: bool = False
                ) -> tuple[float, np.ndarray]:
    """``(value, grad)`` of the L2 penalty ``weight * sum(x ** 2)`` or the N3 penalty
    (Lacroix et al. 2018) ``weight * sum(|x_j| ** 3)`` of rows ``x (n, d)``; with
    ``complex=True`` ``|x_j|`` is the modulus of complex component ``j`` (``[re | im]`` rows).

    ``x`` finite; ``kind`` ``"l2"`` or ``"n3"``; ``weight`` a finite number ``>= 0``;
    ``complex`` a bool. Errors (TypeError for the wrong kind of value, ValueError out of range)
    name the argument."""
    a = np.asarray(x)
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"x: expected float32 or float64, got dtype {a.dtype}")
    if not isinstance(kind, str):
        raise TypeError(f"kind: expected 'l2' or 'n3', got {type(kind).__name__} {kind!r}")
    if kind not in ("l2", "n3"):
        raise ValueError(f"kind: expected 'l2' or 'n3', got {kind!r}")
    if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, numbers.Real):
        raise TypeError(f"weight: expected a number, got {type(weight).__name__} {weight!r}")
    complex = check_bool("complex", complex)
    a = np.ascontiguousarray(a)
    if not _core.all_finite([a]):
        raise ValueError("x: contains NaN or infinity")
    return _core.kge_regularise(a, kind, float(weight), complex)
