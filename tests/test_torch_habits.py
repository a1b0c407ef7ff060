"""PyTorch habits carry over: the same short programs run here and in torch (float64, values and gradients),
for in-place updates, dtype promotion, dim=/keepdim=, max(dim), size(), transpose, cross-entropy's target
forms, exact GELU and std of constant input; and one test per misuse with the message it gives."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import require_data

import tinygrad_lite as tl
import tinygrad_lite.nn.functional as F
from tinygrad_lite import Tensor, nn, no_grad

torch = pytest.importorskip("torch", reason="PyTorch not installed: pip install -e '.[torch]'")
tF = torch.nn.functional


def both(a: np.ndarray, requires_grad: bool = True) -> tuple[Tensor, torch.Tensor]:
    return Tensor(a, requires_grad=requires_grad), torch.tensor(a, requires_grad=requires_grad)


def same(ours: Tensor, theirs: torch.Tensor, rtol: float = 1e-12) -> None:
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=rtol, atol=1e-14)


# ---- in place ------------------------------------------------------------------------------------------


def test_the_manual_sgd_step_updates_the_weight_as_in_torch():
    rng = np.random.default_rng(0)
    (w, tw), x = both(rng.standard_normal((3, 2))), rng.standard_normal((4, 3))
    for _ in range(3):
        ((Tensor(x) @ w).tanh().sum()).backward()
        (torch.from_numpy(x) @ tw).tanh().sum().backward()
        with no_grad():
            w -= 0.1 * w.grad  # the tutorial's line: must change the model's weight in place
        with torch.no_grad():
            tw -= 0.1 * tw.grad
        w.grad, tw.grad = None, None
        same(w, tw)
    weight = w.data
    with no_grad():
        w *= 2.0
        w.add_(1.0).div_(2.0)
    assert w.data is weight  # the very array changed, as torch changes its storage


def test_data_assignment_keeps_an_array():
    w = Tensor(np.ones(3), requires_grad=True)
    w.grad = Tensor(np.full(3, 2.0))
    w.data -= 0.5 * w.grad  # numpy defers to Tensor here: the setter takes the array back out
    assert isinstance(w.data, np.ndarray) and w.data.tolist() == [0.0, 0.0, 0.0]
    w.data += -0.5 * w.grad  # micrograd's update
    assert isinstance(w.data, np.ndarray) and w.data.tolist() == [-1.0, -1.0, -1.0]
    with pytest.raises(ValueError, match=r"Tensor.data: cannot assign values of shape \(2,\) to a tensor of shape"):
        w.data = np.zeros(2)


def test_in_place_on_a_recorded_tensor_gives_torchs_gradients():
    rng = np.random.default_rng(1)
    (x, tx), (y, ty) = both(rng.standard_normal((2, 3))), both(rng.standard_normal(3))
    for lib, a, b in ((tl, x, y), (torch, tx, ty)):
        h = a * 2
        h += b  # broadcast into h
        h.mul_(a)
        h[0] = b * 3 if lib is torch else b * 3
        h.clamp_(-2.0, 2.0)
        (h * h).sum().backward()
    same(x.grad, tx.grad)
    same(y.grad, ty.grad)


def test_in_place_misuse_errors_match_torch():
    w, tw = both(np.ones(3))
    with pytest.raises(RuntimeError, match=r"add_: a leaf tensor that requires grad .* inside `with no_grad\(\):`"):
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        tw.add_(1.0)
    for lib, a in ((tl, w), (torch, tw)):  # a tensor saved for backward, then changed in place
        b = (torch.ones(3, dtype=torch.float64) if lib is torch else Tensor(np.ones(3))).requires_grad_()
        out = (a * b).sum()
        with (torch.no_grad() if lib is torch else no_grad()):
            b.mul_(2.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation|modified by an in-place operation"):
            out.backward()
    i = Tensor(np.arange(3))
    with pytest.raises(RuntimeError, match="dtype float32, which cannot be stored in place in a tensor of dtype int64"):
        i += 0.5
    with pytest.raises(RuntimeError, match=r"add_: the result has shape \(2, 3\), which does not fit in place"):
        Tensor(np.ones(3)).add_(Tensor(np.ones((2, 3))))


def test_a_step_between_forward_and_backward_is_refused():
    model = nn.Linear(2, 1, seed=0)
    opt = tl.optim.SGD(model.parameters(), lr=0.1)
    loss = model(Tensor(np.ones((1, 2), dtype=np.float32))).sum()
    opt.step()  # no grads yet: nothing changes
    loss.backward()
    opt.step()
    stale = model(Tensor(np.ones((1, 2), dtype=np.float32))).sum()
    stale.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="linear was modified by an in-place operation"):
        stale.backward()


# ---- dtypes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("left, right", [
    ("f32", "f64"), ("f64", "f32"), ("f32", 2.5), ("i64", 2.5), ("i64", 2), ("i32", "i64"), ("f32", "i64"),
    ("bool", "f32"), ("f32", "f64-0d"), ("f64-0d", "f32"), ("i64", "f32-0d"), ("f64-0d", 3)])
def test_binary_ops_promote_as_torch(left, right):
    def make(spec, lib):
        if not isinstance(spec, str):
            return spec
        dtype = {"f32": np.float32, "f64": np.float64, "i64": np.int64, "i32": np.int32, "bool": np.bool_}[
            spec.split("-")[0]]
        a = np.asarray(3 if spec.endswith("0d") else [1, 0, 2], dtype=dtype)
        return torch.from_numpy(a.copy()) if lib is torch else Tensor(a)

    ops = [lambda a, b: a + b, lambda a, b: a * b] + ([lambda a, b: b - a] if "bool" not in (left, right) else [])
    for op in ops:  # (torch refuses `-` on bool tensors)
        same(op(make(left, tl), make(right, tl)), op(make(left, torch), make(right, torch)))


def test_a_layer_refuses_another_float_dtype_and_names_the_fix():
    layer = nn.Linear(3, 2, seed=0)
    x = Tensor(np.ones((1, 3)))  # float64 data, float32 weights
    with pytest.raises(TypeError, match=r"linear: the input is float64 but the weight is float32.*x.float\(\).*"
                                        r"model.double\(\)"):
        layer(x)
    assert layer(x.float()).dtype == np.float32
    assert layer.double()(x).dtype == np.float64


# ---- names and arguments ----------------------------------------------------------------------------------


def test_reductions_take_dim_and_keepdim_as_torch():
    rng = np.random.default_rng(2)
    x, tx = both(rng.standard_normal((2, 3, 4)))
    for ours, theirs in (
            (x.sum(dim=1), tx.sum(dim=1)), (x.sum(1, True), tx.sum(1, True)),
            (x.mean(dim=(0, 2), keepdim=True), tx.mean(dim=(0, 2), keepdim=True)),
            (x.softmax(dim=0), tx.softmax(dim=0)), (x.log_softmax(1), tx.log_softmax(1)),
            (x.logsumexp(dim=-1), tx.logsumexp(dim=-1)), (x.var(1), tx.var(1)), (x.std(dim=2, correction=0),
                                                                                  tx.std(dim=2, correction=0)),
            (x.amax(dim=(1, 2)), tx.amax(dim=(1, 2))), (x.sum(axis=1, keepdims=True), tx.sum(dim=1, keepdim=True))):
        same(ours, theirs)
    with pytest.raises(TypeError, match="sum: give dim= or axis=, not both"):
        x.sum(dim=1, axis=1)


def test_any_and_all_reduce_to_bool_as_torch():
    data = np.array([[[0.0, 1.0], [0.0, 0.0]], [[2.0, 3.0], [0.0, -1.0]]])
    x, tx = Tensor(data), torch.from_numpy(data)
    for name in ("any", "all"):
        ours, theirs = getattr(x, name), getattr(tx, name)
        for result, expected in ((ours(), theirs()), (ours(dim=1), theirs(dim=1)), (ours(2, True), theirs(2, True)),
                                 (ours(axis=0, keepdims=True), theirs(dim=0, keepdim=True)),
                                 (ours(dim=(0, 2)), theirs(dim=(0, 2)))):
            assert result.dtype == np.bool_ and result.shape == tuple(expected.shape)
            np.testing.assert_array_equal(result.data, expected.numpy())
    with pytest.raises(TypeError, match="any: give dim= or axis=, not both"):
        x.any(dim=1, axis=1)


def test_max_with_dim_returns_values_and_indices_as_torch():
    x, tx = both(np.array([[1.0, 3.0, 3.0], [2.0, 0.5, 2.0]]))
    values, indices = x.max(dim=1)
    tvalues, tindices = tx.max(dim=1)
    same(values, tvalues)
    np.testing.assert_array_equal(indices.data, tindices.numpy())
    assert x.max(1).values is not None and x.min(dim=0, keepdim=True).indices.shape == (1, 3)
    (values * Tensor([1.0, 2.0])).sum().backward()
    (tvalues * torch.tensor([1.0, 2.0], dtype=torch.float64)).sum().backward()
    same(x.grad, tx.grad)  # the gradient goes to the first maximum only
    same(x.max(), tx.max())
    same(x.argmax(dim=1), tx.argmax(dim=1))


def test_size_dim_transpose_and_t_as_torch():
    x, tx = both(np.zeros((2, 3, 4)))
    assert x.size() == tuple(tx.size()) and x.size(1) == tx.size(1) == 3 and x.dim() == tx.dim() == 3
    assert x.transpose(0, 2).shape == tuple(tx.transpose(0, 2).shape) and x.mT.shape == tuple(tx.mT.shape)
    m, tm = both(np.zeros((2, 5)))
    assert m.t().shape == tuple(tm.t().shape) == (5, 2)
    with pytest.raises(TypeError, match="missing 2 required positional arguments: 'dim0' and 'dim1'"):
        x.transpose()
    with pytest.raises(ValueError, match=r"t: expects a tensor with at most 2 dims, got shape \(2, 3, 4\)"):
        x.t()


def test_a_mistyped_keyword_names_the_op_and_the_keyword_it_meant():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"^sum\(\) got an unexpected keyword 'dims'; did you mean 'dim'\?$"):
        x.sum(dims=1)
    with pytest.raises(TypeError, match=r"^argmax\(\) got an unexpected keyword 'dimension'; did you mean 'dim'\?$"):
        x.argmax(dimension=1)
    with pytest.raises(TypeError, match=r"^softmax\(\) got an unexpected keyword 'keep'"):
        x.softmax(keep=True)


CE_OPTIONS = [{}, {"reduction": "sum"}, {"reduction": "none"}, {"label_smoothing": 0.15}, {"weight": True},
              {"ignore_index": 2}, {"weight": True, "label_smoothing": 0.3, "ignore_index": 1}]


@pytest.mark.parametrize("targets, options", [(t, o) for t in ("indices", "one-hot", "soft") for o in CE_OPTIONS
                                              if t == "indices" or "ignore_index" not in o])  # (indices only, as torch)
def test_cross_entropy_target_forms_match_torch(options, targets):
    rng = np.random.default_rng(3)
    logits, tlogits = both(rng.standard_normal((5, 4)))
    if targets == "indices":
        t = rng.integers(0, 4, 5)
        t[0] = 0
        ours_t, theirs_t = t, torch.from_numpy(t)
    else:
        q = np.eye(4)[rng.integers(0, 4, 5)] if targets == "one-hot" else rng.dirichlet(np.ones(4), 5)
        ours_t, theirs_t = Tensor(q), torch.from_numpy(q)
    opts = dict(options)
    if opts.pop("weight", False):
        w = rng.uniform(0.5, 2.0, 4)
        opts["weight"] = w
    topts = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in opts.items()}
    loss, tloss = F.cross_entropy(logits, ours_t, **opts), tF.cross_entropy(tlogits, theirs_t, **topts)
    same(loss, tloss, rtol=1e-10)
    upstream = rng.standard_normal(loss.shape)
    loss.backward(upstream)
    tloss.backward(torch.from_numpy(upstream))
    same(logits.grad, tlogits.grad, rtol=1e-10)
    if not isinstance(ours_t, np.ndarray):
        module_opts = {k: Tensor(v) if isinstance(v, np.ndarray) else v for k, v in opts.items()}
        modules = nn.CrossEntropyLoss(**module_opts)(logits, ours_t)
        same(modules, tloss, rtol=1e-10)


def test_gelu_exact_by_default_and_tanh_on_request_as_torch():
    rng = np.random.default_rng(4)
    x, tx = both(rng.standard_normal(50) * 3)
    same(nn.GELU()(x), torch.nn.GELU()(tx), rtol=1e-13)
    same(F.gelu(x, approximate="tanh"), tF.gelu(tx, approximate="tanh"), rtol=1e-13)
    nn.GELU()(x).sum().backward()
    torch.nn.GELU()(tx).sum().backward()
    same(x.grad, tx.grad, rtol=1e-13)


def test_erf_is_accurate_to_float64_round_off():
    x = np.concatenate([np.linspace(-7, 7, 20001), np.geomspace(1e-300, 1e-3, 50), [0.0, -0.0, 30.0, np.inf]])
    ours = Tensor(x).erf().data
    exact = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(ours, exact, rtol=4e-16, atol=0)
    assert Tensor(np.array([-np.inf])).erf().item() == -1.0 and math.isnan(Tensor(np.array([np.nan])).erf().item())


def test_std_and_var_of_constant_input_are_exact_as_torch():
    column = np.broadcast_to(np.array([[0.1], [0.7]]), (2, 1000)) * 3.3  # constant along dim 1, not representable
    x, tx = both(np.ascontiguousarray(column))
    for ours, theirs in ((x.std(dim=1), tx.std(dim=1)), (x.var(dim=1), tx.var(dim=1))):
        assert np.all(ours.data == 0) and np.all(theirs.detach().numpy() == 0)
    x.std(dim=1).sum().backward()
    tx.std(dim=1).sum().backward()
    assert np.all(x.grad.data == 0) and np.all(tx.grad.numpy() == 0)


# ---- the three ways to write SGD -------------------------------------------------------------------------


def test_manual_no_grad_micrograd_and_optim_sgd_train_the_mnist_mlp_alike():
    """The tutorial's `w -= lr * w.grad` under no_grad, micrograd's `p.data += -lr * p.grad` and optim.SGD
    are one update: the same weights after the same steps, and the same accuracy, on a small MNIST subset."""
    from models.mlp import MLP
    from tinygrad_lite.datasets import load_mnist

    x_train, y_train, x_test, y_test = load_mnist(require_data("mnist").parent, download=False)
    x_train, y_train, x_test, y_test = x_train[:5000], y_train[:5000], x_test[:1000], y_test[:1000]

    def train(update: str) -> tuple[list[np.ndarray], float]:
        model = MLP([784, 30, 10], activation="relu", seed=0)
        opt = tl.optim.SGD(model.parameters(), lr=0.3)
        for _ in range(2):
            for i in range(0, len(x_train), 50):
                loss = F.cross_entropy(model(Tensor(x_train[i:i + 50])), y_train[i:i + 50])
                model.zero_grad()
                loss.backward()
                if update == "optim":
                    opt.step()
                for p in model.parameters() if update != "optim" else ():
                    if update == "no_grad":
                        with no_grad():
                            p -= 0.3 * p.grad
                    else:
                        p.data += -0.3 * p.grad
        with no_grad():
            accuracy = float((model(Tensor(x_test)).argmax(dim=1).data == y_test).mean())
        return [p.data.copy() for p in model.parameters()], accuracy

    runs = {update: train(update) for update in ("no_grad", "micrograd", "optim")}
    weights, accuracy = runs["optim"]
    assert accuracy > 0.85  # well above chance (0.1): the point is that the three agree
    for update, (w, acc) in runs.items():
        assert acc == accuracy, update
        for a, b in zip(w, weights):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=update)
