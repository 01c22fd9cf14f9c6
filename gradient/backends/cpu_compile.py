"""How the CPU kernels are compiled (numba) and which arrays they take: shared by
:mod:`gradient.backends.cpu_kernels` and :mod:`gradient.backends.cpu_attention`.

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


def compile_kernel(fn=None, **options):
    """numba's njit as the kernels need it; usable as ``@compile_kernel`` or
    ``@compile_kernel(...)``.

    ``error_model="numpy"``: a division by zero gives inf/nan as in NumPy instead of raising,
    which also lets LLVM vectorise loops that divide (numba's default checks every divisor).
    Kernels stay serial: they stream memory, and on two cores numba's thread pool gained
    nothing while competing with OpenBLAS's spinning threads right after a matmul. (The
    exception, ``parallel=True``, is :mod:`.cpu_low_precision`, whose docstring says why.)
    ``cache=True``: the machine code is kept on disk, compiled once per installation.
    """
    if fn is None:
        return lambda f: compile_kernel(f, **options)
    return numba.njit(cache=True, error_model="numpy", **options)(fn)


def usable(*arrays) -> bool:
    """Whether every array is a float32/float64 NumPy array of one dtype."""
    dtype = arrays[0].dtype
    return dtype in FLOATS and all(isinstance(a, np.ndarray) and a.dtype == dtype for a in arrays)
