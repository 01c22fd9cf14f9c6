"""The process group and its collectives over MPI (``mpi4py``): what ``gradient.distributed``
exports, with ``torch.distributed``'s names and semantics.

Tensors go in and come out on their device; a collective writes its result into the tensor
it was given (``all_reduce``, ``broadcast``, ``recv``) or into the output tensors passed. The
arrays of CPU tensors are given to MPI as they are (contiguous ones without a copy); in a group
made with ``backend="nccl"``, CUDA tensors go to NCCL on the GPU (:mod:`.nccl`); other devices'
go through host memory.

Every collective is started non-blocking and waited for with a deadline
(``GRADIENT_DISTRIBUTED_TIMEOUT`` seconds, default 300): a rank that died, raised, or took
another path makes the others raise :class:`~gradient.errors.DistributedError` instead of
hanging. ``async_op=True`` returns the :class:`Work` instead of waiting.

Example (run with ``gradient run -n 2 script.py``)::

    >>> import gradient.distributed as dist
    >>> dist.init_process_group("mpi")
    >>> t = gradient.tensor([float(dist.get_rank() + 1)])
    >>> dist.all_reduce(t)          # t == [3.] on both ranks
"""

from __future__ import annotations

import enum
import os
import time

import numpy as np

from ..errors import DistributedError
from ..tensor import Tensor

__all__ = ["ReduceOp", "Work", "ProcessGroup", "init_process_group", "destroy_process_group",
           "is_initialized", "is_available", "get_rank", "get_world_size", "get_group",
           "get_backend", "group", "barrier",
           "all_reduce", "broadcast", "all_gather", "all_gather_into_tensor",
           "reduce_scatter_tensor", "send", "recv", "isend", "irecv", "new_group"]


class ReduceOp(enum.Enum):
    """How ``all_reduce`` combines the ranks' tensors (``torch.distributed.ReduceOp``)."""
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MAX = "max"
    MIN = "min"


def timeout() -> float:
    """Seconds a collective may take: ``GRADIENT_DISTRIBUTED_TIMEOUT``, default 300."""
    try:
        return float(os.environ.get("GRADIENT_DISTRIBUTED_TIMEOUT", "300"))
    except ValueError:
        return 300.0


class Work:
    """A collective under way (``async_op=True``): :meth:`wait` finishes it (writing its result
    into the tensors) and :meth:`is_completed` asks without waiting."""

    def __init__(self, group: "ProcessGroup", requests: list, what: str, finish=None,
                 event=None):
        self._group, self._requests, self._what, self._finish = group, requests, what, finish
        self._event = event   # a CUDA event after an NCCL collective, or None
        self._done = False

    def _test(self) -> bool:
        return (self._group.mpi.Request.Testall(self._requests)
                and (self._event is None or self._event.done))

    def is_completed(self) -> bool:
        if not self._done and self._test():
            self._complete()
        return self._done

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the collective is done; DistributedError past the deadline."""
        if self._done:
            return True
        limit = time.monotonic() + (timeout() if timeout_s is None else timeout_s)
        spins = 0
        while not self._test():
            if time.monotonic() > limit:
                if self._event is not None:   # NCCL's kernels would wait for the peer forever
                    self._group.nccl.abort()
                raise DistributedError(
                    f"rank {self._group.rank}: {self._what} did not complete within "
                    f"{timeout() if timeout_s is None else timeout_s:g} s "
                    "(GRADIENT_DISTRIBUTED_TIMEOUT): another rank failed, exited or did not "
                    "call it")
            spins += 1
            if spins > 100:   # after a short spin, yield the core to the other ranks
                time.sleep(min(1e-3, 1e-6 * spins))
        self._complete()
        return True

    def _complete(self) -> None:
        self._done = True
        if self._event is not None:
            self._group.nccl.check(self._what)
        if self._finish is not None:
            self._finish()


class ProcessGroup:
    """Ranks that communicate: an MPI communicator, with its rank and size, and for the
    ``"nccl"`` backend an NCCL communicator over the same ranks for CUDA tensors."""

    def __init__(self, comm, mpi, nccl=None):
        self.comm, self.mpi, self.nccl = comm, mpi, nccl
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    @property
    def backend(self) -> str:
        return "mpi" if self.nccl is None else "nccl"

    def __repr__(self) -> str:
        return f"ProcessGroup(rank={self.rank}, size={self.size}, backend={self.backend!r})"


_WORLD: ProcessGroup | None = None


def is_available() -> bool:
    """Whether the MPI backend can be used (``mpi4py`` is installed)."""
    import importlib.util
    return importlib.util.find_spec("mpi4py") is not None


def init_process_group(backend: str = "mpi", init_method=None, world_size: int = -1,
                       rank: int = -1, timeout=None, **_ignored) -> None:
    """Join the default process group of the processes an MPI launcher started
    (``gradient run -n N script.py`` or ``mpiexec -n N python script.py``).

    ``backend`` is ``"mpi"``, ``"nccl"`` or ``"auto"`` (``"gloo"`` is taken as MPI too, for
    scripts written for torch). With ``"nccl"`` each rank takes the GPU of its ``LOCAL_RANK``
    and CUDA tensors go through NCCL (MPI still starts the ranks and carries host tensors);
    ``"auto"`` is NCCL where every GPU can be used, MPI otherwise. A process started without a
    launcher is a group of one... unless ``world_size`` asks for more, which raises
    DistributedError saying how to launch.
    """
    global _WORLD
    if _WORLD is not None:
        raise DistributedError("init_process_group: the default process group is already "
                               "initialised (call destroy_process_group first)")
    if backend not in ("mpi", "nccl", "auto", "gloo"):
        raise DistributedError(f"init_process_group: backend {backend!r} is not available; "
                               "gradient's backends are 'mpi', 'nccl' and 'auto'")
    from .nccl import NcclTransport, nccl_unavailable
    why_not_nccl = nccl_unavailable() if backend in ("nccl", "auto") else "not asked for"
    if backend == "nccl" and why_not_nccl:
        raise DistributedError(f"init_process_group: the 'nccl' backend cannot run here: "
                               f"{why_not_nccl}. Use backend='mpi' on CPUs")
    if not is_available():
        raise DistributedError("init_process_group: the MPI backend needs mpi4py and an MPI "
                               "library: pip install 'gradient[distributed]'")
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    if world_size not in (-1, None) and comm.Get_size() != world_size:
        raise DistributedError(
            f"init_process_group: world_size={world_size} was asked for, but this process was "
            f"started as one of {comm.Get_size()}; launch the script with "
            f"`gradient run -n {world_size} script.py` (or `mpiexec -n {world_size} python "
            "script.py`)")
    if rank not in (-1, None) and comm.Get_rank() != rank:
        raise DistributedError(f"init_process_group: rank={rank} was asked for, but MPI made "
                               f"this process rank {comm.Get_rank()}")
    _WORLD = ProcessGroup(comm, MPI, None if why_not_nccl else NcclTransport(comm))
    os.environ.setdefault("RANK", str(_WORLD.rank))
    os.environ.setdefault("WORLD_SIZE", str(_WORLD.size))


def destroy_process_group(group=None) -> None:
    """Leave the default process group (MPI itself is finalised when the process exits)."""
    global _WORLD
    if group is None or group is _WORLD:
        _WORLD = None


def is_initialized() -> bool:
    return _WORLD is not None


def get_group(group=None) -> ProcessGroup:
    """The group a collective runs in: ``group``, or the default one."""
    if group is not None:
        return group
    if _WORLD is None:
        raise DistributedError("the default process group is not initialised: call "
                               "gradient.distributed.init_process_group() first")
    return _WORLD


def get_rank(group=None) -> int:
    return get_group(group).rank


def get_world_size(group=None) -> int:
    return get_group(group).size


def get_backend(group=None) -> str:
    """The group's backend: ``"mpi"``, or ``"nccl"`` where CUDA tensors go through NCCL."""
    return get_group(group).backend


class _Groups:
    """``torch.distributed.group``: ``group.WORLD`` is the default process group (None
    before :func:`init_process_group`; None means the default wherever a group is taken)."""

    @property
    def WORLD(self) -> "ProcessGroup | None":  # noqa: N802  (torch's name)
        return _WORLD


group = _Groups()


def new_group(ranks=None) -> ProcessGroup | None:
    """A group of some ranks (all of them by default); None on a rank outside it. Every rank
    of the default group must call it, with the same ranks."""
    world = get_group()
    ranks = sorted(range(world.size) if ranks is None else ranks)
    comm = world.comm.Create_group(world.comm.Get_group().Incl(ranks))
    if comm == world.mpi.COMM_NULL:
        return None
    return ProcessGroup(comm, world.mpi, None if world.nccl is None else type(world.nccl)(comm))


# ---------------------------------------------------------------------------- collectives
def _host(tensor: Tensor) -> np.ndarray:
    """A contiguous host array with the tensor's values: its own array where that is one."""
    data = tensor._data
    if type(data) is np.ndarray and data.flags.c_contiguous and data.dtype.kind != "V":
        return data
    return np.ascontiguousarray(tensor._backend.to_numpy(data))


def _on_gpu(group: ProcessGroup, tensor: Tensor):
    """The tensor's CUDA array, contiguous (a copy where it is not), when the group's NCCL
    communicator moves it; None otherwise."""
    if group.nccl is None or not group.nccl.takes(tensor):
        return None
    data = tensor._data
    return data if data.flags.c_contiguous else data.copy()


def _both_on_gpu(group: ProcessGroup, output: Tensor, what: str):
    """The output's CUDA array (see :func:`_on_gpu`) for an input on the GPU."""
    out = _on_gpu(group, output)
    if out is None:
        raise DistributedError(f"{what}: the input is a CUDA tensor and the output is on "
                               f"{output.device}; put both on the GPU")
    return out


def _by_rank(group: ProcessGroup, buffer: np.ndarray, counts) -> list:
    """The MPI specification of ``buffer``'s bytes as one part per rank, ``counts[r]`` bytes
    each, one after the other (what the v-collectives and all-to-all take)."""
    counts = [int(c) for c in counts]
    return [buffer, counts, [int(c) for c in np.cumsum([0] + counts[:-1])], group.mpi.BYTE]


def _write_back(tensor: Tensor, array, op: str) -> None:
    """Put ``array`` (from :func:`_host` or :func:`_on_gpu`) into the tensor, if it is not its
    own array."""
    if array is not tensor._data:
        backend = tensor._backend
        value = array if type(array) is type(tensor._data) else backend.from_numpy(array)
        backend.setitem(tensor._data, (Ellipsis,), value.reshape(tensor.shape))
    tensor._version.bump(op)


def _on_nccl(group: ProcessGroup, what: str, started, after, async_op: bool):
    """The Work of an NCCL collective: ``started`` is the transport's (event, finish); then
    ``after`` (writing results back) once it is done."""
    event, finish = started

    def done():
        if finish is not None:
            finish()
        after()
    return _run(Work(group, [], what, done, event=event), async_op)


_LOW = ("float16", "bfloat16")


def _reducible(array: np.ndarray) -> np.ndarray:
    """MPI reduces float16/bfloat16 in float32 here (one rounding at the end)."""
    return array.astype(np.float32) if array.dtype.name in _LOW else array


def _mpi_op(group, op):
    op = ReduceOp(op) if not isinstance(op, ReduceOp) else op
    mpi = group.mpi
    return {ReduceOp.SUM: mpi.SUM, ReduceOp.AVG: mpi.SUM, ReduceOp.PRODUCT: mpi.PROD,
            ReduceOp.MAX: mpi.MAX, ReduceOp.MIN: mpi.MIN}[op], op


def _run(work: Work, async_op: bool):
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor: Tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Combine ``tensor`` over the ranks (sum by default), in place on every rank."""
    g = get_group(group)
    mpi_op, op = _mpi_op(g, op)
    gpu = _on_gpu(g, tensor)
    if gpu is not None:
        return _on_nccl(g, "all_reduce", g.nccl.all_reduce(gpu, op.value),
                        lambda: _write_back(tensor, gpu, "all_reduce"), async_op)
    host = _host(tensor)
    buffer = _reducible(host)
    request = g.comm.Iallreduce(g.mpi.IN_PLACE, buffer, op=mpi_op)

    def finish():
        result = buffer
        if op is ReduceOp.AVG:
            result = result / g.size if result.dtype.kind == "f" else result // g.size
        if result is not host:
            host[...] = result.astype(host.dtype, copy=False)
        _write_back(tensor, host, "all_reduce")
    return _run(Work(g, [request], "all_reduce", finish), async_op)


def broadcast(tensor: Tensor, src: int, group=None, async_op: bool = False):
    """Rank ``src``'s ``tensor`` into ``tensor`` on every rank."""
    g = get_group(group)
    gpu = _on_gpu(g, tensor)
    if gpu is not None:
        return _on_nccl(g, "broadcast", g.nccl.broadcast(gpu, src),
                        lambda: _write_back(tensor, gpu, "broadcast"), async_op)
    host = _host(tensor)
    request = g.comm.Ibcast(host.view(np.uint8).reshape(-1), root=src)
    return _run(Work(g, [request], "broadcast",
                     lambda: _write_back(tensor, host, "broadcast") if g.rank != src else None),
                async_op)


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """Every rank's ``tensor`` into ``tensor_list[rank]`` on every rank."""
    g = get_group(group)
    if len(tensor_list) != g.size:
        raise DistributedError(f"all_gather: tensor_list has {len(tensor_list)} tensors for "
                               f"{g.size} ranks")
    gpu = _on_gpu(g, tensor)
    if gpu is not None:
        out = g.nccl.cupy.empty((g.size,) + gpu.shape, gpu.dtype)
        return _on_nccl(g, "all_gather", g.nccl.all_gather(gpu, out),
                        lambda: [_write_back(t, part, "all_gather")
                                 for t, part in zip(tensor_list, out)], async_op)
    send = _host(tensor)
    gathered = np.empty((g.size,) + send.shape, send.dtype)
    request = g.comm.Iallgather(send.view(np.uint8).reshape(-1),
                                gathered.view(np.uint8).reshape(g.size, -1))

    def finish():
        for out, part in zip(tensor_list, gathered):
            _write_back(out, np.ascontiguousarray(part), "all_gather")
    return _run(Work(g, [request], "all_gather", finish), async_op)


def all_gather_into_tensor(output: Tensor, input: Tensor, group=None, async_op: bool = False):
    """Every rank's ``input`` concatenated along the first dimension into ``output``."""
    g = get_group(group)
    if output.numel() != input.numel() * g.size:
        raise DistributedError(f"all_gather_into_tensor: output of shape {tuple(output.shape)} "
                               f"cannot hold {g.size} inputs of shape {tuple(input.shape)}")
    gpu = _on_gpu(g, input)
    if gpu is not None:
        out = _both_on_gpu(g, output, "all_gather_into_tensor")
        return _on_nccl(g, "all_gather_into_tensor", g.nccl.all_gather(gpu, out),
                        lambda: _write_back(output, out, "all_gather_into_tensor"), async_op)
    send = _host(input)
    out = _host(output)
    request = g.comm.Iallgather(send.view(np.uint8).reshape(-1),
                                out.view(np.uint8).reshape(g.size, -1))
    return _run(Work(g, [request], "all_gather_into_tensor",
                     lambda: _write_back(output, out, "all_gather_into_tensor")), async_op)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op=ReduceOp.SUM, group=None,
                          async_op: bool = False):
    """``input`` (ranks times ``output``'s size along the first dimension) combined over the
    ranks; rank r gets part r in ``output``."""
    g = get_group(group)
    if input.numel() != output.numel() * g.size:
        raise DistributedError(f"reduce_scatter_tensor: input of shape {tuple(input.shape)} is "
                               f"not {g.size} outputs of shape {tuple(output.shape)}")
    mpi_op, op = _mpi_op(g, op)
    gpu = _on_gpu(g, input)
    if gpu is not None:
        out = _both_on_gpu(g, output, "reduce_scatter_tensor")
        return _on_nccl(g, "reduce_scatter_tensor", g.nccl.reduce_scatter(gpu, out, op.value),
                        lambda: _write_back(output, out, "reduce_scatter_tensor"), async_op)
    send = _reducible(_host(input))
    out = _host(output)
    result = np.empty(out.shape, send.dtype)
    request = g.comm.Ireduce_scatter_block(send.reshape(-1), result.reshape(-1), op=mpi_op)

    def finish():
        value = result / g.size if op is ReduceOp.AVG else result
        out[...] = value.astype(out.dtype, copy=False)
        _write_back(output, out, "reduce_scatter_tensor")
    return _run(Work(g, [request], "reduce_scatter_tensor", finish), async_op)


def send(tensor: Tensor, dst: int, group=None, tag: int = 0) -> None:
    """Send ``tensor`` to rank ``dst`` (which calls :func:`recv`)."""
    isend(tensor, dst, group, tag).wait()


def recv(tensor: Tensor, src: int, group=None, tag: int = 0) -> int:
    """Receive into ``tensor`` what rank ``src`` sent; returns ``src``."""
    irecv(tensor, src, group, tag).wait()
    return src


def isend(tensor: Tensor, dst: int, group=None, tag: int = 0) -> Work:
    """Start sending ``tensor`` to rank ``dst``; the work handle's ``wait()`` returns once it
    is sent (until then ``tensor`` must not change). A send that does not wait cannot block a
    pair of ranks that send to each other before they receive."""
    g = get_group(group)
    gpu = _on_gpu(g, tensor)
    if gpu is not None:
        return _on_nccl(g, "send", g.nccl.send(gpu, dst), lambda: None, True)
    host = _host(tensor)
    return Work(g, [g.comm.Isend(host.view(np.uint8).reshape(-1), dest=dst, tag=tag)], "send")


def irecv(tensor: Tensor, src: int, group=None, tag: int = 0) -> Work:
    """Start receiving into ``tensor`` what rank ``src`` sends; ``wait()`` on the handle
    returns once it is there."""
    g = get_group(group)
    gpu = _on_gpu(g, tensor)
    if gpu is not None:
        return _on_nccl(g, "recv", g.nccl.recv(gpu, src),
                        lambda: _write_back(tensor, gpu, "recv"), True)
    host = _host(tensor)
    return Work(g, [g.comm.Irecv(host.view(np.uint8).reshape(-1), source=src, tag=tag)], "recv",
                lambda: _write_back(tensor, host, "recv"))


def barrier(group=None, async_op: bool = False):
    """Wait until every rank of the group reached it."""
    g = get_group(group)
    return _run(Work(g, [g.comm.Ibarrier()], "barrier"), async_op)
