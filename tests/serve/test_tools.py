"""Tool calls: the request's tools checked, the grammar of a required call, the calls read
from free text, and the conversation a chat template renders."""

import json
import random

import pytest

from gradient.generation.json_output import JsonGrammar
from gradient.serve.tools import CALL_CLOSE, CALL_OPEN, ToolError, ToolUse

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "additionalProperties": False,
                   "properties": {"city": {"type": "string"}, "unit": {"$ref": "#/$defs/Unit"}},
                   "required": ["city", "unit"], "$defs": {"Unit": {"enum": ["C", "F"]}}}}}
ADD = {"type": "function", "function": {
    "name": "add", "parameters": {"type": "object", "required": ["a", "b"],
                                  "properties": {"a": {"type": "number"},
                                                 "b": {"type": "number"}}}}}


class Template:
    """A tokenizer as far as ToolUse looks at it: its chat template."""

    def __init__(self, template):
        self.chat_template = template

    def get_chat_template(self, chat_template=None, tools=None):
        return self.chat_template


PLAIN = Template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
WITH_TOOLS = Template("{% if tools %}{{ tools | tojson }}{% endif %}{% for m in messages %}"
                      "{{ m['content'] }}{% endfor %}")


def _use(choice="auto", tools=(WEATHER, ADD), parallel=True, tokenizer=PLAIN):
    return ToolUse.from_request(list(tools), choice, parallel, tokenizer)


@pytest.mark.parametrize("tools,choice,parallel,says", [
    ("get_weather", None, True, "must be a list"),
    ([{"type": "function"}], None, True, "tools\\[0\\] must be"),
    ([{"type": "retrieval", "function": {"name": "x"}}], None, True, "tools\\[0\\] must be"),
    ([WEATHER, WEATHER], None, True, "two tools are named"),
    ([{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": "string", "pattern": "x"}}}}}], None,
     True, "pattern"),
    ([WEATHER], {"type": "function", "function": {"name": "nope"}}, True, "not among"),
    ([WEATHER], "sometimes", True, "'tool_choice' must be"),
    ([WEATHER], "auto", "yes", "parallel_tool_calls"),
    (None, "required", True, "needs 'tools'"),
])
def test_bad_tools_are_refused(tools, choice, parallel, says):
    with pytest.raises(ToolError, match=says):
        ToolUse.from_request(tools, choice, parallel, PLAIN)


def test_no_tool_may_be_called():
    assert ToolUse.from_request(None, None, True, PLAIN) is None
    assert ToolUse.from_request([WEATHER], "none", True, PLAIN) is None
    assert ToolUse.from_request([], "auto", True, PLAIN) is None


def test_a_required_call_is_a_list_of_calls_of_the_tools():
    grammar = _use("required").grammar()

    def whole(text):
        state = grammar.feed(text)
        return state is not None and JsonGrammar.complete(state)
    assert whole('[{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}]')
    assert whole('[{"name": "add", "arguments": {"a": 1, "b": 2.5}}, '
                 '{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "F"}}]')
    assert grammar.feed('[{"name": "mul"') is None                      # not a tool
    assert grammar.feed('[{"name": "add", "arguments": {"a": "one"') is None
    assert grammar.feed('[{"name": "get_weather", "arguments": {"city": "P", "unit": "K"'
                        ) is None                                      # the $defs' enum
    assert not whole("[]")
    one = _use("required", parallel=False).grammar()
    assert one.feed('[{"name": "add", "arguments": {"a": 1, "b": 2}}, ') is None
    named = _use({"type": "function", "function": {"name": "add"}}).grammar()
    assert named.feed('[{"name": "get_weather"') is None
    assert named.feed('[{"name": "add", "arguments": {"a": 1, "b": 2}}, ') is None
    assert _use("auto").grammar() is None


def test_a_required_reply_reads_as_openais_tool_calls():
    reader = _use("required").reader()
    text = '[{"name": "add", "arguments": {"a": 1, "b": 2}}]'
    assert reader.push(text[:10]) == "" and reader.push(text[10:]) == ""
    content, calls = reader.finish()
    assert content is None and len(calls) == 1
    assert calls[0]["type"] == "function" and calls[0]["id"].startswith("call_")
    assert calls[0]["function"] == {"name": "add", "arguments": '{"a": 1, "b": 2}'}
    cut = _use("required").reader()
    cut.push('[{"name": "add", "argu')                       # max_tokens came first
    assert cut.finish() == ('[{"name": "add", "argu', [])


@pytest.mark.parametrize("seed", range(6))
def test_calls_are_read_from_free_text_however_it_arrives(seed):
    text = (f'Let me look. {CALL_OPEN}\n{{"name": "get_weather", "arguments": {{"city": "Paris", '
            f'"unit": "C"}}}}\n{CALL_CLOSE}\n{CALL_OPEN}{{"name": "add", "arguments": {{"a": 1, '
            f'"b": 2}}}}{CALL_CLOSE}')
    rng, reader, sent, at = random.Random(seed), _use().reader(), "", 0
    while at < len(text):
        step = rng.randint(1, 7)
        sent += reader.push(text[at:at + step])
        at += step
    rest, calls = reader.finish()
    assert sent + (rest or "") == "Let me look. "
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("get_weather", {"city": "Paris", "unit": "C"}), ("add", {"a": 1, "b": 2})]


def test_text_without_a_call_that_reads_as_one_is_the_reply():
    for text in ("No call here, just <tool and more.",
                 f"A {CALL_OPEN}{{\"name\": \"mul\", \"arguments\": {{}}}}{CALL_CLOSE}",
                 f"B {CALL_OPEN}not json{CALL_CLOSE}"):
        reader = _use().reader()
        sent = reader.push(text)
        rest, calls = reader.finish()
        assert sent + rest == text and calls == []


def test_a_template_without_tools_is_taught_them_and_shown_earlier_calls():
    use = _use("auto")
    assert not use.renders and use.template_tools() is None
    call = {"id": "call_1", "type": "function",
            "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}
    messages = use.conversation([
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+2?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "3", "tool_call_id": "call_1"}])
    assert messages[0]["role"] == "system" and messages[0]["content"].startswith("Be brief.")
    assert '"name": "get_weather"' in messages[0]["content"] and CALL_OPEN in messages[0][
        "content"]
    assert messages[2] == {"role": "assistant", "content": f'{CALL_OPEN}{{"name": "add", '
                                                           f'"arguments": {{"a": 1, "b": 2}}}}'
                                                           f'{CALL_CLOSE}'}
    assert messages[3] == {"role": "user", "content": "<tool_response>\n3\n</tool_response>"}
    assert _use("required").conversation([{"role": "user", "content": "hi"}])[0][
        "content"].endswith("and nothing else.")


def test_a_template_with_tools_gets_them_and_calls_with_object_arguments():
    use = _use("auto", tokenizer=WITH_TOOLS)
    assert use.renders
    assert [t["function"]["name"] for t in use.template_tools()] == ["get_weather", "add"]
    call = {"id": "c", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}
    messages = use.conversation([{"role": "assistant", "content": "", "tool_calls": [call]}])
    assert messages[0]["tool_calls"][0]["function"]["arguments"] == {"a": 1}
    assert call["function"]["arguments"] == '{"a": 1}'             # the request's untouched


@pytest.mark.parametrize("arguments", ["[" * 100000 + "]" * 100000, '{"a": "\\ud800"}', "x"])
def test_arguments_a_template_cannot_take_as_an_object_stay_a_string(arguments):
    """A call's arguments that are not JSON, nest too deeply for Python's parser (it raised
    RecursionError: a 500), or hold a lone surrogate escape (no tokenizer takes the parsed
    text) reach the template as the client's string."""
    use = _use("auto", tokenizer=WITH_TOOLS)
    call = {"id": "c", "type": "function", "function": {"name": "add", "arguments": arguments}}
    messages = use.conversation([{"role": "assistant", "content": "", "tool_calls": [call]}])
    assert messages[0]["tool_calls"][0]["function"]["arguments"] == arguments
