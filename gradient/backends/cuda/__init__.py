"""The CUDA device: CuPy arrays, cuBLAS matmul and custom kernels (``kernels/*.cu``).

Each GPU is a device of its own, ``"cuda:0"``, ``"cuda:1"``..., with a backend of its own
(:func:`load_backend`); ``"cuda"`` means the current one (see :mod:`gradient.backends`).
Nothing here imports CuPy until device ``"cuda"`` is first used, so ``import gradient``
works on machines without CuPy or without a GPU; using the device there raises a
:class:`~gradient.errors.DeviceError` that says what is missing. Install the GPU
dependencies with ``pip install "gradient[cuda]"`` (CuPy for CUDA 12).

Example::

    >>> from gradient.backends import cuda
    >>> cuda.available()
    (False, "CuPy is not installed: pip install 'gradient[cuda]' (cupy-cuda12x)")
"""

from __future__ import annotations

from ...errors import ArgumentValueError, DeviceError


class _MatmulFlags:
    """``torch.backends.cuda.matmul``'s switches, kept for scripts ported from PyTorch
    (``gradient.backends.cuda.matmul.allow_tf32 = True``). They *allow* faster, less exact
    float32 products; gradient's cuBLAS products always run in full float32 (PyTorch's
    default), which every setting allows."""

    allow_tf32 = False
    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True


matmul = _MatmulFlags()

_PRECISIONS = ("highest", "high", "medium")


def set_float32_matmul_precision(precision: str) -> None:
    """PyTorch's ``torch.set_float32_matmul_precision``: "high" and "medium" allow TF32 products
    (:data:`matmul`); gradient's float32 products stay exact at every setting."""
    if precision not in _PRECISIONS:   # (PyTorch warns and ignores it)
        raise ArgumentValueError(
            f"set_float32_matmul_precision: expected one of {_PRECISIONS}, got "
            f"{precision!r}")
    global _precision
    _precision = precision
    matmul.allow_tf32 = precision != "highest"


_precision = "highest"


def get_float32_matmul_precision() -> str:
    """The last :func:`set_float32_matmul_precision` ("highest" by default)."""
    return _precision


def _cupy():
    """The cupy module, or None when it is not installed."""
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def device_count() -> int:
    """Number of CUDA devices CuPy sees (0 without CuPy, a driver or a GPU)."""
    cupy = _cupy()
    if cupy is None:
        return 0
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no driver, no device: CuPy raises CUDARuntimeError
        return 0


def available() -> tuple[bool, str]:
    """Whether device ``"cuda"`` can be used, and why not when it cannot."""
    if _cupy() is None:
        return False, "CuPy is not installed: pip install 'gradient[cuda]' (cupy-cuda12x)"
    if device_count() == 0:
        return False, "CuPy found no CUDA device (no GPU, or no NVIDIA driver)"
    return True, ""


def _unavailable(why: str) -> DeviceError:
    return DeviceError(f"device 'cuda' is not available: {why}. Use device='cpu', or check "
                       "gradient.cuda.is_available() first")


def checked_device_count() -> int:
    """Number of CUDA devices; DeviceError, saying what is missing, when there is none."""
    ok, why = available()
    if not ok:
        raise _unavailable(why)
    return device_count()


def load_backend(index: int = 0):
    """The backend of GPU ``index`` (device ``"cuda:<index>"``), created on its first use.

    DeviceError when CUDA is unavailable or there is no such GPU. On a machine with one GPU
    the backend is :class:`~.backend.CupyBackend`; with several, every backend is a
    :class:`~.backend.MultiDeviceCupyBackend`, which makes its GPU CuPy's current device
    before each primitive.
    """
    n = checked_device_count()
    if not 0 <= index < n:
        raise DeviceError(f"device 'cuda:{index}' does not exist: this machine has {n} CUDA "
                          f"device{'s' if n > 1 else ''} (cuda:0 to cuda:{n - 1})")
    import cupy

    from .backend import CupyBackend, MultiDeviceCupyBackend
    return (CupyBackend if n == 1 else MultiDeviceCupyBackend)(cupy, index)
