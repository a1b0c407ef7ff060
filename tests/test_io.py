"""Checkpoints: round trips without pickle, atomic writes, clear errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import Tensor, nn, optim


def test_round_trip_of_nested_structures(tmp_path):
    rng_state = np.random.default_rng(3).bit_generator.state
    obj = {
        "model": {"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "0.bias": Tensor([1.0, 2.0])},
        "step": 7, "lr": 3e-4, "name": "gpt", "flag": True, "nothing": None,
        "vocab": ["a", "b", "\n"], "betas": (0.9, 0.95), "ints": {0: np.int64(5), 1: np.zeros(0)},
        "rng": rng_state, "nan": float("nan"), "big": 2**100,
    }
    path = tmp_path / "ckpt.npz"
    tl.save(obj, path)
    back = tl.load(path)
    np.testing.assert_array_equal(back["model"]["0.weight"], obj["model"]["0.weight"])
    assert back["model"]["0.weight"].dtype == np.float32
    np.testing.assert_array_equal(back["model"]["0.bias"], [1.0, 2.0])
    assert (back["step"], back["lr"], back["name"], back["flag"], back["nothing"]) == (7, 3e-4, "gpt", True, None)
    assert back["vocab"] == ["a", "b", "\n"] and back["betas"] == (0.9, 0.95)
    assert list(back["ints"]) == [0, 1] and back["ints"][0] == 5 and back["ints"][0].dtype == np.int64
    assert back["rng"] == rng_state and back["big"] == 2**100 and np.isnan(back["nan"])
    with np.load(path, allow_pickle=False) as npz:  # a plain npz: no pickle needed to read it
        assert "__structure__" in npz.files


def test_model_and_optimizer_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4, seed=0), nn.Linear(4, 2, seed=1))
    opt = optim.AdamW([{"params": [model[0].weight], "weight_decay": 0.1},
                       {"params": [p for p in model.parameters() if p is not model[0].weight]}], lr=0.01)
    model(Tensor(np.ones((2, 3), dtype=np.float32))).sum().backward()
    opt.step()
    tl.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "c.npz")
    ckpt = tl.load(tmp_path / "c.npz")
    fresh = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    fresh.load_state_dict(ckpt["model"])
    opt2 = optim.AdamW([{"params": [fresh[0].weight]}, {"params": fresh.parameters()[1:]}], lr=1.0)
    opt2.load_state_dict(ckpt["optimizer"])
    assert opt2.param_groups[0]["weight_decay"] == 0.1 and opt2.param_groups[1]["lr"] == 0.01
    for p, q in zip(opt.state, opt2.state):
        assert opt.state[p]["step"] == opt2.state[q]["step"] == 1
        np.testing.assert_array_equal(opt.state[p]["exp_avg"], opt2.state[q]["exp_avg"])


def test_save_is_atomic_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "ckpt.npz"
    tl.save({"a": np.ones(3)}, path)
    with pytest.raises(TypeError, match="cannot store set"):
        tl.save({"a": {1, 2}}, path)
    assert tl.load(path)["a"].tolist() == [1.0, 1.0, 1.0]  # the failed save left the old file intact
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.npz"]


def test_unsavable_values_are_clear_errors(tmp_path):
    with pytest.raises(TypeError, match=r"dict keys must be str or int, got tuple"):
        tl.save({(1, 2): 3}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="dtype object"):
        tl.save({"a": np.array([None, 1])}, tmp_path / "x.npz")


def test_corrupt_and_truncated_files_name_the_path(tmp_path):
    path = tmp_path / "ckpt.npz"
    tl.save({"w": np.arange(1000, dtype=np.float32)}, path)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.npz is not a readable tinygrad_lite checkpoint"):
        tl.load(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        tl.load(garbage)
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(2))
    with pytest.raises(ValueError, match="plain.npz"):
        tl.load(plain)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        tl.load(tmp_path / "missing.npz")
