"""The ``gradient`` command: generate text from, or chat with, a language model (or write it
as a GGUF file).

::

    gradient generate MODEL "prompt" [--max-new-tokens N] [--temperature T] [--top-k K]
                                      [--top-p P] [--seed S] [--dtype DTYPE] [--device cuda]
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
import time

from .errors import GradientError

__all__ = ["main", "build_parser"]

# Tokens that end an assistant turn in common chat formats (ChatML, Llama 3, Phi-3, Gemma).
# A chat stops on any of them that the vocabulary has, besides the model's eos token(s).
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")
DTYPES = ("float32", "bfloat16", "float16", "auto")
EXPORT_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K")


class CLIError(GradientError, ValueError):
    """A request the command cannot serve (a chat with a model that has no chat template ...)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gradient`` command (subcommands ``generate`` and ``chat``)."""
    parser = argparse.ArgumentParser(
        prog="gradient", description="Generate text with a language model, or chat with one.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(p: argparse.ArgumentParser, max_new_tokens: int) -> None:
        p.add_argument("model", metavar="MODEL",
                       help="hub repo id (org/name), short name (gpt2), directory or .gguf file")
        p.add_argument("--max-new-tokens", type=_positive_int, default=max_new_tokens,
                       metavar="N", help=f"most tokens to generate (default {max_new_tokens})")
        p.add_argument("--temperature", type=_non_negative_float, default=0.8, metavar="T",
                       help="sampling temperature; 0 decodes greedily (default 0.8)")
        p.add_argument("--top-k", type=_non_negative_int, default=40, metavar="K",
                       help="sample among the K most likely tokens; 0 for all (default 40)")
        p.add_argument("--top-p", type=_probability, default=0.95, metavar="P",
                       help="sample among the most likely tokens holding P of the probability "
                            "(default 0.95; 1 turns it off)")
        p.add_argument("--repetition-penalty", type=_positive_float, default=1.0, metavar="R",
                       help="divide the logits of tokens already seen by R (default 1: off)")
        p.add_argument("--seed", type=int, default=None, metavar="S",
                       help="random seed, for repeatable sampling")
        p.add_argument("--dtype", choices=DTYPES, default="float32",
                       help="weight dtype; 'auto' keeps the checkpoint's (default float32, "
                            "the fastest on CPU)")
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
    return parser


def main(argv=None) -> int:
    """Run the ``gradient`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit
    status: 0 on success, 1 when gradient reports an error, 2 for bad arguments.

    Example: ``main(["generate", "gpt2", "Hello", "--max-new-tokens", "5"])``
    """
    args = build_parser().parse_args(argv)
    for stream in (sys.stdout, sys.stderr):
        try:  # a model can emit any character: never die on a terminal that cannot show it
            stream.reconfigure(errors="replace")
        except (AttributeError, ValueError, OSError):
            pass
    try:
        if args.command == "export-gguf":
            return _export_gguf(args)
        model, tokenizer = _load(args)
        if args.command == "generate":
            return _generate(model, tokenizer, args)
        return _chat(model, tokenizer, args)
    except GradientError as e:
        print(f"gradient: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


# ----------------------------------------------------------------------------- commands
def _load(args):
    from .hub import load

    dtype = None if args.dtype == "auto" else args.dtype
    print(f"loading {args.model} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    model, tokenizer = load(args.model, dtype=dtype, revision=args.revision)
    if args.device != "cpu":
        model = model.to(args.device)   # a DeviceError says why when there is no such device
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
    ids = tokenizer.encode(args.prompt)
    if not ids:
        raise CLIError("generate: the prompt encodes to no tokens; give a non-empty prompt")
    if len(ids) >= _context_length(model):
        raise CLIError(f"generate: the prompt has {len(ids)} tokens, and {args.model} reads at "
                       f"most {_context_length(model)}: shorten the prompt")
    if not args.no_echo:
        sys.stdout.write(args.prompt)
        sys.stdout.flush()
    stats = _stream_reply(model, tokenizer, ids, args, stop_ids=_eos_ids(model, tokenizer))
    sys.stdout.write("\n")
    sys.stdout.flush()
    _report(stats)
    return 0


def _chat(model, tokenizer, args) -> int:
    from .tokenizers import TokenizerError

    try:
        tokenizer.get_chat_template()
    except TokenizerError:
        raise CLIError(f"{args.model} has no chat template (base models usually have none): "
                       "use `gradient generate` to continue a prompt, or an instruct model") \
            from None
    stop_ids = _eos_ids(model, tokenizer) | _end_of_turn_ids(tokenizer)
    system = [{"role": "system", "content": args.system}] if args.system else []
    messages = list(system)
    interactive = sys.stdin.isatty()
    if interactive:
        print("chat: /exit or Ctrl-D leaves, /reset starts over, Ctrl-C stops a reply",
              file=sys.stderr)
    while True:
        line = _read_line("> " if interactive else "")
        if line is None or line.strip() in ("/exit", "/quit"):
            break
        text = line.strip()
        if not text:
            continue
        if text == "/reset":
            messages = list(system)
            print("(conversation cleared)", file=sys.stderr)
            continue
        messages.append({"role": "user", "content": text})
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        if len(ids) >= _context_length(model):
            messages.pop()
            print(f"gradient: the conversation ({len(ids)} tokens) fills the model's context "
                  f"({_context_length(model)} tokens): /reset to start over", file=sys.stderr)
            continue
        try:
            stats = _stream_reply(model, tokenizer, ids, args, stop_ids)
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
def _stream_reply(model, tokenizer, prompt_ids, args, stop_ids) -> dict:
    """Generate after ``prompt_ids``, writing text to stdout as it comes; returns the reply's
    text and timings. A KeyboardInterrupt carries the statistics so far."""
    from .tokenizers import IncrementalDecoder

    # never run past the model's context (GPT-2 has no positions beyond n_positions)
    max_new_tokens = min(args.max_new_tokens, _context_length(model) - len(prompt_ids))
    decoder = IncrementalDecoder(tokenizer, skip_special_tokens=True)
    pieces, generated = [], 0
    start = time.perf_counter()
    first = None

    def emit(piece: str) -> None:
        if piece:
            pieces.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()

    try:
        for token_id in _token_stream(model, prompt_ids, args, stop_ids, max_new_tokens):
            if first is None:
                first = time.perf_counter()
            generated += 1
            token_id = int(token_id)
            if token_id in stop_ids:
                break
            emit(decoder.push(token_id))
        emit(decoder.flush())
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_stats(pieces, len(prompt_ids), generated, start, first))
    return _stats(pieces, len(prompt_ids), generated, start, first)


def _token_stream(model, prompt_ids, args, stop_ids, max_new_tokens):
    """The new token ids, one at a time, from gradient.generation's step-by-step generator."""
    from .generation import generate_tokens

    sampling = args.temperature > 0
    steps = generate_tokens(
        model, [list(prompt_ids)], max_new_tokens, do_sample=sampling,
        temperature=args.temperature if sampling else 1.0, top_k=args.top_k, top_p=args.top_p,
        repetition_penalty=args.repetition_penalty, eos_token_id=sorted(stop_ids),
        seed=args.seed)
    for (token_id,) in steps:  # one prompt: one id per step
        yield token_id


def _stats(pieces, prompt_tokens, generated, start, first) -> dict:
    end = time.perf_counter()
    return {"text": "".join(pieces), "prompt_tokens": prompt_tokens, "generated": generated,
            "seconds": end - start, "first_token_s": (first - start) if first else None,
            "decode_s": (end - first) if first else None}


def _report(stats: dict) -> None:
    n, seconds = stats["generated"], stats["seconds"]
    rate = n / seconds if seconds > 0 else float("inf")
    line = f"[{n} tokens in {seconds:.2f} s: {rate:.1f} tokens/s"
    if stats["first_token_s"] is not None and n > 1 and stats["decode_s"] > 0:
        line += (f"; prompt {stats['prompt_tokens']} tokens + first token in "
                 f"{stats['first_token_s']:.2f} s, then {(n - 1) / stats['decode_s']:.1f} "
                 "tokens/s")
    print(line + "]", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- helpers
def _eos_ids(model, tokenizer) -> set[int]:
    """End-of-sequence ids: the tokenizer's eos and generation_config.json's eos_token_id(s)."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    for source in (getattr(model, "generation_config", None) or {},
                   {"eos_token_id": getattr(model.config, "eos_token_id", None)}):
        eos = source.get("eos_token_id")
        ids.update(int(i) for i in (eos if isinstance(eos, (list, tuple)) else [eos])
                   if i is not None)
    return ids


def _end_of_turn_ids(tokenizer) -> set[int]:
    vocab = tokenizer.get_vocab()
    return {vocab[t] for t in END_OF_TURN_TOKENS if t in vocab}


def _context_length(model) -> int:
    config = model.config
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1 << 30


def _read_line(prompt: str) -> str | None:
    """One line of user input without its newline, or None at the end of the input."""
    if prompt:
        try:
            return input(prompt)  # line editing and history when a terminal is attached
        except EOFError:
            print(file=sys.stderr)
            return None
    line = sys.stdin.readline()
    return line.rstrip("\n") if line else None


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a probability in (0, 1], got {text}")
    return value


if __name__ == "__main__":  # pragma: no cover - `python -m gradient` goes through __main__.py
    raise SystemExit(main())
