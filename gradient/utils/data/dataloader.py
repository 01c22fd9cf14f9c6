"""DataLoader: iterate over a dataset in (shuffled) batches, as ``torch.utils.data.DataLoader``.

One pass over the loader is one epoch: a sampler gives the indices (a new order every epoch
with ``shuffle=True``), a batch sampler groups them, the dataset is read at those indices and
``collate_fn`` (:func:`default_collate`) stacks the samples into tensors.

Everything runs in the calling process: ``num_workers > 0`` gives the same batches, read
in the main process (with a warning), ``pin_memory`` is accepted and ignored, and
``get_worker_info()`` is always None.

Example::

    >>> ds = TensorDataset(gradient.randn(10, 3), gradient.arange(10))
    >>> loader = DataLoader(ds, batch_size=4, shuffle=True)
    >>> len(loader)
    3
    >>> [tuple(x.shape) for x, y in loader]
    [(4, 3), (4, 3), (2, 3)]
"""

from __future__ import annotations

import itertools
import warnings
from typing import Callable, Iterable

from .collate import default_collate, default_convert
from .dataset import Dataset, IterableDataset, Subset, TensorDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler
from ...errors import ArgumentTypeError, ArgumentValueError
from ...ops.argument_errors import as_int, as_number
from ...ops.creation import Generator

__all__ = ["DataLoader", "get_worker_info"]


def get_worker_info():
    """Information about the current loader worker process: always None in gradient, which
    reads data in the main process only (code that shards an ``IterableDataset`` by worker
    takes its single-process branch).

    Example::

        >>> get_worker_info() is None
        True
    """
    return None


class _InfiniteConstantSampler(Sampler):
    """The sampler of an iterable dataset: ``None`` for ever (the dataset chooses the order)."""

    def __iter__(self):
        while True:
            yield None


class DataLoader:
    """Batches of samples from ``dataset``, one epoch per ``for batch in loader:``.

    Arguments follow ``torch.utils.data.DataLoader``:

    * ``batch_size`` (default 1) samples per batch; ``None`` turns batching off (each item is
      passed through ``collate_fn``, :func:`default_convert` by default)
    * ``shuffle=True`` draws a new random order every epoch (from ``generator``, or from the
      default generator: ``gradient.manual_seed`` makes it reproducible)
    * ``sampler`` / ``batch_sampler``: custom index orders (exclusive with ``shuffle``; a
      ``batch_sampler`` also with ``batch_size``, ``sampler`` and ``drop_last``)
    * ``drop_last=True`` drops the last, incomplete batch
    * ``collate_fn`` merges a list of samples into a batch (:func:`default_collate`)

    Single process: ``num_workers > 0`` reads in the main process (one warning),
    ``worker_init_fn`` and ``multiprocessing_context`` are then not used, ``pin_memory``,
    ``pin_memory_device``, ``prefetch_factor``, ``persistent_workers``, ``timeout`` and
    ``in_order`` are checked as in PyTorch and otherwise ignored.

    Example::

        loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, drop_last=True)
        for epoch in range(10):
            for xb, yb in loader:
                loss = F.mse_loss(model(xb), yb)
                opt.zero_grad(); loss.backward(); opt.step()
    """

    _initialized = False

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | Iterable | None = None,
                 batch_sampler: Sampler | Iterable | None = None, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, multiprocessing_context=None,
                 generator=None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True) -> None:
        if as_int(num_workers, "DataLoader: num_workers") < 0:
            raise ArgumentValueError("num_workers option should be non-negative; "
                                     "use num_workers=0 to disable multiprocessing.")
        if as_number(timeout, "DataLoader: timeout") < 0:
            raise ArgumentValueError("timeout option should be non-negative")
        for name, value in (("sampler", sampler), ("batch_sampler", batch_sampler)):
            if value is not None and not hasattr(value, "__iter__"):
                raise ArgumentTypeError(f"DataLoader: {name} must be a Sampler or an iterable "
                                        f"of indices, got {type(value).__name__} {value!r}")
        for name, value in (("collate_fn", collate_fn), ("worker_init_fn", worker_init_fn)):
            if value is not None and not callable(value):
                raise ArgumentTypeError(f"DataLoader: {name} must be a function, got "
                                        f"{type(value).__name__} {value!r}")
        if generator is not None and not isinstance(generator, Generator):
            raise ArgumentTypeError(f"DataLoader: generator must be a gradient.Generator, got "
                                    f"{type(generator).__name__} {generator!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ArgumentValueError(
                "prefetch_factor option could only be specified in multiprocessing."
                "let num_workers > 0 to enable multiprocessing, otherwise set "
                "prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ArgumentValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ArgumentValueError("persistent_workers option needs num_workers > 0")
        if multiprocessing_context is not None and num_workers == 0:
            raise ArgumentValueError(
                "multiprocessing_context can only be used with multi-process "
                f"loading (num_workers > 0), but got num_workers={num_workers}")

        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order

        if isinstance(dataset, IterableDataset):
            self._dataset_kind = "iterable"
            if shuffle not in {False, None}:
                raise ArgumentValueError(
                    "DataLoader with IterableDataset: expected unspecified shuffle "
                    f"option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ArgumentValueError(
                    "DataLoader with IterableDataset: expected unspecified sampler "
                    f"option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ArgumentValueError(
                    "DataLoader with IterableDataset: expected unspecified "
                    f"batch_sampler option, but got batch_sampler={batch_sampler}")
        else:
            self._dataset_kind = "map"
            shuffle = bool(shuffle)

        if sampler is not None and shuffle:
            raise ArgumentValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ArgumentValueError(
                    "batch_sampler option is mutually exclusive with batch_size, "
                    "shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ArgumentValueError(
                "batch_size=None option disables auto-batching and is mutually "
                "exclusive with drop_last")

        if sampler is None:
            if self._dataset_kind == "iterable":
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self._initialized = True

        if num_workers > 0:
            warnings.warn(f"DataLoader: gradient reads data in the main process only; "
                          f"num_workers={num_workers} gives the same batches without worker "
                          "processes (set num_workers=0 to silence this warning)",
                          UserWarning, stacklevel=2)

    def __setattr__(self, name, value) -> None:
        # as in PyTorch: these decide the batches, so they are fixed once the loader exists
        if self._initialized and name in ("batch_size", "batch_sampler", "sampler", "drop_last",
                                          "dataset", "persistent_workers"):
            raise ArgumentValueError(f"{name} attribute should not be set after "
                                     f"{type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        # what __iter__ walks: batches of indices when batching, single indices otherwise
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self) -> "_SingleProcessIterator":
        return _SingleProcessIterator(self)

    def __len__(self) -> int:
        if self._dataset_kind == "iterable":
            # the dataset's own __len__ (TypeError without one), in batches
            length = len(self.dataset)
            if self.batch_size is not None:
                length = length // self.batch_size if self.drop_last \
                    else -(-length // self.batch_size)
            return length
        return len(self._index_sampler)


def _tensor_dataset_batch(dataset, indices: list):
    """The collated batch of a TensorDataset (possibly inside Subsets) read with one gather per
    tensor, or None when ``dataset`` is anything else. Exact types only: a subclass may
    override ``__getitem__``."""
    while type(dataset) is Subset:
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    if type(dataset) is TensorDataset and indices:
        return dataset._batch(indices)
    return None


class _SingleProcessIterator:
    """One epoch of a :class:`DataLoader`: fetches and collates batch after batch."""

    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        self._dataset = loader.dataset
        self._collate_fn = loader.collate_fn
        self._auto_collation = loader._auto_collation
        self._drop_last = loader.drop_last
        self._index_iter = iter(loader._index_sampler)
        self._num_yielded = 0
        if loader._dataset_kind == "iterable":
            self._dataset_iter = iter(self._dataset)
            self._ended = False
            self._fetch = self._fetch_iterable
        else:
            self._fetch = self._fetch_map

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def __next__(self):
        index = next(self._index_iter)  # StopIteration ends the epoch
        data = self._fetch(index)
        self._num_yielded += 1
        return data

    def _fetch_map(self, index):
        if not self._auto_collation:
            return self._collate_fn(self._dataset[index])
        if self._collate_fn is default_collate:
            batch = _tensor_dataset_batch(self._dataset, list(index))
            if batch is not None:
                return batch
        getitems = getattr(self._dataset, "__getitems__", None)
        if callable(getitems):
            samples = getitems(index)
        else:
            samples = [self._dataset[i] for i in index]
        return self._collate_fn(samples)

    def _fetch_iterable(self, index):
        if not self._auto_collation:
            # one item per step; the end of the dataset ends the epoch
            return self._collate_fn(next(self._dataset_iter))
        if self._ended:
            raise StopIteration
        samples = list(itertools.islice(self._dataset_iter, len(index)))
        if len(samples) < len(index):
            self._ended = True
            if not samples or self._drop_last:
                raise StopIteration
        return self._collate_fn(samples)
