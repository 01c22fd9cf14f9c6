"""Pipeline parallelism, ``torch.distributed.pipelining``'s: a model split into stages, one per
rank, and a batch run through them as micro-batches: GPipe (Huang et al., 2019), or 1F1B,
which holds fewer micro-batches' activations at a time.

Each rank holds one stage (:class:`PipelineStage`: a module and its place in the pipeline).
:class:`ScheduleGPipe` splits the batch into ``n_microbatches``; every micro-batch's forward
flows from stage to stage (the activations sent with :func:`~.collectives.isend`), then every
backward flows back (the activations' gradients), and each stage's parameter gradients are
summed over the micro-batches and divided by their number: the gradient of the mean of the
micro-batches' losses, which for a mean loss over equal micro-batches is the whole batch's.
While stage 2 runs micro-batch 1, stage 1 runs micro-batch 2: the stages overlap.
:class:`Schedule1F1B` interleaves the backwards with the forwards as soon as it can: the same
gradients, with a stage holding the activations of fewer micro-batches at once.

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
from .collectives import get_group, isend, recv

__all__ = ["PipelineStage", "ScheduleGPipe", "Schedule1F1B"]

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


class _Schedule:
    """What every schedule shares: the micro-batches, one micro-batch's forward and backward on
    this stage, and the end of a step. A schedule is the order of its forwards ``("F", k)``
    and backwards ``("B", k)`` (:meth:`_order`)."""

    def __init__(self, stage: PipelineStage, n_microbatches: int, loss_fn=None,
                 scale_grads: bool = True):
        if n_microbatches < 1:
            raise DistributedError(f"{type(self).__name__}: n_microbatches must be at least 1, "
                                   f"got {n_microbatches}")
        self.stage, self.n = stage, n_microbatches
        self.loss_fn, self.scale_grads = loss_fn, scale_grads

    def step(self, *args, target=None, losses=None):
        """One pipelined forward and backward of the batch ``args[0]`` (given to the first
        stage; ``target`` to the last, which appends each micro-batch's loss to ``losses``
        and returns the outputs of the whole batch). The gradients are accumulated into the
        stage's parameters, as ``loss.backward()`` does; the optimizer steps after."""
        s = self.stage
        name = type(self).__name__
        if s.is_first and not args:
            raise DistributedError(f"{name}.step: the first stage takes the batch: "
                                   "schedule.step(x)")
        if s.is_last and self.loss_fn is not None and target is None:
            raise DistributedError(f"{name}.step: the last stage takes the target: "
                                   "schedule.step(target=y, losses=[])")
        inputs = chunk(args[0], self.n) if s.is_first else [None] * self.n
        targets = chunk(target, self.n) if target is not None else [None] * self.n
        if len(inputs) != self.n or len(targets) != self.n:
            raise DistributedError(f"{name}.step: a batch of "
                                   f"{len(args[0] if args else target)} does not make "
                                   f"{self.n} micro-batches")
        self._inputs, self._targets, self._losses = inputs, targets, losses
        self._received, self._outputs, self._ends = {}, {}, {}
        self._sending = []                  # sends in flight: waited for at the end
        kept = []                           # the last stage's outputs, in order
        forward_only = self.loss_fn is None   # (every stage's schedule alike)
        order = [("F", k) for k in range(self.n)] if forward_only else self._order()
        for kind, k in order:
            if kind == "F":
                self._forward(k)
                if s.is_last:
                    kept.append(self._outputs[k].detach())
            else:
                self._backward(k)
        for work in self._sending:
            work.wait()
        self._sending = self._received = self._outputs = self._ends = None
        if self.scale_grads and not forward_only:
            for p in s.submodule.parameters():
                if p.grad is not None:
                    p.grad.div_(self.n)
        return cat(kept, 0) if s.is_last else None

    def _order(self) -> list:
        raise NotImplementedError

    def _forward(self, k: int) -> None:
        s, g = self.stage, self.stage.group
        x = self._inputs[k] if s.is_first else _receive(g, g.rank - 1, _FORWARD)
        if not s.is_first:
            x.requires_grad_(x.dtype.is_floating_point)
        self._received[k] = x
        y = self._outputs[k] = s.submodule(x)
        if s.is_last:
            if self.loss_fn is not None:
                self._ends[k] = self.loss_fn(y, self._targets[k])
                if self._losses is not None:
                    self._losses.append(self._ends[k].detach())
        else:
            self._sending += _send(g, y.detach(), g.rank + 1, _FORWARD)

    def _backward(self, k: int) -> None:
        s, g = self.stage, self.stage.group
        if s.is_last:
            self._ends.pop(k).backward()
        else:
            self._outputs[k].backward(_receive(g, g.rank + 1, _BACKWARD))
        self._outputs.pop(k)            # this micro-batch's activations can go now
        x = self._received.pop(k)
        if not s.is_first:
            self._sending += _send(g, x.grad if x.grad is not None else x.new_zeros(x.shape),
                                   g.rank - 1, _BACKWARD)


class ScheduleGPipe(_Schedule):
    """All forwards of ``n_microbatches``, then all backwards, on ``stage`` (see the module
    docstring). The last stage computes ``loss_fn(output, target)`` per micro-batch; every
    rank's schedule is made with the same ``loss_fn`` (without one, :meth:`step` runs the
    forwards only)."""

    def _order(self) -> list:
        return [("F", k) for k in range(self.n)] + [("B", k) for k in range(self.n)]


class Schedule1F1B(_Schedule):
    """One forward, one backward (PipeDream-Flush; Narayanan et al., 2021): stage ``i`` of
    ``S`` first runs ``S - i - 1`` forwards, then alternates a forward and a backward, then
    runs the backwards left. The same gradients as :class:`ScheduleGPipe` (the backwards in
    the same order), but a stage holds the activations of at most ``S - i`` micro-batches at
    a time instead of all of them, and the last stage starts its backwards at once."""

    def _order(self) -> list:
        s = self.stage
        warmup = min(self.n, s.num_stages - s.stage_index - 1)
        order = [("F", k) for k in range(warmup)]
        for k in range(self.n - warmup):
            order += [("F", warmup + k), ("B", k)]
        return order + [("B", k) for k in range(self.n - warmup, self.n)]


def _send(group, t, dst: int, tag: int) -> list:
    """Start sending the tensor's dtype and shape, then its values; the two sends' work
    handles (a schedule waits for them at the end of its step: sends that do not block cannot
    deadlock two stages that each send before they receive)."""
    if t.ndim > _MAX_DIMS or t.dtype not in _DTYPES:
        raise DistributedError(f"pipelining: cannot send a {t.dtype} tensor of {t.ndim} "
                               f"dimensions between stages (at most {_MAX_DIMS}; dtypes "
                               f"{', '.join(str(d) for d in _DTYPES)})")
    header = np.zeros(2 + _MAX_DIMS, np.int64)
    header[0], header[1] = _DTYPES.index(t.dtype), t.ndim
    header[2:2 + t.ndim] = t.shape
    return [isend(tensor(header), dst, group, tag), isend(t.contiguous(), dst, group, tag)]


def _receive(group, src: int, tag: int):
    header = tensor(np.zeros(2 + _MAX_DIMS, np.int64))
    recv(header, src, group, tag)
    h = header.numpy()
    out = empty(*(int(n) for n in h[2:2 + int(h[1])]), dtype=_DTYPES[int(h[0])])
    recv(out, src, group, tag)
    return out
