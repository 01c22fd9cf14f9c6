"""Where each row of a forward must get the bits it gets alone (gradient.kernels.rows_alone): a
speculative step's check and a batch of sequences decoding side by side. Forwards of 16 rows
and more by bfloat16 weights go on the CPU's matrix tiles where it has them (AMX), whose sums
are in another order than a row's alone; these tests fail there if a check or a batch's step
took them."""

import numpy as np
import pytest

import gradient
from gradient.generation import generate_tokens
from gradient.generation.draft_schedule import DraftSchedule
from gradient.generation.speculation import speculative_step


def _bfloat16_llama(width=256, seed=0):
    """A random 2-layer LLaMA in bfloat16, wide enough that sums in another order move its
    logits."""
    from gradient.models import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(vocab_size=320, hidden_size=width, intermediate_size=2 * width,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=128)
    model = LlamaForCausalLM(config)
    rng = np.random.default_rng(seed)
    model.load_state_dict({name: gradient.from_numpy(
        (1 + 0.1 * rng.standard_normal(t.shape) if "norm" in name
         else 0.2 * rng.standard_normal(t.shape)).astype(np.float32))
        for name, t in model.state_dict().items()})
    return model.eval().to(gradient.bfloat16)


@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
def test_a_long_check_of_a_bfloat16_model_gives_each_position_a_decode_steps_logits():
    """Twenty drafts make a forward of 21 rows, which a prompt's product would take on the
    CPU's matrix tiles where it has them (other sums than a row alone gets): a check runs as
    decode steps do, its logits those of one token at a time, bit for bit."""
    half = _bfloat16_llama()
    prompt = [5, 17, 40, 9, 33]
    cache = half.new_cache(1, 64)
    steps = []
    with gradient.no_grad():
        logits = half(gradient.tensor([prompt]), cache=cache).logits
        token = int(logits[0, -1].float().numpy().argmax())
        for _ in range(21):
            steps.append(token)
            logits = half(gradient.tensor([[token]]), cache=cache).logits
            token = int(logits[0, -1].float().numpy().argmax())
    one_at_a_time = []
    cache = half.new_cache(1, 64)
    with gradient.no_grad():
        half(gradient.tensor([prompt]), cache=cache)
        for token in steps:
            one_at_a_time.append(half(gradient.tensor([[token]]), cache=cache)
                                 .logits[0, -1].float().numpy())
    cache = half.new_cache(1, 64)
    with gradient.no_grad():
        half(gradient.tensor([prompt]), cache=cache)
    ids = np.array(prompt + steps[:1], np.int64)
    schedule = DraftSchedule(20)
    schedule.size = 20            # (as after a few checks whose drafts were all kept)
    drafted, kept, scores = speculative_step(half, cache, ids, lambda ids, k: np.array(
        steps[1:1 + k], np.int64), schedule, 40)
    assert len(drafted) == 20 and kept == 20
    np.testing.assert_array_equal(scores, np.stack(one_at_a_time))


@pytest.mark.parametrize("captured", [True, False], ids=["captured", "module graph"])
def test_a_batch_of_sequences_decodes_each_as_it_would_alone(captured):
    """Eighteen sequences decode in a forward of 18 rows: each row's logits are those of its
    sequence decoded alone, bit for bit (prompts of 16 tokens, whose forwards give each row
    its bits whatever rows share them), whether the step is replayed or runs through the
    module graph."""
    half = _bfloat16_llama(seed=1)
    half.model.fused_decode = captured
    prompts = np.random.default_rng(2).integers(0, 320, (18, 16))

    def run(ids):
        stream = generate_tokens(half, ids, 4, keep_logits=True, eos_token_id=[])
        steps = []
        for _ in stream:
            steps.append(stream.logits.copy())
        return np.stack(steps, 1)           # (B, steps, vocab)

    together = run(prompts)
    for row in (0, 7, 17):
        np.testing.assert_array_equal(together[row], run(prompts[row:row + 1])[0])


def test_a_captured_step_gives_its_recorded_runs_the_bits_of_its_replays():
    """A decode step is recorded twice through the module graph, then replayed by kernels
    prepared for its shapes (each row its bits alone): the recorded runs give the same bits.
    Here the decoder stack (what is captured) of 18 sequences stepped by hand, without
    generate: each row's hidden states are those of its sequence alone."""
    half = _bfloat16_llama(seed=3)
    rng = np.random.default_rng(4)
    prompts, tokens = rng.integers(0, 320, (18, 16)), rng.integers(0, 320, (18, 4))

    def steps(rows):
        cache = half.new_cache(len(prompts[rows]), 24)
        out = []
        with gradient.no_grad():
            half.model(gradient.tensor(prompts[rows]), cache=cache)
            for t in range(tokens.shape[1]):
                hidden = half.model(gradient.tensor(tokens[rows, t:t + 1]), cache=cache)
                out.append(hidden[:, -1].float().numpy())
        return np.stack(out, 1)

    together = steps(slice(None))
    for row in (0, 17):
        np.testing.assert_array_equal(together[row], steps(slice(row, row + 1))[0])
