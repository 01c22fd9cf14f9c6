"""OpenAI's request bodies read into the engine's :class:`~.engine.Job`\\ s, every field
checked: what a request asks for, or a :class:`RequestError` (its HTTP status and OpenAI's
error fields) saying what was expected.

Besides OpenAI's sampling fields (``temperature``, ``top_p``, ``seed``, ``stop``,
``logit_bias``, ``presence_penalty``, ``frequency_penalty``, ``logprobs``, ``n`` ...) a
request may set ``top_k``, ``min_p`` and ``repetition_penalty``, as vLLM's and llama.cpp's
servers take them. ``response_format`` holds the text to one JSON object (``json_object``) or
to an instance of a JSON schema (``json_schema``, :mod:`gradient.generation.json_output`).
Chat requests may call tools (:mod:`.tools`). The completions take several prompts at once
(choice ``i`` of prompt ``p`` is ``choices[p * n + i]``) and ``echo`` (the prompt's text
before the completion, with its tokens' log-probabilities when ``logprobs`` is set, and
``max_tokens`` may then be 0: scoring a text, as evaluation harnesses do); a completion's
``max_tokens`` is 16 unless given, as OpenAI's is. What the server
does not do is refused rather than ignored: a schema keyword the grammar cannot follow,
``suffix``, ``best_of`` other than ``n``, OpenAI's older ``functions``.

Example::

    >>> jobs, stream, include_usage, echoes, tools = read_request(body, True, engine, "m")
"""

from __future__ import annotations

import json

from starlette.responses import JSONResponse

from ..errors import GenerationError
from ..generation.json_output import JsonGrammar
from ..tokenizers.surrogates import lone_surrogate
from .engine import Job
from .tools import ToolError, ToolUse

__all__ = ["RequestError", "read_json", "read_request", "unknown_model", "MAX_CHOICES",
           "MAX_PROMPTS", "COMPLETION_TOKENS"]


class RequestError(Exception):
    """A request the server refuses: its HTTP status and OpenAI error fields."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 kind: str = "invalid_request_error", code: str | None = None, headers=None):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind
        self.code, self.headers = code, headers

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": self.message, "type": self.kind,
                                       "param": self.param, "code": self.code}},
                            status_code=self.status, headers=self.headers)


async def read_json(request) -> dict:
    try:
        body = json.loads(await request.body())
    except ValueError as e:
        raise RequestError(400, f"the request body is not valid JSON: {e}") from None
    except RecursionError:     # Python's parser recurses into each array and object
        raise RequestError(400, "the request body nests arrays or objects too deeply to "
                           "read") from None
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    lone = lone_surrogate(body)    # (JSON's "\ud800" escape, alone: no tokenizer takes it)
    if lone is not None:
        raise RequestError(400, f"the request holds text that is not Unicode: the unpaired "
                           f"surrogate U+{ord(lone):04X}; send UTF-8 text (a character past "
                           f"U+FFFF as its surrogate pair)")
    return body


def unknown_model(name, model_id: str) -> RequestError:
    return RequestError(404, f"the model {name!r} does not exist; this server serves "
                        f"{model_id!r}", "model", code="model_not_found")


def read_request(body: dict, chat: bool, engine, model_id: str) -> tuple:
    """The :class:`Job`\\ s a request asks for (one per prompt: the completions take several),
    ``stream``, ``include_usage``, the text each prompt's choices begin with (``echo``) and
    the request's :class:`~.tools.ToolUse` (or None); RequestError for anything out of
    place."""
    model = body.get("model")
    if not isinstance(model, str):
        raise RequestError(400, "'model' is required: a string", "model")
    if model != model_id:
        raise unknown_model(model, model_id)
    _refuse_unsupported(body, chat)
    if chat:
        prompts, texts, tools = _chat_prompt(body, engine.tokenizer)
    else:
        prompts, texts = _prompts(body.get("prompt"), engine.tokenizer, engine.vocab_size)
        tools = None
    for prompt in prompts:
        if len(prompt) >= engine.context:
            raise RequestError(400, f"the prompt is {len(prompt)} tokens long; this model's "
                               f"context holds {engine.context}",
                               "messages" if chat else "prompt", code="context_length_exceeded")
    n = _integer("n", body.get("n"), 1, None, 1)
    if n > MAX_CHOICES:
        raise RequestError(400, f"'n' must be at most {MAX_CHOICES}", "n")
    echo = False if chat else _flag(body, "echo")
    logprobs = _logprobs(body, chat)
    if not chat:
        best_of = _integer("best_of", body.get("best_of"), 1, None, n)
        if best_of != n:
            raise RequestError(400, "'best_of' other than 'n' is not supported: every choice "
                               "generated is returned; leave it out", "best_of")
    # (with echo, 0 new tokens is the prompt alone: its log-probabilities score a text)
    limit = _integer("max_tokens", body.get("max_completion_tokens", body.get("max_tokens")),
                     0 if echo else 1, None, None if chat else COMPLETION_TOKENS)
    settings = _sampling(body, engine.vocab_size)
    if tools is not None and tools.mode == "required":
        if settings["json_grammar"] is not None:
            raise RequestError(400, "'response_format' and a required tool call both say what "
                               "the reply is; give one", "response_format")
        settings["json_grammar"] = tools.grammar()     # a JSON list of calls
    stop = body.get("stop")
    stop = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop)):
        raise RequestError(400, "'stop' must be a string or a list of at most 4 strings", "stop")
    stream = _flag(body, "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError(400, "'stream_options' must be an object", "stream_options")
    calls = tools.call_grammar() if tools is not None else None
    jobs = [Job(prompt, engine.context - len(prompt) if limit is None else
                min(limit, engine.context - len(prompt)), emit=None, stop=stop, chat=chat, n=n,
                logprobs=logprobs, prompt_logprobs=logprobs if echo else None,
                call_grammar=calls, **settings)
            for prompt in prompts]
    echoes = [text if echo else "" for text in texts]
    return jobs, stream, bool(options.get("include_usage")), echoes, tools


def _chat_prompt(body: dict, tokenizer) -> tuple:
    """A chat request's prompt (its messages through the chat template, with the tools where
    they may be called), ``[None]`` for its text, and its :class:`~.tools.ToolUse`."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list of messages", "messages")
    turns = [_message(m, i) for i, m in enumerate(messages)]
    try:
        tools = ToolUse.from_request(body.get("tools"), body.get("tool_choice"),
                                     body.get("parallel_tool_calls", True), tokenizer)
    except ToolError as e:
        raise RequestError(400, str(e), e.param) from None
    try:
        prompt = list(tokenizer.apply_chat_template(
            tools.conversation(turns) if tools else turns,
            tools=tools.template_tools() if tools else None, add_generation_prompt=True))
    except Exception as e:   # noqa: BLE001  (no template, a role it refuses ...)
        raise RequestError(400, f"the chat template cannot render these messages: {e}",
                           "messages") from None
    return [prompt], [None], tools


def _sampling(body: dict, vocab: int) -> dict:
    """The request's sampling settings, as :class:`Job` takes them: OpenAI's, vLLM's and
    llama.cpp's extras (``top_k``, ``min_p``, ``repetition_penalty``), the grammar of
    ``response_format``."""
    top_p = _number(body, "top_p", 0.0, 1.0, 1.0)
    if top_p == 0.0:
        raise RequestError(400, "'top_p' must be above 0", "top_p")
    repetition_penalty = _number(body, "repetition_penalty", 0.0, 100.0, None)
    if repetition_penalty == 0.0:
        raise RequestError(400, "'repetition_penalty' must be above 0 (1 turns it off)",
                           "repetition_penalty")
    return {"temperature": _number(body, "temperature", 0.0, 2.0, 1.0),
            "top_p": None if top_p >= 1.0 else top_p,
            "top_k": _integer("top_k", body.get("top_k"), 0, None, 0) or None,
            "min_p": _number(body, "min_p", 0.0, 1.0, None),
            "repetition_penalty": repetition_penalty,
            "presence_penalty": _number(body, "presence_penalty", -2.0, 2.0, 0.0),
            "frequency_penalty": _number(body, "frequency_penalty", -2.0, 2.0, 0.0),
            "logit_bias": _logit_bias(body.get("logit_bias"), vocab),
            "seed": _integer("seed", body.get("seed"), None, None, None),
            "json_grammar": _json_grammar(body)}


#: The most choices one request may ask for (``n``), and the most prompts it may hold.
MAX_CHOICES = 16
MAX_PROMPTS = 32
#: New tokens of a completion whose request gives no ``max_tokens``: OpenAI's default for
#: ``/v1/completions`` (a chat's reply runs to its end or the context, as OpenAI's does).
COMPLETION_TOKENS = 16


def _prompts(raw, tokenizer, vocab: int) -> tuple:
    """The token ids of a completions request's prompts and their texts: ``prompt`` is a
    string, a list of token ids, or a list of several of either."""
    def token_ids(p):
        return isinstance(p, list) and p and all(type(t) is int for t in p)
    if isinstance(raw, str) or token_ids(raw):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise RequestError(400, "'prompt' must be a string, a list of token ids, or a list of "
                           "several of either", "prompt")
    if len(raw) > MAX_PROMPTS:
        raise RequestError(400, f"'prompt' holds {len(raw)} prompts; a request may hold at "
                           f"most {MAX_PROMPTS}", "prompt")
    prompts, texts = [], []
    for p in raw:
        if isinstance(p, str):
            encoded = tokenizer.encode(p)          # ids, or an Encoding holding them
            ids, text = list(getattr(encoded, "ids", encoded)), p
        elif token_ids(p):
            outside = next((t for t in p if not 0 <= t < vocab), None)
            if outside is not None:
                raise RequestError(400, f"'prompt' holds the token id {outside}; this model's "
                                   f"ids run from 0 to {vocab - 1}", "prompt")
            ids, text = list(p), tokenizer.decode(p)
        else:
            raise RequestError(400, "'prompt' must be a string, a list of token ids, or a list "
                               "of several of either", "prompt")
        if not ids:
            raise RequestError(400, "the prompt encodes to no tokens", "prompt")
        prompts.append(ids)
        texts.append(text)
    return prompts, texts


def _refuse_unsupported(body: dict, chat: bool) -> None:
    """OpenAI's fields asking for what this server does not do, refused rather than ignored
    (a reply that silently skips them would look like the model's own choice)."""
    if body.get("functions") and body.get("function_call", "auto") != "none":
        raise RequestError(400, "'functions' is OpenAI's older form of 'tools': send the "
                           "functions as 'tools' (and 'function_call' as 'tool_choice')",
                           "functions")
    if not chat and body.get("suffix") not in (None, ""):
        raise RequestError(400, "'suffix' (inserting text) is not supported; leave it out",
                           "suffix")


def _json_grammar(body: dict) -> JsonGrammar | None:
    """The grammar ``response_format`` holds the text to: any JSON object (``json_object``),
    the instances of a schema (``json_schema``), or None (``text``, or none given)."""
    form = body.get("response_format")
    if form is None:
        return None
    kind = form.get("type") if isinstance(form, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise RequestError(400, "'response_format' must be an object whose 'type' is \"text\", "
                           "\"json_object\" or \"json_schema\"", "response_format")
    if kind == "text":
        return None
    if kind == "json_object":
        return JsonGrammar()
    spec = form.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), (dict, bool)):
        raise RequestError(400, "'response_format' json_schema needs 'json_schema': {'name': "
                           "..., 'schema': {...}}", "response_format")
    try:
        return JsonGrammar(spec.get("schema", {}))
    except GenerationError as e:
        raise RequestError(400, f"'response_format': {e}", "response_format") from None


def _flag(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestError(400, f"'{name}' must be true or false", name)
    return value


def _logit_bias(raw, vocab: int) -> dict:
    """``logit_bias``, an object from token ids (JSON's keys are strings) to biases from -100
    to 100, as ``{id: bias}``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise RequestError(400, "'logit_bias' must be an object mapping token ids to biases "
                           "from -100 to 100", "logit_bias")
    bias = {}
    for key, value in raw.items():
        try:
            token = int(key)
        except ValueError:
            raise RequestError(400, f"'logit_bias' has the key {key!r}; its keys are token ids",
                               "logit_bias") from None
        if not 0 <= token < vocab:
            raise RequestError(400, f"'logit_bias' holds the token id {token}; this model's ids "
                               f"run from 0 to {vocab - 1}", "logit_bias")
        if type(value) not in (int, float) or not -100 <= value <= 100:
            raise RequestError(400, f"'logit_bias' gives token {token} the bias {value!r}; a "
                               f"bias is a number from -100 to 100", "logit_bias")
        bias[token] = float(value)
    return bias


def _logprobs(body: dict, chat: bool) -> int | None:
    """How many likeliest tokens to report with each token's log-probability, or None for no
    log-probabilities: chat's ``logprobs`` (true/false) and ``top_logprobs`` (0-20), the
    completions' ``logprobs`` (0-5)."""
    if not chat:
        value = body.get("logprobs")
        return None if value is None else _integer_in("logprobs", value, 0, 5)
    wanted, top = body.get("logprobs", False), body.get("top_logprobs")
    if not isinstance(wanted, bool):
        raise RequestError(400, "'logprobs' must be true or false", "logprobs")
    if top is not None and not wanted:
        raise RequestError(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs")
    return (0 if top is None else _integer_in("top_logprobs", top, 0, 20)) if wanted else None


def _integer_in(name, value, low, high) -> int:
    if type(value) is not int or not low <= value <= high:
        raise RequestError(400, f"'{name}' must be an integer from {low} to {high}", name)
    return value


def _message(m, i: int) -> dict:
    if not isinstance(m, dict) or not isinstance(m.get("role"), str):
        raise RequestError(400, f"messages[{i}] must be an object with a 'role'", "messages")
    content = m.get("content")
    if isinstance(content, list):   # parts: the text ones, joined
        if not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
            raise RequestError(400, f"messages[{i}]: only text content parts are supported",
                               "messages")
        content = "".join(str(p.get("text", "")) for p in content)
    calls = m.get("tool_calls")
    if calls is not None:      # an assistant's earlier tool calls
        if m["role"] != "assistant" or not isinstance(calls, list) or not all(
                isinstance(c, dict) and isinstance(c.get("function"), dict)
                and isinstance(c["function"].get("name"), str) for c in calls):
            raise RequestError(400, f"messages[{i}].tool_calls must be an assistant's list of "
                               f"{{\"id\", \"type\": \"function\", \"function\": {{\"name\", "
                               f"\"arguments\"}}}}", "messages")
        content = content or ""
    if not isinstance(content, str):
        raise RequestError(400, f"messages[{i}].content must be a string", "messages")
    message = {"role": m["role"], "content": content}
    if calls:
        message["tool_calls"] = calls
    if m["role"] == "tool" and isinstance(m.get("tool_call_id"), str):
        message["tool_call_id"] = m["tool_call_id"]
    return message


def _integer(name, value, low, high, default):
    if value is None:
        return default
    if type(value) is not int or (low is not None and value < low):
        raise RequestError(400, f"'{name}' must be an integer"
                           + (f" of at least {low}" if low is not None else ""), name)
    return value if high is None else min(value, high)


def _number(body, name, low, high, default):
    value = body.get(name)
    if value is None:
        return default
    if type(value) not in (int, float) or not low <= value <= high:
        raise RequestError(400, f"'{name}' must be a number from {low:g} to {high:g}", name)
    return float(value)
