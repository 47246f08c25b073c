"""Graph aggregation benchmark: sum over in-neighbours, nesy vs SciPy CSR @ dense vs
torch.sparse.mm (CSR) vs torch gather + index_add_ (PyG's scatter path), forward and
forward + backward, float32, on random graphs with power-law sources.

Effective GB/s counts the bytes an aggregation must move: every edge reads its source row
(F floats) and index (8 bytes), every node writes its output row.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from nesy.bench import best_time, format_table

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
    from nesy.gnn import Graph, aggregate, aggregate_backward

    ei = random_graph(n, e)
    g = Graph(ei, n)
    x = np.random.default_rng(1).standard_normal((n, f), dtype=np.float32)
    row: dict[str, object] = {"case": f"({n // 1000}k, {e / 1e6:g}M, {f})",
                              "bytes": e * (4 * f + 8) + n * 4 * f}
    row["nesy fwd"] = best_time(lambda: aggregate(g, x), repeat)
    row["nesy fwd+bwd"] = best_time(lambda: aggregate_backward(g, x, aggregate(g, x)[0]),
                                    repeat)
    A = sp.csr_matrix((np.ones(e, np.float32), (ei[1], ei[0])), shape=(n, n))
    row["scipy fwd"] = best_time(lambda: A @ x, repeat)
    if with_torch:
        import torch

        torch.set_num_threads(nesy.get_num_threads())
        At = torch.sparse_csr_tensor(torch.from_numpy(A.indptr.astype(np.int64)),
                                     torch.from_numpy(A.indices.astype(np.int64)),
                                     torch.from_numpy(A.data), size=(n, n))
        xt = torch.from_numpy(x)
        src, dst = torch.from_numpy(ei[0]), torch.from_numpy(ei[1])
        row["torch.sparse fwd"] = best_time(lambda: torch.sparse.mm(At, xt), repeat)

        def index_add(xx: torch.Tensor) -> torch.Tensor:
            return torch.zeros(n, f).index_add_(0, dst, xx.index_select(0, src))

        row["torch index_add fwd"] = best_time(lambda: index_add(xt), repeat)
        xg = xt.clone().requires_grad_(True)
        row["torch index_add fwd+bwd"] = best_time(
            lambda: index_add(xg).sum().backward(), repeat)
    return row


def run(cases: list[tuple[int, int, int]] | None = None, repeat: int = 10,
        with_torch: bool | None = None) -> list[dict[str, object]]:
    """Every case of :data:`CASES` (or ``cases``)."""
    cases = CASES if cases is None else cases
    with_torch = torch_available() if with_torch is None else with_torch
    return [run_case(n, e, f, repeat, with_torch) for n, e, f in cases]


def table(rows: list[dict[str, object]]) -> str:
    cols = [c for c in ("nesy fwd", "scipy fwd", "torch.sparse fwd", "torch index_add fwd",
                        "nesy fwd+bwd", "torch index_add fwd+bwd") if c in rows[0]]
    header = ["(nodes, edges, F)", *[f"{c} ms" for c in cols], "nesy fwd GB/s",
              *[f"x vs {c}" for c in cols if c not in ("nesy fwd", "nesy fwd+bwd")]]
    out = []
    for r in rows:
        t = {c: float(r[c]) for c in cols}  # type: ignore[arg-type]
        gbs = float(r["bytes"]) / t["nesy fwd"] / 1e9  # type: ignore[arg-type]
        ratios = [f"{t[c] / t['nesy fwd+bwd' if 'bwd' in c else 'nesy fwd']:.1f}"
                  for c in cols if c not in ("nesy fwd", "nesy fwd+bwd")]
        out.append([str(r["case"]), *[f"{t[c] * 1e3:.2f}" for c in cols], f"{gbs:.1f}", *ratios])
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


