"""What the op table does not cover of LU: the errors and info of singular matrices, lu_unpack's
flags, torch.lu's form and float32 factors (the values and gradients are in the op table)."""

import numpy as np
import pytest
import torch

import gradient
from gradient.errors import LinAlgError

SINGULAR = [[1.0, 2.0], [2.0, 4.0]]


def test_a_zero_pivot_raises_in_lu_factor_only():
    with pytest.raises(LinAlgError, match=r"U\[1,1\] is zero"):
        gradient.linalg.lu_factor(gradient.tensor(SINGULAR))
    ours = gradient.linalg.lu_factor_ex(gradient.tensor(SINGULAR))
    theirs = torch.linalg.lu_factor_ex(torch.tensor(SINGULAR))
    assert ours.info.item() == theirs.info.item() == 2
    np.testing.assert_array_equal(ours.LU.numpy(), theirs.LU.numpy())
    with pytest.raises(LinAlgError, match="Batch element 1"):
        gradient.linalg.lu_factor_ex(gradient.tensor([np.eye(2), SINGULAR]), check_errors=True)
    P, L, U = gradient.linalg.lu(gradient.tensor(SINGULAR))          # no error, as torch
    np.testing.assert_allclose((P @ L @ U).numpy(), SINGULAR)


def test_unpack_flags_and_the_old_forms():
    a = np.random.default_rng(0).standard_normal((2, 4, 3))
    LU, piv = gradient.linalg.lu_factor(gradient.tensor(a))
    tLU, tpiv = torch.linalg.lu_factor(torch.tensor(a))
    for flags in ((True, True), (False, True), (True, False)):
        ours, theirs = gradient.lu_unpack(LU, piv, *flags), torch.lu_unpack(tLU, tpiv, *flags)
        for o, t in zip(ours, theirs):
            assert tuple(o.shape) == tuple(t.shape)
            np.testing.assert_allclose(o.numpy(), t.numpy(), atol=1e-15)
    old, old_t = gradient.tensor(a).lu(get_infos=True), torch.tensor(a).lu(get_infos=True)
    assert len(old) == 3 and old[2].tolist() == old_t[2].tolist() == [0, 0]
    assert old[1].dtype is gradient.int32
    with pytest.raises(NotImplementedError, match="without pivoting"):
        gradient.linalg.lu_factor(gradient.tensor(a), pivot=False)


def test_float32_factors():
    a = np.random.default_rng(1).standard_normal((5, 5)).astype(np.float32)
    ours, theirs = gradient.linalg.lu_factor(gradient.tensor(a)), torch.linalg.lu_factor(torch.tensor(a))
    assert ours.LU.dtype is gradient.float32
    np.testing.assert_allclose(ours.LU.numpy(), theirs.LU.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ours.pivots.numpy(), theirs.pivots.numpy())


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0), (2, 0, 3), (0, 2, 2)])
def test_matrices_without_values_factor_as_in_torch(shape):
    # (NumPy's reshape cannot infer a -1 beside a 0: a ValueError from inside before)
    ours, theirs = gradient.linalg.lu(gradient.zeros(*shape)), torch.linalg.lu(torch.zeros(*shape))
    assert [tuple(t.shape) for t in ours] == [tuple(t.shape) for t in theirs]
    factor, pivots = gradient.linalg.lu_factor(gradient.zeros(*shape))
    expected = torch.linalg.lu_factor(torch.zeros(*shape))
    assert (tuple(factor.shape), tuple(pivots.shape)) == (tuple(expected[0].shape),
                                                          tuple(expected[1].shape))
