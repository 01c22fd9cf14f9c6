"""The CPU backend: the primitive contract on NumPy.

:class:`ArrayBackend` is written against an array module ``xp`` with NumPy's API, so the
CUDA backend can reuse it with CuPy and override only the kernels that differ.

float16 and bfloat16 are storage types here: NumPy has no half-precision BLAS and
ml_dtypes' bfloat16 has few fast loops, so arithmetic on them is computed in float32 and
rounded back to the storage type, which is also what PyTorch's CPU kernels do.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from .. import kernels
from ..errors import DivisionByZeroError
from .base import Backend
from .host_memory import keep_freed_memory, zero_pages

_LOW_PRECISION = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))
# Ops whose NumPy loops may warn (division by zero, log of 0, overflow): PyTorch is silent there,
# so they run under np.errstate. The others skip it, since entering errstate costs more than a
# small add.
_MAY_WARN = frozenset({"div", "floordiv", "mod", "fmod", "pow", "atan2", "exp", "expm1", "log",
                       "log2", "log10", "log1p", "sqrt", "reciprocal", "asin", "acos", "tan", "sigmoid",
                       "sinh", "cosh", "acosh", "atanh", "polygamma"})
# The special functions of scipy.special (cupyx.scipy.special on the GPU) behind unary ops
_SPECIAL_UNARY = ("gammaln", "digamma", "erfc", "erfinv", "ndtri", "log_ndtr", "i0", "i0e", "i1",
                  "i1e", "erfcx", "j0", "j1", "y0", "y1", "k0", "k1", "k0e", "k1e")
_F32 = np.dtype(np.float32)
_BF16 = np.dtype(ml_dtypes.bfloat16)
# Binary ops of two half-precision arrays that the CPU's ``half_binary`` kernel may take
_HALF_KERNEL_OPS = frozenset({"add", "mul"})


def _sigmoid(xp, x):
    # exp of a non-positive argument only, so large |x| neither overflows nor warns
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _erf(xp, x):
    from scipy.special import erf  # imported on first use: SciPy's import is slow
    return erf(x).astype(x.dtype, copy=False)


def _round_to(x, dtype):
    """float32 results rounded to a half-precision storage type; overflow gives inf silently.
    Large float32 arrays go to bfloat16 through the CPU's rounding kernel where there is one
    (ml_dtypes' loop is several times slower; the same bits)."""
    if dtype == _BF16 and x.dtype == _F32:
        rounded = kernels.call("round_to_bfloat16", "cpu", x)
        if rounded is not None:
            return rounded
    return as_dtype_of_pytorch(x, dtype)


def as_dtype_of_pytorch(x, dtype):
    """``x.astype(dtype)`` (a new array of an array module's) as PyTorch converts: values past
    a float type's range become infinities silently (NumPy warns), and float64 becomes float16
    through float32, two roundings, where NumPy (and CUDA) round once. Those differ for about
    one value in 20,000, the ones just past a midpoint of float16 that float32 rounds onto it:
    1 + 2**-11 + 2**-40 is 1.0 in PyTorch, 1.001 rounded once. (float64 to bfloat16 gives the
    same bits either way.)

    Example: ``as_dtype_of_pytorch(np.array([1 + 2**-11 + 2**-40]), np.float16)`` is [1.0]"""
    with np.errstate(over="ignore"):
        if x.dtype == np.float64 and dtype == np.float16:
            x = x.astype(_F32)
        return x.astype(dtype)


def _round_half_even(xp, x):
    return xp.round(x)  # NumPy rounds half to even, as torch.round does


class ArrayBackend(Backend):
    """Primitives implemented with a NumPy-compatible array module ``xp``."""

    def __init__(self, xp, name: str):
        self.xp = xp
        self.name = name
        self._array_type = xp.ndarray
        xp_ = xp
        self._unary = {
            "neg": xp_.negative, "abs": xp_.abs, "sign": xp_.sign, "exp": xp_.exp,
            "expm1": xp_.expm1, "log": xp_.log, "log2": xp_.log2, "log10": xp_.log10,
            "log1p": xp_.log1p, "sqrt": xp_.sqrt,
            "sin": xp_.sin, "cos": xp_.cos, "tan": xp_.tan, "tanh": xp_.tanh,
            "sigmoid": lambda x: _sigmoid(xp_, x), "floor": xp_.floor, "ceil": xp_.ceil,
            "round": lambda x: _round_half_even(xp_, x), "trunc": xp_.trunc,
            "reciprocal": lambda x: xp_.reciprocal(x) if x.dtype.kind == "f" else 1 / x,
            "erf": lambda x: _erf(xp_, x), "logical_not": xp_.logical_not,
            "isnan": xp_.isnan, "isinf": xp_.isinf, "isfinite": xp_.isfinite,
            "bitwise_not": xp_.invert, "asin": xp_.arcsin, "acos": xp_.arccos, "atan": xp_.arctan,
            "sinh": xp_.sinh, "cosh": xp_.cosh, "asinh": xp_.arcsinh, "acosh": xp_.arccosh,
            "atanh": xp_.arctanh, "signbit": xp_.signbit,
        }
        self._unary.update({name: self._special_function(name) for name in _SPECIAL_UNARY})
        self._unary["airy_ai"] = self._airy_ai
        self._binary = {
            "add": xp_.add, "sub": xp_.subtract, "mul": xp_.multiply, "div": xp_.true_divide,
            "floordiv": self._floordiv, "mod": self._mod, "fmod": self._fmod, "pow": xp_.power,
            "maximum": xp_.maximum, "minimum": xp_.minimum, "atan2": xp_.arctan2,
            "eq": xp_.equal, "ne": xp_.not_equal, "lt": xp_.less, "le": xp_.less_equal,
            "gt": xp_.greater, "ge": xp_.greater_equal, "logical_and": xp_.logical_and,
            "logical_or": xp_.logical_or, "logical_xor": xp_.logical_xor,
            "bitwise_and": xp_.bitwise_and, "bitwise_or": xp_.bitwise_or,
            "bitwise_xor": xp_.bitwise_xor, "polygamma": self._special_function("polygamma"),
            "zeta": self._special_function("zeta"),
            "gammainc": self._special_function("gammainc"),
            "gammaincc": self._special_function("gammaincc"),
        }

    def _special_module(self):
        """scipy.special, imported on first use (SciPy's import is slow); CuPy's backend
        answers cupyx.scipy.special."""
        import scipy.special
        return scipy.special

    def _airy_ai(self, x):
        """Airy's Ai (the first of the four functions ``scipy.special.airy`` computes)."""
        return self._special_module().airy(x)[0].astype(x.dtype, copy=False)

    def _special_function(self, name):
        """The special function ``name`` keeping its first floating operand's dtype (SciPy
        computes some float32 inputs in float64)."""
        def fn(*args):
            return getattr(self._special_module(), name)(*args).astype(args[-1].dtype, copy=False)
        return fn

    # ------------------------------------------------------------------ creation and transfer
    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=dtype.numpy)

    def full(self, shape, value, dtype):
        if isinstance(value, (int, float)) and value == 0:
            # calloc: fresh pages (zeroed by the kernel on first touch) above the mmap threshold,
            # reused and cleared heap memory below it (placeholders: host_memory.untouched_zeros)
            return self.xp.zeros(shape, dtype=dtype.numpy)
        if dtype.numpy in _LOW_PRECISION:
            with np.errstate(over="ignore"):  # a value beyond float16's range is inf, silently
                return self.xp.full(shape, value, dtype=dtype.numpy)
        return self.xp.full(shape, value, dtype=dtype.numpy)

    def arange(self, start, stop, step, dtype):
        if dtype.numpy in _LOW_PRECISION:
            return self.xp.arange(start, stop, step, dtype=np.float64).astype(dtype.numpy)
        return self.xp.arange(start, stop, step, dtype=dtype.numpy)

    def from_numpy(self, array):
        return self.xp.asarray(array)

    def to_numpy(self, x):
        return np.asarray(x)

    # ------------------------------------------------------------------ random numbers
    def generator(self, seed):
        return np.random.Generator(np.random.PCG64(seed))

    def uniform(self, gen, shape, low, high, dtype):
        out = gen.random(shape, dtype=np.float64 if dtype.itemsize == 8 else np.float32)
        return self.xp.asarray((out * (high - low) + low).astype(dtype.numpy, copy=False))

    def normal(self, gen, shape, mean, std, dtype):
        out = gen.standard_normal(shape, dtype=np.float64 if dtype.itemsize == 8 else np.float32)
        return self.xp.asarray((out * std + mean).astype(dtype.numpy, copy=False))

    def randint(self, gen, low, high, shape, dtype):
        return self.xp.asarray(gen.integers(low, high, size=shape).astype(dtype.numpy, copy=False))

    def permutation(self, gen, n, dtype):
        return self.xp.asarray(gen.permutation(n).astype(dtype.numpy, copy=False))

    # ------------------------------------------------------------------ elementwise
    def unary(self, op, x):
        fn = self._unary[op]
        low = x.dtype in _LOW_PRECISION
        if op in _MAY_WARN:
            with np.errstate(all="ignore"):
                out = fn(x.astype(_F32) if low else x)
        else:
            out = fn(x.astype(_F32) if low else x)
        if low and out.dtype.kind == "f":
            out = _round_to(out, x.dtype)
        return out if type(out) is self._array_type else self.xp.asarray(out)

    def binary_(self, op, a, b):
        self._binary[op](a, b, out=a)
        return a

    def binary(self, op, a, b):
        fn = self._binary[op]
        # a float16/bfloat16 operand may come with a float32 0-d scalar (see the contract):
        # the result keeps the half-precision storage type
        dtype = a.dtype if a.dtype in _LOW_PRECISION else b.dtype
        low = dtype in _LOW_PRECISION
        if low:
            if op in _HALF_KERNEL_OPS:    # one compiled call where the CPU has one (same bits)
                out = kernels.call("half_binary", "cpu", op, a, b)
                if out is not None:
                    return out
            a, b = a.astype(_F32), b.astype(_F32)
        if op in _MAY_WARN:
            with np.errstate(all="ignore"):
                out = fn(a, b)
        else:
            out = fn(a, b)
        if low and out.dtype.kind == "f":
            out = _round_to(out, dtype)
        return out if type(out) is self._array_type else self.xp.asarray(out)

    def _floordiv(self, a, b):
        if a.dtype.kind in "iu" and not b.all():
            raise DivisionByZeroError("floor_divide: integer division by zero")
        return self.xp.floor_divide(a, b)

    def _mod(self, a, b):
        if a.dtype.kind in "iu" and not b.all():
            raise DivisionByZeroError("remainder: integer division by zero")
        return self.xp.remainder(a, b)  # sign of the divisor, like torch.remainder

    def _fmod(self, a, b):
        if a.dtype.kind in "iu" and not b.all():
            raise DivisionByZeroError("fmod: integer division by zero")
        return self.xp.fmod(a, b)  # sign of the dividend, like torch.fmod

    def where(self, cond, a, b):
        return self.xp.asarray(self.xp.where(cond, a, b))

    def cast(self, x, dtype):
        if dtype.numpy in _LOW_PRECISION:
            return _round_to(x, dtype.numpy) if x.dtype != dtype.numpy else x
        return x.astype(dtype.numpy, copy=False)

    # ------------------------------------------------------------------ reductions and scans
    def reduce(self, op, x, axis, keepdims):
        xp = self.xp
        if op in ("argmax", "argmin"):
            fn = xp.argmax if op == "argmax" else xp.argmin
            src = x.astype(_F32) if x.dtype in _LOW_PRECISION else x
            return xp.asarray(fn(src, axis=axis, keepdims=keepdims)).astype(np.int64, copy=False)
        if op in ("sum", "prod"):
            fn = xp.sum if op == "sum" else xp.prod
            if x.dtype in _LOW_PRECISION:
                return xp.asarray(fn(x, axis=axis, keepdims=keepdims, dtype=_F32)).astype(x.dtype)
            if x.dtype.kind in "biu":  # integer and bool sums accumulate in int64, like PyTorch
                return xp.asarray(fn(x, axis=axis, keepdims=keepdims, dtype=np.int64))
            return xp.asarray(fn(x, axis=axis, keepdims=keepdims))
        fn = {"max": xp.max, "min": xp.min, "any": xp.any, "all": xp.all}[op]
        return xp.asarray(fn(x, axis=axis, keepdims=keepdims))

    def cumsum(self, x, axis):
        if x.dtype in _LOW_PRECISION:
            return self.xp.cumsum(x, axis=axis, dtype=_F32).astype(x.dtype)
        if x.dtype.kind in "biu":
            return self.xp.cumsum(x, axis=axis, dtype=np.int64)
        return self.xp.cumsum(x, axis=axis)

    # ------------------------------------------------------------------ linear algebra
    def matmul(self, a, b):
        if a.dtype in _LOW_PRECISION:  # no half-precision BLAS on the CPU: float32 compute
            return self.xp.matmul(a.astype(_F32), b.astype(_F32)).astype(a.dtype)
        return self.xp.asarray(self.xp.matmul(a, b))

    def einsum(self, equation, *operands):
        dtype = operands[0].dtype
        if dtype in _LOW_PRECISION:
            ops = [o.astype(_F32) for o in operands]
            return self.xp.einsum(equation, *ops, optimize=True).astype(dtype)
        # planning the contraction (and so reaching BLAS) costs ~20 us: worth it past tiny inputs
        optimize = len(operands) > 2 or max(o.size for o in operands) > 4096
        return self.xp.asarray(self.xp.einsum(equation, *operands, optimize=optimize))

    # ------------------------------------------------------------------ dense decompositions
    # xp.linalg (NumPy's or CuPy's) factors whole batches at once. It raises LinAlgError for the
    # whole batch when one matrix is singular (or not positive-definite); only then do the
    # matrices go one by one through SciPy's LAPACK wrappers, on the host, to learn which ones
    # failed and at which step (the ``info`` of the contract).
    def _linalg_raises(self):
        """A context under which xp.linalg raises LinAlgError for a failed factorization
        (NumPy always does; CuPy only when told, see the CUDA backend)."""
        import contextlib
        return contextlib.nullcontext()

    def _no_failures(self, batch_shape):
        return self.xp.zeros(batch_shape, dtype=np.int32)

    def solve(self, a, b):
        try:
            with self._linalg_raises():
                return self.xp.asarray(self.xp.linalg.solve(a, b)), self._no_failures(a.shape[:-2])
        except np.linalg.LinAlgError:
            return self._factor_one_by_one("getrf", a, b)

    def cholesky(self, a):
        try:
            with self._linalg_raises():
                return self.xp.asarray(self.xp.linalg.cholesky(a)), self._no_failures(a.shape[:-2])
        except np.linalg.LinAlgError:
            return self._factor_one_by_one("potrf", a)

    def _factor_one_by_one(self, factor, a, b=None):
        """``solve`` (factor "getrf") or ``cholesky`` ("potrf") matrix by matrix on the host, with
        LAPACK's info for each; a singular matrix's solution is NaN, as the contract says."""
        from scipy.linalg import lapack
        a_host = self.to_numpy(a)
        n = a_host.shape[-1]
        mats = a_host.reshape((-1, n, n))
        info = np.zeros(len(mats), np.int32)
        if factor == "getrf":
            b_host = self.to_numpy(b)
            rhs = b_host.reshape((-1,) + b_host.shape[-2:])
            out = np.full(rhs.shape, np.nan, a_host.dtype)
            for i, m in enumerate(mats):
                getrf, getrs = lapack.get_lapack_funcs(("getrf", "getrs"), (m,))
                lu, piv, info[i] = getrf(m)
                if info[i] == 0:
                    out[i] = getrs(lu, piv, rhs[i])[0]
            out = out.reshape(b_host.shape)
        else:
            out = np.empty_like(mats)
            for i, m in enumerate(mats):
                (potrf,) = lapack.get_lapack_funcs(("potrf",), (m,))
                c, info[i] = potrf(m, lower=True, clean=True)
                out[i] = np.tril(c)
            out = out.reshape(a_host.shape)
        return self.xp.asarray(out), self.xp.asarray(info.reshape(a_host.shape[:-2]))

    def solve_triangular(self, a, b, upper, unitriangular):
        # SciPy on the host (a no-op transfer for NumPy); SciPy >= 1.15 takes batches
        from scipy.linalg import solve_triangular
        from scipy.linalg.blas import get_blas_funcs
        a_host, b_host = self.to_numpy(a), self.to_numpy(b)
        try:
            x = solve_triangular(a_host, b_host, lower=not upper, unit_diagonal=unitriangular,
                                 check_finite=False)
        except np.linalg.LinAlgError:
            # a zero on the diagonal: trsm (no singularity check) gives PyTorch's inf/NaN result
            mats, rhs = a_host.reshape((-1,) + a_host.shape[-2:]), b_host.reshape((-1,) + b_host.shape[-2:])
            x = np.empty(rhs.shape, a_host.dtype)
            with np.errstate(all="ignore"):
                for i, (m, r) in enumerate(zip(mats, rhs)):
                    (trsm,) = get_blas_funcs(("trsm",), (m, r))
                    x[i] = trsm(1.0, m, r, lower=not upper, diag=int(unitriangular))
            x = x.reshape(b_host.shape)
        return self.xp.asarray(x.astype(a_host.dtype, copy=False))

    def det(self, a):
        return self.xp.asarray(self.xp.linalg.det(a))

    def slogdet(self, a):
        sign, logabsdet = self.xp.linalg.slogdet(a)
        return self.xp.asarray(sign), self.xp.asarray(logabsdet)

    def qr(self, a, complete):
        q, r = self.xp.linalg.qr(a, mode="complete" if complete else "reduced")
        return self.xp.asarray(q), self.xp.asarray(r)

    def eigh(self, a, upper):
        try:
            w, v = self.xp.linalg.eigh(a, UPLO="U" if upper else "L")
        except np.linalg.LinAlgError as e:
            from ..errors import LinAlgError
            raise LinAlgError(f"linalg.eigh: the eigenvalue algorithm did not converge ({e}); "
                              "check the input for inf or NaN") from None
        return self.xp.asarray(w), self.xp.asarray(v)

    def svd(self, a, full_matrices):
        try:
            u, s, vh = self.xp.linalg.svd(a, full_matrices=full_matrices)
        except np.linalg.LinAlgError as e:
            from ..errors import LinAlgError
            raise LinAlgError(f"linalg.svd: the SVD algorithm did not converge ({e}); check the "
                              "input for inf or NaN") from None
        return self.xp.asarray(u), self.xp.asarray(s), self.xp.asarray(vh)

    def matrix_exp(self, a):
        from scipy.linalg import expm   # on the host; SciPy >= 1.9 takes batches
        a_host = self.to_numpy(a)
        if a_host.size == 0:
            return self.xp.asarray(a_host.copy())
        return self.xp.asarray(expm(a_host).astype(a_host.dtype, copy=False))

    # ------------------------------------------------------------------ views
    def reshape(self, x, shape):
        return x.reshape(shape)

    def permute(self, x, axes):
        return x.transpose(axes)

    def broadcast_to(self, x, shape):
        return self.xp.broadcast_to(x, shape)

    def windows(self, x, axes, sizes, steps, dilations):
        shape, strides = list(x.shape), list(x.strides)
        win_shape, win_strides = [], []
        for ax, k, s, d in zip(axes, sizes, steps, dilations):
            span = d * (k - 1) + 1
            shape[ax] = max((x.shape[ax] - span) // s + 1, 0)
            win_shape.append(k)
            win_strides.append(x.strides[ax] * d)
            strides[ax] = x.strides[ax] * s
        return self._read_only_view(x, tuple(shape) + tuple(win_shape),
                                    tuple(strides) + tuple(win_strides))

    def _read_only_view(self, x, shape, strides):
        # read-only: overlapping windows share elements, so a write through them is refused
        return self.xp.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)

    # ------------------------------------------------------------------ copies
    def copy(self, x):
        return x.copy()

    def contiguous(self, x):
        return self.xp.asarray(x, order="C")  # ascontiguousarray would make a 0-d array 1-d

    def concatenate(self, xs, axis):
        return self.xp.concatenate(xs, axis=axis)

    def pad(self, x, widths, mode, value):
        if mode == "constant":
            return self.xp.pad(x, widths, mode="constant", constant_values=value)
        return self.xp.pad(x, widths, mode=mode)

    # ------------------------------------------------------------------ indexing
    def getitem(self, x, index):
        return self.xp.asarray(x[index])

    def setitem(self, x, index, value):
        x[index] = value

    def index_add(self, x, index, value):
        if not kernels.call("index_add_rows", self, x, index, value):   # the embedding
            self.xp.add.at(x, index, value)                                # gradient; add.at is slow

    def take_along_axis(self, x, index, axis):
        return self.xp.take_along_axis(x, index, axis=axis)

    def scatter_add(self, x, axis, index, src):
        self.xp.add.at(x, self._along_axis_index(index, axis), src)

    def put_along_axis(self, x, index, values, axis):
        x[self._along_axis_index(index, axis)] = values

    def _along_axis_index(self, index, axis):
        """Full fancy index tuple that addresses x[..., index, ...] along ``axis``."""
        grids = list(self.xp.ogrid[tuple(slice(n) for n in index.shape)]) if index.ndim else []
        grids[axis] = index
        return tuple(grids)

    def sort(self, x, axis, descending, stable):
        xp = self.xp
        src = x.astype(_F32) if x.dtype in _LOW_PRECISION else x
        if descending:
            # negate to sort descending while keeping the stable order among ties
            key = ~src if src.dtype.kind in "iu" else (~src if src.dtype.kind == "b" else -src)
            idx = xp.argsort(key, axis=axis, kind="stable")
        else:
            idx = xp.argsort(src, axis=axis, kind="stable")
        return xp.take_along_axis(x, idx, axis=axis), idx.astype(np.int64, copy=False)

    def nonzero(self, x):
        return self.xp.stack(self.xp.nonzero(x), axis=-1).astype(np.int64).reshape(-1, x.ndim)

    def searchsorted(self, sorted_rows, values, right=True):
        xp = self.xp
        side = "right" if right else "left"
        return xp.stack([xp.searchsorted(r, v, side=side) for r, v in zip(sorted_rows, values)])


class NumpyBackend(ArrayBackend):
    """The CPU backend: :class:`ArrayBackend` on NumPy. Its fused kernels (numba's, in
    :mod:`gradient.backends.cpu_kernels` and beside it) are in :mod:`gradient.kernels`'
    registry under the backend kind ``"cpu"``."""

    def full(self, shape, value, dtype):
        if isinstance(value, (int, float)) and value == 0:
            pages = zero_pages(shape, dtype.numpy)  # placeholders: see host_memory.untouched_zeros
            if pages is not None:
                return pages
        return super().full(shape, value, dtype)

    def reduce(self, op, x, axis, keepdims):
        if op == "sum":
            out = _sum_of_rows(x, axis, keepdims)
            if out is not None:
                return out
        return super().reduce(op, x, axis, keepdims)


def _sum_of_rows(x, axis, keepdims):
    """The sum over the leading axes of a C-contiguous float32/float64 array, as ``ones @ rows``
    (None for other reductions). Summing down the rows of a (rows, width) matrix is what the
    engine does for every bias gradient; NumPy's reduction adds one row at a time, while BLAS's
    matrix-vector product streams the matrix once, about twice as fast on (1024, 512)."""
    if (type(axis) is not tuple or not 0 < len(axis) < x.ndim or axis != tuple(range(len(axis)))
            or x.dtype not in _FLOATS or not x.flags.c_contiguous):
        return None
    lead = len(axis)
    rows = math.prod(x.shape[:lead])
    if rows < 16:
        return None
    out = np.ones(rows, x.dtype) @ x.reshape(rows, -1)
    return out.reshape((1,) * lead + x.shape[lead:] if keepdims else x.shape[lead:])


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _load_cpu_kernels():
    """Import the CPU kernel modules, which register themselves: on the first lookup only, since
    numba's import costs a few hundred milliseconds."""
    from . import (cpu_attention, cpu_fma, cpu_kernels, cpu_layout,  # noqa: F401
                   cpu_low_precision, cpu_lowered)


kernels.add_loader("cpu", _load_cpu_kernels, needs=("numba", "llvmlite"))
cpu_backend = NumpyBackend(np, "cpu")
keep_freed_memory()  # large temporaries reuse heap memory instead of fresh pages (see host_memory)
