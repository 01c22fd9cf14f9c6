"""Op table entries for the reductions and scans (gradient/ops/reduce.py).

Inputs of max/min/amax/median use ``distinct`` values so there are no ties and finite
differences are valid; ties, zeros in prod, huge logsumexp inputs and dtypes are checked in
test_reduce.py against torch directly.
"""

import numpy as np

from .op_info import OpInfo, Sample, arr, away_from_zero, distinct, ints


def _with_nans(rng, *shape):
    a = arr(rng, *shape)
    a.reshape(-1)[::3] = np.nan
    return a


def _with_zeros(rng, *shape, every=5):
    a = away_from_zero(rng, *shape)
    a.reshape(-1)[::every] = 0.0
    return a


def _dims(r, make=arr):
    """The usual dim / keepdim variations, for reductions over an int or a tuple of dims."""
    scalar = np.asarray(make(r))  # some helpers give a NumPy scalar for shape ()
    return [
        Sample((make(r, 3, 4),), name="all"),
        Sample((make(r, 3, 4),), {"dim": 1}, name="dim"),
        Sample((make(r, 3, 4),), {"dim": -2, "keepdim": True}, name="neg-keepdim"),
        Sample((make(r, 2, 3, 4),), {"dim": (0, -1)}, name="tuple"),
        Sample((make(r, 2, 3, 4),), {"dim": (2, 1), "keepdim": True}, name="tuple-keepdim"),
        Sample((scalar,), name="0-d"),
        Sample((scalar,), {"dim": 0, "keepdim": True}, name="0-d-dim"),
    ]


def _one_dim(r, make=arr):
    """Samples for reductions that take a single int dim (prod, max with dim, median, scans)."""
    scalar = np.asarray(make(r))  # some helpers give a NumPy scalar for shape ()
    return [
        Sample((make(r, 3, 4),), {"dim": 1}, name="dim"),
        Sample((make(r, 3, 4),), {"dim": -2, "keepdim": True}, name="neg-keepdim"),
        Sample((make(r, 2, 3, 4),), {"dim": 1}, name="3-d"),
        Sample((make(r, 5),), {"dim": 0}, name="1-d"),
        Sample((scalar,), {"dim": 0}, name="0-d"),
    ]


def _dtype(m, kwargs):
    """kwargs with a dtype given by name as that library's dtype object."""
    if "dtype" in kwargs:
        kwargs = dict(kwargs, dtype=getattr(m, kwargs["dtype"]))
    return kwargs


def _no_keepdim(samples):
    return [Sample(s.args, {k: v for k, v in s.kwargs.items() if k != "keepdim"}, s.grad, s.name)
            for s in samples]


OPS = [
    OpInfo("sum_dims", lambda m, a, **k: m.sum(a, **_dtype(m, k)), lambda r: _dims(r) + [
        Sample((arr(r, 0, 3),), {"dim": 0}, name="empty-dim"),
        Sample((arr(r, 0, 3),), name="empty-all"),
        Sample((arr(r, 3, 4),), {"dim": 1, "dtype": "float64"}, name="dtype"),
    ]),
    OpInfo("mean", lambda m, a, **k: a.mean(**k), lambda r: _dims(r) + [
        Sample((arr(r, 0, 3),), {"dim": 1}, name="empty-rows"),
        Sample((arr(r, 0, 3),), {"dim": 0}, name="empty-dim-nan"),
    ]),
    OpInfo("nansum", lambda m, a, **k: m.nansum(a, **k), lambda r: [
        Sample((_with_nans(r, 3, 4),), name="all"),
        Sample((_with_nans(r, 2, 3, 4),), {"dim": (0, -1), "keepdim": True}, name="tuple"),
    ]),
    OpInfo("nanmean", lambda m, a, **k: m.nanmean(a, **k), lambda r: [
        Sample((_with_nans(r, 3, 4),), name="all"),
        Sample((_with_nans(r, 3, 4),), {"dim": 1}, name="dim"),
    ]),
    OpInfo("prod", lambda m, a, **k: a.prod(**k), lambda r: [
        Sample((away_from_zero(r, 3, 4),), name="all"),
        *_one_dim(r, away_from_zero),
        Sample((_with_zeros(r, 3, 4, every=4),), {"dim": 1}, name="one-zero-per-row"),
        Sample((_with_zeros(r, 3, 4, every=2),), {"dim": 1}, name="two-zeros-per-row"),
        Sample((_with_zeros(r, 2, 3, 4, every=7),), {"dim": 0}, name="some-zeros"),
        Sample((_with_zeros(r, 2, 3, every=5),), name="all-one-zero"),
        Sample((arr(r, 3, 0),), {"dim": 1}, name="empty-dim"),
    ]),
    OpInfo("amax", lambda m, a, **k: m.amax(a, **k), lambda r: _dims(r, distinct)),
    OpInfo("amin", lambda m, a, **k: a.amin(**k), lambda r: _dims(r, distinct)),
    OpInfo("max", lambda m, a, **k: a.max(**k), lambda r: [
        Sample((distinct(r, 3, 4),), name="all"),
        Sample((distinct(r),), name="0-d"),
        *_one_dim(r, distinct),
    ]),
    OpInfo("min", lambda m, a, *b, **k: m.min(a, *b, **k), lambda r: [
        Sample((distinct(r, 2, 3, 4),), name="all"),
        *_one_dim(r, distinct),
        Sample((distinct(r, 3, 4), 0), name="positional-dim"),
    ]),
    OpInfo("max_binary", lambda m, a, b: m.max(a, b), lambda r: [
        Sample((distinct(r, 3, 4), distinct(r, 3, 4) + 0.1), name="tensor-other"),
    ]),
    OpInfo("median", lambda m, a, **k: a.median(**k), lambda r: [
        Sample((distinct(r, 3, 5),), name="all-odd"),
        Sample((distinct(r, 2, 4),), name="all-even"),
        *_one_dim(r, distinct),
    ]),
    OpInfo("aminmax", lambda m, a, **k: m.aminmax(a, **k), lambda r: [
        Sample((distinct(r, 3, 4),), name="all"),
        Sample((distinct(r, 3, 4),), {"dim": -1, "keepdim": True}, name="dim"),
    ]),
    OpInfo("argmax", lambda m, a, **k: a.argmax(**k), lambda r: [
        Sample((distinct(r, 3, 4),), name="flat"),
        Sample((distinct(r, 3, 4),), {"keepdim": True}, name="flat-keepdim"),
        *_one_dim(r, distinct),
        Sample((ints(r, 3, 4),), {"dim": 0}, name="int"),
    ], grad=False),
    OpInfo("argmin", lambda m, a, **k: m.argmin(a, **k), lambda r: [
        Sample((distinct(r, 2, 3, 4),), name="flat"),
        *_one_dim(r, distinct),
    ], grad=False),
    OpInfo("var", lambda m, a, **k: a.var(**k), lambda r: _dims(r)[:5] + [
        Sample((arr(r, 3, 4),), {"dim": 1, "correction": 0}, name="correction-0"),
        Sample((arr(r, 3, 4),), {"dim": 0, "correction": 2, "keepdim": True}, name="correction-2"),
        Sample((arr(r, 3, 4),), {"dim": 1, "unbiased": False}, name="unbiased-false"),
    ]),
    OpInfo("std", lambda m, a, **k: m.std(a, **k), lambda r: _dims(r)[:5] + [
        Sample((arr(r, 3, 4),), {"dim": -1, "correction": 0}, name="correction-0"),
        Sample((arr(r, 2, 3, 4),), {"dim": (0, 1), "unbiased": True, "keepdim": True},
               name="unbiased"),
    ]),
    OpInfo("var_mean", lambda m, a, **k: m.var_mean(a, **k), lambda r: [
        Sample((arr(r, 3, 4),), name="all"),
        Sample((arr(r, 2, 3, 4),), {"dim": (0, 2), "correction": 0, "keepdim": True}, name="dims"),
    ]),
    OpInfo("std_mean", lambda m, a, **k: m.std_mean(a, **k), lambda r: [
        Sample((arr(r, 3, 4),), {"dim": 1}, name="dim"),
    ]),
    OpInfo("logsumexp", lambda m, a, **k: m.logsumexp(a, **k), lambda r: _no_keepdim(_one_dim(r)) + [
        Sample((arr(r, 2, 3, 4),), {"dim": (0, -1), "keepdim": True}, name="tuple"),
        Sample((arr(r, 3, 4) * 10,), {"dim": 1, "keepdim": True}, name="spread"),
        Sample((arr(r, 3, 4) + 1e4,), {"dim": 1}, name="large"),
    ]),
    OpInfo("cumsum", lambda m, a, **k: a.cumsum(**_dtype(m, k)), lambda r: _no_keepdim(_one_dim(r)) + [
        Sample((arr(r, 3, 4),), {"dim": 1, "dtype": "float64"}, name="dtype"),
        Sample((arr(r, 0, 3),), {"dim": 0}, name="empty"),
    ]),
    OpInfo("cumprod", lambda m, a, **k: m.cumprod(a, **k), lambda r: [
        *_no_keepdim(_one_dim(r, away_from_zero)),
        Sample((away_from_zero(r, 7),), {"dim": 0}, name="odd-length"),
        Sample((_with_zeros(r, 3, 5, every=4),), {"dim": 1}, name="zeros"),
        Sample((_with_zeros(r, 2, 6, every=3),), {"dim": -1}, name="two-zeros"),
    ]),
    OpInfo("norm", lambda m, a, **k: a.norm(**k), lambda r: [
        Sample((arr(r, 3, 4),), name="2-all"),
        Sample((arr(r, 3, 4),), {"dim": 1}, name="2-dim"),
        Sample((arr(r, 2, 3, 4),), {"p": "fro", "dim": (1, 2), "keepdim": True}, name="fro"),
        Sample((away_from_zero(r, 3, 4),), {"p": 1, "dim": 0}, name="1"),
        Sample((away_from_zero(r, 3, 4),), {"p": 3, "dim": -1}, name="3"),
        Sample((away_from_zero(r, 3, 4),), {"p": 1.5, "dim": 1, "keepdim": True}, name="1.5"),
        Sample((away_from_zero(r, 3, 4),), {"p": 0.5}, name="0.5"),
        Sample((distinct(r, 3, 4) + 0.05,), {"p": float("inf"), "dim": 1}, name="inf"),
        Sample((distinct(r, 3, 4) + 0.05,), {"p": float("-inf")}, name="-inf"),
        Sample((arr(r),), name="0-d"),
    ]),
    OpInfo("norm_0", lambda m, a, **k: a.norm(p=0, **k), lambda r: [
        Sample((_with_zeros(r, 3, 4),), name="all"),
        Sample((_with_zeros(r, 3, 4),), {"dim": 1}, name="dim"),
    ], grad=False),
    OpInfo("all", lambda m, a, **k: a.all(**k), lambda r: [
        Sample((ints(r, 3, 4, low=0, high=2).astype(bool),), name="bool"),
        Sample((ints(r, 3, 4, low=0, high=3),), {"dim": 1}, name="int"),
        Sample((_with_zeros(r, 2, 3, 4),), {"dim": -1, "keepdim": True}, name="float"),
        Sample((ints(r, 3, 4, low=0, high=2).astype(np.uint8),), {"dim": 0}, name="uint8"),
        Sample((arr(r, 0, 3),), {"dim": 0}, name="empty"),
    ], grad=False),
    OpInfo("any", lambda m, a, **k: m.any(a, **k), lambda r: [
        Sample((ints(r, 3, 4, low=0, high=2).astype(bool),), name="bool"),
        Sample((ints(r, 3, 4, low=0, high=2),), {"dim": 1}, name="int"),
        Sample((_with_zeros(r, 2, 3, 4, every=2),), {"dim": (0, 2)}, name="float-tuple"),
        Sample((arr(r, 0, 3),), name="empty"),
    ], grad=False),
    OpInfo("count_nonzero", lambda m, a, **k: m.count_nonzero(a, **k), lambda r: [
        Sample((_with_zeros(r, 3, 4),), name="all"),
        Sample((ints(r, 2, 3, 4, low=0, high=2),), {"dim": (0, 2)}, name="int-tuple"),
        Sample((ints(r, 3, 4, low=0, high=2).astype(bool),), {"dim": -1}, name="bool"),
    ], grad=False),
    OpInfo("sum_int", lambda m, a, **k: a.sum(**_dtype(m, k)), lambda r: [
        Sample((ints(r, 3, 4),), {"dim": 1}, name="int64"),
        Sample((ints(r, 3, 4).astype(np.int32),), name="int32"),
        Sample((ints(r, 3, 4, high=2).astype(bool),), {"dim": 0}, name="bool"),
        Sample((ints(r, 3, 4).astype(np.uint8),), name="uint8"),
        Sample((ints(r, 3, 4),), {"dim": 0, "dtype": "int16"}, name="dtype-int16"),
    ], grad=False),
    OpInfo("cumsum_int", lambda m, a, **k: m.cumsum(a, **_dtype(m, k)), lambda r: [
        Sample((ints(r, 3, 4).astype(np.int32),), {"dim": 1}, name="int32"),
        Sample((ints(r, 3, 4, high=2).astype(bool),), {"dim": 0}, name="bool"),
        Sample((ints(r, 3, 4),), {"dim": -1, "dtype": "int8"}, name="dtype-int8"),
    ], grad=False),
]

# ---------------------------------------------------------------------- differences
def _diff(m, a, *tensors, extra=(), **k):
    """``m.diff(a, ...)`` with the tensors named in ``extra`` ("prepend", "append") passed by name."""
    return m.diff(a, **k, **dict(zip(extra, tensors)))


OPS += [
    OpInfo("diff", _diff, lambda r: [
        Sample((arr(r, 3, 5),)),
        Sample((arr(r, 3, 5),), {"n": 2, "dim": 0}, name="n-2-dim-0"),
        Sample((arr(r, 3, 4), arr(r, 3, 1), arr(r, 3, 2)), {"n": 3, "extra": ("prepend", "append")},
               name="prepend-append"),
        Sample((arr(r, 2, 4), arr(r, 1, 4)), {"dim": 0, "extra": ("append",)}, name="append-dim-0"),
        Sample((arr(r, 4),), {"n": 6}, name="n-past-length"),
        Sample((arr(r, 4),), {"n": 0}, name="n-0"),
    ]),
    OpInfo("diff-method", lambda m, a, **k: a.diff(**k), lambda r: [
        Sample((ints(r, 3, 5),), {"n": 2}, name="int"),
        Sample((ints(r, 6, high=2).astype(bool),), name="bool"),
    ], grad=False),
]
