"""Reparameterized gamma draws and what is built on them (Gamma, Chi2, Beta, Dirichlet,
StudentT, FisherSnedecor ``rsample``): the implicit gradient against a 40-digit reference and
against PyTorch's, per draw where it is defined per draw, and in expectation elsewhere."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from scipy.special import gammaincinv

import gradient
import gradient.distributions as gd
from gradient.distributions.gamma import _wilson_hilferty_grad, standard_gamma_grad
from gradient.errors import AutogradError


def reference_grad(x: float, alpha: float) -> float:
    """``-(dP/dalpha) / (dP/dx)`` of the regularized incomplete gamma function, in 40 digits."""
    with mpmath.workdps(40):
        x, alpha = mpmath.mpf(x), mpmath.mpf(alpha)
        dp_dalpha = mpmath.diff(lambda a: mpmath.gammainc(a, 0, x, regularized=True), alpha)
        density = x ** (alpha - 1) * mpmath.exp(-x) / mpmath.gamma(alpha)
        return float(-dp_dalpha / density)


# alphas on both sides of 1e6 (where the series hands over to Wilson-Hilferty), draws from
# low to high quantiles (and a tiny one: the clamped draw of a small concentration)
CASES = [(alpha, float(q)) for alpha in (0.01, 0.3, 1.0, 2.5, 9.0, 70.0, 1500.0, 4e5, 1.2e6)
         for q in (0.02, 0.5, 0.97)] + [(0.02, 1e-200)]


def quantile(alpha: float, q: float) -> float:
    return q if q < 1e-100 else float(gammaincinv(alpha, q))


@pytest.mark.parametrize("alpha,q", CASES)
def test_implicit_gradient_against_a_40_digit_reference(alpha, q):
    x = quantile(alpha, q)
    ours = standard_gamma_grad(np.array([x]), np.array([alpha]))[0]
    rtol = 1e-10 if alpha < 1e4 else 1e-9
    np.testing.assert_allclose(ours, reference_grad(x, alpha), rtol=rtol)


def test_the_large_concentration_approximation_against_the_reference():
    # from alpha = 1e6 on the derivative of the Wilson-Hilferty approximation replaces the
    # series (whose length grows with sqrt(alpha)); its error falls as alpha grows
    for q in (0.02, 0.5, 0.97):
        x = quantile(1.2e6, q)
        np.testing.assert_allclose(_wilson_hilferty_grad(np.array([x]), np.array([1.2e6]))[0],
                                   reference_grad(x, 1.2e6), rtol=3e-11)


def test_implicit_gradient_against_torch():
    rng = np.random.default_rng(0)
    alpha = np.repeat([0.05, 0.7, 3.0, 25.0, 400.0], 40)
    x = np.maximum(rng.gamma(alpha), np.finfo(np.float64).tiny)
    theirs = torch._standard_gamma_grad(torch.tensor(alpha), torch.tensor(x)).numpy()
    # PyTorch approximates the derivative (to ~1e-4); ours is the series, to ~1e-11
    np.testing.assert_allclose(standard_gamma_grad(x, alpha), theirs, rtol=5e-4, atol=1e-300)


def test_gamma_rsample_gradients_are_per_draw():
    gradient.manual_seed(0)
    conc = gradient.tensor([0.4, 2.0, 30.0], dtype=gradient.float64, requires_grad=True)
    rate = gradient.tensor([1.0, 0.5, 3.0], dtype=gradient.float64, requires_grad=True)
    x = gd.Gamma(conc, rate).rsample((50,))
    assert x.shape == (50, 3) and x.requires_grad
    x.sum().backward()
    xd, c, r = x.detach().numpy(), conc.detach().numpy(), rate.detach().numpy()
    np.testing.assert_allclose(conc.grad.numpy(), (standard_gamma_grad(xd * r, c) / r).sum(0),
                               rtol=1e-10)
    np.testing.assert_allclose(rate.grad.numpy(), (-xd / r).sum(0), rtol=1e-10)


def test_sample_is_rsample_without_a_graph():
    conc = gradient.tensor([2.0, 3.0], requires_grad=True)
    gradient.manual_seed(3)
    drawn = gd.Gamma(conc, 1.0).sample((4,))
    gradient.manual_seed(3)
    rdrawn = gd.Gamma(conc, 1.0).rsample((4,))
    assert not drawn.requires_grad and rdrawn.requires_grad
    np.testing.assert_array_equal(drawn.numpy(), rdrawn.detach().numpy())


def mean_gradient(make, parameter, statistic, n=40000, seed=0):
    """The mean over ``n`` draws of the gradient of ``statistic(draw)`` for ``parameter``."""
    gradient.manual_seed(seed)
    statistic(make().rsample((n,))).sum().backward()
    return parameter.grad.numpy() / n


def leaf(values):
    return gradient.tensor(values, dtype=gradient.float64, requires_grad=True)


def test_expected_gradients_match_the_moments_derivatives():
    # each: d/dparameter of a moment, estimated by the mean of per-draw gradients; tolerance a
    # few standard errors of that mean (measured over seeds, all well inside)
    a = leaf([0.5, 2.0, 7.0])
    got = mean_gradient(lambda: gd.Gamma(a, 2.0), a, lambda x: x ** 2)
    np.testing.assert_allclose(got, (2 * a.detach().numpy() + 1) / 4, rtol=0.03)

    c = leaf([0.7, 2.0, 4.0])
    got = mean_gradient(lambda: gd.Dirichlet(c), c, lambda x: x[..., 0])
    c0, total = c.detach().numpy(), c.detach().numpy().sum()
    want = -c0[0] / total ** 2 * np.ones(3)
    want[0] += 1 / total                           # d/dc_j of E[x_0] = c_0 / sum(c)
    np.testing.assert_allclose(got, want, rtol=0.04, atol=2e-3)

    ab = leaf([2.0, 3.0])
    got = mean_gradient(lambda: gd.Beta(ab[0], ab[1]), ab, lambda x: x)
    np.testing.assert_allclose(got, [3 / 25, -2 / 25], rtol=0.05)

    df = leaf([6.0])
    got = mean_gradient(lambda: gd.StudentT(df, 0.0, 1.5), df, lambda x: x ** 2, n=200000)
    np.testing.assert_allclose(got, -2 * 1.5 ** 2 / (6.0 - 2) ** 2, rtol=0.15)

    d2 = leaf([9.0])
    got = mean_gradient(lambda: gd.FisherSnedecor(5.0, d2), d2, lambda x: x, n=200000)
    np.testing.assert_allclose(got, -2 / (9.0 - 2) ** 2, rtol=0.1)

    k = leaf([3.0])
    got = mean_gradient(lambda: gd.Chi2(k), k, lambda x: x)
    np.testing.assert_allclose(got, 1.0, rtol=0.03)


def test_has_rsample_as_torch():
    for ours, theirs in ((gd.Gamma(1.0, 1.0), torch.distributions.Gamma(1.0, 1.0)),
                         (gd.Beta(1.0, 2.0), torch.distributions.Beta(1.0, 2.0)),
                         (gd.Chi2(3.0), torch.distributions.Chi2(3.0)),
                         (gd.StudentT(3.0), torch.distributions.StudentT(3.0)),
                         (gd.FisherSnedecor(3.0, 4.0), torch.distributions.FisherSnedecor(3.0, 4.0)),
                         (gd.Dirichlet(gradient.ones(3)), torch.distributions.Dirichlet(torch.ones(3)))):
        assert ours.has_rsample == theirs.has_rsample is True


def test_second_derivative_is_refused_as_in_torch():
    a = leaf([2.0])
    x = gd.Gamma(a, 1.0).rsample()
    (g,) = gradient.autograd.grad(x.sum(), a, create_graph=True)
    with pytest.raises(AutogradError, match="not implemented, as in PyTorch"):
        g.sum().backward()


def test_float32_draws_get_float32_gradients():
    a = gradient.tensor([0.5, 5.0], requires_grad=True)
    x = gd.Gamma(a, 1.0).rsample((3,))
    x.sum().backward()
    assert x.dtype == gradient.float32 and a.grad.dtype == gradient.float32
    want = standard_gamma_grad(x.detach().numpy().astype(np.float64),
                               a.detach().numpy().astype(np.float64)).sum(0)
    np.testing.assert_allclose(a.grad.numpy(), want, rtol=1e-6)
