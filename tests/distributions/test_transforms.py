"""Transforms' cache (cache_size=1) and ComposeTransform against torch.distributions: a
squashed Gaussian policy (Soft Actor-Critic's) scores its own samples exactly, with the
gradients torch gives."""

import numpy as np
import pytest
import torch

import gradient
from gradient.distributions import (AffineTransform, ComposeTransform, Normal, TanhTransform,
                                    TransformedDistribution)

X = np.array([-0.5, 0.3, 2.0, 12.0], np.float32)       # tanh(12) is 1.0 in float32
MU = np.array([0.1, -0.2, 0.5, 1.0], np.float32)


def _squashed(lib, mu, cache_size):
    d = lib.distributions
    return d.TransformedDistribution(d.Normal(mu, lib.ones(4)),
                                     [d.transforms.TanhTransform(cache_size=cache_size)])


def _score(lib, cache_size):
    """log_prob of the sample tanh(x) that the distribution's own transform made, and the
    gradients of its sum by mu and x."""
    mu, x = lib.tensor(MU, requires_grad=True), lib.tensor(X, requires_grad=True)
    dist = _squashed(lib, mu, cache_size)
    y = dist.transforms[0](x)
    lp = dist.log_prob(y)
    lp.sum().backward()
    return lp.detach().numpy(), mu.grad.numpy(), x.grad.numpy()


def test_a_cached_tanh_scores_its_samples_as_torch():
    ours, theirs = _score(gradient, 1), _score(torch, 1)
    assert np.isfinite(ours[0]).all()                       # tanh(12) == 1, and still finite
    for got, expected in zip(ours, theirs):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_without_the_cache_a_saturated_sample_is_infinite_as_in_torch():
    ours, theirs = _score(gradient, 0)[0], _score(torch, 0)[0]
    np.testing.assert_allclose(ours[:3], theirs[:3], rtol=1e-5)
    assert not np.isfinite(ours[3]) and not np.isfinite(theirs[3])


def test_cache_size_must_be_0_or_1():
    with pytest.raises(ValueError, match="cache_size must be 0 or 1"):
        TanhTransform(cache_size=2)


def test_compose_transform_as_torchs():
    y = np.array([-0.9, -0.2, 0.4, 0.8], np.float32)
    results = []
    for lib in (gradient, torch):
        d = lib.distributions
        t = d.transforms.ComposeTransform([d.transforms.AffineTransform(0.5, 2.0),
                                           d.transforms.TanhTransform()])
        dist = d.TransformedDistribution(d.Normal(lib.zeros(4), lib.ones(4)), [t])
        x = lib.tensor(np.array([0.1, -0.3, 0.2, 0.0], np.float32))
        results.append((dist.log_prob(lib.tensor(y)).numpy(), t(x).numpy(),
                        t.inv(lib.tensor(y)).numpy(),
                        t.log_abs_det_jacobian(x, t(x)).numpy()))
    for got, expected in zip(*results):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert ComposeTransform([AffineTransform(0.0, -1.0), TanhTransform()]).sign == -1
    assert isinstance(TransformedDistribution(Normal(0.0, 1.0), [TanhTransform()]).sample(),
                      gradient.Tensor)


@pytest.mark.parametrize("name,args", [("PowerTransform", (0.5,)), ("PowerTransform", ("tensor",)),
                                       ("SoftplusTransform", ()), ("AbsTransform", ()),
                                       ("StickBreakingTransform", ())])
def test_power_softplus_and_abs_transforms_as_torchs(name, args):
    """(torch keeps a number exponent as a float32 tensor: 0.5 and its inverse 2 are exact.)"""
    x = np.random.default_rng(3).uniform(0.2, 3.0, 5)
    if name == "StickBreakingTransform":     # vectors of reals: a batch of 2 of 5
        x = np.random.default_rng(3).standard_normal((2, 5)) * 2
    exponent = np.array([0.5, 1.5, -2.0, 3.0, 0.9])

    def make(lib):
        a = tuple(lib.tensor(exponent) if arg == "tensor" else arg for arg in args)
        return getattr(lib.distributions.transforms, name)(*a)
    ours, theirs = make(gradient), make(torch)
    gx, tx = gradient.tensor(x), torch.tensor(x)
    gy, ty = ours(gx), theirs(tx)
    np.testing.assert_allclose(gy.numpy(), ty.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.inv(gy).numpy(), theirs.inv(ty).numpy(), rtol=1e-12)
    if name != "AbsTransform":         # (not a bijection: torch gives it no Jacobian either)
        np.testing.assert_allclose(ours.log_abs_det_jacobian(gx, gy).numpy(),
                                   theirs.log_abs_det_jacobian(tx, ty).numpy(), rtol=1e-12)


@pytest.mark.parametrize("transforms", [None, 3, "ab"])
def test_transforms_that_are_no_transforms_are_refused_as_torchs(transforms):
    """PyTorch's ValueError, not "'NoneType' object is not iterable" (a string, iterated
    character by character, was refused already)."""
    from gradient.errors import ArgumentValueError
    base = Normal(gradient.tensor(0.0), gradient.tensor(1.0))
    with pytest.raises(ArgumentValueError, match="expected a Transform or a list"):
        TransformedDistribution(base, transforms)
    with pytest.raises(ValueError):
        torch.distributions.TransformedDistribution(
            torch.distributions.Normal(torch.tensor(0.0), torch.tensor(1.0)), transforms)
