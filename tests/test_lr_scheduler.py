"""optim.lr_scheduler against torch.optim.lr_scheduler: 30 steps of every schedule give torch's learning
rates (and momenta) to the last bit; state_dict round trips through a checkpoint resume the same sequence."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import Tensor, optim
from tinygrad_lite.optim import lr_scheduler

torch = pytest.importorskip("torch", reason="PyTorch not installed: pip install -e '.[torch]'")

STEPS = 30


def _params(n: int = 2) -> list[Tensor]:
    return [Tensor(np.zeros(2, dtype=np.float32), requires_grad=True) for _ in range(n)]


def _torch_params(n: int = 2) -> list:
    return [torch.zeros(2, requires_grad=True) for _ in range(n)]


OPTIMIZERS = {
    "sgd": (lambda ps: optim.SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.05}], lr=0.1, momentum=0.9),
            lambda ps: torch.optim.SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.05}], lr=0.1, momentum=0.9)),
    "adam": (lambda ps: optim.Adam([{"params": ps[:1], "betas": (0.8, 0.9)}, {"params": ps[1:]}], lr=3e-3),
             lambda ps: torch.optim.Adam([{"params": ps[:1], "betas": (0.8, 0.9)}, {"params": ps[1:]}], lr=3e-3)),
}

SCHEDULES = {
    "StepLR": dict(step_size=7, gamma=0.5),
    "MultiStepLR": dict(milestones=[3, 10, 10, 25], gamma=0.3),
    "ExponentialLR": dict(gamma=0.93),
    "CosineAnnealingLR": dict(T_max=12, eta_min=1e-4),  # 30 steps: down, up, and down again
    "LambdaLR": dict(lr_lambda=lambda step: 0.95 ** step / (1 + step % 4)),
    "LinearLR": dict(start_factor=0.25, end_factor=0.9, total_iters=11),
    "LinearLR-default": dict(),
    "OneCycleLR": dict(max_lr=0.5, total_steps=STEPS + 1),
    "OneCycleLR-linear-three-phase": dict(max_lr=[0.5, 0.2], epochs=4, steps_per_epoch=8, anneal_strategy="linear",
                                          three_phase=True, pct_start=0.25),
    "OneCycleLR-no-momentum": dict(max_lr=0.5, total_steps=STEPS, cycle_momentum=False, div_factor=10.0),
}


def _make(name: str, ours_or_theirs: int, opt):
    cls = name.split("-")[0]
    module = (lr_scheduler, torch.optim.lr_scheduler)[ours_or_theirs]
    return getattr(module, cls)(opt, **SCHEDULES[name])


def _hyper(opt) -> list[tuple]:
    """Each group's lr and momentum (or Adam's betas): what a schedule may change."""
    return [(g["lr"], g.get("momentum"), tuple(g.get("betas", ()))) for g in opt.param_groups]


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_sequences_equal_torchs(name, opt_name):
    ours_opt, theirs_opt = (make(p) for make, p in zip(OPTIMIZERS[opt_name], (_params(), _torch_params())))
    ours, theirs = _make(name, 0, ours_opt), _make(name, 1, theirs_opt)
    for step in range(STEPS + 1):
        assert ours.last_epoch == theirs.last_epoch == step
        assert _hyper(ours_opt) == _hyper(theirs_opt), step  # bit for bit
        assert ours.get_last_lr() == theirs.get_last_lr()
        if step < STEPS:
            theirs_opt.step()  # torch warns when the scheduler steps before the optimizer
            ours.step()
            theirs.step()


def test_chainable_schedules_continue_from_a_changed_lr_like_torch():
    ours_opt, theirs_opt = optim.SGD(_params(1), lr=1.0), torch.optim.SGD(_torch_params(1), lr=1.0)
    ours = [lr_scheduler.ExponentialLR(ours_opt, 0.9), lr_scheduler.StepLR(ours_opt, 3, 0.5)]
    theirs = [torch.optim.lr_scheduler.ExponentialLR(theirs_opt, 0.9),
              torch.optim.lr_scheduler.StepLR(theirs_opt, 3, 0.5)]
    for step in range(10):
        if step == 4:
            ours_opt.param_groups[0]["lr"] = theirs_opt.param_groups[0]["lr"] = 0.7
        theirs_opt.step()
        for a, b in zip(ours, theirs):
            a.step()
            b.step()
        assert ours_opt.param_groups[0]["lr"] == theirs_opt.param_groups[0]["lr"]


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "LambdaLR", "LinearLR", "OneCycleLR"])
def test_state_dict_through_a_checkpoint_resumes_the_sequence(name, tmp_path):
    def fresh():
        opt = OPTIMIZERS["sgd"][0](_params())
        return opt, _make(name, 0, opt)

    opt, sched = fresh()
    straight = []
    for _ in range(STEPS):
        sched.step()
        straight.append(_hyper(opt))

    opt, sched = fresh()
    for _ in range(12):
        sched.step()
    tl.save({"optimizer": opt.state_dict(), "schedule": sched.state_dict()}, tmp_path / "ckpt.npz")
    ckpt = tl.load(tmp_path / "ckpt.npz")
    opt, sched = fresh()
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["schedule"])
    assert sched.last_epoch == 12
    resumed = straight[:12]
    for _ in range(12, STEPS):
        sched.step()
        resumed.append(_hyper(opt))
    assert resumed == straight


def test_state_dict_keys_are_torchs():
    ours_opt, theirs_opt = optim.SGD(_params(1), lr=1.0), torch.optim.SGD(_torch_params(1), lr=1.0)
    ours = lr_scheduler.StepLR(ours_opt, 3)
    theirs = torch.optim.lr_scheduler.StepLR(theirs_opt, 3)
    assert set(ours.state_dict()) <= set(theirs.state_dict())
    assert {"step_size", "gamma", "base_lrs", "last_epoch", "_step_count", "_last_lr"} <= set(ours.state_dict())
    lam = lr_scheduler.LambdaLR(ours_opt, lambda s: 1.0)
    assert lam.state_dict()["lr_lambdas"] == [None]


def test_resuming_with_last_epoch_needs_initial_lr():
    opt = optim.SGD(_params(1), lr=1.0)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(opt, 3, last_epoch=5)
    lr_scheduler.StepLR(opt, 3)
    resumed = lr_scheduler.StepLR(opt, 3, last_epoch=5)
    assert resumed.last_epoch == 6


def test_cosine_with_warmup_as_a_lambda_schedule():
    opt = optim.SGD(_params(1), lr=2.0)
    sched = lr_scheduler.LambdaLR(opt, lambda step: lr_scheduler.cosine_with_warmup(step, 1.0, 3, 10, 0.1))
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(11):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:3] == pytest.approx([0.5, 1.0, 1.5]) and lrs[3] == 2.0
    assert lrs[10:] == pytest.approx([0.2, 0.2]) and all(a >= b for a, b in zip(lrs[3:], lrs[4:]))
    assert lrs[3 + 7 // 2] == pytest.approx(0.2 + 0.5 * (1 + math.cos(math.pi * 3 / 7)) * 1.8)
