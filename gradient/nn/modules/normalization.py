"""LayerNorm, RMSNorm and GroupNorm, as in ``torch.nn``.

Per-sample normalisations: statistics come from the input itself, so train and eval behave the
same (unlike BatchNorm, see batchnorm.py). The affine ``weight`` starts at ones and ``bias``
at zeros, as in PyTorch.
"""

from __future__ import annotations

import numbers
import warnings

from ... import ops as _ops
from .. import functional as F
from .. import init
from ...errors import ArgumentValueError, ShapeError
from ...ops.argument_errors import as_ints
from ..module import Module
from ..parameter import Parameter
from .batchnorm import _NormBase
from .linear import _check_size
from .utils import _optional_parameter

__all__ = ["LayerNorm", "RMSNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
           "InstanceNorm3d", "LocalResponseNorm"]


def _shape_tuple(normalized_shape, cls: str) -> tuple:
    """A norm's ``normalized_shape``, an int or a sequence of them, as a tuple of ints."""
    if isinstance(normalized_shape, numbers.Integral) and not isinstance(normalized_shape, bool):
        return (int(normalized_shape),)
    if isinstance(normalized_shape, (str, bytes)):     # (a sequence, of no integers)
        normalized_shape = (normalized_shape,)
    return as_ints(normalized_shape, f"{cls}: normalized_shape")


class LayerNorm(Module):
    """Normalise over the last ``len(normalized_shape)`` dimensions, then ``* weight + bias``.

    ``elementwise_affine=False`` drops both parameters; ``bias=False`` keeps only ``weight``.

    Example::

        ln = nn.LayerNorm(768)
        y = ln(gradient.randn(2, 5, 768))
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.normalized_shape = _shape_tuple(normalized_shape, type(self).__name__)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _optional_parameter(self, "weight", elementwise_affine, self.normalized_shape, factory)
        _optional_parameter(self, "bias", elementwise_affine and bias, self.normalized_shape, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class RMSNorm(Module):
    """``x / sqrt(mean(x**2) + eps) * weight`` over the last dimensions (LLaMA's norm).

    ``eps=None`` uses the machine epsilon of the input's dtype, as PyTorch does.

    Example::

        norm = nn.RMSNorm(4096, eps=1e-6)
        y = norm(gradient.randn(2, 7, 4096))
    """

    def __init__(self, normalized_shape, eps: float | None = None, elementwise_affine: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape, type(self).__name__)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_ops.empty(self.normalized_shape, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            init.ones_(self.weight)

    def forward(self, input):
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Split the channels (dim 1) into ``num_groups`` groups and normalise each group per sample.

    ``weight`` and ``bias`` are per channel (``num_channels``,) when ``affine``; the keyword-only
    ``bias=False`` keeps only ``weight`` (PyTorch 2.13's signature).

    Example::

        gn = nn.GroupNorm(num_groups=4, num_channels=32)
        y = gn(gradient.randn(8, 32, 16, 16))
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        _check_size("GroupNorm", "num_groups", num_groups)
        _check_size("GroupNorm", "num_channels", num_channels)
        if num_groups <= 0 or num_channels % num_groups != 0:
            raise ArgumentValueError(
                f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                f"num_groups ({num_groups}), and num_groups positive")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        factory = {"device": device, "dtype": dtype}
        _optional_parameter(self, "weight", affine, num_channels, factory)
        _optional_parameter(self, "bias", affine and bias, num_channels, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


# ---------------------------------------------------------------------- instance norm

class _InstanceNorm(_NormBase):
    """Shared body of the InstanceNorm layers; subclasses say which input ranks they take.

    Its parameters and buffers are BatchNorm's (:class:`_NormBase`), but the defaults differ:
    no affine parameters and no running statistics; ``num_batches_tracked`` is kept for
    checkpoint compatibility with PyTorch and never advanced. It is not a subclass of BatchNorm
    (nor is it in PyTorch), so ``isinstance(m, _BatchNorm)`` checks that freeze BatchNorm layers
    leave it alone.
    """

    _batched_ndim: int = 0  # the rank of a batched input; one less is an unbatched one

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None, dtype=None,
                 *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias)

    def forward(self, input):
        n = self._batched_ndim
        if input.ndim not in (n - 1, n):
            raise ShapeError(f"{type(self).__name__}: expected {n - 1}D (unbatched) or {n}D (batched) "
                             f"input, got {input.ndim}D input of shape {tuple(input.shape)}")
        feature_dim = input.ndim - (n - 1)
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ArgumentValueError(
                    f"{type(self).__name__}: expected input's size at dim={feature_dim} "
                    f"to match num_features ({self.num_features}), but got: "
                    f"{input.shape[feature_dim]} (input shape {tuple(input.shape)})")
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. You can "
                          "silence this warning by not passing in num_features, which is not used "
                          "because affine=False", stacklevel=2)
        unbatched = input.ndim == n - 1
        x = input.unsqueeze(0) if unbatched else input
        # Batch statistics in training, and always without running statistics; the running ones
        # in eval mode when they are tracked. momentum=None never moves them (PyTorch's rule).
        out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              self.momentum if self.momentum is not None else 0.0, self.eps)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) or unbatched (C, L) inputs: each channel of each
    sample normalised over L. No affine parameters and no running statistics by default.

    Example::

        norm = nn.InstanceNorm1d(16, affine=True)
        y = norm(gradient.randn(4, 16, 50))
    """

    _batched_ndim = 3


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or unbatched (C, H, W) inputs: each channel of
    each sample normalised over H and W (style transfer, GAN generators).

    Example::

        norm = nn.InstanceNorm2d(3)
        y = norm(gradient.randn(8, 3, 32, 32))
    """

    _batched_ndim = 4


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W) or unbatched (C, D, H, W) inputs.

    Example::

        norm = nn.InstanceNorm3d(3, track_running_stats=True)
        y = norm(gradient.randn(2, 3, 4, 8, 8))
    """

    _batched_ndim = 5


class LocalResponseNorm(Module):
    """Normalization by the energy of ``size`` neighbouring channels (AlexNet):
    ``x / (k + alpha * mean(x^2 over the channel window))^beta``. No parameters.

    Example::

        lrn = nn.LocalResponseNorm(5)
        y = lrn(gradient.randn(2, 16, 8, 8))
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
