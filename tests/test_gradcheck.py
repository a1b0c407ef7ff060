"""gradcheck as the suite's referee: it passes correct ops and catches the kinds of backward bugs ops really have.

(The report, check_model and the experiments are tested in test_gradcheck_tool.py.)
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from tinygrad_lite import Function, GradcheckError, Tensor, gradcheck


def f64(*shape: int, seed: int = 0) -> Tensor:
    return Tensor.randn(*shape, seed=seed, dtype=np.float64, requires_grad=True)


def test_defaults_are_pytorchs():
    params = inspect.signature(gradcheck).parameters
    assert (params["eps"].default, params["atol"].default, params["rtol"].default) == (1e-6, 1e-5, 1e-3)


class MulForgetsTheSecondInput(Function):
    """a * b whose backward only returns a's gradient: x * x then gets half its gradient."""

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        return g * self.parents[1], None


class ScaledTanh(Function):
    """tanh with its gradient off by a relative `error`."""

    def forward(self, x, error=0.0):
        return np.tanh(x)

    def backward(self, g):
        out = self.output
        return (g * (1 - out ** 2) * (1 + self.params["error"]),)


class SoftmaxWithoutTheCrossTerm(Function):
    """softmax whose backward keeps only the diagonal of the Jacobian (a classic derivation slip)."""

    def forward(self, x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def backward(self, g):
        s = self.output
        return (g * s * (1 - s),)


def test_a_missing_gradient_for_a_reused_input_is_caught():
    x = f64(3, 2)
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(lambda t: MulForgetsTheSecondInput.apply(t, t), x)
    assert gradcheck(lambda t: t * t, x)


def test_a_one_percent_error_is_caught_and_round_off_is_not():
    x = f64(4, 3)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: ScaledTanh.apply(t, error=1e-2), x)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: ScaledTanh.apply(t, error=1e-2), x, fast=True)
    assert gradcheck(lambda t: ScaledTanh.apply(t, error=1e-9), x)
    assert gradcheck(lambda t: ScaledTanh.apply(t), x, fast=True)


def test_a_jacobian_missing_its_off_diagonal_is_caught():
    x = f64(2, 4)
    with pytest.raises(GradcheckError, match="output element"):
        gradcheck(lambda t: SoftmaxWithoutTheCrossTerm.apply(t), x)
    assert gradcheck(lambda t: t.softmax(-1), x)


def test_only_inputs_that_require_grad_are_checked():
    x, c = f64(3), Tensor([1.0, 2.0, 3.0], dtype=np.float64)
    assert gradcheck(lambda a, b: MulForgetsTheSecondInput.apply(a, b), x, c)  # b's missing gradient is unused


def test_float32_is_refused():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t.exp(), Tensor([1.0], requires_grad=True))


def test_a_nan_gradient_fails():
    x = Tensor([-1.0, 4.0], dtype=np.float64, requires_grad=True)
    with pytest.raises(GradcheckError):
        with np.errstate(invalid="ignore"):
            gradcheck(lambda t: t.sqrt(), x)  # sqrt(-1) is NaN: nothing to agree with
