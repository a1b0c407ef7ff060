"""The example scripts end a user's mistake in one line on stderr (`error: ...`) and exit status 2, with no
traceback; a bug in the code keeps its traceback. Each script runs as a user runs it, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO, require_data

from tinygrad_lite import cli

NO_NETWORK = "http://127.0.0.1:9/nothing-listens-here"  # the discard port: a download fails at once


def run_script(args: list[str], cwd, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "TINYGRAD_LITE_DATA"}
    environment |= {"TINYGRAD_LITE_MNIST_URL": NO_NETWORK, "TINYGRAD_LITE_TINYSHAKESPEARE_URL": NO_NETWORK,
                    "XDG_CACHE_HOME": str(cwd / "cache"), **env}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=120)


def assert_one_line_error(done: subprocess.CompletedProcess, *expected: str) -> str:
    """The run failed with status 2 and exactly one stderr line, `error: ...`, holding `expected`."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def script(name: str) -> str:
    return str(REPO / "examples" / name)


@pytest.mark.parametrize("args, expected", [
    (["sample_gpt.py"], ["error: no checkpoint at out/gpt.npz; train one with python examples/train_gpt.py"]),
    (["sample_gpt.py", "--checkpoint", "out/nope.npz"],
     ["no checkpoint at out/nope.npz; train one with python examples/train_gpt.py --checkpoint out/nope.npz"]),
    (["train_gpt.py", "--resume", "--checkpoint", "out/nope.npz"], ["no checkpoint at out/nope.npz"]),
    (["train_gpt.py", "--text", "nope.txt"], ["--text: no file at nope.txt"]),
    (["train_gpt.py", "--n-head", "3"], ["n_embd (128) must be divisible by n_head (3)"]),
    (["attention_map.py", "--checkpoint", "out/nope.npz"], ["no checkpoint at out/nope.npz"]),
    (["attention_experiments.py", "--variants", "dot/causal,dott/causal"], ["--variants:", "'dott'"]),
    (["attention_experiments.py", "--replot", "--out", "nowhere"], ["--replot: no nowhere/results.json"]),
    (["draw_graph.py", "expr", "-o", "expr.nope"], ["-o:", "nope"]),
    (["gradcheck_experiments.py", "bug", "--out", "file.txt/sub"], ["file.txt"]),
    (["cnn_pictures.py", "--checkpoint", "nope.npz"],
     ["no checkpoint at nope.npz; train one with python examples/train_mnist.py --model cnn"]),
])
def test_a_users_mistake_is_one_line_and_status_2(args, expected, tmp_path):
    (tmp_path / "file.txt").write_text("a file where a folder should be")
    assert_one_line_error(run_script([script(args[0]), *args[1:]], tmp_path), *expected)


def test_a_mistyped_data_dir_is_one_line_and_leaves_nothing_behind(tmp_path):
    line = assert_one_line_error(run_script([script("train_mnist.py"), "--data-dir", "typo/data"], tmp_path),
                                 "mnist: download: could not fetch", "TINYGRAD_LITE_DATA")
    assert "typo" in line and not (tmp_path / "typo").exists()


def test_mnist_resume_without_a_checkpoint_is_one_line(tmp_path):
    data = require_data("mnist").parent
    assert_one_line_error(run_script([script("train_mnist.py"), "--resume", "--checkpoint", "nope.npz"], tmp_path,
                                     TINYGRAD_LITE_DATA=str(data)),
                          "no checkpoint at nope.npz; train one with python examples/train_mnist.py")


def test_the_default_corpus_needs_no_data_folder_and_no_network(tmp_path):
    """The main job's corpus ships with the package: a fresh machine with no network trains at once."""
    done = run_script([script("train_gpt.py"), "--max-iters", "1", "--eval-interval", "1", "--eval-iters", "1",
                       "--batch-size", "2", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "8",
                       "--sample-tokens", "5", "--no-progress"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("val loss: ")
    assert not (tmp_path / "cache").exists()  # nothing downloaded


def test_a_bug_keeps_its_traceback(tmp_path):
    code = "from tinygrad_lite import cli\ndef main():\n    return {}['missing']\ncli.run(main)\n"
    done = run_script(["-c", code], tmp_path)
    assert done.returncode == 1 and "Traceback" in done.stderr and "KeyError: 'missing'" in done.stderr


def test_run_user_input_and_load_checkpoint(tmp_path, capsys):
    def mistake():
        with cli.user_input("--width"):
            raise ValueError("must be positive, got -1")

    with pytest.raises(SystemExit) as stop:
        cli.run(mistake)
    assert stop.value.code == 2 and capsys.readouterr().err == "error: --width: must be positive, got -1\n"
    with pytest.raises(ValueError, match="a bug"):  # outside user_input a ValueError is the code's
        cli.run(lambda: (_ for _ in ()).throw(ValueError("a bug")))
    (tmp_path / "bad.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(cli.UsageError, match=r"bad.npz is not a readable .*; train a new one with make it"):
        cli.load_checkpoint(tmp_path / "bad.npz", made_by="make it")
