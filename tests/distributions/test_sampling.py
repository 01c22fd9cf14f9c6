"""Sampling from gradient.distributions: shapes, moments, reparameterized gradients,
reproducibility under gradient.manual_seed, expand, and argument validation."""

import numpy as np
import pytest

import gradient
import gradient.distributions as gd


def _t(values):
    return gradient.tensor(np.asarray(values, dtype=np.float64), dtype=gradient.float64)


# name: a distribution with batch shape (2,) (event shape in the last entry)
DISTRIBUTIONS = {
    "Normal": lambda: gd.Normal(_t([0.0, 2.0]), _t([1.0, 0.5])),
    "LogNormal": lambda: gd.LogNormal(_t([0.0, 0.5]), _t([0.5, 0.25])),
    "Bernoulli": lambda: gd.Bernoulli(probs=_t([0.2, 0.7])),
    "Categorical": lambda: gd.Categorical(probs=_t([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])),
    "Uniform": lambda: gd.Uniform(_t([0.0, -1.0]), _t([1.0, 3.0])),
    "Exponential": lambda: gd.Exponential(_t([0.5, 2.0])),
    "Laplace": lambda: gd.Laplace(_t([0.0, 1.0]), _t([1.0, 0.5])),
    "Gumbel": lambda: gd.Gumbel(_t([0.0, 1.0]), _t([1.0, 2.0])),
    "Gamma": lambda: gd.Gamma(_t([0.5, 3.0]), _t([1.0, 2.0])),
    "Beta": lambda: gd.Beta(_t([0.5, 2.0]), _t([2.0, 3.0])),
    "Poisson": lambda: gd.Poisson(_t([0.5, 4.0])),
    "Binomial": lambda: gd.Binomial(_t([5.0, 20.0]), probs=_t([0.3, 0.6])),
    "Geometric": lambda: gd.Geometric(probs=_t([0.3, 0.8])),
    "StudentT": lambda: gd.StudentT(_t([5.0, 10.0]), _t([0.0, 1.0]), _t([1.0, 2.0])),
    "OneHotCategorical": lambda: gd.OneHotCategorical(probs=_t([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])),
    "Dirichlet": lambda: gd.Dirichlet(_t([[1.0, 2.0, 3.0], [0.5, 0.5, 4.0]])),
    "Independent": lambda: gd.Independent(gd.Normal(_t([[0.0, 1.0, 2.0]] * 2), _t([[1.0, 2.0, 0.5]] * 2)), 1),
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_sample_shape_is_sample_batch_event(name):
    d = DISTRIBUTIONS[name]()
    assert tuple(d.batch_shape) == (2,)
    for sample_shape in ((), (3,), (4, 5)):
        x = d.sample(sample_shape)
        assert tuple(x.shape) == tuple(sample_shape) + (2,) + tuple(d.event_shape)
        assert not x.requires_grad
    assert tuple(d.sample_n(3).shape) == (3, 2) + tuple(d.event_shape)


@pytest.mark.parametrize("name", sorted(set(DISTRIBUTIONS) - {"StudentT", "Categorical"}))
def test_large_sample_moments_match_mean_and_variance(name):
    """The sample mean within 5 standard errors of the mean, the sample variance within 10%."""
    gradient.manual_seed(1234)
    d = DISTRIBUTIONS[name]()
    n = 200_000
    x = d.sample((n,)).to(gradient.float64).numpy()
    mean, var = d.mean.numpy(), d.variance.numpy()
    assert np.all(np.abs(x.mean(0) - mean) < 5 * np.sqrt(var / n)), (x.mean(0), mean)
    np.testing.assert_allclose(x.var(0), var, rtol=0.1)
    # every draw lies in the support
    assert bool(d.support.check(gradient.tensor(x[:1000])).all())


def test_student_t_sample_moments():
    gradient.manual_seed(7)
    d = gd.StudentT(_t([8.0]), _t([1.0]), _t([2.0]))
    x = d.sample((200_000,)).numpy()
    assert abs(x.mean() - 1.0) < 0.03
    np.testing.assert_allclose(x.var(), float(d.variance), rtol=0.1)


@pytest.mark.parametrize("name", ["Normal", "Gamma", "Poisson", "Categorical", "Bernoulli", "Binomial",
                                  "Dirichlet", "Laplace"])
def test_manual_seed_makes_samples_reproducible(name):
    d = DISTRIBUTIONS[name]()
    gradient.manual_seed(3)
    a = d.sample((4,)).numpy()
    b = d.sample((4,)).numpy()
    gradient.manual_seed(3)
    c = d.sample((4,)).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b) or name == "Bernoulli"


def _leaf(values):
    return gradient.tensor(np.asarray(values, dtype=np.float64), dtype=gradient.float64, requires_grad=True)


def test_normal_rsample_gradient_is_the_reparameterization():
    loc, scale = _leaf([0.5, -1.0]), _leaf([2.0, 0.5])
    gradient.manual_seed(0)
    x = gd.Normal(loc, scale).rsample((1000,))
    x.sum().backward()
    eps = (x.detach() - loc.detach()) / scale.detach()
    np.testing.assert_allclose(loc.grad.numpy(), [1000.0, 1000.0])
    np.testing.assert_allclose(scale.grad.numpy(), eps.numpy().sum(0), rtol=1e-10)
    # the noise is a standard normal draw
    assert abs(eps.numpy().mean()) < 0.1 and abs(eps.numpy().std() - 1) < 0.1


@pytest.mark.parametrize("family", ["Laplace", "Cauchy", "Gumbel"])
def test_location_scale_rsample_gradients(family):
    loc, scale = _leaf([0.5, -1.0]), _leaf([2.0, 0.5])
    gradient.manual_seed(0)
    x = getattr(gd, family)(loc, scale).rsample((50,))
    (x * x).sum().backward()  # d/dloc = 2x, d/dscale = 2x * eps
    xd = x.detach().numpy()
    eps = (xd - loc.detach().numpy()) / scale.detach().numpy()
    np.testing.assert_allclose(loc.grad.numpy(), (2 * xd).sum(0), rtol=1e-10)
    np.testing.assert_allclose(scale.grad.numpy(), (2 * xd * eps).sum(0), rtol=1e-8)


def test_uniform_exponential_lognormal_rsample_gradients():
    low, high = _leaf([0.0, -1.0]), _leaf([1.0, 3.0])
    x = gd.Uniform(low, high).rsample((20,))
    x.sum().backward()
    u = (x.detach().numpy() - low.detach().numpy()) / (high - low).detach().numpy()
    np.testing.assert_allclose(low.grad.numpy(), (1 - u).sum(0), rtol=1e-10)
    np.testing.assert_allclose(high.grad.numpy(), u.sum(0), rtol=1e-10)

    rate = _leaf([0.5, 2.0])
    y = gd.Exponential(rate).rsample((20,))
    y.sum().backward()
    np.testing.assert_allclose(rate.grad.numpy(), (-y.detach().numpy() / rate.detach().numpy()).sum(0),
                               rtol=1e-10)

    loc, scale = _leaf([0.0, 0.5]), _leaf([0.5, 0.25])
    z = gd.LogNormal(loc, scale).rsample((20,))
    z.sum().backward()
    zd = z.detach().numpy()
    np.testing.assert_allclose(loc.grad.numpy(), zd.sum(0), rtol=1e-10)
    np.testing.assert_allclose(scale.grad.numpy(),
                               (zd * (np.log(zd) - loc.detach().numpy()) / scale.detach().numpy()).sum(0),
                               rtol=1e-8)


def test_non_reparameterized_distributions_have_no_rsample():
    for d in (gd.Bernoulli(probs=0.5), gd.Poisson(1.0), gd.Binomial(3, probs=0.5)):
        assert not d.has_rsample
        with pytest.raises(NotImplementedError):
            d.rsample()
    assert gd.Normal(0.0, 1.0).has_rsample and gd.Independent(gd.Normal(_t([0.0]), 1.0), 1).has_rsample


def test_expand_broadcasts_the_batch_shape():
    d = gd.Normal(_t([0.0, 1.0]), 1.0).expand((3, 2))
    assert tuple(d.batch_shape) == (3, 2)
    assert tuple(d.sample((4,)).shape) == (4, 3, 2)
    assert tuple(d.log_prob(_t(np.zeros((3, 2)))).shape) == (3, 2)
    c = gd.Categorical(logits=_t([0.0, 1.0, 2.0])).expand((5,))
    assert tuple(c.batch_shape) == (5,) and tuple(c.sample().shape) == (5,)
    assert tuple(gd.LogNormal(0.0, 1.0).expand((2,)).sample().shape) == (2,)


def test_invalid_parameters_raise_with_validation():
    with pytest.raises(ValueError, match="scale"):
        gd.Normal(0.0, -1.0)
    with pytest.raises(ValueError, match="probs"):
        gd.Bernoulli(probs=_t([1.5]))
    with pytest.raises(ValueError, match="probs"):
        gd.Categorical(probs=_t([0.5, -0.1, 0.6]))
    with pytest.raises(ValueError, match="concentration"):
        gd.Gamma(_t([-1.0]), 1.0)
    with pytest.raises(ValueError, match="not both"):
        gd.Bernoulli(probs=0.5, logits=0.0)
    gd.Normal(0.0, -1.0, validate_args=False)  # no check asked for


def test_values_outside_the_support_raise_with_validation():
    with pytest.raises(ValueError, match="support"):
        gd.Exponential(1.0).log_prob(_t(-1.0))
    with pytest.raises(ValueError, match="support"):
        gd.Bernoulli(probs=0.3).log_prob(_t(0.5))
    with pytest.raises(ValueError, match="support"):
        gd.Categorical(probs=_t([0.5, 0.5])).log_prob(gradient.tensor(2))
    # without validation the formula is applied as it is (PyTorch gives 1.0 too)
    assert float(gd.Exponential(1.0, validate_args=False).log_prob(_t(-1.0))) == 1.0


def test_categorical_sample_frequencies_match_probs():
    gradient.manual_seed(5)
    d = DISTRIBUTIONS["Categorical"]()
    x = d.sample((100_000,)).numpy()
    freq = np.stack([(x == k).mean(0) for k in range(3)], -1)
    np.testing.assert_allclose(freq, d.probs.numpy(), atol=0.01)


def test_set_default_validate_args_turns_checks_off_and_on():
    try:
        gd.Distribution.set_default_validate_args(False)
        gd.Normal(0.0, -1.0)
        gd.Exponential(1.0).log_prob(_t(-1.0))
    finally:
        gd.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        gd.Normal(0.0, -1.0)
    with pytest.raises(ValueError):
        gd.Distribution.set_default_validate_args("yes")


def test_probs_and_logits_are_computed_lazily_from_each_other():
    d = gd.Bernoulli(logits=_t([0.0, 2.0]))
    assert "probs" not in d.__dict__
    np.testing.assert_allclose(d.probs.numpy(), 1 / (1 + np.exp(-np.array([0.0, 2.0]))))
    c = gd.Categorical(probs=_t([1.0, 3.0]))  # normalized
    np.testing.assert_allclose(c.probs.numpy(), [0.25, 0.75])
    np.testing.assert_allclose(c.logits.numpy(), np.log([0.25, 0.75]))


def test_constraints_check_elementwise():
    from gradient.distributions import constraints
    x = _t([-1.0, 0.0, 0.5, 1.0, 2.0])
    assert constraints.positive.check(x).numpy().tolist() == [False, False, True, True, True]
    assert constraints.unit_interval.check(x).numpy().tolist() == [False, True, True, True, False]
    assert constraints.nonnegative_integer.check(x).numpy().tolist() == [False, True, False, True, True]
    assert constraints.simplex.check(_t([[0.2, 0.8], [0.5, 0.6]])).numpy().tolist() == [True, False]
    assert constraints.integer_interval(0, 2).check(x).numpy().tolist() == [False, True, False, True, True]
    assert constraints.is_dependent(gd.Uniform.arg_constraints["low"])
