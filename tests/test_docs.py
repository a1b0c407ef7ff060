"""Every Python snippet in README.md and docs/*.md runs, and prints what the page says it prints.

A ```python block runs in one namespace per page, in order. When it is followed directly by a
```text block, that block is the exact expected standard output.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from conftest import REPO, require_data

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.S)


def snippets(page: Path) -> list[tuple[str, str | None]]:
    """(code, expected output or None) for each python block of `page`."""
    blocks = [(m.group(1), m.group(2), m.start(), m.end()) for m in BLOCK.finditer(page.read_text())]
    text = page.read_text()
    out = []
    for i, (kind, body, _, end) in enumerate(blocks):
        if kind != "python":
            continue
        expected = None
        if i + 1 < len(blocks) and blocks[i + 1][0] == "text" and text[end:blocks[i + 1][2]].strip() == "":
            expected = blocks[i + 1][1]
        out.append((body, expected))
    return out


@pytest.mark.parametrize("page", [p for p in PAGES if snippets(p)], ids=lambda p: p.name)
def test_page_snippets_run(page: Path, tmp_path, monkeypatch) -> None:
    if "TINYGRAD_LITE_DATA" in page.read_text() or "load_mnist" in page.read_text():
        monkeypatch.setenv("TINYGRAD_LITE_DATA", str(require_data("mnist").parent))
    monkeypatch.chdir(tmp_path)  # pictures a page writes land in a scratch folder
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for n, (code, expected) in enumerate(snippets(page)):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(code, f"{page.name}[block {n}]", "exec"), namespace)
        if expected is not None:
            assert buffer.getvalue().strip() == expected.strip(), f"{page.name} block {n} printed something else"
