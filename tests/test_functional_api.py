"""grad, value_and_grad and jacobian: against known derivatives and against gradcheck's finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import arrays, shapes

from tinygrad_lite import Tensor, grad, jacobian, no_grad, value_and_grad
from tinygrad_lite.gradcheck import numeric_jacobian
from tinygrad_lite.nn import Parameter


def test_grad_of_known_functions():
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(grad(lambda x: (x * x).sum())(x), 2 * x)
    np.testing.assert_allclose(grad(lambda x: x.exp().sum())(x), np.exp(x))
    np.testing.assert_allclose(grad(lambda x: x.tanh().sum())(x), 1 - np.tanh(x) ** 2)
    np.testing.assert_allclose(grad(lambda x: x.logsumexp())(x), np.exp(x) / np.exp(x).sum())


def test_grad_argnums_and_value_and_grad():
    a, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -1.0])
    f = lambda a, b: ((a @ b) ** 2).sum()
    ga = grad(f)(a, b)
    ga2, gb = grad(f, argnums=(0, 1))(a, b)
    r = a @ b
    np.testing.assert_allclose(ga, 2 * np.outer(r, b))
    np.testing.assert_allclose(ga2, ga)
    np.testing.assert_allclose(gb, 2 * a.T @ r)
    np.testing.assert_allclose(grad(f, argnums=-1)(a, b), gb)
    value, g = value_and_grad(f, argnums=1)(a, b)
    assert isinstance(value, np.ndarray) and value == pytest.approx((r**2).sum())
    np.testing.assert_allclose(g, gb)


def test_dtypes_follow_the_arguments():
    assert grad(lambda x: (x * x).sum())(np.ones(3)).dtype == np.float64
    assert grad(lambda x: (x * x).sum())(np.ones(3, dtype=np.float32)).dtype == np.float32
    assert grad(lambda x: (x * x).sum())(Tensor(np.ones(3), dtype=np.float64)).dtype == np.float64
    assert grad(lambda x: x * x)(3.0) == pytest.approx(6.0)  # a number follows Tensor's float32 default
    assert grad(lambda x: x * x)(3.0).dtype == np.float32
    assert grad(lambda x: x * x)(np.float64(3.0)).dtype == np.float64


def test_unused_argument_gets_zeros_and_constants_pass_through():
    f = lambda x, y, scale: (x * scale).sum()
    gx, gy = grad(f, argnums=(0, 1))(np.ones(2), np.ones(3), 2.0)
    np.testing.assert_array_equal(gx, [2.0, 2.0])
    np.testing.assert_array_equal(gy, np.zeros(3))


def test_no_side_effects_on_tensors_or_captured_weights():
    x = Tensor([1.0, 2.0], requires_grad=True)
    w = Parameter(np.array([3.0, 4.0]))
    np.testing.assert_allclose(grad(lambda x: (x * w).sum())(x), [3.0, 4.0])
    assert x.grad is None and w.grad is None


def test_works_inside_no_grad():
    with no_grad():
        np.testing.assert_allclose(grad(lambda x: (x * x).sum())(np.array([1.0, 3.0])), [2.0, 6.0])


def test_errors_are_clear():
    with pytest.raises(ValueError, match=r"one-element Tensor, got shape \(2,\).*jacobian"):
        grad(lambda x: x * 2)(np.ones(2))
    with pytest.raises(TypeError, match="argument 0 has dtype int64"):
        grad(lambda x: x.sum())(np.arange(3))
    with pytest.raises(ValueError, match="argnums 2 is out of range for a call with 2"):
        grad(lambda x, y: x.sum(), argnums=2)(np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="value_and_grad: the function must return a one-element"):
        value_and_grad(lambda x: x * 2)(np.ones(2))
    with pytest.raises(ValueError, match="repeated argument"):
        grad(lambda x, y: x.sum(), argnums=(0, -2))(np.ones(2), np.ones(2))
    with pytest.raises(TypeError, match="must return a Tensor, got float"):
        grad(lambda x: 1.0)(np.ones(2))


def test_jacobian_of_known_functions():
    x = np.array([0.2, -0.4, 1.0])
    np.testing.assert_allclose(jacobian(lambda x: x.exp())(x), np.diag(np.exp(x)))
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(jacobian(lambda a, x: a @ x, argnums=1)(a, x), a)
    s = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(jacobian(lambda x: x.softmax())(x), np.diag(s) - np.outer(s, s), atol=1e-15)
    j = jacobian(lambda m: m * 2)(np.ones((2, 3)))
    assert j.shape == (2, 3, 2, 3)
    np.testing.assert_array_equal(j.reshape(6, 6), 2 * np.eye(6))
    ja, jx = jacobian(lambda a, x: a @ x, argnums=(0, 1))(a, x)
    assert ja.shape == (2, 2, 3) and jx.shape == (2, 3)


@given(st.data())
def test_jacobian_and_grad_match_finite_differences(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_size=12))
    x = data.draw(arrays(shape))
    w = data.draw(arrays(shape))
    f = lambda x, w: (x.tanh() * w).softmax(axis=-1)
    numeric = numeric_jacobian(f, [Tensor(x, dtype=np.float64, requires_grad=True), Tensor(w, dtype=np.float64)], 0)
    np.testing.assert_allclose(jacobian(f)(x, w).reshape(numeric.shape), numeric, atol=1e-7)
    loss = lambda x, w: (f(x, w) * w).sum()
    numeric_grad = numeric_jacobian(loss, [Tensor(x, dtype=np.float64, requires_grad=True),
                                           Tensor(w, dtype=np.float64)], 0).reshape(shape)
    np.testing.assert_allclose(grad(loss)(x, w), numeric_grad, atol=1e-7)
