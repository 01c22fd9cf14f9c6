"""The functional ops PyTorch also exposes at the top level (``torch.conv2d``,
``torch.batch_norm``, ``torch.kl_div`` ...), with the top-level signatures.

Most are ``gradient.nn.functional``'s functions under the same name. Some of PyTorch's
top-level forms take other arguments than the functional ones, and are adapted here:
``embedding(weight, indices, padding_idx=-1)`` (weight first), ``batch_norm``/``instance_norm``
(weight and bias before the running statistics, plus a ``cudnn_enabled`` flag), the losses
(``reduction`` given as PyTorch's enum integer 0 none, 1 mean, 2 sum; the names are accepted
too), ``adaptive_max_pool1d`` (always ``(output, indices)``), ``max_pool1d_with_indices``.
``bilinear`` and ``constant_pad_nd`` have no functional twin in gradient and are composed here.
The dropouts take ``train`` by position (``torch.dropout(x, 0.1, True)``).

Example::

    >>> y = gradient.conv2d(x, w, padding=1)            # the same as F.conv2d
    >>> gradient.embedding(weight, gradient.tensor([0, 2]))
"""

from __future__ import annotations

from ..errors import ArgumentValueError, ShapeError
from ..tensor import Tensor
from . import conv as _conv
from . import loss as _loss
from . import loss_margin as _margin
from . import nn as _nn
from . import stochastic as _stochastic
from .stochastic import rrelu, rrelu_  # noqa: F401  (torch.rrelu: F.rrelu's signature)
from .channels import channel_shuffle  # noqa: F401  (torch.channel_shuffle too)
from .elementwise import _make_inplace
from .linalg import einsum

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
           "avg_pool1d", "adaptive_avg_pool1d", "adaptive_max_pool1d", "batch_norm",
           "instance_norm", "embedding", "bilinear", "binary_cross_entropy_with_logits", "kl_div",
           "hinge_embedding_loss", "margin_ranking_loss", "cosine_embedding_loss",
           "triplet_margin_loss", "poisson_nll_loss", "constant_pad_nd", "channel_shuffle",
           "selu_", "celu_", "dropout", "dropout_", "feature_dropout", "feature_dropout_",
           "alpha_dropout", "alpha_dropout_", "feature_alpha_dropout", "feature_alpha_dropout_",
           "rrelu", "rrelu_"]
TENSOR_METHODS = ()

conv1d, conv2d, conv3d = _conv.conv1d, _conv.conv2d, _conv.conv3d
conv_transpose1d, conv_transpose2d = _conv.conv_transpose1d, _conv.conv_transpose2d
conv_transpose3d = _conv.conv_transpose3d
avg_pool1d, adaptive_avg_pool1d = _conv.avg_pool1d, _conv.adaptive_avg_pool1d

_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _reduction(reduction) -> str:
    """PyTorch's at::Reduction enum (0, 1, 2), or the name itself."""
    if isinstance(reduction, str):
        return reduction
    if reduction not in _REDUCTIONS:
        raise ArgumentValueError(
            f"reduction must be 0 (none), 1 (mean) or 2 (sum), got {reduction!r}")
    return _REDUCTIONS[reduction]


def _pool(fn, input, kernel_size, stride, padding, dilation, ceil_mode, **kw):
    # the top-level forms spell "stride = kernel_size" as an empty list
    stride = None if stride is None or (isinstance(stride, (list, tuple)) and not stride) else stride
    return fn(input, kernel_size, stride, padding, dilation, ceil_mode, **kw)


def max_pool1d(input: Tensor, kernel_size, stride=(), padding=0, dilation=1,
               ceil_mode: bool = False) -> Tensor:
    """``torch.max_pool1d``: :func:`gradient.nn.functional.max_pool1d` without indices."""
    return _pool(_conv.max_pool1d, input, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool2d(input: Tensor, kernel_size, stride=(), padding=0, dilation=1,
               ceil_mode: bool = False) -> Tensor:
    """``torch.max_pool2d``: ``gradient.max_pool2d(x, 2)``."""
    return _pool(_conv.max_pool2d, input, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool3d(input: Tensor, kernel_size, stride=(), padding=0, dilation=1,
               ceil_mode: bool = False) -> Tensor:
    """``torch.max_pool3d``: ``gradient.max_pool3d(x, 2)``."""
    return _pool(_conv.max_pool3d, input, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool1d_with_indices(input: Tensor, kernel_size, stride=(), padding=0, dilation=1,
                            ceil_mode: bool = False):
    """``(output, indices)`` of a 1-d max pool: ``gradient.max_pool1d_with_indices(x, 2)``."""
    return _pool(_conv.max_pool1d, input, kernel_size, stride, padding, dilation, ceil_mode,
                 return_indices=True)


def adaptive_max_pool1d(input: Tensor, output_size):
    """``(output, indices)``: PyTorch's top-level form always returns both."""
    return _conv.adaptive_max_pool1d(input, output_size, return_indices=True)


def batch_norm(input: Tensor, weight, bias, running_mean, running_var, training: bool,
               momentum: float, eps: float, cudnn_enabled: bool = True) -> Tensor:
    """``torch.batch_norm`` (weight and bias first): ``F.batch_norm`` with its arguments reordered."""
    return _nn.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input: Tensor, weight, bias, running_mean, running_var, use_input_stats: bool,
                  momentum: float, eps: float, cudnn_enabled: bool = True) -> Tensor:
    """``torch.instance_norm``: ``F.instance_norm`` with its arguments reordered."""
    return _nn.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats,
                             momentum, eps)


def embedding(weight: Tensor, indices: Tensor, padding_idx: int = -1,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """``torch.embedding(weight, indices)``: the rows of ``weight``; the row ``padding_idx``
    (-1: none) gets no gradient. ``gradient.embedding(w, gradient.tensor([0, 2]))``."""
    return _nn.embedding(indices, weight, None if padding_idx == -1 else padding_idx,
                         scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y[..., k] = input1 @ weight[k] @ input2 + bias[k]`` (``nn.Bilinear``'s op); ``weight``
    has shape (out, in1, in2). Example: ``gradient.bilinear(a, b, w, bias)``."""
    if weight.ndim != 3:
        raise ShapeError(f"bilinear(): weight must be 3-d (out, in1, in2), got {tuple(weight.shape)}")
    out = einsum("...i,kij,...j->...k", input1, weight, input2)
    return out + bias if bias is not None else out


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight=None, pos_weight=None,
                                     reduction=1) -> Tensor:
    """``torch.binary_cross_entropy_with_logits`` (reduction as 0/1/2 or a name)."""
    return _loss.binary_cross_entropy_with_logits(input, target, weight,
                                                  reduction=_reduction(reduction),
                                                  pos_weight=pos_weight)


def kl_div(input: Tensor, target: Tensor, reduction=1, *, log_target: bool = False) -> Tensor:
    """``torch.kl_div`` (reduction as 0/1/2 or a name; 1 is the elementwise mean)."""
    return _loss.kl_div(input, target, reduction=_reduction(reduction), log_target=log_target)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, reduction=1) -> Tensor:
    """``torch.hinge_embedding_loss`` (reduction as 0/1/2 or a name)."""
    return _margin.hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction))


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        reduction=1) -> Tensor:
    """``torch.margin_ranking_loss`` (reduction as 0/1/2 or a name)."""
    return _margin.margin_ranking_loss(input1, input2, target, margin,
                                       reduction=_reduction(reduction))


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                          reduction=1) -> Tensor:
    """``torch.cosine_embedding_loss`` (reduction as 0/1/2 or a name)."""
    return _margin.cosine_embedding_loss(input1, input2, target, margin,
                                         reduction=_reduction(reduction))


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0,
                        p: float = 2, eps: float = 1e-6, swap: bool = False, reduction=1) -> Tensor:
    """``torch.triplet_margin_loss`` (reduction as 0/1/2 or a name)."""
    return _margin.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                       reduction=_reduction(reduction))


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool, full: bool, eps: float,
                     reduction) -> Tensor:
    """``torch.poisson_nll_loss`` (every argument given, reduction as 0/1/2 or a name)."""
    return _margin.poisson_nll_loss(input, target, log_input, full, eps=eps,
                                    reduction=_reduction(reduction))


def constant_pad_nd(input: Tensor, pad, value=0) -> Tensor:
    """``F.pad(input, pad, value=value)``: ``gradient.constant_pad_nd(x, (1, 1))``."""
    return _conv.pad(input, pad, "constant", value)


selu_ = _make_inplace(_nn.selu, "selu_")
celu_ = _make_inplace(_nn.celu, "celu_")


# ---------------------------------------------------------------------- dropout, with `train`
def dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.dropout(input, p, train)``: ``F.dropout`` with ``training`` given by position."""
    return _nn.dropout(input, p, train)


def dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    return _nn.dropout(input, p, train, inplace=True)


def feature_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.feature_dropout``: whole channels (dimension 1) of an (N, C, ...) input zeroed."""
    return _nn._feature_dropout(input, p, train, False, "feature_dropout", 2)


def feature_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    return _nn._feature_dropout(input, p, train, True, "feature_dropout_", 2)


def alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.alpha_dropout(input, p, train)`` (``F.alpha_dropout``)."""
    return _stochastic.alpha_dropout(input, p, train)


def alpha_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    return _stochastic.alpha_dropout(input, p, train, inplace=True)


def feature_alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.feature_alpha_dropout(input, p, train)`` (``F.feature_alpha_dropout``)."""
    return _stochastic.feature_alpha_dropout(input, p, train)


def feature_alpha_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    return _stochastic.feature_alpha_dropout(input, p, train, inplace=True)
