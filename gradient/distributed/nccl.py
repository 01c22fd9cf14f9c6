"""NCCL between GPUs: how a process group made with ``init_process_group("nccl")`` moves the
data of CUDA tensors (through CuPy's ``cupy.cuda.nccl``).

The ranks are still started by an MPI launcher (``gradient run -n N``, one rank per GPU: rank
``LOCAL_RANK`` of a machine uses GPU ``LOCAL_RANK``), and MPI carries what NCCL needs to start
(rank 0's unique id) and what NCCL does not do (a barrier, tensors in host memory). Each
collective on CUDA tensors is enqueued on the current CUDA stream without a round trip through
the host; its :class:`~gradient.distributed.collectives.Work` is done when an event recorded
after it on that stream is. A collective that does not finish within the timeout (a rank died
or took another path) aborts the NCCL communicator, so the GPU kernels waiting on the peer
stop, and raises :class:`~gradient.errors.DistributedError`.

Sums, products, maxima, minima and averages are NCCL's own; data that only moves (broadcast,
gathers, send and receive) moves as bytes, whatever its dtype.

Example (``gradient run -n 2 train.py`` on a machine with 2 GPUs)::

    >>> dist.init_process_group("nccl")
    >>> t = gradient.ones(4, device="cuda")
    >>> dist.all_reduce(t)          # t == [2., 2., 2., 2.] on both ranks, computed by NCCL
"""

from __future__ import annotations

import os

from ..errors import DistributedError

__all__ = ["NcclTransport", "nccl_unavailable"]

#: NCCL's reduction types by dtype name (the others are reduced in float32 and cast back).
_REDUCIBLE = ("float16", "float32", "float64", "int8", "uint8", "int32", "int64")


def nccl_unavailable() -> str | None:
    """Why the NCCL backend cannot run here, or None when it can."""
    try:
        import cupy
        from cupy.cuda import nccl
    except Exception as e:   # ImportError, or CuPy's own error for a missing CUDA library
        return f"CuPy is not importable ({e}); install cupy-cuda12x"
    if not getattr(nccl, "available", True):
        return "CuPy finds no NCCL library; pip install nvidia-nccl-cu12"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return f"CUDA reports no device ({e})"
    return None if count else "this machine has no CUDA device"


class NcclTransport:
    """One NCCL communicator over the ranks of an MPI communicator ``comm``."""

    def __init__(self, comm):
        import cupy
        from cupy.cuda import nccl
        self.cupy, self.nccl = cupy, nccl
        rank, size = comm.Get_rank(), comm.Get_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        self.device = local % cupy.cuda.runtime.getDeviceCount()
        cupy.cuda.Device(self.device).use()
        uid = nccl.get_unique_id() if rank == 0 else None
        self.comm = nccl.NcclCommunicator(size, comm.bcast(uid, root=0), rank)
        self.size = size
        self._ops = {"sum": nccl.NCCL_SUM, "avg": nccl.NCCL_AVG, "product": nccl.NCCL_PROD,
                     "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN}
        self._types = {name: getattr(nccl, "NCCL_" + name.upper()) for name in _REDUCIBLE}

    def takes(self, tensor) -> bool:
        """Whether ``tensor`` lives on a CUDA device (so NCCL moves it)."""
        return getattr(tensor._backend, "cupy", None) is not None

    # -- the collectives, on contiguous CuPy arrays; each returns (an event recorded after it,
    #    what to do once it is done or None)
    def all_reduce(self, array, op: str):
        data = array if array.dtype.name in _REDUCIBLE else array.astype("float32")
        stream = self._stream()
        self.comm.allReduce(data.data.ptr, data.data.ptr, data.size, self._types[data.dtype.name],
                            self._ops[op], stream.ptr)
        finish = None if data is array else (lambda: array.__setitem__(Ellipsis, data))
        return self._event(stream), finish

    def broadcast(self, array, root: int):
        stream = self._stream()
        self.comm.bcast(array.data.ptr, array.nbytes, self.nccl.NCCL_UINT8, root, stream.ptr)
        return self._event(stream), None

    def all_gather(self, send, out):
        stream = self._stream()
        self.comm.allGather(send.data.ptr, out.data.ptr, send.nbytes, self.nccl.NCCL_UINT8,
                            stream.ptr)
        return self._event(stream), None

    def reduce_scatter(self, send, out, op: str):
        data = send if send.dtype.name in _REDUCIBLE else send.astype("float32")
        result = out if out.dtype == data.dtype else self.cupy.empty(out.shape, data.dtype)
        stream = self._stream()
        self.comm.reduceScatter(data.data.ptr, result.data.ptr, result.size,
                                self._types[data.dtype.name], self._ops[op], stream.ptr)
        finish = None if result is out else (lambda: out.__setitem__(Ellipsis, result))
        return self._event(stream), finish

    def send(self, array, peer: int):
        stream = self._stream()
        self.comm.send(array.data.ptr, array.nbytes, self.nccl.NCCL_UINT8, peer, stream.ptr)
        return self._event(stream), None

    def recv(self, array, peer: int):
        stream = self._stream()
        self.comm.recv(array.data.ptr, array.nbytes, self.nccl.NCCL_UINT8, peer, stream.ptr)
        return self._event(stream), None

    def abort(self) -> None:
        """Stop the communicator's kernels (after a timeout: a peer will never answer)."""
        try:
            self.comm.abort()
        except Exception:   # already broken: the error that follows says what happened
            pass

    def check(self, what: str) -> None:
        """Raise what NCCL found wrong while the collective ran (a peer's failure)."""
        try:
            self.comm.check_async_error()
        except Exception as e:
            raise DistributedError(f"{what}: NCCL reported {e}") from e

    # -- helpers
    def _stream(self):
        return self.cupy.cuda.get_current_stream()

    def _event(self, stream):
        event = self.cupy.cuda.Event(block=False, disable_timing=True)
        event.record(stream)
        return event

