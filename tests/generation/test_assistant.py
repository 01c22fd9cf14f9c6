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
