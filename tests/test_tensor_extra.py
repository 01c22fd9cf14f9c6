"""Tensor methods and properties added for ported scripts: is_cpu, nbytes, itemsize,
storage_offset, H/mH/adjoint, output_nr, get_device, the in-place shape and scan methods, the
in-place comparisons, and register_post_accumulate_grad_hook (against torch's call order)."""

import numpy as np
import pytest
import torch

import gradient


def _both(a):
    return gradient.tensor(np.asarray(a)), torch.tensor(np.asarray(a))


def test_every_is_flag_of_torchs_tensors():
    """``x.is_mps``, ``x.is_quantized`` ...: each flag PyTorch's tensors carry (not the
    methods), with a CPU tensor's values."""
    g, t = _both(np.arange(12.0).reshape(3, 4).astype(np.float32))
    flags = [a for a in dir(torch.Tensor) if a.startswith("is_") and not callable(getattr(t, a))]
    assert {"is_xpu", "is_mps", "is_meta", "is_quantized", "is_sparse"} <= set(flags)
    assert {a: getattr(g, a) for a in flags} == {a: getattr(t, a) for a in flags}


def test_properties():
    g, t = _both(np.arange(12.0).reshape(3, 4).astype(np.float32))
    assert g.is_cpu and t.is_cpu
    assert (g.nbytes, g.itemsize) == (t.nbytes, t.itemsize) == (48, 4)
    assert g.get_device() == t.get_device() == -1 == gradient.get_device(g)
    for index in ((slice(1, None),), (1,), (slice(None), 2), (Ellipsis,)):
        assert g[index].storage_offset() == t[index].storage_offset()
    assert g.storage_offset() == 0
    np.testing.assert_array_equal(g.H.numpy(), t.H.numpy())
    np.testing.assert_array_equal(g.mH.numpy(), t.mH.numpy())
    np.testing.assert_array_equal(g.adjoint().numpy(), t.adjoint().numpy())
    np.testing.assert_array_equal(gradient.adjoint(g).numpy(), torch.adjoint(t).numpy())
    assert gradient.tensor(2.0).H.item() == 2.0
    with pytest.raises(RuntimeError):
        gradient.ones(2, 3, 4).H
    with pytest.raises(RuntimeError):
        gradient.ones(3).mH


def test_output_nr():
    x = gradient.randn(4, requires_grad=True)
    xt = torch.tensor(x.detach().numpy(), requires_grad=True)
    a, b = x.split(2)
    at, bt = xt.split(2)
    assert (x.output_nr, a.output_nr, b.output_nr) == (xt.output_nr, at.output_nr, bt.output_nr)
    assert b.output_nr == 1


@pytest.mark.parametrize("op,args", [("squeeze_", ()), ("squeeze_", (0,)), ("unsqueeze_", (1,)),
                                     ("transpose_", (0, 2)), ("swapaxes_", (1, 2)),
                                     ("swapdims_", (0, 1))])
def test_inplace_shape_ops(op, args):
    a = np.random.default_rng(0).standard_normal((1, 3, 2))
    g, t = _both(a)
    assert getattr(g, op)(*args) is g
    getattr(t, op)(*args)
    assert tuple(g.shape) == tuple(t.shape)
    np.testing.assert_array_equal(g.numpy(), t.numpy())
    # recorded on a non-leaf: the gradient flows back through the new shape
    xg = gradient.tensor(a, requires_grad=True)
    xt = torch.tensor(a, requires_grad=True)
    yg, yt = xg * 2, xt * 2
    getattr(yg, op)(*args)
    getattr(yt, op)(*args)
    w = np.random.default_rng(1).standard_normal(tuple(yt.shape))
    (yg * gradient.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy())
    leaf = gradient.ones(1, 2, requires_grad=True)
    with pytest.raises(RuntimeError):
        getattr(leaf, op)(*args)


def test_t_():
    g, t = _both(np.arange(6).reshape(2, 3))
    g.t_()
    t.t_()
    np.testing.assert_array_equal(g.numpy(), t.numpy())


@pytest.mark.parametrize("op,args", [("tril_", ()), ("triu_", (1,)), ("cumsum_", (1,)),
                                     ("cumprod_", (0,)), ("greater_", (0.0,)),
                                     ("greater_equal_", (0.5,)), ("less_", (0.0,)),
                                     ("less_equal_", (0.5,)), ("not_equal_", (0.5,))])
def test_inplace_value_ops(op, args):
    a = np.round(np.random.default_rng(0).uniform(-1, 1, (3, 3)) * 2) / 2
    g, t = _both(a)
    assert getattr(g, op)(*args) is g
    getattr(t, op)(*args)
    np.testing.assert_allclose(g.numpy(), t.numpy())
    assert g._version.value == 1
    if op in ("tril_", "cumsum_", "cumprod_"):
        xg = gradient.tensor(a, requires_grad=True)
        xt = torch.tensor(a, requires_grad=True)
        yg, yt = xg * 1.5, xt * 1.5
        getattr(yg, op)(*args)
        getattr(yt, op)(*args)
        yg.pow(2).sum().backward()
        yt.pow(2).sum().backward()
        np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy())


def test_top_level_fill_and_zero():
    g, t = _both(np.ones((2, 2)))
    assert gradient.fill_(g, 3.0) is g
    torch.fill_(t, 3.0)
    np.testing.assert_array_equal(g.numpy(), t.numpy())
    assert gradient.zero_(g) is g and g.sum().item() == 0
    v = gradient.tensor(2.0, requires_grad=True)
    out = gradient.fill(gradient.ones(3), v)
    assert out.tolist() == torch.fill(torch.ones(3), 2.0).tolist()
    out.sum().backward()
    assert v.grad.item() == 3.0


def _hook_log(lib):
    """The order in which torch calls tensor hooks, post-accumulate hooks, and what .grad holds."""
    log = []
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    v = lib.tensor([3.0], requires_grad=True)
    w.register_hook(lambda g: log.append(("pre-w", g.tolist())))
    w.register_post_accumulate_grad_hook(lambda p: log.append(("post-w", p.grad.tolist())))
    handle = v.register_post_accumulate_grad_hook(lambda p: log.append(("post-v", p.grad.tolist())))
    ((w * v).sum() + (w ** 2).sum()).backward()
    handle.remove()
    (w.sum() * v).sum().backward()
    return log


def test_register_post_accumulate_grad_hook():
    # per leaf, the same calls in the same order (the order between two leaves is the engine's)
    ours, theirs = _hook_log(gradient), _hook_log(torch)
    for leaf in ("w", "v"):
        assert [e for e in ours if e[0].endswith(leaf)] == [e for e in theirs if e[0].endswith(leaf)]
    assert sorted(map(str, ours)) == sorted(map(str, theirs)) and len(ours) == 5
    # an "optimizer step in backward": the hook updates the parameter and frees its .grad
    for lib in (gradient, torch):
        p = lib.tensor([1.0, 2.0], requires_grad=True)

        def step(param):
            with lib.no_grad():
                param.sub_(0.1 * param.grad)
            param.grad = None

        p.register_post_accumulate_grad_hook(step)
        (p ** 2).sum().backward()
        assert p.grad is None
        np.testing.assert_allclose(p.detach().numpy(), [0.8, 1.6], rtol=1e-6)
    # not called by autograd.grad, refused on non-leaves and on tensors without grad
    x = gradient.tensor([1.0], requires_grad=True)
    called = []
    x.register_post_accumulate_grad_hook(called.append)
    gradient.autograd.grad((x * 2).sum(), x)
    assert called == []
    with pytest.raises(RuntimeError):
        (x * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError):
        gradient.ones(1).register_post_accumulate_grad_hook(print)


def test_tensors_and_parameters_pickle_as_torchs():
    """For other processes (multiprocessing queues, spawn's arguments): the values, dtype,
    device and requires_grad; an op's result comes back a leaf without .grad; a Parameter
    stays one, with its extra attributes; a module whole."""
    import pickle

    x = gradient.randn(3, requires_grad=True)
    x.grad = gradient.ones(3)
    for t, grad in ((x, True), ((x * 2)[1:], True), (gradient.arange(6)[2:4], False),
                    (gradient.ones(2, dtype=gradient.bfloat16), False)):
        back = pickle.loads(pickle.dumps(t))
        assert type(back) is gradient.Tensor and back.dtype is t.dtype
        assert back.requires_grad is grad and back.is_leaf and back.grad is None
        np.testing.assert_array_equal(back.detach().float().numpy(), t.detach().float().numpy())
    p = gradient.nn.Parameter(gradient.randn(2, 2))
    p.no_decay = True
    back = pickle.loads(pickle.dumps(p))
    assert type(back) is gradient.nn.Parameter and back.requires_grad and back.no_decay
    model = gradient.nn.Sequential(gradient.nn.Linear(3, 2), gradient.nn.ReLU())
    again = pickle.loads(pickle.dumps(model))
    probe = gradient.randn(4, 3)
    np.testing.assert_array_equal(again(probe).detach().numpy(), model(probe).detach().numpy())


def test_storages_tell_which_tensors_share_memory_as_torchs():
    """``untyped_storage()``/``storage()``: a view's storage is its base's (the same
    data_ptr), a copy's is its own; sizes, items and offsets as torch's."""
    import warnings

    g, t = gradient.arange(12.0).reshape(3, 4), torch.arange(12.0).reshape(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # (torch: TypedStorage is deprecated)
        for view in (lambda x: x[1:], lambda x: x.t(), lambda x: x[:, 2], lambda x: x.view(-1)):
            gv, tv = view(g), view(t)
            assert (gv.untyped_storage().data_ptr() == g.untyped_storage().data_ptr()) is \
                (tv.untyped_storage().data_ptr() == t.untyped_storage().data_ptr()) is True
            assert gv.untyped_storage().nbytes() == tv.untyped_storage().nbytes() == 48
            assert gv.storage().size() == tv.storage().size()
            assert gv.storage().tolist() == tv.storage().tolist()
            assert gv.storage_offset() == tv.storage_offset()
            assert gv.storage()[5] == tv.storage()[5]
        assert g.clone().untyped_storage().data_ptr() != g.untyped_storage().data_ptr()
        assert g.storage().dtype is gradient.float32 and g.storage().element_size() == 4
        assert len(g.half().untyped_storage()) == 24
