"""``gradient run -n N script.py args``: start N processes of a script under MPI.

It runs ``mpiexec -n N python -m gradient.distributed.launch script.py args``. In each
process, before the script runs:

* ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` are set from what the MPI launcher says (as
  ``torchrun`` sets them, so that scripts written for it find them);
* an exception that nobody catches is printed with the rank and then aborts every rank
  (``MPI_Abort``): the others stop at once instead of waiting in a collective.

Scripts started by ``mpiexec -n N python script.py`` directly also work; they only miss
those two conveniences.

Example::

    $ gradient run -n 2 examples/ddp_char_gpt.py --steps 50
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
import time

from ..errors import DistributedError

__all__ = ["mpiexec", "run", "launch_environment"]


def mpiexec() -> str:
    """The ``mpiexec`` to use: next to this Python (a virtual environment's, from the
    ``mpich`` wheel), else on PATH; DistributedError if there is none."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("mpiexec")
    if found is None:
        raise DistributedError("gradient run needs an MPI launcher (mpiexec): "
                               "pip install 'gradient[distributed]' (mpi4py and mpich)")
    return found


def run(n: int, script: str, args: list[str]) -> int:
    """Run ``script`` with ``args`` on ``n`` processes; their exit status (nonzero if any
    failed)."""
    if not os.path.isfile(script):
        raise DistributedError(f"gradient run: no script {script!r}")
    command = [mpiexec(), "-n", str(n), sys.executable, "-m", "gradient.distributed.launch",
               script, *args]
    return subprocess.call(command, env=launch_environment())


def launch_environment() -> dict:
    """The environment ``mpiexec`` runs with: this one, and as root Open MPI's consent to run
    as root. Open MPI's ``mpiexec`` refuses root unless both ``OMPI_ALLOW_RUN_AS_ROOT``
    variables are 1 (MPICH's does not ask); containers and GPU machines run as root by
    default, where ``torchrun`` starts and ``gradient run`` stopped. Values the user set are
    kept."""
    env = dict(os.environ)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def _environment() -> None:
    rank = os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK"))
    size = os.environ.get("PMI_SIZE", os.environ.get("OMPI_COMM_WORLD_SIZE"))
    local = os.environ.get("MPI_LOCALRANKID", os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", rank))
    for name, value in (("RANK", rank), ("WORLD_SIZE", size), ("LOCAL_RANK", local)):
        if value is not None:
            os.environ[name] = value


def _abort_on_error(kind, value, traceback) -> None:
    print(f"gradient run: rank {os.environ.get('RANK', '?')} failed; stopping every rank",
          file=sys.stderr, flush=True)
    sys.__excepthook__(kind, value, traceback)
    sys.stderr.flush()
    time.sleep(0.5)   # the launcher forwards what was written before the abort kills us
    try:
        from mpi4py import MPI
        MPI.COMM_WORLD.Abort(1)
    except Exception:   # noqa: BLE001  (no MPI: the process exits with the error as it is)
        pass


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m gradient.distributed.launch script.py [args]")
    _environment()
    sys.excepthook = _abort_on_error
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
