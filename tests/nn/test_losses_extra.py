"""Margin, embedding and likelihood losses (functional and layers) and the distance layers
against torch: values, input gradients, reductions, reprs and errors.

Inputs are float64 and kept away from the hinges' kinks, where the two frameworks could pick
different one-sided derivatives.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn
import gradient.nn.functional as GF
from gradient.errors import DTypeError, ShapeError

from .test_layers import assert_close

rng = np.random.default_rng(11)


def signs(*shape):
    return rng.choice([-1.0, 1.0], size=shape)


def away(x, kink, gap=0.05):
    """``x`` with values within ``gap`` of ``kink`` moved away from it."""
    x = x.copy()
    close = np.abs(x - kink) < gap
    x[close] = kink + np.where(x[close] >= kink, gap, -gap)
    return x


X1, X2 = rng.standard_normal((6,)), rng.standard_normal((6,))
Y6 = signs(6)
A, P, N = rng.standard_normal((5, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
SCORES = rng.standard_normal((4, 5))
CLS = np.array([0, 3, 4, 1])
ML_TARGET = np.array([[3, 0, -1, 1, 2], [1, -1, 0, 0, 0], [4, 4, 2, -1, 3], [-1, 0, 1, 2, 3]])
ML_SCORES = rng.standard_normal((4, 5)) * 0.3
MULTI_HOT = rng.integers(0, 2, (4, 5)).astype(np.float64)
MEAN, TGT, VAR = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.uniform(0.2, 2, (3, 4))
COUNTS = rng.integers(0, 6, (3, 4)).astype(np.float64)
RATE = rng.uniform(0.2, 3.0, (3, 4))


def _cos_dist(m):
    return lambda x, y: 1 - m.nn.functional.cosine_similarity(x, y)


# (id, functional name, args (arrays; float arrays named in `grad` get requires_grad), kwargs, grad)
CASES = [
    ("margin_ranking", "margin_ranking_loss", [away(X1 - X2, 0.0) + X2, X2, Y6], {}, (0, 1)),
    ("margin_ranking-margin", "margin_ranking_loss", [X1, X2, Y6], {"margin": 0.3}, (0, 1)),
    ("hinge_embedding", "hinge_embedding_loss", [away(np.abs(X1) * 2, 1.0), Y6], {}, (0,)),
    ("hinge_embedding-other-targets", "hinge_embedding_loss",
     [away(X1, 1.5), np.array([1.0, -1.0, 0.0, 2.0, 1.0, -1.0])], {"margin": 1.5}, (0,)),
    ("cosine_embedding", "cosine_embedding_loss", [A, P, signs(5)], {}, (0, 1)),
    ("cosine_embedding-margin", "cosine_embedding_loss", [A, P, signs(5)], {"margin": -0.2}, (0, 1)),
    ("cosine_embedding-1d", "cosine_embedding_loss", [A[0], P[0], np.array(-1.0)], {"margin": -0.5},
     (0, 1)),
    ("soft_margin", "soft_margin_loss", [SCORES, signs(4, 5)], {}, (0,)),
    ("multilabel_soft_margin", "multilabel_soft_margin_loss", [SCORES, MULTI_HOT], {}, (0,)),
    ("multilabel_soft_margin-3d", "multilabel_soft_margin_loss",
     [rng.standard_normal((2, 3, 5)), rng.integers(0, 2, (2, 3, 5)).astype(np.float64)], {}, (0,)),
    ("multi_margin", "multi_margin_loss", [SCORES, CLS], {}, (0,)),
    ("multi_margin-p2", "multi_margin_loss", [SCORES, CLS], {"p": 2, "margin": 0.7}, (0,)),
    ("multi_margin-1d", "multi_margin_loss", [SCORES[0], np.array(2)], {}, (0,)),
    ("multilabel_margin", "multilabel_margin_loss", [ML_SCORES, ML_TARGET], {}, (0,)),
    ("multilabel_margin-1d", "multilabel_margin_loss", [ML_SCORES[2], ML_TARGET[2]], {}, (0,)),
    ("triplet", "triplet_margin_loss", [A, P, N], {}, (0, 1, 2)),
    ("triplet-p1-swap", "triplet_margin_loss", [A, P, N], {"p": 1, "swap": True, "margin": 2.0},
     (0, 1, 2)),
    ("triplet-1d", "triplet_margin_loss", [A[0], P[0], N[0]], {"margin": 3.0}, (0, 1, 2)),
    ("triplet_distance", "triplet_margin_with_distance_loss", [A, P, N], {}, (0, 1, 2)),
    ("triplet_distance-swap", "triplet_margin_with_distance_loss", [A, P, N],
     {"swap": True, "margin": 1.5}, (0, 1, 2)),
    ("gaussian_nll", "gaussian_nll_loss", [MEAN, TGT, VAR], {}, (0, 1, 2)),
    ("gaussian_nll-full-row-var", "gaussian_nll_loss", [MEAN, TGT, VAR[:, 0]], {"full": True},
     (0, 1, 2)),
    ("gaussian_nll-size1-var", "gaussian_nll_loss", [MEAN, TGT, VAR[:1]], {}, (0, 1, 2)),
    ("gaussian_nll-clamped", "gaussian_nll_loss", [MEAN, TGT, VAR * 1e-3], {"eps": 1e-2}, (0, 1, 2)),
    ("poisson_nll", "poisson_nll_loss", [MEAN, COUNTS], {}, (0,)),
    ("poisson_nll-rate-full", "poisson_nll_loss", [RATE, COUNTS], {"log_input": False, "full": True},
     (0,)),
]


def _call(m, fname, arrays, kwargs, grad, reduction):
    tensors = [m.tensor(a, requires_grad=i in grad) for i, a in enumerate(arrays)]
    out = getattr(m.nn.functional, fname)(*tensors, **kwargs, reduction=reduction)
    return out, [tensors[i] for i in grad]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name,fname,arrays,kwargs,grad", CASES, ids=[c[0] for c in CASES])
def test_functional_matches_torch(name, fname, arrays, kwargs, grad, reduction):
    out_o, in_o = _call(gradient, fname, arrays, kwargs, grad, reduction)
    out_t, in_t = _call(torch, fname, arrays, kwargs, grad, reduction)
    assert_close(out_o, out_t, what="loss")
    upstream = rng.standard_normal(tuple(out_t.shape))
    (out_o * gradient.tensor(upstream)).sum().backward()
    (out_t * torch.tensor(upstream)).sum().backward()
    for i, (a, b) in enumerate(zip(in_o, in_t)):
        assert_close(a.grad, b.grad, what=f"grad of argument {grad[i]}")


def test_second_derivatives_match_torch():
    # compositions of differentiable ops: double backward comes for free; check one
    x_o = gradient.tensor(SCORES, requires_grad=True)
    x_t = torch.tensor(SCORES, requires_grad=True)
    for m, x in ((gradient, x_o), (torch, x_t)):
        loss = m.nn.functional.multilabel_soft_margin_loss(x, m.tensor(MULTI_HOT))
        (g,) = m.autograd.grad(loss, x, create_graph=True)
        (g * g).sum().backward()
    assert_close(x_o.grad, x_t.grad, what="double backward")


def test_triplet_with_custom_distance_function():
    outs = []
    for m in (gradient, torch):
        a, p, n = (m.tensor(v, requires_grad=True) for v in (A, P, N))
        loss = m.nn.functional.triplet_margin_with_distance_loss(a, p, n, distance_function=_cos_dist(m),
                                                                 margin=0.8)
        loss.backward()
        outs.append((loss, a.grad, n.grad))
    for o, t in zip(*outs):
        assert_close(o, t)


def test_weighted_margin_losses_match_torch():
    w = rng.uniform(0.5, 2.0, 5)
    for fname, args, kw in (("multi_margin_loss", (SCORES, CLS), {"p": 2}),
                            ("multilabel_soft_margin_loss", (SCORES, MULTI_HOT), {})):
        res = []
        for m in (gradient, torch):
            x = m.tensor(args[0], requires_grad=True)
            out = getattr(m.nn.functional, fname)(x, m.tensor(args[1]), weight=m.tensor(w), **kw)
            out.backward()
            res.append((out, x.grad))
        assert_close(res[0][0], res[1][0], what=fname)
        assert_close(res[0][1], res[1][1], what=fname + " grad")


MODULE_CASES = [
    ("MarginRankingLoss", lambda nn: nn.MarginRankingLoss(margin=0.2), [X1, X2, Y6]),
    ("HingeEmbeddingLoss", lambda nn: nn.HingeEmbeddingLoss(margin=2.0, reduction="sum"),
     [away(np.abs(X1) * 2, 2.0), Y6]),
    ("CosineEmbeddingLoss", lambda nn: nn.CosineEmbeddingLoss(margin=-0.1), [A, P, signs(5)]),
    ("SoftMarginLoss", lambda nn: nn.SoftMarginLoss(reduction="none"), [SCORES, signs(4, 5)]),
    ("MultiLabelSoftMarginLoss", lambda nn: nn.MultiLabelSoftMarginLoss(), [SCORES, MULTI_HOT]),
    ("MultiMarginLoss", lambda nn: nn.MultiMarginLoss(p=2, margin=0.5), [SCORES, CLS]),
    ("MultiLabelMarginLoss", lambda nn: nn.MultiLabelMarginLoss(), [ML_SCORES, ML_TARGET]),
    ("TripletMarginLoss", lambda nn: nn.TripletMarginLoss(margin=0.5, p=3.0, swap=True), [A, P, N]),
    ("TripletMarginWithDistanceLoss", lambda nn: nn.TripletMarginWithDistanceLoss(), [A, P, N]),
    ("GaussianNLLLoss", lambda nn: nn.GaussianNLLLoss(full=True), [MEAN, TGT, VAR]),
    ("PoissonNLLLoss", lambda nn: nn.PoissonNLLLoss(log_input=False, full=True), [RATE, COUNTS]),
    ("CosineSimilarity", lambda nn: nn.CosineSimilarity(dim=0, eps=1e-6), [A, P]),
    ("PairwiseDistance", lambda nn: nn.PairwiseDistance(p=1.5, keepdim=True), [A, P]),
]


@pytest.mark.parametrize("name,make,inputs", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_layers_match_torch(name, make, inputs):
    ours, theirs = make(gnn), make(torch.nn)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    xs_o = [gradient.tensor(x, requires_grad=x.dtype.kind == "f" and i == 0) for i, x in enumerate(inputs)]
    xs_t = [torch.tensor(x, requires_grad=x.dtype.kind == "f" and i == 0) for i, x in enumerate(inputs)]
    out_o, out_t = ours(*xs_o), theirs(*xs_t)
    assert_close(out_o, out_t, what="output")
    out_o.sum().backward()
    out_t.sum().backward()
    assert_close(xs_o[0].grad, xs_t[0].grad, what="input grad")


def test_layer_weights_are_buffers_like_torch():
    w = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    for cls in ("MultiMarginLoss", "MultiLabelSoftMarginLoss"):
        ours = getattr(gnn, cls)(weight=gradient.tensor(w))
        theirs = getattr(torch.nn, cls)(weight=torch.tensor(w))
        assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]


def test_legacy_size_average_flags():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = gnn.SoftMarginLoss(size_average=False)
        theirs = torch.nn.SoftMarginLoss(size_average=False)
    assert ours.reduction == theirs.reduction == "sum"


def test_pdist_matches_torch():
    x = rng.standard_normal((5, 3))
    x[3] = x[1]  # a zero distance: gradient 0, not nan
    for p in (2.0, 1.0, 0.5, 3.0, float("inf")):
        xo, xt = gradient.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        do, dt = GF.pdist(xo, p), torch.nn.functional.pdist(xt, p)
        assert_close(do, dt, what=f"pdist p={p}")
        up = rng.standard_normal(tuple(dt.shape))
        (do * gradient.tensor(up)).sum().backward()
        (dt * torch.tensor(up)).sum().backward()
        assert_close(xo.grad, xt.grad, what=f"pdist grad p={p}")
    assert tuple(GF.pdist(gradient.randn(1, 3)).shape) == (0,)
    assert tuple(gradient.pdist(gradient.randn(4, 2)).shape) == (6,)
    with pytest.raises(ShapeError, match="2-D"):
        GF.pdist(gradient.randn(3))


def test_bad_inputs_raise_clear_errors():
    t = gradient.tensor
    with pytest.raises(ValueError, match="reduction"):
        GF.soft_margin_loss(t(SCORES), t(SCORES), reduction="avg")
    with pytest.raises(ShapeError, match="same number of dimensions"):
        GF.margin_ranking_loss(t(X1), t(X2), t(np.ones((1, 6))))
    with pytest.raises(ShapeError, match="1-D target"):
        GF.cosine_embedding_loss(t(A), t(P), t(np.ones((5, 1))))
    with pytest.raises(ValueError, match="p == 1 and p == 2"):
        GF.multi_margin_loss(t(SCORES), t(CLS), p=3)
    with pytest.raises(ValueError, match="p == 1 and p == 2"):
        gnn.MultiMarginLoss(p=3)
    with pytest.raises(IndexError, match=r"\[0, 4\]"):
        GF.multi_margin_loss(t(SCORES), t(np.array([0, 5, 1, 1])))
    with pytest.raises(DTypeError, match="int64"):
        GF.multi_margin_loss(t(SCORES), t(CLS.astype(np.float32)))
    with pytest.raises(ShapeError, match="4 class indices"):
        GF.multi_margin_loss(t(SCORES), t(CLS[:3]))
    with pytest.raises(IndexError, match=r"\[-1, 4\]"):
        GF.multilabel_margin_loss(t(ML_SCORES), t(ML_TARGET - 2))
    with pytest.raises(ShapeError, match="input's shape"):
        GF.multilabel_margin_loss(t(ML_SCORES), t(ML_TARGET[:, :3]))
    with pytest.raises(ShapeError, match="same number of dimensions"):
        GF.triplet_margin_loss(t(A), t(P), t(N[0]))
    with pytest.raises(ValueError, match="greater than 0"):
        GF.triplet_margin_with_distance_loss(t(A), t(P), t(N), margin=0.0)
    with pytest.raises(ValueError, match="greater than 0"):
        gnn.TripletMarginLoss(margin=-1.0)
    with pytest.raises(ValueError, match="negative"):
        GF.gaussian_nll_loss(t(MEAN), t(TGT), t(-VAR))
    with pytest.raises(ValueError, match="negative"):
        GF.gaussian_nll_loss(t(MEAN), t(TGT), -1.0)
    with pytest.raises(ShapeError, match="incorrect size"):
        GF.gaussian_nll_loss(t(MEAN), t(TGT), t(VAR[:2, :2]))
    with pytest.raises(TypeError, match="target must be a Tensor"):
        GF.hinge_embedding_loss(t(X1), [1, -1])


def test_gaussian_nll_float_var_matches_torch():
    o = GF.gaussian_nll_loss(gradient.tensor(MEAN), gradient.tensor(TGT), 0.5)
    r = torch.nn.functional.gaussian_nll_loss(torch.tensor(MEAN), torch.tensor(TGT), 0.5)
    assert_close(o, r)
