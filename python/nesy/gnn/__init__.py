"""Graph neural networks: :class:`Graph` (CSR by destination, transpose kept), neighbourhood
aggregation (sum, mean, max, min; shared or per-head edge weights), SDDMM and edge softmax,
forward and backward, with kernels in ``rust/core/src/gnn``."""

from nesy.gnn.graph import (
    Graph,
    aggregate,
    aggregate_backward,
    edge_softmax,
    edge_softmax_backward,
    sddmm,
    sddmm_backward,
)

__all__ = ["Graph", "aggregate", "aggregate_backward", "sddmm", "sddmm_backward",
           "edge_softmax", "edge_softmax_backward"]

from nesy.gnn.batch import (  # noqa: E402
    GlobalPool,
    GraphBatch,
    batch_graphs,
    iter_batches,
    readout,
    readout_backward,
)
from nesy.gnn.layers import GATConv, GCNConv, GINConv, SAGEConv  # noqa: E402
from nesy.gnn.models import GraphClassifier, NodeClassifier  # noqa: E402
from nesy.gnn.sparse import SparseFeatures  # noqa: E402

__all__ += ["GCNConv", "SAGEConv", "GINConv", "GATConv", "GraphBatch", "batch_graphs",
            "readout", "readout_backward", "GlobalPool", "iter_batches", "NodeClassifier",
            "GraphClassifier", "SparseFeatures"]
