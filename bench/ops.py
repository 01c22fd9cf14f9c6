"""Per-op overhead and a few large ops: gradient against PyTorch eager on the CPU, in one run.

Run:  python bench/ops.py [--repeat 7]

Prints one JSON line per case with both timings (median microseconds per call over several
repeats) and ``ratio`` = gradient / torch (lower is better; 1.0 is parity). These machines
are shared and noisy: compare ratios from one run, not absolute times.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import gradient
import gradient.nn.functional as GF
from common import time_per_call


def _cases():
    rng = np.random.default_rng(0)
    small = rng.standard_normal(16).astype(np.float32)
    m1, m2 = (rng.standard_normal((512, 512)).astype(np.float32) for _ in range(2))
    logits = rng.standard_normal((256, 1000)).astype(np.float32)
    big = rng.standard_normal(4_000_000).astype(np.float32)
    targets = rng.integers(0, 1000, 256)
    many_logits = rng.standard_normal((4096, 1000)).astype(np.float32)
    many_targets = rng.integers(0, 1000, 4096)
    # a decode step's attention: SmolLM2's 9 query heads on 3 key heads of 64, one query row
    # against a KV cache's first positions (views of buffers of 2,048)
    query_row = rng.standard_normal((1, 9, 1, 64)).astype(np.float32)
    cache_k, cache_v = (rng.standard_normal((1, 3, 2048, 64)).astype(np.float32)
                        for _ in range(2))
    # a server's batch step: 8 such rows at 100 positions each; gradient's in a float16 paged
    # cache's blocks of 64 (keys transposed, as PagedKVCache keeps them), torch's in a
    # (8, 3, 100, 64) cache of the batch, float32 (its float16 attention on the CPU was
    # slower: 215 us)
    batch_rows = rng.standard_normal((8, 9, 1, 64)).astype(np.float32)
    batch_k, batch_v = (rng.standard_normal((8, 3, 128, 64)).astype(np.float16)
                        for _ in range(2))
    pool_k = np.ascontiguousarray(batch_k.reshape(8, 3, 2, 64, 64).transpose(0, 2, 1, 4, 3)
                                  .reshape(16, 3, 64, 64))
    pool_v = np.ascontiguousarray(batch_v.reshape(8, 3, 2, 64, 64).transpose(0, 2, 1, 3, 4)
                                  .reshape(16, 3, 64, 64))
    tables = np.arange(16).reshape(8, 2)

    def lib_cases(lib, F):
        a = lib.tensor(small)
        b = lib.tensor(small)
        ga = lib.tensor(small, requires_grad=True)
        gb = lib.tensor(small, requires_grad=True)
        x = lib.tensor(m1, requires_grad=True)
        w = lib.tensor(m2, requires_grad=True)
        z = lib.tensor(logits, requires_grad=True)
        t = lib.tensor(targets)
        zz = lib.tensor(many_logits, requires_grad=True)
        tt = lib.tensor(many_targets)
        p, q = lib.tensor(small), lib.tensor(small)
        large, other = lib.tensor(big), lib.tensor(big)
        qr, ck, cv = lib.tensor(query_row), lib.tensor(cache_k), lib.tensor(cache_v)

        def add_16():
            return a + b

        def mul_sum_backward_16():
            ga.grad = gb.grad = None
            (ga * gb).sum().backward()

        def matmul_512_forward_backward():
            x.grad = w.grad = None
            (x @ w).sum().backward()

        def softmax_cross_entropy_step():
            z.grad = None
            F.cross_entropy(z, t).backward()

        def cross_entropy_of_many_rows():
            zz.grad = None
            F.cross_entropy(zz, tt).backward()

        def in_place_16():        # a training loop's bookkeeping: an average, a scaled step
            with lib.no_grad():
                p.mul_(0.99).add_(q, alpha=0.01)

        def in_place_4m():
            with lib.no_grad():
                large.mul_(0.99).add_(other)

        def blend_in_place_16():   # an Adam-like step's moments, a weight average
            with lib.no_grad():
                p.lerp_(q, 0.1).addcmul_(q, q, value=0.001)

        def lerp_4m():
            with lib.no_grad():
                large.lerp_(other, 0.001)

        if lib is gradient:
            from gradient.ops.causal_bias import PagedRows
            rows, keys, values = (PagedRows(np.full(8, 100), tables, 64),
                                  lib.tensor(pool_k), lib.tensor(pool_v))
        else:
            rows, keys, values = (None, lib.tensor(batch_k[:, :, :100].astype(np.float32)),
                                  lib.tensor(batch_v[:, :, :100].astype(np.float32)))
        batch_q = lib.tensor(batch_rows)

        def batch_decode_attention():
            with lib.no_grad():
                return F.scaled_dot_product_attention(batch_q, keys, values, attn_mask=rows,
                                                      enable_gqa=True)

        def decode_attention(positions):
            def step():
                with lib.no_grad():
                    return F.scaled_dot_product_attention(qr, ck[:, :, :positions],
                                                          cv[:, :, :positions], enable_gqa=True)
            return step

        return {"add_16": add_16, "mul_sum_backward_16": mul_sum_backward_16,
                "matmul_512_fwd_bwd": matmul_512_forward_backward,
                "cross_entropy_256x1000_fwd_bwd": softmax_cross_entropy_step,
                "cross_entropy_4096x1000_fwd_bwd": cross_entropy_of_many_rows,
                "in_place_mul_add_alpha_16": in_place_16, "in_place_mul_add_4m": in_place_4m,
                "in_place_lerp_addcmul_16": blend_in_place_16, "in_place_lerp_4m": lerp_4m,
                "decode_attention_176": decode_attention(176),
                "decode_attention_2048": decode_attention(2048),
                "batch_decode_attention_8x100": batch_decode_attention}

    return lib_cases(gradient, GF), lib_cases(torch, torch.nn.functional)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    ours, theirs = _cases()
    for name in ours:
        g = time_per_call(ours[name], repeat=args.repeat)
        t = time_per_call(theirs[name], repeat=args.repeat)
        print(json.dumps({"case": name, "gradient_us": round(g, 2), "torch_us": round(t, 2),
                          "ratio": round(g / t, 3), "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
