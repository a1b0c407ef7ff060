"""The fused scaled dot-product attention: gradients, agreement with the step-by-step version and with PyTorch."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_lite.nn.functional as F
from tinygrad_lite import Tensor, gradcheck
from tinygrad_lite.nn import attention
from tinygrad_lite.nn.attention import attention_reference, attention_weights, scaled_dot_product_attention


def qkv(rng: np.random.Generator, batch: tuple[int, ...], t: int, s: int, hs: int, hv: int, dtype=np.float64):
    make = lambda *shape: Tensor(rng.standard_normal(shape), requires_grad=True, dtype=dtype)  # noqa: E731
    return make(*batch, t, hs), make(*batch, s, hs), make(*batch, s, hv)


def random_mask(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A random boolean mask where every query row keeps at least one key."""
    mask = rng.random(shape) < 0.6
    mask[..., 0] = True
    return mask


shapes = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 4),
                   st.integers(1, 4))


@settings(max_examples=25)
@given(shapes, st.sampled_from(["none", "causal", "mask", "broadcast_mask"]), st.integers(0, 2**31 - 1))
def test_fused_attention_gradcheck(dims, masking, seed):
    b, nh, t, s, hs, hv = dims
    rng = np.random.default_rng(seed)
    q, k, v = qkv(rng, (b, nh), t, s, hs, hv)
    mask = {"none": None, "causal": None, "mask": random_mask(rng, (b, nh, t, s)),
            "broadcast_mask": random_mask(rng, (t, s))}[masking]
    fn = lambda q, k, v: scaled_dot_product_attention(q, k, v, mask=mask, is_causal=masking == "causal")  # noqa: E731
    assert gradcheck(fn, q, k, v)


@settings(max_examples=25)
@given(shapes, st.sampled_from(["none", "causal", "mask"]), st.sampled_from([0.0, 0.3]), st.integers(0, 2**31 - 1))
def test_fused_matches_reference_values_and_gradients(dims, masking, dropout_p, seed):
    b, nh, t, s, hs, hv = dims
    rng = np.random.default_rng(seed)
    q, k, v = qkv(rng, (b, nh), t, s, hs, hv)
    mask = random_mask(rng, (b, 1, t, s)) if masking == "mask" else None
    upstream = rng.standard_normal((b, nh, t, hv))
    results = []
    for fn in (scaled_dot_product_attention, attention_reference):
        for x in (q, k, v):
            x.grad = None
        out = fn(q, k, v, mask=mask, is_causal=masking == "causal", dropout_p=dropout_p, rng=seed)
        out.backward(upstream)
        results.append([out.data] + [x.grad.data for x in (q, k, v)])
    for fused, ref in zip(*results):
        np.testing.assert_allclose(fused, ref, rtol=1e-10, atol=1e-12)


def test_dropout_gradcheck_with_fixed_mask():
    rng = np.random.default_rng(0)
    q, k, v = qkv(rng, (2, 2), 4, 4, 3, 3)
    fn = lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=0.25, rng=7)  # noqa: E731
    assert gradcheck(fn, q, k, v)


def test_float32_stays_float32_and_rows_sum_to_one():
    rng = np.random.default_rng(1)
    q, k, v = qkv(rng, (2, 3), 6, 6, 4, 4, dtype=np.float32)
    out = scaled_dot_product_attention(q, k, v, is_causal=True)
    out.sum().backward()
    assert out.dtype == np.float32 and all(x.grad.dtype == np.float32 for x in (q, k, v))
    weights = attention_weights(q, k, is_causal=True)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    assert np.all(np.triu(weights[0, 0], 1) == 0)


def test_functional_exports_the_fused_op():
    assert F.scaled_dot_product_attention is scaled_dot_product_attention


def test_fully_masked_row_gives_zeros_not_nan():
    """A query allowed to see no key attends to nothing: zeros out, zero gradient (as torch's SDPA)."""
    rng = np.random.default_rng(2)
    q, k, v = qkv(rng, (1, 1), 3, 3, 2, 2)
    mask = np.array([[True, False, False], [False, False, False], [True, True, True]])
    out = scaled_dot_product_attention(q, k, v, mask=mask)
    out.sum().backward()
    assert np.all(out.data[0, 0, 1] == 0) and np.isfinite(out.data).all()
    assert np.all(q.grad.data[0, 0, 1] == 0) and all(np.isfinite(x.grad.data).all() for x in (q, k, v))


@pytest.mark.parametrize("masking", ["none", "causal", "mask"])
@pytest.mark.parametrize("t,s", [(5, 5), (3, 6)])
def test_against_torch(masking, t, s):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; the cross-check needs it")
    rng = np.random.default_rng(3)
    q, k, v = qkv(rng, (2, 3), t, s, 4, 5)
    mask = random_mask(rng, (2, 1, t, s)) if masking == "mask" else None
    out = scaled_dot_product_attention(q, k, v, mask=mask, is_causal=masking == "causal")
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    tq, tk, tv = (torch.tensor(x.data, requires_grad=True) for x in (q, k, v))
    tout = torch.nn.functional.scaled_dot_product_attention(
        tq, tk, tv, attn_mask=None if mask is None else torch.tensor(mask), is_causal=masking == "causal")
    tout.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in zip((q, k, v), (tq, tk, tv)):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_clear_errors():
    rng = np.random.default_rng(4)
    q, k, v = qkv(rng, (2, 2), 4, 4, 3, 3)
    with pytest.raises(ValueError, match=r"same head size.*\(2, 2, 4, 3\).*\(2, 2, 4, 5\)"):
        scaled_dot_product_attention(q, Tensor(np.zeros((2, 2, 4, 5)), dtype=np.float64), v)
    with pytest.raises(ValueError, match="k and v need the same sequence length"):
        scaled_dot_product_attention(q, k, Tensor(np.zeros((2, 2, 5, 3)), dtype=np.float64))
    with pytest.raises(ValueError, match="same leading"):
        scaled_dot_product_attention(q, Tensor(np.zeros((2, 3, 4, 3)), dtype=np.float64), v)
    with pytest.raises(ValueError, match=r"mask of shape \(3, 3\) does not broadcast"):
        scaled_dot_product_attention(q, k, v, mask=np.ones((3, 3), dtype=bool))
    with pytest.raises(TypeError, match="mask must be boolean"):
        scaled_dot_product_attention(q, k, v, mask=np.ones((4, 4)))
    with pytest.raises(ValueError, match="not both"):
        scaled_dot_product_attention(q, k, v, mask=np.ones((4, 4), dtype=bool), is_causal=True)
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    with pytest.raises(ValueError, match="floating-point tensor"):
        scaled_dot_product_attention(Tensor(np.zeros(3)), k, v)


@pytest.mark.parametrize("masking", ["causal", "mask"])
def test_large_batch_split_across_cores_matches_reference(masking, two_threads):
    """Big enough inputs take the two-thread path; it must agree with the step-by-step version."""
    rng = np.random.default_rng(5)
    q, k, v = qkv(rng, (4, 2), 64, 64, 64, 16)
    mask = random_mask(rng, (4, 1, 64, 64)) if masking == "mask" else None
    upstream = rng.standard_normal((4, 2, 64, 16))
    results = []
    for fn in (scaled_dot_product_attention, attention_reference):
        for x in (q, k, v):
            x.grad = None
        out = fn(q, k, v, mask=mask, is_causal=masking == "causal", dropout_p=0.1, rng=11)
        out.backward(upstream)
        results.append([out.data] + [x.grad.data for x in (q, k, v)])
    for fused, ref in zip(*results):
        np.testing.assert_allclose(fused, ref, rtol=1e-9, atol=1e-12)


@settings(max_examples=20)
@given(st.integers(1, 2), st.integers(1, 2), st.integers(1, 9), st.integers(1, 3), st.sampled_from([0.0, 0.3]),
       st.sampled_from([1, 2, 3]), st.integers(0, 2**31 - 1))
def test_causal_tiles_skip_only_masked_work(b, nh, t, hs, dropout_p, block, seed):
    """Causal attention in row tiles of `block` queries (above-diagonal tiles skipped) gives the reference's
    values and gradients, and passes gradcheck."""
    rng = np.random.default_rng(seed)
    q, k, v = qkv(rng, (b, nh), t, t, hs, hs)
    upstream = rng.standard_normal((b, nh, t, hs))
    with mock.patch.object(attention, "_CAUSAL_BLOCK", block):
        results = []
        for fn in (scaled_dot_product_attention, attention_reference):
            for x in (q, k, v):
                x.grad = None
            out = fn(q, k, v, is_causal=True, dropout_p=dropout_p, rng=seed)
            out.backward(upstream)
            results.append([out.data] + [x.grad.data for x in (q, k, v)])
        assert gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v)
        weights = attention_weights(q, k, is_causal=True)
    for fused, ref in zip(*results):
        np.testing.assert_allclose(fused, ref, rtol=1e-10, atol=1e-12)
    assert np.all(np.triu(weights, 1) == 0) and np.allclose(weights.sum(-1), 1.0)
