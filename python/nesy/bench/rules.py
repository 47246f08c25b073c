"""Knowledge-graph rule benchmark (issue 9): exact metrics of every length-2 closed-path rule
(nesy vs a SciPy sparse implementation), and rule application to every filtered test query
(queries per second and memory), on UMLS and WN18RR.

Length-2 rules: ``h(X,Y) <- a1(X,Z), a2(Z,Y)`` for every head relation ``h`` and every pair of
atoms (a relation read forwards or inverted), ``n_rel * (2 n_rel)^2`` rules, each with support,
body pairs, PCA body pairs, head facts, head coverage, standard and PCA confidence (AMIE 3).
The SciPy anchor (:func:`scipy_length2_metrics`) multiplies the atom adjacency matrices (one
sparse product for a block of first atoms against all second atoms side by side), and counts
the support of every head at once by looking the body pairs up among the head facts.

WN18RR is read from ``$NESY_WN18RR`` or ``/work/shared/data/kg/wn18rr`` and skipped (with a
note) when that folder is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from nesy.bench import best_time, format_table

WN18RR_DEFAULT = "/work/shared/data/kg/wn18rr"
#: ``mine`` settings for WN18RR (AnyBURL-like: long closed paths, every confidence >= 0.01);
#: the other graphs use ``mine``'s defaults.
WN18RR_MINE = dict(max_length=3, max_length_acyclic=1, min_head_coverage=0.0,
                   min_confidence=0.01)
#: quick mode (a smoke run of a few seconds): UMLS, closed paths of length <= 2 only.
QUICK_MINE = dict(max_length=2, max_length_acyclic=0)
#: Upper bound on the paths (entries before merging) of one SciPy product; bounds its memory.
PATH_BUDGET = 1 << 23
COUNTS = ("support", "body_pairs", "pca_body_pairs", "head_facts")


def wn18rr_path() -> str:
    return os.environ.get("NESY_WN18RR", WN18RR_DEFAULT)


def datasets(quick: bool) -> list[tuple[str, Any]]:
    """``(name, KGData)`` of the graphs to run: UMLS, and WN18RR unless ``quick`` or missing."""
    from nesy.datasets import load_kg

    out = [("UMLS", load_kg("umls"))]
    if not quick:
        path = wn18rr_path()
        if os.path.isdir(path):
            out.append(("WN18RR", load_kg(path)))
        else:
            print(f"(WN18RR skipped: no folder {path}; set NESY_WN18RR)")
    return out


# --------------------------------------------------------------------------- rule rows
def length2_rows(n_rel: int) -> np.ndarray:
    """Every length-2 closed-path rule row ``(n_rel * (2 n_rel)^2, 11)``, ordered by head, then
    first atom code, then second atom code (atom code ``2 * relation + inverse``), the order
    of :func:`nesy.rules.kg.length2_metrics`."""
    a = np.arange(2 * n_rel)
    rows = np.zeros((n_rel, a.size, a.size, 11), dtype=np.int64)
    rows[..., 1] = np.arange(n_rel)[:, None, None]
    rows[..., [3, 4, 9]] = -1
    rows[..., 5], rows[..., 6] = (a // 2)[:, None], (a % 2)[:, None]
    rows[..., 7], rows[..., 8] = a // 2, a % 2
    return rows.reshape(-1, 11)


# --------------------------------------------------------------------------- SciPy anchor
@dataclass
class ScipyIndex:
    """What :func:`scipy_length2_metrics` builds once per graph.

    Columns of the side-by-side matrices are ``atom * stride + entity`` with ``stride`` the
    power of two ``2^shift >= n_ent`` (shifts and masks, no divisions, split them).

    Attributes
    ----------
    left : scipy.sparse.csr_matrix, shape (2 n_rel n_ent, n_ent)
        Boolean adjacency of every atom (code ``2 r + inverse``) stacked: row ``a n_ent + x``.
    right : scipy.sparse.csr_matrix, shape (n_ent, 2 n_rel stride)
        Every atom's adjacency side by side (the second atom of every body at once).
    facts : ndarray of int64, shape (n_pairs,)
        Sorted distinct ``x * stride + y`` of the pairs with at least one head fact.
    lookup : ndarray of int32, shape (n_ent stride,), optional
        ``facts`` inverted (pair -> position or -1), when small enough; else ``maybe``, a
        boolean table of ``pair mod 2^24`` that filters the pairs before a binary search.
    pair_heads : scipy.sparse.csr_matrix, shape (n_pairs, n_rel)
        Which relations hold for each pair of ``facts``.
    subjects : scipy.sparse.csr_matrix, shape (n_ent, n_rel + 1)
        ``1`` where entity ``x`` has an edge ``h(x, .)``; last column all ones.
    head_facts : ndarray of int64, shape (n_rel,)
    paths : ndarray of int64, shape (2 n_rel,)
        Paths (entries before merging) of the product of each first atom with ``right``.
    """

    n_ent: int
    n_rel: int
    shift: int
    left: Any
    right: Any
    facts: np.ndarray
    lookup: Optional[np.ndarray]
    maybe: Optional[np.ndarray]
    pair_heads: Any
    subjects: Any
    head_facts: np.ndarray
    paths: np.ndarray

    @property
    def nbytes(self) -> int:
        mats = (self.left, self.right, self.pair_heads, self.subjects)
        arrays = (self.facts, self.lookup, self.maybe, self.head_facts, self.paths)
        return int(sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in mats)
                   + sum(a.nbytes for a in arrays if a is not None))


def scipy_index(triples: Any, n_ent: int, n_rel: int,
                lookup_limit: int = 1 << 24) -> ScipyIndex:
    """Build the CSR adjacency of every atom and the head-fact tables (see :class:`ScipyIndex`).
    A dense pair lookup table is used when ``n_ent * stride <= lookup_limit``."""
    import scipy.sparse as sp

    t = np.unique(np.asarray(triples, dtype=np.int64).reshape(-1, 3), axis=0)
    n, a_all = int(n_ent), 2 * int(n_rel)
    shift = max(1, (n - 1).bit_length())
    s, r, o = t[:, 0], t[:, 1], t[:, 2]
    # atom 2r reads s -> o, atom 2r + 1 reads o -> s
    first = np.concatenate([s, o])
    second = np.concatenate([o, s])
    code = np.concatenate([2 * r, 2 * r + 1])
    ones = np.ones(2 * len(t), dtype=bool)
    left = sp.csr_matrix((ones, (code * n + first, second)), shape=(a_all * n, n))
    right = sp.csr_matrix((ones, (first, (code << shift) | second)),
                          shape=(n, a_all << shift))
    facts, pos = np.unique((s << shift) | o, return_inverse=True)
    pair_heads = sp.csr_matrix((np.ones(len(t)), (pos.ravel(), r)), shape=(len(facts), n_rel))
    lookup = maybe = None
    if n << shift <= lookup_limit:
        lookup = np.full(n << shift, -1, dtype=np.int32)
        lookup[facts] = np.arange(len(facts), dtype=np.int32)
    else:
        maybe = np.zeros(1 << 24, dtype=bool)
        maybe[facts & ((1 << 24) - 1)] = True
    subj = sp.csr_matrix((np.ones(len(t) + n), (np.concatenate([s, np.arange(n)]),
                                               np.concatenate([r, np.full(n, n_rel)]))),
                         shape=(n, n_rel + 1))
    subj.sum_duplicates()
    subj.data[:] = 1.0  # one per (x, h), however many facts
    head_facts = np.bincount(r, minlength=n_rel).astype(np.int64)
    # Paths through z of atom a then any atom: in-degree of z along a x out-degree of z.
    out_deg = np.diff(right.indptr)
    rows_deg = (left @ sp.csr_matrix(out_deg[:, None].astype(np.float64))).toarray().ravel()
    paths = np.rint(rows_deg.reshape(a_all, n).sum(axis=1)).astype(np.int64)
    return ScipyIndex(n, int(n_rel), shift, left, right, facts, lookup, maybe, pair_heads,
                      subj, head_facts, paths)


def _blocks(paths: np.ndarray, budget: int) -> list[range]:
    """Consecutive first atoms grouped so each group's product stays within ``budget`` paths
    (a single atom above it gets a block of its own)."""
    out, start, acc = [], 0, 0
    for a, p in enumerate(paths):
        if a > start and acc + p > budget:
            out.append(range(start, a))
            start, acc = a, 0
        acc += int(p)
    out.append(range(start, len(paths)))
    return out


def _positions(ix: ScipyIndex, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``pairs`` of the head-fact pairs and their positions in ``ix.facts``."""
    if ix.lookup is not None:
        pos = ix.lookup[pairs]
        hit = np.flatnonzero(pos >= 0)
        return hit, pos[hit]
    cand = np.flatnonzero(ix.maybe[pairs & ((1 << 24) - 1)])
    pos = np.minimum(np.searchsorted(ix.facts, pairs[cand]), len(ix.facts) - 1)
    ok = ix.facts[pos] == pairs[cand]
    return cand[ok], pos[ok]


def _block_counts(ix: ScipyIndex, block: range) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Support ``(R, g, 2R)``, body pairs ``(g, 2R)`` and PCA body pairs ``(R, g, 2R)`` of the
    bodies whose first atom is in ``block`` (``g`` atoms)."""
    import scipy.sparse as sp

    n, n_rel, a_all, g = ix.n_ent, ix.n_rel, 2 * ix.n_rel, len(block)
    # rows (first atom, x), columns (second atom, y): the body pairs of every body of the block
    c = ix.left[block.start * n:block.stop * n] @ ix.right
    per_row = np.diff(c.indptr)
    a2 = c.indices >> ix.shift
    # Body and PCA body pairs: distinct (row, second atom) counts, then summed over x per head.
    p = sp.csr_matrix((np.ones(c.nnz, dtype=np.int32), a2, c.indptr), shape=(g * n, a_all))
    p = (p @ sp.identity(a_all, dtype=np.int32, format="csr")).tocoo()  # merges duplicates
    gi, x = np.divmod(p.row.astype(np.int64), n)
    y_of = sp.csr_matrix((p.data.astype(np.float64), (x, gi * a_all + p.col)),
                         shape=(n, g * a_all))
    counts = np.rint((y_of.T @ ix.subjects).toarray())  # (g 2R, R + 1)
    body_pairs = counts[:, n_rel].astype(np.int64).reshape(g, a_all)
    pca = counts[:, :n_rel].T.astype(np.int64).reshape(n_rel, g, a_all)
    # Support: the body pairs that are head facts, grouped by body, times the heads of each.
    x = np.repeat(np.arange(g * n, dtype=np.int64) % n, per_row)
    pairs = (x << ix.shift) | (c.indices & ((1 << ix.shift) - 1))
    hit, pos = _positions(ix, pairs)
    rows = (np.searchsorted(c.indptr, hit, side="right") - 1) // n * a_all + a2[hit]
    order = rows.astype(np.int32 if g * a_all >= 1 << 15 else np.int16).argsort(kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=g * a_all))])
    w = sp.csr_matrix((np.ones(len(hit)), pos[order], indptr),
                      shape=(g * a_all, len(ix.facts)))
    support = np.rint((w @ ix.pair_heads).toarray()).T.astype(np.int64)
    return support.reshape(n_rel, g, a_all), body_pairs, pca


def scipy_length2_metrics(triples: Any, n_ent: int, n_rel: int,
                          index: Optional[ScipyIndex] = None,
                          budget: int = PATH_BUDGET) -> dict[str, np.ndarray]:
    """Exact metrics of every length-2 closed-path rule with SciPy sparse products.

    Parameters
    ----------
    triples : ndarray of int, shape (n, 3)
    n_ent, n_rel : int
    index : ScipyIndex, optional
        From :func:`scipy_index` (built here when not given).
    budget : int
        Most paths per sparse product: first atoms are multiplied in blocks within it.

    Returns
    -------
    dict
        As :func:`nesy.rules.kg.rule_metrics`, one entry per row of :func:`length2_rows`
        (head-major, then first atom code, then second atom code).
    """
    ix = scipy_index(triples, n_ent, n_rel) if index is None else index
    a_all = 2 * ix.n_rel
    support = np.zeros((ix.n_rel, a_all, a_all), dtype=np.int64)
    body_pairs = np.zeros((a_all, a_all), dtype=np.int64)
    pca = np.zeros((ix.n_rel, a_all, a_all), dtype=np.int64)
    for block in _blocks(ix.paths, budget):
        if ix.paths[block.start:block.stop].sum() == 0:
            continue  # every product of the block is empty
        s, b, p = _block_counts(ix, block)
        support[:, block.start:block.stop] = s
        body_pairs[block.start:block.stop] = b
        pca[:, block.start:block.stop] = p
    return _metrics(support, body_pairs, pca, ix.head_facts)


def scipy_length2_per_pair(triples: Any, n_ent: int, n_rel: int,
                           index: Optional[ScipyIndex] = None) -> dict[str, np.ndarray]:
    """The same metrics as :func:`scipy_length2_metrics`, in the literal formulation: one sparse
    product ``B = A1 @ A2`` per pair of atoms (empty ones skipped), every head at once from
    ``B``'s rows and its pairs looked up among the head facts. Shown for context: the blocked
    side-by-side products of :func:`scipy_length2_metrics` are the anchor."""
    ix = scipy_index(triples, n_ent, n_rel) if index is None else index
    n, a_all, n_rel = ix.n_ent, 2 * ix.n_rel, ix.n_rel
    atoms = [ix.left[a * n:(a + 1) * n] for a in range(a_all)]
    subjects = ix.subjects.toarray()
    support = np.zeros((n_rel, a_all, a_all), dtype=np.int64)
    body_pairs = np.zeros((a_all, a_all), dtype=np.int64)
    pca = np.zeros((n_rel, a_all, a_all), dtype=np.int64)
    for a1 in np.flatnonzero([m.nnz for m in atoms]):
        for a2 in np.flatnonzero([m.nnz for m in atoms]):
            b = atoms[a1] @ atoms[a2]
            if b.nnz == 0:
                continue
            per_x = np.diff(b.indptr)
            counts = np.rint(per_x @ subjects).astype(np.int64)
            body_pairs[a1, a2], pca[:, a1, a2] = counts[n_rel], counts[:n_rel]
            x = np.repeat(np.arange(n, dtype=np.int64), per_x)
            _, pos = _positions(ix, (x << ix.shift) | b.indices)
            support[:, a1, a2] = np.rint(ix.pair_heads[pos].sum(axis=0)).astype(np.int64)
    return _metrics(support, body_pairs, pca, ix.head_facts)


def _metrics(support: np.ndarray, body_pairs: np.ndarray, pca: np.ndarray,
             head_facts: np.ndarray) -> dict[str, np.ndarray]:
    """The metric dict of every length-2 rule from counts ``(R, 2R, 2R)``, ``(2R, 2R)``,
    ``(R, 2R, 2R)`` and ``(R,)``, flattened in row order."""
    shape = support.shape
    out = {"support": support.ravel(),
           "body_pairs": np.broadcast_to(body_pairs, shape).ravel(),
           "pca_body_pairs": pca.ravel(),
           "head_facts": np.broadcast_to(head_facts[:, None, None], shape).ravel()}
    out["head_coverage"] = _ratio(out["support"], out["head_facts"])
    out["std_confidence"] = _ratio(out["support"], out["body_pairs"])
    out["pca_confidence"] = _ratio(out["support"], out["pca_body_pairs"])
    return out


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b``, 0 where ``b == 0`` (the spec's convention)."""
    out = np.zeros(a.shape)
    np.divide(a, b, out=out, where=b > 0)
    return out


# --------------------------------------------------------------------------- nesy side
def nesy_length2(graph: Any) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """Every length-2 closed-path rule and its metrics with nesy: ``length2_metrics`` (one
    Rust call, each body shared by every head) when the extension has it, else
    ``rule_metrics`` on :func:`length2_rows`. Returns ``(rows, metrics, which)``."""
    from nesy import _core
    from nesy.rules import kg

    if hasattr(kg, "length2_metrics") and hasattr(_core, "rules_length2"):
        rows, metrics = kg.length2_metrics(graph)
        return rows, metrics, "length2_metrics"
    g = kg.KGGraph.of(graph)
    rows = length2_rows(g.n_relations)
    return rows, kg.rule_metrics(g, rows), "rule_metrics"


def check_same(rows: np.ndarray, nesy_m: dict[str, np.ndarray],
               scipy_m: dict[str, np.ndarray], n_rel: int) -> None:
    """Raise ``AssertionError`` unless nesy and SciPy agree: same rows, identical counts,
    ratios equal to 1e-12."""
    if not np.array_equal(rows, length2_rows(n_rel)):
        raise AssertionError("nesy's length-2 rows are not in head, a1, a2 order")
    for k in COUNTS:
        if not np.array_equal(nesy_m[k], scipy_m[k]):
            bad = np.flatnonzero(nesy_m[k] != scipy_m[k])
            raise AssertionError(f"{k}: nesy and SciPy differ on {len(bad)} rules, e.g. row "
                                 f"{rows[bad[0]].tolist()}: {nesy_m[k][bad[0]]} vs "
                                 f"{scipy_m[k][bad[0]]}")
    for k in ("head_coverage", "std_confidence", "pca_confidence"):
        np.testing.assert_allclose(nesy_m[k], scipy_m[k], rtol=1e-12, atol=0, err_msg=k)


def length2_case(name: str, data: Any, repeat: int, per_pair: bool = True) -> dict[str, Any]:
    """Seconds of nesy and SciPy for every length-2 rule of ``data.train`` (best of
    ``repeat`` after a warm-up), their index build times and sizes; checks they agree. With
    ``per_pair``, also the literal one-product-per-atom-pair SciPy formulation (no warm-up)."""
    from nesy.rules.kg import KGGraph

    train, n, r = data.train, data.n_entities, data.n_relations
    t_ix_nesy = best_time(lambda: KGGraph.of(data).index, repeat, 1)
    g = KGGraph.of(data)
    t_ix_scipy = best_time(lambda: scipy_index(train, n, r), repeat, 1)
    ix = scipy_index(train, n, r)
    rows, nesy_m, which = nesy_length2(g)
    scipy_m = scipy_length2_metrics(train, n, r, index=ix)
    check_same(rows, nesy_m, scipy_m, r)
    t_nesy = best_time(lambda: nesy_length2(g), repeat, 1)
    t_scipy = best_time(lambda: scipy_length2_metrics(train, n, r, index=ix), repeat, 1)
    t_rows = best_time(lambda: length2_rows(r), repeat, 1)
    t_pair = None
    if per_pair:
        check_same(rows, nesy_m, scipy_length2_per_pair(train, n, r, index=ix), r)
        t_pair = best_time(lambda: scipy_length2_per_pair(train, n, r, index=ix), repeat, 0)
    return {"graph": name, "rules": int(rows.shape[0]), "which": which, "rows": t_rows,
            "with_support": int((nesy_m["support"] > 0).sum()),
            "body_pairs": int(scipy_m["body_pairs"].reshape(r, -1)[0].sum()),
            "nesy": t_nesy, "scipy": t_scipy, "per_pair": t_pair, "nesy_index": t_ix_nesy,
            "nesy_index_bytes": int(g.index.nbytes), "scipy_index": t_ix_scipy,
            "scipy_index_bytes": ix.nbytes}


# --------------------------------------------------------------------------- application
def _proc_status(key: str) -> Optional[int]:
    """``VmRSS``/``VmHWM`` of this process in bytes (None where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: ``5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def application_child(spec_path: str) -> None:
    """Run in a fresh process by :func:`application_case`: load the graph and the rules, build
    the index, then time ``KGRuleSet.ranks`` on the test split (both directions), measuring the
    process's peak RSS during the first call above its RSS just before it. Prints one JSON
    line."""
    from nesy.datasets import load_kg
    from nesy.kge.evaluate import rank_metrics
    from nesy.rules.kg import METRICS, KGRuleSet

    with open(spec_path) as f:
        spec = json.load(f)
    data = load_kg(spec["data"])
    z = np.load(spec["rules"])
    rs = KGRuleSet(z["rules"], {k: z[k] for k in METRICS}, data)
    t0 = time.perf_counter()
    index_bytes = int(rs.graph.index.nbytes)
    t_index = time.perf_counter() - t0
    test, known = data.test, data.all_triples()
    reset = _reset_peak()
    before = _proc_status("VmRSS")
    t0 = time.perf_counter()
    ranks = rs.ranks(test, known)
    times = [time.perf_counter() - t0]
    peak = _proc_status("VmHWM")
    for _ in range(int(spec["repeat"]) - 1):
        t0 = time.perf_counter()
        rs.ranks(test, known)
        times.append(time.perf_counter() - t0)
    summary = rank_metrics(np.concatenate([ranks["head"]["realistic"],
                                           ranks["tail"]["realistic"]]))
    growth = None if before is None or peak is None else peak - before
    print(json.dumps({"seconds": min(times), "queries": 2 * int(test.shape[0]),
                      "widest_query": int(rs.info_["widest_query"]), "index_bytes": index_bytes,
                      "index_seconds": t_index, "rss_before": before, "peak_growth": growth,
                      "peak_was_reset": reset, "mrr": summary["mrr"],
                      "hits@1": summary["hits@1"], "hits@10": summary["hits@10"]}))


def application_case(name: str, source: str, data: Any, mine_kwargs: dict[str, Any],
                     repeat: int) -> dict[str, Any]:
    """Mine the rules of ``data`` here, then time their application to every filtered test query
    in a fresh Python process (:func:`application_child`; ``source`` is what ``load_kg`` reads
    there)."""
    from nesy.rules.kg import mine

    rs = mine(data, verbose=0, **mine_kwargs)
    with tempfile.TemporaryDirectory() as tmp:
        rules = os.path.join(tmp, "rules.npz")
        np.savez(rules, rules=rs.rules, **rs.metrics)
        spec = os.path.join(tmp, "spec.json")
        with open(spec, "w") as f:
            json.dump({"data": source, "rules": rules, "repeat": int(repeat)}, f)
        code = "import sys; from nesy.bench.rules import application_child; " \
               "application_child(sys.argv[1])"
        out = subprocess.run([sys.executable, "-c", code, spec], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{name}: the rule application process failed:\n{out.stderr}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    kinds = np.bincount(rs.rules[:, 0], minlength=3)
    res.update(graph=name, rules=len(rs), kinds=kinds.tolist(), mine_seconds=rs.info_["seconds"],
               mine_kwargs=mine_kwargs)
    return res


# --------------------------------------------------------------------------- report
def _mb(b: Optional[float]) -> str:
    return "-" if b is None else f"{b / 2**20:.1f} MB"


def length2_table(cases: list[dict[str, Any]]) -> str:
    body = []
    for c in cases:
        body.append([c["graph"], f"{c['rules']:,}", f"{c['with_support']:,}",
                     f"{c['body_pairs']:,}", f"{1e3 * c['nesy']:.1f}",
                     f"{1e3 * c['scipy']:.1f}", f"{c['scipy'] / c['nesy']:.1f}",
                     "-" if c["per_pair"] is None else
                     f"{1e3 * c['per_pair']:.0f} ({c['per_pair'] / c['nesy']:.1f}x)",
                     f"{1e3 * c['nesy_index']:.1f} ({_mb(c['nesy_index_bytes'])})",
                     f"{1e3 * c['scipy_index']:.1f} ({_mb(c['scipy_index_bytes'])})"])
    return format_table(["graph", "rules", "with support", "body pairs", "nesy ms", "SciPy ms",
                         "nesy x faster", "SciPy per atom pair ms (nesy x)",
                         "nesy index ms (size)", "SciPy index ms (size)"], body)


def application_table(cases: list[dict[str, Any]]) -> str:
    body = []
    for c in cases:
        growth = _mb(c["peak_growth"]) if c["peak_was_reset"] else f"<= {_mb(c['peak_growth'])}"
        body.append([c["graph"], f"{c['rules']:,} ({c['mine_seconds']:.1f} s)",
                     f"{c['queries']:,}", f"{c['seconds']:.2f}",
                     f"{c['queries'] / c['seconds']:,.0f}", f"{c['widest_query']:,}",
                     _mb(c["index_bytes"]), growth, f"{c['mrr']:.3f}", f"{c['hits@1']:.3f}",
                     f"{c['hits@10']:.3f}"])
    return format_table(["graph", "rules (mining)", "queries", "s", "queries/s",
                         "widest query", "index", "peak memory growth", "MRR", "Hits@1",
                         "Hits@10"], body)


def main(quick: bool = False, repeat: int = 3) -> None:
    """Print both tables (``nesy bench rules``; ``quick``: UMLS only, small settings)."""
    import nesy

    repeat = 1 if quick else max(1, int(repeat))
    cmd = "nesy bench rules" + (" --quick" if quick else "") + \
        (f" --repeat {repeat}" if repeat != 3 and not quick else "")
    print(f"reproduce: {cmd}   (or: python -m nesy.bench.rules{cmd[16:]})")
    print(f"nesy threads: {nesy.get_num_threads()} (SciPy's sparse products run on one thread)")
    graphs = datasets(quick)
    cases = [length2_case(name, data, repeat, per_pair=not quick) for name, data in graphs]
    which = {c["which"] for c in cases}
    print(f"\nConfidence of all length-2 closed-path rules h(X,Y) <- a1(X,Z), a2(Z,Y) "
          f"(n_rel * (2 n_rel)^2 rules; support, body and PCA body pairs, head coverage, std and "
          f"PCA confidence), best of {repeat}; nesy: {', '.join(sorted(which))}; counts "
          f"checked identical")
    print(length2_table(cases))
    print("nesy returns the rule rows (m, 11) with the metrics; SciPy the metrics only, in row "
          "order (NumPy builds the rows in " + ", ".join(
              f"{1e3 * c['rows']:.1f} ms for {c['graph']}" for c in cases) + "). Index: "
          "nesy's RuleGraph; SciPy's atom matrices, head-fact tables and lookup (built once).")
    print("SciPy: a sparse product of a block of first atoms against every second atom side by "
          "side, the body pairs looked up among the head facts (the anchor); per atom pair: one "
          "product A1 @ A2 per pair (the literal formulation, for context).")
    apps = []
    for name, data in graphs:
        source = "umls" if name == "UMLS" else wn18rr_path()
        kwargs = QUICK_MINE if quick else (WN18RR_MINE if name == "WN18RR" else {})
        apps.append(application_case(name, source, data, dict(kwargs), repeat))
    print(f"\nRule application: filtered ranks of every test triple (head and tail queries), "
          f"best of {repeat}, in a fresh process; rules mined with mine(...), "
          f"aggregation maxplus, pc = 5")
    for a in apps:
        args = ", ".join(f"{k}={v}" for k, v in a["mine_kwargs"].items()) or "defaults"
        print(f"  {a['graph']}: mine({args}) -> {a['kinds'][0]:,} closed, "
              f"{a['kinds'][1]:,} end-constant, {a['kinds'][2]:,} dangling")
    print(application_table(apps))
    print("peak memory growth: the process's peak RSS (VmHWM, reset just before) during the first "
          "call, minus its RSS before it; index: the rule graph's adjacency index (built before)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    main(quick=args.quick, repeat=args.repeat)
