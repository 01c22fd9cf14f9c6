"""gradient.tokenizers.Tokenizer against transformers on the same directories.

Each directory is built in the test (builders.py): a ChatML one (SmolLM2/Qwen-like), a
Llama-3-like one (tokenizer.json adds BOS, no pad token) and GPT-2's vocab.json + merges.txt.
transformers' AutoTokenizer / GPT2TokenizerFast on the same files is the oracle for ids,
masks, decoding and special tokens.
"""

import json

import numpy as np
import pytest
from transformers import AutoTokenizer, GPT2TokenizerFast, PreTrainedTokenizerFast

import gradient
from gradient.errors import FileFormatError
from gradient.tokenizers import (BatchEncoding, Tokenizer, TokenizerError,
                                 TokenizerFileNotFoundError)

from .builders import (CHATML_TEMPLATE, SPECIALS, byte_level_backend, write_chatml_dir, write_gpt2_dir,
                       write_llama3_dir)
from .corpus import MULTILINGUAL, held_out_texts

TEXTS = held_out_texts() + MULTILINGUAL + ["<|im_start|>user\nhi<|im_end|>", "<|begin_of_text|>x"]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenizer_dirs")
    return {"chatml": write_chatml_dir(str(root / "chatml")),
            "llama3": write_llama3_dir(str(root / "llama3")),
            "gpt2": write_gpt2_dir(str(root / "gpt2"))}


@pytest.fixture(scope="module")
def pairs(dirs):
    """(ours, transformers') for each tokenizer.json directory."""
    return {name: (Tokenizer.from_pretrained(dirs[name]), AutoTokenizer.from_pretrained(dirs[name]))
            for name in ("chatml", "llama3")}


@pytest.fixture(scope="module")
def gpt2_pair(dirs):
    return Tokenizer.from_pretrained(dirs["gpt2"]), GPT2TokenizerFast.from_pretrained(dirs["gpt2"])


NAMES = ["chatml", "llama3"]


# ---------------------------------------------------------------------------------------------
# Special tokens and vocabulary
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_special_tokens_and_sizes_match_transformers(pairs, name):
    ours, hf = pairs[name]
    for attr in ("bos_token", "eos_token", "unk_token", "pad_token"):
        assert getattr(ours, attr) == getattr(hf, attr), attr
        assert getattr(ours, attr + "_id") == getattr(hf, attr + "_id"), attr
    assert ours.vocab_size == hf.vocab_size
    assert len(ours) == len(hf)
    assert ours.special_tokens_map == hf.special_tokens_map
    assert set(ours.all_special_ids) >= set(hf.all_special_ids)
    assert ours.get_vocab() == hf.get_vocab()


def test_special_token_values_chatml(pairs):
    ours, _ = pairs["chatml"]
    assert (ours.bos_token, ours.eos_token, ours.pad_token) == ("<|im_start|>", "<|im_end|>",
                                                                "<|im_end|>")
    assert ours.eos_token_id == ours.convert_tokens_to_ids("<|im_end|>")
    assert ours.convert_ids_to_tokens(ours.eos_token_id) == "<|im_end|>"
    assert ours.model_max_length == 8192
    assert "<|im_start|>" in ours.all_special_tokens


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("add_special_tokens", [True, False])
def test_encode_matches_transformers(pairs, name, add_special_tokens):
    ours, hf = pairs[name]
    for text in TEXTS:
        ids = ours.encode(text, add_special_tokens=add_special_tokens)
        assert ids == hf.encode(text, add_special_tokens=add_special_tokens), text
        assert ours.tokenize(text) == hf.tokenize(text)


def test_llama3_adds_bos_only(pairs):
    ours, _ = pairs["llama3"]
    ids = ours.encode("hello")
    assert ids[0] == ours.bos_token_id and ids[-1] != ours.eos_token_id   # add_eos_token ignored
    assert ours.encode("hello", add_special_tokens=False) == ids[1:]


@pytest.mark.parametrize("side", ["left", "right"])
def test_batch_padding_matches_transformers(pairs, side):
    ours, hf = pairs["chatml"]
    got = ours(TEXTS, padding=True, padding_side=side)
    want = hf(TEXTS, padding=True, padding_side=side)
    assert isinstance(got, BatchEncoding)
    assert got["input_ids"] == want["input_ids"]
    assert got["attention_mask"] == want["attention_mask"]
    assert got.input_ids is got["input_ids"]
    # The padding really is on the requested side.
    shortest = min(range(len(TEXTS)), key=lambda i: sum(got["attention_mask"][i]))
    mask = got["attention_mask"][shortest]
    assert mask[0 if side == "left" else -1] == 0


def test_padding_side_from_config_and_override(dirs):
    ours = Tokenizer.from_pretrained(dirs["chatml"], padding_side="left")
    hf = AutoTokenizer.from_pretrained(dirs["chatml"], padding_side="left")
    assert ours(["a", "b c d e"], padding=True)["input_ids"] == \
        hf(["a", "b c d e"], padding=True)["input_ids"]
    assert ours(["a", "b c d e"], padding=True)["attention_mask"][0][0] == 0


@pytest.mark.parametrize("kwargs", [
    dict(padding="max_length", max_length=40),
    dict(padding=True, pad_to_multiple_of=8),
    dict(padding="longest", truncation=True, max_length=6),
    dict(padding=False, truncation=True, max_length=3),
])
def test_padding_and_truncation_options_match_transformers(pairs, kwargs):
    ours, hf = pairs["chatml"]
    texts = TEXTS[:12]
    got, want = ours(texts, **kwargs), hf(texts, **kwargs)
    assert got["input_ids"] == want["input_ids"]
    assert got["attention_mask"] == want["attention_mask"]


@pytest.mark.parametrize("side", ["left", "right"])
def test_truncation_keeps_special_tokens_like_transformers(dirs, side):
    ours = Tokenizer.from_pretrained(dirs["llama3"], truncation_side=side)
    hf = AutoTokenizer.from_pretrained(dirs["llama3"], truncation_side=side)
    for max_length in (1, 2, 5, 17):
        got = ours(TEXTS, truncation=True, max_length=max_length)["input_ids"]
        assert got == hf(TEXTS, truncation=True, max_length=max_length)["input_ids"]
        assert all(len(row) <= max_length and row[0] == ours.bos_token_id for row in got)
    assert ours.encode(TEXTS[4], truncation=True, max_length=4) == \
        hf.encode(TEXTS[4], truncation=True, max_length=4)


def test_return_tensors(pairs):
    ours, hf = pairs["chatml"]
    want = hf(TEXTS, padding=True, return_tensors="np")
    got = ours(TEXTS, padding=True, return_tensors="gr")
    for key in ("input_ids", "attention_mask"):
        assert isinstance(got[key], gradient.Tensor)
        assert got[key].dtype == gradient.int64
        assert got[key].shape == want[key].shape
        np.testing.assert_array_equal(np.array(got[key].tolist()), want[key])
    also = ours(TEXTS, padding=True, return_tensors="gradient")["input_ids"]
    assert also.tolist() == got["input_ids"].tolist()
    arrays = ours(TEXTS, padding=True, return_tensors="np")
    assert arrays["input_ids"].dtype == np.int64
    np.testing.assert_array_equal(arrays["input_ids"], want["input_ids"])
    # One string: lists without a batch dimension, tensors with one.
    assert ours("hello world")["input_ids"] == hf("hello world")["input_ids"]
    single = ours("hello world", return_tensors="gr")["input_ids"]
    assert single.tolist() == [hf("hello world")["input_ids"]]
    assert "attention_mask" not in ours(["x"], return_attention_mask=False)


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("skip", [False, True])
def test_decode_matches_transformers(pairs, name, skip):
    ours, hf = pairs[name]
    ids = hf(TEXTS, padding=True)["input_ids"] if hf.pad_token else hf(TEXTS)["input_ids"]
    for row in ids:
        assert ours.decode(row, skip_special_tokens=skip) == hf.decode(row, skip_special_tokens=skip)
    assert ours.batch_decode(ids, skip_special_tokens=skip) == \
        hf.batch_decode(ids, skip_special_tokens=skip)


def test_decode_round_trips_and_accepts_tensors(pairs):
    ours, _ = pairs["llama3"]
    for text in TEXTS:
        assert ours.decode(ours.encode(text, add_special_tokens=False)) == text
        without_specials = text
        for special in SPECIALS:
            without_specials = without_specials.replace(special, "")
        assert ours.decode(ours.encode(text), skip_special_tokens=True) == without_specials
    ids = ours.encode("Hello world")
    assert ours.decode(gradient.tensor(ids, dtype=gradient.int64)) == ours.decode(ids)
    assert ours.decode(np.array(ids)) == ours.decode(ids)
    assert ours.decode(ids[1]) == ours.decode([ids[1]])
    batch = ours(["a b", "c"], padding=False)["input_ids"]
    assert ours.batch_decode(batch) == [ours.decode(batch[0]), ours.decode(batch[1])]
    with pytest.raises(TokenizerError, match="batch_decode"):
        ours.decode([[1, 2], [3, 4]])


# ---------------------------------------------------------------------------------------------
# GPT-2 layout: vocab.json + merges.txt alone
# ---------------------------------------------------------------------------------------------

def test_gpt2_files_match_gpt2tokenizerfast(gpt2_pair):
    ours, hf = gpt2_pair
    assert (ours.bos_token, ours.eos_token, ours.unk_token) == ("<|endoftext|>",) * 3
    assert (ours.bos_token_id, ours.eos_token_id, ours.unk_token_id, ours.pad_token_id) == \
        (hf.bos_token_id, hf.eos_token_id, hf.unk_token_id, hf.pad_token_id)
    assert (ours.vocab_size, len(ours)) == (hf.vocab_size, len(hf))
    for text in TEXTS + ["before<|endoftext|>after"]:
        ids = ours.encode(text)
        assert ids == hf.encode(text), text
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == \
                hf.decode(ids, skip_special_tokens=skip)
    assert ours.encode("x<|endoftext|>")[-1] == ours.eos_token_id      # matched as special


def test_gpt2_files_with_config_add_bos_token(tmp_path):
    directory = write_gpt2_dir(str(tmp_path), config={"add_bos_token": True,
                                                      "padding_side": "left"})
    ours, hf = Tokenizer.from_pretrained(directory), GPT2TokenizerFast.from_pretrained(directory)
    for text in TEXTS[:10]:
        assert ours.encode(text) == hf.encode(text)
    assert ours.encode("hi")[0] == ours.bos_token_id
    assert ours.padding_side == "left"


# ---------------------------------------------------------------------------------------------
# Other files and settings of a directory
# ---------------------------------------------------------------------------------------------

def test_legacy_special_tokens_map(tmp_path):
    """special_tokens_map.json overrides tokenizer_config.json when the config has no
    added_tokens_decoder (transformers v5's rule)."""
    write_chatml_dir(str(tmp_path))
    with open(tmp_path / "special_tokens_map.json", "w") as f:
        json.dump({"eos_token": {"content": "<|endoftext|>", "lstrip": False, "rstrip": False,
                                 "normalized": False, "single_word": False},
                   "pad_token": "<|reserved_0|>"}, f)
    ours = Tokenizer.from_pretrained(tmp_path)
    hf = PreTrainedTokenizerFast.from_pretrained(str(tmp_path))
    assert ours.eos_token == hf.eos_token == "<|endoftext|>"
    assert ours.pad_token_id == hf.pad_token_id
    assert ours(["a", "bb bb"], padding=True)["input_ids"] == hf(["a", "bb bb"], padding=True)["input_ids"]


def test_tokenizer_json_padding_section_names_the_pad_token(tmp_path):
    tk = byte_level_backend()
    tk.enable_padding(pad_id=tk.token_to_id("<|reserved_0|>"), pad_token="<|reserved_0|>",
                      direction="left")
    tk.enable_truncation(max_length=4)
    tk.save(str(tmp_path / "tokenizer.json"))
    ours = Tokenizer.from_pretrained(tmp_path)
    assert ours.pad_token == "<|reserved_0|>" and ours.padding_side == "left"
    long_text = "a fairly long sentence with many words in it"
    assert len(ours.encode(long_text)) > 4          # the file's truncation is not global state
    hf = PreTrainedTokenizerFast.from_pretrained(str(tmp_path))
    assert ours([long_text, "a"], padding=True)["input_ids"] == \
        hf([long_text, "a"], padding=True)["input_ids"]


def test_save_pretrained_loads_in_transformers_and_back(pairs, tmp_path):
    ours, hf = pairs["llama3"]
    ours.save_pretrained(tmp_path)
    again, hf2 = Tokenizer.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(str(tmp_path))
    messages = [{"role": "user", "content": "hi"}]
    for tok in (again, hf2):
        assert [tok.encode(t) for t in TEXTS] == [hf.encode(t) for t in TEXTS]
        assert (tok.bos_token_id, tok.eos_token_id) == (hf.bos_token_id, hf.eos_token_id)
        assert tok.apply_chat_template(messages, tokenize=False, date_string="1 Jan 2025") == \
            hf.apply_chat_template(messages, tokenize=False, date_string="1 Jan 2025")


def test_from_tokenizers_object_with_ids_and_add_bos(tmp_path):
    """The GGUF path: an in-memory tokenizers.Tokenizer plus settings given as ids."""
    backend = byte_level_backend()
    bos, eos = backend.token_to_id("<|begin_of_text|>"), backend.token_to_id("<|eot_id|>")
    tok = Tokenizer(backend, bos_token=bos, eos_token=eos, add_bos_token=True, add_eos_token=True,
                    chat_template=CHATML_TEMPLATE)
    assert (tok.bos_token, tok.eos_token) == ("<|begin_of_text|>", "<|eot_id|>")
    plain = tok.encode("hello world", add_special_tokens=False)
    assert tok.encode("hello world") == [bos] + plain + [eos]
    tok2 = Tokenizer(byte_level_backend(), bos_token=bos, add_bos_token=True)
    assert tok2.encode("hello world") == [bos] + plain
    assert tok2.bos_token_id == bos
    # Without add_*_token the backend's post-processor stays (this one adds nothing).
    assert Tokenizer(byte_level_backend(), bos_token=bos).encode("hello world") == plain
    with pytest.raises(TokenizerError, match="bos_token"):
        Tokenizer(byte_level_backend(), add_bos_token=True)


def test_special_tokens_missing_from_vocab_are_added_like_transformers(tmp_path):
    write_chatml_dir(str(tmp_path))
    with open(tmp_path / "tokenizer_config.json") as f:
        config = json.load(f)
    config["pad_token"] = "<pad>"                     # not in tokenizer.json
    with open(tmp_path / "tokenizer_config.json", "w") as f:
        json.dump(config, f)
    ours, hf = Tokenizer.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(str(tmp_path))
    assert ours.pad_token_id == hf.pad_token_id == len(ours) - 1
    assert len(ours) == len(hf) and ours.vocab_size == hf.vocab_size
    assert ours.encode("a<pad>b") == hf.encode("a<pad>b")


def test_setting_and_adding_special_tokens(pairs, dirs):
    ours = Tokenizer.from_pretrained(dirs["llama3"])
    hf = AutoTokenizer.from_pretrained(dirs["llama3"])
    assert ours.pad_token is None
    ours.pad_token = ours.eos_token
    assert ours.pad_token_id == ours.eos_token_id
    ours.pad_token_id = ours.bos_token_id
    assert ours.pad_token == ours.bos_token
    with pytest.raises(TokenizerError, match="add_special_tokens"):
        ours.pad_token = "<not-in-vocab>"
    n = ours.add_special_tokens({"pad_token": "<pad>", "additional_special_tokens": ["<tool>"]})
    assert n == hf.add_special_tokens({"pad_token": "<pad>",
                                       "additional_special_tokens": ["<tool>"]}) == 2
    assert (ours.pad_token_id, len(ours)) == (hf.pad_token_id, len(hf))
    assert ours.encode("x<tool>y") == hf.encode("x<tool>y")
    assert ours.decode(ours.encode("x<tool>y"), skip_special_tokens=True) == \
        hf.decode(hf.encode("x<tool>y"), skip_special_tokens=True)
    assert ours.add_tokens(["brandnewword"]) == hf.add_tokens(["brandnewword"]) == 1
    assert ours.encode("a brandnewword") == hf.encode("a brandnewword")


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

def test_missing_files_say_what_was_looked_for(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.model").write_bytes(b"\x00")
    with pytest.raises(TokenizerFileNotFoundError) as info:
        Tokenizer.from_pretrained(tmp_path)
    message = str(info.value)
    for expected in ("tokenizer.json", "vocab.json", "merges.txt", "config.json", "SentencePiece"):
        assert expected in message
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(TokenizerFileNotFoundError, match="not a directory"):
        Tokenizer.from_pretrained(tmp_path / "nope")
    (tmp_path / "vocab.json").write_text("{}")       # merges.txt still missing
    with pytest.raises(TokenizerFileNotFoundError, match="merges.txt"):
        Tokenizer.from_pretrained(tmp_path)


def test_corrupt_files_raise_file_format_errors(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(FileFormatError, match="tokenizer.json"):
        Tokenizer.from_pretrained(tmp_path)
    byte_level_backend().save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text("[1, 2]")
    with pytest.raises(FileFormatError, match="tokenizer_config.json"):
        Tokenizer.from_pretrained(tmp_path)


def test_padding_without_pad_token_says_how_to_set_one(pairs):
    ours, _ = pairs["llama3"]
    with pytest.raises(TokenizerError, match=r"tokenizer\.pad_token = tokenizer\.eos_token"):
        ours(["a", "b c"], padding=True)


def test_ragged_tensors_and_bad_arguments(pairs):
    ours, _ = pairs["chatml"]
    with pytest.raises(TokenizerError, match="padding=True"):
        ours(["a", "b c d"], return_tensors="gr")
    with pytest.raises(TokenizerError, match="return_tensors"):
        ours(["a"], return_tensors="pt")
    with pytest.raises(TokenizerError, match="padding_side"):
        ours(["a"], padding=True, padding_side="middle")
    with pytest.raises(TokenizerError, match="max_length"):
        Tokenizer(byte_level_backend())(["a"], truncation=True)
    with pytest.raises(TokenizerError, match="batch"):
        ours.encode(["a", "b"])
    with pytest.raises(TokenizerError, match="tokenizers.Tokenizer"):
        Tokenizer("tokenizer.json")


def test_gpt2_files_with_added_tokens_in_config(tmp_path):
    """Without tokenizer.json, tokenizer_config.json's added_tokens_decoder lists the added
    tokens; they must land on the ids it gives."""
    token = {"content": "<|tool|>", "lstrip": False, "rstrip": False, "normalized": False,
             "single_word": False, "special": True}
    directory = write_gpt2_dir(str(tmp_path / "ok"), config={"added_tokens_decoder": {"600": token}})
    ours, hf = Tokenizer.from_pretrained(directory), GPT2TokenizerFast.from_pretrained(directory)
    assert ours.convert_tokens_to_ids("<|tool|>") == hf.convert_tokens_to_ids("<|tool|>") == 600
    assert ours.encode("a<|tool|>b") == hf.encode("a<|tool|>b")
    assert ours.decode(ours.encode("a<|tool|>b"), skip_special_tokens=True) == "ab"
    directory = write_gpt2_dir(str(tmp_path / "bad"), config={"added_tokens_decoder": {"650": token}})
    with pytest.raises(FileFormatError, match="should have id 650"):
        Tokenizer.from_pretrained(directory)


def test_model_specific_tokens_and_split_special_tokens(tmp_path):
    directory = write_chatml_dir(str(tmp_path))
    path = tmp_path / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["image_token"] = "<|reserved_0|>"               # a model-specific named token
    config["chat_template"] = "{{ image_token }}|{{ messages[0].content }}"
    path.write_text(json.dumps(config))
    for split in (False, True):
        ours = Tokenizer.from_pretrained(directory, split_special_tokens=split)
        hf = AutoTokenizer.from_pretrained(directory, split_special_tokens=split)
        assert ours.special_tokens_map == hf.special_tokens_map
        assert ours.special_tokens_map["image_token"] == "<|reserved_0|>"
        messages = [{"role": "user", "content": "x"}]
        assert ours.apply_chat_template(messages, tokenize=False) == "<|reserved_0|>|x"
        assert ours.encode("a<|im_end|>b") == hf.encode("a<|im_end|>b")
        assert (ours.eos_token_id in ours.encode("a<|im_end|>b")) == (not split)


@pytest.mark.parametrize("name", NAMES)
def test_text_with_a_lone_surrogate_gets_a_tokenizer_error_saying_so(pairs, name):
    """A str holding an unpaired surrogate ("\\ud800", what a JSON escape or a bad decode can
    give) is no Unicode text: the tokenizers library refused it with a TypeError about its
    input's type (transformers' too); gradient says which character and what to do. A character
    past U+FFFF is one str character and encodes as transformers encodes it."""
    ours, hf = pairs[name]
    for call in (lambda t: ours.encode(t), lambda t: ours([t, "fine"]), ours.tokenize):
        with pytest.raises(TokenizerError, match="unpaired surrogate U\\+D800"):
            call("a\ud800b")
    assert ours.encode("emoji \U0001F600") == hf.encode("emoji \U0001F600")
