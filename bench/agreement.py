"""How close gradient's logits on a GGUF file are to llama.cpp's and to transformers' on the
same weights: what the default (exact float32 products) and ``activations="int8"`` (llama.cpp's
numerics) compute.

Run:  python bench/agreement.py [--model PATH] [--new 64]

The model is SmolLM2-135M-Instruct Q4_1 (``--model``, else as ``bench/gguf_decode.py`` finds
it); the prompts are the eight of ``tests/fixtures/llama_cpp/smollm2_q4_1.json``, as llama.cpp
tokenized them. Six computations of each:

* gradient, ``gradient.hub.load(path)``: the matrices in their GGML blocks, exact float32
  products, a float32 KV cache (the default);
* gradient, ``activations="int8"``: the same blocks, activations quantized to int8 per 32
  values as llama.cpp's Q8_1, the KV cache in float16 (llama.cpp's numerics);
* llama.cpp (llama-cpp-python) with its defaults (float16 KV cache), with a float32 one, and
  with its defaults but the prompt evaluated one token at a time: llama.cpp against itself.
  Its int8 products make it chaotic at the last bit: the same computation in another order
  (a prompt's rows one by one) moves its logits as far as gradient's are from them;
* transformers 5 in float32 on the dequantized weights (gradient loads the file with
  ``quantized=False`` and writes it with ``save_pretrained``: the same numbers as
  ``gguf.quants.dequantize``).

For each pair: the cosine similarity and the largest difference of the prompt's last-position
logits (the worst prompt, and the mean cosine), and how many of ``--new`` greedy tokens (argmax
of the raw logits) agree before the first difference (the least over the prompts, and the
mean). One JSON line; the README quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np
from common import ROOT

sys.path.insert(0, ROOT)
from gguf_decode import find_model  # noqa: E402

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "llama_cpp", "smollm2_q4_1.json")


def gradient_runs(path, prompts, new, **load):
    import gradient
    model, _ = gradient.hub.load(path, **load)
    out = []
    for ids in prompts:
        with gradient.no_grad():
            cache = model.new_cache(1, len(ids) + new)
            logits = model(gradient.tensor([ids]), cache=cache, logits_to_keep=1).logits
            last = logits[0, -1].float().numpy().astype(np.float64)
            tokens = [int(last.argmax())]
            for _ in range(new - 1):
                step = model(gradient.tensor([[tokens[-1]]]), cache=cache).logits
                tokens.append(int(step[0, -1].argmax().item()))
        out.append((last, tokens))
    return out


def llama_cpp_runs(path, prompts, new, kv, one_by_one=False):
    import llama_cpp
    kind = {"float16": 1, "float32": 0}[kv]
    llm = llama_cpp.Llama(path, n_ctx=256, n_threads=2, seed=0, verbose=False,
                          type_k=kind, type_v=kind)
    n_vocab = llm.n_vocab()

    def logits():
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1),
                                     shape=(n_vocab,)).astype(np.float64)
    out = []
    for ids in prompts:
        llm.reset()
        for part in ([[t] for t in ids] if one_by_one else [ids]):
            llm.eval(part)
        last = logits()
        tokens = [int(last.argmax())]
        for _ in range(new - 1):
            llm.eval([tokens[-1]])
            tokens.append(int(logits().argmax()))
        out.append((last, tokens))
    return out


def transformers_runs(path, prompts, new):
    import torch
    import transformers

    import gradient
    model, _ = gradient.hub.load(path, quantized=False)
    with tempfile.TemporaryDirectory() as directory:
        model.save_pretrained(directory)
        del model
        hf = transformers.AutoModelForCausalLM.from_pretrained(directory,
                                                               dtype=torch.float32).eval()
    out = []
    for ids in prompts:
        with torch.no_grad():
            x = torch.tensor([ids])
            past, tokens, last = None, [], None
            for _ in range(new):
                result = hf(x, past_key_values=past, use_cache=True)
                step = result.logits[0, -1].double().numpy()
                if last is None:
                    last = step
                past = result.past_key_values
                tokens.append(int(step.argmax()))
                x = torch.tensor([[tokens[-1]]])
        out.append((last, tokens))
    return out


def compare(a, b) -> dict:
    cosines, gaps, agree = [], [], []
    for (la, ta), (lb, tb) in zip(a, b):
        cosines.append(float(la @ lb / (np.linalg.norm(la) * np.linalg.norm(lb))))
        gaps.append(float(np.abs(la - lb).max()))
        agree.append(next((i for i, (x, y) in enumerate(zip(ta, tb)) if x != y), len(ta)))
    return {"cosine_min": round(min(cosines), 6), "cosine_mean": round(float(np.mean(cosines)), 6),
            "max_abs_logit_diff": round(max(gaps), 3), "greedy_agree_min": min(agree),
            "greedy_agree_mean": round(float(np.mean(agree)), 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model")
    p.add_argument("--new", type=int, default=64, help="greedy tokens compared")
    args = p.parse_args()
    path = os.path.abspath(find_model(args.model))
    with open(FIXTURE, encoding="utf-8") as f:
        prompts = [p["ids"] for p in json.load(f)["prompts"]]
    runs = {"gradient_int8": gradient_runs(path, prompts, args.new, activations="int8"),
            "gradient_float32": gradient_runs(path, prompts, args.new, activations="float32"),
            "llama_cpp_f16_kv": llama_cpp_runs(path, prompts, args.new, "float16"),
            "llama_cpp_f32_kv": llama_cpp_runs(path, prompts, args.new, "float32"),
            "llama_cpp_one_by_one": llama_cpp_runs(path, prompts, args.new, "float16",
                                                   one_by_one=True),
            "transformers_f32": transformers_runs(path, prompts, args.new)}
    pairs = [("gradient_int8", "llama_cpp_f16_kv"), ("gradient_int8", "llama_cpp_f32_kv"),
             ("gradient_int8", "transformers_f32"), ("gradient_float32", "llama_cpp_f16_kv"),
             ("gradient_float32", "transformers_f32"), ("llama_cpp_f16_kv", "transformers_f32"),
             ("llama_cpp_f16_kv", "llama_cpp_f32_kv"),
             ("llama_cpp_f16_kv", "llama_cpp_one_by_one")]
    line = {"model": os.path.basename(path), "prompts": len(prompts), "new": args.new}
    for a, b in pairs:
        line[f"{a}~{b}"] = compare(runs[a], runs[b])
    print(json.dumps(line))


if __name__ == "__main__":
    main()
