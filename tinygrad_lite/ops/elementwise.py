"""Elementwise ops: arithmetic, math functions, activations, selection, casts, and their in-place forms.

Each backward is one line of Tensor ops (HIPS autograd's style), so it can be differentiated again.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..perf import split_in_blocks
from ..random import get_generator
from ..tensor import DEFAULT_FLOAT, Function, Tensor, in_place
from . import broadcast_shape, floating, operands, promote, tensor_method

# ---- arithmetic -----------------------------------------------------------------------


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, -g if self.needs_input_grad[1] else None


class Mul(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.parents
        return g * b if self.needs_input_grad[0] else None, g * a if self.needs_input_grad[1] else None


class Div(Function):
    def forward(self, a, b):
        return a / b

    def backward(self, g):
        _, b = self.parents
        ga = g / b
        return ga, -ga * self.output if self.needs_input_grad[1] else None  # d(a/b)/db = -(a/b)/b


class Pow(Function):
    def forward(self, a, b):
        return a ** b

    def backward(self, g):
        a, b = self.parents
        ga = g * b * a ** (b - 1) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            # d(a^b)/db = a^b log a, taken as 0 where a == 0 (the limit for b > 0) and NaN where a < 0
            positive = a.data > 0
            limit = np.where(a.data == 0, 0.0, np.nan).astype(a.dtype)
            log_a = Tensor.where(positive, Tensor.where(positive, a, 1.0).log(), limit)
            gb = g * self.output * log_a
        return ga, gb


class PowConst(Function):
    """x ** p for a constant Python number p (numpy fast-paths p = 2, 0.5, -1)."""

    def forward(self, x, p=2.0):
        return x ** p

    def backward(self, g):
        (x,), p = self.parents, self.params["p"]
        if p == 0:
            return (g * 0.0,)
        return (g * x * 2.0 if p == 2 else g * x ** (p - 1) * float(p),)


def _binary(name: str, fn: type[Function]):
    def method(self: Tensor, other: Any) -> Tensor:
        a, b = operands(name, self, other)
        return fn.apply(*_true_division(name, a, b))

    def reflected(self: Tensor, other: Any) -> Tensor:
        a, b = operands(name, other, self)
        return fn.apply(*_true_division(name, a, b))

    method.__name__ = name
    method.__doc__ = f"Elementwise {name} with broadcasting; `other` may be a Tensor, an array or a number."
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


# ---- in place ---------------------------------------------------------------------------


def _in_place_binary(name: str):
    def method(self: Tensor, other: Any) -> Tensor:
        return in_place(self, f"{name}_", lambda t: getattr(t, name)(other), other)

    method.__name__ = f"{name}_"
    method.__doc__ = f"In-place {name}: self = self {name} other (see `in_place` for PyTorch's rules); returns self."
    return method


for _name, _dunder in (("add", "iadd"), ("sub", "isub"), ("mul", "imul"), ("div", "itruediv")):
    _method = _in_place_binary(_name)
    setattr(Tensor, f"{_name}_", _method)
    setattr(Tensor, f"__{_dunder}__", _method)
    _method.__qualname__ = f"Tensor.{_name}_"


def _filled(t: Tensor, values: Any) -> Tensor:
    """`values` broadcast to t's shape and dtype, with no gradient back to t's old values."""
    return Tensor.where(np.ones((), dtype=bool), values, t) if isinstance(values, Tensor) else t.masked_fill(
        np.ones((), dtype=bool), values)


def zero_(self: Tensor) -> Tensor:
    """Fill with zeros in place; returns self."""
    return in_place(self, "zero_", lambda t: _filled(t, 0.0))


def fill_(self: Tensor, value: float) -> Tensor:
    """Fill with `value` in place; returns self."""
    return in_place(self, "fill_", lambda t: _filled(t, value), value)


def copy_(self: Tensor, src: Any) -> Tensor:
    """Copy `src` (broadcast to this shape, cast to this dtype) into this tensor in place; returns self."""
    source = src if isinstance(src, Tensor) else Tensor(np.asarray(src))
    broadcast_shape("copy_", source.shape, self.shape)
    return in_place(self, "copy_", lambda t: _filled(t, source.to(t.dtype)), source)


def clamp_(self: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """Clamp into [min, max] in place; returns self."""
    return in_place(self, "clamp_", lambda t: t.clamp(min, max))


def masked_fill_(self: Tensor, mask: Any, value: float) -> Tensor:
    """Put `value` where `mask` is True, in place; returns self."""
    return in_place(self, "masked_fill_", lambda t: t.masked_fill(mask, value))


def uniform_(self: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples uniform in [a, b) in place, from `generator` (default: the global one); returns self."""
    values = get_generator(generator, "uniform_").uniform(a, b, self.shape).astype(self.dtype)
    return in_place(self, "uniform_", lambda t: _filled(t, Tensor(values)))


def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples of N(mean, std²) in place, from `generator` (default: the global one); returns self."""
    values = get_generator(generator, "normal_").normal(mean, std, self.shape).astype(self.dtype)
    return in_place(self, "normal_", lambda t: _filled(t, Tensor(values)))


for _fn in (zero_, fill_, copy_, clamp_, masked_fill_, uniform_, normal_):
    _fn.__qualname__ = f"Tensor.{_fn.__name__}"
    setattr(Tensor, _fn.__name__, _fn)


class Clone(Function):
    def forward(self, x):
        return np.array(x, order="C")

    def backward(self, g):
        return (g,)


@tensor_method
def clone(self: Tensor) -> Tensor:
    """A copy with its own (contiguous) memory, still in the graph (the gradient passes straight through)."""
    return Clone.apply(self)


@tensor_method
def contiguous(self: Tensor) -> Tensor:
    """This tensor if its memory is C-contiguous, else a contiguous copy (`clone`)."""
    return self if self.data.flags.c_contiguous else Clone.apply(self)


# ---- unary math ---------------------------------------------------------------------


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):
        return (-g,)


class Exp(Function):
    def forward(self, x):
        return np.exp(x)

    def backward(self, g):
        return (g * self.output,)


class Log(Function):
    def forward(self, x):
        return np.log(x)

    def backward(self, g):
        return (g / self.parents[0],)


class Sqrt(Function):
    def forward(self, x):
        return np.sqrt(x)

    def backward(self, g):
        return (g / (self.output * 2.0),)


class Abs(Function):
    def forward(self, x):
        self.sign = np.sign(x)
        return np.abs(x)

    def backward(self, g):
        return (g * self.sign,)


class TanhFunction(Function):
    """tanh (the Function; `nn.Tanh` is the Module)."""

    def forward(self, x):
        return np.tanh(x)

    def backward(self, g):
        out = self.output
        return (g * (1.0 - out * out),)


class SigmoidFunction(Function):
    """1 / (1 + e^-x) (the Function; `nn.Sigmoid` is the Module)."""

    def forward(self, x):
        # exp of a non-positive number only: no overflow warnings for large |x|
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def backward(self, g):
        out = self.output
        return (g * out * (1.0 - out),)


class ReLUFunction(Function):
    """max(x, 0) (the Function; `nn.ReLU` is the Module)."""

    def forward(self, x):
        self.positive = x > 0
        return np.maximum(x, 0)  # not x * (x > 0), which gives -0.0

    def backward(self, g):
        return (g * self.positive,)


# erf by W. J. Cody's / S. Moshier's (Cephes) rational approximations, accurate to float64 round-off:
# erf(x) = x T(x²) / U(x²) for |x| < 1, else 1 - erfc(|x|) with erfc(x) = e^(-x²) P(x) / Q(x) (x < 8)
# or e^(-x²) R(x) / S(x) (x >= 8). Coefficients highest power first; Q, S and U have a leading 1.
_ERF_T = [9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4]
_ERF_U = [1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4]
_ERFC_P = [2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2]
_ERFC_Q = [1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2]
_ERFC_R = [5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
           6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0]
_ERFC_S = [1.0, 2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
           1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0]


def erf_array(x: np.ndarray) -> np.ndarray:
    """The error function of an array, in float64 internally, returned in x's dtype."""
    z = np.abs(np.asarray(x, dtype=np.float64))
    small, middle = z < 1.0, (z >= 1.0) & (z < 8.0)
    out = np.empty_like(z)
    zs = z[small]
    out[small] = zs * np.polyval(_ERF_T, zs * zs) / np.polyval(_ERF_U, zs * zs)
    for where, num, den in ((middle, _ERFC_P, _ERFC_Q), (~small & ~middle, _ERFC_R, _ERFC_S)):
        zw = np.minimum(z[where], 30.0)  # erf(30) is 1 in float64; inf would give inf / inf below
        with np.errstate(under="ignore"):
            out[where] = 1.0 - np.exp(-zw * zw) * np.polyval(num, zw) / np.polyval(den, zw)
    return np.copysign(out, x).astype(np.result_type(x, np.float32) if x.dtype.kind == "f" else DEFAULT_FLOAT)


class Erf(Function):
    def forward(self, x):
        return erf_array(x)

    def backward(self, g):
        (x,) = self.parents
        return (g * (-x * x).exp() * (2.0 / math.sqrt(math.pi)),)


_GELU_C = math.sqrt(2 / math.pi)


class GELUFunction(Function):
    """GELU, x Φ(x): exact, 0.5 x (1 + erf(x / √2)), or the tanh approximation (GPT-2's),
    0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))). The Function; `nn.GELU` is the Module.

    Fused: the tanh form runs in place on cache-sized blocks spread over the cores (written out, the
    formula makes ~8 full-size temporaries each way, and tanh is the slowest ufunc in a GPT step).
    """

    def forward(self, x, approximate="none"):
        x = np.asarray(x, order="C")  # (ascontiguousarray would make a 0-d input 1-d)
        if approximate == "none":
            self.cdf = 0.5 * (1.0 + erf_array(x * (1 / math.sqrt(2))))  # Φ(x)
            return x * self.cdf
        t, out = np.empty_like(x), np.empty_like(x)  # t = tanh(√(2/π) (x + 0.044715 x³))
        xs, ts, outs = x.reshape(-1), t.reshape(-1), out.reshape(-1)

        def work(part):
            xp, tp, op = xs[part], ts[part], outs[part]
            np.multiply(xp, xp, out=tp)  # tp = √(2/π) x (1 + 0.044715 x²), then its tanh
            tp *= 0.044715
            tp += 1
            tp *= xp
            tp *= _GELU_C
            np.tanh(tp, out=tp)
            np.add(tp, 1, out=op)  # op = 0.5 x (1 + t)
            op *= xp
            op *= 0.5

        split_in_blocks(work, x.size)
        self.x, self.t = x, t
        return out

    def backward(self, g):
        if self.params["approximate"] == "none":
            x = self.parents[0].data  # d/dx x Φ(x) = Φ(x) + x φ(x)
            pdf = np.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
            return (g.data * (self.cdf + x * pdf),)
        xs, ts, gs = self.x.reshape(-1), self.t.reshape(-1), np.asarray(g.data, order="C").reshape(-1)
        grad = np.empty_like(self.x)
        gxs = grad.reshape(-1)

        def work(part):
            xp, tp, sp = xs[part], ts[part], gxs[part]
            d = np.multiply(xp, xp)  # d = d(inner)/dx = √(2/π) (1 + 3 · 0.044715 x²)
            d *= 3 * 0.044715 * _GELU_C
            d += _GELU_C
            np.multiply(tp, tp, out=sp)  # sp = g (0.5 (1 + t) + 0.5 x (1 - t²) d)
            np.subtract(1, sp, out=sp)
            sp *= xp
            sp *= d
            sp += tp
            sp += 1
            sp *= 0.5
            sp *= gs[part]

        split_in_blocks(work, grad.size)
        return (grad,)

    @staticmethod
    def reference(x: Tensor, approximate: str = "none") -> Tensor:
        if approximate == "none":
            return 0.5 * x * (1.0 + (x * (1 / math.sqrt(2))).erf())
        return 0.5 * x * (1.0 + ((x + 0.044715 * x * x * x) * _GELU_C).tanh())


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
_unary("tanh", TanhFunction, "Hyperbolic tangent.")
_unary("sigmoid", SigmoidFunction, "1 / (1 + e^-x), computed without overflow.")
_unary("relu", ReLUFunction, "max(x, 0) (gradient 0 at 0 as in PyTorch).", floats_only=False)
_unary("erf", Erf, "The error function 2/√π ∫₀ˣ e^(-t²) dt (accurate to float64 round-off).")

_GELU_FORMS = ("none", "tanh")


@tensor_method
def gelu(self: Tensor, approximate: str = "none") -> Tensor:
    """GELU x Φ(x): exact (`approximate='none'`, PyTorch's default) or GPT-2's tanh approximation ('tanh')."""
    if approximate not in _GELU_FORMS:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELUFunction.apply(floating(self), approximate=approximate)


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


def _clamp(op: str, x: Tensor, min: float | None, max: float | None) -> Tensor:
    if min is None and max is None:
        raise ValueError(f"{op}: give at least one of min and max")
    if min is not None and max is not None and min > max:
        raise ValueError(f"{op}: min {min} is greater than max {max}")
    return Clip.apply(x, min=min, max=max)


@tensor_method
def clamp(self: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """Clamp values into [min, max]; the gradient passes where min <= x <= max (as torch.clamp)."""
    return _clamp("clamp", self, min, max)


@tensor_method
def clip(self: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """`clamp` under numpy's name."""
    return _clamp("clip", self, min, max)


class Maximum(Function):
    def forward(self, a, b):
        # ties share the gradient equally, as torch.maximum does
        self.share = ((a > b) + 0.5 * (a == b)).astype(np.result_type(a, b), copy=False)
        return np.maximum(a, b)

    def backward(self, g):
        share = self.share
        return g * share if self.needs_input_grad[0] else None, g * (1.0 - share) if self.needs_input_grad[1] else None


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
        return np.where(cond, a, b)

    def backward(self, g):
        cond = self.params["cond"]
        return (Tensor.where(cond, g, 0.0) if self.needs_input_grad[0] else None,
                Tensor.where(cond, 0.0, g) if self.needs_input_grad[1] else None)


def _bool_mask(op: str, mask: Any) -> np.ndarray:
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"{op}: the mask must be boolean, got dtype {m.dtype}")
    return m


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """`input` where `condition` is True, else `other`; all three broadcast together."""
    c = _bool_mask("where", condition)
    a, b = promote("where", input, other)
    broadcast_shape("where", c.shape, a.shape, b.shape)
    return Where.apply(a, b, cond=c)


Tensor.where = staticmethod(where)


class MaskedFill(Function):
    def forward(self, x, mask=None, value=0.0):
        return np.where(mask, np.asarray(value, dtype=x.dtype), x)

    def backward(self, g):
        return (g.masked_fill(self.params["mask"], 0.0),)


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
        return x.astype(dtype, copy=False)

    def backward(self, g):
        return (g.to(self.parents[0].dtype),)


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
        a, b = operands(name, self, other)
        return Tensor(ufunc(a.data, b.data))

    method.__name__ = name
    return method


for _name, _ufunc in {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
                      "gt": np.greater, "ge": np.greater_equal}.items():
    setattr(Tensor, f"__{_name}__", _comparison(_name, _ufunc))
