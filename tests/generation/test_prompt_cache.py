"""PromptCache: a second generation runs only the part of its prompt after what the cache
holds, and gives exactly the tokens of a generation from scratch."""

import numpy as np
import pytest

import gradient
from gradient.generation import PromptCache, generate

from ..hub.conftest import llama_dir  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def model(llama_dir):  # noqa: F811
    model, _ = gradient.hub.load(str(llama_dir))
    return model.eval()


def _count_positions(model, monkeypatch):
    """How many prompt positions the model's forwards ran, by call."""
    seen = []
    forward = type(model).forward

    def spy(self, input_ids, *args, **kwargs):
        seen.append(input_ids.shape[1])
        return forward(self, input_ids, *args, **kwargs)
    monkeypatch.setattr(type(model), "forward", spy)
    return seen


def test_the_second_turn_runs_only_its_new_tokens(model, monkeypatch):
    rng = np.random.default_rng(0)
    turn1 = rng.integers(3, 200, 40).tolist()
    pc = PromptCache(model)
    first = generate(model, [turn1], 8, eos_token_id=[], prompt_cache=pc)[0].tolist()
    turn2 = first + rng.integers(3, 200, 12).tolist()   # the reply, then a new message
    seen = _count_positions(model, monkeypatch)
    second = generate(model, [turn2], 8, eos_token_id=[], prompt_cache=pc)[0].tolist()
    # the cache held turn 1 and the reply but its last token (never run through the model)
    assert pc.reused == len(first) - 1 and seen[0] == len(turn2) - pc.reused
    monkeypatch.undo()
    assert second == generate(model, [turn2], 8, eos_token_id=[])[0].tolist()


def test_a_different_prompt_reuses_the_shared_prefix_only(model):
    rng = np.random.default_rng(1)
    system = rng.integers(3, 200, 30).tolist()
    pc = PromptCache(model)
    generate(model, [system + [5, 6, 7]], 4, eos_token_id=[], prompt_cache=pc)
    other = system + [9, 9]
    out = generate(model, [other], 6, do_sample=True, seed=3, eos_token_id=[], prompt_cache=pc)
    assert pc.reused == len(system)
    assert out[0].tolist() == generate(model, [other], 6, do_sample=True, seed=3,
                                       eos_token_id=[])[0].tolist()


def test_a_branch_copies_the_shared_prefix_and_leaves_the_other_cache_whole(model):
    rng = np.random.default_rng(2)
    system = rng.integers(3, 200, 30).tolist()
    first = system + rng.integers(3, 200, 20).tolist()
    a, b = PromptCache(model), PromptCache(model)
    generate(model, [first], 4, eos_token_id=[], prompt_cache=a)
    held = a.ids.copy()
    keys = a.cache.keys[0].narrow(2, 0, len(held)).numpy().copy()
    b.copy_prefix(a, len(system))
    other = system + [9, 9]
    out = generate(model, [other], 6, eos_token_id=[], prompt_cache=b)
    assert b.reused == len(system)
    assert out[0].tolist() == generate(model, [other], 6, eos_token_id=[])[0].tolist()
    # the first cache still holds its whole sequence, untouched
    np.testing.assert_array_equal(a.ids, held)
    np.testing.assert_array_equal(a.cache.keys[0].narrow(2, 0, len(held)).numpy(), keys)
    with pytest.raises(ValueError, match="copy_prefix"):
        b.copy_prefix(a, len(held) + 1)


# the cache is first made as long as the model's context (128 here): growing it means going past
@pytest.mark.filterwarnings("ignore:generate.*max_position_embeddings")
def test_the_cache_grows_keeping_what_it_holds(model):
    pc = PromptCache(model)
    prompt = list(range(3, 20))
    generate(model, [prompt], 2, eos_token_id=[], prompt_cache=pc)
    small = pc.cache.max_length
    longer = prompt + [4] * (small + 10)          # more than the cache has room for
    out = generate(model, [longer], 3, eos_token_id=[], prompt_cache=pc)
    assert pc.cache.max_length > small and pc.reused == len(prompt)
    assert out[0].tolist() == generate(model, [longer], 3, eos_token_id=[])[0].tolist()


def test_a_prompt_cache_takes_one_sequence(model):
    with pytest.raises(gradient.errors.GenerationError, match="one sequence"):
        generate(model, [[1, 2], [3, 4]], 2, prompt_cache=PromptCache(model))


def test_a_generation_stopped_early_leaves_what_it_ran(model):
    from gradient.generation import generate_tokens
    pc = PromptCache(model)
    prompt = list(range(3, 40))
    steps = generate_tokens(model, [prompt], 20, eos_token_id=[], prompt_cache=pc)
    taken = [next(steps)[0] for _ in range(3)]     # the consumer stops after three tokens
    # (the stream is still alive: nothing closed it) the cache holds the prompt and the two
    # tokens fed back so far
    assert pc.ids.tolist() == prompt + taken[:2]
    generate(model, [prompt + taken + [7]], 2, eos_token_id=[], prompt_cache=pc)
    assert pc.reused == len(prompt) + 2
