"""Graph neural networks: :class:`Graph` (CSR by destination, transpose kept) and neighbourhood
aggregation (sum, mean, max, min; forward and backward) with kernels in ``rust/core/src/gnn``."""

from nesy.gnn.graph import Graph, aggregate, aggregate_backward

__all__ = ["Graph", "aggregate", "aggregate_backward"]
