"""Convolutions, pooling, padding and batch normalisation, with PyTorch's names, signatures and semantics.

Fused ops, each one `Function` whose forward and backward call plain numpy kernels:

    conv1d, conv2d    im2col with a sliding-window view and one matrix product per convolution for the output
                      and one for the weight gradient; the input gradient is col2im, one product and one add
                      per kernel offset (kh * kw of them)
    unfold            the im2col itself: (N, C, H, W) -> (N, C * kh * kw, L)
    max_pool2d        one pass per kernel offset keeps the running maximum and which offset gave it (one
                      compiled pass in all where the kernels are on: nn/compiled.py)
    avg_pool2d        one pass per kernel offset adds the window up
    batch_norm        (training) the mean and variance per channel in one op, the backward in three passes

Beside each Function is its reference, `<function>_reference(*inputs, **params)`, taking what the Function
takes: the same computation from public Tensor ops only (pad, slices, stack, matmul, max, mean), slow but
readable and twice-differentiable; the tests hold the fused ops to them. `pad` and `adaptive_avg_pool2d` are
such compositions themselves and have no Function; nor has batch_norm in eval mode (x * scale + shift).

Convolutions compute in channels-last order inside: the windows of an (N, H, W, C) array have kw * C
neighbouring numbers per row, so im2col copies long runs. Their output is an (N, C, H, W) view of that
(N, H, W, C) buffer; numpy's elementwise ops keep that layout, and the next convolution reads it as it is.
Large convolutions share the batch among the cores (`perf.split_across_cores`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import kernels
from ..perf import blas_threads, min_items_per_thread, split_across_cores
from ..tensor import Function, Tensor, no_grad
from .module import Module, Parameter

Seed = int | np.random.Generator | None
Pair = tuple[int, int]
Padding2d = tuple[Pair, Pair]  # ((top, bottom), (left, right))

# ---- arguments ------------------------------------------------------------------------------------------


def _ints(op: str, name: str, value: Any, n: int, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of `n` ints, each >= minimum, as a tuple of n ints."""
    items = (value,) * n if isinstance(value, (int, np.integer)) else value
    if (not isinstance(items, (tuple, list)) or len(items) != n
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items)):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in items):
        kind = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{op}: {name} must be {kind}, got {value!r}")
    return tuple(int(v) for v in items)


def _as_2d(values: tuple[int, ...], fill: int) -> Pair:
    """A 1-D op's (k,) runs as the 2-D (fill, k): a height of one."""
    return (fill, values[0]) if len(values) == 1 else (values[0], values[1])


def _check_tensor(op: str, name: str, x: Any) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__} (wrap arrays in Tensor(...))")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be floating-point, got dtype {x.dtype} (convert with .float())")


def _spatial_input(op: str, x: Any, spatial: int) -> bool:
    """Check an input of `spatial` trailing sizes with a channel axis, optionally a batch axis; True if batched."""
    _check_tensor(op, "input", x)
    names = ("L",) if spatial == 1 else ("H", "W")
    if x.ndim not in (spatial + 1, spatial + 2):
        unbatched, batched = ", ".join(("C",) + names), ", ".join(("N", "C") + names)
        raise ValueError(f"{op}: expected a {spatial + 1}-D ({unbatched}) or {spatial + 2}-D ({batched}) input, "
                         f"got shape {x.shape}")
    return x.ndim == spatial + 2


def _out_size(size: int, kernel: int, stride: int, dilation: int, ceil_mode: bool = False, pad_before: int = 0) -> int:
    """Output positions along one axis of `size` padded positions (PyTorch's formula, ceil mode included)."""
    span = size - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size - pad_before:  # the last window would start in the padding
        out -= 1
    return out


def _offsets(kernel: Pair, stride: Pair, dilation: Pair, out: Pair) -> Iterator[tuple[int, slice, slice]]:
    """(k, rows, cols) for each kernel offset k = i * kw + j: the slices of the padded input it meets."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            yield (i * kernel[1] + j, slice(i * dilation[0], i * dilation[0] + stride[0] * (out[0] - 1) + 1, stride[0]),
                   slice(j * dilation[1], j * dilation[1] + stride[1] * (out[1] - 1) + 1, stride[1]))


# ---- numpy kernels --------------------------------------------------------------------------------------


def _channels_last(x: np.ndarray) -> bool:
    """Whether (N, C, H, W) `x` is laid out as a contiguous (N, H, W, C) array."""
    return x.shape[1] > 1 and not x.flags.c_contiguous and x.transpose(0, 2, 3, 1).flags.c_contiguous


def _padded(x: np.ndarray, pads: Padding2d, value: float, channels_last: bool) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H + top + bottom, W + left + right), filled with `value`, in the layout asked for."""
    (top, bottom), (left, right) = pads
    n, c, h, w = x.shape
    out = _empty((n, c, h + top + bottom, w + left + right), x.dtype, channels_last, value)
    out[:, :, top:top + h, left:left + w] = x
    return out


def _windows(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair) -> np.ndarray:
    """The (N, C, kh, kw, Ho, Wo) windows of padded `xp` as a read-only view (no copy)."""
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    view = sliding_window_view(xp, span, axis=(2, 3))[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]
    return view.transpose(0, 1, 4, 5, 2, 3)


def _col2im(cols: np.ndarray, out: np.ndarray, stride: Pair, dilation: Pair) -> np.ndarray:
    """Add each window's entries back where they came from: cols (N, C, kh, kw, Ho, Wo) onto the padded input
    `out` (N, C, Hp, Wp), in place; one strided add per kernel offset."""
    kernel, size = cols.shape[2:4], cols.shape[4:6]
    for k, rows, columns in _offsets(kernel, stride, dilation, size):
        out[:, :, rows, columns] += cols[:, :, k // kernel[1], k % kernel[1]]
    return out


def _crop(xp: np.ndarray, pads: Padding2d, shape: tuple[int, ...]) -> np.ndarray:
    (top, _), (left, _) = pads
    return xp[:, :, top:top + shape[2], left:left + shape[3]]


_MIN_WORK_PER_THREAD = 1 << 21  # multiply-adds below which a second thread costs more than it saves
_PASS_COST = 32  # one elementwise pass over a number takes about as long as 32 multiply-adds of a product
_CACHED_NUMBERS = 1 << 18  # a megabyte of float32: what a core's cache holds beside the rest of its work


def _batch_parts(work: Any, n: int, work_per_item: int) -> None:
    """`work(part)` over slices of the batch range(n), shared among the cores when the work is big enough.

    OpenBLAS runs on one thread meanwhile (see `perf.split_across_cores`), and for small work done in one
    part too: its own helper threads, spinning between products, make small products many times slower on a
    busy 2-core machine.
    """
    min_items = min_items_per_thread(work_per_item, _MIN_WORK_PER_THREAD)
    if n >= 2 * min_items or n * work_per_item >= 2 * _MIN_WORK_PER_THREAD:
        split_across_cores(work, n, min_items=min_items)
    else:
        with blas_threads(1):
            work(slice(0, n))


def _empty(shape: tuple[int, ...], dtype: np.dtype, channels_last: bool, fill: float | None = None) -> np.ndarray:
    """An (N, C, H, W) array laid out as (N, H, W, C) when `channels_last`; filled with `fill` if given."""
    n, c, h, w = shape
    out = np.empty((n, h, w, c), dtype).transpose(0, 3, 1, 2) if channels_last else np.empty(shape, dtype)
    if fill is not None:
        out.fill(fill)
    return out


def _conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Pair, padding: Padding2d,
                    dilation: Pair, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """x (N, C, H, W), weight (O, C/g, kh, kw), bias (O,) -> (out (N, O, Ho, Wo), cols (g, M, K)).

    cols holds every window as a row: M = N * Ho * Wo rows of K = kh * kw * C/g numbers, channels last, and
    out = cols @ Wᵀ per group. Each core gathers and multiplies the windows of its part of the batch. The
    gather copies runs of numbers that lie side by side: the channels of a position when the input is
    channels-last or has at least Wo channels per group; else (an (N, C, H, W) image of a few channels, as a
    first layer's) the positions along an image row, into cols stored as (g, K, M), of which `cols` is the
    transposed view that the products take as it is (the gather four times faster for MNIST's one channel).
    """
    n, c, h, wd = x.shape
    o, cg, kh, kw = weight.shape
    ho = _out_size(h + sum(padding[0]), kh, stride[0], dilation[0])
    wo = _out_size(wd + sum(padding[1]), kw, stride[1], dilation[1])
    per_item, og = ho * wo, o // groups
    w_t = np.ascontiguousarray(_weight_rows(weight, groups).transpose(0, 2, 1))  # (g, K, O/g); a view is 3x slower
    by_rows = _channels_last(x) or cg >= wo
    if by_rows:
        stored = np.empty((groups, n, ho, wo, kh, kw, cg), dtype=x.dtype)
        gathered = stored  # (g, N, Ho, Wo, kh, kw, C/g)
        cols = stored.reshape(groups, n * per_item, kh * kw * cg)
    else:
        stored = np.empty((groups, kh, kw, cg, n, ho, wo), dtype=x.dtype)
        gathered = stored.transpose(0, 4, 5, 6, 1, 2, 3)
        cols = stored.reshape(groups, kh * kw * cg, n * per_item).transpose(0, 2, 1)
    out = np.empty((n * per_item, o), dtype=x.dtype)
    padded = any(map(any, padding))

    def part(items: slice) -> None:
        xs = _padded(x[items], padding, 0.0, by_rows) if padded else x[items]
        windows = _windows(xs, (kh, kw), stride, dilation)  # (n, C, kh, kw, Ho, Wo), a view
        m = len(windows)
        rows = slice(items.start * per_item, items.stop * per_item)
        np.copyto(gathered[:, items], windows.reshape(m, groups, cg, kh, kw, ho, wo).transpose(1, 0, 5, 6, 3, 4, 2))
        np.matmul(cols[:, rows], w_t, out=out[rows].reshape(-1, groups, og).transpose(1, 0, 2))
        if bias is not None:
            out[rows] += bias

    _batch_parts(part, n, per_item * w_t.size)
    return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2), cols


def _weight_rows(weight: np.ndarray, groups: int) -> np.ndarray:
    """(O, C/g, kh, kw) -> (g, O/g, K): each filter as a row in the (kh, kw, C/g) order of the windows."""
    o, cg, kh, kw = weight.shape
    return np.ascontiguousarray(weight.reshape(groups, o // groups, cg, kh, kw).transpose(0, 1, 3, 4, 2)).reshape(
        groups, o // groups, kh * kw * cg)


def _conv2d_backward(g: np.ndarray, cols: np.ndarray, weight: np.ndarray, x_shape: tuple[int, ...],
                     stride: Pair, padding: Padding2d, dilation: Pair,
                     needs: tuple[bool, bool, bool]) -> tuple[np.ndarray | None, ...]:
    """The gradients of input, weight and bias (None where not needed) from g (N, O, Ho, Wo).

    Each core takes a part of the batch. Its share of the weight gradient, gᵀ cols, is added up at the end.
    The input gradient is col2im of g W. With the compiled loops, g W is one product per few images (what
    stays in the cache) and kernels.col2im adds its windows onto the input's (N, H, W, C) gradient image
    by image (the conv of the CNN's second layer: 1.7 times faster). numpy's version works one kernel offset
    at a time: the (M, C) product of an offset is added onto the gradient at once, in long contiguous runs,
    while it is still in the cache (a third faster than adding the strided columns of one whole product).
    """
    n, o, ho, wo = g.shape
    groups, _, k = cols.shape
    _, cg, kh, kw = weight.shape
    per_item, og = ho * wo, o // groups
    gm = g.transpose(0, 2, 3, 1).reshape(n * per_item, o)  # free when g is channels-last, as our own output is
    w_rows = _weight_rows(weight, groups)  # (g, O/g, K)
    w_offsets = w_rows.reshape(groups, og, kh * kw, cg).transpose(2, 0, 1, 3)  # (kk, g, Og, Cg)
    gx = _empty((n, groups * cg, x_shape[2] + sum(padding[0]), x_shape[3] + sum(padding[1])), g.dtype, True,
                0.0).transpose(0, 2, 3, 1) if needs[0] else None  # (N, Hp, Wp, C)
    gw_parts: dict[int, np.ndarray] = {}
    gb_parts: dict[int, np.ndarray] = {}
    compiled = kernels.enabled() and g.dtype in (np.float32, np.float64)
    images = max(1, _CACHED_NUMBERS // (per_item * k))  # per product of the compiled col2im

    def input_grad(items: slice) -> None:
        windows = np.empty((groups, min(images, items.stop - items.start) * per_item, k), dtype=g.dtype)
        for first in range(items.start, items.stop, images):
            last = min(first + images, items.stop)
            rows = slice(first * per_item, last * per_item)
            product = windows[:, :rows.stop - rows.start]
            np.matmul(gm[rows].reshape(-1, groups, og).transpose(1, 0, 2), w_rows, out=product)
            for group in range(groups):
                kernels.col2im(product[group].reshape(last - first, ho, wo, kh, kw, cg),
                               gx[first:last, :, :, group * cg:(group + 1) * cg], (kh, kw), stride, dilation)

    def part(items: slice) -> None:
        rows = slice(items.start * per_item, items.stop * per_item)
        g_part = gm[rows].reshape(-1, groups, og).transpose(1, 0, 2)  # (g, m, O/g)
        if needs[2]:
            gb_parts[items.start] = np.ones(len(g_part[0]), dtype=g.dtype) @ gm[rows]
        if needs[1]:  # (windowsᵀ g)ᵀ: five times faster than gᵀ windows for the first layer's K = 25
            gw_parts[items.start] = np.matmul(cols[:, rows].transpose(0, 2, 1), g_part)
        if gx is not None and compiled:
            input_grad(items)
        elif gx is not None:
            m = items.stop - items.start
            product = np.empty((groups, len(g_part[0]), cg), dtype=g.dtype)
            target = gx[items]
            for offset, r, c in _offsets((kh, kw), stride, dilation, (ho, wo)):
                np.matmul(g_part, w_offsets[offset], out=product)
                target[:, r, c] += product.transpose(1, 0, 2).reshape(m, ho, wo, groups * cg)

    _batch_parts(part, n, per_item * k * o * 2)
    grad_w = None
    if needs[1]:
        total = sum(gw_parts.values()).transpose(0, 2, 1)  # (g, O/g, K)
        grad_w = total.reshape(groups, og, kh, kw, cg).transpose(0, 1, 4, 2, 3).reshape(weight.shape)
    grad_b = sum(gb_parts.values()) if needs[2] else None
    grad_x = None if gx is None else _crop(gx.transpose(0, 3, 1, 2), padding, x_shape)
    return grad_x, grad_w, grad_b


# ---- convolution ----------------------------------------------------------------------------------------


class Convolution(Function):
    """conv1d and conv2d (a 1-D input runs as a 2-D one of height 1): im2col, then one product each way."""

    def forward(self, x, weight, *bias, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
        self.x_shape, self.weight_shape = x.shape, weight.shape
        if x.ndim == 3:  # (N, C, L): a (N, C, 1, L) image
            x, weight = x[:, :, None], weight[:, :, None]
        out, self.cols = _conv2d_forward(x, weight, bias[0] if bias else None, stride, padding, dilation, groups)
        self.weight, self.geometry = weight, (x.shape, stride, padding, dilation)
        return out[:, :, 0] if len(self.x_shape) == 3 else out

    def backward(self, g):
        needs = tuple(self.needs_input_grad) + (False,) * (3 - len(self.needs_input_grad))
        g = g.data
        if g.ndim == 3:
            g = g[:, :, None]
        gx, gw, gb = _conv2d_backward(g, self.cols, self.weight, *self.geometry, needs)
        gx = None if gx is None else gx.reshape(self.x_shape)
        gw = None if gw is None else gw.reshape(self.weight_shape)
        return (gx, gw, gb)[:len(self.needs_input_grad)]

    @staticmethod
    def reference(x: Tensor, weight: Tensor, bias: Tensor | None = None, *, stride: Pair = (1, 1),
                  padding: Padding2d = ((0, 0), (0, 0)), dilation: Pair = (1, 1), groups: int = 1) -> Tensor:
        return convolution_reference(x, weight, bias, stride, padding, dilation, groups)


def _patches(x: Tensor, kernel: Pair, stride: Pair, padding: Padding2d, dilation: Pair, value: float = 0.0,
             out: Pair | None = None) -> Tensor:
    """The windows of (N, C, H, W) `x` padded with `value`, from pad, slices and stack: (N, C, kh * kw, Ho, Wo)."""
    (top, bottom), (left, right) = padding
    xp = pad(x, (left, right, top, bottom), value=value) if top or bottom or left or right else x
    if out is None:
        out = (_out_size(xp.shape[2], kernel[0], stride[0], dilation[0]),
               _out_size(xp.shape[3], kernel[1], stride[1], dilation[1]))
    return Tensor.stack([xp[:, :, rows, cols] for _, rows, cols in _offsets(kernel, stride, dilation, out)], axis=2)


def convolution_reference(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Pair = (1, 1),
                          padding: Padding2d = ((0, 0), (0, 0)), dilation: Pair = (1, 1), groups: int = 1) -> Tensor:
    """`Convolution` from Tensor ops: the windows (pad, slices, stack) times the filters (matmul), per group."""
    if x.ndim == 3:  # conv1d: a 2-D convolution of height 1
        return convolution_reference(x.unsqueeze(2), weight.unsqueeze(2), bias, stride, padding, dilation,
                                     groups)[:, :, 0]
    n = x.shape[0]
    o, cg, kh, kw = weight.shape
    patches = _patches(x, (kh, kw), stride, padding, dilation)  # (N, C, kh*kw, Ho, Wo)
    ho, wo = patches.shape[3:]
    out = weight.reshape(groups, o // groups, cg * kh * kw) @ patches.reshape(n, groups, cg * kh * kw, ho * wo)
    out = out.reshape(n, o, ho, wo)  # (N, g, O/g, Ho*Wo) -> (N, O, Ho, Wo)
    return out if bias is None else out + bias.reshape(1, o, 1, 1)


def _conv_padding(op: str, padding: Any, kernel: tuple[int, ...], stride: tuple[int, ...],
                  dilation: tuple[int, ...]) -> tuple[Pair, ...]:
    """(before, after) per spatial axis from an int, a tuple, 'valid' or 'same' (the extra one after, as torch)."""
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' needs stride 1 (PyTorch does not support it for strided "
                                 f"convolutions), got stride {stride if n > 1 else stride[0]}")
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise ValueError(f"{op}: padding must be an int, a tuple of {n} ints, 'same' or 'valid', got {padding!r}")
    return tuple((p, p) for p in _ints(op, "padding", padding, n, 0))


def _check_fits(op: str, input: Tensor, sizes: tuple[int, ...], kernel: tuple[int, ...], dilation: tuple[int, ...],
                padding: tuple[Pair, ...]) -> None:
    """The dilated kernel fits into the padded input (padding: (before, after) per spatial axis)."""
    padded = tuple(n + sum(p) for n, p in zip(sizes, padding))
    effective = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(e > p for e, p in zip(effective, padded)):
        raise ValueError(f"{op}: kernel of size {kernel} (with dilation {dilation}: {effective}) is larger than "
                         f"the padded input of size {padded} (input of shape {input.shape}, padding {padding})")


def _convolution(op: str, spatial: int, input: Tensor, weight: Tensor, bias: Tensor | None, stride: Any,
                 padding: Any, dilation: Any, groups: Any) -> Tensor:
    """conv1d / conv2d: check every argument against the input, then run the fused op."""
    batched = _spatial_input(op, input, spatial)
    _check_tensor(op, "weight", weight)
    if weight.ndim != spatial + 2:
        sizes = "kL" if spatial == 1 else "kH, kW"
        raise ValueError(f"{op}: weight must be {spatial + 2}-D (out_channels, in_channels / groups, {sizes}), "
                         f"got shape {weight.shape}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    x = input if batched else input.unsqueeze(0)
    channels, out_channels = x.shape[1], weight.shape[0]
    if out_channels % groups:
        raise ValueError(f"{op}: out_channels {out_channels} (weight of shape {weight.shape}) must be divisible "
                         f"by groups {groups}")
    if weight.shape[1] * groups != channels:
        raise ValueError(f"{op}: input of shape {input.shape} has {channels} channels, but weight of shape "
                         f"{weight.shape} with groups={groups} expects {weight.shape[1] * groups} "
                         f"(in_channels / groups = {weight.shape[1]})")
    if bias is not None:
        _check_tensor(op, "bias", bias)
        if bias.shape != (out_channels,):
            raise ValueError(f"{op}: bias must have shape ({out_channels},) (out_channels), got {bias.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"{op}: input of dtype {input.dtype} and {name} of dtype {t.dtype} differ")
    kernel = weight.shape[2:]
    strides = _ints(op, "stride", stride, spatial, 1)
    dilations = _ints(op, "dilation", dilation, spatial, 1)
    pads = _conv_padding(op, padding, kernel, strides, dilations)
    _check_fits(op, input, x.shape[2:], kernel, dilations, pads)
    out = Convolution.apply(x, weight, *([] if bias is None else [bias]), stride=_as_2d(strides, 1),
                            padding=((0, 0),) * (2 - spatial) + pads, dilation=_as_2d(dilations, 1), groups=int(groups))
    return out if batched else out[0]


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | Pair = 1,
           padding: int | Pair | str = 0, dilation: int | Pair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch): input (N, C, H, W) or (C, H, W), weight
    (O, C / groups, kH, kW), bias (O,) -> (N, O, Ho, Wo). padding: int, pair, 'valid' or 'same' (stride 1)."""
    return _convolution("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int] = 1,
           padding: int | tuple[int] | str = 0, dilation: int | tuple[int] = 1, groups: int = 1) -> Tensor:
    """1-D convolution: input (N, C, L) or (C, L), weight (O, C / groups, kL), bias (O,) -> (N, O, Lo)."""
    return _convolution("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


# ---- unfold (im2col) ------------------------------------------------------------------------------------


class Im2Col(Function):
    """unfold: the windows as columns, (N, C, H, W) -> (N, C * kh * kw, Ho * Wo); the backward is col2im."""

    def forward(self, x, kernel=(1, 1), stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1)):
        self.x_shape, self.geometry = x.shape, (kernel, stride, padding, dilation)
        xp = _padded(x, padding, 0.0, False) if any(map(any, padding)) else x
        windows = _windows(xp, kernel, stride, dilation)
        self.windows_shape, self.padded_shape = windows.shape, xp.shape
        n, c, kh, kw, ho, wo = windows.shape
        return windows.reshape(n, c * kh * kw, ho * wo)

    def backward(self, g):
        _, stride, padding, dilation = self.geometry
        gxp = _col2im(g.data.reshape(self.windows_shape), np.zeros(self.padded_shape, g.dtype), stride, dilation)
        return (_crop(gxp, padding, self.x_shape),)

    @staticmethod
    def reference(x: Tensor, **params: Any) -> Tensor:
        return im2col_reference(x, **params)


def im2col_reference(x: Tensor, kernel: Pair = (1, 1), stride: Pair = (1, 1),
                     padding: Padding2d = ((0, 0), (0, 0)), dilation: Pair = (1, 1)) -> Tensor:
    """`Im2Col` from Tensor ops (pad, slices, stack, reshape)."""
    patches = _patches(x, kernel, stride, padding, dilation)
    n, c, kk, ho, wo = patches.shape
    return patches.reshape(n, c * kk, ho * wo)


def unfold(input: Tensor, kernel_size: int | Pair, dilation: int | Pair = 1, padding: int | Pair = 0,
           stride: int | Pair = 1) -> Tensor:
    """im2col, as torch.nn.functional.unfold: (N, C, H, W) or (C, H, W) -> (N, C * kH * kW, L), the rows in
    (channel, kernel row, kernel column) order, L the number of windows."""
    batched = _spatial_input("unfold", input, 2)
    x = input if batched else input.unsqueeze(0)
    kernel = _ints("unfold", "kernel_size", kernel_size, 2, 1)
    dilations = _ints("unfold", "dilation", dilation, 2, 1)
    pads = _ints("unfold", "padding", padding, 2, 0)
    strides = _ints("unfold", "stride", stride, 2, 1)
    sides = tuple((p, p) for p in pads)
    _check_fits("unfold", input, x.shape[2:], kernel, dilations, sides)
    out = Im2Col.apply(x, kernel=kernel, stride=strides, padding=sides, dilation=dilations)
    return out if batched else out[0]


# ---- pooling --------------------------------------------------------------------------------------------


def _pool_geometry(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
                   ceil_mode: bool) -> tuple[Pair, Pair, Pair, Pair]:
    """(kernel, stride, padding, dilation) of a 2-D pooling of (N, C, H, W) `x`, checked."""
    kernel = _ints(op, "kernel_size", kernel_size, 2, 1)
    strides = kernel if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else \
        _ints(op, "stride", stride, 2, 1)
    pads = _ints(op, "padding", padding, 2, 0)
    dilations = _ints(op, "dilation", dilation, 2, 1)
    if any(p > k // 2 for p, k in zip(pads, kernel)):
        raise ValueError(f"{op}: padding {pads} must be at most half of kernel_size {kernel}")
    out, _ = _pool_layout(x.shape, kernel, strides, pads, dilations, ceil_mode)
    if any(o < 1 for o in out):
        raise ValueError(f"{op}: input of shape {x.shape} is too small for kernel_size {kernel} with stride "
                         f"{strides}, padding {pads} and dilation {dilations} (output size {out})")
    return kernel, strides, pads, dilations


def _pool_layout(shape: tuple[int, ...], kernel: Pair, stride: Pair | None, padding: Pair, dilation: Pair,
                 ceil_mode: bool) -> tuple[Pair, Padding2d]:
    """(output size, padding per side) of a 2-D pooling of an (N, C, H, W) input; stride None is kernel.

    The padding after may exceed the padding before: in ceil mode the last window can run past the input.
    """
    stride = stride or kernel
    out = tuple(_out_size(n + 2 * p, k, s, d, ceil_mode, p) for n, k, s, d, p in
                zip(shape[2:], kernel, stride, dilation, padding))
    after = tuple(max(p, (o - 1) * s + d * (k - 1) + 1 - n - p) for n, k, s, d, p, o in
                  zip(shape[2:], kernel, stride, dilation, padding, out))
    return out, ((padding[0], after[0]), (padding[1], after[1]))


def _pool_params(kernel: Pair, stride: Pair, **params: Any) -> dict[str, Any]:
    """A pooling Function's parameters: stride None when it is the kernel (PyTorch's default, and no label)."""
    return dict(kernel=kernel, stride=None if stride == kernel else stride, **params)


def _max_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding2d, dilation: Pair,
                        out: Pair) -> tuple[np.ndarray, np.ndarray]:
    """x (N, C, H, W) -> (max (N, C, Ho, Wo), which offset k = i * kw + j won), a part of the batch per core.

    Offsets are visited in order and only a strictly larger value takes over, so the first maximum wins, as in
    PyTorch's kernels; a NaN wins over everything, the last NaN of a window last (as PyTorch's `val > max ||
    isnan(val)`). Padding is -inf and never wins: an output starts at its window's first offset inside the
    input, as PyTorch's does. `which` is updated with arithmetic, not masked stores: a random mask makes
    np.where and np.copyto branch on every element (ten times slower).
    """
    n, c = x.shape[:2]
    layout, padded = _channels_last(x), any(map(any, padding))
    offsets = list(_offsets(kernel, stride, dilation, out))
    best = _empty((n, c, *out), x.dtype, layout)
    which = _empty((n, c, *out), np.dtype(np.uint8 if len(offsets) <= 256 else np.int64), layout)
    if padded:  # per output row/column, the first kernel row/column that lies inside the input
        first_row = [_first_inside(y * stride[0] - padding[0][0], dilation[0]) for y in range(out[0])]
        first_col = [_first_inside(v * stride[1] - padding[1][0], dilation[1]) for v in range(out[1])]
        first = np.add.outer(np.array(first_row) * kernel[1], first_col)

    def part(items: slice) -> None:
        xp = _padded(x[items], padding, -np.inf, layout) if padded else x[items]
        top, won = best[items], which[items]
        if padded:
            top.fill(-np.inf)
            won[...] = first
        else:
            top[...] = xp[:, :, offsets[0][1], offsets[0][2]]
            won.fill(0)
        for k, rows, cols in offsets[0 if padded else 1:]:
            v = xp[:, :, rows, cols]
            taken = (v > top).view(np.uint8).astype(won.dtype, copy=False)
            won += taken * (won.dtype.type(k) - won)
            np.maximum(top, v, out=top)  # NaN spreads, as in PyTorch
        if np.isnan(top).any():
            for k, rows, cols in offsets:
                won[np.isnan(xp[:, :, rows, cols])] = k

    _batch_parts(part, n, c * out[0] * out[1] * len(offsets) * 4 * _PASS_COST)
    return best, which


def _max_pool2d_backward(g: np.ndarray, which: np.ndarray, x_shape: tuple[int, ...], kernel: Pair, stride: Pair,
                         padding: Padding2d, dilation: Pair, out: Pair) -> np.ndarray:
    """Each window's gradient to the input its maximum came from, a part of the batch per core."""
    padded_shape = (*x_shape[:2], x_shape[2] + sum(padding[0]), x_shape[3] + sum(padding[1]))
    apart = all(s >= d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation))  # windows do not overlap
    gxp = _empty(padded_shape, g.dtype, _channels_last(which), 0.0)
    offsets = list(_offsets(kernel, stride, dilation, out))

    def part(items: slice) -> None:
        target, grads, won = gxp[items], g[items], which[items]
        for k, rows, cols in offsets:
            window = target[:, :, rows, cols]
            if apart:
                np.multiply(grads, won == k, out=window)
            else:
                window += grads * (won == k)

    _batch_parts(part, len(g), g[0].size * len(offsets) * 2 * _PASS_COST)
    return _crop(gxp, padding, x_shape)


def _first_inside(start: int, dilation: int) -> int:
    """The first kernel index i with start + i * dilation >= 0 (padding <= kernel // 2 keeps it in the input)."""
    return -(start // dilation) if start < 0 else 0


class MaxPooling(Function):
    """max_pool2d: the gradient goes to the one input each window picked."""

    maxima = staticmethod(_max_pool2d_forward)  # (x, *geometry) -> (best, which); nn/compiled.py's in one pass
    maxima_backward = staticmethod(_max_pool2d_backward)

    def forward(self, x, kernel=(1, 1), stride=None, padding=(0, 0), dilation=(1, 1), ceil_mode=False):
        out, pads = _pool_layout(x.shape, kernel, stride, padding, dilation, ceil_mode)
        self.geometry = (kernel, stride or kernel, pads, dilation, out)
        best, self.which = self.maxima(x, *self.geometry)
        self.x_shape = x.shape
        return best

    def backward(self, g):
        return (self.maxima_backward(g.data, self.which, self.x_shape, *self.geometry),)

    @staticmethod
    def reference(x: Tensor, **params: Any) -> Tensor:
        return max_pooling_reference(x, **params)


def _pool_input(op: str, input: Tensor) -> tuple[Tensor, bool]:
    batched = _spatial_input(op, input, 2)
    return (input if batched else input.unsqueeze(0)), batched


def max_pool2d(input: Tensor, kernel_size: int | Pair, stride: int | Pair | None = None, padding: int | Pair = 0,
               dilation: int | Pair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Max over each kernel_size window: (N, C, H, W) or (C, H, W) -> (N, C, Ho, Wo); stride defaults to
    kernel_size, padding is -inf. Of tied maxima the first (in row-major order) gets the gradient, as in
    PyTorch. return_indices: also the int64 flat index (row * W + col) of each maximum in its input plane."""
    x, batched = _pool_input("max_pool2d", input)
    kernel, strides, pads, dilations = _pool_geometry("max_pool2d", x, kernel_size, stride, padding, dilation,
                                                      ceil_mode)
    from .compiled import CompiledMaxPooling  # (it subclasses MaxPooling)

    op = CompiledMaxPooling if kernels.enabled() else MaxPooling
    result = op.apply(x, **_pool_params(kernel, strides, padding=pads, dilation=dilations, ceil_mode=bool(ceil_mode)))
    if not return_indices:
        return result if batched else result[0]
    out, sides = _pool_layout(x.shape, kernel, strides, pads, dilations, ceil_mode)
    which = result._ctx.which if result._ctx is not None else \
        op.maxima(x.data, kernel, strides, sides, dilations, out)[1]  # no graph: run the kernel again
    rows = (np.arange(out[0]) * strides[0] - pads[0])[:, None] + (which // kernel[1]) * dilations[0]
    cols = (np.arange(out[1]) * strides[1] - pads[1]) + (which % kernel[1]) * dilations[1]
    indices = Tensor((rows * x.shape[3] + cols).astype(np.int64))
    return (result, indices) if batched else (result[0], indices[0])


def max_pooling_reference(x: Tensor, kernel: Pair = (1, 1), stride: Pair | None = None, padding: Pair = (0, 0),
                          dilation: Pair = (1, 1), ceil_mode: bool = False) -> Tensor:
    """`MaxPooling` from Tensor ops (pad with -inf, slices, stack, max over the window, whose gradient goes to the
    first maximum, as the fused op's does)."""
    out, sides = _pool_layout(x.shape, kernel, stride, padding, dilation, ceil_mode)
    return _patches(x, kernel, stride or kernel, sides, dilation, -math.inf, out).max(dim=2).values


def _avg_divisor(x: np.ndarray | Tensor, kernel: Pair, stride: Pair, padding: Padding2d, out: Pair,
                 count_include_pad: bool, divisor_override: int | None) -> np.ndarray:
    """(Ho, Wo): how many numbers each window averages, as PyTorch counts them (or divisor_override).

    A window counts the padding (count_include_pad) but never what lies beyond it (ceil mode's overhang).
    """
    if divisor_override is not None:
        return np.asarray(divisor_override, dtype=x.dtype)
    counts = []
    for n, k, s, (before, _), o in zip(x.shape[2:], kernel, stride, padding, out):
        start = np.arange(o) * s - before
        end = np.minimum(start + k, n + before)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        counts.append(end - start)
    return np.multiply.outer(counts[0], counts[1]).astype(x.dtype)


def _avg_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding2d, out: Pair,
                        divisor: np.ndarray) -> np.ndarray:
    """x (N, C, H, W) -> each window's sum over its divisor (N, C, Ho, Wo), a part of the batch per core."""
    layout, offsets = _channels_last(x), list(_offsets(kernel, stride, (1, 1), out))
    total = _empty((*x.shape[:2], *out), x.dtype, layout, 0.0)

    def part(items: slice) -> None:
        xp = _padded(x[items], padding, 0.0, layout) if any(map(any, padding)) else x[items]
        for _, rows, cols in offsets:
            total[items] += xp[:, :, rows, cols]
        total[items] /= divisor

    _batch_parts(part, len(x), total[0].size * len(offsets) * _PASS_COST)
    return total


def _avg_pool2d_backward(g: np.ndarray, x_shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: Padding2d,
                         out: Pair, divisor: np.ndarray) -> np.ndarray:
    """Each window's gradient over its divisor, spread evenly back over the window."""
    padded_shape = (*x_shape[:2], x_shape[2] + sum(padding[0]), x_shape[3] + sum(padding[1]))
    gxp = _empty(padded_shape, g.dtype, _channels_last(g), 0.0)
    offsets = list(_offsets(kernel, stride, (1, 1), out))

    def part(items: slice) -> None:
        share = g[items] / divisor
        for _, rows, cols in offsets:
            gxp[items][:, :, rows, cols] += share

    _batch_parts(part, len(g), g[0].size * len(offsets) * _PASS_COST)
    return _crop(gxp, padding, x_shape)


class AvgPooling(Function):
    """avg_pool2d: each window's sum over its divisor; the gradient spreads back evenly."""

    def forward(self, x, kernel=(1, 1), stride=None, padding=(0, 0), ceil_mode=False, count_include_pad=True,
                divisor_override=None):
        out, pads = _pool_layout(x.shape, kernel, stride, padding, (1, 1), ceil_mode)
        divisor = _avg_divisor(x, kernel, stride or kernel, pads, out, count_include_pad, divisor_override)
        self.x_shape, self.geometry = x.shape, (kernel, stride or kernel, pads, out, divisor)
        return _avg_pool2d_forward(x, *self.geometry)

    def backward(self, g):
        return (_avg_pool2d_backward(g.data, self.x_shape, *self.geometry),)

    @staticmethod
    def reference(x: Tensor, **params: Any) -> Tensor:
        return avg_pooling_reference(x, **params)


def avg_pool2d(input: Tensor, kernel_size: int | Pair, stride: int | Pair | None = None, padding: int | Pair = 0,
               ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over each kernel_size window: (N, C, H, W) or (C, H, W) -> (N, C, Ho, Wo); stride defaults to
    kernel_size, padding is zeros (counted in the mean when count_include_pad), divisor_override replaces
    the count."""
    x, batched = _pool_input("avg_pool2d", input)
    kernel, strides, pads, _ = _pool_geometry("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (not isinstance(divisor_override, (int, np.integer))
                                         or isinstance(divisor_override, bool) or divisor_override == 0):
        raise ValueError(f"avg_pool2d: divisor_override must be a non-zero int, got {divisor_override!r}")
    params = _pool_params(kernel, strides, padding=pads, ceil_mode=bool(ceil_mode),
                          count_include_pad=bool(count_include_pad),
                          divisor_override=None if divisor_override is None else int(divisor_override))
    result = AvgPooling.apply(x, **params)
    return result if batched else result[0]


def avg_pooling_reference(x: Tensor, kernel: Pair = (1, 1), stride: Pair | None = None, padding: Pair = (0, 0),
                          ceil_mode: bool = False, count_include_pad: bool = True,
                          divisor_override: int | None = None) -> Tensor:
    """`AvgPooling` from Tensor ops (pad with zeros, slices, stack, sum, divide)."""
    out, sides = _pool_layout(x.shape, kernel, stride, padding, (1, 1), ceil_mode)
    divisor = _avg_divisor(x, kernel, stride or kernel, sides, out, count_include_pad, divisor_override)
    return _patches(x, kernel, stride or kernel, sides, (1, 1), 0.0, out).sum(axis=2) / Tensor(divisor, dtype=x.dtype)


def _adaptive_matrix(size: int, out: int, dtype: np.dtype) -> np.ndarray:
    """(out, size): row i averages positions floor(i * size / out) .. ceil((i + 1) * size / out) - 1."""
    starts = (np.arange(out) * size) // out
    ends = -((-(np.arange(1, out + 1) * size)) // out)
    positions = np.arange(size)
    inside = (positions >= starts[:, None]) & (positions < ends[:, None])
    return (inside / (ends - starts)[:, None]).astype(dtype)


def adaptive_avg_pool2d(input: Tensor, output_size: int | tuple[int | None, int | None]) -> Tensor:
    """Average over a grid of output_size windows that tile the input (as PyTorch chooses them):
    (N, C, H, W) or (C, H, W) -> (N, C, oH, oW); None in output_size keeps that input size.

    The windows of a row (column) average are separable, so this is two matrix products, A_h @ x @ A_wᵀ.
    """
    _spatial_input("adaptive_avg_pool2d", input, 2)
    sizes = (output_size, output_size) if isinstance(output_size, (int, np.integer)) or output_size is None \
        else output_size
    if not isinstance(sizes, (tuple, list)) or len(sizes) != 2 or not all(
            s is None or (isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1) for s in sizes):
        raise ValueError(f"adaptive_avg_pool2d: output_size must be a positive int or a pair of positive ints "
                         f"(or None), got {output_size!r}")
    h, w = input.shape[-2:]
    oh, ow = (n if s is None else int(s) for n, s in zip((h, w), sizes))
    if (oh, ow) == (1, 1):
        return input.mean(axis=(-2, -1), keepdims=True)
    rows = Tensor(_adaptive_matrix(h, oh, input.dtype), dtype=input.dtype)
    cols = Tensor(_adaptive_matrix(w, ow, input.dtype).T, dtype=input.dtype)
    return rows @ input @ cols


# ---- padding --------------------------------------------------------------------------------------------

_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _source_index(mode: str, size: int, before: int, after: int) -> np.ndarray:
    """For each padded position along an axis of `size`, the input position it copies."""
    positions = np.arange(-before, size + after)
    if mode == "reflect":
        period = 2 * (size - 1)
        folded = np.abs(positions) % period if period else np.zeros_like(positions)
        return np.where(folded >= size, period - folded, folded)
    if mode == "replicate":
        return np.clip(positions, 0, size - 1)
    return positions % size  # circular


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last len(pad) // 2 axes, as torch.nn.functional.pad: `pad` is (left, right) for the last axis,
    then (top, bottom) for the one before, and so on. Modes: 'constant' (with `value`, default 0; a negative
    pad crops), 'reflect' (mirror without repeating the edge), 'replicate' (repeat the edge), 'circular'
    (wrap around). Made of cat and indexing, so it needs no gradient of its own."""
    _check_tensor("pad", "input", input)
    if (not isinstance(pad, (tuple, list)) or len(pad) % 2
            or not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pad)):
        raise TypeError(f"pad: pad must be a tuple of an even number of ints, got {pad!r}")
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    axes = len(pad) // 2
    if axes > input.ndim:
        raise ValueError(f"pad: pad {tuple(pad)} pads {axes} axes, but the input of shape {input.shape} has "
                         f"only {input.ndim}")
    if mode != "constant":
        if value is not None:
            raise ValueError(f"pad: mode {mode!r} takes no value (it is for mode 'constant'), got value={value!r}")
        if axes > 3 or input.ndim not in (axes + 1, axes + 2):
            raise ValueError(f"pad: mode {mode!r} pads the last 1, 2 or 3 axes of an input with one or two more "
                             f"(channels, batch): pad {tuple(pad)} and input of shape {input.shape} do not fit")
    out = input
    for i in range(axes):
        axis = input.ndim - 1 - i
        before, after = int(pad[2 * i]), int(pad[2 * i + 1])
        out = _pad_axis(out, axis, before, after, mode, 0.0 if value is None else float(value))
    return out


def _pad_axis(x: Tensor, axis: int, before: int, after: int, mode: str, value: float) -> Tensor:
    """Pad (or, where negative, crop) one axis: a crop first, then the padding of what is left, as PyTorch."""
    lead = (slice(None),) * axis
    if before < 0 or after < 0:
        size = x.shape[axis]
        if -min(before, 0) - min(after, 0) >= size:
            raise ValueError(f"pad: padding ({before}, {after}) crops axis {axis} of size {size} to nothing")
        x = x[lead + (slice(-min(before, 0), size + min(after, 0)),)]
        before, after = max(before, 0), max(after, 0)
    if not before and not after:
        return x
    size = x.shape[axis]
    if mode == "constant":
        shape = lambda n: x.shape[:axis] + (n,) + x.shape[axis + 1:]  # noqa: E731
        parts = ([Tensor.full(shape(before), value, dtype=x.dtype)] if before else []) + [x] + \
            ([Tensor.full(shape(after), value, dtype=x.dtype)] if after else [])
        return Tensor.cat(parts, axis=axis)
    limit = {"reflect": size - 1, "replicate": math.inf if size else 0, "circular": size}[mode]
    if before > limit or after > limit:
        rule = "smaller than" if mode == "reflect" else "at most"
        raise ValueError(f"pad: mode {mode!r} needs padding {rule} the size of the padded axis: got "
                         f"({before}, {after}) for axis {axis} of size {size}")
    return x[lead + (_source_index(mode, size, before, after),)]


# ---- batch normalisation --------------------------------------------------------------------------------


def _stats_axes(x: np.ndarray | Tensor) -> tuple[int, ...]:
    """Every axis but the channels (axis 1): the batch and the positions."""
    return (0,) + tuple(range(2, x.ndim))


def _batch_norm_forward(x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, eps: float,
                        momentum: float, running_mean: np.ndarray | None, running_var: np.ndarray | None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(out, centred (numbers, C), rstd (C,)) of batch norm in training mode; the running statistics (if given)
    move in place. The rows of the (numbers, C) matrix are shared among the cores."""
    rows, shape = _channel_rows(x)
    m, c = rows.shape
    centred, out = np.empty_like(rows), np.empty_like(rows)
    mean = _row_sums(lambda part: np.ones(len(part), rows.dtype) @ part, rows) / m
    var = _row_sums(lambda part, into: _centre(part, mean, into), rows, centred) / m
    if running_mean is not None:
        _update_running(running_mean, mean, momentum)
        _update_running(running_var, var * (m / (m - 1)), momentum)
    rstd = 1.0 / np.sqrt(var + eps)
    scale = rstd if weight is None else rstd * weight

    def normalise(part: slice) -> None:
        np.multiply(centred[part], scale, out=out[part])
        if bias is not None:
            out[part] += bias

    _batch_parts(normalise, m, c * 2 * _PASS_COST)
    return _from_channel_rows(out, shape), centred, rstd


def _batch_norm_backward(g: np.ndarray, centred: np.ndarray, rstd: np.ndarray, weight: np.ndarray | None,
                         needs: tuple[bool, ...]) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(dx or None, dweight, dbias) from g, the centred input and rstd of the forward."""
    g_rows, shape = _channel_rows(g)
    m, c = centred.shape
    sum_g, sum_gc = _row_sums(lambda part, other: np.stack([np.ones(len(part), part.dtype) @ part,
                                                            np.einsum("ij,ij->j", part, other)]), g_rows, centred)
    gx = None
    if needs[0]:
        scale = rstd if weight is None else rstd * weight
        per_centred, shift = -scale * rstd * rstd * sum_gc / m, -scale * sum_g / m
        gx = np.empty_like(centred)

        def input_grad(part: slice) -> None:
            np.multiply(centred[part], per_centred, out=gx[part])
            gx[part] += shift
            gx[part] += g_rows[part] * scale

        _batch_parts(input_grad, m, c * 4 * _PASS_COST)
        gx = _from_channel_rows(gx, shape)
    return gx, sum_gc * rstd, sum_g


class BatchNormalization(Function):
    """batch_norm in training mode: normalise each channel over the batch (and positions), scale and shift.

    Forward, per channel over its n numbers: centred = x - mean, rstd = 1 / sqrt(mean(centred²) + eps) (the
    biased variance), out = centred * (rstd * weight) + bias; the running statistics (if given) move towards
    the batch's mean and unbiased variance by `momentum`, in place. Backward: dbias = Σg, dweight =
    rstd Σ(g centred), dx = weight rstd (g - Σg / n - centred rstd² Σ(g centred) / n).

    The work runs on the (numbers, C) matrix of the input with the channels last (a view of a convolution's
    output, a copy otherwise); per-channel sums are products with ones.
    """

    def forward(self, x, *affine, eps=1e-5, momentum=0.1, running_mean=None, running_var=None):
        weight, bias = (list(affine) + [None, None])[:2]
        out, self.centred, self.rstd = _batch_norm_forward(x, weight, bias, eps, momentum, running_mean, running_var)
        self.weight = weight
        return out

    def backward(self, g):
        gx, gw, gb = _batch_norm_backward(g.data, self.centred, self.rstd, self.weight, self.needs_input_grad)
        return (gx, gw, gb)[:len(self.needs_input_grad)]

    @staticmethod
    def reference(x: Tensor, *affine: Tensor, **params: Any) -> Tensor:
        return batch_normalization_reference(x, *affine, **params)


def _channel_rows(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """(N, C, ...) -> a (numbers, C) matrix of the channels-last arrangement (a view when x is laid out so), and
    the channels-last shape to go back."""
    moved = np.moveaxis(x, 1, -1)
    return np.ascontiguousarray(moved).reshape(-1, x.shape[1]), moved.shape


def _from_channel_rows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.moveaxis(rows.reshape(shape), -1, 1)


def _centre(part: np.ndarray, mean: np.ndarray, into: np.ndarray) -> np.ndarray:
    """into = part - mean; returns the column sums of into²."""
    np.subtract(part, mean, out=into)
    return np.einsum("ij,ij->j", into, into)


def _row_sums(fn: Any, *matrices: np.ndarray, work_per_row: int | None = None) -> np.ndarray:
    """Σ over parts of the rows of fn(*matrices[part]) (a per-column sum), the parts shared among the cores;
    `work_per_row` (multiply-adds, by default a numpy pass over a row) decides whether they are shared."""
    totals: dict[int, np.ndarray] = {}

    def work(part: slice) -> None:
        totals[part.start] = fn(*(m[part] for m in matrices))

    _batch_parts(work, len(matrices[0]), matrices[0].shape[1] * _PASS_COST if work_per_row is None else work_per_row)
    return sum(totals.values())


def _update_running(running: np.ndarray, batch: np.ndarray, momentum: float) -> None:
    """running <- (1 - momentum) running + momentum batch, in place (as PyTorch)."""
    running *= 1.0 - momentum
    running += momentum * batch


def batch_normalization_reference(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
                                  eps: float = 1e-5, momentum: float = 0.1, running_mean: np.ndarray | None = None,
                                  running_var: np.ndarray | None = None) -> Tensor:
    """`BatchNormalization`'s output from Tensor ops (mean, subtract, multiply, sqrt, divide); the running
    statistics are the fused op's side effect and are left alone here."""
    axes, shape = _stats_axes(x), (1, -1) + (1,) * (x.ndim - 2)
    centred = x - x.mean(axis=axes, keepdims=True)
    out = centred / ((centred * centred).mean(axis=axes, keepdims=True) + eps).sqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    return out if bias is None else out + bias.reshape(shape)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalise each channel (axis 1) of (N, C), (N, C, L) or (N, C, H, W) input, then scale by weight (C,) and
    shift by bias (C,), as torch.nn.functional.batch_norm.

    training: use the batch's statistics (biased variance) and move running_mean / running_var (if given)
    towards the batch's mean and unbiased variance by `momentum`, in place; otherwise use the running ones.
    """
    _check_tensor("batch_norm", "input", input)
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input with a channel axis, (N, C, ...), got shape {input.shape}")
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and (not isinstance(t, Tensor) or t.shape != (channels,)):
            got = t.shape if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"batch_norm: {name} must be a Tensor of shape ({channels},) for an input of shape "
                             f"{input.shape}, got {got}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: give both running_mean and running_var, or neither")
    shape = (1, channels) + (1,) * (input.ndim - 2)
    if not training:
        if running_mean is None:
            raise ValueError("batch_norm: evaluation (training=False) needs running_mean and running_var")
        scale = 1.0 / (running_var.detach().to(input.dtype) + eps).sqrt()
        if weight is not None:
            scale = scale * weight
        shift = -running_mean.detach().to(input.dtype) * scale
        if bias is not None:
            shift = shift + bias
        return input * scale.reshape(shape) + shift.reshape(shape)
    if input.numel() // max(channels, 1) <= 1:
        raise ValueError(f"batch_norm: training needs more than one value per channel, got input of shape "
                         f"{input.shape}")
    if weight is None and bias is not None:  # the op takes (x, weight, bias) in order
        weight = Tensor.ones(channels, dtype=input.dtype)
    affine = [t for t in (weight, bias) if t is not None]
    stats = {} if running_mean is None else {"running_mean": running_mean.data, "running_var": running_var.data}
    from .compiled import CompiledBatchNormalization  # (it subclasses BatchNormalization)

    op = CompiledBatchNormalization if kernels.enabled() else BatchNormalization
    return op.apply(input, *affine, eps=float(eps), momentum=float(momentum), **stats)


# ---- modules --------------------------------------------------------------------------------------------

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _positive(layer: str, **sizes: Any) -> None:
    for name, value in sizes.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")


class _Conv(Module):
    """Conv1d / Conv2d: weight (out_channels, in_channels / groups, *kernel_size) and bias (out_channels,), both
    uniform in ±1/sqrt(fan_in), fan_in = in_channels / groups * prod(kernel_size) (PyTorch's default: kaiming
    uniform with a = sqrt(5)). A padding_mode other than 'zeros' pads with `pad` first, as PyTorch does."""

    spatial = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, ...],
                 stride: int | tuple[int, ...] = 1, padding: int | tuple[int, ...] | str = 0,
                 dilation: int | tuple[int, ...] = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 seed: Seed = None):
        super().__init__()
        layer, n = type(self).__name__, self.spatial
        _positive(layer, in_channels=in_channels, out_channels=out_channels, groups=groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{layer}: in_channels {in_channels} and out_channels {out_channels} must both be "
                             f"divisible by groups {groups}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{layer}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        self.kernel_size = _ints(layer, "kernel_size", kernel_size, n, 1)
        self.stride = _ints(layer, "stride", stride, n, 1)
        self.dilation = _ints(layer, "dilation", dilation, n, 1)
        pads = _conv_padding(layer, padding, self.kernel_size, self.stride, self.dilation)
        self.padding = padding if isinstance(padding, str) else tuple(before for before, _ in pads)
        self._pads = pads  # (before, after) per axis, for padding_mode's `pad`
        self.in_channels, self.out_channels, self.groups, self.padding_mode = in_channels, out_channels, groups, \
            padding_mode
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(in_channels // groups * math.prod(self.kernel_size))
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(np.float32))
        self.bias = Parameter(rng.uniform(-bound, bound, out_channels).astype(np.float32)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        op = "conv1d" if self.spatial == 1 else "conv2d"
        if self.padding_mode == "zeros":
            return _convolution(op, self.spatial, x, self.weight, self.bias, self.stride, self.padding,
                                self.dilation, self.groups)
        if isinstance(x, Tensor) and x.ndim in (self.spatial + 1, self.spatial + 2) and any(map(any, self._pads)):
            x = pad(x, [p for pair in reversed(self._pads) for p in pair], mode=self.padding_mode)
        return _convolution(op, self.spatial, x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0,) * self.spatial, "valid"):
            text += f", padding={self.padding!r}"
        if self.dilation != (1,) * self.spatial:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        return text


class Conv1d(_Conv):
    """1-D convolution: (N, in_channels, L) -> (N, out_channels, Lo); see `conv1d`."""

    spatial = 1


class Conv2d(_Conv):
    """2-D convolution: (N, in_channels, H, W) -> (N, out_channels, Ho, Wo); see `conv2d`."""

    spatial = 2


class MaxPool2d(Module):
    """`max_pool2d` as a module (stride defaults to kernel_size)."""

    def __init__(self, kernel_size: int | Pair, stride: int | Pair | None = None, padding: int | Pair = 0,
                 dilation: int | Pair = 1, return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.dilation, self.return_indices, self.ceil_mode = padding, dilation, return_indices, ceil_mode

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                          self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """`avg_pool2d` as a module (stride defaults to kernel_size)."""

    def __init__(self, kernel_size: int | Pair, stride: int | Pair | None = None, padding: int | Pair = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode, self.count_include_pad, self.divisor_override = ceil_mode, count_include_pad, divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                          self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """`adaptive_avg_pool2d` as a module: (N, C, H, W) -> (N, C, *output_size)."""

    def __init__(self, output_size: int | tuple[int | None, int | None]):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class _BatchNorm(Module):
    """Batch normalisation over axis 1 (see `batch_norm`): weight starts at 1, bias at 0; running_mean (zeros),
    running_var (ones) and num_batches_tracked are buffers (in state_dict, not trained). In training mode the
    batch's statistics normalise and update the running ones; in eval mode the running ones normalise.
    momentum=None averages every batch so far equally, as PyTorch."""

    ranks: tuple[int, ...] = ()
    shapes = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__()
        _positive(type(self).__name__, num_features=num_features)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32)) if affine else None
        tracked = track_running_stats
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=np.float32)) if tracked else None)
        self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=np.float32)) if tracked else None)
        self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)) if tracked else None)

    def forward(self, x: Tensor) -> Tensor:
        layer = f"{type(self).__name__}({self.num_features})"
        _check_tensor(layer, "input", x)
        if x.ndim not in self.ranks:
            raise ValueError(f"{layer}: expected {self.shapes} input, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{layer}: expected {self.num_features} channels (axis 1), got input of shape {x.shape}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            with no_grad():
                self.num_batches_tracked.data = self.num_batches_tracked.data + 1
            if self.momentum is None:
                momentum = 1.0 / int(self.num_batches_tracked.data)
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return batch_norm(x, self.running_mean if track else None, self.running_var if track else None, self.weight,
                          self.bias, use_batch_stats, momentum, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input, per channel C."""

    ranks, shapes = (2, 3), "a 2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input, per channel C."""

    ranks, shapes = (4,), "a 4-D (N, C, H, W)"
