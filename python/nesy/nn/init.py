"""Weight initialisers.

Every initialiser has the signature ``init(shape, rng=None, dtype=np.float32, **kwargs)`` and
returns a new C-contiguous array. ``rng`` is a seed :func:`numpy.random.default_rng` accepts:
``None``, an int ``>= 0`` (or a list of them) or a :class:`numpy.random.Generator` (a
``BitGenerator``, ``SeedSequence`` or ``RandomState`` too); anything else (a float, a string, a
negative int) raises ``TypeError`` or ``ValueError`` naming ``rng``.

Fan convention: nesy stores dense weights as ``(in_features, out_features)`` (``y = x @ W``),
the transpose of PyTorch's layout, so for a 2-D ``shape`` ``fan_in = shape[0]`` and
``fan_out = shape[1]``. For N-D shapes the leading axes are a receptive field:
``fan_in = shape[-2] * prod(shape[:-2])`` and ``fan_out = shape[-1] * prod(shape[:-2])``.
The normal variants draw from an untruncated normal distribution, as ``torch.nn.init`` does.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np

from nesy._checks import check_float_dtype, check_seed

Shape = Union[int, Sequence[int]]
RngLike = Union[None, int, np.random.Generator]
Initializer = Callable[..., np.ndarray]

__all__ = [
    "calculate_fans",
    "calculate_gain",
    "zeros",
    "ones",
    "constant",
    "normal",
    "uniform",
    "glorot_uniform",
    "glorot_normal",
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "get_initializer",
]


def _shape(shape: Shape) -> Tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    out = tuple(int(s) for s in shape)
    if any(s < 0 for s in out):
        raise ValueError(f"shape must be non-negative, got {out}")
    return out


def calculate_fans(shape: Shape) -> Tuple[int, int]:
    """Return ``(fan_in, fan_out)`` for a weight of the given shape (see the module docstring)."""
    shp = _shape(shape)
    if len(shp) == 0:
        return 1, 1
    if len(shp) == 1:
        return shp[0], shp[0]
    receptive = int(np.prod(shp[:-2])) if len(shp) > 2 else 1
    return shp[-2] * receptive, shp[-1] * receptive


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """Recommended gain for a non-linearity (same values as ``torch.nn.init.calculate_gain``).

    Parameters
    ----------
    nonlinearity : {"linear", "identity", "sigmoid", "tanh", "relu", "leaky_relu", "selu"}
    param : float, optional
        Negative slope of ``leaky_relu`` (default 0.01).
    """
    name = nonlinearity.lower()
    if name in ("linear", "identity", "sigmoid"):
        return 1.0
    if name == "tanh":
        return 5.0 / 3.0
    if name == "relu":
        return math.sqrt(2.0)
    if name == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if name == "selu":
        return 3.0 / 4.0
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}")


def _uniform(shp: Tuple[int, ...], bound: float, rng: RngLike, dt: np.dtype) -> np.ndarray:
    gen = np.random.default_rng(check_seed("rng", rng))
    out = gen.random(shp, dtype=dt)
    out *= dt.type(2.0 * bound)
    out -= dt.type(bound)
    return out


def _normal(shp: Tuple[int, ...], std: float, rng: RngLike, dt: np.dtype) -> np.ndarray:
    gen = np.random.default_rng(check_seed("rng", rng))
    out = gen.standard_normal(shp, dtype=dt)
    out *= dt.type(std)
    return out


def zeros(shape: Shape, rng: RngLike = None, dtype: Any = np.float32) -> np.ndarray:
    """All zeros; ``rng`` is accepted for a uniform signature and ignored."""
    return np.zeros(_shape(shape), dtype=check_float_dtype(dtype, TypeError))


def ones(shape: Shape, rng: RngLike = None, dtype: Any = np.float32) -> np.ndarray:
    """All ones; ``rng`` is ignored."""
    return np.ones(_shape(shape), dtype=check_float_dtype(dtype, TypeError))


def constant(
    shape: Shape, rng: RngLike = None, dtype: Any = np.float32, value: float = 0.0
) -> np.ndarray:
    """Every element equal to ``value``; ``rng`` is ignored."""
    return np.full(_shape(shape), value, dtype=check_float_dtype(dtype, TypeError))


def uniform(
    shape: Shape, rng: RngLike = None, dtype: Any = np.float32, low: float = -0.05,
    high: float = 0.05,
) -> np.ndarray:
    """Uniform on ``[low, high)``."""
    dt = check_float_dtype(dtype, TypeError)
    gen = np.random.default_rng(check_seed("rng", rng))
    out = gen.random(_shape(shape), dtype=dt)
    out *= dt.type(high - low)
    out += dt.type(low)
    return out


def normal(
    shape: Shape, rng: RngLike = None, dtype: Any = np.float32, mean: float = 0.0,
    std: float = 0.05,
) -> np.ndarray:
    """Normal with the given mean and standard deviation."""
    out = _normal(_shape(shape), std, rng, check_float_dtype(dtype, TypeError))
    out += out.dtype.type(mean)
    return out


def glorot_uniform(
    shape: Shape, rng: RngLike = None, dtype: Any = np.float32, gain: float = 1.0
) -> np.ndarray:
    """Glorot/Xavier uniform: ``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    shp = _shape(shape)
    fan_in, fan_out = calculate_fans(shp)
    bound = gain * math.sqrt(6.0 / max(fan_in + fan_out, 1))
    return _uniform(shp, bound, rng, check_float_dtype(dtype, TypeError))


def glorot_normal(
    shape: Shape, rng: RngLike = None, dtype: Any = np.float32, gain: float = 1.0
) -> np.ndarray:
    """Glorot/Xavier normal: ``N(0, std^2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    shp = _shape(shape)
    fan_in, fan_out = calculate_fans(shp)
    std = gain * math.sqrt(2.0 / max(fan_in + fan_out, 1))
    return _normal(shp, std, rng, check_float_dtype(dtype, TypeError))


def _kaiming_fan(shp: Tuple[int, ...], mode: str) -> int:
    fan_in, fan_out = calculate_fans(shp)
    if mode == "fan_in":
        return max(fan_in, 1)
    if mode == "fan_out":
        return max(fan_out, 1)
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def he_uniform(
    shape: Shape, rng: RngLike = None, dtype: Any = np.float32, gain: float = math.sqrt(2.0),
    mode: str = "fan_in",
) -> np.ndarray:
    """He/Kaiming uniform: ``U(-a, a)`` with ``a = gain * sqrt(3 / fan)`` (gain ``sqrt(2)``)."""
    shp = _shape(shape)
    bound = gain * math.sqrt(3.0 / _kaiming_fan(shp, mode))
    return _uniform(shp, bound, rng, check_float_dtype(dtype, TypeError))


def he_normal(
    shape: Shape, rng: RngLike = None, dtype: Any = np.float32, gain: float = math.sqrt(2.0),
    mode: str = "fan_in",
) -> np.ndarray:
    """He/Kaiming normal: ``N(0, std^2)`` with ``std = gain / sqrt(fan)`` (gain ``sqrt(2)``)."""
    shp = _shape(shape)
    std = gain / math.sqrt(_kaiming_fan(shp, mode))
    return _normal(shp, std, rng, check_float_dtype(dtype, TypeError))


def lecun_uniform(shape: Shape, rng: RngLike = None, dtype: Any = np.float32) -> np.ndarray:
    """LeCun uniform: ``U(-a, a)`` with ``a = sqrt(3 / fan_in)``."""
    return he_uniform(shape, rng, dtype, gain=1.0)


def lecun_normal(shape: Shape, rng: RngLike = None, dtype: Any = np.float32) -> np.ndarray:
    """LeCun normal: ``N(0, 1 / fan_in)``."""
    return he_normal(shape, rng, dtype, gain=1.0)


def orthogonal(
    shape: Shape, rng: RngLike = None, dtype: Any = np.float32, gain: float = 1.0
) -> np.ndarray:
    """(Semi-)orthogonal matrix (Saxe et al. 2014), scaled by ``gain``.

    The array is viewed as ``(prod(shape[:-1]), shape[-1])``; its rows (if fewer than columns)
    or its columns (otherwise) are orthonormal. Needs at least two dimensions.
    """
    shp = _shape(shape)
    if len(shp) < 2:
        raise ValueError(f"orthogonal needs at least 2 dimensions, got shape {shp}")
    dt = check_float_dtype(dtype, TypeError)
    rows = int(np.prod(shp[:-1]))
    cols = shp[-1]
    gen = np.random.default_rng(check_seed("rng", rng))
    if rows == 0 or cols == 0:
        return np.zeros(shp, dtype=dt)
    a = gen.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    d = np.sign(np.diag(r))
    d[d == 0] = 1.0
    q *= d
    if rows < cols:
        q = q.T
    return np.ascontiguousarray((gain * q).reshape(shp), dtype=dt)


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal

_REGISTRY = {
    "zeros": zeros,
    "ones": ones,
    "normal": normal,
    "uniform": uniform,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "kaiming_uniform": he_uniform,
    "kaiming_normal": he_normal,
    "lecun_uniform": lecun_uniform,
    "lecun_normal": lecun_normal,
    "orthogonal": orthogonal,
}


def get_initializer(init: Union[str, Initializer]) -> Initializer:
    """Look an initialiser up by name, or return ``init`` itself if it is callable.

    Raises
    ------
    ValueError
        If ``init`` is an unknown name; the message lists the known ones.
    """
    if callable(init):
        return init
    try:
        return _REGISTRY[str(init).lower()]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown initializer {init!r}; known: {known}") from None
