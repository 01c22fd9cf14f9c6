"""gradient.tokenizers.bpe, the from-scratch byte-level BPE, against Hugging Face `tokenizers`.

The oracle is a `tokenizers` ByteLevel BPE built from the same vocab.json + merges.txt with GPT-2
settings (ByteLevel pre-tokenizer, add_prefix_space=False, use_regex=True; ByteLevel decoder):
both must give the same ids, in both directions (our files in their library, their files in ours).
"""

import json
import os

import pytest
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

from gradient.errors import FileFormatError, GradientError
from gradient.tokenizers import (ByteLevelBPE, TokenizerError, TokenizerFileNotFoundError,
                                 bytes_to_unicode, pre_tokenize, unicode_to_bytes)

from .corpus import MULTILINGUAL, held_out_texts, training_text

EOT = "<|endoftext|>"


def gpt2_style_tokenizers(directory, special_tokens=(EOT,)) -> Tokenizer:
    """The oracle: the `tokenizers` library's byte-level BPE on vocab.json + merges.txt."""
    tk = Tokenizer(models.BPE.from_file(os.path.join(directory, "vocab.json"),
                                        os.path.join(directory, "merges.txt")))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_tokens])
    return tk


@pytest.fixture(scope="module")
def corpus():
    return training_text()


@pytest.fixture(scope="module")
def trained(corpus):
    return ByteLevelBPE.train(corpus, vocab_size=1000, special_tokens=[EOT])


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    directory = tmp_path_factory.mktemp("our_bpe")
    trained.save(directory)
    return directory


def varied_texts(corpus):
    # Held-out strings, plus lines of the training text itself (seen words must match too).
    return held_out_texts() + MULTILINGUAL + corpus.split("\n")[:400:7]


# ---------------------------------------------------------------------------------------------
# Bytes and pre-tokenization
# ---------------------------------------------------------------------------------------------

def test_bytes_to_unicode_is_gpt2s_alphabet():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("A")] == "A"
    assert set(table.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    assert all(unicode_to_bytes()[c] == b for b, c in table.items())


def test_pre_tokenization_equals_tokenizers_bytelevel(corpus):
    """Our regex split, through bytes_to_unicode, equals the ByteLevel pre-tokenizer's."""
    oracle = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    table = bytes_to_unicode()
    texts = held_out_texts() + MULTILINGUAL + [corpus[:20000]] + corpus.split("\n")[:300]
    for text in texts:
        ours = ["".join(table[b] for b in word.encode("utf-8")) for word in pre_tokenize(text)]
        theirs = [word for word, _ in oracle.pre_tokenize_str(text)]
        assert ours == theirs, text
        assert "".join(pre_tokenize(text)) == text        # the split loses nothing


def test_pre_tokenization_gpt2_cases():
    assert pre_tokenize("don't I'LL") == ["don", "'t", " I", "'", "LL"]     # lower-case endings only
    assert pre_tokenize("a   b") == ["a", "  ", " b"]          # the last space joins the word
    assert pre_tokenize("end  \n") == ["end", "  \n"]
    assert pre_tokenize("x 123abc") == ["x", " 123", "abc"]


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

def test_train_reaches_vocab_size_with_special_tokens_last(trained):
    assert len(trained) == trained.vocab_size == 1000
    assert trained.special_tokens == {EOT: 999}
    assert len(trained.merges) == 1000 - 256 - 1
    assert all(trained.vocab[b] == bytes([b]) for b in range(256))
    # Every merged token is the concatenation of its pair, in learned order.
    for rank, (a, b) in enumerate(trained.merges):
        assert trained.vocab[256 + rank] == trained.vocab[a] + trained.vocab[b]
        assert a < 256 + rank and b < 256 + rank


def test_train_merges_most_frequent_pair_first():
    # "aaabdaaabac": pair counts are aa:4 (overlapping), ab:2, ... so "aa" is learned first.
    bpe = ByteLevelBPE.train("aaabdaaabac", vocab_size=257, min_frequency=1)
    assert bpe.merges == [(ord("a"), ord("a"))]
    # Word frequencies weight the counts: " cd" x3 beats " ab" x2, and the leading space merges.
    bpe = ByteLevelBPE.train(" ab ab cd cd cd", vocab_size=257)
    assert bpe.merges == [(ord(" "), ord("c"))]


def test_train_is_deterministic_and_accepts_iterables(corpus):
    chunks = corpus[:30000].split("\n\n")
    a = ByteLevelBPE.train(chunks, vocab_size=400)
    b = ByteLevelBPE.train(iter(chunks), vocab_size=400)
    assert a.merges == b.merges and a.vocab == b.vocab


def test_train_stops_when_pairs_are_rare():
    bpe = ByteLevelBPE.train("abc abc", vocab_size=10_000)
    assert 256 < len(bpe) < 270      # only pairs seen twice are worth merging


def test_train_does_not_learn_from_special_token_text():
    bpe = ByteLevelBPE.train(f"hello{EOT}" * 100, vocab_size=300, special_tokens=[EOT])
    assert not any(b"<|" in bpe.vocab[i] or b"|>" in bpe.vocab[i] for i in bpe.vocab)
    assert bpe.encode(f"hello{EOT}")[-1] == bpe.special_tokens[EOT]


# ---------------------------------------------------------------------------------------------
# Parity with the `tokenizers` library
# ---------------------------------------------------------------------------------------------

def test_our_files_load_in_tokenizers_and_give_the_same_ids(trained, saved, corpus):
    oracle = gpt2_style_tokenizers(saved)
    assert oracle.get_vocab_size() == len(trained)
    texts = varied_texts(corpus)
    for text in texts:
        ids = trained.encode(text)
        assert ids == oracle.encode(text).ids, text
        assert trained.decode(ids) == text
        assert oracle.decode(ids, skip_special_tokens=False) == text
    # A long stretch of the training text, in one call.
    big = corpus[:30000]
    assert trained.encode(big) == oracle.encode(big).ids
    # The tokens really merge: far fewer ids than bytes.
    assert len(trained.encode(big)) < 0.5 * len(big.encode("utf-8"))


def test_tokenizers_trained_files_load_here_and_give_the_same_ids(corpus, tmp_path):
    """The other direction: the `tokenizers` trainer's vocab.json + merges.txt (its own id order:
    special tokens first, then the alphabet sorted) read by ByteLevelBPE.load."""
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=[EOT, "<pad>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator([corpus], trainer)
    tk.model.save(str(tmp_path))
    ours = ByteLevelBPE.load(tmp_path)
    assert ours.special_tokens == {EOT: 0, "<pad>": 1}       # found as "not a byte, not a merge"
    assert len(ours) == tk.get_vocab_size()
    for text in varied_texts(corpus):
        ids = ours.encode(text)
        assert ids == tk.encode(text).ids, text
        assert ours.decode(ids) == text


def test_lowest_rank_merge_wins_not_leftmost(tmp_path):
    """With merges [(b, c), (a, b)], "abc" is a + bc: the earlier-learned merge applies first
    even though (a, b) is further left."""
    vocab = {i: bytes([i]) for i in range(256)}
    vocab[256], vocab[257] = b"bc", b"ab"
    bpe = ByteLevelBPE(vocab, [(ord("b"), ord("c")), (ord("a"), ord("b"))])
    assert bpe.encode("abc") == [ord("a"), 256]
    assert bpe.encode("abab") == [257, 257]
    bpe.save(tmp_path)
    assert gpt2_style_tokenizers(tmp_path, ()).encode("abc abab").ids == bpe.encode("abc abab")


# ---------------------------------------------------------------------------------------------
# Special tokens, save/load, errors
# ---------------------------------------------------------------------------------------------

def test_special_tokens_are_matched_split_and_skipped(trained):
    eot = trained.special_tokens[EOT]
    ids = trained.encode(f"a{EOT}b{EOT}")
    assert ids.count(eot) == 2 and ids[-1] == eot
    assert trained.decode(ids) == f"a{EOT}b{EOT}"
    assert trained.decode(ids, skip_special_tokens=True) == "ab"
    plain = trained.encode(EOT, split_special_tokens=True)
    assert eot not in plain and trained.decode(plain) == EOT


def test_save_load_round_trip(trained, saved):
    with open(os.path.join(saved, "merges.txt"), encoding="utf-8") as f:
        assert f.readline() == "#version: 0.2\n"
    with open(os.path.join(saved, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    assert vocab["Ġ"] == ord(" ") and vocab[EOT] == 999
    loaded = ByteLevelBPE.load(saved)
    assert loaded.merges == trained.merges
    assert loaded.vocab == trained.vocab
    assert loaded.special_tokens == trained.special_tokens
    text = "\n".join(held_out_texts())
    assert loaded.encode(text) == trained.encode(text)
    assert ByteLevelBPE.load(saved, special_tokens=[EOT]).special_tokens == {EOT: 999}


def test_vocabulary_lookups(trained):
    i = trained.encode(" the")[0]
    assert trained.id_to_token(i) == "Ġthe" and trained.token_to_id("Ġthe") == i
    assert trained.token_to_id(EOT) == 999 and trained.id_to_token(999) == EOT
    assert trained.token_to_id("not a token at all") is None
    assert trained.get_vocab()["Ġthe"] == i


def test_errors(tmp_path, trained):
    with pytest.raises(TokenizerError, match="too small"):
        ByteLevelBPE.train("abc", vocab_size=256, special_tokens=[EOT])
    with pytest.raises(TokenizerFileNotFoundError, match="merges.txt"):
        ByteLevelBPE.load(tmp_path)
    with pytest.raises(TokenizerError, match="not in the vocabulary"):
        trained.decode([5000])
    # A merge whose result is not in vocab.json.
    trained.save(tmp_path)
    with open(tmp_path / "merges.txt", "a", encoding="utf-8") as f:
        f.write("Ġthe zzz_not_a_token\n")
    with pytest.raises(FileFormatError, match="line"):
        ByteLevelBPE.load(tmp_path)
    with pytest.raises(TokenizerError, match="lacks"):
        ByteLevelBPE({0: b"\x00"})
    assert issubclass(TokenizerFileNotFoundError, FileNotFoundError)
    assert issubclass(TokenizerError, (GradientError, ValueError))
