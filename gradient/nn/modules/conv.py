"""Convolution layers, as in ``torch.nn``: Conv1d/2d/3d and ConvTranspose1d/2d/3d.

``weight`` is (out_channels, in_channels / groups, *kernel_size) for a convolution and
(in_channels, out_channels / groups, *kernel_size) for a transposed one, initialised with
kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias likewise, as in
PyTorch. ``padding_mode`` 'reflect', 'replicate' and 'circular' pad with F.pad first and then
convolve without padding, which is also how PyTorch does it.
"""

from __future__ import annotations

import math

from ... import ops as _ops
from ...errors import ArgumentValueError, ShapeError
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from .linear import _check_size
from .utils import (_fan_in_uniform_, _optional_parameter, _pair, _reverse_repeat_tuple, _single,
                    _triple)

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

_PADDING_STRINGS = {"same", "valid"}
_PADDING_MODES = {"zeros", "reflect", "replicate", "circular"}


class _ConvNd(Module):
    """What every convolution layer shares: argument checks, parameters, init and repr."""

    _ntuple = None  # _single / _pair / _triple in the subclasses
    _conv = None    # the F.conv*/conv_transpose* function

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 transposed, output_padding, groups, bias, padding_mode, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        _check_size(name, "in_channels", in_channels)
        _check_size(name, "out_channels", out_channels)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
            raise ArgumentValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups != 0:
            raise ArgumentValueError(
                f"{name}: in_channels ({in_channels}) must be divisible by groups "
                f"({groups})")
        if out_channels % groups != 0:
            raise ArgumentValueError(
                f"{name}: out_channels ({out_channels}) must be divisible by groups "
                f"({groups})")
        if not isinstance(padding_mode, str) or padding_mode not in _PADDING_MODES:
            raise ArgumentValueError(
                f"{name}: padding_mode must be one of {sorted(_PADDING_MODES)}, but "
                f"got padding_mode={padding_mode!r}")
        ntuple = type(self)._ntuple
        kernel_size, stride, dilation = ntuple(kernel_size), ntuple(stride), ntuple(dilation)
        if isinstance(padding, str):
            if padding not in _PADDING_STRINGS:
                raise ArgumentValueError(
                    f"{name}: invalid padding string {padding!r}, should be one of "
                    f"{sorted(_PADDING_STRINGS)}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ArgumentValueError(f"{name}: padding='same' is not supported for strided "
                                         f"convolutions (stride={stride})")
        else:
            padding = ntuple(padding)

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = transposed
        self.output_padding = ntuple(output_padding)
        self.groups = groups
        self.padding_mode = padding_mode

        # F.pad's flat widths (last dimension first) for the non-zero padding modes
        if isinstance(padding, str):
            widths = [0, 0] * len(kernel_size)
            if padding == "same":
                for i, (d, k) in enumerate(zip(dilation, kernel_size)):
                    total = d * (k - 1)
                    j = len(kernel_size) - 1 - i
                    widths[2 * j], widths[2 * j + 1] = total // 2, total - total // 2
            self._reversed_padding_repeated_twice = widths
        else:
            self._reversed_padding_repeated_twice = _reverse_repeat_tuple(padding, 2)

        factory = {"device": device, "dtype": dtype}
        if transposed:
            shape = (in_channels, out_channels // groups, *kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *kernel_size)
        self.weight = Parameter(_ops.empty(shape, **factory))
        _optional_parameter(self, "bias", bias, out_channels, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # kaiming_uniform(a=sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C/g * prod(k)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            _fan_in_uniform_(self.bias, self.weight)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * len(self.kernel_size):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, False,
                         0, groups, bias, padding_mode, device, dtype)

    def _conv_forward(self, input, weight, bias):
        conv = type(self)._conv
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(padded, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_Conv):
    """1-D convolution over (N, C_in, L) or (C_in, L) inputs.

    Example::

        conv = nn.Conv1d(16, 33, 3, stride=2)
        y = conv(gradient.randn(20, 16, 50))   # (20, 33, 24)
    """

    _ntuple = staticmethod(_single)
    _conv = staticmethod(F.conv1d)


class Conv2d(_Conv):
    """2-D convolution over (N, C_in, H, W) or (C_in, H, W) inputs.

    ``padding`` is an int, a pair, 'valid' or 'same'; ``padding_mode`` one of 'zeros',
    'reflect', 'replicate', 'circular'.

    Example::

        conv = nn.Conv2d(3, 16, kernel_size=3, padding=1)
        y = conv(gradient.randn(8, 3, 32, 32))   # (8, 16, 32, 32)
    """

    _ntuple = staticmethod(_pair)
    _conv = staticmethod(F.conv2d)


class Conv3d(_Conv):
    """3-D convolution over (N, C_in, D, H, W) inputs. ``nn.Conv3d(4, 8, 3, padding=1)``."""

    _ntuple = staticmethod(_triple)
    _conv = staticmethod(F.conv3d)


class _ConvTransposeNd(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ArgumentValueError(
                f'Only "zeros" padding mode is supported for {type(self).__name__}, '
                f"got {padding_mode!r}")
        if isinstance(padding, str):
            raise ArgumentValueError(
                f"{type(self).__name__}: padding must be an int or a tuple of ints, "
                f"got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, True,
                         output_padding, groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input, output_size) -> tuple:
        """The output_padding that makes the output exactly ``output_size`` (PyTorch's rule)."""
        if output_size is None:
            return self.output_padding
        d = len(self.kernel_size)
        output_size = tuple(output_size)
        batched = input.ndim == d + 2
        lead = 2 if batched else 1
        if len(output_size) == lead + d:
            output_size = output_size[lead:]
        if len(output_size) != d:
            raise ShapeError(f"{type(self).__name__}: output_size must have {d} or {lead + d} "
                             f"elements, got {len(output_size)}: {output_size}")
        result = []
        for i in range(d):
            smallest = ((input.shape[lead + i] - 1) * self.stride[i] - 2 * self.padding[i]
                        + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            largest = smallest + self.stride[i] - 1
            if not smallest <= output_size[i] <= largest:
                raise ShapeError(f"{type(self).__name__}: requested an output size of "
                                 f"{output_size}, but valid sizes for dimension {i} range from "
                                 f"{smallest} to {largest} (for an input of "
                                 f"{tuple(input.shape)[lead:]})")
            result.append(output_size[i] - smallest)
        return tuple(result)

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        return type(self)._conv(input, self.weight, self.bias, self.stride, self.padding,
                                output_padding, self.groups, self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over (N, C_in, L) inputs.

    ``nn.ConvTranspose1d(16, 8, 4, stride=2)``
    """

    _ntuple = staticmethod(_single)
    _conv = staticmethod(F.conv_transpose1d)


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution ("deconvolution"), the adjoint of Conv2d.

    ``forward(input, output_size=None)``: ``output_size`` picks the output padding that gives
    exactly that size, as in PyTorch.

    Example::

        up = nn.ConvTranspose2d(16, 8, kernel_size=4, stride=2, padding=1)
        y = up(gradient.randn(1, 16, 12, 12))   # (1, 8, 24, 24)
    """

    _ntuple = staticmethod(_pair)
    _conv = staticmethod(F.conv_transpose2d)


class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution over (N, C_in, D, H, W) inputs.

    ``nn.ConvTranspose3d(4, 2, 3)``
    """

    _ntuple = staticmethod(_triple)
    _conv = staticmethod(F.conv_transpose3d)
