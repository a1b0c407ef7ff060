"""Draw each head's attention weights for a prompt as heatmaps (one row of heads per layer).

    python examples/attention_map.py --checkpoint out/gpt.npz --out attention.png \\
        --prompt "The pizza came out of the oven and it was hot." --query "it"

Row i of a heatmap is query position i; column j how much it reads from position j
(each row sums to 1; the upper triangle is 0 because the attention is causal). With
`--query`, the script also prints which earlier characters each head weighs most
from the last character of the first occurrence of that text: this is where one
looks to see whether "it" reads from "pizza" or from "oven".
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tinygrad_lite import Tensor, cli, no_grad
from tinygrad_lite.nn.attention import ScaledDotProductAttention
from tinygrad_lite.tensor import op_hook


def attention_maps(model, idx: Tensor) -> list[np.ndarray]:
    """One (B, nh, T, T) array of attention weights per layer, recorded during a forward pass."""
    maps: list[np.ndarray] = []

    def record(fn, _out) -> None:
        if isinstance(fn, ScaledDotProductAttention):
            maps.append(fn.probs.copy())

    with no_grad(), op_hook(record):
        model(idx)
    return maps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=Path("out/gpt.npz"), help="checkpoint (default %(default)s)")
    p.add_argument("--prompt", default="The pizza came out of the oven and it was hot.",
                   help="text to look at (cropped to its last block_size characters)")
    p.add_argument("--query", default="it", help="text whose last character's attention is printed (default it)")
    p.add_argument("--out", type=Path, default=Path("attention.png"), help="PNG to write (default %(default)s)")
    args = p.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sample_gpt import load_model  # examples/ is on sys.path when this file runs as a script

    model, tokenizer = load_model(args.checkpoint)
    prompt = args.prompt[-model.config.block_size:]
    with cli.user_input("--prompt"):  # a character the model never saw
        idx = Tensor(tokenizer.encode(prompt)[None, :])
    maps = attention_maps(model, idx)
    n_layer, n_head = len(maps), maps[0].shape[1]
    chars = [c if c != "\n" else "\\n" for c in prompt]
    size = 0.16 * len(prompt) + 1.5
    fig, axes = plt.subplots(n_layer, n_head, figsize=(size * n_head, size * n_layer), squeeze=False)
    for layer, weights in enumerate(maps):
        for head in range(n_head):
            ax = axes[layer][head]
            ax.imshow(weights[0, head], cmap="viridis", vmin=0.0, vmax=1.0)
            ax.set_title(f"layer {layer}, head {head}", fontsize=9)
            ax.set_xticks(range(len(chars)), chars, fontsize=6)
            ax.set_yticks(range(len(chars)), chars, fontsize=6)
    fig.suptitle(f"attention weights (row: query, column: key) for {prompt!r}", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")

    where = prompt.find(args.query) if args.query else -1
    if where >= 0:
        q = where + len(args.query) - 1
        print(f"attention from {prompt[q]!r} at position {q} (end of {args.query!r}), three strongest keys per head:")
        for layer, weights in enumerate(maps):
            for head in range(n_head):
                row = weights[0, head, q]
                top = np.argsort(row)[::-1][:3]
                keys = ", ".join(f"{prompt[j]!r}@{j} {row[j]:.2f}" for j in top)
                print(f"  layer {layer} head {head}: {keys}")


if __name__ == "__main__":
    cli.run(main)
