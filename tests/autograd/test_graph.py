"""autograd.graph: saved-tensor hooks (against torch's, with the same hooks) and the nodes'
next_functions / variable that graph drawers walk."""

import numpy as np
import pytest
import torch

import gradient
from gradient.autograd.graph import disable_saved_tensors_hooks, save_on_cpu, saved_tensors_hooks
from gradient.errors import AutogradError


def run(lib, hooks=None):
    """A small model under ``hooks`` (a function of lib giving a context manager): its gradient
    and the log of what the hooks saw."""
    x = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    w = lib.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=lib.float64, requires_grad=True)
    log = []
    if hooks is None:
        y = (w @ x).tanh().sum()
    else:
        with hooks(lib, log):
            y = (w @ x).tanh().sum()
    y.backward()
    return x.grad.numpy(), w.grad.numpy(), log


def doubling(lib, log):
    """Saves each tensor and gives it back doubled, logging the shapes packed."""
    def pack(t):
        log.append(("pack", tuple(t.shape)))
        return t.detach().clone()

    def unpack(t):
        log.append(("unpack", tuple(t.shape)))
        return t * 2
    mod = gradient.autograd.graph if lib is gradient else torch.autograd.graph
    return mod.saved_tensors_hooks(pack, unpack)


def test_hooks_see_what_torch_saves_and_change_the_gradient_as_torchs():
    ours, theirs = run(gradient, doubling), run(torch, doubling)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12)
    plain = run(gradient)
    assert not np.allclose(ours[0], plain[0])               # the unpacked values were used
    assert sorted(p for p in ours[2] if p[0] == "pack") == sorted(p for p in theirs[2] if p[0] == "pack")


def test_save_on_cpu_changes_nothing_on_the_cpu():
    ours = run(gradient, lambda lib, log: save_on_cpu())
    plain = run(gradient)
    np.testing.assert_array_equal(ours[0], plain[0])
    np.testing.assert_array_equal(ours[1], plain[1])


def test_innermost_hooks_apply_and_their_own_ops_are_not_hooked():
    seen = []

    def outer(t):
        seen.append("outer")
        return t

    def inner(t):
        seen.append("inner")
        return t * 1.0           # an op of the hook itself: not packed again

    x = gradient.ones(2, requires_grad=True)
    with saved_tensors_hooks(outer, lambda t: t):
        with saved_tensors_hooks(inner, lambda t: t):
            y = x.exp()
        z = x.sin()
    (y + z).sum().backward()
    assert seen == ["inner", "outer"]


def test_custom_functions_saved_tensors_go_through_the_hooks():
    class Square(gradient.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    x = gradient.tensor([3.0], requires_grad=True)
    with saved_tensors_hooks(lambda t: t, lambda t: t + 1):
        y = Square.apply(x)
    y.backward()
    assert x.grad.item() == 8.0          # 2 * (3 + 1)


def test_disabled_hooks_raise_the_given_message():
    with disable_saved_tensors_hooks("this block keeps its saved tensors"):
        with pytest.raises(AutogradError, match="keeps its saved tensors"):
            with saved_tensors_hooks(lambda t: t, lambda t: t):
                pass
    with saved_tensors_hooks(lambda t: t, lambda t: t):    # usable again after the block
        pass


def test_next_functions_lead_to_the_leaves():
    def leaves(lib):
        a = lib.ones(2, requires_grad=True)
        b = lib.ones(2, requires_grad=True)
        y = ((a * b).exp() + a).sum()
        found, stack = [], [y.grad_fn]
        while stack:
            node = stack.pop()
            if hasattr(node, "variable"):
                found.append(node.variable)
            stack.extend(n for n, _ in node.next_functions if n is not None)
        return [id(t) for t in found], {id(a), id(b)}
    for lib in (gradient, torch):
        found, expected = leaves(lib)
        assert set(found) == expected and len(found) == 3       # a is reached twice
