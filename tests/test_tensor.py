"""The Tensor itself: dtype rules, constructors, conversions, repr."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_lite import Tensor

# ---- dtype rules ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [1.5, [1.0, 2.0], [[1.0], [2.0]], (0.5, 2)])
def test_python_floats_and_lists_default_to_float32(data):
    assert Tensor(data).dtype == np.float32


@pytest.mark.parametrize("data", [np.ones(3), np.ones(3, dtype=np.float16), np.float64(2.0), np.arange(3),
                                  np.ones(2, dtype=np.float32)])
def test_arrays_keep_their_dtype_as_torch_tensor_does(data):
    torch = pytest.importorskip("torch")
    assert Tensor(data).dtype == np.asarray(data).dtype
    assert str(torch.tensor(data).dtype).removeprefix("torch.") == np.asarray(data).dtype.name


def test_explicit_float64_is_kept_and_propagates():
    x = Tensor(np.ones((2, 3)), dtype=np.float64, requires_grad=True)
    assert x.dtype == np.float64
    y = ((x * 2 + 1).exp() @ Tensor(np.ones((3, 2)), dtype=np.float64)).softmax(axis=-1).sum()
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float64


@pytest.mark.parametrize("data", [3, [1, 2], np.arange(4), np.arange(4, dtype=np.int32)])
def test_integer_data_stays_integer(data):
    t = Tensor(data)
    assert t.dtype.kind == "i"
    assert t.dtype == np.asarray(data).dtype


def test_bool_data_stays_bool():
    assert Tensor([True, False]).dtype == np.bool_


@pytest.mark.parametrize("data", [[1, 2], np.arange(3), [True]])
def test_integer_or_bool_tensor_cannot_require_grad(data):
    with pytest.raises(TypeError, match="only floating-point tensors can require grad"):
        Tensor(data, requires_grad=True)
    with pytest.raises(TypeError, match="requires_grad_"):
        Tensor(data).requires_grad_()


@pytest.mark.parametrize("scalar", [2, 2.5, np.float64(2.5), np.int64(3), True])
@pytest.mark.parametrize("op", [lambda x, s: x + s, lambda x, s: s + x, lambda x, s: x * s, lambda x, s: s * x,
                                lambda x, s: x - s, lambda x, s: s - x, lambda x, s: x / s, lambda x, s: x ** s,
                                lambda x, s: x.maximum(s), lambda x, s: Tensor.where(x.data > 0, x, s)])
def test_python_and_numpy_scalars_never_upcast_float32(scalar, op):
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = op(x, scalar)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_float32_stays_float32_through_every_kind_of_op():
    x = Tensor.randn(2, 3, 4, seed=0, requires_grad=True)
    w = Tensor.randn(4, 5, seed=1, requires_grad=True)
    y = (x @ w).gelu().softmax(-1).log_softmax(-1).var(axis=1) + x.mean() * 0.5 ** 2
    y = y.logsumexp(axis=-1).max() + x.std() + x[0, [1, 1]].abs().sqrt().sum() + x.clip(-1, 1).tanh().sum()
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_integer_arithmetic():
    i = Tensor([1, 2, 3])
    assert (i + 1).dtype.kind == "i" and (i * i).dtype.kind == "i"
    assert (i / 2).dtype == np.float32  # true division gives float32, as in PyTorch
    assert (i + 0.5).dtype == np.float32
    assert (i + Tensor([1.0], dtype=np.float64)).dtype == np.float64
    assert i.exp().dtype == np.float32
    assert (Tensor([[1, 2]]) @ Tensor([[1.0], [2.0]])).dtype == np.float32
    np.testing.assert_array_equal((i * 2).data, [2, 4, 6])


def test_casts():
    x = Tensor([1.7, -2.2])
    assert x.double().dtype == np.float64 and x.double().float().dtype == np.float32
    assert x.long().dtype == np.int64
    np.testing.assert_array_equal(x.long().data, [1, -2])
    assert x.to(np.float32) is x
    assert x.astype("float64").dtype == np.float64


# ---- constructors ------------------------------------------------------------------------------------

def test_zeros_ones_full_eye_arange():
    assert Tensor.zeros(2, 3).shape == (2, 3) and Tensor.zeros((2, 3)).dtype == np.float32
    np.testing.assert_array_equal(Tensor.ones(2).data, [1, 1])
    np.testing.assert_array_equal(Tensor.full((2,), 7.0).data, [7, 7])
    np.testing.assert_array_equal(Tensor.eye(3).data, np.eye(3))
    assert Tensor.eye(2, 3).shape == (2, 3)
    assert Tensor.arange(5).dtype == np.int64 and Tensor.arange(0.0, 1.0, 0.25).dtype == np.float32
    np.testing.assert_array_equal(Tensor.arange(2, 5).data, [2, 3, 4])
    assert Tensor.zeros(2, dtype=np.float64).dtype == np.float64
    assert Tensor.ones(2, requires_grad=True).requires_grad
    assert Tensor.zeros(0, 3).shape == (0, 3)
    z = Tensor.zeros_like(Tensor([1.0], dtype=np.float64))
    assert z.dtype == np.float64 and Tensor.ones_like(z).data[0] == 1


def test_random_constructors_are_reproducible_from_a_seed_or_generator():
    a, b = Tensor.randn(3, 4, seed=7), Tensor.randn((3, 4), seed=7)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.dtype == np.float32 and a.shape == (3, 4)
    assert not np.array_equal(Tensor.randn(3, 4, seed=8).data, a.data)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(Tensor.uniform(5, low=-1, high=1, seed=g1).data,
                                  Tensor.uniform(5, low=-1, high=1, seed=g2).data)
    u = Tensor.uniform(1000, low=-2, high=3, seed=0)
    assert u.data.min() >= -2 and u.data.max() < 3
    assert Tensor.randn(2, seed=0, dtype=np.float64).dtype == np.float64
    # a shared generator advances: two draws differ
    g = np.random.default_rng(0)
    assert not np.array_equal(Tensor.randn(4, seed=g).data, Tensor.randn(4, seed=g).data)


@pytest.mark.parametrize("ctor", [Tensor.zeros, Tensor.ones, Tensor.randn])
def test_constructors_reject_bad_shapes(ctor):
    with pytest.raises(ValueError, match="negative dimension"):
        ctor(2, -1)
    with pytest.raises(TypeError, match="shape must be integers"):
        ctor("a")


# ---- conversions and protocols ------------------------------------------------------------------------

def test_properties_and_conversions():
    x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.shape == (2, 3) and x.ndim == 2 and x.numel() == 6
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-2) == 2 and x.dim() == 2
    assert len(x) == 2
    assert isinstance(x.numpy(), np.ndarray) and x.numpy() is x.data
    assert x.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert np.asarray(x) is x.data
    assert np.array(x, dtype=np.float64).dtype == np.float64
    copied = np.array(x, copy=True)
    copied[0, 0] = 100
    assert x.data[0, 0] == 1
    assert [row.shape for row in x] == [(3,), (3,)]


def test_item():
    assert Tensor(3.5).item() == 3.5 and isinstance(Tensor(3.5).item(), float)
    assert Tensor([[7]]).item() == 7 and isinstance(Tensor([7]).item(), int)
    assert float(Tensor([2.5])) == 2.5 and int(Tensor(3)) == 3
    with pytest.raises(ValueError, match=r"one-element.*\(2,\)"):
        Tensor([1.0, 2.0]).item()


def test_len_of_0d_and_truth_value():
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))
    assert bool(Tensor(1.0)) and not bool(Tensor([0.0]))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Tensor([1.0, 2.0]))


def test_detach_shares_data_and_cuts_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.data is y.data
    assert y.grad_fn is not None and not y.is_leaf and x.is_leaf


def test_repr_shows_shape_dtype_and_op():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "Tensor([1., 2.], shape=(2,), dtype=float32, requires_grad=True)"
    r = repr(x.softmax(axis=-1))
    assert "shape=(2,)" in r and "dtype=float32" in r and "grad_fn=softmax(axis=0)" in r
    assert "dtype=int64" in repr(Tensor([1, 2]))
    assert "name='w'" in repr(Tensor([1.0], name="w"))
    big = repr(Tensor.zeros(100, 100))
    assert "..." in big and len(big) < 400


def test_tensor_from_tensor_and_bad_data():
    x = Tensor([1.0, 2.0])
    assert np.array_equal(Tensor(x).data, x.data)
    with pytest.raises(TypeError, match="dtype <U"):
        Tensor("abc")
    with pytest.raises(ValueError, match="rectangular"):
        Tensor([[1.0, 2.0], [3.0]])


def test_setitem_writes_in_place():
    x = Tensor([1.0, 2.0, 3.0])
    x[0] = 5.0
    x[1:] = Tensor([7.0, 8.0])
    assert x.tolist() == [5.0, 7.0, 8.0] and x._version == 2


def test_comparisons_give_bool_tensors_without_grad():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    for r, want in ((x > 2, [0, 0, 1]), (x >= 2, [0, 1, 1]), (x < 2, [1, 0, 0]), (x <= 2, [1, 1, 0]),
                    (x == 2, [0, 1, 0]), (x != 2, [1, 0, 1]), (2 < x, [0, 0, 1])):
        assert r.dtype == np.bool_ and not r.requires_grad
        np.testing.assert_array_equal(r.data, want)
    assert hash(x) == id(x)


def test_argmax_argmin():
    x = Tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    np.testing.assert_array_equal(x.argmax(axis=1).data, [1, 0])
    np.testing.assert_array_equal(x.argmin(axis=-1, keepdims=True).data, [[0], [1]])
    assert x.argmax().item() == 3
    assert x.argmax(axis=0).dtype.kind == "i"
