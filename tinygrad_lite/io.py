"""Checkpoints without pickle: nested dicts/lists of arrays, numbers and strings in one `.npz`.

    >>> save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 100}, "ckpt.npz")
    >>> ckpt = load("ckpt.npz")

Arrays are stored as `arr_0`, `arr_1`, ... and the nesting (dict keys, lists,
numbers, strings) as JSON in the `__structure__` entry, so the file loads with
`np.load(path, allow_pickle=False)`: loading a checkpoint never runs code.
Tensors are saved as their arrays. The file is written to a temporary name in
the same folder and renamed, so an interrupted save never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .tensor import Tensor

_STRUCTURE = "__structure__"
_FORMAT = "tinygrad_lite-checkpoint-1"


def _encode(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    """A JSON-able description of `obj`; arrays go to `arrays` and are referenced by name."""
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, np.ndarray | np.generic):
        arr = np.asarray(obj)
        if arr.dtype.kind not in "biufcSU":
            raise TypeError(f"save: {where} is an array of dtype {arr.dtype}, which cannot be stored without pickle")
        name = f"arr_{len(arrays)}"
        arrays[name] = arr
        return {"array": name, "scalar": isinstance(obj, np.generic)}
    if obj is None or isinstance(obj, bool | int | float | str):
        return {"value": obj}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, str | int) or isinstance(k, bool):
                raise TypeError(f"save: dict keys must be str or int, got {type(k).__name__} {k!r} at {where}")
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]")])
        return {"dict": items}
    if isinstance(obj, list | tuple):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    raise TypeError(f"save: cannot store {type(obj).__name__} at {where} "
                    f"(only dicts, lists, tuples, arrays, Tensors, numbers, strings and None)")


def _decode(node: dict[str, Any], arrays: Any) -> Any:
    if "array" in node:
        arr = arrays[node["array"]]
        return arr[()] if node["scalar"] else arr
    if "value" in node:
        return node["value"]
    if "dict" in node:
        return {k: _decode(v, arrays) for k, v in node["dict"]}
    if "list" in node:
        return [_decode(v, arrays) for v in node["list"]]
    return tuple(_decode(v, arrays) for v in node["tuple"])


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write `obj` (nested dicts/lists/tuples of arrays, Tensors, numbers, strings) to `path` atomically."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    structure = {"format": _FORMAT, "root": _encode(obj, arrays, "the root")}
    arrays[_STRUCTURE] = np.array(json.dumps(structure))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike) -> Any:
    """Read a checkpoint written by `save`; a corrupt or truncated file is a ValueError naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load: no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}  # read everything now: truncation shows here
        structure = json.loads(str(arrays.pop(_STRUCTURE)))
        if structure.get("format") != _FORMAT:
            raise ValueError(f"unknown format {structure.get('format')!r}")
        return _decode(structure["root"], arrays)
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError, TypeError) as e:
        raise ValueError(f"load: {path} is not a readable tinygrad_lite checkpoint (corrupt or truncated?): "
                         f"{type(e).__name__}: {e}") from e
