"""Optimizers across ranks: :class:`ZeroRedundancyOptimizer`, ``torch.distributed.optim``'s.

ZeRO stage 1 (Rajbhandari et al., 2020): every rank keeps the whole model and computes the
whole (all-reduced) gradient, as with DistributedDataParallel, but the optimizer's state (Adam's
two moments: twice the model's size) is split across the ranks. Each rank owns a share of the
parameters, runs the wrapped optimizer on its share only, and then broadcasts its updated
parameters to the others. Memory for the state drops to 1/world_size; the result is the same
as one optimizer over every parameter.

Example::

    >>> model = nn.parallel.DistributedDataParallel(model)
    >>> opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=optim.AdamW, lr=1e-3)
    >>> loss.backward(); opt.step(); opt.zero_grad()
"""

from __future__ import annotations

from ..errors import DistributedError
from ..optim.optimizer import Optimizer
from .collectives import broadcast, get_group

__all__ = ["ZeroRedundancyOptimizer"]


class ZeroRedundancyOptimizer(Optimizer):
    """``optimizer_class`` (``gradient.optim.Adam``, ``AdamW``, ``SGD``, ...) with its state
    sharded over the ranks of ``process_group`` (default: all).

    The parameters are dealt out as PyTorch deals them: in each group, largest first, each to
    the rank that holds the fewest elements so far. ``param_groups`` are the whole model's
    (a learning-rate scheduler sees every parameter); ``optim`` is this rank's optimizer over
    its own share. Every rank must call :meth:`step` (it broadcasts).
    """

    def __init__(self, params, optimizer_class, process_group=None,
                 parameters_as_bucket_view: bool = False, overlap_with_ddp: bool = False,
                 **defaults):
        if overlap_with_ddp:
            raise DistributedError("ZeroRedundancyOptimizer: overlap_with_ddp is not supported; "
                                   "call step() after backward, as without it")
        self.process_group = get_group(process_group)
        self._optimizer_class = optimizer_class
        super().__init__(params, defaults)
        self.owner: dict = {}               # parameter id -> the rank that updates it
        held = [0] * self.process_group.size
        local_groups = []
        for group in self.param_groups:
            mine = []
            for p in sorted(group["params"], key=lambda t: t.numel(), reverse=True):
                rank = held.index(min(held))
                held[rank] += p.numel()
                self.owner[id(p)] = rank
                if rank == self.process_group.rank:
                    mine.append(p)
            local_groups.append({**_hyperparameters(group), "params": mine})
        self._local_groups = local_groups
        # a rank may own nothing (more ranks than parameters): it then steps no optimizer
        owned = [g for g in local_groups if g["params"]]
        self.optim = optimizer_class(owned, **defaults) if owned else None

    def step(self, closure=None):
        """The wrapped optimizer's step on this rank's parameters, then every parameter
        broadcast from the rank that owns it; the closure's loss, if one is given."""
        if self.optim is not None:   # hyper-parameters (a scheduler's lr) go to the local groups
            local = iter(self.optim.param_groups)
            for group, mine in zip(self.param_groups, self._local_groups):
                if mine["params"]:
                    next(local).update(_hyperparameters(group))
        loss = self.optim.step(closure) if self.optim is not None else (
            self._evaluate(closure) if closure is not None else None)
        pending = [broadcast(p.data, src=self.owner[id(p)], group=self.process_group,
                             async_op=True)
                   for group in self.param_groups for p in group["params"]]
        for work in pending:
            work.wait()
        return loss

    def state_dict(self) -> dict:
        """This rank's optimizer state (its own parameters' moments), with which parameters it
        owns; ``load_state_dict`` on the same rank of the same layout restores it."""
        return {"rank": self.process_group.rank, "world_size": self.process_group.size,
                "optim": None if self.optim is None else self.optim.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        if (state_dict.get("rank"), state_dict.get("world_size")) != (
                self.process_group.rank, self.process_group.size):
            raise DistributedError(
                f"ZeroRedundancyOptimizer.load_state_dict: the state is rank "
                f"{state_dict.get('rank')} of {state_dict.get('world_size')}, this is rank "
                f"{self.process_group.rank} of {self.process_group.size}: load each rank's own")
        if self.optim is not None:
            self.optim.load_state_dict(state_dict["optim"])


def _hyperparameters(group: dict) -> dict:
    return {k: v for k, v in group.items() if k not in ("params", "param_names")}
