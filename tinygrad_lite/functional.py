"""A functional API beside the Tensor one, in the spirit of HIPS autograd and JAX.

    >>> from tinygrad_lite import grad, value_and_grad, jacobian
    >>> grad(lambda x: (x * x).sum())(np.array([1.0, 2.0]))        # array([2., 4.])
    >>> value_and_grad(lambda x, y: (x * y).sum(), argnums=(0, 1))(a, b)
    >>> jacobian(lambda x: x.softmax())(np.array([0.0, 1.0]))      # (2, 2)
    >>> hessian(lambda x: (x ** 3).sum())(np.array([1.0, 2.0]))     # diag(6x), by double backward
    >>> hvp(f)(x, v)                                                # H v without forming H

`f` takes Tensors and returns a Tensor; the transformed function takes
ndarrays, Tensors or numbers and returns numpy arrays. The arguments being
differentiated become fresh leaf Tensors, so the caller's tensors and their
`.grad` are never touched. Floating ndarrays, numpy scalars and Tensors keep
their dtype (a float64 array gives a float64 gradient); Python numbers and
lists follow Tensor's float32 default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import autograd
from .tensor import Tensor, enable_grad, graph_order, no_grad

Argnums = int | tuple[int, ...]


def grad(f: Callable[..., Tensor], argnums: Argnums = 0) -> Callable[..., Any]:
    """The gradient of scalar-valued `f` with respect to argument(s) `argnums`, as numpy arrays.

    An int `argnums` gives one array shaped like that argument; a tuple gives a tuple of arrays.
    """
    value_and_grad_f = _value_and_grad(f, argnums, "grad")
    return lambda *args: value_and_grad_f(*args)[1]


def value_and_grad(f: Callable[..., Tensor], argnums: Argnums = 0) -> Callable[..., tuple[np.ndarray, Any]]:
    """Like `grad`, but the transformed function returns `(f(*args) as an ndarray, gradient(s))`."""
    return _value_and_grad(f, argnums, "value_and_grad")


def _value_and_grad(f: Callable[..., Tensor], argnums: Argnums, op: str) -> Callable[..., tuple[np.ndarray, Any]]:
    def value_and_grad_f(*args: Any) -> tuple[np.ndarray, Any]:
        positions = _positions(op, argnums, len(args))
        call_args, leaves = _with_leaves(op, args, positions)
        value, grads = _vjp(lambda *_: _call(f, call_args), leaves, None, op)
        return value, grads[0] if isinstance(argnums, int) else tuple(grads)

    return value_and_grad_f


def jacobian(f: Callable[..., Tensor], argnums: Argnums = 0) -> Callable[..., Any]:
    """The Jacobian of `f`, shaped `output.shape + argument.shape`, by one backward per output element.

    Meant for small functions: the cost grows with the number of outputs.
    """

    def jacobian_f(*args: Any) -> Any:
        positions = _positions("jacobian", argnums, len(args))
        call_args, leaves = _with_leaves("jacobian", args, positions)
        out_shape, matrices = _analytic_jacobians(lambda *_: _call(f, call_args), leaves)
        jacs = tuple(m.reshape(out_shape + t.shape) for m, t in zip(matrices, leaves))
        return jacs[0] if isinstance(argnums, int) else jacs

    return jacobian_f


def hessian(f: Callable[..., Tensor], argnums: int = 0) -> Callable[..., np.ndarray]:
    """The Hessian of scalar-valued `f` with respect to argument `argnums`, shaped `x.shape + x.shape`.

    Computed by double backward: one gradient with `create_graph=True`, then one backward per
    entry of it (meant for small arguments: the cost grows with the argument's size).
    """

    def hessian_f(*args: Any) -> np.ndarray:
        positions = _positions("hessian", _single(argnums, "hessian"), len(args))
        call_args, (x,) = _with_leaves("hessian", args, positions)
        gx = _first_gradient("hessian", f, call_args, x)
        flat = gx.reshape(-1)
        rows = [autograd.grad(flat[i], [x], retain_graph=True, allow_unused=True)[0] for i in range(flat.shape[0])]
        matrix = np.stack([np.zeros(x.shape, x.dtype) if r is None else r.data for r in rows]) if rows else (
            np.zeros((0,) + x.shape, x.dtype))
        return matrix.reshape(x.shape + x.shape)

    return hessian_f


def hvp(f: Callable[..., Tensor], argnums: int = 0) -> Callable[..., np.ndarray]:
    """`hvp(f)(*args, v)`: the Hessian of scalar `f` at args times `v` (shaped like the argument), by double
    backward (the gradient of gᵀv), in the time of about two gradients whatever the argument's size."""

    def hvp_f(*args_and_v: Any) -> np.ndarray:
        *args, v = args_and_v
        positions = _positions("hvp", _single(argnums, "hvp"), len(args))
        call_args, (x,) = _with_leaves("hvp", tuple(args), positions)
        vector = _like("hvp", v, x)
        gx = _first_gradient("hvp", f, call_args, x)
        (hv,) = autograd.grad((gx * vector).sum(), [x], allow_unused=True)
        return np.zeros(x.shape, x.dtype) if hv is None else hv.data

    return hvp_f


def jvp(f: Callable[..., Tensor], argnums: int = 0) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """`jvp(f)(*args, v)` -> (f(*args), J v): the forward-mode product, from two reverse passes (the
    "double-vjp trick": u ↦ Jᵀu is linear in u, so the gradient of (Jᵀu)·v with respect to u is J v)."""

    def jvp_f(*args_and_v: Any) -> tuple[np.ndarray, np.ndarray]:
        *args, v = args_and_v
        positions = _positions("jvp", _single(argnums, "jvp"), len(args))
        call_args, (x,) = _with_leaves("jvp", tuple(args), positions)
        vector = _like("jvp", v, x)
        with enable_grad():
            out = _call(f, call_args)
        u = Tensor(np.zeros(out.shape, dtype=out.dtype), requires_grad=True)  # any value: Jᵀu is linear in u
        (vjp,) = autograd.grad(out, [x], u, create_graph=True, allow_unused=True)
        if vjp is None or not vjp.requires_grad:
            return out.data, np.zeros(out.shape, out.dtype)
        (jv,) = autograd.grad((vjp * vector).sum(), [u], allow_unused=True)
        return out.data, np.zeros(out.shape, out.dtype) if jv is None else jv.data

    return jvp_f


def _single(argnums: Any, op: str) -> int:
    if not isinstance(argnums, int) or isinstance(argnums, bool):
        raise TypeError(f"{op}: argnums must be a single int, got {argnums!r}")
    return argnums


def _first_gradient(op: str, f: Callable[..., Tensor], call_args: list[Any], x: Tensor) -> Tensor:
    """df/dx with a graph of its own (create_graph), for differentiating again."""
    with enable_grad():
        out = _call(f, call_args)
    if out.numel() != 1:
        raise ValueError(f"{op}: the function must return a one-element Tensor, got shape {out.shape}")
    if not out.requires_grad:
        return Tensor(np.zeros(x.shape, x.dtype))
    (gx,) = autograd.grad(out, [x], create_graph=True, allow_unused=True)
    return Tensor(np.zeros(x.shape, x.dtype)) if gx is None else gx


def _like(op: str, v: Any, x: Tensor) -> Tensor:
    """The direction `v` as a constant Tensor of x's shape and dtype."""
    arr = np.asarray(v.data if isinstance(v, Tensor) else v, dtype=x.dtype)
    if arr.shape != x.shape:
        raise ValueError(f"{op}: the direction v has shape {arr.shape}, but the argument has shape {x.shape}")
    return Tensor(arr)


# ---- the two primitives that gradcheck shares ------------------------------------------------
def _vjp(fn: Callable[..., Tensor], tensors: tuple[Tensor, ...] | list[Tensor], cotangent: np.ndarray | None,
         op: str = "grad") -> tuple[np.ndarray, list[np.ndarray | None]]:
    """`fn(*tensors)` and vᵀJ for each tensor, leaving the `.grad` of every leaf in the graph as it was.

    `cotangent` None seeds a one-element output with 1. Tensors that require grad
    but do not reach the output get zeros; tensors that do not require grad, None.
    """
    with enable_grad():
        out = _call(fn, tensors)
    if cotangent is None and out.numel() != 1:
        raise ValueError(f"{op}: the function must return a one-element Tensor, got shape {out.shape} "
                         f"(use jacobian for vector outputs)")
    others = [t for t in _leaves(out) if all(t is not own for own in tensors)]
    touched = list(tensors) + others
    saved = [t.grad for t in touched]
    for t in touched:
        t.grad = None
    try:
        if out.requires_grad:
            out.backward(None if cotangent is None else cotangent.reshape(out.shape))
        grads = [None if not t.requires_grad else t.grad.data.copy() if t.grad is not None else np.zeros_like(t.data)
                 for t in tensors]
        return out.data, grads
    finally:
        for t, g in zip(touched, saved):
            t.grad = g


def _analytic_jacobians(fn: Callable[..., Tensor], tensors: tuple[Tensor, ...] | list[Tensor]
                        ) -> tuple[tuple[int, ...], list[np.ndarray | None]]:
    """The output's shape and, per tensor, its Jacobian as an (n_out, n_in) matrix (None without grad)."""
    with no_grad():
        out = _call(fn, tensors)
    rows = [_vjp(fn, tensors, row)[1] for row in np.eye(out.numel(), dtype=out.dtype)]
    matrices = [None if not t.requires_grad else np.array([r[i].ravel() for r in rows]).reshape(out.numel(), t.numel())
                for i, t in enumerate(tensors)]
    return out.shape, matrices


# ---- helpers ---------------------------------------------------------------------------------
def _leaves(out: Tensor) -> list[Tensor]:
    """The leaves that require grad in `out`'s graph (weights captured by a closure, for instance)."""
    return [t for t in graph_order([out], needs_grad_only=True) if t._ctx is None] if out.requires_grad else []


def _call(fn: Callable[..., Tensor], args: Any) -> Tensor:
    out = fn(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"the function must return a Tensor, got {type(out).__name__}")
    return out


def _positions(op: str, argnums: Argnums, n_args: int) -> tuple[int, ...]:
    positions = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not positions or not all(isinstance(p, int) for p in positions):
        raise TypeError(f"{op}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    for p in positions:
        if not -n_args <= p < n_args:
            raise ValueError(f"{op}: argnums {p} is out of range for a call with {n_args} positional argument(s)")
    if len({p % n_args for p in positions}) != len(positions):
        raise ValueError(f"{op}: repeated argument in argnums {argnums!r}")
    return tuple(p % n_args for p in positions)


def _with_leaves(op: str, args: tuple[Any, ...], positions: tuple[int, ...]) -> tuple[list[Any], list[Tensor]]:
    """`args` with the differentiated ones replaced by fresh leaf Tensors (also returned, in argnums order)."""
    call_args = list(args)
    leaves = []
    for p in positions:
        arg = args[p]
        data = arg.data if isinstance(arg, Tensor) else arg
        dtype = data.dtype if isinstance(data, (np.ndarray, np.generic)) and data.dtype.kind == "f" else None
        leaf = Tensor(data, dtype=dtype)
        if leaf.dtype.kind != "f":
            raise TypeError(f"{op}: argument {p} has dtype {leaf.dtype}; only floating-point arguments "
                            f"can be differentiated")
        leaf.requires_grad = True
        call_args[p] = leaf
        leaves.append(leaf)
    return call_args, leaves
