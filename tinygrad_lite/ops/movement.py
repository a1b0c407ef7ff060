"""Movement ops: reshape, permute/transpose, expand, indexing, concatenation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..tensor import Function, Tensor, int_args
from . import broadcast_shape, normalize_axis, tensor_method, unbroadcast


class Reshape(Function):
    def forward(self, x, shape=()):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return (g.reshape(self.in_shape),)


@tensor_method
def reshape(self: Tensor, *shape: int | Sequence[int]) -> Tensor:
    """The same elements in a new shape; one dimension may be -1."""
    dims = int_args("reshape", shape)
    known = [d for d in dims if d != -1]
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise ValueError(f"reshape: invalid target shape {dims} for a tensor of shape {self.shape}")
    size = int(np.prod(known))
    if (-1 in dims and (size == 0 or self.size % size)) or (-1 not in dims and size != self.size):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {self.shape} ({self.size} elements) "
                         f"into shape {dims}")
    return Reshape.apply(self, shape=dims)


Tensor.view = reshape


@tensor_method
def flatten(self: Tensor, start_axis: int = 0, end_axis: int = -1) -> Tensor:
    """Merge axes start_axis..end_axis into one."""
    if self.ndim == 0:
        return self.reshape(1)
    start, end = (normalize_axis("flatten", a, self.ndim)[0] for a in (start_axis, end_axis))
    if start > end:
        raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis}")
    return self.reshape(self.shape[:start] + (-1,) + self.shape[end + 1:])


@tensor_method
def unsqueeze(self: Tensor, axis: int) -> Tensor:
    """Insert a size-1 axis at `axis` (negative counts from the end of the result)."""
    (a,) = normalize_axis("unsqueeze", axis, self.ndim + 1)
    return self.reshape(self.shape[:a] + (1,) + self.shape[a:])


@tensor_method
def squeeze(self: Tensor, axis: int | tuple[int, ...] | None = None) -> Tensor:
    """Drop size-1 axes: all of them, or those listed in `axis` (a listed axis of another size
    stays, as in PyTorch)."""
    axes = range(self.ndim) if axis is None else normalize_axis("squeeze", axis, self.ndim)
    drop = {a for a in axes if self.shape[a] == 1}
    return self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in drop))


class Permute(Function):
    def forward(self, x, axes=()):
        self.inverse = tuple(np.argsort(axes))
        return x.transpose(axes)

    def backward(self, g):
        return (g.transpose(self.inverse),)


@tensor_method
def permute(self: Tensor, *axes: int | Sequence[int]) -> Tensor:
    """Reorder the axes: result axis i is input axis axes[i]."""
    dims = int_args("permute", axes, "axes")
    if len(dims) != self.ndim:
        raise ValueError(f"permute: got {len(dims)} axes {dims} for a tensor with {self.ndim} dimensions")
    norm = tuple(normalize_axis("permute", d, self.ndim)[0] for d in dims)
    if len(set(norm)) != len(norm):
        raise ValueError(f"permute: repeated axis in {dims}")
    return Permute.apply(self, axes=norm)


@tensor_method
def transpose(self: Tensor, axis0: int = -2, axis1: int = -1) -> Tensor:
    """Swap two axes (by default the last two, as for a batch of matrices)."""
    if self.ndim < 2:
        raise ValueError(f"transpose: needs at least 2 dimensions, got shape {self.shape}")
    a, b = (normalize_axis("transpose", d, self.ndim)[0] for d in (axis0, axis1))
    order = list(range(self.ndim))
    order[a], order[b] = order[b], order[a]
    return Permute.apply(self, axes=tuple(order))


Tensor.T = property(lambda self: self if self.ndim < 2 else Permute.apply(self, axes=tuple(reversed(range(self.ndim)))))


class Expand(Function):
    def forward(self, x, shape=()):
        self.in_shape = x.shape
        return np.broadcast_to(x, shape)

    def backward(self, g):
        return (unbroadcast(g, self.in_shape),)


@tensor_method
def expand(self: Tensor, *shape: int | Sequence[int]) -> Tensor:
    """Broadcast to `shape` without copying (-1 keeps a dimension)."""
    dims = int_args("expand", shape)
    lead = len(dims) - self.ndim
    if lead < 0:
        raise ValueError(f"expand: target shape {dims} has fewer dimensions than the tensor's shape {self.shape}")
    target = tuple(self.shape[i - lead] if d == -1 and i >= lead else d for i, d in enumerate(dims))
    if broadcast_shape("expand", self.shape, target) != target:
        raise ValueError(f"expand: cannot expand shape {self.shape} to {dims}")
    return Expand.apply(self, shape=target)


Tensor.broadcast_to = expand


# ---- indexing ---------------------------------------------------------------------------


def _index_key(key: Any) -> Any:
    """Tensors inside an index become their arrays."""
    if isinstance(key, tuple):
        return tuple(_index_key(k) for k in key)
    if isinstance(key, Tensor):
        return key.data
    if isinstance(key, list):
        return np.asarray(key)
    return key


def _has_int_array(key: Any) -> bool:
    parts = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, np.ndarray) and k.dtype.kind in "iu" for k in parts)


class GetItem(Function):
    def forward(self, x, key=None):
        self.in_shape, self.dtype, self.key = x.shape, x.dtype, key
        return x[key]

    def backward(self, g):
        out = np.zeros(self.in_shape, dtype=self.dtype)
        self.backward_into(g, out)
        return (out,)

    def backward_into(self, g, accumulated):
        # the backward walk calls this when the input already has a gradient: only the indexed part changes
        if _has_int_array(self.key):
            np.add.at(accumulated, self.key, g)  # repeated indices accumulate
        else:
            accumulated[self.key] += g


def _getitem(self: Tensor, key: Any) -> Tensor:
    """numpy indexing: ints, slices, None, Ellipsis, integer or boolean arrays."""
    k = _index_key(key)
    try:
        return GetItem.apply(self, key=k)
    except IndexError as e:
        raise IndexError(f"getitem: index {key!r} is invalid for a tensor of shape {self.shape}: {e}") from None


Tensor.__getitem__ = _getitem


def _setitem(self: Tensor, key: Any, value: Any) -> None:
    raise TypeError("Tensor does not support item assignment (it would break the graph); "
                    "build a new tensor with where(), masked_fill() or cat(), or edit .data under no_grad")


Tensor.__setitem__ = _setitem


def _one_axis(op: str, axis: int, t: Tensor) -> int:
    """One real axis of `t` (a 0-d tensor has none)."""
    if t.ndim == 0:
        raise ValueError(f"{op}: a 0-d tensor has no axis to work along")
    return normalize_axis(op, axis, t.ndim)[0]


@tensor_method
def split(self: Tensor, size: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Pieces of `size` along `axis` (the last may be smaller), or of the listed sizes."""
    a = _one_axis("split", axis, self)
    n = self.shape[a]
    if isinstance(size, (int, np.integer)):
        if size <= 0:
            raise ValueError(f"split: size must be a positive int, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = list(size)
    if any(s < 0 for s in sizes) or sum(sizes) != n:
        raise ValueError(f"split: sizes {sizes} do not add up to {n}, the size of axis {axis} in shape {self.shape}")
    pieces, start = [], 0
    for s in sizes:
        pieces.append(self[(slice(None),) * a + (slice(start, start + s),)])
        start += s
    return pieces


@tensor_method
def chunk(self: Tensor, chunks: int, axis: int = 0) -> list[Tensor]:
    """`chunks` nearly equal pieces along `axis` (as torch.chunk)."""
    if not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    a = _one_axis("chunk", axis, self)
    return self.split(-(-self.shape[a] // chunks), axis=a)


# ---- joining ----------------------------------------------------------------------------


class Cat(Function):
    def forward(self, *xs, axis=0):
        self.axis, self.bounds = axis, np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    def backward(self, g):
        pieces = np.split(g, self.bounds, axis=self.axis)
        return tuple(p if need else None for p, need in zip(pieces, self.needs_input_grad))


def _tensor_list(op: str, tensors: Sequence[Tensor]) -> list[Tensor]:
    tensors = list(tensors)
    if len(tensors) == 0:
        raise ValueError(f"{op}: needs at least one tensor")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: item {i} is a {type(t).__name__}, not a Tensor")
    return tensors


def _check_joinable(op: str, tensors: list[Tensor], axis: int | None) -> None:
    """Same rank and same sizes outside `axis` (None: every axis must match)."""
    first = tensors[0].shape
    for i, t in enumerate(tensors):
        same = t.ndim == len(first) and all(n == m for d, (n, m) in enumerate(zip(t.shape, first)) if d != axis)
        if not same:
            raise ValueError(f"{op}: tensor {i} has shape {t.shape}, which does not match shape {first} of tensor 0"
                             + (f" outside axis {axis}" if axis is not None else ""))


def cat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    tensors = _tensor_list("cat", tensors)
    a = _one_axis("cat", axis, tensors[0])
    _check_joinable("cat", tensors, a)
    return Cat.apply(*tensors, axis=a)


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join same-shape tensors along a new axis."""
    tensors = _tensor_list("stack", tensors)
    _check_joinable("stack", tensors, None)
    (a,) = normalize_axis("stack", axis, tensors[0].ndim + 1)
    return Cat.apply(*[t.unsqueeze(a) for t in tensors], axis=a)


Tensor.cat = staticmethod(cat)
Tensor.stack = staticmethod(stack)
