"""Quantized matrix-vector products (gradient.quant) against NumPy on the float matrix.

Run:  python bench/quant_matvec.py [--repeat 7] [--n 1] [--types Q4_1,Q8_0,Q4_K,Q6_K]

For each GGML type and weight shape (out_features x in_features), one JSON line with:
``quant_us`` -- :func:`quantized_matmul` for ``x`` of shape (n, in_features), reading the
quantized blocks; ``numpy_f32_us`` -- ``x @ W.T`` with NumPy (BLAS) on the already-dequantized
float32 matrix (what a model holding float weights does); ``ratio`` = quant / numpy (lower is
better); ``quant_GBps`` -- quantized bytes read per second by the kernel; ``numpy_GBps`` -- float32
bytes per second for NumPy; ``interleaved_int8_us`` / ``interleaved_f32_us`` -- the repacked
weight (:class:`~gradient.quant.InterleavedWeight`, what ``QuantizedLinear`` and GGUF models
multiply by) with int8 and with float32 activations, and ``interleaved_ratio`` = int8 / numpy.
Medians over ``--repeat`` rounds. The machines are shared and noisy:
compare ratios from one run. K-quants need in_features to be a multiple of 256 (shapes that are
not are skipped). The first run compiles the numba kernels (cached on disk afterwards).
"""

from __future__ import annotations

import argparse
import json

import numba
import numpy as np

from gradient.quant.ggml import BLOCK_SIZES, GGMLType
from gradient.quant.linear import quantize
from gradient.quant.interleaved import (INTERLEAVED_TYPES, InterleavedWeight,
                                        interleaved_matmul)
from gradient.quant.matmul import dequantize_rows, quantized_matmul

from common import time_per_call

SHAPES = ((576, 1536), (1536, 576), (4096, 4096))


def _random_blocks(rng, qtype: GGMLType, m: int, k: int) -> np.ndarray:
    """Random bytes with small finite float16 scales: the kernel's speed does not depend on the
    values, and this needs no quantizer for the k-quants."""
    if qtype in (GGMLType.F32, GGMLType.F16, GGMLType.BF16):
        return quantize(rng.standard_normal((m, k)).astype(np.float32), qtype)
    block, nbytes = BLOCK_SIZES[qtype]
    raw = rng.integers(0, 256, (m, k // block, nbytes), dtype=np.uint8)
    scale_at = {GGMLType.Q8_0: [0], GGMLType.Q4_0: [0], GGMLType.Q4_1: [0, 2],
                GGMLType.Q5_0: [0], GGMLType.Q5_1: [0, 2], GGMLType.Q2_K: [80, 82],
                GGMLType.Q3_K: [108], GGMLType.Q4_K: [0, 2], GGMLType.Q5_K: [0, 2],
                GGMLType.Q6_K: [208]}[qtype]
    for p in scale_at:
        f16 = (rng.standard_normal((m, k // block, 1)) * 0.01).astype(np.float16)
        raw[..., p:p + 2] = f16.view(np.uint8)
    return raw.reshape(m, -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--n", type=int, default=1, help="rows of x (1: one decoded token)")
    parser.add_argument("--types", default="Q4_1,Q8_0,Q4_K,Q6_K")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for name in args.types.split(","):
        qtype = GGMLType[name]
        block = BLOCK_SIZES[qtype][0]
        for m, k in SHAPES:
            if k % block:
                print(json.dumps({"type": name, "shape": [m, k], "skipped":
                                  f"in_features {k} is not a multiple of {block}"}))
                continue
            blocks = _random_blocks(rng, qtype, m, k)
            w = dequantize_rows(blocks, qtype, m, k)
            x = rng.standard_normal((args.n, k)).astype(np.float32)
            quant = time_per_call(lambda: quantized_matmul(x, blocks, qtype, m, k),
                                  repeat=args.repeat, min_seconds=0.1)
            # the repacked weight first: OpenBLAS's threads keep spinning for a while after a
            # BLAS call, and would take the second core from numba's threads
            inter = {}
            if qtype in INTERLEAVED_TYPES:
                packed = InterleavedWeight.from_blocks(blocks, qtype, m, k)
                for act, key in (("int8", "interleaved_int8_us"), ("float32", "interleaved_f32_us")):
                    inter[key] = round(time_per_call(lambda: interleaved_matmul(x, packed, act),
                                                     repeat=args.repeat, min_seconds=0.1), 1)
            ref = time_per_call(lambda: x @ w.T, repeat=args.repeat, min_seconds=0.1)
            line = {
                "type": name, "shape": [m, k], "n": args.n, "threads": numba.get_num_threads(),
                "quant_us": round(quant, 1), "numpy_f32_us": round(ref, 1),
                "ratio": round(quant / ref, 3),
                "quant_GBps": round(blocks.nbytes / quant / 1e3, 2),
                "numpy_GBps": round(w.nbytes / ref / 1e3, 2), **inter}
            if inter:
                line["interleaved_ratio"] = round(inter["interleaved_int8_us"] / ref, 3)
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
