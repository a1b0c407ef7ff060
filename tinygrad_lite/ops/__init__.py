"""The primitive ops: a `Function` each (forward and backward side by side) and the Tensor method that calls it.

Importing this package attaches the methods to `Tensor`. Adding an op means
adding one Function and one `@tensor_method` function in one of these files.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from ..tensor import DEFAULT_FLOAT, Tensor

F = TypeVar("F", bound=Callable[..., Any])


def tensor_method(fn: F) -> F:
    """Attach `fn` to Tensor under its own name (`min_` becomes `Tensor.min`).

    A mistyped keyword names the method and the nearest keyword it has:
    `sum() got an unexpected keyword 'dims'; did you mean 'dim'?`.
    """
    name = fn.__name__.rstrip("_")
    fn.__name__, fn.__qualname__ = name, f"Tensor.{name}"
    keywords = [p.name for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"]
    method = fn
    if keywords:
        @functools.wraps(fn)
        def method(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except TypeError:
                unknown = [k for k in kwargs if k not in keywords]
                if not unknown:
                    raise
                close = [k for k in keywords if unknown[0].startswith(k)][-1:] or difflib.get_close_matches(
                    unknown[0], keywords, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f" (it takes {', '.join(keywords)})"
                raise TypeError(f"{name}() got an unexpected keyword {unknown[0]!r}{hint}") from None
    setattr(Tensor, name, method)
    return method


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
    if type(axis) is int and -ndim <= axis < ndim:  # the common case, checked at once
        return (axis % ndim,)
    if isinstance(axis, (int, np.integer)):
        axes: tuple = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {axis!r}")
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {axis!r}")
        if not -max(ndim, 1) <= a < max(ndim, 1):
            plural = "" if ndim == 1 else "s"
            raise ValueError(f"{op}: dim {a} is out of range for a tensor with {ndim} dimension{plural}")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated dim in {axis!r}")
    return tuple(sorted(out)) if ndim else ()


def pick(op: str, torch_name: str, torch_value: Any, numpy_name: str, numpy_value: Any, default: Any) -> Any:
    """One argument that has a PyTorch spelling (`dim`, `keepdim`) and a numpy one (`axis`, `keepdims`)."""
    if torch_value is not None and numpy_value is not None:
        raise TypeError(f"{op}: give {torch_name}= or {numpy_name}=, not both")
    if torch_value is not None:
        return torch_value
    return default if numpy_value is None else numpy_value


_CATEGORY = {"b": 0, "i": 1, "u": 1, "f": 2}


class _Number(Tensor):
    """A Python number taking part in an op: it never decides the result's dtype alone (see `result_type`)."""

    __slots__ = ()


def _kind(t: Tensor) -> tuple[int, int, np.dtype]:
    """(category: bool 0 < integer 1 < float 2, priority: tensor 2 > 0-d tensor 1 > number 0, dtype)."""
    dtype = t._data.dtype
    return _CATEGORY[dtype.kind], 0 if isinstance(t, _Number) else min(t._data.ndim, 1) + 1, dtype


def result_type(*tensors: Tensor) -> np.dtype:
    """PyTorch's promotion: the highest category wins; within it, tensors with dimensions outrank 0-d ones,
    which outrank Python numbers (a number never upcasts a tensor: float32 * 2.5 stays float32)."""
    kinds = [_kind(t) for t in tensors]
    category = max(k[0] for k in kinds)
    priority = max(k[1] for k in kinds if k[0] == category)
    if priority == 0:  # only numbers in the top category: PyTorch's default dtypes
        return np.dtype({0: np.bool_, 1: np.int64, 2: DEFAULT_FLOAT}[category])
    return functools.reduce(np.promote_types, [k[2] for k in kinds if k[:2] == (category, priority)])


def promote(op: str, *values: Any) -> list[Tensor]:
    """The values as tensors of one dtype by PyTorch's rules (`result_type`); arrays count as tensors of their
    dtype, numbers as numbers. Float tensors are cast differentiably."""
    tensors = []
    for x in values:
        if isinstance(x, Tensor):
            tensors.append(x)
        elif isinstance(x, (bool, int, float, np.bool_, np.number)):
            tensors.append(_Number._make(np.asarray(x), False, None))
        else:
            try:
                tensors.append(Tensor(x))
            except (TypeError, ValueError):
                raise TypeError(f"{op}: unsupported operand of type {type(x).__name__} "
                                f"(expected a Tensor, a number or an array)") from None
    dtype = result_type(*tensors)
    out = []
    for t in tensors:
        if isinstance(t, _Number):
            out.append(Tensor._make(np.asarray(t._data, dtype=dtype), False, None))
        elif t._data.dtype == dtype or (t._data.dtype.kind == "b" and dtype.kind == "f"):  # numpy takes bool as 0/1
            out.append(t)
        else:
            out.append(t.to(dtype))
    return out


def operands(op: str, a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Two broadcast-compatible tensors of one dtype (see `promote`)."""
    if type(b) in (float, int) and isinstance(a, Tensor) and a._data.dtype.kind == "f":
        return a, Tensor._make(np.array(b, dtype=a._data.dtype), False, None)  # the hot path: `x * 2.0`
    if not (isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype == b._data.dtype):  # x + y: as is
        a, b = promote(op, a, b)
    sa, sb = a._data.shape, b._data.shape
    if sa != sb and sa and sb:  # a 0-d operand broadcasts with anything
        broadcast_shape(op, sa, sb)
    return a, b


def floating(t: Tensor) -> Tensor:
    """`t` itself if it is floating-point, else cast to float32 (exp or softmax of an int tensor, as in PyTorch)."""
    return t if t._data.dtype.kind == "f" else t.to(DEFAULT_FLOAT)


from . import elementwise, linalg, movement, reduce  # noqa: E402,F401  (attach the methods)
