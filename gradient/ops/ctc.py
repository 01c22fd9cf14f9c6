"""Connectionist temporal classification: ``F.ctc_loss``, as ``torch.nn.functional.ctc_loss``.

The loss is ``-log p(target | input)``, summed over every alignment of the target to the input
frames (a path may repeat a label over consecutive frames and put blanks anywhere; a repeated
label needs a blank between its two copies). It is the forward ("alpha") recursion of Graves et
al. (2006) in log space, over the *extended* target ``blank l1 blank l2 ... blank`` of length
``2 S + 1``:

    alpha_t(s) = logsumexp(alpha_{t-1}(s), alpha_{t-1}(s-1), [alpha_{t-1}(s-2)]) + lp_t(ext[s])

where the ``s-2`` jump (skipping a blank) is allowed only onto a label that differs from the
label two places back. The recursion is vectorised over the batch and the extended positions;
only time is a Python loop. It starts from a virtual frame ``t = -1`` holding ``alpha = 0`` at
the first blank, so the first real frame is an ordinary step and an input of length 0 needs no
special case. A sample whose input is shorter than ``T`` keeps its alpha unchanged after its
last frame.

The gradient is autograd's, through the recursion: the exact derivative of the loss. Deliberate
difference from PyTorch: torch's CTC backward returns the gradient *as if* ``log_probs`` were the
output of ``log_softmax`` (it adds ``exp(log_probs)`` on every valid frame, a term that
``log_softmax``'s own backward removes again). So the gradients with respect to the logits fed
to ``log_softmax``, and hence to every parameter of a model, are the same as torch's; the
gradient with respect to ``log_probs`` itself differs by that term (and ours passes gradcheck,
torch's does not).

Example::

    >>> import gradient.nn.functional as F
    >>> logits = gradient.randn(50, 4, 20, requires_grad=True)      # (T, N, C)
    >>> targets = gradient.randint(1, 20, (4, 10))                   # padded (N, S)
    >>> loss = F.ctc_loss(logits.log_softmax(2), targets, [50, 45, 40, 50], [10, 8, 10, 3])
    >>> loss.backward()
"""

from __future__ import annotations

import numpy as np

from ..autograd.grad_mode import no_grad
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, ShapeError
from ..tensor import Tensor
from .creation import tensor
from .elementwise import clamp, exp, isinf, log, where
from .index import gather
from .reduce import amax, mean, sum as _sum
from .shape import cat, expand, stack

__all__ = ["ctc_loss"]
TENSOR_METHODS = ()

_NEG_INF = float("-inf")


def _lengths(name: str, lengths, batch: int) -> list:
    """``input_lengths``/``target_lengths`` (a tensor, a tuple or list, or an int for one
    unbatched sample) as a list of ``batch`` Python ints."""
    if isinstance(lengths, Tensor):
        if lengths.dtype.is_floating_point:
            raise DTypeError(f"ctc_loss: {name} must be integers, got {lengths.dtype}")
        values = lengths.reshape(-1).tolist()
    elif isinstance(lengths, (list, tuple)):
        values = [int(v) for v in lengths]
    else:
        values = [int(lengths)]
    if len(values) != batch:
        raise ShapeError(f"ctc_loss: expected {name} to have {batch} values (one per sample), "
                         f"got {len(values)}")
    if any(v < 0 for v in values):
        raise ShapeError(f"ctc_loss: {name} must be non-negative, got {values}")
    return values


def _padded_targets(targets: Tensor, target_lengths: list, batched: bool) -> np.ndarray:
    """The targets as an (N, S) int64 array, from the padded (N, S) form or from the
    concatenated 1-d form (batched inputs only, as in PyTorch)."""
    if not isinstance(targets, Tensor):
        raise ArgumentTypeError(
            f"ctc_loss: targets must be a Tensor, got {type(targets).__name__}")
    if targets.dtype.is_floating_point:
        raise DTypeError(f"ctc_loss: targets must be integers, got {targets.dtype}")
    values = np.asarray(targets.detach().cpu().numpy(), dtype=np.int64)
    n = len(target_lengths)
    width = max(target_lengths, default=0)
    if not batched:                      # (S,): one padded row
        values = values.reshape(1, -1)
    if values.ndim == 2:
        if values.shape[0] != n:
            raise ShapeError(f"ctc_loss: padded targets of shape {values.shape} must have one row "
                             f"per sample ({n})")
        if width > values.shape[1]:
            raise ShapeError(f"ctc_loss: a target length ({width}) exceeds the padded targets' "
                             f"width {values.shape[1]}")
        return values[:, :width]
    if values.ndim != 1:
        raise ShapeError(f"ctc_loss: targets must be padded (N, S) or concatenated 1-d, got shape "
                         f"{values.shape}")
    if sum(target_lengths) != values.shape[0]:
        raise ShapeError(f"ctc_loss: concatenated targets hold {values.shape[0]} labels but "
                         f"target_lengths sum to {sum(target_lengths)}")
    out = np.zeros((n, width), dtype=np.int64)
    starts = np.cumsum([0] + target_lengths[:-1])
    for i, (start, length) in enumerate(zip(starts, target_lengths)):
        out[i, :length] = values[start:start + length]
    return out


def _logsumexp_last(x: Tensor) -> Tensor:
    """``logsumexp`` over the last dimension that stays nan-free when every term is -inf.

    Unreachable alignment states hold -inf; the plain formula's backward would multiply their
    (zero) upstream gradient by ``exp(-inf - -inf) = nan``. Shifting by a detached maximum that
    is 0 when infinite, and selecting -inf with ``where`` instead of taking ``log(0)``, keeps
    every local derivative finite.
    """
    m = amax(x, dim=-1, keepdim=True).detach()
    m = where(isinf(m), 0.0, m)
    total = _sum(exp(x - m), dim=-1)
    reachable = total > 0
    return where(reachable, log(where(reachable, total, 1.0)) + m.squeeze(-1), _NEG_INF)


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """The CTC loss of ``log_probs`` ((T, N, C), or (T, C) for one sample; log-softmax outputs)
    against ``targets`` (padded (N, S), or the N targets concatenated in 1-d; (S,) unbatched),
    with the lengths as tensors or tuples. ``reduction='mean'`` divides each loss by its target
    length, then averages over the batch (as PyTorch); ``zero_infinity`` turns the infinite loss
    of an impossible alignment (a target too long for its input) and its gradient into zeros.

    See the module docstring for how the gradient w.r.t. ``log_probs`` differs from torch's
    (the gradients w.r.t. the logits before ``log_softmax`` agree).

    Example::

        >>> lp = gradient.randn(30, 2, 5).log_softmax(2)
        >>> F.ctc_loss(lp, gradient.tensor([[1, 2, 2], [3, 0, 0]]), (30, 20), (3, 1))
    """
    # (errors about lengths and labels are ShapeErrors: ValueErrors, and RuntimeErrors as in torch)
    if reduction not in ("none", "mean", "sum"):
        raise ArgumentValueError(
            f"ctc_loss: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    if log_probs.ndim not in (2, 3):
        raise ShapeError(f"ctc_loss: log_probs must be (T, N, C) or unbatched (T, C), got shape "
                         f"{tuple(log_probs.shape)}")
    if not log_probs.dtype.is_floating_point:
        raise DTypeError(f"ctc_loss: log_probs must be floating point, got {log_probs.dtype}")
    batched = log_probs.ndim == 3
    lp = log_probs if batched else log_probs.unsqueeze(1)
    T, N, C = lp.shape
    if not 0 <= blank < C:
        raise ShapeError(f"ctc_loss: blank must be a class index in [0, {C}), got {blank}")
    in_lens = _lengths("input_lengths", input_lengths, N)
    tgt_lens = _lengths("target_lengths", target_lengths, N)
    if any(v > T for v in in_lens):
        raise ShapeError(f"ctc_loss: input_lengths must be at most T = {T}, got {in_lens}")
    labels = _padded_targets(targets, tgt_lens, batched)
    for i, n in enumerate(tgt_lens):
        row = labels[i, :n]
        if ((row < 0) | (row >= C)).any():
            raise ShapeError(f"ctc_loss: target {i} holds labels outside [0, {C}): {row.tolist()}")
        labels[i, n:] = blank                          # whatever padding was there, unused

    # the extended targets `blank l1 blank l2 ... blank`, and where the s-2 jump is allowed
    S = labels.shape[1]
    L = 2 * S + 1
    ext = np.full((N, L), blank, dtype=np.int64)
    ext[:, 1::2] = labels
    skip = np.zeros((N, L), dtype=bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])

    dev = lp.device
    emissions = gather(lp, 2, expand(tensor(ext, device=dev).unsqueeze(0), (T, N, L)))  # (T, N, L)
    skip_t = tensor(skip, device=dev)
    in_lens_t = tensor(in_lens, device=dev).unsqueeze(1)                               # (N, 1)
    start = np.full((N, L), _NEG_INF)
    start[:, 0] = 0.0                              # the virtual frame t = -1: at the first blank
    alpha = tensor(start, dtype=lp.dtype, device=dev)
    pad1 = tensor(np.full((N, 1), _NEG_INF), dtype=lp.dtype, device=dev)
    pad2 = tensor(np.full((N, 2), _NEG_INF), dtype=lp.dtype, device=dev)
    for t in range(max(in_lens, default=0)):
        stay = alpha
        step = cat([pad1, alpha[:, :-1]], 1)
        jump = where(skip_t, cat([pad2, alpha[:, :-2]], 1), _NEG_INF)
        new = _logsumexp_last(stack([stay, step, jump], -1)) + emissions[t]
        alpha = where(in_lens_t > t, new, alpha)   # samples past their last frame keep alpha

    # a path ends on the last label or on the blank after it
    tl = np.asarray(tgt_lens, dtype=np.int64)
    ends = tensor(np.stack([2 * tl, np.maximum(2 * tl - 1, 0)], 1), device=dev)       # (N, 2)
    last = gather(alpha, 1, ends)
    last = where(tensor(np.stack([tl >= 0, tl > 0], 1), device=dev), last, _NEG_INF)
    loss = -_logsumexp_last(last)                                                      # (N,)
    if zero_infinity:
        loss = where(isinf(loss), 0.0, loss)
    if not batched:
        loss = loss.squeeze(0)
    if reduction == "mean":
        with no_grad():
            divisor = clamp(tensor(tgt_lens, dtype=lp.dtype, device=dev), min=1)
        return mean(loss / (divisor if batched else divisor.squeeze(0)))
    if reduction == "sum":
        return _sum(loss)
    return loss
