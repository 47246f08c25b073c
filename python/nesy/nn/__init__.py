"""Neural-network building blocks in pure NumPy: the :class:`Module` protocol, layers,
activations, losses, initialisers and a :class:`Trainer`.

A module computes ``forward(x)``, keeps what it needs, and ``backward(grad_out)`` returns the
input gradient while accumulating parameter gradients into ``gradients()``, the arrays that
match ``parameters()`` one to one. Optimizers from :mod:`nesy.optim` update the parameter arrays
in place::

    import numpy as np
    from nesy.nn import Dense, ReLU, Sequential, CrossEntropyLoss, Trainer, accuracy
    from nesy.optim import Adam

    model = Sequential(Dense(64, 128, rng=0), ReLU(), Dense(128, 10, rng=1))
    trainer = Trainer(model, CrossEntropyLoss(), Adam(model.parameters(), lr=1e-3),
                      epochs=20, metrics={"accuracy": accuracy})
    history = trainer.fit(X_train, y_train, validation_data=(X_val, y_val))
"""

from nesy.nn import init
from nesy.nn.activations import (
    GELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    gelu,
    gelu_backward,
    get_activation,
    leaky_relu,
    leaky_relu_backward,
    log_softmax,
    log_softmax_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    softmax_backward,
    tanh,
    tanh_backward,
)
from nesy.nn.estimators import MLPClassifier, MLPRegressor, make_mlp
from nesy.nn.layers import Dense, Dropout, Flatten, Sequential
from nesy.nn.losses import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Loss,
    MSELoss,
    SoftCrossEntropyLoss,
)
from nesy.nn.module import Identity, Module, ModuleList
from nesy.nn.trainer import EarlyStopping, History, Trainer, accuracy, predict

__all__ = [
    "init",
    # module protocol
    "Module",
    "ModuleList",
    "Identity",
    # layers
    "Dense",
    "Dropout",
    "Flatten",
    "Sequential",
    # activations
    "ReLU",
    "LeakyReLU",
    "Tanh",
    "Sigmoid",
    "GELU",
    "Softmax",
    "LogSoftmax",
    "get_activation",
    "relu",
    "relu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "tanh",
    "tanh_backward",
    "sigmoid",
    "sigmoid_backward",
    "gelu",
    "gelu_backward",
    "softmax",
    "softmax_backward",
    "log_softmax",
    "log_softmax_backward",
    # losses
    "Loss",
    "MSELoss",
    "CrossEntropyLoss",
    "BCEWithLogitsLoss",
    "SoftCrossEntropyLoss",
    # training
    "Trainer",
    "EarlyStopping",
    "History",
    "accuracy",
    "predict",
    # scikit-learn estimators
    "MLPClassifier",
    "MLPRegressor",
    "make_mlp",
]
