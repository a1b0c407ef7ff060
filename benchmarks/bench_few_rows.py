"""A few rows times a Linear's weight, x Wᵀ, three ways: why `perf.matmul` runs 2 to
`_WEIGHT_FIRST_MAX_ROWS` rows as (W xᵀ)ᵀ.

    python benchmarks/bench_few_rows.py            # 7 rounds
    python benchmarks/bench_few_rows.py --rounds 11

x (M, in) times W (out, in) of GPT-2 small's shapes (and two that fit in the cache), M from 1 to 128 rows: as
numpy writes it, x @ W.T on OpenBLAS's 2 threads; split across the engine's 2 threads by columns (its "engine"
policy for a large product); and (W @ x.T).T made contiguous, on OpenBLAS's 2 threads. Each timed call takes the
next of enough weights to fill 200 MB, so that W comes from memory as in a forward pass, not from the cache. The
ways take turns, round after round; the table gives medians per call and each way's time over numpy's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from tinygrad_lite import perf

SHAPES = [(3072, 768), (768, 3072), (2304, 768), (768, 768), (512, 784), (384, 128), (100, 784)]  # (out, in)
ROWS = (1, 2, 4, 16, 32, 64, 128)


def numpy_order(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x @ w.T


def engine_split(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    out = np.empty((len(x), len(w)), dtype=x.dtype)
    perf._split(lambda cols: np.matmul(x, w[cols].T, out=out[:, cols]), len(w), min_items=8)
    return out


def weight_first(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((w @ x.T).T)


WAYS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "x @ W.T": numpy_order, "split": engine_split, "(W @ x.T).T": weight_first}


def per_call(way: Callable, x: np.ndarray, weights: list[np.ndarray], calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        way(x, weights[i % len(weights)])
    return (time.perf_counter() - start) / calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7, help="turns of each way (default %(default)s)")
    args = p.parse_args()
    perf.set_num_threads(2)
    rng = np.random.default_rng(0)
    print(f"x (M, in) @ W (out, in).T, float32, 2 threads, medians of {args.rounds} rounds; ms per call, and over "
          f"x @ W.T")
    print(f"{'W (out, in)':>13s} {'M':>4s} " + " ".join(f"{name:>12s}" for name in WAYS) +
          f" {'split/numpy':>12s} {'(W x.T).T/numpy':>16s}")
    for out_features, in_features in SHAPES:
        count = max(2, 200_000_000 // (out_features * in_features * 4))
        weights = [rng.standard_normal((out_features, in_features), dtype=np.float32) for _ in range(count)]
        for rows in ROWS:
            x = rng.standard_normal((rows, in_features), dtype=np.float32)
            expected = x @ weights[0].T
            for way in WAYS.values():
                np.testing.assert_allclose(way(x, weights[0]), expected, rtol=1e-4, atol=1e-4)
            times: dict[str, list[float]] = {name: [] for name in WAYS}
            for r in range(args.rounds):
                for name in (list(WAYS) if r % 2 == 0 else list(WAYS)[::-1]):
                    times[name].append(per_call(WAYS[name], x, weights, min(count, 24)))
            ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
            base = ms["x @ W.T"]
            print(f"{str((out_features, in_features)):>13s} {rows:4d} " +
                  " ".join(f"{ms[name]:12.3f}" for name in WAYS) +
                  f" {ms['split'] / base:11.2f}x {ms['(W @ x.T).T'] / base:15.2f}x", flush=True)


if __name__ == "__main__":
    main()
