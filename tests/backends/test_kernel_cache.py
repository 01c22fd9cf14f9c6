"""numba's disk cache of gradient's kernels is stamped with the whole kernel tree
(gradient.backends.kernel_cache): a kernel loaded from it computes what its sources, the
helpers it calls in other files included, say now. A process that finds another compiling a
kernel waits for it and loads its machine code from the cache."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

from gradient.backends import cpu_kernels, kernel_cache

HELPER = """
import numba


@numba.njit(inline="always")
def value():
    return {}
"""

KERNEL = """
import os

import numba

from gradient.backends import kernel_cache
from helper import value


def _times_value(n):
    return value() * n


times_value = numba.njit(error_model="numpy")(_times_value)
kernel_cache.enable(times_value, roots=[os.path.dirname(os.path.abspath(__file__))])
"""


RUN = ("import kernel; r = kernel.times_value(3); "
       "print(r, sum(kernel.times_value.stats.cache_hits.values()))")

# holds the compile lock of times_value for an int64 until a line arrives, then compiles it
HOLD = """
import sys, numba, kernel
from gradient.backends import kernel_cache
with kernel_cache.compile_lock(kernel.times_value, (numba.int64,)) as held:
    print("held" if held else "not held", flush=True)
    sys.stdin.readline()
    kernel.times_value(3)
"""


def _start(folder, code: str, **options) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder), *sys.path]))
    env.pop("NUMBA_CACHE_DIR", None)           # the cache beside the sources, in folder
    return subprocess.Popen([sys.executable, "-c", code], cwd=folder, env=env, text=True,
                            stdout=subprocess.PIPE, **options)


def _result(process) -> tuple:
    """``(times_value(3), whether it came from the disk cache)`` as :data:`RUN` printed it."""
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    value, hits = out.split()[-2:]
    return int(value), int(hits)


def _run(folder) -> tuple:
    """:data:`RUN` in a fresh interpreter."""
    return _result(_start(folder, RUN))


def _kernel_folder(tmp_path):
    """tmp_path with the kernel and its helper (value 1) written in it."""
    (tmp_path / "helper.py").write_text(HELPER.format(1))
    (tmp_path / "kernel.py").write_text(textwrap.dedent(KERNEL))
    return tmp_path


def test_an_edited_helper_in_another_file_is_compiled_into_the_kernel_again(tmp_path):
    _kernel_folder(tmp_path)
    assert _run(tmp_path) == (3, 0)            # compiled, written to the cache
    assert _run(tmp_path) == (3, 1)            # loaded from it
    # the helper inlined from another file changes: numba's own stamp (kernel.py's content)
    # would load the old machine code, and give 3
    (tmp_path / "helper.py").write_text(HELPER.format(2))
    assert _run(tmp_path) == (6, 0)
    assert _run(tmp_path) == (6, 1)


def test_gradients_kernels_are_stamped_with_the_kernel_tree():
    kernels = [v for v in vars(cpu_kernels).values() if hasattr(v, "py_func")]
    assert kernels
    kernel = kernels[0]
    own, tree = kernel._cache._impl.locator.get_source_stamp()
    assert tree == kernel_cache.tree_stamp()
    assert own       # numba's stamp of the kernel's own file, as without the tree


def test_the_tree_stamp_follows_the_content_of_every_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    (tmp_path / "notes.txt").write_text("not a source")
    first = kernel_cache._stamp((str(tmp_path),))
    kernel_cache._stamp.cache_clear()
    (tmp_path / "notes.txt").write_text("changed, still not a source")
    assert kernel_cache._stamp((str(tmp_path),)) == first
    kernel_cache._stamp.cache_clear()
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    assert kernel_cache._stamp((str(tmp_path),)) != first
    kernel_cache._stamp.cache_clear()


def test_a_process_waits_for_another_compiling_the_kernel_and_loads_its_code(tmp_path):
    folder = _kernel_folder(tmp_path)
    holder = _start(folder, HOLD, stdin=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held"
        waiter = _start(folder, "print('calling', flush=True); " + RUN)
        assert waiter.stdout.readline().strip() == "calling"
        # without the lock the waiter, finding the cache empty, compiled the kernel itself
        # within this second; with it, it is still waiting when the holder compiles
        time.sleep(1.0)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.wait(timeout=120) == 0
        assert _result(waiter) == (3, 1)       # the holder's machine code, from the cache
    finally:
        holder.kill()
        holder.wait()


def test_a_process_stops_waiting_after_wait_seconds_and_compiles_itself(tmp_path):
    folder = _kernel_folder(tmp_path)
    holder = _start(folder, HOLD, stdin=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held"
        waiter = _start(folder, "from gradient.backends import kernel_cache; "
                                "kernel_cache.WAIT_SECONDS = 0.5; " + RUN)
        assert _result(waiter) == (3, 0)       # compiled by itself while the lock was held
    finally:
        holder.kill()
        holder.wait()


def test_gradients_kernels_share_their_compiles():
    assert isinstance(cpu_kernels._neg_abs, kernel_cache.SharedCompileDispatcher)
