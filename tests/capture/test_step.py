"""gradient.capture: a step captured from a module forward, replayed with the module graph's
bits, kept while nothing it read changed, and refused where replaying could differ."""

import numpy as np
import pytest

import gradient
from gradient import nn
from gradient.capture import CapturedStep
from gradient.generation import KVCache


class Block(nn.Module):
    """A small residual block that writes a KV cache, as a decoder layer does."""

    def __init__(self, width=8, layer=0):
        super().__init__()
        self.layer = layer
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x, cache):
        q, k, v = self.proj(self.norm(x)).view(1, 1, 3, 1, -1).permute(2, 0, 3, 1, 4)
        k, v = cache.update(self.layer, k, v)
        y = nn.functional.scaled_dot_product_attention(q, k, v)
        return x + self.out(gradient.nn.functional.gelu(y.reshape(1, 1, -1)))


class Stack(nn.Module):
    def __init__(self, n=2):
        super().__init__()
        self.blocks = nn.ModuleList(Block(layer=i) for i in range(n))

    def forward(self, x, cache):
        for block in self.blocks:
            x = block(x, cache)
        return x


def run(stack, step, steps=6, seed=0):
    """The outputs of ``steps`` one-token steps through ``step`` (a CapturedStep, or the stack
    itself), a fresh cache, and the trace's counts."""
    xs = np.random.default_rng(seed).normal(size=(steps, 1, 1, 8)).astype(np.float32)
    cache = KVCache(len(stack.blocks), 1, 1, 8, steps)
    outs = []
    with gradient.no_grad(), gradient.kernels.trace() as t:
        for x in xs:
            outs.append(step(gradient.tensor(x), cache).numpy().copy())
            cache.advance(1)
    return np.stack(outs), t.calls("captured_step")


@pytest.fixture
def stack():
    gradient.manual_seed(0)
    return Stack().eval()


def test_replay_gives_the_module_graph_bits(stack):
    step = CapturedStep(stack.forward, stack)
    got, calls = run(stack, step)
    expected, _ = run(stack, stack)
    np.testing.assert_array_equal(got, expected)
    assert calls == {"capture": 2, "replay": 4} and step.status() == ["replaying"]
    plan = next(iter(step._entries.values()))
    source = plan.source + (plan.loop.source if plan.loop else "")   # (the blocks: one loop)
    assert "KVCache.update_arrays" in source and "Linear" in source
    again, calls = run(stack, step)   # nothing changed: the plan is kept
    assert calls == {"replay": 6}
    np.testing.assert_array_equal(again, expected)


def test_a_capture_records_only_the_ops_of_its_own_thread(stack):
    """A step captured in one thread while another runs ops and captures a step of its own (a
    server's worker and a caller running the same model): each recording holds its own thread's
    calls, and both steps replay the module graph's bits."""
    import threading
    entered, go_on, gates = threading.Event(), threading.Event(), []

    class Gated(Stack):
        def forward(self, x, cache):
            if gates:                       # the first capture waits for the other thread
                gates.pop()
                entered.set()
                assert go_on.wait(30)
            return super().forward(x, cache)
    gradient.manual_seed(1)
    gated = Gated().eval()
    expected_gated, _ = run(gated, gated)
    gates.append("closed")
    results = {}
    worker = threading.Thread(target=lambda: results.update(
        gated=run(gated, CapturedStep(gated.forward, gated))))
    worker.start()
    try:
        assert entered.wait(30)              # the worker's first capture is in progress
        results["plain"] = run(stack, stack)
        own = CapturedStep(stack.forward, stack)
        results["own"] = run(stack, own)
    finally:
        go_on.set()
        worker.join(60)
    np.testing.assert_array_equal(results["own"][0], results["plain"][0])
    assert own.status() == ["replaying"]
    np.testing.assert_array_equal(results["gated"][0], expected_gated)
    assert results["gated"][1]["replay"] >= 4         # its two recordings were the same


def test_values_changed_in_place_or_replaced_are_seen(stack):
    step = CapturedStep(stack.forward, stack)
    run(stack, step)
    lin = stack.blocks[1].out
    with gradient.no_grad():
        lin.bias.add_(1.0)                              # in place: the version moves
    got, calls = run(stack, step)
    np.testing.assert_array_equal(got, run(stack, stack)[0])
    assert calls == {"capture": 2, "replay": 4}
    lin.weight.data = gradient.ones(8, 8)               # a replaced storage
    got, calls = run(stack, step)
    np.testing.assert_array_equal(got, run(stack, stack)[0])
    assert calls == {"capture": 2, "replay": 4}


def test_a_hook_runs_at_every_step_and_its_result_replaces_the_output(stack):
    step = CapturedStep(stack.forward, stack)
    run(stack, step)
    seen = []

    def hook(module, args, out):
        seen.append(out.shape)
        return out * 0.5
    stack.blocks[0].register_forward_hook(hook)
    got, calls = run(stack, step)
    assert calls == {"capture": 2, "replay": 4} and len(seen) == 6
    np.testing.assert_array_equal(got, run(stack, stack)[0])


def test_an_adapter_replacing_a_layer_is_captured(stack):
    class LoRA(nn.Module):
        def __init__(self, base, rank=2):
            super().__init__()
            self.base = base
            self.a = nn.Linear(base.in_features, rank, bias=False)
            self.b = nn.Linear(rank, base.out_features, bias=False)

        def forward(self, x):
            return self.base(x) + self.b(self.a(x)) * 0.5

    step = CapturedStep(stack.forward, stack)
    plain, _ = run(stack, step)
    stack.blocks[1].proj = LoRA(stack.blocks[1].proj)
    got, calls = run(stack, step)
    assert calls == {"capture": 2, "replay": 4} and not np.array_equal(got, plain)
    np.testing.assert_array_equal(got, run(stack, stack)[0])


def test_what_cannot_be_replayed_runs_the_module_graph(stack):
    """Python control flow on the data, a write in place and code that reads the position:
    refused, counted as the module graph; tried again once the modules change."""
    step = CapturedStep(stack.forward, stack)
    block = stack.blocks[0]
    cases = {
        "a read of tensor data": lambda x, cache: x * 2 if x.sum().item() > 0 else x,
        "an in-place write": lambda x, cache: x.add_(1.0),
        "differ from one position": lambda x, cache: x * (cache.length + 1),
    }
    for reason, before in cases.items():
        block.forward = lambda x, cache, before=before: Block.forward(block, before(x, cache),
                                                                      cache)
        got, calls = run(stack, step)
        np.testing.assert_array_equal(got, run(stack, stack)[0])
        assert calls.get("replay", 0) == 0 and calls["module graph"] > 0, reason
        assert reason in step.status()[0]
    del block.forward                                    # a change: captured again
    assert run(stack, step)[1] == {"capture": 2, "replay": 4}


def test_a_changed_hook_structure_is_replayed_through_the_module_graph(stack):
    """A hook that returned nothing when captured and a tensor later: that step runs the
    module graph, which then captures again."""
    step = CapturedStep(stack.forward, stack)
    state = {"scale": None}
    stack.blocks[0].register_forward_hook(
        lambda m, i, out: None if state["scale"] is None else out * state["scale"])
    xs = np.random.default_rng(3).normal(size=(6, 1, 1, 8)).astype(np.float32)
    cache = KVCache(2, 1, 1, 8, 6)
    outs = []
    with gradient.no_grad():
        for i, x in enumerate(xs):
            if i == 4:
                state["scale"] = 3.0
            outs.append(step(gradient.tensor(x), cache).numpy().copy())
            cache.advance(1)
    cache = KVCache(2, 1, 1, 8, 6)
    state["scale"] = None
    with gradient.no_grad():
        for i, x in enumerate(xs):
            if i == 4:
                state["scale"] = 3.0
            np.testing.assert_array_equal(outs[i], stack(gradient.tensor(x), cache).numpy())
            cache.advance(1)


def test_parameters_widened_inside_a_call_are_still_read_from_the_parameter():
    """A bfloat16 LayerNorm widens its weight for the float32 kernel inside the call the step
    replays, so the step reads the weight itself: a change in place reaches it."""
    norm = nn.LayerNorm(8).to(gradient.bfloat16).eval()
    step = CapturedStep(norm.forward, norm)
    x = gradient.randn(2, 8).to(gradient.bfloat16)
    with gradient.no_grad(), gradient.kernels.trace() as t:
        for _ in range(3):
            np.testing.assert_array_equal(step(x).float().numpy(), norm(x).float().numpy())
        norm.weight.mul_(3.0)
        for _ in range(3):
            np.testing.assert_array_equal(step(x).float().numpy(), norm(x).float().numpy())
    assert t.calls("captured_step") == {"capture": 4, "replay": 2}
    assert t.calls("layer_norm") == {"numba": 12}   # the widened kernel ran


class Products(nn.Module):
    """Four quantized products of the same activations (q, k, v and one more), one of each
    kind of interleaved codes, and one of another input; int8 activations (one quantization
    of x for the products that share it)."""

    def __init__(self):
        super().__init__()
        from gradient.quant import QuantizedLinear
        gradient.manual_seed(3)
        self.a, self.b, self.c, self.d, self.e = (
            QuantizedLinear.from_linear(nn.Linear(64, n), qtype, activations="int8")
            for n, qtype in ((96, "Q4_1"), (32, "Q8_0"), (64, "Q4_0"), (32, "Q5_1"), (64, "Q8_0")))

    def forward(self, x):
        return self.a(x), self.b(x), self.e(self.c(x) * 2.0), self.d(x)


@pytest.mark.parametrize("rows", [1, 3])
def test_products_of_the_same_activations_run_as_one_call_with_the_same_bits(rows):
    """A replayed step runs the quantized products that read one array as one call (at most
    three: one quantization of the activations, one parallel loop), each result bit for bit
    the module graph's."""
    module = Products().eval()
    step = CapturedStep(module.forward, module)
    xs = np.random.default_rng(rows).normal(size=(4, rows, 64)).astype(np.float32)
    with gradient.no_grad(), gradient.kernels.trace() as t:
        got = [[o.numpy() for o in step(gradient.tensor(x))] for x in xs]
    with gradient.no_grad():
        expected = [[o.numpy() for o in module(gradient.tensor(x))] for x in xs]
    for g, e in zip(got, expected):
        for a, b in zip(g, e):
            np.testing.assert_array_equal(a, b)
    plan = next(iter(step._entries.values()))
    assert plan.source.count("_QuantizedMatmul + _QuantizedMatmul + _QuantizedMatmul") == 1
    assert plan.source.count("# _QuantizedMatmul\n") == 2      # the fourth, and e's own input
    assert t.calls("interleaved_matmul") == {"numba": 5 * 4}
