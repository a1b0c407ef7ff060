"""Time one GPT training step (forward, backward, AdamW) on tinygrad_lite against the same model in PyTorch CPU.

    python benchmarks/bench_gpt.py            # both configs of the issue, then block sizes 64/128/256
    python benchmarks/bench_gpt.py --steps 20 --skip-scaling

Both run on 2 threads; PyTorch in the same process, float32 and explicit masked
attention (q kᵀ, masked_fill, softmax, @ v), the same initial weights and the
same batches. Times are medians over `--steps` steps after `--warmup` steps, the two
frameworks taking turns in six rounds.
Peak memory is the largest total of live numpy buffers during one step
(tracemalloc, which numpy reports to); RSS is the process's peak resident size.
"""

from __future__ import annotations

import argparse
import functools
import math
import resource
import statistics
import time
import tracemalloc

import numpy as np

from models.gpt import GPT, GPTConfig
from tinygrad_lite import Tensor
from tinygrad_lite.nn.utils import clip_grad_norm_
from tinygrad_lite.perf import set_num_threads

try:
    import torch
except ImportError:  # the comparison is skipped, the engine is still timed
    torch = None

CONFIGS = {  # name: (n_layer, n_head, n_embd, block_size, batch_size)
    "4L/4H/128, block 64, batch 12": (4, 4, 128, 64, 12),
    "6L/6H/192, block 128, batch 16": (6, 6, 192, 128, 16),
}
TARGETS = {"4L/4H/128, block 64, batch 12": 1.2, "6L/6H/192, block 128, batch 16": 1.1}
VOCAB = 65


def engine_step(model: GPT, optimizer, x: Tensor, y: Tensor) -> float:
    _, loss = model(x, y)
    optimizer.zero_grad()
    loss.backward()
    clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def torch_model(config: GPTConfig, weights: dict[str, np.ndarray], attention: str = "explicit"):
    """The same GPT in PyTorch, loaded with the engine's initial weights, with dropout where the engine's has it
    (embeddings, attention weights, both residual branches). `attention`: "explicit" (q kᵀ, masked_fill,
    softmax, @ v, as written out by hand) or "sdpa" (F.scaled_dot_product_attention, as nanoGPT)."""
    nn, F = torch.nn, torch.nn.functional
    C, nh, p = config.n_embd, config.n_head, config.dropout
    if attention not in ("explicit", "sdpa"):
        raise ValueError(f"torch_model: attention must be 'explicit' or 'sdpa', got {attention!r}")

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.attn_dropout, self.resid_dropout = nn.Dropout(p), nn.Dropout(p)
            self.register_buffer("mask", torch.tril(torch.ones(config.block_size, config.block_size, dtype=torch.bool)))

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in self.c_attn(x).split(C, dim=2))
            if attention == "sdpa":
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p if self.training else 0.0, is_causal=True)
            else:
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // nh))
                y = self.attn_dropout(att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(dim=-1)) @ v
            return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn, self.ln_2 = nn.LayerNorm(C), Attention(), nn.LayerNorm(C)
            self.mlp = nn.Sequential(nn.Linear(C, 4 * C), nn.GELU(approximate="tanh"), nn.Linear(4 * C, C),
                                     nn.Dropout(p))

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(config.vocab_size, C), nn.Embedding(config.block_size, C)
            self.h = nn.ModuleList(Block() for _ in range(config.n_layer))
            self.ln_f, self.drop = nn.LayerNorm(C), nn.Dropout(p)

        def forward(self, idx, targets):
            x = self.drop(self.wte(idx) + self.wpe(torch.arange(idx.shape[1])))
            for block in self.h:
                x = block(x)
            logits = self.ln_f(x) @ self.wte.weight.T
            return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))

    model = TorchGPT()
    renamed = {k.replace("mlp.c_fc", "mlp.0").replace("mlp.c_proj", "mlp.2"): torch.from_numpy(v.copy())
               for k, v in weights.items()}
    model.load_state_dict(renamed, strict=False)
    return model


def torch_step(model, optimizer, x, y) -> float:
    loss = model(x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def median_ms(runs: list[tuple], warmup: int, steps: int, rounds: int = 6) -> list[float]:
    """Median step time of each (step, batches) in `runs`, taking turns in `rounds` rounds.

    Taking turns puts both frameworks under the same load when a shared machine
    speeds up or slows down during the measurement. Each turn starts with an
    untimed step: the other framework's idle threads may still be spinning.
    """
    for i in range(warmup):
        for step, batches in runs:
            step(*batches[i % len(batches)])
    times: list[list[float]] = [[] for _ in runs]
    for r in range(rounds):
        for (step, batches), spent in zip(runs, times):
            step(*batches[0])
            for i in range(r * steps // rounds, (r + 1) * steps // rounds):
                t0 = time.perf_counter()
                step(*batches[i % len(batches)])
                spent.append(time.perf_counter() - t0)
    return [1000 * statistics.median(spent) for spent in times]


def peak_step_mib(step, batch) -> float:
    """The largest total of live traced allocations (numpy buffers included) during one step."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        step(*batch)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def setup(n_layer: int, n_head: int, n_embd: int, block: int, batch: int):
    config = GPTConfig(vocab_size=VOCAB, block_size=block, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    model = GPT(config, seed=0)
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.99))
    rng = np.random.default_rng(0)
    batches = [(Tensor(rng.integers(0, VOCAB, (batch, block))), Tensor(rng.integers(0, VOCAB, (batch, block))))
               for _ in range(4)]
    return config, model, optimizer, batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per measurement (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--skip-scaling", action="store_true", help="skip the block-size 64/128/256 table")
    args = parser.parse_args()
    set_num_threads(2)
    if torch is not None:
        torch.set_num_threads(2)
        torch.manual_seed(0)

    print(f"{'model':34s} {'tinygrad_lite':>14s} {'PyTorch':>10s} {'ratio':>7s} {'target':>7s} {'peak MiB':>9s}")
    for name, dims in CONFIGS.items():
        config, model, optimizer, batches = setup(*dims)
        runs = [(functools.partial(engine_step, model, optimizer), batches)]
        if torch is not None:
            tmodel = torch_model(config, model.state_dict())
            decay = [p for p in tmodel.parameters() if p.ndim >= 2]
            rest = [p for p in tmodel.parameters() if p.ndim < 2]
            toptim = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                       lr=1e-3, betas=(0.9, 0.99))
            tbatches = [(torch.from_numpy(x.data), torch.from_numpy(y.data)) for x, y in batches]
            runs.append((functools.partial(torch_step, tmodel, toptim), tbatches))
        times = median_ms(runs, args.warmup, args.steps)
        ours, theirs = times[0], (times[1] if torch is not None else float("nan"))
        peak = peak_step_mib(functools.partial(engine_step, model, optimizer), batches[0])
        ratio = ours / theirs
        print(f"{name:34s} {ours:11.1f} ms {theirs:7.1f} ms {ratio:6.2f}x {TARGETS[name]:6.1f}x {peak:9.1f}")

    if not args.skip_scaling:
        print("\nstep time and peak memory against block size (4L/4H/128, batch 12):")
        print(f"{'block':>6s} {'step ms':>9s} {'tokens/s':>9s} {'peak MiB':>9s}")
        for block in (64, 128, 256):
            _, model, optimizer, batches = setup(4, 4, 128, block, 12)
            ms = median_ms([(functools.partial(engine_step, model, optimizer), batches)], args.warmup, args.steps)[0]
            peak = peak_step_mib(functools.partial(engine_step, model, optimizer), batches[0])
            print(f"{block:6d} {ms:9.1f} {12 * block / ms * 1000:9.0f} {peak:9.1f}")
    print(f"\nprocess peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
