"""A user's own training loop, tinygrad_lite against PyTorch CPU: each framework in its own process, taking turns.

    python benchmarks/bench_plain_loop.py                      # every model, 5 runs each (the MLP 15)
    python benchmarks/bench_plain_loop.py --models gpt4 --runs 7 --profile

The loop is the one a user writes (model, AdamW or Adam, forward, backward, step), with no call into
`tinygrad_lite.perf`: what runs is the engine's defaults. Both frameworks use 2 threads, float32, the
same initial weights. A run is one fresh process that times `--steps` steps after `--warmup`; the
frameworks alternate run by run (which one goes first alternates too; the MLP, whose step takes a few
milliseconds, gets three times as many runs), and the table gives the medians
over the runs of each run's median step, their ratio, and each process's peak resident memory.
`--profile` prints where a step of the engine's GPT goes, op by op (forward and backward).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = {  # name: (description, target ratio)
    "gpt4": ("GPT 4L/4H/128, block 64, batch 12", 1.0),
    "gpt6": ("GPT 6L/6H/192, block 128, batch 16", 0.9),
    "mlp": ("MNIST MLP 784-512-512-10, batch 128", 0.8),
}
RUNS_FACTOR = {"mlp": 3}  # its step takes a few milliseconds, so a moment's load moves a run most: more runs
GPT_DIMS = {"gpt4": (4, 4, 128, 64, 12), "gpt6": (6, 6, 192, 128, 16)}  # n_layer, n_head, n_embd, block, batch
VOCAB = 65


def ours(model_name: str):
    """(step, batches) of the engine, as a user writes it."""
    from tinygrad_lite import Tensor

    rng = np.random.default_rng(0)
    if model_name in GPT_DIMS:
        from models.gpt import GPT, GPTConfig

        n_layer, n_head, n_embd, block, batch = GPT_DIMS[model_name]
        model = GPT(GPTConfig(vocab_size=VOCAB, block_size=block, n_layer=n_layer, n_head=n_head, n_embd=n_embd))
        opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.99))
        batches = [(Tensor(rng.integers(0, VOCAB, (batch, block))), Tensor(rng.integers(0, VOCAB, (batch, block))))
                   for _ in range(4)]

        def step(x, y):
            _, loss = model(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step, batches
    from bench_mlp import BATCH, DROPOUT, LR, SIZES

    import tinygrad_lite.nn.functional as F
    from models.mlp import MLP
    from tinygrad_lite import optim

    model = MLP(SIZES, activation="relu", dropout=DROPOUT, seed=0)
    opt = optim.Adam(model.parameters(), lr=LR)
    batches = [(Tensor(rng.random((BATCH, SIZES[0]), dtype=np.float32)), rng.integers(0, SIZES[-1], BATCH))
               for _ in range(4)]

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step, batches


def theirs(model_name: str):
    """(step, batches) of the same model in PyTorch, with the engine's initial weights."""
    import torch

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    if model_name in GPT_DIMS:
        from bench_gpt import torch_model

        from models.gpt import GPT, GPTConfig

        n_layer, n_head, n_embd, block, batch = GPT_DIMS[model_name]
        config = GPTConfig(vocab_size=VOCAB, block_size=block, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
        model = torch_model(config, GPT(config).state_dict())
        decay = [p for p in model.parameters() if p.ndim >= 2]
        rest = [p for p in model.parameters() if p.ndim < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                lr=1e-3, betas=(0.9, 0.99))
        batches = [(torch.from_numpy(rng.integers(0, VOCAB, (batch, block))),
                    torch.from_numpy(rng.integers(0, VOCAB, (batch, block)))) for _ in range(4)]

        def step(x, y):
            loss = model(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step, batches
    from bench_mlp import BATCH, LR, SIZES, torch_mlp

    model = torch_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    batches = [(torch.from_numpy(rng.random((BATCH, SIZES[0]), dtype=np.float32)),
                torch.from_numpy(rng.integers(0, SIZES[-1], BATCH))) for _ in range(4)]

    def step(x, y):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step, batches


def child(framework: str, model_name: str, steps: int, warmup: int) -> dict[str, float]:
    """One run in this process: the median step time (ms) and the peak resident memory (MiB)."""
    step, batches = (ours if framework == "tinygrad_lite" else theirs)(model_name)
    for i in range(warmup):
        step(*batches[i % len(batches)])
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        step(*batches[i % len(batches)])
        times.append(time.perf_counter() - t0)
    return {"ms": 1000 * statistics.median(times), "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def spawn(framework: str, model_name: str, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", framework, model_name, "--steps", str(args.steps),
               "--warmup", str(args.warmup)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=HERE.parent)
    if done.returncode != 0:
        raise SystemExit(f"error: the {framework} run of {model_name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def profile(model_name: str, steps: int) -> None:
    """Where a step of the engine goes, op by op: forward and backward seconds, share of the step."""
    from tinygrad_lite.profiler import profile_ops

    step, batches = ours(model_name)
    for i in range(2):
        step(*batches[i % len(batches)])
    t0 = time.perf_counter()
    with profile_ops() as table:
        for i in range(steps):
            step(*batches[i % len(batches)])
    total = (time.perf_counter() - t0) / steps
    print(f"\nper-op profile of one {MODELS[model_name][0]} step ({1000 * total:.1f} ms; mean of {steps} steps):")
    print(table.format(total_seconds=total * steps, steps=steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--runs", type=int, default=5,
                        help="processes per framework and model (default 5; the MLP gets three times as many)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--profile", action="store_true", help="also print the engine's per-op profile")
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.steps, args.warmup)))
        return
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose among {list(MODELS)}")
    print(f"{'model':38s} {'tinygrad_lite':>14s} {'PyTorch':>10s} {'ratio':>7s} {'target':>7s} "
          f"{'RSS MiB (ours / torch)':>24s}")
    for name in names:
        results: dict[str, list[dict[str, float]]] = {"tinygrad_lite": [], "torch": []}
        runs = args.runs * RUNS_FACTOR.get(name, 1)
        for run in range(runs):
            order = ("tinygrad_lite", "torch") if run % 2 == 0 else ("torch", "tinygrad_lite")
            for framework in order:
                results[framework].append(spawn(framework, name, args))
        ms = {f: statistics.median(r["ms"] for r in runs) for f, runs in results.items()}
        rss = {f: statistics.median(r["rss"] for r in runs) for f, runs in results.items()}
        ratios = [a["ms"] / b["ms"] for a, b in zip(results["tinygrad_lite"], results["torch"])]
        description, target = MODELS[name]
        print(f"{description:38s} {ms['tinygrad_lite']:11.1f} ms {ms['torch']:7.1f} ms "
              f"{ms['tinygrad_lite'] / ms['torch']:6.2f}x {target:6.2f}x {rss['tinygrad_lite']:11.0f} / "
              f"{rss['torch']:.0f}   ({runs} runs, ratios {min(ratios):.2f}-{max(ratios):.2f})")
    if args.profile:
        for name in names:
            if name in GPT_DIMS:
                profile(name, args.steps)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    main()
