"""Compiled loops for the engine's hottest elementwise and row-wise work, when a C compiler is at hand.

numpy evaluates a formula one operation at a time, each a full pass over memory: Adam's update is
fourteen passes over every parameter, a layer norm six over its input, the tanh GELU nine. A loop that
does the whole formula per element (or per row) makes one. The loops are in kernels.c; the ops keep
their numpy formulas beside them, for reading and for machines without a compiler, and the tests hold
the two to each other (tests/test_kernels.py).

The first process that needs the loops compiles kernels.c with the system's C compiler ($CC, else cc)
for float and double into one small library in a cache folder ($TINYGRAD_LITE_CACHE, else
~/.cache/tinygrad_lite), named by a hash of the source, the compiler and the CPU; later processes load
it (about a second once per machine, then nothing). Calls go through ctypes, which releases the GIL. A loop
large enough to pay splits itself over the team of C workers in team.c (compiled into the same library),
which wait for work by spinning: a handoff costs microseconds, not the fifty or more of a Python thread;
matrix products run there too (`matmuls`, each part one single-threaded call of numpy's OpenBLAS), and so
does attention, one (batch, head) pair after another. `enabled()` says whether the loops are
in use: they compiled and the environment does not set TINYGRAD_LITE_COMPILED=0; `use_compiled(False)`
switches them off inside a block (tests, benchmarks).

Every function takes C-contiguous arrays of one dtype, float32 or float64, and computes in it.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from . import perf

SOURCE = Path(__file__).with_name("kernels.c")
TEAM_SOURCE = Path(__file__).with_name("team.c")
_DRIVER = """{vector_math}
#include "team.c"
#define real float
#define NAME(f) f##_f32
#include "kernels.c"
#undef real
#undef NAME
#define real double
#define NAME(f) f##_f64
#include "kernels.c"
"""
# -ffp-contract=off: no fused multiply-adds, so that a*b + c rounds as numpy's two operations do
_FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-fno-math-errno", "-ffp-contract=off", "-fPIC", "-shared",
          "-pthread"]
# name: argument kinds, "p" an array, "n" a count, "u" an unsigned 64-bit integer, "x" a scalar (passed as a double)
_SIGNATURES = {
    "adam": "ppnn",
    "layer_norm": "pppxpppnnn",
    "layer_norm_backward": "pppppppppnnn",
    "gelu_tanh": "ppnn",
    "gelu_tanh_backward": "pppnn",
    "softmax_rows": "pnnnnnnn",
    "max_pool2d": "pppp",
    "max_pool2d_backward": "pppp",
    "dropout": "ppnuuxn",
    "batch_norm_sums": "pppnn",
    "batch_norm": "pppppnn",
    "batch_norm_backward_sums": "ppppnn",
    "batch_norm_backward": "pppppppnn",
    "col2im": "ppp",
    "products": "pnnn",
    "attention": "pppppppxn",
    "attention_backward": "pppppppppppxn",
}
_UNTYPED = {"set_blas": "ppppn", "team_rest": "", "team_jobs": ""}  # team.c's, compiled once
_C_TYPES = {"p": ctypes.c_void_p, "n": ctypes.c_ssize_t, "u": ctypes.c_uint64, "x": ctypes.c_double}
_OFF = ("0", "false", "no", "off")
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_lock = threading.Lock()
_library: dict[str, dict[str, ctypes._CFuncPtr]] | None = None
_loaded = False
_switched_on = os.environ.get("TINYGRAD_LITE_COMPILED", "1").strip().lower() not in _OFF


def available() -> bool:
    """Whether the loops compiled (compiling them at the first call of the process)."""
    return _functions() is not None


def enabled() -> bool:
    """Whether the ops run the compiled loops now."""
    return _switched_on and available()


@contextlib.contextmanager
def use_compiled(flag: bool) -> Iterator[None]:
    """Run the compiled loops (True) or the numpy formulas (False) inside the block."""
    global _switched_on
    if flag and not available():
        raise RuntimeError("use_compiled: the kernels did not compile (no C compiler? set CC to one)")
    before, _switched_on = _switched_on, bool(flag)
    try:
        yield
    finally:
        _switched_on = before


def _cache_dir() -> Path:
    root = os.environ.get("TINYGRAD_LITE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tinygrad_lite")
    return Path(root)


def _cpu() -> str:
    """What -march=native compiles for: the CPU's flags where Linux lists them."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), platform.processor())
    except OSError:
        return platform.processor() or platform.machine()


def _compile(compiler: str, target: Path, vector_math: bool) -> bool:
    """Compile the driver into `target` (atomically: processes may race); True when it built."""
    with tempfile.TemporaryDirectory() as scratch:
        driver = Path(scratch) / "driver.c"
        driver.write_text(_DRIVER.format(vector_math="#define VECTOR_MATH" if vector_math else ""))
        built = Path(scratch) / target.name
        command = [compiler, *_FLAGS, f"-I{SOURCE.parent}", str(driver), "-o", str(built)]
        command += ["-lmvec", "-lm"] if vector_math else ["-lm"]
        try:
            done = subprocess.run(command, capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        if done.returncode != 0:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(built, staged)
        os.replace(staged, target)
        return True


def _load(path: Path) -> dict[str, ctypes._CFuncPtr] | None:
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:  # e.g. an older C library without the vector tanh the build linked against
        return None
    functions = {}
    for name, kinds in _UNTYPED.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = [_C_TYPES[k] for k in kinds], ctypes.c_ssize_t if name == "team_jobs" else None
        functions[name] = fn
    for name, kinds in _SIGNATURES.items():
        for suffix in ("f32", "f64"):
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes, fn.restype = [_C_TYPES[k] for k in kinds], None
            functions[f"{name}_{suffix}"] = fn
    return functions


def _functions() -> dict[str, ctypes._CFuncPtr] | None:
    """The compiled functions by name ("adam_f32", ...), built or loaded at the first call; None without."""
    global _library, _loaded
    if _loaded:
        return _library
    with _lock:
        if not _loaded:
            _library, _loaded = _build(), True
    return _library


def _build() -> dict[str, ctypes._CFuncPtr] | None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = [SOURCE.read_text(), TEAM_SOURCE.read_text(), _DRIVER, " ".join(_FLAGS), compiler, version, _cpu()]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    for vector_math in (True, False):  # glibc's vector tanh if it has one, else the scalar one
        target = _cache_dir() / f"kernels-{key}-{'vector' if vector_math else 'scalar'}.so"
        try:
            if not target.exists() and not _compile(compiler, target, vector_math):
                continue
        except OSError:  # the cache folder is not writable
            return None
        functions = _load(target)
        if functions is not None:
            products = perf.blas_products()
            if products is not None:
                functions["set_blas"](*products)
            else:
                del functions["products_f32"], functions["products_f64"]
            return functions
    return None


def _address(a: np.ndarray) -> int:
    try:  # a third of the time of __array_interface__ (which builds a dict), for contiguous writable arrays
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):  # read-only, strided or empty
        return a.__array_interface__["data"][0]


def _call(name: str, *args: np.ndarray | int | float, dtype: np.dtype | None = None) -> None:
    """Call kernel `name` for `dtype`, by default that of its first array; arrays are passed by address."""
    dtype = args[0].dtype if dtype is None else dtype
    fn = _functions()[f"{name}_{'f32' if dtype == np.float32 else 'f64'}"]
    fn(*[_address(a) if isinstance(a, np.ndarray) else a for a in args])


def adam_(updates: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[float, ...]]]) -> None:
    """Adam(W) steps in place for (p, g, m, v, (decay, step_size, 1 - β1, β2, 1 - β2, √(1 - β2ᵗ), eps)) of one dtype,
    all in one call split over the team: p *= decay; m += (g - m)(1 - β1); v = β2 v + (1 - β2) g²;
    p -= m / (√v / √(1 - β2ᵗ) + eps) · step_size (PyTorch's order of operations; the scalars in p's dtype)."""
    table = np.array([[_address(a) for a in update[:4]] + [update[0].size] for update in updates], dtype=np.intp)
    scalars = np.array([update[4] for update in updates], dtype=np.float64)
    _call("adam", table, scalars, len(updates), perf.team_threads(), dtype=updates[0][0].dtype)


def layer_norm_rows(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float, mean: np.ndarray,
                    rstd: np.ndarray, out: np.ndarray) -> None:
    """x (N, F) -> mean (N, 1), rstd = 1 / √(var + eps) (N, 1), out = (x - mean) rstd weight + bias, per row;
    split over the team."""
    _call("layer_norm", x, weight, bias, eps, mean, rstd, out, x.shape[0], x.shape[1], perf.team_threads())


def layer_norm_rows_backward(g: np.ndarray, x: np.ndarray, mean: np.ndarray, rstd: np.ndarray, weight: np.ndarray,
                             gx: np.ndarray, dweight: np.ndarray, dbias: np.ndarray) -> None:
    """gx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) per row, with xhat = (x - mean) rstd and
    dxhat = g weight; dweight (F,) = Σ_rows g xhat and dbias (F,) = Σ_rows g; split over the team."""
    threads = perf.team_threads()
    partials = np.empty((threads, 2, g.shape[1]), dtype=g.dtype)  # each part's column sums
    _call("layer_norm_backward", g, x, mean, rstd, weight, gx, dweight, dbias, partials, g.shape[0], g.shape[1],
          threads)


def gelu_tanh(x: np.ndarray, out: np.ndarray) -> None:
    """out = 0.5 x (1 + t), t = tanh(√(2/π) x (1 + 0.044715 x²)), elementwise, split over the team."""
    _call("gelu_tanh", x, out, x.size, perf.team_threads())


def gelu_tanh_backward(x: np.ndarray, g: np.ndarray, out: np.ndarray) -> None:
    """out = g (0.5 (1 + t) + 0.5 x (1 - t²) √(2/π) (1 + 3 · 0.044715 x²)), the tanh GELU's derivative times g,
    with t computed again from x exactly as `gelu_tanh` computes it; split over the team."""
    _call("gelu_tanh_backward", x, g, out, x.size, perf.team_threads())


def softmax_rows_(x: np.ndarray) -> bool:
    """Softmax over the last axis of x (up to 4-D, rows contiguous, possibly a block of a larger array), in place;
    a row whose maximum is not finite is shifted by 0, and a row of -inf (it attends to nothing) becomes zeros.
    Returns False, having done nothing, when x's layout does not fit (the caller runs numpy's)."""
    item = x.itemsize
    if x.ndim < 2 or x.ndim > 4 or x.strides[-1] != item or any(s % item for s in x.strides):
        return False
    shape = (1,) * (4 - x.ndim) + x.shape
    strides = (0,) * (4 - x.ndim) + tuple(s // item for s in x.strides)
    _call("softmax_rows", x, shape[0], shape[1], shape[2], shape[3], strides[0], strides[1], strides[2])
    return True


def _pool_geometry(x_shape: tuple[int, ...], out: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
                   dilation: tuple[int, int], *arrays: np.ndarray) -> np.ndarray:
    """kernels.c's geometry of a 2-D pooling: the sizes, then each array's strides in elements."""
    strides = [s // a.itemsize for a in arrays for s in a.strides]
    return np.array([*x_shape, *out, *kernel, *stride, *dilation, *strides], dtype=np.intp)


def max_pool2d(x: np.ndarray, best: np.ndarray, which: np.ndarray, kernel: tuple[int, int],
               stride: tuple[int, int], dilation: tuple[int, int]) -> None:
    """x (N, C, H, W) -> best (N, C, Ho, Wo, x's dtype), each window's maximum, and which (uint8, best's layout),
    the offset k = i * kw + j of its first maximum (of its last NaN where it has one). All three channels-last
    (the channels' stride 1); no padding: every window lies inside x."""
    _call("max_pool2d", x, best, which, _pool_geometry(x.shape, best.shape[2:], kernel, stride, dilation,
                                                       x, best, best))  # (no g: best's strides in its place)


def max_pool2d_backward(g: np.ndarray, which: np.ndarray, gx: np.ndarray, kernel: tuple[int, int],
                        stride: tuple[int, int], dilation: tuple[int, int]) -> None:
    """gx (N, C, H, W, zeros, g's dtype) += each window's g (N, C, Ho, Wo) at the input `which` (uint8) picked;
    all three channels-last."""
    _call("max_pool2d_backward", g, which, gx, _pool_geometry(gx.shape, g.shape[2:], kernel, stride, dilation,
                                                              gx, which, g))


def dropout(x: np.ndarray | None, out: np.ndarray, seed: int, threshold: int, scale: float) -> None:
    """out (contiguous) = x (contiguous, out's shape and dtype) times the inverted-dropout multipliers, or with x
    None the multipliers themselves: element i's is 0 where the top 24 bits of SplitMix64's i-th number (from
    `seed`) fall below `threshold`, else `scale`; split over the team."""
    _call("dropout", 0 if x is None else x, out, out.size, seed, threshold, scale, perf.team_threads(),
          dtype=out.dtype)


def batch_norm_sums(x: np.ndarray, mean: np.ndarray | None, sums: np.ndarray) -> None:
    """sums (C,) float64 += the column sums of x (M, C), or of (x - mean)² when mean (C,) is given."""
    _call("batch_norm_sums", x, 0 if mean is None else mean, sums, x.shape[0], x.shape[1])


def batch_norm(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, shift: np.ndarray, out: np.ndarray) -> None:
    """out (M, C) = (x - mean) scale + shift, with mean, scale and shift (C,)."""
    _call("batch_norm", x, mean, scale, shift, out, x.shape[0], x.shape[1])


def batch_norm_backward_sums(g: np.ndarray, x: np.ndarray, mean: np.ndarray, sums: np.ndarray) -> None:
    """sums (2, C) float64 += the column sums of g (M, C) and of g (x - mean)."""
    _call("batch_norm_backward_sums", g, x, mean, sums, g.shape[0], g.shape[1])


def batch_norm_backward(g: np.ndarray, x: np.ndarray, mean: np.ndarray, per_centred: np.ndarray, shift: np.ndarray,
                        scale: np.ndarray, gx: np.ndarray) -> None:
    """gx (M, C) = (x - mean) per_centred + shift + g scale, with mean, per_centred, shift and scale (C,)."""
    _call("batch_norm_backward", g, x, mean, per_centred, shift, scale, gx, g.shape[0], g.shape[1])


def col2im(cols: np.ndarray, gx: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
           dilation: tuple[int, int]) -> None:
    """gx (N, Hp, Wp, C), channels' stride 1, += each window of cols (N, Ho, Wo, kh, kw, C), contiguous, where it
    came from: window (y, v)'s entry (i, j) onto gx's row y sh + i dh, column v sw + j dw."""
    n, ho, wo = cols.shape[:3]
    strides = [s // gx.itemsize for s in gx.strides[:3]]
    geometry = np.array([n, ho, wo, *kernel, gx.shape[3], *stride, *dilation, *strides], dtype=np.intp)
    _call("col2im", cols, gx, geometry)


# A part of a product on one thread should be worth the handoff (a few microseconds) many times over.
_PRODUCT_MIN_WORK = 1 << 19  # multiply-adds


def products_available() -> bool:
    """Whether `matmul` runs here: the loops compiled, and numpy's BLAS is an OpenBLAS whose products they call."""
    functions = _functions() if _switched_on else None
    return functions is not None and "products_f32" in functions


def _blas_layout(x: np.ndarray) -> tuple[int, int] | None:
    """(transposed, leading dimension) of a 2-D array as the BLAS reads it, or None when it cannot."""
    item = x.itemsize
    rows, cols = x.shape
    s0 = x.strides[0] if rows > 1 else cols * item
    s1 = x.strides[1] if cols > 1 else item
    if s1 == item and s0 % item == 0 and s0 >= max(1, cols) * item:
        return 0, s0 // item
    if s0 == item and s1 % item == 0 and s1 >= max(1, rows) * item:
        return 1, s1 // item
    return None


def matmuls(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], threads: int) -> list[np.ndarray] | None:
    """[a @ b (+ bias (n,)) for (a, b, bias) in pairs] on `threads` threads of the team (team.c): one product split
    along its rows or columns, several at once, one per thread; every part one single-threaded BLAS call. None,
    having done nothing, where an operand does not fit (the caller runs numpy's)."""
    table, outs = [], []
    for a, b, bias in pairs:
        if (a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or a.dtype not in _DTYPES or 0 in a.shape or 0 in b.shape
                or (bias is not None and (bias.dtype != a.dtype or bias.shape != b.shape[1:]))):
            return None
        layout_a, layout_b = _blas_layout(a), _blas_layout(b)
        if layout_a is None or layout_b is None:
            return None
        (m, k), n = a.shape, b.shape[1]
        out = np.empty((m, n), dtype=a.dtype)
        bias = None if bias is None else np.ascontiguousarray(bias)
        outs.append((out, bias, a, b))  # (held until the call returns)
        table += [_address(a), _address(b), _address(out), 0 if bias is None else _address(bias), m, n, k,
                  layout_a[1], layout_b[1], n, layout_a[0], layout_b[0]]
    _call("products", np.array(table, dtype=np.intp), len(pairs), _PRODUCT_MIN_WORK, threads, dtype=pairs[0][0].dtype)
    return [out for out, *_ in outs]



def team_rest() -> None:
    """Let the team's spinning workers sleep now (before Python threads take the cores)."""
    functions = _functions()
    if functions is not None:
        functions["team_rest"]()


def _attention_geometry(q: np.ndarray, k: np.ndarray, v: np.ndarray, g: np.ndarray | None,
                        causal: bool) -> np.ndarray | None:
    """kernels.c's attention geometry, or None where a layout does not fit (more than two leading axes, a row
    not contiguous)."""
    arrays = [q, k, v] + ([] if g is None else [g])
    if q.ndim > 4 or any(a.shape[-1] > 1 and a.strides[-1] != a.itemsize for a in arrays):
        return None
    strides = []
    for a in arrays:
        lead = (0,) * (4 - a.ndim) + tuple(st // a.itemsize for st in a.strides[:-1])
        strides += lead[:3] if len(lead) == 3 else lead
    strides += [0, 0, 0] * (4 - len(arrays))
    b, h = ((1,) * (4 - q.ndim) + q.shape)[:2]
    return np.array([b, h, q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1], int(causal), *strides], dtype=np.intp)


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, keep: np.ndarray | None, causal: bool, scale: float,
              probs: np.ndarray, out: np.ndarray) -> bool:
    """probs (..., T, S) = softmax(q kᵀ scale) (causal: query i sees keys 0..i; 0 elsewhere), out = (probs keep) v,
    over (batch, head) pairs split across the team. q, k, v: (..., T|S, D|Dv), at most two leading axes, rows
    contiguous; keep, probs, out contiguous. False, having done nothing, where a layout does not fit."""
    geometry = _attention_geometry(q, k, v, None, causal)
    if geometry is None:
        return False
    _call("attention", q, k, v, 0 if keep is None else keep, probs, out, geometry, scale, perf.team_threads())
    return True


def attention_backward(q: np.ndarray, k: np.ndarray, v: np.ndarray, keep: np.ndarray | None, causal: bool,
                       scale: float, probs: np.ndarray, out: np.ndarray, g: np.ndarray, dq: np.ndarray | None,
                       dk: np.ndarray | None, dv: np.ndarray | None) -> bool:
    """The gradients dq, dk, dv (contiguous, or None: not wanted) of `attention` from g = dL/d out; False, having
    done nothing, where a layout does not fit."""
    geometry = _attention_geometry(q, k, v, g, causal)
    if geometry is None:
        return False
    _call("attention_backward", q, k, v, 0 if keep is None else keep, probs, out, g, 0 if dq is None else dq,
          0 if dk is None else dk, 0 if dv is None else dv, geometry, scale, perf.team_threads())
    return True


def team_jobs() -> int:
    """How many jobs the team has split across threads so far in this process (0 without the loops)."""
    functions = _functions()
    return 0 if functions is None else functions["team_jobs"]()
