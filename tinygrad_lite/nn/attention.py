"""Scaled dot-product attention: one fused op with a hand-derived backward, and the same maths step by step.

    scores = q @ kᵀ / sqrt(hs)                  (B, nh, T, S)
    scores[~mask] = -inf                          (mask True = may attend, as torch's boolean attn_mask)
    P = softmax(scores, axis=-1)                  (B, nh, T, S) each row sums to 1
    out = dropout(P) @ v                          (B, nh, T, hv)

`attention_reference` spells this out with primitive Tensor ops, for reading,
for testing, and for `create_graph=True` (which differentiates it).
`scaled_dot_product_attention` computes the same thing as a single `Function`:
the (T, S) scores are computed once into one buffer and turned into
probabilities in place, and the backward reuses that buffer.

Backward (dO = dL/d out, P' = dropout(P), keep = dropout's scale mask):
    dv = P'ᵀ @ dO
    dP = (dO @ vᵀ) * keep
    dscores = P * (dP - D),  D = rowsum(dP * P) = rowsum(dO * out)   (the softmax Jacobian)
    dq = dscores @ k / sqrt(hs),  dk = dscoresᵀ @ q / sqrt(hs)
D = rowsum(dO * out) holds with dropout too, and costs (T, hv) instead of (T, S).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from .. import kernels
from ..perf import blas_threads, split_across_cores
from ..random import get_generator
from ..tensor import Function, Tensor

Seed = int | np.random.Generator | None
_PARALLEL_MIN_SIZE = 1 << 15  # elements of q below which a second thread costs more than it saves
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what the compiled loops take


@lru_cache(maxsize=32)
def causal_mask(t: int, s: int | None = None, offset: int = 0) -> np.ndarray:
    """(t, s) boolean, True where query i may attend key j: j <= i + offset (read-only, cached per size).

    offset 0: keys 0..i (torch's is_causal); s - t: the t queries are the last t of s positions (a KV
    cache); -1: the strict past only."""
    mask = np.tril(np.ones((t, t if s is None else s), dtype=bool), k=offset)
    mask.flags.writeable = False
    return mask


@lru_cache(maxsize=32)
def _causal_bias(t: int, s: int, dtype: np.dtype) -> np.ndarray:
    """(t, s) additive mask: 0 where a query may attend, -inf above the diagonal (read-only, cached)."""
    bias = np.where(causal_mask(t, s), 0.0, -np.inf).astype(dtype)
    bias.flags.writeable = False
    return bias


def dropout_mask(shape: tuple[int, ...], p: float, rng: Seed, dtype: np.dtype) -> np.ndarray:
    """Inverted-dropout multipliers: 0 with probability p, else 1/(1-p) (attention's dropout; `F.dropout`
    multiplies by the same mask without making it).

    Element i drops where the top 24 bits of SplitMix64's i-th number fall below p·2²⁴ (the resolution of a
    float32 uniform); the stream's seed is one draw from `rng` (`dropout_seed`).
    """
    return seeded_dropout(None, shape, p, dropout_seed(rng), dtype)


def dropout_seed(rng: Seed) -> int:
    """The seed of one dropout mask's stream: one draw from `rng`."""
    return int(get_generator(rng, "dropout").integers(0, 2**63))


def seeded_dropout(x: np.ndarray | None, shape: tuple[int, ...], p: float, seed: int,
                   dtype: np.dtype) -> np.ndarray:
    """x (shape) times the dropout multipliers of `seed` (see `dropout_mask`), or with x None the multipliers.

    The compiled loop (`kernels.dropout`) makes them in the same pass, split over the team; this formula, reading
    the stream by index, gives the same numbers without it."""
    threshold, scale = math.ceil(p * 2**24), 1.0 / (1.0 - p)
    dtype = np.dtype(dtype)
    if kernels.enabled() and dtype in _DTYPES and (x is None or x.dtype == dtype):
        out = np.empty(shape, dtype)
        kernels.dropout(None if x is None else np.asarray(x, order="C"), out, seed, threshold, scale)
        return out
    z = np.uint64(seed) + np.arange(1, math.prod(shape) + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    keep = ((z ^ (z >> np.uint64(31))) >> np.uint64(40)) >= threshold
    mask = keep.reshape(shape).astype(dtype) * np.asarray(scale, dtype=dtype)
    return mask if x is None else x * mask


class ScaledDotProductAttention(Function):
    """The fused op. Without a mask, and with more than one query a head, both passes run as compiled loops over
    the (batch, head) pairs, split over the team (`kernels.attention`); otherwise numpy's products run on parts
    of the batch at once (see `perf.split_across_cores`). Causal attention skips the blocks above the diagonal
    either way (see `_blocks`)."""

    def forward(self, q, k, v, mask=None, is_causal=False, dropout_p=0.0, keep=None):
        scale = 1.0 / math.sqrt(q.shape[-1])
        t, s = q.shape[-2], k.shape[-2]
        probs = np.empty(q.shape[:-1] + (s,), dtype=q.dtype)  # (..., T, S): scores, then probabilities in place
        out = np.empty(q.shape[:-1] + v.shape[-1:], dtype=q.dtype)
        bias = _causal_bias(t, s, probs.dtype) if is_causal else None
        rows, _ = _blocks(t, s, is_causal)
        # (one query a head, a generation step with a KV cache: numpy's products over the cached keys are faster)
        self.compiled = (mask is None and t > 1 and kernels.enabled() and q.dtype in _DTYPES
                         and q.dtype == k.dtype == v.dtype and kernels.attention(q, k, v, keep, is_causal, scale, probs,
                                                                                 out))
        if self.compiled:
            self.probs, self.scale = probs, scale
            return out
        inverse_mask = None if mask is None else ~mask
        if inverse_mask is not None and inverse_mask.ndim == probs.ndim and inverse_mask.shape[0] != 1:
            mask_rows = lambda part: inverse_mask[part]  # noqa: E731
        else:
            mask_rows = lambda part: inverse_mask  # noqa: E731

        def work(part: slice) -> None:
            qp, kp, vp, pp, op = q[part], k[part], v[part], probs[part], out[part]
            for r0, r1, c1 in rows:  # query rows r0:r1 attend keys :c1 (the rest of the row is masked)
                p = pp[..., r0:r1, :c1]
                np.matmul(qp[..., r0:r1, :], np.swapaxes(kp[..., :c1, :], -1, -2), out=p)
                p *= scale
                if bias is not None:
                    p += bias[r0:r1, :c1]
                elif inverse_mask is not None:
                    np.copyto(p, -np.inf, where=mask_rows(part))
                _softmax_rows_(p)
                pp[..., r0:r1, c1:] = 0.0
                dropped = p if keep is None else p * keep[part][..., r0:r1, :c1]
                np.matmul(dropped, vp[..., :c1, :], out=op[..., r0:r1, :])

        _run_over_batch(work, q)
        self.probs, self.scale = probs, scale
        return out

    def backward(self, g):
        (q, k, v), out, g = (t.data for t in self.parents), self.output.data, g.data
        probs, keep, scale = self.probs, self.params["keep"], self.scale
        need_q, need_k, need_v = self.needs_input_grad
        rows, cols = _blocks(q.shape[-2], k.shape[-2], self.params["is_causal"])
        dq = np.empty(q.shape, q.dtype) if need_q else None
        dk = np.empty(k.shape, k.dtype) if need_k else None
        dv = np.empty(v.shape, v.dtype) if need_v else None
        if self.compiled and kernels.attention_backward(q, k, v, keep, self.params["is_causal"], scale, probs, out,
                                                        g.astype(q.dtype, copy=False), dq, dk, dv):
            return dq, dk, dv

        def work(part: slice) -> None:
            qp, kp, vp, pp, gp = q[part], k[part], v[part], probs[part], g[part]
            if need_q or need_k:
                total = np.einsum("...i,...i->...", gp, out[part])[..., None]  # D = rowsum(dP * P)
                dscores = np.empty_like(pp)  # only the blocks the forward computed are filled and read
                for r0, r1, c1 in rows:
                    d = dscores[..., r0:r1, :c1]
                    np.matmul(gp[..., r0:r1, :], np.swapaxes(vp[..., :c1, :], -1, -2), out=d)  # dL/d dropped
                    if keep is not None:
                        d *= keep[part][..., r0:r1, :c1]
                    d -= total[..., r0:r1, :]
                    d *= pp[..., r0:r1, :c1]
                    d *= scale
                    if need_q:
                        np.matmul(d, kp[..., :c1, :], out=dq[part][..., r0:r1, :])
            dropped = pp if keep is None or not need_v else pp * keep[part]
            for c0, c1, r0 in cols:  # keys c0:c1 are attended by query rows r0: only
                if need_k:
                    np.matmul(np.swapaxes(dscores[..., r0:, c0:c1], -1, -2), qp[..., r0:, :],
                              out=dk[part][..., c0:c1, :])
                if need_v:
                    np.matmul(np.swapaxes(dropped[..., r0:, c0:c1], -1, -2), gp[..., r0:, :],
                              out=dv[part][..., c0:c1, :])

        _run_over_batch(work, q)
        return dq, dk, dv

    @staticmethod
    def reference(q: Tensor, k: Tensor, v: Tensor, mask=None, is_causal=False, dropout_p=0.0, keep=None) -> Tensor:
        return _attention_steps(q, k, v, mask, is_causal, keep)


_CAUSAL_BLOCK = 64  # query rows per block; smaller blocks skip more of the masked triangle, at more calls each


def _blocks(t: int, s: int, is_causal: bool) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """How to tile the (T, S) scores: rows [(r0, r1, c1)] (query rows r0:r1 see keys :c1) and
    columns [(c0, c1, r0)] (keys c0:c1 are seen by queries r0:). One tile unless causal with T == S,
    where the tiles above the diagonal, all masked, are skipped: about 40% of the work."""
    if not is_causal or t != s or t <= _CAUSAL_BLOCK:
        return [(0, t, s)], [(0, s, 0)]
    edges = list(range(0, t, _CAUSAL_BLOCK)) + [t]
    spans = list(zip(edges[:-1], edges[1:]))
    return [(a, b, b) for a, b in spans], [(a, b, a) for a, b in spans]


def _run_over_batch(work, q: np.ndarray) -> None:
    """`work(slice)` over the leading axis of q, on every core when it is large enough to pay,
    always with one-thread BLAS (see `perf.matmul` for why OpenBLAS's own threads are kept asleep)."""
    if q.ndim > 2 and q.size >= _PARALLEL_MIN_SIZE:
        split_across_cores(work, q.shape[0])
    else:
        with blas_threads(1):
            work(slice(None))


def _softmax_rows_(x: np.ndarray) -> None:
    """Softmax over the last axis, in place; a row that is all -inf becomes all zeros (it attends to nothing).
    One compiled pass per row where the kernels are on (`kernels.softmax_rows_`), else numpy's five."""
    if kernels.enabled() and x.dtype in (np.float32, np.float64) and kernels.softmax_rows_(x):
        return
    peak = x.max(axis=-1, keepdims=True)
    if not np.isfinite(peak).all():
        peak[~np.isfinite(peak)] = 0.0
    x -= peak
    np.exp(x, out=x)
    total = np.einsum("...j->...", x)[..., None]  # einsum: sum(axis=-1) is slow on short rows
    total[total == 0] = 1.0
    x /= total


def _check_inputs(q: Tensor, k: Tensor, v: Tensor, mask: Any, is_causal: bool, dropout_p: float) -> np.ndarray | None:
    """Validate shapes and options; return the mask as a boolean array (or None)."""
    op = "scaled_dot_product_attention"
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2 or t.dtype.kind != "f":
            raise ValueError(f"{op}: {name} must be a floating-point tensor (..., T, head_size), "
                             f"got shape {t.shape} and dtype {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"{op}: q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise ValueError(f"{op}: q, k, v need the same leading (batch, head) dimensions, "
                         f"got shapes q {q.shape}, k {k.shape}, v {v.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{op}: q and k need the same head size, got shapes q {q.shape} and k {k.shape}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{op}: k and v need the same sequence length, got shapes k {k.shape} and v {v.shape}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1), got {dropout_p}")
    if mask is None:
        return None
    if is_causal:
        raise ValueError(f"{op}: give either mask or is_causal=True, not both")
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"{op}: mask must be boolean (True = may attend), got dtype {m.dtype}")
    scores_shape = q.shape[:-1] + (k.shape[-2],)
    try:
        fits = np.broadcast_shapes(m.shape, scores_shape) == scores_shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{op}: mask of shape {m.shape} does not broadcast to the attention scores' shape "
                         f"{scores_shape} (q {q.shape}, k {k.shape})")
    return m


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | np.ndarray | None = None,
                                 is_causal: bool = False, dropout_p: float = 0.0, rng: Seed = None) -> Tensor:
    """softmax(q kᵀ / sqrt(hs), masked) @ v as one fused op.

    q: (B, nh, T, hs), k: (B, nh, S, hs), v: (B, nh, S, hv) -> (B, nh, T, hv).
    mask: boolean, True where query i may attend key j, broadcastable to (B, nh, T, S).
    is_causal: query i attends keys 0..i only. dropout_p: dropout on the attention
    weights (pass 0 in eval mode), with `rng` an int seed or a numpy Generator.
    """
    m = _check_inputs(q, k, v, mask, is_causal, dropout_p)
    keep = _dropout(q, k, dropout_p, rng)
    return ScaledDotProductAttention.apply(q, k, v, mask=m, is_causal=is_causal, dropout_p=dropout_p, keep=keep)


def _dropout(q: Tensor, k: Tensor, dropout_p: float, rng: Seed) -> np.ndarray | None:
    """The dropout multipliers of the (..., T, S) attention weights, or None without dropout."""
    shape = q.shape[:-1] + (k.shape[-2],)
    return dropout_mask(shape, dropout_p, rng, q.dtype) if dropout_p > 0.0 else None


def attention_reference(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | np.ndarray | None = None,
                        is_causal: bool = False, dropout_p: float = 0.0, rng: Seed = None) -> Tensor:
    """The same attention from primitive ops, one line per step of the formula (slower, for reading)."""
    m = _check_inputs(q, k, v, mask, is_causal, dropout_p)
    return _attention_steps(q, k, v, m, is_causal, _dropout(q, k, dropout_p, rng))


def _attention_steps(q: Tensor, k: Tensor, v: Tensor, mask: np.ndarray | None, is_causal: bool,
                     keep: np.ndarray | None) -> Tensor:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, nh, T, S): how much query i matches key j
    if is_causal:
        mask = causal_mask(q.shape[-2], k.shape[-2])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # forbidden pairs get weight exactly 0
    weights = scores.softmax(dim=-1)  # (B, nh, T, S), each row sums to 1
    if keep is not None:
        weights = weights * keep  # dropout: 0, or 1/(1-p)
    return weights @ v  # (B, nh, T, hv): a weighted average of the values


def attention_weights(q: Tensor, k: Tensor, mask: Tensor | np.ndarray | None = None,
                      is_causal: bool = False) -> np.ndarray:
    """The attention probabilities softmax(q kᵀ / sqrt(hs)) as an array (B, nh, T, S), e.g. for heatmaps."""
    probe_v = Tensor(np.zeros(k.shape[:-1] + (1,), dtype=k.dtype))
    m = _check_inputs(q, k, probe_v, mask, is_causal, 0.0)
    fn = ScaledDotProductAttention()
    fn.forward(q.data, k.data, probe_v.data, mask=m, is_causal=is_causal)
    return fn.probs
