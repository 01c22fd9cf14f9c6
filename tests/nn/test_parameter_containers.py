"""ParameterList and ParameterDict against torch.nn's.

Every operation is done on a torch container and ours side by side, and what they then hold
(parameter names and shapes, state dict keys and values, which entries are Parameters and
require grad, the reprs with "torch." read as "gradient.") must be the same.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn

from .test_layers import load_from_torch, run_both

rng = np.random.default_rng(3)
ARRAYS = [rng.standard_normal(shape) for shape in ((2, 3), (4,), (), (1, 2, 2))]

FRAMEWORKS = ((torch, torch.nn), (gradient, gnn))


def structure(container):
    """What must agree with torch: entries (kind, shape, requires_grad), names, state dict."""
    def entry(value):
        if isinstance(value, (torch.Tensor, gradient.Tensor)):
            kind = "Parameter" if isinstance(value, (torch.nn.Parameter, gnn.Parameter)) \
                else "Tensor"
            return kind, tuple(value.shape), value.requires_grad
        return type(value).__name__

    entries = [entry(v) for v in (container.values() if hasattr(container, "keys")
                                  else container)]
    keys = list(container.keys()) if hasattr(container, "keys") else None
    return (entries, keys, [(n, tuple(p.shape)) for n, p in container.named_parameters()],
            list(container.state_dict()))


def state_values(container):
    # through float64: NumPy has no bfloat16 for torch's tensors
    return [v.detach().double().numpy().copy() for v in container.state_dict().values()]


def assert_same(theirs, ours):
    assert structure(ours) == structure(theirs)
    for a, b in zip(state_values(ours), state_values(theirs)):
        np.testing.assert_array_equal(a, b)
    assert repr(ours) == repr(theirs).replace("torch.", "gradient.")


# ---------------------------------------------------------------------------- ParameterList
def test_parameterlist_construction_wraps_tensors():
    made = []
    for fw, nn in FRAMEWORKS:
        frozen = nn.Parameter(fw.tensor(ARRAYS[1]), requires_grad=False)
        plain = fw.tensor(ARRAYS[0])
        plist = nn.ParameterList([plain, frozen, fw.tensor(ARRAYS[2])])
        assert isinstance(plist[0], nn.Parameter) and plist[0].requires_grad
        assert plist[1] is frozen and not plist[1].requires_grad   # a Parameter is kept as is
        with fw.no_grad():                  # the Parameter shares the plain tensor's storage
            plain.mul_(2)
        assert plist[0].detach().numpy()[0, 0] == 2 * ARRAYS[0][0, 0]
        made.append(plist)
    assert_same(*made)
    assert [n for n, _ in made[1].named_parameters()] == ["0", "1", "2"]
    assert len(gnn.ParameterList()) == 0 and repr(gnn.ParameterList()) == "ParameterList()"


def test_parameterlist_append_extend_iadd_setitem():
    made = []
    for fw, nn in FRAMEWORKS:
        plist = nn.ParameterList()
        assert plist.append(fw.tensor(ARRAYS[0])) is plist
        assert plist.extend([fw.tensor(ARRAYS[1]), nn.Parameter(fw.tensor(ARRAYS[2]))]) is plist
        plist += (fw.tensor(a) for a in ARRAYS[3:])        # any iterable, a generator too
        plist[1] = fw.tensor(ARRAYS[3])                    # replaced, wrapped
        plist[-1] = nn.Parameter(fw.tensor(ARRAYS[0]), requires_grad=False)
        made.append(plist)
    assert_same(*made)
    ours = made[1]
    assert len(ours) == 4
    assert list(ours) == [ours[i] for i in range(4)]       # iteration gives the entries
    assert ours[-4] is ours[0]
    with pytest.raises(IndexError, match="out of range"):
        ours[4]
    with pytest.raises(IndexError):
        ours[-5] = gradient.zeros(1)


def test_parameterlist_slicing_shares_parameters():
    made = [nn.ParameterList([fw.tensor(a) for a in ARRAYS]) for fw, nn in FRAMEWORKS]
    for index in (slice(1, 3), slice(None, None, 2), slice(-2, None), slice(None, None, -1),
                  slice(5, 9)):
        theirs, ours = made[0][index], made[1][index]
        assert isinstance(ours, gnn.ParameterList)
        assert_same(theirs, ours)
    ours = made[1]
    assert ours[1:3][0] is ours[1] and ours[::-1][0] is ours[3]


def test_parameterlist_holds_other_objects_as_torch():
    made = []
    for fw, nn in FRAMEWORKS:
        torch.manual_seed(0)
        plist = nn.ParameterList([fw.tensor(ARRAYS[0]), None, "text", nn.Linear(2, 3).double()])
        plist.append(7)
        made.append(plist)
    load_from_torch(made[1], made[0])
    assert_same(*made)
    ours = made[1]
    assert ours[1] is None and ours[2] == "text" and ours[4] == 7
    assert isinstance(ours[3], gnn.Linear)
    assert list(ours.state_dict()) == ["0", "3.weight", "3.bias"]
    # a None entry may later become a parameter
    made[0][1] = torch.tensor(ARRAYS[1])
    ours[1] = gradient.tensor(ARRAYS[1])
    assert_same(*made)


def test_parameterlist_errors():
    ours = gnn.ParameterList([gradient.zeros(2)])
    for plist, fw in ((torch.nn.ParameterList([torch.zeros(2)]), torch), (ours, gradient)):
        with pytest.raises(TypeError, match="iterable"):
            plist.extend(fw.zeros(3))                  # a tensor is not a list of tensors
        with pytest.raises(TypeError, match="iterable"):
            plist.extend(3)
        with pytest.raises(TypeError, match="iterable"):
            plist += 3
        with pytest.raises(RuntimeError, match="should not be called"):
            plist(fw.zeros(2))
        with pytest.raises(RuntimeError):              # an integer tensor cannot be a Parameter
            plist.append(fw.zeros(2, dtype=fw.int64))
    assert len(ours) == 1                              # (torch's list grows a broken entry)
    ours.append(gradient.ones(3))
    assert [n for n, _ in ours.named_parameters()] == ["0", "1"]
    assert "0" not in dir(ours) and "append" in dir(ours)


def make_mixture(nn):
    class Mixture(nn.Module):
        def __init__(self):
            super().__init__()
            self.weights = nn.ParameterList([nn.Parameter(w) for w in WEIGHTS[nn.__name__]])
            self.scales = nn.ParameterDict({"b": WEIGHTS[nn.__name__][0][0], "a": WEIGHTS[
                nn.__name__][1][:, 0]})

        def forward(self, x):
            for w in self.weights:
                x = (x @ w) * self.scales["a"] + self.scales["b"]
            return x

    return Mixture()


WEIGHTS = {"torch.nn": [torch.tensor(rng.standard_normal((3, 3))) for _ in range(2)]}
WEIGHTS["gradient.nn"] = [gradient.tensor(w.numpy().copy()) for w in WEIGHTS["torch.nn"]]


def test_containers_train_in_a_module():
    theirs, ours = make_mixture(torch.nn), make_mixture(gnn)
    assert [n for n, _ in ours.named_parameters()] == [
        "weights.0", "weights.1", "scales.a", "scales.b"] == \
        [n for n, _ in theirs.named_parameters()]
    load_from_torch(ours, theirs)
    run_both(ours, theirs, [rng.standard_normal((4, 3))])
    # an optimizer sees them
    opt = gradient.optim.SGD(ours.parameters(), lr=0.1)
    before = ours.weights[0].detach().numpy().copy()
    opt.step()
    assert not np.array_equal(before, ours.weights[0].detach().numpy())


def test_to_half_double_keep_identity_and_deepcopy():
    plist = gnn.ParameterList([gradient.zeros(2, 3), gradient.ones(4)])
    pdict = gnn.ParameterDict({"w": gradient.zeros(2), "v": gradient.ones(1)})
    for container in (plist, pdict):
        params = list(container.parameters())
        assert container.half() is container
        assert all(a is b for a, b in zip(container.parameters(), params))
        assert {p.dtype for p in container.parameters()} == {gradient.float16}
        container.to(gradient.float64)
        assert {p.dtype for p in container.parameters()} == {gradient.float64}
        assert all(a is b for a, b in zip(container.parameters(), params))
        clone = copy.deepcopy(container)
        assert type(clone) is type(container) and len(clone) == len(container)
        assert all(a is not b for a, b in zip(clone.parameters(), params))
        assert list(clone.state_dict()) == list(container.state_dict())
    assert repr(plist) == ("ParameterList(\n"
                           "    (0): Parameter containing: [gradient.float64 of size 2x3]\n"
                           "    (1): Parameter containing: [gradient.float64 of size 4]\n)")


# ---------------------------------------------------------------------------- ParameterDict
def test_parameterdict_construction_orders_as_torch():
    for make in (
        lambda fw, nn: {"b": fw.tensor(ARRAYS[0]), "a": fw.tensor(ARRAYS[1]),
                        "c": nn.Parameter(fw.tensor(ARRAYS[2]), requires_grad=False)},
        lambda fw, nn: OrderedDict([("b", fw.tensor(ARRAYS[0])), ("a", fw.tensor(ARRAYS[1]))]),
        lambda fw, nn: [("z", fw.tensor(ARRAYS[3])), ["y", fw.tensor(ARRAYS[1])]],
        lambda fw, nn: nn.ParameterDict(OrderedDict(w=fw.tensor(ARRAYS[0]), v=None)),
    ):
        made = [nn.ParameterDict(make(fw, nn)) for fw, nn in FRAMEWORKS]
        assert_same(*made)
    assert list(made[1]) == ["w", "v"]          # a ParameterDict keeps its order
    # a plain dict's keys are taken in sorted order, as torch does
    assert list(gnn.ParameterDict({"b": gradient.zeros(1), "a": gradient.zeros(1)})) == ["a", "b"]
    assert repr(gnn.ParameterDict()) == "ParameterDict()"


def test_parameterdict_methods_as_torch():
    made, results = [], []
    for fw, nn in FRAMEWORKS:
        def t(i):
            return fw.tensor(ARRAYS[i])

        pdict = nn.ParameterDict({"w": t(0)})
        out = []
        pdict["v"] = t(1)
        pdict["w"] = nn.Parameter(t(3), requires_grad=False)   # replaced in place
        pdict["none"] = None
        pdict["none"] = t(2)                                   # None, then a parameter
        out.append(pdict.setdefault("v", t(0)) is pdict["v"])
        out.append(tuple(pdict.setdefault("s", t(2)).shape))
        out.append(pdict.setdefault("n") is None)
        out.append(pdict.get("missing", 5))
        out.append(pdict.get("v") is pdict["v"])
        out.append(["v" in pdict, "missing" in pdict, len(pdict)])
        out.append(list(reversed(pdict)))
        out.append(tuple(pdict.pop("w").shape))
        out.append(pdict.popitem()[0])
        pdict.update({"y": t(1), "x": t(0)})                    # sorted: x, y
        pdict.update([("k", t(3))])
        pdict.update(OrderedDict([("q", t(2)), ("p", t(1))]))
        del pdict["v"]
        out.append([k for k, _ in pdict.items()] == list(pdict.keys()) == list(pdict))
        out.append(len(list(pdict.values())))
        made.append(pdict)
        results.append(out)
    assert results[0] == results[1]
    assert_same(*made)

    theirs, ours = made
    for op in (lambda d: d.copy(), lambda d: d.fromkeys(["b", "a"], None)):
        assert_same(op(theirs), op(ours))
    assert all(a is b for a, b in zip(ours.copy().values(), ours.values()))   # same parameters
    both_t = theirs | torch.nn.ParameterDict({"extra": torch.tensor(ARRAYS[1])})
    both_o = ours | gnn.ParameterDict({"extra": gradient.tensor(ARRAYS[1])})
    assert_same(both_t, both_o)
    ror_t = {"first": torch.tensor(ARRAYS[0])} | theirs
    ror_o = {"first": gradient.tensor(ARRAYS[0])} | ours
    assert type(ror_o) is dict and list(ror_o) == list(ror_t)
    theirs |= {"z2": torch.tensor(ARRAYS[2])}
    ours |= {"z2": gradient.tensor(ARRAYS[2])}
    assert_same(theirs, ours)
    theirs.clear()
    ours.clear()
    assert_same(theirs, ours)
    assert len(ours) == 0 and list(ours.parameters()) == []


def test_parameterdict_fromkeys_shares_one_default_parameter():
    made = [nn.ParameterDict().fromkeys(["x", "y"], nn.Parameter(fw.tensor(ARRAYS[1])))
            for fw, nn in FRAMEWORKS]
    assert_same(*made)
    assert made[1]["x"] is made[1]["y"]
    assert [n for n, _ in made[1].named_parameters()] == ["x"]     # a shared parameter once


def test_parameterdict_errors():
    theirs = torch.nn.ParameterDict({"a": torch.zeros(1)})
    ours = gnn.ParameterDict({"a": gradient.zeros(1)})
    with pytest.raises(AttributeError):
        theirs["missing"]
    with pytest.raises(KeyError, match="missing"):
        ours["missing"]
    with pytest.raises(AttributeError):        # the torch class works too
        ours["missing"]
    with pytest.raises(KeyError):
        del ours["missing"]
    with pytest.raises(KeyError):
        ours.pop("missing")
    for pdict, fw in ((theirs, torch), (ours, gradient)):
        with pytest.raises(TypeError, match="string"):
            pdict[1] = fw.zeros(1)
        with pytest.raises(KeyError, match="contain"):
            pdict["x.y"] = fw.zeros(1)
        with pytest.raises(TypeError, match="iterable"):
            pdict.update(3)
        with pytest.raises(TypeError, match="#0"):
            pdict.update([3])
        with pytest.raises(ValueError, match="#1 has length 3"):
            pdict.update([("k", fw.zeros(1)), ("k", 1, 2)])
        with pytest.raises(RuntimeError, match="should not be called"):
            pdict(fw.zeros(1))
    # ours leaves no trace of a failed assignment or update (torch's keeps the keys 1 and
    # "x.y" without values, and the update's first pair)
    assert list(ours) == ["a"]
    ours["k"] = gradient.zeros(1)
    for key in ("training", "keys", "_keys"):
        with pytest.raises(KeyError, match="attribute"):
            ours[key] = gradient.zeros(1)
    assert ours.training is True and list(ours.keys()) == ["a", "k"]
    ours.popitem()
    ours.popitem()
    with pytest.raises(KeyError, match="empty"):
        ours.popitem()


def test_parameterdict_repr_and_state_dict_round_trip():
    made = []
    for fw, nn in FRAMEWORKS:
        pdict = nn.ParameterDict(OrderedDict([
            ("w", fw.tensor(ARRAYS[0])), ("h", fw.tensor(ARRAYS[1]).half()),
            ("bf", fw.tensor(ARRAYS[1]).to(fw.bfloat16)), ("s", fw.tensor(ARRAYS[2]).float()),
            ("obj", "text"), ("m", nn.Identity())]))
        made.append(pdict)
    assert_same(*made)
    assert "(w): Parameter containing: [gradient.DoubleTensor of size 2x3]" in repr(made[1])
    assert "(s): Parameter containing: [gradient.FloatTensor of size ]" in repr(made[1])
    for pdict in made:
        del pdict["bf"]            # (load_from_torch goes through NumPy, which has no bfloat16)
    with torch.no_grad():
        made[0]["w"].add_(1.0)
    load_from_torch(made[1], made[0])
    assert_same(*made)
