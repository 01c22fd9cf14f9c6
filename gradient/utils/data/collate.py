"""Collation: turning a list of samples into one batch, as ``torch.utils.data.default_collate``.

:func:`default_collate` keeps the structure of a sample and stacks along a new first
dimension what can be stacked:

* gradient Tensors -> ``gradient.stack(batch)``; NumPy arrays -> the same, as tensors
* Python floats -> float64, Python ints -> int64, bools -> bool, NumPy scalars -> their dtype
* strings and bytes stay a list
* dicts, namedtuples, lists and tuples are collated field by field (a tuple becomes a list,
  as in PyTorch)

:func:`default_convert` (used when ``batch_size=None``) only turns NumPy arrays into tensors.
To teach collation a new type, copy ``default_collate_fn_map``, add ``{MyType: fn}`` (``fn(batch,
*, collate_fn_map)``) and pass ``collate_fn=lambda b: collate(b, collate_fn_map=my_map)``.

Example::

    >>> batch = default_collate([(gradient.zeros(3), 0), (gradient.ones(3), 1)])
    >>> batch[0].shape, batch[1]
    (gradient.Size([2, 3]), tensor([0, 1]))
"""

from __future__ import annotations

import collections.abc
import copy
import re
from typing import Callable

import numpy as np

from ...dtypes import float64
from ...ops.creation import as_tensor, from_numpy, tensor
from ...ops.shape import stack
from ...tensor import Tensor
from ...errors import ArgumentTypeError, ShapeError

__all__ = ["default_collate", "default_convert", "collate", "default_collate_fn_map"]

# NumPy dtypes that hold strings or Python objects: not convertible to tensors
_STR_OR_OBJECT = re.compile(r"[SaUO]")

_ERR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        "found {}")


def _is_namedtuple(obj) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_fields")


def _map_like(elem, fn):
    """``elem``'s type filled with ``fn(key)`` for each key (a plain dict when that fails)."""
    values = {key: fn(key) for key in elem}
    try:
        if isinstance(elem, collections.abc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(values)
            return clone
        return type(elem)(values)
    except TypeError:
        return values


def _sequence_like(elem, items: list):
    """``elem``'s (mutable) sequence type holding ``items`` (a list when that fails)."""
    try:
        if isinstance(elem, collections.abc.MutableSequence):
            clone = copy.copy(elem)
            for i, item in enumerate(items):
                clone[i] = item
            return clone
        return type(elem)(items)
    except TypeError:
        return items


def collate(batch, *, collate_fn_map: dict | None = None):
    """Collate ``batch`` (a list of samples): a type found in ``collate_fn_map`` (exactly, else
    by ``isinstance`` in the map's order) is handled by its function; mappings, namedtuples and
    sequences are collated element-wise; anything else raises ``TypeError``.

    Example::

        >>> my_map = {**default_collate_fn_map, str: lambda b, *, collate_fn_map=None: "".join(b)}
        >>> collate(["a", "b"], collate_fn_map=my_map)
        'ab'
    """
    elem = batch[0]
    elem_type = type(elem)
    if collate_fn_map is not None:
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for kind, fn in collate_fn_map.items():
            if isinstance(elem, kind):
                return fn(batch, collate_fn_map=collate_fn_map)

    def again(samples):
        return collate(samples, collate_fn_map=collate_fn_map)

    if isinstance(elem, collections.abc.Mapping):
        return _map_like(elem, lambda key: again([d[key] for d in batch]))
    if _is_namedtuple(elem):
        return elem_type(*(again(list(samples)) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(sample) != size for sample in batch):
            raise ShapeError("each element in list of batch should be of equal size "
                             f"(got lengths {[len(sample) for sample in batch]})")
        items = [again(list(samples)) for samples in zip(*batch)]
        if isinstance(elem, tuple):
            return items  # a list, as PyTorch does (for backward compatibility there)
        return _sequence_like(elem, items)
    raise ArgumentTypeError(_ERR.format(elem_type))


def _collate_tensor(batch, *, collate_fn_map=None):
    return stack(batch, 0)


def _collate_numpy_array(batch, *, collate_fn_map=None):
    first = batch[0]
    if _STR_OR_OBJECT.search(first.dtype.str) is not None:
        raise ArgumentTypeError(_ERR.format(first.dtype))
    if all(isinstance(a, np.ndarray) and a.dtype == first.dtype and a.shape == first.shape
           for a in batch):
        return from_numpy(np.stack(batch))  # a new array: the batch shares no memory
    return collate([as_tensor(a) for a in batch], collate_fn_map=collate_fn_map)


def _collate_numpy_scalar(batch, *, collate_fn_map=None):
    return tensor(np.array(batch))  # keeps the scalars' dtype (float32 stays float32)


def _collate_float(batch, *, collate_fn_map=None):
    return tensor(batch, dtype=float64)


def _collate_int(batch, *, collate_fn_map=None):
    return tensor(batch)  # int64 (bool for bools)


def _collate_str(batch, *, collate_fn_map=None):
    return batch


# Order matters for the isinstance lookup: NumPy scalars before float (np.float64 is a float).
default_collate_fn_map: dict[type | tuple[type, ...], Callable] = {
    Tensor: _collate_tensor,
    np.ndarray: _collate_numpy_array,
    (np.bool_, np.number, np.object_): _collate_numpy_scalar,
    float: _collate_float,
    int: _collate_int,
    str: _collate_str,
    bytes: _collate_str,
}


def default_collate(batch):
    """Stack a list of samples into a batch, keeping their structure (see the module docstring).

    Example::

        >>> default_collate([{"x": np.zeros(2), "id": "a"}, {"x": np.ones(2), "id": "b"}])
        {'x': tensor([[0., 0.], [1., 1.]], dtype=gradient.float64), 'id': ['a', 'b']}
    """
    return collate(batch, collate_fn_map=default_collate_fn_map)


def default_convert(data):
    """Turn NumPy arrays and scalars inside ``data`` into tensors, keeping the structure (tuples
    become lists, as in PyTorch); everything else is left as it is.

    Example::

        >>> default_convert((np.arange(3), "a", 1.5))
        [tensor([0, 1, 2]), 'a', 1.5]
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if _STR_OR_OBJECT.search(data.dtype.str) else as_tensor(data)
    if isinstance(data, (np.bool_, np.number)):
        return as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        return _map_like(data, lambda key: default_convert(data[key]))
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _sequence_like(data, [default_convert(d) for d in data])
    return data
