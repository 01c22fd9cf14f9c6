"""optim.Muon against torch.optim.Muon: the same weights after the same steps, tall and wide
matrices, with and without Nesterov, both learning-rate adjustments."""

import numpy as np
import pytest
import torch

import gradient
from gradient.optim import OptimizerError

rng = np.random.default_rng(0)
X = rng.standard_normal((16, 4)).astype(np.float32)
Y = rng.standard_normal((16, 6)).astype(np.float32)


def train(lib, weight, inputs, targets, steps=6, **options):
    w = lib.nn.Parameter(lib.tensor(weight))
    opt = lib.optim.Muon([w], lr=0.02, **options)
    for _ in range(steps):
        opt.zero_grad()
        ((lib.tensor(inputs) @ w.T - lib.tensor(targets)) ** 2).mean().backward()
        opt.step()
    return w.detach().numpy(), opt


@pytest.mark.parametrize("options", [{}, {"nesterov": False}, {"momentum": 0.8, "ns_steps": 3},
                                     {"adjust_lr_fn": "match_rms_adamw", "weight_decay": 0.0},
                                     {"adjust_lr_fn": "original", "eps": 1e-5}])
@pytest.mark.parametrize("shape", ["tall", "wide"])
def test_steps_leave_torchs_weights(options, shape):
    w0 = rng.standard_normal((6, 4)).astype(np.float32)
    inputs, targets = (X, Y) if shape == "tall" else (Y, X)
    w0 = w0 if shape == "tall" else np.ascontiguousarray(w0.T)
    ours, _ = train(gradient, w0, inputs, targets, **options)
    theirs, _ = train(torch, w0, inputs, targets, **options)
    # bfloat16 products summed in another order may round one way or the other: a few
    # bfloat16 steps at most, scaled by the learning rate
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert np.abs(ours - w0).max() > 1e-2


def test_the_update_is_nearly_orthogonal():
    g = gradient.tensor(rng.standard_normal((8, 5)).astype(np.float32))
    o = gradient.optim.muon.newton_schulz(g, (3.4445, -4.775, 2.0315), 5, 1e-7)
    singular = np.linalg.svd(o.float().numpy(), compute_uv=False)
    assert o.dtype is gradient.bfloat16 and ((singular > 0.5) & (singular < 1.5)).all()


def test_state_and_refusals_as_torchs():
    w0 = rng.standard_normal((6, 4)).astype(np.float32)
    _, ours = train(gradient, w0, X, Y, steps=1)
    _, theirs = train(torch, w0, X, Y, steps=1)
    assert sorted(ours.state_dict()["param_groups"][0]) == sorted(theirs.state_dict()["param_groups"][0])
    (state,) = ours.state.values()
    assert list(state) == ["momentum_buffer"]
    with pytest.raises(OptimizerError, match="2D parameters"):
        gradient.optim.Muon([gradient.nn.Parameter(gradient.zeros(3))])
    with pytest.raises(OptimizerError, match="not supported"):
        gradient.optim.Muon([gradient.nn.Parameter(gradient.zeros(2, 2))], adjust_lr_fn="other")
