"""Horn rules over knowledge graphs (issue 9, first slice: exact metrics of given rules).

A closed-path rule ``h(X, Y) <- b_1(X, Z), b_2(Z, Y)`` has a head relation and a body path of
one or two atoms, each usable in either direction (an inverse atom ``b^-1(X, Z)`` is
``b(Z, X)``). Its metrics follow AMIE 3: support (distinct ``(x, y)`` with the body true and
``h(x, y)`` a fact), head coverage (support / facts of ``h``), standard confidence (support /
body pairs) and PCA confidence (support / body pairs whose ``x`` has some ``h(x, y')``).
Kernels: ``rust/core/src/rules`` (an adjacency index per relation and direction; rules in
parallel; exact integer counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from nesy import _core


@dataclass(frozen=True)
class PathRule:
    """``head(X, Y) <- body``; ``body`` is one or two ``(relation, inverse)`` atoms."""

    head: int
    body: tuple[tuple[int, bool], ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.body) <= 2:
            raise ValueError(f"body: one or two atoms are supported, got {len(self.body)}")

    def row(self) -> list[int]:
        """``(head, r1, inverse1, r2, inverse2)``, ``r2 = -1`` for one atom."""
        (r1, i1), *rest = self.body
        r2, i2 = rest[0] if rest else (-1, False)
        return [int(self.head), int(r1), int(bool(i1)), int(r2), int(bool(i2))]

    def to_text(self, relations: Optional[Sequence[str]] = None) -> str:
        """Readable form, e.g. ``parent(X,Y) <- father(X,Z), inv_child(Z,Y)``."""
        name = (lambda r: relations[r]) if relations is not None else (lambda r: f"r{r}")
        variables = ["X", "Z", "Y"] if len(self.body) == 2 else ["X", "Y"]
        atoms = []
        for k, (r, inverse) in enumerate(self.body):
            a, b = variables[k], variables[k + 1]
            atoms.append(f"{name(r)}({b},{a})" if inverse else f"{name(r)}({a},{b})")
        return f"{name(self.head)}(X,Y) <- " + ", ".join(atoms)


def rule_metrics(triples: Any, rules: Sequence[PathRule], n_entities: Optional[int] = None,
                 n_relations: Optional[int] = None) -> dict[str, np.ndarray]:
    """Exact AMIE metrics of closed-path ``rules`` over ``triples (n, 3)``.

    Returns
    -------
    dict
        ``support``, ``body_pairs``, ``pca_body_pairs``, ``head_facts`` (int64) and
        ``head_coverage``, ``std_confidence``, ``pca_confidence`` (float64), one entry per rule.
    """
    t = np.asarray(triples)
    if t.size == 0:
        raise ValueError("triples: the graph is empty")
    if t.dtype == bool or not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"triples: expected integer ids, got dtype {t.dtype}")
    if t.ndim != 2 or t.shape[1] != 3:
        raise ValueError(f"triples: expected shape (n, 3), got {t.shape}")
    t = np.ascontiguousarray(t, dtype=np.int64)
    n_ent = int(max(t[:, 0].max(), t[:, 2].max())) + 1 if n_entities is None else n_entities
    n_rel = int(t[:, 1].max()) + 1 if n_relations is None else n_relations
    r = np.array([rule.row() for rule in rules], dtype=np.int64).reshape(-1, 5)
    return _core.rules_path_metrics(t, int(n_ent), int(n_rel), r)
