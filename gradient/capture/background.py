"""A captured step's compiled loop, compiled by a child process while this one replays the step
in Python.

The first time a model's decode step is compiled on a machine, numba spends tens of seconds on
the loop over its layers (SmolLM2-135M Q4_1: about 25 s) before the second token. Where
:data:`SWITCH` is ``"1"`` (the ``gradient`` commands a user watches set it: ``generate``,
``chat``, ``serve``), a loop whose machine code is not in numba's disk cache yet is compiled
by a child process instead, into that cache; meanwhile the step replays in Python (the same
bits, a little slower per token), and once the child is done the loop is loaded from the cache
and used. A run that ends first leaves the child to finish (at a lower priority): the next run
finds the loop compiled. Library calls compile in their own process (the switch is off): what
a program gets does not depend on a child it did not ask for.

Example::

    >>> os.environ[SWITCH] = "1"          # what `gradient generate` does
    >>> model.generate(ids, max_new_tokens=30)   # tokens flow while the loop compiles
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time

from ..backends import cpu_compile
from ..errors import ArgumentTypeError

__all__ = ["SWITCH", "enabled", "cached", "declined", "RECHECK_SECONDS", "Pending",
           "StillCompiling", "compiling", "wait"]

#: Environment variable: "1" compiles a step's loop in a child process (see the docstring);
#: the same switch moves the largest kernels' compiling out of the way (cpu_compile).
SWITCH = cpu_compile.BACKGROUND

_CHILD = r"""
import importlib.util, pickle, sys
import numba
numba.get_num_threads()   # loads numba's threading layer, which parallel callees link against
name, path, types = sys.argv[1], sys.argv[2], pickle.loads(bytes.fromhex(sys.stdin.read()))
spec = importlib.util.spec_from_file_location(name, path)
module = importlib.util.module_from_spec(spec)
sys.modules[name] = module
spec.loader.exec_module(module)
module.loop.compile(types)
"""


def enabled() -> bool:
    return os.environ.get(SWITCH) == "1"


#: Whether numba's disk cache holds a dispatcher's machine code for some types.
cached = cpu_compile.in_disk_cache
#: How many times a kernel still compiling in a child process has let a stand-in run (a
#: NumPy twin, or the op's composition) in this process.
declined = cpu_compile.declined
#: How often a kernel compiling in a child process is looked for in numba's disk cache.
RECHECK_SECONDS = cpu_compile.RECHECK_SECONDS


class StillCompiling(RuntimeError):
    """The child has not finished: this step replays in Python."""


class Pending:
    """The loop of a module written at ``path`` (imported as ``name``), compiled for ``types``
    by a child process; ``compile(dispatcher, types)`` then loads it from the cache here.
    Calling it before the child is done raises :class:`StillCompiling`; after the child
    failed, ``TypeError`` (the plan then stays Python for good)."""

    def __init__(self, dispatcher, types, path: str, name: str, compile):
        self._dispatcher, self._types, self._compile = dispatcher, tuple(types), compile
        self._log = tempfile.TemporaryFile()
        self._child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, name, path], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=self._log, preexec_fn=cpu_compile.lower_priority)
        self._child.stdin.write(pickle.dumps(self._types).hex().encode())
        self._child.stdin.close()
        self._function = None
        _started.append(self._child)
        cpu_compile.compile_noted_in_a_child()   # the kernels the first tokens did without

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child (at most ``timeout`` seconds); its exit status."""
        return self._child.wait(timeout)

    def __call__(self, *args):
        if self._function is None:
            status = self._child.poll()
            if status is None:
                raise StillCompiling("the compiled loop is still being compiled in a child "
                                     "process")
            if status != 0:
                self._log.seek(0)
                last = (self._log.read().decode(errors="replace").strip().splitlines()
                        or [f"exit status {status}"])[-1]
                raise ArgumentTypeError(f"compiling the loop in a child process failed: {last}")
            self._function = self._compile(self._dispatcher, self._types)
        return self._function(*args)


_started: list = []       # the children of Pending loops, for wait()


def compiling() -> int:
    """How many child processes this process started are still compiling loops or kernels
    (a server reports it, so that a client can tell a warm server from one still compiling).

    Example: ``while background.compiling(): time.sleep(1)``
    """
    return sum(child.poll() is None for child in _started + cpu_compile._children)


def wait(timeout: float | None = None) -> bool:
    """Wait (at most ``timeout`` seconds in all) for every child process this process started
    to compile a loop or kernels; whether all are done. For a benchmark that times the
    compiled steps, not the Python replays meanwhile.

    Example: ``serve_some_requests(); background.wait(600); time_requests()``
    """
    end = None if timeout is None else time.monotonic() + timeout
    for child in _started + cpu_compile._children:
        try:
            child.wait(None if end is None else max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
    return True
