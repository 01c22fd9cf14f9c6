"""The LLaMA family -- LLaMA 1/2/3, Mistral, Qwen2 and Qwen3 -- in one file, driven by the config.

All four are the same decoder with small switches, so one class serves them and the config says
which switches are on:

=========  ===============================================================================
llama      RMSNorm, rotary positions (optionally ``linear`` or ``llama3`` scaled), grouped-query
           attention, SwiGLU MLP; ``attention_bias``/``mlp_bias`` add biases
mistral    llama without biases, with a sliding attention window (``sliding_window``)
qwen2      llama with biases on the q/k/v projections (not on o); a window only on the layers
           ``layer_types`` names (only when ``use_sliding_window``)
qwen3      qwen2 without the fixed biases, plus an RMSNorm of each query and key head
           (``q_norm``/``k_norm``) before the rotation; ``head_dim`` is set explicitly
=========  ===============================================================================

Parameter names are Hugging Face's (``model.layers.0.self_attn.q_proj.weight`` ...), so
``state_dict()`` has the keys of ``transformers.LlamaForCausalLM`` and a checkpoint loads with
no renaming. Numerics follow transformers too: the norms compute in float32 and cast back before
the weight multiplies, and the rotary tables are computed in float32 as transformers does.

One layer, top to bottom (``x`` is (batch, T, hidden))::

    h = x + o_proj(attention(rope(q_proj(norm(x))), rope(k_proj(norm(x))), v_proj(norm(x))))
    y = h + down_proj(silu(gate_proj(norm(h))) * up_proj(norm(h)))

Decoding one token at a time, the layers' forward is captured once and replayed
(:mod:`gradient.models.decode_step`, same bits as the module graph), its thirty-odd calls per
layer compiled into one loop over the layers (:mod:`gradient.capture.compiled`).

Example::

    >>> model = gradient.models.from_pretrained("HuggingFaceTB/SmolLM2-135M")
    >>> cache = model.new_cache(batch_size=1, max_length=64)
    >>> logits = model(prompt_ids, cache=cache, logits_to_keep=1).logits   # prefill
    >>> logits = model(next_id, cache=cache).logits                         # one more token
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..dtypes import bfloat16, float16, float32, float64
from ..errors import (ArgumentTypeError, ArgumentValueError, ConfigError, ShapeError,
                      UnsupportedError)
from ..nn import functional as F
from ..ops.causal_bias import RowPrefixBias
from ..ops.creation import from_numpy
from ..ops.shape import cat
from ..tensor import Tensor
from .decode_step import captured_tokens, decode_step, replays_decode_step, step_mask
from .masks import decoder_mask
from .pretrained import CausalLMOutput, ModelConfig, PreTrainedModel, register_model

if TYPE_CHECKING:   # generation sits above models: imported where it is used
    from ..generation.kv_cache import KVCache

__all__ = ["LlamaConfig", "LlamaForCausalLM", "LlamaModel"]

MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")

# transformers' defaults differ per model type (its LlamaConfig, MistralConfig, Qwen2Config and
# Qwen3Config): a field left at DEFAULT takes the value of its model type. (None is a value:
# Mistral v0.2's "sliding_window": null means no window, where MistralConfig's default is 4096.)
class _TypeDefault:
    def __repr__(self) -> str:
        return "<the model type's default>"


DEFAULT = _TypeDefault()
_LLAMA_DEFAULTS = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                       num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=None,
                       head_dim=None, max_position_embeddings=2048, sliding_window=None,
                       bos_token_id=1, eos_token_id=2)
_TYPE_DEFAULTS = {
    "llama": _LLAMA_DEFAULTS,
    "mistral": dict(_LLAMA_DEFAULTS, intermediate_size=14336, num_key_value_heads=8,
                    max_position_embeddings=4096 * 32, sliding_window=4096),
    "qwen2": dict(_LLAMA_DEFAULTS, vocab_size=151936, intermediate_size=22016,
                  num_key_value_heads=32, max_position_embeddings=32768, sliding_window=4096,
                  bos_token_id=None, eos_token_id=None),
}
_TYPE_DEFAULTS["qwen3"] = dict(_TYPE_DEFAULTS["qwen2"], head_dim=128)
# keys that transformers' config class of a model type does not have: not written to its config.json
_NOT_WRITTEN = {
    "llama": {"sliding_window", "use_sliding_window", "max_window_layers", "layer_types"},
    "mistral": {"attention_bias", "mlp_bias", "use_sliding_window", "max_window_layers",
                "layer_types"},
    "qwen2": {"attention_bias", "mlp_bias"},
    "qwen3": {"mlp_bias"},
}
_ROPE_TYPES = ("default", "linear", "llama3")
_ACTIVATIONS = {"silu": F.silu, "swish": F.silu, "gelu": F.gelu,
                "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}


# ----------------------------------------------------------------------------- config
@dataclasses.dataclass
class LlamaConfig(ModelConfig):
    """The configuration of a LLaMA-family model, with the keys of Hugging Face's ``config.json``.

    ``model_type`` ("llama", "mistral", "qwen2" or "qwen3") picks the family's defaults and
    switches (biases, window, q/k norms); fields not given take that type's default, as
    transformers' per-type config classes do (``num_key_value_heads=None`` and
    ``head_dim=None`` mean "derive it": ``num_attention_heads``, ``hidden_size // heads``).

    Rotary settings: ``rope_theta`` and ``rope_scaling`` (``None`` or ``{"rope_type": "linear",
    "factor": 4.0}`` / ``{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}``). A ``config.json`` may
    spell them the transformers 4 way (``rope_theta`` + ``rope_scaling``, with ``type`` or
    ``rope_type``) or the transformers 5 way (one ``rope_parameters`` dict); :meth:`to_dict`
    writes both, so either version reads the file.

    Example::

        >>> config = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128,
        ...                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
        >>> model = LlamaForCausalLM(config)
    """

    model_type: str = "llama"
    _divisors = ("num_attention_heads", "num_key_value_heads")    # (not fields: no annotation)
    _layer_counts = ("num_hidden_layers",)
    vocab_size: int = DEFAULT
    hidden_size: int = DEFAULT
    intermediate_size: int = DEFAULT
    num_hidden_layers: int = DEFAULT
    num_attention_heads: int = DEFAULT
    num_key_value_heads: int | None = DEFAULT   # None: num_attention_heads (plain multi-head)
    head_dim: int | None = DEFAULT              # None: hidden_size // num_attention_heads
    hidden_act: str = "silu"
    max_position_embeddings: int = DEFAULT
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None
    attention_bias: bool = False             # llama: all four projections; qwen3: likewise
    attention_dropout: float = 0.0
    mlp_bias: bool = False                   # llama only
    tie_word_embeddings: bool = False
    sliding_window: int | None = DEFAULT     # mistral; qwen2/3 only with use_sliding_window
    use_sliding_window: bool = False
    max_window_layers: int = 28
    layer_types: list | None = None          # qwen2/3: "full_attention" | "sliding_attention"
    use_cache: bool = True
    bos_token_id: int | None = DEFAULT
    eos_token_id: int | list | None = DEFAULT
    pad_token_id: int | None = None

    def __post_init__(self):
        if self.model_type not in MODEL_TYPES:
            raise ArgumentValueError(f"LlamaConfig: model_type must be one of {MODEL_TYPES}, got "
                                     f"{self.model_type!r}")
        for name, value in _TYPE_DEFAULTS[self.model_type].items():
            if getattr(self, name) is DEFAULT:
                setattr(self, name, value)
        self.check_sizes()
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(f"LlamaConfig: num_attention_heads ({self.num_attention_heads}) must "
                             f"be a multiple of num_key_value_heads ({self.num_key_value_heads})")
        if self.head_dim % 2:
            raise ConfigError(f"LlamaConfig: rotary embeddings need an even head_dim, got "
                             f"{self.head_dim}")
        self.rope_scaling = _normalized_rope_scaling(self.rope_scaling)
        if self.model_type in ("qwen2", "qwen3"):
            # as Qwen2Config: the window is off unless use_sliding_window, and then only on the
            # layers from max_window_layers on
            if not self.use_sliding_window:
                self.sliding_window = None
            if self.layer_types is None:
                self.layer_types = [
                    "sliding_attention" if self.sliding_window is not None
                    and i >= self.max_window_layers else "full_attention"
                    for i in range(self.num_hidden_layers)]

    @classmethod
    def from_dict(cls, d: dict) -> "LlamaConfig":
        """Build from a ``config.json`` dict, accepting both spellings of the rotary settings."""
        d = dict(d)
        # transformers 5 reads a legacy rope_scaling first, then rope_parameters; a theta inside
        # the dict wins over a top-level rope_theta
        legacy, rope = d.pop("rope_scaling", None), d.pop("rope_parameters", None)
        rope = dict(legacy or rope or {})
        theta = rope.pop("rope_theta", None) or d.get("rope_theta")
        d["rope_theta"] = theta if theta is not None else cls.rope_theta
        d["rope_scaling"] = rope or None   # the rope_type and its settings ("default": none)
        return super().from_dict(d)

    def to_dict(self) -> dict:
        d = super().to_dict()
        for key in _NOT_WRITTEN[self.model_type]:
            d.pop(key, None)
        # transformers 5 reads one rope_parameters dict; transformers 4 reads rope_theta and
        # rope_scaling. Both are written and agree.
        rope = {"rope_type": "default", "rope_theta": self.rope_theta}
        if self.rope_scaling is not None:
            rope.update(self.rope_scaling)
        d["rope_parameters"] = rope
        if self.rope_scaling is not None:
            d["rope_scaling"] = dict(self.rope_scaling)
        return d

    def attention_types(self) -> list[str]:
        """Per layer, "full_attention" or "sliding_attention" (within ``sliding_window``)."""
        if self.model_type in ("qwen2", "qwen3"):
            return list(self.layer_types)
        windowed = self.model_type == "mistral" and self.sliding_window is not None
        return ["sliding_attention" if windowed else "full_attention"] * self.num_hidden_layers


def _normalized_rope_scaling(scaling: dict | None) -> dict | None:
    """``rope_scaling`` with its type under ``rope_type`` (older files say ``type``), or None
    for plain RoPE."""
    if not scaling:
        return None
    rope_type = scaling.get("rope_type") or scaling.get("type") or "default"
    scaling = {k: v for k, v in scaling.items() if k not in ("type", "rope_type", "rope_theta")}
    if rope_type == "default":
        return None
    if rope_type not in _ROPE_TYPES:
        raise UnsupportedError(f"LlamaConfig: rope_scaling of type {rope_type!r} is not "
                               f"implemented; supported types: {list(_ROPE_TYPES)}")
    required = {"linear": ("factor",),
                "llama3": ("factor", "low_freq_factor", "high_freq_factor")}[rope_type]
    missing = [k for k in required if k not in scaling]
    if missing:
        raise ArgumentValueError(
            f"LlamaConfig: rope_scaling of type {rope_type!r} needs {missing}; got "
            f"{scaling}")
    return {"rope_type": rope_type, **scaling}


# ----------------------------------------------------------------------------- rotary embedding
def rope_inv_freq(config: LlamaConfig) -> np.ndarray:
    """The rotary inverse frequencies (head_dim // 2,), float32, computed step by step as
    transformers computes them (``_compute_linear_scaling_rope_parameters``,
    ``_compute_llama3_parameters``), so the tables agree to the last bit that matters."""
    dim = config.head_dim
    f32 = np.float32
    inv_freq = f32(1.0) / (f32(config.rope_theta) ** (np.arange(0, dim, 2).astype(f32) / f32(dim)))
    scaling = config.rope_scaling
    if scaling is None:
        return inv_freq
    factor = f32(scaling["factor"])
    if scaling["rope_type"] == "linear":
        # scaling positions by 1/factor is the same as scaling the frequencies
        return inv_freq / factor
    # llama3: long wavelengths are slowed down by `factor`, short ones kept, and the band in
    # between interpolated smoothly
    low, high = f32(scaling["low_freq_factor"]), f32(scaling["high_freq_factor"])
    old_len = f32(scaling.get("original_max_position_embeddings",
                              config.max_position_embeddings))
    low_freq_wavelen, high_freq_wavelen = old_len / low, old_len / high
    wavelen = f32(2 * math.pi) / inv_freq
    scaled = np.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low) / (high - low)
    smoothed = (f32(1) - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
    return np.where(medium, smoothed, scaled).astype(f32)


class RotaryEmbedding:
    """Cosine and sine tables of the rotary embedding, computed once and grown on demand.

    Row ``p`` holds position ``p``. The sine table has the sign of ``rotate_half`` folded in
    (``-sin`` on the first half), so rotating is ``x * cos + roll(x, half) * sin``: one roll
    instead of two slices, a negation and a concatenation. (The halves of the table are equal,
    so this is exact: negation commutes with rounding.)
    """

    def __init__(self, inv_freq: np.ndarray, length: int = 256):
        self.inv_freq = inv_freq
        self.length = 0
        # (dtype, device) -> (cos, sin) tensors of `length` rows; ("angles", device) ->
        # (inv_freq, sign) tensors, for position ids on an accelerator (see _at)
        self._tables: dict = {}
        self._grow(length)

    def _grow(self, length: int) -> None:
        # as transformers: angle = float32(position) * inv_freq in float32; the cosine of that
        # float32 angle is then taken in float64 and rounded once
        angles = np.arange(length, dtype=np.float32)[:, None] * self.inv_freq[None, :]
        angles = np.concatenate([angles, angles], axis=-1).astype(np.float64)
        half = self.inv_freq.shape[0]
        sin = np.sin(angles)
        sin[:, :half] *= -1
        self._cos32, self._sin32 = np.cos(angles).astype(np.float32), sin.astype(np.float32)
        self.length = length
        self._tables.clear()

    def __call__(self, start: int, T: int, position_ids: Tensor | None, dtype, device):
        """``(cos, sin)`` for positions ``start .. start+T-1`` (shape (T, head_dim)) or for
        ``position_ids`` (B, T) (shape (B, T, head_dim)), in ``dtype``."""
        if position_ids is not None and position_ids._backend.name != "cpu":
            # on an accelerator, reading the largest id to size the table would be a host sync
            return self._at(position_ids, dtype)
        end = start + T if position_ids is None else int(position_ids.max().item()) + 1
        if end > self.length:
            self._grow(max(end, 2 * self.length))
        key = (dtype, str(device))
        if key not in self._tables:
            self._tables[key] = tuple(from_numpy(t).to(device=device, dtype=dtype)
                                      for t in (self._cos32, self._sin32))
        cos, sin = self._tables[key]
        if position_ids is None:
            return cos[start:end], sin[start:end]  # views: nothing computed per token
        return F.embedding(position_ids, cos), F.embedding(position_ids, sin)

    def _at(self, position_ids: Tensor, dtype):
        """``(cos, sin)`` at ``position_ids`` (B, T), computed on their device as the table's
        rows are (float32 angles, float64 cosine and sine, one rounding): no table lookup,
        so no largest id to read back to the host."""
        device = position_ids.device
        key = ("angles", str(device))
        if key not in self._tables:
            half = self.inv_freq.shape[0]
            sign = np.concatenate([-np.ones(half), np.ones(half)])   # the folded rotate_half
            self._tables[key] = (from_numpy(self.inv_freq).to(device),
                                 from_numpy(sign).to(device))
        inv_freq, sign = self._tables[key]
        angles = position_ids.to(float32).unsqueeze(-1) * inv_freq      # (B, T, half)
        angles = cat([angles, angles], -1).to(float64)
        return (angles.cos().to(float32).to(dtype),
                (angles.sin() * sign).to(float32).to(dtype))


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs ``(x[i], x[i + half])`` of each head by the position's angles (HF's
    ``rotate_half`` layout, not GGUF's interleaved one). ``x`` is (B, heads, T, head_dim).

    ``F.rotary_embedding`` is ``x * cos + x.roll(half, -1) * sin`` (the sign is in the sine
    table), one kernel each way on a GPU."""
    return F.rotary_embedding(x, cos, sin)


# ----------------------------------------------------------------------------- layers
class LlamaRMSNorm(nn.Module):
    """RMSNorm as transformers' ``LlamaRMSNorm``: normalise in float32, cast back to the input
    dtype, then multiply by the weight. (``F.rms_norm`` multiplies before casting back, which
    rounds differently in bfloat16/float16.)"""

    def __init__(self, size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(from_numpy(np.ones(size, dtype=np.float32)))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype is float32 and self.weight.dtype is float32:
            # the two orders agree when nothing is rounded to a half type: F.rms_norm is the
            # same arithmetic, with a fast path when no graph is recorded
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        if x.dtype in (bfloat16, float16):
            # F.rms_norm normalises 16-bit floats in float32 and rounds once (one kernel):
            # rounded, then the weight
            return self.weight * F.rms_norm(x, self.weight.shape, None, self.eps)
        h = F.rms_norm(x.to(float32), self.weight.shape, None, self.eps)   # (float64: in float32)
        return self.weight * h.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.eps}"


class LlamaMLP(nn.Module):
    """SwiGLU: ``down(act(gate(x)) * up(x))``."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        bias = config.mlp_bias and config.model_type == "llama"
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=bias)
        if config.hidden_act not in _ACTIVATIONS:
            raise UnsupportedError(f"LlamaMLP: hidden_act {config.hidden_act!r} is not "
                                   f"implemented; supported: {sorted(_ACTIVATIONS)}")
        self.act = _ACTIVATIONS[config.hidden_act]

    def forward(self, x: Tensor) -> Tensor:
        if self.act is F.silu:   # silu(gate) * up: one fused kernel each way on a GPU
            return self.down_proj(F.swiglu(self.gate_proj(x), self.up_proj(x)))
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class LlamaAttention(nn.Module):
    """Grouped-query self-attention with rotary positions.

    ``num_key_value_heads`` key/value heads each serve ``num_attention_heads //
    num_key_value_heads`` query heads; the attention op reads each K/V head once for its group
    instead of repeating it, and the KV cache stores only the K/V heads.
    """

    def __init__(self, config: LlamaConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.head_dim = config.head_dim
        self.n_heads, self.n_kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.dropout = config.attention_dropout
        # which projections carry a bias is fixed per family, as in transformers' modeling files
        qkv_bias = {"llama": config.attention_bias, "mistral": False, "qwen2": True,
                    "qwen3": config.attention_bias}[config.model_type]
        o_bias = qkv_bias and config.model_type != "qwen2"
        hidden, q_size, kv_size = (config.hidden_size, self.n_heads * self.head_dim,
                                   self.n_kv_heads * self.head_dim)
        self.q_proj = nn.Linear(hidden, q_size, bias=qkv_bias)
        self.k_proj = nn.Linear(hidden, kv_size, bias=qkv_bias)
        self.v_proj = nn.Linear(hidden, kv_size, bias=qkv_bias)
        self.o_proj = nn.Linear(q_size, hidden, bias=o_bias)
        if config.model_type == "qwen3":
            # Qwen3 normalises each query/key head (over head_dim) before the rotation
            self.q_norm = LlamaRMSNorm(self.head_dim, config.rms_norm_eps)
            self.k_norm = LlamaRMSNorm(self.head_dim, config.rms_norm_eps)
        else:
            self.q_norm = self.k_norm = None

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None,
                cache: KVCache | None) -> Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q = apply_rotary(q.transpose(1, 2), cos, sin)       # (B, n_heads, T, head_dim)
        k = apply_rotary(k.transpose(1, 2), cos, sin)       # (B, n_kv_heads, T, head_dim)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)       # every position so far
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None and T > 1, enable_gqa=True,
            dropout_p=self.dropout if self.training else 0.0)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))


class LlamaDecoderLayer(nn.Module):
    """Pre-norm residual block: attention, then the MLP."""

    def __init__(self, config: LlamaConfig, layer_idx: int):
        super().__init__()
        self.self_attn = LlamaAttention(config, layer_idx)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = LlamaRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x, cos, sin, mask, cache):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    """The decoder stack without the head: token ids to final hidden states."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        pad = config.pad_token_id
        pad = pad if isinstance(pad, int) and 0 <= pad < config.vocab_size else None
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=pad)
        self.layers = nn.ModuleList(LlamaDecoderLayer(config, i)
                                    for i in range(config.num_hidden_layers))
        self.norm = LlamaRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary = RotaryEmbedding(rope_inv_freq(config))
        self.sliding = [t == "sliding_attention" for t in config.attention_types()]
        self.window = config.sliding_window if any(self.sliding) else None

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                position_ids: Tensor | None = None, cache: KVCache | None = None) -> Tensor:
        B, T = input_ids.shape
        past = cache.length if cache is not None else 0
        x = self.embed_tokens(input_ids)
        if position_ids is not None:
            position_ids = _as_ids(position_ids, "position_ids")
            if position_ids.ndim == 1:
                position_ids = position_ids.reshape(1, -1)
            if position_ids.shape[-1] != T:
                raise ShapeError(f"LlamaModel: position_ids have {position_ids.shape[-1]} "
                                 f"positions for an input of {T} tokens")
        cos, sin = self.rotary(past, T, position_ids, x.dtype, x.device)
        if position_ids is not None:   # (B, T, D) -> (B, 1, T, D): the same for every head
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        # one mask for the full-attention layers, one for the windowed ones (when any)
        full_mask = decoder_mask(attention_mask, T, past, device=x.device)
        window_mask = (decoder_mask(attention_mask, T, past, window=self.window, device=x.device)
                       if self.window is not None else None)
        replays = replays_decode_step(self, cache)
        if replays:        # a short prompt into an empty cache: a step too
            full_mask = step_mask(full_mask, T, past)
            if self.window is not None:
                window_mask = step_mask(window_mask, T, past)
        if replays and captured_tokens(T, full_mask, window_mask, positions=position_ids):
            x = decode_step(self, self._layers_forward)(x, cos, sin, full_mask, window_mask,
                                                        cache)
        else:
            x = self._layers_forward(x, cos, sin, full_mask, window_mask, cache)
        if cache is not None:
            cache.advance(T)
        return x

    def _layers_forward(self, x, cos, sin, full_mask, window_mask, cache):
        """Every decoder layer and the final norm: what a decode step replays once captured."""
        for layer, sliding in zip(self.layers, self.sliding):
            x = layer(x, cos, sin, window_mask if sliding else full_mask, cache)
        return self.norm(x)

    #: Replay the decode step (one new token per sequence) once captured from the layers'
    #: forward (see :mod:`gradient.capture`); False always runs the module graph.
    fused_decode = True
    _derived_caches = ("_captured",)


# ----------------------------------------------------------------------------- the LM
@register_model(*MODEL_TYPES)
class LlamaForCausalLM(PreTrainedModel):
    """A LLaMA-family causal language model (``transformers.LlamaForCausalLM``,
    ``MistralForCausalLM``, ``Qwen2ForCausalLM``, ``Qwen3ForCausalLM``).

    Example::

        >>> model = LlamaForCausalLM.from_pretrained("path/to/llama", dtype=gradient.float32)
        >>> out = model(input_ids, labels=input_ids)        # out.logits (B, T, vocab), out.loss
    """

    config_class = LlamaConfig
    _tied_weights = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        with nn.init.skip_init():   # the layers' own (PyTorch) init is replaced just below
            self.model = LlamaModel(config)
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self._init_weights()        # itself skipped when from_pretrained is about to load
        self.tie_weights()

    def _init_weights(self) -> None:
        """transformers' initialisation: N(0, initializer_range) for projections and
        embeddings (the padding row zero), zero biases, unit norm weights (already ones)."""
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        embedding = self.model.embed_tokens
        if embedding.padding_idx is not None:
            with no_grad():
                embedding.weight[embedding.padding_idx] = 0

    @classmethod
    def _from_hf_tensor(cls, name: str, array):
        # older checkpoints carry each layer's rotary inverse frequencies: derived from the
        # config here, as in transformers, so not loaded
        return None if name.endswith("rotary_emb.inv_freq") else (name, array)

    def forward(self, input_ids, attention_mask=None, position_ids=None,
                cache: KVCache | None = None, labels=None,
                logits_to_keep: int = 0) -> CausalLMOutput:
        """Logits for ``input_ids`` (B, T), and the loss when ``labels`` are given.

        * ``attention_mask`` (B, past + T) of 1 (token) / 0 (padding), covering the cached
          positions too; ``None`` when nothing is padded.
        * ``position_ids`` (B, T) or (T,); default ``past .. past + T - 1``. With left padding
          pass ``attention_mask.cumsum(-1) - 1`` (clipped at 0) to match transformers' generate.
        * ``cache``: a :class:`KVCache` from :meth:`new_cache`; the keys and values of the new
          tokens are appended to it and it advances by T.
        * ``labels`` (B, T): token ids, ``-100`` to ignore; the loss is the mean cross-entropy
          of predicting ``labels[:, t + 1]`` from position ``t`` (labels are shifted inside,
          as in transformers: pass ``labels=input_ids``).
        * ``logits_to_keep=k > 0``: the head runs only on the last ``k`` positions (in a
          prefill, only the last position's logits are needed for the next token).

        Example: ``logits = model(ids, cache=cache, logits_to_keep=1).logits[:, -1]``
        """
        input_ids = _as_ids(input_ids, "input_ids")
        if input_ids.ndim != 2:
            raise ShapeError(f"LlamaForCausalLM: input_ids must be (batch, seq_len), got shape "
                             f"{tuple(input_ids.shape)}")
        if attention_mask is not None and not isinstance(attention_mask, (Tensor, RowPrefixBias)):
            attention_mask = from_numpy(np.asarray(attention_mask))   # 1/0 of any dtype
        cache = self._inference_cache(input_ids, cache)
        hidden = self.model(input_ids, attention_mask, position_ids, cache)
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            labels = _as_ids(labels, "labels")
            # position t predicts token t + 1; the last position has no target (-100)
            targets = F.pad(labels[:, 1:], (0, 1), value=-100)[:, -logits.shape[1]:]
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).to(float32),
                                   targets.reshape(-1), ignore_index=-100)
        return CausalLMOutput(logits=logits, loss=loss)

    def new_cache(self, batch_size: int, max_length: int, dtype=None) -> KVCache:
        """A :class:`KVCache` for ``batch_size`` sequences of up to ``max_length`` tokens, in
        ``dtype``, else the model's ``kv_cache_dtype``, else the weights' dtype.

        Example: ``cache = model.new_cache(1, len(prompt) + max_new_tokens)``
        """
        from ..generation.kv_cache import KVCache
        weight = self.model.norm.weight   # always a float parameter (a GGUF embedding may not be)
        c = self.config
        return KVCache(c.num_hidden_layers, batch_size, c.num_key_value_heads, c.head_dim,
                       max_length, dtype=dtype or self.kv_cache_dtype or weight.dtype,
                       device=weight.device)


def _as_ids(x, name: str) -> Tensor:
    """An integer tensor from a Tensor, NumPy array or nested list."""
    if not isinstance(x, Tensor):
        x = from_numpy(np.asarray(x, dtype=np.int64))
    if x.dtype.is_floating_point:
        raise ArgumentTypeError(f"LlamaForCausalLM: {name} must be integers, got {x.dtype}")
    return x
