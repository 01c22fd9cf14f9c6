"""F.ctc_loss and nn.CTCLoss against torch 2.13: values and gradients on random cases.

torch's CTC backward returns the gradient as if ``log_probs`` came from ``log_softmax``, so the
gradients compared with torch's are those w.r.t. the logits before ``log_softmax`` (what a
model's parameters see); the gradient w.r.t. ``log_probs`` itself is checked to be torch's minus
``exp(log_probs)`` times the upstream gradient on each sample's valid frames, and by gradcheck.
"""

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as nn
import gradient.nn.functional as F
from gradient.autograd import gradcheck


def _case(rng, T, N, C, S, blank=0, in_lens=None, tgt_lens=None, repeats=False):
    """Random logits (T, N, C), padded targets avoiding ``blank``, and lengths."""
    logits = rng.standard_normal((T, N, C))
    labels = [c for c in range(C) if c != blank]
    targets = rng.choice(labels, size=(N, S))
    if repeats:                                  # runs of one label need blanks between copies
        targets[:, 1] = targets[:, 0]
        targets[-1, :] = labels[0]
    in_lens = in_lens or [int(v) for v in rng.integers(T // 2 + S, T + 1, N)]
    tgt_lens = tgt_lens or [int(v) for v in rng.integers(0, S + 1, N)]
    return logits, targets, in_lens, tgt_lens


def _both(logits, targets, in_lens, tgt_lens, dtype, concat=False, unbatched=False, **kw):
    """(loss, grad w.r.t. logits, grad w.r.t. log_probs) from gradient and from torch, with the
    same random upstream gradient."""
    out = []
    for m, fn in ((gradient, F.ctc_loss), (torch, torch.nn.functional.ctc_loss)):
        dt = getattr(m, dtype)
        x = m.tensor(logits, dtype=dt, requires_grad=True)
        lp = x.log_softmax(-1)
        lp.retain_grad()
        if concat:
            tg = m.tensor(np.concatenate([targets[i, :n] for i, n in enumerate(tgt_lens)]))
        else:
            tg = m.tensor(targets if not unbatched else targets[0])
        il = m.tensor(in_lens) if not unbatched else m.tensor(in_lens[0])
        tl = m.tensor(tgt_lens) if not unbatched else m.tensor(tgt_lens[0])
        loss = fn(lp, tg, il, tl, **kw)
        up = np.random.default_rng(1).standard_normal(tuple(loss.shape))
        loss.backward(m.tensor(up, dtype=dt))
        out.append((loss.detach().numpy(), x.grad.numpy(), lp.grad.numpy(), lp.detach().numpy(), up))
    return out


def _check(ours, theirs, in_lens, unbatched, tol):
    loss, gx, glp, lp, up = ours
    tloss, tgx, tglp, _, _ = theirs
    assert loss.shape == tloss.shape and loss.dtype == tloss.dtype
    np.testing.assert_allclose(loss, tloss, rtol=tol, atol=tol)
    np.testing.assert_allclose(gx, tgx, rtol=tol, atol=tol)
    # torch's gradient w.r.t. log_probs = ours + exp(log_probs) * (per-sample upstream) on
    # valid frames; recover the per-sample upstream factor from the logits' gradient being equal
    if unbatched:
        lp, glp, tglp = lp[:, None], glp[:, None], tglp[:, None]
    T = lp.shape[0]
    valid = (np.arange(T)[:, None] < np.asarray(in_lens)[None, :])[..., None]
    # on valid frames, the torch gradient sums to 0 over classes; ours sums to -(per-sample factor)
    factor = -glp.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.where(valid, glp + np.exp(lp) * factor, 0.0), tglp,
                               rtol=tol, atol=tol)


CASES = [
    # (T, N, C, S, blank, kwargs for _case)
    dict(T=12, N=4, C=5, S=4),
    dict(T=10, N=3, C=6, S=3, repeats=True),
    dict(T=9, N=3, C=4, S=3, blank=3),                    # blank at the last index
    dict(T=15, N=5, C=7, S=5, blank=2, repeats=True),
    dict(T=6, N=2, C=3, S=2, tgt_lens=[0, 2]),             # an empty target
]


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 2e-5)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_matches_torch_padded(case, reduction, dtype, tol):
    logits, targets, in_lens, tgt_lens = _case(np.random.default_rng(case), **CASES[case])
    ours, theirs = _both(logits, targets, in_lens, tgt_lens, dtype, reduction=reduction,
                         blank=CASES[case].get("blank", 0))
    _check(ours, theirs, in_lens, False, tol)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_torch_concatenated_targets(reduction):
    logits, targets, in_lens, tgt_lens = _case(np.random.default_rng(7), 11, 4, 6, 4, repeats=True)
    ours, theirs = _both(logits, targets, in_lens, tgt_lens, "float64", concat=True,
                         reduction=reduction)
    _check(ours, theirs, in_lens, False, 1e-10)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_torch_unbatched(reduction):
    logits, targets, in_lens, tgt_lens = _case(np.random.default_rng(3), 8, 1, 5, 3,
                                               tgt_lens=[3])
    ours, theirs = _both(logits[:, 0], targets, in_lens, tgt_lens, "float64", unbatched=True,
                         reduction=reduction)
    assert ours[0].shape == ()
    _check(ours, theirs, in_lens, True, 1e-10)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 2e-5)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_zero_infinity_with_impossible_alignments(reduction, dtype, tol):
    # sample 0: 4 labels in 3 frames; sample 1: [2, 2, 2] needs 5 frames, gets 4;
    # sample 2 is possible
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((8, 3, 4))
    targets = np.array([[1, 2, 3, 1], [2, 2, 2, 0], [3, 1, 1, 0]])
    in_lens, tgt_lens = [3, 4, 8], [4, 3, 3]
    ours, theirs = _both(logits, targets, in_lens, tgt_lens, dtype, reduction=reduction,
                         zero_infinity=True)
    assert np.isfinite(ours[0]).all() and np.isfinite(ours[1]).all()
    _check(ours, theirs, in_lens, False, tol)
    if reduction == "none":
        assert ours[0][0] == 0 and ours[0][1] == 0 and ours[0][2] > 0
        assert (ours[1][:, :2] == 0).all()


def test_impossible_alignment_without_zero_infinity_is_inf():
    lp = np.log(np.full((3, 2, 4), 0.25))
    targets = np.array([[1, 1, 0], [1, 2, 3]])
    for m, fn in ((gradient, F.ctc_loss), (torch, torch.nn.functional.ctc_loss)):
        # [1, 1] needs 3 frames (1, blank, 1) and gets 2
        loss = fn(m.tensor(lp), m.tensor(targets), m.tensor([2, 3]), m.tensor([2, 3]),
                  reduction="none")
        assert np.isinf(loss.numpy()[0]) and loss.numpy()[0] > 0
        # [1, 2, 3] in 3 frames: one alignment, probability 0.25 ** 3
        np.testing.assert_allclose(loss.numpy()[1], 3 * np.log(4))


def test_zero_length_input():
    lp = np.log(np.full((4, 2, 3), 1 / 3))
    args = (np.array([[1], [1]]), [0, 4], [0, 1])
    ours = F.ctc_loss(gradient.tensor(lp), gradient.tensor(args[0]), *args[1:], reduction="none")
    theirs = torch.nn.functional.ctc_loss(torch.tensor(lp), torch.tensor(args[0]),
                                          torch.tensor(args[1]), torch.tensor(args[2]),
                                          reduction="none")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-12)


def test_lengths_as_tuples_and_tensors_agree():
    logits, targets, in_lens, tgt_lens = _case(np.random.default_rng(11), 10, 3, 5, 3)
    lp = gradient.tensor(logits).log_softmax(2)
    a = F.ctc_loss(lp, gradient.tensor(targets), tuple(in_lens), tuple(tgt_lens))
    b = F.ctc_loss(lp, gradient.tensor(targets), gradient.tensor(in_lens),
                   gradient.tensor(tgt_lens, dtype=gradient.int32))
    assert a.item() == b.item()


def test_gradcheck_wrt_log_probs():
    # the exact derivative of the loss in log_probs (which torch's backward is not)
    rng = np.random.default_rng(2)
    lp = gradient.tensor(rng.standard_normal((5, 2, 4)), requires_grad=True)
    targets = gradient.tensor([[1, 1], [2, 3]])
    assert gradcheck(lambda x: F.ctc_loss(x, targets, (5, 4), (2, 2), reduction="sum"), (lp,))


def test_module_matches_functional_and_torch():
    logits, targets, in_lens, tgt_lens = _case(np.random.default_rng(4), 10, 3, 6, 3, blank=5)
    for reduction in ("none", "mean", "sum"):
        ours = nn.CTCLoss(blank=5, reduction=reduction, zero_infinity=True)
        theirs = torch.nn.CTCLoss(blank=5, reduction=reduction, zero_infinity=True)
        assert repr(ours) == repr(theirs)
        a = ours(gradient.tensor(logits).log_softmax(2), gradient.tensor(targets),
                 gradient.tensor(in_lens), gradient.tensor(tgt_lens))
        b = theirs(torch.tensor(logits).log_softmax(2), torch.tensor(targets),
                   torch.tensor(in_lens), torch.tensor(tgt_lens))
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10)


@pytest.mark.parametrize("bad", [
    dict(input_lengths=(6, 5)),             # longer than T
    dict(target_lengths=(3, 1)),            # longer than the padded targets
    dict(blank=4),                          # not a class index
    dict(input_lengths=(5,)),               # one length for two samples
    dict(log_probs="4d"),
])
def test_errors_as_torch(bad):
    def call(m, fn):
        lp = m.zeros(5, 2, 4)
        kw = dict(log_probs=lp, targets=m.tensor([[1, 2], [1, 0]]), input_lengths=(5, 5),
                  target_lengths=(2, 1))
        kw.update(bad)
        if isinstance(kw["log_probs"], str):
            kw["log_probs"] = lp[None]
        for k in ("input_lengths", "target_lengths"):
            kw[k] = m.tensor(kw[k])
        return fn(**kw)

    with pytest.raises(RuntimeError):
        call(torch, torch.nn.functional.ctc_loss)
    with pytest.raises(RuntimeError):                  # gradient's ShapeError is one too
        call(gradient, F.ctc_loss)
    with pytest.raises(ValueError):
        call(gradient, F.ctc_loss)


def test_bad_reduction_and_dtypes():
    lp = gradient.zeros(5, 1, 3)
    with pytest.raises(ValueError):
        F.ctc_loss(lp, gradient.tensor([[1]]), (5,), (1,), reduction="avg")
    with pytest.raises(TypeError):
        F.ctc_loss(lp, gradient.tensor([[1.0]]), (5,), (1,))
    with pytest.raises(TypeError):
        F.ctc_loss(gradient.zeros(5, 1, 3, dtype=gradient.int64), gradient.tensor([[1]]), (5,), (1,))
