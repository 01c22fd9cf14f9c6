"""Pipeline parallelism, ``torch.distributed.pipelining``'s: a model split into stages, one per
rank, and a batch run through them as micro-batches (GPipe, Huang et al., 2019).

Each rank holds one stage (:class:`PipelineStage`: a module and its place in the pipeline).
:class:`ScheduleGPipe` splits the batch into ``n_microbatches``; every micro-batch's forward
flows from stage to stage (the activations sent with :func:`~.collectives.send`), then every
backward flows back (the activations' gradients), and each stage's parameter gradients are
summed over the micro-batches and divided by their number: the gradient of the mean of the
micro-batches' losses, which for a mean loss over equal micro-batches is the whole batch's.
While stage 2 runs micro-batch 1, stage 1 runs micro-batch 2: the stages overlap.

Example (``gradient run -n 2 script.py``)::

    >>> stage = PipelineStage(layers[:4] if rank == 0 else layers[4:], rank, 2)
    >>> schedule = ScheduleGPipe(stage, n_microbatches=4, loss_fn=F.cross_entropy)
    >>> if rank == 0:
    ...     schedule.step(x)
    ... else:
    ...     losses = []
    ...     out = schedule.step(target=y, losses=losses)
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..errors import DistributedError
from ..ops.creation import empty, tensor
from ..ops.shape import cat, chunk
from .collectives import get_group, recv, send

__all__ = ["PipelineStage", "ScheduleGPipe"]

_FORWARD, _BACKWARD = 1, 2          # message tags: activations, and their gradients
_MAX_DIMS = 8
_DTYPES = [dtypes.float64, dtypes.float32, dtypes.float16, dtypes.bfloat16, dtypes.int64,
           dtypes.int32]


class PipelineStage:
    """Stage ``stage_index`` of ``num_stages``: ``submodule`` run on this rank (rank
    ``stage_index`` of ``group``). ``device`` is where its activations live (the CPU)."""

    def __init__(self, submodule, stage_index: int, num_stages: int, device=None, group=None):
        self.submodule, self.stage_index, self.num_stages = submodule, stage_index, num_stages
        self.group = get_group(group)
        if num_stages != self.group.size or stage_index != self.group.rank:
            raise DistributedError(
                f"PipelineStage: stage {stage_index} of {num_stages} on rank "
                f"{self.group.rank} of {self.group.size}: run one stage per rank, stage i on "
                f"rank i")
        self.is_first, self.is_last = stage_index == 0, stage_index == num_stages - 1


class ScheduleGPipe:
    """All forwards of ``n_microbatches``, then all backwards, on ``stage`` (see the module
    docstring). The last stage computes ``loss_fn(output, target)`` per micro-batch; every
    rank's schedule is made with the same ``loss_fn`` (without one, :meth:`step` runs the
    forwards only)."""

    def __init__(self, stage: PipelineStage, n_microbatches: int, loss_fn=None,
                 scale_grads: bool = True):
        if n_microbatches < 1:
            raise DistributedError(f"ScheduleGPipe: n_microbatches must be at least 1, got "
                                   f"{n_microbatches}")
        self.stage, self.n = stage, n_microbatches
        self.loss_fn, self.scale_grads = loss_fn, scale_grads

    def step(self, *args, target=None, losses=None):
        """One pipelined forward and backward of the batch ``args[0]`` (given to the first
        stage; ``target`` to the last, which appends each micro-batch's loss to ``losses``
        and returns the outputs of the whole batch). The gradients are accumulated into the
        stage's parameters, as ``loss.backward()`` does; the optimizer steps after."""
        s, g = self.stage, self.stage.group
        if s.is_first and not args:
            raise DistributedError("ScheduleGPipe.step: the first stage takes the batch: "
                                   "schedule.step(x)")
        if s.is_last and self.loss_fn is not None and target is None:
            raise DistributedError("ScheduleGPipe.step: the last stage takes the target: "
                                   "schedule.step(target=y, losses=[])")
        inputs = chunk(args[0], self.n) if s.is_first else [None] * self.n
        targets = chunk(target, self.n) if target is not None else [None] * self.n
        if len(inputs) != self.n or len(targets) != self.n:
            raise DistributedError(f"ScheduleGPipe.step: a batch of {len(args[0] if args else target)} "
                                   f"does not make {self.n} micro-batches")
        received, outputs, ends = [], [], []
        for k in range(self.n):                               # the forwards
            x = inputs[k] if s.is_first else _receive(g, g.rank - 1, _FORWARD)
            if not s.is_first:
                x.requires_grad_(x.dtype.is_floating_point)
            received.append(x)
            y = s.submodule(x)
            outputs.append(y)
            if s.is_last:
                if self.loss_fn is not None:
                    ends.append(self.loss_fn(y, targets[k]))
                    if losses is not None:
                        losses.append(ends[-1].detach())
            else:
                _send(g, y.detach(), g.rank + 1, _FORWARD)
        if self.loss_fn is None:       # no loss: forward only (every stage's schedule alike)
            return cat([y.detach() for y in outputs], 0) if s.is_last else None
        for k in range(self.n):                               # the backwards
            if s.is_last:
                ends[k].backward()
            else:
                outputs[k].backward(_receive(g, g.rank + 1, _BACKWARD))
            if not s.is_first:
                x = received[k]
                _send(g, x.grad if x.grad is not None else x.new_zeros(x.shape), g.rank - 1,
                      _BACKWARD)
        if self.scale_grads:
            for p in s.submodule.parameters():
                if p.grad is not None:
                    p.grad.div_(self.n)
        if s.is_last:
            return cat([y.detach() for y in outputs], 0)
        return None


def _send(group, t, dst: int, tag: int) -> None:
    """The tensor's dtype and shape, then its values."""
    if t.ndim > _MAX_DIMS or t.dtype not in _DTYPES:
        raise DistributedError(f"pipelining: cannot send a {t.dtype} tensor of {t.ndim} "
                               f"dimensions between stages (at most {_MAX_DIMS}; dtypes "
                               f"{', '.join(str(d) for d in _DTYPES)})")
    header = np.zeros(2 + _MAX_DIMS, np.int64)
    header[0], header[1] = _DTYPES.index(t.dtype), t.ndim
    header[2:2 + t.ndim] = t.shape
    send(tensor(header), dst, group, tag)
    send(t.contiguous(), dst, group, tag)


def _receive(group, src: int, tag: int):
    header = tensor(np.zeros(2 + _MAX_DIMS, np.int64))
    recv(header, src, group, tag)
    h = header.numpy()
    out = empty(*(int(n) for n in h[2:2 + int(h[1])]), dtype=_DTYPES[int(h[0])])
    recv(out, src, group, tag)
    return out
