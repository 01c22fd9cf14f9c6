"""Edge values of the special functions, against PyTorch: poles, domain ends, zeros, infinities.

The op table (table_special.py) covers the smooth interior; this file pins down what happens at
the points it stays away from.
"""

import math

import numpy as np
import pytest

import gradient

torch = pytest.importorskip("torch")

INF, NAN = math.inf, math.nan


def _both(values, dtype="float64", requires_grad=False):
    g = gradient.tensor(np.array(values, dtype=dtype), requires_grad=requires_grad)
    t = torch.tensor(np.array(values, dtype=dtype), requires_grad=requires_grad)
    return g, t


def _same(ours, theirs, rtol=1e-7, atol=0.0):
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol,
                               equal_nan=True)


@pytest.mark.parametrize("name", ["lgamma", "digamma"])
def test_gamma_family_at_poles_and_negative_values(name):
    g, t = _both([0.0, -0.0, -1.0, -2.0, -2.5, 1.0, 2.0, INF, -INF, NAN])
    _same(getattr(gradient, name)(g), getattr(torch, name)(t))


def test_lgamma_gradient_at_poles_matches_torch():
    g, t = _both([-1.5, 0.5, 3.0], requires_grad=True)
    gradient.lgamma(g).sum().backward()
    torch.lgamma(t).sum().backward()
    _same(g.grad, t.grad)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_polygamma_at_zero_and_large(n):
    g, t = _both([0.0, 1e-3, 50.0, 1e4])
    _same(gradient.polygamma(n, g), torch.polygamma(n, t), rtol=1e-6)


def test_polygamma_refuses_negative_or_fractional_order():
    x = gradient.tensor([1.0])
    for n in (-1, 1.5):
        with pytest.raises(ValueError, match="non-negative integer"):
            gradient.polygamma(n, x)


def test_erfinv_at_the_ends_of_its_domain():
    g, t = _both([-1.0, 1.0, -1.5, 1.5, 0.0, 0.999999])
    _same(gradient.erfinv(g), torch.erfinv(t), rtol=1e-6)


def test_erfinv_gradient_at_one_is_inf_like_torch():
    g, t = _both([1.0, 0.5], requires_grad=True)
    gradient.erfinv(g).sum().backward()
    torch.erfinv(t).sum().backward()
    _same(g.grad, t.grad)


def test_erfc_in_the_right_tail_keeps_precision():
    g, t = _both([5.0, 10.0, 26.0])
    _same(gradient.erfc(g), torch.erfc(t), rtol=1e-12)


@pytest.mark.parametrize("eps", [None, 0.0, 0.1, 0.25])
def test_logit_with_eps_clamps_and_zeroes_the_gradient_outside(eps):
    values = [0.0, 0.05, 0.1, 0.3, 0.9, 0.95, 1.0]
    g, t = _both(values, requires_grad=True)
    ours, theirs = gradient.logit(g, eps=eps), torch.logit(t, eps=eps)
    _same(ours, theirs)
    if eps:  # without eps the ends are +-inf and both gradients are inf there
        ours.sum().backward()
        theirs.sum().backward()
        _same(g.grad, t.grad)


def test_xlogy_is_zero_where_x_is_zero():
    x, tx = _both([0.0, 0.0, 0.0, 0.0, 1.0, 2.0], requires_grad=True)
    y, ty = _both([0.0, 2.0, INF, NAN, 0.0, 3.0], requires_grad=True)
    ours, theirs = gradient.xlogy(x, y), torch.xlogy(tx, ty)
    _same(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    _same(x.grad, tx.grad)
    # the gradient of y agrees except at x == y == 0, where torch's 0 / 0 is nan and ours is 0
    ours_y, theirs_y = y.grad.numpy(), ty.grad.numpy()
    assert ours_y[0] == 0 and math.isnan(theirs_y[0])
    np.testing.assert_allclose(ours_y[1:], theirs_y[1:], equal_nan=True)


def test_xlog1py_edges_and_gradients():
    x, tx = _both([0.0, 0.0, 0.0, 1.0, 2.0], requires_grad=True)
    y, ty = _both([-1.0, INF, 0.5, -2.0, 0.5], requires_grad=True)
    ours, theirs = gradient.special.xlog1py(x, y), torch.special.xlog1py(tx, ty)
    _same(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    _same(x.grad, tx.grad)
    _same(y.grad[1:], ty.grad[1:])  # at (0, -1) torch's is nan, ours 0
    assert y.grad.numpy()[0] == 0


def test_xlog1py_and_entr_edges():
    x, tx = _both([0.0, 0.0, 1.0, 2.0])
    y, ty = _both([-1.0, NAN, -1.0, 0.5])
    _same(gradient.special.xlog1py(x, y), torch.special.xlog1py(tx, ty))
    p, tp = _both([0.0, -1.0, NAN, INF, 0.5])
    _same(gradient.special.entr(p), torch.special.entr(tp))


def test_xlogy_double_backward_has_no_nan_at_zero():
    x = gradient.tensor([0.0, 1.0], dtype=gradient.float64, requires_grad=True)
    y = gradient.tensor([2.0, 3.0], dtype=gradient.float64, requires_grad=True)
    (gx,) = gradient.autograd.grad(gradient.xlogy(x, y).sum(), x, create_graph=True)
    (gy,) = gradient.autograd.grad(gx.sum(), y)
    assert np.isfinite(gy.numpy()).all()


def test_sinc_at_zero_value_and_gradient():
    g, t = _both([0.0, 1.0, -2.0, 0.5], requires_grad=True)
    ours, theirs = gradient.sinc(g), torch.sinc(t)
    _same(ours, theirs, rtol=1e-12, atol=1e-15)
    ours.sum().backward()
    theirs.sum().backward()
    _same(g.grad, t.grad, rtol=1e-12, atol=1e-15)


def test_logaddexp_with_infinities_and_large_values():
    a, ta = _both([-INF, INF, -INF, 1e300, 3.0, 1000.0])
    b, tb = _both([-INF, INF, 2.0, 1e300, -INF, 1000.0])
    _same(gradient.logaddexp(a, b), torch.logaddexp(ta, tb))
    _same(gradient.logaddexp2(a, b), torch.logaddexp2(ta, tb))


def test_logaddexp_tie_gradient_is_one_half():
    a, ta = _both([1.0], requires_grad=True)
    b, tb = _both([1.0], requires_grad=True)
    gradient.logaddexp(a, b).backward()
    torch.logaddexp(ta, tb).backward()
    _same(a.grad, ta.grad)
    _same(b.grad, tb.grad)


def test_copysign_uses_the_sign_bit_of_negative_zero():
    a, ta = _both([1.0, 2.0, -3.0, 0.0])
    b, tb = _both([-0.0, 0.0, NAN, -1.0])
    _same(gradient.copysign(a, b), torch.copysign(ta, tb))


def test_fmax_fmin_ignore_nan_and_give_ties_to_input():
    a, ta = _both([1.0, NAN, NAN, 2.0], requires_grad=True)
    b, tb = _both([NAN, 3.0, NAN, 2.0], requires_grad=True)
    for name in ("fmax", "fmin"):
        a.grad = b.grad = ta.grad = tb.grad = None
        ours, theirs = getattr(gradient, name)(a, b), getattr(torch, name)(ta, tb)
        _same(ours, theirs)
        ours.sum().backward()
        theirs.sum().backward()
        _same(a.grad, ta.grad)
        _same(b.grad, tb.grad)


def test_heaviside_and_signbit():
    x, tx = _both([-1.0, 0.0, -0.0, 2.0, NAN])
    v, tv = _both([0.5, 0.5, 0.25, 0.5, 0.5])
    _same(gradient.heaviside(x, v), torch.heaviside(tx, tv))
    assert gradient.signbit(x).numpy().tolist() == torch.signbit(tx).numpy().tolist()
    flags = [True, False, True]          # a bool tensor has no sign: False everywhere
    ours, theirs = gradient.signbit(gradient.tensor(flags)), torch.signbit(torch.tensor(flags))
    assert ours.tolist() == theirs.tolist() and str(ours.dtype) == "gradient.bool"


def test_mvlgamma_below_its_domain_computes_like_torch():
    g, t = _both([0.9, 3.0, 1.2])  # (p - 1) / 2 = 1: torch 2.x no longer refuses 0.9
    _same(gradient.mvlgamma(g, p=3), torch.mvlgamma(t, p=3))
    with pytest.raises(ValueError, match="at least 1"):
        gradient.mvlgamma(g, p=0)


def test_bessel_functions_at_zero_and_large():
    g, t = _both([0.0, 1e-8, 30.0, -30.0, 700.0])
    for name in ("i0e", "i1", "i1e"):
        _same(getattr(gradient.special, name)(g), getattr(torch.special, name)(t), rtol=1e-12)
    _same(gradient.i0(g[:4]), torch.i0(t[:4]), rtol=1e-12)


def test_bessel_gradients_at_zero():
    for name in ("i0", "i0e", "i1", "i1e"):
        g, t = _both([0.0], requires_grad=True)
        getattr(gradient.special, name)(g).sum().backward()
        getattr(torch.special, name)(t).sum().backward()
        _same(g.grad, t.grad)


def test_ndtri_and_log_ndtr_ends():
    p, tp = _both([0.0, 1.0, 1e-300, 0.5, -0.1])
    _same(gradient.special.ndtri(p), torch.special.ndtri(tp), rtol=1e-12)
    x, tx = _both([-INF, -40.0, 0.0, 40.0, INF])
    _same(gradient.special.log_ndtr(x), torch.special.log_ndtr(tx), rtol=1e-12)


def test_atanh_acosh_edges():
    g, t = _both([-1.0, 1.0, 1.5, 0.0])
    _same(gradient.atanh(g), torch.atanh(t))
    _same(gradient.acosh(g), torch.acosh(t))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_inputs_keep_their_dtype(dtype):
    x = gradient.tensor([0.5, 1.5, 3.0]).to(dtype)
    tx = torch.tensor([0.5, 1.5, 3.0]).to(getattr(torch, dtype))
    for name in ("lgamma", "digamma", "erfinv", "sinh", "i0"):
        arg, targ = (x * 0.3, tx * 0.3) if name == "erfinv" else (x, tx)
        ours, theirs = getattr(gradient, name)(arg), getattr(torch, name)(targ)
        assert ours.dtype.name == dtype
        np.testing.assert_allclose(ours.float().numpy(), theirs.float().numpy(), rtol=2e-2)


def test_float_power_is_float64_and_inplace_needs_float64():
    x = gradient.tensor([2.0, 3.0])
    assert gradient.float_power(x, 2).dtype is gradient.float64
    with pytest.raises(gradient.DTypeError):
        x.clone().float_power_(2)
    y = gradient.tensor([2.0, 3.0], dtype=gradient.float64)
    assert y.float_power_(2).numpy().tolist() == [4.0, 9.0]


def test_trapezoid_of_an_empty_dimension_is_zero():
    g, t = _both(np.zeros((2, 0)))
    _same(gradient.trapezoid(g), torch.trapezoid(t))


def test_special_namespace_names_match_torch_special():
    for name in gradient.special.__all__:
        assert hasattr(torch.special, name), name


def test_bessel_functions_against_mpmath():
    import mpmath
    x = np.array([0.3, 1.5, 4.0, 11.0, 35.0])
    references = {
        "bessel_j0": lambda v: mpmath.besselj(0, v), "bessel_j1": lambda v: mpmath.besselj(1, v),
        "bessel_y0": lambda v: mpmath.bessely(0, v), "bessel_y1": lambda v: mpmath.bessely(1, v),
        "modified_bessel_k0": lambda v: mpmath.besselk(0, v),
        "modified_bessel_k1": lambda v: mpmath.besselk(1, v),
        "scaled_modified_bessel_k0": lambda v: mpmath.exp(v) * mpmath.besselk(0, v),
        "scaled_modified_bessel_k1": lambda v: mpmath.exp(v) * mpmath.besselk(1, v),
        "spherical_bessel_j0": lambda v: mpmath.sin(v) / v, "airy_ai": mpmath.airyai,
        "erfcx": lambda v: mpmath.exp(v * v) * mpmath.erfc(v),
    }
    for name, ref in references.items():
        ours = getattr(gradient.special, name)(gradient.tensor(x, dtype=gradient.float64)).numpy()
        want = np.array([float(ref(mpmath.mpf(v))) for v in x])
        np.testing.assert_allclose(ours, want, rtol=1e-12, err_msg=name)
    assert not gradient.special.bessel_j0(gradient.ones(2, requires_grad=True)).requires_grad
    # the edges, as torch's: -inf / inf at 0, nan below for the second kinds
    edges = gradient.special.bessel_y0(gradient.tensor([0.0, -1.0])).tolist()
    assert edges[0] == -np.inf and np.isnan(edges[1])
    assert gradient.special.spherical_bessel_j0(gradient.tensor([0.0])).item() == 1.0
