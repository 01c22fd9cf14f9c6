"""Data-parallel training on 2 ranks against 1, for gradient over MPI and for PyTorch's
``torch.distributed`` (gloo) as the peer, on the same workload in the same run.

Run:  python bench/distributed.py [--steps 6] [--rounds 3] [--bucket-cap-mb 25]

The workload is ``bench/train_gpt.py``'s medium GPT (4 layers, width 256, context 128) with a
global batch of 16 sequences and AdamW; every rank uses 1 thread. One rank trains on the whole
batch; 2 ranks train on 8 sequences each with ``DistributedDataParallel``. For each library:

* ``scaling_efficiency``: step time on 1 rank / (2 x step time on 2 ranks); 1.0 is perfect;
* ``overlap`` (gradient only): the share of the all-reduce time hidden behind backward,
  1 - (exposed - skew) / (the same buckets' all-reduces alone, one after another, with nothing
  else running), where exposed is the time backward waited for communication after its last
  gradient (``DistributedDataParallel.comm_stats``) and skew the time a rank waits at a barrier
  after a backward without the all-reduces (under ``no_sync``): the ranks finish backward
  apart, and that wait is not communication.

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
BUCKET_MB = float(os.environ.get("BENCH_BUCKET_MB", 25))   # DDP's bucket size, both libraries


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
            model = torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=BUCKET_MB)
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
            model = gradient.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=BUCKET_MB)
        opt = gradient.optim.AdamW(model.parameters(), lr=1e-3)
        warm = {}
        result["step_ms"] = _time(model, opt, batches, gradient.tensor,
                                  lambda: warm.update(model.comm_stats() if size > 1 else {}))
        if size > 1:
            stats = model.comm_stats()
            result["exposed_comm_ms"] = ((stats["exposed_comm_s"] - warm["exposed_comm_s"])
                                         / (stats["syncs"] - warm["syncs"]) * 1e3)
            result["skew_ms"] = _time(model, opt, batches, gradient.tensor, no_sync=True)
            buckets = [gradient.zeros(sum(p.numel() for p in bucket))
                       for bucket in model._buckets]
            t0 = time.perf_counter()
            for _ in range(steps):
                for b in buckets:
                    dist.all_reduce(b)
            result["all_reduce_ms"] = (time.perf_counter() - t0) / steps * 1e3
    if rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def _time(model, opt, batches, tensor, after_warmup=lambda: None, no_sync=False) -> float:
    """The median step time over ``batches`` after the first; with ``no_sync``, the median wait
    at a barrier after each backward without gradient averaging."""
    times = []
    for i, (x, y) in enumerate(batches):
        xb, yb = tensor(x), tensor(y)
        t0 = time.perf_counter()
        if no_sync:
            with model.no_sync():
                model(xb, yb).backward()
            t0 = time.perf_counter()
            import gradient.distributed as dist
            dist.barrier()
            if i:
                times.append(time.perf_counter() - t0)
            continue
        loss = model(xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        if i:   # the first step warms up
            times.append(time.perf_counter() - t0)
        else:
            after_warmup()
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
    p.add_argument("--bucket-cap-mb", type=float, default=25,
                   help="DDP's bucket size in both libraries (PyTorch's default: 25)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ["BENCH_BUCKET_MB"] = str(args.bucket_cap_mb)   # for the workers
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
    overlap = [1 - max(0.0, r["exposed_comm_ms"] - r["skew_ms"]) / r["all_reduce_ms"]
               for r in runs[("gradient", 2)]]
    ratio = [a["step_ms"] / b["step_ms"] for a, b in zip(runs[("gradient", 2)], runs[("torch", 2)])]
    spread = lambda xs: [round(min(xs), 3), round(max(xs), 3)]   # noqa: E731
    print(json.dumps({
        "workload": "medium GPT, global batch 16, 1 thread per rank",
        "bucket_cap_mb": args.bucket_cap_mb,
        "step_ms": {f"{lib}_{n}_rank{'s' * (n > 1)}": round(v, 1) for (lib, n), v in med.items()},
        "scaling_efficiency": {lib: round(statistics.median(v), 3) for lib, v in efficiency.items()},
        "scaling_efficiency_spread": {lib: spread(v) for lib, v in efficiency.items()},
        "overlap_gradient": round(statistics.median(overlap), 3), "overlap_spread": spread(overlap),
        "all_reduce_ms_gradient": round(statistics.median(r["all_reduce_ms"]
                                                          for r in runs[("gradient", 2)]), 1),
        "exposed_comm_ms_gradient": round(statistics.median(r["exposed_comm_ms"]
                                                            for r in runs[("gradient", 2)]), 1),
        "skew_ms_gradient": round(statistics.median(r["skew_ms"] for r in runs[("gradient", 2)]), 1),
        "gradient_vs_torch_2_ranks": round(statistics.median(ratio), 3),
        "ratio_spread": spread(ratio)}))


if __name__ == "__main__":
    main()
