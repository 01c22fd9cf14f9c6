"""Edge semantics of the losses and scaled_dot_product_attention, checked against PyTorch."""

import math

import numpy as np
import pytest

import gradient
import gradient.nn.functional as F
from gradient.errors import DTypeError, ShapeError

from ..backends.kernel_spy import without_kernel

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _pair(data, dtype="float32", requires_grad=False):
    a = np.asarray(data, dtype=dtype)
    return (gradient.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def _close(ours, theirs, **kw):
    kw.setdefault("rtol", 1e-6)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), **kw)


# ---------------------------------------------------------------------- stability
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_stable_for_huge_logits(smoothing):
    data = [[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]]
    g, t = _pair(data, requires_grad=True)
    target = [0, 0, 2]  # right, very wrong, very wrong
    lg = F.cross_entropy(g, gradient.tensor(target), label_smoothing=smoothing)
    lt = TF.cross_entropy(t, torch.tensor(target), label_smoothing=smoothing)
    lg.backward()
    lt.backward()
    assert np.isfinite(lg.item()) and np.isfinite(g.grad.numpy()).all()
    _close(lg, lt, rtol=1e-6)
    _close(g.grad, t.grad, atol=1e-6)


def test_cross_entropy_probability_targets_stable():
    g, t = _pair([[1e4, -1e4], [-1e4, 1e4]], requires_grad=True)
    p = [[0.25, 0.75], [1.0, 0.0]]
    lg = F.cross_entropy(g, gradient.tensor(p))
    lt = TF.cross_entropy(t, torch.tensor(p))
    lg.backward()
    lt.backward()
    _close(lg, lt, rtol=1e-6)
    _close(g.grad, t.grad, atol=1e-6)


def test_cross_entropy_minus_inf_logit_of_another_class_is_no_nan():
    # masking disallowed classes with -inf is common; the target's class stays finite
    g, t = _pair([[0.0, float("-inf"), 1.0]], requires_grad=True)
    lg = F.cross_entropy(g, gradient.tensor([2]))
    lt = TF.cross_entropy(t, torch.tensor([2]))
    lg.backward()
    lt.backward()
    _close(lg, lt, rtol=1e-6)
    _close(g.grad, t.grad, atol=1e-7)


def test_cross_entropy_rows_with_nan_or_inf_logits_as_torchs():
    # a nan logit makes its row's loss and gradient nan and leaves the others alone; +inf
    # somewhere in a row too (inf - inf), a row of -inf as well: every row as PyTorch gives it
    rows = [[0.5, float("nan"), 1.0], [float("nan"), 0.0, 2.0], [0.5, float("inf"), 1.0],
            [float("-inf")] * 3, [3.0, -1.0, 0.25]]
    g, t = _pair(rows, requires_grad=True)
    target = [0, 2, 1, 0, 2]
    lg = F.cross_entropy(g, gradient.tensor(target), reduction="none")
    lt = TF.cross_entropy(t, torch.tensor(target), reduction="none")
    lg.sum().backward()
    lt.sum().backward()
    np.testing.assert_allclose(lg.detach().numpy(), lt.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_ignored_row_with_minus_inf_logits_is_no_nan():
    # ignored positions read class 0 internally; a -inf there must not leak into loss or grad
    g, t = _pair([[float("-inf"), 0.0, 1.0], [0.5, 0.0, 1.0]], requires_grad=True)
    lg = F.cross_entropy(g, gradient.tensor([-100, 1]))
    lt = TF.cross_entropy(t, torch.tensor([-100, 1]))
    lg.backward()
    lt.backward()
    _close(lg, lt)
    _close(g.grad, t.grad, atol=1e-7)


def test_bce_with_logits_stable_for_huge_logits():
    g, t = _pair([1e4, -1e4, 50.0, -50.0], requires_grad=True)
    target = [0.0, 1.0, 1.0, 0.0]
    lg = F.binary_cross_entropy_with_logits(g, gradient.tensor(target), reduction="none")
    lt = TF.binary_cross_entropy_with_logits(t, torch.tensor(target), reduction="none")
    lg.sum().backward()
    lt.sum().backward()
    assert np.isfinite(lg.detach().numpy()).all()
    _close(lg, lt, rtol=1e-6)
    _close(g.grad, t.grad, atol=1e-7)


def test_bce_clamps_log_at_minus_100_and_matches_torch_grads():
    x = [0.0, 1.0, 0.5, 1e-30, 1.0 - 1e-7]
    tgt = [1.0, 0.0, 0.5, 1.0, 0.0]
    g, t = _pair(x, requires_grad=True)
    gt, tt = _pair(tgt, requires_grad=True)
    lg = F.binary_cross_entropy(g, gt, reduction="none")
    lt = TF.binary_cross_entropy(t, tt, reduction="none")
    np.testing.assert_allclose(lg.detach().numpy()[:2], [100.0, 100.0])
    _close(lg, lt, rtol=1e-6)
    lg.sum().backward()
    lt.sum().backward()
    # the input grad is (x - t) / max(x (1 - x), 1e-12): finite at the ends, as in PyTorch
    _close(g.grad, t.grad, rtol=1e-5)
    _close(gt.grad, tt.grad, rtol=1e-5)


# ---------------------------------------------------------------------- ignore_index
def test_all_targets_ignored_mean_is_nan_like_torch():
    g, t = _pair(np.ones((3, 4)), requires_grad=True)
    ignored = [-100, -100, -100]
    for fn, tfn in ((F.cross_entropy, TF.cross_entropy), (F.nll_loss, TF.nll_loss)):
        assert np.isnan(fn(g, gradient.tensor(ignored)).item())
        assert np.isnan(tfn(t, torch.tensor(ignored)).item())
        assert fn(g, gradient.tensor(ignored), reduction="sum").item() == 0.0
    assert np.isnan(F.cross_entropy(g, gradient.tensor(ignored), label_smoothing=0.2).item())


def test_ignored_positions_get_zero_grad_and_loss():
    g, t = _pair(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    target = [0, 2, 1, 2]
    lg = F.cross_entropy(g, gradient.tensor(target), ignore_index=2, reduction="none",
                         label_smoothing=0.3)
    lt = TF.cross_entropy(t, torch.tensor(target), ignore_index=2, reduction="none",
                          label_smoothing=0.3)
    _close(lg, lt, rtol=1e-5, atol=1e-6)
    assert lg.detach().numpy()[1] == 0 and lg.detach().numpy()[3] == 0
    lg.mean().backward()
    assert not g.grad.numpy()[[1, 3]].any()


def test_uint8_targets_accepted_like_torch():
    g, t = _pair(np.arange(6.0).reshape(2, 3))
    target = np.array([2, 0], dtype=np.uint8)
    _close(F.cross_entropy(g, gradient.tensor(target)), TF.cross_entropy(t, torch.tensor(target)))


def test_1d_input_with_size_1_target_like_torch():
    g, t = _pair([0.5, 1.5, -1.0])
    ours = F.cross_entropy(g, gradient.tensor([1]), reduction="none")
    assert ours.shape == TF.cross_entropy(t, torch.tensor([1]), reduction="none").shape == ()


# ---------------------------------------------------------------------- class-index fast path
# cross_entropy with class indices and no weight or label smoothing is one node
# (CrossEntropyIndex) whose backward is a node of its own; these check it against PyTorch
# through second derivatives, including the derivative with respect to the incoming gradient.
FAST_CASES = [
    ((6, 5), [0, 4, -100, 2, 2, 1], {}),
    ((6, 5), [0, 4, 3, 2, 2, 1], {"ignore_index": 2, "reduction": "none"}),
    ((6, 5), [0, 4, -1, 2, 2, -1], {"ignore_index": -1, "reduction": "sum"}),
    ((2, 3, 4), [[0, 1, 2, -100], [2, 2, 0, 1]], {}),
    ((2, 3, 2, 2), [[[0, 1], [2, 1]], [[1, 0], [-100, 2]]], {"reduction": "none"}),
    ((5,), 3, {}),
    ((5,), 3, {"reduction": "none"}),
]


@pytest.mark.parametrize("shape,target,kwargs", FAST_CASES)
def test_cross_entropy_fast_path_first_and_second_derivatives_match_torch(shape, target, kwargs):
    data = np.random.default_rng(1).standard_normal(shape)
    g, t = _pair(data, "float64", requires_grad=True)
    lg = F.cross_entropy(g, gradient.tensor(target), **kwargs)
    lt = TF.cross_entropy(t, torch.tensor(target), **kwargs)
    assert lg.grad_fn.name() == "CrossEntropyIndexBackward"
    assert lg.shape == tuple(lt.shape)
    _close(lg, lt, rtol=1e-12)
    v = np.random.default_rng(2).standard_normal(tuple(lt.shape))
    vg, vt = _pair(v, "float64", requires_grad=True)
    (dg,) = gradient.autograd.grad(lg, g, vg, create_graph=True)
    (dt,) = torch.autograd.grad(lt, t, vt, create_graph=True)
    _close(dg, dt, rtol=1e-10, atol=1e-14)
    # second derivatives, with respect to the logits and to the incoming gradient
    w = np.random.default_rng(3).standard_normal(shape)
    sg = (dg * gradient.tensor(w)).sum() + (dg * dg).sum()
    st = (dt * torch.tensor(w)).sum() + (dt * dt).sum()
    gg = gradient.autograd.grad(sg, (g, vg))
    gt = torch.autograd.grad(st, (t, vt))
    for a, b in zip(gg, gt):
        _close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy_fast_path_equals_the_composite_path(reduction):
    # a weight of ones takes the general path (log_softmax, gather, where), which must agree
    rng = np.random.default_rng(4)
    x = rng.standard_normal((64, 10)).astype(np.float32) * 5
    target = rng.integers(0, 10, 64)
    target[::7] = -100
    a = gradient.tensor(x, requires_grad=True)
    b = gradient.tensor(x, requires_grad=True)
    fast = F.cross_entropy(a, gradient.tensor(target), reduction=reduction)
    slow = F.cross_entropy(b, gradient.tensor(target), weight=gradient.ones(10),
                           reduction=reduction)
    assert fast.grad_fn.name() == "CrossEntropyIndexBackward"
    assert slow.grad_fn.name() != "CrossEntropyIndexBackward"
    # the CPU's fused kernel sums each row in another order than NumPy's: last bits differ
    np.testing.assert_allclose(fast.detach().numpy(), slow.detach().numpy(), rtol=1e-6, atol=1e-6)
    fast.sum().backward()
    slow.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-6, atol=1e-6)
    assert not a.grad.numpy()[::7].any()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cross_entropy_fast_path_low_precision_like_torch(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    target = [0, 5, 3, -100, 1, 1, 2, 4]
    g = gradient.tensor(x).to(getattr(gradient, dtype)).requires_grad_()
    t = torch.tensor(x).to(getattr(torch, dtype)).requires_grad_()
    lg = F.cross_entropy(g, gradient.tensor(target))
    lt = TF.cross_entropy(t, torch.tensor(target))
    assert lg.dtype is getattr(gradient, dtype)
    lg.backward()
    lt.backward()
    np.testing.assert_allclose(float(lg.item()), float(lt.item()), rtol=1e-2)
    np.testing.assert_allclose(g.grad.float().numpy(), t.grad.float().numpy(), atol=2e-3)



@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cross_entropy_low_precision_computes_in_float32_and_rounds_once(dtype):
    # like PyTorch's kernels: the loss of float16/bfloat16 logits is the float32 loss, rounded
    rng = np.random.default_rng(0)
    x = gradient.tensor(rng.standard_normal((16, 256)) * 3).to(getattr(gradient, dtype))
    target = gradient.tensor(rng.integers(0, 256, 16))
    for reduction in ("none", "sum"):
        ours = F.cross_entropy(x, target, reduction=reduction)
        once = F.cross_entropy(x.float(), target, reduction=reduction).to(x.dtype)
        np.testing.assert_array_equal(ours.float().numpy(), once.float().numpy())

def test_cross_entropy_fast_path_target_errors_and_in_place_check():
    x = gradient.ones(3, 4, requires_grad=True)
    with pytest.raises(IndexError, match=r"target -1 is out of bounds.*ignore_index=-100"):
        F.cross_entropy(x, gradient.tensor([0, -1, 1]))
    with pytest.raises(IndexError, match="target 7 is out of bounds"):
        F.cross_entropy(x, gradient.tensor([0, 7, 9]))
    assert F.cross_entropy(x, gradient.tensor([0, -1, 1]), ignore_index=-1).item() == \
        pytest.approx(math.log(4))
    # the saved logits are checked for in-place changes, as everywhere
    y = x * 1
    loss = F.cross_entropy(y, gradient.tensor([0, 1, 2]))
    y.add_(1)
    with pytest.raises(gradient.errors.AutogradError, match="in-place"):
        loss.backward()


# ---------------------------------------------------------------------- errors
def test_bad_reduction():
    x = gradient.ones(2, 3)
    with pytest.raises(ValueError, match="reduction must be 'none', 'mean', 'sum'; got 'avg'"):
        F.cross_entropy(x, gradient.tensor([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="mse_loss: reduction"):
        F.mse_loss(x, x, reduction="batchmean")
    for fn in (F.l1_loss, F.smooth_l1_loss, F.huber_loss, F.binary_cross_entropy_with_logits):
        with pytest.raises(ValueError, match="reduction"):
            fn(x, x, reduction="bad")
    with pytest.raises(ValueError, match="'batchmean'"):
        F.kl_div(x, x, reduction="bad")


def test_class_target_errors():
    x = gradient.ones(3, 4)
    with pytest.raises(IndexError, match=r"target 4 is out of bounds.*\[0, 3\]"):
        F.cross_entropy(x, gradient.tensor([0, 4, 1]))
    with pytest.raises(IndexError, match="target -1 is out of bounds"):
        F.nll_loss(x, gradient.tensor([0, -1, 1]))
    with pytest.raises(ShapeError, match=r"batch_size \(3\).*batch_size \(2\)"):
        F.cross_entropy(x, gradient.tensor([0, 1]))
    with pytest.raises(ShapeError,
                       match=r"expected target of shape \(2, 4\).*\(2, 3, 4\), got \(2, 3\)"):
        F.cross_entropy(gradient.ones(2, 3, 4), gradient.tensor([[0, 1, 2], [0, 0, 0]]))
    with pytest.raises(ShapeError, match="0-d target"):
        F.cross_entropy(gradient.ones(4), gradient.tensor([1, 2]))
    with pytest.raises(DTypeError, match="int64.*got gradient.int32"):
        F.cross_entropy(x, gradient.tensor([0, 1, 2], dtype=gradient.int32))
    with pytest.raises(DTypeError,
                       match=r"probability targets must have the input's shape \(3, 4\), got \(3,\)"):
        F.cross_entropy(x, gradient.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(DTypeError, match="must be floating point, got gradient.int64"):
        F.cross_entropy(x, gradient.zeros(3, 4, dtype=gradient.int64))
    with pytest.raises(ValueError, match="ignore_index=1 is not supported"):
        F.cross_entropy(x, gradient.ones(3, 4) / 4, ignore_index=1)
    with pytest.raises(ShapeError, match=r"weight .* 4 classes, got shape \(3,\)"):
        F.cross_entropy(x, gradient.tensor([0, 1, 2]), weight=gradient.ones(3))
    with pytest.raises(DTypeError, match="weight has dtype gradient.float64"):
        F.cross_entropy(x, gradient.tensor([0, 1, 2]),
                        weight=gradient.ones(4, dtype=gradient.float64))
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0, got 1.5"):
        F.cross_entropy(x, gradient.tensor([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(DTypeError, match="floating point input"):
        F.cross_entropy(gradient.ones(3, 4, dtype=gradient.int64), gradient.tensor([0, 1, 2]))
    with pytest.raises(ShapeError, match="0-d"):
        F.cross_entropy(gradient.tensor(1.0), gradient.tensor(0))


def test_pointwise_and_bce_errors():
    x = gradient.full((3,), 0.5)
    with pytest.raises(ShapeError,
                       match=r"target of shape \(3, 1\) must have the input's shape \(3,\)"):
        F.binary_cross_entropy(x, gradient.ones(3, 1))
    with pytest.raises(ShapeError, match="must have the input's shape"):
        F.binary_cross_entropy_with_logits(x, gradient.ones(3, 1))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(x + 1, gradient.ones(3))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(x * float("nan"), gradient.ones(3))
    with pytest.raises(DTypeError, match="target has dtype gradient.float64"):
        F.binary_cross_entropy(x, gradient.ones(3, dtype=gradient.float64))
    with pytest.raises(ShapeError, match=r"pos_weight of shape \(2,\) does not broadcast"):
        F.binary_cross_entropy_with_logits(x, x, pos_weight=gradient.ones(2))
    with pytest.raises(DTypeError, match="floating point"):
        F.mse_loss(gradient.ones(3, dtype=gradient.int64), gradient.ones(3, dtype=gradient.int64))
    with pytest.raises(ShapeError, match="weight of shape"):
        F.mse_loss(x, x, weight=gradient.ones(1))
    with pytest.raises(ValueError, match="beta must be non-negative"):
        F.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="delta must be positive"):
        F.huber_loss(x, x, delta=0.0)


def test_mismatched_pointwise_shapes_warn_and_broadcast_like_torch():
    g, t = _pair(np.arange(6.0).reshape(2, 3))
    gb, tb = _pair([1.0, 2.0, 3.0])
    with pytest.warns(UserWarning, match="different to the input size"):
        ours = F.mse_loss(g, gb)
    with pytest.warns(UserWarning):
        theirs = TF.mse_loss(t, tb)
    _close(ours, theirs)


def test_legacy_size_average_and_reduce():
    g, t = _pair(np.arange(6.0).reshape(2, 3))
    z = gradient.zeros(2, 3)
    with pytest.warns(UserWarning, match="deprecated"):
        assert F.mse_loss(g, z, size_average=False).item() == 55.0
    with pytest.warns(UserWarning):
        assert F.mse_loss(g, z, reduce=False).shape == (2, 3)


def test_l1_grad_zero_where_equal_like_torch():
    g, t = _pair([1.0, 2.0, 3.0], requires_grad=True)
    F.l1_loss(g, gradient.tensor([1.0, 0.0, 5.0])).backward()
    TF.l1_loss(t, torch.tensor([1.0, 0.0, 5.0])).backward()
    _close(g.grad, t.grad)
    assert g.grad.numpy()[0] == 0


def test_kl_div_zero_target_and_mean_warning():
    g, t = _pair(np.log([[0.2, 0.8], [0.5, 0.5]]))
    target = [[0.0, 1.0], [0.5, 0.5]]
    _close(F.kl_div(g, gradient.tensor(target), reduction="batchmean"),
           TF.kl_div(t, torch.tensor(target), reduction="batchmean"), rtol=1e-6)
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(g, gradient.tensor(target))


def test_result_dtypes_promote_like_torch():
    g32 = gradient.ones(2, 3)
    g64 = gradient.ones(2, 3, dtype=gradient.float64)
    assert F.mse_loss(g32, g64).dtype == gradient.float64
    assert F.cross_entropy(g32, g64 / 3).dtype == gradient.float64
    assert F.mse_loss(g32, gradient.ones(2, 3, dtype=gradient.int64)).dtype == gradient.float32


def test_double_backward_of_cross_entropy_matches_torch():
    data = np.random.default_rng(1).standard_normal((3, 4))
    g, t = _pair(data, "float64", requires_grad=True)
    target = [1, 3, -100]
    w = [0.5, 1.0, 2.0, 1.5]
    lg = F.cross_entropy(g, gradient.tensor(target), gradient.tensor(w, dtype=gradient.float64),
                         label_smoothing=0.1)
    lt = TF.cross_entropy(t, torch.tensor(target), torch.tensor(w, dtype=torch.float64),
                          label_smoothing=0.1)
    (gg,) = gradient.autograd.grad(lg, g, create_graph=True)
    (tg,) = torch.autograd.grad(lt, t, create_graph=True)
    (gg2,) = gradient.autograd.grad((gg * gg).sum(), g)
    (tg2,) = torch.autograd.grad((tg * tg).sum(), t)
    _close(gg2, tg2, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------- attention
def _qkv(*shapes, seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    return [_pair(rng.standard_normal(s), dtype, requires_grad=True) for s in shapes]


def test_sdpa_fully_masked_row_gives_zeros_and_zero_grads_like_torch():
    (gq, tq), (gk, tk), (gv, tv) = _qkv((2, 3, 4), (2, 5, 4), (2, 5, 4))
    mask = np.ones((3, 5), dtype=bool)
    mask[1] = False
    og = F.scaled_dot_product_attention(gq, gk, gv, gradient.tensor(mask))
    ot = TF.scaled_dot_product_attention(tq, tk, tv, torch.tensor(mask))
    _close(og, ot, atol=1e-6)
    assert not og.detach().numpy()[:, 1].any()
    og.sum().backward()
    ot.sum().backward()
    for a, b in ((gq, tq), (gk, tk), (gv, tv)):
        assert np.isfinite(a.grad.numpy()).all()
        _close(a.grad, b.grad, atol=1e-5)
    assert not gq.grad.numpy()[:, 1].any()
    # the same with an additive -inf mask, and with no key at all (S = 0)
    fmask = np.where(mask, 0.0, -np.inf).astype(np.float32)
    _close(F.scaled_dot_product_attention(gq, gk, gv, gradient.tensor(fmask)),
           TF.scaled_dot_product_attention(tq, tk, tv, torch.tensor(fmask)), atol=1e-6)
    empty = F.scaled_dot_product_attention(gq, gradient.zeros(2, 0, 4), gradient.zeros(2, 0, 4))
    assert empty.shape == (2, 3, 4) and not empty.detach().numpy().any()


def test_sdpa_causal_top_left_when_L_differs_from_S():
    (gq, tq), (gk, tk), (gv, tv) = _qkv((1, 2, 5, 3), (1, 2, 3, 3), (1, 2, 3, 3))
    og = F.scaled_dot_product_attention(gq, gk, gv, is_causal=True)
    _close(og, TF.scaled_dot_product_attention(tq, tk, tv, is_causal=True), atol=1e-6)
    # row 0 attends only to key 0, so it equals value row 0
    _close(og[..., 0, :], gv[..., 0, :], atol=1e-6)


def test_sdpa_gqa_needs_enable_gqa():
    (gq, _), (gk, _), (gv, _) = _qkv((1, 4, 3, 2), (1, 2, 3, 2), (1, 2, 3, 2))
    with pytest.raises(ShapeError, match="enable_gqa=True"):
        F.scaled_dot_product_attention(gq, gk, gv)
    with pytest.raises(ShapeError, match=r"key heads \(3\).*divide.*query heads \(4\)"):
        F.scaled_dot_product_attention(gq, gradient.ones(1, 3, 3, 2), gradient.ones(1, 3, 3, 2),
                                       enable_gqa=True)
    with pytest.raises(ShapeError, match="head dimension"):
        x = gradient.ones(3, 2)
        F.scaled_dot_product_attention(x, x, x, enable_gqa=True)


def test_sdpa_gqa_equals_repeated_heads():
    (gq, _), (gk, _), (gv, _) = _qkv((2, 6, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4))
    ours = F.scaled_dot_product_attention(gq, gk, gv, enable_gqa=True)
    rep = lambda t: gradient.tensor(np.repeat(t.detach().numpy(), 3, axis=1))  # noqa: E731
    _close(ours, F.scaled_dot_product_attention(gq, rep(gk), rep(gv)), atol=1e-6)


def test_sdpa_errors():
    q = gradient.ones(2, 3, 4)
    with pytest.raises(ValueError, match="either attn_mask or is_causal"):
        F.scaled_dot_product_attention(q, q, q, gradient.ones(3, 3, dtype=gradient.bool),
                                       is_causal=True)
    with pytest.raises(DTypeError, match="same dtype"):
        F.scaled_dot_product_attention(q, q.double(), q)
    with pytest.raises(DTypeError, match="attn_mask must be bool or have the query's dtype"):
        F.scaled_dot_product_attention(q, q, q, gradient.zeros(3, 3, dtype=gradient.float64))
    with pytest.raises(DTypeError, match="floating point"):
        F.scaled_dot_product_attention(q.long(), q.long(), q.long())
    with pytest.raises(ShapeError, match="same embedding size"):
        F.scaled_dot_product_attention(q, gradient.ones(2, 3, 5), q)
    with pytest.raises(ShapeError, match="same sequence length"):
        F.scaled_dot_product_attention(q, q, gradient.ones(2, 4, 4))
    with pytest.raises(ShapeError, match="at least 2-d"):
        F.scaled_dot_product_attention(gradient.ones(4), q, q)
    with pytest.raises(ShapeError, match=r"attn_mask of shape \(3, 2\) does not broadcast"):
        F.scaled_dot_product_attention(q, q, q, gradient.zeros(3, 2))
    with pytest.raises(ShapeError, match="batch dimensions"):
        F.scaled_dot_product_attention(q, gradient.ones(3, 3, 4), gradient.ones(3, 3, 4))
    with pytest.raises(ValueError, match="dropout_p must be between 0 and 1"):
        F.scaled_dot_product_attention(q, q, q, dropout_p=1.5)


def test_sdpa_dropout_is_deterministic_under_manual_seed():
    (gq, _), (gk, _), (gv, _) = _qkv((2, 4, 3), (2, 5, 3), (2, 5, 3))
    gradient.manual_seed(123)
    a = F.scaled_dot_product_attention(gq, gk, gv, dropout_p=0.3)
    b = F.scaled_dot_product_attention(gq, gk, gv, dropout_p=0.3)
    gradient.manual_seed(123)
    c = F.scaled_dot_product_attention(gq, gk, gv, dropout_p=0.3)
    np.testing.assert_array_equal(a.detach().numpy(), c.detach().numpy())
    assert not np.array_equal(a.detach().numpy(), b.detach().numpy())
    # the same mask is used in backward: grads are finite and reproducible
    a.sum().backward()
    g1 = gq.grad.numpy().copy()
    gq.grad = None
    gradient.manual_seed(123)
    F.scaled_dot_product_attention(gq, gk, gv, dropout_p=0.3).sum().backward()
    np.testing.assert_array_equal(g1, gq.grad.numpy())


def test_sdpa_dropout_statistics():
    # uniform attention (q = k = 0) over S keys and value = identity: the output *is* the
    # dropped attention matrix, each entry 0 with probability p, else 1 / (S (1 - p))
    p, S, L = 0.25, 50, 400
    q = gradient.zeros(L, 4)
    k = gradient.zeros(S, 4)
    v = gradient.eye(S)
    gradient.manual_seed(0)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=p).numpy()
    kept = out != 0
    assert abs(kept.mean() - (1 - p)) < 0.01      # 20000 draws: the std of the mean is 0.003
    np.testing.assert_allclose(out[kept], 1.0 / (S * (1 - p)), rtol=1e-6)
    assert abs(out.sum(-1).mean() - 1.0) < 0.01    # dropout preserves the expectation
    assert not F.scaled_dot_product_attention(q, k, v, dropout_p=1.0).numpy().any()


def test_sdpa_double_backward_matches_torch():
    (gq, tq), (gk, tk), (gv, tv) = _qkv((2, 3, 2), (2, 4, 2), (2, 4, 2), dtype="float64")
    mask = np.tril(np.ones((3, 4), dtype=bool))
    og = F.scaled_dot_product_attention(gq, gk, gv, gradient.tensor(mask), scale=0.7)
    ot = TF.scaled_dot_product_attention(tq, tk, tv, torch.tensor(mask), scale=0.7)
    gg = gradient.autograd.grad((og * og).sum(), (gq, gk, gv), create_graph=True)
    tg = torch.autograd.grad((ot * ot).sum(), (tq, tk, tv), create_graph=True)
    (gq2,) = gradient.autograd.grad(sum((g * g).sum() for g in gg), (gq,))
    (tq2,) = torch.autograd.grad(sum((g * g).sum() for g in tg), (tq,))
    _close(gq2, tq2, rtol=1e-9, atol=1e-12)


def test_sdpa_mask_cannot_enlarge_the_output_like_torch():
    q = gradient.ones(2, 3, 4)
    with pytest.raises(ShapeError, match=r"attn_mask of shape \(5, 2, 3, 3\) does not broadcast"):
        F.scaled_dot_product_attention(q, q, q, gradient.zeros(5, 2, 3, 3))


def test_sdpa_empty_embedding_like_torch():
    # E = 0: every score is 0, so each query averages the values (no 1 / sqrt(0) crash)
    (gq, tq), (gk, tk), (gv, tv) = _qkv((2, 3, 0), (2, 4, 0), (2, 4, 5))
    _close(F.scaled_dot_product_attention(gq, gk, gv), TF.scaled_dot_product_attention(tq, tk, tv))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["plain", "causal", "causal_rectangular", "gqa", "gqa_causal",
                                  "broadcast", "strided_keys"])
def test_attention_inference_path_equals_the_recorded_composition(dtype, case):
    """Without autograd, attention runs on raw arrays; it must give the composition's bits."""
    rng = np.random.default_rng(0)
    hq, hk = (6, 2) if "gqa" in case else (4, 4)
    q = rng.standard_normal((2, hq, 5, 8)).astype(dtype)
    k = rng.standard_normal((2, hk, 7 if "rectangular" in case else 5, 8)).astype(dtype)
    v = rng.standard_normal(k.shape[:-1] + (3,)).astype(dtype)
    if case == "broadcast":
        q = q[:1]
    kw = dict(is_causal="causal" in case, enable_gqa="gqa" in case, scale=0.3)

    def run(requires_grad):
        args = [gradient.tensor(a, requires_grad=requires_grad) for a in (q, k, v)]
        if case == "strided_keys":  # as a KV cache hands them over: a narrow view of a buffer
            buf = gradient.zeros(2, hk, 9, 8, dtype=args[1].dtype)
            with gradient.no_grad():
                buf[:, :, :5] = args[1]
            args[1] = buf.narrow(2, 0, 5)
        return F.scaled_dot_product_attention(*args, **kw).detach().numpy()

    fast = run(False)    # nothing to record: the raw-array path
    recorded = run(True)  # the differentiable composition
    if kw["is_causal"] and q.shape[-2] == k.shape[-2]:
        # a causal prompt takes the cache kernel, whose arithmetic per query row is a decode
        # step's (gradient.backends.cpu_attention), not the composition's: close, not equal
        tol = 1e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(fast, recorded, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(fast, recorded)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
def test_rms_norm_inference_path_equals_the_recorded_composition(dtype, affine, monkeypatch):
    # recorded, rms_norm runs the fused kernel when there is one: compare with the composition
    without_kernel(monkeypatch, "rms_norm")
    without_kernel(monkeypatch, "rms_norm_backward")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 16)).astype(dtype)
    w = rng.standard_normal(16).astype(dtype) if affine else None

    def run(requires_grad):
        weight = gradient.tensor(w, requires_grad=requires_grad) if affine else None
        out = F.rms_norm(gradient.tensor(x, requires_grad=requires_grad), (16,), weight, 1e-5)
        return out.detach().numpy()

    np.testing.assert_array_equal(run(False), run(True))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("affine", [True, False])
def test_rms_norm_of_16_bit_floats_is_one_kernel_in_float32_rounded_once(dtype, affine):
    """float16/bfloat16 inference runs the CPU's kernel once (no casts around it): the bits of
    the float32 norm (weight included) rounded once, as the recorded path computes them, and
    PyTorch's but for the rare value its float32 mean rounds to the other side."""
    half = getattr(gradient, dtype)
    rng = np.random.default_rng(3)
    x = gradient.tensor(rng.standard_normal((5, 7, 37)).astype(np.float32) * 4).to(half)
    w = gradient.tensor(rng.standard_normal(37).astype(np.float32)).to(half) if affine else None
    with gradient.kernels.trace() as t, gradient.no_grad():
        fast = F.rms_norm(x, (37,), w, 1e-6)
    assert t.calls("rms_norm") == {"numba": 1} and set(t.counts) == {("rms_norm", "numba")}
    assert fast.dtype is half
    wide = F.rms_norm(x.float(), (37,), None if w is None else w.float(), 1e-6)
    np.testing.assert_array_equal(fast.float().numpy(), wide.to(half).float().numpy())
    recorded = F.rms_norm(x.detach().requires_grad_(), (37,),
                          None if w is None else w.detach().requires_grad_(), 1e-6)
    np.testing.assert_array_equal(fast.float().numpy(), recorded.detach().float().numpy())
    theirs = torch.nn.functional.rms_norm(
        torch.tensor(x.float().numpy()).to(getattr(torch, dtype)), (37,),
        None if w is None else torch.tensor(w.float().numpy()).to(getattr(torch, dtype)), 1e-6)
    ours = torch.tensor(fast.float().numpy())
    assert (ours == theirs.float()).float().mean() > 0.995
    np.testing.assert_allclose(ours, theirs.float(), rtol=2.0 ** -7, atol=0)


def test_rms_norm_inference_path_takes_the_kernel_of_the_recorded_path():
    """With the CPU's kernel, inference and a recorded forward run the same kernel: the same
    bits, and the trace says so."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 16)).astype(np.float32), rng.standard_normal(16)
    w = w.astype(np.float32)

    def run(requires_grad):
        out = F.rms_norm(gradient.tensor(x, requires_grad=requires_grad), (16,),
                         gradient.tensor(w, requires_grad=requires_grad), 1e-5)
        return out.detach().numpy()
    with gradient.kernels.trace() as t:
        np.testing.assert_array_equal(run(False), run(True))
    assert t.calls("rms_norm") == {"numba": 2}
