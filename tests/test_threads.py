"""ThreadGovernor: a repeated call moves to one thread when its own timings say one thread is
faster (another process took a core), and back when all threads are faster again; numba's
thread count is restored after every call, and an error in the call restores it too."""

import numba
import pytest

from gradient.threads import ThreadGovernor

pytestmark = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                                reason="needs numba's pool to have 2 threads or more")


class Machine:
    """A fake clock, and a call whose duration depends on numba's thread count: all threads
    take ``parallel`` seconds, one thread ``serial``."""

    def __init__(self, parallel, serial):
        self.now, self.parallel, self.serial, self.counts = 0.0, parallel, serial, []

    def clock(self):
        return self.now

    def step(self):
        threads = numba.get_num_threads()
        self.counts.append(threads)
        self.now += self.serial if threads == 1 else self.parallel
        return threads


def test_it_follows_whichever_count_is_faster():
    machine = Machine(parallel=0.004, serial=0.007)      # a quiet machine
    governor = ThreadGovernor(every=16, probes=2, first=4, clock=machine.clock)
    user = numba.get_num_threads()
    for _ in range(40):
        governor.run(machine.step)
    assert not governor.single
    assert machine.counts.count(1) == 2 * 2        # two probes (calls 4-5, 22-23)
    machine.parallel = 0.023                                 # a busy process takes a core
    for _ in range(40):                                      # (within a period and a probe)
        governor.run(machine.step)
    assert governor.single and machine.counts[-1] == 1
    machine.parallel = 0.004                                 # the core is free again
    for _ in range(40):
        governor.run(machine.step)
    assert not governor.single and machine.counts[-1] == user
    assert numba.get_num_threads() == user


def test_a_sudden_slowdown_probes_at_once_and_longer_periods_follow_quiet_probes():
    machine = Machine(parallel=0.004, serial=0.007)
    governor = ThreadGovernor(every=8, longest=64, probes=2, first=4, clock=machine.clock)
    for _ in range(200):
        governor.run(machine.step)
    assert not governor.single and governor.every == 64      # 8, 16, 32, 64: quiet probes
    probes = machine.counts.count(1)
    machine.parallel = 0.023                                 # a core taken
    for _ in range(5):                                       # 1 slow call, 1 more, 2 probing
        governor.run(machine.step)
    assert governor.single and governor.every == 8
    assert machine.counts.count(1) == probes + 2 + 1


def test_one_slow_call_does_not_decide():
    machine = Machine(parallel=0.004, serial=0.007)
    governor = ThreadGovernor(every=16, probes=2, first=4, clock=machine.clock)
    for i in range(40):
        machine.parallel = 0.05 if i in (3, 21) else 0.004    # a stall just before a probe
        governor.run(machine.step)
    assert machine.counts.count(1) == 2 * 2                  # the probes' calls, no more


def test_an_error_restores_the_thread_count():
    machine = Machine(parallel=0.004, serial=0.007)
    governor = ThreadGovernor(every=16, probes=2, first=3, clock=machine.clock)
    user = numba.get_num_threads()
    for _ in range(3):
        governor.run(machine.step)

    def fails():
        assert numba.get_num_threads() == 1                  # a probe: one thread
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        governor.run(fails)
    assert numba.get_num_threads() == user


def test_it_checks_its_settings():
    with pytest.raises(ValueError, match="1 <= probes < every and first"):
        ThreadGovernor(every=2, probes=2)


_TIMEOUT = """
import ctypes, threadpoolctl
pools = [p for p in threadpoolctl.threadpool_info() if p["internal_api"] == "openblas"]
if not pools:
    print("none")
else:
    library = ctypes.CDLL(pools[0]["filepath"])
    library.openblas_thread_timeout.restype = ctypes.c_int
    print(library.openblas_thread_timeout())
"""


@pytest.mark.parametrize("first", ["numpy", "gradient"])
def test_openblas_threads_wait_briefly_whichever_was_imported_first(first):
    """gradient sets OpenBLAS's thread timeout before NumPy loads it, or, where a script
    imported NumPy first, has it read again (see gradient.threads); a user's value stays."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    order = "import numpy, gradient" if first == "numpy" else "import gradient, numpy"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}

    def timeout(extra=None):
        run = subprocess.run([sys.executable, "-c", order + "\n" + _TIMEOUT], text=True,
                             capture_output=True, env=dict(env, **(extra or {})), timeout=120,
                             cwd=Path(__file__).resolve().parents[1])
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout.strip()
    found = timeout()
    if found == "none":
        pytest.skip("NumPy's BLAS here is not OpenBLAS")
    assert found == "20"
    assert timeout({"OPENBLAS_THREAD_TIMEOUT": "25"}) == "25"
