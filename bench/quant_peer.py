"""gradient's GPTQ and AWQ against llm-compressor's, on SmolLM2-135M with the same calibration.

Run:  python -m venv /tmp/lc && /tmp/lc/bin/pip install torch==2.13.0 llmcompressor
      python bench/quant_peer.py --peer-python /tmp/lc/bin/python [--methods gptq,gptq-act]
                                 [--bits 4] [--group 64]

llm-compressor (vLLM's quantization library) pins its own transformers and compressed-tensors,
so it runs from a virtual environment of its own (``--peer-python``), in a child process.
Three stages, all on the same float32 weights and token ids:

1. here: SmolLM2-135M (the Q4_1 GGUF, dequantized to float32, as ``bench/quant_quality.py``)
   is written as a float32 Hugging Face checkpoint, with the calibration ids (128 x 256 tokens
   of standard-library docstrings, :func:`quant_quality.calibration_ids`) and the held-out ids
   (8 x 256 tokens of other docstrings, argparse's first, :func:`quant_quality.held_out_ids`);
2. in the peer's environment: ``llmcompressor.oneshot`` quantizes it (GPTQ: ``GPTQModifier``,
   ``--bits`` (4) in groups of ``--group`` (64) with zero points, dampening 0.01, blocks of
   128, ``actorder`` None or ``"static"``; AWQ: ``AWQModifier`` then round-to-nearest, which
   in llm-compressor 0.14 pins memory for an accelerator and stops on a machine without one)
   and saves it compressed
   (compressed-tensors' pack-quantized format);
3. here: gradient loads the peer's checkpoint (``gradient.models.from_pretrained``: the same
   dequantized weights as the peer's, tests/quant/test_formats.py) and measures its held-out
   perplexity as ``quant_quality`` measures gradient's own GPTQ/AWQ on the same ids.

Prints one JSON line per method: the peer's perplexity and mean KL from the float model,
gradient's, the ratio of the perplexities; for ``gptq`` also gradient's with
``static_groups=True`` (``_static``), the variant llm-compressor's GPTQ is: every group's grid
fitted from the weights before the pass, where the published algorithm (gradient's default)
fits a group's grid when the pass reaches it. (The perplexity of 512 held-out tokens moved by a
few percent with rounding differences as small as two kernels' summation orders, hence the
2,048 tokens; the KL is the steadier measure.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def peer_stage(work: str, method: str, bits: str, group: str) -> None:
    """Stage 2, in the peer's environment (torch, transformers, llmcompressor only)."""
    import torch
    from datasets import Dataset
    from llmcompressor import oneshot
    from transformers import AutoModelForCausalLM
    calib = np.load(os.path.join(work, "calib.npy"))
    data = Dataset.from_dict({"input_ids": [list(map(int, r)) for r in calib],
                              "attention_mask": [[1] * calib.shape[1]] * len(calib)})
    model = AutoModelForCausalLM.from_pretrained(os.path.join(work, "float"),
                                                 dtype=torch.float32)
    weights = {"num_bits": int(bits), "type": "int", "symmetric": False, "strategy": "group",
               "group_size": int(group)}
    groups = {"group_0": {"targets": ["Linear"], "weights": weights}}
    if method.startswith("gptq"):
        from llmcompressor.modifiers.gptq import GPTQModifier
        recipe = [GPTQModifier(config_groups=groups, ignore=["lm_head"], dampening_frac=0.01,
                               block_size=128,
                               actorder="static" if method == "gptq-act" else None)]
    else:
        from llmcompressor.modifiers.quantization import QuantizationModifier
        from llmcompressor.modifiers.transform.awq import AWQModifier
        recipe = [AWQModifier(duo_scaling=True),
                  QuantizationModifier(config_groups=groups, ignore=["lm_head"])]
    oneshot(model=model, dataset=data, recipe=recipe, max_seq_length=calib.shape[1],
            num_calibration_samples=len(calib))
    model.save_pretrained(os.path.join(work, method), save_compressed=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-python", help="the Python of an environment with llmcompressor")
    ap.add_argument("--methods", default="gptq,gptq-act",
                    help="gptq, gptq-act, awq (llm-compressor's AWQ asks for a GPU)")
    ap.add_argument("--calib", type=int, default=128)
    ap.add_argument("--calib-length", type=int, default=256)
    ap.add_argument("--held-out", type=int, default=8, help="held-out sequences")
    ap.add_argument("--tokens", type=int, default=256, help="tokens a held-out sequence")
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--group", type=int, default=64)
    ap.add_argument("--peer-stage", nargs=4, metavar=("WORK", "METHOD", "BITS", "GROUP"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer_stage:
        peer_stage(*args.peer_stage)
        return
    sys.path.insert(0, HERE)
    from common import ROOT, find_smollm2
    from quant_quality import calibration_ids, held_out_ids
    sys.path.insert(0, ROOT)
    import gradient
    from gradient.quant import quality
    path = find_smollm2(None)
    if path is None or not args.peer_python:
        print(json.dumps({"bench": "quant_peer", "skipped": "needs the SmolLM2 GGUF and "
                          "--peer-python (an environment with llmcompressor)"}))
        return
    model, tokenizer = gradient.hub.load(path, quantized=False)
    held_out = held_out_ids(tokenizer, args.held_out, args.tokens)
    calib = calibration_ids(tokenizer, args.calib, args.calib_length)
    reference = quality.logits(model, held_out)
    with tempfile.TemporaryDirectory() as work:
        model.save_pretrained(os.path.join(work, "float"))
        tokenizer.save_pretrained(os.path.join(work, "float"))    # oneshot asks for one
        np.save(os.path.join(work, "calib.npy"), np.stack(calib))
        batches = [np.stack(calib[i:i + 8]) for i in range(0, len(calib), 8)]
        for method in args.methods.split(","):
            t = time.perf_counter()
            subprocess.run([args.peer_python, os.path.abspath(__file__), "--peer-stage", work,
                            method, str(args.bits), str(args.group)], check=True,
                           stdout=sys.stderr)   # its log: not our lines
            peer_s = time.perf_counter() - t
            theirs = gradient.models.from_pretrained(os.path.join(work, method))
            peer = quality.evaluate(None, theirs, held_out, float_logits=reference)
            t = time.perf_counter()
            if method == "awq":
                ours = gradient.quant.awq(model, batches, args.bits, args.group, progress=False)
            else:
                ours = gradient.quant.gptq(model, batches, args.bits, args.group,
                                           act_order=method == "gptq-act", progress=False)
            ours_s = time.perf_counter() - t
            r = quality.evaluate(None, ours, held_out, float_logits=reference)
            line = {"bench": "quant_peer", "method": method, "bits": args.bits,
                    "group_size": args.group,
                    "calibration": f"{args.calib} x {args.calib_length} tokens",
                    "ppl_float": round(r["ppl_float"], 4),
                    "ppl_peer": round(peer["ppl_quant"], 4),
                    "ppl_gradient": round(r["ppl_quant"], 4),
                    "gradient_vs_peer": round(r["ppl_quant"] / peer["ppl_quant"], 4),
                    "kl_peer": float(f"{peer['kl_mean']:.4g}"),
                    "kl_gradient": float(f"{r['kl_mean']:.4g}"),
                    "peer_s": round(peer_s, 1), "gradient_s": round(ours_s, 1)}
            if method == "gptq":     # the peer's own variant: every grid fitted before the pass
                static = quality.evaluate(None, gradient.quant.gptq(
                    model, batches, args.bits, args.group, static_groups=True, progress=False),
                    held_out, float_logits=reference)
                line.update({"ppl_gradient_static": round(static["ppl_quant"], 4),
                             "static_vs_peer": round(static["ppl_quant"] / peer["ppl_quant"], 4),
                             "kl_gradient_static": float(f"{static['kl_mean']:.4g}")})
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
