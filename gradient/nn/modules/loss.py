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

__all__ = ["L1Loss", "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss",
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
        self.delta = delta

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
