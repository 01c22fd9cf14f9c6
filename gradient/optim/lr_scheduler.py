"""Learning-rate schedulers: change each parameter group's ``lr`` as training goes on.

They follow ``torch.optim.lr_scheduler`` step by step, including PyTorch's *recursive* forms
(most schedulers compute the next lr from the current ``group['lr']``, not from a closed
formula), so the sequence of learning rates is the one torch produces, to the last bit, and
a scheduler composes with others or with manual changes of ``lr`` the way it does in torch.

The protocol: building a scheduler records ``group['initial_lr']`` (the ``base_lrs``) and sets
the lr for epoch 0; call ``scheduler.step()`` once per epoch (or per batch) *after*
``optimizer.step()``; ``get_last_lr()`` is what was set last::

    opt = gradient.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = gradient.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    for epoch in range(100):
        train_one_epoch(model, opt)
        sched.step()

For GPT-style training, :func:`warmup_cosine` gives linear warmup then cosine decay.

:class:`ReduceLROnPlateau` is the odd one out: it is stepped with a metric
(``sched.step(val_loss)``) and lowers the lr when that metric stops improving.

Differences from PyTorch: ``step(epoch)`` (deprecated in torch) is supported the same way;
``get_lr()`` called directly does not warn; learning rates are Python numbers (no tensor lr).
"""

import math
import types
import warnings
from bisect import bisect_right
from collections import Counter

from ..errors import GradientError
from ..ops.argument_errors import as_ints, as_number
from ..tensor import Tensor
from .optimizer import Optimizer, OptimizerError, OptimizerTypeError

__all__ = ["LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR",
           "LinearLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR", "OneCycleLR",
           "SequentialLR", "ChainedScheduler", "ReduceLROnPlateau", "CyclicLR",
           "CosineAnnealingWarmRestarts", "warmup_cosine"]


def _set_lr(group: dict, lr) -> None:
    """A group's new learning rate; a tensor lr is filled in place (the optimizer and whoever
    else holds it see the change), as PyTorch's schedulers do."""
    if isinstance(group["lr"], Tensor):
        group["lr"].fill_(float(lr))
    else:
        group["lr"] = lr


def _copy(lr):
    """An lr kept as the initial one: a tensor lr is copied (it is filled in place later)."""
    return lr.clone() if isinstance(lr, Tensor) else lr


def _per_group(name: str, optimizer: Optimizer, value) -> list:
    """``value``, a number, once per parameter group (a list or tuple must already have one
    per group)."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise OptimizerError(f"{name} must have the same length as optimizer.param_groups. "
                                 f"{name} has {len(value)} values, param_groups has "
                                 f"{len(optimizer.param_groups)}.")
        return [as_number(v, name) for v in value]
    return [as_number(value, name)] * len(optimizer.param_groups)


class LRScheduler:
    """Base class of the schedulers: subclasses define :meth:`get_lr` (and, optionally,
    ``_get_closed_form_lr`` for ``step(epoch)``).

    ``last_epoch=-1`` starts a schedule; another value resumes one, and then every group must
    already have its ``initial_lr`` (restore the optimizer's state dict first).
    """

    _is_initial = False  # True while the constructor sets the lr of epoch 0

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise OptimizerTypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", _copy(group["lr"]))
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                        f"scheduler with last_epoch >= 0: load the optimizer's state dict (saved "
                        f"while a scheduler was attached) first, or use last_epoch=-1")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Set the lr of the first epoch (the constructor's step)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list:
        """The learning rates for ``self.last_epoch`` (called by :meth:`step`)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr()")

    def get_last_lr(self) -> list:
        """The learning rates set by the last :meth:`step`, one per parameter group."""
        return self._last_lr

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch and set the new learning rates (call it after ``optimizer.step()``).

        ``epoch`` (deprecated in PyTorch) jumps to that epoch, using the closed form where the
        scheduler has one.
        """
        if self._step_count == 1 and not getattr(self.optimizer, "_opt_called", False):
            warnings.warn(
                "Detected call of `lr_scheduler.step()` before `optimizer.step()`. You should call "
                "them in the opposite order: `optimizer.step()` before `lr_scheduler.step()`, "
                "otherwise the first value of the learning rate schedule is skipped.",
                UserWarning, stacklevel=2)
        self._step_count += 1
        if epoch is not None:
            warnings.warn("The epoch parameter in `scheduler.step()` is deprecated (as in PyTorch); "
                          "call `scheduler.step()` without it.", UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            _set_lr(group, lr)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _current_lrs(self) -> list:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """Everything but the optimizer (save and load the optimizer's own state dict too)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        self.__dict__.update(state_dict)


def _one_per_group(optimizer, lr_lambda) -> list:
    """``lr_lambda`` for each parameter group: one function for all, or a list of one per group."""
    groups = len(optimizer.param_groups)
    if not isinstance(lr_lambda, (list, tuple)):
        functions = [lr_lambda] * groups
    elif len(lr_lambda) != groups:
        raise OptimizerError(f"Expected {groups} lr_lambdas (one per parameter group), but got "
                             f"{len(lr_lambda)}")
    else:
        functions = list(lr_lambda)
    for fn in functions:
        if not callable(fn):
            raise OptimizerTypeError(f"lr_lambda should be a function of the epoch, but got "
                                     f"{type(fn).__name__}")
    return functions


class LambdaLR(LRScheduler):
    """``lr = initial_lr * lr_lambda(epoch)``; one function, or a list with one per group.

    Example: ``LambdaLR(opt, lambda epoch: 0.95 ** epoch)``. In the state dict, callable objects
    keep their attributes; plain functions and lambdas are not saved (as in PyTorch).
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        self.optimizer = optimizer
        self.lr_lambdas = _one_per_group(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        lr_lambdas = state_dict.pop("lr_lambdas")
        self.__dict__.update(state_dict)
        for fn, saved in zip(self.lr_lambdas, lr_lambdas):
            if saved is not None:
                fn.__dict__.update(saved)


class MultiplicativeLR(LRScheduler):
    """Multiply the lr by ``lr_lambda(epoch)`` at every step (epoch 0 keeps the initial lr); one
    function, or a list with one per group.

    Unlike :class:`LambdaLR`, the factor applies to the *current* lr, so the factors compound.
    Example (the same as ``ExponentialLR(opt, gamma=0.95)``)::

        sched = MultiplicativeLR(opt, lr_lambda=lambda epoch: 0.95)

    In the state dict, callable objects keep their attributes; plain functions and lambdas are
    not saved (as in PyTorch).
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        self.optimizer = optimizer
        self.lr_lambdas = _one_per_group(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        return [lr * fn(self.last_epoch) for fn, lr in zip(self.lr_lambdas, self._current_lrs())]

    state_dict = LambdaLR.state_dict
    load_state_dict = LambdaLR.load_state_dict


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs.

    Example: ``StepLR(opt, step_size=30, gamma=0.1)`` gives 0.05 for epochs 0-29, 0.005 for 30-59...
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each of the ``milestones`` (epochs).

    Example: ``MultiStepLR(opt, milestones=[30, 80], gamma=0.1)``.
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        if isinstance(milestones, str):
            milestones = (milestones,)
        # a repeated milestone multiplies by gamma twice
        self.milestones = Counter(as_ints(milestones, "MultiStepLR: milestones"))
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch)
                for base_lr in self.base_lrs]


class ConstantLR(LRScheduler):
    """Multiply the lr by ``factor`` for the first ``total_iters`` epochs, then restore it.

    Example: ``ConstantLR(opt, factor=0.5, total_iters=4)``.
    """

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        if as_number(factor, "ConstantLR: factor") > 1.0 or factor < 0:
            raise OptimizerError(f"Constant multiplicative factor expected to be between 0 and 1, "
                                 f"got {factor}")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._current_lrs()]
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        return [lr * (1.0 / self.factor) for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
                for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the lr linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` epochs
    (a linear warmup with the defaults' shape), then keep it.

    Example: ``LinearLR(opt, start_factor=0.1, total_iters=10)``.
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        if as_number(start_factor, "LinearLR: start_factor") > 1.0 or start_factor <= 0:
            raise OptimizerError(f"Starting multiplicative factor expected to be greater than 0 and "
                                 f"less or equal to 1, got {start_factor}")
        if as_number(end_factor, "LinearLR: end_factor") > 1.0 or end_factor < 0:
            raise OptimizerError(f"Ending multiplicative factor expected to be between 0 and 1, "
                                 f"got {end_factor}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        # the ratio between consecutive factors, so that lr follows the line from the current lr
        delta = self.end_factor - self.start_factor
        ratio = 1.0 + delta / (self.total_iters * self.start_factor + (self.last_epoch - 1) * delta)
        return [lr * ratio for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                           * min(self.total_iters, self.last_epoch) / self.total_iters)
                for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch: ``ExponentialLR(opt, gamma=0.95)``."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    """Decay the lr to 0 over ``total_iters`` epochs as ``(1 - t / total_iters) ** power``.

    Example: ``PolynomialLR(opt, total_iters=100, power=2.0)``.
    """

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        decay = ((1.0 - self.last_epoch / self.total_iters)
                 / (1.0 - (self.last_epoch - 1) / self.total_iters)) ** self.power
        return [lr * decay for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters)
                ** self.power for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the initial lr to ``eta_min`` over ``T_max`` epochs (SGDR without
    restarts); past ``T_max`` the lr rises again along the cosine, as in PyTorch.

    Like PyTorch, each step computes the new lr from the current one (so that changes made to
    ``lr`` by others are followed), which equals the closed form
    ``eta_min + (initial_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2`` when nothing else
    changes the lr. Example: ``CosineAnnealingLR(opt, T_max=100, eta_min=1e-5)``.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:  # resumed with last_epoch > 0: use the closed form
            return [eta_min + (base_lr - eta_min) * (1 + math.cos(t * math.pi / T)) / 2
                    for base_lr in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            # at the bottom of the cosine the ratio below would divide by zero
            return [lr + (base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base_lr, lr in zip(self.base_lrs, self._current_lrs())]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (lr - eta_min) + eta_min for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2017): lr rises from ``max_lr / div_factor`` to
    ``max_lr`` over the first ``pct_start`` of ``total_steps``, then anneals to
    ``initial_lr / final_div_factor``; momentum (SGD's ``momentum`` or Adam's ``beta1``) moves the
    opposite way between ``max_momentum`` and ``base_momentum`` when ``cycle_momentum``.

    Step it once per *batch*. ``three_phase=True`` goes back down to the initial lr before the
    final annealing. Example::

        sched = OneCycleLR(opt, max_lr=0.1, total_steps=1000, anneal_strategy='cos')
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise OptimizerTypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if total_steps is not None:
            if not isinstance(total_steps, int) or total_steps <= 0:
                raise OptimizerError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise OptimizerError(f"Expected positive integer epochs, but got {epochs}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise OptimizerError(f"Expected positive integer steps_per_epoch, but got "
                                     f"{steps_per_epoch}")
            self.total_steps = epochs * steps_per_epoch
        else:
            raise OptimizerError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise OptimizerError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise OptimizerError(f"anneal_strategy must be one of 'cos' or 'linear', instead got "
                                 f"{anneal_strategy}")
        self._anneal_func_type = anneal_strategy

        # each phase goes from its start values to its end values (group keys) by end_step
        up = float(pct_start * self.total_steps) - 1
        if three_phase:
            self._schedule_phases = [
                dict(end_step=up, start_lr="initial_lr", end_lr="max_lr",
                     start_momentum="max_momentum", end_momentum="base_momentum"),
                dict(end_step=float(2 * pct_start * self.total_steps) - 2, start_lr="max_lr",
                     end_lr="initial_lr", start_momentum="base_momentum",
                     end_momentum="max_momentum"),
                dict(end_step=self.total_steps - 1, start_lr="initial_lr", end_lr="min_lr",
                     start_momentum="max_momentum", end_momentum="max_momentum"),
            ]
        else:
            self._schedule_phases = [
                dict(end_step=up, start_lr="initial_lr", end_lr="max_lr",
                     start_momentum="max_momentum", end_momentum="base_momentum"),
                dict(end_step=self.total_steps - 1, start_lr="max_lr", end_lr="min_lr",
                     start_momentum="base_momentum", end_momentum="max_momentum"),
            ]

        max_lrs = _per_group("max_lr", optimizer, max_lr)
        div_factor = as_number(div_factor, "OneCycleLR: div_factor")
        final_div_factor = as_number(final_div_factor, "OneCycleLR: final_div_factor")
        if last_epoch == -1:
            for group, group_max_lr in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = group_max_lr / div_factor
                group["max_lr"] = group_max_lr
                group["min_lr"] = group["initial_lr"] / final_div_factor

        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise OptimizerError("optimizer must support momentum or beta1 with "
                                     "`cycle_momentum` option enabled")
            self.use_beta1 = "betas" in optimizer.defaults
            max_momentums = _per_group("max_momentum", optimizer, max_momentum)
            base_momentums = _per_group("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for group, m_max, m_base in zip(optimizer.param_groups, max_momentums,
                                                base_momentums):
                    self._set_momentum(group, m_max)
                    group["max_momentum"] = m_max
                    group["base_momentum"] = m_base
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group, value):
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start, end, pct):
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise OptimizerError(f"Tried to step {step} times. The specified number of total steps "
                                 f"is {self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[phase["start_momentum"]],
                                                               group[phase["end_momentum"]], pct))
                    break
                start_step = end_step
        return lrs


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after the other, switching at the epochs in ``milestones``.

    Each scheduler after the first starts from its own epoch 0 at its milestone. Example
    (5 epochs of linear warmup, then cosine decay)::

        warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        decay = CosineAnnealingLR(opt, T_max=95)
        sched = SequentialLR(opt, schedulers=[warmup, decay], milestones=[5])
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        if len(schedulers) < 1:
            raise OptimizerError("SequentialLR expects at least one scheduler, but got no scheduler.")
        for i, scheduler in enumerate(schedulers):
            if not hasattr(scheduler, "optimizer"):
                raise OptimizerTypeError(f"SequentialLR at index {i} should have `optimizer` as its "
                                         f"attribute.")
            if scheduler.optimizer is not optimizer:
                raise OptimizerError(
                    f"SequentialLR expects all schedulers to belong to the same optimizer, but got "
                    f"scheduler {type(scheduler).__name__} at index {i} with another optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise OptimizerError(
                f"Sequential Schedulers expects number of schedulers provided to be one more than the "
                f"number of milestone points, but got number of schedulers {len(schedulers)} and the "
                f"number of milestones to be equal to {len(milestones)}")
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer

        # Building the schedulers already stepped each of them once; undo that, then let the
        # first one set the lr of epoch 0 from the initial lrs.
        for group in optimizer.param_groups:
            _set_lr(group, group["initial_lr"])
        self._undo_initial_steps()
        idx = bisect_right(milestones, 0)
        schedulers[idx]._initial_step()
        self._last_lr = schedulers[idx].get_last_lr()

    def _undo_initial_steps(self, scheduler=None) -> None:
        scheduler = self if scheduler is None else scheduler
        if hasattr(scheduler, "_schedulers"):
            for s in scheduler._schedulers:
                self._undo_initial_steps(s)
        elif hasattr(scheduler, "last_epoch"):
            scheduler.last_epoch -= 1

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)  # the next scheduler starts at its epoch 0 (closed form)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        schedulers = state_dict.pop("_schedulers")
        self.__dict__.update(state_dict)
        for scheduler, saved in zip(self._schedulers, schedulers):
            scheduler.load_state_dict(saved)


class ChainedScheduler(LRScheduler):
    """Step several schedulers of one optimizer together, in the order given, at every step.

    The schedulers must be *chainable* (each computes the new lr from the current one, as all
    here but :class:`ReduceLROnPlateau` and the closed forms of ``step(epoch)`` do), so their
    effects compose: a warmup factor times a decay, for example. Example::

        warmup = ConstantLR(opt, factor=0.1, total_iters=5)
        decay = ExponentialLR(opt, gamma=0.9)
        sched = ChainedScheduler([warmup, decay], optimizer=opt)
        # lr = 0.1 * 0.9**t * initial_lr for t < 5, then 0.9**t * initial_lr
    """

    def __init__(self, schedulers, optimizer=None):
        if len(schedulers) < 1:
            raise OptimizerError("ChainedScheduler expects at least one scheduler to be chained, "
                                 "but got no scheduler.")
        optimizer = optimizer or schedulers[0].optimizer
        for i, scheduler in enumerate(schedulers):
            if not hasattr(scheduler, "optimizer"):
                raise OptimizerTypeError(f"ChainedScheduler at index {i} should have `optimizer` "
                                         f"as its attribute.")
            if isinstance(scheduler, ReduceLROnPlateau):
                raise OptimizerError(
                    f"ChainedScheduler does not support `ReduceLROnPlateau` scheduler as it requires "
                    f"additional kwargs to be specified when calling `step`, but got one at index "
                    f"{i} in the given schedulers sequence; step it on its own")
            if scheduler.optimizer is not optimizer:
                raise OptimizerError(
                    f"ChainedScheduler expects all schedulers to belong to the same optimizer, but "
                    f"got scheduler {type(scheduler).__name__} at index {i} with another optimizer")
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = [group["lr"] for group in self._schedulers[-1].optimizer.param_groups]

    def step(self) -> None:
        """Step every scheduler once, in order."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = [group["lr"] for group in self._schedulers[-1].optimizer.param_groups]

    state_dict = SequentialLR.state_dict
    load_state_dict = SequentialLR.load_state_dict


# ---------------------------------------------------------------------- on a metric
class SchedulerStateError(GradientError, RuntimeError):
    """The optimizer no longer fits the scheduler's saved settings (e.g. a group was added)."""


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric has stopped improving for ``patience`` epochs.

    Step it with the metric, once per evaluation: ``sched.step(val_loss)``. ``mode='min'``
    looks for decreases (a loss), ``'max'`` for increases (an accuracy). A value is an
    improvement only when it beats the best so far by ``threshold``: relatively
    (``best * (1 - threshold)`` in min mode, ``best * (1 + threshold)`` in max mode) with
    ``threshold_mode='rel'``, by an absolute margin (``best -/+ threshold``) with ``'abs'``.
    After ``patience + 1`` epochs in a row without improvement the lr of every group becomes
    ``max(lr * factor, min_lr)`` (``min_lr`` a number, or one per group), unless that changes it
    by no more than ``eps``; then ``cooldown`` epochs pass in which bad epochs are not counted.

    Example::

        sched = ReduceLROnPlateau(opt, mode='min', factor=0.5, patience=3, min_lr=1e-6)
        for epoch in range(100):
            train_one_epoch(model, opt)
            sched.step(validate(model))
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        if as_number(factor, "ReduceLROnPlateau: factor") >= 1.0:
            raise OptimizerError(f"Factor should be < 1.0 (the lr is multiplied by it), got "
                                 f"{factor}")
        self.factor = factor
        if not isinstance(optimizer, Optimizer):
            raise OptimizerTypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise OptimizerError(f"expected {len(optimizer.param_groups)} min_lrs (one per "
                                     f"parameter group), got {len(min_lr)}")
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self._init_is_better(mode=mode, threshold=threshold, threshold_mode=threshold_mode)
        self._reset()

    def _reset(self) -> None:
        """Forget the best value and the bad-epoch and cooldown counts."""
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics, epoch=None) -> None:
        """Record one epoch's ``metrics`` (a number or a 0-d tensor) and lower the lr if it is
        time to."""
        current = float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn("The epoch parameter in `scheduler.step()` is deprecated (as in PyTorch); "
                          "call `scheduler.step(metrics)` without it.", UserWarning, stacklevel=2)
        self.last_epoch = epoch

        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1

        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in the cooldown do not count

        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise SchedulerStateError(
                    f"The number of param groups in the `optimizer` ({len(groups)}) differs from "
                    f"when `ReduceLROnPlateau` was initialized ({len(self.min_lrs)}), usually due "
                    f"to a new param group being added to the optimizer. Please modify the "
                    f"`min_lrs` field to match the length of the `optimizer` param groups.")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:  # too small a change is not worth making
                _set_lr(group, new_lr)

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a, best) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min" and self.threshold_mode == "abs":
            return a < best - self.threshold
        if self.mode == "max" and self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def _init_is_better(self, mode, threshold, threshold_mode) -> None:
        if mode not in ("min", "max"):       # (tuples: a list given is not hashed)
            raise OptimizerError(f"mode {mode} is unknown! Expected 'min' or 'max'")
        if threshold_mode not in ("rel", "abs"):
            raise OptimizerError(f"threshold mode {threshold_mode} is unknown! Expected 'rel' or "
                                 f"'abs'")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)
        self._init_is_better(mode=self.mode, threshold=self.threshold,
                             threshold_mode=self.threshold_mode)


# ---------------------------------------------------------------------- cycles and restarts
class CyclicLR(LRScheduler):
    """Cyclical learning rates (Smith, 2017): the lr goes from ``base_lr`` up to ``max_lr`` in
    ``step_size_up`` steps and back down in ``step_size_down`` (default: the same), again and again.

    The amplitude ``max_lr - base_lr`` is scaled by a policy: ``'triangular'`` (no scaling),
    ``'triangular2'`` (halved every cycle) or ``'exp_range'`` (``gamma ** step``); or by your own
    ``scale_fn`` of the cycle number (``scale_mode='cycle'``) or of the step
    (``scale_mode='iterations'``), in which case ``mode`` is ignored. With ``cycle_momentum``
    the momentum (SGD's ``momentum``, or Adam's ``beta1``) moves the opposite way between
    ``max_momentum`` and ``base_momentum``. ``base_lr``, ``max_lr`` and the momenta take one
    value or a list with one per group. Building it sets each group's lr to ``base_lr``.

    Step it once per *batch*. Example::

        opt = gradient.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sched = CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=2000, mode='triangular2')

    In the state dict, a callable-object ``scale_fn`` keeps its attributes; a plain function or
    lambda is not saved (as in PyTorch).
    """

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None,
                 mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle",
                 cycle_momentum=True, base_momentum=0.8, max_momentum=0.9, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise OptimizerTypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        base_lrs = _per_group("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                _set_lr(group, lr)
        self.max_lrs = _per_group("max_lr", optimizer, max_lr)

        step_size_up = float(as_number(step_size_up, "CyclicLR: step_size_up"))
        step_size_down = (float(as_number(step_size_down, "CyclicLR: step_size_down"))
                          if step_size_down is not None else step_size_up)
        self.total_size = step_size_up + step_size_down
        self.step_ratio = step_size_up / self.total_size

        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise OptimizerError(f"mode is invalid and scale_fn is None: expected mode "
                                 f"'triangular', 'triangular2' or 'exp_range', got {mode!r}, or "
                                 f"a scale_fn")
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_fn()

        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise OptimizerError("optimizer must support momentum or beta1 with "
                                     "`cycle_momentum` option enabled")
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = _per_group("base_momentum", optimizer, base_momentum)
            self.max_momentums = _per_group("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for m_max, m_base, group in zip(self.max_momentums, self.base_momentums,
                                                optimizer.param_groups):
                    self._set_momentum(group, m_max)
                    group["max_momentum"] = m_max
                    group["base_momentum"] = m_base
        super().__init__(optimizer, last_epoch)
        # as in torch, the constructor's step used the groups' initial_lr; from now on, base_lr
        self.base_lrs = base_lrs

    def _init_scale_fn(self) -> None:
        # the built-in policies fix the scale mode (torch's rule), a custom scale_fn keeps yours
        if self._scale_fn_custom is None:
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"

    def scale_fn(self, x) -> float:
        """The amplitude's scale at cycle (or step) ``x``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def _set_momentum(self, group, value):
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def get_lr(self):
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle  # position in the cycle, in [0, 1)
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)

        lrs = [base_lr + (max_lr - base_lr) * scale_factor * scale
               for base_lr, max_lr in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, m_base, m_max in zip(self.optimizer.param_groups, self.base_momentums,
                                            self.max_momentums):
                self._set_momentum(group, m_max - (m_max - m_base) * scale_factor * scale)
        return lrs

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("optimizer", "_scale_fn_custom")}
        fn = self._scale_fn_custom
        state["_scale_fn_custom"] = (fn.__dict__.copy() if fn is not None
                                     and not isinstance(fn, types.FunctionType) else None)
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        saved_fn = state_dict.pop("_scale_fn_custom", None)
        self.__dict__.update(state_dict)
        if saved_fn is not None:
            self._scale_fn_custom.__dict__.update(saved_fn)
        self._init_scale_fn()


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter, 2016): cosine annealing from the initial lr to ``eta_min`` over
    ``T_i`` epochs, then a restart at the initial lr; the first period is ``T_0`` epochs and each
    next one ``T_mult`` times longer::

        lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2

    where ``T_cur`` counts the epochs since the last restart. ``step()`` advances one epoch;
    ``step(epoch)`` jumps to ``epoch``, which may be fractional, to anneal within an epoch
    (this use is not deprecated here, as in PyTorch). Example (per batch)::

        sched = CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2, eta_min=1e-5)
        for epoch in range(70):
            for i, batch in enumerate(loader):
                train_step(batch)
                sched.step(epoch + i / len(loader))
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        if not isinstance(T_0, int) or T_0 <= 0:
            raise OptimizerError(f"Expected positive integer T_0, but got {T_0}")
        if not isinstance(T_mult, int) or T_mult < 1:
            raise OptimizerError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise OptimizerError(f"Expected float or int eta_min, but got {eta_min} of type "
                                 f"{type(eta_min).__name__}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        cosine = 1 + math.cos(math.pi * self.T_cur / self.T_i)
        return [self.eta_min + (base_lr - self.eta_min) * cosine / 2 for base_lr in self.base_lrs]

    def step(self, epoch=None) -> None:
        """Advance one epoch, or go to ``epoch`` (an int or a float), and set the new lrs.

        Steps without and with an epoch can be mixed: after ``step(26)``, ``step()`` goes to 27.
        """
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise OptimizerError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    # the restart before `epoch`: T_0 * (1 + T_mult + ... + T_mult**(n-1)) <= epoch
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            _set_lr(group, lr)
        self._last_lr = self._current_lrs()


# ---------------------------------------------------------------------- warmup + cosine
class WarmupCosine:
    """The lr multiplier of :func:`warmup_cosine` at a step (a callable object, so that
    ``LambdaLR.state_dict()`` saves its settings)."""

    def __init__(self, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0):
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_lr_ratio = min_lr_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / max(1, self.warmup_steps)
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine


def warmup_cosine(optimizer: Optimizer, warmup_steps: int, total_steps: int,
                  min_lr_ratio: float = 0.0, last_epoch: int = -1) -> LambdaLR:
    """Linear warmup from 0 to the initial lr over ``warmup_steps``, then cosine decay down to
    ``min_lr_ratio * initial_lr`` at ``total_steps``, where it stays (the GPT-training schedule).

    It is a :class:`LambdaLR` with the multiplier::

        step < warmup_steps:  step / warmup_steps
        otherwise:            min_lr_ratio + (1 - min_lr_ratio) * (1 + cos(pi * p)) / 2,
                              p = min(1, (step - warmup_steps) / (total_steps - warmup_steps))

    With ``min_lr_ratio=0`` this is Hugging Face's ``get_cosine_schedule_with_warmup`` (and with
    a ratio, ``get_cosine_with_min_lr_schedule_with_warmup(min_lr_rate=...)``) up to
    ``total_steps``; after it, the lr stays at the floor instead of rising again along the
    cosine. As there, the first step (step 0) has lr 0 when ``warmup_steps > 0``. nanoGPT's
    ``get_lr`` (``min_lr = learning_rate / 10``) is ``min_lr_ratio=0.1`` except that its warmup
    is shifted by one step. Step it once per optimizer step::

        opt = gradient.optim.AdamW(model.parameters(), lr=6e-4)
        sched = gradient.optim.lr_scheduler.warmup_cosine(opt, warmup_steps=2000,
                                                          total_steps=600000, min_lr_ratio=0.1)
        for it in range(600000):
            ...; opt.step(); sched.step()
    """
    if not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise OptimizerError(f"warmup_cosine: expected warmup_steps to be an int >= 0, got "
                             f"{warmup_steps!r}")
    if not isinstance(total_steps, int) or total_steps < max(1, warmup_steps):
        raise OptimizerError(f"warmup_cosine: expected total_steps to be an int >= warmup_steps "
                             f"({warmup_steps}) and >= 1, got {total_steps!r}")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise OptimizerError(f"warmup_cosine: expected 0 <= min_lr_ratio <= 1, got {min_lr_ratio}")
    return LambdaLR(optimizer, WarmupCosine(warmup_steps, total_steps, min_lr_ratio), last_epoch)
