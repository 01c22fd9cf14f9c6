"""``torch.multiprocessing``: Python's :mod:`multiprocessing` (its names are all here:
``Process``, ``Queue``, ``Pool``, ``set_start_method`` ...) and :func:`spawn`, which starts a
script's ranks as PyTorch's DistributedDataParallel examples do (over MPI where it is
installed, see :mod:`.spawn`). Tensors pickle, so they pass through queues and as ``spawn``'s
arguments, as copies; a tensor in shared memory (``share_memory_()``, ``model.share_memory()``)
passes as a handle to that memory instead, and a forked child maps it too, so several
processes train one model's parameters in place (Hogwild), as with PyTorch.

Example::

    >>> import gradient.multiprocessing as mp
    >>> mp.spawn(train, args=(world_size,), nprocs=world_size)
"""

import multiprocessing as _multiprocessing
from multiprocessing import *  # noqa: F401,F403

from .spawn import (ProcessContext, ProcessExitedException, ProcessRaisedException,
                    spawn, start_processes)
from ..errors import ArgumentValueError

__all__ = ["spawn", "start_processes", "ProcessContext", "ProcessRaisedException",
           "ProcessExitedException", "get_sharing_strategy", "set_sharing_strategy",
           "get_all_sharing_strategies", *_multiprocessing.__all__]

_strategy = "file_system"


def get_all_sharing_strategies() -> set:
    """``{"file_system"}``: shared tensors cross processes as the names of their files in
    ``/dev/shm``, others by pickling (copies)."""
    return {"file_system"}


def get_sharing_strategy() -> str:
    return _strategy


def set_sharing_strategy(new_strategy: str) -> None:
    """Accepted for scripts that set it ("file_system" or "file_descriptor"); shared tensors
    cross processes by their files' names either way."""
    global _strategy
    if new_strategy not in ("file_system", "file_descriptor"):
        raise ArgumentValueError(
            f"set_sharing_strategy: {new_strategy!r} is not a sharing strategy "
            f"(file_system, file_descriptor)")
    _strategy = new_strategy
