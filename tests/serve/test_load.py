"""A bounded load test of gradient serve: 200 requests from 16 clients at once, of random
lengths, streamed or not, some with several choices, some clients leaving mid-stream. Every
request is answered or refused with a clear status, nothing is lost or left running, and the
process's memory comes back to where it was after the same load once before. The clients
retry what the server refuses with 503 (its queue is kept short here, so that some are)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import gradient

from ..hub.conftest import llama_dir  # noqa: F401  (the fixture)

openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")

from .test_server import MODEL, _serving  # noqa: E402


def _resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.fixture(scope="module")
def loaded_server(llama_dir):  # noqa: F811
    from gradient.serve import create_app
    model, tokenizer = gradient.hub.load(str(llama_dir))
    model.eval()
    app = create_app(model, tokenizer, MODEL, max_queue=8, max_batch=4)
    with _serving(app) as url:
        yield url + "/v1", app


def _one(client, k: int, refused: list) -> str:
    """Request ``k`` (its settings drawn from k), retried as its 503s say: what became of
    it."""
    for _ in range(400):
        try:
            return _attempt(client, k)
        except openai.APIStatusError as e:
            assert e.status_code == 503 and e.response.headers.get("retry-after") == "1", e
            refused.append(k)
            time.sleep(0.05)          # (a client would wait the Retry-After second)
    return "refused"


def _attempt(client, k: int) -> str:
    rng = np.random.default_rng(k)
    words = " ".join(rng.choice(["red", "blue", "cat", "sea", "tree", "one"], rng.integers(1, 30)))
    kwargs = dict(model=MODEL, messages=[{"role": "user", "content": words}],
                  max_tokens=int(rng.integers(1, 40)), temperature=float(rng.choice([0, 0.8])),
                  seed=k, n=int(rng.choice([1, 1, 1, 2])))
    if k % 5 == 0:                                 # a client that leaves mid-stream
        stream = client.chat.completions.create(stream=True, **kwargs)
        next(iter(stream))
        stream.close()
        return "left"
    if k % 2:
        chunks = list(client.chat.completions.create(stream=True, **kwargs))
        finished = [c.choices[0].finish_reason for c in chunks if c.choices
                    and c.choices[0].finish_reason]
        assert len(finished) == kwargs["n"], finished
        return "streamed"
    reply = client.chat.completions.create(**kwargs)
    assert len(reply.choices) == kwargs["n"]
    assert all(c.finish_reason in ("stop", "length") for c in reply.choices)
    assert 0 < reply.usage.completion_tokens <= kwargs["n"] * kwargs["max_tokens"]
    return "answered"


def _load(url) -> tuple[dict, int]:
    """What became of 200 requests from 16 clients, and how many 503s they were given."""
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=120)
    refused: list = []
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda k: _one(client, k, refused), range(200)))
    return {o: outcomes.count(o) for o in set(outcomes)}, len(refused)


def test_two_hundred_requests_from_sixteen_clients(loaded_server):
    url, app = loaded_server
    engine = app.state.engine
    _load(url)                                          # warm: caches, compiled kernels
    before = _resident_mib()
    outcomes, refusals = _load(url)
    assert outcomes == {"answered": 80, "streamed": 80, "left": 40}, outcomes
    assert refusals > 0               # 16 clients, 4 rows and 8 places to wait: some 503s
    for _ in range(100):                                # the last cancelled ones leave
        if engine.running == 0 and engine.waiting == 0:
            break
        time.sleep(0.05)
    assert engine.running == 0 and engine.waiting == 0
    assert _resident_mib() - before < 40, (before, _resident_mib())
    # and it still answers
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
    reply = client.chat.completions.create(model=MODEL, max_tokens=3, temperature=0,
                                           messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].finish_reason in ("stop", "length")
