"""From a fresh process to the first generated token, with numba's cache empty (the first run
after installing: every CPU kernel compiled now) and warm (every later run).

Run:  python bench/cold_start.py [--gguf PATH] [--tokens 30]

Each run is ``gradient generate GGUF "The capital of France is" --temperature 0 --no-echo`` in
a child process with its own ``NUMBA_CACHE_DIR`` and ``GRADIENT_CACHE_DIR`` (empty for the cold
run, the ones the cold run filled for the warm run). It times, from the process's start: the
first byte of generated text, the longest wait between two pieces of output (stdout, and stderr
on a terminal: what a user watches), and the end. Between the two it waits for the child
process the cold run left compiling the decode loop (gradient.capture.background). The JSON
line gives both runs and whether their texts agree (they must: the same greedy text on the
first run as on every later one).
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = os.path.join(ROOT, "tests", "fixtures", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def run(gguf: str, tokens: int, cache: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, HF_HUB_OFFLINE="1",
               GRADIENT_COMPILE_IN_BACKGROUND="1",    # the command's default (a test's is 0)
               GRADIENT_CACHE_DIR=os.path.join(cache, "gradient"),   # the compiled steps too
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # stderr on a terminal (a pseudo-terminal), as a user sees the command's notices
    master, slave = pty.openpty()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gradient", "generate", gguf,
                             "The capital of France is", "--temperature", "0", "--no-echo",
                             "--max-new-tokens", str(tokens)], stdout=subprocess.PIPE,
                            stderr=slave, env=env)
    os.close(slave)
    out, err, first, last, longest = b"", b"", None, start, 0.0
    streams = {proc.stdout.fileno(): "out", master: "err"}
    while streams:
        for fd in select.select(list(streams), [], [])[0]:
            try:
                data = os.read(fd, 65536)
            except OSError:      # the terminal closes with the process
                data = b""
            now = time.perf_counter()
            if not data:
                del streams[fd]
                continue
            longest, last = max(longest, now - last), now
            if streams[fd] == "out":
                first = first or now
                out += data
            else:
                err += data
    proc.wait()
    os.close(master)
    end = time.perf_counter()
    return {"first_token_s": round(first - start, 2) if first else None,
            "longest_silence_s": round(longest, 2), "total_s": round(end - start, 2),
            "returncode": proc.returncode, "text": out.decode("utf-8", "replace"),
            "said_compiling": b"compiling gradient's CPU kernels" in err,
            "stderr": err.decode("utf-8", "replace")}


def _compiling_into(cache: str) -> list[int]:
    """The processes compiling into ``cache`` (the children runs left behind, see
    gradient.capture.background). Linux: found by their environment in /proc."""
    marker = f"NUMBA_CACHE_DIR={cache}".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc") if os.path.isdir("/proc") else []):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            continue
    return found


def wait_for_background_compiles(cache: str, timeout: float = 600.0) -> float:
    """Wait for the child processes a run left compiling its decode loop into ``cache``, so
    that the warm run is what every later run is; seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout and _compiling_into(cache):
        time.sleep(0.5)
    return round(time.perf_counter() - start, 1)


def stop_background_compiles(cache: str, timeout: float = 60.0) -> None:
    """Stop the child processes still compiling into ``cache`` and wait until they are gone:
    before the cache's directory is removed (a short warm run, too, can leave the decode loop
    compiling: its cold run ended before the step asked for it)."""
    for pid in _compiling_into(cache):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    wait_for_background_compiles(cache, timeout)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gguf", default=DEFAULT)
    p.add_argument("--tokens", type=int, default=30)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        cold = run(args.gguf, args.tokens, cache)
        waited = wait_for_background_compiles(cache)
        warm = run(args.gguf, args.tokens, cache)
        stop_background_compiles(cache)   # before its directory goes
    cold["then_waited_for_background_compile_s"] = waited
    for result in (cold, warm):
        del result["stderr"]
    print(json.dumps({"model": os.path.basename(args.gguf), "cold": cold, "warm": warm,
                      "same_text": cold["text"] == warm["text"]}))


if __name__ == "__main__":
    main()
