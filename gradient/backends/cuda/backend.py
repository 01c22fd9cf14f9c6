"""The CUDA backend: :class:`~gradient.backends.numpy_backend.ArrayBackend` on CuPy.

NumPy and CuPy share one implementation of the primitive contract, parameterised by the
array module; this class overrides only what differs on the GPU:

* transfers (``cupy.asarray`` / ``cupy.asnumpy``);
* random numbers: drawn on the host by the same NumPy generator as on the CPU, then uploaded,
  so one seed gives the same numbers on every device (PyTorch does not promise that; we can);
* float16 matmul and reductions run on the GPU in float16 storage with float32 accumulation
  (cuBLAS tensor cores, CuPy's float32 accumulators), instead of the CPU's upcast copies;
* ``erf`` and the special functions (``gammaln``, ``digamma``, ``polygamma``, ``erfinv``, ``i0``
  ...) from ``cupyx.scipy.special``;
* its fused fast paths are the custom kernels of ``kernels/*.cu`` (:mod:`.fused`, registered in
  :mod:`gradient.kernels` under the backend kind ``"cuda"``);
* memory statistics over CuPy's memory pool, per GPU, with the peaks tracked by an allocator hook.

One backend serves one GPU: ``CupyBackend(cupy, 1)`` is device ``"cuda:1"``. CuPy allocates
new arrays and launches kernels on its *current* device, so where a machine has several GPUs,
each backend is a :class:`MultiDeviceCupyBackend`: before each primitive it makes its GPU the
current device, only when it is not already (one ``cudaGetDevice`` per primitive, a
``cudaSetDevice`` only at a switch), and leaves it current afterwards, so the raw array work
an op does between primitives lands on the same GPU. A machine with one GPU pays nothing.

CuPy has no bfloat16 dtype, so bfloat16 tensors are refused on this device with a clear error
(use float16 there).

Example::

    >>> from gradient.backends import get_backend
    >>> cuda = get_backend("cuda")          # raises DeviceError without a GPU
    >>> x = cuda.from_numpy(np.ones(3, np.float32))
    >>> int(x.device.id), get_backend("cuda:1").name      # on a machine with two GPUs
    (0, 'cuda:1')
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from ...errors import DTypeError
from ..numpy_backend import _LOW_PRECISION, ArrayBackend

_BFLOAT16_ERROR = ("bfloat16 is not available on device 'cuda': CuPy has no bfloat16 dtype. "
                   "Use float16 on the GPU (autocast(device_type='cuda', dtype=gradient.float16)), "
                   "or keep bfloat16 tensors on the CPU")


# the peak of each GPU's pool use, by device id, noted by the allocator hook (one per process)
_PEAKS: dict[int, int] = {}
_TRACKED: set = set()  # the cupy modules whose allocator carries the hook


def _track_peaks(cupy) -> None:
    """Route CuPy's allocations through the pool plus a note of each GPU's peak use."""
    if cupy in _TRACKED:
        return
    pool = cupy.get_default_memory_pool()

    def malloc(size):  # CuPy's pool keeps no peak: note it after every allocation
        memory = pool.malloc(size)
        used = pool.used_bytes()  # of the current device, where the memory was allocated
        device = memory.device_id
        if used > _PEAKS.get(device, 0):
            _PEAKS[device] = used
        return memory
    cupy.cuda.set_allocator(malloc)
    _TRACKED.add(cupy)


class CupyBackend(ArrayBackend):
    """The primitive contract on CuPy arrays of one GPU, device ``"cuda:<index>"``.

    Used as it is on a machine with one GPU, where CuPy's current device is always this one.
    """

    def __init__(self, cupy, index: int = 0):
        super().__init__(cupy, f"cuda:{index}")
        self.cupy = cupy
        self.index = index
        self._unary["erf"] = self._erf
        self._pool = cupy.get_default_memory_pool()
        _track_peaks(cupy)

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
    def _special_module(self):
        # the special-function unary ops (gammaln, digamma, erfinv, i0, ...) and polygamma run
        # as CuPy's elementwise kernels, with the same names as in SciPy
        import cupyx.scipy.special
        return cupyx.scipy.special

    def _erf(self, x):
        from cupyx.scipy.special import erf
        return erf(x).astype(x.dtype, copy=False)

    def matmul(self, a, b):
        # float16 inputs go to cuBLAS as they are: it accumulates in float32 (tensor cores)
        return self.cupy.matmul(a, b)

    def einsum(self, equation, *operands):
        return self.cupy.einsum(equation, *operands)

    # ------------------------------------------------------------------ dense decompositions
    # cupy.linalg (cuSOLVER) factors batches on the GPU; solve, cholesky, det, slogdet, qr, eigh
    # and svd come from ArrayBackend through self.xp. A failed factorization is found by
    # checking cuSOLVER's info (cupyx.errstate below, a device sync), and then the matrices are
    # redone one by one on the host for their info (ArrayBackend._factor_one_by_one).
    def _linalg_raises(self):
        import cupyx
        return cupyx.errstate(linalg="raise")  # CuPy's default is not to look at cuSOLVER's info

    def _each_matrix(self, fn, a, *others):
        """``fn`` on each matrix of a batch (for cupyx.scipy.linalg functions that take one)."""
        if a.ndim == 2:
            return fn(a, *others)
        mats = a.reshape((-1,) + a.shape[-2:])
        rest = [o.reshape((-1,) + o.shape[-2:]) for o in others]
        outs = [fn(m, *(o[i] for o in rest)) for i, m in enumerate(mats)]
        out = self.cupy.stack(outs) if outs else self.cupy.empty(
            mats.shape[:1] + (others[0] if others else a).shape[-2:], a.dtype)
        return out.reshape((others[0] if others else a).shape)

    def solve_triangular(self, a, b, upper, unitriangular):
        from cupyx.scipy.linalg import solve_triangular
        return self._each_matrix(
            lambda m, r: solve_triangular(m, r, lower=not upper, unit_diagonal=unitriangular), a, b)

    def matrix_exp(self, a):
        try:
            from cupyx.scipy.linalg import expm   # CuPy >= 13
        except ImportError:
            return super().matrix_exp(a)          # SciPy on the host
        if a.size == 0:
            return a.copy()
        return self._each_matrix(expm, a)

    # ------------------------------------------------------------------ views
    def _read_only_view(self, x, shape, strides):
        # CuPy arrays have no read-only flag (as_strided takes no `writeable`)
        return self.cupy.lib.stride_tricks.as_strided(x, shape, strides)

    # ------------------------------------------------------------------ device state
    # These name their GPU themselves (CuPy's pool and synchronize act on the current device).
    def synchronize(self) -> None:
        self.cupy.cuda.Device(self.index).synchronize()

    def memory_allocated(self) -> int:
        with self.cupy.cuda.Device(self.index):
            return int(self._pool.used_bytes())

    def max_memory_allocated(self) -> int:
        return max(_PEAKS.get(self.index, 0), self.memory_allocated())

    def reset_peak_memory_stats(self) -> None:
        _PEAKS[self.index] = self.memory_allocated()

    def memory_reserved(self) -> int:
        with self.cupy.cuda.Device(self.index):
            return int(self._pool.total_bytes())

    def empty_cache(self) -> None:
        with self.cupy.cuda.Device(self.index):
            self._pool.free_all_blocks()


# the methods that name their GPU themselves, or do no GPU work
_OWN_DEVICE = frozenset({"generator", "synchronize", "memory_allocated", "max_memory_allocated",
                         "reset_peak_memory_stats", "memory_reserved", "empty_cache"})


def _on_its_device(method):
    """``method`` run with the backend's GPU as CuPy's current device (switched only if needed)."""
    @functools.wraps(method)
    def on_device(self, *args, **kwargs):
        if self._get_device() != self.index:
            self._set_device(self.index)
        return method(self, *args, **kwargs)
    return on_device


class MultiDeviceCupyBackend(CupyBackend):
    """:class:`CupyBackend` for machines with several GPUs.

    Each primitive (every public method but those in ``_OWN_DEVICE``) first makes this
    backend's GPU CuPy's current device when it is not already, and leaves it current: the
    check is one ``cudaGetDevice`` per primitive, much less than a ``with cupy.cuda.Device``,
    and the raw array work an op does next (``x.copy()``, a fused kernel's launch and its
    output) lands on the same GPU. Raw work an op does *before* its first primitive runs on
    whichever GPU is current (a ``x.copy()`` that opens an op, as in ``clone``): such copies
    belong in a primitive.
    """

    def __init__(self, cupy, index: int = 0):
        super().__init__(cupy, index)
        # bound once: the check is the per-primitive cost
        self._get_device = cupy.cuda.runtime.getDevice
        self._set_device = cupy.cuda.runtime.setDevice


def _guarded_methods(cls) -> list[str]:
    return sorted(name for name in dir(cls) if not name.startswith("_") and name not in _OWN_DEVICE
                  and inspect.isfunction(getattr(cls, name)))


for _name in _guarded_methods(CupyBackend):
    setattr(MultiDeviceCupyBackend, _name, _on_its_device(getattr(CupyBackend, _name)))
