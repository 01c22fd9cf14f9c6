"""gradient.models.gguf_writer: gradient models (and tokenizers) to GGUF files.

Three referees check the files: gradient's own loader (a float32 file must give back the very
same logits), the ``gguf`` package (tensor types and bytes; its dequantizer gives the expected
weights), and llama.cpp through llama-cpp-python when it is installed (logits, greedy tokens
and tokenization of the written file; it is not installed in CI, so those tests skip there).
The query/key row order is llama.cpp's convention, which only llama.cpp can referee: a writer
and loader that agreed on the wrong order would round-trip perfectly
(``test_llama_cpp_catches_a_wrong_qk_order``).
"""

import json
import os
import sys
import warnings

import numpy as np
import pytest

import gradient
from gradient.errors import TokenizerError, UnknownArchitectureError
from gradient.models import gguf_writer
from gradient.models.gguf_loader import (_LLAMA3_REGEX, _QWEN2_REGEX, gpt2_hf_name, hf_name,
                                         load_gguf,
                                         load_gguf_tokenizer)
from gradient.models.gguf_writer import WRITABLE_TYPES, gguf_name, save_gguf
from gradient.models.gpt2 import GPT2Config, GPT2LMHeadModel
from gradient.models.llama import LlamaConfig, LlamaForCausalLM
from gradient.ops.creation import from_numpy
from gradient.quant import (QuantizedEmbedding, QuantizedLinear, UnsupportedQuantTypeError,
                            WeightOnlyLinear)
from gradient.quant import quantize_model
from gradient.quant.linear import quantize
from gradient.quant.weight_only import quantize_q4_k
from gradient.tokenizers import Tokenizer

from ..quant.gguf_fixtures import gguf
from ..tokenizers.builders import CHATML_TEMPLATE, byte_level_backend
from ..tokenizers.corpus import MULTILINGUAL, held_out_texts

T = gguf.GGMLQuantizationType


# ----------------------------------------------------------------------------- helpers
def chatml_tokenizer(backend=None):
    return Tokenizer(backend or byte_level_backend(), bos_token="<|im_start|>",
                     eos_token="<|im_end|>", pad_token="<|im_end|>",
                     chat_template=CHATML_TEMPLATE)


VOCAB = len(chatml_tokenizer())
SMALL = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
             rms_norm_eps=1e-5, bos_token_id=None, eos_token_id=None)
LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 16}
CASES = {   # name: (model_type, config overrides, GGUF architecture)
    "llama_gqa": ("llama", {}, "llama"),
    "llama_tied": ("llama", {"tie_word_embeddings": True, "num_key_value_heads": 4}, "llama"),
    "llama_bias": ("llama", {"attention_bias": True}, "llama"),
    "llama_linear_rope": ("llama", {"rope_scaling": {"rope_type": "linear", "factor": 4.0}},
                          "llama"),
    # factor 5, head_dim 32: one frequency comes back an ulp off (float32 division)
    "llama3_rope": ("llama", {"rope_scaling": dict(LLAMA3, factor=5.0), "rope_theta": 500000.0,
                              "num_attention_heads": 2, "num_key_value_heads": 1}, "llama"),
    "mistral": ("mistral", {}, "llama"),
    "qwen2_bias_tied": ("qwen2", {"tie_word_embeddings": True}, "qwen2"),
    "qwen3": ("qwen3", {"head_dim": 32, "rope_theta": 1e6}, "qwen3"),
}


def tiny(model_type="llama", seed=0, std=0.2, **overrides):
    """A random LlamaForCausalLM: weights N(0, std), norm weights 1 + N(0, 0.1)."""
    model = LlamaForCausalLM(LlamaConfig(model_type=model_type, **dict(SMALL, **overrides)))
    rng = np.random.default_rng(seed)
    state = {name: from_numpy((1 + 0.1 * rng.standard_normal(t.shape) if "norm" in name
                               else std * rng.standard_normal(t.shape)).astype(np.float32))
             for name, t in model.state_dict().items()}
    model.load_state_dict(state)
    model.tie_weights()
    return model.eval()


def logits(model, ids):
    with gradient.no_grad():
        return model(gradient.tensor(np.asarray(ids))).logits.numpy()


def prompts(vocab=VOCAB, batch=2, length=12, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, (batch, length))


def file_tensors(path):
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def file_metadata(path):
    from gradient.io.gguf import gguf_metadata
    return gguf_metadata(path)


def write(model, path, qtype="F32", tokenizer=None, **kwargs):
    return save_gguf(model, path, qtype, tokenizer or chatml_tokenizer(), **kwargs)


# ----------------------------------------------------------------------------- names, config
def test_names_are_the_loaders_inverse():
    for model in (tiny("llama", attention_bias=True), tiny("qwen3", head_dim=32)):
        for name in model.state_dict():
            assert hf_name(gguf_name(name)) == name
    assert gguf_name("model.layers.11.self_attn.q_norm.weight") == "blk.11.attn_q_norm.weight"
    assert gguf_name("lm_head.weight") == "output.weight"
    assert gguf_name("model.layers.0.mlp.act.weight") is None and gguf_name("x") is None


def tiny_gpt2(seed=0, std=0.1, **overrides):
    """A random GPT2LMHeadModel (tied embeddings): weights N(0, std), LayerNorm weights 1 +
    N(0, 0.1)."""
    config = dict(vocab_size=VOCAB, n_positions=256, n_embd=64, n_layer=2, n_head=4)
    model = GPT2LMHeadModel(GPT2Config(**dict(config, **overrides)))
    rng = np.random.default_rng(seed)
    state = {name: from_numpy((1 + 0.1 * rng.standard_normal(t.shape)
                               if ".ln_" in name and name.endswith("weight")
                               else std * rng.standard_normal(t.shape)).astype(np.float32))
             for name, t in model.state_dict().items()}
    model.load_state_dict(state)
    model.tie_weights()
    return model.eval()


@pytest.mark.parametrize("qtype", ["F32", "Q8_0"])
def test_gpt2_is_written_as_llama_cpps_gpt2(qtype, tmp_path):
    model = tiny_gpt2(n_inner=96)
    path = write(model, tmp_path / "gpt2.gguf", qtype)
    metadata, tensors = file_metadata(path), file_tensors(path)
    assert metadata["general.architecture"] == "gpt2"
    assert {k: metadata[f"gpt2.{k}"] for k in (
        "context_length", "embedding_length", "block_count", "feed_forward_length",
        "attention.head_count")} == {"context_length": 256, "embedding_length": 64,
                                      "block_count": 2, "feed_forward_length": 96,
                                      "attention.head_count": 4}
    assert metadata["gpt2.attention.layer_norm_epsilon"] == pytest.approx(1e-5)
    layer = {f"blk.1.{n}.{k}" for n in ("attn_norm", "attn_qkv", "attn_output", "ffn_norm",
                                        "ffn_up", "ffn_down") for k in ("weight", "bias")}
    assert layer <= set(tensors) and "output.weight" not in tensors    # tied: token_embd
    assert {"token_embd.weight", "position_embd.weight", "output_norm.bias"} <= set(tensors)
    state = model.state_dict()
    for name, hf in (("blk.1.attn_qkv.bias", "transformer.h.1.attn.c_attn.bias"),
                     ("position_embd.weight", "transformer.wpe.weight"),   # F32 in every file
                     ("blk.0.ffn_norm.weight", "transformer.h.0.ln_2.weight")):
        assert tensors[name].tensor_type == T.F32
        np.testing.assert_array_equal(np.asarray(tensors[name].data).reshape(state[hf].shape),
                                      state[hf].numpy())
    qkv = tensors["blk.0.attn_qkv.weight"]
    assert qkv.tensor_type == getattr(T, qtype) and tuple(reversed(qkv.shape.tolist())) == \
        (192, 64)      # (out, in) rows of in values: nn.Linear's layout


def test_gpt2_names_are_the_loaders_inverse():
    for name in tiny_gpt2(tie_word_embeddings=False).state_dict():
        assert gpt2_hf_name(gguf_writer._gpt2_gguf_name(name)) == name, name
    assert gpt2_hf_name("blk.3.attn_qkv.bias") == "transformer.h.3.attn.c_attn.bias"
    assert gpt2_hf_name("blk.0.attn_q.weight") is None      # a LLaMA name: not GPT-2's


@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
@pytest.mark.parametrize("tied", [True, False])
def test_gpt2_files_load_back(tied, tmp_path):
    """A GPT-2 file (gradient's, or llama.cpp's converter's: the same names and keys) loads
    as a GPT2LMHeadModel: F32 gives the model's logits bit for bit, kept in blocks or not;
    Q8_0 kept in blocks gives the logits of its weights dequantized; the config, the
    tokenizer and greedy decoding (the captured decode step) come along."""
    model, tok = tiny_gpt2(seed=4, n_inner=96, tie_word_embeddings=tied), chatml_tokenizer()
    ids = prompts()
    path = write(model, tmp_path / "f32.gguf", "F32", tok)
    for quantized in (True, False):
        loaded, loaded_tok = load_gguf(path, quantized=quantized)
        assert isinstance(loaded, GPT2LMHeadModel)
        assert isinstance(loaded.transformer.h[1].mlp.c_fc, QuantizedLinear) == quantized
        np.testing.assert_array_equal(logits(loaded, ids), logits(model, ids))
    c, d = model.config, loaded.config
    for field in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner",
                  "layer_norm_epsilon", "tie_word_embeddings"):
        assert getattr(d, field) == getattr(c, field), field
    assert loaded_tok.encode(LC_TEXT) == tok.encode(LC_TEXT)
    prompt = tok.encode(LC_TEXT)
    greedy = np.asarray(load_gguf(path)[0].generate([prompt], max_new_tokens=8))
    assert greedy.tolist() == np.asarray(model.generate([prompt], max_new_tokens=8)).tolist()

    path = write(model, tmp_path / "q8.gguf", "Q8_0", tok)
    blocks, _ = load_gguf(path)
    dequantized, _ = load_gguf(path, quantized=False)
    assert isinstance(blocks.transformer.wte, QuantizedEmbedding)
    np.testing.assert_allclose(logits(blocks, ids), logits(dequantized, ids), rtol=0, atol=2e-5)
    assert np.abs(logits(blocks, ids) - logits(model, ids)).max() > 0    # Q8_0, not F32
    int8, _ = load_gguf(path, activations="int8")
    assert np.asarray(int8.generate([prompt], max_new_tokens=4)).shape == (1, len(prompt) + 4)


@pytest.mark.parametrize("case", sorted(CASES))
def test_f32_round_trip_gives_the_same_logits(case, tmp_path):
    model_type, overrides, arch = CASES[case]
    model = tiny(model_type, seed=sorted(CASES).index(case), **overrides)
    path = write(model, tmp_path / f"{case}.gguf")
    loaded, _ = load_gguf(path, quantized=False)
    ids = prompts()
    if case == "llama3_rope":   # one rotary frequency an ulp off (see below)
        np.testing.assert_allclose(logits(loaded, ids), logits(model, ids), rtol=0, atol=1e-5)
    else:
        np.testing.assert_array_equal(logits(loaded, ids), logits(model, ids))

    metadata, tensors = file_metadata(path), file_tensors(path)
    assert metadata["general.architecture"] == arch
    assert metadata["general.file_type"] == 0
    assert {t.tensor_type for t in tensors.values()} == {T.F32}
    c, d = model.config, loaded.config
    for field in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                  "num_attention_heads", "num_key_value_heads", "head_dim",
                  "max_position_embeddings", "rms_norm_eps", "rope_theta",
                  "tie_word_embeddings"):
        assert getattr(d, field) == getattr(c, field), field
    assert ("output.weight" in tensors) == (not c.tie_word_embeddings)
    assert (f"{arch}.attention.key_length" in metadata) == \
        (c.head_dim != c.hidden_size // c.num_attention_heads)
    if case == "llama_linear_rope":
        assert d.rope_scaling == {"rope_type": "linear", "factor": 4.0}
    # llama3 scaling travels as llama.cpp's per-frequency divisors of the unscaled
    # frequencies: the loader's division gives this model's back to within an ulp (here 15
    # of 16 exactly)
    assert ("rope_freqs.weight" in tensors) == (case == "llama3_rope")
    ours, theirs = model.model.rotary.inv_freq, loaded.model.rotary.inv_freq
    np.testing.assert_array_max_ulp(theirs, ours, maxulp=1)
    assert (ours != theirs).sum() <= (1 if case == "llama3_rope" else 0)


def test_written_then_loaded_then_written_is_the_same_file(tmp_path):
    """load_gguf then save_gguf reproduces the tensors and metadata (the tokenizer is found
    through the loaded model's name_or_path)."""
    first = write(tiny("llama", rope_scaling=LLAMA3), tmp_path / "a.gguf", "Q8_0", name="a")
    loaded, _ = load_gguf(first)
    second = save_gguf(loaded, tmp_path / "b.gguf", "Q8_0", name="a")
    a, b = file_tensors(first), file_tensors(second)
    assert list(a) == list(b)
    for name in a:
        assert a[name].tensor_type == b[name].tensor_type
        assert np.array_equal(np.asarray(a[name].data), np.asarray(b[name].data)), name
    assert file_metadata(first) == file_metadata(second)


# ----------------------------------------------------------------------------- quantized types
def expected_weight(w, qtype):
    """What the loader must give back for a float weight written as ``qtype``: gradient's
    block writer (or quantize_q4_k), then the gguf package's dequantizer."""
    blocks = quantize_q4_k(w) if qtype == "Q4_K" else quantize(w, qtype)
    return gguf.quants.dequantize(blocks, T[qtype]).reshape(w.shape)


def check_types_and_values(model, path, expected_types):
    """Each tensor of the file has the expected type, and the loaded weights (q/k put back
    in Hugging Face order by the loader) are the dequantized blocks of the original weights."""
    tensors = file_tensors(path)
    assert {n: t.tensor_type.name for n, t in tensors.items()} == expected_types
    loaded, _ = load_gguf(path, quantized=False)
    state, original = loaded.state_dict(), model.state_dict()
    for name, qtype in expected_types.items():
        w = original[hf_name(name)].numpy()
        expect = w if qtype == "F32" else expected_weight(w, qtype)
        assert np.array_equal(state[hf_name(name)].numpy(), expect), name
    return loaded


QUANT = dict(hidden_size=256, intermediate_size=288, num_attention_heads=4,
             num_key_value_heads=2, num_hidden_layers=1)


@pytest.mark.parametrize("qtype", [t for t in WRITABLE_TYPES if t != "F32"])
def test_quantized_files_hold_gradients_blocks(qtype, tmp_path):
    """Hidden size 256, MLP width 288 (9 blocks of 32, not a multiple of 256): Q4_K falls
    back to Q5_0 for ffn_down only, and with a warning."""
    model = tiny("llama", std=0.05, **QUANT)
    path = tmp_path / f"{qtype}.gguf"
    fallback = qtype == "Q4_K"
    with pytest.warns(UserWarning, match="Q5_0 instead of Q4_K") if fallback else \
            warnings.catch_warnings():
        if not fallback:
            warnings.simplefilter("error")    # no fallback, so no warning
        write(model, path, qtype)
    expected = {n: ("F32" if n.endswith("norm.weight") else
                    "Q5_0" if fallback and "ffn_down" in n else qtype)
                for n in map(gguf_name, model.state_dict())}
    check_types_and_values(model, path, expected)
    file_type = {"F16": 1, "BF16": 32, "Q8_0": 7, "Q4_0": 2, "Q4_1": 3, "Q5_0": 8, "Q5_1": 9,
                 "Q4_K": 14}[qtype]
    assert file_metadata(path)["general.file_type"] == file_type


def test_rows_no_block_fits_fall_back_to_f16(tmp_path):
    """Width 80 is not a multiple of 32: ffn_down is F16 whatever the type asked; 64-wide
    rows of a Q4_K request are Q5_0."""
    model = tiny("qwen2", intermediate_size=80)
    for qtype, wide in (("Q8_0", "Q8_0"), ("Q4_K", "Q5_0")):
        path = tmp_path / f"{qtype}.gguf"
        with pytest.warns(UserWarning, match="F16 instead of " + qtype):
            write(model, path, qtype)
        expected = {n: ("F32" if model.state_dict()[hf_name(n)].ndim == 1 else
                        "F16" if "ffn_down" in n else wide)
                    for n in map(gguf_name, model.state_dict())}
        check_types_and_values(model, path, expected)


def test_tensor_types_override_per_tensor(tmp_path):
    model = tiny("llama", std=0.05, **QUANT)
    with pytest.warns(UserWarning, match="1 tensor.*Q5_0 instead of Q4_K.*blk.0.ffn_down"):
        path = write(model, tmp_path / "mixed.gguf", "Q4_0",
                     tensor_types={"output.weight": "q8_0", "token_embd.weight": T.F16,
                                   "blk.*.ffn_*": "Q4_K"})
    types = {n: t.tensor_type.name for n, t in file_tensors(path).items()}
    assert types["output.weight"] == "Q8_0" and types["token_embd.weight"] == "F16"
    assert types["blk.0.ffn_gate.weight"] == "Q4_K" and types["blk.0.ffn_down.weight"] == "Q5_0"
    assert types["blk.0.attn_q.weight"] == "Q4_0" and types["blk.0.ffn_norm.weight"] == "F32"


# ----------------------------------------------------------------------------- quantized models
@pytest.mark.parametrize("tied", [False, True])
def test_quantized_layers_are_copied_when_the_type_matches(tied, tmp_path):
    """load_gguf keeps the file's Q4_1 blocks (projections, embedding, head): writing Q4_1
    again copies them byte for byte (q/k rows included), so the new file is the old one;
    writing Q8_0 requantizes the dequantized weights."""
    model = tiny("llama", std=0.05, tie_word_embeddings=tied, **QUANT)
    first = write(model, tmp_path / "q4_1.gguf", "Q4_1")
    quantized, _ = load_gguf(first, quantized=True)
    block_layers = {name: m for name, m in quantized.named_modules()
                    if isinstance(m, (QuantizedLinear, QuantizedEmbedding))}
    assert "model.layers.0.self_attn.q_proj" in block_layers
    assert {m.qtype.name for m in block_layers.values()} == {"Q4_1"}

    again = write(quantized, tmp_path / "again.gguf", "Q4_1")
    a, b = file_tensors(first), file_tensors(again)
    assert list(a) == list(b) and ("output.weight" in a) == (not tied)
    for name in a:
        assert np.array_equal(np.asarray(a[name].data), np.asarray(b[name].data)), name

    requantized = write(quantized, tmp_path / "q8_0.gguf", "Q8_0")
    loaded, _ = load_gguf(requantized, quantized=False)
    for name, module in block_layers.items():
        if name == "lm_head" and tied:
            continue
        expect = expected_weight(module.dequantize().numpy(), "Q8_0")
        assert np.array_equal(loaded.get_parameter(f"{name}.weight").detach().numpy(), expect)


def test_foreign_blocks_are_copied_not_requantized(tmp_path):
    """Blocks our quantizer would not have written (another quantizer's: here random Q4_K
    blocks) are kept as they are; quantizing their dequantized values again would change them."""
    from gradient.models.gguf_loader import unpermute_qk
    model = tiny("llama", std=0.05, **QUANT)
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (256, 144), dtype=np.uint8)
    blocks[:, :4] = rng.uniform(0.001, 0.01, (256, 2)).astype(np.float16).view(np.uint8)
    attn = model.model.layers[0].self_attn
    attn.q_proj = QuantizedLinear.from_blocks(blocks, "Q4_K", 256, 256)
    with pytest.warns(UserWarning, match="Q5_0 instead of Q4_K"):   # ffn_down's 288
        path = write(model, tmp_path / "q4_k.gguf", "Q4_K")
    stored = np.asarray(file_tensors(path)["blk.0.attn_q.weight"].data).reshape(256, 144)
    assert np.array_equal(unpermute_qk(stored, 4), blocks)
    assert not np.array_equal(quantize_q4_k(attn.q_proj.dequantize().numpy()), blocks)


def test_weight_only_layers_are_dequantized(tmp_path):
    model = tiny("qwen2")
    int8 = quantize_model(model, "int8")
    path = write(int8, tmp_path / "int8.gguf", "F32")
    loaded, _ = load_gguf(path, quantized=False)
    layers = [(n, m) for n, m in int8.named_modules() if isinstance(m, WeightOnlyLinear)]
    assert len(layers) == 14
    for name, module in layers:
        assert np.array_equal(loaded.get_parameter(f"{name}.weight").detach().numpy(),
                              module.dequantize().numpy())
        if module.bias is not None:
            assert np.array_equal(loaded.get_parameter(f"{name}.bias").detach().numpy(),
                                  module.bias.detach().numpy())
    np.testing.assert_allclose(logits(loaded, prompts()), logits(int8, prompts()), atol=1e-4)


# ----------------------------------------------------------------------------- tokenizer
TEXTS = held_out_texts() + MULTILINGUAL + [
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "text<|im_end|>more 12345 text <|endoftext|>", "", " ", "x <tool> y<tool>z"]


def backend_with(pre_tokenizer, ignore_merges=False):
    """The tests' byte-level BPE with another pre-tokenizer (the merges stay valid: all are
    inside GPT-2 words, which every one of these splits keeps or cuts further)."""
    from tokenizers import Tokenizer as Backend
    spec = json.loads(byte_level_backend().to_str())
    spec["pre_tokenizer"] = pre_tokenizer
    spec["model"]["ignore_merges"] = ignore_merges
    return Backend.from_str(json.dumps(spec))


def byte_level(use_regex):
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
            "use_regex": use_regex}


def split(regex):
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated",
            "invert": False}


PRE_TOKENIZERS = {   # llama.cpp name: the `tokenizers` pre-tokenizer that behaves as it
    "gpt-2": (byte_level(True), False),
    "smollm": ({"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, byte_level(True)]}, False),
    "llama-bpe": ({"type": "Sequence", "pretokenizers": [split(_LLAMA3_REGEX),
                                                         byte_level(False)]}, True),
    "qwen2": ({"type": "Sequence", "pretokenizers": [split(_QWEN2_REGEX),
                                                     byte_level(False)]}, False),
}


@pytest.mark.parametrize("pre", sorted(PRE_TOKENIZERS))
def test_tokenizer_round_trip(pre, tmp_path):
    from tokenizers import processors
    backend = backend_with(*PRE_TOKENIZERS[pre])
    if pre == "llama-bpe":     # Llama 3 style: BOS added by the post-processor
        bos = "<|begin_of_text|>"
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
            special_tokens=[(bos, backend.token_to_id(bos))])
        tok = Tokenizer(backend, bos_token=bos, eos_token="<|eot_id|>",
                        chat_template={"default": CHATML_TEMPLATE, "tool_use": "{{ 'tools' }}"})
    else:
        tok = chatml_tokenizer(backend)
    tok.add_tokens(["<tool>"])                 # a user-defined (not special) added token
    model = tiny("llama", vocab_size=len(tok) + 3)   # embedding rows past the vocabulary
    path = write(model, tmp_path / "tok.gguf", tokenizer=tok)

    metadata = file_metadata(path)
    assert metadata["tokenizer.ggml.pre"] == pre and metadata["tokenizer.ggml.model"] == "gpt2"
    tokens, types = metadata["tokenizer.ggml.tokens"], metadata["tokenizer.ggml.token_type"]
    assert len(tokens) == len(tok) + 3 and tokens[-1] == f"[PAD{len(tok) + 2}]"
    user_defined, unused, control, normal = 4, 5, 3, 1     # llama.cpp's token types
    assert types[tok.convert_tokens_to_ids("<tool>")] == user_defined and types[-1] == unused
    assert types[tok.bos_token_id] == control
    assert types[tok.convert_tokens_to_ids("Ġthe")] == normal
    assert metadata["tokenizer.ggml.add_bos_token"] == (pre == "llama-bpe")

    back = load_gguf_tokenizer(path)
    for text in TEXTS:
        for special in (False, True):
            assert back.encode(text, add_special_tokens=special) == \
                tok.encode(text, add_special_tokens=special), (text, special)
        assert back.decode(tok.encode(text)) == tok.decode(tok.encode(text))
    assert (back.bos_token, back.eos_token, back.pad_token) == \
        (tok.bos_token, tok.eos_token, tok.pad_token)
    assert back.chat_template == tok.chat_template


def test_unsupported_tokenizers_raise(tmp_path):
    from tokenizers import Tokenizer as Backend
    from tokenizers import models, pre_tokenizers
    model = tiny("llama")
    sentencepiece = Backend(models.BPE({"<unk>": 0, "▁a": 1, "▁": 2, "a": 3}, [("▁", "a")],
                                       unk_token="<unk>", byte_fallback=True))
    sentencepiece.pre_tokenizer = pre_tokenizers.Metaspace()
    wordpiece = Backend(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    whitespace = backend_with({"type": "Whitespace"})
    prefix_space = backend_with(dict(byte_level(True), add_prefix_space=True))
    cases = [(sentencepiece, "BPE with byte fallback"), (wordpiece, "WordPiece"),
             (whitespace, "Whitespace"), (prefix_space, "add_prefix_space")]
    for backend, message in cases:
        with pytest.raises(NotImplementedError, match=message):
            save_gguf(model, tmp_path / "x.gguf", "F32", Tokenizer(backend))
    with pytest.raises(TokenizerError, match="ids up to 699, but the model's embedding has 600"):
        save_gguf(tiny("llama", vocab_size=600), tmp_path / "x.gguf", "F32", chatml_tokenizer())
    with pytest.raises(TokenizerError, match="no tokenizer given"):
        save_gguf(model, tmp_path / "x.gguf", "F32")
    assert not os.listdir(tmp_path)


def test_a_tokenizer_that_reads_back_differently_is_refused(tmp_path, monkeypatch):
    """The check before writing: a tokenizer whose GGUF form would split text differently
    (here: a pre-tokenizer mapped to the wrong llama.cpp name) is refused."""
    monkeypatch.setitem(gguf_writer._PRE_NAMES, ("bytelevel+regex",), "llama-bpe")
    with pytest.raises(TokenizerError, match="cannot be written faithfully"):
        write(tiny("llama"), tmp_path / "x.gguf")


def test_the_tokenizer_is_found_next_to_the_model(tmp_path):
    """tokenizer=None: the checkpoint directory (what gradient.hub.load sets name_or_path to)
    or the .gguf file the model was loaded from."""
    tok = chatml_tokenizer()
    tok.save_pretrained(tmp_path / "checkpoint")
    model = tiny("llama")
    model.name_or_path = os.fspath(tmp_path / "checkpoint")
    path = save_gguf(model, tmp_path / "from_dir.gguf", "F32")
    assert file_metadata(path)["general.name"] == "checkpoint"
    assert load_gguf_tokenizer(path).encode(TEXTS[0]) == tok.encode(TEXTS[0])


def test_weights_without_a_tokenizer(tmp_path):
    path = save_gguf(tiny("llama"), tmp_path / "w.gguf", "F32", tokenizer=False)
    metadata = file_metadata(path)
    assert not [k for k in metadata if k.startswith("tokenizer.")]
    assert metadata["llama.vocab_size"] == VOCAB and metadata["general.name"] == "llama"


# ----------------------------------------------------------------------------- errors
def test_unsupported_types_and_models(tmp_path):
    model = tiny("llama")
    for qtype in ("Q6_K", "int8", 99, T.Q2_K):
        with pytest.raises(UnsupportedQuantTypeError, match="F32, F16, BF16, Q8_0, Q4_0"):
            write(model, tmp_path / "x.gguf", qtype)
    with pytest.raises(UnsupportedQuantTypeError, match=r"tensor_types\['output.weight'\]"):
        write(model, tmp_path / "x.gguf", tensor_types={"output.weight": "Q3_K"})
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=1,
                                      n_head=2, activation_function="relu"))
    with pytest.raises(NotImplementedError, match="llama.cpp's gpt2 uses GELU"):
        write(gpt2, tmp_path / "x.gguf")
    with pytest.raises(UnknownArchitectureError, match="Linear cannot be written to GGUF; "
                                                       "supported: LlamaForCausalLM"):
        write(gradient.nn.Linear(2, 2), tmp_path / "x.gguf")
    with pytest.raises(TypeError, match="expected a gradient model"):
        write({"model.embed_tokens.weight": 0}, tmp_path / "x.gguf")
    with pytest.raises(NotImplementedError, match="mlp_bias"):
        write(tiny("llama", mlp_bias=True), tmp_path / "x.gguf")
    with pytest.raises(NotImplementedError, match="only llama files have rope_freqs"):
        write(tiny("qwen2", rope_scaling=LLAMA3), tmp_path / "x.gguf")
    with pytest.raises(NotImplementedError, match="llama.cpp uses SiLU"):
        write(tiny("llama", hidden_act="gelu"), tmp_path / "x.gguf")
    with pytest.warns(UserWarning, match="no sliding attention window"):
        write(tiny("qwen2", use_sliding_window=True, sliding_window=8, max_window_layers=0),
              tmp_path / "x.gguf")
    os.remove(tmp_path / "x.gguf")
    assert not os.listdir(tmp_path)


def test_without_the_gguf_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gguf", None)     # `import gguf` raises ImportError
    with pytest.raises(ImportError, match=r'pip install gguf \(or pip install "gradient\[gguf\]"'):
        write(tiny("llama"), tmp_path / "x.gguf")
    assert not os.listdir(tmp_path)


def test_a_failed_write_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.gguf"
    write(tiny("llama", seed=1), path, "Q8_0")
    before = path.read_bytes()
    calls = []

    def failing(weight, qtype):
        calls.append(qtype)
        if len(calls) == 5:
            raise MemoryError("simulated failure in the middle of the tensors")
        return real(weight, qtype)

    real = gguf_writer.quantize_blocks
    monkeypatch.setattr(gguf_writer, "quantize_blocks", failing)
    with pytest.raises(MemoryError, match="simulated"):
        write(tiny("llama", seed=2), path, "Q8_0")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.gguf"]
    calls.clear()
    with pytest.raises(MemoryError):
        write(tiny("llama", seed=2), tmp_path / "new.gguf", "Q8_0")
    assert os.listdir(tmp_path) == ["model.gguf"]


# ----------------------------------------------------------------------------- llama.cpp
# hidden 256 and head_dim 64: the smallest shapes for which llama.cpp's kernels are all happy
LC = dict(vocab_size=VOCAB, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
          bos_token_id=None, eos_token_id=None)
LC_CASES = {"llama": ("llama", {}), "qwen2": ("qwen2", {"tie_word_embeddings": True})}
LC_TEXT = "Once upon a time, in a small village by the sea, there lived 42 old fishermen who"


def llama_cpp_run(path, ids, greedy=0):
    """llama.cpp's logits at every position of ``ids`` (float32 KV cache, no flash
    attention), and ``greedy`` argmax tokens after them."""
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(os.fspath(path), n_ctx=128, n_batch=128, n_threads=2, seed=0,
                          logits_all=True, flash_attn=False, type_k=0, type_v=0, verbose=False)
    try:
        llm.eval(ids)
        scores = np.array(llm.scores[:len(ids)], dtype=np.float32)
        tokens = []
        for _ in range(greedy):
            tokens.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
            llm.eval(tokens[-1:])
        texts = {t: llm.tokenize(t.encode(), add_bos=False, special=True) for t in TEXTS[:12]}
        return scores, tokens, texts
    finally:
        llm.close()


@pytest.fixture(scope="module")
def lc_models():
    return {name: tiny(t, seed=3, std=0.1, **dict(LC, **o)) for name, (t, o) in LC_CASES.items()}


@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
@pytest.mark.parametrize("case", sorted(LC_CASES))
def test_llama_cpp_runs_the_f32_file(case, lc_models, tmp_path):
    pytest.importorskip("llama_cpp")
    model, tok = lc_models[case], chatml_tokenizer()
    path = write(model, tmp_path / "f32.gguf", "F32", tok)
    ids = tok.encode(LC_TEXT)
    theirs, greedy, tokenized = llama_cpp_run(path, ids, greedy=12)
    ours = logits(model, [ids])[0]
    assert np.abs(theirs - ours).max() < 1e-3
    out = model.generate([ids], max_new_tokens=12)
    assert np.asarray(out)[0, len(ids):].tolist() == greedy
    for text, got in tokenized.items():     # llama.cpp reads the written tokenizer as we do
        assert got == tok.encode(text, add_special_tokens=False), text


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_K"])
@pytest.mark.parametrize("case", sorted(LC_CASES))
def test_llama_cpp_runs_quantized_files(case, qtype, lc_models, tmp_path):
    """Against our float32 math on the file's own (dequantized) weights: llama.cpp quantizes
    the activations to 8 bits in these products (per 32 values for Q8_0, per 256 for Q4_K:
    coarser), which moves logits of about 5 by up to ~0.3 here, so: cosine similarity, and
    the same top-1 wherever ours is not a near tie."""
    pytest.importorskip("llama_cpp")
    tok = chatml_tokenizer()
    path = write(lc_models[case], tmp_path / f"{qtype}.gguf", qtype, tok)
    dequantized, _ = load_gguf(path, quantized=False)
    ids = tok.encode(LC_TEXT)
    theirs, _, _ = llama_cpp_run(path, ids)
    ours = logits(dequantized, [ids])[0]
    norms = np.linalg.norm(theirs, axis=-1) * np.linalg.norm(ours, axis=-1)
    cosine = (theirs * ours).sum(-1) / norms
    mean, least = (0.999, 0.997) if qtype == "Q8_0" else (0.998, 0.995)
    assert cosine.mean() > mean and cosine.min() > least, cosine
    top2 = np.sort(ours, axis=-1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 0.5
    assert clear.sum() >= 5
    assert np.array_equal(theirs.argmax(-1)[clear], ours.argmax(-1)[clear])


def test_llama_cpp_runs_a_gpt2_file(tmp_path):
    """GPT-2 written as llama.cpp's gpt2 architecture: its logits are ours (its GELU reads a
    float16 table, hence the bound) and its greedy tokens too; in Q8_0 as close as the LLaMA
    files are."""
    pytest.importorskip("llama_cpp")
    model, tok = tiny_gpt2(seed=3), chatml_tokenizer()
    ids = tok.encode(LC_TEXT)
    ours = logits(model, [ids])[0]
    theirs, greedy, _ = llama_cpp_run(write(model, tmp_path / "f32.gguf", "F32", tok), ids,
                                      greedy=12)
    assert np.abs(theirs - ours).max() < 5e-3
    assert np.asarray(model.generate([ids], max_new_tokens=12))[0, len(ids):].tolist() == greedy
    theirs, _, _ = llama_cpp_run(write(model, tmp_path / "q8.gguf", "Q8_0", tok), ids)
    cosine = (theirs * ours).sum(-1) / (np.linalg.norm(theirs, axis=-1) *
                                         np.linalg.norm(ours, axis=-1))
    assert cosine.min() > 0.997, cosine


def test_llama_cpp_catches_a_wrong_qk_order(lc_models, tmp_path, monkeypatch):
    """The q/k row order is checked by llama.cpp alone: a writer and a loader that agreed on
    the wrong order (each using the other's function) would still round-trip exactly through
    gradient, but llama.cpp's logits are far off."""
    pytest.importorskip("llama_cpp")
    from gradient.models import gguf_loader
    model, tok = lc_models["llama"], chatml_tokenizer()
    ids = tok.encode(LC_TEXT)
    monkeypatch.setattr(gguf_writer, "permute_qk", gguf_loader.unpermute_qk)
    monkeypatch.setattr(gguf_loader, "unpermute_qk", gguf_loader.permute_qk)
    path = write(model, tmp_path / "wrong.gguf", "F32", tok)
    np.testing.assert_array_equal(logits(load_gguf(path, quantized=False)[0], [ids]),
                                  logits(model, [ids]))
    theirs, _, _ = llama_cpp_run(path, ids)
    assert np.abs(theirs - logits(model, [ids])[0]).max() > 0.1
