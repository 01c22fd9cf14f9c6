"""The speculative step alone: drafts the model agrees with are kept, the first it does not
ends them, the cache keeps only what was kept, and the schedule hears of it."""

import numpy as np
import pytest

import gradient
from gradient.generation import generate
from gradient.generation.draft_schedule import DraftSchedule
from gradient.generation.speculation import speculative_step

from ..hub.conftest import llama_dir  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def model(llama_dir):  # noqa: F811
    return gradient.hub.load(str(llama_dir))[0].eval()


@pytest.mark.parametrize("right", [0, 2, 4])
def test_the_drafts_the_model_would_choose_are_kept(model, right):
    prompt = [5, 17, 40, 9, 33]
    greedy = generate(model, [prompt], 6, eos_token_id=[])[0].tolist()[len(prompt):]
    # the model's own next tokens, the first `right` of them, then one it would not choose
    wrong = (greedy[right] + 1) % model.config.vocab_size
    proposal = np.array(greedy[:right] + [wrong], np.int64)
    cache = model.new_cache(1, 32)
    with gradient.no_grad():
        model(gradient.tensor([prompt[:-1]]), cache=cache)        # all but the last token
    schedule = DraftSchedule(4)
    heard = []
    update = schedule.update
    schedule.update = lambda drafted, kept, seconds=None: heard.append((drafted, kept)) or \
        update(drafted, kept, seconds)
    drafted, kept, scores = speculative_step(
        model, cache, np.array(prompt, np.int64), lambda ids, k: proposal[:k], schedule, 10)
    asked = len(drafted)
    assert asked == min(len(proposal), 3)          # DraftSchedule's first try: 3 drafts
    assert kept == min(right, asked)
    assert scores.shape == (asked + 1, model.config.vocab_size)
    assert int(scores[kept].argmax()) == greedy[kept]     # the model's own choice after them
    assert heard == [(asked, kept)]
    assert cache.length == len(prompt) + kept     # the last token and the kept drafts
