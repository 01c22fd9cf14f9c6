"""The server on SmolLM2-135M Q4_1: time to first token with and without a cached system
prompt, and aggregate decode throughput at 1, 4, 8 and 16 concurrent streams.

Run:  python bench/serve.py [--gguf PATH] [--tokens 64] [--max-batch 8] [--seconds 10]
                             [--activations int8] [--temperature 0.7 --top-p 0.9]
                             [--stream-interval 0.02] [--only 1 8]

It starts ``gradient serve`` on 127.0.0.1 in a process of its own, as a user runs it, and
drives it with the ``openai`` client from this one:

* ``prefix``: a chat with a system prompt of about 1,000 tokens, then a second chat with the
  same system prompt and another question: time to first token (streamed) of each, and their
  ratio (the issue's goal: the second at most 15% of the first);
* ``long_prompt_join``: four streams decoding when a chat with a new 1,000-token system
  prompt arrives, then a short chat: the long one's time to first token, the longest wait of
  the four streams between two tokens while it is read (gradient reads a long prompt in
  chunks between decode steps), and the short chat's time to first token;
* ``concurrency``: N clients at once for ``--seconds``, each streaming about ``--tokens``
  tokens of a short chat with a different question, one request after another, greedy or
  sampled (``--temperature``, ``--top-p``: what a chat client usually sends, whose sampling
  costs the server per token and per stream); aggregate generated tokens per second, the
  median time to first token, and the aggregate over the single-stream rate. Up to
  ``--max-batch`` sequences are decoded together (continuous batching).

As under ``gradient serve``, the decode loop of each number of rows in the batch is compiled
by a child process while the first steps of that size replay in Python; a first, untimed
pass of the concurrencies lets them compile, and the timed runs wait until the server's
``gradient_kernels_compiling`` gauge is 0 (``--no-warmup`` skips both: then the figures
include those replays on a machine whose disk cache does not hold the loops yet).

``--only 1 8`` times those concurrencies of gradient's server alone (no prefix, long-prompt
or peer figures): what alternated runs of two settings need, such as ``--stream-interval 0``
against the default.

The same concurrency runs against llama-cpp-python's OpenAI server on the same file (the peer,
``pip install 'llama-cpp-python[server]'``, 2 threads) where it is installed (in this
interpreter or the one ``--peer-python`` names), after gradient's server has stopped; the JSON line gives gradient's rate over the peer's at each concurrency.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import find_smollm2  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process) -> str:
    """The served model's name once ``url``/models answers; exits if the process ended."""
    for _ in range(1200):
        if process.poll() is not None:
            raise SystemExit(f"the server at {url} exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=1) as r:
                return json.load(r)["data"][0]["id"]
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server at {url} did not start")


def start_server(path: str, max_batch: int, activations: str | None = None,
                 stream_interval: float | None = None):
    """``gradient serve`` on 127.0.0.1 in a process of its own, as a user runs it and as the
    peer runs (clients in this process would share its interpreter lock), with
    ``--activations`` and ``--stream-interval`` where given: ``(url, model name, process)``."""
    port = free_port()
    extra = ["--activations", activations] if activations else []
    if stream_interval is not None:
        extra += ["--stream-interval", str(stream_interval)]
    process = subprocess.Popen([sys.executable, "-m", "gradient", "serve", path, "--port",
                                str(port), "--max-batch", str(max_batch), *extra],
                               stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    return url, wait_for(url, process), process


def compiling(url: str) -> int:
    """The server's ``gradient_kernels_compiling`` gauge (its children still compiling)."""
    with urllib.request.urlopen(url.removesuffix("/v1") + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("gradient_kernels_compiling "):
                return int(line.split()[1])
    return 0


def until_compiled(url: str) -> None:
    """Wait until the server's children have compiled what they were asked to (its
    ``gradient_kernels_compiling`` gauge reads 0)."""
    while compiling(url):
        time.sleep(1)


def stream_chat(client, name, messages, tokens, sampling=None):
    """(time to first token, seconds, tokens generated, prompt tokens) of one streamed chat,
    greedy or with the ``sampling`` settings (temperature, top_p). The tokens generated are
    the usage's count, or, from a server that sends no usage in streams (llama_cpp.server),
    the chunks with text (one token each there)."""
    start = time.perf_counter()
    first, usage, pieces = None, None, 0
    for chunk in client.chat.completions.create(model=name, messages=messages, max_tokens=tokens,
                                                stream=True,
                                                stream_options={"include_usage": True},
                                                **(sampling or {"temperature": 0})):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces += 1
            if first is None:
                first = time.perf_counter() - start
        if getattr(chunk, "usage", None) is not None:
            usage = chunk.usage
    return (first, time.perf_counter() - start, usage.completion_tokens if usage else pieces,
            usage.prompt_tokens if usage else None)


def start_peer(path: str, python: str):
    """llama-cpp-python's own OpenAI server on the same file (``python -m llama_cpp.server``,
    2 threads) under the interpreter ``python``, or None where llama_cpp is not installed
    there: ``(url, model name, process)``. By default a new request interrupts the one
    streaming (its client gets a cut reply); here they queue, every reply whole."""
    if subprocess.run([python, "-c", "import llama_cpp.server"], capture_output=True).returncode:
        return None
    port = free_port()
    process = subprocess.Popen([python, "-m", "llama_cpp.server", "--model", path,
                                "--port", str(port), "--n_ctx", "4096", "--n_threads", "2",
                                "--n_threads_batch", "2", "--interrupt_requests", "False"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    return url, wait_for(url, process), process


def long_prompt_join(client, name, system: dict) -> dict:
    """Four greedy streams of 200 tokens; 0.6 s in, a chat with the long ``system`` prompt
    (not cached) asks for 8, and 0.3 s later a short chat: the long one's time to first
    token, the longest time any of the four streams waited between two tokens (while it was
    read: their longest wait), and the short chat's time to first token."""
    def stream(question, arrivals):
        for chunk in client.chat.completions.create(
                model=name, messages=[{"role": "user", "content": question}], max_tokens=200,
                stream=True, temperature=0):
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.perf_counter())
    arrivals = [[] for _ in range(4)]
    with ThreadPoolExecutor(5) as pool:
        streams = [pool.submit(stream, f"Tell me a long story about the number {i}.",
                               arrivals[i]) for i in range(4)]
        time.sleep(0.6)
        long = pool.submit(stream_chat, client, name, [system, {
            "role": "user", "content": "What is the capital of Peru?"}], 8)
        time.sleep(0.3)                  # a short chat while the long prompt is read
        short = stream_chat(client, name, [{"role": "user", "content": "Hi!"}], 8)
        ttft = long.result()[0]
        for s in streams:
            s.result()
    gaps = [b - a for times in arrivals for a, b in zip(times, times[1:])]
    return {"ttft_s": round(ttft, 3), "streams_longest_gap_s": round(max(gaps), 3),
            "short_chat_meanwhile_ttft_s": round(short[0], 3)}


def streams_for(client, name, n: int, seconds: float, request, sampling=None) -> dict:
    """``n`` clients at once for ``seconds``: each streams one request after another,
    ``request(i)`` the ``(question, max_tokens)`` of the window's i-th (numbered by a counter
    the clients share: ``next`` of an ``itertools.count`` is atomic), and the one streaming
    when the time is up closes its stream there (the server frees its row). Tokens/s counts
    the chunks with text that arrived in the window, one token each on both servers
    (``chunk_share``: the chunks of gradient's whole replies over their usage counts);
    ``ttft_median_s`` is the median time to first token of the requests that got one."""
    deadline = time.perf_counter() + seconds
    records, numbers = [], itertools.count()

    def one_client():
        while time.perf_counter() < deadline:
            question, tokens = request(next(numbers))
            start, arrivals, usage = time.perf_counter(), [], None
            with client.chat.completions.create(
                    model=name, messages=[{"role": "user", "content": question}],
                    max_tokens=tokens, stream=True, stream_options={"include_usage": True},
                    **(sampling or {"temperature": 0})) as stream:
                for chunk in stream:
                    now = time.perf_counter()
                    if now >= deadline:
                        break
                    if chunk.choices and chunk.choices[0].delta.content:
                        arrivals.append(now)
                    if getattr(chunk, "usage", None) is not None:
                        usage = chunk.usage
            records.append((start, arrivals, usage))
    with ThreadPoolExecutor(n) as pool:
        for future in [pool.submit(one_client) for _ in range(n)]:
            future.result()
    tokens = sum(len(arrivals) for _, arrivals, _ in records)
    whole = [(len(a), u.completion_tokens) for _, a, u in records if u is not None]
    line = {"tokens_per_s": round(tokens / seconds, 1),
            "ttft_median_s": round(statistics.median(
                a[0] - s for s, a, _ in records if a), 3),
            "requests": len(records)}
    if whole:
        line["chunk_share"] = round(sum(c for c, _ in whole) / sum(u for _, u in whole), 3)
    return line


def concurrency(client, name, tokens: int, first: int = 10, seconds: float = 10.0,
                sampling=None, counts=(1, 4, 8, 16)) -> dict:
    """Aggregate tokens/s, median time to first token, and the aggregate over one stream's, for
    ``counts`` clients at once (1, 4, 8 and 16) for ``seconds`` each (:func:`streams_for`),
    asking about the numbers from ``first`` on.

    The rates are those of ``n`` streams all running: a window of fixed length that each
    client fills with requests, not a fixed number of requests each, whose last ones ran with
    fewer streams than ``n`` and which took one stream's rate from its first four replies, among
    the longest (alternated on one server, 2026-11-29: one stream 144 and 172 tokens/s that
    way, 116 and 117 in windows; 8 streams 365 and 405, and 384 and 388).
    The replies are of different lengths, ``tokens / 2`` to ``3 tokens / 2`` (``tokens`` on
    average, the same sequence for every server): with every reply as long, every stream of a
    batch ended at the same step, and the server idled while the clients sent their next
    requests, a lockstep real clients do not keep. The prompts are two-digit numbers: every
    prompt as many tokens, so that the untimed pass, on other two-digit numbers, has compiled
    the step of every prompt's tail after the cached prefix, as a server running for a while
    has. After each window a one-token request waits for the server to drop what the window
    cut."""
    questions = [f"Tell me one fact about the number {i}." for i in range(first, first + 80)]
    # (a prime number of lengths: the pairs with the 80 questions do not repeat soon)
    lengths = random.Random(0).choices(range(tokens // 2, tokens * 3 // 2 + 1), k=997)
    result = {}
    for n in counts:
        line = streams_for(client, name, n, seconds,
                           lambda i: (questions[i % len(questions)], lengths[i % len(lengths)]),
                           sampling)
        single = result["streams_1"]["tokens_per_s"] if n > 1 and "streams_1" in result else \
            line["tokens_per_s"] if n == 1 else None
        if single:
            line["vs_single"] = round(line["tokens_per_s"] / single, 2)
        result[f"streams_{n}"] = line
        stream_chat(client, name, [{"role": "user", "content": "Hi"}], 1)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gguf", default=None)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0, help="the window of each "
                   "concurrency")
    p.add_argument("--no-peer", action="store_true", help="skip llama_cpp.server")
    p.add_argument("--peer-python", default=sys.executable, metavar="PATH",
                   help="the interpreter that has llama-cpp-python[server] (default: this one)")
    p.add_argument("--no-warmup", action="store_true",
                   help="time the concurrencies without a first, untimed pass")
    p.add_argument("--activations", choices=("int8", "float32"), default=None,
                   help="gradient serve's --activations (default: the server's own)")
    p.add_argument("--stream-interval", type=float, default=None, metavar="SECONDS",
                   help="gradient serve's --stream-interval (default: the server's own; 0 "
                        "writes each token as it comes)")
    p.add_argument("--only", type=int, nargs="+", default=None, metavar="N",
                   help="time only these concurrencies (e.g. --only 1 8), without the prefix "
                        "and long-prompt figures")
    p.add_argument("--temperature", type=float, default=0.0,
                   help="the concurrency's requests sample at this temperature (default 0: "
                        "greedy)")
    p.add_argument("--top-p", type=float, default=None, help="and with this top_p")
    args = p.parse_args()
    sampling = {"temperature": args.temperature}
    if args.top_p is not None:
        sampling["top_p"] = args.top_p
    from openai import OpenAI
    path = find_smollm2(args.gguf)
    if path is None:
        raise SystemExit("no SmolLM2 GGUF: pass --gguf PATH (see bench/common.py)")
    url, name, server = start_server(path, args.max_batch, args.activations,
                                     args.stream_interval)
    try:
        client = OpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
        stream_chat(client, name, [{"role": "user", "content": "Hello"}], 4)   # warm up
        if not args.no_warmup:    # every batch size's loop compiled (or in the disk cache)
            # other prompts (none cached), as many tokens each
            concurrency(client, name, args.tokens, first=74, seconds=3, sampling=sampling)
            until_compiled(url)
            time.sleep(3)        # (the server looks for what its children compiled every 2 s)

        if args.only:          # these concurrencies alone (alternated runs of one setting)
            print(json.dumps({"sampling": sampling, "gradient": concurrency(
                client, name, args.tokens, seconds=args.seconds, sampling=sampling,
                counts=args.only)}))
            return
        words = ("The assistant answers questions about geography, history and science with "
                 "short, precise answers, citing the relevant facts. ")
        system = {"role": "system", "content": words * 50}
        first = stream_chat(client, name, [system, {"role": "user", "content":
                                                    "What is the capital of France?"}], 8)
        if not args.no_warmup:    # the long prompt's kernels, where they were not cached:
            until_compiled(url)    # a child compiling them takes a core from the second
        second = stream_chat(client, name, [system, {"role": "user", "content":
                                                     "What is the largest ocean?"}], 8)
        if not args.no_warmup:
            until_compiled(url)
        joined = long_prompt_join(client, name, {"role": "system",
                                                 "content": words.replace("The", "An") * 50})
        if not args.no_warmup:
            until_compiled(url)
        result = {"prompt_tokens": first[3], "ttft_first_s": round(first[0], 3),
                  "ttft_second_s": round(second[0], 3),
                  "ttft_ratio": round(second[0] / first[0], 3),
                  "long_prompt_join": joined,
                  "sampling": sampling,
                  "gradient": concurrency(client, name, args.tokens, seconds=args.seconds,
                                          sampling=sampling)}
    finally:
        server.kill()
        server.wait()
    peer = None if args.no_peer else start_peer(path, args.peer_python)
    if peer is not None:       # measured after gradient, with gradient's server idle
        peer_url, peer_name, process = peer
        try:
            peer_client = OpenAI(base_url=peer_url, api_key="none", max_retries=0, timeout=600)
            stream_chat(peer_client, peer_name, [{"role": "user", "content": "Hello"}], 4)
            result["llama_cpp_server"] = concurrency(peer_client, peer_name, args.tokens,
                                                     seconds=args.seconds, sampling=sampling)
        finally:
            process.kill()
        result["gradient_over_peer"] = {
            k: round(result["gradient"][k]["tokens_per_s"]
                     / result["llama_cpp_server"][k]["tokens_per_s"], 2)
            for k in result["gradient"]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
