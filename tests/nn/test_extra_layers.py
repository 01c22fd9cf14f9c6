"""EmbeddingBag, Fold/Unfold, LocalResponseNorm, Softmax2d, ChannelShuffle, the 3-d and
adaptive 3-d pools, MaxUnpool and LPPool against torch 2.13 on the same weights and inputs:
outputs, input gradients, parameter gradients, reprs, state_dict names and errors."""

import numpy as np
import pytest

import gradient
import gradient.nn as gnn
import gradient.nn.functional as F

torch = pytest.importorskip("torch")
tnn = torch.nn
TF = torch.nn.functional

R = np.random.default_rng(123)


def _pair(x, requires_grad=True):
    """The same float64 array as a gradient tensor and a torch tensor."""
    return (gradient.tensor(x, dtype=gradient.float64, requires_grad=requires_grad),
            torch.tensor(x, dtype=torch.float64, requires_grad=requires_grad))


def _ids(x):
    return gradient.tensor(np.asarray(x, dtype=np.int64)), torch.tensor(np.asarray(x, dtype=np.int64))


def _close(a, b, tol=1e-10, msg=""):
    a = a.detach().numpy() if hasattr(a, "detach") else a
    b = b.detach().numpy() if hasattr(b, "detach") else b
    assert a.shape == b.shape, f"{msg}: shape {a.shape} != {b.shape}"
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=msg)


def _backward_both(out_g, out_t):
    w = R.standard_normal(tuple(out_t.shape))
    (out_g * gradient.tensor(w, dtype=gradient.float64)).sum().backward()
    (out_t * torch.tensor(w, dtype=torch.float64)).sum().backward()


def _copy_module(ours, theirs):
    """Copy torch's parameters into ours (float64 both)."""
    theirs.double()
    state = {k: gradient.tensor(v.detach().numpy(), dtype=gradient.float64) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(state)
    return ours


# ---------------------------------------------------------------------- functional ops
def _x(*shape):
    return R.standard_normal(shape)


FUNCTIONAL = {
    "local_response_norm-3d": (lambda m, x: m.local_response_norm(x, 3), (2, 5, 7)),
    "local_response_norm-4d-even": (lambda m, x: m.local_response_norm(x, 4, alpha=0.1, beta=0.6, k=2.0), (2, 6, 3, 4)),
    "local_response_norm-5d": (lambda m, x: m.local_response_norm(x, 2, alpha=0.5), (1, 4, 2, 3, 2)),
    "channel_shuffle": (lambda m, x: m.channel_shuffle(x, 3), (2, 6, 3, 2)),
    "lp_pool1d": (lambda m, x: m.lp_pool1d(x.abs() + 0.1, 2.0, 3, stride=2), (2, 3, 9)),
    "lp_pool2d": (lambda m, x: m.lp_pool2d(x.abs() + 0.1, 3.0, (2, 3)), (2, 2, 6, 7)),
    "lp_pool2d-ceil": (lambda m, x: m.lp_pool2d(x.abs() + 0.1, 1.5, 3, stride=2, ceil_mode=True), (1, 2, 8, 8)),
    "lp_pool3d": (lambda m, x: m.lp_pool3d(x.abs() + 0.1, 2.0, 2), (1, 2, 4, 4, 4)),
    "adaptive_avg_pool3d": (lambda m, x: m.adaptive_avg_pool3d(x, (2, 3, None)), (2, 2, 5, 7, 3)),
    "adaptive_max_pool3d": (lambda m, x: m.adaptive_max_pool3d(x, (3, 2, 2)), (1, 2, 5, 4, 6)),
    "adaptive_max_pool3d-unbatched": (lambda m, x: m.adaptive_max_pool3d(x, 2), (2, 5, 4, 3)),
    "max_pool3d": (lambda m, x: m.max_pool3d(x, 2, stride=1, padding=1), (1, 2, 3, 4, 4)),
    "avg_pool3d": (lambda m, x: m.avg_pool3d(x, 3, stride=2, padding=1, count_include_pad=False), (1, 2, 5, 5, 5)),
    "fold": (lambda m, x: m.fold(x, (4, 5), (2, 2)), (2, 3 * 4, 12)),
    "unfold": (lambda m, x: m.unfold(x, (2, 3), padding=1, stride=2), (2, 3, 5, 6)),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
def test_functional_matches_torch(name):
    fn, shape = FUNCTIONAL[name]
    xg, xt = _pair(_x(*shape))
    og, ot = fn(F, xg), fn(TF, xt)
    _close(og, ot, msg=name)
    _backward_both(og, ot)
    _close(xg.grad, xt.grad, msg=name + " grad")


def test_adaptive_max_pool3d_indices_match_torch():
    xg, xt = _pair(_x(2, 2, 5, 6, 7), requires_grad=False)
    (vg, ig), (vt, it) = F.adaptive_max_pool3d(xg, (2, 3, 4), True), TF.adaptive_max_pool3d(xt, (2, 3, 4), True)
    _close(vg, vt)
    np.testing.assert_array_equal(ig.numpy(), it.numpy())


@pytest.mark.parametrize("d,shape,kwargs", [
    (1, (2, 3, 9), dict(kernel_size=2)),
    (1, (2, 3, 9), dict(kernel_size=3, stride=2, padding=1)),
    (2, (2, 3, 6, 8), dict(kernel_size=2)),
    (2, (1, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1)),
    (3, (1, 2, 4, 4, 6), dict(kernel_size=2)),
])
def test_max_unpool_inverts_max_pool_like_torch(d, shape, kwargs):
    x = _x(*shape)
    pool_t = getattr(TF, f"max_pool{d}d")
    y, idx = pool_t(torch.tensor(x), return_indices=True, **kwargs)
    yg, yt = _pair(y.numpy())
    ig = gradient.tensor(idx.numpy())
    unpool_g, unpool_t = getattr(F, f"max_unpool{d}d"), getattr(TF, f"max_unpool{d}d")
    og, ot = unpool_g(yg, ig, **kwargs), unpool_t(yt, idx, **kwargs)
    _close(og, ot)
    _backward_both(og, ot)
    _close(yg.grad, yt.grad)
    # output_size restores an odd size that the default formula rounds away
    size = shape[2:]
    og, ot = unpool_g(yg, ig, output_size=size, **kwargs), unpool_t(yt, idx, output_size=size, **kwargs)
    _close(og, ot)


def test_max_unpool_errors():
    y, idx = gradient.randn(1, 1, 2, 2), gradient.tensor([[[[0, 1], [2, 3]]]])
    with pytest.raises(ValueError, match="output_size"):
        F.max_unpool2d(y, idx, 2, output_size=(9, 9))
    with pytest.raises(IndexError, match="out of range"):
        F.max_unpool2d(y, gradient.tensor([[[[0, 1], [2, 99]]]]), 2)
    with pytest.raises(Exception, match="shape"):
        F.max_unpool2d(y, gradient.tensor([[[0, 1]]]), 2)


def test_channel_shuffle_and_lrn_errors():
    with pytest.raises(ValueError, match="divisible"):
        F.channel_shuffle(gradient.randn(1, 5, 2), 2)
    with pytest.raises(Exception, match="3 dimensions"):
        F.local_response_norm(gradient.randn(2, 5), 3)


# ---------------------------------------------------------------------- embedding_bag
BAG_CASES = {
    "2d-mean": dict(input=[[1, 2, 4], [4, 3, 9]], mode="mean"),
    "2d-sum-padding": dict(input=[[1, 0, 4], [0, 0, 9]], mode="sum", padding_idx=0),
    "2d-max": dict(input=[[1, 2, 4], [4, 3, 9]], mode="max"),
    "offsets-sum": dict(input=[1, 2, 4, 5, 4, 3, 2, 9], offsets=[0, 3, 3, 5], mode="sum"),
    "offsets-mean-padding": dict(input=[1, 2, 0, 5, 0, 0, 2, 9], offsets=[0, 4, 6], mode="mean", padding_idx=0),
    "offsets-max-empty": dict(input=[1, 2, 4, 5, 4, 3], offsets=[0, 2, 2, 5], mode="max"),
    "offsets-max-padding": dict(input=[1, 2, 4, 5, 4, 3], offsets=[0, 2, 4], mode="max", padding_idx=4),
    "include-last-offset": dict(input=[1, 2, 4, 5, 4, 3], offsets=[0, 2, 5, 6], mode="mean",
                                include_last_offset=True),
    "per-sample-weights": dict(input=[1, 2, 4, 5, 4, 3], offsets=[0, 2, 4], mode="sum", psw=True),
    "per-sample-weights-2d-padding": dict(input=[[1, 2, 7], [7, 3, 3]], mode="sum", psw=True, padding_idx=7),
}


def test_embedding_bag_scale_grad_by_freq_divides_by_each_ids_frequency():
    """As F.embedding's (torch's own embedding_bag CPU kernel scales some rows by the count of
    another id: [1, 1, 4, 1, 4, 3] gives row 3 a third of its gradient)."""
    ids, offsets = [1, 1, 4, 1, 4, 3], [0, 3]
    wg, wt = _pair(R.standard_normal((6, 2)))
    ig, it = _ids(ids)
    out_g = F.embedding_bag(ig, wg, gradient.tensor(offsets), mode="sum", scale_grad_by_freq=True)
    rows = TF.embedding(it, wt, scale_grad_by_freq=True)
    out_t = torch.stack([rows[:3].sum(0), rows[3:].sum(0)])
    _close(out_g, out_t)
    _backward_both(out_g, out_t)
    _close(wg.grad, wt.grad)


@pytest.mark.parametrize("name", sorted(BAG_CASES))
def test_embedding_bag_matches_torch(name):
    case = dict(BAG_CASES[name])
    weight = R.standard_normal((10, 4))
    wg, wt = _pair(weight)
    ig, it = _ids(case.pop("input"))
    og_off, ot_off = _ids(case.pop("offsets")) if "offsets" in case else (None, None)
    psw_g = psw_t = None
    if case.pop("psw", False):
        psw_g, psw_t = _pair(R.uniform(0.5, 2.0, tuple(it.shape)))
    og = F.embedding_bag(ig, wg, og_off, per_sample_weights=psw_g, **case)
    ot = TF.embedding_bag(it, wt, ot_off, per_sample_weights=psw_t, **case)
    _close(og, ot, msg=name)
    _backward_both(og, ot)
    _close(wg.grad, wt.grad, msg=name + " weight grad")
    if psw_g is not None:
        _close(psw_g.grad, psw_t.grad, msg=name + " per_sample_weights grad")


def test_embedding_bag_module_matches_torch():
    torch.manual_seed(0)
    theirs = tnn.EmbeddingBag(10, 3, mode="sum", padding_idx=2)
    ours = _copy_module(gnn.EmbeddingBag(10, 3, mode="sum", padding_idx=2, dtype=gradient.float64), theirs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ig, it = _ids([1, 2, 4, 5, 4, 3, 2, 9])
    og, ot = _ids([0, 4])
    out_g, out_t = ours(ig, og), theirs(it, ot)
    _close(out_g, out_t)
    _backward_both(out_g, out_t)
    _close(ours.weight.grad, theirs.weight.grad)
    # the padding row starts at zero
    fresh = gnn.EmbeddingBag(6, 2, padding_idx=-1)
    assert fresh.padding_idx == 5 and not fresh.weight[5].detach().numpy().any()
    for kwargs in (dict(), dict(mode="max", max_norm=1.0), dict(norm_type=1.0, scale_grad_by_freq=True)):
        assert repr(gnn.EmbeddingBag(10, 3, **kwargs)) == repr(tnn.EmbeddingBag(10, 3, **kwargs))
    pre = gnn.EmbeddingBag.from_pretrained(gradient.ones(4, 2), mode="sum")
    assert not pre.weight.requires_grad
    np.testing.assert_array_equal(pre(gradient.tensor([[0, 1]])).numpy(), [[2.0, 2.0]])


def test_embedding_bag_errors():
    w = gradient.randn(10, 3)
    with pytest.raises(ValueError, match="mode"):
        F.embedding_bag(gradient.tensor([[1]]), w, mode="median")
    with pytest.raises(NotImplementedError, match="per_sample_weights"):
        F.embedding_bag(gradient.tensor([[1, 2]]), w, mode="mean", per_sample_weights=gradient.ones(1, 2))
    with pytest.raises(ValueError, match="offsets"):
        F.embedding_bag(gradient.tensor([1, 2]), w)
    with pytest.raises(ValueError, match="offsets must be None"):
        F.embedding_bag(gradient.tensor([[1, 2]]), w, gradient.tensor([0]))
    with pytest.raises(ValueError, match=r"offsets\[0\]"):
        F.embedding_bag(gradient.tensor([1, 2]), w, gradient.tensor([1]))
    with pytest.raises(IndexError):
        F.embedding_bag(gradient.tensor([[1, 12]]), w)
    with pytest.raises(ValueError, match="mode"):
        gnn.EmbeddingBag(10, 3, mode="median")


# ---------------------------------------------------------------------- modules
MODULES = {
    "Fold": (lambda nn: nn.Fold(output_size=(4, 5), kernel_size=(2, 2)), (2, 12, 12)),
    "Fold-strided": (lambda nn: nn.Fold(5, 3, padding=1, stride=2), (1, 18, 9)),
    "Unfold": (lambda nn: nn.Unfold(kernel_size=3, padding=1), (2, 2, 4, 5)),
    "Unfold-dilated": (lambda nn: nn.Unfold((2, 2), dilation=2, stride=(1, 2)), (1, 3, 5, 6)),
    "LocalResponseNorm": (lambda nn: nn.LocalResponseNorm(3, alpha=0.01), (2, 5, 3, 3)),
    "Softmax2d": (lambda nn: nn.Softmax2d(), (2, 4, 3, 3)),
    "Softmax2d-unbatched": (lambda nn: nn.Softmax2d(), (4, 3, 3)),
    "ChannelShuffle": (lambda nn: nn.ChannelShuffle(2), (2, 4, 3)),
    "MaxPool3d": (lambda nn: nn.MaxPool3d(2), (1, 2, 4, 4, 4)),
    "AvgPool3d": (lambda nn: nn.AvgPool3d(2, stride=1), (1, 2, 3, 4, 4)),
    "AdaptiveAvgPool3d": (lambda nn: nn.AdaptiveAvgPool3d((1, 2, 3)), (2, 2, 4, 5, 6)),
    "AdaptiveMaxPool3d": (lambda nn: nn.AdaptiveMaxPool3d(2), (2, 2, 4, 5, 6)),
    "LPPool1d": (lambda nn: nn.LPPool1d(2, 3, stride=2), (2, 3, 10)),
    "LPPool2d": (lambda nn: nn.LPPool2d(1.5, 2), (2, 3, 6, 6)),
    "RReLU-eval": (lambda nn: nn.RReLU(0.1, 0.3).eval(), (3, 5)),
    "AlphaDropout-eval": (lambda nn: nn.AlphaDropout(0.3).eval(), (3, 5)),
    "FeatureAlphaDropout-eval": (lambda nn: nn.FeatureAlphaDropout(0.3).eval(), (2, 3, 5)),
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_matches_torch(name):
    make, shape = MODULES[name]
    ours, theirs = make(gnn), make(tnn)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    x = _x(*shape)
    if name.startswith("LPPool"):
        x = np.abs(x) + 0.1
    xg, xt = _pair(x)
    og, ot = ours(xg), theirs(xt)
    _close(og, ot, msg=name)
    _backward_both(og, ot)
    _close(xg.grad, xt.grad, msg=name + " grad")


@pytest.mark.parametrize("d", [1, 2])
def test_max_unpool_modules_match_torch(d):
    pool_t = getattr(tnn, f"MaxPool{d}d")(2, return_indices=True)
    ours, theirs = getattr(gnn, f"MaxUnpool{d}d")(2), getattr(tnn, f"MaxUnpool{d}d")(2)
    assert repr(ours) == repr(theirs)
    x = torch.tensor(_x(*((2, 3) + (5,) * d)))
    y, idx = pool_t(x)
    yg, yt = _pair(y.numpy())
    og = ours(yg, gradient.tensor(idx.numpy()), output_size=tuple(x.shape))
    ot = theirs(yt, idx, output_size=x.shape)
    _close(og, ot)
    _backward_both(og, ot)
    _close(yg.grad, yt.grad)


def test_layers_are_exported():
    for name in ("EmbeddingBag", "Fold", "Unfold", "LocalResponseNorm", "Softmax2d", "ChannelShuffle",
                 "RReLU", "AlphaDropout", "FeatureAlphaDropout", "MaxPool3d", "AvgPool3d",
                 "AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
                 "LPPool1d", "LPPool2d", "LPPool3d"):
        assert hasattr(gnn, name), name
        assert name in gnn.modules.__all__
    with pytest.raises(ValueError, match="3-d"):
        gnn.Softmax2d()(gradient.randn(2, 3))
