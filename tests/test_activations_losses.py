"""The activations and losses composed of Tensor ops (nn.functional's last section) and their modules:
float64 gradchecks over hypothesis inputs, values and gradients against PyTorch, and the edges where a
careless formula gives inf or NaN (|x| = 100 and 1000, exactly 0, probabilities 0 and 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import arrays, check_grad, shapes
from test_torch_crosscheck import helper_test_op

from tinygrad_lite import Tensor, gradgradcheck, nn
from tinygrad_lite.nn import functional as F

torch = pytest.importorskip("torch", reason="PyTorch not installed: pip install -e '.[torch]'")
tF = torch.nn.functional
FAST = settings(max_examples=25)


def f64(values, requires_grad: bool = True) -> Tensor:
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad, dtype=np.float64)


def probabilities(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """float64 values in [0.05, 0.95]: inside (0, 1) by more than a finite-difference step."""
    return hnp.arrays(np.float64, shape, elements=st.floats(0.05, 0.95, width=64))


def binary_targets(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """Soft targets in [0, 1] (BCE takes any, as PyTorch)."""
    return hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0, width=64))


# ---- gradchecks -----------------------------------------------------------------------------------


@FAST
@given(st.data())
def test_gradcheck_activations(data):
    shape = data.draw(shapes())
    kinked = data.draw(arrays(shape, "nonzero"))  # leaky_relu and elu have a kink at 0
    smooth = data.draw(arrays(shape))
    check_grad(lambda x: F.leaky_relu(x, 0.2), kinked)
    check_grad(lambda x: F.elu(x, 1.5), kinked)
    check_grad(F.silu, smooth)
    check_grad(F.softplus, smooth)
    check_grad(lambda x: F.softplus(x, beta=2.0, threshold=5.0), smooth)


@FAST
@given(st.data())
def test_gradcheck_log1p_and_expm1(data):
    shape = data.draw(shapes())
    check_grad(F._log1p, data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-0.9, 3.0, width=64))))
    check_grad(F._expm1, data.draw(arrays(shape)))


@pytest.mark.parametrize("x", [1e-15, 2.8037e-15, -3e-12, 9e-6, 1e-5, 2e-5, -0.3, 0.3])
def test_log1p_and_expm1_second_derivatives_near_zero(x):
    """Goldberg's and Kahan's quotients alone gave d²/dx² 3% off at x = 1e-15 (hypothesis found it): the
    series covers the tiny inputs."""
    for fn, exact in ((F._log1p, np.log1p), (F._expm1, np.expm1)):
        t = Tensor(np.array(x), requires_grad=True)
        assert gradgradcheck(fn, t)
        np.testing.assert_allclose(fn(Tensor(np.array(x))).item(), exact(x), rtol=4e-16)


@FAST
@given(st.data())
def test_gradcheck_regression_and_binary_losses(data):
    shape = data.draw(shapes())
    target = data.draw(arrays(shape))
    offset = data.draw(arrays(shape, "nonzero"))  # l1 has a kink where input == target
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]))
    check_grad(lambda x: F.l1_loss(x, target, reduction=reduction), target + offset)
    y = data.draw(binary_targets(shape))
    weight = f64(data.draw(hnp.arrays(np.float64, shape[-1:], elements=st.floats(0.1, 2.0, width=64))), False)
    check_grad(lambda p: F.binary_cross_entropy(p, y, weight=weight, reduction=reduction),
               data.draw(probabilities(shape)))
    check_grad(lambda x: F.binary_cross_entropy_with_logits(x, y, weight=weight, pos_weight=weight * 2.0,
                                                            reduction=reduction), data.draw(arrays(shape)))


@FAST
@given(st.data())
def test_gradcheck_nll_loss(data):
    shape = data.draw(shapes(min_dims=1, max_dims=4))
    n_classes = shape[1] if len(shape) > 1 else shape[0]
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    ignore = data.draw(st.sampled_from([-1, -100]))
    classes = st.one_of(st.just(ignore), st.integers(0, n_classes - 1))
    target = data.draw(hnp.arrays(np.int64, target_shape, elements=classes))
    weight = f64(data.draw(hnp.arrays(np.float64, (n_classes,), elements=st.floats(0.1, 2.0, width=64))), False)
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]))
    if reduction == "mean" and np.all(target == ignore):
        target = np.zeros_like(target)  # all ignored: the mean is NaN (tested below)
    check_grad(lambda x: F.nll_loss(x, target, weight=weight, ignore_index=ignore, reduction=reduction),
               data.draw(arrays(shape)))


# ---- the same programs in PyTorch -----------------------------------------------------------------

TARGETS = np.random.default_rng(5).uniform(0, 1, (4, 5))
CLASSES = np.array([2, 0, 4, 1])
CLASSES_3D = np.array([[0, 2, 1], [2, 2, 0]])
WEIGHT = np.array([0.5, 1.0, 2.0, 1.5, 0.25])


def _t(a: np.ndarray):
    return torch.from_numpy(a)


CASES = {
    "leaky_relu": ([(3, 4)], lambda x: F.leaky_relu(x, 0.1), lambda x: tF.leaky_relu(x, 0.1), "distinct"),
    "leaky_relu-default": ([(3, 4)], F.leaky_relu, tF.leaky_relu, "distinct"),
    "silu": ([(3, 4)], F.silu, tF.silu, "any"),
    "elu": ([(3, 4)], lambda x: F.elu(x, 0.7), lambda x: tF.elu(x, 0.7), "distinct"),
    "softplus": ([(3, 4)], F.softplus, tF.softplus, "any"),
    "softplus-beta-threshold": ([(4, 5)], lambda x: F.softplus(3 * x, 2.0, 4.0),
                                lambda x: tF.softplus(3 * x, 2.0, 4.0), "distinct"),
    "l1_loss": ([(4, 5), (4, 5)], F.l1_loss, tF.l1_loss, "distinct"),
    "l1_loss-sum": ([(4, 5), (4, 5)], lambda a, b: F.l1_loss(a, b, reduction="sum"),
                    lambda a, b: tF.l1_loss(a, b, reduction="sum"), "distinct"),
    "nll_loss": ([(4, 5)], lambda x: F.nll_loss(x.log_softmax(axis=1), CLASSES),
                 lambda x: tF.nll_loss(x.log_softmax(dim=1), _t(CLASSES)), "any"),
    "nll_loss-weight-ignore": ([(4, 5)], lambda x: F.nll_loss(x, CLASSES, weight=f64(WEIGHT, False), ignore_index=0),
                               lambda x: tF.nll_loss(x, _t(CLASSES), weight=_t(WEIGHT), ignore_index=0), "any"),
    "nll_loss-3d-none": ([(2, 3, 3)], lambda x: F.nll_loss(x, CLASSES_3D, reduction="none"),
                         lambda x: tF.nll_loss(x, _t(CLASSES_3D), reduction="none"), "any"),
    "nll_loss-1d": ([(5,)], lambda x: F.nll_loss(x, np.array(3)), lambda x: tF.nll_loss(x, torch.tensor(3)), "any"),
    "bce": ([(4, 5)], lambda x: F.binary_cross_entropy(x.sigmoid(), TARGETS),
            lambda x: tF.binary_cross_entropy(x.sigmoid(), _t(TARGETS)), "any"),
    "bce-weight-sum": ([(4, 5)], lambda x: F.binary_cross_entropy(x.sigmoid(), TARGETS, f64(WEIGHT, False), "sum"),
                       lambda x: tF.binary_cross_entropy(x.sigmoid(), _t(TARGETS), _t(WEIGHT), reduction="sum"),
                       "any"),
    "bce_with_logits": ([(4, 5)], lambda x: F.binary_cross_entropy_with_logits(x * 4, TARGETS),
                        lambda x: tF.binary_cross_entropy_with_logits(x * 4, _t(TARGETS)), "any"),
    "bce_with_logits-weights": (
        [(4, 5)],
        lambda x: F.binary_cross_entropy_with_logits(x, TARGETS, f64(WEIGHT, False), "none", f64(WEIGHT[::-1], False)),
        lambda x: tF.binary_cross_entropy_with_logits(x, _t(TARGETS), _t(WEIGHT), reduction="none",
                                                      pos_weight=_t(WEIGHT[::-1].copy())), "any"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_torch(case, seed):
    shapes_, ours, theirs, kind = CASES[case]
    helper_test_op(shapes_, ours, theirs, kind=kind, seed=seed)


EDGES = np.array([-1000.0, -100.0, -30.0, -1e-10, -0.0, 0.0, 1e-10, 1e-300, 19.9, 20.0, 20.5, 30.0, 100.0, 1000.0])


@pytest.mark.parametrize("name, ours, theirs", [
    ("softplus", F.softplus, tF.softplus),
    ("softplus-beta", lambda x: F.softplus(x, beta=0.5, threshold=10.0), lambda x: tF.softplus(x, 0.5, 10.0)),
    ("elu", F.elu, tF.elu),
    ("silu", F.silu, tF.silu),
    ("leaky_relu", F.leaky_relu, tF.leaky_relu),
    ("bce_with_logits", lambda x: F.binary_cross_entropy_with_logits(x, np.full(x.shape, 0.3), reduction="none"),
     lambda x: tF.binary_cross_entropy_with_logits(x, torch.full(x.shape, 0.3, dtype=torch.float64),
                                                   reduction="none")),
])
def test_extreme_and_zero_inputs_match_torch_without_inf_or_nan(name, ours, theirs):
    """Values to float64 round-off relative to torch (incl. 3.7e-44 for softplus(-100)); gradients finite."""
    x = f64(EDGES)
    out = ours(x)
    out.backward(np.ones(out.shape))
    tx = torch.tensor(EDGES, requires_grad=True)
    ref = theirs(tx)
    ref.backward(torch.ones(ref.shape, dtype=torch.float64))
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(x.grad.data)), (out.data, x.grad.data)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12, atol=1e-300)


def test_softplus_gradient_at_zero_is_one_half():
    x = f64([0.0])
    F.softplus(x).sum().backward()
    assert x.grad.data[0] == 0.5


def test_log1p_and_expm1_are_accurate_to_round_off():
    x = np.array([-0.9, -0.4, -1e-5, -1e-12, -1e-17, 0.0, 1e-300, 1e-17, 1e-12, 1e-5, 0.3, 0.49, 0.51, 3.0, 1e10])
    np.testing.assert_allclose(F._log1p(f64(x, False)).data, np.log1p(x), rtol=4e-16, atol=0)
    small = x[np.abs(x) < 700]
    np.testing.assert_allclose(F._expm1(f64(small, False)).data, np.expm1(small), rtol=4e-16, atol=0)
    # the gradients are sums of three rounded terms (the quotient rule through w - 1 or log u): a few ulps
    t = f64(x)
    F._log1p(t).backward(np.ones(len(x)))
    np.testing.assert_allclose(t.grad.data, 1 / (1 + x), rtol=8 * 2.2e-16)
    t = f64(small)
    F._expm1(t).backward(np.ones(len(small)))
    np.testing.assert_allclose(t.grad.data, np.exp(small), rtol=8 * 2.2e-16)


def test_bce_at_probabilities_zero_and_one_is_clamped_like_torch():
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    ours = F.binary_cross_entropy(f64(p), y, reduction="none")
    ref = tF.binary_cross_entropy(torch.tensor(p), torch.tensor(y), reduction="none")
    np.testing.assert_allclose(ours.data, ref.numpy(), rtol=1e-12)  # log(0) counts as -100
    ours.sum().backward()


def test_nll_loss_all_ignored_mean_is_nan_as_torch():
    x = f64(np.zeros((2, 3)))
    loss = F.nll_loss(x, np.array([-100, -100]))
    ref = tF.nll_loss(torch.zeros(2, 3, dtype=torch.float64), torch.tensor([-100, -100]))
    assert math.isnan(loss.item()) and math.isnan(ref.item())


def test_float32_stays_float32():
    x = Tensor(np.linspace(-3, 3, 8, dtype=np.float32), requires_grad=True)
    for fn in (F.leaky_relu, F.silu, F.elu, F.softplus, lambda x: F.l1_loss(x, np.zeros(8)),
               lambda x: F.binary_cross_entropy_with_logits(x, np.ones(8))):
        out = fn(x)
        out.sum().backward()
        assert out.dtype == np.float32 and x.grad.dtype == np.float32


# ---- modules -------------------------------------------------------------------------------------


MODULES = [
    (nn.LeakyReLU(0.3), torch.nn.LeakyReLU(0.3)),
    (nn.SiLU(), torch.nn.SiLU()),
    (nn.ELU(alpha=0.5), torch.nn.ELU(alpha=0.5)),
    (nn.Softplus(beta=2.0, threshold=3.0), torch.nn.Softplus(beta=2.0, threshold=3.0)),
    (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
    (nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1)),
    (nn.Identity(54, unused="x"), torch.nn.Identity(54, unused="x")),
    (nn.Flatten(), torch.nn.Flatten()),
    (nn.Flatten(0, 1), torch.nn.Flatten(0, 1)),
    (nn.Unflatten(1, (2, -1)), torch.nn.Unflatten(1, (2, -1))),
]


@pytest.mark.parametrize("ours, theirs", MODULES, ids=[type(m).__name__ for m, _ in MODULES])
def test_modules_match_torch(ours, theirs):
    helper_test_op([(3, 4, 2)], ours, theirs, kind="distinct")


def test_softmax_without_dim_takes_torchs_implicit_choice_with_a_warning():
    x = np.random.default_rng(0).standard_normal((2, 3))
    with pytest.warns(UserWarning, match="dim=1"):
        ours = nn.Softmax()(f64(x)).data
    with pytest.warns(UserWarning):
        np.testing.assert_allclose(ours, torch.nn.Softmax()(torch.tensor(x)).numpy(), rtol=1e-12)


LOSSES = [
    (nn.MSELoss(), torch.nn.MSELoss(), "float"),
    (nn.MSELoss(reduction="sum"), torch.nn.MSELoss(reduction="sum"), "float"),
    (nn.L1Loss(reduction="none"), torch.nn.L1Loss(reduction="none"), "float"),
    (nn.BCEWithLogitsLoss(pos_weight=f64(WEIGHT, False)),
     torch.nn.BCEWithLogitsLoss(pos_weight=_t(WEIGHT)), "probability"),
    (nn.BCELoss(weight=f64(WEIGHT, False)), torch.nn.BCELoss(weight=_t(WEIGHT)), "probability-input"),
    (nn.NLLLoss(weight=f64(WEIGHT, False), ignore_index=4), torch.nn.NLLLoss(weight=_t(WEIGHT), ignore_index=4),
     "class"),
    (nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), "class"),
    (nn.CrossEntropyLoss(ignore_index=2, reduction="sum"), torch.nn.CrossEntropyLoss(ignore_index=2, reduction="sum"),
     "class"),
]


@pytest.mark.parametrize("ours, theirs, target", LOSSES, ids=[f"{type(m).__name__}-{i}" for i, (m, _, _) in
                                                            enumerate(LOSSES)])
def test_loss_modules_match_torch(ours, theirs, target):
    rng = np.random.default_rng(3)
    targets = {"float": rng.standard_normal((4, 5)), "probability": TARGETS, "probability-input": TARGETS,
               "class": CLASSES}[target]
    squash = (lambda x: x.sigmoid()) if target == "probability-input" else (lambda x: x)
    helper_test_op([(4, 5)], lambda x: ours(squash(x), Tensor(targets, dtype=targets.dtype)),
                   lambda x: theirs(squash(x), torch.from_numpy(targets)))


def test_loss_weights_are_buffers_as_in_torch():
    ours = nn.BCEWithLogitsLoss(weight=f64(WEIGHT, False), pos_weight=f64(WEIGHT, False))
    theirs = torch.nn.BCEWithLogitsLoss(weight=_t(WEIGHT), pos_weight=_t(WEIGHT))
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict()) == ["pos_weight", "weight"]
    assert ours.parameters() == [] and nn.CrossEntropyLoss().state_dict() == {}


def test_cross_entropy_loss_passes_only_the_options_it_was_given():
    assert nn.CrossEntropyLoss()._options() == {"reduction": "mean", "ignore_index": -100}
    w = f64(WEIGHT, False)
    options = nn.CrossEntropyLoss(weight=w, label_smoothing=0.1, reduction="none")._options()
    assert options == {"reduction": "none", "ignore_index": -100, "weight": w, "label_smoothing": 0.1}
