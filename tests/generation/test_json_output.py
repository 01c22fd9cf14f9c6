"""Output held to JSON: the recognizer against Python's json parser on valid documents and
on their mutations, and the choice of tokens (greedy and sampled) among those that fit."""

import json
import random

import numpy as np
import pytest

from gradient.errors import GenerationError
from gradient.generation import json_output
from gradient.generation.json_output import JsonGrammar, JsonOutput, MAX_WHITESPACE, json_prefix


def _whole(text) -> bool:
    state = json_prefix(text)
    return state is not None and JsonGrammar.complete(state)


def _python_says_object(text) -> bool:
    """json.loads as the oracle, without its NaN and Infinity (not JSON)."""
    def refuse(name):
        raise ValueError(name)
    try:
        return isinstance(json.loads(text, parse_constant=refuse), dict)
    except ValueError:
        return False


def _documents(count, seed=0):
    rng = random.Random(seed)
    leaves = [0, -1, 12, 3.5, -0.25e-7, 1e30, 10 ** 20, "", "a b", 'quote"d', "back\\slash",
              "line\nbreak", "\u00e9\u4e2d\U0001F600", "\x01", True, False, None]

    def value(depth):
        kind = rng.randrange(6 if depth < 3 else 2)
        if kind < 2:
            return rng.choice(leaves)
        if kind < 4:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {f"k{i}": value(depth + 1) for i in range(rng.randrange(4))}
    for _ in range(count):
        doc = {f"key {i}": value(0) for i in range(rng.randrange(4))}
        yield json.dumps(doc, indent=rng.choice([None, 2]), ensure_ascii=rng.random() < 0.5,
                         separators=rng.choice([None, (",", ":")]))


@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
def test_valid_objects_are_whole_and_their_prefixes_are_not():
    for text in _documents(400):
        assert _whole(text), text
        for end in range(len(text)):
            state = json_prefix(text[:end])
            assert state is not None and not JsonGrammar.complete(state), (text, end)


def test_mutated_texts_agree_with_pythons_parser():
    rng = random.Random(1)
    alphabet = '{}[],:"\\ 0123456789.eE+-truefalsnul\n\tab\x00'
    checked = 0
    for text in _documents(400, seed=2):
        for _ in range(8):
            chars, at = list(text), rng.randrange(len(text) + 1)
            what = rng.randrange(3)
            if what == 0:
                chars.insert(at, rng.choice(alphabet))
            elif at < len(chars):
                if what == 1:
                    del chars[at]
                else:
                    chars[at] = rng.choice(alphabet)
            mutated = "".join(chars)
            assert _whole(mutated) == _python_says_object(mutated), mutated
            checked += 1
    assert checked == 3200


@pytest.mark.parametrize("text,whole", [
    ("{}", True), (' {"a" : [1, -0.5e+3, true, null, {"b": "\\u00e9\\n"}]} ', True),
    ("[]", False), ('"a"', False), ("1", False),            # an object at the top
    ('{"a": 01}', False), ('{"a": 1.}', False), ('{"a": .5}', False), ('{"a": +1}', False),
    ('{"a": 1,}', False), ("{'a': 1}", False), ("{a: 1}", False), ('{"a" 1}', False),
    ('{"a": tru}', False), ('{"a": "\\x"}', False), ('{"a": "\\u12g4"}', False),
    ('{"a": "raw\nline"}', False), ('{"a": 1}}', False), ('{"a": [1}', False),
])
def test_cases_by_hand(text, whole):
    assert _whole(text) == whole == _python_says_object(text)


def test_whitespace_runs_are_bounded():
    assert json_prefix("{" + " " * MAX_WHITESPACE) is not None
    assert json_prefix("{" + " " * (MAX_WHITESPACE + 1)) is None
    assert json_prefix("{" + " " * MAX_WHITESPACE + '"a":' + "\n" * MAX_WHITESPACE) is not None
    assert json_prefix('{"' + " " * 100) is not None               # a string's own spaces


TEXTS = ["{", "}", '"', "a", '"a"', ":", " ", "1", ",", "[", "]", "", "x}", '"b":', "\n  ",
         "}}", "true", "0", "-", "\\n", '":1}']


def _best_fitting(held, scores):
    fitting = [t for t in range(len(TEXTS)) if TEXTS[t] and json_prefix(TEXTS[t], held.state)
               is not None]
    return max(fitting, key=lambda t: (scores[t], -t))


def test_greedy_takes_the_likeliest_token_that_fits():
    rng = np.random.default_rng(0)
    for _ in range(300):
        held = JsonOutput(TEXTS)
        for step in range(12):
            scores = rng.standard_normal(len(TEXTS)).astype(np.float32)
            token = held.choose(scores)
            assert token == _best_fitting(held, scores)
            held.advance(token)
            if held.complete:
                break
    held = JsonOutput(TEXTS)
    held.advance(0)
    held.advance(1)
    assert held.complete and not held.fits(3) and held.fits(6)   # after the object: spaces
    with pytest.raises(GenerationError, match="does not continue"):
        held.advance(3)


@pytest.mark.parametrize("tries", [64, 1])       # 1: the check of every token after a miss
def test_sampling_draws_from_the_distribution_of_the_tokens_that_fit(monkeypatch, tries):
    monkeypatch.setattr(json_output, "SAMPLING_TRIES", tries)
    logits = np.random.default_rng(3).standard_normal(len(TEXTS)).astype(np.float32)
    held = JsonOutput(TEXTS)
    held.advance(0)                                  # after "{": a key, "}" or whitespace
    rng = np.random.default_rng(4)
    draws = np.array([held.choose(logits, True, rng) for _ in range(20000)])
    fitting = [t for t in range(len(TEXTS)) if held.fits(t)]
    assert sorted(set(draws.tolist())) == fitting == [1, 2, 4, 6, 13, 14, 20]
    p = np.exp(logits[fitting] - logits[fitting].max())
    freq = np.bincount(draws, minlength=len(TEXTS))[fitting] / len(draws)
    np.testing.assert_allclose(freq, p / p.sum(), atol=0.012)


def test_nothing_fitting_is_an_error():
    held = JsonOutput(TEXTS)
    scores = np.full(len(TEXTS), -np.inf, np.float32)
    scores[2] = 1.0                                  # only '"', which cannot open the text
    with pytest.raises(GenerationError, match="no token"):
        held.choose(scores)
    with pytest.raises(GenerationError, match="no token"):
        held.choose(scores, True, np.random.default_rng(0))
    assert held.state == JsonGrammar().start


# -- schemas: the grammar against the jsonschema package on instances and their mutations

jsonschema = pytest.importorskip("jsonschema")

PERSON = {
    "$defs": {
        "Colour": {"enum": ["red", "green", "blue"], "type": "string", "title": "Colour"},
        "Pet": {"type": "object", "additionalProperties": False, "title": "Pet",
                "properties": {"name": {"type": "string"}, "legs": {"type": "integer"},
                               "colour": {"$ref": "#/$defs/Colour"}},
                "required": ["name", "legs", "colour"]},
    },
    "type": "object", "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "description": "a name"},
        "age": {"type": "integer"},
        "height": {"type": ["number", "null"]},
        "nickname": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "pets": {"type": "array", "items": {"$ref": "#/$defs/Pet"}, "maxItems": 3},
        "size": {"const": "small"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "extra": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "score": {"enum": [1, 10, 2.5, None, "x"]},
    },
    "required": ["name", "age", "pets", "size"],
}
TREE = {"$ref": "#/definitions/node", "definitions": {"node": {
    "type": "object", "properties": {"value": {"type": "number"},
                                     "children": {"type": "array",
                                                  "items": {"$ref": "#/definitions/node"}}},
    "required": ["value"]}}}
OPEN = {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"],
        "additionalProperties": {"type": ["string", "array"]}}


def _instance(schema, node, rng, depth=0):
    """A random instance of ``node`` (properties in the schema's order)."""
    grammar = JsonGrammar(schema)
    node = grammar._resolve(node)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return rng.choice(node["enum"])
    if "anyOf" in node:
        return _instance(schema, rng.choice(node["anyOf"]), rng, depth)
    types = node.get("type", ["object", "array", "string", "number", "integer", "boolean",
                              "null"])
    kind = rng.choice([types] if isinstance(types, str) else types)
    if depth > 3 and kind in ("object", "array"):
        kind = "null" if "null" in (types if isinstance(types, list) else [types]) else kind
    if kind == "object":
        out = {}
        for key, value in node.get("properties", {}).items():
            if key in node.get("required", []) or rng.random() < 0.5:
                out[key] = _instance(schema, value, rng, depth + 1)
        extra = node.get("additionalProperties", True)
        if extra is not False and rng.random() < 0.5:
            out["other é"] = _instance(schema, extra if isinstance(extra, dict) else {},
                                       rng, depth + 1)
        return out
    if kind == "array":
        low, high = node.get("minItems", 0), node.get("maxItems", 3)
        return [_instance(schema, node.get("items", {}), rng, depth + 1)
                for _ in range(rng.randint(low, max(low, high) if depth < 3 else low))]
    return {"string": lambda: rng.choice(["", "Ada", 'say "hi"', "\u00e9\n"]),
            "number": lambda: rng.choice([0, -2.5, 1e-3, 7]),
            "integer": lambda: rng.choice([0, -3, 42]),
            "boolean": lambda: rng.choice([True, False]),
            "null": lambda: None}[kind]()


def _valid(schema, text) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return jsonschema.Draft202012Validator(schema).is_valid(value)


@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
@pytest.mark.parametrize("schema", [PERSON, TREE, OPEN], ids=["person", "tree", "open"])
def test_a_schemas_instances_are_whole_and_what_it_takes_is_valid(schema):
    grammar, rng = JsonGrammar(schema), random.Random(5)
    alphabet = '{}[],:"\\ 0123456789.eE-truefalsnulxy\n'
    for _ in range(100):
        value = _instance(schema, schema, rng)
        text = json.dumps(value, indent=rng.choice([None, 2]), ensure_ascii=rng.random() < 0.5)
        assert _valid(schema, text), text             # (the generator's own check)
        state = grammar.feed(text)
        assert state is not None and JsonGrammar.complete(state), text
        assert all(not JsonGrammar.complete(grammar.feed(text[:end]))
                   for end in range(len(text)))
        for _ in range(6):    # what the grammar takes whole, the schema allows
            chars, at = list(text), rng.randrange(len(text))
            chars[at:at + rng.randrange(2)] = rng.choice(alphabet) * rng.randrange(2)
            mutated = "".join(chars)
            state = grammar.feed(mutated)
            if state is not None and JsonGrammar.complete(state):
                assert _valid(schema, mutated), mutated


def test_properties_come_in_order_and_required_ones_are_not_skipped():
    grammar = JsonGrammar(PERSON)
    assert grammar.feed('{"name": "a", "age": 1, "pets": [], "size": "small"}') is not None
    assert grammar.feed('{"age": 1') is None                    # name first
    assert grammar.feed('{"name": "a", "height": null, "age"') is None   # age before height
    assert grammar.feed('{"name": "a", "age": 1, "pets": [], "size": "small", "name"') is None
    assert grammar.feed('{"name": "a", "age": 1, "pets": []}') is None  # size is required
    assert grammar.feed('{"name": "a", "age": 1.5') is None              # an integer
    assert grammar.feed('{"name": "a", "age": 1, "pets": [{"name": "b", "legs": 4, '
                        '"colour": "pink"') is None
    assert grammar.feed('{"name": "a", "age": 1, "pets": [], "size": "small", "tags": []}'
                        ) is None                                         # minItems 1
    pets = ', '.join(['{"name": "b", "legs": 4, "colour": "red"}'] * 4)
    assert grammar.feed('{"name": "a", "age": 1, "pets": [' + pets) is None   # maxItems 3
    assert grammar.feed('{"name": "a", "age": 1, "pets": [], "size": "small", "score": 1')\
        is not None                                                       # 1, or 10 next
    assert JsonGrammar.complete(grammar.feed(
        '{"name": "a", "age": 1, "pets": [], "size": "small", "score": 10}'))


def test_unions_follow_every_branch_that_fits():
    """anyOf of two objects told apart by a later key (a tagged union, as Pydantic writes
    Union[Cat, Dog]), and of numbers of two kinds."""
    cat = {"type": "object", "additionalProperties": False, "required": ["kind", "lives"],
           "properties": {"kind": {"const": "cat"}, "lives": {"type": "integer"}}}
    dog = {"type": "object", "additionalProperties": False, "required": ["kind", "good"],
           "properties": {"kind": {"const": "dog"}, "good": {"type": "boolean"}}}
    grammar = JsonGrammar({"type": "array", "items": {"anyOf": [cat, dog]}})
    text = '[{"kind": "dog", "good": true}, {"kind": "cat", "lives": 9}]'
    assert JsonGrammar.complete(grammar.feed(text))
    assert len(grammar.feed('[{"kind": ')) == 2                # both branches still fit
    assert len(grammar.feed('[{"kind": "c')) == 1
    assert grammar.feed('[{"kind": "cat", "good"') is None
    assert grammar.feed('[{"kind": "dog", "good": true}, {"kind": "cat", "good"') is None
    # many items: the ways stay two (ways come to the same frames once an item closes)
    many = "[" + ", ".join(['{"kind": "cat", "lives": 1}'] * 40)
    assert len(grammar.feed(many)) == 1 and len(grammar.feed(many + ', {"kind": ')) == 2
    numbers = JsonGrammar({"type": "object", "properties": {"n": {"anyOf": [
        {"type": "integer"}, {"type": "number"}, {"type": "null"}]}}})
    for value in ("1", "-2.5e3", "null"):
        assert JsonGrammar.complete(numbers.feed('{"n": ' + value + "}"))


@pytest.mark.parametrize("schema,says", [
    ({"type": "string", "pattern": "a+"}, "pattern"),
    ({"type": "integer", "minimum": 0}, "minimum"),
    ({"allOf": [{"type": "string"}]}, "allOf"),
    ({"anyOf": []}, "non-empty"),
    ({"$ref": "#/$defs/missing"}, "leads nowhere"),
    ({"$ref": "other.json#/a"}, "within the schema"),
    ({"type": "array", "items": [{"type": "string"}]}, "as a list"),
    ({"type": "text"}, "unknown type"),
    ({"enum": []}, "non-empty"),
    ("object", "a schema is an object"),
])
def test_what_a_grammar_cannot_follow_is_refused(schema, says):
    with pytest.raises(GenerationError, match=says):
        JsonGrammar(schema)


def test_schemas_out_of_shape_are_refused_not_crashed_on():
    """Random schema-like documents (what a fuzzer sends as response_format): a grammar, or
    a GenerationError saying what is wrong; never another exception."""
    rng = random.Random(9)
    atoms = [None, True, False, 0, -1, 2.5, "x", "string", "object", [], {}, ["a"], [1],
             {"type": "integer"}, "#/$defs/a", "#"]
    keys = ["type", "properties", "required", "additionalProperties", "items", "minItems",
            "maxItems", "enum", "const", "anyOf", "oneOf", "$ref", "$defs", "definitions",
            "title", "pattern"]

    def schema(depth=0):
        node = {}
        for key in rng.sample(keys, rng.randrange(4)):
            node[key] = (schema(depth + 1) if depth < 3 and rng.random() < 0.3 else
                         {"a": schema(depth + 1)} if depth < 3 and rng.random() < 0.2 else
                         rng.choice(atoms))
        return node
    made = 0
    for _ in range(3000):
        try:
            grammar = JsonGrammar(schema())
        except GenerationError:
            continue
        made += 1
        for text in ("{}", '{"a": 1}', "[1, 2]", '"x"', "12 ", "null", "true"):
            grammar.feed(text)
    assert made > 100
