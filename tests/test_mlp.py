"""The MLP model and the MNIST training script: overfitting, gradients, real data, resume."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import load_example, require_data

import tinygrad_lite as tl
import tinygrad_lite.nn.functional as F
from models.mlp import MLP
from tinygrad_lite import Tensor, gradcheck, optim


def test_mlp_structure_and_errors():
    model = MLP([4, 8, 8, 3], activation="tanh", dropout=0.1, seed=0)
    assert [n for n, _ in model.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight", "layers.2.bias"]
    assert model(Tensor(np.zeros((5, 4), dtype=np.float32))).shape == (5, 3)
    np.testing.assert_array_equal(MLP([4, 8, 3], seed=0).state_dict()["layers.1.weight"],
                                  MLP([4, 8, 3], seed=0).state_dict()["layers.1.weight"])
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MLP([4, 3], activation="swish")
    with pytest.raises(ValueError, match="at least an input and an output"):
        MLP([4])


def test_mlp_overfits_a_tiny_batch():
    rng = np.random.default_rng(0)
    x, y = Tensor(rng.standard_normal((16, 10)).astype(np.float32)), rng.integers(0, 4, 16)
    model = MLP([10, 32, 4], seed=0)
    opt = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(300):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-2
    assert (model(x).data.argmax(axis=1) == y).all()


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "gelu"])
def test_small_mlp_fast_gradcheck_in_float64(activation):
    model = MLP([5, 6, 4, 3], activation=activation, activate_output=activation == "sigmoid", seed=0)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((7, 5)), dtype=np.float64, requires_grad=True)
    y = rng.integers(0, 3, 7)
    assert gradcheck(lambda x, *params: F.cross_entropy(model(x), y), x, *model.parameters(), fast=True)


@pytest.fixture(scope="module")
def mnist():
    return tl.datasets.load_mnist(require_data("mnist").parent, download=False)


def test_short_real_mnist_run_beats_chance(mnist):
    x, y, xt, yt = mnist
    model = MLP([784, 64, 10], seed=0)
    opt = optim.Adam(model.parameters(), lr=2e-3)
    for step in range(300):
        idx = slice(step * 64, (step + 1) * 64)
        loss = F.cross_entropy(model(Tensor(x[idx])), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with tl.no_grad():
        accuracy = (model(Tensor(xt)).data.argmax(axis=1) == yt).mean()
    assert accuracy > 0.85  # chance is 0.10


def test_training_script_classic_recipe_runs(tmp_path, capsys, monkeypatch, mnist):
    script = load_example("train_mnist")
    monkeypatch.setattr(tl.datasets, "load_mnist", lambda *args, **kwargs: mnist)
    accuracy = script.main(["--classic", "--epochs", "1", "--batch-size", "100", "--checkpoint",
                            str(tmp_path / "classic.npz")])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("model: [784, 30, 10] sigmoid") and "quadratic cost" in lines[0]
    assert lines[-1] == f"test accuracy: {accuracy:.2f}%" and accuracy > 50  # one short epoch; chance is 10%
    assert tl.load(tmp_path / "classic.npz")["config"]["classic"] is True


def test_training_script_resumes_on_the_same_trajectory(tmp_path, capsys, monkeypatch, mnist):
    script = load_example("train_mnist")
    monkeypatch.setattr(tl.datasets, "load_mnist", lambda *args, **kwargs: mnist)  # loaded once per module
    common = ["--hidden", "16", "--batch-size", "1000", "--seed", "3", "--epochs", "2"]
    script.main([*common, "--checkpoint", str(tmp_path / "full.npz")])
    assert re.fullmatch(r"test accuracy: \d+\.\d\d%", capsys.readouterr().out.strip().splitlines()[-1])

    train_epoch = script.train_epoch

    def interrupted_in_epoch_2(*args):
        if args[-1] == 1:
            raise KeyboardInterrupt
        return train_epoch(*args)

    monkeypatch.setattr(script, "train_epoch", interrupted_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        script.main([*common, "--checkpoint", str(tmp_path / "resumed.npz")])
    monkeypatch.setattr(script, "train_epoch", train_epoch)
    script.main([*common, "--checkpoint", str(tmp_path / "resumed.npz"), "--resume"])
    assert "resumed from" in capsys.readouterr().out
    full, resumed = tl.load(tmp_path / "full.npz"), tl.load(tmp_path / "resumed.npz")
    assert resumed["epoch"] == 2
    for name, value in full["model"].items():
        np.testing.assert_array_equal(resumed["model"][name], value, err_msg=name)
    assert resumed["history"] == full["history"]
