"""Train an MLP or a CNN on MNIST with tinygrad_lite.

MLP recipes (--model mlp, the default):

  --classic   Michael Nielsen's network.py from "Neural Networks and Deep Learning", exactly:
              sizes [784, 30, 10], sigmoid everywhere, N(0, 1) initial weights and biases,
              quadratic cost, mini-batch SGD with eta 3.0 and mini-batches of 10, 30 epochs.
  (default)   a modern MLP: [784, 512, 512, 10] ReLU with dropout 0.2, cross-entropy,
              Adam with a cosine schedule and warm-up, mini-batches of 128, 10 epochs.

CNN recipes (models/cnn.py):

  --model cnn               two conv blocks (32 and 64 filters of 5x5, max-pool, batch norm, ReLU), FC 256
                            with dropout 0.5; Adam with a cosine schedule, mini-batches of 64, random shifts
                            of up to 2 pixels
  --model nielsen-1conv     chapter 6 of Nielsen's book, network3.py's recipes: SGD with eta 0.1 and
  --model nielsen-2conv     mini-batches of 10, 60 epochs, log-likelihood cost (cross-entropy on softmax);
  --model nielsen-relu      ReLU: eta 0.03 and L2 regularisation lambda 0.1;
  --model nielsen-expanded  the same on the training data expanded by one-pixel shifts (--expand);
  --model nielsen-dropout   FC layers of 1,000 with dropout 0.5, expanded data, no L2, 40 epochs.

--expand is Nielsen's expand_mnist.py: every training image also shifted by one pixel up, down, left and
right (zeros fill the gap), five times the data; the shifted copies are made batch by batch.

Both train on the first 50,000 images of the training file, report accuracy on the
last 10,000 (Nielsen's validation set) after every epoch, and the test accuracy at
the end. A checkpoint is written after every epoch; --resume continues from it
along the same trajectory as an uninterrupted run. The last line printed is
exactly `test accuracy: NN.NN%`.

    python examples/train_mnist.py --classic
    python examples/train_mnist.py --plot mnist.png
    python examples/train_mnist.py --model cnn
    python examples/train_mnist.py --model nielsen-relu --epochs 15
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

import tinygrad_lite as tl
import tinygrad_lite.nn.functional as F
from models.cnn import CNN, CONFIGS
from models.mlp import MLP
from tinygrad_lite import Tensor, cli, nn, no_grad, optim
from tinygrad_lite.optim.lr_scheduler import LambdaLR, LRScheduler, cosine_with_warmup

N_TRAIN = 50_000  # the rest of the 60,000 is the validation set, as in Nielsen's book
SIDE = 28


class Recipe(NamedTuple):
    """How a CNN trains. l2 is network3.py's lambda: the cost gains lambda / (2 * batches per epoch) * sum w²
    over the weights (not the biases), i.e. SGD's weight_decay = lambda / batches per epoch."""

    epochs: int
    batch_size: int
    optimizer: str  # "adam": Adam with warm-up and a cosine schedule; "sgd": plain SGD at a constant rate
    lr: float
    l2: float = 0.0
    expand: bool = False
    shift: int = 0  # random shifts of up to this many pixels, drawn anew for every image in every epoch


RECIPES = {
    "cnn": Recipe(epochs=8, batch_size=64, optimizer="adam", lr=2e-3, shift=2),
    "nielsen-1conv": Recipe(epochs=60, batch_size=10, optimizer="sgd", lr=0.1),
    "nielsen-2conv": Recipe(epochs=60, batch_size=10, optimizer="sgd", lr=0.1),
    "nielsen-relu": Recipe(epochs=60, batch_size=10, optimizer="sgd", lr=0.03, l2=0.1),
    "nielsen-expanded": Recipe(epochs=60, batch_size=10, optimizer="sgd", lr=0.03, l2=0.1, expand=True),
    "nielsen-dropout": Recipe(epochs=40, batch_size=10, optimizer="sgd", lr=0.03, expand=True),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["mlp", *CONFIGS], default="mlp", help="the network (see above)")
    p.add_argument("--classic", action="store_true", help="Nielsen's network and recipe (see above)")
    p.add_argument("--epochs", type=int, default=None,
                   help="number of epochs (default: 30 classic, 10 modern; a CNN's from its recipe)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="mini-batch size (default: 10 classic, 128 modern; a CNN's from its recipe)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: 3.0 classic; modern 1e-3 with Adam, 0.05 with SGD; "
                        "a CNN's from its recipe)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                   help="modern MLP only: Adam (lr 1e-3), or SGD with Nesterov momentum 0.9 (lr 0.05)")
    p.add_argument("--expand", action=argparse.BooleanOptionalAction, default=None,
                   help="train on Nielsen's expanded data: each image and its four one-pixel shifts "
                        "(default: on for nielsen-expanded and nielsen-dropout)")
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512], help="modern recipe: hidden layer widths")
    p.add_argument("--dropout", type=float, default=0.2, help="modern recipe: dropout after each hidden layer")
    p.add_argument("--seed", type=int, default=0, help="seed for the weights, the shuffling and dropout")
    p.add_argument("--train-size", type=int, default=N_TRAIN,
                   help="train on the first N of the 50,000 training images (default all; a quick look)")
    p.add_argument("--data-dir", default=None,
                   help="folder holding mnist/ (or the four IDX files); default $TINYGRAD_LITE_DATA, then the "
                        "user cache, downloading there if needed")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint path, written after every epoch (default checkpoints/mnist_{classic,mlp}.npz)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--plot", metavar="PATH", default=None,
                   help="write a PNG with loss/accuracy curves and misclassified test digits (needs matplotlib)")
    args = p.parse_args(argv)
    if args.classic and args.model != "mlp":
        p.error(f"--classic is Nielsen's MLP of chapter 1; --model {args.model} has its own recipe")
    recipe = RECIPES.get(args.model)
    if recipe is not None:
        defaults = (recipe.epochs, recipe.batch_size, recipe.lr)
        args.optimizer = recipe.optimizer
    elif args.classic:
        defaults = (30, 10, 3.0)
    else:
        defaults = (10, 128, 1e-3 if args.optimizer == "adam" else 0.05)
    args.epochs = args.epochs if args.epochs is not None else defaults[0]
    args.batch_size = args.batch_size or defaults[1]
    args.lr = args.lr if args.lr is not None else defaults[2]
    args.expand = args.expand if args.expand is not None else bool(recipe and recipe.expand)
    args.shift = recipe.shift if recipe is not None else 0
    name = "classic" if args.classic else args.model
    args.checkpoint = Path(args.checkpoint or f"checkpoints/mnist_{name}.npz")
    return args


def build(args: argparse.Namespace, steps_per_epoch: int) -> tuple[MLP | CNN, optim.Optimizer, LRScheduler | None]:
    rng = np.random.default_rng(args.seed)
    if args.model != "mlp":
        return build_cnn(args, steps_per_epoch, rng)
    if args.classic:
        model = MLP([784, 30, 10], activation="sigmoid", activate_output=True, seed=rng)
        for p in model.parameters():  # network.py: np.random.randn for every weight and bias
            p.data = rng.standard_normal(p.shape, dtype=np.float32)
        return model, optim.SGD(model.parameters(), lr=args.lr), None
    model = MLP([784, *args.hidden, 10], activation="relu", dropout=args.dropout, seed=rng)
    if args.optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=args.lr)
    else:
        opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    warmup, total = steps_per_epoch // 2, args.epochs * steps_per_epoch
    return model, opt, LambdaLR(opt, lambda step: cosine_with_warmup(step, 1.0, warmup, total))


def build_cnn(args: argparse.Namespace, steps_per_epoch: int, rng: np.random.Generator
              ) -> tuple[CNN, optim.Optimizer, LRScheduler | None]:
    """The CNN of --model with its recipe's optimizer: Adam with warm-up and a cosine schedule, or network3.py's
    plain SGD with L2 regularisation of the weights."""
    model = CNN(CONFIGS[args.model], seed=rng)
    recipe = RECIPES[args.model]
    if args.optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=args.lr)
        warmup, total = steps_per_epoch // 2, args.epochs * steps_per_epoch
        return model, opt, LambdaLR(opt, lambda step: cosine_with_warmup(step, 1.0, warmup, total))
    weights = [p for name, p in model.named_parameters() if name.endswith("weight") and p.ndim > 1]
    rest = [p for p in model.parameters() if all(p is not w for w in weights)]
    groups = [{"params": weights, "weight_decay": recipe.l2 / steps_per_epoch}, {"params": rest}]
    return model, optim.SGD(groups, lr=args.lr), None


def loss_fn(model: MLP | CNN, x: Tensor, y: np.ndarray, classic: bool) -> Tensor:
    out = model(x)
    if classic:  # quadratic cost C = 1/(2m) sum ||a - y||², as in network.py
        return F.mse_loss(out, np.eye(10, dtype=np.float32)[y], reduction="sum") * (0.5 / len(y))
    return F.cross_entropy(out, y)


@no_grad()
def predict(model: MLP | CNN, x: np.ndarray) -> np.ndarray:
    model.eval()
    step = 500 if isinstance(model, CNN) else 5000  # a CNN's im2col holds every window of the chunk
    preds = np.concatenate([model(Tensor(x[i:i + step])).data.argmax(axis=1) for i in range(0, len(x), step)])
    model.train()
    return preds


SHIFTS = ((1, 2), (-1, 2), (1, 3), (-1, 3))  # (pixels, axis of (B, 1, H, W)): down, up, right, left


def shifted(images: np.ndarray, pixels: int, axis: int) -> np.ndarray:
    """(B, 1, H, W) images moved by `pixels` along `axis`, zeros filling the gap (as expand_mnist.py)."""
    out = np.zeros_like(images)
    source = [slice(None)] * 4
    target = [slice(None)] * 4
    source[axis] = slice(0, -pixels) if pixels > 0 else slice(-pixels, None)
    target[axis] = slice(pixels, None) if pixels > 0 else slice(0, pixels)
    out[tuple(target)] = images[tuple(source)]
    return out


def expanded_batch(x: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Images `ids` of Nielsen's expanded training set, in x's layout ((N, 784) or (N, 1, 28, 28)): id i is
    image i % N shifted by SHIFTS[i // N - 1] (i // N = 0: the image itself)."""
    images, variant = x[ids % len(x)].reshape(-1, 1, SIDE, SIDE), ids // len(x)
    for v, (pixels, axis) in enumerate(SHIFTS, start=1):
        chosen = variant == v
        if chosen.any():
            images[chosen] = shifted(images[chosen], pixels, axis)
    return images.reshape((len(ids),) + x.shape[1:])


def randomly_shifted(images: np.ndarray, most: int, rng: np.random.Generator) -> np.ndarray:
    """Each (1, H, W) image moved by its own random offset of up to `most` pixels each way, zero-filled."""
    padded = np.pad(images, ((0, 0), (0, 0), (most, most), (most, most)))
    rows, cols = rng.integers(0, 2 * most + 1, (2, len(images)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, images.shape[2:], axis=(2, 3))[:, 0]
    return windows[np.arange(len(images)), rows, cols][:, None].copy()


def _model_flags(model: str) -> str:
    """The command-line flags that choose `model` ("classic", "mlp" or a CNN's name)."""
    return " --classic" if model == "classic" else "" if model == "mlp" else f" --model {model}"


def training_size(n: int, args: argparse.Namespace) -> int:
    """Images per epoch: n, or five times n on the expanded data (what network3.py's L2 term and the
    schedules count batches of)."""
    return n * (1 + len(SHIFTS)) if args.expand else n


def train_epoch(model, opt, sched, x, y, args, epoch: int) -> float:
    """One pass over (x, y) in a seeded order; returns the mean training loss."""
    rng = np.random.default_rng([args.seed, epoch])
    order = rng.permutation(training_size(len(x), args))
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    for i, dropout in enumerate(dropouts):  # per-epoch seeds: a resumed run draws the same masks
        dropout.rng = np.random.default_rng([args.seed, epoch, 1] + ([i] if i else []))  # the MLP's as before
    shift_rng = np.random.default_rng([args.seed, epoch, 2])
    bs, total = args.batch_size, 0.0
    n_steps = len(order) // bs
    bar = tqdm(range(n_steps), desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, mininterval=0.5,
               file=sys.stderr)
    for step in bar:
        ids = order[step * bs:(step + 1) * bs]
        images = expanded_batch(x, ids) if args.expand else x[ids]
        if args.shift:
            images = randomly_shifted(images, args.shift, shift_rng)
        loss = loss_fn(model, Tensor(images), y[ids % len(x)], args.classic)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        total += loss.item()
        if step % 100 == 99:
            bar.set_postfix(loss=f"{total / (step + 1):.4f}", refresh=False)
    return total / n_steps


def plot(path: str, history: dict[str, list[float]], x_test, y_test, preds) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib: pip install 'tinygrad_lite[plot]'", file=sys.stderr)
        return
    fig = plt.figure(figsize=(13, 6.5))
    curves = fig.add_gridspec(2, 1, left=0.06, right=0.42, top=0.93, bottom=0.09, hspace=0.35)
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax = fig.add_subplot(curves[0])
    ax.plot(epochs, history["loss"], marker="o")
    ax.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax = fig.add_subplot(curves[1])
    ax.plot(epochs, history["val_acc"], marker="o", label="validation")
    ax.plot(epochs, history["test_acc"], marker="o", label="test")
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax.legend()
    wrong = np.flatnonzero(preds != y_test)[:24]
    digits = fig.add_gridspec(4, 6, left=0.5, right=0.98, top=0.88, bottom=0.03, hspace=0.45, wspace=0.15)
    for k, i in enumerate(wrong):
        a = fig.add_subplot(digits[k // 6, k % 6])
        a.imshow(x_test[i].reshape(28, 28), cmap="gray_r")
        a.set_title(f"predicted {preds[i]}\ntrue {y_test[i]}", fontsize=8, color="C3")
        a.axis("off")
    fig.text(0.74, 0.96, f"misclassified test digits: {int((preds != y_test).sum())} of {len(y_test)}",
             ha="center", fontsize=11)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    with cli.user_input():  # a damaged data file, a bad --hidden or --dropout
        x_all, y_all, x_test, y_test = tl.datasets.load_mnist(args.data_dir)
        if args.model != "mlp":  # a CNN sees images (N, 1, 28, 28)
            x_all, x_test = x_all.reshape(-1, 1, SIDE, SIDE), x_test.reshape(-1, 1, SIDE, SIDE)
        if not 1 <= args.train_size <= N_TRAIN:
            raise cli.UsageError(f"--train-size must be between 1 and {N_TRAIN}, got {args.train_size}")
        x_train, y_train = x_all[:args.train_size], y_all[:args.train_size]
        x_val, y_val = x_all[N_TRAIN:], y_all[N_TRAIN:]
        model, opt, sched = build(args, training_size(len(x_train), args) // args.batch_size)
    history: dict[str, list[float]] = {"loss": [], "val_acc": [], "test_acc": []}
    start = 0
    if args.resume:
        ckpt = cli.load_checkpoint(args.checkpoint, made_by="python examples/train_mnist.py"
                                   + _model_flags("classic" if args.classic else args.model)
                                   + f" --checkpoint {args.checkpoint}")
        written = "classic" if ckpt["config"]["classic"] else ckpt["config"].get("model", "mlp")
        if written != ("classic" if args.classic else args.model):
            raise cli.UsageError(f"--resume: {args.checkpoint} was written by a {written} run; run with "
                                 f"`{_model_flags(written).strip() or 'no model flag'}`")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if sched is not None:
            sched.load_state_dict(ckpt["scheduler"])
        history, start = ckpt["history"], ckpt["epoch"]
        print(f"resumed from {args.checkpoint} after epoch {start}")
    described = f"{model.sizes} {model.activation_name}" if isinstance(model, MLP) else args.model
    print(f"model: {described}, {model.num_parameters():,} parameters; "
          f"{'classic: quadratic cost, SGD' if args.classic else 'cross-entropy, ' + args.optimizer} "
          f"lr {args.lr}, batch {args.batch_size}, {args.epochs} epochs"
          + (", expanded data" if args.expand else "") + (f", random shifts <= {args.shift} px" if args.shift else ""))
    t0 = time.perf_counter()
    for epoch in range(start, args.epochs):
        loss = train_epoch(model, opt, sched, x_train, y_train, args, epoch)
        val_acc = 100 * float((predict(model, x_val) == y_val).mean())
        test_acc = 100 * float((predict(model, x_test) == y_test).mean())
        for k, v in zip(("loss", "val_acc", "test_acc"), (loss, val_acc, test_acc)):
            history[k].append(v)
        print(f"epoch {epoch + 1:2d}: loss {loss:.4f}, validation accuracy {val_acc:.2f}%, "
              f"test accuracy {test_acc:.2f}% ({time.perf_counter() - t0:.0f} s)")
        tl.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict() if sched is not None else {}, "epoch": epoch + 1,
                 "history": history, "config": {"classic": args.classic, "model": args.model, "seed": args.seed}},
                args.checkpoint)
    print(f"training took {time.perf_counter() - t0:.1f} s; checkpoint {args.checkpoint}")
    if history["val_acc"]:
        best = int(np.argmax(history["val_acc"]))
        print(f"best validation epoch {best + 1}: validation {history['val_acc'][best]:.2f}%, "
              f"test {history['test_acc'][best]:.2f}%")
    preds = predict(model, x_test)
    if args.plot:
        plot(args.plot, history, x_test, y_test, preds)
    accuracy = 100 * float((preds == y_test).mean())
    print(f"test accuracy: {accuracy:.2f}%")
    return accuracy


if __name__ == "__main__":
    cli.run(main)
