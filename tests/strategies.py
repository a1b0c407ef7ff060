"""Hypothesis strategies for the op tests (in the style of minitorch's), and a gradcheck helper.

Shapes are 0-d to 4-d with sizes 1-5 (size-1 dims included), capped in total
size so that a full finite-difference Jacobian stays cheap. Values are float64
and kept away from the places where a finite difference is meaningless: kinks
(relu and abs at 0, ties of max/maximum) and the edges of domains (log, sqrt
and division near 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_lite import Tensor, gradcheck, gradgradcheck

MAX_SIDE = 5
MAX_SIZE = 48  # elements per operand: the full Jacobian costs ~2 forwards per input element

# Central differences use eps=1e-6: a kink or a tie closer than this corrupts the numeric
# gradient, so "away from" means a margin thousands of times larger.
KINK_MARGIN = 0.05


@st.composite
def shapes(draw: st.DrawFn, min_dims: int = 0, max_dims: int = 4, max_size: int = MAX_SIZE) -> tuple[int, ...]:
    """A shape of min_dims..max_dims axes, each of size 1..5, at most `max_size` elements."""
    ndim = draw(st.integers(min_dims, max_dims))
    dims: list[int] = []
    for _ in range(ndim):
        budget = max_size // max(math.prod(dims), 1)
        dims.append(draw(st.integers(1, max(1, min(MAX_SIDE, budget)))))
    return tuple(dims)


@st.composite
def broadcastable_shapes(draw: st.DrawFn, min_dims: int = 0, max_dims: int = 4) -> tuple[tuple[int, ...], ...]:
    """Two shapes that broadcast together: each drops some leading axes of a common
    shape and/or turns some of its axes into 1 (so both kinds of broadcasting occur)."""
    full = draw(shapes(min_dims=min_dims, max_dims=max_dims))
    pair = []
    for _ in range(2):
        lead = draw(st.integers(0, len(full)))
        ones = draw(st.lists(st.booleans(), min_size=len(full), max_size=len(full)))
        pair.append(tuple(1 if one else n for n, one in zip(full[lead:], ones[lead:])))
    return tuple(pair)


def _magnitudes(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)


def values(kind: str = "any") -> st.SearchStrategy[float]:
    """Element strategy. kinds:
    any       [-3, 3]
    nonzero   [-3, 3] with |x| >= KINK_MARGIN (relu, abs, division by x, x ** non-integer)
    positive  [0.1, 3] (log, sqrt, bases of pow)
    """
    if kind == "any":
        return _magnitudes(-3.0, 3.0)
    if kind == "nonzero":
        mag = _magnitudes(KINK_MARGIN, 3.0)
        return st.one_of(mag, mag.map(lambda v: -v))
    if kind == "positive":
        return _magnitudes(0.1, 3.0)
    raise ValueError(f"values: unknown kind {kind!r}")


LAYOUTS = ("contiguous", "transposed", "strided", "reversed", "broadcast")


@st.composite
def arrays(draw: st.DrawFn, shape: tuple[int, ...], kind: str = "any") -> np.ndarray:
    """float64 arrays of `shape` with elements of `kind` (see `values`, and "distinct"), in any memory layout:
    contiguous, or a view that is transposed, strided, reversed (negative strides) or broadcast (read-only,
    stride 0; not for "distinct", whose values must differ), as minitorch draws permuted storage."""
    layout = draw(st.sampled_from(LAYOUTS if kind != "distinct" else LAYOUTS[:-1]))
    draw_array = (lambda s: draw(distinct_arrays(s))) if kind == "distinct" else (
        lambda s: draw(hnp.arrays(np.float64, s, elements=values(kind))))
    if layout == "transposed" and len(shape) > 1:
        return draw_array(shape[::-1]).T
    if layout == "strided" and shape:
        return draw_array(shape[:-1] + (2 * shape[-1],))[..., ::2]
    if layout == "reversed" and shape:
        return draw_array(shape)[::-1]
    stretchable = [i for i, n in enumerate(shape) if n > 1]
    if layout == "broadcast" and stretchable:
        axis = draw(st.sampled_from(stretchable))
        return np.broadcast_to(draw_array(shape[:axis] + (1,) + shape[axis + 1:]), shape)
    return draw_array(shape)


def distinct_arrays(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """float64 values on the grid 0.075 + 0.15 k, each k once: pairwise 0.15 apart (no ties for max,
    min, maximum) and 0.075 from 0 and from every multiple of 0.15 (usable as clip bounds)."""
    n = math.prod(shape)
    spacing = 0.15

    def build(perm: list[int]) -> np.ndarray:
        return ((np.array(perm, dtype=np.float64) - n // 2) * spacing + spacing / 2).reshape(shape)

    return st.permutations(range(n)).map(build)


def check_grad(fn: Callable[..., Tensor], *inputs: np.ndarray | Tensor, second_order: bool = True,
               **kwargs: object) -> None:
    """Run `fn` through gradcheck and gradgradcheck at the default tolerances (arrays become float64 leaves).

    The output must be finite: a NaN compares as "close" to nothing and would hide a broken case.
    """
    leaves = [x if isinstance(x, Tensor) else Tensor(x, requires_grad=True, dtype=np.float64) for x in inputs]
    out = fn(*leaves)
    assert np.all(np.isfinite(out.data)), f"non-finite output {out.data} for inputs {[t.data for t in leaves]}"
    assert gradcheck(fn, *leaves, **kwargs)
    if second_order:
        assert gradgradcheck(fn, *leaves, **kwargs)
