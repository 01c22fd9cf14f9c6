"""What the plugin protocol costs: a pipelined small op, a synchronising round trip, bulk
transfer, and ``examples/char_gpt.py``'s training step on the reference plugin against the
same step in-process.

Run:  python bench/plugin.py [--plugin reference] [--steps 5] [--rounds 5] [--threads N]

The reference plugin runs the backend contract's primitives with NumPy in another process, and
its fused kernels (softmax, the norms, a Linear's bias, the Adam step) in NumPy too. So that
the step-time ratio measures the protocol, not the math, the in-process step it is compared
with runs the same: a device ``"primitives"`` of the plain NumPy backend with the reference
plugin's NumPy kernels registered for it (the CPU device's numba kernels would make it
another computation; its step is reported too, as ``step_ms_cpu_fused``). The step is
timed in blocks of ``--steps`` steps per device, the devices alternating for ``--rounds``
rounds; the JSON line gives the median ratio and its spread (min, max over the rounds).

``--threads N`` gives NumPy's BLAS N threads on both sides (the default is the machine's
cores). In-process the step runs its products with every core; behind the protocol the
client's Python and the plugin's products run at once and share the cores: the plugin uses one
thread fewer while the client sends, all of them while it waits for a reply. With one thread
each, both sides do the same arithmetic the same way, and the ratio is what the protocol and
the second process cost. Each block starts after half a second of rest, so that no thread
pool of the block before it still polls for work on a core the next one needs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

import gradient
from gradient import kernels
from gradient.backends import get_backend, register_backend
from gradient.backends.numpy_backend import ArrayBackend
from gradient.backends.plugin import kernels as plugin_kernels
from gradient.backends.plugin import reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import char_gpt  # noqa: E402


def pipelined_op_us(b, n: int = 4000) -> float:
    """Microseconds per small elementwise op sent without waiting (the final sync included)."""
    x = b.from_numpy(np.ones(4, np.float32))
    b.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        x = b.binary("add", x, x)
    b.synchronize()
    return (time.perf_counter() - t0) / n * 1e6


def round_trip_us(b, n: int = 1000) -> float:
    """Microseconds per read of a small array back to the host (a full round trip)."""
    x = b.from_numpy(np.ones(4, np.float32))
    b.to_numpy(x)
    t0 = time.perf_counter()
    for _ in range(n):
        b.to_numpy(x)
    return (time.perf_counter() - t0) / n * 1e6


def transfer_gbs(b, megabytes: int) -> tuple[float, float]:
    """GB/s up (from_numpy, then a sync) and down (to_numpy) for one array of that size, best
    of three. Above glibc's mmap threshold as gradient sets it (64 MiB), every new array is
    fresh pages on both sides, and page faults bound the rate."""
    host = np.random.default_rng(0).random(megabytes * 2**20 // 4, dtype=np.float32)
    up, down = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        x = b.from_numpy(host)
        b.synchronize()
        up.append(host.nbytes / (time.perf_counter() - t0) / 1e9)
        t0 = time.perf_counter()
        back = b.to_numpy(x)
        down.append(host.nbytes / (time.perf_counter() - t0) / 1e9)
        assert np.array_equal(back, host)
        del x
    return max(up), max(down)


def train_steps(device: str, steps: int, state):
    model, opt, batches = state[device]
    t0 = time.perf_counter()
    for i in range(steps):
        x, y = batches[i % len(batches)]
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gradient.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    loss.item()        # the last step's result read back: the work is done
    return (time.perf_counter() - t0) / steps * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plugin", default="reference")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS threads in this process and in the plugin's")
    args = p.parse_args()
    if args.threads:
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)   # read by the plugin's NumPy
        gradient.set_num_threads(args.threads)
    device = f"plugin:{args.plugin}"
    b = get_backend(device)
    result = {"plugin": args.plugin, "threads": args.threads or os.cpu_count(),
              "pipelined_op_us": round(pipelined_op_us(b), 1),
              "round_trip_us": round(round_trip_us(b), 1)}
    for megabytes in (32, 256):
        up, down = transfer_gbs(b, megabytes)
        result[f"upload_gbs_{megabytes}MB"] = round(up, 2)
        result[f"download_gbs_{megabytes}MB"] = round(down, 2)

    gradient.manual_seed(0)
    data = char_gpt.CharData(char_gpt.stdlib_docstrings(200_000), 64)
    cfg = char_gpt.GPTConfig(vocab_size=data.vocab_size)
    rng = np.random.default_rng(0)
    batches = [data.batch("train", 16, rng) for _ in range(args.steps)]
    # in process, the same NumPy primitives and kernels as the reference plugin's
    register_backend("primitives", ArrayBackend(np, "primitives"))
    for name, compute in reference.KERNELS.items():
        kernels.register(name, "primitives", "numpy")(plugin_kernels.as_kernel(name, compute))
    devices = ("primitives", device, "cpu")
    state = {}
    for dev in devices:
        gradient.manual_seed(0)
        model = char_gpt.GPT(cfg).to(dev)
        model.train()
        state[dev] = (model, char_gpt.configure_optimizer(model, 3e-3, 0.1),
                      [(x.to(dev), y.to(dev)) for x, y in batches])
        train_steps(dev, 2, state)     # warm up
    times = {dev: [] for dev in devices}
    for _ in range(args.rounds):
        for dev in times:
            time.sleep(0.5)    # the last block's thread pools go idle (OpenBLAS's poll 0.1 s)
            times[dev].append(train_steps(dev, args.steps, state))
    ratios = [p / c for p, c in zip(times[device], times["primitives"])]
    result.update(step_ms_in_process=round(statistics.median(times["primitives"]), 2),
                  step_ms_plugin=round(statistics.median(times[device]), 2),
                  step_ms_cpu_fused=round(statistics.median(times["cpu"]), 2),
                  step_ratio=round(statistics.median(ratios), 3),
                  step_ratio_spread=[round(min(ratios), 3), round(max(ratios), 3)])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
