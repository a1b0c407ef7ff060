"""Second derivatives against PyTorch: grad of grad through a chain of every op kind, a gradient penalty,
cross-entropy and layer norm twice differentiated, Hessians, Hessian-vector and Jacobian-vector products.
Also the semantics of autograd.grad and backward(create_graph=True), and memory with create_graph off."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import tinygrad_lite as tl
import tinygrad_lite.nn.functional as F
from tinygrad_lite import Tensor, autograd
from tinygrad_lite.tensor import graph_order

torch = pytest.importorskip("torch", reason="PyTorch not installed: pip install -e '.[torch]'")
tF = torch.nn.functional


def pair(rng: np.random.Generator, *shape: int) -> tuple[Tensor, torch.Tensor]:
    a = rng.standard_normal(shape)
    return Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def chain(lib, x, w, b, gamma, targets):
    """One program through every op kind; `lib` is tinygrad_lite or torch, written once for both."""
    is_torch = lib is torch
    h = x @ w + b  # matmul, broadcast add
    h = h.tanh() * 0.5 + (h * 0.3).exp() - (h * h + 1).log() + (h * h + 2).sqrt() / 3  # unary and binary
    h = h.sigmoid() * h.relu() + (h ** 3) * 0.1 - h.abs() * 0.05  # activations, pow, abs
    gelu = tF.gelu if is_torch else F.gelu
    h = gelu(h) + gelu(h, approximate="tanh")
    h = h.reshape(4, 3, 2).permute(2, 0, 1).reshape(2, 12)  # movement
    h = (lib.cat([h[:, :5], h[:, 5:] * 2], dim=1) if is_torch else Tensor.cat([h[:, :5], h[:, 5:] * 2], dim=1))
    h = h.maximum(h * 0.7) + h.clamp(-1.0, 1.0) * 0.1  # selection
    mask = np.arange(24).reshape(2, 12) % 5 == 0
    m = torch.from_numpy(mask) if is_torch else mask
    h = h.masked_fill(m, 0.0)
    norm = (tF.layer_norm(h, (12,), gamma) if is_torch else F.layer_norm(h, 12, gamma))
    spread = h.var(dim=1, keepdim=True) + h.std(dim=0).sum()  # reductions
    logits = norm * spread + h.softmax(dim=1) + h.log_softmax(dim=0) + h.logsumexp(dim=1, keepdim=True) / 10
    logits = logits + h.amax(dim=1, keepdim=True) * 0.1 + h.mean()
    ce = tF.cross_entropy if is_torch else F.cross_entropy
    return ce(logits, targets) + ce(logits, targets, label_smoothing=0.1) * 0.5


def test_grad_of_grad_through_every_op_kind_matches_torch():
    rng = np.random.default_rng(0)
    (x, tx), (w, tw), (b, tb) = pair(rng, 4, 5), pair(rng, 5, 6), pair(rng, 6)
    gamma, tgamma = pair(rng, 12)
    targets = rng.integers(0, 12, 2)
    ours = chain(tl, x, w, b, gamma, targets)
    theirs = chain(torch, tx, tw, tb, tgamma, torch.from_numpy(targets))
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10)
    gx, gw = autograd.grad(ours, [x, w], create_graph=True)
    tgx, tgw = torch.autograd.grad(theirs, [tx, tw], create_graph=True)
    np.testing.assert_allclose(gx.data, tgx.detach().numpy(), rtol=1e-9, atol=1e-12)
    penalty, tpenalty = (gx * gx).sum() + (gw * gw).sum(), (tgx * tgx).sum() + (tgw * tgw).sum()
    penalty.backward()
    tpenalty.backward()
    for ours_t, theirs_t in ((x, tx), (w, tw), (b, tb), (gamma, tgamma)):
        np.testing.assert_allclose(ours_t.grad.data, theirs_t.grad.numpy(), rtol=1e-8, atol=1e-11)


def test_gradient_penalty_of_an_mlp_matches_torch():
    """d/dw ||dL/dx||², as in WGAN-GP: the gradient with respect to the input, then its norm differentiated."""
    rng = np.random.default_rng(1)
    model = tl.nn.Sequential(tl.nn.Linear(3, 8, seed=0), tl.nn.Tanh(), tl.nn.Linear(8, 1, seed=1)).double()
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    x, tx = pair(rng, 5, 3)
    (gx,) = autograd.grad(model(x).sum(), [x], create_graph=True)
    (tgx,) = torch.autograd.grad(tmodel(tx).sum(), [tx], create_graph=True)
    ((gx * gx).sum(dim=1).sqrt() - 1).square().mean().backward()
    ((tgx * tgx).sum(dim=1).sqrt() - 1).square().mean().backward()
    for (name, p), tp in zip(model.named_parameters(), tmodel.parameters()):
        if tp.grad is None:  # the last bias does not move dL/dx: no gradient, in both
            assert p.grad is None, name
            continue
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.2}, {"reduction": "sum"}, {"weight": "w"},
                                     {"probabilities": True}])
def test_cross_entropy_twice_differentiated_matches_torch(options):
    rng = np.random.default_rng(2)
    logits, tlogits = pair(rng, 4, 5)
    options = dict(options)
    if options.pop("probabilities", False):
        target = rng.dirichlet(np.ones(5), 4)
        ours_t, theirs_t = Tensor(target), torch.from_numpy(target)
    else:
        target = rng.integers(0, 5, 4)
        ours_t, theirs_t = target, torch.from_numpy(target)
    if options.get("weight") == "w":
        options["weight"] = rng.uniform(0.5, 2, 5)
    t_options = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    v = rng.standard_normal((4, 5))
    (g,) = autograd.grad(F.cross_entropy(logits, ours_t, **options), [logits], create_graph=True)
    (tg,) = torch.autograd.grad(tF.cross_entropy(tlogits, theirs_t, **t_options), [tlogits], create_graph=True)
    np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=1e-10, atol=1e-13)
    (hv,) = autograd.grad((g * Tensor(v)).sum(), [logits])
    (thv,) = torch.autograd.grad((tg * torch.from_numpy(v)).sum(), [tlogits])
    np.testing.assert_allclose(hv.data, thv.numpy(), rtol=1e-9, atol=1e-12)


def test_layer_norm_twice_differentiated_matches_torch():
    rng = np.random.default_rng(3)
    (x, tx), (w, tw), (b, tb) = pair(rng, 3, 6), pair(rng, 6), pair(rng, 6)
    up = rng.standard_normal((3, 6))
    gs = autograd.grad((F.layer_norm(x, 6, w, b) * Tensor(up)).sum(), [x, w], create_graph=True)
    tgs = torch.autograd.grad((tF.layer_norm(tx, (6,), tw, tb) * torch.from_numpy(up)).sum(), [tx, tw],
                              create_graph=True)
    (gs[0].square().sum() + gs[1].sum()).backward()
    (tgs[0].square().sum() + tgs[1].sum()).backward()
    for ours_t, theirs_t in ((x, tx), (w, tw)):
        np.testing.assert_allclose(ours_t.grad.data, theirs_t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_hessian_hvp_and_jvp_match_torch():
    rng = np.random.default_rng(4)
    x0, v = rng.standard_normal(5), rng.standard_normal(5)
    a = rng.standard_normal((5, 5))

    def f(x):
        return ((x @ a).tanh() * x).sum() + (x ** 4).sum() / 12

    def tf(x):
        return ((x @ torch.from_numpy(a)).tanh() * x).sum() + (x ** 4).sum() / 12

    h = tl.hessian(f)(x0)
    th = torch.autograd.functional.hessian(tf, torch.from_numpy(x0)).numpy()
    assert h.shape == (5, 5)
    np.testing.assert_allclose(h, th, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tl.hvp(f)(x0, v), th @ v, rtol=1e-10, atol=1e-12)
    value, jv = tl.jvp(lambda x: (x @ a).tanh())(x0, v)
    _, tjv = torch.func.jvp(lambda x: (x @ torch.from_numpy(a)).tanh(), (torch.from_numpy(x0),),
                            (torch.from_numpy(v),))
    np.testing.assert_allclose(jv, tjv.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(value, np.tanh(x0 @ a), rtol=1e-12)


def test_hessian_of_cross_entropy_is_diag_p_minus_ppt():
    z = np.array([0.3, -1.2, 2.0, 0.1])
    p = np.exp(z) / np.exp(z).sum()
    h = tl.hessian(lambda logits: F.cross_entropy(logits.reshape(1, 4), np.array([2])))(z)
    np.testing.assert_allclose(h, np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-15)


def test_autograd_grad_semantics():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True, dtype=np.float64)
    y = Tensor([0.5], requires_grad=True, dtype=np.float64)
    out = (x * x).sum()
    (gx,) = autograd.grad(out, x, retain_graph=True)
    np.testing.assert_array_equal(gx.data, [2, 4, 6])
    assert x.grad is None and not gx.requires_grad  # nothing accumulated, no graph without create_graph
    with pytest.raises(RuntimeError, match=r"inputs\[1\].*not used.*allow_unused=True"):
        autograd.grad(out, [x, y], retain_graph=True)
    assert autograd.grad(out, [x, y], allow_unused=True)[1] is None
    with pytest.raises(RuntimeError, match="second time"):
        autograd.grad(out, x)
        autograd.grad(out, x)
    a, b = (x * 2).sum(), (x * 3).sum()  # several outputs, with their grad_outputs
    (g,) = autograd.grad([a, b], [x], grad_outputs=[Tensor(1.0, dtype=np.float64), Tensor(2.0, dtype=np.float64)])
    np.testing.assert_array_equal(g.data, [8, 8, 8])


def test_backward_create_graph_leaves_differentiable_grads():
    x = Tensor([1.0, -2.0], requires_grad=True, dtype=np.float64)
    (x ** 3).sum().backward(create_graph=True)
    first = x.grad
    assert first.requires_grad
    np.testing.assert_array_equal(first.data, [3, 12])
    x.grad = None
    first.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [6, -12])  # d/dx sum(3x²) = 6x


def test_create_graph_off_still_frees_every_saved_value():
    x = Tensor(np.ones((4, 4)), requires_grad=True)
    loss = (x.exp() * x).relu().sum()
    functions = [t._ctx for t in graph_order([loss]) if t._ctx is not None]
    loss.backward()
    gc.collect()
    assert all(f.released and vars(f) == {} for f in functions)
