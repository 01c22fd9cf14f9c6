"""svd_lowrank and pca_lowrank against torch's: on matrices of rank at most q both are exact,
so singular values, subspaces and gradients compare; above it they are approximations."""

import numpy as np
import pytest
import torch

import gradient

rng = np.random.default_rng(3)


def low_rank(*batch, m=30, n=20, rank=5):
    return rng.standard_normal(batch + (m, rank)) @ rng.standard_normal(batch + (rank, n))


@pytest.mark.parametrize("shape", [dict(m=30, n=20), dict(m=20, n=30), dict(m=12, n=9)])
def test_svd_lowrank_is_exact_up_to_rank_q(shape):
    a = low_rank(**shape)
    U, S, V = gradient.svd_lowrank(gradient.tensor(a), q=6)
    m, n = a.shape
    assert U.shape == (m, 6) and S.shape == (6,) and V.shape == (n, 6)
    np.testing.assert_allclose(((U * S) @ V.mT).numpy(), a, atol=1e-10)
    np.testing.assert_allclose(S.numpy(), np.linalg.svd(a, compute_uv=False)[:6], atol=1e-10)
    np.testing.assert_allclose((U.mT @ U).numpy(), np.eye(6), atol=1e-10)
    _, theirs, _ = torch.svd_lowrank(torch.tensor(a), q=6)
    np.testing.assert_allclose(S.numpy(), theirs.numpy(), atol=1e-10)


def test_batches_and_the_subtracted_matrix():
    a = low_rank(3, rank=4)
    offset = rng.standard_normal((1, 20))
    U, S, V = gradient.svd_lowrank(gradient.tensor(a + offset), q=4, M=gradient.tensor(offset))
    assert U.shape == (3, 30, 4)
    np.testing.assert_allclose((U * S.unsqueeze(-2) @ V.mT).numpy(), a, atol=1e-10)


def test_pca_lowrank_finds_torchs_components():
    data = low_rank(m=40, n=10, rank=3) + 5.0        # centred, it has rank 3
    ours = gradient.pca_lowrank(gradient.tensor(data), q=3)
    theirs = torch.pca_lowrank(torch.tensor(data), q=3)
    np.testing.assert_allclose(ours[1].numpy(), theirs[1].numpy(), atol=1e-10)
    # the same directions, up to sign
    overlap = np.abs(ours[2].numpy().T @ theirs[2].numpy())
    np.testing.assert_allclose(overlap, np.eye(3), atol=1e-9)
    # uncentred, the mean is a component of its own
    assert gradient.pca_lowrank(gradient.tensor(data), q=3, center=False)[1][0] > ours[1][0]


def test_gradient_of_the_singular_values_is_torchs():
    a = low_rank(m=15, n=10, rank=4)
    ours = gradient.tensor(a, requires_grad=True)
    theirs = torch.tensor(a, requires_grad=True)
    gradient.svd_lowrank(ours, q=4)[1].sum().backward()
    torch.svd_lowrank(theirs, q=4)[1].sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), atol=1e-9)


def test_approximation_above_rank_q_captures_the_leading_values():
    # a decaying spectrum: two power iterations find the leading values to a few digits
    u, _ = np.linalg.qr(rng.standard_normal((50, 50)))
    v, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    spectrum = 2.0 ** -np.arange(40)
    a = (u[:, :40] * spectrum) @ v.T
    S = gradient.svd_lowrank(gradient.tensor(a), q=8, niter=2)[1].numpy()
    np.testing.assert_allclose(S[:4], spectrum[:4], rtol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="q=9"):
        gradient.svd_lowrank(gradient.randn(5, 8), q=9)
    with pytest.raises(gradient.errors.ShapeError, match="matrix"):
        gradient.pca_lowrank(gradient.randn(5))
    with pytest.raises(ValueError, match="niter"):
        gradient.pca_lowrank(gradient.randn(5, 4), niter=-1)
