"""Optimizer steps: gradient against PyTorch eager on the CPU, in one run.

Run:  python bench/optimizers.py [--rounds 7] [--only SGD AdamW]

Three sets of float32 parameters, each with a fixed gradient: 100 small ones (64 x 64 and 64),
the parameters of six GPT blocks of width 384 (72 tensors, 10.6M values), and one tensor of
10M values (the memory's speed). Per optimizer and set, each library's ``step()`` is timed in
blocks of 20 steps, the two libraries alternating block by block (``--rounds`` blocks each),
so that a noisy minute falls on both. Prints one JSON line per case: the median and the range
of milliseconds per step for each library and ``ratio`` = gradient / torch (lower is better;
1.0 is parity). Compare ratios from one run, not absolute times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

import gradient

CASES = [
    ("SGD", {}),
    ("SGD", dict(momentum=0.9)),
    ("SGD", dict(momentum=0.9, weight_decay=1e-4, nesterov=True)),
    ("Adam", {}),
    ("AdamW", dict(weight_decay=0.1)),
    ("RMSprop", {}),
    ("Adagrad", {}),
    ("Adamax", {}),
    ("NAdam", {}),
    ("RAdam", {}),
    ("Adadelta", {}),
    ("ASGD", {}),
]


def parameter_sets() -> dict:
    gpt = []
    for _ in range(6):
        gpt += [(384,), (384,), (1152, 384), (1152,), (384, 384), (384,), (384,), (384,),
                (1536, 384), (1536,), (384, 1536), (384,)]
    return {"100 small": [(64, 64), (64,)] * 50, "GPT 6x384": gpt, "10M": [(10_000_000,)]}


def make_optimizer(lib, name: str, options: dict, shapes, rng):
    params = []
    for shape in shapes:
        p = lib.nn.Parameter(lib.tensor(rng.standard_normal(shape).astype(np.float32)))
        p.grad = lib.tensor(rng.standard_normal(shape).astype(np.float32) * 1e-3)
        params.append(p)
    opt = getattr(lib.optim, name)(params, lr=1e-3, **options)
    for _ in range(3):     # the state made, kernels compiled
        opt.step()
    return opt


def block(opt, steps: int = 20) -> float:
    """Milliseconds per step over a block of ``steps`` steps."""
    start = time.perf_counter()
    for _ in range(steps):
        opt.step()
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="blocks of 20 steps per library")
    parser.add_argument("--only", nargs="*", help="optimizer names to run (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(gradient.get_num_threads())
    for name, options in CASES:
        if args.only and name not in args.only:
            continue
        for set_name, shapes in parameter_sets().items():
            ours = make_optimizer(gradient, name, options, shapes, np.random.default_rng(0))
            theirs = make_optimizer(torch, name, options, shapes, np.random.default_rng(0))
            times = {"gradient": [], "torch": []}
            for _ in range(args.rounds):
                times["gradient"].append(block(ours))
                times["torch"].append(block(theirs))
            med = {lib: statistics.median(t) for lib, t in times.items()}
            print(json.dumps({
                "optimizer": name, "options": options, "parameters": set_name,
                "threads": gradient.get_num_threads(),
                **{f"{lib}_ms": round(m, 3) for lib, m in med.items()},
                **{f"{lib}_range_ms": [round(min(t), 3), round(max(t), 3)]
                   for lib, t in times.items()},
                "ratio": round(med["gradient"] / med["torch"], 2)}), flush=True)


if __name__ == "__main__":
    main()
