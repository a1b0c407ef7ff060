"""Every op: a `Function` (forward and backward side by side) and the Tensor method that calls it.

Importing this package attaches the methods to `Tensor`. Adding an op means
adding one Function and one `@tensor_method` function in one of these files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from ..tensor import DEFAULT_FLOAT, Tensor

F = TypeVar("F", bound=Callable[..., Any])


def tensor_method(fn: F) -> F:
    """Attach `fn` to Tensor under its own name (`min_` becomes `Tensor.min`)."""
    name = fn.__name__.rstrip("_")
    fn.__name__ = name
    setattr(Tensor, name, fn)
    return fn


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting added or stretched, back to `shape`."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1
    )
    out = grad.sum(axis=axes, keepdims=True) if axes else grad
    return out.reshape(shape)


def broadcast_shape(op: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The broadcast shape, or a ValueError naming the op and every shape."""
    ndim = max(len(s) for s in shapes)
    out = []
    for dims in zip(*[(1,) * (ndim - len(s)) + tuple(s) for s in shapes]):
        sizes = set(dims) - {1}
        if len(sizes) > 1 or any(d < 0 for d in dims):
            listed = " and ".join(str(tuple(s)) for s in shapes)
            raise ValueError(f"{op}: shapes {listed} cannot be broadcast together")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def normalize_axis(op: str, axis: int | tuple[int, ...] | list[int] | None, ndim: int) -> tuple[int, ...]:
    """`axis` as a sorted tuple of non-negative ints (None means every axis).

    A 0-d tensor accepts axis 0 or -1 (as in PyTorch) and has no axis to reduce: ().
    """
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axes: tuple = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out)) if ndim else ()


def as_tensor(x: Any, like: Any = None) -> Tensor:
    """A Tensor operand: Tensors pass through; numbers take `like`'s float dtype.

    Keeping constants in the tensor's dtype matters: a float64 constant would
    silently upcast a float32 model.
    """
    if isinstance(x, Tensor):
        return x
    if type(x) in (float, int) and isinstance(like, Tensor) and like.data.dtype.kind == "f":
        return Tensor._make(np.array(x, dtype=like.data.dtype), False, None)  # the hot path: `x * 2.0`
    arr = np.asarray(x)
    if isinstance(like, Tensor) and like.dtype.kind == "f" and arr.dtype.kind in "fiub":
        return Tensor(arr, dtype=like.dtype)
    return Tensor(arr)


def floating(t: Tensor) -> Tensor:
    """`t` itself if it is floating-point, else cast to float32 (exp or softmax of an int tensor, as in PyTorch)."""
    return t if t.data.dtype.kind == "f" else t.to(DEFAULT_FLOAT)


def promote(op: str, a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Two tensors of one dtype kind: numbers take the other side's dtype; int mixed with float becomes float."""
    try:
        if not isinstance(a, Tensor):
            a = as_tensor(a, b)
        if not isinstance(b, Tensor):
            b = as_tensor(b, a)
    except (TypeError, ValueError):
        bad = b if isinstance(a, Tensor) else a
        raise TypeError(f"{op}: unsupported operand of type {type(bad).__name__} "
                        f"(expected a Tensor, a number or an array)") from None
    ka, kb = a.data.dtype.kind, b.data.dtype.kind
    if ka == "f" and kb != "f":
        b = Tensor(b.data, dtype=a.dtype)
    elif kb == "f" and ka != "f":
        a = Tensor(a.data, dtype=b.dtype)
    return a, b


def operands(op: str, a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Two broadcast-compatible tensors of one dtype kind (see `promote`)."""
    a, b = promote(op, a, b)
    sa, sb = a.data.shape, b.data.shape
    if sa != sb and sa and sb:  # a 0-d operand broadcasts with anything
        broadcast_shape(op, sa, sb)
    return a, b


from . import elementwise, linalg, movement, reduce  # noqa: E402,F401  (attach the methods)
