"""Movement ops: reshape, permute/transpose, expand, indexing and index assignment, concatenation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..tensor import Function, Indexed, Tensor, _unbroadcast, in_place, int_args
from . import broadcast_shape, normalize_axis, pick, promote, tensor_method


class Reshape(Function):
    def forward(self, x, shape=()):
        return x.reshape(shape)

    def backward(self, g):
        return (g.reshape(self.parents[0].shape),)


@tensor_method
def reshape(self: Tensor, *shape: int | Sequence[int]) -> Tensor:
    """The same elements in a new shape; one dimension may be -1."""
    dims = int_args("reshape", shape)
    known = [d for d in dims if d != -1]
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise ValueError(f"reshape: invalid target shape {dims} for a tensor of shape {self.shape}")
    size = math.prod(known)
    if (-1 in dims and (size == 0 or self.numel() % size)) or (-1 not in dims and size != self.numel()):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {self.shape} ({self.numel()} elements) "
                         f"into shape {dims}")
    if dims == self.shape:
        return self
    return Reshape.apply(self, shape=dims)


Tensor.view = reshape


@tensor_method
def flatten(self: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one."""
    if self.ndim == 0:
        return self.reshape(1)
    start, end = (normalize_axis("flatten", a, self.ndim)[0] for a in (start_dim, end_dim))
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return self.reshape(self.shape[:start] + (-1,) + self.shape[end + 1:])


@tensor_method
def unsqueeze(self: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dim at `dim` (negative counts from the end of the result)."""
    (a,) = normalize_axis("unsqueeze", dim, self.ndim + 1)
    return self.reshape(self.shape[:a] + (1,) + self.shape[a:])


@tensor_method
def squeeze(self: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
    """Drop size-1 dims: all of them, or those listed in `dim` (a listed dim of another size stays, as in PyTorch)."""
    axes = range(self.ndim) if dim is None else normalize_axis("squeeze", dim, self.ndim)
    drop = {a for a in axes if self.shape[a] == 1}
    return self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in drop))


class Permute(Function):
    def forward(self, x, axes=()):
        return x.transpose(axes)

    def backward(self, g):
        return (g.permute(tuple(np.argsort(self.params["axes"]))),)


@tensor_method
def permute(self: Tensor, *dims: int | Sequence[int]) -> Tensor:
    """Reorder the dims: result dim i is input dim dims[i]."""
    order = int_args("permute", dims, "dims")
    if len(order) != self.ndim:
        raise ValueError(f"permute: got {len(order)} dims {order} for a tensor with {self.ndim} dimensions")
    norm = tuple(normalize_axis("permute", d, self.ndim)[0] for d in order)
    if len(set(norm)) != len(norm):
        raise ValueError(f"permute: repeated dim in {order}")
    return Permute.apply(self, axes=norm)


@tensor_method
def transpose(self: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap dims `dim0` and `dim1` (both required, as in PyTorch)."""
    if self.ndim == 0:
        raise ValueError(f"transpose: a 0-d tensor has no dims to swap (dims {dim0} and {dim1})")
    (a,), (b,) = normalize_axis("transpose", dim0, self.ndim), normalize_axis("transpose", dim1, self.ndim)
    order = list(range(self.ndim))
    order[a], order[b] = order[b], order[a]
    return self if a == b else Permute.apply(self, axes=tuple(order))


@tensor_method
def t(self: Tensor) -> Tensor:
    """The transpose of a matrix (a tensor of at most 2 dims is returned as is when 0-d or 1-d, as torch.t)."""
    if self.ndim > 2:
        raise ValueError(f"t: expects a tensor with at most 2 dims, got shape {self.shape} "
                         f"(use transpose(dim0, dim1) or permute)")
    return self if self.ndim < 2 else self.transpose(0, 1)


Tensor.T = property(lambda self: self if self.ndim < 2 else Permute.apply(self, axes=tuple(reversed(range(self.ndim)))))
Tensor.mT = property(lambda self: self.transpose(-2, -1))


class Expand(Function):
    def forward(self, x, shape=()):
        return np.broadcast_to(x, shape)

    def backward(self, g):
        return (g,)  # the walk sums it back to the input's shape


@tensor_method
def expand(self: Tensor, *sizes: int | Sequence[int]) -> Tensor:
    """Broadcast to `sizes` without copying (-1 keeps a dimension)."""
    dims = int_args("expand", sizes)
    lead = len(dims) - self.ndim
    if lead < 0:
        raise ValueError(f"expand: target shape {dims} has fewer dimensions than the tensor's shape {self.shape}")
    target = tuple(self.shape[i - lead] if d == -1 and i >= lead else d for i, d in enumerate(dims))
    if broadcast_shape("expand", self.shape, target) != target:
        raise ValueError(f"expand: cannot expand shape {self.shape} to {dims}")
    return Expand.apply(self, shape=target)


Tensor.broadcast_to = expand


@tensor_method
def sum_to_size(self: Tensor, *size: int | Sequence[int]) -> Tensor:
    """Sum the broadcast dims away, back to `size` (which must broadcast to this shape), as torch.sum_to_size."""
    dims = int_args("sum_to_size", size)
    if len(dims) > self.ndim or broadcast_shape("sum_to_size", dims, self.shape) != self.shape:
        raise ValueError(f"sum_to_size: size {dims} is not broadcastable to the tensor's shape {self.shape}")
    return _unbroadcast(self, dims)


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


class GetItem(Function):
    def forward(self, x, key=None):
        return x[key]

    def backward(self, g):
        return (Indexed(self.params["key"], g),)


def _getitem(self: Tensor, key: Any) -> Tensor:
    """numpy indexing: ints, slices, None, Ellipsis, integer or boolean arrays."""
    k = _index_key(key)
    try:
        return GetItem.apply(self, key=k)
    except IndexError as e:
        raise IndexError(f"getitem: index {key!r} is invalid for a tensor of shape {self.shape}: {e}") from None


Tensor.__getitem__ = _getitem


class IndexPut(Function):
    """x with x[key] = values: what `x[key] = values` records while a graph is kept."""

    def forward(self, x, values, key=None):
        out = x.copy()
        out[key] = values
        return out

    def backward(self, g):
        key = self.params["key"]
        zero = Tensor._make(np.zeros((), dtype=g.dtype), False, None)
        return (IndexPut.apply(g, zero, key=key) if self.needs_input_grad[0] else None,
                g[key] if self.needs_input_grad[1] else None)


def _setitem(self: Tensor, key: Any, value: Any) -> None:
    """x[key] = value, in place (PyTorch's rules: see `in_place`)."""
    k = _index_key(key)
    v = value if isinstance(value, Tensor) else Tensor(np.asarray(value, dtype=self.dtype))
    try:
        target_shape = self.data[k].shape
    except IndexError as e:
        raise IndexError(f"setitem: index {key!r} is invalid for a tensor of shape {self.shape}: {e}") from None
    if broadcast_shape("setitem", v.shape, target_shape) != target_shape:
        raise ValueError(f"setitem: a value of shape {v.shape} does not fit x[{key!r}] of shape {target_shape}")

    def write(array: np.ndarray) -> None:
        array[k] = v.data

    in_place(self, "setitem", lambda t: IndexPut.apply(t, v.to(t.dtype), key=k), v, write=write)


Tensor.__setitem__ = _setitem


def _one_axis(op: str, dim: int, t: Tensor) -> int:
    """One real dim of `t` (a 0-d tensor has none)."""
    if t.ndim == 0:
        raise ValueError(f"{op}: a 0-d tensor has no dim to work along")
    return normalize_axis(op, dim, t.ndim)[0]


@tensor_method
def split(self: Tensor, split_size_or_sections: int | Sequence[int], dim: int | None = None, *,
          axis: int | None = None) -> list[Tensor]:
    """Pieces of `split_size_or_sections` along `dim` (the last may be smaller), or of the listed sizes."""
    a = _one_axis("split", pick("split", "dim", dim, "axis", axis, 0), self)
    n, size = self.shape[a], split_size_or_sections
    if isinstance(size, (int, np.integer)):
        if size <= 0:
            raise ValueError(f"split: split size must be a positive int, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = list(size)
    if any(s < 0 for s in sizes) or sum(sizes) != n:
        raise ValueError(f"split: sizes {sizes} do not add up to {n}, the size of dim {a} in shape {self.shape}")
    pieces, start = [], 0
    for s in sizes:
        pieces.append(self[(slice(None),) * a + (slice(start, start + s),)])
        start += s
    return pieces


@tensor_method
def chunk(self: Tensor, chunks: int, dim: int | None = None, *, axis: int | None = None) -> list[Tensor]:
    """`chunks` nearly equal pieces along `dim` (as torch.chunk)."""
    if not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    a = _one_axis("chunk", pick("chunk", "dim", dim, "axis", axis, 0), self)
    return self.split(-(-self.shape[a] // chunks), a)


# ---- joining ----------------------------------------------------------------------------


class Cat(Function):
    def forward(self, *xs, axis=0):
        return np.concatenate(xs, axis=axis)

    def backward(self, g):
        axis, start, pieces = self.params["axis"], 0, []
        for x, need in zip(self.parents, self.needs_input_grad):
            stop = start + x.shape[axis]
            pieces.append(g[(slice(None),) * axis + (slice(start, stop),)] if need else None)
            start = stop
        return tuple(pieces)


def _tensor_list(op: str, tensors: Sequence[Tensor]) -> list[Tensor]:
    tensors = list(tensors)
    if len(tensors) == 0:
        raise ValueError(f"{op}: needs at least one tensor")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: item {i} is a {type(t).__name__}, not a Tensor")
    return tensors


def _check_joinable(op: str, tensors: list[Tensor], axis: int | None) -> None:
    """Same rank and same sizes outside `axis` (None: every dim must match)."""
    first = tensors[0].shape
    for i, t in enumerate(tensors):
        same = t.ndim == len(first) and all(n == m for d, (n, m) in enumerate(zip(t.shape, first)) if d != axis)
        if not same:
            raise ValueError(f"{op}: tensor {i} has shape {t.shape}, which does not match shape {first} of tensor 0"
                             + (f" outside dim {axis}" if axis is not None else ""))


def cat(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing dim."""
    tensors = _tensor_list("cat", tensors)
    a = _one_axis("cat", pick("cat", "dim", dim, "axis", axis, 0), tensors[0])
    _check_joinable("cat", tensors, a)
    return Cat.apply(*promote("cat", *tensors), axis=a)


def stack(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join same-shape tensors along a new dim."""
    tensors = _tensor_list("stack", tensors)
    _check_joinable("stack", tensors, None)
    (a,) = normalize_axis("stack", pick("stack", "dim", dim, "axis", axis, 0), tensors[0].ndim + 1)
    return cat([t.unsqueeze(a) for t in tensors], a)


Tensor.cat = staticmethod(cat)
Tensor.stack = staticmethod(stack)
