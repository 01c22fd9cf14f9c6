"""Every compiled CPU kernel gives the same bits whether numba compiles it in this process or
loads it from its disk cache.

Numba keeps compiled machine code on disk (``cache=True``), so a user's first process compiles
the kernels and every later one loads them. With fastmath flags LLVM was free to round two
copies of one kernel differently, and it did: a GGUF model's logits moved by 0.3 from the
second run on (see :mod:`gradient.backends.cpu_compile`). A single pytest process cannot see
that, since it compiles everything fresh, so this test runs ``compiled_cache_probe`` (a
representative call of every kernel family) in a child process with an empty
``NUMBA_CACHE_DIR``, then in a second child with the cache that the first one wrote.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")

ROOT = Path(__file__).resolve().parents[2]


def _probe(cache_dir: Path) -> dict:
    # (a compiled decode step's source is written under GRADIENT_CACHE_DIR: a fresh one too)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir),
               GRADIENT_CACHE_DIR=str(cache_dir / "gradient"))
    run = subprocess.run([sys.executable, "-m", "tests.backends.compiled_cache_probe"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def fresh_and_cached(tmp_path_factory):
    cache = tmp_path_factory.mktemp("numba-cache")
    fresh = _probe(cache)                   # compiles every kernel, writes the cache
    return fresh, _probe(cache)             # loads every kernel from it


def test_every_kernel_family_gives_the_same_bits_from_the_disk_cache(fresh_and_cached):
    fresh, cached = fresh_and_cached
    assert fresh["digests"].keys() == cached["digests"].keys()
    different = sorted(name for name, digest in fresh["digests"].items()
                       if cached["digests"][name] != digest)
    assert different == [], f"kernel families whose outputs changed from the cache: {different}"


def test_the_first_run_compiled_and_the_second_loaded_every_kernel(fresh_and_cached):
    """Otherwise the comparison above would compare two fresh compilations. (A kernel that only
    runs inside other kernels is not loaded by itself: its code is in theirs.)"""
    fresh, cached = fresh_and_cached
    fresh_f, cached_f = fresh["functions"], cached["functions"]
    kernels = [name for name, f in fresh_f.items() if not f["inline"]]
    assert [n for n in kernels if cached_f[n]["hits"]], "the second run loaded nothing"
    assert [n for n in kernels if fresh_f[n]["hits"] or fresh_f[n]["misses"] != fresh_f[n]["signatures"]] == []
    assert [n for n in kernels if cached_f[n]["misses"] or cached_f[n]["hits"] != cached_f[n]["signatures"]] == []


def test_every_kernel_follows_the_compile_policy_and_is_probed(fresh_and_cached):
    """Every numba function in gradient is cached and has no fastmath flags (the policy of
    gradient.backends.cpu_compile), and the probe reaches each one: a new kernel needs a
    representative call in compiled_cache_probe.py before this passes."""
    functions = fresh_and_cached[0]["functions"]
    assert sorted(n for n, f in functions.items() if not f["cached"] and not f["inline"]) == []
    assert sorted(n for n, f in functions.items() if f["fastmath"]) == []
    unreached = sorted(n for n, f in functions.items() if not f["inline"] and not f["signatures"])
    assert unreached == [], f"kernels no call in compiled_cache_probe.py reaches: {unreached}"


def test_the_compile_helper_offers_no_fastmath():
    from gradient.backends.cpu_compile import compile_kernel
    with pytest.raises(TypeError):
        compile_kernel(lambda x: x, fastmath=True)
