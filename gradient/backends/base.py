"""The backend contract: the primitives every device must provide.

A backend stores arrays and runs a small set of primitive kernels on them. Everything
else in gradient -- every differentiable op, every layer, every model -- is written on top
of these primitives, so a new device that implements this class gets all of it.

The primitives take and return the backend's own arrays (``numpy.ndarray`` on the CPU).
Arrays expose ``.shape``, ``.ndim``, ``.size``, ``.dtype`` (a NumPy dtype) and ``.strides``.
dtypes passed in are :class:`gradient.dtypes.DType` objects.

Optional fused fast paths (softmax, norms, attention, quantized matmul) are not methods: a
backend registers them in :mod:`gradient.kernels` under declared op names and the backend's
kind (its ``name`` before any ``:index``), and ``gradient.ops`` falls back to the composition
of primitives when a backend has none, or its kernel declines an input.
"""

from __future__ import annotations

from typing import Any, Sequence

# Elementwise primitives, by name. Unary ops keep the dtype of a floating input.
UNARY_OPS = frozenset({
    "neg", "abs", "sign", "exp", "expm1", "log", "log2", "log10", "log1p", "sqrt", "sin", "cos",
    "tan", "tanh", "sigmoid", "floor", "ceil", "round", "trunc", "reciprocal", "erf", "logical_not", "isnan",
    "isinf", "isfinite", "bitwise_not", "asin", "acos", "atan",
    # hyperbolic and special functions (scipy.special's names; signbit gives bool)
    "sinh", "cosh", "asinh", "acosh", "atanh", "signbit", "gammaln", "digamma", "erfc", "erfinv",
    "ndtri", "log_ndtr", "i0", "i0e", "i1", "i1e", "erfcx",
    # Bessel functions of the first and second kinds, modified ones of the second kind (and
    # exponentially scaled), and Airy's Ai: torch.special's, forward only
    "j0", "j1", "y0", "y1", "k0", "k1", "k0e", "k1e", "airy_ai",
})
BINARY_OPS = frozenset({
    "add", "sub", "mul", "div", "floordiv", "mod", "fmod", "pow", "maximum", "minimum", "atan2",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
    "bitwise_and", "bitwise_or", "bitwise_xor",
    "polygamma",  # polygamma(n, x): the order n as an array of x's dtype
    "zeta",       # the Hurwitz zeta function zeta(x, q) (scipy.special.zeta's)
    "gammainc", "gammaincc",   # regularized lower / upper incomplete gamma P(a, x), Q(a, x)
})
REDUCE_OPS = frozenset({"sum", "prod", "max", "min", "argmax", "argmin", "any", "all"})


class Backend:
    """Primitive kernels for one kind of device. Subclasses implement every method below."""

    #: the device this backend serves, as a device string: ``"cpu"``, ``"cuda:1"`` (one backend
    #: per GPU)
    name: str = "abstract"

    # ------------------------------------------------------------------ creation and transfer
    def empty(self, shape: tuple, dtype) -> Any:
        raise NotImplementedError

    def full(self, shape: tuple, value, dtype) -> Any:
        raise NotImplementedError

    def arange(self, start, stop, step, dtype) -> Any:
        raise NotImplementedError

    def from_numpy(self, array) -> Any:
        """Copy (or share, on the CPU) a NumPy array into backend storage."""
        raise NotImplementedError

    def to_numpy(self, x) -> Any:
        """A NumPy array with the contents of ``x`` (shares memory on the CPU)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ random numbers
    def generator(self, seed: int) -> Any:
        """A random generator; every random primitive takes one explicitly."""
        raise NotImplementedError

    def uniform(self, gen, shape, low, high, dtype) -> Any:
        raise NotImplementedError

    def normal(self, gen, shape, mean, std, dtype) -> Any:
        raise NotImplementedError

    def randint(self, gen, low, high, shape, dtype) -> Any:
        raise NotImplementedError

    def permutation(self, gen, n, dtype) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------------ elementwise
    def unary(self, op: str, x) -> Any:
        """One of :data:`UNARY_OPS` applied elementwise."""
        raise NotImplementedError

    def binary_(self, op: str, a, b) -> Any:
        """``binary(op, a, b)`` written into ``a``, which is returned (``b`` broadcasts to ``a``
        and has its float32 or float64 dtype; ``op`` is ``add``, ``sub``, ``mul`` or ``div``):
        for an op writing into an array it has just made, or owns, instead of making a new one
        (a bias added to a product, gradients scaled by clipping)."""
        raise NotImplementedError

    def binary(self, op: str, a, b) -> Any:
        """One of :data:`BINARY_OPS` with broadcasting; both operands have the same dtype.

        ``floordiv`` rounds toward -inf, ``mod`` takes the sign of the divisor (Python's ``%``) and
        ``fmod`` the sign of the dividend (C's ``fmod``); integer division by zero raises
        ZeroDivisionError in all three.
        """
        raise NotImplementedError

    def where(self, cond, a, b) -> Any:
        raise NotImplementedError

    def cast(self, x, dtype) -> Any:
        """``x`` converted to ``dtype`` (returns ``x`` itself when the dtype already matches)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ reductions and scans
    def reduce(self, op: str, x, axis: tuple | int | None, keepdims: bool) -> Any:
        """One of :data:`REDUCE_OPS`; ``argmax``/``argmin`` take a single axis or None.

        Sums and products of float16/bfloat16 accumulate in float32.
        """
        raise NotImplementedError

    def cumsum(self, x, axis: int) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------------ linear algebra
    def matmul(self, a, b) -> Any:
        """Batched, broadcasting matmul with NumPy's rules; float32 accumulation for low precision."""
        raise NotImplementedError

    def einsum(self, equation: str, *operands) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------------ dense decompositions (LAPACK)
    # float32/float64 stacks of matrices (..., m, n); operands of two-argument primitives come
    # with their batch dimensions already broadcast to one shape. ``info`` arrays are int32 of
    # the batch shape, LAPACK's convention: 0 where the matrix was fine, k > 0 where it failed
    # at (1-based) step k. Failures are reported through ``info``, never raised, so that the
    # ``*_ex`` ops can return them; non-convergence (eigh, svd) raises errors.LinAlgError.
    def solve(self, a, b) -> tuple[Any, Any]:
        """``(x, info)`` with ``a @ x == b`` for square ``a`` (..., n, n) and ``b`` (..., n, k);
        ``x`` is NaN where ``a`` is singular (info > 0: a zero pivot of its LU factorization)."""
        raise NotImplementedError

    def solve_triangular(self, a, b, upper: bool, unitriangular: bool) -> Any:
        """``x`` with ``a @ x == b``, reading only the upper or lower triangle of ``a`` (and taking
        its diagonal as ones when ``unitriangular``); no check for singularity (inf/NaN result)."""
        raise NotImplementedError

    def cholesky(self, a) -> tuple[Any, Any]:
        """``(l, info)``: the lower Cholesky factor, reading the lower triangle of ``a``; info > 0
        is the order of the leading minor that is not positive-definite (``l`` is then partial)."""
        raise NotImplementedError

    def det(self, a) -> Any:
        raise NotImplementedError

    def slogdet(self, a) -> tuple[Any, Any]:
        """``(sign, log|det|)``; a singular matrix gives ``(0, -inf)``."""
        raise NotImplementedError

    def qr(self, a, complete: bool) -> tuple[Any, Any]:
        """``(q, r)`` with ``q`` (..., m, k) and ``r`` (..., k, n), k = min(m, n), or ``q``
        (..., m, m) and ``r`` (..., m, n) when ``complete``."""
        raise NotImplementedError

    def eigh(self, a, upper: bool) -> tuple[Any, Any]:
        """``(w, v)`` of a symmetric matrix, eigenvalues ascending, reading one triangle of ``a``."""
        raise NotImplementedError

    def svd(self, a, full_matrices: bool) -> tuple[Any, Any, Any]:
        """``(u, s, vh)`` with ``s`` descending (NumPy's ``linalg.svd``)."""
        raise NotImplementedError

    def matrix_exp(self, a) -> Any:
        """The matrix exponential of each square matrix of ``a``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ views (no copy)
    def reshape(self, x, shape: tuple) -> Any:
        """A view when the strides allow, a copy otherwise."""
        raise NotImplementedError

    def permute(self, x, axes: Sequence[int]) -> Any:
        raise NotImplementedError

    def broadcast_to(self, x, shape: tuple) -> Any:
        raise NotImplementedError

    def windows(self, x, axes: Sequence[int], sizes: Sequence[int], steps: Sequence[int],
                dilations: Sequence[int]) -> Any:
        """Sliding windows over ``axes`` as a read-only strided view.

        The result has the window-count dimensions in place of ``axes`` and the window
        dimensions appended at the end (the im2col view behind convolutions and ``unfold``).
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ copies
    def copy(self, x) -> Any:
        """A new array with the contents of ``x`` (in this backend's memory: on a machine with
        several GPUs, on this backend's GPU whatever device is current)."""
        raise NotImplementedError

    def contiguous(self, x) -> Any:
        """A C-contiguous array with the contents of ``x`` (``x`` itself if it already is)."""
        raise NotImplementedError

    def concatenate(self, xs: Sequence, axis: int) -> Any:
        raise NotImplementedError

    def pad(self, x, widths: Sequence[tuple[int, int]], mode: str, value) -> Any:
        """``mode`` is ``constant``, ``reflect`` or ``edge`` (NumPy's names)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ indexing
    def getitem(self, x, index) -> Any:
        """NumPy indexing: slices, None, Ellipsis, integer and boolean arrays."""
        raise NotImplementedError

    def setitem(self, x, index, value) -> None:
        """In place: ``x[index] = value``."""
        raise NotImplementedError

    def index_add(self, x, index, value) -> None:
        """In place: ``x[index] += value``, with repeated indices accumulating."""
        raise NotImplementedError

    def take_along_axis(self, x, index, axis: int) -> Any:
        raise NotImplementedError

    def scatter_add(self, x, axis: int, index, src) -> None:
        """In place: ``x[..., index[i], ...] += src[i]`` along ``axis`` (PyTorch's scatter_add_)."""
        raise NotImplementedError

    def put_along_axis(self, x, index, values, axis: int) -> None:
        """In place: PyTorch's ``scatter_`` (last write wins for repeated indices)."""
        raise NotImplementedError

    def sort(self, x, axis: int, descending: bool, stable: bool) -> tuple[Any, Any]:
        """(values, int64 indices)."""
        raise NotImplementedError

    def nonzero(self, x) -> Any:
        """int64 array of shape (count, ndim)."""
        raise NotImplementedError

    def searchsorted(self, sorted_rows, values, right: bool = True) -> Any:
        """Row-wise searchsorted of 2-d ``values`` in the 2-d ``sorted_rows`` (NaN sorts last):
        per value, the number of row entries ``<= value`` (``right``) or ``< value``."""
        raise NotImplementedError

    def synchronize(self) -> None:
        """Wait for queued work (a no-op on synchronous devices)."""
