"""Giving back the pages of a read-only file mapping that a loader no longer needs.

A loader that copies or converts a mapped tensor (a GGUF tensor dequantized, a GPT-2 Conv1D
weight transposed into rows) leaves the mapped pages resident: they count in the process's
memory until the mapping closes, so the peak holds the model twice. ``madvise(MADV_DONTNEED)``
lets the operating system drop them at once; nothing is lost, since the mapping is never
written, and reading them again pages them back in from the file.

Example::

    >>> release(reader._map, offset, nbytes)      # after the tensor at offset was copied
"""

from __future__ import annotations

import mmap

__all__ = ["release"]


def release(mapped, offset: int, nbytes: int) -> None:
    """Drop the whole pages of ``mapped`` (an ``np.memmap``) inside ``[offset, offset +
    nbytes)`` from this process's memory; pages shared with neighbouring bytes are kept. A
    no-op where the platform has no ``madvise``."""
    mm = getattr(mapped, "_mmap", None)
    if mm is None or not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    page = mmap.PAGESIZE
    start = -(-offset // page) * page
    stop = (offset + nbytes) // page * page
    if stop > start:
        mm.madvise(mmap.MADV_DONTNEED, start, stop - start)
