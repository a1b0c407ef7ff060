"""Where a training step's time goes, op by op: `profile_ops()` times every Function's forward and backward.

    >>> with profile_ops() as table:
    ...     for _ in range(10):
    ...         train_step()
    >>> print(table.format(total_seconds=elapsed, steps=10))

Times are exclusive: a backward that runs other ops (a primitive op's backward is written in Tensor
ops) is charged only for its own work, and those ops for theirs. The optimizer's step gets a row
of its own; what no row holds (the graph walk, Python between ops) is the rest.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .optim import Optimizer
from .tensor import Function


@dataclass
class OpTimes:
    """Seconds and calls per (op, phase), phase "forward", "backward" or "step" (an optimizer)."""

    seconds: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def format(self, total_seconds: float, steps: int = 1) -> str:
        """A table sorted by time: per step, forward and backward ms, calls, share of `total_seconds`."""
        ops = sorted({op for op, _ in self.seconds}, key=lambda op: -sum(
            self.seconds.get((op, phase), 0.0) for phase in ("forward", "backward", "step")))
        rows = [("op", "calls", "forward ms", "backward ms", "share")]
        accounted = 0.0
        for op in ops:
            forward = self.seconds.get((op, "forward"), 0.0) + self.seconds.get((op, "step"), 0.0)
            backward = self.seconds.get((op, "backward"), 0.0)
            accounted += forward + backward
            calls = max(self.calls.get((op, phase), 0) for phase in ("forward", "backward", "step"))
            rows.append((op, f"{calls / steps:g}", f"{1000 * forward / steps:.2f}", f"{1000 * backward / steps:.2f}",
                         f"{(forward + backward) / total_seconds:.1%}"))
        rest = total_seconds - accounted
        rows.append(("(the rest: graph walk, Python)", "", "", "", f"{rest / total_seconds:.1%}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)


def _subclasses(cls: type) -> list[type]:
    found, stack = [], [cls]
    while stack:
        for sub in stack.pop().__subclasses__():
            found.append(sub)
            stack.append(sub)
    return found


@contextlib.contextmanager
def profile_ops() -> Iterator[OpTimes]:
    """Time every Function's forward and backward, and every optimizer's step, inside the block."""
    times = OpTimes()
    children: list[float] = []  # time spent in timed calls nested in the current one

    def timed(fn: Callable[..., Any], op: str, phase: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            children.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                inner = children.pop()
                times.seconds[(op, phase)] += spent - inner
                times.calls[(op, phase)] += 1
                if children:
                    children[-1] += spent

        return wrapper

    patched = []
    for cls in _subclasses(Function):
        label = cls.__name__.removesuffix("Function").lower()
        for phase in ("forward", "backward"):
            if phase in vars(cls):
                patched.append((cls, phase, vars(cls)[phase]))
                setattr(cls, phase, timed(vars(cls)[phase], label, phase))
    stepping: list[bool] = []  # an optimizer's step is being timed: its super().step() belongs to it

    def timed_step(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(optimizer: Optimizer, *args: Any, **kwargs: Any) -> Any:
            if stepping:
                return fn(optimizer, *args, **kwargs)
            stepping.append(True)
            try:
                return timed(fn, f"{type(optimizer).__name__} (optimizer)", "step")(optimizer, *args, **kwargs)
            finally:
                stepping.pop()

        return wrapper

    for cls in [Optimizer, *_subclasses(Optimizer)]:
        if "step" in vars(cls):
            patched.append((cls, "step", vars(cls)["step"]))
            cls.step = timed_step(vars(cls)["step"])
    try:
        yield times
    finally:
        for cls, name, original in patched:
            setattr(cls, name, original)
