"""Neural-network functions: activations, softmax, normalization, dropout, embedding, linear.

These are exported as ``gradient.nn.functional`` with ``torch.nn.functional``'s names,
signatures and defaults. The hot activations (relu, gelu, silu, softplus, elu) are one
Function each: a forward on backend primitives and a backward written with differentiable
ops, so second derivatives work. The rest, and the norms, are compositions of differentiable
ops, which gives double backward for free. Float16/bfloat16 inputs are computed in float32
and rounded once at the end (the activation kernels, the gelu and silu backward, softmax and
its backward, the norms' statistics), as PyTorch's kernels do.

Deliberate differences from PyTorch: the float activations (gelu, silu, softmax, ...) accept
integer and bool inputs and compute them in the default float dtype, where PyTorch raises;
``softmax``/``log_softmax`` default to the last dimension instead of PyTorch's legacy choice;
``dropout2d`` refuses the 2-d and 5-d inputs PyTorch has deprecated.

Example::

    >>> import gradient.nn.functional as F
    >>> F.softmax(gradient.tensor([1.0, 2.0, 3.0]), dim=-1)
    >>> F.layer_norm(F.gelu(x @ w), (768,), gamma, beta)
"""

from __future__ import annotations

import math
import warnings

from .. import kernels
from ..autograd import autocast_state as _autocast
from ..autograd import capture_state
from ..autograd.function import ArrayFunction, check_same_device
from ..autograd.grad_mode import is_grad_enabled, no_grad
from ..dtypes import bfloat16, bool_, float16, float32, float64, from_numpy_dtype, int64
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, IndexRangeError, ShapeError
from ..tensor import Tensor
from . import creation
from .argument_errors import as_int, as_ints, as_number, one_integer
from .elementwise import (_constant, _floating, _promote, cast, erf, exp, pow, rsqrt, sigmoid, tanh,
                          where)
from .elementwise import abs as _abs
from .index import index_add, index_select
from .reduce import amax, amin, mean
from .reduce import sum as _sum
from .shape import broadcast_shapes, expand, permute, reshape, roll, unsqueeze, wrap_dim
from .sparse import SparseCOOTensor

__all__ = [
    # activations
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "hardtanh", "hardtanh_", "gelu", "silu",
    "softplus", "elu", "elu_", "selu", "celu", "mish", "hardsigmoid", "hardswish", "logsigmoid",
    "softsign", "tanhshrink", "hardshrink", "softshrink", "threshold", "threshold_", "prelu", "glu",
    # softmax family
    "softmax", "log_softmax", "softmin",
    # layers
    "linear", "bilinear", "dropout", "dropout1d", "dropout2d", "dropout3d", "embedding", "one_hot",
    # normalization and distances
    "layer_norm", "rms_norm", "group_norm", "batch_norm", "normalize", "cosine_similarity",
    "pairwise_distance",
    # fused LLaMA blocks (not in torch.nn.functional)
    "swiglu", "rotary_embedding",
]
TENSOR_METHODS = ("softmax", "log_softmax", "relu", "relu_", "hardshrink", "prelu")

_LOW_PRECISION = (float16, bfloat16)


# ---------------------------------------------------------------------- helpers
def _scalar(b, value, like):
    """A 0-d backend array holding ``value`` in ``like``'s dtype (for forward kernels)."""
    return b.full((), value, from_numpy_dtype(like.dtype))


def _upcast(b, x):
    """float16/bfloat16 arrays as float32, so a multi-step kernel rounds once, at the end."""
    return b.cast(x, float32) if from_numpy_dtype(x.dtype) in _LOW_PRECISION else x


def _compute_dtype(x: Tensor):
    """The dtype statistics are computed in: float32 for float16/bfloat16 inputs."""
    return float32 if x.dtype in _LOW_PRECISION else x.dtype


def _minus_max(b, x, dim: int):
    """``x - max(x)`` along ``dim``, so exp never overflows (``x`` itself when ``dim`` is
    empty, where the max has no identity and the result is empty anyway)."""
    if x.shape[dim] == 0:
        return x
    return b.binary("sub", x, b.reduce("max", x, dim, True))


def _fused_backward(ctx, name: str, *args):
    """The backend's fused kernel ``name`` on the raw arrays of ``args`` (Tensors or other
    values), its result(s) as Tensors; None when the backend has no such kernel or it declines.

    Backward passes use it only when no graph is being built (``create_graph=False``): the
    composition of differentiable ops they fall back to is what makes second derivatives work.
    """
    out = kernels.call(name, ctx.backend, *(a._data if isinstance(a, Tensor) else a for a in args))
    if out is None:
        return None
    if type(out) is tuple:
        return tuple(Tensor._make(o, False, ctx.backend) for o in out)
    return Tensor._make(out, False, ctx.backend)


def _require_float(x: Tensor, fn: str, what: str = "input") -> None:
    if not x.dtype.is_floating_point:
        raise DTypeError(f"{fn}: expected a floating point {what}, got {x.dtype}")


def _broadcasts_to(shape, target) -> bool:
    """Whether a tensor of ``shape`` broadcasts to ``target`` without enlarging it."""
    try:
        return tuple(broadcast_shapes(shape, target)) == tuple(target)
    except ShapeError:
        return False


# ---------------------------------------------------------------------- relu family
class ReLU(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        b = ctx.backend
        y = b.binary("maximum", x, _scalar(b, 0, x))  # maximum keeps NaN, like torch.relu
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return where(y > 0, grad, 0.0)  # the gradient at 0 is 0, as in PyTorch


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); the gradient at 0 is 0. ``F.relu(gradient.tensor([-1.0, 2.0]))`` -> [0, 2]."""
    if inplace:
        return relu_(input)
    return ReLU.apply(input)


def relu_(input: Tensor) -> Tensor:
    """In-place :func:`relu`."""
    return input._inplace("relu_", ReLU.apply)


class Hardtanh(ArrayFunction):
    @staticmethod
    def forward(ctx, x, min_val, max_val):
        b = ctx.backend
        ctx.save_for_backward(x)
        ctx.min_val, ctx.max_val = min_val, max_val
        return b.binary("minimum", b.binary("maximum", x, _scalar(b, min_val, x)),
                        _scalar(b, max_val, x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # zero at and beyond the ends, as PyTorch's hardtanh_backward
        return where((x > ctx.min_val) & (x < ctx.max_val), grad, 0.0), None, None


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clipped to [min_val, max_val]. ``F.hardtanh(x, -2.0, 2.0)``.

    Integer inputs keep their dtype (the bounds are truncated to integers), as in PyTorch.
    """
    min_val, max_val = as_number(min_val, "hardtanh: min_val"), as_number(max_val,
                                                                          "hardtanh: max_val")
    if min_val > max_val:
        raise ArgumentValueError(
            f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    if input.dtype is bool_:
        raise DTypeError("hardtanh: bool inputs are not supported; convert with .float()")
    if inplace:
        return hardtanh_(input, min_val, max_val)
    return Hardtanh.apply(input, min_val, max_val)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """In-place :func:`hardtanh`."""
    min_val, max_val = as_number(min_val, "hardtanh: min_val"), as_number(max_val,
                                                                          "hardtanh: max_val")
    return input._inplace("hardtanh_", lambda s: Hardtanh.apply(s, min_val, max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6). ``F.relu6(x)``."""
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x. ``F.leaky_relu(x, 0.2)``."""
    negative_slope = as_number(negative_slope, "leaky_relu: negative_slope")
    if inplace:
        return leaky_relu_(input, negative_slope)
    x = _floating(input)
    return where(x > 0, x, x * negative_slope)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """In-place :func:`leaky_relu`."""
    return input._inplace("leaky_relu_", lambda s: leaky_relu(s, negative_slope))


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else ``value`` (in x's dtype). ``F.threshold(x, 0.1, 20.0)``."""
    threshold, value = as_number(threshold, "threshold: threshold"), as_number(
        value, "threshold: value")
    if inplace:
        return threshold_(input, threshold, value)
    # the replacement takes the input's dtype (5.5 becomes 5 in an int tensor), as in PyTorch
    return where(input > threshold, input, _constant(value, input.dtype, input))


def threshold_(input: Tensor, threshold_value: float, value: float) -> Tensor:
    """In-place :func:`threshold`."""
    return input._inplace("threshold_", lambda s: threshold(s, threshold_value, value))


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """leaky_relu with a learned slope per channel (dim 1), or one slope for all.

    An input of fewer than 2 dimensions has no channel dimension, so its weight has one
    element, as in PyTorch. ``F.prelu(x, gradient.full((1,), 0.25))``
    """
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() == 1:
        weight = reshape(weight, ())
    elif weight.ndim == 1 and weight.shape[0] == channels:
        weight = reshape(weight, (channels,) + (1,) * (input.ndim - 2))
    else:
        expected = "1 element" + (f" or {channels} (one per channel, dim 1)" if channels > 1 else "")
        raise ShapeError(f"prelu: expected a weight of {expected} for an input of shape "
                         f"{tuple(input.shape)}, got shape {tuple(weight.shape)}")
    return where(input > 0, input, weight * input)


# ---------------------------------------------------------------------- smooth activations
_SQRT1_2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_C = 0.044715


class GELU(ArrayFunction):
    # the compiled form in a captured step compiled into a loop (gradient.kernels.lowering)
    lower = staticmethod(lambda ctx, x, approximate: kernels.lower("gelu", ctx.backend, x,
                                                                   approximate))

    @staticmethod
    def forward(ctx, x, approximate):
        b = ctx.backend
        ctx.approximate = approximate
        ctx.save_for_backward(x)
        out = kernels.call("gelu", b, x, approximate)
        if out is not None:
            return out
        x32 = _upcast(b, x)
        c = lambda v: _scalar(b, v, x32)  # noqa: E731
        if approximate == "tanh":
            inner = b.binary("mul", c(_SQRT_2_OVER_PI), b.binary(
                "add", x32, b.binary("mul", c(_GELU_C), b.binary("mul", x32, b.binary("mul", x32, x32)))))
            cdf = b.binary("mul", c(0.5), b.binary("add", c(1.0), b.unary("tanh", inner)))
        else:
            cdf = b.binary("mul", c(0.5), b.binary("add", c(1.0), b.unary("erf", b.binary(
                "mul", x32, c(_SQRT1_2)))))
        return b.cast(b.binary("mul", x32, cdf), from_numpy_dtype(x.dtype))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if not is_grad_enabled():  # no graph to build: the fused kernel, when the backend has one
            out = _fused_backward(ctx, "gelu_backward", grad, x, ctx.approximate)
            if out is not None:
                return out, None
        x = cast(x, _compute_dtype(x))  # float16/bfloat16: float32 math, one rounding at the end
        if ctx.approximate == "tanh":
            t = tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x))
            dinner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_C * x * x)
            slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dinner
        else:
            cdf = 0.5 * (1 + erf(x * _SQRT1_2))
            pdf = exp(-0.5 * x * x) * _INV_SQRT_2PI
            slope = cdf + x * pdf
        return cast(grad * slope, grad.dtype), None


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) with the exact erf formula, or the tanh approximation (``approximate='tanh'``).

    ``F.gelu(x, approximate='tanh')``
    """
    if approximate not in ("none", "tanh"):
        raise ArgumentValueError(
            f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(_floating(input), approximate)


class SiLU(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        b = ctx.backend
        ctx.save_for_backward(x)
        out = kernels.call("silu", b, x)
        if out is not None:
            return out
        x32 = _upcast(b, x)
        return b.cast(b.binary("mul", x32, b.unary("sigmoid", x32)), from_numpy_dtype(x.dtype))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if not is_grad_enabled():  # no graph to build: the fused kernel, when the backend has one
            out = _fused_backward(ctx, "silu_backward", grad, x)
            if out is not None:
                return out
        x = cast(x, _compute_dtype(x))  # float16/bfloat16: float32 math, one rounding at the end
        s = sigmoid(x)
        return cast(grad * (s * (1 + x * (1 - s))), grad.dtype)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish). ``F.silu(x)``."""
    if inplace:
        return input._inplace("silu_", SiLU.apply)
    return SiLU.apply(_floating(input))


class Softplus(ArrayFunction):
    @staticmethod
    def forward(ctx, x, beta, threshold):
        b = ctx.backend
        ctx.beta, ctx.threshold = beta, threshold
        ctx.save_for_backward(x)
        x32 = _upcast(b, x)
        c = lambda v: _scalar(b, v, x32)  # noqa: E731
        bx = b.binary("mul", x32, c(beta))
        # exp of min(bx, threshold) only: the linear branch is used above the threshold anyway
        soft = b.binary("div", b.unary("log1p", b.unary("exp", b.binary("minimum", bx, c(threshold)))),
                        c(beta))
        y = b.where(b.binary("gt", bx, c(threshold)), x32, soft)
        return b.cast(y, from_numpy_dtype(x.dtype))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        bx = x * ctx.beta
        return where(bx > ctx.threshold, grad, grad * sigmoid(bx)), None, None


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, linear where beta * x > threshold. ``F.softplus(x)``."""
    beta, threshold = as_number(beta, "softplus: beta"), as_number(threshold,
                                                                    "softplus: threshold")
    return Softplus.apply(_floating(input), beta, threshold)


class ELU(ArrayFunction):
    """scale * x for x > 0, scale * alpha * (exp(x * input_scale) - 1) otherwise (elu/selu/celu)."""

    @staticmethod
    def forward(ctx, x, alpha, scale, input_scale):
        b = ctx.backend
        ctx.alpha, ctx.scale, ctx.input_scale = alpha, scale, input_scale
        ctx.save_for_backward(x)
        x32 = _upcast(b, x)
        c = lambda v: _scalar(b, v, x32)  # noqa: E731
        # expm1 of min(x, 0) only, so large positive inputs do not overflow in the unused branch
        neg = b.binary("mul", c(scale * alpha), b.unary("expm1", b.binary(
            "mul", b.binary("minimum", x32, c(0.0)), c(input_scale))))
        y = b.where(b.binary("gt", x32, c(0.0)), b.binary("mul", x32, c(scale)), neg)
        return b.cast(y, from_numpy_dtype(x.dtype))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        positive = x > 0
        negative_part = where(positive, 0.0, x)  # keeps exp() finite, and its grad, in both branches
        slope = (ctx.scale * ctx.alpha * ctx.input_scale) * exp(negative_part * ctx.input_scale)
        return where(positive, grad * ctx.scale, grad * slope), None, None, None


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise. ``F.elu(x, alpha=1.0)``."""
    alpha = as_number(alpha, "elu: alpha")
    if inplace:
        return elu_(input, alpha)
    return ELU.apply(_floating(input), alpha, 1.0, 1.0)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place :func:`elu`."""
    alpha = as_number(alpha, "elu: alpha")
    return input._inplace("elu_", lambda s: ELU.apply(s, alpha, 1.0, 1.0))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalizing constants. ``F.selu(x)``."""
    fn = lambda s: ELU.apply(s, _SELU_ALPHA, _SELU_SCALE, 1.0)  # noqa: E731
    return input._inplace("selu_", fn) if inplace else fn(_floating(input))


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)). ``F.celu(x, alpha=1.0)``."""
    alpha = as_number(alpha, "celu: alpha")
    if alpha == 0:
        raise ArgumentValueError("celu: alpha cannot be 0")
    fn = lambda s: ELU.apply(s, alpha, 1.0, 1.0 / alpha)  # noqa: E731
    return input._inplace("celu_", fn) if inplace else fn(_floating(input))


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x)). ``F.mish(x)``."""
    fn = lambda s: s * tanh(softplus(s))  # noqa: E731
    return input._inplace("mish_", fn) if inplace else fn(_floating(input))


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6: 0 below -3, 1 above 3, linear between. ``F.hardsigmoid(x)``."""
    fn = lambda s: Hardtanh.apply(s + 3, 0.0, 6.0) / 6  # noqa: E731
    return input._inplace("hardsigmoid_", fn) if inplace else fn(_floating(input))


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6 (MobileNetV3). ``F.hardswish(x)``."""
    fn = lambda s: s * Hardtanh.apply(s + 3, 0.0, 6.0) / 6  # noqa: E731
    return input._inplace("hardswish_", fn) if inplace else fn(_floating(input))


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|. ``F.logsigmoid(x)``."""
    return -softplus(-_floating(input))


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|). ``F.softsign(x)``."""
    x = _floating(input)
    return x / (1 + _abs(x))


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x). ``F.tanhshrink(x)``."""
    x = _floating(input)
    return x - tanh(x)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0. ``F.hardshrink(x, 0.5)``."""
    return where((input > lambd) | (input < -lambd), input, 0.0)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between. ``F.softshrink(x, 0.5)``."""
    if lambd < 0:
        raise ArgumentValueError(f"softshrink: lambd must be non-negative, got {lambd}")
    return where(input > lambd, input - lambd, where(input < -lambd, input + lambd, 0.0))


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: a * sigmoid(b) where a, b are the halves of ``input`` along ``dim``.

    ``F.glu(gradient.randn(4, 6))`` has shape (4, 3).
    """
    if input.ndim == 0:
        raise ShapeError("glu: does not support 0-d (scalar) tensors")
    dim = wrap_dim(dim, input.ndim)
    n = input.shape[dim]
    if n % 2:
        raise ShapeError(f"glu: halving dimension {dim} of shape {tuple(input.shape)} needs an even "
                         f"size, got {n}")
    lead = (slice(None),) * dim
    return input[lead + (slice(0, n // 2),)] * sigmoid(input[lead + (slice(n // 2, n),)])


# ---------------------------------------------------------------------- softmax family
# The softmax kernels compute float16/bfloat16 inputs in float32 and round once, as PyTorch's.
def _softmax_array(b, x, dim: int):
    """Softmax of a raw backend array along ``dim`` (float16/bfloat16 computed in float32)."""
    e = b.unary("exp", _minus_max(b, _upcast(b, x), dim))
    return b.cast(b.binary("div", e, b.reduce("sum", e, dim, True)), from_numpy_dtype(x.dtype))


def _row_kernel(b, name: str, dim: int, *arrays):
    """The backend's fused kernel ``name`` over the last dimension, on ``arrays``; None when the
    backend has none, ``dim`` is not the last dimension, or the kernel declines."""
    if dim != arrays[0].ndim - 1:
        return None
    return kernels.call(name, b, *arrays)


class Softmax(ArrayFunction):
    @staticmethod
    def forward(ctx, x, dim):
        y = _row_kernel(ctx.backend, "softmax", dim, x)
        if y is None:
            y = _softmax_array(ctx.backend, x, dim)
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return SoftmaxGrad.apply(grad, y, ctx.dim), None


class SoftmaxGrad(ArrayFunction):
    """Softmax's backward ``y * (grad - sum(grad * y))`` as one node (y: the softmax output).

    One node on raw arrays instead of four Tensor ops; its own backward, needed only for
    second derivatives, is written with differentiable ops.
    """

    @staticmethod
    def forward(ctx, grad, y, dim):
        b = ctx.backend
        ctx.dim = dim
        ctx.save_for_backward(grad, y)
        dx = _row_kernel(b, "softmax_backward", dim, grad, y)
        if dx is not None:
            return dx
        g32, y32 = _upcast(b, grad), _upcast(b, y)
        dot = b.reduce("sum", b.binary("mul", g32, y32), dim, True)
        return b.cast(b.binary("mul", y32, b.binary("sub", g32, dot)), from_numpy_dtype(grad.dtype))

    @staticmethod
    def backward(ctx, gg):
        grad, y = ctx.saved_tensors
        gg_y = _sum(gg * y, ctx.dim, keepdim=True)
        d_grad = d_y = None
        if ctx.needs_input_grad[0]:
            d_grad = y * (gg - gg_y)
        if ctx.needs_input_grad[1]:
            d_y = gg * (grad - _sum(grad * y, ctx.dim, keepdim=True)) - grad * gg_y
        return d_grad, d_y, None


class LogSoftmax(ArrayFunction):
    @staticmethod
    def forward(ctx, x, dim):
        b = ctx.backend
        y = _row_kernel(b, "log_softmax", dim, x)
        if y is None:
            shifted = _minus_max(b, _upcast(b, x), dim)
            lse = b.unary("log", b.reduce("sum", b.unary("exp", shifted), dim, True))
            y = b.cast(b.binary("sub", shifted, lse), from_numpy_dtype(x.dtype))
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return LogSoftmaxGrad.apply(grad, y, ctx.dim), None


class LogSoftmaxGrad(ArrayFunction):
    """LogSoftmax's backward ``grad - exp(y) * sum(grad)`` as one node (y: the log-softmax).

    One node on raw arrays instead of four Tensor ops; its own backward, needed only for
    second derivatives, is written with differentiable ops.
    """

    @staticmethod
    def forward(ctx, grad, y, dim):
        b = ctx.backend
        ctx.dim = dim
        ctx.save_for_backward(grad, y)
        dx = _row_kernel(b, "log_softmax_backward", dim, grad, y)
        if dx is not None:
            return dx
        g32 = _upcast(b, grad)
        total = b.reduce("sum", g32, dim, True)
        out = b.binary("sub", g32, b.binary("mul", b.unary("exp", _upcast(b, y)), total))
        return b.cast(out, from_numpy_dtype(grad.dtype))

    @staticmethod
    def backward(ctx, gg):
        grad, y = ctx.saved_tensors
        p = exp(y)
        d_grad = d_y = None
        if ctx.needs_input_grad[0]:
            d_grad = gg - _sum(gg * p, ctx.dim, keepdim=True)
        if ctx.needs_input_grad[1]:
            d_y = -(gg * p) * _sum(grad, ctx.dim, keepdim=True)
        return d_grad, d_y, None


def softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``; stable for large inputs (the maximum is subtracted).

    ``dtype`` casts the input first (e.g. float32 for a float16 input). Without ``dim``,
    PyTorch's legacy choice (dimension 0 of a 0-, 1- or 3-d input, else 1) with its
    deprecation warning, so that a ported call gives what it gave under PyTorch.
    ``F.softmax(gradient.tensor([1.0, 2.0, 3.0]), dim=-1)`` -> [0.0900, 0.2447, 0.6652]
    """
    x = _floating(input if dtype is None else input.to(dtype))
    dim = wrap_dim(_softmax_dim("softmax", dim, x.ndim), x.ndim)
    if x.ndim == 0:
        return x * 0 + 1
    return Softmax.apply(x, dim)


def log_softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """log(softmax(x)) along ``dim``, computed stably as x - max - log(sum(exp(x - max))).

    ``F.log_softmax(logits, dim=1)``; ``dtype``, and ``dim`` when omitted, as in
    :func:`softmax`.
    """
    x = _floating(input if dtype is None else input.to(dtype))
    dim = wrap_dim(_softmax_dim("log_softmax", dim, x.ndim), x.ndim)
    if x.ndim == 0:
        return x * 0
    return LogSoftmax.apply(x, dim)


def softmin(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """softmax(-x) along ``dim`` (when omitted, as :func:`softmax`). ``F.softmin(x, dim=1)``."""
    x = _floating(input if dtype is None else input.to(dtype))
    return softmax(-x, _softmax_dim("softmin", dim, x.ndim))


def _softmax_dim(name: str, dim, ndim: int):
    """``dim``, or where it is None PyTorch's legacy rule (with its deprecation warning)."""
    if dim is not None:
        return dim
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to "
                  "include dim=X as an argument.", UserWarning, stacklevel=4)
    return 0 if ndim in (0, 1, 3) else 1


# ---------------------------------------------------------------------- linear
class Linear(ArrayFunction):
    """x @ weight.T + bias over the last dimension of x (any leading dimensions)."""

    # the compiled form in a captured step compiled into a loop (gradient.kernels.lowering)
    lower = staticmethod(lambda ctx, x, weight, bias: kernels.lower("linear", ctx.backend, x,
                                                                     weight, bias))

    @staticmethod
    def forward(ctx, x, weight, bias):
        b = ctx.backend
        ctx.save_for_backward(x, weight)
        lead = tuple(x.shape[:-1])
        x2 = b.reshape(x, (math.prod(lead), x.shape[-1]))
        dtype = from_numpy_dtype(x.dtype)
        if dtype in _LOW_PRECISION:
            # float16/bfloat16: a float32 product plus the bias in float32, then one rounding
            # at the end, as PyTorch does (rounding the product before adding the bias is an
            # ulp off in about a third of the outputs, which autocast tests against torch make
            # visible). The product comes from the backend's kernel that reads the weight in
            # place (a few rows on the CPU; cuBLAS's float16 GEMM with a float32 result on a
            # GPU) or, with a bias, from a float32 GEMM of both widened. Without a bias and a
            # kernel, the backend's own low-precision product below.
            y = kernels.call("low_precision_linear", b, x2, weight, bias)
            if y is None and bias is not None:
                y = b.matmul(_upcast(b, x2), b.permute(_upcast(b, weight), (1, 0)))
                y = b.binary_("add", y, _upcast(b, bias))
            if y is not None:
                return b.cast(b.reshape(y, lead + (weight.shape[0],)), dtype)
        # a few rows by a large weight (a decode step): the weight read once, in place, at the
        # memory's speed (a matrix-vector BLAS product streams slower, and its threads spin
        # against the other kernels' between calls); else one (rows, in) @ (in, out) GEMM:
        # several times faster than a batched matmul over the leading dimensions
        y = kernels.call("float_rows_product", b, x2, weight) if dtype is float32 else None
        if y is None:
            y = b.matmul(x2, b.permute(weight, (1, 0)))
        y = b.reshape(y, lead + (weight.shape[0],))
        if bias is None:
            return y
        if bias.dtype == y.dtype:   # into the fresh product (bias broadcasts)
            if kernels.call("add_to_rows", b, y, bias):
                return y
            return b.binary_("add", y, bias)
        return b.binary("add", y, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        if not is_grad_enabled():  # no graph to build: two GEMMs on the raw arrays
            return _linear_backward_arrays(ctx, grad, x, weight)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = Linear.apply(grad, weight.T, None)              # grad @ weight
        if ctx.needs_input_grad[1]:
            # flatten the leading dimensions: grad_w = grad2.T @ x2 = linear(grad2.T, x2.T)
            g2, x2 = _flatten_leading(grad), _flatten_leading(x)
            grad_w = Linear.apply(permute(g2, (1, 0)), permute(x2, (1, 0)), None)
        grad_b = grad if ctx.needs_input_grad[2] else None   # the engine sums it to bias's shape
        return grad_x, grad_w, grad_b


def _linear_backward_arrays(ctx, grad, x, weight):
    """Linear's backward without recording: the same products as the differentiable path
    (``grad @ weight`` and ``grad2.T @ x2``), without the Tensor ops around them."""
    b = ctx.backend
    rows = math.prod(x.shape[:-1])
    g2 = b.reshape(grad._data, (rows, weight.shape[0]))
    grad_x = grad_w = None
    if ctx.needs_input_grad[0]:
        grad_x = Tensor._make(b.reshape(b.matmul(g2, weight._data), tuple(x.shape)), False, b)
    if ctx.needs_input_grad[1]:
        x2 = b.reshape(x._data, (rows, x.shape[-1]))
        grad_w = Tensor._make(b.matmul(b.permute(g2, (1, 0)), x2), False, b)
    return grad_x, grad_w, grad if ctx.needs_input_grad[2] else None


def _flatten_leading(t: Tensor) -> Tensor:
    """``t`` as a matrix: (product of the leading dimensions, last dimension)."""
    return reshape(t, (math.prod(t.shape[:-1]), t.shape[-1]))


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``; weight has shape (out_features, in_features).

    ``F.linear(gradient.randn(8, 5, 3), gradient.randn(4, 3))`` has shape (8, 5, 4).
    """
    input, weight, bias = _autocast.to_lower_precision(input, weight, bias)  # autocast: bf16/fp16
    if weight.ndim == 1:  # PyTorch allows a vector weight: a dot product over the last dim
        out = linear(input, reshape(weight, (1, weight.shape[0])), None)
        out = reshape(out, tuple(out.shape[:-1]))
        return out if bias is None else out + bias
    if weight.ndim != 2:
        raise ShapeError(f"linear: expected a 1-d or 2-d weight (out_features, in_features), got "
                         f"shape {tuple(weight.shape)}")
    if input.ndim == 0:
        raise ShapeError("linear: the input must have at least one dimension, got a 0-d tensor")
    if input.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input of shape {tuple(input.shape)} has {input.shape[-1]} features "
                         f"but weight of shape {tuple(weight.shape)} expects {weight.shape[1]}")
    if input.dtype is not weight.dtype or (bias is not None and bias.dtype is not input.dtype):
        got = f"{input.dtype}, {weight.dtype}" + (f", {bias.dtype}" if bias is not None else "")
        raise DTypeError(f"linear: expected input, weight and bias of one dtype, got {got}; convert "
                         "them with .to(dtype)")
    out_shape = tuple(input.shape[:-1]) + (weight.shape[0],)
    if bias is not None and tuple(bias.shape) != out_shape[-1:] and \
            not _broadcasts_to(bias.shape, out_shape):
        raise ShapeError(f"linear: bias of shape {tuple(bias.shape)} does not broadcast to the "
                         f"output's shape {out_shape} (out_features={weight.shape[0]})")
    return Linear.apply(input, weight, bias)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y[..., o] = input1 @ weight[o] @ input2 + bias[o]``; weight (out, in1, in2).

    ``F.bilinear(gradient.randn(8, 3), gradient.randn(8, 5), gradient.randn(4, 3, 5))`` has
    shape (8, 4).
    """
    if weight.ndim != 3:
        raise ShapeError(f"bilinear: expected a 3-d weight (out_features, in1_features, "
                         f"in2_features), got shape {tuple(weight.shape)}")
    o, i, j = weight.shape
    if (tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]) or input1.shape[-1] != i
            or input2.shape[-1] != j):
        raise ShapeError(f"bilinear: expected inputs (*, {i}) and (*, {j}) with the same leading "
                         f"dimensions, got {tuple(input1.shape)} and {tuple(input2.shape)}")
    lead = tuple(input1.shape[:-1])
    x1, x2 = reshape(input1, (-1, i)), reshape(input2, (-1, j))
    # (n, i) @ (i, o * j): every x1 row against every weight slice, then contract j with x2
    w = reshape(permute(weight, (1, 0, 2)), (i, o * j))
    y = (reshape(x1 @ w, (-1, o, j)) * unsqueeze(x2, 1)).sum(-1)
    if bias is not None:
        y = y + bias
    return reshape(y, lead + (o,))


# ---------------------------------------------------------------------- dropout
def _check_p(p: float, what: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ArgumentValueError(
            f"{what}: dropout probability has to be between 0 and 1, but got {p}")


def _dropout_with_mask_shape(input: Tensor, p: float, mask_shape: tuple, inplace: bool,
                             name: str) -> Tensor:
    """``input`` times a random keep-mask of ``mask_shape`` (broadcast) scaled by 1/(1-p)."""
    _require_float(input, name, "tensor")
    if p == 1.0:
        fn = lambda s: s * 0  # noqa: E731  (zeros that still carry a (zero) gradient)
    else:
        b = input._backend
        dtype = input.dtype if input.dtype is float64 else float32
        u = b.uniform(creation.default_generator._state, mask_shape, 0.0, 1.0, dtype)
        keep = b.binary("ge", u, b.full((), p, dtype))           # P(keep) = 1 - p
        zero, scale = b.full((), 0, input.dtype), b.full((), 1.0 / (1.0 - p), input.dtype)
        mask = Tensor._make(b.where(keep, scale, zero), False, b)
        fn = lambda s: s * mask  # noqa: E731
    return input._inplace(name + "_", fn) if inplace else fn(input)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (when training).

    Uses the default generator, so ``gradient.manual_seed`` makes it reproducible.
    ``F.dropout(x, 0.1, training=model.training)``; identity when ``training=False``.
    """
    _check_p(p, "dropout")
    if not training or p == 0.0:
        return input
    return _dropout_with_mask_shape(input, p, tuple(input.shape), inplace, "dropout")


def _feature_dropout(input, p, training, inplace, name, channel_dims):
    """Zero whole channels with probability ``p``: the mask spans the first ``channel_dims``
    dimensions (2: (N, C, ...), 1: an unbatched (C, ...)) and is broadcast over the rest."""
    _check_p(p, name)
    if input.ndim < channel_dims or (input.ndim == 1 and channel_dims == 2):
        raise ShapeError(f"{name}: feature dropout needs at least 2 dimensions with the batch, "
                         f"got shape {tuple(input.shape)}")
    if not training or p == 0.0:
        return input
    shape = tuple(input.shape[:channel_dims]) + (1,) * (input.ndim - channel_dims)
    return _dropout_with_mask_shape(input, p, shape, inplace, name)


def _warn_dims(name: str, ndim: int, spatial: int, expected: str) -> None:
    """PyTorch's warning for an input of other dimensions than dropout2d/3d are meant for."""
    warnings.warn(f"{name}: Received a {ndim}-D input to {name}, which is deprecated and will "
                  f"result in an error in a future release. To retain the behavior and silence "
                  f"this warning, please use dropout instead. Note that {name} exists to provide "
                  f"channel-wise dropout on inputs with {spatial} spatial dimensions, a channel "
                  f"dimension, and an optional batch dimension (i.e. {expected} inputs).",
                  UserWarning, stacklevel=3)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, L) or (C, L) input with probability ``p``.

    ``F.dropout1d(x, 0.2, training=model.training)``
    """
    if input.ndim not in (2, 3):
        raise ShapeError(f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D "
                         f"input. Note that dropout1d exists to provide channel-wise dropout on "
                         f"inputs with 1 spatial dimension, a channel dimension, and an optional "
                         f"batch dimension (i.e. 2D or 3D inputs).")
    return _feature_dropout(input, p, training, inplace, "dropout1d", 2 if input.ndim == 3 else 1)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, H, W) input with probability ``p``.

    As PyTorch: a 3-d input is taken as (N, C, L), with a warning; other numbers of dimensions
    warn and drop along their first two (a 2-d (N, C) input: each element alone).
    ``F.dropout2d(x, 0.2, training=model.training)``
    """
    if input.ndim not in (3, 4):
        _warn_dims("dropout2d", input.ndim, 2, "3D or 4D")
    if input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
                      "1D dropout behavior is desired - input is interpreted as shape (N, C, L), "
                      "where C is the channel dim. This behavior will change in a future release "
                      "to interpret the input as one without a batch dimension, i.e. shape "
                      "(C, H, W). To maintain the 1D channel-wise dropout behavior, please switch "
                      "to using dropout1d instead.", UserWarning, stacklevel=2)
    return _feature_dropout(input, p, training, inplace, "dropout2d", 2)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, D, H, W) or (C, D, H, W) input with probability ``p``.

    As PyTorch: other numbers of dimensions warn, and are taken as unbatched (channels first).
    ``F.dropout3d(x, 0.2, training=model.training)``
    """
    if input.ndim not in (4, 5):
        _warn_dims("dropout3d", input.ndim, 3, "4D or 5D")
    return _feature_dropout(input, p, training, inplace, "dropout3d", 2 if input.ndim == 5 else 1)


# ---------------------------------------------------------------------- embedding and one_hot
class Embedding(ArrayFunction):
    """Rows of ``weight`` picked by integer ``ids`` (any shape): out[...] = weight[ids[...]].
    With ``sparse`` the table's gradient is a sparse COO tensor of the rows looked up."""

    @staticmethod
    def forward(ctx, weight, ids, padding_idx, scale_grad_by_freq, sparse=False):
        ctx.ids, ctx.num_rows = ids, weight.shape[0]
        ctx.padding_idx, ctx.scale_grad_by_freq = padding_idx, scale_grad_by_freq
        ctx.sparse = sparse
        b = ctx.backend
        if b.name == "cpu":
            return b.getitem(weight, ids)   # ids checked by embedding()
        # On an accelerator the ids are not read back to check them (a host sync per lookup):
        # an id out of range gives a row of NaN instead, decided on the device (PyTorch has a
        # device-side assert; CuPy's indexing would wrap the id around silently).
        id_type = from_numpy_dtype(ids.dtype)
        inside = b.binary("logical_and", b.binary("ge", ids, b.full((), 0, id_type)),
                          b.binary("lt", ids, b.full((), weight.shape[0], id_type)))
        rows = b.getitem(weight, b.where(inside, ids, b.full((), 0, id_type)))
        row_type = from_numpy_dtype(weight.dtype)
        if not row_type.is_floating_point:
            return rows
        inside = b.reshape(inside, tuple(ids.shape) + (1,) * (weight.ndim - 1))
        return b.where(inside, rows, b.full((), float("nan"), row_type))

    @staticmethod
    def backward(ctx, grad):
        if ctx.sparse:
            table = _sparse_table_grad(grad, ctx.ids, ctx.num_rows, ctx.padding_idx,
                                       ctx.scale_grad_by_freq)
        else:
            table = EmbeddingBackward.apply(grad, ctx.ids, ctx.num_rows, ctx.padding_idx,
                                            ctx.scale_grad_by_freq)
        return table, None, None, None, None


def _sparse_table_grad(grad: Tensor, ids, num_rows: int, padding_idx, scale_grad_by_freq):
    """The table's gradient as PyTorch's ``sparse=True`` gives it: a sparse COO tensor with one
    entry per id looked up (uncoalesced: repeated ids repeat), its row of ``grad`` the value;
    the padding id's entries left out, and each value divided by its id's count in the batch
    with ``scale_grad_by_freq``. An optimizer then touches only these rows."""
    b = grad._backend
    rows = Tensor._make(b.reshape(b.cast(ids, int64), (-1,)), False, b)
    values = reshape(grad, (-1,) + tuple(grad.shape[ids.ndim:]))
    if padding_idx is not None:
        kept = (rows != padding_idx).nonzero().reshape(-1)
        rows, values = index_select(rows, 0, kept), index_select(values, 0, kept)
    if scale_grad_by_freq:
        counts = index_add(creation.zeros(num_rows, dtype=values.dtype, device=values.device), 0,
                           rows, creation.ones(rows.shape[0], dtype=values.dtype,
                                               device=values.device))
        scale = index_select(counts, 0, rows)
        values = values / reshape(scale, (-1,) + (1,) * (values.ndim - 1))
    return SparseCOOTensor._make(reshape(rows, (1, -1)), values,
                                 (num_rows,) + tuple(values.shape[1:]), coalesced=False)


class EmbeddingBackward(ArrayFunction):
    """The gradient of the table: rows of ``grad`` added up per id (repeats accumulate)."""

    @staticmethod
    def forward(ctx, grad, ids, num_rows, padding_idx, scale_grad_by_freq):
        b = ctx.backend
        ctx.ids, ctx.padding_idx = ids, padding_idx
        out = b.full((num_rows,) + tuple(grad.shape[ids.ndim:]), 0, from_numpy_dtype(grad.dtype))
        b.index_add(out, ids, grad)
        ctx.row_scale = None
        if scale_grad_by_freq:
            # divide each row by how often its id occurs in this batch
            counts = b.full((num_rows,), 0, from_numpy_dtype(grad.dtype))
            b.index_add(counts, ids, b.full(ids.shape, 1, from_numpy_dtype(grad.dtype)))
            one = b.full((), 1, from_numpy_dtype(grad.dtype))
            scale = b.binary("div", one, b.binary("maximum", counts, one))
            ctx.row_scale = b.reshape(scale, (num_rows,) + (1,) * (out.ndim - 1))
            out = b.binary("mul", out, ctx.row_scale)
        if padding_idx is not None:
            b.setitem(out, padding_idx, 0)  # the padding row is never trained
        return out

    @staticmethod
    def backward(ctx, grad_grad):
        # The adjoint of "add rows per id" is "pick rows per id", with the padding row and
        # the frequency scaling applied first.
        gg = grad_grad
        b = gg._backend
        if ctx.row_scale is not None:
            gg = gg * Tensor._make(ctx.row_scale, False, b)
        if ctx.padding_idx is not None:
            keep = b.full((gg.shape[0],) + (1,) * (gg.ndim - 1), 1, gg.dtype)
            b.setitem(keep, ctx.padding_idx, 0)
            gg = gg * Tensor._make(keep, False, b)
        return Embedding.apply(gg, ctx.ids, None, False), None, None, None, None


def _embedding_renorm_(weight: Tensor, ids, max_norm: float, norm_type: float) -> None:
    """Rescale in place the rows of ``weight`` used by ``ids`` whose norm exceeds ``max_norm``."""
    with no_grad():
        used = Tensor._make(weight._backend.full((weight.shape[0],), False, bool_), False,
                            weight._backend)
        weight._backend.setitem(used._data, ids, True)
        norms = _safe_norm(weight.detach(), norm_type, 1, keepdim=False)
        scale = where(used & (norms > max_norm), max_norm / (norms + 1e-7), 1.0)
        new = weight.detach() * reshape(scale, (-1,) + (1,) * (weight.ndim - 1))
        weight._backend.setitem(weight._data, Ellipsis, new._data)
        weight._version.bump("embedding_renorm_")


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Look up rows of ``weight`` (num_embeddings, dim) for integer ids of any shape.

    The gradient adds up over repeated ids; the ``padding_idx`` row gets none. With
    ``sparse=True`` the table's gradient is a sparse COO tensor of the rows looked up (for
    ``optim.SparseAdam``, ``SGD`` or ``Adagrad``, which then update only those rows). On the CPU an
    id out of range raises IndexError; on an accelerator the ids are not brought back to the
    host to check them (a synchronisation per lookup), and such an id gives a row of NaN.
    ``F.embedding(gradient.tensor([[1, 2], [4, 1]]), gradient.randn(10, 3))`` has shape (2, 2, 3).
    """
    if not isinstance(input, Tensor) or input.dtype.is_floating_point or input.dtype is bool_:
        got = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise DTypeError(f"embedding: expected integer ids (int64 or int32), got {got}")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: expected a 2-d weight (num_embeddings, embedding_dim), got "
                         f"shape {tuple(weight.shape)}")
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise IndexRangeError(f"embedding: padding_idx {padding_idx} is out of range for "
                                  f"{n} embeddings (expected {-n} to {n - 1})")
        padding_idx %= n
    check_same_device("embedding", weight, input)   # the ids go in as a raw array
    ids = input._data
    b = input._backend
    if input.numel() and b.name == "cpu":  # on an accelerator: NaN rows (see Embedding)
        lo, hi = int(b.reduce("min", ids, None, False)), int(b.reduce("max", ids, None, False))
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise IndexRangeError(
                f"embedding: index {bad} is out of range for a table of {n} embeddings "
                f"(expected ids from 0 to {n - 1})")
    if max_norm is not None:
        _embedding_renorm_(weight, ids, max_norm, norm_type)
    return Embedding.apply(weight, ids, padding_idx, scale_grad_by_freq, bool(sparse))


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding: shape (*tensor.shape, num_classes).

    ``F.one_hot(gradient.tensor([0, 2]), 3)`` -> [[1, 0, 0], [0, 0, 1]]
    """
    if tensor.dtype is not int64:
        raise DTypeError(f"one_hot: expected an int64 (long) index tensor, got {tensor.dtype}")
    b = tensor._backend
    if tensor.numel():
        lo = int(b.reduce("min", tensor._data, None, False))
        hi = int(b.reduce("max", tensor._data, None, False))
        if lo < 0:
            raise ArgumentValueError(f"one_hot: class values must be non-negative, got {lo}")
        if num_classes == -1:
            num_classes = hi + 1
        elif hi >= num_classes:
            raise ArgumentValueError(f"one_hot: class values must be smaller than num_classes "
                                     f"({num_classes}), got {hi}")
    elif num_classes == -1:
        raise ArgumentValueError(
            "one_hot: cannot infer the number of classes from an empty tensor; "
            "pass num_classes")
    if num_classes < 0:
        raise ArgumentValueError(
            f"one_hot: num_classes must be -1 or non-negative, got {num_classes}")
    classes = creation.arange(num_classes, device=tensor.device)
    return cast(reshape(tensor, tuple(tensor.shape) + (1,)) == classes, int64)


# ---------------------------------------------------------------------- normalization
def _normalized(x: Tensor, axes: tuple, eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) over ``axes`` (biased variance, two passes for accuracy)."""
    centered = x - mean(x, axes, keepdim=True)
    var = mean(centered * centered, axes, keepdim=True)
    return centered * rsqrt(var + eps)


def _affine(y: Tensor, weight, bias, shape, dtype) -> Tensor:
    """y * weight + bias, with weight/bias reshaped to ``shape`` and cast to ``dtype``."""
    if weight is not None:
        y = y * reshape(cast(weight, dtype), shape)
    if bias is not None:
        y = y + reshape(cast(bias, dtype), shape)
    return y


def _check_param(name: str, fn: str, t, shape: tuple) -> None:
    if t is not None and tuple(t.shape) != tuple(shape):
        raise ShapeError(f"{fn}: expected {name} of shape {tuple(shape)}, got {tuple(t.shape)}")


def _as_shape(normalized_shape) -> tuple:
    if one_integer(normalized_shape):
        return (as_int(normalized_shape, "normalized_shape"),)
    return as_ints(normalized_shape, "normalized_shape")


def _check_normalized_shape(fn: str, input: Tensor, shape: tuple) -> tuple:
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise ShapeError(f"{fn}: given normalized_shape={list(shape)}, expected an input of shape "
                         f"[*, {', '.join(map(str, shape))}], got {list(input.shape)}")
    return tuple(range(input.ndim - k, input.ndim))


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the last ``len(normalized_shape)`` dimensions, then scale and shift.

    ``F.layer_norm(x, (x.shape[-1],), gamma, beta)``
    """
    _require_float(input, "layer_norm")
    shape = _as_shape(normalized_shape)
    axes = _check_normalized_shape("layer_norm", input, shape)
    _check_param("weight", "layer_norm", weight, shape)
    _check_param("bias", "layer_norm", bias, shape)
    if layer_norm_is_fused(input._backend, input._data, *(None if t is None else t._data
                                                           for t in (weight, bias)), shape):
        return LayerNorm.apply(input, weight, bias, eps)
    low = _low_precision_layer_norm(input, weight, bias, shape, eps)
    if low is not None:
        return low
    dtype = _compute_dtype(input)
    y = _normalized(cast(input, dtype), axes, eps)
    return cast(_affine(y, weight, bias, shape, dtype), input.dtype)


def _low_precision_layer_norm(input: Tensor, weight, bias, shape: tuple, eps: float):
    """A float16/bfloat16 layer norm when nothing is recorded (inference): the float32 kernel
    on the widened input, one rounding at the end, as the composition below rounds once. The
    composition's dozen ops with casts took 4.8 ms of a bfloat16 GPT-2 decode step's 25 layer
    norms, the kernel 1.3. None when it does not apply (recording, parameters of another
    dtype, no float32 kernel)."""
    recording = is_grad_enabled() and (
        input.requires_grad or any(t is not None and t.requires_grad for t in (weight, bias)))
    if input.dtype not in _LOW_PRECISION or len(shape) != 1 or recording:
        return None
    b = input._backend
    params = [None if t is None else t._data for t in (weight, bias)]
    if any(p is not None and p.dtype != input._data.dtype for p in params):
        return None
    # what layer_norm_is_fused asks of the widened arrays (all float32: the params are of the
    # input's half dtype)
    if not (input.numel() and kernels.lookup("layer_norm", b, float32.numpy) is not None):
        return None
    check_same_device("layer_norm", input, weight, bias)
    return Tensor._make(capture_state.run(_layer_norm_widened, b, input._data, *params, eps),
                        False, b)


def _layer_norm_widened(b, x, weight, bias, eps):
    """The float32 layer norm kernel on ``x``, ``weight`` and ``bias`` widened, rounded once to
    ``x``'s dtype. (The parameters are widened here, inside the call a captured step replays,
    so that the step reads the parameters themselves: a change to them is seen.)"""
    wide = [None if p is None else _upcast(b, p) for p in (weight, bias)]
    y = kernels.call("layer_norm", b, _upcast(b, x), *wide, eps)[0]
    return b.cast(y, from_numpy_dtype(x.dtype))


def layer_norm_is_fused(backend, x, weight, bias, normalized_shape) -> bool:
    """Whether :func:`layer_norm` runs ``backend``'s fused kernel (:class:`LayerNorm`) on the raw
    arrays ``x``, ``weight`` and ``bias`` (None when absent): one normalized dimension, a
    non-empty input, a dtype the kernel takes, and parameters of the input's dtype."""
    return (len(normalized_shape) == 1 and x.size > 0
            and kernels.lookup("layer_norm", backend, x.dtype) is not None
            and all(p is None or p.dtype == x.dtype for p in (weight, bias)))


class LayerNorm(ArrayFunction):
    """Layer norm over the last dimension in the backend's fused kernels (float32/float64).

    The forward and the first-order backward each take one kernel call; the backward of the
    backward (second derivatives) is the textbook formula written with differentiable ops.
    """

    lower = staticmethod(lambda ctx, x, weight, bias, eps: kernels.lower(
        "layer_norm", ctx.backend, x, weight, bias, eps, pick=0))

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        y, mean, rstd = kernels.call("layer_norm", ctx.backend, x, weight, bias, eps)
        ctx.eps, ctx.mean, ctx.rstd = eps, mean, rstd
        ctx.save_for_backward(x, weight)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        fused = None
        if not is_grad_enabled():
            fused = _fused_backward(ctx, "layer_norm_backward", grad, x, ctx.mean, ctx.rstd, weight)
        if fused is not None:
            dx, dw, db = fused
        else:  # a graph is being built: the same gradients from differentiable ops
            n = x.shape[-1]
            xhat = _normalized(x, (-1,), ctx.eps)
            gw = grad if weight is None else grad * weight
            rstd = rsqrt(mean((x - mean(x, -1, keepdim=True)) ** 2, -1, keepdim=True) + ctx.eps)
            dx = rstd * (gw - _sum(gw, -1, keepdim=True) / n
                         - xhat * (_sum(gw * xhat, -1, keepdim=True) / n))
            lead = tuple(range(x.ndim - 1))
            dw, db = _sum(grad * xhat, lead), _sum(grad, lead)
        needs = ctx.needs_input_grad
        return (dx if needs[0] else None, dw if needs[1] else None, db if needs[2] else None,
                None)


def _has_fused(input: Tensor, name: str) -> bool:
    """Whether ``input``'s backend has the fused kernel ``name`` and it takes this dtype."""
    return kernels.lookup(name, input._backend, input._data.dtype) is not None


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the last dimensions, times ``weight`` (LLaMA's norm).

    The default ``eps`` is the machine epsilon of the compute dtype (float32 for float16 and
    bfloat16 inputs), as in PyTorch. ``F.rms_norm(x, (x.shape[-1],), w, eps=1e-6)``
    """
    _require_float(input, "rms_norm")
    shape = _as_shape(normalized_shape)
    axes = _check_normalized_shape("rms_norm", input, shape)
    _check_param("weight", "rms_norm", weight, shape)
    dtype = _compute_dtype(input)
    if eps is None:
        eps = 2.0 ** -52 if dtype is float64 else 2.0 ** -23  # finfo(dtype).eps
    count = math.prod(shape)
    recording = is_grad_enabled() and (input.requires_grad
                                       or (weight is not None and weight.requires_grad))
    if recording and len(shape) == 1 and count and (weight is None or weight.dtype is input.dtype):
        if input.dtype is dtype or _has_fused(input, "rms_norm_backward"):
            if _has_fused(input, "rms_norm"):
                return RMSNorm.apply(input, weight, eps)
        elif kernels.lookup("rms_norm", input._backend, dtype.numpy) is not None:
            # float16/bfloat16 whose gradients the backend's kernel does not take: the float32
            # kernels, rounded once at the end
            w = None if weight is None else cast(weight, dtype)
            return cast(RMSNorm.apply(cast(input, dtype), w, eps), input.dtype)
    if count and (weight is None or weight.dtype is input.dtype) and not recording:
        check_same_device("rms_norm", input, weight)
        return _rms_norm_arrays(input, shape, weight, eps)
    x = cast(input, dtype)
    y = x * rsqrt(mean(x * x, axes, keepdim=True) + eps)
    return cast(_affine(y, weight, None, shape, dtype), input.dtype)


class RMSNorm(ArrayFunction):
    """RMS norm over the last dimension in the backend's fused kernels (float32/float64), for
    training; as :class:`LayerNorm`, second derivatives go through differentiable ops."""

    @staticmethod
    def forward(ctx, x, weight, eps):
        y, rstd = kernels.call("rms_norm", ctx.backend, x, weight, eps)
        ctx.eps, ctx.rstd = eps, rstd
        ctx.save_for_backward(x, weight)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        fused = None
        if not is_grad_enabled():
            fused = _fused_backward(ctx, "rms_norm_backward", grad, x, ctx.rstd, weight)
        if fused is not None:
            dx, dw = fused
        else:  # a graph is being built: the same gradients from differentiable ops
            rstd = rsqrt(mean(x * x, -1, keepdim=True) + ctx.eps)
            xhat = x * rstd
            gw = grad if weight is None else grad * weight
            dx = rstd * (gw - xhat * mean(gw * xhat, -1, keepdim=True))
            dw = None if weight is None else _sum(grad * xhat, tuple(range(x.ndim - 1)))
        needs = ctx.needs_input_grad
        return dx if needs[0] else None, dw if needs[1] else None, None


def _rms_norm_arrays(input: Tensor, shape: tuple, weight, eps: float) -> Tensor:
    """:func:`rms_norm` on raw backend arrays, when nothing is recorded (inference): the fused
    kernel or the composition's primitives, without the Tensor machinery of seven ops (a
    decoder calls this twice per layer per token)."""
    b = input._backend
    return Tensor._make(capture_state.run(rms_norm_arrays, b, input._data, shape,
                                          None if weight is None else weight._data, eps),
                        False, b)


def rms_norm_arrays(b, x, shape: tuple, weight, eps: float):
    """:func:`rms_norm` over the last ``len(shape)`` dimensions of the raw floating array
    ``x`` of backend ``b`` (``weight``: a raw array of x's dtype, or None), as it runs when
    nothing is recorded (what a captured decode step replays): the backend's fused kernel
    when it has one for a norm over the last dimension, else the composition of primitives
    (float16 and bfloat16 in float32, rounded once at the end)."""
    if len(shape) == 1:
        fused = kernels.call("rms_norm", b, x, weight, eps)
        if fused is not None:
            return fused[0]
    dtype = from_numpy_dtype(x.dtype)
    if dtype in _LOW_PRECISION:
        y = rms_norm_arrays(b, _upcast(b, x), shape, None if weight is None
                            else _upcast(b, weight), eps)
        return b.cast(y, dtype)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    total = b.reduce("sum", b.binary("mul", x, x), axes, True)
    mean_square = b.binary("div", total, b.full((), math.prod(shape), dtype))
    scale = b.unary("reciprocal", b.unary("sqrt", b.binary("add", mean_square,
                                                            b.full((), eps, dtype))))
    y = b.binary("mul", x, scale)
    if weight is not None:
        y = b.binary("mul", y, b.reshape(weight, shape))
    return y


def _rms_norm_kernel_args(b, x, shape, weight, eps):
    return x, weight, eps


rms_norm_arrays.specialize = lambda b, x, shape, weight, eps: (kernels.specialization(
    "rms_norm", b, (b, x, shape, weight, eps), _rms_norm_kernel_args, rms_norm_arrays,
    pick=0) if len(shape) == 1 else None)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize each group of channels of an (N, C, *) input, then a per-channel affine.

    ``F.group_norm(x, 4, gamma, beta)`` for x of shape (N, 16, H, W)
    """
    _require_float(input, "group_norm")
    if input.ndim < 2:
        raise ShapeError(f"group_norm: expected an input of shape (N, C, *), got {tuple(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise ArgumentValueError(
            f"group_norm: expected the number of channels ({c}) to be divisible by "
            f"num_groups ({num_groups})")
    _check_param("weight", "group_norm", weight, (c,))
    _check_param("bias", "group_norm", bias, (c,))
    dtype = _compute_dtype(input)
    per_group = c // num_groups
    for s in input.shape[2:]:
        per_group *= s
    grouped = reshape(cast(input, dtype), (n, num_groups, per_group))
    y = reshape(_normalized(grouped, (2,), eps), tuple(input.shape))
    y = _affine(y, weight, bias, (c,) + (1,) * (input.ndim - 2), dtype)
    return cast(y, input.dtype)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel (dim 1) of an (N, C), (N, C, L) or (N, C, H, W) input.

    Training: batch statistics are used, and ``running_mean``/``running_var`` (if given) are
    updated in place: ``(1 - momentum) * running + momentum * batch`` (unbiased variance for
    ``running_var``). Evaluation: the running statistics are used.
    ``F.batch_norm(x, rm, rv, gamma, beta, training=True)``
    """
    _require_float(input, "batch_norm")
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expected an input of shape (N, C, *), got {tuple(input.shape)}")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_param(name, "batch_norm", t, (c,))
    dtype = _compute_dtype(input)
    x = cast(input, dtype)
    axes = (0,) + tuple(range(2, input.ndim))
    stat_shape = (1, c) + (1,) * (input.ndim - 2)
    if training:
        count = input.numel() // c if c else 0
        if count <= 1:
            raise ArgumentValueError(
                f"batch_norm: expected more than 1 value per channel when training, "
                f"got input of shape {tuple(input.shape)}")
        centered = x - mean(x, axes, keepdim=True)
        var = mean(centered * centered, axes, keepdim=True)
        y = centered * rsqrt(var + eps)
        with no_grad():
            if running_mean is not None:
                batch_mean = reshape(mean(x.detach(), axes), (c,))
                running_mean.copy_(running_mean * (1 - momentum) + cast(batch_mean, running_mean.dtype)
                                   * momentum)
            if running_var is not None:
                unbiased = reshape(var.detach(), (c,)) * (count / (count - 1))
                running_var.copy_(running_var * (1 - momentum) + cast(unbiased, running_var.dtype)
                                  * momentum)
    else:
        if running_mean is None or running_var is None:
            raise ArgumentValueError(
                "batch_norm: running_mean and running_var must be given in evaluation "
                "mode (training=False)")
        rm = reshape(cast(running_mean, dtype), stat_shape)
        rv = reshape(cast(running_var, dtype), stat_shape)
        y = (x - rm) * rsqrt(rv + eps)
    return cast(_affine(y, weight, bias, stat_shape, dtype), input.dtype)


# ---------------------------------------------------------------------- norms and distances
def _safe_norm(x: Tensor, p: float, dim, keepdim: bool) -> Tensor:
    """The p-norm over ``dim`` whose gradient at a zero vector is 0 (not NaN), as in PyTorch."""
    if p in (math.inf, -math.inf):
        a = _abs(x)
        if x.numel() == 0:
            return _sum(a, dim, keepdim=keepdim)
        # the largest (smallest for -inf) magnitude; the gradient is shared among ties
        return (amax if p > 0 else amin)(a, dim, keepdim=keepdim)
    if p == 2:
        powered = x * x
    elif p == 1:
        return _sum(_abs(x), dim, keepdim=keepdim)
    elif p == 0:
        return _sum(cast(x != 0, x.dtype), dim, keepdim=keepdim)
    else:
        # |x|^p with p < 1 has an infinite slope at 0: take the power of 1 there (and use 0),
        # so a zero coordinate gets gradient 0 as in PyTorch, not 0 * inf = nan
        a = _abs(x)
        zero = a == 0
        powered = where(zero, 0.0, pow(where(zero, 1.0, a), p))
    total = _sum(powered, dim, keepdim=keepdim)
    nonzero = total > 0
    # the root of 1 where the sum is 0, so the root's derivative stays finite there
    return where(nonzero, pow(where(nonzero, total, 1.0), 1.0 / p), 0.0)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input / max(||input||_p, eps) along ``dim``. ``F.normalize(x, dim=-1)``."""
    x = _floating(input)
    norm = _safe_norm(x, p, wrap_dim(dim, x.ndim), keepdim=True)
    return x / where(norm >= eps, norm, eps)   # clamp_min: gradient where norm >= eps


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between x1 and x2 along ``dim`` (broadcasting), in [-1, 1].

    Each input is divided by its own norm (clamped to ``eps``) before the dot product, as
    PyTorch does, which keeps the result in range and avoids overflow.
    ``F.cosine_similarity(a, b, dim=-1)``
    """
    x1, x2 = _promote(_floating(x1), _floating(x2))
    shape = tuple(broadcast_shapes(x1.shape, x2.shape))
    dim = wrap_dim(dim, len(shape))
    x1, x2 = expand(x1, shape), expand(x2, shape)

    def unit(x):
        norm = _safe_norm(x, 2, dim, keepdim=True)
        # PyTorch clamps the norm in place under no_grad: the value is clamped, the gradient
        # flows as if it were not
        clamped = norm + where(norm >= eps, 0.0, eps - norm).detach()
        return x / clamped

    return _sum(unit(x1) * unit(x2), dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """The p-norm of x1 - x2 + eps over the last dimension. ``F.pairwise_distance(a, b)``."""
    diff = _floating(x1) - _floating(x2) + eps
    return _safe_norm(diff, p, wrap_dim(-1, diff.ndim), keepdim=keepdim)


__all__.append("pdist")


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """p-norm distances between every pair of rows of an (N, M) input, as ``torch.pdist``: the
    upper triangle (i < j) of the distance matrix, row by row, a 1-d tensor of N(N-1)/2 values.

    The gradient at a zero distance is 0 (as PyTorch's), not nan.

    Example::

        >>> F.pdist(gradient.tensor([[0., 0.], [3., 4.], [6., 8.]]))
        tensor([ 5., 10.,  5.])
    """
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"pdist: expected a Tensor input, got {type(input).__name__}")
    if input.ndim != 2:
        raise ShapeError(f"pdist: expected a 2-D (N, M) input, got a {input.ndim}-D input of shape "
                         f"{tuple(input.shape)}")
    if p < 0:
        raise ArgumentValueError(f"pdist: p must be non-negative, got {p}")
    x = _floating(input)
    i, j = creation.triu_indices(x.shape[0], x.shape[0], 1, device=x.device)
    # every pair's difference gathered at once: O(N^2 M) memory, simple and differentiable
    return _safe_norm(x[i] - x[j], p, 1, keepdim=False)


# ---------------------------------------------------------------------- SwiGLU, rotary embedding
def swiglu(gate: Tensor, up: Tensor) -> Tensor:
    """``silu(gate) * up``: the gated activation of LLaMA-family feed-forward blocks
    (``down(swiglu(gate(x), up(x)))``). Not in ``torch.nn.functional``.

    On a backend with the fused ``swiglu`` kernels (a GPU) it is one pass forward and one
    backward for gate and up of one shape and dtype; elsewhere it is the composition.
    ``F.swiglu(gate_proj(x), up_proj(x))``
    """
    if isinstance(up, Tensor) and _swiglu_is_fused(gate._backend, gate._data, up._data) and (
            kernels.lookup("swiglu_backward", gate._backend, gate._data.dtype) is not None
            or not (is_grad_enabled() and (gate.requires_grad or up.requires_grad))):
        # (a dtype with a forward kernel only, the CPU's float16 and bfloat16, takes it
        # where no backward follows: a graph keeps the composition's gradients)
        return SwiGLU.apply(gate, up)
    return silu(gate) * up


def _swiglu_is_fused(b, gate, up) -> bool:
    """Whether :func:`swiglu` runs backend ``b``'s fused kernel on the raw arrays ``gate`` and
    ``up``: one shape and dtype, not empty, a dtype the kernels take."""
    return (gate.shape == up.shape and gate.dtype == up.dtype and gate.size > 0
            and kernels.lookup("swiglu", b, gate.dtype) is not None)


class SwiGLU(ArrayFunction):
    """:func:`swiglu` in the backend's fused kernels; second derivatives go through the
    same gradients written with differentiable ops (as :class:`RMSNorm`)."""

    @staticmethod
    def specialize(ctx, gate, up):
        return kernels.specialization("swiglu", ctx.backend, (ctx, gate, up),
                                      lambda ctx, gate, up: (gate, up), SwiGLU.forward)

    @staticmethod
    def forward(ctx, gate, up):
        b = ctx.backend
        ctx.save_for_backward(gate, up)
        out = kernels.call("swiglu", b, gate, up)
        if out is None:  # declined: the composition's primitives (silu rounded, then the product)
            g32 = _upcast(b, gate)
            act = b.binary("mul", g32, b.unary("sigmoid", g32))
            out = b.binary("mul", b.cast(act, from_numpy_dtype(gate.dtype)), up)
        return out

    @staticmethod
    def backward(ctx, grad):
        gate, up = ctx.saved_tensors
        needs = ctx.needs_input_grad
        fused = None
        if not is_grad_enabled():   # no graph to build: the kernel
            fused = _fused_backward(ctx, "swiglu_backward", grad, gate, up)
        if fused is not None:
            dgate, dup = fused
        else:  # a graph is being built (or the kernel declined): differentiable ops
            dtype = _compute_dtype(gate)   # float16: float32 math, one rounding at the end
            g, g_out = cast(gate, dtype), cast(grad, dtype)
            s = sigmoid(g)
            dgate = cast(g_out * cast(up, dtype) * (s * (1 + g * (1 - s))), gate.dtype) \
                if needs[0] else None
            dup = cast(g_out * (g * s), up.dtype) if needs[1] else None
        return dgate if needs[0] else None, dup if needs[1] else None


def rotary_embedding(input: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotary position embedding in Hugging Face's ``rotate_half`` layout with the sign of
    ``rotate_half`` folded into the sine table (``-sin`` on the first half, as
    :class:`gradient.models.llama.RotaryEmbedding` builds it):
    ``input * cos + input.roll(half, -1) * sin`` over the last dimension (head_dim, even).

    ``input`` is (..., seq, head_dim), typically (batch, heads, seq, head_dim); ``cos`` and
    ``sin`` broadcast to it: (seq, head_dim) shared by the batch, or (batch, 1, seq, head_dim)
    per sequence (tables gathered at position ids). On a backend with the fused
    ``rotary_embedding`` kernel (a GPU) forward and backward are one pass each; elsewhere it is
    the composition. Not in ``torch.nn.functional``.

    Example::

        >>> q = F.rotary_embedding(q, cos[:T], sin[:T])   # q (B, H, T, D), tables (T, D)
    """
    if input.ndim == 0 or input.shape[-1] % 2:
        raise ShapeError(f"rotary_embedding: expected an input of shape (..., head_dim) with an "
                         f"even head_dim, got {tuple(input.shape)}")
    if (isinstance(cos, Tensor) and isinstance(sin, Tensor)
            and _rotary_is_fused(input._backend, input._data, cos._data, sin._data)):
        return Rotary.apply(input, cos, sin)
    return input * cos + roll(input, input.shape[-1] // 2, -1) * sin


def _rotary_is_fused(b, x, cos, sin) -> bool:
    """Whether :func:`rotary_embedding` runs backend ``b``'s fused kernel on the raw arrays:
    tables of one shape, everything of ``x``'s dtype, ``x`` not empty and of a dtype the kernel
    takes."""
    return (cos.shape == sin.shape and cos.dtype == x.dtype == sin.dtype and x.size > 0
            and kernels.lookup("rotary_embedding", b, x.dtype) is not None)


def _rotary_composed(b, x, cos, sin):
    try:
        broadcast_shapes(tuple(x.shape), tuple(cos.shape), tuple(sin.shape))
    except ShapeError:
        raise ShapeError(f"rotary_embedding: tables of shapes {tuple(cos.shape)} and "
                         f"{tuple(sin.shape)} do not broadcast with the input's "
                         f"{tuple(x.shape)}; expected (seq, head_dim) tables for an input "
                         f"(..., seq, head_dim), or (batch, 1, seq, head_dim)") from None
    half = x.shape[-1] // 2
    rolled = b.concatenate([b.getitem(x, (Ellipsis, slice(half, None))),
                            b.getitem(x, (Ellipsis, slice(0, half)))], x.ndim - 1)
    return b.binary("add", b.binary("mul", x, cos), b.binary("mul", rolled, sin))


class Rotary(ArrayFunction):
    """:func:`rotary_embedding` in the backend's fused kernel. The map is linear in ``x``:
    its backward is the transpose ``g * cos + roll(g * sin, half)`` (the kernel's ``backward``
    mode), written with differentiable ops when a graph is being built."""

    @staticmethod
    def specialize(ctx, x, cos, sin):
        return kernels.specialization("rotary_embedding", ctx.backend, (ctx, x, cos, sin),
                                      lambda ctx, x, cos, sin: (x, cos, sin, False),
                                      Rotary.forward)

    @staticmethod
    def forward(ctx, x, cos, sin):
        b = ctx.backend
        ctx.save_for_backward(x, cos, sin)
        out = kernels.call("rotary_embedding", b, x, cos, sin, False)
        if out is None:  # a layout the kernel does not read: the composition's primitives
            out = _rotary_composed(b, x, cos, sin)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, cos, sin = ctx.saved_tensors
        needs = ctx.needs_input_grad
        half = x.shape[-1] // 2
        dx = None
        if needs[0]:
            if not is_grad_enabled():
                dx = _fused_backward(ctx, "rotary_embedding", grad, cos, sin, True)
            if dx is None:
                dx = grad * cos + roll(grad * sin, half, -1)
        # the tables' gradients (rarely wanted): summed to their shapes by the engine
        dcos = grad * x if needs[1] else None
        dsin = grad * roll(x, half, -1) if needs[2] else None
        return dx, dcos, dsin


# ---------------------------------------------------------------------- instance norm
__all__.append("instance_norm")


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    """Normalize each channel of each sample of an (N, C, *spatial) input over its spatial
    dimensions (biased variance), then a per-channel affine, as ``torch.nn.functional.instance_norm``.

    With ``use_input_stats`` (the default) and running statistics given, these are updated in
    place with the statistics averaged over the batch: ``(1 - momentum) * running + momentum *
    mean_n(stat)``, the unbiased variance going into ``running_var`` (PyTorch's rule).
    ``use_input_stats=False`` normalizes with the running statistics instead (an InstanceNorm
    layer with ``track_running_stats=True`` in eval mode).

    Example::

        >>> F.instance_norm(gradient.randn(2, 3, 8, 8)).shape
        gradient.Size([2, 3, 8, 8])
    """
    fn = "instance_norm"
    _require_float(input, fn)
    if input.ndim < 2:
        raise ShapeError(f"{fn}: expected an input of shape (N, C, *spatial), got {tuple(input.shape)}")
    spatial = math.prod(input.shape[2:])
    if use_input_stats and spatial == 1:
        raise ArgumentValueError(
            f"{fn}: expected more than 1 spatial element when training, got input size "
            f"{list(input.shape)}; each (sample, channel) is normalized over its own "
            f"spatial positions, so it needs at least 2")
    if (running_mean is None) != (running_var is None):
        raise ArgumentValueError(
            f"{fn}: running_mean and running_var must either both be None or neither be "
            f"None, got running_mean={'None' if running_mean is None else 'a tensor'} and "
            f"running_var={'None' if running_var is None else 'a tensor'}")
    if not use_input_stats and running_mean is None:
        raise ArgumentValueError(f"{fn}: expected running_mean and running_var to be defined when "
                                 f"use_input_stats is False")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_param(name, fn, t, (c,))
    dtype = _compute_dtype(input)
    x = cast(input, dtype)
    stat_shape = (1, c) + (1,) * (input.ndim - 2)
    if use_input_stats:
        axes = tuple(range(2, input.ndim))
        centered = x - mean(x, axes, keepdim=True)
        var = mean(centered * centered, axes, keepdim=True)
        y = centered * rsqrt(var + eps)
        if running_mean is not None:
            with no_grad():
                # the running statistics follow the instances' statistics averaged over the batch
                # (PyTorch keeps one copy per sample, updates each, and averages the copies)
                batch_mean = mean(x.detach(), (0,) + axes)
                unbiased = mean(reshape(var.detach(), tuple(input.shape[:2])), 0) * (
                    spatial / (spatial - 1))
                running_mean.copy_(running_mean * (1 - momentum)
                                   + cast(batch_mean, running_mean.dtype) * momentum)
                running_var.copy_(running_var * (1 - momentum)
                                  + cast(unbiased, running_var.dtype) * momentum)
    else:
        rm = reshape(cast(running_mean, dtype), stat_shape)
        rv = reshape(cast(running_var, dtype), stat_shape)
        y = (x - rm) * rsqrt(rv + eps)
    return cast(_affine(y, weight, bias, stat_shape, dtype), input.dtype)
