"""gradient.models.gguf_loader: GGUF files to a LLaMA-family model and tokenizer.

The model tests take a small random transformers model, convert it to GGUF with the writer below
-- which renames tensors and permutes the query/key rows as llama.cpp's convert_hf_to_gguf.py
does -- load the file, and compare logits with transformers. A wrong (or missing) inverse
permutation changes the rotary embedding and fails them (checked below). The real SmolLM2 file,
when present, must continue "The capital of France is" with "Paris", and its tokenizer must
agree with an independent byte-level BPE split the way llama.cpp splits text.
"""

import json
import math
import mmap

import numpy as np
import pytest
import regex
import torch
import transformers

import gradient
from gradient.errors import FileFormatError, UnknownArchitectureError
from gradient.models import gguf_loader
from gradient.quant import QuantizedLinear
from gradient.models.gguf_loader import (config_from_gguf, hf_name, load_gguf, load_gguf_tokenizer,
                                         permute_qk, tokenizer_from_gguf, unpermute_qk)
from gradient.tokenizers import ByteLevelBPE, render_chat_template

from ..devices import DEVICES
from ..quant.gguf_fixtures import gguf, requires_smollm2, smollm2_path, write_gguf
from ..tokenizers.builders import CHATML_TEMPLATE, SPECIALS, byte_level_backend
from ..tokenizers.corpus import MULTILINGUAL, held_out_texts, training_text

V = gguf.GGUFValueType
T = gguf.GGMLQuantizationType
NORMAL, CONTROL, USER_DEFINED, BYTE = 1, 3, 4, 6


# ----------------------------------------------------------------------------- the writer
def llama_cpp_permute(w, n_head, n_head_kv=None):
    """convert_hf_to_gguf.py's LlamaModel.permute: q with (n_head, n_head), k with
    (n_head, n_head_kv)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


GGUF_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
              "lm_head.weight": "output.weight"}
LAYER_NAMES = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
               "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
               "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
               "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
               "mlp.down_proj": "ffn_down"}


def gguf_name(name):
    if name in GGUF_NAMES:
        return GGUF_NAMES[name]
    _, _, layer, rest = name.split(".", 3)
    module, kind = rest.rsplit(".", 1)
    return f"blk.{layer}.{LAYER_NAMES[module]}.{kind}"


def tokenizer_kv(kind="gpt2", pre="smollm", extra=()):
    """tokenizer.ggml.* of a small byte-level BPE (the tokenizer tests' one), ChatML template."""
    backend = json.loads(byte_level_backend().to_str())
    vocab = backend["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [" ".join(m) if isinstance(m, list) else m for m in backend["model"]["merges"]]
    types = [CONTROL if t in SPECIALS else NORMAL for t in tokens]
    kv = [("tokenizer.ggml.model", kind, V.STRING),
          ("tokenizer.ggml.tokens", tokens, V.ARRAY, V.STRING),
          ("tokenizer.ggml.token_type", types, V.ARRAY, V.INT32),
          ("tokenizer.ggml.merges", merges, V.ARRAY, V.STRING),
          ("tokenizer.ggml.bos_token_id", vocab["<|im_start|>"], V.UINT32),
          ("tokenizer.ggml.eos_token_id", vocab["<|im_end|>"], V.UINT32),
          ("tokenizer.ggml.padding_token_id", vocab["<|im_end|>"], V.UINT32),
          ("tokenizer.ggml.add_bos_token", False, V.BOOL),
          ("tokenizer.chat_template", CHATML_TEMPLATE, V.STRING)]
    if pre is not None:
        kv.append(("tokenizer.ggml.pre", pre, V.STRING))
    return kv + list(extra), tokens


VOCAB = len(tokenizer_kv()[1])


def hf_to_gguf(hf, path, arch="llama", qtype=T.F32, extra_kv=(), extra_tensors=(), drop=()):
    """Convert a transformers model to GGUF as llama.cpp does (names, q/k permutation for
    llama, F32 norms, matrices in ``qtype``)."""
    c = hf.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    rope = c.rope_parameters or {}
    kv = [(f"{arch}.context_length", c.max_position_embeddings, V.UINT32),
          (f"{arch}.embedding_length", c.hidden_size, V.UINT32),
          (f"{arch}.feed_forward_length", c.intermediate_size, V.UINT32),
          (f"{arch}.block_count", c.num_hidden_layers, V.UINT32),
          (f"{arch}.attention.head_count", c.num_attention_heads, V.UINT32),
          (f"{arch}.attention.head_count_kv", c.num_key_value_heads, V.UINT32),
          (f"{arch}.rope.freq_base", rope.get("rope_theta", 10000.0), V.FLOAT32),
          (f"{arch}.attention.layer_norm_rms_epsilon", c.rms_norm_eps, V.FLOAT32),
          (f"{arch}.rope.dimension_count", head_dim, V.UINT32),
          (f"{arch}.vocab_size", c.vocab_size, V.UINT32)]
    if arch == "qwen3":
        kv.append((f"{arch}.attention.key_length", head_dim, V.UINT32))
    tensors = []
    for name, t in hf.state_dict().items():
        if name == "lm_head.weight" and c.tie_word_embeddings:
            continue
        w = t.detach().float().numpy()
        if arch == "llama" and ".q_proj." in name:
            w = llama_cpp_permute(w, c.num_attention_heads, c.num_attention_heads)
        elif arch == "llama" and ".k_proj." in name:
            w = llama_cpp_permute(w, c.num_attention_heads, c.num_key_value_heads)
        if gguf_name(name) not in drop:
            tensors.append((gguf_name(name), w, qtype if w.ndim == 2 else T.F32))
    tok_kv, _ = tokenizer_kv()
    replaced = {key for key, *_ in extra_kv}   # extra keys replace written ones (no duplicates)
    kv = [item for item in kv + tok_kv if item[0] not in replaced] + list(extra_kv)
    return write_gguf(path, arch, kv, tensors + list(extra_tensors))


def randomize_(model, seed):
    """Weights N(0, 0.2) and norm weights 1 + N(0, 0.1): logits far from uniform."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            p.copy_(1 + 0.1 * noise if "norm" in name else 0.2 * noise)


SMALL = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
             rms_norm_eps=1e-5, bos_token_id=None, eos_token_id=None, pad_token_id=None)
LLAMA3 = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
CASES = {
    "llama": ("llama", {}),
    "llama_tied": ("llama", {"tie_word_embeddings": True, "num_key_value_heads": 4}),
    "llama_linear": ("llama", {"rope_parameters": {"rope_type": "linear", "factor": 4.0,
                                                   "rope_theta": 10000.0}}),
    "llama_llama3": ("llama", {"rope_parameters": LLAMA3}),
    "qwen2": ("qwen2", {"tie_word_embeddings": True}),
    "qwen3": ("qwen3", {"head_dim": 32}),
}


def llama3_rope_freqs(c):
    """convert_hf_to_gguf.py's rope_freqs.weight for llama3 scaling: one divisor per frequency."""
    r = c.rope_parameters
    dim = c.hidden_size // c.num_attention_heads
    freqs = 1.0 / (r["rope_theta"] ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    low_wavelen = r["original_max_position_embeddings"] / r["low_freq_factor"]
    high_wavelen = r["original_max_position_embeddings"] / r["high_freq_factor"]
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1)
        elif wavelen > low_wavelen:
            factors.append(r["factor"])
        else:
            smooth = ((r["original_max_position_embeddings"] / wavelen - r["low_freq_factor"])
                      / (r["high_freq_factor"] - r["low_freq_factor"]))
            factors.append(1 / ((1 - smooth) / r["factor"] + smooth))
    return np.array(factors, dtype=np.float32)


class Converted:
    """A random transformers model, its GGUF conversion and ours loaded from it."""

    def __init__(self, name, root, qtype=T.F32):
        model_type, overrides = CASES[name]
        config = transformers.AutoConfig.for_model(model_type, **dict(SMALL, **overrides))
        self.hf = transformers.AutoModelForCausalLM.from_config(config).eval()
        randomize_(self.hf, seed=sorted(CASES).index(name))
        extra_kv, extra_tensors = [], []
        if name == "llama_linear":
            extra_kv = [("llama.rope.scaling.type", "linear", V.STRING),
                        ("llama.rope.scaling.factor", 4.0, V.FLOAT32)]
        if name == "llama_llama3":
            extra_tensors = [("rope_freqs.weight", llama3_rope_freqs(config), T.F32)]
        self.path = hf_to_gguf(self.hf, root / f"{name}-{qtype.name}.gguf", model_type, qtype,
                               extra_kv, extra_tensors)
        self.ours, self.tokenizer = load_gguf(self.path, quantized=False)

    def hf_logits(self, ids):
        with torch.no_grad():
            return self.hf(torch.as_tensor(ids)).logits.float().numpy()

    def our_logits(self, ids, model=None, device="cpu"):
        with gradient.no_grad():
            return (model or self.ours)(gradient.tensor(np.asarray(ids), device=device)
                                        ).logits.numpy()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf_models")
    cache = {}

    def get(name, qtype=T.F32):
        if (name, qtype) not in cache:
            cache[name, qtype] = Converted(name, root, qtype)
        return cache[name, qtype]
    return get


def prompts(batch=2, length=12, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, (batch, length))


# ----------------------------------------------------------------------------- model
def test_names_and_permutation_helpers():
    assert hf_name("blk.7.attn_q.weight") == "model.layers.7.self_attn.q_proj.weight"
    assert hf_name("blk.0.ffn_down.weight") == "model.layers.0.mlp.down_proj.weight"
    assert hf_name("blk.1.attn_k.bias") == "model.layers.1.self_attn.k_proj.bias"
    assert hf_name("output.weight") == "lm_head.weight"
    assert hf_name("token_embd.weight") == "model.embed_tokens.weight"
    assert hf_name("blk.0.ffn_gate_exps.weight") is None and hf_name("rope_freqs.weight") is None
    w = np.arange(4 * 8 * 3).reshape(32, 3)
    assert np.array_equal(permute_qk(w, 4), llama_cpp_permute(w, 4))
    assert np.array_equal(unpermute_qk(llama_cpp_permute(w, 4), 4), w)
    assert np.array_equal(unpermute_qk(llama_cpp_permute(w[:, 0], 4), 4), w[:, 0])   # biases
    assert not np.array_equal(unpermute_qk(w, 4), w)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_logits_match_transformers(converted, name, device):
    pair = converted(name)
    assert set(pair.ours.state_dict()) == set(pair.hf.state_dict())
    model = pair.ours if device == "cpu" else load_gguf(pair.path, quantized=False)[0].to(device)
    ids = prompts()
    ours, ref = pair.our_logits(ids, model, device), pair.hf_logits(ids)
    assert ours.shape == ref.shape == (2, 12, VOCAB)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-4)


def test_a_wrong_permutation_is_caught(converted, monkeypatch):
    """The logits test fails when the q/k rows are not put back (or put back wrongly)."""
    pair = converted("llama")
    ref = pair.hf_logits(prompts())
    for wrong in (lambda w, n: w, lambda w, n: llama_cpp_permute(w, n)):
        monkeypatch.setattr(gguf_loader, "unpermute_qk", wrong)
        model, _ = load_gguf(pair.path, quantized=False)
        assert np.abs(pair.our_logits(prompts(), model) - ref).max() > 0.1


def test_config_from_metadata(converted):
    c = converted("llama").ours.config
    assert (c.model_type, c.vocab_size, c.hidden_size, c.intermediate_size) == ("llama", VOCAB, 64, 96)
    assert (c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim) == (2, 4, 2, 16)
    assert (c.max_position_embeddings, c.rope_theta, c.rms_norm_eps) == (128, 10000.0, 1e-5)
    assert not c.tie_word_embeddings and c.rope_scaling is None
    assert converted("llama_tied").ours.config.tie_word_embeddings
    tied = converted("llama_tied").ours
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    assert converted("llama_linear").ours.config.rope_scaling == {"rope_type": "linear", "factor": 4.0}
    assert converted("qwen3").ours.config.head_dim == 32


@pytest.mark.parametrize("qtype", [T.Q8_0, T.Q4_K])
def test_quantized_weights_are_dequantized_and_unpermuted(converted, qtype, tmp_path):
    """Each loaded matrix is gguf's dequantization of the stored one, rows put back in HF order
    (undone here by indexing, independently of unpermute_qk)."""
    if qtype == T.Q4_K:
        # gguf cannot quantize Q4_K, and its 256-value blocks need wider rows: a model of
        # hidden size 256 whose q and k are random Q4_K blocks
        config = transformers.LlamaConfig(**dict(SMALL, hidden_size=256, intermediate_size=256,
                                                 num_hidden_layers=1))
        hf = transformers.LlamaForCausalLM(config).eval()
        rng = np.random.default_rng(0)
        stored = {}
        for name, rows in (("blk.0.attn_q.weight", 256), ("blk.0.attn_k.weight", 128)):
            raw = rng.integers(0, 256, (rows, 144), dtype=np.uint8)
            raw[:, :4] = rng.uniform(0.001, 0.01, (rows, 2)).astype(np.float16).view(np.uint8)
            stored[name] = (raw, T.Q4_K)
        path = hf_to_gguf(hf, tmp_path / "q4k.gguf", drop=set(stored),
                          extra_tensors=[(n, raw, t) for n, (raw, t) in stored.items()])
        model, _ = load_gguf(path, quantized=False)
    else:
        pair = converted("llama", qtype)
        model = pair.ours
        reader = gguf.GGUFReader(pair.path)
        stored = {t.name: (t.data, t.tensor_type) for t in reader.tensors}
    state = model.state_dict()
    c = model.config
    for name, (data, ttype) in stored.items():
        expected = gguf.quants.dequantize(data, ttype)
        target = hf_name(name)
        if ".attn_q." in name or ".attn_k." in name:
            n = c.num_attention_heads if ".attn_q." in name else c.num_key_value_heads
            rows = llama_cpp_permute(np.arange(expected.shape[0]), n)
            unpermuted = np.empty_like(expected)
            unpermuted[rows] = expected
            expected = unpermuted
        assert np.array_equal(state[target].numpy(), expected), name
    if qtype == T.Q8_0:   # and the model still computes nearly the same logits
        ours, ref = pair.our_logits(prompts()), pair.hf_logits(prompts())
        assert np.abs(ours - ref).mean() < 0.05 * np.abs(ref).mean()


def test_dtype_and_generation_settings(converted):
    pair = converted("llama")
    model, tok = load_gguf(pair.path, dtype="bfloat16", quantized=False)
    assert {p.dtype for p in model.parameters()} == {gradient.bfloat16}
    assert model.name_or_path == pair.path and not model.training
    assert model.generation_config == {"bos_token_id": tok.bos_token_id,
                                       "eos_token_id": [tok.eos_token_id]}
    assert model.config.eos_token_id == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")


def test_greedy_generation_matches_transformers(converted):
    pair = converted("llama")
    ids = prompts(1, 5, seed=3)
    ours = pair.ours.generate(ids, max_new_tokens=6)
    ref = pair.hf.generate(torch.as_tensor(ids), max_new_tokens=6, do_sample=False,
                           attention_mask=torch.ones(1, 5, dtype=torch.long))
    assert np.asarray(ours).tolist() == ref.tolist()


def test_hub_load_and_the_cli(converted, capsys):
    pair = converted("llama")
    model, tok = gradient.hub.load(pair.path)
    assert type(model).__name__ == "LlamaForCausalLM" and tok.eos_token == "<|im_end|>"
    assert load_gguf_tokenizer(pair.path).encode("hi there") == tok.encode("hi there")
    from gradient import cli
    rc = cli.main(["generate", pair.path, "Hello", "--max-new-tokens", "3", "--temperature", "0"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.startswith("Hello") and "loaded LlamaForCausalLM" in err
    rc = cli.main(["generate", pair.path, "Hello", "--max-new-tokens", "3", "--temperature", "0",
                   "--activations", "int8"])
    assert rc == 0 and capsys.readouterr().out.startswith("Hello")


def test_the_default_computes_exactly_and_int8_activations_as_llama_cpp(converted):
    pair = converted("llama")
    exact, _ = gradient.hub.load(pair.path)      # float32 products, float32 cache
    assert {m.activations for m in exact.modules() if isinstance(m, QuantizedLinear)} == {
        "float32"}
    assert exact.new_cache(1, 4).keys[0].dtype is gradient.float32
    model, _ = gradient.hub.load(pair.path, activations="int8")   # llama.cpp's numerics
    assert {m.activations for m in model.modules() if isinstance(m, QuantizedLinear)} == {"int8"}
    assert model.kv_cache_dtype is gradient.float16
    assert model.new_cache(1, 4).keys[0].dtype is gradient.float16
    wide, _ = gradient.hub.load(pair.path, activations="int8", kv_cache_dtype="float32")
    assert wide.new_cache(1, 4).keys[0].dtype is gradient.float32
    # a BF16 file's matrices (the tied head too) take activations rounded to bfloat16, as
    # llama.cpp's product for them does; exact float32 ones by default
    bf16 = converted("llama", T.BF16)
    model, _ = gradient.hub.load(bf16.path, activations="int8")
    assert {m.activations for m in model.modules() if isinstance(m, QuantizedLinear)} == {
        "bfloat16"}
    exact, _ = gradient.hub.load(bf16.path)
    assert {m.activations for m in exact.modules() if isinstance(m, QuantizedLinear)} == {
        "float32"}
    ids = prompts()
    with gradient.no_grad():
        rounded = model(gradient.tensor(ids)).logits.numpy()
        logits = exact(gradient.tensor(ids)).logits.numpy()
    assert 0 < np.abs(rounded - logits).max() < 0.3     # bfloat16 rounding, a float16 cache


@pytest.mark.parametrize("change, error, message", [
    ({"arch": "falcon"}, UnknownArchitectureError, "GGUF architecture 'falcon' is not one gradient loads"),
    ({"drop": {"blk.1.ffn_up.weight"}}, FileFormatError, r"missing: \['model.layers.1.mlp.up_proj.weight'\]"),
    ({"extra_tensors": [("blk.0.ffn_gate_exps.weight", np.zeros((2, 32)), T.F32)]},
     FileFormatError, r"not understood: \['blk.0.ffn_gate_exps.weight'\]"),
    ({"extra_kv": [("llama.expert_count", 8, V.UINT32)]}, NotImplementedError, "8 experts"),
    ({"extra_kv": [("llama.rope.scaling.type", "yarn", V.STRING)]}, NotImplementedError, "'yarn'"),
    ({"extra_kv": [("llama.rope.dimension_count", 8, V.UINT32)]}, NotImplementedError, "partial rotary"),
    ({"extra_kv": [("llama.feed_forward_length", 128, V.UINT32)]}, FileFormatError,
     r"'blk.0.ffn_gate.weight' has shape \(96, 64\), but the metadata describes "
     r"model.layers.0.mlp.gate_proj.weight of shape \(128, 64\)"),
    ({"extra_kv": [("tokenizer.ggml.pre", "superbpe", V.STRING)]}, NotImplementedError,
     "pre-tokenizer 'superbpe'"),
])
def test_unsupported_or_inconsistent_files(converted, tmp_path, change, error, message):
    pair = converted("llama")
    change = dict(change)
    arch = change.pop("arch", "llama")
    path = tmp_path / "bad.gguf"
    hf_to_gguf(pair.hf, path, arch, **change)
    with pytest.raises(error, match=message) as info:
        load_gguf(path)
    assert str(path) in str(info.value)


def test_config_needs_the_key_hyper_parameters():
    metadata = {"general.architecture": "llama", "llama.embedding_length": 64,
                "llama.attention.head_count": 4, "llama.block_count": 2, "llama.vocab_size": 10}
    with pytest.raises(FileFormatError, match="no llama.feed_forward_length"):
        config_from_gguf(metadata, where="m.gguf")
    metadata["llama.feed_forward_length"] = 96
    config = config_from_gguf(metadata)
    assert config.num_key_value_heads == 4 and config.tie_word_embeddings


# ----------------------------------------------------------------------------- tokenizer
def metadata_of(kv):
    return {item[0]: item[1] for item in kv}


def test_byte_level_tokenizer_from_metadata():
    kv, tokens = tokenizer_kv(extra=[("tokenizer.chat_template.tool_use", "{{ 'tools' }}", V.STRING),
                                     ("tokenizer.chat_templates", ["tool_use"], V.ARRAY, V.STRING)])
    metadata = metadata_of(kv)
    metadata["tokenizer.ggml.token_type"] = list(metadata["tokenizer.ggml.token_type"])
    metadata["tokenizer.ggml.token_type"][tokens.index("Ġthe")] = USER_DEFINED
    tok = tokenizer_from_gguf(metadata)
    ref = byte_level_backend()
    for text in held_out_texts()[:10] + ["<|im_start|>user\nhi<|im_end|>"]:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
    # control tokens are special: matched in text, dropped by skip_special_tokens
    ids = tok.encode("<|im_start|>hi")
    assert ids[0] == tokens.index("<|im_start|>") and tok.decode(ids, skip_special_tokens=True) == "hi"
    assert ref.encode("<|im_start|>hi").ids == ids
    # a user-defined token is matched whole, but is not special
    assert tokens.index("Ġthe") in tok.encode("so the end")
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert tok.encode("hi") == ref.encode("hi").ids   # add_bos_token False: nothing added
    messages = [{"role": "user", "content": "hi"}]
    assert tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == \
        render_chat_template(CHATML_TEMPLATE, [messages], add_generation_prompt=True)[0]
    assert tok.get_chat_template("tool_use") == "{{ 'tools' }}"
    assert len(tok) == len(tokens)


def test_add_bos_token_adds_it():
    kv, tokens = tokenizer_kv(extra=[])
    metadata = metadata_of(kv)
    metadata["tokenizer.ggml.add_bos_token"] = True
    tok = tokenizer_from_gguf(metadata)
    assert tok.encode("hi")[0] == tokens.index("<|im_start|>")
    assert tok.encode("hi", add_special_tokens=False)[0] != tokens.index("<|im_start|>")


def llama_cpp_split(text, pre):
    """The pieces llama.cpp cuts text into before BPE, with the regexes of llama-vocab.cpp
    applied one after the other, each inside the pieces of the one before."""
    gpt2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
    exprs = {"smollm": [r"\p{N}", gpt2], "gpt-2": [gpt2]}[pre]
    pieces = [text]
    for expr in exprs:
        out = []
        for piece in pieces:
            at = 0
            for m in regex.finditer(expr, piece):
                if m.start() > at:
                    out.append(piece[at:m.start()])
                out.append(m.group())
                at = m.end()
            if at < len(piece):
                out.append(piece[at:])
        pieces = out
    return pieces


@pytest.mark.parametrize("pre, text, pieces", [
    # the spaces before a digit end a piece, so they stay together
    ("smollm", "In 2024, x1 ran  42km.", ["In", "Ġ", "2", "0", "2", "4", ",", "Ġx", "1", "Ġran", "ĠĠ",
                                          "4", "2", "km", "."]),
    ("gpt-2", "In 2024, x1", ["In", "Ġ2024", ",", "Ġx", "1"]),
    ("llama-bpe", "In 12345 it's", ["In", "Ġ", "123", "45", "Ġit", "'s"]),
    ("qwen2", "In 123 IT'S", ["In", "Ġ", "1", "2", "3", "ĠIT", "'S"]),
])
def test_pre_tokenizers(pre, text, pieces):
    kv, _ = tokenizer_kv(pre=pre)
    tok = tokenizer_from_gguf(metadata_of(kv))
    got = [p for p, _ in tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str(text)]
    assert got == pieces
    if pre in ("smollm", "gpt-2"):   # llama.cpp's split, in byte-level characters
        byte_level = ByteLevelBPE()
        expected = ["".join(byte_level.id_to_token(b) for b in p.encode()) for p in llama_cpp_split(text, pre)]
        assert got == expected


def test_old_files_without_a_pre_tokenizer_warn():
    kv, _ = tokenizer_kv(pre=None)
    with pytest.warns(UserWarning, match="no tokenizer.ggml.pre"):
        tok = tokenizer_from_gguf(metadata_of(kv))
    assert [p for p, _ in tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str("a 12")] == ["a", "Ġ12"]


def test_tokenizer_errors():
    kv, _ = tokenizer_kv()
    metadata = metadata_of(kv)
    with pytest.raises(NotImplementedError, match="tokenizer model 'bert'"):
        tokenizer_from_gguf({**metadata, "tokenizer.ggml.model": "bert"}, "m.gguf")
    with pytest.raises(FileFormatError, match="m.gguf: no tokenizer"):
        tokenizer_from_gguf({"general.architecture": "llama"}, "m.gguf")
    with pytest.raises(FileFormatError, match="without tokenizer.ggml.merges"):
        tokenizer_from_gguf({**metadata, "tokenizer.ggml.merges": []})
    with pytest.raises(FileFormatError, match="tokens but 3 token types"):
        tokenizer_from_gguf({**metadata, "tokenizer.ggml.token_type": [1, 1, 1]})
    # a merge of a token the vocabulary lacks: the tokenizers library's bare Exception, wrapped
    merges = list(metadata["tokenizer.ggml.merges"]) + ["\u0120zzqq never"]
    with pytest.raises(FileFormatError, match="m.gguf: the tokenizer in the GGUF metadata is "
                                              "corrupt: .*out of vocabulary"):
        tokenizer_from_gguf({**metadata, "tokenizer.ggml.merges": merges}, "m.gguf")


def test_fuzzed_vocabularies_build_or_raise_file_format_error():
    """The fuzzing that found the tokenizers library's bare Exception, in the suite: 200
    seeded mutations of a byte-level vocabulary (tokens dropped, renamed or repeated; merges
    of tokens that are not there, of three parts; types and special ids out of range). Each
    builds a tokenizer that encodes and decodes, or raises FileFormatError naming the file."""
    import random
    kv, _ = tokenizer_kv()
    base = metadata_of(kv)
    rng = random.Random(2)
    refused = 0
    for _ in range(200):
        meta = {k: (list(v) if isinstance(v, list) else v) for k, v in base.items()}
        tokens, merges = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.merges"]
        for _ in range(rng.choice([1, 2, 3])):
            what = rng.randrange(7)
            if what == 0:
                del tokens[rng.randrange(len(tokens))]
            elif what == 1:
                tokens[rng.randrange(len(tokens))] = rng.choice(tokens) + rng.choice(["", "x"])
            elif what == 2:
                merges[rng.randrange(len(merges))] = f"{rng.choice(tokens)} zq{rng.randrange(9)}"
            elif what == 3:
                merges[rng.randrange(len(merges))] += rng.choice([" x", "", "  "])
            elif what == 4:
                meta["tokenizer.ggml.token_type"][rng.randrange(len(tokens))] = rng.randrange(-1, 9)
            elif what == 5:
                meta["tokenizer.ggml.bos_token_id"] = rng.randrange(-5, 2 * len(tokens))
            else:
                meta["tokenizer.ggml.pre"] = rng.choice(["gpt-2", "smollm", "llama3", "qwen2"])
        try:
            tok = tokenizer_from_gguf(meta, "fuzz.gguf")
            tok.decode(tok.encode("Hello world, 123!"))
        except FileFormatError as e:
            assert str(e).startswith("fuzz.gguf")
            refused += 1
    assert refused > 20


# SentencePiece-style ("llama") vocabularies
def spm_vocabulary():
    """A SentencePiece-like BPE vocabulary: <unk> <s> </s>, 256 byte tokens, then pieces with
    "▁" for spaces, scored by merge order (earlier merges score higher), as sentencepiece's BPE."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=600, show_progress=False, limit_alphabet=80)
    tk.train_from_iterator([training_text()], trainer)
    model = json.loads(tk.to_str())["model"]
    merges = [m if isinstance(m, list) else m.split(" ") for m in model["merges"]]
    merged = ["".join(m) for m in merges]
    chars = [t for t in model["vocab"] if len(t) == 1]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    scores = [0.0, 0.0, 0.0] + [0.0] * 256
    types = [2, CONTROL, CONTROL] + [BYTE] * 256
    for rank, piece in enumerate(dict.fromkeys(merged)):
        tokens.append(piece)
        scores.append(-float(rank))
        types.append(NORMAL)
    for i, ch in enumerate(chars):
        if ch not in tokens:
            tokens.append(ch)
            scores.append(-1e4 - i)
            types.append(NORMAL)
    return tokens, scores, types


def spm_reference(text, tokens, scores, types):
    """llama.cpp's SentencePiece tokenization: merge the adjacent pair whose concatenation is a
    piece of highest score (leftmost on ties) until none is; pieces not in the vocabulary fall
    back to byte tokens."""
    vocab = {t: i for i, t in enumerate(tokens) if types[i] == NORMAL}
    symbols = list("▁" + text.replace(" ", "▁"))
    while True:
        best = None
        for i in range(len(symbols) - 1):
            j = vocab.get(symbols[i] + symbols[i + 1])
            if j is not None and (best is None or scores[j] > best[0]):
                best = (scores[j], i)
        if best is None:
            break
        i = best[1]
        symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
    ids = []
    for s in symbols:
        if s in vocab:
            ids.append(vocab[s])
        else:
            ids.extend(tokens.index(f"<0x{b:02X}>") for b in s.encode())
    return ids


def test_sentencepiece_vocabulary_tokenizes_as_llama_cpp():
    tokens, scores, types = spm_vocabulary()
    metadata = {"general.architecture": "llama", "tokenizer.ggml.model": "llama",
                "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.scores": scores,
                "tokenizer.ggml.token_type": types, "tokenizer.ggml.bos_token_id": 1,
                "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0}
    tok = tokenizer_from_gguf(metadata)
    texts = held_out_texts() + MULTILINGUAL + training_text()[:3000].split("\n")
    for text in texts:
        if not text:
            continue
        ids = tok.encode(text, add_special_tokens=False)
        assert ids == spm_reference(text, tokens, scores, types), text
        assert tok.decode(ids) == text
    assert tok.encode("hi")[0] == 1            # add_bos_token defaults to True for "llama"
    assert tok.decode(tok.encode("hi"), skip_special_tokens=True) == "hi"


# ----------------------------------------------------------------------------- the real file
@pytest.fixture(scope="module")
def smollm2():
    path = smollm2_path()
    if path is None:
        pytest.skip("the real GGUF file is absent")
    return load_gguf(path, quantized=False)


@requires_smollm2
def test_real_config(smollm2):
    model, tok = smollm2
    c = model.config
    assert (c.num_hidden_layers, c.hidden_size, c.intermediate_size) == (30, 576, 1536)
    assert (c.num_attention_heads, c.num_key_value_heads, c.head_dim) == (9, 3, 64)
    assert (c.rope_theta, c.rms_norm_eps, c.max_position_embeddings) == (100000.0, 1e-5, 8192)
    assert c.vocab_size == len(tok) == 49152 and c.tie_word_embeddings
    assert (tok.bos_token, tok.eos_token, tok.unk_token) == ("<|im_start|>", "<|im_end|>", "<|endoftext|>")


@requires_smollm2
def test_real_greedy_continuation_is_sensible(smollm2):
    model, tok = smollm2
    ids = tok.encode("The capital of France is")
    out = model.generate([ids], max_new_tokens=3)
    text = tok.decode(np.asarray(out)[0].tolist()[len(ids):])
    assert text.startswith(" Paris"), text


@pytest.mark.slow
@requires_smollm2
def test_real_chat_answer(smollm2):
    model, tok = smollm2
    chat = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                   add_generation_prompt=True)
    out = model.generate([chat], max_new_tokens=8)
    reply = tok.decode(np.asarray(out)[0].tolist()[len(chat):])
    assert "Paris" in reply, reply


@requires_smollm2
def test_real_tokenizer(smollm2):
    _, tok = smollm2
    path = smollm2_path()
    from gradient.io.gguf import gguf_metadata
    metadata = gguf_metadata(path)
    tokens, merges = metadata["tokenizer.ggml.tokens"], metadata["tokenizer.ggml.merges"]
    assert metadata["tokenizer.ggml.pre"] == "smollm"
    # every token whose text is valid UTF-8 on its own encodes to itself
    texts = [tok.decode([i]) for i in range(len(tokens))]
    single = [i for i, t in enumerate(texts) if "\ufffd" not in t or tokens[i] == "�"]
    assert len(single) > 48500   # the others are bytes 0x80-0xff alone, and such pieces
    encoded = tok.backend_tokenizer.encode_batch([texts[i] for i in single], add_special_tokens=False)
    assert [e.ids for e in encoded] == [[i] for i in single]
    # a varied corpus round-trips, with the ids of an independent byte-level BPE (gradient's
    # from-scratch ByteLevelBPE) over llama.cpp's 'smollm' split
    special = {t: i for i, t in enumerate(tokens) if metadata["tokenizer.ggml.token_type"][i] == CONTROL}
    to_bytes = {c: b for b, c in ((b, ByteLevelBPE().id_to_token(b)) for b in range(256))}
    vocab = {i: bytes(to_bytes[c] for c in t) for i, t in enumerate(tokens) if t not in special}
    present = set(vocab.values())   # SmolLM2 lacks a few control bytes: give them unused ids
    vocab.update({10**6 + b: bytes([b]) for b in range(256) if bytes([b]) not in present})
    ids_of = {t: i for i, t in enumerate(tokens)}
    bpe = ByteLevelBPE(vocab, [tuple(ids_of[p] for p in m.split(" ")) for m in merges], special)
    corpus = held_out_texts() + MULTILINGUAL + training_text().split("\n\n")[:200] + [
        "<|im_start|>user\nWhat's 12+30?<|im_end|>\n", "x = 3.14159  # pi\n\n\n  indented"]
    for text in corpus:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        expected = [i for piece in llama_cpp_split_specials(text, special)
                    for i in ([special[piece]] if piece in special else
                              [j for p in llama_cpp_split(piece, "smollm") for j in bpe.encode(p)])]
        assert ids == expected, text[:60]
    # the chat template is the file's, rendered
    messages = [{"role": "user", "content": "hi"}]
    rendered = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == render_chat_template(metadata["tokenizer.chat_template"], [messages],
                                            add_generation_prompt=True)[0]
    assert rendered == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained "
                        "by Hugging Face<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                        "<|im_start|>assistant\n")


def llama_cpp_split_specials(text, special):
    pattern = "(" + "|".join(regex.escape(s) for s in sorted(special, key=len, reverse=True)) + ")"
    return [p for p in regex.split(pattern, text) if p]


def _memory_owner(array):
    """The object at the end of ``array``'s chain of bases (a NumPy array, a memory map...)."""
    while isinstance(array, np.ndarray) and array.base is not None:
        array = array.base
    return array


@requires_smollm2
def test_real_file_loads_quantized(smollm2):
    """The default load keeps every matrix in its GGML type: 7 projections per layer (Q4_1),
    the Q8_0 embedding, and the tied head over the embedding's own table."""
    from gradient.quant import GGMLType, QuantizedEmbedding, QuantizedLinear
    model, tok = smollm2
    quantized, _ = load_gguf(smollm2_path(), activations="int8")
    layers = [m for m in quantized.modules() if isinstance(m, QuantizedLinear)]
    assert len(layers) == 30 * 7 + 1  # every projection of every layer, and the head
    assert {layer.qtype for layer in layers} == {GGMLType.Q4_1, GGMLType.Q8_0}
    embedding = quantized.model.embed_tokens
    assert isinstance(embedding, QuantizedEmbedding) and embedding.qtype == GGMLType.Q8_0
    assert quantized.lm_head.packed is embedding.packed                # one table, not two
    assert sum(p.numel() for p in quantized.parameters()) == 61 * 576    # the norms only
    # ... copied out of the file's map: reading a view of it maps megabytes of pages back in
    assert not any(isinstance(_memory_owner(p._data), mmap.mmap) for p in quantized.parameters())
    held = sum(m.nbytes for m in layers if m is not quantized.lm_head) + embedding.nbytes
    assert held < 0.3 * sum(p.numel() * 4 for p in model.parameters())  # vs float32
    ids = gradient.tensor([tok.encode("The capital of France is")])
    exact, _ = load_gguf(smollm2_path())          # the default: float32 activations
    with gradient.no_grad():
        a = exact(ids).logits.numpy()
        b = model(ids).logits.numpy()
        c = quantized(ids).logits.numpy()
    # the same dequantized values, summed in another order
    assert np.abs(a - b).max() < 1e-3
    assert (a.argmax(-1) == b.argmax(-1)).all()
    # int8 activations (5 tokens: the decoding kernels) move the logits by a few tenths (at
    # most ~1 over the 49152 of them)
    assert 1e-3 < np.abs(c - b).max() < 2.0 and np.abs(c - b).mean() < 0.05 * np.abs(b).mean()
    assert (c[0, -1].argmax() == b[0, -1].argmax())
