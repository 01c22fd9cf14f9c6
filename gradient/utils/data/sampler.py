"""Samplers: the order in which a :class:`DataLoader` reads the indices of a map-style dataset.

A sampler is any iterable of indices (a :class:`BatchSampler` yields lists of them). The random
ones draw from gradient's generators: a ``generator=`` (a :class:`gradient.Generator`), or the
default generator, so ``gradient.manual_seed(0)`` makes shuffling reproducible. The orders
are gradient's own, not PyTorch's (a different random number generator).

Example::

    >>> list(BatchSampler(SequentialSampler(range(7)), batch_size=3, drop_last=False))
    [[0, 1, 2], [3, 4, 5], [6]]
"""

from __future__ import annotations

from typing import Generic, Iterable, Iterator, Sequence, TypeVar

from ...dtypes import float64, int64
from ...ops.creation import Generator, as_tensor, randint, randperm
from ...ops.index import multinomial
from ...errors import ArgumentTypeError, ArgumentValueError

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler"]

T_co = TypeVar("T_co", covariant=True)


class Sampler(Generic[T_co]):
    """Base class of samplers: subclasses define ``__iter__`` (the indices) and, when the number
    is known, ``__len__``.

    Example::

        class Reversed(Sampler):
            def __init__(self, data_source):
                self.n = len(data_source)
            def __iter__(self):
                return iter(range(self.n - 1, -1, -1))
            def __len__(self):
                return self.n
    """

    def __init__(self, data_source=None) -> None:
        pass  # accepted for compatibility with old code, as in PyTorch

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError


class SequentialSampler(Sampler[int]):
    """``0, 1, ..., len(data_source) - 1``, in order.

    Example::

        >>> list(SequentialSampler(range(3)))
        [0, 1, 2]
    """

    def __init__(self, data_source) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


def _fresh_generator() -> Generator:
    """A generator seeded from the default one. Like PyTorch, a sampler without a generator
    takes one seed per epoch from the default generator, so the order is reproducible under
    ``gradient.manual_seed`` and does not shift when the training loop draws random numbers
    (dropout, initialisation) in the middle of an epoch."""
    seed = int(randint(0, 2 ** 63 - 1, (), dtype=int64).item())
    return Generator().manual_seed(seed)


class RandomSampler(Sampler[int]):
    """Random indices into ``data_source``: a new permutation each epoch, or with
    ``replacement=True`` ``num_samples`` independent draws.

    Without replacement, ``num_samples`` larger than the dataset chains several permutations.

    Example::

        >>> gradient.manual_seed(0)
        >>> sorted(RandomSampler(range(5)))
        [0, 1, 2, 3, 4]
        >>> len(list(RandomSampler(range(5), replacement=True, num_samples=12)))
        12
    """

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator: Generator | None = None) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.replacement, bool):
            raise ArgumentTypeError(f"replacement should be a boolean value, but got "
                                    f"replacement={self.replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ArgumentValueError(f"num_samples should be a positive integer value, but got "
                                     f"num_samples={self.num_samples}")

    @property
    def num_samples(self) -> int:
        # read each time: the dataset may grow or shrink between epochs
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        gen = self.generator if self.generator is not None else _fresh_generator()
        if self.replacement:
            # in chunks, so that a huge num_samples does not hold every index at once
            for start in range(0, self.num_samples, 1024):
                size = min(1024, self.num_samples - start)
                yield from randint(0, n, (size,), generator=gen).tolist()
        else:
            for _ in range(self.num_samples // n):
                yield from randperm(n, generator=gen).tolist()
            yield from randperm(n, generator=gen).tolist()[:self.num_samples % n]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given ``indices`` in a random order (a new one each epoch).

    Example::

        >>> sorted(SubsetRandomSampler([4, 8, 15]))
        [4, 8, 15]
    """

    def __init__(self, indices: Sequence[int], generator: Generator | None = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        for i in randperm(len(self.indices), generator=self.generator).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """``num_samples`` indices in ``0 .. len(weights)-1``, index ``i`` drawn with probability
    proportional to ``weights[i]`` (the weights need not sum to 1). An index of weight 0 is
    never drawn with replacement; without replacement it comes only once the others run out.

    Example (oversample a rare class)::

        >>> labels = gradient.tensor([0, 0, 0, 1])
        >>> dataset = TensorDataset(gradient.randn(4, 2), labels)
        >>> weights = [1 / 3, 1 / 3, 1 / 3, 1.0]            # 1 / count of the sample's class
        >>> sampler = WeightedRandomSampler(weights, num_samples=8)
        >>> loader = DataLoader(dataset, batch_size=4, sampler=sampler)   # about half are 1s
    """

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator: Generator | None = None) -> None:
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ArgumentValueError(f"num_samples should be a positive integer value, but got "
                                     f"num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ArgumentValueError(f"replacement should be a boolean value, but got "
                                     f"replacement={replacement}")
        weights = as_tensor(weights, dtype=float64)
        if weights.ndim != 1:
            raise ArgumentValueError(
                f"weights should be a 1d sequence but given weights have shape "
                f"{tuple(weights.shape)}")
        self.weights = weights
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        draws = multinomial(self.weights, self.num_samples, self.replacement,
                            generator=self.generator)
        yield from draws.tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list]):
    """Groups the indices of ``sampler`` (any iterable of indices) into lists of ``batch_size``;
    the last, shorter list is dropped when ``drop_last``.

    Example::

        >>> list(BatchSampler(range(5), batch_size=2, drop_last=True))
        [[0, 1], [2, 3]]
    """

    def __init__(self, sampler: Sampler[int] | Iterable[int], batch_size: int,
                 drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ArgumentValueError(f"batch_size should be a positive integer value, but got "
                                     f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ArgumentValueError(
                f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
