"""Collectives of Python objects: ``all_gather_object``, ``broadcast_object_list``,
``gather_object`` and ``scatter_object_list``, as ``torch.distributed``'s.

Each object is pickled, as torch's are, and goes as bytes: first every rank's byte count, then
the bytes, each step an MPI collective waited for with the group's deadline (a rank that died
is an error, not a hang). Only picklable objects, and only from the group's own ranks: unpickling
runs what the bytes say, so these are for the program's own values (metrics, file names,
configurations), never for data from elsewhere. Tensors in the objects arrive on the CPU.

Example (on every rank of ``gradient run -n 2``)::

    >>> found = [None] * dist.get_world_size()
    >>> dist.all_gather_object(found, {"rank": dist.get_rank(), "loss": 0.5})
    >>> found[1]["rank"]
    1
"""

from __future__ import annotations

import pickle

import numpy as np

from ..errors import ArgumentValueError, DistributedError
from .collectives import Work, _by_rank, get_group

__all__ = ["all_gather_object", "broadcast_object_list", "gather_object", "scatter_object_list"]


def _pickled(obj, what: str) -> np.ndarray:
    try:
        return np.frombuffer(pickle.dumps(obj), np.uint8)
    except Exception as e:   # noqa: BLE001  (any object's own pickling error)
        raise DistributedError(f"{what}: the object cannot be pickled to go to the other "
                               f"ranks: {type(e).__name__}: {e}") from e


def _unpickled(data: np.ndarray):
    return pickle.loads(data.tobytes())


def _wait(g, request, what: str) -> None:
    Work(g, [request], what).wait()


def _each(received: np.ndarray, counts) -> list:
    """The objects in ``received``, the ranks' pickles one after the other, ``counts`` bytes
    each."""
    return [_unpickled(part) for part in np.split(received, np.cumsum(counts)[:-1])]


def all_gather_object(object_list: list, obj, group=None) -> None:
    """Every rank's ``obj`` into ``object_list[rank]`` on every rank (a list as long as the
    group)."""
    g = get_group(group)
    if len(object_list) != g.size:
        raise DistributedError(f"all_gather_object: object_list has {len(object_list)} places "
                               f"for {g.size} ranks")
    data = _pickled(obj, "all_gather_object")
    counts = np.empty(g.size, np.int64)
    _wait(g, g.comm.Iallgather(np.array([data.size], np.int64), counts), "all_gather_object")
    received = np.empty(int(counts.sum()), np.uint8)
    _wait(g, g.comm.Iallgatherv(data, _by_rank(g, received, counts)), "all_gather_object")
    object_list[:] = _each(received, counts)


def broadcast_object_list(object_list: list, src: int = 0, group=None, device=None) -> None:
    """Rank ``src``'s ``object_list`` into every rank's ``object_list`` (the same length on
    every rank), in place."""
    g = get_group(group)
    data = _pickled(list(object_list), "broadcast_object_list") if g.rank == src else None
    count = np.array([0 if data is None else data.size], np.int64)
    _wait(g, g.comm.Ibcast(count, root=src), "broadcast_object_list")
    buffer = data if data is not None else np.empty(int(count[0]), np.uint8)
    _wait(g, g.comm.Ibcast(buffer, root=src), "broadcast_object_list")
    if g.rank != src:
        values = _unpickled(buffer)
        if len(values) != len(object_list):
            raise DistributedError(f"broadcast_object_list: rank {src} sent {len(values)} "
                                   f"objects; this rank's list has {len(object_list)} places")
        object_list[:] = values


def gather_object(obj, object_gather_list: list | None = None, dst: int = 0,
                  group=None) -> None:
    """Every rank's ``obj`` into ``object_gather_list[rank]`` on rank ``dst`` (a list as long
    as the group there, None elsewhere)."""
    g = get_group(group)
    if g.rank == dst and (object_gather_list is None or len(object_gather_list) != g.size):
        raise ArgumentValueError(f"gather_object: rank {dst} must give object_gather_list with "
                                 f"{g.size} places")
    if g.rank != dst and object_gather_list is not None:
        raise ArgumentValueError("gather_object: object_gather_list must not be given on ranks "
                                 "other than the destination (pass None there)")
    data = _pickled(obj, "gather_object")
    counts = np.empty(g.size, np.int64) if g.rank == dst else None
    _wait(g, g.comm.Igather(np.array([data.size], np.int64), counts, root=dst), "gather_object")
    received = np.empty(int(counts.sum()) if counts is not None else 0, np.uint8)
    _wait(g, g.comm.Igatherv(data, None if counts is None else _by_rank(g, received, counts),
                             root=dst), "gather_object")
    if counts is not None:
        object_gather_list[:] = _each(received, counts)


def scatter_object_list(scatter_object_output_list: list, scatter_object_input_list=None,
                        src: int = 0, group=None) -> None:
    """Rank ``src``'s ``scatter_object_input_list[rank]`` into each rank's
    ``scatter_object_output_list[0]`` (the input list, as long as the group, on ``src``
    only)."""
    g = get_group(group)
    if not isinstance(scatter_object_output_list, list) or not scatter_object_output_list:
        raise ArgumentValueError("scatter_object_list: expected scatter_object_output_list as a "
                                 "list with at least one place")
    pieces = None
    if g.rank == src:
        if scatter_object_input_list is None or len(scatter_object_input_list) != g.size:
            raise ArgumentValueError(f"scatter_object_list: rank {src} must give "
                                     f"scatter_object_input_list with {g.size} objects")
        pieces = [_pickled(o, "scatter_object_list") for o in scatter_object_input_list]
    count = np.empty(1, np.int64)
    counts = None if pieces is None else np.array([p.size for p in pieces], np.int64)
    _wait(g, g.comm.Iscatter(counts, count, root=src), "scatter_object_list")
    received = np.empty(int(count[0]), np.uint8)
    send = None if pieces is None else _by_rank(g, np.concatenate(pieces), counts)
    _wait(g, g.comm.Iscatterv(send, received, root=src), "scatter_object_list")
    scatter_object_output_list[0] = _unpickled(received)
