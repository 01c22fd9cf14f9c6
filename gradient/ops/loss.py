"""Loss functions, as in ``torch.nn.functional``: cross entropy, NLL, MSE, L1, Huber, BCE, KL.

Every loss takes ``reduction='none' | 'mean' | 'sum'`` (and, like PyTorch, the deprecated
``size_average``/``reduce`` pair). Most losses are compositions of differentiable ops, so
their second derivatives come for free; ``binary_cross_entropy`` is one Function because
PyTorch's gradient at the clamped ends (x = 0 or 1) is not the derivative of its forward.

Class-index targets are read with a gather (one value per position, no (N, C) one-hot),
and ignored positions are zeroed with :func:`where`, which selects rather than multiplies,
so ``-inf`` logits (masked classes) never turn into nan. The most common case, cross
entropy with class indices and no weight or label smoothing, is a single node
(:class:`CrossEntropyIndex`) that keeps the softmax for a one-pass backward; it computes
float16/bfloat16 logits in float32 and rounds once, as PyTorch does.

Deliberate difference from PyTorch: operands of mixed dtypes promote to their common dtype
in every loss (PyTorch's ``huber_loss`` keeps the input's dtype,
``binary_cross_entropy_with_logits`` the target's, and ``kl_div`` refuses integer targets).

Example::

    >>> import gradient.nn.functional as F
    >>> logits = gradient.randn(4, 10, requires_grad=True)
    >>> F.cross_entropy(logits, gradient.tensor([1, 0, 9, 3]), label_smoothing=0.1).backward()
"""

from __future__ import annotations

import warnings

from ..autograd import autocast_state as _autocast
from ..autograd.function import ArrayFunction
from ..autograd.grad_mode import is_grad_enabled
from ..dtypes import from_numpy_dtype, int64, uint8
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, IndexRangeError, ShapeError
from ..tensor import Tensor
from .elementwise import _promote, cast, exp, log, log1p, where
from .elementwise import abs as _abs
from .index import gather
from .nn import (_fused_backward, _minus_max, _require_float, _row_kernel, _upcast, log_softmax,
                 softmax)
from .reduce import mean as _mean
from .reduce import sum as _sum
from .shape import expand, reshape

__all__ = [
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
]
TENSOR_METHODS = ()


# ---------------------------------------------------------------------- shared helpers
_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction: str, fn: str) -> None:
    if reduction not in _REDUCTIONS and not (fn == "kl_div" and reduction == "batchmean"):
        extra = ", 'batchmean'" if fn == "kl_div" else ""
        raise ArgumentValueError(
            f"{fn}: reduction must be 'none', 'mean', 'sum'{extra}; got {reduction!r}")


def _legacy_reduction(size_average, reduce, reduction: str, fn: str) -> str:
    """PyTorch's deprecated ``size_average``/``reduce`` flags, mapped to ``reduction``."""
    if size_average is None and reduce is None:
        _check_reduction(reduction, fn)
        return reduction
    warnings.warn(f"{fn}: size_average and reduce are deprecated, please use reduction='mean'|"
                  "'sum'|'none' instead", UserWarning, stacklevel=3)
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return _mean(loss)  # nan for an empty loss, as in PyTorch
    if reduction == "sum":
        return _sum(loss)
    return loss


def _shape(t: Tensor) -> tuple:
    return tuple(t.shape)


def _xlogy_self(t: Tensor) -> Tensor:
    """``t * log(t)`` with 0 where ``t == 0`` (PyTorch's ``xlogy(t, t)``), nan-free in backward."""
    zero = t == 0
    return where(zero, 0.0, t * log(where(zero, 1.0, t)))


def _check_same_shape_target(input: Tensor, target, fn: str) -> None:
    """The binary cross entropies take a target of exactly the input's shape (no broadcasting)."""
    if not isinstance(target, Tensor):
        raise ArgumentTypeError(f"{fn}: target must be a Tensor, got {type(target).__name__}")
    if _shape(target) != _shape(input):
        raise ShapeError(f"{fn}: target of shape {_shape(target)} must have the input's shape "
                         f"{_shape(input)}")


def _pointwise_operands(input: Tensor, target, fn: str):
    """input and target as tensors of one dtype; warns like PyTorch when their shapes differ."""
    if not isinstance(target, Tensor):
        raise ArgumentTypeError(f"{fn}: target must be a Tensor, got {type(target).__name__}")
    if _shape(target) != _shape(input):
        warnings.warn(f"{fn}: using a target size ({_shape(target)}) that is different to the "
                      f"input size ({_shape(input)}). This will likely lead to incorrect results "
                      "due to broadcasting. Please ensure they have the same size.", UserWarning,
                      stacklevel=3)
    a, b = _promote(input, target)
    if not a.dtype.is_floating_point:
        raise DTypeError(f"{fn}: expected floating point input or target, got {input.dtype} and "
                         f"{target.dtype}")
    return a, b


# ---------------------------------------------------------------------- regression losses
def _weighted(loss: Tensor, weight, input: Tensor, reduction: str, fn: str,
              mean_by_weight: bool) -> Tensor:
    """``loss * weight`` reduced; PyTorch's weighted mse/l1 mean divides by ``sum(weight)``."""
    if weight is None:
        return _reduce(loss, reduction)
    if _shape(weight) != _shape(input):
        raise ShapeError(f"{fn}: weight of shape {_shape(weight)} must have the input's shape "
                         f"{_shape(input)}")
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return _sum(loss) / _sum(weight)
    return _reduce(loss, reduction)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Mean squared error ``(input - target) ** 2``.

    ``weight`` (the input's shape) scales each element; the weighted ``'mean'`` divides by
    ``weight.sum()``, as PyTorch does. Example: ``F.mse_loss(pred, y)``
    """
    # autocast: on PyTorch's CPU float32 list (floating inputs cast up, gradients flow back)
    input, target, weight = _autocast.to_float32(input, target, weight)
    reduction = _legacy_reduction(size_average, reduce, reduction, "mse_loss")
    a, b = _pointwise_operands(input, target, "mse_loss")
    d = a - b
    return _weighted(d * d, weight, input, reduction, "mse_loss", True)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Mean absolute error ``|input - target|`` (gradient 0 where they are equal, as PyTorch).

    ``weight`` works as in :func:`mse_loss`. Example: ``F.l1_loss(pred, y, reduction='sum')``
    """
    # autocast: on PyTorch's CPU float32 list (floating inputs cast up, gradients flow back)
    input, target, weight = _autocast.to_float32(input, target, weight)
    reduction = _legacy_reduction(size_average, reduce, reduction, "l1_loss")
    a, b = _pointwise_operands(input, target, "l1_loss")
    return _weighted(_abs(a - b), weight, input, reduction, "l1_loss", True)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = input - target``).

    ``beta=0`` is the L1 loss. Example: ``F.smooth_l1_loss(pred, y, beta=0.5)``
    """
    # autocast: on PyTorch's CPU float32 list (floating inputs cast up, gradients flow back)
    input, target = _autocast.to_float32(input, target)
    reduction = _legacy_reduction(size_average, reduce, reduction, "smooth_l1_loss")
    if beta < 0:
        raise ArgumentValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    a, b = _pointwise_operands(input, target, "smooth_l1_loss")
    z = _abs(a - b)
    if beta == 0:
        return _reduce(z, reduction)
    d = a - b
    return _reduce(where(z < beta, d * d * (0.5 / beta), z - 0.5 * beta), reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """``0.5 d**2`` where ``|d| < delta``, ``delta * (|d| - 0.5 delta)`` elsewhere.

    Equals ``delta * smooth_l1_loss(beta=delta)``. ``weight`` (the input's shape) scales each
    element; unlike mse/l1, the weighted ``'mean'`` is the plain mean, as in PyTorch.

    Example: ``F.huber_loss(pred, y, delta=2.0)``
    """
    # autocast: on PyTorch's CPU float32 list (floating inputs cast up, gradients flow back)
    input, target, weight = _autocast.to_float32(input, target, weight)
    _check_reduction(reduction, "huber_loss")
    if delta <= 0:
        raise ArgumentValueError(f"huber_loss: delta must be positive, got {delta}")
    a, b = _pointwise_operands(input, target, "huber_loss")
    d = a - b
    z = _abs(d)
    loss = where(z < delta, d * d * 0.5, (z - 0.5 * delta) * delta)
    return _weighted(loss, weight, input, reduction, "huber_loss", False)


# ---------------------------------------------------------------------- classification: NLL and CE
def _class_setup(input: Tensor, target: Tensor, weight, fn: str):
    """Validate (input, target, weight) for class-index targets.

    Returns the class dimension, the number of classes, the target as int64 with the
    input's batch shape (a ``(1,)`` target of a 1-d input becomes 0-d, as PyTorch allows),
    and the (C,) weight (or None).
    """
    if input.ndim == 0:
        raise ShapeError(f"{fn}: input must have a class dimension: (C,), (N, C) or "
                         f"(N, C, d1, ...); got a 0-d tensor")
    if not isinstance(target, Tensor):
        raise ArgumentTypeError(f"{fn}: target must be a Tensor, got {type(target).__name__}")
    if target.dtype not in (int64, uint8):
        raise DTypeError(f"{fn}: class-index targets must be int64 (or uint8), got {target.dtype}"
                         + ("; class-probability targets must have the input's shape "
                            f"{_shape(input)}, got {_shape(target)}"
                            if target.dtype.is_floating_point else ""))
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    if input.ndim == 1:
        if target.ndim == 1 and target.shape[0] == 1:
            target = reshape(target, ())
        if target.ndim != 0:
            raise ShapeError(f"{fn}: a 1-d input of shape {_shape(input)} needs a 0-d target (one "
                             f"class index), got target of shape {_shape(target)}")
    else:
        expected = (input.shape[0],) + _shape(input)[2:]
        if target.ndim == 0 or target.shape[0] != input.shape[0]:
            raise ShapeError(f"{fn}: expected input batch_size ({input.shape[0]}) to match target "
                             f"batch_size ({target.shape[0] if target.ndim else 'a 0-d target'}): "
                             f"input {_shape(input)}, target {_shape(target)}")
        if _shape(target) != expected:
            raise ShapeError(f"{fn}: expected target of shape {expected} for input of shape "
                             f"{_shape(input)}, got {_shape(target)}")
    if weight is not None:
        if weight.ndim != 1 or weight.shape[0] != n_classes:
            raise ShapeError(f"{fn}: weight must be a 1-d tensor of one weight for each of the "
                             f"{n_classes} classes, got shape {_shape(weight)}")
        if weight.dtype is not input.dtype:
            raise DTypeError(f"{fn}: weight has dtype {weight.dtype}, expected the input's dtype "
                             f"{input.dtype}")
    return class_dim, n_classes, cast(target, int64), weight


def _along(weight: Tensor, class_dim: int, ndim: int) -> Tensor:
    """A (C,) weight shaped to broadcast along ``class_dim`` of an ``ndim``-d tensor."""
    shape = [1] * ndim
    shape[class_dim] = weight.shape[0]
    return reshape(weight, tuple(shape))


def _check_class_range(target: Tensor, n_classes: int, ignore_index: int, fn: str) -> None:
    bad = ((target < 0) | (target >= n_classes)) & (target != ignore_index)
    if bad.numel() and int(_sum(bad).item()):
        value = int(reshape(target, (-1,))[reshape(bad, (-1,))][0].item())
        raise _class_range_error(value, n_classes, ignore_index, fn)


def _class_range_error(value: int, n_classes: int, ignore_index: int,
                       fn: str) -> IndexRangeError:
    return IndexRangeError(f"{fn}: target {value} is out of bounds: expected a class index "
                           f"in [0, {n_classes - 1}] or ignore_index={ignore_index}")


def _pick(logp: Tensor, target: Tensor, weight, class_dim: int, ignore_index: int):
    """For each target position: ``logp`` at the target class and that class's weight.

    Both are 0 where the target is ``ignore_index``. Returns (picked log-probs, weights,
    mask of non-ignored targets). A gather reads one value per position (no (N, C) one-hot);
    ignored positions read class 0 and are then zeroed with ``where``, which selects rather
    than multiplies, so a ``-inf`` there cannot become nan in the forward or the backward.
    """
    keep = target != ignore_index
    safe = where(keep, target, 0)
    index_shape = _shape(target)[:class_dim] + (1,) + _shape(target)[class_dim:]
    picked = reshape(gather(logp, class_dim, reshape(safe, index_shape)), _shape(target))
    picked = where(keep, picked, 0.0)
    if weight is None:
        w = cast(keep, logp.dtype)
    else:
        w = where(keep, weight[safe], 0.0)
    return picked, w, keep


def _nll(logp, target, weight, class_dim, ignore_index, reduction):
    picked, w, _ = _pick(logp, target, weight, class_dim, ignore_index)
    loss = -picked if weight is None else -picked * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return _sum(loss)
    # PyTorch divides by the total weight of the non-ignored targets (nan if there are none)
    return _sum(loss) / _sum(w)


def _shifted_exp_sum(b, x, dim: int):
    """``(x - max, exp(x - max), sum(exp(x - max)))`` along ``dim`` on raw arrays; float16 and
    bfloat16 logits in float32 (one rounding at the end, as PyTorch)."""
    shifted = _minus_max(b, _upcast(b, x), dim)
    e = b.unary("exp", shifted)
    return shifted, e, b.reduce("sum", e, dim, True)


class CrossEntropyIndex(ArrayFunction):
    """Cross entropy of logits against class indices: no class weight, no label smoothing.

    The fast path of :func:`cross_entropy` for its most common use, as one node instead of
    a log_softmax, a gather, a mask and a reduction. The forward makes four passes over the
    logits (max, subtract, exp, sum) and reads each target's logit with a gather:
    ``loss = log(sum(exp(x - max))) - (x - max)[target]``, the same arithmetic as
    ``-log_softmax(x)[target]``. It keeps ``exp(x - max)`` and its sum, so the backward,
    ``scale * (softmax(x) - one_hot(target))`` (see :class:`CrossEntropyIndexGrad`), is
    one more pass. Ignored targets give 0 loss and 0 gradient (selected with ``where``, so a
    ``-inf`` or nan logit there does not leak); ``'mean'`` divides by the number of others.
    """

    @staticmethod
    def forward(ctx, x, target, dim, ignore_index, reduction, n_classes):
        b = ctx.backend
        dtype = from_numpy_dtype(x.dtype)
        keep = b.binary("ne", target, b.full((), ignore_index, int64))
        # out-of-range targets: checked on raw arrays (the Tensor-level check is ~8 ops)
        outside = b.binary("logical_or", b.binary("lt", target, b.full((), 0, int64)),
                           b.binary("ge", target, b.full((), n_classes, int64)))
        bad = b.binary("logical_and", keep, outside)
        if bool(b.to_numpy(b.reduce("any", bad, None, False))):
            value = int(b.to_numpy(b.getitem(target, bad))[0])
            raise _class_range_error(value, n_classes, ignore_index, "cross_entropy")
        # the target with a 1 inserted at the class dimension, to gather along it
        index_shape = target.shape[:dim] + (1,) + target.shape[dim:]
        keep = b.reshape(keep, index_shape)
        index = b.where(keep, b.reshape(target, index_shape), b.full((), 0, int64))

        rows = (_row_kernel(b, "cross_entropy", dim, x, b.reshape(index, (x.shape[0],)), -1)
                if x.ndim == 2 else None)
        ctx.fused = rows is not None
        if ctx.fused:  # one pass per row on the device; backward reads the log-sum-exp
            loss, lse = rows
            e, total = None, lse
            loss = b.reshape(b.where(b.reshape(keep, target.shape), loss,
                                     b.full((), 0, from_numpy_dtype(loss.dtype))), target.shape)
        else:
            shifted, e, total = _shifted_exp_sum(b, x, dim)
            loss = b.binary("sub", b.unary("log", total), b.take_along_axis(shifted, index, dim))
            loss = b.reshape(b.where(keep, loss, b.full((), 0, from_numpy_dtype(loss.dtype))),
                             target.shape)
        ctx.dim, ctx.reduction = dim, reduction
        count = None
        if reduction != "none":
            loss = b.reduce("sum", loss, None, False)
            count = b.cast(b.reduce("sum", keep, None, False), from_numpy_dtype(loss.dtype))
            if reduction == "mean":  # nan when every target is ignored, as in PyTorch
                loss = b.binary("div", loss, count)
            count = b.cast(count, dtype)  # backward divides the incoming gradient by it
        ctx.save_for_backward(x, keep, index, e, total, count)
        return b.cast(loss, dtype)

    @staticmethod
    def backward(ctx, grad):
        x, keep, index, e, total, count = ctx.saved_tensors
        if ctx.reduction == "none":
            grad = reshape(grad, _shape(keep))
        elif ctx.reduction == "mean":
            grad = grad / count
        # each position's factor, 0 where the target is ignored (selected, so never nan)
        scale = where(keep, grad, 0.0)
        if ctx.fused:
            if not is_grad_enabled():
                rows = x.shape[0]
                dx = _fused_backward(ctx, "cross_entropy_backward", x, reshape(index, (rows,)),
                                     total, reshape(scale, (rows,)))
                if dx is not None:
                    return dx, *(None,) * 5
            # a graph is being built: the composition's saved values, recomputed from x
            b = ctx.backend
            _, e, total = (Tensor._make(a, False, b) for a in _shifted_exp_sum(b, x._data, ctx.dim))
        return CrossEntropyIndexGrad.apply(scale, x, e, total, index, ctx.dim), *(None,) * 5


class CrossEntropyIndexGrad(ArrayFunction):
    """``scale * (softmax(x) - one_hot(index))`` along ``dim``: CrossEntropyIndex's gradient.

    ``softmax(x)`` is ``e / total``, kept from the forward, so this is one pass over the
    logits plus a scatter at the targets. Like PyTorch's ``nll_loss_backward`` it is a node of
    its own, so second derivatives work; its backward (only needed for those) recomputes
    ``softmax(x)`` with differentiable ops.
    """

    @staticmethod
    def forward(ctx, scale, x, e, total, index, dim):
        b = ctx.backend
        ctx.dim = dim
        ctx.save_for_backward(scale, x, index)
        scale32 = _upcast(b, scale)  # e and total are float32 for float16/bfloat16 logits
        out = b.binary("mul", e, b.binary("div", scale32, total))  # a new array: updated in place
        b.scatter_add(out, dim, index, b.unary("neg", scale32))
        return b.cast(out, from_numpy_dtype(x.dtype))

    @staticmethod
    def backward(ctx, grad):
        scale, x, index = ctx.saved_tensors
        p = softmax(x, ctx.dim)
        grad_p = _sum(grad * p, ctx.dim, keepdim=True)
        grad_scale = grad_x = None
        if ctx.needs_input_grad[0]:
            grad_scale = grad_p - gather(grad, ctx.dim, index)
        if ctx.needs_input_grad[1]:  # softmax's backward, times scale
            grad_x = scale * p * (grad - grad_p)
        return grad_scale, grad_x, None, None, None, None


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log likelihood of class-index ``target`` under log-probabilities ``input``.

    ``input`` is (C,) with a 0-d target, (N, C) with target (N,), or (N, C, d1, ...) with
    target (N, d1, ...). ``weight`` (C,) rescales each class; targets equal to
    ``ignore_index`` contribute nothing, and ``'mean'`` divides by the total weight of
    the others (nan when every target is ignored, as PyTorch).

    Example: ``F.nll_loss(F.log_softmax(logits, 1), targets)``
    """
    # autocast: on PyTorch's CPU float32 list (floating inputs cast up, gradients flow back)
    input, target, weight = _autocast.to_float32(input, target, weight)
    reduction = _legacy_reduction(size_average, reduce, reduction, "nll_loss")
    _require_float(input, "nll_loss")
    class_dim, n_classes, target, weight = _class_setup(input, target, weight, "nll_loss")
    _check_class_range(target, n_classes, ignore_index, "nll_loss")
    return _nll(input, target, weight, class_dim, ignore_index, reduction)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy between the logits ``input`` and ``target``, computed via log_softmax.

    ``target`` holds class indices (int64, shaped like ``input`` without the class
    dimension) or class probabilities (floating, the shape of ``input``). The class
    dimension is 1 (0 for a 1-d input). ``weight``, ``ignore_index`` and
    ``label_smoothing`` combine exactly as in PyTorch: with smoothing ``e`` over ``C``
    classes the loss is ``(1 - e) * nll + e / C * sum_c(-w_c * log p_c)``, where ``'mean'``
    divides both terms by the total weight of the non-ignored targets.

    Example: ``F.cross_entropy(logits, labels, ignore_index=0, label_smoothing=0.1)``
    """
    # autocast: on PyTorch's CPU float32 list (floating inputs cast up, gradients flow back)
    input, target, weight = _autocast.to_float32(input, target, weight)
    reduction = _legacy_reduction(size_average, reduce, reduction, "cross_entropy")
    fn = "cross_entropy"
    _require_float(input, fn)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ArgumentValueError(f"{fn}: label_smoothing must be between 0.0 and 1.0, got "
                                 f"{label_smoothing}")
    if input.ndim == 0:
        raise ShapeError(f"{fn}: input must have a class dimension: (C,), (N, C) or "
                         f"(N, C, d1, ...); got a 0-d tensor")
    if isinstance(target, Tensor) and _shape(target) == _shape(input):
        return _cross_entropy_probs(input, target, weight, ignore_index, reduction, label_smoothing)

    class_dim, n_classes, target, weight = _class_setup(input, target, weight, fn)
    if weight is None and label_smoothing == 0.0 and input.numel():
        return CrossEntropyIndex.apply(input, target, class_dim, ignore_index, reduction, n_classes)
    _check_class_range(target, n_classes, ignore_index, fn)
    logp = log_softmax(input, class_dim)
    if label_smoothing == 0.0:
        return _nll(logp, target, weight, class_dim, ignore_index, reduction)

    picked, w, keep = _pick(logp, target, weight, class_dim, ignore_index)
    nll = -picked if weight is None else -picked * w
    # the smoothing term: the (weighted) cross entropy against the uniform distribution
    smooth = -_sum(logp if weight is None else logp * _along(weight, class_dim, logp.ndim),
                   class_dim)
    smooth = where(keep, smooth, 0.0)
    if reduction == "sum":
        nll, smooth = _sum(nll), _sum(smooth)
    elif reduction == "mean":
        total = _sum(w)
        nll, smooth = _sum(nll) / total, _sum(smooth) / total
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / n_classes)


def _cross_entropy_probs(input, target, weight, ignore_index, reduction, label_smoothing):
    fn = "cross_entropy"
    if not target.dtype.is_floating_point:
        raise DTypeError(f"{fn}: a target of the input's shape {_shape(input)} holds class "
                         f"probabilities and must be floating point, got {target.dtype}; "
                         "class-index targets have no class dimension")
    if ignore_index >= 0:
        raise ArgumentValueError(f"{fn}: ignore_index={ignore_index} is not supported with "
                                 "class-probability targets")
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    logp = log_softmax(input, class_dim)
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
    prod = logp * target
    if weight is not None:
        if weight.ndim != 1 or weight.shape[0] != n_classes:
            raise ShapeError(f"{fn}: weight must be a 1-d tensor of one weight for each of the "
                             f"{n_classes} classes, got shape {_shape(weight)}")
        prod = prod * _along(weight, class_dim, input.ndim)
    if reduction == "none":
        return -_sum(prod, class_dim)
    total = -_sum(prod)
    if reduction == "sum":
        return total
    # PyTorch's mean is over the positions (every element but the class dimension)
    count = input.numel() // n_classes if n_classes else 0
    return total / count if count else total * float("nan")


# ---------------------------------------------------------------------- binary cross entropy
class BinaryCrossEntropy(ArrayFunction):
    """Unreduced ``-(t log x + (1 - t) log(1 - x))`` with each log clamped at -100 (PyTorch).

    The backward is PyTorch's: ``(x - t) / max(x (1 - x), 1e-12)`` for the input (finite at
    x = 0 and 1, where the derivative of the clamped forward would be 0) and
    ``log((1 - x) / x)`` for the target; both are written with differentiable ops.
    """

    @staticmethod
    def forward(ctx, x, t):
        b = ctx.backend
        ctx.save_for_backward(x, t)
        dtype = from_numpy_dtype(x.dtype)
        zero, one, floor = b.full((), 0, dtype), b.full((), 1, dtype), b.full((), -100, dtype)
        # log(0) is -inf; substitute a harmless argument there so NumPy does not warn, then clamp
        pos = b.binary("gt", x, zero)
        log_x = b.where(pos, b.unary("log", b.where(pos, x, one)), floor)
        below = b.binary("lt", x, one)
        log_1mx = b.where(below, b.unary("log1p", b.unary("neg", b.where(below, x, zero))), floor)
        log_x = b.binary("maximum", log_x, floor)
        log_1mx = b.binary("maximum", log_1mx, floor)
        # (t - 1) * log(1 - x) - t * log(x), in PyTorch's order of operations
        return b.binary("sub", b.binary("mul", b.binary("sub", t, one), log_1mx),
                        b.binary("mul", t, log_x))

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.saved_tensors
        grad_x = grad_t = None
        if ctx.needs_input_grad[0]:
            d = x * (1 - x)
            grad_x = grad * (x - t) / where(d < 1e-12, 1e-12, d)
        if ctx.needs_input_grad[1]:
            grad_t = grad * log((1 - x) / x)
        return grad_x, grad_t


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Binary cross entropy between probabilities ``input`` (in [0, 1]) and ``target``.

    Each log is clamped at -100, as in PyTorch, so a confident wrong answer costs 100,
    not infinity. ``weight`` broadcasts to the input. Prefer
    :func:`binary_cross_entropy_with_logits`, which is stable for any logit.

    Example: ``F.binary_cross_entropy(probs, labels)``
    """
    # autocast: on PyTorch's CPU float32 list (floating inputs cast up, gradients flow back)
    input, target, weight = _autocast.to_float32(input, target, weight)
    fn = "binary_cross_entropy"
    reduction = _legacy_reduction(size_average, reduce, reduction, fn)
    _require_float(input, fn)
    _check_same_shape_target(input, target, fn)
    if target.dtype is not input.dtype:
        raise DTypeError(f"{fn}: target has dtype {target.dtype}, expected the input's dtype "
                         f"{input.dtype}")
    outside = ~((input >= 0) & (input <= 1))  # nan counts as outside, as in PyTorch
    if outside.numel() and int(_sum(outside).item()):
        raise ArgumentValueError(
            f"{fn}: all elements of input should be between 0 and 1 (probabilities); "
            "use binary_cross_entropy_with_logits for logits")
    loss = BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * _broadcast_weight(weight, input, fn, "weight")
    return _reduce(loss, reduction)


def _broadcast_weight(weight: Tensor, input: Tensor, fn: str, what: str) -> Tensor:
    """``weight`` expanded to the input's shape (a clear error if it does not broadcast)."""
    try:
        weight = expand(weight, _shape(input))
    except ShapeError:
        raise ShapeError(f"{fn}: {what} of shape {_shape(weight)} does not broadcast to the "
                         f"input's shape {_shape(input)}") from None
    return cast(weight, input.dtype)


def _log_sigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)) = min(x, 0) - log(1 + exp(-|x|)), finite for every x.

    Each branch of ``where`` is the exact analytic function on its side of 0, so the
    derivatives of every order are right, 0 included.
    """
    neg = x < 0
    return where(neg, x, 0.0) - log1p(exp(where(neg, x, -x)))


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Binary cross entropy of ``sigmoid(input)``, computed stably from the logits.

    ``loss = (1 - t) * x - (1 + (pos_weight - 1) * t) * log_sigmoid(x)``, times ``weight``;
    ``pos_weight`` (one weight per class, broadcast along the last dimension) scales the
    positive term. Finite for any logit.

    Example: ``F.binary_cross_entropy_with_logits(logits, labels, pos_weight=w)``
    """
    # autocast: on PyTorch's CPU float32 list (floating inputs cast up, gradients flow back)
    input, target, weight, pos_weight = _autocast.to_float32(input, target, weight, pos_weight)
    fn = "binary_cross_entropy_with_logits"
    reduction = _legacy_reduction(size_average, reduce, reduction, fn)
    _require_float(input, fn)
    _check_same_shape_target(input, target, fn)
    _require_float(target, fn, "target")
    x, t = _promote(input, target)
    log_sig = _log_sigmoid(x)
    if pos_weight is not None:
        log_sig = log_sig * ((_broadcast_weight(pos_weight, x, fn, "pos_weight") - 1) * t + 1)
    loss = (1 - t) * x - log_sig
    if weight is not None:
        loss = loss * _broadcast_weight(weight, loss, fn, "weight")
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------- KL divergence
def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL divergence ``target * (log target - input)`` with ``input`` given as log-probabilities.

    ``log_target=True`` takes ``target`` as log-probabilities too. ``reduction='batchmean'``
    divides the sum by the batch size (the mathematical KL); ``'mean'`` divides by the number
    of elements and warns, as PyTorch does.

    Example: ``F.kl_div(F.log_softmax(student, -1), F.softmax(teacher, -1), reduction='batchmean')``
    """
    # autocast: on PyTorch's CPU float32 list (floating inputs cast up, gradients flow back)
    input, target = _autocast.to_float32(input, target)
    fn = "kl_div"
    reduction = _legacy_reduction(size_average, reduce, reduction, fn)
    if reduction == "mean":
        warnings.warn("kl_div: reduction='mean' divides the total loss by both the batch size and "
                      "the support size; 'batchmean' divides only by the batch size, and aligns "
                      "with the KL div math definition.", UserWarning, stacklevel=2)
    a, t = _promote(input, target)
    _require_float(a, fn)
    if log_target:
        loss = exp(t) * (t - a)
    else:
        loss = _xlogy_self(t) - t * a
    if reduction == "batchmean":
        total = _sum(loss)
        return total / input.shape[0] if input.ndim else total
    return _reduce(loss, reduction)
