"""PyTorch's everyday API, run as the same short programs in PyTorch and here: the module-level
constructors and their dtype rules, the global generator, `tinygrad_lite.data`, Module's dtype casts,
strict state dicts and grad switches, and `nn.utils`."""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import Tensor, nn, optim
from tinygrad_lite.data import DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split

torch = pytest.importorskip("torch", reason="PyTorch not installed: pip install -e '.[torch]'")

DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.int64: np.int64, torch.bool: np.bool_,
          torch.int32: np.int32, torch.uint8: np.uint8}


def same_tensor(ours: Tensor, theirs) -> None:
    assert ours.shape == tuple(theirs.shape)
    assert ours.dtype == DTYPES[theirs.dtype], (ours.dtype, theirs.dtype)
    np.testing.assert_array_equal(ours.data, theirs.numpy())


# ---- constructors -----------------------------------------------------------------------------------

DATA = [1.5, [1.0, 2.0], [[1, 2], [3, 4]], True, [True, False], 3, np.float32(2.5), [np.float64(1.0), 2.0],
        np.arange(6, dtype=np.float64).reshape(2, 3), np.arange(4, dtype=np.int32), np.ones(2, dtype=np.uint8)]


@pytest.mark.parametrize("data", DATA, ids=[repr(d)[:30] for d in DATA])
def test_tensor_dtype_rules_match_torch(data):
    same_tensor(tl.tensor(data), torch.tensor(data))


def test_tensor_copies_and_from_numpy_shares():
    arr = np.zeros(3)
    copied, shared = tl.tensor(arr), tl.from_numpy(arr)
    arr[0] = 7.0
    assert copied.data[0] == 0.0 and shared.data[0] == 7.0 and shared.dtype == np.float64
    shared.data[1] = 5.0
    assert arr[1] == 5.0
    assert tl.tensor(arr, dtype=np.float32).dtype == np.float32
    t = tl.tensor(arr, requires_grad=True)
    assert t.requires_grad and t.is_leaf
    assert tl.tensor(t).requires_grad is False  # torch.tensor(tensor) copies, detached


@pytest.mark.parametrize("name, args, kwargs", [
    ("zeros", (2, 3), {}), ("zeros", ((2, 3),), {}), ("ones", ([4],), {}), ("ones", (2,), {"dtype": "float64"}),
    ("full", ((2, 2), 1.5), {}), ("full", ((2,), 7), {}), ("full", ((3,), False), {}),
    ("full", ((2,), 7), {"dtype": "float64"}), ("eye", (3,), {}), ("eye", (2, 4), {}),
    ("arange", (5,), {}), ("arange", (1, 7, 2), {}), ("arange", (0, 1, 0.1), {}), ("arange", (-1.5, 2.3, 0.7), {}),
    ("arange", (5, 1, -1.5), {}), ("arange", (1, 2.5, 0.5), {}), ("arange", (10,), {"dtype": "float64"}),
    ("arange", (0.0, 3.0), {"dtype": "int64"}),
])
def test_deterministic_constructors_match_torch(name, args, kwargs):
    torch_kwargs = {k: getattr(torch, v) if k == "dtype" else v for k, v in kwargs.items()}
    same_tensor(getattr(tl, name)(*args, **kwargs), getattr(torch, name)(*args, **torch_kwargs))


def test_like_constructors_keep_shape_and_dtype():
    x = tl.tensor(np.zeros((2, 3), dtype=np.float64))
    for name in ("zeros_like", "ones_like"):
        same_tensor(getattr(tl, name)(x), getattr(torch, name)(torch.zeros(2, 3, dtype=torch.float64)))
    same_tensor(tl.full_like(x, 2.0), torch.full_like(torch.zeros(2, 3, dtype=torch.float64), 2.0))
    same_tensor(tl.zeros_like(x, dtype=np.int64), torch.zeros(2, 3, dtype=torch.int64))
    for fn in (tl.rand_like, tl.randn_like):
        y = fn(x, generator=0)
        assert y.shape == (2, 3) and y.dtype == np.float64


def test_random_constructors_shapes_dtypes_and_ranges():
    g = tl.Generator().manual_seed(0)
    r = tl.rand(1000, 10, generator=g)
    assert r.dtype == np.float32 and r.shape == (1000, 10) and 0 <= r.data.min() and r.data.max() < 1
    n = tl.randn(2, 3, dtype=np.float64, requires_grad=True, generator=g)
    assert n.dtype == np.float64 and n.requires_grad
    i = tl.randint(3, 7, (10_000,), generator=g)
    assert i.dtype == np.int64 and set(i.tolist()) == {3, 4, 5, 6}
    assert set(tl.randint(2, (100,), generator=g).tolist()) == {0, 1}  # randint(high, size)
    assert tl.randint(0, 5, (3,), dtype=np.float32, generator=g).dtype == np.float32


def test_module_level_cat_and_stack_take_dim_and_axis():
    a, b = tl.ones(2, 3), tl.zeros(2, 3)
    assert tl.cat([a, b]).shape == (4, 3) and tl.cat([a, b], 1).shape == tl.cat([a, b], axis=1).shape == (2, 6)
    assert tl.stack([a, b], dim=2).shape == (2, 3, 2) and tl.stack((a, b), axis=0).shape == (2, 2, 3)


# ---- the global generator -------------------------------------------------------------------------


def draws() -> list[float]:
    """Everything random that takes its numbers from the global generator when given none."""
    out = [*tl.randn(3).tolist(), *tl.rand(2).tolist(), *tl.randint(0, 100, (2,)).tolist()]
    out += nn.init.normal_(tl.zeros(2)).tolist()
    out += nn.Linear(2, 2).weight.data.reshape(-1).tolist() + nn.Embedding(3, 2).weight.data.reshape(-1).tolist()
    out += [float(x) for b in DataLoader(TensorDataset(tl.arange(5)), batch_size=5, shuffle=True) for x in b[0]]
    return out


def test_manual_seed_makes_every_unseeded_draw_repeat():
    tl.manual_seed(123)
    first = draws()
    assert tl.initial_seed() == 123
    tl.manual_seed(123)
    assert draws() == first
    tl.manual_seed(124)
    assert draws() != first


def test_rng_state_round_trip_and_seed():
    tl.manual_seed(5)
    state = tl.get_rng_state()
    a = tl.randn(4).tolist()
    tl.set_rng_state(state)
    assert tl.randn(4).tolist() == a
    s = tl.seed()
    assert tl.initial_seed() == s and 0 <= s < 2**64


def test_explicit_seeds_keep_numpys_streams():
    """An int seed draws exactly what np.random.default_rng(seed) draws, as before the global generator."""
    assert tl.randn(5, generator=7).tolist() == np.random.default_rng(7).standard_normal(5, dtype=np.float32).tolist()
    numpys = np.random.default_rng(7).standard_normal(3)
    assert tl.Generator().manual_seed(7).standard_normal(3).tolist() == numpys.tolist()
    rng = np.random.default_rng(1)
    assert tl.random.get_generator(rng) is rng
    layer = nn.Linear(3, 2, seed=4)
    expected = np.random.default_rng(4).uniform(-1 / math.sqrt(3), 1 / math.sqrt(3), (2, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer.weight.data, expected)


def test_generator_api_as_torch():
    g = tl.Generator()
    assert g.initial_seed() == torch.Generator().initial_seed() == 67280421310721
    assert g.manual_seed(3) is g and g.initial_seed() == 3
    state = g.get_state()
    a = g.random(3).tolist()
    assert g.set_state(state).random(3).tolist() == a
    assert tl.manual_seed(2**64 - 1).initial_seed() == torch.manual_seed(2**64 - 1).initial_seed()
    assert tl.manual_seed(-1).initial_seed() == torch.manual_seed(-1).initial_seed()
    torch.seed()


# ---- data --------------------------------------------------------------------------------------------


def test_dataloader_batches_like_torch():
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    y = np.arange(10)
    ours = DataLoader(TensorDataset(tl.from_numpy(x), tl.from_numpy(y)), batch_size=4)
    theirs = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                         batch_size=4)
    assert len(ours) == len(theirs) == 3
    for (xb, yb), (txb, tyb) in zip(ours, theirs, strict=True):
        same_tensor(xb, txb)
        same_tensor(yb, tyb)
    dropped = DataLoader(TensorDataset(tl.from_numpy(x)), batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [b[0].shape for b in dropped] == [(4, 2), (4, 2)]


def test_shuffling_covers_everything_once_and_reshuffles_each_pass():
    loader = DataLoader(TensorDataset(tl.arange(100)), batch_size=32, shuffle=True, generator=tl.Generator())
    first = np.concatenate([b[0].data for b in loader])
    second = np.concatenate([b[0].data for b in loader])
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(100))
    assert first.tolist() != second.tolist() and first.tolist() != list(range(100))
    again = DataLoader(TensorDataset(tl.arange(100)), batch_size=32, shuffle=True, generator=tl.Generator())
    assert np.concatenate([b[0].data for b in again]).tolist() == first.tolist()  # same seed, same order


def test_default_collate_matches_torch():
    Pair = namedtuple("Pair", "a b")
    samples = [(1, 2.0, True, "a", np.ones(2, dtype=np.float32), {"k": np.int32(3)}, Pair(1.0, [1, 2])),
               (3, 4.0, False, "b", np.zeros(2, dtype=np.float32), {"k": np.int32(4)}, Pair(2.0, [3, 4]))]
    ours, theirs = default_collate(samples), torch.utils.data.default_collate(samples)
    assert isinstance(ours, list) and len(ours) == len(theirs)
    for i in (0, 1, 2, 4):
        same_tensor(ours[i], theirs[i])
    assert ours[3] == theirs[3] == ("a", "b")
    same_tensor(ours[5]["k"], theirs[5]["k"])
    assert isinstance(ours[6], Pair)
    same_tensor(ours[6].a, theirs[6].a)
    for o, t in zip(ours[6].b, theirs[6].b, strict=True):
        same_tensor(o, t)
    stacked = default_collate([tl.tensor([1.0, 2.0]), tl.tensor([3.0, 4.0])])
    same_tensor(stacked, torch.utils.data.default_collate([torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])]))


class Squares(Dataset):
    def __len__(self) -> int:
        return 7

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return np.array([i, i * i], dtype=np.float64), i % 2


def test_custom_dataset_with_collate_fn_and_random_split():
    batches = list(DataLoader(Squares(), batch_size=3))
    assert [b[0].shape for b in batches] == [(3, 2), (3, 2), (1, 2)] and batches[0][0].dtype == np.float64
    assert batches[0][1].tolist() == [0, 1, 0]
    sizes = list(DataLoader(Squares(), batch_size=2, collate_fn=len))
    assert sizes == [2, 2, 2, 1]
    parts = random_split(Squares(), [0.5, 0.5], generator=0)
    assert [len(p) for p in parts] == [len(p) for p in torch.utils.data.random_split(range(7), [0.5, 0.5])] == [4, 3]
    seen = sorted(int(p[i][0][0]) for p in parts for i in range(len(p)))
    assert seen == list(range(7)) and isinstance(parts[0], Subset)
    assert [len(p) for p in random_split(Squares(), [2, 5])] == [2, 5]


# ---- Module ----------------------------------------------------------------------------------------


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4, seed=0), nn.ReLU())
        self.head = nn.Linear(4, 2, seed=1)
        self.register_buffer("steps", Tensor(np.zeros(1, dtype=np.int64)))
        self.register_buffer("scale", Tensor(np.ones(2, dtype=np.float32)))

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
        self.head = torch.nn.Linear(4, 2)
        self.register_buffer("steps", torch.zeros(1, dtype=torch.int64))
        self.register_buffer("scale", torch.ones(2))


def test_double_float_and_to_cast_floating_parameters_and_buffers_in_place():
    net, tnet = Net(), TorchNet()
    net(tl.ones(1, 3)).sum().backward()
    assert net.double() is net
    tnet.double()
    for (name, t), (tname, tt) in zip(sorted({**dict(net.named_parameters()), **dict(net.named_buffers())}.items()),
                                      sorted({**dict(tnet.named_parameters()), **dict(tnet.named_buffers())}.items())):
        assert name == tname and t.dtype == DTYPES[tt.dtype], name
    assert net.head.weight.grad.dtype == np.float64
    assert net(tl.ones(1, 3, dtype=np.float64)).dtype == np.float64
    assert net.float().head.weight.dtype == np.float32 and net.steps.dtype == np.int64
    assert net.to(np.float64).scale.dtype == np.float64 and net.to("cpu") is net


def test_load_state_dict_strict_false_returns_torchs_named_tuple():
    net, tnet = Net(), TorchNet()
    state = {k: v for k, v in net.state_dict().items() if k != "head.bias"} | {"extra": np.zeros(1)}
    ours = net.load_state_dict(state, strict=False)
    theirs = tnet.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=False)
    assert ours == (["head.bias"], ["extra"]) and ours.missing_keys == theirs.missing_keys
    assert ours.unexpected_keys == theirs.unexpected_keys and type(ours).__name__ == type(theirs).__name__
    assert net.load_state_dict(net.state_dict()) == ([], [])


def test_load_state_dict_copies_in_place_keeping_dtype():
    net = Net()
    weight = net.head.weight.data
    net.load_state_dict({**net.state_dict(), "head.weight": np.full((2, 4), 0.5, dtype=np.float64)})
    assert net.head.weight.data is weight and weight.dtype == np.float32 and np.all(weight == 0.5)


def test_children_requires_grad_and_zero_grad_as_torch():
    net, tnet = Net(), TorchNet()
    assert [n for n, _ in net.named_children()] == [n for n, _ in tnet.named_children()] == ["body", "head"]
    assert net.body.requires_grad_(False) is net.body
    assert [p.requires_grad for p in net.parameters()] == [False, False, True, True]
    net.requires_grad_()
    net(tl.ones(1, 3)).sum().backward()
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    opt = optim.SGD(net.parameters(), lr=0.1)
    net(tl.ones(1, 3)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert all(not p.grad.data.any() for p in net.parameters())


# ---- nn.utils ----------------------------------------------------------------------------------------


def _grads_pair(seed: int = 0):
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(s) for s in ((3, 4), (5,), (2, 2, 2))]
    ours = [Tensor(np.zeros(g.shape), requires_grad=True, dtype=np.float64) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for o, t, g in zip(ours, theirs, grads):
        o.grad, t.grad = Tensor(g.copy(), dtype=np.float64), torch.from_numpy(g.copy())
    return ours, theirs


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf, "inf", 0.0])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    ours, theirs = _grads_pair()
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    ref = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, Tensor) and total.shape == () and total.dtype == np.float64
    np.testing.assert_allclose(total.item(), ref.item(), rtol=1e-12)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_nonfinite_as_torch():
    ours, theirs = _grads_pair()
    ours[0].grad.data[0, 0] = theirs[0].grad[0, 0] = math.nan
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm of order 2.0 .* non-finite"):
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert math.isnan(nn.utils.clip_grad_norm_(ours, 1.0).item())
    torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert np.isnan(ours[1].grad.data).all() and torch.isnan(theirs[1].grad).all()  # NaN spreads, as in torch


def test_clip_grad_value_and_parameter_vectors_match_torch():
    ours, theirs = _grads_pair()
    nn.utils.clip_grad_value_(ours, 0.5)
    torch.nn.utils.clip_grad_value_(theirs, 0.5)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.grad.data, t.grad.numpy())
    for o, t in zip(ours, theirs):
        o.data[...], o.grad = o.grad.data, None
        t.data.copy_(t.grad)
        t.grad = None
    vec, tvec = nn.utils.parameters_to_vector(ours), torch.nn.utils.parameters_to_vector(theirs)
    same_tensor(vec, tvec.detach())
    (vec * vec.exp()).sum().backward()  # differentiable, as torch's
    (tvec * tvec.exp()).sum().backward()
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-12)
    nn.utils.vector_to_parameters(tl.arange(len(vec), dtype=np.float64), ours)
    torch.nn.utils.vector_to_parameters(torch.arange(len(vec), dtype=torch.float64), theirs)
    for o, t in zip(ours, theirs):
        same_tensor(o, t.detach())


def test_optim_clip_grad_norm_is_nn_utils_one():
    assert optim.clip_grad_norm_ is nn.utils.clip_grad_norm_
