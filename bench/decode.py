"""KV-cache decoding of GPT-2 124M: gradient against transformers, same random weights, same prompt.

Run:  python bench/decode.py [--model gpt2|smollm2] [--prompt 128] [--new 128] [--threads 2] [--rounds 3]

The parent process writes a random-weight checkpoint (float32) with transformers'
``save_pretrained``: GPT-2 small by default, or with ``--model smollm2`` a LLaMA-family model of
SmolLM2-135M's shape (30 layers, width 576, grouped-query attention with 3 key/value heads,
tied head); each library then runs in a child process of its own (so peak memory is
its own) and does the same work: a prefill of the prompt that fills the KV cache and returns the
last position's logits (timed ``PREFILLS`` times per round, the fastest counting: one prefill
lasts a fraction of a second, and this shared machine's noise is not), then ``--new`` greedy
decode steps of one token. Both loops are written
out here so the two sides do exactly the same thing (transformers' ``generate`` adds its own
overhead on top; gradient's ``generate`` is the same loop as below).

It prints one JSON line: prefill and decode tokens/s for each library, their ratios
gradient / transformers (higher is better), peak RSS, whether the generated tokens agree, and
each figure as a fraction of the machine's ceiling: decode reads every weight once per token,
so it is bounded by memory bandwidth; prefill is bounded by float32 GEMM throughput. Both
ceilings are measured before every round (:func:`common.machine_ceilings`), since this shared
machine's bandwidth drifts by tens of percent within minutes: decode's fraction is of the
bandwidth of a 512 MiB copy, as MACHINE-FACTS measures it (and, stricter, of a 512 MiB
matrix-vector product's reads), prefill's of a 2048² matrix product. The line also gives the
fractions of MACHINE-FACTS' figures (``--bandwidth`` 22.7 GB/s, ``--gflops`` 210 GFLOP/s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
from common import machine_ceilings, peak_rss_mib, run_worker_round

PREFILLS = 4  # prefills timed per round (the KV cache is refilled each time); the fastest counts


# the two models: their label, and the transformers configuration (float32, random weights)
MODELS = {
    "gpt2": ("gpt2-124M random, float32", "gpt2", {}),      # GPT-2 small
    "smollm2": ("SmolLM2-135M-shaped llama random, float32", "llama",
                dict(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                     num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                     max_position_embeddings=2048, rope_theta=100000.0, rms_norm_eps=1e-5,
                     tie_word_embeddings=True)),
}


def make_checkpoint(name: str, directory: str) -> dict:
    """Write the random-weight checkpoint; returns the shapes the FLOP counts need."""
    import torch
    import transformers
    torch.manual_seed(0)
    _, model_type, overrides = MODELS[name]
    config = transformers.AutoConfig.for_model(model_type, **overrides)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(directory)
    embeddings = {id(m.weight) for m in model.modules()
                  if isinstance(m, torch.nn.Embedding)} | {id(model.get_output_embeddings().weight)}
    return {"vocab": config.vocab_size, "n_layer": config.num_hidden_layers,
            "attention_width": config.hidden_size,   # heads * head_dim in both models
            # the weights of the layers' products (embeddings, head, norms and biases aside)
            "matrix_weights": sum(p.numel() for p in model.parameters()
                                  if p.ndim == 2 and id(p) not in embeddings)}


def run_gradient(directory, prompt, new, rounds):
    import gradient
    model = gradient.models.from_pretrained(directory)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    timings = []
    for _ in range(rounds):
        with gradient.no_grad():
            prefill = []
            for _ in range(PREFILLS):  # the fastest of a few: prefill is short and noise is not
                cache = model.new_cache(1, prompt.shape[1] + new)
                t0 = time.perf_counter()
                logits = model(gradient.tensor(prompt), cache=cache, logits_to_keep=1).logits
                token = int(logits[0, -1].argmax().item())
                prefill.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
            tokens = [token]
            for _ in range(new - 1):
                logits = model(gradient.tensor([[token]]), cache=cache).logits
                token = int(logits[0, -1].argmax().item())
                tokens.append(token)
            t2 = time.perf_counter()
        timings.append((min(prefill), t2 - t1))
    return timings, tokens, weight_bytes


def run_transformers(directory, prompt, new, rounds):
    import torch
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(directory).eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    timings = []
    for _ in range(rounds):
        with torch.inference_mode():
            prefill = []
            for _ in range(PREFILLS):
                cache = transformers.DynamicCache(config=model.config)
                t0 = time.perf_counter()
                out = model(torch.tensor(prompt), past_key_values=cache, use_cache=True,
                            logits_to_keep=1)
                token = int(out.logits[0, -1].argmax())
                prefill.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
            tokens = [token]
            for _ in range(new - 1):
                out = model(torch.tensor([[token]]), past_key_values=cache, use_cache=True)
                token = int(out.logits[0, -1].argmax())
                tokens.append(token)
            t2 = time.perf_counter()
        timings.append((min(prefill), t2 - t1))
    return timings, tokens, weight_bytes


def worker(args) -> None:
    if args.worker == "transformers":
        import torch
        torch.set_num_threads(args.threads)
    prompt = np.random.default_rng(0).integers(0, args.vocab, (1, args.prompt))
    run = run_gradient if args.worker == "gradient" else run_transformers
    timings, tokens, weight_bytes = run(args.checkpoint, prompt, args.new, args.rounds)
    peak_mib = peak_rss_mib()
    print(json.dumps({"timings": timings, "tokens": tokens, "peak_rss_mib": peak_mib,
                      "weight_bytes": weight_bytes}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="gpt2",
                   help="GPT-2 small, or a LLaMA-family model of SmolLM2-135M's shape")
    p.add_argument("--prompt", type=int, default=128, help="prompt tokens")
    p.add_argument("--new", type=int, default=128, help="new tokens, greedy")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3,
                   help="runs per library, alternating; the best is reported (and the median)")
    p.add_argument("--bandwidth", type=float, default=22.7,
                   help="MACHINE-FACTS' memory bandwidth, GB/s (the measured one comes first)")
    p.add_argument("--gflops", type=float, default=210.0,
                   help="MACHINE-FACTS' float32 GEMM throughput, GFLOP/s (likewise)")
    p.add_argument("--worker", choices=["gradient", "transformers"], help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", help=argparse.SUPPRESS)
    p.add_argument("--vocab", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        shapes = make_checkpoint(args.model, directory)
        # The libraries take turns, one round each, so that a noisy spell on this shared
        # machine falls on both rather than on whichever ran then.
        ceilings = []
        for _ in range(args.rounds):
            ceilings.append(machine_ceilings(env))
            for lib in ("gradient", "transformers"):
                cmd = [sys.executable, __file__, "--worker", lib, "--checkpoint", directory,
                       "--prompt", str(args.prompt), "--new", str(args.new), "--threads",
                       str(args.threads), "--rounds", "1", "--vocab", str(shapes["vocab"])]
                run_worker_round(results, lib, cmd, env)

    n_layer, d, ctx = shapes["n_layer"], shapes["attention_width"], args.prompt
    # prefill FLOPs without the head (logits_to_keep=1): 2 * the layers' weights per token plus
    # attention (q @ k^T and attn @ v, causal: about half of 2 * 2 * T^2 * d per layer)
    prefill_flops = 2 * shapes["matrix_weights"] * ctx + 2 * n_layer * ctx * ctx * d
    copy_gbps, read_gbps, gemm_gflops = (statistics.median(c[k] for c in ceilings)
                                         for k in ("copy_gbps", "read_gbps", "gemm_gflops"))
    line = {"model": MODELS[args.model][0], "prompt": args.prompt, "new": args.new,
            "threads": args.threads, "measured_copy_gbps": round(copy_gbps, 1),
            "measured_read_gbps": round(read_gbps, 1), "measured_gemm_gflops": round(gemm_gflops, 1)}
    for lib, r in results.items():
        prefill = min(t[0] for t in r["timings"])
        decode = min(t[1] for t in r["timings"])
        decode_tps = (args.new - 1) / decode
        line[lib] = {
            "prefill_tok_s": round(args.prompt / prefill, 1),
            "decode_tok_s": round(decode_tps, 2),
            "decode_median_tok_s": round((args.new - 1) / statistics.median(
                t[1] for t in r["timings"]), 2),
            "peak_rss_mib": round(r["peak_rss_mib"]),
            # decode reads every weight once per token (the tied head is the embedding)
            "decode_fraction_of_bandwidth": round(
                decode_tps * r["weight_bytes"] / (copy_gbps * 1e9), 3),
            "decode_fraction_of_read": round(decode_tps * r["weight_bytes"] / (read_gbps * 1e9), 3),
            "prefill_fraction_of_gemm": round(prefill_flops / prefill / (gemm_gflops * 1e9), 3),
            "decode_fraction_of_facts_bandwidth": round(
                decode_tps * r["weight_bytes"] / (args.bandwidth * 1e9), 3),
            "prefill_fraction_of_facts_gemm": round(
                prefill_flops / prefill / (args.gflops * 1e9), 3),
        }
    line["decode_ratio"] = round(line["gradient"]["decode_tok_s"]
                                 / line["transformers"]["decode_tok_s"], 3)
    line["prefill_ratio"] = round(line["gradient"]["prefill_tok_s"]
                                  / line["transformers"]["prefill_tok_s"], 3)
    line["same_tokens"] = results["gradient"]["tokens"] == results["transformers"]["tokens"]
    print(json.dumps(line))


if __name__ == "__main__":
    main()
