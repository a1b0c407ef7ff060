"""The CNNs of models/cnn.py (Nielsen's chapter-6 ladder and the default) and their path through train_mnist.py."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from conftest import load_example

import tinygrad_lite as tl
import tinygrad_lite.nn.functional as F
from models.cnn import CNN, CONFIGS, CNNConfig
from tinygrad_lite import Tensor, gradcheck, nn, optim, viz
from tinygrad_lite.cli import UsageError

TINY = CNNConfig(conv_channels=(3, 4), kernel_size=3, fc_sizes=(6,), image_size=12, dropout=0.0)


def images(batch: int, side: int = 28, seed: int = 0) -> Tensor:
    return Tensor(np.random.default_rng(seed).random((batch, 1, side, side), dtype=np.float32))


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_builds_and_classifies(name):
    config = CONFIGS[name]
    model = CNN(config, seed=0)
    assert model(images(3)).shape == (3, 10)
    conv = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in conv] == list(config.conv_channels)
    side = config.feature_size()
    widths = (config.conv_channels[-1] * side * side, *config.fc_sizes, 10)
    expected = sum(c.weight.numel() + (c.bias.numel() if c.bias is not None else 0) for c in conv) + \
        sum(a * b + b for a, b in zip(widths, widths[1:])) + (2 * sum(config.conv_channels) if config.batch_norm else 0)
    assert model.num_parameters() == expected


def test_nielsen_two_conv_layers_have_his_shapes_and_init():
    model = CNN(CONFIGS["nielsen-2conv"], seed=0)
    table = str(viz.trace(model, images(16), dims={"B": 16}, ops=False))
    assert re.search(r"blocks\.0\.conv\s+Conv2d\s+\(B, 1, 28, 28\)\s+\(B, 20, 24, 24\)\s+520", table)
    assert re.search(r"blocks\.0\s+ConvBlock\s+\(B, 1, 28, 28\)\s+\(B, 20, 12, 12\)", table)
    assert re.search(r"blocks\.1\s+ConvBlock\s+\(B, 20, 12, 12\)\s+\(B, 40, 4, 4\)", table)
    assert re.search(r"fc\.0\s+Linear\s+\(B, 640\)\s+\(B, 100\)", table)
    conv = model.blocks[0].conv
    assert conv.weight.data.std() == pytest.approx(math.sqrt(1 / (20 * 25 / 4)), rel=0.15)  # N(0, 1/n_out)
    assert conv.bias.data.std() == pytest.approx(1.0, rel=0.5)  # N(0, 1)
    assert not model.fc[-1].weight.data.any() and not model.fc[-1].bias.data.any()  # the softmax layer: zeros


def test_default_cnn_batch_norm_and_dropout_follow_train_and_eval():
    model = CNN(CONFIGS["cnn"], seed=0)
    x = images(8)
    model(x)
    bn = model.blocks[0].bn
    assert int(bn.num_batches_tracked.data) == 1 and bn.running_mean.data.any()
    assert "blocks.0.bn.running_var" in model.state_dict() and model.blocks[0].conv.bias is None
    model.eval()
    first, second = model(x).data, model(x).data
    np.testing.assert_array_equal(first, second)  # no dropout, running statistics
    assert int(bn.num_batches_tracked.data) == 1
    model.train()
    assert not np.array_equal(model(x).data, first)


def test_config_errors():
    with pytest.raises(ValueError, match="activation must be one of"):
        CNNConfig(activation="gelu")
    with pytest.raises(ValueError, match="3 conv blocks with kernel 5 and pool 2 leave nothing of a 28x28"):
        CNNConfig(conv_channels=(8, 8, 8))
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        CNNConfig(dropout=1.0)


def test_tiny_cnn_gradcheck_in_float64():
    model = CNN(TINY, seed=0)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    for b in model.buffers():
        if b.dtype.kind == "f":
            b.data = b.data.astype(np.float64)
    x = Tensor(np.random.default_rng(1).random((3, 1, 12, 12)), dtype=np.float64, requires_grad=True)
    y = np.array([0, 3, 9])
    assert gradcheck(lambda x, *params: F.cross_entropy(model(x), y), x, *model.parameters(), fast=True)


def test_tiny_cnn_overfits_a_batch():
    model = CNN(TINY, seed=0)
    x, y = images(16, side=12), np.arange(16) % 10
    opt = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(80):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


# ---- examples/train_mnist.py --------------------------------------------------------------------------------


def test_expanded_data_is_each_image_and_its_four_one_pixel_shifts():
    script = load_example("train_mnist")
    x = np.random.default_rng(2).random((3, 784), dtype=np.float32)
    expanded = script.expanded_batch(x, np.arange(15))
    assert expanded.shape == (15, 784)
    np.testing.assert_array_equal(expanded[:3], x)
    image = x[1].reshape(28, 28)
    down = expanded[3 + 1].reshape(28, 28)
    np.testing.assert_array_equal(down[1:], image[:-1])
    assert not down[0].any()
    left = expanded[12 + 1].reshape(28, 28)
    np.testing.assert_array_equal(left[:, :-1], image[:, 1:])
    assert not left[:, -1].any()


def test_random_shifts_move_each_image_within_its_frame():
    script = load_example("train_mnist")
    x = np.zeros((50, 1, 28, 28), dtype=np.float32)
    x[:, 0, 10:18, 10:18] = 1.0
    moved = script.randomly_shifted(x, 2, np.random.default_rng(3))
    assert moved.shape == x.shape and (moved.sum(axis=(1, 2, 3)) == 64).all()
    offsets = {tuple(np.argwhere(m[0])[0] - 10) for m in moved}
    assert offsets <= {(r, c) for r in range(-2, 3) for c in range(-2, 3)} and len(offsets) > 5


@pytest.fixture
def small_mnist(monkeypatch):
    """600 training and 100 test images of random pixels, the first 500 for training (N_TRAIN patched)."""
    rng = np.random.default_rng(4)
    data = (rng.random((600, 784), dtype=np.float32), rng.integers(0, 10, 600),
            rng.random((100, 784), dtype=np.float32), rng.integers(0, 10, 100))
    monkeypatch.setattr(tl.datasets, "load_mnist", lambda *args, **kwargs: data)
    script = load_example("train_mnist")
    monkeypatch.setattr(script, "N_TRAIN", 500)
    return script


@pytest.mark.parametrize("model,extra", [("cnn", []), ("nielsen-relu", ["--expand"])])
def test_training_script_runs_a_cnn(small_mnist, tmp_path, capsys, model, extra):
    accuracy = small_mnist.main(["--model", model, "--epochs", "1", "--batch-size", "50",
                                 "--checkpoint", str(tmp_path / "cnn.npz"), *extra])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"model: {model}, ") and ("expanded data" in lines[0]) == bool(extra)
    assert lines[-1] == f"test accuracy: {accuracy:.2f}%"
    checkpoint = tl.load(tmp_path / "cnn.npz")
    assert checkpoint["config"]["model"] == model
    if model == "nielsen-relu":  # network3.py's lambda / batches per epoch, the expanded epoch's 2,500 / 50
        assert checkpoint["optimizer"]["param_groups"][0]["weight_decay"] == pytest.approx(0.1 / 50)


def write_idx(path, array: np.ndarray) -> None:
    """An uncompressed IDX file of uint8 `array` (type code 0x08), as MNIST's files are before gzip."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_any_folder_of_mnist_format_files_trains_a_cnn(tmp_path, capsys, monkeypatch):
    """--data-dir takes any folder holding the four files under MNIST's names (here uncompressed)."""
    rng = np.random.default_rng(5)
    for split, n in (("train", 80), ("t10k", 20)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n))
    script = load_example("train_mnist")
    monkeypatch.setattr(script, "N_TRAIN", 60)
    accuracy = script.main(["--model", "nielsen-2conv", "--epochs", "1", "--data-dir", str(tmp_path),
                            "--checkpoint", str(tmp_path / "fake.npz")])
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"test accuracy: {accuracy:.2f}%"


def test_training_script_refuses_to_resume_another_model(small_mnist, tmp_path, capsys):
    small_mnist.main(["--model", "nielsen-1conv", "--epochs", "1", "--batch-size", "100",
                      "--checkpoint", str(tmp_path / "one.npz")])
    with pytest.raises(UsageError, match="written by a nielsen-1conv run; run with `--model nielsen-1conv`"):
        small_mnist.main(["--model", "cnn", "--checkpoint", str(tmp_path / "one.npz"), "--resume"])
    with pytest.raises(SystemExit) as exit_info:
        small_mnist.parse_args(["--model", "cnn", "--classic"])
    assert exit_info.value.code == 2
    assert "--classic is Nielsen's MLP of chapter 1" in capsys.readouterr().err
