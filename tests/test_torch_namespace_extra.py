"""torch's top-level names ported programs reach for that gradient added late: the dropout
forms with ``train``, the deprecated norms and ``trapz``, the ``*_copy`` views, ``binomial``,
autocast's state functions, the determinism and warning switches, and ``cond``/``while_loop``;
each against torch."""

import warnings

import numpy as np
import pytest
import torch

import gradient

LIBS = pytest.mark.parametrize("lib", [gradient, torch], ids=["gradient", "torch"])


@LIBS
def test_dropout_forms_with_train_by_position(lib):
    x = lib.ones(4, 3, 5)
    assert lib.dropout(x, 0.5, False) is x or lib.equal(lib.dropout(x, 0.5, False), x)
    y = lib.feature_dropout(x, 0.5, True)
    per_channel = y.reshape(4, 3, 5)
    assert ((per_channel == 0).all(-1) | (per_channel == 2).all(-1)).all()   # whole channels
    assert lib.alpha_dropout(x, 0.5, False).sum().item() == 60.0
    assert lib.feature_alpha_dropout(x, 0.3, False).sum().item() == 60.0
    z = lib.ones(3)
    assert lib.dropout_(z, 0.0, True) is z
    assert lib.rrelu(-lib.ones(2)).tolist() == pytest.approx([-(1 / 8 + 1 / 3) / 2] * 2)


def test_deprecated_norms_trapz_and_detach_as_torchs():
    a = np.random.default_rng(0).standard_normal((4, 3, 5))
    for call in (lambda m, t: m.frobenius_norm(t, (0, 2)), lambda m, t: m.frobenius_norm(t, [1], True),
                 lambda m, t: m.nuclear_norm(t, (1, 2)), lambda m, t: m.nuclear_norm(t[0], True),
                 lambda m, t: m.nuclear_norm(t, (0, 2), True), lambda m, t: m.trapz(t, dim=1)):
        ours = gradient.tensor(a, requires_grad=True)
        theirs = torch.tensor(a, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")           # torch's deprecation notes
            o, t = call(gradient, ours), call(torch, theirs)
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=1e-12)
        o.sum().backward()
        t.sum().backward()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert not gradient.detach(gradient.ones(1, requires_grad=True)).requires_grad


COPIES = [("permute_copy", ((1, 0, 2),)), ("view_copy", ((6, 2),)), ("t_copy", None),
          ("transpose_copy", (0, 2)), ("squeeze_copy", None), ("unsqueeze_copy", (1,)),
          ("diagonal_copy", (0, 0, 1)), ("expand_copy", ((2, 1, 3, 2),)), ("select_copy", (1, 0)),
          ("split_copy", (1,)), ("split_with_sizes_copy", ([2, 1], 1)), ("unbind_copy", (2,)),
          ("unfold_copy", (1, 2, 1)), ("detach_copy", ()), ("alias_copy", ()),
          ("slice_copy", (1, 0, 3, 2)), ("as_strided_copy", ((2, 2), (1, 2)))]


@pytest.mark.parametrize("name,args", COPIES, ids=[c[0] for c in COPIES])
def test_copies_of_views_are_torchs_values_in_memory_of_their_own(name, args):
    a = np.arange(12.0).reshape(2, 3, 2)
    if name == "t_copy":
        a = a[0]
    if name in ("squeeze_copy", "expand_copy"):
        a = a[:1]
    ours, theirs = gradient.tensor(a), torch.tensor(a)
    o = getattr(gradient, name)(ours, *(args or ()))
    t = getattr(torch, name)(theirs, *(args or ()))
    for x, y in zip(o if isinstance(o, tuple) else (o,), t if isinstance(t, tuple) else (t,)):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
        x.fill_(-1.0)                                  # a copy: the source is untouched
    np.testing.assert_array_equal(ours.numpy(), a)


def test_binomial_draws_have_the_binomial_moments():
    gradient.manual_seed(0)
    n, p = gradient.full((20000,), 12.0), gradient.full((20000,), 0.3)
    draws = gradient.binomial(n, p).numpy()
    assert draws.dtype == np.float32 and draws.min() >= 0 and draws.max() <= 12
    assert abs(draws.mean() - 3.6) < 0.05 and abs(draws.var() - 2.52) < 0.1
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gradient.binomial(gradient.ones(2), gradient.full((2,), 1.5))


@LIBS
def test_autocast_state_functions(lib):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # torch deprecates some of these names
        assert lib.get_autocast_cpu_dtype() == lib.bfloat16
        assert lib.get_autocast_gpu_dtype() == lib.float16
        assert not lib.is_autocast_cpu_enabled()
        lib.set_autocast_enabled("cpu", True)
        try:
            assert lib.is_autocast_enabled("cpu") and lib.is_autocast_cpu_enabled()
            assert (lib.ones(2, 2) @ lib.ones(2, 2)).dtype == lib.bfloat16
        finally:
            lib.set_autocast_enabled("cpu", False)
        lib.set_autocast_dtype("cpu", lib.float16)
        assert lib.get_autocast_dtype("cpu") == lib.float16
        lib.set_autocast_cpu_dtype(lib.bfloat16)
        assert lib.get_autocast_cpu_dtype() == lib.bfloat16
        depth = lib.autocast_increment_nesting()
        assert lib.autocast_decrement_nesting() == depth - 1
        assert lib.is_autocast_cache_enabled()
        lib.clear_autocast_cache()


@LIBS
def test_determinism_warning_and_anomaly_switches(lib):
    assert lib.get_deterministic_debug_mode() == 0
    lib.set_deterministic_debug_mode("warn")
    try:
        assert lib.get_deterministic_debug_mode() == 1
        assert lib.is_deterministic_algorithms_warn_only_enabled()
        lib.set_deterministic_debug_mode(2)
        assert lib.are_deterministic_algorithms_enabled()
        assert not lib.is_deterministic_algorithms_warn_only_enabled()
    finally:
        lib.set_deterministic_debug_mode("default")
    assert not lib.are_deterministic_algorithms_enabled()
    assert not lib.is_warn_always_enabled()
    lib.set_anomaly_enabled(True)
    try:
        assert lib.is_anomaly_enabled()
    finally:
        lib.set_anomaly_enabled(False)
    lib.init_num_threads()


@LIBS
def test_cond_and_while_loop_run_eagerly(lib):
    x = lib.tensor([0.5, -1.0], requires_grad=True)
    y = lib.cond(x.sum() > 0, lambda t: t.sin(), lambda t: t.cos(), (x,))
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -np.sin([0.5, -1.0]), rtol=1e-6)
    i, z = lib.while_loop(lambda i, z: i < 3, lambda i, z: (i + 1, z * 2),
                          (lib.tensor(0), lib.ones(2)))
    assert i.item() == 3 and z.tolist() == [8.0, 8.0]
    with pytest.raises((ValueError, RuntimeError), match="single-element"):
        lib.cond(lib.ones(2) > 0, lambda: lib.ones(1), lambda: lib.zeros(1))


POOLS = [("max_pool1d_with_indices", (2, 8), (2,)), ("max_pool2d_with_indices", (1, 2, 6, 6), (3,)),
         ("max_pool3d_with_indices", (1, 1, 4, 4, 4), (2,)),
         ("adaptive_max_pool1d_with_indices", (2, 8), (3,)),
         ("adaptive_max_pool2d_with_indices", (1, 2, 6, 6), (4,)),
         ("adaptive_max_pool3d_with_indices", (1, 1, 4, 4, 4), (3,))]


@pytest.mark.parametrize("name,shape,args", POOLS, ids=[p[0] for p in POOLS])
def test_functional_pools_with_indices_as_torchs(name, shape, args):
    x = np.random.default_rng(1).standard_normal(shape)
    ours = getattr(gradient.nn.functional, name)(gradient.tensor(x), *args)
    theirs = getattr(torch.nn.functional, name)(torch.tensor(x), *args)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.numpy(), t.numpy())


@LIBS
def test_functional_and_nn_odds_and_ends(lib):
    F = lib.nn.functional
    assert not F.has_torch_function((lib.ones(1),)) and not F.has_torch_function_unary(lib.ones(1))
    assert not F.has_torch_function_variadic(lib.ones(1), 2)
    x = lib.ones(2)
    assert F.selu_(x) is x and F.celu_(lib.ones(1)).item() == 1.0
    logp = lib.tensor(np.log(np.full((1, 3, 2, 2), 1 / 3)))
    target = lib.tensor([[[0, 1], [2, 0]]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert lib.nn.NLLLoss2d()(logp, target).item() == pytest.approx(np.log(3))
    kwargs = lib.nn.factory_kwargs({"dtype": lib.float64, "factory_kwargs": {"device": "cpu"}})
    assert kwargs == {"dtype": lib.float64, "device": "cpu"}
    with pytest.raises(TypeError):
        lib.nn.factory_kwargs({"bias": True})
    layer = lib.nn.Linear(2, 2)
    layer(lib.ones(1, 2)).sum().backward()
    with pytest.warns(FutureWarning):
        norm = lib.nn.utils.clip_grad_norm(layer.parameters(), 0.1)
    assert float(norm) == pytest.approx(float(np.sqrt(2 * 2 + 2)))


@LIBS
def test_constants_as_torchs(lib):
    assert (lib.pi, lib.e, lib.inf) == (np.pi, np.e, np.inf) and np.isnan(lib.nan)
    assert all(type(c) is float for c in (lib.pi, lib.e, lib.inf, lib.nan))
    assert lib.newaxis is None
    assert lib.arange(3)[:, lib.newaxis].shape == (3, 1)
    assert lib.full((2,), -lib.inf).isinf().all()


class _Config:
    pass


@LIBS
def test_serialization_allowlist_as_torchs(lib, tmp_path):
    serialization = lib.serialization
    before = serialization.get_safe_globals()
    try:
        serialization.add_safe_globals([_Config])
        assert _Config in serialization.get_safe_globals() and _Config not in before
        pair = (_Config, "tests._Config")
        with serialization.safe_globals([pair]):
            assert pair in serialization.get_safe_globals()
        assert pair not in serialization.get_safe_globals()
        assert _Config in serialization.get_safe_globals()
        path = tmp_path / "ckpt"
        serialization.save({"w": lib.ones(2), "step": 3}, path)
        with serialization.safe_globals([_Config]):
            loaded = serialization.load(path, weights_only=True)
        assert loaded["step"] == 3 and loaded["w"].tolist() == [1.0, 1.0]
        assert serialization.get_unsafe_globals_in_checkpoint(path) == []
        if lib is gradient:              # (torch keeps anything it is given)
            with pytest.raises(TypeError, match="expected classes or functions"):
                serialization.add_safe_globals([3])
            with pytest.raises(TypeError, match="module.name"):
                serialization.add_safe_globals([(_Config, 3)])
    finally:
        serialization.clear_safe_globals()
        serialization.add_safe_globals(before)
    assert set(map(repr, serialization.get_safe_globals())) == set(map(repr, before))


def test_serialization_reaches_the_checkpoint_reader(tmp_path):
    path = tmp_path / "not-a-checkpoint"
    path.write_bytes(b"\x80\x02}q\x00.")           # a pickle: never read as one
    with pytest.raises(gradient.FileFormatError):
        gradient.serialization.get_unsafe_globals_in_checkpoint(path)


@LIBS
def test_hooks_common_types_and_types_modules(lib):
    from importlib import import_module
    hooks_module = import_module(lib.__name__ + ".utils.hooks")
    common = import_module(lib.__name__ + ".nn.common_types")
    types_module = import_module(lib.__name__ + ".types")
    from collections import OrderedDict      # (torch's handles hold their dicts weakly)
    hooks = OrderedDict()
    handle = hooks_module.RemovableHandle(hooks)          # a registry of one's own
    hooks[handle.id] = print
    extra = OrderedDict({handle.id: len})
    second = hooks_module.RemovableHandle(OrderedDict(), extra_dict=extra)
    assert second.id != handle.id
    with handle:
        assert list(hooks.values()) == [print]
    assert not hooks
    handle2 = hooks_module.RemovableHandle(hooks, extra_dict=[extra])
    hooks[handle2.id] = print
    extra[handle2.id] = len
    handle2.remove()
    assert handle2.id not in hooks and handle2.id not in extra

    @hooks_module.unserializable_hook
    def quiet(grad):
        return grad

    x = lib.ones(2, requires_grad=True)
    x.register_hook(quiet)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hooks_module.warn_if_has_hooks(x)                 # the marked hook: no warning
    x.register_hook(lambda g: g)
    with pytest.warns(UserWarning, match="will not be serialized"):
        hooks_module.warn_if_has_hooks(x)
    for name in ("_size_1_t", "_size_2_t", "_size_3_t", "_size_any_t", "_size_2_opt_t",
                 "_ratio_2_t", "_ratio_any_t", "_tensor_list_t", "_maybe_indices_t"):
        assert getattr(common, name) is not None
    assert int in common._size_2_t.__args__
    for name in ("Number", "Device", "_size", "_dtype", "_device", "_TensorOrTensors"):
        assert getattr(types_module, name) is not None
    assert isinstance(lib.float32, types_module._dtype)
    assert isinstance(lib.device("cpu"), types_module._device)
