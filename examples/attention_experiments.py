"""Attention experiments: train the char GPT once per attention score and mask, and compare them honestly.

    python examples/attention_experiments.py          # the full sweep into out/attention/ (~20 min on 2 cores)
    python examples/attention_experiments.py --quick  # a ~2-minute smoke run
    python examples/attention_experiments.py --variants dot/causal,l2/causal --steps 100
    python examples/attention_experiments.py --replot --out docs/results/attention --plot attention.png

Every variant (each score with the causal mask, each mask with the dot score;
see models/attention_variants.py) gets the same seed, config, batches and
number of steps on Tiny Shakespeare. The outputs in --out:

    results.md       the table, the honest reading of each loss, and a generated sample per model
    val_curves.png   validation loss (with the training mask) over steps, and the loss at generation time
                     (or wherever --plot says)
    results.json     every number, for re-plotting with --replot (no training)

Three losses per model, all in nats per character on the same validation windows:
- val loss (training mask): what the training objective reports. With `none` or
  `anti_causal` position t attends token t+1, which is its own target: leaked.
- val loss at generation: each character predicted from a prefix that ends at
  it, exactly as `GPT.generate` runs the model (whatever its mask). This is the
  honest number; for causal masks it equals the previous one.
- baseline NLL of samples: text the model generates, scored by the dot/causal
  model (lower = more Shakespeare-like to the baseline; the baseline's own
  samples give the reference).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.attention_variants import MASKS, SCORES, variant
from models.char_data import CharDataset
from models.gpt import GPT, GPTConfig
from tinygrad_lite import Tensor, cli, no_grad
from tinygrad_lite.datasets import load_tinyshakespeare
from tinygrad_lite.nn.utils import clip_grad_norm_
from tinygrad_lite.optim.lr_scheduler import cosine_with_warmup

BASELINE = ("dot", "causal")
LEAKY_MASKS = {"none": "leaked: position t attends token t+1, its own target",
               "anti_causal": "leaked: position t attends itself and the future, token t+1 included"}
MEANING = {"causal": "honest: sees itself and the past",
           "strict_causal": "honest: sees the past only (position 0 attends nothing, outputs 0)"}


def default_variants() -> list[tuple[str, str]]:
    """Every score with the causal mask, then every other mask with the dot score; the baseline first."""
    return [(s, "causal") for s in SCORES] + [("dot", m) for m in MASKS if m != "causal"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--quick", action="store_true", help="a ~2-minute smoke run: few steps, small evaluations")
    a("--replot", action="store_true", help="only redraw the figure from --out's results.json (no training)")
    a("--plot", type=Path, default=None, help="where the figure goes (default: --out's val_curves.png)")
    a("--data-dir", type=Path, default=None,
      help="folder holding tinyshakespeare/input.txt (default: $TINYGRAD_LITE_DATA if it holds it, else the copy "
           "shipped with the package)")
    a("--out", type=Path, default=Path("out/attention"), help="output folder (default %(default)s)")
    a("--variants", default=None,
      help="comma-separated score/mask pairs, e.g. dot/causal,l2/causal (default: the whole sweep)")
    a("--seed", type=int, default=1337, help="one seed for every variant's weights and batches (default %(default)s)")
    a("--steps", type=int, default=800, help="training steps per variant (default %(default)s)")
    a("--batch-size", type=int, default=32, help="sequences per step (default %(default)s)")
    a("--block-size", type=int, default=64, help="context length (default %(default)s)")
    a("--n-layer", type=int, default=2, help="transformer blocks (default %(default)s)")
    a("--n-head", type=int, default=4, help="heads per block (default %(default)s)")
    a("--n-embd", type=int, default=96, help="embedding width (default %(default)s)")
    a("--lr", type=float, default=3e-3, help="peak learning rate, cosine to lr/20 (default %(default)s)")
    a("--eval-interval", type=int, default=50, help="steps between validation points (default %(default)s)")
    a("--eval-windows", type=int, default=128,
      help="validation windows for the curve points (default %(default)s)")
    a("--final-windows", type=int, default=256,
      help="validation windows for the final table (default %(default)s)")
    a("--sample-chars", type=int, default=200, help="characters generated per sample (default %(default)s)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.eval_interval, args.eval_windows, args.final_windows, args.sample_chars = 40, 10, 32, 64, 80
    return args


def parse_variants(spec: str | None) -> list[tuple[str, str]]:
    if spec is None:
        return default_variants()
    variants = []
    for item in spec.split(","):
        score, _, mask = item.strip().partition("/")
        with cli.user_input("--variants"):  # an unknown name: one line, before any training
            variant(score, mask or "causal")
        variants.append((score, mask or "causal"))
    return variants


def val_windows(data: CharDataset, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n fixed random validation windows: inputs and next-character targets, int64 (n, block_size)."""
    x, y = data.get_batch("val", n, np.random.default_rng(seed))
    return x.data, y.data


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-position -log p(target), logits (..., V), targets (...) -> (...), in float64."""
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=-1))
    return log_norm - np.take_along_axis(z, targets[..., None], axis=-1)[..., 0]


@no_grad()
def loss_with_training_mask(model: GPT, x: np.ndarray, y: np.ndarray, batch: int = 64) -> float:
    """Mean next-character loss of whole windows, every position at once (what training optimises)."""
    model.eval()
    losses = [cross_entropy(model(Tensor(x[i:i + batch]))[0].data, y[i:i + batch]) for i in range(0, len(x), batch)]
    model.train()
    return float(np.concatenate(losses).mean())


@no_grad()
def loss_at_generation(model: GPT, x: np.ndarray, y: np.ndarray, batch: int = 64) -> float:
    """Mean loss when character t is predicted from the prefix x[:, :t+1] and nothing after it, read at the
    prefix's last position: exactly how `generate` uses the model, so no mask can leak the answer."""
    model.eval()
    losses = []
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        for t in range(xb.shape[1]):
            last = model(Tensor(xb[:, :t + 1]))[0].data[:, -1]  # (b, V)
            losses.append(cross_entropy(last, yb[:, t]))
    model.train()
    return float(np.concatenate(losses).mean())


@no_grad()
def text_nll(model: GPT, ids: np.ndarray) -> float:
    """Mean loss of `model` on token ids (n, L), cut into consecutive windows of at most block_size + 1."""
    model.eval()
    step, losses = model.config.block_size, []
    for start in range(0, ids.shape[1] - 1, step):
        chunk = ids[:, start:start + step + 1]
        if chunk.shape[1] > 1:
            losses.append(cross_entropy(model(Tensor(chunk[:, :-1]))[0].data, chunk[:, 1:]).ravel())
    model.train()
    return float(np.concatenate(losses).mean())


@dataclass
class Result:
    score: str
    mask: str
    steps: list[int] = field(default_factory=list)
    val_curve: list[float] = field(default_factory=list)
    train_loss: float = float("nan")
    val_loss: float = float("nan")
    generation_loss: float = float("nan")
    baseline_nll: float = float("nan")
    minutes: float = 0.0
    samples: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.score}/{self.mask}"


def train_variant(score: str, mask: str, args: argparse.Namespace, data: CharDataset,
                  curve_windows: tuple[np.ndarray, np.ndarray]) -> tuple[GPT, Result]:
    """Train one variant from the shared seed on the shared batch stream; record its validation curve."""
    config = GPTConfig(vocab_size=data.vocab_size, block_size=args.block_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd)
    # the baseline is the GPT's own fused attention; every other variant is injected into it
    model = GPT(config, seed=args.seed, attention=None if (score, mask) == BASELINE else variant(score, mask))
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=args.lr, betas=(0.9, 0.99))
    batches = np.random.default_rng(args.seed)
    result, running, t0 = Result(score, mask), [], time.perf_counter()
    warmup = max(1, args.steps // 10)
    for step in range(1, args.steps + 1):
        lr = cosine_with_warmup(step - 1, args.lr, warmup, args.steps, args.lr / 20)
        for group in optimizer.param_groups:
            group["lr"] = lr
        _, loss = model(*data.get_batch("train", args.batch_size, batches))
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running.append(loss.item())
        if step % args.eval_interval == 0 or step == args.steps:
            result.steps.append(step)
            result.val_curve.append(loss_with_training_mask(model, *curve_windows))
            print(f"  {result.name:22s} step {step:4d}: train {np.mean(running[-args.eval_interval:]):.3f}, "
                  f"val {result.val_curve[-1]:.3f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    result.train_loss = float(np.mean(running[-args.eval_interval:]))
    result.minutes = (time.perf_counter() - t0) / 60
    return model, result


def evaluate(model: GPT, result: Result, args: argparse.Namespace, data: CharDataset,
             final_windows: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Fill in the final losses and samples; return the generated ids (n_samples, L) for baseline scoring."""
    result.val_loss = loss_with_training_mask(model, *final_windows)
    result.generation_loss = loss_at_generation(model, *final_windows)
    model.eval()
    prompt = Tensor(np.tile(data.tokenizer.encode("\n"), (4, 1)))
    generated = model.generate(prompt, args.sample_chars, temperature=1.0, seed=args.seed, use_cache=False).data
    model.train()
    result.samples = [data.tokenizer.decode(row[1:]) for row in generated]
    return generated


def markdown(results: list[Result], args: argparse.Namespace, vocab_size: int, total_minutes: float) -> str:
    rows = ["| variant | train loss | val loss (training mask) | val loss at generation | baseline NLL of samples "
            "| what the training loss means |", "|---|---|---|---|---|---|"]
    for r in results:
        leaked = r.mask in LEAKY_MASKS
        val = f"**{r.val_loss:.3f} (leaked)**" if leaked else f"{r.val_loss:.3f}"
        train = f"{r.train_loss:.3f} (leaked)" if leaked else f"{r.train_loss:.3f}"
        meaning = LEAKY_MASKS.get(r.mask) or MEANING[r.mask]
        rows.append(f"| `{r.name}` | {train} | {val} | {r.generation_loss:.3f} | {r.baseline_nll:.3f} | {meaning} |")
    config = (f"{args.n_layer} layers, {args.n_head} heads, n_embd {args.n_embd}, block {args.block_size}, "
              f"batch {args.batch_size}, {args.steps} steps, AdamW lr {args.lr} cosine, seed {args.seed}")
    parts = [
        "# Attention experiments on Tiny Shakespeare", "",
        f"Same config for every variant: {config}. Sweep time {total_minutes:.1f} min.", "",
        "Losses in nats per character on the same validation windows "
        f"({args.final_windows} windows of {args.block_size}); a uniform guess over the {vocab_size} characters "
        f"scores {np.log(vocab_size):.2f}.", "",
        "- *train loss*: mean training loss over the last evaluation interval.",
        "- *val loss (training mask)*: every position at once, with the mask the model trained with.",
        "- *val loss at generation*: character t predicted from the prefix ending at t only, read at its last "
        "position, as `generate` does: the honest loss. Equal to the previous column for causal masks.",
        "- *baseline NLL of samples*: 4 generated samples (temperature 1) scored by the `dot/causal` model.", "",
        *rows, "", "## Samples (temperature 1.0, prompt: a newline)", ""]
    for r in results:
        parts += [f"### `{r.name}`", "", "```", r.samples[0].strip("\n") if r.samples else "", "```", ""]
    return "\n".join(parts)


def plot(results: list[Result], path: Path) -> None:
    """Left: the honest variants' validation curves, zoomed; middle: all of them, the leaked ones dashed;
    right: each model's final loss with its training mask beside its loss at generation time. The legends sit
    below the panels, so that they cover no curve and no bar."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (zoom, curves, bars) = plt.subplots(1, 3, figsize=(18, 5.8), layout="constrained",
                                             gridspec_kw={"width_ratios": [3, 3, 2.4]})
    for r in results:
        leaked = r.mask in LEAKY_MASKS
        style = dict(marker="o", markersize=3, label=r.name + (" (leaked)" if leaked else ""))
        curves.plot(r.steps, r.val_curve, "--" if leaked else "-", **style)
        if leaked:
            zoom.plot([], [])  # left out, but every variant keeps one colour across both panels
        else:
            zoom.plot(r.steps, r.val_curve, "-", **style)
    zoom.set_title("validation loss, honest masks only (zoomed)")
    curves.set_title("validation loss with the training mask (dashed: leaked)")
    for ax in (zoom, curves):
        ax.set_xlabel("step")
        ax.set_ylabel("nats / char")
        ax.grid(alpha=0.3)
    legend = dict(fontsize=9, frameon=False)
    fig.legend(*curves.get_legend_handles_labels(), loc="outside lower left", ncol=5, **legend)  # both curve panels
    names = [r.name for r in results]
    ypos = np.arange(len(results))
    longest = 0.0
    for offset, values, label in ((-0.2, [r.val_loss for r in results], "training mask"),
                                  (0.2, [r.generation_loss for r in results], "at generation (honest)")):
        drawn = bars.barh(ypos + offset, values, height=0.4, label=label)
        bars.bar_label(drawn, fmt="%.2f", fontsize=7, padding=2)
        longest = max(longest, *values)
    bars.set_xlim(0, longest * 1.12)  # room for the value written after the longest bar
    bars.set_yticks(ypos, names, fontsize=8)
    bars.invert_yaxis()
    bars.set_xlabel("final validation loss (nats / char)")
    bars.set_title("leaked vs honest loss")
    bars.grid(alpha=0.3, axis="x")
    bars.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), **legend)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    figure = args.plot or args.out / "val_curves.png"
    if args.replot:
        saved = args.out / "results.json"
        if not saved.is_file():
            raise cli.UsageError(f"--replot: no {saved}; run the sweep first: python examples/attention_experiments.py "
                                 f"--out {args.out}")
        results = [Result(**r) for r in json.loads(saved.read_text(encoding="utf-8"))]
        plot(results, figure)
        print(f"redrew {figure}")
        return results
    variants = parse_variants(args.variants)
    with cli.user_input():  # a --block-size longer than the text allows
        data = CharDataset(load_tinyshakespeare(args.data_dir), args.block_size)
    curve_windows = val_windows(data, args.eval_windows, args.seed + 1)
    final_windows = val_windows(data, args.final_windows, args.seed + 2)
    print(f"{len(variants)} variants x {args.steps} steps: {', '.join(f'{s}/{m}' for s, m in variants)}")
    t0, results, generated, baseline = time.perf_counter(), [], [], None
    for score, mask in variants:
        model, result = train_variant(score, mask, args, data, curve_windows)
        generated.append(evaluate(model, result, args, data, final_windows))
        results.append(result)
        print(f"{result.name}: train {result.train_loss:.3f}, val {result.val_loss:.3f}, at generation "
              f"{result.generation_loss:.3f} ({result.minutes:.1f} min training)", flush=True)
        if (score, mask) == BASELINE:
            baseline = model
    if baseline is None:  # the judge of the samples is always the dot/causal model
        baseline, _ = train_variant(*BASELINE, args, data, curve_windows)
    for result, ids in zip(results, generated):
        result.baseline_nll = text_nll(baseline, ids)
    total = (time.perf_counter() - t0) / 60
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(markdown(results, args, data.vocab_size, total), encoding="utf-8")
    (args.out / "results.json").write_text(json.dumps([r.__dict__ for r in results], indent=1), encoding="utf-8")
    plot(results, figure)
    print(markdown(results, args, data.vocab_size, total))
    print(f"wrote {args.out / 'results.md'}, {figure}, {args.out / 'results.json'} ({total:.1f} min)")
    return results


if __name__ == "__main__":
    cli.run(main)
