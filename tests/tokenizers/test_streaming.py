"""IncrementalDecoder: streamed pieces are whole characters and add up to the full decode.

The tokenizers are small on purpose: with a few hundred tokens, an emoji or a CJK character is
spread over several byte-level tokens (the tests check that it really is), which is the case
streaming has to get right. A SentencePiece-style tokenizer (Metaspace "▁" and byte fallback,
as in Llama 2) checks that spaces survive decoding token by token.
"""

import json

import pytest
from tokenizers import Tokenizer as BackendTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

import gradient
from gradient.tokenizers import ByteLevelBPE, IncrementalDecoder, Tokenizer

from .builders import byte_level_backend
from .corpus import training_text

STREAM_TEXTS = [
    "Hello 😀 world 👍🏽!",
    "👨‍👩‍👧‍👦🇫🇷🎉",
    "日本語のテキストと中文字符",
    "naïve café — ünïcödé, 한국어 😂😂",
    "plain ascii text\nwith lines\n",
    "  spaced   out  ",
]


def sentencepiece_style() -> Tokenizer:
    """A Llama-2-like tokenizer: "▁" for spaces, bytes as <0xNN> tokens for unknown characters."""
    backend = BackendTokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                  show_progress=False)
    backend.train_from_iterator([training_text()[:20000]], trainer)
    vocab = backend.get_vocab()
    for b in range(256):
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    merges = [tuple(m) for m in json.loads(backend.to_str())["model"]["merges"]]
    backend.model = models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True,
                               fuse_unk=True)
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    return Tokenizer(backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="module")
def tokenizers_under_test():
    byte_level = Tokenizer(byte_level_backend(), eos_token="<|im_end|>", bos_token="<|im_start|>")
    scratch = ByteLevelBPE.train(training_text(), vocab_size=400, special_tokens=["<|im_end|>"])
    return {"byte_level": byte_level, "scratch_bpe": scratch, "sentencepiece": sentencepiece_style()}


def encode(tok, text):
    return tok.encode(text) if isinstance(tok, ByteLevelBPE) else \
        tok.encode(text, add_special_tokens=False)


@pytest.mark.parametrize("name", ["byte_level", "scratch_bpe", "sentencepiece"])
def test_pieces_are_whole_characters_and_add_up(tokenizers_under_test, name):
    tok = tokenizers_under_test[name]
    split_characters = held_back = 0
    for text in STREAM_TEXTS:
        ids = encode(tok, text)
        stream = IncrementalDecoder(tok)
        pieces = [stream.push(i) for i in ids]
        assert not any("\ufffd" in piece for piece in pieces), (text, pieces)
        assert "".join(pieces) + stream.flush() == tok.decode(ids)
        # (Metaspace decoding drops the first leading space, so only byte-level round-trips.)
        assert tok.decode(ids) == (text[1:] if text.startswith(" ") and name == "sentencepiece"
                                   else text)
        split_characters += sum("\ufffd" in tok.decode([i]) for i in ids)
        held_back += pieces.count("")
    # The test means something only if characters really were cut between tokens.
    assert split_characters > 0 and held_back > 0


def test_leading_spaces_survive_with_metaspace(tokenizers_under_test):
    tok = tokenizers_under_test["sentencepiece"]
    ids = encode(tok, "the cat sat")
    stream = IncrementalDecoder(tok)
    pieces = [stream.push(i) for i in ids]
    assert "".join(pieces) == "the cat sat"
    assert any(piece.startswith(" ") for piece in pieces)       # decoded alone, " cat" -> "cat"


def test_skip_special_tokens(tokenizers_under_test):
    tok = tokenizers_under_test["byte_level"]
    ids = encode(tok, "<|im_start|>Hi 😀<|im_end|>")
    assert tok.eos_token_id in ids
    stream = IncrementalDecoder(tok, skip_special_tokens=True)
    text = "".join(stream.push(i) for i in ids) + stream.flush()
    assert text == "Hi 😀" == tok.decode(ids, skip_special_tokens=True)
    stream = IncrementalDecoder(tok)
    assert "".join(stream.push(i) for i in ids) == "<|im_start|>Hi 😀<|im_end|>"


def test_flush_returns_held_back_text_and_resets(tokenizers_under_test):
    tok = tokenizers_under_test["byte_level"]
    ids = encode(tok, "ok 😀")
    cut = next(n for n in range(len(ids), 0, -1) if tok.decode(ids[:n]).endswith("\ufffd"))
    stream = IncrementalDecoder(tok)
    shown = "".join(stream.push(i) for i in ids[:cut])
    assert shown == "ok "                       # the half emoji is held back ...
    assert stream.flush() == "\ufffd"           # ... and flushed as U+FFFD
    assert stream.push(ids[0]) == tok.decode(ids[:1])  # a fresh start


def test_push_accepts_lists_and_tensors(tokenizers_under_test):
    tok = tokenizers_under_test["byte_level"]
    ids = encode(tok, "日本語 and more")
    stream = IncrementalDecoder(tok)
    first = stream.push(ids[:3])
    rest = "".join(stream.push(gradient.tensor(i, dtype=gradient.int64)) for i in ids[3:])
    assert first + rest + stream.flush() == "日本語 and more"
