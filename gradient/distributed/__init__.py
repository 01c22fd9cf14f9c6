"""Training across processes: ``torch.distributed``'s API over MPI (``mpi4py``), and NCCL
between GPUs (``init_process_group("nccl")``, :mod:`.nccl`).

Launch a script on N processes with ``gradient run -n N script.py args`` (it wraps
``mpiexec``; scripts started by ``mpiexec`` directly work too), and in it::

    import gradient.distributed as dist
    dist.init_process_group("mpi")
    model = gradient.nn.parallel.DistributedDataParallel(model)   # gradients averaged
    dist.all_reduce(t, op=dist.ReduceOp.MAX)

Collectives: :func:`all_reduce`, :func:`broadcast`, :func:`all_gather`,
:func:`all_gather_into_tensor`, :func:`reduce_scatter_tensor`, :func:`send`, :func:`recv`,
:func:`barrier`, and with a root or from all to all (:mod:`.rooted`) :func:`reduce`,
:func:`gather`, :func:`scatter`, :func:`all_to_all`, :func:`all_to_all_single`, each with
``async_op=True`` returning a :class:`Work`, and :func:`isend`, :func:`irecv`, which always
return one; Python objects (pickled, :mod:`.objects`) with :func:`all_gather_object`,
:func:`broadcast_object_list`, :func:`gather_object` and :func:`scatter_object_list`. A rank that fails
makes the others raise :class:`~gradient.errors.DistributedError` within
``GRADIENT_DISTRIBUTED_TIMEOUT`` seconds instead of hanging.
"""

import os as _os

from .collectives import (ProcessGroup, ReduceOp, Work, all_gather, all_gather_into_tensor,
                          all_reduce, barrier, broadcast, destroy_process_group, get_backend,
                          get_group, get_rank, get_world_size, group, init_process_group, irecv,
                          is_available, is_initialized, isend, new_group, recv,
                          reduce_scatter_tensor, send)
from .nccl import nccl_unavailable
from .objects import (all_gather_object, broadcast_object_list, gather_object,
                      scatter_object_list)
from .rooted import all_to_all, all_to_all_single, gather, reduce, scatter


def is_mpi_available() -> bool:
    """Whether ``init_process_group("mpi")`` can work (mpi4py is installed)."""
    return is_available()


def is_nccl_available() -> bool:
    """Whether ``init_process_group("nccl")`` can work: CuPy with NCCL and a CUDA device."""
    return nccl_unavailable() is None


def is_gloo_available() -> bool:
    """Whether ``init_process_group("gloo")`` can work: gradient runs it over MPI."""
    return is_available()


def is_torchelastic_launched() -> bool:
    """Whether torchrun started this process (``TORCHELASTIC_RUN_ID`` is set, as torch
    checks); gradient's launcher is ``gradient run``, which is MPI's."""
    return _os.environ.get("TORCHELASTIC_RUN_ID") is not None


__all__ = ["ProcessGroup", "ReduceOp", "Work", "all_gather", "all_gather_into_tensor",
           "all_reduce", "barrier", "broadcast", "destroy_process_group", "get_backend",
           "get_group", "get_rank", "get_world_size", "group", "init_process_group", "irecv",
           "is_available", "is_initialized", "is_mpi_available", "is_nccl_available",
           "is_gloo_available", "is_torchelastic_launched",
           "isend", "new_group", "recv", "reduce_scatter_tensor", "send",
           "reduce", "gather", "scatter", "all_to_all", "all_to_all_single",
           "all_gather_object", "broadcast_object_list", "gather_object", "scatter_object_list"]
