"""Gradient clipping and parameter vectors, as `torch.nn.utils`.

    >>> loss.backward()
    >>> nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    >>> opt.step()
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..perf import blas_threads
from ..tensor import Tensor, no_grad

Params = Iterable[Tensor] | Tensor


def _params(op: str, parameters: Params) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: expected Tensors (e.g. model.parameters()), got a {type(p).__name__}")
    return params


def _number(op: str, name: str, value: Any) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__} {value!r}")
    return float(value)


def _vector_norm(v: np.ndarray, p: float) -> float:
    if p == math.inf:
        return float(np.max(np.abs(v))) if v.size else 0.0
    if p == 0:  # the number of non-zero entries, as torch.linalg.vector_norm
        return float(np.count_nonzero(v))
    return float(np.sum(np.abs(v.astype(np.float64)) ** p)) ** (1.0 / p)


def _norm(grads: list[np.ndarray], norm_type: float) -> float:
    """The norm of the gradients' norms, as PyTorch (for norm_type > 0, the norm of all of them joined)."""
    if norm_type == 2.0:  # the common case, in one dot product per gradient
        with blas_threads(1):  # see perf.matmul
            return math.sqrt(sum(float(np.dot(g.reshape(-1), g.reshape(-1))) for g in grads))
    return _vector_norm(np.array([_vector_norm(g, norm_type) for g in grads]), norm_type)


def clip_grad_norm_(parameters: Params, max_norm: float, norm_type: float | str = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Scale the gradients in place so that their joint `norm_type`-norm is at most `max_norm`
    (by max_norm / (norm + 1e-6) when it is more); returns the norm before clipping, a 0-d tensor.

    `norm_type` is a positive number, or inf (or 'inf') for the largest absolute entry. `foreach` is
    accepted for PyTorch's signature and changes nothing (numpy has one code path).
    """
    op = "clip_grad_norm_"
    max_norm = _number(op, "max_norm", max_norm)
    if not math.isfinite(max_norm):
        raise ValueError(f"{op}: max_norm must be finite, got {max_norm}")
    if max_norm <= 0:
        raise ValueError(f"{op}: max_norm must be positive, got {max_norm}")
    norm_type = math.inf if norm_type in ("inf", "Inf") else _number(op, "norm_type", norm_type)
    if norm_type < 0 or math.isnan(norm_type):
        raise ValueError(f"{op}: norm_type must be >= 0 or inf, got {norm_type}")
    grads = [p.grad.data for p in _params(op, parameters) if p.grad is not None]
    total = _norm(grads, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"{op}: the total norm of order {norm_type} of the gradients is non-finite ({total}), "
                           f"so it cannot be clipped; to scale the gradients by it anyway, set "
                           f"error_if_nonfinite=False")
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:  # a NaN norm makes every gradient NaN, as in PyTorch
        for g in grads:
            g *= coef
    dtype = grads[0].dtype if grads else np.float32
    return Tensor(np.asarray(total, dtype=dtype), dtype=dtype)


def clip_grad_value_(parameters: Params, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value], in place."""
    op = "clip_grad_value_"
    clip_value = _number(op, "clip_value", clip_value)
    if not clip_value >= 0:
        raise ValueError(f"{op}: clip_value must be >= 0, got {clip_value}")
    for p in _params(op, parameters):
        if p.grad is not None:
            np.clip(p.grad.data, -clip_value, clip_value, out=p.grad.data)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """Every parameter flattened and joined into one 1-D tensor (differentiable)."""
    params = _params("parameters_to_vector", parameters)
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    return Tensor.cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D `vec` into the parameters, in place (each keeps its dtype)."""
    op = "vector_to_parameters"
    if not isinstance(vec, Tensor):
        raise TypeError(f"{op}: expected a Tensor for vec, but got {type(vec).__name__}")
    params = _params(op, parameters)
    needed = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != needed:
        raise ValueError(f"{op}: vec of shape {vec.shape} does not hold the {needed} parameter values (1-D expected)")
    start = 0
    with no_grad():
        for p in params:
            p.data[...] = vec.data[start:start + p.numel()].reshape(p.shape)
            start += p.numel()
