"""``spawn(fn, args, nprocs)``: run ``fn(i, *args)`` in ``nprocs`` new processes, as
``torch.multiprocessing.spawn`` does, the way PyTorch's DistributedDataParallel tutorials
start their ranks.

Where MPI is installed (``gradient[distributed]``) the processes are ranks 0 .. nprocs - 1 of
one ``mpiexec`` (``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set as ``gradient run`` sets them),
so a ``dist.init_process_group("gloo", rank=i, world_size=nprocs)`` inside ``fn`` joins them
into a process group (gradient's collectives run over MPI). Without MPI they are plain
processes of Python's ``multiprocessing`` (a process group of more than one then cannot form).

Each process imports the script that called ``spawn`` as ``__mp_main__`` (its
``if __name__ == "__main__":`` block does not run again), as Python's spawn start method does,
and calls ``fn``. When ``fn`` raises in one of them, the others are stopped (an MPI abort: none
waits for ever in a collective) and ``spawn`` raises :class:`ProcessRaisedException` with that
process's traceback; a process that dies otherwise gives :class:`ProcessExitedException`.

Example::

    >>> def train(rank, world_size):
    ...     dist.init_process_group("gloo", rank=rank, world_size=world_size)
    ...     ...
    >>> if __name__ == "__main__":
    ...     spawn(train, args=(2,), nprocs=2)
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import runpy
import shutil
import subprocess
import sys
import tempfile
import traceback
import types

from ..distributed.launch import launch_environment, mpiexec
from ..errors import ArgumentTypeError, ArgumentValueError, DistributedError

__all__ = ["spawn", "start_processes", "ProcessContext", "ProcessRaisedException",
           "ProcessExitedException"]

_WHERE, _CALL = "where.pickle", "call.pickle"   # (sys.path, script, argv), then (fn, args)


class ProcessRaisedException(Exception):
    """``fn`` raised in process ``error_index``; the message holds its traceback."""

    def __init__(self, msg: str, error_index: int, error_pid: int | None = None):
        super().__init__(msg)
        self.error_index, self.pid = error_index, error_pid


class ProcessExitedException(Exception):
    """A process ended with ``exit_code`` without an exception of ``fn`` (killed, or exited)."""

    def __init__(self, msg: str, error_index: int, error_pid: int | None = None,
                 exit_code: int | None = None, signal_name: str | None = None):
        super().__init__(msg)
        self.error_index, self.pid = error_index, error_pid
        self.exit_code, self.signal_name = exit_code, signal_name


class ProcessContext:
    """The processes of one :func:`spawn` (``join=False`` returns it): :meth:`join` waits."""

    def __init__(self, processes: list, directory: str, nprocs: int):
        self.processes, self._directory, self._nprocs = processes, directory, nprocs

    def pids(self) -> list:
        return [p.pid for p in self.processes]

    def join(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout`` seconds) for the processes: True once all ended well;
        raises :class:`ProcessRaisedException` or :class:`ProcessExitedException` when one
        failed."""
        for process in self.processes:
            try:
                status = _wait(process, timeout)
            except subprocess.TimeoutExpired:
                return False
            if status is None:
                return False
            if status != 0:
                self._raise(status)
        shutil.rmtree(self._directory, ignore_errors=True)
        return True

    def _raise(self, status: int) -> None:
        for process in self.processes:      # (the others, stopped by the abort or not yet)
            _stop(process)
        errors = sorted(f for f in os.listdir(self._directory) if f.startswith("error-"))
        if errors:
            index = int(errors[0].split("-")[1])
            with open(os.path.join(self._directory, errors[0]), encoding="utf-8") as f:
                text = f.read()
            shutil.rmtree(self._directory, ignore_errors=True)
            raise ProcessRaisedException(
                f"\n\n-- Process {index} terminated with the following error:\n{text}", index)
        shutil.rmtree(self._directory, ignore_errors=True)
        raise ProcessExitedException(f"process terminated with exit code {status} (of "
                                     f"{self._nprocs} spawned)", 0, exit_code=status)


def start_processes(fn, args=(), nprocs: int = 1, join: bool = True, daemon: bool = False,
                    start_method: str = "spawn"):
    """:func:`spawn` with a ``start_method`` (taken as "spawn": each process imports the
    calling script afresh)."""
    if not callable(fn):
        raise ArgumentTypeError(f"spawn: fn must be callable, got {type(fn).__name__}")
    if not isinstance(nprocs, int) or nprocs < 1:
        raise ArgumentValueError(f"spawn: nprocs must be a positive integer, got {nprocs!r}")
    directory = tempfile.mkdtemp(prefix="gradient-spawn-")
    main = sys.modules.get("__main__")
    main_path = getattr(main, "__file__", None)
    try:
        call = pickle.dumps((fn, tuple(args)))
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        shutil.rmtree(directory, ignore_errors=True)
        raise ArgumentTypeError(
            f"spawn: fn and args must be picklable (a function defined at the top "
            f"level of a module or script, not a lambda or a closure): {e}") from e
    where = (list(sys.path), main_path and os.path.abspath(main_path), list(sys.argv))
    for name, data in ((_WHERE, pickle.dumps(where)), (_CALL, call)):
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    try:
        command = [mpiexec(), "-n", str(nprocs), sys.executable, "-c",
                   "from gradient.multiprocessing.spawn import _main; _main()", directory]
        processes = [subprocess.Popen(command, env=launch_environment())]
    except DistributedError:          # no MPI here: plain processes, one per index
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_run, args=(i, directory), daemon=daemon)
                     for i in range(nprocs)]
        for process in processes:
            process.start()
    spawned = ProcessContext(processes, directory, nprocs)
    if not join:
        return spawned
    while not spawned.join():
        pass
    return None


def spawn(fn, args=(), nprocs: int = 1, join: bool = True, daemon: bool = False,
          start_method: str = "spawn"):
    """Run ``fn(i, *args)`` for ``i`` in 0 .. nprocs - 1, each in a new process (see the
    module docstring); with ``join`` (the default) wait for all, else return their
    :class:`ProcessContext`."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)


def _wait(process, timeout):
    if isinstance(process, subprocess.Popen):
        return process.wait(timeout)
    process.join(timeout)
    return process.exitcode


def _stop(process) -> None:
    if isinstance(process, subprocess.Popen):
        if process.poll() is None:
            process.kill()
            process.wait()
    elif process.is_alive():
        process.kill()
        process.join()


def _run(index: int, directory: str) -> None:
    """In a spawned process: the caller's script as ``__mp_main__``, then ``fn(index, *args)``;
    an exception's traceback goes to ``directory`` for the parent to raise, and the other
    processes of an MPI launch are stopped."""
    try:
        with open(os.path.join(directory, _WHERE), "rb") as f:
            sys.path[:], main_path, argv = pickle.load(f)   # (written by spawn in the parent)
        sys.argv[:] = argv                      # (a script's fn may read its arguments)
        current = getattr(sys.modules.get("__main__"), "__file__", None)
        if main_path and (current is None or os.path.abspath(current) != main_path):
            # a function of the script is pickled by name: import the script (where Python's
            # own spawn has not: it imports it too)
            module = types.ModuleType("__mp_main__")
            module.__dict__.update(runpy.run_path(main_path, run_name="__mp_main__"))
            sys.modules["__main__"] = sys.modules["__mp_main__"] = module
        with open(os.path.join(directory, _CALL), "rb") as f:
            fn, args = pickle.load(f)
        fn(index, *args)
    except BaseException:      # noqa: BLE001  (reported to the parent, which raises it)
        with open(os.path.join(directory, f"error-{index}"), "w", encoding="utf-8") as f:
            f.write(traceback.format_exc())
        if "PMI_RANK" in os.environ or "OMPI_COMM_WORLD_RANK" in os.environ:
            try:       # the others may wait in a collective for this one: stop them
                from mpi4py import MPI
                MPI.COMM_WORLD.Abort(1)
            except ImportError:
                pass
        sys.exit(1)


def _main() -> None:
    from ..distributed.launch import _environment
    _environment()
    _run(int(os.environ.get("RANK", "0")), sys.argv[1])
