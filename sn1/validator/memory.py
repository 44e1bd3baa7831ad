"""Give freed native memory back to the system after each step.

A validator step runs the relevance transformer (torch) and the LLM on inputs of a new
shape every time; their freed buffers stay in glibc's malloc arenas, so RSS rose by
~250 MB in 60 steps of relevance alone and kept wandering (issue 18: 1.6-1.7 GB after
27 minutes) while Python's own objects grew by ~4 MB (tracemalloc, benchmarks/soak.py).
``malloc_trim(0)`` returns those pages: the same 60 steps stayed within 12 MB of the
RSS after loading. A no-op where the C library has no malloc_trim (macOS, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def release_native_memory() -> bool:
    """Return freed heap pages to the OS; True if the C library could (blocking: a few ms)."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True
