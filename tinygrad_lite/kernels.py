"""Compiled loops for the engine's hottest elementwise and row-wise work, used when numba is installed.

numpy evaluates a formula one operation at a time, each a full pass over memory: Adam's update is
fourteen passes over every parameter, a layer norm six over its input. A loop that does the whole
formula per element (or per row) makes one pass. Each kernel below is that loop written in plain
Python; numba compiles it to vector code (`nogil`, so the parts that `perf.split_across_cores` hands
out run at once). The ops keep their numpy formulas beside each kernel, for reading and for machines
without numba, and the tests hold the two to each other (tests/test_kernels.py).

`enabled()` says whether the kernels are in use: numba is importable and the environment does not
set TINYGRAD_LITE_COMPILED=0. `use_compiled(False)` switches them off inside a block (tests,
benchmarks). `pip install tinygrad_lite[perf]` installs numba; the first process to call a kernel
compiles it (about a second each) and caches it on disk for the next ones.

The kernels take C-contiguous arrays of one float dtype (float32 or float64) and do their arithmetic
in that dtype, with scalars passed in it too.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

_OFF = ("0", "false", "no", "off")
_available = importlib.util.find_spec("numba") is not None  # imported at the first kernel call: no import cost
_enabled = _available and os.environ.get("TINYGRAD_LITE_COMPILED", "1").strip().lower() not in _OFF


def available() -> bool:
    """Whether numba is installed (whether `use_compiled(True)` can switch the kernels on)."""
    return _available


def enabled() -> bool:
    """Whether the ops run the compiled kernels now."""
    return _enabled


@contextlib.contextmanager
def use_compiled(flag: bool) -> Iterator[None]:
    """Run the compiled kernels (True) or the numpy formulas (False) inside the block."""
    global _enabled
    if flag and not _available:
        raise RuntimeError("use_compiled: numba is not installed (pip install tinygrad_lite[perf])")
    before, _enabled = _enabled, bool(flag)
    try:
        yield
    finally:
        _enabled = before


class _Kernel:
    """A loop that numba compiles at its first call: without the GIL, and with numpy's error model (a
    division by zero gives inf, as in numpy, instead of a check per division that keeps the loop from
    being vectorised). The compiled code is cached on disk for the next process."""

    _lock = threading.Lock()  # the parts of a split may make the first call from two threads at once

    def __init__(self, loop: Callable[..., Any], fastmath: bool | set[str]):
        self.loop, self.fastmath, self.compiled = loop, fastmath, None
        self.__doc__, self.__name__ = loop.__doc__, loop.__name__

    def __call__(self, *args: Any) -> Any:
        if self.compiled is None:
            with self._lock:
                if self.compiled is None:
                    import numba

                    self.compiled = numba.njit(nogil=True, cache=True, error_model="numpy",
                                               fastmath=self.fastmath)(self.loop)
        return self.compiled(*args)


def _compile(fastmath: bool | set[str] = False) -> Callable[[Callable[..., Any]], _Kernel]:
    return lambda loop: _Kernel(loop, fastmath)


# Sums along a row may be reassociated (summed in vector lanes) and a * b + c fused: the row statistics
# differ from numpy's pairwise sums only by round-off. The elementwise kernels keep numpy's exact
# order of operations, so that the optimizers match PyTorch's updates step for step.
_ROW_MATH = {"reassoc", "contract", "nsz"}


@_compile()
def adam_(p, g, m, v, decay, step_size, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps):
    """One Adam(W) step in place on flat arrays, in PyTorch's order of operations:
    p *= decay; m += (g - m)(1 - β1); v = β2 v + (1 - β2) g²; p -= step_size m / (√v / √(1 - β2ᵗ) + eps)."""
    for i in range(p.size):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * one_minus_beta1
        vi = v[i] * beta2 + gi * gi * one_minus_beta2
        m[i] = mi
        v[i] = vi
        p[i] = p[i] * decay - mi / (np.sqrt(vi) / bias_correction2_sqrt + eps) * step_size


@_compile(_ROW_MATH)
def layer_norm_rows(x, weight, bias, eps, xhat, rstd, out):
    """x (N, F) -> xhat = (x - mean) rstd, rstd = 1 / √(var + eps) (N, 1), out = xhat weight + bias, per row."""
    n, features = x.shape
    real = x.dtype.type
    count, one = real(features), real(1)
    for i in range(n):
        total = real(0)
        for j in range(features):
            total += x[i, j]
        mean = total / count
        squares = real(0)
        for j in range(features):
            centred = x[i, j] - mean
            xhat[i, j] = centred
            squares += centred * centred
        r = one / np.sqrt(squares / count + eps)
        rstd[i, 0] = r
        for j in range(features):
            h = xhat[i, j] * r
            xhat[i, j] = h
            out[i, j] = h * weight[j] + bias[j]


@_compile(_ROW_MATH)
def layer_norm_rows_backward(g, xhat, rstd, weight, gx):
    """dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) per row, with dxhat = g weight."""
    n, features = g.shape
    real = g.dtype.type
    count = real(features)
    for i in range(n):
        mean_g = real(0)
        mean_gx = real(0)
        for j in range(features):
            gh = g[i, j] * weight[j]
            mean_g += gh
            mean_gx += gh * xhat[i, j]
        mean_g /= count
        mean_gx /= count
        r = rstd[i, 0]
        for j in range(features):
            gx[i, j] = (g[i, j] * weight[j] - mean_g - xhat[i, j] * mean_gx) * r


_GELU_C = math.sqrt(2 / math.pi)
_GELU_SLOPE = 3 * 0.044715 * _GELU_C


@_compile()
def gelu_tanh_inner(x, u):
    """u = √(2/π) x (1 + 0.044715 x²), the argument of GELU's tanh (numpy's vectorised tanh follows)."""
    real = x.dtype.type
    a, c, one = real(0.044715), real(_GELU_C), real(1)
    for i in range(x.size):
        xi = x[i]
        u[i] = (xi * xi * a + one) * xi * c


@_compile()
def gelu_tanh_outer(x, t, out):
    """out = 0.5 x (1 + t), t = tanh(u)."""
    one, half = x.dtype.type(1), x.dtype.type(0.5)
    for i in range(x.size):
        out[i] = (t[i] + one) * x[i] * half


@_compile()
def gelu_tanh_backward(x, t, g, out):
    """out = g (0.5 (1 + t) + 0.5 x (1 - t²) √(2/π) (1 + 3 · 0.044715 x²)), the tanh GELU's derivative times g."""
    real = x.dtype.type
    k, c, one, half = real(_GELU_SLOPE), real(_GELU_C), real(1), real(0.5)
    for i in range(x.size):
        xi, ti = x[i], t[i]
        slope = xi * xi * k + c
        out[i] = ((one - ti * ti) * xi * slope + ti + one) * half * g[i]


def scalars(dtype: np.dtype, *values: float) -> list[np.generic]:
    """Python numbers as scalars of `dtype`, so that a kernel computes in the arrays' precision."""
    kind = np.dtype(dtype).type
    return [kind(v) for v in values]
