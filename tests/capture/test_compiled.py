"""gradient.capture.compiled: a captured step's identical blocks run as one numba loop over the
layers, with the Python replay's bits; Python in a block (a hook) runs between compiled
segments; what cannot be compiled, or fails, replays in Python."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradient
from gradient import nn
from gradient.backends import kernel_cache
from gradient.capture import CapturedStep, background
from gradient.generation import KVCache

pytest.importorskip("numba")

ROOT = Path(__file__).resolve().parents[2]


class Block(nn.Module):
    """A pre-norm residual block that writes a KV cache and attends over it, as a decoder
    layer does (RMSNorm, q/k/v projections, decode attention, output projection)."""

    def __init__(self, layer, width=16):
        super().__init__()
        self.layer = layer
        self.norm = nn.RMSNorm(width)
        self.q, self.k, self.v = (nn.Linear(width, width) for _ in range(3))
        self.out = nn.Linear(width, width, bias=False)

    def forward(self, x, cache):
        h = self.norm(x)
        q, k, v = (proj(h).reshape(1, 1, 2, 8).transpose(1, 2)
                   for proj in (self.q, self.k, self.v))
        k, v = cache.update(self.layer, k, v)
        y = nn.functional.scaled_dot_product_attention(q, k, v)
        return x + self.out(y.transpose(1, 2).reshape(1, 1, 16)) * 0.5


class Stack(nn.Module):
    def __init__(self, n=3):
        super().__init__()
        self.blocks = nn.ModuleList(Block(i) for i in range(n))

    def forward(self, x, cache):
        for block in self.blocks:
            x = block(x, cache)
        return x


def run(stack, step, steps=6, seed=0, dtype=gradient.float32):
    """Outputs of ``steps`` one-token steps through ``step`` on a fresh cache (of ``dtype``),
    and the trace."""
    xs = np.random.default_rng(seed).normal(size=(steps, 1, 1, 16)).astype(np.float32)
    cache = KVCache(len(stack.blocks), 1, 2, 8, steps, dtype=dtype)
    outs = []
    with gradient.no_grad(), gradient.kernels.trace() as t:
        for x in xs:
            outs.append(step(gradient.tensor(x), cache).numpy().copy())
            cache.advance(1)
    return np.stack(outs), t


def plan_of(step):
    return next(iter(step._entries.values()))


@pytest.fixture
def stack():
    gradient.manual_seed(0)
    return Stack().eval()


def test_the_blocks_run_as_one_compiled_loop_with_the_module_graph_bits(stack):
    step = CapturedStep(stack.forward, stack)
    got, trace = run(stack, step)
    expected, _ = run(stack, stack)
    np.testing.assert_array_equal(got, expected)
    loop = plan_of(step).loop
    assert (loop.blocks, loop.segments) == (3, 1) and "def loop(" in loop.source
    # named by the kernels' sources too: an edited kernel it links in makes another file
    assert f"kernels:{kernel_cache.tree_stamp()[:20]}" in loop.source
    assert trace.calls("captured_step") == {"capture": 2, "replay": 4}
    # the kernels inside the loop are counted as the calls they stand for
    assert trace.counts[("rms_norm", "numba")] == 6 * 3
    assert trace.counts[("decode_attention", "numba")] == 6 * 3


def test_numbers_reach_the_loops_kernels_as_int64s_not_literals(stack):
    """A number in a loop's source (a shape, a flag) reaches its kernels as an int64, a tuple
    of them or a bool, not as numba's literal of that value, for which each kernel would be
    compiled again: once for every shape of a model and every batch size."""
    import numba

    from gradient.backends.cpu_lowered import unliteral

    @numba.njit
    def kernel(n, shape, flag):
        return n + shape[0] * shape[1] + flag

    @numba.njit
    def loop():
        return (kernel(unliteral(5), unliteral((2, 3)), unliteral(True))
                + kernel(unliteral(7), unliteral((4, 5)), unliteral(False)))

    assert loop() == (5 + 6 + 1) + (7 + 20 + 0)
    assert kernel.signatures == [(numba.int64, numba.types.UniTuple(numba.int64, 2),
                                  numba.boolean)]
    step = CapturedStep(stack.forward, stack)
    run(stack, step, steps=3)
    assert "unliteral((1, 1, 2, 8))" in plan_of(step).loop.source    # the blocks' reshape


def test_a_float16_cache_is_written_and_read_inside_the_loop(stack):
    """The loop writes a float16 cache as its uint16 bits (rounded as NumPy's assignment
    rounds) and the attention widens them: the module graph's bits."""
    step = CapturedStep(stack.forward, stack)
    got, trace = run(stack, step, dtype=gradient.float16)
    expected, _ = run(stack, stack, dtype=gradient.float16)
    np.testing.assert_array_equal(got, expected)
    assert plan_of(step).loop.blocks == 3
    assert trace.counts[("decode_attention", "numba")] == 6 * 3
    assert not np.array_equal(got, run(stack, stack)[0])    # float16, not float32, was kept


def test_a_loop_compiled_by_a_child_process_takes_over_once_ready(stack, monkeypatch, tmp_path):
    """With the background switch on (the CLI's), a loop whose machine code is not cached yet
    is compiled by a child process: the steps replay in Python meanwhile, then take the loop
    once it is loaded from the cache, with the module graph's bits throughout."""
    monkeypatch.setenv("GRADIENT_COMPILE_IN_BACKGROUND", "1")
    monkeypatch.setenv("GRADIENT_CACHE_DIR", str(tmp_path))      # a loop module never compiled
    for name in [name for name in sys.modules if name.startswith("gradient_compiled_step_")]:
        monkeypatch.delitem(sys.modules, name)                       # (nor imported)
    step = CapturedStep(stack.forward, stack)
    xs = np.random.default_rng(0).normal(size=(8, 1, 1, 16)).astype(np.float32)
    cache = KVCache(3, 1, 2, 8, 8)
    outs = []
    with gradient.no_grad():
        for t, x in enumerate(xs):
            if t == 4:
                pending = plan_of(step).loop.pending
                assert pending is not None and pending._function is None   # Python so far
                assert background.compiling() >= (pending._child.poll() is None)
                assert background.wait(timeout=600) and pending.wait(timeout=0) == 0
                assert background.compiling() == 0
            outs.append(step(gradient.tensor(x), cache).numpy().copy())
            cache.advance(1)
    assert pending._function is not None                                  # the loop, loaded
    expected, _ = run(stack, stack, steps=8)
    np.testing.assert_array_equal(np.stack(outs), expected)


def test_the_python_replay_gives_the_same_bits(stack, monkeypatch):
    compiled, _ = run(stack, CapturedStep(stack.forward, stack))
    monkeypatch.setenv("GRADIENT_COMPILE_STEPS", "0")
    step = CapturedStep(stack.forward, stack)
    replayed, _ = run(stack, step)
    assert plan_of(step).loop is None and "GRADIENT_COMPILE_STEPS=0" in plan_of(step).why_python
    np.testing.assert_array_equal(replayed, compiled)


def test_a_hook_in_every_block_runs_from_python_between_compiled_segments(stack):
    seen = []
    for block in stack.blocks:
        block.register_forward_hook(lambda m, args, out: seen.append(m.layer))
    step = CapturedStep(stack.forward, stack)
    got, _ = run(stack, step)
    assert seen == [0, 1, 2] * 6                   # every block, every step, in order
    loop = plan_of(step).loop
    assert loop.segments == 1 and "# run from Python" in loop.source
    seen.clear()
    expected, _ = run(stack, stack)
    np.testing.assert_array_equal(got, expected)


def test_a_hook_that_returns_an_output_replaces_it_in_the_loop(stack):
    for block in stack.blocks:
        block.register_forward_hook(lambda m, args, out: out * 2.0)
    step = CapturedStep(stack.forward, stack)
    got, _ = run(stack, step)
    expected, _ = run(stack, stack)
    np.testing.assert_array_equal(got, expected)


def test_blocks_that_differ_replay_in_python(stack):
    stack.blocks[1].norm = nn.LayerNorm(16)         # one block unlike the others
    step = CapturedStep(stack.forward, stack)
    got, _ = run(stack, step)
    expected, _ = run(stack, stack)
    np.testing.assert_array_equal(got, expected)
    assert plan_of(step).loop is None and plan_of(step).why_python


def test_weights_changed_in_place_or_replaced_reach_the_loop(stack):
    step = CapturedStep(stack.forward, stack)
    run(stack, step)
    with gradient.no_grad():
        stack.blocks[2].q.weight.mul_(1.5)
    stack.blocks[0].out.weight.data = gradient.randn(16, 16) * 0.1
    got, _ = run(stack, step)
    assert plan_of(step).loop is not None
    expected, _ = run(stack, stack)
    np.testing.assert_array_equal(got, expected)


def test_a_full_cache_raises_the_caches_own_error(stack):
    step = CapturedStep(stack.forward, stack)
    cache = KVCache(3, 1, 2, 8, 4)
    x = gradient.randn(1, 1, 16)
    with gradient.no_grad():
        for _ in range(4):
            step(x, cache)
            cache.advance(1)
        assert plan_of(step).loop is not None
        with pytest.raises(gradient.errors.ShapeError, match="max_length"):
            step(x, cache)


def test_an_unwritable_cache_directory_compiles_in_memory(stack, monkeypatch, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("GRADIENT_CACHE_DIR", str(blocker))   # no directory can be made there
    monkeypatch.setattr(gradient.capture.compiled.sys, "modules", dict(sys.modules))
    step = CapturedStep(stack.forward, stack)
    got, _ = run(stack, step)
    assert plan_of(step).loop is not None
    expected, _ = run(stack, stack)
    np.testing.assert_array_equal(got, expected)


_CHILD = """
import json, sys
import numpy as np
import gradient
sys.path.insert(0, sys.argv[1])
from tests.capture.test_compiled import Stack, run, plan_of
from gradient.capture import CapturedStep
gradient.manual_seed(0)
stack = Stack(4).eval()
step = CapturedStep(stack.forward, stack)
out, _ = run(stack, step)
loop = sys.modules[[n for n in sys.modules if n.startswith("gradient_compiled_step_")][0]].loop
print(json.dumps({"out": out.tolist(), "loop": plan_of(step).loop is not None,
                  "loaded": sum(loop.stats.cache_hits.values()) > 0}))
"""


def test_a_loop_loaded_from_the_disk_cache_gives_the_bits_of_a_fresh_one(tmp_path):
    """The first child compiles the loop and writes it (its source under GRADIENT_CACHE_DIR,
    numba's machine code beside it); the second loads both. (The kernels the loop calls come
    from numba's usual cache: tests/backends/test_compiled_cache.py compares those cold and
    warm; compiling them all again here cost a minute of the suite.)"""
    env = dict(os.environ, GRADIENT_CACHE_DIR=str(tmp_path / "gradient"))
    env.pop("NUMBA_CACHE_DIR", None)      # the loop's cache beside its source, under tmp_path
    runs = []
    for _ in range(2):
        child = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT)], env=env,
                               capture_output=True, text=True, timeout=600, cwd=ROOT)
        assert child.returncode == 0, child.stderr[-3000:]
        runs.append(__import__("json").loads(child.stdout))
    assert runs[0]["loop"] and runs[1]["loop"]
    assert runs[0]["out"] == runs[1]["out"]
    steps = tmp_path / "gradient" / "compiled_steps"
    assert len(list(steps.glob("*.py"))) == 1 and list(steps.rglob("*.nbi"))
    assert runs[1]["loaded"] and not runs[0]["loaded"]
