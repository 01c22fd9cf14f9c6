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
