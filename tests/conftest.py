"""Shared fixtures: where the real data lives, and hypothesis settings."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=60)
settings.load_profile("default")

REPO = Path(__file__).resolve().parent.parent


def load_example(name: str) -> ModuleType:
    """examples/<name>.py as a module, executed afresh (registered in sys.modules, where dataclasses look)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The real data's folder as the session was started: tests that isolate the library from the real data unset
# TINYGRAD_LITE_DATA, but may still copy real files from it (into a local server, say).
DATA_ENV_AT_START = os.environ.get("TINYGRAD_LITE_DATA")


def data_dir() -> Path | None:
    """TINYGRAD_LITE_DATA (as the session started), else ../shared/data beside the checkout, else None."""
    candidates = [Path(DATA_ENV_AT_START)] if DATA_ENV_AT_START else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def require_data(relative: str) -> Path:
    """The path of a real data file/folder, or skip (fail in CI, where TINYGRAD_LITE_REQUIRE_DATA=1)."""
    root = data_dir()
    path = root / relative if root else None
    if path is None or not path.exists():
        if DATA_ENV_AT_START:
            reason = f"real data {relative!r} not found: TINYGRAD_LITE_DATA={DATA_ENV_AT_START} does not hold it"
        else:
            reason = (f"real data {relative!r} not found: set TINYGRAD_LITE_DATA to the folder holding "
                      f"mnist/ and tinyshakespeare/")
        if os.environ.get("TINYGRAD_LITE_REQUIRE_DATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
def two_threads():
    """Split work over two threads whatever the machine or the environment says (CI sets one), then restore."""
    from tinygrad_lite import perf

    before, blas_before = perf.get_num_threads(), perf.blas_num_threads()
    perf.set_num_threads(2)
    yield
    perf.set_num_threads(before)
    if blas_before is not None:  # set_num_threads set OpenBLAS's count too
        perf._openblas()[1](blas_before)
