"""``DistributedDataParallel``: one model replica per rank, gradients averaged across the ranks
during backward, as ``torch.nn.parallel.DistributedDataParallel`` does.

At wrap time every parameter and buffer is broadcast from rank 0, so the replicas start equal.
The parameters are grouped into buckets in reverse order of registration (roughly the order
backward produces their gradients): a first bucket of about 1 MiB, so that communication starts
early, then buckets of about ``bucket_cap_mb`` megabytes, as PyTorch does. When the last
gradient of a bucket has been accumulated (a post-accumulate hook on each parameter), the
bucket's gradients are flattened into one buffer and an all-reduce starts, without waiting.
MPI moves a non-blocking collective's data only while the process is inside an MPI call, so
every later hook asks the collectives under way whether they are done, which lets them advance
while backward goes on. When the last bucket is ready, every all-reduce is waited for and each
``.grad`` becomes the average over the ranks; the time spent in that wait, the communication
backward did not hide, is counted in :meth:`DistributedDataParallel.comm_stats`.

``no_sync()`` skips the averaging (gradient accumulation: the averaging happens in the first
backward after the context). With ``find_unused_parameters=True`` the forward's autograd graph
is walked to find parameters that take no part, which count as ready with zero gradients;
without it, a parameter that gets no gradient leaves its bucket incomplete, and the next
forward raises, as in PyTorch.

Example (``gradient run -n 2 train.py``)::

    >>> dist.init_process_group("mpi")
    >>> model = DistributedDataParallel(model)
    >>> loss = loss_fn(model(x_shard), y_shard); loss.backward()    # grads averaged
"""

from __future__ import annotations

import contextlib
import time

from ... import distributed as dist
from ...autograd import is_grad_enabled, no_grad
from ...errors import DistributedError
from ..module import Module

__all__ = ["DistributedDataParallel"]

FIRST_BUCKET_BYTES = 2**20   # PyTorch's first bucket: its all-reduce starts early in backward


class DistributedDataParallel(Module):
    """``module`` replicated on every rank of ``process_group`` (see the module docstring)."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None, bucket_cap_mb: float = 25,
                 find_unused_parameters: bool = False, **_ignored):
        super().__init__()
        self.module = module
        self.process_group = dist.get_group(process_group)
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        with no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t, 0, group=self.process_group)
        params = [p for p in module.parameters() if p.requires_grad]
        self._buckets = _buckets(params, int(bucket_cap_mb * 2**20),
                                 min(FIRST_BUCKET_BYTES, int(bucket_cap_mb * 2**20)))
        self._bucket_of = {id(p): b for b, bucket in enumerate(self._buckets) for p in bucket}
        self._pending = [len(bucket) for bucket in self._buckets]
        self._works: list = []
        self._started = False
        self._sync = True
        self._hooks = [p.register_post_accumulate_grad_hook(self._grad_ready) for p in params]
        self._stats = {"syncs": 0, "all_reduces": 0, "bytes_reduced": 0, "exposed_comm_s": 0.0}

    def forward(self, *args, **kwargs):
        if self._started:
            raise DistributedError(
                "DistributedDataParallel: the previous backward did not produce gradients for "
                "every parameter, so their averaging never finished; pass "
                "find_unused_parameters=True if some parameters take no part in the forward")
        if self.broadcast_buffers and self._sync:
            with no_grad():
                for b in self.module.buffers():
                    dist.broadcast(b, 0, group=self.process_group)
        out = self.module(*args, **kwargs)
        if self.find_unused_parameters and self._sync and is_grad_enabled():
            used = _leaves_reached(out)
            for bucket in self._buckets:
                for p in bucket:
                    if id(p) not in used:
                        self._grad_ready(p)   # takes part with a zero gradient
        return out

    @contextlib.contextmanager
    def no_sync(self):
        """Gradients accumulate locally inside; the next backward outside averages them."""
        self._sync = False
        try:
            yield
        finally:
            self._sync = True

    def comm_stats(self) -> dict:
        """What the gradient averaging cost since wrapping: ``syncs`` (backward passes that
        averaged), ``all_reduces`` and ``bytes_reduced`` (the buckets sent), and
        ``exposed_comm_s``: the seconds backward waited for communication after its last
        gradient, the part that computation did not hide.

        >>> stats = model.comm_stats(); stats["exposed_comm_s"] / stats["syncs"]
        """
        return dict(self._stats)

    # -- the buckets
    def _grad_ready(self, param) -> None:
        if not self._sync:
            return
        self._started = True
        for _, _, work in self._works:   # MPI advances a collective only inside a call
            work.is_completed()
        b = self._bucket_of[id(param)]
        self._pending[b] -= 1
        if self._pending[b] == 0:
            self._works.append(self._reduce(self._buckets[b]))
        if len(self._works) == len(self._buckets):
            self._finish()

    def _reduce(self, bucket):
        """Start the all-reduce of one bucket's gradients (one dtype), flattened into one buffer
        on their device: NCCL reduces CUDA buffers on the GPU, MPI the others."""
        backend, dtype = bucket[0]._backend, bucket[0].dtype
        flat = backend.concatenate(
            [backend.reshape(p.grad._data, (-1,)) if p.grad is not None
             else backend.full((p.numel(),), 0, dtype) for p in bucket], 0)
        from ...tensor import Tensor
        buffer = Tensor._make(flat, False, backend)
        self._stats["all_reduces"] += 1
        self._stats["bytes_reduced"] += buffer.numel() * dtype.itemsize
        return bucket, buffer, dist.all_reduce(buffer, group=self.process_group, async_op=True)

    def _finish(self) -> None:
        size = self.process_group.size
        start_wait = time.perf_counter()
        for _, _, work in self._works:
            work.wait()
        self._stats["exposed_comm_s"] += time.perf_counter() - start_wait
        self._stats["syncs"] += 1
        with no_grad():
            for bucket, buffer, work in self._works:
                flat = buffer / size
                start = 0
                for p in bucket:
                    part = flat[start:start + p.numel()].reshape(p.shape)
                    start += p.numel()
                    if p.grad is None:
                        p.grad = part
                    else:
                        p.grad.copy_(part)
        self._works = []
        self._pending = [len(bucket) for bucket in self._buckets]
        self._started = False


def _buckets(params, cap_bytes: int, first_cap_bytes: int) -> list:
    """The parameters in reverse order, cut into runs of one dtype: about ``first_cap_bytes``
    for the first, ``cap_bytes`` for the others."""
    buckets, current, size = [], [], 0
    for p in reversed(params):
        nbytes = p.numel() * p.dtype.itemsize
        cap = cap_bytes if buckets else first_cap_bytes
        if current and (size + nbytes > cap or p.dtype != current[0].dtype):
            buckets.append(current)
            current, size = [], 0
        current.append(p)
        size += nbytes
    if current:
        buckets.append(current)
    return buckets


def _leaves_reached(out) -> set:
    """The ids of the leaf tensors the autograd graph of ``out`` (tensors, tuples, dicts)
    reaches."""
    from ...tensor import Tensor
    roots, seen, reached = [], set(), set()

    def collect(value):
        if isinstance(value, Tensor):
            if value.grad_fn is not None:
                roots.append(value.grad_fn)
        elif isinstance(value, (tuple, list)):
            for v in value:
                collect(v)
        elif isinstance(value, dict):
            for v in value.values():
                collect(v)
        elif hasattr(value, "__dict__"):   # a ModelOutput-like object
            for v in vars(value).values():
                collect(v)

    collect(out)
    while roots:
        node = roots.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        tensor = getattr(node, "tensor", None)   # AccumulateGrad holds its leaf
        if tensor is not None:
            reached.add(id(tensor))
        for edge in node.next_edges:   # (node, output_nr) per input, None for a constant
            roots.append(edge[0] if edge else None)
    return reached
