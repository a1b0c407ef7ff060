"""Reductions (sum, mean, amax, var, std, max/min with indices) and the normalising ones (softmax, log_softmax,
logsumexp).

Axes are PyTorch's `dim=` / `keepdim=` or numpy's `axis=` / `keepdims=` (either, not both): None, an int
(negative counts from the end) or a tuple.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

from ..tensor import Function, Tensor
from . import floating, normalize_axis, pick, tensor_method


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` with the reduced axes set to 1 (the keepdims shape)."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _axes(op: str, t: Tensor, dim: Any, axis: Any) -> tuple[int, ...]:
    return normalize_axis(op, pick(op, "dim", dim, "axis", axis, None), t.ndim)


def _keep(op: str, keepdim: bool | None, keepdims: bool | None) -> bool:
    return bool(pick(op, "keepdim", keepdim, "keepdims", keepdims, False))


class Sum(Function):
    def forward(self, x, axis=(), keepdims=False):
        return np.sum(x, axis=axis, keepdims=keepdims)

    def backward(self, g):
        shape = self.parents[0].shape
        return (g.reshape(_kept_shape(shape, self.params["axis"])).expand(shape),)


class Mean(Function):
    def forward(self, x, axis=(), keepdims=False):
        return np.mean(x, axis=axis, keepdims=keepdims)

    def backward(self, g):
        shape, axis = self.parents[0].shape, self.params["axis"]
        count = max(int(np.prod([shape[a] for a in axis])), 1)
        return ((g / count).reshape(_kept_shape(shape, axis)).expand(shape),)


class Amax(Function):
    """Max over axes; tied maxima share the gradient equally (as torch.amax)."""

    def forward(self, x, axis=(), keepdims=False):
        out = np.max(x, axis=axis, keepdims=True)
        hit = x == out
        self.share = (hit / hit.sum(axis=axis, keepdims=True)).astype(x.dtype)
        return out if keepdims else out.reshape([n for i, n in enumerate(x.shape) if i not in axis])

    def backward(self, g):
        return (g.reshape(_kept_shape(self.share.shape, self.params["axis"])) * self.share,)


def _centred(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """x minus its mean over `axes`, exactly 0 where x is constant along them (as PyTorch's variance is):
    shifting by the first element first makes a constant run exactly zero before the mean rounds."""
    first = x[tuple(slice(0, 1) if i in axes else slice(None) for i in range(x.ndim))]
    shifted = x - first
    with np.errstate(invalid="ignore"):  # an empty axis: NaN, as in PyTorch
        return shifted - shifted.mean(axis=axes, keepdims=True)


class Var(Function):
    def forward(self, x, axis=(), keepdims=False, correction=1):
        n = int(np.prod([x.shape[a] for a in axis]))
        total = np.sum(np.square(_centred(x, axis)), axis=axis, keepdims=keepdims)
        with np.errstate(divide="ignore", invalid="ignore"):
            return total / max(n - correction, 0)

    def backward(self, g):
        return (_var_grad(self.parents[0], g, self.params),)


def _var_grad(x: Tensor, g: Tensor, params: dict[str, Any]) -> Tensor:
    """d var / dx = 2 (x - mean) / (N - correction), times the upstream `g` (in Tensor ops, so differentiable)."""
    axis, correction = params["axis"], params["correction"]
    denominator = max(int(np.prod([x.shape[a] for a in axis])) - correction, 0)
    first = Tensor._make(x.data[tuple(slice(0, 1) if i in axis else slice(None) for i in range(x.ndim))], False, None)
    shifted = x - first  # as in `_centred`: exact zeros for constant input
    centred = shifted - shifted.mean(axis=axis, keepdims=True)
    return g.reshape(_kept_shape(x.shape, axis)) * centred * (2.0 / denominator if denominator else np.inf)


class Std(Function):
    def forward(self, x, axis=(), keepdims=False, correction=1):
        return np.sqrt(Var.forward(self, x, axis, keepdims, correction))

    def backward(self, g):
        # d std = d var / (2 std), taken as 0 where std == 0 (as PyTorch): a constant input has no slope to follow.
        # The denominator avoids 0 too, so that differentiating this again gives no 0 * inf.
        std = self.output
        zero = std.data == 0
        g_var = Tensor.where(zero, 0.0, g / (Tensor.where(zero, 1.0, std) * 2.0))
        return (_var_grad(self.parents[0], g_var, self.params),)


def _reduction(name: str, fn: type[Function], doc: str):
    def method(self: Tensor, dim: int | tuple[int, ...] | None = None, keepdim: bool | None = None, *,
               axis: int | tuple[int, ...] | None = None, keepdims: bool | None = None) -> Tensor:
        axes = _axes(name, self, dim, axis)
        if fn is Amax and any(self.shape[a] == 0 for a in axes):
            raise ValueError(f"{name}: cannot reduce an empty dim (shape {self.shape}, dim {axes})")
        return fn.apply(self, axis=axes, keepdims=_keep(name, keepdim, keepdims))

    method.__name__ = name
    method.__doc__ = doc
    return tensor_method(method)


_reduction("sum", Sum, "Sum over `dim` (None: all dims).")
_reduction("mean", Mean, "Mean over `dim` (None: all dims).")
_reduction("amax", Amax, "Max over `dim` (None: all dims); tied maxima share the gradient equally.")


@tensor_method
def amin(self: Tensor, dim: int | tuple[int, ...] | None = None, keepdim: bool | None = None, *,
         axis: int | tuple[int, ...] | None = None, keepdims: bool | None = None) -> Tensor:
    """Min over `dim` (None: all dims); tied minima share the gradient equally."""
    return -((-self).amax(dim, keepdim, axis=axis, keepdims=keepdims))


MaxResult = namedtuple("max", ["values", "indices"])  # as torch.return_types.max
MinResult = namedtuple("min", ["values", "indices"])


def _extreme(name: str, self: Tensor, dim: Any, keepdim: Any, axis: Any, keepdims: Any) -> Any:
    """max/min: over everything (a 0-d tensor), along one dim ((values, indices)), or against another tensor."""
    if isinstance(dim, Tensor):
        return self.maximum(dim) if name == "max" else self.minimum(dim)
    which = pick(name, "dim", dim, "axis", axis, None)
    keep = _keep(name, keepdim, keepdims)
    if which is None:
        return self.amax(keepdim=keep) if name == "max" else self.amin(keepdim=keep)
    if not isinstance(which, (int, np.integer)) or isinstance(which, bool):
        raise TypeError(f"{name}: dim must be a single int (for several dims use amax/amin), got {which!r}")
    (a,) = normalize_axis(name, which, self.ndim) or (None,)
    if a is None:  # a 0-d tensor: itself, at index 0
        return (MaxResult if name == "max" else MinResult)(self, Tensor(np.zeros((), dtype=np.int64)))
    if self.shape[a] == 0:
        raise ValueError(f"{name}: cannot reduce an empty dim (shape {self.shape}, dim {which})")
    indices = (np.argmax if name == "max" else np.argmin)(self.data, axis=a, keepdims=True)
    key = list(np.indices(indices.shape, sparse=True))
    key[a] = indices
    values = self[tuple(key)]  # the gradient goes to the first extreme only, as PyTorch's max(dim) does
    if not keep:
        values, indices = values.squeeze(a), indices.squeeze(a)
    return (MaxResult if name == "max" else MinResult)(values, Tensor(indices))


@tensor_method
def max_(self: Tensor, dim: Any = None, keepdim: bool | None = None, *, axis: Any = None,
         keepdims: bool | None = None) -> Any:
    """`max()`: the largest value (0-d; ties share the gradient). `max(dim)`: `(values, indices)` along dim
    (the gradient goes to the first maximum). `max(other)`: `maximum`. As torch.max."""
    return _extreme("max", self, dim, keepdim, axis, keepdims)


@tensor_method
def min_(self: Tensor, dim: Any = None, keepdim: bool | None = None, *, axis: Any = None,
         keepdims: bool | None = None) -> Any:
    """`min()`, `min(dim)` -> `(values, indices)`, `min(other)`: as `max`, for the smallest."""
    return _extreme("min", self, dim, keepdim, axis, keepdims)


def _spread(name: str, fn: type[Function]):
    def method(self: Tensor, dim: int | tuple[int, ...] | None = None, *, correction: int | None = None,
               keepdim: bool | None = None, unbiased: bool | None = None, axis: int | tuple[int, ...] | None = None,
               keepdims: bool | None = None) -> Tensor:
        if correction is not None and unbiased is not None:
            raise TypeError(f"{name}: give correction= or unbiased=, not both")
        corr = correction if correction is not None else 1 if unbiased is None else int(bool(unbiased))
        axes = _axes(name, self, dim, axis)
        return fn.apply(floating(self), axis=axes, keepdims=_keep(name, keepdim, keepdims), correction=corr)

    method.__name__ = name
    return method


var = tensor_method(_spread("var", Var))
var.__doc__ = "Variance over `dim`, dividing by N - correction (1 by default: unbiased, as torch.var)."
std = tensor_method(_spread("std", Std))
std.__doc__ = "Standard deviation: sqrt of `var` with the same arguments (gradient 0 where it is 0, as in PyTorch)."


def _argreduce(name: str, fn):
    def method(self: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,
               keepdims: bool | None = None) -> Tensor:
        which = pick(name, "dim", dim, "axis", axis, None)
        keep = _keep(name, keepdim or None, keepdims)
        a = None if which is None or self.ndim == 0 else normalize_axis(name, which, self.ndim)[0]
        empty = self.numel() == 0 if a is None else self.shape[a] == 0
        if empty:
            raise ValueError(f"{name}: cannot take the {name[3:]} of an empty dim (shape {self.shape}, dim {which})")
        return Tensor(np.asarray(fn(self.data, axis=a, keepdims=keep and a is not None)))

    method.__name__ = name
    method.__doc__ = f"Index of the {name[3:]} along `dim` (flat index when dim is None); no gradient."
    return tensor_method(method)


_argreduce("argmax", np.argmax)
_argreduce("argmin", np.argmin)


def _truth(name: str, fn):
    def method(self: Tensor, dim: int | tuple[int, ...] | None = None, keepdim: bool | None = None, *,
               axis: int | tuple[int, ...] | None = None, keepdims: bool | None = None) -> Tensor:
        axes = _axes(name, self, dim, axis)
        return Tensor(np.asarray(fn(self.data, axis=axes, keepdims=_keep(name, keepdim, keepdims))))

    method.__name__ = name
    method.__doc__ = f"Whether {name} elements along `dim` are nonzero (None: all dims), as bool; no gradient."
    return tensor_method(method)


_truth("any", np.any)
_truth("all", np.all)


# ---- softmax family ---------------------------------------------------------------------


class SoftmaxFunction(Function):
    """softmax (the Function; `nn.Softmax` is the Module)."""

    def forward(self, x, axis=-1):
        # initial=-inf: an empty axis gives an empty result, not an error; asarray: an array even for 0-d x
        out = np.asarray(x - x.max(axis=axis, keepdims=True, initial=-np.inf))
        np.exp(out, out=out)
        out /= out.sum(axis=axis, keepdims=True)
        return out

    def backward(self, g):
        s = self.output  # s (g - sum(g s))
        gs = g * s
        return (gs - s * gs.sum(axis=self.params["axis"], keepdims=True),)


class LogSoftmaxFunction(Function):
    """log_softmax (the Function; `nn.LogSoftmax` is the Module)."""

    def forward(self, x, axis=-1):
        shifted = np.asarray(x - x.max(axis=axis, keepdims=True, initial=-np.inf))
        with np.errstate(divide="ignore"):  # log(0): an empty axis, or a row of -inf (NaN, as in PyTorch)
            shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        return shifted

    def backward(self, g):
        return (g - self.output.exp() * g.sum(axis=self.params["axis"], keepdims=True),)


class LogSumExp(Function):
    def forward(self, x, axis=(), keepdims=False):
        m = x.max(axis=axis, keepdims=True, initial=-np.inf)  # an empty axis: logsumexp = -inf
        m = np.where(np.isfinite(m), m, 0)
        with np.errstate(divide="ignore"):  # log(0) = -inf: an empty axis, or every entry -inf
            out = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
        return out if keepdims else out.reshape([n for i, n in enumerate(x.shape) if i not in axis])

    def backward(self, g):
        (x,), kept = self.parents, _kept_shape(self.parents[0].shape, self.params["axis"])
        return (g.reshape(kept) * (x - self.output.reshape(kept)).exp(),)


def _single_axis(op: str, dim: Any, axis: Any, ndim: int) -> int | None:
    """One axis as a non-negative int (None for a 0-d tensor: normalise over its single value)."""
    which = pick(op, "dim", dim, "axis", axis, -1)
    if not isinstance(which, (int, np.integer)) or isinstance(which, bool):
        raise TypeError(f"{op}: dim must be a single int, got {which!r}")
    axes = normalize_axis(op, which, ndim)
    return axes[0] if axes else None


@tensor_method
def softmax(self: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim` (default -1), stable for any magnitude; -inf entries give exact zeros."""
    return SoftmaxFunction.apply(floating(self), axis=_single_axis("softmax", dim, axis, self.ndim))


@tensor_method
def log_softmax(self: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """x - logsumexp(x) along `dim` (default -1), stable for logits of any magnitude."""
    return LogSoftmaxFunction.apply(floating(self), axis=_single_axis("log_softmax", dim, axis, self.ndim))


@tensor_method
def logsumexp(self: Tensor, dim: int | tuple[int, ...] | None = None, keepdim: bool | None = None, *,
              axis: int | tuple[int, ...] | None = None, keepdims: bool | None = None) -> Tensor:
    """log(sum(exp(x))) over `dim`, stable for any magnitude."""
    return LogSumExp.apply(floating(self), axis=_axes("logsumexp", self, dim, axis),
                           keepdims=_keep("logsumexp", keepdim, keepdims))
