"""The CUDA backend: :class:`~gradient.backends.numpy_backend.ArrayBackend` on CuPy.

NumPy and CuPy share one implementation of the primitive contract, parameterised by the
array module; this class overrides only what differs on the GPU:

* transfers (``cupy.asarray`` / ``cupy.asnumpy``);
* random numbers: drawn on the host by the same NumPy generator as on the CPU, then uploaded,
  so one seed gives the same numbers on every device (PyTorch does not promise that; we can);
* float16 matmul and reductions run on the GPU in float16 storage with float32 accumulation
  (cuBLAS tensor cores, CuPy's float32 accumulators), instead of the CPU's upcast copies;
* ``erf`` from ``cupyx.scipy.special``;
* fused fast paths (:meth:`fused`) are the custom kernels of ``kernels/*.cu``;
* memory statistics over CuPy's memory pool, with the peak tracked by an allocator hook.

CuPy has no bfloat16 dtype, so bfloat16 tensors are refused on this device with a clear error
(use float16 there).

Example::

    >>> from gradient.backends import get_backend
    >>> cuda = get_backend("cuda")          # raises DeviceError without a GPU
    >>> x = cuda.from_numpy(np.ones(3, np.float32))
"""

from __future__ import annotations

import numpy as np

from ...errors import DTypeError
from ..numpy_backend import _LOW_PRECISION, ArrayBackend

_BFLOAT16_ERROR = ("bfloat16 is not available on device 'cuda': CuPy has no bfloat16 dtype. "
                   "Use float16 on the GPU (autocast(device_type='cuda', dtype=gradient.float16)), "
                   "or keep bfloat16 tensors on the CPU")


class CupyBackend(ArrayBackend):
    """The primitive contract on CuPy arrays (one backend serves the current CUDA device)."""

    # the kernels of kernels/*.cu exist for float32 and float16 storage (math in float32)
    fused_dtypes = frozenset({np.dtype(np.float32), np.dtype(np.float16)})

    def __init__(self, cupy):
        super().__init__(cupy, "cuda")
        self.cupy = cupy
        self._unary["erf"] = self._erf
        self._kernels = None
        self._peak = 0
        self._pool = cupy.get_default_memory_pool()
        pool = self._pool

        def malloc(size):  # CuPy's pool keeps no peak: note it after every allocation
            memory = pool.malloc(size)
            used = pool.used_bytes()
            if used > self._peak:
                self._peak = used
            return memory
        cupy.cuda.set_allocator(malloc)

    # ------------------------------------------------------------------ dtypes
    @staticmethod
    def _check_dtype(dtype):
        if dtype.numpy == _LOW_PRECISION[1]:
            raise DTypeError(_BFLOAT16_ERROR)

    def empty(self, shape, dtype):
        self._check_dtype(dtype)
        return super().empty(shape, dtype)

    def full(self, shape, value, dtype):
        self._check_dtype(dtype)
        return self.cupy.full(shape, value, dtype=dtype.numpy)

    def arange(self, start, stop, step, dtype):
        self._check_dtype(dtype)
        return super().arange(start, stop, step, dtype)

    def cast(self, x, dtype):
        self._check_dtype(dtype)
        return x.astype(dtype.numpy, copy=False)

    # ------------------------------------------------------------------ transfers
    def from_numpy(self, array):
        array = np.asarray(array)
        if array.dtype == _LOW_PRECISION[1]:
            raise DTypeError(_BFLOAT16_ERROR)
        return self.cupy.asarray(array)

    def to_numpy(self, x):
        return self.cupy.asnumpy(x)

    # ------------------------------------------------------------------ random numbers (host)
    def uniform(self, gen, shape, low, high, dtype):
        self._check_dtype(dtype)
        return self.cupy.asarray(super().uniform(gen, shape, low, high, dtype))

    def normal(self, gen, shape, mean, std, dtype):
        self._check_dtype(dtype)
        return self.cupy.asarray(super().normal(gen, shape, mean, std, dtype))

    def randint(self, gen, low, high, shape, dtype):
        return self.cupy.asarray(gen.integers(low, high, size=shape).astype(dtype.numpy, copy=False))

    def permutation(self, gen, n, dtype):
        return self.cupy.asarray(gen.permutation(n).astype(dtype.numpy, copy=False))

    # ------------------------------------------------------------------ math that differs
    def _erf(self, x):
        from cupyx.scipy.special import erf
        return erf(x).astype(x.dtype, copy=False)

    def matmul(self, a, b):
        # float16 inputs go to cuBLAS as they are: it accumulates in float32 (tensor cores)
        return self.cupy.matmul(a, b)

    def einsum(self, equation, *operands):
        return self.cupy.einsum(equation, *operands)

    # ------------------------------------------------------------------ fused kernels
    def fused(self, name):
        if self._kernels is None:
            from . import fused
            self._kernels = fused.FUSED
        return self._kernels.get(name)

    # ------------------------------------------------------------------ device state
    def synchronize(self) -> None:
        self.cupy.cuda.Device().synchronize()

    def memory_allocated(self) -> int:
        return int(self._pool.used_bytes())

    def max_memory_allocated(self) -> int:
        return max(int(self._peak), self.memory_allocated())

    def reset_peak_memory_stats(self) -> None:
        self._peak = self.memory_allocated()

    def memory_reserved(self) -> int:
        return int(self._pool.total_bytes())

    def empty_cache(self) -> None:
        self._pool.free_all_blocks()
