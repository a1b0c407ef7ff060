"""A GPT (decoder-only transformer) on tinygrad_lite, in the style of nanoGPT's model.py.

Shapes: B batch, T sequence length (≤ block_size), C = n_embd, nh = n_head,
hs = C // nh (head size), V = vocab_size.

    idx (B, T) ── token embedding (B, T, C) + position encoding (T, C)
      └─ n_layer × Block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))      (pre-LayerNorm, residual)
      └─ ln_f ── lm_head (weights tied to the token embedding) ── logits (B, T, V)

The parameter names are GPT-2's, so `GPT.from_pretrained` reads the files of Hugging Face's
GPT2LMHeadModel and `save_pretrained` writes them (its Conv1D layers store the transpose of our weights).
Generation keeps every layer's keys and values in a `KVCache` and feeds one new token per step.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.hub import pretrained_dir, pretrained_file, require
from tinygrad_lite import Tensor, is_grad_enabled, nn, no_grad, perf
from tinygrad_lite.nn import functional as F
from tinygrad_lite.nn.attention import causal_mask
from tinygrad_lite.optim import AdamW
from tinygrad_lite.random import get_generator

# Another attention for the experiments (models/attention_variants.py): called once per Block as
# factory(n_head, head_size); the module's forward(q, k, v, dropout_p, rng) maps (B, nh, T, hs) to (B, nh, T, hs).
AttentionFactory = Callable[[int, int], nn.Module]


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
    layer_norm_eps: float = 1e-5

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
        if not self.layer_norm_eps > 0:
            raise ValueError(f"GPTConfig: layer_norm_eps must be positive, got {self.layer_norm_eps!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> GPTConfig:
        """Inverse of `to_dict` (values loaded from a checkpoint may be numpy scalars)."""
        state = dict(state)
        for key, default in _ATTENTION_KEYS.items():
            value = str(np.asarray(state.pop(key, default)).item())
            if value != default:
                raise ValueError(f"GPTConfig.from_dict: the checkpoint's attention has {key} {value!r}, which is no "
                                 f"longer a config field: build the model with GPT(config, attention="
                                 f"models.attention_variants.variant(score, mask)), then load its state")
        types = {"dropout": float, "bias": bool, "positional": str, "layer_norm_eps": float}
        unknown = sorted(set(state) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"GPTConfig.from_dict: unknown keys {unknown} (a checkpoint from another model?); "
                             f"expected keys among {sorted(cls.__dataclass_fields__)}")
        return cls(**{k: types.get(k, int)(np.asarray(v).item()) for k, v in state.items()})


# Checkpoints written before the attention was injected name it in the config; the default loads as before.
_ATTENTION_KEYS = {"score": "dot", "mask": "causal"}


def sinusoidal_encoding(n_positions: int, d_model: int) -> np.ndarray:
    """(n_positions, d_model) float32: PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(same)."""
    pos = np.arange(n_positions, dtype=np.float64)[:, None]  # (P, 1)
    two_i = np.arange(0, d_model, 2, dtype=np.float64)  # (ceil(d/2),)
    angle = pos / 10000.0 ** (two_i / d_model)  # (P, ceil(d/2))
    pe = np.zeros((n_positions, d_model))
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, : d_model // 2])
    return pe.astype(np.float32)


class KVCache:
    """Every layer's keys and values for the positions seen so far, in buffers allocated once (for generation).

    keys, values: (n_layer, B, nh, max_len, hs). A forward with the cache writes its T new positions
    in place after the cached ones and attends over all of them.
    """

    def __init__(self, config: GPTConfig, batch_size: int, max_len: int | None = None, dtype: Any = np.float32):
        max_len = config.block_size if max_len is None else max_len
        if not 1 <= max_len <= config.block_size:
            raise ValueError(f"KVCache: max_len must be in [1, block_size {config.block_size}], got {max_len}")
        shape = (config.n_layer, batch_size, config.n_head, max_len, config.n_embd // config.n_head)
        self.keys = np.empty(shape, dtype=dtype)
        self.values = np.empty(shape, dtype=dtype)
        self.lengths = [0] * config.n_layer  # positions filled, per layer

    @property
    def length(self) -> int:
        """Positions cached so far (by the first layer, which a forward updates first)."""
        return self.lengths[0]

    @property
    def max_len(self) -> int:
        return self.keys.shape[3]

    def update(self, k: Tensor, v: Tensor, layer_idx: int) -> tuple[Tensor, Tensor]:
        """Append k, v (B, nh, T, hs) to layer `layer_idx` -> all its keys and values so far (B, nh, S, hs)."""
        start = self.lengths[layer_idx]
        end = start + k.shape[2]
        expected = self.keys.shape[1:3] + self.keys.shape[4:]
        if k.shape[:2] + k.shape[3:] != expected or v.shape != k.shape:
            raise ValueError(f"KVCache.update: k and v must be (B, nh, T, hs) with (B, nh, hs) = {expected}, "
                             f"got k {k.shape} and v {v.shape}")
        if end > self.max_len:
            raise ValueError(f"KVCache.update: {start} cached positions + {k.shape[2]} new ones exceed its "
                             f"max_len {self.max_len}")
        self.keys[layer_idx, :, :, start:end] = k.data
        self.values[layer_idx, :, :, start:end] = v.data
        self.lengths[layer_idx] = end
        return Tensor(self.keys[layer_idx, :, :, :end]), Tensor(self.values[layer_idx, :, :, :end])


class CausalSelfAttention(nn.Module):
    """Multi-head masked self-attention: each position mixes the values of itself and earlier positions
    (or, with an injected `attention`, whatever that module computes)."""

    def __init__(self, config: GPTConfig, rng: np.random.Generator, layer_idx: int = 0,
                 attention: AttentionFactory | None = None):
        super().__init__()
        self.n_head, self.n_embd, self.dropout, self.layer_idx = config.n_head, config.n_embd, config.dropout, layer_idx
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v for all heads
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)  # mixes the heads' outputs
        self.c_proj.residual_projection = True  # its output joins the residual stream (see GPT._init_weights)
        self.resid_dropout = nn.Dropout(config.dropout, seed=rng)
        self.rng = rng  # for dropout on the attention weights
        self.variant = None if attention is None else attention(config.n_head, config.n_embd // config.n_head)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """The attention itself. q: (B, nh, T, hs), k, v: (B, nh, S, hs), S ≥ T -> (B, nh, T, hs).

        The T queries are the last T positions of the S keys (S > T: the others are cached).
        """
        p = self.dropout if self.training else 0.0
        if self.variant is not None:
            return self.variant(q, k, v, dropout_p=p, rng=self.rng)
        t, s = q.shape[2], k.shape[2]
        if t == s:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p, rng=self.rng)
        # query i is position s - t + i: it sees keys 0 .. s - t + i; a single new query sees them all
        mask = None if t == 1 else causal_mask(t, s, offset=s - t)
        return F.scaled_dot_product_attention(q, k, v, mask=mask, dropout_p=p, rng=self.rng)

    def forward(self, x: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        """x: (B, T, C) -> (B, T, C). With `kv_cache`, x holds the positions after the cached ones."""
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        q, k, v = self.c_attn(x).split(C, axis=2)  # each (B, T, C)
        q = q.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        if kv_cache is not None:
            k, v = kv_cache.update(k, v, self.layer_idx)  # (B, nh, S, hs): the cached positions, then these T
        y = self.attend(q, k, v)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again: (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class FeedForward(nn.Module):
    """Position-wise feed-forward network: C -> 4C -> GELU -> C."""

    def __init__(self, config: GPTConfig, rng: np.random.Generator):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's form
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.c_proj.residual_projection = True  # its output joins the residual stream (see GPT._init_weights)
        self.dropout = nn.Dropout(config.dropout, seed=rng)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, C) -> (B, T, C)."""
        x = self.c_fc(x)  # (B, T, 4C)
        x = self.gelu(x)
        x = self.c_proj(x)  # (B, T, C)
        return self.dropout(x)


class Block(nn.Module):
    """One transformer block: communication (attention) then computation (feed-forward), each pre-LN with a
    residual."""

    def __init__(self, config: GPTConfig, rng: np.random.Generator, layer_idx: int = 0,
                 attention: AttentionFactory | None = None):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.attn = CausalSelfAttention(config, rng, layer_idx, attention)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.mlp = FeedForward(config, rng)

    def forward(self, x: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        """x: (B, T, C) -> (B, T, C)."""
        x = x + self.attn(self.ln_1(x), kv_cache)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """The language model: idx (B, T) token ids -> logits (B, T, V) for the next token at every position.

    `attention` replaces the causal attention of every Block (see `AttentionFactory`); None keeps it.
    """

    def __init__(self, config: GPTConfig, seed: int | None = 0, attention: AttentionFactory | None = None):
        super().__init__()
        self.config = config
        self.rng = rng = np.random.default_rng(seed)  # one stream for init and every dropout (saved in checkpoints)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embedding (V, C)
        if config.positional == "learned":
            self.wpe = nn.Embedding(config.block_size, config.n_embd)  # position embedding (block_size, C)
        else:  # fixed (block_size, C), not trained, not in the state_dict
            self.register_buffer("pe", Tensor(sinusoidal_encoding(config.block_size, config.n_embd)), persistent=False)
        self.drop = nn.Dropout(config.dropout, seed=rng)
        self.h = nn.ModuleList(Block(config, rng, i, attention) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: reading and writing tokens share one table
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """GPT-2's initialisation by module type: Linear and Embedding weights N(0, 0.02), Linear biases 0
        (LayerNorms keep 1 and 0); residual projections N(0, 0.02 / sqrt(2 n_layer)), which keeps the
        residual stream's variance from growing with depth."""
        if isinstance(module, nn.Linear) and module is not self.lm_head:  # the head's weight is wte's
            std = 0.02 / math.sqrt(2 * self.config.n_layer) if getattr(module, "residual_projection", False) else 0.02
            module.weight.data = (self.rng.standard_normal(module.weight.shape) * std).astype(np.float32)
            if module.bias is not None:
                module.bias.data = np.zeros(module.bias.shape, dtype=np.float32)
        elif isinstance(module, nn.Embedding):
            module.weight.data = (self.rng.standard_normal(module.weight.shape) * 0.02).astype(np.float32)

    def forward(self, idx: Tensor, targets: Tensor | None = None, kv_cache: KVCache | None = None,
                logits_to_keep: int = 0) -> tuple[Tensor, Tensor | None]:
        """idx: int (B, T), targets: int (B, T) or None -> logits (B, T, V), mean cross-entropy loss or None.

        kv_cache (under no_grad): idx holds the tokens after the cached positions, whose keys and values
        it keeps. logits_to_keep: only the last n positions' logits (B, n, V), 0 for all (transformers' name).
        """
        if idx.ndim != 2 or idx.dtype.kind not in "iu":
            raise ValueError(f"GPT: idx must be an integer tensor (B, T), got shape {idx.shape} and dtype {idx.dtype}")
        B, T = idx.shape
        past = 0 if kv_cache is None else kv_cache.length
        if past + T > self.config.block_size:
            raise ValueError(f"GPT: cannot forward a sequence of length {past + T}, longer than block_size "
                             f"{self.config.block_size} (crop the context to its last block_size tokens)")
        if kv_cache is not None:
            if is_grad_enabled():
                raise RuntimeError("GPT: a kv_cache is for generation, where nothing is trained: call under no_grad()")
            if self.h[0].attn.variant is not None:
                raise ValueError(f"GPT: a kv_cache needs the causal attention; this model's attention is "
                                 f"{type(self.h[0].attn.variant).__name__} (generate with use_cache=False)")
        if targets is not None and logits_to_keep:
            raise ValueError(f"GPT: targets need the logits of every position, not of the last {logits_to_keep}")
        tok = self.wte(idx)  # (B, T, C)
        if self.config.positional == "learned":
            pos = self.wpe(Tensor(np.arange(past, past + T)))  # (T, C)
        else:
            pos = Tensor(self.pe.data[past:past + T], dtype=tok.dtype)  # (T, C)
        x = self.drop(tok + pos)  # (B, T, C)
        for block in self.h:
            x = block(x, kv_cache)  # (B, T, C)
        x = self.ln_f(x)
        if logits_to_keep:
            x = x[:, -logits_to_keep:]  # (B, n, C)
        logits = self.lm_head(x)  # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss

    # ---- generation ------------------------------------------------------------------------------------------

    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, seed: int | np.random.Generator | None = None,
                 use_cache: bool = True) -> Tensor:
        """Extend idx (B, T) by max_new_tokens sampled tokens -> (B, T + max_new_tokens). See `stream`."""
        ids = np.asarray(idx.data, dtype=np.int64)
        steps = self.stream(idx, max_new_tokens, temperature, top_k, top_p, seed, use_cache)
        return Tensor(np.concatenate([ids, *(step[:, None] for step in steps)], axis=1))

    def stream(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, seed: int | np.random.Generator | None = None,
               use_cache: bool = True) -> Iterator[np.ndarray]:
        """Yield the next token ids (B,) one step at a time, as they are sampled, continuing idx (B, T).

        Each step sees at most the last block_size tokens, divides the last position's logits by
        `temperature`, keeps the `top_k` most likely tokens and then the fewest whose probabilities
        add up to `top_p` (if given), and samples from the softmax with `seed` (top_k=1 is greedy).
        With `use_cache` the keys and values of the tokens seen so far are kept (`KVCache`) and each
        step feeds only the new token, with the same result; once the sequence is longer than
        block_size, the window slides and every step recomputes it (the positions shift).
        Runs under no_grad; call `model.eval()` first to switch dropout off.
        """
        if temperature <= 0:
            raise ValueError(f"GPT.generate: temperature must be positive, got {temperature}")
        if max_new_tokens < 0:
            raise ValueError(f"GPT.generate: max_new_tokens must be >= 0, got {max_new_tokens}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"GPT.generate: top_k must be a positive integer or None, got {top_k}")
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise ValueError(f"GPT.generate: top_p must be in (0, 1] or None, got {top_p}")
        if idx.ndim != 2 or idx.shape[1] == 0:
            raise ValueError(f"GPT.generate: idx must be (B, T) token ids with T >= 1, got shape {idx.shape}")
        rng = get_generator(seed, "GPT.generate")
        return self._steps(np.asarray(idx.data, dtype=np.int64), max_new_tokens, temperature, top_k, top_p, rng,
                           use_cache)

    def _steps(self, prompt: np.ndarray, max_new_tokens: int, temperature: float, top_k: int | None,
               top_p: float | None, rng: np.random.Generator, use_cache: bool) -> Iterator[np.ndarray]:
        B, n = prompt.shape
        block = self.config.block_size
        tokens = np.empty((B, n + max_new_tokens), dtype=np.int64)  # the sequence so far: tokens[:, :n]
        tokens[:, :n] = prompt
        cache = None
        if use_cache and n < block and max_new_tokens > 0:
            cache = KVCache(self.config, B, min(block, n + max_new_tokens), self.wte.weight.dtype)
        for _ in range(max_new_tokens):
            with no_grad():  # only around the model: a suspended generator must not switch the caller's grad off
                if cache is not None and n <= block:
                    logits, _ = self(Tensor(tokens[:, cache.length:n]), kv_cache=cache, logits_to_keep=1)
                else:
                    logits, _ = self(Tensor(tokens[:, max(0, n - block):n]), logits_to_keep=1)
            tokens[:, n] = sample(logits.data[:, -1], temperature, top_k, top_p, rng)
            n += 1
            yield tokens[:, n - 1].copy()

    # ---- Hugging Face files ----------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path_or_name: str | os.PathLike) -> GPT:
        """A GPT-2 from a folder written by transformers (config.json + model.safetensors), in eval mode.

        `path_or_name` is that folder, or a model name ("gpt2", "gpt2-medium", ...) that huggingface_hub
        downloads once into the data cache. The weights are read with safetensors' numpy API.
        """
        op = "GPT.from_pretrained"
        folder = pretrained_dir(path_or_name, op)
        config_file = pretrained_file(folder, "config.json", op)
        weights_file = pretrained_file(folder, "model.safetensors", op)
        config = _config_from_hf(json.loads(config_file.read_text()), config_file)
        weights = require("safetensors.numpy", op).load_file(weights_file)
        model = cls(config, seed=0)
        model.load_state_dict(_state_from_hf(weights, model, weights_file))
        del weights
        perf.release_freed_memory()  # the file's arrays and the random initial weights: half the resident memory
        return model.eval()

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write config.json and model.safetensors as transformers' GPT2LMHeadModel reads them.

        Biases the model does not have are written as zeros, sinusoidal positions as the position table.
        """
        op = "GPT.save_pretrained"
        if self.h[0].attn.variant is not None:
            raise ValueError(f"{op}: GPT-2 has no equivalent of this model's attention "
                             f"({type(self.h[0].attn.variant).__name__})")
        save_file = require("safetensors.numpy", op).save_file
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(_config_to_hf(self.config), indent=2) + "\n")
        save_file(self._hf_tensors(), folder / "model.safetensors", metadata={"format": "pt"})

    def _hf_tensors(self) -> dict[str, np.ndarray]:
        """The weights under GPT2LMHeadModel's names; its head is tied to wte, so not stored."""
        positions = self.wpe.weight.data if self.config.positional == "learned" else self.pe.data
        tensors = {"transformer.wte.weight": self.wte.weight.data, "transformer.wpe.weight": positions}
        for name, module in self.named_modules():
            if isinstance(module, (nn.Linear, nn.LayerNorm)) and module is not self.lm_head:
                weight = module.weight.data
                tensors[f"transformer.{name}.weight"] = weight.T if isinstance(module, nn.Linear) else weight
                bias = np.zeros(len(weight), np.float32) if module.bias is None else module.bias.data
                tensors[f"transformer.{name}.bias"] = bias
        return {name: np.ascontiguousarray(t, dtype=np.float32) for name, t in tensors.items()}

    def configure_optimizers(self, weight_decay: float, learning_rate: float,
                             betas: tuple[float, float] = (0.9, 0.95)) -> AdamW:
        """AdamW that decays the 2-D weights (matmuls, embeddings) but not biases or LayerNorm gains."""
        params = self.parameters()
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        return AdamW(groups, lr=learning_rate, betas=betas)


def sample(logits: np.ndarray, temperature: float, top_k: int | None, top_p: float | None,
           rng: np.random.Generator) -> np.ndarray:
    """One token id per row of logits (B, V): softmax(logits / temperature) restricted to the top_k most likely,
    then to the fewest most likely whose probabilities reach top_p, sampled by inverse CDF -> (B,) int64.
    top_k=1 is greedy: the argmax (the first of equal maxima, as transformers' do_sample=False), drawing nothing."""
    if top_k == 1:
        return logits.argmax(axis=-1)
    last = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < last.shape[-1]:
        kth = np.partition(last, -top_k, axis=-1)[:, -top_k][:, None]
        last = np.where(last < kth, -np.inf, last)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-last, axis=-1, kind="stable")  # most likely first
        ranked = np.take_along_axis(last, order, axis=-1)
        probs = np.exp(ranked - ranked[:, :1])
        probs /= probs.sum(axis=-1, keepdims=True)
        before = np.cumsum(probs, axis=-1) - probs  # the mass of the more likely tokens
        outside = np.empty_like(before, dtype=bool)
        np.put_along_axis(outside, order, before >= top_p, axis=-1)  # the most likely token always stays
        last = np.where(outside, -np.inf, last)
    probs = np.exp(last - last.max(axis=-1, keepdims=True))
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random((len(last), 1)) * cdf[:, -1:]
    return np.minimum((cdf < u).sum(axis=-1), last.shape[-1] - 1)  # (B,)


# ---- GPT-2's config.json ------------------------------------------------------------------------------------------

# transformers writes only the values that differ from GPT2Config's defaults
_HF_DEFAULTS: dict[str, Any] = {
    "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": None,
    "activation_function": "gelu_new", "resid_pdrop": 0.1, "layer_norm_epsilon": 1e-5,
    "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False, "tie_word_embeddings": True,
    "add_cross_attention": False,
}
_TANH_GELU = ("gelu_new", "gelu_pytorch_tanh")  # transformers' names of GPT-2's tanh GELU, the one our GPT uses


def _config_from_hf(hf: dict[str, Any], where: Path) -> GPTConfig:
    op = "GPT.from_pretrained"
    if hf.get("model_type") != "gpt2":
        raise ValueError(f"{op}: {where} describes a {hf.get('model_type')!r} model (architectures "
                         f"{hf.get('architectures')}); only GPT-2 files (model_type 'gpt2') load")
    hf = {**_HF_DEFAULTS, **hf}
    unsupported = {
        "activation_function": hf["activation_function"] not in _TANH_GELU,
        "n_inner": hf["n_inner"] not in (None, 4 * hf["n_embd"]),
        "scale_attn_weights": not hf["scale_attn_weights"],
        "scale_attn_by_inverse_layer_idx": hf["scale_attn_by_inverse_layer_idx"],
        "tie_word_embeddings": not hf["tie_word_embeddings"],
        "add_cross_attention": hf["add_cross_attention"],
    }
    for key, bad in unsupported.items():
        if bad:
            raise ValueError(f"{op}: {where} has {key} = {hf[key]!r}, which this GPT does not support "
                             f"(it has GPT-2's tanh GELU, a 4C feed-forward, 1/sqrt(hs) scores and a tied head)")
    return GPTConfig(vocab_size=hf["vocab_size"], block_size=hf["n_positions"], n_layer=hf["n_layer"],
                     n_head=hf["n_head"], n_embd=hf["n_embd"], dropout=float(hf["resid_pdrop"]), bias=True,
                     positional="learned", layer_norm_eps=float(hf["layer_norm_epsilon"]))


def _config_to_hf(c: GPTConfig) -> dict[str, Any]:
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": c.vocab_size,
        "n_positions": c.block_size, "n_embd": c.n_embd, "n_layer": c.n_layer, "n_head": c.n_head, "n_inner": None,
        "activation_function": "gelu_new", "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
        "layer_norm_epsilon": c.layer_norm_eps, "initializer_range": 0.02, "tie_word_embeddings": True,
        "bos_token_id": None, "eos_token_id": None,  # the model's tokenizer, not the model, knows them
    }


_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")  # stored (in, out)


def _state_from_hf(weights: dict[str, np.ndarray], model: GPT, where: Path) -> dict[str, np.ndarray]:
    """Our state_dict from GPT2LMHeadModel's (or GPT2Model's) tensors: names mapped, Conv1D weights transposed."""
    op = "GPT.from_pretrained"
    own = dict(model.named_parameters())
    state, source = {}, {}
    for key, array in weights.items():
        name = key.removeprefix("transformer.")
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # older files store the causal mask as a buffer
        if name == "lm_head.weight":  # files written with the head tied may still hold it
            tied = weights.get("transformer.wte.weight", weights.get("wte.weight"))
            if tied is not None and not np.array_equal(array, tied):
                raise ValueError(f"{op}: {where} has an lm_head.weight different from wte.weight; this GPT ties them")
            continue
        state[name], source[name] = (np.ascontiguousarray(array.T) if name.endswith(_CONV1D) else array), key
    missing, unexpected = sorted(set(own) - set(state)), sorted(source[n] for n in set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{op}: {where} does not hold GPT-2's weights for this config: missing "
                         f"{missing[:8]}{' ...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}")
    for name, p in own.items():
        if state[name].shape != p.shape:
            stored, needed = weights[source[name]].shape, p.shape[::-1] if name.endswith(_CONV1D) else p.shape
            raise ValueError(f"{op}: {source[name]} in {where} has shape {tuple(stored)}, but the config needs "
                             f"{tuple(needed)}")
    return state
