"""``gradient.nn.grad``: the gradients of a convolution with respect to its input and to its
weight, as functions (``torch.nn.grad``), for code that computes them itself (per-example
gradients, custom backward passes).

A convolution is linear in its input and in its weight, so each is the vector-Jacobian product
of the convolution at any point: here, gradient's own backward of ``F.conv{1,2,3}d``.

Example::

    >>> grad_input = gradient.nn.grad.conv2d_input(x.shape, w, grad_out, padding=1)
    >>> grad_weight = gradient.nn.grad.conv2d_weight(x, w.shape, grad_out, padding=1)
"""

from __future__ import annotations

from ..autograd import enable_grad
from ..autograd import grad as _grad
from ..ops import conv as _conv
from ..ops.creation import zeros

__all__ = ["conv1d_input", "conv1d_weight", "conv2d_input", "conv2d_weight", "conv3d_input",
           "conv3d_weight"]


def _input_grad(conv, input_size, weight, grad_output, stride, padding, dilation, groups):
    # differentiable in weight and grad_output when they require grad (a graph is kept then)
    keep = weight.requires_grad or grad_output.requires_grad
    with enable_grad():
        x = zeros(tuple(input_size), dtype=grad_output.dtype, device=grad_output.device,
                  requires_grad=True)
        out = conv(x, weight, None, stride, padding, dilation, groups)
        (result,) = _grad(out, x, grad_output, create_graph=keep)
    return result


def _weight_grad(conv, input, weight_size, grad_output, stride, padding, dilation, groups):
    keep = input.requires_grad or grad_output.requires_grad
    with enable_grad():
        w = zeros(tuple(weight_size), dtype=grad_output.dtype, device=grad_output.device,
                  requires_grad=True)
        out = conv(input, w, None, stride, padding, dilation, groups)
        (result,) = _grad(out, w, grad_output, create_graph=keep)
    return result


def _input_function(d: int):
    conv = getattr(_conv, f"conv{d}d")

    def fn(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
        return _input_grad(conv, input_size, weight, grad_output, stride, padding, dilation,
                           groups)
    fn.__name__ = fn.__qualname__ = f"conv{d}d_input"
    fn.__doc__ = f"The gradient of ``F.conv{d}d`` with respect to an input of ``input_size``."
    return fn


def _weight_function(d: int):
    conv = getattr(_conv, f"conv{d}d")

    def fn(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
        return _weight_grad(conv, input, weight_size, grad_output, stride, padding, dilation,
                            groups)
    fn.__name__ = fn.__qualname__ = f"conv{d}d_weight"
    fn.__doc__ = f"The gradient of ``F.conv{d}d`` with respect to a weight of ``weight_size``."
    return fn


conv1d_input, conv2d_input, conv3d_input = (_input_function(d) for d in (1, 2, 3))
conv1d_weight, conv2d_weight, conv3d_weight = (_weight_function(d) for d in (1, 2, 3))
