"""Tokens/s of greedy generation with a GPT-2-small-shaped model (124M, random weights): tinygrad_lite with its
KV cache, without it, and transformers' GPT2LMHeadModel with its cache on PyTorch CPU.

    python benchmarks/bench_generate.py                     # 5 rounds, 16-token prompt, 64 new tokens
    python benchmarks/bench_generate.py --rounds 7 --tokens 128 --skip-no-cache

The weights are drawn once (GPT(seed=0)) and written with save_pretrained; every run is a fresh process
that loads them (GPT.from_pretrained, GPT2LMHeadModel.from_pretrained), sets 2 threads, generates once to
warm up, then times `generate` of --tokens greedy tokens (the prompt's prefill included; no end-of-text
token, so every run makes all of them). The frameworks take turns, round after round, so that a shared
machine's drifts hit all alike; the table gives medians. Peak memory is the process's peak resident size
during the timed generation (the weights included, loading excluded: /proc/self/clear_refs resets it).
Every run must produce the same tokens.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
GPT2_SMALL = dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
RUNNERS = ("tinygrad_lite", "tinygrad_lite, no cache", "PyTorch + transformers")


def peak_rss_mib() -> float:
    """The process's peak resident size since the last reset (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM restarts from the current resident size


def run_tinygrad_lite(folder: Path, prompt: np.ndarray, use_cache: bool, threads: int):
    from models.gpt import GPT
    from tinygrad_lite import Tensor
    from tinygrad_lite.perf import set_num_threads

    set_num_threads(threads)
    model = GPT.from_pretrained(folder)
    idx = Tensor(prompt)

    def generate(n: int) -> np.ndarray:
        return model.generate(idx, n, top_k=1, use_cache=use_cache).data

    return generate


def run_pytorch(folder: Path, prompt: np.ndarray, threads: int):
    import torch
    from transformers import GPT2LMHeadModel
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    torch.set_num_threads(threads)
    model = GPT2LMHeadModel.from_pretrained(folder).eval()
    idx = torch.from_numpy(prompt)
    mask = torch.ones_like(idx)

    def generate(n: int) -> np.ndarray:
        with torch.no_grad():
            return model.generate(idx, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                  use_cache=True, pad_token_id=0).numpy()

    return generate


def worker(runner: str, folder: Path, prompt_len: int, tokens: int, threads: int) -> dict:
    """One timed generation in this process: tokens/s, seconds, peak RSS and the generated ids."""
    prompt = np.random.default_rng(0).integers(0, GPT2_SMALL["vocab_size"], (1, prompt_len))
    if runner == "PyTorch + transformers":
        generate = run_pytorch(folder, prompt, threads)
    else:
        generate = run_tinygrad_lite(folder, prompt, runner == "tinygrad_lite", threads)
    generate(4)  # warm-up: first calls, allocator, thread pools
    reset_peak_rss()
    start = time.perf_counter()
    ids = generate(tokens)
    seconds = time.perf_counter() - start
    return {"tokens_per_s": tokens / seconds, "seconds": seconds, "peak_rss_mib": peak_rss_mib(),
            "ids": ids[0, prompt_len:].tolist()}


def spawn(runner: str, args: argparse.Namespace, folder: Path) -> dict:
    command = [sys.executable, __file__, "--worker", runner, "--folder", str(folder), "--prompt-len",
               str(args.prompt_len), "--tokens", str(args.tokens), "--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"error: the {runner} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5, help="runs of each framework (default %(default)s)")
    p.add_argument("--prompt-len", type=int, default=16, help="prompt tokens (default %(default)s)")
    p.add_argument("--tokens", type=int, default=64, help="generated tokens per run (default %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="threads for each framework (default %(default)s)")
    p.add_argument("--skip-no-cache", action="store_true", help="leave out the run without the KV cache")
    p.add_argument("--worker", choices=RUNNERS, help=argparse.SUPPRESS)
    p.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.folder, args.prompt_len, args.tokens, args.threads)))
        return

    from models.gpt import GPT, GPTConfig

    runners = [r for r in RUNNERS if not (args.skip_no_cache and r == "tinygrad_lite, no cache")]
    results: dict[str, list[dict]] = {r: [] for r in runners}
    with tempfile.TemporaryDirectory() as tmp:
        GPT(GPTConfig(**GPT2_SMALL), seed=0).save_pretrained(tmp)
        for r in range(args.rounds):
            order = runners if r % 2 == 0 else runners[::-1]
            for runner in order:
                results[runner].append(spawn(runner, args, Path(tmp)))
                print(f"round {r + 1}: {runner:24s} {results[runner][-1]['tokens_per_s']:6.2f} tokens/s",
                      flush=True)

    reference = results["tinygrad_lite"][0]["ids"]
    same = all(run["ids"] == reference for runs in results.values() for run in runs)
    torch_speed = statistics.median(run["tokens_per_s"] for run in results["PyTorch + transformers"])
    print(f"\nGPT-2 small shape (124M, float32), prompt {args.prompt_len}, {args.tokens} new tokens, greedy, "
          f"{args.threads} threads, medians of {args.rounds} runs (each its own process)")
    print(f"{'':26s} {'tokens/s':>9s} {'range':>15s} {'vs PyTorch':>11s} {'peak RSS MiB':>13s}")
    for runner, runs in results.items():
        speeds = [run["tokens_per_s"] for run in runs]
        median = statistics.median(speeds)
        rss = statistics.median(run["peak_rss_mib"] for run in runs)
        print(f"{runner:26s} {median:9.2f} {min(speeds):7.2f} - {max(speeds):5.2f} {median / torch_speed:10.2f}x "
              f"{rss:13.0f}")
    print(f"same tokens in every run: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
