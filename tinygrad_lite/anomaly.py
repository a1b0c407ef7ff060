"""Anomaly mode: stop at the first op whose forward output or backward gradient holds a NaN or an Inf.

    >>> with tinygrad_lite.detect_anomaly():
    ...     loss = model(x, y)
    ...     loss.backward()
    AnomalyError: forward of log produced Inf (1 of 3 values) ...

The error names the op, its input and output shapes, the module it ran in
(`layers.1 (Linear) in MLP`), the user's source lines that created it and
whether the bad value appeared in forward or in backward. Set the environment
variable `TINYGRAD_LITE_DETECT_ANOMALY=1` to check a whole script (read once, at
import). Off by default: the engine then runs no check and records nothing.

An Inf that an op was asked for (`masked_fill(mask, -inf)` before a softmax) or
passes on from a constant or an earlier op is not an anomaly; an Inf in a
parameter (an optimizer step that overflowed) and a NaN always are.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import weakref
from dataclasses import dataclass

import numpy as np

from . import tensor as _tensor
from .nn.module import Module, _ModuleStack
from .tensor import Function, Indexed, Tensor

ENV_VAR = "TINYGRAD_LITE_DETECT_ANOMALY"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB_DIR = os.path.dirname(os.path.abspath(contextlib.__file__)) + os.sep  # e.g. no_grad's decorator frames
_USER_FRAMES = 3  # source lines shown: where the op was called, and its two callers


class AnomalyError(FloatingPointError):
    """A NaN or Inf appeared. `op` (e.g. `log`), `phase` ("forward" or "backward"), `module_path`
    (e.g. `layers.1 (Linear) in MLP`, None outside modules) and `source` (the user's lines) say where."""

    def __init__(self, message: str, op: str, phase: str, module_path: str | None, source: list[str]):
        super().__init__(message)
        self.op, self.phase, self.module_path, self.source = op, phase, module_path, source


@dataclass
class _Origin:
    """Where an op was created: the modules whose forward was running, and the user's frames."""

    modules: tuple[Module, ...]
    frames: list[tuple[str, int, str]]  # (filename, line number, function), innermost first

    def module_text(self) -> str | None:
        """`layers.1 (Linear) in MLP`, `MLP (the model itself)`, or None outside any module."""
        if not self.modules:
            return None
        root, inner = self.modules[0], self.modules[-1]
        if inner is root:
            return f"{type(root).__name__} (the model itself)"
        paths = {id(m): p for p, m in root.named_modules()}  # as viz.record names module calls
        path = paths.get(id(inner), type(inner).__name__)
        return f"{path} ({type(inner).__name__}) in {type(root).__name__}"

    def source_lines(self) -> list[str]:
        return [f'File "{f}", line {n}, in {fn}: {linecache.getline(f, n).strip()}' for f, n, fn in self.frames]


def _capture() -> _Origin:
    frames = []
    frame = sys._getframe(2)
    while frame is not None and len(frames) < _USER_FRAMES:
        filename = frame.f_code.co_filename
        if not filename.startswith((_PACKAGE_DIR, _STDLIB_DIR)):
            frames.append((filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    return _Origin(tuple(_ModuleStack.active), frames)


# Origins of the ops recorded while anomaly mode is on, for errors found in backward.
_origins: weakref.WeakKeyDictionary[Function, _Origin] = weakref.WeakKeyDictionary()


def _bad_values(a: np.ndarray) -> tuple[int, int]:
    """(count of NaN, count of ±Inf) in a float array; (0, 0) for other dtypes."""
    if a.dtype.kind not in "fc" or np.isfinite(a).all():
        return 0, 0
    nan = int(np.isnan(a).sum())
    return nan, a.size - nan - int(np.isfinite(a).sum())


def _holds_inf(value: object) -> bool:
    return isinstance(value, float | np.floating) and bool(np.isinf(value))


def _describe(nan: int, inf: int, size: int) -> str:
    parts = [f"{n} {what}" for n, what in ((nan, "NaN"), (inf, "Inf")) if n]
    return f"{' and '.join(parts)} (of {size} values)"


def _input_notes(fn: Function, origin: _Origin) -> list[str]:
    """Inputs that already held NaN/Inf, named as parameters when the model has them."""
    names = {id(p): n for n, p in origin.modules[0].named_parameters()} if origin.modules else {}
    notes = []
    for i, t in enumerate(getattr(fn, "parents", ())):
        nan, inf = _bad_values(t.data)
        if nan or inf:
            what = f"parameter {names[id(t)]!r}" if id(t) in names else ("a leaf tensor" if t._ctx is None
                                                                          else f"the output of {t._ctx.name}")
            notes.append(f"input {i} ({what}, shape {t.shape}) already held {_describe(nan, inf, t.numel())}"
                         + (": it was changed outside the graph (by an optimizer step or the data?)"
                            if t._ctx is None else ""))
    return notes


def _raise(fn: Function, phase: str, what: str, input_shapes: list, output_shape: tuple, origin: _Origin | None,
           notes: list[str]) -> None:
    module = origin.module_text() if origin else None
    source = origin.source_lines() if origin else []
    lines = [f"{phase} of {fn.name} produced {what}",
             f"  input shapes {[tuple(s) for s in input_shapes]}, output shape {tuple(output_shape)}",
             f"  module: {module}" if module else "  module: (none: called outside any Module)"]
    lines += [f"  note: {n}" for n in notes]
    if origin is None:
        lines.append("  created at: unknown (the forward ran outside detect_anomaly, so its place was not recorded)")
    else:
        lines += ["  created at (innermost first):"] + [f"    {s}" for s in source]
    raise AnomalyError("\n".join(lines), fn.name, phase, module, source)


def _check_forward(fn: Function, out: Tensor) -> None:
    nan, inf = _bad_values(out.data)
    inputs = getattr(fn, "parents", ())  # empty when not recorded (no_grad, or no input needs grad)
    if nan or inf:
        params = getattr(fn, "params", {})
        deliberate = any(_holds_inf(v) for v in params.values()) or any(
            _bad_values(t.data)[1] for t in inputs if t._ctx is not None or not t.requires_grad)
        if nan or not deliberate:
            origin = _capture()
            _raise(fn, "forward", _describe(nan, inf, out.numel()), [t.shape for t in inputs], out.shape, origin,
                   _input_notes(fn, origin))
    if out._ctx is not None:
        _origins[fn] = _capture()


def _check_backward(fn: Function, grad_output: Tensor, grad_inputs: tuple) -> None:
    for i, g in enumerate(grad_inputs):
        if g is None:
            continue
        values = g.values.data if isinstance(g, Indexed) else g.data if isinstance(g, Tensor) else g
        nan, inf = _bad_values(values)
        if nan or inf:
            origin = _origins.get(fn)
            notes = [f"the gradient for input {i} (shape {fn.parents[i].shape}) is the bad one"]
            if any(_bad_values(grad_output.data)):
                notes.append("the incoming gradient was already non-finite")
            _raise(fn, "backward", _describe(nan, inf, values.size), [t.shape for t in fn.parents],
                   grad_output.shape, origin, notes)


_depth = 0  # how many detect_anomaly blocks (and the environment variable) hold the mode on


def _enable() -> None:
    global _depth
    if _depth == 0:
        _tensor._op_hooks.append(_check_forward)
        _tensor._backward_hooks.append(_check_backward)
        _ModuleStack.recording += 1  # so that Module.__call__ keeps the stack of running modules
    _depth += 1


def _disable() -> None:
    global _depth
    _depth -= 1
    if _depth == 0:
        _tensor._op_hooks.remove(_check_forward)
        _tensor._backward_hooks.remove(_check_backward)
        _ModuleStack.recording -= 1
        _origins.clear()


def is_anomaly_enabled() -> bool:
    return _depth > 0


class detect_anomaly(contextlib.ContextDecorator):
    """Context manager and decorator: raise `AnomalyError` at the first NaN/Inf in any forward or backward.

    Slower (every op's output and gradient is scanned, and its creation site kept): for debugging.
    """

    def __enter__(self) -> detect_anomaly:
        _enable()
        return self

    def __exit__(self, *exc: object) -> None:
        _disable()


if os.environ.get(ENV_VAR, "").strip().lower() not in ("", "0", "false", "no", "off"):
    _enable()

__all__ = ["detect_anomaly", "AnomalyError", "is_anomaly_enabled", "ENV_VAR"]
