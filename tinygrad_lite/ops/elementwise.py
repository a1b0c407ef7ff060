"""Elementwise ops: arithmetic, math functions, activations, selection, casts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..perf import split_in_blocks
from ..tensor import Function, Tensor
from . import as_tensor, broadcast_shape, floating, operands, tensor_method, unbroadcast

# ---- arithmetic -----------------------------------------------------------------------


class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        sa, sb = self.shapes
        return (unbroadcast(g, sa) if self.needs_input_grad[0] else None,
                unbroadcast(g, sb) if self.needs_input_grad[1] else None)


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        sa, sb = self.shapes
        return (unbroadcast(g, sa) if self.needs_input_grad[0] else None,
                unbroadcast(-g, sb) if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        a, b = self.a, self.b
        return (unbroadcast(g * b, a.shape) if self.needs_input_grad[0] else None,
                unbroadcast(g * a, b.shape) if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        a, b = self.a, self.b
        ga = g / b
        return (unbroadcast(ga, a.shape) if self.needs_input_grad[0] else None,
                unbroadcast(-ga * a / b, b.shape) if self.needs_input_grad[1] else None)


class Pow(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a ** b
        return self.out

    def backward(self, g):
        a, b = self.a, self.b
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(g * b * a ** (b - 1), a.shape)
        if self.needs_input_grad[1]:
            # d(a^b)/db = a^b log a, taken as 0 where a == 0 (the limit for b > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.where(a > 0, np.log(np.where(a > 0, a, 1)), np.where(a == 0, 0, np.nan))
            gb = unbroadcast(g * self.out * log_a, b.shape)
        return ga, gb


class PowConst(Function):
    """x ** p for a constant Python number p (numpy fast-paths p = 2, 0.5, -1)."""

    def forward(self, x, p=2.0):
        self.x = x
        return x ** p

    def backward(self, g):
        p = self.params["p"]
        dx = g * self.x if p == 2 else self.x ** (p - 1) * g  # one fresh array, scaled in place
        dx *= p
        return (dx,)


def _binary(name: str, fn: type[Function]):
    def method(self: Tensor, other: Any) -> Tensor:
        a, b = operands(name, self, other)
        return fn.apply(*_true_division(name, a, b))

    def reflected(self: Tensor, other: Any) -> Tensor:
        a, b = operands(name, other, self)
        return fn.apply(*_true_division(name, a, b))

    method.__name__ = name
    method.__doc__ = f"Elementwise {name} with numpy broadcasting; `other` may be a Tensor or a number."
    return method, reflected


def _true_division(name: str, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Integer tensors divide into float32, as in PyTorch (numpy would give float64)."""
    return (floating(a), floating(b)) if name == "div" else (a, b)


for _name, _dunder, _fn in (("add", "add", Add), ("sub", "sub", Sub), ("mul", "mul", Mul),
                            ("div", "truediv", Div)):
    _method, _reflected = _binary(_name, _fn)
    tensor_method(_method)
    setattr(Tensor, f"__{_dunder}__", _method)
    setattr(Tensor, f"__r{_dunder}__", _reflected)


def _pow(self: Tensor, exponent: Any) -> Tensor:
    """x ** exponent, broadcasting; a constant Python number exponent takes a faster path."""
    if isinstance(exponent, (int, float)) and not isinstance(exponent, bool) and self.dtype.kind == "f":
        # float(): an np.float64 exponent (a float subclass) must not upcast float32
        return PowConst.apply(self, p=exponent if isinstance(exponent, int) else float(exponent))
    a, b = operands("pow", self, exponent)
    return Pow.apply(a, b)


_pow.__name__ = "pow"
Tensor.__pow__ = tensor_method(_pow)
Tensor.__rpow__ = _binary("pow", Pow)[1]


# ---- unary math ---------------------------------------------------------------------


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):
        return (-g,)


class Exp(Function):
    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, g):
        return (g * self.out,)


class Log(Function):
    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, g):
        return (g / self.x,)


class Sqrt(Function):
    def forward(self, x):
        self.out = np.sqrt(x)
        return self.out

    def backward(self, g):
        return (g / (2 * self.out),)


class Abs(Function):
    def forward(self, x):
        self.x = x
        return np.abs(x)

    def backward(self, g):
        return (g * np.sign(self.x),)


class Tanh(Function):
    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, g):
        out = self.out
        return (g * (1 - out * out),)


class Sigmoid(Function):
    def forward(self, x):
        # exp of a non-positive number only: no overflow warnings for large |x|
        e = np.exp(-np.abs(x))
        self.out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.out

    def backward(self, g):
        out = self.out
        return (g * out * (1 - out),)


class ReLU(Function):
    def forward(self, x):
        self.positive = x > 0
        return np.maximum(x, 0)  # not x * (x > 0), which gives -0.0

    def backward(self, g):
        return (g * self.positive,)


_GELU_C = math.sqrt(2 / math.pi)


class GELU(Function):
    """GELU, tanh approximation (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""

    # In place on cache-sized blocks, spread over the cores: the formula written out
    # would make ~8 full-size temporaries each way, and tanh is the slowest ufunc in the step.

    def forward(self, x):
        x = np.asarray(x, order="C")  # (ascontiguousarray would make a 0-d input 1-d)
        t, out = np.empty_like(x), np.empty_like(x)  # t = tanh(sqrt(2/pi) (x + 0.044715 x^3))
        xs, ts, outs = x.reshape(-1), t.reshape(-1), out.reshape(-1)

        def work(part):
            xp, tp, op = xs[part], ts[part], outs[part]
            np.multiply(xp, xp, out=tp)
            tp *= 0.044715
            tp += 1
            tp *= xp
            tp *= _GELU_C
            np.tanh(tp, out=tp)
            np.add(tp, 1, out=op)
            op *= xp
            op *= 0.5

        split_in_blocks(work, x.size)
        self.x, self.t = x, t
        return out

    def backward(self, g):
        xs, ts, gs = self.x.reshape(-1), self.t.reshape(-1), np.asarray(g, order="C").reshape(-1)
        grad = np.empty_like(self.x)
        gxs = grad.reshape(-1)

        def work(part):
            xp, tp, sp = xs[part], ts[part], gxs[part]
            d = np.multiply(xp, xp)
            d *= 3 * 0.044715 * _GELU_C
            d += _GELU_C  # d(inner)/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
            np.multiply(tp, tp, out=sp)
            np.subtract(1, sp, out=sp)
            sp *= xp
            sp *= d
            sp += tp
            sp += 1
            sp *= 0.5  # 0.5 (1 + t) + 0.5 x (1 - t^2) d(inner)/dx
            sp *= gs[part]

        split_in_blocks(work, grad.size)
        return (grad,)


def _unary(name: str, fn: type[Function], doc: str, floats_only: bool = True):
    def method(self: Tensor) -> Tensor:
        return fn.apply(floating(self) if floats_only else self)

    method.__name__ = name
    method.__doc__ = doc
    return tensor_method(method)


Tensor.__neg__ = _unary("neg", Neg, "-x", floats_only=False)
_unary("exp", Exp, "e^x")
_unary("log", Log, "Natural logarithm.")
_unary("sqrt", Sqrt, "Square root.")
Tensor.__abs__ = _unary("abs", Abs, "|x| (gradient sign(x), 0 at 0 as in PyTorch).", floats_only=False)
_unary("tanh", Tanh, "Hyperbolic tangent.")
_unary("sigmoid", Sigmoid, "1 / (1 + e^-x), computed without overflow.")
_unary("relu", ReLU, "max(x, 0) (gradient 0 at 0 as in PyTorch).", floats_only=False)
_unary("gelu", GELU, "GELU with the tanh approximation used by GPT-2.")


@tensor_method
def square(self: Tensor) -> Tensor:
    """x * x"""
    return Mul.apply(self, self)


# ---- selection ----------------------------------------------------------------------


class Clip(Function):
    def forward(self, x, min=None, max=None):
        self.inside = np.ones(x.shape, dtype=bool)
        if min is not None:
            self.inside &= x >= min
        if max is not None:
            self.inside &= x <= max
        return np.clip(x, min, max)

    def backward(self, g):
        return (g * self.inside,)


@tensor_method
def clip(self: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """Clamp values into [min, max]; the gradient passes where min <= x <= max (as torch.clamp)."""
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min {min} is greater than max {max}")
    return Clip.apply(self, min=min, max=max)


Tensor.clamp = clip


class Maximum(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return np.maximum(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        # ties share the gradient equally, as torch.maximum does
        wa = ((a > b) + 0.5 * (a == b)).astype(g.dtype, copy=False)  # bool + 0.5 * bool is float64
        return (unbroadcast(g * wa, a.shape) if self.needs_input_grad[0] else None,
                unbroadcast(g * (1 - wa), b.shape) if self.needs_input_grad[1] else None)


@tensor_method
def maximum(self: Tensor, other: Any) -> Tensor:
    """Elementwise max of two tensors (ties split the gradient in half)."""
    a, b = operands("maximum", self, other)
    return Maximum.apply(a, b)


@tensor_method
def minimum(self: Tensor, other: Any) -> Tensor:
    """Elementwise min of two tensors (ties split the gradient in half)."""
    a, b = operands("minimum", self, other)
    return -Maximum.apply(-a, -b)


class Where(Function):
    def forward(self, a, b, cond=None):
        self.cond, self.shapes = cond, (a.shape, b.shape)
        return np.where(cond, a, b)

    def backward(self, g):
        sa, sb = self.shapes
        zero = np.zeros((), dtype=g.dtype)
        return (unbroadcast(np.where(self.cond, g, zero), sa) if self.needs_input_grad[0] else None,
                unbroadcast(np.where(self.cond, zero, g), sb) if self.needs_input_grad[1] else None)


def _bool_mask(op: str, mask: Any) -> np.ndarray:
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"{op}: the mask must be boolean, got dtype {m.dtype}")
    return m


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """`a` where `cond` is True, else `b`; all three broadcast together."""
    c = _bool_mask("where", cond)
    ta, tb = operands("where", a, b)
    broadcast_shape("where", c.shape, ta.shape, tb.shape)
    return Where.apply(ta, tb, cond=c)


Tensor.where = staticmethod(where)


class MaskedFill(Function):
    def forward(self, x, mask=None, value=0.0):
        self.mask = mask
        return np.where(mask, np.asarray(value, dtype=x.dtype), x)

    def backward(self, g):
        return (np.where(self.mask, np.zeros((), dtype=g.dtype), g),)


@tensor_method
def masked_fill(self: Tensor, mask: Any, value: float) -> Tensor:
    """Put `value` where `mask` is True (mask broadcastable to this tensor's shape).

    Filling with -inf before softmax gives exact zeros there, and zero gradient.
    """
    m = _bool_mask("masked_fill", mask)
    if broadcast_shape("masked_fill", m.shape, self.shape) != self.shape:
        raise ValueError(f"masked_fill: mask of shape {m.shape} does not broadcast to the tensor's shape {self.shape}")
    return MaskedFill.apply(self, mask=m, value=value)


# ---- dtype ----------------------------------------------------------------------------


class Cast(Function):
    def forward(self, x, dtype=None):
        self.in_dtype = x.dtype
        return x.astype(dtype, copy=False)

    def backward(self, g):
        return (g.astype(self.in_dtype, copy=False),)


@tensor_method
def to(self: Tensor, dtype: Any) -> Tensor:
    """This tensor in `dtype` (differentiable between float dtypes)."""
    dtype = np.dtype(dtype)
    if dtype == self.dtype:
        return self
    if dtype.kind != "f":
        return Tensor(self.data.astype(dtype))
    return Cast.apply(self, dtype=dtype)


Tensor.astype = to


def _caster(name: str, dtype: type, doc: str):
    def method(self: Tensor) -> Tensor:
        return self.to(dtype)

    method.__name__, method.__doc__ = name, doc
    return tensor_method(method)


_caster("float", np.float32, "Cast to float32 (differentiable from float64).")
_caster("double", np.float64, "Cast to float64 (differentiable from float32).")
_caster("long", np.int64, "Cast to int64 (indices and targets; no gradient).")


# ---- comparisons (boolean results, no gradient) ----------------------------------------


def _comparison(name: str, ufunc: np.ufunc):
    def method(self: Tensor, other: Any) -> Tensor:
        a, b = operands(name, self, as_tensor(other, self))
        return Tensor(ufunc(a.data, b.data))

    method.__name__ = name
    return method


for _name, _ufunc in {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
                      "gt": np.greater, "ge": np.greater_equal}.items():
    setattr(Tensor, f"__{_name}__", _comparison(_name, _ufunc))
