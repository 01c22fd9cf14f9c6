"""gradient serve under mutated OpenAI requests: fields of every type where others belong,
fields dropped or added, nested values changed, bodies cut short or not JSON at all. Every
answer is a reply of OpenAI's shape or an OpenAI error body with a 4xx status (a 503 with
Retry-After for a full queue), never a 5xx, a hang or a dead server."""

from __future__ import annotations

import copy
import json
import random
import time

import pytest

import gradient

from ..hub.conftest import llama_dir  # noqa: F401  (the fixture)

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from .test_server import MODEL, _serving  # noqa: E402

#: Values put where a field's value belongs: of every JSON type, out of range, huge, empty.
VALUES = [None, True, False, 0, 1, -1, 2, 3.5, -0.5, 1e308, 2 ** 63, -2 ** 63, "", "x", "0",
          [], [1], ["a"], [[1, 2]], {}, {"a": 1}, "\u0000", "a" * 3000, [0] * 3, [-5],
          [10 ** 9], [1.5], {"role": "user"}, {"type": "text"}, 100000, 1e-9, "json_object",
          "\ud800", ["[" * 5000 + "]" * 5000],
          "auto", "none", "required", {"type": "json_schema", "json_schema": {"schema": {
              "type": "object"}}}, {"include_usage": True}, [{"type": "text", "text": "y"}],
          [{"type": "function", "function": {"name": "f", "parameters": {}}}]]
#: Fields of OpenAI's requests (and the ones vLLM's and llama.cpp's servers add), and of a
#: message.
FIELDS = ["model", "messages", "prompt", "max_tokens", "max_completion_tokens", "temperature",
          "top_p", "top_k", "min_p", "seed", "stop", "stream", "stream_options", "logprobs",
          "top_logprobs", "n", "echo", "suffix", "presence_penalty", "frequency_penalty",
          "logit_bias", "repetition_penalty", "response_format", "tools", "tool_choice",
          "parallel_tool_calls", "user", "best_of", "role", "content", "name", "tool_calls",
          "tool_call_id", "type", "text", "include_usage"]
MESSAGE_ROLES = ["user", "assistant", "system", "tool", "developer", "bogus"]


def _mutated(value, rng: random.Random, depth: int = 0):
    """``value`` with one to three changes at random, in it or in what it holds."""
    value = copy.deepcopy(value)
    for _ in range(rng.randint(1, 3)):
        r = rng.random()
        if isinstance(value, dict):
            field = rng.choice(FIELDS + list(value))
            if r < 0.5 or field not in value:
                value[field] = rng.choice(VALUES)
            elif r < 0.7:
                del value[field]
            elif depth < 3:
                value[field] = _mutated(value[field], rng, depth + 1)
        elif isinstance(value, list):
            if value and r < 0.5 and depth < 3:
                i = rng.randrange(len(value))
                value[i] = _mutated(value[i], rng, depth + 1)
            elif r < 0.8:
                value.append(rng.choice(VALUES + [{
                    "role": rng.choice(MESSAGE_ROLES),
                    "content": rng.choice(["a", None, 5, [{"type": "text", "text": "b"}]])}]))
            elif value:
                value.pop()
        else:
            return rng.choice(VALUES)
    return value


@pytest.fixture(scope="module")
def fuzzed_server(llama_dir):  # noqa: F811
    from gradient.serve import create_app
    model, tokenizer = gradient.hub.load(str(llama_dir))
    app = create_app(model.eval(), tokenizer, MODEL, max_queue=8)
    with _serving(app) as url:
        yield url, app


def _check(response, body, chat: bool) -> None:
    """The answer to ``body`` is OpenAI's: an error body with a 4xx (or a 503 that says when
    to retry), or a reply whose choices, streamed or not, are whole."""
    status = response.status_code
    assert status < 500 or (status == 503 and "retry-after" in response.headers), (
        f"{status} for {body!r}: {response.text[:300]}")
    if status >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["message"]
        assert isinstance(error["type"], str)
        return
    assert isinstance(body, dict)
    if body.get("stream") is True:
        lines = [line for line in response.text.split("\n\n") if line]
        assert lines[-1] == "data: [DONE]", response.text[-300:]
        for line in lines[:-1]:
            assert line.startswith("data: ")
            json.loads(line[len("data: "):])
        return
    reply = response.json()
    assert reply["object"] == ("chat.completion" if chat else "text_completion")
    assert reply["choices"] and reply["usage"]["completion_tokens"] >= 0
    for choice in reply["choices"]:
        assert choice["finish_reason"] in ("stop", "length", "tool_calls")


def test_mutated_requests_get_openai_answers_and_the_server_lives_on(fuzzed_server):
    url, app = fuzzed_server
    rng = random.Random(20261128)
    base = {True: {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}],
                   "max_tokens": 4},
            False: {"model": MODEL, "prompt": "Hello", "max_tokens": 4}}
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(300):
            chat = rng.random() < 0.6
            body = _mutated(base[chat], rng)
            if isinstance(body, dict):          # (replies kept short: the server's time)
                for field, most in (("max_tokens", 8), ("max_completion_tokens", 8), ("n", 3)):
                    if type(body.get(field)) is int and body[field] > most:
                        body[field] = most
            r = rng.random()
            data = (json.dumps(body)[:rng.randint(0, 40)] if r < 0.03 else   # cut short
                    bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))) if r < 0.05
                    else json.dumps(body))
            response = client.post("/v1/chat/completions" if chat else "/v1/completions",
                                   content=data, headers={"content-type": "application/json"})
            _check(response, body, chat)
        assert client.get("/health").json() == {"status": "ok"}
    engine = app.state.engine
    for _ in range(100):
        if engine.running == 0 and engine.waiting == 0:
            break
        time.sleep(0.05)
    assert engine.running == 0 and engine.waiting == 0
