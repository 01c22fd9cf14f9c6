"""BatchNorm1d/2d/3d against torch.nn: outputs, gradients, running statistics, train/eval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn

from .test_layers import assert_close, load_from_torch, names_and_shapes, randn, run_both

SHAPES = {"BatchNorm1d": [(8, 3), (6, 3, 5)], "BatchNorm2d": [(4, 3, 5, 4)],
          "BatchNorm3d": [(2, 3, 3, 4, 2)]}
OPTIONS = [
    {},
    {"momentum": 0.3, "eps": 1e-3},
    {"momentum": None},                       # cumulative average
    {"affine": False},
    {"bias": False},
    {"track_running_stats": False},
]


def make_pair(cls: str, **kwargs):
    theirs = getattr(torch.nn, cls)(3, **kwargs).double()
    ours = getattr(gnn, cls)(3, **kwargs).double()
    # non-trivial affine parameters, so that their gradients and effect are checked
    with torch.no_grad():
        if theirs.weight is not None:
            theirs.weight.uniform_(0.5, 1.5)
        if theirs.bias is not None:
            theirs.bias.uniform_(-0.5, 0.5)
    load_from_torch(ours, theirs)
    return ours, theirs


def assert_same_buffers(ours, theirs):
    buffers_t = dict(theirs.named_buffers())
    buffers_o = dict(ours.named_buffers())
    assert list(buffers_o) == list(buffers_t)
    for name, bt in buffers_t.items():
        assert buffers_o[name].dtype.name == str(bt.dtype).replace("torch.", ""), name
        assert_close(buffers_o[name], bt, what=name)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
@pytest.mark.parametrize("cls,shape", [(c, s) for c, shapes in SHAPES.items() for s in shapes],
                         ids=lambda v: v if isinstance(v, str) else "x".join(map(str, v)))
def test_training_steps_then_eval_match_torch(cls, shape, options):
    ours, theirs = make_pair(cls, **options)
    rng = np.random.default_rng(7)
    for step in range(3):                                  # training: batch statistics
        x = rng.standard_normal(shape) * (step + 1) + step
        run_both(ours, theirs, [x])
        assert_same_buffers(ours, theirs)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape) * 2 - 1                  # eval: running statistics
    run_both(ours, theirs, [x])
    assert_same_buffers(ours, theirs)                     # untouched in eval mode


def test_running_stats_values_and_counter():
    bn = gnn.BatchNorm1d(2, momentum=0.5)
    x = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 60.0]])
    bn(gradient.tensor(x))
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.5 * x.mean(0), rtol=1e-6)
    # the running variance takes the unbiased batch variance
    np.testing.assert_allclose(bn.running_var.numpy(), 0.5 + 0.5 * x.var(0, ddof=1), rtol=1e-6)
    assert bn.num_batches_tracked.item() == 1 and bn.num_batches_tracked.dtype is gradient.int64
    bn(gradient.tensor(x))
    assert bn.num_batches_tracked.item() == 2
    bn.reset_running_stats()
    assert bn.num_batches_tracked.item() == 0
    np.testing.assert_array_equal(bn.running_var.numpy(), [1, 1])


def test_cumulative_average_with_momentum_none():
    bn = gnn.BatchNorm1d(1, momentum=None)
    means = []
    for v in (1.0, 2.0, 6.0):
        x = np.array([[v - 1], [v + 1]])
        bn(gradient.tensor(x))
        means.append(v)
        np.testing.assert_allclose(bn.running_mean.numpy(), [np.mean(means)], rtol=1e-6)


def test_eval_mode_uses_running_stats():
    bn = gnn.BatchNorm2d(3, affine=False)
    bn.running_mean.copy_(gradient.tensor([1.0, 2.0, 3.0]))
    bn.running_var.copy_(gradient.tensor([4.0, 1.0, 0.25]))
    bn.eval()
    x = randn(2, 3, 2, 2).astype(np.float32)
    expect = (x - np.array([1, 2, 3]).reshape(1, 3, 1, 1)) / np.sqrt(
        np.array([4, 1, 0.25]).reshape(1, 3, 1, 1) + 1e-5)
    np.testing.assert_allclose(bn(gradient.tensor(x)).numpy(), expect, rtol=1e-5, atol=1e-6)
    assert bn.num_batches_tracked.item() == 0
    # a single sample is fine in eval mode but not in training mode (as in torch)
    bn(gradient.randn(1, 3, 1, 1))
    bn.train()
    with pytest.raises(ValueError, match="more than 1 value"):
        bn(gradient.randn(1, 3, 1, 1))


def test_no_running_stats_uses_batch_stats_in_eval():
    ours, theirs = make_pair("BatchNorm1d", track_running_stats=False)
    ours.eval()
    theirs.eval()
    run_both(ours, theirs, [randn(5, 3)])
    assert ours.running_mean is None and ours.num_batches_tracked is None


@pytest.mark.parametrize("cls", ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"])
def test_names_buffers_repr(cls):
    for kwargs in ({}, {"affine": False, "track_running_stats": False}, {"momentum": None},
                   {"bias": False}):
        ours, theirs = getattr(gnn, cls)(4, **kwargs), getattr(torch.nn, cls)(4, **kwargs)
        assert names_and_shapes(ours, "named_parameters") == names_and_shapes(theirs, "named_parameters")
        assert names_and_shapes(ours, "named_buffers") == names_and_shapes(theirs, "named_buffers")
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert repr(ours) == repr(theirs)


def test_wrong_input_rank():
    with pytest.raises(ValueError, match="2D or 3D"):
        gnn.BatchNorm1d(3)(gradient.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match="4D"):
        gnn.BatchNorm2d(3)(gradient.randn(2, 3))
    with pytest.raises(ValueError, match="5D"):
        gnn.BatchNorm3d(3)(gradient.randn(2, 3, 4, 4))
