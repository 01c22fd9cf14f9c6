"""Keep freed host memory for reuse, so large temporaries do not page-fault on every step.

glibc's malloc serves blocks above a dynamic threshold (128 KiB to 32 MiB) with fresh
``mmap`` pages and gives heap memory back to the kernel whenever the free top of the heap
exceeds twice that threshold. A training step allocates and frees the same few-megabyte
activations again and again, so it would pay for new zeroed pages each time: on the
2-core test machine that was up to a third of a small GPT's step. PyTorch users get the same
effect by preloading jemalloc or tcmalloc; gradient asks glibc directly, once, at import:

* blocks up to 64 MiB come from the heap (``M_MMAP_THRESHOLD``), and
* up to 512 MiB of free heap is kept rather than trimmed (``M_TRIM_THRESHOLD``).

The process then holds on to some freed memory, as any caching allocator does. Set the
environment variable ``GRADIENT_KEEP_FREED_MEMORY=0`` before importing gradient to keep
glibc's defaults. Other C libraries (musl, macOS, Windows) are left alone.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 512 << 20


def keep_freed_memory() -> bool:
    """Apply the thresholds above to glibc's malloc; True when they were applied."""
    if os.environ.get("GRADIENT_KEEP_FREED_MEMORY", "1") == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def release_freed_memory() -> bool:
    """Give the free heap memory back to the kernel now (glibc's ``malloc_trim(0)``): for the
    end of a one-time phase that freed much more than the steady state reuses, such as loading
    a model whose tensors were converted one by one. True when glibc did release some."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = (ctypes.c_size_t,)
    return bool(trim(0))
