"""SyncBatchNorm, as ``torch.nn.SyncBatchNorm``: batch normalisation whose statistics are the
whole batch's across the ranks of a process group, not each rank's share of it.

With data parallelism each rank sees a slice of the batch; plain BatchNorm normalises with
the slice's statistics (noisy when the slices are small). In training, on a group of more
than one rank (``gradient.distributed`` initialised), SyncBatchNorm sums each channel's
values, then its squared deviations from the mean, over every rank (two all-reduces), so that
every rank normalises with, and keeps as running statistics, what one process would on the
whole batch; its backward sums the statistics' gradients over the ranks the same way.
Otherwise (evaluation, one process) it is BatchNorm. ``convert_sync_batchnorm`` swaps a
model's BatchNorm layers for it, as DDP scripts do.

Example (under ``gradient run -n 2``)::

    >>> model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    >>> model = nn.parallel.DistributedDataParallel(model)
"""

from __future__ import annotations

from ...autograd import no_grad
from ...distributed import collectives as dist
from ...distributed.differentiable import summed
from ...ops.creation import tensor
from .batchnorm import _BatchNorm
from ...errors import ArgumentValueError

__all__ = ["SyncBatchNorm"]


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation of (N, C, ...) inputs with the statistics of the batch across the
    ranks of ``process_group`` (default: all) in training; see the module's doc."""

    _input_dims = (2, 3, 4, 5)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group=None,
                 device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def forward(self, input):
        self._check_input_dim(input)
        if not (self.training and dist.is_initialized()
                and dist.get_world_size(self.process_group) > 1):
            return super().forward(input)
        return self._synced(input, self._momentum_factor())

    def _synced(self, x, factor: float):
        C, group = x.shape[1], self.process_group
        dims = [0] + list(range(2, x.ndim))
        shape = [1, C] + [1] * (x.ndim - 2)
        count = tensor([float(x.numel() // C)], dtype=x.dtype, device=x.device)
        dist.all_reduce(count, group=group)
        n = float(count.item())
        if n < 2:
            raise ArgumentValueError(
                f"SyncBatchNorm: expected more than 1 value per channel across "
                f"the ranks in training, got input of shape {tuple(x.shape)}")
        mean = summed(x.sum(dim=dims), group) / n
        centred = x - mean.reshape(shape)
        var = summed((centred * centred).sum(dim=dims), group) / n
        y = centred * (var + self.eps).rsqrt().reshape(shape)
        if self.weight is not None:
            y = y * self.weight.reshape(shape)
        if self.bias is not None:
            y = y + self.bias.reshape(shape)
        if self.track_running_stats and self.running_mean is not None:
            with no_grad():
                self.running_mean.mul_(1 - factor).add_(mean.detach() * factor)
                self.running_var.mul_(1 - factor).add_(var.detach() * (n / (n - 1)) * factor)
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with each BatchNorm layer in it (or itself) replaced by a SyncBatchNorm
        holding the same parameters, statistics and mode."""
        converted = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, process_group)
            if module.affine:
                with no_grad():
                    converted.weight = module.weight
                    converted.bias = module.bias
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
            converted.training = module.training
        for name, child in module.named_children():
            converted.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return converted
