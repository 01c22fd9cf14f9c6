"""gradient.models.llama against transformers 5.23 on the same random weights.

Every case builds a tiny transformers model (hidden 64, 4 heads, 2 KV heads), re-draws its
weights with a larger spread than transformers' init (std 0.2, so logits are far from uniform and
greedy argmaxes are not near-ties), saves it with transformers' ``save_pretrained`` and loads it
with ours. Models are shared through a module-scoped cache so each is built once.
"""

import json
import os
import re
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
import transformers

import gradient
from gradient.errors import ConfigError, FileFormatError
from gradient.io import load_safetensors, save_safetensors
from gradient.models.gpt2 import GPT2Config
from gradient.models.llama import LlamaConfig, LlamaForCausalLM, rope_inv_freq
from gradient.models.pretrained import MODEL_TYPES, UnknownArchitectureError, from_pretrained

from ..devices import DEVICES
from .decode_step_checks import (assert_steps_compiled, assert_user_changes_keep_the_step,
                                 decode_logits, steps_by_kind)

VOCAB = 160
SMALL = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
             bos_token_id=None, eos_token_id=None, pad_token_id=None)
LLAMA3 = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
CASES = {
    # name: (model_type, config overrides)
    "llama": ("llama", {}),                                        # GQA, untied head
    "llama_linear": ("llama", {"rope_parameters": {"rope_type": "linear", "factor": 4.0,
                                                   "rope_theta": 10000.0}}),
    "llama_llama3": ("llama", {"rope_parameters": LLAMA3, "num_hidden_layers": 3}),
    "llama_tied_bias": ("llama", {"tie_word_embeddings": True, "attention_bias": True,
                                  "mlp_bias": True}),
    "mistral": ("mistral", {"sliding_window": 4}),                 # window < sequence length
    "qwen2": ("qwen2", {"tie_word_embeddings": True}),             # q/k/v biases
    "qwen3": ("qwen3", {"head_dim": 32}),                          # q/k norms, head_dim != 64/4
}


def randomize_(model: torch.nn.Module, seed: int) -> None:
    """Weights N(0, 0.2), norm weights 1 + N(0, 0.1) (so the norms' weights matter too)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            p.copy_(1 + 0.1 * noise if "norm" in name else 0.2 * noise)


class Pair:
    """A transformers model, the directory it was saved to, and ours loaded from there."""

    def __init__(self, name, root):
        model_type, overrides = CASES[name]
        config = transformers.AutoConfig.for_model(model_type, **dict(SMALL, **overrides))
        self.hf = transformers.AutoModelForCausalLM.from_config(config).eval()
        randomize_(self.hf, seed=sorted(CASES).index(name))
        self.dir = os.path.join(root, name)
        self.hf.save_pretrained(self.dir)
        self.ours = LlamaForCausalLM.from_pretrained(self.dir)
        self._on = {"cpu": self.ours}

    def on(self, device: str) -> LlamaForCausalLM:
        """Ours loaded onto ``device`` (once per device)."""
        if device not in self._on:
            self._on[device] = LlamaForCausalLM.from_pretrained(self.dir).to(device)
        return self._on[device]

    def hf_logits(self, ids, **kwargs):
        with torch.no_grad():
            return self.hf(torch.as_tensor(ids), **kwargs).logits.float().numpy()

    def our_logits(self, ids, device="cpu", **kwargs):
        """Our logits on ``device`` as a NumPy array (array arguments go there too)."""
        kwargs = {k: gradient.tensor(v, device=device) if isinstance(v, np.ndarray) else v
                  for k, v in kwargs.items()}
        with gradient.no_grad():
            return self.on(device)(gradient.tensor(np.asarray(ids), device=device),
                                   **kwargs).logits.float().numpy()


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("llama"))
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = Pair(name, root)
        return cache[name]
    return get


def prompts(batch=3, length=11, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, (batch, length))


def left_padded():
    """A batch with left padding: ids, attention mask and positions as transformers' generate
    computes them (cumsum of the mask - 1, clipped at 0)."""
    ids = prompts(3, 10, seed=1)
    mask = np.ones_like(ids)
    mask[0, :4] = 0
    mask[2, :1] = 0
    ids[mask == 0] = 0
    positions = np.maximum(mask.cumsum(-1) - 1, 0)
    return ids, mask, positions


# ----------------------------------------------------------------------------- logits
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_logits_match_transformers(pairs, name, device):
    pair = pairs(name)
    hf_keys = set(pair.hf.state_dict())
    ours_keys = set(pair.ours.state_dict())
    assert ours_keys == hf_keys   # the same names, tied head included in both
    ids = prompts()
    ours, ref = pair.our_logits(ids, device), pair.hf_logits(ids)
    assert ours.shape == ref.shape == (3, 11, VOCAB)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["llama", "mistral", "qwen3"])
def test_left_padded_batch_matches_transformers(pairs, name, device):
    pair = pairs(name)
    ids, mask, positions = left_padded()
    ours = pair.our_logits(ids, device, attention_mask=mask, position_ids=positions)
    ref = pair.hf_logits(ids, attention_mask=torch.as_tensor(mask),
                         position_ids=torch.as_tensor(positions))
    keep = mask == 1
    np.testing.assert_allclose(ours[keep], ref[keep], rtol=0, atol=1e-4)
    # the padding does hide something: without the mask row 0 differs
    unmasked = pair.our_logits(ids, device, position_ids=positions)
    assert np.abs(unmasked[0, -1] - ref[0, -1]).max() > 1e-2


@pytest.mark.parametrize("name", ["llama_linear", "llama_llama3", "qwen3"])
def test_rope_frequencies_match_transformers(pairs, name):
    pair = pairs(name)
    ours = rope_inv_freq(pair.ours.config)
    theirs = pair.hf.model.rotary_emb.inv_freq.numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=0)
    assert pair.hf.model.rotary_emb.attention_scaling == 1.0   # not applied by these types


def test_logits_to_keep_and_default_positions(pairs):
    pair = pairs("llama")
    ids = prompts()
    full, last = pair.our_logits(ids), pair.our_logits(ids, logits_to_keep=3)
    assert last.shape == (3, 3, VOCAB)
    # the head's BLAS product of 3 rows and of all rows may sum in another order: relative
    np.testing.assert_allclose(last, full[:, -3:], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(pair.our_logits(ids, position_ids=np.arange(11)), full)
    # rotary positions are relative: a common shift changes nothing, a gap does
    shifted = pair.our_logits(ids, position_ids=np.arange(5, 16))
    np.testing.assert_allclose(shifted, full, rtol=0, atol=1e-4)
    gap = pair.our_logits(ids, position_ids=np.r_[0:5, 9:15])
    np.testing.assert_array_equal(gap[:, :5], full[:, :5])
    assert np.abs(gap[:, 5:] - full[:, 5:]).max() > 1e-2


@pytest.mark.parametrize("torch_dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_rms_norm_rounds_like_transformers(torch_dtype):
    """Bit for bit: normalise in float32, round to the input dtype, then multiply by the weight
    (rounding after the multiply instead differs in about a quarter of the half values)."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm as TorchRMSNorm
    from gradient.models.llama import LlamaRMSNorm
    g = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(16, 96, generator=g)).to(torch_dtype)
    theirs = TorchRMSNorm(96, eps=1e-5).to(torch_dtype)
    with torch.no_grad():
        theirs.weight.copy_(1 + 0.3 * torch.randn(96, generator=g))
    dtype = getattr(gradient, str(torch_dtype).replace("torch.", ""))
    ours = LlamaRMSNorm(96, eps=1e-5).to(dtype)
    with gradient.no_grad():
        ours.weight.copy_(gradient.tensor(theirs.weight.float().detach().numpy()).to(dtype))
        y = ours(gradient.tensor(x.float().numpy()).to(dtype))
    assert y.dtype is dtype
    expected = theirs(x).float().detach().numpy()
    if torch_dtype is torch.float32:   # summation order may move the last bit
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(y.float().numpy(), expected)


# ----------------------------------------------------------------------------- KV cache
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["llama", "mistral", "qwen3"])
def test_cached_decoding_matches_full_forward(pairs, name, device):
    """Prefill, a chunk of several tokens (cache offset > 0 and T > 1), then one at a time."""
    model = pairs(name).on(device)
    ids = prompts(2, 14, seed=2)
    full = pairs(name).our_logits(ids, device)
    cache = model.new_cache(batch_size=2, max_length=20)
    pieces = [(0, 5), (5, 8)] + [(t, t + 1) for t in range(8, 14)]
    with gradient.no_grad():
        for start, end in pieces:
            step = model(gradient.tensor(ids[:, start:end], device=device),
                         cache=cache).logits.numpy()
            np.testing.assert_allclose(step, full[:, start:end], rtol=0, atol=1e-5)
    assert cache.length == 14


@pytest.mark.parametrize("name", ["llama", "mistral"])
def test_cached_decoding_with_left_padding(pairs, name):
    model = pairs(name).ours
    ids, mask, positions = left_padded()
    full = pairs(name).our_logits(ids, attention_mask=mask, position_ids=positions)
    cache = model.new_cache(batch_size=3, max_length=10)
    with gradient.no_grad():
        for start, end in [(0, 6)] + [(t, t + 1) for t in range(6, 10)]:
            step = model(gradient.tensor(ids[:, start:end]), cache=cache,
                         attention_mask=gradient.tensor(mask[:, :end]),
                         position_ids=gradient.tensor(positions[:, start:end])).logits.numpy()
            keep = mask[:, start:end] == 1
            np.testing.assert_allclose(step[keep], full[:, start:end][keep], rtol=0, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_captured_decode_step_is_bit_identical_to_the_module_graph(pairs, name, device):
    model = pairs(name).on(device)
    ids = prompts(2, 14, seed=7)
    counts = Counter()
    fused = decode_logits(model, ids, counts=counts)
    # Mistral's window (4) is shorter than the 6-token prompt: every step needs the window's
    # mask, an input that grows with the position: the module graph runs them
    expected = ({"capture": 0, "replay": 0, "module graph": 0} if name == "mistral"
                else {"capture": 2, "replay": 6, "module graph": 0})
    assert steps_by_kind(counts) == expected
    np.testing.assert_array_equal(fused, decode_logits(model, ids, fused=False))
    if name != "mistral" and device == "cpu":    # the blocks, one compiled loop
        assert_steps_compiled(model.model, 1)


@pytest.mark.parametrize("name", ["llama", "qwen3", "llama_tied_bias"])
def test_steps_of_several_tokens_are_captured_with_the_module_graph_bits(pairs, name):
    """Steps of 3 tokens after the cache (speculative decoding's check of drafts) under the
    lower-right causal bias: captured and replayed like one-token steps, the same bits."""
    model = pairs(name).on("cpu")
    ids = prompts(2, 18, seed=4)
    counts = Counter()
    fused = decode_logits(model, ids, counts=counts, chunk=3)
    assert steps_by_kind(counts) == {"capture": 2, "replay": 2, "module graph": 0}
    np.testing.assert_array_equal(fused, decode_logits(model, ids, fused=False, chunk=3))


def test_user_changes_keep_the_captured_step(pairs):
    model = LlamaForCausalLM.from_pretrained(pairs("qwen2").dir)
    ids = prompts(1, 12, seed=8)
    attn = model.model.layers[0].self_attn
    assert_user_changes_keep_the_step(model, ids, model.model.layers[1].mlp.up_proj, attn,
                                      "o_proj")
    expected = decode_logits(model, ids, fused=False)
    # explicit positions (a server's batch gives them) only change the rotary inputs: a step
    # of its own signature, captured, with the logits of the step that computes them itself
    def positioned(counts=None):
        with gradient.no_grad(), gradient.kernels.trace() as t:
            cache = model.new_cache(1, 9)
            model(gradient.tensor(ids[:, :8]), cache=cache)
            out = model(gradient.tensor(ids[:, 8:9]), cache=cache,
                        position_ids=gradient.tensor([[8]])).logits.numpy()
        if counts is not None:
            counts.update(t.counts)
        return out
    model.model.fused_decode = False
    logits = [positioned()]
    model.model.fused_decode = True
    counts = Counter()
    logits += [positioned(counts) for _ in range(3)]
    assert steps_by_kind(counts) == {"capture": 2, "replay": 1, "module graph": 0}
    for replayed in logits[1:]:
        np.testing.assert_array_equal(replayed, logits[0])
    np.testing.assert_array_equal(decode_logits(model, ids), expected)


def greedy(model, ids: np.ndarray, new_tokens: int, device="cpu") -> np.ndarray:
    """Greedy decoding with the KV cache, through gradient's generate (stopping at the config's
    eos and padding after it, as transformers does)."""
    out = model.generate(gradient.tensor(ids, device=device), max_new_tokens=new_tokens)
    return out.numpy()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["llama", "llama_llama3", "mistral", "qwen2", "qwen3"])
def test_greedy_generation_matches_transformers(pairs, name, device):
    pair = pairs(name)
    ids = prompts(2, 6, seed=3)
    ours = greedy(pair.on(device), ids, 32, device)
    with torch.no_grad():
        ref = pair.hf.generate(torch.as_tensor(ids), max_new_tokens=32, do_sample=False,
                               attention_mask=torch.ones(ids.shape, dtype=torch.long)).numpy()
    assert all(len(set(row[6:])) >= 4 for row in ours), ours   # not one token repeated
    np.testing.assert_array_equal(ours, ref)


# ----------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("torch_dtype", [torch.bfloat16, torch.float16])
def test_half_precision_checkpoints(pairs, tmp_path, torch_dtype):
    pair = pairs("qwen3")
    half = transformers.AutoModelForCausalLM.from_pretrained(pair.dir, dtype=torch_dtype)
    half.save_pretrained(tmp_path)
    # the reference: transformers in float32 on the rounded weights
    ref_model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    ids = prompts()
    with torch.no_grad():
        ref = ref_model(torch.as_tensor(ids)).logits.numpy()
    name = str(torch_dtype).replace("torch.", "")

    kept = LlamaForCausalLM.from_pretrained(tmp_path)              # stays in the stored dtype
    assert {str(p.dtype) for p in kept.parameters()} == {f"gradient.{name}"}
    with gradient.no_grad(), gradient.kernels.trace() as trace, \
            gradient.autograd.profiler.profile() as ops:
        logits = kept(gradient.tensor(ids)).logits
    # each norm one kernel on the half values (Qwen3's per-head q/k norms too), no casts
    # around it, and each product rounded by the kernel that computes it, not in a pass of
    # its own (the two casts, and bfloat16 roundings, left are the rotary tables')
    layers = kept.config.num_hidden_layers
    assert trace.calls("rms_norm") == {"numba": 4 * layers + 1}
    assert trace.calls("low_precision_linear") == {"numba": 7 * layers + 1}
    assert sum(e.name == "Cast" for e in ops.events()) <= 2
    assert trace.counts.get(("round_to_bfloat16", "numba"), 0) <= 2
    assert str(logits.dtype) == f"gradient.{name}"
    # Every matmul input and every residual sum is rounded to the half type (8 significant bits
    # for bfloat16, 11 for float16) through 2 layers. On these weights (logits up to ~6.5)
    # transformers' own half model is 0.089 (bf16) / 0.0098 (fp16) off its float32 run, ours
    # 0.099 / 0.0099: we allow 2^-5 (bf16) and 2^-8 (fp16) of the logits' scale, about twice that.
    scale = np.abs(ref).max()
    atol = scale * (2.0 ** -5 if torch_dtype is torch.bfloat16 else 2.0 ** -8)
    err = np.abs(logits.float().numpy() - ref).max()
    assert err < atol, (err, atol)
    assert err > 0     # really computed in the half type

    cache = kept.new_cache(3, 12)     # the KV cache follows the model's dtype
    assert str(cache.keys[0].dtype) == f"gradient.{name}"
    with gradient.no_grad():
        kept(gradient.tensor(ids), cache=cache)
        step = kept(gradient.tensor(ids[:, :1]), cache=cache).logits
    assert cache.length == 12 and str(step.dtype) == f"gradient.{name}"

    # decode steps in the half type: captured and compiled into one loop over the layers (its
    # values as their bits), with the module graph's bits
    decoded = prompts(2, 12, seed=3)
    counts = Counter()
    fused = decode_logits(kept, decoded, counts=counts)
    assert steps_by_kind(counts) == {"capture": 2, "replay": 4, "module graph": 0}
    np.testing.assert_array_equal(fused.view(np.uint16),
                                  decode_logits(kept, decoded, fused=False).view(np.uint16))
    from gradient.capture import Plan
    plans = [e for e in kept.model.__dict__["_captured"]._entries.values() if type(e) is Plan]
    assert plans and all(plan.loop is not None for plan in plans), \
        [plan.why_python for plan in plans]
    assert counts[("decode_attention", "numba")] == 7 * len(kept.model.layers)   # and prefill

    widened = LlamaForCausalLM.from_pretrained(tmp_path, dtype=gradient.float32)
    assert {str(p.dtype) for p in widened.parameters()} == {"gradient.float32"}
    with gradient.no_grad():
        np.testing.assert_allclose(widened(gradient.tensor(ids)).logits.numpy(), ref,
                                   rtol=0, atol=1e-4)


# ----------------------------------------------------------------------------- saving
@pytest.mark.parametrize("name", ["llama_llama3", "qwen2"])
def test_save_pretrained_round_trip(pairs, tmp_path, name):
    pair = pairs(name)
    pair.ours.save_pretrained(tmp_path)
    config = json.load(open(tmp_path / "config.json"))
    assert config["model_type"] == pair.hf.config.model_type
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert reloaded.config.rope_parameters == pair.hf.config.rope_parameters
    assert reloaded.config.tie_word_embeddings == pair.hf.config.tie_word_embeddings
    ids = prompts()
    with torch.no_grad():
        np.testing.assert_array_equal(reloaded(torch.as_tensor(ids)).logits.numpy(),
                                      pair.hf_logits(ids))
    # and the config survives our own round trip unchanged
    assert LlamaForCausalLM.from_pretrained(tmp_path).config == pair.ours.config


def test_sharded_save(pairs, tmp_path):
    pair = pairs("llama_tied_bias")
    pair.ours.save_pretrained(tmp_path, max_shard_size="40KB")
    index = json.load(open(tmp_path / "model.safetensors.index.json"))
    shards = set(index["weight_map"].values())
    assert len(shards) > 2 and all((tmp_path / s).is_file() for s in shards)
    assert "lm_head.weight" not in index["weight_map"]         # tied: stored once
    ids = prompts()
    ref = pair.hf_logits(ids)
    ours = LlamaForCausalLM.from_pretrained(tmp_path)
    assert ours.lm_head.weight is ours.model.embed_tokens.weight
    with gradient.no_grad():
        np.testing.assert_allclose(ours(gradient.tensor(ids)).logits.numpy(), ref, atol=1e-4)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        np.testing.assert_array_equal(theirs(torch.as_tensor(ids)).logits.numpy(), ref)


# ----------------------------------------------------------------------------- errors
def test_unknown_model_type_lists_supported_types(pairs, tmp_path):
    shutil.copytree(pairs("llama").dir, tmp_path, dirs_exist_ok=True)
    config = json.load(open(tmp_path / "config.json"))
    config["model_type"] = "mamba"
    json.dump(config, open(tmp_path / "config.json", "w"))
    for load in (from_pretrained, LlamaForCausalLM.from_pretrained):
        with pytest.raises(UnknownArchitectureError) as info:
            load(str(tmp_path))
        assert "mamba" in str(info.value)
        assert all(t in str(info.value) for t in ("llama", "mistral", "qwen2", "qwen3"))
    assert all(MODEL_TYPES[t] is LlamaForCausalLM for t in ("llama", "mistral", "qwen2", "qwen3"))


def test_missing_tensor_is_named(pairs, tmp_path):
    shutil.copytree(pairs("llama").dir, tmp_path, dirs_exist_ok=True)
    tensors = load_safetensors(str(tmp_path / "model.safetensors"))
    # older checkpoints store each layer's rotary inv_freq: derived from the config, skipped
    tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = np.ones(8, np.float32)
    save_safetensors(tensors, str(tmp_path / "model.safetensors"), {"format": "pt"})
    LlamaForCausalLM.from_pretrained(tmp_path)
    del tensors["model.layers.1.mlp.down_proj.weight"]
    save_safetensors(tensors, str(tmp_path / "model.safetensors"), {"format": "pt"})
    with pytest.raises(FileFormatError, match=r"model\.layers\.1\.mlp\.down_proj\.weight"):
        LlamaForCausalLM.from_pretrained(tmp_path)


# ----------------------------------------------------------------------------- config
def test_config_defaults_follow_the_model_type():
    qwen3 = LlamaConfig(model_type="qwen3")
    assert (qwen3.head_dim, qwen3.num_key_value_heads, qwen3.vocab_size) == (128, 32, 151936)
    llama = LlamaConfig(hidden_size=64, num_attention_heads=4)
    assert (llama.head_dim, llama.num_key_value_heads, llama.bos_token_id) == (16, 4, 1)
    # transformers' Llama has no window, even when a config.json names one
    assert LlamaConfig(sliding_window=8, num_hidden_layers=2).attention_types() == \
        ["full_attention"] * 2
    mistral = LlamaConfig(model_type="mistral")
    assert (mistral.sliding_window, mistral.num_key_value_heads) == (4096, 8)
    # a null window in config.json (Mistral v0.2) is no window, not the class default
    assert LlamaConfig.from_dict({"model_type": "mistral", "sliding_window": None}) \
        .attention_types() == ["full_attention"] * 32
    # Qwen2 ignores the window unless use_sliding_window, then from max_window_layers on
    qwen2 = LlamaConfig(model_type="qwen2", num_hidden_layers=3, sliding_window=8)
    assert qwen2.attention_types() == ["full_attention"] * 3
    qwen2 = LlamaConfig(model_type="qwen2", num_hidden_layers=3, sliding_window=8,
                        use_sliding_window=True, max_window_layers=1)
    assert qwen2.attention_types() == ["full_attention"] + ["sliding_attention"] * 2
    with pytest.raises(ValueError, match="model_type"):
        LlamaConfig(model_type="gpt2")
    with pytest.raises(NotImplementedError, match="yarn"):
        LlamaConfig(rope_scaling={"rope_type": "yarn", "factor": 4.0})


_SMALL = {"model_type": "llama", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}


@pytest.mark.parametrize("change, message", [
    ({"hidden_size": "64"}, "hidden_size must be an integer, got str '64'"),
    ({"intermediate_size": 128.5}, "intermediate_size must be an integer, got float"),
    ({"num_hidden_layers": True}, "num_hidden_layers must be an integer, got bool"),
    ({"vocab_size": -1}, "vocab_size must be at least 0, got -1"),
    ({"num_attention_heads": 0}, "num_attention_heads must be at least 1, got 0"),
    ({"num_key_value_heads": 0}, "num_key_value_heads must be at least 1"),
    ({"num_hidden_layers": 10**9}, "num_hidden_layers is 1000000000; gradient builds at most"),
    ({"num_attention_heads": 5}, "must be a multiple of num_key_value_heads"),
])
def test_a_config_json_that_describes_no_model_gets_a_config_error(change, message):
    # a ZeroDivisionError, a TypeError from `//` on a string, or a billion layers built before
    # the weights were read, before
    with pytest.raises(ConfigError, match=re.escape(message)):
        LlamaConfig.from_dict({**_SMALL, **change})
    assert issubclass(ConfigError, ValueError)
    gpt2 = {"n_embd": 64, "n_head": 4, "n_layer": 2, "vocab_size": 100}
    for bad in ({"n_head": 0}, {"n_embd": "64"}, {"n_layer": -1}, {"n_layer": 10**9}):
        with pytest.raises(ConfigError):
            GPT2Config.from_dict({**gpt2, **bad})
    # token ids may be negative or lists, and "derive it" stays None
    LlamaConfig.from_dict({**_SMALL, "pad_token_id": -1, "eos_token_id": [1, 2], "head_dim": None})


def test_config_accepts_both_rope_spellings(tmp_path):
    legacy = {"model_type": "llama", "rope_theta": 500000.0,
              "rope_scaling": {"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}
    modern = {"model_type": "llama", "rope_parameters": LLAMA3}
    a, b = LlamaConfig.from_dict(legacy), LlamaConfig.from_dict(modern)
    assert a == b and a.rope_theta == 500000.0 and a.rope_scaling["rope_type"] == "llama3"
    assert LlamaConfig.from_dict({"model_type": "llama", "rope_parameters": {
        "rope_type": "default", "rope_theta": 1e6}}).rope_scaling is None
    # what we write, transformers reads back the same
    config = LlamaConfig.from_dict(dict(SMALL, **modern))
    json.dump(config.to_dict(), open(tmp_path / "config.json", "w"))
    assert transformers.AutoConfig.from_pretrained(tmp_path).rope_parameters == LLAMA3


# ----------------------------------------------------------------------------- training
@pytest.mark.parametrize("device", DEVICES)
def test_loss_and_gradients_match_transformers(pairs, device):
    pair = pairs("qwen3")
    ids = prompts(2, 9, seed=4)
    labels = ids.copy()
    labels[0, :3] = -100     # ignored targets
    pair.hf.zero_grad()
    ref = pair.hf(torch.as_tensor(ids), labels=torch.as_tensor(labels))
    ref.loss.backward()
    model = LlamaForCausalLM.from_pretrained(pair.dir).to(device)
    out = model(gradient.tensor(ids, device=device), labels=gradient.tensor(labels, device=device))
    np.testing.assert_allclose(out.loss.item(), ref.loss.item(), rtol=1e-5)
    out.loss.backward()
    hf_params = dict(pair.hf.named_parameters())
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        expected = hf_params[name].grad.numpy()
        np.testing.assert_allclose(p.grad.numpy(), expected, rtol=0,
                                   atol=1e-5 * max(1.0, np.abs(expected).max()), err_msg=name)
    pair.hf.zero_grad()


def test_fine_tuning_lowers_the_loss():
    gradient.manual_seed(0)
    config = LlamaConfig(**dict(SMALL, vocab_size=32, intermediate_size=64))
    model = LlamaForCausalLM(config)     # transformers' init: N(0, 0.02), loss ~ ln(32)
    model.train()
    ids = gradient.tensor(np.tile(np.arange(8), (4, 3)))   # a pattern learnt in a few steps
    opt = gradient.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    losses = []
    for _ in range(20):
        loss = model(ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert abs(losses[0] - np.log(32)) < 0.2
    assert losses[-1] < 0.25 * losses[0], losses
