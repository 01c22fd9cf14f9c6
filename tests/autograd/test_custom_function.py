"""gradient.autograd.Function, the user's custom differentiable op: the same class body runs under
PyTorch's torch.autograd.Function and gives the same values and gradients."""

import numpy as np
import pytest
import torch

import gradient
from gradient.errors import AutogradError


def define(lib):
    """The custom Functions of these tests, written once against ``lib`` (gradient or torch)."""

    class Exp(lib.autograd.Function):           # saves an output
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    class ScaledTanh(lib.autograd.Function):     # saves an input, a keyword with a default
        @staticmethod
        def forward(ctx, x, scale=2.0):
            ctx.save_for_backward(x)
            ctx.scale = scale
            return lib.tanh(x) * scale

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * ctx.scale * (1 - lib.tanh(x) ** 2), None

    class MulAdd(lib.autograd.Function):         # two tensor inputs, two outputs and an int
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            ctx.flags = ctx.needs_input_grad
            return a * b, a + b, 7

        @staticmethod
        def backward(ctx, g_prod, g_sum, g_int):
            assert g_int is None
            a, b = ctx.saved_tensors
            return g_prod * b + g_sum, g_prod * a + g_sum

    class SortValues(lib.autograd.Function):     # an integer output marked non-differentiable
        @staticmethod
        def forward(ctx, x):
            values, order = lib.sort(x)
            ctx.mark_non_differentiable(order)
            ctx.save_for_backward(order)
            return values, order

        @staticmethod
        def backward(ctx, g_values, g_order):
            (order,) = ctx.saved_tensors
            return lib.zeros_like(g_values).scatter(-1, order, g_values)

    class Cube(lib.autograd.Function):           # PyTorch 2's split form
        @staticmethod
        def forward(x):
            return x ** 3

        @staticmethod
        def setup_context(ctx, inputs, output):
            (x,) = inputs
            ctx.save_for_backward(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x ** 2

    return {"Exp": Exp, "ScaledTanh": ScaledTanh, "MulAdd": MulAdd, "SortValues": SortValues,
            "Cube": Cube}


OURS, THEIRS = define(gradient), define(torch)
X = np.array([[0.3, -1.2, 0.7], [1.5, 0.1, -0.4]])
Y = np.array([[0.9, 0.2, -0.5], [-1.1, 0.6, 0.8]])


def both(fn, *arrays):
    """``fn(lib, functions, *leaves)`` in gradient and torch: (outputs, input grads) of each,
    after backward of the sum of every differentiable output times fixed weights."""
    results = []
    for lib, fns in ((gradient, OURS), (torch, THEIRS)):
        leaves = [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays]
        outs = fn(lib, fns, *leaves)
        outs = outs if isinstance(outs, tuple) else (outs,)
        total = sum((o * (i + 1.5)).sum() for i, o in enumerate(outs)
                    if isinstance(o, (gradient.Tensor, torch.Tensor)) and o.requires_grad)
        total.backward()
        results.append(([o.detach().numpy() if hasattr(o, "detach") else o for o in outs],
                        [t.grad.numpy() for t in leaves]))
    return results


@pytest.mark.parametrize("case", [
    lambda lib, f, x: f["Exp"].apply(x),
    lambda lib, f, x: f["ScaledTanh"].apply(x),
    lambda lib, f, x: f["ScaledTanh"].apply(x, scale=0.5),
    lambda lib, f, x: f["ScaledTanh"].apply(x, 3.0),
    lambda lib, f, x: f["SortValues"].apply(x)[0] * 2,
    lambda lib, f, x: f["Cube"].apply(x).sin(),
], ids=["saved output", "saved input", "keyword", "positional extra", "non-differentiable "
        "output", "setup_context"])
def test_values_and_gradients_match_pytorch(case):
    (ours, our_grads), (theirs, their_grads) = both(case, X)
    for a, b in zip(ours + our_grads, theirs + their_grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_several_outputs_and_a_non_tensor_one():
    (ours, our_grads), (theirs, their_grads) = both(
        lambda lib, f, a, b: f["MulAdd"].apply(a, b), X, Y)
    assert ours[2] == theirs[2] == 7
    for a, b in zip(ours[:2] + our_grads, theirs[:2] + their_grads):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_needs_input_grad_and_outputs_without_a_graph():
    a = gradient.tensor(X, requires_grad=True)
    b = gradient.tensor(Y)
    prod, _, _ = OURS["MulAdd"].apply(a, b)
    assert prod.requires_grad and prod.grad_fn.name() == "MulAddBackward"
    assert prod.grad_fn.ctx.flags == (True, False)
    with gradient.no_grad():
        plain = OURS["Exp"].apply(a)
    assert not plain.requires_grad and plain.grad_fn is None
    values, order = OURS["SortValues"].apply(a)
    assert values.requires_grad and not order.requires_grad


@pytest.mark.parametrize("name", ["Exp", "ScaledTanh", "Cube"])
def test_gradcheck_and_gradgradcheck(name):
    x = gradient.tensor(X, dtype=gradient.float64, requires_grad=True)
    assert gradient.autograd.gradcheck(OURS[name].apply, (x,))
    assert gradient.autograd.gradgradcheck(OURS[name].apply, (x,))


def test_second_derivative_matches_pytorch():
    grads = []
    for lib, fns in ((gradient, OURS), (torch, THEIRS)):
        x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        (g,) = lib.autograd.grad(fns["ScaledTanh"].apply(x).sum(), (x,), create_graph=True)
        (gg,) = lib.autograd.grad((g * g).sum(), (x,))
        grads.append(gg.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def test_a_saved_input_changed_in_place_is_caught():
    x = gradient.tensor(X, requires_grad=True)
    h = x * 1
    y = OURS["ScaledTanh"].apply(h)
    with gradient.no_grad():
        h.add_(1.0)
    with pytest.raises(AutogradError, match="modified by an in-place"):
        y.sum().backward()


def test_a_call_without_tensors_is_a_plain_call_as_torch():
    """No Tensor among the arguments: the forward's result as it returned it, nothing
    recorded (PyTorch's Function.apply allows this; numbers in, a number out)."""
    def scaled(lib):
        class Scaled(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a, b):
                ctx.flags = ctx.needs_input_grad
                return a * b

            @staticmethod
            def backward(ctx, grad):
                return grad, grad
        return Scaled
    for lib in (torch, gradient):
        assert scaled(lib).apply(2.0, 3.0) == 6.0
        assert scaled(lib).apply(b=4, a=2) == 8
    ours = scaled(gradient).apply(gradient.ones(2, requires_grad=True), 3.0)
    assert ours.requires_grad and ours.tolist() == [3.0, 3.0]


def test_mistakes_get_clear_errors():
    class TooFew(gradient.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, grad):
            return grad

    class NotATensor(gradient.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad.numpy() * 2

    class SavesANumber(gradient.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 3.0)
            return x * 2

    class NoBackward(gradient.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    x = gradient.tensor(X, requires_grad=True)
    with pytest.raises(AutogradError, match="returned 1 gradient.*took 2 argument"):
        TooFew.apply(x, x).sum().backward()
    with pytest.raises(AutogradError, match="returned a ndarray as gradient 0"):
        NotATensor.apply(x).sum().backward()
    with pytest.raises(AutogradError, match="take Tensors .or None., got a float"):
        SavesANumber.apply(x)
    with pytest.raises(NotImplementedError, match="must define backward"):
        NoBackward.apply(x).sum().backward()


def test_array_functions_still_run_on_arrays():
    """gradient's own ops keep their forward on raw arrays (gradient.autograd.ArrayFunction)."""
    class Twice(gradient.autograd.ArrayFunction):
        @staticmethod
        def forward(ctx, x):
            assert isinstance(x, np.ndarray)
            return ctx.backend.binary("mul", x, x.dtype.type(2))

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    x = gradient.tensor(X, requires_grad=True)
    Twice.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(X.shape, 2.0))


def test_every_output_marked_non_differentiable_records_nothing():
    # as torch: allowed; the outputs carry no grad_fn and do not require grad
    class Indices(gradient.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            out = x.argmax(-1).to(gradient.float32)
            ctx.mark_non_differentiable(out)
            return out

        @staticmethod
        def backward(ctx, grad):
            return None

    x = gradient.randn(3, 4, requires_grad=True)
    out = Indices.apply(x)
    assert not out.requires_grad and out.grad_fn is None


@pytest.mark.parametrize("materialize", [True, False])
def test_set_materialize_grads_decides_between_zeros_and_none(materialize):
    # an output that got no gradient reaches backward as zeros (the default) or as None after
    # ctx.set_materialize_grads(False), as in torch
    def run(lib):
        seen = []

        class Two(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.set_materialize_grads(materialize)
                return x * 2, x * 3

            @staticmethod
            def backward(ctx, ga, gb):
                seen.append(None if gb is None else gb.tolist())
                return ga * 2 if gb is None else ga * 2 + gb * 3

        x = lib.tensor([1.0, 2.0], requires_grad=True)
        Two.apply(x)[0].sum().backward()
        return seen, x.grad.tolist()

    ours, theirs = run(gradient), run(torch)
    assert ours == theirs
    assert ours[0] == ([[0.0, 0.0]] if materialize else [None])


def test_hooks_and_retain_grad_of_an_output_without_gradient():
    # torch calls the tensor's hook with None and leaves its retained .grad None
    def run(lib):
        x = lib.ones(3, requires_grad=True)
        a, b = (x * 2).split(2)
        calls = []
        b.register_hook(lambda g: calls.append(g))
        b.retain_grad()
        a.sum().backward()
        return calls, b.grad, x.grad.tolist()

    assert run(gradient) == run(torch) == ([None], None, [2.0, 2.0, 0.0])


def _square_once(lib):
    from importlib import import_module
    once = import_module(f"{lib.__name__}.autograd.function").once_differentiable

    class Square(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @once
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            assert not lib.is_grad_enabled()       # (torch's too) nothing recorded here
            return 2 * x * grad
    return Square


def test_once_differentiable_runs_backward_unrecorded_as_torch():
    import torch
    got = {}
    for lib in (gradient, torch):
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        (gx,) = lib.autograd.grad(_square_once(lib).apply(x).sum(), x, create_graph=True)
        got[lib.__name__] = (gx.tolist(), gx.requires_grad)
    assert got["gradient"] == got["torch"] == ([2.0, -4.0, 6.0], False)


def test_once_differentiable_refuses_a_second_derivative_as_torch():
    import torch
    for lib, error in ((gradient, gradient.errors.AutogradError), (torch, RuntimeError)):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = _square_once(lib).apply(x * 3)
        (gy,) = lib.autograd.grad(y.sum(), y, create_graph=True)          # ones, recorded
        (gx,) = lib.autograd.grad(y, x, grad_outputs=gy * y, create_graph=True)
        assert gx.requires_grad
        with pytest.raises(error, match="differentiate twice"):
            gx.sum().backward()
