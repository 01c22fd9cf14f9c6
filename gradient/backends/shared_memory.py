"""CPU arrays in memory that other processes map too: where ``Tensor.share_memory_()`` moves a
tensor's values, so that processes started by ``gradient.multiprocessing`` update one model's
parameters in place (Hogwild training), as PyTorch's shared tensors do.

A shared array is a file in ``/dev/shm`` (memory, not disk), mapped ``MAP_SHARED``. A child made
by fork inherits the mapping; an array sent to another process by pickling (spawn's arguments,
a ``multiprocessing`` queue) travels as :func:`handle` -- the file's name, and the array's
dtype, shape, strides and place in it -- and :func:`attach` maps the same file there. Writes in
place (an optimizer's step) are then seen by every process. The process that made a file removes
its name when it exits, normally or by an exception (the memory lives on while any process maps
it). A process killed outright (SIGKILL, the kernel's out-of-memory killer) runs no exit
handler: its files in ``/dev/shm`` are registered with ``multiprocessing``'s resource tracker,
the small process that removes shared memory a dead process leaves (Python's
``SharedMemory`` relies on it too), and is removed by it; without that, each such run left its
arrays' size of memory held in ``/dev/shm`` until the machine restarted.

Example::

    >>> shared = share(np.zeros(4, np.float32))
    >>> is_shared(shared), is_shared(shared[1:]), is_shared(np.zeros(4))
    (True, True, False)
    >>> attach(handle(shared[1:]))     # in another process: the same memory
"""

from __future__ import annotations

import atexit
import mmap
import os
import tempfile
import weakref
from multiprocessing import resource_tracker

import numpy as np

__all__ = ["share", "is_shared", "handle", "attach"]

_DIRECTORY = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()

#: id of each shared root array (the array over a mapping) -> (its file, a weak reference to it)
_roots: dict = {}
#: file -> a weak reference to the root array mapping it here (one mapping per file a process)
_mapped: dict = {}
#: the files this process made, with its pid: removed at its exit (a forked child's too would
#: run this only for files it made itself)
_made: list = []


def share(array: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``array`` in shared memory, or ``array`` itself if it is shared
    already (see the module docstring)."""
    if is_shared(array):
        return array
    if not _made:
        atexit.register(_remove_made)
    fd, path = tempfile.mkstemp(prefix=f"gradient-{os.getpid()}-", dir=_DIRECTORY)
    _made.append((os.getpid(), path))
    _track(path, resource_tracker.register)
    try:
        size = max(array.nbytes, 1)
        os.ftruncate(fd, size)
        mapping = mmap.mmap(fd, size)            # MAP_SHARED, read and write
    finally:
        os.close(fd)
    shared = np.ndarray(array.shape, array.dtype, buffer=mapping)
    shared[...] = array
    _remember(shared, path)
    return shared


def is_shared(array) -> bool:
    """Whether ``array`` (or the array it is a view of) is in shared memory."""
    return _file_of(_root(array)) is not None


def handle(array) -> tuple | None:
    """What :func:`attach` maps again in another process: ``(file, size of the file in bytes,
    dtype, shape, strides, offset in bytes)``; None for an array not in shared memory."""
    root = _root(array)
    path = _file_of(root)
    if path is None:
        return None
    offset = (array.__array_interface__["data"][0] - root.__array_interface__["data"][0])
    return (path, root.nbytes, array.dtype.str, array.shape, array.strides, offset)


def attach(found: tuple) -> np.ndarray:
    """The array of a :func:`handle`, over the same memory (the file mapped once per
    process)."""
    path, size, dtype, shape, strides, offset = found
    ref = _mapped.get(path)
    root = ref() if ref is not None else None
    if root is None:
        with open(path, "r+b") as file:
            mapping = mmap.mmap(file.fileno(), max(size, 1))
        root = np.ndarray(size, np.uint8, buffer=mapping)
        _remember(root, path)
    return np.ndarray(shape, np.dtype(dtype), buffer=root, offset=offset, strides=strides)


def _root(array):
    """The array at the bottom of ``array``'s chain of bases (itself if it is no view)."""
    while isinstance(getattr(array, "base", None), np.ndarray):
        array = array.base
    return array


def _file_of(root) -> str | None:
    found = _roots.get(id(root))
    if found is None or found[1]() is not root:
        return None
    return found[0]


def _remember(root: np.ndarray, path: str) -> None:
    key = id(root)
    _roots[key] = (path, weakref.ref(root, lambda _, key=key: _roots.pop(key, None)))
    _mapped[path] = weakref.ref(root)


def _remove_made() -> None:
    pid = os.getpid()
    for owner, path in _made:
        if owner == pid:
            _track(path, resource_tracker.unregister)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _track(path: str, action) -> None:
    """Register a file this process made with the resource tracker (``action`` its
    ``register``), or unregister it, as POSIX shared memory, which the tracker removes by its
    name in ``/dev/shm`` if this process dies with it registered. Files elsewhere (a system
    without ``/dev/shm``) are not tracked."""
    if os.path.dirname(path) == "/dev/shm":
        action("/" + os.path.basename(path), "shared_memory")
