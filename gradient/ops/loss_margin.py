"""Margin, embedding and likelihood losses, as in ``torch.nn.functional``.

- ranking and embedding: ``margin_ranking_loss``, ``hinge_embedding_loss``,
  ``cosine_embedding_loss``, ``triplet_margin_loss``, ``triplet_margin_with_distance_loss``
- margin classification: ``soft_margin_loss``, ``multilabel_soft_margin_loss``,
  ``multi_margin_loss``, ``multilabel_margin_loss``
- likelihoods: ``gaussian_nll_loss``, ``poisson_nll_loss``

Every one is a composition of differentiable ops (so second derivatives come for free), and
every one takes ``reduction='none' | 'mean' | 'sum'`` (plus the deprecated ``size_average`` /
``reduce`` pair where PyTorch has it). Hinges are ``clamp_min(·, 0)``, whose gradient at the kink
is 1 as in PyTorch's kernels; where PyTorch selects between branches by the target's value, so
do we (with :func:`where`, never by multiplying with a mask, so an ``inf`` in the unused branch
does not turn into nan).

Example::

    >>> import gradient.nn.functional as F
    >>> a, p, n = (gradient.randn(8, 16, requires_grad=True) for _ in range(3))
    >>> F.triplet_margin_loss(a, p, n, margin=0.5).backward()
"""

from __future__ import annotations

import math

from ..dtypes import int64
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, IndexRangeError, ShapeError
from ..tensor import Tensor
from .elementwise import _floating, _promote, cast, clamp_min, exp, log, minimum, sqrt, where
from .index import gather
from .loss import _legacy_reduction, _reduce, _check_reduction
from .nn import logsigmoid, pairwise_distance, softplus
from .reduce import cumsum
from .reduce import sum as _sum
from .shape import reshape

__all__ = [
    "margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss", "soft_margin_loss",
    "multilabel_soft_margin_loss", "multi_margin_loss", "multilabel_margin_loss",
    "triplet_margin_loss", "triplet_margin_with_distance_loss", "gaussian_nll_loss",
    "poisson_nll_loss",
]
TENSOR_METHODS = ()


def _tensor(x, fn: str, what: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"{fn}: {what} must be a Tensor, got {type(x).__name__}")
    return x


def _shape(t: Tensor) -> tuple:
    return tuple(t.shape)


# ---------------------------------------------------------------------- ranking and embedding
def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``max(0, -target * (input1 - input2) + margin)``: ``target = 1`` says input1 should rank
    higher, ``-1`` that input2 should. The three tensors must have the same number of dimensions
    (their shapes broadcast).

    Example::

        >>> F.margin_ranking_loss(x1, x2, gradient.tensor([1., -1., 1.]), margin=0.1)
    """
    reduction = _legacy_reduction(size_average, reduce, reduction, "margin_ranking_loss")
    for what, t in (("input1", input1), ("input2", input2), ("target", target)):
        _tensor(t, "margin_ranking_loss", what)
    if not input1.ndim == input2.ndim == target.ndim:
        raise ShapeError(f"margin_ranking_loss: all input tensors must have the same number of "
                         f"dimensions, got input1 {_shape(input1)}, input2 {_shape(input2)} and "
                         f"target {_shape(target)}")
    loss = clamp_min(-target * (input1 - input2) + margin, 0)
    return _reduce(loss, reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """``input`` where ``target == 1`` and ``max(0, margin - input)`` where ``target == -1``
    (``input`` is usually a distance between two embeddings).

    As in PyTorch, a target that is neither 1 nor -1 adds both terms.

    Example::

        >>> F.hinge_embedding_loss(dist, gradient.tensor([1., -1., -1.]), margin=2.0)
    """
    reduction = _legacy_reduction(size_average, reduce, reduction, "hinge_embedding_loss")
    _tensor(input, "hinge_embedding_loss", "input")
    _tensor(target, "hinge_embedding_loss", "target")
    input = _floating(input)
    margin_term = where(target != 1, clamp_min(margin - input, 0), 0.0)
    self_term = where(target != -1, input, 0.0)
    return _reduce(margin_term + self_term, reduction)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                          size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``1 - cos(x1, x2)`` where ``target == 1``, ``max(0, cos(x1, x2) - margin)`` where
    ``target == -1``; the cosine is over the last dimension of (N, D) or (D,) inputs, and
    ``target`` is (N,) or 0-d.

    Example::

        >>> F.cosine_embedding_loss(a, b, gradient.tensor([1., -1.]), margin=0.2)
    """
    fn = "cosine_embedding_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction, fn)
    for what, t in (("input1", input1), ("input2", input2), ("target", target)):
        _tensor(t, fn, what)
    if input1.ndim != input2.ndim or input1.ndim not in (1, 2):
        raise ShapeError(f"{fn}: expected input1 and input2 both (N, D) or both (D,), got "
                         f"{_shape(input1)} and {_shape(input2)}")
    if target.ndim != input1.ndim - 1:
        raise ShapeError(f"{fn}: expected a {input1.ndim - 1}-D target for {input1.ndim}-D inputs "
                         f"(one +1/-1 per pair), got target of shape {_shape(target)}")
    x1, x2 = _promote(_floating(input1), _floating(input2))
    # PyTorch adds a tiny epsilon to each squared norm, so a zero vector gives cos = 0, not nan
    eps = 1e-12
    dot = _sum(x1 * x2, -1)
    cos = dot / sqrt((_sum(x1 * x1, -1) + eps) * (_sum(x2 * x2, -1) + eps))
    loss = (where(target == 1, 1 - cos, 0.0) + where(target == -1, clamp_min(cos - margin, 0), 0.0))
    return _reduce(loss, reduction)


def _check_triplet(anchor, positive, negative, fn: str) -> None:
    for what, t in (("anchor", anchor), ("positive", positive), ("negative", negative)):
        _tensor(t, fn, what)
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise ShapeError(f"{fn}: the anchor, positive and negative tensors must have the same "
                         f"number of dimensions, got anchor {anchor.ndim}D, positive "
                         f"{positive.ndim}D and negative {negative.ndim}D")


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0,
                        p: float = 2, eps: float = 1e-6, swap: bool = False, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    """``max(0, d(a, p) - d(a, n) + margin)`` with ``d`` the p-norm pairwise distance over the
    last dimension. ``swap=True`` uses ``min(d(a, n), d(p, n))`` as the negative distance.

    Example::

        >>> F.triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2)
    """
    fn = "triplet_margin_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction, fn)
    _check_triplet(anchor, positive, negative, fn)

    def distance(x, y):
        return pairwise_distance(x, y, p, eps)

    return _triplet(anchor, positive, negative, distance, margin, swap, reduction)


def _triplet(anchor, positive, negative, distance, margin, swap, reduction):
    d_pos = distance(anchor, positive)
    d_neg = distance(anchor, negative)
    if swap:  # the positive is closer to the negative than the anchor is: use that distance
        d_neg = minimum(d_neg, distance(positive, negative))
    return _reduce(clamp_min(margin + d_pos - d_neg, 0), reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function=None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
    """:func:`triplet_margin_loss` with any ``distance_function(x, y)`` (default
    :func:`pairwise_distance`), e.g. ``lambda x, y: 1 - F.cosine_similarity(x, y)``.
    ``margin`` must be positive.

    Example::

        >>> F.triplet_margin_with_distance_loss(a, p, n, distance_function=nn.PairwiseDistance())
    """
    fn = "triplet_margin_with_distance_loss"
    _check_reduction(reduction, fn)
    if margin <= 0:
        raise ArgumentValueError(f"{fn}: margin must be greater than 0, got {margin}")
    _check_triplet(anchor, positive, negative, fn)
    distance = pairwise_distance if distance_function is None else distance_function
    return _triplet(anchor, positive, negative, distance, margin, swap, reduction)


# ---------------------------------------------------------------------- margin classification
def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """Two-class logistic loss ``log(1 + exp(-target * input))`` for targets in {1, -1}.

    Example::

        >>> F.soft_margin_loss(scores, gradient.tensor([1., -1., 1.]))
    """
    reduction = _legacy_reduction(size_average, reduce, reduction, "soft_margin_loss")
    _tensor(input, "soft_margin_loss", "input")
    _tensor(target, "soft_margin_loss", "target")
    # softplus is log(1 + exp(z)) computed without overflow for large z
    return _reduce(softplus(-target * _floating(input)), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Multi-label one-vs-all logistic loss over the last (class) dimension: per sample,
    ``-mean_c(y_c log sigmoid(x_c) + (1 - y_c) log sigmoid(-x_c))`` (times ``weight[c]``).
    ``target`` holds 0/1 labels with the input's shape.

    Example::

        >>> F.multilabel_soft_margin_loss(logits, gradient.tensor([[1., 0., 1.], [0., 0., 1.]]))
    """
    fn = "multilabel_soft_margin_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction, fn)
    _tensor(input, fn, "input")
    _tensor(target, fn, "target")
    if input.ndim == 0:
        raise ShapeError(f"{fn}: expected an input with a class dimension (N, C) or (C,), got a "
                         "0-d input")
    x = _floating(input)
    loss = -(target * logsigmoid(x) + (1 - target) * logsigmoid(-x))
    if weight is not None:
        loss = loss * weight
    loss = _sum(loss, -1) / input.shape[-1]
    return _reduce(loss, reduction)


def _class_targets(input: Tensor, target: Tensor, fn: str, same_shape: bool):
    """(N, C) input and int64 target as batched tensors, and whether the input was unbatched."""
    _tensor(input, fn, "input")
    _tensor(target, fn, "target")
    if input.ndim not in (1, 2) or input.numel() == 0:
        raise ShapeError(f"{fn}: expected a non-empty (C,) or (N, C) input, got shape "
                         f"{_shape(input)}")
    if target.dtype is not int64:
        raise DTypeError(f"{fn}: expected an int64 (long) target of class indices, got "
                         f"{target.dtype}")
    n = 1 if input.ndim == 1 else input.shape[0]
    if same_shape:
        if _shape(target) != _shape(input):
            raise ShapeError(f"{fn}: target of shape {_shape(target)} must have the input's shape "
                             f"{_shape(input)} (class indices, padded with -1)")
    elif target.ndim > 1 or target.numel() != n:
        raise ShapeError(f"{fn}: expected a target of {n} class indices ((N,) for an (N, C) input, "
                         f"0-d or (1,) for a (C,) input), got shape {_shape(target)}")
    unbatched = input.ndim == 1
    x = reshape(_floating(input), (n, input.shape[-1]))
    t = reshape(target, (n, -1) if same_shape else (n, 1))
    return x, t, unbatched


def _check_range(target: Tensor, low: int, high: int, fn: str) -> None:
    if target.numel():
        lo, hi = int(target.min().item()), int(target.max().item())
        if lo < low or hi >= high:
            raise IndexRangeError(
                f"{fn}: target values must be in [{low}, {high - 1}], got values in "
                f"[{lo}, {hi}]")


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, size_average=None, reduce=None,
                      reduction: str = "mean") -> Tensor:
    """Multi-class hinge loss: per sample ``sum_{i != y} max(0, margin - x[y] + x[i])^p / C``
    (each term times ``weight[y]``), for an (N, C) or (C,) input and class indices ``y``.
    ``p`` is 1 or 2.

    Example::

        >>> F.multi_margin_loss(scores, gradient.tensor([3, 0]), margin=0.5)
    """
    fn = "multi_margin_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction, fn)
    if p not in (1, 2):
        raise ArgumentValueError(f"{fn}: only p == 1 and p == 2 are supported, got p={p!r}")
    x, t, unbatched = _class_targets(input, target, fn, same_shape=False)
    c = x.shape[1]
    _check_range(t, 0, c, fn)
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != c):
        raise ShapeError(f"{fn}: weight must be a 1-D tensor of {c} class weights, got shape "
                         f"{_shape(weight)}")
    z = clamp_min(margin - gather(x, 1, t) + x, 0)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * reshape(cast(weight, x.dtype)[reshape(t, (-1,))], (-1, 1))
    # the target class itself is not a violation (its term would be max(0, margin))
    classes = cumsum(x.new_ones((1, c), dtype=int64), 1) - 1
    loss = _sum(where(classes == t, 0.0, z), 1) / c
    if unbatched:
        loss = reshape(loss, ())
    return _reduce(loss, reduction)


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """Multi-label hinge loss: per sample
    ``sum_{j in targets, i not in targets} max(0, 1 - (x[j] - x[i])) / C``.

    ``target`` has the input's shape and lists the target classes first, then ``-1``: only the
    indices before the first ``-1`` count (``[3, 0, -1, 1]`` means classes 3 and 0).

    Example::

        >>> F.multilabel_margin_loss(gradient.tensor([[0.1, 0.2, 0.4, 0.8]]),
        ...                          gradient.tensor([[3, 0, -1, 1]]))
        tensor(0.8500)
    """
    fn = "multilabel_margin_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction, fn)
    x, t, unbatched = _class_targets(input, target, fn, same_shape=True)
    n, c = x.shape
    _check_range(t, -1, c, fn)
    # the listed targets: every index before the first -1
    listed = cumsum(cast(t == -1, int64), 1) == 0
    classes = cumsum(x.new_ones((1, 1, c), dtype=int64), 2) - 1            # (1, 1, C)
    hits = cast((reshape(t, (n, c, 1)) == classes) & reshape(listed, (n, c, 1)), x.dtype)
    count = _sum(hits, 1)              # (N, C): how often class j is listed (PyTorch counts repeats)
    is_target = count > 0
    # pairs (j, i): j a listed target, i not a target; hinge on x[j] - x[i]
    hinge = clamp_min(1 - reshape(x, (n, c, 1)) + reshape(x, (n, 1, c)), 0)
    pair = where(reshape(is_target, (n, 1, c)), 0.0, hinge) * reshape(count, (n, c, 1))
    loss = _sum(pair, (1, 2)) / c
    if unbatched:
        loss = reshape(loss, ())
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------- likelihoods
def gaussian_nll_loss(input: Tensor, target: Tensor, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of ``target`` under N(input, var):
    ``0.5 * (log(var) + (input - target)^2 / var)`` (+ ``0.5 * log(2 pi)`` with ``full``).

    ``var`` is a tensor of the input's shape (heteroscedastic), or one with a single dimension of
    size 1 or the last one missing (one variance shared along it), or a float. ``var`` is clamped
    to ``eps`` for stability; as in PyTorch the clamp does not stop its gradient.

    Example::

        >>> mean, var = model(x)
        >>> F.gaussian_nll_loss(mean, y, var)
    """
    fn = "gaussian_nll_loss"
    _tensor(input, fn, "input")
    _tensor(target, fn, "target")
    if isinstance(var, (int, float)) and not isinstance(var, bool):
        if var < 0:
            raise ArgumentValueError(f"{fn}: var has negative entry/entries (var={var})")
        var = input.new_full(_shape(input), float(var))
    else:
        _tensor(var, fn, "var")
        if bool((var < 0).any().item()):
            raise ArgumentValueError(f"{fn}: var has negative entry/entries")
    if _shape(var) != _shape(input):
        if _shape(input)[:-1] == _shape(var):       # one variance per row: share it along the last dim
            var = reshape(var, _shape(var) + (1,))
        elif not (var.ndim == input.ndim
                  and sum(v for i, v in zip(input.shape, var.shape) if i != v) == 1):
            raise ShapeError(f"{fn}: var of shape {_shape(var)} is of incorrect size for an input "
                             f"of shape {_shape(input)}: expected the input's shape, the input's "
                             "shape without its last dimension, or a size-1 dimension in place of "
                             "one of the input's")
    _check_reduction(reduction, fn)
    # clamp the value, keep the gradient of the unclamped variance (PyTorch clamps in place
    # under no_grad)
    var = var + (clamp_min(var, eps) - var).detach()
    loss = 0.5 * (log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of ``target`` under Poisson(rate), dropping the constant
    ``log(target!)``: ``exp(input) - target * input`` when ``input`` is the log-rate
    (``log_input=True``), else ``input - target * log(input + eps)``. ``full`` adds Stirling's
    approximation of ``log(target!)`` where ``target > 1``.

    Example::

        >>> F.poisson_nll_loss(log_rate, counts)
    """
    fn = "poisson_nll_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction, fn)
    _tensor(input, fn, "input")
    _tensor(target, fn, "target")
    if log_input:
        loss = exp(input) - target * input
    else:
        loss = input - target * log(input + eps)
    if full:
        positive = target > 1
        t = where(positive, target, 2.0)   # a safe value where the term is unused
        stirling = t * log(t) - t + 0.5 * log(2 * math.pi * t)
        loss = loss + where(positive, stirling, 0.0)
    return _reduce(loss, reduction)
