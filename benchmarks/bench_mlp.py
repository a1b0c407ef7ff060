"""Time one training epoch of the modern MNIST MLP: tinygrad_lite vs hand-written numpy vs PyTorch.

The model and recipe of examples/train_mnist.py: [784, 512, 512, 10] ReLU with
dropout 0.2, cross-entropy, Adam, mini-batches of 128, float32, 50,000 images
(390 steps). The data are seeded random pixels and labels of MNIST's shapes: the
time of an epoch does not depend on the values. All three use `--threads` threads (2).
Each implementation runs `--runs` times, interleaved; the medians and the ratios
to hand-written numpy are printed. glibc is told to keep freed blocks for reuse
(as importing tinygrad_lite does: `tinygrad_lite.perf.keep_freed_memory`), which helps all three alike.

    python benchmarks/bench_mlp.py --runs 5
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

import tinygrad_lite.nn.functional as F
from models.mlp import MLP
from tinygrad_lite import Tensor, optim
from tinygrad_lite.perf import blas_num_threads, set_num_threads

SIZES = [784, 512, 512, 10]
DROPOUT, BATCH, LR = 0.2, 128, 1e-3


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, SIZES[0]), dtype=np.float32), rng.integers(0, SIZES[-1], n)


def batches(x: np.ndarray, y: np.ndarray, steps: int):
    for i in range(steps):
        yield x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]


# ---- tinygrad_lite -------------------------------------------------------------------------------


def epoch_tinygrad_lite(x: np.ndarray, y: np.ndarray, steps: int) -> None:
    model = MLP(SIZES, activation="relu", dropout=DROPOUT, seed=0)
    opt = optim.Adam(model.parameters(), lr=LR)
    for xb, yb in batches(x, y, steps):
        loss = F.cross_entropy(model(Tensor(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()


# ---- hand-written numpy --------------------------------------------------------------------------------


class NumpyMLP:
    """The same network with forward, backward and Adam written out by hand, in place where possible."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.params = []
        for n_in, n_out in zip(SIZES, SIZES[1:]):
            bound = 1.0 / math.sqrt(n_in)
            self.params += [rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32),
                            rng.uniform(-bound, bound, n_out).astype(np.float32)]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.scratch = [np.empty_like(p) for p in self.params]
        self.t = 0
        self.rng = np.random.default_rng(seed)

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        n_layers, scale = len(SIZES) - 1, 1.0 / (1.0 - DROPOUT)
        acts = [x]
        for i in range(n_layers):
            w, b = self.params[2 * i], self.params[2 * i + 1]
            z = acts[-1] @ w.T
            z += b
            if i < n_layers - 1:
                np.maximum(z, 0, out=z)
                z *= self.rng.random(z.shape, dtype=np.float32) >= DROPOUT
                z *= scale
            acts.append(z)
        logits = acts.pop()
        logits -= logits.max(axis=1, keepdims=True)
        rows = np.arange(len(y))
        picked = logits[rows, y]
        probs = np.exp(logits, out=logits)
        sums = probs.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(sums[:, 0]) - picked))
        probs /= sums
        probs[rows, y] -= 1.0
        g = probs
        g /= len(y)
        grads = [None] * len(self.params)
        for i in reversed(range(n_layers)):
            h = acts[i]
            grads[2 * i] = g.T @ h
            grads[2 * i + 1] = g.sum(axis=0)
            if i > 0:
                g = g @ self.params[2 * i]
                g *= h > 0  # relu and dropout together: h > 0 exactly where both let the unit through
                g *= scale
        self.adam(grads)
        return loss

    def adam(self, grads: list[np.ndarray], beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.t += 1
        step_size = LR / (1.0 - beta1 ** self.t)
        bc2 = math.sqrt(1.0 - beta2 ** self.t)
        for p, g, m, v, buf in zip(self.params, grads, self.m, self.v, self.scratch):
            np.subtract(g, m, out=buf)
            buf *= 1.0 - beta1
            m += buf
            v *= beta2
            np.multiply(g, g, out=buf)
            buf *= 1.0 - beta2
            v += buf
            np.sqrt(v, out=buf)
            buf /= bc2
            buf += eps
            np.divide(m, buf, out=buf)
            buf *= step_size
            p -= buf


def epoch_numpy(x: np.ndarray, y: np.ndarray, steps: int) -> None:
    model = NumpyMLP()
    for xb, yb in batches(x, y, steps):
        model.step(xb, yb)


# ---- PyTorch -------------------------------------------------------------------------------------------


def torch_mlp():
    """The modern MLP in PyTorch: Linear, ReLU, Dropout, ..., Linear."""
    import torch

    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES, SIZES[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(SIZES) - 2:
            layers += [torch.nn.ReLU(), torch.nn.Dropout(DROPOUT)]
    return torch.nn.Sequential(*layers)


def epoch_torch(x: np.ndarray, y: np.ndarray, steps: int) -> None:
    import torch

    torch.manual_seed(0)
    model = torch_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for i in range(steps):
        loss = torch.nn.functional.cross_entropy(model(xt[i * BATCH:(i + 1) * BATCH]), yt[i * BATCH:(i + 1) * BATCH])
        opt.zero_grad()
        loss.backward()
        opt.step()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="timed epochs per implementation (the median is reported)")
    p.add_argument("--steps", type=int, default=50_000 // BATCH, help="steps per epoch (default: a full epoch)")
    p.add_argument("--threads", type=int, default=2,
                   help="threads for all three: PyTorch's, tinygrad_lite's and numpy's OpenBLAS (default 2)")
    args = p.parse_args()
    set_num_threads(args.threads)  # tinygrad_lite's threads and OpenBLAS's, which the hand-written numpy uses
    x, y = make_data(args.steps * BATCH)
    impls = {"numpy (hand-written)": epoch_numpy, "tinygrad_lite": epoch_tinygrad_lite}
    try:
        import torch

        torch.set_num_threads(args.threads)
        impls["pytorch"] = epoch_torch
    except ImportError:
        print("PyTorch not installed: comparing with hand-written numpy only")
    for fn in impls.values():  # warm-up: imports, BLAS threads, allocator
        fn(x, y, min(args.steps, 10))
    times: dict[str, list[float]] = {name: [] for name in impls}
    for run in range(args.runs):
        for name, fn in impls.items():
            t0 = time.perf_counter()
            fn(x, y, args.steps)
            times[name].append(time.perf_counter() - t0)
        print(f"run {run + 1}: " + ", ".join(f"{name} {ts[-1]:.2f} s" for name, ts in times.items()), flush=True)
    blas = blas_num_threads() or "default"
    print(f"one epoch: {args.steps} steps of batch {BATCH}, MLP {SIZES}, dropout {DROPOUT}, Adam, float32; "
          f"median of {args.runs} runs; torch threads {args.threads}, numpy BLAS threads {blas}")
    base = statistics.median(times["numpy (hand-written)"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:22s} {med:7.2f} s  ({med / args.steps * 1e3:6.1f} ms/step)  {med / base:5.2f}x numpy"
              + (f"  {med / statistics.median(times['pytorch']):5.2f}x pytorch" if "pytorch" in times else ""))


if __name__ == "__main__":
    main()
