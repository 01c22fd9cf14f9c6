"""Loss layers, as in ``torch.nn``: each stores its options and calls the functional loss.

``reduction`` is 'mean' (default), 'sum' or 'none'; the deprecated ``size_average``/``reduce``
flags are still accepted and mapped to it (with PyTorch's deprecation warning). Class weights
and ``pos_weight`` are registered as buffers, as in PyTorch, so they follow ``.to()`` and show up
in the state dict.

Deliberate difference: an unknown ``reduction`` is refused when the loss is built, not only
when it is first called (PyTorch waits for the call).
"""

from __future__ import annotations

from ...ops.loss import _legacy_reduction
from .. import functional as F
from ..module import Module
from ...errors import ArgumentValueError
from ...ops.argument_errors import as_number

__all__ = ["L1Loss", "MSELoss", "CrossEntropyLoss", "NLLLoss", "NLLLoss2d", "BCELoss", "BCEWithLogitsLoss",
           "SmoothL1Loss", "HuberLoss", "KLDivLoss"]


class _Loss(Module):
    _fn = "loss"  # the functional's name, for messages

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = _legacy_reduction(size_average, reduce, reduction, self._fn)


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    """Mean absolute error. ``nn.L1Loss()(prediction, target)``."""

    _fn = "l1_loss"

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error.

    Example::

        loss = nn.MSELoss()(model(x), y)
        loss.backward()
    """

    _fn = "mse_loss"

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Cross entropy of logits (N, C, ...) against class indices (N, ...) or probabilities.

    Targets equal to ``ignore_index`` are skipped (and excluded from the mean);
    ``label_smoothing`` mixes the target with the uniform distribution.

    Example::

        criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
        loss = criterion(logits, targets)    # logits (B, C), targets (B,) int64
    """

    _fn = "cross_entropy"

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log likelihood of class indices under log-probabilities (e.g. from LogSoftmax).

    ``nn.NLLLoss()(F.log_softmax(logits, 1), targets)``
    """

    _fn = "nll_loss"

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)



class NLLLoss2d(NLLLoss):
    """PyTorch's old name for :class:`NLLLoss` over (N, C, H, W) log-probabilities, which
    NLLLoss takes itself (PyTorch deprecates the name)."""

class BCELoss(_WeightedLoss):
    """Binary cross entropy of probabilities in [0, 1].

    ``nn.BCELoss()(gradient.sigmoid(logits), y)``
    """

    _fn = "binary_cross_entropy"

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross entropy of ``sigmoid(input)``, computed stably from the logits.

    ``pos_weight`` (one per class) weighs the positive term. ``nn.BCEWithLogitsLoss()(logits, y)``
    """

    _fn = "binary_cross_entropy_with_logits"

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean",
                 pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  pos_weight=self.pos_weight,
                                                  reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Quadratic below ``beta``, L1 above. ``nn.SmoothL1Loss(beta=0.5)``."""

    _fn = "smooth_l1_loss"

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Quadratic below ``delta``, ``delta``-scaled L1 above. ``nn.HuberLoss(delta=2.0)``."""

    _fn = "huber_loss"

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction=reduction)
        self.delta = as_number(delta, "HuberLoss: delta")

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class KLDivLoss(_Loss):
    """KL divergence with ``input`` as log-probabilities (``target`` too if ``log_target``).

    Use ``reduction='batchmean'`` for the mathematically correct mean over the batch.
    ``nn.KLDivLoss(reduction='batchmean')(F.log_softmax(x, -1), p)``
    """

    _fn = "kl_div"

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 log_target: bool = False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


# ---------------------------------------------------------------------- margin, embedding, likelihood
__all__ += ["MarginRankingLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss", "SoftMarginLoss",
            "MultiLabelSoftMarginLoss", "MultiMarginLoss", "MultiLabelMarginLoss",
            "TripletMarginLoss", "TripletMarginWithDistanceLoss", "GaussianNLLLoss",
            "PoissonNLLLoss"]


class MarginRankingLoss(_Loss):
    """``max(0, -y * (x1 - x2) + margin)`` for rankings ``y`` in {1, -1}.

    ``nn.MarginRankingLoss(margin=0.1)(score_a, score_b, y)``
    """

    _fn = "margin_ranking_loss"

    def __init__(self, margin: float = 0.0, size_average=None, reduce=None,
                 reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return F.margin_ranking_loss(input1, input2, target, margin=self.margin,
                                     reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    """``x`` for ``y = 1``, ``max(0, margin - x)`` for ``y = -1`` (``x`` a distance).

    ``nn.HingeEmbeddingLoss(margin=2.0)(distances, y)``
    """

    _fn = "hinge_embedding_loss"

    def __init__(self, margin: float = 1.0, size_average=None, reduce=None,
                 reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input, target):
        return F.hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    """``1 - cos(x1, x2)`` for ``y = 1``, ``max(0, cos(x1, x2) - margin)`` for ``y = -1``.

    ``nn.CosineEmbeddingLoss(margin=0.2)(emb_a, emb_b, y)``
    """

    _fn = "cosine_embedding_loss"

    def __init__(self, margin: float = 0.0, size_average=None, reduce=None,
                 reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return F.cosine_embedding_loss(input1, input2, target, margin=self.margin,
                                       reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """Two-class logistic loss ``log(1 + exp(-y * x))``. ``nn.SoftMarginLoss()(scores, y)``."""

    _fn = "soft_margin_loss"

    def forward(self, input, target):
        return F.soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """Multi-label one-vs-all logistic loss, averaged over classes (``weight`` per class).

    ``nn.MultiLabelSoftMarginLoss()(logits, multi_hot_targets)``
    """

    _fn = "multilabel_soft_margin_loss"

    def forward(self, input, target):
        return F.multilabel_soft_margin_loss(input, target, weight=self.weight,
                                             reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    """Multi-class hinge loss (``p`` = 1 or 2) against class indices.

    ``nn.MultiMarginLoss(margin=0.5)(scores, classes)``
    """

    _fn = "multi_margin_loss"

    def __init__(self, p: int = 1, margin: float = 1.0, weight=None, size_average=None,
                 reduce=None, reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        if p not in (1, 2):
            raise ArgumentValueError(
                f"MultiMarginLoss: only p == 1 and p == 2 are supported, got p={p!r}")
        if weight is not None and weight.ndim != 1:
            raise ArgumentValueError(f"MultiMarginLoss: weight must be a 1-D tensor, got shape "
                                     f"{tuple(weight.shape)}")
        self.p = p
        self.margin = margin

    def forward(self, input, target):
        return F.multi_margin_loss(input, target, p=self.p, margin=self.margin,
                                   weight=self.weight, reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    """Multi-label hinge loss; targets are class indices padded with -1.

    ``nn.MultiLabelMarginLoss()(scores, gradient.tensor([[3, 0, -1, 1]]))``
    """

    _fn = "multilabel_margin_loss"

    def forward(self, input, target):
        return F.multilabel_margin_loss(input, target, reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """``max(0, d(a, p) - d(a, n) + margin)`` with the p-norm distance.

    ``nn.TripletMarginLoss(margin=1.0, p=2)(anchor, positive, negative)``
    """

    _fn = "triplet_margin_loss"

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                 size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        if as_number(margin, f"{type(self).__name__}: margin") <= 0:
            raise ArgumentValueError(
                f"TripletMarginLoss: expected margin to be greater than 0, got "
                f"{margin} instead")
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def forward(self, anchor, positive, negative):
        return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p,
                                     eps=self.eps, swap=self.swap, reduction=self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
    """Triplet loss with any ``distance_function`` (default :class:`nn.PairwiseDistance`, kept
    as a child module as in PyTorch).

    ``nn.TripletMarginWithDistanceLoss(distance_function=lambda x, y: 1 - F.cosine_similarity(x, y))``
    """

    _fn = "triplet_margin_with_distance_loss"

    def __init__(self, *, distance_function=None, margin: float = 1.0, swap: bool = False,
                 reduction: str = "mean"):
        super().__init__(reduction=reduction)
        if as_number(margin, f"{type(self).__name__}: margin") <= 0:
            raise ArgumentValueError(
                f"TripletMarginWithDistanceLoss: expected margin to be greater than "
                f"0, got {margin} instead")
        from .distance import PairwiseDistance
        self.distance_function = distance_function if distance_function is not None \
            else PairwiseDistance()
        self.margin = margin
        self.swap = swap

    def forward(self, anchor, positive, negative):
        return F.triplet_margin_with_distance_loss(anchor, positive, negative,
                                                   distance_function=self.distance_function,
                                                   margin=self.margin, swap=self.swap,
                                                   reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood of ``target`` given a predicted mean and variance.

    ``nn.GaussianNLLLoss()(mean, target, var)``
    """

    _fn = "gaussian_nll_loss"

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__(reduction=reduction)
        self.full = full
        self.eps = eps

    def forward(self, input, target, var):
        return F.gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps,
                                   reduction=self.reduction)


class PoissonNLLLoss(_Loss):
    """Poisson negative log-likelihood; ``input`` is the log-rate unless ``log_input=False``.

    ``nn.PoissonNLLLoss()(log_rate, counts)``
    """

    _fn = "poisson_nll_loss"

    def __init__(self, log_input: bool = True, full: bool = False, size_average=None,
                 eps: float = 1e-8, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input, target):
        return F.poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full,
                                  eps=self.eps, reduction=self.reduction)


__all__ += ["CTCLoss"]


class CTCLoss(_Loss):
    """Connectionist temporal classification loss (see :func:`gradient.nn.functional.ctc_loss`).

    Example::

        ctc = nn.CTCLoss(blank=0, zero_infinity=True)
        loss = ctc(logits.log_softmax(2), targets, input_lengths, target_lengths)
    """

    _fn = "ctc_loss"

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False):
        super().__init__(reduction=reduction)
        self.blank = blank
        self.zero_infinity = zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=self.blank,
                          reduction=self.reduction, zero_infinity=self.zero_infinity)
