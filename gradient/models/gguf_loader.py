"""GGUF files to gradient models: a LLaMA-family model or GPT-2 and its tokenizer from one
``.gguf`` file.

A GGUF file (llama.cpp's format, read by :class:`gradient.io.gguf.GGUFReader`) holds what a
Hugging Face directory spreads over ``config.json``, ``model.safetensors`` and
``tokenizer.json``, under other names. This module maps them back:

* **config** -- ``llama.block_count``, ``llama.embedding_length``, ``llama.attention.head_count``
  ... become a :class:`~gradient.models.llama.LlamaConfig` (see :func:`config_from_gguf`);
  ``output.weight`` missing means tied embeddings. llama.cpp's ``gpt2`` architecture (``gpt2.*``
  keys, what ``gradient export-gguf`` and llama.cpp's converter write for GPT-2) becomes a
  :class:`~gradient.models.gpt2.GPT2Config`.
* **weights** -- ``blk.3.attn_q.weight`` becomes ``model.layers.3.self_attn.q_proj.weight``
  (see :func:`hf_name`), GPT-2's ``blk.3.attn_qkv.weight`` becomes
  ``transformer.h.3.attn.c_attn.weight`` (:func:`gpt2_hf_name`), read from the memory-mapped
  file tensor by tensor.
  llama.cpp's converter reorders the rows of each query and key head of ``llama`` models for its
  interleaved rotary layout; :func:`unpermute_qk` puts them back in Hugging Face's half-split
  layout, which :mod:`gradient.models.llama` rotates.
* **tokenizer** -- ``tokenizer.ggml.*`` becomes a :class:`~gradient.tokenizers.Tokenizer`: a
  byte-level BPE (``tokenizer.ggml.model == "gpt2"``) with the pre-tokenizer llama.cpp uses for
  the file's ``tokenizer.ggml.pre``, or a SentencePiece-style BPE with byte fallback
  (``"llama"``); special tokens, BOS/EOS settings and the chat template come along (see
  :func:`tokenizer_from_gguf`).

By default the matrices stay in their GGML types (:class:`~gradient.quant.QuantizedLinear`,
:class:`~gradient.quant.QuantizedEmbedding`), so a 4-bit file takes about 4 bits per weight in
memory; ``quantized=False`` dequantizes everything into a float model instead.

Example::

    >>> model, tokenizer = load_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")
    >>> ids = tokenizer.encode("The capital of France is")
    >>> tokenizer.decode(model.generate([ids], max_new_tokens=8)[0])
"""

from __future__ import annotations

import re
import warnings
import numpy as np

from ..dtypes import float16
from ..errors import ArgumentValueError, FileFormatError, UnknownArchitectureError, UnsupportedError
from ..io.gguf import GGUFReader
from .. import nn
from ..backends.host_memory import release_freed_memory
from ..nn import Parameter
from ..nn import init as _init
from ..ops.creation import from_numpy
from ..quant.embedding import QuantizedEmbedding
from ..quant.ggml import GGMLType
from ..quant.interleaved import INTERLEAVED_TYPES
from ..quant.linear import QuantizedLinear
from ..quant.matmul import MATMUL_TYPES
from .gpt2 import GPT2Config, GPT2LMHeadModel
from .llama import LlamaConfig, LlamaForCausalLM, RotaryEmbedding, rope_inv_freq
from .pretrained import _as_dtype

__all__ = ["load_gguf", "load_gguf_tokenizer", "config_from_gguf", "tokenizer_from_gguf",
           "hf_name", "gpt2_hf_name", "unpermute_qk", "permute_qk", "GGUF_ARCHITECTURES"]

# GGUF architecture -> the config's model_type. llama.cpp stores Mistral as "llama".
GGUF_ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gpt2": "gpt2"}
# architectures whose q/k rows llama.cpp's converter permutes (their rotary embedding is the
# interleaved "normal" one in llama.cpp; qwen2/qwen3 use the half-split "neox" one, as HF does)
_PERMUTED_QK = {"llama"}

# GGUF tensor names -> Hugging Face names
_TOP_LEVEL = {"token_embd.weight": "model.embed_tokens.weight",
              "output_norm.weight": "model.norm.weight",
              "output.weight": "lm_head.weight"}
_PER_LAYER = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
              "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
              "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
              "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
              "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
_LAYER_NAME = re.compile(r"blk\.(\d+)\.(\w+)\.(weight|bias)")
# tensors that are not parameters: the llama3 rotary frequency factors (used, see below)
_NOT_PARAMETERS = {"rope_freqs.weight"}
# the matrices that quantized=True keeps in their GGML blocks: the projections of every layer
# (in any type gradient multiplies by), the output head (likewise) and the token embedding (in
# the types it repacks; an F16 table is converted to a float parameter)
_PROJECTIONS = tuple(f"{p}.weight" for p in ("q_proj", "k_proj", "v_proj", "o_proj",
                                              "gate_proj", "up_proj", "down_proj"))
_HEAD = "lm_head.weight"
_EMBEDDING = "model.embed_tokens.weight"

# GPT-2's GGUF names (llama.cpp's gpt2: queries, keys and values in one tensor, LayerNorms with
# biases, learned positions) -> gradient's GPT2LMHeadModel names
_GPT2_TOP_LEVEL = {"token_embd.weight": "transformer.wte.weight",
                   "position_embd.weight": "transformer.wpe.weight",
                   "output_norm.weight": "transformer.ln_f.weight",
                   "output_norm.bias": "transformer.ln_f.bias",
                   "output.weight": "lm_head.weight"}
_GPT2_PER_LAYER = {"attn_norm": "ln_1", "attn_qkv": "attn.c_attn", "attn_output": "attn.c_proj",
                   "ffn_norm": "ln_2", "ffn_up": "mlp.c_fc", "ffn_down": "mlp.c_proj"}
_GPT2_PROJECTIONS = tuple(f"{p}.weight" for p in ("attn.c_attn", "attn.c_proj", "mlp.c_fc",
                                                   "mlp.c_proj"))


# ----------------------------------------------------------------------------- names and layout
def hf_name(gguf_name: str) -> str | None:
    """The Hugging Face parameter name of a GGUF tensor, or None if it has none.

    Example: ``hf_name("blk.0.attn_q.weight") == "model.layers.0.self_attn.q_proj.weight"``
    """
    return renamed(gguf_name, _TOP_LEVEL, _LAYER_NAME, _PER_LAYER, "model.layers")


def gpt2_hf_name(gguf_name: str) -> str | None:
    """:func:`hf_name` of a GPT-2 file's tensor.

    Example: ``gpt2_hf_name("blk.0.attn_qkv.weight") == "transformer.h.0.attn.c_attn.weight"``
    """
    return renamed(gguf_name, _GPT2_TOP_LEVEL, _LAYER_NAME, _GPT2_PER_LAYER, "transformer.h")


def renamed(name: str, top_level: dict, layer_name, per_layer: dict,
            layer_prefix: str) -> str | None:
    """``name`` in another naming (one table each way: Hugging Face's and GGUF's, per
    architecture): ``top_level[name]``, or, where ``layer_name`` (a compiled pattern of groups
    layer, part, kind) matches and ``per_layer`` names the part,
    ``{layer_prefix}.{layer}.{per_layer[part]}.{kind}``; None otherwise."""
    if name in top_level:
        return top_level[name]
    m = layer_name.fullmatch(name)
    if m and m.group(2) in per_layer:
        return f"{layer_prefix}.{m.group(1)}.{per_layer[m.group(2)]}.{m.group(3)}"
    return None


def permute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Hugging Face's q/k rows to llama.cpp's order (what its converter writes).

    Within each head, HF rotates pairs ``(i, i + head_dim/2)``; llama.cpp rotates neighbours
    ``(2i, 2i + 1)``. The converter interleaves each head's two halves so that the pairs meet.
    """
    rows = w.shape[0]
    return (w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's q/k rows (or bias) back to Hugging Face's order; the inverse of
    :func:`permute_qk`. ``n_heads`` is the number of query heads for q, of key/value heads for k.

    Example: ``unpermute_qk(permute_qk(w, 4), 4)`` is ``w``.
    """
    rows = w.shape[0]
    if rows % (2 * n_heads):
        raise ArgumentValueError(
            f"unpermute_qk: {rows} rows are not {n_heads} heads of an even size")
    return np.ascontiguousarray(w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:])
                                .swapaxes(1, 2).reshape(w.shape))


# ----------------------------------------------------------------------------- config
def _architecture(metadata: dict, where: str) -> str:
    arch = metadata.get("general.architecture")
    if arch not in GGUF_ARCHITECTURES:
        raise UnknownArchitectureError(
            f"{where}: GGUF architecture {arch!r} is not one gradient loads; supported: "
            f"{sorted(GGUF_ARCHITECTURES)}")
    return arch


def config_from_gguf(metadata: dict, tensor_names=(), where: str = "GGUF file"
                     ) -> LlamaConfig | GPT2Config:
    """A :class:`LlamaConfig` (or, for a ``gpt2`` file, a :class:`GPT2Config`) from GGUF
    metadata (and the tensor names, which say whether the output projection is tied to the
    embedding).

    Example: ``config_from_gguf(GGUFReader(path).metadata, reader.tensors)``
    """
    arch = _architecture(metadata, where)

    def get(key, default=None, required=False):
        value = metadata.get(f"{arch}.{key}", default)
        if required and value is None:
            raise FileFormatError(f"{where}: the metadata has no {arch}.{key}, which a {arch} "
                                  f"model needs")
        return value

    if arch == "gpt2":
        return _gpt2_config(metadata, get, set(tensor_names), where)

    if get("expert_count", 0):
        raise UnsupportedError(f"{where}: mixture-of-experts {arch} models "
                               f"({get('expert_count')} experts) are not supported yet")
    hidden = int(get("embedding_length", required=True))
    heads = int(get("attention.head_count", required=True))
    kv_heads = get("attention.head_count_kv", heads)
    if isinstance(kv_heads, list):   # per-layer counts: only a constant one is supported
        if len(set(kv_heads)) != 1:
            raise UnsupportedError(f"{where}: per-layer key/value head counts {kv_heads} "
                                   f"are not supported")
        kv_heads = kv_heads[0]
    head_dim = int(get("attention.key_length", hidden // heads))
    if int(get("attention.value_length", head_dim)) != head_dim:
        raise UnsupportedError(f"{where}: key and value heads of different sizes are not "
                               f"supported")
    rope_dim = int(get("rope.dimension_count", head_dim))
    if rope_dim != head_dim:
        raise UnsupportedError(f"{where}: rotary embeddings on {rope_dim} of {head_dim} "
                               f"head dimensions (partial rotary) are not supported")
    tokens = metadata.get("tokenizer.ggml.tokens")
    vocab = get("vocab_size") or (len(tokens) if tokens else None)
    if vocab is None:
        raise FileFormatError(f"{where}: no {arch}.vocab_size and no tokenizer.ggml.tokens: "
                              f"the vocabulary size is unknown")
    eps = float(np.float32(get("attention.layer_norm_rms_epsilon", 1e-6)))
    config = LlamaConfig(
        model_type=GGUF_ARCHITECTURES[arch],
        vocab_size=int(vocab),
        hidden_size=hidden,
        intermediate_size=int(get("feed_forward_length", required=True)),
        num_hidden_layers=int(get("block_count", required=True)),
        num_attention_heads=heads,
        num_key_value_heads=int(kv_heads),
        head_dim=head_dim,
        max_position_embeddings=int(get("context_length", 2048)),
        # stored as float32: print 1e-05, not 9.999999747378752e-06 (the same float32)
        rms_norm_eps=float(str(np.float32(eps))),
        rope_theta=float(get("rope.freq_base", 10000.0)),
        rope_scaling=_rope_scaling(get, where),
        tie_word_embeddings="output.weight" not in set(tensor_names),
        attention_bias="blk.0.attn_q.bias" in set(tensor_names) and arch != "qwen2",
        bos_token_id=metadata.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=metadata.get("tokenizer.ggml.eos_token_id"),
        pad_token_id=metadata.get("tokenizer.ggml.padding_token_id"),
    )
    return config


def _gpt2_config(metadata: dict, get, tensor_names: set, where: str) -> GPT2Config:
    """llama.cpp's gpt2 keys as a :class:`GPT2Config`: GELU with the tanh approximation and
    attention scaled by the head size alone, as llama.cpp's gpt2 computes."""
    hidden = int(get("embedding_length", required=True))
    tokens = metadata.get("tokenizer.ggml.tokens")
    vocab = get("vocab_size") or (len(tokens) if tokens else None)
    if vocab is None:
        raise FileFormatError(f"{where}: the metadata has no gpt2.vocab_size and no "
                              f"tokenizer.ggml.tokens: the vocabulary size is unknown")
    special = {k: metadata.get(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos")}
    return GPT2Config(
        vocab_size=int(vocab), n_positions=int(get("context_length", 1024)), n_embd=hidden,
        n_layer=int(get("block_count", required=True)),
        n_head=int(get("attention.head_count", required=True)),
        n_inner=int(get("feed_forward_length", 4 * hidden)),
        layer_norm_epsilon=float(str(np.float32(get("attention.layer_norm_epsilon", 1e-5)))),
        tie_word_embeddings="output.weight" not in tensor_names,
        **{f"{k}_token_id": int(v) for k, v in special.items() if v is not None})


def _rope_scaling(get, where: str) -> dict | None:
    kind = get("rope.scaling.type")
    factor = get("rope.scaling.factor")
    if kind is None and get("rope.scale_linear") is not None:   # older files
        kind, factor = "linear", get("rope.scale_linear")
    if kind in (None, "none") or (kind == "linear" and factor in (None, 1.0)):
        return None
    if kind == "linear":
        return {"rope_type": "linear", "factor": float(factor)}
    raise UnsupportedError(f"{where}: rope scaling of type {kind!r} is not supported (only "
                           f"'linear', and llama3's through rope_freqs.weight)")


# ----------------------------------------------------------------------------- the model
#: metadata keys holding one entry per token or merge: only the tokenizer reads them
_VOCABULARY_LISTS = ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.scores",
                     "tokenizer.ggml.token_type")


def load_gguf(path, dtype=None, quantized: bool = True, activations: str = "float32"):
    """Load a LLaMA-family or GPT-2 GGUF file; returns ``(model, tokenizer)``.

    ``quantized=True`` (the default, as llama.cpp): every matrix stored in a GGML type stays in
    it -- the projections of every layer become :class:`~gradient.quant.QuantizedLinear`
    layers, the token embedding a :class:`~gradient.quant.QuantizedEmbedding` and the output
    head a ``QuantizedLinear`` (over the embedding's table when they are tied). A 4-bit file
    stays about 4-bit in memory: the blocks are repacked for the int8 kernels (see
    :mod:`gradient.quant.interleaved`) and their pages of the mapped file are released.
    ``activations`` (``"float32"`` or ``"int8"``) is the layers' product (see
    :class:`~gradient.quant.QuantizedLinear`). With ``"float32"`` (the default) the model
    computes exactly: the file's weights times float32 activations, as transformers computes
    on the dequantized weights, its KV cache in float32. With ``"int8"`` it computes as
    llama.cpp does by default: activations quantized to int8 in the products (about twice as
    fast a prompt) and its KV cache in float16 (``model.kv_cache_dtype``: half the memory); a
    BF16 file's matrices then take activations rounded to bfloat16, as llama.cpp's do (the
    CPU's bfloat16 dot product: a 64-token prompt 1.3 to 1.5 times as fast).
    The norms, and tensors stored as floats, are float32 parameters (or ``dtype``).

    ``quantized=False``: every weight dequantized to float32 (``dtype=None``) or to ``dtype``
    (``"bfloat16"``, ``gradient.float16`` ...) one tensor at a time: a plain float model, as
    from ``from_pretrained``, that trains and converts like one.

    The model is in eval mode, with ``name_or_path`` set and ``generation_config`` holding the
    file's BOS/EOS ids.

    Example::

        >>> model, tok = load_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")
        >>> out = model.generate([tok.encode("Hello")], max_new_tokens=10)
    """
    with GGUFReader(path) as reader:
        # the tokenizer first: it is quick, and a file whose tokenizer is not supported fails
        # before the weights are read
        tokenizer = tokenizer_from_gguf(reader.metadata, name_or_path=reader.path)
        config = config_from_gguf(reader.metadata, reader.tensors, reader.path)
        # the vocabulary's lists (about 10 MiB of Python strings for 49k tokens and merges)
        # now live in the tokenizer: let them go before the weights add to the peak
        for key in _VOCABULARY_LISTS:
            reader.metadata.pop(key, None)
        release_freed_memory()
        model = _load_model(reader, config, _as_dtype(dtype), quantized, activations)
    release_freed_memory()   # the per-tensor temporaries of the conversion
    model.name_or_path = reader.path
    if quantized and activations == "int8":
        model.kv_cache_dtype = float16
    eos = [i for i in (reader.metadata.get("tokenizer.ggml.eos_token_id"),
                       reader.metadata.get("tokenizer.ggml.eot_token_id")) if i is not None]
    model.generation_config = {k: v for k, v in (
        ("bos_token_id", reader.metadata.get("tokenizer.ggml.bos_token_id")),
        ("eos_token_id", list(dict.fromkeys(eos)) or None)) if v is not None}
    return model, tokenizer


def load_gguf_tokenizer(path):
    """Only the tokenizer of a GGUF file (reads the header, not the weights).

    Example: ``tok = load_gguf_tokenizer("model.gguf")``
    """
    with GGUFReader(path) as reader:
        return tokenizer_from_gguf(reader.metadata, name_or_path=reader.path)


def _load_model(reader: GGUFReader, config: LlamaConfig | GPT2Config, dtype,
                quantized: bool = True, activations: str = "float32"):
    metadata, where = reader.metadata, reader.path
    arch = _architecture(metadata, where)
    gpt2 = isinstance(config, GPT2Config)
    named = gpt2_hf_name if gpt2 else hf_name
    embedding = "transformer.wte.weight" if gpt2 else _EMBEDDING
    projections = _GPT2_PROJECTIONS if gpt2 else _PROJECTIONS
    with _init.skip_init():
        model = GPT2LMHeadModel(config) if gpt2 else LlamaForCausalLM(config)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    tied = model._tied_weights_in_use()
    unknown = [name for name in reader.tensors if name not in _NOT_PARAMETERS
               and named(name) not in expected]
    missing = sorted(set(expected) - set(tied) - {named(n) for n in reader.tensors})
    if missing or unknown:
        raise FileFormatError(
            f"{where}: the tensors do not match a {arch} model of this configuration"
            + (f"; missing: {missing[:10]}" if missing else "")
            + (f"; not understood: {unknown[:10]}" if unknown else ""))
    for name in reader.tensors:
        if name in _NOT_PARAMETERS:
            continue
        target = named(name)
        info = reader.tensors[name]
        if info.shape != expected[target]:
            raise FileFormatError(f"{where}: tensor {name!r} has shape {info.shape}, but the "
                                  f"metadata describes {target} of shape {expected[target]}")
        permuted = arch in _PERMUTED_QK and (".attn_q." in name or ".attn_k." in name)
        n_heads = (config.num_attention_heads if ".attn_q." in name else
                   config.num_key_value_heads) if permuted else None
        owner, _, attr = target.rpartition(".")
        if quantized and _keeps_blocks(target, info.ggml_type, embedding, projections):
            # rows are whole blocks, so llama.cpp's q/k row order is undone on the raw bytes
            blocks = reader.raw(name).reshape(info.shape[0], -1)
            if permuted:
                blocks = unpermute_qk(blocks, n_heads)
            model.set_submodule(owner, _quantized_layer(model.get_submodule(owner), blocks,
                                                        info.ggml_type, activations))
            reader.release(name)   # repacked: the mapped pages need not stay in memory
            continue
        array = reader.dequantize(name)
        if not array.flags.owndata and array.nbytes < _COPIED_BELOW:
            # a small float tensor (a norm's weight) is a view of the map: copied, because
            # reading it later would map the file's pages around it back in (the kernel maps
            # whole page-cache folios, up to megabytes, for a few bytes)
            array = array.copy()
        reader.release(name)
        if permuted:
            array = unpermute_qk(array, n_heads)
        tensor = from_numpy(array)
        # one tensor at a time, replacing the placeholder parameter, so that memory holds the
        # model plus one tensor, not the model twice
        setattr(model.get_submodule(owner), attr,
                Parameter(tensor if dtype is None else tensor.to(dtype), requires_grad=False))
        if target in tied.values():
            model.tie_weights()   # lets go of the placeholder the tied head still holds
    table = model.get_submodule(embedding.rpartition(".")[0])
    if isinstance(table, QuantizedEmbedding) and tied:
        model.lm_head = table.as_linear(_layer_activations(table.qtype, activations))
    else:
        model.tie_weights()
    model.requires_grad_(True)   # as from_pretrained leaves them (fine-tuning works)
    if "rope_freqs.weight" in reader.tensors:
        # llama 3.1-style scaling is stored as per-frequency divisors, not as config keys:
        # llama.cpp rotates by position * inv_freq / factor
        factors = reader.dequantize("rope_freqs.weight").reshape(-1)
        inv_freq = rope_inv_freq(config)
        if factors.shape != inv_freq.shape:
            raise FileFormatError(f"{where}: rope_freqs.weight has {factors.size} factors for "
                                  f"{inv_freq.size} rotary frequencies")
        model.model.rotary = RotaryEmbedding((inv_freq / factors).astype(np.float32))
    model.eval()
    return model


#: float tensors smaller than this are copied out of the map (see _load_model)
_COPIED_BELOW = 1 << 20
#: the float GGML types, which a token embedding keeps as they are (its rows widened on lookup)
_FLOAT_TYPES = (GGMLType.F32, GGMLType.F16, GGMLType.BF16)


def _keeps_blocks(target: str, ggml_type: int, embedding: str = _EMBEDDING,
                  projections: tuple = _PROJECTIONS) -> bool:
    """Whether quantized=True keeps the tensor ``target`` (a Hugging Face name) in its blocks:
    the token ``embedding``, a layer's ``projections`` or the head."""
    if target == embedding:    # the block types, and the float types in their own precision
        return ggml_type in INTERLEAVED_TYPES or ggml_type in _FLOAT_TYPES
    return (target.endswith(projections) or target == _HEAD) and ggml_type in MATMUL_TYPES


def _quantized_layer(layer, blocks, ggml_type: int, activations: str):
    """The quantized replacement of the float placeholder ``layer`` (Linear or Embedding)."""
    if isinstance(layer, nn.Embedding):
        return QuantizedEmbedding.from_blocks(blocks, ggml_type, layer.num_embeddings,
                                              layer.embedding_dim)
    bias = layer.bias.detach().numpy() if layer.bias is not None else None
    return QuantizedLinear.from_blocks(blocks, ggml_type, layer.in_features, layer.out_features,
                                       bias=bias,
                                       activations=_layer_activations(ggml_type, activations))


def _layer_activations(ggml_type: int, activations: str) -> str:
    """A matrix's product for the model's ``activations``: with ``"int8"`` (llama.cpp's
    numerics) a BF16 matrix takes x rounded to bfloat16, as llama.cpp's product for it does;
    every other matrix keeps ``activations``."""
    if activations == "int8" and ggml_type == GGMLType.BF16:
        return "bfloat16"
    return activations


# ----------------------------------------------------------------------------- the tokenizer
# llama.cpp's token types (tokenizer.ggml.token_type)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# The regexes llama.cpp splits text with before byte-level BPE, per tokenizer.ggml.pre
# (llama-vocab.cpp). GPT-2's is the ByteLevel pre-tokenizer's own.
_LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_PRE_TOKENIZERS = {
    **dict.fromkeys(("gpt-2", "gpt2", "phi-2", "roberta-bpe", "mpt", "olmo", "jais", "trillion"),
                    "gpt2"),
    # each digit on its own, then GPT-2's regex
    **dict.fromkeys(("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone",
                     "minerva-7b"), "digits+gpt2"),
    **dict.fromkeys(("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                     "midm-2.0", "lfm2"), "llama3"),
    **dict.fromkeys(("qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "hunyuan"), "qwen2"),
}


def tokenizer_from_gguf(metadata: dict, name_or_path: str | None = None):
    """A :class:`~gradient.tokenizers.Tokenizer` from the ``tokenizer.*`` metadata of a GGUF file.

    ``tokenizer.ggml.model`` ``"gpt2"`` is a byte-level BPE: tokens, merges, and the
    pre-tokenizer llama.cpp uses for ``tokenizer.ggml.pre`` (``"smollm"``: each digit alone,
    then GPT-2's regex; ``"llama-bpe"``, ``"qwen2"``, ``"gpt-2"`` ... see ``_PRE_TOKENIZERS``).
    ``"llama"`` is a SentencePiece vocabulary (scores, byte tokens ``<0x0A>``), built as the
    equivalent BPE with byte fallback. Control tokens become special tokens; user-defined
    tokens are matched in text as added tokens.

    Example: ``tok = tokenizer_from_gguf(GGUFReader("m.gguf").metadata)``
    """
    from tokenizers import AddedToken

    from ..tokenizers import Tokenizer

    where = name_or_path or "GGUF metadata"
    kind = metadata.get("tokenizer.ggml.model")
    tokens = metadata.get("tokenizer.ggml.tokens")
    if kind is None or not tokens:
        raise FileFormatError(f"{where}: no tokenizer in the metadata (tokenizer.ggml.model and "
                              f"tokenizer.ggml.tokens)")
    types = metadata.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens)
    if len(types) != len(tokens):
        raise FileFormatError(f"{where}: {len(tokens)} tokens but {len(types)} token types")
    if kind == "gpt2":
        backend = _byte_level_bpe(metadata, tokens, where)
        default_add_bos = False
    elif kind == "llama":
        backend = _sentencepiece_bpe(metadata, tokens, types, where)
        default_add_bos = True
    else:
        raise UnsupportedError(f"{where}: GGUF tokenizer model {kind!r} is not supported "
                               f"(supported: 'gpt2' byte-level BPE, 'llama' SentencePiece)")

    # control tokens are special (never split, dropped by skip_special_tokens); user-defined
    # ones are matched whole in text, as llama.cpp does
    backend.add_tokens([AddedToken(tokens[i], special=False, normalized=False)
                        for i, t in enumerate(types) if t == USER_DEFINED])
    backend.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                                for i, t in enumerate(types) if t == CONTROL])
    for i, t in enumerate(types):
        if t in (CONTROL, USER_DEFINED) and backend.token_to_id(tokens[i]) != i:
            raise FileFormatError(f"{where}: token {tokens[i]!r} appears more than once in "
                                  f"the vocabulary (ids {i} and {backend.token_to_id(tokens[i])})")

    def token(key):
        i = metadata.get(f"tokenizer.ggml.{key}_token_id")
        return i if isinstance(i, int) and 0 <= i < len(tokens) else None

    add_bos = metadata.get("tokenizer.ggml.add_bos_token", default_add_bos)
    add_eos = metadata.get("tokenizer.ggml.add_eos_token", False)
    bos, eos = token("bos"), token("eos")
    return Tokenizer(backend, bos_token=bos, eos_token=eos, unk_token=token("unknown"),
                     pad_token=token("padding"), sep_token=token("seperator"),
                     cls_token=token("cls"), mask_token=token("mask"),
                     chat_template=_chat_templates(metadata),
                     add_bos_token=bool(add_bos) and bos is not None,
                     add_eos_token=bool(add_eos) and eos is not None,
                     model_max_length=_context_length(metadata),
                     name_or_path=name_or_path)


def _context_length(metadata: dict) -> int | None:
    arch = metadata.get("general.architecture")
    value = metadata.get(f"{arch}.context_length")
    return int(value) if isinstance(value, int) else None


def _chat_templates(metadata: dict):
    default = metadata.get("tokenizer.chat_template")
    names = metadata.get("tokenizer.chat_templates") or []
    named = {n: metadata[f"tokenizer.chat_template.{n}"] for n in names
             if f"tokenizer.chat_template.{n}" in metadata}
    if not named:
        return default
    if default is not None:
        named = {"default": default, **named}
    return named


def _bpe(where: str, vocab: dict, merges: list, **options):
    """The ``tokenizers`` library's BPE model of the file's vocabulary and merges; a
    FileFormatError naming the file where the library refuses them (a merge of a token the
    vocabulary lacks: it raises a bare Exception)."""
    from tokenizers import models
    try:
        return models.BPE(vocab, merges, **options)
    except Exception as e:   # noqa: BLE001  (the library's own, untyped)
        raise FileFormatError(f"{where}: the tokenizer in the GGUF metadata is corrupt: "
                              f"{e}"[:500]) from None


def _byte_level_bpe(metadata: dict, tokens: list, where: str):
    from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers

    merges_raw = metadata.get("tokenizer.ggml.merges")
    if not merges_raw:
        raise FileFormatError(f"{where}: a 'gpt2' tokenizer without tokenizer.ggml.merges")
    merges = []
    for m in merges_raw:
        pair = m.split(" ")
        if len(pair) != 2:
            raise FileFormatError(f"{where}: the merge {m!r} is not two tokens separated by a "
                                  f"space")
        merges.append((pair[0], pair[1]))
    pre = metadata.get("tokenizer.ggml.pre", "default")
    kind = _PRE_TOKENIZERS.get(pre)
    if kind is None:
        if pre != "default":
            raise UnsupportedError(
                f"{where}: the GGUF pre-tokenizer {pre!r} (tokenizer.ggml.pre) is not supported; "
                f"supported: {sorted(_PRE_TOKENIZERS)}")
        warnings.warn(f"{where}: no tokenizer.ggml.pre (an old GGUF file): splitting text with "
                      f"GPT-2's regex, which may tokenize differently from the original model",
                      stacklevel=3)
        kind = "gpt2"
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)   # a duplicate keeps its first id, as llama.cpp's lookup does
    model = _bpe(where, vocab, merges, dropout=None, unk_token=None, fuse_unk=False,
                 byte_fallback=False, ignore_merges=kind == "llama3")
    backend = Tokenizer(model)
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=kind.endswith("gpt2"))
    if kind == "gpt2":
        backend.pre_tokenizer = byte_level
    else:
        regex = {"digits+gpt2": r"\p{N}", "llama3": _LLAMA3_REGEX, "qwen2": _QWEN2_REGEX}[kind]
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(regex), behavior="isolated"), byte_level])
    backend.decoder = decoders.ByteLevel()
    return backend


def _sentencepiece_bpe(metadata: dict, tokens: list, types: list, where: str):
    """SentencePiece's BPE as a ``tokenizers`` BPE with byte fallback.

    SentencePiece merges, among adjacent pieces whose concatenation is in the vocabulary, the
    one with the highest score. A merge list ordered by the score of the merged piece does the
    same, so the merges are all splits of each piece into two pieces of the vocabulary, best
    score first (transformers' GGUF and SentencePiece converters build it the same way).
    """
    from tokenizers import Tokenizer, decoders, normalizers

    scores = metadata.get("tokenizer.ggml.scores")
    if scores is None or len(scores) != len(tokens):
        raise FileFormatError(f"{where}: a 'llama' (SentencePiece) tokenizer needs one "
                              f"tokenizer.ggml.scores entry per token")
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    # only normal pieces are built by merging (control, byte and user-defined ones are not)
    mergeable = [i for i, t in enumerate(types) if t == NORMAL]
    merges = []
    for i in sorted(mergeable, key=lambda i: (-scores[i], i)):
        piece = tokens[i]
        splits = [(piece[:k], piece[k:]) for k in range(1, len(piece))
                  if piece[:k] in vocab and piece[k:] in vocab]
        splits.sort(key=lambda p: (vocab[p[0]], vocab[p[1]]))
        merges.extend(splits)
    unk = metadata.get("tokenizer.ggml.unknown_token_id")
    unk_token = tokens[unk] if isinstance(unk, int) and 0 <= unk < len(tokens) else None
    model = _bpe(where, vocab, merges, dropout=None, unk_token=unk_token, fuse_unk=True,
                 byte_fallback=True)
    backend = Tokenizer(model)
    add_space = metadata.get("tokenizer.ggml.add_space_prefix", True)
    steps = ([normalizers.Prepend("▁")] if add_space else []) + [normalizers.Replace(" ", "▁")]
    backend.normalizer = normalizers.Sequence(steps)
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
        + ([decoders.Strip(" ", 1, 0)] if add_space else []))
    return backend
