"""examples/train_gpt.py's model and recipe in PyTorch CPU: the other half of the time-to-quality comparison.

    python examples/train_gpt.py --log out/ours.jsonl --no-progress
    python benchmarks/train_gpt_torch.py --log out/torch.jsonl --no-progress
    python benchmarks/time_to_quality.py out/ours.jsonl out/torch.jsonl      # times to val 1.60, their ratio

It takes train_gpt's arguments and keeps everything else the same: the text and its split, the initial
weights (the engine's GPT built with --seed, copied into the PyTorch twin of benchmarks/bench_gpt.py), the
batches (CharDataset with the same seeded generator; dropout masks come from PyTorch's generator, seeded
too), the schedule (train_gpt's `budget_used` and `learning_rate`, following the clock), gradient clipping,
AdamW with decay on the 2-D weights, the evaluation (the same validation batches every --eval-interval
steps, and at the end the whole validation split with the best weights) and the log's format. Attention
is `F.scaled_dot_product_attention` (nanoGPT's; `--torch-attention explicit` writes it out). PyTorch keeps
its default thread count, the number of cores, as the engine does.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "examples")]

import torch  # noqa: E402
import train_gpt  # noqa: E402
from bench_gpt import torch_model  # noqa: E402

from models.char_data import CharDataset  # noqa: E402
from models.gpt import GPT, GPTConfig  # noqa: E402


def batch(data: CharDataset, split: str, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(t.data) for t in data.get_batch(split, batch_size, rng))


@torch.no_grad()
def estimate_loss(model, data: CharDataset, batch_size: int, iters: int, seed: int) -> float:
    """train_gpt.estimate_loss in PyTorch: the mean loss over the same `iters` validation batches."""
    rng = np.random.default_rng(seed)
    model.eval()
    losses = [model(*batch(data, "val", batch_size, rng)).item() for _ in range(iters)]
    model.train()
    return float(np.mean(losses))


@torch.no_grad()
def full_val_loss(model, data: CharDataset, batch_size: int = 64) -> float:
    """train_gpt.full_val_loss in PyTorch: the whole validation split in consecutive block_size windows."""
    model.eval()
    ids, T = data.splits["val"], data.block_size
    n = (len(ids) - 1) // T
    x_all, y_all = torch.from_numpy(ids[: n * T].reshape(n, T)), torch.from_numpy(ids[1: n * T + 1].reshape(n, T))
    total = sum(model(x_all[i:i + batch_size], y_all[i:i + batch_size]).item() * len(x_all[i:i + batch_size])
                for i in range(0, n, batch_size))
    return total / n


def main(argv: list[str] | None = None) -> float:
    argv = list(sys.argv[1:] if argv is None else argv)
    attention = "sdpa"
    if "--torch-attention" in argv:
        i = argv.index("--torch-attention")
        attention = argv[i + 1]
        del argv[i:i + 2]
    args = train_gpt.parse_args(argv)
    if not args.bias or args.positional != "learned" or args.resume:
        raise SystemExit("error: the PyTorch twin always has biases and learned positions, and does not resume; "
                         "drop --no-bias, --positional and --resume")
    text = train_gpt.read_text(args.text)
    tokenizer = train_gpt.build_tokenizer(args, text)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=args.block_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout)
    data = CharDataset(text, config.block_size, tokenizer)
    model = torch_model(config, GPT(config, seed=args.seed).state_dict(), attention)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=args.lr, betas=(args.beta1, args.beta2))
    batch_rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, attention {attention}; {config}")
    if args.log is not None:
        args.log.parent.mkdir(parents=True, exist_ok=True)
        args.log.write_text("")
    best_val, best_state, running, lr = math.inf, None, [], args.lr
    step, warmup_seconds, t_start = 0, math.nan, time.perf_counter()
    clock = lambda: time.perf_counter() - t_start

    def evaluate() -> None:
        nonlocal best_val, best_state, running
        train = float(np.mean(running)) if running else float("nan")
        val = estimate_loss(model, data, args.batch_size, args.eval_iters, args.seed + 1)
        seconds = clock()
        print(f"step {step}: train {train:.4f}, val {val:.4f}, {seconds / 60:.1f} min", flush=True)
        train_gpt.append_log(args.log, {"step": step, "seconds": round(seconds, 3), "train": train, "val": val,
                                        "lr": lr})
        if val < best_val:
            best_val, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
        running = []

    while True:
        used = train_gpt.budget_used(step, clock(), args)
        if used >= 1.0:
            break
        if math.isnan(warmup_seconds) and step >= args.warmup_iters:
            warmup_seconds = clock()
        warmup_end = train_gpt.budget_used(args.warmup_iters, 0.0 if math.isnan(warmup_seconds) else warmup_seconds,
                                           args)
        lr = train_gpt.learning_rate(step, used, warmup_end, args)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = model(*batch(data, "train", args.batch_size, batch_rng))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        step += 1
        running.append(loss.item())
        if step % args.eval_interval == 0:
            evaluate()
    if running or step % args.eval_interval:
        evaluate()
    print(f"trained {step} steps in {clock() / 60:.2f} min")
    model.load_state_dict(best_state)
    val = full_val_loss(model, data)
    train_gpt.append_log(args.log, {"final_val": val, "steps": step})
    print(f"val loss: {val:.4f}")
    return val


if __name__ == "__main__":
    main()
