"""Shared fixtures: a tiny GPT-2 from transformers with random weights, saved with
``save_pretrained`` and loaded into gradient, and a byte-level BPE tokenizer over its vocab."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from gradient.models import GPT2LMHeadModel  # noqa: E402

VOCAB = 300


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """transformers' generate on a tiny model is 10-30x slower when torch's threads fight
    other processes for 2 cores; one thread for these tests, restored after each."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def gpt2_pair(tmp_path_factory):
    """(transformers model, gradient model) on the same weights. The config has no eos:
    generation runs to max_new_tokens unless a test passes an eos of its own."""
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=VOCAB, n_positions=256, n_embd=64, n_layer=2,
                                  n_head=4, bos_token_id=None, eos_token_id=None)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # larger than the default 0.02, so that greedy tokens vary
        for p in hf.parameters():
            if p.ndim > 1:
                p.normal_(0.0, 0.2)
    path = tmp_path_factory.mktemp("gpt2")
    hf.save_pretrained(path)
    return hf, GPT2LMHeadModel.from_pretrained(path)


@pytest.fixture(scope="session")
def byte_tokenizer():
    """A byte-level BPE (tokenizers library, as GPT-2's) with exactly VOCAB ids, trained on
    text with CJK and emoji so that its tokens split multi-byte characters."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    text = ["the cat sat on the mat, then the hat", "猫が座った 猫の帽子 🐈 🎩 🐈‍⬛",
            "naïve café ☕ déjà vu", "emoji 😀😃😄 and 中文字符 mixed with text"] * 20
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text, trainer)
    assert tok.get_vocab_size() == VOCAB
    return tok


def random_ids(shape, seed=0):
    """Prompt ids; never 0, which the tests use for padding."""
    return np.random.default_rng(seed).integers(1, VOCAB, shape)
