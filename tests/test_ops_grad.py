"""Every public differentiable op through `gradcheck` and `gradgradcheck` (float64, default tolerances), over
hypothesis inputs (`check_grad` runs both: first and second derivatives).

Each test declares the Tensor methods it covers with `@covers(...)`;
`test_every_public_op_has_a_gradcheck_test` fails when an op is added to
tinygrad_lite/ops/ without one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import arrays, broadcastable_shapes, check_grad, distinct_arrays, shapes

import tinygrad_lite
from tinygrad_lite import Tensor, gradcheck
from tinygrad_lite.ops import normalize_axis

COVERED: set[str] = set()

# Public op methods without a gradient, and why.
NOT_DIFFERENTIABLE = {
    "argmax": "returns indices",
    "argmin": "returns indices",
    "any": "boolean result", "all": "boolean result",
    "long": "integer result",
    "__eq__": "boolean result", "__ne__": "boolean result", "__lt__": "boolean result",
    "__le__": "boolean result", "__gt__": "boolean result", "__ge__": "boolean result",
}

FAST = settings(max_examples=25)


def covers(*names: str):
    """Mark the Tensor methods a test gradchecks."""
    def mark(test):
        COVERED.update(names)
        return test
    return mark


def _public_op_methods() -> set[str]:
    names = set()
    for name, value in vars(Tensor).items():
        fn = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
        if callable(fn) and getattr(fn, "__module__", "").startswith("tinygrad_lite.ops"):
            names.add(name)
    return names


def test_every_public_op_has_a_gradcheck_test():
    ops = _public_op_methods()
    assert len(ops) > 60  # the enumeration itself works
    missing = sorted(ops - COVERED - set(NOT_DIFFERENTIABLE))
    assert not missing, f"ops without a gradcheck test: {missing}"
    stale = sorted((COVERED | set(NOT_DIFFERENTIABLE)) - ops)
    assert not stale, f"names covered here but not Tensor ops: {stale}"


def test_module_level_aliases_are_the_tensor_ops():
    assert tinygrad_lite.where is Tensor.where


# ---- strategies local to these tests -------------------------------------------------------


@st.composite
def shape_and_axis(draw, min_dims=0, max_dims=4):
    """(shape, axis, keepdims) with axis None, an int (either sign) or a tuple (mixed signs)."""
    shape = draw(shapes(min_dims=min_dims, max_dims=max_dims))
    nd = len(shape)
    if nd == 0:
        axis = draw(st.sampled_from([None, 0, -1]))
    else:
        as_int = st.integers(-nd, nd - 1)
        as_tuple = st.lists(st.integers(0, nd - 1), unique=True, min_size=1, max_size=nd).flatmap(
            lambda axes: st.tuples(*[st.sampled_from([a, a - nd]) for a in axes]))
        axis = draw(st.one_of(st.none(), as_int, as_tuple))
    return shape, axis, draw(st.booleans())


def _reduced_count(shape, axis) -> int:
    return math.prod(shape[a] for a in normalize_axis("test", axis, len(shape)))


# ---- elementwise unary -------------------------------------------------------------------------

UNARY = {
    "neg": (lambda x: x.neg(), "any"),
    "__neg__": (lambda x: -x, "any"),
    "exp": (lambda x: x.exp(), "any"),
    "log": (lambda x: x.log(), "positive"),
    "sqrt": (lambda x: x.sqrt(), "positive"),
    "abs": (lambda x: x.abs(), "nonzero"),
    "__abs__": (lambda x: abs(x), "nonzero"),
    "tanh": (lambda x: x.tanh(), "any"),
    "sigmoid": (lambda x: x.sigmoid(), "any"),
    "relu": (lambda x: x.relu(), "nonzero"),
    "gelu": (lambda x: x.gelu(), "any"),
    "square": (lambda x: x.square(), "any"),
    "erf": (lambda x: x.erf(), "any"),
    "clone": (lambda x: x.clone() * x, "any"),
    "contiguous": (lambda x: (x.T if x.ndim > 1 else x).contiguous() * 2, "any"),
}
COVERED.update(UNARY)


@pytest.mark.parametrize("name", sorted(UNARY))
@FAST
@given(data=st.data())
def test_unary(name, data):
    fn, kind = UNARY[name]
    x = data.draw(arrays(data.draw(shapes()), kind))
    check_grad(fn, x)


@covers("to", "astype", "double", "float")
@FAST
@given(x=shapes().flatmap(arrays))
def test_casts(x):
    # float64 -> float64 casts are checked by finite differences ...
    check_grad(lambda t: t.to(np.float64) * 2, x)
    check_grad(lambda t: t.astype("float64").exp(), x)
    check_grad(lambda t: t.double().tanh(), x)
    # ... a float32 round trip cannot be (its rounding swamps eps); its vector-Jacobian product must be
    # the upstream gradient, cast back to float64
    t = Tensor(x, requires_grad=True, dtype=np.float64)
    y = t.float()
    assert y.dtype == np.float32
    g = np.arange(x.size, dtype=np.float32).reshape(x.shape)
    y.backward(g)
    assert t.grad.dtype == np.float64
    np.testing.assert_array_equal(t.grad.data, g.astype(np.float64))


# ---- elementwise binary with broadcasting --------------------------------------------------------

BINARY = {
    "add": (lambda a, b: a.add(b), "any"),
    "__add__": (lambda a, b: a + b, "any"),
    "sub": (lambda a, b: a.sub(b), "any"),
    "__sub__": (lambda a, b: a - b, "any"),
    "mul": (lambda a, b: a.mul(b), "any"),
    "__mul__": (lambda a, b: a * b, "any"),
    "div": (lambda a, b: a.div(b), "nonzero"),
    "__truediv__": (lambda a, b: a / b, "nonzero"),
    "pow": (lambda a, b: a.pow(b), "positive"),
    "__pow__": (lambda a, b: a ** b, "positive"),
}
COVERED.update(BINARY)


@pytest.mark.parametrize("name", sorted(BINARY))
@FAST
@given(data=st.data())
def test_binary_broadcasting(name, data):
    fn, kind = BINARY[name]
    sa, sb = data.draw(broadcastable_shapes())
    # the second operand is the divisor or the base's exponent: keep it away from 0 / in range
    a = data.draw(arrays(sa, "positive" if kind == "positive" else "any"))
    b = data.draw(arrays(sb, kind if kind != "positive" else "any"))
    check_grad(fn, a, b)


@covers("maximum", "minimum")
@FAST
@given(data=st.data(), op=st.sampled_from(["maximum", "minimum"]))
def test_maximum_minimum(data, op):
    sa, sb = data.draw(broadcastable_shapes())
    a = data.draw(distinct_arrays(sa))
    b = data.draw(distinct_arrays(sb)) - 0.075  # a grid offset by half a step: never a tie
    check_grad(lambda x, y: getattr(x, op)(y), a, b)
    check_grad(lambda x: getattr(x, op)(0.3), a)  # a Python scalar on the other side


REFLECTED = {
    "__radd__": (lambda x: 2.5 + x, "any"),
    "__rsub__": (lambda x: 2.5 - x, "any"),
    "__rmul__": (lambda x: -1.5 * x, "any"),
    "__rtruediv__": (lambda x: 2.5 / x, "nonzero"),
    "__rpow__": (lambda x: 1.7 ** x, "any"),
}
COVERED.update(REFLECTED)

SCALAR_RIGHT = [
    (lambda x: x + 2.5, "any"), (lambda x: x - 2.5, "any"), (lambda x: x * 3, "any"),
    (lambda x: x / 4.0, "any"), (lambda x: x ** 2, "any"), (lambda x: x ** 3, "any"),
    (lambda x: x ** 0.5, "positive"), (lambda x: x ** -1.5, "positive"), (lambda x: x ** -1, "nonzero"),
    (lambda x: x.pow(2.5), "positive"),
]


@pytest.mark.parametrize("name", sorted(REFLECTED))
@FAST
@given(data=st.data())
def test_reflected_scalar_ops(name, data):
    fn, kind = REFLECTED[name]
    check_grad(fn, data.draw(arrays(data.draw(shapes()), kind)))


@pytest.mark.parametrize("case", range(len(SCALAR_RIGHT)))
@FAST
@given(data=st.data())
def test_scalar_on_the_right(case, data):
    fn, kind = SCALAR_RIGHT[case]
    check_grad(fn, data.draw(arrays(data.draw(shapes()), kind)))


@FAST
@given(data=st.data())
def test_ndarray_on_the_left(data):
    sa, sb = data.draw(broadcastable_shapes())
    const = data.draw(arrays(sa))
    x = data.draw(arrays(sb, "nonzero"))
    check_grad(lambda t: const + t, x)
    check_grad(lambda t: const * t - t, x)
    check_grad(lambda t: const / t, x)


@covers("clip", "clamp")
@FAST
@given(data=st.data(), bounds=st.sampled_from([(-0.3, 0.45), (None, 0.15), (-0.6, None), (0.0, 0.0)]))
def test_clip(data, bounds):
    # grid values (0.075 + k 0.15) never sit on the bounds (multiples of 0.15)
    x = data.draw(distinct_arrays(data.draw(shapes())))
    lo, hi = bounds
    check_grad(lambda t: t.clip(lo, hi), x)
    check_grad(lambda t: t.clamp(min=lo, max=hi) * t, x)


@covers("where")
@FAST
@given(data=st.data())
def test_where(data):
    sa, sb = data.draw(broadcastable_shapes())
    full = np.broadcast_shapes(sa, sb)
    cond = data.draw(st.lists(st.booleans(), min_size=math.prod(full), max_size=math.prod(full)))
    cond = np.array(cond, dtype=bool).reshape(full)
    a, b = data.draw(arrays(sa)), data.draw(arrays(sb))
    check_grad(lambda x, y: Tensor.where(cond, x, y), a, b)
    check_grad(lambda x: tinygrad_lite.where(Tensor(cond), x, 0.5), a)
    check_grad(lambda y: Tensor.where(cond, -1.0, y * y), b)


@covers("masked_fill")
@FAST
@given(data=st.data(), value=st.sampled_from([0.0, -2.5, 1e4]))
def test_masked_fill(data, value):
    sx, sm = data.draw(broadcastable_shapes())
    shape = np.broadcast_shapes(sx, sm)
    x = data.draw(arrays(shape))
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=math.prod(sm), max_size=math.prod(sm))),
                    dtype=bool).reshape(sm)
    check_grad(lambda t: t.masked_fill(mask, value) * t, x)
    check_grad(lambda t: t.masked_fill(Tensor(mask), value).tanh() * t, x)


@settings(max_examples=15)
@given(data=st.data(), T=st.integers(1, 5))
def test_causal_masked_softmax_exact_zeros_and_grads(data, T):
    scores = data.draw(arrays((2, T, T)))
    future = np.triu(np.ones((T, T), dtype=bool), k=1)
    s = Tensor(scores, requires_grad=True, dtype=np.float64)
    p = s.masked_fill(future, -np.inf).softmax(axis=-1)
    assert np.all(p.data[:, future] == 0.0)  # exactly zero, not merely small
    np.testing.assert_allclose(p.data.sum(-1), 1.0, rtol=1e-12)
    weights = data.draw(arrays((2, T, T)))
    (p * Tensor(weights, dtype=np.float64)).sum().backward()
    assert np.all(np.isfinite(s.grad.data)) and np.all(s.grad.data[:, future] == 0.0)
    check_grad(lambda t: t.masked_fill(future, -np.inf).softmax(axis=-1), scores)
    check_grad(lambda t: t.masked_fill(future, -np.inf).log_softmax(axis=-1).masked_fill(future, 0.0), scores)


# ---- reductions ----------------------------------------------------------------------------------


@covers("sum", "mean", "logsumexp")
@FAST
@given(sak=shape_and_axis(), data=st.data(), op=st.sampled_from(["sum", "mean", "logsumexp"]))
def test_smooth_reductions(sak, data, op):
    shape, axis, keepdims = sak
    check_grad(lambda t: getattr(t, op)(axis=axis, keepdims=keepdims), data.draw(arrays(shape)))


@covers("amax", "amin")
@FAST
@given(sak=shape_and_axis(), data=st.data(), op=st.sampled_from(["amax", "amin"]))
def test_amax_amin(sak, data, op):
    shape, axis, keepdims = sak
    check_grad(lambda t: getattr(t, op)(axis=axis, keepdims=keepdims), data.draw(distinct_arrays(shape)))
    check_grad(lambda t: getattr(t, op)(dim=axis, keepdim=keepdims), data.draw(distinct_arrays(shape)))


@covers("max", "min")
@FAST
@given(shape=shapes(), data=st.data(), op=st.sampled_from(["max", "min"]), keepdim=st.booleans())
def test_max_min_values_indices_and_full(shape, data, op, keepdim):
    x = data.draw(distinct_arrays(shape))
    check_grad(lambda t: getattr(t, op)(), x)
    check_grad(lambda t: getattr(t, op)(Tensor(x * 0.5 + 0.01)), x)  # against another tensor: maximum / minimum
    if shape:
        dim = data.draw(st.integers(-len(shape), len(shape) - 1))
        check_grad(lambda t: getattr(t, op)(dim, keepdim=keepdim).values * 2, x)


def test_max_with_ties_shares_the_gradient():
    x = Tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True, dtype=np.float64)
    x.amax(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


@covers("var", "std")
@FAST
@given(sak=shape_and_axis(), data=st.data(), correction=st.sampled_from([0, 1]), op=st.sampled_from(["var", "std"]))
def test_var_std(sak, data, correction, op):
    shape, axis, keepdims = sak
    assume(_reduced_count(shape, axis) > 1)
    x = data.draw(distinct_arrays(shape))  # distinct values: std's sqrt stays away from 0
    check_grad(lambda t: getattr(t, op)(axis=axis, keepdims=keepdims, correction=correction), x)


@covers("softmax", "log_softmax")
@FAST
@given(data=st.data(), op=st.sampled_from(["softmax", "log_softmax"]))
def test_softmax_family(data, op):
    shape = data.draw(shapes())
    axis = data.draw(st.integers(-max(len(shape), 1), max(len(shape), 1) - 1))
    x = data.draw(arrays(shape))
    weights = data.draw(arrays(shape))  # a weighted sum: the plain sum of softmax has zero gradient
    check_grad(lambda t: getattr(t, op)(axis=axis) * Tensor(weights, dtype=np.float64), x)


# ---- matmul ---------------------------------------------------------------------------------------


@st.composite
def matmul_shapes(draw):
    """Operand shapes for every matmul layout: 1-D, 2-D, batched, broadcast batch dims."""
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch_a, batch_b = draw(broadcastable_shapes(max_dims=2))
    layout = draw(st.sampled_from(["1x1", "1x2", "2x1", "2x2", "BxB", "Bx2", "2xB", "1xB", "Bx1"]))
    left = {"1": (k,), "2": (n, k), "B": batch_a + (n, k)}[layout[0]]
    right = {"1": (k,), "2": (k, m), "B": batch_b + (k, m)}[layout[2]]
    return left, right


@covers("matmul", "__matmul__")
@FAST
@given(ab=matmul_shapes(), data=st.data())
def test_matmul(ab, data):
    sa, sb = ab
    a, b = data.draw(arrays(sa)), data.draw(arrays(sb))
    check_grad(lambda x, y: x @ y, a, b)
    check_grad(lambda x, y: x.matmul(y), a, b)


@covers("__rmatmul__")
@FAST
@given(ab=matmul_shapes(), data=st.data())
def test_rmatmul_with_an_ndarray_on_the_left(ab, data):
    sa, sb = ab
    a, b = data.draw(arrays(sa)), data.draw(arrays(sb))
    check_grad(lambda y: a @ y, b)


# ---- movement ---------------------------------------------------------------------------------------


@covers("reshape", "view", "flatten")
@FAST
@given(shape=shapes(), data=st.data())
def test_reshape_view_flatten(shape, data):
    x = data.draw(arrays(shape))
    weights = Tensor(np.arange(x.size, dtype=np.float64) - 3)
    check_grad(lambda t: t.reshape(-1) * weights, x)
    check_grad(lambda t: t.view(tuple(reversed(shape))).sum(axis=0) if shape else t.view(1), x)
    check_grad(lambda t: t.reshape(1, *shape, 1) * 2, x)
    if shape:
        start = data.draw(st.integers(-len(shape), len(shape) - 1))
        end = data.draw(st.integers(start % len(shape), len(shape) - 1))
        check_grad(lambda t: t.flatten(start, end).exp(), x)


@covers("unsqueeze", "squeeze")
@FAST
@given(shape=shapes(max_dims=3), data=st.data())
def test_unsqueeze_squeeze(shape, data):
    x = data.draw(arrays(shape))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check_grad(lambda t: t.unsqueeze(axis) * 3, x)
    check_grad(lambda t: t.unsqueeze(axis).squeeze(axis).exp(), x)
    check_grad(lambda t: t.squeeze().tanh(), x)


@covers("permute", "transpose", "T", "mT", "t")
@FAST
@given(shape=shapes(min_dims=2), data=st.data())
def test_permute_transpose(shape, data):
    x = data.draw(arrays(shape))
    nd = len(shape)
    perm = data.draw(st.permutations(range(nd)))
    signed = [data.draw(st.sampled_from([a, a - nd])) for a in perm]
    a, b = data.draw(st.integers(-nd, nd - 1)), data.draw(st.integers(-nd, nd - 1))
    weights = Tensor(np.arange(x.size, dtype=np.float64).reshape(tuple(shape[p] for p in perm)))
    check_grad(lambda t: t.permute(*signed) * weights, x)
    check_grad(lambda t: t.permute(signed).exp(), x)
    check_grad(lambda t: t.transpose(a, b).sigmoid(), x)
    check_grad(lambda t: t.mT.sigmoid(), x)
    check_grad(lambda t: t.T * Tensor(np.arange(x.size, dtype=np.float64).reshape(shape[::-1])), x)
    if nd == 2:
        check_grad(lambda t: t.t() * Tensor(np.arange(x.size, dtype=np.float64).reshape(shape[::-1])), x)


@covers("expand", "broadcast_to", "sum_to_size")
@FAST
@given(pair=broadcastable_shapes(), data=st.data())
def test_expand(pair, data):
    small, other = pair
    target = np.broadcast_shapes(small, other)
    x = data.draw(arrays(small))
    weights = Tensor(np.arange(math.prod(target), dtype=np.float64).reshape(target))
    check_grad(lambda t: t.expand(*target) * weights, x)
    keep = tuple(-1 if i >= len(target) - len(small) and n == target[i] else n for i, n in enumerate(target))
    check_grad(lambda t: t.broadcast_to(keep).exp(), x)
    big = data.draw(arrays(tuple(target)))
    check_grad(lambda t: (t * t).sum_to_size(small), big)


@st.composite
def index_keys(draw, shape):
    """A numpy index for `shape`: ints (either sign), slices (any step), None, Ellipsis, an int array."""
    parts = []
    used_array = False
    axis = 0
    while axis < len(shape):
        n = shape[axis]
        kind = draw(st.sampled_from(["int", "slice", "slice", "array", "none", "ellipsis", "stop"]))
        if kind == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            start = draw(st.one_of(st.none(), st.integers(-n - 1, n)))
            stop = draw(st.one_of(st.none(), st.integers(-n - 1, n)))
            parts.append(slice(start, stop, draw(st.sampled_from([None, 1, 2, -1, -2]))))
        elif kind == "array" and not used_array:
            used_array = True  # one advanced index per key: several would have to broadcast together
            size = draw(st.integers(1, 6))
            parts.append(np.array(draw(st.lists(st.integers(-n, n - 1), min_size=size, max_size=size))))
        elif kind == "none":
            parts.append(None)
            continue
        elif kind == "ellipsis":
            parts.append(Ellipsis)
            break
        elif kind == "stop":
            break
        else:
            parts.append(slice(None))
        axis += 1
    return tuple(parts)


@covers("__getitem__")
@settings(max_examples=60)
@given(shape=shapes(min_dims=1), data=st.data())
def test_getitem(shape, data):
    x = data.draw(arrays(shape))
    key = data.draw(index_keys(shape))
    out_shape = x[key].shape
    assume(math.prod(out_shape) > 0)
    weights = Tensor(np.arange(math.prod(out_shape), dtype=np.float64).reshape(out_shape) + 1)
    check_grad(lambda t: t[key] * weights, x)


@settings(max_examples=25)
@given(shape=shapes(min_dims=1), data=st.data())
def test_getitem_int_arrays_with_repeats_and_bool_masks(shape, data):
    x = data.draw(arrays(shape))
    n = shape[0]
    repeated = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=2, max_size=8)))
    check_grad(lambda t: t[repeated] * t[repeated], x)
    check_grad(lambda t: t[Tensor(repeated)].exp(), x)  # an integer Tensor index
    check_grad(lambda t: t[[0, 0, -1]].sum(axis=0), x)  # a Python list
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=x.size, max_size=x.size))).reshape(shape)
    assume(mask.any())
    check_grad(lambda t: t[mask] ** 2, x)
    row_mask = mask.reshape(n, -1)[:, 0]
    assume(row_mask.any())
    check_grad(lambda t: t[row_mask].exp(), x)


def test_getitem_repeated_indices_accumulate():
    x = Tensor(np.zeros(4), requires_grad=True, dtype=np.float64)
    x[[1, 1, 3, 1]].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 3, 0, 1])


@covers("split", "chunk")
@FAST
@given(shape=shapes(min_dims=1), data=st.data())
def test_split_chunk(shape, data):
    x = data.draw(arrays(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    size = data.draw(st.integers(1, shape[axis]))
    pieces = data.draw(st.integers(1, shape[axis]))

    def weighted_join(parts):
        return Tensor.cat([p * (i + 1) for i, p in enumerate(parts)], axis=axis)

    check_grad(lambda t: weighted_join(t.split(size, axis=axis)), x)
    check_grad(lambda t: weighted_join(t.chunk(pieces, axis=axis)), x)
    sizes = [shape[axis] - 1, 1] if shape[axis] > 1 else [1]
    check_grad(lambda t: weighted_join(t.split(sizes, axis=axis)).exp(), x)


@covers("cat", "stack")
@FAST
@given(shape=shapes(min_dims=1, max_size=24), data=st.data(), count=st.integers(1, 3))
def test_cat_stack(shape, data, count):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    parts = []
    for _ in range(count):
        s = list(shape)
        s[axis] = data.draw(st.integers(1, 3))
        parts.append(data.draw(arrays(tuple(s))))
    check_grad(lambda *ts: Tensor.cat(ts, axis=axis) * Tensor.cat(ts, axis=axis), *parts)
    same = [data.draw(arrays(shape)) for _ in range(count)]
    new_axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check_grad(lambda *ts: tinygrad_lite.stack(ts, axis=new_axis).exp(), *same)


# ---- in place ---------------------------------------------------------------------------------------

IN_PLACE = {
    "add_": lambda t, o: t.add_(o), "__iadd__": lambda t, o: t.__iadd__(o),
    "sub_": lambda t, o: t.sub_(o), "__isub__": lambda t, o: t.__isub__(o),
    "mul_": lambda t, o: t.mul_(o), "__imul__": lambda t, o: t.__imul__(o),
    "div_": lambda t, o: t.div_(o), "__itruediv__": lambda t, o: t.__itruediv__(o),
    "copy_": lambda t, o: t.copy_(o),
}
COVERED.update(IN_PLACE)


@pytest.mark.parametrize("name", sorted(IN_PLACE))
@FAST
@given(data=st.data())
def test_in_place_binary_ops_on_a_recorded_tensor(name, data):
    """On a non-leaf the in-place op is recorded like its out-of-place twin (the other operand may broadcast)."""
    big, small = data.draw(broadcastable_shapes())
    target = tuple(np.broadcast_shapes(big, small))
    x = data.draw(arrays(target))
    y = data.draw(arrays(small, "nonzero"))
    check_grad(lambda a, b: IN_PLACE[name](a * 1.5, b) * a, x, y)


@covers("zero_", "fill_", "clamp_", "masked_fill_", "uniform_", "normal_")
@FAST
@given(x=shapes().flatmap(lambda s: distinct_arrays(s)), value=st.sampled_from([0.0, -2.5]))
def test_in_place_fills_on_a_recorded_tensor(x, value):
    mask = np.arange(x.size).reshape(x.shape) % 2 == 0
    check_grad(lambda t: (t * 2).zero_() + t, x)
    check_grad(lambda t: (t * 2).fill_(value) * t, x)
    check_grad(lambda t: (t * 1.0).clamp_(-0.3, 0.45) * t, x)  # the grid values never sit on the bounds
    check_grad(lambda t: (t * 2).masked_fill_(mask, value) * t, x)
    check_grad(lambda t: (t * 2).uniform_(-1.0, 2.0, generator=0) * t, x)  # a fixed seed: the same draw each call
    check_grad(lambda t: (t * 2).normal_(0.5, 2.0, generator=0) * t, x)


@covers("__setitem__")
@FAST
@given(shape=shapes(min_dims=1), data=st.data())
def test_setitem_on_a_recorded_tensor(shape, data):
    x = data.draw(arrays(shape))
    key = data.draw(index_keys(shape))
    assume(math.prod(x[key].shape) > 0 and not any(isinstance(k, np.ndarray) for k in key))
    v = data.draw(arrays(x[key].shape))

    def put(t, values):
        out = t * 2
        out[key] = values * values
        return out * t

    check_grad(put, x, v)


def test_a_wrong_gradient_is_caught():
    """The suite's tests mean something: an op with a deliberately wrong backward fails gradcheck."""

    class Twice(tinygrad_lite.Function):
        def forward(self, x):
            return 2 * x

        def backward(self, g):
            return (3 * g,)  # wrong on purpose

    x = Tensor(np.linspace(-1, 1, 5), requires_grad=True, dtype=np.float64)
    with pytest.raises(tinygrad_lite.GradcheckError, match="analytic 3 vs numeric 2.*on their own: twice"):
        gradcheck(lambda t: Twice.apply(t), x)


def test_a_wrong_double_backward_is_caught_and_the_op_named():
    """A backward that is right to first order but written on a constant (not differentiable) fails
    gradgradcheck, which names the op inside a larger function."""

    class Cube(tinygrad_lite.Function):
        def forward(self, x):
            return x ** 3

        def backward(self, g):
            (x,) = self.parents
            return (g * Tensor(3 * x.data ** 2),)  # right value, but cut from the graph: d/dx of it is lost

    x = Tensor(np.linspace(-1, 1, 5), requires_grad=True, dtype=np.float64)
    assert gradcheck(lambda t: Cube.apply(t).tanh(), x)
    with pytest.raises(tinygrad_lite.GradcheckError, match=r"gradgradcheck failed: the derivative of the gradient "
                                                            r"of input 0\[.*fail gradgradcheck on their own: cube"):
        tinygrad_lite.gradgradcheck(lambda t: Cube.apply(t).tanh(), x)
