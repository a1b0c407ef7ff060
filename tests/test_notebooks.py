"""The learners' notebooks (notebooks/*.ipynb): each runs top to bottom in a fresh kernel without an error,
and what is stored in it, the outputs that GitHub shows, is complete, free of errors and small.

The execution uses the short run that every notebook offers under TINYGRAD_LITE_NOTEBOOK_QUICK=1 (fewer
training steps, every cell still runs); the stored outputs come from the full run. Every notebook in the
folder is covered, whatever its name. Also here: what Jupyter shows for `viz.trace` and `viz.draw_graph`.
"""

from __future__ import annotations

import base64
import html.parser
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, data_dir, require_data

from tinygrad_lite import Tensor, nn, viz
from tinygrad_lite.viz import Trace, TraceRow

NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
LESSONS = ["01_neuron_and_graph", "02_backprop_nielsen", "03_attention_shapes", "04_gradient_checks",
           "05_train_a_small_gpt", "06_convolutions"]
MAX_NOTEBOOK_BYTES = 1_000_000
MAX_PICTURE_BYTES = 150_000  # one stored PNG, decoded
CELL_TIMEOUT = 240  # seconds per cell in the quick run (the slowest takes about 20 s here)
# The data a notebook reads, by the loader it calls: it must be found, never downloaded.
DATASETS = {"load_mnist": "mnist", "load_tinyshakespeare": "tinyshakespeare/input.txt"}
NO_DOWNLOADS = "file:///nonexistent/the-tests-never-download"


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def text(value: str | list[str]) -> str:
    """A notebook's multi-line string: stored as one string or as a list of lines."""
    return value if isinstance(value, str) else "".join(value)


def code_cells(notebook: dict) -> list[dict]:
    return [c for c in notebook["cells"] if c["cell_type"] == "code" and text(c["source"]).strip()]


def outputs(notebook: dict) -> list[dict]:
    return [o for c in code_cells(notebook) for o in c.get("outputs", [])]


def printed(output: dict) -> str:
    """The text an output shows: a stream's text, or a result's text/plain."""
    return text(output.get("text", "")) + text(output.get("data", {}).get("text/plain", ""))


by_name = pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)


def test_the_folder_holds_the_lessons():
    names = [p.stem for p in NOTEBOOKS]
    assert set(LESSONS) <= set(names), f"missing notebooks: {sorted(set(LESSONS) - set(names))}"
    for name in names:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+", name), f"{name}.ipynb: name it NN_words.ipynb, to keep them in order"


@by_name
def test_each_notebook_is_under_a_megabyte(path: Path):
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{path.name}: {path.stat().st_size:,} bytes"


@by_name
def test_stored_outputs_come_from_one_run_top_to_bottom(path: Path):
    notebook = read(path)
    counts = [c.get("execution_count") for c in code_cells(notebook)]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: execution counts {counts}; store it after Restart Kernel and Run All Cells")
    assert outputs(notebook), f"{path.name} was committed without its outputs"
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


@by_name
def test_no_stored_output_holds_an_error(path: Path):
    for n, output in enumerate(outputs(read(path))):
        assert output["output_type"] != "error", f"{path.name}: output {n} is an error: {output.get('ename')}"
        assert "Traceback (most recent call last)" not in printed(output), f"{path.name}: output {n} has a traceback"
        if output.get("name") == "stderr":
            assert "Warning" not in printed(output), f"{path.name}: output {n} shows a warning: {printed(output)}"


@by_name
def test_pictures_are_png_of_modest_size(path: Path):
    for n, output in enumerate(outputs(read(path))):
        data = output.get("data", {})
        assert not {"image/jpeg", "image/gif"} & set(data), f"{path.name}: output {n}: store pictures as PNG"
        if "image/png" in data:
            size = len(base64.b64decode(text(data["image/png"])))
            assert size < MAX_PICTURE_BYTES, f"{path.name}: output {n} is a {size:,}-byte PNG; draw it smaller"


@by_name
def test_runs_top_to_bottom_in_a_fresh_kernel(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nbformat = pytest.importorskip("nbformat", reason="the dev extra installs nbformat, nbclient and ipykernel")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    sources = "\n".join(text(c.source) for c in notebook.cells if c.cell_type == "code")
    needed = [relative for loader, relative in DATASETS.items() if loader in sources]
    for relative in needed:
        require_data(relative)  # skips without the real data, fails in CI
    if needed:
        monkeypatch.setenv("TINYGRAD_LITE_DATA", str(data_dir()))
    monkeypatch.setenv("TINYGRAD_LITE_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("TINYGRAD_LITE_MNIST_URL", NO_DOWNLOADS)
    monkeypatch.setenv("TINYGRAD_LITE_TINYSHAKESPEARE_URL", NO_DOWNLOADS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, at the first error
    assert not [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not list(tmp_path.iterdir()), f"{path.name} writes files: {[p.name for p in tmp_path.iterdir()]}"


# ---- what Jupyter shows -----------------------------------------------------------------------------------------


class _Cells(html.parser.HTMLParser):
    """The text of every <td> and <th>, row by row, and the caption."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.caption = ""
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
        if tag in ("td", "th", "caption"):
            self._in = tag

    def handle_endtag(self, tag):
        if tag in ("td", "th", "caption"):
            self._in = None

    def handle_data(self, data):
        if self._in == "caption":
            self.caption += data
        elif self._in:
            self.rows[-1][-1] += data


def jupyter_bundle(obj) -> dict:
    """What IPython hands Jupyter for `obj` as a cell's last expression: {mime type: data}."""
    formatter = pytest.importorskip("IPython.core.formatters", reason="the dev extra installs ipykernel")
    return formatter.DisplayFormatter().format(obj)[0]


def test_trace_shows_as_an_html_table_in_jupyter_and_as_text_elsewhere():
    model = nn.Sequential(nn.Linear(3, 4, seed=0), nn.ReLU())
    table = viz.trace(model, Tensor(np.ones((2, 3), dtype=np.float32)), dims={"B": 2})
    bundle = jupyter_bundle(table)
    assert set(bundle) == {"text/plain", "text/html"}
    assert bundle["text/plain"] == str(table)
    parsed = _Cells()
    parsed.feed(bundle["text/html"])
    assert parsed.caption == "B=2"
    assert parsed.rows[0] == list(Trace.HEADER)
    assert parsed.rows[1:] == [list(cells) for cells in table._cells()]
    assert parsed.rows[2] == ["0", "Linear", "(B, 3)", "(B, 4)", "16"]


def test_trace_html_escapes_what_it_shows():
    table = Trace([TraceRow("a<b", "x = op[&]", [(2,)], [(2,)], None)])
    shown = table._repr_html_()
    assert "a&lt;b" in shown and "op[&amp;]" in shown and "<caption>" not in shown
    parsed = _Cells()
    parsed.feed(shown)
    assert parsed.rows[1] == ["a<b", "x = op[&]", "(2,)", "(2,)", ""]


def test_draw_graph_shows_inline_as_svg_in_jupyter():
    if shutil.which("dot") is None:
        pytest.skip("graphviz's `dot` binary is not installed (apt-get install graphviz); CI installs it")
    w = Tensor([1.0, 2.0], requires_grad=True, name="w")
    bundle = jupyter_bundle(viz.draw_graph((w * w).sum(), show_data=True))
    assert "<svg" in bundle["image/svg+xml"] and ">w<" in bundle["image/svg+xml"]
