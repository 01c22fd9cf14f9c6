"""Random activations and regularizers of ``gradient.nn.functional``: ``rrelu``,
``gumbel_softmax``, ``alpha_dropout`` and ``feature_alpha_dropout``.

Each is a composition of differentiable ops with a random tensor drawn from gradient's
default generator (``gradient.manual_seed`` makes them reproducible; they are not the random
numbers PyTorch would draw). The random tensor is a constant of the graph: the gradient flows
through the arithmetic around it, as in PyTorch.
"""

from __future__ import annotations

from ..dtypes import float32, float64
from ..errors import ArgumentValueError, DTypeError, ShapeError
from ..tensor import Tensor
from .creation import rand
from .elementwise import where
from .index import scatter
from .nn import leaky_relu, softmax
from .reduce import argmax

__all__ = ["rrelu", "rrelu_", "gumbel_softmax", "alpha_dropout", "feature_alpha_dropout"]
TENSOR_METHODS = ()

# SELU's saturation value -scale * alpha, the value alpha dropout sets dropped units to
_SELU_NEGATIVE_SATURATION = 1.7580993408473766


def _uniform_like(input: Tensor, shape) -> Tensor:
    """Uniform [0, 1) draws of ``shape`` in ``input``'s floating dtype (drawn in float32 for
    half precision inputs, as the other dropout masks are)."""
    dtype = input.dtype if input.dtype in (float32, float64) else float32
    return rand(*shape, dtype=dtype, device=input.device).to(input.dtype)


def _require_float(input: Tensor, fn: str) -> None:
    if not isinstance(input, Tensor) or not input.dtype.is_floating_point:
        got = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise DTypeError(f"{fn}: expected a floating-point tensor, got {got}")


# ---------------------------------------------------------------------- rrelu
def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    """Randomized leaky ReLU: ``x`` for ``x >= 0``, else ``a * x`` with a slope ``a`` drawn
    uniformly from ``[lower, upper]`` per element while training; in evaluation the slope is
    the mean ``(lower + upper) / 2``.

    Example::

        >>> F.rrelu(gradient.tensor([-2.0, 3.0]))          # training=False: slope 11/48
        tensor([-0.4583,  3.0000])
    """
    _require_float(input, "rrelu")
    if not 0 <= lower <= upper:
        raise ArgumentValueError(
            f"rrelu: expected 0 <= lower <= upper, got lower={lower}, upper={upper}")
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace=inplace)
    slope = lower + (upper - lower) * _uniform_like(input, tuple(input.shape))
    fn = lambda x: where(x >= 0, x, x * slope)  # noqa: E731
    return input._inplace("rrelu_", fn) if inplace else fn(input)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
           training: bool = False) -> Tensor:
    """In-place :func:`rrelu`."""
    return rrelu(input, lower, upper, training, inplace=True)


# ---------------------------------------------------------------------- gumbel_softmax
def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    """A differentiable sample from the categorical distribution ``softmax(logits)``:
    ``softmax((logits + g) / tau)`` with Gumbel(0, 1) noise ``g``. With ``hard=True`` the
    forward value is the one-hot vector of the argmax, and the gradient is that of the soft
    sample (the straight-through estimator). ``eps`` is unused (kept for PyTorch's signature).

    Example::

        >>> y = F.gumbel_softmax(gradient.randn(4, 5), tau=0.5, hard=True)
        >>> y.sum(-1)
        tensor([1., 1., 1., 1.])
    """
    _require_float(logits, "gumbel_softmax")
    if tau <= 0:
        raise ArgumentValueError(f"gumbel_softmax: tau must be positive, got {tau}")
    u = _uniform_like(logits, tuple(logits.shape))
    tiny = 1e-20 if logits.dtype is float64 else 1e-30
    gumbels = -(-(u.clamp(min=tiny).log())).log()       # -log(Exponential(1)) is Gumbel(0, 1)
    y_soft = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = argmax(y_soft, dim, keepdim=True)
    y_hard = scatter(y_soft.detach() * 0, dim, index, value=1.0)
    # the value of y_hard, the gradient of y_soft
    return y_hard - y_soft.detach() + y_soft


# ---------------------------------------------------------------------- alpha dropout
def _alpha_dropout(input: Tensor, p: float, training: bool, inplace: bool, mask_shape, fn: str):
    _require_float(input, fn)
    if not 0.0 <= p <= 1.0:
        raise ArgumentValueError(
            f"{fn}: dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        out = lambda x: x * 0  # noqa: E731
    else:
        # Dropped units are set to SELU's negative saturation -alpha, then an affine map a*x + b
        # restores zero mean and unit variance for inputs with zero mean and unit variance.
        alpha = _SELU_NEGATIVE_SATURATION
        keep = (_uniform_like(input, mask_shape) >= p).to(input.dtype)     # P(keep) = 1 - p
        a = ((alpha * alpha * p + 1) * (1 - p)) ** -0.5
        b = (keep - 1) * (alpha * a) + alpha * a * p
        out = lambda x: x * (keep * a) + b  # noqa: E731
    return input._inplace(fn + "_", out) if inplace else out(input)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False) -> Tensor:
    """Dropout for self-normalizing (SELU) networks: dropped elements take SELU's negative
    saturation value and the output is rescaled to keep zero mean and unit variance.

    Example: ``F.alpha_dropout(gradient.randn(8, 16), 0.2, training=True)``
    """
    return _alpha_dropout(input, p, training, inplace, tuple(input.shape), "alpha_dropout")


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    """:func:`alpha_dropout` of whole channels: one draw per ``(N, C)`` of an input
    ``(N, C, *)`` (at least 2-d).

    Example: ``F.feature_alpha_dropout(gradient.randn(2, 8, 4, 4), 0.2, training=True)``
    """
    if input.ndim < 2:
        raise ShapeError(f"feature_alpha_dropout: expected an input of at least 2 dimensions "
                         f"(N, C, *), got shape {tuple(input.shape)}")
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    return _alpha_dropout(input, p, training, inplace, shape, "feature_alpha_dropout")
