"""Op table entries for the decompositions and solvers (gradient/ops/linalg_decompositions.py):
inv, det, slogdet, solve, solve_triangular, cholesky, qr, eigh, svd, pinv, lstsq, matrix_exp,
and LU (gradient/ops/lu_factorization.py) ...

The samples are well-conditioned: near-identity matrices for the solvers, symmetric
positive-definite ``A Aᵀ + nI`` built inside the op for cholesky (so gradcheck perturbs ``A``
and the input stays SPD), symmetric matrices with spaced eigenvalues for eigh and matrices with
spaced singular values for svd. Eigenvectors and singular vectors are compared through
sign-invariant functions of them (their absolute values), as PyTorch's own tests do.
"""

import numpy as np

from .op_info import OpInfo, Sample, arr

_TOL = dict(atol=1e-4, rtol=1e-4)   # float32 LAPACK results differ in the last bits


def well(r, *shape):
    """Square matrices near the identity: invertible, condition number below ~3."""
    n = shape[-1]
    return arr(r, *shape, low=-0.3, high=0.3) + np.eye(n)


def _orthogonal(r, *shape):
    q, _ = np.linalg.qr(r.standard_normal(shape))
    return q


def _permuted(r, *shape):
    """Near-identity matrices (m, n) with their rows in a random order: LU with partial
    pivoting swaps them back, each pivot clearly the largest in its column."""
    m, n = shape[-2:]
    base = arr(r, *shape, low=-0.2, high=0.2) + np.eye(m, n)
    return np.ascontiguousarray(base[..., r.permutation(m), :])


def _lu_samples(r):
    return [Sample((_permuted(r, 4, 4),), name="square"), Sample((_permuted(r, 3, 5),), name="wide"),
            Sample((_permuted(r, 5, 3),), name="tall"), Sample((_permuted(r, 2, 3, 3),), name="batched")]


def spaced_symmetric(r, *shape):
    """Symmetric matrices with eigenvalues spread over [-2, 3] (well apart)."""
    n = shape[-1]
    q = _orthogonal(r, *shape)
    w = np.linspace(-2.0, 3.0, n) + r.uniform(-0.1, 0.1, size=shape[:-1])
    return (q * w[..., None, :]) @ np.swapaxes(q, -1, -2)


def spaced_singular(r, *shape):
    """Matrices with singular values spread over [0.5, 3]."""
    m, n = shape[-2:]
    k = min(m, n)
    u = _orthogonal(r, *shape[:-2], m, k)
    v = _orthogonal(r, *shape[:-2], n, k)
    s = np.linspace(3.0, 0.5, k)
    return (u * s) @ np.swapaxes(v, -1, -2)


def _spd(m, a):
    """A symmetric positive-definite matrix made from any square ``a``."""
    return a @ a.mT + a.shape[-1] * m.eye(a.shape[-1], dtype=a.dtype, device=a.device)


def _sym(a):
    return (a + a.mT) / 2


def _eigh(m, a, **kw):
    w, v = m.linalg.eigh(_sym(a), **kw)
    return w, v.abs()


def _slogdet(result):
    sign, logabsdet = result
    return sign.detach(), logabsdet


def _svd(m, a, full_matrices):
    u, s, vh = m.linalg.svd(a, full_matrices=full_matrices)
    k = s.shape[-1]
    return u[..., :, :k].abs(), s, vh[..., :k, :].abs()   # the columns A determines


def _solver_samples(r):
    return [
        Sample((well(r, 3, 3), arr(r, 3, 2)), name="matrix"),
        Sample((well(r, 3, 3), arr(r, 3)), name="vector"),
        Sample((well(r, 2, 3, 3), arr(r, 3, 2)), name="broadcast-batch"),
        Sample((well(r, 3, 3), arr(r, 2, 3, 1)), name="broadcast-b"),
        Sample((well(r, 2, 3, 3), arr(r, 2, 3)), name="batched-vector"),
    ]


OPS = [
    # ------------------------------------------------------------------ inverse and determinants
    OpInfo("linalg.inv", lambda m, a: m.linalg.inv(a), lambda r: [
        Sample((well(r, 3, 3),)),
        Sample((well(r, 2, 2, 3, 3),), name="batched"),
        Sample((well(r, 1, 1),), name="1x1"),
        Sample((well(r, 0, 3, 3),), name="empty-batch"),
    ], **_TOL),
    OpInfo("inverse", lambda m, a: m.inverse(a), lambda r: [Sample((well(r, 3, 3),))], **_TOL),
    OpInfo("inverse_method", lambda m, a: a.inverse(), lambda r: [Sample((well(r, 2, 3, 3),))], **_TOL),
    OpInfo("linalg.inv_ex", lambda m, a: tuple(m.linalg.inv_ex(a)), lambda r: [
        Sample((well(r, 2, 3, 3),)),
    ], **_TOL),
    OpInfo("linalg.det", lambda m, a: m.linalg.det(a), lambda r: [
        Sample((arr(r, 3, 3),)),
        Sample((arr(r, 2, 4, 4),), name="batched"),
        Sample((arr(r, 1, 1),), name="1x1"),
    ], **_TOL),
    OpInfo("det", lambda m, a: m.det(a), lambda r: [Sample((well(r, 3, 3),))], **_TOL),
    OpInfo("det_method", lambda m, a: a.det(), lambda r: [Sample((well(r, 2, 2, 2),))], **_TOL),
    # sign has no gradient in gradient (in PyTorch it requires grad but gets none): detached here
    OpInfo("linalg.slogdet", lambda m, a: _slogdet(m.linalg.slogdet(a)), lambda r: [
        Sample((arr(r, 3, 3),)),
        Sample((arr(r, 2, 3, 3),), name="batched"),
    ], **_TOL),
    OpInfo("slogdet_method", lambda m, a: _slogdet(a.slogdet()), lambda r: [Sample((well(r, 3, 3),))],
           **_TOL),
    OpInfo("logdet", lambda m, a: m.logdet(_spd(m, a)), lambda r: [
        Sample((arr(r, 3, 3),)),
        Sample((arr(r, 2, 3, 3),), name="batched"),
    ], **_TOL),
    OpInfo("logdet_method", lambda m, a: _spd(m, a).logdet(), lambda r: [Sample((arr(r, 3, 3),))],
           **_TOL),

    # ------------------------------------------------------------------ solvers
    OpInfo("linalg.solve", lambda m, a, b, **k: m.linalg.solve(a, b, **k), lambda r: (
        _solver_samples(r) + [
            Sample((well(r, 3, 3), arr(r, 2, 3)), {"left": False}, name="right"),
            Sample((well(r, 2, 3, 3), arr(r, 1, 3)), {"left": False}, name="right-broadcast"),
        ]), **_TOL),
    OpInfo("linalg.solve_triangular", lambda m, a, b, **k: m.linalg.solve_triangular(a, b, **k),
           lambda r: [
               Sample((well(r, 3, 3), arr(r, 3, 2)), {"upper": True}, name="upper"),
               Sample((well(r, 3, 3), arr(r, 3, 2)), {"upper": False}, name="lower"),
               Sample((well(r, 3, 3), arr(r, 2, 3)), {"upper": True, "left": False}, name="right"),
               Sample((well(r, 3, 3), arr(r, 3, 2)), {"upper": False, "unitriangular": True},
                      name="unit"),
               Sample((well(r, 2, 3, 3), arr(r, 3, 1)), {"upper": True, "unitriangular": True,
                                                          "left": True}, name="broadcast-unit"),
           ], **_TOL),
    # LU: near-identity matrices with their rows permuted (so that pivoting swaps rows, and no
    # pivot is close to a tie that a perturbation could flip), square, wide, tall and batched
    OpInfo("linalg.lu_factor", lambda m, a: m.linalg.lu_factor(a).LU, lambda r: _lu_samples(r),
           **_TOL),
    OpInfo("linalg.lu_factor-pivots", lambda m, a: m.linalg.lu_factor(a).pivots,
           lambda r: _lu_samples(r), grad=False),
    OpInfo("linalg.lu", lambda m, a: tuple(m.linalg.lu(a)), lambda r: _lu_samples(r), **_TOL),
    OpInfo("linalg.lu_solve", lambda m, a, b, **k: m.linalg.lu_solve(*m.linalg.lu_factor(a), b, **k),
           lambda r: [
               Sample((_permuted(r, 3, 3), arr(r, 3, 2)), name="left"),
               Sample((_permuted(r, 3, 3), arr(r, 3, 2)), {"adjoint": True}, name="adjoint"),
               Sample((_permuted(r, 3, 3), arr(r, 2, 3)), {"left": False}, name="right"),
               Sample((_permuted(r, 2, 3, 3), arr(r, 2, 3, 1)), name="batched"),
           ], **_TOL),
    OpInfo("lu_solve", lambda m, b, a: m.lu_solve(b, *m.linalg.lu_factor(a)),
           lambda r: [Sample((arr(r, 3, 2), _permuted(r, 3, 3)))], **_TOL),
    OpInfo("linalg.solve_ex", lambda m, a, b, **k: tuple(m.linalg.solve_ex(a, b, **k)), lambda r: [
        Sample((well(r, 3, 3), arr(r, 3)), name="vector"),
        Sample((well(r, 2, 3, 3), arr(r, 2, 2, 3)), {"left": False}, name="right"),
    ], **_TOL),
    OpInfo("linalg.tensorinv", lambda m, a, **k: m.linalg.tensorinv(a, **k), lambda r: [
        Sample((well(r, 6, 6).reshape(6, 2, 3),), {"ind": 1}, name="ind=1"),
        Sample((well(r, 4, 4).reshape(2, 2, 2, 2),), name="ind=2"),
    ], **_TOL),
    OpInfo("linalg.tensorsolve", lambda m, a, b, **k: m.linalg.tensorsolve(a, b, **k), lambda r: [
        Sample((well(r, 6, 6).reshape(2, 3, 6), arr(r, 2, 3))),
        Sample((np.ascontiguousarray(well(r, 6, 6).reshape(2, 3, 6).transpose(2, 0, 1)), arr(r, 2, 3)),
               {"dims": (0,)}, name="dims"),
    ], **_TOL),
    OpInfo("linalg.vander", lambda m, x, **k: m.linalg.vander(x, **k), lambda r: [
        Sample((arr(r, 4),)), Sample((arr(r, 2, 3),), {"N": 5}, name="N=5"),
    ], **_TOL),
    OpInfo("triangular_solve", lambda m, b, a, **k: tuple(m.triangular_solve(b, a, **k)), lambda r: [
        Sample((arr(r, 3, 2), well(r, 3, 3)), name="upper"),
        Sample((arr(r, 3, 2), well(r, 3, 3)), {"upper": False, "transpose": True}, name="lower-T"),
    ], **_TOL),

    # ------------------------------------------------------------------ cholesky
    OpInfo("linalg.cholesky", lambda m, a, **k: m.linalg.cholesky(_spd(m, a), **k), lambda r: [
        Sample((arr(r, 3, 3),)),
        Sample((arr(r, 2, 3, 3),), name="batched"),
        Sample((arr(r, 3, 3),), {"upper": True}, name="upper"),
    ], **_TOL),
    OpInfo("linalg.cholesky_ex", lambda m, a: tuple(m.linalg.cholesky_ex(_spd(m, a))), lambda r: [
        Sample((arr(r, 2, 3, 3),)),
    ], **_TOL),
    OpInfo("cholesky", lambda m, a, **k: m.cholesky(_spd(m, a), **k), lambda r: [
        Sample((arr(r, 3, 3),)),
        Sample((arr(r, 3, 3),), {"upper": True}, name="upper"),
    ], **_TOL),
    OpInfo("cholesky_method", lambda m, a: _spd(m, a).cholesky(), lambda r: [Sample((arr(r, 3, 3),))],
           **_TOL),
    OpInfo("cholesky_solve",
           lambda m, b, a, **k: m.cholesky_solve(b, m.linalg.cholesky(_spd(m, a), upper=k.get("upper", False)), **k),
           lambda r: [
               Sample((arr(r, 3, 2), arr(r, 3, 3))),
               Sample((arr(r, 2, 3, 2), arr(r, 2, 3, 3)), {"upper": True}, name="upper-batched"),
           ], **_TOL),
    OpInfo("cholesky_inverse", lambda m, a: m.cholesky_inverse(m.linalg.cholesky(_spd(m, a))),
           lambda r: [Sample((arr(r, 3, 3),))], **_TOL),

    # ------------------------------------------------------------------ qr
    OpInfo("linalg.qr", lambda m, a, **k: tuple(m.linalg.qr(a, **k)), lambda r: [
        Sample((arr(r, 4, 3),), name="tall"),
        Sample((arr(r, 3, 3),), name="square"),
        Sample((arr(r, 3, 5),), name="wide"),
        Sample((arr(r, 2, 4, 2),), name="batched"),
        Sample((arr(r, 3, 5),), {"mode": "complete"}, name="wide-complete"),
        Sample((arr(r, 3, 3),), {"mode": "complete"}, name="square-complete"),
    ], **_TOL),
    # mode='r': PyTorch refuses to differentiate it (gradient can), so forward only
    OpInfo("linalg.qr_r", lambda m, a: m.linalg.qr(a, mode="r")[1], lambda r: [
        Sample((arr(r, 4, 3),)),
    ], grad=False, **_TOL),
    OpInfo("qr", lambda m, a, **k: tuple(m.qr(a, **k)), lambda r: [
        Sample((arr(r, 4, 3),)),
        Sample((arr(r, 3, 4),), {"some": False}, name="complete-wide"),
    ], **_TOL),
    OpInfo("qr_method", lambda m, a: tuple(a.qr()), lambda r: [Sample((arr(r, 3, 3),))], **_TOL),

    # ------------------------------------------------------------------ eigh
    OpInfo("linalg.eigh", lambda m, a, **k: _eigh(m, a, **k), lambda r: [
        Sample((spaced_symmetric(r, 3, 3),)),
        Sample((spaced_symmetric(r, 2, 4, 4),), name="batched"),
        Sample((spaced_symmetric(r, 3, 3),), {"UPLO": "U"}, name="upper"),
    ], **_TOL),
    OpInfo("linalg.eigvalsh", lambda m, a, **k: m.linalg.eigvalsh(_sym(a), **k), lambda r: [
        Sample((spaced_symmetric(r, 3, 3),)),
        Sample((spaced_symmetric(r, 2, 3, 3),), {"UPLO": "U"}, name="batched-upper"),
    ], **_TOL),

    # ------------------------------------------------------------------ svd
    OpInfo("linalg.svd", lambda m, a, **k: _svd(m, a, **k), lambda r: [
        Sample((spaced_singular(r, 4, 3),), {"full_matrices": False}, name="tall"),
        Sample((spaced_singular(r, 3, 5),), {"full_matrices": False}, name="wide"),
        Sample((spaced_singular(r, 3, 3),), {"full_matrices": False}, name="square"),
        Sample((spaced_singular(r, 2, 4, 3),), {"full_matrices": True}, name="full-batched"),
    ], **_TOL),
    OpInfo("linalg.svd_reconstruct",
           lambda m, a: (lambda u, s, vh: (u * s.unsqueeze(-2)) @ vh)(*m.linalg.svd(a, full_matrices=False)),
           lambda r: [Sample((spaced_singular(r, 4, 3),))], **_TOL),
    OpInfo("linalg.svdvals", lambda m, a: m.linalg.svdvals(a), lambda r: [
        Sample((spaced_singular(r, 4, 3),)),
        Sample((spaced_singular(r, 2, 3, 5),), name="batched-wide"),
    ], **_TOL),
    OpInfo("svd", lambda m, a, **k: (lambda u, s, v: (u.abs(), s, v.abs()))(*m.svd(a, **k)), lambda r: [
        Sample((spaced_singular(r, 4, 3),)),
        Sample((spaced_singular(r, 3, 4),), name="wide"),
    ], **_TOL),
    OpInfo("svd_no_uv", lambda m, a: tuple(m.svd(a, compute_uv=False)), lambda r: [
        Sample((spaced_singular(r, 4, 3),)),
    ], **_TOL),
    OpInfo("svd_method", lambda m, a: a.svd()[1], lambda r: [Sample((spaced_singular(r, 3, 3),))],
           **_TOL),
    OpInfo("linalg.matrix_norm_svd", lambda m, a, **k: m.linalg.matrix_norm(a, **k), lambda r: [
        Sample((spaced_singular(r, 4, 3),), {"ord": "nuc"}, name="nuc"),
        Sample((spaced_singular(r, 2, 3, 4),), {"ord": 2}, name="2"),
        Sample((spaced_singular(r, 3, 3),), {"ord": -2, "keepdim": True}, name="-2-keepdim"),
        Sample((spaced_singular(r, 4, 3),), {"ord": "nuc", "dim": (1, 0)}, name="nuc-dims"),
    ], **_TOL),
    OpInfo("linalg.cond", lambda m, a, **k: m.linalg.cond(a, **k), lambda r: [
        Sample((spaced_singular(r, 4, 3),), name="2"),
        Sample((spaced_singular(r, 3, 5),), {"p": -2}, name="-2"),
    ], **_TOL),
    # PyTorch's backward of cond for these p fails (an in-place write in its inv_ex): forward only
    OpInfo("linalg.cond_norms", lambda m, a, **k: m.linalg.cond(a, **k), lambda r: [
        Sample((well(r, 3, 3),), {"p": "fro"}, name="fro"),
        Sample((well(r, 2, 3, 3),), {"p": 1}, name="1"),
        Sample((well(r, 3, 3),), {"p": float("inf")}, name="inf"),
    ], grad=False, **_TOL),

    # ------------------------------------------------------------------ pinv and lstsq
    OpInfo("linalg.pinv", lambda m, a, **k: m.linalg.pinv(a, **k), lambda r: [
        Sample((spaced_singular(r, 4, 3),), name="tall"),
        Sample((spaced_singular(r, 3, 5),), name="wide"),
        Sample((spaced_singular(r, 2, 3, 3),), name="batched"),
        Sample((spaced_singular(r, 4, 3),), {"atol": 0.1}, name="atol"),
    ], **_TOL),
    OpInfo("linalg.pinv_hermitian", lambda m, a: m.linalg.pinv(_sym(a), hermitian=True), lambda r: [
        Sample((spaced_symmetric(r, 3, 3),)),
    ], **_TOL),
    OpInfo("pinverse", lambda m, a: m.pinverse(a), lambda r: [Sample((spaced_singular(r, 4, 3),))],
           **_TOL),
    OpInfo("pinverse_method", lambda m, a: a.pinverse(), lambda r: [Sample((spaced_singular(r, 2, 3),))],
           **_TOL),
    OpInfo("linalg.lstsq", lambda m, a, b, **k: tuple(m.linalg.lstsq(a, b, **k)), lambda r: [
        Sample((spaced_singular(r, 5, 3), arr(r, 5, 2)), name="tall"),
        Sample((spaced_singular(r, 2, 5, 3), arr(r, 2, 5, 2)), name="batched"),
        Sample((spaced_singular(r, 3, 5), arr(r, 3, 2)), name="wide"),
    ], **_TOL),
    # the other drivers also fill residuals and singular values (which PyTorch does not
    # differentiate): compare them in the forward, the solution in the backward
    OpInfo("linalg.lstsq_gelsd", lambda m, a, b: tuple(m.linalg.lstsq(a, b, driver="gelsd"))[1:],
           lambda r: [Sample((spaced_singular(r, 5, 3), arr(r, 5, 2)))], grad=False, **_TOL),
    OpInfo("linalg.lstsq_vector", lambda m, a, b: m.linalg.lstsq(a, b).solution, lambda r: [
        Sample((spaced_singular(r, 5, 3), arr(r, 5)))], **_TOL),
    OpInfo("linalg.matrix_rank", lambda m, a, **k: m.linalg.matrix_rank(a, **k), lambda r: [
        Sample((spaced_singular(r, 4, 3),), name="full"),
        Sample((spaced_singular(r, 4, 2) @ arr(r, 2, 3),), name="rank-2"),
        Sample((spaced_singular(r, 2, 3, 3),), {"atol": 1.0}, name="atol"),
        Sample((spaced_symmetric(r, 3, 3),), {"hermitian": True}, name="hermitian"),
    ], grad=False),

    # ------------------------------------------------------------------ matrix functions
    OpInfo("linalg.matrix_power", lambda m, a, **k: m.linalg.matrix_power(a, **k), lambda r: [
        Sample((arr(r, 3, 3),), {"n": 3}, name="3"),
        Sample((arr(r, 2, 3, 3),), {"n": 2}, name="batched"),
        Sample((arr(r, 3, 3),), {"n": 1}, name="1"),
        Sample((arr(r, 3, 3),), {"n": 0}, name="0"),
        Sample((well(r, 3, 3),), {"n": -2}, name="negative"),
    ], **_TOL),
    OpInfo("matrix_power_method", lambda m, a: a.matrix_power(5), lambda r: [Sample((well(r, 3, 3),))],
           **_TOL),
    OpInfo("linalg.matrix_exp", lambda m, a: m.linalg.matrix_exp(a), lambda r: [
        Sample((arr(r, 3, 3),)),
        Sample((arr(r, 2, 2, 2),), name="batched"),
        Sample((arr(r, 1, 1),), name="1x1"),
    ], **_TOL),
    OpInfo("matrix_exp", lambda m, a: m.matrix_exp(a), lambda r: [Sample((arr(r, 3, 3),))], **_TOL),
    OpInfo("matrix_exp_method", lambda m, a: a.matrix_exp(), lambda r: [Sample((arr(r, 2, 3, 3),))],
           **_TOL),

    # ------------------------------------------------------------------ products and small helpers
    OpInfo("trace", lambda m, a: m.trace(a), lambda r: [
        Sample((arr(r, 3, 3),)),
        Sample((arr(r, 2, 4),), name="rectangular"),
    ]),
    OpInfo("trace_method", lambda m, a: a.trace(), lambda r: [Sample((arr(r, 4, 3),))]),
    OpInfo("kron", lambda m, a, b: m.kron(a, b), lambda r: [
        Sample((arr(r, 2, 3), arr(r, 3, 2))),
        Sample((arr(r, 2), arr(r, 3, 2)), name="ranks-differ"),
        Sample((arr(r, 2, 1, 2), arr(r, 2, 2)), name="3d"),
    ], noncontiguous=False),   # PyTorch's kron calls view(), which fails on transposed inputs
    OpInfo("kron_method", lambda m, a, b: a.kron(b), lambda r: [Sample((arr(r, 2, 2), arr(r, 2)))],
           noncontiguous=False),
    OpInfo("cross", lambda m, a, b, **k: m.cross(a, b, **k), lambda r: [
        Sample((arr(r, 4, 3), arr(r, 4, 3)), {"dim": 1}, name="dim1"),
        Sample((arr(r, 3, 4), arr(r, 3, 4)), {"dim": 0}, name="dim0"),
    ]),
    OpInfo("cross_method", lambda m, a, b: a.cross(b, dim=-1), lambda r: [
        Sample((arr(r, 2, 3), arr(r, 1, 3)))]),
    OpInfo("linalg.cross", lambda m, a, b, **k: m.linalg.cross(a, b, **k), lambda r: [
        Sample((arr(r, 3), arr(r, 3)), name="vectors"),
        Sample((arr(r, 2, 1, 3), arr(r, 1, 4, 3)), name="broadcast"),
        Sample((arr(r, 3, 2), arr(r, 3, 2)), {"dim": 0}, name="dim0"),
    ]),
    OpInfo("linalg.multi_dot", lambda m, *ts: m.linalg.multi_dot(list(ts)), lambda r: [
        Sample((arr(r, 2, 3), arr(r, 3, 4)), name="two"),
        Sample((arr(r, 3), arr(r, 3, 4), arr(r, 4, 2), arr(r, 2)), name="vector-ends"),
        Sample((arr(r, 5, 2), arr(r, 2, 6), arr(r, 6, 3), arr(r, 3, 4)), name="chain"),
    ]),
]
