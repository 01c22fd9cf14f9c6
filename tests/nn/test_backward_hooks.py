"""Module backward hooks against torch.nn.Module's: each scenario is written once against a library
namespace, run with gradient and with torch, and what the hooks saw (grad_input, grad_output as
tuples with their None entries), the order they ran in, the gradients that came out and the
errors and warnings are compared."""

import types
import warnings

import numpy as np
import pytest
import torch

import gradient
from gradient.nn import module as gmodule

G = types.SimpleNamespace(lib=gradient, nn=gradient.nn, module=gmodule, name="gradient")
T = types.SimpleNamespace(lib=torch, nn=torch.nn, module=torch.nn.modules.module, name="torch")
LIBS = pytest.mark.parametrize("L", [G, T], ids=["gradient", "torch"])


def arr(t):
    """A hook argument as something comparable: None, or the tensor's values."""
    return None if t is None else np.asarray(t.detach().tolist(), dtype=np.float64)


def grads(seq):
    return [arr(g) for g in seq]


def same(a, b):
    """Two nested results (lists/tuples of arrays, None, strings, numbers) are equal."""
    if isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), (a, b)
        for x, y in zip(a, b):
            same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    else:
        assert a == b, (a, b)


def both(scenario):
    """Run ``scenario(L)`` with gradient and torch and check they give the same record."""
    got, want = scenario(G), scenario(T)
    same(got, want)
    return got


def linear(L, i=3, o=2):
    lin = L.nn.Linear(i, o)
    with L.lib.no_grad():
        lin.weight.copy_(L.lib.tensor(np.arange(o * i, dtype=np.float32).reshape(o, i) / 10 - 0.2))
        lin.bias.copy_(L.lib.tensor(np.linspace(-1, 1, o, dtype=np.float32)))
    return lin


def data(L, *shape, requires_grad=True, start=0.0):
    n = int(np.prod(shape))
    values = (np.arange(n, dtype=np.float32).reshape(shape) + start) / (n + 1) - 0.3
    return L.lib.tensor(values, requires_grad=requires_grad)


# ---------------------------------------------------------------------- what the hooks see
def test_linear_hooks_see_torchs_grad_input_and_grad_output():
    def scenario(L):
        lin, seen = linear(L), []
        lin.register_full_backward_pre_hook(lambda m, go: seen.append(("pre", grads(go))))
        lin.register_full_backward_hook(
            lambda m, gi, go: seen.append(("full", grads(gi), grads(go))))
        x = data(L, 4, 3)
        (lin(x) ** 2).sum().backward()
        return seen, arr(x.grad), arr(lin.weight.grad)

    seen, x_grad, _ = both(scenario)
    assert [s[0] for s in seen] == ["pre", "full"]
    same(seen[1][1], [x_grad])          # grad_input is d(loss)/d(input)


def test_two_inputs_one_without_grad_and_a_non_tensor_argument():
    # PyTorch's grad_input: the gradient for a tensor that requires grad, zeros for a tensor
    # that does not (while another one does), None for a non-tensor argument
    def scenario(L):
        class Mul(L.nn.Module):
            def forward(self, a, b, k):
                return a * b * k

        m, seen = Mul(), []
        m.register_full_backward_hook(lambda mod, gi, go: seen.append((grads(gi), grads(go))))
        a, b = data(L, 2, 3), data(L, 2, 3, requires_grad=False, start=2)
        m(a, b, 3.0).sum().backward()
        return seen, arr(a.grad)

    (gi, go), = both(scenario)[0]
    assert gi[1] is not None and not gi[1].any() and gi[2] is None


def test_a_detached_alias_and_an_integer_index_among_the_inputs():
    def scenario(L):
        class Pick(L.nn.Module):
            def forward(self, a, a_detached, idx):
                return a[idx] * 2 + a_detached[idx]

        m, seen = Pick(), []
        m.register_full_backward_hook(lambda mod, gi, go: seen.append(grads(gi)))
        a = data(L, 4)
        m(a, a.detach(), L.lib.tensor([0, 2, 2])).sum().backward()
        return seen, arr(a.grad)

    (gi,), a_grad = both(scenario)
    assert not gi[1].any() and not gi[2].any()


def test_two_outputs_and_outputs_without_gradient():
    def scenario(L):
        class Split(L.nn.Module):
            def forward(self, a):
                return a * 2, a.sin(), a.detach() * 3, 7   # the last two carry no gradient

        m, seen = Split(), []
        m.register_full_backward_pre_hook(lambda mod, go: seen.append(grads(go)))
        m.register_full_backward_hook(lambda mod, gi, go: seen.append((grads(gi), grads(go))))
        a = data(L, 5)
        p, q, r, k = m(a)
        (p * q).sum().backward()
        return seen, arr(a.grad), r.requires_grad, k

    seen, _, r_requires_grad, k = both(scenario)
    assert seen[0][2:] == [None, None] and not r_requires_grad and k == 7


def test_an_unused_output_gets_none_as_in_torch():
    # grad_output holds None for an output that requires grad but was not used (the hooks'
    # Function turns materialize_grads off); grad_input and the gradients are torch's
    def scenario(L):
        class Two(L.nn.Module):
            def forward(self, a):
                return a * 2, a * 3

        m, seen = Two(), []
        m.register_full_backward_hook(lambda mod, gi, go: seen.append((grads(gi), grads(go))))
        a = data(L, 3)
        m(a)[0].sum().backward()
        return seen[0]

    (gi, go), (tgi, tgo) = scenario(G), scenario(T)
    same(gi, tgi)
    assert tgo[1] is None and go[1] is None
    same(go[0], tgo[0])


def test_grad_input_when_a_module_uses_one_input_twice():
    def scenario(L):
        class Mul(L.nn.Module):
            def forward(self, a, b):
                return a * b

        m, seen = Mul(), []
        m.register_full_backward_hook(lambda mod, gi, go: seen.append(grads(gi)))
        a = data(L, 4)
        m(a, a).sum().backward()
        return seen, arr(a.grad)

    both(scenario)


# ---------------------------------------------------------------------- hooks that change gradients
def test_hooks_replace_gradients():
    def scenario(L):
        lin = linear(L)
        lin.register_full_backward_pre_hook(lambda m, go: (go[0] * 3,))       # into the module
        lin.register_full_backward_hook(lambda m, gi, go: [gi[0] * -1])       # a list works too
        x = data(L, 2, 3)
        (lin(x) ** 2).sum().backward()
        return arr(x.grad), arr(lin.weight.grad), arr(lin.bias.grad)

    both(scenario)


def test_a_none_entry_stops_that_inputs_gradient():
    def scenario(L):
        class Mul(L.nn.Module):
            def forward(self, a, b):
                return a * b

        m = Mul()
        m.register_full_backward_hook(lambda mod, gi, go: (None, gi[1] * 0 + 7))
        a, b = data(L, 3), data(L, 3, start=1)
        m(a, b).sum().backward()
        return arr(a.grad), arr(b.grad)

    a_grad, b_grad = both(scenario)
    assert a_grad is None and (b_grad == 7).all()


@LIBS
def test_hooks_returning_the_wrong_number_of_gradients_raise(L):
    lin = linear(L)
    lin.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="Backward hook returned an invalid number of "
                                           "grad_input, got 2, but expected 1"):
        lin(data(L, 2, 3)).sum().backward()
    lin = linear(L)
    lin.register_full_backward_pre_hook(lambda m, go: (go[0], go[0]))
    with pytest.raises(RuntimeError, match="Backward pre hook returned an invalid number of "
                                           "grad_output, got 2, but expected 1"):
        lin(data(L, 2, 3)).sum().backward()


@LIBS
def test_hooks_changing_shape_or_dtype_raise(L):
    for hook in (lambda m, gi, go: (L.lib.ones(5),), lambda m, gi, go: (gi[0].double(),)):
        lin = linear(L)
        lin.register_full_backward_hook(hook)
        with pytest.raises(RuntimeError, match="has changed the (size|type) of value"):
            lin(data(L, 2, 3)).sum().backward()
    lin = linear(L)
    lin.register_full_backward_pre_hook(lambda m, go: (L.lib.ones(7),))
    with pytest.raises(RuntimeError, match="has changed the size of value"):
        lin(data(L, 2, 3)).sum().backward()


def test_a_hook_returning_a_bare_tensor_gets_a_clear_error():
    lin = linear(G)
    lin.register_full_backward_hook(lambda m, gi, go: gi[0])
    with pytest.raises(RuntimeError, match="returned a Tensor; return None or a tuple of 1 "):
        lin(data(G, 2, 3)).sum().backward()


# ---------------------------------------------------------------------- registration and firing
def test_order_prepend_nesting_and_global_hooks():
    def scenario(L):
        log = []
        seq = L.nn.Sequential(linear(L), L.nn.Tanh())
        for name, mod in (("seq", seq), ("lin", seq[0]), ("tanh", seq[1])):
            mod.register_full_backward_pre_hook(lambda m, go, n=name: log.append("pre " + n))
            mod.register_full_backward_hook(lambda m, gi, go, n=name: log.append("full " + n))
        seq[0].register_full_backward_hook(lambda m, gi, go: log.append("full lin first"),
                                           prepend=True)
        seq[0].register_full_backward_pre_hook(lambda m, go: log.append("pre lin first"),
                                               prepend=True)
        handles = [
            L.module.register_module_full_backward_pre_hook(
                lambda m, go: log.append("global pre " + type(m).__name__)),
            L.module.register_module_full_backward_hook(
                lambda m, gi, go: log.append("global full " + type(m).__name__))]
        try:
            seq(data(L, 2, 3)).sum().backward()
        finally:
            for h in handles:
                h.remove()
        seq(data(L, 2, 3)).sum().backward()      # the global hooks are gone
        return log

    log = both(scenario)
    assert log[:4] == ["global pre Sequential", "pre seq", "global pre Tanh", "pre tanh"]
    assert log.index("full lin first") < log.index("full lin")


def test_removal_and_the_with_form():
    def scenario(L):
        lin, log = linear(L), []
        h1 = lin.register_full_backward_hook(lambda m, gi, go: log.append(1))
        h2 = lin.register_full_backward_pre_hook(lambda m, go: log.append(2))
        x = data(L, 1, 3)
        lin(x).sum().backward()
        h1.remove()
        h1.remove()                                  # twice is harmless
        lin(x).sum().backward()
        h2.remove()
        lin(x).sum().backward()
        with lin.register_full_backward_hook(lambda m, gi, go: log.append(3)):
            lin(x).sum().backward()
        lin(x).sum().backward()
        return log

    assert both(scenario) == [2, 1, 2, 3]


def test_hooks_are_those_registered_when_forward_ran():
    def scenario(L):
        lin, log = linear(L), []
        h = lin.register_full_backward_hook(lambda m, gi, go: log.append("old"))
        y = lin(data(L, 1, 3))
        h.remove()                                   # still runs for y
        lin.register_full_backward_hook(lambda m, gi, go: log.append("new"))   # not for y
        y.sum().backward()
        return log

    assert both(scenario) == ["old"]


def test_hooks_run_at_every_backward_and_not_without_a_graph():
    def scenario(L):
        lin, log = linear(L), []
        lin.register_full_backward_hook(lambda m, gi, go: log.append(grads(gi)))
        x = data(L, 2, 3)
        loss = lin(x).sum()
        loss.backward(retain_graph=True)
        loss.backward()
        with L.lib.no_grad():
            lin(x)
        (g,) = L.lib.autograd.grad(lin(x).sum(), x)  # autograd.grad runs them too
        return log, arr(g)

    log, _ = both(scenario)
    assert len(log) == 3


def test_no_input_requires_grad_fires_at_the_outputs_with_a_warning():
    def scenario(L):
        lin, seen = linear(L), []
        lin.register_full_backward_hook(lambda m, gi, go: seen.append((grads(gi), grads(go))))
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            lin(data(L, 2, 3, requires_grad=False)).sum().backward()
        assert any("no inputs require gradients" in str(x.message) for x in w)
        bad = linear(L)
        bad.register_full_backward_hook(lambda m, gi, go: (L.lib.ones(2, 3),))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(RuntimeError, match="where no input requires gradient should always "
                                                   "return None or None for all gradients"):
                bad(data(L, 2, 3, requires_grad=False)).sum().backward()
        return seen, arr(lin.weight.grad)

    seen, _ = both(scenario)
    assert seen[0][0] == [None]


@LIBS
def test_outputs_without_gradient_fire_nothing_and_non_tuple_outputs_warn(L):
    class Detached(L.nn.Module):
        def forward(self, a):
            return a.detach() * 2

    class AsDict(L.nn.Module):
        def forward(self, a):
            return {"y": a * 2}

    log = []
    d, dd = Detached(), AsDict()
    for m in (d, dd):
        m.register_full_backward_hook(lambda mod, gi, go: log.append(1))
    a = data(L, 3)
    assert not d(a).requires_grad
    with pytest.warns(UserWarning, match="module output should be a Tensor or a tuple of Tensors "
                                         "but received <class 'dict'>"):
        out = dd(a)
    out["y"].sum().backward()
    assert log == [] and a.grad is not None


@LIBS
def test_in_place_writes_into_hooked_inputs_and_outputs_raise(L):
    relu = L.nn.ReLU(inplace=True)
    relu.register_full_backward_hook(lambda m, gi, go: None)
    x = data(L, 4)
    with pytest.raises(RuntimeError, match="modif"):
        relu(x * 1)
    lin = linear(L)
    lin.register_full_backward_hook(lambda m, gi, go: None)
    with pytest.raises(RuntimeError, match="modif"):
        lin(data(L, 2, 3)).add_(1)
    with L.lib.no_grad():                            # allowed without a graph
        lin(data(L, 2, 3)).add_(1)


def test_a_hooked_input_shares_the_version_of_the_callers_tensor():
    # forward gets a view of its input: a write through it (without a graph) is seen by the
    # in-place checks of whatever saved the caller's tensor
    class Scale(gradient.nn.Module):
        def forward(self, a):
            with gradient.no_grad():
                a.mul_(2)
            return a * 1

    m = Scale()
    m.register_full_backward_hook(lambda mod, gi, go: None)
    x = data(G, 3)
    y = x * 1
    saved = y.sin()              # saves y
    m(y)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        saved.sum().backward()


# ---------------------------------------------------------------------- the deprecated hook
def test_register_backward_hook_warns_and_runs_as_a_full_hook():
    lin, seen = linear(G), []
    lin.register_backward_hook(lambda m, gi, go: seen.append(grads(gi)))
    x = data(G, 2, 3)
    with pytest.warns(FutureWarning, match="non-full backward hook"):
        y = lin(x)
    y.sum().backward()
    same(seen, [[arr(x.grad)]])
    # PyTorch warns too, at the same place (its hook sees the last node's gradients instead)
    tlin = linear(T)
    tlin.register_backward_hook(lambda m, gi, go: None)
    with pytest.warns(FutureWarning, match="non-full backward hook"):
        tlin(data(T, 2, 3))


@LIBS
def test_full_and_deprecated_hooks_do_not_mix(L):
    msg = "Cannot use both regular backward hooks and full backward hooks on a single Module"
    a, b = linear(L), linear(L)
    a.register_full_backward_hook(lambda *args: None)
    with pytest.raises(RuntimeError, match=msg):
        a.register_backward_hook(lambda *args: None)
    b.register_backward_hook(lambda *args: None)
    with pytest.raises(RuntimeError, match=msg):
        b.register_full_backward_hook(lambda *args: None)


@LIBS
def test_global_full_and_deprecated_hooks_do_not_mix(L):
    h = L.module.register_module_full_backward_hook(lambda *args: None)
    try:
        with pytest.raises(RuntimeError, match="as a global Module hook"):
            L.module.register_module_backward_hook(lambda *args: None)
    finally:
        h.remove()


# ---------------------------------------------------------------------- the cost when unused
def test_hook_less_calls_take_the_plain_path(monkeypatch):
    lin = linear(G)

    def refuse(*args):
        raise AssertionError("a module without hooks went through _call_with_hooks")

    monkeypatch.setattr(gradient.nn.Module, "_call_with_hooks", refuse)
    lin(data(G, 1, 3))
    h = lin.register_full_backward_hook(lambda *args: None)
    with pytest.raises(AssertionError):
        lin(data(G, 1, 3))
    h.remove()
    lin(data(G, 1, 3))                    # removing the last hook restores the plain path
    for register in (lin.register_forward_hook, lin.register_forward_pre_hook):
        with register(lambda *args: None):
            with pytest.raises(AssertionError):
                lin(data(G, 1, 3))
        lin(data(G, 1, 3))


def test_backward_hooks_are_changes_of_their_module():
    from gradient.nn.module import ModuleWatch
    lin = linear(G)
    for register in (lambda: lin.register_full_backward_hook(lambda *a: None),
                     lambda: lin.register_full_backward_pre_hook(lambda *a: None)):
        watch = ModuleWatch([lin])
        handle = register()
        assert watch.changed
        watch = ModuleWatch([lin])
        handle.remove()
        assert watch.changed


def test_torch_import_path_of_the_global_hooks_works():
    # ported code imports these from torch.nn.modules.module
    from gradient.nn.modules.module import Module, register_module_full_backward_hook
    assert Module is gradient.nn.Module
    assert register_module_full_backward_hook is gmodule.register_module_full_backward_hook
