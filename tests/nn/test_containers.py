"""Sequential, ModuleList and ModuleDict against torch.nn's containers.

Every operation is done on a torch container and ours side by side, and the resulting
structure (child names, state dict keys, reprs) must be the same.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn

from .test_layers import load_from_torch, run_both


def structure(module):
    """Child names, child types and state dict keys: what must agree with torch."""
    return ([(n, type(m).__name__) for n, m in module.named_children()], list(module.state_dict()))


def both(fn):
    """``fn(nn)`` for torch.nn and gradient.nn."""
    return fn(torch.nn), fn(gnn)


def assert_same(theirs, ours):
    assert structure(ours) == structure(theirs)
    assert repr(ours) == repr(theirs)


def test_sequential_forward_backward_and_names():
    theirs, ours = both(lambda nn: nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)))
    theirs, ours = theirs.double(), ours.double()
    load_from_torch(ours, theirs)
    assert [n for n, _ in ours.named_children()] == ["0", "1", "2"]
    assert list(ours.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    run_both(ours, theirs, [np.random.default_rng(1).standard_normal((5, 4))])
    assert_same(theirs, ours)


def test_sequential_from_ordered_dict():
    theirs, ours = both(lambda nn: nn.Sequential(OrderedDict(
        [("fc", nn.Linear(3, 4)), ("act", nn.ReLU()), ("out", nn.Linear(4, 1))])))
    assert_same(theirs, ours)
    assert isinstance(ours.fc, gnn.Linear) and ours[0] is ours.fc and ours[-1] is ours.out


def test_sequential_indexing_slicing_and_editing():
    def make(nn):
        return nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 4))

    theirs, ours = both(make)
    assert len(ours) == 5
    assert ours[-1] is list(ours)[4]
    sliced_t, sliced_o = theirs[1:4], ours[1:4]
    assert isinstance(sliced_o, gnn.Sequential) and sliced_o[0] is ours[1]
    assert_same(sliced_t, sliced_o)
    assert_same(theirs[::2], ours[::2])

    for seq, nn in ((theirs, torch.nn), (ours, gnn)):
        del seq[1]                      # renumbers: 0, 1, 2, 3
        seq.insert(0, nn.Identity())
        seq.insert(-1, nn.Sigmoid())
        seq.append(nn.Softmax(dim=-1))
        seq[2] = nn.GELU()
        popped = seq.pop(1)
        assert isinstance(popped, nn.Linear)
        seq.extend([nn.ReLU(), nn.Dropout(0.1)])
        del seq[-2:]
    assert_same(theirs, ours)
    with pytest.raises(IndexError):
        ours[10]
    with pytest.raises(IndexError):
        ours.insert(20, gnn.ReLU())


def test_sequential_add_mul_and_errors():
    theirs, ours = both(lambda nn: nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    assert_same(theirs + theirs, ours + ours)
    assert_same(theirs * 2, ours * 2)
    assert (ours * 2)[2] is ours[0]                 # the same modules, repeated
    ours += gnn.Sequential(gnn.Tanh())
    assert len(ours) == 3 and isinstance(ours[2], gnn.Tanh)
    with pytest.raises(ValueError, match="Sequential"):
        ours + gnn.ModuleList()
    with pytest.raises(ValueError, match="Non-positive"):
        ours * 0


def test_empty_sequential_is_identity():
    x = gradient.randn(3)
    assert gnn.Sequential()(x) is x


def test_modulelist():
    def make(nn):
        return nn.ModuleList([nn.Linear(2, 3), nn.ReLU()])

    theirs, ours = both(make)
    for ml, nn in ((theirs, torch.nn), (ours, gnn)):
        ml.append(nn.Tanh())
        ml.extend([nn.Linear(3, 3), nn.Sigmoid()])
        ml.insert(1, nn.GELU())
        ml.insert(4, nn.Identity())
        ml[0] = nn.Linear(2, 4)
        del ml[2]
        ml += nn.ModuleList([nn.SiLU()])
        assert isinstance(ml.pop(0), nn.Linear)
    assert_same(theirs, ours)
    assert len(ours) == len(theirs) == 6
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    assert isinstance(ours[1:3], gnn.ModuleList) and ours[1:3][0] is ours[1]
    with pytest.raises(IndexError):
        ours[6]
    with pytest.raises(TypeError):
        ours.extend(gnn.Linear(2, 2))
    # parameters of the children are the list's parameters
    assert {n for n, _ in ours.named_parameters()} == {n for n, _ in theirs.named_parameters()}


def test_modulelist_in_a_model_trains():
    class Stack(gnn.Module):
        def __init__(self):
            super().__init__()
            self.layers = gnn.ModuleList(gnn.Linear(3, 3) for _ in range(2))

        def forward(self, x):
            for layer in self.layers:
                x = layer(x).relu()
            return x

    m = Stack()
    assert [n for n, _ in m.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    m(gradient.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_moduledict():
    def make(nn):
        return nn.ModuleDict({"b": nn.Linear(2, 2), "a": nn.ReLU()})

    theirs, ours = both(make)
    for md, nn in ((theirs, torch.nn), (ours, gnn)):
        md["c"] = nn.Tanh()
        md.update([("d", nn.Linear(2, 1)), ("b", nn.Linear(2, 5))])
        md.update({"e": nn.GELU()})
        del md["a"]
        assert isinstance(md.pop("e"), nn.GELU)
    assert_same(theirs, ours)
    assert list(ours) == list(ours.keys()) == ["b", "c", "d"]
    assert "c" in ours and "a" not in ours and len(ours) == 3
    assert [type(v).__name__ for v in ours.values()] == ["Linear", "Tanh", "Linear"]
    assert ours["b"].out_features == 5
    with pytest.raises(ValueError, match="pair"):
        ours.update([("x",)])
    ours.clear()
    assert len(ours) == 0


def test_sequential_state_dict_interchanges_with_torch():
    theirs, ours = both(lambda nn: nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2)))
    load_from_torch(ours, theirs)
    back = {k: torch.from_numpy(v.detach().numpy().copy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(back)                   # and back again, strict
    x = np.random.default_rng(2).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(gradient.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), atol=1e-6)


def test_module_list_repr_prints_runs_of_equal_children_once_as_torch():
    for make in (lambda nn: nn.ModuleList(),
                 lambda nn: nn.ModuleList([nn.Linear(2, 2)]),
                 lambda nn: nn.ModuleList([nn.Linear(2, 2) for _ in range(3)]
                                          + [nn.ReLU(), nn.Linear(2, 2), nn.Linear(2, 3),
                                             nn.Linear(2, 3)]),
                 lambda nn: nn.Sequential(nn.ModuleList([nn.Sequential(nn.Linear(2, 2), nn.ReLU())
                                                         for _ in range(2)]))):
        assert repr(make(gnn)) == repr(make(torch.nn))
