"""gradient.autograd.functional against torch.autograd.functional: the same functions on the same
float64 inputs, the same values and the same return structure (tensor, tuple, tuple of tuples)."""

import numpy as np
import pytest
import torch
import torch.autograd.functional as TF

import gradient
import gradient.autograd.functional as GF
from gradient.errors import AutogradError

RNG = np.random.default_rng(0)
A = RNG.standard_normal(3)
B = RNG.standard_normal(2)
V_IN = (RNG.standard_normal(3), RNG.standard_normal(2))     # shaped as the inputs
V_OUT = (RNG.standard_normal(2), RNG.standard_normal(2))    # shaped as the outputs of f2


def t(m, values, requires_grad=False):
    return m.tensor(values, dtype=m.float64, requires_grad=requires_grad)


# functions written once, run with m = gradient and m = torch (their tensors have the same methods)
def f1(x):                     # one input, one output
    return x.sin() * x.exp()


def f2(x, y):                  # two inputs, two outputs
    return x[:2] * y.exp(), (x * x).sum() * y


def f1_tuple_out(x):           # one input, two outputs
    return x ** 2, x.sum() * x[:2]


def f2_single_out(x, y):       # two inputs, one output
    return (x[:2] * y).tanh()


def s1(x):                     # scalar of one input
    return (x.sin() * x * x).sum()


def s2(x, y):                  # scalar of two inputs, with cross terms
    return (x.sin()).sum() * (y ** 2).sum() + (x ** 3).sum() * y[0]


def inputs(m, n):
    return t(m, A) if n == 1 else (t(m, A), t(m, B))


def assert_same(ours, theirs, path="result"):
    """Same structure (tuple or tensor at each level) and values."""
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple), f"{path}: expected a tuple, got {type(ours).__name__}"
        assert len(ours) == len(theirs), f"{path}: length {len(ours)} != {len(theirs)}"
        for i, (o, e) in enumerate(zip(ours, theirs)):
            assert_same(o, e, f"{path}[{i}]")
        return
    assert isinstance(ours, gradient.Tensor), f"{path}: expected a Tensor, got {type(ours).__name__}"
    assert tuple(ours.shape) == tuple(theirs.shape), f"{path}: shape {tuple(ours.shape)} != {tuple(theirs.shape)}"
    assert ours.dtype == gradient.float64
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12,
                               err_msg=path)


def run_both(name, fn, n_inputs, v=None, **kwargs):
    ours = getattr(GF, name)(fn, inputs(gradient, n_inputs), *(() if v is None else (v(gradient),)), **kwargs)
    theirs = getattr(TF, name)(fn, inputs(torch, n_inputs), *(() if v is None else (v(torch),)), **kwargs)
    return ours, theirs


# ---------------------------------------------------------------------------- values and structure
@pytest.mark.parametrize("fn, n", [(f1, 1), (f2, 2), (f1_tuple_out, 1), (f2_single_out, 2)],
                         ids=["1in-1out", "2in-2out", "1in-2out", "2in-1out"])
def test_jacobian_matches_torch(fn, n):
    ours, theirs = run_both("jacobian", fn, n)
    assert_same(ours, theirs)
    assert not _requires_grad_anywhere(ours)


@pytest.mark.parametrize("fn, n", [(f1, 1), (f2, 2)], ids=["1in-1out", "2in-2out"])
def test_jacobian_vectorize_gives_the_same(fn, n):
    ours = GF.jacobian(fn, inputs(gradient, n), vectorize=True)
    assert_same(ours, TF.jacobian(fn, inputs(torch, n), vectorize=True))


@pytest.mark.parametrize("fn, n", [(s1, 1), (s2, 2)], ids=["1in", "2in"])
def test_hessian_matches_torch(fn, n):
    ours, theirs = run_both("hessian", fn, n)
    assert_same(ours, theirs)


def test_hessian_of_two_inputs_is_a_tuple_of_tuples_shaped_by_both_inputs():
    h = GF.hessian(s2, inputs(gradient, 2))
    assert [[tuple(h[i][j].shape) for j in range(2)] for i in range(2)] == [[(3, 3), (3, 2)], [(2, 3), (2, 2)]]
    np.testing.assert_allclose(h[0][1].numpy(), h[1][0].numpy().T, rtol=1e-12)   # symmetric


def test_hessian_of_a_one_element_output_and_0d_input():
    x = 0.7
    ours = GF.hessian(lambda a: (a ** 4).reshape(1), gradient.tensor(x, dtype=gradient.float64))
    assert tuple(ours.shape) == ()
    assert ours.item() == pytest.approx(12 * x ** 2)


def vin(m):
    return (t(m, V_IN[0]), t(m, V_IN[1]))


@pytest.mark.parametrize("name", ["vjp", "jvp"])
@pytest.mark.parametrize("fn, n, v", [
    (f1, 1, {"vjp": lambda m: t(m, V_IN[0]), "jvp": lambda m: t(m, V_IN[0])}),
    (f2, 2, {"vjp": lambda m: (t(m, V_OUT[0]), t(m, V_OUT[1])), "jvp": vin}),
    (f1_tuple_out, 1, {"vjp": lambda m: (t(m, V_IN[0]), t(m, V_OUT[0])), "jvp": lambda m: t(m, V_IN[0])}),
    (f2_single_out, 2, {"vjp": lambda m: t(m, V_OUT[0]), "jvp": vin}),
], ids=["1in-1out", "2in-2out", "1in-2out", "2in-1out"])
def test_vjp_and_jvp_match_torch(name, fn, n, v):
    ours, theirs = run_both(name, fn, n, v[name])
    assert_same(ours, theirs)
    assert not _requires_grad_anywhere(ours)


@pytest.mark.parametrize("name", ["hvp", "vhp"])
@pytest.mark.parametrize("fn, n, v", [(s1, 1, lambda m: t(m, V_IN[0])), (s2, 2, vin)], ids=["1in", "2in"])
def test_hvp_and_vhp_match_torch(name, fn, n, v):
    ours, theirs = run_both(name, fn, n, v)
    assert_same(ours, theirs)


def test_v_may_be_left_out_for_single_elements():
    x = 0.3
    for name, fn in [("vjp", lambda a: a.sin().sum()), ("jvp", lambda a: a.sin()),
                     ("vhp", lambda a: a.sin().sum()), ("hvp", lambda a: a.sin().sum())]:
        ours = getattr(GF, name)(fn, gradient.tensor([x], dtype=gradient.float64))
        theirs = getattr(TF, name)(fn, torch.tensor([x], dtype=torch.float64))
        assert_same(ours, theirs, name)


def test_results_match_the_definitions():
    """jvp is J v, vjp is v^T J, hvp and vhp are H v: checked against the full jacobian/hessian."""
    x = t(gradient, A)
    v = t(gradient, V_IN[0])
    J = GF.jacobian(f1, x).numpy()
    H = GF.hessian(s1, x).numpy()
    np.testing.assert_allclose(GF.jvp(f1, x, v)[1].numpy(), J @ V_IN[0], rtol=1e-12)
    np.testing.assert_allclose(GF.vjp(f1, x, v)[1].numpy(), V_IN[0] @ J, rtol=1e-12)
    np.testing.assert_allclose(GF.hvp(s1, x, v)[1].numpy(), H @ V_IN[0], rtol=1e-12)
    np.testing.assert_allclose(GF.vhp(s1, x, v)[1].numpy(), V_IN[0] @ H, rtol=1e-12)


def test_works_inside_no_grad_and_leaves_inputs_alone():
    x = t(gradient, A, requires_grad=True)
    with gradient.no_grad():
        jac = GF.jacobian(f1, x)
    assert_same(jac, TF.jacobian(f1, t(torch, A)))
    assert x.grad is None and gradient.is_grad_enabled()


def _requires_grad_anywhere(value):
    if isinstance(value, tuple):
        return any(_requires_grad_anywhere(v) for v in value)
    return value.requires_grad


# ---------------------------------------------------------------------------- create_graph
def test_jacobian_create_graph_gives_second_derivatives():
    def second(m, lib):
        x = t(m, A, requires_grad=True)
        jac = lib.jacobian(f1, x, create_graph=True)
        assert jac.requires_grad
        (g,) = m.autograd.grad((jac * jac).sum(), x)
        return g
    np.testing.assert_allclose(second(gradient, GF).numpy(), second(torch, TF).numpy(), rtol=1e-10)


@pytest.mark.parametrize("name, fn, v", [
    ("vjp", f2, lambda m: (t(m, V_OUT[0]), t(m, V_OUT[1]))),
    ("jvp", f2, vin),
    ("hvp", s2, vin),
    ("vhp", s2, vin),
])
def test_products_with_create_graph_are_differentiable_like_torch(name, fn, v):
    def second(m, lib):
        x, y = t(m, A, requires_grad=True), t(m, B, requires_grad=True)
        out, prod = getattr(lib, name)(fn, (x, y), v(m), create_graph=True)
        total = sum((p * p).sum() for p in prod)
        return m.autograd.grad(total, (x, y))
    assert_same(second(gradient, GF), second(torch, TF))


def test_hessian_create_graph_gives_third_derivatives():
    def third(m, lib):
        x = t(m, A, requires_grad=True)
        h = lib.hessian(s1, x, create_graph=True)
        return m.autograd.grad(h.sum(), x)[0]
    np.testing.assert_allclose(third(gradient, GF).numpy(), third(torch, TF).numpy(), rtol=1e-10)


def test_create_graph_false_detaches_even_inputs_that_require_grad():
    x = t(gradient, A, requires_grad=True)
    out, g = GF.vjp(f1, x, t(gradient, V_IN[0]))
    assert not out.requires_grad and not g.requires_grad and x.grad is None


# ---------------------------------------------------------------------------- strict and zeros
def messages(call_ours, call_theirs, expected=RuntimeError):
    with pytest.raises(expected) as ours:
        call_ours()
    with pytest.raises(expected) as theirs:
        call_theirs()
    return str(ours.value), str(theirs.value)


@pytest.mark.parametrize("name, fn, v", [
    ("vjp", lambda x, y: x * 2, lambda m: t(m, np.ones(3))),
    ("jacobian", lambda x, y: x * 2, None),
    ("jvp", lambda x, y: x * 2, vin),
    ("vhp", lambda x, y: (x ** 3).sum(), vin),
    ("hvp", lambda x, y: (x ** 3).sum(), vin),
    ("hessian", lambda x, y: (x ** 3).sum(), None),
])
def test_unused_input_gives_zeros_without_strict_and_torchs_error_with_it(name, fn, v):
    args = (lambda m: (inputs(m, 2),) + (() if v is None else (v(m),)))
    ours = getattr(GF, name)(fn, *args(gradient))
    assert_same(ours, getattr(TF, name)(fn, *args(torch)))
    msg, torch_msg = messages(lambda: getattr(GF, name)(fn, *args(gradient), strict=True),
                              lambda: getattr(TF, name)(fn, *args(torch), strict=True))
    assert msg.startswith(torch_msg), (msg, torch_msg)


@pytest.mark.parametrize("name", ["vjp", "jvp", "jacobian"])
def test_strict_refuses_an_output_without_graph(name):
    fn = (lambda m: lambda x: m.zeros(2, dtype=m.float64))
    args = (lambda m: (t(m, A),) + ((t(m, np.ones(2)),) if name == "vjp" else (t(m, A),) if name == "jvp" else ()))
    msg, torch_msg = messages(lambda: getattr(GF, name)(fn(gradient), *args(gradient), strict=True),
                              lambda: getattr(TF, name)(fn(torch), *args(torch), strict=True))
    assert msg.startswith(torch_msg) and "does not require gradients" in msg
    # without strict: zeros, as torch
    assert_same(getattr(GF, name)(fn(gradient), *args(gradient)), getattr(TF, name)(fn(torch), *args(torch)))


def test_strict_hessian_of_a_linear_function_raises_as_torch():
    fn = lambda x: x.sum() * 3    # noqa: E731   (its gradient is constant)
    msg, torch_msg = messages(lambda: GF.hessian(fn, t(gradient, A), strict=True),
                              lambda: TF.hessian(fn, t(torch, A), strict=True))
    assert msg.startswith(torch_msg) and "While computing the hessian" in msg
    assert_same(GF.hessian(fn, t(gradient, A)), TF.hessian(fn, t(torch, A)))


def test_strict_with_create_graph_refuses_a_constant_jacobian():
    fn = lambda x: x * 2          # noqa: E731   (the vjp, v * 2, does not depend on x)
    msg, torch_msg = messages(
        lambda: GF.vjp(fn, t(gradient, A), t(gradient, V_IN[0]), create_graph=True, strict=True),
        lambda: TF.vjp(fn, t(torch, A), t(torch, V_IN[0]), create_graph=True, strict=True))
    assert msg.startswith(torch_msg) and "create_graph=True" in msg


def test_strict_errors_are_autograd_errors():
    with pytest.raises(AutogradError, match="independent of input 1"):
        GF.vjp(lambda x, y: x * 2, inputs(gradient, 2), t(gradient, np.ones(3)), strict=True)


def test_strict_and_vectorize_together_raise_as_torch():
    msg, torch_msg = messages(lambda: GF.jacobian(f1, t(gradient, A), strict=True, vectorize=True),
                              lambda: TF.jacobian(f1, t(torch, A), strict=True, vectorize=True))
    assert msg.startswith(torch_msg)


# ---------------------------------------------------------------------------- argument errors
def test_forward_mode_is_refused_with_a_clear_error():
    with pytest.raises(NotImplementedError, match="no forward-mode"):
        GF.jacobian(f1, t(gradient, A), strategy="forward-mode", vectorize=True)
    with pytest.raises(NotImplementedError, match="reverse-mode"):
        GF.hessian(s1, t(gradient, A), outer_jacobian_strategy="forward-mode", vectorize=True)
    with pytest.raises(ValueError, match="sideways"):
        GF.jacobian(f1, t(gradient, A), strategy="sideways")


def test_inputs_must_be_tensors_or_tuples_as_in_torch():
    msg, torch_msg = messages(lambda: GF.jacobian(f1, [t(gradient, A)]),
                              lambda: TF.jacobian(f1, [t(torch, A)]), expected=TypeError)
    assert msg.startswith(torch_msg), (msg, torch_msg)
    with pytest.raises(TypeError, match="outputs of the user-provided function"):
        GF.vjp(lambda x: [x], t(gradient, A), t(gradient, A))


@pytest.mark.parametrize("call, match", [
    (lambda: GF.vjp(f1, t(gradient, A)), "v can only be None"),
    (lambda: GF.jvp(f1, t(gradient, A)), "v can only be None"),
    (lambda: GF.vjp(f1, t(gradient, A), t(gradient, [1.0, 2.0])), r"v has invalid size: should be"),
    (lambda: GF.jvp(f2, inputs(gradient, 2), (t(gradient, A),)), "v is a tuple of invalid length: should be 2 but got 1"),
    (lambda: GF.jvp(f2, inputs(gradient, 2), (t(gradient, A), t(gradient, A))), r"Entry 1 in v has invalid size"),
    (lambda: GF.hvp(f1, t(gradient, A), t(gradient, A)), "should contain a single element"),
    (lambda: GF.vhp(f2, inputs(gradient, 2), vin(gradient)), "should return a single Tensor"),
    (lambda: GF.hessian(f1, t(gradient, A)), "should contain a single element"),
])
def test_bad_v_and_non_scalar_functions_are_refused(call, match):
    with pytest.raises(RuntimeError, match=match):
        call()


def test_empty_output_gives_an_empty_jacobian():
    jac = GF.jacobian(lambda x: x[:0] * 2, t(gradient, A))
    assert tuple(jac.shape) == (0, 3)
