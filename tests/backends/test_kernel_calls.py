"""A compiled function calls a kernel by its address (gradient.backends.kernel_calls.call):
the results of a direct call, none of the callee's code in the caller's, errors raised
through it, and a caller from numba's disk cache in a process that never compiled the callee
(and not after the callee changed what it returns)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from gradient.backends.kernel_calls import call


@numba.njit(parallel=True)
def scaled_rows(w, x, scale):
    out = np.empty(w.shape[0], np.float32)
    for i in numba.prange(w.shape[0]):
        acc = np.float32(0)
        for j in range(w.shape[1]):
            acc += w[i, j] * x[j]
        out[i] = acc * scale
    return out


@numba.njit
def split(x, at):
    return x[:at], x[at:].sum()


@numba.njit
def checked(x, limit):
    if x.shape[0] > limit:
        raise ValueError("too many rows")
    return x * 2


@numba.njit
def through_address(w, x):
    head, rest = call(split, call(scaled_rows, w, x, 0.5), 3)
    return head, rest


@numba.njit
def linked(w, x):
    return split(scaled_rows(w, x, 0.5), 3)


@numba.njit
def checked_through_address(x, limit):
    return call(checked, x, limit)


def _data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((37, 19)).astype(np.float32),
            rng.standard_normal(19).astype(np.float32))


def test_a_call_by_address_gives_the_direct_calls_bits():
    w, x = _data()
    head, rest = through_address(w, x)
    head_linked, rest_linked = linked(w, x)
    assert head.tobytes() == head_linked.tobytes() and rest == rest_linked
    expected = (w.astype(np.float64) @ x.astype(np.float64)) * 0.5
    np.testing.assert_allclose(head, expected[:3], rtol=1e-5, atol=1e-5)


def test_the_callers_code_holds_a_call_not_the_callees_code():
    """What makes a caller cheap to compile: linked, the callee's code (its parallel region
    included) is in the caller's module, optimized again; by address, only a declaration."""
    w, x = _data()
    through_address(w, x)
    linked(w, x)

    def defined(fn):
        return [line for line in fn.inspect_llvm(fn.signatures[0]).splitlines()
                if line.startswith("define")]

    def declared(fn):
        return [line for line in fn.inspect_llvm(fn.signatures[0]).splitlines()
                if line.startswith("declare") and "@gradient_kernel_" in line]

    assert any("scaled_rows" in line for line in defined(linked))
    assert any("__gufunc__" in line for line in defined(linked))
    assert not any("scaled_rows" in line or "__gufunc__" in line or "split" in line
                   for line in defined(through_address))
    assert len(declared(through_address)) == 2 and not declared(linked)


def test_an_error_the_callee_raises_reaches_the_caller():
    x = np.ones(4)
    np.testing.assert_array_equal(checked_through_address(x, 10), x * 2)
    with pytest.raises(ValueError, match="too many rows"):
        checked_through_address(x, 2)


def test_a_callee_that_is_not_at_the_top_of_a_module_is_refused():
    def make():
        @numba.njit
        def inner(a):
            return a + 1
        return inner

    inner = make()

    @numba.njit
    def caller(a):
        return call(inner, a)

    with pytest.raises(numba.core.errors.TypingError, match="not a numba function at the top"):
        caller(1.0)


KERNELS = """
import numba, numpy as np

@numba.njit(cache=True, parallel=True)
def scaled(x, scale):
    out = np.empty_like(x)
    for i in numba.prange(x.shape[0]):
        out[i] = x[i] * scale
    return out
"""

CALLER = """
import numba
from gradient.backends.kernel_calls import call
from kernels import scaled

@numba.njit(cache=True)
def caller(x):
    return call(scaled, call(scaled, x, 2.0), 3.0)
"""

RUN = """
import json, numpy as np, caller, kernels
out = caller.caller(np.arange(5.0))
print(json.dumps({"out": out.tolist(), "caller_hits": sum(caller.caller.stats.cache_hits.values()),
                  "kernel_compiled": len(kernels.scaled.stats.cache_misses)}))
"""


def _run(folder, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUN], cwd=folder, env=env, text=True,
                          capture_output=True, timeout=300)


def test_a_cached_caller_loads_in_a_process_that_never_compiled_its_callee(tmp_path):
    (tmp_path / "kernels.py").write_text(textwrap.dedent(KERNELS))
    (tmp_path / "caller.py").write_text(textwrap.dedent(CALLER))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    env.pop("NUMBA_CACHE_DIR", None)       # the caches beside the sources, in tmp_path
    runs = []
    for _ in range(2):
        child = _run(tmp_path, env)
        assert child.returncode == 0, child.stderr[-3000:]
        runs.append(json.loads(child.stdout))
    assert runs[0]["out"] == runs[1]["out"] == (np.arange(5.0) * 6).tolist()
    assert runs[0]["caller_hits"] == 0 and runs[1]["caller_hits"] == 1
    assert runs[1]["kernel_compiled"] == 0     # the callee too came from the cache
    # the callee edited to return another type: the cached caller refuses to run
    (tmp_path / "kernels.py").write_text(textwrap.dedent(KERNELS).replace(
        "return out", "return out.sum()"))
    child = _run(tmp_path, env)
    assert child.returncode == 1 and "now returns float64" in child.stderr, child.stderr[-3000:]
