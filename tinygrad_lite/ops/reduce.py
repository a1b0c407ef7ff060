"""Reductions (sum, mean, max, min, var) and the normalising ones (softmax, log_softmax, logsumexp).

Axes follow numpy's spelling: `axis=None | int | tuple`, negative allowed, `keepdims`.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Function, Tensor
from . import floating, normalize_axis, tensor_method


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` with the reduced axes set to 1 (the keepdims shape)."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    def forward(self, x, axis=(), keepdims=False):
        self.shape, self.kept = x.shape, _kept_shape(x.shape, axis)
        return np.sum(x, axis=axis, keepdims=keepdims)

    def backward(self, g):
        return (np.broadcast_to(g.reshape(self.kept), self.shape),)


class Mean(Function):
    def forward(self, x, axis=(), keepdims=False):
        self.shape, self.kept = x.shape, _kept_shape(x.shape, axis)
        self.count = max(int(np.prod([x.shape[a] for a in axis])), 1)
        return np.mean(x, axis=axis, keepdims=keepdims)

    def backward(self, g):
        return (np.broadcast_to(g.reshape(self.kept) / self.count, self.shape),)


class Max(Function):
    """Max over axes; tied maxima share the gradient equally (as torch.amax)."""

    def forward(self, x, axis=(), keepdims=False):
        out = np.max(x, axis=axis, keepdims=True)
        self.hit, self.axis, self.kept = x == out, axis, out.shape
        return out if keepdims else out.reshape([n for i, n in enumerate(x.shape) if i not in axis])

    def backward(self, g):
        count = self.hit.sum(axis=self.axis, keepdims=True, dtype=g.dtype)
        return (self.hit * (g.reshape(self.kept) / count),)


class Var(Function):
    def forward(self, x, axis=(), keepdims=False, correction=1):
        self.kept = _kept_shape(x.shape, axis)
        n = int(np.prod([x.shape[a] for a in axis]))
        self.centred = x - np.mean(x, axis=axis, keepdims=True)
        self.denominator = max(n - correction, 0)
        total = np.sum(self.centred * self.centred, axis=axis, keepdims=keepdims)
        with np.errstate(divide="ignore", invalid="ignore"):
            return total / self.denominator

    def backward(self, g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g.reshape(self.kept) * self.centred * (2 / self.denominator if self.denominator else np.inf),)


class Std(Var):
    def forward(self, x, axis=(), keepdims=False, correction=1):
        self.std = np.sqrt(super().forward(x, axis, keepdims, correction))
        return self.std

    def backward(self, g):
        # d std = d var / (2 std), taken as 0 where std == 0 (as PyTorch): a constant input has no slope to follow
        with np.errstate(divide="ignore", invalid="ignore"):
            g_var = np.where(self.std == 0, 0, g / (2 * self.std))
        return super().backward(g_var.astype(g.dtype, copy=False))


def _reduction(name: str, fn: type[Function], doc: str):
    def method(self: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        axes = normalize_axis(name, axis, self.ndim)
        if fn is Max and any(self.shape[a] == 0 for a in axes):
            raise ValueError(f"{name}: cannot reduce an empty axis (shape {self.shape}, axis {axis})")
        return fn.apply(self, axis=axes, keepdims=keepdims)

    method.__name__ = name
    method.__doc__ = doc
    return tensor_method(method)


_reduction("sum", Sum, "Sum over `axis` (None: all axes).")
_reduction("mean", Mean, "Mean over `axis` (None: all axes).")
_reduction("max", Max, "Max over `axis`; ties share the gradient equally.")


@tensor_method
def min_(self: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """Min over `axis`; ties share the gradient equally."""
    return -((-self).max(axis=axis, keepdims=keepdims))


@tensor_method
def var(self: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False,
        correction: int = 1) -> Tensor:
    """Variance over `axis`, dividing by N - correction (1 by default: unbiased, as torch.var)."""
    axes = normalize_axis("var", axis, self.ndim)
    return Var.apply(self, axis=axes, keepdims=keepdims, correction=correction)


@tensor_method
def std(self: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False,
        correction: int = 1) -> Tensor:
    """Standard deviation: sqrt of `var` with the same arguments (gradient 0 where it is 0, as in PyTorch)."""
    axes = normalize_axis("std", axis, self.ndim)
    return Std.apply(self, axis=axes, keepdims=keepdims, correction=correction)


def _argreduce(name: str, fn):
    def method(self: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
        a = None if axis is None or self.ndim == 0 else normalize_axis(name, axis, self.ndim)[0]
        empty = self.size == 0 if a is None else self.shape[a] == 0
        if empty:
            raise ValueError(f"{name}: cannot take the {name[3:]} of an empty axis (shape {self.shape}, axis {axis})")
        return Tensor(np.asarray(fn(self.data, axis=a, keepdims=keepdims and a is not None)))

    method.__name__ = name
    method.__doc__ = f"Index of the {name[3:]} along `axis` (flat index when axis is None); no gradient."
    return tensor_method(method)


_argreduce("argmax", np.argmax)
_argreduce("argmin", np.argmin)


# ---- softmax family ---------------------------------------------------------------------


class Softmax(Function):
    def forward(self, x, axis=-1):
        # initial=-inf: an empty axis gives an empty result, not an error; asarray: an array even for 0-d x
        out = np.asarray(x - x.max(axis=axis, keepdims=True, initial=-np.inf))
        np.exp(out, out=out)
        out /= out.sum(axis=axis, keepdims=True)
        self.out, self.axis = out, axis
        return out

    def backward(self, g):
        # s * (g - sum(g * s)), reusing the one fresh array
        s = self.out
        gs = np.asarray(g * s)
        dot = gs.sum(axis=self.axis, keepdims=True)
        np.subtract(g, dot, out=gs)
        gs *= s
        return (gs,)


class LogSoftmax(Function):
    def forward(self, x, axis=-1):
        shifted = np.asarray(x - x.max(axis=axis, keepdims=True, initial=-np.inf))
        with np.errstate(divide="ignore"):  # log(0): an empty axis, or a row of -inf (NaN, as in PyTorch)
            shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        self.out, self.axis = shifted, axis
        return shifted

    def backward(self, g):
        return (g - np.exp(self.out) * g.sum(axis=self.axis, keepdims=True),)


class LogSumExp(Function):
    def forward(self, x, axis=(), keepdims=False):
        m = x.max(axis=axis, keepdims=True, initial=-np.inf)  # an empty axis: logsumexp = -inf
        m = np.where(np.isfinite(m), m, 0)
        e = np.exp(x - m)
        s = e.sum(axis=axis, keepdims=True)
        self.softmax, self.kept = e / s, s.shape
        with np.errstate(divide="ignore"):  # log(0) = -inf: an empty axis, or every entry -inf
            out = np.log(s) + m
        return out if keepdims else out.reshape([n for i, n in enumerate(x.shape) if i not in axis])

    def backward(self, g):
        return (g.reshape(self.kept) * self.softmax,)


def _single_axis(op: str, axis: int, ndim: int) -> int | None:
    """One axis as a non-negative int (None for a 0-d tensor: normalise over its single value)."""
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{op}: axis must be a single int, got {axis!r}")
    axes = normalize_axis(op, axis, ndim)
    return axes[0] if axes else None


@tensor_method
def softmax(self: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, stable for any magnitude; entries of -inf give exact zeros."""
    return Softmax.apply(floating(self), axis=_single_axis("softmax", axis, self.ndim))


@tensor_method
def log_softmax(self: Tensor, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along `axis`, stable for logits of any magnitude."""
    return LogSoftmax.apply(floating(self), axis=_single_axis("log_softmax", axis, self.ndim))


@tensor_method
def logsumexp(self: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over `axis`, stable for any magnitude."""
    return LogSumExp.apply(floating(self), axis=normalize_axis("logsumexp", axis, self.ndim), keepdims=keepdims)
