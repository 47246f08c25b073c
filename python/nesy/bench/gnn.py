"""Graph aggregation benchmark: sum over in-neighbours, nesy vs SciPy CSR @ dense vs
torch.sparse.mm (CSR) vs torch gather + index_add_ (PyG's scatter path), forward and
forward + backward, float32, on random graphs with power-law sources.

Effective GB/s counts the bytes an aggregation must move: every edge reads its source row
(F floats) and index (8 bytes), every node writes its output row. The limit of the forward's
gather loop is measured in the same run: ``gather limit`` reads every edge's source row with
that loop and does nothing else (no output, no row ends; ``nesy._core.gnn_gather_sum``);
``nesy fwd`` is ``nesy.gnn.aggregate`` as called by default, with its NaN test over ``x``, and
``nesy unchecked fwd`` the same with ``check_finite=False`` (as SciPy's ``A @ x``, which tests
nothing). ``% of limit`` is the limit's time over the unchecked forward's, and ``5x scipy
needs`` the share of it that five times SciPy's speed would take (above 100 %: beyond what this
gather loop can do).

``x`` starts on a 64-byte cache line, as torch places tensors and nesy's kernels their outputs,
and is the same array for every library. NumPy places large arrays 16 bytes past a line, where
every 64-byte load of a row straddles two lines (F a multiple of 16): ``nesy unchecked fwd,
x +16 B`` times nesy on a copy of ``x`` placed so (SciPy's and torch's times do not depend on
it).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from nesy._mem import aligned_copy
from nesy.bench import best_time, format_table, interleaved_times, settled_time

CASES = [(100_000, 1_000_000, 64), (100_000, 2_000_000, 16), (20_000, 400_000, 256)]
QUICK_CASES = [(20_000, 200_000, 32)]


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def random_graph(n: int, e: int, seed: int = 0) -> np.ndarray:
    """``(2, e)`` edge index: power-law sources, uniform destinations."""
    rng = np.random.default_rng(seed)
    src = (rng.pareto(1.5, e) * 100).astype(np.int64) % n
    return np.vstack([src, rng.integers(0, n, e)])


def run_case(n: int, e: int, f: int, repeat: int = 10, with_torch: bool = False
             ) -> dict[str, object]:
    """Times of one (nodes, edges, features) case for every implementation."""
    import scipy.sparse as sp

    import nesy
    from nesy import _core
    from nesy.gnn import Graph, aggregate, aggregate_backward

    ei = random_graph(n, e)
    g = Graph(ei, n)
    x = aligned_copy(np.random.default_rng(1).standard_normal((n, f), dtype=np.float32))
    x_off = aligned_copy(x, offset=16)  # where NumPy would put it
    row: dict[str, object] = {"case": f"({n // 1000}k, {e / 1e6:g}M, {f})",
                              "bytes": e * (4 * f + 8) + n * 4 * f}
    A = sp.csr_matrix((np.ones(e, np.float32), (ei[1], ei[0])), shape=(n, n))
    fast: dict[str, Callable[[], object]] = {
        "nesy fwd": lambda: aggregate(g, x),
        "nesy unchecked fwd": lambda: aggregate(g, x, check_finite=False),
        "nesy unchecked fwd, x +16 B": lambda: aggregate(g, x_off, check_finite=False),
        "gather limit": lambda: _core.gnn_gather_sum(g.indptr, g.indices, x),
        "scipy fwd": lambda: A @ x,
        "nesy fwd+bwd": lambda: aggregate_backward(g, x, aggregate(g, x)[0]),
    }
    slow: dict[str, Callable[[], object]] = {}
    if with_torch:
        import torch

        torch.set_num_threads(nesy.get_num_threads())
        At = torch.sparse_csr_tensor(torch.from_numpy(A.indptr.astype(np.int64)),
                                     torch.from_numpy(A.indices.astype(np.int64)),
                                     torch.from_numpy(A.data), size=(n, n))
        xt = torch.from_numpy(x)
        src, dst = torch.from_numpy(ei[0]), torch.from_numpy(ei[1])
        fast["torch.sparse fwd"] = lambda: torch.sparse.mm(At, xt)

        def index_add(xx: torch.Tensor) -> torch.Tensor:
            return torch.zeros(n, f).index_add_(0, dst, xx.index_select(0, src))

        xg = xt.clone().requires_grad_(True)
        slow["torch index_add fwd"] = lambda: index_add(xt)
        slow["torch index_add fwd+bwd"] = lambda: index_add(xg).sum().backward()
    # The columns within a few times of each other in interleaved rounds (each timing after a
    # pause and warm-up calls, `settled_time`: the memory measurement and the other libraries
    # leave worker threads spinning); the index_add path, 20-70x slower, in one block each.
    row.update(interleaved_times(fast, repeat))
    for name, fn in slow.items():
        row[name] = settled_time(fn, repeat, warmup=2)
    return row


def run(cases: list[tuple[int, int, int]] | None = None, repeat: int = 10,
        with_torch: bool | None = None) -> list[dict[str, object]]:
    """Every case of :data:`CASES` (or ``cases``)."""
    cases = CASES if cases is None else cases
    with_torch = torch_available() if with_torch is None else with_torch
    return [run_case(n, e, f, repeat, with_torch) for n, e, f in cases]


def table(rows: list[dict[str, object]]) -> str:
    own = ("nesy fwd", "nesy unchecked fwd", "nesy unchecked fwd, x +16 B", "gather limit",
           "nesy fwd+bwd")
    cols = [c for c in ("nesy fwd", "nesy unchecked fwd", "nesy unchecked fwd, x +16 B",
                        "gather limit", "scipy fwd",
                        "torch.sparse fwd", "torch index_add fwd", "nesy fwd+bwd",
                        "torch index_add fwd+bwd")
            if c in rows[0]]
    fwd_anchors = [c for c in ("scipy fwd", "torch.sparse fwd") if c in cols]
    header = ["(nodes, edges, F)", *[f"{c} ms" for c in cols], "nesy fwd GB/s",
              "% of limit", "5x scipy needs %", *[f"x vs {c}" for c in cols if c not in own],
              *[f"unchecked x vs {c}" for c in fwd_anchors]]
    out = []
    for r in rows:
        t = {c: float(r[c]) for c in cols}  # type: ignore[arg-type]
        gbs = float(r["bytes"]) / t["nesy fwd"] / 1e9  # type: ignore[arg-type]
        limit = [f"{100 * t['gather limit'] / t['nesy unchecked fwd']:.0f}",
                 f"{100 * t['gather limit'] / (t['scipy fwd'] / 5):.0f}"]
        ratios = [f"{t[c] / t['nesy fwd+bwd' if 'bwd' in c else 'nesy fwd']:.1f}"
                  for c in cols if c not in own]
        ratios += [f"{t[c] / t['nesy unchecked fwd']:.1f}" for c in fwd_anchors]
        out.append([str(r["case"]), *[f"{t[c] * 1e3:.2f}" for c in cols], f"{gbs:.1f}", *limit,
                    *ratios])
    return format_table(header, out)


def main(quick: bool = False, repeat: int = 10) -> None:
    """Print the benchmark table (``nesy bench gnn``)."""
    import nesy
    from nesy.bench.optim import memory_limits

    for name, gbs in memory_limits().items():
        print(f"memory: {name}: {gbs:.1f} GB/s")
    if not torch_available():
        print("(torch is not importable: PyTorch columns omitted)")
    print(f"sum aggregation, float32, {nesy.get_num_threads()} threads, best of {repeat}")
    print(table(run(QUICK_CASES if quick else CASES, repeat)))
    main_gcn_epoch(repeat=max(repeat, 10))  # the GCN-epoch section at the end of this file


# ==============================================================================================
# GCN training epoch on Cora: nesy vs the same model written with torch sparse ops.
# (Section added with nesy.gnn's layers and estimators; functions below are self-contained.)
# One epoch = dropout, 2 GCN layers (1433 -> 16 -> 7), cross-entropy on the 140 training
# nodes, backward, Adam (weight decay 5e-4 on the first layer), as NodeClassifier trains.
# Features row-normalised; nesy with the features sparse (its default on Cora) or dense;
# torch with dense features (as PyG's example) or a sparse COO feature matrix.
# ==============================================================================================
def _cora_inputs() -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    from nesy.datasets import load_planetoid

    d = load_planetoid("cora")
    x = d.X / np.maximum(d.X.sum(1, keepdims=True), 1)
    return d.graph, x.astype(np.float32), d.y, np.flatnonzero(d.train_mask)


def gcn_epoch_nesy(sparse: bool = True, dropout: float = 0.5, seed: int = 0
                   ) -> tuple[Callable[[], float], Any]:
    """``(epoch, model)``: ``epoch()`` runs one nesy GCN training epoch on Cora (the
    ``NodeClassifier`` step, :func:`nesy.gnn.report.make_epoch`) and returns the loss."""
    from nesy.gnn.report import make_epoch

    epoch, _, model = make_epoch("gcn", sparse, seed, dropout=dropout)
    return epoch, model


def gcn_epoch_torch(sparse: bool = False, dropout: float = 0.5, weights: Any = None
                    ) -> tuple[Callable[[], float], Any]:
    """``(epoch, params)``: the same GCN written with ``torch.sparse.mm`` on a CSR adjacency
    (normalised with self-loops); ``weights`` (a nesy model) copies the initial parameters."""
    import warnings

    import torch
    import torch.nn.functional as F

    import nesy

    torch.set_num_threads(nesy.get_num_threads())
    graph, x, y, train = _cora_inputs()
    g = graph.gcn_norm()
    n = g.num_nodes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notices: CSR is beta, invariants unchecked
        adj = torch.sparse_csr_tensor(torch.from_numpy(g.indptr), torch.from_numpy(g.indices),
                                      torch.from_numpy(g.edge_weight.astype(np.float32)),
                                      size=(n, n))
    xt = torch.from_numpy(x)
    if sparse:
        xt = xt.to_sparse_coo().coalesce()
    if weights is not None:
        init = [torch.from_numpy(p.copy()) for p in weights.parameters()]
    else:
        gen = np.random.default_rng(0)
        init = [torch.from_numpy(a.astype(np.float32)) for a in (
            gen.uniform(-0.06, 0.06, (x.shape[1], 16)), np.zeros(16),
            gen.uniform(-0.5, 0.5, (16, 7)), np.zeros(7))]
    w1, b1, w2, b2 = (p.clone().requires_grad_(True) for p in init)
    opt = torch.optim.Adam([{"params": [w1, b1], "weight_decay": 5e-4},
                            {"params": [w2, b2], "weight_decay": 0.0}], lr=0.01)
    yt, tr = torch.from_numpy(y), torch.from_numpy(train)

    def forward(training: bool = True) -> torch.Tensor:
        if sparse:
            vals = F.dropout(xt.values(), dropout, training)
            h = torch.sparse.mm(torch.sparse_coo_tensor(xt.indices(), vals, xt.shape), w1)
        else:
            h = F.dropout(xt, dropout, training) @ w1
        h = F.relu(torch.sparse.mm(adj, h) + b1)
        h = F.dropout(h, dropout, training) @ w2
        return torch.sparse.mm(adj, h) + b2

    def epoch() -> float:
        opt.zero_grad()
        loss = F.cross_entropy(forward()[tr], yt[tr])
        loss.backward()
        opt.step()
        return loss.item()

    epoch.forward = forward  # type: ignore[attr-defined]
    return epoch, [w1, b1, w2, b2]


def run_gcn_epoch(repeat: int = 20, with_torch: bool | None = None) -> list[dict[str, object]]:
    """Best-of-``repeat`` seconds of one training epoch for each implementation."""
    with_torch = torch_available() if with_torch is None else with_torch
    rows: list[dict[str, object]] = []
    for sparse in (True, False):
        fn, _ = gcn_epoch_nesy(sparse)
        rows.append({"impl": f"nesy, {'sparse' if sparse else 'dense'} features",
                     "s": best_time(fn, repeat, warmup=3)})
    if with_torch:
        for sparse in (False, True):
            fn, _ = gcn_epoch_torch(sparse)
            rows.append({"impl": f"torch.sparse.mm, {'sparse' if sparse else 'dense'} features",
                         "s": best_time(fn, repeat, warmup=3)})
    return rows


def gcn_epoch_table(rows: list[dict[str, object]]) -> str:
    base = float(rows[0]["s"])  # type: ignore[arg-type]
    out = [[str(r["impl"]), f"{float(r['s']) * 1e3:.2f}",  # type: ignore[arg-type]
            f"{float(r['s']) / base:.2f}"] for r in rows]  # type: ignore[arg-type]
    return format_table(["GCN epoch on Cora (fwd + bwd + Adam)", "ms", "x vs nesy sparse"],
                        out)


def main_gcn_epoch(repeat: int = 20) -> None:
    """Print the GCN-epoch table (part of ``nesy bench gnn``)."""
    import nesy

    print(f"GCN training epoch on Cora, float32, {nesy.get_num_threads()} threads, best of "
          f"{repeat}")
    print(gcn_epoch_table(run_gcn_epoch(repeat)))
