"""torch.special's orthogonal polynomials: gradient's against torch's over degrees from -1 to
40 and points inside, at the ends of and outside [-1, 1] (where the special cases are)."""

import numpy as np
import pytest
import torch

import gradient
from gradient.ops.orthogonal_polynomials import __all__ as NAMES

XS = np.array([-1.5, -1.0, -0.99, -0.5, -0.3, 0.0, 0.2, 0.5, 0.73, 0.99, 1.0, 1.2, 2.0])
NS = np.array([-1, 0, 1, 2, 3, 5, 7, 8, 9, 12, 20, 40])


@pytest.mark.parametrize("name", NAMES)
def test_values_are_torchs(name):
    x, n = np.meshgrid(XS, NS)
    ours = getattr(gradient.special, name)(gradient.tensor(x), gradient.tensor(n.astype(float)))
    theirs = getattr(torch.special, name)(torch.tensor(x), torch.tensor(n.astype(float)))
    a, b = ours.numpy(), theirs.numpy()
    # within rounding of the larger of the value and 1 (at degree 40 a recurrence would have
    # drifted where torch switches to its closed forms)
    assert np.all(np.abs(a - b) <= 1e-12 * np.maximum(np.abs(b), 1.0))
    # a number for either argument, and a fractional degree read as its integer part
    assert getattr(gradient.special, name)(gradient.tensor([0.3]), 4.7).item() == \
        pytest.approx(getattr(torch.special, name)(torch.tensor([0.3]), 4.7).item(), rel=1e-6)
    assert getattr(gradient.special, name)(0.6, gradient.tensor([3])).item() == \
        pytest.approx(getattr(torch.special, name)(0.6, torch.tensor([3])).item(), rel=1e-6)


def test_dtypes_and_no_gradient():
    x = gradient.tensor([0.5, 1.5], requires_grad=True)
    out = gradient.special.legendre_polynomial_p(x, 3)
    assert not out.requires_grad and out.dtype is gradient.float32
    assert gradient.special.hermite_polynomial_h(gradient.tensor([1, 2]), 3).dtype is \
        gradient.get_default_dtype()
