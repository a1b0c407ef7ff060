"""Matrix multiplication, with numpy's rules for 1-D operands and broadcast batch dimensions."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..perf import matmul as product
from ..tensor import Function, Tensor
from . import promote, tensor_method, unbroadcast


class MatMul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
            # (..., n, k) @ (k, m) as one 2-D BLAS call instead of a loop over the batch
            return product(a.reshape(-1, a.shape[-1]), b).reshape(a.shape[:-1] + b.shape[-1:])
        return product(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        # 1-D operands act as a row (left) or column (right) matrix, as in the forward
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a.ndim == 1 or b.ndim == 1:
            g = g.reshape(_matrix_shape(g.shape, a, b))
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(product(g, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            if b2.ndim == 2 and a2.ndim > 2:
                # the batch sum inside one BLAS call: (k, batch*n) @ (batch*n, m)
                k, m = b2.shape
                gb = product(np.ascontiguousarray(a2).reshape(-1, k).T, np.ascontiguousarray(g).reshape(-1, m))
            else:
                gb = unbroadcast(product(np.swapaxes(a2, -1, -2), g), b2.shape)
            gb = gb.reshape(b.shape)
        return ga, gb


def _matrix_shape(gshape: tuple[int, ...], a: np.ndarray, b: np.ndarray) -> tuple[int, ...]:
    """The output-gradient shape with the 1-D operands' implicit matrix axes put back."""
    if a.ndim == 1 and b.ndim == 1:
        return (1, 1)
    if a.ndim == 1:  # (k) @ (..., k, m) -> (..., m)
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
