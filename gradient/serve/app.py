"""The HTTP face of the server: an ASGI app (Starlette) speaking OpenAI's API.

``POST /v1/chat/completions`` and ``POST /v1/completions`` take OpenAI's request shapes and
answer with its response shapes, or with server-sent events (``"stream": true``) ending in
``data: [DONE]``, as the ``openai`` client parses them. ``GET /v1/models``, ``GET /health``
and ``GET /metrics`` (Prometheus text) tell what is served and how it goes. ``GET /`` is a
chat page (``chat.html``: streaming, multi-turn, a stop button) over the same API.

What a request may ask for, and how it is checked, is :mod:`.request`'s. Bad requests get
OpenAI's error body ``{"error": {"message", "type", "param", "code"}}`` with 400 (malformed
JSON, wrong types, a prompt longer than the context, what this server does not do), 404
(another model, another path), 405 (another method) or 503 with ``Retry-After`` (the queue is
full); a client that disconnects, mid-stream or waiting for a whole reply, frees its
place at once. A stopping server ends the replies still being written
(:func:`stop_replies`, what ``app.state.stop_replies`` calls): a stream with an error event
(code ``server_stopping``) before ``data: [DONE]``, a whole reply with a 503.

Example::

    >>> app = create_app(model, tokenizer, "smollm2")
    >>> uvicorn.run(app, port=8000)
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.resources
import json
import time
import uuid
import weakref

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (HTMLResponse, JSONResponse, PlainTextResponse, Response,
                                 StreamingResponse)
from starlette.routing import Route

from ..capture import background
from .engine import Engine, QueueFull
from .outbox import STREAM_INTERVAL, Outbox
from .request import RequestError, read_json, read_request, unknown_model

__all__ = ["create_app", "ServerStopping"]


class ServerStopping(Exception):
    """The server stops before the reply is whole (its clients see OpenAI's error with the
    code ``server_stopping``: send the request again once the server is back)."""

    def __init__(self, message: str = "the server is stopping; send the request again once "
                                      "it is back"):
        super().__init__(message)

    def request_error(self) -> RequestError:
        """The answer to a request not streamed: a 503."""
        return RequestError(503, str(self), kind="server_error", code="server_stopping")


def create_app(model, tokenizer, model_id: str, max_queue: int = 64, draft=None,
               max_batch: int = 8, prompt_lookup: int = 0,
               api_key: str | None = None,
               stream_interval: float = STREAM_INTERVAL) -> Starlette:
    """The app serving ``model`` under the name ``model_id`` (``draft``, ``max_batch`` and
    ``prompt_lookup``: see :class:`Engine`). With ``api_key``, every ``/v1/`` request must
    bring it as OpenAI's clients do (``Authorization: Bearer KEY``); others get a 401. A
    stream's tokens after its first are written together every ``stream_interval`` seconds
    (:class:`~.outbox.Outbox`; 0: each as it comes)."""
    engine = Engine(model, tokenizer, max_queue=max_queue, draft=draft, max_batch=max_batch,
                    prompt_lookup=prompt_lookup)
    created = int(time.time())
    outboxes = weakref.WeakKeyDictionary()   # a serving event loop -> its Outbox (uvicorn: one)
    replies = weakref.WeakSet()     # the event queues of the replies being written

    async def health(request: Request):
        return JSONResponse({"status": "ok"})

    served = {"id": model_id, "object": "model", "created": created, "owned_by": "gradient"}

    async def models(request: Request):
        return JSONResponse({"object": "list", "data": [served]})

    async def model_info(request: Request):
        name = request.path_params["model"]
        if name != model_id:
            return unknown_model(name, model_id).response()
        return JSONResponse(served)

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
            body = await read_json(request)
            jobs, stream, include_usage, echoes, tools = read_request(body, chat, engine, model_id)
        except RequestError as e:
            return e.response()
        events: asyncio.Queue = asyncio.Queue()
        replies.add(events)
        loop = asyncio.get_running_loop()
        if loop not in outboxes:
            outboxes[loop] = Outbox(loop, stream_interval)
        outbox = outboxes[loop]
        for p, job in enumerate(jobs):
            job.emit = _emitter(outbox, events, p, job.n)
        try:
            for submitted, job in enumerate(jobs):
                engine.submit(job)
        except QueueFull as e:
            for job in jobs[:submitted]:
                job.cancel()
            return RequestError(503, f"the server is busy ({e}); retry later", kind="server_error",
                                code="queue_full", headers={"Retry-After": "1"}).response()
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        if stream:
            return StreamingResponse(_events(events, jobs, rid, chat, model_id, include_usage,
                                             echoes, tools),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        n = jobs[0].n
        # the reply is gathered while the client is watched: one that leaves (a timeout, a
        # closed program) stops its jobs at once, as a stream's does, not at max_tokens
        gathered = asyncio.ensure_future(_gathered(events, len(jobs)))
        left = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait((gathered, left), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:   # the server stops and cancels the replies still written
            return ServerStopping().request_error().response()
        finally:
            left.cancel()
            gathered.cancel()     # (nothing where the reply is whole)
            for job in jobs:
                job.cancel()      # (a request that failed or was left: its other prompts stop)
        if not gathered.done():   # (being cancelled): the client left
            return Response(status_code=499)     # nobody reads it (nginx's "client closed")
        reply = gathered.result()
        if isinstance(reply, RequestError):
            return reply.response()
        texts, tokens, finishes, prompts, usages = reply
        choices = []
        for i in range(len(jobs) * n):
            content = echoes[i // n] + "".join(texts.get(i, []))
            logprobs = None
            if jobs[0].logprobs is not None:
                entries = prompts.get(i // n, []) + tokens.get(i, [])
                logprobs = _logprobs_field(entries, chat, jobs[0].logprobs)
            if not chat:
                choices.append({"index": i, "text": content, "logprobs": logprobs,
                                "finish_reason": finishes[i]})
                continue
            message, finish = {"role": "assistant", "content": content}, finishes[i]
            if tools is not None:        # the calls in the text, and the content around them
                reader = tools.reader()
                content = reader.push(content)
                rest, calls = reader.finish()
                content += rest or ""
                if calls:
                    message = {"role": "assistant", "content": content.strip() or None,
                               "tool_calls": calls}
                    finish = "tool_calls"
            choices.append({"index": i, "message": message, "logprobs": logprobs,
                            "finish_reason": finish})
        return JSONResponse({"id": rid, "object": "chat.completion" if chat else
                             "text_completion", "created": int(time.time()), "model": model_id,
                             "choices": choices, "usage": _total(usages)})

    page = importlib.resources.files(__package__).joinpath("chat.html").read_text("utf-8")

    async def chat_page(request: Request):
        return HTMLResponse(page)

    routes = [Route("/", chat_page), Route("/health", health), Route("/v1/models", models),
              Route("/v1/models/{model:path}", model_info), Route("/metrics", metrics),
              Route("/v1/chat/completions", chat, methods=["POST"]),
              Route("/v1/completions", completions, methods=["POST"])]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error},
                    middleware=[Middleware(_KeyCheck, key=api_key)] if api_key else [])
    app.state.engine = engine
    app.state.stop_replies = lambda: stop_replies(replies)
    return app


def stop_replies(replies) -> None:
    """End every reply being written (their event ``replies``) with :class:`ServerStopping`,
    from the serving event loop: what a server whose stop's time runs out calls, so that a
    stream's client is told why its reply is cut rather than seeing the connection close
    mid-reply (which the ``openai`` client reports as a bare "Connection error.")."""
    for events in list(replies):
        events.put_nowait(("error", ServerStopping()))


class _KeyCheck:
    """ASGI middleware: a ``/v1/`` request without ``Authorization: Bearer <key>`` gets
    OpenAI's 401 (the chat page, ``/health`` and ``/metrics`` stay open)."""

    def __init__(self, app, key: str):
        self.app, self.expected = app, f"Bearer {key}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                response = RequestError(401, "a valid API key is needed: send it as "
                                        "'Authorization: Bearer KEY' (the openai client's "
                                        "api_key)", code="invalid_api_key").response()
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


async def _http_error(request: Request, exc: HTTPException):
    """Starlette's own refusals (no such path, another method) in OpenAI's error body."""
    if exc.status_code == 404:
        message = (f"no such endpoint: {request.method} {request.url.path}; this server answers "
                   f"POST /v1/chat/completions, POST /v1/completions and GET /v1/models")
    elif exc.status_code == 405:
        message = (f"{request.url.path} does not take {request.method}; it takes "
                   f"{(exc.headers or {}).get('Allow', 'another method')}")
    else:
        message = str(exc.detail)
    return RequestError(exc.status_code, message, headers=exc.headers).response()


def _error_body(error: Exception, code) -> dict:
    """OpenAI's error object for a stream's failure (its message: the error's own)."""
    return {"message": str(error), "type": "server_error", "param": None, "code": code}


def _emitter(outbox: Outbox, events, prompt: int, n: int):
    """A job's ``emit``: its events into ``events`` through the outbox, numbered as the
    request's (:func:`_numbered`); a choice's tokens after its first text are held for the
    outbox's next delivery (:class:`~.outbox.Outbox`), its first text and the rest not."""
    speaking = set()        # the choices whose first text went (the engine's thread only)

    def emit(event):
        event = _numbered(event, prompt, n)
        hold = event[0] == "token" or (event[0] == "text" and event[1] in speaking)
        if event[0] == "text":
            speaking.add(event[1])
        outbox.put(events, event, hold=hold)
    return emit


def _numbered(event: tuple, prompt: int, n: int) -> tuple:
    """A job's event as the request's: choice ``i`` of prompt ``p`` is choice ``p * n + i``;
    the prompt's log-probabilities are numbered by prompt."""
    if event[0] in ("text", "token", "done"):
        return (event[0], prompt * n + event[1]) + event[2:]
    if event[0] == "prompt":
        return ("prompt", prompt, event[1])
    return event


def _total(usages: list) -> dict:
    """The request's usage: its prompts' (one job each) added up."""
    total = {key: sum(u[key] for u in usages)
             for key in ("prompt_tokens", "completion_tokens", "total_tokens")}
    total["prompt_tokens_details"] = {"cached_tokens": sum(
        u["prompt_tokens_details"]["cached_tokens"] for u in usages)}
    return total


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
            "top_logprobs": [_top_by_text(e["top_logprobs"]) for e in entries] if top else None,
            "text_offset": offsets}


def _top_by_text(top: list | None) -> dict | None:
    """The completions' ``{text: logprob}`` of a token's likeliest tokens, the likeliest kept
    where two tokens have one text (bytes of a character cut in two); None for a prompt's
    first token, which nothing predicts."""
    if top is None:
        return None
    by_text: dict = {}
    for t in top:
        by_text.setdefault(t["token"], t["logprob"])
    return by_text


async def _gathered(events: asyncio.Queue, prompts: int):
    """The events of a reply that is not streamed, until the usage of each of its ``prompts``:
    ``(texts, tokens, finishes, prompts' entries, usages)``, or a RequestError (500) where the
    generation failed."""
    texts, tokens, finishes, entries, usages = {}, {}, {}, {}, []
    while len(usages) < prompts:
        event = await events.get()
        if event[0] == "text":
            texts.setdefault(event[1], []).append(event[2])
        elif event[0] == "token":
            tokens.setdefault(event[1], []).append(event[2])
        elif event[0] == "done":
            finishes[event[1]] = event[2]
        elif event[0] == "prompt":
            entries[event[1]] = event[2]
        elif event[0] == "error" and isinstance(event[1], ServerStopping):
            return event[1].request_error()
        elif event[0] == "error":
            return RequestError(500, f"generation failed: {event[1]}", kind="server_error")
        else:
            usages.append(event[1])
    return texts, tokens, finishes, entries, usages


async def _disconnected(request: Request) -> None:
    """Returns once the client of ``request``, whose body has been read, closes the
    connection (the server then has nothing more to receive on it)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _events(events: asyncio.Queue, jobs: list, rid: str, chat: bool, model_id: str,
                  include_usage: bool, echoes: list, tools=None):
    """The server-sent events of a streamed completion (each token's log-probabilities with
    the text that follows them; with ``echo``, a choice's first chunk is its prompt; with
    tools, a choice's calls in one chunk at its end, the text they were read from not sent);
    a disconnect cancels the jobs."""
    created = int(time.time())
    kind = "chat.completion.chunk" if chat else "text_completion"
    n, top = jobs[0].n, jobs[0].logprobs
    pending: dict = {}                 # choice -> log-probability entries not sent yet
    offsets = [0] * (len(jobs) * n)    # (completions) characters sent so far, per choice
    prompts: dict = {}                 # prompt -> its tokens' entries (echo with logprobs)
    readers: dict = {}                 # choice -> its reader of tool calls

    def chunk(index=0, delta=None, finish=None, usage=None, choices=True):
        logprobs = None
        waiting = pending.pop(index, [])
        if top is not None and choices and (waiting or finish):
            logprobs = _logprobs_field(waiting, chat, top, offsets[index])
            offsets[index] += sum(len(e["token"]) for e in waiting)
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
        started, usages = set(), []
        out = []       # the chunks of the events taken so far, written together
        while len(usages) < len(jobs):
            if events.empty() and out:     # (one write for a delivery's tokens)
                yield "".join(out)
                out = []
            event = await events.get()
            if event[0] in ("text", "token", "done") and event[1] not in started:
                index = event[1]
                started.add(index)
                if chat:
                    out.append(chunk(index, {"role": "assistant", "content": ""}))
                elif echoes[index // n] or index // n in prompts:
                    pending[index] = list(prompts.get(index // n, []))
                    out.append(chunk(index, {"content": echoes[index // n]}))
            if event[0] == "text":
                text = event[2]
                if tools is not None:
                    text = readers.setdefault(event[1], tools.reader()).push(text)
                if text:
                    out.append(chunk(event[1], {"content": text}))
            elif event[0] == "token":
                pending.setdefault(event[1], []).append(event[2])
            elif event[0] == "done":
                finish = event[2]
                if tools is not None:
                    rest, calls = readers.setdefault(event[1], tools.reader()).finish()
                    if rest:
                        out.append(chunk(event[1], {"content": rest}))
                    if calls:
                        calls = [{"index": k, **call} for k, call in enumerate(calls)]
                        out.append(chunk(event[1], {"tool_calls": calls}))
                        finish = "tool_calls"
                out.append(chunk(event[1], {}, finish=finish))
            elif event[0] == "prompt":
                prompts[event[1]] = event[2]
            elif event[0] == "error":
                code = "server_stopping" if isinstance(event[1], ServerStopping) else None
                out.append(f"data: {json.dumps({'error': _error_body(event[1], code)})}\n\n")
                break
            else:
                usages.append(event[1])
        else:
            if include_usage:
                out.append(chunk(usage=_total(usages), choices=False))
        out.append("data: [DONE]\n\n")
        yield "".join(out)
    finally:
        for job in jobs:
            job.cancel()   # a client that went away (or finished jobs: nothing to stop)
