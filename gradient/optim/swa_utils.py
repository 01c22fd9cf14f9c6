"""Averaged weights, as ``torch.optim.swa_utils``: stochastic weight averaging (SWA) and the
exponential moving average (EMA) of a model's parameters that many training scripts keep
beside the model (diffusion models, GANs, the SWA paper's recipe).

- :class:`AveragedModel` holds a copy of a model and averages the model's parameters into it
  at each :meth:`~AveragedModel.update_parameters`: an equal average of every update by
  default (SWA), or what ``avg_fn`` / ``multi_avg_fn`` computes (:func:`get_ema_multi_avg_fn`:
  the EMA). The first update copies the parameters; buffers (BatchNorm's statistics) are
  copied at each update unless ``use_buffers=True`` averages them too.
- :class:`SWALR` anneals each group's learning rate to a constant ``swa_lr`` over
  ``anneal_epochs`` (cosine or linear), as the SWA phase of training does.
- :func:`update_bn` recomputes BatchNorm's running statistics with one pass over data (the
  averaged weights' own statistics, which no averaging of the model's gives).

Example::

    >>> ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))
    >>> for x, y in batches:
    ...     loss_fn(model(x), y).backward(); optimizer.step(); optimizer.zero_grad()
    ...     ema.update_parameters(model)
    >>> ema(x_test)                      # the averaged model's forward
"""

from __future__ import annotations

import copy
import itertools
import math

from ..autograd import no_grad
from ..dtypes import int64
from ..nn import Module
from ..nn.modules.batchnorm import _BatchNorm
from ..ops.creation import tensor
from .lr_scheduler import LRScheduler, _per_group
from .optimizer import OptimizerError

__all__ = ["AveragedModel", "SWALR", "update_bn", "get_ema_multi_avg_fn",
           "get_swa_multi_avg_fn", "get_ema_avg_fn", "get_swa_avg_fn"]


def _check_decay(decay: float) -> None:
    if not 0.0 <= decay <= 1.0:
        raise OptimizerError(f"the EMA's decay must be in [0, 1], got {decay}")


def get_ema_multi_avg_fn(decay: float = 0.999):
    """The EMA over lists of parameters, in place: ``ema = decay * ema + (1 - decay) *
    model`` for floating parameters (as ``lerp`` toward the model by ``1 - decay``)."""
    _check_decay(decay)

    @no_grad()
    def ema_update(averaged: list, current: list, num_averaged) -> None:
        for a, p in zip(averaged, current):
            if a.is_floating_point():
                a.lerp_(p, 1 - decay)
            else:
                a.copy_(a * decay + p * (1 - decay))
    return ema_update


def get_swa_multi_avg_fn():
    """The equal average over lists of parameters, in place: after ``n`` averaged,
    ``avg += (model - avg) / (n + 1)`` (as ``lerp`` by ``1 / (n + 1)`` for floats)."""
    @no_grad()
    def swa_update(averaged: list, current: list, num_averaged) -> None:
        n = int(num_averaged)
        for a, p in zip(averaged, current):
            if a.is_floating_point():
                a.lerp_(p, 1 / (n + 1))
            else:
                a.copy_(a + (p - a) / (n + 1))
    return swa_update


def get_ema_avg_fn(decay: float = 0.999):
    """The EMA of one parameter: returns ``decay * ema + (1 - decay) * model``."""
    _check_decay(decay)

    @no_grad()
    def ema_update(averaged, current, num_averaged):
        return decay * averaged + (1 - decay) * current
    return ema_update


def get_swa_avg_fn():
    """The equal average of one parameter: returns ``avg + (model - avg) / (n + 1)``."""
    @no_grad()
    def swa_update(averaged, current, num_averaged):
        return averaged + (current - averaged) / (num_averaged + 1)
    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` (on ``device`` where given) whose parameters average the model's
    over the calls of :meth:`update_parameters`; calling it runs the copy's forward. The number
    of updates is the buffer ``n_averaged``, saved in its state dict. ``avg_fn(avg, param, n)``
    returns one parameter's new average, ``multi_avg_fn(avgs, params, n)`` updates lists of
    them in place (give one at most); neither: the equal average (SWA)."""

    def __init__(self, model: Module, device=None, avg_fn=None, multi_avg_fn=None,
                 use_buffers: bool = False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise OptimizerError("AveragedModel: give avg_fn or multi_avg_fn, not both")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", tensor(0, dtype=int64, device=device))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @no_grad()
    def update_parameters(self, model: Module) -> None:
        """Average ``model``'s parameters (and buffers, with ``use_buffers``) into the copy's;
        the first call copies them. Without ``use_buffers`` the buffers are copied."""
        def averaged_tensors(m):
            return (itertools.chain(m.parameters(), m.buffers()) if self.use_buffers
                    else m.parameters())
        mine = [p.detach() for p in averaged_tensors(self.module)]
        theirs = [p.detach().to(a.device) for a, p in zip(mine, averaged_tensors(model))]
        n = int(self.n_averaged.item())
        if n == 0:
            for a, p in zip(mine, theirs):
                a.copy_(p)
        elif self.avg_fn is not None:
            for a, p in zip(mine, theirs):
                a.copy_(self.avg_fn(a, p, self.n_averaged.to(a.device)))
        else:
            (self.multi_avg_fn or get_swa_multi_avg_fn())(mine, theirs, self.n_averaged)
        if not self.use_buffers:
            for b_mine, b_theirs in zip(self.module.buffers(), model.buffers()):
                b_mine.detach().copy_(b_theirs.detach().to(b_mine.device))
        self.n_averaged += 1


@no_grad()
def update_bn(loader, model: Module, device=None) -> None:
    """Recompute the running mean and variance of ``model``'s BatchNorm layers from one pass
    over ``loader`` (batches of tensors, or lists and tuples whose first element is the
    input), each layer's statistics the equal average over the batches. The model's mode is
    restored after."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None        # a cumulative average over the pass
    for batch in loader:
        if isinstance(batch, (list, tuple)):
            batch = batch[0]
        if device is not None:
            batch = batch.to(device)
        model(batch)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneals each group's learning rate from its value to ``swa_lr`` (one for all groups, or
    one each) over ``anneal_epochs`` steps, along a cosine (``"cos"``) or a line
    (``"linear"``), then keeps it there."""

    def __init__(self, optimizer, swa_lr, anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1):
        for value, group in zip(_per_group("swa_lr", optimizer, swa_lr),
                                optimizer.param_groups):
            group["swa_lr"] = value
        if anneal_strategy not in ("cos", "linear"):
            raise OptimizerError(f"anneal_strategy must be 'cos' or 'linear', got "
                                 f"{anneal_strategy!r}")
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise OptimizerError(f"anneal_epochs must be an integer >= 0, got {anneal_epochs!r}")
        self.anneal_strategy, self.anneal_epochs = anneal_strategy, anneal_epochs
        super().__init__(optimizer, last_epoch)

    def _anneal(self, t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2 if self.anneal_strategy == "cos" else t

    def get_lr(self):
        # the lr the schedule started from, recovered from the current one (another
        # scheduler may have set it), then the next point of the annealing toward swa_lr
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        before = self._anneal(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        now = self._anneal(max(0, min(1, step / max(1, self.anneal_epochs))))
        lrs = []
        for group in self.optimizer.param_groups:
            start = (group["swa_lr"] if before == 1 else
                     (group["lr"] - before * group["swa_lr"]) / (1 - before))
            lrs.append(group["swa_lr"] * now + start * (1 - now))
        return lrs
