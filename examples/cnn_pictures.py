"""Pictures of a trained CNN: its first-layer filters, and the feature maps of one test digit.

    python examples/train_mnist.py --model cnn                     # writes checkpoints/mnist_cnn.npz
    python examples/cnn_pictures.py --filters docs/img/cnn_filters.png --features docs/img/cnn_features.png

The feature maps are the outputs of each conv layer (before pooling) for the digit, in eval mode.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import tinygrad_lite as tl
from models.cnn import CNN, CONFIGS
from tinygrad_lite import Tensor, cli, no_grad

TRAIN = "python examples/train_mnist.py --model cnn"


def load_model(path: Path) -> tuple[CNN, str]:
    checkpoint = cli.load_checkpoint(path, made_by=TRAIN)
    name = checkpoint["config"].get("model", "mlp")
    if name not in CONFIGS:
        raise cli.UsageError(f"{path} holds a {name} model, not a CNN; train one with {TRAIN}")
    model = CNN(CONFIGS[name], seed=0)
    model.load_state_dict(checkpoint["model"])
    return model.eval(), name


def grid(axes_count: int, columns: int, figsize_per: float, plt):
    rows = -(-axes_count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * figsize_per, rows * figsize_per + 0.5))
    for a in axes.flat:
        a.axis("off")
    return fig, axes.flat


def draw_filters(model: CNN, name: str, path: Path, plt) -> None:
    weights = model.blocks[0].conv.weight.data[:, 0]  # (out_channels, k, k)
    bound = np.abs(weights).max()
    fig, axes = grid(len(weights), 8, 0.9, plt)
    for w, a in zip(weights, axes):
        a.imshow(w, cmap="RdBu_r", vmin=-bound, vmax=bound)
    fig.suptitle(f"{name}: the {len(weights)} first-layer filters ({weights.shape[1]}x{weights.shape[2]}; "
                 f"red positive, blue negative)", fontsize=10)
    save(fig, path)


@no_grad()
def draw_features(model: CNN, name: str, digit: np.ndarray, label: int, path: Path, plt) -> None:
    x = Tensor(digit[None])
    maps = []
    for block in model.blocks:
        maps.append(block.conv(x).data[0])
        x = block(x)
    columns = 16
    rows = [-(-len(m) // columns) for m in maps]
    fig = plt.figure(figsize=(columns * 0.8 + 2.4, (sum(rows) + len(maps)) * 0.8 + 0.4))
    spec = fig.add_gridspec(sum(rows) + len(maps), columns + 3, left=0.01, right=0.99, top=0.93, bottom=0.01,
                            wspace=0.08, hspace=0.08)
    a = fig.add_subplot(spec[1:3, 0:2])
    a.imshow(digit[0], cmap="gray_r")
    a.set_title(f"input (label {label})", fontsize=9)
    a.axis("off")
    first = 0
    for layer, fmap in enumerate(maps):
        title = fig.add_subplot(spec[first, 3:])
        title.axis("off")
        title.text(0.5, 0.2, f"conv layer {layer + 1}: {len(fmap)} maps of {fmap.shape[1]}x{fmap.shape[2]}",
                   ha="center", fontsize=10)
        for i, m in enumerate(fmap):
            a = fig.add_subplot(spec[first + 1 + i // columns, 3 + i % columns])
            a.imshow(m, cmap="viridis")
            a.axis("off")
        first += 1 + rows[layer]
    fig.suptitle(f"{name}: what the conv layers see in one test digit (before pooling)", fontsize=11)
    save(fig, path)


def save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/mnist_cnn.npz"),
                        help="a checkpoint written by train_mnist.py --model cnn (or a nielsen-* model)")
    parser.add_argument("--filters", type=Path, default=Path("cnn_filters.png"), help="PNG of the filters")
    parser.add_argument("--features", type=Path, default=Path("cnn_features.png"), help="PNG of the feature maps")
    parser.add_argument("--index", type=int, default=0, help="which test digit (default 0)")
    parser.add_argument("--data-dir", default=None, help="folder holding mnist/ (default $TINYGRAD_LITE_DATA)")
    args = parser.parse_args()
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise cli.UsageError("the pictures need matplotlib: pip install 'tinygrad_lite[plot]'") from None
    model, name = load_model(args.checkpoint)
    _, _, x_test, y_test = tl.datasets.load_mnist(args.data_dir)
    if not 0 <= args.index < len(x_test):
        raise cli.UsageError(f"--index must be in 0..{len(x_test) - 1}, got {args.index}")
    draw_filters(model, name, args.filters, plt)
    draw_features(model, name, x_test[args.index].reshape(1, 28, 28), int(y_test[args.index]), args.features, plt)


if __name__ == "__main__":
    cli.run(main)
