"""Decoding quantized LLaMA-family models one token at a time: the step captured from the module
forward, compiled into one loop over the layers (gradient.capture.compiled), gives the module
graph's logits bit for bit; what the loop cannot hold replays in Python, with the same bits."""

import json
import os

import numpy as np
import pytest

import gradient
from gradient.models import LlamaConfig, LlamaForCausalLM
from gradient.quant import QuantizedLinear

from ..quant.gguf_fixtures import requires_smollm2, smollm2_path

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def quantized_model(model_type="llama", qtypes=("Q8_0",), seed=0, activations="int8",
                    **overrides):
    """A small random LLaMA-family model whose projections are QuantizedLinear (int8
    activations unless told), cycling through ``qtypes`` by projection."""
    gradient.manual_seed(seed)
    kw = dict(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, head_dim=16,
              max_position_embeddings=128, model_type=model_type)
    kw.update(overrides)
    model = LlamaForCausalLM(LlamaConfig(**kw))
    for layer in model.model.layers:
        for i, name in enumerate(PROJECTIONS):
            block = layer.self_attn if i < 4 else layer.mlp
            linear = getattr(block, name)
            if linear.bias is not None:     # give the biases values (they start at zero)
                with gradient.no_grad():
                    linear.bias.copy_(gradient.randn(*linear.bias.shape) * 0.1)
            setattr(block, name, QuantizedLinear.from_linear(linear, qtypes[i % len(qtypes)],
                                                             activations))
    return model.eval()     # the new layers too


def decode(model, prompt, steps, fused):
    """Logits of ``steps`` greedy decode steps after a prefill of ``prompt``, with the captured
    step (``fused``) or the module graph at every step."""
    model.model.fused_decode = fused
    out, ids = [], list(prompt)
    try:
        with gradient.no_grad():
            cache = model.new_cache(1, len(prompt) + steps)
            logits = model(gradient.tensor([ids]), cache=cache, logits_to_keep=1).logits
            for _ in range(steps):
                ids.append(int(logits.numpy()[0, -1].argmax()))
                logits = model(gradient.tensor([ids[-1:]]), cache=cache).logits
                out.append(logits.numpy()[0, -1].astype(np.float64))
    finally:
        model.model.fused_decode = True
    return np.stack(out), ids


def plan_of(model):
    return next(iter(model.model.__dict__["_captured"]._entries.values()))


@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
@pytest.mark.parametrize("model_type, qtypes", [
    ("llama", ("Q8_0",)),
    # nibble and byte kernels, offsets, minimums (the mix the tests below take too: the same
    # merged products, compiled once for all of them)
    ("llama", ("Q4_1", "Q8_0", "Q4_0", "Q5_1")),
    ("qwen2", ("Q4_1",)),                          # q/k/v biases
    ("qwen3", ("Q8_0",)),                          # per-head q/k norms
])
def test_compiled_steps_give_the_module_graph_bits(model_type, qtypes):
    model = quantized_model(model_type, qtypes, num_hidden_layers=3)
    prompt = [5, 17, 42, 8, 99, 3]
    with gradient.kernels.trace() as trace:
        compiled, ids_compiled = decode(model, prompt, 12, True)
    graph, ids_graph = decode(model, prompt, 12, False)
    plan = plan_of(model)
    assert plan.loop is not None and plan.loop.blocks == 3 and plan.loop.segments == 1
    assert trace.counts[("captured_step", "replay")] == 10
    assert ids_compiled == ids_graph
    np.testing.assert_array_equal(compiled, graph)


def test_sliding_window():
    """Mistral's window (4 positions here) limits what the step attends to, as the mask of
    the module graph does."""
    model = quantized_model("mistral", ("Q8_0",), sliding_window=4)
    compiled, ids_compiled = decode(model, [5, 17, 42, 8, 99, 3], 10, True)
    graph, ids_graph = decode(model, [5, 17, 42, 8, 99, 3], 10, False)
    assert ids_compiled == ids_graph
    np.testing.assert_array_equal(compiled, graph)
    model.model.window = None                     # the window matters: without it, other logits
    model.model.sliding = [False, False]
    unwindowed, _ = decode(model, [5, 17, 42, 8, 99, 3], 10, True)
    assert np.abs(unwindowed - compiled).max() > 1e-3


def test_generate_agrees_with_the_module_graph():
    model = quantized_model(qtypes=("Q4_1",), seed=1)
    prompt = [[1, 2, 3, 4, 5]]
    model.model.fused_decode = False
    expected = np.asarray(model.generate(prompt, max_new_tokens=16))
    model.model.fused_decode = True
    got = np.asarray(model.generate(prompt, max_new_tokens=16))
    np.testing.assert_array_equal(got, expected)


def test_python_replay_gives_the_compiled_bits(monkeypatch):
    """GRADIENT_COMPILE_STEPS=0 replays the captured calls in Python: the same logits."""
    compiled, _ = decode(quantized_model(qtypes=("Q4_1",), seed=2), [3, 1, 4], 6, True)
    monkeypatch.setenv("GRADIENT_COMPILE_STEPS", "0")
    model = quantized_model(qtypes=("Q4_1",), seed=2)
    replayed, _ = decode(model, [3, 1, 4], 6, True)
    assert plan_of(model).loop is None and "GRADIENT_COMPILE_STEPS" in plan_of(model).why_python
    np.testing.assert_array_equal(replayed, compiled)


@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
@pytest.mark.parametrize("change", ["float32 activations", "a float layer", "gelu",
                                    "a hook on every layer", "a LoRA on q and v"])
def test_changed_models_keep_the_module_graph_bits(change):
    """A layer unlike the others breaks the blocks (the step replays in Python); a hook on
    every layer runs from a Python loop between compiled segments; a LoRA adapter compiles
    with the rest. Each gives the module graph's logits."""
    model = quantized_model(num_hidden_layers=3)
    calls = []
    if change == "gelu":
        model = quantized_model(hidden_act="gelu_pytorch_tanh", num_hidden_layers=3)
    elif change == "float32 activations":
        model.model.layers[1].mlp.up_proj.activations = "float32"
    elif change == "a float layer":
        model.model.layers[1].mlp.up_proj = gradient.nn.Linear(64, 96, bias=False)
    elif change == "a hook on every layer":
        for layer in model.model.layers:
            layer.register_forward_hook(lambda m, args, out: calls.append(1))
    else:
        for layer in model.model.layers:
            for name in ("q_proj", "v_proj"):
                setattr(layer.self_attn, name, LoRA(getattr(layer.self_attn, name)))
    compiled, _ = decode(model, [1, 2, 3], 5, True)
    graph, _ = decode(model, [1, 2, 3], 5, False)
    np.testing.assert_array_equal(compiled, graph)
    plan = plan_of(model)
    if change == "a hook on every layer":
        assert plan.loop.segments == 1 and "run from Python" in plan.loop.source
        assert len(calls) == 2 * 6 * 3          # each layer, each forward, both runs
    elif change == "a LoRA on q and v":
        assert plan.loop is not None and "run from Python" not in plan.loop.source


class LoRA(gradient.nn.Module):
    """A user's adapter: ``base(x) + B(A(x)) * scale``."""

    def __init__(self, base, rank=4):
        super().__init__()
        self.base = base
        self.a = gradient.nn.Linear(base.in_features, rank, bias=False)
        self.b = gradient.nn.Linear(rank, base.out_features, bias=False)
        with gradient.no_grad():
            self.b.weight.normal_(0.0, 0.1)

    def forward(self, x):
        return self.base(x) + self.b(self.a(x)) * 2.0


def test_a_replaced_layer_or_changed_weights_are_noticed():
    model = quantized_model("qwen2", ("Q4_1",), seed=5)
    decode(model, [4, 9, 2], 3, True)
    first = plan_of(model)
    layer = model.model.layers[1]
    with gradient.no_grad():                                 # in place
        layer.input_layernorm.weight.mul_(1.5)
        layer.self_attn.k_proj.bias.add_(0.25)
    compiled, _ = decode(model, [4, 9, 2], 5, True)
    assert plan_of(model) is not first
    graph, _ = decode(model, [4, 9, 2], 5, False)
    np.testing.assert_array_equal(compiled, graph)
    layer.post_attention_layernorm.weight.data = gradient.randn(64) * 0.5 + 1   # new storage
    layer.self_attn.o_proj = QuantizedLinear.from_linear(gradient.nn.Linear(64, 64, bias=False),
                                                         "Q4_0")
    compiled, _ = decode(model, [4, 9, 2], 5, True)
    graph, _ = decode(model, [4, 9, 2], 5, False)
    np.testing.assert_array_equal(compiled, graph)


def test_a_full_cache_raises_the_caches_error():
    model = quantized_model()
    with gradient.no_grad():
        cache = model.new_cache(1, 6)
        model(gradient.tensor([[1, 2, 3]]), cache=cache)
        for token in (4, 5, 6):
            model(gradient.tensor([[token]]), cache=cache)
        assert plan_of(model).loop is not None
        with pytest.raises(gradient.errors.ShapeError, match="max_length"):
            model(gradient.tensor([[7]]), cache=cache)


def forced(model, ids, prompt_len, fused):
    """Logits of decode steps along the fixed token sequence ``ids`` (teacher forcing)."""
    model.model.fused_decode = fused
    out = []
    with gradient.no_grad():
        cache = model.new_cache(1, len(ids))
        model(gradient.tensor([ids[:prompt_len]]), cache=cache)
        for t in range(prompt_len, len(ids)):
            out.append(model(gradient.tensor([ids[t:t + 1]]), cache=cache).logits.numpy()[0, -1])
    return np.stack(out).astype(np.float64)


@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
@requires_smollm2
def test_smollm2_compiled_steps_are_the_module_graph_and_close_to_exact():
    """On the real model, along fixed continuations: the compiled decode step gives the module
    graph's logits bit for bit, and both are close to exact float32 activations (int8
    activations of SmolLM2's outliers move logits by tenths), agreeing with them on every clear
    argmax."""
    model, _ = gradient.hub.load(smollm2_path(), activations="int8")
    exact, _ = gradient.hub.load(smollm2_path())        # the default: float32 activations

    def cosine(a, b):
        return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)

    # fixed continuations (llama.cpp's greedy tokens from the committed fixture), so that the
    # steps checked do not depend on either path's own choices
    fixture = json.load(open(os.path.join(os.path.dirname(__file__), "..", "fixtures",
                                          "llama_cpp", "smollm2_q4_1.json")))
    checked = 0
    for p in fixture["prompts"][:3]:
        ids = p["ids"] + p["greedy"][:24]
        fused = forced(model, ids, len(p["ids"]), True)
        graph = forced(model, ids, len(p["ids"]), False)
        reference = forced(exact, ids, len(p["ids"]), False)
        np.testing.assert_array_equal(fused, graph)
        assert cosine(fused, reference).min() > 0.98
        assert np.abs(fused - reference).max() < 4.0
        top2 = np.sort(reference, axis=-1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 2.0
        checked += clear.sum()
        np.testing.assert_array_equal(fused.argmax(-1)[clear], reference.argmax(-1)[clear])
    assert checked >= 10
    model.model.fused_decode = True


@pytest.mark.parametrize("model_type, qtypes, activations", [
    ("llama", ("Q4_1", "Q8_0", "Q4_0", "Q5_1"), "int8"),
    ("llama", ("Q4_1", "Q8_0", "Q4_0", "Q5_1"), "float32"),
    ("qwen3", ("Q8_0",), "int8"),
])
def test_a_sequence_run_whole_gives_the_logits_of_its_tokens_decoded(model_type, qtypes,
                                                                     activations):
    """The module graph over a whole sequence (no cache: 20 query rows) and the compiled decode
    steps compute the same arithmetic: the same quantized product for any number of rows, and
    attention whose arithmetic per query row does not depend on how many rows there are. So
    every position's logits are the same bits either way (with int8 activations a last-bit
    difference anywhere could move them by tenths: one activation rounding the other way)."""
    model = quantized_model(model_type, qtypes, activations=activations, num_hidden_layers=3)
    # a quantized head too (as a GGUF model's): a float head's BLAS product rounds a row
    # differently in a 20-row matrix than alone
    model.lm_head = QuantizedLinear.from_linear(model.lm_head, "Q8_0", activations)
    ids = list(np.random.default_rng(5).integers(0, 300, 20))
    with gradient.no_grad():
        whole = model(gradient.tensor([ids])).logits.numpy()[0].astype(np.float64)
    np.testing.assert_array_equal(forced(model, ids, 9, True), whole[9:])
    assert plan_of(model).loop is not None
    model.model.fused_decode = True


@requires_smollm2
@pytest.mark.parametrize("activations", ["float32", "int8"])
def test_smollm2_prompts_run_whole_give_the_logits_of_their_tokens_decoded(activations):
    model, _ = gradient.hub.load(smollm2_path(), activations=activations)
    fixture = json.load(open(os.path.join(os.path.dirname(__file__), "..", "fixtures",
                                          "llama_cpp", "smollm2_q4_1.json")))
    for p in fixture["prompts"][:2]:
        ids = p["ids"] + p["greedy"][:12]
        with gradient.no_grad():
            whole = model(gradient.tensor([ids])).logits.numpy()[0].astype(np.float64)
        np.testing.assert_array_equal(forced(model, ids, len(p["ids"]), True),
                                      whole[len(p["ids"]):])
    model.model.fused_decode = True




@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
@pytest.mark.parametrize("model_type, qtypes", [
    ("llama", ("Q4_1", "Q8_0", "Q4_0", "Q5_1")),   # q, k, v of three kinds, merged into one call
    ("mistral", ("Q8_0",)),                        # a sliding window
])
@pytest.mark.parametrize("batch", [1, 3])
def test_batches_and_merged_products_give_the_module_graph_bits(model_type, qtypes, batch):
    """Every sequence of a batch decodes through the compiled step: the products of q, k and v
    (and of gate and up) as one call each, the module graph's logits bit for bit."""
    from collections import Counter

    from .decode_step_checks import decode_logits, steps_by_kind
    model = quantized_model(model_type, qtypes)
    ids = np.random.default_rng(batch).integers(0, 300, (batch, 12))
    counts = Counter()
    np.testing.assert_array_equal(decode_logits(model, ids, counts=counts),
                                  decode_logits(model, ids, fused=False))
    assert steps_by_kind(counts) == {"capture": 2, "replay": 4, "module graph": 0}
    loop = plan_of(model).loop
    assert loop.blocks == 2
    assert loop.source.count("# _QuantizedMatmul + _QuantizedMatmul + _QuantizedMatmul") == 1
    assert loop.source.count("# _QuantizedMatmul + _QuantizedMatmul\n") == 1


@pytest.mark.parametrize("batch", [1, 3])
def test_bfloat16_activations_decode_through_the_step_with_the_module_graph_bits(batch):
    """BF16 weights under llama.cpp's numerics (x rounded to bfloat16 in each product): the
    compiled step rounds as the module graph does, bit for bit, alone and in a batch."""
    from collections import Counter

    from .decode_step_checks import decode_logits, steps_by_kind
    model = quantized_model("llama", ("BF16",), activations="bfloat16")
    ids = np.random.default_rng(batch).integers(0, 300, (batch, 12))
    counts = Counter()
    with gradient.kernels.trace() as t:
        fused = decode_logits(model, ids, counts=counts)
    np.testing.assert_array_equal(fused, decode_logits(model, ids, fused=False))
    assert steps_by_kind(counts) == {"capture": 2, "replay": 4, "module graph": 0}
    assert "numba" in t.calls("bfloat16_rows_product")   # (not the float32 product's kernel)


@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_short_prompts_into_an_empty_cache_are_the_tails_steps(model_type, monkeypatch):
    """Where steps of several tokens are compiled (the gradient commands), a prompt of up to
    ``CAPTURED_TOKENS`` tokens into an empty cache is a captured step, the plan of a prompt's
    tail of that length after a cache: captured from two prompts, replayed for a third and
    for a tail, compiled, with the module graph's bits; in a library call the prompt runs
    the module graph."""
    from collections import Counter

    from gradient.models import GPT2Config, GPT2LMHeadModel, decode_step

    from .decode_step_checks import assert_steps_compiled, steps_by_kind
    if model_type == "gpt2":
        gradient.manual_seed(1)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=32, n_embd=32,
                                           n_layer=2, n_head=4)).eval()
    else:
        model = quantized_model("llama", ("Q4_1", "Q8_0"))
    stack = model.transformer if model_type == "gpt2" else model.model
    rng = np.random.default_rng(3)
    T = 5
    # three prompts of T tokens, then a prompt of 4 and its tail of T after the cache
    runs = [(None, rng.integers(0, 300, T)) for _ in range(3)]
    runs.append((rng.integers(0, 300, 4), rng.integers(0, 300, T)))

    def logits(fused):
        stack.fused_decode = fused
        out, counts = [], Counter()
        try:
            with gradient.no_grad(), gradient.kernels.trace() as t:
                for prefix, ids in runs:
                    cache = model.new_cache(1, 16)
                    if prefix is not None:
                        model(gradient.tensor(prefix[None]), cache=cache)
                    out.append(model(gradient.tensor(ids[None]), cache=cache).logits.numpy())
        finally:
            stack.fused_decode = True
        counts.update(t.counts)
        return out, steps_by_kind(counts)
    graph, _ = logits(False)
    _, library = logits(True)
    assert library == {"capture": 1, "replay": 0, "module graph": 0}    # the tail alone
    monkeypatch.setattr(decode_step, "_several_tokens_compiled", lambda: True)
    fused, counts = logits(True)
    for a, b in zip(fused, graph):
        np.testing.assert_array_equal(a, b)
    # T tokens: captured twice, replayed twice (the tail among them); the prefix of 4: once
    assert counts == {"capture": 3, "replay": 2, "module graph": 0}
    assert_steps_compiled(stack, T)


@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
@pytest.mark.parametrize("activations", ["int8", "float32"])
def test_prompt_tails_up_to_the_captured_tokens_are_compiled_steps(activations, monkeypatch):
    """A conversation's next turn, or a request whose prompt shares a cached prefix, runs only
    its new tokens after the cache: up to ``CAPTURED_TOKENS`` of them are one captured step,
    compiled into a loop over the layers (the quantized products prepared for that many rows),
    with the module graph's bits; one token more runs the module graph."""
    from collections import Counter

    from gradient.models import decode_step

    from .decode_step_checks import assert_steps_compiled, decode_logits, steps_by_kind
    # compiled here, as the gradient commands compile it in a child process
    monkeypatch.setattr(decode_step, "_loop_worth_compiling", lambda *inputs: True)
    model = quantized_model("llama", ("Q4_1", "Q8_0", "Q4_0", "Q5_1"), activations=activations)
    most = decode_step.CAPTURED_TOKENS
    assert most >= 16      # a chat turn's "<|im_end|>\n<|im_start|>assistant\n" and more
    for chunk, captured in ((most, 2), (most + 1, 0)):
        ids = np.random.default_rng(chunk).integers(0, 300, (1, 6 + 3 * chunk))
        counts = Counter()
        np.testing.assert_array_equal(decode_logits(model, ids, counts=counts, chunk=chunk),
                                      decode_logits(model, ids, fused=False, chunk=chunk))
        # three steps: the first two captured (then compiled), the third replayed; or none
        assert steps_by_kind(counts) == {"capture": captured, "replay": captured // 2,
                                         "module graph": 0}
    assert_steps_compiled(model.model, most)
