"""Kernels loaded from numba's disk cache without parsing their bitcode first
(gradient.backends.lazy_linking): the same results, the bitcode parsed only when a new
compilation links the kernel in or numba asks for a name the loaded code defines."""

import subprocess
import sys
import textwrap

import pytest

from gradient.backends import cpu_compile, lazy_linking  # noqa: F401  (cpu_compile installs it)

_KERNEL = '''
import numba, numpy as np

@numba.njit(cache=True)
def scaled(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = x[i] * 2.5 + 1.0
    return out
'''

_LOAD = '''
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import llvmlite.binding as ll
from numba.core import codegen
import gradient.backends.cpu_compile                  # installs lazy_linking
from gradient.backends import lazy_linking
parsed = []
parse = codegen.ll.parse_bitcode
codegen.ll.parse_bitcode = lambda data: (parsed.append(len(data)), parse(data))[1]
import kernel_module, numba
x = np.arange(5, dtype=np.float64)
first = kernel_module.scaled(x)                       # loaded from the disk cache
loaded_without_parsing = not parsed and not kernel_module.scaled.stats.cache_misses
engine = kernel_module.scaled.targetctx.codegen()._engine
unknown = engine.is_symbol_defined("no_such_symbol_anywhere")   # names every loaded library

@numba.njit
def calls_it(x):                                      # links the loaded kernel in
    return kernel_module.scaled(x).sum()

print(lazy_linking.installed(), loaded_without_parsing, bool(parsed), unknown,
      first.tolist() == (x * 2.5 + 1.0).tolist(), calls_it(x) == (x * 2.5 + 1.0).sum())
'''


def test_a_cached_kernel_loads_without_its_bitcode_and_still_links(tmp_path):
    if not lazy_linking.installed():
        pytest.skip("numba's code generation is not as lazy_linking expects: kernels load as "
                    "numba loads them")
    (tmp_path / "kernel_module.py").write_text(textwrap.dedent(_KERNEL))
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    compile_it = ("import sys, numpy as np; sys.path.insert(0, sys.argv[1]); "
                  "import kernel_module; kernel_module.scaled(np.ones(2))")
    run = dict(capture_output=True, text=True, timeout=300,
               env={**__import__("os").environ, **env})
    done = subprocess.run([sys.executable, "-c", compile_it, str(tmp_path)], **run)
    assert done.returncode == 0, done.stderr[-2000:]
    done = subprocess.run([sys.executable, "-c", _LOAD, str(tmp_path)], **run)
    assert done.returncode == 0, done.stderr[-2000:]
    installed, without_parsing, parsed_later, unknown, same, linked = \
        done.stdout.split()[-6:]
    assert installed == "True"
    assert without_parsing == "True"     # numba's own loading parses it at once
    assert parsed_later == "True"        # asked for an unknown name, or linked: parsed then
    assert unknown == "False"
    assert same == "True" and linked == "True"
