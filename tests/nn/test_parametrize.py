"""nn.utils.parametrize, parametrizations.weight_norm/spectral_norm and the legacy
weight_norm/spectral_norm hooks against torch: state-dict keys, values and gradients on copied
state, and the register/remove/assign/cache behaviour."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn
from gradient.nn.utils import parametrizations as GP
from gradient.nn.utils import parametrize as gpz

from .test_layers import assert_close, load_from_torch, randn


def _grads(module):
    return {n: p.grad for n, p in module.named_parameters()}


def _compare_train_step(ours, theirs, x, steps=2):
    """Forward/backward ``steps`` times on both (buffers evolve in training mode); compare the
    outputs, every parameter's gradient and the state dicts."""
    for _ in range(steps):
        out_o, out_t = ours(gradient.tensor(x)), theirs(torch.tensor(x))
        assert_close(out_o, out_t, what="output")
        out_o.pow(2).sum().backward()
        out_t.pow(2).sum().backward()
    go, gt = _grads(ours), _grads(theirs)
    assert list(go) == list(gt)
    for name in gt:
        assert_close(go[name], gt[name], what=f"grad of {name}")
    so, st = ours.state_dict(), theirs.state_dict()
    assert list(so) == list(st)
    for k in st:
        assert_close(so[k], st[k], what=k)


@pytest.mark.parametrize("make,dim,x", [
    (lambda nn: nn.Linear(4, 3), 0, randn(5, 4)),
    (lambda nn: nn.Conv1d(2, 3, 2), 1, randn(2, 2, 5)),
    (lambda nn: nn.Linear(4, 3), None, randn(5, 4)),
])
def test_weight_norm_parametrization_matches_torch(make, dim, x):
    theirs = torch.nn.utils.parametrizations.weight_norm(make(torch.nn).double(), dim=dim)
    ours = GP.weight_norm(make(gnn).double(), dim=dim)
    assert repr(ours) == repr(theirs)
    load_from_torch(ours, theirs)
    _compare_train_step(ours, theirs, x)


@pytest.mark.parametrize("make,x", [
    (lambda nn: nn.Linear(4, 3), randn(5, 4)),
    (lambda nn: nn.Conv2d(2, 3, 2), randn(1, 2, 4, 4)),
    (lambda nn: nn.ConvTranspose1d(3, 2, 2), randn(2, 3, 4)),
])
def test_spectral_norm_parametrization_matches_torch(make, x):
    theirs = torch.nn.utils.parametrizations.spectral_norm(make(torch.nn).double())
    ours = GP.spectral_norm(make(gnn).double())
    assert repr(ours) == repr(theirs)
    load_from_torch(ours, theirs)  # the same power-iteration vectors
    _compare_train_step(ours, theirs, x)
    ours.eval(), theirs.eval()
    _compare_train_step(ours, theirs, x, steps=1)


def test_spectral_norm_starts_close_to_the_true_norm():
    gradient.manual_seed(0)
    layer = GP.spectral_norm(gnn.Linear(6, 5).double())
    layer.eval()
    top = np.linalg.svd(layer.weight.detach().numpy(), compute_uv=False)[0]
    assert abs(top - 1.0) < 1e-3


def test_legacy_weight_norm_matches_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.nn.utils.weight_norm(torch.nn.Conv1d(2, 3, 2).double(), dim=None)
        with pytest.warns(FutureWarning, match="deprecated"):
            ours = gnn.utils.weight_norm(gnn.Conv1d(2, 3, 2).double(), dim=None)
    assert repr(ours) == repr(theirs)
    load_from_torch(ours, theirs)
    _compare_train_step(ours, theirs, randn(2, 2, 5))
    gnn.utils.remove_weight_norm(ours)
    torch.nn.utils.remove_weight_norm(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]
    assert_close(ours.weight, theirs.weight)
    with pytest.raises(ValueError, match="not found"):
        gnn.utils.remove_weight_norm(ours)


def test_legacy_spectral_norm_matches_torch():
    theirs = torch.nn.utils.spectral_norm(torch.nn.Linear(4, 3).double())
    ours = gnn.utils.spectral_norm(gnn.Linear(4, 3).double())
    load_from_torch(ours, theirs)
    _compare_train_step(ours, theirs, randn(5, 4))
    gnn.utils.remove_spectral_norm(ours)
    torch.nn.utils.remove_spectral_norm(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]
    assert_close(ours.weight, theirs.weight)
    with pytest.raises(RuntimeError, match="two spectral_norm"):
        gnn.utils.spectral_norm(gnn.utils.spectral_norm(gnn.Linear(2, 2)))


class Symmetric(gnn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)


class Scale(gnn.Module):
    def forward(self, X):
        return X * 2.0

    def right_inverse(self, X):
        return X / 2.0


def test_the_legacy_functions_stay_the_package_names_whatever_imports_first():
    # as torch.nn.utils.weight_norm: the function, even after its module was imported by
    # name first (which binds the module to that name in a package that had not bound it)
    code = ("import gradient.nn.utils.weight_norm, gradient.nn.utils.spectral_norm\n"
            "import gradient\n"
            "u = gradient.nn.utils\n"
            "assert all(callable(f) for f in (u.weight_norm, u.remove_weight_norm,\n"
            "                                 u.spectral_norm, u.remove_spectral_norm))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_register_read_assign_and_remove():
    layer = gnn.Linear(3, 3)
    before = layer.weight.detach().numpy().copy()
    gpz.register_parametrization(layer, "weight", Scale())
    assert type(layer).__name__ == "ParametrizedLinear" and isinstance(layer, gnn.Linear)
    assert gpz.is_parametrized(layer) and gpz.is_parametrized(layer, "weight")
    assert not gpz.is_parametrized(layer, "bias")
    # right_inverse stored weight / 2, so the parametrized value is the original weight
    np.testing.assert_allclose(layer.weight.detach().numpy(), before, rtol=1e-6)
    assert list(layer.state_dict()) == ["bias", "parametrizations.weight.original"]
    layer.weight = gradient.ones(3, 3)
    np.testing.assert_allclose(layer.parametrizations.weight.original.detach().numpy(), 0.5)
    gpz.register_parametrization(layer, "weight", Symmetric())   # chained
    w = layer.weight.detach().numpy()
    np.testing.assert_allclose(w, w.T)
    out = layer(gradient.randn(2, 3))
    out.sum().backward()
    assert layer.parametrizations.weight.original.grad is not None
    gpz.remove_parametrizations(layer, "weight")
    assert type(layer) is gnn.Linear and list(layer.state_dict()) == ["bias", "weight"]
    assert isinstance(layer.weight, gnn.Parameter)
    np.testing.assert_allclose(layer.weight.detach().numpy(), w)


def test_remove_without_leaving_parametrized_keeps_the_original():
    layer = gnn.Linear(2, 2)
    gpz.register_parametrization(layer, "weight", Scale())
    original = layer.parametrizations.weight.original
    gpz.remove_parametrizations(layer, "weight", leave_parametrized=False)
    assert layer.weight is original


def test_cached_computes_once():
    calls = []

    class Count(gnn.Module):
        def forward(self, X):
            calls.append(1)
            return X

    layer = gnn.Linear(2, 2)
    gpz.register_parametrization(layer, "weight", Count())
    calls.clear()
    with gpz.cached():
        a, b = layer.weight, layer.weight
    assert a is b and len(calls) == 1
    layer.weight
    assert len(calls) == 2


class Flatten(gnn.Module):
    def forward(self, X):
        return X.reshape(-1)


def test_parametrize_buffer_and_errors():
    bn = gnn.BatchNorm1d(3)
    gpz.register_parametrization(bn, "running_var", Scale())
    assert "parametrizations.running_var.original" in bn.state_dict()
    with pytest.raises(ValueError, match="does not have a parameter"):
        gpz.register_parametrization(gnn.Linear(2, 2), "nope", Scale())
    with pytest.raises(ValueError, match="shape or dtype"):
        gpz.register_parametrization(gnn.Linear(2, 3), "weight", Flatten())
    with pytest.raises(ValueError, match="does not have a parametrization"):
        gpz.remove_parametrizations(gnn.Linear(2, 2), "weight")
    with pytest.raises(RuntimeError, match="right_inverse"):
        layer = gpz.register_parametrization(gnn.Linear(2, 2), "weight", Symmetric())
        layer.weight = gradient.ones(2, 2)


def test_parameters_to_vector_round_trip_matches_torch():
    ours, theirs = gnn.Linear(3, 2), torch.nn.Linear(3, 2)
    load_from_torch(ours, theirs)
    vo = gnn.utils.parameters_to_vector(ours.parameters())
    vt = torch.nn.utils.parameters_to_vector(theirs.parameters())
    assert_close(vo, vt)
    gnn.utils.vector_to_parameters(vo * 2, ours.parameters())
    assert_close(ours.bias, theirs.bias * 2)


def _orthogonal_pair(shape, orthogonal_map, use_trivialization, seed=0):
    """The same Linear in both libraries with the same weight, made orthogonal."""
    rng = np.random.default_rng(seed)
    w, b = rng.standard_normal(shape), rng.standard_normal(shape[0])
    layers = []
    for lib in (gradient, torch):
        layer = lib.nn.Linear(shape[1], shape[0], dtype=lib.float64)
        with lib.no_grad():
            layer.weight.copy_(lib.tensor(w))
            layer.bias.copy_(lib.tensor(b))
        lib.nn.utils.parametrizations.orthogonal(layer, orthogonal_map=orthogonal_map,
                                                 use_trivialization=use_trivialization)
        layers.append(layer)
    return layers


@pytest.mark.parametrize("shape,orthogonal_map,trivial", [
    ((4, 4), None, True), ((4, 4), "cayley", True), ((4, 4), "householder", True),
    ((5, 3), None, False), ((3, 5), "householder", False), ((4, 4), "householder", False),
    ((4, 4), "matrix_exp", False)])
def test_orthogonal_matches_torch_and_trains_orthogonal(shape, orthogonal_map, trivial):
    ours, theirs = _orthogonal_pair(shape, orthogonal_map, trivial)
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(),
                               atol=1e-12)
    np.testing.assert_allclose(ours.parametrizations.weight.original.detach().numpy(),
                               theirs.parametrizations.weight.original.detach().numpy(),
                               atol=1e-12)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, shape[1])), rng.standard_normal((6, shape[0]))
    for lib, layer in ((gradient, ours), (torch, theirs)):
        opt = lib.optim.SGD(layer.parameters(), lr=0.1)
        for _ in range(5):
            opt.zero_grad()
            ((layer(lib.tensor(x)) - lib.tensor(y)) ** 2).mean().backward()
            opt.step()
    w = ours.weight.detach().numpy()
    np.testing.assert_allclose(w, theirs.weight.detach().numpy(), atol=1e-10)
    gram = w @ w.T if shape[0] < shape[1] else w.T @ w
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-12)


def test_orthogonal_assignment_resets_the_base_and_errors():
    layer = gradient.nn.utils.parametrizations.orthogonal(gradient.nn.Linear(4, 6))
    w = layer.weight.detach().numpy()
    np.testing.assert_allclose(w.T @ w, np.eye(4), atol=1e-5)     # (completed at random)
    q = np.linalg.qr(np.random.default_rng(2).standard_normal((6, 4)))[0].astype(np.float32)
    layer.weight = gradient.tensor(q)
    np.testing.assert_allclose(layer.weight.detach().numpy(), q, atol=1e-5)
    with pytest.raises(ValueError, match="matrix"):
        gradient.nn.utils.parametrizations.orthogonal(gradient.nn.LayerNorm(3))
    with pytest.raises(ValueError, match="orthogonal_map"):
        gradient.nn.utils.parametrizations.orthogonal(gradient.nn.Linear(2, 2), orthogonal_map="qr")

