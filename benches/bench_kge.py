"""pytest-benchmark suite: 1-vs-all tail scores of 1,000 queries against 14,541 entities
(d = 200), nesy vs the PyTorch formulation (cdist, matmul, complex broadcast). ``nesy bench kge``
prints the same comparison with ratios, plus evaluation and training against PyKEEN.
"""

from __future__ import annotations

import numpy as np
import pytest

from nesy.bench import kge as bench
from nesy.kge import MODELS, score_tails


@pytest.fixture(scope="module", params=MODELS)
def case(request):
    rng = np.random.default_rng(0)
    ent, rel = bench._tables(request.param, bench.N_ENT, bench.DIM, rng)
    heads = rng.integers(0, bench.N_ENT, bench.N_QUERIES)
    rels = rng.integers(0, 16, bench.N_QUERIES)
    return request.param, ent, rel, heads, rels


def test_nesy_score_tails(benchmark, case):
    model, ent, rel, heads, rels = case
    benchmark.group = f"{model}: 1-vs-all, 1000 x 14541, d=200"
    benchmark(score_tails, model, ent, rel, heads, rels)


def test_torch_score_tails(benchmark, case):
    torch = pytest.importorskip("torch")
    model, ent, rel, heads, rels = case
    if model == "rotate":
        heads, rels = heads[: bench.TORCH_ROTATE_QUERIES], rels[: bench.TORCH_ROTATE_QUERIES]
    benchmark.group = f"{model}: 1-vs-all, 1000 x 14541, d=200"
    f = bench._torch_scorer(model, ent, rel, heads, rels)
    with torch.no_grad():
        benchmark.pedantic(f, rounds=3 if model != "rotate" else 1, iterations=1)
