"""Functional forms of the layers, and the fused ops behind them.

A fused op is one `Function` whose forward and hand-derived backward run on
ndarrays side by side: one graph node instead of a chain of primitive ops,
fewer temporaries, and numerically stable formulas (cross-entropy takes one
log-softmax). Beside each sits `reference`, the same computation from primitive
ops: the tests hold the fused op to it, and `create_graph=True` differentiates it.

    >>> import tinygrad_lite.nn.functional as F
    >>> loss = F.cross_entropy(logits, targets)          # logits (N, C) or (B, T, C)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import kernels, perf
from ..ops import broadcast_shape
from ..tensor import Function, Tensor
from . import attention as _attention
from .attention import dropout_mask, scaled_dot_product_attention  # noqa: F401  (lives beside its step-by-step twin)
from .conv import adaptive_avg_pool2d, avg_pool2d, batch_norm, conv1d, conv2d, max_pool2d, pad, unfold  # noqa: F401

# ---- linear ---------------------------------------------------------------------------------


class LinearFunction(Function):
    """y = x Wᵀ + b for x (..., in), W (out, in), b (out,): one matrix product each way (`nn.Linear` is the Module)."""

    def forward(self, x, weight, *bias):
        out = perf.matmul(x.reshape(-1, x.shape[-1]), weight.T, *bias)
        return out.reshape(x.shape[:-1] + weight.shape[:1])

    def backward(self, g):
        x, w = self.parents[0].data, self.parents[1].data
        g2 = g.data.reshape(-1, w.shape[0])
        needs = self.needs_input_grad
        # dL/dx = g W, dL/dW = gᵀ x and dL/db = 1ᵀ g (the sum of g's rows), at once on two cores where that pays
        gx, gw, gb = perf.matmuls((g2, w) if needs[0] else None,
                                  (g2.T, x.reshape(-1, w.shape[1])) if needs[1] else None,
                                  (np.ones(len(g2), dtype=g2.dtype), g2) if len(needs) > 2 and needs[2] else None)
        return (None if gx is None else gx.reshape(x.shape), gw, gb)[:len(needs)]

    @staticmethod
    def reference(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        y = x @ weight.mT
        return y if bias is None else y + bias


def _check_dtypes(op: str, x: Tensor, **weights: Tensor | None) -> None:
    """A layer's input and weights share one float dtype: say which cast fixes it (as PyTorch refuses too)."""
    for name, w in weights.items():
        if w is not None and x.dtype.kind == "f" and w.dtype != x.dtype:
            raise TypeError(f"{op}: the input is {x.dtype} but the {name} is {w.dtype}; cast one to the other "
                            f"(x.float() for the input, or model.double() for the model)")


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input (..., in) @ weight (out, in)ᵀ + bias (out,) -> (..., out)."""
    out_features, in_features = weight.shape
    layer = f"Linear({in_features}, {out_features})"
    if not isinstance(input, Tensor):
        raise TypeError(f"linear: {layer} expects a Tensor input, got {type(input).__name__} "
                        f"(wrap arrays in Tensor(...))")
    if input.ndim == 0 or input.shape[-1] != in_features:
        raise ValueError(f"linear: {layer} expects input with last dimension {in_features} (in_features), got "
                         f"input of shape {input.shape} (width {input.shape[-1] if input.ndim else 0})")
    _check_dtypes("linear", input, weight=weight, bias=bias)
    if input.dtype.kind != "f":
        raise TypeError(f"linear: the input must be floating-point, got dtype {input.dtype} (cast with .float())")
    return LinearFunction.apply(input, weight) if bias is None else LinearFunction.apply(input, weight, bias)


# ---- losses ---------------------------------------------------------------------------------

_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """Softmax cross-entropy over the last dim. With Q the target weights of a row (one-hot of the class,
    smoothed, class-weighted, or the given probabilities), loss = -Σ_c Q_c log p_c and
    dloss/dlogits = (Σ_c Q_c) p - Q. Inputs: logits, and the probability targets if given."""

    def forward(self, logits, *probabilities, targets=None, weight=None, ignore_index=-100, reduction="mean",
                label_smoothing=0.0):
        n_classes = logits.shape[-1]
        x = logits.reshape(-1, n_classes)
        logp = x - x.max(axis=1, keepdims=True)
        logp -= np.log(np.einsum("ij->i", np.exp(logp)))[:, None]  # einsum: fast row sums
        self.logp = logp
        if probabilities:
            q = self.q = _smoothed(probabilities[0].reshape(-1, n_classes), label_smoothing, weight)
            losses = -np.einsum("ij,ij->i", q, logp)
            self.row_weight, self.denominator = q.sum(axis=1), len(x)
        else:
            t = targets.reshape(-1)
            valid = t != ignore_index
            self.t = t = np.where(valid, t, 0)
            rows = np.arange(len(t))
            self.w_t = w_t = (valid if weight is None else weight[t] * valid).astype(x.dtype)
            losses = -(1.0 - label_smoothing) * w_t * logp[rows, t]
            if label_smoothing:
                class_w = np.ones(n_classes, dtype=x.dtype) if weight is None else weight
                self.smooth = valid[:, None] * class_w * (label_smoothing / n_classes)  # (N, C)
                losses -= np.einsum("ij,ij->i", self.smooth, logp)
            self.row_weight = (1.0 - label_smoothing) * w_t + (
                valid * (label_smoothing / n_classes) * (n_classes if weight is None else weight.sum()))
            self.denominator = w_t.sum()
        if reduction == "none":
            return losses.reshape(logits.shape[:-1]).astype(logits.dtype, copy=False)
        total = losses.sum()
        if reduction == "sum":
            return np.asarray(total, dtype=logits.dtype)
        with np.errstate(invalid="ignore", divide="ignore"):  # every target ignored: NaN, as in PyTorch
            return np.asarray(total / self.denominator, dtype=logits.dtype)

    def backward(self, g):
        p = self.params
        reduction, shape = p["reduction"], self.parents[0].shape
        g = g.data
        scale = g.reshape(-1) if reduction == "none" else g / self.denominator if reduction == "mean" else g
        scale = np.broadcast_to(np.asarray(scale, dtype=self.logp.dtype), (len(self.logp),))
        grad = np.exp(self.logp)
        grad *= (self.row_weight * scale)[:, None]
        if len(self.parents) > 1:
            grad -= self.q * scale[:, None]
            gq = None
            if self.needs_input_grad[1]:
                class_w = 1.0 if p["weight"] is None else p["weight"]
                gq = (-(1.0 - p["label_smoothing"]) * class_w * self.logp * scale[:, None]).reshape(shape)
            return grad.reshape(shape), gq
        grad[np.arange(len(grad)), self.t] -= (1.0 - p["label_smoothing"]) * self.w_t * scale
        if p["label_smoothing"]:
            grad -= self.smooth * scale[:, None]
        return (grad.reshape(shape),)

    @staticmethod
    def reference(logits: Tensor, *probabilities: Tensor, targets=None, weight=None, ignore_index=-100,
                  reduction="mean", label_smoothing=0.0) -> Tensor:
        n_classes = logits.shape[-1]
        logp = logits.reshape(-1, n_classes).log_softmax(-1)  # (N, C)
        if probabilities:
            q = probabilities[0].reshape(-1, n_classes)
            q = q * (1.0 - label_smoothing) + label_smoothing / n_classes
            if weight is not None:
                q = q * weight
            denominator = len(q)
        else:
            t = targets.reshape(-1)
            valid = t != ignore_index
            class_w = np.ones(n_classes, dtype=logits.dtype) if weight is None else weight
            one_hot = np.eye(n_classes, dtype=logits.dtype)[np.where(valid, t, 0)]
            q = valid[:, None] * class_w * (one_hot * (1.0 - label_smoothing) + label_smoothing / n_classes)
            denominator = (valid * class_w[np.where(valid, t, 0)]).sum()
        losses = -(logp * q).sum(-1)
        if reduction == "none":
            return losses.reshape(logits.shape[:-1])
        return losses.sum() if reduction == "sum" else losses.sum() / float(denominator)


def _smoothed(q: np.ndarray, label_smoothing: float, weight: np.ndarray | None) -> np.ndarray:
    """Probability targets mixed with the uniform distribution, then weighted per class (as PyTorch does)."""
    out = q * (1.0 - label_smoothing) + label_smoothing / q.shape[1] if label_smoothing else q
    return out if weight is None else out * weight


def _index_array(op: str, ids: Any) -> np.ndarray:
    """Integer ids/targets as an ndarray; floats are a TypeError."""
    arr = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected integer class indices, got dtype {arr.dtype} "
                        f"(convert with .long() if they hold whole numbers)")
    return arr


def _check_range(op: str, what: str, ids: np.ndarray, size: int, ignore: int | None = None) -> None:
    checked = ids if ignore is None else ids[ids != ignore]
    if checked.size and (checked.min() < 0 or checked.max() >= size):
        bad = checked[(checked < 0) | (checked >= size)][0]
        raise IndexError(f"{op}: {what} {int(bad)} is out of range for {size} "
                         f"{'classes' if what == 'target' else 'embeddings'} (valid: 0..{size - 1})")


def cross_entropy(input: Tensor, target: Any, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Negative log-likelihood of `target` under softmax(`input`), as torch.nn.functional.cross_entropy.

    input: logits (N, C) or (B, T, C) (the classes on the last dim; PyTorch puts them on dim 1).
    target: integer class indices (N,) / (B, T), or class probabilities shaped like input (then
    `ignore_index` does not apply, and the mean divides by the number of rows). `weight` (C,)
    rescales each class; `label_smoothing` mixes the target with the uniform distribution.
    Targets equal to `ignore_index` contribute nothing and are not counted in the mean.
    """
    op = "cross_entropy"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    if not isinstance(input, Tensor) or input.ndim < 2 or input.dtype.kind != "f":
        got = f"logits of shape {input.shape} and dtype {input.dtype}" if isinstance(input, Tensor) else (
            type(input).__name__)
        raise ValueError(f"{op}: input must be floating-point logits (N, C) or (B, T, C), got {got}")
    n_classes = input.shape[-1]
    w = None
    if weight is not None:
        w = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=input.dtype)
        if w.shape != (n_classes,):
            raise ValueError(f"{op}: weight must have one entry per class, shape ({n_classes},), got {w.shape}")
    options = dict(weight=w, ignore_index=ignore_index, reduction=reduction, label_smoothing=float(label_smoothing))
    target_array = target.data if isinstance(target, Tensor) else np.asarray(target)
    if target_array.dtype.kind == "f" and target_array.shape == input.shape[:-1]:
        raise TypeError(f"{op}: expected integer class indices of shape {input.shape[:-1]}, got "
                        f"dtype {target_array.dtype} (convert with .long() if they hold whole numbers, or give class "
                        f"probabilities of shape {input.shape})")
    if target_array.dtype.kind == "f":  # class probabilities
        probs = target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=input.dtype))
        if probs.shape != input.shape:
            raise ValueError(f"{op}: probability targets must have the input's shape {input.shape}, "
                             f"got {probs.shape} (class indices would be integers of shape {input.shape[:-1]})")
        _check_dtypes(op, input, target=probs)
        return CrossEntropy.apply(input, probs, targets=None, **options)
    t = _index_array(op, target)
    if t.shape != input.shape[:-1]:
        raise ValueError(f"{op}: logits of shape {input.shape} need targets of shape {input.shape[:-1]} (class "
                         f"indices; or probabilities of shape {input.shape}), got targets of shape {t.shape}")
    _check_range(op, "target", t, n_classes, ignore_index)
    return CrossEntropy.apply(input, targets=t, **options)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or elementwise) of (input - target)²; input and target of one shape."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"mse_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target, dtype=input.dtype))
    if target.shape != input.shape:
        raise ValueError(f"mse_loss: input of shape {input.shape} and target of shape {target.shape} differ")
    diff = input - target
    squared = diff * diff
    return squared if reduction == "none" else squared.sum() if reduction == "sum" else squared.mean()


# ---- normalisation, embedding, dropout --------------------------------------------------------


class LayerNormFunction(Function):
    """Normalise over the last `ndim` axes, then scale and shift: one fused op each way, the rows shared
    among the cores (`perf.split_across_cores`). `nn.LayerNorm` is the Module."""

    def forward(self, x, *affine, ndim=1, eps=1e-5):
        weight, bias = (list(affine) + [None, None])[:2]
        features = math.prod(x.shape[x.ndim - ndim:])
        x2 = x.reshape(-1, features)
        w = None if weight is None else weight.reshape(-1)
        b = None if bias is None else bias.reshape(-1)
        xhat, out = np.empty_like(x2), np.empty_like(x2)
        rstd = np.empty((len(x2), 1), dtype=x2.dtype)

        def rows(r: slice) -> None:
            xh = xhat[r]  # xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps); out = xhat * w + b
            np.subtract(x2[r], (np.einsum("ij->i", x2[r]) / features)[:, None], out=xh)  # einsum: fast row sums
            var = np.einsum("ij,ij->i", xh, xh)[:, None] / features
            np.divide(1.0, np.sqrt(var + eps), out=rstd[r])
            xh *= rstd[r]
            if w is None:
                out[r] = xh
            else:
                np.multiply(xh, w, out=out[r])
            if b is not None:
                out[r] += b

        perf.split_across_cores(rows, len(x2), min_items=perf.min_items_per_thread(features))
        self.xhat, self.rstd = xhat, rstd
        return out.reshape(x.shape)

    def backward(self, g):
        xhat, rstd = self.xhat, self.rstd
        weight = self.parents[1].data if len(self.parents) > 1 else None
        features = xhat.shape[1]
        g2 = g.data.reshape(xhat.shape)
        needs = self.needs_input_grad
        grads: list[np.ndarray | None] = [None] * len(needs)
        if len(needs) > 1 and needs[1]:
            grads[1] = np.einsum("ij,ij->j", g2, xhat).reshape(weight.shape)
        if len(needs) > 2 and needs[2]:
            grads[2] = g2.sum(axis=0).reshape(weight.shape)
        if needs[0]:
            w = None if weight is None else weight.reshape(-1)
            gx = np.empty_like(xhat)

            def rows(r: slice) -> None:
                # dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = g * w
                gxhat = g2[r] if w is None else g2[r] * w
                mean_g = np.einsum("ij->i", gxhat)[:, None] / features
                mean_gx = np.einsum("ij,ij->i", gxhat, xhat[r])[:, None] / features
                d = gx[r]
                np.multiply(xhat[r], -mean_gx, out=d)
                d += gxhat
                d -= mean_g
                d *= rstd[r]

            perf.split_across_cores(rows, len(xhat), min_items=perf.min_items_per_thread(features))
            grads[0] = gx.reshape(g.shape)
        return tuple(grads)

    @staticmethod
    def reference(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, *, ndim: int = 1,
                  eps: float = 1e-5) -> Tensor:
        axes = tuple(range(x.ndim - ndim, x.ndim))
        centred = x - x.mean(axis=axes, keepdims=True)
        xhat = centred / ((centred * centred).mean(axis=axes, keepdims=True) + eps).sqrt()
        out = xhat if weight is None else xhat * weight
        return out if bias is None else out + bias


def layer_norm(input: Tensor, normalized_shape: int | tuple[int, ...], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing `normalized_shape` dims."""
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if input.shape[input.ndim - len(shape):] != shape or len(shape) > input.ndim:
        raise ValueError(f"layer_norm: normalized_shape {shape} does not match the trailing dimensions "
                         f"of the input of shape {input.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ValueError(f"layer_norm: {name} has shape {t.shape}, expected normalized_shape {shape}")
    if bias is not None and weight is None:
        raise ValueError("layer_norm: a bias needs a weight too")
    _check_dtypes("layer_norm", input, weight=weight, bias=bias)
    affine = [t for t in (weight, bias) if t is not None]
    op = CompiledLayerNormFunction if kernels.enabled() else LayerNormFunction
    return op.apply(input, *affine, ndim=len(shape), eps=float(eps))


def embedding(input: Any, weight: Tensor) -> Tensor:
    """weight[input]: integer ids of any shape (...) -> (..., embedding_dim). Repeated ids add their
    gradients into the same row (indexing's backward, summed by sorting the ids)."""
    arr = _index_array("embedding", input)
    _check_range("embedding", "id", arr, weight.shape[0])
    return weight[arr]


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            rng: np.random.Generator | int | None = None) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p).

    Identity when `training` is False or p == 0. `rng` is a numpy Generator or a seed.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return DropoutFunction.apply(input, p=p, seed=_attention.dropout_seed(rng))


class DropoutFunction(Function):
    """Inverted dropout: out = x mask, mask the multipliers of `dropout_mask` for the stream `seed` (0 with
    probability p, else 1/(1-p)). The mask is not kept: backward makes it again from the seed, g mask, so a step
    holds no mask per dropout, and each pass is one (compiled: `kernels.dropout`) instead of making the mask and
    then multiplying by it."""

    def forward(self, x, p=0.5, seed=0):
        return _attention.seeded_dropout(x, x.shape, p, seed, x.dtype)

    def backward(self, g):
        x, p, seed = self.parents[0], self.params["p"], self.params["seed"]
        return (_attention.seeded_dropout(np.asarray(g.data, dtype=x.dtype), x.shape, p, seed, x.dtype),)

    @staticmethod
    def reference(x: Tensor, p: float = 0.5, seed: int = 0) -> Tensor:
        return x * Tensor(_attention.seeded_dropout(None, x.shape, p, seed, x.dtype))


# ---- activations and probabilities --------------------------------------------------------------


def relu(input: Tensor) -> Tensor:
    """max(x, 0), elementwise."""
    return input.relu()


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """GELU x Φ(x): exact (`approximate='none'`, PyTorch's default) or the tanh approximation ('tanh', GPT-2's)."""
    if approximate == "tanh" and kernels.enabled() and isinstance(input, Tensor) and input.dtype.kind == "f":
        return CompiledGELUFunction.apply(input, approximate=approximate)
    return input.gelu(approximate=approximate)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e^-x), elementwise."""
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent, elementwise."""
    return input.tanh()


def softmax(input: Tensor, dim: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim`."""
    return input.softmax(dim)


def log_softmax(input: Tensor, dim: int = -1) -> Tensor:
    """x - logsumexp(x) along `dim`."""
    return input.log_softmax(dim)


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """Integer targets (...) -> int64 one-hot (..., num_classes); num_classes=-1 means max + 1."""
    t = _index_array("one_hot", tensor)
    if num_classes == -1:
        num_classes = int(t.max()) + 1 if t.size else 0
    _check_range("one_hot", "target", t, num_classes)
    out = np.zeros(t.shape + (num_classes,), dtype=np.int64)
    np.put_along_axis(out, t[..., None].astype(np.intp), 1, axis=-1)
    return Tensor(out)


# ---- activations and losses composed of Tensor ops ------------------------------------------------
# Each is a composition of existing ops, so its gradient (and its gradient's gradient) comes for free.
# A `where` must not hide an inf or a NaN in the branch it does not take: its gradient there is 0, but
# 0 times the inf of that branch's own gradient is NaN. So each branch's input is made safe first.


def _log1p(x: Tensor) -> Tensor:
    """log(1 + x) accurate for tiny x (x > -1): the series x - x²/2 + x³/3 where it is exact to round-off
    (x⁴/4, the first term left out, below x times the dtype's epsilon), else Goldberg's log(w) x / (w - 1)
    with w = 1 + x rounded. Goldberg's quotient keeps the value and the slope right but not the second
    derivative, which its coarse w - 1 throws off (3% at x = 1e-15): the series keeps all three."""
    small = x.abs() < float((4 * np.finfo(x.dtype).eps) ** (1 / 3))
    w_safe = Tensor.where(small, 2.0, 1.0 + x)
    series = x * (1.0 - x * (0.5 - x / 3.0))
    return Tensor.where(small, series, w_safe.log() * (x / (w_safe - 1.0)))


def _expm1(x: Tensor) -> Tensor:
    """exp(x) - 1 accurate for tiny x: the series x + x²/2 + x³/6 where it is exact to round-off (x⁴/24 below
    x times the dtype's epsilon), else Kahan's (u - 1) x / log(u) with u = exp(x) rounded for |x| < 1/2, which
    like Goldberg's log1p (see `_log1p`) gets the second derivative wrong as u - 1 gets coarse."""
    tiny = x.abs() < float((24 * np.finfo(x.dtype).eps) ** (1 / 3))
    small = x.abs() < 0.5
    x_small = Tensor.where(small, x, 0.25)
    u_safe = Tensor.where(tiny, 2.0, x_small.exp())
    series = x * (1.0 + x * (0.5 + x / 6.0))
    kahan = Tensor.where(tiny, series, (u_safe - 1.0) * (x_small / u_safe.log()))
    return Tensor.where(small, kahan, x.exp() - 1.0)


def _check_tensor(op: str, x: Any) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(x).__name__} (wrap arrays in Tensor(...))")
    return x


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x (the gradient at 0 is negative_slope, as in PyTorch)."""
    x = _check_tensor("leaky_relu", input)
    return Tensor.where(x > 0, x, x * negative_slope)


def silu(input: Tensor) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    x = _check_tensor("silu", input)
    return x * x.sigmoid()


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1)."""
    x = _check_tensor("elu", input)
    positive = x > 0
    return Tensor.where(positive, x, _expm1(Tensor.where(positive, 0.0, x)) * alpha)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as in PyTorch).

    Written as max(z, 0) + log1p(exp(-|z|)) for z = beta x: no overflow for any x, exact for very negative x,
    and the gradient at 0 is sigmoid(0) = 1/2 (the kinks of max and |.| are taken on opposite sides).
    """
    x = _check_tensor("softplus", input)
    z = x * beta if beta != 1 else x
    positive = z > 0
    stable = Tensor.where(positive, z, 0.0) + _log1p(Tensor.where(positive, -z, z).exp())
    if beta != 1:
        stable = stable / beta
    return Tensor.where(z > threshold, x, stable)


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _target_like(op: str, input: Tensor, target: Any) -> Tensor:
    """`target` as a Tensor of input's shape (and, when it is a number or array, input's dtype)."""
    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target, dtype=input.dtype), dtype=input.dtype)
    if target.shape != input.shape:
        raise ValueError(f"{op}: input of shape {input.shape} and target of shape {target.shape} differ "
                         f"(give them the same shape)")
    return target


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or elementwise) of |input - target|; input and target of one shape."""
    _check_reduction("l1_loss", reduction)
    x = _check_tensor("l1_loss", input)
    return _reduce((x - _target_like("l1_loss", x, target)).abs(), reduction)


def nll_loss(input: Tensor, target: Any, weight: Tensor | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices under log-probabilities, as torch's (classes on dimension 1).

    input: (N, C), (C,) or (N, C, d1, ...); target: integer (N,), () or (N, d1, ...). `weight` (C,) scales
    each class; the mean divides by the summed weights of the counted targets; `ignore_index` is not counted.
    """
    op = "nll_loss"
    _check_reduction(op, reduction)
    x = _check_tensor(op, input)
    t = _index_array(op, target)
    if x.ndim == 0 or t.shape != (x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()):
        raise ValueError(f"{op}: input of shape {x.shape} (classes on dimension 1, or a single (C,) row) needs "
                         f"a target of shape {x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()}, got {t.shape}")
    n_classes = x.shape[1] if x.ndim > 1 else x.shape[0]
    if weight is not None and (not isinstance(weight, Tensor) or weight.shape != (n_classes,)):
        raise ValueError(f"{op}: weight must be a Tensor of shape ({n_classes},) (one per class), got "
                         f"{getattr(weight, 'shape', type(weight).__name__)}")
    _check_range(op, "target", t, n_classes, ignore_index)
    if x.ndim == 1:
        rows = x.reshape(1, n_classes)
    elif x.ndim == 2:
        rows = x
    else:  # (N, C, d1, ...) -> (N * d1 * ..., C)
        rows = x.permute(0, *range(2, x.ndim), 1).reshape(-1, n_classes)
    flat = t.reshape(-1)
    counted = flat != ignore_index
    safe = np.where(counted, flat, 0)
    scale = counted.astype(x.dtype) if weight is None else weight.data.astype(x.dtype)[safe] * counted
    losses = -rows[np.arange(len(safe)), safe] * scale
    if reduction == "none":
        return losses.reshape(t.shape)
    if reduction == "sum":
        return losses.sum()
    total_weight = float(scale.sum())
    return losses.sum() * (1.0 / total_weight if total_weight else math.nan)  # all ignored: NaN, as torch


def _clamped_log(p: Tensor) -> Tensor:
    """log(p) clamped below at -100, as torch's binary_cross_entropy: log(0) is -100 with gradient 0, not -inf."""
    positive = p > 0
    return Tensor.where(positive, Tensor.where(positive, p, 1.0).log(), -100.0).clip(min=-100.0)


def _loss_weight(op: str, name: str, weight: Tensor | None, shape: tuple[int, ...]) -> Tensor | None:
    if weight is None:
        return None
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(weight).__name__}")
    broadcast_shape(op, weight.shape, shape)
    return weight.detach()


def binary_cross_entropy(input: Tensor, target: Any, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p in [0, 1] (logs clamped at -100, as in PyTorch).

    `weight` (broadcastable to the input) scales each element's loss.
    """
    op = "binary_cross_entropy"
    _check_reduction(op, reduction)
    p = _check_tensor(op, input)
    y = _target_like(op, p, target)
    if p.size and (p.data.min() < 0 or p.data.max() > 1):
        raise ValueError(f"{op}: all elements of input should be between 0 and 1 (probabilities; for logits use "
                         f"binary_cross_entropy_with_logits), got values in [{p.data.min()}, {p.data.max()}]")
    losses = -(y * _clamped_log(p) + (1.0 - y) * _clamped_log(1.0 - p))
    w = _loss_weight(op, "weight", weight, p.shape)
    return _reduce(losses if w is None else losses * w, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Tensor | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """binary_cross_entropy(sigmoid(x), y) computed stably from the logits x: (1 - y) x + softplus(-x).

    `pos_weight` (broadcastable, e.g. (C,)) scales the positive term: (1 - y) x + (1 + (pos_weight - 1) y) softplus(-x).
    """
    op = "binary_cross_entropy_with_logits"
    _check_reduction(op, reduction)
    x = _check_tensor(op, input)
    y = _target_like(op, x, target)
    log_sigmoid_neg = softplus(-x, threshold=math.inf)  # -log(sigmoid(x)), without the linear cut-off
    pw = _loss_weight(op, "pos_weight", pos_weight, x.shape)
    losses = (1.0 - y) * x + (log_sigmoid_neg if pw is None else (1.0 + (pw - 1.0) * y) * log_sigmoid_neg)
    w = _loss_weight(op, "weight", weight, x.shape)
    return _reduce(losses if w is None else losses * w, reduction)


from .compiled import CompiledGELUFunction, CompiledLayerNormFunction  # noqa: E402  (they subclass the ops above)
