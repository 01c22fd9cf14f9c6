"""Edge semantics of the elementwise ops, checked against PyTorch where it is the reference.

The op table (table_elementwise.py) covers values and gradients away from kinks; this file
pins down what happens *at* them (abs at 0, sqrt at 0, clamp at its bounds, ties in maximum,
0 ** 0), result dtypes over a grid of operand kinds, integer division, and error messages.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import gradient
from gradient.ops import elementwise

torch = pytest.importorskip("torch")


def _grads(fn, *values, lib):
    """Gradients of ``fn(*tensors).sum()`` with respect to float inputs made from ``values``."""
    make = torch.tensor if lib is torch else gradient.tensor
    xs = [make(v, requires_grad=True) for v in values]
    fn(lib, *xs).sum().backward()
    return [x.grad for x in xs]


def _np(t):
    if isinstance(t, torch.Tensor):
        return (t.float() if t.dtype == torch.bfloat16 else t).detach().numpy()
    return np.asarray((t.float() if t.dtype is gradient.bfloat16 else t).detach().numpy())


def _same_grads(fn, *values):
    ours, theirs = _grads(fn, *values, lib=gradient), _grads(fn, *values, lib=torch)
    for k, (o, t) in enumerate(zip(ours, theirs)):
        assert o is not None, f"no gradient for input {k}"
        np.testing.assert_allclose(_np(o), _np(t), rtol=1e-6, atol=1e-7, err_msg=f"input {k}")
    return ours


# ---------------------------------------------------------------------- values at kinks
def test_abs_gradient_at_zero_is_zero():
    (g,) = _same_grads(lambda m, x: m.abs(x), [0.0, -0.0, -1.0, 2.0])
    assert g.tolist() == [0.0, 0.0, -1.0, 1.0]


def test_sqrt_and_rsqrt_gradients_at_zero_are_infinite():
    (g,) = _same_grads(lambda m, x: m.sqrt(x), [0.0, 4.0])
    assert g.tolist() == [math.inf, 0.25]
    (g,) = _same_grads(lambda m, x: m.rsqrt(x), [0.0, 4.0])
    assert g.tolist()[0] == -math.inf


def test_clamp_gradient_passes_at_the_bounds():
    x = [-1.0, -0.5, 0.0, 0.5, 1.0]
    (g,) = _same_grads(lambda m, t: m.clamp(t, -0.5, 0.5), x)
    assert g.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    (g,) = _same_grads(lambda m, t: t.clamp(min=0.0), x)
    assert g.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    (g,) = _same_grads(lambda m, t: t.clamp(max=0.0), x)
    assert g.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_clamp_tensor_bounds_gradients_match_torch():
    x = [0.0, 1.0, 0.5, -1.0, 2.0, 0.5, 0.5]
    lo = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.5]
    hi = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.5]  # the sixth has min > max: max wins
    gx, glo, ghi = _same_grads(lambda m, a, b, c: m.clamp(a, b, c), x, lo, hi)
    assert gx.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert glo.tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    assert ghi.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    _same_grads(lambda m, a, b: m.clamp(a, min=b), [0.0, 1.0, -1.0], [0.0, 0.0, 0.0])
    _same_grads(lambda m, a, b: m.clamp(a, max=b), [0.0, 1.0, -1.0], [0.0, 0.0, 0.0])


def test_clamp_with_min_above_max_gives_max():
    x = gradient.tensor([-2.0, 0.0, 2.0])
    assert gradient.clamp(x, 1.0, -1.0).tolist() == [-1.0, -1.0, -1.0]


def test_clamp_nan_propagates():
    out = gradient.clamp(gradient.tensor([math.nan, 5.0]), 0.0, 1.0)
    assert math.isnan(out.tolist()[0]) and out.tolist()[1] == 1.0


def test_clamp_needs_a_bound():
    with pytest.raises(ValueError, match="at least one of 'min' or 'max' must not be None"):
        gradient.tensor([1.0]).clamp()


def test_clip_is_clamp_and_inplace_clamp_uses_it():
    assert gradient.clip is gradient.clamp
    x = gradient.tensor([-2.0, 0.5, 3.0])
    x.clamp_(0.0, 1.0)
    assert x.tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_ties_split_the_gradient(op):
    ga, gb = _same_grads(lambda m, a, b: getattr(m, op)(a, b), [1.0, 2.0, 3.0], [1.0, 0.0, 3.0])
    assert ga.tolist()[0] == gb.tolist()[0] == 0.5
    # a broadcast tie: the 0-d side collects the halves of both ties (and all of minimum's win)
    ga, gb = _same_grads(lambda m, a, b: getattr(m, op)(a, b), [1.0, 1.0, 5.0], 1.0)
    assert gb.item() == (1.0 if op == "maximum" else 2.0)


def test_maximum_propagates_nan():
    out = gradient.maximum(gradient.tensor([math.nan, 1.0]), gradient.tensor([1.0, math.nan]))
    assert all(math.isnan(v) for v in out.tolist())


def test_pow_gradients_at_zero_match_torch():
    # 0**0, 0**1, 0**-1 and 2**0, for both the base and the exponent
    ga, gb = _same_grads(lambda m, a, b: a ** b, [0.0, 0.0, 0.0, 2.0], [0.0, 1.0, -1.0, 0.0])
    assert ga.tolist()[:2] == [0.0, 1.0] and gb.tolist()[:2] == [0.0, 0.0]
    _same_grads(lambda m, a: a ** 0, [0.0, 1.0])
    _same_grads(lambda m, a: a ** 0.5, [0.0, 1.0])
    _same_grads(lambda m, b: 0.0 ** b, [0.0, 1.0, -1.0])
    _same_grads(lambda m, b: 2 ** b, [0.0, 1.0, -1.0])


def test_pow_second_derivative_at_zero_is_finite():
    a = gradient.tensor([0.0, 2.0], dtype=gradient.float64, requires_grad=True)
    b = gradient.tensor([0.0, 3.0], dtype=gradient.float64, requires_grad=True)
    (ga,) = gradient.autograd.grad((a ** b).sum(), a, create_graph=True)
    (gab,) = gradient.autograd.grad(ga.sum(), b)
    assert not np.isnan(gab.numpy()).any()


def test_atan2_gradient_at_origin_matches_torch():
    ga, gb = _same_grads(lambda m, a, b: m.atan2(a, b), [0.0, 3.0], [0.0, 4.0])
    assert ga.tolist()[0] == 0.0


def test_hypot_gradient_at_origin_is_nan_like_torch():
    ga, _ = _grads(lambda m, a, b: m.hypot(a, b), [0.0, 3.0], [0.0, 4.0], lib=gradient)
    assert math.isnan(ga.tolist()[0]) and ga.tolist()[1] == pytest.approx(0.6)


def test_hypot_half_precision_does_not_overflow():
    a = gradient.tensor([300.0], dtype=gradient.float16)
    out = gradient.hypot(a, gradient.tensor([400.0], dtype=gradient.float16))
    assert out.dtype is gradient.float16 and out.item() == 500.0


@pytest.mark.parametrize("op", ["floor", "ceil", "round", "trunc", "sign"])
def test_rounding_gradients_are_zeros_not_none(op):
    (g,) = _same_grads(lambda m, x: getattr(m, op)(x), [0.3, -1.7, 2.5])
    assert g.tolist() == [0.0, 0.0, 0.0]


def test_rounding_gradient_stays_zero_for_infinite_upstream_gradients():
    x = gradient.tensor([0.0, 1.5], requires_grad=True)
    gradient.round(x).backward(gradient.tensor([math.inf, -math.inf]))
    assert x.grad.tolist() == [0.0, 0.0]


def test_round_half_to_even_and_decimals():
    x = gradient.tensor([0.5, 1.5, 2.5, -0.5, -1.5])
    assert x.round().tolist() == [0.0, 2.0, 2.0, -0.0, -2.0]
    y = gradient.tensor([1.25, 1.35, 123.0, -0.051])
    t = torch.tensor([1.25, 1.35, 123.0, -0.051])
    for d in (1, 2, -1, -2):
        np.testing.assert_allclose(y.round(decimals=d).numpy(), t.round(decimals=d).numpy())
    with pytest.raises(gradient.DTypeError, match="decimals is only supported for floating"):
        gradient.tensor([1, 2]).round(decimals=1)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_sign_of_nan_is_zero_like_torch(dtype):
    x = [math.nan, -0.0, -3.0, 2.0]
    ours = gradient.tensor(x, dtype=getattr(gradient, dtype)).sign()
    assert ours.tolist() == torch.tensor(x, dtype=getattr(torch, dtype)).sign().tolist() == [0, 0, -1, 1]


def test_frac_keeps_the_sign():
    assert gradient.tensor([-1.25, 2.75]).frac().tolist() == [-0.25, 0.75]


def test_nan_to_num_values_and_gradient():
    special = [math.nan, math.inf, -math.inf, 1.5]
    for name in ("float16", "bfloat16", "float32", "float64"):
        ours = gradient.tensor(special, dtype=getattr(gradient, name)).nan_to_num()
        theirs = torch.tensor(special, dtype=getattr(torch, name)).nan_to_num()
        assert ours.dtype.name == name
        np.testing.assert_array_equal(_np(ours), _np(theirs))
    (g,) = _same_grads(lambda m, x: m.nan_to_num(x, nan=1.0, posinf=2.0), special)
    assert g.tolist() == [0.0, 0.0, 0.0, 1.0]


# ---------------------------------------------------------------------- integer inputs
def test_integer_tensors_cannot_require_grad():
    with pytest.raises(gradient.AutogradError, match="only tensors of floating dtype can require"):
        gradient.tensor([1, 2], requires_grad=True)


@pytest.mark.parametrize("fn", [lambda x: x.sqrt(), lambda x: x.exp(), lambda x: x.sigmoid(),
                                lambda x: x.reciprocal(), lambda x: x.erf(), lambda x: x.log1p()])
def test_integer_inputs_of_float_functions_give_float32_without_grad(fn):
    out = fn(gradient.tensor([1, 2, 3]))
    assert out.dtype is gradient.float32 and not out.requires_grad
    assert fn(gradient.tensor([True, False])).dtype is gradient.float32


def test_mixed_integer_and_float_operands_give_grad_to_the_float_only():
    i = gradient.tensor([1, 2, 3])
    f = gradient.tensor([0.5, 1.0, 2.0], requires_grad=True)
    for out in (i * f, gradient.maximum(i, f), gradient.where(i > 1, i, f), i ** f, f ** i,
                gradient.clamp(i, min=f)):
        assert out.dtype is gradient.float32 and out.requires_grad
        (g,) = gradient.autograd.grad(out.sum(), f)
        assert g.shape == f.shape


def test_integer_results_do_not_require_grad():
    i = gradient.tensor([1, -2, 3])
    for out in (i.abs(), i ** 2, i.clamp(0, 2), i.sign(), i // 2, i % 2, gradient.maximum(i, i)):
        assert out.dtype is gradient.int64 and not out.requires_grad and out.grad_fn is None


def test_rounding_functions_copy_integer_tensors():
    i = gradient.tensor([1, -2, 3])
    for fn in (gradient.floor, gradient.ceil, gradient.round, gradient.trunc, gradient.nan_to_num):
        out = fn(i)
        assert out.dtype is gradient.int64 and out.tolist() == [1, -2, 3]
        out[0] = 7
        assert i.tolist()[0] == 1  # a copy, as in PyTorch


@pytest.mark.parametrize("fn,match", [
    (lambda b: b.abs(), "abs: not supported for bool"),
    (lambda b: b.floor(), "floor: not supported for bool"),
    (lambda b: b.round(), "round: not supported for bool"),
    (lambda b: b.frac(), "frac: expected a floating tensor, got gradient.bool"),
    (lambda b: b // b, "floor_divide: not supported for bool"),
    (lambda b: b % b, "remainder: not supported for bool"),
    (lambda b: gradient.fmod(b, b), "fmod: not supported for bool"),
])
def test_bool_inputs_refused_like_torch(fn, match):
    with pytest.raises(gradient.DTypeError, match=match):
        fn(gradient.tensor([True, False]))


def test_frac_of_integers_is_refused():
    with pytest.raises(gradient.DTypeError, match="frac: expected a floating tensor, got gradient.int64"):
        gradient.tensor([1, 2]).frac()


# ---------------------------------------------------------------------- result dtypes over a grid
_TENSOR_VALUES = {"bool": [True, False, True], "uint8": [3, 2, 5], "int8": [3, -2, 5],
                  "int32": [3, -2, 5], "int64": [3, -2, 5], "float16": [1.5, -2.0, 0.25],
                  "bfloat16": [1.5, -2.0, 0.25], "float32": [1.5, -2.0, 0.25], "float64": [1.5, -2.0, 0.25]}
_ZERO_DIM = {"bool": True, "int8": 2, "int64": 2, "float16": 1.5, "float64": 1.5}


def _operands():
    """(label, maker) for 1-d tensors, 0-d tensors and Python scalars; maker(lib) -> operand."""
    out = []
    for name, vals in _TENSOR_VALUES.items():
        out.append((f"{name}[3]", lambda lib, n=name, v=vals: lib.tensor(v, dtype=getattr(lib, n))))
    for name, val in _ZERO_DIM.items():
        out.append((f"{name}[]", lambda lib, n=name, v=val: lib.tensor(v, dtype=getattr(lib, n))))
    for val in (True, 2, -2, 2.5):
        out.append((repr(val), lambda lib, v=val: v))
    return out


_BINARY = {
    "add": lambda m, a, b: a + b,
    "sub": lambda m, a, b: a - b,
    "mul": lambda m, a, b: a * b,
    "truediv": lambda m, a, b: a / b,
    "floordiv": lambda m, a, b: a // b,
    "mod": lambda m, a, b: a % b,
    "pow": lambda m, a, b: a ** b,
    "fmod": lambda m, a, b: m.fmod(a, b),
    "eq": lambda m, a, b: a == b,
    "lt": lambda m, a, b: a < b,
    "and": lambda m, a, b: a & b,
    "where": lambda m, a, b: m.where(m.tensor([True, False, True]), a, b),
    "clamp": lambda m, a, b: m.clamp(a, min=b),
    "maximum": lambda m, a, b: m.maximum(a, b),           # tensors only in torch
    "atan2": lambda m, a, b: m.atan2(a, b),               # tensors only in torch
    "logical_xor": lambda m, a, b: m.logical_xor(a, b),   # tensors only in torch
}
_REDUCED = ("float16", "bfloat16")


def _run(fn, lib, *makers):
    try:
        return fn(lib, *(mk(lib) for mk in makers)), None
    except Exception as e:  # noqa: BLE001  (the test compares whether both libraries raise)
        return None, e


@pytest.mark.parametrize("op", list(_BINARY))
def test_binary_result_dtypes_and_values_match_torch(op):
    """Every (tensor | 0-d tensor | scalar) pair: same dtype and values, or both raise."""
    fn = _BINARY[op]
    wrong = []
    for (la, ma), (lb, mb) in itertools.product(_operands(), repeat=2):
        if "[" not in la and "[" not in lb:
            continue  # two Python scalars: not a tensor op
        theirs, t_err = _run(fn, torch, ma, mb)
        if isinstance(t_err, TypeError):
            continue  # torch's signature refuses a scalar there (maximum(t, 2), fmod(2, t)); we accept it
        if op == "pow" and la.startswith(("bool", "True")) and lb.startswith(("bool", "True")):
            continue  # torch computes bool_tensor ** True but not bool ** bool tensors; we do both
        ours, o_err = _run(fn, gradient, ma, mb)
        label = f"{op}({la}, {lb})"
        if t_err is not None or o_err is not None:
            if (t_err is None) != (o_err is None):
                wrong.append(f"{label}: gradient {'raised ' + repr(o_err) if o_err else 'did not raise'}, "
                             f"torch {'raised ' + repr(t_err) if t_err else 'did not'}")
            continue
        t_dtype = str(theirs.dtype).removeprefix("torch.")
        if ours.dtype.name != t_dtype:
            wrong.append(f"{label}: {ours.dtype.name}, torch {t_dtype}")
        elif not np.allclose(_np(ours).astype(np.float64), _np(theirs).astype(np.float64),
                             rtol=1e-2 if t_dtype in _REDUCED else 1e-5, atol=1e-6, equal_nan=True):
            # (torch's bfloat16 division can be off by one ulp from the correctly rounded quotient)
            wrong.append(f"{label}: {_np(ours).tolist()} != torch {_np(theirs).tolist()}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("op", ["sqrt", "exp", "sin", "sigmoid", "abs", "sign", "floor", "square",
                                "reciprocal", "neg", "nan_to_num", "frac", "trunc", "round"])
def test_unary_result_dtypes_match_torch(op):
    wrong = []
    for name, vals in _TENSOR_VALUES.items():
        theirs, t_err = _run(lambda m: getattr(m, op)(m.tensor(vals, dtype=getattr(m, name))), torch)
        ours, o_err = _run(lambda m: getattr(m, op)(m.tensor(vals, dtype=getattr(m, name))), gradient)
        if (t_err is None) != (o_err is None):
            wrong.append(f"{op}({name}): gradient {o_err!r}, torch {t_err!r}")
        elif t_err is None and ours.dtype.name != str(theirs.dtype).removeprefix("torch."):
            wrong.append(f"{op}({name}): {ours.dtype}, torch {theirs.dtype}")
    assert not wrong, "\n".join(wrong)


def test_python_scalars_wrap_into_small_integer_dtypes_like_torch():
    assert (gradient.tensor([5], dtype=gradient.int8) + 1000).tolist() == \
        (torch.tensor([5], dtype=torch.int8) + 1000).tolist()
    assert (gradient.tensor([3], dtype=gradient.uint8) - 5).tolist() == [254]
    assert (gradient.tensor([3], dtype=gradient.uint8) * -1).tolist() == [253]


def test_default_dtype_decides_integer_to_float_results():
    gradient.set_default_dtype(gradient.float64)
    try:
        assert gradient.tensor([1, 2]).sqrt().dtype is gradient.float64
        assert (gradient.tensor([1, 2]) / 2).dtype is gradient.float64
    finally:
        gradient.set_default_dtype(gradient.float32)


# ---------------------------------------------------------------------- integer division
_DIVIDENDS = [-7, 7, -7, 7, 6, -6, 0, -1]
_DIVISORS = [2, 2, -2, -2, 3, 3, -3, 4]


@pytest.mark.parametrize("fn", [
    lambda m, a, b: a // b, lambda m, a, b: a % b, lambda m, a, b: m.fmod(a, b),
    lambda m, a, b: m.div(a, b, rounding_mode="trunc"), lambda m, a, b: m.div(a, b, rounding_mode="floor"),
    lambda m, a, b: a / b, lambda m, a, b: m.remainder(a, -3), lambda m, a, b: m.fmod(a, -3),
    lambda m, a, b: a // -3, lambda m, a, b: m.floor_divide(a, 2.5),
], ids=["floordiv", "mod", "fmod", "trunc", "floor", "truediv", "mod-scalar", "fmod-scalar",
        "floordiv-scalar", "floordiv-float-scalar"])
@pytest.mark.parametrize("dtype", ["int64", "int8", "float32"])
def test_integer_division_matches_torch(fn, dtype):
    ours = fn(gradient, gradient.tensor(_DIVIDENDS, dtype=getattr(gradient, dtype)),
              gradient.tensor(_DIVISORS, dtype=getattr(gradient, dtype)))
    theirs = fn(torch, torch.tensor(_DIVIDENDS, dtype=getattr(torch, dtype)),
                torch.tensor(_DIVISORS, dtype=getattr(torch, dtype)))
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_exact_trunc_division_of_large_integers():
    # no detour through float32, which would round 2**40 + 1
    a = gradient.tensor([2 ** 40 + 1, -(2 ** 40 + 1)])
    assert gradient.div(a, 1, rounding_mode="trunc").tolist() == [2 ** 40 + 1, -(2 ** 40 + 1)]


@pytest.mark.parametrize("fn", [lambda a, b: a // b, lambda a, b: a % b, lambda a, b: gradient.fmod(a, b),
                                lambda a, b: gradient.div(a, b, rounding_mode="trunc")])
def test_integer_division_by_zero_raises(fn):
    with pytest.raises(ZeroDivisionError):
        fn(gradient.tensor([1, 2]), gradient.tensor([1, 0]))


def test_float_division_by_zero_follows_ieee():
    a, z = gradient.tensor([-7.0, 7.0]), gradient.tensor([0.0, 0.0])
    assert (a // z).tolist() == [-math.inf, math.inf]
    assert all(math.isnan(v) for v in (a % z).tolist())
    assert (a / z).tolist() == [-math.inf, math.inf]


def test_remainder_and_fmod_gradients_match_torch():
    _same_grads(lambda m, a, b: m.remainder(a, b), [5.5, -5.5, 1.25], [2.0, 2.0, -0.5])
    _same_grads(lambda m, a, b: m.fmod(a, b), [5.5, -5.5, 1.25], [2.0, 2.0, -0.5])


# ---------------------------------------------------------------------- powers
def test_integer_powers_follow_torch():
    i = gradient.tensor([1, -2, 3])
    with pytest.raises(RuntimeError, match="integers to negative integer powers are not allowed"):
        i ** -1                                      # (a DTypeError; torch's RuntimeError)
    base, exps = [1, -1, -1, 2, -2, 0, 3], [-1, -3, -2, -2, -1, 2, 0]
    assert (gradient.tensor(base) ** gradient.tensor(exps)).tolist() == \
        (torch.tensor(base) ** torch.tensor(exps)).tolist()
    assert (2 ** i).tolist() == (2 ** torch.tensor([1, -2, 3])).tolist()
    assert (2 ** i).dtype is gradient.int64 and (2.0 ** i).dtype is gradient.float32
    assert (i ** 2).dtype is gradient.int64 and (i ** 2.5).dtype is gradient.float32
    b = gradient.tensor([True, False])
    assert (b ** True).dtype is gradient.bool and (b ** True).tolist() == [True, False]
    assert (b ** False).tolist() == [True, True]
    assert (b ** 2).dtype is gradient.int64


def test_square_of_bool_is_int64():
    assert gradient.tensor([True, False]).square().tolist() == [1, 0]
    assert gradient.tensor([True, False]).square().dtype is gradient.int64


def test_pow_keeps_half_precision_with_python_exponents():
    x = gradient.tensor([1.0, 2.0], dtype=gradient.float16)
    assert (x ** 2.0).dtype is gradient.float16 and (2.0 ** x).dtype is gradient.float16


# ---------------------------------------------------------------------- where, masked_fill, lerp
def test_where_method_takes_condition_first_like_torch():
    x, y = gradient.tensor([1.0, 2.0, 3.0]), gradient.tensor([-1.0, -2.0, -3.0])
    cond = gradient.tensor([True, False, True])
    assert x.where(cond, y).tolist() == [1.0, -2.0, 3.0]
    assert x.where(cond, 0.0).tolist() == [1.0, 0.0, 3.0]
    assert gradient.where(cond, x, y).tolist() == [1.0, -2.0, 3.0]
    assert gradient.Tensor.where is gradient.where  # the class attribute is the function itself
    assert gradient.where.__name__ == "where" and "condition" in gradient.where.__doc__


def test_where_with_two_scalars_uses_their_result_type():
    cond = gradient.tensor([True, False])
    assert gradient.where(cond, 1, 0).dtype is gradient.int64
    assert gradient.where(cond, 1.0, 0).dtype is gradient.float32
    assert gradient.where(cond, True, False).dtype is gradient.bool


def test_where_gradients_flow_to_both_branches():
    gx, gy = _same_grads(lambda m, x, y: m.where(x > 0, x, y), [1.0, -1.0, 2.0], [5.0, 6.0, 7.0])
    assert gx.tolist() == [1.0, 0.0, 1.0] and gy.tolist() == [0.0, 1.0, 0.0]


def test_where_needs_a_bool_condition():
    with pytest.raises(gradient.DTypeError, match=r"where: expected a bool condition, got a gradient.int64"):
        gradient.where(gradient.tensor([1, 0]), 1.0, 0.0)


def test_masked_fill_gradient_flows_to_a_tensor_value():
    mask = [[True], [False]]
    ga, gv = _same_grads(lambda m, a, v: a.masked_fill(m.tensor(mask), v), [1.0, 2.0], 3.0)
    assert ga.tolist() == [1.0, 1.0] and gv.item() == 2.0  # mask broadcasts the output to (2, 2)


def test_masked_fill_converts_the_value_to_the_input_dtype():
    i = gradient.tensor([1, 2, 3])
    mask = gradient.tensor([True, False, True])
    assert i.masked_fill(mask, 2.5).tolist() == [2, 2, 2]
    assert i.masked_fill(mask, gradient.tensor(7.9)).dtype is gradient.int64
    f = gradient.tensor([1.0, 2.0, 3.0])
    assert f.masked_fill(mask, gradient.tensor(4.0, dtype=gradient.float64)).dtype is gradient.float32
    assert f.masked_fill(mask, float("-inf")).tolist() == [-math.inf, 2.0, -math.inf]


def test_masked_fill_errors():
    x = gradient.tensor([1.0, 2.0])
    with pytest.raises(gradient.DTypeError, match="masked_fill: expected a bool mask, got a gradient.int64"):
        x.masked_fill(gradient.tensor([1, 0]), 0.0)
    with pytest.raises(gradient.ShapeError, match=r"value must be a number or a 0-d tensor, got a tensor "
                                                 r"of shape \(2,\)"):
        x.masked_fill(gradient.tensor([True, False]), gradient.tensor([1.0, 2.0]))
    with pytest.raises(gradient.ShapeError, match=r"masked_fill: shapes \(3,\), \(\) and \(2,\) do not "
                                                 r"broadcast"):
        x.masked_fill(gradient.tensor([True, False, True]), 0.0)


def test_masked_fill_inplace():
    x = gradient.tensor([1.0, 2.0])
    x.masked_fill_(gradient.tensor([True, False]), 0.0)
    assert x.tolist() == [0.0, 2.0]


def test_lerp_gradients_and_errors():
    _same_grads(lambda m, a, b, w: m.lerp(a, b, w), [1.0, 2.0], [3.0, 5.0], [0.25, 0.75])
    a = gradient.tensor([1.0, 2.0])
    with pytest.raises(gradient.DTypeError, match="lerp: expected end to have dtype gradient.float32"):
        gradient.lerp(a, a.double(), 0.5)
    with pytest.raises(gradient.DTypeError, match="lerp: expected weight to have dtype gradient.float32"):
        gradient.lerp(a, a, gradient.tensor([0.5, 0.5], dtype=gradient.float64))
    with pytest.raises(gradient.DTypeError, match="lerp: expected floating tensors, got gradient.int64"):
        gradient.lerp(gradient.tensor([1]), gradient.tensor([2]), 0.5)
    # a 0-d weight of another float dtype is fine, and promotes like a 0-d operand, as in torch
    w = gradient.tensor(0.5, dtype=gradient.float64)
    assert gradient.lerp(a, a * 3, w).tolist() == [2.0, 4.0]
    assert gradient.lerp(a, a * 3, w).dtype is gradient.float32
    h = gradient.tensor(1.0, dtype=gradient.float16)
    assert gradient.lerp(h, h, w).dtype is gradient.float64
    assert torch.lerp(torch.tensor(1.0, dtype=torch.float16), torch.tensor(1.0, dtype=torch.float16),
                      torch.tensor(0.5, dtype=torch.float64)).dtype == torch.float64


def test_addcmul_addcdiv_dtypes_and_errors():
    i = gradient.tensor([1, -2, 3])
    # value is truncated for integer tensors (torch: value 0.5 -> 0)
    assert gradient.addcmul(i, i, i, value=0.5).tolist() == \
        torch.addcmul(torch.tensor([1, -2, 3]), torch.tensor([1, -2, 3]), torch.tensor([1, -2, 3]),
                      value=0.5).tolist()
    with pytest.raises(gradient.DTypeError, match="addcdiv: integer division is not supported"):
        gradient.addcdiv(i.float(), i, i)
    with pytest.raises(gradient.DTypeError, match="hypot: expected floating tensors, got gradient.int64"):
        gradient.hypot(i, i)
    _same_grads(lambda m, a, b, c: m.addcdiv(a, b, c, value=-2), [1.0, 2.0], [3.0, 4.0], [0.5, -2.0])
    _same_grads(lambda m, a, b, c: m.addcmul(a, b, c, value=3), [1.0, 2.0], [3.0, 4.0], [0.5, -2.0])


# ---------------------------------------------------------------------- closeness
def test_isclose_allclose_equal_match_torch():
    a = [1.0, 1.0 + 1e-6, 1.1, math.nan, math.inf, -math.inf, math.inf]
    b = [1.0, 1.0, 1.0, math.nan, math.inf, -math.inf, -math.inf]
    for kw in ({}, {"equal_nan": True}, {"rtol": 0, "atol": 0}, {"rtol": 0.2}):
        ours = gradient.isclose(gradient.tensor(a), gradient.tensor(b), **kw)
        theirs = torch.isclose(torch.tensor(a), torch.tensor(b), **kw)
        assert ours.dtype is gradient.bool and ours.tolist() == theirs.tolist(), kw
    x = gradient.tensor([1.0, 2.0])
    assert gradient.allclose(x, x + 1e-7) is True and gradient.allclose(x, x + 1e-3) is False
    assert x.allclose(x) is True and x.isclose(x).tolist() == [True, True]
    assert gradient.equal(gradient.tensor([1, 2]), gradient.tensor([1.0, 2.0])) is True
    assert gradient.equal(x, x[:1]) is False
    assert gradient.equal(gradient.tensor([math.nan]), gradient.tensor([math.nan])) is False
    assert x.equal(x) is True


def test_isclose_of_unsigned_integers_does_not_wrap():
    a, b = gradient.tensor([1, 200], dtype=gradient.uint8), gradient.tensor([2, 199], dtype=gradient.uint8)
    assert gradient.isclose(a, b, atol=1).tolist() == [True, True]


def test_isclose_errors():
    with pytest.raises(gradient.DTypeError, match="isclose: expected both tensors to have the same dtype, "
                                                 "got gradient.int64 and gradient.float32"):
        gradient.isclose(gradient.tensor([1]), gradient.tensor([1.0]))
    with pytest.raises(ValueError, match="rtol and atol must be non-negative"):
        gradient.isclose(gradient.tensor([1.0]), gradient.tensor([1.0]), rtol=-1)


def test_isclose_records_no_graph():
    x = gradient.tensor([1.0], requires_grad=True)
    out = gradient.isclose(x, x * 2)
    assert not out.requires_grad and out.grad_fn is None


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("call,shapes", [
    (lambda a, b: a + b, r"\(2, 3\) and \(4,\)"),
    (lambda a, b: a * b, r"\(2, 3\) and \(4,\)"),
    (lambda a, b: a < b, r"\(2, 3\) and \(4,\)"),
    (lambda a, b: a ** b, r"\(2, 3\) and \(4,\)"),
    (lambda a, b: gradient.maximum(a, b), r"\(2, 3\) and \(4,\)"),
    (lambda a, b: gradient.atan2(a, b), r"\(2, 3\) and \(4,\)"),
    (lambda a, b: gradient.where(a > 0, a, b), r"\(2, 3\) and \(4,\)"),
    (lambda a, b: gradient.clamp(a, b, None), r"\(2, 3\) and \(4,\)"),
    (lambda a, b: gradient.lerp(a, b, 0.5), r"\(2, 3\) and \(4,\)"),
    (lambda a, b: gradient.addcmul(a, b, a), r"\(2, 3\), \(4,\) and \(2, 3\)"),
    (lambda a, b: gradient.isclose(a, b), r"\(2, 3\) and \(4,\)"),
])
def test_broadcast_failures_raise_shape_error_naming_both_shapes(call, shapes):
    a, b = gradient.ones(2, 3), gradient.ones(4)
    with pytest.raises(gradient.ShapeError, match=shapes + r" do not broadcast: 3 != 4 at dimension -1"):
        call(a, b)
    with pytest.raises(ValueError):  # a ShapeError is a ValueError, as NumPy's and PyTorch's users expect
        call(a, b)


def test_broadcast_failure_with_mixed_dtypes_and_inner_dimension():
    with pytest.raises(gradient.ShapeError, match=r"add: shapes \(2, 3, 4\) and \(5, 1\) do not broadcast: "
                                                 r"3 != 5 at dimension -2"):
        gradient.ones(2, 3, 4) + gradient.ones(5, 1, dtype=gradient.int64)


def test_empty_broadcasts_with_one_but_not_with_other_sizes():
    assert (gradient.ones(0, 3) + gradient.ones(1, 3)).shape == (0, 3)
    with pytest.raises(gradient.ShapeError, match="0 != 2"):
        gradient.ones(0, 3) + gradient.ones(2, 3)


def test_bool_negation_and_subtraction_are_refused():
    b = gradient.tensor([True, False])
    with pytest.raises(gradient.DTypeError, match="negating a bool tensor is not supported; to invert a "
                                                 "mask use ~mask or logical_not"):
        -b
    with pytest.raises(gradient.DTypeError, match="subtracting two bool tensors is not supported; use "
                                                 "logical_xor"):
        b - b
    for call in (lambda: b - 1, lambda: 1 - b, lambda: gradient.tensor([1, 2]) - True):
        with pytest.raises(gradient.DTypeError, match="subtraction with a bool tensor is not supported"):
            call()
    assert (~b).tolist() == [False, True] and (b + b).dtype is gradient.bool


def test_bitwise_ops_refuse_floats():
    with pytest.raises(gradient.DTypeError, match="bitwise_and: expected integer or bool tensors, got "
                                                 "gradient.float32"):
        gradient.tensor([1.0]) & gradient.tensor([1.0])
    with pytest.raises(gradient.DTypeError, match="bitwise_not: expected an integer or bool tensor"):
        ~gradient.tensor([1.0])


def test_scalar_only_operands_are_refused():
    with pytest.raises(TypeError, match="add: expected at least one tensor operand, got int and float"):
        gradient.add(1, 2.0)


# ---------------------------------------------------------------------- the Tensor methods
def test_tensor_methods_exist_in_torch_and_gradient():
    x = gradient.tensor([1.0])
    for name in elementwise.TENSOR_METHODS:
        assert callable(getattr(x, name)), name
        if name != "cast":  # gradient's own (torch has .to)
            assert hasattr(torch.Tensor, name), f"{name} is not a torch.Tensor method"


def test_double_backward_through_math_functions():
    for name in ("sqrt", "tanh", "sigmoid", "erf", "atan", "rsqrt", "log1p", "reciprocal"):
        x = gradient.tensor([0.3, 0.7], dtype=gradient.float64, requires_grad=True)
        assert gradient.autograd.gradgradcheck(lambda t: getattr(t, name)(), (x,)), name


def test_log2_of_powers_of_two_is_exact():
    x = gradient.tensor([2.0 ** k for k in range(-20, 40)])
    assert gradient.log2(x).tolist() == [float(k) for k in range(-20, 40)]
    assert gradient.exp2(gradient.tensor([3, -1])).tolist() == [8.0, 0.5]


# ---------------------------------------------------------------------- Python scalars: range checks
def test_python_ints_beyond_64_bits_raise_like_torch():
    for x in (gradient.tensor([1, 2]), gradient.tensor([1.0, 2.0]),
              gradient.tensor([1, 2], dtype=gradient.uint8)):
        for big in (2**64, -2**63 - 1, 2**1000):
            with pytest.raises(OverflowError, match="64 bits"):
                x + big
    # the ends of the range still wrap, as in torch
    for big in (2**63, 2**64 - 1, -2**63):
        assert (gradient.tensor([1, 2]) + big).tolist() == (torch.tensor([1, 2]) + big).tolist()


_OUT_OF_RANGE = [("int8", 300), ("int8", -129), ("uint8", 256), ("uint8", -256), ("int64", 2**63),
                 ("float16", 1e6)]
_SCALAR_ARGUMENT_CALLS = {
    "clamp-min": lambda lib, x, v: lib.clamp(x, v),
    "clamp-max": lambda lib, x, v: x.clamp(max=v),
    "masked_fill": lambda lib, x, v: x.masked_fill(lib.tensor([True, False]), v),
    "alpha": lambda lib, x, v: lib.add(x, x, alpha=v),
}


@pytest.mark.parametrize("dtype, value", _OUT_OF_RANGE)
@pytest.mark.parametrize("call", _SCALAR_ARGUMENT_CALLS.values(), ids=_SCALAR_ARGUMENT_CALLS.keys())
def test_scalar_arguments_out_of_the_dtype_range_raise_like_torch(dtype, value, call):
    # scalar *arguments* (bounds, fill values, alpha) are checked, unlike scalar operands of + and *
    with pytest.raises(RuntimeError, match="without overflow"):
        call(torch, torch.tensor([1, 2], dtype=getattr(torch, dtype)), value)
    with pytest.raises(OverflowError, match=rf"{value} does not fit in gradient\.{dtype}"):
        call(gradient, gradient.tensor([1, 2], dtype=getattr(gradient, dtype)), value)


@pytest.mark.parametrize("dtype, value", [("uint8", -1), ("uint8", -255), ("int8", 127), ("int8", -128),
                                          ("float16", float("-inf")), ("float16", 65504.0)])
@pytest.mark.parametrize("call", _SCALAR_ARGUMENT_CALLS.values(), ids=_SCALAR_ARGUMENT_CALLS.keys())
def test_scalar_arguments_in_range_convert_like_torch(dtype, value, call):
    # unsigned dtypes take negative arguments down to -max and wrap them, as torch does
    ours = call(gradient, gradient.tensor([1, 2], dtype=getattr(gradient, dtype)), value)
    theirs = call(torch, torch.tensor([1, 2], dtype=getattr(torch, dtype)), value)
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert ours.tolist() == theirs.tolist()


# ---------------------------------------------------------------------- add/sub alpha
@pytest.mark.parametrize("op", ["add", "sub"])
def test_alpha_of_integer_operands_must_be_an_integer_like_torch(op):
    a = gradient.tensor([1, 2])
    for other in (a, 3):
        with pytest.raises(gradient.DTypeError, match=f"{op}: alpha must be an integer for "
                                                      "gradient.int64 operands, got 2.5"):
            getattr(gradient, op)(a, other, alpha=2.5)
    with pytest.raises(gradient.DTypeError, match="bool alpha is only supported for bool results"):
        getattr(gradient, op)(a, a, alpha=True)


def test_alpha_with_bool_operands_gives_bool_like_torch():
    a, b = gradient.tensor([True, False]), gradient.tensor([False, False])
    ta, tb = torch.tensor([True, False]), torch.tensor([False, False])
    for alpha in (2, True, 0):
        ours, theirs = gradient.add(a, b, alpha=alpha), torch.add(ta, tb, alpha=alpha)
        assert ours.dtype is gradient.bool and ours.tolist() == theirs.tolist()


def test_alpha_scales_in_the_result_dtype_like_torch():
    # other (float16) is promoted to float32 before the scaling, so 3 * (1 + 2**-10) stays exact
    base, other = np.zeros(1, np.float32), np.array([1 + 2**-10], np.float16)
    ours = gradient.add(gradient.tensor(base), gradient.tensor(other), alpha=3)
    theirs = torch.add(torch.tensor(base), torch.tensor(other), alpha=3)
    assert ours.dtype is gradient.float32 and ours.tolist() == theirs.tolist() == [3.0029296875]
    x = gradient.tensor(other.astype(np.float32), requires_grad=True)
    gradient.sub(gradient.tensor(base), x, alpha=3).sum().backward()
    assert x.grad.tolist() == [-3.0]


# ---------------------------------------------------------------------- round, lerp, where
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_round_with_decimals_of_half_precision_like_torch(dtype):
    # scaling by 10**decimals must not overflow (float16) or round twice (bfloat16)
    values = [1234.5678, 1.4531, 0.5234, -3.1415, 65000.0]
    for decimals in (2, 1, -2):
        ours = gradient.tensor(values, dtype=getattr(gradient, dtype)).round(decimals=decimals)
        theirs = torch.tensor(values, dtype=getattr(torch, dtype)).round(decimals=decimals)
        assert ours.dtype.name == dtype
        assert _np(ours).tolist() == _np(theirs).tolist(), decimals


def test_lerp_needs_tensors_for_input_and_end():
    with pytest.raises(TypeError, match="lerp: expected end to be a tensor, got float"):
        gradient.lerp(gradient.tensor([1.0]), 3.0, 0.5)


def test_where_with_only_a_condition_is_nonzero_as_tuple_like_torch():
    mask = [[True, False, True], [False, False, True]]
    ours, theirs = gradient.where(gradient.tensor(mask)), torch.where(torch.tensor(mask))
    assert isinstance(ours, tuple) and len(ours) == len(theirs) == 2
    for o, t in zip(ours, theirs):
        assert o.dtype is gradient.int64 and o.tolist() == t.tolist()
    with pytest.raises(TypeError, match="where: expected both input and other, or neither"):
        gradient.where(gradient.tensor(mask), gradient.tensor(1.0))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("value", [65536.0, 1e-8, 3, 0.1, 70000])
@pytest.mark.parametrize("op", ["mul", "div", "add", "sub", "rmul", "rsub", "radd"])
def test_half_precision_with_a_scalar_converts_the_scalar_like_torch(dtype, value, op):
    # PyTorch keeps the scalar of mul and div in float32 (half * 65536.0 is not inf) but converts
    # the scalar of add and sub to the tensor's dtype (half + 65536.0 is inf); likewise here
    fns = {"mul": lambda x, s: x * s, "div": lambda x, s: x / s, "add": lambda x, s: x + s,
           "sub": lambda x, s: x - s, "rmul": lambda x, s: s * x, "rsub": lambda x, s: s - x,
           "radd": lambda x, s: s + x}
    results = []
    for m in (gradient, torch):
        x = m.tensor([0.25, -3.0, 1000.0], dtype=getattr(m, dtype))
        for s in (value, m.tensor(value, dtype=m.float32), m.tensor(value, dtype=m.float64)):
            r = fns[op](x, s)
            results.append((str(r.dtype).split(".")[-1], r.float().tolist()))
    assert results[:3] == results[3:]


def test_a_numpy_array_beside_a_tensor_is_a_tensor_of_its_dtype():
    """``tensor + ndarray`` as torch computes it: the array a tensor of its own dtype, promoted."""
    cases = [(lambda L: L.ones(2) + np.ones(2)),
             (lambda L: L.ones(2, dtype=L.float32) - np.ones(2, dtype=np.float32)),
             (lambda L: L.ones(2) * np.array(2.0)),
             (lambda L: L.arange(3) + np.arange(3)),
             (lambda L: L.ones(2, 3) / np.arange(1, 4, dtype=np.float32))]
    for f in cases:
        ours, theirs = f(gradient), f(torch)
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    x = gradient.ones(3, requires_grad=True)
    (x * np.array([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0, 3.0])
