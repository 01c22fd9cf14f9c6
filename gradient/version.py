"""gradient's version, low enough in the package for any layer to read; and, as
``torch.version`` has them, ``cuda`` (the CUDA runtime's version, ``'12.4'``, where CuPy runs
gradient's CUDA device, else None), ``hip`` (None) and ``debug`` (False)."""

__version__ = "0.1.0"
hip = None
debug = False


def __getattr__(name: str):
    if name == "cuda":          # read when asked: CuPy is slow to import, and often absent
        return _cuda_runtime_version()
    raise AttributeError(f"module 'gradient.version' has no attribute {name!r}")


def _cuda_runtime_version():
    try:
        import cupy
        version = cupy.cuda.runtime.runtimeGetVersion()
    except Exception:  # noqa: BLE001  (no CuPy, or no CUDA runtime under it)
        return None
    return f"{version // 1000}.{version % 1000 // 10}"
