"""The HTTP face of the server: an ASGI app (Starlette) speaking OpenAI's API.

``POST /v1/chat/completions`` and ``POST /v1/completions`` take OpenAI's request shapes and
answer with its response shapes, or with server-sent events (``"stream": true``) ending in
``data: [DONE]``, as the ``openai`` client parses them. ``GET /v1/models``, ``GET /health``
and ``GET /metrics`` (Prometheus text) tell what is served and how it goes. ``GET /`` is a
chat page (``chat.html``: streaming, multi-turn, a stop button) over the same API.

Bad requests get OpenAI's error body ``{"error": {"message", "type", "param", "code"}}`` with
400 (malformed JSON, wrong types, a prompt longer than the context), 404 (another model) or
503 with ``Retry-After`` (the queue is full); a client that disconnects mid-stream frees its
place at once.

Example::

    >>> app = create_app(model, tokenizer, "smollm2")
    >>> uvicorn.run(app, port=8000)
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import time
import uuid
import weakref

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from ..capture import background
from .engine import Engine, Job, QueueFull
from .outbox import Outbox

__all__ = ["create_app"]


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


def create_app(model, tokenizer, model_id: str, max_queue: int = 64, draft=None,
               max_batch: int = 8, prompt_lookup: int = 0) -> Starlette:
    """The app serving ``model`` under the name ``model_id`` (``draft``, ``max_batch`` and
    ``prompt_lookup``: see :class:`Engine`)."""
    engine = Engine(model, tokenizer, max_queue=max_queue, draft=draft, max_batch=max_batch,
                    prompt_lookup=prompt_lookup)
    created = int(time.time())
    outboxes = weakref.WeakKeyDictionary()   # a serving event loop -> its Outbox (uvicorn: one)

    async def health(request: Request):
        return JSONResponse({"status": "ok"})

    async def models(request: Request):
        return JSONResponse({"object": "list", "data": [
            {"id": model_id, "object": "model", "created": created, "owned_by": "gradient"}]})

    async def metrics(request: Request):
        s = engine.stats
        lines = [f"gradient_requests_total {s['requests']}",
                 f"gradient_prompt_tokens_total {s['prompt_tokens']}",
                 f"gradient_completion_tokens_total {s['completion_tokens']}",
                 f"gradient_queue_depth {engine.waiting}",
                 f"gradient_batch_size {engine.running}",
                 f"gradient_prefix_cache_hit_rate "
                 f"{s['cached_prompt_tokens'] / max(1, s['prompt_tokens']):.4f}",
                 f"gradient_time_to_first_token_seconds_sum {s['first_token_seconds']:.6f}",
                 # continuous batching: rows / steps is the mean batch of a decode step
                 f"gradient_decode_steps_total {s['decode_steps']}",
                 f"gradient_decode_rows_total {s['decode_rows']}",
                 # KV blocks a batch row took from another row or a sequence gone before,
                 # instead of copying a prefix it shares with them
                 f"gradient_kv_blocks_shared_total {s['kv_blocks_shared']}",
                 # a fresh machine's first steps replay in Python while children compile
                 f"gradient_kernels_compiling {background.compiling()}"]
        return PlainTextResponse("\n".join(lines) + "\n")

    async def chat(request: Request):
        return await _complete(request, chat=True)

    async def completions(request: Request):
        return await _complete(request, chat=False)

    async def _complete(request: Request, chat: bool):
        try:
            body = await _json(request)
            job, stream, include_usage = _job(body, chat, engine, model_id)
        except RequestError as e:
            return e.response()
        events: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        if loop not in outboxes:
            outboxes[loop] = Outbox(loop)
        outbox = outboxes[loop]
        job.emit = lambda event: outbox.put(events, event)
        try:
            engine.submit(job)
        except QueueFull as e:
            return RequestError(503, f"the server is busy ({e}); retry later", kind="server_error",
                                code="queue_full", headers={"Retry-After": "1"}).response()
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        if stream:
            return StreamingResponse(_events(events, job, rid, chat, model_id, include_usage),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        texts, tokens, finishes, usage = {}, {}, {}, None
        while usage is None:
            event = await events.get()
            if event[0] == "text":
                texts.setdefault(event[1], []).append(event[2])
            elif event[0] == "token":
                tokens.setdefault(event[1], []).append(event[2])
            elif event[0] == "done":
                finishes[event[1]] = event[2]
            elif event[0] == "error":
                return RequestError(500, f"generation failed: {event[1]}",
                                    kind="server_error").response()
            else:
                usage = event[1]
        choices = []
        for i in range(job.n):
            content = "".join(texts.get(i, []))
            logprobs = (None if job.logprobs is None else
                        _logprobs_field(tokens.get(i, []), chat, job.logprobs))
            choices.append({"index": i, "message": {"role": "assistant", "content": content},
                            "logprobs": logprobs, "finish_reason": finishes[i]} if chat else
                           {"index": i, "text": content, "logprobs": logprobs,
                            "finish_reason": finishes[i]})
        return JSONResponse({"id": rid, "object": "chat.completion" if chat else
                             "text_completion", "created": int(time.time()), "model": model_id,
                             "choices": choices, "usage": usage})

    page = importlib.resources.files(__package__).joinpath("chat.html").read_text("utf-8")

    async def chat_page(request: Request):
        return HTMLResponse(page)

    routes = [Route("/", chat_page), Route("/health", health), Route("/v1/models", models),
              Route("/metrics", metrics),
              Route("/v1/chat/completions", chat, methods=["POST"]),
              Route("/v1/completions", completions, methods=["POST"])]
    app = Starlette(routes=routes)
    app.state.engine = engine
    return app


async def _json(request: Request) -> dict:
    try:
        body = json.loads(await request.body())
    except ValueError as e:
        raise RequestError(400, f"the request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    return body


def _job(body: dict, chat: bool, engine: Engine, model_id: str) -> tuple:
    """The :class:`Job` a request asks for, ``stream`` and ``include_usage``; RequestError
    for anything out of place."""
    model = body.get("model")
    if not isinstance(model, str):
        raise RequestError(400, "'model' is required: a string", "model")
    if model != model_id:
        raise RequestError(404, f"the model {model!r} does not exist; this server serves "
                           f"{model_id!r}", "model", code="model_not_found")
    tokenizer = engine.tokenizer
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError(400, "'messages' must be a non-empty list of messages", "messages")
        turns = [_message(m, i) for i, m in enumerate(messages)]
        try:
            prompt = list(tokenizer.apply_chat_template(turns, add_generation_prompt=True))
        except Exception as e:   # noqa: BLE001  (no template, a role it refuses ...)
            raise RequestError(400, f"the chat template cannot render these messages: {e}",
                               "messages") from None
    else:
        raw = body.get("prompt")
        if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], str):
            raw = raw[0]
        if isinstance(raw, str):
            prompt = list(getattr(tokenizer.encode(raw), "ids", tokenizer.encode(raw)))
        elif isinstance(raw, list) and raw and all(type(t) is int for t in raw):
            prompt = raw
            vocab = engine.vocab_size
            outside = next((t for t in prompt if not 0 <= t < vocab), None)
            if outside is not None:
                raise RequestError(400, f"'prompt' holds the token id {outside}; this model's "
                                   f"ids run from 0 to {vocab - 1}", "prompt")
        else:
            raise RequestError(400, "'prompt' must be a string (or a list of token ids)",
                               "prompt")
        if not prompt:
            raise RequestError(400, "the prompt encodes to no tokens", "prompt")
    if len(prompt) >= engine.context:
        raise RequestError(400, f"the prompt is {len(prompt)} tokens long; this model's context "
                           f"holds {engine.context}", "messages" if chat else "prompt",
                           code="context_length_exceeded")
    n = _integer("n", body.get("n"), 1, None, 1)
    if n > MAX_CHOICES:
        raise RequestError(400, f"'n' must be at most {MAX_CHOICES}", "n")
    logprobs = _logprobs(body, chat)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = _integer("max_tokens", limit, 1, engine.context - len(prompt),
                          engine.context - len(prompt))
    temperature = _number(body, "temperature", 0.0, 2.0, 1.0)
    top_p = _number(body, "top_p", 0.0, 1.0, 1.0)
    if top_p == 0.0:
        raise RequestError(400, "'top_p' must be above 0", "top_p")
    top_k = _integer("top_k", body.get("top_k"), 0, None, 0)
    seed = _integer("seed", body.get("seed"), None, None, None)
    stop = body.get("stop")
    stop = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop)):
        raise RequestError(400, "'stop' must be a string or a list of at most 4 strings", "stop")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(400, "'stream' must be true or false", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError(400, "'stream_options' must be an object", "stream_options")
    job = Job(prompt, max_tokens, emit=None, temperature=temperature,
              top_p=None if top_p >= 1.0 else top_p, top_k=top_k or None, seed=seed, stop=stop,
              chat=chat, n=n, logprobs=logprobs)
    return job, stream, bool(options.get("include_usage"))


#: The most choices one request may ask for (``n``): they are generated one after another.
MAX_CHOICES = 16


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
    if not isinstance(content, str):
        raise RequestError(400, f"messages[{i}].content must be a string", "messages")
    return {"role": m["role"], "content": content}


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


def _logprobs_field(entries: list, chat: bool, top: int, offset: int = 0):
    """A choice's ``logprobs``: chat's ``{"content": entries}``, or the completions' columns
    (tokens, token_logprobs, top_logprobs, text_offset from ``offset``)."""
    if chat:
        return {"content": entries, "refusal": None}
    offsets, at = [], offset
    for e in entries:
        offsets.append(at)
        at += len(e["token"])
    return {"tokens": [e["token"] for e in entries],
            "token_logprobs": [e["logprob"] for e in entries],
            "top_logprobs": [{t["token"]: t["logprob"] for t in e["top_logprobs"]}
                             for e in entries] if top else None,
            "text_offset": offsets}


async def _events(events: asyncio.Queue, job: Job, rid: str, chat: bool, model_id: str,
                  include_usage: bool):
    """The server-sent events of a streamed completion (the choices one after another, each
    token's log-probabilities with the text that follows them); a disconnect cancels the
    job."""
    created = int(time.time())
    kind = "chat.completion.chunk" if chat else "text_completion"
    pending: list = []                 # log-probability entries not sent yet
    offsets = [0] * job.n              # (completions) characters sent so far, per choice

    def chunk(index=0, delta=None, finish=None, usage=None, choices=True):
        logprobs = None
        if job.logprobs is not None and choices and (pending or finish):
            logprobs = _logprobs_field(list(pending), chat, job.logprobs, offsets[index])
            offsets[index] += sum(len(e["token"]) for e in pending)
            pending.clear()
        if chat:
            choice = {"index": index, "delta": delta or {}, "logprobs": logprobs,
                      "finish_reason": finish}
        else:
            choice = {"index": index, "text": (delta or {}).get("content", ""),
                      "logprobs": logprobs, "finish_reason": finish}
        data = {"id": rid, "object": kind, "created": created, "model": model_id,
                "choices": [choice] if choices else []}
        if usage is not None:
            data["usage"] = usage
        return f"data: {json.dumps(data)}\n\n"

    try:
        started = set()
        while True:
            event = await events.get()
            if event[0] in ("text", "token", "done") and chat and event[1] not in started:
                started.add(event[1])
                yield chunk(event[1], {"role": "assistant", "content": ""})
            if event[0] == "text":
                yield chunk(event[1], {"content": event[2]})
            elif event[0] == "token":
                pending.append(event[2])
            elif event[0] == "done":
                yield chunk(event[1], {}, finish=event[2])
            elif event[0] == "error":
                yield f"data: {json.dumps({'error': {'message': str(event[1]), 'type': 'server_error'}})}\n\n"
                break
            else:
                if include_usage:
                    yield chunk(usage=event[1], choices=False)
                break
        yield "data: [DONE]\n\n"
    finally:
        job.cancel()   # a client that went away (or a finished job: nothing to stop)
