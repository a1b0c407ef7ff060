"""The fused ops of nn.functional: float64 gradchecks, PyTorch cross-checks, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_lite.nn.functional as F
from tinygrad_lite import Tensor, gradcheck


def _t(shape, seed, scale=1.0, grad=True):
    return Tensor(np.random.default_rng(seed).standard_normal(shape) * scale, dtype=np.float64, requires_grad=grad)


def _torch():
    return pytest.importorskip("torch", reason="PyTorch not installed: the cross-check against it is skipped")


seeds = st.integers(0, 2**31)


# ---- linear ---------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), n_in=st.integers(1, 4), n_out=st.integers(1, 4),
       bias=st.booleans(), seed=seeds)
def test_linear_gradcheck(lead, n_in, n_out, bias, seed):
    x, w, b = _t((*lead, n_in), seed), _t((n_out, n_in), seed + 1), _t((n_out,), seed + 2)
    if bias:
        assert gradcheck(lambda x, w, b: F.linear(x, w, b), x, w, b)
    else:
        assert gradcheck(lambda x, w: F.linear(x, w), x, w)


def test_linear_matches_formula_and_rejects_wrong_width():
    x, w, b = _t((2, 3, 4), 0), _t((5, 4), 1), _t((5,), 2)
    np.testing.assert_allclose(F.linear(x, w, b).data, x.data @ w.data.T + b.data)
    with pytest.raises(ValueError, match=r"last dimension 4.*shape \(2, 3\)"):
        F.linear(_t((2, 3), 0), w)


# ---- cross-entropy ------------------------------------------------------------------------------


@settings(max_examples=25)
@given(shape=st.sampled_from([(1, 2), (4, 3), (2, 3, 5), (3, 1, 4)]),
       reduction=st.sampled_from(["mean", "sum", "none"]), ignore=st.booleans(), seed=seeds)
def test_cross_entropy_gradcheck(shape, reduction, ignore, seed):
    rng = np.random.default_rng(seed)
    logits = _t(shape, seed, scale=3.0)
    targets = rng.integers(0, shape[-1], shape[:-1])
    ignore = ignore and targets.size > 1  # keep one target counted, so that the mean is defined
    if ignore:
        targets.reshape(-1)[0] = -100
    idx = -100 if ignore else None
    assert gradcheck(lambda a: F.cross_entropy(a, targets, ignore_index=idx, reduction=reduction), logits)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_pytorch(reduction):
    torch = _torch()
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 6, 7)).astype(np.float32) * 4
    targets = rng.integers(0, 7, (2, 6))
    targets[0, :2] = -1
    ours_x = Tensor(logits, requires_grad=True)
    ours = F.cross_entropy(ours_x, targets, ignore_index=-1, reduction=reduction)
    ours.backward(np.ones(ours.shape, dtype=np.float32))
    tx = torch.tensor(logits, requires_grad=True)
    theirs = torch.nn.functional.cross_entropy(tx.permute(0, 2, 1), torch.tensor(targets), ignore_index=-1,
                                               reduction=reduction)
    theirs.backward(torch.ones_like(theirs))
    assert ours.dtype == np.float32 and ours_x.grad.dtype == np.float32
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_x.grad.data, tx.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = Tensor(np.array([[1000.0, 0.0, -1000.0], [-1e4, 1e4, 0.0]], dtype=np.float32), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([0, 0]))
    loss.backward()
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx(1e4, rel=1e-6)
    np.testing.assert_allclose(logits.grad.data, [[0, 0, 0], [-0.5, 0.5, 0]], atol=1e-6)


def test_cross_entropy_errors():
    logits = Tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError, match="target 3 is out of range for 3 classes"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(IndexError, match="target -2"):
        F.cross_entropy(logits, np.array([-2, 0]), ignore_index=-1)
    with pytest.raises(TypeError, match="integer class indices of shape .*, got dtype float"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"targets of shape \(2,\)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, np.array([0, 1]), reduction="avg")


# ---- layer norm ---------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), features=st.integers(2, 5),
       affine=st.sampled_from(["none", "weight", "both"]), seed=seeds)
def test_layer_norm_gradcheck(lead, features, affine, seed):
    x = _t((*lead, features), seed)
    w, b = _t((features,), seed + 1), _t((features,), seed + 2)
    if affine == "both":
        assert gradcheck(lambda x, w, b: F.layer_norm(x, features, w, b), x, w, b)
    elif affine == "weight":
        assert gradcheck(lambda x, w: F.layer_norm(x, features, w), x, w)
    else:
        assert gradcheck(lambda x: F.layer_norm(x, features), x)


def test_layer_norm_over_two_trailing_axes_gradcheck():
    x, w, b = _t((2, 3, 4), 0), _t((3, 4), 1), _t((3, 4), 2)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (3, 4), w, b), x, w, b)


def test_layer_norm_is_one_graph_node_and_matches_pytorch():
    torch = _torch()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5, 8)).astype(np.float32) * 3 + 1
    w, b = rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    ours = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    out = F.layer_norm(*ours[:1], 8, *ours[1:])
    assert out._ctx.parents == tuple(ours)  # fused: one Function from inputs to output
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    tout = torch.nn.functional.layer_norm(theirs[0], (8,), theirs[1], theirs[2])
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-4, atol=1e-5)
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, t.grad.numpy(), rtol=1e-4, atol=1e-4)
        assert a.grad.dtype == np.float32


def test_layer_norm_errors():
    with pytest.raises(ValueError, match=r"normalized_shape \(5,\) does not match"):
        F.layer_norm(Tensor(np.zeros((2, 4))), 5)
    with pytest.raises(ValueError, match=r"weight has shape \(3,\)"):
        F.layer_norm(Tensor(np.zeros((2, 4))), 4, Tensor(np.ones(3)))


# ---- embedding --------------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(ids_shape=st.sampled_from([(3,), (2, 3), (2, 2, 2)]), num=st.integers(1, 4), dim=st.integers(1, 3), seed=seeds)
def test_embedding_gradcheck_with_repeated_ids(ids_shape, num, dim, seed):
    ids = np.random.default_rng(seed).integers(0, num, ids_shape)  # more ids than rows: repeats are certain
    weight = _t((num, dim), seed)
    assert F.embedding(ids, weight).shape == (*ids_shape, dim)
    assert gradcheck(lambda w: F.embedding(ids, w), weight)


def test_embedding_repeats_accumulate_and_match_pytorch():
    torch = _torch()
    weight = np.arange(12, dtype=np.float32).reshape(4, 3)
    ids = np.array([[1, 1, 3], [1, 0, 3]])
    w = Tensor(weight, requires_grad=True)
    out = F.embedding(Tensor(ids), w)
    out.sum().backward()
    tw = torch.tensor(weight, requires_grad=True)
    torch.nn.functional.embedding(torch.tensor(ids), tw).sum().backward()
    np.testing.assert_array_equal(out.data, weight[ids])
    np.testing.assert_array_equal(w.grad.data, tw.grad.numpy())
    np.testing.assert_array_equal(w.grad.data[:, 0], [1, 3, 0, 2])


def test_embedding_errors_name_the_id_and_table_size():
    w = Tensor(np.zeros((5, 2)))
    with pytest.raises(IndexError, match="id 5 is out of range for 5 embeddings"):
        F.embedding(np.array([[0, 5]]), w)
    with pytest.raises(IndexError, match="id -1"):
        F.embedding(np.array([-1]), w)
    with pytest.raises(TypeError, match="integer"):
        F.embedding(Tensor(np.array([0.0, 1.0])), w)


# ---- mse, dropout, softmax, one_hot --------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_gradcheck_and_pytorch(reduction):
    x, t = _t((3, 4), 0), _t((3, 4), 1)
    assert gradcheck(lambda x, t: F.mse_loss(x, t, reduction=reduction), x, t)
    torch = _torch()
    expected = torch.nn.functional.mse_loss(torch.tensor(x.data), torch.tensor(t.data), reduction=reduction)
    np.testing.assert_allclose(F.mse_loss(x, t, reduction=reduction).data, expected.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"target of shape \(4,\)"):
        F.mse_loss(x, np.zeros(4))


def test_dropout_is_inverted_seeded_and_off_in_eval():
    x = Tensor(np.ones((200, 50), dtype=np.float32), requires_grad=True)
    out = F.dropout(x, 0.25, training=True, rng=1)
    kept = out.data != 0
    assert 0.70 < kept.mean() < 0.80
    np.testing.assert_allclose(out.data[kept], 1 / 0.75)
    np.testing.assert_array_equal(F.dropout(x, 0.25, rng=1).data, out.data)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.data, kept / 0.75)
    assert F.dropout(x, 0.25, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert (F.dropout(x, 1.0).data == 0).all()
    with pytest.raises(ValueError, match="p must be in"):
        F.dropout(x, 1.5)


def test_dropout_gradcheck_with_a_fixed_mask():
    x = _t((4, 5), 0)
    assert gradcheck(lambda x: F.dropout(x, 0.5, rng=3), x)


def test_softmax_log_softmax_one_hot():
    x = _t((2, 5), 0)
    np.testing.assert_allclose(F.softmax(x).data.sum(axis=-1), 1.0)
    np.testing.assert_allclose(np.exp(F.log_softmax(x).data), F.softmax(x).data)
    oh = F.one_hot(np.array([[0, 2], [1, 1]]), 3)
    assert oh.dtype == np.int64 and oh.shape == (2, 2, 3)
    np.testing.assert_array_equal(oh.data[0], [[1, 0, 0], [0, 0, 1]])
    assert F.one_hot(np.array([3, 0])).shape == (2, 4)
    with pytest.raises(IndexError, match="target 3 is out of range for 3"):
        F.one_hot(np.array([3]), 3)


def test_activation_functions_match_tensor_methods():
    x = _t((3,), 0)
    for fn in (F.relu, F.gelu, F.sigmoid, F.tanh):
        np.testing.assert_array_equal(fn(x).data, getattr(x, fn.__name__)().data)
