"""Module against torch.nn.Module: the same module tree is built in both libraries from one piece
of code (gradient's API mirrors torch's), and names, orders, errors, hooks and reprs are compared."""

import copy
from collections import OrderedDict
import math
import types

import numpy as np
import pytest
import torch

import gradient
from gradient.nn import Buffer, Module, Parameter
from gradient.nn.module import StateDictError

G = types.SimpleNamespace(lib=gradient, nn=gradient.nn)
T = types.SimpleNamespace(lib=torch, nn=torch.nn)
LIBS = pytest.mark.parametrize("L", [G, T], ids=["gradient", "torch"])


def classes(L):
    """A tiny Linear, a block with buffers and an optional child, and a model that shares a
    submodule and a parameter: the registration cases that matter, written once for both libs."""

    class Lin(L.nn.Module):
        def __init__(self, i, o, bias=True):
            super().__init__()
            self.weight = L.nn.Parameter(L.lib.arange(o * i, dtype=L.lib.float32).reshape(o, i) / 10)
            if bias:
                self.bias = L.nn.Parameter(L.lib.zeros(o))
            else:
                self.register_parameter("bias", None)

        def forward(self, x):
            y = x @ self.weight.T
            return y if self.bias is None else y + self.bias

        def extra_repr(self):
            return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}, " \
                   f"bias={self.bias is not None}"

    class Block(L.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.scale = L.nn.Parameter(L.lib.ones(n))
            self.register_buffer("running", L.lib.zeros(n))
            self.register_buffer("steps", L.lib.tensor(0))
            self.register_buffer("mask", L.lib.ones(n), persistent=False)
            self.register_buffer("absent", None)
            self.proj = Lin(n, n)
            self.skip = None

        def forward(self, x):
            return self.proj(x) * self.scale + self.running

    class Model(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = Lin(3, 4, bias=False)
            self.b0 = Block(4)
            self.b1 = Block(4)
            self.again = self.b0          # the same submodule under two names
            self.head = Lin(4, 2)
            self.tied = self.b1.scale     # a parameter registered twice

        def forward(self, x):
            return self.head(self.b1(self.b0(self.embed(x))))

    return Lin, Block, Model


def build(L):
    return classes(L)[2]()


# ---------------------------------------------------------------------- names and orders vs torch
def names(pairs):
    return [name for name, _ in pairs]


def test_named_members_match_torch():
    g, t = build(G), build(T)
    for fn in (lambda m: m.named_parameters(), lambda m: m.named_parameters(remove_duplicate=False),
               lambda m: m.named_parameters(prefix="model"), lambda m: m.named_parameters(recurse=False),
               lambda m: m.named_buffers(), lambda m: m.named_buffers(remove_duplicate=False),
               lambda m: m.b0.named_buffers(recurse=False),
               lambda m: m.named_modules(), lambda m: m.named_modules(remove_duplicate=False),
               lambda m: m.named_modules(prefix="root"), lambda m: m.named_children(),
               lambda m: m.state_dict().items(), lambda m: m.state_dict(prefix="x.").items()):
        assert names(fn(g)) == names(fn(t))
    assert len(list(g.parameters())) == len(list(t.parameters())) == 9
    assert len(list(g.modules())) == len(list(t.modules()))
    assert len(list(g.children())) == len(list(t.children()))
    assert len(list(g.buffers())) == len(list(t.buffers()))


def test_state_dict_values_are_detached_and_share_storage():
    m = build(G)
    sd = m.state_dict()
    assert "b0.mask" not in sd  # non-persistent
    w = sd["head.weight"]
    assert type(w) is gradient.Tensor and not w.requires_grad
    w.fill_(7.0)
    assert m.head.weight.detach().numpy().max() == 7.0  # same storage, as in PyTorch
    kept = m.state_dict(keep_vars=True)
    assert kept["head.weight"] is m.head.weight
    assert list(kept) == list(sd)


# ---------------------------------------------------------------------- registration semantics
@LIBS
def test_assignment_registers_parameters_modules_and_buffers(L):
    Lin, Block, _ = classes(L)
    m = L.nn.Module()
    m.w = L.nn.Parameter(L.lib.zeros(2))
    m.child = Lin(2, 2)
    m.plain = L.lib.zeros(2)                 # a plain tensor is just an attribute
    m.buf = L.nn.Buffer(L.lib.zeros(2), persistent=False)
    assert list(m._parameters) == ["w"] and list(m._modules) == ["child"]
    assert list(m._buffers) == ["buf"] and "plain" in m.__dict__
    assert list(m.state_dict()) == ["w", "child.weight", "child.bias"]
    m.buf = L.lib.ones(2)                     # reassigning a buffer keeps it a (non-persistent) buffer
    assert "buf" in m._buffers and "buf" in m._non_persistent_buffers_set
    m.w = None                                # None keeps the slot
    assert "w" in m._parameters and m.w is None and list(m.parameters()) != []
    m.w = L.nn.Parameter(L.lib.zeros(2))
    m.child = None
    assert m.child is None and list(m.state_dict()) == ["w"]
    m.child = Lin(2, 1)
    with pytest.raises(TypeError):            # a parameter's slot takes Parameters or None only
        m.w = Lin(1, 1)
    del m.w
    m.w = Lin(1, 1)
    assert "w" not in m._parameters and "w" in m._modules
    m.plain2 = 3
    m.plain2 = L.nn.Parameter(L.lib.zeros(1))  # a Parameter over a plain attribute replaces it
    assert "plain2" in m._parameters and "plain2" not in m.__dict__
    del m.child, m.buf, m.plain
    assert not hasattr(m, "child") and not hasattr(m, "buf") and not hasattr(m, "plain")


def raises_same(fn):
    """``fn(L)`` raises the same exception type in gradient and torch (returns the two errors)."""
    errors = []
    for L in (G, T):
        with pytest.raises(Exception) as info:
            fn(L)
        errors.append(info.value)
    assert isinstance(errors[0], type(errors[1])), (errors[0], errors[1])
    return errors


def test_registration_errors_match_torch():
    def plain_tensor_over_param(L):
        m = classes(L)[0](2, 2)
        m.weight = L.lib.zeros(2, 2)

    def not_a_module_over_child(L):
        m = L.nn.Module()
        m.c = classes(L)[0](1, 1)
        m.c = 3

    def not_a_tensor_over_buffer(L):
        m = L.nn.Module()
        m.register_buffer("b", L.lib.zeros(1))
        m.b = [1.0]

    def dotted_param(L):
        L.nn.Module().register_parameter("a.b", L.nn.Parameter(L.lib.zeros(1)))

    def empty_buffer_name(L):
        L.nn.Module().register_buffer("", L.lib.zeros(1))

    def existing_attribute(L):
        m = L.nn.Module()
        m.x = 1
        m.register_buffer("x", L.lib.zeros(1))

    def tensor_as_parameter(L):
        L.nn.Module().register_parameter("p", L.lib.zeros(1))

    def computed_parameter(L):
        p = L.nn.Parameter(L.lib.zeros(1))
        L.nn.Module().register_parameter("p", p * 2)   # a plain tensor (not a Parameter): TypeError

    def not_a_module(L):
        L.nn.Module().add_module("m", 3)

    def before_init(L):
        class Bad(L.nn.Module):
            def __init__(self):
                self.w = L.nn.Parameter(L.lib.zeros(1))
        Bad()

    def missing_attribute(L):
        L.nn.Module().nope  # noqa: B018

    def missing_forward(L):
        L.nn.Module()(1)

    for fn in (plain_tensor_over_param, not_a_module_over_child, not_a_tensor_over_buffer,
               dotted_param, empty_buffer_name, existing_attribute, tensor_as_parameter,
               computed_parameter, not_a_module, before_init, missing_attribute, missing_forward):
        raises_same(fn)
    ours, theirs = raises_same(missing_attribute)
    assert str(ours) == str(theirs) == "'Module' object has no attribute 'nope'"


@LIBS
def test_get_submodule_parameter_buffer(L):
    m = build(L)
    assert m.get_submodule("b0.proj") is m.b0.proj
    assert m.get_submodule("") is m
    assert m.get_parameter("b1.proj.weight") is m.b1.proj.weight
    assert m.get_buffer("b1.running") is m.b1.running
    with pytest.raises(AttributeError):
        m.get_submodule("b0.nope")
    with pytest.raises(AttributeError):
        m.get_parameter("b0.running")
    new = classes(L)[0](4, 4)
    m.set_submodule("b0.proj", new)
    assert m.b0.proj is new


def test_dir_lists_registered_names():
    m = build(G)
    d = dir(m)
    for name in ("b0", "head", "tied", "forward", "training", "state_dict"):
        assert name in d
    assert "running" in dir(m.b0)


# ---------------------------------------------------------------------- modes, grads, apply
@LIBS
def test_train_eval_propagate(L):
    m = build(L)
    assert m.training and all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    m.b0.train()
    assert m.b0.proj.training and not m.b1.training and not m.training
    with pytest.raises(ValueError):
        m.train("yes")


@LIBS
def test_zero_grad_and_requires_grad(L):
    m = build(L)
    m(L.lib.ones(2, 3)).sum().backward()
    grads = {n: p.grad for n, p in m.named_parameters()}
    assert all(g is not None for g in grads.values())
    m.zero_grad(set_to_none=False)
    for n, p in m.named_parameters():
        assert p.grad is grads[n] and float(p.grad.abs().sum()) == 0.0
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())


def test_forward_and_backward_match_torch():
    g, t = build(G), build(T)
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    yg, yt = g(gradient.tensor(x)), t(torch.tensor(x))
    np.testing.assert_allclose(yg.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    (yg * yg).sum().backward()
    (yt * yt).sum().backward()
    for (ng, pg), (nt, pt) in zip(g.named_parameters(), t.named_parameters()):
        assert ng == nt
        np.testing.assert_allclose(pg.grad.numpy(), pt.grad.numpy(), rtol=1e-4, atol=1e-4)


@LIBS
def test_apply_visits_children_first_once_per_path(L):
    m = build(L)
    seen = []
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    if L is G:
        test_apply_visits_children_first_once_per_path.gradient = seen
    else:
        assert seen == test_apply_visits_children_first_once_per_path.gradient
    assert seen[-1] == "Model"


# ---------------------------------------------------------------------- dtype and device
def test_to_dtype_keeps_parameter_identity_and_skips_integer_buffers():
    m = build(G)
    params = dict(m.named_parameters())
    m(gradient.ones(1, 3)).sum().backward()
    grad = m.head.weight.grad
    assert m.to(gradient.float64) is m
    for name, p in m.named_parameters():
        assert p is params[name] and type(p) is Parameter and p.dtype is gradient.float64
        assert p.requires_grad and p.is_leaf
    assert m.head.weight.grad is grad and grad.dtype is gradient.float64
    assert m.b0.running.dtype is gradient.float64
    assert m.b0.steps.dtype is gradient.int64      # integer buffers keep their dtype, as in torch
    assert m.tied is m.b1.scale                   # sharing survives
    out = m(gradient.ones(1, 3, dtype=gradient.float64))
    assert out.dtype is gradient.float64
    out.sum().backward()                          # the graph reaches the converted parameters
    assert m.embed.weight.grad.dtype is gradient.float64
    m.half()
    assert m.head.weight.dtype is gradient.float16 and m.head.weight is params["head.weight"]
    m.bfloat16()
    assert m.head.weight.dtype is gradient.bfloat16
    m.float().cpu()
    assert m.head.weight.dtype is gradient.float32 and m.b0.steps.dtype is gradient.int64
    m.to("cpu", gradient.float64)
    assert m.head.weight.dtype is gradient.float64
    m.to(gradient.zeros(1, dtype=gradient.float32))
    assert m.head.weight.dtype is gradient.float32
    m.to(device="cpu", dtype="float64")
    assert m.head.weight.dtype is gradient.float64
    m.double()
    # the same round trip through float16 and bfloat16 in torch rounds to the same values
    t = build(T).half().bfloat16().float().double()
    np.testing.assert_array_equal(m.head.weight.detach().numpy(), t.head.weight.detach().numpy())


def test_to_integer_dtype_is_refused_like_torch():
    raises_same(lambda L: build(L).to(L.lib.int64))


# ---------------------------------------------------------------------- load_state_dict
def torch_message(e):
    """torch's message with its shapes written as gradient writes them."""
    import re
    return re.sub(r"torch\.Size\(\[([^\]]*)\]\)",
                  lambda m: "(" + m.group(1) + ("," if m.group(1).count(",") == 0 and m.group(1) else "")
                  + ")", str(e))


def test_load_state_dict_roundtrip_from_torch_values():
    g, t = build(G), build(T)
    with torch.no_grad():
        for p in t.parameters():
            p.uniform_(-1, 1)
        t.b0.running.fill_(0.5)
        t.b1.steps.fill_(3)
    result = g.load_state_dict({k: gradient.tensor(v.numpy()) for k, v in t.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    for (k, a), (_, b) in zip(g.state_dict().items(), t.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    assert g.b1.steps.dtype is gradient.int64 and g.b1.steps.item() == 3


def test_load_state_dict_copies_in_place_and_casts():
    g = build(G)
    w = g.head.weight
    sd = {k: v.numpy().astype(np.float64) + 1 for k, v in build(G).state_dict().items()}  # NumPy values
    g.load_state_dict(sd)
    assert g.head.weight is w and w.dtype is gradient.float32 and w.requires_grad
    np.testing.assert_allclose(w.detach().numpy(), sd["head.weight"], rtol=1e-6)
    sd["head.bias"] = np.full(2, 9.0)
    g.load_state_dict(sd)
    assert w._version.value >= 2
    assert g.head.bias.tolist() == [9.0, 9.0]


def test_load_state_dict_replaces_nan_and_inf():
    g = build(G)
    with gradient.no_grad():
        g.head.weight.fill_(float("nan"))
        g.head.bias.fill_(float("inf"))
    g.load_state_dict(build(G).state_dict())
    assert np.isfinite(g.head.weight.detach().numpy()).all()
    assert np.isfinite(g.head.bias.detach().numpy()).all()


def test_load_state_dict_errors_match_torch_messages():
    def broken(L):
        m = build(L)
        sd = m.state_dict()
        del sd["head.bias"], sd["b0.steps"]
        sd["head.extra"] = L.lib.zeros(1)
        sd["nothere.weight"] = L.lib.zeros(1)
        sd["b0.mask"] = L.lib.zeros(4)            # non-persistent: unexpected
        sd["embed.weight"] = L.lib.zeros(3, 3)    # wrong shape
        return m, sd

    for strict in (True, False):
        msgs = []
        for L in (G, T):
            m, sd = broken(L)
            with pytest.raises(RuntimeError) as info:
                m.load_state_dict(sd, strict=strict)
            msgs.append(info.value)
        assert isinstance(msgs[0], StateDictError)
        assert str(msgs[0]) == torch_message(msgs[1])
        assert "Missing key(s)" in str(msgs[0]) if strict else "Missing" not in str(msgs[0])
    assert 'size mismatch for embed.weight: copying a param with shape (3, 3) from checkpoint, the ' \
           'shape in current model is (4, 3).' in str(msgs[0])


def test_load_state_dict_strict_false_returns_keys_like_torch():
    results = []
    for L in (G, T):
        m = build(L)
        sd = m.state_dict()
        del sd["head.bias"], sd["b1.proj.weight"]
        sd["head.extra"] = L.lib.zeros(1)
        sd["b0.proj.foo.bar"] = L.lib.zeros(1)
        results.append(m.load_state_dict(sd, strict=False))
    ours, theirs = results
    assert ours.missing_keys == theirs.missing_keys == ["b1.proj.weight", "head.bias"]
    assert ours.unexpected_keys == theirs.unexpected_keys
    assert ours == (ours.missing_keys, ours.unexpected_keys)


def test_load_state_dict_rejects_non_mappings_and_bad_values():
    m = build(G)
    with pytest.raises(TypeError):
        m.load_state_dict([("head.weight", gradient.zeros(2, 4))])
    sd = m.state_dict()
    sd["head.bias"] = "not a tensor"
    with pytest.raises(RuntimeError, match='While copying the parameter named "head.bias"'):
        m.load_state_dict(sd)


def test_load_state_dict_assign_replaces_parameters():
    m = build(G)
    m.head.weight.requires_grad_(False)
    new = {k: v.clone() + 1 for k, v in m.state_dict().items()}
    m.load_state_dict(new, assign=True)
    assert type(m.head.weight) is Parameter and not m.head.weight.requires_grad
    assert m.embed.weight.requires_grad
    with gradient.no_grad():
        new["embed.weight"].fill_(0.0)
    assert float(m.embed.weight.abs().sum()) == 0.0  # the given tensor is now the parameter
    tm = build(T)
    tnew = {k: v.clone() + 1 for k, v in tm.state_dict().items()}
    tm.load_state_dict(tnew, assign=True)
    with torch.no_grad():
        tnew["embed.weight"].fill_(0.0)
    assert float(tm.embed.weight.detach().abs().sum()) == 0.0  # the behaviour we copy


def test_load_state_dict_scalar_from_one_element_vector_like_torch():
    for L in (G, T):
        m = L.nn.Module()
        m.t = L.nn.Parameter(L.lib.tensor(1.0))
        m.load_state_dict({"t": L.lib.tensor([2.5])})
        assert float(m.t.detach()) == 2.5


def test_extra_state_round_trips():
    class WithExtra(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter(gradient.zeros(1))
            self.note = "a"

        def get_extra_state(self):
            return {"note": self.note}

        def set_extra_state(self, state):
            self.note = state["note"]

    m = WithExtra()
    m.note = "b"
    sd = m.state_dict()
    assert list(sd) == ["w", "_extra_state"]
    m2 = WithExtra()
    m2.load_state_dict(sd)
    assert m2.note == "b"
    with pytest.raises(RuntimeError, match="Missing key"):
        WithExtra().load_state_dict({"w": gradient.zeros(1)})


# ---------------------------------------------------------------------- hooks
def hook_log(L):
    """Pre-hooks and hooks of every kind on a Lin; returns (log, output before/after removals)."""
    lin = classes(L)[0](2, 2)
    log = []
    h1 = lin.register_forward_pre_hook(lambda m, args: log.append("pre1") or (args[0] * 2,))
    h2 = lin.register_forward_pre_hook(lambda m, args: log.append("pre0"), prepend=True)
    h3 = lin.register_forward_pre_hook(
        lambda m, args, kwargs: log.append(f"prekw{sorted(kwargs)}") or (args, {}), with_kwargs=True)
    h4 = lin.register_forward_hook(lambda m, args, out: log.append("post1") or out + 1)
    h5 = lin.register_forward_hook(
        lambda m, args, kwargs, out: log.append(f"postkw{sorted(kwargs)}"), with_kwargs=True)
    h6 = lin.register_forward_hook(lambda m, args, out: log.append("post0") or out * 10, prepend=True)
    x = L.lib.ones(1, 2)
    outs = [lin(x).tolist()]
    h4.remove()
    h1.remove()
    h6.remove()
    outs.append(lin(x).tolist())
    for h in (h2, h3, h5):
        h.remove()
    outs.append(lin(x).tolist())
    with lin.register_forward_hook(lambda m, a, o: o * 0):
        outs.append(lin(x).tolist())
    outs.append(lin(x).tolist())
    return log, outs


def test_forward_hooks_match_torch():
    assert hook_log(G) == hook_log(T)
    log, outs = hook_log(G)
    assert log[:6] == ["pre0", "pre1", "prekw[]", "post0", "post1", "postkw[]"]
    assert outs[3] == [[0.0, 0.0]] and outs[4] == outs[2]


def test_forward_pre_hook_with_kwargs_can_replace_kwargs_and_bad_return_raises():
    class Scale(Module):
        def forward(self, x, factor=1.0):
            return x * factor

    m = Scale()
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"factor": 3.0}), with_kwargs=True)
    assert m(gradient.tensor([2.0])).tolist() == [6.0]
    m2 = Scale()
    m2.register_forward_pre_hook(lambda mod, args, kwargs: "bad", with_kwargs=True)
    with pytest.raises(RuntimeError, match="forward pre-hook must return None or a tuple"):
        m2(gradient.tensor([1.0]))


@LIBS
def test_always_call_hook_runs_when_forward_raises(L):
    class Boom(L.nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    m = Boom()
    seen = []
    m.register_forward_hook(lambda mod, args, out: seen.append(("always", out)), always_call=True)
    m.register_forward_hook(lambda mod, args, out: seen.append("normal"))
    with pytest.raises(ValueError, match="boom"):
        m(1)
    assert seen == [("always", None)]


# ---------------------------------------------------------------------- copying and printing
def test_deepcopy_is_independent_and_keeps_sharing():
    m = build(G)
    m(gradient.ones(1, 3)).sum().backward()
    c = copy.deepcopy(m)
    assert type(c) is type(m)
    assert c.head.weight is not m.head.weight and type(c.head.weight) is Parameter
    assert c.again is c.b0 and c.tied is c.b1.scale      # sharing inside the copy is kept
    assert names(c.named_parameters()) == names(m.named_parameters())
    with gradient.no_grad():
        c.head.weight.fill_(0.0)
        c.b0.running.fill_(1.0)
    assert float(m.head.weight.abs().sum()) > 0 and float(m.b0.running.sum()) == 0.0
    assert c.b0.mask is not m.b0.mask and "mask" in c.b0._non_persistent_buffers_set
    np.testing.assert_allclose(c(gradient.ones(1, 3)).detach().numpy().shape, (1, 2))


def test_repr_matches_torch():
    assert repr(build(G)) == repr(build(T))
    g, t = classes(G)[0](2, 3), classes(T)[0](2, 3)
    assert repr(g) == repr(t) == "Lin(in_features=2, out_features=3, bias=True)"

    class Multi(Module):
        def extra_repr(self):
            return "a=1\nb=2"

    class TMulti(torch.nn.Module):
        def extra_repr(self):
            return "a=1\nb=2"

    outer, touter = Module(), torch.nn.Module()
    outer.inner, touter.inner = Multi(), TMulti()
    outer.inner.leaf, touter.inner.leaf = Module(), torch.nn.Module()
    assert repr(outer) == repr(touter).replace("TMulti", "Multi")
    assert repr(Module()) == "Module()"


def test_module_hooks_handle_ids_are_unique_and_removal_is_idempotent():
    m = Module()
    m.forward = lambda x: x
    h1 = m.register_forward_hook(lambda *a: None)
    h2 = m.register_forward_hook(lambda *a: None)
    assert h1.id != h2.id
    h1.remove()
    h1.remove()
    assert list(m._forward_hooks) == [h2.id]


def test_buffer_assignment_and_math_on_modules():
    m = Module()
    m.stat = Buffer(gradient.ones(2), persistent=False)
    m.w = Parameter(gradient.full((2,), 2.0))
    assert "stat" in m._buffers and list(m.state_dict()) == ["w"]
    assert math.isclose(float((m.w * m.stat).sum()), 4.0)


def test_a_module_watch_sees_every_change_to_attributes_and_children():
    from gradient.nn.module import ModuleWatch
    nn = gradient.nn
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    lst = nn.ModuleList([nn.Identity()])
    dct = nn.ModuleDict({"a": nn.Identity()})
    # built before: constructing a module is itself a change
    weight, tanh, relu, ids, relu2, relu3, ident = (
        nn.Parameter(gradient.ones(2, 2)), nn.Tanh(), nn.ReLU(), [nn.Identity(), nn.Identity()],
        nn.ReLU(), nn.ReLU(), nn.Identity())
    changes = [
        lambda: setattr(seq[0], "weight", weight),
        lambda: setattr(seq[0], "note", "x"),                  # a plain attribute too
        lambda: delattr(seq[0], "note"),
        lambda: seq.__setitem__(1, tanh),
        lambda: seq.__delitem__(1),
        lambda: seq.append(relu),
        lambda: lst.insert(0, ids[0]),
        lambda: lst.extend([ids[1]]),
        lambda: lst.__setitem__(0, relu2),
        lambda: lst.pop(0),
        lambda: dct.update({"b": relu3}),
        lambda: dct.pop("a"),
        lambda: dct.clear(),
        lambda: seq._modules.__setitem__("0", ident),          # a direct write
        lambda: seq.train(False),
    ]
    for change in changes:
        watch = ModuleWatch([*seq.modules(), lst, *lst, dct, *dct.values()])
        change()
        assert watch.changed, change
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    watch = ModuleWatch(seq.modules())
    with gradient.no_grad():   # using a model changes nothing
        seq(gradient.ones(1, 2))
        list(seq.parameters()), seq.state_dict(), repr(seq)
    with gradient.no_grad():   # nor do its values (a watcher checks the tensors it read)
        seq[0].weight.add_(1.0)
        seq[0].weight.data = gradient.zeros(2, 2)
    assert not watch.changed
    other = nn.Linear(2, 2)    # another module's change is not seen
    other.note = "x"
    assert not watch.changed
    handle = seq[0].register_forward_hook(lambda *a: None)   # a hook is
    assert watch.changed
    watch = ModuleWatch(seq.modules())
    handle.remove()
    assert watch.changed
    import copy
    twin = copy.deepcopy(seq)  # a copy has watches of its own (none)
    watch = ModuleWatch(seq.modules())
    twin[0].note = "y"
    assert not watch.changed


def _hooked(lib, calls):
    """A two-layer model whose state-dict hooks leave out the first layer's bias and rename the
    second layer's weight to 'w' when saving, rename it back when loading and forgive the
    missing biases, and record what they were called with."""
    model = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.Linear(3, 1))
    second = model[1]
    second.register_state_dict_pre_hook(
        lambda module, prefix, keep_vars: calls.append(("pre", prefix, keep_vars)))

    def rename(module, state_dict, prefix, local_metadata):
        state_dict[prefix + "w"] = state_dict.pop(prefix + "weight")
    second.register_state_dict_post_hook(rename)

    def rename_back(module, state_dict, prefix, local_metadata, strict, missing, unexpected,
                    errors):
        calls.append(("load_pre", prefix, strict, sorted(state_dict)))
        if prefix + "w" in state_dict:
            state_dict[prefix + "weight"] = state_dict.pop(prefix + "w")
    second.register_load_state_dict_pre_hook(rename_back)

    def forgive_bias(module, keys):
        calls.append(("load_post", list(keys.missing_keys), list(keys.unexpected_keys)))
        for key in ("0.bias", "1.bias"):
            if key in keys.missing_keys:
                keys.missing_keys.remove(key)
    handle = model.register_load_state_dict_post_hook(forgive_bias)
    model._register_state_dict_hook(
        lambda module, state_dict, prefix, local_metadata: OrderedDict(
            (k, v) for k, v in state_dict.items() if k != "0.bias"))
    return model, handle


def test_state_dict_hooks_as_torchs():
    results = {}
    for lib in (gradient, torch):
        calls = []
        model, handle = _hooked(lib, calls)
        saved = model.state_dict(keep_vars=False)
        keys = list(saved)
        del saved["1.bias"]
        result = model.load_state_dict(saved, strict=True)     # the biases forgiven
        handle.remove()
        results[lib.__name__] = (keys, calls, list(result.missing_keys))
    assert results["gradient"] == results["torch"]
    assert results["gradient"][0] == ["0.weight", "1.bias", "1.w"]


def test_a_missing_key_no_hook_forgives_is_an_error_as_in_torch():
    for lib, error in ((gradient, StateDictError), (torch, RuntimeError)):
        model, handle = _hooked(lib, [])
        saved = model.state_dict()
        handle.remove()                       # nothing forgives the missing biases now
        with pytest.raises(error, match="0.bias"):
            model.load_state_dict(saved)
