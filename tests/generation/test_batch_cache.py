"""BatchKVCache (and where both caches do it, PagedKVCache): sequences at different positions decoded in one forward give the logits each
gives alone, on GPT-2 and LLaMA, as sequences join and leave the batch."""

import numpy as np
import pytest

import gradient
from gradient.autograd import no_grad
from gradient.errors import ShapeError
from gradient.generation import BatchKVCache, PagedKVCache

from ..hub.conftest import llama_dir  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def llama(llama_dir):  # noqa: F811
    model, _ = gradient.hub.load(str(llama_dir))
    return model.eval()


def _alone(model, ids):
    """The last position's logits of ``ids`` run alone, from scratch."""
    with no_grad():
        return model(gradient.tensor([ids]), logits_to_keep=1).logits[0, -1].numpy()


def _prefilled(model, ids):
    cache = model.new_cache(1, len(ids) + 8)
    with no_grad():
        logits = model(gradient.tensor([ids]), cache=cache, logits_to_keep=1).logits
    return cache, logits[0, -1].numpy()


def _step(model, batch, tokens):
    ids, mask, positions = batch.step_inputs(tokens)
    with no_grad():
        return model(ids, attention_mask=mask, position_ids=positions, cache=batch,
                     logits_to_keep=1).logits[:, -1].numpy()


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_a_batch_step_gives_each_sequences_own_logits(family, gpt2_pair, llama):
    model = gpt2_pair[1].eval() if family == "gpt2" else llama
    rng = np.random.default_rng(0)
    prompts = [rng.integers(3, 250, n).tolist() for n in (5, 17, 9)]
    batch = BatchKVCache(model, rows=4, max_length=64)
    sequences = []
    for prompt in prompts[:2]:
        cache, logits = _prefilled(model, prompt)
        assert batch.add(cache, len(prompt)) == len(sequences)
        sequences.append(prompt + [int(logits.argmax())])
    for step in range(6):
        if step == 2:            # a third sequence joins two steps in
            cache, logits = _prefilled(model, prompts[2])
            batch.add(cache, len(prompts[2]))
            sequences.append(prompts[2] + [int(logits.argmax())])
        if step == 4:            # the first leaves; the last moves into its row
            assert batch.remove(0) == 2
            sequences = [sequences[2], sequences[1]]
        logits = _step(model, batch, [s[-1] for s in sequences])
        for row, seq in enumerate(sequences):
            np.testing.assert_allclose(logits[row], _alone(model, seq), rtol=1e-5, atol=1e-5)
            seq.append(int(logits[row].argmax()))
    assert batch.lengths[:batch.size].tolist() == [len(s) - 1 for s in sequences]


def _batch_run(model, fused, cache_type=BatchKVCache, lengths=(6, 13, 4), max_length=48):
    """Logits of 8 batch steps of 2 or 3 sequences with prompts of ``lengths`` (one joins,
    one leaves) in a ``cache_type`` cache, the decoder's captured step allowed or not; the
    kernel trace."""
    stack = model.transformer if hasattr(model, "transformer") else model.model
    stack.fused_decode = fused
    rng = np.random.default_rng(5)
    prompts = [rng.integers(3, 250, n).tolist() for n in lengths]
    out = []
    try:
        with gradient.kernels.trace() as t:
            batch = cache_type(model, rows=3, max_length=max_length)
            last = []
            for prompt in prompts[:2]:
                cache, logits = _prefilled(model, prompt)
                batch.add(cache, len(prompt))
                last.append(int(logits.argmax()))
            for step in range(8):
                if step == 3:
                    cache, logits = _prefilled(model, prompts[2])
                    batch.add(cache, len(prompts[2]))
                    last.append(int(logits.argmax()))
                if step == 6:
                    batch.remove(0)
                    last = [last[2], last[1]]
                logits = _step(model, batch, last)
                out.append(logits)
                last = [int(row.argmax()) for row in logits]
    finally:
        stack.fused_decode = True
    return out, t.counts


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_batch_steps_are_captured_and_replayed_with_the_module_graphs_bits(family, gpt2_pair,
                                                                            llama):
    """The rows' lengths are data (a RowPrefixBias), not a mask whose shape grows: the batch's
    step is captured per number of rows and replayed, bit for bit the module graph's."""
    model = gpt2_pair[1].eval() if family == "gpt2" else llama
    fused, counts = _batch_run(model, True)
    graph, _ = _batch_run(model, False)
    for a, b in zip(fused, graph):
        np.testing.assert_array_equal(a, b)
    steps = {kind: counts[("captured_step", kind)] for kind in ("capture", "replay")}
    # 2 rows: steps 0-2 and 6-7 (captured twice, replayed 3 times); 3 rows: steps 3-5 (2, 1)
    assert steps == {"capture": 4, "replay": 4}, steps


@pytest.mark.parametrize("cache_type, prompt_length, steps, max_length",
                         [(BatchKVCache, 11, 3, 32),
                          (PagedKVCache, 62, 4, 128)])   # the paged row into its second block
def test_a_row_copied_back_continues_alone(llama, cache_type, prompt_length, steps, max_length):
    rng = np.random.default_rng(1)
    prompt = rng.integers(3, 250, prompt_length).tolist()
    batch = cache_type(llama, rows=2, max_length=max_length)
    cache, logits = _prefilled(llama, prompt)
    batch.add(cache, len(prompt))
    seq = prompt + [int(logits.argmax())]
    for _ in range(steps):
        seq.append(int(_step(llama, batch, [seq[-1]])[0].argmax()))
    back = llama.new_cache(1, max_length)
    batch.copy_to(0, back, int(batch.lengths[0]))
    back.length = int(batch.lengths[0])
    with no_grad():
        logits = llama(gradient.tensor([[seq[-1]]]), cache=back).logits[0, -1].numpy()
    np.testing.assert_allclose(logits, _alone(llama, seq), rtol=1e-5, atol=1e-5)


def test_a_full_batch_and_a_full_row_are_clear_errors(llama):
    batch = BatchKVCache(llama, rows=1, max_length=8)
    cache, _ = _prefilled(llama, [5, 6, 7])
    batch.add(cache, 3)
    with pytest.raises(ShapeError, match="all 1 rows are in use"):
        batch.add(cache, 3)
    batch.lengths[0] = 8
    with pytest.raises(ShapeError, match="a row is full"):
        batch.step_inputs([1])


def test_ragged_decode_attention_is_each_rows_decode_attention():
    from gradient.backends import cpu_attention
    rng = np.random.default_rng(2)
    q = rng.standard_normal((3, 6, 1, 16)).astype(np.float32)       # grouped heads
    buf = rng.standard_normal((2, 4, 2, 40, 16)).astype(np.float32)  # (k|v, rows, heads, L, D)
    k, v = buf[0][:3, :, :30], buf[1][:3, :, :30]                     # views of a batch cache
    lengths = [7, 30, 1]
    out = cpu_attention.ragged_decode_attention(q, k, v, lengths, 0.25)
    for b, n in enumerate(lengths):
        alone = cpu_attention.decode_attention(q[b:b + 1], k[b:b + 1, :, :n],
                                               v[b:b + 1, :, :n], 0.25)
        np.testing.assert_array_equal(out[b:b + 1], alone)        # the same bits
    # and the op takes that path for a prefix mask, matching the composition
    import gradient.nn.functional as F
    mask = np.arange(30)[None, :] < np.array(lengths)[:, None]
    args = [gradient.tensor(a) for a in (q, np.ascontiguousarray(k), np.ascontiguousarray(v))]
    with no_grad():
        fast = F.scaled_dot_product_attention(*args, attn_mask=gradient.tensor(mask[:, None,
                                                                                      None]),
                                              enable_gqa=True)
    composed = F.scaled_dot_product_attention(*[a.requires_grad_() for a in args],
                                              attn_mask=gradient.tensor(mask[:, None, None]),
                                              enable_gqa=True)
    np.testing.assert_allclose(fast.numpy(), composed.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_drafted_tokens_after_a_cache_get_the_single_steps_attention():
    """Speculative decoding checks L drafted tokens after S - L cached ones under the decoder's
    mask: each row's attention must be the decode step's of that position, bit for bit, or a
    near-tie can make greedy speculation leave greedy's tokens."""
    import gradient.nn.functional as F
    from gradient.backends import cpu_attention
    from gradient.models.masks import decoder_mask
    rng = np.random.default_rng(3)
    L, S = 4, 19
    q = rng.standard_normal((1, 6, L, 16)).astype(np.float32)
    k = rng.standard_normal((1, 2, S, 16)).astype(np.float32)
    v = rng.standard_normal((1, 2, S, 16)).astype(np.float32)
    mask = decoder_mask(None, L, S - L)                      # what the models pass
    with no_grad():
        out = F.scaled_dot_product_attention(gradient.tensor(q), gradient.tensor(k),
                                             gradient.tensor(v), attn_mask=mask,
                                             enable_gqa=True).numpy()
    for i in range(L):
        n = S - L + i + 1
        step = cpu_attention.decode_attention(q[:, :, i:i + 1], k[:, :, :n], v[:, :, :n], 0.25)
        np.testing.assert_array_equal(out[:, :, i:i + 1], step)
