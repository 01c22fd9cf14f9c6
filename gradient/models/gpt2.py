"""GPT-2, as in Hugging Face's ``GPT2LMHeadModel``: same parameter names, same numbers.

Read top to bottom: token and learned position embeddings are added, then ``n_layer`` blocks,
each ``x + attn(ln_1(x))`` followed by ``x + mlp(ln_2(x))`` (pre-LayerNorm), a final
LayerNorm, and a head that shares its weight with the token embedding.

* Attention: one ``c_attn`` projection gives queries, keys and values for all heads; causal
  ``scaled_dot_product_attention``; ``c_proj`` mixes the heads back. With a KV cache the new
  keys and values are written into the cache and attention reads everything cached so far.
* MLP: ``c_fc`` to ``4 * n_embd``, GELU with the tanh approximation (``gelu_new``), ``c_proj``.

OpenAI's checkpoints store these projections as ``Conv1D`` weights of shape ``(in, out)``;
gradient uses ``nn.Linear`` (``(out, in)``, as PyTorch), so :meth:`GPT2LMHeadModel._from_hf_tensor`
transposes them on load (a view of the mapped file, not a copy) and ``save_pretrained`` writes
them back in the checkpoint's layout.

Example::

    >>> model = GPT2LMHeadModel.from_pretrained("path/to/gpt2")
    >>> logits = model(gradient.tensor([[15496, 11, 616, 1438]])).logits   # (1, 4, 50257)
"""

from __future__ import annotations

import dataclasses
import math

from .. import nn
from ..nn import functional as F
from ..ops.attention import attention_arrays
from ..ops.creation import arange
from ..ops.nn import LayerNorm as _LayerNormFn
from ..ops.nn import layer_norm_is_fused
from ..nn.module import structure_version
from ..tensor import Tensor
from .masks import decoder_mask
from .pretrained import CausalLMOutput, ModelConfig, PreTrainedModel, register_model
from .gpt2_decode import DecodeStep
from .raw_decode import linear as _linear
from .raw_decode import plain as _plain
from .raw_decode import plain_linear as _plain_linear
from .raw_decode import step_may_skip_modules

__all__ = ["GPT2Config", "GPT2LMHeadModel"]

# Conv1D layers of the checkpoint: their weights are (in, out) there, (out, in) here.
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


@dataclasses.dataclass
class GPT2Config(ModelConfig):
    """GPT-2's hyper-parameters, named as in its ``config.json``; defaults are GPT-2 small."""

    model_type = "gpt2"
    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None            # MLP width; None means 4 * n_embd
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False  # only changes float16 rounding in transformers
    bos_token_id: int = 50256
    eos_token_id: int = 50256
    tie_word_embeddings: bool = True

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"GPT2Config: n_embd ({self.n_embd}) must be a multiple of n_head "
                             f"({self.n_head})")
        if self.activation_function not in _ACTIVATIONS:
            raise ValueError(f"GPT2Config: activation_function {self.activation_function!r} is "
                             f"not supported; expected one of {sorted(_ACTIVATIONS)}")


_ACTIVATIONS = {
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}
# the GELUs above by their form, for the compiled decode step (gpt2_decode)
_GELU_FORMS = {_ACTIVATIONS["gelu_new"]: "tanh", _ACTIVATIONS["gelu_pytorch_tanh"]: "tanh",
               F.gelu: "none"}


class GPT2Attention(nn.Module):
    def __init__(self, config: GPT2Config, layer_idx: int):
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.n_embd // config.n_head
        self.layer_idx = layer_idx
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_dropout, self.resid_dropout = config.attn_pdrop, nn.Dropout(config.resid_pdrop)
        self.scale = (1.0 / math.sqrt(self.head_dim)) if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scale /= layer_idx + 1

    def forward(self, x, mask=None, cache=None):
        B, T, C = x.shape
        # (B, T, 3C) -> three (B, n_head, T, head_dim)
        q, k, v = self.c_attn(x).view(B, T, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)
        # Without an explicit mask, plain causal attention is exact when the cache is empty; a
        # single new token (decode) attends to every cached position.
        causal = mask is None and k.shape[-2] == T and T > 1
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.attn_dropout if self.training else 0.0,
                                           scale=self.scale)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class GPT2MLP(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        inner = config.n_inner or 4 * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, inner)
        self.c_proj = nn.Linear(inner, config.n_embd)
        self.act = _ACTIVATIONS[config.activation_function]
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPT2Block(nn.Module):
    def __init__(self, config: GPT2Config, layer_idx: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(config)

    def forward(self, x, mask=None, cache=None):
        x = x + self.attn(self.ln_1(x), mask, cache)
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    """The transformer without the head (``GPT2Model`` in transformers)."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList(GPT2Block(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None):
        T = input_ids.shape[-1]
        past = cache.length if cache is not None else 0
        if past + T > self.wpe.num_embeddings:
            raise ValueError(f"GPT-2: {past + T} positions exceed the model's n_positions "
                             f"({self.wpe.num_embeddings})")
        if position_ids is None:
            position_ids = arange(past, past + T, device=input_ids.device).unsqueeze(0)
        x = self.drop(self.wte(input_ids) + self.wpe(position_ids))
        mask = decoder_mask(attention_mask, T, past, device=input_ids.device)
        # no mask: one new token, or a prompt into an empty cache (see decoder_mask); these may
        # skip the module graph
        layers, step = self._decode_plan(x, cache) if mask is None else (None, None)
        # float32 on the CPU: each layer's small ops in a few compiled calls, ln_f included
        out = step(x, cache) if step is not None else None
        if out is not None:
            x = Tensor._make(out, False, x._backend)
        elif layers is not None and T == 1:
            x = _decode_on_arrays(layers, x, cache)
        else:
            for block in self.h:
                x = block(x, mask, cache)
        if cache is not None:
            cache.advance(T)
        return x if out is not None else self.ln_f(x)

    _derived_caches = ("_plan",)   # see _decode_plan

    #: Decode single tokens on raw arrays when possible (the compiled CPU step of
    #: :mod:`gradient.models.gpt2_decode`, which also takes prompts into an empty cache, else
    #: :func:`_decode_on_arrays`); False always runs the module graph.
    fused_decode = True

    def _decode_plan(self, x, cache):
        """``(layers, step)`` for a decode step (one token, no padding mask) or a prefill
        (``step`` only: a prompt into an empty cache), ``(None, None)``
        unless the stack allows skipping the module graph
        (:func:`~gradient.models.raw_decode.step_may_skip_modules`) and every block is made of
        this file's modules (plain ``nn.Linear`` of ``x``'s dtype, ``nn.LayerNorm``,
        ``nn.Dropout``) without forward hooks. ``layers`` holds per block the modules
        :func:`_decode_on_arrays` runs; ``step`` is the compiled CPU step over them and ``ln_f``
        (:class:`~gradient.models.gpt2_decode.DecodeStep`, when it applies). Both are kept
        until some module changes (:func:`~gradient.nn.module.structure_version`)."""
        if not step_may_skip_modules(self, cache):
            return None, None
        key = (id(self), structure_version(), x.dtype)
        plan = self.__dict__.get("_plan")
        if plan is None or plan[0] != key:
            layers = self._blocks_plan(x.dtype.numpy)
            step = None
            if layers is not None and _plain(self.ln_f, nn.LayerNorm):
                step = DecodeStep.build(layers, self.ln_f, _GELU_FORMS)
            plan = (key, layers, step)
            self.__dict__["_plan"] = plan   # (not an attribute: setting it is no change)
        return plan[1], plan[2]

    def _blocks_plan(self, dtype):
        """Per block, the modules :func:`_decode_on_arrays` runs, or None unless each is plain
        (:func:`~gradient.models.raw_decode.plain`) and each Linear's parameters have the NumPy
        ``dtype``."""
        layers = []
        for block in self.h:
            if not _plain(block, GPT2Block):
                return None
            parts = block._modules
            attn, mlp = parts["attn"], parts["mlp"]
            if not (_plain(attn, GPT2Attention) and _plain(mlp, GPT2MLP)):
                return None
            a, m = attn._modules, mlp._modules
            ln_1, ln_2, drop_a, drop_m = parts["ln_1"], parts["ln_2"], a["resid_dropout"], m["dropout"]
            c_attn, attn_proj, c_fc, mlp_proj = a["c_attn"], a["c_proj"], m["c_fc"], m["c_proj"]
            if not (_plain(ln_1, nn.LayerNorm) and _plain(ln_2, nn.LayerNorm)
                    and _plain(drop_a, nn.Dropout) and _plain(drop_m, nn.Dropout)
                    and _plain_linear(c_attn, dtype) and _plain_linear(attn_proj, dtype)
                    and _plain_linear(c_fc, dtype) and _plain_linear(mlp_proj, dtype)):
                return None
            layers.append((ln_1, c_attn, attn, attn_proj, ln_2, c_fc, mlp.act, mlp_proj))
        return layers


def _layer_norm(b, x, norm):
    """``norm`` on the raw array ``x``: the backend's fused kernel where ``F.layer_norm`` would
    run it, the module's forward otherwise."""
    weight, bias = (None if p is None else p._data for p in (norm.weight, norm.bias))
    if layer_norm_is_fused(b, x, weight, bias, norm.normalized_shape):
        return _LayerNormFn.forward_arrays(b, x, weight, bias, norm.eps)
    return norm.forward(Tensor._make(x, False, b))._data


def _decode_on_arrays(layers, x, cache):
    """Every block for one new token per sequence (``x``: (B, 1, n_embd)) on raw backend arrays.

    The same forwards as the modules' (Linear, LayerNorm, the activation, attention), in the
    same order, so the hidden state is bit for bit the module graph's. What is skipped is the
    Module and Tensor machinery around the two hundred small calls of a decode step: about 4 of
    the 25 ms per token of GPT-2 small on 2 CPU cores, whose products otherwise read the 500 MB
    of weights at memory speed.
    """
    b = x._backend
    B, _, C = x.shape
    h = x._data
    for layer, (ln_1, c_attn, attn, attn_proj, ln_2, c_fc, act, mlp_proj) in enumerate(layers):
        qkv = b.reshape(_linear(b, _layer_norm(b, h, ln_1), c_attn), (B, 1, 3, attn.n_head, attn.head_dim))
        qkv = b.permute(qkv, (2, 0, 3, 1, 4))                  # (3, B, n_head, 1, head_dim)
        q, k, v = (b.getitem(qkv, i) for i in range(3))
        k, v = cache.update_arrays(layer, k, v)
        y = attention_arrays(b, q, k, v, attn.scale)
        if y is None:   # a dtype the raw paths do not take: the op itself
            y = F.scaled_dot_product_attention(*(Tensor._make(t, False, b) for t in (q, k, v)),
                                               scale=attn.scale)._data
        y = b.reshape(b.permute(y, (0, 2, 1, 3)), (B, 1, C))
        h = b.binary("add", h, _linear(b, y, attn_proj))
        inner = act(Tensor._make(_linear(b, _layer_norm(b, h, ln_2), c_fc), False, b))._data
        h = b.binary("add", h, _linear(b, inner, mlp_proj))
    return Tensor._make(h, False, b)


@register_model("gpt2")
class GPT2LMHeadModel(PreTrainedModel):
    """GPT-2 with its language-modelling head (tied to the token embedding).

    ``forward(input_ids, attention_mask=None, position_ids=None, cache=None, labels=None,
    logits_to_keep=0)`` returns a :class:`CausalLMOutput`: ``logits`` of shape (B, T, vocab)
    (only the last ``logits_to_keep`` positions when it is positive, which is all generation
    needs), and ``loss``, the next-token cross-entropy, when ``labels`` are given (positions
    labelled -100 are ignored; labels are shifted inside, as in transformers).
    """

    config_class = GPT2Config
    _tied_weights = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self._init_weights(config)
        self.tie_weights()

    def _init_weights(self, config: GPT2Config) -> None:
        """GPT-2's initialisation: N(0, 0.02) weights, zero biases, and the residual
        projections scaled by 1/sqrt(2 * n_layer)."""
        std = config.initializer_range
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif ".ln_" in name or name.startswith("transformer.ln_f"):
                nn.init.ones_(p)
            elif name.endswith("c_proj.weight"):
                nn.init.normal_(p, std=std / math.sqrt(2 * config.n_layer))
            else:
                nn.init.normal_(p, std=std)

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, labels=None,
                logits_to_keep: int = 0) -> CausalLMOutput:
        x = self.transformer(input_ids, attention_mask, position_ids, cache)
        if logits_to_keep > 0:
            x = x[:, -logits_to_keep:]
        logits = self.lm_head(x)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                   labels[:, 1:].reshape(-1), ignore_index=-100)
        return CausalLMOutput(logits, loss)

    def new_cache(self, batch_size: int, max_length: int, dtype=None):
        """A :class:`~gradient.generation.KVCache` for ``max_length`` positions."""
        from ..generation.kv_cache import KVCache
        c = self.config
        wte = self.transformer.wte.weight  # not the head's: a quantized head has no float weight
        return KVCache(c.n_layer, batch_size, c.n_head, c.n_embd // c.n_head, max_length,
                       dtype=dtype or wte.dtype, device=wte.device)

    # -- the checkpoint's layout
    @classmethod
    def _from_hf_tensor(cls, name, array):
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            return None  # causal-mask buffers that old checkpoints carry; nothing to learn
        if not name.startswith(("transformer.", "lm_head.")):
            name = "transformer." + name  # OpenAI's files name GPT2Model's tensors bare
        if name.endswith(_CONV1D):
            array = array.T
        return name, array

    @classmethod
    def _to_hf_tensor(cls, name, array):
        return name, (array.T if name.endswith(_CONV1D) else array)
