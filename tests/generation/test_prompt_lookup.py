"""Prompt lookup decoding: drafts from the text itself, checked in one forward; the tokens
are greedy decoding's, token for token, from fewer forwards when the output repeats."""

import numpy as np
import pytest

import gradient
from gradient.generation import generate
from gradient.generation.prompt_lookup import draft

from ..hub.conftest import gpt2_dir, llama_dir  # noqa: F401  (the fixtures)


def test_draft_takes_what_followed_the_latest_occurrence():
    ids = np.array([5, 6, 7, 9, 1, 5, 6, 8, 4, 5, 6])
    assert draft(ids, 2).tolist() == [8, 4]          # "5 6" last seen before "8 4"
    assert draft(ids, 10).tolist() == [8, 4, 5, 6]   # up to the end
    assert draft(np.array([1, 2, 3]), 4).tolist() == []
    assert draft(np.array([3, 1, 2, 3]), 2).tolist() == [1, 2]   # down to one token


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def model(request, llama_dir, gpt2_dir):  # noqa: F811
    model, _ = gradient.hub.load(str(llama_dir if request.param == "llama" else gpt2_dir))
    return model.eval()


def test_the_same_tokens_as_greedy_from_fewer_forwards(model, monkeypatch):
    rng = np.random.default_rng(0)
    snippet = rng.integers(3, 200, 12).tolist()
    prompt = snippet + [7] + snippet + [7] + snippet[:4]   # an input that repeats itself
    plain = generate(model, [prompt], 24, eos_token_id=[])[0].tolist()
    calls = []
    forward = type(model).forward
    monkeypatch.setattr(type(model), "forward",
                        lambda self, ids, *a, **k: calls.append(ids.shape[1]) or
                        forward(self, ids, *a, **k))
    looked = generate(model, [prompt], 24, eos_token_id=[], prompt_lookup_num_tokens=5)
    assert looked[0].tolist() == plain
    assert len(calls) - 1 < 24       # after the prefill, fewer forwards than tokens


def test_prompt_lookup_is_greedy_only(model):
    with pytest.raises(gradient.errors.GenerationError, match="greedy"):
        generate(model, [[1, 2, 3]], 4, do_sample=True, prompt_lookup_num_tokens=3)
