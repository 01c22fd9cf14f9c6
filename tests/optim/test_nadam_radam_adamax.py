"""What NAdam, RAdam and Adamax need beyond the tables of test_optimizers.py (where their
20-step comparisons with torch, parameter groups, state-dict round trips and bad
hyper-parameters are, and loading torch's state dicts, closures and zero_grad): NAdam's running
product, training through autograd, and torch's defaults."""

import numpy as np
import pytest
import torch

import gradient
from gradient import optim

from .test_optimizers import _p, feed_grads, make_params


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
