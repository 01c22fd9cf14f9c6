"""The matrix, one-hot and composite constraints of ``torch.distributions.constraints``
(lower_triangular, corr_cholesky, square, symmetric, positive_semidefinite, one_hot, cat,
stack): each one's check against torch's on values inside and outside, and its event_dim and
is_discrete."""

import numpy as np
import pytest
import torch

import gradient

rng = np.random.default_rng(0)
A = rng.standard_normal((3, 4, 4))
SPD = A @ np.swapaxes(A, -1, -2) + 4 * np.eye(4)
L = np.linalg.cholesky(SPD)
CORR_L = L / np.linalg.norm(L, axis=-1, keepdims=True)
PSD = np.stack([SPD[0], -SPD[1], np.diag([1.0, 2.0, 0.0, 3.0])])   # in, out, in (singular)

VALUES = {
    "lower_triangular": [np.tril(A), A, np.tril(A)[0]],
    "corr_cholesky": [CORR_L, L, CORR_L * np.array([1, 1, -1, 1])[:, None]],
    "square": [A, A[:, :3], np.zeros((2, 0, 0))],
    "symmetric": [SPD, A, A[:, :3]],
    "positive_semidefinite": [PSD, SPD - 100 * np.eye(4), A[:, :3]],
    "positive_definite": [SPD, PSD, -SPD],
    "one_hot": [np.eye(4)[[0, 3, 1]], np.array([[0, 1, 1.0], [0.5, 0.5, 0]]),
                np.zeros((2, 3))],
}


@pytest.mark.parametrize("name", list(VALUES))
def test_matrix_and_one_hot_constraints_as_torchs(name):
    ours = getattr(gradient.distributions.constraints, name)
    theirs = getattr(torch.distributions.constraints, name)
    assert (ours.event_dim, ours.is_discrete) == (theirs.event_dim, theirs.is_discrete)
    for value in VALUES[name]:
        got = ours.check(gradient.tensor(value)).numpy()
        expected = theirs.check(torch.tensor(value)).numpy()
        np.testing.assert_array_equal(got, expected, err_msg=f"{name} of shape {value.shape}")


def _composites(C):
    return {
        "cat": C.cat([C.positive, C.real, C.unit_interval], dim=1, lengths=[2, 1, 1]),
        "cat_default_lengths": C.cat([C.positive, C.less_than(0.0)], dim=-1),
        "stack": C.stack([C.positive, C.interval(-1.0, 1.0), C.real], dim=1),
        "stack_of_simplexes": C.stack([C.simplex, C.simplex], dim=0),
    }


@pytest.mark.parametrize("name", list(_composites(gradient.distributions.constraints)))
def test_cat_and_stack_as_torchs(name):
    ours = _composites(gradient.distributions.constraints)[name]
    theirs = _composites(torch.distributions.constraints)[name]
    assert (ours.event_dim, ours.is_discrete) == (theirs.event_dim, theirs.is_discrete)
    values = {"cat": rng.standard_normal((5, 4)) * 2, "cat_default_lengths":
              rng.standard_normal((5, 2)), "stack": rng.standard_normal((5, 3)) * 2,
              "stack_of_simplexes": np.abs(rng.standard_normal((2, 3, 3)))}[name]
    if name == "stack_of_simplexes":
        values[0] /= values[0].sum(-1, keepdims=True)      # the first stack entry valid only
    got = ours.check(gradient.tensor(values)).numpy()
    expected = theirs.check(torch.tensor(values)).numpy()
    assert got.any() and not got.all()                   # both outcomes are exercised
    np.testing.assert_array_equal(got, expected)


def test_cat_and_stack_refuse_what_does_not_fit():
    C = gradient.distributions.constraints
    with pytest.raises(ValueError, match="one length each"):
        C.cat([C.real, C.real], lengths=[1])
    with pytest.raises(ValueError, match="expected 2 entries"):
        C.stack([C.real, C.real], dim=0).check(gradient.zeros(3))
