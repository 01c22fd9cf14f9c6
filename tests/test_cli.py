"""The ``gradient`` command, in-process (``main([...])``) and once as ``python -m gradient``."""

import io
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import gradient.cli
from gradient.cli import main

from .hub.checkpoints import add_to_cache
from .hub.conftest import gpt2_dir, hub_cache, llama_dir, no_network  # noqa: F401  (fixtures)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _hf_greedy(directory, prompt, max_new_tokens):
    """transformers' greedy continuation of ``prompt``: the new ids, eos included."""
    import tokenizers
    import torch
    import transformers

    ids = tokenizers.Tokenizer.from_file(os.path.join(directory, "tokenizer.json")).encode(prompt).ids
    model = transformers.AutoModelForCausalLM.from_pretrained(directory).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=max_new_tokens, do_sample=False)
    return out[0, len(ids):].tolist()


def _decode(directory, ids):
    import tokenizers
    tok = tokenizers.Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
    return tok.decode(ids, skip_special_tokens=True)


def _same_text(a, b):
    # Random weights emit stray bytes; invalid UTF-8 may split into one or several U+FFFD.
    collapse = lambda s: re.sub("\ufffd+", "\ufffd", s)  # noqa: E731
    return collapse(a) == collapse(b)


@pytest.fixture
def spy_tokens(monkeypatch):
    """Record the token ids the CLI receives from the generator."""
    seen = []
    real = gradient.cli._token_stream

    def spy(*args, **kwargs):
        for token in real(*args, **kwargs):
            seen.append(token)
            yield token
    monkeypatch.setattr(gradient.cli, "_token_stream", spy)
    return seen


def test_generate_greedy_matches_transformers(gpt2_dir, capsys, spy_tokens, no_network):
    rc = main(["generate", gpt2_dir, "Hello, my dog", "--max-new-tokens", "8",
               "--temperature", "0"])
    out, err = capsys.readouterr()
    assert rc == 0
    expected = _hf_greedy(gpt2_dir, "Hello, my dog", 8)
    assert spy_tokens == expected
    eos = json.load(open(os.path.join(gpt2_dir, "config.json")))["eos_token_id"]
    text = _decode(gpt2_dir, [t for t in expected if t != eos])
    assert out.startswith("Hello, my dog") and out.endswith("\n")
    assert _same_text(out[len("Hello, my dog"):-1], text)
    assert re.search(r"\[\d+ tokens in [\d.]+ s: [\d.]+ tokens/s", err)
    assert "tokens/s" not in out  # timings stay out of the text


@pytest.mark.skipif(gradient.cuda.is_available(), reason="checks the error without a GPU")
def test_device_without_a_gpu_is_a_clear_error(gpt2_dir, capsys, no_network):
    rc = main(["generate", gpt2_dir, "Hello", "--max-new-tokens", "2", "--device", "cuda"])
    assert rc == 1 and "cuda" in capsys.readouterr().err.lower()
    rc = main(["generate", gpt2_dir, "Hello", "--max-new-tokens", "2", "--device", "tpu"])
    assert rc == 1 and "tpu" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not gradient.cuda.is_available(), reason="no CUDA device (or no CuPy)")
def test_generate_on_a_gpu_gives_the_cpu_tokens(gpt2_dir, capsys, spy_tokens, no_network):
    argv = ["generate", gpt2_dir, "Hello, my dog", "--max-new-tokens", "8", "--temperature", "0"]
    assert main(argv) == 0
    on_cpu = list(spy_tokens)
    spy_tokens.clear()
    assert main(argv + ["--device", "cuda"]) == 0
    assert [int(t) for t in spy_tokens] == [int(t) for t in on_cpu]
    assert "onto cuda" in capsys.readouterr().err


def test_text_streams_while_tokens_are_generated(gpt2_dir, monkeypatch, no_network):
    events = []
    real = gradient.cli._token_stream

    def spy(*args, **kwargs):
        for token in real(*args, **kwargs):
            events.append("token")
            yield token

    class Terminal(io.StringIO):
        def write(self, s):
            if s:
                events.append("text")
            return super().write(s)

    monkeypatch.setattr(gradient.cli, "_token_stream", spy)
    monkeypatch.setattr(sys, "stdout", Terminal())
    args = ["generate", gpt2_dir, "The", "--max-new-tokens", "12", "--no-echo", "--seed", "3",
            "--top-k", "0", "--temperature", "0.5"]
    assert main(args) == 0
    assert events.count("token") >= 6
    # text was written before the last token existed, not all at the end
    last_token = len(events) - 1 - events[::-1].index("token")
    assert "text" in events[:last_token]


def test_sampling_with_a_seed_is_repeatable(gpt2_dir, capsys, no_network):
    args = ["generate", gpt2_dir, "Once upon", "--max-new-tokens", "10", "--seed", "7",
            "--temperature", "1.5", "--top-k", "0", "--top-p", "1", "--no-echo"]
    runs = []
    for seed in ("7", "7", "8"):
        args[args.index("--seed") + 1] = seed
        assert main(args) == 0
        runs.append(capsys.readouterr().out)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]  # a different seed, another draw (at temperature 1.5, 10 tokens)
    assert not runs[0].startswith("Once upon")


def _run_chat(monkeypatch, capsys, argv, lines):
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def conversations(monkeypatch):
    """The messages of every turn the chat renders with the chat template."""
    from gradient.tokenizers import Tokenizer

    seen = []
    real = Tokenizer.apply_chat_template

    def record(self, messages, *args, **kwargs):
        seen.append([dict(m) for m in messages])
        return real(self, messages, *args, **kwargs)

    monkeypatch.setattr(Tokenizer, "apply_chat_template", record)
    return seen


def test_chat_keeps_the_history_and_exits(gpt2_dir, monkeypatch, capsys, no_network,
                                          conversations):
    rc, out, err = _run_chat(monkeypatch, capsys,
                             ["chat", gpt2_dir, "--max-new-tokens", "6", "--seed", "0",
                              "--system", "Be brief."],
                             "hi\n\nhow are you\n/exit\nnever read\n")
    assert rc == 0
    assert len(conversations) == 2  # the empty line is skipped, nothing after /exit is read
    first, second = conversations
    assert first == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert second[:2] == first and second[2]["role"] == "assistant"
    assert second[3] == {"role": "user", "content": "how are you"}
    reply = second[2]["content"]
    assert out.startswith(reply + "\n")
    assert len(re.findall(r"^\[\d+ tokens in", err, re.M)) == 2


def test_chat_stops_at_the_end_of_turn_token(gpt2_dir, monkeypatch, capsys, no_network):
    from gradient.tokenizers import Tokenizer

    tok = Tokenizer.from_pretrained(gpt2_dir)
    hello, world = tok.encode("Hello", add_special_tokens=False), tok.encode(" world")
    end = tok.convert_tokens_to_ids("<|im_end|>")
    script = hello + world + [end] + tok.encode(" never shown")
    seen_stop_ids = []

    def scripted(model, prompt_ids, args, stop_ids, max_new_tokens, prompt_cache=None):
        seen_stop_ids.append(stop_ids)
        yield from script

    monkeypatch.setattr(gradient.cli, "_token_stream", scripted)
    rc, out, err = _run_chat(monkeypatch, capsys, ["chat", gpt2_dir], "hi\n")  # then EOF
    assert rc == 0
    assert end in seen_stop_ids[0]
    assert out == "Hello world\n"


def test_chat_needs_a_chat_template(gpt2_dir, tmp_path, monkeypatch, capsys, no_network):
    plain = tmp_path / "base-model"
    shutil.copytree(gpt2_dir, plain)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    del config["chat_template"]
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    rc, out, err = _run_chat(monkeypatch, capsys, ["chat", str(plain)], "hi\n")
    assert rc == 1 and out == ""
    assert "no chat template" in err and "gradient generate" in err


def test_generation_stays_inside_the_context(gpt2_dir, capsys, spy_tokens, no_network):
    from gradient.tokenizers import Tokenizer

    tokenizer = Tokenizer.from_pretrained(gpt2_dir)
    prompt = "a"
    while len(tokenizer.encode(prompt + " dog")) < 121:  # the test GPT-2 has 128 positions
        prompt += " dog"
    n = len(tokenizer.encode(prompt))
    assert main(["generate", gpt2_dir, prompt, "--max-new-tokens", "50", "--temperature", "0",
                 "--repetition-penalty", "1.3"]) == 0
    assert 1 <= len(spy_tokens) <= 128 - n
    assert main(["generate", gpt2_dir, " x" * 200, "--max-new-tokens", "5"]) == 1
    assert re.search(r"the prompt has \d+ tokens.* at most 128", capsys.readouterr().err)


def test_chat_refuses_a_turn_that_overflows_the_context(gpt2_dir, monkeypatch, capsys, no_network):
    rc, out, err = _run_chat(monkeypatch, capsys, ["chat", gpt2_dir, "--max-new-tokens", "3"],
                             " x" * 200 + "\nhi\n")
    assert rc == 0
    assert "fills the model's context" in err and "/reset" in err
    assert len(re.findall(r"^\[\d+ tokens in", err, re.M)) == 1  # the next turn still works


def test_llama_chat(llama_dir, monkeypatch, capsys, no_network):
    rc, out, err = _run_chat(monkeypatch, capsys,
                             ["chat", llama_dir, "--max-new-tokens", "4", "--temperature", "0"],
                             "hi\n")
    assert rc == 0 and "tokens/s" in err


def test_the_second_chat_turn_reads_only_the_new_message(llama_dir, monkeypatch, capsys,
                                                         no_network):
    from gradient.generation import PromptCache
    taken = []
    real = PromptCache.take

    def take(self, sequence, prompt_length, total):
        cache, start = real(self, sequence, prompt_length, total)
        taken.append((start, prompt_length))
        return cache, start
    monkeypatch.setattr(PromptCache, "take", take)
    rc, _, _ = _run_chat(monkeypatch, capsys, ["chat", str(llama_dir), "--temperature", "0",
                                               "--max-new-tokens", "6"], "hello\nand then?\n")
    assert rc == 0 and len(taken) == 2
    (start1, total1), (start2, total2) = taken
    assert start1 == 0 and start2 >= total1   # turn 1's prompt (at least) is not read again


def test_a_chat_in_a_terminal_warms_up_while_the_first_message_is_typed(llama_dir, monkeypatch,
                                                                        capsys, no_network):
    """Interactive, `gradient chat` answers a short greedy chat of its own on a thread while
    the user types (what a first reply loads is loaded then), and the first reply waits for
    it: the model never runs on two threads at once. Piped input gets no warm-up."""
    import threading

    import gradient.generation as generation
    from gradient.generation.limits import stop_ids
    from gradient.generation.warm_up import WARM_UP_TOKENS

    started = []
    real_warm_up = gradient.cli._warm_up
    monkeypatch.setattr(gradient.cli, "_warm_up", lambda *a: started.append(a) or (lambda: None))
    rc, _, _ = _run_chat(monkeypatch, capsys, ["chat", str(llama_dir), "--max-new-tokens", "2"],
                         "hi\n")
    assert rc == 0 and started == []                                   # not a terminal
    monkeypatch.setattr(gradient.cli, "_warm_up", real_warm_up)

    model, tokenizer = gradient.hub.load(str(llama_dir))
    runs, real = [], generation.generate_tokens

    def record(model_, ids, n, **kwargs):
        runs.append((threading.current_thread().name, list(ids[0]), n, kwargs))
        return real(model_, ids, n, **kwargs)
    monkeypatch.setattr(generation, "generate_tokens", record)
    wait = gradient.cli._warm_up(model, tokenizer, stop_ids(model, tokenizer, chat=True))
    wait()
    (thread, ids, n, kwargs), = runs
    assert thread == "gradient chat warm-up" and n == WARM_UP_TOKENS
    assert ids == list(tokenizer.apply_chat_template([{"role": "user", "content": "Hello"}],
                                                     add_generation_prompt=True))
    assert "do_sample" not in kwargs                                   # greedy

    order = []
    monkeypatch.setattr(gradient.cli, "_read_message",
                        lambda interactive, _lines=iter(["hi", "and?", None]): next(_lines))
    monkeypatch.setattr(gradient.cli, "_stream_reply",
                        lambda *a, **k: order.append("reply") or {"text": "ok"})
    monkeypatch.setattr(gradient.cli, "_report", lambda stats: None)
    gradient.cli._converse(model, tokenizer, None, [], [], set(), True,
                           lambda: order.append("warmed"))
    assert order == ["warmed", "reply", "reply"]


# ----------------------------------------------------------------------------- models by name
def test_hub_names_through_the_cli(hub_cache, gpt2_dir, capsys):
    add_to_cache(hub_cache, "org/tiny-gpt2", gpt2_dir)
    add_to_cache(hub_cache, "openai-community/gpt2", gpt2_dir)
    outputs = []
    for name in ("org/tiny-gpt2", "gpt2", gpt2_dir):
        assert main(["generate", name, "Hi", "--max-new-tokens", "4", "--temperature", "0"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] == outputs[2]


# ----------------------------------------------------------------------------- errors
def test_unknown_model_offline(hub_cache, capsys):
    assert main(["generate", "org/not-cached", "Hi"]) == 1
    err = capsys.readouterr().err
    assert "gradient: error:" in err and "org/not-cached" in err and "HF_HUB_OFFLINE" in err


def test_directory_without_config(tmp_path, capsys, no_network):
    assert main(["generate", str(tmp_path), "Hi"]) == 1
    assert "no config.json" in capsys.readouterr().err


def test_gguf_file(tmp_path, capsys, no_network):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF")
    assert main(["chat", str(path)]) == 1
    assert "GGUF" in capsys.readouterr().err


@pytest.mark.parametrize("bad, says", [
    (["--top-p", "1.5"], "--top-p must be a number between 0 and 1, got 1.5"),
    (["--temperature", "-1"], "--temperature must be a number >= 0, got -1.0"),
    (["--max-new-tokens", "0"], "--max-new-tokens must be at least 1, got 0"),
    (["--max-new-tokens", "abc"], "--max-new-tokens: expected an integer, got 'abc'"),
    (["--top-k", "-2"], "--top-k must be an integer >= 0"),
    (["--repetition-penalty", "0"], "--repetition-penalty must be a number > 0"),
    (["--temperature", "hot"], "--temperature: expected a number, got 'hot'"),
    (["--dtype", "int8"], "invalid choice: 'int8'")])
def test_bad_arguments_exit_with_usage(bad, says, capsys, monkeypatch):
    """Checked before anything loads, by the same rules as the Python API's, in the words of
    the command's flags (no internal names)."""
    monkeypatch.setattr("gradient.hub.load", _must_not_load)
    with pytest.raises(SystemExit) as info:
        main(["generate", "gpt2", "Hi"] + bad)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: gradient generate" in err and says in err and "_" not in err.split("error:")[1]


def _must_not_load(*args, **kwargs):
    raise AssertionError("the model was loaded before the arguments were checked")


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"gradient {gradient.__version__}"


@pytest.mark.parametrize("where, says", [
    ("missing/out.gguf", "does not exist; create it first"),
    (".", "is a folder; give the path of the file to write"),
    ("read-only/out.gguf", "cannot write in"),
])
def test_export_gguf_checks_where_it_writes_before_loading(where, says, tmp_path, monkeypatch,
                                                            capsys):
    (tmp_path / "read-only").mkdir()
    real = gradient.cli.tempfile.NamedTemporaryFile

    def probe(*args, dir=None, **kwargs):   # root may write anywhere: the refusal is simulated
        if dir is not None and dir.endswith("read-only"):
            raise OSError(30, "Read-only file system")
        return real(*args, dir=dir, **kwargs)
    monkeypatch.setattr(gradient.cli.tempfile, "NamedTemporaryFile", probe)
    monkeypatch.setattr("gradient.hub.load", _must_not_load)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["export-gguf", "gpt2", where])
    err = capsys.readouterr().err
    assert info.value.code == 2 and says in err and "usage: gradient export-gguf" in err
    assert "Traceback" not in err
    assert "Read-only file system" in err or where != "read-only/out.gguf"


def test_chat_reads_a_message_of_several_lines(gpt2_dir, monkeypatch, capsys, no_network,
                                               conversations):
    rc, out, err = _run_chat(monkeypatch, capsys, ["chat", gpt2_dir, "--max-new-tokens", "2"],
                             '"""first line\n\nsecond line\n"""\n"""one line"""\n')
    assert rc == 0
    assert [c[-1]["content"] for c in conversations] == ["first line\n\nsecond line",
                                                         "one line"]


def test_generate_says_when_the_context_cut_the_reply(gpt2_dir, capsys, no_network):
    from gradient.tokenizers import Tokenizer

    tokenizer = Tokenizer.from_pretrained(gpt2_dir)
    prompt = "a"
    while len(tokenizer.encode(prompt + " dog")) < 125:  # the test GPT-2 has 128 positions
        prompt += " dog"
    assert main(["generate", gpt2_dir, prompt, "--max-new-tokens", "50", "--temperature", "0",
                 "--repetition-penalty", "1.3"]) == 0
    err = capsys.readouterr().err
    assert "stopped at the model's context of 128 tokens" in err


def test_compiling_kernels_is_announced(capsys):
    """A first run compiles numba kernels for tens of seconds: the command says so."""
    import numba
    kernel = numba.njit(lambda x: x + 1)        # not cached: compiled on its first call
    with gradient.cli._CompileNotice():
        assert kernel(1) == 2
    err = capsys.readouterr().err
    assert "compiling gradient's CPU kernels for this machine" in err and "compiled in" in err


def test_long_prompts_report_their_prefill(monkeypatch, capsys):
    """The CLI's progress line: tokens done of the total, and the time left."""
    progress = gradient.cli._PrefillProgress()
    progress(512, 2048)
    progress.last = 0.0
    progress(1024, 2048)
    progress(2048, 2048)       # done: nothing more
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("prefill 512/2048 tokens (25%), about ")
    assert lines[1].startswith("prefill 1024/2048 tokens (50%)") and lines[1].endswith(" left")


@pytest.mark.parametrize("argv", [
    ["generate", "/nonexistent/model", "hi"],
    ["chat", "/nonexistent/model"],
    ["export-gguf", "/nonexistent/model", "out.gguf"],
    ["export-gguf", "/nonexistent/model", "/nonexistent/folder/out.gguf"],
    ["generate", "MODEL", ""],
    ["generate", "MODEL", "hi", "--max-new-tokens", "abc"],
    ["generate", "MODEL", "hi", "--top-p", "2"],
    ["generate", "MODEL.gguf", "hi"],
    ["chat", "MODEL", "--seed", "x"],
    ["nonsense"],
    [],
])
def test_no_command_shows_a_traceback(argv, gpt2_dir, tmp_path):
    """Every subcommand, with bad paths and bad values: one line of error, a non-zero status,
    never a Python traceback (a real process, as a user runs it)."""
    (tmp_path / "MODEL.gguf").write_bytes(b"GGUF" + bytes(20))          # a truncated file
    argv = [a.replace("MODEL.gguf", str(tmp_path / "MODEL.gguf")).replace("MODEL", gpt2_dir)
            for a in argv]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "gradient", *argv], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "error" in proc.stderr, proc.stderr


# ----------------------------------------------------------------------------- a real process
def test_python_dash_m_gradient(gpt2_dir):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "gradient", "generate", gpt2_dir, "hello",
                           "--max-new-tokens", "5"], capture_output=True, text=True,
                          encoding="utf-8", env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("hello") and proc.stdout.endswith("\n")
    assert re.search(r"\d+ tokens in [\d.]+ s: [\d.]+ tokens/s", proc.stderr)


def test_chat_in_a_terminal_edits_lines_reads_long_pastes_and_keeps_history(gpt2_dir, tmp_path):
    """A real terminal (a pseudo-terminal): the left arrow moves the cursor (readline) instead
    of sending escape codes to the model, a line of 11 KB is read whole (a terminal's own line
    limit is 4 KB), and the history is saved under the cache directory."""
    import pty
    import select

    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               HF_HUB_OFFLINE="1", XDG_CACHE_HOME=str(tmp_path), TERM="xterm")
    pid, fd = pty.fork()
    if pid == 0:   # the child: the command, on the terminal
        os.execve(sys.executable, [sys.executable, "-m", "gradient", "chat", gpt2_dir,
                                   "--max-new-tokens", "1", "--temperature", "0"], env)
    seen = b""

    def read_until(marker: bytes, timeout: float = 120.0) -> None:
        nonlocal seen
        import time
        end = time.monotonic() + timeout
        while marker not in seen and time.monotonic() < end:
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    break
        assert marker in seen, seen[-2000:]

    try:
        read_until(b"> ")
        os.write(fd, b"helo\x1b[D\x1b[Dl\r")              # "helo", left, left, "l", Enter
        read_until(b"tokens/s")
        long_line = " ".join(f"w{i}" for i in range(2000)).encode()   # ~11 KB
        start = len(seen)
        for i in range(0, len(long_line), 1024):          # typed in pieces, as a paste arrives
            os.write(fd, long_line[i:i + 1024])
        os.write(fd, b"\r")
        read_until(b"fills the model's context")   # the test GPT-2 reads 128 tokens
        reply = seen[start:].decode("utf-8", "replace")
        prompt_tokens = int(re.search(r"the conversation \((\d+) tokens\)", reply).group(1))
        os.write(fd, b"/exit\r")
        status = os.waitpid(pid, 0)[1]
        pid = None
        assert os.WEXITSTATUS(status) == 0
    finally:
        if pid is not None:    # a step above failed: the command still waits for input
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    history = (tmp_path / "gradient" / "chat_history").read_text()
    assert "hello" in history and "helo" not in history.replace("hello", "")
    assert prompt_tokens > 2000          # every word of the long line reached the model


@pytest.mark.separate      # compiles every kernel of a decode in an empty cache: 45 s
def test_the_first_run_says_it_compiles_and_writes_the_text_of_every_later_run():
    """A fresh install: numba's cache empty, the first `gradient generate` of a GGUF model
    compiles the CPU kernels for seconds (the decode loop in a child process meanwhile). It
    says so on a terminal, counting the seconds, and its greedy text is the text of the next
    run, which loads the kernels from the cache and says nothing of compiling
    (bench/cold_start.py times both)."""
    from .quant.gguf_fixtures import smollm2_path
    path = smollm2_path()
    if path is None:
        pytest.skip("the SmolLM2 GGUF fixture is absent (.ci/run downloads it)")
    import importlib.util
    spec = importlib.util.spec_from_file_location("cold_start",
                                                  os.path.join(ROOT, "bench", "cold_start.py"))
    cold_start = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cold_start)
    with __import__("tempfile").TemporaryDirectory() as cache:
        cold = cold_start.run(path, 8, cache)
        cold_start.wait_for_background_compiles(cache)   # the decode loop, compiled by a child
        warm = cold_start.run(path, 8, cache)
        # a run short enough may leave the decode loop's compiling to the next one: its
        # child must have stopped writing into the cache before the directory goes
        cold_start.stop_background_compiles(cache)
    assert cold["returncode"] == warm["returncode"] == 0
    assert cold["text"] == warm["text"] and cold["text"].startswith(" Paris")
    assert cold["said_compiling"] and not warm["said_compiling"]
    ticks = set(re.findall(r"load them\) \.\.\. (\d+) s", cold["stderr"]))
    assert ticks                     # the seconds counted while compiling, not a silent stall


@pytest.mark.parametrize("argv, model_kwargs, draft_kwargs", [
    # a server computes as llama.cpp's: int8 activations in a GGUF file's products
    (["serve", "m.gguf", "--draft", "d.gguf"], {"activations": "int8"},
     {"activations": "int8"}),
    (["serve", "m.gguf", "--activations", "float32", "--draft", "d.gguf"],
     {"activations": "float32"}, {"activations": "int8"}),
    (["serve", "./checkpoint", "--draft", "./small"], {}, {}),
    # one sequence's decoding keeps the exact default
    (["generate", "m.gguf", "Hi"], {}, None),
    (["generate", "m.gguf", "Hi", "--activations", "int8"], {"activations": "int8"}, None)])
def test_serve_takes_int8_activations_for_a_gguf_file(argv, model_kwargs, draft_kwargs,
                                                      monkeypatch):
    import gradient.hub
    import gradient.serve
    import gradient.threads
    loaded = {}

    def load(name, **kwargs):
        loaded[name] = {k: v for k, v in kwargs.items() if k == "activations"}
        return object(), object()

    monkeypatch.setattr(gradient.hub, "load", load)
    monkeypatch.setattr(gradient.serve, "serve", lambda *a, **k: None)
    monkeypatch.setattr(gradient.threads, "keep_workers_spinning", lambda: False)
    monkeypatch.setattr(gradient.cli, "_generate", lambda *a: 0)
    assert main(argv) == 0
    assert loaded[argv[1]] == model_kwargs
    if draft_kwargs is not None:
        assert loaded[argv[argv.index("--draft") + 1]] == draft_kwargs
