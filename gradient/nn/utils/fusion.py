"""Folding a batch norm in evaluation mode into the layer before it, as
``torch.nn.utils.fusion``: ``bn(conv(x))`` is ``fused(x)`` for one convolution whose weight is
scaled per output channel and whose bias is shifted, so inference runs one layer instead of
two.

For running mean ``m``, variance ``v``, ``eps``, affine ``gamma``, ``beta`` and a layer
``W x + b``: ``W' = W * gamma / sqrt(v + eps)`` (per output channel) and
``b' = (b - m) * gamma / sqrt(v + eps) + beta``.

Example::

    >>> fused = fuse_conv_bn_eval(conv.eval(), bn.eval())
    >>> fused(x)         # equals bn(conv(x)) up to rounding
"""

from __future__ import annotations

import copy

from ...autograd.grad_mode import no_grad
from ...ops.creation import ones_like, zeros_like
from ..parameter import Parameter
from ...errors import ArgumentValueError, UsageError

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval",
           "fuse_linear_bn_weights"]


def _in_eval(name: str, *modules) -> None:
    if any(m.training for m in modules):
        raise UsageError(f"{name}: fusion only holds in evaluation mode (the batch norm's "
                         f"running statistics); call .eval() on both modules first")


def fuse_conv_bn_eval(conv, bn, transpose: bool = False):
    """A copy of ``conv`` (a Conv1d/2d/3d, or with ``transpose`` a ConvTranspose) with ``bn``
    (the batch norm after it, both in evaluation mode) folded in."""
    _in_eval("fuse_conv_bn_eval", conv, bn)
    fused = copy.deepcopy(conv)
    if bn.running_mean is None or bn.running_var is None:
        raise UsageError("fuse_conv_bn_eval: the batch norm has no running statistics "
                         "(track_running_stats=False)")
    fused.weight, fused.bias = fuse_conv_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias,
        transpose)
    return fused


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b,
                         transpose: bool = False) -> tuple:
    """The folded ``(weight, bias)`` Parameters of a convolution followed by a batch norm
    (see the module docstring); output channels are the weight's first dimension (its second
    with ``transpose``). A missing bias, ``bn_w`` or ``bn_b`` counts as 0, 1 and 0."""
    with no_grad():
        weight_dtype = conv_w.dtype
        bias_dtype = conv_b.dtype if conv_b is not None else weight_dtype
        conv_b = zeros_like(bn_rm) if conv_b is None else conv_b
        bn_w = ones_like(bn_rm) if bn_w is None else bn_w
        bn_b = zeros_like(bn_rm) if bn_b is None else bn_b
        scale = bn_w * (bn_rv + bn_eps).rsqrt()
        shape = ([1, -1] if transpose else [-1, 1]) + [1] * (conv_w.ndim - 2)
        weight = (conv_w * scale.reshape(shape)).to(weight_dtype)
        bias = ((conv_b - bn_rm) * scale + bn_b).to(bias_dtype)
    return Parameter(weight, conv_w.requires_grad), Parameter(bias, conv_b.requires_grad)


def fuse_linear_bn_eval(linear, bn):
    """A copy of ``linear`` with ``bn`` (a BatchNorm1d over its outputs, both in evaluation
    mode) folded in."""
    _in_eval("fuse_linear_bn_eval", linear, bn)
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise ArgumentValueError(
            f"fuse_linear_bn_eval: the batch norm normalizes {bn.num_features} "
            f"features, the linear layer gives {linear.out_features}")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b) -> tuple:
    """The folded ``(weight, bias)`` Parameters of a linear layer followed by a batch norm."""
    with no_grad():
        linear_b = zeros_like(bn_rm) if linear_b is None else linear_b
        scale = bn_w * (bn_rv + bn_eps).rsqrt()
        weight = linear_w * scale.unsqueeze(-1)
        bias = (linear_b - bn_rm) * scale + bn_b
    return Parameter(weight, linear_w.requires_grad), Parameter(bias, linear_b.requires_grad)
