"""The generation loop against transformers' generate on the same tiny GPT-2 weights, and
against a loop that recomputes the whole sequence without a cache."""

import gc
import re
import tracemalloc

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradient  # noqa: E402
from gradient.errors import GenerationError, ShapeError  # noqa: E402
from gradient.generation import check_sampling, generate, generate_tokens  # noqa: E402

from .conftest import VOCAB, random_ids  # noqa: E402


def _hf_generate(hf, ids, n, mask=None, **kwargs):
    kwargs.setdefault("pad_token_id", 0)
    if mask is not None:
        kwargs["attention_mask"] = torch.tensor(mask)
    with torch.no_grad():
        return hf.generate(torch.tensor(ids), max_new_tokens=n, **kwargs).numpy()


def _left_padded(seed=3):
    """Three prompts of 9, 5 and 7 tokens, left-padded with id 0."""
    ids = random_ids((3, 9), seed=seed)
    mask = np.ones_like(ids)
    mask[1, :4] = 0
    mask[2, :2] = 0
    ids[mask == 0] = 0
    return ids, mask


def test_greedy_equals_transformers(gpt2_pair):
    hf, ours = gpt2_pair
    ids = random_ids((1, 7))
    out = generate(ours, gradient.tensor(ids), 32)
    ref = _hf_generate(hf, ids, 32)
    assert out.dtype == gradient.int64 and tuple(out.shape) == (1, 7 + 32)
    np.testing.assert_array_equal(out.numpy(), ref)
    assert len(set(ref[0, 7:].tolist())) > 5  # the weights give varied tokens, not one repeated


def test_batched_left_padded_greedy_equals_transformers(gpt2_pair):
    hf, ours = gpt2_pair
    ids, mask = _left_padded()
    out = generate(ours, ids, 32, attention_mask=mask).numpy()
    np.testing.assert_array_equal(out, _hf_generate(hf, ids, 32, mask))
    # each padded prompt continues exactly as it does alone
    for row, pad in ((1, 4), (2, 2)):
        alone = generate(ours, ids[row:row + 1, pad:], 32).numpy()
        np.testing.assert_array_equal(out[row, 9:], alone[0, 9 - pad:])


def test_padding_inferred_from_the_pad_id_like_transformers(gpt2_pair):
    hf, ours = gpt2_pair
    ids, mask = _left_padded(seed=21)
    out = generate(ours, ids, 16, pad_token_id=0).numpy()
    np.testing.assert_array_equal(out, _hf_generate(hf, ids, 16, pad_token_id=0))
    np.testing.assert_array_equal(out, generate(ours, ids, 16, attention_mask=mask).numpy())
    # a pad id that is also the eos marks nothing
    assert not np.array_equal(generate(ours, ids, 16, pad_token_id=0, eos_token_id=0).numpy(), out)


def _greedy_without_cache(model, ids, n, mask=None):
    """The reference loop: every step runs the whole sequence again, no cache."""
    ids = ids.copy()
    mask = None if mask is None else mask.copy()
    for _ in range(n):
        kwargs = {}
        if mask is not None:
            positions = np.clip(np.cumsum(mask, 1) - 1, 0, None)
            kwargs = dict(attention_mask=gradient.tensor(mask),
                          position_ids=gradient.tensor(positions))
        with gradient.no_grad():
            logits = model(gradient.tensor(ids), **kwargs).logits.numpy()[:, -1]
        ids = np.concatenate([ids, logits.argmax(-1)[:, None]], axis=1)
        if mask is not None:
            mask = np.concatenate([mask, np.ones_like(mask[:, :1])], axis=1)
    return ids


def test_kv_cache_decoding_equals_recomputing_everything(gpt2_pair):
    _, ours = gpt2_pair
    ids = random_ids((2, 6), seed=5)
    np.testing.assert_array_equal(generate(ours, ids, 24).numpy(),
                                  _greedy_without_cache(ours, ids, 24))
    ids, mask = _left_padded(seed=6)
    np.testing.assert_array_equal(generate(ours, ids, 24, attention_mask=mask).numpy(),
                                  _greedy_without_cache(ours, ids, 24, mask))


def test_one_prefill_then_one_token_per_step(gpt2_pair, monkeypatch):
    _, ours = gpt2_pair
    calls, caches = [], []
    forward, new_cache = type(ours).forward, type(ours).new_cache

    def spy_forward(self, input_ids, **kwargs):
        calls.append((tuple(input_ids.shape), kwargs.get("logits_to_keep")))
        return forward(self, input_ids, **kwargs)

    def spy_cache(self, batch, length, dtype=None):
        caches.append((batch, length))
        return new_cache(self, batch, length, dtype)

    monkeypatch.setattr(type(ours), "forward", spy_forward)
    monkeypatch.setattr(type(ours), "new_cache", spy_cache)
    generate(ours, random_ids((2, 5)), 6)
    assert caches == [(2, 11)]
    assert calls == [((2, 5), 1)] + [((2, 1), 1)] * 5  # the last token needs no forward


def test_eos_stops_and_pads_like_transformers(gpt2_pair):
    hf, ours = gpt2_pair
    ids, mask = _left_padded(seed=7)
    free = _hf_generate(hf, ids, 32, mask)[:, 9:]
    eos = int(free[0, 4])  # row 0 ends at step 4 (or before, if the token came earlier)
    assert eos not in free[1, :8]  # ... while row 1 runs on for a while
    out = generate(ours, ids, 32, attention_mask=mask, eos_token_id=eos, pad_token_id=7).numpy()
    ref = _hf_generate(hf, ids, 32, mask, eos_token_id=eos, pad_token_id=7)
    np.testing.assert_array_equal(out, ref)
    first = list(out[0, 9:]).index(eos)
    assert (out[0, 9 + first + 1:] == 7).all() and first + 1 < out.shape[1] - 9
    # several eos ids; every row finishes, so the output is shorter than max_new_tokens
    eos_ids = [int(free[0, 3]), int(free[1, 2]), int(free[2, 5])]
    out = generate(ours, ids, 32, attention_mask=mask, eos_token_id=eos_ids).numpy()
    ref = _hf_generate(hf, ids, 32, mask, eos_token_id=eos_ids, pad_token_id=eos_ids[0])
    np.testing.assert_array_equal(out, ref)
    assert out.shape[1] <= 9 + 6


def test_eos_and_pad_default_to_the_model_config(gpt2_pair, monkeypatch):
    _, ours = gpt2_pair
    ids = random_ids((1, 5), seed=8)
    free = generate(ours, ids, 16).numpy()[0, 5:]
    monkeypatch.setattr(ours.config, "eos_token_id", int(free[3]))
    out = generate(ours, ids, 16).numpy()
    assert out.shape[1] <= 5 + 4 and out[0, -1] == free[3]
    # an empty list switches the config's eos off
    assert generate(ours, ids, 16, eos_token_id=[]).shape[1] == 5 + 16


def test_repetition_penalty_equals_transformers(gpt2_pair):
    """Greedy with a penalty, on a left-padded batch: transformers skips the padding when it
    penalises, and so must we."""
    hf, ours = gpt2_pair
    ids, mask = _left_padded(seed=9)
    out = generate(ours, ids, 32, attention_mask=mask, repetition_penalty=1.5).numpy()
    np.testing.assert_array_equal(out, _hf_generate(hf, ids, 32, mask, repetition_penalty=1.5))
    assert (out != generate(ours, ids, 32, attention_mask=mask).numpy()).any()


def test_deterministic_sampling_settings_equal_transformers(gpt2_pair):
    """top_k=1 leaves one token, so sampling is deterministic on both sides: the whole chain of
    processors (penalty, temperature, top-k, top-p, min-p) runs in both."""
    hf, ours = gpt2_pair
    ids, mask = _left_padded(seed=10)
    kwargs = dict(do_sample=True, temperature=0.7, top_k=1, top_p=0.9, min_p=0.05,
                  repetition_penalty=1.3)
    out = generate(ours, ids, 24, attention_mask=mask, seed=0, **kwargs).numpy()
    np.testing.assert_array_equal(out, _hf_generate(hf, ids, 24, mask, **kwargs))


def test_sampling_with_top_k_1_equals_greedy(gpt2_pair):
    _, ours = gpt2_pair
    ids, mask = _left_padded(seed=11)
    greedy = generate(ours, ids, 24, attention_mask=mask).numpy()
    sampled = generate(ours, ids, 24, attention_mask=mask, do_sample=True, top_k=1,
                       temperature=1.7, seed=3).numpy()
    np.testing.assert_array_equal(sampled, greedy)


def test_sampling_is_reproducible_with_a_seed(gpt2_pair):
    _, ours = gpt2_pair
    ids = random_ids((2, 4), seed=12)
    a = generate(ours, ids, 32, do_sample=True, seed=1).numpy()
    b = generate(ours, ids, 32, do_sample=True, seed=1).numpy()
    c = generate(ours, ids, 32, do_sample=True, seed=2).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert (a != generate(ours, ids, 32).numpy()).any()  # sampling is not greedy here
    # without a seed, gradient.manual_seed makes runs repeatable
    gradient.manual_seed(5)
    d = generate(ours, ids, 32, do_sample=True).numpy()
    gradient.manual_seed(5)
    np.testing.assert_array_equal(d, generate(ours, ids, 32, do_sample=True).numpy())


def test_top_p_and_min_p_restrict_the_draws(gpt2_pair):
    """With a tiny top_p only the most likely token survives: sampling becomes greedy."""
    _, ours = gpt2_pair
    ids = random_ids((2, 4), seed=13)
    greedy = generate(ours, ids, 20).numpy()
    for kwargs in (dict(top_p=1e-6), dict(min_p=1.0)):
        out = generate(ours, ids, 20, do_sample=True, seed=4, temperature=2.0, **kwargs)
        np.testing.assert_array_equal(out.numpy(), greedy)


def test_stop_strings(gpt2_pair, byte_tokenizer):
    _, ours = gpt2_pair
    ids = random_ids((1, 5), seed=14)
    free = generate(ours, ids, 40).numpy()[0, 5:].tolist()
    texts = [byte_tokenizer.decode(free[:t + 1]) for t in range(40)]
    # a two-character stop string that first appears after step 6, away from incomplete UTF-8
    full = texts[-1]
    start = next(i for i in range(len(texts[6]) + 1, len(full) - 1)
                 if "\ufffd" not in full[i:i + 2] and full[i:i + 2] not in texts[6])
    stop = full[start:start + 2]
    end = next(t for t, text in enumerate(texts) if stop in text)  # the step that completes it
    out = generate(ours, ids, 40, stop_strings=[stop, "never seen"], tokenizer=byte_tokenizer)
    np.testing.assert_array_equal(out.numpy()[0, 5:], free[:end + 1])
    # a decode function does as well as a tokenizer
    out = generate(ours, ids, 40, stop_strings=stop, tokenizer=byte_tokenizer.decode)
    assert out.shape[1] == 5 + end + 1


def test_stop_strings_ignore_the_prompt(gpt2_pair, byte_tokenizer):
    _, ours = gpt2_pair
    ids = byte_tokenizer.encode("the cat sat").ids
    free = generate(ours, ids, 20).numpy()[0, len(ids):].tolist()
    assert "cat" not in byte_tokenizer.decode(free)
    out = generate(ours, ids, 20, stop_strings="cat", tokenizer=byte_tokenizer)
    assert out.shape[1] == len(ids) + 20


def test_stop_strings_finish_one_row_of_a_batch(gpt2_pair, byte_tokenizer):
    _, ours = gpt2_pair
    ids, mask = _left_padded(seed=15)
    free = generate(ours, ids, 30, attention_mask=mask).numpy()[:, 9:]
    text0 = [byte_tokenizer.decode(free[0, :t + 1].tolist()) for t in range(30)]
    stop = next(text0[t][-1] for t in range(3, 30)
                if text0[t][-1] != "\ufffd" and text0[t][-1] not in text0[t - 1]
                and text0[t][-1] not in byte_tokenizer.decode(free[1].tolist()))
    end = next(t for t in range(30) if stop in text0[t])
    out = generate(ours, ids, 30, attention_mask=mask, stop_strings=stop,
                   tokenizer=byte_tokenizer, pad_token_id=5).numpy()[:, 9:]
    np.testing.assert_array_equal(out[0, :end + 1], free[0, :end + 1])
    assert (out[0, end + 1:] == 5).all() and end < 29
    np.testing.assert_array_equal(out[1], free[1])  # row 1 never meets the stop string


def test_memory_does_not_grow_with_the_output(gpt2_pair, monkeypatch):
    """Between step 20 and step 100 the live allocations stay flat: the KV cache and the output
    ids are allocated once. The same check run with a cache that concatenates (the mistake this
    guards against) sees the growth."""
    _, ours = gpt2_pair
    ids = random_ids((2, 4), seed=16)
    step_bytes = 2 * 2 * 2 * 64 * 4  # layers * (k, v) * batch * n_embd * float32

    def growth():
        tracemalloc.start()
        try:
            marks = {}
            for step, _ in enumerate(generate_tokens(ours, ids, 101, eos_token_id=[])):
                if step in (20, 100):
                    gc.collect()
                    marks[step] = tracemalloc.get_traced_memory()[0]
            return marks[100] - marks[20]
        finally:
            tracemalloc.stop()

    assert growth() < 0.05 * 80 * step_bytes

    class ConcatenatingCache:  # the protocol of KVCache, growing by concatenation
        def __init__(self, n_layers):
            self.keys, self.values, self.length = [None] * n_layers, [None] * n_layers, 0

        def update(self, layer, k, v):
            if self.keys[layer] is not None:
                k = gradient.cat([self.keys[layer], k], dim=2)
                v = gradient.cat([self.values[layer], v], dim=2)
            self.keys[layer], self.values[layer] = k, v
            return k, v

        def advance(self, n):
            self.length += n

    monkeypatch.setattr(type(ours), "new_cache", lambda self, b, n: ConcatenatingCache(2))
    assert growth() > 0.8 * 80 * step_bytes


def test_grad_mode_is_left_alone_between_steps(gpt2_pair):
    _, ours = gpt2_pair
    modes = [gradient.is_grad_enabled() for _ in generate_tokens(ours, random_ids((1, 3)), 3)]
    assert modes == [True, True, True]
    assert all(not p.requires_grad or p.grad is None for p in ours.parameters())


def test_generate_tokens_yields_each_step(gpt2_pair):
    _, ours = gpt2_pair
    ids, mask = _left_padded(seed=17)
    stream = generate_tokens(ours, ids, 10, attention_mask=mask)
    steps = list(stream)
    assert len(steps) == 10 and all(len(s) == 3 and isinstance(s[0], int) for s in steps)
    full = generate(ours, ids, 10, attention_mask=mask).numpy()
    np.testing.assert_array_equal(np.array(steps).T, full[:, 9:])
    np.testing.assert_array_equal(stream.sequences.numpy(), full)


def test_inputs_and_edge_cases(gpt2_pair):
    _, ours = gpt2_pair
    ids = random_ids((1, 6), seed=18)
    ref = generate(ours, ids, 5).numpy()
    # a 1-D prompt, nested lists and an all-ones mask give the same result
    np.testing.assert_array_equal(generate(ours, ids[0], 5).numpy(), ref)
    np.testing.assert_array_equal(generate(ours, ids.tolist(), 5).numpy(), ref)
    np.testing.assert_array_equal(
        generate(ours, ids, 5, attention_mask=np.ones_like(ids)).numpy(), ref)
    np.testing.assert_array_equal(generate(ours, ids, 0).numpy(), ids)


def test_bad_arguments(gpt2_pair):
    _, ours = gpt2_pair
    ids = random_ids((2, 4))
    with pytest.raises(ShapeError, match="attention_mask"):
        generate(ours, ids, 3, attention_mask=np.ones((2, 5)))
    with pytest.raises(ShapeError, match="integer ids"):
        generate(ours, ids.astype(np.float32), 3)
    with pytest.raises(ShapeError, match="empty"):
        generate(ours, np.zeros((1, 0), dtype=np.int64), 3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(ours, ids, -1)
    with pytest.raises(ValueError, match="temperature"):
        generate(ours, ids, 3, do_sample=True, temperature=0.0)
    with pytest.raises(ValueError, match="tokenizer"):
        generate(ours, ids, 3, stop_strings=["x"])
    with pytest.raises(ValueError, match="n_positions"):
        generate(ours, ids, 253)
    with pytest.raises(ValueError, match="stop_strings"):
        generate(ours, ids, 3, stop_strings=[""], tokenizer=lambda ids: "")
    mask = np.ones_like(ids)
    mask[0, -1] = 0
    with pytest.warns(UserWarning, match="right padding"):
        generate(ours, ids, 2, attention_mask=mask)
    assert VOCAB == ours.config.vocab_size


@pytest.mark.parametrize("kwargs, says", [
    (dict(do_sample=True, top_p=2), "top_p must be a number between 0 and 1, got 2"),
    (dict(do_sample=False, top_p=-0.5), "top_p must be"),
    (dict(do_sample=True, temperature=-1), "temperature must be a number >= 0, got -1"),
    (dict(do_sample=True, temperature=float("nan")), "temperature must be"),
    (dict(do_sample=True, top_k=-3), "top_k must be an integer >= 0"),
    (dict(do_sample=True, top_k=2.5), "top_k must be an integer"),
    (dict(do_sample=True, min_p=1.5), "min_p must be"),
    (dict(repetition_penalty=0), "repetition_penalty must be a number > 0"),
    (dict(max_new_tokens=-1), "max_new_tokens must be an integer >= 0, got -1"),
    (dict(max_new_tokens=2.0), "max_new_tokens must be an integer"),
])
def test_sampling_arguments_out_of_range_are_refused_up_front(gpt2_pair, kwargs, says):
    """One check for generate, stream and the command line (generation.check_sampling), with
    gradient's own error class (a ValueError), even where the setting would be ignored."""
    _, ours = gpt2_pair
    kwargs = dict(kwargs)
    n = kwargs.pop("max_new_tokens", 3)
    with pytest.raises(GenerationError, match=re.escape(says)):
        generate(ours, random_ids((1, 4)), n, **kwargs)
    with pytest.raises(GenerationError, match=re.escape(says)):
        check_sampling(n, **kwargs)
    assert issubclass(GenerationError, ValueError)


def test_a_long_prompt_is_prefilled_in_pieces_when_its_progress_is_asked(gpt2_pair,
                                                                          monkeypatch):
    """prefill_progress: the prompt's forward in pieces of PREFILL_CHUNK tokens, each
    reported; the tokens are those of the one-piece prefill."""
    import importlib
    _, ours = gpt2_pair
    ids = random_ids((1, 40))
    reports = []
    monkeypatch.setattr(importlib.import_module("gradient.generation.generate"),
                        "PREFILL_CHUNK", 16)
    steps = generate_tokens(ours, ids, 5, prefill_progress=lambda *a: reports.append(a))
    chunked = [t for (t,) in steps]
    assert reports == [(16, 40), (32, 40), (40, 40)]
    assert chunked == generate(ours, ids, 5).numpy()[0, 40:].tolist()
