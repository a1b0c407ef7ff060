"""Layers: thin Modules holding Parameters around the ops in `functional`.

Initialisations follow PyTorch's defaults; every random layer takes `seed`
(an int or a numpy Generator) so that a run can be reproduced exactly, and
without one draws from the global generator (`tinygrad_lite.manual_seed`).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..random import get_generator
from ..tensor import Tensor
from . import functional as F
from .module import Module, Parameter

Seed = int | np.random.Generator | None


def _check_sizes(layer: str, **sizes: Any) -> None:
    """Layer sizes are integers >= 0 (0 gives an empty layer, as in PyTorch)."""
    for name, value in sizes.items():
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            raise TypeError(f"{layer}: {name} must be an integer, got {type(value).__name__} {value!r}")
        if value < 0:
            raise ValueError(f"{layer}: {name} must be >= 0, got {value}")


class Linear(Module):
    """y = x Wᵀ + b: x (..., in_features) -> (..., out_features).

    W (out_features, in_features) and b (out_features,) start uniform in
    ±1/sqrt(in_features), as PyTorch's default (kaiming-uniform with a=sqrt(5)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, seed: Seed = None):
        super().__init__()
        _check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        rng = get_generator(seed, "Linear")
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features)).astype(np.float32))
        self.bias = Parameter(rng.uniform(-bound, bound, out_features).astype(np.float32)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A table of `num_embeddings` vectors: integer ids (...) -> (..., embedding_dim); weight starts N(0, 1)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, seed: Seed = None):
        super().__init__()
        _check_sizes("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        rng = get_generator(seed, "Embedding")
        self.weight = Parameter(rng.standard_normal((num_embeddings, embedding_dim), dtype=np.float32))

    def forward(self, ids: Any) -> Tensor:
        return F.embedding(ids, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Normalise over the trailing `normalized_shape` axes; weight starts at 1, bias at 0."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5, bias: bool = True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        _check_sizes("LayerNorm", **{f"normalized_shape[{i}]": d for i, d in enumerate(shape)})
        self.normalized_shape, self.eps = shape, eps
        self.weight = Parameter(np.ones(shape, dtype=np.float32))
        self.bias = Parameter(np.zeros(shape, dtype=np.float32)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, bias={self.bias is not None}"


class Dropout(Module):
    """Inverted dropout with probability p while training; the identity in eval mode. Masks come from `seed`
    (an int or a Generator), else from the global generator (`tinygrad_lite.manual_seed`)."""

    def __init__(self, p: float = 0.5, seed: Seed = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be in [0, 1], got {p}")
        self.p = p
        self.rng = None if seed is None else get_generator(seed, "Dropout")

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ReLU(Module):
    """max(x, 0) as a module."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Sigmoid(Module):
    """1 / (1 + e^-x) as a module."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Tanh(Module):
    """tanh(x) as a module."""

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class GELU(Module):
    """GELU x Φ(x): exact (`approximate='none'`, PyTorch's default) or the tanh approximation ('tanh', GPT-2's)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


# ---- PyTorch's everyday modules: each a thin wrapper around a Tensor op or a function of `functional` ----


class Identity(Module):
    """Returns its input unchanged; takes and ignores any arguments (a placeholder, as in PyTorch)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Merge dimensions start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension `dim` into `unflattened_size` (one entry may be -1): (N, 12) -> (N, 3, 4)."""

    def __init__(self, dim: int, unflattened_size: tuple[int, ...] | list[int]):
        super().__init__()
        if not isinstance(unflattened_size, tuple | list) or not unflattened_size:
            raise TypeError(f"Unflatten: unflattened_size must be a non-empty tuple of ints, got {unflattened_size!r}")
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"Unflatten: dim {self.dim} is out of range for an input of shape {x.shape}")
        d = self.dim % x.ndim
        known = math.prod(n for n in self.unflattened_size if n != -1)
        fits = x.shape[d] % known == 0 if -1 in self.unflattened_size and known else x.shape[d] == known
        if not fits or self.unflattened_size.count(-1) > 1:
            raise ValueError(f"Unflatten: the sizes {self.unflattened_size} don't multiply up to the size of dim {d} "
                             f"({x.shape[d]}) of the input of shape {x.shape}")
        return x.reshape(*x.shape[:d], *self.unflattened_size, *x.shape[d + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


def _implicit_dim(name: str, ndim: int) -> int:
    """PyTorch's legacy choice for Softmax(dim=None): 0 for 0-, 1- and 3-D inputs, else 1 (with its warning)."""
    dim = 0 if ndim in (0, 1, 3) else 1
    warnings.warn(f"{name}: implicit dimension choice for softmax has been deprecated; change the call to include "
                  f"dim={dim} as an argument", UserWarning, stacklevel=3)
    return dim


class Softmax(Module):
    """softmax along `dim` (give it: without one PyTorch's deprecated implicit choice applies, with a warning)."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return x.softmax(_implicit_dim("Softmax", x.ndim) if self.dim is None else self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log_softmax along `dim` (see Softmax for dim=None)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.log_softmax(_implicit_dim("LogSoftmax", x.ndim) if self.dim is None else self.dim)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class SiLU(Module):
    """x * sigmoid(x)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class ELU(Module):
    """x where x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class _Loss(Module):
    """A loss module: `loss(input, target)` calls its function with the options given at construction.

    Class weights are buffers, as in PyTorch (in the state dict, not trained).
    """

    _function: Any = None

    def __init__(self, reduction: str = "mean", **weights: Tensor | None):
        super().__init__()
        F._check_reduction(type(self).__name__, reduction)
        self.reduction = reduction
        for name, w in weights.items():
            if w is not None and not isinstance(w, Tensor):
                raise TypeError(f"{type(self).__name__}: {name} must be a Tensor or None, got {type(w).__name__}")
            self.register_buffer(name, w)

    def _options(self) -> dict[str, Any]:
        return {"reduction": self.reduction, **self._buffers}

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return type(self)._function(input, target, **self._options())

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error: F.mse_loss."""

    _function = F.mse_loss

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction)


class L1Loss(_Loss):
    """Mean absolute error: F.l1_loss."""

    _function = F.l1_loss

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction)


class NLLLoss(_Loss):
    """Negative log-likelihood of class indices under log-probabilities (classes on dimension 1): F.nll_loss."""

    _function = F.nll_loss

    def __init__(self, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction, weight=weight)
        self.ignore_index = ignore_index

    def _options(self) -> dict[str, Any]:
        return {**super()._options(), "ignore_index": self.ignore_index}


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy: F.cross_entropy with these options (those left at their default are not passed)."""

    _function = F.cross_entropy

    def __init__(self, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(reduction, weight=weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def _options(self) -> dict[str, Any]:
        options = {"reduction": self.reduction, "ignore_index": self.ignore_index}
        if self.weight is not None:
            options["weight"] = self.weight
        if self.label_smoothing:
            options["label_smoothing"] = self.label_smoothing
        return options


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities: F.binary_cross_entropy."""

    _function = F.binary_cross_entropy

    def __init__(self, weight: Tensor | None = None, reduction: str = "mean"):
        super().__init__(reduction, weight=weight)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits (sigmoid inside, stably): F.binary_cross_entropy_with_logits."""

    _function = F.binary_cross_entropy_with_logits

    def __init__(self, weight: Tensor | None = None, reduction: str = "mean", pos_weight: Tensor | None = None):
        super().__init__(reduction, weight=weight, pos_weight=pos_weight)
