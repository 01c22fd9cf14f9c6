"""The fused decode step (gradient.models.llama_decode): the same logits and greedy tokens as the
module graph, for the models it covers; the module graph for the others."""

import json
import os

import numpy as np
import pytest

import gradient
from gradient.models import LlamaConfig, LlamaForCausalLM
from gradient.models.llama_decode import FusedDecoder
from gradient.quant import QuantizedLinear

from ..quant.gguf_fixtures import requires_smollm2, smollm2_path

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def quantized_model(model_type="llama", qtypes=("Q8_0",), seed=0, **overrides):
    """A small random LLaMA-family model whose projections are QuantizedLinear (int8
    activations), cycling through ``qtypes`` by projection."""
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
            setattr(block, name, QuantizedLinear.from_linear(linear, qtypes[i % len(qtypes)]))
    return model.eval()     # the new layers too


def decode(model, prompt, steps, fused):
    """Logits of ``steps`` greedy decode steps after a prefill of ``prompt``."""
    model.fused_decode = fused
    out, ids = [], list(prompt)
    with gradient.no_grad():
        cache = model.new_cache(1, len(prompt) + steps)
        logits = model(gradient.tensor([ids]), cache=cache, logits_to_keep=1).logits
        for _ in range(steps):
            ids.append(int(logits.numpy()[0, -1].argmax()))
            logits = model(gradient.tensor([ids[-1:]]), cache=cache).logits
            out.append(logits.numpy()[0, -1].astype(np.float64))
    return np.stack(out), ids


@pytest.mark.parametrize("model_type, qtypes", [
    ("llama", ("Q8_0",)),
    ("llama", ("Q4_0", "Q4_1", "Q5_0", "Q5_1")),   # nibble and byte kernels, offsets, minimums
    ("qwen2", ("Q4_1",)),                          # q/k/v biases
    ("mistral", ("Q8_0",)),
])
def test_fused_steps_match_the_module_graph(model_type, qtypes):
    model = quantized_model(model_type, qtypes)
    assert FusedDecoder.build(model) is not None
    prompt = [5, 17, 42, 8, 99, 3]
    fused, ids_fused = decode(model, prompt, 12, True)
    graph, ids_graph = decode(model, prompt, 12, False)
    assert model.__dict__["_fused_decoder"][1] is not None          # it did run fused
    assert ids_fused == ids_graph
    assert np.abs(fused - graph).max() <= 1e-4 * np.abs(graph).max()


def test_sliding_window():
    """Mistral's window (4 positions here) limits what the fused step attends to, as the mask
    of the module graph does."""
    model = quantized_model("mistral", ("Q8_0",), sliding_window=4)
    assert FusedDecoder.build(model) is not None
    fused, ids_fused = decode(model, [5, 17, 42, 8, 99, 3], 10, True)
    graph, ids_graph = decode(model, [5, 17, 42, 8, 99, 3], 10, False)
    assert ids_fused == ids_graph
    assert np.abs(fused - graph).max() <= 1e-4 * np.abs(graph).max()
    model.model.window = None                     # the window matters: without it, other logits
    model.model.sliding = [False, False]
    model.__dict__.pop("_fused_decoder")
    unwindowed, _ = decode(model, [5, 17, 42, 8, 99, 3], 10, True)
    assert np.abs(unwindowed - fused).max() > 1e-3


def test_generate_uses_it_and_agrees():
    model = quantized_model(qtypes=("Q4_1",), seed=1)
    prompt = [[1, 2, 3, 4, 5]]
    model.fused_decode = False
    expected = np.asarray(model.generate(prompt, max_new_tokens=16))
    model.fused_decode = True
    got = np.asarray(model.generate(prompt, max_new_tokens=16))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("change", ["float32 activations", "a float layer", "qwen3 q/k norm",
                                    "gelu"])
def test_models_it_does_not_cover_run_the_module_graph(change):
    if change == "qwen3 q/k norm":
        model = quantized_model("qwen3")
    elif change == "gelu":
        model = quantized_model(hidden_act="gelu_pytorch_tanh")
    else:
        model = quantized_model()
        layer = model.model.layers[1].mlp
        if change == "float32 activations":
            layer.up_proj.activations = "float32"
        else:
            layer.up_proj = gradient.nn.Linear(64, 96, bias=False)
    assert FusedDecoder.build(model) is None
    fused, _ = decode(model, [1, 2, 3], 3, True)
    graph, _ = decode(model, [1, 2, 3], 3, False)
    np.testing.assert_array_equal(fused, graph)


def test_a_replaced_layer_is_noticed():
    model = quantized_model(qtypes=("Q8_0",))
    decode(model, [1, 2, 3], 2, True)
    first = model.__dict__["_fused_decoder"][1]
    # swap one projection for another quantization of the same weight: the decoder is rebuilt
    old = model.model.layers[1].self_attn.o_proj
    model.model.layers[1].self_attn.o_proj = QuantizedLinear.from_linear(
        gradient.nn.Linear(64, 64, bias=False), "Q4_0")
    assert not first.valid(model)
    fused, _ = decode(model, [1, 2, 3], 4, True)
    assert model.__dict__["_fused_decoder"][1] is not first
    graph, _ = decode(model, [1, 2, 3], 4, False)
    assert np.abs(fused - graph).max() <= 1e-4 * np.abs(graph).max()
    assert old is not model.model.layers[1].self_attn.o_proj


@pytest.mark.parametrize("how", ["a container", "a direct write", "activations"])
def test_changes_made_between_steps_are_noticed(how):
    """valid() walks the layers again after any change to any module (its ModuleWatch fired),
    however it was made."""
    model = quantized_model(qtypes=("Q8_0",), seed=3)
    decode(model, [1, 2, 3], 2, True)
    decoder = model.__dict__["_fused_decoder"][1]
    # the replacements are built first: building a module is itself a change
    layer = quantized_model(qtypes=("Q4_0",), seed=4).model.layers[1]
    up = QuantizedLinear.from_linear(gradient.nn.Linear(64, 96, bias=False), "Q8_0")
    assert decoder.valid(model)
    mlp = model.model.layers[0].mlp
    if how == "a container":
        model.model.layers[1] = layer
    elif how == "a direct write":
        mlp._modules["up_proj"] = up
    else:
        mlp.up_proj.activations = "float32"
    assert not decoder.valid(model)
    fused, ids_fused = decode(model, [1, 2, 3], 4, True)
    graph, ids_graph = decode(model, [1, 2, 3], 4, False)
    assert ids_fused == ids_graph
    assert np.abs(fused - graph).max() <= 1e-4 * np.abs(graph).max()


def test_norms_and_biases_changed_in_place_or_replaced_reach_the_fused_step():
    model = quantized_model("qwen2", ("Q4_1",), seed=5)      # q/k/v biases
    decode(model, [4, 9, 2], 2, True)
    decoder = model.__dict__["_fused_decoder"][1]
    layer = model.model.layers[1]
    with gradient.no_grad():                                 # in place: seen through the views
        layer.input_layernorm.weight.mul_(1.5)
        layer.self_attn.k_proj.bias.add_(0.25)
    assert decoder.valid(model)
    fused, ids_fused = decode(model, [4, 9, 2], 5, True)
    graph, ids_graph = decode(model, [4, 9, 2], 5, False)
    assert ids_fused == ids_graph
    assert np.abs(fused - graph).max() <= 1e-4 * np.abs(graph).max()
    # a new storage for a weight: the decoder is rebuilt over it
    new = gradient.randn(64) * 0.5 + 1
    layer.post_attention_layernorm.weight.data = new
    assert not decoder.valid(model)
    fused, ids_fused = decode(model, [4, 9, 2], 5, True)
    assert model.__dict__["_fused_decoder"][1] is not decoder
    graph, ids_graph = decode(model, [4, 9, 2], 5, False)
    assert ids_fused == ids_graph
    assert np.abs(fused - graph).max() <= 1e-4 * np.abs(graph).max()


def _module_at(model, where):
    layer = model.model.layers[1]
    return {"the decoder stack": model.model, "a layer": layer, "attention": layer.self_attn,
            "the MLP": layer.mlp, "a projection": layer.mlp.up_proj,
            "a norm": layer.post_attention_layernorm}[where]


@pytest.mark.parametrize("where", ["the decoder stack", "a layer", "attention", "the MLP",
                                   "a projection", "a norm"])
@pytest.mark.parametrize("change", ["forward hook", "forward pre-hook", "forward on the instance",
                                    "training mode"])
def test_modules_that_could_compute_otherwise_are_called(monkeypatch, where, change):
    """The fused step stands in for the calls of the stack, its layers and their parts: once
    one of them has a hook, a forward of its own or training mode, even after the decoder was
    built, the steps leave the fused decoder for the module forward's captured step (the hook
    runs at each step, logits equal the module graph's); once undone, they are fused again."""
    model = quantized_model(qtypes=("Q8_0",), seed=6)
    fused_steps = []
    real_step = FusedDecoder.step
    monkeypatch.setattr(FusedDecoder, "step", lambda *a: fused_steps.append(1) or real_step(*a))
    prompt = [7, 3, 11, 2]
    graph, ids_graph = decode(model, prompt, 5, False)
    decode(model, prompt, 2, True)
    assert len(fused_steps) == 2                                   # built and used
    module = _module_at(model, where)
    calls = []
    if change == "forward hook":
        undo = module.register_forward_hook(lambda m, args, out: calls.append(1)).remove
    elif change == "forward pre-hook":
        undo = module.register_forward_pre_hook(lambda m, args: calls.append(1)).remove
    elif change == "forward on the instance":
        own = type(module).forward
        module.forward = lambda *a, **k: calls.append(1) or own(module, *a, **k)

        def undo():
            del module.forward
    else:
        module.train()
        calls = None

        def undo():
            module.eval()
    fused_steps.clear()
    got, ids_got = decode(model, prompt, 5, True)
    assert fused_steps == []
    if calls is not None:
        # a hook runs at each of the 6 forwards (the prefill and 5 steps); a forward's own
        # Python inside the captured stack runs while the step is captured (the prefill and
        # 2 steps), its ops replayed after that
        inside = change == "forward on the instance" and where != "the decoder stack"
        assert len(calls) == (3 if inside else 6)
    assert ids_got == ids_graph
    np.testing.assert_array_equal(got, graph)
    undo()
    again, ids_again = decode(model, prompt, 5, True)
    assert len(fused_steps) == 5 and ids_again == ids_graph
    assert np.abs(again - graph).max() <= 1e-4 * np.abs(graph).max()


def test_padding_and_batches_take_the_module_graph():
    model = quantized_model()
    with gradient.no_grad():
        cache = model.new_cache(2, 8)
        model(gradient.tensor([[1, 2], [3, 4]]), cache=cache)
        model(gradient.tensor([[5], [6]]), cache=cache)            # batch 2: not fused
        assert "_fused_decoder" not in model.__dict__
        cache = model.new_cache(1, 8)
        model(gradient.tensor([[1, 2]]), cache=cache)
        model(gradient.tensor([[5]]), cache=cache, attention_mask=np.array([[0, 1, 1]]))
        assert "_fused_decoder" not in model.__dict__                # padded: not fused


def forced(model, ids, prompt_len, fused):
    """Logits of decode steps along the fixed token sequence ``ids`` (teacher forcing)."""
    model.fused_decode = fused
    out = []
    with gradient.no_grad():
        cache = model.new_cache(1, len(ids))
        model(gradient.tensor([ids[:prompt_len]]), cache=cache)
        for t in range(prompt_len, len(ids)):
            out.append(model(gradient.tensor([ids[t:t + 1]]), cache=cache).logits.numpy()[0, -1])
    return np.stack(out).astype(np.float64)


@requires_smollm2
def test_smollm2_fused_steps_are_as_close_to_exact_as_the_module_graph():
    """On the real model, along one greedy continuation. Both paths quantize activations to
    int8 after float32 steps summed in different orders (RMSNorm, attention; compiled code may
    also contract differently), and SmolLM2's activations have outliers (hidden values in the
    hundreds): an int8 code that rounds the other way moves logits by tenths. So each path is
    held against exact float32 activations instead: the fused step must be as close to them as
    the module graph is, and agree with them on every clear argmax."""
    model, _ = gradient.hub.load(smollm2_path())
    exact, _ = gradient.hub.load(smollm2_path(), activations="float32")

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
        assert cosine(fused, reference).mean() > cosine(graph, reference).mean() - 0.003
        assert cosine(fused, reference).min() > 0.98
        assert np.abs(fused - reference).max() < 4.0
        top2 = np.sort(reference, axis=-1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 2.0
        checked += clear.sum()
        np.testing.assert_array_equal(fused.argmax(-1)[clear], reference.argmax(-1)[clear])
    assert checked >= 10
    model.fused_decode = True


@pytest.mark.parametrize("model_type, qtypes", [
    ("llama", ("Q4_1", "Q8_0", "Q4_0", "Q5_1")),   # q, k, v of three kinds, merged into one call
    ("qwen2", ("Q4_1",)),                          # q/k/v biases
    ("mistral", ("Q8_0",)),                        # a sliding window
])
@pytest.mark.parametrize("batch", [1, 3])
def test_captured_steps_of_quantized_models_give_the_module_graph_bits(model_type, qtypes,
                                                                       batch):
    """With the fused decoder off (or a model it does not cover), a quantized model decodes
    through the step captured from its forward: prepared kernels, the products of q, k and v
    (and of gate and up) as one call each, the module graph's logits bit for bit."""
    from collections import Counter

    from .decode_step_checks import decode_logits, steps_by_kind
    model = quantized_model(model_type, qtypes)
    model.fused_decode = False
    ids = np.random.default_rng(batch).integers(0, 300, (batch, 12))
    counts = Counter()
    np.testing.assert_array_equal(decode_logits(model, ids, counts=counts),
                                  decode_logits(model, ids, fused=False))
    assert steps_by_kind(counts) == {"capture": 2, "replay": 4, "module graph": 0}
    plan = next(iter(model.model.__dict__["_captured"]._entries.values()))
    assert plan.source.count("_QuantizedMatmul + _QuantizedMatmul + _QuantizedMatmul") == 2
    assert plan.source.count("# _QuantizedMatmul + _QuantizedMatmul\n") == 2
