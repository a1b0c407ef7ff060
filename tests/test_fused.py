"""Every fused op against its `reference` (the same maths from primitive ops): values and gradients in float64,
and second derivatives (create_graph differentiates the reference), over hypothesis inputs.

The fused ops: linear, layer norm, dropout, cross-entropy (indices, probabilities, weights, label smoothing, ignored
targets), GELU (exact and tanh), attention (tests/test_attention.py holds it to its twin too), and the
convolution, pooling, unfold and batch-norm kernels of nn/conv.py (tests/test_conv.py checks them against torch).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import arrays, distinct_arrays, shapes

import tinygrad_lite.nn.functional as F
from tinygrad_lite import Tensor, gradgradcheck, kernels
from tinygrad_lite.nn.attention import ScaledDotProductAttention
from tinygrad_lite.nn.compiled import (
    CompiledBatchNormalization,
    CompiledGELUFunction,
    CompiledLayerNormFunction,
    CompiledMaxPooling,
)
from tinygrad_lite.nn.functional import CrossEntropy, DropoutFunction, LayerNormFunction, LinearFunction
from tinygrad_lite.ops.elementwise import GELUFunction

# Each fused op, and its compiled form where the loops compiled (tinygrad_lite.kernels): held to one reference.
LAYER_NORMS = [LayerNormFunction] + ([CompiledLayerNormFunction] if kernels.available() else [])
GELUS = [GELUFunction] + ([CompiledGELUFunction] if kernels.available() else [])
MAX_POOLINGS = ["MaxPooling"] + (["CompiledMaxPooling"] if kernels.available() else [])
BATCH_NORMS = ["BatchNormalization"] + (["CompiledBatchNormalization"] if kernels.available() else [])

FAST = settings(max_examples=20)


def leaves(*arrays_: np.ndarray) -> list[Tensor]:
    return [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays_]


def assert_fused_matches_reference(fused, reference, inputs: list[Tensor], rng: np.random.Generator) -> None:
    """Same output, the same gradient of every input for one random upstream gradient, and second derivatives
    that pass gradgradcheck (under create_graph the fused op differentiates its reference)."""
    results, upstream = [], None
    for fn in (fused, reference):
        for x in inputs:
            x.grad = None
        out = fn(*inputs)
        upstream = rng.standard_normal(out.shape) if upstream is None else upstream
        out.backward(upstream)
        results.append([out.data] + [np.zeros(x.shape) if x.grad is None else x.grad.data for x in inputs])
    for i, (a, b) in enumerate(zip(*results)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg="output" if i == 0 else f"gradient {i - 1}")
    assert gradgradcheck(fused, *inputs)


def check(fused, reference, *arrays_: np.ndarray) -> None:
    assert_fused_matches_reference(fused, reference, leaves(*arrays_), np.random.default_rng(0))


@FAST
@given(data=st.data(), bias=st.booleans())
def test_linear(data, bias):
    batch = data.draw(shapes(max_dims=2, max_size=6))
    n_in, n_out = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    x, w, b = data.draw(arrays(batch + (n_in,))), data.draw(arrays((n_out, n_in))), data.draw(arrays((n_out,)))
    if bias:
        check(lambda x, w, b: LinearFunction.apply(x, w, b), LinearFunction.reference, x, w, b)
    else:
        check(lambda x, w: LinearFunction.apply(x, w), LinearFunction.reference, x, w)


@pytest.mark.parametrize("function", LAYER_NORMS, ids=lambda f: f.__name__)
@FAST
@given(data=st.data(), affine=st.sampled_from(["none", "weight", "both"]), ndim=st.integers(1, 2))
def test_layer_norm(function, data, affine, ndim):
    shape = data.draw(shapes(min_dims=ndim, max_dims=3, max_size=24))
    x = data.draw(arrays(shape)) * 2 + np.arange(np.prod(shape)).reshape(shape) * 0.1  # no constant rows
    norm = shape[len(shape) - ndim:]
    params = dict(ndim=ndim, eps=1e-5)
    extra = [data.draw(arrays(norm)) for _ in range({"none": 0, "weight": 1, "both": 2}[affine])]
    check(lambda x, *wb: function.apply(x, *wb, **params),
          lambda x, *wb: function.reference(x, *wb, **params), x, *extra)


@FAST
@given(data=st.data(), reduction=st.sampled_from(["mean", "sum", "none"]), smoothing=st.sampled_from([0.0, 0.2]),
       weighted=st.booleans(), soft=st.booleans())
def test_cross_entropy(data, reduction, smoothing, weighted, soft):
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    logits = data.draw(arrays((n, c)))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    weight = rng.uniform(0.5, 2.0, c) if weighted else None
    options = dict(weight=weight, ignore_index=-100, reduction=reduction, label_smoothing=smoothing)
    if soft:
        q = rng.dirichlet(np.ones(c), n)
        check(lambda x, q: CrossEntropy.apply(x, q, targets=None, **options),
              lambda x, q: CrossEntropy.reference(x, q, targets=None, **options), logits, q)
    else:
        targets = rng.integers(0, c, n)
        targets[rng.random(n) < 0.3] = -100  # some ignored
        targets[0] = 0  # at least one counted
        options["targets"] = targets
        check(lambda x: CrossEntropy.apply(x, **options), lambda x: CrossEntropy.reference(x, **options), logits)


@pytest.mark.parametrize("function", GELUS, ids=lambda f: f.__name__)
@FAST
@given(x=shapes().flatmap(arrays), approximate=st.sampled_from(["none", "tanh"]))
def test_gelu(function, x, approximate):
    check(lambda t: function.apply(t, approximate=approximate),
          lambda t: function.reference(t, approximate=approximate), x)


@pytest.mark.parametrize("compiled", [False] + ([True] if kernels.available() else []))
@FAST
@given(x=shapes().flatmap(arrays), p=st.sampled_from([0.1, 0.5, 0.9]), seed=st.integers(0, 2**63 - 1))
def test_dropout(compiled, x, p, seed):
    with kernels.use_compiled(compiled):
        check(lambda t: DropoutFunction.apply(t, p=p, seed=seed), lambda t: DropoutFunction.reference(t, p, seed), x)


@FAST
@given(dims=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
       causal=st.booleans(), dropout=st.booleans(), seed=st.integers(0, 1000))
def test_attention(dims, causal, dropout, seed):
    b, t, hs, hv = dims
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((b, t, n)) for n in (hs, hs, hv))
    keep = F.dropout_mask((b, t, t), 0.3, seed, np.float64) if dropout else None
    params = dict(mask=None, is_causal=causal, dropout_p=0.3 if dropout else 0.0, keep=keep)
    check(lambda *qkv: ScaledDotProductAttention.apply(*qkv, **params),
          lambda *qkv: ScaledDotProductAttention.reference(*qkv, **params), q, k, v)


# ---- convolutions and pooling (tinygrad_lite/nn/conv.py) ----------------------------------------------------


@FAST
@given(data=st.data(), stride=st.integers(1, 2), dilation=st.integers(1, 2), padding=st.integers(0, 1),
       groups=st.sampled_from([1, 2]), bias=st.booleans())
def test_convolution(data, stride, dilation, padding, groups, bias):
    from tinygrad_lite.nn.conv import Convolution

    c_in, c_out = 4, 2  # both divisible by every groups value drawn
    x = data.draw(arrays((1, c_in, 4, 4)))
    w = data.draw(arrays((c_out, c_in // groups, 2, 2)))
    b = data.draw(arrays((c_out,)))
    params = dict(stride=(stride, stride), padding=((padding, padding), (padding, padding)),
                  dilation=(dilation, dilation), groups=groups)
    inputs = (x, w, b) if bias else (x, w)
    check(lambda *t: Convolution.apply(*t, **params), lambda *t: Convolution.reference(*t, **params), *inputs)


@FAST
@given(data=st.data(), op=st.sampled_from(["avg", "unfold", *MAX_POOLINGS]), stride=st.integers(1, 2),
       ceil_mode=st.booleans())
def test_pooling_and_unfold(data, op, stride, ceil_mode):
    from tinygrad_lite.nn.conv import AvgPooling, Im2Col, MaxPooling

    x = data.draw(distinct_arrays((1, 2, 4, 5)))  # distinct: no ties inside a window
    if op == "unfold":
        fn, params = Im2Col, dict(kernel=(2, 2), stride=(stride, stride), padding=((1, 1), (0, 0)), dilation=(1, 1))
    elif op in MAX_POOLINGS:
        fn = MaxPooling if op == "MaxPooling" else CompiledMaxPooling
        params = dict(kernel=(2, 2), stride=(stride, stride), padding=(1, 0), ceil_mode=ceil_mode)
    else:
        fn, params = AvgPooling, dict(kernel=(2, 3), stride=(stride, stride), padding=(1, 1), ceil_mode=ceil_mode,
                                      count_include_pad=False)
    check(lambda t: fn.apply(t, **params), lambda t: fn.reference(t, **params), x)


@FAST
@given(data=st.data(), affine=st.sampled_from([0, 1, 2]), spatial=st.booleans(), op=st.sampled_from(BATCH_NORMS))
def test_batch_norm_in_training_mode(data, affine, spatial, op):
    from tinygrad_lite.nn.conv import BatchNormalization

    fn = BatchNormalization if op == "BatchNormalization" else CompiledBatchNormalization
    shape = (3, 2, 2, 2) if spatial else (4, 3)
    x = data.draw(arrays(shape)) + np.arange(np.prod(shape)).reshape(shape) * 0.05  # no constant channel
    extra = [data.draw(arrays((shape[1],))) for _ in range(affine)]
    check(lambda t, *wb: fn.apply(t, *wb, eps=1e-5, momentum=0.1),
          lambda t, *wb: fn.reference(t, *wb, eps=1e-5, momentum=0.1), x, *extra)
