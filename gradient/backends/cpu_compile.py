"""How gradient's CPU kernels are compiled (numba): one helper, one policy, for every kernel in
the project (:mod:`gradient.backends`, :mod:`gradient.quant`, :mod:`gradient.models`).

The policy, and why:

* ``cache=True``: the machine code is kept on disk (numba's cache, ``NUMBA_CACHE_DIR``), so a
  kernel is compiled once per installation and machine, not in every process; stamped with
  the content of every kernel file (:mod:`.kernel_cache`), not only its own, so that an edited
  helper in another file is not left out of the kernels compiled with its old code.
* **No fastmath flags at all.** With ``reassoc``, ``contract`` (FMA) and the like, LLVM may
  change a result's rounding, and numba keeps more than one optimised copy of the same kernel:
  the body of a ``parallel=True`` loop is compiled, loaded and run as a library of its own when
  it is compiled, while the copy that goes to the disk cache is the one linked into the caller
  and optimised again there. So the same call gave other bits from the cache than fresh (the
  int8 products of a GGUF model's Q4_1 weights, whose minimum term LLVM reassociated one way
  in one copy and another way in the other: logits off by 0.3 from the second run on). Without
  fastmath, every copy computes exactly what the source says, in every process and on every
  CPU (AVX2 or AVX-512 alike). ``tests/backends/test_compiled_cache.py`` checks it for every
  kernel.
* Sums therefore vectorise only where the source gives them independent lanes
  (:mod:`.cpu_reduce`), or across independent sums (attention's scores: many keys at once,
  each summed over head_dim in order).
* ``error_model="numpy"``: a division by zero gives inf/nan as in NumPy instead of raising,
  which also lets LLVM vectorise loops that divide (numba's default checks every divisor).
* ``parallel=True`` only where a kernel says so (numba's threads; see the kernel's docstring
  for why it pays), and ``inline=True`` for small helpers that numba should paste into their
  callers. Compiling a ``parallel=True`` kernel takes seconds; a kernel that Python threads
  run side by side instead (attention) needs none of that: ``nogil=True`` for every kernel, so
  a running kernel never holds the GIL.

Numbers in a kernel's arithmetic: numba types a Python literal as int64 or float64, and a
float32 combined with either is a float64 (``x[i] * 0`` is a float64 zero, ``1 / total`` a
float64 quotient). A float32 kernel holding such a literal computes in double: slower
(conversions, half-width vectors) and not the arithmetic of the NumPy composition it replaces.
So kernels take constants as arguments in the arrays' dtype (``one``, ``half``) or start a sum
from its first term; ``tests/backends/test_compiled_cache.py`` reads the compiled code of
every float32 kernel for it (the cache probe's first run, which compiles them all). A
kernel that accumulates in double on purpose (the norms' statistics) takes a float64 argument.

Types of arguments: a kernel is compiled again for every combination of argument types it is
called with, and each compile optimises again all the code it calls (numba links a callee's
code into its caller), so a product kernel's wrappers cost seconds each. Callers keep the types
few: a ``prange`` loop's index is an int64 where numba types the kernel and a uint64 in the
parallel body it makes of it, so a kernel given the index takes ``np.int64(c)`` (else it is
compiled for both); in ``i = 0; while ...: f(i)`` numba types the first call with the literal 0
(a second compile of f), so a tile's row steps through a ``range``; and numbers that a compiled
loop's source holds reach its kernels as ordinary int64s (:func:`.cpu_lowered.unliteral`), not
as literals of one value each.

Example::

    >>> @compile_kernel
    ... def double(x, two, out):   # two = x.dtype.type(2)
    ...     for i in range(x.size):
    ...         out[i] = two * x[i]
"""

from __future__ import annotations

import os
import time
import warnings

import numba
import numpy as np

from . import kernel_cache, lazy_linking

# kernels from numba's disk cache load without parsing their bitcode for linking first
lazy_linking.install()

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

# A few kernels call NumPy's BLAS inside ``numba.objmode()`` on purpose (a float product in a
# compiled decode loop), taking the GIL back for that call only; numba warns at every such
# compile that the block cannot run without the GIL, which is the intent.
warnings.filterwarnings("ignore", message="Code running in object mode won't allow parallel "
                        "execution despite nogil=True", category=numba.NumbaWarning)

def compile_kernel(fn=None, *, parallel: bool = False, inline: bool = False):
    """Compile ``fn`` with numba under the policy above; usable as ``@compile_kernel`` or
    ``@compile_kernel(parallel=True)``. There is deliberately no way to ask for fastmath."""
    if fn is None:
        return lambda f: compile_kernel(f, parallel=parallel, inline=inline)
    dispatcher = numba.njit(error_model="numpy", parallel=parallel, nogil=True,
                            inline="always" if inline else "never")(fn)
    kernel_cache.enable(dispatcher)       # cache=True, fresh for the helpers it calls too
    return dispatcher


def usable(*arrays) -> bool:
    """Whether every array is a float32/float64 NumPy array of one dtype."""
    dtype = arrays[0].dtype
    return dtype in FLOATS and all(isinstance(a, np.ndarray) and a.dtype == dtype for a in arrays)


_pool = None
_ready: dict = {}
_declined = 0     # how many times compiled_already has answered False


def compiled_already(dispatcher, args: tuple) -> bool:
    """Whether to call the kernel ``dispatcher`` on ``args`` now, or something that gives its
    bits without compiling it (a NumPy twin, or a ``parallel=True`` kernel's serial chunks on
    Python threads, :func:`in_threads`). Compiling takes seconds, and with
    ``GRADIENT_COMPILE_IN_BACKGROUND=1`` (the ``gradient`` commands, see
    :mod:`gradient.capture.background`) a first token should not wait for it: then, unless the
    kernel is compiled in this process or in numba's disk cache, a child process compiles it
    into the cache (:func:`compile_noted_in_a_child`: when a decode loop goes to a child, or
    at the first look-up again, :data:`RECHECK_SECONDS` later, whichever comes first) and this
    answers False until it is there (looked up again every :data:`RECHECK_SECONDS`).
    Otherwise True: the kernel is compiled here, as any other. Decided per kernel and kind of
    arguments.
    """
    global _declined
    key = (dispatcher, *((a.dtype.char, a.ndim, a.flags.c_contiguous, a.flags.writeable)
                         if isinstance(a, np.ndarray) else type(a) for a in args))
    ready = _ready.get(key)
    if ready is True:
        return True
    if ready is None and (dispatcher.signatures or os.environ.get(BACKGROUND) != "1"):
        _ready[key] = True
        return True
    now = time.monotonic()
    if ready is not None and now - ready < RECHECK_SECONDS:
        _declined += 1
        return False
    types = tuple(numba.typeof(a) for a in args)
    if in_disk_cache(dispatcher, types):
        _ready[key] = True
        return True
    if ready is None:
        py = dispatcher.py_func
        _deferred.append((py.__module__, py.__name__, types))
    elif _deferred:
        # noted a while ago and still not handed to a child (no decode loop went to one
        # since: a server's first batch step comes after its first request's loop)
        compile_noted_in_a_child()
    _ready[key] = now
    _declined += 1
    return False


def declined() -> int:
    """How many times :func:`compiled_already` has answered False in this process. Something
    that records which kernels ran (a captured step) compares it before and after: a
    recording made while a kernel was still compiling holds its stand-in, not the kernel.

    Example: ``before = declined(); run(); stand_ins_ran = declined() != before``
    """
    return _declined


#: How often a kernel that a child process is compiling is looked for in the disk cache.
RECHECK_SECONDS = 2.0


#: The environment variable that moves compiling out of the way of a first token.
BACKGROUND = "GRADIENT_COMPILE_IN_BACKGROUND"

_CHILD = r"""
import importlib, pickle, sys
import numba
numba.get_num_threads()   # numba's threading layer, which parallel kernels link against
for module, name, types in pickle.loads(bytes.fromhex(sys.stdin.read())):
    getattr(importlib.import_module(module), name).compile(types)
"""

_deferred: list = []     # (module, name, types) that a child is to compile
_children: list = []     # kept so that Python does not warn of children it did not wait for


def in_disk_cache(dispatcher, types) -> bool:
    """Whether numba's disk cache holds ``dispatcher``'s machine code for ``types`` (True where
    numba's internals moved: then it is compiled where it is called, as without a child).

    Read from the cache's index (the entry numba's own look-up finds, fresh for the source)
    and its data file's presence, not by loading the code: the caller loads it next, by
    calling the kernel, and loading it here first did that work twice (a captured step's
    compiled loop: about 60 of the 190 ms its first replay took)."""
    try:
        cache = dispatcher._cache
        if not getattr(cache, "_enabled", False):
            return False
        files = cache._cache_file
        name = files._load_index().get(
            cache._index_key(tuple(types), dispatcher.targetctx.codegen()))
        return name is not None and os.path.exists(files._data_path(name))
    except Exception:   # noqa: BLE001
        return True


def lower_priority() -> None:
    """In a child that compiles, before it starts: the tokens of its parent come first."""
    if hasattr(os, "nice"):
        os.nice(10)


def compile_noted_in_a_child() -> None:
    """Compile the kernels :func:`compiled_already` noted, in one child process at a lower
    priority, into numba's disk cache; nothing waits for it. Called once the first tokens are
    out (when a decode loop goes to its own child: see gradient.capture.background), so that
    the compile does not slow them down, and when a command ends (for what was noted since)."""
    import pickle
    import subprocess
    import sys
    if not _deferred:
        return
    jobs = pickle.dumps(list(_deferred)).hex().encode()
    _deferred.clear()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lower_priority)
    child.stdin.write(jobs)
    child.stdin.close()
    _children.append(child)


def in_threads(kernel, args: tuple, n_chunks: int, n_threads: int) -> None:
    """``kernel(*args, c, n_chunks)`` for every chunk ``c`` in range(n_chunks), on up to
    ``n_threads`` threads (the caller's among them), chunks dealt round-robin: the parallel
    split of a serial kernel (which releases the GIL, see the policy above) without compiling
    a ``parallel=True`` copy of it. A chunk's exception is raised here.

    Example: ``in_threads(_chunk_of_rows, (x, out), n_chunks=4, n_threads=2)``
    """
    global _pool
    n_threads = max(1, min(n_threads, n_chunks))
    if n_threads == 1:
        for c in range(n_chunks):
            kernel(*args, c, n_chunks)
        return
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor
        _pool = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1),
                                   thread_name_prefix="gradient-kernel")

    def chunks(first):
        for c in range(first, n_chunks, n_threads):
            kernel(*args, c, n_chunks)
    others = [_pool.submit(chunks, t) for t in range(1, n_threads)]
    try:
        chunks(0)
    finally:
        for other in others:
            other.result()
