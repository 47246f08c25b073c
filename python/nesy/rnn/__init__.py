"""Recurrent networks: :class:`RNN` (Elman), :class:`GRU` and :class:`LSTM`, with the interface,
parameter names and gate order of ``torch.nn``; kernels in ``rust/core/src/rnn``."""

from nesy.rnn.layers import GRU, LSTM, RNN, RNNBase

__all__ = ["RNN", "GRU", "LSTM", "RNNBase"]
