"""Learning-rate schedulers against torch.optim.lr_scheduler: the same lr, step by step."""

import math
import warnings

import pytest
import torch

import gradient
from gradient import optim
from gradient.optim import lr_scheduler

STEPS = 30


def make_optimizer(lib, kind="SGD"):
    """Two parameter groups with different lrs (and momentum / betas for OneCycleLR)."""
    P = (gradient if lib is optim else torch).zeros
    groups = [{"params": [P(2, requires_grad=True)]}, {"params": [P(3, requires_grad=True)], "lr": 0.01}]
    if kind == "SGD":
        return lib.SGD(groups, lr=0.1, momentum=0.9)
    return getattr(lib, kind)(groups, lr=0.1)


def sched_module(lib):
    return lr_scheduler if lib is optim else torch.optim.lr_scheduler


def run(lib, build, steps=STEPS, kind="SGD", epochs=None):
    """The lrs (and momenta) set at construction and after each of ``steps`` steps."""
    opt = make_optimizer(lib, kind)
    sched = build(sched_module(lib), opt)
    trace = []

    def record():
        trace.append((sched.get_last_lr(), [g["lr"] for g in opt.param_groups],
                      [g.get("momentum", g.get("betas")) for g in opt.param_groups]))

    record()
    for i in range(steps):
        opt.step()  # no gradients: parameters stay, but the step order is the right one
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sched.step(epochs[i]) if epochs is not None else sched.step()
        record()
    return trace


def same_as_torch(build, **kwargs):
    ours, theirs = run(optim, build, **kwargs), run(torch.optim, build, **kwargs)
    assert ours == theirs  # exact: the same float operations in the same order
    return ours


SCHEDULERS = {
    "LambdaLR": lambda m, o: m.LambdaLR(o, [lambda e: 0.9 ** e, lambda e: 1 / (1 + e)]),
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[3, 10, 10, 20], gamma=0.3),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=6),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=12),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=20, power=2.0),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=1e-3),
    "CosineAnnealingLR-long": lambda m, o: m.CosineAnnealingLR(o, T_max=40),
    "OneCycleLR-cos": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=STEPS),
    "OneCycleLR-linear": lambda m, o: m.OneCycleLR(o, max_lr=0.3, epochs=3, steps_per_epoch=10,
                                                   anneal_strategy="linear", pct_start=0.4),
    "OneCycleLR-three-phase": lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=STEPS,
                                                        three_phase=True, base_momentum=0.8,
                                                        max_momentum=[0.9, 0.99]),
    "OneCycleLR-no-momentum": lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=STEPS,
                                                        cycle_momentum=False),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=25)],
        milestones=[5]),
    "SequentialLR-three": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.5, total_iters=10), m.ExponentialLR(o, gamma=0.9),
            m.StepLR(o, step_size=3)], milestones=[4, 12]),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_lr_sequence_equals_torch(name):
    trace = same_as_torch(SCHEDULERS[name])
    assert len({tuple(t[1]) for t in trace}) >= 2  # the lr really changes along the way


@pytest.mark.parametrize("name", ["OneCycleLR-cos", "OneCycleLR-three-phase"])
def test_one_cycle_cycles_adam_beta1(name):
    trace = same_as_torch(SCHEDULERS[name], kind="Adam")
    beta1s = [t[2][0][0] for t in trace]
    assert min(beta1s) < max(beta1s)
    assert all(t[2][0][1] == 0.999 for t in trace)  # beta2 is left alone


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "LinearLR", "ExponentialLR",
                                  "CosineAnnealingLR", "ConstantLR", "PolynomialLR"])
def test_step_with_epoch_uses_the_closed_form_like_torch(name):
    epochs = [0, 1, 2, 5, 9, 3, 14, 15, 30, 7]
    same_as_torch(SCHEDULERS[name], steps=len(epochs), epochs=epochs)


def test_one_cycle_refuses_to_step_past_total_steps():
    build = SCHEDULERS["OneCycleLR-cos"]
    for lib in (optim, torch.optim):
        with pytest.raises(ValueError, match="Tried to step 31 times"):
            run(lib, build, steps=STEPS + 1)


def test_stepping_the_scheduler_before_the_optimizer_warns_like_torch():
    for lib in (optim, torch.optim):
        sched = sched_module(lib).StepLR(make_optimizer(lib), step_size=2)
        with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
            sched.step()
    opt = make_optimizer(optim)
    sched = lr_scheduler.StepLR(opt, step_size=2)
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()


def test_initial_lr_and_base_lrs():
    opt = make_optimizer(optim)
    sched = lr_scheduler.ExponentialLR(opt, gamma=0.5)
    assert sched.base_lrs == [0.1, 0.01] == [g["initial_lr"] for g in opt.param_groups]
    assert sched.last_epoch == 0 and sched.get_last_lr() == [0.1, 0.01]


def test_resuming_needs_initial_lr():
    for lib in (optim, torch.optim):
        with pytest.raises(KeyError, match="initial_lr"):
            sched_module(lib).StepLR(make_optimizer(lib), step_size=3, last_epoch=5)


# ---------------------------------------------------------------------- state dicts
@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "OneCycleLR-cos", "SequentialLR",
                                  "LambdaLR", "warmup_cosine"])
def test_scheduler_state_dict_round_trip(name):
    """Save optimizer and scheduler mid-way, rebuild both, load: the rest of the lrs are the same."""
    build = (SCHEDULERS[name] if name != "warmup_cosine" else
             lambda m, o: lr_scheduler.warmup_cosine(o, warmup_steps=5, total_steps=25, min_lr_ratio=0.1))
    assert_resumes_identically(build, steps_before=10, steps_after=15)


def assert_resumes_identically(build, steps_before: int, steps_after: int) -> None:
    """``build(lr_scheduler, optimizer)``'s scheduler saved after ``steps_before`` steps and loaded
    into a rebuilt optimizer and scheduler: the next ``steps_after`` learning rates (and
    momentums, for schedulers that cycle them) are the uninterrupted run's."""
    opt = make_optimizer(optim)
    sched = build(lr_scheduler, opt)
    for _ in range(steps_before):
        opt.step()
        sched.step()
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    assert "optimizer" not in sched_state

    opt2 = make_optimizer(optim)
    sched2 = build(lr_scheduler, opt2)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    assert sched2.get_last_lr() == sched.get_last_lr()
    # (ChainedScheduler, like torch's, keeps no epoch of its own)
    assert getattr(sched2, "last_epoch", None) == getattr(sched, "last_epoch", None)
    for _ in range(steps_after):
        for o, s in ((opt, sched), (opt2, sched2)):
            o.step()
            s.step()
        assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
        assert ([g.get("momentum") for g in opt2.param_groups]
                == [g.get("momentum") for g in opt.param_groups])


def test_lambda_lr_state_dict_keeps_callable_objects_only():
    opt = make_optimizer(optim)
    sched = lr_scheduler.LambdaLR(opt, [lambda e: 1.0, lr_scheduler.WarmupCosine(2, 10)])
    saved = sched.state_dict()["lr_lambdas"]
    assert saved[0] is None and saved[1] == {"warmup_steps": 2, "total_steps": 10, "min_lr_ratio": 0.0}


# ---------------------------------------------------------------------- warmup + cosine
def hf_cosine_with_min_lr(step, warmup, total, min_lr_rate):
    """transformers' _get_cosine_with_min_lr_schedule_with_warmup_lr_lambda (num_cycles=0.5),
    copied as the reference (transformers is not installed here)."""
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(0.5) * 2.0 * progress))
    factor = factor * (1 - min_lr_rate) + min_lr_rate
    return max(0, factor)


@pytest.mark.parametrize("warmup, total, ratio", [(5, 25, 0.0), (10, 30, 0.1), (0, 20, 0.0), (7, 8, 0.5)])
def test_warmup_cosine_follows_the_reference_formula(warmup, total, ratio):
    opt = make_optimizer(optim)
    sched = lr_scheduler.warmup_cosine(opt, warmup_steps=warmup, total_steps=total, min_lr_ratio=ratio)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(total + 10):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    for step, lr in enumerate(lrs[:total + 1]):
        assert lr == pytest.approx(0.1 * hf_cosine_with_min_lr(step, warmup, total, ratio), abs=1e-15)
    assert lrs[warmup] == pytest.approx(0.1)  # the peak is the optimizer's lr
    assert lrs[total:] == pytest.approx([0.1 * ratio] * 11)  # then it stays at the floor
    if warmup:
        assert lrs[0] == 0.0 and all(a < b for a, b in zip(lrs[:warmup], lrs[1:warmup + 1]))


def test_warmup_cosine_is_a_lambda_lr_that_torch_runs_the_same_way():
    factor = lr_scheduler.WarmupCosine(4, 20, 0.05)
    same_as_torch(lambda m, o: m.LambdaLR(o, factor))


def test_warmup_cosine_rejects_bad_arguments():
    opt = make_optimizer(optim)
    with pytest.raises(ValueError, match="warmup_steps"):
        lr_scheduler.warmup_cosine(opt, warmup_steps=-1, total_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        lr_scheduler.warmup_cosine(opt, warmup_steps=10, total_steps=5)
    with pytest.raises(ValueError, match="min_lr_ratio"):
        lr_scheduler.warmup_cosine(opt, warmup_steps=1, total_steps=5, min_lr_ratio=1.5)


# ---------------------------------------------------------------------- errors
BAD = {
    "not-an-optimizer": (lambda m, o: m.StepLR(object(), step_size=2), TypeError, "not an Optimizer"),
    "lambdas": (lambda m, o: m.LambdaLR(o, [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas"),
    "linear-start": (lambda m, o: m.LinearLR(o, start_factor=0.0), ValueError, "Starting multiplicative"),
    "linear-end": (lambda m, o: m.LinearLR(o, end_factor=1.5), ValueError, "Ending multiplicative"),
    "constant": (lambda m, o: m.ConstantLR(o, factor=2.0), ValueError, "between 0 and 1"),
    "onecycle-steps": (lambda m, o: m.OneCycleLR(o, max_lr=0.1), ValueError, "total_steps OR"),
    "onecycle-total": (lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=0), ValueError,
                       "positive integer total_steps"),
    "onecycle-pct": (lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=9, pct_start=1.5),
                     ValueError, "pct_start"),
    "onecycle-anneal": (lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=9, anneal_strategy="exp"),
                        ValueError, "anneal_strategy"),
    "onecycle-max-lr": (lambda m, o: m.OneCycleLR(o, max_lr=[0.1], total_steps=9), ValueError,
                        "max_lr must have the same length"),
    "sequential-milestones": (lambda m, o: m.SequentialLR(o, [m.StepLR(o, 2), m.StepLR(o, 3)],
                                                          milestones=[]), ValueError, "milestone"),
    "sequential-empty": (lambda m, o: m.SequentialLR(o, [], milestones=[]), ValueError,
                         "at least one scheduler"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_errors_like_torch(name):
    build, exc, match = BAD[name]
    with pytest.raises(exc):
        build(torch.optim.lr_scheduler, make_optimizer(torch.optim))
    with pytest.raises(exc, match=match):
        build(lr_scheduler, make_optimizer(optim))


def test_cycle_momentum_needs_an_optimizer_with_momentum():
    for lib in (optim, torch.optim):
        opt = make_optimizer(lib, "Adagrad")
        with pytest.raises(ValueError, match="momentum or beta1"):
            sched_module(lib).OneCycleLR(opt, max_lr=0.1, total_steps=10)


def test_sequential_lr_refuses_schedulers_of_another_optimizer():
    a, b = make_optimizer(optim), make_optimizer(optim)
    with pytest.raises(ValueError, match="same optimizer"):
        lr_scheduler.SequentialLR(a, [lr_scheduler.StepLR(a, 2), lr_scheduler.StepLR(b, 2)], [3])
