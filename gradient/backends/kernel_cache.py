"""numba's disk cache for gradient's kernels, kept fresh for the code a kernel calls in other
files.

numba keys a function's cached machine code on its own source file only (its content hash, in
numba 0.68; its time stamp before). But a kernel's machine code holds the code of every numba
function it calls, from whatever file: helpers inlined into it (:mod:`.cpu_simd`'s vector
operations, :mod:`.cpu_half`'s conversions), and callees, whose code numba links into their
callers. Edit such a helper and the kernels of other files load their old machine code from
the cache, and compute what the file no longer says: changing ``cpu_simd.prefetch_to_l2``
left ``cpu_float_rows._parallel`` a cache hit with the old code. An installed release does not
meet it (its files all change together); whoever edits a kernel's helper did, until the cache
was cleared by hand.

So every kernel's stamp here is its own file's, as numba makes it, with one stamp of the
whole kernel tree (:data:`KERNEL_PACKAGES`: the content of their Python files): a change to
any of them compiles every kernel again as it is next needed, and a kernel from the cache is
the code of the sources as they are. The cache's place and files are numba's own (its
locators, ``NUMBA_CACHE_DIR`` included); only the freshness test covers more. Compiled decode
steps, whose generated files call kernels of these packages, carry the same stamp in their
source (:mod:`gradient.capture.compiled`).

Processes that share the cache and start together (a test run's workers, the ranks of a job on
one machine, a server and the child that compiles for it) need the same kernels at about the
same time, and each compiled them: seconds to a minute of a core apiece, for one result. So a
kernel compiles for a signature under a lock of the cache's (a byte of a lock file beside its
index, ``fcntl`` record locks, which the system drops with a process that dies): a process
that finds another compiling the same kernel for the same types waits, then loads the machine
code from the cache. It waits at most :data:`WAIT_SECONDS` (a stopped process must not stop
the others), then compiles itself.

Example::

    >>> dispatcher = numba.njit(error_model="numpy")(fn)
    >>> kernel_cache.enable(dispatcher)     # as cache=True, stamped by the kernel tree
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import threading
import time

from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import CPUDispatcher
from numba.core.sigutils import normalize_signature

try:
    import fcntl
except ImportError:       # Windows: there every process compiles for itself
    fcntl = None

__all__ = ["enable", "tree_stamp", "compile_lock", "KERNEL_PACKAGES", "WAIT_SECONDS"]

#: The longest a process waits for another that compiles the same kernel for the same types.
WAIT_SECONDS = 600.0

_GRADIENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The directories whose Python files define gradient's numba kernels and their helpers.
KERNEL_PACKAGES = (os.path.join(_GRADIENT, "backends"), os.path.join(_GRADIENT, "quant"))


def tree_stamp(roots=KERNEL_PACKAGES) -> str:
    """A hash of the content of every ``.py`` file under ``roots`` (and of their paths under
    them): what changes when any of them changes. Read once per process for a set of roots.

    Example: ``tree_stamp()`` -> ``'3f9a...'`` (64 hex digits)"""
    return _stamp(tuple(os.path.abspath(r) for r in roots))


@functools.lru_cache(maxsize=None)
def _stamp(roots: tuple) -> str:
    digest = hashlib.sha256()
    for root in roots:
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
            for name in sorted(f for f in files if f.endswith(".py")):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, root).encode() + b"\0")
                with open(path, "rb") as f:
                    digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()


def enable(dispatcher, roots=KERNEL_PACKAGES) -> bool:
    """Give ``dispatcher`` (a numba CPU dispatcher made without ``cache=True``) numba's disk
    cache with a stamp that also covers every Python file under ``roots`` (see the module
    docstring): True. Where numba's caching classes are not as expected, numba's own cache
    (``cache=True``): False."""
    try:
        cache = _cache_class(tuple(os.path.abspath(r) for r in roots))(dispatcher.py_func)
    except Exception:   # noqa: BLE001  (numba's internals moved: its own cache then)
        dispatcher.enable_caching()
        return False
    dispatcher._cache = cache
    if type(dispatcher) is CPUDispatcher:
        dispatcher.__class__ = SharedCompileDispatcher
    return True


class SharedCompileDispatcher(CPUDispatcher):
    """numba's CPU dispatcher, compiling each signature under :func:`compile_lock`: a process
    that finds another compiling the same kernel for the same types loads its result from the
    disk cache instead of compiling it again."""

    def compile(self, sig):
        # numba's compiler lock first, the lock file's second, always in that order: a thread
        # waiting for a lock file never holds one that another thread here needs
        with global_compiler_lock:
            args = tuple(normalize_signature(sig)[0])
            if args in self.overloads:
                return super().compile(sig)
            with compile_lock(self, args):
                return super().compile(sig)


_lock_files: dict = {}      # path -> descriptor, open for the process's life (see below)
_lock_files_guard = threading.Lock()


@contextlib.contextmanager
def compile_lock(dispatcher, types: tuple):
    """Held while this process compiles ``dispatcher`` (a kernel with :func:`enable`'s cache)
    for the argument ``types``: other processes that want the same wait (up to
    :data:`WAIT_SECONDS`) and then find it in the disk cache. Gives whether it is held (not
    where the cache has no lock file or the system no ``fcntl``, or after the wait ran out).

    Example::

        >>> with compile_lock(kernel, (numba.float32[:, ::1],)):
        ...     kernel.compile((numba.float32[:, ::1],))
    """
    where = _lock_of(dispatcher, types)
    held = where is not None and _acquire(*where)
    try:
        yield held
    finally:
        if held:
            fcntl.lockf(where[0], fcntl.LOCK_UN, 1, where[1])


def _lock_of(dispatcher, types: tuple):
    """``(descriptor, byte)``: the byte of the kernel's lock file that stands for ``types``."""
    if fcntl is None:
        return None
    try:
        path = dispatcher._cache._cache_file._index_path + ".lock"
    except AttributeError:    # not enable()'s cache, or numba's internals moved
        return None
    with _lock_files_guard:
        fd = _lock_files.get(path)
        if fd is None:
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                return None
            # never closed: closing any descriptor of a file drops all of this process's
            # record locks on it
            _lock_files[path] = fd
    return fd, int(hashlib.sha256(str(types).encode()).hexdigest()[:7], 16)


def _acquire(fd: int, byte: int) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    pause = 0.01
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, byte)
            return True
        except OSError as error:
            # another process holds it; any other error (a file system without record locks):
            # compile without
            if error.errno not in (errno.EACCES, errno.EAGAIN) or time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(2 * pause, 0.25)


@functools.lru_cache(maxsize=None)
def _cache_class(roots: tuple):
    """numba's ``FunctionCache`` whose locators (numba's, in numba's order) stamp a function's
    source with the tree under ``roots`` too."""
    from numba.core.caching import FunctionCache

    base_impl = FunctionCache._impl_class

    def stamped(locator):
        def get_source_stamp(self):
            return (locator.get_source_stamp(self), _stamp(roots))
        return type(f"{locator.__name__.lstrip('_')}WithKernelTree", (locator,),
                    {"get_source_stamp": get_source_stamp})

    impl = type("KernelTreeCacheImpl", (base_impl,),
                {"_locator_classes": [stamped(c) for c in base_impl._locator_classes]})
    return type("KernelTreeCache", (FunctionCache,), {"_impl_class": impl})
