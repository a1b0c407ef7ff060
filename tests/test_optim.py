"""Optimizers and schedules: hand-computed updates, PyTorch trajectories, state round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_lite import Tensor, nn, optim
from tinygrad_lite.nn import functional as F
from tinygrad_lite.optim import lr_scheduler


def _param(values) -> nn.Parameter:
    return nn.Parameter(np.asarray(values, dtype=np.float32))


def _set_grad(p: nn.Parameter, values) -> None:
    p.grad = Tensor(np.asarray(values, dtype=np.float32))


def test_sgd_plain_step_is_p_minus_lr_grad():
    p = _param([1.0, -2.0])
    opt = optim.SGD([p], lr=0.5)
    _set_grad(p, [0.2, 0.4])
    opt.step()
    np.testing.assert_allclose(p.data, [0.9, -2.2], rtol=1e-6)
    assert p.dtype == np.float32


def test_sgd_momentum_nesterov_and_weight_decay_by_hand():
    p = _param([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    x, buf = 1.0, None
    for g in (0.5, -0.25, 1.0):
        _set_grad(p, [g])
        opt.step()
        d = g + 0.01 * x
        buf = d if buf is None else 0.9 * buf + d
        x -= 0.1 * (d + 0.9 * buf)
        assert p.data[0] == pytest.approx(x, rel=1e-6)


def test_adam_and_adamw_steps_by_hand():
    for cls, wd in ((optim.Adam, 0.1), (optim.AdamW, 0.1)):
        p = _param([0.5])
        opt = cls([p], lr=0.01, betas=(0.8, 0.9), eps=1e-8, weight_decay=wd)
        x, m, v = 0.5, 0.0, 0.0
        for t, g in enumerate((0.3, -0.1, 0.2), start=1):
            _set_grad(p, [g])
            opt.step()
            if cls is optim.AdamW:
                x *= 1 - 0.01 * wd
            else:
                g = g + wd * x
            m = 0.8 * m + 0.2 * g
            v = 0.9 * v + 0.1 * g * g
            x -= 0.01 * (m / (1 - 0.8**t)) / (math.sqrt(v / (1 - 0.9**t)) + 1e-8)
            assert p.data[0] == pytest.approx(x, rel=1e-5), (cls.__name__, t)


def test_param_groups_override_defaults_and_skip_missing_grads():
    a, b = _param([1.0]), _param([1.0])
    opt = optim.AdamW([{"params": [a], "weight_decay": 0.0}, {"params": [b]}], lr=0.1, weight_decay=0.5)
    assert opt.param_groups[0]["weight_decay"] == 0.0 and opt.param_groups[1]["weight_decay"] == 0.5
    _set_grad(a, [0.0])
    opt.step()  # b has no grad: untouched
    assert a.data[0] == 1.0 and b.data[0] == 1.0
    with pytest.raises(ValueError, match="unknown option"):
        optim.SGD([{"params": [a], "momentun": 0.9}], lr=0.1)
    with pytest.raises(ValueError, match="more than one group"):
        optim.SGD([{"params": [a]}, {"params": [a]}], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)


def test_zero_grad_and_clip_grad_norm():
    a, b = _param([0.0, 0.0]), _param([0.0])
    _set_grad(a, [3.0, 0.0])
    _set_grad(b, [4.0])
    total = optim.clip_grad_norm_([a, b], max_norm=1.0)
    assert float(total) == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad.data, b.grad.data]), [0.6, 0.0, 0.8], rtol=1e-5)
    assert float(optim.clip_grad_norm_([a, b], max_norm=10.0)) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(b.grad.data, [0.8], rtol=1e-5)  # under the limit: unchanged
    opt = optim.SGD([a, b], lr=0.1)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_schedules():
    opt = optim.SGD([_param([0.0])], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(4):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25]

    opt = optim.SGD([_param([0.0])], lr=1.0)
    sched = lr_scheduler.LambdaLR(opt, lambda step: lr_scheduler.cosine_with_warmup(step, 1.0, 4, 14, 0.1))
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(15):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert lrs[4] == pytest.approx(1.0) and lrs[9] == pytest.approx(0.55) and lrs[14:] == pytest.approx([0.1, 0.1])
    assert all(x >= y for x, y in zip(lrs[4:], lrs[5:]))


def _tiny_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((16, 5)).astype(np.float32), rng.integers(0, 3, 16)


def _run(opt_factory, steps: int, model=None, opt=None, start: int = 0):
    x, y = _tiny_problem()
    model = model or nn.Sequential(nn.Linear(5, 8, seed=1), nn.Tanh(), nn.Linear(8, 3, seed=2))
    opt = opt or opt_factory(model.parameters())
    for _ in range(start, steps):
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, opt


def test_optimizer_state_dict_round_trip_resumes_the_same_trajectory():
    factory = lambda ps: optim.Adam(ps, lr=0.01)
    full, _ = _run(factory, 10)
    half, opt = _run(factory, 5)
    state = opt.state_dict()
    resumed = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    resumed.load_state_dict(half.state_dict())
    opt2 = optim.Adam(resumed.parameters(), lr=0.5)
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == 0.01
    _run(factory, 10, resumed, opt2, start=5)
    for (name, a), (_, b) in zip(full.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_load_state_dict_mismatch_is_a_clear_error():
    opt = optim.Adam([_param([1.0, 2.0])])
    other = optim.Adam([_param([1.0, 2.0]), _param([1.0])])
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the state but 1"):
        opt.load_state_dict(other.state_dict())


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "adamw"])
def test_trajectory_matches_pytorch(name):
    torch = pytest.importorskip("torch", reason="PyTorch not installed: the cross-check against it is skipped")
    ours = {
        "sgd": lambda ps: optim.SGD(ps, lr=0.1, weight_decay=0.01),
        "momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
        "nesterov": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        "adam": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.01),
        "adamw": lambda ps: optim.AdamW(ps, lr=0.01, betas=(0.9, 0.95), weight_decay=0.1),
    }[name]
    theirs = {
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=0.01),
        "momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
        "nesterov": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        "adam": lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.01),
        "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.9, 0.95), weight_decay=0.1),
    }[name]
    model, _ = _run(ours, 20)

    x, y = _tiny_problem()
    init = nn.Sequential(nn.Linear(5, 8, seed=1), nn.Tanh(), nn.Linear(8, 3, seed=2))
    tmodel = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    tmodel.load_state_dict({k: torch.tensor(v) for k, v in init.state_dict().items()})
    topt = theirs(tmodel.parameters())
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(tmodel(torch.tensor(x)), torch.tensor(y))
        topt.zero_grad()
        loss.backward()
        topt.step()
    for k, v in tmodel.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k], v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


# ---- RMSprop and Adagrad: 20 steps in float64 against PyTorch ------------------------------------------

NEW_OPTIMIZERS = {
    "rmsprop": dict(lr=0.01),
    "rmsprop-all-options": dict(lr=0.005, alpha=0.9, eps=1e-6, weight_decay=0.01, momentum=0.8, centered=True),
    "rmsprop-centered-low-alpha": dict(lr=0.01, alpha=0.3, centered=True),  # the other branch of torch's lerp
    "adagrad": dict(lr=0.1),
    "adagrad-all-options": dict(lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.1, eps=1e-8),
}


@pytest.mark.parametrize("name", sorted(NEW_OPTIMIZERS))
def test_rmsprop_and_adagrad_trajectories_match_pytorch_in_float64(name):
    torch = pytest.importorskip("torch", reason="PyTorch not installed: the cross-check against it is skipped")
    cls = optim.RMSprop if name.startswith("rmsprop") else optim.Adagrad
    options = NEW_OPTIMIZERS[name]
    x, y = _tiny_problem()
    model = nn.Sequential(nn.Linear(5, 8, seed=1), nn.Tanh(), nn.Linear(8, 3, seed=2)).double()
    tmodel = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    tmodel.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    opt, topt = cls(model.parameters(), **options), getattr(torch.optim, cls.__name__)(tmodel.parameters(), **options)
    x64 = x.astype(np.float64)
    for step in range(20):
        loss = F.cross_entropy(model(Tensor(x64, dtype=np.float64)), y)
        opt.zero_grad()
        loss.backward()
        tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x64)), torch.from_numpy(y))
        topt.zero_grad()
        tloss.backward()
        for p, tp in zip(model.parameters(), tmodel.parameters()):
            np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-9, atol=1e-15)
            p.grad.data = tp.grad.numpy().copy()  # the same gradient into both: the step alone is compared
        opt.step()
        topt.step()
        assert loss.item() == pytest.approx(tloss.item(), rel=1e-12), step
    for k, v in tmodel.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k], v.numpy(), rtol=1e-11, atol=1e-14, err_msg=k)
    ours = opt.state_dict()["state"]
    for i, tstate in topt.state_dict()["state"].items():
        assert set(ours[i]) == set(tstate)
        assert ours[i]["step"] == int(tstate["step"]) == 20
        for key in set(tstate) - {"step"}:
            np.testing.assert_allclose(ours[i][key], tstate[key].numpy(), rtol=1e-10, atol=1e-14, err_msg=key)


@pytest.mark.parametrize("name", ["rmsprop-all-options", "adagrad-all-options"])
def test_rmsprop_and_adagrad_state_dicts_resume_the_same_trajectory(name):
    cls = optim.RMSprop if name.startswith("rmsprop") else optim.Adagrad
    factory = lambda ps: cls(ps, **NEW_OPTIMIZERS[name])
    full, _ = _run(factory, 10)
    half, opt = _run(factory, 5)
    resumed = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    resumed.load_state_dict(half.state_dict())
    opt2 = factory(resumed.parameters())
    opt2.load_state_dict(opt.state_dict())
    _run(factory, 10, resumed, opt2, start=5)
    for (name_, a), (_, b) in zip(full.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name_)


def test_adagrad_state_exists_before_the_first_step_as_in_pytorch():
    p = _param([1.0, 2.0])
    state = optim.Adagrad([p], initial_accumulator_value=0.5).state_dict()["state"]
    assert state[0]["step"] == 0 and state[0]["sum"].tolist() == [0.5, 0.5]
