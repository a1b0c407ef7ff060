"""Train the character-level GPT (models/gpt.py) on Tiny Shakespeare or any UTF-8 text.

    python examples/train_gpt.py                            # the default: 20 minutes, the schedule following the clock
    python examples/train_gpt.py --text my.txt --max-iters 500 --max-minutes 0 --checkpoint out/my.npz
    python examples/train_gpt.py --resume                   # continue from --checkpoint
    python examples/train_gpt.py --tokenizer bpe            # on byte-level BPE tokens (models/bpe.py), not characters
    python examples/sample_gpt.py --checkpoint out/gpt.npz --prompt "ROMEO:"

Every `--eval-interval` steps the validation loss is estimated under no_grad; the
checkpoint (model, optimizer, config, tokenizer, step, RNG state, loss history)
is rewritten whenever it improves. The learning rate warms up linearly over
`--warmup-iters` steps, then follows a cosine down to `--min-lr` that ends when the
budget does: `--max-minutes` of training by the clock (the default: the schedule
follows the time, so that the whole budget is used whatever the machine's speed),
or `--max-iters` steps, whichever runs out first. `--log` writes every evaluation
as a JSON line (step, seconds, train and validation loss, learning rate), the
format benchmarks/time_to_quality.py compares. At the end the script prints a sample
and, as its last line, `val loss: N.NNNN` (the best checkpoint's, measured on
the whole validation split).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.bpe import BPETokenizer
from models.char_data import CharDataset, CharTokenizer, tokenizer_from_dict
from models.gpt import GPT, GPTConfig
from tinygrad_lite import Tensor, cli, no_grad
from tinygrad_lite.datasets import load_tinyshakespeare
from tinygrad_lite.io import load, save
from tinygrad_lite.nn.utils import clip_grad_norm_


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--text", type=Path, default=None,
      help="UTF-8 text file to train on (default: Tiny Shakespeare, shipped with the package)")
    a("--checkpoint", type=Path, default=Path("out/gpt.npz"),
      help="where the best checkpoint goes (default %(default)s)")
    a("--resume", action="store_true", help="continue training from --checkpoint")
    a("--seed", type=int, default=1337, help="seed for the weights, dropout and batches (default %(default)s)")
    g = p.add_argument_group("model")
    g.add_argument("--n-layer", type=int, default=4, help="transformer blocks (default %(default)s)")
    g.add_argument("--n-head", type=int, default=4, help="attention heads per block (default %(default)s)")
    g.add_argument("--n-embd", type=int, default=128, help="embedding width C (default %(default)s)")
    g.add_argument("--block-size", type=int, default=128, help="context length in characters (default %(default)s)")
    g.add_argument("--dropout", type=float, default=0.1, help="dropout probability (default %(default)s)")
    g.add_argument("--no-bias", dest="bias", action="store_false", help="no biases in Linear and LayerNorm layers")
    g.add_argument("--positional", choices=("learned", "sinusoidal"), default="learned",
                   help="position encoding (default %(default)s)")
    g.add_argument("--tokenizer", choices=("char", "bpe"), default="char",
                   help="one token per character, or a byte-level BPE learned from the training text "
                        "(default %(default)s)")
    g.add_argument("--vocab-size", type=int, default=512, help="the BPE's vocabulary size (default %(default)s)")
    g = p.add_argument_group("training")
    g.add_argument("--batch-size", type=int, default=16, help="sequences per step (default %(default)s)")
    g.add_argument("--max-iters", type=int, default=None,
                   help="stop after this many training steps (default: no cap, the clock decides)")
    g.add_argument("--max-minutes", type=float, default=20.0,
                   help="train for this long, evaluations included; 0 = no limit (default %(default)s)")
    g.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default %(default)s)")
    g.add_argument("--min-lr", type=float, default=1e-4,
                   help="learning rate at the end of the cosine (default %(default)s)")
    g.add_argument("--warmup-iters", type=int, default=100, help="linear warm-up steps (default %(default)s)")
    g.add_argument("--weight-decay", type=float, default=0.1, help="AdamW decay on 2-D weights (default %(default)s)")
    g.add_argument("--beta1", type=float, default=0.9, help="AdamW beta1 (default %(default)s)")
    g.add_argument("--beta2", type=float, default=0.99, help="AdamW beta2 (default %(default)s)")
    g.add_argument("--grad-clip", type=float, default=1.0,
                   help="clip the gradient norm to this; 0 = off (default %(default)s)")
    g = p.add_argument_group("evaluation and output")
    g.add_argument("--eval-interval", type=int, default=250,
                   help="steps between validation estimates (default %(default)s)")
    g.add_argument("--eval-iters", type=int, default=20, help="batches per validation estimate (default %(default)s)")
    g.add_argument("--sample-tokens", type=int, default=300, help="characters sampled at the end (default %(default)s)")
    g.add_argument("--plot", type=Path, default=None, help="write the train/validation loss curves to this PNG")
    g.add_argument("--log", type=Path, default=None, help="append every evaluation to this file as a JSON line")
    g.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    args = p.parse_args(argv)
    if not args.max_iters and args.max_minutes <= 0:
        p.error("give a budget: --max-minutes > 0 or --max-iters")
    return args


def read_text(path: Path | None) -> str:
    """The training text: `path`, or Tiny Shakespeare (shipped with the package: no download)."""
    if path is None:
        return load_tinyshakespeare()
    if not path.is_file():
        raise cli.UsageError(f"--text: no file at {path}")
    with cli.user_input(f"--text {path}"):  # not UTF-8
        return path.read_text(encoding="utf-8")


def build_tokenizer(args: argparse.Namespace, text: str) -> CharTokenizer | BPETokenizer:
    """The characters of the text, or a BPE of --vocab-size tokens learned from its first 90% (the training split)."""
    if args.tokenizer == "char":
        return CharTokenizer.from_text(text)
    return BPETokenizer.train(text[: int(len(text) * 0.9)], args.vocab_size)


@no_grad()
def estimate_loss(model: GPT, data: CharDataset, split: str, batch_size: int, iters: int, seed: int) -> float:
    """Mean loss over `iters` random batches of `split`, in eval mode (the same batches at every call)."""
    model.eval()
    rng = np.random.default_rng(seed)
    losses = [model(*data.get_batch(split, batch_size, rng))[1].item() for _ in range(iters)]
    model.train()
    return float(np.mean(losses))


@no_grad()
def full_val_loss(model: GPT, data: CharDataset, batch_size: int = 64) -> float:
    """Mean next-character loss over the whole validation split, cut into consecutive block_size windows."""
    model.eval()
    ids, T = data.splits["val"], data.block_size
    n = (len(ids) - 1) // T
    x_all, y_all = ids[: n * T].reshape(n, T), ids[1: n * T + 1].reshape(n, T)
    total = 0.0
    for i in range(0, n, batch_size):
        _, loss = model(Tensor(x_all[i:i + batch_size]), Tensor(y_all[i:i + batch_size]))
        total += loss.item() * len(x_all[i:i + batch_size])
    model.train()
    return total / n


def budget_used(step: int, seconds: float, args: argparse.Namespace) -> float:
    """The fraction of the training budget spent: the larger of step / --max-iters and time / --max-minutes."""
    return max(step / args.max_iters if args.max_iters else 0.0,
               seconds / (60 * args.max_minutes) if args.max_minutes > 0 else 0.0)


def learning_rate(step: int, used: float, warmup_end: float, args: argparse.Namespace) -> float:
    """Linear warm-up to --lr over the first --warmup-iters steps, then a cosine down to --min-lr that arrives
    when the budget is spent (`used` = 1); `warmup_end` is the fraction of the budget the warm-up used.
    With a budget in steps alone this is nanoGPT's schedule (`optim.lr_scheduler.cosine_with_warmup`)."""
    if step < args.warmup_iters:
        return args.lr * (step + 1) / (args.warmup_iters + 1)
    progress = min(1.0, (used - warmup_end) / max(1.0 - warmup_end, 1e-9))
    return args.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (args.lr - args.min_lr)


def append_log(path: Path | None, record: dict) -> None:
    """One JSON line in the --log file (nothing without one)."""
    if path is not None:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")


def plot_history(history: dict[str, list[float]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(history["train_step"], history["train_loss"], label="train (running mean)", alpha=0.8)
    ax.plot(history["val_step"], history["val_loss"], "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / character)")
    ax.set_title("char GPT on Tiny Shakespeare")
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    text = read_text(args.text)
    start_step, best_val, seconds_before, warmup_seconds = 0, math.inf, 0.0, math.nan  # nan: not yet
    history: dict[str, list[float]] = {"train_step": [], "train_loss": [], "val_step": [], "val_loss": [],
                                       "val_seconds": []}
    if args.resume:
        ckpt = cli.load_checkpoint(args.checkpoint, f"python examples/train_gpt.py --checkpoint {args.checkpoint}")
        config = GPTConfig.from_dict(ckpt["config"])
        tokenizer = tokenizer_from_dict(ckpt["tokenizer"])
    else:
        tokenizer = build_tokenizer(args, text)
        with cli.user_input():  # a bad option value: n_embd not divisible by n_head, ...
            config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=args.block_size, n_layer=args.n_layer,
                               n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout, bias=args.bias,
                               positional=args.positional)
    with cli.user_input():  # a text too short for the block size
        data = CharDataset(text, config.block_size, tokenizer)
    model = GPT(config, seed=args.seed)
    optimizer = model.configure_optimizers(args.weight_decay, args.lr, (args.beta1, args.beta2))
    batch_rng = np.random.default_rng(args.seed)
    if args.resume:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        batch_rng.bit_generator.state = ckpt["rng"]["batches"]
        model.rng.bit_generator.state = ckpt["rng"]["model"]
        start_step, best_val, history = int(ckpt["step"]), float(ckpt["best_val"]), ckpt["history"]
        schedule = ckpt.get("schedule", {})  # the clock, and when the warm-up ended: the cosine goes on from there
        seconds_before = float(schedule.get("seconds", 0.0))
        warmup_seconds = float(schedule.get("warmup_seconds", math.nan))
        history.setdefault("val_seconds", [])
        print(f"resumed from {args.checkpoint} at step {start_step} (best val loss {best_val:.4f})")
    print(f"{model.num_parameters() / 1e6:.2f}M parameters; {config}")

    def save_checkpoint(step: int, seconds: float) -> None:
        save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "config": config.to_dict(),
              "tokenizer": tokenizer.to_dict(), "step": step, "best_val": best_val, "history": history,
              "schedule": {"seconds": seconds, "warmup_seconds": warmup_seconds},
              "rng": {"batches": batch_rng.bit_generator.state, "model": model.rng.bit_generator.state}},
             args.checkpoint)

    def evaluate(step: int, running: list[float], lr: float) -> None:
        """Record the losses at `step`; checkpoint if validation improved."""
        nonlocal best_val
        train = float(np.mean(running)) if running else float("nan")
        if running:
            history["train_step"].append(step)
            history["train_loss"].append(train)
        val = estimate_loss(model, data, "val", args.batch_size, args.eval_iters, args.seed + 1)
        seconds = clock()
        history["val_step"].append(step)
        history["val_loss"].append(val)
        history["val_seconds"].append(seconds)
        tqdm.write(f"step {step}: train {train:.4f}, val {val:.4f}, {seconds / 60:.1f} min")
        append_log(args.log, {"step": step, "seconds": round(seconds, 3), "train": train, "val": val, "lr": lr})
        if val < best_val:
            best_val = val
            save_checkpoint(step, seconds)

    if args.log is not None and not args.resume:
        args.log.parent.mkdir(parents=True, exist_ok=True)
        args.log.write_text("")
    tokens_per_step = args.batch_size * config.block_size
    running: list[float] = []
    step, t_start, lr = start_step, time.perf_counter(), args.lr
    clock = lambda: seconds_before + time.perf_counter() - t_start  # training seconds, earlier runs included
    with tqdm(total=args.max_iters, initial=start_step, disable=args.no_progress, dynamic_ncols=True) as bar:
        while True:
            t_step = time.perf_counter()
            used = budget_used(step, clock(), args)
            if used >= 1.0:
                break
            if math.isnan(warmup_seconds) and step >= args.warmup_iters:
                warmup_seconds = clock()
            warmup_end = budget_used(args.warmup_iters, 0.0 if math.isnan(warmup_seconds) else warmup_seconds, args)
            lr = learning_rate(step, used, warmup_end, args)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = data.get_batch("train", args.batch_size, batch_rng)
            _, loss = model(x, y)
            optimizer.zero_grad()
            loss.backward()
            if args.grad_clip > 0:
                clip_grad_norm_(model.parameters(), args.grad_clip)
            optimizer.step()
            step += 1
            running.append(loss.item())
            bar.update()
            bar.set_postfix(loss=f"{running[-1]:.4f}", lr=f"{lr:.2e}",
                            tok_s=f"{tokens_per_step / (time.perf_counter() - t_step):.0f}")
            if step % args.eval_interval == 0:
                evaluate(step, running, lr)
                running = []
    if not history["val_step"] or history["val_step"][-1] != step:
        evaluate(step, running, lr)  # the last steps since the previous evaluation
    print(f"trained {step - start_step} steps in {(time.perf_counter() - t_start) / 60:.2f} min")
    if args.plot is not None:
        plot_history(history, args.plot)
        print(f"loss curves written to {args.plot}")

    best = GPT(config, seed=args.seed)
    best.load_state_dict(load(args.checkpoint)["model"])
    best.eval()
    prompt = Tensor(tokenizer.encode("\n")[None, :])
    sample = best.generate(prompt, args.sample_tokens, temperature=0.8, top_k=40, seed=args.seed)
    print("-" * 60)
    print(tokenizer.decode(sample.data[0]))
    print("-" * 60)
    val = full_val_loss(best, data)  # the best checkpoint on the whole validation split
    append_log(args.log, {"final_val": val, "steps": step})
    print(f"val loss: {val:.4f}")
    return val


if __name__ == "__main__":
    cli.run(main)
