"""Streaming text: pieces come out as soon as they are complete characters, and joined they
equal the decoded output, with a byte-level BPE whose tokens split emoji and CJK."""

import types

import numpy as np
import pytest

import gradient
from gradient.errors import GenerationError, ShapeError
from gradient.generation import generate, stream
from gradient.tokenizers import IncrementalDecoder

from .conftest import VOCAB, random_ids

TEXT = "猫が座った 🐈‍⬛ on the mat 😀😃 naïve café ☕ 中文字符 🎩"


class ScriptedModel:
    """A stand-in causal LM whose greedy continuation is ``script``, one token per forward;
    ``calls`` counts the forwards, so a test knows how many tokens exist when a piece arrives."""

    def __init__(self, script):
        self.script, self.calls = list(script), 0

    def parameters(self):
        return iter(())

    def new_cache(self, batch_size, max_length):
        return types.SimpleNamespace(length=0)

    def __call__(self, input_ids, cache=None, logits_to_keep=0, **kwargs):
        logits = np.zeros((input_ids.shape[0], 1, VOCAB), dtype=np.float32)
        logits[:, :, self.script[self.calls]] = 10.0
        self.calls += 1
        return types.SimpleNamespace(logits=gradient.tensor(logits))


def _complete(text):
    """What may be shown of a decoded text: all but an unfinished character at the end."""
    return text.rstrip("\ufffd")


def test_pieces_arrive_as_soon_as_characters_are_complete(byte_tokenizer):
    script = byte_tokenizer.encode(TEXT).ids
    decoded = [byte_tokenizer.decode(script[:n]) for n in range(1, len(script) + 1)]
    assert sum(t.endswith("\ufffd") for t in decoded) >= 5  # tokens do split characters
    model = ScriptedModel(script)
    pieces, shown = [], []
    for piece in stream(model, byte_tokenizer, [0, 1], max_new_tokens=len(script)):
        pieces.append(piece)
        shown.append((model.calls, "".join(pieces)))
    assert "".join(pieces) == TEXT
    assert all(piece and "\ufffd" not in piece for piece in pieces)
    # each piece is everything complete so far, at the step that completed it ...
    for calls, text in shown:
        assert text == _complete(decoded[calls - 1])
    # ... and every step that completed a character produced a piece
    grew = [n for n in range(len(script))
            if _complete(decoded[n]) != (_complete(decoded[n - 1]) if n else "")]
    assert [calls - 1 for calls, _ in shown] == grew


def test_stream_of_a_model_equals_the_decoded_output(gpt2_pair, byte_tokenizer):
    _, ours = gpt2_pair
    for seed, kwargs in ((0, {}), (1, dict(do_sample=True, seed=3, top_k=40))):
        ids = random_ids((1, 5), seed=seed)
        pieces = list(stream(ours, byte_tokenizer, ids, 48, **kwargs))
        new = generate(ours, ids, 48, **kwargs).numpy()[0, 5:].tolist()
        assert "".join(pieces) == byte_tokenizer.decode(new)
        assert len(pieces) < len(new)  # some tokens were held back or merged into one piece


def test_text_prompt_eos_and_stop_strings(byte_tokenizer):
    script = byte_tokenizer.encode(TEXT).ids
    prompt = "the cat"
    # eos: the stream ends with the eos token's text (skip_special_tokens is the tokenizer's)
    eos = script[6]
    end = script.index(eos) + 1
    pieces = list(stream(ScriptedModel(script), byte_tokenizer, prompt, 40, eos_token_id=eos))
    assert "".join(pieces) == byte_tokenizer.decode(script[:end])
    # a stop string stops the stream at the token that completes it, multi-byte ones too
    for stop in ("mat", "😃", "字符"):
        end = next(n for n in range(1, len(script) + 1)
                   if stop in byte_tokenizer.decode(script[:n]))
        pieces = list(stream(ScriptedModel(script), byte_tokenizer, prompt, len(script),
                             stop_strings=[stop, "never"]))
        assert "".join(pieces) == byte_tokenizer.decode(script[:end])
        assert "".join(pieces).endswith(stop)


def test_a_decode_function_is_enough_for_an_ids_prompt(byte_tokenizer):
    script = byte_tokenizer.encode(TEXT).ids
    pieces = stream(ScriptedModel(script), byte_tokenizer.decode, [1, 2, 3], len(script))
    assert "".join(pieces) == TEXT
    with pytest.raises(TypeError, match="encode"):
        stream(ScriptedModel(script), byte_tokenizer.decode, "text", 3)


def test_text_stream_keeps_the_leading_space_of_later_tokens():
    """A SentencePiece-style decoder drops the leading space of the first token it sees; the
    context tokens kept in the window stop that from eating the spaces between pieces."""
    vocab = ["▁Hello", "▁wor", "ld", "▁", "<0xE7>", "<0x8C>", "<0xAB>", "!", "<0xFF>", "▁ok"]

    def decode(ids):
        data = b"".join(bytes([int(vocab[i][3:5], 16)]) if vocab[i].startswith("<0x")
                        else vocab[i].replace("▁", " ").encode() for i in ids)
        text = data.decode("utf-8", errors="replace")
        return text[1:] if text.startswith(" ") else text

    ids = [0, 1, 2, 3, 4, 5, 6, 7, 3, 4, 5, 9, 8, 8, 1, 2, 4]
    class DecodeOnly:
        @staticmethod
        def decode(ids, skip_special_tokens=False):
            return decode(ids)

    text = IncrementalDecoder(DecodeOnly())
    pieces = [text.push(i) for i in ids]
    rest = text.flush()
    assert "".join(pieces) + rest == decode(ids) == (
        "Hello world 猫! \ufffd ok\ufffd\ufffd world\ufffd")
    assert pieces[:8] == ["Hello", " wor", "ld", " ", "", "", "猫", "!"]
    assert rest == "\ufffd"  # a lone lead byte at the end never completes
    assert len(text._ids) == 0
    # the window stays short however long the stream
    for i in [1, 2] * 500:
        text.push(i)
    assert len(text._ids) <= 2


def test_one_prompt_at_a_time(gpt2_pair, byte_tokenizer):
    _, ours = gpt2_pair
    with pytest.raises(ShapeError, match="one prompt"):
        stream(ours, byte_tokenizer, random_ids((2, 3)), 4)


def test_an_empty_text_prompt_says_so(gpt2_pair, byte_tokenizer):
    _, ours = gpt2_pair
    with pytest.raises(GenerationError, match="encodes to no tokens; give a non-empty prompt"):
        stream(ours, byte_tokenizer, "", 5)
