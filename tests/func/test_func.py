"""gradient.func against torch.func: the same functions on the same inputs, values and gradients."""

import numpy as np
import pytest
import torch
import torch.func as tf

import gradient
import gradient.func as gf
import gradient.nn.functional as F


def pair(*shape, seed=0, requires_grad=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    return (gradient.tensor(a, dtype=gradient.float64, requires_grad=requires_grad),
            torch.tensor(a, dtype=torch.float64, requires_grad=requires_grad))


def close(ours, theirs, atol=1e-10):
    """Same pytree structure and values."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, gradient.Tensor), type(ours)
        assert tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), atol=atol, rtol=1e-8)
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs)
        for k in theirs:
            close(ours[k], theirs[k], atol)
    elif isinstance(theirs, (tuple, list)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            close(a, b, atol)
    else:
        assert ours == theirs


# one function, written once for both libraries: m is gradient or torch
def f_poly(m, x):
    return (x ** 3).sum() + (x.sin() * x).sum()


def f_two(m, x, y):
    return ((x * y).tanh() * x).sum()


def f_tree(m, d):
    return (d["a"] ** 2).sum() * d["b"][0].exp().sum() + d["b"][1].sum()


# ------------------------------------------------------------------ grad and friends
def test_grad_matches_torch():
    (x, tx), (y, ty) = pair(3, 4), pair(3, 4, seed=1)
    close(gf.grad(lambda a: f_poly(gradient, a))(x), tf.grad(lambda a: f_poly(torch, a))(tx))
    for argnums in (0, 1, (0, 1), (1, 0), -1):
        ours = gf.grad(lambda a, b: f_two(gradient, a, b), argnums=argnums)(x, y)
        theirs = tf.grad(lambda a, b: f_two(torch, a, b), argnums=argnums)(tx, ty)
        close(ours, theirs)


def test_grad_result_is_plain_tensor_and_input_untouched():
    x, _ = pair(3)
    g = gf.grad(lambda a: (a ** 2).sum())(x)
    assert not g.requires_grad and g.grad_fn is None
    assert not x.requires_grad and x.grad is None


def test_grad_pytree_inputs():
    (a, ta), (b0, tb0), (b1, tb1) = pair(2, 3), pair(3, seed=1), pair(2, seed=2)
    ours = gf.grad(lambda d: f_tree(gradient, d))({"a": a, "b": (b0, b1)})
    theirs = tf.grad(lambda d: f_tree(torch, d))({"a": ta, "b": (tb0, tb1)})
    close(ours, theirs)
    assert isinstance(ours["b"], tuple)


def test_grad_and_value_and_has_aux():
    x, tx = pair(4)
    def make(m):
        def f(a):
            loss = (a.exp() * a).sum()
            return loss, {"doubled": a * 2, "loss": loss}
        return f
    close(gf.grad_and_value(make(gradient), has_aux=True)(x),
          tf.grad_and_value(make(torch), has_aux=True)(tx))
    g, aux = gf.grad(make(gradient), has_aux=True)(x)
    tg, taux = tf.grad(make(torch), has_aux=True)(tx)
    close((g, aux), (tg, taux))
    assert not aux["doubled"].requires_grad


def test_grad_of_grad_and_closure_composition():
    x, tx = pair(5)
    f = lambda m: (lambda a: (a ** 3 * a.cos()).sum())
    gg = gf.grad(lambda a: gf.grad(f(gradient))(a).sum())(x)
    tgg = tf.grad(lambda a: tf.grad(f(torch))(a).sum())(tx)
    close(gg, tgg)
    # third order, on a scalar
    s, ts = gradient.tensor(0.7, dtype=gradient.float64), torch.tensor(0.7, dtype=torch.float64)
    close(gf.grad(gf.grad(gf.grad(lambda a: a.sin() * a ** 4)))(s),
          tf.grad(tf.grad(tf.grad(lambda a: a.sin() * a ** 4)))(ts))
    # perturbation confusion: d/dx [x * d/dy (x*y)] = 2x
    close(gf.grad(lambda a: (a * gf.grad(lambda b: (a * b).sum())(a)).sum())(x),
          tf.grad(lambda a: (a * tf.grad(lambda b: (a * b).sum())(a)).sum())(tx))


def test_grad_through_captured_parameter_stays_differentiable():
    (x, tx), (w, tw) = pair(3), pair(3, seed=1, requires_grad=True)
    g = gf.grad(lambda a: (w * a ** 2).sum())(x)      # 2 w x, depends on w
    tg = tf.grad(lambda a: (tw * a ** 2).sum())(tx)
    assert g.requires_grad and tg.requires_grad
    g.sum().backward()
    tg.sum().backward()
    close(w.grad, tw.grad)
    with gradient.no_grad():                       # no outer graph wanted: a plain result
        assert not gf.grad(lambda a: (w * a ** 2).sum())(x).requires_grad


def test_vjp_and_jvp_match_torch():
    (x, tx), (y, ty), (v, tv) = pair(3), pair(3, seed=1), pair(3, seed=2)
    f = lambda m: (lambda a, b: {"p": a * b.exp(), "q": (a.sin(), b ** 2)})
    out, fn = gf.vjp(f(gradient), x, y)
    tout, tfn = tf.vjp(f(torch), tx, ty)
    close(out, tout)
    ct = {"p": v, "q": (v * 2, v.cos())}
    tct = {"p": tv, "q": (tv * 2, tv.cos())}
    close(fn(ct), tfn(tct))
    close(fn(ct), tfn(tct))     # vjp_fn may be called again
    close(gf.jvp(f(gradient), (x, y), (v, v * 3)), tf.jvp(f(torch), (tx, ty), (tv, tv * 3)))
    # has_aux
    g = lambda a: (a ** 2, a.sum())
    o, fn, aux = gf.vjp(g, x, has_aux=True)
    to, tfn, taux = tf.vjp(g, tx, has_aux=True)
    close((o, fn(v), aux), (to, tfn(tv), taux))
    close(gf.jvp(g, (x,), (v,), has_aux=True), tf.jvp(g, (tx,), (tv,), has_aux=True))


def test_jvp_of_grad_is_hessian_vector_product():
    (x, tx), (v, tv) = pair(4), pair(4, seed=3)
    f = lambda a: (a.exp() * a ** 2).sum()
    close(gf.jvp(gf.grad(f), (x,), (v,)), tf.jvp(tf.grad(f), (tx,), (tv,)))


@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_jacrev_jacfwd_hessian_match_torch(argnums):
    (x, tx), (y, ty) = pair(3), pair(2, 3, seed=1)
    f = lambda a, b: (b * a).tanh() @ a.exp()            # output shape (2,)
    for ours_t, theirs_t in ((gf.jacrev, tf.jacrev), (gf.jacfwd, tf.jacfwd)):
        close(ours_t(f, argnums)(x, y), theirs_t(f, argnums)(tx, ty))
    s = lambda a, b: (b.sin() * a).sum() * a.pow(2).sum()
    close(gf.hessian(s, argnums)(x, y), tf.hessian(s, argnums)(tx, ty))


def test_jacobian_pytree_outputs_aux_and_composition():
    x, tx = pair(3)
    f = lambda a: ({"sq": a ** 2, "s": a.sum()}, a.mean())
    close(gf.jacrev(f, has_aux=True)(x), tf.jacrev(f, has_aux=True)(tx))
    g = lambda a: (a.sin() * a ** 2).sum()
    close(gf.jacrev(gf.grad(g))(x), tf.jacrev(tf.grad(g))(tx))
    close(gf.jacrev(gf.jacrev(lambda a: a.exp() * a.sum()))(x),
          tf.jacrev(tf.jacrev(lambda a: a.exp() * a.sum()))(tx))
    close(gf.hessian(lambda d: (d["u"] ** 2 * d["v"]).sum())({"u": x, "v": x * 2}),
          tf.hessian(lambda d: (d["u"] ** 2 * d["v"]).sum())({"u": tx, "v": tx * 2}))


# ------------------------------------------------------------------ vmap
@pytest.mark.parametrize("in_dims,out_dims", [(0, 0), (1, 0), (0, 1), (-1, -1), ((0, None), 2),
                                              ((1, None), -3)])
def test_vmap_in_out_dims(in_dims, out_dims):
    (x, tx), (y, ty) = pair(4, 5, 3), pair(4, 5, 3, seed=1)
    if isinstance(in_dims, tuple):
        (y, ty) = pair(5, 3, seed=1) if in_dims[0] == 0 else pair(4, 3, seed=1)
    f = lambda a, b: a.sin() * b + b.sum()
    close(gf.vmap(f, in_dims, out_dims)(x, y), tf.vmap(f, in_dims, out_dims)(tx, ty))


def test_vmap_pytrees_nested_specs_kwargs_and_non_tensor_outputs():
    (x, tx), (y, ty), (z, tz) = pair(3, 2), pair(2, 3, seed=1), pair(2, seed=2)
    f = lambda d, c, scale=1.0: ({"s": d["a"] * c, "t": (d["b"].sum() * scale, c)}, [c.exp()])
    in_dims = ({"a": 0, "b": 1}, None)
    out_dims = ({"s": 1, "t": (0, None)}, 0)
    close(gf.vmap(f, in_dims, out_dims)({"a": x, "b": y}, z, scale=2.0),
          tf.vmap(f, in_dims, out_dims)({"a": tx, "b": ty}, tz, scale=2.0))
    close(gf.vmap(lambda a: a, out_dims=(0,))(x), tf.vmap(lambda a: a, out_dims=(0,))(tx))
    assert gf.vmap(lambda a: 1.5, out_dims=None)(x) == 1.5
    close(gf.vmap(lambda a, n: a * 2, in_dims=(0, None))(x, None),
          tf.vmap(lambda a, n: a * 2, in_dims=(0, None))(tx, None))


def test_nested_vmap_and_empty_batch():
    (x, tx), (y, ty) = pair(3, 4), pair(5, 4, seed=1)
    dot = lambda a, b: (a * b).sum()
    close(gf.vmap(gf.vmap(dot, (None, 0)), (0, None))(x, y),
          tf.vmap(tf.vmap(dot, (None, 0)), (0, None))(tx, ty))
    e, te = pair(0, 3)
    close(gf.vmap(lambda a: a * 2, out_dims=1)(e), tf.vmap(lambda a: a * 2, out_dims=1)(te))


def test_vmap_is_differentiable_through_mapped_inputs():
    x, tx = pair(3, 4, requires_grad=True)
    gf.vmap(lambda a: (a ** 3).sum())(x).sum().backward()
    tf.vmap(lambda a: (a ** 3).sum())(tx).sum().backward()
    close(x.grad, tx.grad)


def _mlp(m):
    m.manual_seed(0)
    return m.nn.Sequential(m.nn.Linear(4, 8), m.nn.Tanh(), m.nn.Linear(8, 3)).double()


def test_per_sample_gradients_of_mlp():
    model, tmodel = _mlp(gradient), _mlp(torch)
    tmodel.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in model.state_dict().items()})
    (x, tx) = pair(6, 4, seed=5)
    y, ty = gradient.tensor([0, 2, 1, 1, 0, 2]), torch.tensor([0, 2, 1, 1, 0, 2])

    def make_loss(m, mod, fc, ce):
        def loss(p, xi, yi):
            return ce(fc(mod, p, (xi.unsqueeze(0),)), yi.unsqueeze(0))
        return loss

    params = {k: v.detach() for k, v in model.named_parameters()}
    tparams = {k: v.detach() for k, v in tmodel.named_parameters()}
    ours = gf.vmap(gf.grad(make_loss(gradient, model, gf.functional_call, F.cross_entropy)),
                   in_dims=(None, 0, 0))(params, x, y)
    theirs = tf.vmap(tf.grad(make_loss(torch, tmodel, tf.functional_call, torch.nn.functional.cross_entropy)),
                     in_dims=(None, 0, 0))(tparams, tx, ty)
    close(ours, theirs)
    assert ours["0.weight"].shape == (6, 8, 4)
    # the mean of the per-sample gradients is the batch gradient
    F.cross_entropy(model(x), y).backward()
    close(ours["0.weight"].mean(0), torch.tensor(model[0].weight.grad.numpy()))
    # the module's own parameters were restored
    for (k, v), (_, tv) in zip(model.named_parameters(), tmodel.named_parameters()):
        assert isinstance(v, gradient.nn.Parameter)
        close(v, tv)


def test_vmap_randomness():
    x = gradient.zeros(3, 4)
    same = gf.vmap(lambda a: a + gradient.rand(4), randomness="same")(x)
    assert all(bool((same[i] == same[0]).all()) for i in range(3))
    diff = gf.vmap(lambda a: a + gradient.rand(4), randomness="different")(x)
    assert not bool((diff[1] == diff[0]).all())


# ------------------------------------------------------------------ functional_call
def test_functional_call_matches_torch_and_restores():
    model, tmodel = _mlp(gradient), _mlp(torch)
    x, tx = pair(2, 4, seed=9)
    new = {k: v.detach() * 0 + 0.1 for k, v in model.named_parameters()}
    tnew = {k: v.detach() * 0 + 0.1 for k, v in tmodel.named_parameters()}
    close(gf.functional_call(model, new, x), tf.functional_call(tmodel, tnew, tx))
    before = {k: v.detach().numpy().copy() for k, v in model.named_parameters()}
    assert all((v.detach().numpy() != 0.1).any() for v in model.parameters())

    class Boom(Exception):
        pass

    def bad(*_):
        raise Boom
    hook = model.register_forward_pre_hook(bad)
    with pytest.raises(Boom):
        gf.functional_call(model, new, (x,))
    hook.remove()
    for k, v in model.named_parameters():
        assert isinstance(v, gradient.nn.Parameter)
        np.testing.assert_array_equal(v.detach().numpy(), before[k])
    # also as nn.utils.stateless
    close(gradient.nn.utils.stateless.functional_call(model, new, (x,)),
          torch.nn.utils.stateless.functional_call(tmodel, tnew, (tx,)))


def test_functional_call_buffers_ties_strict_and_kwargs():
    class Tied(gradient.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = gradient.nn.Linear(2, 2, bias=False)
            self.b = gradient.nn.Linear(2, 2, bias=False)
            self.b.weight = self.a.weight
            self.register_buffer("shift", gradient.zeros(2))

        def forward(self, x, scale=1.0):
            return self.b(self.a(x)) * scale + self.shift

    m = Tied()
    x = gradient.ones(1, 2)
    w = gradient.eye(2) * 2
    out = gf.functional_call(m, ({"a.weight": w}, {"shift": gradient.ones(2)}), (x,), {"scale": 0.5})
    np.testing.assert_allclose(out.numpy(), [[3.0, 3.0]])        # 4x * 0.5 + 1
    untied = gf.functional_call(m, {"a.weight": w}, (x,), tie_weights=False)
    np.testing.assert_allclose(untied.detach().numpy(), (x @ w.T @ m.a.weight.detach().T).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="tied"):
        gf.functional_call(m, {"a.weight": w, "b.weight": w * 3}, (x,))
    with pytest.raises(RuntimeError, match="Missing key"):
        gf.functional_call(m, {"a.weight": w}, (x,), strict=True, tie_weights=False)
    with pytest.raises(RuntimeError, match="Unexpected key\\(s\\): 'foo'"):
        gf.functional_call(m, {"a.weight": w, "shift": x[0], "foo": w}, (x,), strict=True)
    with pytest.raises(ValueError, match="multiple dictionaries"):
        gf.functional_call(m, ({"shift": x[0]}, {"shift": x[0]}), (x,))
    assert m.b.weight is m.a.weight and not bool(m.shift.any())


# ------------------------------------------------------------------ errors, as torch
ERRORS = [
    ("mismatched sizes", lambda m: m.func.vmap(lambda a, b: a + b)(m.ones(3), m.ones(4)),
     ValueError, "same size in the mapped dimension"),
    ("in_dim out of range", lambda m: m.func.vmap(lambda a: a, in_dims=2)(m.ones(2, 2)),
     ValueError, "expected in_dim to satisfy -2 <= in_dim < 2"),
    ("in_dims list", lambda m: m.func.vmap(lambda a: a, in_dims=[0])(m.ones(2)),
     ValueError, "expected `in_dims` to be int or a"),
    ("in_dims structure", lambda m: m.func.vmap(lambda a, b: a, in_dims=(0,))(m.ones(2), m.ones(2)),
     ValueError, "in_dims is not compatible with the structure"),
    ("non-tensor mapped", lambda m: m.func.vmap(lambda a, b: a)(m.ones(2), 3),
     ValueError, "cannot vmap over non-Tensor arguments"),
    ("nothing mapped", lambda m: m.func.vmap(lambda a: a, in_dims=(None,))(m.ones(2)),
     ValueError, "at least one Tensor to vmap over"),
    ("no inputs", lambda m: m.func.vmap(lambda: 1)(), ValueError, "got no inputs"),
    ("non-tensor output", lambda m: m.func.vmap(lambda a: 1.0)(m.ones(2)),
     ValueError, "must only return Tensors"),
    ("out_dim range", lambda m: m.func.vmap(lambda a: a, out_dims=5)(m.ones(2, 2)),
     IndexError, "Dimension out of range"),
    ("out_dims structure", lambda m: m.func.vmap(lambda a: a, out_dims=(0, 1))(m.ones(2)),
     ValueError, "out_dims is not compatible"),
    ("batched out_dims None", lambda m: m.func.vmap(lambda a: a, out_dims=None)(m.ones(2, 3).cumsum(0)),
     ValueError, "out_dim is None"),
    ("randomness", lambda m: m.func.vmap(lambda a: a, randomness="x")(m.ones(2)),
     RuntimeError, "Only allowed values for randomness"),
    ("chunk_size", lambda m: m.func.vmap(lambda a: a, chunk_size=0)(m.ones(2)),
     ValueError, "chunk_size should be None or greater than 0"),
    ("grad non-scalar", lambda m: m.func.grad(lambda a: a)(m.ones(2)),
     RuntimeError, "Expected f\\(\\*args\\) to return a scalar Tensor"),
    ("grad non-tensor", lambda m: m.func.grad(lambda a: 1.0)(m.ones(2)),
     RuntimeError, "Expected f\\(\\*args\\) to return a Tensor"),
    ("argnums range", lambda m: m.func.grad(lambda a: a.sum(), argnums=1)(m.ones(2)),
     RuntimeError, "Got argnum=1, but only 1 positional inputs"),
    ("argnums unique", lambda m: m.func.grad(lambda a: a.sum(), argnums=(0, 0))(m.ones(2)),
     RuntimeError, "argnums elements must be unique"),
    ("argnums empty", lambda m: m.func.grad(lambda a: a.sum(), argnums=())(m.ones(2)),
     RuntimeError, "argnums must be non-empty"),
    ("argnums type", lambda m: m.func.grad(lambda a: a.sum(), argnums=0.5)(m.ones(2)),
     RuntimeError, "argnums must be int or Tuple"),
    ("has_aux", lambda m: m.func.grad(lambda a: a.sum(), has_aux=True)(m.ones(2)),
     RuntimeError, "should be a tuple: \\(output, aux\\)"),
    ("integer input", lambda m: m.func.grad(lambda a: a.sum())(m.tensor([1, 2])),
     RuntimeError, "floating point"),
    ("jvp primals", lambda m: m.func.jvp(lambda a: a, m.ones(2), m.ones(2)),
     RuntimeError, "Expected primals to be a tuple"),
    ("vjp cotangent shape", lambda m: m.func.vjp(lambda a: a, m.ones(2))[1](m.ones(3)),
     RuntimeError, "Mismatch in shape"),
    ("vjp cotangent structure", lambda m: m.func.vjp(lambda a: a, m.ones(2))[1]((m.ones(2),)),
     RuntimeError, "Expected pytree structure of cotangents"),
    ("vjp non-tensor output", lambda m: m.func.vjp(lambda a: 1.0, m.ones(2)),
     RuntimeError, "to return only tensors"),
]


@pytest.mark.parametrize("name,call,exc,match", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_as_torch(name, call, exc, match):
    with pytest.raises(exc, match=match):
        call(torch)
    with pytest.raises(exc, match=match):
        call(gradient)
