"""Layer norm, the tanh GELU, max pooling and batch norm with their loops compiled (`tinygrad_lite.kernels`),
where they compiled.

Each is its numpy op with `forward` and `backward` running the kernels instead of numpy's chain of
passes: the same maths, the same `reference` (inherited), so create_graph and the tests treat them
alike. `F.layer_norm`, `F.gelu`, `F.max_pool2d` and `F.batch_norm` (and their modules) choose them while
`kernels.enabled()`; inputs a kernel does not take (integer or float16 data) go to the numpy op's code.
Graphs, traces, anomaly reports and profiles name them as the numpy ops (`layernorm`, `gelu`): they
name the maths, and a graph drawn with the compiled loops reads as one drawn without.
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..ops.elementwise import GELUFunction
from . import conv
from .functional import LayerNormFunction

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_COMPILED_PASS_COST = conv._PASS_COST // 4  # a compiled loop's work per number, in multiply-adds of a product


class CompiledLayerNormFunction(LayerNormFunction):
    """`LayerNormFunction` whose rows are normalised (and differentiated) in one compiled pass each.

    It keeps the input's rows and their mean and rstd for backward, not xhat: backward's one pass computes
    (x - mean) rstd again (the forward's xhat, to the bit) beside the input's gradient and the column sums of
    the weight's and bias's, and the input is kept anyway (the residual stream), so a step holds one array
    fewer per layer norm at the top of its memory."""

    def forward(self, x, *affine, ndim=1, eps=1e-5):
        if x.dtype not in _DTYPES:
            return super().forward(x, *affine, ndim=ndim, eps=eps)
        features = math.prod(x.shape[x.ndim - ndim:])
        x2 = np.ascontiguousarray(x.reshape(-1, features))
        weight, bias = _affine(affine, features, x.dtype)
        out = np.empty_like(x2)
        mean, rstd = np.empty((len(x2), 1), dtype=x2.dtype), np.empty((len(x2), 1), dtype=x2.dtype)
        kernels.layer_norm_rows(x2, weight, bias, eps, mean, rstd, out)
        self.x2, self.mean, self.rstd = x2, mean, rstd
        return out.reshape(x.shape)

    def backward(self, g):
        if not hasattr(self, "mean"):  # the numpy forward ran
            return super().backward(g)
        x2, mean, rstd = self.x2, self.mean, self.rstd
        rows, features = x2.shape
        g2 = np.ascontiguousarray(g.data.reshape(x2.shape), dtype=x2.dtype)
        weight, _ = _affine([p.data for p in self.parents[1:2]], features, x2.dtype)
        gx, dweight, dbias = np.empty_like(x2), np.empty(features, x2.dtype), np.empty(features, x2.dtype)
        kernels.layer_norm_rows_backward(g2, x2, mean, rstd, weight, gx, dweight, dbias)
        needs = self.needs_input_grad
        grads = [gx.reshape(g.shape) if needs[0] else None]
        grads += [d.reshape(p.shape) if need else None for d, p, need in zip((dweight, dbias), self.parents[1:],
                                                                              needs[1:])]
        return tuple(grads)


def _affine(affine, features: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The weight and bias as contiguous (features,) arrays: ones and zeros for those not given."""
    weight = np.ones(features, dtype) if len(affine) < 1 else np.ascontiguousarray(affine[0].reshape(-1), dtype)
    bias = np.zeros(features, dtype) if len(affine) < 2 else np.ascontiguousarray(affine[1].reshape(-1), dtype)
    return weight, bias


class CompiledGELUFunction(GELUFunction):
    """`GELUFunction` whose tanh form runs as one compiled pass each way. The exact form (erf) keeps the numpy code.

    It keeps only x for backward, which computes the tanh again (to the bit): a GPT's hidden units are the
    largest activations of its step, and one array fewer of them lowers its peak memory by a twentieth (GPT
    6L/6H/192 in benchmarks/bench_plain_loop.py: 365 MiB instead of 383)."""

    def forward(self, x, approximate="none"):
        if approximate != "tanh" or x.dtype not in _DTYPES:
            return super().forward(x, approximate=approximate)
        x = np.asarray(x, order="C")  # (ascontiguousarray would make a 0-d input 1-d)
        out = np.empty_like(x)  # out = 0.5 x (1 + tanh(√(2/π) x (1 + 0.044715 x²)))
        xs, outs = x.reshape(-1), out.reshape(-1)
        kernels.gelu_tanh(xs, outs)
        self.x = x
        return out

    def backward(self, g):
        if self.params["approximate"] != "tanh" or self.x.dtype not in _DTYPES:
            return super().backward(g)
        xs = self.x.reshape(-1)
        gs = np.ascontiguousarray(g.data, dtype=self.x.dtype).reshape(-1)
        grad = np.empty_like(self.x)
        grads = grad.reshape(-1)
        kernels.gelu_tanh_backward(xs, gs, grads)
        return (grad,)


def _compiled_case(x_shape, kernel, stride, padding, dilation, out) -> bool:
    """Whether the compiled loops take this pooling of a float32/64, channels-last input: every window inside
    the input (no padding, no ceil_mode overhang) and at most 256 offsets (`which` is uint8)."""
    inside = not any(map(any, padding)) and all((o - 1) * s + d * (k - 1) < size for o, s, d, k, size in
                                                zip(out, stride, dilation, kernel, x_shape[2:]))
    return inside and kernel[0] * kernel[1] <= 256


def _as_channels_last(a: np.ndarray) -> np.ndarray:
    return a if conv._channels_last(a) else np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _max_pool2d_forward(x: np.ndarray, kernel, stride, padding, dilation, out) -> tuple[np.ndarray, np.ndarray]:
    """conv's `_max_pool2d_forward` (the same maxima, the same `which`), one compiled pass per part of the batch."""
    # channels-last as convolutions leave their output; numpy's passes are as fast on the other layouts
    if not (x.dtype in _DTYPES and conv._channels_last(x) and _compiled_case(x.shape, kernel, stride, padding,
                                                                              dilation, out)):
        return conv._max_pool2d_forward(x, kernel, stride, padding, dilation, out)
    best = conv._empty((*x.shape[:2], *out), x.dtype, True)
    which = conv._empty(best.shape, np.dtype(np.uint8), True)
    conv._batch_parts(lambda items: kernels.max_pool2d(x[items], best[items], which[items], kernel, stride, dilation),
                      len(x), best[0].size * kernel[0] * kernel[1] * _COMPILED_PASS_COST)
    return best, which


def _max_pool2d_backward(g: np.ndarray, which: np.ndarray, x_shape, kernel, stride, padding, dilation,
                         out) -> np.ndarray:
    """conv's `_max_pool2d_backward`, one compiled pass per kernel offset and part of the batch."""
    if not (g.dtype in _DTYPES and which.dtype == np.uint8 and conv._channels_last(which) and
            _compiled_case(x_shape, kernel, stride, padding, dilation, out)):
        return conv._max_pool2d_backward(g, which, x_shape, kernel, stride, padding, dilation, out)
    g = _as_channels_last(g)
    gx = conv._empty(x_shape, g.dtype, True, 0.0)
    conv._batch_parts(lambda items: kernels.max_pool2d_backward(g[items], which[items], gx[items], kernel, stride,
                                                                dilation),
                      len(g), g[0].size * kernel[0] * kernel[1] * _COMPILED_PASS_COST)
    return gx


class CompiledMaxPooling(conv.MaxPooling):
    """`MaxPooling` finding each window's maximum, and sending its gradient back, in compiled loops."""

    maxima = staticmethod(_max_pool2d_forward)
    maxima_backward = staticmethod(_max_pool2d_backward)


class CompiledBatchNormalization(conv.BatchNormalization):
    """`BatchNormalization` in compiled passes over the channels-last (numbers, C) matrix: two for the
    statistics (the sums, then the squares about the mean), one for the output; backward, one for its sums
    and one for the input's gradient, where numpy's code makes five and six.

    It keeps the input's rows and their mean for backward, not the centred input: backward centres them again
    on the way (to the bit). A channels-last input (a convolution's output) is its own rows, kept anyway as
    the layer's output, so a step holds one array fewer per batch norm; another layout is copied into rows
    once, as numpy's code does."""

    def forward(self, x, *affine, eps=1e-5, momentum=0.1, running_mean=None, running_var=None):
        if x.dtype not in _DTYPES:
            return super().forward(x, *affine, eps=eps, momentum=momentum, running_mean=running_mean,
                                   running_var=running_var)
        rows, shape = conv._channel_rows(x)
        m, c = rows.shape
        per_row = c * _COMPILED_PASS_COST

        def sums(part: np.ndarray, about: np.ndarray | None = None) -> np.ndarray:
            into = np.zeros(c)
            kernels.batch_norm_sums(part, about, into)
            return into

        mean = (conv._row_sums(sums, rows, work_per_row=per_row) / m).astype(x.dtype)
        var = (conv._row_sums(lambda part: sums(part, mean), rows, work_per_row=per_row) / m).astype(x.dtype)
        if running_mean is not None:
            conv._update_running(running_mean, mean, momentum)
            conv._update_running(running_var, var * (m / (m - 1)), momentum)
        rstd = 1.0 / np.sqrt(var + x.dtype.type(eps))
        weight, bias = (list(affine) + [None, None])[:2]
        scale = rstd if weight is None else rstd * weight
        shift = np.zeros(c, x.dtype) if bias is None else np.ascontiguousarray(bias, x.dtype)
        out = np.empty_like(rows)
        conv._batch_parts(lambda part: kernels.batch_norm(rows[part], mean, scale, shift, out[part]), m, per_row)
        self.rows, self.mean, self.rstd, self.weight = rows, mean, rstd, weight
        return conv._from_channel_rows(out, shape)

    def backward(self, g):
        if not hasattr(self, "rows"):  # the numpy forward ran
            return super().backward(g)
        rows, mean, rstd, weight = self.rows, self.mean, self.rstd, self.weight
        m, c = rows.shape
        per_row = c * _COMPILED_PASS_COST
        g_rows, shape = conv._channel_rows(g.data.astype(rows.dtype, copy=False))

        def sums(g_part: np.ndarray, x_part: np.ndarray) -> np.ndarray:
            into = np.zeros((2, c))
            kernels.batch_norm_backward_sums(g_part, x_part, mean, into)
            return into

        sum_g, sum_gc = conv._row_sums(sums, g_rows, rows, work_per_row=per_row).astype(rows.dtype)
        needs = self.needs_input_grad
        gx = None
        if needs[0]:  # as conv's _batch_norm_backward: dx = scale (g - Σg / m) - centred scale rstd² Σ(g centred) / m
            scale = rstd if weight is None else rstd * weight
            per_centred, shift = -scale * rstd * rstd * sum_gc / m, -scale * sum_g / m
            gx = np.empty_like(rows)
            conv._batch_parts(lambda part: kernels.batch_norm_backward(g_rows[part], rows[part], mean, per_centred,
                                                                       shift, scale, gx[part]), m, per_row)
            gx = conv._from_channel_rows(gx, shape)
        return (gx, sum_gc * rstd, sum_g)[:len(needs)]


# the name an op is shown under comes from its class's __name__ (Function.name)
CompiledLayerNormFunction.__name__ = LayerNormFunction.__name__
CompiledGELUFunction.__name__ = GELUFunction.__name__
CompiledMaxPooling.__name__ = conv.MaxPooling.__name__
CompiledBatchNormalization.__name__ = conv.BatchNormalization.__name__
