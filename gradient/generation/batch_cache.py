"""The KV cache of sequences decoded together while each sits at its own position: what a
server needs to run requests that arrived at different times in one forward per step.

Row ``i`` of the cache holds sequence ``i``'s keys and values at positions ``0 ..
lengths[i]-1``. A decode step writes each sequence's new key and value at its own position;
attention reads every row up to the longest, and the attention mask hides what lies past a
row's own length (``step_inputs`` makes it, with the position ids). Rows in use are packed at
the front: a sequence that leaves is replaced by the last one, so the rows a step reads are a
view, never a gather.

The buffers are allocated once for ``rows x max_length`` positions, as zeros the operating
system maps on first write (on the CPU, above glibc's mmap threshold): resident memory
follows the positions actually written, a page at a time, not the rows times the context.

Example::

    >>> batch = BatchKVCache(model, rows=8, max_length=2048)
    >>> row = batch.add(prompt_cache, len(prompt))                 # a prefilled sequence joins
    >>> ids, mask, positions = batch.step_inputs(last_tokens)
    >>> logits = model(ids, attention_mask=mask, position_ids=positions, cache=batch).logits
    >>> moved = batch.remove(row)                                  # it leaves; `moved` took its row
"""

from __future__ import annotations

import numpy as np

from ..autograd import capture_state, no_grad
from ..dtypes import int64
from ..errors import ShapeError
from ..ops.creation import tensor
from ..tensor import Tensor

__all__ = ["BatchKVCache"]


class BatchKVCache:
    """Keys and values of up to ``rows`` sequences of ``model``, each at its own length."""

    def __init__(self, model, rows: int, max_length: int):
        self._cache = model.new_cache(rows, max_length)
        self.keys, self.values = self._cache.keys, self._cache.values
        self.rows, self.max_length = rows, max_length
        self.lengths = np.zeros(rows, np.int64)     # positions held, per row
        self.size = 0                                # rows in use: 0 .. size-1

    @property
    def length(self) -> int:
        """The longest row's length: the attention of a step reads this many positions and the
        new one."""
        return int(self.lengths[:self.size].max()) if self.size else 0

    # -- sequences joining and leaving
    def add(self, cache, length: int, ids=None) -> int:
        """Take a sequence whose first ``length`` positions are in ``cache`` (a one-sequence
        :class:`~gradient.generation.KVCache`, prefilled) into the next free row; the row.
        (``ids``, the sequence's tokens, let a :class:`PagedKVCache` share blocks; a row here
        holds its whole context, so they are not needed.)"""
        if self.size == self.rows:
            raise ShapeError(f"BatchKVCache: all {self.rows} rows are in use")
        if length >= self.max_length:
            raise ShapeError(f"BatchKVCache: {length} positions leave no room in rows of "
                             f"{self.max_length}")
        row = self.size
        with no_grad():
            for src, dst in zip(cache.keys + cache.values, self.keys + self.values):
                dst[row:row + 1, :, :length].copy_(src[:, :, :length])
        self.lengths[row] = length
        self.size += 1
        return row

    def remove(self, row: int) -> int | None:
        """Free ``row``: the last row in use moves into it. Returns the row that moved (its
        sequence is now at ``row``), or None when ``row`` was the last."""
        last = self.size - 1
        self.size -= 1
        if row == last:
            return None
        n = int(self.lengths[last])
        with no_grad():
            for buf in self.keys + self.values:
                buf[row:row + 1, :, :n].copy_(buf[last:last + 1, :, :n])
        self.lengths[row] = n
        return last

    def clear(self) -> None:
        """Every row leaves."""
        self.size = 0

    def copy_to(self, row: int, cache, length: int) -> None:
        """Copy the first ``length`` positions of ``row`` into the one-sequence ``cache``."""
        with no_grad():
            for src, dst in zip(self.keys + self.values, cache.keys + cache.values):
                dst[:, :, :length].copy_(src[row:row + 1, :, :length])

    # -- a decode step
    def step_inputs(self, tokens, device=None):
        """``(input_ids, attention_mask, position_ids)`` of a step feeding each row in use
        its next token (``tokens``, one per row): ids ``(size, 1)``, the mask ``(size, length +
        1)`` with 1 up to each row's own new position, the positions ``(size, 1)``."""
        lengths = self.lengths[:self.size]
        if lengths.size and lengths.max() >= self.max_length:
            raise ShapeError(f"BatchKVCache: a row is full ({self.max_length} positions)")
        mask = (np.arange(self.length + 1)[None, :] <= lengths[:, None]).astype(np.int64)
        ids = np.asarray(tokens, np.int64).reshape(self.size, 1)
        return (tensor(ids, dtype=int64, device=device), tensor(mask, dtype=int64, device=device),
                tensor(lengths[:, None].copy(), dtype=int64, device=device))

    def update(self, layer: int, key, value):
        """The model's write of a step: each row's one new key and value ``(size, heads, 1,
        head_dim)`` at that row's own position; views of every row in use up to the longest.
        A captured batched step (:mod:`gradient.capture`) replays the write with the rows and
        lengths of its own step."""
        if capture_state.current.recorder is not None:
            k, v = capture_state.run(BatchKVCache.update_arrays, self, layer, key._data,
                                     value._data)
            return Tensor._make(k, False, key._backend), Tensor._make(v, False, value._backend)
        self.update_arrays(layer, key._data, value._data)
        end = self.length + 1
        return (self.keys[layer][:self.size, :, :end], self.values[layer][:self.size, :, :end])

    def update_arrays(self, layer: int, key, value):
        """:meth:`update` on raw backend arrays: returns raw views ``(keys, values)`` of the
        rows in use up to the longest row's new position."""
        if key.shape[0] != self.size or key.shape[2] != 1:
            raise ShapeError(f"BatchKVCache: a step gives one position for each of the "
                             f"{self.size} rows in use, got keys of shape {tuple(key.shape)}")
        views = []
        index = (slice(0, self.size), slice(None), slice(0, self.length + 1))
        for buf, new in ((self.keys[layer], key), (self.values[layer], value)):
            b = buf._backend
            if b.name == "cpu":       # every row's position in one write
                b.setitem(buf._data, (np.arange(self.size), slice(None),
                                      self.lengths[:self.size]), new[:, :, 0])
            else:
                for i, at in enumerate(self.lengths[:self.size]):
                    b.setitem(buf._data, (i, slice(None), slice(at, at + 1)), b.getitem(new, (i,)))
            buf._version.bump("BatchKVCache.update")
            views.append(b.getitem(buf._data, index))
        return views[0], views[1]

    def advance(self, n: int) -> None:
        """The model calls this once per forward: every row in use holds ``n`` more."""
        self.lengths[:self.size] += n

    def __repr__(self) -> str:
        return (f"BatchKVCache(rows={self.rows}, max_length={self.max_length}, "
                f"lengths={self.lengths[:self.size].tolist()})")
