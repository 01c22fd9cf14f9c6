"""Collectives with a root, and all-to-all: ``reduce``, ``gather``, ``scatter``,
``all_to_all`` and ``all_to_all_single``, with ``torch.distributed``'s names and semantics, over
MPI (:mod:`.collectives` has the group, the deadline and the tensors' way to MPI).

Tensors of any device go through host memory (in an NCCL group too: these are the collectives
of evaluation and bookkeeping, not of a training step's gradients). Like the others, each is
started non-blocking and waited for with the deadline, or returned as a
:class:`~.collectives.Work` with ``async_op=True``.

Example (on every rank of ``gradient run -n 2``)::

    >>> parts = [gradient.zeros(2) for _ in range(2)] if dist.get_rank() == 0 else None
    >>> dist.gather(gradient.full((2,), float(dist.get_rank())), parts, dst=0)
    >>> # rank 0: parts == [tensor([0., 0.]), tensor([1., 1.])]
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentValueError, DistributedError
from ..tensor import Tensor
from .collectives import (ReduceOp, Work, _by_rank, _host, _mpi_op, _reducible, _run,
                          _write_back, get_group)

__all__ = ["reduce", "gather", "scatter", "all_to_all", "all_to_all_single"]


def _same_shapes(what: str, tensors: list, like: Tensor, size: int) -> None:
    if len(tensors) != size:
        raise DistributedError(f"{what}: expected a list of {size} tensors (one per rank), got "
                               f"{len(tensors)}")
    for t in tensors:
        if tuple(t.shape) != tuple(like.shape) or t.dtype != like.dtype:
            raise DistributedError(f"{what}: every tensor of the list must be like the rank's "
                                   f"tensor, {like.dtype} of shape {tuple(like.shape)}; got "
                                   f"{t.dtype} of shape {tuple(t.shape)}")


def _root_only(what: str, name: str, value, is_root: bool, root: str) -> None:
    """torch's rule: the list is given on the root rank and only there."""
    if is_root and value is None:
        raise ArgumentValueError(f"{what}: the {root} rank must give {name}")
    if not is_root and value is not None and len(value):
        raise ArgumentValueError(f"{what}: {name} must not be given on ranks other than the "
                                 f"{root} (pass None there)")


def _bytes(array: np.ndarray) -> np.ndarray:
    return array.view(np.uint8).reshape(-1)


def reduce(tensor: Tensor, dst: int, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Combine ``tensor`` over the ranks (sum by default) into rank ``dst``'s ``tensor``; the
    other ranks' tensors are left as they are."""
    g = get_group(group)
    mpi_op, op = _mpi_op(g, op)
    host = _host(tensor)
    send = _reducible(host)
    result = np.empty_like(send) if g.rank == dst else None
    request = g.comm.Ireduce(send, result, op=mpi_op, root=dst)

    def finish():
        if g.rank != dst:
            return
        value = result
        if op is ReduceOp.AVG:
            value = value / g.size if value.dtype.kind == "f" else value // g.size
        host[...] = value.astype(host.dtype, copy=False)
        _write_back(tensor, host, "reduce")
    return _run(Work(g, [request], "reduce", finish), async_op)


def gather(tensor: Tensor, gather_list: list | None = None, dst: int = 0, group=None,
           async_op: bool = False):
    """Every rank's ``tensor`` into ``gather_list[rank]`` on rank ``dst`` (a list of as many
    tensors like it as ranks there, None elsewhere)."""
    g = get_group(group)
    _root_only("gather", "gather_list", gather_list, g.rank == dst, "destination")
    send = _host(tensor)
    gathered = None
    if g.rank == dst:
        _same_shapes("gather", gather_list, tensor, g.size)
        gathered = np.empty((g.size,) + send.shape, send.dtype)
    request = g.comm.Igather(_bytes(send), None if gathered is None else
                             gathered.view(np.uint8).reshape(g.size, -1), root=dst)

    def finish():
        if gathered is not None:
            for out, part in zip(gather_list, gathered):
                _write_back(out, np.ascontiguousarray(part), "gather")
    return _run(Work(g, [request], "gather", finish), async_op)


def scatter(tensor: Tensor, scatter_list: list | None = None, src: int = 0, group=None,
            async_op: bool = False):
    """Rank ``src``'s ``scatter_list[rank]`` into each rank's ``tensor`` (the list, of as many
    tensors like ``tensor`` as ranks, is given on ``src`` only)."""
    g = get_group(group)
    _root_only("scatter", "scatter_list", scatter_list, g.rank == src, "source")
    send = None
    if g.rank == src:
        _same_shapes("scatter", scatter_list, tensor, g.size)
        send = np.stack([_host(t) for t in scatter_list])
    received = np.empty(tuple(tensor.shape), tensor.dtype.numpy)
    request = g.comm.Iscatter(None if send is None else send.view(np.uint8).reshape(g.size, -1),
                              _bytes(received), root=src)
    return _run(Work(g, [request], "scatter",
                     lambda: _write_back(tensor, received, "scatter")), async_op)


def _splits(what: str, sizes, rows: int, n: int) -> list:
    """Rows of the first dimension per rank: ``sizes``, or equal parts."""
    if sizes is None:
        if rows % n:
            raise DistributedError(f"{what}: {rows} rows do not split equally over {n} ranks; "
                                   "give the split sizes")
        return [rows // n] * n
    sizes = [int(s) for s in sizes]
    if len(sizes) != n or sum(sizes) != rows or min(sizes) < 0:
        raise DistributedError(f"{what}: split sizes {sizes} must be {n} counts (one per "
                               f"rank) adding up to the {rows} rows of the first dimension")
    return sizes


def all_to_all_single(output: Tensor, input: Tensor, output_split_sizes=None,
                      input_split_sizes=None, group=None, async_op: bool = False):
    """Rank i's ``input`` split along the first dimension (``input_split_sizes``, equal parts
    by default): part j goes to rank j, whose ``output`` holds the parts from every rank in rank
    order (``output_split_sizes`` rows each)."""
    g = get_group(group)
    if output.dim() == 0 or input.dim() == 0:
        raise DistributedError("all_to_all_single: output and input must have a first "
                               "dimension to split")
    send = _host(input)
    out = np.empty(tuple(output.shape), send.dtype)
    if output.dtype != input.dtype or tuple(output.shape[1:]) != tuple(input.shape[1:]):
        raise DistributedError(f"all_to_all_single: output ({output.dtype}, "
                               f"{tuple(output.shape)}) and input ({input.dtype}, "
                               f"{tuple(input.shape)}) must share their dtype and their shape "
                               "past the first dimension")
    rows_in = _splits("all_to_all_single", input_split_sizes, send.shape[0], g.size)
    rows_out = _splits("all_to_all_single", output_split_sizes, out.shape[0], g.size)
    row = send.dtype.itemsize * int(np.prod(send.shape[1:], dtype=np.int64))   # bytes a row
    request = g.comm.Ialltoallv(_by_rank(g, _bytes(send), [r * row for r in rows_in]),
                                _by_rank(g, _bytes(out), [r * row for r in rows_out]))
    return _run(Work(g, [request], "all_to_all_single",
                     lambda: _write_back(output, out, "all_to_all_single")), async_op)


def all_to_all(output_tensor_list: list, input_tensor_list: list, group=None,
               async_op: bool = False):
    """Rank i's ``input_tensor_list[j]`` into rank j's ``output_tensor_list[i]`` (tensors of
    one dtype; their shapes may differ from pair to pair)."""
    g = get_group(group)
    for name, tensors in (("output_tensor_list", output_tensor_list),
                          ("input_tensor_list", input_tensor_list)):
        if len(tensors) != g.size:
            raise DistributedError(f"all_to_all: {name} has {len(tensors)} tensors for "
                                   f"{g.size} ranks")
    dtypes = {t.dtype for t in [*output_tensor_list, *input_tensor_list]}
    if len(dtypes) != 1:
        raise DistributedError(f"all_to_all: the tensors must share one dtype, got "
                               f"{sorted(str(d) for d in dtypes)}")
    sends = [_host(t) for t in input_tensor_list]
    outs = [np.empty(tuple(t.shape), sends[0].dtype) for t in output_tensor_list]
    received = np.empty(sum(o.nbytes for o in outs), np.uint8)
    request = g.comm.Ialltoallv(
        _by_rank(g, np.concatenate([_bytes(s) for s in sends]), [s.nbytes for s in sends]),
        _by_rank(g, received, [o.nbytes for o in outs]))

    def finish():
        at = 0
        for tensor, out in zip(output_tensor_list, outs):
            _bytes(out)[...] = received[at:at + out.nbytes]
            at += out.nbytes
            _write_back(tensor, out, "all_to_all")
    return _run(Work(g, [request], "all_to_all", finish), async_op)
