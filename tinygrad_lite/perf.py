"""Process-level speed settings for training loops.

By default glibc hands every freed block above ~128 KiB straight back to the
operating system, so the next temporary of that size is a fresh mmap whose
pages fault in one by one. A training step allocates and frees the same large
buffers every time, and those page faults cost about a quarter of a small
GPT's step. `keep_freed_memory()` tells glibc to keep such blocks for reuse.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

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
