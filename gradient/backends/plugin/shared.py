"""Bulk data through POSIX shared memory (``docs/plugin-protocol.md``, section 4): one segment
per session, made by the client and grown as needed, that both processes map.

An upload writes the array into the segment and sends ``from_bytes`` with ``"shm"`` and
``"reply": true``; a download sends ``to_bytes`` with ``"shm"``, and the plugin writes into the
segment before it replies. Either way the segment is free again once the reply is in, so one
segment serves every transfer of the session, and its pages stay mapped (a fresh segment per
transfer would pay a page fault for every 4 KiB on both sides).

Example::

    >>> segment = Segment()
    >>> spec = segment.write(np.ones(1 << 20, np.float32))   # {"name": ..., "offset": 0, "nbytes": ...}
    >>> attached(spec)[:4]                                    # what the plugin reads
"""

from __future__ import annotations

import atexit

import numpy as np

__all__ = ["Segment", "attached", "THRESHOLD"]

#: transfers at least this large go through shared memory when both sides offer it
THRESHOLD = 1 << 18


def _shared_memory():
    from multiprocessing import shared_memory
    return shared_memory


class Segment:
    """The client's segment: created on first use, replaced by a larger one when needed."""

    def __init__(self):
        self._shm = None
        self._registered = False

    def view(self, nbytes: int) -> tuple[memoryview, dict]:
        """Room for ``nbytes`` bytes, and the ``"shm"`` field that names it."""
        if self._shm is None or self._shm.size < nbytes:
            self.close()
            self._shm = _shared_memory().SharedMemory(create=True, size=max(nbytes, 1 << 20))
            if not self._registered:   # unlinked when the interpreter exits, at the latest
                atexit.register(self.close)
                self._registered = True
        return self._shm.buf[:nbytes], {"name": self._shm.name, "offset": 0, "nbytes": nbytes}

    def write(self, array: np.ndarray) -> dict:
        """Copy a C-contiguous array into the segment; the ``"shm"`` field."""
        buffer, spec = self.view(array.nbytes)
        np.frombuffer(buffer, np.uint8)[:] = array.reshape(-1).view(np.uint8)
        return spec

    def close(self) -> None:
        if self._shm is not None:
            self._shm.close()
            self._shm.unlink()
            self._shm = None


_ATTACHED: dict = {}   # in a plugin: name -> SharedMemory, mapped once


def attached(spec: dict) -> memoryview:
    """In a plugin: the bytes a ``"shm"`` field names (mapped on first use, then kept)."""
    shm = _ATTACHED.get(spec["name"])
    if shm is None:
        shared_memory = _shared_memory()
        shm = shared_memory.SharedMemory(name=spec["name"])
        # the client made it and unlinks it: this process's resource tracker must not
        from multiprocessing import resource_tracker
        resource_tracker.unregister(shm._name, "shared_memory")   # noqa: SLF001
        for old in list(_ATTACHED):       # a new segment replaces the client's last one
            _ATTACHED.pop(old).close()
        _ATTACHED[spec["name"]] = shm
    return shm.buf[spec["offset"]:spec["offset"] + spec["nbytes"]]
