"""autograd.forward_ad (dual tensors) against torch's forward-mode AD."""

import numpy as np
import pytest
import torch

import gradient
import gradient.autograd.forward_ad as fwAD
import torch.autograd.forward_ad as torch_fwAD

X = np.array([0.5, -1.2, 2.0])
V = np.array([1.0, 0.3, -0.7])
W = np.array([[0.2, -0.1, 0.4], [1.0, 0.5, -0.3]])


def jvp_of(lib, ad, fn):
    with ad.dual_level():
        dual = ad.make_dual(lib.tensor(X), lib.tensor(V))
        out = fn(lib, dual)
        primal, tangent = ad.unpack_dual(out)
        return primal.detach().numpy(), None if tangent is None else tangent.detach().numpy()


FUNCTIONS = {
    "elementwise": lambda m, x: (x * x).sin() + x.exp(),
    "matmul": lambda m, x: m.tanh(m.tensor(W) @ x),
    "softmax": lambda m, x: m.softmax(x * 2, 0),
    "reduction": lambda m, x: (x ** 3).sum(),
    "independent": lambda m, x: m.ones(3) * 2,
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_tangents_are_torchs(name):
    ours = jvp_of(gradient, fwAD, FUNCTIONS[name])
    theirs = jvp_of(torch, torch_fwAD, FUNCTIONS[name])
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
    if theirs[1] is None:
        assert ours[1] is None
    else:
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-10, atol=1e-12)


def test_two_duals_add_their_directions_and_the_dual_itself_unpacks():
    with fwAD.dual_level():
        a = fwAD.make_dual(gradient.tensor(X), gradient.tensor(V))
        b = fwAD.make_dual(gradient.tensor(X[::-1].copy()), gradient.tensor([1.0, 1.0, 1.0]))
        tangent = fwAD.unpack_dual(a * b).tangent.numpy()
        assert fwAD.unpack_dual(a).tangent.tolist() == V.tolist()
    np.testing.assert_allclose(tangent, V * X[::-1] + X * 1.0)


def test_a_primal_that_requires_grad_keeps_its_graph():
    results = []
    for lib, ad in ((gradient, fwAD), (torch, torch_fwAD)):
        w = lib.tensor(X, requires_grad=True)
        with ad.dual_level():
            out = (ad.make_dual(w, lib.tensor(V)) ** 3).sum()
            primal, tangent = ad.unpack_dual(out)
            assert primal.requires_grad
            (primal + tangent).backward()          # d/dw (sum w^3 + 3 sum w^2 v)
        results.append(w.grad.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


def test_what_is_refused():
    with pytest.raises(gradient.errors.AutogradError, match="no level"):
        fwAD.make_dual(gradient.ones(2), gradient.ones(2))
    with fwAD.dual_level():
        with pytest.raises(gradient.errors.ShapeError, match="shape"):
            fwAD.make_dual(gradient.ones(2), gradient.ones(3))
        with pytest.raises(gradient.errors.AutogradError, match="nested"):
            fwAD.enter_dual_level()
        with gradient.no_grad(), pytest.raises(gradient.errors.AutogradError, match="no_grad"):
            fwAD.make_dual(gradient.ones(2), gradient.ones(2))
    assert fwAD.unpack_dual(gradient.ones(2)).tangent is None       # outside any level
