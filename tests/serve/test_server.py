"""gradient serve driven by the real ``openai`` client: a tiny LLaMA with a chat template on
a server started on 127.0.0.1, checked against gradient's own generate on the same ids."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time

import numpy as np
import pytest

import gradient
from gradient.generation.json_output import JsonGrammar, json_prefix
from gradient.generation.limits import stop_ids

from ..hub.conftest import llama_dir  # noqa: F401  (the fixture)

openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

MODEL = "tiny-llama"


def _free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serving(app):
    """``app`` under uvicorn on a free port of 127.0.0.1, in a thread; its URL."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(llama_dir):  # noqa: F811
    from gradient.serve import create_app
    model, tokenizer = gradient.hub.load(str(llama_dir))
    model.eval()
    app = create_app(model, tokenizer, MODEL, max_queue=4)
    with _serving(app) as url:
        yield url, model, tokenizer, app


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server[0] + "/v1", api_key="none", max_retries=0)


def _greedy(model, tokenizer, ids, n, chat):
    out = gradient.generation.generate(model, [ids], n, eos_token_id=sorted(
        stop_ids(model, tokenizer, chat)))
    new = out[0].tolist()[len(ids):]
    stops = stop_ids(model, tokenizer, chat)
    kept = []
    for t in new:
        if t in stops:
            break
        kept.append(t)
    return tokenizer.decode(kept, skip_special_tokens=True), len(new)


MESSAGES = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a colour."}]


def test_chat_completion_is_greedy_generate(server, client):
    _, model, tokenizer, _ = server
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=12,
                                           temperature=0)
    ids = list(tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True))
    text, n = _greedy(model, tokenizer, ids, 12, chat=True)
    assert reply.choices[0].message.content == text
    assert reply.choices[0].message.role == "assistant"
    assert reply.usage.prompt_tokens == len(ids) and reply.usage.completion_tokens == n
    assert reply.usage.total_tokens == len(ids) + n
    assert reply.choices[0].finish_reason in ("stop", "length") and reply.model == MODEL


def test_streamed_chat_gives_the_same_text_and_usage(server, client):
    whole = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=12,
                                           temperature=0)
    chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=12,
                                                 temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == \
        whole.choices[0].finish_reason


def test_completions_and_stop_sequences(server, client):
    _, model, tokenizer, _ = server
    prompt = "The quick brown fox"
    full = client.completions.create(model=MODEL, prompt=prompt, max_tokens=16, temperature=0)
    ids = list(getattr(tokenizer.encode(prompt), "ids", tokenizer.encode(prompt)))
    assert full.choices[0].text == _greedy(model, tokenizer, ids, 16, chat=False)[0]
    text = full.choices[0].text
    stop = text[len(text) // 2:len(text) // 2 + 2]
    assert len(stop) == 2, f"the reply {text!r} is too short to cut"
    cut = client.completions.create(model=MODEL, prompt=prompt, max_tokens=16, temperature=0,
                                    stop=[stop])
    assert cut.choices[0].text == text[:text.find(stop)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt=prompt, max_tokens=16, temperature=0, stop=stop, stream=True))
    assert streamed == cut.choices[0].text


def test_a_completion_without_max_tokens_writes_openais_default_16(server, client):
    # OpenAI's /v1/completions stops at 16 new tokens unless told otherwise; a chat's reply
    # is not capped (it runs to its end or the context)
    from gradient.serve.request import COMPLETION_TOKENS
    _, model, tokenizer, _ = server
    prompt = "The quick brown fox"
    reply = client.completions.create(model=MODEL, prompt=prompt, temperature=0,
                                      logit_bias={str(t): -100 for t in stop_ids(
                                          model, tokenizer, False)})
    assert reply.usage.completion_tokens == COMPLETION_TOKENS == 16
    assert reply.choices[0].finish_reason == "length"
    chat = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0,
                                          logit_bias={str(t): -100 for t in stop_ids(
                                              model, tokenizer, True)})
    assert chat.usage.completion_tokens > COMPLETION_TOKENS


def test_logprobs_are_the_models_log_softmax(server, client):
    _, model, tokenizer, _ = server
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=6,
                                           temperature=0, logprobs=True, top_logprobs=3)
    ids = list(tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True))
    content = reply.choices[0].logprobs.content
    assert "".join(e.token for e in content) == reply.choices[0].message.content
    for entry in content:               # each token's log-probability from the model itself
        with gradient.no_grad():
            logits = model(gradient.tensor([ids])).logits[0, -1].double().numpy()
        expected = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
        best = int(expected.argmax())
        assert entry.logprob == pytest.approx(expected[best], abs=1e-5)   # greedy: the best
        assert [t.logprob for t in entry.top_logprobs] == pytest.approx(
            np.sort(expected)[::-1][:3], abs=1e-5)
        assert entry.top_logprobs[0].token == entry.token
        assert bytes(entry.bytes).decode() == entry.token
        ids.append(best)
    legacy = client.completions.create(model=MODEL, prompt="The quick brown fox", max_tokens=5,
                                       temperature=0, logprobs=2)
    lp = legacy.choices[0].logprobs
    assert "".join(lp.tokens) == legacy.choices[0].text and len(lp.token_logprobs) == 5
    assert all(len(t) <= 2 for t in lp.top_logprobs) and lp.text_offset[0] == 0
    streamed = list(client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=6, temperature=0, logprobs=True,
        stream=True))
    entries = [e for c in streamed if c.choices and c.choices[0].logprobs
               for e in c.choices[0].logprobs.content]
    # the same tokens and log-probabilities streamed; the prompt may run through a prompt
    # cache the first request left (fewer rows in its products, which BLAS rounds apart)
    assert [e.token for e in entries] == [e.token for e in content]
    assert [e.logprob for e in entries] == pytest.approx([e.logprob for e in content], abs=1e-5)


def test_n_choices_are_generated_with_their_own_seeds(server, client):
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=8,
                                           temperature=1.0, n=3, seed=11)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    one = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=8,
                                         temperature=1.0, seed=12)
    assert reply.choices[1].message.content == one.choices[0].message.content   # seed + 1
    assert reply.usage.completion_tokens >= 3
    chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=8,
                                                 temperature=1.0, n=3, seed=11, stream=True))
    texts = {}
    for c in chunks:
        for choice in c.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    assert [texts[i] for i in range(3)] == [c.message.content for c in reply.choices]


def test_a_draft_model_gives_the_greedy_text(server, llama_dir):  # noqa: F811
    from gradient.serve.engine import Engine, Job
    _, model, tokenizer, _ = server
    twin, _ = gradient.hub.load(str(llama_dir))
    ids = list(tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True))

    def reply(engine):
        events, done = [], threading.Event()
        engine.submit(Job(ids, 12, emit=lambda e: (events.append(e),
                                                    e[0] in ("usage", "error") and done.set()),
                          temperature=0, chat=True))
        assert done.wait(60)
        return "".join(e[2] for e in events if e[0] == "text"), events[-1]
    plain = reply(Engine(model, tokenizer))
    drafts, forward = [], twin.forward
    twin.forward = lambda *a, **k: drafts.append(1) or forward(*a, **k)   # the draft is used
    assert reply(Engine(model, tokenizer, draft=twin.eval())) == plain
    assert plain[0] and drafts


def test_prompt_lookup_gives_the_greedy_text(server):
    from gradient.serve.engine import Engine, Job
    _, model, tokenizer, _ = server
    # a prompt that repeats itself: its n-grams are drafts worth checking
    text = "red blue green red blue green red blue green red blue"
    ids = list(getattr(tokenizer.encode(text), "ids", tokenizer.encode(text)))

    def reply(engine):
        events, done = [], threading.Event()
        engine.submit(Job(ids, 24, emit=lambda e: (events.append(e),
                                                    e[0] in ("usage", "error") and done.set()),
                          temperature=0))
        assert done.wait(60)
        return "".join(e[2] for e in events if e[0] == "text"), events[-1]
    plain = reply(Engine(model, tokenizer))
    checked, forward = [], type(model).forward

    def spy(self, input_ids, *args, **kwargs):
        if kwargs.get("cache") is not None and kwargs["cache"].length > 0:
            checked.append(input_ids.shape[1])       # a decode forward: 1 + the drafts
        return forward(self, input_ids, *args, **kwargs)
    type(model).forward = spy
    try:
        assert reply(Engine(model, tokenizer, prompt_lookup=4)) == plain
    finally:
        type(model).forward = forward
    assert max(checked) > 1 and len(checked) < 23     # drafts checked, fewer forwards


def test_a_seed_repeats_a_sampled_reply(client):
    a, b = (client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=10,
                                           temperature=1.0, top_p=0.9, seed=7)
            for _ in range(2))
    assert a.choices[0].message.content == b.choices[0].message.content


def test_a_negative_seed_samples_and_repeats(client):
    """OpenAI's seed is any integer (NumPy's generators take non-negative ones)."""
    a, b = (client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=6,
                                           temperature=1.0, seed=-5, n=2)
            for _ in range(2))
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]


def test_models_health_and_metrics(server, client):
    assert [m.id for m in client.models.list().data] == [MODEL]
    assert httpx.get(server[0] + "/health").json() == {"status": "ok"}
    metrics = httpx.get(server[0] + "/metrics").text
    assert "gradient_requests_total" in metrics and "gradient_queue_depth" in metrics
    compiling = [line for line in metrics.splitlines()
                 if line.startswith("gradient_kernels_compiling ")]
    assert compiling and int(compiling[0].split()[1]) >= 0


@pytest.mark.parametrize("body,status,says", [
    ("{not json", 400, "not valid JSON"),
    ("[" * 100000 + "]" * 100000, 400, "nests arrays or objects too deeply"),
    (json.dumps({"model": MODEL, "prompt": "a\ud800b"}), 400, "unpaired surrogate U+D800"),
    (json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "\udfff"}]}), 400,
     "unpaired surrogate U+DFFF"),
    ({"model": MODEL, "messages": "hi"}, 400, "'messages' must be"),
    ({"model": MODEL, "messages": MESSAGES, "temperature": 3}, 400, "'temperature'"),
    ({"model": MODEL, "messages": MESSAGES, "max_tokens": "ten"}, 400, "'max_tokens'"),
    ({"model": MODEL, "messages": MESSAGES, "n": 0}, 400, "'n'"),
    ({"model": MODEL, "messages": MESSAGES, "n": 17}, 400, "'n'"),
    ({"model": MODEL, "messages": MESSAGES, "top_logprobs": 2}, 400, "needs 'logprobs'"),
    ({"model": MODEL, "messages": MESSAGES, "logprobs": True, "top_logprobs": 21}, 400,
     "'top_logprobs'"),
    ({"model": MODEL, "prompt": "hi", "logprobs": 6}, 400, "'logprobs'"),
    ({"model": "gpt-4o", "messages": MESSAGES}, 404, "does not exist"),
    ({"model": MODEL, "prompt": ["a", 5]}, 400, "'prompt' must be"),
    ({"model": MODEL, "prompt": [[5], []]}, 400, "'prompt' must be"),
    ({"model": MODEL, "prompt": ["a"] * 33}, 400, "at most 32"),
    ({"model": MODEL, "prompt": "hi", "echo": "yes"}, 400, "'echo'"),
    ({"model": MODEL, "prompt": "hi", "max_tokens": 0}, 400, "'max_tokens'"),
    ({"model": MODEL, "prompt": "hi", "suffix": "end"}, 400, "'suffix'"),
    ({"model": MODEL, "prompt": "hi", "n": 2, "best_of": 3}, 400, "'best_of'"),
    ({"model": MODEL, "messages": MESSAGES, "tools": [{"type": "function", "function": {
        "name": "f"}}], "tool_choice": "always"}, 400, "'tool_choice' must be"),
    ({"model": MODEL, "messages": MESSAGES, "tools": [{"type": "function"}]}, 400,
     "tools[0] must be"),
    ({"model": MODEL, "messages": MESSAGES, "functions": [{"name": "f"}]}, 400, "older form"),
    ({"model": MODEL, "messages": MESSAGES + [{"role": "user", "tool_calls": "f"}]}, 400,
     "tool_calls must be"),
    ({"model": MODEL, "messages": MESSAGES, "response_format": {"type": "json_schema"}}, 400,
     "needs 'json_schema'"),
    ({"model": MODEL, "messages": MESSAGES, "response_format": {
        "type": "json_schema", "json_schema": {"name": "s", "schema": {
            "type": "object", "properties": {"a": {"type": "string", "pattern": "x"}}}}}}, 400,
     "pattern"),
    ({"model": MODEL, "messages": MESSAGES, "response_format": "json"}, 400,
     "'response_format' must be"),
    ({"model": MODEL, "messages": MESSAGES, "presence_penalty": 2.5}, 400, "'presence_penalty'"),
    ({"model": MODEL, "messages": MESSAGES, "frequency_penalty": "1"}, 400,
     "'frequency_penalty'"),
    ({"model": MODEL, "messages": MESSAGES, "repetition_penalty": 0}, 400,
     "'repetition_penalty'"),
    ({"model": MODEL, "messages": MESSAGES, "min_p": 1.5}, 400, "'min_p'"),
    ({"model": MODEL, "messages": MESSAGES, "logit_bias": [1]}, 400, "'logit_bias' must be"),
    ({"model": MODEL, "messages": MESSAGES, "logit_bias": {"a": 1}}, 400, "the key 'a'"),
    ({"model": MODEL, "messages": MESSAGES, "logit_bias": {"-1": 1}}, 400, "token id -1"),
    ({"model": MODEL, "messages": MESSAGES, "logit_bias": {"3": 101}}, 400, "the bias 101"),
    ({"model": MODEL, "prompt": [5, -1]}, 400, "the token id -1"),
    ({"model": MODEL, "prompt": [10 ** 9]}, 400, "the token id 1000000000"),
])
def test_bad_requests_get_openai_errors(server, body, status, says):
    path = "/v1/completions" if "prompt" in body else "/v1/chat/completions"
    data = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(server[0] + path, content=data,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert says in response.json()["error"]["message"]


def _greedy_by_hand(model, ids, n, adjust):
    """Greedy decoding with ``adjust(logits, generated)`` applied to each step's float64
    logits, a forward over the whole sequence per token: the oracle for the server's
    penalties and biases."""
    ids, generated = list(ids), []
    for _ in range(n):
        with gradient.no_grad():
            logits = model(gradient.tensor([ids])).logits[0, -1].double().numpy()
        token = int(adjust(logits, generated).argmax())
        ids.append(token)
        generated.append(token)
    return generated


def test_logit_bias_and_penalties_steer_the_greedy_choice(server, client):
    """OpenAI's logit_bias, presence_penalty and frequency_penalty change greedy decoding as
    their formulas say, on the model's own logits."""
    _, model, tokenizer, _ = server
    ids = list(tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True))
    stops = stop_ids(model, tokenizer, True)

    def text(tokens):     # the reply's text: the tokens before the first stop token
        kept = tokens[:next((i for i, t in enumerate(tokens) if t in stops), len(tokens))]
        return tokenizer.decode(kept, skip_special_tokens=True)

    def reply(**settings):
        return client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=8,
                                              temperature=0, **settings).choices[0].message.content
    plain = _greedy_by_hand(model, ids, 8, lambda x, g: x)
    banned = plain[0]

    def bias(x, g):
        x = x.copy()
        x[banned] -= 100
        return x
    expected = _greedy_by_hand(model, ids, 8, bias)
    assert expected[0] != banned
    assert reply(logit_bias={str(banned): -100}) == text(expected)

    def penalties(x, g):   # negative: repeats are favoured, which a random model needs
        x = x.copy()
        for t in set(g):
            x[t] -= g.count(t) * -1.5 + -2.0
        return x
    expected = _greedy_by_hand(model, ids, 8, penalties)
    assert expected != plain, "the penalties must change this reply for the test to mean much"
    assert reply(frequency_penalty=-1.5, presence_penalty=-2.0) == text(expected)


def test_json_object_output_is_one_json_object(server, client):
    """response_format json_object: every reply is a prefix of a JSON object, whole when it
    stops; greedy, sampled and streamed."""
    _, model, tokenizer, _ = server
    close = next(t for t in range(model.config.vocab_size) if tokenizer.decode([t]) == "}")
    form = {"type": "json_object"}
    # "}" favoured: the object closes as soon as it may
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=40,
                                           temperature=0, response_format=form,
                                           logit_bias={str(close): 30})
    assert json.loads(reply.choices[0].message.content) == {}
    assert reply.choices[0].finish_reason == "stop"
    for settings in ({"temperature": 0}, {"temperature": 1.0, "seed": 5},
                     {"temperature": 1.0, "seed": 6, "top_p": 0.9}):
        reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=48,
                                               response_format=form, **settings)
        text, finish = reply.choices[0].message.content, reply.choices[0].finish_reason
        assert json_prefix(text) is not None, text
        assert isinstance(json.loads(text), dict) if finish == "stop" else finish == "length"
        streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=48, response_format=form, stream=True,
            **settings) if c.choices)
        assert streamed == text


CHOICES = {"type": "object", "additionalProperties": False,
           "properties": {"size": {"enum": ["small", "large"]},
                          "count": {"enum": [1, 2, 3]},
                          "fresh": {"type": "boolean"},
                          "box": {"anyOf": [{"type": "null"},
                                            {"type": "array", "items": {"const": "x"},
                                             "maxItems": 2}]}},
           "required": ["size", "count", "fresh", "box"]}


def test_json_schema_output_is_an_instance_of_the_schema(server, client):
    """response_format json_schema: a schema whose every value is bounded (enums, a boolean, a
    short array or null), so that even a random model's reply ends; greedy and sampled."""
    jsonschema = pytest.importorskip("jsonschema")
    form = {"type": "json_schema", "json_schema": {"name": "order", "schema": CHOICES,
                                                   "strict": True}}
    # whitespace held back: this random model would fill its short context with it
    _, model, tokenizer, _ = server
    spaces = {str(t): -100 for t in range(model.config.vocab_size)
              if tokenizer.decode([t]) and not tokenizer.decode([t]).strip()}
    for settings in ({"temperature": 0}, {"temperature": 1.0, "seed": 2}):
        reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=400,
                                               response_format=form, logit_bias=spaces,
                                               **settings)
        assert reply.choices[0].finish_reason == "stop"
        value = json.loads(reply.choices[0].message.content)
        jsonschema.validate(value, CHOICES)
        assert list(value) == ["size", "count", "fresh", "box"]      # the schema's order


ORDER = {"type": "function", "function": {
    "name": "order", "description": "Order a drink",
    "parameters": {"type": "object", "additionalProperties": False,
                   "properties": {"drink": {"enum": ["tea", "coffee"]},
                                  "sugar": {"type": "boolean"}},
                   "required": ["drink", "sugar"]}}}
CANCEL = {"type": "function", "function": {"name": "cancel", "parameters": {
    "type": "object", "properties": {}, "additionalProperties": False}}}


def test_a_required_tool_call_comes_back_as_tool_calls(server, client, monkeypatch):
    """tool_choice "required" or a named function: OpenAI's tool_calls, each a tool's name
    and arguments of its schema, streamed or not; then a turn with the call and its result."""
    jsonschema = pytest.importorskip("jsonschema")
    _, model, tokenizer, _ = server
    # a template that takes the tools (and says only how many): the tools described in a
    # system message would not fit this model's 128 positions (tests/serve/test_tools.py
    # checks that message)
    monkeypatch.setattr(tokenizer, "chat_template", "{% if tools %}{{ tools | length }} tools"
                        "\n{% endif %}" + tokenizer.chat_template)
    spaces = {str(t): -100 for t in range(model.config.vocab_size)
              if tokenizer.decode([t]) and not tokenizer.decode([t]).strip()}
    # (one call at a time: this random model would go on adding calls to the list; and as
    # many tokens as its context leaves: its tokens are about a character each)
    for choice in ("required", {"type": "function", "function": {"name": "order"}}):
        reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=128,
                                               temperature=0, tools=[ORDER, CANCEL],
                                               tool_choice=choice, logit_bias=spaces,
                                               parallel_tool_calls=False)
        assert reply.choices[0].finish_reason == "tool_calls"
        calls = reply.choices[0].message.tool_calls
        assert calls and reply.choices[0].message.content is None
        for call in calls:
            schema = {"order": ORDER, "cancel": CANCEL}[call.function.name]
            jsonschema.validate(json.loads(call.function.arguments),
                                schema["function"]["parameters"])
        if choice != "required":
            assert [c.function.name for c in calls] == ["order"]
        streamed = [c for c in client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=128, temperature=0, tools=[ORDER, CANCEL],
            tool_choice=choice, logit_bias=spaces, parallel_tool_calls=False, stream=True)
            if c.choices]
        deltas = [d for c in streamed for d in c.choices[0].delta.tool_calls or []]
        assert [(d.function.name, d.function.arguments) for d in deltas] == [
            (c.function.name, c.function.arguments) for c in calls]
        assert streamed[-1].choices[0].finish_reason == "tool_calls"
    again = client.chat.completions.create(model=MODEL, max_tokens=4, temperature=0,
                                           tools=[ORDER], messages=MESSAGES + [
        {"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in calls]},
        {"role": "tool", "tool_call_id": calls[0].id, "content": "ordered"}])
    assert again.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_the_openai_clients_parse_of_a_pydantic_model(server, client):
    """client.beta.chat.completions.parse(response_format=Model): the client sends the
    model's strict schema ($defs for the nested model, an enum, a Literal, an Optional) and
    validates the reply into the model."""
    pydantic = pytest.importorskip("pydantic")
    import enum
    from typing import Literal, Optional

    class Size(str, enum.Enum):
        small = "small"
        large = "large"

    class Lid(pydantic.BaseModel):
        closed: bool

    class Box(pydantic.BaseModel):
        size: Size
        lid: Lid
        shape: Literal["cube", "tube"]
        note: Optional[bool]
    _, model, tokenizer, _ = server
    spaces = {str(t): -100 for t in range(model.config.vocab_size)
              if tokenizer.decode([t]) and not tokenizer.decode([t]).strip()}
    reply = client.beta.chat.completions.parse(model=MODEL, messages=MESSAGES, max_tokens=128,
                                               temperature=0, response_format=Box,
                                               logit_bias=spaces)
    assert reply.choices[0].finish_reason == "stop"
    box = reply.choices[0].message.parsed
    assert isinstance(box, Box) and isinstance(box.lid, Lid)
    assert Box.model_validate_json(reply.choices[0].message.content) == box


def test_json_object_output_of_a_real_model(server):
    from gradient.serve.engine import Engine, Job

    from ..quant.gguf_fixtures import smollm2_path     # (skips where gguf is not installed)
    if smollm2_path() is None:
        pytest.skip("the SmolLM2 GGUF file is absent (tests/fixtures/models; CI fetches it)")
    model, tokenizer = gradient.hub.load(smollm2_path())
    ids = list(tokenizer.apply_chat_template([{"role": "user", "content": (
        "Describe a person called Ada, aged 36, as JSON with keys name and age.")}],
        add_generation_prompt=True))
    events, done = [], threading.Event()
    Engine(model.eval(), tokenizer).submit(Job(
        ids, 64, emit=lambda e: (events.append(e), e[0] in ("usage", "error") and done.set()),
        temperature=0, chat=True, json_grammar=JsonGrammar()))
    assert done.wait(120)
    text = "".join(e[2] for e in events if e[0] == "text")
    assert ("done", 0, "stop") in events
    assert json.loads(text)["name"] == "Ada"
    # a schema as the openai client's parse() sends a Pydantic model's: $defs, an enum, a
    # list of objects, an optional field
    schema = {"$defs": {"Fruit": {"type": "object", "additionalProperties": False,
                                  "properties": {"name": {"type": "string"},
                                                 "colour": {"enum": ["red", "yellow"]},
                                                 "grams": {"type": "integer"}},
                                  "required": ["name", "colour", "grams"]}},
              "type": "object", "additionalProperties": False,
              "properties": {"owner": {"type": "string"},
                             "fruits": {"type": "array", "items": {"$ref": "#/$defs/Fruit"}},
                             "note": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
              "required": ["owner", "fruits", "note"]}
    ids = list(tokenizer.apply_chat_template([{"role": "user", "content": (
        "Alice has a basket with an apple and a banana. Describe it as JSON.")}],
        add_generation_prompt=True))
    events, done = [], threading.Event()
    Engine(model, tokenizer).submit(Job(
        ids, 200, emit=lambda e: (events.append(e), e[0] in ("usage", "error") and done.set()),
        temperature=0, chat=True, json_grammar=JsonGrammar(schema)))
    assert done.wait(120)
    value = json.loads("".join(e[2] for e in events if e[0] == "text"))
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(value, schema)
    assert value["owner"] == "Alice" and value["fruits"][0]["name"] == "apple"


def test_an_api_key_is_asked_of_v1_requests(server):
    """create_app(api_key=...): the openai client with the key is served, without it or with
    another one it gets OpenAI's 401; the page, /health and /metrics stay open."""
    from gradient.serve import create_app
    _, model, tokenizer, _ = server
    with _serving(create_app(model, tokenizer, MODEL, api_key="s3cret")) as url:
        def client(key):
            return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
        reply = client("s3cret").chat.completions.create(model=MODEL, messages=MESSAGES,
                                                         max_tokens=2, temperature=0)
        assert reply.choices[0].message.content is not None
        for key in ("wrong", "s3cret2"):
            with pytest.raises(openai.AuthenticationError, match="API key"):
                client(key).models.list()
        refused = httpx.get(url + "/v1/models")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
        assert all(httpx.get(url + path).status_code == 200
                   for path in ("/", "/health", "/metrics"))


def test_models_retrieve_and_unknown_paths_answer_in_openais_shape(server, client):
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.models.retrieve("gpt-4o")
    missing = httpx.get(server[0] + "/v1/embeddings")
    assert missing.status_code == 404 and "no such endpoint" in missing.json()["error"]["message"]
    wrong = httpx.get(server[0] + "/v1/chat/completions")
    assert wrong.status_code == 405 and "takes POST" in wrong.json()["error"]["message"]


def test_several_prompts_in_one_request_and_echo(server, client):
    """choices[p * n + i] is choice i of prompt p; echo puts each prompt's text first."""
    _, model, tokenizer, _ = server
    prompts = ["The quick brown fox", "Colours are"]
    reply = client.completions.create(model=MODEL, prompt=prompts, max_tokens=6, n=2,
                                      temperature=0, echo=True)
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    for p, prompt in enumerate(prompts):
        ids = list(getattr(tokenizer.encode(prompt), "ids", tokenizer.encode(prompt)))
        text = _greedy(model, tokenizer, ids, 6, chat=False)[0]
        assert [c.text for c in reply.choices[2 * p:2 * p + 2]] == [prompt + text] * 2
    lengths = [len(getattr(tokenizer.encode(p), "ids", tokenizer.encode(p))) for p in prompts]
    assert reply.usage.prompt_tokens == sum(lengths)
    assert reply.usage.completion_tokens == sum(
        _greedy(model, tokenizer, list(getattr(tokenizer.encode(p), "ids",
                                               tokenizer.encode(p))), 6, chat=False)[1] * 2
        for p in prompts)
    streamed = {}
    for c in client.completions.create(model=MODEL, prompt=prompts, max_tokens=6, n=2,
                                       temperature=0, echo=True, stream=True):
        for choice in c.choices:
            streamed[choice.index] = streamed.get(choice.index, "") + choice.text
    assert [streamed[i] for i in range(4)] == [c.text for c in reply.choices]


def test_echo_with_logprobs_scores_a_prompt(server, client):
    """echo, logprobs and max_tokens 0 (how evaluation harnesses score a text): each prompt
    token's log-probability under the model's logits at the position before it."""
    _, model, tokenizer, _ = server
    ids = [[5, 17, 40, 9, 33, 71], [12, 4]]
    reply = client.completions.create(model=MODEL, prompt=ids, max_tokens=0, echo=True,
                                      logprobs=2, temperature=0)
    for choice, prompt in zip(reply.choices, ids):
        with gradient.no_grad():
            logits = model(gradient.tensor([prompt])).logits[0].double().numpy()
        expected = logits - logits.max(-1, keepdims=True)
        expected -= np.log(np.exp(expected).sum(-1, keepdims=True))
        lp = choice.logprobs
        assert choice.text == tokenizer.decode(prompt) and choice.finish_reason == "length"
        assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
        assert lp.token_logprobs[1:] == pytest.approx(
            [expected[t - 1, prompt[t]] for t in range(1, len(prompt))], abs=1e-5)
        assert [max(top.values()) for top in lp.top_logprobs[1:]] == pytest.approx(
            list(expected[:-1].max(-1)), abs=1e-5)
        assert len(lp.tokens) == len(prompt) and lp.text_offset[0] == 0
    assert reply.usage.completion_tokens == 0 and reply.usage.prompt_tokens == 8
    chunks = list(client.completions.create(model=MODEL, prompt=ids, max_tokens=2, echo=True,
                                            logprobs=1, temperature=0, stream=True))
    for index, prompt in enumerate(ids):
        mine = [c.choices[0] for c in chunks if c.choices and c.choices[0].index == index]
        entries = [v for c in mine if c.logprobs for v in c.logprobs.token_logprobs]
        assert len(entries) == len(prompt) + 2 and entries[0] is None
        assert entries[1:len(prompt)] == pytest.approx(
            reply.choices[index].logprobs.token_logprobs[1:], abs=1e-5)


def test_a_prompt_longer_than_the_context_is_refused(server, client):
    _, model, _, _ = server
    long_prompt = list(range(1, 3)) * model.config.max_position_embeddings
    with pytest.raises(openai.BadRequestError, match="context holds"):
        client.completions.create(model=MODEL, prompt=long_prompt, max_tokens=4)


def test_a_client_that_leaves_mid_stream_frees_its_place(server, client):
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=200,
                                            temperature=1.0, stream=True)
    next(iter(stream))
    stream.close()                                   # gone after the first chunk
    start = time.monotonic()
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=4,
                                           temperature=0)
    assert reply.choices[0].message.content is not None
    assert time.monotonic() - start < 30
    engine = server[3].state.engine
    assert engine.waiting == 0


def test_a_client_that_leaves_before_a_whole_reply_frees_its_place(server):
    # a reply not streamed: the client's timeout closes the connection and its job stops
    # there, not after max_tokens (each token is made slow here, 30 ms, to be seen leaving)
    url, model, tokenizer, app = server
    engine = app.state.engine
    emitted, jobs, submit = [], [], engine.submit

    def slowly(job):
        emit = job.emit

        def slow_emit(event):
            emitted.append(event[0])
            time.sleep(0.03)
            emit(event)
        job.emit = slow_emit
        jobs.append(job)
        submit(job)

    engine.submit = slowly
    errors = _ErrorsLogged()
    logging.getLogger("uvicorn.error").addHandler(errors)
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/v1/chat/completions", timeout=httpx.Timeout(30, read=0.3), json={
                "model": MODEL, "messages": MESSAGES, "max_tokens": 90, "temperature": 1.0,
                "logit_bias": {str(t): -100 for t in stop_ids(model, tokenizer, True)}})
        assert jobs[0].cancelled.wait(10)
        for _ in range(100):                      # the engine drops it at its next step
            if engine.running == 0:
                break
            time.sleep(0.05)
        assert engine.running == 0
        made, limit = emitted.count("text"), jobs[0].max_tokens     # (the context's room)
        assert made < limit / 4, f"{made} of {limit} tokens made for a client that left"
        assert not errors.records, errors.records[0].getMessage()   # the handler ended well
    finally:
        del engine.submit
        logging.getLogger("uvicorn.error").removeHandler(errors)


class _ErrorsLogged(logging.Handler):
    """The error records of a logger (uvicorn's, which does not propagate to pytest's)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_a_stopped_server_ends_long_replies_within_its_stop_seconds():
    # SIGTERM (or Ctrl-C) while replies of thousands of tokens are written: the server waits
    # about STOP_SECONDS for them, then ends them with an error that says it stops (a stream's
    # last event, a whole reply's 503) and exits, rather than finishing them or cutting the
    # stream's connection (the openai client: a bare "Connection error.")
    import signal
    import subprocess
    import sys

    from gradient.serve import STOP_SECONDS, model_name

    from ..quant.gguf_fixtures import smollm2_path     # (a model slow enough to be stopped)
    if smollm2_path() is None:
        pytest.skip("the SmolLM2 GGUF file is absent (tests/fixtures/models; CI fetches it)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "gradient", "serve", smollm2_path(),
                               "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            assert server.poll() is None, "the server exited"
            time.sleep(0.2)
        ask = {"model": model_name(smollm2_path()), "prompt": "Once upon a time",
               "max_tokens": 4000, "logit_bias": {"0": -100, "2": -100}}
        replies, streamed, ended = [], [], []

        def stream():
            client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
            try:
                for chunk in client.completions.create(stream=True, **ask):
                    streamed.append(chunk.choices[0].text)
                ended.append("whole")
            except openai.APIError as e:
                ended.append(e)

        asking = [threading.Thread(target=lambda: replies.append(httpx.post(
            url + "/v1/completions", timeout=120, json=ask))), threading.Thread(target=stream)]
        for thread in asking:
            thread.start()
        for _ in range(600):                       # until both decode
            if len(streamed) > 2 and "gradient_batch_size 2" in httpx.get(url + "/metrics").text:
                break
            time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        start = time.monotonic()
        server.wait(timeout=120)
        took = time.monotonic() - start
        for thread in asking:
            thread.join(60)
        assert took < STOP_SECONDS + 4, f"the server took {took:.1f} s to stop"
        assert replies[0].status_code == 503
        assert replies[0].json()["error"]["code"] == "server_stopping"
        assert isinstance(ended[0], openai.APIError), f"the stream ended {ended[0]!r}"
        assert ended[0].code == "server_stopping" and "stopping" in ended[0].message
        assert len("".join(streamed)) > 0
    finally:
        server.kill()
        server.wait()


def test_a_shared_system_prompt_is_read_once(server, client):
    engine = server[3].state.engine
    system = {"role": "system", "content": "You answer questions about colours."}
    cached = engine.stats["cached_prompt_tokens"]
    for question in ("Name a colour.", "Name another colour."):
        reply = client.chat.completions.create(
            model=MODEL, messages=[system, {"role": "user", "content": question}],
            max_tokens=3, temperature=0)
    # the second request found the system prompt's keys and values in a prompt cache
    assert engine.stats["cached_prompt_tokens"] - cached >= 20
    # and says so in its usage, as OpenAI's prompt caching does
    assert reply.usage.prompt_tokens_details.cached_tokens >= 20
    assert "gradient_prefix_cache_hit_rate" in httpx.get(server[0] + "/metrics").text


def test_a_new_question_does_not_evict_a_long_shared_prompt(server, client):
    """A request sharing only a few positions with a cached conversation branches into another
    prompt cache: the long system prompt stays cached for the next question that uses it."""
    engine = server[3].state.engine
    system = {"role": "system", "content": "You answer questions about colours, shapes and "
                                           "the names of things, briefly and politely."}
    ask = lambda messages: client.chat.completions.create(   # noqa: E731
        model=MODEL, messages=messages, max_tokens=3, temperature=0)
    ask([system, {"role": "user", "content": "Name a colour."}])
    ask([{"role": "system", "content": "Something else entirely."},
         {"role": "user", "content": "Hi."}])               # shares only the template's start
    cached = engine.stats["cached_prompt_tokens"]
    ask([system, {"role": "user", "content": "Name a shape."}])
    assert engine.stats["cached_prompt_tokens"] - cached >= 20


def test_concurrent_requests_are_decoded_together(server, client, monkeypatch):
    """Four chats at once, of different lengths and arriving at different times: each reply is
    greedy generate's on its own ids, and the decode steps ran several sequences at a time."""
    from concurrent.futures import ThreadPoolExecutor
    _, model, tokenizer, app = server
    engine = app.state.engine
    assert engine.max_batch > 1
    # the first two requests reach the engine together, so that a batch of two runs however
    # loaded the machine is (one request's thread can otherwise arrive after the other's reply
    # ended); the last two join that batch while it runs, or start one of their own
    held, lock, submit = [], threading.Lock(), engine.submit

    def submit_first_two_together(job):
        with lock:
            held.append(job)
            if len(held) < 2:
                return
            ready = held[:2] if len(held) == 2 else [job]
        for each in ready:
            submit(each)
    monkeypatch.setattr(engine, "submit", submit_first_two_together)
    questions = ["Name a colour.", "Name a fruit, please, and say why you like it.",
                 "Hi", "Count to three."]
    steps, rows = engine.stats["decode_steps"], engine.stats["decode_rows"]

    def ask(k):
        time.sleep(0.01 * k)                   # the last two join a batch already running
        messages = [{"role": "user", "content": questions[k]}]
        reply = client.chat.completions.create(model=MODEL, messages=messages,
                                               max_tokens=60 + 8 * k, temperature=0)
        ids = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True))
        return reply.choices[0].message.content, _greedy(model, tokenizer, ids, 60 + 8 * k,
                                                         chat=True)[0]
    with ThreadPoolExecutor(4) as pool:
        for got, expected in pool.map(ask, range(4)):
            assert got == expected
    steps, rows = engine.stats["decode_steps"] - steps, engine.stats["decode_rows"] - rows
    assert rows > steps > 0          # a mean batch above one sequence
    metrics = httpx.get(server[0] + "/metrics").text
    assert "gradient_decode_rows_total" in metrics


def test_more_choices_than_rows_all_finish(server, client):
    engine = server[3].state.engine
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5,
                                           temperature=1.0, seed=3, n=engine.max_batch + 3)
    assert len(reply.choices) == engine.max_batch + 3
    assert sorted(c.index for c in reply.choices) == list(range(engine.max_batch + 3))
    for _ in range(100):             # (the worker counts its rows after the last event)
        if engine.running == 0:
            break
        time.sleep(0.02)
    assert engine.running == 0 and engine.waiting == 0


def test_concurrent_chats_under_one_system_prompt_share_its_kv_blocks(server, client,
                                                                      monkeypatch):
    """Three chats at once under one long system prompt: each reply is greedy generate's on
    its own ids, and the rows that joined the batch took up the blocks already holding the
    system prompt instead of copies of it."""
    from concurrent.futures import ThreadPoolExecutor
    _, model, tokenizer, app = server
    engine = app.state.engine
    # the three requests reach the engine together: on a loaded machine one request's thread
    # can otherwise arrive after another has finished, and nothing is left to share
    held, lock, submit = [], threading.Lock(), engine.submit

    def submit_together(job):
        with lock:
            held.append(job)
            if len(held) < 3:
                return
        for each in held:
            submit(each)
    monkeypatch.setattr(engine, "submit", submit_together)
    # a system turn of 65 ids: the first block of 64 is the same in every prompt
    system = {"role": "system",
              "content": "You answer questions about colours. Keep all of your answers short."}
    questions = ["Hi", "Red?", "Why?"]
    shared = engine.stats["kv_blocks_shared"]
    together = threading.Barrier(3)

    def ask(k):
        messages = [system, {"role": "user", "content": questions[k]}]
        together.wait()
        reply = client.chat.completions.create(model=MODEL, messages=messages,
                                               max_tokens=40, temperature=0)
        ids = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True))
        return len(ids), reply.choices[0].message.content, _greedy(model, tokenizer, ids, 40,
                                                                   chat=True)[0]
    with ThreadPoolExecutor(3) as pool:
        for length, got, expected in pool.map(ask, range(3)):
            assert 64 < length <= 88 and got == expected        # a block in common
    assert engine.stats["kv_blocks_shared"] - shared >= 2
    metrics = httpx.get(server[0] + "/metrics").text
    assert "gradient_kv_blocks_shared_total" in metrics


def test_random_request_bodies_get_a_request_error_or_jobs(server):
    """What a fuzzer sends: every field of a request given values of the wrong kinds, alone
    and together; reading it gives jobs or a RequestError (a 4xx), never another exception
    (a 500)."""
    from gradient.serve.request import RequestError, read_request
    engine = server[3].state.engine
    rng = random.Random(3)
    values = [None, True, 0, -1, 1, 2.5, 1e9, "", "x", "none", "auto", "required", [], {},
              ["x"], [1, 2], [[1]], {"type": "json_object"}, {"type": "json_schema"},
              {"type": "json_schema", "json_schema": {"schema": {"type": "integer"}}},
              {"1": 2}, {"x": 1}, {"role": "user"}, [{"role": "user", "content": "hi"}],
              [{"role": "tool", "content": None}], [{"type": "function"}],
              [{"type": "function", "function": {"name": "f", "parameters": {"x": 1}}}],
              {"type": "function", "function": {"name": "f"}}, {"include_usage": True}]
    fields = ["messages", "prompt", "n", "max_tokens", "max_completion_tokens", "temperature",
              "top_p", "top_k", "min_p", "seed", "stop", "stream", "stream_options",
              "logprobs", "top_logprobs", "logit_bias", "presence_penalty",
              "frequency_penalty", "repetition_penalty", "response_format", "tools",
              "tool_choice", "parallel_tool_calls", "echo", "suffix", "best_of", "functions"]
    read = 0
    for _ in range(1500):
        chat = rng.random() < 0.5
        body = {"model": MODEL}
        body["messages" if chat else "prompt"] = (MESSAGES if chat else "The quick")
        for field in rng.sample(fields, rng.randrange(1, 4)):
            body[field] = rng.choice(values)
        try:
            jobs = read_request(body, chat, engine, MODEL)[0]
        except RequestError as e:
            assert 400 <= e.status < 500, (body, e.message)
            continue
        read += 1
        assert jobs and all(job.prompt_ids for job in jobs)
    assert read > 100


def test_an_auto_tool_call_is_held_to_the_tools_from_its_marker_on(server):
    """tool_choice "auto": free text, until the text writes <tool_call>; then the tokens
    are held to a call of the tools until its object closes, and free again after it. The
    model's scores are scripted: each step's favourite is the next token of a text."""
    from gradient.serve.batching import _Sequence
    from gradient.serve.engine import Engine, Job
    from gradient.serve.tools import ToolUse
    _, model, tokenizer, _ = server
    scheduler, vocab = Engine(model, tokenizer).scheduler, model.config.vocab_size
    use = ToolUse.from_request([ORDER], "auto", True, tokenizer)

    def sequence():
        job = Job([5, 6, 7], 200, emit=lambda e: None, temperature=0,
                  call_grammar=use.call_grammar())
        return _Sequence(job, 0, 200, set(), tokenizer)

    def write(seq, text):
        """Favour, step by step, the tokens of ``text``; what was written."""
        start = seq.length
        for token in tokenizer.encode(text, add_special_tokens=False):
            scores = np.zeros((1, vocab), np.float32)
            scores[0, token] = 10.0
            scheduler._choose(seq, scores)
        return tokenizer.decode(seq.ids[start:seq.length].tolist())
    held = sequence()
    assert write(held, "Sure. <tool_call>") == "Sure. <tool_call>" and held.json is not None
    assert not write(held, "oops").startswith("o")    # held: "o" does not begin a call
    free = sequence()
    call = '{"name": "order", "arguments": {"drink": "tea", "sugar": false}}'
    assert write(free, "Sure. <tool_call>" + call) == "Sure. <tool_call>" + call
    assert free.json is None                          # the call is whole: free again
    assert write(free, "</tool_call> oops") == "</tool_call> oops" and free.finish is None
    reader = use.reader()
    reader.push(tokenizer.decode(free.ids[3:free.length].tolist()))
    _, calls = reader.finish()
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"drink": "tea",
                                                                         "sugar": False}]


def test_a_long_prompt_is_read_in_chunks_between_the_running_streams_steps(server,
                                                                            monkeypatch):
    """A long prompt that arrives while a stream decodes is read PREFILL_CHUNK tokens at a
    time, a decode step of the stream between its chunks; its reply is still greedy
    generate's. A short prompt that comes meanwhile starts at once, and finishes first. A
    long prompt cancelled while it is read stops there, one whose read fails gets an error;
    the stream goes on."""
    from gradient.serve import batching
    from gradient.serve.engine import Job
    _, model, tokenizer, app = server
    engine = app.state.engine
    monkeypatch.setattr(batching, "PREFILL_CHUNK", 4)
    eos = sorted(stop_ids(model, tokenizer, True))
    words = "apples pears plums cherries grapes melons lemons limes figs dates kiwis".split()
    long_ids = list(tokenizer.apply_chat_template(
        [{"role": "user", "content": "List these: " + " ".join(words)}],
        add_generation_prompt=True))
    assert 40 < len(long_ids) < model.config.max_position_embeddings - 12
    cancelled_ids = long_ids[:-1] + [long_ids[0]]      # as long, other prompts
    failing_ids = long_ids[:-1] + [long_ids[1]]
    reads, prefill = [], batching.Scheduler._prefill

    def counted(self, seq, end):
        if seq.prompt_length == len(long_ids):
            reads.append((seq.job, engine.stats["decode_steps"], end - seq.length))
            if seq.job is jobs["cancelled"]:
                seq.job.cancel()           # its client leaves while its prompt is read
            if seq.job is jobs["failing"] and [r[0] for r in reads].count(seq.job) == 2:
                raise RuntimeError("the second chunk fails")
        return prefill(self, seq, end)
    monkeypatch.setattr(batching.Scheduler, "_prefill", counted)
    events = {name: [] for name in ("stream", "long", "cancelled", "failing", "short")}
    timeline = []
    done = {name: threading.Event() for name in events}

    def job(name, ids, max_tokens, chat=True, **settings):
        def emit(event):
            events[name].append(event)
            timeline.append((name, event[0]))
            if event[0] in ("usage", "error"):
                done[name].set()
        return Job(prompt_ids=ids, max_tokens=max_tokens, emit=emit, chat=chat,
                   temperature=0, **settings)
    short_ids = list(tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True))
    jobs = {"stream": job("stream", short_ids, 120, logit_bias={t: -100.0 for t in eos}),
            "cancelled": job("cancelled", cancelled_ids, 10),
            "failing": job("failing", failing_ids, 10), "long": job("long", long_ids, 12),
            "short": job("short", long_ids[:3], 5, chat=False)}
    step = batching.Scheduler._step

    def slower_step(self):          # the stream outlasts the long prompts' chunks
        time.sleep(0.002)
        return step(self)
    monkeypatch.setattr(batching.Scheduler, "_step", slower_step)
    engine.submit(jobs["stream"])
    engine.submit(jobs["cancelled"])
    engine.submit(jobs["failing"])
    engine.submit(jobs["long"])
    for _ in range(1000):                 # (the server's queue holds 4)
        if any(r[0] is jobs["long"] for r in reads):
            break
        time.sleep(0.005)
    engine.submit(jobs["short"])
    assert all(done[name].wait(60) for name in ("long", "stream", "short")), events["long"]
    text = "".join(e[2] for e in events["long"] if e[0] == "text")
    assert text == _greedy(model, tokenizer, long_ids, 12, chat=True)[0]
    assert not done["cancelled"].is_set()
    assert [e[0] for e in events["failing"]] == ["error"]
    assert any(e[0] == "usage" for e in events["stream"])
    short = "".join(e[2] for e in events["short"] if e[0] == "text")
    assert short == _greedy(model, tokenizer, long_ids[:3], 5, chat=False)[0]
    assert timeline.index(("short", "usage")) < timeline.index(("long", "text"))
    assert [r[0] for r in reads].count(jobs["cancelled"]) == 1      # it stopped being read
    chunks = [r for r in reads if r[0] is jobs["long"]]
    assert len(chunks) >= 10          # (of 4 tokens: what no prompt cache held)
    assert all(r[2] <= 4 for r in chunks[:-1])
    # a decode step of the stream between every two chunks
    assert all(b[1] > a[1] for a, b in zip(chunks, chunks[1:])), [(r[1], r[2]) for r in chunks]


def test_a_prompt_cache_being_read_into_is_copied_from_not_given(server):
    """A request starting while a long prompt is read gets another prompt cache, with a copy
    of what it shares with the one being read, which keeps its own."""
    from gradient.serve.engine import Engine
    _, model, tokenizer, _ = server
    engine = Engine(model, tokenizer, prompt_caches=2)
    ids = np.array(tokenizer.encode("one two three four five six seven eight"), np.int64)
    busy = engine._cache_for(ids)
    cache, _ = busy.take(ids, len(ids), len(ids) + 4)
    with gradient.no_grad():
        model(gradient.tensor(ids[None]), cache=cache)
    got = engine._cache_for(ids[:5], busy=busy)
    assert got is not busy
    assert got.ids.tolist() == ids[:5].tolist() and busy.ids.tolist() == ids.tolist()
    for copied, kept in zip(got.cache.keys + got.cache.values,
                            busy.cache.keys + busy.cache.values):
        np.testing.assert_array_equal(copied.numpy()[:, :, :5], kept.numpy()[:, :, :5])


def test_a_row_is_kept_for_the_long_prompt_being_read(server, monkeypatch):
    """With every row but one taken, a short prompt arriving while a long one is read waits
    for it: the long one joins in the row kept for it, and every request finishes."""
    from gradient.serve import batching
    from gradient.serve.engine import Engine, Job
    _, model, tokenizer, _ = server
    monkeypatch.setattr(batching, "PREFILL_CHUNK", 4)
    engine = Engine(model, tokenizer, max_batch=2)
    ends = {}

    def job(name, ids, max_tokens):
        def emit(event):
            if event[0] in ("usage", "error"):
                ends[name] = event[0]
        return Job(prompt_ids=ids, max_tokens=max_tokens, emit=emit, temperature=0,
                   logit_bias={t: -100.0 for t in stop_ids(model, tokenizer)})
    ids = list(tokenizer.encode("one two three four five six seven eight nine ten " * 3))
    engine.submit(job("stream", ids[:3], 60))
    engine.submit(job("long", ids, 4))
    engine.submit(job("short", ids[:2], 40))     # (still running when the long one joins)
    for _ in range(3000):
        if len(ends) == 3:
            break
        time.sleep(0.01)
    assert ends == {"stream": "usage", "long": "usage", "short": "usage"}


def test_the_warm_up_answers_a_chat_of_its_own_and_counts_nothing(server, monkeypatch):
    """`gradient serve` answers a short chat before it listens (what a first request loads is
    then loaded): through the worker like any request, greedy, and left out of /metrics."""
    url, model, tokenizer, app = server
    engine = app.state.engine
    jobs, submit = [], engine.submit
    monkeypatch.setattr(engine, "submit", lambda job: (jobs.append(job), submit(job)))
    before = httpx.get(url + "/metrics").text
    engine.warm_up()
    assert len(jobs) == 1 and jobs[0].temperature == 0.0
    assert jobs[0].prompt_ids == list(tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello"}], add_generation_prompt=True))
    assert httpx.get(url + "/metrics").text == before


def test_serve_warms_up_unless_told_not_to(monkeypatch):
    import gradient.serve as serve_module
    from gradient import cli

    calls = []
    monkeypatch.setattr(serve_module, "serve", lambda *a, **k: calls.append(k["warm_up"]))
    monkeypatch.setattr(cli, "_load", lambda args, *a, **k: (None, None))
    for flags in ([], ["--no-warmup"]):
        cli.main(["serve", "some-model", *flags])
    assert calls == [True, False]
