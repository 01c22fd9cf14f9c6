"""Output held to JSON: each token is chosen among those that keep the text a prefix of a JSON
object, and the text ends where the object does (OpenAI's ``response_format={"type":
"json_object"}``).

The text so far is tracked by a small pushdown recognizer of RFC 8259's grammar, one
character at a time: a state is a tuple (what comes next, the open brackets, a detail such as
the rest of a literal or the part of a number), so trying a token costs only its own
characters, from the state after the text so far. Whitespace between values is allowed in runs
of at most :data:`MAX_WHITESPACE` characters (a model held to JSON may otherwise indent for
ever).

A token's characters are its text decoded alone (``tokenizer.decode([id])``); special tokens
(empty then) are never chosen, and the text ends with the object's closing brace. Greedy
decoding takes the likeliest token that fits; sampling draws from the model's distribution
and draws again without a token that does not fit, which is drawing from the distribution
restricted to the tokens that fit (what masking the others would give), at the cost of a few
tries rather than a check of every token.

Example::

    >>> held = JsonObjectOutput(token_texts(tokenizer, vocab_size))
    >>> token = held.choose(scores)          # scores: (vocab,) after the sampling processors
    >>> held.advance(token)
    >>> held.complete                        # True once the object is closed
"""

from __future__ import annotations

import numpy as np

from ..errors import GenerationError
from .sampling import select_tokens

__all__ = ["JsonObjectOutput", "token_texts", "json_prefix", "MAX_WHITESPACE"]

#: the longest run of whitespace between two values (pretty-printed JSON indents by far less)
MAX_WHITESPACE = 32
#: draws before sampling gives up trying tokens one by one and checks every token
SAMPLING_TRIES = 64
#: greedy decoding's first look: the likeliest tokens, in order, before all of them
GREEDY_FIRST = 64

_WHITESPACE = " \t\n\r"
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"
_ESCAPES = '"\\/bfnrt'
_LITERALS = {"t": "rue", "f": "alse", "n": "ull"}

# A state is (mode, brackets, detail, whitespace): mode says what may come next; brackets
# holds the open "{" and "[" in order; detail is the mode's own (a string's "key" or "value",
# the rest of a literal, the part of a number); whitespace counts the run just written.
START = ("start", "", None, 0)


def _value_ends(brackets: str):
    """The state after a value is complete."""
    return ("after", brackets, None, 0) if brackets else ("done", "", None, 0)


def _begin_value(brackets: str, ch: str):
    """The state after ``ch`` where a value must begin; None if no value begins so."""
    if ch == "{":
        return ("key}", brackets + "{", None, 0)
    if ch == "[":
        return ("value]", brackets + "[", None, 0)
    if ch == '"':
        return ("string", brackets, "value", 0)
    if ch == "-":
        return ("number", brackets, "-", 0)
    if ch == "0":
        return ("number", brackets, "0", 0)
    if ch in _DIGITS:
        return ("number", brackets, "int", 0)
    if ch in _LITERALS:
        return ("literal", brackets, _LITERALS[ch], 0)
    return None


# a number's part -> {character class: next part}; a part in _NUMBER_ENDS may end the number
_NUMBER = {
    "-": {"0": "0", "1-9": "int"},
    "0": {".": ".", "e": "e"},
    "int": {"0": "int", "1-9": "int", ".": ".", "e": "e"},
    ".": {"0": "frac", "1-9": "frac"},
    "frac": {"0": "frac", "1-9": "frac", "e": "e"},
    "e": {"sign": "sign", "0": "exp", "1-9": "exp"},
    "sign": {"0": "exp", "1-9": "exp"},
    "exp": {"0": "exp", "1-9": "exp"},
}
_NUMBER_ENDS = ("0", "int", "frac", "exp")


def _number_class(ch: str) -> str | None:
    if ch == "0":
        return "0"
    if ch in _DIGITS:
        return "1-9"
    if ch in "eE":
        return "e"
    if ch in "+-":
        return "sign"
    return "." if ch == "." else None


def _step(state, ch: str):
    """The state after one more character ``ch``, or None where the text stops being a prefix
    of a JSON object."""
    mode, brackets, detail, spaces = state
    if mode == "string":
        if ch == '"':
            return ("colon", brackets, None, 0) if detail == "key" else _value_ends(brackets)
        if ch == "\\":
            return ("escape", brackets, detail, 0)
        return None if ord(ch) < 0x20 else state      # control characters must be escaped
    if mode == "escape":
        if ch == "u":
            return ("hex", brackets, (detail, 4), 0)
        return ("string", brackets, detail, 0) if ch in _ESCAPES else None
    if mode == "hex":
        if ch not in _HEX:
            return None
        kind, left = detail
        return ("string", brackets, kind, 0) if left == 1 else ("hex", brackets, (kind, left - 1),
                                                                0)
    if mode == "literal":
        if ch != detail[0]:
            return None
        return ("literal", brackets, detail[1:], 0) if len(detail) > 1 else _value_ends(brackets)
    if mode == "number":
        part = _NUMBER[detail].get(_number_class(ch))
        if part is not None:
            return ("number", brackets, part, 0)
        if detail not in _NUMBER_ENDS:
            return None
        return _step(_value_ends(brackets), ch)           # the character after the number
    if ch in _WHITESPACE:
        return None if spaces == MAX_WHITESPACE else (mode, brackets, detail, spaces + 1)
    if mode == "start":
        return ("key}", "{", None, 0) if ch == "{" else None
    if mode in ("value", "value]"):
        if mode == "value]" and ch == "]":
            return _value_ends(brackets[:-1])
        return _begin_value(brackets, ch)
    if mode in ("key", "key}"):
        if mode == "key}" and ch == "}":
            return _value_ends(brackets[:-1])
        return ("string", brackets, "key", 0) if ch == '"' else None
    if mode == "colon":
        return ("value", brackets, None, 0) if ch == ":" else None
    if mode == "after":
        if ch == ",":
            return ("key" if brackets[-1] == "{" else "value", brackets, None, 0)
        if (ch, brackets[-1]) in (("}", "{"), ("]", "[")):
            return _value_ends(brackets[:-1])
        return None
    return None       # "done": nothing but whitespace after the object


def json_prefix(text: str, state=START):
    """The recognizer's state after ``text`` (from ``state``), or None where ``text`` cannot
    continue into a JSON object. ``json_prefix(t)[0] == "done"``: ``t`` is a whole object.

    Example: ``json_prefix('{"a": [1, tr')`` is a state; ``json_prefix('{"a": 01')`` None.
    """
    for ch in text:
        state = _step(state, ch)
        if state is None:
            return None
    return state


def token_texts(tokenizer, vocab_size: int) -> list:
    """Each token's text decoded alone, ``""`` for special tokens and ids the tokenizer does
    not know (the model's vocabulary may be padded past the tokenizer's)."""
    texts = []
    for token in range(vocab_size):
        try:
            texts.append(tokenizer.decode([token], skip_special_tokens=True))
        except Exception:   # noqa: BLE001  (an id past the tokenizer's vocabulary)
            texts.append("")
    return texts


class JsonObjectOutput:
    """The choice of each token of a text held to be one JSON object; ``texts[id]`` is token
    ``id``'s text (:func:`token_texts`)."""

    def __init__(self, texts: list):
        self.texts = texts
        self.state = START

    @property
    def complete(self) -> bool:
        """Whether the object is closed (the text should end here)."""
        return self.state[0] == "done"

    def fits(self, token: int) -> bool:
        text = self.texts[token] if 0 <= token < len(self.texts) else ""
        return bool(text) and json_prefix(text, self.state) is not None

    def advance(self, token: int) -> None:
        """Take ``token`` as the text's next one (it must fit)."""
        state = json_prefix(self.texts[token], self.state)
        if state is None:
            raise GenerationError(f"JSON output: token {token} ({self.texts[token]!r}) does not "
                                  f"continue the JSON object")
        self.state = state

    def choose(self, scores: np.ndarray, do_sample: bool = False, rng=None) -> int:
        """The next token from ``scores`` (vocab,) among those that fit: the likeliest, or a
        draw from their distribution with ``rng``."""
        scores = np.asarray(scores, np.float32)
        if do_sample:
            tried = scores.copy()
            for _ in range(SAMPLING_TRIES):
                if not np.isfinite(tried.max()):
                    break
                token = int(select_tokens(tried[None], True, rng)[0])
                if self.fits(token):
                    return token
                tried[token] = -np.inf
            allowed = self._fitting(np.nonzero(np.isfinite(tried))[0])
            if not len(allowed):
                raise self._nothing_fits()
            masked = np.full_like(scores, -np.inf)
            masked[allowed] = scores[allowed]
            return int(select_tokens(masked[None], True, rng)[0])
        best = int(scores.argmax())        # (the first of equals, as select_tokens)
        if self.fits(best):
            return best
        first = min(GREEDY_FIRST, scores.size)
        likeliest = np.sort(np.argpartition(-scores, first - 1)[:first])
        for order in (lambda: likeliest[np.argsort(-scores[likeliest], kind="stable")],
                      lambda: np.argsort(-scores, kind="stable")):
            for token in order():
                if np.isfinite(scores[token]) and self.fits(int(token)):
                    return int(token)
        raise self._nothing_fits()

    def _fitting(self, tokens) -> np.ndarray:
        return np.array([t for t in tokens if self.fits(int(t))], np.int64)

    def _nothing_fits(self) -> GenerationError:
        return GenerationError("JSON output: no token the sampling settings leave continues "
                               "the JSON object; loosen top_k/top_p/min_p or the logit bias")
