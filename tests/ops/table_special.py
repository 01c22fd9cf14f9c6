"""Op table entries for gradient/ops/special.py and gradient.special (torch.special's namespace).

Samples stay inside each function's domain and clear of its poles, kinks and ties (lgamma at
the non-positive integers, xlogy at input 0, logit at its eps bounds, fmax at equal values):
those edges are checked against PyTorch in test_special.py instead.
"""

import numpy as np

from .op_info import OpInfo, Sample, arr, away_from_zero, distinct, ints, positive
from .table_elementwise import _binary, _split, _unary


def _between(low, high):
    return lambda r, *shape: arr(r, *shape, low=low, high=high)


def _float_function(name, make=arr, call=None, int_sample=True, **kw):
    """A unary float function: the standard samples, plus an integer input (giving float32)."""
    def samples(r):
        extra = [Sample((ints(r, 2, 3, low=1, high=4),), name="int")] if int_sample else []
        return _unary(r, make) + extra
    op = call or (lambda m, a: getattr(m, name)(a))
    return OpInfo(name, op, samples, **kw)


def _special(name, make=arr, **kw):
    """A torch.special function, called as ``m.special.<name>``."""
    return _float_function(f"special.{name}", make, lambda m, a: getattr(m.special, name)(a),
                           int_sample=False, **kw)


def _inplace(m, x, *args, method, **kwargs):
    return getattr(x.clone(), method)(*args, **kwargs)


def _inplace_samples(r):
    domain = {"lgamma_": positive, "digamma_": positive, "erfinv_": _between(-0.9, 0.9),
              "logit_": _between(0.1, 0.9), "acosh_": _between(1.2, 3.0),
              "atanh_": _between(-0.9, 0.9), "arccosh_": _between(1.2, 3.0),
              "arctanh_": _between(-0.9, 0.9)}
    names = ["lgamma_", "digamma_", "erfc_", "erfinv_", "logit_", "sinh_", "cosh_", "sinc_", "i0_",
             "deg2rad_", "rad2deg_"]
    samples = [Sample((domain.get(n, arr)(r, 2, 3),), {"method": n}, name=n) for n in names]
    return samples + [
        Sample((positive(r, 2, 3), 2), {"method": "polygamma_"}, name="polygamma_"),
        Sample((_between(1.2, 3.0)(r, 2, 3), 2), {"method": "mvlgamma_", }, name="mvlgamma_"),
        Sample((arr(r, 2, 3), positive(r, 3)), {"method": "xlogy_"}, name="xlogy_"),
        Sample((away_from_zero(r, 2, 3), away_from_zero(r, 3)), {"method": "copysign_"},
               name="copysign_"),
        Sample((_between(0.05, 0.95)(r, 2, 3),), {"method": "logit_", "eps": 0.2}, name="logit_-eps"),
    ]


def _inverse_hyperbolic_inplace_samples(r):
    return [Sample((make(r, 2, 3),), {"method": n}, name=n)
            for n, make in (("asinh_", arr), ("acosh_", _between(1.2, 3.0)),
                            ("atanh_", _between(-0.9, 0.9)), ("arcsinh_", arr),
                            ("arccosh_", _between(1.2, 3.0)), ("arctanh_", _between(-0.9, 0.9)))]


def _out_of_place(m, x, *args, method, **kwargs):
    """torch has no derivative for asinh_, acosh_, atanh_: compare with the out-of-place op."""
    return getattr(x.clone(), method[:-1])(*args, **kwargs)


OPS = [
    # ------------------------------------------------------------------ gamma family
    _float_function("lgamma", positive),
    OpInfo("lgamma-negative", lambda m, a: m.lgamma(a),
           lambda r: [Sample((_between(-2.9, -2.1)(r, 3, 4),)), Sample((_between(-0.9, -0.1)(r, 4),))]),
    _float_function("digamma", positive),
    OpInfo("digamma-negative", lambda m, a: a.digamma(), lambda r: [Sample((_between(-1.9, -1.1)(r, 3, 4),))]),
    OpInfo("polygamma", lambda m, a, n: m.polygamma(n, a), lambda r: [
        Sample((positive(r, 3, 4), 1), name="n=1"),
        Sample((positive(r, 3, 4), 2), name="n=2"),
        Sample((positive(r), 3), name="n=3-0-d"),
        Sample((positive(r, 3), 0), name="n=0"),
        Sample((positive(r, 0, 2), 1), name="empty"),
    ], atol=1e-4),
    OpInfo("polygamma-method", lambda m, a: a.polygamma(2), lambda r: [Sample((positive(r, 2, 3),))]),
    OpInfo("mvlgamma", lambda m, a, p: m.mvlgamma(a, p=p), lambda r: [
        Sample((_between(1.1, 3.0)(r, 3, 4), 3), name="p=3"),
        Sample((positive(r, 4), 1), name="p=1"),
        Sample((_between(1.1, 3.0)(r), 2), name="0-d"),
    ]),

    # ------------------------------------------------------------------ error-function family
    _float_function("erfc"),
    _float_function("erfinv", _between(-0.9, 0.9), int_sample=False),

    # ------------------------------------------------------------------ hyperbolic functions
    _float_function("sinh"),
    _float_function("cosh"),
    _float_function("asinh"),
    _float_function("acosh", _between(1.2, 3.0)),
    _float_function("atanh", _between(-0.9, 0.9), int_sample=False),
    OpInfo("arc-aliases", lambda m, a, b: m.arcsinh(a) + m.arccosh(b) + m.arctanh(a * 0.3),
           lambda r: [Sample((arr(r, 3, 4), _between(1.2, 3.0)(r, 3, 4)))]),

    # ------------------------------------------------------------------ compositions
    OpInfo("xlogy", lambda m, a, b: m.xlogy(a, b), lambda r: _binary(r, arr, positive) + [
        Sample((arr(r, 3), 2.5), name="scalar-other"),
        Sample((1.5, positive(r, 3)), name="scalar-input"),
        Sample((ints(r, 2, 3, low=1, high=4), ints(r, 2, 3, low=1, high=4)), name="int"),
    ]),
    # zeta(x, q): differentiable in q only (as torch), so x is a number where gradients are checked
    OpInfo("special.zeta", lambda m, q, x: m.special.zeta(x, q), lambda r: [
        Sample((positive(r, 3, 4), 3.0), name="x=3"),
        Sample((_between(0.2, 4.0)(r, 5), 1.5), name="x=1.5"),
    ]),
    OpInfo("special.zeta-both-tensors", lambda m, x, q: m.special.zeta(x, q), lambda r: [
        Sample((_between(1.1, 6.0)(r, 3, 4), positive(r, 4))),
        Sample((np.array([1.0, 0.5, 2.0, 3.0]), np.array([1.0, 1.0, -2.0, -1.5])), name="edges"),
        Sample((ints(r, 2, 3, low=2, high=5), ints(r, 2, 3, low=1, high=4)), name="int"),
    ], grad=False),
    # the incomplete gamma functions: differentiable in x only (as torch), so a is made inside
    OpInfo("igamma", lambda m, x: m.igamma(m.full_like(x, 2.5), x), lambda r: _unary(r, positive)),
    OpInfo("special.gammaincc", lambda m, x: m.special.gammaincc(m.full_like(x, 0.7), x),
           lambda r: _unary(r, positive)),
    OpInfo("igammac-both-tensors", lambda m, a, x: m.igammac(a, x), lambda r: [
        Sample((positive(r, 3, 4), positive(r, 3, 4))),
        Sample((np.array([0.0, 1.0, -1.0, 2.0]), np.array([1.0, -1.0, 1.0, 0.0])), name="edges"),
    ], grad=False),
    _special("erfcx", _between(-2.0, 8.0)),
    # the Bessel functions and Airy's Ai have no derivatives (PyTorch's neither); PyTorch's
    # values are 1e-8 off in places (test_special checks SciPy's against mpmath)
    *[OpInfo(f"special.{name}", (lambda n: lambda m, a: getattr(m.special, n)(a))(name),
             lambda r: _unary(r, _between(0.2, 12.0)), grad=False, atol=1e-6, rtol=1e-6)
      for name in ("bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0",
                   "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1",
                   "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
                   "spherical_bessel_j0", "airy_ai")],
    OpInfo("logit", lambda m, a, **kw: m.logit(a, **kw), lambda r: _unary(r, _between(0.1, 0.9)) + [
        Sample((_between(0.05, 0.95)(r, 3, 4),), {"eps": 0.2}, name="eps"),
    ]),
    _float_function("sinc"),
    OpInfo("logaddexp", lambda m, a, b: m.logaddexp(a, b), lambda r: _binary(r)),
    OpInfo("logaddexp-large", lambda m, a, b: a.logaddexp(b),
           lambda r: [Sample((arr(r, 4) * 1000, arr(r, 4) * 1000))], gradgrad=False),
    OpInfo("logaddexp2", lambda m, a, b: m.logaddexp2(a, b), lambda r: _binary(r)),
    _float_function("i0"),
    OpInfo("copysign", lambda m, a, b: m.copysign(a, b),
           lambda r: _binary(r, away_from_zero, away_from_zero) + [
               Sample((away_from_zero(r, 3), -1.0), name="scalar"),
               Sample((ints(r, 2, 3, low=-3, high=3), ints(r, 2, 3, low=-3, high=3)), name="int")]),
    OpInfo("heaviside", lambda m, a, b: m.heaviside(a, b), lambda r: [
        Sample((np.array([-1.5, 0.0, 2.0, 0.0]), np.array([0.5, 0.25, 0.75, 1.0]))),
        Sample((np.array([[-1.0, 0.0], [3.0, 0.0]]), np.array(0.5)), name="0-d-values"),
    ], grad=False),
    OpInfo("fmax", lambda m, a, b: m.fmax(a, b), lambda r: [
        Sample(_split(distinct(r, 24), (3, 4), (3, 4))),
        Sample(_split(distinct(r, 18), (2, 1, 3), (4, 1)), name="broadcast"),
        Sample((np.array([1.0, np.nan, np.nan]), np.array([np.nan, 2.0, np.nan])), name="nan",
               grad=()),
        Sample((ints(r, 2, 3), ints(r, 2, 3) + 10), name="int"),
    ]),
    OpInfo("fmin", lambda m, a, b: m.fmin(a, b), lambda r: [
        Sample(_split(distinct(r, 24), (3, 4), (3, 4))),
        Sample((np.array([1.0, np.nan, np.nan]), np.array([np.nan, 2.0, np.nan])), name="nan",
               grad=()),
    ]),
    OpInfo("float_power", lambda m, a, b: m.float_power(a, b), lambda r: [
        Sample((positive(r, 3, 4), arr(r, 3, 4))),
        Sample((positive(r, 3), 2), name="scalar-exponent"),
        Sample((ints(r, 2, 3, low=1, high=4), 2), name="int"),
    ]),
    _float_function("deg2rad"),
    _float_function("rad2deg"),
    OpInfo("signbit", lambda m, a: m.signbit(a), lambda r: [
        Sample((np.array([-1.0, -0.0, 0.0, 2.0, -np.inf]),)),
        Sample((ints(r, 2, 3, low=-3, high=3),), name="int"),
    ], grad=False),
    OpInfo("trapezoid", lambda m, y, *x, **kw: m.trapezoid(y, *x, **kw), lambda r: [
        Sample((arr(r, 3, 5),)),
        Sample((arr(r, 3, 5),), {"dx": 0.5, "dim": 0}, name="dx-dim0"),
        Sample((arr(r, 3, 5), np.sort(arr(r, 5))), name="x-1d"),
        Sample((arr(r, 3, 5), np.sort(arr(r, 3, 5), axis=-1)), name="x-same-shape"),
    ]),

    # ------------------------------------------------------------------ torch.special
    _special("gammaln", positive),
    _special("digamma", positive),
    _special("psi", positive),
    _special("erf"),
    _special("erfc"),
    _special("erfinv", _between(-0.9, 0.9)),
    _special("expit"),
    _special("logit", _between(0.1, 0.9)),
    _special("ndtr"),
    _special("ndtri", _between(0.05, 0.95)),
    _special("log_ndtr", _between(-3.0, 3.0)),
    OpInfo("special.log_ndtr-tail", lambda m, a: m.special.log_ndtr(a),
           lambda r: [Sample((_between(-30.0, -10.0)(r, 4),))], rtol=1e-4, gradgrad=False),
    _special("i0"),
    _special("i0e", away_from_zero),
    _special("i1"),
    _special("i1e", away_from_zero),
    _special("sinc"),
    _special("entr", positive),
    _special("log1p", positive),
    _special("expm1"),
    _special("exp2"),
    _special("round", grad=False),
    OpInfo("special.xlogy", lambda m, a, b: m.special.xlogy(a, b), lambda r: _binary(r, arr, positive)),
    OpInfo("special.xlog1py", lambda m, a, b: m.special.xlog1py(a, b),
           lambda r: _binary(r, arr, _between(-0.9, 2.0))),
    OpInfo("special.polygamma", lambda m, a: m.special.polygamma(1, a), lambda r: [Sample((positive(r, 3),))]),
    OpInfo("special.multigammaln", lambda m, a: m.special.multigammaln(a, 2),
           lambda r: [Sample((_between(1.0, 3.0)(r, 3),))]),
    OpInfo("special.logsumexp", lambda m, a: m.special.logsumexp(a, 1), lambda r: [Sample((arr(r, 3, 4),))]),
    OpInfo("special.softmax", lambda m, a: m.special.softmax(a, 0), lambda r: [Sample((arr(r, 3, 4),))]),
    OpInfo("special.log_softmax", lambda m, a: m.special.log_softmax(a, dim=1),
           lambda r: [Sample((arr(r, 3, 4),))]),

    # ------------------------------------------------------------------ in-place methods
    OpInfo("special-inplace", _inplace, _inplace_samples),
    OpInfo("special-inplace-inverse-hyperbolic", _inplace, _inverse_hyperbolic_inplace_samples,
           ref=_out_of_place),
]
