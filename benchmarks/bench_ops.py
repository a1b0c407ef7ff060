"""Time forward+backward of core ops and small compositions: tinygrad_lite vs hand-written numpy vs PyTorch.

Every case computes a scalar loss and the gradients of all its inputs, in
float32. Hand-written numpy is the floor (the same arithmetic with no graph);
PyTorch (2 threads, when importable) is the reference framework. Each
implementation runs `--runs` times, interleaved, each run repeating the case
until it takes a few milliseconds; the table shows medians per call and the
ratios. Before timing, tinygrad_lite's gradients are checked against numpy's.

    BENCH_THREADS=2 python benchmarks/bench_ops.py --runs 7

BENCH_THREADS (default 2) sets both numpy's BLAS threads and PyTorch's, so the
columns compare like with like (on a loaded machine, 1 is far less noisy).
"""

from __future__ import annotations

import os

# BLAS reads its thread count when numpy loads, so this comes before the imports.
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from tinygrad_lite import Tensor  # noqa: E402

try:
    import torch

    torch.set_num_threads(THREADS)
except ImportError:  # the torch column is left out
    torch = None

Case = dict[str, Callable[[list[np.ndarray]], list[np.ndarray]]]


def _make(shapes: list[tuple[int, ...]], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s, dtype=np.float32) * 0.5 for s in shapes]


def _lite(loss_fn: Callable[..., Tensor]) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
        xs = [Tensor(a, requires_grad=True) for a in arrays]
        loss_fn(*xs).backward()
        return [x.grad.data for x in xs]
    return run


def _torch(loss_fn: Callable) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
        xs = [torch.from_numpy(a).requires_grad_() for a in arrays]
        loss_fn(*xs).backward()
        return [x.grad.numpy() for x in xs]
    return run


# ---- the cases: (input shapes, tinygrad_lite loss, numpy forward+backward, torch loss) ----------------------


def numpy_elementwise_chain(arrays):
    (x,) = arrays
    a = x * 2 + 1
    t = np.tanh(a)
    e = np.exp(t * x)
    # loss = sum(exp(tanh(2x + 1) * x))
    g_tx = e
    g_x = g_tx * t
    g_t = g_tx * x
    g_t *= 1 - t * t
    g_x += 2 * g_t
    return [g_x]


def numpy_matmul(arrays):
    a, b = arrays
    _ = a @ b
    g = np.ones((a.shape[0], b.shape[1]), dtype=a.dtype)  # loss = sum(a @ b)
    return [g @ b.T, a.T @ g]


def numpy_batched_matmul(arrays):
    a, b = arrays
    c = a @ b
    g = 2 * c  # loss = sum((a @ b) ** 2)
    return [g @ b.swapaxes(-1, -2), a.swapaxes(-1, -2) @ g]


def numpy_softmax(arrays):
    x, w = arrays
    s = np.exp(x - x.max(axis=-1, keepdims=True))
    s /= s.sum(axis=-1, keepdims=True)
    # loss = sum(softmax(x) * w)
    gs = w * s
    gx = gs - s * gs.sum(axis=-1, keepdims=True)
    return [gx, s]


def numpy_broadcast_add_sum(arrays):
    x, b = arrays
    y = x + b
    # loss = sum(sum(x + b, axis=0) ** 2)
    col = y.sum(axis=0)
    g = np.broadcast_to(2 * col, x.shape)
    return [np.array(g), g.sum(axis=0)]


def numpy_mlp_layer(arrays):
    x, w, b = arrays
    z = x @ w
    z += b
    h = np.maximum(z, 0)
    # loss = mean(relu(x @ w + b) ** 2)
    g = h * (2.0 / h.size)
    g *= z > 0
    return [g @ w.T, x.T @ g, g.sum(axis=0)]


def numpy_tiny_ops(arrays):
    (x,) = arrays
    # loss = sum(x * 1.01 ** 50) via 50 multiplications
    return [np.full_like(x, np.float32(1.01) ** 50)]


def lite_tiny_ops(x):
    for _ in range(50):
        x = x * 1.01
    return x.sum()


CASES = {
    "elementwise chain (512, 512)": ([(512, 512)],
                                     lambda x: ((x * 2 + 1).tanh() * x).exp().sum(),
                                     numpy_elementwise_chain,
                                     lambda x: ((x * 2 + 1).tanh() * x).exp().sum()),
    "matmul 256x256 @ 256x256": ([(256, 256), (256, 256)], lambda a, b: (a @ b).sum(), numpy_matmul,
                                 lambda a, b: (a @ b).sum()),
    "batched matmul (16,64,64) @ (16,64,64)": ([(16, 64, 64), (16, 64, 64)], lambda a, b: ((a @ b) ** 2).sum(),
                                               numpy_batched_matmul, lambda a, b: ((a @ b) ** 2).sum()),
    "softmax (64, 1024), axis -1": ([(64, 1024), (64, 1024)], lambda x, w: (x.softmax(-1) * w).sum(),
                                    numpy_softmax, lambda x, w: (x.softmax(-1) * w).sum()),
    "broadcast add + sum (512,512)+(512,)": ([(512, 512), (512,)], lambda x, b: ((x + b).sum(axis=0) ** 2).sum(),
                                             numpy_broadcast_add_sum, lambda x, b: ((x + b).sum(0) ** 2).sum()),
    "MLP layer relu(x@W+b) (128,784)x(784,512)": ([(128, 784), (784, 512), (512,)],
                                                  lambda x, w, b: ((x @ w + b).relu() ** 2).mean(), numpy_mlp_layer,
                                                  lambda x, w, b: ((x @ w + b).relu() ** 2).mean()),
    "50 tiny muls (4, 4): per-op overhead": ([(4, 4)], lite_tiny_ops, numpy_tiny_ops, lite_tiny_ops),
}


def time_per_call(fn: Callable[[list[np.ndarray]], list[np.ndarray]], arrays: list[np.ndarray],
                  min_seconds: float = 0.02) -> float:
    """Seconds per call, repeating until one measurement takes at least `min_seconds`."""
    reps = 1
    while True:
        start = time.perf_counter()
        for _ in range(reps):
            fn(arrays)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / reps
        reps *= 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per implementation (median reported)")
    args = parser.parse_args()

    impls = ["numpy", "tinygrad_lite"] + (["torch"] if torch is not None else [])
    header = f"{'case':<44}" + "".join(f"{name + ' ms':>17}" for name in impls) + f"{'lite/numpy':>12}"
    header += f"{'lite/torch':>12}" if torch is not None else ""
    print(f"float32, median of {args.runs} runs, {THREADS} BLAS/torch thread(s)"
          + ("" if torch is not None else "; torch not installed"))
    print(header)
    print("-" * len(header))
    for name, (shapes, lite_loss, numpy_grads, torch_loss) in CASES.items():
        arrays = _make(shapes)
        fns = {"numpy": numpy_grads, "tinygrad_lite": _lite(lite_loss)}
        if torch is not None:
            fns["torch"] = _torch(torch_loss)
        for got, want in zip(fns["tinygrad_lite"](arrays), numpy_grads(arrays)):
            np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-5, err_msg=name)
        times: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(args.runs):
            for key, fn in fns.items():
                times[key].append(time_per_call(fn, arrays))
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        row = f"{name:<44}" + "".join(f"{med[k]:>17.3f}" for k in impls)
        row += f"{med['tinygrad_lite'] / med['numpy']:>12.2f}"
        if torch is not None:
            row += f"{med['tinygrad_lite'] / med['torch']:>12.2f}"
        print(row)


if __name__ == "__main__":
    main()
