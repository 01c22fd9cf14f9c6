"""The ``gradient`` command: generate text from, or chat with, a language model (or write it
as a GGUF file).

::

    gradient generate MODEL "prompt" [--max-new-tokens N] [--temperature T] [--top-k K]
                                      [--top-p P] [--seed S] [--dtype DTYPE] [--device cuda]
                                      [--kv-cache float16] [--activations float32]
    gradient chat MODEL [--system "You are ..."] [same sampling options]
    gradient export-gguf MODEL OUT.gguf [--type Q8_0|Q4_0|Q4_K|...]

``MODEL`` is a hub repo id (``HuggingFaceTB/SmolLM2-135M-Instruct``), a short name (``gpt2``),
a local checkpoint directory, or a ``.gguf`` file; see :func:`gradient.hub.load`. Text streams
to stdout as it is generated; timings (tokens per second) go to stderr, so
``gradient generate gpt2 "Hi" > out.txt`` keeps only the text.

``--temperature 0`` decodes greedily (the most likely token every step); otherwise tokens are
sampled after temperature, top-k and top-p. ``--seed`` makes sampling repeatable.

``chat`` renders the conversation with the tokenizer's chat template, keeps the history, and
streams each reply. Type ``/exit`` (or end the input: Ctrl-D) to leave and ``/reset`` to start
a new conversation; Ctrl-C stops a reply that runs too long.

Example::

    $ gradient generate gpt2 "The meaning of life is" --max-new-tokens 20 --seed 0
    $ echo "What is 2+2?" | gradient chat HuggingFaceTB/SmolLM2-135M-Instruct
    $ python -m gradient generate ./my-checkpoint "Once upon a time" --temperature 0
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

from .errors import GenerationError, GradientError
from .serve.outbox import STREAM_INTERVAL
from .version import __version__

__all__ = ["main", "build_parser"]

DTYPES = ("float32", "bfloat16", "float16", "auto")
EXPORT_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K")
KV_CACHE_HELP = ("dtype of the keys and values kept while generating: float16 halves their "
                 "memory and speeds up long contexts, as llama.cpp's default cache (default: "
                 "float16 for a GGUF file with int8 activations, as llama.cpp; else the "
                 "weights' dtype)")

ACTIVATIONS_HELP = ("a .gguf file's quantized products: float32 computes exactly, as "
                    "transformers on the dequantized weights (default); int8 quantizes the "
                    "activations as llama.cpp does, its KV cache float16 too (prompts about "
                    "twice as fast; a BF16 file's products round them to bfloat16, as "
                    "llama.cpp's)")
SERVE_ACTIVATIONS_HELP = ("a .gguf file's quantized products: int8 quantizes the activations "
                          "as llama.cpp's server does, its KV cache float16 too (default: a "
                          "batch of 8 streams decodes about 1.6 times as many tokens a second "
                          "as with float32); float32 computes exactly, as transformers on the "
                          "dequantized weights")


class CLIError(GradientError, ValueError):
    """A request the command cannot serve (a chat with a model that has no chat template ...)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gradient`` command (subcommands ``generate`` and ``chat``)."""
    parser = argparse.ArgumentParser(
        prog="gradient", description="Generate text with a language model, or chat with one.")
    parser.add_argument("--version", action="version", version=f"gradient {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(p: argparse.ArgumentParser, max_new_tokens: int) -> None:
        p.add_argument("model", metavar="MODEL",
                       help="hub repo id (org/name), short name (gpt2), directory or .gguf file")
        p.add_argument("--max-new-tokens", type=_integer, default=max_new_tokens,
                       metavar="N", help=f"most tokens to generate (default {max_new_tokens})")
        p.add_argument("--temperature", type=_number, default=0.8, metavar="T",
                       help="sampling temperature; 0 decodes greedily (default 0.8)")
        p.add_argument("--top-k", type=_integer, default=40, metavar="K",
                       help="sample among the K most likely tokens; 0 for all (default 40)")
        p.add_argument("--top-p", type=_number, default=0.95, metavar="P",
                       help="sample among the most likely tokens holding P of the probability "
                            "(default 0.95; 1 turns it off)")
        p.add_argument("--repetition-penalty", type=_number, default=1.0, metavar="R",
                       help="divide the logits of tokens already seen by R (default 1: off)")
        p.add_argument("--seed", type=_integer, default=None, metavar="S",
                       help="random seed, for repeatable sampling")
        p.add_argument("--dtype", choices=DTYPES, default="float32",
                       help="weight dtype; 'auto' keeps the checkpoint's (default float32, "
                            "the fastest on CPU)")
        p.add_argument("--kv-cache", choices=("float32", "float16"), default=None,
                       help=KV_CACHE_HELP)
        p.add_argument("--activations", choices=("int8", "float32"), default=None,
                       help=ACTIVATIONS_HELP)
        p.add_argument("--revision", default=None,
                       help="hub branch, tag or commit (default main)")
        p.add_argument("--device", default="cpu",
                       help="where the model runs: cpu, cuda or cuda:N (default cpu; a GPU "
                            "needs pip install -e '.[cuda]' and --dtype float16 or float32)")

    gen = commands.add_parser("generate", help="continue a prompt, streaming the text",
                              description="Continue PROMPT with MODEL, streaming the text.")
    common(gen, max_new_tokens=64)
    gen.add_argument("prompt", metavar="PROMPT", help="the text to continue")
    gen.add_argument("--no-echo", action="store_true",
                     help="print only the generated text, not the prompt before it")

    chat = commands.add_parser("chat", help="talk with a chat model (reads lines from stdin)",
                               description="Chat with MODEL using its chat template. /exit or "
                                           "end of input leaves, /reset forgets the conversation.")
    common(chat, max_new_tokens=512)
    chat.add_argument("--system", default=None, metavar="TEXT",
                      help="a system message that opens the conversation")

    export = commands.add_parser("export-gguf", help="write a model as a GGUF file llama.cpp runs",
                                 description="Write MODEL (hub id, directory or .gguf) and its "
                                             "tokenizer to OUT.gguf, its matrices in TYPE.")
    export.add_argument("model", metavar="MODEL",
                        help="hub repo id (org/name), short name, directory or .gguf file")
    export.add_argument("output", metavar="OUT.gguf")
    export.add_argument("--type", default="Q8_0", type=str.upper, choices=EXPORT_TYPES,
                        help="GGML type of the matrices (default Q8_0)")
    export.add_argument("--revision", default=None, help="hub branch, tag or commit")
    serve = commands.add_parser("serve", help="serve a model over HTTP with OpenAI's API",
                                description="Serve MODEL at http://HOST:PORT/v1 for OpenAI "
                                            "clients (chat completions, completions, models).")
    serve.add_argument("model", metavar="MODEL",
                       help="hub repo id (org/name), short name (gpt2), directory or .gguf file")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                                                           "127.0.0.1: this machine only)")
    serve.add_argument("--port", type=_integer, default=8000, help="port (default 8000)")
    serve.add_argument("--max-queue", type=_integer, default=64, metavar="N",
                       help="requests that may wait; more get 503 (default 64)")
    serve.add_argument("--max-batch", type=_integer, default=8, metavar="N",
                       help="sequences decoded together, joining and leaving between steps "
                            "(continuous batching; default 8)")
    serve.add_argument("--dtype", choices=DTYPES, default="float32",
                       help="weight dtype (default float32)")
    serve.add_argument("--kv-cache", choices=("float32", "float16"), default=None,
                       help=KV_CACHE_HELP)
    serve.add_argument("--activations", choices=("int8", "float32"), default=None,
                       help=SERVE_ACTIVATIONS_HELP)
    serve.add_argument("--revision", default=None, help="hub branch, tag or commit")
    serve.add_argument("--device", default="cpu", help="where the model runs (default cpu)")
    serve.add_argument("--draft", default=None, metavar="MODEL",
                       help="a smaller model of the same vocabulary that drafts tokens for "
                            "greedy requests (speculative decoding: the same text, fewer "
                            "forwards of MODEL)")
    serve.add_argument("--api-key", default=os.environ.get("GRADIENT_API_KEY"), metavar="KEY",
                       help="requests to /v1/ must bring it (Authorization: Bearer KEY, the "
                            "openai client's api_key); default $GRADIENT_API_KEY, else none")
    serve.add_argument("--prompt-lookup", type=_integer, default=0, metavar="N",
                       help="draft up to N tokens from the text itself for greedy requests "
                            "(prompt lookup decoding: the same text; for replies that repeat "
                            "their input)")
    serve.add_argument("--stream-interval", type=_number, default=STREAM_INTERVAL,
                       metavar="SECONDS",
                       help="a stream's tokens after its first are written together every "
                            "SECONDS (fewer writes and client wake-ups on the cores the model "
                            f"runs on); 0 writes each as it comes (default {STREAM_INTERVAL})")
    serve.add_argument("--no-warmup", action="store_true",
                       help="listen at once instead of answering a short chat first (which "
                            "loads what a first request needs, as llama.cpp's server does)")
    run = commands.add_parser("run", help="run a training script on N processes (MPI)",
                              description="Run SCRIPT with ARGS on N processes under MPI "
                                          "(mpiexec), for gradient.distributed.")
    run.add_argument("-n", "--nproc", type=_integer, default=2, metavar="N",
                     help="how many processes (ranks) to start (default 2)")
    run.add_argument("script", metavar="SCRIPT")
    run.add_argument("script_args", nargs=argparse.REMAINDER, metavar="ARGS")
    for command in (gen, chat, export, serve, run):   # its own usage for its errors (_check_arguments)
        command.set_defaults(command_parser=command)
    return parser


def main(argv=None) -> int:
    """Run the ``gradient`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit
    status: 0 on success, 1 when gradient reports an error, 2 for bad arguments.

    Example: ``main(["generate", "gpt2", "Hello", "--max-new-tokens", "5"])``
    """
    args = build_parser().parse_args(argv)
    _check_arguments(args.command_parser, args)
    for stream in (sys.stdout, sys.stderr):
        try:  # a model can emit any character: never die on a terminal that cannot show it
            stream.reconfigure(errors="replace")
        except (AttributeError, ValueError, OSError):
            pass
    # a decode step's loop compiles in a child process while the first tokens flow (see
    # gradient.capture.background), for this command only (main may be called in a program)
    switch = "GRADIENT_COMPILE_IN_BACKGROUND"
    before = os.environ.get(switch)
    os.environ.setdefault(switch, "1")
    try:
        return _run(args)
    finally:
        compiling = sys.modules.get("gradient.backends.cpu_compile")
        if compiling is not None:   # kernels the run computed without compiling, for next time
            compiling.compile_noted_in_a_child()
        if before is None:
            os.environ.pop(switch, None)


def _run(args) -> int:
    """The command of the parsed ``args`` (see :func:`main`)."""
    try:
        if args.command == "run":
            from .distributed.launch import run
            return run(args.nproc, args.script, args.script_args)
        if args.command == "serve":
            from . import threads
            from .serve import model_name, serve
            threads.keep_workers_spinning()   # before a kernel starts numba's threads
            model, tokenizer = _load(args)
            draft = None
            if args.draft is not None:
                from .hub import load
                # a draft's numbers only choose the tokens proposed, never the text: int8
                draft, _ = load(args.draft, revision=args.revision,
                                **({"activations": "int8"} if _is_gguf(args.draft) else {}))
                draft = draft.to(args.device) if args.device != "cpu" else draft
            serve(model, tokenizer, model_name(args.model), args.host, args.port, args.max_queue,
                  draft, args.max_batch, args.prompt_lookup, args.api_key or None,
                  warm_up=not args.no_warmup, stream_interval=args.stream_interval)
            return 0
        if args.command == "export-gguf":
            return _export_gguf(args)
        with _CompileNotice():
            model, tokenizer = _load(args)
            _settle_notice()
            if args.command == "generate":
                return _generate(model, tokenizer, args)
            return _chat(model, tokenizer, args)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except (GradientError, OSError) as e:   # a file or folder the command cannot use, too
        print(f"gradient: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:   # noqa: BLE001  (a bug: one line, the traceback on request)
        if os.environ.get("GRADIENT_TRACEBACK"):
            raise
        print(f"gradient: error: {type(e).__name__}: {e}\n(this is a bug in gradient; "
              "GRADIENT_TRACEBACK=1 shows where it happened)", file=sys.stderr)
        return 1


def _check_arguments(parser: argparse.ArgumentParser, args) -> None:
    """Refuse values out of range before anything loads, as usage errors (exit status 2):
    the sampling settings through the same check as the Python API
    (:func:`gradient.generation.check_sampling`), the output path of ``export-gguf``."""
    if args.command == "serve":
        if not 0 < args.port < 65536 or args.max_queue < 1:
            parser.exit(2, f"{parser.format_usage()}gradient serve: error: --port must be "
                           "1-65535 and --max-queue at least 1\n")
        if not 0 <= args.stream_interval <= 1:
            parser.exit(2, f"{parser.format_usage()}gradient serve: error: --stream-interval "
                           f"must be 0-1 seconds, got {args.stream_interval}\n")
        return
    if args.command == "run":
        if args.nproc < 1:
            parser.exit(2, f"{parser.format_usage()}gradient run: error: -n must be at least 1, "
                           f"got {args.nproc}\n")
        return
    if args.command == "export-gguf":
        try:
            _check_output_path(args.output)
        except CLIError as e:
            parser.exit(2, f"{parser.format_usage()}gradient export-gguf: error: {e}\n")
        return
    from .generation.sampling import check_sampling

    flags = {"max_new_tokens": "--max-new-tokens", "temperature": "--temperature",
             "top_k": "--top-k", "top_p": "--top-p", "repetition_penalty": "--repetition-penalty"}
    try:
        if args.max_new_tokens < 1:
            raise GenerationError(f"max_new_tokens must be at least 1, got {args.max_new_tokens}")
        check_sampling(args.max_new_tokens, args.temperature > 0, args.temperature, args.top_k,
                       args.top_p, None, args.repetition_penalty)
    except GenerationError as e:
        message = str(e)
        for name, flag in flags.items():
            message = message.replace(name, flag)
        parser.exit(2, f"{parser.format_usage()}gradient {args.command}: error: {message}\n")


def _check_output_path(path: str) -> None:
    """Whether a file can be written at ``path``, found out before a model is loaded: not a
    folder, in a folder that exists and takes a new file."""
    if os.path.isdir(path):
        raise CLIError(f"{path} is a folder; give the path of the file to write, for example "
                       f"{os.path.join(path, 'model.gguf')}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"the folder {folder} does not exist; create it first (mkdir -p "
                       f"{folder}) or write somewhere else")
    try:   # a probe file: permissions, a read-only file system, a full disk's quota
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".gradient-write-test-"):
            pass
    except OSError as e:
        raise CLIError(f"cannot write in {folder}: {e.strerror or e}; choose another "
                       f"folder") from None


# ----------------------------------------------------------------------------- commands
def _is_gguf(model) -> bool:
    return str(model).lower().endswith(".gguf")


def _activations(model, args) -> dict:
    """The ``activations`` keyword loading ``model`` takes where it is a .gguf file:
    ``--activations`` where given; for ``serve``, int8, as llama.cpp's server computes: a
    batch's products of several rows are compute-bound, and int8 ones cost about half the
    float32 ones (SmolLM2 Q4_1, 8 streams: a step of 11 against 18 ms); the other commands
    decode one sequence, where float32 products run at memory speed too, and keep the exact
    default."""
    if not _is_gguf(model):
        return {}
    if args.activations:
        return {"activations": args.activations}
    return {"activations": "int8"} if args.command == "serve" else {}


def _load(args):
    from .hub import load

    dtype = None if args.dtype == "auto" else args.dtype
    print(f"loading {args.model} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    if args.activations and not _is_gguf(args.model):
        raise CLIError(f"--activations is for a .gguf file's quantized products; "
                       f"{args.model} is not one: leave it out")
    model, tokenizer = load(args.model, dtype=dtype, revision=args.revision,
                            kv_cache_dtype=args.kv_cache, **_activations(args.model, args))
    if args.device != "cpu":
        model = model.to(args.device)   # a DeviceError says why when there is no such device
    _settle_notice()
    print(f"loaded {type(model).__name__} in {time.perf_counter() - start:.1f} s"
          + ("" if args.device == "cpu" else f" onto {args.device}"), file=sys.stderr, flush=True)
    return model, tokenizer


def _export_gguf(args) -> int:
    from .hub import load
    from .models.gguf_writer import save_gguf

    print(f"loading {args.model} ...", file=sys.stderr, flush=True)
    model, tokenizer = load(args.model, revision=args.revision)
    start = time.perf_counter()
    try:
        save_gguf(model, args.output, args.type, tokenizer)
    except ImportError as e:          # no gguf package: not a GradientError, but expected
        print(f"gradient: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({args.type}, {os.path.getsize(args.output) / 2**20:.1f} MiB) "
          f"in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def _generate(model, tokenizer, args) -> int:
    from .generation.limits import context_length, stop_ids
    ids = tokenizer.encode(args.prompt)
    if not ids:
        raise CLIError("generate: the prompt encodes to no tokens; give a non-empty prompt")
    if len(ids) >= context_length(model):
        raise CLIError(f"generate: the prompt has {len(ids)} tokens, and {args.model} reads at "
                       f"most {context_length(model)}: shorten the prompt")
    if not args.no_echo:
        sys.stdout.write(args.prompt)
        sys.stdout.flush()
    stats = _stream_reply(model, tokenizer, ids, args, stop_ids(model, tokenizer))
    sys.stdout.write("\n")
    sys.stdout.flush()
    _report(stats)
    return 0


def _chat(model, tokenizer, args) -> int:
    from .generation.limits import stop_ids
    from .tokenizers import TokenizerError

    try:
        tokenizer.get_chat_template()
    except TokenizerError:
        raise CLIError(f"{args.model} has no chat template (base models usually have none): "
                       "use `gradient generate` to continue a prompt, or an instruct model") \
            from None
    stops = stop_ids(model, tokenizer, chat=True)
    system = [{"role": "system", "content": args.system}] if args.system else []
    messages = list(system)
    interactive = sys.stdin.isatty()
    history = _line_editing() if interactive else None
    if interactive:
        print('chat: /exit or Ctrl-D leaves, /reset starts over, Ctrl-C stops a reply; """ '
              'begins and ends a message of several lines', file=sys.stderr)
    warmed = _warm_up(model, tokenizer, stops) if interactive else None
    try:
        return _converse(model, tokenizer, args, messages, system, stops, interactive, warmed)
    finally:
        if history is not None:
            history()


def _warm_up(model, tokenizer, stops):
    """A short greedy chat of the model's own on a thread, while the user types the first
    message: what the first reply needs (kernels from numba's disk cache, the decode step
    captured and its loop loaded) is loaded then, as `gradient serve` warms up before it
    listens. Returns the wait for it: the first reply waits, so the model never runs on two
    threads at once. A warm-up that fails leaves the first reply to load what it needs."""
    from .generation import generate_tokens
    from .generation.warm_up import WARM_UP_TOKENS, warm_up_prompt

    def run():
        try:
            prompt = warm_up_prompt(tokenizer)
            for _ in generate_tokens(model, [prompt], WARM_UP_TOKENS, eos_token_id=sorted(stops)):
                pass
        except Exception:   # noqa: BLE001
            pass
    thread = threading.Thread(target=run, daemon=True, name="gradient chat warm-up")
    thread.start()
    return thread.join


def _converse(model, tokenizer, args, messages, system, stops, interactive,
              warmed=None) -> int:
    from .generation import PromptCache
    from .generation.limits import context_length
    conversation = PromptCache(model)   # turn N reads only what follows turn N-1
    while True:
        text = _read_message(interactive)
        if text is None or text.strip() in ("/exit", "/quit"):
            break
        text = text.strip()
        if not text:
            continue
        if text == "/reset":
            messages = list(system)
            conversation.clear()
            print("(conversation cleared)", file=sys.stderr)
            continue
        messages.append({"role": "user", "content": text})
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        if len(ids) >= context_length(model):
            messages.pop()
            print(f"gradient: the conversation ({len(ids)} tokens) fills the model's context "
                  f"({context_length(model)} tokens): /reset to start over", file=sys.stderr)
            continue
        try:
            if warmed is not None:   # (a Ctrl-C while it waits stops this reply only)
                warmed()
                warmed = None
            stats = _stream_reply(model, tokenizer, ids, args, stops, conversation)
        except KeyboardInterrupt as stop:  # stop this reply, keep the conversation
            stats = stop.args[0] if stop.args and isinstance(stop.args[0], dict) else None
            print("\n(interrupted)", file=sys.stderr)
            if stats is None:
                messages.pop()
                continue
        sys.stdout.write("\n")
        sys.stdout.flush()
        messages.append({"role": "assistant", "content": stats["text"]})
        _report(stats)
    return 0


# ----------------------------------------------------------------------------- generation
def _stream_reply(model, tokenizer, prompt_ids, args, stops, prompt_cache=None) -> dict:
    """Generate after ``prompt_ids``, writing text to stdout as it comes; returns the reply's
    text and timings. A KeyboardInterrupt carries the statistics so far."""
    from .generation.limits import context_length
    from .tokenizers import IncrementalDecoder

    # never run past the model's context (GPT-2 has no positions beyond n_positions)
    context = context_length(model)
    max_new_tokens = min(args.max_new_tokens, context - len(prompt_ids))
    decoder = IncrementalDecoder(tokenizer, skip_special_tokens=True)
    pieces, generated, stopped = [], 0, False
    start = time.perf_counter()
    first = None

    def emit(piece: str) -> None:
        if piece:
            pieces.append(piece)
            _settle_notice()
            sys.stdout.write(piece)
            sys.stdout.flush()

    try:
        for token_id in _token_stream(model, prompt_ids, args, stops, max_new_tokens,
                                      prompt_cache):
            if first is None:
                first = time.perf_counter()
            generated += 1
            token_id = int(token_id)
            if token_id in stops:
                stopped = True
                break
            emit(decoder.push(token_id))
        emit(decoder.flush())
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_stats(pieces, len(prompt_ids), generated, start, first))
    if not stopped and generated == max_new_tokens < args.max_new_tokens:
        print(f"\n(the reply stopped at the model's context of {context} tokens: the prompt "
              f"took {len(prompt_ids)} of them; shorten it"
              + (", or /reset to start over)" if args.command == "chat" else ")"),
              file=sys.stderr, end="")
    return _stats(pieces, len(prompt_ids), generated, start, first)


def _token_stream(model, prompt_ids, args, stop_ids, max_new_tokens, prompt_cache=None):
    """The new token ids, one at a time, from gradient.generation's step-by-step generator
    (a chat's ``prompt_cache`` holds the conversation so far: only the new part is read)."""
    from .generation import generate_tokens

    sampling = args.temperature > 0
    progress = _PrefillProgress()
    steps = generate_tokens(
        model, [list(prompt_ids)], max_new_tokens, do_sample=sampling,
        temperature=args.temperature if sampling else 1.0, top_k=args.top_k, top_p=args.top_p,
        repetition_penalty=args.repetition_penalty, eos_token_id=sorted(stop_ids),
        seed=args.seed, prefill_progress=progress, prompt_cache=prompt_cache)
    for (token_id,) in steps:  # one prompt: one id per step
        progress.close()
        yield token_id


class _PrefillProgress:
    """``prefill 1024/8150 tokens (12%), about 1 min 40 s left`` on stderr while a long
    prompt is read (rewritten in place on a terminal, a line every few seconds elsewhere)."""

    def __init__(self):
        self.start = time.perf_counter()
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        elapsed = now - self.start
        if done >= total or (now - self.last < 2.0 and not sys.stderr.isatty()):
            return
        self.last = now
        _settle_notice()
        left = elapsed / done * (total - done)
        line = (f"prefill {done}/{total} tokens ({100 * done // total}%), about "
                f"{_duration(left)} left")
        if sys.stderr.isatty():
            print(f"\r{line}\x1b[K", end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)
        self.shown = True

    def close(self) -> None:
        if self.shown and sys.stderr.isatty():
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)
        self.shown = False


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _object_mode_block(ev) -> bool:
    """A compile event of the object-mode block inside a cached kernel (NumPy called from
    compiled code, ``numba.objmode``): numba redoes it in every process, in milliseconds."""
    return any(str(a) == "ffi_forced_object" for a in ev.data.get("args", ()))


class _CompileNotice:
    """While numba compiles gradient's CPU kernels (the first run on a machine, or after an
    upgrade: later runs load them from numba's cache), a line on stderr says so and counts the
    seconds, so that a first run never looks hung.

    On a terminal the notice has a line of its own, rewritten once a second while a compile
    runs; :meth:`settle` ends that line before the command writes text (the generated text may
    be mid-line). Elsewhere it prints a line when compiling starts and one when the command
    goes on."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active = 0          # compiles running (numba compiles callees inside callers)
        self.started = None      # when the open notice began; None: no notice open
        self.stop = threading.Event()
        self.thread = None
        self.tty = sys.stderr.isatty()
        self.message = ("compiling gradient's CPU kernels for this machine (once: later runs "
                        "load them)")

    def __enter__(self):
        global _NOTICE
        try:
            from numba.core import event
        except ImportError:
            return self
        notice = self

        class Listener(event.Listener):
            def on_start(self, ev):
                if not _object_mode_block(ev):
                    notice._compiling(+1)

            def on_end(self, ev):
                if not _object_mode_block(ev):
                    notice._compiling(-1)
        self.event, self.listener = event, Listener()
        event.register("numba:compile", self.listener)
        self.thread = threading.Thread(target=self._tick, daemon=True)
        self.thread.start()
        _NOTICE = self
        return self

    def _compiling(self, change: int) -> None:
        with self.lock:
            self.active += change
            if self.started is None and self.active > 0:
                self.started = time.perf_counter()
                if self.tty:
                    print(f"\n{self.message} ...", end="", file=sys.stderr, flush=True)
                else:
                    print(self.message, file=sys.stderr, flush=True)

    def _tick(self) -> None:
        while not self.stop.wait(1.0):
            with self.lock:
                if self.tty and self.active > 0 and self.started is not None:
                    print(f"\r{self.message} ... {time.perf_counter() - self.started:.0f} s"
                          "\x1b[K", end="", file=sys.stderr, flush=True)

    def settle(self) -> None:
        """End an open notice (the command is about to write; nothing compiles meanwhile)."""
        with self.lock:
            if self.started is None or self.active > 0:
                return
            took = f"{time.perf_counter() - self.started:.0f} s"
            print(f"\r{self.message}: {took}\x1b[K" if self.tty else f"compiled in {took}",
                  file=sys.stderr, flush=True)
            self.started = None

    def __exit__(self, *exc):
        global _NOTICE
        if self.thread is not None:
            self.event.unregister("numba:compile", self.listener)
            self.stop.set()
            self.thread.join(timeout=2.0)
            self.active = 0
            self.settle()
            _NOTICE = None
        return False


#: The notice of the command running (see _CompileNotice), settled before text is written.
_NOTICE = None


def _settle_notice() -> None:
    if _NOTICE is not None:
        _NOTICE.settle()


def _stats(pieces, prompt_tokens, generated, start, first) -> dict:
    end = time.perf_counter()
    return {"text": "".join(pieces), "prompt_tokens": prompt_tokens, "generated": generated,
            "seconds": end - start, "first_token_s": (first - start) if first else None,
            "decode_s": (end - first) if first else None}


def _report(stats: dict) -> None:
    _settle_notice()
    n, seconds = stats["generated"], stats["seconds"]
    rate = n / seconds if seconds > 0 else float("inf")
    line = f"[{n} tokens in {seconds:.2f} s: {rate:.1f} tokens/s"
    if stats["first_token_s"] is not None and n > 1 and stats["decode_s"] > 0:
        line += (f"; prompt {stats['prompt_tokens']} tokens + first token in "
                 f"{stats['first_token_s']:.2f} s, then {(n - 1) / stats['decode_s']:.1f} "
                 "tokens/s")
    print(line + "]", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- helpers
def _read_line(prompt: str) -> str | None:
    """One line of user input without its newline, or None at the end of the input."""
    _settle_notice()
    if prompt:
        try:
            return input(prompt)  # readline's line editing and history (see _line_editing)
        except EOFError:
            print(file=sys.stderr)
            return None
    line = sys.stdin.readline()
    return line.rstrip("\n") if line else None


def _read_message(interactive: bool) -> str | None:
    """One chat message: a line, or the lines between two lines of triple quotes (a line that
    begins with \"\"\" opens the block, one that ends with it closes it: how a paste of several
    lines becomes one message); None at the end of the input."""
    line = _read_line("> " if interactive else "")
    if line is None or not line.lstrip().startswith('"""'):
        return line
    text = line.lstrip()[3:]
    if text.rstrip().endswith('"""'):           # \"\"\"one line\"\"\"
        return text.rstrip()[:-3]
    lines = [text] if text else []
    while True:
        line = _read_line("... " if interactive else "")
        if line is None:
            break
        if line.rstrip().endswith('"""'):
            lines.append(line.rstrip()[:-3])
            break
        lines.append(line)
    return "\n".join(lines)


def _line_editing():
    """Line editing and history for the chat prompt (GNU readline, or libedit on macOS): the
    arrow keys move and recall, long pastes are read whole (readline reads the terminal
    character by character, past the terminal's 4 KB line limit). The history is kept in
    ``$XDG_CACHE_HOME/gradient/chat_history`` (``~/.cache`` by default); returns the function
    that saves it, or None where Python has no readline (Windows)."""
    try:
        import readline
    except ImportError:
        return None
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(cache, "gradient", "chat_history")
    try:
        readline.read_history_file(path)
    except OSError:            # none yet, or unreadable: start empty
        pass
    readline.set_history_length(1000)

    def save() -> None:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            readline.write_history_file(path)
        except OSError:        # a read-only home: the history is not kept, nothing else lost
            pass
    return save


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


if __name__ == "__main__":  # pragma: no cover - `python -m gradient` goes through __main__.py
    raise SystemExit(main())
