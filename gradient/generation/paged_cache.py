"""A paged KV cache: the keys and values of sequences decoded together, in fixed-size blocks
drawn from one pool, so that memory follows the positions the sequences actually hold.

Every layer's values live in one pool of ``n_blocks`` blocks of ``block_size`` positions,
``(n_blocks, n_kv_heads, block_size, head_dim)``, and its keys in one of the same blocks, each
block's keys transposed, ``(n_blocks, n_kv_heads, head_dim, block_size)``: attention scores
a block's keys as they lie (vectors across positions), rather than transposing them again
at every step. A sequence holds the blocks its row of the block table lists, in order:
position j of row b is in block ``tables[b, j // block_size]``, at ``j % block_size``. A row
takes a block from the free ones when it crosses into it, and gives its blocks back when it
leaves; the lowest free blocks are handed out first, so the pool's pages in use stay at its
start and the operating system maps only those. Rows in use are packed at the front; a row
that leaves is replaced by the last one, which moves by its block-table row, not by its
keys and values.

A decode step feeds each row its next token: :meth:`step_inputs` gives the ids, the
positions, and as the attention mask a :class:`~gradient.ops.causal_bias.PagedRows` (each row's
length and blocks) that the models pass to attention, which reads every row through its
blocks (``paged_decode_attention``: each row the bits of that sequence decoded alone). The
interface is :class:`~gradient.generation.BatchKVCache`'s, so a server may use either.

With ``pad_steps=True`` a step has a power of two of rows (at most ``rows``): the rows in use,
then padding rows that decode a token at position 0 of a block of their own and are
forgotten. A captured step is made, and compiled, for each number of rows it sees; padded,
a server's batch of 5, 6 or 7 sequences replays the step of 8 instead of waiting for three
more, and every row's logits are the bits they have without padding (rows never mix).

Example::

    >>> paged = PagedKVCache(model, rows=8, max_length=2048)
    >>> row = paged.add(prompt_cache, len(prompt))                 # a prefilled sequence joins
    >>> ids, rows, positions = paged.step_inputs(last_tokens)
    >>> logits = model(ids, attention_mask=rows, position_ids=positions, cache=paged).logits
    >>> paged.blocks_in_use                                        # follows the tokens held
    >>> moved = paged.remove(row)                                  # its blocks are free again
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import capture_state, no_grad
from ..dtypes import int64
from ..errors import ArgumentValueError, ShapeError
from ..ops.causal_bias import PagedRows
from ..ops.creation import tensor
from ..tensor import Tensor
from .block_pool import BlockPool

__all__ = ["PagedKVCache", "BLOCK_SIZE"]

#: Positions per block: a multiple of the attention kernel's tile of keys (64).
BLOCK_SIZE = 64


class PagedKVCache:
    """Keys and values of up to ``rows`` sequences of ``model``, each at most ``max_length``
    positions, in blocks of ``block_size`` positions from a pool of ``n_blocks`` (default:
    enough for every row at ``max_length``; fewer bounds the memory, and a row that finds no
    free block is refused with a ShapeError). Blocks that no row holds any more keep their
    prefix for later sequences, up to ``max_idle`` of them (default: one row's
    ``max_length``), the least recently used forgotten first (see
    :class:`~gradient.generation.block_pool.BlockPool`): the memory written stays within the
    rows' blocks and those, instead of growing to the whole pool."""

    def __init__(self, model, rows: int, max_length: int, block_size: int = BLOCK_SIZE,
                 n_blocks: int | None = None, pad_steps: bool = False,
                 max_idle: int | None = None):
        if block_size < 1 or block_size % 64:
            raise ArgumentValueError(
                f"PagedKVCache: block_size must be a positive multiple of 64, got "
                f"{block_size}")
        per_row = -(-max_length // block_size)
        n_blocks = rows * per_row if n_blocks is None else int(n_blocks)
        # the model's own cache of n_blocks "sequences" of block_size positions is the pool:
        # its dtype, device and layout (every layer in one buffer on the CPU); one block more,
        # never handed out, takes the padding rows' writes
        self._pool = model.new_cache(n_blocks + 1, block_size)
        self.pad_steps, self._scratch = pad_steps, n_blocks
        self.step_rows = 0                                  # rows of the last step, padding too
        # each block's keys transposed, (n_blocks + 1, kv_heads, head_dim, block_size) in the
        # same memory: attention scores them where they lie (see paged_decode_attention)
        self.keys = [k.view(k.shape[0], k.shape[1], k.shape[3], k.shape[2])
                     for k in self._pool.keys]
        self.values = self._pool.values
        self.rows, self.max_length, self.block_size = rows, max_length, block_size
        self.n_blocks = n_blocks
        self.tables = np.zeros((rows, per_row), np.int64)   # each row's blocks, in order
        self.held = np.zeros(rows, np.int64)                # blocks listed per row
        self.lengths = np.zeros(rows, np.int64)             # positions held, per row
        self.size = 0                                       # rows in use: 0 .. size-1
        self.pool = BlockPool(n_blocks, block_size, per_row if max_idle is None else max_idle)
        # each row's token ids where it was added with them, and how many of its leading
        # blocks have been offered to the pool's prefix keys
        self._ids = np.zeros((rows, per_row * block_size), np.int64)
        self._with_ids = np.zeros(rows, bool)
        self._keyed = np.zeros(rows, np.int64)
        self.blocks_shared = 0       # blocks rows took up instead of copies, since made

    @property
    def length(self) -> int:
        """The longest row's length."""
        return int(self.lengths[:self.size].max()) if self.size else 0

    @property
    def blocks_in_use(self) -> int:
        """Blocks that rows hold now: the cache's memory in use is this times a block's."""
        return self.pool.held

    @property
    def blocks_idle(self) -> int:
        """Blocks no row holds that keep a prefix for later sequences (reused for new
        positions when no block is free)."""
        return self.pool.idle

    # -- blocks
    def _reserve(self, row: int, positions: int) -> None:
        """Give ``row`` blocks for its first ``positions`` positions."""
        need = -(-positions // self.block_size)
        if need > self.tables.shape[1]:
            raise ShapeError(f"PagedKVCache: {positions} positions do not fit in rows of "
                             f"{self.max_length}")
        if need - self.held[row] > self.pool.available:
            raise ShapeError(f"PagedKVCache: no free block for {positions} positions (all "
                             f"{self.n_blocks} blocks of {self.block_size} are held)")
        while self.held[row] < need:
            self.tables[row, self.held[row]] = self.pool.take()
            self.held[row] += 1

    def _release(self, row: int) -> None:
        # the last blocks first: a sequence's tail is then reused before its head, which
        # other sequences are likelier to share
        for block in self.tables[row, :self.held[row]][::-1]:
            self.pool.release(int(block))
        self.held[row] = 0

    def _key_full_blocks(self, row: int) -> None:
        """Offer the pool the keys of ``row``'s blocks filled since the last call (rows added
        with their ids)."""
        if not self._with_ids[row]:
            return
        bs, full = self.block_size, int(self.lengths[row]) // self.block_size
        for m in range(int(self._keyed[row]), full):
            parent = int(self.tables[row, m - 1]) if m else -1
            self.pool.register(parent, int(self.tables[row, m]),
                               self._ids[row, m * bs:(m + 1) * bs])
        self._keyed[row] = max(int(self._keyed[row]), full)

    def _spans(self, row: int, length: int):
        """``(block, start, n)`` for each block of ``row``'s first ``length`` positions: the
        block id, its first position in the sequence and how many of its positions are used."""
        bs = self.block_size
        return [(int(self.tables[row, m]), m * bs, min(bs, length - m * bs))
                for m in range(-(-length // bs))]

    # -- prefixes kept in blocks
    def prefix_length(self, ids, limit: int | None = None) -> int:
        """How many leading positions of ``ids`` (at most ``limit``) the pool's blocks hold,
        held or idle: whole blocks of a sequence added with the same ids."""
        limit = len(ids) if limit is None else limit
        return len(self.pool.lookup(ids, limit)) * self.block_size

    def copy_prefix_to(self, ids, cache, start: int = 0, limit: int | None = None) -> int:
        """Copy the keys and values of the longest prefix of ``ids`` the blocks hold (at most
        ``limit`` positions) into the one-sequence ``cache``, from the block holding position
        ``start`` on (the cache holds the ones before); returns the cache's length now, at
        least ``start``.

        Example: ``first = paged.copy_prefix_to(prompt, cache, first, len(prompt) - 1)``"""
        limit = len(ids) if limit is None else limit
        blocks, bs = self.pool.lookup(ids, limit), self.block_size
        if len(blocks) * bs <= start:
            return start
        self._copy(cache, [(int(b), m * bs, bs) for m, b in enumerate(blocks)
                           if (m + 1) * bs > start], into_blocks=False)
        cache.length = len(blocks) * bs
        return cache.length

    # -- sequences joining and leaving
    def add(self, cache, length: int, ids=None) -> int:
        """Take a sequence whose first ``length`` positions are in ``cache`` (a one-sequence
        :class:`~gradient.generation.KVCache`, prefilled) into the next free row; the row.

        With the sequence's token ``ids`` (at least ``length``), the row holds the blocks
        that already hold a prefix of them instead of copies (see :meth:`prefix_length`),
        and its own full blocks become such prefixes for later sequences."""
        if self.size == self.rows:
            raise ShapeError(f"PagedKVCache: all {self.rows} rows are in use")
        if length >= self.max_length:
            raise ShapeError(f"PagedKVCache: {length} positions leave no room in rows of "
                             f"{self.max_length}")
        if ids is not None and len(ids) < length:
            raise ShapeError(f"PagedKVCache.add: {len(ids)} ids for {length} positions")
        row = self.size
        shared = self.pool.lookup(ids, length) if ids is not None else []
        for m, block in enumerate(shared):
            self.pool.share(block)
            self.tables[row, m] = block
        self.blocks_shared += len(shared)
        self.held[row] = len(shared)
        try:
            self._reserve(row, length)
        except ShapeError:
            self._release(row)
            raise
        start = len(shared) * self.block_size
        self._copy(cache, [s for s in self._spans(row, length) if s[1] >= start],
                   into_blocks=True)
        self.lengths[row] = length
        self._with_ids[row], self._keyed[row] = ids is not None, len(shared)
        if ids is not None:
            self._ids[row, :length] = np.asarray(ids[:length], np.int64)
            self._key_full_blocks(row)
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
        self._ids[row], self._with_ids[row] = self._ids[last], self._with_ids[last]
        self._keyed[row] = self._keyed[last]
        return last

    def clear(self) -> None:
        """Every row leaves, and every block is free (no prefix is kept)."""
        while self.size:
            self.remove(self.size - 1)
        self.pool.clear()

    def copy_to(self, row: int, cache, length: int) -> None:
        """Copy the first ``length`` positions of ``row`` into the one-sequence ``cache``."""
        self._copy(cache, self._spans(row, length), into_blocks=False)

    def _copy(self, cache, spans, into_blocks: bool) -> None:
        """Positions between the one-sequence ``cache`` and blocks, ``(block, start, n)`` a
        block's first ``n`` positions and the sequence's from ``start`` (keys transposed on
        the way: the blocks hold them so): on the CPU a block of every layer at a time,
        elsewhere layer by layer."""
        pool, one = self.stacked(), cache.stacked()
        for block, start, n in spans:
            if pool is not None and one is not None:
                (block_keys, block_values), (keys, values) = pool, one
                in_sequence = keys[:, 0, :, start:start + n], values[:, 0, :, start:start + n]
                if into_blocks:
                    block_keys[:, block, :, :, :n] = in_sequence[0].swapaxes(-1, -2)
                    block_values[:, block, :, :n] = in_sequence[1]
                else:
                    in_sequence[0][...] = block_keys[:, block, :, :, :n].swapaxes(-1, -2)
                    in_sequence[1][...] = block_values[:, block, :, :n]
                continue
            with no_grad():
                for layer in range(len(self.keys)):
                    for in_block, in_sequence in (
                            (self.keys[layer][block].narrow(2, 0, n),
                             cache.keys[layer][0].narrow(1, start, n).transpose(1, 2)),
                            (self.values[layer][block].narrow(1, 0, n),
                             cache.values[layer][0].narrow(1, start, n))):
                        if into_blocks:
                            in_block.copy_(in_sequence)
                        else:
                            in_sequence.copy_(in_block)

    # -- a decode step
    def padded_rows(self, size: int) -> int:
        """The rows of a step of ``size`` rows in use: ``size``, or with ``pad_steps`` the
        next power of two, at most ``rows``."""
        if not self.pad_steps or size == 0:
            return size
        return min(self.rows, 1 << (size - 1).bit_length())

    def step_inputs(self, tokens, device=None):
        """``(input_ids, attention_mask, position_ids)`` of a step feeding each row in use its
        next token (``tokens``, one per row): ids ``(step_rows, 1)``, a
        :class:`~gradient.ops.causal_bias.PagedRows` (each row's blocks and its length with
        the new position) as the mask, the positions ``(step_rows, 1)``, where
        ``step_rows`` is :meth:`padded_rows` of the rows in use (the logits of the padding
        rows, after those of the rows in use, mean nothing). Rows that cross into a new
        block take it here."""
        size, step = self.size, self.padded_rows(self.size)
        for row in range(size, step):     # padding: position 0 of the block no row holds
            self.tables[row, 0], self.lengths[row] = self._scratch, 0
        self.step_rows = step
        lengths = self.lengths[:step]
        ids = np.zeros((step, 1), np.int64)
        ids[:size, 0] = np.asarray(tokens, np.int64).reshape(size)
        for row in range(size):
            self._key_full_blocks(row)            # the block the last step filled
            self._reserve(row, int(lengths[row]) + 1)
            self._ids[row, lengths[row]] = ids[row, 0]
        rows = PagedRows(lengths + 1, self.tables[:step], self.block_size)
        return (tensor(ids, dtype=int64, device=device), rows,
                tensor(lengths[:, None].copy(), dtype=int64, device=device))

    def update(self, layer: int, key, value):
        """The model's write of a step: each row's one new key and value ``(size, heads, 1,
        head_dim)`` at that row's own position; returns the layer's pools of keys and values,
        which attention reads through the step's :class:`PagedRows`. A captured batched step
        (:mod:`gradient.capture`) replays the write with the rows and lengths of its own
        step."""
        if capture_state.current.recorder is not None:
            k, v = capture_state.run(PagedKVCache.update_arrays, self, layer, key._data,
                                     value._data)
            return Tensor._make(k, False, key._backend), Tensor._make(v, False, value._backend)
        self.update_arrays(layer, key._data, value._data)
        return self.keys[layer], self.values[layer]

    def update_arrays(self, layer: int, key, value):
        """:meth:`update` on raw backend arrays: returns the raw pools ``(keys, values)``."""
        rows = self.step_rows
        if key.shape[0] != rows or key.shape[2] != 1:
            raise ShapeError(f"PagedKVCache: a step gives one position for each of the "
                             f"{rows} rows of the step, got keys of shape {tuple(key.shape)}")
        lengths = self.lengths[:rows]
        blocks = self.tables[np.arange(rows), lengths // self.block_size]
        offsets = lengths % self.block_size
        # a key is a column of its block (keys transposed), a value a row
        for pool, new, keys in ((self.keys[layer], key, True), (self.values[layer], value, False)):
            b = pool._backend
            at = (slice(None),) * (2 if keys else 1)
            if b.name == "cpu":       # every row's position in one write
                b.setitem(pool._data, (blocks, *at, offsets), new[:, :, 0])
            else:
                for i in range(rows):
                    row = b.getitem(new, (i,))                      # (heads, 1, head_dim)
                    b.setitem(pool._data, (int(blocks[i]), *at,
                                           slice(int(offsets[i]), int(offsets[i]) + 1)),
                              b.permute(row, (0, 2, 1)) if keys else row)
            pool._version.bump("PagedKVCache.update")
        return self.keys[layer]._data, self.values[layer]._data

    def advance(self, n: int) -> None:
        """The model calls this once per forward: every row in use holds ``n`` more (padding
        rows nothing)."""
        self.lengths[:self.size] += n

    def stacked(self):
        """``(keys, values)``: NumPy arrays holding every layer's pools (``keys[l]`` is layer
        l's), keys (layers, n_blocks, n_kv_heads, head_dim, block_size) and values (layers,
        n_blocks, n_kv_heads, block_size, head_dim), for float32, float16 and bfloat16 pools
        on the CPU; None otherwise (see :meth:`KVCache.stacked`)."""
        stacked = self._pool.stacked()
        if stacked is None:
            return None
        keys, values = stacked
        return keys.reshape(keys.shape[:3] + keys.shape[:2:-1]), values

    def __repr__(self) -> str:
        return (f"PagedKVCache(rows={self.rows}, block_size={self.block_size}, "
                f"blocks_in_use={self.blocks_in_use}/{self.n_blocks}, "
                f"blocks_idle={self.blocks_idle}, "
                f"lengths={self.lengths[:self.size].tolist()})")


# the compiled form of the write in a captured batch step compiled into a loop
# (gradient.kernels.lowering): the pools, the rows' tables and lengths are read before each step
PagedKVCache.update_arrays.lower = lambda cache, layer, key, value: kernels.lower(
    "paged_kv_write", cache.keys[layer]._backend, cache, layer, key, value)
