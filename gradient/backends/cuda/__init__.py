"""The CUDA device: CuPy arrays, cuBLAS matmul and custom kernels (``kernels/*.cu``).

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

from ...errors import DeviceError


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


def load_backend():
    """The CUDA backend, created on first use of device ``"cuda"``; DeviceError when unavailable."""
    ok, why = available()
    if not ok:
        raise DeviceError(f"device 'cuda' is not available: {why}. Use device='cpu', or check "
                          "gradient.cuda.is_available() first")
    import cupy

    from .backend import CupyBackend
    return CupyBackend(cupy)
