"""Quality and decode speed of gradient's quantization schemes on SmolLM2-135M-Instruct.

Run:  python bench/quant_quality.py [--model PATH] [--held-out 8] [--tokens 256] [--new 32]
                                    [--rounds 2]
                                    [--schemes int8,int4-g32,...] [--include-head]
                                    [--calib 128] [--calib-length 256]

The float model is ``--model`` (a GGUF file or a Hugging Face checkpoint directory), else
``$GRADIENT_SMOLLM2_GGUF``, else ``tests/fixtures/models/SmolLM2-135M-Instruct.Q4_1.gguf``, loaded
by ``gradient.hub.load`` (a GGUF file is dequantized to float32). Mind what that reference is:
the GGUF file's weights already lie on Q4_1's grid, so re-quantizing to Q4_1 reproduces them
exactly (KL 0), and every other scheme is measured against a 4-bit model, not the original
bfloat16 one; point ``--model`` at the original checkpoint for the usual figures. Each scheme quantizes a copy of it with ``gradient.quant.quantize``
(every layer projection; the head, tied to the embedding, stays float unless
``--include-head``), then:

* quality, against the float model, with ``gradient.quant.quality.evaluate`` on ``--held-out``
  sequences of ``--tokens`` tokens (8 x 256) of standard-library docstrings, ``argparse``'s
  module docstring first (prose and code, the same text on every machine with the same
  Python; :func:`held_out_ids`): perplexity of each model, mean and max
  ``KL(p_float || p_quant)`` per token (nats), top-1 agreement. ``--held-out 1 --tokens 512``
  is the first 512 tokens of argparse's docstring alone, the text of earlier figures;
* decode speed: greedy ``model.generate`` of ``--new`` tokens after a 16-token prompt, best of
  ``--rounds``, in tokens/s, and its ratio to the float model's in the same run (these machines
  are shared and noisy: compare ratios, not absolute figures);
* size: bytes of the quantized layers' weights against their float32 bytes, bits per weight.

* prefill: the best of two forwards over the first held-out sequence, in ms.

The ``gptq*``, ``awq*`` and ``smoothquant`` schemes quantize with ``gradient.quant.gptq``,
``awq`` and ``smoothquant`` from calibration text: ``--calib`` sequences of
``--calib-length`` tokens of the docstrings of other standard-library modules
(:data:`CALIBRATION_MODULES`; never argparse, the held-out text), in batches of 8; ``rtn3-g64``
is the same 3-bit grid rounded to nearest, for comparison (``int4-g64-zp`` is 4-bit's), and
``w8a8`` SmoothQuant's int8 weights and per-token int8 activations without the smoothing. The
first round of a new model's decode compiles its step: use ``--rounds 2`` or more for speed.

A scheme that does not fit the model (int4 with group 128: SmolLM2's hidden size 576 is not a
multiple of 128) prints a line with its ``error`` instead of figures. Q4_K writes the layers
whose ``in_features`` is not a multiple of 256 (all but down_proj here) as Q5_0, as
``llama-quantize`` does, and says so in ``note``.

Prints one JSON line per scheme (the first one is the float model).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numba
import numpy as np
from common import ROOT, SMOLLM2_NAME, find_smollm2

sys.path.insert(0, ROOT)

import gradient  # noqa: E402
from gradient.quant import quality, quantize  # noqa: E402
from gradient.quant.linear import QuantizedLinear  # noqa: E402
from gradient.quant.weight_only import WeightOnlyLinear  # noqa: E402

# name -> (scheme, options)
SCHEMES = {
    "int8": ("int8", {}),
    "int4-g32": ("int4", {"group_size": 32}),
    "int4-g32-zp": ("int4", {"group_size": 32, "zero_point": True}),
    "int4-g64": ("int4", {"group_size": 64}),
    "int4-g64-zp": ("int4", {"group_size": 64, "zero_point": True}),
    "int4-g128": ("int4", {"group_size": 128}),
    "int4-g192-zp": ("int4", {"group_size": 192, "zero_point": True}),
    "Q8_0": ("Q8_0", {}),
    "Q4_0": ("Q4_0", {}),
    "Q4_1": ("Q4_1", {}),
    "Q4_K": ("Q4_K", {}),
    # from calibration text (--calib): GPTQ, and the same grids rounded to nearest
    "gptq-g64": ("gptq", {"bits": 4, "group_size": 64}),
    "gptq-g64-act": ("gptq", {"bits": 4, "group_size": 64, "act_order": True}),
    "gptq-g32": ("gptq", {"bits": 4, "group_size": 32}),
    "gptq3-g64": ("gptq", {"bits": 3, "group_size": 64}),
    "gptq3-g32": ("gptq", {"bits": 3, "group_size": 32}),
    "rtn3-g64": ("rtn3", {"group_size": 64}),
    "rtn3-g32": ("rtn3", {"group_size": 32}),
    "awq-g64": ("awq", {"bits": 4, "group_size": 64}),
    "awq-g32": ("awq", {"bits": 4, "group_size": 32}),
    "awq3-g64": ("awq", {"bits": 3, "group_size": 64}),
    "awq3-g32": ("awq", {"bits": 3, "group_size": 32}),
    "smoothquant": ("smoothquant", {"alpha": 0.5}),
    "w8a8": ("w8a8", {}),
}

#: Standard-library modules whose docstrings make the calibration text (none is argparse, the
#: held-out text): prose about code, like the held-out text, but other prose.
CALIBRATION_MODULES = ("collections", "inspect", "pathlib", "subprocess", "threading",
                       "functools", "logging", "dataclasses", "enum", "datetime", "shutil",
                       "tarfile", "zipfile", "json", "email.message", "http.client",
                       "unittest.case", "asyncio.tasks", "contextlib", "tempfile", "string",
                       "textwrap", "random", "statistics", "fractions", "decimal", "csv")


#: Standard-library modules whose docstrings follow argparse's in the held-out text (none is
#: a calibration module).
HELD_OUT_MODULES = ("typing", "heapq", "bisect", "queue", "optparse", "difflib", "configparser",
                    "calendar", "copy", "weakref", "pprint", "tokenize", "pickle", "uuid",
                    "traceback", "warnings", "doctest", "urllib.parse", "smtplib", "timeit")


def _docstrings(modules) -> list:
    """The docstrings of ``modules`` and of the classes and functions each defines, in order."""
    import importlib
    import inspect
    texts = []
    for name in modules:
        module = importlib.import_module(name)
        for obj in [module] + [v for _, v in sorted(vars(module).items())
                               if getattr(v, "__module__", None) == name]:
            doc = inspect.getdoc(obj)
            if doc:
                texts.append(doc)
    return texts


def held_out_ids(tokenizer, sequences: int, length: int) -> np.ndarray:
    """(sequences, length) token ids of the held-out text: argparse's module docstring as it
    stands (prose and code), then the docstrings of :data:`HELD_OUT_MODULES`. One sequence of
    512 is the first 512 tokens of argparse's docstring, the text of earlier figures."""
    text = "\n\n".join([argparse.__doc__] + _docstrings(HELD_OUT_MODULES))
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    if ids.size < sequences * length:
        raise SystemExit(f"the held-out text has {ids.size} tokens here, fewer than --held-out "
                         f"{sequences} x --tokens {length}")
    return ids[:sequences * length].reshape(sequences, length)


def calibration_ids(tokenizer, sequences: int, length: int) -> list:
    """``sequences`` arrays of ``length`` token ids from the docstrings of
    :data:`CALIBRATION_MODULES` (modules, classes, functions), in order."""
    ids = np.asarray(tokenizer.encode("\n\n".join(_docstrings(CALIBRATION_MODULES))),
                     dtype=np.int64)
    if ids.size < sequences * length:
        raise SystemExit(f"the calibration text has {ids.size} tokens, fewer than --calib "
                         f"{sequences} x --calib-length {length}")
    return list(ids[:sequences * length].reshape(sequences, length))


def rounded(model, bits: int, group_size: int | None, activations: str = "float32"):
    """A copy of ``model`` with every linear layer but ``lm_head`` rounded to nearest on GPTQ's
    grid (8 bits: gradient's int8, per channel), for comparison with the calibrated methods:
    what GPTQ gives with nothing to compensate. ``activations="int8_per_token"``: SmoothQuant's
    W8A8 without the smoothing."""
    import copy
    from gradient.quant.gptq import round_to_nearest
    q = copy.deepcopy(model)
    for name, m in list(q.named_modules()):
        if type(m) is gradient.nn.Linear and name != "lm_head":
            w = m.weight.detach().numpy()
            packed = (gradient.quant.quantize_weight(w, bits=8) if bits == 8
                      else round_to_nearest(w, bits=bits, group_size=group_size))
            bias = None if m.bias is None else m.bias.detach().numpy()
            q.set_submodule(name, WeightOnlyLinear(packed, bias, activations=activations))
    return q


def decode_speed(model, prompt: np.ndarray, new: int, rounds: int) -> float:
    """Best tokens/s of greedy generation of ``new`` tokens (prefill excluded by timing a
    generation of 1 token and subtracting)."""
    ids = gradient.tensor(prompt[None])
    model.generate(ids, max_new_tokens=2)                 # warm up (numba, caches)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        model.generate(ids, max_new_tokens=1)
        t1 = time.perf_counter()
        model.generate(ids, max_new_tokens=new + 1, eos_token_id=[])
        t2 = time.perf_counter()
        best = min(best, (t2 - t1) - (t1 - t0))
    return new / best


def prefill_ms(model, ids: np.ndarray) -> float:
    """Best of two forwards over ``ids`` (one sequence), in milliseconds."""
    x = gradient.tensor(ids[None])
    best = float("inf")
    with gradient.no_grad():
        for _ in range(2):
            t = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - t)
    return 1e3 * best


def layer_bytes(model) -> tuple[int, int]:
    """(bytes of the quantized layers' weights, float32 bytes of the same weights)."""
    q = f = 0
    for m in model.modules():
        if isinstance(m, (WeightOnlyLinear, QuantizedLinear)):
            q += m.nbytes
            f += 4 * m.in_features * m.out_features
    return q, f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--tokens", type=int, default=256, help="tokens a held-out sequence")
    ap.add_argument("--held-out", type=int, default=8, help="held-out sequences")
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--schemes", default=",".join(SCHEMES),
                    help=f"comma-separated, from {', '.join(SCHEMES)}")
    ap.add_argument("--calib", type=int, default=128,
                    help="calibration sequences for GPTQ (of --calib-length tokens)")
    ap.add_argument("--calib-length", type=int, default=256)
    ap.add_argument("--include-head", action="store_true",
                    help="quantize lm_head too (it is tied to the embedding, which stays float)")
    args = ap.parse_args()
    path = find_smollm2(args.model)
    if path is None:
        print(json.dumps({"bench": "quant_quality", "skipped": f"{SMOLLM2_NAME} not found: pass "
                          f"--model or set GRADIENT_SMOLLM2_GGUF"}))
        return
    t = time.perf_counter()
    # a GGUF file loads quantized by default (its GGML types kept): the reference here is the
    # dequantized float32 model, which each scheme then quantizes
    kwargs = {"quantized": False} if path.lower().endswith(".gguf") else {}
    model, tokenizer = gradient.hub.load(path, **kwargs)
    load_s = time.perf_counter() - t
    ids = held_out_ids(tokenizer, args.held_out, args.tokens)
    prompt = ids[0, :16]
    common = {"bench": "quant_quality", "model": os.path.basename(path), "tokens": int(ids.size),
              "text": f"argparse's docstring and more, {args.held_out} x {args.tokens}",
              "python": platform.python_version(),
              "threads": numba.get_num_threads()}
    t = time.perf_counter()
    float_logits = quality.logits(model, ids)
    float_eval_s = time.perf_counter() - t
    float_tps = decode_speed(model, prompt, args.new, args.rounds)
    ref = quality.evaluate(None, model, ids, float_logits=float_logits)   # the float ppl
    print(json.dumps({**common, "scheme": "float32", "ppl": round(ref["ppl_float"], 4),
                      "decode_tok_s": round(float_tps, 2),
                      "prefill_ms": round(prefill_ms(model, ids[0]), 1),
                      "load_s": round(load_s, 2),
                      "eval_s": round(float_eval_s, 2)}), flush=True)
    skip = () if args.include_head else ("lm_head",)
    calib = None
    for name in args.schemes.split(","):
        scheme, options = SCHEMES[name]
        line = {**common, "scheme": name}
        t = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if scheme in ("gptq", "awq", "smoothquant"):
                    if calib is None:
                        calib = calibration_ids(tokenizer, args.calib, args.calib_length)
                    batches = [np.stack(calib[i:i + 8]) for i in range(0, len(calib), 8)]
                    method = getattr(gradient.quant, scheme)
                    q = method(model, batches, skip=skip, **options)
                    line["calibration"] = f"{len(calib)} x {args.calib_length} tokens"
                elif scheme == "w8a8":
                    q = rounded(model, 8, None, "int8_per_token")
                elif scheme == "rtn3":
                    q = rounded(model, 3, **options)
                else:
                    q = quantize(model, scheme, skip=skip, **options)
        except ValueError as e:                 # ShapeError: the scheme does not fit a layer
            print(json.dumps({**line, "error": str(e)}), flush=True)
            continue
        line["quantize_s"] = round(time.perf_counter() - t, 2)
        if caught:
            line["note"] = str(caught[0].message)
        r = quality.evaluate(None, q, ids, float_logits=float_logits)
        tps = decode_speed(q, prompt, args.new, args.rounds)
        qb, fb = layer_bytes(q)
        n_weights = fb // 4
        line.update({"ppl_float": round(r["ppl_float"], 4), "ppl_quant": round(r["ppl_quant"], 4),
                     "ppl_ratio": round(r["ppl_quant"] / r["ppl_float"], 4),
                     "kl_mean": float(f"{r['kl_mean']:.4g}"), "kl_max": round(r["kl_max"], 4),
                     "top1_agreement": round(r["top1_agreement"], 4),
                     "decode_tok_s": round(tps, 2), "decode_vs_float": round(tps / float_tps, 3),
                     "prefill_ms": round(prefill_ms(q, ids[0]), 1),
                     "layer_MiB": round(qb / 2**20, 2), "float_layer_MiB": round(fb / 2**20, 2),
                     "bits_per_weight": round(8 * qb / max(1, n_weights), 3)})
        print(json.dumps(line), flush=True)
        del q


if __name__ == "__main__":
    main()
