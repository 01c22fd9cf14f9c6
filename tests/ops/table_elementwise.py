"""Op table entries for the elementwise family: math functions, powers, rounding, selection.

Each entry runs forward against torch (values and dtypes, contiguous and not), backward against
torch, gradcheck and gradgradcheck. Values stay clear of kinks and ties (abs at 0, clamp at its
bounds, maximum of equal values, remainder at multiples of the divisor): those edges are pinned
down in test_elementwise.py instead.
"""

import numpy as np

from .op_info import OpInfo, Sample, arr, away_from_zero, distinct, ints, positive


def _unary(r, make=arr, **kw):
    """The standard unary samples: 2-d, 0-d, empty, 3-d."""
    make = _arrays(make)
    return [
        Sample((make(r, 3, 4, **kw),)),
        Sample((make(r, **kw),), name="0-d"),
        Sample((make(r, 0, 3, **kw),), name="empty"),
        Sample((make(r, 2, 1, 3, **kw),), name="3-d"),
    ]


def _binary(r, make_a=arr, make_b=arr):
    """The standard binary samples: same shape, broadcasting, 0-d, empty."""
    make_a, make_b = _arrays(make_a), _arrays(make_b)
    return [
        Sample((make_a(r, 3, 4), make_b(r, 3, 4))),
        Sample((make_a(r, 2, 1, 3), make_b(r, 4, 1)), name="broadcast-both"),
        Sample((make_a(r, 3, 4), make_b(r)), name="0-d"),
        Sample((make_a(r, 0, 3), make_b(r, 3)), name="empty"),
    ]


def _arrays(make):
    """``make`` returning arrays also for shape () (NumPy gives a bare scalar for some helpers)."""
    return lambda r, *shape, **kw: np.asarray(make(r, *shape, **kw), dtype=np.float64)


def _split(values, *shapes):
    """Consecutive pieces of ``values`` with the given shapes (distinct values across operands)."""
    out, k = [], 0
    for shape in shapes:
        n = int(np.prod(shape)) if shape else 1
        out.append(values[k:k + n].reshape(shape))
        k += n
    return tuple(out)


def _distinct_pairs(r):
    """maximum/minimum samples without ties, in which a tie would split the gradient."""
    return [
        Sample(_split(distinct(r, 24), (3, 4), (3, 4))),
        Sample(_split(distinct(r, 18), (2, 1, 3), (4, 1)), name="broadcast-both"),
        Sample(_split(distinct(r, 13), (3, 4), ()), name="0-d"),
        Sample((arr(r, 0, 3), arr(r, 3)), name="empty"),
        Sample((ints(r, 2, 4, low=-3, high=3), arr(r, 2, 4)), name="int-float"),
    ]


def _ints(r, *shape):
    return ints(r, *shape, low=-4, high=5)


def _bounded(r, *shape):
    return arr(r, *shape, low=-0.9, high=0.9)


def _float_function(name, make=arr, atol=1e-5, rtol=1e-4, **kw):
    """A float function: the unary samples plus an integer input (which gives float32)."""
    def samples(r):
        return _unary(r, make) + [Sample((ints(r, 2, 3, low=1, high=5),), name="int")]
    return OpInfo(name, lambda m, a: getattr(m, name)(a), samples, atol=atol, rtol=rtol, **kw)


OPS = [
    # ------------------------------------------------------------------ math functions
    OpInfo("abs", lambda m, a: a.abs(), lambda r: _unary(r, away_from_zero) + [
        Sample((_ints(r, 2, 3),), name="int")]),
    OpInfo("abs-operator", lambda m, a: abs(a), lambda r: [Sample((away_from_zero(r, 4),))]),
    _float_function("exp"),
    _float_function("exp2"),
    _float_function("expm1"),
    _float_function("log", positive),
    _float_function("log2", positive),
    _float_function("log10", positive),
    _float_function("log1p", lambda r, *s: arr(r, *s, low=-0.5, high=2.0)),
    _float_function("sqrt", positive),
    _float_function("rsqrt", positive),
    _float_function("sin"),
    _float_function("cos"),
    _float_function("tan", _bounded),
    _float_function("asin", _bounded),
    _float_function("acos", _bounded),
    _float_function("atan"),
    _float_function("tanh"),
    _float_function("sigmoid"),
    _float_function("erf"),
    _float_function("reciprocal", away_from_zero),
    OpInfo("square", lambda m, a: a.square(), lambda r: _unary(r) + [
        Sample((_ints(r, 2, 3),), name="int"),
        Sample((np.array([True, False]),), name="bool")]),
    OpInfo("atan2", lambda m, a, b: m.atan2(a, b), lambda r: _binary(r, away_from_zero, away_from_zero) + [
        Sample((_ints(r, 2, 3), _ints(r, 2, 3)), name="int")]),
    OpInfo("hypot", lambda m, a, b: a.hypot(b), lambda r: _binary(r, away_from_zero, away_from_zero)),

    # ------------------------------------------------------------------ powers
    OpInfo("pow", lambda m, a, b: m.pow(a, b), lambda r: _binary(r, positive) + [
        Sample((arr(r, 3, 4), 3), name="int-exponent"),
        Sample((positive(r, 3, 4), 0.5), name="scalar-exponent"),
        Sample((arr(r, 3), 0), name="zero-exponent"),
        Sample((2.5, arr(r, 3, 4)), name="scalar-base"),
        Sample((0.0, positive(r, 4)), name="zero-base"),
        Sample((arr(r, 3, 4), _ints(r, 4).clip(0, 3)), name="int-tensor-exponent"),
        Sample((_ints(r, 3, 4), 2), name="int-base"),
        Sample((_ints(r, 3, 4), 1.5), name="int-base-float-exponent"),
        Sample((2, _ints(r, 3, 4).clip(0, 8)), name="int-scalar-base"),
        Sample((_ints(r, 3, 4), _ints(r, 3, 4)), name="int-negative-exponents"),
    ]),
    OpInfo("pow-operator", lambda m, a, b: a ** b, lambda r: [
        Sample((positive(r, 3, 4), arr(r, 4)), name="broadcast"),
        Sample((arr(r, 3, 4), 2), name="square"),
    ]),
    OpInfo("rpow", lambda m, a: 2.0 ** a, lambda r: [Sample((arr(r, 3, 4),)), Sample((arr(r),), name="0-d")]),

    # ------------------------------------------------------------------ rounding and sign (zero gradient)
    OpInfo("sign", lambda m, a: a.sign(), lambda r: _unary(r, away_from_zero) + [
        Sample((_ints(r, 2, 3),), name="int"), Sample((np.array([True, False]),), name="bool")]),
    # torch's sgn backward returns a ZeroTensor that cannot be compared; sign's covers it
    OpInfo("sgn", lambda m, a: m.sgn(a), lambda r: [Sample((away_from_zero(r, 3, 4),))], grad=False),
    OpInfo("floor", lambda m, a: a.floor(), lambda r: _unary(r) + [Sample((_ints(r, 2, 3),), name="int")]),
    OpInfo("ceil", lambda m, a: m.ceil(a), lambda r: _unary(r) + [Sample((_ints(r, 2, 3),), name="int")]),
    OpInfo("trunc", lambda m, a: a.trunc(), lambda r: _unary(r) + [Sample((_ints(r, 2, 3),), name="int")]),
    OpInfo("fix", lambda m, a: a.fix(), lambda r: [Sample((arr(r, 3, 4),))]),
    OpInfo("round", lambda m, a, **k: a.round(**k), lambda r: _unary(r, arr, low=-5, high=5) + [
        Sample((arr(r, 3, 4, low=-5, high=5),), {"decimals": 1}, name="decimals"),
        Sample((arr(r, 3, 4, low=-500, high=500),), {"decimals": -2}, name="negative-decimals"),
        Sample((_ints(r, 2, 3),), name="int")]),
    OpInfo("round-half-to-even", lambda m, a: m.round(a), lambda r: [
        Sample((np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49, -2.5]),)),
    ], grad=False),  # finite differences jump at .5
    OpInfo("frac", lambda m, a: a.frac(), lambda r: _unary(r, arr, low=-3, high=3)),

    # ------------------------------------------------------------------ division family
    OpInfo("remainder", lambda m, a, b: m.remainder(a, b), lambda r: _binary(r, arr, positive) + [
        Sample((arr(r, 3, 4), -1.5), name="negative-scalar"),
        Sample((_ints(r, 3, 4), np.array([3, -3, 2, -2])), name="int"),
    ]),
    OpInfo("remainder-forward", lambda m, a, b: m.remainder(a, b), lambda r: [
        Sample((-3.5, positive(r, 4)), name="scalar-first"),  # torch has no derivative for it
    ], grad=False),
    OpInfo("remainder-operator", lambda m, a, b: a % b, lambda r: [
        Sample((arr(r, 3, 4), away_from_zero(r, 4)), name="broadcast")]),
    OpInfo("fmod", lambda m, a, b: a.fmod(b), lambda r: _binary(r, arr, away_from_zero) + [
        Sample((arr(r, 3, 4), -1.5), name="negative-scalar"),
        Sample((_ints(r, 3, 4), np.array([3, -3, 2, -2])), name="int"),
        Sample((_ints(r, 3, 4), 2.5), name="int-float-scalar"),
    ]),
    OpInfo("floor_divide", lambda m, a, b: m.floor_divide(a, b), lambda r: [
        Sample((arr(r, 3, 4) * 4, away_from_zero(r, 4))),
        Sample((_ints(r, 3, 4), np.array([3, -3, 2, -2])), name="int"),
        Sample((_ints(r, 3, 4), -2), name="int-scalar"),
        Sample((_ints(r, 3, 4), 2.5), name="int-float-scalar"),
    ], grad=False),  # PyTorch defines no derivative for floor_divide
    OpInfo("div-trunc", lambda m, a, b: m.div(a, b, rounding_mode="trunc"), lambda r: [
        Sample((arr(r, 3, 4) * 4, away_from_zero(r, 4))),
        Sample((_ints(r, 3, 4) * 3, np.array([2, -2, 3, -3])), name="int"),
        Sample((np.array([-7, 7, -7, 7, 6, -6]), np.array([2, 2, -2, -2, 3, 3])), name="int-signs"),
    ]),
    OpInfo("div-floor", lambda m, a, b: a.div(b, rounding_mode="floor"), lambda r: [
        Sample((np.array([-7, 7, -7, 7, 6, -6]), np.array([2, 2, -2, -2, 3, 3])), name="int-signs"),
        Sample((arr(r, 3, 4) * 4, away_from_zero(r, 4))),
    ], grad=False),
    OpInfo("sub-alpha", lambda m, a, b: m.sub(a, b, alpha=2), lambda r: _binary(r)),
    OpInfo("add-alpha", lambda m, a, b: m.add(a, b, alpha=-0.5), lambda r: _binary(r) + [
        Sample((arr(r, 3, 4), _ints(r, 4)), name="int-other"),
        Sample((np.asarray(arr(r)), arr(r, 2, 3)), name="0-d-input")]),
    OpInfo("rsub", lambda m, a: 1.5 - a, lambda r: [Sample((arr(r, 3, 4),))]),
    OpInfo("true-divide-int", lambda m, a, b: a / b, lambda r: [
        Sample((_ints(r, 3, 4), np.array([2, -3, 4, 7])), name="int")]),

    # ------------------------------------------------------------------ selection and mixing
    OpInfo("maximum", lambda m, a, b: m.maximum(a, b), _distinct_pairs),
    OpInfo("minimum", lambda m, a, b: a.minimum(b), _distinct_pairs),
    OpInfo("clamp", lambda m, x, *bounds, **k: x.clamp(*bounds, **k), lambda r: [
        Sample((arr(r, 3, 4), -0.5, 0.5), name="scalars"),
        Sample((arr(r, 3, 4),), {"min": -0.5}, name="min-only"),
        Sample((arr(r, 3, 4),), {"max": 0.5}, name="max-only"),
        Sample((arr(r, 3, 4), arr(r, 3, 4, low=-1.5, high=-0.2), arr(r, 3, 4, low=0.2, high=1.5)),
               name="tensors"),
        Sample((arr(r, 3, 4), arr(r, 4, low=-1.5, high=-0.2), arr(r, 3, 1, low=0.2, high=1.5)),
               name="broadcast-bounds"),
        Sample((arr(r, 3, 4), arr(r, 3, 4), None), name="tensor-min-only"),
        Sample((arr(r, 3, 4), None, arr(r, 4)), name="tensor-max-only"),
        Sample((arr(r, 3, 4), arr(r, 3, 4, low=0.2, high=1.5), arr(r, 3, 4, low=-1.5, high=-0.2)),
               name="min-above-max"),
        Sample((arr(r), -0.5, 0.5), name="0-d"),
        Sample((arr(r, 0, 3), -0.5, 0.5), name="empty"),
        Sample((_ints(r, 3, 4), 0.5), name="int-float-bound"),
        Sample((_ints(r, 3, 4), -1, 2), name="int"),
    ]),
    OpInfo("clip", lambda m, x, lo, hi: m.clip(x, lo, hi), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 4, low=-1.5, high=-0.2), arr(r, 3, 1, low=0.2, high=1.5)),
               name="broadcast")]),
    OpInfo("clamp_min", lambda m, x, lo: x.clamp_min(lo), lambda r: [Sample((arr(r, 3, 4), 0.25))]),
    OpInfo("clamp_max", lambda m, x, hi: m.clamp_max(x, hi), lambda r: [Sample((arr(r, 3, 4), 0.25))]),
    OpInfo("where", lambda m, c, a, b: m.where(c, a, b), lambda r: [
        Sample((arr(r, 3, 4) > 0, arr(r, 3, 4), arr(r, 3, 4))),
        Sample((arr(r, 3, 1) > 0, arr(r, 4), arr(r, 2, 1, 1)), name="broadcast-all"),
        Sample((arr(r, 3, 4) > 0, arr(r, 3, 4), 0.5), name="scalar-other"),
        Sample((arr(r, 3, 4) > 0, 1.5, arr(r, 4)), name="scalar-input"),
        Sample((arr(r, 3, 4) > 0, arr(r), arr(r, 3, 4)), name="0-d"),
        Sample((arr(r, 0, 3) > 0, arr(r, 0, 3), arr(r, 3)), name="empty"),
        Sample((arr(r, 3, 4) > 0, _ints(r, 3, 4), arr(r, 4)), name="int-float"),
        Sample((arr(r, 4) > 0, 1.0, 0), name="two-scalars"),
        Sample((arr(r, 4) > 0, 1, 0), name="two-int-scalars"),
    ]),
    OpInfo("where-method", lambda m, a, c, b: a.where(c, b), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 3, 4) > 0, arr(r, 4)), name="broadcast"),
        Sample((arr(r, 3, 4), arr(r, 3, 4) > 0, 0.0), name="scalar")]),
    OpInfo("masked_fill", lambda m, x, mask, v: x.masked_fill(mask, v), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 3, 4) > 0, 2.5)),
        Sample((arr(r, 3, 4), arr(r, 4) > 0, -1.0), name="broadcast-mask"),
        Sample((arr(r, 4), arr(r, 3, 1) > 0, 0.5), name="mask-widens"),
        Sample((arr(r, 3, 4), arr(r, 3, 4) > 0, arr(r)), name="0-d-value"),
        Sample((arr(r), np.array(True), 1.0), name="0-d"),
        Sample((arr(r, 0, 3), arr(r, 3) > 0, 1.0), name="empty"),
        Sample((_ints(r, 3, 4), arr(r, 3, 4) > 0, 2.5), name="int-input-float-value"),
    ]),
    OpInfo("lerp", lambda m, a, b, w: m.lerp(a, b, w), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 3, 4), 0.3), name="scalar-weight"),
        Sample((arr(r, 3, 4), arr(r, 3, 4), 0.8), name="large-weight"),
        Sample((arr(r, 3, 4), arr(r, 3, 4), arr(r, 3, 4, low=0, high=1)), name="tensor-weight"),
        Sample((arr(r, 3, 4), arr(r, 4), arr(r, 3, 1, low=0, high=1)), name="broadcast"),
        Sample((arr(r, 3, 4), arr(r, 3, 4), arr(r, low=0, high=1)), name="0-d-weight"),
        Sample((arr(r, 0, 3), arr(r, 3), 0.5), name="empty"),
    ]),
    OpInfo("addcmul", lambda m, a, b, c, **k: m.addcmul(a, b, c, **k), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 3, 4), arr(r, 3, 4))),
        Sample((arr(r, 4), arr(r, 3, 1), arr(r, 1, 4)), {"value": -0.5}, name="broadcast"),
        Sample((arr(r), arr(r, 3), arr(r)), {"value": 2}, name="0-d"),
        Sample((_ints(r, 3), _ints(r, 3), _ints(r, 3)), {"value": 2}, name="int"),
        Sample((arr(r, 3), _ints(r, 3), _ints(r, 3)), name="int-factors"),
    ]),
    OpInfo("addcdiv", lambda m, a, b, c, **k: a.addcdiv(b, c, **k), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 3, 4), away_from_zero(r, 3, 4))),
        Sample((arr(r, 4), arr(r, 3, 1), away_from_zero(r, 1, 4)), {"value": -0.5}, name="broadcast"),
        Sample((arr(r), arr(r, 3), np.asarray(away_from_zero(r))), {"value": 2}, name="0-d"),
    ]),
    OpInfo("addcdiv-forward", lambda m, a, b, c: m.addcdiv(a, b, c), lambda r: [
        Sample((arr(r, 3), arr(r, 3), _ints(r, 3).clip(1, 4)), name="int-divisor"),
    ], grad=False),  # torch's backward fails for an integer tensor2
    OpInfo("nan_to_num", lambda m, a, **k: a.nan_to_num(**k), lambda r: [
        Sample((arr(r, 3, 4),)),
        Sample((arr(r, 3, 4),), {"nan": 1.0, "posinf": 2.0, "neginf": -2.0}, name="fills"),
        Sample((_ints(r, 3),), name="int"),
    ]),
    OpInfo("nan_to_num-special", lambda m, a, **k: m.nan_to_num(a, **k), lambda r: [
        Sample((np.array([np.nan, np.inf, -np.inf, 1.5]),)),
        Sample((np.array([[np.nan, np.inf], [-np.inf, -1.0]]),), {"nan": 1.0, "posinf": 9.0},
               name="fills"),
    ], grad=False),  # inf and nan inputs break finite differences; test_elementwise checks the grad

    # ------------------------------------------------------------------ comparisons and logic (forward only)
    OpInfo("comparisons", lambda m, a, b: (a == b, a != b, a < b, a <= b, a > b, a >= b), lambda r: [
        Sample((_ints(r, 3, 4), _ints(r, 4)), name="int-broadcast"),
        Sample((_ints(r, 3, 4), 0.5), name="int-float-scalar"),
        Sample((_ints(r, 3, 4).astype(np.float64), _ints(r, 3, 4)), name="float-int"),
        Sample((arr(r, 3, 4) > 0, 0.5), name="bool-float-scalar"),
        Sample((_ints(r, 3, 4), True), name="int-bool-scalar"),
    ], grad=False),
    OpInfo("logical", lambda m, a, b: (m.logical_and(a, b), m.logical_or(a, b), m.logical_xor(a, b),
                                       m.logical_not(a)), lambda r: [
        Sample((_ints(r, 3, 4), arr(r, 3, 4)), name="int-float"),
        Sample((arr(r, 3, 4) > 0, arr(r, 4) > 0), name="bool"),
    ], grad=False),
    OpInfo("bitwise", lambda m, a, b: (a & b, a | b, a ^ b, ~a), lambda r: [
        Sample((_ints(r, 3, 4), _ints(r, 4)), name="int"),
        Sample((arr(r, 3, 4) > 0, arr(r, 4) > 0), name="bool"),
        Sample((np.array([1, 2, 3], dtype=np.uint8), np.array([3, 1, 7], dtype=np.int8)), name="uint8-int8"),
    ], grad=False),
    OpInfo("isclose", lambda m, a, b, **k: m.isclose(a, b, **k), lambda r: [
        Sample((np.array([1.0, 1.0 + 1e-6, 1.1, np.nan, np.inf, -np.inf]),
                np.array([1.0, 1.0, 1.0, np.nan, np.inf, np.inf]))),
        Sample((np.array([1.0, np.nan]), np.array([1.0, np.nan])), {"equal_nan": True}, name="equal-nan"),
        Sample((np.array([1, 5, 10]), np.array([2, 6, 10])), {"rtol": 0.2, "atol": 0}, name="int"),
        Sample((arr(r, 3, 1), arr(r, 4)), {"atol": 0.5}, name="broadcast"),
    ], grad=False),
]


# ---------------------------------------------------------------------- in-place methods
# ``x.clone().op_(...)``: the clone is a non-leaf, so the in-place op is recorded by autograd and
# the table checks its forward, its backward against PyTorch's, gradcheck and gradgradcheck.
def _inplace(m, x, *args, method, **kwargs):
    return getattr(x.clone(), method)(*args, **kwargs)


def _inplace_unary_samples(r):
    domain = {"log_": positive, "sqrt_": positive, "rsqrt_": positive, "log2_": positive,
              "log10_": positive, "reciprocal_": away_from_zero, "abs_": away_from_zero,
              "absolute_": away_from_zero, "sign_": away_from_zero, "log1p_": positive,
              "asin_": lambda r, *s: arr(r, *s, low=-0.9, high=0.9),
              "acos_": lambda r, *s: arr(r, *s, low=-0.9, high=0.9)}
    names = ["exp_", "log_", "neg_", "abs_", "sqrt_", "rsqrt_", "sigmoid_", "tanh_", "sin_", "cos_",
             "reciprocal_", "square_", "floor_", "ceil_", "round_", "trunc_", "sign_", "expm1_",
             "log1p_", "log2_", "log10_", "exp2_", "tan_", "asin_", "acos_", "atan_", "erf_",
             "frac_", "negative_", "absolute_", "fix_"]  # (sgn_: torch gives a ZeroTensor grad)
    samples = [Sample((domain.get(n, arr)(r, 2, 3),), {"method": n}, name=n) for n in names]
    samples.append(Sample((positive(r),), {"method": "sqrt_"}, name="sqrt_-0-d"))
    samples.append(Sample((arr(r, 0, 2),), {"method": "exp_"}, name="exp_-empty"))
    return samples


def _inplace_binary_samples(r):
    return [
        Sample((arr(r, 2, 3), arr(r, 2, 3), 0.25), {"method": "lerp_"}, name="lerp_"),
        Sample((arr(r, 2, 3), arr(r, 3), arr(r, 2, 1)), {"method": "lerp_"}, name="lerp_-tensor-weight"),
        Sample((arr(r, 2, 3), arr(r, 2, 3), arr(r, 3)), {"method": "addcmul_", "value": 0.5},
               name="addcmul_"),
        Sample((arr(r, 2, 3), arr(r, 3), away_from_zero(r, 2, 3)), {"method": "addcdiv_", "value": -2.0},
               name="addcdiv_"),
        Sample((arr(r, 2, 3), 0.1), {"method": "clamp_min_"}, name="clamp_min_"),
        Sample((arr(r, 2, 3), -0.1), {"method": "clamp_max_"}, name="clamp_max_"),
        Sample((arr(r, 2, 3), away_from_zero(r, 2, 3)), {"method": "atan2_"}, name="atan2_"),
        Sample((away_from_zero(r, 2, 3), away_from_zero(r, 3)), {"method": "hypot_"}, name="hypot_"),
        Sample((arr(r, 2, 3), positive(r, 2, 3)), {"method": "multiply_"}, name="multiply_"),
        Sample((arr(r, 2, 3), positive(r, 2, 3)), {"method": "divide_"}, name="divide_"),
        Sample((arr(r, 2, 3), positive(r, 3)), {"method": "true_divide_"}, name="true_divide_"),
        Sample((arr(r, 2, 3), arr(r, 2, 3)), {"method": "subtract_", "alpha": 2},
               name="subtract_-alpha"),
        Sample((arr(r, 2, 3),), {"method": "nan_to_num_"}, name="nan_to_num_"),
        Sample((arr(r, 2, 3),), {"method": "round_", "decimals": 1}, name="round_-decimals"),
    ]


def _inplace_integer_samples(r):
    return [Sample((_ints(r, 2, 3),), {"method": n}, name=n)
            for n in ("neg_", "abs_", "square_", "sign_", "floor_", "ceil_", "round_", "trunc_",
                      "bitwise_not_")] + [
        Sample((_ints(r, 2, 3), _ints(r, 3)), {"method": "eq_"}, name="eq_"),
        Sample((_ints(r, 2, 3), 2), {"method": "floor_divide_"}, name="floor_divide_"),
        Sample((_ints(r, 2, 3), 3), {"method": "remainder_"}, name="remainder_"),
        Sample((_ints(r, 2, 3), -3), {"method": "fmod_"}, name="fmod_"),
        Sample((_ints(r, 2, 3), _ints(r, 2, 3)), {"method": "bitwise_xor_"}, name="bitwise_xor_"),
        Sample((arr(r, 2, 3) > 0, arr(r, 3) > 0), {"method": "logical_or_"}, name="logical_or_"),
        Sample((arr(r, 2, 3) > 0,), {"method": "logical_not_"}, name="logical_not_"),
        Sample((arr(r, 2, 3), arr(r, 3)), {"method": "lt_"}, name="lt_-float"),
    ]


OPS += [
    OpInfo("inplace-unary", _inplace, _inplace_unary_samples),
    OpInfo("inplace-binary", _inplace, _inplace_binary_samples),
    OpInfo("inplace-integer", _inplace, _inplace_integer_samples, grad=False),
]
