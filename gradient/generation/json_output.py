"""Output held to JSON: each token is chosen among those that keep the text a prefix of a JSON
value that a schema allows, and the text ends where the value does (OpenAI's
``response_format`` ``{"type": "json_object"}``: any object; ``{"type": "json_schema"}``: the
schema's instances).

:class:`JsonGrammar` reads a text one character at a time with a stack of frames, one per value
being written (an object with the keys it has had, an array with its count, a string, a
number, a literal, one of an enum's texts), each frame holding the schema node it must match.
A state is an immutable tuple of the ways the text can be read so far (one, or one per branch of
an ``anyOf`` that still fits), each ``(frames, whitespace)``, so trying a token costs only its
own characters, from the state after the text so far. Whitespace between values is allowed in
runs of at most :data:`MAX_WHITESPACE` characters (a model held to JSON may otherwise indent
for ever).

The schema keywords followed are ``type`` (one or a list), ``properties``, ``required``,
``additionalProperties`` (false, true or a schema), ``items``, ``minItems``, ``maxItems``,
``enum``, ``const``, ``anyOf`` (each branch followed while the text fits it; ``oneOf`` read
as ``anyOf``) and ``$ref`` into ``$defs``/``definitions`` (what Pydantic writes, recursive
models included); annotations (``title``, ``description``,
``default``, ``format`` ...) are read past. Any other keyword would constrain what this
grammar cannot see, so a schema holding one is refused (:class:`~gradient.errors.
GenerationError`) rather than followed in part. An object's properties come in the schema's
order, as OpenAI's structured outputs and llama.cpp's grammars write them (optional ones may
be left out), then any other keys it allows, each once; it closes once its required keys are
there.

:class:`JsonOutput` chooses the tokens: greedy decoding the likeliest token that fits,
sampling a draw from the model's distribution, drawn again without a token that does not fit
(drawing from the distribution restricted to the tokens that fit, what masking the others
would give, at the cost of a few tries rather than a check of every token). A token's
characters are its text decoded alone (``tokenizer.decode([id])``); special tokens (empty
then) are never chosen.

Example::

    >>> held = JsonOutput(token_texts(tokenizer, vocab_size), JsonGrammar(schema))
    >>> token = held.choose(scores)          # scores: (vocab,) after the sampling processors
    >>> held.advance(token)
    >>> held.complete                        # True once the value is closed
"""

from __future__ import annotations

import functools
import json

import numpy as np

from ..errors import GenerationError
from .sampling import select_tokens

__all__ = ["JsonGrammar", "JsonOutput", "token_texts", "json_prefix", "MAX_WHITESPACE"]

#: the longest run of whitespace between two values (pretty-printed JSON indents by far less)
MAX_WHITESPACE = 32
#: draws before sampling gives up trying tokens one by one and checks every token
SAMPLING_TRIES = 64
#: greedy decoding's second look, after the likeliest token: this many, in order
GREEDY_FIRST = 64

_WHITESPACE = " \t\n\r"
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"
_ESCAPES = '"\\/bfnrt'
_LITERALS = {"t": ("boolean", "rue"), "f": ("boolean", "alse"), "n": ("null", "ull")}
_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
# what a schema may say: the keywords followed, and annotations that constrain nothing
_FOLLOWED = {"type", "properties", "required", "additionalProperties", "items", "minItems",
             "maxItems", "enum", "const", "anyOf", "oneOf", "$ref", "$defs", "definitions"}
_ANNOTATIONS = {"title", "description", "default", "examples", "format", "$schema", "$id",
                "$comment", "deprecated", "readOnly", "writeOnly"}

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


def _escape_step(escape, ch: str):
    """Inside a string: the escape state after ``ch`` (None: plain text, "\\\\": after a
    backslash, an int: hex digits of \\\\u left), or False where ``ch`` cannot come."""
    if escape is None:
        if ch == "\\":
            return "\\"
        return False if ord(ch) < 0x20 else None       # control characters must be escaped
    if escape == "\\":
        return 4 if ch == "u" else (None if ch in _ESCAPES else False)
    if ch not in _HEX:
        return False
    return None if escape == 1 else escape - 1


class JsonGrammar:
    """The texts of the JSON values ``schema`` allows (None: any JSON object), read one
    character at a time: :attr:`start`, :meth:`step`, :meth:`feed`, :meth:`complete`.

    Example: ``JsonGrammar({"type": "object", "properties": {"a": {"type": "integer"}},
    "required": ["a"]}).feed('{"a": 1')`` is a state; ``.feed('{"b"')`` None.
    """

    def __init__(self, schema: dict | None = None):
        if schema is None:
            schema = {"type": "object"}
        if not isinstance(schema, (dict, bool)):
            raise GenerationError(f"JSON schema: a schema is an object, got {schema!r}")
        self.root = schema
        self._texts: dict = {}       # id of an enum's node -> its texts (_candidates)
        self._check(schema, set())
        self.start = (((("value", schema),), 0),)

    # -- the schema
    def _resolve(self, node):
        """``node`` with its ``$ref`` followed (within this schema); True/{} for any value."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#"):
                raise GenerationError(f"JSON schema: only references within the schema "
                                      f"(#/$defs/...) are followed, got {ref!r}")
            node = self.root
            for part in [p for p in ref[1:].split("/") if p]:
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(node, dict) or part not in node:
                    raise GenerationError(f"JSON schema: the reference {ref!r} leads nowhere")
                node = node[part]
            seen += 1
            if seen > 64:
                raise GenerationError(f"JSON schema: the reference {ref!r} never reaches a "
                                      f"schema")
        if node is True or node == {}:
            return {}
        if node is False:
            raise GenerationError("JSON schema: `false` allows no value at all")
        return node

    def _check(self, node, seen: set) -> None:
        """Refuse what this grammar would not follow, or a schema out of shape, once per
        node."""
        node = self._resolve(node)
        if id(node) in seen:
            return
        seen.add(id(node))
        if not isinstance(node, dict):
            raise GenerationError(f"JSON schema: a schema is an object or true/false, got "
                                  f"{node!r}")
        for key, kind, what in (("properties", dict, "an object of schemas"),
                                ("required", list, "a list of names"),
                                ("$defs", dict, "an object of schemas"),
                                ("definitions", dict, "an object of schemas"),
                                ("additionalProperties", (bool, dict), "true, false or a schema"),
                                ("items", (bool, dict, list), "a schema"),
                                ("anyOf", list, "a list of schemas"),
                                ("oneOf", list, "a list of schemas")):
            if key in node and not isinstance(node[key], kind):
                raise GenerationError(f"JSON schema: {key} must be {what}, got {node[key]!r}")
        for key in ("minItems", "maxItems"):
            value = node.get(key, 0)
            if type(value) is not int or value < 0:
                raise GenerationError(f"JSON schema: {key} must be an integer >= 0, got "
                                      f"{value!r}")
        if not all(isinstance(k, str) for k in node.get("required", [])):
            raise GenerationError("JSON schema: required must be a list of names")
        if not isinstance(node.get("type", ""), (str, list)):
            raise GenerationError(f"JSON schema: type must be a name or a list of names, got "
                                  f"{node['type']!r}")
        unknown = sorted(set(node) - _FOLLOWED - _ANNOTATIONS)
        if unknown:
            raise GenerationError(f"JSON schema: the keyword(s) {', '.join(unknown)} are not "
                                  f"supported; the output can follow type, properties, "
                                  f"required, additionalProperties, items, minItems, maxItems, "
                                  f"enum, const, anyOf/oneOf and $ref")
        types = self._types(node)
        if types is not None and not (all(isinstance(t, str) for t in types)
                                      and set(types) <= set(_TYPES)):
            raise GenerationError(f"JSON schema: unknown type(s) in {node.get('type')!r}")
        for value in node.get("properties", {}).values():
            self._check(value, seen)
        for key in ("additionalProperties", "items"):
            if isinstance(node.get(key), dict):
                self._check(node[key], seen)
        if isinstance(node.get("items"), list):
            raise GenerationError("JSON schema: `items` as a list (tuples) is not supported")
        for key in ("enum", "const"):
            if key in node:
                self._candidates(node)
        branches = node.get("anyOf", node.get("oneOf"))
        if branches is not None:
            if not isinstance(branches, list) or not branches:
                raise GenerationError("JSON schema: anyOf/oneOf must be a non-empty list")
            for branch in branches:
                self._check(branch, seen)

    @staticmethod
    def _types(node) -> list | None:
        types = node.get("type")
        return None if types is None else [types] if isinstance(types, str) else list(types)

    def _candidates(self, node) -> tuple:
        """An enum's (or const's) values as JSON texts, compact and spaced, each as written
        with and without escapes of non-ASCII characters; made once per node (a value of it
        begins at every token tried there)."""
        texts = self._texts.get(id(node))
        if texts is not None:
            return texts
        values = [node["const"]] if "const" in node else node["enum"]
        if not isinstance(values, list) or not values:
            raise GenerationError("JSON schema: enum must be a non-empty list")
        found = set()
        for value in values:
            for ascii_only in (False, True):
                for separators in ((", ", ": "), (",", ":")):
                    found.add(json.dumps(value, ensure_ascii=ascii_only, separators=separators))
        texts = self._texts[id(node)] = tuple(sorted(found))
        return texts

    # -- reading text
    def feed(self, text: str, state=None):
        """The state after ``text`` (from ``state``, default :attr:`start`), or None where
        ``text`` cannot continue into a value the schema allows."""
        state = self.start if state is None else state
        for ch in text:
            state = self.step(state, ch)
            if state is None:
                return None
        return state

    @staticmethod
    def complete(state) -> bool:
        """Whether ``state`` follows a whole value (nothing but whitespace may come)."""
        return any(not frames for frames, _ in state)

    def step(self, state, ch: str):
        """The state after one more character ``ch``, or None. A state is a tuple of the
        ways the text so far can be read (anyOf's branches that still fit), each ``(frames,
        whitespace)``; ways that have come to the same frames are kept once."""
        ways, seen = [], set()
        for way in state:
            for new in _as_list(self._step_one(way, ch)):
                key = _way_key(new)
                if key not in seen:
                    seen.add(key)
                    ways.append(new)
        return tuple(ways) or None

    def _step_one(self, way, ch: str):
        """One way's next ways after ``ch``: None, one ``(frames, whitespace)``, or a list."""
        frames, spaces = way
        if not frames:                                   # the value is whole
            return self._space(way, ch)
        top = frames[-1]
        kind = top[0]
        if kind == "string":
            escape = _escape_step(top[2], ch)
            if escape is False:
                return None
            if ch == '"' and top[2] is None:
                return (frames[:-1], 0)
            return (frames[:-1] + (("string", top[1], escape),), 0)
        if kind == "key":
            return self._key_step(frames, top, ch)
        if kind == "number":
            part = _NUMBER[top[2]].get(_number_class(ch))
            if part is not None and not (top[3] and part in (".", "e")):
                return (frames[:-1] + (("number", top[1], part, top[3]),), 0)
            if top[2] not in _NUMBER_ENDS:
                return None
            return self._step_one((frames[:-1], 0), ch)  # the character after the number
        if kind == "literal":
            if ch != top[2][0]:
                return None
            return (frames[:-1] + ((("literal", top[1], top[2][1:]),) if len(top[2]) > 1
                                   else ()), 0)
        if kind == "choice":
            return self._choice_step(frames, ch)
        if ch in _WHITESPACE:
            return self._space(way, ch)
        if kind == "value":
            return self._begin(frames[:-1], top[1], ch)
        if kind == "object":
            return self._object_step(frames, top, ch)
        return self._array_step(frames, top, ch)

    @staticmethod
    def _space(way, ch: str):
        frames, spaces = way
        if ch not in _WHITESPACE or spaces == MAX_WHITESPACE:
            return None
        return (frames, spaces + 1)

    def _begin(self, below: tuple, node, ch: str):
        """The state where a value of ``node`` begins with ``ch`` (``below``: the frames
        under it), or None."""
        node = self._resolve(node)
        if "enum" in node or "const" in node:
            return self._choice_step(below + (("choice", self._candidates(node), ""),), ch)
        branches = node.get("anyOf", node.get("oneOf"))
        if branches is not None:     # every branch that can begin so: one way each
            return [way for branch in branches for way in _as_list(self._begin(below, branch,
                                                                                 ch))]
        types = self._types(node)

        def allows(*names):
            return types is None or any(t in types for t in names)
        if ch == "{" and allows("object"):
            return (below + (("object", node, (), "open", None),), 0)
        if ch == "[" and allows("array"):
            return (below + (("array", node, 0, "open"),), 0)
        if ch == '"' and allows("string"):
            return (below + (("string", node, None),), 0)
        if (ch == "-" or ch in _DIGITS) and allows("number", "integer"):
            integer = types is not None and "integer" in types and "number" not in types
            part = "-" if ch == "-" else "0" if ch == "0" else "int"
            return (below + (("number", node, part, integer),), 0)
        if ch in _LITERALS and allows(_LITERALS[ch][0]):
            return (below + (("literal", node, _LITERALS[ch][1]),), 0)
        return None

    def _choice_step(self, frames, ch: str):
        """One of an enum's texts: ``ch`` extends the text typed so far towards one, or ends
        a whole one (a number's end is seen at the character after it)."""
        top = frames[-1]
        typed = top[2] + ch
        texts = top[1]
        if any(t.startswith(typed) for t in texts):
            if typed in texts and not any(len(t) > len(typed) and t.startswith(typed)
                                          for t in texts):
                return (frames[:-1], 0)                  # whole, and nothing longer
            return (frames[:-1] + (("choice", texts, typed),), 0)
        if top[2] in texts:                              # a whole number, then ch
            return self._step_one((frames[:-1], 0), ch)
        return None

    # objects
    def _keys(self, node, done: tuple):
        """The keys that may come next in an object of ``node`` that has had ``done``, and
        whether a key outside its properties may: the properties in the schema's order (as
        OpenAI's structured outputs and llama.cpp's grammars write them), an optional one
        skipped or not, a required one not; then other keys, where allowed."""
        properties = list(node.get("properties", {}))
        required = set(node.get("required", []))
        named = [k for k in done if k in properties]
        start = properties.index(named[-1]) + 1 if named else 0
        if len(named) < len(done):              # another key came: the properties are past
            start = len(properties)
        keys = []
        for key in properties[start:]:
            keys.append(key)
            if key in required:
                break
        other = node.get("additionalProperties", True) is not False and \
            not required.intersection(properties[start:])
        return keys, other

    def _may_close(self, node, done: tuple) -> bool:
        return all(k in done for k in node.get("required", []))

    def _object_step(self, frames, top, ch: str):
        _, node, done, phase, value = top
        below = frames[:-1]
        if phase in ("open", "after") and ch == "}" and self._may_close(node, done):
            return (below, 0)
        if phase == "after" and ch == ",":
            keys, other = self._keys(node, done)
            return (below + (("object", node, done, "key", None),), 0) if keys or other \
                else None
        if phase in ("open", "key") and ch == '"':
            keys, other = self._keys(node, done)
            if not keys and not other:
                return None
            return (frames + (("key", node, done, "", None),), 0)
        if phase == "colon" and ch == ":":
            return (below + (("object", node, done, "after", None), ("value", value)), 0)
        return None

    def _key_step(self, frames, top, ch: str):
        _, node, done, typed, escape = top
        below = frames[:-1]
        if ch == '"' and escape is None:                 # the key is whole
            key = json.loads('"' + typed + '"')
            keys, other = self._keys(node, done)
            if key in done or (key not in keys and not other):
                return None
            properties = node.get("properties", {})
            value = properties[key] if key in properties else \
                node.get("additionalProperties", True)
            return (below[:-1] + (("object", node, done + (key,), "colon", value),), 0)
        escape = _escape_step(escape, ch)
        if escape is False:
            return None
        typed += ch
        keys, other = self._keys(node, done)
        if not other and not any(t.startswith(typed) for k in keys for t in _key_forms(k)):
            return None
        return (below + (("key", node, done, typed, escape),), 0)

    # arrays
    def _array_step(self, frames, top, ch: str):
        _, node, count, phase = top
        below = frames[:-1]
        low, high = node.get("minItems", 0), node.get("maxItems")
        if phase in ("open", "after") and ch == "]" and count >= low:
            return (below, 0)
        if phase == "after" and ch == ",":
            return (below + (("array", node, count, "item"),), 0) if high is None or \
                count < high else None
        if phase in ("open", "item") and (high is None or count < high):
            return self._begin(below + (("array", node, count + 1, "after"),),
                               node.get("items", True), ch)
        return None


@functools.lru_cache(maxsize=4096)
def _key_forms(key: str) -> tuple:
    """A key as a JSON string's inside, with and without escapes of non-ASCII characters
    (what a key being typed is checked against, a character at a time)."""
    return json.dumps(key)[1:-1], json.dumps(key, ensure_ascii=False)[1:-1]


def _as_list(ways) -> list:
    return [] if ways is None else ways if isinstance(ways, list) else [ways]


def _way_key(way) -> tuple:
    """A way's frames as a key: schema nodes by identity (they are the schema's own)."""
    frames, spaces = way
    return tuple(tuple(id(x) if isinstance(x, dict) else x for x in frame)
                 for frame in frames), spaces


def json_prefix(text: str, state=None):
    """The state after ``text`` in :class:`JsonGrammar`'s grammar of any JSON object, or None
    where ``text`` cannot continue into one; ``JsonGrammar.complete(state)``: a whole object.

    Example: ``json_prefix('{"a": [1, tr')`` is a state; ``json_prefix('{"a": 01')`` None.
    """
    return _ANY_OBJECT.feed(text, state)


_ANY_OBJECT = JsonGrammar()


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


class JsonOutput:
    """The choice of each token of a text held to one value of ``grammar`` (default: any
    JSON object); ``texts[id]`` is token ``id``'s text (:func:`token_texts`). ``ends``: the
    text ends with the value (a reply in JSON); else free text may follow it (a tool call
    inside a reply)."""

    def __init__(self, texts: list, grammar: JsonGrammar | None = None, ends: bool = True):
        self.texts, self.ends = texts, ends
        self.grammar = _ANY_OBJECT if grammar is None else grammar
        self.state = self.grammar.start

    def take(self, text: str) -> bool:
        """Take ``text`` (written already, not chosen here) as the value's beginning, where it
        can be; whether it could."""
        state = self.grammar.feed(text, self.state)
        if state is not None:
            self.state = state
        return state is not None

    @property
    def complete(self) -> bool:
        """Whether the value is closed (the text should end here)."""
        return self.grammar.complete(self.state)

    def fits(self, token: int) -> bool:
        text = self.texts[token] if 0 <= token < len(self.texts) else ""
        return bool(text) and self.grammar.feed(text, self.state) is not None

    def advance(self, token: int) -> None:
        """Take ``token`` as the text's next one (it must fit)."""
        state = self.grammar.feed(self.texts[token], self.state) if self.texts[token] else None
        if state is None:
            raise GenerationError(f"JSON output: token {token} ({self.texts[token]!r}) does not "
                                  f"continue the JSON value")
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
            allowed = [t for t in np.nonzero(np.isfinite(tried))[0] if self.fits(int(t))]
            if not allowed:
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

    def _nothing_fits(self) -> GenerationError:
        return GenerationError("JSON output: no token the sampling settings leave continues "
                               "the JSON value; loosen top_k/top_p/min_p or the logit bias")
