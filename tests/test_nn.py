"""Layers of tinygrad_lite.nn: initialisation, shapes, modes, errors, and Module state handling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_lite import Tensor, gradcheck, nn


def _torch():
    return pytest.importorskip("torch", reason="PyTorch not installed: the cross-check against it is skipped")


def test_linear_init_is_pytorch_default_and_seeded():
    layer = nn.Linear(400, 300, seed=0)
    bound = 1 / math.sqrt(400)
    assert layer.weight.shape == (300, 400) and layer.bias.shape == (300,)
    assert layer.weight.dtype == np.float32
    for p in (layer.weight.data, layer.bias.data):
        assert np.abs(p).max() <= bound
    # uniform on [-b, b]: variance b²/3
    assert layer.weight.data.var() == pytest.approx(bound**2 / 3, rel=0.02)
    np.testing.assert_array_equal(nn.Linear(400, 300, seed=0).weight.data, layer.weight.data)
    assert not np.array_equal(nn.Linear(400, 300, seed=1).weight.data, layer.weight.data)
    assert nn.Linear(3, 2, bias=False).bias is None
    assert [n for n, _ in nn.Linear(3, 2, bias=False).named_parameters()] == ["weight"]


def test_linear_forward_matches_pytorch_and_names_widths_on_error():
    torch = _torch()
    layer = nn.Linear(4, 3, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    t = torch.nn.Linear(4, 3)
    t.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    np.testing.assert_allclose(layer(Tensor(x)).data, t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"last dimension 4 \(in_features\), got input of shape \(2, 7\)"):
        layer(Tensor(np.zeros((2, 7), dtype=np.float32)))


def test_linear_layer_gradcheck_in_float64():
    layer = nn.Linear(3, 2, seed=0)
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((4, 3)), dtype=np.float64, requires_grad=True)
    assert gradcheck(lambda x, w, b: layer(x).tanh(), x, layer.weight, layer.bias)


def test_embedding_layer():
    emb = nn.Embedding(10, 4, seed=0)
    assert emb.weight.shape == (10, 4) and emb.weight.dtype == np.float32
    assert abs(float(nn.Embedding(1000, 100, seed=1).weight.data.std()) - 1.0) < 0.02  # N(0, 1) as PyTorch
    out = emb(Tensor(np.array([[1, 2, 1]])))
    assert out.shape == (1, 3, 4)
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.data[:3, 0], [0, 2, 1])
    with pytest.raises(IndexError, match="id 10 is out of range for 10 embeddings"):
        emb(np.array([10]))
    assert "Embedding(10, 4)" in repr(emb)


def test_layer_norm_layer():
    ln = nn.LayerNorm(6)
    np.testing.assert_array_equal(ln.weight.data, np.ones(6, dtype=np.float32))
    np.testing.assert_array_equal(ln.bias.data, np.zeros(6, dtype=np.float32))
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 6)).astype(np.float32) * 5 + 2)
    out = ln(x).data
    np.testing.assert_allclose(out.mean(axis=-1), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(axis=-1), 1, rtol=1e-3)
    assert nn.LayerNorm(6, bias=False).bias is None
    assert len(nn.LayerNorm(6, bias=False).parameters()) == 1


def test_dropout_layer_modes_and_seed():
    x = Tensor(np.ones((50, 40), dtype=np.float32))
    drop = nn.Dropout(0.5, seed=0)
    a = drop(x).data
    assert set(np.unique(a)) == {0.0, 2.0}
    assert not np.array_equal(a, drop(x).data)  # a fresh mask each call
    np.testing.assert_array_equal(nn.Dropout(0.5, seed=0)(x).data, a)
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(-0.1)


def test_activation_modules():
    x = Tensor(np.array([-2.0, 0.5, 3.0], dtype=np.float32))
    for module, method in ((nn.ReLU(), "relu"), (nn.Sigmoid(), "sigmoid"), (nn.Tanh(), "tanh"), (nn.GELU(), "gelu")):
        np.testing.assert_array_equal(module(x).data, getattr(x, method)().data)


def test_sequential_named_parameters_state_dict_and_errors():
    model = nn.Sequential(nn.Linear(3, 4, seed=0), nn.ReLU(), nn.Linear(4, 2, seed=1))
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    state = model.state_dict()
    other = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    other.load_state_dict(state)
    for a, b in zip(model.parameters(), other.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(RuntimeError, match=r"Missing key\(s\) in state_dict: '2.bias'"):
        other.load_state_dict({k: v for k, v in state.items() if k != "2.bias"})
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) in state_dict: 'extra'"):
        other.load_state_dict({**state, "extra": np.zeros(1)})
    with pytest.raises(RuntimeError, match=r"'0.weight': copying a param with shape \(3, 4\) from checkpoint, "
                                           r"the shape in current model is \(4, 3\)"):
        other.load_state_dict({**state, "0.weight": np.zeros((3, 4))})
    text = repr(model)
    assert "Linear(in_features=3, out_features=4, bias=True)" in text and "(1): ReLU()" in text


def test_train_eval_propagates_and_zero_grad():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model(Tensor(np.ones((1, 2), dtype=np.float32))).sum().backward()
    assert model[0].weight.grad is not None
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_buffers_are_saved_but_not_trained():
    from tinygrad_lite.nn import Module

    class Counter(Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2, seed=0)
            self.register_buffer("count", Tensor(np.zeros(2, dtype=np.float32)))
            self.register_buffer("scratch", Tensor(np.ones(1, dtype=np.float32)), persistent=False)

    m = Counter()
    assert [n for n, _ in m.named_buffers()] == ["count", "scratch"]
    assert all(p is not m.count for p in m.parameters())
    assert sorted(m.state_dict()) == ["count", "lin.bias", "lin.weight"]
    m.count = Tensor(np.full(2, 3.0, dtype=np.float32))  # reassigning keeps it a buffer
    state = m.state_dict()
    fresh = Counter()
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.count.data, [3.0, 3.0])
    with pytest.raises(TypeError, match="buffer 'count' must be a Tensor"):
        m.count = np.zeros(2)


def test_apply_visits_children_then_self():
    seen = []
    model = nn.Sequential(nn.Linear(2, 3, seed=0), nn.ReLU())
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "ReLU", "Sequential"]
