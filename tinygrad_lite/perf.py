"""Process-level speed settings: malloc, and spreading numpy work over the cores.

By default glibc hands every freed block above ~128 KiB straight back to the
operating system, so the next temporary of that size is a fresh mmap whose
pages fault in one by one. A training step allocates and frees the same large
buffers every time, and those page faults cost about a quarter of a small
GPT's step (python benchmarks/bench_plain_loop.py). `keep_freed_memory()` tells
glibc to keep such blocks for reuse; importing tinygrad_lite calls it, unless the
environment sets TINYGRAD_LITE_KEEP_FREED_MEMORY=0.

numpy's elementwise ops run on one core. `split_across_cores(work, n)` runs
`work(slice)` on consecutive parts of range(n) in `get_num_threads()` threads
at once (numpy releases the GIL inside ufuncs and matrix products), the calling
thread taking the first part, with OpenBLAS held to one thread meanwhile.
A handoff costs 0.05 ms or more on a 2-core VM, so small work stays on one
thread: a row-wise or elementwise pass splits from 2 · 2^18 numbers
(`min_items_per_thread`, `split_in_blocks`), a product from 2^22 multiply-adds
(python benchmarks/bench_threads.py).
OpenBLAS's thread count is one process-wide setting (its
`openblas_set_num_threads_local` changes it for every thread too), so
`blas_threads` restores it as soon as the parts are done.

The compiled loops split their own work over the team of C workers in team.c
(`kernels`), whose handoff costs microseconds; `team_threads()` tells them how
many threads they may use (one inside a part of `split_across_cores`), and
`_split` lets the team's workers sleep before Python threads take the cores.

Matrix products follow one policy (`product_policy`): "blas" leaves them to
OpenBLAS's own threads, as hand-written numpy does; "engine" splits a large
product across the team (`kernels.matmuls`; without the compiled loops, across
our Python threads), each part on one BLAS thread. Why both: after each
product they share, OpenBLAS's helper threads spin for about a tenth of a
second, taking the second core from the next op split across both (a GPT step
ran 15% faster once they stopped spinning: python benchmarks/bench_gpt.py),
while a model with no split elementwise work (the MLP) is fastest on OpenBLAS's
threads. The default, "auto", is "blas" until the process first splits
elementwise work across cores (GELU, LayerNorm, attention: a job of the team or
of `split_across_cores`), then "engine" for good; `using_products(policy)`
pins it for a block (tests, benchmarks).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(threshold_bytes: int = 1 << 30) -> bool:
    """Ask glibc's malloc to serve blocks below `threshold_bytes` from the heap and not to trim it.

    Returns True when the setting took effect (glibc on Linux), False elsewhere (harmless no-op).
    Importing tinygrad_lite does this already (see the module docstring for the opt-out).
    """
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; glibc caps M_MMAP_THRESHOLD at 32 MiB on 64-bit (HEAP_MAX/2)
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, min(threshold_bytes, 32 << 20)) == 1
    trim_ok = mallopt(_M_TRIM_THRESHOLD, threshold_bytes) == 1
    return mmap_ok and trim_ok


def release_freed_memory() -> bool:
    """Give the freed blocks that `keep_freed_memory` keeps back to the operating system (glibc's malloc_trim).

    For after a one-off burst of temporaries (loading a checkpoint), which would otherwise stay resident.
    Returns True when glibc released something, False elsewhere or when there was nothing to release.
    """
    libc = _libc()
    return libc is not None and hasattr(libc, "malloc_trim") and libc.malloc_trim(0) == 1


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        return None if name is None else ctypes.CDLL(name)
    except OSError:
        return None


# ---- OpenBLAS's thread count ------------------------------------------------------------------

# numpy's wheels ship OpenBLAS with renamed symbols (scipy_..., ...64_); plain builds use the bare name
_BLAS_AFFIXES = [(prefix, suffix) for prefix in ("scipy_", "") for suffix in ("64_", "_64", "")]


@functools.cache
def _openblas_library() -> tuple[ctypes.CDLL, str, str] | None:
    """(library, prefix, suffix) of the OpenBLAS that numpy loaded, its symbols named prefix + name + suffix;
    None for another BLAS."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.split()[-1].lower()})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in _BLAS_AFFIXES:
            if all(hasattr(lib, f"{prefix}{name}{suffix}") for name in ("openblas_get_num_threads",
                                                                        "openblas_set_num_threads")):
                return lib, prefix, suffix
    return None


@functools.cache
def _openblas() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """(get, set) for the thread count of the OpenBLAS that numpy loaded, or None (another BLAS)."""
    found = _openblas_library()
    if found is None:
        return None
    lib, prefix, suffix = found
    get, set_ = (getattr(lib, f"{prefix}openblas_{verb}_num_threads{suffix}") for verb in ("get", "set"))
    get.restype, set_.argtypes, set_.restype = ctypes.c_int, [ctypes.c_int], None
    return get, set_


def blas_products() -> tuple[int, int, int, int, bool] | None:
    """(cblas_sgemm, cblas_dgemm, cblas_sgemv, cblas_dgemv, 64-bit integers) of the OpenBLAS that numpy loaded,
    the functions as addresses; None without."""
    found = _openblas_library()
    if found is None:
        return None
    lib, prefix, suffix = found
    try:
        functions = [getattr(lib, f"{prefix}cblas_{name}{suffix}") for name in ("sgemm", "dgemm", "sgemv", "dgemv")]
    except AttributeError:
        return None
    return (*(ctypes.cast(f, ctypes.c_void_p).value for f in functions), "64" in suffix)


def blas_num_threads() -> int | None:
    """How many threads OpenBLAS uses for one matrix product (None when numpy uses another BLAS)."""
    api = _openblas()
    return None if api is None else api[0]()


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """OpenBLAS uses `n` threads inside the block (process-wide), then what it used before."""
    api = _openblas()
    before = None if api is None else api[0]()
    if before is None or before == n:
        yield
        return
    api[1](n)
    try:
        yield
    finally:
        api[1](before)


# ---- our own threads --------------------------------------------------------------------------

_THREAD_VARIABLES = ("TINYGRAD_LITE_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _default_num_threads() -> int:
    """The first of the thread-count variables that is set (as PyTorch follows OMP_NUM_THREADS), else the cores."""
    for name in _THREAD_VARIABLES:
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        first = value.split(",")[0]  # OpenMP allows a list per nesting level: "4,2"
        if first.isdigit() and int(first) > 0:
            return int(first)
        if name == _THREAD_VARIABLES[0]:  # ours: say so; another library's odd value is that library's business
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_num_threads = _default_num_threads()
_pool: ThreadPoolExecutor | None = None
_inside = threading.local()  # set while this thread runs a part: nested splits run serially


def _forget_pool() -> None:
    global _pool
    _pool = None  # a forked child has none of the parent's threads: it starts its own pool when needed


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def get_num_threads() -> int:
    """How many threads split work uses: the usable cores, unless TINYGRAD_LITE_NUM_THREADS, OMP_NUM_THREADS
    or OPENBLAS_NUM_THREADS (the first one set) says otherwise, or `set_num_threads` was called."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use `n` threads for split work and for OpenBLAS's matrix products (as `torch.set_num_threads`)."""
    global _num_threads, _pool
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    _num_threads = n
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    api = _openblas()
    if api is not None:
        api[1](n)


def team_threads() -> int:
    """The threads a compiled loop may split over now: one inside a part of `split_across_cores`."""
    return 1 if getattr(_inside, "active", False) else _num_threads


def _run_part(work: Callable[[slice], None], part: slice) -> None:
    _inside.active = True
    try:
        work(part)
    finally:
        _inside.active = False


def split_across_cores(work: Callable[[slice], None], n: int, min_items: int = 2) -> None:
    """Call `work(part)` for consecutive slices `part` covering range(n), on up to `get_num_threads()` cores.

    `work` must only touch its own part of the data. Below `min_items` items per
    thread (and inside another split) it runs as one call `work(slice(0, n))`.
    """
    global _elementwise_shared
    if _split(work, n, min_items):
        _elementwise_shared = True


def _split(work: Callable[[slice], None], n: int, min_items: int) -> bool:
    """`split_across_cores` itself; True when the parts ran in several threads."""
    global _pool
    threads = min(_num_threads, n // max(min_items, 1))
    if threads < 2 or getattr(_inside, "active", False):
        work(slice(0, n))
        return False
    from . import kernels
    kernels.team_rest()
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_num_threads - 1, thread_name_prefix="tinygrad_lite")
    bounds = [n * i // threads for i in range(threads + 1)]
    parts = [slice(bounds[i], bounds[i + 1]) for i in range(threads)]
    with blas_threads(1):
        futures = [_pool.submit(_run_part, work, part) for part in parts[1:]]
        try:
            _run_part(work, parts[0])
        finally:
            for future in futures:
                future.result()
    return True


# Handing a part to a second thread costs 0.05 ms with nothing to do and more with work in it (the thread
# woken through the OS, the GIL passed back and forth): about what one core takes for a one-pass loop over
# 2^18 numbers. Below twice that, one thread is faster; a matrix product pays from far less work
# (python benchmarks/bench_threads.py).
_MIN_ELEMENTS_PER_THREAD = 1 << 18
_MATMUL_MIN_FLOPS = 1 << 22  # multiply-adds below which one core is faster than two


def min_items_per_thread(work_per_item: int, min_work: int | None = None) -> int:
    """The `min_items` of `split_across_cores`: how many items of `work_per_item` make `min_work` (by default,
    numbers of a one-pass loop: `_MIN_ELEMENTS_PER_THREAD`)."""
    min_work = _MIN_ELEMENTS_PER_THREAD if min_work is None else min_work
    return max(1, -(-min_work // max(work_per_item, 1)))


def split_in_blocks(work: Callable[[slice], None], n: int, block: int = 1 << 17) -> None:
    """`work(part)` over range(n) in parts of at most `block` items, the parts shared evenly among the cores
    (one core below 2 * 2^18 items).

    For a chain of in-place ufuncs over large arrays: each part stays in the core's
    cache through the whole chain instead of streaming every step through memory.
    """
    threads = max(1, min(_num_threads, n // _MIN_ELEMENTS_PER_THREAD))
    count = -(-n // max(block, 1))
    count = threads * -(-count // threads)  # a multiple of the thread count: no core waits on another's extra part
    size = -(-n // count) if n else 1

    def parts(numbers: slice) -> None:
        for i in range(numbers.start, numbers.stop):
            if i * size < n:
                work(slice(i * size, min((i + 1) * size, n)))

    split_across_cores(parts, count, min_items=count // threads)


# A few rows times a matrix (a generation step's products), or a matrix times a few columns, is bound by
# reading the matrix; OpenBLAS's own threads read it about twice as fast as one thread (their spinning
# afterwards matters little there: such steps split no elementwise work).
_FEW = 8
# A few rows times a matrix held transposed (x Wᵀ of a Linear, W (out, in) contiguous): OpenBLAS streams the
# matrix 1.2 to 1.8 times faster with W as the first factor, (W xᵀ)ᵀ, from 2 to 32 rows (a prompt's prefill, a
# small batch), and splitting it across our threads is slower still; from 64 rows x Wᵀ as it stands is as fast.
# Below 2^17 numbers in W the product takes microseconds and the turn-around loses as much as it wins
# (python benchmarks/bench_few_rows.py).
_WEIGHT_FIRST_MAX_ROWS = 32
_WEIGHT_FIRST_MIN_SIZE = 1 << 17
_POLICIES = ("auto", "blas", "engine")
_policy = "auto"
_elementwise_shared = False  # set when split_across_cores first ran parts in several threads


def product_policy() -> str:
    """Where the engine's matrix products run now: "blas" (OpenBLAS's threads) or "engine" (split across ours)."""
    from . import kernels

    if _policy != "auto":
        return _policy
    return "engine" if _elementwise_shared or (kernels.enabled() and kernels.team_jobs() > 0) else "blas"


@contextlib.contextmanager
def using_products(policy: str) -> Iterator[None]:
    """Run the engine's matrix products by `policy` ("auto", "blas" or "engine") inside the block."""
    global _policy
    if policy not in _POLICIES:
        raise ValueError(f"using_products: policy must be one of {_POLICIES}, got {policy!r}")
    before, _policy = _policy, policy
    try:
        yield
    finally:
        _policy = before


def matmul(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """a @ b (+ bias, broadcast over rows) for the engine's ops, by `product_policy()`.

    "engine" with the compiled loops: a 2-D product split across the team's threads (`kernels.matmuls`), a few
    rows times a large transposed matrix (a Linear's Wᵀ) as (bᵀ aᵀ)ᵀ (see `_WEIGHT_FIRST_MAX_ROWS`).
    Without them, 2 to `_WEIGHT_FIRST_MAX_ROWS` such rows run as (bᵀ aᵀ)ᵀ on OpenBLAS's threads; then "blas":
    one numpy product on OpenBLAS's threads; "engine": a 2-D product with at most `_FEW` rows or columns on
    OpenBLAS's threads (it is memory-bound), every other product on one BLAS thread per call, a large one
    (M, K) @ (K, N) split across our threads along M or N, whichever halves the larger operand.
    """
    policy = product_policy()
    if policy == "engine" and a.ndim == 2 and b.ndim == 2:
        out = _team_matmul(a, b, bias)
        if out is not None:
            return out
    if (a.ndim == 2 and b.ndim == 2 and 1 < a.shape[0] <= _WEIGHT_FIRST_MAX_ROWS
            and b.size >= _WEIGHT_FIRST_MIN_SIZE and b.T.flags.c_contiguous):
        with blas_threads(_num_threads):
            return _plus(np.ascontiguousarray((b.T @ a.T).T), bias)
    if policy == "blas":
        return _plus(a @ b, bias)
    if a.ndim == 2 and b.ndim == 2 and min(a.shape[0], b.shape[1]) <= _FEW:
        with blas_threads(_num_threads):
            return _plus(a @ b, bias)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] * a.shape[1] * b.shape[1] < _MATMUL_MIN_FLOPS:
        with blas_threads(1):
            return _plus(a @ b, bias)
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    if a.shape[0] >= b.shape[1]:
        _split(lambda rows: _plus(np.matmul(a[rows], b, out=out[rows]), bias), a.shape[0], min_items=8)
    else:
        _split(lambda cols: _plus(np.matmul(a, b[:, cols], out=out[:, cols]), None if bias is None else bias[cols]),
               b.shape[1], min_items=8)
    return out


def _team_matmul(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None) -> np.ndarray | None:
    """a @ b (+ bias) on the team's threads, OpenBLAS on one meanwhile; None where the team cannot take it."""
    from . import kernels

    if not kernels.products_available():
        return None
    with blas_threads(1):
        if 1 < a.shape[0] <= _WEIGHT_FIRST_MAX_ROWS and b.size >= _WEIGHT_FIRST_MIN_SIZE and b.T.flags.c_contiguous:
            outs = kernels.matmuls([(b.T, a.T, None)], team_threads())
            return None if outs is None else _plus(np.ascontiguousarray(outs[0].T), bias)
        outs = kernels.matmuls([(a, b, bias)], team_threads())
        return None if outs is None else outs[0]


def _plus(out: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    if bias is not None:
        out += bias
    return out


def matmuls(*pairs: tuple[np.ndarray, np.ndarray] | None) -> list[np.ndarray | None]:
    """[a @ b for (a, b) in pairs] for independent products (a Linear layer's gradients); None gives None.

    Under the "engine" policy the products run at once, one per thread: each at
    one-thread speed without packing any operand twice, which beats splitting each
    product when they are small. Otherwise they run one after another through `matmul`.
    """
    todo = [i for i, pair in enumerate(pairs) if pair is not None]
    results: list[np.ndarray | None] = [None] * len(pairs)
    from . import kernels
    if len(todo) >= 2 and _num_threads >= 2 and product_policy() != "blas" and kernels.products_available():
        matrices = [(a.reshape(1, -1) if a.ndim == 1 else a, b, None) for a, b in (pairs[i] for i in todo)]
        with blas_threads(1):
            outs = kernels.matmuls(matrices, team_threads())
        if outs is not None:
            for i, out in zip(todo, outs):
                results[i] = out.reshape(-1) if pairs[i][0].ndim == 1 else out
            return results
    if len(todo) < 2 or _num_threads < 2 or product_policy() == "blas":
        for i in todo:
            results[i] = matmul(*pairs[i])
        return results

    def products(part: slice) -> None:
        for i in todo[part]:
            a, b = pairs[i]
            results[i] = a @ b

    _split(products, len(todo), min_items=1)
    return results


if os.environ.get("TINYGRAD_LITE_KEEP_FREED_MEMORY", "1").strip().lower() not in ("0", "false", "no", "off"):
    keep_freed_memory()  # fast by default: see the module docstring
