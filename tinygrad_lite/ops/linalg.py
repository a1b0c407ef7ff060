"""Matrix multiplication, with numpy's rules for 1-D operands and broadcast batch dimensions."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import perf
from ..tensor import Function, Tensor
from . import promote, tensor_method


class MatMul(Function):
    def forward(self, a, b):
        if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
            # (..., n, k) @ (k, m) as one 2-D BLAS call instead of a loop over the batch
            return perf.matmul(a.reshape(-1, a.shape[-1]), b).reshape(a.shape[:-1] + b.shape[-1:])
        return perf.matmul(a, b)

    def backward(self, g):
        a, b = self.parents
        # 1-D operands act as a row (left) or column (right) matrix, as in the forward
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        g2 = g.reshape(_matrix_shape(g.shape, a.ndim, b.ndim)) if a.ndim == 1 or b.ndim == 1 else g
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = (g2 @ b2.mT).sum_to_size(a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            if b2.ndim == 2 and a2.ndim > 2:  # the batch sum inside one BLAS call: (k, batch*n) @ (batch*n, m)
                k, m = b2.shape
                gb = a2.reshape(-1, k).mT @ g2.reshape(-1, m)
            else:
                gb = (a2.mT @ g2).sum_to_size(b2.shape)
            gb = gb.reshape(b.shape)
        return ga, gb


def _matrix_shape(gshape: tuple[int, ...], a_ndim: int, b_ndim: int) -> tuple[int, ...]:
    """The output-gradient shape with the 1-D operands' implicit matrix axes put back."""
    if a_ndim == 1 and b_ndim == 1:
        return (1, 1)
    if a_ndim == 1:  # (k) @ (..., k, m) -> (..., m)
        return gshape[:-1] + (1, gshape[-1])
    return gshape + (1,)  # (..., n, k) @ (k) -> (..., n)


@tensor_method
def matmul(self: Tensor, other: Any) -> Tensor:
    """Matrix product: (..., n, k) @ (..., k, m) -> (..., n, m); 1-D operands as in numpy."""
    a, b = promote("matmul", self, other)
    _check_matmul(a.shape, b.shape)
    return MatMul.apply(a, b)


def _check_matmul(sa: tuple[int, ...], sb: tuple[int, ...]) -> None:
    if len(sa) == 0 or len(sb) == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {sa} and {sb}")
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        which = "only" if len(sb) == 1 else "second-to-last"
        raise ValueError(f"matmul: shapes {sa} and {sb} are not aligned: "
                         f"{ka} (last dim of the first) != {kb} (the {which} dim of the second)")
    try:
        np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of shapes {sa} and {sb} cannot be broadcast together") from None


Tensor.__matmul__ = matmul


def _rmatmul(self: Tensor, other: Any) -> Tensor:
    a, b = promote("matmul", other, self)
    return matmul(a, b)


Tensor.__rmatmul__ = _rmatmul
