"""nn.init: PyTorch's fans and gains, in-place fills that keep the dtype, and the distributions checked
statistically on large tensors.

Tolerances: for n independent draws of a distribution with standard deviation s, the sample mean has
standard deviation s / sqrt(n) and the sample standard deviation has about s * sqrt((kurtosis - 1) / (4 n))
(kurtosis 3 for a normal, 1.8 for a uniform). The tests allow 6 of those standard deviations, a chance
of about 2e-9 of failing on a correct implementation; with fixed seeds they are deterministic anyway.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn
from tinygrad_lite.nn import init

torch = pytest.importorskip("torch", reason="PyTorch not installed: pip install -e '.[torch]'")

N = 200_000  # elements per statistical check: the 6-sigma band on the mean is 6 / sqrt(N) = 1.3% of s


def assert_moments(values: np.ndarray, mean: float, std: float, kurtosis: float) -> None:
    n = values.size
    assert abs(values.mean() - mean) < 6 * std / math.sqrt(n), (values.mean(), mean)
    assert abs(values.std() - std) < 6 * std * math.sqrt((kurtosis - 1) / (4 * n)), (values.std(), std)


SHAPES = [(3, 5), (7, 2, 3), (4, 6, 2, 5), (2, 3, 1, 1, 4)]


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_torch(shape):
    ours = init._calculate_fan_in_and_fan_out(tl.zeros(*shape))
    assert ours == torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(*shape))


@pytest.mark.parametrize("nonlinearity, param", [
    ("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
    ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None), ("conv_transpose3d", None)])
def test_gains_match_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(nonlinearity, param)


def test_constant_fills_keep_dtype_identity_and_return_the_tensor():
    t = tl.zeros(3, 4, dtype=np.float64)
    array = t.data
    assert init.constant_(t, 0.25) is t and t.data is array and t.dtype == np.float64
    np.testing.assert_array_equal(t.data, 0.25)
    np.testing.assert_array_equal(init.ones_(t).data, 1.0)
    np.testing.assert_array_equal(init.zeros_(t).data, 0.0)
    np.testing.assert_array_equal(init.eye_(tl.zeros(2, 3)).data, torch.nn.init.eye_(torch.zeros(2, 3)).numpy())
    ids = tl.zeros(3, dtype=np.int64)
    assert init.constant_(ids, 7).dtype == np.int64 and ids.tolist() == [7, 7, 7]


def test_parameters_stay_leaves_with_their_grad_flag():
    w = nn.Linear(4, 3, seed=0).weight
    init.normal_(w, generator=0)
    assert w.requires_grad and w.is_leaf and w.dtype == np.float32


def _spread(op, shape, **kwargs) -> np.ndarray:
    return op(tl.zeros(*shape, dtype=np.float64), generator=1, **kwargs).data


def test_uniform_and_normal():
    u = _spread(init.uniform_, (N,), a=-2.0, b=3.0)
    assert -2.0 <= u.min() and u.max() <= 3.0
    assert_moments(u, 0.5, 5 / math.sqrt(12), 1.8)
    assert_moments(_spread(init.normal_, (N,), mean=1.5, std=0.5), 1.5, 0.5, 3.0)


@pytest.mark.parametrize("shape", [(400, 500), (50, 40, 10)])
def test_xavier(shape):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(tl.zeros(*shape))
    std = 0.7 * math.sqrt(2 / (fan_in + fan_out))
    u = _spread(init.xavier_uniform_, shape, gain=0.7)
    assert np.abs(u).max() <= math.sqrt(3) * std
    assert_moments(u, 0.0, std, 1.8)
    assert_moments(_spread(init.xavier_normal_, shape, gain=0.7), 0.0, std, 3.0)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity, a", [("relu", 0), ("leaky_relu", math.sqrt(5)), ("tanh", 0)])
def test_kaiming(mode, nonlinearity, a):
    shape = (500, 200, 2)
    fan = dict(zip(("fan_in", "fan_out"), init._calculate_fan_in_and_fan_out(tl.zeros(*shape))))[mode]
    std = torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    u = _spread(init.kaiming_uniform_, shape, a=a, mode=mode, nonlinearity=nonlinearity)
    assert np.abs(u).max() <= math.sqrt(3) * std
    assert_moments(u, 0.0, std, 1.8)
    assert_moments(_spread(init.kaiming_normal_, shape, a=a, mode=mode, nonlinearity=nonlinearity), 0.0, std, 3.0)


def test_kaiming_uniform_with_sqrt5_is_torchs_linear_default_bound():
    u = _spread(init.kaiming_uniform_, (300, 400), a=math.sqrt(5))
    bound = 1 / math.sqrt(400)
    assert np.abs(u).max() <= bound and np.abs(u).max() > 0.999 * bound


@pytest.mark.parametrize("mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04),
                                             (1.0, 2.0, 2.0, 3.0), (0.0, 1.0, -0.1, 0.1)])
def test_trunc_normal_matches_torchs_distribution(mean, std, a, b):
    """Bounds exact, and the mean and std of torch's own samples of the same truncated normal."""
    ours = _spread(init.trunc_normal_, (N,), mean=mean, std=std, a=a, b=b)
    assert a <= ours.min() and ours.max() <= b
    theirs = torch.nn.init.trunc_normal_(torch.empty(N, dtype=torch.float64), mean, std, a, b,
                                         generator=torch.Generator().manual_seed(0)).numpy()
    spread = theirs.std()
    assert abs(ours.mean() - theirs.mean()) < 6 * math.sqrt(2) * spread / math.sqrt(N)
    assert abs(ours.std() - spread) < 6 * math.sqrt(2) * spread * math.sqrt(2 / (4 * N))


def test_generators_and_the_global_seed_reproduce():
    first = init.normal_(tl.zeros(5), generator=tl.Generator().manual_seed(3)).tolist()
    assert init.normal_(tl.zeros(5), generator=tl.Generator().manual_seed(3)).tolist() == first
    assert init.normal_(tl.zeros(5), generator=3).tolist() == first  # an int seed: np.random.default_rng(3)
    tl.manual_seed(4)
    a = init.uniform_(tl.zeros(5)).tolist()
    tl.manual_seed(4)
    assert init.uniform_(tl.zeros(5)).tolist() == a


def test_model_apply_init_pattern():
    model = nn.Sequential(nn.Linear(3, 4, seed=0), nn.ReLU(), nn.Linear(4, 2, seed=1))

    def init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            init.xavier_uniform_(m.weight, generator=0)
            init.zeros_(m.bias)

    model.apply(init_weights)
    assert all(np.all(m.bias.data == 0) for m in model if isinstance(m, nn.Linear))
    assert model[0].weight.data.std() > 0
