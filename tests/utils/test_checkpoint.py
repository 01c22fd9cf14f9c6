"""gradient.utils.checkpoint: a checkpointed function gives the outputs and gradients of the
function run directly (dropout included, through the preserved random state), does not keep its
activations, and behaves as torch.utils.checkpoint where both have the same thing."""

import contextlib
import gc
import types
import warnings
import weakref

import numpy as np
import pytest
import torch
import torch.utils.checkpoint

import gradient
from gradient import nn
from gradient.errors import AutogradError
from gradient.utils.checkpoint import (CheckpointError, checkpoint, checkpoint_sequential,
                                       set_checkpoint_debug_enabled)

VARIANTS = pytest.mark.parametrize("reentrant", [False, True], ids=["non-reentrant", "reentrant"])


def mlp(p=0.5):
    gradient.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(p), nn.Linear(16, 3))


def run(fn, tensors, seed=1, loss=lambda y: (y ** 2).sum()):
    """Output and gradients of ``loss(fn())`` with respect to ``tensors``, from a fixed seed;
    the generator is moved on between forward and backward, as a training loop would."""
    for t in tensors:
        t.grad = None
    gradient.manual_seed(seed)
    y = fn()
    gradient.randn(7)
    loss(y).backward()
    outputs = [t.detach().numpy().copy() for t in gradient.utils.checkpoint._tensors_in(y)]
    return (outputs[0] if len(outputs) == 1 else outputs), \
        [None if t.grad is None else t.grad.numpy().copy() for t in tensors]


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if x is None or y is None:
            assert x is None and y is None
        else:
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------- gradients
@VARIANTS
def test_mlp_with_dropout_in_train_mode_gives_the_plain_gradients(reentrant):
    model = mlp().train()
    x = gradient.randn(6, 4, requires_grad=True)
    tensors = [x, *model.parameters()]
    y, plain = run(lambda: model(x), tensors)
    y_ckpt, ckpt = run(lambda: checkpoint(model, x, use_reentrant=reentrant), tensors)
    np.testing.assert_array_equal(y, y_ckpt)
    assert_same(plain, ckpt)
    y_other_mask, _ = run(lambda: model(x), tensors, seed=2)
    assert not np.allclose(y, y_other_mask)   # dropout is on: its mask matters


@VARIANTS
def test_several_inputs_some_without_grad_and_non_tensor_arguments(reentrant):
    gradient.manual_seed(0)
    w = gradient.randn(3, 3, requires_grad=True)                   # closed over
    a = gradient.randn(2, 3, requires_grad=True)
    b = gradient.randn(2, 3)                                       # needs no grad
    c = gradient.randn(3, requires_grad=True)

    def f(a, b, scale, c, mode):
        h = (a @ w).tanh() * b * scale
        return (h + c, h.sum(0)) if mode == "two" else h

    def loss(out):
        return (out[0] ** 2).sum() + out[1].sum()

    tensors = [a, b, c, w]
    _, plain = run(lambda: f(a, b, 2.5, c, "two"), tensors, loss=loss)
    _, ckpt = run(lambda: checkpoint(f, a, b, 2.5, c, "two", use_reentrant=reentrant), tensors,
                  loss=loss)
    assert_same(plain, ckpt)
    assert ckpt[1] is None


def test_keyword_arguments_and_nested_outputs_need_the_non_reentrant_variant():
    gradient.manual_seed(0)
    a, bias = gradient.randn(2, 3, requires_grad=True), gradient.randn(3, requires_grad=True)

    def f(a, *, bias, twice=False):
        h = a.sin() + bias
        return {"h": [h, h * 2 if twice else h]}

    def loss(out):
        return out["h"][0].sum() + (out["h"][1] ** 2).sum()

    _, plain = run(lambda: f(a, bias=bias, twice=True), [a, bias], loss=loss)
    _, ckpt = run(lambda: checkpoint(f, a, bias=bias, twice=True, use_reentrant=False),
                  [a, bias], loss=loss)
    assert_same(plain, ckpt)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: bias,twice"):
        checkpoint(f, a, bias=bias, twice=True, use_reentrant=True)
    # the reentrant variant tracks a Tensor or a tuple only (PyTorch's silently drops the rest)
    with pytest.raises(AutogradError, match="returned a dict"):
        checkpoint(lambda t: {"h": t * 2}, a, use_reentrant=True)


def test_parameters_get_gradients_when_no_input_requires_grad():
    model = mlp()
    x = gradient.randn(6, 4)
    tensors = list(model.parameters())
    _, plain = run(lambda: model(x), tensors)
    _, ckpt = run(lambda: checkpoint(model, x, use_reentrant=False), tensors)
    assert_same(plain, ckpt)


@VARIANTS
def test_checkpoint_sequential_gives_the_plain_gradients(reentrant):
    gradient.manual_seed(3)
    seq = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 8), nn.GELU(),
                        nn.Linear(8, 2))
    x = gradient.randn(5, 4, requires_grad=True)
    tensors = [x, *seq.parameters()]
    y, plain = run(lambda: seq(x), tensors)
    for segments in (1, 2, 3, 6):
        y_ckpt, ckpt = run(lambda: checkpoint_sequential(seq, segments, x,
                                                         use_reentrant=reentrant), tensors)
        np.testing.assert_array_equal(y, y_ckpt)
        assert_same(plain, ckpt)
    # a plain list of callables, and the errors
    y_list, _ = run(lambda: checkpoint_sequential(list(seq), 2, x, use_reentrant=reentrant),
                    tensors)
    np.testing.assert_array_equal(y, y_list)
    for bad in (0, 7):
        with pytest.raises(ValueError, match="segments must be an integer from 1"):
            checkpoint_sequential(seq, bad, x, use_reentrant=reentrant)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: foo"):
        checkpoint_sequential(seq, 2, x, use_reentrant=reentrant, foo=1)


def test_autograd_grad_and_double_backward_work_without_reentrance():
    gradient.manual_seed(0)
    x = gradient.randn(5, requires_grad=True)

    def f(t):
        return (t ** 3).sin()

    (g_plain,) = gradient.autograd.grad(f(x).sum(), x, create_graph=True)
    (gg_plain,) = gradient.autograd.grad(g_plain.sum(), x)
    (g,) = gradient.autograd.grad(checkpoint(f, x, use_reentrant=False).sum(), x,
                                  create_graph=True)
    (gg,) = gradient.autograd.grad(g.sum(), x)
    assert_same([g_plain.detach().numpy(), gg_plain.numpy()], [g.detach().numpy(), gg.numpy()])


def test_nested_checkpoints():
    gradient.manual_seed(0)
    x = gradient.randn(4, requires_grad=True)

    def inner(t):
        return (t * 2).exp()

    def outer(t):
        return checkpoint(inner, t.sin(), use_reentrant=False).cos()

    _, plain = run(lambda: inner(x.sin()).cos(), [x])
    _, ckpt = run(lambda: checkpoint(outer, x, use_reentrant=False), [x])
    assert_same(plain, ckpt)


def test_module_backward_hooks_inside_fire_once():
    for reentrant in (False, True):
        model = mlp(p=0.0)
        log = []
        model[0].register_full_backward_hook(lambda m, gi, go: log.append(tuple(gi[0].shape)))
        model[3].register_full_backward_pre_hook(lambda m, go: (go[0] * 2,))
        x = gradient.randn(6, 4, requires_grad=True)
        tensors = [x, *model.parameters()]
        _, plain = run(lambda: model(x), tensors)
        _, ckpt = run(lambda: checkpoint(model, x, use_reentrant=reentrant), tensors)
        assert_same(plain, ckpt)
        assert log == [(6, 4), (6, 4)]


def test_autocast_of_the_forward_is_used_again_in_backward():
    model = mlp(p=0.0)
    x = gradient.randn(6, 4, requires_grad=True)
    tensors = [x, *model.parameters()]

    def under_autocast(fn):
        def go():
            with gradient.amp.autocast("cpu"):
                return fn().float()
        return go

    _, plain = run(under_autocast(lambda: model(x)), tensors)
    for reentrant in (False, True):
        _, ckpt = run(under_autocast(lambda: checkpoint(model, x, use_reentrant=reentrant)),
                      tensors)
        assert_same(plain, ckpt)


# ---------------------------------------------------------------------- random state
@VARIANTS
def test_preserve_rng_state(reentrant):
    drop = nn.Dropout(0.5)
    x = gradient.ones(400, requires_grad=True)
    for preserve in (True, False):
        x.grad = None
        gradient.manual_seed(1)
        y = checkpoint(drop, x, use_reentrant=reentrant, preserve_rng_state=preserve)
        gradient.rand(3)                           # the generator moves on before backward
        state = gradient.get_rng_state()
        y.sum().backward()
        if preserve:   # backward leaves the generator as it was
            assert gradient.get_rng_state() == state
        kept = y.detach().numpy() != 0
        # the gradient is 2 where the forward kept an element exactly when the mask was redrawn
        # from the forward's state
        assert np.array_equal(x.grad.numpy() != 0, kept) == preserve


# ---------------------------------------------------------------------- memory
@VARIANTS
def test_activations_inside_are_not_kept(reentrant):
    model = mlp()
    refs = []
    # the dropout's output, which the last Linear keeps for its weight's gradient (the ReLU's
    # output is kept as an array by the ReLU's own backward, and the dropout's product keeps
    # nothing of its input: its mask needs no gradient)
    model[2].register_forward_hook(lambda m, args, out: refs.append(weakref.ref(out)))
    x = gradient.randn(6, 4, requires_grad=True)
    y = model(x)
    gc.collect()
    assert all(r() is not None for r in refs)   # without checkpointing the graph holds them
    del y
    refs.clear()
    y = checkpoint(model, x, use_reentrant=reentrant)
    gc.collect()
    assert len(refs) == 1 and all(r() is None for r in refs)
    y.sum().backward()                          # and the backward still works
    assert model[0].weight.grad is not None


def test_recomputed_activations_are_freed_as_backward_goes():
    model = mlp()
    refs = []
    model[1].register_forward_hook(lambda m, args, out: refs.append(weakref.ref(out)))
    x = gradient.randn(6, 4, requires_grad=True)
    alive = []

    def at_the_input(grad):   # runs after every node of the checkpointed region
        gc.collect()
        alive.append(refs[1]() is not None)

    x.register_hook(at_the_input)
    y = checkpoint(model, x, use_reentrant=False)
    loss = y.sum()
    loss.backward()
    # the recomputation's ReLU output is gone before backward ends, although the graph (loss)
    # is still alive
    assert len(refs) == 2 and alive == [False]


# ---------------------------------------------------------------------- errors and checks
def test_second_backward_needs_retain_graph():
    gradient.manual_seed(0)
    x = gradient.randn(3, requires_grad=True)
    loss = checkpoint(lambda t: (t.exp() * t).sum(), x, use_reentrant=False)
    loss.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-6)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_an_input_modified_in_place_before_backward_is_refused():
    x = gradient.randn(3, requires_grad=True)
    h = x * 1
    y = checkpoint(lambda t: t.sin(), h, use_reentrant=False)
    with gradient.no_grad():
        h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_a_function_that_changes_between_runs_gives_checkpoint_error():
    x = gradient.randn(4, requires_grad=True)
    calls = []

    def grows(t):
        calls.append(1)
        return t[:2] * 2 if len(calls) == 1 else t[:3] * 2

    with pytest.raises(CheckpointError, match=r"operation 0 was IndexBackward with outputs "
                                              r"\[\(\(2,\), 'float32'\)\]"):
        checkpoint(grows, x, use_reentrant=False).sum().backward()
    calls.clear()
    with set_checkpoint_debug_enabled(True):
        with pytest.raises(CheckpointError, match="Operations of the recomputation: IndexBackward"):
            checkpoint(grows, x, use_reentrant=False).sum().backward()
    calls.clear()

    def extra(t):
        calls.append(1)
        return t * 2 if len(calls) == 1 else (t * 2).exp()

    with pytest.raises(CheckpointError, match="forward recorded 1 operations, the recomputation "
                                              "in backward recorded 2"):
        checkpoint(extra, x, use_reentrant=False, determinism_check="none").sum().backward()


def test_argument_errors_match_torch():
    x = gradient.randn(2, requires_grad=True)
    tx = torch.randn(2, requires_grad=True)
    for lib_checkpoint, t in ((checkpoint, x), (torch.utils.checkpoint.checkpoint, tx)):
        with pytest.raises(ValueError, match="determinism_check should be one of"):
            lib_checkpoint(lambda v: v * 2, t, use_reentrant=False, determinism_check="shapes")
        with pytest.raises(ValueError, match="only supported when use_reentrant=False"):
            lib_checkpoint(lambda v: v * 2, t, use_reentrant=True, debug=True)


def test_context_fn_wraps_the_forward_and_the_recomputation():
    log = []

    @contextlib.contextmanager
    def note(name):
        log.append(name)
        yield

    x = gradient.randn(3, requires_grad=True)
    y = checkpoint(lambda t: t.sin(), x, use_reentrant=False,
                   context_fn=lambda: (note("forward"), note("recompute")))
    assert log == ["forward"]
    y.sum().backward()
    assert log == ["forward", "recompute"]


# ---------------------------------------------------------------------- against torch
def weights():
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(np.float32) for s in ((16, 4), (16,), (3, 16), (3,))]


def build(L):
    model = L.nn.Sequential(L.nn.Linear(4, 16), L.nn.Tanh(), L.nn.Linear(16, 3))
    with L.lib.no_grad():
        for p, w in zip(model.parameters(), weights()):
            p.copy_(L.lib.tensor(w))
    return model


G = types.SimpleNamespace(lib=gradient, nn=gradient.nn, checkpoint=checkpoint)
T = types.SimpleNamespace(lib=torch, nn=torch.nn, checkpoint=torch.utils.checkpoint.checkpoint)


@VARIANTS
def test_gradients_match_torch(reentrant):
    def grads(L):
        model = build(L)
        x = L.lib.tensor(np.linspace(-1, 1, 24, dtype=np.float32).reshape(6, 4), requires_grad=True)
        y = L.checkpoint(model, x, use_reentrant=reentrant)
        (y.tanh() ** 2).sum().backward()
        return [t.grad.detach().numpy() for t in (x, *model.parameters())]

    assert_same(grads(G), grads(T))


def test_omitting_use_reentrant_warns_and_uses_the_reentrant_variant_like_torch():
    for L in (G, T):
        model = build(L)
        x = L.lib.tensor(np.ones((2, 4), np.float32))     # no input requires grad
        with pytest.warns(UserWarning, match="use_reentrant parameter should be passed explicitly"):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "None of the inputs")
                y = L.checkpoint(model, x)
        # the reentrant variant's known limit, PyTorch's too: nothing to differentiate
        assert not y.requires_grad
        with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
            L.checkpoint(model, x, use_reentrant=True)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed explicitly"):
        checkpoint_sequential(build(G), 2, gradient.ones(2, 4, requires_grad=True))


def test_reentrant_refuses_autograd_grad_like_torch():
    for L in (G, T):
        model = build(L)
        x = L.lib.tensor(np.ones((2, 4), np.float32), requires_grad=True)
        y = L.checkpoint(model, x, use_reentrant=True)
        with pytest.raises(RuntimeError, match="use_reentrant=True.*incompatible with"):
            L.lib.autograd.grad(y.sum(), x)
