"""Optimizers across ranks: :class:`ZeroRedundancyOptimizer`, ``torch.distributed.optim``'s.

ZeRO stage 1 (Rajbhandari et al., 2020): every rank keeps the whole model and computes the
whole (all-reduced) gradient, as with DistributedDataParallel, but the optimizer's state (Adam's
two moments: twice the model's size) is split across the ranks. Each rank owns a share of the
parameters, runs the wrapped optimizer on its share only, and then broadcasts its updated
parameters to the others. Memory for the state drops to 1/world_size; the result is the same
as one optimizer over every parameter.

Checkpoints as in PyTorch: :meth:`ZeroRedundancyOptimizer.consolidate_state_dict` gathers the
shards on one rank, whose :meth:`~ZeroRedundancyOptimizer.state_dict` is then the whole
optimizer's, in the wrapped optimizer's own layout; every rank's ``load_state_dict`` takes such
a state (saved with any number of ranks, or by the plain optimizer) and keeps its own share.

Example::

    >>> model = nn.parallel.DistributedDataParallel(model)
    >>> opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=optim.AdamW, lr=1e-3)
    >>> loss.backward(); opt.step(); opt.zero_grad()
    >>> opt.consolidate_state_dict(to=0)
    >>> if dist.get_rank() == 0: gradient.save(opt.state_dict(), "optim.pt")
"""

from __future__ import annotations

import numpy as np

from ..errors import DistributedError
from ..optim.optimizer import Optimizer
from ..tensor import Tensor
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
        # every hyper-parameter of the wrapped class (betas, eps ...), as its groups have them:
        # a scheduler and state_dict() see the whole set, as with the plain optimizer
        from ..ops.creation import zeros
        every = {**optimizer_class([zeros(1, requires_grad=True)], **defaults).defaults,
                 **defaults}
        super().__init__(params, every)
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
        self._consolidated = None           # the whole state, on the rank it was gathered to
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

    def consolidate_state_dict(self, to: int = 0) -> None:
        """Gather every rank's share of the state on rank ``to``, for :meth:`state_dict` there.
        Every rank of the group must call it."""
        group = self.process_group
        mine = {}
        if self.optim is not None:
            local = self.optim.state_dict()["state"]
            for local_index, global_index in enumerate(self._global_indices()):
                if local_index in local:
                    mine[global_index] = {k: _to_host(v) for k, v in local[local_index].items()}
        shares = group.comm.gather(mine, root=to)     # NumPy arrays and numbers, between ranks
        self._consolidated = None
        if group.rank == to:
            self._consolidated = {i: {k: _from_host(v) for k, v in entry.items()}
                                  for share in shares for i, entry in share.items()}

    def state_dict(self) -> dict:
        """The whole optimizer's state, as the wrapped optimizer's ``state_dict`` gives it over
        every parameter, on the rank :meth:`consolidate_state_dict` gathered it to (the state
        of that call: consolidate again after stepping)."""
        if self._consolidated is None:
            raise DistributedError(
                "ZeroRedundancyOptimizer.state_dict: call consolidate_state_dict(to=rank) on "
                "every rank first, then state_dict() on that rank (as in PyTorch)")
        index, param_groups = 0, []
        for group in self.param_groups:
            packed = _hyperparameters(group)
            packed["params"] = list(range(index, index + len(group["params"])))
            index += len(group["params"])
            param_groups.append(packed)
        return {"state": dict(sorted(self._consolidated.items())), "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Take a whole optimizer's state (from :meth:`state_dict`, on any number of ranks, or
        from the plain optimizer): the hyper-parameters of every group, and the state of this
        rank's own parameters."""
        saved_groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if saved_groups is None or "state" not in state_dict or len(saved_groups) != len(
                self.param_groups) or any(len(a["params"]) != len(b["params"])
                                          for a, b in zip(saved_groups, self.param_groups)):
            raise DistributedError(
                "ZeroRedundancyOptimizer.load_state_dict: expected the whole optimizer's state "
                "(consolidate_state_dict then state_dict, or the plain optimizer's state_dict) "
                "with the same parameter groups as this optimizer's")
        for group, saved in zip(self.param_groups, saved_groups):
            group.update(_hyperparameters(saved))
        if self.optim is None:
            return
        saved_index = [i for g in saved_groups for i in g["params"]]
        state = state_dict["state"]
        local_state = {local: state[saved_index[g]]
                       for local, g in enumerate(self._global_indices()) if saved_index[g] in state}
        owned = [saved for saved, mine in zip(saved_groups, self._local_groups) if mine["params"]]
        local_groups = [{**_hyperparameters(saved), "params": current["params"]}
                        for saved, current in zip(owned, self.optim.state_dict()["param_groups"])]
        self.optim.load_state_dict({"state": local_state, "param_groups": local_groups})

    def _global_indices(self) -> list:
        """For each parameter of this rank's optimizer, in its order, the parameter's index in
        the whole optimizer (the order of ``param_groups``)."""
        position = {id(p): i for i, p in enumerate(p for g in self.param_groups
                                                    for p in g["params"])}
        return [position[id(p)] for g in self._local_groups for p in g["params"]]


def _to_host(value):
    return value.detach().cpu().numpy() if isinstance(value, Tensor) else value


def _from_host(value):
    from ..ops.creation import from_numpy
    return from_numpy(np.array(value)) if isinstance(value, np.ndarray) else value


def _hyperparameters(group: dict) -> dict:
    return {k: v for k, v in group.items() if k not in ("params", "param_names")}
