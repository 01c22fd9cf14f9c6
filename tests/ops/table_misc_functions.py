"""Op table entries for the torch.* functions composed from other ops (statistics.py,
matrices.py, scatter_into.py, strided.py, bits.py): parity with torch, backward, gradcheck and
gradgradcheck in float64. Values, errors, dtypes and non-differentiable ones are tested in
test_torch_functions_extra.py."""

import numpy as np

from .op_info import OpInfo, Sample, arr, distinct


def _idx(*values):
    return np.array(values, dtype=np.int64)


OPS = [
    OpInfo("cummax", lambda m, x, d: m.cummax(x, d), lambda r: [
        Sample((distinct(r, 3, 5), 1)), Sample((distinct(r, 4, 2), 0), name="dim0"),
    ]),
    OpInfo("cummin", lambda m, x, d: x.cummin(d), lambda r: [Sample((distinct(r, 3, 5), -1))]),
    OpInfo("logcumsumexp", lambda m, x, d: m.logcumsumexp(x, d), lambda r: [
        Sample((arr(r, 3, 5), 1)), Sample((arr(r), 0), name="0-d"),
    ]),
    OpInfo("quantile", lambda m, x, q, **k: m.quantile(x, q, **k), lambda r: [
        Sample((distinct(r, 3, 5), 0.3), {"dim": 1}),
        Sample((distinct(r, 4, 3), 0.5), {"dim": 0, "keepdim": True, "interpolation": "midpoint"},
               name="midpoint"),
        Sample((distinct(r, 7), 0.6), {"interpolation": "nearest"}, name="nearest"),
    ]),
    OpInfo("nanmedian", lambda m, x, **k: m.nanmedian(x, **k), lambda r: [
        Sample((distinct(r, 3, 5),), {"dim": 1}), Sample((distinct(r, 5),), name="all"),
    ]),
    OpInfo("mode", lambda m, x: m.mode(x, 0), lambda r: [Sample((distinct(r, 1, 4),))]),
    OpInfo("msort", lambda m, x: m.msort(x), lambda r: [Sample((distinct(r, 4, 3),))]),
    OpInfo("cov", lambda m, x, f, a: m.cov(x, fweights=f, aweights=a), lambda r: [
        Sample((arr(r, 3, 5), _idx(1, 2, 1, 1, 3), r.uniform(0.5, 2, 5)), grad=(0,)),
    ]),
    OpInfo("corrcoef", lambda m, x: m.corrcoef(x), lambda r: [Sample((arr(r, 3, 5),))],
           gradcheck_atol=1e-4),
    OpInfo("diagflat", lambda m, x: m.diagflat(x, 1), lambda r: [Sample((arr(r, 2, 2),))]),
    OpInfo("block_diag", lambda m, a, b: m.block_diag(a, b), lambda r: [
        Sample((arr(r, 2, 3), arr(r, 2))),
    ]),
    OpInfo("combinations", lambda m, x: m.combinations(x, 2), lambda r: [Sample((arr(r, 4),))]),
    OpInfo("rot90", lambda m, x: m.rot90(x, 1, [0, 2]), lambda r: [Sample((arr(r, 2, 3, 4),))]),
    OpInfo("renorm", lambda m, x: m.renorm(x, 2, 0, 1.0), lambda r: [Sample((arr(r, 3, 4),))]),
    OpInfo("addr", lambda m, i, a, b: m.addr(i, a, b, beta=0.5, alpha=2), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 3), arr(r, 4))),
    ]),
    OpInfo("addbmm", lambda m, i, a, b: m.addbmm(i, a, b), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 2, 3, 2), arr(r, 2, 2, 4))),
    ]),
    OpInfo("inner", lambda m, a, b: m.inner(a, b), lambda r: [Sample((arr(r, 2, 3), arr(r, 4, 3)))]),
    OpInfo("dist", lambda m, a, b: m.dist(a, b, 3), lambda r: [Sample((arr(r, 3, 4), arr(r, 4)))]),
    OpInfo("ldexp", lambda m, x, e: m.ldexp(x, e), lambda r: [Sample((arr(r, 4), _idx(0, 1, 2, 3)))]),
    OpInfo("select_scatter", lambda m, x, s: m.select_scatter(x, s, 1, 0), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 3))),
    ]),
    OpInfo("slice_scatter", lambda m, x, s: m.slice_scatter(x, s, 0, 1, 4, 2), lambda r: [
        Sample((arr(r, 5, 2), arr(r, 2, 2))),
    ]),
    OpInfo("diagonal_scatter", lambda m, x, s: m.diagonal_scatter(x, s, -1), lambda r: [
        Sample((arr(r, 4, 3), arr(r, 3))),
    ]),
    OpInfo("index_reduce", lambda m, x, i, s: m.index_reduce(x, 0, i, s, "mean"), lambda r: [
        Sample((arr(r, 3, 2), _idx(0, 2, 0), arr(r, 3, 2))),
    ]),
    OpInfo("as_strided", lambda m, x: m.as_strided(x, (3, 2), (1, 2), 1), lambda r: [
        Sample((arr(r, 2, 4),)),
    ], noncontiguous=False),
]
