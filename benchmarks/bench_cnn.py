"""Time one training step of the default CNN (forward, backward, Adam) on tinygrad_lite against the same model in
PyTorch CPU, each framework in its own process.

    python benchmarks/bench_cnn.py                    # batch 64: 5 runs of each, alternating; then the batch sizes
    python benchmarks/bench_cnn.py --runs 7 --skip-scaling
    python benchmarks/bench_cnn.py --profile          # where the engine's step goes, op by op

Both use `--threads` threads (default 2: `perf.set_num_threads(2)`, `torch.set_num_threads(2)`), float32,
the same initial weights and the same batches. A run is one fresh process that times `--steps` steps after
`--warmup` steps and reports their median; the engine's and PyTorch's runs alternate, so that a shared
machine's drifts hit both alike. The ratio is the median over the runs of engine / PyTorch. Peak memory: the
process's peak resident size (both), and for the engine the largest total of live numpy buffers during one
step (tracemalloc).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python benchmarks/bench_cnn.py` from the repository
    sys.path.insert(0, str(REPO))

from models.cnn import CNN, CNNConfig  # noqa: E402

TARGET = 1.2  # the fast-by-default issue's (the convolution issue asked for 1.3)
SCALING_BATCHES = (16, 32, 64, 128, 256)


def batches(batch: int, count: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [(rng.random((batch, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, batch)) for _ in range(count)]


# ---- the two frameworks' steps -------------------------------------------------------------------------------


def engine_setup(weights: Path, batch: int, threads: int):
    import tinygrad_lite as tl
    import tinygrad_lite.nn.functional as F
    from tinygrad_lite import Tensor, optim
    from tinygrad_lite.perf import set_num_threads

    set_num_threads(threads)
    model = CNN(CNNConfig(), seed=0)
    model.load_state_dict(tl.load(weights))
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    data = [(Tensor(x), y) for x, y in batches(batch)]

    def step(x, y) -> float:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step, data


def torch_setup(weights: Path, batch: int, threads: int):
    import torch

    import tinygrad_lite as tl

    torch.set_num_threads(threads)
    nn = torch.nn
    config = CNNConfig()

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int):
            super().__init__()
            self.conv = nn.Conv2d(c_in, c_out, config.kernel_size, bias=False)
            self.pool, self.bn = nn.MaxPool2d(config.pool_size), nn.BatchNorm2d(c_out)

        def forward(self, x):
            return self.bn(self.pool(self.conv(x))).relu()

    class TorchCNN(nn.Module):
        def __init__(self):
            super().__init__()
            channels = (config.in_channels, *config.conv_channels)
            self.blocks = nn.ModuleList(Block(a, b) for a, b in zip(channels, channels[1:]))
            widths = (channels[-1] * config.feature_size() ** 2, *config.fc_sizes, config.num_classes)
            self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
            self.drop = nn.Dropout(config.dropout)

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            x = x.flatten(1)
            for i, layer in enumerate(self.fc):
                x = layer(self.drop(x))
                x = x.relu() if i < len(self.fc) - 1 else x
            return x

    model = TorchCNN()
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in tl.load(weights).items()})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches(batch)]

    def step(x, y) -> float:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step, data


def timed_steps(step, data, warmup: int, steps: int) -> list[float]:
    for i in range(warmup):
        step(*data[i % len(data)])
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        step(*data[i % len(data)])
        times.append(time.perf_counter() - t0)
    return times


def traced_peak_mib(step, batch) -> float:
    """The largest total of live traced allocations (numpy buffers included) during one step."""
    tracemalloc.start()
    try:
        step(*batch)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


# ---- the per-op profile (engine) -----------------------------------------------------------------------------


def profile(step, data, steps: int) -> None:
    """Where the engine's step goes, op by op (tinygrad_lite.profiler): forward and backward ms, share."""
    from tinygrad_lite.profiler import profile_ops

    step(*data[0])
    t0 = time.perf_counter()
    with profile_ops() as table:
        for i in range(steps):
            step(*data[i % len(data)])
    total = time.perf_counter() - t0
    print(f"engine step {1000 * total / steps:.1f} ms (batch {len(data[0][1])}, mean of {steps} steps), by op:")
    print(table.format(total_seconds=total, steps=steps))


# ---- processes -----------------------------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    setup = engine_setup if args.worker == "engine" else torch_setup
    step, data = setup(args.weights, args.batch, args.threads)
    if args.profile:
        profile(step, data, args.steps)
        return
    times = timed_steps(step, data, args.warmup, args.steps)
    result = {"ms": 1000 * statistics.median(times)}
    if args.worker == "engine":
        result["traced_mib"] = traced_peak_mib(step, data[0])
    result["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def run_worker(framework: str, weights: Path, batch: int, args: argparse.Namespace,
               steps: int | None = None) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", framework, "--weights", str(weights), "--batch", str(batch),
               "--steps", str(steps or args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"error: the {framework} run failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each framework at batch 64 (default 5)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--batch", type=int, default=64, help="batch size of the comparison (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="threads of each framework (default 2)")
    parser.add_argument("--skip-scaling", action="store_true", help="skip the table of batch sizes")
    parser.add_argument("--profile", action="store_true", help="only the engine's per-op profile")
    parser.add_argument("--worker", choices=["engine", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import tinygrad_lite as tl

    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "cnn.npz"
        tl.save(CNN(CNNConfig(), seed=0).state_dict(), weights)
        if args.profile:
            subprocess.run([sys.executable, __file__, "--worker", "engine", "--profile", "--weights", str(weights),
                            "--batch", str(args.batch), "--steps", str(args.steps), "--threads", str(args.threads)],
                           check=True)
            return
        frameworks = ["engine", "torch"] if torch_available() else ["engine"]
        results: dict[str, list[dict[str, float]]] = {f: [] for f in frameworks}
        for _ in range(args.runs):
            for framework in frameworks:
                results[framework].append(run_worker(framework, weights, args.batch, args))
        ours = [r["ms"] for r in results["engine"]]
        print(f"one training step of the default CNN, batch {args.batch}, {args.threads} threads ({args.runs} runs of "
              f"{args.steps} steps each, alternating; medians)")
        print(f"{'':16s} {'step ms':>9s} {'runs':>24s} {'peak RSS MiB':>13s} {'live numpy MiB':>15s}")
        rss = statistics.median(r["rss_mib"] for r in results["engine"])
        traced = statistics.median(r["traced_mib"] for r in results["engine"])
        print(f"{'tinygrad_lite':16s} {statistics.median(ours):9.1f} {_span(ours):>24s} {rss:13.0f} {traced:15.1f}")
        if "torch" in results:
            theirs = [r["ms"] for r in results["torch"]]
            rss = statistics.median(r["rss_mib"] for r in results["torch"])
            print(f"{'PyTorch':16s} {statistics.median(theirs):9.1f} {_span(theirs):>24s} {rss:13.0f} {'':>15s}")
            ratios = [a / b for a, b in zip(ours, theirs)]
            print(f"ratio: median {statistics.median(ratios):.2f}x (runs {min(ratios):.2f}x to {max(ratios):.2f}x; "
                  f"target {TARGET}x)")
        if args.skip_scaling:
            return
        print("\nstep time and memory against batch size (one run each):")
        print(f"{'batch':>6s} {'engine ms':>10s} {'us/image':>9s} {'PyTorch ms':>11s} {'ratio':>6s} "
              f"{'live numpy MiB':>15s}")
        for batch in SCALING_BATCHES:
            mine = run_worker("engine", weights, batch, args, max(5, args.steps // 2))
            line = f"{batch:6d} {mine['ms']:10.1f} {1000 * mine['ms'] / batch:9.0f}"
            if "torch" in results:
                theirs_b = run_worker("torch", weights, batch, args, max(5, args.steps // 2))
                line += f" {theirs_b['ms']:11.1f} {mine['ms'] / theirs_b['ms']:5.2f}x"
            else:
                line += f" {'':11s} {'':6s}"
            print(f"{line} {mine['traced_mib']:15.1f}")


def _span(values: list[float]) -> str:
    return f"{min(values):.1f} to {max(values):.1f}"


if __name__ == "__main__":
    main()
