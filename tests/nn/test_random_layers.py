"""RReLU, gumbel_softmax, AlphaDropout and FeatureAlphaDropout: their random draws come from
gradient's default generator, so they are checked by their distributional properties, by
reproducibility under gradient.manual_seed, and against torch wherever no randomness is
involved (evaluation mode, and the values of kept / dropped elements)."""

import numpy as np
import pytest

import gradient
import gradient.nn as gnn
import gradient.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

R = np.random.default_rng(5)


def _g(x, requires_grad=False):
    return gradient.tensor(x, dtype=gradient.float64, requires_grad=requires_grad)


def _t(x, requires_grad=False):
    return torch.tensor(x, dtype=torch.float64, requires_grad=requires_grad)


# ---------------------------------------------------------------------- rrelu
def test_rrelu_eval_is_torchs_mean_slope_leaky_relu():
    x = R.standard_normal((4, 5))
    xg, xt = _g(x, True), _t(x, True)
    og, ot = F.rrelu(xg, 0.1, 0.4), TF.rrelu(xt, 0.1, 0.4)
    np.testing.assert_allclose(og.detach().numpy(), ot.detach().numpy(), rtol=1e-12)
    og.sum().backward()
    ot.sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    m = gnn.RReLU(0.1, 0.4).eval()
    np.testing.assert_allclose(m(_g(x)).numpy(), ot.detach().numpy(), rtol=1e-12)


def test_rrelu_training_draws_slopes_in_range_and_the_gradient_is_the_slope():
    gradient.manual_seed(0)
    x = -np.abs(R.standard_normal(100_000)) - 0.01
    xg = _g(np.concatenate([x, [1.5, 2.0]]), True)
    out = F.rrelu(xg, 0.2, 0.5, training=True)
    slopes = out.detach().numpy()[:-2] / x
    assert slopes.min() >= 0.2 and slopes.max() <= 0.5
    assert abs(slopes.mean() - 0.35) < 0.002 and abs(slopes.var() - 0.3 ** 2 / 12) < 1e-3
    np.testing.assert_array_equal(out.detach().numpy()[-2:], [1.5, 2.0])   # positives pass
    out.sum().backward()
    np.testing.assert_allclose(xg.grad.numpy()[:-2], slopes, rtol=1e-12)
    np.testing.assert_array_equal(xg.grad.numpy()[-2:], [1.0, 1.0])


def test_rrelu_is_reproducible_and_the_module_follows_training_mode():
    x = _g(R.standard_normal((3, 4)))
    m = gnn.RReLU()
    gradient.manual_seed(7)
    a = m(x)
    gradient.manual_seed(7)
    b = m(x)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    m.eval()
    np.testing.assert_allclose(m(x).numpy(), TF.rrelu(_t(x.numpy())).numpy(), rtol=1e-12)
    y = x.clone()
    F.rrelu_(y, training=False)
    np.testing.assert_allclose(y.numpy(), m(x).numpy())
    with pytest.raises(ValueError, match="lower"):
        F.rrelu(x, 0.5, 0.1, training=True)


# ---------------------------------------------------------------------- gumbel_softmax
def test_gumbel_softmax_soft_and_hard_samples():
    gradient.manual_seed(1)
    logits = _g(R.standard_normal((6, 5)), True)
    soft = F.gumbel_softmax(logits, tau=0.7)
    np.testing.assert_allclose(soft.detach().numpy().sum(-1), 1.0, rtol=1e-12)
    assert (soft.detach().numpy() > 0).all()
    gradient.manual_seed(1)
    hard = F.gumbel_softmax(logits, tau=0.7, hard=True)
    h = hard.detach().numpy()
    assert set(np.unique(h)) == {0.0, 1.0} and (h.sum(-1) == 1).all()
    # the same noise: the hard sample is the argmax of the soft one
    np.testing.assert_array_equal(h.argmax(-1), soft.detach().numpy().argmax(-1))
    # straight-through: the hard sample's gradient is the soft sample's
    w = _g(R.standard_normal((6, 5)))
    g_hard = gradient.autograd.grad((hard * w).sum(), logits)[0]
    g_soft = gradient.autograd.grad((soft * w).sum(), logits)[0]
    np.testing.assert_allclose(g_hard.numpy(), g_soft.numpy(), rtol=1e-12)


def test_gumbel_softmax_argmax_frequencies_are_the_softmax_probabilities():
    gradient.manual_seed(2)
    logits = np.array([0.5, -1.0, 1.5, 0.0])
    n = 50_000
    y = F.gumbel_softmax(_g(np.broadcast_to(logits, (n, 4)).copy()), tau=1.0, hard=True).numpy()
    probs = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(y.mean(0), probs, atol=0.01)
    # along another dim
    z = F.gumbel_softmax(_g(np.broadcast_to(logits[:, None], (4, 3)).copy()), dim=0).numpy()
    np.testing.assert_allclose(z.sum(0), 1.0, rtol=1e-12)


def test_gumbel_softmax_reproducible_and_errors():
    x = _g(R.standard_normal((2, 3)))
    gradient.manual_seed(3)
    a = F.gumbel_softmax(x)
    gradient.manual_seed(3)
    np.testing.assert_array_equal(a.numpy(), F.gumbel_softmax(x).numpy())
    with pytest.raises(ValueError, match="tau"):
        F.gumbel_softmax(x, tau=0.0)
    with pytest.raises(Exception, match="floating"):
        F.gumbel_softmax(gradient.tensor([1, 2]))


# ---------------------------------------------------------------------- alpha dropout
ALPHA = 1.7580993408473766


def _affine(p):
    a = ((ALPHA ** 2 * p + 1) * (1 - p)) ** -0.5
    return a, a * ALPHA * p, a * ALPHA * (p - 1)   # scale, shift of kept, value of dropped


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_alpha_dropout_keeps_zero_mean_unit_variance(p):
    gradient.manual_seed(4)
    n = 400_000
    x = R.standard_normal(n)
    y = F.alpha_dropout(_g(x), p, training=True).numpy()
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1) < 0.01
    a, shift, dropped = _affine(p)
    is_dropped = np.isclose(y, dropped, rtol=0, atol=1e-12)
    assert abs(is_dropped.mean() - p) < 0.005
    np.testing.assert_allclose(y[~is_dropped], a * x[~is_dropped] + shift, rtol=1e-12)


def test_alpha_dropout_matches_torchs_kept_and_dropped_values_and_gradient():
    p = 0.3
    x = R.standard_normal((50, 40))
    torch.manual_seed(0)
    yt = TF.alpha_dropout(_t(x), p, training=True).numpy()
    a, shift, dropped = _affine(p)
    kept_t = ~np.isclose(yt, dropped, rtol=0, atol=1e-12)
    np.testing.assert_allclose(yt[kept_t], a * x[kept_t] + shift, rtol=1e-12)   # torch's formula
    gradient.manual_seed(0)
    xg = _g(x, True)
    yg = F.alpha_dropout(xg, p, training=True)
    yg.sum().backward()
    kept_g = ~np.isclose(yg.detach().numpy(), dropped, rtol=0, atol=1e-12)
    np.testing.assert_allclose(xg.grad.numpy(), np.where(kept_g, a, 0.0), rtol=1e-12)


def test_feature_alpha_dropout_drops_whole_channels():
    gradient.manual_seed(6)
    p = 0.4
    x = R.standard_normal((64, 32, 3, 3))
    y = F.feature_alpha_dropout(_g(x), p, training=True).numpy()
    a, shift, dropped = _affine(p)
    channel_dropped = np.isclose(y, dropped, rtol=0, atol=1e-12).all(axis=(2, 3))
    kept = np.isclose(y, a * x + shift, rtol=1e-12).all(axis=(2, 3))
    assert (channel_dropped ^ kept).all()          # every channel is wholly one or the other
    assert abs(channel_dropped.mean() - p) < 0.03
    m = gnn.FeatureAlphaDropout(p)
    gradient.manual_seed(8)
    first = m(_g(x)).numpy()
    gradient.manual_seed(8)
    np.testing.assert_array_equal(first, m(_g(x)).numpy())


def test_alpha_dropout_edge_cases_and_modes():
    x = _g(R.standard_normal((3, 4)), True)
    assert F.alpha_dropout(x, 0.5, training=False) is x
    assert F.alpha_dropout(x, 0.0, training=True) is x
    np.testing.assert_array_equal(F.alpha_dropout(x, 1.0, training=True).detach().numpy(), 0.0)
    m = gnn.AlphaDropout(0.2)
    assert m.training and m(x) is not x
    m.eval()
    assert m(x) is x
    y = x.detach().clone()
    gradient.manual_seed(1)
    F.alpha_dropout(y, 0.2, training=True, inplace=True)
    gradient.manual_seed(1)
    np.testing.assert_array_equal(y.numpy(), F.alpha_dropout(x.detach(), 0.2, training=True).numpy())
    with pytest.raises(ValueError, match="probability"):
        F.alpha_dropout(x, 1.5, training=True)
    with pytest.raises(ValueError, match="probability"):
        gnn.AlphaDropout(-0.1)
