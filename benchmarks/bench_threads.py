"""When a second thread pays: the engine's split work on one thread and on two, at sizes around the thresholds
in tinygrad_lite/perf.py (`_MIN_ELEMENTS_PER_THREAD`, `_MATMUL_MIN_FLOPS`).

    python benchmarks/bench_threads.py            # 7 rounds
    python benchmarks/bench_threads.py --rounds 11

Each case is timed with the split forced (both thresholds set to 1) and with one thread, the two taking
turns round after round; the table gives medians per call and their ratio (below 1: the split pays). The
empty part is the cost of a handoff alone. Float32, 2 threads.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator

import numpy as np

import tinygrad_lite.nn.functional as F
from tinygrad_lite import Tensor, perf


@contextlib.contextmanager
def forced_split(on: bool) -> Iterator[None]:
    """Two threads with every split taken (on), or one thread."""
    saved = perf._MIN_ELEMENTS_PER_THREAD, perf._MATMUL_MIN_FLOPS
    perf.set_num_threads(2 if on else 1)
    if on:
        perf._MIN_ELEMENTS_PER_THREAD = perf._MATMUL_MIN_FLOPS = 1
    try:
        with perf.using_products("engine"):
            yield
    finally:
        perf._MIN_ELEMENTS_PER_THREAD, perf._MATMUL_MIN_FLOPS = saved


def per_call(fn: Callable[[], object], seconds: float = 0.02) -> float:
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls


def layer_norm_case(rows: int, features: int) -> Callable[[], None]:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((rows, features), dtype=np.float32), requires_grad=True)
    g = Tensor(rng.standard_normal((rows, features), dtype=np.float32))

    def case() -> None:
        x.grad = None
        F.layer_norm(x, features).backward(g)
    return case


def gelu_case(n: int) -> Callable[[], None]:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal(n, dtype=np.float32), requires_grad=True)
    g = Tensor(rng.standard_normal(n, dtype=np.float32))

    def case() -> None:
        x.grad = None
        F.gelu(x, approximate="tanh").backward(g)
    return case


def matmul_case(m: int, k: int, n: int) -> Callable[[], None]:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    return lambda: perf.matmul(a, b)


CASES = {
    "an empty part (the handoff)": lambda: (lambda: perf.split_across_cores(lambda part: None, 2, min_items=1)),
    "layer norm f+b 768 x 128": lambda: layer_norm_case(768, 128),
    "layer norm f+b 4096 x 192": lambda: layer_norm_case(4096, 192),
    "layer norm f+b 8192 x 192": lambda: layer_norm_case(8192, 192),
    "tanh GELU f+b 3,072": lambda: gelu_case(3072),
    "tanh GELU f+b 393,216": lambda: gelu_case(393216),
    "tanh GELU f+b 1,048,576": lambda: gelu_case(1048576),
    "product 256x128 @ 128x128 (4.2M)": lambda: matmul_case(256, 128, 128),
    "product 768x128 @ 128x128 (12.6M)": lambda: matmul_case(768, 128, 128),
    "product 768x128 @ 128x384 (37.7M)": lambda: matmul_case(768, 128, 384),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="rounds of each case (default %(default)s)")
    args = parser.parse_args()
    print(f"{'case':38s} {'1 thread':>10s} {'2 threads':>10s} {'ratio':>7s}")
    for name, make in CASES.items():
        case = make()
        times: dict[bool, list[float]] = {False: [], True: []}
        for r in range(args.rounds):
            for on in ((False, True) if r % 2 == 0 else (True, False)):
                with forced_split(on):
                    times[on].append(per_call(case))
        one, two = statistics.median(times[False]), statistics.median(times[True])
        print(f"{name:38s} {1e3 * one:8.3f} ms {1e3 * two:8.3f} ms {two / one:6.2f}x", flush=True)
    perf.set_num_threads(2)


if __name__ == "__main__":
    main()
