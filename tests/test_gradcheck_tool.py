"""gradcheck as a user-facing tool: the per-input report, check_model, and the planted-bug experiment."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_lite import Function, GradcheckError, Tensor, check_model, gradcheck, gradcheck_report
from tinygrad_lite.gradcheck import FAST_ABOVE, jacobians, numeric_jacobian, relative_error
from tinygrad_lite.nn import Module, Parameter

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "gradcheck_experiments.py"


def f64(*shape: int, seed: int = 0, requires_grad: bool = True) -> Tensor:
    return Tensor.randn(*shape, seed=seed, dtype=np.float64, requires_grad=requires_grad)


class DoubledExp(Function):
    """exp with a backward that is wrong by a factor of 2 on one element (flat index 3)."""

    def forward(self, x):
        return np.exp(x)

    def backward(self, g):
        grad = (g * self.output).data.copy()
        grad.reshape(-1)[3] *= 2
        return (grad,)


def load_experiments():
    spec = importlib.util.spec_from_file_location("gradcheck_experiments", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


# ---- gradcheck and its report ----------------------------------------------------------------------
def test_correct_gradients_pass_and_report_every_input():
    a, b, c = f64(3, 4, seed=1), f64(4, 2, seed=2), f64(2, seed=3, requires_grad=False)
    fn = lambda a, b, c: (a @ b + c).tanh()
    assert gradcheck(fn, a, b, c) is True
    report = gradcheck_report(fn, a, b, c)
    assert report.passed
    assert [r.name for r in report.inputs] == ["input 0", "input 1"]  # c does not require grad
    assert [r.shape for r in report.inputs] == [(3, 4), (4, 2)]
    for r in report.inputs:
        assert r.mode == "full" and r.failures == 0 and r.checked == 3 * 2 * r.shape[0] * r.shape[1]
        # round-off ~1e-16 / eps = 1e-10; relative to entries no smaller than atol = 1e-5 that is <= 1e-5
        assert r.max_abs_error < 1e-9 and r.max_rel_error < 1e-4


def test_gradcheck_catches_a_wrong_gradient_and_names_input_element_and_values():
    x, y = f64(2, 3, seed=1), f64(2, 3, seed=2)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x, y: DoubledExp.apply(x) * y, x, y)
    message = str(info.value)
    assert message.startswith("gradcheck failed for input 0 (shape (2, 3)): ")
    assert "output element [1, 0], input element [1, 0]" in message  # flat index 3 of (2, 3)
    expected = np.exp(x.data[1, 0]) * y.data[1, 0]
    assert f"analytic {2 * expected:.6g} vs numeric {expected:.6g}" in message
    assert "max abs error" in message and "max rel error" in message
    report = info.value.report
    assert not report["input 0"].passed and report["input 1"].passed
    assert report["input 0"].failures == 1
    assert report["input 0"].max_rel_error == pytest.approx(0.5, rel=1e-6)  # |2e - e| / max(2e, e)


def test_report_table_lists_inputs_errors_location_and_verdict():
    x = f64(2, 3, seed=1)
    w = f64(2, 3, seed=2)
    report = gradcheck_report(lambda x, w: (DoubledExp.apply(x) * w).sum(), x, w, names=["x", "w"])
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith("gradcheck FAILED")
    x_line = next(line for line in lines if line.startswith("x "))
    w_line = next(line for line in lines if line.startswith("w "))
    assert "[] <- [1, 0]" in x_line and "FAIL (1/6)" in x_line
    assert w_line.rstrip().endswith("ok")
    with pytest.raises(KeyError, match="no input named 'z'"):
        report["z"]


def test_relative_error_is_cs231n_with_a_noise_floor():
    a = np.array([1.0, 2.0, 0.0, 1e-12, -1.0])
    n = np.array([1.0, 1.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(relative_error(a, n), [0.0, 0.5, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(relative_error(a, n, floor=1e-5), [0.0, 0.5, 0.0, 0.0, 2.0])


def test_float32_inputs_are_refused_with_a_clear_message():
    x = Tensor([1.0, 2.0], requires_grad=True)  # float32 by default
    with pytest.raises(TypeError, match="input 0 has dtype float32.*float64"):
        gradcheck(lambda x: x.exp(), x)
    with pytest.raises(TypeError, match="float64"):
        gradcheck_report(lambda x: x.exp(), x)


def test_nothing_to_check_and_bad_names_are_errors():
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda x: x.exp(), f64(3, requires_grad=False))
    with pytest.raises(ValueError, match="2 names for 1 inputs"):
        gradcheck_report(lambda x: x.exp(), f64(3), names=["a", "b"])
    with pytest.raises(TypeError, match="input 0 is a ndarray"):
        gradcheck(lambda x: x, np.ones(3))


def test_fast_mode_checks_projections_and_still_catches_the_bug():
    x, y = f64(3, 4, seed=1), f64(3, 4, seed=2)
    good = gradcheck_report(lambda x, y: x.exp() * y, x, y, fast=True)
    assert good.passed
    assert all(r.mode == "fast" and r.checked == 1 and r.worst is None for r in good.inputs)
    assert "projection" in str(good)
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(3, 4\)\): at random projection"):
        gradcheck(lambda x, y: DoubledExp.apply(x) * y, x, y, fast=True)


def test_fast_none_picks_fast_mode_by_size():
    small, big = f64(4, seed=1), f64(FAST_ABOVE + 1, seed=2)
    report = gradcheck_report(lambda a, b: a.sum() * b.sum(), small, big, fast=None)
    assert [r.mode for r in report.inputs] == ["full", "fast"]


def test_inputs_grad_and_data_are_left_as_they_were():
    x = f64(3)
    x.grad = Tensor(np.full(3, 7.0), dtype=np.float64)
    data = x.data
    gradcheck(lambda x: (x * x).sum(), x)
    assert x.data is data
    np.testing.assert_array_equal(x.grad.data, np.full(3, 7.0))


def test_numeric_jacobian_schemes_and_dtypes():
    x = Tensor([0.3, -0.7], dtype=np.float64, requires_grad=True)
    exact = np.diag(np.exp(x.data))
    central = numeric_jacobian(lambda x: x.exp(), [x], 0, eps=1e-3)
    forward = numeric_jacobian(lambda x: x.exp(), [x], 0, eps=1e-3, scheme="forward")
    # truncation errors: central ≈ f''' eps² / 6, forward ≈ f'' eps / 2
    np.testing.assert_allclose(np.diag(central - exact), np.exp(x.data) * 1e-6 / 6, rtol=1e-2)
    np.testing.assert_allclose(np.diag(forward - exact), np.exp(x.data) * 1e-3 / 2, rtol=1e-2)
    x32 = Tensor([0.3, -0.7], requires_grad=True)
    numeric_jacobian(lambda x: x.exp(), [x32], 0)
    assert x32.dtype == np.float32  # the perturbation stays in the input's dtype
    with pytest.raises(ValueError, match="scheme must be 'central' or 'forward'"):
        numeric_jacobian(lambda x: x.exp(), [x], 0, scheme="backward")


def test_jacobians_pairs_match_for_softmax():
    x = f64(2, 3)
    (analytic, numeric), = jacobians(lambda x: x.softmax(axis=-1), [x])
    assert analytic.shape == numeric.shape == (6, 6)
    np.testing.assert_allclose(analytic, numeric, atol=1e-8)


def test_a_kink_is_reported_at_its_element():
    x = Tensor([-1.0, 0.0, 2.0], dtype=np.float64, requires_grad=True)
    report = gradcheck_report(lambda x: x.relu(), x)
    r = report.inputs[0]
    assert not r.passed and r.worst == (1,) and r.worst_output == (1,)
    assert (r.analytic, r.numeric) == (0.0, pytest.approx(0.5))


# ---- check_model ------------------------------------------------------------------------------------
class TwoLayer(Module):
    def __init__(self, n_in: int, hidden: int, n_out: int, wrong: bool = False):
        super().__init__()
        rng = np.random.default_rng(0)
        self.w1 = Parameter((rng.standard_normal((n_in, hidden)) / np.sqrt(n_in)).astype(np.float32))
        self.b1 = Parameter(np.zeros(hidden, dtype=np.float32))
        self.w2 = Parameter((rng.standard_normal((hidden, n_out)) / np.sqrt(hidden)).astype(np.float32))
        self.wrong = wrong

    def forward(self, x: Tensor) -> Tensor:
        h = x @ self.w1 + self.b1
        h = DoubledExp.apply(h) if self.wrong else h.exp()
        return h @ self.w2


def squared_loss(model: Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def batch(n_in: int = 5, n_out: int = 2) -> tuple[Tensor, Tensor]:
    rng = np.random.default_rng(1)
    return (Tensor(rng.standard_normal((4, n_in)).astype(np.float32)),
            Tensor(rng.standard_normal((4, n_out)).astype(np.float32)))


def test_check_model_passes_a_correct_model_with_one_row_per_parameter():
    model = TwoLayer(5, 3, 2)
    report = check_model(model, squared_loss, batch())
    assert report.passed
    assert [r.name for r in report.inputs] == ["w1", "b1", "w2"]
    assert [r.mode for r in report.inputs] == ["full", "full", "full"]
    assert max(r.max_rel_error for r in report.inputs) < 1e-5


def test_check_model_names_the_parameter_with_the_wrong_gradient():
    model = TwoLayer(5, 4, 2, wrong=True)  # the doubled element sits in hidden unit 3
    report = check_model(model, squared_loss, batch())
    assert not report.passed
    assert not report["w1"].passed and not report["b1"].passed and report["w2"].passed
    assert report["b1"].worst == (3,)
    assert report["w1"].worst[1] == 3


def test_check_model_restores_weights_grads_and_mode_and_works_in_float64():
    model = TwoLayer(5, 3, 2)
    model.train()
    before = {name: p.data for name, p in model.named_parameters()}
    model.w1.grad = Tensor(np.ones((5, 3), dtype=np.float32))
    dtypes = []

    def loss(m, b):
        dtypes.append((m.w1.dtype, b[0].dtype, m.training))
        return squared_loss(m, b)

    check_model(model, loss, batch())
    assert set(dtypes) == {(np.dtype(np.float64), np.dtype(np.float64), False)}
    for name, p in model.named_parameters():
        assert p.data is before[name] and p.dtype == np.float32
    np.testing.assert_array_equal(model.w1.grad.data, 1.0)
    assert model.b1.grad is None and model.training


def test_check_model_uses_fast_mode_for_big_parameters_only():
    model = TwoLayer(100, 3, 2)  # w1 has 300 > FAST_ABOVE elements
    report = check_model(model, squared_loss, batch(100))
    assert {r.name: r.mode for r in report.inputs} == {"w1": "fast", "b1": "full", "w2": "full"}
    assert report.passed
    assert [r.mode for r in check_model(model, squared_loss, batch(100), fast=False).inputs] == ["full"] * 3


def test_check_model_without_parameters_is_an_error():
    class Empty(Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="Empty has no parameters"):
        check_model(Empty(), lambda m, b: m(b).sum(), Tensor([1.0]))


# ---- the planted bug of examples/gradcheck_experiments.py -------------------------------------------
def test_planted_softmax_bug_is_caught_and_located():
    experiments = load_experiments()
    alone, in_loss, probs = experiments.planted_bug_reports()
    largest = tuple(int(i) for i in np.unravel_index(np.argmax(probs), probs.shape))
    r = alone.inputs[0]
    assert not r.passed
    # the missing term is s_k on the diagonal: the worst entry is d s_k / d x_k at the largest probability
    assert r.worst == largest and r.worst_output == largest
    assert r.analytic - r.numeric == pytest.approx(-probs[largest], abs=1e-8)
    assert r.failures == probs.size  # every diagonal entry, nothing off it
    assert not in_loss["logits"].passed and in_loss["weights"].passed


# ---- the second-order experiments of examples/gradcheck_experiments.py ---------------------------------------
def test_the_cross_entropy_hessian_is_diag_p_minus_ppt():
    h, p = load_experiments().cross_entropy_hessian(np.array([0.5, -1.0, 2.0]), target=1)
    np.testing.assert_allclose(h, np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-16)


def test_top_eigenvalue_is_the_largest_not_the_largest_in_magnitude():
    curvatures = np.array([1.0, 5.0, -7.0, 3.0])  # power iteration would return -7
    x = Tensor(np.ones(4), requires_grad=True)
    loss = lambda: (x * x * Tensor(curvatures)).sum() * 0.5  # noqa: E731  Hessian diag(curvatures)
    assert load_experiments().top_eigenvalue(loss, [x], iterations=4) == pytest.approx(5.0, rel=1e-10)


def test_newton_needs_far_fewer_steps_than_gradient_descent_to_the_same_loss():
    rng = np.random.default_rng(0)
    x = np.hstack([np.ones((200, 1)), rng.standard_normal((200, 4))])
    y = (x @ np.array([0.3, 1.0, -2.0, 0.5, 0.0]) + rng.standard_normal(200) > 0).astype(np.float64)
    results = load_experiments().newton_vs_gradient_descent(x, y, ridge=1e-2, tolerance=1e-10)
    newton, descent = results["newton"], results["gradient descent (step 1/L)"]
    assert newton["iterations"] <= 8 < descent["iterations"]
    assert descent["loss"] == pytest.approx(newton["loss"], abs=1e-9)


def test_every_op_of_the_gradgradcheck_table_passes():
    experiments = load_experiments()
    for name, fn, arrays in experiments.gradgrad_cases():
        inputs = [Tensor(a, requires_grad=True) for a in arrays]
        assert experiments.gradgradcheck_report(fn, *inputs).passed, name
