"""Fake quantization, as ``torch.fake_quantize_per_tensor_affine`` and
``torch.fake_quantize_per_channel_affine``: quantization-aware training's rounding.

Each value goes to the integer grid and back, ``(clamp(round(x / scale) + zero_point, qmin,
qmax) - zero_point) * scale`` (rounding half to even, as PyTorch's ``nearbyint``, with
``1 / scale`` taken in float32 as PyTorch does), so the model trains with the error int8 (or
any ``[qmin, qmax]``) inference will have. The gradient passes straight through where the
value fell inside the grid and is zero where it was clamped.

Example::

    >>> x = gradient.tensor([-1.0, 0.26, 2.0], requires_grad=True)
    >>> gradient.fake_quantize_per_tensor_affine(x, 0.1, 3, -8, 7)
    tensor([-1.0000,  0.3000,  0.4000], grad_fn=<_FakeQuantizeBackward>)
"""

from __future__ import annotations

from ..autograd.function import Function
from ..dtypes import float32
from ..errors import ArgumentValueError, ShapeError
from ..tensor import Tensor
from .creation import tensor as _tensor

__all__ = ["fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine"]


class _FakeQuantize(Function):
    @staticmethod
    def forward(ctx, x, scale, zero_point, quant_min, quant_max):
        # PyTorch computes in float32 whatever x's dtype (a float64 x gets float32's grid)
        x32, scale32 = x.to(float32), scale.to(float32)
        q = (x32 * (1.0 / scale32)).round() + zero_point.to(float32)
        inside = (q >= quant_min) & (q <= quant_max)
        ctx.save_for_backward(inside)
        out = (q.clamp(quant_min, quant_max) - zero_point.to(float32)) * scale32
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside.to(grad.dtype), None, None, None, None


def _check_range(fn: str, quant_min: int, quant_max: int, zero_point) -> None:
    if quant_min > quant_max:
        raise ArgumentValueError(
            f"{fn}: quant_min ({quant_min}) must not be greater than quant_max "
            f"({quant_max})")
    points = zero_point.detach() if isinstance(zero_point, Tensor) else _tensor(zero_point)
    if bool(((points < quant_min) | (points > quant_max)).any()):
        raise ArgumentValueError(f"{fn}: zero_point must be between quant_min ({quant_min}) and "
                                 f"quant_max ({quant_max})")


def _as_tensor(value, like: Tensor) -> Tensor:
    return value.detach().to(like.dtype) if isinstance(value, Tensor) else \
        _tensor(float(value), dtype=like.dtype, device=like.device)


def fake_quantize_per_tensor_affine(input: Tensor, scale, zero_point, quant_min: int,
                                    quant_max: int) -> Tensor:
    """``input`` rounded to the grid of one ``scale`` and ``zero_point`` (numbers or one-element
    tensors) between ``quant_min`` and ``quant_max``; see the module's docstring."""
    _check_range("fake_quantize_per_tensor_affine", quant_min, quant_max, zero_point)
    return _FakeQuantize.apply(input, _as_tensor(scale, input), _as_tensor(zero_point, input),
                               quant_min, quant_max)


def fake_quantize_per_channel_affine(input: Tensor, scale: Tensor, zero_point: Tensor, axis: int,
                                     quant_min: int, quant_max: int) -> Tensor:
    """``input`` rounded to a grid per index of dimension ``axis``: ``scale`` and
    ``zero_point`` hold one value per channel."""
    _check_range("fake_quantize_per_channel_affine", quant_min, quant_max, zero_point)
    if not 0 <= axis < input.ndim:
        raise ArgumentValueError(
            f"fake_quantize_per_channel_affine: axis must be between 0 and the "
            f"number of dimensions of the input ({input.ndim}), got {axis}")
    channels = input.shape[axis]
    if scale.numel() != channels or zero_point.numel() != channels:
        raise ShapeError(f"fake_quantize_per_channel_affine: expected {channels} scales and zero "
                         f"points (dimension {axis} of shape {tuple(input.shape)}), got "
                         f"{scale.numel()} and {zero_point.numel()}")
    shape = [1] * input.ndim
    shape[axis] = channels
    return _FakeQuantize.apply(input, _as_tensor(scale, input).reshape(shape),
                               _as_tensor(zero_point, input).reshape(shape), quant_min, quant_max)
