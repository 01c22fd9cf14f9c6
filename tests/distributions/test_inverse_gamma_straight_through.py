"""InverseGamma and OneHotCategoricalStraightThrough against torch's."""

import numpy as np
import pytest
import torch

import gradient


def test_inverse_gamma_values_and_gradients_as_torchs():
    conc, rate, value = [0.5, 2.5, 4.0], [1.0, 2.0, 0.5], [0.3, 1.2, 5.0]
    results = []
    for lib in (gradient, torch):
        c = lib.tensor(conc, dtype=lib.float64, requires_grad=True)
        r = lib.tensor(rate, dtype=lib.float64, requires_grad=True)
        d = lib.distributions.InverseGamma(c, r)
        log_prob = d.log_prob(lib.tensor(value, dtype=lib.float64))
        entropy = d.entropy()
        (log_prob.sum() + entropy.sum()).backward()
        results.append([t.detach().numpy() for t in (log_prob, entropy, d.mean, d.mode,
                                                     d.variance, c.grad, r.grad)])
    for ours, theirs in zip(*results):
        # (the concentration's gradient goes through polygamma: SciPy's and torch's differ
        # in the tenth digit)
        np.testing.assert_allclose(ours, theirs, rtol=1e-8)


def test_inverse_gamma_samples_are_reparameterized_and_positive():
    gradient.manual_seed(0)
    c = gradient.tensor([3.0, 5.0], dtype=gradient.float64, requires_grad=True)
    d = gradient.distributions.InverseGamma(c, gradient.tensor([2.0, 1.0], dtype=gradient.float64))
    x = d.rsample((20000,))
    assert (x > 0).all()
    np.testing.assert_allclose(x.mean(0).detach().numpy(), [1.0, 0.25], rtol=0.05)
    x.mean(0).sum().backward()
    # d/dc E[X] = -rate / (c - 1)^2, estimated through the reparameterized draws
    np.testing.assert_allclose(c.grad.numpy(), [-0.5, -1 / 16], rtol=0.1)


def test_straight_through_draws_are_one_hot_with_the_probabilities_gradient():
    logits = np.array([[0.2, -1.0, 0.5], [1.0, 0.0, -0.5]])
    weights = np.array([[1.0, 2.0, -1.0], [0.5, -2.0, 3.0]])
    grads = []
    for lib in (gradient, torch):
        theta = lib.tensor(logits, requires_grad=True)
        d = lib.distributions.OneHotCategoricalStraightThrough(logits=theta)
        assert d.has_rsample
        draw = d.rsample()
        np.testing.assert_allclose(draw.detach().numpy().sum(-1), 1.0)
        assert set(np.unique(draw.detach().numpy().round(12))) <= {0.0, 1.0}
        (draw * lib.tensor(weights)).sum().backward()
        grads.append(theta.grad.numpy())
    # the gradient is the probabilities', whatever was drawn
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    with pytest.raises(NotImplementedError):
        gradient.distributions.OneHotCategorical(logits=gradient.zeros(3)).rsample()
