"""Decompositions and solvers, what the op table cannot express: errors for bad shapes, dtypes,
singular and indefinite matrices; the named tuples' fields; info codes; torch.svd's old API;
lstsq's drivers; batched shapes. Values and gradients are in table_linalg_decompositions.py.
"""

import numpy as np
import pytest
import torch

import gradient
from gradient.errors import AutogradError, DTypeError, LinAlgError, ShapeError


def pair(*shape, seed=0, dtype="float64", shift=0.0):
    """The same random values as a gradient tensor and a torch tensor (plus ``shift`` * I)."""
    data = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    if shift:
        data = data + shift * np.eye(shape[-1], dtype=dtype)
    return gradient.tensor(data), torch.tensor(data)


def close(ours, theirs, atol=1e-8):
    np.testing.assert_allclose(np.asarray(ours.detach().numpy()), theirs.detach().numpy(), atol=atol,
                               rtol=1e-6)


# ---------------------------------------------------------------------- input checks
@pytest.mark.parametrize("fn", ["inv", "det", "slogdet", "cholesky", "eigh", "eigvalsh",
                                "matrix_exp", "inv_ex", "cholesky_ex"])
def test_square_functions_refuse_non_square_input(fn):
    with pytest.raises(ShapeError, match=r"linalg\.\w+: expected A to be a square matrix .*\(2, 3\)"):
        getattr(gradient.linalg, fn)(gradient.randn(2, 3))


@pytest.mark.parametrize("fn", ["inv", "det", "qr", "svd", "svdvals", "pinv"])
def test_matrix_functions_refuse_vectors(fn):
    with pytest.raises(ShapeError, match="at least 2-d"):
        getattr(gradient.linalg, fn)(gradient.randn(3))


@pytest.mark.parametrize("fn", ["inv", "det", "cholesky", "qr", "svd", "eigh", "pinv"])
@pytest.mark.parametrize("dtype", [gradient.int64, gradient.float16, gradient.bool_])
def test_non_float_dtypes_are_refused_with_a_hint(fn, dtype):
    x = gradient.eye(3).to(dtype)
    with pytest.raises(DTypeError, match=r"expected A to be a float32 or float64 tensor.*\.float\(\)"):
        getattr(gradient.linalg, fn)(x)


def test_errors_are_runtime_errors_like_pytorchs():
    # PyTorch raises RuntimeError (torch.linalg.LinAlgError is one): ported except clauses work
    assert issubclass(LinAlgError, RuntimeError)
    assert gradient.linalg.LinAlgError is LinAlgError
    with pytest.raises(RuntimeError):
        gradient.linalg.inv(gradient.randn(2, 3))


def test_solve_checks_shapes_and_dtypes():
    A = gradient.eye(3)
    with pytest.raises(ShapeError, match=r"B needs 3 rows"):
        gradient.linalg.solve(A, gradient.randn(4, 2))
    with pytest.raises(DTypeError, match="same dtype"):
        gradient.linalg.solve(A, gradient.randn(3, 2, dtype=gradient.float64))
    with pytest.raises(ShapeError, match="do not broadcast"):
        gradient.linalg.solve(gradient.randn(2, 3, 3), gradient.randn(4, 3, 1))
    with pytest.raises(ShapeError, match="left=False, B must be a matrix"):
        gradient.linalg.solve(A, gradient.randn(3), left=False)
    with pytest.raises(ShapeError, match="B needs 3 rows"):
        gradient.linalg.solve_triangular(A, gradient.randn(2, 3), upper=True)


def test_bad_modes_are_named():
    with pytest.raises(ValueError, match="mode must be 'reduced', 'complete' or 'r'"):
        gradient.linalg.qr(gradient.randn(3, 3), mode="economic")
    with pytest.raises(ValueError, match="UPLO must be 'L' or 'U'"):
        gradient.linalg.eigh(gradient.eye(3), UPLO="X")
    with pytest.raises(ValueError, match="driver must be"):
        gradient.linalg.lstsq(gradient.randn(3, 2), gradient.randn(3, 1), driver="gelsx")


# ---------------------------------------------------------------------- singular and indefinite
def test_inv_of_a_singular_matrix_raises_naming_the_batch_element():
    A = gradient.stack([gradient.eye(3), gradient.zeros(3, 3)])
    with pytest.raises(LinAlgError, match=r"linalg\.inv: \(Batch element 1\): The diagonal element 1 "
                                          r"is zero.*singular"):
        gradient.linalg.inv(A)
    with pytest.raises(LinAlgError, match="singular"):
        gradient.inverse(gradient.zeros(2, 2))
    with pytest.raises(LinAlgError, match="singular"):
        gradient.linalg.solve(gradient.tensor([[1.0, 2.0], [2.0, 4.0]]), gradient.ones(2))


def test_inv_ex_reports_info_instead_of_raising():
    A = gradient.stack([gradient.eye(2), gradient.tensor([[1.0, 2.0], [2.0, 4.0]])])
    inverse, info = gradient.linalg.inv_ex(A)
    t_info = torch.linalg.inv_ex(torch.tensor(A.numpy())).info
    assert info.dtype == gradient.int32 and info.tolist() == t_info.tolist() == [0, 2]
    np.testing.assert_array_equal(inverse[0].numpy(), np.eye(2))
    assert gradient.linalg.inv_ex(gradient.eye(2))._fields == ("inverse", "info")
    with pytest.raises(LinAlgError, match=r"Batch element 1"):
        gradient.linalg.inv_ex(A, check_errors=True)


def test_cholesky_of_an_indefinite_matrix_raises_like_pytorch():
    A = -gradient.eye(3)
    with pytest.raises(LinAlgError, match=r"not positive-definite \(the leading minor of order 1 is "
                                          r"not positive-definite\)"):
        gradient.linalg.cholesky(A)
    with pytest.raises(LinAlgError, match="positive-definite"):
        gradient.cholesky(A)


def test_cholesky_ex_gives_pytorchs_info_and_partial_factor():
    data = np.array([[[4.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.eye(3) * 2])
    L, info = gradient.linalg.cholesky_ex(gradient.tensor(data))
    t = torch.linalg.cholesky_ex(torch.tensor(data))
    assert info.tolist() == t.info.tolist() == [2, 0]
    close(L[1], t.L[1])
    assert gradient.linalg.cholesky_ex(gradient.eye(2))._fields == ("L", "info")
    with pytest.raises(LinAlgError, match="Batch element 0"):
        gradient.linalg.cholesky_ex(gradient.tensor(data), check_errors=True)


def test_det_and_slogdet_of_a_singular_matrix():
    A = gradient.tensor([[1.0, 2.0], [2.0, 4.0]])
    assert gradient.linalg.det(A).item() == 0.0
    sign, logabsdet = gradient.linalg.slogdet(A)
    assert sign.item() == 0.0 and logabsdet.item() == -np.inf
    assert np.isnan(gradient.logdet(-gradient.eye(3)).item())   # negative determinant: NaN
    assert gradient.logdet(A).item() == -np.inf


def test_det_gradient_at_a_singular_matrix_raises_clearly():
    A = gradient.tensor([[1.0, 2.0], [2.0, 4.0]], requires_grad=True)
    with pytest.raises(LinAlgError, match="gradient at a singular matrix is not supported"):
        gradient.linalg.det(A).backward()


def test_solve_triangular_with_a_zero_on_the_diagonal_gives_inf_like_pytorch():
    A, b = np.array([[1.0, 1.0], [0.0, 0.0]]), np.ones((2, 1))
    ours = gradient.linalg.solve_triangular(gradient.tensor(A), gradient.tensor(b), upper=True)
    theirs = torch.linalg.solve_triangular(torch.tensor(A), torch.tensor(b), upper=True)
    assert not np.isfinite(ours.numpy()).all() and not np.isfinite(theirs.numpy()).all()


# ---------------------------------------------------------------------- named tuples and old APIs
@pytest.mark.filterwarnings(r"ignore:torch\.:UserWarning")  # torch.qr, torch.triangular_solve
def test_named_tuples_have_pytorchs_fields():
    A = gradient.eye(3) + 0.1 * gradient.randn(3, 3)
    S = A @ A.mT
    cases = {
        "slogdet": gradient.linalg.slogdet(A), "qr": gradient.linalg.qr(A),
        "eigh": gradient.linalg.eigh(S), "svd": gradient.linalg.svd(A),
        "lstsq": gradient.linalg.lstsq(A, gradient.randn(3, 2)),
        "top-slogdet": gradient.slogdet(A), "top-qr": gradient.qr(A), "top-svd": gradient.svd(A),
        "triangular_solve": gradient.triangular_solve(gradient.randn(3, 1), A),
    }
    torch_A = torch.tensor(A.numpy())
    torch_S = torch.tensor(S.numpy())
    reference = {
        "slogdet": torch.linalg.slogdet(torch_A), "qr": torch.linalg.qr(torch_A),
        "eigh": torch.linalg.eigh(torch_S), "svd": torch.linalg.svd(torch_A),
        "lstsq": torch.linalg.lstsq(torch_A, torch.randn(3, 2)),
        "top-slogdet": torch.slogdet(torch_A), "top-qr": torch.qr(torch_A), "top-svd": torch.svd(torch_A),
        "triangular_solve": torch.triangular_solve(torch.randn(3, 1), torch_A),
    }
    for name, result in cases.items():
        theirs = reference[name]
        assert type(result).__name__ == type(theirs).__name__, name
        fields = [f for f in dir(theirs) if not f.startswith("_") and f not in ("count", "index",
                                                                                 "n_fields",
                                                                                 "n_sequence_fields",
                                                                                 "n_unnamed_fields")]
        assert sorted(result._fields) == sorted(fields), name
        for f in result._fields:
            assert tuple(getattr(result, f).shape) == tuple(getattr(theirs, f).shape), (name, f)


def test_torch_svd_returns_v_not_vh():
    a, t = pair(4, 3)
    U, S, V = gradient.svd(a)
    close((U * S.unsqueeze(-2)) @ V.mT, t)
    assert tuple(U.shape) == (4, 3) and tuple(V.shape) == (3, 3)
    U, S, V = a.svd(some=False)
    assert tuple(U.shape) == (4, 4) and tuple(V.shape) == (3, 3)
    U, S, V = gradient.svd(a, compute_uv=False)
    tU, tS, tV = torch.svd(t, compute_uv=False)
    assert U.shape == tuple(tU.shape) and V.shape == tuple(tV.shape) and not U.numpy().any()
    close(S, tS)


def test_qr_modes_shapes():
    a, t = pair(2, 5, 3)
    for mode in ("reduced", "complete", "r"):
        Q, R = gradient.linalg.qr(a, mode=mode)
        tQ, tR = torch.linalg.qr(t, mode=mode)
        assert Q.shape == tuple(tQ.shape) and R.shape == tuple(tR.shape), mode
        close(R, tR)


def test_lstsq_drivers_fill_what_pytorch_fills():
    a, t = pair(2, 5, 3, seed=1)
    b, tb = pair(2, 5, 2, seed=2)
    for driver in (None, "gels", "gelsy", "gelsd", "gelss"):
        ours, theirs = gradient.linalg.lstsq(a, b, driver=driver), torch.linalg.lstsq(t, tb, driver=driver)
        for field in ("solution", "residuals", "rank", "singular_values"):
            o, th = getattr(ours, field), getattr(theirs, field)
            assert o.shape == tuple(th.shape) and o.dtype.name == str(th.dtype)[6:], (driver, field)
            close(o, th, atol=1e-7)


def test_lstsq_rank_deficient_gives_the_minimum_norm_solution():
    a = gradient.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]], dtype=gradient.float64)
    b = gradient.tensor([[2.0], [2.0], [1.0]], dtype=gradient.float64)
    result = gradient.linalg.lstsq(a, b)
    close(result.solution, torch.linalg.lstsq(torch.tensor(a.numpy()), torch.tensor(b.numpy())).solution)
    assert result.rank.item() == 1


# ---------------------------------------------------------------------- batches and broadcasting
def test_batched_shapes_match_pytorch():
    a, t = pair(2, 3, 4, 4, seed=3, shift=4.0)
    b, tb = pair(3, 4, 2, seed=4)
    pairs = [
        (gradient.linalg.inv(a), torch.linalg.inv(t)),
        (gradient.linalg.det(a), torch.linalg.det(t)),
        (gradient.linalg.solve(a, b), torch.linalg.solve(t, tb)),
        (gradient.linalg.solve(a, b[0, :, 0]), torch.linalg.solve(t, tb[0, :, 0])),
        (gradient.linalg.matrix_power(a, 3), torch.linalg.matrix_power(t, 3)),
        (gradient.linalg.matrix_exp(a * 0.1), torch.linalg.matrix_exp(t * 0.1)),
        (gradient.linalg.svdvals(a), torch.linalg.svdvals(t)),
        (gradient.linalg.pinv(a), torch.linalg.pinv(t)),
        (gradient.linalg.matrix_rank(a), torch.linalg.matrix_rank(t)),
        (gradient.linalg.cholesky(a @ a.mT), torch.linalg.cholesky(t @ t.mT)),
    ]
    for ours, theirs in pairs:
        assert ours.shape == tuple(theirs.shape)
        close(ours, theirs, atol=1e-7)


def test_empty_matrices():
    assert gradient.linalg.det(gradient.zeros(2, 0, 0)).tolist() == [1.0, 1.0]
    assert gradient.linalg.inv(gradient.zeros(0, 0)).shape == (0, 0)
    assert gradient.linalg.pinv(gradient.zeros(3, 0)).shape == (0, 3)
    assert gradient.linalg.matrix_rank(gradient.zeros(2, 3, 0)).tolist() == [0, 0]


# ---------------------------------------------------------------------- gradients the table skips
def test_qr_complete_tall_refuses_the_gradient_of_q_like_pytorch():
    a = gradient.randn(4, 2, requires_grad=True)
    Q, R = gradient.linalg.qr(a, mode="complete")
    with pytest.raises(AutogradError, match="not differentiable when mode='complete'"):
        Q.sum().backward()
    Q, R = gradient.linalg.qr(a, mode="complete")
    R.sum().backward()          # R alone is determined by A: its gradient is the reduced one's
    a2 = a.detach().requires_grad_()
    gradient.linalg.qr(a2)[1].sum().backward()
    close(a.grad, torch.tensor(a2.grad.numpy()))


def test_qr_mode_r_is_differentiable_here():
    a, t = pair(4, 3, seed=5)
    a.requires_grad_()
    gradient.linalg.qr(a, mode="r").R.sum().backward()
    t.requires_grad_()
    torch.linalg.qr(t).R.sum().backward()
    close(a.grad, t.grad)


def test_svdvals_gradient_with_repeated_singular_values_is_finite():
    # the gradient of the singular values alone is U Vh: defined even when they repeat
    a = gradient.eye(3, dtype=gradient.float64).requires_grad_()
    gradient.linalg.svdvals(a).sum().backward()
    close(a.grad, torch.eye(3, dtype=torch.float64))


def test_second_derivative_of_logdet_matches_pytorch():
    a, t = pair(3, 3, seed=6, shift=3.0)
    a.requires_grad_()
    t.requires_grad_()
    (g,) = gradient.autograd.grad(gradient.linalg.slogdet(a).logabsdet, a, create_graph=True)
    (tg,) = torch.autograd.grad(torch.linalg.slogdet(t).logabsdet, t, create_graph=True)
    (gg,) = gradient.autograd.grad((g * g).sum(), a)
    (tgg,) = torch.autograd.grad((tg * tg).sum(), t)
    close(gg, tgg, atol=1e-7)


# ---------------------------------------------------------------------- small helpers
def test_matrix_power_checks_its_arguments():
    with pytest.raises(ShapeError, match="square"):
        gradient.linalg.matrix_power(gradient.randn(2, 3), 2)
    with pytest.raises(TypeError, match="n must be an int"):
        gradient.linalg.matrix_power(gradient.randn(2, 2), 1.5)
    with pytest.raises(LinAlgError, match="singular"):
        gradient.linalg.matrix_power(gradient.zeros(2, 2), -1)
    p = gradient.linalg.matrix_power(gradient.randn(2, 3, 3), 0)
    assert p.shape == (2, 3, 3) and (p.numpy() == np.eye(3)).all()


def test_cross_default_dim_is_the_first_of_size_3_with_a_warning():
    a, t = pair(3, 4, seed=7)
    b, tb = pair(3, 4, seed=8)
    with pytest.warns(UserWarning, match="without specifying the dim"):
        ours = gradient.cross(a, b)
    close(ours, torch.linalg.cross(t, tb, dim=0))
    with pytest.raises(ShapeError, match="must have size 3"):
        gradient.linalg.cross(a, b)        # dim=-1 has size 4


def test_trace_and_multi_dot_errors():
    with pytest.raises(ShapeError, match="2-d"):
        gradient.trace(gradient.randn(2, 2, 2))
    with pytest.raises(ShapeError, match="at least 2 tensors"):
        gradient.linalg.multi_dot([gradient.randn(2, 2)])
    with pytest.raises(ShapeError, match="tensor 1 must be 2-d"):
        gradient.linalg.multi_dot([gradient.randn(2, 2), gradient.randn(2), gradient.randn(2, 2)])
    with pytest.raises(ShapeError, match="do not align"):
        gradient.linalg.multi_dot([gradient.randn(2, 3), gradient.randn(2, 2)])


def test_matrix_norm_by_singular_values():
    a, t = pair(3, 4, 5, seed=9)
    for ord in ("nuc", 2, -2):
        close(gradient.linalg.matrix_norm(a, ord=ord), torch.linalg.matrix_norm(t, ord=ord))
        close(gradient.linalg.norm(a[0], ord=ord), torch.linalg.norm(t[0], ord=ord))


def test_tensor_methods_exist_with_torchs_names():
    for name in ("inverse", "det", "logdet", "slogdet", "cholesky", "qr", "svd", "pinverse",
                 "matrix_power", "matrix_exp", "trace", "kron", "cross"):
        assert hasattr(gradient.Tensor, name) and hasattr(gradient, name), name
