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
:func:`barrier`, each with ``async_op=True`` returning a :class:`Work`, and :func:`isend`,
:func:`irecv`, which always return one. A rank that fails
makes the others raise :class:`~gradient.errors.DistributedError` within
``GRADIENT_DISTRIBUTED_TIMEOUT`` seconds instead of hanging.
"""

from .collectives import (ProcessGroup, ReduceOp, Work, all_gather, all_gather_into_tensor,
                          all_reduce, barrier, broadcast, destroy_process_group, get_group,
                          get_rank, get_world_size, init_process_group, irecv, is_available,
                          is_initialized, isend, new_group, recv, reduce_scatter_tensor, send)
from .nccl import nccl_unavailable


def is_mpi_available() -> bool:
    """Whether ``init_process_group("mpi")`` can work (mpi4py is installed)."""
    return is_available()


def is_nccl_available() -> bool:
    """Whether ``init_process_group("nccl")`` can work: CuPy with NCCL and a CUDA device."""
    return nccl_unavailable() is None


__all__ = ["ProcessGroup", "ReduceOp", "Work", "all_gather", "all_gather_into_tensor",
           "all_reduce", "barrier", "broadcast", "destroy_process_group", "get_group", "get_rank",
           "get_world_size", "init_process_group", "irecv", "is_available", "is_initialized",
           "is_mpi_available", "is_nccl_available",
           "isend", "new_group", "recv", "reduce_scatter_tensor", "send"]
