"""Op table entries for indexing: x[...] reads and writes, gather/scatter, index_*, take, sort, topk.

Index arrays are integer NumPy arrays in the sample (they become int64 tensors, never requiring
grad); several samples repeat indices on purpose, so backward must accumulate. Values that are
sorted use ``distinct`` so there are no ties to break.
"""

import warnings

import numpy as np

from .op_info import OpInfo, Sample, arr, distinct, ints


def _setitem(x, index, value):
    """``x[index] = value`` on a copy of ``x``, as a function (so it can be differentiated)."""
    y = x.clone()
    y[index] = value
    return y


def _unique_rows(rng, rows, n, k):
    """(rows, k) int64 indices, distinct within each row (scatter is undefined for repeats)."""
    return np.stack([rng.permutation(n)[:k] for _ in range(rows)]).astype(np.int64)


def _mask(rng, *shape):
    m = rng.random(shape) > 0.4
    m.flat[0] = True  # never empty, so the sample exercises something
    return m


def _getitem_samples(r):
    return [
        Sample((arr(r, 3, 4),), {"f": lambda x: x[1:, ::2]}, name="slices-step"),
        Sample((arr(r, 2, 3, 4),), {"f": lambda x: x[..., None, 0]}, name="ellipsis-none-int"),
        Sample((arr(r, 3, 4),), {"f": lambda x: x[-1]}, name="negative-int"),
        Sample((arr(r, 3, 4),), {"f": lambda x: x[1, -2]}, name="to-0d"),
        Sample((arr(r, 3, 4),), {"f": lambda x: x[None, :, 1:3]}, name="none-slice"),
        Sample((arr(r, 3, 4),), {"f": lambda x: x[-3:-1, -1:]}, name="negative-slice-bounds"),
        Sample((arr(r, 3, 4),), {"f": lambda x: x[2:2]}, name="empty-slice"),
        Sample((arr(r),), {"f": lambda x: x[None, ...]}, name="0-d"),
        Sample((arr(r, 0, 3),), {"f": lambda x: x[:, 1:]}, name="empty"),
        Sample((arr(r, 4, 3),), {"f": lambda x: x[[0, 2, 2, -1]]}, name="list-repeats"),
        Sample((arr(r, 4, 3),), {"f": lambda x: x[[]]}, name="empty-list"),
    ]


def _getitem_tensor_samples(r):
    return [
        Sample((arr(r, 4, 3), np.array([0, 2, 0, 1, 0])), {"f": lambda x, i: x[i]}, name="repeats"),
        Sample((arr(r, 4, 3), np.array([[3, 0], [0, -1]])), {"f": lambda x, i: x[i]}, name="2-d-index"),
        Sample((arr(r, 4, 3), np.array([1, 0, 1])), {"f": lambda x, i: x[:, i]}, name="after-slice"),
        Sample((arr(r, 2, 3, 4), np.array([3, 1, 3])), {"f": lambda x, i: x[0, :, i]},
               name="int-then-slice-then-tensor"),
        Sample((arr(r, 2, 3, 4), np.array([2, 0])), {"f": lambda x, i: x[..., i, None]},
               name="ellipsis-tensor-none"),
        Sample((arr(r, 4, 3), np.array(2)), {"f": lambda x, i: x[i]}, name="0-d-index"),
        Sample((arr(r, 4, 3), np.array([1, 3, 1])), {"f": lambda x, i: x[i, 1:]}, name="tensor-slice"),
        Sample((arr(r, 2, 3, 4), np.array([0, 3])), {"f": lambda x, i: x[:, 1, i]},
               name="int-tensor-adjacent"),
    ]


def _getitem_two_samples(r):
    return [
        Sample((arr(r, 3, 4), np.array([[0], [2], [0]]), np.array([1, 3, 1])),
               {"f": lambda x, i, j: x[i, j]}, name="broadcast-repeats"),
        Sample((arr(r, 3, 2, 4), np.array([0, 2, 2]), np.array([3, 0, 3])),
               {"f": lambda x, i, j: x[i, :, j]}, name="separated-by-slice"),
        Sample((arr(r, 3, 2, 4), np.array([0, 2]), np.array([1, 0])),
               {"f": lambda x, i, j: x[i, j]}, name="adjacent-leading"),
        Sample((arr(r, 2, 3, 4), np.array([1, 0]), np.array([3, 3])),
               {"f": lambda x, i, j: x[:, i, j]}, name="adjacent-middle"),
        Sample((arr(r, 2, 3, 4), np.array([1, 0]), np.array([3, 2])),
               {"f": lambda x, i, j: x[i, 1, j]}, name="int-between-tensors"),
    ]


def _mask_samples(r):
    return [
        Sample((arr(r, 3, 4), _mask(r, 3, 4)), {"f": lambda x, m: x[m]}, name="full-mask"),
        Sample((arr(r, 3, 4), _mask(r, 3)), {"f": lambda x, m: x[m]}, name="row-mask"),
        Sample((arr(r, 3, 4), _mask(r, 4)), {"f": lambda x, m: x[:, m]}, name="column-mask"),
        Sample((arr(r, 2, 3, 4), _mask(r, 3, 4)), {"f": lambda x, m: x[1, m]}, name="int-and-mask"),
        Sample((arr(r, 3, 4), np.zeros((3, 4), dtype=bool)), {"f": lambda x, m: x[m]}, name="empty-mask"),
    ]


def _setitem_samples(r):
    m = _mask(r, 3, 4)
    return [
        Sample((arr(r, 3, 4), arr(r, 4)), {"f": lambda x, v: _setitem(x, 0, v)}, name="row"),
        Sample((arr(r, 3, 4), arr(r, 1)), {"f": lambda x, v: _setitem(x, (slice(1, None), -1), v)},
               name="broadcast-value"),
        Sample((arr(r, 3, 4), arr(r, 3, 2)),
               {"f": lambda x, v: _setitem(x, (slice(None), slice(None, None, 2)), v)}, name="strided"),
        Sample((arr(r, 3, 4), arr(r)), {"f": lambda x, v: _setitem(x, (1, 2), v)}, name="0-d-value"),
        Sample((arr(r, 3, 4),), {"f": lambda x: _setitem(x, (slice(None), 1), 2.5)}, name="scalar"),
        Sample((arr(r, 3, 4), arr(r, int(m.sum())), m), {"f": lambda x, v, k: _setitem(x, k, v)},
               name="mask"),
        Sample((arr(r, 3, 4), arr(r), m), {"f": lambda x, v, k: _setitem(x, k, v)},
               name="mask-0-d-value"),
        Sample((arr(r, 3, 4), arr(r, 2), m[:, 0].copy()),
               {"f": lambda x, v, k: _setitem(x, (k, slice(1, 3)), v)}, name="row-mask-slice"),
    ]


def _setitem_index_samples(r):
    return [
        Sample((arr(r, 4, 3), arr(r, 2, 3), np.array([3, 0])),
               {"f": lambda x, v, i: _setitem(x, i, v)}, name="rows"),
        Sample((arr(r, 4, 3), arr(r, 3), np.array([2, 1, 0])),
               {"f": lambda x, v, i: _setitem(x, (i, i), v)}, name="diagonal"),
        Sample((arr(r, 2, 3, 4), arr(r, 3, 2), np.array([3, 1])),
               {"f": lambda x, v, i: _setitem(x, (0, slice(None), i), v)}, name="int-slice-tensor"),
        Sample((arr(r, 3, 2, 4), arr(r, 2, 2), np.array([0, 2])),
               {"f": lambda x, v, i: _setitem(x, (i, slice(None), i), v)}, name="separated"),
        Sample((arr(r, 4, 3), arr(r, 1, 3), np.array([0, 2, 3])),
               {"f": lambda x, v, i: _setitem(x, i, v)}, name="broadcast-value"),
    ]


OPS = [
    # ------------------------------------------------------------------ x[...]
    OpInfo("getitem", lambda m, x, f: f(x), _getitem_samples),
    OpInfo("getitem-tensor", lambda m, x, i, f: f(x, i), _getitem_tensor_samples),
    OpInfo("getitem-two-tensors", lambda m, x, i, j, f: f(x, i, j), _getitem_two_samples),
    OpInfo("getitem-mask", lambda m, x, k, f: f(x, k), _mask_samples),
    OpInfo("getitem-int-input", lambda m, x, f: f(x), lambda r: [
        Sample((ints(r, 3, 4),), {"f": lambda x: x[1:, [0, 0, 3]]}),
        Sample((ints(r, 3, 4) > 2,), {"f": lambda x: x[::2, None]}, name="bool"),
    ], grad=False),
    OpInfo("setitem", lambda m, x, *a, f: f(x, *a), _setitem_samples),
    OpInfo("setitem-tensor", lambda m, x, v, i, f: f(x, v, i), _setitem_index_samples),
    # ------------------------------------------------------------------ gather / scatter
    OpInfo("gather", lambda m, x, i, **k: m.gather(x, k.get("dim", 1), i), lambda r: [
        Sample((arr(r, 3, 4), ints(r, 3, 5, high=4)), {"dim": 1}, name="repeats"),
        Sample((arr(r, 3, 4), ints(r, 2, 4, high=3)), {"dim": 0}),
        Sample((arr(r, 3, 4), ints(r, 2, 2, high=4)), {"dim": -1}, name="smaller-index"),
        Sample((arr(r, 2, 3, 2), ints(r, 2, 3, 4, high=2)), {"dim": 2}, name="3-d"),
        Sample((arr(r, 3, 4), ints(r, 3, 0)), {"dim": 1}, name="empty-index"),
        Sample((arr(r), np.array(0)), {"dim": 0}, name="0-d"),
    ]),
    OpInfo("gather-method", lambda m, x, i: x.gather(0, i), lambda r: [
        Sample((arr(r, 5), np.array([4, 0, 0, 2]))),
    ]),
    OpInfo("scatter", lambda m, x, i, s, **k: m.scatter(x, k.get("dim", 1), i, s), lambda r: [
        Sample((arr(r, 3, 5), _unique_rows(r, 3, 5, 2), arr(r, 3, 2)), {"dim": 1}),
        # torch's backward gives a src larger than the index a wrongly shaped grad, so only the
        # input's grad is compared here; test_index.py checks the src grad of these cases
        Sample((arr(r, 4, 3), _unique_rows(r, 3, 4, 2).T.copy(), arr(r, 3, 3)), {"dim": 0},
               grad=(0,), name="larger-src"),
        Sample((arr(r, 3, 5), _unique_rows(r, 2, 5, 3), arr(r, 2, 4)), {"dim": -1},
               grad=(0,), name="smaller-index"),
        Sample((arr(r), np.array(0), arr(r)), {"dim": 0}, name="0-d"),
    ]),
    OpInfo("scatter-value", lambda m, x, i: x.scatter(1, i, -1.5), lambda r: [
        Sample((arr(r, 3, 5), ints(r, 3, 2))),
    ]),
    OpInfo("scatter_add", lambda m, x, i, s, **k: x.scatter_add(k.get("dim", 0), i, s), lambda r: [
        Sample((arr(r, 3, 4), ints(r, 4, 4, high=3), arr(r, 4, 4)), {"dim": 0}, name="repeats"),
        Sample((arr(r, 3, 4), ints(r, 2, 6, high=4), arr(r, 3, 6)), {"dim": 1}, grad=(0,),
               name="larger-src"),
        Sample((arr(r, 5), ints(r, 7, high=5), arr(r, 7)), {"dim": -1}, name="1-d"),
    ]),
    # ------------------------------------------------------------------ index_*
    OpInfo("index_select", lambda m, x, i, **k: m.index_select(x, k.get("dim", 0), i), lambda r: [
        Sample((arr(r, 4, 3), np.array([3, 0, 3, 3])), {"dim": 0}, name="repeats"),
        Sample((arr(r, 2, 3, 4), np.array([2, 0])), {"dim": -1}),
        Sample((arr(r, 4, 3), np.zeros(0, dtype=np.int64)), {"dim": 1}, name="empty-index"),
        Sample((arr(r, 4, 3), np.array(1)), {"dim": 0}, name="0-d-index"),
    ]),
    OpInfo("index_add", lambda m, x, i, s, **k: x.index_add(k.pop("dim"), i, s, **k), lambda r: [
        Sample((arr(r, 4, 3), np.array([0, 2, 0]), arr(r, 3, 3)), {"dim": 0}, name="repeats"),
        Sample((arr(r, 2, 5), np.array([4, 4, 1]), arr(r, 2, 3)), {"dim": -1, "alpha": 2.5},
               name="alpha"),
    ]),
    OpInfo("index_fill", lambda m, x, i, **k: x.index_fill(k["dim"], i, -2.0), lambda r: [
        Sample((arr(r, 4, 3), np.array([0, 2, 0])), {"dim": 0}),
        Sample((arr(r, 2, 5), np.array([-1, 1])), {"dim": 1}, name="negative"),
    ]),
    OpInfo("take_along_dim", lambda m, x, i, **k: m.take_along_dim(x, i, **k), lambda r: [
        Sample((arr(r, 3, 4), ints(r, 3, 6, high=4)), {"dim": 1}, name="repeats"),
        Sample((arr(r, 3, 4), ints(r, 1, 4, high=3)), {"dim": 0}, name="broadcast-index"),
        Sample((arr(r, 3, 1), ints(r, 3, 5, high=1)), {"dim": 0}, name="broadcast-input"),
        Sample((arr(r, 2, 4), ints(r, 2, 3, low=-4, high=4)), {"dim": -1}, name="negative"),
    ]),
    # torch's dim=None path uses .view(), which fails on non-contiguous inputs: the ref copies
    OpInfo("take_along_dim-flat", lambda m, x, i: m.take_along_dim(x, i), lambda r: [
        Sample((arr(r, 3, 4), ints(r, 5, high=12)), name="repeats"),
    ], ref=lambda m, x, i: m.take_along_dim(x.contiguous(), i)),
    OpInfo("take", lambda m, x, i: m.take(x, i), lambda r: [
        Sample((arr(r, 3, 4), ints(r, 2, 3, low=-12, high=12)), name="negative-repeats"),
        Sample((arr(r, 3), np.array(1)), name="0-d-index"),
    ]),
    OpInfo("masked_select", lambda m, x, k: m.masked_select(x, k), lambda r: [
        Sample((arr(r, 3, 4), _mask(r, 3, 4))),
        Sample((arr(r, 3, 4), _mask(r, 4)), name="broadcast-mask"),
        Sample((arr(r, 4), _mask(r, 3, 1)), name="broadcast-input"),
        Sample((arr(r), np.array(True)), name="0-d"),
    ]),
    # ------------------------------------------------------------------ nonzero (no grad)
    OpInfo("nonzero", lambda m, x, **k: m.nonzero(x, **k), lambda r: [
        Sample((ints(r, 3, 4, high=2),)),
        Sample((ints(r, 3, 4, high=2),), {"as_tuple": True}, name="as_tuple"),
        Sample((arr(r, 2, 3, 2) > 0,), name="bool-3-d"),
        Sample((np.zeros((2, 3)),), name="none"),
        Sample((np.array(1.5),), name="0-d"),
        Sample((np.array(1.5),), {"as_tuple": True}, name="0-d-as_tuple"),
    ], grad=False),
    OpInfo("argwhere", lambda m, x: m.argwhere(x), lambda r: [Sample((ints(r, 3, 4, high=2),))],
           grad=False),
    # ------------------------------------------------------------------ sorting
    OpInfo("sort", lambda m, x, **k: m.sort(x, **k), lambda r: [
        Sample((distinct(r, 3, 4),)),
        Sample((distinct(r, 3, 4),), {"dim": 0, "descending": True}, name="descending"),
        Sample((distinct(r, 2, 3, 2),), {"dim": 1, "stable": True}, name="3-d"),
        Sample((distinct(r),), name="0-d"),
        Sample((distinct(r, 0, 3),), {"dim": 0}, name="empty"),
    ]),
    OpInfo("sort-method", lambda m, x: x.sort(descending=True).values, lambda r: [
        Sample((distinct(r, 5),)),
    ]),
    OpInfo("argsort", lambda m, x, **k: m.argsort(x, **k), lambda r: [
        Sample((distinct(r, 3, 4),)),
        Sample((distinct(r, 3, 4),), {"dim": 0, "descending": True}, name="descending"),
    ], grad=False),
    OpInfo("topk", lambda m, x, k, **kw: m.topk(x, k, **kw), lambda r: [
        Sample((distinct(r, 3, 5), 2)),
        Sample((distinct(r, 4, 3), 3), {"dim": 0, "largest": False}, name="smallest"),
        Sample((distinct(r, 2, 3, 4), 1), {"dim": 1}, name="3-d"),
        Sample((distinct(r, 3, 5), 0), name="k=0"),
        Sample((distinct(r), 1), name="0-d"),
    ]),
    OpInfo("topk-method", lambda m, x: x.topk(3).values, lambda r: [Sample((distinct(r, 6),))]),
    OpInfo("kthvalue", lambda m, x, k, **kw: m.kthvalue(x, k, **kw), lambda r: [
        Sample((distinct(r, 3, 5), 2)),
        Sample((distinct(r, 4, 3), 4), {"dim": 0, "keepdim": True}, name="keepdim"),
    ]),
    OpInfo("searchsorted", lambda m, s, v, **k: m.searchsorted(s, v, **k), lambda r: [
        Sample((np.array([-1.0, 0.0, 0.0, 2.0]), np.array([[0.0, -3.0], [2.0, 9.0]]))),
        Sample((np.array([-1.0, 0.0, 0.0, 2.0]), np.array([0.0, 2.0, 1.0])), {"right": True},
               name="right"),
        Sample((np.array([[1, 3, 3], [0, 5, 9]]), np.array([[3, 0], [9, 10]])), {"side": "left"},
               name="batched-int"),
    ], grad=False),
]


# ---------------------------------------------------------------------- scatter_reduce, index_copy, ...
def _with_zero(a):
    a = a.copy()
    a.flat[1] = 0.0  # prod's gradient must stay exact where a factor is zero
    return a


def _scatter_reduce_samples(r):
    samples = []
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        for include_self in (True, False):
            src = _with_zero(arr(r, 4, 4)) if reduce == "prod" else arr(r, 4, 4)
            samples.append(Sample((arr(r, 3, 4), ints(r, 4, 4, high=3), src),
                                  {"dim": 0, "reduce": reduce, "include_self": include_self},
                                  name=f"{reduce}-{'self' if include_self else 'no-self'}"))
    samples += [
        Sample((arr(r, 3, 5), ints(r, 3, 4, high=5), arr(r, 3, 4)), {"dim": -1, "reduce": "prod"},
               name="dim-1-smaller-index"),
        Sample((arr(r, 5), ints(r, 8, high=5), arr(r, 8)), {"dim": 0, "reduce": "amin",
                                                            "include_self": False}, name="1-d"),
        Sample((arr(r, 2, 3, 2), ints(r, 2, 3, 3, high=2), arr(r, 2, 3, 3)),
               {"dim": 2, "reduce": "mean"}, name="3-d"),
        Sample((arr(r, 3, 2), ints(r, 0, 2), arr(r, 0, 2)), {"dim": 0, "reduce": "amax"},
               name="empty-index"),
    ]
    return samples


def _scatter_reduce(m, x, i, s, dim, reduce, include_self=True):
    return m.scatter_reduce(x, dim, i, s, reduce, include_self=include_self)


def _quiet_scatter(m, x, i, s, **k):
    with warnings.catch_warnings():  # torch deprecates scatter(reduce=...) for scatter_reduce
        warnings.simplefilter("ignore", UserWarning)
        return x.scatter(0, i, s, **k)


def _masked_scatter_samples(r):
    m = _mask(r, 3, 4)
    return [
        Sample((arr(r, 3, 4), m, arr(r, 12))),
        Sample((arr(r, 3, 4), m[0].copy(), arr(r, 3, 5)), name="broadcast-mask-bigger-source"),
        Sample((arr(r, 4), _mask(r, 2, 1), arr(r, 8)), name="broadcast-input"),
    ]


OPS += [
    OpInfo("scatter_reduce", _scatter_reduce, _scatter_reduce_samples),
    OpInfo("scatter_reduce-method", lambda m, x, i, s: x.scatter_reduce(1, i, s, "sum",
                                                                        include_self=False),
           lambda r: [Sample((arr(r, 2, 4), ints(r, 2, 3, high=4), arr(r, 2, 3)))]),
    OpInfo("scatter_reduce-int", _scatter_reduce, lambda r: [
        Sample((ints(r, 3, 4, low=-9, high=9), ints(r, 4, 4, high=3), ints(r, 4, 4, low=-9, high=9)),
               {"dim": 0, "reduce": red, "include_self": inc}, name=f"{red}-{inc}")
        for red in ("sum", "prod", "mean", "amax", "amin") for inc in (True, False)
    ], grad=False),
    OpInfo("scatter-reduce-arg", lambda m, x, i, s, **k: x.scatter(0, i, s, **k), ref=_quiet_scatter,
           samples=lambda r: [
        Sample((arr(r, 3, 4), ints(r, 4, 4, high=3), arr(r, 4, 4)), {"reduce": "add"}, name="add"),
        Sample((arr(r, 3, 4), ints(r, 4, 4, high=3), arr(r, 4, 4)), {"reduce": "multiply"},
               name="multiply"),
    ], grad=False),  # torch: "scatter(reduce=...) does not support automatic differentiation"
    OpInfo("index_copy", lambda m, x, i, s, **k: x.index_copy(k["dim"], i, s), lambda r: [
        Sample((arr(r, 4, 3), np.array([3, 0]), arr(r, 2, 3)), {"dim": 0}),
        Sample((arr(r, 2, 5), np.array([4, 1, 2]), arr(r, 2, 3)), {"dim": -1}, name="dim-1"),
        Sample((arr(r), np.array([0]), arr(r)), {"dim": 0}, name="0-d"),
    ]),
    OpInfo("masked_scatter", lambda m, x, k, s: m.masked_scatter(x, k, s), _masked_scatter_samples),
    OpInfo("put", lambda m, x, i, s, **k: x.put(i, s, **k), lambda r: [
        Sample((arr(r, 3, 4), np.array([[0, -1], [5, 7]]), arr(r, 2, 2))),
        Sample((arr(r, 3, 4), np.array([0, 5, 0, -12]), arr(r, 4)), {"accumulate": True},
               name="accumulate-repeats"),
    ]),
    # ------------------------------------------------------------------ in place, on a clone
    OpInfo("scatter_", lambda m, x, i, *s, **k: x.clone().scatter_(1, i, *s, **k), lambda r: [
        Sample((arr(r, 3, 5), _unique_rows(r, 3, 5, 2), arr(r, 3, 2)), name="src"),
        Sample((arr(r, 3, 5), _unique_rows(r, 3, 5, 2), 1.0), name="scalar"),
        Sample((arr(r, 3, 5), _unique_rows(r, 3, 5, 2)), {"value": -2.0}, name="value"),
    ]),
    OpInfo("scatter_add_", lambda m, x, i, s: x.clone().scatter_add_(0, i, s), lambda r: [
        Sample((arr(r, 3, 4), ints(r, 4, 4, high=3), arr(r, 4, 4)), name="repeats"),
    ]),
    OpInfo("scatter_reduce_", lambda m, x, i, s, reduce: x.clone().scatter_reduce_(
        0, i, s, reduce, include_self=False), lambda r: [
        Sample((arr(r, 3, 4), ints(r, 4, 4, high=3), arr(r, 4, 4), red), name=red)
        for red in ("prod", "amax")
    ]),
    OpInfo("index_add_", lambda m, x, i, s, **k: x.clone().index_add_(0, i, s, **k), lambda r: [
        Sample((arr(r, 4, 3), np.array([0, 2, 0]), arr(r, 3, 3)), {"alpha": -1.5}),
    ]),
    OpInfo("index_add_-into-constant", lambda m, i, s: m.zeros(
        4, 3, dtype=s.dtype, device=s.device).index_add_(0, i, s),
        lambda r: [Sample((np.array([0, 2, 0]), arr(r, 3, 3)))]),
    OpInfo("index_fill_", lambda m, x, i, v: x.clone().index_fill_(1, i, v), lambda r: [
        Sample((arr(r, 3, 4), np.array([0, -1]), 2.5), name="number"),
        Sample((arr(r, 3, 4), np.array([2]), arr(r)), name="0-d-tensor"),
    ]),
    OpInfo("index_copy_", lambda m, x, i, s: x.clone().index_copy_(0, i, s), lambda r: [
        Sample((arr(r, 4, 3), np.array([3, 1]), arr(r, 2, 3))),
    ]),
    OpInfo("index_put_", lambda m, x, i, j, v, **k: x.clone().index_put_((i, j), v, **k), lambda r: [
        Sample((arr(r, 3, 4), np.array([0, 2]), np.array([1, 3]), arr(r, 2)), name="values"),
        Sample((arr(r, 3, 4), np.array([0, 0, 2]), np.array([1, 1, 3]), arr(r, 3)),
               {"accumulate": True}, name="accumulate-repeats"),
        Sample((arr(r, 3, 4), np.array([0, 2]), np.array([1, 3]), arr(r)), name="0-d-value"),
    ]),
    OpInfo("masked_scatter_", lambda m, x, k, s: x.clone().masked_scatter_(k, s), lambda r: [
        Sample((arr(r, 3, 4), _mask(r, 4), arr(r, 13))),
    ]),
    OpInfo("put_", lambda m, x, i, s: x.clone().put_(i, s), lambda r: [
        Sample((arr(r, 3, 4), np.array([1, -2]), arr(r, 2))),
    ]),
    OpInfo("fill_diagonal_", lambda m, x, **k: x.clone().fill_diagonal_(-1.5, **k), lambda r: [
        Sample((arr(r, 3, 3),), name="square"),
        Sample((arr(r, 5, 2),), name="tall"),
        Sample((arr(r, 5, 2),), {"wrap": True}, name="tall-wrap"),
        Sample((arr(r, 2, 4),), name="wide"),
        Sample((arr(r, 3, 3, 3),), name="3-d"),
    ]),
    # ------------------------------------------------------------------ integer results (no grad)
    OpInfo("unique", lambda m, x, **k: m.unique(x, **k), lambda r: [
        Sample((ints(r, 3, 4),)),
        Sample((ints(r, 3, 4),), {"return_inverse": True, "return_counts": True}, name="all"),
        Sample((ints(r, 10, high=3).astype(np.float64),), {"return_counts": True}, name="float"),
        Sample((ints(r, 3, 4, high=2) > 0,), {"return_inverse": True}, name="bool"),
        Sample((np.array([[1, 2], [0, 5], [1, 2]]),), {"dim": 0, "return_inverse": True,
                                                       "return_counts": True}, name="dim-0"),
        Sample((np.array([[1, 2, 1], [0, 5, 0]]),), {"dim": 1, "return_inverse": True}, name="dim-1"),
        Sample((ints(r, 0, 2),), {"return_inverse": True, "return_counts": True}, name="empty"),
        Sample((np.array(3),), {"return_inverse": True}, name="0-d"),
    ], grad=False),
    OpInfo("unique-method", lambda m, x: x.unique(sorted=True, return_counts=True), lambda r: [
        Sample((np.array([2.5, -1.0, 2.5, np.nan, np.nan]),), name="nans-distinct"),
    ], grad=False),
    OpInfo("unique_consecutive", lambda m, x, **k: m.unique_consecutive(x, **k), lambda r: [
        Sample((np.array([1, 1, 2, 2, 3, 1, 1, 2]),), {"return_inverse": True,
                                                       "return_counts": True}),
        Sample((np.array([[1, 1, 2], [1, 1, 2]]),), {"dim": 1, "return_counts": True}, name="dim"),
    ], grad=False),
    OpInfo("bincount", lambda m, x, *w, **k: m.bincount(x, *w, **k), lambda r: [
        Sample((ints(r, 12, high=6),)),
        Sample((ints(r, 12, high=6),), {"minlength": 9}, name="minlength"),
        Sample((ints(r, 5, high=4), arr(r, 5)), name="float-weights"),
        Sample((ints(r, 5, high=4), ints(r, 5)), name="int-weights"),
        Sample((np.zeros(0, dtype=np.int64),), {"minlength": 3}, name="empty"),
        Sample((ints(r, 6, high=3).astype(np.int32),), name="int32"),
    ], grad=False),
    # (torch's isin fails on a non-contiguous 2-d test_elements: the ref copies it)
    OpInfo("isin", lambda m, x, t, **k: m.isin(x, t, **k), ref=lambda m, x, t, **k: m.isin(
        x, t.contiguous() if isinstance(t, m.Tensor) else t, **k), samples=lambda r: [
        Sample((ints(r, 3, 4, high=8), ints(r, 5, high=8))),
        Sample((ints(r, 3, 4, high=8), ints(r, 2, 2, high=8)), {"invert": True}, name="invert"),
        Sample((ints(r, 6, high=4).astype(np.float64), ints(r, 3, high=4)), name="float-int"),
        Sample((ints(r, 6, high=4), 2), name="scalar-test"),
        Sample((3, ints(r, 6, high=4)), name="scalar-element"),
        Sample((np.array([1.0, np.nan]), np.array([np.nan, 1.0])), name="nan"),
        Sample((ints(r, 4), np.zeros(0, dtype=np.int64)), name="empty-test"),
    ], grad=False),
]
