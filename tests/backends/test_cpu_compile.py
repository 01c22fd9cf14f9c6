"""cpu_compile.compiled_already under the background switch (the ``gradient`` commands): a
kernel not compiled yet answers False, so that its stand-in runs (counted by ``declined``), and
goes to a child process to be compiled, at the latest when it is looked up again."""

import numba
import numpy as np

from gradient.backends import cpu_compile


def test_a_kernel_noted_goes_to_a_child_at_its_next_look_up(monkeypatch):
    """A server's first batch step notes the paged attention kernel after the first request's
    decode loop went to its child: nothing else would send it, and its steps would run
    through the module graph for as long as the server runs."""
    monkeypatch.setenv(cpu_compile.BACKGROUND, "1")
    monkeypatch.setattr(cpu_compile, "RECHECK_SECONDS", 0.0)
    monkeypatch.setattr(cpu_compile, "in_disk_cache", lambda dispatcher, types: False)
    monkeypatch.setattr(cpu_compile, "_ready", {})
    monkeypatch.setattr(cpu_compile, "_deferred", [])
    sent = []

    def to_a_child():
        sent.extend(cpu_compile._deferred)
        cpu_compile._deferred.clear()

    monkeypatch.setattr(cpu_compile, "compile_noted_in_a_child", to_a_child)

    @numba.njit
    def add_one(x):                       # compiled for nothing yet
        return x + 1

    x = np.zeros(3)
    before = cpu_compile.declined()
    assert not cpu_compile.compiled_already(add_one, (x,))
    assert sent == [] and len(cpu_compile._deferred) == 1    # noted: the first tokens first
    assert not cpu_compile.compiled_already(add_one, (x,))   # looked up again: sent
    assert [name for _, name, _ in sent] == ["add_one"] and cpu_compile._deferred == []
    assert cpu_compile.declined() == before + 2
    assert not add_one.signatures                            # nothing compiled here


def test_without_the_switch_a_kernel_compiles_where_it_is_called(monkeypatch):
    monkeypatch.delenv(cpu_compile.BACKGROUND, raising=False)

    @numba.njit
    def add_two(x):
        return x + 2

    before = cpu_compile.declined()
    assert cpu_compile.compiled_already(add_two, (np.zeros(3),))
    assert cpu_compile.declined() == before


def test_in_disk_cache_reads_numbas_index_as_numbas_own_look_up_does(tmp_path):
    """Whether the disk cache holds a kernel's code for some types, answered from the cache's
    index without loading the code: the same answer as numba's own load, before the kernel is
    compiled, after (for those types only), and once the code's file is gone."""
    import importlib.util
    import os
    import sys

    source = tmp_path / "cached_kernel_for_test.py"
    source.write_text("import numba\n\n\n@numba.njit(cache=True)\n"
                      "def add_three(x):\n    return x + 3\n")
    spec = importlib.util.spec_from_file_location("cached_kernel_for_test", source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        kernel = module.add_three
        floats, ints = (numba.typeof(np.zeros(3)),), (numba.typeof(np.zeros(3, np.int64)),)

        def numbas_own(types):
            return kernel._cache.load_overload(types, kernel.targetctx) is not None

        assert not cpu_compile.in_disk_cache(kernel, floats) and not numbas_own(floats)
        kernel(np.zeros(3))                                  # compiled, saved to the cache
        assert cpu_compile.in_disk_cache(kernel, floats) and numbas_own(floats)
        assert not cpu_compile.in_disk_cache(kernel, ints) and not numbas_own(ints)
        for name in os.listdir(tmp_path / "__pycache__"):    # the code gone, the index kept
            if name.endswith(".nbc"):
                os.remove(tmp_path / "__pycache__" / name)
        assert not cpu_compile.in_disk_cache(kernel, floats) and not numbas_own(floats)
    finally:
        del sys.modules[spec.name]
