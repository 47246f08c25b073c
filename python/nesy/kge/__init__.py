"""Knowledge-graph embeddings: TransE (L1, L2), DistMult, ComplEx and RotatE scoring, 1-vs-all
scores, regularisers, training (:class:`KGEModel`) and filtered link-prediction evaluation, with
kernels in ``rust/core/src/kge``. Data: :func:`nesy.datasets.load_kg`."""

from nesy.kge.evaluate import HITS_AT, TIES, evaluate, filtered_ranks, rank_metrics
from nesy.kge.model import DEFAULT_LOSS, LOSSES, KGEModel
from nesy.kge.scoring import (
    COMPLEX_MODELS,
    MODELS,
    regulariser,
    score,
    score_grad,
    score_heads,
    score_tails,
    widths,
)

__all__ = ["KGEModel", "DEFAULT_LOSS", "LOSSES", "MODELS", "COMPLEX_MODELS", "widths",
           "score", "score_grad", "score_tails", "score_heads", "regulariser",
           "filtered_ranks", "rank_metrics", "evaluate", "TIES", "HITS_AT"]
