"""A paged KV cache: the keys and values of sequences decoded together, in fixed-size blocks
drawn from one pool, so that memory follows the positions the sequences actually hold.

Every layer's keys (and values) live in one pool of ``n_blocks`` blocks of ``block_size``
positions, ``(n_blocks, n_kv_heads, block_size, head_dim)``. A sequence holds the blocks its
row of the block table lists, in order: position j of row b is in block ``tables[b, j //
block_size]``, at ``j % block_size``. A row takes a block from the free ones when it crosses
into it, and gives its blocks back when it leaves; the lowest free blocks are handed out
first, so the pool's pages in use stay at its start and the operating system maps only
those. Rows in use are packed at the front; a row that leaves is replaced by the last one,
which moves by its block-table row, not by its keys and values.

A decode step feeds each row its next token: :meth:`step_inputs` gives the ids, the
positions, and as the attention mask a :class:`~gradient.ops.causal_bias.PagedRows` (each row's
length and blocks) that the models pass to attention, which reads every row through its
blocks (``paged_decode_attention``: each row the bits of that sequence decoded alone). The
interface is :class:`~gradient.generation.BatchKVCache`'s, so a server may use either.

Example::

    >>> paged = PagedKVCache(model, rows=8, max_length=2048)
    >>> row = paged.add(prompt_cache, len(prompt))                 # a prefilled sequence joins
    >>> ids, rows, positions = paged.step_inputs(last_tokens)
    >>> logits = model(ids, attention_mask=rows, position_ids=positions, cache=paged).logits
    >>> paged.blocks_in_use                                        # follows the tokens held
    >>> moved = paged.remove(row)                                  # its blocks are free again
"""

from __future__ import annotations

import heapq

import numpy as np

from ..autograd import capture_state, no_grad
from ..dtypes import int64
from ..errors import ShapeError
from ..ops.causal_bias import PagedRows
from ..ops.creation import tensor
from ..tensor import Tensor

__all__ = ["PagedKVCache", "BLOCK_SIZE"]

#: Positions per block: a multiple of the attention kernel's tile of keys (64).
BLOCK_SIZE = 64


class PagedKVCache:
    """Keys and values of up to ``rows`` sequences of ``model``, each at most ``max_length``
    positions, in blocks of ``block_size`` positions from a pool of ``n_blocks`` (default:
    enough for every row at ``max_length``; fewer bounds the memory, and a row that finds no
    free block is refused with a ShapeError)."""

    def __init__(self, model, rows: int, max_length: int, block_size: int = BLOCK_SIZE,
                 n_blocks: int | None = None):
        if block_size < 1 or block_size % 64:
            raise ValueError(f"PagedKVCache: block_size must be a positive multiple of 64, got "
                             f"{block_size}")
        per_row = -(-max_length // block_size)
        n_blocks = rows * per_row if n_blocks is None else int(n_blocks)
        # the model's own cache of n_blocks "sequences" of block_size positions is the pool:
        # its dtype, device and layout (every layer in one buffer on the CPU)
        self._pool = model.new_cache(n_blocks, block_size)
        self.keys, self.values = self._pool.keys, self._pool.values
        self.rows, self.max_length, self.block_size = rows, max_length, block_size
        self.n_blocks = n_blocks
        self.tables = np.zeros((rows, per_row), np.int64)   # each row's blocks, in order
        self.held = np.zeros(rows, np.int64)                # blocks listed per row
        self.lengths = np.zeros(rows, np.int64)             # positions held, per row
        self.size = 0                                       # rows in use: 0 .. size-1
        self._free = list(range(n_blocks))                  # a heap: the lowest first

    @property
    def length(self) -> int:
        """The longest row's length."""
        return int(self.lengths[:self.size].max()) if self.size else 0

    @property
    def blocks_in_use(self) -> int:
        """Blocks that rows hold now: the cache's memory in use is this times a block's."""
        return self.n_blocks - len(self._free)

    # -- blocks
    def _reserve(self, row: int, positions: int) -> None:
        """Give ``row`` blocks for its first ``positions`` positions."""
        need = -(-positions // self.block_size)
        if need > self.tables.shape[1]:
            raise ShapeError(f"PagedKVCache: {positions} positions do not fit in rows of "
                             f"{self.max_length}")
        if need - self.held[row] > len(self._free):
            raise ShapeError(f"PagedKVCache: no free block for {positions} positions (all "
                             f"{self.n_blocks} blocks of {self.block_size} are held)")
        while self.held[row] < need:
            self.tables[row, self.held[row]] = heapq.heappop(self._free)
            self.held[row] += 1

    def _release(self, row: int) -> None:
        for block in self.tables[row, :self.held[row]]:
            heapq.heappush(self._free, int(block))
        self.held[row] = 0

    def _spans(self, row: int, length: int):
        """``(block, start, n)`` for each block of ``row``'s first ``length`` positions: the
        block id, its first position in the sequence and how many of its positions are used."""
        bs = self.block_size
        return [(int(self.tables[row, m]), m * bs, min(bs, length - m * bs))
                for m in range(-(-length // bs))]

    # -- sequences joining and leaving
    def add(self, cache, length: int) -> int:
        """Take a sequence whose first ``length`` positions are in ``cache`` (a one-sequence
        :class:`~gradient.generation.KVCache`, prefilled) into the next free row; the row."""
        if self.size == self.rows:
            raise ShapeError(f"PagedKVCache: all {self.rows} rows are in use")
        if length >= self.max_length:
            raise ShapeError(f"PagedKVCache: {length} positions leave no room in rows of "
                             f"{self.max_length}")
        row = self.size
        self._reserve(row, length)
        self._copy(cache, row, length, into_blocks=True)
        self.lengths[row] = length
        self.size += 1
        return row

    def remove(self, row: int) -> int | None:
        """Free ``row`` and its blocks: the last row in use moves into it (its block-table
        row does). Returns the row that moved, or None when ``row`` was the last."""
        last = self.size - 1
        self._release(row)
        self.size -= 1
        if row == last:
            return None
        self.tables[row], self.held[row] = self.tables[last], self.held[last]
        self.lengths[row], self.held[last] = self.lengths[last], 0
        return last

    def clear(self) -> None:
        """Every row leaves, and every block is free."""
        while self.size:
            self.remove(self.size - 1)

    def copy_to(self, row: int, cache, length: int) -> None:
        """Copy the first ``length`` positions of ``row`` into the one-sequence ``cache``."""
        self._copy(cache, row, length, into_blocks=False)

    def _copy(self, cache, row: int, length: int, into_blocks: bool) -> None:
        """Positions ``0 .. length-1`` between the one-sequence ``cache`` and ``row``'s blocks:
        on the CPU a block of every layer at a time, elsewhere layer by layer."""
        pool, one = self._pool.stacked(), cache.stacked()
        for block, start, n in self._spans(row, length):
            if pool is not None and one is not None:
                for p, c in zip(pool, one):
                    if into_blocks:
                        p[:, block, :, :n] = c[:, 0, :, start:start + n]
                    else:
                        c[:, 0, :, start:start + n] = p[:, block, :, :n]
                continue
            with no_grad():
                for p, c in zip(self.keys + self.values, cache.keys + cache.values):
                    in_block, in_sequence = p[block].narrow(1, 0, n), c[0].narrow(1, start, n)
                    if into_blocks:
                        in_block.copy_(in_sequence)
                    else:
                        in_sequence.copy_(in_block)

    # -- a decode step
    def step_inputs(self, tokens, device=None):
        """``(input_ids, attention_mask, position_ids)`` of a step feeding each row in use its
        next token (``tokens``, one per row): ids ``(size, 1)``, a
        :class:`~gradient.ops.causal_bias.PagedRows` (each row's blocks and its length with
        the new position) as the mask, the positions ``(size, 1)``. Rows that cross into a
        new block take it here."""
        lengths = self.lengths[:self.size]
        for row in range(self.size):
            self._reserve(row, int(lengths[row]) + 1)
        rows = PagedRows(lengths + 1, self.tables[:self.size], self.block_size)
        ids = np.asarray(tokens, np.int64).reshape(self.size, 1)
        return (tensor(ids, dtype=int64, device=device), rows,
                tensor(lengths[:, None].copy(), dtype=int64, device=device))

    def update(self, layer: int, key, value):
        """The model's write of a step: each row's one new key and value ``(size, heads, 1,
        head_dim)`` at that row's own position; returns the layer's pools of keys and values,
        which attention reads through the step's :class:`PagedRows`. A captured batched step
        (:mod:`gradient.capture`) replays the write with the rows and lengths of its own
        step."""
        if capture_state.recorder is not None:
            k, v = capture_state.run(PagedKVCache.update_arrays, self, layer, key._data,
                                     value._data)
            return Tensor._make(k, False, key._backend), Tensor._make(v, False, value._backend)
        self.update_arrays(layer, key._data, value._data)
        return self.keys[layer], self.values[layer]

    def update_arrays(self, layer: int, key, value):
        """:meth:`update` on raw backend arrays: returns the raw pools ``(keys, values)``."""
        if key.shape[0] != self.size or key.shape[2] != 1:
            raise ShapeError(f"PagedKVCache: a step gives one position for each of the "
                             f"{self.size} rows in use, got keys of shape {tuple(key.shape)}")
        lengths = self.lengths[:self.size]
        blocks = self.tables[np.arange(self.size), lengths // self.block_size]
        offsets = lengths % self.block_size
        for pool, new in ((self.keys[layer], key), (self.values[layer], value)):
            b = pool._backend
            if b.name == "cpu":       # every row's position in one write
                b.setitem(pool._data, (blocks, slice(None), offsets), new[:, :, 0])
            else:
                for i in range(self.size):
                    b.setitem(pool._data, (int(blocks[i]), slice(None),
                                           slice(int(offsets[i]), int(offsets[i]) + 1)),
                              b.getitem(new, (i,)))
            pool._version.bump("PagedKVCache.update")
        return self.keys[layer]._data, self.values[layer]._data

    def advance(self, n: int) -> None:
        """The model calls this once per forward: every row in use holds ``n`` more."""
        self.lengths[:self.size] += n

    def __repr__(self) -> str:
        return (f"PagedKVCache(rows={self.rows}, block_size={self.block_size}, "
                f"blocks_in_use={self.blocks_in_use}/{self.n_blocks}, "
                f"lengths={self.lengths[:self.size].tolist()})")
