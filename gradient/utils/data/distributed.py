"""``DistributedSampler``: each of ``num_replicas`` processes reads its own share of a dataset.

The partition is PyTorch's: every epoch one order of all the indices (the same in every
replica: shuffled from ``seed + epoch``, or 0, 1, 2, ...), made to divide evenly by padding it
with its own first indices (or, with ``drop_last``, by cutting its tail), then dealt round-robin:
replica ``rank`` takes positions ``rank, rank + num_replicas, ...``. Without shuffling the
indices are exactly torch's; shuffled, the order is drawn by gradient's generator (seeded with
``seed + epoch``), so it is reproducible but not the permutation torch draws.

Deliberate difference: gradient has no process group, so when ``num_replicas`` or ``rank`` is not
given it is read from the ``WORLD_SIZE``/``RANK`` environment variables that launchers such as
``torchrun`` set, and is 1/0 when they are absent (torch raises unless
``torch.distributed`` is initialised).

Example::

    >>> sampler = DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False)
    >>> list(sampler)                  # 10 indices padded to 12 (0, 1 again), every third
    [1, 4, 7, 0]
    >>> loader = DataLoader(dataset, batch_size=32, sampler=sampler)
    >>> for epoch in range(epochs):
    ...     sampler.set_epoch(epoch)   # a new shuffle each epoch, the same in every replica
"""

from __future__ import annotations

import math
import os
from typing import Iterator

from ...ops.creation import Generator, randperm
from .sampler import Sampler
from ...errors import ArgumentValueError

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler[int]):
    """The indices of ``dataset`` that replica ``rank`` of ``num_replicas`` reads, as
    ``torch.utils.data.DistributedSampler`` (see the module docstring).

    Call :meth:`set_epoch` at the start of each epoch so that shuffling differs between epochs.

    Example::

        >>> list(DistributedSampler(range(7), num_replicas=2, rank=0, shuffle=False))
        [0, 2, 4, 6]
        >>> list(DistributedSampler(range(7), num_replicas=2, rank=1, shuffle=False,
        ...                         drop_last=True))
        [1, 3, 5]
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None:
            num_replicas = int(os.environ.get("WORLD_SIZE", 1))
        if rank is None:
            rank = int(os.environ.get("RANK", 0))
        if rank >= num_replicas or rank < 0:
            raise ArgumentValueError(f"Invalid rank {rank}, rank should be in the interval "
                                     f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.seed = seed
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            # the largest share every replica can have without padding
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def _order(self) -> list:
        """All the dataset's indices in this epoch's order, the same in every replica."""
        n = len(self.dataset)
        if not self.shuffle:
            return list(range(n))
        gen = Generator().manual_seed(self.seed + self.epoch)
        return randperm(n, generator=gen).tolist()

    def __iter__(self) -> Iterator[int]:
        indices = self._order()
        if self.drop_last:
            indices = indices[:self.total_size]
        else:
            # pad with the first indices again (repeated whole when more than n are missing)
            missing = self.total_size - len(indices)
            if missing > 0:
                indices += (indices * math.ceil(missing / len(indices)))[:missing]
        assert len(indices) == self.total_size
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next shuffle (seeded with ``seed + epoch``, in every replica)."""
        self.epoch = epoch
