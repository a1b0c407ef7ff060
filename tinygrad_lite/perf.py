"""Process-level speed settings for training loops.

By default glibc hands every freed block above ~128 KiB straight back to the
operating system, so the next temporary of that size is a fresh mmap whose
pages fault in one by one. A training step allocates and frees the same large
buffers every time, and those page faults cost about a quarter of a small
GPT's step. `keep_freed_memory()` tells glibc to keep such blocks for reuse.

numpy's elementwise ops run on one core, and OpenBLAS wakes a second thread for
every matrix product above a small size, which costs more than it saves for the
many (T, hs) @ (hs, T) products of attention, badly so when the cores are shared.
`split_across_cores` runs two halves of a batch in two Python threads (numpy
releases the GIL) with single-threaded BLAS in each.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(threshold_bytes: int = 1 << 30) -> bool:
    """Ask glibc's malloc to serve blocks below `threshold_bytes` from the heap and not to trim it.

    Returns True when the setting took effect (glibc on Linux), False elsewhere (harmless no-op).
    Call it once at the start of a training script or benchmark.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; glibc caps M_MMAP_THRESHOLD at 32 MiB on 64-bit (HEAP_MAX/2)
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, min(threshold_bytes, 32 << 20)) == 1
    trim_ok = mallopt(_M_TRIM_THRESHOLD, threshold_bytes) == 1
    return mmap_ok and trim_ok


@functools.cache
def _openblas_set_threads_local() -> Callable[[int], int] | None:
    """OpenBLAS's thread-local `openblas_set_num_threads_local` from the library numpy loaded, or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.split()[-1].lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            fn = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
        return fn
    return None


def _single_threaded_blas() -> None:
    """Thread initializer: this thread's matrix products use one BLAS thread (OpenBLAS's setting is per thread)."""
    set_local = _openblas_set_threads_local()
    if set_local is not None:
        set_local(1)


_pool: ThreadPoolExecutor | None = None


def split_across_cores(work: Callable[[slice], None], n: int, min_items: int = 2) -> None:
    """Call `work(slice)` on two halves of range(n) at once, in two threads with single-threaded BLAS.

    numpy releases the GIL inside ufuncs and matrix products, so two Python threads
    keep two cores busy on independent halves of a batch, without OpenBLAS waking a
    helper thread for every small matrix. Below `min_items` one thread does it all.
    """
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tinygrad_lite",
                                   initializer=_single_threaded_blas)
    half = n // 2 if n >= min_items else n
    parts = [_pool.submit(work, slice(0, half))]
    if half < n:
        parts.append(_pool.submit(work, slice(half, n)))
    for part in parts:
        part.result()
