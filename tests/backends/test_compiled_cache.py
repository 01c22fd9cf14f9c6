"""Every compiled CPU kernel gives the same bits whether numba compiles it in this process or
loads it from its disk cache.

Numba keeps compiled machine code on disk (``cache=True``), so a user's first process compiles
the kernels and every later one loads them. With fastmath flags LLVM was free to round two
copies of one kernel differently, and it did: a GGUF model's logits moved by 0.3 from the
second run on (see :mod:`gradient.backends.cpu_compile`). A single pytest process cannot see
that, since it compiles everything fresh, so this test runs ``compiled_cache_probe`` (a
representative call of every kernel family) in child processes with empty
``NUMBA_CACHE_DIR``s, then in second children with the caches that the first ones wrote.

Compiling every kernel twice more takes minutes of both cores, so the tests of the probe are
marked ``separate``: the default run leaves them out and CI runs them in a pass of their own.
They share one probe (a module fixture), so under pytest-xdist the pass keeps a file's tests
on one worker and starts the files in their order (``-m separate -n auto --dist loadfile
--no-loadscope-reorder``): this file, the first, starts at once, and the other worker runs the
rest of the pass meanwhile. (``--dist loadgroup`` would not keep them together: pytest 9 no
longer lets xdist 3.8 rename a test after its group.) The compile policy itself is checked in
every run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")

ROOT = Path(__file__).resolve().parents[2]


#: The probe's families in two groups, each run by a child of its own with a cache of its own,
#: the two at once (compiling is single-threaded: the machine's second core runs the other).
GROUPS = (("cpu_kernels", "cpu_attention", "cpu_low_precision", "cpu_float_rows",
           "ggml_dequantize",
           "quant_matmul", "quant_interleaved", "quant_weight_only"),
          ("gpt2_decode", "llama_decode", "llama_float_decode", "llama_half_decode"))


def _probe(cache_dirs) -> dict:
    """Both groups run at once, each with its own NUMBA_CACHE_DIR (and GRADIENT_CACHE_DIR: a
    compiled decode step's source is written there); their reports merged."""
    children = []
    for cache_dir, families in zip(cache_dirs, GROUPS):
        env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir),
                   GRADIENT_CACHE_DIR=str(cache_dir / "gradient"))
        children.append(subprocess.Popen(
            [sys.executable, "-m", "tests.backends.compiled_cache_probe", *families], cwd=ROOT,
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    reports = []
    try:
        for child in children:
            # a guard against a hung child only: compiling both groups takes 10-25 minutes
            # of two loaded cores
            out, err = child.communicate(timeout=3600)
            assert child.returncode == 0, err[-4000:]
            reports.append(json.loads(out))
    finally:            # a failed or timed-out probe leaves no child compiling behind it
        for child in children:
            child.kill()
            child.wait()
    merged = {"digests": {}, "functions": {}}
    for report in reports:
        merged["digests"].update(report["digests"])
        for name, f in report["functions"].items():
            seen = merged["functions"].setdefault(
                name, dict(f, signatures=0, hits=0, misses=0, float32_checked=0, in_double=False))
            for count in ("signatures", "hits", "misses", "float32_checked"):
                seen[count] += f[count]
            seen["in_double"] = seen["in_double"] or f["in_double"]
    return merged


@pytest.fixture(scope="module")
def fresh_and_cached(tmp_path_factory):
    caches = [tmp_path_factory.mktemp("numba-cache") for _ in GROUPS]
    fresh = _probe(caches)                  # compiles every kernel, writes the caches
    return fresh, _probe(caches)            # loads every kernel from them


def test_the_groups_cover_the_probe():
    from .compiled_cache_probe import CALLS
    assert sorted(n for group in GROUPS for n in group) == sorted(CALLS)


@pytest.mark.separate
def test_every_kernel_family_gives_the_same_bits_from_the_disk_cache(fresh_and_cached):
    fresh, cached = fresh_and_cached
    assert fresh["digests"].keys() == cached["digests"].keys()
    different = sorted(name for name, digest in fresh["digests"].items()
                       if cached["digests"][name] != digest)
    assert different == [], f"kernel families whose outputs changed from the cache: {different}"


@pytest.mark.separate
def test_the_first_run_compiled_and_the_second_loaded_every_kernel(fresh_and_cached):
    """Otherwise the comparison above would compare two fresh compilations. (A kernel that only
    runs inside other kernels is not loaded by itself: its code is in theirs.)"""
    fresh, cached = fresh_and_cached
    fresh_f, cached_f = fresh["functions"], cached["functions"]
    kernels = [name for name, f in fresh_f.items() if not f["inline"] and not f["unavailable"]]
    assert [n for n in kernels if cached_f[n]["hits"]], "the second run loaded nothing"
    assert [n for n in kernels if fresh_f[n]["hits"] or fresh_f[n]["misses"] != fresh_f[n]["signatures"]] == []
    assert [n for n in kernels if cached_f[n]["misses"] or cached_f[n]["hits"] != cached_f[n]["signatures"]] == []


@pytest.mark.separate
def test_float32_kernels_compute_in_float32(fresh_and_cached):
    """No float32 kernel computes in double: a Python literal in a kernel's arithmetic makes
    numba promote float32 to float64 (see gradient.backends.cpu_compile), which is slower and
    not the arithmetic of the composition. The first probe compiled every kernel afresh and
    read the LLVM IR of each float32 signature (compiled_cache_probe.float32_arithmetic)."""
    functions = fresh_and_cached[0]["functions"]
    checked = {name.rsplit(".", 1)[1] for name, f in functions.items() if f["float32_checked"]}
    assert {"_attend", "_exp_row", "_normalize_rows", "_shift_rows",
            "_score_gradient", "_gelu_tanh_grad", "_silu_grad", "_adam_step", "_sgd_step",
            "_rmsprop_step", "_adagrad_step", "_adamax_step",
            "_index_add_rows", "_rows", "_columns", "_minus_rows", "_cross_entropy_rows",
            "_log_softmax_rows", "_scale_rows_less_target", "_add_to_rows", "_swiglu_finish",
            "_swiglu_grad", "_rotary"} <= checked, sorted(checked)
    doubles = sorted(name for name, f in functions.items() if f["in_double"])
    assert doubles == [], f"float32 kernels computing in float64: {doubles}"


def test_every_kernel_follows_the_compile_policy():
    """Every numba function in gradient is cached and has no fastmath flags (the policy of
    gradient.backends.cpu_compile)."""
    from .compiled_cache_probe import compiled_functions, policy
    functions = {name: policy(d) for name, d in compiled_functions().items()}
    assert len(functions) > 100                  # the walk found gradient's kernels
    assert sorted(n for n, f in functions.items() if not f["cached"] and not f["inline"]) == []
    assert sorted(n for n, f in functions.items() if f["fastmath"]) == []


@pytest.mark.separate
def test_the_probe_reaches_every_kernel(fresh_and_cached):
    """A new kernel needs a representative call in compiled_cache_probe.py before this
    passes (but kernels of instructions this CPU lacks, AMX's tiles, which never compile
    here)."""
    functions = fresh_and_cached[0]["functions"]
    unreached = sorted(n for n, f in functions.items()
                       if not f["inline"] and not f["signatures"] and not f["unavailable"])
    assert unreached == [], f"kernels no call in compiled_cache_probe.py reaches: {unreached}"


def test_the_compile_helper_offers_no_fastmath():
    from gradient.backends.cpu_compile import compile_kernel
    with pytest.raises(TypeError):
        compile_kernel(lambda x: x, fastmath=True)
