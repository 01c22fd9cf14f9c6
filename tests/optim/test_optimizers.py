"""Optimizers against torch.optim: same parameters, same gradient sequence, same results.

Each run feeds both libraries one sequence of NumPy gradients (a parameter now and then has no
gradient, which must leave it and its state untouched) and compares parameters and state.
"""

import warnings

import numpy as np
import pytest
import torch

import gradient
from gradient import optim
from gradient.errors import GradientError

SHAPES = [(3, 4), (5,), ()]
STEPS = 20

CONFIGS = [
    ("SGD", {}),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.2)),
    ("SGD", dict(lr=0.1, momentum=0.5, maximize=True)),
    ("Adam", {}),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True)),
    ("Adam", dict(lr=0.1, betas=(0.3, 0.8), eps=1e-3)),  # the other branch of lerp (weight > 0.5)
    ("AdamW", {}),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.5)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, maximize=True, amsgrad=True)),
    ("RMSprop", {}),
    ("RMSprop", dict(centered=True)),
    ("RMSprop", dict(momentum=0.9)),
    ("RMSprop", dict(lr=0.001, alpha=0.9, centered=True, momentum=0.9, weight_decay=0.1)),
    ("RMSprop", dict(maximize=True, alpha=0.3)),
    ("Adagrad", {}),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1)),
    ("Adagrad", dict(weight_decay=0.1, initial_accumulator_value=0.1, eps=1e-6)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, maximize=True)),
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
    ("Adadelta", {}),
    ("Adadelta", dict(lr=0.5, rho=0.5, eps=1e-4)),
    ("Adadelta", dict(lr=1.0, rho=0.95, weight_decay=0.1)),
    ("Adadelta", dict(lr=2.0, rho=0.3, maximize=True)),
    ("ASGD", {}),                                               # t0 = 1e6: ax just follows p
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=5)),       # averaging from step 6 on
    ("ASGD", dict(lr=0.05, t0=3, weight_decay=0.1)),
    ("ASGD", dict(lr=0.1, lambd=0.1, t0=0, maximize=True)),
    ("Rprop", {}),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5))),
    ("Rprop", dict(lr=0.1, step_sizes=(0.02, 0.15))),           # both clamps come into play
    ("Rprop", dict(lr=0.01, etas=(0.6, 1.1), maximize=True)),
    ("Adafactor", {}),
    ("Adafactor", dict(lr=0.05, beta2_decay=-0.5, eps=(1e-3, 1e-2))),
    ("Adafactor", dict(lr=0.01, weight_decay=0.1, d=2.0)),
    ("Adafactor", dict(lr=0.1, eps=(None, 0.5), maximize=True)),  # alpha from eps2
]

DEFAULTS = {"SGD": {}, "Adam": {}, "AdamW": {}, "RMSprop": {}, "Adagrad": {}}


def _ids(config):
    name, kwargs = config
    return name + "-" + ("-".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults")


def make_params(rng, dtype):
    arrays = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    return ([gradient.tensor(a, requires_grad=True) for a in arrays],
            [torch.tensor(a, requires_grad=True) for a in arrays])


def feed_grads(rng, ours, theirs, dtype, step):
    """Give both parameter lists one step's gradients; the 0-d one gets none every third step."""
    for k, (a, b) in enumerate(zip(ours, theirs)):
        if k == 2 and step % 3 == 1:
            a.grad = b.grad = None
            continue
        g = rng.standard_normal(a.shape).astype(dtype)
        a.grad, b.grad = gradient.tensor(g), torch.tensor(g)


def assert_close(ours, theirs, dtype):
    rtol, atol = (1e-6, 1e-7) if dtype == "float32" else (1e-12, 1e-14)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol)


def assert_state_matches(opt, topt, dtype):
    """Same state dict as torch: group options, parameter numbering, state tensors."""
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    assert set(ours["state"]) == set(theirs["state"])
    for index, state in theirs["state"].items():
        assert set(ours["state"][index]) == set(state)
        for key, value in state.items():
            mine = ours["state"][index][key]
            assert mine.dtype.name == str(value.dtype).removeprefix("torch.")
            assert_close(mine, value, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS, ids=_ids)
def test_matches_torch_over_20_steps(config, dtype):
    name, kwargs = config
    rng = np.random.default_rng(0)
    ours, theirs = make_params(rng, dtype)
    before = [p.detach().numpy().copy() for p in ours]
    opt, topt = getattr(optim, name)(ours, **kwargs), getattr(torch.optim, name)(theirs, **kwargs)
    for step in range(STEPS):
        feed_grads(rng, ours, theirs, dtype, step)
        opt.step()
        topt.step()
    for a, b, start in zip(ours, theirs, before):
        assert a.dtype.name == dtype
        assert not np.allclose(a.detach().numpy(), start)  # the parameters really moved
        assert_close(a, b, dtype)
    assert_state_matches(opt, topt, dtype)


# the optimizers whose every operation PyTorch's CPU kernels round as IEEE arithmetic does
# (its float32 sqrt is not correctly rounded: the steps of Adam, RMSprop, Adagrad, RAdam and
# the others that take a square root differ from it in the last bit of a few values in a
# hundred, gradient's being the correctly rounded ones)
_IEEE = ("SGD", "Adamax", "ASGD")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", [c for c in CONFIGS if c[0] in _IEEE], ids=_ids)
def test_bits_as_torch_over_20_steps(config, dtype):
    """add and sub with alpha, addcmul, addcdiv and lerp give torch's bits (one fused
    multiply-add each where its kernels make one), so these steps do too."""
    name, kwargs = config
    rng = np.random.default_rng(0)
    ours, theirs = make_params(rng, dtype)
    opt, topt = getattr(optim, name)(ours, **kwargs), getattr(torch.optim, name)(theirs, **kwargs)
    for step in range(STEPS):
        feed_grads(rng, ours, theirs, dtype, step)
        opt.step()
        topt.step()
    for a, b in zip(ours, theirs):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())


@pytest.mark.parametrize("name, group_options", [
    ("SGD", [dict(lr=0.1, momentum=0.9), dict(lr=0.01, nesterov=False)]),
    ("Adam", [dict(lr=0.01), dict(lr=0.001, amsgrad=True, weight_decay=0.1)]),
    ("AdamW", [dict(lr=0.01, weight_decay=0.0), dict(lr=0.002)]),
    ("RMSprop", [dict(lr=0.01, centered=True), dict(lr=0.001)]),
    ("Adagrad", [dict(lr=0.1), dict(lr=0.02, lr_decay=0.1)]),
    ("NAdam", [dict(lr=0.01), dict(lr=0.002, weight_decay=0.1, decoupled_weight_decay=True)]),
    ("RAdam", [dict(lr=0.01, betas=(0.5, 0.9)), dict(lr=0.001, weight_decay=0.1)]),
    ("Adamax", [dict(lr=0.01), dict(lr=0.05, maximize=True, eps=1e-2)]),
    ("Adadelta", [dict(lr=0.5), dict(lr=1.0, rho=0.5, weight_decay=0.1)]),
    ("ASGD", [dict(lr=0.05, t0=2), dict(lr=0.01, lambd=0.1)]),
    ("Rprop", [dict(lr=0.05), dict(lr=0.01, etas=(0.2, 1.3), maximize=True)]),
    ("Adafactor", [dict(lr=0.05), dict(lr=0.01, beta2_decay=-0.6, weight_decay=0.1)]),
])
def test_two_parameter_groups_with_their_own_options(name, group_options):
    rng = np.random.default_rng(1)
    ours, theirs = make_params(rng, "float32")
    defaults = dict(momentum=0.5) if name == "SGD" else {}
    opt = getattr(optim, name)([dict(params=ours[:2], **group_options[0]),
                                dict(params=ours[2:], **group_options[1])], **defaults)
    topt = getattr(torch.optim, name)([dict(params=theirs[:2], **group_options[0]),
                                       dict(params=theirs[2:], **group_options[1])], **defaults)
    for step in range(STEPS):
        feed_grads(rng, ours, theirs, "float32", step)
        opt.step()
        topt.step()
    for a, b in zip(ours, theirs):
        assert_close(a, b, "float32")
    assert_state_matches(opt, topt, "float32")


def test_training_through_autograd_gives_torch_losses():
    """A small regression trained with gradient's own backward: losses follow torch's."""
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 4)).astype("float32"), rng.standard_normal((16, 1)).astype("float32")
    w0, b0 = rng.standard_normal((4, 1)).astype("float32"), np.zeros(1, "float32")
    w, b = gradient.tensor(w0, requires_grad=True), gradient.tensor(b0, requires_grad=True)
    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    opt = optim.AdamW([w, b], lr=0.05, weight_decay=0.1)
    topt = torch.optim.AdamW([tw, tb], lr=0.05, weight_decay=0.1)
    X, Y, tX, tY = gradient.tensor(x), gradient.tensor(y), torch.tensor(x), torch.tensor(y)
    losses, tlosses = [], []
    for _ in range(20):
        opt.zero_grad()
        loss = ((X @ w + b - Y) ** 2).mean()
        loss.backward()
        opt.step()
        topt.zero_grad()
        tloss = ((tX @ tw + tb - tY) ** 2).mean()
        tloss.backward()
        topt.step()
        losses.append(loss.item())
        tlosses.append(tloss.item())
    np.testing.assert_allclose(losses, tlosses, rtol=1e-5)
    assert losses[-1] < losses[0] / 2


def _cube_sum_closure(opt, p):
    """A closure for ``opt.step`` (gradient's or torch's): clears the gradients, backpropagates
    ``sum(p ** 3)`` and returns it."""
    def closure():
        opt.zero_grad()
        loss = (p * p * p).sum()
        loss.backward()
        return loss
    return closure


def test_step_with_closure_returns_its_loss_and_computes_grads():
    p, tp = gradient.tensor([1.0, -2.0], requires_grad=True), torch.tensor([1.0, -2.0], requires_grad=True)
    opt, topt = optim.SGD([p], lr=0.1, momentum=0.9), torch.optim.SGD([tp], lr=0.1, momentum=0.9)

    for _ in range(3):
        with gradient.no_grad():  # the closure runs with grad enabled even so, as in torch
            loss = opt.step(_cube_sum_closure(opt, p))
        tloss = topt.step(_cube_sum_closure(topt, tp))
        assert loss.item() == pytest.approx(tloss.item(), rel=1e-6)
    assert_close(p, tp, "float32")


def test_zero_grad():
    p = gradient.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    (p * 3).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert p.grad is not None and p.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None
    opt.step()  # no gradient: nothing changes
    assert p.tolist() == [1.0, 2.0]


def test_update_is_in_place_and_recorded_by_the_version_counter():
    p = gradient.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    version = p._version.value
    p.grad = gradient.tensor([1.0, 1.0])
    before = id(p)
    opt.step()
    assert id(p) == before and p.requires_grad and p.is_leaf and p.grad_fn is None
    np.testing.assert_allclose(p.detach().numpy(), [0.9, 1.9], rtol=1e-6)
    assert p._version.value > version


def test_add_param_group_takes_defaults():
    a, b = gradient.zeros(2, requires_grad=True), gradient.zeros(3, requires_grad=True)
    ta, tb = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    opt, topt = optim.Adam([a], lr=0.01, betas=(0.8, 0.9)), torch.optim.Adam([ta], lr=0.01, betas=(0.8, 0.9))
    opt.add_param_group({"params": b, "lr": 0.1})
    topt.add_param_group({"params": tb, "lr": 0.1})
    assert opt.state_dict()["param_groups"] == topt.state_dict()["param_groups"]
    for _ in range(3):
        for p, tp in ((a, ta), (b, tb)):
            p.grad, tp.grad = gradient.ones(*p.shape), torch.ones(*tp.shape)
        opt.step()
        topt.step()
    assert_close(b, tb, "float32")


def test_named_parameters_keep_their_names():
    a, ta = gradient.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt, topt = optim.SGD([("w", a)], lr=0.1), torch.optim.SGD([("w", ta)], lr=0.1)
    assert opt.param_groups[0]["params"] == [a]
    assert opt.state_dict()["param_groups"] == topt.state_dict()["param_groups"]


# ---------------------------------------------------------------------- state dicts
def clone_state_dict(sd):
    """A deep copy, as saving to a file and loading back would give."""
    return {"state": {k: {n: (v.clone() if isinstance(v, gradient.Tensor) else v) for n, v in s.items()}
                      for k, s in sd["state"].items()},
            "param_groups": [dict(g) for g in sd["param_groups"]]}


@pytest.mark.parametrize("config", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1)),
    ("Adamax", dict(lr=0.01, maximize=True)),
    ("Adadelta", dict(lr=0.5, weight_decay=0.1)),
    ("ASGD", dict(lr=0.05, t0=5)),
    ("Rprop", dict(lr=0.05, maximize=True)),
    ("Adafactor", dict(lr=0.05, weight_decay=0.1)),
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

    # the new optimizer is built with another lr: loading restores the saved hyper-parameters
    resumed = getattr(optim, name)(copies, **{**kwargs, "lr": 123.0})
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0]["lr"] == kwargs["lr"]
    assert resumed.param_groups[0]["params"] == copies
    run(opt, params, grads[10:])
    run(resumed, copies, grads[10:])
    for a, b in zip(params, copies):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    # the loaded state was copied, not shared with the dict it came from
    first = next(iter(saved["state"].values()))
    assert all(first[k] is not resumed.state[copies[0]][k] for k in first)


def test_state_dict_layout_is_torchs():
    p, tp = gradient.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    q, tq = gradient.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    opt = optim.AdamW([{"params": [p]}, {"params": [q], "weight_decay": 0.0}], lr=0.1)
    topt = torch.optim.AdamW([{"params": [tp]}, {"params": [tq], "weight_decay": 0.0}], lr=0.1)
    p.grad, tp.grad = gradient.ones(2), torch.ones(2)  # q gets no gradient: no state for it
    opt.step()
    topt.step()
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd["param_groups"] == tsd["param_groups"]
    assert list(sd["state"]) == list(tsd["state"]) == [0]
    assert sd["state"][0]["step"].item() == 1.0 and sd["state"][0]["step"].dtype is gradient.float32


# (optimizer, its options, steps torch takes before handing over its state dict)
TORCH_STATE_CASES = [
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01), 5),
    *((name, dict(lr=0.01, weight_decay=0.01), 8) for name in ("NAdam", "RAdam", "Adamax")),
    *((name, dict(lr=0.05), 8) for name in ("Adadelta", "Rprop", "Adafactor")),
    ("ASGD", dict(lr=0.05, t0=3), 8),
]


@pytest.mark.parametrize("name, options, steps", TORCH_STATE_CASES,
                         ids=[case[0] for case in TORCH_STATE_CASES])
def test_loads_a_state_dict_saved_by_torch(name, options, steps):
    """torch's state dict with its tensors converted: gradient continues where torch would."""
    rng = np.random.default_rng(4)
    ours, theirs = make_params(rng, "float32")
    topt = getattr(torch.optim, name)(theirs, **options)
    for step in range(steps):
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
    assert all(opt.param_groups[0][key] == value for key, value in options.items())
    for step in range(steps, steps + 6):
        feed_grads(rng, ours, theirs, "float32", step)
        opt.step()
        topt.step()
    for a, b in zip(ours, theirs):
        assert_close(a, b, "float32")


@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Adamax", "Adadelta", "ASGD", "Rprop",
                                  "Adafactor"])
def test_zero_grad_and_closure(name):
    p, tp = gradient.tensor([1.0, -2.0], requires_grad=True), torch.tensor([1.0, -2.0], requires_grad=True)
    opt, topt = getattr(optim, name)([p], lr=0.1), getattr(torch.optim, name)([tp], lr=0.1)
    for _ in range(3):
        loss, tloss = opt.step(_cube_sum_closure(opt, p)), topt.step(_cube_sum_closure(topt, tp))
        assert loss.item() == pytest.approx(tloss.item(), rel=1e-6)
    assert_close(p, tp, "float32")
    opt.zero_grad(set_to_none=False)
    assert p.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None
    before = p.tolist()
    opt.step()  # no gradient: nothing changes
    assert p.tolist() == before


def test_adamw_keeps_decoupled_decay_when_loading_an_adam_state_dict():
    p = gradient.ones(2, requires_grad=True)
    sd = optim.Adam([p]).state_dict()
    opt = optim.AdamW([gradient.ones(2, requires_grad=True)])
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True


def test_load_state_dict_checks_group_sizes():
    a, b = gradient.ones(2, requires_grad=True), gradient.ones(2, requires_grad=True)
    sd = optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the state dict and 1"):
        optim.SGD([a], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="number of parameter groups: it has 1, this optimizer has 2"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        optim.SGD([a], lr=0.1).load_state_dict({"param_groups": []})


# ---------------------------------------------------------------------- errors
def _p(lib):
    return (gradient if lib is optim else torch).zeros(2, requires_grad=True)


BAD = [
    ("Adam", dict(lr=-1.0), ValueError, "learning rate"),
    ("Adam", dict(betas=(1.0, 0.9)), ValueError, "beta parameter at index 0"),
    ("AdamW", dict(betas=(0.9, -0.1)), ValueError, "beta parameter at index 1"),
    ("Adam", dict(eps=-1e-8), ValueError, "epsilon"),
    ("AdamW", dict(weight_decay=-0.1), ValueError, "weight_decay"),
    ("SGD", dict(lr=-0.1), ValueError, "learning rate"),
    ("SGD", dict(momentum=-0.5), ValueError, "momentum"),
    ("SGD", dict(nesterov=True), ValueError, "Nesterov momentum requires"),
    ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError, "Nesterov"),
    ("RMSprop", dict(alpha=-0.1), ValueError, "alpha"),
    ("RMSprop", dict(momentum=-0.1), ValueError, "momentum"),
    ("Adagrad", dict(lr_decay=-0.1), ValueError, "lr_decay"),
    ("Adagrad", dict(initial_accumulator_value=-1.0), ValueError, "initial_accumulator_value"),
    ("NAdam", dict(lr=-1.0), ValueError, "learning rate"),
    ("NAdam", dict(betas=(1.0, 0.9)), ValueError, "beta parameter at index 0"),
    ("NAdam", dict(momentum_decay=-0.1), ValueError, "momentum_decay"),
    ("NAdam", dict(eps=-1.0), ValueError, "epsilon"),
    ("RAdam", dict(betas=(0.9, 1.0)), ValueError, "beta parameter at index 1"),
    ("RAdam", dict(weight_decay=-0.1), ValueError, "weight_decay"),
    ("Adamax", dict(lr=-0.1), ValueError, "learning rate"),
    ("Adamax", dict(betas=(-0.1, 0.9)), ValueError, "beta parameter at index 0"),
    ("Adamax", dict(weight_decay=-1.0), ValueError, "weight_decay"),
    ("Adadelta", dict(lr=-1.0), ValueError, "Invalid learning rate: -1"),
    ("Adadelta", dict(rho=1.5), ValueError, "rho"),
    ("Adadelta", dict(eps=-1e-6), ValueError, "epsilon"),
    ("Adadelta", dict(weight_decay=-0.1), ValueError, "weight_decay"),
    ("ASGD", dict(lr=-0.1), ValueError, "learning rate"),
    ("ASGD", dict(weight_decay=-0.1), ValueError, "weight_decay"),
    ("Rprop", dict(lr=-0.1), ValueError, "learning rate"),
    ("Rprop", dict(etas=(1.2, 0.5)), ValueError, "eta values"),
    ("Rprop", dict(etas=(0.0, 1.2)), ValueError, "eta values"),
    ("Rprop", dict(etas=(0.5, 1.0)), ValueError, "eta values"),
    ("LBFGS", dict(lr=-1.0), ValueError, "learning rate"),
    ("Adafactor", dict(lr=-1.0), ValueError, "learning rate"),
    ("Adafactor", dict(beta2_decay=0.5), ValueError, "beta2_decay"),
    ("Adafactor", dict(eps=(-1.0, 1e-3)), ValueError, "epsilon1"),
    ("Adafactor", dict(eps=(None, -1e-3)), ValueError, "epsilon2"),
    ("Adafactor", dict(d=0.5), ValueError, "clipping threshold d"),
    ("Adafactor", dict(weight_decay=-0.1), ValueError, "weight_decay"),
]


@pytest.mark.parametrize("name, kwargs, exc, match", BAD, ids=[f"{b[0]}-{b[3]}" for b in BAD])
def test_bad_hyperparameters_raise_like_torch(name, kwargs, exc, match):
    with pytest.raises(exc):
        getattr(torch.optim, name)([_p(torch)], **kwargs)
    with pytest.raises(exc, match=match) as info:
        getattr(optim, name)([_p(optim)], **kwargs)
    assert isinstance(info.value, GradientError)


def test_bad_hyperparameters_in_a_group_are_refused():
    opt = optim.Adam([_p(optim)])
    with pytest.raises(ValueError, match="learning rate"):
        opt.add_param_group({"params": [_p(optim)], "lr": -1.0})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("make, exc, match", [
    (lambda lib, P: P(lib), TypeError, "iterable of Tensors or dicts"),
    (lambda lib, P: [], ValueError, "empty parameter list"),
    (lambda lib, P: [P(lib), 3.0], TypeError, "can only optimize Tensors"),
    (lambda lib, P: [{"params": {P(lib)}}], TypeError, "ordered collections"),
    (lambda lib, P: [P(lib) * 2], ValueError, "non-leaf"),
    (lambda lib, P: [{"params": [p]} for p in [P(lib)] * 2], ValueError, "more than one parameter group"),
    (lambda lib, P: [{"params": [P(lib)]}, P(lib)], TypeError, "param_group must be a dict"),
], ids=["single-tensor", "empty", "not-a-tensor", "set", "non-leaf", "two-groups", "mixed"])
def test_bad_params_raise_like_torch(make, exc, match):
    def P(lib):
        return _p(lib)
    with pytest.raises(exc):
        torch.optim.SGD(make(torch, P), lr=0.1)
    with pytest.raises(exc, match=match):
        optim.SGD(make(optim, P), lr=0.1)


def test_a_set_of_parameters_is_refused():
    """torch refuses a set only as a group's params; its order changes between runs either way."""
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD({_p(optim), _p(optim)}, lr=0.1)


def test_duplicate_parameter_in_one_group_is_an_error():
    """torch warns (and says it will become an error); gradient refuses it."""
    p, tp = _p(optim), _p(torch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.optim.SGD([tp, tp], lr=0.1)
    assert any("duplicate parameters" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match="duplicate parameters"):
        optim.SGD([p, p], lr=0.1)


def test_unsupported_options_are_refused_clearly():
    with pytest.raises(NotImplementedError, match="differentiable"):
        optim.Adam([_p(optim)], differentiable=True)
    with pytest.raises(ValueError, match="1-element"):
        optim.SGD([_p(optim)], lr=gradient.tensor([0.1, 0.2]))
    optim.AdamW([_p(optim)], fused=True, foreach=False)  # accepted, as nanoGPT passes them


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "NAdam", "RAdam",
                                  "Adamax", "Adadelta", "ASGD", "Rprop"])
def test_a_tensor_lr_trains_and_schedules_as_torchs(name):
    results = []
    for lib in (gradient, torch):
        w = lib.nn.Parameter(lib.tensor([1.0, -2.0, 0.5], dtype=lib.float64))
        lr = lib.tensor(0.05, dtype=lib.float64)
        opt = getattr(lib.optim, name)([w], lr=lr)
        sched = lib.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        for _ in range(5):
            opt.zero_grad()
            ((w - 0.3) ** 2).sum().backward()
            opt.step()
            sched.step()
        assert opt.param_groups[0]["lr"] is lr                 # filled in place, as torch
        results.append((w.detach().numpy(), float(lr)))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    assert results[0][1] == results[1][1]

