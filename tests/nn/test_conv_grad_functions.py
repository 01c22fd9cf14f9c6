"""nn.grad.conv{1,2,3}d_input / _weight against torch.nn.grad."""

import numpy as np
import pytest
import torch

import gradient

rng = np.random.default_rng(0)
CASES = [(1, (2, 3, 9), (4, 3, 3), {}), (1, (1, 4, 10), (4, 2, 3), {"groups": 2, "stride": 2}),
         (2, (2, 3, 7, 7), (4, 3, 3, 3), {"padding": 1}),
         (2, (1, 2, 8, 8), (3, 2, 3, 3), {"dilation": 2, "padding": 2, "stride": 2}),
         (3, (1, 2, 5, 5, 5), (2, 2, 3, 3, 3), {"padding": 1})]


@pytest.mark.parametrize("d,x_shape,w_shape,options", CASES)
def test_conv_gradients_as_torchs(d, x_shape, w_shape, options):
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    conv = getattr(torch.nn.functional, f"conv{d}d")
    g = rng.standard_normal(tuple(conv(torch.tensor(x), torch.tensor(w), **options).shape))
    ours_in = getattr(gradient.nn.grad, f"conv{d}d_input")(x.shape, gradient.tensor(w), gradient.tensor(g), **options)
    theirs_in = getattr(torch.nn.grad, f"conv{d}d_input")(x.shape, torch.tensor(w), torch.tensor(g), **options)
    np.testing.assert_allclose(ours_in.numpy(), theirs_in.numpy(), rtol=1e-10, atol=1e-12)
    ours_w = getattr(gradient.nn.grad, f"conv{d}d_weight")(gradient.tensor(x), w.shape, gradient.tensor(g), **options)
    theirs_w = getattr(torch.nn.grad, f"conv{d}d_weight")(torch.tensor(x), w.shape, torch.tensor(g), **options)
    np.testing.assert_allclose(ours_w.numpy(), theirs_w.numpy(), rtol=1e-10, atol=1e-12)


def test_the_gradients_are_differentiable_when_their_inputs_require_grad():
    x = rng.standard_normal((1, 2, 6, 6))
    w = rng.standard_normal((3, 2, 3, 3))
    g = rng.standard_normal((1, 3, 4, 4))
    grads = []
    for lib in (gradient, torch):
        gt = lib.tensor(g, requires_grad=True)
        lib.nn.grad.conv2d_weight(lib.tensor(x), w.shape, gt).pow(2).sum().backward()
        grads.append(gt.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10)
