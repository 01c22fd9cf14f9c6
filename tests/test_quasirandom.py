"""gradient.quasirandom.SobolEngine against torch.quasirandom.SobolEngine."""

import numpy as np
import pytest
import torch

import gradient
from gradient.quasirandom import SobolEngine


@pytest.mark.parametrize("dimension", [1, 5, 300, 21201])
def test_unscrambled_points_are_torchs(dimension):
    ours, theirs = SobolEngine(dimension), torch.quasirandom.SobolEngine(dimension)
    for n in (1, 6, 25):                        # several draws continue one sequence
        np.testing.assert_array_equal(ours.draw(n, dtype=gradient.float64).numpy(),
                                      theirs.draw(n, dtype=torch.float64).numpy())
    assert ours.num_generated == theirs.num_generated == 32


def test_fast_forward_reset_base2_and_out():
    ours, theirs = SobolEngine(3), torch.quasirandom.SobolEngine(3)
    ours.fast_forward(5)
    theirs.fast_forward(5)
    np.testing.assert_array_equal(ours.draw(3).numpy(), theirs.draw(3).numpy())
    ours.reset()
    theirs.reset()
    np.testing.assert_array_equal(ours.draw_base2(3).numpy(), theirs.draw_base2(3).numpy())
    with pytest.raises(ValueError, match="power of 2"):
        ours.draw_base2(1)                      # 8 + 2 points: balance lost, as torch says
    out = gradient.empty(0)
    assert ours.draw(2, out=out) is out and out.shape == (2, 3)
    assert ours.draw(1).dtype is gradient.get_default_dtype()
    assert repr(SobolEngine(2, scramble=True, seed=4)) == repr(
        torch.quasirandom.SobolEngine(2, scramble=True, seed=4))


def test_scrambled_points_are_seeded_and_even():
    a = SobolEngine(2, scramble=True, seed=7).draw(64, dtype=gradient.float64).numpy()
    b = SobolEngine(2, scramble=True, seed=7).draw(64, dtype=gradient.float64).numpy()
    np.testing.assert_array_equal(a, b)
    assert ((a >= 0) & (a < 1)).all()
    assert not np.array_equal(a, SobolEngine(2).draw(64, dtype=gradient.float64).numpy())
    # each of the 64 cells of an 8 x 8 grid holds one point: what makes the sequence even
    cells = np.floor(a * 8).astype(int)
    assert len({tuple(c) for c in cells}) == 64
    gradient.manual_seed(3)
    c = SobolEngine(2, scramble=True).draw(4).numpy()
    gradient.manual_seed(3)
    np.testing.assert_array_equal(c, SobolEngine(2, scramble=True).draw(4).numpy())


def test_dimension_out_of_range():
    for bad in (0, 21202, 2.0):
        with pytest.raises(ValueError, match="dimension"):
            SobolEngine(bad)
