"""The Tensor, the Function that records how it was made, and the backward walk.

Every op lives in `tinygrad_lite/ops/`: a `Function` subclass with `forward`
and `backward` side by side, plus the Tensor method that calls it. This file
only knows how to record a graph and walk it backwards.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

DEFAULT_FLOAT = np.float32


class _GradModeState(threading.local):
    """Graph recording on/off, per thread (as in PyTorch): a thread inside `no_grad`
    does not switch recording off in another. The class attribute is every thread's default."""

    enabled = True


_GradMode = _GradModeState()


class _SetGradMode(contextlib.ContextDecorator):
    """Set recording to `mode` inside the block; a stack of saved states makes one
    instance safe to re-enter (a recursive decorated function)."""

    mode = True

    def __init__(self) -> None:
        self._saved: list[bool] = []

    def __enter__(self) -> None:
        self._saved.append(_GradMode.enabled)
        _GradMode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self._saved.pop()

    def _recreate_cm(self) -> _SetGradMode:
        return type(self)()  # a fresh instance per decorated call: safe across threads


class no_grad(_SetGradMode):
    """Context manager and decorator: no graph is recorded inside (in this thread).

    >>> with no_grad():
    ...     y = x * 2          # y.requires_grad is False
    """

    mode = False


class enable_grad(_SetGradMode):
    """Turn graph recording back on inside a `no_grad` block."""

    mode = True


def is_grad_enabled() -> bool:
    """Whether ops record a graph in this thread (False inside `no_grad`)."""
    return _GradMode.enabled


# Hooks that observe every op (graph drawing, anomaly detection, shape traces).
# Empty by default so that recording costs nothing when nobody looks.
_op_hooks: list[Callable[[Function, Tensor], None]] = []


@contextlib.contextmanager
def op_hook(fn: Callable[[Function, Tensor], None]) -> Iterator[None]:
    """Call `fn(function, output)` after every op run inside the block."""
    _op_hooks.append(fn)
    try:
        yield
    finally:
        _op_hooks.remove(fn)


# Hooks that see every backward step: `fn(function, grad_output, grad_inputs)` (anomaly detection).
_backward_hooks: list[Callable[[Function, np.ndarray, tuple], None]] = []


class Function:
    """One differentiable op: `forward` on ndarrays, `backward` from the output grad.

    Subclasses implement `forward(self, *arrays, **params) -> ndarray` and
    `backward(self, grad) -> tuple` (one ndarray or None per tensor input, in
    order). Whatever `forward` keeps on `self` is the saved context.
    `self.needs_input_grad[i]` says whether input i wants a gradient, so
    backward can skip work it does not need.
    """

    # The graph's structure lives in slots; the saved context in __dict__, which
    # `release` clears in one call.
    __slots__ = ("parents", "needs_input_grad", "params", "released", "__dict__", "__weakref__")
    parents: tuple[Tensor, ...]
    needs_input_grad: tuple[bool, ...]
    params: dict[str, Any]

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        ctx = cls()
        out = ctx.forward(*[t.data for t in inputs], **params)
        ctx.params = params
        needs = tuple([t.requires_grad for t in inputs])
        if True in needs and _GradMode.enabled:
            ctx.parents = inputs
            ctx.needs_input_grad = needs
            result = Tensor._make(out, True, ctx)
        else:
            result = Tensor._make(out, False, None)
        if _op_hooks:
            for hook in list(_op_hooks):
                hook(ctx, result)
        return result

    @property
    def name(self) -> str:
        """The op's name for graphs and errors, e.g. `softmax(axis=-1)`."""
        op = type(self).__name__.lower()
        shown = {k: v for k, v in getattr(self, "params", {}).items() if not isinstance(v, np.ndarray)}
        if not shown:
            return op
        return f"{op}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def forward(self, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        raise NotImplementedError

    # Optional, for one-input ops whose gradient fills only part of the input (indexing):
    # `backward_into(grad, accumulated)` adds the input's gradient into `accumulated` in place.
    # Taking q, k, v (or every time step) out of one tensor then costs one full-size
    # gradient instead of one per piece.
    backward_into: Callable[[np.ndarray, np.ndarray], None] | None = None

    def release(self) -> None:
        """Drop the saved arrays after backward, keeping the graph's structure for drawing."""
        self.__dict__.clear()
        self.released = True


def _float_dtype_or_none(dtype: Any) -> Any:
    return None if dtype is None else np.dtype(dtype)


def _as_array(data: Any, dtype: Any) -> np.ndarray:
    """Data to ndarray; float data becomes float32 unless a dtype is given."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    try:
        arr = np.asarray(data)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"Tensor: data must be rectangular (every row the same length): {e}") from None
    if arr.dtype.kind == "f" and arr.dtype != DEFAULT_FLOAT:
        return arr.astype(DEFAULT_FLOAT)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"Tensor: cannot make a tensor from data of dtype {arr.dtype}")
    return arr


class Tensor:
    """An n-dimensional array that remembers the op that made it.

    Float data defaults to float32 (float64 arrays too, as in PyTorch);
    pass `dtype=np.float64` to keep float64, e.g. for gradient checks.
    Integer data stays integer and cannot require grad.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "_retain_grad", "__weakref__")
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected op

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None):
        self.data: np.ndarray = _as_array(data, _float_dtype_or_none(dtype))
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"Tensor: only floating-point tensors can require grad, got dtype {self.data.dtype} "
                f"(integer tensors hold indices and targets)"
            )
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx: Function | None = None
        self.name = name
        self._retain_grad = False

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool, ctx: Function | None) -> Tensor:
        """Wrap an op's output without any conversion (the hot path)."""
        t = cls.__new__(cls)
        t.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = ctx
        t.name = None
        t._retain_grad = False
        return t

    # ---- constructors -------------------------------------------------------------
    @staticmethod
    def zeros(*shape: int | Sequence[int], dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
        """A tensor of zeros; `Tensor.zeros(2, 3)` or `Tensor.zeros((2, 3))`."""
        return Tensor(np.zeros(_shape_arg("zeros", shape), dtype=dtype), requires_grad=requires_grad, dtype=dtype)

    @staticmethod
    def ones(*shape: int | Sequence[int], dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
        """A tensor of ones; `Tensor.ones(2, 3)` or `Tensor.ones((2, 3))`."""
        return Tensor(np.ones(_shape_arg("ones", shape), dtype=dtype), requires_grad=requires_grad, dtype=dtype)

    @staticmethod
    def full(shape: int | Sequence[int], value: float, dtype: Any = DEFAULT_FLOAT,
             requires_grad: bool = False) -> Tensor:
        """A tensor of `shape` filled with `value`."""
        data = np.full(_shape_arg("full", (shape,)), value, dtype=dtype)
        return Tensor(data, requires_grad=requires_grad, dtype=dtype)

    @staticmethod
    def randn(*shape: int | Sequence[int], seed: int | np.random.Generator | None = None,
              dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
        """Standard normal samples; `seed` is an int or a numpy Generator."""
        rng = np.random.default_rng(seed)
        data = rng.standard_normal(_shape_arg("randn", shape), dtype=np.dtype(dtype).type)
        return Tensor(data, requires_grad=requires_grad, dtype=dtype)

    @staticmethod
    def uniform(*shape: int | Sequence[int], low: float = 0.0, high: float = 1.0,
                seed: int | np.random.Generator | None = None, dtype: Any = DEFAULT_FLOAT,
                requires_grad: bool = False) -> Tensor:
        """Uniform samples in [low, high); `seed` is an int or a numpy Generator."""
        rng = np.random.default_rng(seed)
        data = rng.uniform(low, high, _shape_arg("uniform", shape)).astype(dtype)
        return Tensor(data, requires_grad=requires_grad, dtype=dtype)

    @staticmethod
    def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None) -> Tensor:
        """Like `np.arange`; integer arguments give int64, float ones float32."""
        data = np.arange(start, stop, step) if stop is not None else np.arange(start)
        return Tensor(data, dtype=dtype)

    @staticmethod
    def eye(n: int, m: int | None = None, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
        """The (n, m) identity matrix (m defaults to n)."""
        return Tensor(np.eye(n, m, dtype=dtype), requires_grad=requires_grad, dtype=dtype)

    @staticmethod
    def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
        return Tensor(np.zeros_like(t.data), requires_grad=requires_grad, dtype=t.dtype)

    @staticmethod
    def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
        return Tensor(np.ones_like(t.data), requires_grad=requires_grad, dtype=t.dtype)

    # ---- plain properties ---------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> Function | None:
        return self._ctx

    def numel(self) -> int:
        return self.data.size

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shared, not copied)."""
        return self.data

    def tolist(self) -> Any:
        """The data as nested Python lists."""
        return self.data.tolist()

    def item(self) -> float | int:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python scalar, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._make(self.data, False, None)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad_: only floating-point tensors can require grad, got dtype {self.dtype}")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> Tensor:
        """Keep `.grad` on this non-leaf tensor after backward (leaves always keep it)."""
        self._retain_grad = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __hash__(self) -> int:
        return id(self)

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", threshold=20, edgeitems=2)
        body = body.replace("\n", "\n       ")
        extras = [f"shape={self.shape}", f"dtype={self.dtype}"]
        if self._ctx is not None:
            extras.append(f"grad_fn={self._ctx.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return f"Tensor({body}, {', '.join(extras)})"

    # ---- autodiff -----------------------------------------------------------------
    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`.

        A scalar seeds with 1; a non-scalar needs `gradient` of its shape.
        The graph's saved arrays are freed afterwards unless `retain_graph`.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no graph "
                "(make an input with requires_grad=True, and do not call backward inside no_grad)"
            )
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be created implicitly only for a one-element tensor, "
                    f"got shape {self.shape}; pass gradient= of that shape"
                )
            seed = np.ones(self.shape, dtype=self.dtype)
        else:
            # a copy: the walk may hand the seed on as a leaf's .grad, which must not alias the caller's array
            seed = np.array(gradient.data if isinstance(gradient, Tensor) else gradient, dtype=self.dtype)
            if seed.shape != self.shape:
                raise ValueError(f"backward: gradient has shape {seed.shape} but the tensor has shape {self.shape}")
        _backward(self, seed, retain_graph)


def graph_order(roots: Sequence[Tensor], needs_grad_only: bool = False) -> list[Tensor]:
    """Every tensor the roots were computed from, each after its inputs (iterative DFS, no recursion limit).

    With `needs_grad_only`, the walk stays among tensors that require grad (what backward visits).
    """
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            stack.extend((p, False) for p in reversed(node._ctx.parents)
                         if id(p) not in seen and (p.requires_grad or not needs_grad_only))
    return order


def _backward(root: Tensor, seed: np.ndarray, retain_graph: bool) -> None:
    grads: dict[int, np.ndarray] = {id(root): seed}
    # Arrays we allocated ourselves may be added to in place; others may alias
    # another tensor's gradient (add passes its grad through to both inputs).
    owned: set[int] = set()
    stored: set[int] = set()  # arrays this walk made some tensor's .grad
    order = graph_order([root], needs_grad_only=True)
    if any(getattr(node._ctx, "released", False) for node in order):
        raise RuntimeError(
            "backward: trying to backward through the graph a second time, but its saved values "
            "were freed by the first backward; pass retain_graph=True to the first call"
        )
    for node in reversed(order):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        ctx = node._ctx
        if ctx is None or node._retain_grad:
            _store_grad(node, grad, stored)
        if ctx is None:
            continue
        if ctx.backward_into is not None and not _backward_hooks and ctx.parents[0].requires_grad:
            _accumulate_into(ctx, grad, grads, owned)
            if not retain_graph:
                ctx.release()
            continue
        in_grads = ctx.backward(grad)
        if _backward_hooks:
            for hook in list(_backward_hooks):
                hook(ctx, grad, in_grads)
        for parent, g in zip(ctx.parents, in_grads):
            if g is None or not parent.requires_grad:
                continue
            if g.shape != parent.shape:  # pragma: no cover - an op bug, not a user error
                raise RuntimeError(f"{ctx.name}: backward produced a gradient of shape {g.shape} "
                                   f"for an input of shape {parent.shape}")
            key = id(parent)
            prev = grads.get(key)
            if prev is None:
                grads[key] = g
            elif key in owned:
                prev += g
            else:
                grads[key] = np.asarray(prev + g)  # an array, never a numpy scalar: `+=` must work in place
                owned.add(key)
        if not retain_graph:
            ctx.release()


def _accumulate_into(ctx: Function, grad: np.ndarray, grads: dict[int, np.ndarray], owned: set[int]) -> None:
    """Add a one-input op's input gradient into that input's running gradient (see `Function.backward_into`)."""
    parent = ctx.parents[0]
    key = id(parent)
    acc = grads.get(key)
    if acc is None or key not in owned:
        acc = np.zeros(parent.shape, dtype=grad.dtype) if acc is None else np.array(acc, dtype=grad.dtype)
        grads[key] = acc
        owned.add(key)
    ctx.backward_into(grad, acc)


def _store_grad(t: Tensor, grad: np.ndarray, stored: set[int]) -> None:
    """Accumulate into t.grad. The walk's gradients are fresh arrays, so one is kept without a copy
    unless it is read-only (a broadcast) or its memory already went to another tensor's .grad."""
    if grad.dtype != t.dtype:
        grad = grad.astype(t.dtype)
    else:
        owner = grad if grad.base is None else grad.base
        if not grad.flags.writeable or not isinstance(owner, np.ndarray) or id(owner) in stored:
            grad = grad.copy()
    if t.grad is None:
        stored.add(id(grad if grad.base is None else grad.base))
        t.grad = Tensor._make(grad, False, None)
    else:
        t.grad.data = np.asarray(t.grad.data + grad)


def int_args(op: str, args: tuple, what: str = "shape") -> tuple[int, ...]:
    """Accept `f(2, 3)` and `f((2, 3))` alike; every entry must be an int (2.5 is an error, not 2)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in args):
        raise TypeError(f"{op}: {what} must be integers, got {args!r}")
    return tuple(int(d) for d in args)


def _shape_arg(op: str, shape: tuple) -> tuple[int, ...]:
    """A constructor's shape (see `int_args`); negative sizes are rejected clearly."""
    dims = int_args(op, shape)
    if any(d < 0 for d in dims):
        raise ValueError(f"{op}: negative dimension in shape {dims}")
    return dims
