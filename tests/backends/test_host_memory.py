"""gradient asks glibc to keep freed memory at import; the opt-out must work."""

import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from gradient.backends import host_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="the thresholds are set only with glibc's malloc")
def test_thresholds_are_applied_on_glibc(monkeypatch):
    monkeypatch.delenv("GRADIENT_KEEP_FREED_MEMORY", raising=False)
    assert host_memory.keep_freed_memory() is True


def test_environment_variable_opts_out(monkeypatch):
    monkeypatch.setenv("GRADIENT_KEEP_FREED_MEMORY", "0")
    assert host_memory.keep_freed_memory() is False


@pytest.mark.skipif(not GLIBC, reason="page-fault counts are measured only with glibc")
def test_repeated_large_temporaries_stop_faulting_after_import():
    # A fresh interpreter: allocate and free a 4 MiB array 50 times and count minor page
    # faults. With glibc's defaults each round maps fresh zeroed pages; with gradient's
    # settings the memory is reused, so the faults all but disappear.
    script = (
        "import resource, numpy as np\n"
        "{setup}\n"
        "np.ones(1 << 20, np.float32)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(50):\n"
        "    a = np.ones(1 << 20, np.float32); del a\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")

    def faults(setup, env_value):
        env = {"GRADIENT_KEEP_FREED_MEMORY": env_value, "PATH": "/usr/bin:/bin"}
        out = subprocess.run([sys.executable, "-c", script.format(setup=setup)],
                             capture_output=True, text=True, env=env, check=True)
        return int(out.stdout.strip())

    kept = faults("import gradient", "1")
    default = faults("import gradient", "0")
    assert kept < 100 < default, (kept, default)


def test_placeholders_inside_untouched_zeros_cost_no_memory_until_written():
    import mmap

    import numpy as np

    from gradient.backends import cpu_backend
    from gradient.backends.host_memory import untouched_zeros
    from gradient.dtypes import float32

    def rss_mib():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc (Linux)")
    before = rss_mib()
    with untouched_zeros():
        arrays = [cpu_backend.full((1024, 1024), 0, float32) for _ in range(32)]  # 128 MiB
    assert rss_mib() - before < 16
    assert all(isinstance(a.base.base.obj, mmap.mmap) for a in arrays)  # pages of their own
    assert all(not a.any() and a.flags.writeable for a in arrays)  # zeros, and writable
    arrays[0][:] = 1.0
    assert arrays[0].sum() == 1024 * 1024
    small = cpu_backend.full((4,), 0, float32)   # outside the block: the usual allocation
    assert isinstance(small, np.ndarray) and small.base is None


@pytest.mark.skipif(not GLIBC, reason="the setting goes with the thresholds, set only with glibc")
@pytest.mark.parametrize("env, expected", [
    ({}, False),                                        # gradient turns NumPy's huge pages off
    ({"GRADIENT_KEEP_FREED_MEMORY": "0"}, True),        # ... only with its own thresholds
    ({"NUMPY_MADVISE_HUGEPAGE": "1"}, True),            # ... and never against the user's choice
])
def test_numpy_huge_pages_are_turned_off_with_the_thresholds(env, expected):
    # _set_madvise_hugepage returns the setting it replaces: what importing gradient left
    script = ("import numpy as np, gradient\n"
              "print(getattr(np, '_core', np).multiarray._set_madvise_hugepage(True))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", **env}, check=True)
    assert out.stdout.strip() == str(expected)


def test_pages_of_their_own_are_private_zero_pages_for_large_arrays():
    import mmap

    import numpy as np

    from gradient.backends.host_memory import OWN_PAGES_MIN_BYTES, pages_of_their_own
    from gradient.quant import quantize
    from gradient.quant.interleaved import InterleavedWeight

    def owner(a):   # what holds the array's memory: a map, or NumPy itself (the heap)
        while isinstance(a, np.ndarray) and a.base is not None:
            a = a.base
        return a.obj if isinstance(a, memoryview) else a

    big = pages_of_their_own((OWN_PAGES_MIN_BYTES // 4,), np.float32)
    small = pages_of_their_own((4,), np.float32)
    assert isinstance(owner(big), mmap.mmap) and isinstance(owner(small), np.ndarray)
    assert not big.any() and big.flags.writeable and big.dtype == np.float32
    # a model's repacked weights live there, outside the heap
    w = np.random.default_rng(0).standard_normal((256, 512)).astype(np.float32)
    packed = InterleavedWeight.from_blocks(quantize(w, "Q4_0"), "Q4_0", 256, 512)
    assert isinstance(owner(packed.codes), mmap.mmap)
    if hasattr(os, "fork"):   # private pages: a forked child's write stays in the child
        pid = os.fork()
        if pid == 0:
            big[0] = 1.0
            os._exit(0)
        os.waitpid(pid, 0)
        assert big[0] == 0.0


def _mapping(array):
    """The mmap an array's memory belongs to, or None."""
    import mmap
    base = array.base
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None) or getattr(base, "obj", None)
    return base


def test_landing_array_is_heap_memory_below_the_threshold_and_a_mapping_above():
    small = host_memory.landing_array((3, 4), np.float32)
    assert small.shape == (3, 4) and small.dtype == np.float32 and small.flags.writeable
    assert _mapping(small) is None
    rows = host_memory.MMAP_THRESHOLD // 4 // 1024 + 1
    large = host_memory.landing_array((rows, 1024), np.float32)
    assert large.shape == (rows, 1024) and large.flags.writeable and large.flags.c_contiguous
    assert _mapping(large) is not None and len(_mapping(large)) == large.nbytes
    large[-1] = 7.0                       # the whole mapping is the array's
    assert large[-1, -1] == 7.0
