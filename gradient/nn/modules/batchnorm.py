"""BatchNorm1d/2d/3d, as in ``torch.nn``.

In training mode each channel is normalised with the batch's own mean and (biased) variance,
and the running estimates are updated in place:
``running = (1 - momentum) * running + momentum * batch`` (the unbiased variance goes into
``running_var``). ``momentum=None`` makes it a cumulative average: the factor is
``1 / num_batches_tracked``. In eval mode the running estimates are used instead, so a model
must be switched with ``model.eval()`` before inference, exactly as in PyTorch.
With ``track_running_stats=False`` there are no buffers and batch statistics are always used.
``affine`` adds a per-channel ``weight`` (ones) and ``bias`` (zeros); the keyword-only
``bias=False`` keeps only ``weight`` (PyTorch 2.13's signature).
"""

from __future__ import annotations

from ... import ops as _ops
from ...autograd import no_grad
from ...dtypes import int64
from ...errors import ShapeError
from .. import functional as F
from .. import init
from ..module import Module
from .utils import _optional_parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


class _NormBase(Module):
    """What the BatchNorm and InstanceNorm layers share, as PyTorch's ``_NormBase``: the affine
    parameters and the running statistics, under PyTorch's names (``weight``, ``bias``,
    ``running_mean``, ``running_var``, ``num_batches_tracked``), so checkpoints load either way.
    Subclasses give the defaults and the forward."""

    def __init__(self, num_features: int, eps: float, momentum: float | None, affine: bool,
                 track_running_stats: bool, device, dtype, bias: bool):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _optional_parameter(self, "weight", affine, num_features, factory)
        _optional_parameter(self, "bias", affine and bias, num_features, factory)
        if track_running_stats:
            self.register_buffer("running_mean", _ops.zeros(num_features, **factory))
            self.register_buffer("running_var", _ops.ones(num_features, **factory))
            self.register_buffer("num_batches_tracked", _ops.tensor(0, dtype=int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches seen."""
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)


class _BatchNorm(_NormBase):
    """Shared body of the BatchNorm layers; subclasses only say which input ranks they take."""

    _input_dims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None,
                 *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias)

    def _check_input_dim(self, input) -> None:
        if input.ndim not in self._input_dims:
            want = " or ".join(f"{d}D" for d in self._input_dims)
            raise ShapeError(f"{type(self).__name__}: expected {want} input (N, C, ...), got "
                             f"{input.ndim}D input of shape {tuple(input.shape)}")

    def _momentum_factor(self) -> float:
        """The weight of this batch's statistics in the running ones: ``momentum``, or, with
        ``momentum=None``, ``1 / num_batches_tracked`` (a cumulative average); in training the
        batch is counted first."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.item())
        return factor

    def forward(self, input):
        self._check_input_dim(input)
        factor = self._momentum_factor()
        # eval mode normalises with the running stats, unless there are none to use
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if track else None,
                            self.running_var if track else None, self.weight, self.bias,
                            use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs over N (and L), per channel.

    Example::

        bn = nn.BatchNorm1d(16)
        y = bn(gradient.randn(32, 16))     # training: batch stats, updates running stats
        bn.eval(); y = bn(x)               # eval: running stats
    """

    _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs over N, H and W, per channel.

    Example::

        bn = nn.BatchNorm2d(3)
        y = bn(gradient.randn(8, 3, 32, 32))
    """

    _input_dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of (N, C, D, H, W) inputs, per channel.

    Example::

        bn = nn.BatchNorm3d(3)
        y = bn(gradient.randn(2, 3, 4, 8, 8))
    """

    _input_dims = (5,)
