"""How many CPU threads gradient's operations use, as ``torch.set_num_threads``.

On the CPU the work is split across two thread pools: the BLAS library's (NumPy's OpenBLAS,
for the matrix products) and numba's (the compiled kernels that run in parallel).
:func:`set_num_threads` sets both; :func:`get_num_threads` says how many the products use.

Numba's pool cannot grow past the size it started with (``NUMBA_NUM_THREADS``, by default the
number of cores), so a larger request leaves it at that size. The BLAS pool is set through
``threadpoolctl``.

The two pools take turns on the same cores, so neither may hold on to them long after its work:
- After a parallel kernel, numba's OpenMP threads spin waiting for the next one, by default for
  300,000 iterations (milliseconds), and a BLAS product started meanwhile ran 3-4x slower
  beside them (a random GPT-2 124M's 128-token prefill, whose attention is a parallel kernel
  between products: 0.37 s against 0.22 s). Importing gradient therefore sets
  ``GOMP_SPINCOUNT=10000`` unless the user set it or ``OMP_WAIT_POLICY``: that still bridges the
  microseconds between the kernels of a decode step (SmolLM2's decode and prefill measured the
  same); OpenMP reads it when numba starts its threads, after this import. ``gradient
  serve``, where the short wait cost more than it saved, keeps OpenMP's own
  (:func:`keep_workers_spinning`).
- After a product, OpenBLAS's threads poll for the next one for 2**28 cycles (a tenth of a
  second) before they sleep, and numba's kernels started meanwhile share a core with them: a
  draft model's 122-token prompt (int8 kernels) took 140 ms right after a float16 model's
  prompt (BLAS products), 70 ms alone. Importing gradient therefore sets
  ``OPENBLAS_THREAD_TIMEOUT=20`` (2**20 cycles, a few tenths of a millisecond) unless the user
  set it: the same 70 ms after BLAS, while the gaps between a training step's products are
  still bridged (``bench/train_gpt.py`` measured the same). OpenBLAS reads it when it loads,
  with NumPy, and gradient imports NumPy after setting it. Where NumPy was imported first
  (``import numpy as np`` at the top of a script), OpenBLAS has read its environment already:
  gradient then has it read it again and stops its idle threads (``openblas_read_env`` and
  ``blas_thread_shutdown_``, the calls OpenBLAS's own fork handler makes), and the next
  product starts them with the short wait (SmolLM2's 64-token prompt: its attention took
  20 ms of the prefill with the long wait, 6 ms with the short one).

Example::

    >>> gradient.set_num_threads(2)
    >>> gradient.get_num_threads()
    2
"""

from __future__ import annotations

import collections
import os
import sys
import time
from .errors import ArgumentValueError

__all__ = ["set_num_threads", "get_num_threads", "set_num_interop_threads",
           "get_num_interop_threads", "ThreadGovernor", "keep_workers_spinning"]

#: How long numba's OpenMP threads spin for more work before they sleep (see the module's doc).
NUMBA_SPIN_COUNT = "10000"
#: OpenMP's own spin count (GNU libgomp's default), which a server keeps: see
#: :func:`keep_workers_spinning`.
SERVER_SPIN_COUNT = "300000"
#: How long OpenBLAS's threads poll for more work before they sleep: 2**this many cycles.
BLAS_THREAD_TIMEOUT = "20"


_spin_count_is_ours = False     # whether GOMP_SPINCOUNT is the value set below


def _let_threads_yield() -> None:
    global _spin_count_is_ours
    if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = NUMBA_SPIN_COUNT
        _spin_count_is_ours = True
    if "OPENBLAS_THREAD_TIMEOUT" not in os.environ:
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = BLAS_THREAD_TIMEOUT
        if "numpy" in sys.modules:      # its OpenBLAS read the environment without it
            _restart_loaded_blas_threads()


def _restart_loaded_blas_threads() -> None:
    """Have each OpenBLAS already loaded (with its own threads, not OpenMP's) read the
    environment again and stop its idle threads, so that the next product starts them with
    the wait set above (see the module's doc). Libraries without those calls are left as
    they are."""
    import ctypes

    try:
        from threadpoolctl import threadpool_info
        pools = threadpool_info()
    except Exception:   # noqa: BLE001  (no threadpoolctl, or a library it cannot inspect)
        return
    for pool in pools:
        if pool.get("internal_api") != "openblas" or pool.get("threading_layer") != "pthreads":
            continue
        try:
            library = ctypes.CDLL(pool["filepath"])
            read_env, shutdown = library.openblas_read_env, library.blas_thread_shutdown_
        except (OSError, AttributeError):
            continue
        read_env()
        shutdown()


_let_threads_yield()


def keep_workers_spinning() -> bool:
    """Give numba's OpenMP threads OpenMP's own long wait for more work
    (:data:`SERVER_SPIN_COUNT`) instead of the short one this module sets at import, where the
    user set neither and the threads have not started (OpenMP reads the setting as numba
    starts them): True if it did.

    For a server (``gradient serve``): between its decode steps and inside them, the serving
    thread runs Python (sampling, each token's event, a float32 model's BLAS products), and
    its event loop and clients share the cores. With the short wait, numba's other thread
    slept in those gaps and woke late: ``bench/serve.py --activations int8`` (SmolLM2 Q4_1, 2
    cores), five runs of each alternating, gave 8 streams 317-413 tokens/s (355 on average)
    and 16 streams 314-393 (357) with the short wait, 350-440 (400) and 365-488 (418) with
    OpenMP's. The short wait is for BLAS products run between parallel kernels (training,
    float prefills), which the spinning threads slowed 3-4x; a server spends its time in
    decode steps.

    Example: ``threads.keep_workers_spinning()`` before the first parallel kernel runs.
    """
    if not _spin_count_is_ours or "numba.np.ufunc.omppool" in sys.modules:
        return False
    if os.environ.get("GOMP_SPINCOUNT") != NUMBA_SPIN_COUNT:
        return False                   # changed since: the user's
    os.environ["GOMP_SPINCOUNT"] = SERVER_SPIN_COUNT
    return True


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for matrix products (BLAS) and parallel kernels (numba)."""
    import numba
    from threadpoolctl import threadpool_limits

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ArgumentValueError(
            f"set_num_threads: expected a positive number of threads, got {n!r}")
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


_interop_threads = 1


def set_num_interop_threads(n: int) -> None:
    """Accepted, as ``torch.set_num_interop_threads``: gradient runs one operation at a time
    (its parallelism is inside operations, :func:`set_num_threads`), so the number is only
    kept for :func:`get_num_interop_threads`."""
    global _interop_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ArgumentValueError(
            f"set_num_interop_threads: expected a positive number of threads, "
            f"got {n!r}")
    _interop_threads = n


def get_num_interop_threads() -> int:
    """What :func:`set_num_interop_threads` was given (1 by default)."""
    return _interop_threads


class ThreadGovernor:
    """Runs a repeated call (a decode step) on all of numba's threads or on one, whichever its
    own timings say is faster now.

    A parallel kernel waits for its slowest thread. When another process takes one of the
    cores, that thread runs only in the slices the scheduler leaves it, and every parallel
    region of a step waits for it. On 2 cores beside one busy process, SmolLM2's decode fell
    from 210 to 43 tokens/s on 2 threads, where one thread gave 140.

    The governor probes: it runs ``probes`` calls on the other count, and switches if the
    fastest of them beat the fastest of the last ``probes`` calls on the current count by
    ``margin`` (the fastest: a page fault or a collection in one call does not decide). It
    probes after ``first`` calls; at once when a call takes ``jump`` times the fastest recent
    one (a core just taken: decode slowed five-fold); and otherwise after ``every`` calls,
    a period that doubles after each probe that changed nothing, up to ``longest`` (on a quiet
    machine the probes then cost a fraction of a percent), and starts again after a switch.

    Thread counts change no kernel's bits (each splits its work without changing its
    arithmetic), so the results are the same whichever count runs. numba's count is set for
    the calling thread only, and restored after each call. BLAS pools are not touched.

    Example::

        >>> governor = ThreadGovernor()
        >>> out = governor.run(step, x, cache)      # step(x, cache), timed
    """

    def __init__(self, every: int = 64, longest: int = 1024, probes: int = 2, first: int = 8,
                 margin: float = 0.1, jump: float = 2.0, clock=time.perf_counter):
        if not 1 <= probes < min(every, first) or longest < every:
            raise ArgumentValueError(
                f"ThreadGovernor: need 1 <= probes < every and first, every <= "
                f"longest, got probes={probes}, every={every}, first={first}, "
                f"longest={longest}")
        self.shortest, self.longest, self.every = every, longest, every
        self.probes, self.margin, self.jump, self.clock = probes, margin, jump, clock
        self.single = False          # running on one thread now
        self._calls = 0
        self._next_probe = first     # the call that starts the next probe
        self._recent = collections.deque(maxlen=probes)   # seconds, at the current count
        self._probe: list = []                            # seconds, at the other count

    def run(self, fn, *args):
        """``fn(*args)``, on the thread count chosen for this call."""
        import numba
        user = numba.get_num_threads()
        if user < 2:
            return fn(*args)
        probing = self._calls >= self._next_probe
        self._calls += 1
        single = self.single != probing
        if single:
            numba.set_num_threads(1)
        start = self.clock()
        try:
            out = fn(*args)
        finally:
            if single:
                numba.set_num_threads(user)
        self._timed(self.clock() - start, probing)
        return out

    def _timed(self, seconds: float, probing: bool) -> None:
        if not probing:
            if len(self._recent) == self.probes and seconds > self.jump * min(self._recent):
                # a sudden slowdown: probe as soon as the recent calls are all slow ones
                self._recent.clear()
                self._next_probe = self._calls + self.probes - 1
            self._recent.append(seconds)
            return
        self._probe.append(seconds)
        if len(self._probe) < self.probes:
            return
        probe, self._probe = self._probe, []
        if (len(self._recent) == self.probes
                and min(probe) < (1 - self.margin) * min(self._recent)):
            self.single = not self.single
            self._recent = collections.deque(probe, maxlen=self.probes)
            self.every = self.shortest
        else:
            self.every = min(2 * self.every, self.longest)
        self._next_probe = self._calls + self.every
