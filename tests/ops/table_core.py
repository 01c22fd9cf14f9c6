"""Op table entries for the core arithmetic written with the engine (add, mul, div, exp, log, sum)."""

from .op_info import OpInfo, Sample, arr, positive

OPS = [
    OpInfo("add", lambda m, a, b: a + b, lambda r: [
        Sample((arr(r, 3, 4), arr(r, 3, 4))),
        Sample((arr(r, 3, 4), arr(r, 4)), name="broadcast"),
        Sample((arr(r, 2, 1, 3), arr(r, 4, 1)), name="broadcast-both"),
        Sample((arr(r), arr(r, 3)), name="0-d"),
        Sample((arr(r, 0, 3), arr(r, 3)), name="empty"),
        Sample((arr(r, 3), 2.5), name="scalar"),
    ]),
    OpInfo("mul", lambda m, a, b: m.mul(a, b), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 3, 4))),
        Sample((arr(r, 2, 3, 4), arr(r, 3, 1)), name="broadcast"),
    ]),
    OpInfo("div", lambda m, a, b: a / b, lambda r: [
        Sample((arr(r, 3, 4), positive(r, 3, 4))),
        Sample((arr(r, 3, 4), positive(r, 4)), name="broadcast"),
        Sample((3.0, positive(r, 4)), name="scalar-numerator"),
    ]),
    OpInfo("neg", lambda m, a: -a, lambda r: [
        Sample((arr(r, 3, 4),)), Sample((arr(r),), name="0-d"), Sample((arr(r, 0, 2),), name="empty"),
    ]),
    OpInfo("neg-function", lambda m, a: m.neg(a), lambda r: [Sample((arr(r, 2, 3),))]),
    OpInfo("exp", lambda m, a: a.exp(), lambda r: [Sample((arr(r, 3, 4),)), Sample((arr(r),), name="0-d")]),
    OpInfo("log", lambda m, a: m.log(a), lambda r: [Sample((positive(r, 3, 4),))]),
    OpInfo("sum", lambda m, a, **k: a.sum(**k), lambda r: [
        Sample((arr(r, 3, 4),)),
        Sample((arr(r, 3, 4),), {"dim": 1}),
        Sample((arr(r, 2, 3, 4),), {"dim": (0, -1), "keepdim": True}),
        Sample((arr(r, 0, 3),), {"dim": 0}, name="empty"),
    ]),
]
