"""What NAdam, RAdam and Adamax need beyond the tables of test_optimizers.py (where their
20-step comparisons with torch, parameter groups, state-dict round trips and bad
hyper-parameters are): NAdam's running product, loading torch's state dicts, closures,
training through autograd, and torch's defaults."""

import numpy as np
import pytest
import torch

import gradient
from gradient import optim

from .test_optimizers import _p, assert_close, feed_grads, make_params


def test_nadam_mu_product_is_a_float32_running_product_like_torch():
    rng = np.random.default_rng(2)
    ours, theirs = make_params(rng, "float64")
    opt, topt = optim.NAdam(ours, momentum_decay=0.1), torch.optim.NAdam(theirs, momentum_decay=0.1)
    for step in range(7):
        feed_grads(rng, ours, theirs, "float64", step)
        opt.step()
        topt.step()
    mine, ref = opt.state[ours[0]]["mu_product"], topt.state[theirs[0]]["mu_product"]
    assert mine.dtype is gradient.float32 and mine.shape == ()
    assert mine.item() == ref.item()
    assert 0 < mine.item() < 0.9 ** 7


@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Adamax"])
def test_loads_a_state_dict_saved_by_torch(name):
    rng = np.random.default_rng(4)
    ours, theirs = make_params(rng, "float32")
    topt = getattr(torch.optim, name)(theirs, lr=0.01, weight_decay=0.01)
    for step in range(8):
        feed_grads(rng, ours, theirs, "float32", step)
        topt.step()
    tsd = topt.state_dict()
    converted = {"state": {k: {n: gradient.tensor(v.numpy()) for n, v in s.items()}
                           for k, s in tsd["state"].items()},
                 "param_groups": tsd["param_groups"]}
    with gradient.no_grad():
        for a, b in zip(ours, theirs):
            a.copy_(gradient.tensor(b.detach().numpy()))
    opt = getattr(optim, name)(ours)
    opt.load_state_dict(converted)
    assert opt.param_groups[0]["weight_decay"] == 0.01
    for step in range(8, 14):
        feed_grads(rng, ours, theirs, "float32", step)
        opt.step()
        topt.step()
    for a, b in zip(ours, theirs):
        assert_close(a, b, "float32")


@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Adamax"])
def test_zero_grad_and_closure(name):
    p, tp = gradient.tensor([1.0, -2.0], requires_grad=True), torch.tensor([1.0, -2.0], requires_grad=True)
    opt, topt = getattr(optim, name)([p], lr=0.1), getattr(torch.optim, name)([tp], lr=0.1)
    for _ in range(3):
        def closure():
            opt.zero_grad()
            loss = (p * p * p).sum()
            loss.backward()
            return loss

        def tclosure():
            topt.zero_grad()
            loss = (tp * tp * tp).sum()
            loss.backward()
            return loss
        assert opt.step(closure).item() == pytest.approx(topt.step(tclosure).item(), rel=1e-6)
    assert_close(p, tp, "float32")
    opt.zero_grad(set_to_none=False)
    assert p.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None
    before = p.tolist()
    opt.step()  # no gradient: nothing changes
    assert p.tolist() == before


def test_training_through_autograd_gives_torch_losses():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((16, 4)).astype("float32"), rng.standard_normal((16, 1)).astype("float32")
    w0 = rng.standard_normal((4, 1)).astype("float32")
    for name in ("NAdam", "RAdam", "Adamax"):
        w, tw = gradient.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
        opt, topt = getattr(optim, name)([w], lr=0.05), getattr(torch.optim, name)([tw], lr=0.05)
        losses, tlosses = [], []
        for _ in range(20):
            for o, param, X, Y, out in ((opt, w, gradient.tensor(x), gradient.tensor(y), losses),
                                        (topt, tw, torch.tensor(x), torch.tensor(y), tlosses)):
                o.zero_grad()
                loss = ((X @ param - Y) ** 2).mean()
                loss.backward()
                o.step()
                out.append(loss.item())
        np.testing.assert_allclose(losses, tlosses, rtol=1e-5)
        assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Adamax"])
def test_unsupported_options_are_refused_and_defaults_are_torchs(name):
    with pytest.raises(NotImplementedError, match="capturable"):
        getattr(optim, name)([_p(optim)], capturable=True)
    ours = getattr(optim, name)([_p(optim)]).state_dict()["param_groups"]
    theirs = getattr(torch.optim, name)([_p(torch)]).state_dict()["param_groups"]
    assert ours == theirs
