"""Exact resume: N steps, a checkpoint, M more steps == N + M uninterrupted steps, bit for bit.

A checkpoint holds everything a run's future depends on: the model's parameters,
the optimizer's state (momenta, Adam moments and step counts), the schedule's
step, the data sampler's RNG and the dropout RNG. A save that dies mid-write
never replaces the previous good checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_lite as tl
from models.char_data import CharDataset
from models.gpt import GPT, GPTConfig
from models.mlp import MLP
from tinygrad_lite import Tensor, nn, optim
from tinygrad_lite.nn import functional as F
from tinygrad_lite.optim import lr_scheduler


@dataclass
class Run:
    """One training run's state: what `checkpoint` saves and `restore` loads."""

    model: nn.Module
    optimizer: optim.Optimizer
    schedule: lr_scheduler.LRScheduler
    sampler: np.random.Generator  # draws the batches
    dropout_rng: np.random.Generator  # draws the dropout masks
    loss_of_batch: Callable[[Run], Tensor]
    step: int = 0

    def train(self, steps: int) -> None:
        for _ in range(steps):
            loss = self.loss_of_batch(self)
            self.optimizer.zero_grad()
            loss.backward()
            optim.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            self.schedule.step()
            self.step += 1

    def checkpoint(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "step": self.step,
                "rng": {"sampler": self.sampler.bit_generator.state, "dropout": self.dropout_rng.bit_generator.state}}

    def restore(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.sampler.bit_generator.state = ckpt["rng"]["sampler"]
        self.dropout_rng.bit_generator.state = ckpt["rng"]["dropout"]
        self.step = int(ckpt["step"])


DIGITS = np.random.default_rng(123).standard_normal((200, 12)).astype(np.float32)  # a stand-in for MNIST
LABELS = np.random.default_rng(456).integers(0, 3, 200)


def mlp_run(seed: int = 0) -> Run:
    """MLP with dropout, SGD with Nesterov momentum, a step schedule."""
    model = MLP([12, 16, 3], dropout=0.2, seed=seed)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)

    def loss_of_batch(run: Run) -> Tensor:
        rows = run.sampler.integers(0, len(DIGITS), 16)
        return F.cross_entropy(run.model(Tensor(DIGITS[rows])), Tensor(LABELS[rows]))

    return Run(model, opt, lr_scheduler.StepLR(opt, step_size=3, gamma=0.5), np.random.default_rng([seed, 1]),
               model.dropout.rng, loss_of_batch)


TEXT = "".join(np.random.default_rng(7).choice(list("abcdefgh \n"), 400))


def gpt_run(seed: int = 0) -> Run:
    """A tiny GPT with dropout, AdamW (two groups), a warm-up + cosine schedule, random windows of a text."""
    data = CharDataset(TEXT, block_size=8)
    model = GPT(GPTConfig(vocab_size=data.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.1),
                seed=seed)
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=3e-3)

    def loss_of_batch(run: Run) -> Tensor:
        return run.model(*data.get_batch("train", 4, run.sampler))[1]

    warmup_cosine = lr_scheduler.LambdaLR(opt, lambda step: lr_scheduler.cosine_with_warmup(step, 1.0, 2, 10))
    return Run(model, opt, warmup_cosine, np.random.default_rng(seed),
               model.rng, loss_of_batch)


def assert_same_run(a: Run, b: Run) -> None:
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        assert np.array_equal(p.data, q.data), f"parameter {name} differs"
    for sa, sb in zip(a.optimizer.state.values(), b.optimizer.state.values()):
        assert sa.keys() == sb.keys()
        for k in sa:
            assert np.array_equal(sa[k], sb[k]), f"optimizer state {k} differs"
    assert a.optimizer.param_groups[0]["lr"] == b.optimizer.param_groups[0]["lr"]
    assert a.step == b.step
    assert a.sampler.bit_generator.state == b.sampler.bit_generator.state
    assert a.dropout_rng.bit_generator.state == b.dropout_rng.bit_generator.state


@pytest.mark.parametrize("make_run, n, m", [(mlp_run, 7, 5), (gpt_run, 4, 3)], ids=["mlp", "gpt"])
def test_resume_is_bit_identical_to_an_uninterrupted_run(make_run, n, m, tmp_path):
    straight = make_run()
    straight.train(n + m)

    first = make_run()
    first.train(n)
    tl.save(first.checkpoint(), tmp_path / "ckpt.npz")
    del first
    resumed = make_run()  # a fresh process would build the same objects from the same config and seed
    resumed.restore(tl.load(tmp_path / "ckpt.npz"))
    resumed.train(m)

    assert_same_run(straight, resumed)
    changed = make_run()
    assert not np.array_equal(changed.model.parameters()[0].data, straight.model.parameters()[0].data)


def test_resume_without_the_rng_state_is_not_identical(tmp_path):
    """The RNG states matter: leaving them out changes the run (so the test above is not vacuous)."""
    straight = mlp_run()
    straight.train(6)
    first = mlp_run()
    first.train(3)
    ckpt = first.checkpoint()
    resumed = mlp_run()
    resumed.restore({**ckpt, "rng": {"sampler": resumed.sampler.bit_generator.state,
                                     "dropout": resumed.dropout_rng.bit_generator.state}})
    resumed.train(3)
    assert not np.array_equal(straight.model.parameters()[0].data, resumed.model.parameters()[0].data)


def test_a_save_that_fails_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    run = mlp_run()
    path = tmp_path / "ckpt.npz"
    tl.save(run.checkpoint(), path)
    good = path.read_bytes()
    run.train(2)

    def write_half_then_die(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt  # as if the run were interrupted mid-write

    monkeypatch.setattr(tl.io.np, "savez", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        tl.save(run.checkpoint(), path)
    monkeypatch.undo()

    assert path.read_bytes() == good
    assert tl.load(path)["step"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]  # the partial temporary file was removed


def test_a_process_killed_mid_save_leaves_the_previous_checkpoint(tmp_path):
    """A real kill (SIGKILL: no cleanup runs) in the middle of writing the new checkpoint."""
    path = tmp_path / "ckpt.npz"
    tl.save({"step": 1, "weights": np.ones(10)}, path)
    good = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        import tinygrad_lite as tl

        def write_half_then_get_killed(f, **arrays):
            f.write(b"PK\\x03\\x04" + bytes(1000))
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        tl.io.np.savez = write_half_then_get_killed
        tl.save({{"step": 2, "weights": np.zeros(10)}}, {str(path)!r})
    """)
    if not hasattr(__import__("signal"), "SIGKILL"):
        pytest.skip("no SIGKILL on this platform")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, env=dict(os.environ))
    assert proc.returncode == -9, proc.stderr.decode()
    assert path.read_bytes() == good
    ckpt = tl.load(path)
    assert ckpt["step"] == 1 and np.array_equal(ckpt["weights"], np.ones(10))
    leftovers = [p for p in tmp_path.iterdir() if p.name != "ckpt.npz"]
    assert all(p.name.startswith(".ckpt.npz.") and p.suffix == ".tmp" for p in leftovers)  # ignored by load


def test_checkpoint_file_round_trips_the_rng_and_optimizer_state(tmp_path):
    run = gpt_run()
    run.train(2)
    tl.save(run.checkpoint(), tmp_path / "ckpt.npz")
    loaded = tl.load(Path(tmp_path / "ckpt.npz"))
    assert loaded["rng"]["dropout"] == run.dropout_rng.bit_generator.state  # 128-bit PCG64 integers survive
    assert set(loaded["optimizer"]["state"]) == set(range(len(run.model.parameters())))
