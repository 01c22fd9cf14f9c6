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

Example::

    >>> dispatcher = numba.njit(error_model="numpy")(fn)
    >>> kernel_cache.enable(dispatcher)     # as cache=True, stamped by the kernel tree
"""

from __future__ import annotations

import functools
import hashlib
import os

__all__ = ["enable", "tree_stamp", "KERNEL_PACKAGES"]

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
    return True


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
