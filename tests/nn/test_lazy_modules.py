"""Lazy layers against torch.nn's: reprs and state dicts before and after the first call, the
inferred shapes, outputs and gradients on torch's (copied) weights, and checkpoint loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn
from gradient.errors import ShapeError

from .test_layers import load_from_torch, randn, run_both

CASES = [
    ("LazyLinear", lambda nn: nn.LazyLinear(3), [randn(4, 5)]),
    ("LazyLinear-nobias-3d", lambda nn: nn.LazyLinear(2, bias=False), [randn(2, 3, 4)]),
    ("LazyConv1d", lambda nn: nn.LazyConv1d(4, 3, stride=2, padding=1), [randn(2, 3, 9)]),
    ("LazyConv1d-unbatched", lambda nn: nn.LazyConv1d(2, 2), [randn(3, 6)]),
    ("LazyConv2d", lambda nn: nn.LazyConv2d(4, 3, padding=1, groups=2), [randn(2, 2, 5, 5)]),
    ("LazyConv2d-nobias-reflect", lambda nn: nn.LazyConv2d(3, 2, bias=False, padding=1,
                                                          padding_mode="reflect"), [randn(1, 2, 4, 4)]),
    ("LazyConv3d", lambda nn: nn.LazyConv3d(2, 2), [randn(1, 2, 3, 3, 3)]),
    ("LazyConvTranspose1d", lambda nn: nn.LazyConvTranspose1d(3, 4, stride=2), [randn(2, 4, 5)]),
    ("LazyConvTranspose2d", lambda nn: nn.LazyConvTranspose2d(4, 3, stride=2, padding=1,
                                                              output_padding=1, groups=2),
     [randn(1, 2, 3, 3)]),
    ("LazyConvTranspose3d", lambda nn: nn.LazyConvTranspose3d(2, 2), [randn(1, 3, 2, 2, 2)]),
    ("LazyBatchNorm1d", lambda nn: nn.LazyBatchNorm1d(), [randn(6, 4)]),
    ("LazyBatchNorm1d-plain", lambda nn: nn.LazyBatchNorm1d(affine=False, track_running_stats=False),
     [randn(6, 4, 3)]),
    ("LazyBatchNorm2d", lambda nn: nn.LazyBatchNorm2d(momentum=0.3), [randn(3, 2, 4, 4)]),
    ("LazyBatchNorm3d-nobias", lambda nn: nn.LazyBatchNorm3d(bias=False), [randn(2, 3, 2, 2, 2)]),
    ("LazyInstanceNorm1d", lambda nn: nn.LazyInstanceNorm1d(), [randn(3, 4, 6)]),
    ("LazyInstanceNorm2d", lambda nn: nn.LazyInstanceNorm2d(affine=False), [randn(2, 3, 4, 4)]),
    ("LazyInstanceNorm3d", lambda nn: nn.LazyInstanceNorm3d(track_running_stats=False),
     [randn(2, 2, 3, 3, 3)]),
]
IDS = [c[0] for c in CASES]


def _kinds(state):
    return [(k, type(v).__name__) for k, v in state.items()]


@pytest.mark.parametrize("name,make,inputs", CASES, ids=IDS)
def test_uninitialized_repr_and_state_dict_match_torch(name, make, inputs):
    ours, theirs = make(gnn), make(torch.nn)
    assert repr(ours) == repr(theirs)
    assert type(ours).__name__ == type(theirs).__name__
    assert _kinds(ours.state_dict()) == _kinds(theirs.state_dict())
    assert ours.has_uninitialized_params() == theirs.has_uninitialized_params()


@pytest.mark.parametrize("name,make,inputs", CASES, ids=IDS)
def test_first_call_infers_shapes_and_becomes_the_regular_layer(name, make, inputs):
    ours, theirs = make(gnn).double(), make(torch.nn).double()
    # the first call initializes; then copy torch's values over and compare a second call
    ours(gradient.tensor(inputs[0]))
    theirs(torch.tensor(inputs[0]))
    assert type(ours).__name__ == type(theirs).__name__
    assert repr(ours) == repr(theirs)
    assert [(k, tuple(v.shape), type(v).__name__) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape), type(v).__name__) for k, v in theirs.state_dict().items()]
    for p in ours.parameters():
        assert type(p) is gnn.Parameter and p.dtype is gradient.float64
    load_from_torch(ours, theirs)
    run_both(ours, theirs, inputs)


def test_default_init_follows_the_regular_layer():
    gradient.manual_seed(0)
    fc = gnn.LazyLinear(50)
    fc(gradient.randn(2, 400))
    w = fc.weight.detach().numpy()
    assert w.shape == (50, 400) and np.abs(w).max() <= 1 / 20 and w.std() > 0.02
    bn = gnn.LazyBatchNorm1d()
    bn(gradient.randn(4, 3))
    np.testing.assert_array_equal(bn.weight.detach().numpy(), np.ones(3))
    assert int(bn.num_batches_tracked.item()) == 1


def test_load_state_dict_materializes_placeholders():
    trained = torch.nn.Sequential(torch.nn.Conv1d(3, 4, 2), torch.nn.BatchNorm1d(4), torch.nn.Flatten(),
                                  torch.nn.Linear(20, 2))
    ours = gnn.Sequential(gnn.LazyConv1d(4, 2), gnn.LazyBatchNorm1d(), gnn.Flatten(), gnn.LazyLinear(2))
    load_from_torch(ours, trained)
    assert not any(m.has_uninitialized_params() for m in ours if hasattr(m, "has_uninitialized_params"))
    ours.eval(), trained.eval()
    x = randn(2, 3, 6)
    np.testing.assert_allclose(ours(gradient.tensor(x, dtype=gradient.float32)).detach().numpy(),
                               trained(torch.tensor(x, dtype=torch.float32)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    assert type(ours[0]) is gnn.Conv1d and type(ours[3]) is gnn.Linear


def test_uninitialized_checkpoint_into_uninitialized_layer():
    a, b = gnn.LazyLinear(3), gnn.LazyLinear(3)
    result = b.load_state_dict(a.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    assert b.has_uninitialized_params()


def test_to_dtype_before_the_first_call():
    conv = gnn.LazyConv2d(2, 3).to(gradient.float64)
    conv(gradient.randn(1, 3, 5, 5, dtype=gradient.float64))
    assert conv.weight.dtype is gradient.float64 and tuple(conv.weight.shape) == (2, 3, 3, 3)


def test_optimizer_after_first_call_trains():
    model = gnn.Sequential(gnn.LazyLinear(4), gnn.ReLU(), gnn.LazyLinear(1))
    x, y = gradient.randn(16, 3), gradient.randn(16, 1)
    model(x)
    opt = gradient.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_uninitialized_parameter_and_buffer():
    w = gnn.UninitializedParameter()
    assert repr(w) == "<UninitializedParameter>" and w.requires_grad
    w.materialize((2, 3))
    assert type(w) is gnn.Parameter and tuple(w.shape) == (2, 3)
    b = gnn.UninitializedBuffer(dtype=gradient.float64)
    b.materialize(4)
    assert type(b) is gradient.Tensor and b.dtype is gradient.float64 and tuple(b.shape) == (4,)


def test_bad_first_input():
    with pytest.raises(ShapeError, match="3-D .* or 4-D"):
        gnn.LazyConv2d(2, 3)(gradient.randn(5, 5))
    with pytest.raises(ValueError, match="divisible by groups"):
        gnn.LazyConv1d(4, 3, groups=2)(gradient.randn(1, 3, 8))
