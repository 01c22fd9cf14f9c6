"""Products with bfloat16 and float16 weights on the CPU that read the weight in place.

NumPy has no half-precision BLAS, so the backend computes a bfloat16 or float16 ``x @ W.T``
in float32: it converts the whole weight to a float32 copy on every call, then runs a float32
GEMM. For a few rows of ``x`` (decoding a token) the conversion is the whole cost: it reads
the weight, writes twice its size and reads that again, once per token (a bfloat16 GPT-2
decoded 7 times slower than in float32). Here the weight is read once, at half the bytes of
float32: a weight stored as rows (out, in) by :mod:`.cpu_float_rows` (widened in registers);
one stored transposed, (in, out) as GPT-2's Conv1D, input row by input row, each widened into
a small scratch row (exactly: see :func:`_widen`) and added times x into the output columns.

The arithmetic is the float32 product of the exactly widened values, as the backend's path
computes it; only the order of the float32 sums differs (as between two BLAS libraries).

Unlike the other CPU kernels this one runs on numba's threads (``parallel=True``): a
half-precision decode step runs no float32 BLAS products, whose spinning threads it would
compete with, and two threads read memory twice as fast as one (measured on GPT-2's
matrices: 31 against 16 GB/s).

Example::

    >>> y = low_precision_linear(x, weight)   # x (1, 768), weight (2304, 768) bfloat16
    >>> y.dtype, y.shape
    (dtype('float32'), (1, 2304))
"""

from __future__ import annotations

import numba
import numpy as np

from ..kernels.registry import register
from .cpu_compile import compile_kernel as _compile
from .cpu_float_rows import float_rows_product
from .cpu_half import HALF_DTYPES, as_bits, widen

#: Up to this many rows of x the kernel runs for a weight stored transposed (GPT-2's Conv1D);
#: above it, the float32 GEMM of the converted weight, whose conversion is then shared by
#: enough rows (measured on GPT-2's 3072 x 768 matrices: the kernel took 0.5 of the time at 1
#: row, 0.65-0.8 at 6, as long at 8). A weight stored as rows goes to
#: :mod:`.cpu_float_rows` with any number of rows.
MAX_ROWS = 6

@_compile(inline=True)
def _widen(bits, scratch):
    """``scratch`` (float32) = the 16-bit floats whose bits are ``bits`` (float16 as uint16,
    bfloat16 as int16: :mod:`.cpu_half`), widened exactly: bfloat16 is the top half of a
    float32; float16 by LLVM's own conversion (F16C's vcvtph2ps, 8 values an instruction,
    where the CPU has it; exact for every value, infinities and NaNs included)."""
    for k in range(bits.shape[0]):
        scratch[k] = widen(bits[k])


@_compile   # the loop over output columns vectorises as it is: each is a lane
def _columns(x, wt_bits, partial, k0, k1, widened):
    """partial = x[:, k0:k1] @ float32(wt[k0:k1]) for a weight stored transposed, (in, out)
    (GPT-2's Conv1D layout): per input k, the widened row k times x[:, k], added. A range of
    whole rows is one contiguous stretch of memory."""
    M = x.shape[0]
    N = wt_bits.shape[1]
    for i in range(M):
        for n in range(N):
            partial[i, n] = 0
    for k in range(k0, k1):
        _widen(wt_bits[k], widened)
        for i in range(M):
            a = x[i, k]
            acc = partial[i]
            for n in range(N):
                acc[n] += a * widened[n]


@_compile(parallel=True)
def _parallel(x, wt_bits, out, n_chunks):
    # chunks of input rows, each summed apart, then added in chunk order
    K, N = wt_bits.shape
    step = (K + n_chunks - 1) // n_chunks
    partials = np.empty((n_chunks, x.shape[0], N), np.float32)
    for c in numba.prange(n_chunks):
        _columns(x, wt_bits, partials[c], c * step, min(K, (c + 1) * step),
                 np.empty(N, np.float32))
    out[:] = partials[0]
    for c in range(1, n_chunks):
        out += partials[c]


@register("low_precision_linear", "cpu", "numba")
def low_precision_linear(x, weight, bias=None):
    """``x @ weight.T (+ bias)`` in float32 for a bfloat16 or float16 ``weight`` (out, in),
    C-contiguous (any rows of x) or the transpose of a C-contiguous (in, out) array (up to
    :data:`MAX_ROWS`), x (rows, in) widened exactly to
    float32: a float32 (rows, out) array, the bias (out,) added in float32 after the product,
    or None for what the kernel does not take (the caller then converts the weight and runs
    the GEMM). Without a bias, x of the weight's type and the weight stored as rows: the
    product already rounded to that type (the op's one rounding, made as each value is
    stored)."""
    if not _takes(x, weight) or (bias is not None and bias.shape != (weight.shape[0],)):
        return None
    if weight.flags.c_contiguous:     # rows of w (out, in): gradient.backends.cpu_float_rows
        rounded = bias is None and x.dtype == weight.dtype
        out = float_rows_product(x, weight, rounded=rounded)
        if out is None or rounded:
            return out
    else:                             # (in, out) stored, GPT-2's Conv1D: columns, here
        bits = as_bits(weight.T)
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty((x.shape[0], weight.shape[0]), np.float32)
        n_chunks = min(bits.shape[0], 2 * numba.get_num_threads())
        _parallel(x32, bits, out, n_chunks)
    if bias is not None:
        out += bias.astype(np.float32)
    return out


def _takes(x, weight) -> bool:
    return (isinstance(x, np.ndarray) and isinstance(weight, np.ndarray)
            and weight.dtype in HALF_DTYPES and weight.ndim == 2
            and (weight.flags.c_contiguous or weight.T.flags.c_contiguous)
            and weight.shape[0] > 0 and weight.shape[1] > 0
            and x.ndim == 2 and x.shape[1] == weight.shape[1]
            and 0 < x.shape[0] and (weight.flags.c_contiguous or x.shape[0] <= MAX_ROWS)
            and (x.dtype in HALF_DTYPES or x.dtype == np.float32))
