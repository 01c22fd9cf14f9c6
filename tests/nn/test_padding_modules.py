"""Padding layers (Constant/Zero/Reflection/Replication/CircularPad{1,2,3}d) against torch.nn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn
from gradient.errors import ShapeError

from .test_layers import build, names_and_shapes, randn, run_both

CASES = [
    ("ConstantPad1d", lambda nn: nn.ConstantPad1d((1, 2), 3.5), [randn(2, 3, 4)]),
    ("ConstantPad1d-int-4d", lambda nn: nn.ConstantPad1d(2, -1.0), [randn(2, 2, 3, 4)]),
    ("ConstantPad2d", lambda nn: nn.ConstantPad2d((1, 0, 2, 1), 0.5), [randn(2, 3, 4)]),
    ("ConstantPad2d-crop", lambda nn: nn.ConstantPad2d((-1, 2, 0, -1), 0.5), [randn(1, 2, 3, 4)]),
    ("ConstantPad3d", lambda nn: nn.ConstantPad3d(1, 2.0), [randn(1, 2, 2, 3, 2)]),
    ("ZeroPad1d", lambda nn: nn.ZeroPad1d((0, 3)), [randn(2, 4)]),
    ("ZeroPad2d", lambda nn: nn.ZeroPad2d((1, 2, 3, 4)), [randn(1, 2, 3, 3)]),
    ("ZeroPad3d", lambda nn: nn.ZeroPad3d(1), [randn(2, 2, 2, 3)]),
    ("ReflectionPad1d", lambda nn: nn.ReflectionPad1d((2, 1)), [randn(2, 3, 4)]),
    ("ReflectionPad1d-unbatched", lambda nn: nn.ReflectionPad1d(3), [randn(3, 4)]),
    ("ReflectionPad2d", lambda nn: nn.ReflectionPad2d((1, 2, 2, 0)), [randn(2, 2, 4, 5)]),
    ("ReflectionPad3d", lambda nn: nn.ReflectionPad3d(1), [randn(1, 2, 3, 3, 2)]),
    ("ReplicationPad1d", lambda nn: nn.ReplicationPad1d((3, 1)), [randn(2, 3, 4)]),
    ("ReplicationPad2d", lambda nn: nn.ReplicationPad2d(2), [randn(2, 3, 3)]),
    ("ReplicationPad3d", lambda nn: nn.ReplicationPad3d((1, 0, 2, 1, 0, 1)), [randn(1, 2, 2, 3, 2)]),
    ("CircularPad1d", lambda nn: nn.CircularPad1d((2, 3)), [randn(2, 3, 4)]),
    ("CircularPad2d", lambda nn: nn.CircularPad2d(1), [randn(1, 2, 3, 4)]),
    ("CircularPad3d", lambda nn: nn.CircularPad3d((1, 1, 0, 2, 1, 0)), [randn(2, 2, 3, 3)]),
]


@pytest.mark.parametrize("name,make,inputs", CASES, ids=[c[0] for c in CASES])
def test_forward_backward_state_and_repr_match_torch(name, make, inputs):
    ours, theirs = build(make)
    run_both(ours, theirs, inputs)
    assert repr(ours) == repr(theirs)
    assert ours.padding == theirs.padding
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    assert names_and_shapes(ours, "named_parameters") == []


def test_zero_pad_is_a_constant_pad_as_in_torch():
    assert isinstance(gnn.ZeroPad2d(1), gnn.ConstantPad2d)
    assert gnn.ZeroPad2d(1).value == 0.0


def test_bad_padding_and_bad_input():
    with pytest.raises(TypeError, match="tuple of 4 ints"):
        gnn.ReflectionPad2d((1, 2, 3))
    with pytest.raises(TypeError, match="int or a tuple"):
        gnn.ZeroPad1d(1.5)
    with pytest.raises(ShapeError, match="2-D/3-D"):
        gnn.ReflectionPad1d(1)(gradient.randn(5))
    with pytest.raises(ShapeError, match="smaller than the size"):
        gnn.ReflectionPad1d(4)(gradient.randn(1, 2, 4))
    with pytest.raises(ShapeError, match="pad 2 dimensions"):
        gnn.ConstantPad2d(1, 0.0)(gradient.randn(5))


def test_float32_output_dtype_matches_input():
    x = gradient.randn(1, 2, 3, 3)
    assert gnn.ReplicationPad2d(1)(x).dtype is gradient.float32
    np.testing.assert_array_equal(gnn.ZeroPad2d(1)(x).numpy(),
                                  torch.nn.ZeroPad2d(1)(torch.from_numpy(x.numpy())).numpy())
