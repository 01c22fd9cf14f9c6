"""Datasets: what a :class:`DataLoader` reads samples from, and ways to combine and split them.

A *map-style* dataset (:class:`Dataset`) has ``__getitem__(index)`` and ``__len__``; an
*iterable-style* one (:class:`IterableDataset`) has ``__iter__``. Plain Python sequences
(a list, a ``range``) work wherever a map-style dataset is expected.

Example::

    >>> ds = TensorDataset(gradient.randn(100, 3), gradient.randint(0, 2, (100,)))
    >>> train, val = random_split(ds, [0.8, 0.2])
    >>> len(train), len(val)
    (80, 20)
"""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from typing import Generic, Iterable, Sequence, TypeVar

from ...errors import ArgumentTypeError, ArgumentValueError, ShapeError
from ...ops.argument_errors import as_number
from ...ops.creation import randperm
from ...tensor import Tensor

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "StackDataset", "ConcatDataset",
           "ChainDataset", "Subset", "random_split"]

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")


class Dataset(Generic[T_co]):
    """A map-style dataset: subclasses define ``__getitem__(index)`` and usually ``__len__``.

    ``a + b`` concatenates two datasets (a :class:`ConcatDataset`). A subclass may also
    define ``__getitems__(indices)`` returning the list of samples, to read a batch at once.

    Example::

        class Squares(Dataset):
            def __len__(self):
                return 10
            def __getitem__(self, i):
                return gradient.tensor(float(i)), i * i
    """

    def __getitem__(self, index) -> T_co:
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other: "Dataset[T_co]") -> "ConcatDataset[T_co]":
        return ConcatDataset([self, other])

    # No default __len__: len() of a dataset without one raises TypeError, as in PyTorch.


class IterableDataset(Dataset[T_co], Iterable[T_co]):
    """An iterable-style dataset: subclasses define ``__iter__`` (a stream of samples).

    Use it for data read sequentially (a file, a generator); the :class:`DataLoader` takes
    samples in the order ``__iter__`` gives them (no sampler, no ``shuffle``).
    ``a + b`` chains two of them (a :class:`ChainDataset`).

    Example::

        class Counter(IterableDataset):
            def __init__(self, n):
                self.n = n
            def __iter__(self):
                return iter(range(self.n))

        list(DataLoader(Counter(5), batch_size=2))  # [tensor([0, 1]), tensor([2, 3]), tensor([4])]
    """

    def __add__(self, other: Dataset[T_co]):
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Samples are rows of tensors: item ``i`` is ``tuple(t[i] for t in tensors)``.

    Every tensor must have the same size in dimension 0 (one row per sample).
    Unlike PyTorch, a mismatch raises :class:`gradient.ShapeError` (a ``ValueError``) instead
    of an ``AssertionError``.

    Example::

        >>> ds = TensorDataset(gradient.randn(100, 3), gradient.randint(0, 2, (100,)))
        >>> x, y = ds[0]
        >>> x.shape, y.shape
        (gradient.Size([3]), gradient.Size([]))
    """

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ArgumentValueError("TensorDataset: expected at least one tensor, got none")
        sizes = []
        for i, t in enumerate(tensors):
            shape = getattr(t, "shape", None)
            if shape is None:
                raise ArgumentTypeError(
                    f"TensorDataset: expected tensors, got {type(t).__name__} at "
                    f"position {i}; convert it with gradient.tensor(...)")
            if len(shape) == 0:
                raise ShapeError(f"TensorDataset: tensor {i} is 0-d; every tensor needs a first "
                                 "dimension holding one row per sample")
            sizes.append(shape[0])
        if any(s != sizes[0] for s in sizes):
            raise ShapeError(f"TensorDataset: size mismatch between tensors: every tensor needs "
                             f"the same size in dimension 0 (one row per sample), got sizes "
                             f"{sizes}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def _batch(self, indices: list) -> list:
        """``default_collate([self[i] for i in indices])`` in one gather per tensor (the
        DataLoader's fast path: the same values, dtypes and autograd graph as stacking rows)."""
        return [t[indices] for t in self.tensors]


class StackDataset(Dataset):
    """Samples of several datasets of one length side by side: ``StackDataset(a, b)[i]`` is
    ``(a[i], b[i])``, and ``StackDataset(image=a, text=b)[i]`` is ``{"image": a[i], "text": b[i]}``.

    Example::

        >>> ds = StackDataset(x=TensorDataset(gradient.randn(4, 2)), label=[0, 1, 0, 1])
        >>> ds[3]["label"]
        1
    """

    def __init__(self, *args: Dataset, **kwargs: Dataset) -> None:
        if args:
            if kwargs:
                raise ArgumentValueError(
                    "Supported either ``tuple``- (via ``args``) or``dict``- (via "
                    "``kwargs``) like input/output, but both types are given.")
            datasets = args
        elif kwargs:
            datasets = tuple(kwargs.values())
        else:
            raise ArgumentValueError("At least one dataset should be passed")
        lengths = [len(d) for d in datasets]
        if any(n != lengths[0] for n in lengths):
            raise ArgumentValueError(f"Size mismatch between datasets: lengths {lengths}")
        self._length = lengths[0]
        self.datasets = args if args else kwargs

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self) -> int:
        return self._length


class ConcatDataset(Dataset[T_co]):
    """Several map-style datasets one after the other: indices ``0 .. len(a)-1`` read ``a``,
    the next ``len(b)`` read ``b``, and so on (negative indices count from the end).

    Example::

        >>> ds = ConcatDataset([range(3), range(10, 12)])
        >>> [ds[i] for i in range(len(ds))]
        [0, 1, 2, 10, 11]
    """

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ArgumentValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise ArgumentTypeError("ConcatDataset does not support IterableDataset; "
                                        "use ChainDataset to chain iterable datasets")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ArgumentValueError(
                    "absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[which - 1] if which > 0 else 0
        return self.datasets[which][idx - start]


class ChainDataset(IterableDataset):
    """Several iterable datasets one after the other (``a + b`` for iterable datasets).

    Example::

        >>> list(ChainDataset([Counter(2), Counter(3)]))   # Counter: see IterableDataset
        [0, 1, 0, 1, 2]
    """

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise ArgumentTypeError(f"ChainDataset only supports IterableDataset, got "
                                        f"{type(d).__name__}")
            yield from d

    def __len__(self) -> int:
        total = 0
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise ArgumentTypeError(f"ChainDataset only supports IterableDataset, got "
                                        f"{type(d).__name__}")
            total += len(d)
        return total


class Subset(Dataset[T_co]):
    """The samples of ``dataset`` at ``indices``, in that order: ``Subset(ds, idx)[i]`` is
    ``ds[idx[i]]``.

    Example::

        >>> evens = Subset(range(10), [0, 2, 4])
        >>> len(evens), evens[1]
        (3, 2)
    """

    def __init__(self, dataset: Dataset[T_co], indices: Sequence[int]) -> None:
        if isinstance(indices, (str, bytes)) or not hasattr(indices, "__getitem__"):
            raise ArgumentTypeError(f"Subset: indices must be a sequence of integers, got "
                                    f"{type(indices).__name__} {indices!r}")
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list) -> list:
        # A subclass that overrides __getitem__ (PyTorch raises for it) gets its own method.
        if type(self).__getitem__ is not Subset.__getitem__:
            return [self[i] for i in indices]
        inner = getattr(self.dataset, "__getitems__", None)
        if callable(inner):
            return inner([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset[T], lengths: Sequence[int | float],
                 generator=None) -> list[Subset[T]]:
    """Split ``dataset`` into non-overlapping random :class:`Subset` s of the given ``lengths``.

    ``lengths`` are sizes summing to ``len(dataset)``, or fractions summing to 1: each split
    then gets ``floor(fraction * len(dataset))`` samples and the remainder is handed out one
    by one to the splits in order, as PyTorch does. The permutation comes from
    ``generator`` (a :class:`gradient.Generator`; the default generator when None, so
    ``gradient.manual_seed`` makes it reproducible; the split is not PyTorch's).

    Example::

        >>> g = gradient.Generator().manual_seed(0)
        >>> train, val = random_split(range(10), [0.7, 0.3], generator=g)
        >>> len(train), len(val)
        (7, 3)
    """
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Iterable):
        raise ArgumentTypeError(f"random_split: lengths must be a sequence of sizes or "
                                f"fractions, got {type(lengths).__name__} {lengths!r}")
    lengths = [as_number(n, "random_split: each length") for n in lengths]
    total = sum(lengths)
    if math.isclose(total, 1) and total <= 1:
        n = len(dataset)
        sizes = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ArgumentValueError(f"Fraction at index {i} is not between 0 and 1")
            sizes.append(int(math.floor(n * frac)))
        for i in range(n - sum(sizes)):  # the remainder, round robin
            sizes[i % len(sizes)] += 1
        lengths = sizes
        for i, size in enumerate(lengths):
            if size == 0:
                warnings.warn(f"Length of split at index {i} is 0. "
                              "This might result in an empty dataset.", stacklevel=2)
    if sum(lengths) != len(dataset):
        raise ArgumentValueError(
            "Sum of input lengths does not equal the length of the input dataset! "
            f"(lengths {lengths} sum to {sum(lengths)}, the dataset has "
            f"{len(dataset)} samples)")
    if any(int(n) != n or n < 0 for n in lengths):
        raise ArgumentValueError(
            f"random_split: lengths must be non-negative integers or fractions "
            f"summing to 1, got {lengths}")
    lengths = [int(n) for n in lengths]
    indices = randperm(sum(lengths), generator=generator).tolist()
    return [Subset(dataset, indices[end - size:end])
            for end, size in zip(itertools.accumulate(lengths), lengths)]
