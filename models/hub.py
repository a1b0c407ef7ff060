"""Folders in Hugging Face's format: a local directory, or a model name downloaded once with huggingface_hub.

    >>> folder = pretrained_dir("out/gpt2-export", "GPT.from_pretrained")     # a folder written by save_pretrained
    >>> folder = pretrained_dir("gpt2", "GPT.from_pretrained")                # needs `pip install tinygrad_lite[hf]`

Downloads go to the data cache (`tinygrad_lite.datasets.cache_dir()/huggingface/<name>`) as plain files.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Any

from tinygrad_lite.datasets import cache_dir

# what GPT.from_pretrained and BPETokenizer.from_pretrained read; one download serves both
FILES = ("config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")  # "gpt2", "openai-community/gpt2"


def pretrained_dir(path_or_name: str | os.PathLike, op: str) -> Path:
    """The folder of `path_or_name`: an existing directory as it is, else a model name on the Hub, downloaded."""
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        return path
    name = str(path_or_name)
    if path.exists():
        raise NotADirectoryError(f"{op}: {name} is a file; give the folder that holds config.json and "
                                 f"model.safetensors (as written by save_pretrained)")
    if not _REPO_ID.match(name) or name.endswith((".json", ".safetensors")):
        raise FileNotFoundError(f"{op}: no such folder: {name}")
    return _download(name, op)


def _download(name: str, op: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ImportError(f"{op}: {name!r} is not a local folder, and downloading a model by name needs "
                          f"huggingface_hub: pip install 'tinygrad_lite[hf]'") from None
    target = cache_dir() / "huggingface" / name
    try:
        snapshot_download(repo_id=name, allow_patterns=list(FILES), local_dir=target)
    except Exception as e:  # the hub's errors (no such repository, no network) say what went wrong
        raise FileNotFoundError(f"{op}: {name!r} is neither a local folder nor a model that could be downloaded "
                                f"from the Hugging Face Hub ({type(e).__name__}: {e})") from e
    return target


def pretrained_file(folder: Path, name: str, op: str) -> Path:
    """folder/name, or a FileNotFoundError that lists what the folder holds."""
    path = folder / name
    if not path.is_file():
        found = sorted(p.name for p in folder.iterdir())
        hint = (" (only .safetensors weights are read: they load without pickle)"
                if name == "model.safetensors" and any(f.endswith(".bin") for f in found) else "")
        raise FileNotFoundError(f"{op}: {folder} has no {name}{hint}; it holds {found}")
    return path


def require(module: str, op: str) -> Any:
    """Import an optional package of the `hf` extra, or an ImportError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{op} needs the {module.split('.')[0]} package: pip install 'tinygrad_lite[hf]'") from None
