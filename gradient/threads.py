"""How many CPU threads gradient's operations use, as ``torch.set_num_threads``.

On the CPU the work is split across two thread pools: the BLAS library's (NumPy's OpenBLAS,
for the matrix products) and numba's (the compiled kernels that run in parallel).
:func:`set_num_threads` sets both; :func:`get_num_threads` says how many the products use.

Numba's pool cannot grow past the size it started with (``NUMBA_NUM_THREADS``, by default the
number of cores), so a larger request leaves it at that size. The BLAS pool is set through
``threadpoolctl``.

The two pools take turns on the same cores, so numba's threads must not hold on to them: after a
parallel kernel, numba's OpenMP threads spin waiting for the next one, by default for 300,000
iterations (milliseconds), and a BLAS product started meanwhile ran 3-4x slower beside them (a
random GPT-2 124M's 128-token prefill, whose attention is a parallel kernel between products:
0.37 s against 0.22 s). Importing gradient therefore sets ``GOMP_SPINCOUNT=10000`` unless the
user set it or ``OMP_WAIT_POLICY``: that still bridges the microseconds between the kernels of
a decode step (SmolLM2's decode and prefill measured the same), and OpenMP reads it when numba
starts its threads, after this import.

Example::

    >>> gradient.set_num_threads(2)
    >>> gradient.get_num_threads()
    2
"""

from __future__ import annotations

import os

__all__ = ["set_num_threads", "get_num_threads"]

#: How long numba's OpenMP threads spin for more work before they sleep (see the module's doc).
NUMBA_SPIN_COUNT = "10000"


def _let_numba_threads_yield() -> None:
    if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = NUMBA_SPIN_COUNT


_let_numba_threads_yield()


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
