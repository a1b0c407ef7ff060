"""Functional forms of the layers, and the fused ops behind them.

Each fused op is one `Function` with its forward and hand-derived backward side
by side: one graph node instead of a chain of primitive ops, fewer temporaries,
and numerically stable formulas (cross-entropy takes one log-softmax).

    >>> import tinygrad_lite.nn.functional as F
    >>> loss = F.cross_entropy(logits, targets)          # logits (N, C) or (B, T, C)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..perf import blas_threads, matmul, matmuls, split_across_cores
from ..tensor import Function, Tensor
from .attention import scaled_dot_product_attention  # noqa: F401  (lives beside its step-by-step twin)
from .conv import adaptive_avg_pool2d, avg_pool2d, batch_norm, conv1d, conv2d, max_pool2d, pad, unfold  # noqa: F401

# ---- linear ---------------------------------------------------------------------------------


class Linear(Function):
    """y = x Wᵀ + b for x (..., in), W (out, in), b (out,): one matrix product each way."""

    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        out = matmul(x.reshape(-1, x.shape[-1]), weight.T, bias)
        return out.reshape(x.shape[:-1] + weight.shape[:1])

    def backward(self, g):
        x, w = self.x, self.weight
        g2 = g.reshape(-1, w.shape[0])
        needs = self.needs_input_grad
        # dL/dx = g W, dL/dW = gᵀ x and dL/db = 1ᵀ g (the sum of g's rows), at once on two cores where that pays
        gx, gw, gb = matmuls((g2, w) if needs[0] else None,
                             (g2.T, x.reshape(-1, w.shape[1])) if needs[1] else None,
                             (np.ones(len(g2), dtype=g2.dtype), g2) if len(needs) > 2 and needs[2] else None)
        return (None if gx is None else gx.reshape(x.shape), gw, gb)[:len(needs)]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x (..., in) @ weight (out, in)ᵀ + bias (out,) -> (..., out)."""
    in_features = weight.shape[1]
    if x.ndim == 0 or x.shape[-1] != in_features:
        raise ValueError(f"linear: expected input with last dimension {in_features} (in_features), "
                         f"got input of shape {x.shape}")
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


# ---- losses ---------------------------------------------------------------------------------

_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """Softmax cross-entropy over the last axis; the gradient is (softmax - one-hot) * upstream."""

    def forward(self, logits, targets=None, ignore_index=None, reduction="mean"):
        n_classes = logits.shape[-1]
        x = logits.reshape(-1, n_classes)
        t = targets.reshape(-1)
        rows = np.arange(len(t))
        valid = None if ignore_index is None else t != ignore_index
        if valid is not None:
            t = np.where(valid, t, 0)
        shifted = x - x.max(axis=1, keepdims=True)
        picked = shifted[rows, t]
        probs = np.exp(shifted, out=shifted)
        sumexp = probs.sum(axis=1, keepdims=True)
        losses = np.log(sumexp[:, 0]) - picked
        probs /= sumexp
        if valid is not None:
            losses *= valid
        self.probs, self.t, self.rows, self.valid, self.shape = probs, t, rows, valid, logits.shape
        if reduction == "none":
            return losses.reshape(targets.shape)
        total = losses.sum()
        if reduction == "sum":
            return np.asarray(total)
        self.count = len(t) if valid is None else int(valid.sum())
        return np.asarray(total / self.count if self.count else np.nan, dtype=logits.dtype)

    def backward(self, g):
        reduction = self.params.get("reduction", "mean")
        if reduction == "none":
            scale = g.reshape(-1, 1)
        elif reduction == "sum":
            scale = g
        else:
            scale = g / max(self.count, 1)
        grad = self.probs * scale
        if reduction == "none":
            grad[self.rows, self.t] -= scale[:, 0]
        else:
            grad[self.rows, self.t] -= scale
        if self.valid is not None:
            grad *= self.valid[:, None]
        return (grad.reshape(self.shape),)


def _index_array(op: str, ids: Any) -> np.ndarray:
    """Integer ids/targets as an ndarray; floats are a TypeError (they are probably logits or one-hots)."""
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


def cross_entropy(logits: Tensor, targets: Any, ignore_index: int | None = None, reduction: str = "mean") -> Tensor:
    """Mean negative log-likelihood of `targets` under softmax(`logits`).

    logits: (N, C) or (B, T, C); targets: integer (N,) or (B, T). Targets equal to
    `ignore_index` contribute nothing (and are not counted in the mean).
    """
    t = _index_array("cross_entropy", targets)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if logits.ndim < 2 or t.shape != logits.shape[:-1]:
        raise ValueError(f"cross_entropy: logits of shape {logits.shape} need targets of shape {logits.shape[:-1]} "
                         f"(logits (N, C) or (B, T, C)), got targets of shape {t.shape}")
    _check_range("cross_entropy", "target", t, logits.shape[-1], ignore_index)
    return CrossEntropy.apply(logits, targets=t, ignore_index=ignore_index, reduction=reduction)


class MSELoss(Function):
    def forward(self, x, target, reduction="mean"):
        self.diff = diff = x - target
        flat = diff.reshape(-1)
        with blas_threads(1):  # see perf.matmul
            total = np.dot(flat, flat)
        if reduction == "none":
            return diff * diff
        return np.asarray(total / diff.size if reduction == "mean" else total, dtype=x.dtype)

    def backward(self, g):
        reduction = self.params.get("reduction", "mean")
        scale = 2 * g / self.diff.size if reduction == "mean" else 2 * g
        gx = self.diff * scale
        return (gx if self.needs_input_grad[0] else None,
                -gx if self.needs_input_grad[1] else None)


def mse_loss(x: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or elementwise) of (x - target)²; x and target of one shape."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"mse_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target, dtype=x.dtype))
    if target.shape != x.shape:
        raise ValueError(f"mse_loss: input of shape {x.shape} and target of shape {target.shape} differ")
    return MSELoss.apply(x, target, reduction=reduction)


# ---- normalisation, embedding, dropout --------------------------------------------------------


class LayerNorm(Function):
    """Normalise over the last `ndim` axes, then scale and shift: one fused op each way, the rows shared
    among the cores (`perf.split_across_cores`)."""

    def forward(self, x, weight=None, bias=None, ndim=1, eps=1e-5):
        features = math.prod(x.shape[x.ndim - ndim:])
        x2 = x.reshape(-1, features)
        w = None if weight is None else weight.reshape(-1)
        b = None if bias is None else bias.reshape(-1)
        xhat, out = np.empty_like(x2), np.empty_like(x2)
        rstd = np.empty((len(x2), 1), dtype=x2.dtype)

        def rows(r: slice) -> None:
            xh = xhat[r]
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

        split_across_cores(rows, len(x2), min_items=_MIN_ROWS_PER_THREAD)
        self.xhat, self.rstd, self.weight = xhat, rstd, weight
        return out.reshape(x.shape)

    def backward(self, g):
        xhat, weight, rstd = self.xhat, self.weight, self.rstd
        features = xhat.shape[1]
        g2 = g.reshape(xhat.shape)
        needs = self.needs_input_grad
        grads = [None] * len(needs)
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

            split_across_cores(rows, len(xhat), min_items=_MIN_ROWS_PER_THREAD)
            grads[0] = gx.reshape(g.shape)
        return tuple(grads)


_MIN_ROWS_PER_THREAD = 256  # below this a second thread costs more than it saves


def layer_norm(x: Tensor, normalized_shape: int | tuple[int, ...], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing `normalized_shape` axes."""
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if x.shape[x.ndim - len(shape):] != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm: normalized_shape {shape} does not match the trailing dimensions "
                         f"of the input of shape {x.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ValueError(f"layer_norm: {name} has shape {t.shape}, expected normalized_shape {shape}")
    if bias is not None and weight is None:
        raise ValueError("layer_norm: a bias needs a weight too")
    affine = [t for t in (weight, bias) if t is not None]
    return LayerNorm.apply(x, *affine, ndim=len(shape), eps=float(eps))


class Embedding(Function):
    """Row lookup weight[ids]; repeated ids add their gradients into the same row."""

    def forward(self, weight, ids=None):
        self.ids, self.weight_shape = ids, weight.shape
        return weight[ids]

    def backward(self, g):
        # sort the ids, then sum each run of equal ids in one reduceat (np.add.at is ~3x slower)
        ids = self.ids.reshape(-1)
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]) if ids.size else ids
        grad = np.zeros(self.weight_shape, dtype=g.dtype)
        grad[sorted_ids[starts]] = np.add.reduceat(g.reshape(-1, self.weight_shape[1])[order], starts, axis=0)
        return (grad,)


def embedding(ids: Any, weight: Tensor) -> Tensor:
    """weight[ids]: integer ids of any shape (...) -> (..., embedding_dim)."""
    arr = _index_array("embedding", ids)
    _check_range("embedding", "id", arr, weight.shape[0])
    return Embedding.apply(weight, ids=arr)


class Dropout(Function):
    """x * mask / (1 - p), the mask drawn in the wrapper so that it is seeded by the caller."""

    def forward(self, x, keep=None, p=0.5):
        self.keep, self.scale = keep, 1.0 / (1.0 - p)
        out = x * keep
        out *= self.scale
        return out

    def backward(self, g):
        gx = g * self.keep
        gx *= self.scale
        return (gx,)


def dropout(x: Tensor, p: float = 0.5, training: bool = True,
            rng: np.random.Generator | int | None = None) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p).

    Identity when `training` is False or p == 0. `rng` is a numpy Generator or a seed.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    keep = rng.random(x.shape, dtype=np.float32) >= p
    return Dropout.apply(x, keep=keep, p=float(p))


# ---- activations and probabilities --------------------------------------------------------------


def relu(x: Tensor) -> Tensor:
    """max(x, 0), elementwise."""
    return x.relu()


def gelu(x: Tensor) -> Tensor:
    """GELU, tanh approximation (as GPT-2)."""
    return x.gelu()


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e^-x), elementwise."""
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent, elementwise."""
    return x.tanh()


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`."""
    return x.softmax(axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along `axis`."""
    return x.log_softmax(axis)


def one_hot(targets: Any, num_classes: int = -1) -> Tensor:
    """Integer targets (...) -> int64 one-hot (..., num_classes); num_classes=-1 means max + 1."""
    t = _index_array("one_hot", targets)
    if num_classes == -1:
        num_classes = int(t.max()) + 1 if t.size else 0
    _check_range("one_hot", "target", t, num_classes)
    out = np.zeros(t.shape + (num_classes,), dtype=np.int64)
    np.put_along_axis(out, t[..., None].astype(np.intp), 1, axis=-1)
    return Tensor(out)
