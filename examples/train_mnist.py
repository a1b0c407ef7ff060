"""Train an MLP on MNIST with tinygrad_lite.

Two recipes:

  --classic   Michael Nielsen's network.py from "Neural Networks and Deep Learning", exactly:
              sizes [784, 30, 10], sigmoid everywhere, N(0, 1) initial weights and biases,
              quadratic cost, mini-batch SGD with eta 3.0 and mini-batches of 10, 30 epochs.
  (default)   a modern MLP: [784, 512, 512, 10] ReLU with dropout 0.2, cross-entropy,
              Adam with a cosine schedule and warm-up, mini-batches of 128, 10 epochs.

Both train on the first 50,000 images of the training file, report accuracy on the
last 10,000 (Nielsen's validation set) after every epoch, and the test accuracy at
the end. A checkpoint is written after every epoch; --resume continues from it
along the same trajectory as an uninterrupted run. The last line printed is
exactly `test accuracy: NN.NN%`.

    python examples/train_mnist.py --classic
    python examples/train_mnist.py --plot mnist.png
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import tinygrad_lite as tl
import tinygrad_lite.nn.functional as F
from models.mlp import MLP
from tinygrad_lite import Tensor, cli, no_grad, optim
from tinygrad_lite.optim.lr_scheduler import LambdaLR, LRScheduler, cosine_with_warmup

N_TRAIN = 50_000  # the rest of the 60,000 is the validation set, as in Nielsen's book


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classic", action="store_true", help="Nielsen's network and recipe (see above)")
    p.add_argument("--epochs", type=int, default=None, help="number of epochs (default: 30 classic, 10 modern)")
    p.add_argument("--batch-size", type=int, default=None, help="mini-batch size (default: 10 classic, 128 modern)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: 3.0 classic; modern 1e-3 with Adam, 0.05 with SGD)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                   help="modern recipe only: Adam (lr 1e-3), or SGD with Nesterov momentum 0.9 (lr 0.05)")
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512], help="modern recipe: hidden layer widths")
    p.add_argument("--dropout", type=float, default=0.2, help="modern recipe: dropout after each hidden layer")
    p.add_argument("--seed", type=int, default=0, help="seed for the weights, the shuffling and dropout")
    p.add_argument("--data-dir", default=None,
                   help="folder holding mnist/ (or the four IDX files); default $TINYGRAD_LITE_DATA, then the "
                        "user cache, downloading there if needed")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint path, written after every epoch (default checkpoints/mnist_{classic,mlp}.npz)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--plot", metavar="PATH", default=None,
                   help="write a PNG with loss/accuracy curves and misclassified test digits (needs matplotlib)")
    args = p.parse_args(argv)
    defaults = (30, 10, 3.0) if args.classic else (10, 128, 1e-3 if args.optimizer == "adam" else 0.05)
    args.epochs = args.epochs if args.epochs is not None else defaults[0]
    args.batch_size = args.batch_size or defaults[1]
    args.lr = args.lr if args.lr is not None else defaults[2]
    args.checkpoint = Path(args.checkpoint or f"checkpoints/mnist_{'classic' if args.classic else 'mlp'}.npz")
    return args


def build(args: argparse.Namespace, steps_per_epoch: int) -> tuple[MLP, optim.Optimizer, LRScheduler | None]:
    rng = np.random.default_rng(args.seed)
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


def loss_fn(model: MLP, x: Tensor, y: np.ndarray, classic: bool) -> Tensor:
    out = model(x)
    if classic:  # quadratic cost C = 1/(2m) sum ||a - y||², as in network.py
        return F.mse_loss(out, np.eye(10, dtype=np.float32)[y], reduction="sum") * (0.5 / len(y))
    return F.cross_entropy(out, y)


@no_grad()
def predict(model: MLP, x: np.ndarray) -> np.ndarray:
    model.eval()
    preds = np.concatenate([model(Tensor(x[i:i + 5000])).data.argmax(axis=1) for i in range(0, len(x), 5000)])
    model.train()
    return preds


def train_epoch(model, opt, sched, x, y, args, epoch: int) -> float:
    """One pass over (x, y) in a seeded order; returns the mean training loss."""
    rng = np.random.default_rng([args.seed, epoch])
    order = rng.permutation(len(x))
    xs, ys = x[order], y[order]
    if model.dropout is not None:  # per-epoch seed: a resumed run draws the same masks
        model.dropout.rng = np.random.default_rng([args.seed, epoch, 1])
    bs, total = args.batch_size, 0.0
    n_steps = len(x) // bs
    bar = tqdm(range(n_steps), desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, mininterval=0.5,
               file=sys.stderr)
    for step in bar:
        loss = loss_fn(model, Tensor(xs[step * bs:(step + 1) * bs]), ys[step * bs:(step + 1) * bs], args.classic)
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
        x_train, y_train = x_all[:N_TRAIN], y_all[:N_TRAIN]
        x_val, y_val = x_all[N_TRAIN:], y_all[N_TRAIN:]
        model, opt, sched = build(args, len(x_train) // args.batch_size)
    history: dict[str, list[float]] = {"loss": [], "val_acc": [], "test_acc": []}
    start = 0
    if args.resume:
        ckpt = cli.load_checkpoint(args.checkpoint, made_by="python examples/train_mnist.py" +
                                   (" --classic" if args.classic else "") + f" --checkpoint {args.checkpoint}")
        if ckpt["config"]["classic"] != args.classic:
            raise cli.UsageError(f"--resume: {args.checkpoint} was written by a "
                                 f"{'classic' if ckpt['config']['classic'] else 'modern'} run; "
                                 f"{'drop' if args.classic else 'add'} --classic")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if sched is not None:
            sched.load_state_dict(ckpt["scheduler"])
        history, start = ckpt["history"], ckpt["epoch"]
        print(f"resumed from {args.checkpoint} after epoch {start}")
    print(f"model: {model.sizes} {model.activation_name}, {model.num_parameters():,} parameters; "
          f"{'classic: quadratic cost, SGD' if args.classic else 'cross-entropy, ' + args.optimizer} "
          f"lr {args.lr}, batch {args.batch_size}, {args.epochs} epochs")
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
                 "history": history, "config": {"classic": args.classic, "sizes": model.sizes, "seed": args.seed}},
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
