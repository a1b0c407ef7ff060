"""Tensor constructors with PyTorch's names, signatures and dtype rules: `tinygrad_lite.zeros(2, 3)` as `torch.zeros`.

    >>> import tinygrad_lite as tl
    >>> tl.tensor([[1.0, 2.0]])                      # float32: Python floats take the default dtype
    >>> tl.from_numpy(np.zeros(3))                   # float64, sharing the array's memory
    >>> tl.randint(0, 10, (4,), generator=tl.Generator().manual_seed(0))

Python floats give float32 and ints int64; an ndarray keeps its dtype. The random ones draw from
`generator` (a Generator, or an int seed) or else from the global generator (`manual_seed`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .random import get_generator
from .tensor import DEFAULT_FLOAT, Tensor, int_args

Size = int | Sequence[int]


def _size(op: str, size: tuple) -> tuple[int, ...]:
    dims = int_args(op, size, "sizes")
    if any(d < 0 for d in dims):
        raise ValueError(f"{op}: negative dimension in size {dims}")
    return dims


def _dtype(op: str, dtype: Any, default: Any = DEFAULT_FLOAT, floating: bool = False) -> np.dtype:
    """`dtype` (or the default) as a numpy dtype a Tensor can hold; `floating` demands a float one."""
    try:
        dt = np.dtype(default if dtype is None else dtype)
    except TypeError:
        raise TypeError(f"{op}: dtype must be a numpy dtype such as np.float32, got {dtype!r}") from None
    if dt.kind not in ("f" if floating else "fiub"):
        wanted = "a floating-point" if floating else "a float, integer or bool"
        raise TypeError(f"{op}: needs {wanted} dtype, got {dt}")
    return dt


def _make(data: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor(data, requires_grad=requires_grad, dtype=data.dtype)  # explicit: float64 stays float64


def _holds_float64_arrays(data: Any) -> bool:
    """Whether `data` is, or (nested in lists) holds, a float64 numpy array or scalar: torch keeps float64 then."""
    if isinstance(data, np.ndarray | np.generic):
        return data.dtype == np.float64
    return isinstance(data, list | tuple) and any(_holds_float64_arrays(d) for d in data)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (numbers, nested lists, an ndarray or a Tensor).

    An ndarray keeps its dtype (float64 stays float64); Python floats become float32, ints int64, bools bool.
    """
    source = data.data if isinstance(data, Tensor) else data
    try:
        arr = np.array(source, dtype=None if dtype is None else _dtype("tensor", dtype), copy=True)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"tensor: data must be rectangular (every row the same length): {e}") from None
    if dtype is None and arr.dtype == np.float64 and not _holds_float64_arrays(source):
        arr = arr.astype(DEFAULT_FLOAT)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"tensor: cannot make a tensor from data of dtype {arr.dtype}")
    return _make(arr, requires_grad)


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor that shares `ndarray`'s memory and keeps its dtype: writing to one changes the other."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(ndarray).__name__})")
    if ndarray.dtype.kind not in "fiub":
        raise TypeError(f"from_numpy: can't convert an array of dtype {ndarray.dtype}; the supported dtypes are "
                        f"floating-point, integer and bool")
    return Tensor(ndarray, dtype=ndarray.dtype)


def zeros(*size: Size, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros: `zeros(2, 3)` or `zeros((2, 3))`; float32 unless `dtype` says otherwise."""
    return _make(np.zeros(_size("zeros", size), _dtype("zeros", dtype)), requires_grad)


def ones(*size: Size, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones: `ones(2, 3)` or `ones((2, 3))`; float32 unless `dtype` says otherwise."""
    return _make(np.ones(_size("ones", size), _dtype("ones", dtype)), requires_grad)


def _fill_dtype(op: str, fill_value: Any, dtype: Any) -> np.dtype:
    """torch.full's rule: the dtype of the fill value (bool, int64, else float32) unless one is given."""
    if dtype is None and isinstance(fill_value, bool | np.bool_):
        dtype = np.bool_
    elif dtype is None and isinstance(fill_value, int | np.integer):
        dtype = np.int64
    return _dtype(op, dtype)


def full(size: Size, fill_value: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of `size` filled with `fill_value`; the dtype follows the value (bool, int64, float32)."""
    dims = _size("full", (size,) if isinstance(size, int | np.integer) else tuple(size))
    return _make(np.full(dims, fill_value, _fill_dtype("full", fill_value, dtype)), requires_grad)


def eye(n: int, m: int | None = None, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """The (n, m) identity matrix (m defaults to n)."""
    rows, cols = _size("eye", (n, n if m is None else m))
    return _make(np.eye(rows, cols, dtype=_dtype("eye", dtype)), requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, *, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    """start, start + step, ... up to `end` (excluded); `arange(n)` counts from 0.

    Integer arguments give int64, any float float32 (as torch.arange); the values are start + i * step.
    """
    if end is None:
        start, end = 0, start
    for name, v in (("start", start), ("end", end), ("step", step)):
        if not isinstance(v, int | float | np.integer | np.floating) or isinstance(v, bool) or not math.isfinite(v):
            raise TypeError(f"arange: {name} must be a finite number, got {v!r}")
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: the range from {start} to {end} does not go in the direction of step {step}")
    integral = all(isinstance(v, int | np.integer) for v in (start, end, step))
    dt = _dtype("arange", dtype, np.int64 if integral else DEFAULT_FLOAT)
    n = math.ceil((end - start) / step)
    values = np.arange(n, dtype=np.int64) * step + start if integral else start + step * np.arange(n, dtype=np.float64)
    return _make(values.astype(dt), requires_grad)


def rand(*size: Size, generator: Any = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1), drawn in `dtype` (float32 by default)."""
    dt = _dtype("rand", dtype, floating=True)
    return _make(get_generator(generator, "rand").random(_size("rand", size), dtype=dt.type), requires_grad)


def randn(*size: Size, generator: Any = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples, drawn in `dtype` (float32 by default)."""
    dt = _dtype("randn", dtype, floating=True)
    return _make(get_generator(generator, "randn").standard_normal(_size("randn", size), dtype=dt.type),
                 requires_grad)


def randint(low: int, high: int | Size | None = None, size: Size | None = None, *, generator: Any = None,
            dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Integers drawn uniformly from [low, high): `randint(high, size)` or `randint(low, high, size)`; int64."""
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint: missing the size argument: randint(high, size) or randint(low, high, size)")
    for name, v in (("low", low), ("high", high)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool):
            raise TypeError(f"randint: {name} must be an int, got {v!r}")
    if low >= high:
        raise ValueError(f"randint: low must be less than high, got low={low} and high={high}")
    dims = _size("randint", (size,) if isinstance(size, int | np.integer) else tuple(size))
    values = get_generator(generator, "randint").integers(low, high, dims, dtype=np.int64)
    return _make(values.astype(_dtype("randint", dtype, np.int64), copy=False), requires_grad)


def _like(op: str, input: Tensor, dtype: Any, floating: bool = False) -> tuple[tuple[int, ...], np.dtype]:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(input).__name__}")
    return input.shape, _dtype(op, dtype, input.dtype, floating)


def zeros_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros of `input`'s shape and dtype."""
    shape, dt = _like("zeros_like", input, dtype)
    return _make(np.zeros(shape, dt), requires_grad)


def ones_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones of `input`'s shape and dtype."""
    shape, dt = _like("ones_like", input, dtype)
    return _make(np.ones(shape, dt), requires_grad)


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """`fill_value` in `input`'s shape and dtype."""
    shape, dt = _like("full_like", input, dtype)
    return _make(np.full(shape, fill_value, dt), requires_grad)


def rand_like(input: Tensor, *, generator: Any = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """`rand` in `input`'s shape and (floating-point) dtype."""
    shape, dt = _like("rand_like", input, dtype, floating=True)
    return rand(shape, generator=generator, dtype=dt, requires_grad=requires_grad)


def randn_like(input: Tensor, *, generator: Any = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """`randn` in `input`'s shape and (floating-point) dtype."""
    shape, dt = _like("randn_like", input, dtype, floating=True)
    return randn(shape, generator=generator, dtype=dt, requires_grad=requires_grad)


def _dim_or_axis(op: str, dim: int, axis: int | None) -> int:
    """torch's `dim`, or numpy's `axis` (which torch accepts too); not both."""
    if axis is None:
        return dim
    if dim != 0:
        raise TypeError(f"{op}: got both dim={dim} and axis={axis}; give one")
    return axis


def cat(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing dimension `dim` (`axis=` works too, as in torch)."""
    return Tensor.cat(tensors, _dim_or_axis("cat", dim, axis))


def stack(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join same-shape tensors along a new dimension `dim` (`axis=` works too, as in torch)."""
    return Tensor.stack(tensors, _dim_or_axis("stack", dim, axis))
