"""gradient.distributions against torch.distributions on the same parameters (float64).

For every distribution: log_prob, entropy, mean, mode, variance, stddev, cdf and icdf (those
each has) equal torch's, and so do their gradients with respect to the parameters. Then sample
shapes, moments of large seeded samples, reparameterized gradients, validation and
reproducibility.
"""


import numpy as np
import pytest

import gradient
import gradient.distributions as gd

torch = pytest.importorskip("torch")
td = torch.distributions

from .torch_parity import (as_numpy as _np, assert_gradients_match, assert_values_match,  # noqa: E402
                           tensor as _tensor, weighted_gradients)

R = np.random.default_rng(0)


def _pos(*shape, low=0.5, high=2.5):
    return R.uniform(low, high, size=shape)


def _real(*shape):
    return R.uniform(-2, 2, size=shape)


def _probs(*shape):
    return R.uniform(0.1, 0.9, size=shape)


def _simplex(*shape):
    p = R.uniform(0.1, 1.0, size=shape)
    return p / p.sum(-1, keepdims=True)


def _value(lib, v):
    if isinstance(v, np.ndarray) and v.dtype.kind == "i":
        return torch.tensor(v) if lib is torch else gradient.tensor(v)
    return _tensor(lib, v)


# name: (make(D, params), parameters, value, quantities)
# D is gradient.distributions or torch.distributions; params are float64 tensors requiring grad
CONT = ["log_prob", "entropy", "mean", "mode", "variance", "stddev"]
CASES = {
    "Normal": (lambda D, p: D.Normal(p["loc"], p["scale"]),
               {"loc": _real(2, 3), "scale": _pos(2, 3)}, _real(2, 3), CONT + ["cdf", "icdf"]),
    "Normal-broadcast": (lambda D, p: D.Normal(p["loc"], p["scale"]),
                         {"loc": _real(3), "scale": _pos(2, 1)}, _real(4, 2, 3), ["log_prob", "entropy"]),
    "LogNormal": (lambda D, p: D.LogNormal(p["loc"], p["scale"]),
                  {"loc": _real(4) * 0.5, "scale": _pos(4, high=1.0)}, _pos(4), CONT + ["cdf", "icdf"]),
    "Bernoulli-probs": (lambda D, p: D.Bernoulli(probs=p["probs"]), {"probs": _probs(2, 3)},
                        (R.uniform(size=(2, 3)) > 0.5).astype(float), ["log_prob", "entropy", "mean", "mode", "variance"]),
    "Bernoulli-logits": (lambda D, p: D.Bernoulli(logits=p["logits"]), {"logits": _real(5)},
                         np.array([0.0, 1.0, 1.0, 0.0, 1.0]), ["log_prob", "entropy", "mean", "variance", "probs"]),
    "Categorical-probs": (lambda D, p: D.Categorical(probs=p["probs"]), {"probs": _simplex(2, 4)},
                          np.array([[0, 3], [2, 1], [3, 3]]), ["log_prob", "entropy", "mode", "logits"]),
    "Categorical-logits": (lambda D, p: D.Categorical(logits=p["logits"]), {"logits": _real(3, 4)},
                           np.array([0, 3, 2]), ["log_prob", "entropy", "mode", "probs"]),
    "OneHotCategorical": (lambda D, p: D.OneHotCategorical(probs=p["probs"]), {"probs": _simplex(2, 3)},
                          np.eye(3)[[2, 0]], ["log_prob", "entropy", "mean", "mode", "variance"]),
    "Uniform": (lambda D, p: D.Uniform(p["low"], p["high"]), {"low": _real(3) - 3, "high": _pos(3)},
                _real(3) * 0.2, ["log_prob", "entropy", "mean", "variance", "stddev", "cdf", "icdf"]),
    "Exponential": (lambda D, p: D.Exponential(p["rate"]), {"rate": _pos(2, 3)}, _pos(2, 3),
                    CONT + ["cdf", "icdf"]),
    "Laplace": (lambda D, p: D.Laplace(p["loc"], p["scale"]), {"loc": _real(4), "scale": _pos(4)},
                _real(4), CONT + ["cdf", "icdf"]),
    "Cauchy": (lambda D, p: D.Cauchy(p["loc"], p["scale"]), {"loc": _real(4), "scale": _pos(4)},
               _real(4), ["log_prob", "entropy", "mode", "cdf", "icdf", "mean", "variance"]),
    "Gumbel": (lambda D, p: D.Gumbel(p["loc"], p["scale"]), {"loc": _real(4), "scale": _pos(4)},
               _real(4), CONT + ["cdf", "icdf"]),
    "Gamma": (lambda D, p: D.Gamma(p["concentration"], p["rate"]),
              {"concentration": _pos(2, 3, high=4.0), "rate": _pos(2, 3)}, _pos(2, 3), CONT),
    "Beta": (lambda D, p: D.Beta(p["a"], p["b"]), {"a": _pos(4, low=1.2, high=3), "b": _pos(4, low=1.2, high=3)},
             _probs(4), CONT),
    "Dirichlet": (lambda D, p: D.Dirichlet(p["concentration"]), {"concentration": _pos(2, 3, low=1.2, high=3)},
                  _simplex(2, 3), CONT),
    "Poisson": (lambda D, p: D.Poisson(p["rate"]), {"rate": _pos(4, high=5.0)},
                np.array([0.0, 1.0, 3.0, 7.0]), ["log_prob", "mean", "mode", "variance"]),
    "Binomial": (lambda D, p: D.Binomial(p["n"].detach() if hasattr(p["n"], "detach") else p["n"], probs=p["probs"]),
                 {"n": np.array([5.0, 10.0, 3.0]), "probs": _probs(3)}, np.array([2.0, 10.0, 0.0]),
                 ["log_prob", "mean", "mode", "variance"]),
    "Geometric": (lambda D, p: D.Geometric(probs=p["probs"]), {"probs": _probs(4)},
                  np.array([0.0, 1.0, 4.0, 2.0]), CONT),
    "StudentT": (lambda D, p: D.StudentT(p["df"], p["loc"], p["scale"]),
                 {"df": _pos(4, low=2.5, high=6.0), "loc": _real(4), "scale": _pos(4)}, _real(4), CONT),
    "Independent": (lambda D, p: D.Independent(D.Normal(p["loc"], p["scale"]), 1),
                    {"loc": _real(2, 3), "scale": _pos(2, 3)}, _real(2, 3),
                    ["log_prob", "entropy", "mean", "variance"]),
    "Transformed-affine-sigmoid": (
        lambda D, p: D.TransformedDistribution(D.Normal(p["loc"], p["scale"]),
                                               [D.AffineTransform(0.5, 2.0), D.SigmoidTransform()]),
        {"loc": _real(4), "scale": _pos(4)}, _probs(4), ["log_prob", "cdf", "icdf"]),
    "Transformed-tanh": (
        lambda D, p: D.TransformedDistribution(D.Normal(p["loc"], p["scale"]), D.TanhTransform()),
        {"loc": _real(4) * 0.3, "scale": _pos(4, high=1.0)}, _real(4) * 0.4, ["log_prob"]),
    "Transformed-negative-affine": (
        lambda D, p: D.TransformedDistribution(D.Exponential(p["rate"]), D.AffineTransform(1.0, -2.0)),
        {"rate": _pos(3)}, -_pos(3), ["log_prob", "cdf", "icdf"]),
}
ICDF_INPUT = np.array([0.05, 0.3, 0.5, 0.9])


def _transforms_namespace(lib):
    """torch keeps transforms in torch.distributions.transforms; expose them like gradient does."""
    if lib is torch:
        class D:
            pass
        for name in dir(td):
            setattr(D, name, getattr(td, name))
        for name in ("AffineTransform", "SigmoidTransform", "TanhTransform", "ExpTransform"):
            setattr(D, name, getattr(td.transforms, name))
        return D
    return gd


def _build(case, lib):
    make, params, value, quantities = CASES[case]
    tensors = {k: _tensor(lib, v, requires_grad=(k != "n")) for k, v in params.items()}
    return make(_transforms_namespace(lib), tensors), tensors


def _quantity(dist, name, lib, case):
    value = CASES[case][2]
    if name in ("log_prob", "cdf"):
        return getattr(dist, name)(_value(lib, value))
    if name == "icdf":
        p = ICDF_INPUT[:dist.batch_shape[-1]] if dist.batch_shape else ICDF_INPUT[:1]
        return dist.icdf(_tensor(lib, np.broadcast_to(p, tuple(dist.batch_shape)).copy()))
    if name == "entropy":
        return dist.entropy()
    return getattr(dist, name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_values_match_torch(case):
    assert_values_match(lambda lib: _build(case, lib), lambda d, name, lib: _quantity(d, name, lib, case),
                        CASES[case][3], rtol=1e-10, atol=1e-12, case=case)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_match_torch(case):
    ours, theirs = weighted_gradients(lambda lib: _build(case, lib),
                                      lambda d, name, lib: _quantity(d, name, lib, case),
                                      CASES[case][3], seed=1, case=case)
    assert_gradients_match(ours, theirs, rtol=1e-7, atol=1e-9, case=case)


# ---------------------------------------------------------------------- KL divergence
KL_CASES = {
    "Normal": (lambda D, a, b: (D.Normal(a[0], a[1]), D.Normal(b[0], b[1])), lambda: (_real(3), _pos(3))),
    "Bernoulli": (lambda D, a, b: (D.Bernoulli(probs=a[0]), D.Bernoulli(logits=b[0] * 3 - 1.5)),
                  lambda: (_probs(3),)),
    "Categorical": (lambda D, a, b: (D.Categorical(probs=a[0]), D.Categorical(logits=b[0])),
                    lambda: (_simplex(2, 4),)),
    "OneHotCategorical": (lambda D, a, b: (D.OneHotCategorical(probs=a[0]), D.OneHotCategorical(probs=b[0])),
                          lambda: (_simplex(3),)),
    "Uniform": (lambda D, a, b: (D.Uniform(a[0] - 1, a[1] + 1), D.Uniform(b[0] - 3, b[1] + 3)),
                lambda: (_probs(3), _probs(3))),
    "Uniform-infinite": (lambda D, a, b: (D.Uniform(a[0] - 3, a[1] + 3), D.Uniform(b[0] - 1, b[1] + 1)),
                         lambda: (_probs(3), _probs(3))),
    "Exponential": (lambda D, a, b: (D.Exponential(a[0]), D.Exponential(b[0])), lambda: (_pos(3),)),
    "Laplace": (lambda D, a, b: (D.Laplace(a[0], a[1]), D.Laplace(b[0], b[1])), lambda: (_real(3), _pos(3))),
    "Gamma": (lambda D, a, b: (D.Gamma(a[0], a[1]), D.Gamma(b[0], b[1])), lambda: (_pos(3), _pos(3))),
    "Beta": (lambda D, a, b: (D.Beta(a[0], a[1]), D.Beta(b[0], b[1])), lambda: (_pos(3), _pos(3))),
    "Dirichlet": (lambda D, a, b: (D.Dirichlet(a[0]), D.Dirichlet(b[0])), lambda: (_pos(2, 3),)),
    "Poisson": (lambda D, a, b: (D.Poisson(a[0]), D.Poisson(b[0])), lambda: (_pos(3),)),
    "Independent": (lambda D, a, b: (D.Independent(D.Normal(a[0], a[1]), 1),
                                     D.Independent(D.Normal(b[0], b[1]), 1)), lambda: (_real(2, 3), _pos(2, 3))),
}
KL_PARAMS = {name: (make(), make()) for name, (_, make) in KL_CASES.items()}


@pytest.mark.parametrize("case", sorted(KL_CASES))
def test_kl_divergence_and_its_gradients_match_torch(case):
    results = []
    for lib, D in ((gradient, gd), (torch, td)):
        a = [_tensor(lib, v, requires_grad=True) for v in KL_PARAMS[case][0]]
        b = [_tensor(lib, v, requires_grad=True) for v in KL_PARAMS[case][1]]
        p, q = KL_CASES[case][0](D, a, b)
        kl = D.kl_divergence(p, q)
        finite = np.isfinite(_np(kl)).all()
        if finite:
            (kl * _tensor(lib, np.linspace(0.5, 1.5, kl.numel()).reshape(tuple(kl.shape)))).sum().backward()
        results.append((kl, [t.grad for t in a + b], finite))
    (ours, ours_grads, finite), (theirs, theirs_grads, _) = results
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(_np(ours), _np(theirs), rtol=1e-10, atol=1e-12, err_msg=case)
    if finite:
        for o, t in zip(ours_grads, theirs_grads):
            np.testing.assert_allclose(_np(o), _np(t), rtol=1e-7, atol=1e-9, err_msg=case)


def test_kl_divergence_without_a_formula_raises_and_register_kl_adds_one():
    p, q = gd.Normal(0.0, 1.0), gd.Cauchy(0.0, 1.0)
    with pytest.raises(NotImplementedError, match="Normal and Cauchy"):
        gd.kl_divergence(p, q)

    class MyNormal(gd.Normal):
        pass

    # a subclass inherits its parents' formula, until a more specific one is registered
    assert float(gd.kl_divergence(MyNormal(0.0, 1.0), gd.Normal(1.0, 1.0))) == pytest.approx(0.5)

    @gd.register_kl(MyNormal, gd.Normal)
    def _mine(p, q):
        return p.loc * 0 + 42.0

    assert float(gd.kl_divergence(MyNormal(0.0, 1.0), gd.Normal(1.0, 1.0))) == 42.0
    assert float(gd.kl_divergence(gd.Normal(0.0, 1.0), gd.Normal(1.0, 1.0))) == pytest.approx(0.5)


def test_gamma_and_chi2_cdf_as_torchs():
    # (values and the gradients torch has: in rate and value; in the concentration neither
    # library has one)
    conc, rate = [0.5, 2.0, 7.5], [1.0, 3.0, 0.5]
    value = [0.3, 0.5, 20.0]
    results = []
    for lib in (gradient, torch):
        D = lib.distributions
        r = lib.tensor(rate, dtype=lib.float64, requires_grad=True)
        v = lib.tensor(value, dtype=lib.float64, requires_grad=True)
        cdf = D.Gamma(lib.tensor(conc, dtype=lib.float64), r).cdf(v)
        chi2 = D.Chi2(lib.tensor(conc, dtype=lib.float64)).cdf(v)
        (cdf.sum() + chi2.sum()).backward()
        results.append([t.detach().numpy() for t in (cdf, chi2, r.grad, v.grad)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    with pytest.raises(gradient.errors.AutogradError, match="with respect to a"):
        c = gradient.tensor([2.0], requires_grad=True)
        gradient.distributions.Gamma(c, 1.0).cdf(gradient.tensor([1.0])).sum().backward()
