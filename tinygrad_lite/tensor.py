"""The Tensor, the Function that records how it was made, and the backward walk.

The primitive ops live in `tinygrad_lite/ops/`, the fused ones (linear, layer
norm, cross-entropy, attention) in `tinygrad_lite/nn/`: each a `Function` with
`forward` and `backward` side by side, plus the Tensor method that calls it.
This file only knows how to record a graph and walk it backwards.

Backwards are written in Tensor ops (as in HIPS autograd), so a gradient is
itself differentiable: `backward(create_graph=True)` records the backward's ops
in a graph of their own. Without it they run under `no_grad`, as cheaply as numpy.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from .random import get_generator

DEFAULT_FLOAT = np.float32


class _GradModeState(threading.local):
    """Graph recording on/off, per thread (as in PyTorch): a thread inside `no_grad`
    does not switch recording off in another. The class attributes are every thread's default."""

    enabled = True
    walking = False  # inside the backward walk: the ops a backward runs are not shown to op hooks


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


# Hooks that observe every op of a forward (graph drawing, anomaly detection, shape traces).
# Empty by default so that recording costs nothing when nobody looks.
_op_hooks: list[Callable[[Function, Tensor], None]] = []


@contextlib.contextmanager
def op_hook(fn: Callable[[Function, Tensor], None]) -> Iterator[None]:
    """Call `fn(function, output)` after every op run inside the block (not the ops backward runs)."""
    _op_hooks.append(fn)
    try:
        yield
    finally:
        _op_hooks.remove(fn)


# Hooks that see every backward step: `fn(function, grad_output, grad_inputs)` (anomaly detection).
_backward_hooks: list[Callable[[Function, Tensor, tuple], None]] = []


class Function:
    """One differentiable op.

    `forward(self, *arrays, **params) -> ndarray` computes on ndarrays; `self.params`
    holds the keyword arguments, forward's defaults filled in (set before forward runs). `backward(self, g)` gets
    the output's gradient as a Tensor and returns one Tensor (or None) per input,
    written in Tensor ops so that it can be differentiated again. It reads the
    inputs as `self.parents`, the output as `self.output`, and whatever forward
    kept on `self` (masks, indices). A gradient may have the broadcast shape of
    the output: the walk sums it back to the input's shape. `self.needs_input_grad[i]`
    says whether input i wants a gradient, so backward can skip work.

    A fused op whose backward runs on ndarrays for speed also gives `reference`:
    the same computation from primitive ops, which `create_graph=True`
    differentiates instead, and which the tests hold the fused op to.
    """

    # The graph's structure lives in slots; the saved context in __dict__, which `release` clears.
    __slots__ = ("parents", "needs_input_grad", "params", "versions", "_output", "released",
                 "__dict__", "__weakref__")
    parents: tuple[Tensor, ...]
    needs_input_grad: tuple[bool, ...]
    params: dict[str, Any]
    reference: Callable[..., Tensor] | None = None

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        ctx = cls()
        defaults = _forward_defaults(cls)
        ctx.params = params = {**defaults, **params} if defaults else params  # complete: backward reads, never guesses
        out = ctx.forward(*[t._data for t in inputs], **params)
        needs = tuple([t.requires_grad for t in inputs])
        if True in needs and _GradMode.enabled:
            ctx.parents = inputs
            ctx.needs_input_grad = needs
            ctx.versions = tuple([t._version for t in inputs])
            result = Tensor._make(out, True, ctx)
            ctx._output = weakref.ref(result)
        else:
            result = Tensor._make(out, False, None)
        if _op_hooks and not _GradMode.walking:
            for hook in list(_op_hooks):
                hook(ctx, result)
        return result

    @property
    def output(self) -> Tensor:
        """The tensor this op made (alive while backward runs: the walk holds it)."""
        return self._output()

    @property
    def name(self) -> str:
        """The op's name for graphs and errors, as you would type it: `softmax(dim=-1)`, `getitem[:, 0:32]`."""
        op = type(self).__name__.removesuffix("Function").lower()  # LinearFunction (nn.Linear is the Module)
        params = getattr(self, "params", {})
        if "key" in params:
            return f"{op}[{_index_text(params['key'])}]"
        # Defaults, flags left off, objects without a stable text (arrays, random generators) and random seeds are
        # not shown.
        defaults = _forward_defaults(type(self))
        shown = [_value_text(v) if k == "dtype" else f"{k}={_value_text(v)}" for k, v in params.items()
                 if v is not None and v is not False and k != "seed" and _plain(v) and not _is_default(defaults, k, v)]
        return f"{op}({', '.join(shown)})" if shown else op

    def forward(self, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        raise NotImplementedError

    def backward(self, g: Tensor) -> tuple[Tensor | Indexed | None, ...]:
        raise NotImplementedError

    def release(self) -> None:
        """Drop the saved arrays after backward, keeping the graph's structure for drawing."""
        self.__dict__.clear()
        self.released = True


class Indexed(NamedTuple):
    """A gradient that is `values` at `key` and zero elsewhere (what indexing gives its input).

    The walk adds it into the input's running gradient in place, so that taking many
    pieces of one tensor (q, k, v, or every time step) costs one full-size gradient, not one per piece.
    """

    key: Any
    values: Tensor


@functools.cache
def _forward_defaults(cls: type) -> dict[str, Any]:
    return {p.name: p.default for p in inspect.signature(cls.forward).parameters.values()
            if p.default is not inspect.Parameter.empty}


def _is_default(defaults: dict[str, Any], name: str, value: Any) -> bool:
    default = defaults.get(name, inspect.Parameter.empty)
    return type(default) is type(value) and default == value  # (np.dtype("float64") == None is True)


def _plain(v: Any) -> bool:
    if isinstance(v, (tuple, list)):
        return all(_plain(x) for x in v)
    return isinstance(v, (bool, int, float, str, np.dtype, np.generic)) or (
        isinstance(v, type) and issubclass(v, np.generic))


def _value_text(v: Any) -> str:
    if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
        return np.dtype(v).name
    if isinstance(v, float):
        return f"{v:g}"
    return repr(v)


def _index_text(key: Any) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return ", ".join(_index_part(k) for k in parts)


def _index_part(k: Any) -> str:
    if isinstance(k, slice):
        text = f"{'' if k.start is None else k.start}:{'' if k.stop is None else k.stop}"
        return text + (f":{k.step}" if k.step is not None else "")
    if k is None:
        return "None"
    if k is Ellipsis:
        return "..."
    if isinstance(k, np.ndarray):
        return f"{k.dtype.name}{list(k.shape)}"
    return repr(k)


def _as_array(data: Any, dtype: Any) -> np.ndarray:
    """Data to ndarray: an ndarray (or Tensor) keeps its dtype, Python floats and lists become float32,
    as `torch.tensor` does; `dtype` overrides."""
    if isinstance(data, Tensor):
        data = data._data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        arr = data
    else:
        try:
            arr = np.asarray(data)
        except ValueError as e:  # ragged nested lists
            raise ValueError(f"Tensor: data must be rectangular (every row the same length): {e}") from None
        if arr.dtype == np.float64 and not isinstance(data, np.generic):
            arr = arr.astype(DEFAULT_FLOAT)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"Tensor: cannot make a tensor from data of dtype {arr.dtype}")
    return arr


class Tensor:
    """An n-dimensional array that remembers the op that made it.

    `Tensor(ndarray)` keeps the array's dtype (a float64 array stays float64, as
    `torch.tensor` does); Python floats and nested lists become float32; `dtype=`
    overrides. Integer data stays integer and cannot require grad.
    """

    __slots__ = ("_data", "grad", "requires_grad", "_ctx", "name", "_retain_grad", "_version", "__weakref__")
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected op

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None):
        self._data: np.ndarray = _as_array(data, None if dtype is None else np.dtype(dtype))
        if requires_grad and self._data.dtype.kind != "f":
            raise TypeError(
                f"Tensor: only floating-point tensors can require grad, got dtype {self._data.dtype} "
                f"(integer tensors hold indices and targets)"
            )
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx: Function | None = None
        self.name = name
        self._retain_grad = False
        self._version = 0

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool, ctx: Function | None) -> Tensor:
        """Wrap an op's output without any conversion (the hot path)."""
        t = cls.__new__(cls)
        t._data = data if isinstance(data, np.ndarray) else np.asarray(data)
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = ctx
        t.name = None
        t._retain_grad = False
        t._version = 0
        return t

    @property
    def data(self) -> np.ndarray:
        """The values, a numpy ndarray. Assigning replaces them: an array or a Tensor of the same shape."""
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        new = value._data if isinstance(value, Tensor) else np.asarray(value)
        if new.shape != self._data.shape:
            raise ValueError(f"Tensor.data: cannot assign values of shape {new.shape} to a tensor of shape "
                             f"{self._data.shape} (make a new Tensor for another shape)")
        if new.dtype.kind not in "fiub":
            raise TypeError(f"Tensor.data: cannot assign values of dtype {new.dtype}")
        self._data = new

    # ---- constructors -------------------------------------------------------------
    @staticmethod
    def zeros(*shape: int | Sequence[int], dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
        """A tensor of zeros; `Tensor.zeros(2, 3)` or `Tensor.zeros((2, 3))`."""
        return Tensor(np.zeros(_shape_arg("zeros", shape), dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def ones(*shape: int | Sequence[int], dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
        """A tensor of ones; `Tensor.ones(2, 3)` or `Tensor.ones((2, 3))`."""
        return Tensor(np.ones(_shape_arg("ones", shape), dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def full(shape: int | Sequence[int], value: float, dtype: Any = DEFAULT_FLOAT,
             requires_grad: bool = False) -> Tensor:
        """A tensor of `shape` filled with `value`."""
        return Tensor(np.full(_shape_arg("full", (shape,)), value, dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def randn(*shape: int | Sequence[int], seed: int | np.random.Generator | None = None,
              dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
        """Standard normal samples; `seed` is an int or a numpy Generator (default: the global generator)."""
        rng = get_generator(seed, "randn")
        data = rng.standard_normal(_shape_arg("randn", shape), dtype=np.dtype(dtype).type)
        return Tensor(data, requires_grad=requires_grad)

    @staticmethod
    def uniform(*shape: int | Sequence[int], low: float = 0.0, high: float = 1.0,
                seed: int | np.random.Generator | None = None, dtype: Any = DEFAULT_FLOAT,
                requires_grad: bool = False) -> Tensor:
        """Uniform samples in [low, high); `seed` is an int or a numpy Generator (default: the global generator)."""
        rng = get_generator(seed, "uniform")
        data = rng.uniform(low, high, _shape_arg("uniform", shape)).astype(dtype)
        return Tensor(data, requires_grad=requires_grad)

    @staticmethod
    def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None) -> Tensor:
        """Like `torch.arange`: integer arguments give int64, float ones float32."""
        data = np.arange(start, stop, step) if stop is not None else np.arange(start)
        if dtype is None and data.dtype.kind == "f":
            dtype = DEFAULT_FLOAT
        return Tensor(data, dtype=dtype)

    @staticmethod
    def eye(n: int, m: int | None = None, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
        """The (n, m) identity matrix (m defaults to n)."""
        return Tensor(np.eye(n, m, dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
        return Tensor(np.zeros_like(t._data), requires_grad=requires_grad)

    @staticmethod
    def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
        return Tensor(np.ones_like(t._data), requires_grad=requires_grad)

    # ---- plain properties ---------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> Function | None:
        return self._ctx

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        """The shape, or the size of dimension `dim` (as `torch.Tensor.size`; numpy's `.size` is `numel()`)."""
        if dim is None:
            return self._data.shape
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise TypeError(f"size: dim must be an int, got {dim!r}")
        if not -max(self.ndim, 1) <= dim < max(self.ndim, 1) or self.ndim == 0:
            raise IndexError(f"size: dim {dim} is out of range for a tensor of shape {self.shape}")
        return self._data.shape[dim]

    def dim(self) -> int:
        """The number of dimensions (as `torch.Tensor.dim`)."""
        return self._data.ndim

    def numel(self) -> int:
        """The number of elements."""
        return self._data.size

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shared, not copied)."""
        return self._data

    def tolist(self) -> Any:
        """The data as nested Python lists."""
        return self._data.tolist()

    def item(self) -> float | int:
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python scalar, got shape {self.shape}")
        return self._data.item()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._make(self._data, False, None)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self._data.dtype.kind != "f":
            raise TypeError(f"requires_grad_: only floating-point tensors can require grad, got dtype {self.dtype}")
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad_: a non-leaf tensor's requires_grad cannot be turned off "
                               "(use .detach() to cut it from the graph)")
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
        return self._data.shape[0]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self.dtype:
            return self._data.astype(dtype)
        return self._data.copy() if copy else self._data

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self._data)

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
        body = np.array2string(self._data, precision=4, separator=", ", threshold=20, edgeitems=2)
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
    def backward(self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
                 inputs: Sequence[Tensor] | None = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (or only into `inputs`' `.grad`).

        A scalar seeds with 1; a non-scalar needs `gradient` of its shape. The graph's
        saved arrays are freed afterwards unless `retain_graph` (which defaults to
        `create_graph`). With `create_graph=True` the gradients carry a graph of their
        own, so that they can be differentiated again.
        """
        seed = _seed("backward", self, gradient)
        only = None if inputs is None else _input_list("backward", inputs)
        grads = backward_walk([self], [seed], create_graph if retain_graph is None else retain_graph,
                              create_graph, only)
        if only is not None:
            stored: set[int] = set()
            for t, g in zip(only, grads):
                if g is not None:
                    _store_grad(t, g, create_graph, stored)


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


def _seed(op: str, root: Tensor, gradient: Any) -> Tensor:
    """The gradient that starts the walk at `root`: 1 for a one-element tensor, else `gradient`."""
    if not root.requires_grad:
        raise RuntimeError(
            f"{op}: this tensor does not require grad and has no graph "
            "(make an input with requires_grad=True, and do not call backward inside no_grad)"
        )
    if gradient is None:
        if root._data.size != 1:
            raise RuntimeError(f"{op}: grad can be created implicitly only for a one-element tensor, "
                               f"got shape {root.shape}; pass gradient= of that shape")
        return Tensor._make(np.ones(root.shape, dtype=root.dtype), False, None)
    if isinstance(gradient, Tensor) and gradient.requires_grad:  # a seed with a graph (create_graph)
        seed = gradient if gradient.dtype == root.dtype else gradient.to(root.dtype)
    else:  # a copy: the walk may hand the seed on as a leaf's .grad, which must not alias the caller's array
        data = gradient._data if isinstance(gradient, Tensor) else gradient
        seed = Tensor._make(np.array(data, dtype=root.dtype), False, None)
    if seed.shape != root.shape:
        raise ValueError(f"{op}: gradient has shape {seed.shape} but the tensor has shape {root.shape}")
    return seed


def _input_list(op: str, inputs: Any) -> list[Tensor]:
    items = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: inputs[{i}] is a {type(t).__name__}, not a Tensor")
        if not t.requires_grad:
            raise RuntimeError(f"{op}: inputs[{i}] (shape {t.shape}) does not require grad")
    return items


def backward_walk(roots: Sequence[Tensor], seeds: Sequence[Tensor], retain_graph: bool, create_graph: bool,
                  inputs: Sequence[Tensor] | None = None) -> list[Tensor | None]:
    """Walk the graph from `roots` backwards, each op's gradient after all of its uses.

    Without `inputs`, gradients accumulate into every leaf's `.grad` (and retained
    non-leaves'); with them, nothing is stored and the gradients of `inputs` are returned.
    """
    order = graph_order(roots, needs_grad_only=True)
    _check_walkable(order)
    wanted = None if inputs is None else {id(t) for t in inputs}
    needed = _leading_to(order, wanted)
    found: dict[int, Tensor] = {}
    grads: dict[int, Tensor] = {}
    owned: set[int] = set()  # tensors whose running gradient is an array this walk allocated: added to in place
    stored: set[int] = set()  # the arrays given to some tensor's .grad: a second tensor gets a copy
    for root, seed in zip(roots, seeds):
        _accumulate(grads, owned, root, seed, create_graph)
    walking = _GradMode.walking
    with (enable_grad() if create_graph else no_grad()):
        _GradMode.walking = True
        try:
            for node in reversed(order):
                grad = grads.pop(id(node), None)
                if grad is None:
                    continue
                ctx = node._ctx
                if wanted is None:
                    if ctx is None or node._retain_grad:
                        _store_grad(node, grad, create_graph, stored)
                elif id(node) in wanted:
                    found[id(node)] = grad
                if ctx is None or id(node) not in needed:
                    continue
                in_grads = _reference_backward(ctx, grad) if create_graph and ctx.reference else ctx.backward(grad)
                if _backward_hooks:
                    for hook in list(_backward_hooks):
                        hook(ctx, grad, in_grads)
                for parent, g in zip(ctx.parents, in_grads):
                    if g is not None and parent.requires_grad:
                        _accumulate(grads, owned, parent, g, create_graph)
                if not retain_graph:
                    ctx.release()
        finally:
            _GradMode.walking = walking
    return [] if inputs is None else [found.get(id(t)) for t in inputs]


def _check_walkable(order: list[Tensor]) -> None:
    """Refuse a graph whose saved values are gone, or whose inputs changed in place since an op used them."""
    for node in order:
        ctx = node._ctx
        if ctx is None:
            continue
        if getattr(ctx, "released", False):
            raise RuntimeError(
                "backward: trying to backward through the graph a second time, but its saved values "
                "were freed by the first backward; pass retain_graph=True to the first call"
            )
        for i, (parent, version) in enumerate(zip(ctx.parents, ctx.versions)):
            if parent._version != version:
                raise RuntimeError(
                    f"backward: input {i} (shape {parent.shape}) of {ctx.name} was modified by an in-place "
                    f"operation after {ctx.name} used it (its version is {parent._version}, expected "
                    f"{version}); make a copy first (x.clone()) or do the in-place change after backward"
                )


def _leading_to(order: list[Tensor], wanted: set[int] | None) -> set[int]:
    """The ids of the tensors whose backward must run: all of them, or those with a wanted input below."""
    if wanted is None:
        return {id(t) for t in order}
    reaches: set[int] = set()
    for node in order:  # inputs come before the tensors made from them
        if node._ctx is not None and any(id(p) in wanted or id(p) in reaches for p in node._ctx.parents):
            reaches.add(id(node))
    return reaches


def _reference_backward(ctx: Function, g: Tensor) -> tuple[Tensor | None, ...]:
    """A fused op's gradient as a graph: differentiate its reference composition (for create_graph)."""
    with enable_grad():
        out = ctx.reference(*ctx.parents, **ctx.params)
    wanted = [p for p, need in zip(ctx.parents, ctx.needs_input_grad) if need]
    grads = iter(backward_walk([out], [g], True, True, wanted))
    return tuple(next(grads) if need else None for need in ctx.needs_input_grad)


def _unbroadcast(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum `g` over the axes that broadcasting added or stretched, back to `shape` (once, for every op)."""
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(i + extra for i, n in enumerate(shape) if n == 1 and g.shape[i + extra] != 1)
    return (g.sum(axis=axes, keepdims=True) if axes else g).reshape(shape)


def _accumulate(grads: dict[int, Tensor], owned: set[int], t: Tensor, g: Tensor | Indexed, create_graph: bool) -> None:
    """Add one use's gradient `g` into `t`'s running gradient: the walk's one accumulation path."""
    key = id(t)
    prev = grads.get(key)
    if not isinstance(g, (Tensor, Indexed)):  # a fused op's backward computes on arrays (0-d ones come as scalars)
        g = Tensor._make(np.asarray(g), False, None)
    if isinstance(g, Indexed):
        if create_graph:
            g = scatter(g.values, g.key, t.shape)  # differentiable: its gradient is indexing again
        else:
            if prev is None or key not in owned:
                acc = np.zeros(t.shape, dtype=t.dtype) if prev is None else np.array(prev._data)
                prev = grads[key] = Tensor._make(acc, False, None)
                owned.add(key)
            add_at(prev._data, g.key, g.values._data)
            return
    if g.shape != t.shape:
        g = _unbroadcast(g, t.shape)
    if g.dtype != t.dtype:
        g = g.to(t.dtype)
    if prev is None:
        grads[key] = g
    elif create_graph:
        grads[key] = prev + g
    elif key in owned:
        prev._data += g._data
    else:
        grads[key] = Tensor._make(np.asarray(prev._data + g._data), False, None)  # an array, never a numpy scalar
        owned.add(key)


def _store_grad(t: Tensor, g: Tensor, create_graph: bool, stored: set[int]) -> None:
    """Accumulate `g` into `t.grad`. Outside create_graph `.grad` holds an array of its own: the walk's
    gradient itself, unless that is read-only (a broadcast) or its memory already went to another tensor's
    `.grad` (`stored`: an op may hand one gradient to several inputs), when it gets a copy."""
    if create_graph:
        t.grad = g if t.grad is None else t.grad + g
        return
    data = g._data
    if t.grad is None:
        owner = data if data.base is None else data.base
        if not data.flags.writeable or not isinstance(owner, np.ndarray) or id(owner) in stored:
            data = owner = data.copy()
        stored.add(id(owner))
        t.grad = Tensor._make(data, False, None)
    elif t.grad._data.flags.writeable and t.grad.shape == data.shape:
        t.grad._data += data
    else:
        t.grad = Tensor._make(t.grad._data + data, False, None)


def add_at(acc: np.ndarray, key: Any, values: np.ndarray) -> None:
    """acc[key] += values, where repeated indices accumulate (np.add.at semantics)."""
    if isinstance(key, np.ndarray) and key.dtype.kind in "iu" and key.ndim >= 1:
        # one integer array over the first axis (embeddings): sort, then sum each run of equal ids
        # in one reduceat (np.add.at handles one element at a time)
        ids = key.reshape(-1)
        ids = np.where(ids < 0, ids + len(acc), ids)  # -1 and n-1 are the same row: one run
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]) if ids.size else ids
        rows = values.reshape((ids.size,) + acc.shape[1:])[order]
        acc[sorted_ids[starts]] += np.add.reduceat(rows, starts, axis=0) if ids.size else rows[:0]
    elif _has_array(key):
        np.add.at(acc, key, values)
    else:
        acc[key] += values


def _has_array(key: Any) -> bool:
    """Whether `key` holds an integer array (whose repeated indices must accumulate)."""
    parts = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, np.ndarray) and k.dtype.kind in "iu" for k in parts)


class Scatter(Function):
    """zeros(shape) with `values` added at `key`: the gradient of indexing, and differentiable in turn."""

    def forward(self, values, key=None, shape=()):
        out = np.zeros(shape, dtype=values.dtype)
        add_at(out, key, values)
        return out

    def backward(self, g):
        return (g[self.params["key"]],)


def scatter(values: Tensor, key: Any, shape: tuple[int, ...]) -> Tensor:
    """A tensor of `shape` that is `values` at `key` (repeated indices add) and zero elsewhere."""
    return Scatter.apply(values, key=key, shape=shape)


def int_args(op: str, args: tuple, what: str = "shape") -> tuple[int, ...]:
    """Accept `f(2, 3)` and `f((2, 3))` alike; every entry must be an int (2.5 is an error, not 2)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    if all(type(d) is int for d in args):  # the common case: nothing to convert
        return args
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in args):
        raise TypeError(f"{op}: {what} must be integers, got {args!r}")
    return tuple(int(d) for d in args)


def _shape_arg(op: str, shape: tuple) -> tuple[int, ...]:
    """A constructor's shape (see `int_args`); negative sizes are rejected clearly."""
    dims = int_args(op, shape)
    if any(d < 0 for d in dims):
        raise ValueError(f"{op}: negative dimension in shape {dims}")
    return dims


def in_place(t: Tensor, op: str, result: Callable[[Tensor], Tensor], *others: Any,
             write: Callable[[np.ndarray], None] | None = None) -> Tensor:
    """Make `t` hold `result(t)` and return `t`, with PyTorch's rules for in-place ops.

    Inside `no_grad`, or when nothing involved requires grad, the values are written into
    `t`'s array (views of it see the change). While a graph is recorded, a leaf that requires
    grad refuses (its update belongs in `no_grad`); any other tensor becomes the new op's
    output, its earlier self kept in the graph for the ops that already used it. `write(array)`,
    if given, writes the new values straight into the array when nothing is recorded. Either way
    `t`'s version goes up, so that a backward that needs the old values says so.
    """
    recording = _GradMode.enabled and (t.requires_grad or any(isinstance(o, Tensor) and o.requires_grad
                                                             for o in others))
    if recording and t._ctx is None and t.requires_grad:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad (shape {t.shape}) cannot be changed in place "
                           f"while the graph is recorded; do the update inside `with no_grad():`")
    if recording:
        earlier = Tensor._make(t._data, t.requires_grad, t._ctx)  # t as it was, for the ops that used it
        if t._ctx is not None:
            t._ctx._output = weakref.ref(earlier)
        new = _same_shape(op, t, result(earlier))
        if new.dtype != t.dtype:
            new = new.to(t.dtype)
        t._data, t._ctx, t.requires_grad = new._data, new._ctx, new.requires_grad
        if new._ctx is not None:
            new._ctx._output = weakref.ref(t)
    elif write is not None:
        if not t._data.flags.writeable:
            raise RuntimeError(f"{op}: this tensor's memory is read-only (a broadcast made by expand?); "
                               f"make a copy with .clone() first")
        write(t._data)
    else:
        with no_grad():
            new = _same_shape(op, t, result(t))
        if not np.can_cast(new.dtype, t.dtype, "same_kind"):
            raise RuntimeError(f"{op}: the result has dtype {new.dtype}, which cannot be stored in place in a "
                               f"tensor of dtype {t.dtype} (as in PyTorch); cast first, e.g. x = x.float()")
        if not t._data.flags.writeable:
            raise RuntimeError(f"{op}: this tensor's memory is read-only (a broadcast made by expand?); "
                               f"make a copy with .clone() first")
        if new._data is not t._data:
            np.copyto(t._data, new._data, casting="same_kind")
    t._version += 1
    return t


def _same_shape(op: str, t: Tensor, new: Tensor) -> Tensor:
    if new.shape != t.shape:
        raise RuntimeError(f"{op}: the result has shape {new.shape}, which does not fit in place in a tensor of "
                           f"shape {t.shape} (broadcasting may stretch the other operand, never this one)")
    return new
