"""How many CPU threads gradient's operations use, as ``torch.set_num_threads``.

On the CPU the work is split across two thread pools: the BLAS library's (NumPy's OpenBLAS,
for the matrix products) and numba's (the compiled kernels that run in parallel).
:func:`set_num_threads` sets both; :func:`get_num_threads` says how many the products use.

Numba's pool cannot grow past the size it started with (``NUMBA_NUM_THREADS``, by default the
number of cores), so a larger request leaves it at that size. The BLAS pool is set through
``threadpoolctl``.

Example::

    >>> gradient.set_num_threads(2)
    >>> gradient.get_num_threads()
    2
"""

from __future__ import annotations

__all__ = ["set_num_threads", "get_num_threads"]


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for matrix products (BLAS) and parallel kernels (numba)."""
    import numba
    from threadpoolctl import threadpool_limits

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n!r}")
    threadpool_limits(limits=n, user_api="blas")
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def get_num_threads() -> int:
    """The number of threads the matrix products use (numba's when no BLAS pool is found)."""
    from threadpoolctl import threadpool_info

    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    if blas:
        return max(blas)
    import numba
    return numba.get_num_threads()
