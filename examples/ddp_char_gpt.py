"""Data-parallel training of examples/char_gpt.py's model on several processes.

Run:  gradient run -n 2 examples/ddp_char_gpt.py [--steps 200] [--batch-size 16]

Each rank draws its own batches (its own random stream), the model is wrapped in
``DistributedDataParallel``, and every backward averages the gradients across the ranks, so
the ranks' replicas stay equal: N ranks train on N times the batch per step. Rank 0 prints
the loss, averaged over the ranks, and the time per step. Needs ``pip install -e
".[distributed]"`` (mpi4py and MPICH).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import gradient
import gradient.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import char_gpt  # noqa: E402  (the model and the data, written once)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=16, help="per rank")
    p.add_argument("--lr", type=float, default=3e-3)
    args = p.parse_args()

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    gradient.manual_seed(0)        # the same initial weights everywhere (DDP broadcasts anyway)
    data = char_gpt.CharData(char_gpt.stdlib_docstrings(300_000), 64)
    model = char_gpt.GPT(char_gpt.GPTConfig(vocab_size=data.vocab_size))
    model = gradient.nn.parallel.DistributedDataParallel(model)
    optimizer = char_gpt.configure_optimizer(model.module, args.lr, 0.1)
    rng = np.random.default_rng(1000 + rank)   # each rank its own batches
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = data.batch("train", args.batch_size, rng)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()                         # gradients averaged over the ranks here
        optimizer.step()
        if step % 50 == 0 or step == args.steps:
            mean = loss.detach().clone()
            dist.all_reduce(mean, op=dist.ReduceOp.AVG)
            if rank == 0:
                per_step = (time.perf_counter() - start) / step
                print(f"step {step}: loss {mean.item():.4f} (mean of {world} ranks), "
                      f"{per_step * 1e3:.0f} ms/step, {world * args.batch_size} sequences/step")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
