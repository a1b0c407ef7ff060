"""Compare two training logs (the JSON lines of train_gpt.py --log and train_gpt_torch.py --log): how long each
took to reach a validation loss, and the ratio of those times.

    python benchmarks/time_to_quality.py out/ours.jsonl out/torch.jsonl --target 1.60

A log's time to the target is that of its first evaluation at or below it (evaluations come every
--eval-interval steps, so the time is rounded up to the next evaluation). The table also gives each run's steps,
its last and best estimated validation loss, and the loss of its best weights on the whole validation split.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from tinygrad_lite import cli


def read_log(path: Path) -> tuple[list[dict], dict]:
    """(evaluations, final record) of one log."""
    try:
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise cli.UsageError(f"cannot read the log {path}: {e}") from None
    points = [r for r in records if "val" in r]
    final = next((r for r in records if "final_val" in r), {})
    if not points:
        raise cli.UsageError(f"{path} holds no evaluations (write it with --log)")
    return points, final


def time_to(points: list[dict], target: float) -> float:
    """Seconds until the first evaluation at or below `target` (inf if none reached it)."""
    return next((p["seconds"] for p in points if p["val"] <= target), math.inf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ours", type=Path, help="the log of examples/train_gpt.py")
    parser.add_argument("theirs", type=Path, help="the log of benchmarks/train_gpt_torch.py")
    parser.add_argument("--target", type=float, default=1.60, help="the validation loss to reach (default 1.60)")
    args = parser.parse_args()
    rows, times = [], []
    for name, path in (("tinygrad_lite", args.ours), ("PyTorch", args.theirs)):
        points, final = read_log(path)
        seconds = time_to(points, args.target)
        times.append(seconds)
        rows.append((name, f"{points[-1]['step']}", f"{points[-1]['seconds'] / 60:.1f}",
                     f"{points[-1]['val']:.4f}", f"{min(p['val'] for p in points):.4f}",
                     f"{final['final_val']:.4f}" if final else "-",
                     f"{seconds / 60:.2f}" if math.isfinite(seconds) else "not reached"))
    header = ("run", "steps", "minutes", "last val", "best val", "full val (best)", f"min to {args.target:.2f}")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    if all(math.isfinite(t) for t in times):
        print(f"time to val {args.target:.2f}: tinygrad_lite / PyTorch = {times[0] / times[1]:.2f}x")


if __name__ == "__main__":
    cli.run(main)
