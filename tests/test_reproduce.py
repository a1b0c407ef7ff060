"""Every command the README and docs/ print works as written, and the README's figures come from this version.

Each command shown (in a table, a ```bash block or inline) is a figure of scripts/reproduce.py, and each
figure's command runs here with small settings (`reproduce.py --quick`, in a scratch folder). The numbers in
bold in the README's tables are those reproduce.py wrote into docs/results.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, require_data

_spec = importlib.util.spec_from_file_location("reproduce", REPO / "scripts" / "reproduce.py")
reproduce = importlib.util.module_from_spec(_spec)
sys.modules["reproduce"] = reproduce  # dataclasses look their module up
_spec.loader.exec_module(reproduce)

# docs/results.md is left out: reproduce.py writes it, listing each command as it ran (with its output options).
PAGES = [REPO / "README.md", *sorted(p for p in (REPO / "docs").glob("*.md") if p.name != "results.md")]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
COMMAND = re.compile(r"^(?:[A-Z_]+=\S+ )*(?:\.venv/bin/)?(?:python|bash) ")
# Commands that are not figures: the set-up, the tests and what they run themselves (the API page's generator,
# reproduce.py).
NOT_FIGURES = {"bash scripts/setup.sh", "source .venv/bin/activate", "bash .ci/run",
               "OPENBLAS_NUM_THREADS=1 python -m pytest -q -n 2", "python tests/test_api_doc.py",
               # downloads GPT-2 from the Hugging Face hub: no machine here reaches it (tests/test_gpt2.py runs
               # the same script on a folder, and the hub path against a stand-in for snapshot_download)
               "python examples/generate_gpt2.py --model gpt2 --prompt \"Hello, I'm a language model,\" --top-k 40 "
               "--seed 1"}
NO_NETWORK = "http://127.0.0.1:9/nothing-listens-here"


def commands(text: str) -> list[str]:
    """The shell commands a Markdown page shows, `.venv/bin/python` written `python` (the venv active)."""
    found = []
    for language, body in FENCE.findall(text):
        if language in ("bash", "sh"):
            for line in body.splitlines():
                found += [part.strip() for part in line.split("#")[0].split("&&")]
    found += INLINE.findall(FENCE.sub("", text))
    normal = [re.sub(r"\.venv/bin/python\b", "python", " ".join(c.split())) for c in found]
    return [c for c in normal if COMMAND.match(c) or c.startswith("source ")]


def test_command_extraction():
    page = "run `python examples/a.py --x 1` or\n```bash\nbash scripts/setup.sh && .venv/bin/python b.py  # note\n```\n"
    assert sorted(commands(page)) == ["bash scripts/setup.sh", "python b.py", "python examples/a.py --x 1"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_shown_is_a_figure_that_the_tests_run(page: Path):
    figures = {f.command for f in reproduce.FIGURES}
    for command in commands(page.read_text(encoding="utf-8")):
        if command in NOT_FIGURES or command.startswith("python scripts/reproduce.py"):
            continue
        assert command in figures, (f"{page.name} shows `{command}`, which no figure of scripts/reproduce.py "
                                    f"runs: add a Figure for it (with small settings in `quick`)")


def test_the_readme_shows_the_two_commands():
    shown = commands((REPO / "README.md").read_text(encoding="utf-8"))
    assert "python examples/train_gpt.py" in shown and "OPENBLAS_NUM_THREADS=1 python -m pytest -q -n 2" in shown
    assert "bash scripts/setup.sh" in shown


@pytest.mark.parametrize("figure", reproduce.FIGURES, ids=lambda f: f.name)
def test_each_figure_runs_with_small_settings(figure, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TINYGRAD_LITE_DATA"}
    env |= {"TINYGRAD_LITE_MNIST_URL": NO_NETWORK, "TINYGRAD_LITE_TINYSHAKESPEARE_URL": NO_NETWORK,
            "XDG_CACHE_HOME": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    if figure.data is not None:
        env["TINYGRAD_LITE_DATA"] = str(require_data(figure.data).parent)
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "reproduce.py"), "--quick", "--only", figure.name,
                           "--workdir", str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "docs" / "results.json").read_text(encoding="utf-8"))
    entry = results[figure.name]
    assert entry["quick"] and set(entry["numbers"]) == set(figure.grab)
    assert f"## {figure.name}" in (tmp_path / "docs" / "results.md").read_text(encoding="utf-8")


def test_median_of_runs_and_figure_selection():
    assert reproduce.median_text(["1.16", "1.11", "1.23"]) == "1.16 (1.11 to 1.23, 3 runs)"
    assert reproduce.median_text(["95.09"]) == "95.09"
    assert [f.name for f in reproduce.selected(["gpt-sample"], with_needs=True)] == ["gpt", "gpt-sample"]
    assert [f.name for f in reproduce.selected(["gpt-sample"], with_needs=False)] == ["gpt-sample"]
    with pytest.raises(SystemExit, match="no figure named nope"):
        reproduce.selected(["nope"], with_needs=False)


# ---- the results file ---------------------------------------------------------------------------------------------

RESULTS = REPO / "docs" / "results.json"


def test_the_results_file_is_rendered_from_its_data_and_covers_every_figure():
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    assert (REPO / "docs" / "results.md").read_text(encoding="utf-8") == reproduce.render(results)
    assert set(results) == {f.name for f in reproduce.FIGURES}, "rerun `python scripts/reproduce.py --only ...`"
    assert not any(r["quick"] for r in results.values())


def test_the_readmes_figures_are_the_results_files():
    """Every number in bold in a README table appears in docs/results.md or a results page it links to."""
    quoted = "\n".join(p.read_text(encoding="utf-8") for p in [RESULTS.with_suffix(".md"),
                                                                 *(REPO / "docs" / "results").rglob("*.md")])
    tables = "\n".join(line for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()
                       if line.startswith("|"))
    for bold in re.findall(r"\*\*(.+?)\*\*", tables):
        for number in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?:e-?\d+)?(?!\w)", bold):  # not float64's 64
            assert number in quoted, f"README's **{bold}**: {number} is not in docs/results.md (stale?)"
