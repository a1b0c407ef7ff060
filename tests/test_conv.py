"""Convolutions, pooling, padding and batch norm: float64 gradient checks over shapes, strides, paddings, dilations
and groups; each fused op against its reference made of Tensor ops; every op and module against PyTorch; errors."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_lite.nn.functional as F
from tinygrad_lite import Tensor, gradcheck, nn, no_grad
from tinygrad_lite.nn import conv

RTOL, ATOL = 1e-10, 1e-12  # float64: the fused ops and the references differ by rounding only


def _torch():
    return pytest.importorskip("torch", reason="PyTorch not installed: the cross-check against it is skipped")


def leaf(rng: np.random.Generator, *shape: int, distinct: bool = False) -> Tensor:
    """A float64 tensor that requires grad; `distinct`: values pairwise 0.1 apart (no ties for max pooling)."""
    if distinct:
        n = math.prod(shape)
        return Tensor((rng.permutation(n) * 0.1 - n * 0.05).reshape(shape), requires_grad=True, dtype=np.float64)
    return Tensor(rng.standard_normal(shape), requires_grad=True, dtype=np.float64)


def values_and_grads(fn, inputs: list[Tensor], upstream: np.ndarray) -> list[np.ndarray]:
    for t in inputs:
        t.grad = None
    out = fn(*inputs)
    out.backward(upstream)
    return [out.data] + [np.zeros(t.shape) if t.grad is None else t.grad.data for t in inputs]


def assert_matches_reference(fused, reference, inputs: list[Tensor], seed: int = 0) -> None:
    """The fused op and its reference agree in values and in gradients for one random upstream gradient."""
    with no_grad():
        shape = fused(*inputs).shape
    upstream = np.random.default_rng(seed).standard_normal(shape)
    for got, want in zip(values_and_grads(fused, inputs, upstream), values_and_grads(reference, inputs, upstream)):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def reference_of(out: Tensor, reference):
    """`reference` run on the inputs and parameters the fused op recorded in `out`'s node."""
    node = out._ctx
    return lambda *inputs: reference(*inputs, **node.params)


# ---- convolution --------------------------------------------------------------------------------------------


@st.composite
def conv_cases(draw: st.DrawFn, spatial: int) -> dict:
    """A small convolution: groups, channels, kernel, stride, padding (int, tuple, 'same', 'valid'), dilation,
    and input sizes from the smallest the kernel allows to three more."""
    ints = lambda lo, hi: st.tuples(*[st.integers(lo, hi)] * spatial)  # noqa: E731
    groups = draw(st.sampled_from([1, 2]))
    kernel, dilation = draw(ints(1, 3)), draw(ints(1, 2))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2), ints(0, 2)))
    stride = (1,) * spatial if padding == "same" else draw(ints(1, 3))
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    elif padding == "valid":
        totals = [0] * spatial
    else:
        totals = [2 * p for p in ((padding,) * spatial if isinstance(padding, int) else padding)]
    smallest = [max(1, d * (k - 1) + 1 - t) for k, d, t in zip(kernel, dilation, totals)]
    return dict(batch=draw(st.integers(1, 2)), in_channels=groups * draw(st.integers(1, 2)),
                out_channels=groups * draw(st.integers(1, 2)), groups=groups, kernel=kernel, dilation=dilation,
                padding=padding, stride=stride, sizes=tuple(draw(st.integers(s, s + 3)) for s in smallest),
                bias=draw(st.booleans()))


def conv_inputs(case: dict, rng: np.random.Generator) -> list[Tensor]:
    x = leaf(rng, case["batch"], case["in_channels"], *case["sizes"])
    w = leaf(rng, case["out_channels"], case["in_channels"] // case["groups"], *case["kernel"])
    return [x, w] + ([leaf(rng, case["out_channels"])] if case["bias"] else [])


def conv_fn(case: dict, spatial: int):
    op = F.conv2d if spatial == 2 else F.conv1d
    return lambda x, w, b=None: op(x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"])


@settings(max_examples=30)
@given(st.sampled_from([1, 2]).flatmap(lambda n: st.tuples(st.just(n), conv_cases(n))), st.integers(0, 2**31 - 1))
def test_conv_gradcheck(spatial_and_case, seed):
    spatial, case = spatial_and_case
    assert gradcheck(conv_fn(case, spatial), *conv_inputs(case, np.random.default_rng(seed)))


@settings(max_examples=30)
@given(st.sampled_from([1, 2]).flatmap(lambda n: st.tuples(st.just(n), conv_cases(n))), st.integers(0, 2**31 - 1))
def test_conv_matches_reference(spatial_and_case, seed):
    spatial, case = spatial_and_case
    inputs = conv_inputs(case, np.random.default_rng(seed))
    fused = conv_fn(case, spatial)
    assert_matches_reference(fused, reference_of(fused(*inputs), conv.convolution_reference), inputs, seed)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv_against_torch():
    torch = _torch()
    rng = np.random.default_rng(0)
    for stride, padding, dilation, groups in [(1, 0, 1, 1), (2, 1, 1, 2), (1, "same", 2, 1), (1, "same", 1, 2),
                                              (2, (2, 0), 2, 2), (3, "valid", 1, 1), (1, 2, (2, 1), 1)]:
        for spatial, ours, theirs in ((2, F.conv2d, torch.nn.functional.conv2d),
                                      (1, F.conv1d, torch.nn.functional.conv1d)):
            pad, dil = (p[:1] if isinstance(p, tuple) and spatial == 1 else p for p in (padding, dilation))
            x, w, b = leaf(rng, 2, 4, *(7, 8)[:spatial]), leaf(rng, 6, 4 // groups, *(3, 2)[:spatial]), leaf(rng, 6)
            torch_cross_check(ours, theirs, [x, w, b], stride=stride, padding=pad, dilation=dil, groups=groups)


def torch_cross_check(ours, theirs, inputs: list[Tensor], **kwargs) -> None:
    """Values and gradients of `ours(*inputs, **kwargs)` and of `theirs` on torch copies of the inputs, float64."""
    torch = _torch()
    copies = [None if t is None else torch.tensor(t.data, requires_grad=t.requires_grad) for t in inputs]
    out, ref = ours(*inputs, **kwargs), theirs(*copies, **kwargs)
    assert out.shape == tuple(ref.shape)
    tol = {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(out.data, ref.detach().numpy(), **tol)
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(upstream)
    ref.backward(torch.from_numpy(upstream))
    for t, c in zip(inputs, copies):
        if t is not None and t.requires_grad:
            np.testing.assert_allclose(t.grad.data, c.grad.numpy(), **tol)


def test_conv_unbatched_input_and_float32():
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((3, 9, 9)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    out = F.conv2d(x, w, padding=1)
    batched = F.conv2d(x.unsqueeze(0), w, padding=1)
    assert out.shape == (4, 9, 9) and out.dtype == np.float32
    np.testing.assert_allclose(out.data, batched.data[0], rtol=1e-6)
    out.sum().backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32
    assert F.conv1d(x[:, 0], w[:, :, 0], padding="same").shape == (4, 9)


def test_conv_split_across_two_threads_matches_one(two_threads):
    """A convolution big enough to share its batch between the cores gives what one core gives."""
    from tinygrad_lite import perf

    rng = np.random.default_rng(2)
    x, w, b = leaf(rng, 4, 16, 20, 20), leaf(rng, 32, 16, 3, 3), leaf(rng, 32)
    upstream = rng.standard_normal((4, 32, 18, 18))
    fn = lambda x, w, b: F.conv2d(x, w, b)  # noqa: E731
    both = values_and_grads(fn, [x, w, b], upstream)
    perf.set_num_threads(1)
    for got, want in zip(both, values_and_grads(fn, [x, w, b], upstream)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-10)


def test_pooling_and_batch_norm_split_across_two_threads_match_one(two_threads):
    """Inputs big enough for the pooling and batch norm kernels to share the batch between two cores."""
    from tinygrad_lite import perf

    rng = np.random.default_rng(12)
    x, w, b = leaf(rng, 8, 16, 32, 32), leaf(rng, 16), leaf(rng, 16)
    channels_last = Tensor(np.ascontiguousarray(x.data.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
                           requires_grad=True, dtype=np.float64)
    cases = [(lambda x: F.max_pool2d(x, 2), [x]), (lambda x: F.max_pool2d(x, 3, 2, 1), [channels_last]),
             (lambda x: F.avg_pool2d(x, 3, 1, 1), [x]),
             (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [channels_last, w, b])]
    for fn, inputs in cases:
        with no_grad():
            upstream = rng.standard_normal(fn(*inputs).shape)
        perf.set_num_threads(2)
        both = values_and_grads(fn, inputs, upstream)
        perf.set_num_threads(1)
        for got, want in zip(both, values_and_grads(fn, inputs, upstream)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_conv_output_is_channels_last_and_the_next_conv_reads_it():
    rng = np.random.default_rng(3)
    x, w1, w2 = leaf(rng, 2, 3, 10, 10), leaf(rng, 5, 3, 3, 3), leaf(rng, 4, 5, 3, 3)
    hidden = F.conv2d(x, w1)
    assert hidden.data.transpose(0, 2, 3, 1).flags.c_contiguous
    assert_matches_reference(lambda x, w1, w2: F.conv2d(F.conv2d(x, w1).relu(), w2, stride=2),
                             lambda x, w1, w2: conv.convolution_reference(conv.convolution_reference(x, w1).relu(), w2,
                                                                          stride=(2, 2)), [x, w1, w2])


# ---- unfold -------------------------------------------------------------------------------------------------

unfold_cases = st.fixed_dictionaries(dict(
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)), dilation=st.integers(1, 2),
    padding=st.integers(0, 1), stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    shape=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(5, 6), st.integers(5, 6))))


def unfold_fn(case: dict):
    return lambda x: F.unfold(x, case["kernel"], case["dilation"], case["padding"], case["stride"])


@settings(max_examples=25)
@given(unfold_cases, st.integers(0, 2**31 - 1))
def test_unfold_gradcheck_and_reference(case, seed):
    x = leaf(np.random.default_rng(seed), *case["shape"])
    assert gradcheck(unfold_fn(case), x)
    assert_matches_reference(unfold_fn(case), reference_of(unfold_fn(case)(x), conv.im2col_reference), [x], seed)


def test_unfold_against_torch():
    torch = _torch()
    rng = np.random.default_rng(4)
    for kernel, dilation, padding, stride in [((2, 3), 1, 0, 1), (3, 2, 1, 2), ((1, 2), (2, 1), (1, 0), (2, 1))]:
        torch_cross_check(F.unfold, torch.nn.functional.unfold, [leaf(rng, 2, 3, 7, 8)], kernel_size=kernel,
                          dilation=dilation, padding=padding, stride=stride)
    assert F.unfold(leaf(rng, 3, 5, 5), 2).shape == (12, 16)  # unbatched, as torch


# ---- pooling ------------------------------------------------------------------------------------------------

pool_cases = st.fixed_dictionaries(dict(
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)), stride=st.one_of(st.none(), st.integers(1, 3)),
    padding=st.integers(0, 1), dilation=st.integers(1, 2), ceil_mode=st.booleans(),
    shape=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(5, 6), st.integers(5, 6))))  # >= a dilated kernel


def max_pool_fn(case: dict):
    padding = min(case["padding"], min(case["kernel"]) // 2)
    return lambda x: F.max_pool2d(x, case["kernel"], case["stride"], padding, case["dilation"], case["ceil_mode"])


@settings(max_examples=25)
@given(pool_cases, st.integers(0, 2**31 - 1))
def test_max_pool_gradcheck_and_reference(case, seed):
    x = leaf(np.random.default_rng(seed), *case["shape"], distinct=True)
    fn = max_pool_fn(case)
    assert gradcheck(fn, x)
    assert_matches_reference(fn, reference_of(fn(x), conv.max_pooling_reference), [x], seed)


def avg_pool_fn(case: dict, count_include_pad: bool, divisor_override: int | None):
    padding = min(case["padding"], min(case["kernel"]) // 2)
    return lambda x: F.avg_pool2d(x, case["kernel"], case["stride"], padding, case["ceil_mode"], count_include_pad,
                                  divisor_override)


@settings(max_examples=25)
@given(pool_cases, st.booleans(), st.sampled_from([None, 3]), st.integers(0, 2**31 - 1))
def test_avg_pool_gradcheck_and_reference(case, count_include_pad, divisor_override, seed):
    x = leaf(np.random.default_rng(seed), *case["shape"])
    fn = avg_pool_fn(case, count_include_pad, divisor_override)
    assert gradcheck(fn, x)
    assert_matches_reference(fn, reference_of(fn(x), conv.avg_pooling_reference), [x], seed)


# (kernel_size, stride, padding, dilation, ceil_mode) of the torch cross-checks: each feature, alone and together
POOL_SETTINGS = [(2, None, 0, 1, False), (2, None, 1, 1, True), (3, 1, 1, 1, False), (3, 2, 1, 2, True),
                 ((3, 2), (1, 2), 1, 1, True), (3, 2, 0, 2, False), (2, 1, 0, 2, True),
                 ((2, 3), None, 0, (2, 1), False), (3, 3, 1, 1, True), (3, 2, (1, 0), 1, True)]


def test_max_pool_against_torch_including_ties_and_indices():
    torch = _torch()
    tF = torch.nn.functional
    rng = np.random.default_rng(5)
    tied = np.floor(rng.uniform(0, 3, (2, 3, 7, 8)))  # many equal values: the first maximum takes the gradient
    for kernel, stride, padding, dilation, ceil_mode in POOL_SETTINGS:
        for data in (tied, rng.standard_normal((2, 3, 7, 8))):
            x = Tensor(data, requires_grad=True, dtype=np.float64)
            torch_cross_check(F.max_pool2d, tF.max_pool2d, [x], kernel_size=kernel, stride=stride, padding=padding,
                              dilation=dilation, ceil_mode=ceil_mode)
            _, indices = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
            _, expected = tF.max_pool2d(torch.tensor(data), kernel, stride, padding, dilation, ceil_mode,
                                        return_indices=True)
            np.testing.assert_array_equal(indices.data, expected.numpy())


def test_max_pool_nan_and_minus_inf_as_torch():
    torch = _torch()
    data = np.array([[[[1.0, np.nan, 3.0, np.nan], [-np.inf, -np.inf, 0.0, 2.0], [5.0, 4.0, -np.inf, -np.inf],
                       [1.0, 5.0, -np.inf, -np.inf]]]])
    for padding in (0, 1):
        x = Tensor(data, requires_grad=True, dtype=np.float64)
        out, indices = F.max_pool2d(x, 2, padding=padding, return_indices=True)
        t = torch.tensor(data, requires_grad=True)
        tout, tindices = torch.nn.functional.max_pool2d(t, 2, padding=padding, return_indices=True)
        np.testing.assert_array_equal(out.data, tout.detach().numpy())
        np.testing.assert_array_equal(indices.data, tindices.numpy())
        out.sum().backward()
        tout.sum().backward()
        np.testing.assert_array_equal(x.grad.data, t.grad.numpy())


def test_avg_pool_against_torch():
    torch = _torch()
    rng = np.random.default_rng(6)
    for kernel, stride, padding, _, ceil_mode in POOL_SETTINGS:
        for count_include_pad, divisor_override in itertools.product([True, False], [None, 5]):
            torch_cross_check(F.avg_pool2d, torch.nn.functional.avg_pool2d, [leaf(rng, 2, 3, 7, 8)],
                              kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                              count_include_pad=count_include_pad, divisor_override=divisor_override)


@settings(max_examples=25)
@given(st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 7), st.integers(1, 7)),
       st.tuples(st.one_of(st.none(), st.integers(1, 5)), st.one_of(st.none(), st.integers(1, 5))),
       st.integers(0, 2**31 - 1))
def test_adaptive_avg_pool_gradcheck_and_torch(shape, output_size, seed):
    x = leaf(np.random.default_rng(seed), *shape)
    assert gradcheck(lambda x: F.adaptive_avg_pool2d(x, output_size), x)
    torch = _torch()
    torch_cross_check(F.adaptive_avg_pool2d, torch.nn.functional.adaptive_avg_pool2d, [x], output_size=output_size)


def test_pool_unbatched_and_float32():
    x = Tensor(np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6), requires_grad=True)
    for out in (F.max_pool2d(x, 2), F.avg_pool2d(x, 3, 1, 1), F.adaptive_avg_pool2d(x, (2, 3))):
        assert out.ndim == 3 and out.dtype == np.float32
    out, indices = F.max_pool2d(x, 2, return_indices=True)
    assert indices.shape == (2, 3, 3) and indices.dtype == np.int64 and indices.data[0, 0, 0] == 7
    out.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.data.sum() == 18


# ---- padding ------------------------------------------------------------------------------------------------


@settings(max_examples=40)
@given(st.sampled_from(["constant", "reflect", "replicate", "circular"]), st.integers(1, 2),
       st.lists(st.integers(-1, 3), min_size=2, max_size=6).filter(lambda p: len(p) % 2 == 0),
       st.integers(0, 2**31 - 1))
def test_pad_gradcheck_and_torch(mode, lead, pads, seed):
    torch = _torch()
    axes = len(pads) // 2
    shape = (2, 1)[:lead] + (4, 3, 4)[:axes]  # torch's non-constant modes pad 1-3 axes behind one or two more
    if mode != "constant":
        pads = [min(p, 1) for p in pads]  # reflect needs pads < the axis size (2 after a crop of 3)
    x = leaf(np.random.default_rng(seed), *shape)
    value = None if mode != "constant" else 0.5
    assert gradcheck(lambda x: F.pad(x, pads, mode, value), x)
    torch_cross_check(F.pad, torch.nn.functional.pad, [x], pad=pads, mode=mode, value=value)


# ---- batch norm ---------------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(st.sampled_from([(5, 3), (3, 2, 4), (2, 3, 3, 2)]), st.booleans(), st.integers(0, 2**31 - 1))
def test_batch_norm_training_gradcheck_and_reference(shape, affine, seed):
    rng = np.random.default_rng(seed)
    x = leaf(rng, *shape)
    params = [leaf(rng, shape[1]), leaf(rng, shape[1])] if affine else []
    fn = lambda x, *wb: F.batch_norm(x, None, None, *wb, training=True)  # noqa: E731
    assert gradcheck(fn, x, *params)
    assert_matches_reference(fn, reference_of(fn(x, *params), conv.batch_normalization_reference), [x, *params],
                             seed)


def test_batch_norm_eval_gradcheck():
    rng = np.random.default_rng(7)
    running_mean, running_var = Tensor(rng.standard_normal(3), dtype=np.float64), \
        Tensor(rng.uniform(0.5, 2, 3), dtype=np.float64)
    x, w, b = leaf(rng, 4, 3, 2), leaf(rng, 3), leaf(rng, 3)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, running_mean, running_var, w, b), x, w, b)


def test_batch_norm_functional_against_torch_with_running_stats():
    torch = _torch()
    rng = np.random.default_rng(8)
    for shape in [(5, 3), (4, 3, 6), (4, 3, 5, 6)]:
        mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
        ours_stats = [Tensor(mean.copy(), dtype=np.float64), Tensor(var.copy(), dtype=np.float64)]
        their_stats = [torch.tensor(mean.copy()), torch.tensor(var.copy())]
        for training, affine in itertools.product([True, False], [True, False]):
            x, w, b = leaf(rng, *shape), leaf(rng, 3), leaf(rng, 3)
            inputs = [x, w, b] if affine else [x]
            def ours(x, *wb, stats=ours_stats, training=training):
                return F.batch_norm(x, *stats, *wb, training=training, momentum=0.3)

            def theirs(x, *wb, stats=their_stats, training=training):
                return torch.nn.functional.batch_norm(x, *stats, *wb, training=training, momentum=0.3)

            torch_cross_check(ours, theirs, inputs)
            for ours, theirs in zip(ours_stats, their_stats):
                np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12)
        x, b = leaf(rng, *shape), leaf(rng, 3)  # a bias without a weight
        torch_cross_check(F.batch_norm, torch.nn.functional.batch_norm, [x, None, None, None, b], training=True)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("layer,shape", [("BatchNorm1d", (6, 4)), ("BatchNorm1d", (5, 4, 3)),
                                         ("BatchNorm2d", (4, 4, 3, 5))])
def test_batch_norm_modules_against_torch_in_train_and_eval(layer, shape, momentum):
    torch = _torch()
    ours, theirs = getattr(nn, layer)(4, momentum=momentum), getattr(torch.nn, layer)(4, momentum=momentum)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == ["weight", "bias"]
    rng = np.random.default_rng(9)
    for p in ours.parameters():
        p.data = rng.standard_normal(p.shape).astype(np.float32)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    for step in range(4):
        if step == 3:
            ours.eval()
            theirs.eval()
        x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
        out, ref = ours(Tensor(x)), theirs(torch.from_numpy(x))
        np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-4, atol=1e-5)
        for name, value in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    assert int(ours.num_batches_tracked.data) == 3


def test_batch_norm_without_affine_or_running_stats():
    x = Tensor(np.random.default_rng(10).standard_normal((8, 3, 2, 2)).astype(np.float32))
    plain = nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    assert plain.parameters() == [] and plain.state_dict() == {}
    plain.eval()  # without running statistics, eval mode still normalises with the batch's
    out = plain(x).data
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-4)


# ---- modules ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("spatial,padding", [(2, 1), (2, "same"), (2, (2, 1)), (1, 2), (1, "same")])
def test_conv_modules_against_torch(spatial, padding, padding_mode):
    torch = _torch()
    name = f"Conv{spatial}d"
    kernel = (3, 4)[:spatial] if padding == "same" else 3  # an even kernel: 'same' pads one more after
    ours = getattr(nn, name)(4, 6, kernel, padding=padding, groups=2, padding_mode=padding_mode, seed=0)
    theirs = getattr(torch.nn, name)(4, 6, kernel, padding=padding, groups=2, padding_mode=padding_mode)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(11).standard_normal((2, 4, 7, 6)[:spatial + 2]).astype(np.float32)
    out, ref = ours(Tensor(x)), theirs(torch.from_numpy(x))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    out.sum().backward()
    ref.sum().backward()
    for p, (_, q) in zip(ours.parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_conv_init_is_pytorch_default_and_seeded():
    layer = nn.Conv2d(16, 32, 5, groups=2, seed=0)
    bound = 1 / math.sqrt(8 * 25)  # fan_in = in_channels / groups * kH * kW
    assert layer.weight.shape == (32, 8, 5, 5) and layer.bias.shape == (32,) and layer.weight.dtype == np.float32
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert layer.weight.data.var() == pytest.approx(bound**2 / 3, rel=0.05)
    np.testing.assert_array_equal(nn.Conv2d(16, 32, 5, groups=2, seed=0).weight.data, layer.weight.data)
    assert nn.Conv1d(3, 4, 2, bias=False).bias is None
    assert repr(nn.Conv2d(1, 20, 5)) == "Conv2d(1, 20, kernel_size=(5, 5), stride=(1, 1))"


def test_pool_modules_against_torch():
    torch = _torch()
    x = np.random.default_rng(12).standard_normal((2, 3, 7, 9)).astype(np.float32)
    cases = [(nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
             (nn.AvgPool2d(2, count_include_pad=False, padding=1), torch.nn.AvgPool2d(2, count_include_pad=False,
                                                                                     padding=1)),
             (nn.AdaptiveAvgPool2d((3, None)), torch.nn.AdaptiveAvgPool2d((3, None)))]
    for ours, theirs in cases:
        np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).numpy(), rtol=1e-6, atol=1e-6)
        assert ours.parameters() == []
    out, indices = nn.MaxPool2d(2, return_indices=True)(Tensor(x))
    np.testing.assert_array_equal(indices.data, torch.nn.MaxPool2d(2, return_indices=True)(torch.from_numpy(x))[1])


# ---- errors -------------------------------------------------------------------------------------------------


def f32(*shape: int) -> Tensor:
    return Tensor(np.ones(shape, dtype=np.float32), requires_grad=True)


ERRORS = {
    "conv rank": (lambda: F.conv2d(f32(28, 28), f32(4, 1, 3, 3)), ValueError,
                  ["conv2d", r"3-D \(C, H, W\) or 4-D \(N, C, H, W\)", r"\(28, 28\)"]),
    "conv weight rank": (lambda: F.conv2d(f32(1, 1, 8, 8), f32(4, 3, 3)), ValueError,
                         ["conv2d", "weight must be 4-D", r"\(4, 3, 3\)"]),
    "channel mismatch": (lambda: F.conv2d(f32(2, 3, 8, 8), f32(4, 1, 3, 3)), ValueError,
                         ["conv2d", r"\(2, 3, 8, 8\) has 3 channels", r"\(4, 1, 3, 3\)", "expects 1"]),
    "grouped channel mismatch": (lambda: F.conv1d(f32(2, 4, 8), f32(6, 4, 3), groups=2), ValueError,
                                 ["conv1d", "has 4 channels", "groups=2 expects 8"]),
    "groups divide out_channels": (lambda: F.conv2d(f32(1, 4, 8, 8), f32(5, 2, 3, 3), groups=2), ValueError,
                                   ["conv2d", "out_channels 5", "divisible by groups 2"]),
    "bad groups": (lambda: F.conv2d(f32(1, 4, 8, 8), f32(4, 4, 3, 3), groups=0), ValueError,
                   ["conv2d", "groups must be a positive int, got 0"]),
    "kernel larger than padded input": (lambda: F.conv2d(f32(1, 1, 4, 4), f32(2, 1, 5, 5), padding=0), ValueError,
                                        ["conv2d", r"kernel of size \(5, 5\)", r"padded input of size \(4, 4\)",
                                         r"\(1, 1, 4, 4\)"]),
    "dilated kernel too large": (lambda: F.conv1d(f32(1, 1, 6), f32(1, 1, 3), dilation=3), ValueError,
                                 ["conv1d", r"dilation \(3,\): \(7,\)", r"padded input of size \(6,\)"]),
    "bad stride": (lambda: F.conv2d(f32(1, 1, 8, 8), f32(2, 1, 3, 3), stride=0), ValueError,
                   ["conv2d", "stride must be positive, got 0"]),
    "bad stride type": (lambda: F.conv2d(f32(1, 1, 8, 8), f32(2, 1, 3, 3), stride=1.5), TypeError,
                        ["conv2d", "stride must be an int or a tuple of 2 ints, got 1.5"]),
    "negative padding": (lambda: F.conv2d(f32(1, 1, 8, 8), f32(2, 1, 3, 3), padding=-1), ValueError,
                         ["conv2d", "padding must be >= 0, got -1"]),
    "bad padding string": (lambda: F.conv2d(f32(1, 1, 8, 8), f32(2, 1, 3, 3), padding="full"), ValueError,
                           ["conv2d", "'same' or 'valid', got 'full'"]),
    "same with stride": (lambda: F.conv2d(f32(1, 1, 8, 8), f32(2, 1, 3, 3), stride=2, padding="same"),
                         ValueError, ["conv2d", "padding='same' needs stride 1", "stride"]),
    "bad dilation": (lambda: F.conv2d(f32(1, 1, 8, 8), f32(2, 1, 3, 3), dilation=(1, 0)), ValueError,
                     ["conv2d", r"dilation must be positive, got \(1, 0\)"]),
    "bias shape": (lambda: F.conv2d(f32(1, 1, 8, 8), f32(2, 1, 3, 3), f32(3)), ValueError,
                   ["conv2d", r"bias must have shape \(2,\)", r"\(3,\)"]),
    "dtype mismatch": (lambda: F.conv2d(Tensor(np.ones((1, 1, 4, 4)), dtype=np.float64), f32(1, 1, 3, 3)),
                       TypeError, ["conv2d", "input of dtype float64 and weight of dtype float32"]),
    "integer input": (lambda: F.conv2d(Tensor(np.ones((1, 1, 4, 4), dtype=np.int64)), f32(1, 1, 3, 3)),
                      TypeError, ["conv2d", "input must be floating-point", "int64"]),
    "array input": (lambda: F.max_pool2d(np.ones((1, 1, 4, 4)), 2), TypeError,
                    ["max_pool2d", "input must be a Tensor, got ndarray"]),
    "module channels": (lambda: nn.Conv2d(3, 8, 3)(f32(2, 1, 28, 28)), ValueError,
                        ["conv2d", r"\(2, 1, 28, 28\) has 1 channels", "expects 3"]),
    "module groups": (lambda: nn.Conv2d(3, 8, 3, groups=2), ValueError,
                      ["Conv2d", "in_channels 3 and out_channels 8", "divisible by groups 2"]),
    "module padding mode": (lambda: nn.Conv2d(3, 8, 3, padding_mode="mirror"), ValueError,
                            ["Conv2d", "padding_mode must be one of", "'mirror'"]),
    "module same with stride": (lambda: nn.Conv1d(3, 8, 3, stride=2, padding="same"), ValueError,
                                ["Conv1d", "padding='same' needs stride 1"]),
    "module kernel size": (lambda: nn.Conv2d(3, 8, (3, 0)), ValueError,
                           ["Conv2d", r"kernel_size must be positive, got \(3, 0\)"]),
    "module channels zero": (lambda: nn.Conv2d(0, 8, 3), ValueError, ["Conv2d", "in_channels must be a positive int"]),
    "pool rank": (lambda: F.max_pool2d(f32(4, 4), 2), ValueError,
                  ["max_pool2d", r"3-D \(C, H, W\) or 4-D", r"\(4, 4\)"]),
    "pool padding": (lambda: F.max_pool2d(f32(1, 1, 8, 8), 3, padding=2), ValueError,
                     ["max_pool2d", r"padding \(2, 2\) must be at most half of kernel_size \(3, 3\)"]),
    "pool kernel too large": (lambda: F.avg_pool2d(f32(1, 1, 3, 3), 4), ValueError,
                              ["avg_pool2d", r"\(1, 1, 3, 3\) is too small for kernel_size \(4, 4\)"]),
    "pool stride": (lambda: F.max_pool2d(f32(1, 1, 8, 8), 2, stride=-1), ValueError,
                    ["max_pool2d", "stride must be positive, got -1"]),
    "pool module stride": (lambda: nn.AvgPool2d(2, stride=0)(f32(1, 1, 8, 8)), ValueError,
                           ["avg_pool2d", "stride must be positive, got 0"]),
    "divisor override": (lambda: F.avg_pool2d(f32(1, 1, 8, 8), 2, divisor_override=0), ValueError,
                         ["avg_pool2d", "divisor_override must be a non-zero int, got 0"]),
    "adaptive output size": (lambda: F.adaptive_avg_pool2d(f32(1, 1, 8, 8), (0, 2)), ValueError,
                             ["adaptive_avg_pool2d", r"output_size must be a positive int", r"\(0, 2\)"]),
    "unfold kernel too large": (lambda: F.unfold(f32(1, 1, 3, 3), 4, padding=0), ValueError,
                                ["unfold", r"kernel of size \(4, 4\)", r"padded input of size \(3, 3\)"]),
    "pad odd length": (lambda: F.pad(f32(2, 3), (1, 2, 3)), TypeError, ["pad", "even number of ints", r"\(1, 2, 3\)"]),
    "pad too many axes": (lambda: F.pad(f32(3), (1, 1, 1, 1)), ValueError,
                          ["pad", r"pads 2 axes", r"\(3,\) has only 1"]),
    "pad mode": (lambda: F.pad(f32(1, 2, 3), (1, 1), mode="wrap"), ValueError, ["pad", "mode must be one of", "wrap"]),
    "reflect too wide": (lambda: F.pad(f32(1, 2, 3), (3, 0), mode="reflect"), ValueError,
                         ["pad", "mode 'reflect' needs padding smaller than", r"\(3, 0\)", "size 3"]),
    "circular too wide": (lambda: F.pad(f32(1, 2, 3), (0, 4), mode="circular"), ValueError,
                          ["pad", "mode 'circular' needs padding at most", "size 3"]),
    "reflect value": (lambda: F.pad(f32(1, 2, 3), (1, 1), mode="reflect", value=1.0), ValueError,
                      ["pad", "mode 'reflect' takes no value"]),
    "reflect rank": (lambda: F.pad(f32(3), (1, 1), mode="replicate"), ValueError,
                     ["pad", "mode 'replicate' pads the last 1, 2 or 3 axes", r"\(3,\)"]),
    "crop to nothing": (lambda: F.pad(f32(1, 3), (-2, -1)), ValueError, ["pad", r"\(-2, -1\) crops axis 1"]),
    "batch norm channels": (lambda: nn.BatchNorm2d(16)(f32(2, 3, 4, 4)), ValueError,
                            ["BatchNorm2d\\(16\\)", "expected 16 channels", r"\(2, 3, 4, 4\)"]),
    "batch norm rank": (lambda: nn.BatchNorm1d(3)(f32(2, 3, 4, 4)), ValueError,
                        ["BatchNorm1d\\(3\\)", r"2-D \(N, C\) or 3-D \(N, C, L\)", r"\(2, 3, 4, 4\)"]),
    "batch norm one value": (lambda: nn.BatchNorm1d(3)(f32(1, 3)), ValueError,
                             ["batch_norm", "more than one value per channel", r"\(1, 3\)"]),
    "batch norm stats shape": (lambda: F.batch_norm(f32(2, 3), f32(4), f32(4)), ValueError,
                               ["batch_norm", r"running_mean must be a Tensor of shape \(3,\)", r"\(4,\)"]),
    "batch norm eval without stats": (lambda: F.batch_norm(f32(2, 3), None, None), ValueError,
                                      ["batch_norm", "training=False", "needs running_mean"]),
}


@pytest.mark.parametrize("case", ERRORS)
def test_clear_errors(case):
    call, error, fragments = ERRORS[case]
    with pytest.raises(error) as info:
        call()
    for fragment in fragments:
        assert re.search(fragment, str(info.value)), f"{fragment!r} not in {str(info.value)!r}"
