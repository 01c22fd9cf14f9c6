"""NAdam, RAdam and Adamax against torch.optim: same parameters, same gradients, same results.

The helpers come from test_optimizers.py: each run feeds both libraries one sequence of NumPy
gradients (the 0-d parameter now and then gets none, which must leave it and its state alone)
and compares parameters and state dicts after 20 steps.
"""

import numpy as np
import pytest
import torch

import gradient
from gradient import optim
from gradient.errors import GradientError

from .test_optimizers import (STEPS, SHAPES, _ids, assert_close, assert_state_matches,
                              clone_state_dict, feed_grads, make_params)

CONFIGS = [
    ("NAdam", {}),
    ("NAdam", dict(lr=0.01, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("NAdam", dict(lr=0.05, betas=(0.3, 0.8), eps=1e-3, maximize=True)),
    ("RAdam", {}),
    ("RAdam", dict(lr=0.01, weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.05, betas=(0.5, 0.9), maximize=True)),  # rectifies from step 6 on
    ("RAdam", dict(lr=0.1, betas=(0.8, 0.6), eps=1e-4)),        # rho_inf = 4: never rectifies
    ("Adamax", {}),
    ("Adamax", dict(lr=0.01, weight_decay=0.1)),
    ("Adamax", dict(lr=0.05, betas=(0.3, 0.8), eps=1e-3, maximize=True)),
    ("Adamax", dict(lr=0.01, betas=(0.9, 0.5), weight_decay=0.05, maximize=True)),
]


def run_both(name, ours_args, theirs_args, rng, dtype, steps=STEPS, **kwargs):
    ours, theirs = ours_args
    opt = getattr(optim, name)(ours if theirs_args is None else theirs_args[0], **kwargs)
    topt = getattr(torch.optim, name)(theirs if theirs_args is None else theirs_args[1], **kwargs)
    for step in range(steps):
        feed_grads(rng, ours, theirs, dtype, step)
        opt.step()
        topt.step()
    return opt, topt


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS, ids=_ids)
def test_matches_torch_over_20_steps(config, dtype):
    name, kwargs = config
    rng = np.random.default_rng(0)
    ours, theirs = make_params(rng, dtype)
    before = [p.detach().numpy().copy() for p in ours]
    opt, topt = run_both(name, (ours, theirs), None, rng, dtype, **kwargs)
    for a, b, start in zip(ours, theirs, before):
        assert a.dtype.name == dtype
        assert not np.allclose(a.detach().numpy(), start)  # the parameters really moved
        assert_close(a, b, dtype)
    assert_state_matches(opt, topt, dtype)


@pytest.mark.parametrize("name, group_options", [
    ("NAdam", [dict(lr=0.01), dict(lr=0.002, weight_decay=0.1, decoupled_weight_decay=True)]),
    ("RAdam", [dict(lr=0.01, betas=(0.5, 0.9)), dict(lr=0.001, weight_decay=0.1)]),
    ("Adamax", [dict(lr=0.01), dict(lr=0.05, maximize=True, eps=1e-2)]),
])
def test_two_parameter_groups_with_their_own_options(name, group_options):
    rng = np.random.default_rng(1)
    ours, theirs = make_params(rng, "float32")
    groups = ([dict(params=ours[:2], **group_options[0]), dict(params=ours[2:], **group_options[1])],
              [dict(params=theirs[:2], **group_options[0]),
               dict(params=theirs[2:], **group_options[1])])
    opt, topt = run_both(name, (ours, theirs), groups, rng, "float32")
    for a, b in zip(ours, theirs):
        assert_close(a, b, "float32")
    assert_state_matches(opt, topt, "float32")


def test_nadam_mu_product_is_a_float32_running_product_like_torch():
    rng = np.random.default_rng(2)
    ours, theirs = make_params(rng, "float64")
    opt, topt = run_both("NAdam", (ours, theirs), None, rng, "float64", steps=7, momentum_decay=0.1)
    mine, ref = opt.state[ours[0]]["mu_product"], topt.state[theirs[0]]["mu_product"]
    assert mine.dtype is gradient.float32 and mine.shape == ()
    assert mine.item() == ref.item()
    assert 0 < mine.item() < 0.9 ** 7


@pytest.mark.parametrize("config", [
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1)),
    ("Adamax", dict(lr=0.01, maximize=True)),
], ids=_ids)
def test_state_dict_round_trip_continues_identically(config):
    name, kwargs = config
    rng = np.random.default_rng(3)
    params, _ = make_params(rng, "float32")
    grads = [[rng.standard_normal(s).astype("float32") for s in SHAPES] for _ in range(20)]

    def run(opt, ps, steps):
        for gs in steps:
            for p, g in zip(ps, gs):
                p.grad = gradient.tensor(g)
            opt.step()

    opt = getattr(optim, name)(params, **kwargs)
    run(opt, params, grads[:10])
    saved = clone_state_dict(opt.state_dict())
    copies = [p.detach().clone().requires_grad_() for p in params]
    resumed = getattr(optim, name)(copies, **{**kwargs, "lr": 123.0})
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0]["lr"] == kwargs["lr"]
    run(opt, params, grads[10:])
    run(resumed, copies, grads[10:])
    for a, b in zip(params, copies):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


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


def _p(lib):
    return (gradient if lib is optim else torch).zeros(2, requires_grad=True)


BAD = [
    ("NAdam", dict(lr=-1.0), "learning rate"),
    ("NAdam", dict(betas=(1.0, 0.9)), "beta parameter at index 0"),
    ("NAdam", dict(momentum_decay=-0.1), "momentum_decay"),
    ("NAdam", dict(eps=-1.0), "epsilon"),
    ("RAdam", dict(betas=(0.9, 1.0)), "beta parameter at index 1"),
    ("RAdam", dict(weight_decay=-0.1), "weight_decay"),
    ("Adamax", dict(lr=-0.1), "learning rate"),
    ("Adamax", dict(betas=(-0.1, 0.9)), "beta parameter at index 0"),
    ("Adamax", dict(weight_decay=-1.0), "weight_decay"),
]


@pytest.mark.parametrize("name, kwargs, match", BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
def test_bad_hyperparameters_raise_like_torch(name, kwargs, match):
    with pytest.raises(ValueError):
        getattr(torch.optim, name)([_p(torch)], **kwargs)
    with pytest.raises(ValueError, match=match) as info:
        getattr(optim, name)([_p(optim)], **kwargs)
    assert isinstance(info.value, GradientError)


@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Adamax"])
def test_unsupported_options_are_refused_and_defaults_are_torchs(name):
    with pytest.raises(NotImplementedError, match="capturable"):
        getattr(optim, name)([_p(optim)], capturable=True)
    ours = getattr(optim, name)([_p(optim)]).state_dict()["param_groups"]
    theirs = getattr(torch.optim, name)([_p(torch)]).state_dict()["param_groups"]
    assert ours == theirs
