"""Draw a computation graph, or print the shape trace of a model.

    python examples/draw_graph.py expr --grads -o expr.svg      # micrograd's neuron, values and grads
    python examples/draw_graph.py mlp --depth 1 -o mlp.svg      # Nielsen's MNIST MLP, one node per layer
    python examples/draw_graph.py gpt --depth 1 -o gpt.svg      # the GPT: embeddings, each Block, ln_f, lm_head
    python examples/draw_graph.py gpt --trace                   # every module call and op with its shapes
    python examples/draw_graph.py cnn --depth 2 -o cnn.svg      # the default CNN: each conv block's layers
    python examples/draw_graph.py cnn --config nielsen-2conv --trace   # Nielsen's net: (B, 1, 28, 28) -> ...

`-o` picks the format from the extension (.svg, .png, .pdf through graphviz's `dot`; .dot
writes the source, which needs no `dot`). Without `-o` the DOT source is printed.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from models.cnn import CNN, CONFIGS
from models.gpt import GPT, GPTConfig
from models.mlp import MLP
from tinygrad_lite import Tensor, cli, viz
from tinygrad_lite.nn import functional as F


def neuron(grads: bool) -> Tensor:
    """micrograd's neuron: o = tanh(x1 w1 + x2 w2 + b), every intermediate named, every value's gradient kept
    (micrograd computes them all: x1's is w1 · do/dn = -1.5, x2's w2 · do/dn = 0.5)."""
    x1, x2 = Tensor(2.0, requires_grad=True, name="x1"), Tensor(0.0, requires_grad=True, name="x2")
    w1, w2 = Tensor(-3.0, requires_grad=True, name="w1"), Tensor(1.0, requires_grad=True, name="w2")
    b = Tensor(6.8813735870195432, requires_grad=True, name="b")  # makes n = 0.8814, o = tanh(n) = 0.7071
    x1w1, x2w2 = x1 * w1, x2 * w2
    x1w1.name, x2w2.name = "x1*w1", "x2*w2"
    x1w1x2w2 = x1w1 + x2w2
    x1w1x2w2.name = "x1*w1 + x2*w2"
    n = x1w1x2w2 + b
    n.name = "n"
    o = n.tanh()
    o.name = "o"
    if grads:
        for t in (x1w1, x2w2, x1w1x2w2, n, o):
            t.retain_grad()
        o.backward()
    return o


def mnist_mlp(batch: int) -> tuple[MLP, tuple[Tensor, Tensor], dict[str, int]]:
    """Nielsen's MNIST network (784 -> 30 -> 10, sigmoid on every layer), a batch of random images and their
    one-hot labels, and its sizes' names."""
    model = MLP([784, 30, 10], activation="sigmoid", activate_output=True, seed=0)
    images = Tensor.uniform(batch, 784, seed=0)
    images.name = "images"
    one_hot = Tensor(np.eye(10, dtype=np.float32)[np.arange(batch) % 10], name="targets (one-hot)")
    return model, (images, one_hot), {"B": batch, "D": 784, "H": 30, "K": 10}


def gpt(batch: int) -> tuple[GPT, tuple[Tensor, Tensor], dict[str, int]]:
    """The default GPT, a batch of full-length random token sequences and targets, and its sizes' names."""
    config = GPTConfig()
    rng = np.random.default_rng(0)
    idx = Tensor(rng.integers(0, config.vocab_size, (batch, config.block_size)), name="idx")
    targets = Tensor(rng.integers(0, config.vocab_size, (batch, config.block_size)), name="targets")
    C, nh = config.n_embd, config.n_head
    dims = {"B": batch, "T": config.block_size, "C": C, "nh": nh, "hs": C // nh, "V": config.vocab_size,
            "3C": 3 * C, "4C": 4 * C}
    return GPT(config, seed=0), (idx, targets), dims


def cnn(batch: int, config: str) -> tuple[CNN, tuple[Tensor, Tensor], dict[str, int]]:
    """A CNN of models/cnn.py, a batch of random images and labels, and the batch's name."""
    images = Tensor.uniform(batch, 1, 28, 28, seed=0)
    images.name = "images"
    return CNN(CONFIGS[config], seed=0), (images, Tensor(np.arange(batch) % 10)), {"B": batch}


def model_loss(model: MLP | GPT | CNN, inputs: tuple[Tensor, Tensor], grads: bool) -> Tensor:
    """The model's loss on (inputs, targets), recorded with module paths: the GPT's and the CNN's mean
    cross-entropy, the MLP's quadratic cost C = 1/(2B) sum ||a - y||², as in Nielsen's network.py."""
    x, targets = inputs
    with viz.record(model):
        if isinstance(model, GPT):
            loss = model(x, targets)[1]
        elif isinstance(model, CNN):
            loss = F.cross_entropy(model(x), targets)
        else:
            loss = F.mse_loss(model(x), targets, reduction="sum") * Tensor(0.5 / len(x), name="1/(2B)")
    loss.name = "loss"
    if grads:
        loss.backward()
    return loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["expr", "mlp", "gpt", "cnn"])
    parser.add_argument("--config", choices=list(CONFIGS), default="cnn", help="which CNN (default: cnn)")
    parser.add_argument("--depth", type=int, default=None, help="collapse module calls at this depth into one node")
    parser.add_argument("--grads", action="store_true", help="run backward and show values and gradients")
    parser.add_argument("--lr", action="store_true", help="lay the graph out left to right")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size (default: 4; 12 for the gpt trace; 16 for the cnn, no size of its own)")
    parser.add_argument("--trace", action="store_true", help="print the shape trace instead of drawing")
    parser.add_argument("--markdown", action="store_true", help="print the trace as a Markdown table")
    parser.add_argument("-o", "--output", type=Path, default=None, help="file to write (.svg, .png, .pdf, .dot)")
    args = parser.parse_args()

    if args.what == "expr":
        if args.trace or args.depth is not None:
            parser.error("--trace and --depth need a model: choose mlp, gpt or cnn")
        root = neuron(args.grads)
    else:
        if args.what == "cnn":
            model, inputs, dims = cnn(args.batch or 16, args.config)
        else:
            build = mnist_mlp if args.what == "mlp" else gpt
            model, inputs, dims = build(args.batch or (12 if args.trace and args.what == "gpt" else 4))
        if args.trace:
            table = viz.trace(model, inputs[0], dims=dims, depth=args.depth)
            print(table.to_markdown() if args.markdown else table)
            return
        root = model_loss(model, inputs, args.grads)

    graph = viz.draw_graph(root, show_data=args.grads or args.what == "expr", show_grad=args.grads,
                           rankdir="LR" if args.lr or args.what == "expr" else "TB", depth=args.depth)
    if args.output is None:
        print(graph.source)
    elif args.output.suffix == ".dot":
        args.output.write_text(graph.source)
    else:
        import graphviz

        with cli.user_input("-o"):  # a format graphviz does not know
            try:
                args.output.write_bytes(graph.pipe(format=args.output.suffix.lstrip(".")))
            except graphviz.ExecutableNotFound:
                raise cli.UsageError(f"-o {args.output}: drawing needs graphviz's `dot` (apt-get install graphviz); "
                                     f"-o {args.output.with_suffix('.dot')} writes the source without it") from None
    if args.output is not None:
        print(f"wrote {args.output} ({math.ceil(args.output.stat().st_size / 1024)} KiB)")


if __name__ == "__main__":
    cli.run(main)
