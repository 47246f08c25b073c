"""Type stubs of the compiled extension ``nesy._core`` (kept in step by ``mypy.stubtest``)."""

from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import final

def build_info() -> dict[str, object]: ...
def simd_levels() -> list[str]: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...

# optim: one call updates every tensor (rust/py/src/optim.rs)
def optim_columns(kind: str) -> list[str]: ...
def optim_state(kind: str, hyper: npt.NDArray[np.float64]) -> tuple[list[str], list[int]]: ...
def optim_step(
    kind: str,
    params: list[npt.NDArray[np.floating]],
    grads: list[npt.NDArray[np.floating] | None],
    groups: npt.NDArray[np.int64],
    steps: npt.NDArray[np.int64],
    scalars: npt.NDArray[np.float64],
    hyper: npt.NDArray[np.float64],
    state32: list[npt.NDArray[np.float32]],
    state64: list[npt.NDArray[np.float64]],
    simd: str | None = None,
) -> list[float] | None: ...

# gradient utilities fused across tensors (rust/py/src/grad.rs)
def clip_grad_norm(
    grads: list[npt.NDArray[np.floating]],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    simd: str | None = None,
) -> float: ...
def clip_grad_value(
    grads: list[npt.NDArray[np.floating]], clip_value: float, simd: str | None = None
) -> None: ...
def grad_norm(
    xs: list[npt.NDArray[np.floating]], norm_type: float = 2.0, simd: str | None = None
) -> float: ...
def all_finite(xs: list[npt.NDArray[np.floating]], simd: str | None = None) -> bool: ...
def scale(xs: list[npt.NDArray[np.floating]], factor: float, simd: str | None = None) -> None: ...
def penalty(
    grads: list[npt.NDArray[np.floating]],
    params: list[npt.NDArray[np.floating]],
    l1: float = 0.0,
    l2: float = 0.0,
    simd: str | None = None,
) -> float: ...

# gnn: neighbourhood aggregation over CSR graphs (rust/py/src/gnn.rs)
def gnn_build_csr(
    src: npt.NDArray[np.int64],
    dst: npt.NDArray[np.int64],
    num_nodes: int,
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
]: ...
def gnn_aggregate(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    x: npt.NDArray[np.floating],
    reduce: str = "sum",
    edge_weight: npt.NDArray[np.floating] | None = None,
    simd: str | None = None,
    out: npt.NDArray[np.floating] | None = None,
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.int64] | None]: ...
def gnn_aggregate_backward(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    t_indptr: npt.NDArray[np.int64],
    t_indices: npt.NDArray[np.int64],
    perm: npt.NDArray[np.int64],
    x: npt.NDArray[np.floating],
    grad_out: npt.NDArray[np.floating],
    reduce: str = "sum",
    edge_weight: npt.NDArray[np.floating] | None = None,
    arg: npt.NDArray[np.int64] | None = None,
    weight_grad: bool = False,
    simd: str | None = None,
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating] | None]: ...
def gnn_gather_sum(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    x: npt.NDArray[np.floating],
    simd: str | None = None,
) -> npt.NDArray[np.floating]: ...
def gnn_sddmm(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    u: npt.NDArray[np.floating],
    v: npt.NDArray[np.floating],
    op: str = "dot",
    heads: int = 1,
    simd: str | None = None,
) -> npt.NDArray[np.floating]: ...
def gnn_sddmm_backward(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    t_indptr: npt.NDArray[np.int64],
    t_indices: npt.NDArray[np.int64],
    perm: npt.NDArray[np.int64],
    u: npt.NDArray[np.floating],
    v: npt.NDArray[np.floating],
    grad: npt.NDArray[np.floating],
    op: str = "dot",
    heads: int = 1,
    simd: str | None = None,
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]: ...
def gnn_edge_softmax(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    scores: npt.NDArray[np.floating],
    simd: str | None = None,
) -> npt.NDArray[np.floating]: ...
def gnn_edge_softmax_backward(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    alpha: npt.NDArray[np.floating],
    grad: npt.NDArray[np.floating],
    simd: str | None = None,
) -> npt.NDArray[np.floating]: ...

# kge: knowledge-graph embedding scores, gradients, ranks (rust/py/src/kge.rs)
def kge_score(
    model: str,
    ent: npt.NDArray[np.floating],
    rel: npt.NDArray[np.floating],
    triples: npt.NDArray[np.int64],
) -> npt.NDArray[np.floating]: ...
def kge_score_grad(
    model: str,
    ent: npt.NDArray[np.floating],
    rel: npt.NDArray[np.floating],
    triples: npt.NDArray[np.int64],
    upstream: npt.NDArray[np.floating],
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating], npt.NDArray[np.floating]]: ...
def kge_score_all(
    model: str,
    ent: npt.NDArray[np.floating],
    rel: npt.NDArray[np.floating],
    entities: npt.NDArray[np.int64],
    relations: npt.NDArray[np.int64],
    side: str = "tail",
    simd: str | None = None,
) -> npt.NDArray[np.floating]: ...
def kge_ranks(
    model: str,
    ent: npt.NDArray[np.floating],
    rel: npt.NDArray[np.floating],
    triples: npt.NDArray[np.int64],
    known: npt.NDArray[np.int64],
    simd: str | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def kge_ranks_of_scores(
    scores: npt.NDArray[np.floating],
    triples: npt.NDArray[np.int64],
    known: npt.NDArray[np.int64],
    side: str,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def kge_regularise(
    x: npt.NDArray[np.floating],
    kind: str = "l2",
    weight: float = 1.0,
    complex: bool = False,
) -> tuple[float, npt.NDArray[np.floating]]: ...

def kge_train_epoch(
    model: str,
    ent: npt.NDArray[np.floating],
    rel: npt.NDArray[np.floating],
    ent_state: npt.NDArray[np.floating],
    rel_state: npt.NDArray[np.floating],
    step: int,
    triples: npt.NDArray[np.int64],
    head_prob: npt.NDArray[np.float64],
    epoch: int,
    args: Any,
) -> tuple[float, int]: ...
def kge_bernoulli_probs(triples: npt.NDArray[np.int64], n_relations: int) -> list[float]: ...

# meta: every task's loss and gradients of a batch of per-task MLPs (rust/py/src/meta.rs)
def meta_mlp_loss_grad(
    params: list[npt.NDArray[np.floating]],
    x: npt.NDArray[np.floating],
    y: npt.NDArray[Any],
    activations: list[str],
    loss: str = "mse",
    need_grad: bool = True,
) -> tuple[npt.NDArray[np.floating], list[npt.NDArray[np.floating]] | None]: ...

# rules: Horn rules over a knowledge graph (rust/py/src/rules.rs); rules are int64 rows (m, 11)
@final
class RuleGraph:
    def __new__(
        cls, triples: npt.NDArray[np.int64], n_entities: int, n_relations: int
    ) -> RuleGraph: ...
    @property
    def n_entities(self) -> int: ...
    @property
    def n_relations(self) -> int: ...
    @property
    def nbytes(self) -> int: ...

def rules_metrics(
    graph: RuleGraph, rules: npt.NDArray[np.int64]
) -> dict[str, npt.NDArray[Any]]: ...
def rules_length2(
    graph: RuleGraph,
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[Any]]]: ...
def rules_mine_exact(
    graph: RuleGraph,
    heads: list[int] | None,
    max_length: int,
    max_length_acyclic: int,
    min_support: int,
    min_head_coverage: float,
    min_confidence: float,
    pca: bool,
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[Any]], dict[str, int]]: ...
def rules_sample(
    graph: RuleGraph,
    heads: list[int] | None,
    batch: int,
    max_length: int,
    max_length_acyclic: int,
    paths: int,
    seed: int,
) -> npt.NDArray[np.int64]: ...
def rules_predict(
    graph: RuleGraph,
    rules: npt.NDArray[np.int64],
    confidence: npt.NDArray[np.float64],
    queries: npt.NDArray[np.int64],
    inverse: bool,
    aggregation: str,
    k: int,
    exclude_query: bool,
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]: ...
def rules_ranks(
    graph: RuleGraph,
    rules: npt.NDArray[np.int64],
    confidence: npt.NDArray[np.float64],
    triples: npt.NDArray[np.int64],
    known: npt.NDArray[np.int64],
    aggregation: str,
    exclude_query: bool,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]: ...
def rules_explain(
    graph: RuleGraph,
    rules: npt.NDArray[np.int64],
    confidence: npt.NDArray[np.float64],
    entity: int,
    relation: int,
    inverse: bool,
    candidate: int,
    limit: int,
    exclude_query: bool,
) -> list[tuple[int, float, int, list[int], list[list[int]]]]: ...

# rnn: one call per layer-direction over a whole sequence batch (rust/py/src/rnn.rs)
def rnn_forward(
    cell: str,
    x: npt.NDArray[np.floating],
    h0: npt.NDArray[np.floating],
    c0: npt.NDArray[np.floating] | None,
    w_ih: npt.NDArray[np.floating],
    w_hh: npt.NDArray[np.floating],
    b_ih: npt.NDArray[np.floating] | None,
    b_hh: npt.NDArray[np.floating] | None,
    lengths: npt.NDArray[np.integer] | None = None,
    reverse: bool = False,
    training: bool = True,
) -> tuple[
    npt.NDArray[np.floating],
    npt.NDArray[np.floating],
    npt.NDArray[np.floating] | None,
    npt.NDArray[np.floating] | None,
]: ...
def rnn_backward(
    cell: str,
    x: npt.NDArray[np.floating],
    h0: npt.NDArray[np.floating],
    c0: npt.NDArray[np.floating] | None,
    w_ih: npt.NDArray[np.floating],
    w_hh: npt.NDArray[np.floating],
    b_ih: npt.NDArray[np.floating] | None,
    b_hh: npt.NDArray[np.floating] | None,
    workspace: npt.NDArray[np.floating],
    dy: npt.NDArray[np.floating],
    dh_n: npt.NDArray[np.floating],
    dc_n: npt.NDArray[np.floating] | None,
    dw_ih: npt.NDArray[np.floating],
    dw_hh: npt.NDArray[np.floating],
    db_ih: npt.NDArray[np.floating] | None,
    db_hh: npt.NDArray[np.floating] | None,
    lengths: npt.NDArray[np.integer] | None = None,
    reverse: bool = False,
    input_grad: bool = True,
) -> tuple[
    npt.NDArray[np.floating] | None, npt.NDArray[np.floating], npt.NDArray[np.floating] | None
]: ...
def rnn_stream_floor(w: npt.NDArray[np.float32], steps: int) -> float: ...

__all__ = [
    "all_finite",
    "build_info",
    "clip_grad_norm",
    "clip_grad_value",
    "get_num_threads",
    "gnn_aggregate",
    "gnn_build_csr",
    "gnn_aggregate_backward",
    "gnn_edge_softmax",
    "gnn_edge_softmax_backward",
    "gnn_gather_sum",
    "gnn_sddmm",
    "gnn_sddmm_backward",
    "kge_bernoulli_probs",
    "kge_ranks",
    "kge_ranks_of_scores",
    "kge_regularise",
    "kge_score",
    "kge_score_all",
    "kge_score_grad",
    "kge_train_epoch",
    "meta_mlp_loss_grad",
    "RuleGraph",
    "rules_explain",
    "rules_length2",
    "rules_metrics",
    "rules_mine_exact",
    "rules_predict",
    "rules_ranks",
    "rules_sample",
    "grad_norm",
    "optim_columns",
    "optim_state",
    "optim_step",
    "penalty",
    "rnn_backward",
    "rnn_forward",
    "rnn_stream_floor",
    "scale",
    "set_num_threads",
    "simd_levels",
]
