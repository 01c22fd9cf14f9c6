"""The distributions added after the first set (HalfNormal, HalfCauchy, Chi2, Weibull, Pareto,
VonMises, the relaxed Bernoulli/categorical, MixtureSameFamily, Multinomial, NegativeBinomial,
FisherSnedecor, Kumaraswamy) against torch.distributions
in float64: values and parameter gradients, then sampling shapes, moments and reproducibility."""

import math

import numpy as np
import pytest

import gradient
import gradient.distributions as gd

torch = pytest.importorskip("torch")
td = torch.distributions

from .torch_parity import (assert_gradients_match, assert_values_match, tensor as _tensor,  # noqa: E402
                           weighted_gradients)

R = np.random.default_rng(7)


def _pos(*shape, low=0.5, high=2.5):
    return R.uniform(low, high, size=shape)


def _real(*shape):
    return R.uniform(-2, 2, size=shape)


def _simplex(*shape):
    p = R.uniform(0.1, 1.0, size=shape)
    return p / p.sum(-1, keepdims=True)


def _get(D, name):
    """torch keeps the logit/log-space relaxed distributions in their submodules only."""
    if D is td:
        return getattr(td.relaxed_bernoulli if "Bernoulli" in name else td.relaxed_categorical, name)
    return getattr(D, name)


def _mixture(D, p):
    comp = D.Normal(p["loc"], p["scale"])
    return D.MixtureSameFamily(D.Categorical(probs=p["w"]), comp)


def _mixture_mvn(D, p):
    comp = D.Independent(D.Normal(p["loc"], p["scale"]), 1)
    return D.MixtureSameFamily(D.Categorical(logits=p["w"]), comp)


CONT = ["log_prob", "entropy", "mean", "variance", "cdf", "icdf"]
# name: (make(D, params), params, value, quantities, tolerance)
CASES = {
    "HalfNormal": (lambda D, p: D.HalfNormal(p["scale"]), {"scale": _pos(2, 3)}, _pos(2, 3),
                   CONT + ["stddev"], 1e-10),
    "HalfCauchy": (lambda D, p: D.HalfCauchy(p["scale"]), {"scale": _pos(4)}, _pos(4),
                   ["log_prob", "entropy", "cdf", "icdf", "mean", "variance"], 1e-10),
    "Chi2": (lambda D, p: D.Chi2(p["df"]), {"df": _pos(2, 3, low=1.0, high=6.0)}, _pos(2, 3),
             ["log_prob", "entropy", "mean", "mode", "variance", "df"], 1e-10),
    "Weibull": (lambda D, p: D.Weibull(p["scale"], p["concentration"]),
                {"scale": _pos(4), "concentration": _pos(4, low=1.2, high=3.0)}, _pos(4),
                CONT + ["mode"], 1e-10),
    "Pareto": (lambda D, p: D.Pareto(p["scale"], p["alpha"]),
               {"scale": _pos(4, high=1.0), "alpha": np.array([0.8, 1.5, 2.5, 4.0])},
               _pos(4, low=1.1, high=3.0), CONT + ["mode"], 1e-10),
    # PyTorch's Bessel functions are polynomial approximations (about 1e-7 relative)
    "VonMises": (lambda D, p: D.VonMises(p["loc"], p["concentration"]),
                 {"loc": _real(4), "concentration": np.array([0.3, 1.0, 4.0, 20.0])},
                 _real(4), ["log_prob", "mean", "mode", "variance"], 1e-6),
    "LogitRelaxedBernoulli": (
        lambda D, p: _get(D, "LogitRelaxedBernoulli")(p["t"], probs=p["probs"]),
        {"t": np.array(0.7), "probs": R.uniform(0.1, 0.9, size=(3,))}, _real(3), ["log_prob"], 1e-10),
    "RelaxedBernoulli": (lambda D, p: D.RelaxedBernoulli(p["t"], logits=p["logits"]),
                         {"t": np.array(0.5), "logits": _real(2, 3)}, R.uniform(0.05, 0.95, size=(2, 3)),
                         ["log_prob", "probs"], 1e-10),
    "ExpRelaxedCategorical": (
        lambda D, p: _get(D, "ExpRelaxedCategorical")(p["t"], logits=p["logits"]),
        {"t": np.array(0.8), "logits": _real(2, 4)}, np.log(_simplex(2, 4)), ["log_prob"], 1e-10),
    "RelaxedOneHotCategorical": (
        lambda D, p: D.RelaxedOneHotCategorical(p["t"], probs=p["probs"]),
        {"t": np.array(0.6), "probs": _simplex(3, 4)}, _simplex(3, 4), ["log_prob"], 1e-10),
    # 0.4995 and 0.5005 fall in the Taylor-expanded region around 1/2
    "ContinuousBernoulli-probs": (
        lambda D, p: D.ContinuousBernoulli(probs=p["probs"]),
        {"probs": np.array([0.1, 0.4995, 0.5005, 0.8])}, R.uniform(0.05, 0.95, size=(4,)),
        CONT, 1e-9),
    "ContinuousBernoulli-logits": (
        lambda D, p: D.ContinuousBernoulli(logits=p["logits"]),
        {"logits": _real(2, 3)}, R.uniform(0.05, 0.95, size=(2, 3)), ["log_prob", "entropy", "mean", "variance", "cdf", "probs"],
        1e-9),
    "MixtureSameFamily": (_mixture, {"w": _simplex(2, 3), "loc": _real(2, 3), "scale": _pos(2, 3)},
                          _real(5, 2), ["log_prob", "mean", "variance", "cdf"], 1e-10),
    "MixtureSameFamily-event": (
        _mixture_mvn, {"w": _real(3), "loc": _real(3, 2), "scale": _pos(3, 2)}, _real(4, 2),
        ["log_prob", "mean", "variance"], 1e-10),
    "Multinomial-probs": (lambda D, p: D.Multinomial(5, probs=p["probs"]),
                          {"probs": _simplex(2, 3)}, np.array([[1.0, 0, 4], [2, 2, 1]]),
                          ["log_prob", "mean", "variance", "probs"], 1e-10),
    "Multinomial-logits": (lambda D, p: D.Multinomial(3, logits=p["logits"]),
                           {"logits": _real(4)}, np.array([0.0, 1, 0, 2]),
                           ["log_prob", "mean", "variance", "logits"], 1e-10),
    "NegativeBinomial-probs": (lambda D, p: D.NegativeBinomial(p["r"], probs=p["probs"]),
                               {"r": _pos(2, 3, low=0.5, high=6.0),
                                "probs": R.uniform(0.1, 0.9, size=(2, 3))},
                               np.array([[0.0, 3, 7], [1, 12, 2]]),
                               ["log_prob", "mean", "mode", "variance", "logits"], 1e-10),
    "NegativeBinomial-logits": (lambda D, p: D.NegativeBinomial(p["r"], logits=p["logits"]),
                                {"r": _pos(4, low=0.5, high=6.0), "logits": _real(4)},
                                np.array([0.0, 2, 5, 9]), ["log_prob", "mean", "variance",
                                                            "probs"], 1e-10),
    # moments that do not exist are NaN (df2 <= 2, df1 <= 2, df2 <= 4): the first two entries
    "FisherSnedecor": (lambda D, p: D.FisherSnedecor(p["df1"], p["df2"]),
                       {"df1": np.array([1.5, 3.0, 6.0, 10.0]),
                        "df2": np.array([1.8, 3.5, 7.0, 12.0])}, _pos(4, low=0.2, high=3.0),
                       ["log_prob", "mean", "mode", "variance"], 1e-10),
    "Kumaraswamy": (lambda D, p: D.Kumaraswamy(p["a"], p["b"]),
                    {"a": np.array([0.7, 1.5, 2.0, 5.0]), "b": np.array([2.0, 0.8, 3.0, 1.5])},
                    R.uniform(0.05, 0.95, size=(4,)),
                    ["log_prob", "entropy", "mean", "mode", "variance"], 1e-10),
    "LogisticNormal": (lambda D, p: D.LogisticNormal(p["loc"], p["scale"]),
                       {"loc": _real(2, 3), "scale": _pos(2, 3)}, _simplex(2, 4), ["log_prob"],
                       1e-10),
}
ICDF = np.array([0.05, 0.3, 0.5, 0.9])


def _build(case, lib):
    make, params = CASES[case][:2]
    D = td if lib is torch else gd
    tensors = {k: _tensor(lib, v, requires_grad=True) for k, v in params.items()}
    return make(D, tensors), tensors


def _quantity(dist, name, lib, case):
    value = CASES[case][2]
    if name in ("log_prob", "cdf"):
        return getattr(dist, name)(_tensor(lib, value))
    if name == "icdf":
        p = np.broadcast_to(ICDF[:dist.batch_shape[-1]], tuple(dist.batch_shape)).copy()
        return dist.icdf(_tensor(lib, p))
    if name == "entropy":
        return dist.entropy()
    return getattr(dist, name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_values_match_torch(case):
    tol = CASES[case][4]
    assert_values_match(lambda lib: _build(case, lib), lambda d, name, lib: _quantity(d, name, lib, case),
                        CASES[case][3], rtol=tol, atol=tol, case=case)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_match_torch(case):
    ours, theirs = weighted_gradients(lambda lib: _build(case, lib),
                                      lambda d, name, lib: _quantity(d, name, lib, case),
                                      CASES[case][3], seed=3, case=case)
    tol = max(CASES[case][4], 1e-7)
    assert_gradients_match(ours, theirs, rtol=tol * 10, atol=tol, case=case)


def test_von_mises_entropy_matches_numerical_integration():
    k = np.array([0.3, 2.0, 10.0])
    d = gd.VonMises(gradient.zeros(3, dtype=gradient.float64), gradient.tensor(k, dtype=gradient.float64))
    x = np.linspace(-np.pi, np.pi, 200001)
    xs = gradient.tensor(np.broadcast_to(x[:, None], (x.size, 3)).copy(), dtype=gradient.float64)
    logp = d.log_prob(xs).numpy()
    expected = -np.trapezoid(np.exp(logp) * logp, x, axis=0)
    np.testing.assert_allclose(d.entropy().numpy(), expected, rtol=1e-8)


def test_multinomial_entropy_is_the_sum_over_every_count_vector():
    """Exact in float64 (every count vector of 5 draws in 3 categories enumerated); torch's
    takes lgamma(n + 1) of an integer tensor in float32 (2e-8 off), so it is compared at 1e-7."""
    import itertools
    probs = _simplex(2, 3)
    ours = gd.Multinomial(5, probs=gradient.tensor(probs)).entropy().numpy()
    theirs = td.Multinomial(5, probs=torch.tensor(probs)).entropy().numpy()
    counts = np.array([c for c in itertools.product(range(6), repeat=3) if sum(c) == 5], float)
    log_p = gd.Multinomial(5, probs=gradient.tensor(probs[:, None, :])).log_prob(
        gradient.tensor(counts)).numpy()
    np.testing.assert_allclose(ours, -(np.exp(log_p) * log_p).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(ours, theirs, rtol=1e-7)


def test_logistic_normal_samples_are_reparameterized_simplex_points():
    gradient.manual_seed(4)
    loc = gradient.zeros(2, 3, dtype=gradient.float64, requires_grad=True)
    d = gd.LogisticNormal(loc, gradient.ones(2, 3, dtype=gradient.float64))
    x = d.rsample((7,))
    assert tuple(x.shape) == (7, 2, 4) and tuple(d.event_shape) == (4,)
    np.testing.assert_allclose(x.detach().numpy().sum(-1), 1.0, rtol=1e-12)
    assert (x.detach().numpy() > 0).all()
    x[..., 0].sum().backward()
    assert loc.grad is not None and np.abs(loc.grad.numpy()).sum() > 0


# ---------------------------------------------------------------------- sampling
def _t(values):
    return gradient.tensor(np.asarray(values, dtype=np.float64), dtype=gradient.float64)


SAMPLERS = {
    "Multinomial": lambda: gd.Multinomial(6, probs=_t([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])),
    "NegativeBinomial": lambda: gd.NegativeBinomial(_t([2.5, 7.0]), probs=_t([0.3, 0.6])),
    "FisherSnedecor": lambda: gd.FisherSnedecor(_t([5.0, 12.0]), _t([14.0, 20.0])),
    "Kumaraswamy": lambda: gd.Kumaraswamy(_t([0.8, 3.0]), _t([2.0, 1.5])),
    "HalfNormal": lambda: gd.HalfNormal(_t([1.0, 2.5])),
    "Chi2": lambda: gd.Chi2(_t([3.0, 8.0])),
    "Weibull": lambda: gd.Weibull(_t([1.0, 2.0]), _t([1.5, 3.0])),
    "Pareto": lambda: gd.Pareto(_t([1.0, 2.0]), _t([5.0, 6.0])),
    "VonMises": lambda: gd.VonMises(_t([0.5, -3.0]), _t([4.0, 10.0])),
    "ContinuousBernoulli": lambda: gd.ContinuousBernoulli(probs=_t([0.2, 0.5])),
    "MixtureSameFamily": lambda: gd.MixtureSameFamily(
        gd.Categorical(probs=_t([[0.3, 0.7], [0.5, 0.5]])),
        gd.Normal(_t([[-1.0, 2.0], [0.0, 3.0]]), _t([[0.5, 1.0], [1.0, 0.2]]))),
    "MixtureSameFamily-event": lambda: gd.MixtureSameFamily(
        gd.Categorical(probs=_t([[0.3, 0.7], [0.5, 0.5]])),
        gd.Independent(gd.Normal(_t([[[-1.0, 0.0], [2.0, 1.0]]] * 2), _t([[[0.5, 1.0], [1.0, 0.2]]] * 2)), 1)),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sample_shapes_and_moments(name):
    gradient.manual_seed(2024)
    d = SAMPLERS[name]()
    for shape in ((), (3,), (2, 4)):
        assert tuple(d.sample(shape).shape) == shape + (2,) + tuple(d.event_shape)
    n = 200_000
    x = d.sample((n,)).numpy()
    if name == "VonMises":
        # the circular mean and variance: arg E[e^{ix}] and 1 - |E[e^{ix}]|
        z = np.exp(1j * x).mean(0)
        np.testing.assert_allclose(np.angle(z), d.mean.numpy(), atol=0.01)
        np.testing.assert_allclose(1 - np.abs(z), d.variance.numpy(), rtol=0.05)
        assert (x >= -math.pi).all() and (x < math.pi).all()
        return
    mean, var = d.mean.numpy(), d.variance.numpy()
    assert np.all(np.abs(x.mean(0) - mean) < 5 * np.sqrt(var / n)), (x.mean(0), mean)
    np.testing.assert_allclose(x.var(0), var, rtol=0.1)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_manual_seed_makes_samples_reproducible(name):
    gradient.manual_seed(5)
    a = SAMPLERS[name]().sample((4,)).numpy()
    gradient.manual_seed(5)
    b = SAMPLERS[name]().sample((4,)).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("family", ["HalfNormal", "HalfCauchy", "Weibull", "Pareto", "ContinuousBernoulli"])
def test_rsample_gradients_are_the_inverse_cdf_derivatives(family):
    """d x / d theta of a reparameterized draw x = icdf(u; theta) equals
    -(d cdf / d theta) / pdf at x (implicit differentiation), checked at the draws themselves."""
    gradient.manual_seed(11)
    params = {"HalfNormal": [1.3], "HalfCauchy": [0.7], "Weibull": [1.5, 2.0], "Pareto": [1.2, 3.0],
              "ContinuousBernoulli": [0.3]}[family]
    leaves = [gradient.tensor(v, dtype=gradient.float64, requires_grad=True) for v in params]
    d = getattr(gd, family)(*leaves)
    x = d.rsample((50,))
    grads = gradient.autograd.grad(x.sum(), leaves)
    xs = x.detach()
    leaves2 = [gradient.tensor(v, dtype=gradient.float64, requires_grad=True) for v in params]
    d2 = getattr(gd, family)(*leaves2)
    cdf_grads = gradient.autograd.grad(d2.cdf(xs), leaves2,
                                       grad_outputs=(1 / d2.log_prob(xs).exp()).detach())
    for g, c in zip(grads, cdf_grads):
        np.testing.assert_allclose(g.numpy(), -c.numpy(), rtol=1e-7)


def test_relaxed_samples_are_on_the_simplex_and_reparameterized():
    gradient.manual_seed(3)
    logits = gradient.tensor([[0.1, -0.3, 1.0]] * 2, dtype=gradient.float64, requires_grad=True)
    d = gd.RelaxedOneHotCategorical(gradient.tensor(0.5, dtype=gradient.float64), logits=logits)
    x = d.rsample((1000,))
    assert tuple(x.shape) == (1000, 2, 3)
    np.testing.assert_allclose(x.sum(-1).detach().numpy(), 1.0, rtol=1e-12)
    (x[..., 2]).sum().backward()
    assert logits.grad is not None and np.all(np.isfinite(logits.grad.numpy()))
    # at a low temperature the argmax frequencies approach the softmax probabilities
    gradient.manual_seed(4)
    cold = gd.RelaxedOneHotCategorical(gradient.tensor(0.05, dtype=gradient.float64), logits=logits.detach())
    freq = np.bincount(cold.sample((20000,))[:, 0].numpy().argmax(-1), minlength=3) / 20000
    probs = np.exp([0.1, -0.3, 1.0]) / np.exp([0.1, -0.3, 1.0]).sum()
    np.testing.assert_allclose(freq, probs, atol=0.02)
    gradient.manual_seed(4)
    b = gd.RelaxedBernoulli(gradient.tensor(0.1, dtype=gradient.float64), probs=_t([0.2, 0.9]))
    y = b.sample((20000,)).numpy()
    assert ((y > 0) & (y < 1)).all()
    np.testing.assert_allclose((y > 0.5).mean(0), [0.2, 0.9], atol=0.02)


def test_mixture_rejects_mismatched_components():
    with pytest.raises(ValueError, match="categories"):
        gd.MixtureSameFamily(gd.Categorical(probs=_t([0.5, 0.5])), gd.Normal(_t([0.0, 1.0, 2.0]), 1.0))
    with pytest.raises(ValueError, match="Categorical"):
        gd.MixtureSameFamily(gd.Normal(0.0, 1.0), gd.Normal(_t([0.0, 1.0]), 1.0))


def test_invalid_parameters_raise():
    with pytest.raises(ValueError, match="scale"):
        gd.HalfNormal(_t([-1.0]))
    with pytest.raises(ValueError, match="alpha"):
        gd.Pareto(_t([1.0]), _t([0.0]))
    with pytest.raises(ValueError, match="support"):
        gd.Pareto(_t([1.0]), _t([2.0])).log_prob(_t([0.5]))
