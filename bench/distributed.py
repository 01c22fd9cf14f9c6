"""Data-parallel training on 2 ranks against 1, for gradient over MPI and for PyTorch's
``torch.distributed`` (gloo) as the peer, on the same workload in the same run.

Run:  python bench/distributed.py [--steps 6] [--rounds 3]

The workload is ``bench/train_gpt.py``'s medium GPT (4 layers, width 256, context 128) with a
global batch of 16 sequences and AdamW; every rank uses 1 thread. One rank trains on the whole
batch; 2 ranks train on 8 sequences each with ``DistributedDataParallel``. For each library:

* ``scaling_efficiency``: step time on 1 rank / (2 x step time on 2 ranks); 1.0 is perfect;
* ``overlap`` (gradient only): the share of the all-reduce time hidden behind backward,
  1 - (DDP step - step without the all-reduce, under ``no_sync``) / (the all-reduces alone).

and ``gradient_vs_torch_2_ranks``: gradient's 2-rank step time / torch's (lower is better). The
libraries take turns, a block of ``--steps`` steps per launch, for ``--rounds`` rounds; medians
and the spread over rounds are printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CFG = dict(n_layer=4, n_head=4, n_embd=256, block_size=128, vocab_size=65)
BATCH = 16


def worker(lib_name: str, steps: int) -> None:
    """One rank (launched by gradient run): time ``steps`` steps, rank 0 prints JSON."""
    sys.path.insert(0, HERE)
    from train_gpt import build_gpt
    rank, size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    rng = np.random.default_rng(0)
    shape = (BATCH, CFG["block_size"])
    batches = [(rng.integers(0, CFG["vocab_size"], shape), rng.integers(0, CFG["vocab_size"], shape))
               for _ in range(steps)]
    share = BATCH // size
    batches = [(x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share])
               for x, y in batches]
    result = {}
    if lib_name == "torch":
        import torch
        import torch.distributed as tdist
        torch.set_num_threads(1)
        torch.manual_seed(0)
        model = build_gpt(torch, **CFG)
        if size > 1:
            tdist.init_process_group("gloo", init_method="tcp://127.0.0.1:29533", rank=rank,
                                     world_size=size)
            model = torch.nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=False)
        tensor = torch.tensor
        result["step_ms"] = _time(model, opt, batches, tensor)
    else:
        import gradient
        import gradient.distributed as dist
        gradient.manual_seed(0)
        model = build_gpt(gradient, **CFG)
        if size > 1:
            dist.init_process_group("mpi")
            model = gradient.nn.parallel.DistributedDataParallel(model)
        opt = gradient.optim.AdamW(model.parameters(), lr=1e-3)
        result["step_ms"] = _time(model, opt, batches, gradient.tensor)
        if size > 1:
            with model.no_sync():
                result["no_sync_ms"] = _time(model, opt, batches, gradient.tensor)
            grads = gradient.zeros(sum(p.numel() for p in model.parameters()))
            t0 = time.perf_counter()
            for _ in range(steps):
                dist.all_reduce(grads)
            result["all_reduce_ms"] = (time.perf_counter() - t0) / steps * 1e3
    if rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def _time(model, opt, batches, tensor) -> float:
    times = []
    for i, (x, y) in enumerate(batches):
        xb, yb = tensor(x), tensor(y)
        t0 = time.perf_counter()
        loss = model(xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        if i:   # the first step warms up
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def launch(lib_name: str, n: int, steps: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "gradient", "run", "-n", str(n), __file__,
                          "--worker", lib_name, "--steps", str(steps)], capture_output=True,
                         text=True, env=env, timeout=900)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{lib_name} on {n} ranks failed:\n{out.stderr[-3000:]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker, args.steps)
        return
    runs = {(lib, n): [] for lib in ("gradient", "torch") for n in (1, 2)}
    for _ in range(args.rounds):
        for key in runs:
            runs[key].append(launch(*key, args.steps))
    med = {key: statistics.median(r["step_ms"] for r in rs) for key, rs in runs.items()}
    efficiency = {lib: [a["step_ms"] / (2 * b["step_ms"])
                        for a, b in zip(runs[(lib, 1)], runs[(lib, 2)])]
                  for lib in ("gradient", "torch")}
    overlap = [1 - (r["step_ms"] - r["no_sync_ms"]) / r["all_reduce_ms"]
               for r in runs[("gradient", 2)]]
    ratio = [a["step_ms"] / b["step_ms"] for a, b in zip(runs[("gradient", 2)], runs[("torch", 2)])]
    spread = lambda xs: [round(min(xs), 3), round(max(xs), 3)]   # noqa: E731
    print(json.dumps({
        "workload": "medium GPT, global batch 16, 1 thread per rank",
        "step_ms": {f"{lib}_{n}_rank{'s' * (n > 1)}": round(v, 1) for (lib, n), v in med.items()},
        "scaling_efficiency": {lib: round(statistics.median(v), 3) for lib, v in efficiency.items()},
        "scaling_efficiency_spread": {lib: spread(v) for lib, v in efficiency.items()},
        "overlap_gradient": round(statistics.median(overlap), 3), "overlap_spread": spread(overlap),
        "all_reduce_ms_gradient": round(statistics.median(r["all_reduce_ms"]
                                                          for r in runs[("gradient", 2)]), 1),
        "gradient_vs_torch_2_ranks": round(statistics.median(ratio), 3),
        "ratio_spread": spread(ratio)}))


if __name__ == "__main__":
    main()
