"""The compiled loops (tinygrad_lite.kernels, kernels.c) against the numpy formulas they replace.

Layer norm, the tanh GELU, batch norm and the convolution's input gradient (col2im): against the numpy ops in
float32 and float64, to round-off (the C library's vector tanh, sums added in another order, batch norm's in
double); tests/test_fused.py holds the compiled ops to their reference in float64 (values, gradients, second
derivatives) beside the numpy ops. Adam and AdamW, max pooling and dropout's masks: the same numbers to the bit,
float32 and float64. And the switch itself. Skipped where the loops do not
compile (no C compiler); CI has one.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import tinygrad_lite.nn.functional as F
from tinygrad_lite import Tensor, kernels, nn, optim, perf
from tinygrad_lite.nn.compiled import (
    CompiledBatchNormalization,
    CompiledGELUFunction,
    CompiledLayerNormFunction,
    CompiledMaxPooling,
)
from tinygrad_lite.nn.conv import BatchNormalization, MaxPooling
from tinygrad_lite.nn.functional import LayerNormFunction
from tinygrad_lite.ops.elementwise import GELUFunction

pytestmark = pytest.mark.skipif(not kernels.available(), reason="the kernels did not compile (no C compiler)")


def _value_and_grads(fn, inputs: list[np.ndarray], upstream: np.ndarray) -> list[np.ndarray]:
    leaves = [Tensor(a, requires_grad=True) for a in inputs]
    out = fn(*leaves)
    out.backward(upstream)
    return [out.data] + [t.grad.data for t in leaves]


@pytest.mark.parametrize("shape", [(3, 1000), (2, 5, 64), (7,), ()])
def test_compiled_gelu_is_the_numpy_gelu_in_float32(shape):
    rng = np.random.default_rng(0)
    x, g = (rng.standard_normal(shape).astype(np.float32) * 3 for _ in range(2))
    ours = _value_and_grads(lambda t: CompiledGELUFunction.apply(t, approximate="tanh"), [x], g)
    numpy = _value_and_grads(lambda t: GELUFunction.apply(t, approximate="tanh"), [x], g)
    for a, b in zip(ours, numpy):  # tanh to a few units in the last place: GELU's output and slope to ~1e-6
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6 * max(np.abs(b).max(), 1))


@pytest.mark.parametrize("rows", [1200, 100])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_layer_norm_is_the_numpy_layer_norm(dtype, layout, rows, two_threads):
    """Output and the three gradients; 1,200 rows of 48 split over both threads (forward and backward, the parts'
    column sums added up), 100 rows on one."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((rows, 48)) * 5 + 3).astype(dtype)
    if layout == "transposed":
        x = np.ascontiguousarray(x.T).T
    w, b = rng.standard_normal(48).astype(dtype), rng.standard_normal(48).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    ours, jobs = _team_jobs_during(lambda: _value_and_grads(
        lambda *t: CompiledLayerNormFunction.apply(*t, ndim=1, eps=1e-5), [x, w, b], g))
    numpy = _value_and_grads(lambda *t: LayerNormFunction.apply(*t, ndim=1, eps=1e-5), [x, w, b], g)
    assert jobs == (2 if rows == 1200 else 0)
    tolerance = 2e-5 if dtype == np.float32 else 1e-12
    for a, b_ in zip(ours, numpy):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b_, rtol=tolerance, atol=10 * tolerance * np.abs(b_).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,layout", [((40, 24, 6, 5), "channels-last"), ((40, 24, 6, 5), "contiguous"),
                                          ((300, 7), "contiguous"), ((30, 5, 11), "contiguous")])
def test_compiled_batch_norm_is_the_numpy_batch_norm(shape, layout, dtype, two_threads, monkeypatch):
    """Output, the three gradients and the running statistics; the first case's 7,200 rows split over both
    threads (the parts' sums added up), the others on one."""
    from tinygrad_lite.nn import conv

    monkeypatch.setattr(conv, "_MIN_WORK_PER_THREAD", 100_000)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 4 + 3).astype(dtype)
    if layout == "channels-last":
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1)).transpose(0, 3, 1, 2)
    c = shape[1]
    w, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    results = []
    for fn in (CompiledBatchNormalization, BatchNormalization):
        stats = dict(running_mean=np.zeros(c, dtype), running_var=np.ones(c, dtype))
        batch_norm = functools.partial(fn.apply, eps=1e-5, momentum=0.1, **stats)
        results.append(_value_and_grads(batch_norm, [x, w, b], g) + list(stats.values()))
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for ours, numpy in zip(*results):
        assert ours.dtype == dtype and ours.shape == numpy.shape
        np.testing.assert_allclose(ours, numpy, rtol=tolerance, atol=tolerance * np.abs(numpy).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", [dict(), dict(stride=2, padding=1), dict(padding=2, dilation=2),
                                      dict(groups=2, stride=(1, 2))])
def test_compiled_convolution_input_gradient_is_numpys(geometry, dtype, two_threads, monkeypatch):
    """col2im of the compiled loops (a product per few images, each window added back) against numpy's, one
    kernel offset at a time; 12 images, in products of 5 for the first geometry (the last one short), split
    over both threads."""
    from tinygrad_lite.nn import conv

    monkeypatch.setattr(conv, "_CACHED_NUMBERS", 5 * 36 * 8 * 9)  # 5 images of 6 x 6 windows of 8 x 3 x 3
    monkeypatch.setattr(conv, "_MIN_WORK_PER_THREAD", 1000)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((12, 8, 8, 8)).astype(dtype)
    w = rng.standard_normal((6, 8 // geometry.get("groups", 1), 3, 3)).astype(dtype)
    upstream = rng.standard_normal(F.conv2d(Tensor(x), Tensor(w), **geometry).shape).astype(dtype)
    results = []
    for flag in (True, False):
        with kernels.use_compiled(flag):
            results.append(_value_and_grads(lambda a, b: F.conv2d(a, b, **geometry), [x, w], upstream))
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for ours, numpy in zip(*results):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, numpy, rtol=tolerance, atol=tolerance * np.abs(numpy).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_layer_norm_recomputes_xhat_to_the_bit(dtype):
    """Backward rebuilds xhat = (x - mean) rstd from the kept mean and rstd: the forward's own xhat (without
    weight and bias the output is xhat, as multiplying by 1 and adding 0 are exact)."""
    x = (np.random.default_rng(2).standard_normal((50, 37)) * 4 + 2).astype(dtype)
    t = Tensor(x, requires_grad=True)
    out = CompiledLayerNormFunction.apply(t, ndim=1, eps=1e-5)
    ctx = out.grad_fn
    np.testing.assert_array_equal((x - ctx.mean) * ctx.rstd, out.data)


def test_the_modules_and_functions_use_the_compiled_ops_while_enabled():
    x = Tensor(np.ones((2, 4), dtype=np.float32) * np.arange(4, dtype=np.float32), requires_grad=True)
    with kernels.use_compiled(True):
        assert isinstance(nn.LayerNorm(4)(x).grad_fn, CompiledLayerNormFunction)
        assert isinstance(nn.GELU(approximate="tanh")(x).grad_fn, CompiledGELUFunction)
        assert type(F.gelu(x).grad_fn) is GELUFunction  # the exact form has no kernel
        assert isinstance(nn.MaxPool2d(2)(x.reshape(1, 1, 2, 4)).grad_fn, CompiledMaxPooling)
        assert isinstance(nn.BatchNorm1d(4)(x).grad_fn, CompiledBatchNormalization)
    with kernels.use_compiled(False):
        assert type(F.layer_norm(x, 4).grad_fn) is LayerNormFunction
        assert type(F.gelu(x, approximate="tanh").grad_fn) is GELUFunction
        assert type(F.max_pool2d(x.reshape(1, 1, 2, 4), 2).grad_fn) is MaxPooling
        assert type(nn.BatchNorm1d(4)(x).grad_fn) is BatchNormalization


@pytest.mark.parametrize("dtype", [np.float16, np.int64])
def test_compiled_ops_leave_other_dtypes_to_the_numpy_code(dtype):
    x = np.arange(12).reshape(3, 4).astype(dtype)
    with kernels.use_compiled(True):
        if dtype == np.float16:
            out = F.layer_norm(Tensor(x), 4)
            expected = LayerNormFunction.apply(Tensor(x), ndim=1, eps=1e-5)
            assert out.dtype == np.float16 and np.array_equal(out.data, expected.data)
        else:
            assert F.gelu(Tensor(x), approximate="tanh").dtype == np.float32  # cast first, as x.gelu() does


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channels last", "a slice"])
@pytest.mark.parametrize("geometry", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                      dict(kernel_size=3, stride=1),  # windows overlap: sums
                                      dict(kernel_size=3, stride=1, padding=1),
                                      dict(kernel_size=(2, 3), stride=(1, 2), dilation=2),
                                      dict(kernel_size=2, stride=3, padding=1, ceil_mode=True)],
                         ids=["2", "3-2-1-ceil", "3-1", "3-1-1", "2x3-dilated", "2-3-1-ceil"])
def test_compiled_max_pool_is_the_numpy_max_pool_to_the_bit(geometry, layout, dtype, two_threads):
    """Maxima, which input each came from (ties: the first; a NaN wins, the last of its window; padding never)
    and the gradients, over batches big enough to be shared among the cores. The loops take channels-last
    inputs whose windows lie inside them; the other cases check that they are handed to numpy's code."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((24, 5, 13, 11)).astype(dtype)
    x[:, :, 4:8, 4:8] = np.round(x[:, :, 4:8, 4:8])  # ties
    x[0, 0, 0, :3], x[1, 2, 5, :], x[2, 1, 6, :] = np.nan, np.inf, -np.inf
    x[3, 3, 2, 2] = x[3, 3, 2, 3] = np.nan
    if layout == "channels last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    elif layout == "a slice":
        x = np.concatenate([x, x], axis=3)[:, :, :, ::2]
    results, upstream = [], None
    for flag in (True, False):
        with kernels.use_compiled(flag):
            t = Tensor(x, requires_grad=True)
            out, indices = F.max_pool2d(t, return_indices=True, **geometry)
            upstream = rng.standard_normal(out.shape).astype(dtype) if upstream is None else upstream
            out.backward(Tensor(upstream))
            results.append((out.data, indices.data, t.grad.data))
    assert np.isnan(results[0][0]).any() and np.isinf(results[0][0]).any()
    for ours, numpy in zip(*results):
        assert ours.dtype == numpy.dtype and np.array_equal(ours, numpy, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (7,), (3, 1000), (4, 300, 300)])
def test_compiled_dropout_mask_is_the_numpy_formulas_to_the_bit(shape, dtype, two_threads):
    """The largest mask split over both threads, the others made on one."""
    from tinygrad_lite.nn.attention import dropout_mask

    for p in (0.1, 0.5, 1 / 3):
        compiled, jobs = _team_jobs_during(functools.partial(dropout_mask, shape, p, np.random.default_rng(4), dtype))
        assert jobs == (1 if len(shape) == 3 else 0)
        with kernels.use_compiled(False):
            numpy = dropout_mask(shape, p, np.random.default_rng(4), dtype)
        assert compiled.dtype == numpy.dtype == dtype and compiled.shape == shape
        assert np.array_equal(compiled, numpy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "0-d"])
def test_compiled_dropout_is_the_numpy_dropout_to_the_bit(layout, dtype, two_threads):
    """F.dropout's output and gradient, made in one pass each from the seed, are x * mask and g * mask of the numpy
    formulas, to the bit (infinities and NaN included: x * 0 is NaN either way); 90,000 numbers split over both
    threads each way, no mask kept from forward to backward."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal(() if layout == "0-d" else (300, 300)).astype(dtype)
    if layout != "0-d":
        x[0, :3] = [np.inf, -np.inf, np.nan]
    if layout == "transposed":
        x = np.ascontiguousarray(x.T).T
    g = rng.standard_normal(x.shape).astype(dtype)
    results = []
    for flag in (True, False):
        with kernels.use_compiled(flag):
            (out, grad), jobs = _team_jobs_during(lambda: _value_and_grads(
                lambda a: F.dropout(a, 0.3, rng=np.random.default_rng(7)), [x], g))
            assert jobs == (2 if flag and layout != "0-d" else 0)
            results.append((out, grad))
    kept = vars(F.dropout(Tensor(x, requires_grad=True), 0.3, rng=1).grad_fn)
    assert not any(isinstance(v, np.ndarray) for v in kept.values())
    mask = F.dropout_mask(x.shape, 0.3, np.random.default_rng(7), dtype)
    for (out, grad), expected in zip(results, [(x * mask, g * mask)] * 2):
        assert out.dtype == grad.dtype == dtype
        assert np.array_equal(out, expected[0], equal_nan=True) and np.array_equal(grad, expected[1])


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5, 0.9])
def test_dropout_masks_drop_p_of_the_elements_independently_and_keep_the_expectation(p):
    """Over 360,000 elements: the share dropped is p within 5 standard deviations,
    also among the neighbours of dropped elements (no correlation from one index to the next), the mean
    multiplier is 1 within 5 of its standard deviations, and masks from one generator differ."""
    from tinygrad_lite.nn.attention import dropout_mask

    rng = np.random.default_rng(5)
    mask = dropout_mask((600, 600), p, rng, np.float64).reshape(-1)
    n, dropped = mask.size, mask == 0
    assert abs(dropped.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)
    after_dropped = dropped[1:][dropped[:-1]]
    assert abs(after_dropped.mean() - p) < 5 * np.sqrt(p * (1 - p) / after_dropped.size)
    np.testing.assert_allclose(mask[~dropped], 1 / (1 - p))
    assert abs(mask.mean() - 1) < 5 * np.sqrt(p / (1 - p) / n)
    assert not np.array_equal(mask, dropout_mask((600, 600), p, rng, np.float64).reshape(-1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [lambda ps: optim.AdamW(ps, lr=0.01, betas=(0.9, 0.95), weight_decay=0.1),
                                  lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.01),
                                  lambda ps: optim.Adam(ps, lr=0.003)], ids=["adamw", "adam-l2", "adam"])
def test_compiled_adam_is_the_numpy_adam_to_the_bit(make, dtype, two_threads):
    """Every parameter in one call, its elements end to end split over both threads (the boundary inside the
    large one); a Fortran-ordered parameter and one without a gradient take numpy's code or none."""
    results = []
    for flag in (False, True):
        rng = np.random.default_rng(0)
        params = [Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
                  for shape in ((17, 5), (5,), (), (257, 130), (3,))]
        params.append(Tensor(np.asfortranarray(rng.standard_normal((4, 6)).astype(dtype)), requires_grad=True))
        opt = make(params)
        jobs = 0
        with kernels.use_compiled(flag):
            for _ in range(6):
                for p in params[:-2] + params[-1:]:
                    p.grad = Tensor(rng.standard_normal(p.shape).astype(dtype))
                jobs += _team_jobs_during(opt.step)[1]
        assert jobs == (6 if flag else 0)
        results.append([p.data.copy() for p in params] + [s["exp_avg_sq"] for s in opt.state.values()])
    for a, b in zip(*results):
        assert a.dtype == dtype and np.array_equal(a, b)


def test_use_compiled_restores_the_setting_and_refuses_without_the_loops(monkeypatch):
    before = kernels.enabled()
    with kernels.use_compiled(False):
        assert not kernels.enabled()
        with kernels.use_compiled(True):
            assert kernels.enabled()
        assert not kernels.enabled()
    assert kernels.enabled() == before
    monkeypatch.setattr(kernels, "_library", None)  # as if they did not compile
    assert not kernels.available() and not kernels.enabled()
    with pytest.raises(RuntimeError, match="use_compiled: the kernels did not compile"), kernels.use_compiled(True):
        pass


def test_without_a_working_compiler_the_loops_are_simply_not_there(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYGRAD_LITE_CACHE", str(tmp_path))  # nothing cached there
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    assert kernels._build() is None
    assert list(tmp_path.iterdir()) == []  # and it left nothing half-written behind


def test_the_library_is_built_once_into_the_cache_and_loaded_from_it(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYGRAD_LITE_CACHE", str(tmp_path))
    functions = kernels._build()
    assert functions is not None and {"adam_f32", "layer_norm_f64", "gelu_tanh_backward_f32"} <= set(functions)
    (built,) = tmp_path.iterdir()
    stamp = built.stat().st_mtime_ns
    compiles = []
    monkeypatch.setattr(kernels, "_compile", lambda *args: compiles.append(args))
    assert kernels._build() is not None  # as a second process: it loads the library, compiling nothing
    assert compiles == [] and list(tmp_path.iterdir()) == [built] and built.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("part", [(...,), (..., slice(10, 40), slice(0, 40)), (0,), (0, 0), (0, 0, 5)],
                         ids=["whole", "block", "3-d", "2-d", "1-d"])
def test_compiled_softmax_rows_is_numpys(dtype, part):
    """The attention's in-place softmax: whole arrays and blocks of them, masked (-inf) entries, a row that
    attends to nothing (all -inf: zeros) and one with +inf (NaN, as numpy gives)."""
    from tinygrad_lite.nn.attention import _softmax_rows_

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 4, 50, 50)) * 5).astype(dtype)
    x[..., np.triu_indices(50, 1)[0], np.triu_indices(50, 1)[1]] = -np.inf
    x[0, 0, 3], x[1, 2, 7, 4] = -np.inf, np.inf
    ours, numpy = x.copy(), x.copy()
    _softmax_rows_(ours[part])
    with kernels.use_compiled(False), np.errstate(invalid="ignore"):  # the +inf row: inf / inf
        _softmax_rows_(numpy[part])
    np.testing.assert_allclose(ours, numpy, rtol=4e-6 if dtype == np.float32 else 1e-13, atol=1e-7)
    assert kernels.softmax_rows_(ours[part]) == (ours[part].ndim >= 2)  # 1-d rows go to numpy's code


# ---- the team (team.c): products, attention, splitting ------------------------------------------------------------

def _team_jobs_during(fn):
    before = kernels.team_jobs()
    result = fn()
    return result, kernels.team_jobs() - before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(700, 90, 300), (120, 300, 900), (1, 768, 3000), (5, 3, 2), (2048, 17, 33)])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
def test_team_products_are_numpys_products(m, k, n, layout, dtype, two_threads):
    """Split along c's rows or columns (the larger), each part one BLAS call on one thread: numpy's numbers,
    for C-ordered operands, transposed views and row-strided blocks of larger arrays, with and without a bias."""
    rng = np.random.default_rng(5)
    a, b, bias = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype), \
        rng.standard_normal(n).astype(dtype)
    if layout == "transposed":
        a, b = np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T
    elif layout == "strided":
        a, b = np.pad(a, ((0, 0), (0, 7)))[:, :k], np.pad(b, ((0, 0), (2, 5)))[:, 2:n + 2]
    with perf.blas_threads(1):
        (out,), jobs = _team_jobs_during(lambda: kernels.matmuls([(a, b, None)], 2))
        (with_bias,) = kernels.matmuls([(a, b, bias)], 2)
        expected = a @ b
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance * np.abs(expected).max())
    np.testing.assert_allclose(with_bias, expected + bias, rtol=tolerance, atol=tolerance * np.abs(expected).max())
    assert out.dtype == dtype and out.flags.c_contiguous
    assert jobs == (1 if m * n * k >= 2 * kernels._PRODUCT_MIN_WORK else 0)  # small products stay on one thread


def test_team_products_run_several_at_once_and_refuse_what_blas_cannot_read(two_threads):
    rng = np.random.default_rng(6)
    g, w, x = rng.standard_normal((300, 40)), rng.standard_normal((40, 50)), rng.standard_normal((300, 50))
    (dx, dw), jobs = _team_jobs_during(lambda: kernels.matmuls([(g, w, None), (g.T, x, None)], 2))
    np.testing.assert_allclose(dx, g @ w, rtol=1e-12)
    np.testing.assert_allclose(dw, g.T @ x, rtol=1e-12)
    assert jobs == 1  # one job, a product per thread
    assert kernels.matmuls([(g[:, ::2], w[::2], None)], 2) is None  # columns two apart: numpy's code runs
    assert kernels.matmuls([(g.astype(np.float32), w, None)], 2) is None  # mixed dtypes
    assert kernels.matmuls([(g.astype(np.int64), w.astype(np.int64), None)], 2) is None


def test_linear_and_matmul_through_the_team_match_finite_differences(two_threads):
    from tinygrad_lite.gradcheck import gradcheck

    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((300, 120)), requires_grad=True)
    w = Tensor(rng.standard_normal((130, 120)), requires_grad=True)
    b = Tensor(rng.standard_normal(130), requires_grad=True)
    assert 300 * 120 * 130 >= 2 * kernels._PRODUCT_MIN_WORK
    assert perf.product_policy() == "engine" or kernels.team_jobs() == 0
    with perf.using_products("engine"):
        upstream = Tensor(rng.standard_normal((300, 130)))  # (a sum's gradient, all one number, is numpy's)
        _, jobs = _team_jobs_during(lambda: F.linear(x, w, b).backward(upstream))
        assert jobs >= 2  # the forward, and the backward's gradients
        assert gradcheck(lambda x, w, b: F.linear(x, w, b), x, w, b, fast=True)
        assert gradcheck(lambda x, w: x @ w.T, x, w, fast=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["causal", "longer keys", "causal, longer keys", "dropout", "3-d", "2-d",
                                  "transposed heads"])
def test_compiled_attention_is_numpys_attention(case, dtype, two_threads):
    """Values and the three gradients of the compiled loops (head pairs split over the team) against numpy's code,
    over layouts: (B, H, T, hs), fewer leading axes, keys longer than the queries (a KV cache), dropout's
    multipliers, and q, k, v as transposed views of one (B, T, H, hs) array, as the GPT makes them."""
    rng = np.random.default_rng(7)
    t, s = (40, 70) if "longer" in case else (70, 70)
    lead = {"3-d": (6,), "2-d": ()}.get(case, (3, 4))
    causal, p = "causal" in case or case == "transposed heads", 0.3 if case == "dropout" else 0.0
    if case == "transposed heads":
        qkv = rng.standard_normal((3, 3, t, 4, 16)).astype(dtype)
        q, k, v = (qkv[i].transpose(0, 2, 1, 3) for i in range(3))
    else:
        q = rng.standard_normal(lead + (t, 16)).astype(dtype)
        k, v = rng.standard_normal(lead + (s, 16)).astype(dtype), rng.standard_normal(lead + (s, 24)).astype(dtype)
    g = rng.standard_normal(q.shape[:-1] + v.shape[-1:]).astype(dtype)

    def run():
        leaves = [Tensor(a, requires_grad=True) for a in (q, k, v)]
        out = F.scaled_dot_product_attention(*leaves, is_causal=causal, dropout_p=p, rng=3)
        out.backward(Tensor(g))
        return [out.data] + [x.grad.data for x in leaves]

    ours, jobs = _team_jobs_during(run)
    with kernels.use_compiled(False):
        numpy = run()
    assert jobs >= 2 or not lead  # forward and backward split over the head pairs
    tolerance = 2e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(ours, numpy):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance * np.abs(b).max())


def test_compiled_gelu_is_the_same_split_or_not(two_threads):
    """One element's tanh does not depend on the part it falls in: the split GELU is the one-thread GELU, to the bit."""
    x = np.random.default_rng(8).standard_normal(300_001).astype(np.float32) * 4
    g = np.ones_like(x)
    split, jobs = _team_jobs_during(lambda: _value_and_grads(lambda t: CompiledGELUFunction.apply(
        t, approximate="tanh"), [x], g))
    perf.set_num_threads(1)
    whole, none = _team_jobs_during(lambda: _value_and_grads(lambda t: CompiledGELUFunction.apply(
        t, approximate="tanh"), [x], g))
    assert jobs == 2 and none == 0
    for a, b in zip(split, whole):
        np.testing.assert_array_equal(a, b)


def test_the_team_serves_threads_at_once_and_a_forked_child(two_threads):
    """Two Python threads calling the loops at once (one job at a time: the other runs its parts itself), and a
    child forked after the parent's workers started, which starts its own."""
    import multiprocessing
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(9)
    pairs = [(rng.standard_normal((400, 300)), rng.standard_normal((300, 200))) for _ in range(8)]
    with perf.blas_threads(1), ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda ab: kernels.matmuls([(*ab, None)], 2)[0], pairs))
    for (a, b), out in zip(pairs, outs):
        np.testing.assert_allclose(out, a @ b, rtol=1e-12)
    assert kernels.team_jobs() > 0  # the parent's workers are running
    with multiprocessing.get_context("fork").Pool(1) as children:
        assert children.apply_async(_team_product_in_child).get(timeout=60)


def _team_product_in_child() -> bool:
    a = np.arange(600 * 400, dtype=np.float64).reshape(600, 400) / 1e5
    with perf.blas_threads(1):
        (out,), jobs = _team_jobs_during(lambda: kernels.matmuls([(a, a.T, None)], 2))
    return jobs == 1 and np.allclose(out, a @ a.T, rtol=1e-12)
