"""Layer norm and the tanh GELU with their loops compiled (`tinygrad_lite.kernels`), where they compiled.

Each is its numpy op with `forward` and `backward` running the kernels instead of numpy's chain of
passes: the same maths, the same `reference` (inherited), so create_graph and the tests treat them
alike. `F.layer_norm` and `F.gelu` (and the LayerNorm and GELU modules) choose them while
`kernels.enabled()`; inputs a kernel does not take (integer or float16 data) go to the numpy op's code.
Graphs, traces, anomaly reports and profiles name them as the numpy ops (`layernorm`, `gelu`): they
name the maths, and a graph drawn with the compiled loops reads as one drawn without.
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels, perf
from ..ops.elementwise import GELUFunction
from .functional import _MIN_ROWS_PER_THREAD, LayerNormFunction

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class CompiledLayerNormFunction(LayerNormFunction):
    """`LayerNormFunction` whose rows are normalised (and differentiated) in one compiled pass each."""

    def forward(self, x, *affine, ndim=1, eps=1e-5):
        if x.dtype not in _DTYPES:
            return super().forward(x, *affine, ndim=ndim, eps=eps)
        features = math.prod(x.shape[x.ndim - ndim:])
        x2 = np.ascontiguousarray(x.reshape(-1, features))
        weight, bias = _affine(affine, features, x.dtype)
        xhat, out = np.empty_like(x2), np.empty_like(x2)
        rstd = np.empty((len(x2), 1), dtype=x2.dtype)
        perf.split_across_cores(lambda r: kernels.layer_norm_rows(x2[r], weight, bias, eps, xhat[r], rstd[r], out[r]),
                                len(x2), min_items=_MIN_ROWS_PER_THREAD)
        self.xhat, self.rstd = xhat, rstd
        return out.reshape(x.shape)

    def backward(self, g):
        if not hasattr(self, "rstd") or self.rstd.dtype not in _DTYPES:  # the numpy forward ran
            return super().backward(g)
        xhat, rstd = self.xhat, self.rstd
        needs = self.needs_input_grad
        g2 = np.ascontiguousarray(g.data.reshape(xhat.shape), dtype=xhat.dtype)
        grads: list[np.ndarray | None] = [None] * len(needs)
        if len(needs) > 1 and needs[1]:
            grads[1] = np.einsum("ij,ij->j", g2, xhat).reshape(self.parents[1].shape)
        if len(needs) > 2 and needs[2]:
            grads[2] = g2.sum(axis=0).reshape(self.parents[2].shape)
        if needs[0]:
            weight, _ = _affine([p.data for p in self.parents[1:2]], xhat.shape[1], xhat.dtype)
            gx = np.empty_like(xhat)
            perf.split_across_cores(lambda r: kernels.layer_norm_rows_backward(g2[r], xhat[r], rstd[r], weight, gx[r]),
                                    len(xhat), min_items=_MIN_ROWS_PER_THREAD)
            grads[0] = gx.reshape(g.shape)
        return tuple(grads)


def _affine(affine, features: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The weight and bias as contiguous (features,) arrays: ones and zeros for those not given."""
    weight = np.ones(features, dtype) if len(affine) < 1 else np.ascontiguousarray(affine[0].reshape(-1), dtype)
    bias = np.zeros(features, dtype) if len(affine) < 2 else np.ascontiguousarray(affine[1].reshape(-1), dtype)
    return weight, bias


class CompiledGELUFunction(GELUFunction):
    """`GELUFunction` whose tanh form runs as one compiled pass each way. The exact form (erf) keeps the numpy code."""

    def forward(self, x, approximate="none"):
        if approximate != "tanh" or x.dtype not in _DTYPES:
            return super().forward(x, approximate=approximate)
        x = np.asarray(x, order="C")  # (ascontiguousarray would make a 0-d input 1-d)
        t, out = np.empty_like(x), np.empty_like(x)  # t = tanh(√(2/π) x (1 + 0.044715 x²)), out = 0.5 x (1 + t)
        xs, ts, outs = x.reshape(-1), t.reshape(-1), out.reshape(-1)

        perf.split_in_blocks(lambda part: kernels.gelu_tanh(xs[part], ts[part], outs[part]), x.size)
        self.x, self.t = x, t
        return out

    def backward(self, g):
        if self.params["approximate"] != "tanh" or self.x.dtype not in _DTYPES:
            return super().backward(g)
        xs, ts = self.x.reshape(-1), self.t.reshape(-1)
        gs = np.ascontiguousarray(g.data, dtype=self.x.dtype).reshape(-1)
        grad = np.empty_like(self.x)
        grads = grad.reshape(-1)
        perf.split_in_blocks(lambda part: kernels.gelu_tanh_backward(xs[part], ts[part], gs[part], grads[part]),
                             grad.size)
        return (grad,)


# the name an op is shown under comes from its class's __name__ (Function.name)
CompiledLayerNormFunction.__name__ = LayerNormFunction.__name__
CompiledGELUFunction.__name__ = GELUFunction.__name__
