"""Values and gradients of every op, and of compositions, against PyTorch (float64)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import broadcastable_shapes, shapes

from tinygrad_lite import Tensor

torch = pytest.importorskip("torch", reason="PyTorch not installed: pip install -e '.[torch]'")
torch.set_num_threads(1)
tF = torch.nn.functional


def _inputs(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    if kind == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if kind == "distinct":  # no ties, nothing near 0 (kinks of abs/relu/max/clip)
        n = math.prod(shape)
        return ((rng.permutation(n) - n // 2) * 0.15 + 0.075).reshape(shape)
    return rng.standard_normal(shape)


def helper_test_op(shapes: list[tuple[int, ...]], ours: Callable, theirs: Callable | None = None,
                   kind: str = "any", seed: int = 0, rtol: float = 1e-9, atol: float = 1e-12) -> None:
    """Run `ours` on Tensors and `theirs` (default: the same function) on torch tensors built from the
    same random float64 inputs; compare the outputs, then the gradients for one random upstream gradient."""
    theirs = theirs or ours
    rng = np.random.default_rng(seed)
    arrays = [_inputs(rng, s, kind) for s in shapes]
    xs = [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = ours(*xs), theirs(*ts)
    assert out.shape == tuple(ref.shape), (out.shape, tuple(ref.shape))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    ref.backward(torch.from_numpy(upstream))
    for i, (x, t) in enumerate(zip(xs, ts)):
        want = t.grad.numpy() if t.grad is not None else np.zeros(x.shape)
        got = x.grad.data if x.grad is not None else np.zeros(x.shape)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")


def same(fn):
    return fn, None


# id: (shapes, ours, theirs or None when the same code runs in both, input kind)
OPS = {
    # arithmetic with broadcasting and scalars on either side
    "add": ([(3, 1, 4), (5, 1)], *same(lambda a, b: a + b), "any"),
    "sub": ([(4,), (2, 3, 4)], *same(lambda a, b: a - b), "any"),
    "mul": ([(2, 1), (1, 3)], *same(lambda a, b: a * b), "any"),
    "div": ([(2, 3), (3,)], *same(lambda a, b: a / b), "positive"),
    "pow": ([(2, 3), (2, 1)], *same(lambda a, b: a ** b), "positive"),
    "pow-const": ([(3, 4)], *same(lambda a: a ** 3 + a ** 0.5 + a ** -1.5), "positive"),
    "reflected": ([(3, 4)], *same(lambda a: 2.0 - a + 3 * a - 1.5 / a + 2 ** a), "positive"),
    "neg": ([(2, 3)], *same(lambda a: -a), "any"),
    # unary math
    "exp": ([(2, 3)], *same(lambda a: a.exp()), "any"),
    "log": ([(2, 3)], *same(lambda a: a.log()), "positive"),
    "sqrt": ([(2, 3)], *same(lambda a: a.sqrt()), "positive"),
    "abs": ([(2, 3)], *same(lambda a: a.abs()), "distinct"),
    "tanh": ([(2, 3)], *same(lambda a: a.tanh()), "any"),
    "sigmoid": ([(2, 3)], *same(lambda a: a.sigmoid()), "any"),
    "relu": ([(2, 3)], *same(lambda a: a.relu()), "distinct"),
    "gelu": ([(4, 5)], lambda a: a.gelu(), lambda a: tF.gelu(a), "any"),
    "gelu-tanh": ([(4, 5)], lambda a: a.gelu(approximate="tanh"), lambda a: tF.gelu(a, approximate="tanh"), "any"),
    "erf": ([(4, 5)], lambda a: (a * 2).erf(), lambda a: torch.erf(a * 2), "any"),
    "square": ([(2, 3)], *same(lambda a: a.square()), "any"),
    "clip": ([(4, 5)], lambda a: a.clip(-0.6, 0.9), lambda a: a.clamp(-0.6, 0.9), "distinct"),
    "clamp-min": ([(4, 5)], lambda a: a.clamp(min=0.3), lambda a: a.clamp(min=0.3), "distinct"),
    "maximum": ([(3, 4), (4,)], *same(lambda a, b: a.maximum(b - 0.075)), "distinct"),
    "minimum": ([(3, 4), (3, 1)], *same(lambda a, b: a.minimum(b - 0.075)), "distinct"),
    # reductions
    "sum-all": ([(2, 3, 4)], *same(lambda a: a.sum()), "any"),
    "sum-axis": ([(2, 3, 4)], lambda a: a.sum(axis=(0, -1), keepdims=True), lambda a: a.sum(dim=(0, -1), keepdim=True),
                 "any"),
    "mean": ([(2, 3, 4)], lambda a: a.mean(axis=-2), lambda a: a.mean(dim=-2), "any"),
    "amax": ([(3, 4, 2)], lambda a: a.amax(axis=(0, 2)), lambda a: a.amax(dim=(0, 2)), "distinct"),
    "amin": ([(3, 4)], lambda a: a.amin(axis=1, keepdims=True), lambda a: a.amin(dim=1, keepdim=True), "distinct"),
    "max-all": ([(3, 4)], lambda a: a.max(), lambda a: a.amax(), "distinct"),
    "var": ([(3, 5)], lambda a: a.var(axis=1), lambda a: a.var(dim=1), "any"),
    "var-correction0": ([(3, 5, 2)], lambda a: a.var(axis=(0, 2), correction=0, keepdims=True),
                        lambda a: a.var(dim=(0, 2), correction=0, keepdim=True), "any"),
    "var-all": ([(3, 5)], *same(lambda a: a.var()), "any"),
    "std": ([(4, 3)], lambda a: a.std(axis=0), lambda a: a.std(dim=0), "any"),
    "logsumexp": ([(3, 4, 5)], lambda a: a.logsumexp(axis=(1, 2)), lambda a: torch.logsumexp(a, dim=(1, 2)), "any"),
    "softmax": ([(3, 4, 5)], lambda a: a.softmax(axis=1), lambda a: a.softmax(dim=1), "any"),
    "log_softmax": ([(3, 5)], lambda a: a.log_softmax(axis=-1), lambda a: a.log_softmax(dim=-1), "any"),
    # matmul layouts
    "matmul-1x1": ([(4,), (4,)], *same(lambda a, b: a @ b), "any"),
    "matmul-1x2": ([(4,), (4, 3)], *same(lambda a, b: a @ b), "any"),
    "matmul-2x1": ([(3, 4), (4,)], *same(lambda a, b: a @ b), "any"),
    "matmul-2x2": ([(3, 4), (4, 5)], *same(lambda a, b: a.matmul(b)), "any"),
    "matmul-batched": ([(2, 3, 4), (2, 4, 5)], *same(lambda a, b: a @ b), "any"),
    "matmul-broadcast-batch": ([(2, 1, 3, 4), (5, 4, 2)], *same(lambda a, b: a @ b), "any"),
    "matmul-batch-x-2d": ([(2, 3, 3, 4), (4, 5)], *same(lambda a, b: a @ b), "any"),
    "matmul-1d-x-batch": ([(4,), (2, 4, 5)], *same(lambda a, b: a @ b), "any"),
    "matmul-batch-x-1d": ([(2, 3, 4), (4,)], *same(lambda a, b: a @ b), "any"),
    # movement
    "reshape": ([(2, 3, 4)], *same(lambda a: a.reshape(4, -1) * 2), "any"),
    "view": ([(2, 6)], *same(lambda a: a.view(3, 4).exp()), "any"),
    "flatten": ([(2, 3, 4)], lambda a: a.flatten(1, -1).exp(), lambda a: a.flatten(1, -1).exp(), "any"),
    "unsqueeze-squeeze": ([(2, 1, 3)], *same(lambda a: a.unsqueeze(-1).squeeze(1).exp()), "any"),
    "squeeze-non-1-axis": ([(2, 1, 3)], *same(lambda a: a.squeeze(0).squeeze(-2).exp()), "any"),
    "permute": ([(2, 3, 4)], *same(lambda a: a.permute(2, 0, 1).exp()), "any"),
    "transpose": ([(2, 3, 4)], *same(lambda a: a.transpose(-1, 0).exp()), "any"),
    "T": ([(3, 4)], *same(lambda a: a.T.exp()), "any"),
    "expand": ([(3, 1)], *same(lambda a: a.expand(2, 3, 4).exp()), "any"),
    "broadcast_to": ([(1, 4)], lambda a: a.broadcast_to((3, 4)).exp(), lambda a: a.broadcast_to((3, 4)).exp(), "any"),
    "getitem-basic": ([(4, 5, 3)], *same(lambda a: a[1:, None, ::2, -1].exp()), "any"),
    "getitem-ellipsis": ([(4, 5, 3)], *same(lambda a: a[..., 1:].exp()), "any"),
    "getitem-repeats": ([(4, 3)], lambda a: a[np.array([0, 2, 2, 0, 3])].exp(),
                        lambda a: a[torch.tensor([0, 2, 2, 0, 3])].exp(), "any"),
    "getitem-pairs": ([(4, 3)], lambda a: a[np.array([0, 1, 1]), np.array([2, 2, 0])].exp(),
                      lambda a: a[torch.tensor([0, 1, 1]), torch.tensor([2, 2, 0])].exp(), "any"),
    "getitem-mask": ([(4, 3)], lambda a: a[a.data > 0].exp(), lambda a: a[a.detach() > 0].exp(), "distinct"),
    "split": ([(5, 3)], lambda a: Tensor.cat([p * (i + 1) for i, p in enumerate(a.split(2, axis=0))], axis=0),
              lambda a: torch.cat([p * (i + 1) for i, p in enumerate(torch.split(a, 2, dim=0))], dim=0), "any"),
    "chunk": ([(3, 7)], lambda a: Tensor.cat([p * (i + 1) for i, p in enumerate(a.chunk(3, axis=-1))], axis=-1),
              lambda a: torch.cat([p * (i + 1) for i, p in enumerate(torch.chunk(a, 3, dim=-1))], dim=-1), "any"),
    "cat": ([(2, 3), (2, 1), (2, 2)], lambda *a: Tensor.cat(a, axis=-1).exp(),
            lambda *a: torch.cat(a, dim=-1).exp(), "any"),
    "stack": ([(2, 3), (2, 3)], lambda *a: Tensor.stack(a, axis=1).exp(), lambda *a: torch.stack(a, dim=1).exp(),
              "any"),
    "where": ([(3, 4), (4,)], lambda a, b: Tensor.where(a.data > 0, a, b),
              lambda a, b: torch.where(a.detach() > 0, a, b), "any"),
    "masked_fill": ([(3, 4)], lambda a: a.masked_fill(np.eye(3, 4, dtype=bool), -2.0) * a,
                    lambda a: a.masked_fill(torch.eye(3, 4, dtype=torch.bool), -2.0) * a, "any"),
    "to": ([(3,)], lambda a: a.float().double() * 2, lambda a: a.float().double() * 2, "any"),
}


@pytest.mark.parametrize("case", sorted(OPS))
@pytest.mark.parametrize("seed", [0, 1])
def test_op_matches_torch(case, seed):
    shapes, ours, theirs, kind = OPS[case]
    # a float32 round trip can only agree to float32 precision
    tol = {"rtol": 1e-6, "atol": 1e-7} if case == "to" else {}
    helper_test_op(shapes, ours, theirs, kind=kind, seed=seed, **tol)


# ---- compositions ---------------------------------------------------------------------------------


def _causal_attention(q, k, v, mask_fill, softmax, scale):
    """(B, H, T, D) attention written from primitives, with a causal mask filled with -inf."""
    T = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)) * scale
    return softmax(mask_fill(scores, np.triu(np.ones((T, T), dtype=bool), k=1))) @ v


def test_masked_causal_attention():
    B, H, T, D = 2, 3, 5, 4
    helper_test_op(
        [(B, H, T, D)] * 3,
        lambda q, k, v: _causal_attention(q, k, v, lambda s, m: s.masked_fill(m, -np.inf), lambda s: s.softmax(-1),
                                          D ** -0.5),
        lambda q, k, v: _causal_attention(q, k, v, lambda s, m: s.masked_fill(torch.from_numpy(m), -np.inf),
                                          lambda s: s.softmax(-1), D ** -0.5))


def test_attention_with_head_split_and_merge():
    B, T, C, H = 2, 4, 6, 2

    def ours(x, w):
        q, k, v = (x @ w).split(C, axis=-1)
        heads = [t.reshape(B, T, H, C // H).transpose(1, 2) for t in (q, k, v)]
        out = _causal_attention(*heads, lambda s, m: s.masked_fill(m, -np.inf), lambda s: s.softmax(-1), 0.5)
        return out.transpose(1, 2).reshape(B, T, C)

    def theirs(x, w):
        q, k, v = (x @ w).split(C, dim=-1)
        heads = [t.reshape(B, T, H, C // H).transpose(1, 2) for t in (q, k, v)]
        out = _causal_attention(*heads, lambda s, m: s.masked_fill(torch.from_numpy(m), -np.inf),
                                lambda s: s.softmax(-1), 0.5)
        return out.transpose(1, 2).reshape(B, T, C)

    helper_test_op([(B, T, C), (C, 3 * C)], ours, theirs)


def test_mlp_layer_with_cross_entropy_from_primitives():
    targets = np.array([1, 0, 3, 2, 2])

    def ours(x, w1, b1, w2):
        logits = (x @ w1 + b1).gelu(approximate="tanh") @ w2
        return -logits.log_softmax(axis=-1)[np.arange(5), targets].mean()

    def theirs(x, w1, b1, w2):
        logits = tF.gelu(x @ w1 + b1, approximate="tanh") @ w2
        return tF.cross_entropy(logits, torch.from_numpy(targets))

    helper_test_op([(5, 6), (6, 8), (8,), (8, 4)], ours, theirs)


def test_relu_mlp_with_mse():
    helper_test_op([(4, 3), (3, 5), (5,), (5, 2), (4, 2)],
                   *same(lambda x, w1, b1, w2, y: (((x @ w1 + b1).relu() @ w2 - y) ** 2).mean()))


def test_logsumexp_written_by_hand():
    def by_hand(x):
        m = x.amax(axis=-1, keepdims=True).detach()
        return ((x - m).exp().sum(axis=-1, keepdims=True).log() + m).squeeze(-1)

    helper_test_op([(3, 6)], by_hand, lambda x: torch.logsumexp(x, dim=-1))
    helper_test_op([(3, 6)], lambda x: x.logsumexp(axis=-1), lambda x: torch.logsumexp(x, dim=-1))


def test_layernorm_from_var_with_correction():
    def ours(x, g, b):
        return (x - x.mean(-1, keepdims=True)) / (x.var(-1, keepdims=True, correction=0) + 1e-5).sqrt() * g + b

    helper_test_op([(4, 6), (6,), (6,)], ours, lambda x, g, b: tF.layer_norm(x, (6,), g, b))
    helper_test_op([(4, 6)], lambda x: x.var(axis=0, correction=2), lambda x: x.var(dim=0, correction=2))


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_max_with_ties_matches_amax(axis):
    data = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, 5.0, -1.0]])
    x = Tensor(data, requires_grad=True, dtype=np.float64)
    t = torch.tensor(data, requires_grad=True)
    dim = () if axis is None else axis
    out, ref = x.amax(axis=axis), t.amax(dim=dim)
    np.testing.assert_array_equal(out.data, ref.detach().numpy())
    upstream = np.arange(1.0, out.data.size + 1).reshape(out.shape)
    out.backward(upstream)
    ref.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-12)
    m = Tensor(data, requires_grad=True, dtype=np.float64)
    tm = torch.tensor(data, requires_grad=True)
    m.maximum(Tensor(np.full((3, 3), 2.0), dtype=np.float64)).sum().backward()
    torch.maximum(tm, torch.full((3, 3), 2.0, dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(m.grad.data, tm.grad.numpy())


def test_softmax_family_at_extreme_logits():
    data = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0]])
    for axis in (0, 1):
        x = Tensor(data, requires_grad=True, dtype=np.float64)
        t = torch.tensor(data, requires_grad=True)
        for ours, theirs in ((x.softmax(axis=axis), t.softmax(axis)), (x.log_softmax(axis=axis), t.log_softmax(axis)),
                             (x.logsumexp(axis=axis), torch.logsumexp(t, axis))):
            np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-300)
            upstream = np.linspace(-1, 1, ours.data.size).reshape(ours.shape)
            x.grad, t.grad = None, None
            ours.backward(upstream)
            theirs.backward(torch.from_numpy(upstream))
            np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-12, atol=1e-300)


# ---- hypothesis: random shapes, axes and broadcasting against torch ----------------------------------

REDUCTIONS = {
    "sum": (lambda x, axis, keep: x.sum(axis=axis, keepdims=keep), lambda t, dim, keep: t.sum(dim=dim, keepdim=keep)),
    "mean": (lambda x, axis, keep: x.mean(axis=axis, keepdims=keep),
             lambda t, dim, keep: t.mean(dim=dim, keepdim=keep)),
    "amax": (lambda x, axis, keep: x.amax(axis=axis, keepdims=keep),
             lambda t, dim, keep: t.amax(dim=dim, keepdim=keep)),
    "amin": (lambda x, axis, keep: x.amin(axis=axis, keepdims=keep),
             lambda t, dim, keep: t.amin(dim=dim, keepdim=keep)),
    "var": (lambda x, axis, keep: x.var(axis=axis, keepdims=keep), lambda t, dim, keep: t.var(dim=dim, keepdim=keep)),
    "std": (lambda x, axis, keep: x.std(axis=axis, keepdims=keep, correction=0),
            lambda t, dim, keep: t.std(dim=dim, keepdim=keep, correction=0)),
    "logsumexp": (lambda x, axis, keep: x.logsumexp(axis=axis, keepdims=keep),
                  lambda t, dim, keep: torch.logsumexp(t, dim=dim, keepdim=keep)),
}


@pytest.mark.parametrize("op", sorted(REDUCTIONS))
@settings(max_examples=20, deadline=None)
@given(shape=shapes(min_dims=1), data=st.data(), keepdims=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_reductions_over_random_axes_match_torch(op, shape, data, keepdims, seed):
    nd = len(shape)
    axis = tuple(data.draw(st.lists(st.integers(-nd, nd - 1), min_size=1, max_size=nd, unique_by=lambda a: a % nd)))
    if op == "var":
        assume(math.prod(shape[a] for a in axis) > 1)
    ours, theirs = REDUCTIONS[op]
    helper_test_op([shape], lambda x: ours(x, axis, keepdims), lambda t: theirs(t, axis, keepdims),
                   kind="distinct", seed=seed)


BROADCAST_BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "pow": lambda a, b: a ** b,
    "maximum": lambda a, b: a.maximum(b * 1.01), "minimum": lambda a, b: a.minimum(b * 1.01),
}


@pytest.mark.parametrize("op", sorted(BROADCAST_BINARY))
@settings(max_examples=20, deadline=None)
@given(pair=broadcastable_shapes(), seed=st.integers(0, 2 ** 16))
def test_broadcast_binary_ops_match_torch(op, pair, seed):
    helper_test_op(list(pair), *same(BROADCAST_BINARY[op]), kind="positive", seed=seed)


@settings(max_examples=40, deadline=None)
@given(shape=shapes(min_dims=1), data=st.data(), seed=st.integers(0, 2 ** 16))
def test_getitem_matches_torch(shape, data, seed):
    # torch has no negative slice steps, so this key strategy uses positive ones
    parts = []
    count = data.draw(st.integers(0, len(shape)))
    ellipsis_first = data.draw(st.booleans())  # then the key indexes the trailing axes
    for n in (shape[len(shape) - count:] if ellipsis_first else shape[:count]):
        if data.draw(st.booleans()):
            parts.append(None)  # a new axis consumes none of the tensor's
        parts.append(data.draw(st.one_of(
            st.integers(-n, n - 1),
            st.builds(slice, st.one_of(st.none(), st.integers(-n, n)), st.one_of(st.none(), st.integers(-n, n)),
                      st.sampled_from([None, 1, 2])))))
    key = (Ellipsis, *parts) if ellipsis_first else (*parts, Ellipsis)
    rows = data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=5))

    def ours(x):
        return Tensor.cat([x[key].reshape(-1), x[np.array(rows)].reshape(-1)]).exp()

    def theirs(t):
        return torch.cat([t[key].reshape(-1), t[torch.tensor(rows)].reshape(-1)]).exp()

    helper_test_op([shape], ours, theirs, seed=seed)
