"""Loss layers against torch.nn's: same options give the same loss and input gradients.

The functional losses are tested in depth in tests/ops/test_loss.py; here we check that each
layer passes its options through (reduction, weights, ignore_index, ...), registers its weights
as buffers like torch, and keeps torch's constructor signature and deprecated flags.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn

from .test_layers import names_and_shapes, run_both

rng = np.random.default_rng(5)
LOGITS = rng.standard_normal((6, 4))
CLASSES = np.array([0, 3, 1, 1, 2, 3])
PROBS = rng.uniform(0.05, 0.95, (6, 4))
TARGET_PROBS = rng.uniform(0, 1, (6, 4))
X, Y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))


class TorchTensor:
    """A constructor argument given as an array, passed as a tensor of each framework."""

    def __init__(self, value):
        self.value = value


def build(cls, kwargs):
    def convert(to):
        return {k: to(v.value) if isinstance(v, TorchTensor) else v for k, v in kwargs.items()}
    return getattr(gnn, cls)(**convert(gradient.tensor)), getattr(torch.nn, cls)(**convert(torch.tensor))


CASES = [
    ("MSELoss", {}, [X, Y]),
    ("MSELoss", {"reduction": "sum"}, [X, Y]),
    ("MSELoss", {"reduction": "none"}, [X, Y]),
    ("L1Loss", {}, [X, Y]),
    ("L1Loss", {"reduction": "none"}, [X, Y]),
    ("SmoothL1Loss", {"beta": 0.5}, [X, Y]),
    ("HuberLoss", {"delta": 0.7, "reduction": "sum"}, [X, Y]),
    ("CrossEntropyLoss", {}, [LOGITS, CLASSES]),
    ("CrossEntropyLoss", {"weight": TorchTensor(np.array([1.0, 2.0, 0.5, 1.5])),
                          "ignore_index": 1, "label_smoothing": 0.2}, [LOGITS, CLASSES]),
    ("CrossEntropyLoss", {"reduction": "none"}, [LOGITS, CLASSES]),
    ("CrossEntropyLoss", {"label_smoothing": 0.1}, [LOGITS, TARGET_PROBS / TARGET_PROBS.sum(1, keepdims=True)]),
    ("CrossEntropyLoss", {}, [rng.standard_normal((2, 4, 3)), np.array([[0, 1, 3], [2, 2, 0]])]),
    ("NLLLoss", {}, [LOGITS, CLASSES]),
    ("NLLLoss", {"weight": TorchTensor(np.array([1.0, 2.0, 0.5, 1.5])), "reduction": "sum"},
     [LOGITS, CLASSES]),
    ("BCELoss", {}, [PROBS, TARGET_PROBS]),
    ("BCELoss", {"weight": TorchTensor(rng.uniform(0.5, 2, 4))}, [PROBS, TARGET_PROBS]),
    ("BCEWithLogitsLoss", {}, [LOGITS, TARGET_PROBS]),
    ("BCEWithLogitsLoss", {"pos_weight": TorchTensor(np.array([1.0, 3.0, 0.5, 2.0])),
                           "weight": TorchTensor(rng.uniform(0.5, 2, 4)), "reduction": "sum"},
     [LOGITS, TARGET_PROBS]),
    ("KLDivLoss", {"reduction": "batchmean"}, [np.log(PROBS), TARGET_PROBS]),
    ("KLDivLoss", {"log_target": True, "reduction": "sum"}, [np.log(PROBS), np.log(TARGET_PROBS)]),
]


@pytest.mark.parametrize("cls,kwargs,inputs", CASES,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_loss_layers_match_torch(cls, kwargs, inputs):
    ours, theirs = build(cls, kwargs)
    out_o, _ = run_both(ours, theirs, inputs)
    assert names_and_shapes(ours, "named_buffers") == names_and_shapes(theirs, "named_buffers")
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    assert ours.reduction == theirs.reduction


def test_deprecated_size_average_and_reduce():
    for flags, expect in [({"size_average": False}, "sum"), ({"reduce": False}, "none"),
                          ({"size_average": True, "reduce": True}, "mean")]:
        with pytest.warns(UserWarning, match="deprecated"):
            ours = gnn.MSELoss(**flags)
        with pytest.warns(UserWarning):
            theirs = torch.nn.MSELoss(**flags)
        assert ours.reduction == theirs.reduction == expect


def test_bad_reduction_and_smoothing():
    with pytest.raises(ValueError, match="reduction"):
        gnn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        gnn.CrossEntropyLoss(label_smoothing=1.5)(gradient.randn(2, 3), gradient.tensor([0, 1]))


def test_weight_buffer_moves_with_the_module():
    loss = gnn.CrossEntropyLoss(weight=gradient.tensor([1.0, 2.0, 3.0]))
    assert "weight" in dict(loss.named_buffers())
    loss.double()
    assert loss.weight.dtype is gradient.float64
