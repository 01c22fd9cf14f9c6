"""MultivariateNormal and LowRankMultivariateNormal against torch.distributions (float64):
log_prob, entropy, moments, the matrix properties, KL divergence and all their gradients with
respect to the parameters, for each of the three parameterizations; then rsample gradients,
sample moments, expand, validation and reproducibility."""

import numpy as np
import pytest

import gradient
import gradient.distributions as gd

torch = pytest.importorskip("torch")
td = torch.distributions

from .torch_parity import (as_numpy as _np, assert_values_match, tensor as _tensor,  # noqa: E402
                           weighted_gradients)

R = np.random.default_rng(11)


def _spd(*batch, n=3):
    a = R.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def _tril(*batch, n=3):
    return np.linalg.cholesky(_spd(*batch, n=n))


def _mvn(kind):
    def make(D, p):
        return D.MultivariateNormal(p["loc"], **{kind: p["matrix"]})
    return make


# name: (make(D, params), params, value)
CASES = {
    "covariance": (_mvn("covariance_matrix"), {"loc": R.standard_normal((2, 3)), "matrix": _spd(2)},
                   R.standard_normal((4, 2, 3))),
    "precision": (_mvn("precision_matrix"), {"loc": R.standard_normal(3), "matrix": _spd(2)},
                  R.standard_normal((2, 3))),
    "scale_tril": (_mvn("scale_tril"), {"loc": R.standard_normal((2, 3)), "matrix": _tril()},
                   R.standard_normal((5, 1, 3))),
    "low_rank": (lambda D, p: D.LowRankMultivariateNormal(p["loc"], p["factor"], p["diag"]),
                 {"loc": R.standard_normal((2, 4)), "factor": R.standard_normal((2, 4, 2)),
                  "diag": R.uniform(0.5, 2.0, (4,))}, R.standard_normal((3, 2, 4))),
}
QUANTITIES = ["log_prob", "entropy", "mean", "mode", "variance", "stddev", "covariance_matrix",
              "precision_matrix", "scale_tril"]


def _build(case, lib):
    make, params, _ = CASES[case]
    tensors = {k: _tensor(lib, v, requires_grad=True) for k, v in params.items()}
    return make(td if lib is torch else gd, tensors), tensors


def _quantity(dist, name, lib, case):
    if name == "log_prob":
        return dist.log_prob(_tensor(lib, CASES[case][2]))
    if name == "entropy":
        return dist.entropy()
    return getattr(dist, name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_values_match_torch(case):
    assert_values_match(lambda lib: _build(case, lib), lambda d, name, lib: _quantity(d, name, lib, case),
                        QUANTITIES, rtol=1e-9, atol=1e-11, case=case, equal_nan=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_match_torch(case):
    ours, theirs = weighted_gradients(lambda lib: _build(case, lib),
                                      lambda d, name, lib: _quantity(d, name, lib, case),
                                      QUANTITIES, seed=2, case=case, every=True)
    for k in theirs:
        o, t = _np(ours[k]), _np(theirs[k])
        if k == "matrix" and case in ("covariance", "precision"):
            # only the symmetric part of a symmetric matrix's gradient is defined; both libraries
            # return a symmetric one, but compare the symmetric parts to be independent of that
            o, t = (o + np.swapaxes(o, -1, -2)) / 2, (t + np.swapaxes(t, -1, -2)) / 2
        if k == "matrix" and case == "scale_tril":
            # the structural zeros above the diagonal: torch's cholesky_inverse sends them a
            # gradient, gradient's (triangular solves) reads only the lower triangle
            o, t = np.tril(o), np.tril(t)
        np.testing.assert_allclose(o, t, rtol=1e-7, atol=1e-9, err_msg=f"{case}: grad of {k}")


KL_PAIRS = [("covariance", "scale_tril"), ("precision", "covariance"), ("low_rank", "low_rank"),
            ("scale_tril", "low_rank")]


@pytest.mark.parametrize("p_case,q_case", KL_PAIRS)
def test_kl_divergence_and_its_gradients_match_torch(p_case, q_case):
    if "low_rank" in (p_case, q_case) and p_case != q_case:
        # sizes must agree: give the low-rank side a 3-dimensional event
        q_params = {"loc": R.standard_normal(3), "factor": R.standard_normal((3, 1)),
                    "diag": R.uniform(0.5, 2.0, (3,))}
    else:
        q_params = None
    results = []
    for lib in (gradient, torch):
        D = td if lib is torch else gd
        p, p_params = _build(p_case, lib)
        if q_params is None:
            q, q_leaves = _build(q_case, lib)
            q_leaves = {k: v for k, v in q_leaves.items()}
        else:
            q_leaves = {k: _tensor(lib, v, requires_grad=True) for k, v in q_params.items()}
            q = CASES[q_case][0](D, q_leaves)
        kl = D.kl_divergence(p, q)
        (kl * _tensor(lib, np.linspace(0.5, 1.5, kl.numel()).reshape(tuple(kl.shape)))).sum().backward()
        results.append((kl, [v.grad for v in list(p_params.values()) + list(q_leaves.values())]))
    (ours, og), (theirs, tg) = results
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(_np(ours), _np(theirs), rtol=1e-9, atol=1e-11)
    for o, t in zip(og, tg):
        o, t = _np(o), _np(t)
        if o.ndim >= 2 and o.shape[-1] == o.shape[-2]:
            o, t = (o + np.swapaxes(o, -1, -2)) / 2, (t + np.swapaxes(t, -1, -2)) / 2
        np.testing.assert_allclose(o, t, rtol=1e-7, atol=1e-9)


def test_kl_of_a_distribution_with_itself_is_zero():
    d = gd.MultivariateNormal(gradient.tensor(R.standard_normal(3)), scale_tril=gradient.tensor(_tril()))
    np.testing.assert_allclose(gd.kl_divergence(d, d).numpy(), 0.0, atol=1e-12)


# ---------------------------------------------------------------------- sampling
def test_sample_shapes_and_moments_with_a_fixed_seed():
    gradient.manual_seed(0)
    loc, cov = np.array([1.0, -2.0, 0.5]), _spd()
    d = gd.MultivariateNormal(gradient.tensor(loc), covariance_matrix=gradient.tensor(cov))
    assert tuple(d.sample().shape) == (3,)
    assert tuple(d.sample((4, 5)).shape) == (4, 5, 3)
    x = d.sample((200_000,)).numpy()
    np.testing.assert_allclose(x.mean(0), loc, atol=5 * np.sqrt(np.diag(cov).max() / 200_000))
    np.testing.assert_allclose(np.cov(x.T), cov, rtol=0.03, atol=0.03)

    gradient.manual_seed(0)
    factor, diag = R.standard_normal((3, 2)), R.uniform(0.5, 1.5, 3)
    lr = gd.LowRankMultivariateNormal(gradient.tensor(loc), gradient.tensor(factor), gradient.tensor(diag))
    y = lr.sample((200_000,)).numpy()
    np.testing.assert_allclose(np.cov(y.T), factor @ factor.T + np.diag(diag), rtol=0.03, atol=0.03)


def test_batched_samples_and_reproducibility():
    d = gd.MultivariateNormal(gradient.zeros(2, 3, dtype=gradient.float64),
                              scale_tril=gradient.tensor(_tril(2), dtype=gradient.float64))
    gradient.manual_seed(9)
    a = d.sample((7,))
    gradient.manual_seed(9)
    b = d.sample((7,))
    assert tuple(a.shape) == (7, 2, 3)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_rsample_gradient_is_the_reparameterization():
    """x = loc + L eps: dx/dloc is the identity and the gradient of sum(x) w.r.t. L is eps summed."""
    loc = gradient.zeros(3, dtype=gradient.float64, requires_grad=True)
    L = gradient.tensor(_tril(), dtype=gradient.float64, requires_grad=True)
    gradient.manual_seed(3)
    x = gd.MultivariateNormal(loc, scale_tril=L).rsample((10,))
    x.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), np.full(3, 10.0))
    eps = np.linalg.solve(_np(L), x.detach().numpy().T).T                  # recover the noise
    np.testing.assert_allclose(L.grad.numpy(), np.ones((3, 1)) * eps.sum(0)[None, :], atol=1e-10)


def test_expand():
    d = gd.MultivariateNormal(gradient.zeros(3), covariance_matrix=gradient.eye(3))
    e = d.expand((4, 2))
    assert tuple(e.batch_shape) == (4, 2) and tuple(e.event_shape) == (3,)
    assert tuple(e.covariance_matrix.shape) == (4, 2, 3, 3)
    assert tuple(e.log_prob(gradient.zeros(3)).shape) == (4, 2)
    assert tuple(e.sample((5,)).shape) == (5, 4, 2, 3)
    lr = gd.LowRankMultivariateNormal(gradient.zeros(3), gradient.ones(3, 1), gradient.ones(3)).expand((2,))
    assert tuple(lr.sample().shape) == (2, 3) and tuple(lr.entropy().shape) == (2,)


def test_validation_errors():
    with pytest.raises(ValueError, match="exactly one"):
        gd.MultivariateNormal(gradient.zeros(2))
    with pytest.raises(ValueError, match="exactly one"):
        gd.MultivariateNormal(gradient.zeros(2), covariance_matrix=gradient.eye(2), scale_tril=gradient.eye(2))
    with pytest.raises(ValueError, match="does not match"):
        gd.MultivariateNormal(gradient.zeros(3), covariance_matrix=gradient.eye(2))
    with pytest.raises(ValueError, match="scale_tril"):
        gd.MultivariateNormal(gradient.zeros(2), scale_tril=gradient.tensor([[1.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="scale_tril"):
        gd.MultivariateNormal(gradient.zeros(2), scale_tril=gradient.tensor([[-1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="covariance_matrix"):
        gd.MultivariateNormal(gradient.zeros(2), covariance_matrix=gradient.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="precision_matrix"):      # not symmetric
        gd.MultivariateNormal(gradient.zeros(2), precision_matrix=gradient.tensor([[2.0, 1.0], [0.0, 2.0]]))
    d = gd.MultivariateNormal(gradient.zeros(2), covariance_matrix=gradient.eye(2))
    with pytest.raises(ValueError, match="event shape"):
        d.log_prob(gradient.zeros(3))
