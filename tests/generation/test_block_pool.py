"""BlockPool: blocks handed out lowest first, full blocks keyed by their ids and the block
before them, kept idle after their rows leave and reused least recently used first."""

import numpy as np
import pytest

from gradient.errors import ShapeError
from gradient.generation.block_pool import BlockPool

IDS = np.arange(1000, 1000 + 4 * 8)          # four blocks of 8 ids


def _chain(pool, ids, n):
    """n blocks taken and keyed as the first n blocks of ``ids``."""
    blocks, parent = [], -1
    for m in range(n):
        block = pool.take()
        pool.register(parent, block, ids[m * 8:(m + 1) * 8])
        blocks.append(block)
        parent = block
    return blocks


def test_a_keyed_chain_is_found_by_its_ids_and_by_no_others():
    pool = BlockPool(6, 8)
    assert _chain(pool, IDS, 3) == [0, 1, 2]                       # the lowest first
    assert pool.lookup(IDS, 32) == [0, 1, 2]
    assert pool.lookup(IDS, 23) == [0, 1]                          # whole blocks within limit
    other = IDS.copy()
    other[9] += 1                                                  # differs in block 1
    assert pool.lookup(other, 32) == [0]
    shifted = np.concatenate([IDS[8:16], IDS[:8]])                 # block 1's ids first
    assert pool.lookup(shifted, 16) == []                          # a key is its whole prefix


def test_released_keyed_blocks_stay_idle_and_can_be_shared_again():
    pool = BlockPool(4, 8)
    a, b = _chain(pool, IDS, 2)
    unkeyed = pool.take()
    for block in (b, a, unkeyed):
        pool.release(block)
    assert pool.held == 0 and pool.idle == 2 and pool.available == 4
    assert pool.lookup(IDS, 32) == [a, b]
    pool.share(a)
    pool.share(a)                                                  # two rows hold it
    assert pool.held == 1 and pool.idle == 1 and pool.refs[a] == 2
    pool.release(a)
    assert pool.held == 1
    pool.release(a)
    assert pool.idle == 2


def test_idle_blocks_are_reused_least_recently_used_first_and_take_their_chain_along():
    pool = BlockPool(3, 8)
    a, b = _chain(pool, IDS, 2)
    other = _chain(pool, IDS + 100, 1)[0]
    pool.release(b)                       # a sequence's tail first, as PagedKVCache does
    pool.release(a)
    pool.release(other)                   # idle, oldest first: b, a, other
    assert pool.take() == b               # no free block: the least recently used idle one
    assert pool.lookup(IDS, 32) == [a] and pool.lookup(IDS + 100, 8) == [other]
    pool.release(b)                       # b came back without a key: free again
    assert pool.idle == 2 and pool.available == 3
    assert pool.take() == b
    assert pool.take() == a               # a's key goes...
    assert pool.lookup(IDS, 32) == []
    pool.register(a, b, IDS[8:16])        # ...and a chain through a keyless block is not kept
    pool.release(b)
    assert pool.lookup(IDS, 32) == [] and pool.idle == 1


def test_forgetting_a_block_forgets_its_descendants_and_frees_the_idle_ones():
    pool = BlockPool(4, 8)
    a, b, c = _chain(pool, IDS, 3)
    pool.release(c)
    pool.release(b)                       # a is still held: b and c idle
    pool.clear()                          # every key forgotten
    assert pool.idle == 0 and pool.held == 1 and pool.available == 3
    assert pool.lookup(IDS, 32) == []
    pool.release(a)
    assert pool.available == 4
    with pytest.raises(ShapeError, match="no free block"):
        [pool.take() for _ in range(5)]


def test_a_second_block_for_the_same_prefix_gets_no_key():
    pool = BlockPool(4, 8)
    first = _chain(pool, IDS, 1)[0]
    second = pool.take()
    pool.register(-1, second, IDS[:8])    # two sequences prefilled apart: the first keeps it
    assert pool.lookup(IDS, 8) == [first]
    pool.release(second)
    assert pool.idle == 0                 # the keyless one is simply free


def test_idle_blocks_beyond_max_idle_are_forgotten_least_recently_used_first():
    pool = BlockPool(8, 8, max_idle=2)
    chains = [_chain(pool, IDS + 100 * k, 1)[0] for k in range(4)]
    for block in chains:
        pool.release(block)
    assert pool.idle == 2 and pool.available == 8
    assert [pool.lookup(IDS + 100 * k, 8) for k in range(4)] == [[], [], [chains[2]],
                                                                 [chains[3]]]
    assert pool.take() == chains[0]                       # freed, and the lowest again


def test_with_max_idle_the_blocks_written_stay_few_whatever_the_prompts():
    # a server's stream of distinct prompts: without a bound on the idle blocks every one
    # of the pool's blocks is written sooner or later (and its memory kept)
    for max_idle, highest in ((4, 2 + 4), (None, 64)):
        pool = BlockPool(64, 8, max_idle=max_idle)
        written = set()
        for k in range(100):
            blocks = _chain(pool, IDS + 1000 * k, 2)
            written.update(blocks)
            for block in reversed(blocks):
                pool.release(block)
        assert max(written) + 1 == highest
