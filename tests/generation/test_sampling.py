"""Logits processors against transformers' classes of the same name, and token selection."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
lp = pytest.importorskip("transformers.generation.logits_process")

from gradient.generation import sampling  # noqa: E402


def _scores(shape=(4, 500), seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 3).astype(np.float32)


def _ids(shape=(4, 30), high=520, seed=1):  # some ids beyond the vocab of 500 (transformers too)
    return np.random.default_rng(seed).integers(0, high, shape)


CASES = {
    "repetition": (lambda: sampling.RepetitionPenaltyLogitsProcessor(1.3),
                   lambda: lp.RepetitionPenaltyLogitsProcessor(1.3)),
    "repetition<1": (lambda: sampling.RepetitionPenaltyLogitsProcessor(0.7),
                     lambda: lp.RepetitionPenaltyLogitsProcessor(0.7)),
    "repetition-ignore-int": (lambda: sampling.RepetitionPenaltyLogitsProcessor(1.5, 7),
                              lambda: lp.RepetitionPenaltyLogitsProcessor(1.5, 7)),
    "repetition-ignore-rows": (
        lambda: sampling.RepetitionPenaltyLogitsProcessor(1.5, np.array([0, 3, 12, 29])),
        lambda: lp.RepetitionPenaltyLogitsProcessor(1.5, torch.tensor([0, 3, 12, 29]))),
    "temperature": (lambda: sampling.TemperatureLogitsWarper(0.7),
                    lambda: lp.TemperatureLogitsWarper(0.7)),
    "temperature>1": (lambda: sampling.TemperatureLogitsWarper(1.9),
                      lambda: lp.TemperatureLogitsWarper(1.9)),
    "top-k": (lambda: sampling.TopKLogitsWarper(10), lambda: lp.TopKLogitsWarper(10)),
    "top-k>vocab": (lambda: sampling.TopKLogitsWarper(900), lambda: lp.TopKLogitsWarper(900)),
    "top-p": (lambda: sampling.TopPLogitsWarper(0.9), lambda: lp.TopPLogitsWarper(0.9)),
    "top-p-small": (lambda: sampling.TopPLogitsWarper(0.2), lambda: lp.TopPLogitsWarper(0.2)),
    "top-p-0": (lambda: sampling.TopPLogitsWarper(0.0), lambda: lp.TopPLogitsWarper(0.0)),
    "min-p": (lambda: sampling.MinPLogitsWarper(0.1), lambda: lp.MinPLogitsWarper(0.1)),
    "min-p-1": (lambda: sampling.MinPLogitsWarper(1.0), lambda: lp.MinPLogitsWarper(1.0)),
    # OpenAI's logit_bias is transformers' sequence bias for sequences of one token
    "logit-bias": (lambda: sampling.LogitBiasLogitsProcessor({3: -100.0, 499: 7.5, 42: 0.25}),
                   lambda: lp.SequenceBiasLogitsProcessor({(3,): -100.0, (499,): 7.5,
                                                           (42,): 0.25})),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_processor_equals_transformers(name, seed):
    ours, theirs = CASES[name]
    scores, ids = _scores(seed=seed), _ids(seed=seed + 10)
    before = scores.copy()
    out = ours()(ids, scores)
    ref = theirs()(torch.tensor(ids), torch.tensor(scores)).numpy()
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(scores, before)  # the input is not modified
    if name.startswith(("top", "min")):
        assert np.isfinite(out).any(axis=-1).all()  # at least one token always stays


@pytest.mark.parametrize("top_p", [0.0, 1e-6, 0.3, 0.9, 0.999, 0.99999])
@pytest.mark.parametrize("keep", [1, 3])
def test_top_p_equals_transformers_on_rows_a_model_gives(top_p, keep):
    """A vocabulary of 49,152 with a model's spread of logits, rows with ties (equal scores,
    and scores whose exponentials round equal) and -inf entries: the same bits."""
    rng = np.random.default_rng(int(top_p * 1e5) + keep)
    scores = (rng.standard_normal((6, 49152)) * 2.5).astype(np.float32)
    scores[1] = np.round(scores[1])                   # many equal scores
    scores[2, ::3] = -np.inf                          # tokens already removed
    scores[3] = np.float32(-30) + rng.integers(0, 3, 49152).astype(np.float32) * \
        np.float32(1e-6)                              # exponentials that round equal
    scores[4, :] = scores[4, 0]                       # one value throughout
    scores[5, :100] = np.float32(12.0)                # a flat top
    ours = sampling.TopPLogitsWarper(top_p, keep)(None, scores)
    theirs = lp.TopPLogitsWarper(top_p, min_tokens_to_keep=keep)(
        None, torch.tensor(scores)).numpy()
    # rows without ties: the same bits; with them, the tokens a stable sort keeps, and as
    # many as transformers keeps give or take one (torch's sort puts equal scores in an
    # order of its own, and its softmax adds a row in another order than NumPy's sum: a
    # token at the threshold may fall on the other side)
    np.testing.assert_array_equal(ours[[0, 2]], theirs[[0, 2]])
    assert (abs(np.isfinite(ours).sum(-1) - np.isfinite(theirs).sum(-1)) <= 1).all()
    np.testing.assert_array_equal(ours, _top_p_by_a_stable_sort(scores, top_p, keep))
    assert (np.isinf(ours) & ~np.isinf(scores)).any() or top_p > 0.9999


def _top_p_by_a_stable_sort(scores, top_p, keep):
    """transformers' steps on a stable sort, as written: sort, softmax, cumulative sum (in
    float64, each rounded to float32, as PyTorch's CPU cumsum), remove, scatter back."""
    order = np.argsort(scores, axis=-1, kind="stable")
    ordered = np.take_along_axis(scores, order, axis=-1)
    cumulative = np.cumsum(sampling.softmax(ordered), axis=-1, dtype=np.float64).astype(
        np.float32)
    remove = cumulative <= np.float32(1 - top_p)
    remove[..., -keep:] = False
    back = np.empty_like(remove)
    np.put_along_axis(back, order, remove, axis=-1)
    return np.where(back, np.float32(-np.inf), scores)


@pytest.mark.parametrize("top_p", [0.0, 0.5, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("keep", [1, 3])
def test_top_p_sorting_only_the_likely_tokens_removes_the_same(top_p, keep):
    """A model's rows (a few likely tokens, tens of thousands of unlikely ones) take the path
    that sorts only the likely tokens: the same tokens removed as transformers' steps on a
    stable sort, ties at the threshold included."""
    rng = np.random.default_rng(int(top_p * 100) + keep)
    scores = (rng.standard_normal((40, 49152)) * 2).astype(np.float32)
    for row in scores:
        head = rng.integers(0, 49152, 30)
        row[head] += rng.uniform(4, 18, 30).astype(np.float32)
    scores[::4, :8] = scores[::4, :8].max(-1, keepdims=True)     # a tie among the likeliest
    scores[1::4, ::5] = -np.inf
    warper = sampling.TopPLogitsWarper(top_p, keep)
    limit = np.float32(1 - top_p)
    fast = [warper._few(row, np.exp(row - row.max()), limit) is not None for row in scores]
    assert sum(fast) >= 36          # (the rest sort the whole row)
    np.testing.assert_array_equal(warper(None, scores),
                                  _top_p_by_a_stable_sort(scores, top_p, keep))


def test_processors_that_remove_do_remove():
    # Guards the equality test above against comparing two no-ops.
    scores = _scores()
    assert (sampling.TopKLogitsWarper(10)(None, scores) == -np.inf).sum(-1).tolist() == [490] * 4
    assert (sampling.TopPLogitsWarper(0.5)(None, scores) == -np.inf).all(-1).sum() == 0
    assert (sampling.TopPLogitsWarper(0.5)(None, scores) == -np.inf).sum() > 1000
    penalised = sampling.RepetitionPenaltyLogitsProcessor(2.0)(np.array([[3, 3, 7]] * 4), scores)
    assert (penalised != scores).sum() == 8


def test_presence_and_frequency_penalties_follow_openais_formula():
    """mu[j] - c[j] * frequency - (c[j] > 0) * presence, c[j] the times token j was generated
    (the prompt's positions and ids outside the vocabulary not counted), row by row."""
    scores, ids = _scores(seed=5), _ids(seed=6)
    for presence, frequency in ((0.6, 0.0), (0.0, 0.45), (-0.5, 1.5), (2.0, -1.5)):
        out = sampling.PresenceFrequencyPenaltyLogitsProcessor(presence, frequency, 9)(ids,
                                                                                        scores)
        expected = scores.astype(np.float64)
        for row in range(ids.shape[0]):
            for token in set(ids[row, 9:].tolist()):
                if token < scores.shape[1]:
                    c = ids[row, 9:].tolist().count(token)
                    expected[row, token] -= c * frequency + presence
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
        changed = {(r, t) for r, t in zip(*np.nonzero(out != scores))}
        assert changed == {(r, t) for r in range(ids.shape[0]) for t in set(ids[r, 9:].tolist())
                           if t < scores.shape[1]}


def test_chain_in_transformers_order():
    """build_processors applies penalty, temperature, top-k, top-p, min-p, in that order, as
    transformers' generate does (checked on input where the order changes the result)."""
    scores, ids = _scores(seed=3), _ids(seed=4, high=500)
    ours = sampling.build_processors(do_sample=True, temperature=0.6, top_k=40, top_p=0.8,
                                     min_p=0.05, repetition_penalty=1.4)
    assert [type(p).__name__ for p in ours] == [
        "RepetitionPenaltyLogitsProcessor", "TemperatureLogitsWarper", "TopKLogitsWarper",
        "TopPLogitsWarper", "MinPLogitsWarper"]
    theirs = lp.LogitsProcessorList([
        lp.RepetitionPenaltyLogitsProcessor(1.4), lp.TemperatureLogitsWarper(0.6),
        lp.TopKLogitsWarper(40), lp.TopPLogitsWarper(0.8), lp.MinPLogitsWarper(0.05)])
    np.testing.assert_array_equal(ours(ids, scores),
                                  theirs(torch.tensor(ids), torch.tensor(scores)).numpy())


def test_which_processors_are_active():
    assert len(sampling.build_processors()) == 0
    # OpenAI's settings apply in greedy decoding too, after the repetition penalty
    greedy = sampling.build_processors(repetition_penalty=1.1, logit_bias={5: 1.0},
                                       frequency_penalty=0.5, prompt_length=3)
    assert [type(p).__name__ for p in greedy] == [
        "RepetitionPenaltyLogitsProcessor", "LogitBiasLogitsProcessor",
        "PresenceFrequencyPenaltyLogitsProcessor"]
    assert len(sampling.build_processors(logit_bias={}, presence_penalty=0.0,
                                         frequency_penalty=0)) == 0
    # greedy: only the repetition penalty applies
    greedy = sampling.build_processors(do_sample=False, temperature=0.5, top_k=5, top_p=0.5,
                                       repetition_penalty=1.2)
    assert [type(p).__name__ for p in greedy] == ["RepetitionPenaltyLogitsProcessor"]
    # neutral settings add nothing (transformers' rules)
    assert len(sampling.build_processors(do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                         repetition_penalty=1.0)) == 0


@pytest.mark.parametrize("make", [
    lambda: sampling.TemperatureLogitsWarper(0.0), lambda: sampling.TemperatureLogitsWarper(-1.0),
    lambda: sampling.TopKLogitsWarper(0), lambda: sampling.TopKLogitsWarper(2.5),
    lambda: sampling.TopPLogitsWarper(1.5), lambda: sampling.MinPLogitsWarper(-0.1),
    lambda: sampling.RepetitionPenaltyLogitsProcessor(0.0),
    lambda: sampling.LogitBiasLogitsProcessor({-1: 1.0}),
    lambda: sampling.LogitBiasLogitsProcessor({"5": 1.0}),
    lambda: sampling.LogitBiasLogitsProcessor({5: float("nan")}),
    lambda: sampling.PresenceFrequencyPenaltyLogitsProcessor(float("inf")),
    lambda: sampling.PresenceFrequencyPenaltyLogitsProcessor(0.5, prompt_length=-1),
])
def test_bad_settings_raise(make):
    with pytest.raises(ValueError):
        make()


def test_a_draw_among_few_tokens_is_the_draw_among_all():
    """Where most tokens are -inf, the draw looks at the others only: the same token as the
    cumulative weights of the whole row give, for the same random number."""
    rng = np.random.default_rng(7)
    for trial in range(200):
        scores = (rng.standard_normal((2, 3000)) * 3).astype(np.float32)
        scores[:, rng.random(3000) < (0.99 if trial % 2 else 0.3)] = -np.inf
        scores[:, rng.integers(0, 3000, 2)] = 1.0          # (a finite token or two at least)
        drawn = sampling.select_tokens(scores, True, np.random.default_rng(trial))
        u = np.random.default_rng(trial).random(2)
        x = scores.astype(np.float64)
        cdf = np.cumsum(np.exp(x - x.max(-1, keepdims=True)), -1)
        assert drawn.tolist() == (cdf <= (u * cdf[:, -1])[:, None]).sum(-1).tolist()


def test_greedy_selection_takes_the_first_maximum():
    scores = np.array([[0.0, 2.0, 2.0, 1.0], [5.0, -np.inf, 5.0, 0.0]], dtype=np.float32)
    assert sampling.select_tokens(scores).tolist() == [1, 0]


def test_sampling_follows_the_distribution_and_never_draws_removed_tokens():
    logits = np.array([1.0, 0.0, -np.inf, 2.0, -1.0, -np.inf], dtype=np.float32)
    scores = np.tile(logits, (40000, 1))
    draws = sampling.select_tokens(scores, do_sample=True, rng=np.random.default_rng(0))
    freq = np.bincount(draws, minlength=6) / len(draws)
    expected = sampling.softmax(logits.astype(np.float64))
    assert freq[2] == 0 and freq[5] == 0
    np.testing.assert_allclose(freq, expected, atol=0.01)
    # the first token with zero probability is never drawn either
    first = np.tile(np.array([-np.inf, 0.0], dtype=np.float32), (1000, 1))
    assert (sampling.select_tokens(first, True, np.random.default_rng(1)) == 1).all()


def test_sampling_is_reproducible_with_a_seed():
    scores = _scores((8, 500))
    a = sampling.select_tokens(scores, True, np.random.default_rng(5))
    b = sampling.select_tokens(scores, True, np.random.default_rng(5))
    c = sampling.select_tokens(scores, True, np.random.default_rng(6))
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()


def test_sampling_rejects_rows_without_a_finite_score():
    scores = np.full((1, 4), -np.inf, dtype=np.float32)
    with pytest.raises(ValueError, match="no finite maximum"):
        sampling.select_tokens(scores, True, np.random.default_rng(0))
