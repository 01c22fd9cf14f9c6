"""Op table entries for linear algebra: matmul in all its forms, mm, bmm, dot, mv, outer, einsum, addmm ..."""

from .op_info import OpInfo, Sample, arr


def _matmul_samples(r):
    return [
        Sample((arr(r, 3, 4), arr(r, 4, 2)), name="2d-2d"),
        Sample((arr(r, 4), arr(r, 4)), name="1d-1d"),
        Sample((arr(r, 3), arr(r, 3, 2)), name="1d-2d"),
        Sample((arr(r, 3, 4), arr(r, 4)), name="2d-1d"),
        Sample((arr(r, 2, 3, 4), arr(r, 2, 4, 2)), name="batched"),
        Sample((arr(r, 2, 1, 2, 3), arr(r, 3, 3, 2)), name="broadcast-batch"),
        Sample((arr(r, 2, 3, 4), arr(r, 4, 2)), name="batched-2d"),
        Sample((arr(r, 3, 4), arr(r, 2, 4, 2)), name="2d-batched"),
        Sample((arr(r, 4), arr(r, 2, 4, 3)), name="1d-batched"),
        Sample((arr(r, 2, 3, 4), arr(r, 4)), name="batched-1d"),
        Sample((arr(r, 0, 3), arr(r, 3, 2)), name="empty-rows"),
        Sample((arr(r, 3, 0), arr(r, 0, 2)), name="empty-inner"),
        Sample((arr(r, 0, 2, 3), arr(r, 3, 2)), name="empty-batch"),
        Sample((arr(r, 0), arr(r, 0)), name="empty-dot"),
    ]


def _einsum_samples(r):
    return [
        Sample(("ij,jk->ik", arr(r, 3, 4), arr(r, 4, 2)), name="matmul"),
        Sample(("bij,bjk->bik", arr(r, 2, 3, 2), arr(r, 2, 2, 3)), name="bmm"),
        Sample(("i,i->", arr(r, 4), arr(r, 4)), name="dot"),
        Sample(("ii->i", arr(r, 3, 3)), name="diagonal"),
        Sample(("ii", arr(r, 3, 3)), name="trace-implicit"),
        Sample(("iij->ji", arr(r, 2, 2, 3)), name="diagonal-3d"),
        Sample(("ij->ji", arr(r, 3, 4)), name="transpose"),
        Sample(("ij->i", arr(r, 3, 4)), name="row-sum"),
        Sample(("ij->", arr(r, 3, 4)), name="total"),
        Sample(("...ij,...jk->...ik", arr(r, 2, 2, 3), arr(r, 3, 2)), name="ellipsis"),
        Sample(("...ij,...jk", arr(r, 2, 1, 2, 3), arr(r, 3, 3, 2)), name="ellipsis-broadcast-implicit"),
        Sample(("b...,b...->b", arr(r, 2, 3), arr(r, 2, 3)), name="ellipsis-rowdot"),
        Sample(("...ij->ij", arr(r, 2, 3, 4)), name="ellipsis-summed"),
        Sample(("ij,ij->ij", arr(r, 3, 4), arr(r, 3, 4)), name="hadamard"),
        Sample(("i,j->ij", arr(r, 3), arr(r, 4)), name="outer"),
        Sample(("bhqd,bhkd->bhqk", arr(r, 1, 2, 3, 2), arr(r, 1, 2, 4, 2)), name="attention"),
        Sample(("ij,jk", arr(r, 3, 4), arr(r, 4, 2)), name="implicit"),
        Sample(("ba,ab", arr(r, 3, 4), arr(r, 4, 3)), name="implicit-trace"),
        Sample(("ij,jk,kl->il", arr(r, 2, 3), arr(r, 3, 2), arr(r, 2, 3)), name="chain"),
        Sample(("ii,ij->ij", arr(r, 3, 3), arr(r, 3, 2)), name="diagonal-times"),
        Sample(("ij,jk->ik", arr(r, 3, 1), arr(r, 4, 2)), name="size-1-broadcast"),
        Sample((" i j , j k -> i k ", arr(r, 2, 3), arr(r, 3, 2)), name="spaces"),
        Sample(("ij,jk->ik", arr(r, 0, 3), arr(r, 3, 2)), name="empty"),
        Sample(("i,i->i", arr(r, 3), arr(r, 3)), {}, grad=(1,), name="one-grad"),
    ]


OPS = [
    OpInfo("matmul", lambda m, a, b: m.matmul(a, b), _matmul_samples),
    OpInfo("matmul_operator", lambda m, a, b: a @ b, lambda r: [
        Sample((arr(r, 3, 4), arr(r, 4, 2))),
        Sample((arr(r, 2, 3), arr(r, 3)), name="2d-1d"),
    ]),
    OpInfo("mm", lambda m, a, b: m.mm(a, b), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 4, 2))),
        Sample((arr(r, 3, 0), arr(r, 0, 2)), name="empty"),
    ]),
    OpInfo("mm_method", lambda m, a, b: a.mm(b), lambda r: [Sample((arr(r, 2, 3), arr(r, 3, 4)))]),
    OpInfo("bmm", lambda m, a, b: m.bmm(a, b), lambda r: [
        Sample((arr(r, 2, 3, 4), arr(r, 2, 4, 2))),
        Sample((arr(r, 0, 3, 4), arr(r, 0, 4, 2)), name="empty"),
    ]),
    OpInfo("dot", lambda m, a, b: m.dot(a, b), lambda r: [Sample((arr(r, 5), arr(r, 5)))]),
    OpInfo("vdot", lambda m, a, b: a.vdot(b), lambda r: [Sample((arr(r, 5), arr(r, 5)))]),
    OpInfo("mv", lambda m, a, b: m.mv(a, b), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 4))),
        Sample((arr(r, 0, 4), arr(r, 4)), name="empty"),
    ]),
    OpInfo("outer", lambda m, a, b: m.outer(a, b), lambda r: [
        Sample((arr(r, 3), arr(r, 4))),
        Sample((arr(r, 0), arr(r, 4)), name="empty"),
    ]),
    OpInfo("ger", lambda m, a, b: a.ger(b), lambda r: [Sample((arr(r, 3), arr(r, 2)))],
           ref=lambda m, a, b: m.outer(a, b)),
    OpInfo("einsum", lambda m, eq, *ops: m.einsum(eq, *ops), _einsum_samples),
    OpInfo("einsum_list", lambda m, eq, ops: m.einsum(eq, ops), lambda r: [
        Sample(("ij,jk", [arr(r, 2, 3), arr(r, 3, 2)])),
    ]),
    OpInfo("addmm", lambda m, c, a, b, **k: m.addmm(c, a, b, **k), lambda r: [
        Sample((arr(r, 3, 2), arr(r, 3, 4), arr(r, 4, 2))),
        Sample((arr(r, 2), arr(r, 3, 4), arr(r, 4, 2)), {"beta": 0.5, "alpha": 2.0}, name="broadcast"),
        Sample((arr(r, 1, 1), arr(r, 3, 4), arr(r, 4, 2)), {"alpha": -1.5}, name="broadcast-11"),
        Sample((arr(r), arr(r, 3, 4), arr(r, 4, 2)), {"beta": 2}, name="0-d"),
        Sample((arr(r, 3, 2), arr(r, 3, 4), arr(r, 4, 2)), {"beta": 0}, name="beta-0"),
        Sample((arr(r, 3, 2), arr(r, 3, 0), arr(r, 0, 2)), {"beta": 0.5}, name="empty-inner"),
    ]),
    OpInfo("addmm_method", lambda m, c, a, b: c.addmm(a, b, beta=0.25, alpha=3),
           lambda r: [Sample((arr(r, 2, 2), arr(r, 2, 3), arr(r, 3, 2)))]),
    OpInfo("baddbmm", lambda m, c, a, b, **k: m.baddbmm(c, a, b, **k), lambda r: [
        Sample((arr(r, 2, 3, 2), arr(r, 2, 3, 2), arr(r, 2, 2, 2))),
        Sample((arr(r, 3, 2), arr(r, 2, 3, 2), arr(r, 2, 2, 2)), {"beta": 0.5, "alpha": 2.0},
               name="broadcast"),
        Sample((arr(r, 2, 1, 1), arr(r, 2, 3, 2), arr(r, 2, 2, 2)), {"beta": 0, "alpha": 0.5},
               name="beta-0"),
    ]),
    OpInfo("addmv", lambda m, c, a, b, **k: m.addmv(c, a, b, **k), lambda r: [
        Sample((arr(r, 3), arr(r, 3, 4), arr(r, 4))),
        Sample((arr(r), arr(r, 3, 4), arr(r, 4)), {"beta": 0.5, "alpha": -2.0}, name="0-d"),
        Sample((arr(r, 1), arr(r, 3, 4), arr(r, 4)), {"beta": 0}, name="beta-0"),
    ]),
    OpInfo("tensordot", lambda m, a, b, **k: m.tensordot(a, b, **k), lambda r: [
        Sample((arr(r, 2, 3, 4), arr(r, 3, 4, 2)), {"dims": 2}),
        Sample((arr(r, 2, 3), arr(r, 3, 2)), {"dims": 1}, name="matmul"),
        Sample((arr(r, 2, 3), arr(r, 4)), {"dims": 0}, name="outer"),
        Sample((arr(r, 2, 3, 4), arr(r, 4, 3, 2)), {"dims": ([1, 2], [1, 0])}, name="lists"),
        Sample((arr(r, 2, 3), arr(r, 3, 2)), {"dims": ([-1], [0])}, name="negative"),
    ]),
]

# ---------------------------------------------------------------------- distances and gradient.linalg
import gradient.linalg  # noqa: E402,F401  (so that m.linalg exists for m = gradient)

OPS += [
    OpInfo("cdist", lambda m, a, b, **k: m.cdist(a, b, **k), lambda r: [
        Sample((arr(r, 3, 2), arr(r, 4, 2)), name="p-2"),
        Sample((arr(r, 2, 3, 2), arr(r, 4, 2)), {"p": 1.0}, name="p-1-batch-broadcast"),
        Sample((arr(r, 3, 3), arr(r, 2, 3)), {"p": 3.0}, name="p-3"),
        Sample((arr(r, 3, 2), arr(r, 2, 2)), {"p": float("inf")}, name="p-inf"),
        Sample((arr(r, 0, 2), arr(r, 2, 2)), name="empty"),
    ]),
    OpInfo("linalg.vector_norm", lambda m, a, **k: m.linalg.vector_norm(a, **k), lambda r: [
        Sample((arr(r, 3, 4),)),
        Sample((arr(r, 3, 4),), {"ord": 1, "dim": -1}, name="ord-1"),
        Sample((arr(r, 2, 3, 2),), {"ord": 3.0, "dim": (0, 2), "keepdim": True}, name="ord-3-dims"),
        Sample((arr(r, 3, 4),), {"ord": float("-inf"), "dim": 0}, name="ord--inf"),
    ]),
    OpInfo("linalg.matrix_norm", lambda m, a, **k: m.linalg.matrix_norm(a, **k), lambda r: [
        Sample((arr(r, 3, 4),), name="fro"),
        Sample((arr(r, 2, 3, 4),), {"ord": 1}, name="ord-1-batch"),
        Sample((arr(r, 3, 4),), {"ord": -1, "keepdim": True}, name="ord--1"),
        Sample((arr(r, 3, 4),), {"ord": float("inf")}, name="inf"),
        Sample((arr(r, 3, 2, 4),), {"ord": float("-inf"), "dim": (2, 0)}, name="-inf-dims"),
    ]),
    OpInfo("linalg.norm", lambda m, a, **k: m.linalg.norm(a, **k), lambda r: [
        Sample((arr(r, 2, 3, 4),), name="all"),
        Sample((arr(r, 3, 4),), {"ord": 1}, name="matrix"),
        Sample((arr(r, 4),), {"ord": 3}, name="vector"),
        Sample((arr(r, 2, 3, 4),), {"dim": 1, "keepdim": True}, name="dim"),
        Sample((arr(r, 2, 3, 4),), {"ord": float("inf"), "dim": (1, 2)}, name="matrix-dims"),
    ]),
    OpInfo("linalg.vecdot", lambda m, a, b, **k: m.linalg.vecdot(a, b, **k), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 4)), name="broadcast"),
        Sample((arr(r, 3, 4), arr(r, 3, 4)), {"dim": 0}, name="dim-0"),
    ]),
]
