"""How gradient's CPU kernels are compiled (numba): one helper, one policy, for every kernel in
the project (:mod:`gradient.backends`, :mod:`gradient.quant`, :mod:`gradient.models`).

The policy, and why:

* ``cache=True``: the machine code is kept on disk (numba's cache, ``NUMBA_CACHE_DIR``), so a
  kernel is compiled once per installation and machine, not in every process.
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
  (:mod:`.cpu_reduce`), and dot products that are many rows times one vector (attention's
  scores) go to BLAS (``np.dot`` inside a kernel calls it), which no compile path can change.
* ``error_model="numpy"``: a division by zero gives inf/nan as in NumPy instead of raising,
  which also lets LLVM vectorise loops that divide (numba's default checks every divisor).
* ``parallel=True`` only where a kernel says so (numba's threads; see the kernel's docstring
  for why it pays), and ``inline=True`` for small helpers that numba should paste into their
  callers.

Numbers in a kernel's arithmetic: numba types a Python literal as int64 or float64, and a
float32 combined with either is a float64 (``x[i] * 0`` is a float64 zero, ``1 / total`` a
float64 quotient). A float32 kernel holding such a literal computes in double: slower
(conversions, half-width vectors) and not the arithmetic of the NumPy composition it replaces.
So kernels take constants as arguments in the arrays' dtype (``one``, ``half``) or start a sum
from its first term; ``tests/backends/test_cpu_kernels.py`` checks the compiled code for it. A
kernel that accumulates in double on purpose (the norms' statistics) takes a float64 argument.

Example::

    >>> @compile_kernel
    ... def double(x, two, out):   # two = x.dtype.type(2)
    ...     for i in range(x.size):
    ...         out[i] = two * x[i]
"""

from __future__ import annotations

import numba
import numpy as np

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

def compile_kernel(fn=None, *, parallel: bool = False, inline: bool = False):
    """Compile ``fn`` with numba under the policy above; usable as ``@compile_kernel`` or
    ``@compile_kernel(parallel=True)``. There is deliberately no way to ask for fastmath."""
    if fn is None:
        return lambda f: compile_kernel(f, parallel=parallel, inline=inline)
    return numba.njit(cache=True, error_model="numpy", parallel=parallel,
                      inline="always" if inline else "never")(fn)


def usable(*arrays) -> bool:
    """Whether every array is a float32/float64 NumPy array of one dtype."""
    dtype = arrays[0].dtype
    return dtype in FLOATS and all(isinstance(a, np.ndarray) and a.dtype == dtype for a in arrays)
