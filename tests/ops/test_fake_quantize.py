"""fake_quantize_per_tensor_affine / _per_channel_affine against torch's: the same values bit
for bit (halves rounded to even) and the same straight-through gradients."""

import numpy as np
import pytest
import torch

import gradient

rng = np.random.default_rng(0)
# random values, and the halfway points between grid steps that rounding must break to even
X = np.concatenate([rng.standard_normal(40) * 0.7, np.arange(-12, 12) * 0.05 + 0.0]).astype(np.float32)


def both(fn):
    outs = []
    for lib in (gradient, torch):
        x = lib.tensor(X.reshape(4, 16), requires_grad=True)
        y = fn(lib, x)
        (y * lib.tensor(np.arange(64, dtype=np.float32).reshape(4, 16))).sum().backward()
        outs.append((y.detach().numpy(), x.grad.numpy()))
    return outs


@pytest.mark.parametrize("scale,zero_point,qmin,qmax", [(0.1, 3, -8, 7), (0.05, 0, -128, 127),
                                                        (0.2, 2, 0, 15)])
def test_per_tensor_as_torchs(scale, zero_point, qmin, qmax):
    (ours, ours_grad), (theirs, theirs_grad) = both(
        lambda m, x: m.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax))
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours_grad, theirs_grad)
    assert (ours_grad == 0).any() and (ours_grad != 0).any()     # clamped and passed through


def test_tensor_qparams_and_per_channel_as_torchs():
    (ours, ours_grad), (theirs, theirs_grad) = both(
        lambda m, x: m.fake_quantize_per_tensor_affine(x, m.tensor(0.1), m.tensor(2, dtype=m.int32),
                                                       -8, 7))
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours_grad, theirs_grad)
    scales, points = [0.1, 0.2, 0.05, 0.3], [0, 1, -1, 2]
    (ours, ours_grad), (theirs, theirs_grad) = both(
        lambda m, x: m.fake_quantize_per_channel_affine(
            x, m.tensor(scales), m.tensor(points, dtype=m.int32), 0, -4, 3))
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours_grad, theirs_grad)


def test_bad_arguments():
    x = gradient.ones(2, 3)
    with pytest.raises(ValueError, match="quant_min"):
        gradient.fake_quantize_per_tensor_affine(x, 0.1, 0, 5, 2)
    with pytest.raises(gradient.errors.ShapeError, match="3 scales"):
        gradient.fake_quantize_per_channel_affine(x, gradient.ones(2), gradient.zeros(2), 1, 0, 7)
    for lib in (gradient, torch):          # torch's checks: the zero point, a negative axis
        with pytest.raises((ValueError, RuntimeError), match="zero_point"):
            lib.fake_quantize_per_tensor_affine(lib.ones(2), 0.1, 9, 0, 7)
        with pytest.raises((ValueError, RuntimeError), match="axis"):
            lib.fake_quantize_per_channel_affine(lib.ones(2, 3), lib.ones(3), lib.zeros(3, dtype=lib.int32), -1, 0, 7)


def test_float64_values_are_computed_on_torchs_float32_grid():
    # torch computes in float32 even for float64 input: the grid is float32's (away from the
    # exact ties of x / scale, where float32 and float64 products may round either way)
    x = rng.standard_normal(200) * 3
    for scale in (0.1, 0.3, 0.07):
        ours = gradient.fake_quantize_per_tensor_affine(gradient.tensor(x), scale, 0, -128, 127)
        theirs = torch.fake_quantize_per_tensor_affine(torch.tensor(x), scale, 0, -128, 127)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())

