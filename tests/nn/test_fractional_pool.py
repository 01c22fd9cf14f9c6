"""Fractional max pooling against torch's on the same random samples: the same windows, values,
indices and input gradients in 2-d and 3-d, batched or not, by size or ratio; samples drawn
from gradient's generator when not given; bad arguments refused."""

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as nn
import gradient.nn.functional as F

CASES = [  # (d, input shape, kernel, output_size, output_ratio, dtype)
    (2, (2, 3, 11, 9), (2, 3), (6, 5), None, np.float32),
    (2, (3, 10, 10), 3, None, (0.5, 0.5), np.float64),   # (torch's functional needs a pair)
    (2, (1, 2, 7, 16), 2, (6, 1), None, np.float32),
    (3, (2, 2, 7, 9, 8), 2, None, (0.6, 0.5, 0.7), np.float64),
    (3, (2, 5, 6, 7), (1, 2, 3), (4, 3, 2), None, np.float32),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_values_indices_and_gradients_match_torch(case):
    d, shape, kernel, size, ratio, dtype = CASES[case]
    rng = np.random.default_rng(case)
    x = rng.standard_normal(shape).astype(dtype)
    planes = (shape[0], shape[1]) if len(shape) == d + 2 else (1, shape[0])
    samples = rng.random(planes + (d,)).astype(dtype)
    results, weights = [], None
    for lib, fn in ((gradient, F), (torch, torch.nn.functional)):
        xt = lib.tensor(x, requires_grad=True)
        pool = getattr(fn, f"fractional_max_pool{d}d")
        y, idx = pool(xt, kernel, output_size=size, output_ratio=ratio, return_indices=True,
                      _random_samples=lib.tensor(samples))
        if weights is None:          # (drawn once: the same for both)
            weights = rng.standard_normal(tuple(y.shape)).astype(dtype)
        (y * lib.tensor(weights)).sum().backward()
        results.append((y.detach().numpy(), idx.numpy(), xt.grad.numpy()))
    (ours, our_idx, our_grad), (theirs, their_idx, their_grad) = results
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(our_idx, their_idx)
    np.testing.assert_allclose(our_grad, their_grad, rtol=1e-6)


def test_modules_and_their_own_samples():
    x = gradient.randn(2, 3, 12, 12)
    gradient.manual_seed(0)
    a = nn.FractionalMaxPool2d(3, output_ratio=0.5)(x)
    gradient.manual_seed(0)
    b = nn.FractionalMaxPool2d(3, output_ratio=0.5)(x)
    assert tuple(a.shape) == (2, 3, 6, 6)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    samples = gradient.rand(2, 3, 2)
    pool = nn.FractionalMaxPool2d(2, output_size=5, return_indices=True,
                                  _random_samples=samples)
    y, idx = pool(x)
    t_pool = torch.nn.FractionalMaxPool2d(2, output_size=5, return_indices=True,
                                          _random_samples=torch.tensor(samples.numpy()))
    ty, tidx = t_pool(torch.tensor(x.numpy()))
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    assert "_random_samples" in dict(pool.named_buffers())


def test_bad_arguments_are_refused():
    x = gradient.randn(1, 1, 6, 6)
    with pytest.raises(ValueError, match="exactly one"):
        F.fractional_max_pool2d(x, 2)
    with pytest.raises(ValueError, match="output_ratio"):
        nn.FractionalMaxPool2d(2, output_ratio=1.5)
    with pytest.raises(gradient.errors.ShapeError, match="at least"):
        F.fractional_max_pool2d(x, 3, output_size=5)
    with pytest.raises(gradient.errors.ShapeError, match="_random_samples"):
        F.fractional_max_pool2d(x, 2, output_size=3, _random_samples=gradient.rand(1, 1, 3))
