"""Algebraic properties the ops must satisfy, over hypothesis inputs (values, not gradients)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import arrays, broadcastable_shapes, distinct_arrays, shapes

from tinygrad_lite import Tensor
from tinygrad_lite.ops import normalize_axis

PROPS = settings(max_examples=40)


def t64(a: np.ndarray) -> Tensor:
    return Tensor(a, dtype=np.float64)


@st.composite
def shape_and_axis(draw, min_dims=1):
    shape = draw(shapes(min_dims=min_dims))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


@PROPS
@given(sa=shape_and_axis(), data=st.data())
def test_softmax_is_a_distribution(sa, data):
    shape, axis = sa
    p = t64(data.draw(arrays(shape))).softmax(axis=axis).data
    assert np.all(p > 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-12)


@PROPS
@given(sa=shape_and_axis(), data=st.data())
def test_log_softmax_is_log_of_softmax(sa, data):
    shape, axis = sa
    x = t64(data.draw(arrays(shape)))
    np.testing.assert_allclose(x.log_softmax(axis=axis).data, np.log(x.softmax(axis=axis).data), rtol=1e-12,
                               atol=1e-12)


@PROPS
@given(sa=shape_and_axis(), data=st.data(), shift=st.floats(-50, 50))
def test_softmax_ignores_a_constant_shift(sa, data, shift):
    shape, axis = sa
    x = data.draw(arrays(shape))
    np.testing.assert_allclose(t64(x + shift).softmax(axis).data, t64(x).softmax(axis).data, rtol=1e-9, atol=1e-15)


@settings(max_examples=20)
@given(sa=shape_and_axis(), data=st.data(), sign=st.sampled_from([1.0, -1.0]))
def test_softmax_family_at_logits_of_1000(sa, data, sign):
    """Logits of +-1000 (exp overflows float64) give finite values equal to the small-logit results."""
    shape, axis = sa
    small = data.draw(arrays(shape))
    for dtype in (np.float64, np.float32):
        big = Tensor(small + sign * 1000.0, dtype=dtype)
        ref = Tensor(small, dtype=dtype)
        tol = 1e-9 if dtype == np.float64 else 1e-3
        p, logp = big.softmax(axis=axis).data, big.log_softmax(axis=axis).data
        assert p.dtype == dtype and np.all(np.isfinite(p)) and np.all(np.isfinite(logp))
        np.testing.assert_allclose(p, ref.softmax(axis=axis).data, rtol=tol, atol=tol)
        np.testing.assert_allclose(logp, ref.log_softmax(axis=axis).data, rtol=tol, atol=tol)
        lse = big.logsumexp(axis=axis).data
        np.testing.assert_allclose(lse, ref.logsumexp(axis=axis).data + sign * 1000.0, rtol=tol)


def test_extreme_logits_exact_values():
    x = Tensor([1000.0, -1000.0, 0.0], dtype=np.float64)
    np.testing.assert_array_equal(x.softmax().data, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(x.log_softmax().data, [0.0, -2000.0, -1000.0])
    np.testing.assert_allclose(x.logsumexp().data, 1000.0)
    y = Tensor([[1000.0, 1000.0]], requires_grad=True)
    y.log_softmax(axis=1)[0, 0].backward()
    np.testing.assert_allclose(y.grad.data, [[0.5, -0.5]])


@PROPS
@given(sa=shape_and_axis(), data=st.data())
def test_logsumexp_matches_the_definition(sa, data):
    shape, axis = sa
    x = data.draw(arrays(shape))
    np.testing.assert_allclose(t64(x).logsumexp(axis=axis, keepdims=True).data,
                               np.log(np.exp(x).sum(axis=axis, keepdims=True)), rtol=1e-12, atol=1e-12)


@st.composite
def matmul_pair(draw):
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ba, bb = draw(broadcastable_shapes(max_dims=2))
    return draw(arrays(ba + (n, k))), draw(arrays(bb + (k, m)))


@PROPS
@given(ab=matmul_pair())
def test_matmul_equals_broadcast_multiply_and_sum(ab):
    a, b = ab
    expected = (t64(a).unsqueeze(-1) * t64(b).unsqueeze(-3)).sum(axis=-2)
    np.testing.assert_allclose((t64(a) @ t64(b)).data, expected.data, rtol=1e-12, atol=1e-12)


@PROPS
@given(ab=matmul_pair())
def test_matmul_gradients_equal_those_of_multiply_and_sum(ab):
    a, b = ab
    grads = []
    for product in (lambda x, y: x @ y, lambda x, y: (x.unsqueeze(-1) * y.unsqueeze(-3)).sum(axis=-2)):
        x, y = Tensor(a, requires_grad=True, dtype=np.float64), Tensor(b, requires_grad=True, dtype=np.float64)
        (product(x, y) ** 2).sum().backward()
        grads.append((x.grad.data, y.grad.data))
    for got, want in zip(*grads):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@PROPS
@given(shape=shapes(min_dims=1), data=st.data())
def test_sum_over_all_axes_equals_one_axis_at_a_time(shape, data):
    x = t64(data.draw(arrays(shape)))
    one_at_a_time = x
    for _ in shape:
        one_at_a_time = one_at_a_time.sum(axis=-1)
    for total in (x.sum(), x.sum(axis=tuple(range(len(shape)))), x.sum(axis=tuple(range(-len(shape), 0)))):
        np.testing.assert_allclose(total.data, one_at_a_time.data, rtol=1e-12, atol=1e-12)


@PROPS
@given(shape=shapes(min_dims=1), data=st.data(), keepdims=st.booleans())
def test_reductions_agree_with_numpy(shape, data, keepdims):
    x = data.draw(distinct_arrays(shape))
    axis = tuple(data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape),
                                    unique_by=lambda a: a % len(shape))))
    t = t64(x)
    for op, ref in (("sum", np.sum), ("mean", np.mean), ("amax", np.max), ("amin", np.min)):
        np.testing.assert_allclose(getattr(t, op)(axis=axis, keepdims=keepdims).data,
                                   ref(x, axis=axis, keepdims=keepdims), rtol=1e-12, atol=1e-12)
    count = math.prod(shape[a] for a in normalize_axis("var", axis, len(shape)))
    if count > 1:
        np.testing.assert_allclose(t.var(axis=axis, keepdims=keepdims).data,
                                   np.var(x, axis=axis, keepdims=keepdims, ddof=1), rtol=1e-10)
        np.testing.assert_allclose(t.std(axis=axis, correction=0).data, np.std(x, axis=axis), rtol=1e-10)


@PROPS
@given(sa=shape_and_axis(), data=st.data())
def test_mean_is_sum_over_count_and_var_is_mean_square_deviation(sa, data):
    shape, axis = sa
    x = t64(data.draw(arrays(shape)))
    n = shape[axis]
    np.testing.assert_allclose(x.mean(axis=axis).data, x.sum(axis=axis).data / n, rtol=1e-12, atol=1e-14)
    centred = x - x.mean(axis=axis, keepdims=True)
    np.testing.assert_allclose(x.var(axis=axis, correction=0).data, (centred * centred).mean(axis=axis).data,
                               rtol=1e-10, atol=1e-14)


@PROPS
@given(pair=broadcastable_shapes(), data=st.data())
def test_arithmetic_identities(pair, data):
    sa, sb = pair
    a, b = t64(data.draw(arrays(sa))), t64(data.draw(arrays(sb, "nonzero")))
    np.testing.assert_allclose(((a + b) - b).data, np.broadcast_to(a.data, np.broadcast_shapes(sa, sb)), atol=1e-12)
    np.testing.assert_allclose(((a * b) / b).data, np.broadcast_to(a.data, np.broadcast_shapes(sa, sb)), atol=1e-12)
    np.testing.assert_allclose((a - b).data, (a + (-b)).data, atol=0)
    np.testing.assert_allclose((b ** 2).data, (b * b).data, rtol=1e-15)


@PROPS
@given(shape=shapes(), data=st.data())
def test_unary_identities(shape, data):
    x = t64(data.draw(arrays(shape)))
    p = t64(data.draw(arrays(shape, "positive")))
    np.testing.assert_allclose(x.exp().log().data, x.data, atol=1e-12)
    np.testing.assert_allclose(p.sqrt().square().data, p.data, rtol=1e-12)
    np.testing.assert_allclose(x.sigmoid().data, ((x / 2).tanh().data + 1) / 2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose((x.relu() - (-x).relu()).data, x.data, atol=0)
    np.testing.assert_allclose(abs(x).data, x.maximum(-x).data, atol=0)
    np.testing.assert_allclose(x.clip(-1, 1).data, x.maximum(-1.0).minimum(1.0).data, atol=0)


def test_sigmoid_is_finite_and_saturates_at_extremes():
    x = Tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], requires_grad=True)
    s = x.sigmoid()
    assert np.all(np.isfinite(s.data))
    np.testing.assert_allclose(s.data, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-7)
    s.sum().backward()
    assert np.all(np.isfinite(x.grad.data))


@PROPS
@given(shape=shapes(min_dims=2), data=st.data())
def test_movement_round_trips(shape, data):
    x = t64(data.draw(arrays(shape)))
    nd = len(shape)
    perm = data.draw(st.permutations(range(nd)))
    inverse = tuple(np.argsort(perm))
    np.testing.assert_array_equal(x.permute(perm).permute(inverse).data, x.data)
    np.testing.assert_array_equal(x.transpose(0, -1).transpose(0, -1).data, x.data)
    np.testing.assert_array_equal(x.T.data, x.data.T)
    np.testing.assert_array_equal(x.reshape(-1).reshape(shape).data, x.data)
    axis = data.draw(st.integers(-nd, nd - 1))
    np.testing.assert_array_equal(Tensor.cat(x.split(1, axis=axis), axis=axis).data, x.data)
    np.testing.assert_array_equal(Tensor.stack(list(x), axis=0).data, x.data)
    np.testing.assert_array_equal(x.unsqueeze(axis).squeeze(axis).data, x.data)


@PROPS
@given(shape=shapes(min_dims=1), data=st.data())
def test_chunk_matches_torch_sizes(shape, data):
    x = t64(data.draw(arrays(shape)))
    chunks = data.draw(st.integers(1, 6))
    pieces = x.chunk(chunks)
    per = -(-shape[0] // chunks)
    assert [p.shape[0] for p in pieces] == [min(per, shape[0] - i) for i in range(0, shape[0], per)]


@PROPS
@given(pair=broadcastable_shapes(), data=st.data())
def test_where_and_masked_fill_agree(pair, data):
    sx, sm = pair
    shape = np.broadcast_shapes(sx, sm)
    x = t64(data.draw(arrays(shape)))
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=math.prod(sm), max_size=math.prod(sm))),
                    dtype=bool).reshape(sm)
    np.testing.assert_array_equal(x.masked_fill(mask, -7.0).data, Tensor.where(mask, -7.0, x).data)


def test_softmax_family_over_an_empty_axis():
    x = Tensor(np.zeros((3, 0)), requires_grad=True)
    assert x.softmax(-1).shape == (3, 0) and x.log_softmax(-1).shape == (3, 0)
    np.testing.assert_array_equal(x.logsumexp(axis=-1).data, [-np.inf] * 3)  # log of an empty sum, as torch
    x.softmax(-1).sum().backward()
    assert x.grad.shape == (3, 0)
