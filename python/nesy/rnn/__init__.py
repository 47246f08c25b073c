"""Recurrent networks: :class:`RNN` (Elman), :class:`GRU` and :class:`LSTM`, with the interface,
parameter names and gate order of ``torch.nn``; kernels in ``rust/core/src/rnn``. Estimators
with scikit-learn conventions: :class:`SequenceRegressor`, :class:`SequenceClassifier`."""

from nesy.rnn.estimators import SequenceClassifier, SequenceNet, SequenceRegressor
from nesy.rnn.layers import GRU, LSTM, RNN, RNNBase

__all__ = ["RNN", "GRU", "LSTM", "RNNBase", "SequenceNet", "SequenceRegressor",
           "SequenceClassifier"]
