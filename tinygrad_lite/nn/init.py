"""Weight initialisations, as `torch.nn.init`: each fills a tensor in place (keeping its dtype) and returns it.

    >>> def init_weights(m):
    ...     if isinstance(m, nn.Linear):
    ...         nn.init.xavier_uniform_(m.weight)
    ...         nn.init.zeros_(m.bias)
    >>> model.apply(init_weights)

The random ones draw from `generator` (a Generator or an int seed), else from the global generator
(`tinygrad_lite.manual_seed`). Fans follow PyTorch: for a weight (out, in, *kernel), fan_in = in * prod(kernel)
and fan_out = out * prod(kernel).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from ..random import get_generator
from ..tensor import Tensor, no_grad

_LINEAR_GAIN = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                "sigmoid")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain that keeps activations' variance steady through `nonlinearity` (PyTorch's values):
    1 for linear layers and sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope²)) for leaky_relu,
    3/4 for selu."""
    if nonlinearity in _LINEAR_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, int | float) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r} (known: {', '.join(_LINEAR_GAIN)}, "
                     f"tanh, relu, leaky_relu, selu)")


def _target(op: str, tensor: Any, floating: bool = True) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(tensor).__name__}")
    if floating and tensor.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating-point tensor, got dtype {tensor.dtype}")
    return tensor


def _fill(tensor: Tensor, values: Any) -> Tensor:
    """Write `values` into the tensor's array (its dtype kept, nothing recorded) and return the tensor."""
    with no_grad():
        tensor.data[...] = values
    return tensor


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight (out, in, *kernel): (in * prod(kernel), out * prod(kernel))."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out can not be computed for a tensor with fewer than 2 dimensions, "
                         f"got shape {tensor.shape}")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fan(op: str, tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _check_std(op: str, std: float) -> None:
    if not std >= 0:
        raise ValueError(f"{op}: std must be >= 0, got {std}")


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples from U(a, b)."""
    _target("uniform_", tensor)
    if not a <= b:
        raise ValueError(f"uniform_: expects a <= b, got a={a} and b={b}")
    return _fill(tensor, get_generator(generator, "uniform_").uniform(a, b, tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples from N(mean, std²)."""
    _target("normal_", tensor)
    _check_std("normal_", std)
    return _fill(tensor, get_generator(generator, "normal_").normal(mean, std, tensor.shape))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: Any = None) -> Tensor:
    """Fill with samples from N(mean, std²) restricted to [a, b]."""
    _target("trunc_normal_", tensor)
    _check_std("trunc_normal_", std)
    if not a < b:
        raise ValueError(f"trunc_normal_: expects a < b, got a={a} and b={b}")
    rng = get_generator(generator, "trunc_normal_")
    lo, hi = ((a - mean) / std, (b - mean) / std) if std else (-math.inf, math.inf)
    normal = statistics.NormalDist()
    p_lo, p_hi = normal.cdf(lo), normal.cdf(hi)
    if p_hi - p_lo >= 0.5:  # most draws land inside: draw again the few that do not
        z = rng.standard_normal(tensor.shape)
        outside = (z < lo) | (z > hi)
        while outside.any():
            z[outside] = rng.standard_normal(int(outside.sum()))
            outside = (z < lo) | (z > hi)
    else:  # a narrow or far-out window: invert the normal CDF on uniform draws between its values at a and b
        u = np.clip(rng.uniform(p_lo, p_hi, tensor.shape), np.nextafter(0.0, 1.0), np.nextafter(1.0, 0.0))
        z = np.frompyfunc(normal.inv_cdf, 1, 1)(u).astype(np.float64)
    return _fill(tensor, np.clip(mean + std * z, a, b))  # clip: mean + std * z may round just past a bound


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with `val`."""
    return _fill(_target("constant_", tensor, floating=False), val)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return _fill(_target("ones_", tensor, floating=False), 1)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return _fill(_target("zeros_", tensor, floating=False), 0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal of a rectangular one)."""
    _target("eye_", tensor, floating=False)
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only tensors with 2 dimensions are supported, got shape {tensor.shape}")
    return _fill(tensor, np.eye(*tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot & Bengio: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    _target("xavier_uniform_", tensor)
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot & Bengio: N(0, std²) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    _target("xavier_normal_", tensor)
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(op: str, tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    _target(op, tensor)
    fan = _fan(op, tensor, mode)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: Any = None) -> Tensor:
    """He et al.: U(-bound, bound) with bound = gain * sqrt(3 / fan); `a` is leaky_relu's negative slope.

    `kaiming_uniform_(w, a=math.sqrt(5))` is PyTorch's default for Linear weights: U(±1/sqrt(fan_in)).
    """
    std = _kaiming_std("kaiming_uniform_", tensor, a, mode, nonlinearity)
    return uniform_(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: Any = None) -> Tensor:
    """He et al.: N(0, std²) with std = gain / sqrt(fan); `a` is leaky_relu's negative slope."""
    return normal_(tensor, 0.0, _kaiming_std("kaiming_normal_", tensor, a, mode, nonlinearity), generator)
