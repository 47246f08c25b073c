"""Optimizers, learning-rate schedules and gradient utilities, with kernels in Rust.

Optimizers follow ``torch.optim``: ``Adam(params, lr=1e-3)``, ``step(grads)`` updates every
array in place with one call into Rust, ``param_groups[i]["lr"]`` is mutable, and
``state_dict()`` / ``load_state_dict()`` round-trip bit-identically (``save_state_dict`` /
``load_state_dict_file`` write and read ``.npz`` atomically). Learning-rate schedules for any
optimizer are in :mod:`nesy.optim.schedules`.
"""

from nesy.optim import schedules
from nesy.optim._base import Optimizer, save_state_dict
from nesy.optim._base import load_state_dict as load_state_dict_file
from nesy.optim.grad import (
    all_finite,
    clip_grad_norm,
    clip_grad_value,
    decay,
    grad_norm,
    penalty,
)
from nesy.optim.optimizers import (
    SGD,
    SGDHD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamHD,
    AdamW,
    Lion,
    NAdam,
    RAdam,
    RMSprop,
)

__all__ = [
    "Optimizer", "SGD", "SGDHD", "Adadelta", "Adagrad", "Adam", "AdamHD", "Adamax", "AdamW",
    "Lion", "NAdam", "RAdam", "RMSprop", "all_finite", "clip_grad_norm", "clip_grad_value", "decay",
    "grad_norm", "penalty", "save_state_dict", "load_state_dict_file", "schedules",
]
