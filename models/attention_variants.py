"""Attention variants for the GPT laboratory: how scores come from q and k, and which keys each query may see.

    weights = softmax(score(q, k) where mask allows, else -inf)      (B, nh, T, T)
    out = dropout(weights) @ v                                         (B, nh, T, hs)

A score is one function `(q, k, **params) -> scores`, q, k: (B, nh, T, hs) ->
(B, nh, T, T), registered with `@score(name, params=...)`. `params` declares the
learned tensors the score needs, as name -> shape(n_head, head_size); the
attention module (`VariantAttention`) owns them as Parameters, which start at
zero (the GPT's initialisation leaves them so), so a score parametrises them
with 0 as its intended starting point.

A mask is one function `(T) -> (T, T) bool`, True where query i may attend key j,
registered with `@mask(name)`.

Adding a variant is one decorated function below; `GPT(config, attention=variant(score, mask))` puts it
in every Block of the GPT (which knows nothing of this registry).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial

import numpy as np

from tinygrad_lite import Tensor, nn
from tinygrad_lite.nn.attention import Seed, causal_mask, dropout_mask

ShapeFn = Callable[[int, int], tuple[int, ...]]  # (n_head, head_size) -> a parameter's shape


@dataclass(frozen=True)
class Score:
    fn: Callable[..., Tensor]
    params: dict[str, ShapeFn] = field(default_factory=dict)


SCORES: dict[str, Score] = {}
MASKS: dict[str, Callable[[int], np.ndarray]] = {}


def score(name: str, params: dict[str, ShapeFn] | None = None) -> Callable:
    """Register `fn(q, k, **params) -> scores` under `name`, with the parameters it needs."""
    def register(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        SCORES[name] = Score(fn, dict(params or {}))
        return fn
    return register


def mask(name: str) -> Callable:
    """Register `fn(T) -> (T, T) bool` (True = may attend) under `name`; results are cached read-only."""
    def register(fn: Callable[[int], np.ndarray]) -> Callable[[int], np.ndarray]:
        @lru_cache(maxsize=16)
        def cached(t: int) -> np.ndarray:
            allowed = np.ascontiguousarray(fn(t), dtype=bool)
            allowed.flags.writeable = False
            return allowed
        MASKS[name] = cached
        return fn
    return register


# ---- scores: q, k (B, nh, T, hs) -> (B, nh, T, T) ------------------------------------------------------------

def _dot(q: Tensor, k: Tensor) -> Tensor:
    return q @ k.transpose(-2, -1)


@score("dot")
def dot(q: Tensor, k: Tensor) -> Tensor:
    """q·k / sqrt(hs): the transformer's score; the scale keeps its variance ~1 whatever the head size."""
    return _dot(q, k) / math.sqrt(q.shape[-1])


@score("dot_unscaled")
def dot_unscaled(q: Tensor, k: Tensor) -> Tensor:
    """q·k: without the scale, scores grow like sqrt(hs) and the softmax saturates sooner."""
    return _dot(q, k)


@score("squared_dot")
def squared_dot(q: Tensor, k: Tensor) -> Tensor:
    """(q·k / sqrt(hs))²: the sign is dropped on purpose, so a key pointing opposite to the query
    scores as high as one pointing along it (a signed square, s·|s|, would only sharpen `dot`)."""
    return dot(q, k).square()


@score("neg_dot")
def neg_dot(q: Tensor, k: Tensor) -> Tensor:
    """-q·k / sqrt(hs), the "reversed" dot product: the most similar key gets the least weight.
    Since k = x W_k is learned, W_k -> -W_k turns it back into `dot` (see the tests)."""
    return -dot(q, k)


@score("cosine", params={"log_scale": lambda n_head, head_size: (n_head,)})
def cosine(q: Tensor, k: Tensor, log_scale: Tensor) -> Tensor:
    """cos(q, k) · sqrt(hs) · exp(log_scale), a learned temperature per head (log_scale: (nh,)).

    At log_scale = 0 it is as sharp as `dot` on unit-variance q and k (|q||k| ≈ hs);
    the exponential keeps the temperature positive.
    """
    def unit(x: Tensor) -> Tensor:
        return x / ((x * x).sum(axis=-1, keepdims=True) + 1e-6).sqrt()  # eps: a zero vector stays finite

    scale = log_scale.exp().reshape(-1, 1, 1) * math.sqrt(q.shape[-1])  # (nh, 1, 1)
    return _dot(unit(q), unit(k)) * scale


@score("l2")
def l2(q: Tensor, k: Tensor) -> Tensor:
    """-|q - k|² / (2 sqrt(hs)), distance attention. It expands to (q·k - |k|²/2 - |q|²/2) / sqrt(hs):
    `dot` plus a per-key penalty on long keys (the |q|² term is the same along a row, so softmax ignores it)."""
    q_sq = (q * q).sum(axis=-1, keepdims=True)  # (B, nh, T, 1)
    k_sq = (k * k).sum(axis=-1, keepdims=True).transpose(-2, -1)  # (B, nh, 1, T)
    return (_dot(q, k) * 2.0 - q_sq - k_sq) / (2.0 * math.sqrt(q.shape[-1]))


# ---- masks: T -> (T, T) bool, True where query i may attend key j ---------------------------------------------

@mask("causal")
def causal(t: int) -> np.ndarray:
    """Itself and the past (j <= i): what a next-token predictor may use."""
    return causal_mask(t)


@mask("anti_causal")
def anti_causal(t: int) -> np.ndarray:
    """The other triangle: itself and the future (j >= i). Position i sees token i+1, its own target."""
    return np.triu(np.ones((t, t), dtype=bool))


@mask("none")
def no_mask(t: int) -> np.ndarray:
    """Every position sees every other (BERT-style): the targets of all but the last position are visible."""
    return np.ones((t, t), dtype=bool)


@mask("strict_causal")
def strict_causal(t: int) -> np.ndarray:
    """The past only (j < i). The first position sees nothing: its attention weights are all zero,
    so its attention output is exactly zero (the residual stream carries it on), never NaN."""
    return causal_mask(t, t, offset=-1)


# ---- the attention built from them ------------------------------------------------------------------------------

def check_variant(score_name: str, mask_name: str, where: str = "attention") -> None:
    """A ValueError naming the known scores/masks when either name is unknown."""
    if score_name not in SCORES:
        raise ValueError(f"{where}: unknown attention score {score_name!r}; known scores: {', '.join(SCORES)}")
    if mask_name not in MASKS:
        raise ValueError(f"{where}: unknown attention mask {mask_name!r}; known masks: {', '.join(MASKS)}")


def masked_softmax(scores: Tensor, allowed: np.ndarray) -> Tensor:
    """Softmax over the last axis of scores (..., T, S) where `allowed` (T, S) is True, 0 elsewhere.

    A row with nothing allowed gets all-zero weights: its scores are left finite (no
    softmax of all -inf, which is NaN) and the weights zeroed afterwards, which also
    zeroes their gradient.
    """
    if allowed.all():
        return scores.softmax(axis=-1)
    empty_rows = ~allowed.any(axis=-1, keepdims=True)  # (T, 1)
    weights = scores.masked_fill(~allowed & ~empty_rows, float("-inf")).softmax(axis=-1)
    return weights.masked_fill(empty_rows, 0.0) if empty_rows.any() else weights


def attention(q: Tensor, k: Tensor, v: Tensor, score: str = "dot", mask: str = "causal",
              params: dict[str, Tensor] | None = None, dropout_p: float = 0.0, rng: Seed = None) -> Tensor:
    """softmax(score(q, k), masked) @ v from primitive ops. q, k, v: (B, nh, T, hs) -> (B, nh, T, hs).

    params: the score's learned tensors by name (see `SCORES[score].params`).
    """
    check_variant(score, mask)
    if q.shape != k.shape or q.shape[:-1] != v.shape[:-1] or q.ndim < 2:
        raise ValueError(f"attention: q, k and v must be (..., T, hs) with q and k of one shape and v of the same "
                         f"(..., T); got q {q.shape}, k {k.shape}, v {v.shape}")
    spec, params = SCORES[score], params or {}
    if set(params) != set(spec.params):
        raise ValueError(f"attention: score {score!r} needs parameters {sorted(spec.params)}, got {sorted(params)}")
    weights = masked_softmax(spec.fn(q, k, **params), MASKS[mask](q.shape[-2]))  # (B, nh, T, T)
    if dropout_p > 0.0:
        weights = weights * dropout_mask(weights.shape, dropout_p, rng, weights.dtype)
    return weights @ v


class VariantAttention(nn.Module):
    """The attention of one (score, mask) pair; owns the score's learned parameters (zeros at first)."""

    def __init__(self, score: str, mask: str, n_head: int, head_size: int):
        super().__init__()
        check_variant(score, mask, "VariantAttention")
        self.score, self.mask = score, mask
        for name, shape in SCORES[score].params.items():
            setattr(self, name, nn.Parameter(np.zeros(shape(n_head, head_size), dtype=np.float32)))

    def forward(self, q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0, rng: Seed = None) -> Tensor:
        """q, k, v: (B, nh, T, hs) -> (B, nh, T, hs)."""
        params = {name: getattr(self, name) for name in SCORES[self.score].params}
        return attention(q, k, v, self.score, self.mask, params, dropout_p, rng)


def variant(score: str, mask: str) -> Callable[[int, int], VariantAttention]:
    """The factory that `GPT(config, attention=...)` calls once per Block: (n_head, head_size) -> VariantAttention.

    Unknown names are an error here, before any model is built.
    """
    check_variant(score, mask, "variant")
    return partial(VariantAttention, score, mask)
