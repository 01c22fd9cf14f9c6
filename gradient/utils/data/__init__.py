"""``gradient.utils.data``: datasets, samplers and the DataLoader, as ``torch.utils.data``.

A PyTorch training script ports by changing its imports::

    from gradient.utils.data import DataLoader, TensorDataset, random_split

    dataset = TensorDataset(x, y)                      # samples are rows of x and y
    train, val = random_split(dataset, [0.8, 0.2])     # fractions or lengths
    loader = DataLoader(train, batch_size=32, shuffle=True)
    for epoch in range(epochs):
        for xb, yb in loader:                          # reshuffled every epoch
            ...

The pieces: :mod:`.dataset` (``Dataset``, ``IterableDataset``, ``TensorDataset``,
``StackDataset``, ``ConcatDataset``, ``ChainDataset``, ``Subset``, ``random_split``),
:mod:`.sampler` (``Sampler``, ``SequentialSampler``, ``RandomSampler``, ``SubsetRandomSampler``,
``WeightedRandomSampler``, ``BatchSampler``), :mod:`.collate` (``default_collate``,
``default_convert``; ``collate`` and ``default_collate_fn_map`` to collate new types) and
:mod:`.dataloader` (``DataLoader``, ``get_worker_info``).

How it differs from PyTorch:

* Single process. ``num_workers > 0`` is accepted and gives the same batches, read in the main
  process (it warns once per loader); ``worker_init_fn`` is then not called and
  ``get_worker_info()`` is always None. ``pin_memory`` is accepted and ignored.
* Random orders (``shuffle``, the random samplers, ``random_split``) come from gradient's
  generators: ``gradient.manual_seed(0)`` or ``generator=gradient.Generator().manual_seed(0)``
  make them reproducible, but they are not the orders PyTorch draws.
* Batches are gradient Tensors. Batches of a ``TensorDataset`` (or a ``Subset`` of one) with the
  default ``collate_fn`` are read with one gather per tensor instead of stacking rows: the same
  values, much faster.
* Misuse that PyTorch reports with ``assert`` raises a clear exception instead: ``ShapeError``
  (a ``ValueError``) for tensors of different lengths in a ``TensorDataset``, ``ValueError`` for
  an empty ``ConcatDataset``, ``TypeError`` for an iterable dataset inside a ``ConcatDataset``
  or a map-style one inside a ``ChainDataset``.
* ``DistributedSampler`` (:mod:`.distributed`) partitions indices as PyTorch's does; it reads
  ``num_replicas``/``rank`` from ``WORLD_SIZE``/``RANK`` when not given (there is no process
  group), and its shuffled orders are gradient's.
* Not implemented: the ``DataPipe`` classes.
"""

from .collate import default_collate, default_convert
from .dataloader import DataLoader, get_worker_info
from .distributed import DistributedSampler
from .dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset,
                      TensorDataset, random_split)
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                      WeightedRandomSampler)

__all__ = ["DataLoader", "Dataset", "IterableDataset", "TensorDataset", "StackDataset",
           "ConcatDataset", "ChainDataset", "Subset", "random_split", "Sampler",
           "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler", "DistributedSampler", "default_collate", "default_convert", "get_worker_info"]
