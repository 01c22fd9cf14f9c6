"""Speculative decoding with a draft model: the tokens are greedy decoding's, token for
token, whether the draft model agrees with the model often (itself), or rarely (a smaller
random one), and the model's forwards are fewer when it agrees."""

import importlib
import itertools
from types import SimpleNamespace

import numpy as np
import pytest

import gradient
from gradient.errors import GenerationError
from gradient.generation import generate
from gradient.generation.assistant import AssistantDrafter
from gradient.models import LlamaConfig, LlamaForCausalLM

from ..hub.conftest import llama_dir  # noqa: F401  (the fixture)

# the module (the package's ``generate`` is the function)
speculation = importlib.import_module("gradient.generation.speculation")


@pytest.fixture(scope="module")
def model(llama_dir):  # noqa: F811
    model, _ = gradient.hub.load(str(llama_dir))
    return model.eval()


def small_like(model, seed=0):
    """A smaller random LLaMA of the model's vocabulary: a poor draft model."""
    gradient.manual_seed(seed)
    c = model.config
    return LlamaForCausalLM(LlamaConfig(vocab_size=c.vocab_size, hidden_size=16,
                                        intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=1,
                                        max_position_embeddings=c.max_position_embeddings)).eval()


def _counting(model, monkeypatch):
    calls = []
    forward = type(model).forward
    monkeypatch.setattr(type(model), "forward",
                        lambda self, ids, *a, **k: (calls.append(ids.shape[1])
                                                    if self is model else None)
                        or forward(self, ids, *a, **k))
    return calls


@pytest.mark.parametrize("draft", ["its twin", "a small random model"])
def test_the_same_tokens_as_greedy(model, draft, monkeypatch, llama_dir):  # noqa: F811
    prompt = np.random.default_rng(1).integers(3, 200, 9).tolist()
    plain = generate(model, [prompt], 20, eos_token_id=[])[0].tolist()
    # its twin: the same weights in another object, so every draft is kept
    assistant = (gradient.hub.load(str(llama_dir))[0].eval() if draft == "its twin"
                 else small_like(model))
    calls = _counting(model, monkeypatch)
    if draft == "its twin":
        # a clock by which every forward takes one second, drafted or not: kept drafts pay
        # (a real twin costs as much as the model, and its drafts would wait as unpaid ones)
        clock = itertools.count()
        monkeypatch.setattr(speculation, "time", SimpleNamespace(perf_counter=lambda:
                                                                 next(clock)))
    out = generate(model, [prompt], 20, eos_token_id=[], assistant_model=assistant,
                   num_assistant_tokens=4)
    assert out[0].tolist() == plain
    if draft == "its twin":      # every draft kept: the drafts grow to 4 (DraftSchedule)
        # the prefill gives token 1, a plain step (timed: what plain costs) token 2; a forward
        # of 3 drafts + 1 gives 4; two of 4 + 1 give 10; the last 3 + 1 the last 4
        assert calls == [len(prompt), 1, 4, 5, 5, 4], calls


def test_a_draft_model_must_share_the_vocabulary_and_decode_greedily(model):
    c = model.config
    other = LlamaForCausalLM(LlamaConfig(vocab_size=c.vocab_size + 1, hidden_size=16,
                                         intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    with pytest.raises(GenerationError, match="vocabulary"):
        generate(model, [[1, 2, 3]], 4, assistant_model=other)
    with pytest.raises(GenerationError, match="greedy"):
        generate(model, [[1, 2, 3]], 4, do_sample=True, assistant_model=small_like(model))
    with pytest.raises(GenerationError, match="not both"):
        generate(model, [[1, 2, 3]], 4, assistant_model=model, prompt_lookup_num_tokens=3)


def test_the_same_network_takes_the_prompt_from_the_model_cache(model, llama_dir,  # noqa: F811
                                                                 monkeypatch):
    """A draft that is the model's network (its twin here; a quantized copy keeps its norms)
    copies the prompt's keys and values from the model's cache instead of reading the prompt:
    the same cache, the same drafts, and greedy decoding's tokens."""
    twin = gradient.hub.load(str(llama_dir))[0].eval()
    prompt = np.random.default_rng(2).integers(3, 200, 11).tolist()
    ids = np.array(prompt + [7], np.int64)
    cache = model.new_cache(1, 32)
    with gradient.no_grad():
        model(gradient.tensor([prompt]), cache=cache)
    reading = AssistantDrafter(twin, model, 32)
    reading.reads_model_cache = False           # reads the prompt itself
    copying = AssistantDrafter(twin, model, 32)
    assert copying.reads_model_cache
    calls = _counting(twin, monkeypatch)   # the twin's forwards
    drafts = copying(ids, 3, model_cache=cache)
    assert calls == [1, 1, 1]                   # no pass over the prompt
    assert reading(ids, 3).tolist() == drafts.tolist()
    for mine, theirs in zip(copying.cache.stacked(), reading.cache.stacked()):
        np.testing.assert_allclose(mine[..., :len(ids) + 2, :], theirs[..., :len(ids) + 2, :],
                                   rtol=1e-5, atol=1e-5)
    plain = generate(model, [prompt], 12, eos_token_id=[])[0].tolist()
    calls.clear()
    out = generate(model, [prompt], 12, eos_token_id=[], assistant_model=twin,
                   num_assistant_tokens=3)
    assert out[0].tolist() == plain
    assert calls and max(calls) < len(prompt)


def test_another_network_reads_the_prompt_itself(model, llama_dir):  # noqa: F811
    """Other norms' weights (another checkpoint of the same shape) or another shape: the
    draft model keeps its own pass over the prompt."""
    other = gradient.hub.load(str(llama_dir))[0].eval()
    with gradient.no_grad():
        other.model.norm.weight.mul_(1.5)
    assert not AssistantDrafter(other, model, 16).reads_model_cache
    assert not AssistantDrafter(small_like(model), model, 16).reads_model_cache
