"""PagedKVCache: sequences whose keys and values lie in blocks of a pool decode in one forward
with each sequence's own logits (the batch cache's bits), the blocks follow the positions the
rows hold, and attention reads every row through its blocks."""

import numpy as np
import pytest

import gradient
import gradient.nn.functional as F
from gradient.autograd import no_grad
from gradient.errors import ShapeError
from gradient.generation import BatchKVCache, PagedKVCache
from gradient.ops.causal_bias import PagedRows

from ..hub.conftest import llama_dir  # noqa: F401  (the fixture)
from .test_batch_cache import _alone, _batch_run, _prefilled, _step


@pytest.fixture(scope="module")
def llama(llama_dir):  # noqa: F811
    model, _ = gradient.hub.load(str(llama_dir))
    return model.eval()


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_paged_steps_give_the_batch_caches_bits_captured_or_not(family, gpt2_pair, llama):
    """Rows that cross from one block into the next while they decode (60 + 8 > 64, 125 + 8 >
    128), one joining and one leaving: the paged cache's steps, replayed or through the module
    graph, give the batch cache's logits bit for bit."""
    model = gpt2_pair[1].eval() if family == "gpt2" else llama
    lengths = (60, 125, 9)
    batch, _ = _batch_run(model, False, BatchKVCache, lengths, 192)
    for fused in (True, False):
        paged, counts = _batch_run(model, fused, PagedKVCache, lengths, 192)
        for a, b in zip(paged, batch):
            np.testing.assert_array_equal(a, b)
        assert (counts[("captured_step", "replay")] > 0) == fused


def test_paged_steps_are_captured_once_the_attention_kernel_is_compiled(llama, monkeypatch):
    """Under `gradient serve` on a machine whose numba cache is empty, the paged attention
    kernel is compiled by a child process while the first batch steps gather each row from
    its blocks instead (calls that differ from one length to the next). Those steps run
    through the module graph; once the kernel is there, the step is captured and replayed,
    not refused for good, with the module graph's bits throughout."""
    from gradient.backends import cpu_attention, cpu_compile
    from gradient.capture import background
    real = cpu_attention.compiled_already
    compiling = {"left": True}

    def still_compiling(dispatcher, args):     # what compiled_already answers meanwhile
        if compiling["left"] and dispatcher in (cpu_attention._paged_items,
                                                cpu_attention._paged_parallel):
            cpu_compile._declined += 1
            return False
        return real(dispatcher, args)

    monkeypatch.setattr(cpu_attention, "compiled_already", still_compiling)
    monkeypatch.setattr(background, "RECHECK_SECONDS", 0.0)
    stack = llama.model
    stack.__dict__.pop("_captured", None)
    rng = np.random.default_rng(7)
    prompts = [rng.integers(3, 250, n).tolist() for n in (11, 30)]

    def run(fused):
        stack.fused_decode = fused
        paged, last, out, status = PagedKVCache(llama, rows=2, max_length=64), [], [], []
        for prompt in prompts:
            cache, logits = _prefilled(llama, prompt)
            paged.add(cache, len(prompt))
            last.append(int(logits.argmax()))
        with gradient.kernels.trace() as t:
            for step in range(8):
                compiling["left"] = step < 3
                logits = _step(llama, paged, last)
                out.append(logits)
                last = [int(row.argmax()) for row in logits]
                status.append(stack.__dict__["_captured"].status() if fused else None)
        return out, t.counts, status

    try:
        graph, _, _ = run(False)
        got, counts, status = run(True)
    finally:
        stack.fused_decode = True
        stack.__dict__.pop("_captured", None)
    assert any("still being compiled" in s for s in status[0]), status[0]
    assert counts[("captured_step", "replay")] >= 3, counts        # steps 5, 6 and 7 at least
    assert status[-1] == ["replaying"]
    for a, b in zip(got, graph):
        np.testing.assert_array_equal(a, b)


def test_paged_steps_compiled_into_one_loop_give_the_batch_caches_bits(llama, monkeypatch):
    """As `gradient serve` runs them (compiled by a child there, here at once): every call of
    a paged batch step, the write of each row's position and attention through the blocks
    included, in one compiled loop over the layers, with the batch cache's bits. The pools
    are float16, whose writes round and whose reads widen (float32 pools take the same
    kernels with both as no-ops; compiling a loop for each costs 20 s)."""
    from gradient.capture import Plan
    from gradient.models import decode_step
    lengths = (60, 125, 9)
    monkeypatch.setattr(llama, "kv_cache_dtype", gradient.float16)
    batch, _ = _batch_run(llama, False, BatchKVCache, lengths, 192)
    monkeypatch.setattr(decode_step, "_loop_worth_compiling", lambda *inputs: True)
    stack = llama.model
    stack.__dict__.pop("_captured", None)
    try:
        paged, counts = _batch_run(llama, True, PagedKVCache, lengths, 192)
        plans = [e for e in stack.__dict__["_captured"]._entries.values() if type(e) is Plan]
    finally:
        stack.__dict__.pop("_captured", None)       # later tests: the step as the policy says
    assert plans and all(p.loop is not None and p.loop.segments == 1 for p in plans), \
        [p.why_python or p.loop.segments for p in plans]
    assert counts[("captured_step", "replay")] > 0
    for a, b in zip(paged, batch):
        np.testing.assert_array_equal(a, b)


def _padded_run(model, fused, pad_steps):
    """Logits of 8 steps of a paged cache of 8 rows: 3 sequences (a step of 4 rows when
    padded), two more join (8), one leaves (4); and each step's number of rows."""
    stack = model.model
    stack.fused_decode = fused
    rng = np.random.default_rng(9)
    prompts = [rng.integers(3, 250, n).tolist() for n in (60, 125, 9, 30, 14)]
    paged = PagedKVCache(model, rows=8, max_length=192, pad_steps=pad_steps)
    last, out, rows = [], [], []

    def join(prompt):
        cache, logits = _prefilled(model, prompt)
        paged.add(cache, len(prompt))
        last.append(int(logits.argmax()))
    try:
        for prompt in prompts[:3]:
            join(prompt)
        for step in range(8):
            if step == 3:
                join(prompts[3])
                join(prompts[4])
            if step == 6:
                moved = paged.remove(1)
                last[1] = last.pop() if moved is not None else last[1]
            ids, mask, positions = paged.step_inputs(last)
            rows.append(ids.shape[0])
            with no_grad():
                logits = model(ids, attention_mask=mask, position_ids=positions, cache=paged,
                               logits_to_keep=1).logits[:, -1].numpy()
            out.append(logits[:paged.size])
            last = [int(row.argmax()) for row in logits[:paged.size]]
    finally:
        stack.fused_decode = True
    return out, rows


@pytest.fixture(scope="module")
def quantized_llama():
    """Every product an int8 one (the head too), whose rows never depend on each other: a
    float model's BLAS products may round a row differently with more rows beside it."""
    from gradient.quant import QuantizedLinear

    from ..models.test_llama_decode import quantized_model
    model = quantized_model("llama", ("Q4_1", "Q8_0"), max_position_embeddings=256)
    model.lm_head = QuantizedLinear.from_linear(model.lm_head, "Q8_0")
    return model.eval()


@pytest.mark.parametrize("fused", [True, False], ids=["captured", "module graph"])
def test_padded_steps_give_every_row_its_own_bits(quantized_llama, fused):
    """With pad_steps, a step of 3 or 5 sequences runs 4 or 8 rows (the padding rows write
    into a block no row holds and are forgotten): the sequences' logits are the unpadded
    steps' bits, step after step (a padding row that wrote into a row's blocks would show)."""
    plain, plain_rows = _padded_run(quantized_llama, fused, pad_steps=False)
    padded, padded_rows = _padded_run(quantized_llama, fused, pad_steps=True)
    assert plain_rows == [3, 3, 3, 5, 5, 5, 4, 4]
    assert padded_rows == [4, 4, 4, 8, 8, 8, 4, 4]
    for a, b in zip(padded, plain):
        np.testing.assert_array_equal(a, b)


def test_a_paged_step_gives_each_sequences_own_logits(llama):
    rng = np.random.default_rng(4)
    prompts = [rng.integers(3, 250, n).tolist() for n in (63, 20)]
    paged = PagedKVCache(llama, rows=2, max_length=128)
    sequences = []
    for prompt in prompts:
        one, logits = _prefilled(llama, prompt)
        paged.add(one, len(prompt))
        sequences.append(prompt + [int(logits.argmax())])
    for _ in range(3):
        logits = _step(llama, paged, [s[-1] for s in sequences])
        for row, seq in enumerate(sequences):
            np.testing.assert_allclose(logits[row], _alone(llama, seq), rtol=1e-5, atol=1e-5)
            seq.append(int(logits[row].argmax()))


def test_blocks_follow_the_positions_the_rows_hold(llama):
    paged = PagedKVCache(llama, rows=3, max_length=256)
    assert paged.n_blocks == 12 and paged.blocks_in_use == 0
    one, _ = _prefilled(llama, list(range(3, 103)))           # 100 positions: 2 blocks
    assert paged.add(one, 100) == 0 and paged.blocks_in_use == 2
    short, _ = _prefilled(llama, [5, 6, 7])
    assert paged.add(short, 3) == 1 and paged.blocks_in_use == 3
    assert paged.tables[0, :2].tolist() == [0, 1] and paged.tables[1, 0] == 2
    assert paged.remove(0) == 1                                # the short row moves to row 0
    assert paged.blocks_in_use == 1 and paged.tables[0, 0] == 2
    paged.add(one, 100)                                        # the lowest free blocks again
    assert paged.tables[1, :2].tolist() == [0, 1] and paged.blocks_in_use == 3
    paged.lengths[1] = 128                                     # crossing into a third block
    paged.step_inputs([1, 1])
    assert paged.tables[1, 2] == 3 and paged.blocks_in_use == 4


@pytest.mark.parametrize("dtype", [gradient.float32, gradient.float64])
def test_a_sequence_copied_into_blocks_and_back_is_the_same(llama, dtype, monkeypatch):
    """float32: every layer's block in one copy (stacked caches); float64: layer by layer."""
    monkeypatch.setattr(llama, "kv_cache_dtype", dtype)
    paged = PagedKVCache(llama, rows=2, max_length=192)
    one = llama.new_cache(1, 192)
    rng = np.random.default_rng(6)
    for t in one.keys + one.values:
        t.copy_(gradient.tensor(rng.standard_normal(tuple(t.shape)), dtype=dtype))
    paged.add(one, 150)                                      # three blocks, the last in part
    back = llama.new_cache(1, 192)
    paged.copy_to(0, back, 150)
    for a, b in zip(one.keys + one.values, back.keys + back.values):
        np.testing.assert_array_equal(b.numpy()[:, :, :150], a.numpy()[:, :, :150])
        assert not b.numpy()[:, :, 150:].any()


def test_a_full_pool_a_full_row_and_a_bad_block_size_are_clear_errors(llama):
    one, _ = _prefilled(llama, list(range(3, 103)))
    paged = PagedKVCache(llama, rows=2, max_length=128, n_blocks=3)
    paged.add(one, 100)
    with pytest.raises(ShapeError, match="no free block"):
        paged.add(one, 100)
    assert paged.size == 1 and paged.blocks_in_use == 2       # nothing half taken
    paged.lengths[0] = 128
    with pytest.raises(ShapeError, match="do not fit in rows of 128"):
        paged.step_inputs([1])
    with pytest.raises(ValueError, match="multiple of 64"):
        PagedKVCache(llama, rows=1, max_length=64, block_size=48)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("Hq, Hk, D", [(6, 2, 16), (8, 2, 64), (3, 3, 128), (12, 3, 80)])
def test_paged_decode_attention_is_each_rows_decode_attention(dtype, Hq, Hk, D):
    """Every row's bits are those of the row decoded alone, for groups of query heads that the
    values are weighed for three at a time, one at a time or both, and head sizes of whole
    and partial vectors."""
    from gradient.backends import cpu_attention
    rng = np.random.default_rng(2)
    B, bs = 3, 64
    lengths = np.array([70, 200, 1])
    q = rng.standard_normal((B, Hq, 1, D)).astype(np.float32)
    k = rng.standard_normal((B, Hk, 256, D)).astype(dtype)
    v = rng.standard_normal((B, Hk, 256, D)).astype(dtype)
    # (each block's keys transposed, as PagedKVCache keeps them)
    pool_k, pool_v = np.zeros((9, Hk, D, bs), dtype), np.zeros((9, Hk, bs, D), dtype)
    tables = np.zeros((B, 4), np.int64)
    free = iter(rng.permutation(9).tolist())                    # blocks in any order
    for b, n in enumerate(lengths):
        for m in range(-(-n // bs)):
            tables[b, m] = block = next(free)
            span = slice(m * bs, (m + 1) * bs)
            pool_k[block], pool_v[block] = k[b, :, span].swapaxes(1, 2), v[b, :, span]
    out = cpu_attention.paged_decode_attention(q, pool_k, pool_v, tables, lengths, bs, 0.25)
    for b, n in enumerate(lengths):
        alone = cpu_attention.decode_attention(q[b:b + 1], k[b:b + 1, :, :n],
                                               v[b:b + 1, :, :n], 0.25)
        np.testing.assert_array_equal(out[b:b + 1], alone)        # the same bits
    # the op: the kernel under no_grad, the rows gathered from their blocks otherwise
    rows = PagedRows(lengths, tables, bs)
    args = [gradient.tensor(a) for a in (q, pool_k.astype(np.float32), pool_v.astype(np.float32))]
    with no_grad():
        fast = F.scaled_dot_product_attention(*args, attn_mask=rows, enable_gqa=True)
    composed = F.scaled_dot_product_attention(*[a.requires_grad_() for a in args], attn_mask=rows,
                                              enable_gqa=True)
    np.testing.assert_allclose(fast.numpy(), composed.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_sequences_with_a_common_prefix_share_its_blocks_with_the_same_logits(llama):
    """Two sequences whose first 130 ids are the same, added with their ids: the second holds
    the first's two full blocks instead of copies, and every step gives the logits of the
    same steps without sharing, bit for bit."""
    rng = np.random.default_rng(7)
    common = rng.integers(3, 250, 130).tolist()
    prompts = [common + rng.integers(3, 250, n).tolist() for n in (5, 40)]

    def run(with_ids):
        paged = PagedKVCache(llama, rows=2, max_length=256)
        last = []
        for prompt in prompts:
            one, logits = _prefilled(llama, prompt)
            paged.add(one, len(prompt), ids=prompt if with_ids else None)
            last.append(int(logits.argmax()))
        held = paged.blocks_in_use
        out = []
        for _ in range(4):
            logits = _step(llama, paged, last)
            out.append(logits)
            last = [int(row.argmax()) for row in logits]
        return paged, held, out

    shared, shared_held, shared_out = run(True)
    apart, apart_held, apart_out = run(False)
    assert (apart_held, shared_held) == (6, 4)                   # 3 + 3 blocks, 2 of them shared
    np.testing.assert_array_equal(shared.tables[0, :2], shared.tables[1, :2])
    assert shared.pool.refs[shared.tables[0, 0]] == 2
    for a, b in zip(shared_out, apart_out):
        np.testing.assert_array_equal(a, b)


def test_a_prefix_outlives_its_row_and_a_decoded_block_becomes_a_prefix(llama):
    rng = np.random.default_rng(8)
    prompt = rng.integers(3, 250, 60).tolist()
    paged = PagedKVCache(llama, rows=2, max_length=192)
    one, logits = _prefilled(llama, prompt)
    paged.add(one, 60, ids=prompt)
    assert paged.prefix_length(prompt + [1] * 10) == 0            # no full block yet
    sequence, last = list(prompt), int(logits.argmax())
    for _ in range(6):                                           # positions 60 .. 65
        sequence.append(last)
        last = int(_step(llama, paged, [last])[0].argmax())
    assert paged.prefix_length(sequence) == 64                   # keyed once it filled
    assert paged.prefix_length(sequence, limit=63) == 0
    kept = llama.new_cache(1, 192)
    paged.copy_to(0, kept, 66)
    paged.remove(0)
    assert paged.blocks_in_use == 0 and paged.blocks_idle == 1
    # a later sequence with that prefix: its keys and values from the idle block, as written
    back = llama.new_cache(1, 192)
    assert paged.copy_prefix_to(sequence + [5], back, 0, len(sequence)) == 64
    assert back.length == 64
    for a, b in zip(kept.keys + kept.values, back.keys + back.values):
        np.testing.assert_array_equal(b.numpy()[:, :, :64], a.numpy()[:, :, :64])
    # (decoded one position at a time: a prefill's keys and values up to float rounding)
    alone, _ = _prefilled(llama, sequence[:64])
    for a, b in zip(alone.keys + alone.values, back.keys + back.values):
        np.testing.assert_allclose(b.numpy()[:, :, :64], a.numpy()[:, :, :64], rtol=1e-5,
                                   atol=1e-5)
    assert paged.copy_prefix_to(sequence, back, 64) == 64        # nothing more to copy
    assert paged.add(back, 64, ids=sequence) == 0
    assert paged.blocks_in_use == 1 and paged.blocks_idle == 0   # the same block, held again
    assert paged.tables[0, 0] == 0


def test_idle_blocks_make_room_when_no_block_is_free(llama):
    rng = np.random.default_rng(9)
    paged = PagedKVCache(llama, rows=2, max_length=192, n_blocks=3)
    first = rng.integers(3, 250, 128).tolist()
    one, _ = _prefilled(llama, first[:127])
    paged.add(one, 127, ids=first)                               # blocks 0 (keyed) and 1
    _step(llama, paged, [first[127]])                            # fills block 1 ...
    _step(llama, paged, [7])                                     # ... keyed here; block 2
    paged.remove(0)
    assert (paged.blocks_idle, paged.prefix_length(first)) == (2, 128)
    other = list(range(3, 103))
    one, _ = _prefilled(llama, other)
    paged.add(one, 100, ids=other)       # the free block 2, then the oldest idle one: 1
    assert paged.tables[0, :2].tolist() == [2, 1]
    assert paged.blocks_in_use == 2 and paged.prefix_length(first) == 64
    with pytest.raises(ShapeError, match="no free block"):
        paged.add(one, 100)
    paged.clear()
    assert paged.blocks_in_use == 0 and paged.blocks_idle == 0 and paged.prefix_length(first) == 0


def test_the_idle_blocks_kept_are_one_rows_worth_so_the_memory_written_stays_bounded(llama):
    # a server's stream of distinct prompts: each leaves its keyed block idle; past one row's
    # max_length of idle blocks the oldest are forgotten and written again, not the pool's
    # untouched blocks (whose pages would otherwise all come to be held)
    rng = np.random.default_rng(10)
    paged = PagedKVCache(llama, rows=4, max_length=128)
    assert paged.n_blocks == 8 and paged.pool.max_idle == 2
    written, prompts = set(), [rng.integers(3, 250, 64).tolist() for _ in range(8)]
    for prompt in prompts:
        one, _ = _prefilled(llama, prompt)
        paged.add(one, 64, ids=prompt)
        written.add(int(paged.tables[0, 0]))
        paged.remove(0)
        assert paged.blocks_idle <= 2
    assert written == {0, 1, 2}
    assert [paged.prefix_length(p) for p in prompts[-3:]] == [0, 64, 64]   # the newest kept
