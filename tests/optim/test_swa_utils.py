"""gradient.optim.swa_utils against torch.optim.swa_utils: AveragedModel (SWA, EMA, avg_fn,
use_buffers), update_bn and SWALR give the same numbers on the same weights and steps."""

import warnings

import numpy as np
import pytest
import torch

import gradient
from gradient.errors import GradientError
from gradient.optim import swa_utils


def _models(seed=0):
    """The same small network (a BatchNorm among its layers) in both libraries."""
    def build(lib):
        return lib.nn.Sequential(lib.nn.Linear(4, 6), lib.nn.BatchNorm1d(6), lib.nn.ReLU(),
                                 lib.nn.Linear(6, 3))
    theirs = build(torch)
    ours = build(gradient)
    ours.load_state_dict({k: gradient.tensor(v.detach().numpy())
                          for k, v in theirs.state_dict().items()})
    return ours, theirs


def _train_steps(ours, theirs, averaged, steps=5):
    """SGD steps on the same batches, the averaged models updated after each."""
    rng = np.random.default_rng(1)
    opt_o = gradient.optim.SGD(ours.parameters(), lr=0.1)
    opt_t = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(steps):
        x = rng.standard_normal((8, 4)).astype(np.float32)
        for model, opt, lib in ((ours, opt_o, gradient), (theirs, opt_t, torch)):
            opt.zero_grad()
            model(lib.tensor(x)).pow(2).mean().backward()
            opt.step()
        averaged[0].update_parameters(ours)
        averaged[1].update_parameters(theirs)


def _assert_same(ours, theirs, rtol=1e-6):
    got, expected = ours.state_dict(), theirs.state_dict()
    assert list(got) == list(expected)
    for k in got:
        np.testing.assert_allclose(got[k].numpy(), expected[k].numpy(), rtol=rtol, atol=1e-7,
                                   err_msg=k)


@pytest.mark.parametrize("kwargs", [
    lambda lib: {},                                                  # SWA: the equal average
    lambda lib: {"multi_avg_fn": lib.optim.swa_utils.get_ema_multi_avg_fn(0.9)},
    lambda lib: {"avg_fn": lib.optim.swa_utils.get_ema_avg_fn(0.8)},
    lambda lib: {"avg_fn": lib.optim.swa_utils.get_swa_avg_fn()},
    lambda lib: {"multi_avg_fn": lib.optim.swa_utils.get_ema_multi_avg_fn(0.9),
                 "use_buffers": True}])
def test_averaged_model_as_torchs(kwargs):
    ours, theirs = _models()
    averaged = (swa_utils.AveragedModel(ours, **kwargs(gradient)),
                torch.optim.swa_utils.AveragedModel(theirs, **kwargs(torch)))
    _train_steps(ours, theirs, averaged)
    _assert_same(*averaged)              # the averaged weights, buffers and n_averaged
    assert int(averaged[0].n_averaged) == 5
    x = np.ones((2, 4), np.float32)
    averaged[0].eval(), averaged[1].eval()
    np.testing.assert_allclose(averaged[0](gradient.tensor(x)).detach().numpy(),
                               averaged[1](torch.tensor(x)).detach().numpy(), rtol=1e-5)


def test_the_averaged_copy_is_its_own():
    ours, _ = _models()
    averaged = swa_utils.AveragedModel(ours)
    averaged.update_parameters(ours)
    with gradient.no_grad():
        ours[0].weight.add_(1.0)
    assert not np.allclose(averaged.module[0].weight.detach().numpy(),
                           ours[0].weight.detach().numpy())


def test_update_bn_as_torchs():
    ours, theirs = _models()
    batches = [np.random.default_rng(i).standard_normal((5, 4)).astype(np.float32) * (i + 1)
               for i in range(3)]
    ours.eval(), theirs.eval()
    swa_utils.update_bn([(gradient.tensor(b), 0) for b in batches], ours)
    torch.optim.swa_utils.update_bn([(torch.tensor(b), 0) for b in batches], theirs)
    _assert_same(ours, theirs, rtol=1e-5)
    assert not ours.training and ours[1].momentum == theirs[1].momentum == 0.1


@pytest.mark.parametrize("strategy, anneal", [("cos", 3), ("linear", 4), ("cos", 0)])
def test_swalr_as_torchs(strategy, anneal):
    lrs = {}
    for lib in (gradient, torch):
        params = [lib.nn.Parameter(lib.zeros(2)), lib.nn.Parameter(lib.zeros(2))]
        opt = lib.optim.SGD([{"params": params[:1], "lr": 0.5}, {"params": params[1:]}], lr=0.1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sched = lib.optim.swa_utils.SWALR(opt, swa_lr=[0.05, 0.01], anneal_epochs=anneal,
                                              anneal_strategy=strategy)
            trace = [list(sched.get_last_lr())]
            for _ in range(7):
                opt.step()
                sched.step()
                trace.append(list(sched.get_last_lr()))
        lrs[lib.__name__] = trace
    np.testing.assert_allclose(lrs["gradient"], lrs["torch"], rtol=1e-12)


def test_bad_settings_are_clear_errors():
    ours, _ = _models()
    with pytest.raises(GradientError, match="not both"):
        swa_utils.AveragedModel(ours, avg_fn=swa_utils.get_swa_avg_fn(),
                                multi_avg_fn=swa_utils.get_swa_multi_avg_fn())
    with pytest.raises(GradientError, match=r"decay must be in \[0, 1\]"):
        swa_utils.get_ema_multi_avg_fn(1.5)
    opt = gradient.optim.SGD(ours.parameters(), lr=0.1)
    with pytest.raises(GradientError, match="anneal_strategy"):
        swa_utils.SWALR(opt, 0.05, anneal_strategy="exp")
