"""Identity, Linear and Bilinear, as in ``torch.nn``.

Parameter names, shapes and default initialisation follow PyTorch exactly, so a state dict moves
between the two frameworks key by key: ``Linear`` keeps ``weight`` as (out_features, in_features)
and draws it from kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)), bias likewise.
"""

from __future__ import annotations

import math

from ... import ops as _ops
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from .utils import _fan_in_uniform_, _optional_parameter
from ...errors import ArgumentTypeError, ArgumentValueError

__all__ = ["Identity", "Linear", "Bilinear"]


def _check_size(cls: str, name: str, value) -> int:
    """A layer size must be a non-negative int (gradient.empty would truncate a float)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(
            f"{cls}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ArgumentValueError(f"{cls}: {name} must be non-negative, got {value}")
    return value


class Identity(Module):
    """Returns its input unchanged; any constructor arguments are ignored (as in PyTorch).

    Handy as a placeholder: ``model.head = nn.Identity()`` drops a classifier head.
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """``y = x @ weight.T + bias`` over the last dimension of ``x``.

    ``weight`` is (out_features, in_features), ``bias`` (out_features,), both initialised from
    U(-1/sqrt(in_features), 1/sqrt(in_features)) as in PyTorch.

    Example::

        layer = nn.Linear(20, 30)
        y = layer(gradient.randn(128, 20))   # (128, 30)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.in_features = _check_size(type(self).__name__, "in_features", in_features)
        self.out_features = _check_size(type(self).__name__, "out_features", out_features)
        self.weight = Parameter(_ops.empty((out_features, in_features), **factory))
        _optional_parameter(self, "bias", bias, out_features, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # kaiming_uniform with a=sqrt(5) gives bound sqrt(6 / ((1 + 5) * fan_in)) = 1/sqrt(fan_in)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            _fan_in_uniform_(self.bias, self.weight)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class NonDynamicallyQuantizableLinear(Linear):
    """A plain :class:`Linear`; the name exists so MultiheadAttention's repr matches PyTorch's."""


class Bilinear(Module):
    """``y_k = x1 @ weight[k] @ x2 + bias_k`` for two inputs sharing their leading dimensions.

    ``weight`` is (out_features, in1_features, in2_features), initialised with ``bias`` from
    U(-1/sqrt(in1_features), 1/sqrt(in1_features)) as in PyTorch.

    Example::

        m = nn.Bilinear(20, 30, 40)
        y = m(gradient.randn(128, 20), gradient.randn(128, 30))   # (128, 40)
    """

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.in1_features = _check_size("Bilinear", "in1_features", in1_features)
        self.in2_features = _check_size("Bilinear", "in2_features", in2_features)
        self.out_features = _check_size("Bilinear", "out_features", out_features)
        self.weight = Parameter(_ops.empty((out_features, in1_features, in2_features), **factory))
        _optional_parameter(self, "bias", bias, out_features, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[1]) if self.weight.shape[1] > 0 else 0
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
