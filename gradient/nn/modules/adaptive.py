"""AdaptiveLogSoftmaxWithLoss: the adaptive softmax of Grave et al. (2016) for large vocabularies,
as ``torch.nn.AdaptiveLogSoftmaxWithLoss``.

The classes are split by ``cutoffs`` into a frequent "shortlist" and rarer clusters. The head is
one linear layer over the shortlist plus one logit per cluster; each cluster has its own small
two-layer projection (narrower by ``div_value`` per cluster). ``log p(c)`` is the head's
log-probability for a shortlist class, and ``log p(cluster) + log p(c | cluster)`` otherwise, so
only the clusters that the batch's targets fall in are evaluated in ``forward``.
"""

from __future__ import annotations

from collections import namedtuple

from ... import ops as _ops
from ...errors import ArgumentValueError, IndexRangeError, ShapeError
from ...ops.argument_errors import as_ints, as_number
from .. import functional as F
from ..module import Module
from .container import ModuleList, Sequential
from .linear import Linear, _check_size

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """Efficient softmax over ``n_classes`` classes sorted by frequency.

    ``forward(input, target)`` takes features ``(N, in_features)`` and class indices ``(N,)``
    (or ``(in_features,)`` and a 0-d target) and returns ``(output, loss)``: the target log
    probabilities and their negated mean. ``log_prob(input)`` gives the full ``(N, n_classes)``
    log-probabilities and ``predict(input)`` their argmax.

    Example::

        asm = nn.AdaptiveLogSoftmaxWithLoss(64, 1000, cutoffs=[20, 200], div_value=4.0)
        out, loss = asm(gradient.randn(8, 64), gradient.randint(0, 1000, (8,)))
        loss.backward()
    """

    def __init__(self, in_features: int, n_classes: int, cutoffs, div_value: float = 4.0,
                 head_bias: bool = False, device=None, dtype=None):
        super().__init__()
        _check_size("AdaptiveLogSoftmaxWithLoss", "in_features", in_features)
        _check_size("AdaptiveLogSoftmaxWithLoss", "n_classes", n_classes)
        if isinstance(cutoffs, (str, bytes)):
            cutoffs = (cutoffs,)
        cutoffs = list(as_ints(cutoffs, "AdaptiveLogSoftmaxWithLoss: cutoffs"))
        if len(cutoffs) == 0:
            raise ArgumentValueError(
                "AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of length "
                "larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ArgumentValueError(
                "AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of unique, "
                "positive integers sorted in an increasing order, where each value is "
                f"between 1 and n_classes-1 ({n_classes - 1}), got {cutoffs}")
        factory = {"device": device, "dtype": dtype}
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value = as_number(div_value, "AdaptiveLogSoftmaxWithLoss: div_value")
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, **factory)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hidden = int(in_features // (div_value ** (i + 1)))
            size = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hidden, bias=False, **factory),
                                        Linear(hidden, size, bias=False, **factory)))

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for projection in self.tail:
            for layer in projection:
                layer.reset_parameters()

    def _batched(self, input, target=None):
        if target is None:
            if input.ndim not in (1, 2):
                raise ShapeError(f"AdaptiveLogSoftmaxWithLoss: expected a 1-d or 2-d input, got shape "
                                 f"{tuple(input.shape)}")
            return (input, True) if input.ndim == 2 else (input.unsqueeze(0), False)
        if target.ndim == 1:
            if input.ndim != 2:
                raise ShapeError(f"AdaptiveLogSoftmaxWithLoss: a 1-d target expects a 2-d input, got "
                                 f"shape {tuple(input.shape)}")
            if input.shape[0] != target.shape[0]:
                raise ShapeError(f"AdaptiveLogSoftmaxWithLoss: input and target should have the same "
                                 f"size in the batch dimension, got {input.shape[0]} and {target.shape[0]}")
            return input, True
        if target.ndim == 0:
            if input.ndim != 1:
                raise ShapeError(f"AdaptiveLogSoftmaxWithLoss: a 0-d target expects a 1-d input, got "
                                 f"shape {tuple(input.shape)}")
            return input.unsqueeze(0), False
        raise ShapeError("AdaptiveLogSoftmaxWithLoss: expected a 0-d or 1-d target (multi-target "
                         f"is not supported), got shape {tuple(target.shape)}")

    def forward(self, input, target):
        x, batched = self._batched(input, target)
        target = target.reshape(-1).long()
        if target.numel():
            lo, hi = int(target.min()), int(target.max())
            if lo < 0 or hi >= self.n_classes:
                raise IndexRangeError(
                    f"AdaptiveLogSoftmaxWithLoss: target values should be in "
                    f"[0, {self.n_classes - 1}], but values in range [{lo}, {hi}] were found")
        n = target.shape[0]
        output = _ops.zeros(n, dtype=x.dtype, device=x.device)
        # the column of the head each row reads: its class in the shortlist, else its cluster's
        head_column = target.clone()
        for i in range(1, len(self.cutoffs)):
            low, high = self.cutoffs[i - 1], self.cutoffs[i]
            rows = _ops.nonzero((target >= low) & (target < high)).reshape(-1)
            if rows.numel() == 0:
                continue
            head_column = _ops.index_fill(head_column, 0, rows, self.shortlist_size + i - 1)
            cluster_logprob = F.log_softmax(self.tail[i - 1](_ops.index_select(x, 0, rows)), dim=1)
            relative = (_ops.index_select(target, 0, rows) - low).unsqueeze(1)
            output = _ops.index_add(output, 0, rows, _ops.gather(cluster_logprob, 1, relative).squeeze(1))
        head_logprob = F.log_softmax(self.head(x), dim=1)
        output = output + _ops.gather(head_logprob, 1, head_column.unsqueeze(1)).squeeze(1)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _full_log_prob(self, x):
        head_logprob = F.log_softmax(self.head(x), dim=1)
        parts = [head_logprob[:, :self.shortlist_size]]
        for i, projection in enumerate(self.tail):
            cluster_logprob = F.log_softmax(projection(x), dim=1)
            parts.append(cluster_logprob + head_logprob[:, self.shortlist_size + i].unsqueeze(1))
        return _ops.cat(parts, dim=1)

    def log_prob(self, input):
        """The log-probabilities of every class, ``(N, n_classes)`` (or ``(n_classes,)``)."""
        x, batched = self._batched(input)
        out = self._full_log_prob(x)
        return out if batched else out.squeeze(0)

    def predict(self, input):
        """The most likely class of each row (``argmax`` of :meth:`log_prob`)."""
        return _ops.argmax(self.log_prob(input), dim=-1)
