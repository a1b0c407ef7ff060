"""examples/train_gpt.py's schedule: the cosine follows the clock over --max-minutes, or the steps of --max-iters."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_lite.optim.lr_scheduler import cosine_with_warmup

REPO = Path(__file__).resolve().parent.parent


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


train_gpt = _example("train_gpt")


def budget(max_iters=None, max_minutes=0.0, warmup_iters=10) -> argparse.Namespace:
    return argparse.Namespace(max_iters=max_iters, max_minutes=max_minutes, warmup_iters=warmup_iters, lr=1e-3,
                              min_lr=1e-4)


def test_a_budget_in_steps_is_nanogpts_schedule():
    args = budget(max_iters=100)
    warmup_end = train_gpt.budget_used(args.warmup_iters, 0.0, args)
    for step in range(0, 110, 7):
        used = train_gpt.budget_used(step, 1e6, args)  # the clock does not count without --max-minutes
        assert math.isclose(train_gpt.learning_rate(step, min(used, 1.0), warmup_end, args),
                            cosine_with_warmup(min(step, 100), 1e-3, 10, 100, 1e-4), rel_tol=1e-12)


def test_a_budget_in_minutes_ends_the_cosine_when_the_time_is_up():
    args = budget(max_minutes=2.0)  # 120 s; the warm-up ended after 6 s
    warmup_end = train_gpt.budget_used(10, 6.0, args)
    lrs = [train_gpt.learning_rate(50, train_gpt.budget_used(50, s, args), warmup_end, args) for s in (6, 63, 120)]
    assert math.isclose(lrs[0], 1e-3) and math.isclose(lrs[1], 0.5 * (1e-3 + 1e-4)) and math.isclose(lrs[2], 1e-4)
    both = budget(max_iters=1000, max_minutes=2.0)  # whichever runs out first
    assert train_gpt.budget_used(900, 60.0, both) == 0.9 and train_gpt.budget_used(100, 60.0, both) == 0.5


def test_no_budget_is_refused(capsys):
    with pytest.raises(SystemExit):
        train_gpt.parse_args(["--max-minutes", "0"])
    assert "give a budget" in capsys.readouterr().err


def test_the_clock_budget_is_used_and_logged(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("".join(np.random.default_rng(0).choice(list("abcde \n"), 3000)), encoding="utf-8")
    log = tmp_path / "log.jsonl"
    train_gpt.main(["--text", str(text), "--checkpoint", str(tmp_path / "c.npz"), "--max-minutes", "0.05",
                    "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
                    "--eval-interval", "20", "--eval-iters", "2", "--warmup-iters", "5", "--sample-tokens", "5",
                    "--no-progress", "--log", str(log)])
    *points, final = [json.loads(line) for line in log.read_text().splitlines()]
    assert set(final) == {"final_val", "steps"} and final["steps"] == points[-1]["step"]
    seconds = [p["seconds"] for p in points]  # rounded to ms: two evaluations on a fast machine may share one
    assert len(points) >= 2 and seconds == sorted(seconds) and seconds[0] < seconds[-1]
    assert points[-1]["seconds"] >= 3.0  # the whole budget of 3 s was used (the last evaluation comes after it)
    assert points[-1]["lr"] < 2e-4  # the cosine has come down to --min-lr (1e-4) with the clock
