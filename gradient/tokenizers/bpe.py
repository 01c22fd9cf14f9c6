"""Byte-level byte-pair encoding (BPE) from scratch, the way GPT-2 does it.

This is the teaching version: plain Python, one class, read it top to bottom. For real models
use :class:`gradient.tokenizers.Tokenizer`, which wraps the Rust ``tokenizers`` library; the two
give the same ids on the same files (``tests/tokenizers/test_bpe.py`` checks it).

How text becomes ids
--------------------
1. **Pre-tokenize.** The GPT-2 regex cuts text into "words": letters with one optional leading
   space (``" world"``), digits, punctuation runs, whitespace runs, and contraction endings
   (``'s``, ``'ll``). Merges never cross a word boundary, so ``"dog."`` and ``"dog!"`` share the
   token ``"dog"`` instead of the vocabulary spending an entry on each.
2. **Bytes.** Each word becomes its UTF-8 bytes, and each byte starts as one token. With all 256
   bytes in the vocabulary, any string can be encoded: there is no "unknown" token.
3. **Merge.** Training learned an ordered list of merges, ``(left, right) -> new token``. Encoding
   repeatedly takes the adjacent pair that was learned *earliest* (lowest rank) and merges it,
   until no adjacent pair is in the list.

Training is the same loop run the other way: count every adjacent pair over the corpus
(weighted by how often each word occurs), merge the most frequent pair everywhere, record the
merge, repeat until the vocabulary has the requested size.

The file format (GPT-2's, which Hugging Face ``tokenizers`` reads and writes)
----------------------------------------------------------------------------
``vocab.json`` maps each token *string* to its id, and ``merges.txt`` lists the merges in rank
order, one ``"left right"`` per line after a ``#version: 0.2`` header. Token strings are not raw
bytes: :func:`bytes_to_unicode` maps each byte to a printable character (the space becomes
``"Ġ"``, the newline ``"Ċ"``), so that a token never contains whitespace or control characters
and a merge line splits unambiguously on its one space.

Example::

    >>> from gradient.tokenizers import ByteLevelBPE
    >>> bpe = ByteLevelBPE.train(open("corpus.txt").read(), vocab_size=1000,
    ...                          special_tokens=["<|endoftext|>"])
    >>> ids = bpe.encode("Hello world<|endoftext|>")
    >>> bpe.decode(ids)
    'Hello world<|endoftext|>'
    >>> bpe.save("my_tokenizer")             # vocab.json + merges.txt
    >>> ByteLevelBPE.load("my_tokenizer").encode("Hello world") == ids[:-1]
    True
"""

from __future__ import annotations

import heapq
import json
import os
from collections import Counter, defaultdict
from functools import lru_cache
from typing import Iterable

import regex

from ..io.atomic import atomic_write
from .errors import TokenizerError, TokenizerFileNotFoundError
from ..errors import FileFormatError

__all__ = ["ByteLevelBPE", "GPT2_SPLIT_PATTERN", "bytes_to_unicode", "unicode_to_bytes",
           "pre_tokenize"]

# The pre-tokenization regex of GPT-2 (openai/gpt-2 encoder.py), also the one the `tokenizers`
# ByteLevel pre-tokenizer uses. Alternatives are tried left to right at each position:
#   's 't 're 've 'm 'll 'd    English contraction endings (lower case only, as in GPT-2: "I'LL"
#                              splits into "I", "'", "LL")
#    ?\p{L}+                   a run of letters, with at most one leading space
#    ?\p{N}+                   a run of digits (any script), same
#    ?[^\s\p{L}\p{N}]+         a run of punctuation/symbols, same
#   \s+(?!\S)                  whitespace, but not the last space before a word: that one goes
#                              with the word (so "a   b" -> "a", "  ", " b")
#   \s+                        any remaining whitespace (at the end of the text)
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_GPT2_SPLIT = regex.compile(GPT2_SPLIT_PATTERN)

# Encoding caches the ids of each distinct word; past this many words the cache starts over, so
# encoding a huge corpus does not grow memory without bound.
_WORD_CACHE_SIZE = 100_000


def pre_tokenize(text: str) -> list[str]:
    """Split ``text`` into GPT-2 "words" (merges never cross their boundaries).

    Example::

        >>> pre_tokenize("Hello world, don't  stop!\\n")
        ['Hello', ' world', ',', ' don', "'t", ' ', ' stop', '!', '\\n']
    """
    return _GPT2_SPLIT.findall(text)


@lru_cache(maxsize=None)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to 256 printable unicode characters.

    Bytes that are already printable, non-space Latin-1 characters (``!`` to ``~``, ``¡`` to
    ``¬``, ``®`` to ``ÿ``) map to themselves; the other 68 (control characters, the space,
    ``0x7f``-``0xa0``, the soft hyphen) map to ``chr(256)``, ``chr(257)``, ... in byte order.
    That is why a GPT-2 token with a leading space starts with ``"Ġ"`` (``chr(256 + 32)``).

    Example::

        >>> bytes_to_unicode()[ord(" ")], bytes_to_unicode()[ord("A")]
        ('Ġ', 'A')
    """
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    mapping = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shifted)
            shifted += 1
    return mapping


@lru_cache(maxsize=None)
def unicode_to_bytes() -> dict[str, int]:
    """The inverse of :func:`bytes_to_unicode`: printable character -> byte value."""
    return {c: b for b, c in bytes_to_unicode().items()}


def _token_string(token: bytes) -> str:
    """A token's bytes as the printable string vocab.json and merges.txt use."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def _token_bytes(token: str) -> bytes | None:
    """The bytes behind a vocab.json string, or None if it is not a byte-level string."""
    table = unicode_to_bytes()
    try:
        return bytes(table[c] for c in token)
    except KeyError:
        return None


def _merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair`` in ``ids``, left to right, by ``new_id``."""
    out = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class ByteLevelBPE:
    """A byte-level BPE tokenizer: GPT-2 pre-tokenization, byte tokens, ranked merges.

    Build one with :meth:`train` or :meth:`load`; ``ByteLevelBPE()`` alone has just the 256
    byte tokens (id ``b`` is byte ``b``) and no merges.

    Args:
        vocab: id -> the token's bytes, for every ordinary (non-special) token. It must contain
            all 256 single bytes, and the concatenation of every merge.
        merges: ``(left_id, right_id)`` pairs in rank order (the first was learned first).
        special_tokens: string -> id for tokens like ``"<|endoftext|>"``: they are matched in
            the text before pre-tokenization and never split or merged.

    Example::

        >>> bpe = ByteLevelBPE.train("low lower lowest " * 50, vocab_size=260)
        >>> bpe.encode(" lowest")
        [259, 115, 116]
        >>> [bpe.id_to_token(i) for i in bpe.encode(" lowest")]
        ['Ġlowe', 's', 't']
    """

    def __init__(self, vocab: dict[int, bytes] | None = None,
                 merges: Iterable[tuple[int, int]] = (),
                 special_tokens: dict[str, int] | None = None):
        if vocab is None:
            vocab = {b: bytes([b]) for b in range(256)}
        self.vocab: dict[int, bytes] = dict(vocab)
        self.special_tokens: dict[str, int] = dict(special_tokens or {})
        self._id_of_bytes = {token: i for i, token in self.vocab.items()}
        missing = [b for b in range(256) if bytes([b]) not in self._id_of_bytes]
        if missing:
            raise TokenizerError(
                f"ByteLevelBPE: the vocabulary lacks {len(missing)} of the 256 single-byte tokens "
                f"(first missing byte: {missing[0]:#04x}); a byte-level vocabulary needs all of them "
                f"so that any text can be encoded")
        self._byte_ids = [self._id_of_bytes[bytes([b])] for b in range(256)]
        # pair -> (rank, id of the merged token); lower rank = learned earlier = applied first.
        self._merges: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, (left, right) in enumerate(merges):
            merged = self.vocab[left] + self.vocab[right]
            if merged not in self._id_of_bytes:
                raise TokenizerError(
                    f"ByteLevelBPE: merge #{rank} ({self.id_to_token(left)!r}, "
                    f"{self.id_to_token(right)!r}) makes {_token_string(merged)!r}, which is not in "
                    f"the vocabulary; every merge result must be a token")
            self._merges.setdefault((left, right), (rank, self._id_of_bytes[merged]))
        clash = set(self.special_tokens.values()) & set(self.vocab)
        if clash:
            raise TokenizerError(f"ByteLevelBPE: special token ids {sorted(clash)} are also ordinary "
                                 f"token ids; give special tokens ids of their own")
        self._special_by_id = {i: s for s, i in self.special_tokens.items()}
        # Longest first, so that "<|im_start|>" wins over a special token that is its prefix.
        names = sorted(self.special_tokens, key=len, reverse=True)
        self._special_split = (regex.compile("(" + "|".join(regex.escape(s) for s in names) + ")")
                               if names else None)
        self._word_cache: dict[str, tuple[int, ...]] = {}

    # ------------------------------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------------------------------

    @classmethod
    def train(cls, text: str | Iterable[str], vocab_size: int,
              special_tokens: Iterable[str] = (), min_frequency: int = 2) -> "ByteLevelBPE":
        """Learn merges from ``text`` (a string or an iterable of strings, e.g. an open file).

        The vocabulary gets the 256 bytes (ids 0-255), then one token per merge (ids 256, 257,
        ... in the order learned), then the special tokens (GPT-2 puts ``<|endoftext|>`` last
        too). ``vocab_size`` counts all three. Training stops early when no pair occurs at least
        ``min_frequency`` times: a pair seen once is not worth a vocabulary entry.

        Example::

            >>> bpe = ByteLevelBPE.train(["some text", "more text"], vocab_size=300,
            ...                          special_tokens=["<|endoftext|>"])
        """
        special_tokens = list(dict.fromkeys(special_tokens))
        if vocab_size < 256 + len(special_tokens):
            raise TokenizerError(
                f"ByteLevelBPE.train: vocab_size={vocab_size} is too small: the 256 byte tokens and "
                f"{len(special_tokens)} special tokens need {256 + len(special_tokens)}")
        n_ordinary = vocab_size - len(special_tokens)

        # 1. Count the distinct words; all the work below is per distinct word, times its count.
        #    Special tokens are cut out first so that their text is never learned from.
        splitter = (regex.compile("|".join(regex.escape(s) for s in sorted(special_tokens, key=len,
                                                                              reverse=True)))
                    if special_tokens else None)
        word_counts: Counter[bytes] = Counter()
        for chunk in ([text] if isinstance(text, str) else text):
            for piece in (splitter.split(chunk) if splitter else [chunk]):
                word_counts.update(w.encode("utf-8") for w in pre_tokenize(piece))
        words = [list(w) for w in word_counts]   # each word as a list of token ids (bytes for now)
        counts = list(word_counts.values())

        # 2. Count adjacent pairs, and remember which words contain each pair, so that a merge
        #    only revisits the words it changes instead of the whole corpus.
        pair_counts: Counter[tuple[int, int]] = Counter()
        words_with: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
        for w, (ids, count) in enumerate(zip(words, counts)):
            for pair in zip(ids, ids[1:]):
                pair_counts[pair] += count
                words_with[pair].add(w)

        # 3. The most frequent pair comes from a heap of (-count, pair). Counts change as merges
        #    happen; rather than updating entries in place we push the new count and skip stale
        #    entries (whose count no longer matches) when they surface. Ties go to the smaller
        #    pair of ids, which makes training deterministic.
        heap = [(-c, pair) for pair, c in pair_counts.items()]
        heapq.heapify(heap)

        vocab = {b: bytes([b]) for b in range(256)}
        id_of_bytes = {token: i for i, token in vocab.items()}
        merges: list[tuple[int, int]] = []
        while len(vocab) < n_ordinary:
            while heap and -heap[0][0] != pair_counts.get(heap[0][1], 0):
                heapq.heappop(heap)                      # stale entry
            if not heap or -heap[0][0] < min_frequency:
                break                                    # nothing frequent enough is left
            _, pair = heapq.heappop(heap)
            merged = vocab[pair[0]] + vocab[pair[1]]
            # Two different pairs can spell the same bytes ("a"+"bc" and "ab"+"c"); they then
            # share one token, as in vocab.json, where a token string appears once.
            new_id = id_of_bytes.get(merged)
            if new_id is None:
                new_id = id_of_bytes[merged] = len(vocab)
                vocab[new_id] = merged
            merges.append(pair)

            # Re-count only the words that contain the pair: take their old pairs out, merge,
            # put their new pairs in.
            delta: Counter[tuple[int, int]] = Counter()
            for w in words_with.pop(pair):
                ids, count = words[w], counts[w]
                for p in zip(ids, ids[1:]):
                    delta[p] -= count
                ids = words[w] = _merge_pair(ids, pair, new_id)
                for p in zip(ids, ids[1:]):
                    delta[p] += count
                    words_with[p].add(w)
            for p, d in delta.items():
                if d == 0:
                    continue
                pair_counts[p] += d
                if pair_counts[p] <= 0:
                    del pair_counts[p]
                else:
                    heapq.heappush(heap, (-pair_counts[p], p))
            pair_counts.pop(pair, None)

        specials = {s: len(vocab) + i for i, s in enumerate(special_tokens)}
        return cls(vocab, merges, specials)

    # ------------------------------------------------------------------------------------------
    # Encoding and decoding
    # ------------------------------------------------------------------------------------------

    def _encode_word(self, word: str) -> tuple[int, ...]:
        """The ids of one pre-tokenized word: its bytes, merged lowest rank first."""
        cached = self._word_cache.get(word)
        if cached is not None:
            return cached
        ids = [self._byte_ids[b] for b in word.encode("utf-8")]
        while len(ids) > 1:
            # The adjacent pair learned earliest; pairs that are not merges rank last.
            best = min(zip(ids, ids[1:]), key=lambda p: self._merges.get(p, (float("inf"),))[0])
            if best not in self._merges:
                break
            ids = _merge_pair(ids, best, self._merges[best][1])
        if len(self._word_cache) >= _WORD_CACHE_SIZE:
            self._word_cache.clear()
        result = self._word_cache[word] = tuple(ids)
        return result

    def encode(self, text: str, split_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text``.

        Special tokens written in the text (``"<|endoftext|>"``) become their ids, as in
        Hugging Face tokenizers; ``split_special_tokens=True`` encodes them as plain text instead.

        Example::

            >>> bpe.encode("hi<|endoftext|>")[-1] == bpe.special_tokens["<|endoftext|>"]
            True
        """
        if self._special_split is None or split_special_tokens:
            pieces = [text]
        else:
            pieces = self._special_split.split(text)   # text, special, text, special, ..., text
        ids: list[int] = []
        for i, piece in enumerate(pieces):
            if i % 2 == 1:
                ids.append(self.special_tokens[piece])
            else:
                for word in pre_tokenize(piece):
                    ids.extend(self._encode_word(word))
        return ids

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes token ``token_id`` stands for (a special token: its UTF-8 text)."""
        token = self.vocab.get(token_id)
        if token is not None:
            return token
        special = self._special_by_id.get(token_id)
        if special is not None:
            return special.encode("utf-8")
        raise TokenizerError(f"ByteLevelBPE: token id {token_id!r} is not in the vocabulary "
                             f"(ids go up to {len(self) - 1})")

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """The text of ``ids``. Bytes that do not form valid UTF-8 (a character cut between
        tokens) decode to U+FFFD, as in Hugging Face's ByteLevel decoder.

        Example::

            >>> bpe.decode(bpe.encode("naïve café ☕")) == "naïve café ☕"
            True
        """
        if skip_special_tokens:
            ids = [i for i in ids if i not in self._special_by_id]
        return b"".join(self.token_bytes(int(i)) for i in ids).decode("utf-8", errors="replace")

    # ------------------------------------------------------------------------------------------
    # Vocabulary
    # ------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.vocab) + len(self.special_tokens)

    @property
    def vocab_size(self) -> int:
        """Number of token ids, special tokens included."""
        return len(self)

    @property
    def merges(self) -> list[tuple[int, int]]:
        """The merges as ``(left_id, right_id)`` pairs, in rank order."""
        return [pair for pair, _ in sorted(self._merges.items(), key=lambda item: item[1][0])]

    def id_to_token(self, token_id: int) -> str:
        """The vocab.json string of a token (``"Ġworld"``), or a special token's text."""
        if token_id in self._special_by_id:
            return self._special_by_id[token_id]
        return _token_string(self.token_bytes(token_id))

    def token_to_id(self, token: str) -> int | None:
        """The id of a vocab.json string or a special token; None if there is none."""
        if token in self.special_tokens:
            return self.special_tokens[token]
        raw = _token_bytes(token)
        return None if raw is None else self._id_of_bytes.get(raw)

    def get_vocab(self) -> dict[str, int]:
        """vocab.json's mapping: token string -> id, special tokens included."""
        out = {_token_string(token): i for i, token in self.vocab.items()}
        out.update(self.special_tokens)
        return out

    # ------------------------------------------------------------------------------------------
    # Files
    # ------------------------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> tuple[str, str]:
        """Write ``vocab.json`` and ``merges.txt`` (GPT-2's format) into ``directory``.

        The ``tokenizers`` library loads them with ``tokenizers.models.BPE.from_file``, and
        :meth:`gradient.tokenizers.Tokenizer.from_pretrained` loads the directory. Returns the
        two paths. Each file is written atomically.
        """
        os.makedirs(directory, exist_ok=True)
        vocab_path = os.path.join(directory, "vocab.json")
        merges_path = os.path.join(directory, "merges.txt")
        vocab = dict(sorted(self.get_vocab().items(), key=lambda item: item[1]))
        with atomic_write(vocab_path) as f:
            f.write(json.dumps(vocab, ensure_ascii=False).encode("utf-8"))
        lines = ["#version: 0.2"] + [f"{self.id_to_token(a)} {self.id_to_token(b)}"
                                     for a, b in self.merges]
        with atomic_write(merges_path) as f:
            f.write(("\n".join(lines) + "\n").encode("utf-8"))
        return vocab_path, merges_path

    @classmethod
    def load(cls, directory: str | os.PathLike,
             special_tokens: Iterable[str] | None = None) -> "ByteLevelBPE":
        """Read ``vocab.json`` + ``merges.txt`` from ``directory`` (GPT-2's, ours, or the
        ``tokenizers`` library's ``model.save``).

        Which vocabulary entries are special? Those given in ``special_tokens``; when it is None,
        every entry that is neither a single byte nor the result of a merge (in a real BPE
        vocabulary, only added tokens like ``<|endoftext|>`` are).

        Example::

            >>> bpe = ByteLevelBPE.load("gpt2")    # a directory with GPT-2's two files
            >>> bpe.encode("Hello world")
            [15496, 995]
        """
        vocab_path = os.path.join(directory, "vocab.json")
        merges_path = os.path.join(directory, "merges.txt")
        missing = [p for p in (vocab_path, merges_path) if not os.path.isfile(p)]
        if missing:
            raise TokenizerFileNotFoundError(
                f"ByteLevelBPE.load: {', '.join(missing)} not found; a byte-level BPE directory "
                f"needs vocab.json and merges.txt (as ByteLevelBPE.save writes them)")
        try:
            with open(vocab_path, encoding="utf-8") as f:
                vocab_json = json.load(f)
            with open(merges_path, encoding="utf-8") as f:
                merge_lines = f.read().split("\n")
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FileFormatError(f"ByteLevelBPE.load: cannot parse {vocab_path} / {merges_path}: "
                                  f"{e}") from e
        if not isinstance(vocab_json, dict):
            raise FileFormatError(f"ByteLevelBPE.load: {vocab_path} must hold a JSON object "
                                  f"(token string -> id), got {type(vocab_json).__name__}")

        merges_str = []
        for lineno, line in enumerate(merge_lines, 1):
            if not line.strip() or (lineno == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2 or parts[0] not in vocab_json or parts[1] not in vocab_json:
                raise FileFormatError(
                    f"ByteLevelBPE.load: {merges_path} line {lineno}: expected two tokens of "
                    f"vocab.json separated by one space, got {line!r}")
            merges_str.append((parts[0], parts[1]))

        if special_tokens is None:
            reachable = {"".join(pair) for pair in merges_str} | set(bytes_to_unicode().values())
            special_names = [t for t in vocab_json if t not in reachable]
        else:
            special_names = list(special_tokens)
            absent = [t for t in special_names if t not in vocab_json]
            if absent:
                raise TokenizerError(f"ByteLevelBPE.load: special tokens {absent} are not in "
                                     f"{vocab_path}")
        specials = {t: int(vocab_json[t]) for t in special_names}
        vocab = {}
        for token, i in vocab_json.items():
            if token in specials:
                continue
            raw = _token_bytes(token)
            if raw is None:
                raise FileFormatError(
                    f"ByteLevelBPE.load: {vocab_path}: token {token!r} (id {i}) is not a byte-level "
                    f"token string; pass it in special_tokens= if it is a special token")
            vocab[int(i)] = raw
        merges = [(int(vocab_json[a]), int(vocab_json[b])) for a, b in merges_str]
        return cls(vocab, merges, specials)

    def __repr__(self) -> str:
        return (f"ByteLevelBPE(vocab_size={len(self)}, merges={len(self._merges)}, "
                f"special_tokens={list(self.special_tokens)})")
