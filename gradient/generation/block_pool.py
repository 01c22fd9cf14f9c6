"""The blocks of a paged KV cache: which are free, how many rows hold each, and which hold a
known prefix of token ids, so that sequences sharing a prefix share its blocks.

A full block is keyed by its token ids and the block before it in its sequence (a hash
chain: ``(parent, ids)``, the parent's own key standing for every id before), so a key names
one prefix exactly and two sequences that begin with the same ids find the same blocks. A
block keeps its key while rows hold it and after they leave ("idle"): a later sequence with
that prefix, a system prompt or a conversation's next turn, takes it up again instead of its
keys and values being computed or copied. Idle blocks are reused for new ones when no block
is free, least recently used first; a block losing its key takes its descendants' keys with
it, since their chains now start nowhere. With ``max_idle``, at most that many blocks stay
idle (the least recently used beyond it are forgotten and freed): free blocks are handed out
lowest first, so the blocks ever written, and the pages of memory behind them, stay within the
blocks held at once plus ``max_idle``, rather than growing with every distinct prompt until
the whole pool has been written.

Example::

    >>> pool = BlockPool(n_blocks=16, block_size=64)
    >>> a = pool.take()                      # a free block, held once
    >>> pool.register(-1, a, ids[:64])       # it holds the first 64 ids of a sequence
    >>> pool.release(a)                      # no row holds it: idle, still keyed
    >>> pool.lookup(ids, len(ids))           # [a]: another sequence with that prefix finds it
"""

from __future__ import annotations

import collections
import heapq

import numpy as np

from ..errors import ShapeError

__all__ = ["BlockPool"]


class BlockPool:
    """``n_blocks`` blocks of ``block_size`` positions: free ones (handed out lowest first, so
    that the pages in use stay at the start of the pool), held ones with a count of the rows
    holding each, and idle ones, which no row holds but which keep their ids' key: at most
    ``max_idle`` of them (None: any number)."""

    def __init__(self, n_blocks: int, block_size: int, max_idle: int | None = None):
        self.n_blocks, self.block_size = n_blocks, block_size
        self.max_idle = n_blocks if max_idle is None else max(0, int(max_idle))
        self.refs = np.zeros(n_blocks, np.int64)           # rows holding each block
        self._free = list(range(n_blocks))                 # a heap: the lowest first
        self._block_of: dict = {}                          # (parent, ids bytes) -> block
        self._key_of: dict = {}                            # block -> its key
        self._children = collections.defaultdict(set)     # block -> keyed blocks after it
        self._idle: collections.OrderedDict = collections.OrderedDict()   # oldest first

    @property
    def available(self) -> int:
        """Blocks :meth:`take` can give: the free ones and the idle ones."""
        return len(self._free) + len(self._idle)

    @property
    def held(self) -> int:
        """Blocks some row holds."""
        return self.n_blocks - self.available

    @property
    def idle(self) -> int:
        """Blocks no row holds that keep a prefix for a later sequence."""
        return len(self._idle)

    def take(self) -> int:
        """A block for new positions, held once: the lowest free one, else the least recently
        used idle one (its key and its descendants' keys are forgotten)."""
        if self._free:
            block = heapq.heappop(self._free)
        elif self._idle:
            block, _ = self._idle.popitem(last=False)
            self._forget(block)
        else:
            raise ShapeError(f"PagedKVCache: no free block (all {self.n_blocks} blocks of "
                             f"{self.block_size} positions are held)")
        self.refs[block] = 1
        return block

    def share(self, block: int) -> None:
        """One more row holds the keyed ``block`` (found by :meth:`lookup`)."""
        if self.refs[block] == 0:
            del self._idle[block]
        self.refs[block] += 1

    def release(self, block: int) -> None:
        """One row fewer holds ``block``; with none left it is idle if keyed, else free."""
        self.refs[block] -= 1
        if self.refs[block] == 0:
            if block in self._key_of:
                self._idle[block] = None          # the most recently used
                while len(self._idle) > self.max_idle:
                    self._forget(next(iter(self._idle)))   # the least recently used: freed
            else:
                heapq.heappush(self._free, block)

    def lookup(self, ids, limit: int) -> list:
        """The keyed blocks holding the longest prefix of ``ids`` in whole blocks, at most
        ``limit`` positions, in order."""
        ids = np.ascontiguousarray(ids, np.int64)
        blocks, parent, bs = [], -1, self.block_size
        for m in range(min(limit, len(ids)) // bs):
            block = self._block_of.get((parent, ids[m * bs:(m + 1) * bs].tobytes()))
            if block is None:
                break
            blocks.append(block)
            parent = block
        return blocks

    def register(self, parent: int, block: int, ids) -> None:
        """``block`` holds the full block of ``ids`` that follows ``parent`` (-1 for a first
        block). Nothing changes when that prefix already has a block, or ``block`` a key."""
        key = (parent, np.ascontiguousarray(ids, np.int64).tobytes())
        if key in self._block_of or block in self._key_of:
            return
        if parent >= 0 and parent not in self._key_of:
            return                                # a chain whose start was forgotten
        self._block_of[key], self._key_of[block] = block, key
        if parent >= 0:
            self._children[parent].add(block)

    def clear(self) -> None:
        """Forget every key: idle blocks become free (held ones stay held, keyless)."""
        for block in list(self._key_of):
            if block in self._key_of:
                self._forget(block)

    def _forget(self, block: int) -> None:
        """Drop ``block``'s key and its descendants'; idle ones among those become free."""
        key = self._key_of.pop(block)
        del self._block_of[key]
        siblings = self._children.get(key[0])
        if siblings is not None:
            siblings.discard(block)
        for child in self._children.pop(block, set()):
            self._forget(child)
        if block in self._idle:
            del self._idle[block]
            heapq.heappush(self._free, block)
