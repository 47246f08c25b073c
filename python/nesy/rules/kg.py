"""Horn rules mined from knowledge graphs: mining, link prediction, explanations.

Rules (kernels in ``rust/core/src/rules``) have one head atom and a body path, each atom a
relation read forwards or inverted:

- closed paths of length 1 to 3, ``h(X,Y) <- b1(X,A), b2(A,B), b3(B,Y)``;
- acyclic rules with a constant (AnyBURL's AC1/AC2), body length 1 to 2:
  ``h(X,"c") <- b(X,"d")`` (end constant) and ``h(X,"c") <- b(X,A)`` (dangling end), with the
  constant on either side of the head.

Rules cross to Rust as int64 rows ``(kind, head, head_inverse, constant, end, r1, i1, r2, i2,
r3, i3)`` (``kind`` 0 closed, 1 end constant, 2 dangling; unused atoms ``-1, 0``); their metrics
are exact, as AMIE 3 defines them (support, head coverage, standard and PCA confidence).

Mining: :func:`mine` with ``method="exact"`` enumerates every rule above the thresholds (from the
paths that connect each head fact, so only rules with support are ever counted);
``method="sample"`` is AnyBURL's anytime miner: batches of random walks from random head facts,
each new candidate measured exactly, until the time budget is spent.

Prediction (:class:`KGRuleSet`): a rule fires for a candidate when its body holds (see
``rust/core/src/rules/apply.rs``); its weight is ``support / (body_pairs + pc)`` (AnyBURL's
pessimistic confidence; ``pc = 0`` is the standard confidence). Candidates are ordered by
``aggregation``: ``"maxplus"`` (AnyBURL: confidences sorted descending, compared
lexicographically), ``"max_noisy_or"`` (maximum, ties by noisy-or) or ``"noisy_or"``. Ranks go
through the filter and tie counting of :mod:`nesy.kge.evaluate`; entities no rule reaches tie
below every candidate.
"""

from __future__ import annotations

import numbers
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np

from nesy import _core
from nesy._checks import check_bool, check_int, physical_memory_bytes
from nesy.kge.evaluate import TIES, summarise_ranks
from nesy.kge.model import label_triples
from nesy.kge.scoring import check_ids, check_seed
from nesy.kge.scoring import check_triples as _triples

ROW = 11
KINDS = ("closed", "end_constant", "dangling")
AGGREGATIONS = ("maxplus", "max_noisy_or", "noisy_or")
METHODS = ("exact", "sample")
#: Most random walks per head relation per batch :func:`mine` accepts (``paths``).
MAX_PATHS = 10**7
METRICS = ("support", "body_pairs", "pca_body_pairs", "head_facts", "head_coverage",
           "std_confidence", "pca_confidence")
#: Relations the Rust rule index takes (``rust/core/src/rules/index.rs``): fewer than 2**20.
MAX_RELATIONS = 2**20


# --------------------------------------------------------------------------- input checks
def _rows(rows: Any) -> np.ndarray:
    a = np.asarray(rows)
    if a.size == 0:
        a = a.reshape(0, ROW).astype(np.int64)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"rules: expected integer rule rows, got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[1] != ROW:
        raise ValueError(f"rules: expected shape (m, {ROW}), got {a.shape}")
    return np.ascontiguousarray(a, dtype=np.int64)


@dataclass
class KGGraph:
    """The triples rules are mined from and applied to, with optional labels.

    Build with :meth:`of` from a :class:`nesy.datasets.KGData` (its train split and labels) or
    an int array ``(n, 3)``.
    """

    triples: np.ndarray
    n_entities: int
    n_relations: int
    entities: Optional[list[str]] = None
    relations: Optional[list[str]] = None
    _index: Any = field(default=None, repr=False)
    _vocabularies: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, graph: Any, n_entities: Optional[int] = None,
           n_relations: Optional[int] = None) -> KGGraph:
        if isinstance(graph, KGGraph):
            return graph
        if hasattr(graph, "train") and hasattr(graph, "entities"):
            return cls(_triples(graph.train, "graph.train"), graph.n_entities,
                       graph.n_relations, list(graph.entities), list(graph.relations))
        t = _triples(graph, "graph")
        if t.shape[0] == 0 and (n_entities is None or n_relations is None):
            raise ValueError("graph: the graph is empty (0 triples)")
        if t.shape[0] and t.min() < 0:
            raise IndexError("graph: negative ids")
        n_ent = int(max(t[:, 0].max(), t[:, 2].max())) + 1 if t.shape[0] else 0
        n_rel = int(t[:, 1].max()) + 1 if t.shape[0] else 0
        return cls(t, _count(n_entities, n_ent, "n_entities"),
                   _count(n_relations, n_rel, "n_relations"))

    @property
    def index(self) -> Any:
        """The Rust adjacency index (built on first use)."""
        if self._index is None:
            if self.triples.shape[0] == 0:
                raise ValueError("graph: the graph is empty (0 triples)")
            self._check_sizes()
            self._index = _core.RuleGraph(self.triples, self.n_entities, self.n_relations)
        return self._index

    def _check_sizes(self) -> None:
        """ValueError before the index is built when it cannot be: more relations than it
        takes (:data:`MAX_RELATIONS`), or lists (two per relation and entity, with the
        temporary tables that build them) larger than this machine's memory. From id arrays
        that is an id far beyond the number of entities or relations (the graph has a row for
        every id up to the largest), and the message says so."""
        n_ent, n_rel = self.n_entities, self.n_relations
        mem = physical_memory_bytes()
        need = 3 * 8 * 2 * n_rel * (n_ent + 1)
        if n_rel < MAX_RELATIONS and (mem is None or need <= mem):
            return
        if n_rel >= MAX_RELATIONS:
            why = (f"{n_rel:,} relations, more than the rule index takes "
                   f"({MAX_RELATIONS - 1:,})")
        else:
            why = (f"{n_rel:,} relations x {n_ent:,} entities need {need / 2**30:,.1f} GiB for "
                   f"the rule index, more than this machine's {mem / 2**30:,.1f} GiB")
        used_rel = len(np.unique(self.triples[:, 1]))
        used_ent = len(np.unique(self.triples[:, [0, 2]]))
        if self.relations is None and n_rel > 2 * used_rel:
            why += (f"; relation id {n_rel - 1:,} implies a table of {n_rel:,} rows, but the "
                    f"graph uses only {used_rel:,} distinct relation ids")
        elif self.entities is None and n_ent > 2 * used_ent:
            why += (f"; entity id {n_ent - 1:,} implies a table of {n_ent:,} rows, but the "
                    f"graph uses only {used_ent:,} distinct entity ids")
        else:
            raise ValueError(f"graph: {why}")
        raise ValueError(f"graph: {why}; ids must be 0..n-1 (remap them, or use load_kg)")

    def entity(self, x: Any, name: str = "entity") -> int:
        """An entity id from an id or (with labels) a label; errors name the argument
        ``name``."""
        return self._id(x, "entity", name)

    def relation(self, x: Any, name: str = "relation") -> int:
        """A relation id from an id or (with labels) a label; errors name the argument
        ``name``."""
        return self._id(x, "relation", name)

    def _label_id(self, label: str, kind: str, where: str) -> int:
        """The id of ``label`` (``kind`` "entity" or "relation") for argument position
        ``where`` (as :meth:`nesy.kge.KGEModel` reads label triples)."""
        labels = self.entities if kind == "entity" else self.relations
        if labels is None:
            raise ValueError(f"{where}: got a label, but this graph has no {kind} labels (it "
                             f"was made from id arrays): pass ids")
        table = self._vocabularies.get(kind)
        if table is None:
            table = self._vocabularies[kind] = {lab: i for i, lab in enumerate(labels)}
        if label not in table:
            from nesy.datasets.kg import UnknownLabelError
            raise UnknownLabelError(f"{where}: unknown {kind} label {label!r} (not among the "
                                    f"graph's {len(table):,} {kind} labels)")
        return table[label]

    def triple_ids(self, triples: Any, name: str) -> np.ndarray:
        """``triples`` as int64 ``(n, 3)`` ids: id triples or, when the graph has labels,
        ``(head, relation, tail)`` label triples (ids and labels may mix); errors name the
        argument ``name`` (an id out of range: IndexError naming the triple and column)."""
        t = _triples(label_triples(triples, name, self._label_id), name)
        check_ids(t, self.n_entities, self.n_relations, name)
        return t

    def queries(self, entities: Any, relations: Any, names: tuple[str, str]) -> np.ndarray:
        """``(n, 2)`` int64 ``(entity, relation)`` ids of queries given as ids or labels, one
        of the two possibly a single value (used for every query); ``names``: the arguments'
        names for the errors, which also give the position as :class:`nesy.kge.KGEModel`
        does (``heads[0]: index 99 is out of range for size 14``; one label: ``heads: unknown
        entity label ...``)."""
        e = np.atleast_1d(np.asarray(entities, dtype=object))
        r = np.atleast_1d(np.asarray(relations, dtype=object))
        if e.ndim != 1 or r.ndim != 1:
            raise ValueError(f"{names[0]} and {names[1]}: expected scalars or 1-D sequences")
        for name, a in zip(names, (e, r)):
            if len(a) == 0:
                raise ValueError(f"{name}: no queries (an empty sequence)")
        n = max(len(e), len(r))
        if len(e) not in (1, n) or len(r) not in (1, n):
            raise ValueError(f"{names[0]} ({len(e)}) and {names[1]} ({len(r)}): lengths differ")
        out = np.empty((n, 2), dtype=np.int64)
        for col, (a, kind, name, given) in enumerate(
                ((e, "entity", names[0], entities), (r, "relation", names[1], relations))):
            one = np.ndim(given) == 0
            out[:, col] = [self._id(x, kind, name if one and isinstance(x, str)
                                    else f"{name}[{i}]") for i, x in enumerate(a)]
        return out

    def _id(self, x: Any, kind: str, where: str) -> int:
        """The id of ``x`` (an id, or a label of a graph with labels) of ``kind`` ("entity"
        or "relation"); errors name the argument (and position) ``where``."""
        if isinstance(x, str):  # np.str_ too
            return self._label_id(x, kind, where)
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
            raise TypeError(f"{where}: expected an id or a label, got {type(x).__name__} {x!r}")
        n = self.n_entities if kind == "entity" else self.n_relations
        if not 0 <= int(x) < n:
            raise IndexError(f"{where}: index {int(x)} is out of range for size {n}")
        return int(x)

    def entity_name(self, x: int) -> str:
        return self.entities[x] if self.entities is not None else str(x)

    def relation_name(self, x: int) -> str:
        return self.relations[x] if self.relations is not None else f"r{x}"

    def relation_names(self) -> list[str]:
        return self.relations or [f"r{k}" for k in range(self.n_relations)]

    def entity_names(self) -> list[str]:
        return self.entities or [str(k) for k in range(self.n_entities)]


def _count(given: Optional[int], needed: int, name: str) -> int:
    """``given`` (or ``needed`` when None): an integer at least ``needed``, the largest id in
    the graph plus one."""
    if given is None:
        return needed
    if isinstance(given, (bool, np.bool_)) or not isinstance(given, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(given).__name__}")
    if int(given) < needed:
        raise ValueError(f"{name}: {int(given)} is too small for the ids of graph (which need "
                         f"at least {needed})")
    return int(given)


# --------------------------------------------------------------------------- metrics
def rule_metrics(graph: Any, rules: Any) -> dict[str, np.ndarray]:
    """Exact AMIE metrics of rule rows ``(m, 11)`` over ``graph`` (KGData: its train split).

    Returns
    -------
    dict
        ``support``, ``body_pairs``, ``pca_body_pairs``, ``head_facts`` (int64) and
        ``head_coverage``, ``std_confidence``, ``pca_confidence`` (float64), one entry per rule.
    """
    g = KGGraph.of(graph)
    return dict(_core.rules_metrics(g.index, _rows(rules)))


def length2_metrics(graph: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every closed-path rule of length 2, ``h(X,Y) <- a1(X,Z), a2(Z,Y)`` for every head and
    every pair of atoms (relations forwards or inverted), with exact metrics.

    Returns
    -------
    rules : ndarray of int64, shape (n_relations * (2 n_relations)^2, 11)
        Ordered by head, then ``a1``, then ``a2`` (atom code ``2 * relation + inverse``).
    metrics : dict
        As :func:`rule_metrics`. Each body is walked once for all heads.
    """
    rows, m = _core.rules_length2(KGGraph.of(graph).index)
    return rows, dict(m)


# --------------------------------------------------------------------------- mining
def _check_thresholds(min_support: Any, min_head_coverage: Any, min_confidence: Any,
                      least_support: int) -> None:
    """The thresholds of :func:`mine` and :meth:`KGRuleSet.filter`: ``min_support`` an integer
    of at least ``least_support``, the two ratios numbers in [0, 1] (NaN refused)."""
    check_int("min_support", min_support, least_support)
    for name, v in (("min_head_coverage", min_head_coverage),
                    ("min_confidence", min_confidence)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name}: expected a number, got {type(v).__name__} {v!r}")
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name}: expected a value in [0, 1], got {v}")


def _check_mine_args(max_length: Any, max_length_acyclic: Any, min_support: Any,
                     min_head_coverage: Any, min_confidence: Any, confidence: Any, method: Any,
                     time_budget: Any, paths: Any, max_batches: Any, relations: Any,
                     verbose: Any) -> tuple[int, int, Optional[float], int, Optional[int]]:
    """Every option of :func:`mine` but ``graph`` and ``seed``, checked before any work:
    ``(max_length, max_length_acyclic, time_budget, paths, max_batches)`` in plain types, else
    TypeError (the wrong kind of value) or ValueError (out of range) naming the option."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if not isinstance(confidence, str) or confidence not in ("std", "pca"):
        raise ValueError(f"confidence: expected 'std' or 'pca', got {confidence!r}")
    max_length = check_int("max_length", max_length, 0, 3)
    max_length_acyclic = check_int("max_length_acyclic", max_length_acyclic, 0, 2)
    if max_length == 0 and max_length_acyclic == 0:
        raise ValueError("max_length and max_length_acyclic are both 0: nothing to mine")
    _check_thresholds(min_support, min_head_coverage, min_confidence, 1)
    if time_budget is not None:
        if isinstance(time_budget, (bool, np.bool_)) or not isinstance(time_budget,
                                                                       numbers.Real):
            raise TypeError(f"time_budget: expected a number of seconds or None, got "
                            f"{type(time_budget).__name__} {time_budget!r}")
        if not float(time_budget) > 0:
            raise ValueError(f"time_budget: expected a positive number of seconds, got "
                             f"{time_budget}")
        time_budget = float(time_budget)
    paths = check_int("paths", paths)
    if not 1 <= paths <= MAX_PATHS:
        raise ValueError(f"paths: expected 1 to {MAX_PATHS:,}, got {paths}")
    if max_batches is not None:
        max_batches = check_int("max_batches", max_batches, 1)
    if method == "sample" and time_budget is None and max_batches is None:
        raise ValueError("time_budget: the sampling miner needs a time budget or max_batches")
    _check_sequence("relations", relations, "relation ids or labels", "relation")
    if verbose is not None and not isinstance(verbose, (numbers.Integral, np.bool_)):
        raise TypeError(f"verbose: expected an integer (0 or None: silent, 1: a progress bar), "
                        f"got {type(verbose).__name__} {verbose!r}")
    return max_length, max_length_acyclic, time_budget, paths, max_batches


def _check_sequence(name: str, value: Any, what: str, one: str) -> None:
    """TypeError naming ``name`` when ``value`` (None allowed) is not a sequence (one string
    would be read as its characters)."""
    single = (isinstance(value, (str, bytes)) or not isinstance(value, Iterable)
              or (isinstance(value, np.ndarray) and value.ndim == 0))
    if value is not None and single:
        raise TypeError(f"{name}: expected a sequence of {what}, got {type(value).__name__} "
                        f"{value!r} (for one {one}: [{value!r}])")


def _keep(m: dict[str, np.ndarray], min_support: int, min_head_coverage: float,
          min_confidence: float, confidence: str) -> np.ndarray:
    """The rules passing the thresholds (``min_support`` as given: :func:`mine` checks it is
    at least 1, :meth:`KGRuleSet.filter` lets 0 keep the rules without support)."""
    conf = m["pca_confidence" if confidence == "pca" else "std_confidence"]
    return ((m["support"] >= min_support) & (m["head_coverage"] >= min_head_coverage)
            & (conf >= min_confidence))


def mine(graph: Any, max_length: int = 3, max_length_acyclic: int = 1, min_support: int = 2,
         min_head_coverage: float = 0.01, min_confidence: float = 0.1, confidence: str = "std",
         method: str = "exact", time_budget: Optional[float] = None, paths: int = 2000,
         max_batches: Optional[int] = None, seed: int = 0,
         relations: Optional[Sequence[Any]] = None, verbose: int = 1) -> KGRuleSet:
    """Mine Horn rules from ``graph``.

    Parameters
    ----------
    graph : KGData or ndarray of int, shape (n, 3)
        A :class:`nesy.datasets.KGData` (rules are mined from its train split, labels kept) or
        triples.
    max_length : int
        Longest closed-path body (0 to 3; 0 mines none).
    max_length_acyclic : int
        Longest body of acyclic rules with a constant (0 to 2; 0 mines none).
    min_support, min_head_coverage, min_confidence : thresholds every kept rule passes.
    confidence : ``"std"`` or ``"pca"``
        Which confidence ``min_confidence`` applies to.
    method : ``"exact"`` or ``"sample"``
        Exact enumeration (every rule above the thresholds) or the anytime path sampler.
    time_budget : float, optional
        ``method="sample"``: seconds of sampling, a number > 0 (required unless
        ``max_batches`` is given); checked between batches, so a run may overrun by one batch.
    paths : int
        ``method="sample"``: random walks per head relation per batch (1 to
        :data:`MAX_PATHS`).
    max_batches : int, optional
        ``method="sample"``: stop after this many batches (at least 1). The sampler is
        deterministic per batch: ``(seed, max_batches)`` gives the same rules for any thread
        count; a time budget gives a prefix of that same sequence of batches.
    seed : int, default 0
        Seeds the path sampler (``method="sample"``); an integer in ``[0, 2**64)``.
    relations : sequence of ids or labels, optional
        Head relations to mine rules for (default: every relation with a fact in the graph;
        the others can have no rule with support).
    verbose : int or None
        0 or None: silent; 1: a progress bar.

    Returns
    -------
    KGRuleSet
        With ``info_``: method, seconds, candidates, measured, index bytes and the peak memory
        of the miner's tables.

    Raises
    ------
    TypeError, ValueError
        Before any work, naming the option: a value of the wrong kind (a float or string
        count, a string ``time_budget``, one label as ``relations``) or out of its range; a
        ValueError too when the graph's index cannot be built (from id arrays: an id far
        beyond the number of entities or relations, which must be numbered 0..n-1).
    """
    max_length, max_length_acyclic, time_budget, paths, max_batches = _check_mine_args(
        max_length, max_length_acyclic, min_support, min_head_coverage, min_confidence,
        confidence, method, time_budget, paths, max_batches, relations, verbose)
    seed = check_seed(seed)
    g = KGGraph.of(graph)
    index = g.index  # built first: it checks the sizes (a huge id) before any other work
    # Relations without facts can have no rule with support: mine those that occur (not
    # range(n_relations), which is huge for one large relation id).
    heads = ([int(r) for r in np.unique(g.triples[:, 1])] if relations is None
             else list(dict.fromkeys(g.relation(r, f"relations[{i}]")  # each once
                                     for i, r in enumerate(relations))))
    if not heads:
        raise ValueError("relations: no head relations to mine")
    start = time.perf_counter()
    if method == "exact":
        rows, metrics, info = _mine_exact(g, heads, max_length, max_length_acyclic,
                                          int(min_support), float(min_head_coverage),
                                          float(min_confidence), confidence, verbose)
    else:
        rows, metrics, info = _mine_sampled(
            g, heads, max_length, max_length_acyclic, int(min_support),
            float(min_head_coverage), float(min_confidence), confidence, time_budget,
            int(paths), max_batches, int(seed), verbose)
    info.update(method=method, seconds=time.perf_counter() - start,
                index_bytes=int(index.nbytes), rules=int(rows.shape[0]))
    return KGRuleSet(rows, metrics, g, info=info)


def _progress(total: Optional[float], verbose: int, desc: str, unit: str = "it") -> Any:
    from tqdm.auto import tqdm
    return tqdm(total=total, disable=not verbose, desc=desc, unit=unit, leave=False)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) if parts else
            np.zeros(0, dtype=np.int64 if k in METRICS[:4] else np.float64) for k in METRICS}


def _mine_exact(g: KGGraph, heads: list[int], max_length: int, max_length_acyclic: int,
                min_support: int, min_hc: float, min_conf: float, confidence: str,
                verbose: int) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    rows, metrics = [], []
    info: dict[str, Any] = {"candidates": 0, "measured": 0, "peak_table_bytes": 0}
    with _progress(len(heads), verbose, "mining (exact)", "relation") as bar:
        for h in heads:  # one call per head relation: a progress bar, and parallel inside
            r, m, st = _core.rules_mine_exact(g.index, [h], max_length, max_length_acyclic,
                                              min_support, min_hc, min_conf,
                                              confidence == "pca")
            rows.append(r)
            metrics.append(dict(m))
            info["candidates"] += int(st["candidates"])
            info["measured"] += int(st["measured"])
            info["peak_table_bytes"] = max(info["peak_table_bytes"], int(st["peak_table_bytes"]))
            bar.update(1)
    return np.concatenate(rows) if rows else np.zeros((0, ROW), np.int64), _concat(metrics), info


def _row_hashes(rows: np.ndarray) -> np.ndarray:
    """A 64-bit hash of every rule row (SplitMix64 finaliser over the columns)."""
    h = np.zeros(rows.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in rows.T.astype(np.uint64):
            h = (h ^ col) * np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(29)
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(32)
    return h


def _mine_sampled(g: KGGraph, heads: list[int], max_length: int, max_length_acyclic: int,
                  min_support: int, min_hc: float, min_conf: float, confidence: str,
                  time_budget: Optional[float], paths: int, max_batches: Optional[int],
                  seed: int, verbose: int
                  ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    # Candidates already measured, as sorted 64-bit hashes of their rows (8 bytes each; a
    # collision, probability ~n^2 / 2^65, would only skip one candidate).
    seen = np.zeros(0, dtype=np.uint64)
    rows, metrics = [], []
    start = time.perf_counter()
    batch = 0
    candidates = 0
    with _progress(time_budget, verbose, "mining (sampling)", "s") as bar:
        while max_batches is None or batch < max_batches:
            if time_budget is not None and time.perf_counter() - start >= time_budget:
                break
            cand = _core.rules_sample(g.index, heads, batch, max_length, max_length_acyclic,
                                      paths, seed)
            keys = _row_hashes(cand)
            new = ~np.isin(keys, seen, assume_unique=True)  # a batch's rows are distinct
            fresh = np.ascontiguousarray(cand[new])
            seen = np.union1d(seen, keys[new])
            candidates += int(fresh.shape[0])
            if fresh.shape[0]:
                m = dict(_core.rules_metrics(g.index, fresh))
                keep = _keep(m, min_support, min_hc, min_conf, confidence)
                rows.append(fresh[keep])
                metrics.append({k: v[keep] for k, v in m.items()})
            batch += 1
            if time_budget is not None:
                bar.n = min(time.perf_counter() - start, time_budget)
                bar.refresh()
    out = np.concatenate(rows) if rows else np.zeros((0, ROW), np.int64)
    met = _concat(metrics)
    order = np.lexsort(out.T[::-1]) if out.shape[0] else np.zeros(0, np.int64)
    info = {"candidates": candidates, "measured": candidates, "batches": batch,
            "paths_per_batch": paths * len(heads), "peak_table_bytes": int(seen.nbytes)}
    return out[order], {k: v[order] for k, v in met.items()}, info


# --------------------------------------------------------------------------- the rule set
def _check_metric(key: str, v: np.ndarray) -> None:
    """The values of metric ``key`` of :class:`KGRuleSet`, checked as rule files are: counts
    are integers (integral floats too), ``support`` and ``body_pairs`` at least 0, the two
    counts text files may not know at least -1 (unknown); ratios are in [0, 1] (NaN refused).
    Other keys are the caller's and are not checked."""
    if key not in METRICS:
        return
    if v.dtype == bool or not (np.issubdtype(v.dtype, np.integer)
                               or np.issubdtype(v.dtype, np.floating)):
        raise TypeError(f"metrics[{key!r}]: expected numbers, got dtype {v.dtype}")
    if not v.size:
        return
    if key in METRICS[:4]:
        low = 0 if key in ("support", "body_pairs") else -1
        bad = np.flatnonzero(~np.isfinite(v) | (v != np.round(v)) | (v < low))
        want = f"an integer count >= {low}"
    else:
        bad = np.flatnonzero(~((v >= 0) & (v <= 1)))
        want = "a ratio in [0, 1]"
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"metrics[{key!r}][{i}]: expected {want}, got {v[i].item()!r}")


class KGRuleSet:
    """Rules over one knowledge graph, with their metrics, for prediction and explanation.

    Parameters
    ----------
    rules : ndarray of int, shape (m, 11)
        Rule rows (see the module docs).
    metrics : dict of arrays
        Their metrics, every one of :data:`METRICS` (as :func:`rule_metrics` returns them;
        ValueError naming ``metrics`` and the missing keys otherwise); other keys are kept.
    graph : KGData, KGGraph or ndarray (n, 3)
        The graph the rules are applied to (for KGData: its train split).
    pc : float
        Rule weight ``support / (body_pairs + pc)``.
    aggregation : ``"maxplus"``, ``"max_noisy_or"`` or ``"noisy_or"``
    exclude_query : bool
        Never propose the query entity itself (a bool: ``"no"`` is a TypeError, not True).
    info : dict, optional
        Notes on how the rules were made (:func:`mine` passes its statistics), copied into
        ``info_`` (:meth:`ranks` adds ``"widest_query"``) and kept by :meth:`filter`.

    ``pc``, ``aggregation`` and ``exclude_query`` are checked again whenever they are set.
    """

    def __init__(self, rules: Any, metrics: dict[str, Any], graph: Any, pc: float = 5.0,
                 aggregation: str = "maxplus", exclude_query: bool = True,
                 info: Optional[dict[str, Any]] = None) -> None:
        self.rules = _rows(rules)
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics: expected a dict of arrays (as rule_metrics returns), got "
                            f"{type(metrics).__name__}")
        missing = [k for k in METRICS if k not in metrics]
        if missing:
            raise ValueError(f"metrics: missing {missing} (every one of {list(METRICS)} is "
                             f"needed, as rule_metrics returns them)")
        self.metrics = {k: np.asarray(v) for k, v in metrics.items()}
        for k, v in self.metrics.items():
            if v.shape != (self.rules.shape[0],):
                raise ValueError(f"metrics[{k!r}]: expected shape ({self.rules.shape[0]},), "
                                 f"got {v.shape}")
            _check_metric(k, v)
        self.graph = KGGraph.of(graph)
        self.pc = pc
        self.aggregation = aggregation
        self.exclude_query = exclude_query
        self.info_ = dict(info or {})

    # The settings are checked whenever they are set, not only by the constructor.
    @property
    def pc(self) -> float:
        """``pc`` of the rule weight ``support / (body_pairs + pc)``: a finite number >= 0."""
        return self._pc

    @pc.setter
    def pc(self, pc: Any) -> None:
        if isinstance(pc, (bool, np.bool_)) or not isinstance(pc, numbers.Real):
            raise TypeError(f"pc: expected a number, got {type(pc).__name__} {pc!r}")
        if not 0 <= float(pc) < np.inf:
            raise ValueError(f"pc: expected a finite value >= 0, got {pc}")
        self._pc = float(pc)

    @property
    def aggregation(self) -> str:
        """One of :data:`AGGREGATIONS`."""
        return self._aggregation

    @aggregation.setter
    def aggregation(self, aggregation: Any) -> None:
        if not isinstance(aggregation, str) or aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation: expected one of {AGGREGATIONS}, got {aggregation!r}")
        self._aggregation = aggregation

    @property
    def exclude_query(self) -> bool:
        """Whether the query entity itself is never proposed (a bool)."""
        return self._exclude_query

    @exclude_query.setter
    def exclude_query(self, exclude_query: Any) -> None:
        self._exclude_query = check_bool("exclude_query", exclude_query)

    def __len__(self) -> int:
        return int(self.rules.shape[0])

    def __repr__(self) -> str:
        kinds = np.bincount(self.rules[:, 0], minlength=3) if len(self) else np.zeros(3, int)
        return (f"KGRuleSet({len(self):,} rules: {kinds[0]:,} closed, {kinds[1]:,} end-constant, "
                f"{kinds[2]:,} dangling; aggregation={self.aggregation!r}, pc={self.pc})")

    # ------------------------------------------------------------------ weights and views
    def confidence(self) -> np.ndarray:
        """The weight of every rule in prediction: ``support / (body_pairs + pc)``."""
        s = self.metrics["support"].astype(np.float64)
        b = self.metrics["body_pairs"].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(b + self.pc > 0, s / (b + self.pc), 0.0)
        return np.ascontiguousarray(np.clip(c, 0.0, 1.0))

    def _subset(self, keep: np.ndarray) -> KGRuleSet:
        return KGRuleSet(self.rules[keep], {k: v[keep] for k, v in self.metrics.items()},
                         self.graph, self.pc, self.aggregation, self.exclude_query, self.info_)

    def filter(self, min_support: int = 0, min_head_coverage: float = 0.0,
               min_confidence: float = 0.0, confidence: str = "std",
               kinds: Optional[Sequence[str]] = None, max_length: Optional[int] = None,
               relations: Optional[Sequence[Any]] = None) -> KGRuleSet:
        """The rules passing every given threshold (``kinds`` among :data:`KINDS`,
        ``relations`` ids or labels: sequences, even of one); the thresholds are checked as
        :func:`mine` checks them, but ``min_support`` may be 0 here, which keeps the rules
        without support too (from :func:`rule_metrics`, or :meth:`load` with ``remeasure`` on
        another graph): with the defaults, every rule passes."""
        if not isinstance(confidence, str) or confidence not in ("std", "pca"):
            raise ValueError(f"confidence: expected 'std' or 'pca', got {confidence!r}")
        _check_thresholds(min_support, min_head_coverage, min_confidence, 0)
        if max_length is not None:
            check_int("max_length", max_length, 0)
        _check_sequence("kinds", kinds, f"kinds among {KINDS}", "kind")
        _check_sequence("relations", relations, "relation ids or labels", "relation")
        keep = _keep(self.metrics, min_support, min_head_coverage, min_confidence, confidence)
        if kinds is not None:
            bad = [k for k in kinds if k not in KINDS]
            if bad:
                raise ValueError(f"kinds: unknown {bad}, expected among {KINDS}")
            keep &= np.isin(self.rules[:, 0], [KINDS.index(k) for k in kinds])
        if max_length is not None:
            keep &= self.lengths() <= max_length
        if relations is not None:
            keep &= np.isin(self.rules[:, 1], [self.graph.relation(r, f"relations[{i}]")
                                               for i, r in enumerate(relations)])
        return self._subset(keep)

    def lengths(self) -> np.ndarray:
        """Body length of every rule."""
        return (self.rules[:, 5:11:2] >= 0).sum(axis=1)

    def text(self, k: int) -> str:
        """Rule ``k`` (``0 <= k < len(self)``) as readable text with labels; IndexError naming
        ``k`` out of that range."""
        from nesy.rules.kg_format import rule_text
        k = check_int("k", k)
        if not 0 <= k < len(self):
            raise IndexError(f"k: rule {k} is out of range for {len(self):,} rules")
        return rule_text(self.rules[k], self.graph.relation_names(), self.graph.entity_names())

    def top(self, relation: Any, k: int = 10, by: str = "std_confidence") -> list[str]:
        """The ``k`` best rules with head ``relation`` by metric ``by``, as text lines
        ``"conf support rule"``."""
        if by not in self.metrics:
            raise ValueError(f"by: expected one of {sorted(self.metrics)}, got {by!r}")
        k = check_int("k", k, 0)
        r = self.graph.relation(relation)
        idx = np.flatnonzero(self.rules[:, 1] == r)
        idx = idx[np.argsort(-self.metrics[by][idx], kind="stable")][:k]
        return [f"{self.metrics['std_confidence'][i]:.4f}  {int(self.metrics['support'][i]):>6}  "
                f"{self.text(i)}" for i in idx]

    # ------------------------------------------------------------------ prediction
    def _predict(self, entities: Any, relations: Any, inverse: bool, k: int,
                 names: tuple[str, str]
                 ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        q = self.graph.queries(entities, relations, names)
        n = q.shape[0]
        off, cand, level, mx, _ = _core.rules_predict(
            self.graph.index, self.rules, self.confidence(), q, inverse, self.aggregation, k,
            self.exclude_query)
        parts = [slice(off[i], off[i + 1]) for i in range(n)]
        return q, [cand[s] for s in parts], [level[s] for s in parts], [mx[s] for s in parts]

    def _top(self, entities: Any, relations: Any, inverse: bool, k: int,
             filter_triples: Any) -> tuple[np.ndarray, np.ndarray]:
        k = check_int("k", k, 1)
        # Ask for more than k when filtering: filtered candidates are dropped afterwards.
        f = (None if filter_triples is None
             else self.graph.triple_ids(filter_triples, "filter_triples"))
        names = ("tails", "relations") if inverse else ("heads", "relations")
        q, cands, _, maxes = self._predict(entities, relations, inverse,
                                           0 if f is not None else k, names)
        ids = np.full((len(cands), k), -1, dtype=np.int64)
        scores = np.full((len(cands), k), -np.inf)
        for i, (c, m) in enumerate(zip(cands, maxes)):
            if f is not None:
                e, r = q[i]
                known = (f[(f[:, 2] == e) & (f[:, 1] == r), 0] if inverse
                         else f[(f[:, 0] == e) & (f[:, 1] == r), 2])
                ok = ~np.isin(c, known)
                c, m = c[ok], m[ok]
            ids[i, :min(k, len(c))] = c[:k]
            scores[i, :min(k, len(c))] = m[:k]
        return ids, scores

    def predict_tails(self, heads: Any, relations: Any, k: int = 10,
                      filter_triples: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best tails of ``(h, r, ?)`` by the rules: ``(ids (n, k), scores (n, k))``,
        best first in the set's aggregation order; ``scores`` are the highest confidence of a
        rule firing for the entity. Rows with fewer than ``k`` candidates are padded with id -1
        and score ``-inf``; entities with ``(h, r, e)`` in ``filter_triples`` (id or label
        triples) are left out. Heads and relations are ids, or labels when the graph has
        labels."""
        return self._top(heads, relations, False, k, filter_triples)

    def predict_heads(self, relations: Any, tails: Any, k: int = 10,
                      filter_triples: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best heads of ``(?, r, t)``, as :meth:`predict_tails`."""
        return self._top(tails, relations, True, k, filter_triples)

    def candidates(self, entities: Any, relations: Any, inverse: bool = False
                   ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Every candidate of each query, best first: ``(ids, level, max confidence)`` per query
        (``level`` 0 is the best; equal keys share a level). ``inverse`` (a bool): the queries
        are ``(?, r, e)``, their candidates heads."""
        inverse = check_bool("inverse", inverse)
        names = ("tails", "relations") if inverse else ("heads", "relations")
        _, c, lv, mx = self._predict(entities, relations, inverse, 0, names)
        return list(zip(c, lv, mx))

    def explain(self, head: Any, relation: Any, tail: Any, direction: str = "tail",
                limit: int = 3) -> list[dict[str, Any]]:
        """Why the rules predict ``(head, relation, tail)``.

        ``direction="tail"`` explains ``tail`` as an answer of ``(head, relation, ?)``;
        ``"head"`` explains ``head`` as an answer of ``(?, relation, tail)``.

        Returns
        -------
        list of dict
            One per rule that fires, highest confidence first: ``rule`` (index), ``text``,
            ``confidence`` (its weight), and ``groundings``: up to ``limit`` lists of
            ``(head, relation, tail)`` label triples, each a path in the graph.
        """
        if direction not in ("head", "tail"):
            raise ValueError(f"direction: expected 'head' or 'tail', got {direction!r}")
        limit = check_int("limit", limit, 1)
        g = self.graph
        h, r = g.entity(head, "head"), g.relation(relation, "relation")
        t = g.entity(tail, "tail")
        inverse = direction == "head"
        e, y = (t, h) if inverse else (h, t)
        found = _core.rules_explain(g.index, self.rules, self.confidence(), e, r, inverse, y,
                                    int(limit), self.exclude_query)
        out = []
        for rule, conf, _start, atoms, paths in found:
            groundings = []
            for path in paths:
                steps = []
                for a, code in enumerate(atoms):
                    rel, inv = divmod(code, 2)
                    x, z = path[a], path[a + 1]
                    s, o = (z, x) if inv else (x, z)
                    steps.append((g.entity_name(s), g.relation_name(rel), g.entity_name(o)))
                groundings.append(steps)
            out.append({"rule": int(rule), "text": self.text(int(rule)),
                        "confidence": float(conf), "groundings": groundings})
        return out

    # ------------------------------------------------------------------ evaluation
    def ranks(self, test: Any, filter_triples: Any) -> dict[str, dict[str, np.ndarray]]:
        """Filtered ranks of ``test`` as :func:`nesy.kge.evaluate.filtered_ranks` returns them
        (both arguments id triples or, when the graph has labels, label triples). Also sets
        ``info_["widest_query"]``, the most candidates one query had."""
        t = self.graph.triple_ids(test, "test")
        k = self.graph.triple_ids(filter_triples, "filter_triples")
        opt, pess, widest = _core.rules_ranks(self.graph.index, self.rules, self.confidence(),
                                              t, k, self.aggregation, self.exclude_query)
        self.info_["widest_query"] = int(widest)
        out = {}
        for col, direction in enumerate(("head", "tail")):
            o, p = opt[:, col].copy(), pess[:, col].copy()
            out[direction] = {"optimistic": o, "pessimistic": p, "realistic": (o + p) / 2.0}
        return out

    def evaluate(self, test: Any, filter_triples: Any, ties: str = "realistic",
                 per_relation: bool = True) -> dict[str, Any]:
        """Filtered link-prediction metrics of the rules on ``test``, in the format of
        :func:`nesy.kge.evaluate.evaluate` (MR, MRR, Hits@1/3/10 overall, per direction and
        per relation); both arguments id triples or, when the graph has labels, label
        triples."""
        if ties not in TIES:
            raise ValueError(f"ties: expected one of {TIES}, got {ties!r}")
        t = self.graph.triple_ids(test, "test")
        if t.shape[0] == 0:
            raise ValueError("test: nothing to evaluate (0 triples)")
        r = self.ranks(t, filter_triples)
        return summarise_ranks(t, r["head"][ties], r["tail"][ties], per_relation)

    # ------------------------------------------------------------------ files
    def save(self, path: Union[str, os.PathLike[str]], format: Optional[str] = None) -> None:
        """Write the rules and metrics atomically: readable text (one rule a line with its
        metrics) or JSON when ``path`` ends in ``.json`` (or ``format="json"``). The file also
        keeps ``pc``, ``aggregation`` and ``exclude_query`` (a header comment of the text
        format, a ``"settings"`` entry of the JSON one), which :meth:`load` restores."""
        from nesy.rules.kg_format import save_rules
        save_rules(path, self.rules, self.metrics, self.graph.relation_names(),
                   self.graph.entity_names(), format=format, settings=self.settings())

    def settings(self) -> dict[str, Any]:
        """``pc``, ``aggregation`` and ``exclude_query``: how the rules predict (saved with
        them)."""
        return {"pc": self.pc, "aggregation": self.aggregation,
                "exclude_query": self.exclude_query}

    @classmethod
    def load(cls, path: Union[str, os.PathLike[str]], graph: Any, remeasure: bool = False,
             **kwargs: Any) -> KGRuleSet:
        """Read a rule file written by :meth:`save` (labels resolved against ``graph``). With
        ``remeasure``, metrics are recomputed on ``graph`` instead of taken from the file.

        ``kwargs`` (``pc``, ``aggregation``, ``exclude_query``, ``info``) go to the
        constructor; ``pc``, ``aggregation`` and ``exclude_query`` not given are those the
        file keeps (files of older versions keep none: the constructor's defaults)."""
        from nesy.rules.kg_format import read_rule_file
        g = KGGraph.of(graph)
        rows, metrics, settings = read_rule_file(path, g.relation_names(), g.entity_names())
        if remeasure or not {"support", "body_pairs"} <= set(metrics):
            metrics = rule_metrics(g, rows)
        return cls(rows, metrics, g, **{**settings, **kwargs})
