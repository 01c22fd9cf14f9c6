"""gradient.nn.utils.prune against torch.nn.utils.prune on the same weights: the masks, the
state dict's keys, the forward, repeated pruning, global pruning, remove, and what training
does to a pruned layer."""

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune

import gradient
import gradient.nn.utils.prune as prune


def _pair(build):
    """The same layer in both libraries (``build(lib)``)."""
    theirs = build(torch)
    ours = build(gradient)
    ours.load_state_dict({k: gradient.tensor(v.detach().numpy())
                          for k, v in theirs.state_dict().items()})
    return ours, theirs


def _linear(lib):
    return lib.nn.Linear(12, 8)


def _conv(lib):
    return lib.nn.Conv2d(3, 6, 3)


def _same(ours, theirs):
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key].detach().numpy(),
                                      value.detach().numpy(), err_msg=key)


@pytest.mark.parametrize("steps", [
    [("l1_unstructured", "weight", {"amount": 0.3})],
    [("l1_unstructured", "weight", {"amount": 0.5}), ("l1_unstructured", "weight",
                                                        {"amount": 7})],    # what is left
    [("ln_structured", "weight", {"amount": 2, "n": 2, "dim": 0}),
     ("l1_unstructured", "weight", {"amount": 0.25})],
    [("l1_unstructured", "weight", {"amount": 0.5}),
     ("ln_structured", "weight", {"amount": 0.5, "n": 1, "dim": 1})],
    [("ln_structured", "weight", {"amount": 0.34, "n": float("inf"), "dim": -1})],
    [("identity", "bias", {}), ("l1_unstructured", "bias", {"amount": 0.0})]])
@pytest.mark.parametrize("build", [_linear, _conv])
def test_pruning_as_torchs(steps, build):
    ours, theirs = _pair(build)
    for fn, name, kwargs in steps:
        getattr(prune, fn)(ours, name, **kwargs)
        getattr(tprune, fn)(theirs, name, **kwargs)
    _same(ours, theirs)
    x = np.random.default_rng(0).standard_normal((2, 12) if build is _linear else (1, 3, 6, 6))
    x = x.astype(np.float32)
    np.testing.assert_allclose(ours(gradient.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert prune.is_pruned(ours) and tprune.is_pruned(theirs)
    for _, name, _ in steps[:1]:
        prune.remove(ours, name)
        tprune.remove(theirs, name)
    _same(ours, theirs)
    assert isinstance(ours.weight, gradient.nn.Parameter)


def test_global_pruning_with_importance_scores_as_torchs():
    pairs = [_pair(_linear), _pair(_conv)]
    scores = {}
    for lib, which in ((gradient, 0), (torch, 1)):
        layers = [p[which] for p in pairs]
        rng = np.random.default_rng(3)
        importance = {(layers[1], "weight"): lib.tensor(
            rng.random(tuple(layers[1].weight.shape)).astype(np.float32))}
        module = prune if lib is gradient else tprune
        module.global_unstructured([(layers[0], "weight"), (layers[1], "weight"),
                                    (layers[0], "bias")], module.L1Unstructured, amount=0.4,
                                   importance_scores=importance)
        scores[lib.__name__] = importance
    for ours, theirs in pairs:
        _same(ours, theirs)


def test_a_pruned_layer_trains_with_its_zeros_kept():
    ours, theirs = _pair(_linear)
    prune.l1_unstructured(ours, "weight", 0.5)
    tprune.l1_unstructured(theirs, "weight", 0.5)
    x = np.random.default_rng(1).standard_normal((4, 12)).astype(np.float32)
    for model, lib in ((ours, gradient), (theirs, torch)):
        optimizer = lib.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            optimizer.zero_grad()
            model(lib.tensor(x)).pow(2).sum().backward()
            optimizer.step()
    for key in ("weight_orig", "bias", "weight_mask"):
        np.testing.assert_allclose(ours.state_dict()[key].detach().numpy(),
                                   theirs.state_dict()[key].detach().numpy(), rtol=1e-5,
                                   atol=1e-6)
    ours(gradient.tensor(x))                          # (the hook sets the weight)
    weight = ours.weight.detach().numpy()
    assert (weight[ours.weight_mask.numpy() == 0] == 0).all()      # pruned stays zero
    assert [n for n, _ in ours.named_parameters()] == ["bias", "weight_orig"]


def test_custom_mask_and_random_pruning_counts():
    layer = gradient.nn.Linear(10, 10)
    mask = gradient.tensor((np.arange(100).reshape(10, 10) % 3 != 0).astype(np.float32))
    prune.custom_from_mask(layer, "weight", mask)
    np.testing.assert_array_equal(layer.weight_mask.numpy(), mask.numpy())
    prune.random_unstructured(layer, "weight", amount=10)      # 10 of the 66 kept
    assert int((layer.weight_mask == 0).sum()) == 34 + 10
    prune.random_structured(layer, "weight", amount=2, dim=0)
    rows_zero = (layer.weight_mask.numpy() == 0).all(axis=1).sum()
    assert rows_zero >= 2


@pytest.mark.parametrize("call, error, says", [
    (lambda m: prune.l1_unstructured(m, "weight", 1.5), ValueError, "in \\[0, 1\\]"),
    (lambda m: prune.l1_unstructured(m, "weight", 1000), ValueError, "more than the 96"),
    (lambda m: prune.l1_unstructured(m, "weight", "half"), TypeError, "int or a float"),
    (lambda m: prune.ln_structured(m, "bias", 1, n=2, dim=0), ValueError, "2 or more"),
    (lambda m: prune.remove(m, "weight"), ValueError, "is not pruned")])
def test_bad_pruning_is_a_clear_error_and_leaves_the_layer(call, error, says):
    layer = gradient.nn.Linear(12, 8)
    keys = list(layer.state_dict())
    with pytest.raises(error, match=says):
        call(layer)
    # (the parameter is registered again, last, as PyTorch does)
    assert sorted(layer.state_dict()) == sorted(keys) and not prune.is_pruned(layer)
