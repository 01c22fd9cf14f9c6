"""Tool calls, as OpenAI's chat completions make them: the ``tools`` described to the model,
its calls read back as ``tool_calls``, and the calls and their results in later turns.

``tool_choice`` "required", or one function named: the reply is held
(:mod:`gradient.generation.json_output`) to a JSON list of calls, ``[{"name": ...,
"arguments": {...}}]``, each name one of the tools and its arguments an instance of that
tool's ``parameters`` schema, as vLLM does: a call is always well formed, whatever the model.
``"auto"`` (the default with tools): the model writes freely, and its calls are what it writes
between ``<tool_call>`` and ``</tool_call>``, a JSON object each (the format Hermes's, Qwen's
and SmolLM3's chat templates teach), held to a call of the tools from the ``<tool_call>`` on
until the object closes (:meth:`ToolUse.call_grammar`); text before the first is the reply's
content.

The tools reach the model through its chat template where the template renders them; one that
does not is given them in a system message that teaches the format above, and earlier calls
and results are written into the conversation in the same format, so a model whose template
knows nothing of tools can still use them.

Example::

    >>> use = ToolUse.from_request(body["tools"], body.get("tool_choice"), True, tokenizer)
    >>> messages = use.conversation(messages)      # what the chat template renders
    >>> reader = use.reader()                      # per choice
    >>> reader.push(text_piece)                    # the content to send now
    >>> content, calls = reader.finish()           # calls: OpenAI's tool_calls
"""

from __future__ import annotations

import json
import uuid

from ..generation.json_output import JsonGrammar
from ..tokenizers.surrogates import lone_surrogate
from .stops import StopFilter

__all__ = ["ToolUse", "ToolError", "CALL_OPEN", "CALL_CLOSE"]

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"


class ToolError(ValueError):
    """A request's tools or tool_choice out of place (the server answers 400)."""

    def __init__(self, message: str, param: str = "tools"):
        super().__init__(message)
        self.param = param


class ToolUse:
    """The tools of one request and how they may be called: ``mode`` is "auto" or
    "required" (a named function is "required" with one tool)."""

    def __init__(self, tools: list, mode: str, parallel: bool, renders: bool):
        self.tools, self.mode, self.parallel, self.renders = tools, mode, parallel, renders

    @classmethod
    def from_request(cls, tools, choice, parallel, tokenizer) -> ToolUse | None:
        """The request's ``tools``, ``tool_choice`` and ``parallel_tool_calls`` checked; None
        where no tool may be called (no tools, or ``tool_choice`` "none")."""
        if tools is None:
            if choice not in (None, "none"):
                raise ToolError("'tool_choice' needs 'tools'", "tool_choice")
            return None
        if not isinstance(tools, list):
            raise ToolError("'tools' must be a list of {\"type\": \"function\", \"function\": "
                            "{\"name\": ..., \"parameters\": {...}}}")
        functions = {}
        for i, tool in enumerate(tools):
            spec = tool.get("function") if isinstance(tool, dict) else None
            if not (isinstance(tool, dict) and tool.get("type") == "function"
                    and isinstance(spec, dict) and isinstance(spec.get("name"), str)
                    and spec["name"]):
                raise ToolError(f"tools[{i}] must be {{\"type\": \"function\", \"function\": "
                                f"{{\"name\": ..., \"parameters\": {{...}}}}}}")
            if spec["name"] in functions:
                raise ToolError(f"two tools are named {spec['name']!r}")
            parameters = spec.get("parameters", {"type": "object"})
            try:
                JsonGrammar(parameters)
            except ValueError as e:
                raise ToolError(f"tools[{i}] ({spec['name']}): its parameters: {e}") from None
            functions[spec["name"]] = {**spec, "parameters": parameters}
        if not isinstance(parallel, bool):
            raise ToolError("'parallel_tool_calls' must be true or false", "parallel_tool_calls")
        if not functions or choice == "none":
            return None
        if choice in (None, "auto", "required"):
            mode, chosen = choice or "auto", list(functions.values())
        elif (isinstance(choice, dict) and choice.get("type") == "function"
              and isinstance(choice.get("function"), dict)):
            name = choice["function"].get("name")
            if name not in functions:
                raise ToolError(f"'tool_choice' names the function {name!r}, which is not "
                                f"among the tools", "tool_choice")
            mode, chosen, parallel = "required", [functions[name]], False   # one call of it
        else:
            raise ToolError("'tool_choice' must be \"none\", \"auto\", \"required\" or "
                            "{\"type\": \"function\", \"function\": {\"name\": ...}}",
                            "tool_choice")
        template = tokenizer.get_chat_template(tools=tools) if tokenizer.chat_template else ""
        return cls(chosen, mode, parallel, renders="tools" in template)

    # -- the prompt
    def conversation(self, messages: list) -> list:
        """The messages for the chat template: as they are where the template renders tools
        (a call's arguments as an object, as templates expect); otherwise the tools in a
        system message and earlier calls and results written out in the calls' format."""
        if self.renders:
            return [{**m, "tool_calls": [_as_template_call(c) for c in m["tool_calls"]]}
                    if m.get("tool_calls") else m for m in messages]
        out = []
        for m in messages:
            if m.get("tool_calls"):
                written = "\n".join(f"{CALL_OPEN}{json.dumps(_as_template_call(c)['function'])}"
                                    f"{CALL_CLOSE}" for c in m["tool_calls"])
                out.append({"role": "assistant",
                            "content": ((m.get("content") or "") + "\n" + written).strip()})
            elif m["role"] == "tool":
                out.append({"role": "user", "content": f"<tool_response>\n{m['content']}\n"
                                                       f"</tool_response>"})
            else:
                out.append(m)
        guide = {"role": "system", "content": self._guide()}
        if out and out[0]["role"] == "system":
            return [{**out[0], "content": out[0]["content"] + "\n\n" + guide["content"]}] + \
                out[1:]
        return [guide] + out

    def template_tools(self) -> list | None:
        """The ``tools`` argument of the chat template (None where it does not render them)."""
        return [{"type": "function", "function": f} for f in self.tools] if self.renders \
            else None

    def _guide(self) -> str:
        listed = json.dumps([{k: f[k] for k in ("name", "description", "parameters") if k in f}
                             for f in self.tools])
        if self.mode == "required":
            how = ('Answer with a JSON list of the calls to make, [{"name": <function name>, '
                   '"arguments": <its arguments as an object>}], and nothing else.')
        else:
            how = (f'To call a function, write {CALL_OPEN}{{"name": <function name>, '
                   f'"arguments": <its arguments as an object>}}{CALL_CLOSE}, one such block '
                   f"per call; the results come back in the next message. Answer without a "
                   f"call where none is needed.")
        return f"You can call these functions: {listed}\n{how}"

    # -- the reply
    def grammar(self) -> JsonGrammar | None:
        """What a "required" reply is held to: a list of calls (one where calls are not
        parallel), each a tool's name and arguments of its parameters' schema; None for
        "auto"."""
        if self.mode != "required":
            return None
        items = {"type": "array", "minItems": 1, "items": self._call_schema()}
        if not self.parallel:
            items["maxItems"] = 1
        return JsonGrammar(_with_definitions(items, self.tools))

    def call_grammar(self) -> JsonGrammar | None:
        """What an "auto" reply's text after each ``<tool_call>`` is held to: one call, a
        tool's name and arguments of its parameters' schema (llama.cpp's "lazy grammar": free
        text until the model starts a call); None for "required"."""
        if self.mode != "auto":
            return None
        return JsonGrammar(_with_definitions(self._call_schema(), self.tools))

    def _call_schema(self) -> dict:
        """One call of any of the tools (the parameters' own ``$defs`` resolve against the
        root: :func:`_with_definitions`)."""
        calls = [{"type": "object", "additionalProperties": False,
                  "properties": {"name": {"const": f["name"]}, "arguments": f["parameters"]},
                  "required": ["name", "arguments"]} for f in self.tools]
        return calls[0] if len(calls) == 1 else {"anyOf": calls}

    def reader(self):
        """A reader of one choice's text: ``push(piece)`` gives the content to send now,
        ``finish()`` the rest of it and the calls."""
        return _RequiredReader() if self.mode == "required" else _AutoReader(self.tools)


def _as_template_call(call: dict) -> dict:
    """An OpenAI tool call with its arguments as an object (chat templates write them with
    ``tojson``); arguments that are not JSON (or nest too deeply to read, or hold a lone
    surrogate escape, which no tokenizer takes as text) stay a string."""
    function = dict(call.get("function") or {})
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except (ValueError, RecursionError):
            pass
        else:
            if lone_surrogate(parsed) is None:
                function["arguments"] = parsed
    return {**call, "type": "function", "function": function}


def _with_definitions(schema: dict, tools: list) -> dict:
    """``schema`` with every tool's ``$defs`` (and ``definitions``) at its root, where the
    tool's ``$ref``\\ s find them."""
    merged = dict(schema)
    for key in ("$defs", "definitions"):
        found = {}
        for f in tools:
            found.update(f["parameters"].get(key, {}) if isinstance(f["parameters"], dict)
                         else {})
        if found:
            merged[key] = found
    return merged


def _openai_call(name: str, arguments) -> dict:
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}


class _RequiredReader:
    """A held reply: nothing is content; the whole text is the JSON list of calls."""

    def __init__(self):
        self.text = ""

    def push(self, piece: str) -> str:
        self.text += piece
        return ""

    def finish(self) -> tuple:
        try:
            calls = json.loads(self.text)
        except ValueError:      # (the reply was cut by max_tokens before its list closed)
            return self.text, []
        return None, [_openai_call(c["name"], c["arguments"]) for c in calls]


class _AutoReader:
    """Free text: content up to the first ``<tool_call>``, then calls, one JSON object
    between each ``<tool_call>`` and ``</tool_call>``."""

    def __init__(self, tools: list):
        self.names = {f["name"] for f in tools}
        self.content = StopFilter([CALL_OPEN])
        self.text = ""

    def push(self, piece: str) -> str:
        self.text += piece
        return self.content.push(piece)

    def finish(self) -> tuple:
        rest = self.content.flush()
        if not self.content.stopped:
            return rest, []
        tail = self.text.partition(CALL_OPEN)[2]
        calls = []
        for block in tail.split(CALL_OPEN):
            body = block.split(CALL_CLOSE)[0].strip()
            try:
                call = json.loads(body)
            except ValueError:
                continue
            if (isinstance(call, dict) and call.get("name") in self.names
                    and isinstance(call.get("arguments", {}), dict)):
                calls.append(_openai_call(call["name"], call.get("arguments", {})))
        if not calls:       # no call that reads as one: the text is the reply
            return rest + CALL_OPEN + tail, []
        return rest or None, calls
