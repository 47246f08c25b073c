"""Knowledge-graph embedding benchmark: 1-vs-all scoring against every entity (nesy vs the
PyTorch formulations PyKEEN-style code uses), filtered evaluation on Kinship and UMLS and
training throughput on Kinship (nesy vs PyKEEN, when PyKEEN is importable), with the GEMM peak
measured in the same run.

Scoring: 1,000 queries x 14,541 entities (FB15k-237's count), d = 200 (ComplEx and RotatE: 200
complex dimensions, 400 reals), float32. torch's RotatE is the broadcast ``|h o r - t|`` over
complex tensors, run on a slice of the queries (it needs ~minutes for all) and scaled to 1,000.
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any

import numpy as np

from nesy.bench import best_time, format_table, settled_time

N_ENT, N_QUERIES, DIM = 14_541, 1_000, 200
QUICK = (2_000, 100, 64)
TORCH_ROTATE_QUERIES = 25


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def gemm_peak(repeat: int = 3) -> float:
    """GFLOP/s of a 2048^3 float32 matrix product with nesy's threads (torch when importable,
    with as many threads as nesy; else NumPy's BLAS with its own threads)."""
    import nesy

    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    if available("torch"):
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(nesy.get_num_threads())
        ta = torch.from_numpy(a)
        t = best_time(lambda: ta @ ta, repeat, 1)
        torch.set_num_threads(before)
    else:
        t = best_time(lambda: a @ a, repeat, 1)
    return 2 * 2048**3 / t / 1e9


def _tables(model: str, n_ent: int, dim: int, rng: np.random.Generator):
    from nesy.kge import widths

    d_e, d_r = widths(model, dim)
    ent = rng.standard_normal((n_ent, d_e), dtype=np.float32)
    rel = rng.standard_normal((16, d_r), dtype=np.float32)
    return ent, rel


def _torch_scorer(model: str, ent: np.ndarray, rel: np.ndarray, heads, rels):
    """The PyTorch formulation of 1-vs-all tail scores, as a zero-argument callable."""
    import torch

    e, r = torch.from_numpy(ent), torch.from_numpy(rel)
    h, rr = torch.from_numpy(heads), torch.from_numpy(rels)
    if model in ("transe_l1", "transe_l2"):
        p = 1 if model == "transe_l1" else 2
        return lambda: -torch.cdist(e[h] + r[rr], e, p=p)
    if model == "distmult":
        return lambda: (e[h] * r[rr]) @ e.T
    k = ent.shape[1] // 2
    ec = torch.complex(e[:, :k].contiguous(), e[:, k:].contiguous())
    if model == "complex":
        rc = torch.complex(r[:, :k].contiguous(), r[:, k:].contiguous())
        return lambda: ((ec[h] * rc[rr]) @ ec.conj().T).real
    rc = torch.polar(torch.ones_like(r), r)
    return lambda: -(((ec[h] * rc[rr])[:, None, :] - ec[None]).abs().sum(-1))


def _call(f, *args: Any, **kwargs: Any):
    """``lambda: f(*args, **kwargs)`` with the arguments bound now (not at call time)."""
    return lambda: f(*args, **kwargs)


def scoring(quick: bool = False, repeat: int = 5) -> list[dict[str, Any]]:
    """1-vs-all tail scores of every model: nesy and torch times (ms)."""
    from nesy.kge import MODELS, score_tails

    n_ent, nq, dim = QUICK if quick else (N_ENT, N_QUERIES, DIM)
    rng = np.random.default_rng(0)
    heads = rng.integers(0, n_ent, nq)
    rels = rng.integers(0, 16, nq)
    rows = []
    for model in MODELS:
        ent, rel = _tables(model, n_ent, dim, rng)
        row: dict[str, Any] = {"model": model, "nesy": settled_time(
            _call(score_tails, model, ent, rel, heads, rels), repeat, 1)}
        if available("torch"):
            import torch

            with torch.no_grad():
                if model == "rotate":
                    m = min(nq, TORCH_ROTATE_QUERIES)
                    f = _torch_scorer(model, ent, rel, heads[:m], rels[:m])
                    row["torch"] = best_time(f, 1, 0) * nq / m
                    row["torch note"] = f"{m} queries, scaled"
                else:
                    f = _torch_scorer(model, ent, rel, heads, rels)
                    row["torch"] = settled_time(f, max(1, repeat // 2), 1)
        row["macs"] = nq * n_ent * ent.shape[1]
        rows.append(row)
    return rows


def _triples(name: str = "kinship"):
    from nesy.datasets import load_kg

    return load_kg(name)


def evaluation(repeat: int = 3, name: str = "kinship") -> list[dict[str, Any]]:
    """Filtered evaluation of a shipped data set's test split (both directions), per model:
    nesy (s)."""
    from nesy.kge import MODELS, evaluate

    data = _triples(name)
    known = data.all_triples()
    rng = np.random.default_rng(1)
    rows = []
    for model in MODELS:
        ent, rel = _tables(model, data.n_entities, DIM, rng)
        rel = rel[: data.n_relations].copy() if rel.shape[0] >= data.n_relations else \
            np.resize(rel, (data.n_relations, rel.shape[1]))
        rows.append({"model": model, "nesy": best_time(
            _call(evaluate, model, ent, rel, data.test, known, per_relation=False), repeat, 1)})
    return rows


def training(epochs: int = 2, quick: bool = False) -> list[dict[str, Any]]:
    """sLCWA training throughput on Kinship, PyKEEN's setting: d = 200, 64 uniform negatives per
    positive, batch 512, Adam lr 1e-3, margin loss (TransE), softplus (DistMult),
    self-adversarial (RotatE). Positive triples per second."""
    from nesy.kge import KGEModel

    data = _triples("kinship")
    losses = {"transe_l1": "margin", "transe_l2": "margin", "distmult": "softplus",
              "rotate": "self_adversarial"}
    rows = []
    for model, loss in losses.items():
        m = KGEModel(model, dim=64 if quick else DIM, loss=loss, num_negatives=64,
                     batch_size=512, optimizer="adam", lr=1e-3, epochs=epochs, eval_every=0,
                     verbose=0)
        t0 = time.perf_counter()
        m.fit(data)
        rows.append({"model": model,
                     "nesy": epochs * len(data.train) / (time.perf_counter() - t0)})
    return rows


def _pykeen_split(name: str):
    """PyKEEN triples factories (train, valid, test) of a shipped data set's files."""
    import os

    from pykeen.triples import TriplesFactory

    from nesy.datasets.kg import _resolve

    folder = _resolve(name)[2]
    train = TriplesFactory.from_path(os.path.join(folder, "train.txt"))
    kw = dict(entity_to_id=train.entity_to_id, relation_to_id=train.relation_to_id)
    valid = TriplesFactory.from_path(os.path.join(folder, "valid.txt"), **kw)
    test = TriplesFactory.from_path(os.path.join(folder, "test.txt"), **kw)
    return train, valid, test


def _pykeen_models(train) -> dict[str, Any]:
    from pykeen.models import DistMult, RotatE, TransE

    return {
        "transe_l1": lambda: TransE(triples_factory=train, embedding_dim=DIM, scoring_fct_norm=1),
        "transe_l2": lambda: TransE(triples_factory=train, embedding_dim=DIM, scoring_fct_norm=2),
        "distmult": lambda: DistMult(triples_factory=train, embedding_dim=DIM),
        "rotate": lambda: RotatE(triples_factory=train, embedding_dim=DIM),
    }


def _pykeen_eval_time(model, valid, test, train) -> float:
    """Best of three of PyKEEN's filtered rank-based evaluation of ``test`` (s)."""
    from pykeen.evaluation import RankBasedEvaluator

    model.eval()
    ev = RankBasedEvaluator(filtered=True)
    filt = [train.mapped_triples, valid.mapped_triples]
    return best_time(_call(ev.evaluate, model, test.mapped_triples,
                           additional_filter_triples=filt, use_tqdm=False), 3, 0)


def pykeen_training_and_eval(epochs: int = 2) -> dict[str, dict[str, float]]:
    """PyKEEN's sLCWA throughput (positives/s) and filtered evaluation time (s) on Kinship, in
    the setting of :func:`training` (PyKEEN's RotatE scores with an L2 norm: noted)."""
    import torch
    from pykeen.training import SLCWATrainingLoop

    torch.manual_seed(0)
    train, valid, test = _pykeen_split("kinship")
    out: dict[str, dict[str, float]] = {}
    for name, make in _pykeen_models(train).items():
        model = make()
        loop = SLCWATrainingLoop(model=model, triples_factory=train, optimizer="Adam",
                                 optimizer_kwargs=dict(lr=1e-3), negative_sampler="basic",
                                 negative_sampler_kwargs=dict(num_negs_per_pos=64))
        loop.train(triples_factory=train, num_epochs=1, batch_size=512, use_tqdm=False)
        t0 = time.perf_counter()
        loop.train(triples_factory=train, num_epochs=1 + epochs, batch_size=512,
                   use_tqdm=False, continue_training=True)
        rate = epochs * train.num_triples / (time.perf_counter() - t0)
        out[name] = {"train": rate, "eval": _pykeen_eval_time(model, valid, test, train)}
    return out


def pykeen_eval(name: str) -> dict[str, dict[str, float]]:
    """PyKEEN's filtered evaluation time (s) of a data set's test split, per model, with
    freshly initialised embeddings (the work per query does not depend on their values)."""
    import torch

    torch.manual_seed(0)
    train, valid, test = _pykeen_split(name)
    return {m: {"eval": _pykeen_eval_time(make(), valid, test, train)}
            for m, make in _pykeen_models(train).items()}


def eval_table(ev: list[dict[str, Any]], pk: dict[str, dict[str, float]]) -> str:
    """A filtered-evaluation table (the PyKEEN columns only when ``pk`` has PyKEEN's times)."""
    header = ["model", "nesy eval s"] + (["PyKEEN eval s", "x faster"] if pk else [])
    body = []
    for e in ev:
        row = [e["model"], f"{e['nesy']:.3f}"]
        if pk:
            p = pk.get(e["model"])
            row += [f"{p['eval']:.3f}", f"{p['eval'] / e['nesy']:.1f}"] if p else ["-", "-"]
        body.append(row)
    return format_table(header, body)


def scoring_table(rows: list[dict[str, Any]], peak: float) -> str:
    """The 1-vs-all table of :func:`scoring`'s rows (the torch columns only when torch ran)."""
    torch_ran = any("torch" in r for r in rows)
    header = ["model", "nesy ms"] + (["torch ms", "x faster"] if torch_ran else []) + [
        "nesy G element-ops/s", "how close to the limit"]
    body = []
    for r in rows:
        gops = r["macs"] / r["nesy"] / 1e9
        if r["model"] in ("transe_l2", "distmult", "complex"):  # GEMM forms
            limit = f"{100 * 2 * gops / peak:.0f} % of the GEMM peak"
        elif r["model"] == "transe_l1":
            # Two vector operations per element, max on the add pipes and the sum as an FMA on
            # the FMA pipes: a GEMM peak of P GFLOP/s is P / 2 G FMA lanes/s, so P / 2 G
            # elements/s. That pipe split is Zen 4's (where nesy is measured); on CPUs whose
            # max shares the FMA pipes the limit is half of it.
            limit = f"{100 * gops / (peak / 2):.0f} % of the max+fma limit (Zen 4)"
        else:
            limit = "-"
        torch_cols = []
        if torch_ran:
            note = r.get("torch note", "")
            torch_cols = ([f"{1e3 * r['torch']:.1f}" + (f" ({note})" if note else ""),
                           f"{r['torch'] / r['nesy']:.1f}"] if "torch" in r else ["-", "-"])
        body.append([r["model"], f"{1e3 * r['nesy']:.1f}", *torch_cols, f"{gops:.1f}", limit])
    return format_table(header, body)


def kinship_table(ev: list[dict[str, Any]], tr: list[dict[str, Any]],
                  pk: dict[str, dict[str, float]]) -> str:
    """The Kinship evaluation and training table (the PyKEEN columns only when ``pk`` has
    PyKEEN's results)."""
    header = ["model", "nesy eval s"] + (["PyKEEN eval s", "x faster"] if pk else []) + [
        "nesy triples/s"] + (["PyKEEN triples/s", "x faster"] if pk else [])
    body = []
    for e in ev:
        t = next((x for x in tr if x["model"] == e["model"]), None)
        p = pk.get(e["model"], {})
        row = [e["model"], f"{e['nesy']:.3f}"]
        if pk:
            row += [f"{p['eval']:.3f}", f"{p['eval'] / e['nesy']:.1f}"] if p else ["-", "-"]
        row.append(f"{t['nesy']:,.0f}" if t else "1-vs-all only")
        if pk:
            row += ([f"{p['train']:,.0f}", f"{t['nesy'] / p['train']:.1f}"] if p and t
                    else ["-", "-"])
        body.append(row)
    return format_table(header, body)


def main(quick: bool = False, repeat: int = 5) -> None:
    import nesy

    threads = nesy.get_num_threads()
    # The GEMM peak after the scores: right after a 2048^3 product the first scores ran
    # ~10 % slower for seconds (no thread left spinning: the cores' state, not a thread).
    rows = scoring(quick, repeat)
    peak = gemm_peak()
    print(f"threads: {threads}; float32 GEMM peak (2048^3, torch or NumPy, {threads} threads): "
          f"{peak:.0f} GFLOP/s")
    if not available("torch"):
        print("(torch is not importable: the PyTorch columns are omitted)")
    n_ent, nq, dim = QUICK if quick else (N_ENT, N_QUERIES, DIM)
    print(f"\n1-vs-all tail scores: {nq} queries x {n_ent} entities, d = {dim}, best of {repeat}")
    print(scoring_table(rows, peak))
    print("GEMM forms count 2 flops per element-op; TransE-L1 sums max(q, e) (|a - b| = "
          "2 max(a, b) - a - b): two vector operations per element, max and an FMA, on separate "
          "pipes on Zen 4, where the limit is half the GEMM peak in elements/s.")
    ev = evaluation(max(1, repeat // 2))
    tr = training(epochs=1 if quick else 2, quick=quick)
    pk = pykeen_training_and_eval() if (available("pykeen") and not quick) else {}
    if not pk:
        why = "not run with --quick" if quick and available("pykeen") else "not importable"
        print(f"\n(PyKEEN {why}: the PyKEEN columns are omitted)")
    print("\nKinship: filtered evaluation of the test split (1,074 triples, both directions) and "
          f"sLCWA training (d = {64 if quick else DIM}, 64 negatives, batch 512, Adam)")
    print(kinship_table(ev, tr, pk))
    if quick:
        return
    umls = _triples("umls")
    ev_umls = evaluation(max(1, repeat // 2), "umls")
    pk_umls = pykeen_eval("umls") if pk else {}
    print(f"\nUMLS: filtered evaluation of the test split ({len(umls.test):,} triples, both "
          "directions)")
    print(eval_table(ev_umls, pk_umls))
    if pk:
        print("PyKEEN 1.11's RotatE scores with the L2 norm of the complex difference (not Sun et "
              "al.'s sum of moduli); the cost per score is the same.")
