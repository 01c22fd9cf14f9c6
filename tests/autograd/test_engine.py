"""The autograd engine's contract, checked against PyTorch where it has an opinion."""

import numpy as np
import pytest
import torch

import gradient
from gradient.errors import AutogradError


def leaf(values, lib=gradient):
    return lib.tensor(values, dtype=lib.float64, requires_grad=True)


def test_leaves_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0])


def test_grad_is_a_copy_not_shared_between_leaves():
    a, b = leaf([1.0]), leaf([2.0])
    (a + b).sum().backward()
    a.grad.zero_()
    assert b.grad.item() == 1.0


def test_a_gradient_nothing_else_holds_becomes_grad_without_a_copy(monkeypatch):
    from gradient.backends import cpu_backend
    copies = []
    monkeypatch.setattr(cpu_backend, "copy", lambda a: copies.append(a.shape) or a.copy())
    x = gradient.randn(4, 3, dtype=gradient.float64)
    w, b = leaf(np.ones((3, 5))), leaf(np.zeros(5))
    ((x @ w) + b).sum().backward()            # a product and a column sum: fresh arrays
    assert copies == []
    np.testing.assert_allclose(w.grad.numpy(), np.repeat(x.numpy().sum(0)[:, None], 5, 1))
    np.testing.assert_allclose(b.grad.numpy(), np.full(5, 4.0))
    kept = []                                 # a gradient a hook keeps is copied
    c = leaf([1.0, 2.0])
    c.register_hook(lambda g: kept.append(g))
    (c * 3).sum().backward()
    assert c.grad is not kept[0] and copies == [(2,)]
    c.grad.zero_()
    np.testing.assert_allclose(kept[0].numpy(), [3.0, 3.0])
    v = leaf([1.0, 2.0, 3.0, 4.0])            # a view of another gradient is copied
    (v.view(2, 2) * 2).sum().backward()
    assert copies == [(2,), (4,)]


def test_non_leaf_keeps_grad_only_after_retain_grad():
    x = leaf([1.0, 2.0])
    y = x * 2
    z = x * 3
    z.retain_grad()
    (y * z).sum().backward()
    assert y.grad is None and not y.is_leaf
    np.testing.assert_allclose(z.grad.numpy(), (x * 2).detach().numpy())
    assert z.retains_grad and x.is_leaf


def test_second_backward_raises_unless_retain_graph():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(AutogradError, match="retain_graph=True"):
        y.backward()


def test_long_chain_has_no_recursion_limit():
    x = gradient.tensor(1.0, dtype=gradient.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 100_000, rel=1e-9)


def test_backward_of_non_scalar_needs_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(AutogradError, match="scalar outputs"):
        y.backward()
    y.backward(gradient.tensor([1.0, 10.0], dtype=gradient.float64))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(AutogradError, match="does not require grad"):
        gradient.tensor([1.0]).sum().backward()


def test_comparisons_and_integer_results_have_no_grad_fn():
    x = leaf([1.0, -2.0])
    m = x > 0
    assert m.grad_fn is None and not m.requires_grad and m.dtype is gradient.bool


def test_requires_grad_only_for_floating_dtypes():
    with pytest.raises(AutogradError, match="floating"):
        gradient.tensor([1, 2], requires_grad=True)


def test_hooks_on_leaf_and_non_leaf_can_replace_the_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    y = x * 3
    y.register_hook(lambda g: seen.append(g.numpy().copy()))
    handle = x.register_hook(lambda g: g * 10)
    y.sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])
    handle.remove()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_grad_modes_as_context_managers_and_decorators():
    x = leaf([1.0])
    with gradient.no_grad():
        assert not (x * 2).requires_grad
        with gradient.enable_grad():
            assert (x * 2).requires_grad
    with gradient.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert gradient.is_grad_enabled()
    with gradient.inference_mode():
        assert not (x * 2).requires_grad and gradient.is_inference_mode_enabled()

    @gradient.no_grad()
    def f(t):
        return t * 2

    @gradient.set_grad_enabled(False)
    def g(t):
        return t * 2

    assert gradient.is_grad_enabled()  # the decorator did not switch grad off for everyone
    assert not f(x).requires_grad and not g(x).requires_grad
    assert (x * 2).requires_grad


def test_autograd_grad_second_derivative_matches_torch():
    def f(lib, x, y):
        return ((x ** 3) * y.sin()).sum()

    results = []
    for lib in (gradient, torch):
        x, y = leaf([0.5, -1.5], lib), leaf([0.3, 2.0], lib)
        gx, gy = (gradient if lib is gradient else torch).autograd.grad(f(lib, x, y), (x, y),
                                                                        create_graph=True)
        (hxx,) = (gradient if lib is gradient else torch).autograd.grad(gx.sum(), x, retain_graph=True)
        results.append((gx.detach().numpy(), gy.detach().numpy(), hxx.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs)


def test_autograd_grad_does_not_touch_dot_grad_and_reports_unused_inputs():
    x, unused = leaf([1.0]), leaf([2.0])
    y = (x * 2).sum()
    (g,) = gradient.autograd.grad(y, x, retain_graph=True)
    assert x.grad is None and g.item() == 2.0
    with pytest.raises(AutogradError, match="allow_unused"):
        gradient.autograd.grad(y, [x, unused], retain_graph=True)
    gx, gu = gradient.autograd.grad(y, [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_autograd_grad_with_respect_to_a_non_leaf():
    x = leaf([1.0, 2.0])
    h = x * x
    y = (h * 3).sum()
    (gh,) = gradient.autograd.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), [3.0, 3.0])


def test_in_place_on_saved_tensor_raises_naming_the_op():
    x = leaf([1.0, 2.0])
    z = x * 2
    w = z * z
    z.add_(1)
    with pytest.raises(AutogradError, match=r"MulBackward.*add_"):
        w.sum().backward()


def test_in_place_bumps_the_version_counter_shared_with_views():
    x = gradient.zeros(4)
    v = x[1:3]
    before = x._version.value
    v.add_(1)
    x.mul_(2)
    assert x._version.value == before + 2
    np.testing.assert_allclose(x.numpy(), [0, 2, 2, 0])


def test_in_place_on_leaf_requiring_grad_raises_but_works_under_no_grad():
    x = leaf([1.0, 2.0])
    with pytest.raises(AutogradError, match="leaf"):
        x.add_(1)
    with gradient.no_grad():
        x.add_(1)
        x -= 0.5
    np.testing.assert_allclose(x.detach().numpy(), [1.5, 2.5])


@pytest.mark.parametrize("name", ["add_", "sub_", "mul_", "div_", "clamp_", "masked_fill_", "copy_",
                                  "fill_", "zero_", "setitem", "iadd"])
def test_in_place_ops_on_non_leaf_record_the_graph_like_torch(name):
    def run(lib):
        x = leaf([0.5, -1.0, 2.0], lib)
        w = leaf([1.5, 2.0, -0.5], lib)
        y = x * w
        if name in ("add_", "sub_", "mul_", "div_"):
            getattr(y, name)(w)
        elif name == "clamp_":
            y.clamp_(-0.6, 0.9)
        elif name == "masked_fill_":
            y.masked_fill_(lib.tensor([True, False, True]), 0.25)
        elif name == "copy_":
            y.copy_(w * 4)
        elif name == "fill_":
            y.fill_(3.0)
        elif name == "zero_":
            y.zero_()
        elif name == "setitem":
            y[1] = w[0] * 7
        else:
            y += w * w
        (y * lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)).sum().backward()
        return y.detach().numpy(), x.grad.numpy(), w.grad.numpy()

    for ours, theirs in zip(run(gradient), run(torch)):
        np.testing.assert_allclose(ours, theirs)


def test_detach_shares_storage_and_leaves_the_graph():
    x = leaf([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    d[0] = 5.0
    assert x.detach().numpy()[0] == 5.0


def test_graph_is_freed_after_backward():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    node = y.grad_fn
    y.backward()
    assert node.ctx._saved is None


def test_broadcast_gradients_are_summed_to_the_input_shape():
    a = leaf(np.ones((3, 1)))
    b = leaf(np.arange(4.0))
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_allclose(a.grad.numpy(), [[6.0]] * 3)
    np.testing.assert_allclose(b.grad.numpy(), [3.0] * 4)


def test_gradcheck_reports_analytic_and_numerical_values():
    class BadSquare(gradient.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * x  # wrong: should be 2 x

    x = leaf([1.0, 2.0])
    with pytest.raises(gradient.autograd.gradcheck.__globals__["GradcheckError"],
                       match="analytic"):
        gradient.autograd.gradcheck(BadSquare.apply, (x,))
    assert gradient.autograd.gradcheck(BadSquare.apply, (x,), raise_exception=False) is False


def test_gradcheck_needs_float64():
    x = gradient.tensor([1.0], requires_grad=True)
    with pytest.raises(AutogradError, match="float64"):
        gradient.autograd.gradcheck(lambda t: t * 2, (x,))


def test_leaf_reached_only_through_none_gradients_keeps_grad_none():
    class Blocker(gradient.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, grad):
            return None

    x = leaf([1.0, 2.0])
    Blocker.apply(x).sum().backward()
    assert x.grad is None


def test_graphs_are_freed_by_reference_counting_without_the_garbage_collector():
    import gc
    import weakref

    gc.disable()
    try:
        x = leaf([1.0, 2.0])
        y = (x.exp() * x).sum()
        node = weakref.ref(y.grad_fn)
        del y
        assert node() is None, "the graph of a dropped output must be freed at once"
    finally:
        gc.enable()


def test_grad_takes_pytorchs_arguments():
    outs = []
    for lib in (gradient, torch):
        x = leaf([1.0, 2.0], lib)
        unused = leaf([3.0], lib)
        gx, gu = lib.autograd.grad((x * x).sum(), (x, unused), None, None, False, True,
                                   materialize_grads=True)     # positional order as torch
        outs.append((gx.numpy(), gu.numpy()))
        with pytest.raises(RuntimeError):
            lib.autograd.grad((x * x).sum(), (x, unused))    # unused, not allowed
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    x = leaf([1.0])
    with pytest.raises(AutogradError, match="is_grads_batched"):
        gradient.autograd.grad((x * 2).sum(), x, is_grads_batched=True)


def test_gradcheck_accepts_pytorchs_options():
    x = leaf([0.5, -1.0])
    assert gradient.autograd.gradcheck(lambda t: t.sin(), (x,), fast_mode=True, nondet_tol=0.0,
                                       check_undefined_grad=True)
    assert gradient.autograd.gradgradcheck(lambda t: t.sin(), (x,), fast_mode=True)
    with pytest.raises(AutogradError, match="check_forward_ad=True is not supported"):
        gradient.autograd.gradcheck(lambda t: t.sin(), (x,), check_forward_ad=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'atoll'"):
        gradient.autograd.gradcheck(lambda t: t.sin(), (x,), atoll=1e-3)
