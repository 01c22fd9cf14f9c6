"""Quantization quality on the character-level GPT of ``examples/char_gpt.py``, trained longer.

Run:  python examples/char_gpt.py --steps 3000 --n-layer 4 --n-embd 192 --n-head 6 \\
          --out-dir ~/.cache/gradient-bench/char-gpt            # ~10 minutes on 2 cores
      python bench/quant_char_gpt.py [--checkpoint PATH] [--calib 128] [--held-out 64]
                                     [--group 64]

The model is read from the example's checkpoint (its ``config`` and ``model``); its corpus and
vocabulary are the example's (the docstrings of a fixed list of standard-library modules).
Calibration: ``--calib`` windows of the model's context from the train split (every
``len / calib``-th position); held-out: ``--held-out`` consecutive windows of the val split.
Each scheme quantizes a copy of the model's blocks (the tied embedding and head stay float):
round-to-nearest with zero points at 4 and 3 bits in groups of ``--group`` (64: the width 192
is 3 x 64; or 32), GPTQ, GPTQ with activation order, AWQ, int8 weights with per-token int8
activations with and without SmoothQuant. Prints one JSON line per scheme: perplexity of the
float and the quantized model, the share of round-to-nearest's increase a method recovers,
mean KL.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

import numpy as np
from common import ROOT
from quant_quality import rounded

sys.path.insert(0, ROOT)

import gradient  # noqa: E402
from gradient import nn  # noqa: E402
from gradient.quant import awq, gptq, quality, smoothquant  # noqa: E402

DEFAULT = os.path.expanduser("~/.cache/gradient-bench/char-gpt/ckpt.safetensors")


def example():
    """examples/char_gpt.py as a module (its model and corpus)."""
    spec = importlib.util.spec_from_file_location("char_gpt",
                                                  os.path.join(ROOT, "examples", "char_gpt.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["char_gpt"] = module           # (its dataclasses look themselves up there)
    spec.loader.exec_module(module)
    return module


class Logits(nn.Module):
    """The example's GPT with the forward quality.evaluate calls: ids -> logits."""

    def __init__(self, gpt):
        super().__init__()
        self.gpt = gpt

    def forward(self, ids):
        return self.gpt(ids)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=DEFAULT)
    ap.add_argument("--calib", type=int, default=128)
    ap.add_argument("--held-out", type=int, default=64)
    ap.add_argument("--group", type=int, default=64, help="group size (a divisor of 192)")
    args = ap.parse_args()
    if not os.path.isfile(args.checkpoint):
        print(json.dumps({"bench": "quant_char_gpt", "skipped": f"no checkpoint at "
                          f"{args.checkpoint}: train one with the command in this docstring"}))
        return
    ex = example()
    state = gradient.load(args.checkpoint)
    cfg = ex.GPTConfig(**state["config"])
    gpt = ex.GPT(cfg)
    gpt.load_state_dict(state["model"])
    model = Logits(gpt).eval()
    data = ex.CharData(ex.stdlib_docstrings(), cfg.block_size)
    n = cfg.block_size
    train, val = data.split["train"], data.split["val"]
    stride = (len(train) - n) // args.calib
    calib = [train[i * stride:i * stride + n] for i in range(args.calib)]
    batches = [np.stack(calib[i:i + 16]) for i in range(0, len(calib), 16)]
    held_out = np.stack([val[i * n:(i + 1) * n] for i in range(args.held_out)])
    reference = quality.logits(model, held_out)
    common = {"bench": "quant_char_gpt", "params": sum(p.numel() for p in gpt.parameters()),
              "config": state["config"], "step": state["step"], "calibration":
              f"{args.calib} x {n} chars", "held_out": f"{args.held_out} x {n} chars"}
    ppl_rtn = {}
    g = args.group
    schemes = [(f"rtn-g{g}", 4, lambda: rounded(model, 4, g)),
               (f"gptq-g{g}", 4, lambda: gptq(model, batches, 4, g, progress=False)),
               (f"gptq-g{g}-act", 4, lambda: gptq(model, batches, 4, g, act_order=True,
                                                   progress=False)),
               (f"awq-g{g}", 4, lambda: awq(model, batches, 4, g, progress=False)),
               (f"rtn3-g{g}", 3, lambda: rounded(model, 3, g)),
               (f"gptq3-g{g}", 3, lambda: gptq(model, batches, 3, g, progress=False)),
               (f"awq3-g{g}", 3, lambda: awq(model, batches, 3, g, progress=False)),
               ("w8a8", 8, lambda: rounded(model, 8, None, "int8_per_token")),
               ("smoothquant", 8, lambda: smoothquant(model, batches, progress=False))]
    ppl_float = None
    for name, bits, make in schemes:
        t = time.perf_counter()
        q = make()
        seconds = time.perf_counter() - t
        r = quality.evaluate(None, q, held_out, float_logits=reference)
        ppl_float = r["ppl_float"]
        line = {**common, "scheme": name, "ppl_float": round(r["ppl_float"], 4),
                "ppl_quant": round(r["ppl_quant"], 4),
                "ppl_ratio": round(r["ppl_quant"] / r["ppl_float"], 4),
                "kl_mean": float(f"{r['kl_mean']:.4g}"), "quantize_s": round(seconds, 2)}
        if name.startswith("rtn"):
            ppl_rtn[bits] = r["ppl_quant"]
        elif bits in ppl_rtn and ppl_rtn[bits] > ppl_float:
            line["recovered"] = round((ppl_rtn[bits] - r["ppl_quant"])
                                      / (ppl_rtn[bits] - ppl_float), 3)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
