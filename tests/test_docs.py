"""The documentation cannot go stale: every snippet of README.md and docs/*.md runs, prints what the page
says it prints, quotes the library's code as it is, and links only to files that exist.

Fenced blocks, by their info string:
- ```python                       runs, in order, in one namespace per page (in a scratch working directory);
- ```text                         right after a python block: the exact standard output of that block;
- ```python source=PATH           a quotation of PATH (relative to the repository): not run, but its lines
                                  must appear in PATH in order, with one common indentation; a line `...`
                                  stands for any number of skipped lines;
- anything else (```bash, ```)    shown only.
Pages that load MNIST get TINYGRAD_LITE_DATA (see conftest.require_data). The pictures in docs/img/ are
drawn by the pages' own snippets: `python tests/test_docs.py` runs them in docs/img/ to redraw them.
"""

from __future__ import annotations

import contextlib
import io
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, require_data

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
MAX_IMAGE_BYTES = 200_000  # a plot, not a screenshot: the repository stays quick to clone


@dataclass
class Block:
    info: str  # the fence's info string: "python", "text", "python source=tinygrad_lite/tensor.py", ...
    body: str
    start: int
    end: int

    @property
    def language(self) -> str:
        return self.info.split()[0] if self.info.split() else ""

    @property
    def source(self) -> str | None:
        """The quoted file of a ```python source=PATH block."""
        found = re.search(r"\bsource=(\S+)", self.info)
        return found.group(1) if found else None


def blocks(page: Path) -> list[Block]:
    return [Block(m.group(1).strip(), m.group(2), m.start(), m.end()) for m in FENCE.finditer(page.read_text())]


def snippets(page: Path) -> list[tuple[str, str | None]]:
    """(code, expected output or None) for each runnable python block of `page`."""
    text = page.read_text()
    found = blocks(page)
    out = []
    for i, b in enumerate(found):
        if b.info != "python":
            continue
        after = found[i + 1] if i + 1 < len(found) else None
        touching = after is not None and after.info == "text" and text[b.end:after.start].strip() == ""
        out.append((b.body, after.body if touching else None))
    return out


def quotes(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.source is not None]


def find_quote(quote: str, lines: list[str]) -> bool:
    """Whether the lines of `quote` occur in `lines` in order, shifted by one indentation (`...` skips lines)."""
    chunks: list[list[str]] = [[]]
    for line in textwrap.dedent(quote).rstrip("\n").split("\n"):
        if line.strip() == "...":
            chunks.append([])
        else:
            chunks[-1].append(line.rstrip())
    chunks = [c for c in chunks if c]
    first = chunks[0][0]
    for i, line in enumerate(lines):
        indent = line[: len(line) - len(first)] if line.endswith(first) else None
        if indent is None or indent.strip():
            continue
        if _match_chunks(chunks, lines, i, indent):
            return True
    return False


def _match_chunks(chunks: list[list[str]], lines: list[str], start: int, indent: str) -> bool:
    def matches_at(chunk: list[str], at: int) -> bool:
        return at + len(chunk) <= len(lines) and all(
            lines[at + j].rstrip() == (indent + q if q else "") for j, q in enumerate(chunk))

    if not matches_at(chunks[0], start):
        return False
    at = start + len(chunks[0])
    for chunk in chunks[1:]:
        at = next((k for k in range(at, len(lines)) if matches_at(chunk, k)), None)
        if at is None:
            return False
        at += len(chunk)
    return True


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
    for written in tmp_path.iterdir():  # a picture a page draws is the one it shows
        assert f"img/{written.name}" in page.read_text(), f"{page.name} writes {written.name} but does not show it"


@pytest.mark.parametrize("page", [p for p in PAGES if quotes(p)], ids=lambda p: p.name)
def test_quoted_code_is_current(page: Path) -> None:
    for block in quotes(page):
        path = REPO / block.source
        assert path.is_file(), f"{page.name} quotes {block.source}, which does not exist"
        lines = path.read_text().split("\n")
        assert find_quote(block.body, lines), (f"{page.name} quotes lines that are no longer in {block.source}:\n"
                                               f"{block.body}")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_point_to_files(page: Path) -> None:
    """Relative links and images lead to files of the repository, and links into docs/ to headings that exist
    (README's anchors are left alone: its sections come and go); pictures stay small."""
    text = FENCE.sub("", page.read_text())
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        path = (page.parent / file_part).resolve() if file_part else page
        assert path.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and path.parent == REPO / "docs" and path.suffix == ".md":
            assert anchor in anchors(path), f"{page.name} links to {target}, but {path.name} has no such heading"
        if path.suffix in (".svg", ".png", ".jpg", ".gif"):
            assert path.stat().st_size <= MAX_IMAGE_BYTES, f"{page.name}: picture {target} is over 200 kB"


def anchors(page: Path) -> set[str]:
    """GitHub's ids for the headings of a page: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", FENCE.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_quote_matching() -> None:
    code = ["class A:", "    def f(self):", "        x = 1", "        y = 2", "        return x + y", ""]
    assert find_quote("def f(self):\n    x = 1\n", code)
    assert find_quote("def f(self):\n    ...\n    return x + y\n", code)
    assert not find_quote("def f(self):\n    y = 2\n", code)  # not consecutive
    assert not find_quote("    x = 1\ndef f(self):\n", code)  # out of order


def redraw_pictures(images: Path) -> None:
    """Run every page's snippets in `images`, so that the pictures they write replace the shown ones."""
    import os

    from conftest import data_dir

    if data_dir() is not None:
        os.environ.setdefault("TINYGRAD_LITE_DATA", str(data_dir()))
    images.mkdir(parents=True, exist_ok=True)
    before = {p.name: p.stat().st_mtime for p in images.iterdir()}
    os.chdir(images)
    for page in PAGES:
        namespace: dict = {"__name__": f"docs_{page.stem}"}
        with contextlib.redirect_stdout(io.StringIO()):
            for code, _ in snippets(page):
                exec(compile(code, page.name, "exec"), namespace)
    for p in sorted(images.iterdir()):
        if before.get(p.name) != p.stat().st_mtime:
            print(f"wrote {p} ({p.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Redraw the pictures the pages' snippets write.")
    parser.add_argument("--into", type=Path, default=REPO / "docs" / "img", help="folder (default docs/img)")
    redraw_pictures(parser.parse_args().into.resolve())
