"""A GPT (decoder-only transformer) on tinygrad_lite, in the style of nanoGPT's model.py.

Shapes: B batch, T sequence length (≤ block_size), C = n_embd, nh = n_head,
hs = C // nh (head size), V = vocab_size.

    idx (B, T) ── token embedding (B, T, C) + position encoding (T, C)
      └─ n_layer × Block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))      (pre-LayerNorm, residual)
      └─ ln_f ── lm_head (weights tied to the token embedding) ── logits (B, T, V)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from models.attention_variants import VariantAttention, check_variant
from tinygrad_lite import Tensor, nn, no_grad
from tinygrad_lite.nn import functional as F
from tinygrad_lite.optim import AdamW


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64  # the longest context the model sees
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # biases in the Linear layers and LayerNorms
    positional: str = "learned"  # "learned" (a trained table) or "sinusoidal" (fixed, Vaswani et al.)
    score: str = "dot"  # how attention scores come from q and k: a name in attention_variants.SCORES
    mask: str = "causal"  # which keys each query may attend: a name in attention_variants.MASKS

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GPTConfig: {name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}) "
                             f"so that every head gets n_embd // n_head channels")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout!r}")
        if self.positional not in ("learned", "sinusoidal"):
            raise ValueError(f"GPTConfig: positional must be 'learned' or 'sinusoidal', got {self.positional!r}")
        check_variant(self.score, self.mask, "GPTConfig")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> GPTConfig:
        """Inverse of `to_dict` (values loaded from a checkpoint may be numpy scalars)."""
        types = {"dropout": float, "bias": bool, "positional": str, "score": str, "mask": str}
        unknown = sorted(set(state) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"GPTConfig.from_dict: unknown keys {unknown} (a checkpoint from another model?); "
                             f"expected keys among {sorted(cls.__dataclass_fields__)}")
        return cls(**{k: types.get(k, int)(np.asarray(v).item()) for k, v in state.items()})


def sinusoidal_encoding(n_positions: int, d_model: int) -> np.ndarray:
    """(n_positions, d_model) float32: PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(same)."""
    pos = np.arange(n_positions, dtype=np.float64)[:, None]  # (P, 1)
    two_i = np.arange(0, d_model, 2, dtype=np.float64)  # (ceil(d/2),)
    angle = pos / 10000.0 ** (two_i / d_model)  # (P, ceil(d/2))
    pe = np.zeros((n_positions, d_model))
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, : d_model // 2])
    return pe.astype(np.float32)


class CausalSelfAttention(nn.Module):
    """Multi-head masked self-attention: each position mixes the values of itself and earlier positions
    (by default; `GPTConfig.score` and `.mask` pick another variant from models/attention_variants.py)."""

    def __init__(self, config: GPTConfig, rng: np.random.Generator):
        super().__init__()
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v for all heads
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)  # mixes the heads' outputs
        self.resid_dropout = nn.Dropout(config.dropout, seed=rng)
        self.rng = rng  # for dropout on the attention weights
        self.variant = None  # the default (dot, causal) runs as one fused op; other variants from the registry
        if (config.score, config.mask) != ("dot", "causal"):
            self.variant = VariantAttention(config.score, config.mask, config.n_head, config.n_embd // config.n_head)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """The attention itself. q, k, v: (B, nh, T, hs) -> (B, nh, T, hs)."""
        p = self.dropout if self.training else 0.0
        if self.variant is not None:
            return self.variant(q, k, v, dropout_p=p, rng=self.rng)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p, rng=self.rng)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, C) -> (B, T, C)."""
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        q, k, v = self.c_attn(x).split(C, axis=2)  # each (B, T, C)
        q = q.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        y = self.attend(q, k, v)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again: (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: C -> 4C -> GELU -> C."""

    def __init__(self, config: GPTConfig, rng: np.random.Generator):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's form
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout, seed=rng)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, C) -> (B, T, C) (through (B, T, 4C))."""
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """One transformer block: communication (attention) then computation (MLP), each pre-LN with a residual."""

    def __init__(self, config: GPTConfig, rng: np.random.Generator):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, rng)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config, rng)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, C) -> (B, T, C)."""
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """The language model: idx (B, T) token ids -> logits (B, T, V) for the next token at every position."""

    def __init__(self, config: GPTConfig, seed: int | None = 0):
        super().__init__()
        self.config = config
        self.rng = rng = np.random.default_rng(seed)  # one stream for init and every dropout (saved in checkpoints)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embedding (V, C)
        if config.positional == "learned":
            self.wpe = nn.Embedding(config.block_size, config.n_embd)  # position embedding (block_size, C)
        else:
            self.pe = sinusoidal_encoding(config.block_size, config.n_embd)  # fixed (block_size, C), not trained
        self.drop = nn.Dropout(config.dropout, seed=rng)
        self.h = nn.ModuleList(Block(config, rng) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: reading and writing tokens share one table
        self._init_weights(rng)

    def _init_weights(self, rng: np.random.Generator) -> None:
        """GPT-2: weights N(0, 0.02), biases 0, LayerNorm 1/0; residual projections N(0, 0.02/sqrt(2 n_layer))."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)  # keeps the residual stream's variance flat
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                p.data = (rng.standard_normal(p.shape) * residual_std).astype(np.float32)
            elif p.ndim == 2:
                p.data = (rng.standard_normal(p.shape) * 0.02).astype(np.float32)
            elif ".ln_" in name or name.startswith("ln_"):
                p.data = np.full(p.shape, 1.0 if name.endswith("weight") else 0.0, dtype=np.float32)
            else:
                p.data = np.zeros(p.shape, dtype=np.float32)

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """idx: int (B, T), targets: int (B, T) or None -> logits (B, T, V), mean cross-entropy loss or None."""
        if idx.ndim != 2 or idx.dtype.kind not in "iu":
            raise ValueError(f"GPT: idx must be an integer tensor (B, T), got shape {idx.shape} and dtype {idx.dtype}")
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"GPT: cannot forward a sequence of length {T}, longer than block_size "
                             f"{self.config.block_size} (crop the context to its last block_size tokens)")
        tok = self.wte(idx)  # (B, T, C)
        if self.config.positional == "learned":
            pos = self.wpe(Tensor(np.arange(T)))  # (T, C)
        else:
            pos = Tensor(self.pe[:T], dtype=tok.dtype)  # (T, C)
        x = self.drop(tok + pos)  # (B, T, C)
        for block in self.h:
            x = block(x)  # (B, T, C)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss

    @no_grad()
    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 seed: int | np.random.Generator | None = None) -> Tensor:
        """Extend idx (B, T) by max_new_tokens sampled tokens -> (B, T + max_new_tokens).

        Each step sees at most the last block_size tokens, divides the last position's
        logits by `temperature`, keeps only the `top_k` most likely tokens if given, and
        samples from the softmax with `seed`. Call `model.eval()` first to switch dropout off.
        """
        if temperature <= 0:
            raise ValueError(f"GPT.generate: temperature must be positive, got {temperature}")
        if max_new_tokens < 0:
            raise ValueError(f"GPT.generate: max_new_tokens must be >= 0, got {max_new_tokens}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"GPT.generate: top_k must be a positive integer or None, got {top_k}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        out = np.asarray(idx.data, dtype=np.int64)
        for _ in range(max_new_tokens):
            context = Tensor(out[:, -self.config.block_size:])  # (B, ≤ block_size)
            logits, _ = self(context)
            last = logits.data[:, -1, :].astype(np.float64) / temperature  # (B, V)
            if top_k is not None and top_k < last.shape[-1]:
                kth = np.partition(last, -top_k, axis=-1)[:, -top_k][:, None]
                last = np.where(last < kth, -np.inf, last)
            probs = np.exp(last - last.max(axis=-1, keepdims=True))
            cdf = np.cumsum(probs, axis=-1)
            u = rng.random((out.shape[0], 1)) * cdf[:, -1:]
            nxt = np.minimum((cdf < u).sum(axis=-1), last.shape[-1] - 1)  # inverse-CDF sampling, (B,)
            out = np.concatenate([out, nxt[:, None]], axis=1)
        return Tensor(out)

    def configure_optimizers(self, weight_decay: float, learning_rate: float,
                             betas: tuple[float, float] = (0.9, 0.95)) -> AdamW:
        """AdamW that decays the 2-D weights (matmuls, embeddings) but not biases or LayerNorm gains."""
        params = self.parameters()
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        return AdamW(groups, lr=learning_rate, betas=betas)
