"""Keep freed host memory for reuse, so large temporaries do not page-fault on every step.

glibc's malloc serves blocks above a dynamic threshold (128 KiB to 32 MiB) with fresh
``mmap`` pages and gives heap memory back to the kernel whenever the free top of the heap
exceeds twice that threshold. A training step allocates and frees the same few-megabyte
activations again and again, so it would pay for new zeroed pages each time: on the
2-core test machine that was up to a third of a small GPT's step. PyTorch users get the same
effect by preloading jemalloc or tcmalloc; gradient asks glibc directly, once, at import:

* blocks up to 64 MiB come from the heap (``M_MMAP_THRESHOLD``),
* up to 512 MiB of free heap is kept rather than trimmed (``M_TRIM_THRESHOLD``), and
* NumPy no longer asks for transparent huge pages on arrays of 4 MiB and more (unless the
  ``NUMPY_MADVISE_HUGEPAGE`` environment variable says otherwise). Inside a heap that is kept,
  a huge page stays resident in full around whatever small blocks later reuse it, so resident
  memory came to depend on whether the kernel had free 2 MiB pages at that moment: decoding
  SmolLM2 peaked 24 MiB higher right after another process had freed memory, on the same
  inputs. No training or decode step measured faster with them.

The process then holds on to some freed memory, as any caching allocator does. Set the
environment variable ``GRADIENT_KEEP_FREED_MEMORY=0`` before importing gradient to keep
glibc's defaults. Other C libraries (musl, macOS, Windows) are left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import mmap
import os
import platform
import threading

import numpy as np

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
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if applied and "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
        set_hugepage = getattr(getattr(np, "_core", np).multiarray, "_set_madvise_hugepage", None)
        if set_hugepage is not None:
            set_hugepage(False)
    return applied


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


_placeholders = threading.local()
PLACEHOLDER_MIN_BYTES = 1 << 20


@contextlib.contextmanager
def untouched_zeros():
    """Inside the block, large zero-filled CPU arrays are fresh anonymous pages of their own.

    For placeholders about to be replaced, as the parameters of a model built only to receive a
    checkpoint: with the thresholds above, ``calloc`` serves them from the heap and clears reused
    memory by writing it, which made a 135M-parameter skeleton cost ~30 MiB before a single
    weight was read. Pages from ``mmap`` cost nothing until something writes them.
    """
    previous = getattr(_placeholders, "active", False)
    _placeholders.active = True
    try:
        yield
    finally:
        _placeholders.active = previous


def zero_pages(shape: tuple, dtype) -> np.ndarray | None:
    """A writable zero array on pages of its own (unmapped with the array) inside
    :func:`untouched_zeros` when it is large; None otherwise (the caller allocates as usual)."""
    if not getattr(_placeholders, "active", False):
        return None
    dtype = np.dtype(dtype)
    if math.prod(shape) * dtype.itemsize < PLACEHOLDER_MIN_BYTES:
        return None
    return pages_of_their_own(shape, dtype)


#: arrays from :func:`pages_of_their_own` at least this large get their own mapping
OWN_PAGES_MIN_BYTES = 64 << 10


def pages_of_their_own(shape: tuple, dtype) -> np.ndarray:
    """A writable zero array on anonymous pages of its own, given back to the kernel when the
    array goes: for large long-lived arrays such as a model's repacked weights.

    From the heap, weights that are later freed or replaced (stacked for a fused decode step)
    leave holes there, which glibc then fills with the temporaries of the next passes: the
    temporaries land on pages all over the holes, and a SmolLM2 prefill after a decode step
    made the heap 40 MiB larger than before it. Small arrays (under 64 KiB) come from the heap.

    Example: ``codes = pages_of_their_own((groups, blocks, 16, 32), np.uint8)``
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < OWN_PAGES_MIN_BYTES:
        return np.zeros(shape, dtype)
    return _own_mapping(shape, dtype, nbytes)


def _own_mapping(shape: tuple, dtype: np.dtype, nbytes: int, huge: bool = False) -> np.ndarray:
    """A zero array on an anonymous mapping of its own (unmapped with the array); ``huge``
    asks for transparent huge pages."""
    # private: a forked child writing to its copy must not change the parent's (the default
    # for an anonymous map is shared)
    pages = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if huge and hasattr(mmap, "MADV_HUGEPAGE"):
        pages.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(pages, dtype).reshape(shape)


def landing_array(shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array for a large copy to land in: from the heap below
    :data:`MMAP_THRESHOLD` (reused, warm pages), above it a mapping of its own with transparent
    huge pages (which the heap's arrays go without, see the module's doc). At that size glibc
    would map fresh pages anyway, one page fault per 4 KiB: 256 MiB copied into them took
    125-140 ms on the 2-core test machine, against 44 ms with huge pages. For arrays that
    arrive whole, such as a transfer between processes.

    Example: ``out = landing_array(shape, np.float32); out[...] = incoming``
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MMAP_THRESHOLD:
        return np.empty(shape, dtype)
    return _own_mapping(shape, dtype, nbytes, huge=True)
