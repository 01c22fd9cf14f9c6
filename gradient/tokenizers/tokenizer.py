"""`Tokenizer`: a Hugging Face ``tokenizers`` tokenizer with the transformers-style API around it.

The Rust ``tokenizers`` library does the string work (normalization, pre-tokenization, the
BPE/Unigram/WordPiece model, special tokens, decoders); this class adds what a model needs
around it, with the names transformers uses:

* loading a model directory: ``tokenizer.json`` (or GPT-2's ``vocab.json`` + ``merges.txt``),
  ``tokenizer_config.json``, ``special_tokens_map.json``, ``chat_template.jinja``;
* the named special tokens (``bos_token``, ``eos_token``, ``pad_token`` ... and their ids);
* batches padded left or right, with attention masks, as lists, NumPy arrays or gradient
  int64 tensors (``return_tensors="gr"``);
* chat templates (:mod:`gradient.tokenizers.chat_template`).

Loading follows transformers v5, so that ids, masks and prompts match
``transformers.AutoTokenizer.from_pretrained`` on the same directory (the tests compare them):

* With ``tokenizer.json``, its post-processor decides what ``add_special_tokens=True`` adds;
  ``add_bos_token``/``add_eos_token`` in tokenizer_config.json are ignored, as transformers does.
  Without it (GPT-2 layout), a post-processor is built from those two flags (default False).
* Named special tokens come from tokenizer_config.json. special_tokens_map.json (the legacy file)
  overrides them only when tokenizer_config.json has no ``added_tokens_decoder``.
* A named special token that is not yet an added token of the backend is added as a special
  one (GPT-2's ``<|endoftext|>`` keeps its vocab.json id and becomes special: it is matched in
  text and dropped by ``skip_special_tokens``).
* ``chat_template.jinja`` (and ``additional_chat_templates/*.jinja``) take priority over the
  ``chat_template`` entry of tokenizer_config.json.

Differences from transformers: ``apply_chat_template(tokenize=True)`` returns the ids (transformers
v5 returns a dict unless ``return_dict=False``; here ``return_dict=True`` asks for it), and a
``model_max_length`` of 1e20 or more (the "no limit" placeholder) reads as None.

Example::

    >>> tok = Tokenizer.from_pretrained("SmolLM2-135M-Instruct")   # a local directory
    >>> ids = tok.encode("Hello world")                            # a list of ints
    >>> tok.decode(ids)
    'Hello world'
    >>> tok.pad_token = tok.eos_token
    >>> batch = tok(["a", "longer text"], padding=True, padding_side="left", return_tensors="gr")
    >>> batch["input_ids"].shape, batch["attention_mask"].dtype
    (gradient.Size([2, 2]), gradient.int64)
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

import numpy as np
import tokenizers
from tokenizers import AddedToken, decoders, pre_tokenizers, processors

from ..dtypes import int64
from ..errors import FileFormatError
from ..io.atomic import atomic_write
from ..ops.creation import tensor as _tensor
from .chat_template import render_chat_template
from .errors import TokenizerError, TokenizerFileNotFoundError
from .surrogates import lone_surrogate

__all__ = ["Tokenizer", "BatchEncoding", "SPECIAL_TOKEN_NAMES"]

# The named special tokens every tokenizer may have (transformers' SPECIAL_TOKENS_ATTRIBUTES).
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                       "cls_token", "mask_token")

# tokenizer_config.json stores "no length limit" as int(1e30); read anything this large as None.
_NO_LIMIT = 10 ** 20

# GPT-2's vocab.json + merges.txt carry no settings; GPT2Tokenizer's defaults fill them in.
_GPT2_DEFAULT_TOKENS = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                        "unk_token": "<|endoftext|>"}

_RETURN_TENSORS = (None, "np", "gr", "gradient")


class BatchEncoding(dict):
    """The result of ``tokenizer(texts)``: a dict (``input_ids``, ``attention_mask``) that also
    reads as attributes, ``batch.input_ids``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no {name!r}; it holds {list(self)}") from None


def _token_content(value) -> str | None:
    """A special token as tokenizer_config.json or a caller gives it: a string, an AddedToken,
    or the ``{"content": ..., "__type": "AddedToken"}`` dict of the JSON files."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, AddedToken):
        return value.content
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    raise TokenizerError(f"a special token must be a string, an AddedToken or an id, got {value!r}")


def _is_token_value(value) -> bool:
    return isinstance(value, (str, AddedToken)) or (isinstance(value, dict) and "content" in value)


def _read_json(path: str) -> dict | None:
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FileFormatError(f"cannot parse {path}: {e}; the file should be UTF-8 JSON") from e
    if not isinstance(data, dict):
        raise FileFormatError(f"{path} should hold a JSON object, got {type(data).__name__}")
    return data


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _as_id_list(token_ids) -> list[int]:
    """One sequence of ids, from an int, a list, a NumPy array or a gradient tensor."""
    if hasattr(token_ids, "tolist"):
        token_ids = token_ids.tolist()
    if isinstance(token_ids, int):
        return [token_ids]
    token_ids = list(token_ids)
    if token_ids and isinstance(token_ids[0], (list, tuple)):
        raise TokenizerError(f"decode takes one sequence of ids, got a batch of {len(token_ids)}; "
                             f"use batch_decode for batches")
    return [int(i) for i in token_ids]


def _clean_up_tokenization(text: str) -> str:
    """Undo the spaces WordPiece-style decoding puts before punctuation and contractions."""
    for spaced, joined in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
                           (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"),
                           (" 're", "'re")):
        text = text.replace(spaced, joined)
    return text


class Tokenizer:
    """A ``tokenizers.Tokenizer`` plus special tokens, padding, decoding and a chat template.

    Most code gets one from :meth:`from_pretrained`. The constructor builds one from an
    in-memory ``tokenizers.Tokenizer`` (e.g. made from GGUF metadata); it takes ownership of
    that object and may add the special tokens to it.

    Args:
        tokenizer: the ``tokenizers.Tokenizer`` doing the work.
        bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token: the named
            special tokens, each a string, an id of the vocabulary, or None.
        additional_special_tokens: more special tokens (``<|im_start|>``, tool-call markers).
        model_special_tokens: model-specific named tokens (``{"image_token": "<image>"}``); chat
            templates see them as variables, like the standard ones.
        chat_template: a Jinja template string, or ``{name: template}`` for several.
        add_bos_token, add_eos_token: when either is given, replace the backend's
            post-processor by one that adds BOS and/or EOS around each sequence
            (GGUF's ``tokenizer.ggml.add_bos_token``). None keeps the backend's.
        padding_side, truncation_side: ``"right"`` or ``"left"``, the defaults for calls.
        model_max_length: the longest input the model takes; ``truncation=True`` uses it.
        clean_up_tokenization_spaces: remove spaces before punctuation when decoding
            (WordPiece-era setting; ignored for BPE models, as transformers does).
        split_special_tokens: encode special-token text in the input as ordinary text.

    Example::

        >>> import tokenizers
        >>> backend = tokenizers.Tokenizer.from_file("tokenizer.json")
        >>> tok = Tokenizer(backend, bos_token=1, eos_token="</s>", add_bos_token=True)
        >>> tok.encode("hi")[0] == tok.bos_token_id
        True
    """

    def __init__(self, tokenizer: tokenizers.Tokenizer, *,
                 bos_token=None, eos_token=None, unk_token=None, sep_token=None, pad_token=None,
                 cls_token=None, mask_token=None,
                 additional_special_tokens: Iterable = (),
                 model_special_tokens: dict[str, Any] | None = None,
                 chat_template: str | dict[str, str] | list[dict] | None = None,
                 add_bos_token: bool | None = None, add_eos_token: bool | None = None,
                 padding_side: str = "right", truncation_side: str = "right",
                 model_max_length: int | None = None,
                 clean_up_tokenization_spaces: bool = False,
                 split_special_tokens: bool = False,
                 name_or_path: str | None = None):
        if not isinstance(tokenizer, tokenizers.Tokenizer):
            raise TokenizerError(f"Tokenizer wraps a tokenizers.Tokenizer, got "
                                 f"{type(tokenizer).__name__}; use Tokenizer.from_pretrained(directory) "
                                 f"to load one from files")
        self._tokenizer = tokenizer
        # Padding and truncation are done per call here, never by the backend's global state,
        # which a tokenizer.json may have switched on.
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._tokenizer.encode_special_tokens = bool(split_special_tokens)
        self.name_or_path = name_or_path
        for option, side in (("padding_side", padding_side), ("truncation_side", truncation_side)):
            if side not in ("left", "right"):
                raise TokenizerError(f"{option} must be 'left' or 'right', got {side!r}")
        self.padding_side = padding_side
        self.truncation_side = truncation_side
        self.model_max_length = (None if model_max_length is None or model_max_length >= _NO_LIMIT
                                 else int(model_max_length))
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        if isinstance(chat_template, (list, tuple)):    # tokenizer_config.json's list form
            chat_template = {t["name"]: t["template"] for t in chat_template}
        self.chat_template = chat_template

        named = {"bos_token": bos_token, "eos_token": eos_token, "unk_token": unk_token,
                 "sep_token": sep_token, "pad_token": pad_token, "cls_token": cls_token,
                 "mask_token": mask_token, **(model_special_tokens or {})}
        self._named_tokens: dict[str, str | None] = {
            name: self._resolve_token(value, name) for name, value in named.items()}
        self._additional_special_tokens = list(dict.fromkeys(
            self._resolve_token(t, "additional_special_tokens") for t in additional_special_tokens))
        self._register_special_tokens([t for t in self._named_tokens.values() if t is not None]
                                      + self._additional_special_tokens)
        if add_bos_token is not None or add_eos_token is not None:
            self._set_post_processor(bool(add_bos_token), bool(add_eos_token))

    # ------------------------------------------------------------------------------------------
    # Loading and saving
    # ------------------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **overrides) -> "Tokenizer":
        """Load the tokenizer of a model directory (files already on disk; no download).

        Reads ``tokenizer.json`` or, failing that, GPT-2's ``vocab.json`` + ``merges.txt``, plus
        ``tokenizer_config.json``, ``special_tokens_map.json`` and ``chat_template.jinja`` when
        present. Keyword arguments override the files' settings (any constructor argument, e.g.
        ``padding_side="left"``, ``pad_token="<|endoftext|>"``).

        Example::

            >>> tok = Tokenizer.from_pretrained("models/Qwen2.5-0.5B-Instruct", padding_side="left")
        """
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise TokenizerFileNotFoundError(
                f"Tokenizer.from_pretrained: {directory!r} is not a directory; pass the local "
                f"directory that holds tokenizer.json (or vocab.json + merges.txt)")
        path = lambda name: os.path.join(directory, name)  # noqa: E731
        config = _read_json(path("tokenizer_config.json")) or {}
        special_map = _read_json(path("special_tokens_map.json")) or {}

        settings: dict[str, Any] = {"name_or_path": directory}
        if os.path.isfile(path("tokenizer.json")):
            backend = cls._load_tokenizer_json(path("tokenizer.json"))
            padding = backend.padding       # a tokenizer.json with padding on names its pad token
            if padding and padding.get("pad_token"):
                settings["pad_token"] = padding["pad_token"]
                settings["padding_side"] = padding.get("direction", "right")
        elif os.path.isfile(path("vocab.json")) and os.path.isfile(path("merges.txt")):
            backend = cls._load_gpt2_files(path("vocab.json"), path("merges.txt"),
                                           bool(config.get("add_prefix_space", False)))
            settings.update(_GPT2_DEFAULT_TOKENS)
            settings["add_bos_token"] = bool(config.get("add_bos_token", False))
            settings["add_eos_token"] = bool(config.get("add_eos_token", False))
        else:
            present = sorted(os.listdir(directory))
            hint = (" tokenizer.model (SentencePiece) alone is not supported: convert it once with "
                    "transformers (AutoTokenizer.from_pretrained(d).save_pretrained(d)) to get "
                    "tokenizer.json." if "tokenizer.model" in present else "")
            raise TokenizerFileNotFoundError(
                f"Tokenizer.from_pretrained: no tokenizer files in {directory!r}: looked for "
                f"tokenizer.json, or vocab.json together with merges.txt; the directory holds "
                f"{present if present else 'nothing'}.{hint}")

        for key in ("padding_side", "truncation_side", "model_max_length",
                    "clean_up_tokenization_spaces", "split_special_tokens", "chat_template"):
            if key in config:
                settings[key] = config[key]

        # Named special tokens: tokenizer_config.json, then (legacy) special_tokens_map.json.
        # An explicit null ("pad_token": null) unsets a default.
        named = {k: v for k, v in config.items() if k.endswith("_token")
                 and (_is_token_value(v) or (v is None and k in SPECIAL_TOKEN_NAMES))}
        additional = list(config.get("additional_special_tokens") or [])
        extra = config.get("extra_special_tokens")
        if isinstance(extra, dict):
            named.update(extra)
        elif extra:
            additional += list(extra)
        if "added_tokens_decoder" not in config:
            named.update({k: v for k, v in special_map.items()
                          if k.endswith("_token") and _is_token_value(v)})
            additional += [t for t in special_map.get("additional_special_tokens") or []
                           if _token_content(t) not in map(_token_content, additional)]
        settings.update({k: v for k, v in named.items() if k in SPECIAL_TOKEN_NAMES})
        model_specific = {k: v for k, v in named.items() if k not in SPECIAL_TOKEN_NAMES}
        if model_specific:
            settings["model_special_tokens"] = model_specific
        if additional:
            settings["additional_special_tokens"] = additional

        # Without tokenizer.json, the added tokens are listed only in tokenizer_config.json.
        if not os.path.isfile(path("tokenizer.json")):
            cls._add_config_tokens(backend, config.get("added_tokens_decoder") or {},
                                   path("tokenizer_config.json"))

        templates = {}
        if os.path.isfile(path("chat_template.jinja")):
            templates["default"] = _read_text(path("chat_template.jinja"))
        extra_dir = path("additional_chat_templates")
        if os.path.isdir(extra_dir):
            for name in sorted(os.listdir(extra_dir)):
                if name.endswith(".jinja"):
                    templates[name[:-len(".jinja")]] = _read_text(os.path.join(extra_dir, name))
        if templates:
            settings["chat_template"] = (templates["default"] if list(templates) == ["default"]
                                         else templates)

        settings.update(overrides)
        return cls(backend, **settings)

    @staticmethod
    def _load_tokenizer_json(path: str) -> tokenizers.Tokenizer:
        try:
            return tokenizers.Tokenizer.from_file(path)
        except Exception as e:     # the Rust side raises a bare Exception
            raise FileFormatError(f"cannot load {path} with the tokenizers library "
                                  f"({tokenizers.__version__}): {e}") from e

    @staticmethod
    def _load_gpt2_files(vocab_path: str, merges_path: str, add_prefix_space: bool):
        """GPT-2's two files, set up as transformers' GPT2Tokenizer does: byte-level BPE with the
        GPT-2 regex, no unknown token, the ByteLevel decoder."""
        try:
            vocab, merges = tokenizers.models.BPE.read_file(vocab_path, merges_path)
            model = tokenizers.models.BPE(vocab, merges, dropout=None, continuing_subword_prefix="",
                                          end_of_word_suffix="", fuse_unk=False)
        except Exception as e:
            raise FileFormatError(f"cannot load {vocab_path} + {merges_path} as a byte-level BPE: "
                                  f"{e}") from e
        backend = tokenizers.Tokenizer(model)
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        backend.decoder = decoders.ByteLevel()
        return backend

    @staticmethod
    def _add_config_tokens(backend: tokenizers.Tokenizer, added_tokens_decoder: dict, source: str):
        """Add tokenizer_config.json's ``added_tokens_decoder`` to a backend built from
        vocab.json + merges.txt, checking each lands on the id the file gives it."""
        for token_id, spec in sorted(added_tokens_decoder.items(), key=lambda item: int(item[0])):
            spec = {k: v for k, v in spec.items() if k != "__type"}
            token = AddedToken(**spec)
            (backend.add_special_tokens if token.special else backend.add_tokens)([token])
            got = backend.token_to_id(token.content)
            if got != int(token_id):
                raise FileFormatError(f"{source}: added token {token.content!r} should have id "
                                      f"{token_id}, but the vocabulary gives it id {got}")

    def save_pretrained(self, directory: str | os.PathLike) -> tuple[str, str]:
        """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``directory``.

        Both :meth:`from_pretrained` and transformers' ``AutoTokenizer.from_pretrained`` load
        the result. Returns the two paths.
        """
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        json_path = os.path.join(directory, "tokenizer.json")
        config_path = os.path.join(directory, "tokenizer_config.json")
        with atomic_write(json_path) as f:
            f.write(self._tokenizer.to_str(pretty=True).encode("utf-8"))
        config: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast"}
        config.update({name: value for name, value in self._named_tokens.items()
                       if value is not None})
        if self._additional_special_tokens:
            config["additional_special_tokens"] = list(self._additional_special_tokens)
        config.update(padding_side=self.padding_side, truncation_side=self.truncation_side,
                      clean_up_tokenization_spaces=self.clean_up_tokenization_spaces)
        if self._tokenizer.encode_special_tokens:
            config["split_special_tokens"] = True
        if self.model_max_length is not None:
            config["model_max_length"] = self.model_max_length
        if isinstance(self.chat_template, dict):
            config["chat_template"] = [{"name": k, "template": v}
                                       for k, v in self.chat_template.items()]
        elif self.chat_template is not None:
            config["chat_template"] = self.chat_template
        with atomic_write(config_path) as f:
            f.write(json.dumps(config, indent=2, ensure_ascii=False).encode("utf-8"))
        return json_path, config_path

    # ------------------------------------------------------------------------------------------
    # Special tokens
    # ------------------------------------------------------------------------------------------

    def _resolve_token(self, value, name: str) -> str | None:
        """A special-token setting as its string; an int is an id of the vocabulary."""
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            token = self._tokenizer.id_to_token(int(value))
            if token is None:
                raise TokenizerError(f"{name}: id {int(value)} is not in the vocabulary "
                                     f"(size {self._tokenizer.get_vocab_size(True)})")
            return token
        return _token_content(value)

    def _register_special_tokens(self, contents: list[str]) -> None:
        """Make each token an added special token of the backend unless it already is an added
        token (a token of the model vocabulary keeps its id)."""
        added = {t.content for t in self._tokenizer.get_added_tokens_decoder().values()}
        new = [AddedToken(t, special=True, normalized=False)
               for t in dict.fromkeys(contents) if t not in added]
        if new:
            self._tokenizer.add_special_tokens(new)

    def _set_post_processor(self, add_bos: bool, add_eos: bool) -> None:
        bos, eos = self.bos_token, self.eos_token
        if add_bos and bos is None:
            raise TokenizerError("add_bos_token=True needs a bos_token; pass bos_token=...")
        if add_eos and eos is None:
            raise TokenizerError("add_eos_token=True needs an eos_token; pass eos_token=...")
        single = " ".join(([f"{bos}:0"] if add_bos else []) + ["$A:0"] + ([f"{eos}:0"] if add_eos else []))
        pair = single + " " + " ".join(([f"{bos}:1"] if add_bos else []) + ["$B:1"]
                                       + ([f"{eos}:1"] if add_eos else []))
        specials = [(t, self._tokenizer.token_to_id(t))
                    for t, on in ((bos, add_bos), (eos, add_eos)) if on]
        self._tokenizer.post_processor = processors.TemplateProcessing(
            single=single, pair=pair, special_tokens=list(dict.fromkeys(specials)))

    def _get_named(self, name: str) -> str | None:
        return self._named_tokens.get(name)

    def _set_named(self, name: str, value) -> None:
        token = self._resolve_token(value, name)
        if token is not None and self._tokenizer.token_to_id(token) is None:
            raise TokenizerError(
                f"{name} = {token!r}: that token is not in the vocabulary. Use an existing token "
                f"(e.g. tokenizer.pad_token = tokenizer.eos_token), or add a new one with "
                f"tokenizer.add_special_tokens({{{name!r}: {token!r}}}) and resize the model's "
                f"embeddings to len(tokenizer)")
        self._named_tokens[name] = token
        if token is not None:
            self._register_special_tokens([token])

    def _id_of(self, token: str | None) -> int | None:
        return None if token is None else self._tokenizer.token_to_id(token)

    bos_token = property(lambda self: self._get_named("bos_token"),
                         lambda self, v: self._set_named("bos_token", v),
                         doc="The beginning-of-sequence token (str or None); settable.")
    eos_token = property(lambda self: self._get_named("eos_token"),
                         lambda self, v: self._set_named("eos_token", v),
                         doc="The end-of-sequence token (str or None); settable.")
    unk_token = property(lambda self: self._get_named("unk_token"),
                         lambda self, v: self._set_named("unk_token", v),
                         doc="The unknown token (str or None); settable.")
    sep_token = property(lambda self: self._get_named("sep_token"),
                         lambda self, v: self._set_named("sep_token", v),
                         doc="The separator token (str or None); settable.")
    pad_token = property(lambda self: self._get_named("pad_token"),
                         lambda self, v: self._set_named("pad_token", v),
                         doc="The padding token (str or None); settable, e.g. "
                             "``tok.pad_token = tok.eos_token``.")
    cls_token = property(lambda self: self._get_named("cls_token"),
                         lambda self, v: self._set_named("cls_token", v),
                         doc="The classification token (str or None); settable.")
    mask_token = property(lambda self: self._get_named("mask_token"),
                          lambda self, v: self._set_named("mask_token", v),
                          doc="The mask token (str or None); settable.")

    bos_token_id = property(lambda self: self._id_of(self.bos_token),
                            lambda self, v: self._set_named("bos_token", v))
    eos_token_id = property(lambda self: self._id_of(self.eos_token),
                            lambda self, v: self._set_named("eos_token", v))
    unk_token_id = property(lambda self: self._id_of(self.unk_token),
                            lambda self, v: self._set_named("unk_token", v))
    sep_token_id = property(lambda self: self._id_of(self.sep_token),
                            lambda self, v: self._set_named("sep_token", v))
    pad_token_id = property(lambda self: self._id_of(self.pad_token),
                            lambda self, v: self._set_named("pad_token", v))
    cls_token_id = property(lambda self: self._id_of(self.cls_token),
                            lambda self, v: self._set_named("cls_token", v))
    mask_token_id = property(lambda self: self._id_of(self.mask_token),
                             lambda self, v: self._set_named("mask_token", v))

    @property
    def special_tokens_map(self) -> dict[str, str]:
        """The named special tokens that are set: ``{"bos_token": "<s>", ...}``."""
        return {name: token for name, token in self._named_tokens.items() if token is not None}

    @property
    def additional_special_tokens(self) -> list[str]:
        return list(self._additional_special_tokens)

    @property
    def all_special_tokens(self) -> list[str]:
        """Every special token: the named ones, then the additional ones (no duplicates)."""
        return list(dict.fromkeys(list(self.special_tokens_map.values())
                                  + self._additional_special_tokens))

    @property
    def all_special_ids(self) -> list[int]:
        return [self._tokenizer.token_to_id(t) for t in self.all_special_tokens]

    def add_special_tokens(self, tokens: dict[str, Any]) -> int:
        """Add named special tokens (``{"pad_token": "<pad>"}``) and/or
        ``{"additional_special_tokens": [...]}``; returns how many new ids the vocabulary got
        (resize the model's embeddings to ``len(tokenizer)`` if that is not 0)."""
        before = len(self)
        for name, value in tokens.items():
            if name in ("additional_special_tokens", "extra_special_tokens"):
                contents = [_token_content(t) for t in value]
                self._register_special_tokens(contents)
                self._additional_special_tokens = list(dict.fromkeys(
                    self._additional_special_tokens + contents))
            elif name.endswith("_token"):
                content = self._resolve_token(value, name)
                self._register_special_tokens([content])
                self._named_tokens[name] = content
            else:
                raise TokenizerError(f"add_special_tokens: {name!r} is not a special-token name; use "
                                     f"one of {list(SPECIAL_TOKEN_NAMES)} or "
                                     f"'additional_special_tokens'")
        return len(self) - before

    def add_tokens(self, tokens: Iterable[str], special_tokens: bool = False) -> int:
        """Add ordinary (or special) tokens to the vocabulary; returns how many were new."""
        tokens = list(tokens)
        if special_tokens:
            return self._tokenizer.add_special_tokens(tokens)
        return self._tokenizer.add_tokens(tokens)

    # ------------------------------------------------------------------------------------------
    # Vocabulary
    # ------------------------------------------------------------------------------------------

    @property
    def backend_tokenizer(self) -> tokenizers.Tokenizer:
        """The wrapped ``tokenizers.Tokenizer``."""
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary, without added tokens (as in transformers)."""
        return self._tokenizer.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        """Size of the full vocabulary, added tokens included: the embedding rows a model needs."""
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self._tokenizer.get_vocab(with_added_tokens=True)

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]):
        """Token string(s) -> id(s); an unknown token gives the unk id (None without one)."""
        if isinstance(tokens, str):
            token_id = self._tokenizer.token_to_id(tokens)
            return self.unk_token_id if token_id is None else token_id
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """Id(s) -> token string(s) as the vocabulary spells them (``"Ġworld"``)."""
        if isinstance(ids, (int, np.integer)):
            return self._tokenizer.id_to_token(int(ids))
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._tokenizer.id_to_token(i) for i in _as_id_list(ids) if i not in special]

    def tokenize(self, text: str, add_special_tokens: bool = False) -> list[str]:
        """The token strings of ``text`` (``["Hello", "Ġworld"]``)."""
        return self._encodings([text], add_special_tokens)[0].tokens

    # ------------------------------------------------------------------------------------------
    # Encoding
    # ------------------------------------------------------------------------------------------

    def _encode_many(self, texts: list[str], add_special_tokens: bool,
                     max_length: int | None) -> list[list[int]]:
        """Ids of each text; with ``max_length``, truncated so that the result, special tokens
        included, is at most that long (the special tokens themselves are kept)."""
        if max_length is None:
            return [e.ids for e in self._encodings(texts, add_special_tokens)]
        n_special = self._tokenizer.num_special_tokens_to_add(False) if add_special_tokens else 0
        if max_length < n_special:
            raise TokenizerError(f"max_length={max_length} leaves no room: this tokenizer adds "
                                 f"{n_special} special tokens to each sequence")
        out = []
        for encoding in self._encodings(texts, False):
            encoding.truncate(max_length - n_special, direction=self.truncation_side)
            if add_special_tokens:
                encoding = self._tokenizer.post_process(encoding, add_special_tokens=True)
            out.append(encoding.ids)
        return out

    def _encodings(self, texts: list[str], add_special_tokens: bool) -> list:
        """The ``tokenizers`` library's encodings of ``texts``; a TokenizerError for a text
        holding a lone surrogate (``"\\ud800"``: no Unicode character, which the library
        refuses with a TypeError about its input's type)."""
        try:
            return self._tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
        except TypeError:
            lone = lone_surrogate(list(texts))
            if lone is None:
                raise
            raise TokenizerError(f"the text holds the unpaired surrogate U+{ord(lone):04X}, "
                                 f"which is no Unicode character: decode its bytes as UTF-8 (a "
                                 f"character past U+FFFF is one str character, not a surrogate "
                                 f"pair)") from None

    def _truncation_length(self, truncation, max_length) -> int | None:
        if not truncation or truncation == "do_not_truncate":
            return None
        if max_length is None:
            max_length = self.model_max_length
        if max_length is None:
            raise TokenizerError("truncation=True needs a length: pass max_length=..., or set "
                                 "tokenizer.model_max_length")
        return int(max_length)

    def encode(self, text: str, add_special_tokens: bool = True, truncation: bool = False,
               max_length: int | None = None) -> list[int]:
        """Token ids of one text. ``add_special_tokens`` adds what the tokenizer adds around a
        sequence (a BOS for Llama, nothing for GPT-2).

        Example::

            >>> tok.encode("Hello world", add_special_tokens=False)    # GPT-2's ids
            [15496, 995]
        """
        if not isinstance(text, str):
            raise TokenizerError(f"encode takes one string, got {type(text).__name__}; call the "
                                 f"tokenizer itself, tokenizer(texts), for a batch")
        return self._encode_many([text], add_special_tokens,
                                 self._truncation_length(truncation, max_length))[0]

    def __call__(self, text: str | list[str], *, add_special_tokens: bool = True,
                 padding: bool | str = False, truncation: bool | str = False,
                 max_length: int | None = None, pad_to_multiple_of: int | None = None,
                 padding_side: str | None = None, return_tensors: str | None = None,
                 return_attention_mask: bool = True) -> BatchEncoding:
        """Encode a text or a batch of texts: ``{"input_ids", "attention_mask"}``.

        Args:
            padding: False (no padding), True or ``"longest"`` (pad to the longest sequence),
                ``"max_length"`` (pad to ``max_length``).
            truncation: True cuts sequences to ``max_length`` (default ``model_max_length``).
            pad_to_multiple_of: round the padded length up to a multiple of this.
            padding_side: ``"left"`` (for generation: the last position is the last real token)
                or ``"right"``; default ``self.padding_side``.
            return_tensors: None for lists, ``"np"`` for NumPy int64 arrays, ``"gr"`` (or
                ``"gradient"``) for gradient int64 tensors. Tensors always have a batch dimension.

        Example::

            >>> tok(["a", "b c d"], padding=True, padding_side="left")["attention_mask"]
            [[0, 0, 1], [1, 1, 1]]
        """
        batched = not isinstance(text, str)
        texts = list(text) if batched else [text]
        if not all(isinstance(t, str) for t in texts):
            raise TokenizerError("tokenizer(text): text must be a string or a list of strings, got "
                                 f"{[type(t).__name__ for t in texts if not isinstance(t, str)][:1]}")
        if return_tensors not in _RETURN_TENSORS:
            raise TokenizerError(f"return_tensors={return_tensors!r}: use None (lists), 'np' or "
                                 f"'gr' (gradient tensors)")
        side = padding_side or self.padding_side
        if side not in ("left", "right"):
            raise TokenizerError(f"padding_side must be 'left' or 'right', got {side!r}")

        ids = self._encode_many(texts, add_special_tokens,
                                self._truncation_length(truncation, max_length))
        masks = [[1] * len(row) for row in ids]

        if padding and padding != "do_not_pad":
            if self.pad_token_id is None:
                raise TokenizerError(
                    "padding was requested but this tokenizer has no pad token. Set one, e.g. "
                    "tokenizer.pad_token = tokenizer.eos_token (the attention mask hides the "
                    "padding), or add one with tokenizer.add_special_tokens({'pad_token': '<pad>'}) "
                    "and resize the model's embeddings")
            if padding == "max_length":
                target = max_length if max_length is not None else self.model_max_length
                if target is None:
                    raise TokenizerError("padding='max_length' needs max_length=... (or "
                                         "tokenizer.model_max_length)")
            elif padding is True or padding == "longest":
                target = max((len(row) for row in ids), default=0)
            else:
                raise TokenizerError(f"padding={padding!r}: use False, True/'longest' or 'max_length'")
            if pad_to_multiple_of:
                target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
            pad = self.pad_token_id
            for i, row in enumerate(ids):
                n = target - len(row)
                if n > 0:
                    ids[i] = [pad] * n + row if side == "left" else row + [pad] * n
                    masks[i] = [0] * n + masks[i] if side == "left" else masks[i] + [0] * n

        out = BatchEncoding(input_ids=self._finish(ids, return_tensors, batched))
        if return_attention_mask:
            out["attention_mask"] = self._finish(masks, return_tensors, batched)
        return out

    @staticmethod
    def _finish(rows: list[list[int]], return_tensors: str | None, batched: bool):
        if return_tensors is None:
            return rows if batched else rows[0]
        lengths = sorted({len(row) for row in rows})
        if len(lengths) > 1:
            raise TokenizerError(f"return_tensors={return_tensors!r} needs sequences of one length, "
                                 f"got lengths from {lengths[0]} to {lengths[-1]}; pass padding=True "
                                 f"(and/or truncation=True, max_length=...)")
        array = np.array(rows, dtype=np.int64).reshape(len(rows), lengths[0] if lengths else 0)
        return array if return_tensors == "np" else _tensor(array, dtype=int64)

    # ------------------------------------------------------------------------------------------
    # Decoding
    # ------------------------------------------------------------------------------------------

    def decode(self, token_ids, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool | None = None) -> str:
        """Text of one sequence of ids (a list, an int, a NumPy array or a 1-d gradient tensor).

        Example::

            >>> tok.decode(tok.encode("Hello world"), skip_special_tokens=True)
            'Hello world'
        """
        text = self._tokenizer.decode(_as_id_list(token_ids), skip_special_tokens=skip_special_tokens)
        clean = (self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None
                 else clean_up_tokenization_spaces)
        # The clean-up was designed for WordPiece; on BPE it would delete real spaces.
        if clean and not isinstance(self._tokenizer.model, tokenizers.models.BPE):
            text = _clean_up_tokenization(text)
        return text

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        """Text of each sequence of a batch (a list of lists or a 2-d tensor/array)."""
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return [self.decode(seq, skip_special_tokens, clean_up_tokenization_spaces)
                for seq in sequences]

    # ------------------------------------------------------------------------------------------
    # Chat templates
    # ------------------------------------------------------------------------------------------

    def get_chat_template(self, chat_template: str | None = None, tools=None) -> str:
        """The template ``apply_chat_template`` would use: ``chat_template`` if given (a template
        or the name of one of this tokenizer's templates), else this tokenizer's (with several,
        ``"tool_use"`` when tools are passed, else ``"default"``)."""
        templates = self.chat_template
        if isinstance(templates, dict):
            if chat_template is not None:
                return templates.get(chat_template, chat_template)
            if tools is not None and "tool_use" in templates:
                return templates["tool_use"]
            if "default" in templates:
                return templates["default"]
            raise TokenizerError(f"this tokenizer has several chat templates and none is named "
                                 f"'default'; pass chat_template= one of {sorted(templates)}")
        if chat_template is not None:
            return chat_template
        if templates is None:
            where = f" in {self.name_or_path!r}" if self.name_or_path else ""
            raise TokenizerError(
                f"apply_chat_template: this tokenizer has no chat template (no 'chat_template' in "
                f"tokenizer_config.json and no chat_template.jinja{where}). Pass one with "
                f"chat_template='...', or set tokenizer.chat_template; base (non-instruct) models "
                f"usually have none")
        return templates

    def apply_chat_template(self, conversation, tools: list[dict] | None = None,
                            documents: list[dict] | None = None, chat_template: str | None = None,
                            add_generation_prompt: bool = False,
                            continue_final_message: bool = False, tokenize: bool = True,
                            return_dict: bool = False, padding: bool | str = False,
                            truncation: bool = False, max_length: int | None = None,
                            return_tensors: str | None = None, **template_kwargs):
        """Render a conversation with the chat template; the prompt string, or its ids.

        Args:
            conversation: a list of ``{"role": ..., "content": ...}`` messages, or a list of such
                lists (a batch).
            add_generation_prompt: end with the header of an assistant turn (for generation).
            continue_final_message: end inside the last message, to continue it.
            tokenize: return ids (encoded without adding special tokens: the template has them)
                instead of the string.
            return_dict: with ``tokenize``, return the :class:`BatchEncoding` (ids and mask).
            padding, truncation, max_length, return_tensors: as in ``__call__``.
            template_kwargs: more template variables (``enable_thinking=False``, ``date_string``).

        Example::

            >>> tok.apply_chat_template([{"role": "user", "content": "hi"}],
            ...                         add_generation_prompt=True, tokenize=False)
            '<|im_start|>user\\nhi<|im_end|>\\n<|im_start|>assistant\\n'
        """
        template = self.get_chat_template(chat_template, tools)
        if not isinstance(conversation, (list, tuple)) or not conversation:
            raise TokenizerError("apply_chat_template: pass a non-empty list of messages "
                                 "([{'role': 'user', 'content': '...'}]) or a list of such lists")
        batched = isinstance(conversation[0], (list, tuple))
        conversations = list(conversation) if batched else [conversation]
        variables = {**self.special_tokens_map, **template_kwargs}
        rendered = render_chat_template(template, conversations,
                                        add_generation_prompt=add_generation_prompt,
                                        continue_final_message=continue_final_message,
                                        tools=tools, documents=documents, **variables)
        text = rendered if batched else rendered[0]
        if not tokenize:
            return text
        out = self(text, add_special_tokens=False, padding=padding, truncation=truncation,
                   max_length=max_length, return_tensors=return_tensors)
        return out if return_dict else out["input_ids"]

    def __repr__(self) -> str:
        return (f"Tokenizer(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
                f"len={len(self)}, model={type(self._tokenizer.model).__name__}, "
                f"special_tokens={self.special_tokens_map}, padding_side={self.padding_side!r}, "
                f"chat_template={'yes' if self.chat_template else 'no'})")
