"""Anomaly mode: the first NaN/Inf in a forward output or backward gradient raises, naming op, shapes, place, phase."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_lite as tl
from models.gpt import GPT, GPTConfig
from models.mlp import MLP
from tinygrad_lite import Tensor, anomaly, nn
from tinygrad_lite.nn import functional as F
from tinygrad_lite.nn.attention import attention_reference
from tinygrad_lite.nn.module import _ModuleStack
from tinygrad_lite.optim import SGD

engine = importlib.import_module("tinygrad_lite.tensor")  # the module: `tinygrad_lite.tensor` is torch.tensor's twin
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's own divide/overflow warnings

THIS_FILE = os.path.abspath(__file__)


def test_planted_log_of_zero_raises_in_forward_at_the_users_line():
    x = Tensor([1.0, 0.0, 2.0], requires_grad=True)
    with pytest.raises(tl.AnomalyError) as info, tl.detect_anomaly():
        y = x.log()  # the planted line
    e = info.value
    assert isinstance(e, FloatingPointError)
    assert (e.op, e.phase, e.module_path) == ("log", "forward", None)
    assert THIS_FILE in e.source[0] and "y = x.log()  # the planted line" in e.source[0]
    assert "1 Inf (of 3 values)" in str(e) and "input shapes [(3,)], output shape (3,)" in str(e)
    assert "y" not in locals()


def test_planted_zero_over_zero_raises_in_forward():
    x = Tensor([[0.0, 1.0]], requires_grad=True)
    with pytest.raises(tl.AnomalyError) as info, tl.detect_anomaly():
        x / x
    assert (info.value.op, info.value.phase) == ("div", "forward")
    assert "1 NaN (of 2 values)" in str(info.value)
    assert "input shapes [(1, 2), (1, 2)], output shape (1, 2)" in str(info.value)


class ZeroTimesSqrt(nn.Module):
    """sqrt(x) * 0: finite forward, but sqrt's backward at 0 computes 0 / 0."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sqrt() * 0.0


class Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = ZeroTimesSqrt()

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x).sum()


def test_zero_over_zero_in_backward_names_the_module_and_the_forward_line():
    x = Tensor([0.0, 4.0], requires_grad=True)
    with pytest.raises(tl.AnomalyError) as info, tl.detect_anomaly():
        loss = Wrapper()(x)  # forward is clean
        loss.backward()
    e = info.value
    assert (e.op, e.phase, e.module_path) == ("sqrt", "backward", "inner (ZeroTimesSqrt) in Wrapper")
    assert "return x.sqrt() * 0.0" in e.source[0] and "self.inner(x).sum()" in e.source[1]
    assert "loss = Wrapper()(x)" in e.source[2]
    assert "1 NaN (of 2 values)" in str(e) and "gradient for input 0 (shape (2,))" in str(e)
    assert x.grad is None


def test_a_backward_outside_forward_recording_says_the_place_is_unknown():
    x = Tensor([0.0], requires_grad=True)
    y = (x.sqrt() * 0.0).sum()  # forward before the mode was on
    with pytest.raises(tl.AnomalyError) as info, tl.detect_anomaly():
        y.backward()
    assert (info.value.op, info.value.phase, info.value.source) == ("sqrt", "backward", [])
    assert "created at: unknown" in str(info.value)


def test_exploding_learning_rate_in_a_real_mlp():
    rng = np.random.default_rng(0)
    x, y = Tensor(rng.standard_normal((32, 8)).astype(np.float32)), Tensor(rng.integers(0, 4, 32))
    model = MLP([8, 16, 4], seed=0)
    opt = SGD(model.parameters(), lr=1e12)
    with pytest.raises(tl.AnomalyError) as info, tl.detect_anomaly():
        for _ in range(10):
            loss = F.cross_entropy(model(x), y)  # the training loop's line
            opt.zero_grad()
            loss.backward()
            opt.step()
    e = info.value
    assert (e.op, e.phase) == ("linear", "forward")
    assert e.module_path.startswith("layers.") and e.module_path.endswith("(Linear) in MLP")
    assert "mlp.py" in e.source[0] and "x = layer(x)" in e.source[0]
    assert "the training loop's line" in e.source[1]


def test_a_parameter_broken_outside_the_graph_is_named():
    model = MLP([3, 2], seed=0)
    model.layers[0].weight.data[0, 0] = np.inf  # as an overflowing optimizer step would leave it
    with pytest.raises(tl.AnomalyError) as info, tl.detect_anomaly():
        model(Tensor(np.array([[1.0, -1.0, 0.5]], dtype=np.float32)))
    assert "parameter 'layers.0.weight'" in str(info.value) and "outside the graph" in str(info.value)


def test_no_false_alarm_on_masked_attention_and_a_gpt_step():
    q = Tensor(np.random.default_rng(1).standard_normal((1, 2, 4, 8)), requires_grad=True)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.1), seed=0)
    idx = Tensor(np.random.default_rng(2).integers(0, 11, (2, 8)))
    with tl.detect_anomaly():
        attention_reference(q, q, q, is_causal=True).sum().backward()  # masked_fill(-inf) is deliberate
        _, loss = model(idx, idx)
        loss.backward()
        with tl.no_grad():
            model.generate(idx[:, :2], 3)
    assert q.grad is not None and np.isfinite(loss.item())


def test_off_by_default_nothing_raised_nothing_recorded():
    assert not anomaly.is_anomaly_enabled()
    x = Tensor([0.0], requires_grad=True)
    (x.sqrt() * 0.0).sum().backward()  # NaN gradient, silently, as without anomaly mode
    assert np.isnan(x.grad.data).all()
    assert engine._op_hooks == [] and engine._backward_hooks == []
    assert _ModuleStack.recording == 0 and _ModuleStack.active == []
    assert len(anomaly._origins) == 0


def test_the_mode_switches_off_cleanly_nested_and_as_a_decorator():
    @tl.detect_anomaly()
    def bad() -> Tensor:
        return Tensor([0.0]).log()

    with tl.detect_anomaly():
        with tl.detect_anomaly():
            Tensor([1.0], requires_grad=True).exp()
        assert anomaly.is_anomaly_enabled()
        with pytest.raises(tl.AnomalyError):
            bad()
    with pytest.raises(tl.AnomalyError):
        bad()
    assert not anomaly.is_anomaly_enabled()
    assert engine._op_hooks == [] and engine._backward_hooks == [] and _ModuleStack.recording == 0
    assert len(anomaly._origins) == 0


def test_environment_variable_turns_it_on_for_a_whole_script():
    script = ("import tinygrad_lite as tl\n"
              "try:\n"
              "    tl.Tensor([0.0], requires_grad=True).log()\n"
              "except tl.AnomalyError as e:\n"
              "    print('raised', e.op, e.phase)\n")
    env = {**os.environ, anomaly.ENV_VAR: "1"}
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", script], env=env, capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "raised log forward"
