"""ReduceLROnPlateau, CyclicLR, CosineAnnealingWarmRestarts, ChainedScheduler and
MultiplicativeLR against torch.optim.lr_scheduler: the same lrs (and momenta), step by step."""

import math
import warnings

import pytest
import torch

import gradient
from gradient import optim
from gradient.errors import GradientError
from gradient.optim import lr_scheduler

from .test_lr_scheduler import assert_resumes_identically, make_optimizer, sched_module

STEPS = 60


def trace_of(lib, build, steps=STEPS, kind="SGD", epochs=None, metrics=None, attrs=()):
    """The lrs and momenta (and the scheduler's ``attrs``) after construction and after each
    step, and the scheduler."""
    opt = make_optimizer(lib, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a chain in a SequentialLR steps early, in torch too
        sched = build(sched_module(lib), opt)
    trace = []

    def record():
        trace.append((list(sched.get_last_lr()), [g["lr"] for g in opt.param_groups],
                      [g.get("momentum", g.get("betas")) for g in opt.param_groups]
                      + [getattr(sched, name) for name in attrs]))

    record()
    for i in range(steps):
        opt.step()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # step(epoch) is deprecated in torch
            if metrics is not None:
                sched.step(metrics[i])
            elif epochs is not None:
                sched.step(epochs[i])
            else:
                sched.step()
        record()
    return trace, sched


def flat(trace):
    out = []
    for last_lr, lrs, momenta in trace:
        out += list(last_lr) + list(lrs)
        for m in momenta:
            out += list(m) if isinstance(m, tuple) else [m]
    return out


def assert_same_as_torch(build, **kwargs):
    ours, _ = trace_of(optim, build, **kwargs)
    theirs, _ = trace_of(torch.optim, build, **kwargs)
    assert len(ours) == len(theirs)
    a, b = flat(ours), flat(theirs)
    assert len(a) == len(b)
    assert a == pytest.approx(b, rel=1e-12, abs=0)
    return ours


class HalfEveryCycle:
    """A callable-object scale_fn: its attributes go into CyclicLR's state dict."""

    def __init__(self, base=0.5):
        self.base = base

    def __call__(self, x):
        return self.base ** (x - 1)


def resumed_cyclic(m, o):
    """A CyclicLR resumed at batch 12: a first one records the groups' initial_lr and momenta."""
    m.CyclicLR(o, 0.01, 0.1, step_size_up=5)
    return m.CyclicLR(o, 0.01, 0.1, step_size_up=5, last_epoch=12)


SCHEDULERS = {
    "WarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=7),
    "WarmRestarts-mult": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2,
                                                                    eta_min=1e-3),
    "WarmRestarts-T0=1-mult3": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=1, T_mult=3),
    "Cyclic-triangular": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5),
    "Cyclic-triangular2": lambda m, o: m.CyclicLR(o, base_lr=[0.01, 0.001], max_lr=[0.1, 0.05],
                                                  step_size_up=4, step_size_down=7,
                                                  mode="triangular2"),
    "Cyclic-exp_range": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.2, step_size_up=6,
                                                mode="exp_range", gamma=0.97,
                                                base_momentum=[0.7, 0.8], max_momentum=0.95),
    "Cyclic-scale_fn-cycle": lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=3,
                                                     scale_fn=HalfEveryCycle(0.7)),
    "Cyclic-scale_fn-iterations": lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=5,
                                                          scale_fn=lambda x: 1 / (1 + 0.1 * x),
                                                          scale_mode="iterations"),
    "Cyclic-no-momentum": lambda m, o: m.CyclicLR(o, 0.001, 0.01, step_size_up=8,
                                                  step_size_down=2, cycle_momentum=False),
    "Cyclic-resume": lambda m, o: resumed_cyclic(m, o),
    "Chained": lambda m, o: m.ChainedScheduler([m.ConstantLR(o, factor=0.1, total_iters=20),
                                                m.ExponentialLR(o, gamma=0.9)], optimizer=o),
    "Chained-three": lambda m, o: m.ChainedScheduler([
        m.LinearLR(o, start_factor=0.2, total_iters=10), m.StepLR(o, step_size=9, gamma=0.5),
        m.CosineAnnealingLR(o, T_max=25, eta_min=1e-4)]),
    "Chained-in-Sequential": lambda m, o: m.SequentialLR(o, [
        m.ChainedScheduler([m.ConstantLR(o, factor=0.5, total_iters=3),
                            m.ExponentialLR(o, gamma=0.95)]),
        m.CosineAnnealingWarmRestarts(o, T_0=8)], milestones=[12]),
    "Multiplicative": lambda m, o: m.MultiplicativeLR(o, [lambda e: 0.95, lambda e: 1 - e / 100]),
    "Polynomial": lambda m, o: m.PolynomialLR(o, total_iters=40, power=0.5),
    "Constant": lambda m, o: m.ConstantLR(o, factor=0.3, total_iters=25),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_lr_sequence_equals_torch(name):
    trace = assert_same_as_torch(SCHEDULERS[name])
    distinct = len({tuple(t[1]) for t in trace})
    assert distinct >= (2 if name == "Constant" else 5)  # the lr really moves along the way


@pytest.mark.parametrize("name", ["Cyclic-triangular", "Cyclic-exp_range"])
def test_cyclic_cycles_adam_beta1_and_leaves_beta2(name):
    trace = assert_same_as_torch(SCHEDULERS[name], kind="Adam")
    beta1s = [t[2][0][0] for t in trace]
    assert min(beta1s) < max(beta1s)
    assert all(t[2][0][1] == 0.999 for t in trace)


def test_cyclic_cycles_momentum_inversely():
    trace, sched = trace_of(optim, SCHEDULERS["Cyclic-triangular"], steps=10)
    assert trace[0][1][0] == 0.01 and trace[0][2][0] == 0.9  # starts at base_lr, max_momentum
    assert trace[5][1][0] == pytest.approx(0.1) and trace[5][2][0] == pytest.approx(0.8)
    assert trace[10][1][0] == pytest.approx(0.01)
    assert sched.optimizer.param_groups[0]["max_momentum"] == 0.9


@pytest.mark.parametrize("name", ["WarmRestarts", "WarmRestarts-mult", "WarmRestarts-T0=1-mult3"])
def test_warm_restarts_with_fractional_and_mixed_epochs(name):
    epochs = [0.0, 0.25, 0.5, 1.75, 2.0, 2.9, 3.0, 4.5, None, None, 9.2, 10.0, 13.5, None, 21.0,
              22.75, None, None, 45.3, 3.0, None, 0, 1.5, None, 30, 31.2]
    trace = assert_same_as_torch(SCHEDULERS[name], steps=len(epochs), epochs=epochs,
                                 attrs=("last_epoch", "T_cur", "T_i"))
    assert [t[2][-3] for t in trace[1:4]] == [0, 0, 0]  # last_epoch is the floor of the epoch


def test_warm_restarts_closed_form():
    """Per restart period, the lr follows the cosine from the initial lr to eta_min."""
    trace, sched = trace_of(optim, SCHEDULERS["WarmRestarts-mult"], steps=21)
    lrs = [t[1][0] for t in trace]
    starts = [0, 3, 9, 21]  # periods of 3, 6, 12
    for start, end in zip(starts, starts[1:]):
        for e in range(start, end):
            expected = 1e-3 + (0.1 - 1e-3) * (1 + math.cos(math.pi * (e - start) / (end - start))) / 2
            assert lrs[e] == pytest.approx(expected, rel=1e-12)
    assert lrs[21] == 0.1 and sched.T_i == 24 and sched.T_cur == 0


# ---------------------------------------------------------------------- ReduceLROnPlateau
LOSSES = ([1.0, 0.9, 0.8, 0.8, 0.79995, 0.81, 0.85, 0.79, 0.6, 0.61, 0.62, 0.63, 0.64, 0.65]
          + [0.7] * 10 + [0.5, 0.5, 0.49, 0.55] + [0.6] * 12 + [0.4, 0.41, 0.42, 0.43] * 4)

PLATEAU = {
    "defaults": (lambda m, o: m.ReduceLROnPlateau(o), LOSSES),
    "patience-factor": (lambda m, o: m.ReduceLROnPlateau(o, factor=0.5, patience=2), LOSSES),
    "patience-0": (lambda m, o: m.ReduceLROnPlateau(o, factor=0.7, patience=0), LOSSES),
    "abs-threshold": (lambda m, o: m.ReduceLROnPlateau(o, factor=0.5, patience=1, threshold=0.05,
                                                       threshold_mode="abs"), LOSSES),
    "cooldown-min_lr": (lambda m, o: m.ReduceLROnPlateau(o, factor=0.3, patience=1, cooldown=3,
                                                         min_lr=[0.005, 0.0009]), LOSSES),
    "scalar-min_lr": (lambda m, o: m.ReduceLROnPlateau(o, factor=0.5, patience=0, min_lr=0.004),
                      LOSSES),
    "eps-blocks-small-changes": (lambda m, o: m.ReduceLROnPlateau(o, factor=0.5, patience=0,
                                                                  eps=0.01), LOSSES),
    "max-rel": (lambda m, o: m.ReduceLROnPlateau(o, mode="max", factor=0.5, patience=2,
                                                 threshold=0.01), [-x for x in LOSSES]),
    "max-abs": (lambda m, o: m.ReduceLROnPlateau(o, mode="max", factor=0.2, patience=1,
                                                 threshold=0.02, threshold_mode="abs", cooldown=2),
                [1 - x for x in LOSSES]),
}


@pytest.mark.parametrize("name", list(PLATEAU))
def test_plateau_lrs_and_counters_equal_torch(name):
    build, metrics = PLATEAU[name]
    ours, sched = trace_of(optim, build, steps=len(metrics), metrics=metrics)
    theirs, tsched = trace_of(torch.optim, build, steps=len(metrics), metrics=metrics)
    assert flat(ours) == pytest.approx(flat(theirs), rel=1e-12, abs=0)
    assert len({tuple(t[1]) for t in ours}) >= 2  # it did reduce the lr
    for key in ("best", "num_bad_epochs", "cooldown_counter", "last_epoch", "min_lrs", "mode_worse"):
        assert getattr(sched, key) == getattr(tsched, key), key


def test_plateau_reduces_after_patience_bad_epochs_and_honours_min_lr():
    opt = make_optimizer(optim)
    sched = lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2, min_lr=[0.03, 0.0])
    for loss in [1.0, 1.0, 1.0]:
        sched.step(loss)
    assert sched.get_last_lr() == [0.1, 0.01] and sched.num_bad_epochs == 2
    sched.step(gradient.tensor(1.0))  # a 0-d tensor metric, as a loss would be
    assert sched.get_last_lr() == [0.05, 0.005] and sched.num_bad_epochs == 0
    for _ in range(3):
        sched.step(2.0)
    assert sched.get_last_lr() == [0.03, 0.0025]  # clipped at the first group's min_lr


def test_plateau_with_a_group_added_later_like_torch():
    for lib in (optim, torch.optim):
        opt = make_optimizer(lib)
        sched = sched_module(lib).ReduceLROnPlateau(opt, patience=0)
        opt.add_param_group({"params": [(gradient if lib is optim else torch).zeros(1)], "lr": 1.0})
        sched.step(1.0)
        sched.step(2.0)
        assert sched.get_last_lr() == pytest.approx([0.01, 0.001, 0.1])
        opt = make_optimizer(lib)
        sched = sched_module(lib).ReduceLROnPlateau(opt, patience=0, min_lr=[0.0, 0.0])
        opt.add_param_group({"params": [(gradient if lib is optim else torch).zeros(1)]})
        sched.step(1.0)
        with pytest.raises(RuntimeError, match="number of param groups"):
            sched.step(2.0)


def test_plateau_state_dict_round_trip():
    build, metrics = PLATEAU["cooldown-min_lr"]
    opt = make_optimizer(optim)
    sched = build(lr_scheduler, opt)
    for loss in metrics[:20]:
        opt.step()
        sched.step(loss)
    saved = sched.state_dict()
    assert "optimizer" not in saved and saved["num_bad_epochs"] == sched.num_bad_epochs
    opt2 = make_optimizer(optim)
    opt2.load_state_dict(opt.state_dict())
    sched2 = lr_scheduler.ReduceLROnPlateau(opt2)  # other settings: the state dict brings them
    sched2.load_state_dict(saved)
    assert sched2.factor == 0.3 and sched2.cooldown == 3 and sched2.best == sched.best
    for loss in metrics[20:]:
        for o, s in ((opt, sched), (opt2, sched2)):
            o.step()
            s.step(loss)
        assert sched2.get_last_lr() == sched.get_last_lr()
        assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]


# ---------------------------------------------------------------------- state dicts
@pytest.mark.parametrize("name", ["WarmRestarts-mult", "Cyclic-triangular2", "Cyclic-exp_range",
                                  "Cyclic-scale_fn-cycle", "Chained-three", "Multiplicative"])
def test_scheduler_state_dict_round_trip(name):
    """Save optimizer and scheduler mid-way, rebuild both, load: the rest of the lrs are the same."""
    assert_resumes_identically(SCHEDULERS[name], steps_before=17, steps_after=25)


def test_cyclic_state_dict_keeps_callable_objects_only():
    opt = make_optimizer(optim)
    sched = lr_scheduler.CyclicLR(opt, 0.01, 0.1, scale_fn=HalfEveryCycle(0.3))
    state = sched.state_dict()
    assert state["_scale_fn_custom"] == {"base": 0.3}
    fresh = lr_scheduler.CyclicLR(make_optimizer(optim), 0.01, 0.1, scale_fn=HalfEveryCycle())
    fresh.load_state_dict(state)
    assert fresh._scale_fn_custom.base == 0.3 and state["_scale_fn_custom"] == {"base": 0.3}
    lam = lr_scheduler.CyclicLR(make_optimizer(optim), 0.01, 0.1, scale_fn=lambda x: 1.0)
    assert lam.state_dict()["_scale_fn_custom"] is None


def test_chained_state_dict_holds_each_schedulers_state():
    opt = make_optimizer(optim)
    sched = SCHEDULERS["Chained"](lr_scheduler, opt)
    state = sched.state_dict()
    assert len(state["_schedulers"]) == 2 and state["_schedulers"][1]["gamma"] == 0.9
    assert "optimizer" not in state["_schedulers"][0]


# ---------------------------------------------------------------------- errors
BAD = {
    "plateau-factor": (lambda m, o: m.ReduceLROnPlateau(o, factor=1.0), ValueError, "Factor"),
    "plateau-mode": (lambda m, o: m.ReduceLROnPlateau(o, mode="up"), ValueError, "mode up"),
    "plateau-threshold-mode": (lambda m, o: m.ReduceLROnPlateau(o, threshold_mode="x"), ValueError,
                               "threshold mode"),
    "plateau-min-lrs": (lambda m, o: m.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError, "min_lrs"),
    "plateau-not-an-optimizer": (lambda m, o: m.ReduceLROnPlateau(object()), TypeError,
                                 "not an Optimizer"),
    "restarts-T_0": (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "T_0"),
    "restarts-T_0-float": (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2.5), ValueError,
                           "T_0"),
    "restarts-T_mult": (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), ValueError,
                        "T_mult"),
    "restarts-eta_min": (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2, eta_min="0"),
                         ValueError, "eta_min"),
    "restarts-negative-epoch": (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2).step(-1),
                                ValueError, "non-negative epoch"),
    "cyclic-mode": (lambda m, o: m.CyclicLR(o, 0.01, 0.1, mode="saw"), ValueError, "mode is invalid"),
    "cyclic-base-lr": (lambda m, o: m.CyclicLR(o, [0.01], 0.1), ValueError, "base_lr must have"),
    "cyclic-momentum": (lambda m, o: m.CyclicLR(o, 0.01, 0.1, max_momentum=[0.9]), ValueError,
                        "max_momentum must have"),
    "chained-empty": (lambda m, o: m.ChainedScheduler([]), ValueError, "at least one scheduler"),
    "chained-plateau": (lambda m, o: m.ChainedScheduler([m.ReduceLROnPlateau(o)]), ValueError,
                        "ReduceLROnPlateau"),
    "multiplicative-count": (lambda m, o: m.MultiplicativeLR(o, [lambda e: 1.0]), ValueError,
                             "Expected 2 lr_lambdas"),
    "multiplicative-not-callable": (lambda m, o: m.MultiplicativeLR(o, 0.9), TypeError,
                                    "lr_lambda should be a function"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_errors_like_torch(name):
    build, exc, match = BAD[name]
    with pytest.raises(exc):
        build(torch.optim.lr_scheduler, make_optimizer(torch.optim))
    with pytest.raises(exc, match=match) as info:
        build(lr_scheduler, make_optimizer(optim))
    assert isinstance(info.value, GradientError)


def test_cyclic_momentum_needs_an_optimizer_with_momentum():
    for lib in (optim, torch.optim):
        with pytest.raises(ValueError, match="momentum or beta1"):
            sched_module(lib).CyclicLR(make_optimizer(lib, "Adagrad"), 0.01, 0.1)
    sched_module(optim).CyclicLR(make_optimizer(optim, "Adagrad"), 0.01, 0.1, cycle_momentum=False)


def test_chained_refuses_schedulers_of_another_optimizer():
    for lib in (optim, torch.optim):
        m = sched_module(lib)
        a, b = make_optimizer(lib), make_optimizer(lib)
        with pytest.raises(ValueError, match="same optimizer"):
            m.ChainedScheduler([m.StepLR(a, 2), m.StepLR(b, 2)])
