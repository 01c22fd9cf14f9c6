"""biject_to / transform_to and the transforms they give, against torch's on the same inputs:
values, log-determinants, inverses, and that the values satisfy the constraint."""

import numpy as np
import pytest
import torch

import gradient
import gradient.distributions as G
import torch.distributions as T

rng = np.random.default_rng(0)

# (constraint as a function of the distributions module, input shape)
CASES = {
    "positive": (lambda D: D.constraints.positive, (3,)),
    "nonnegative": (lambda D: D.constraints.nonnegative, (3,)),
    "greater_than": (lambda D: D.constraints.greater_than(2.0), (4,)),
    "greater_than_eq": (lambda D: D.constraints.greater_than_eq(-1.0), (4,)),
    "less_than": (lambda D: D.constraints.less_than(1.5), (4,)),
    "unit_interval": (lambda D: D.constraints.unit_interval, (3,)),
    "interval": (lambda D: D.constraints.interval(-1.0, 3.0), (2, 3)),
    "half_open_interval": (lambda D: D.constraints.half_open_interval(0.0, 2.0), (3,)),
    "real": (lambda D: D.constraints.real, (3,)),
    "real_vector": (lambda D: D.constraints.real_vector, (2, 3)),
    "independent": (lambda D: D.constraints.independent(D.constraints.positive, 1), (2, 3)),
    "simplex": (lambda D: D.constraints.simplex, (2, 4)),
    "lower_cholesky": (lambda D: D.constraints.lower_cholesky, (2, 3, 3)),
    "positive_definite": (lambda D: D.constraints.positive_definite, (3, 3)),
}


@pytest.mark.parametrize("registry", ["biject_to", "transform_to"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_registries_give_torchs_transforms(registry, case):
    make, shape = CASES[case]
    if registry == "biject_to" and case in ("lower_cholesky", "positive_definite"):
        for D in (G, T):                        # maps onto these, not bijections: no entry
            with pytest.raises(NotImplementedError):
                getattr(D, registry)(make(D))
        return
    x = rng.standard_normal(shape)
    ours, theirs = getattr(G, registry)(make(G)), getattr(T, registry)(make(T))
    assert type(ours).__name__ == type(theirs).__name__
    xo = gradient.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    y, ty = ours(xo), theirs(xt)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-15)
    assert bool(make(G).check(y).all())
    np.testing.assert_allclose(ours.inv(y).detach().numpy(), theirs.inv(ty).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    if theirs.bijective:
        lo, lt = ours.log_abs_det_jacobian(xo, y), theirs.log_abs_det_jacobian(xt, ty)
        np.testing.assert_allclose(lo.detach().numpy(), lt.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(ours.inv(y).detach().numpy(), x, rtol=1e-9, atol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_optimizing_a_constrained_parameter_through_an_unconstrained_one():
    raw = gradient.zeros(3, requires_grad=True)
    opt = gradient.optim.SGD([raw], lr=1.0)
    target = gradient.tensor([0.7, 0.2, 0.1])
    to_simplex = G.transform_to(G.constraints.simplex)
    for _ in range(300):
        opt.zero_grad()
        ((to_simplex(raw) - target) ** 2).sum().backward()
        opt.step()
    np.testing.assert_allclose(to_simplex(raw).detach().numpy(), target.numpy(), atol=1e-3)


def test_reshape_transform_and_registering_a_constraint():
    t, tt = G.ReshapeTransform((2, 3), (6,)), T.ReshapeTransform((2, 3), (6,))
    x = rng.standard_normal((4, 2, 3))
    assert t.forward_shape((4, 2, 3)) == tt.forward_shape((4, 2, 3)) == (4, 6)
    np.testing.assert_array_equal(t(gradient.tensor(x)).numpy(), tt(torch.tensor(x)).numpy())
    assert tuple(t.log_abs_det_jacobian(gradient.tensor(x), None).shape) == (4,)

    class Odd(G.constraints.Constraint):
        def check(self, value):
            return value > 0

    registry = G.constraint_registry.ConstraintRegistry()
    with pytest.raises(NotImplementedError, match="register"):
        registry(Odd())
    registry.register(Odd, lambda c: G.ExpTransform())
    assert isinstance(registry(Odd()), G.ExpTransform)
