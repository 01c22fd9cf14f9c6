"""gradient models to GGUF files: a LLaMA-family model and its tokenizer in one ``.gguf`` file
that llama.cpp (and :func:`~gradient.models.gguf_loader.load_gguf`) loads and runs.

This is the inverse of :mod:`gradient.models.gguf_loader`, and uses its tables, so the two
cannot drift apart:

* **config** -- :class:`~gradient.models.llama.LlamaConfig` becomes ``<arch>.block_count``,
  ``<arch>.embedding_length``, ``<arch>.attention.head_count`` ... (exactly the keys
  :func:`~gradient.models.gguf_loader.config_from_gguf` reads back). Mistral is written as
  ``llama``, as llama.cpp's converter does; qwen2 and qwen3 keep their names.
* **weights** -- ``model.layers.3.self_attn.q_proj.weight`` becomes ``blk.3.attn_q.weight``
  (:func:`gguf_name`, the inverse of :func:`~gradient.models.gguf_loader.hf_name`). For the
  ``llama`` architecture the rows of each query and key head are reordered for llama.cpp's
  interleaved rotary embedding (:func:`~gradient.models.gguf_loader.permute_qk`).
* **GPT-2** -- :class:`~gradient.models.gpt2.GPT2LMHeadModel` is written as llama.cpp's
  ``gpt2`` architecture (``gpt2.*`` keys; ``transformer.h.3.attn.c_attn.weight`` becomes
  ``blk.3.attn_qkv.weight``, ``transformer.wpe.weight`` ``position_embd.weight``, kept F32),
  so GPT-2 runs in llama.cpp on gradient's weights, and gradient reads the file back.
* **tokenizer** -- a byte-level BPE :class:`~gradient.tokenizers.Tokenizer` becomes
  ``tokenizer.ggml.*`` (model ``"gpt2"``: tokens, token types, merges, the llama.cpp name of its
  pre-tokenizer, special token ids, ``add_bos_token``, the chat template).

Which GGML type each tensor gets:

* 1-d tensors (norms, biases, ``rope_freqs.weight``): F32, as llama.cpp's converter and
  quantizer write them.
* 2-d tensors (projections, ``token_embd``, ``output``): ``qtype``, or ``tensor_types[name]``,
  unless the row width is not a multiple of that type's block size. Then Q4_K falls back to
  Q5_0, as llama-quantize does (SmolLM2's 576-wide rows are 18 blocks of 32, not a whole
  number of 256-value super-blocks), and a type whose blocks still do not tile the row falls
  back to F16, which fits any width (llama-quantize does that after a k-quant's fallback,
  and refuses the other types). Each fallback is reported, in one warning.

Tied embeddings are written once, as ``token_embd.weight`` (no ``output.weight``), which is how
both llama.cpp and the loader recognise them.

Layers that are already quantized: a :class:`~gradient.quant.QuantizedLinear` or
:class:`~gradient.quant.QuantizedEmbedding` whose GGML blocks are of the type its tensor is
written in is copied byte for byte (no second rounding; query/key rows are reordered as whole
rows of blocks), so ``load_gguf(path)`` (which keeps the file's blocks) then
``save_gguf(model, out, qtype)`` with the file's type writes its weights unchanged. Any other
quantized layer (another GGML type, or a :class:`~gradient.quant.WeightOnlyLinear`) is
dequantized to float32 and quantized again, which adds the new type's rounding error to the
old one.

The file is written with the ``gguf`` package's :class:`gguf.GGUFWriter` (``pip install gguf``),
tensor by tensor, so memory holds the model plus one quantized tensor; it appears at ``path``
only when complete (written to a temp file in the same directory, then renamed).

Example::

    >>> model, tokenizer = gradient.hub.load("HuggingFaceTB/SmolLM2-135M-Instruct")
    >>> save_gguf(model, "smollm2-q8_0.gguf", "Q8_0", tokenizer)
    >>> # llama.cpp: llama-cli -m smollm2-q8_0.gguf -p "The capital of France is"
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import (ArgumentTypeError, FileFormatError, TokenizerError, UnknownArchitectureError,
                      UnsupportedError)
from ..io.atomic import atomic_path
from ..nn.module import Module
from ..quant.embedding import QuantizedEmbedding
from ..quant.ggml import BLOCK_SIZES, GGMLType, UnsupportedQuantTypeError, tensor_nbytes
from ..quant.linear import QuantizedLinear
from ..quant.weight_only import WeightOnlyLinear, quantize_blocks
from .gguf_loader import (_GPT2_PER_LAYER, _GPT2_TOP_LEVEL, _LLAMA3_REGEX, _PER_LAYER,
                          _PERMUTED_QK, _QWEN2_REGEX, _TOP_LEVEL, CONTROL, NORMAL, UNUSED,
                          USER_DEFINED, permute_qk, renamed, tokenizer_from_gguf)
from .gpt2 import GPT2Config, GPT2LMHeadModel
from .llama import LlamaConfig, LlamaForCausalLM, rope_inv_freq

__all__ = ["save_gguf", "gguf_name", "WRITABLE_TYPES", "GGUF_ARCHITECTURE_OF"]

#: The GGML types :func:`save_gguf` writes (``qtype`` and the values of ``tensor_types``).
WRITABLE_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K")
#: config.model_type -> GGUF architecture (llama.cpp runs Mistral as "llama").
GGUF_ARCHITECTURE_OF = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3",
                        "gpt2": "gpt2"}

# general.file_type (llama.cpp's enum llama_ftype) of a file that is mostly of one type. An
# all-Q4_K file (with Q5_0 fallbacks) is closest to llama.cpp's "Q4_K - Small".
_FILE_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9,
               "Q4_K": 14, "BF16": 32}
_QUANT_VERSION = 2   # general.quantization_version: ggml's GGML_QNT_VERSION
# where a type's block size does not divide a row: llama-quantize's replacement (Q4_K -> Q5_0),
# then F16, which fits any width
_FALLBACK = {"Q4_K": "Q5_0"}

# Hugging Face names -> GGUF names: the loader's tables turned around
_HF_TOP_LEVEL = {hf: g for g, hf in _TOP_LEVEL.items()}
_HF_PER_LAYER = {hf: g for g, hf in _PER_LAYER.items()}
_HF_LAYER_NAME = re.compile(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)")
# GPT-2's names, as llama.cpp's converter writes them: the loader's table turned around
_GPT2_HF_TOP_LEVEL = {hf: g for g, hf in _GPT2_TOP_LEVEL.items()}
_GPT2_HF_PER_LAYER = {hf: g for g, hf in _GPT2_PER_LAYER.items()}
_GPT2_LAYER_NAME = re.compile(r"transformer\.h\.(\d+)\.(.+)\.(weight|bias)")
#: GPT-2 activations llama.cpp's gpt2 computes: GELU, tanh approximation (ggml_gelu)
_GPT2_GELU = ("gelu_new", "gelu_pytorch_tanh")


def gguf_name(name: str) -> str | None:
    """The GGUF tensor name of a Hugging Face parameter name, or None if it has none; the
    inverse of :func:`~gradient.models.gguf_loader.hf_name`.

    Example: ``gguf_name("model.layers.0.self_attn.q_proj.weight") == "blk.0.attn_q.weight"``
    """
    return renamed(name, _HF_TOP_LEVEL, _HF_LAYER_NAME, _HF_PER_LAYER, "blk")


def _gpt2_gguf_name(name: str) -> str | None:
    """:func:`gguf_name` of a GPT-2 parameter name (``transformer.h.0.attn.c_attn.weight`` ->
    ``blk.0.attn_qkv.weight``)."""
    return renamed(name, _GPT2_HF_TOP_LEVEL, _GPT2_LAYER_NAME, _GPT2_HF_PER_LAYER, "blk")


# ----------------------------------------------------------------------------- entry point
def save_gguf(model, path, qtype: str = "Q8_0", tokenizer=None, *,
              tensor_types: dict | None = None, name: str | None = None) -> str:
    """Write a LLaMA-family model (llama, mistral, qwen2, qwen3) or GPT-2 and its tokenizer to
    a GGUF file that llama.cpp (and :func:`~gradient.models.gguf_loader.load_gguf`) loads;
    returns ``path``.

    * ``qtype``: the GGML type of the 2-d weights, one of :data:`WRITABLE_TYPES` (``"Q8_0"``,
      ``"Q4_K"``, ``"F16"`` ...); 1-d tensors are always F32. A row width that is not a
      multiple of the type's block size falls back, per tensor and with a warning: Q4_K to
      Q5_0 (as ``llama-quantize``), and then or otherwise to F16 (see the module docstring).
    * ``tokenizer``: a byte-level BPE :class:`~gradient.tokenizers.Tokenizer` (GPT-2, SmolLM,
      Llama 3, Qwen2 style). ``None`` takes the one next to ``model.name_or_path`` (the
      ``.gguf`` file or checkpoint directory the model was loaded from; an error if there is
      none); ``False`` writes no tokenizer (neither llama.cpp nor ``load_gguf`` can then
      tokenize text). Padding tokens ``[PAD<id>]`` fill the vocabulary up to the embedding's
      rows, as llama.cpp's converter does.
    * ``tensor_types``: per-tensor overrides, ``{GGUF name or fnmatch pattern: type}``, e.g.
      ``{"output.weight": "Q8_0", "token_embd.weight": "F16"}`` (llama-quantize's
      ``--output-tensor-type`` and ``--token-embedding-type``); the first match wins.
    * ``name``: ``general.name`` (default: the base name of ``model.name_or_path``).

    Already quantized layers are copied when their type is the one written, else dequantized
    and quantized again (module docstring). Needs the ``gguf`` package (``pip install gguf``).

    Example::

        >>> model, tok = gradient.hub.load("HuggingFaceTB/SmolLM2-135M-Instruct")
        >>> save_gguf(model, "smollm2.Q4_K.gguf", "Q4_K", tok)     # 576-wide rows: Q5_0
        >>> model2, tok2 = load_gguf("smollm2.Q4_K.gguf")
    """
    gguf = _import_gguf()
    config = _check_model(model)
    arch = GGUF_ARCHITECTURE_OF[config.model_type]
    qtype = _type_name(qtype, "qtype")
    overrides = [(str(pattern), _type_name(t, f"tensor_types[{pattern!r}]"))
                 for pattern, t in (tensor_types or {}).items()]

    entries = _tensor_entries(model, config, arch, qtype, overrides)
    metadata = _model_metadata(model, config, arch, qtype, name)
    if tokenizer is None:
        tokenizer = _tokenizer_of(model)
    if tokenizer is not False:
        metadata.update(_tokenizer_metadata(tokenizer, config))
    _warn_about_fallbacks(entries)

    writer = gguf.GGUFWriter(None, arch)
    for key, value in metadata.items():
        _add_value(writer, key, value)
    for e in entries:
        # the shape in values, NumPy order (a dtype other than uint8 tells GGUFWriter so) and
        # the byte size: the bytes themselves are made one tensor at a time below
        writer.add_tensor_info(e.name, e.shape, np.float32, e.nbytes,
                               raw_dtype=gguf.GGMLQuantizationType(int(GGMLType[e.type])))
    with atomic_path(path) as tmp:
        try:
            writer.write_header_to_file(path=Path(tmp))
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for e in entries:
                data = e.data()
                if data.nbytes != e.nbytes:   # a bug, never a user error: say which tensor
                    raise FileFormatError(f"save_gguf: {e.name} has {data.nbytes} bytes of "
                                          f"{e.type}, expected {e.nbytes}")
                writer.write_tensor_data(data)
        finally:
            writer.close()   # before the temp file is renamed, or removed on an error
    return os.fspath(path)


def _import_gguf():
    try:
        import gguf
    except ImportError as e:
        raise ImportError("save_gguf writes GGUF files with the gguf package, which is not "
                          "installed: pip install gguf (or pip install \"gradient[gguf]\")") from e
    return gguf


# ----------------------------------------------------------------------------- checks
def _check_model(model) -> LlamaConfig | GPT2Config:
    if not isinstance(model, Module):
        raise ArgumentTypeError(f"save_gguf: expected a gradient model (LlamaForCausalLM or "
                                f"GPT2LMHeadModel), got {type(model).__name__}")
    config = getattr(model, "config", None)
    if isinstance(model, GPT2LMHeadModel) and isinstance(config, GPT2Config):
        return _check_gpt2(config)
    if not isinstance(model, LlamaForCausalLM) or not isinstance(config, LlamaConfig):
        raise UnknownArchitectureError(
            f"save_gguf: {type(model).__name__} cannot be written to GGUF; supported: "
            f"LlamaForCausalLM with model_type llama, mistral, qwen2 or qwen3, and "
            f"GPT2LMHeadModel")
    if config.model_type not in GGUF_ARCHITECTURE_OF:
        raise UnknownArchitectureError(
            f"save_gguf: model_type {config.model_type!r} cannot be written to GGUF; "
            f"supported: {', '.join(GGUF_ARCHITECTURE_OF)}")
    unsupported = []
    if config.hidden_act not in ("silu", "swish"):
        unsupported.append(f"hidden_act={config.hidden_act!r} (llama.cpp uses SiLU)")
    if config.mlp_bias:
        unsupported.append("mlp_bias=True (gradient's GGUF loader reads no MLP biases)")
    if config.attention_bias and config.model_type == "qwen3":
        unsupported.append("attention_bias=True for qwen3 (llama.cpp's qwen3 has no biases)")
    if unsupported:
        raise UnsupportedError(f"save_gguf: this {config.model_type} model cannot be "
                               f"written to GGUF: {'; '.join(unsupported)}")
    window = config.sliding_window if any(t == "sliding_attention"
                                          for t in config.attention_types()) else None
    if window is not None and window < config.max_position_embeddings:
        warnings.warn(f"save_gguf: GGUF {GGUF_ARCHITECTURE_OF[config.model_type]} files have "
                      f"no sliding attention window: llama.cpp (and load_gguf) will attend to "
                      f"the whole context, which agrees with this model on sequences of up to "
                      f"{window} tokens", stacklevel=3)
    return config


def _check_gpt2(config: GPT2Config) -> GPT2Config:
    unsupported = []
    if config.activation_function not in _GPT2_GELU:
        unsupported.append(f"activation_function={config.activation_function!r} (llama.cpp's "
                           f"gpt2 uses GELU with the tanh approximation)")
    if config.scale_attn_by_inverse_layer_idx:
        unsupported.append("scale_attn_by_inverse_layer_idx=True (llama.cpp's gpt2 scales by "
                           "1/sqrt(head_dim) alone)")
    if not config.scale_attn_weights:
        unsupported.append("scale_attn_weights=False")
    if unsupported:
        raise UnsupportedError(f"save_gguf: this gpt2 model cannot be written to GGUF: "
                               f"{'; '.join(unsupported)}")
    return config


def _type_name(qtype, what: str) -> str:
    if isinstance(qtype, str):
        name = qtype.upper()
    else:
        try:
            name = GGMLType(int(qtype)).name
        except (TypeError, ValueError):
            name = repr(qtype)
    if name not in WRITABLE_TYPES:
        raise UnsupportedQuantTypeError(
            f"save_gguf: {what} {qtype!r} is not a type gradient writes; use one of "
            f"{', '.join(WRITABLE_TYPES)}")
    return name


# ----------------------------------------------------------------------------- tensors
@dataclasses.dataclass
class _Entry:
    name: str                      # GGUF name
    shape: tuple                   # in values, NumPy order
    type: str                      # GGML type written
    wanted: str                    # the type asked for (differs after a fallback)
    data: Callable[[], np.ndarray]  # the bytes (or F32 values), made when written

    @property
    def nbytes(self) -> int:
        return tensor_nbytes(GGMLType[self.type], int(np.prod(self.shape)))


# layers whose weight is not a parameter: GGML blocks (with ``qtype`` and ``qweight``, the
# blocks as in a GGUF file), or weight-only int8/int4 codes; all have ``dequantize()``
_BLOCK_LAYERS = (QuantizedLinear, QuantizedEmbedding)
_QUANTIZED_LAYERS = _BLOCK_LAYERS + (WeightOnlyLinear,)


def _sources(model) -> list[tuple[str, Any]]:
    """(HF name, Tensor or quantized layer) of every tensor to write, in the model's order;
    quantized layers hold their weight outside the parameters."""
    out = []
    for prefix, module in model.named_modules():
        dot = f"{prefix}." if prefix else ""
        if isinstance(module, _QUANTIZED_LAYERS):
            out.append((f"{dot}weight", module))
        for pname, p in module.named_parameters(recurse=False):
            out.append((f"{dot}{pname}", p))
        for bname, b in module.named_buffers(recurse=False):
            out.append((f"{dot}{bname}", b))
    return out


def _tensor_entries(model, config, arch: str, qtype: str, overrides) -> list:
    tied = set(model._tied_weights_in_use())
    named = _gpt2_gguf_name if arch == "gpt2" else gguf_name
    entries, unknown = [], []
    for hf, source in _sources(model):
        if hf in tied:
            continue
        name = named(hf)
        if name is None:
            unknown.append(hf)
            continue
        shape = _shape_of(source)
        if len(shape) == 1 or name == "position_embd.weight":
            # (learned positions too, as llama.cpp's converter keeps them: a few MB, and
            # llama.cpp adds them to the token embedding in float32)
            wanted = kind = "F32"
        else:
            wanted = next((t for p, t in overrides if fnmatch.fnmatchcase(name, p)), qtype)
            kind = _fitting_type(wanted, shape[-1])
        heads = None
        if arch in _PERMUTED_QK and (".attn_q." in name or ".attn_k." in name):
            heads = config.num_attention_heads if ".attn_q." in name else \
                config.num_key_value_heads
        entries.append(_Entry(name, shape, kind, wanted, _data_maker(source, kind, heads)))
    if unknown:
        raise UnknownArchitectureError(
            f"save_gguf: these tensors have no GGUF name: {unknown[:10]}; only the parameters "
            f"of a plain {type(model).__name__} can be written (merge adapters into the "
            f"weights first)")
    if arch == "gpt2":
        return entries
    rope = _rope_freqs(model, config, arch)
    if rope is not None:
        entries.insert(1, _Entry("rope_freqs.weight", rope.shape, "F32", "F32", lambda: rope))
    return entries


def _shape_of(source) -> tuple:
    if isinstance(source, QuantizedEmbedding):
        return (source.num_embeddings, source.embedding_dim)
    if isinstance(source, _QUANTIZED_LAYERS):
        return (source.out_features, source.in_features)
    return tuple(int(s) for s in source.shape)


def _fitting_type(wanted: str, width: int) -> str:
    """``wanted`` if its blocks tile a row of ``width`` values, else the fallback that does."""
    kind = wanted
    if width % BLOCK_SIZES[GGMLType[kind]][0]:
        kind = _FALLBACK.get(kind, "F16")
        if width % BLOCK_SIZES[GGMLType[kind]][0]:
            kind = "F16"
    return kind


def _data_maker(source, kind: str, heads: int | None):
    """A function that makes the tensor's bytes in ``kind`` (rows permuted when ``heads``)."""
    def make() -> np.ndarray:
        if isinstance(source, _BLOCK_LAYERS) and source.qtype.name == kind:
            blocks = np.asarray(source.qweight)      # already the bytes wanted: copied as is
            return np.ascontiguousarray(permute_qk(blocks, heads) if heads else blocks)
        if isinstance(source, _QUANTIZED_LAYERS):
            values = source.dequantize().numpy()
        else:
            values = source.detach().numpy()
        values = np.asarray(values, dtype=np.float32)
        if heads:
            values = permute_qk(values, heads)
        if values.ndim == 1:
            return np.ascontiguousarray(values)
        return quantize_blocks(values, kind)
    return make


def _rope_freqs(model, config: LlamaConfig, arch: str) -> np.ndarray | None:
    """``rope_freqs.weight`` when the model's rotary frequencies are not what the written
    config gives (llama3 scaling, or a model loaded from a file that had the tensor): the
    divisors llama.cpp (and the loader) apply to the config's frequencies."""
    written = dataclasses.replace(config, rope_scaling=_written_rope_scaling(config))
    base = rope_inv_freq(written)
    actual = np.asarray(model.model.rotary.inv_freq, dtype=np.float32)
    if np.array_equal(actual, base):
        return None
    if arch != "llama":
        raise UnsupportedError(f"save_gguf: rotary frequencies other than the config's "
                               f"(rope_scaling {config.rope_scaling}) cannot be stored in a "
                               f"GGUF {arch} file; only llama files have rope_freqs.weight")
    # the loader's base / (base / actual) gives back actual to within an ulp (float32
    # division does not always invert exactly)
    return (base / actual).astype(np.float32)


def _written_rope_scaling(config: LlamaConfig):
    s = config.rope_scaling
    return dict(s) if s is not None and s["rope_type"] == "linear" else None


def _warn_about_fallbacks(entries) -> None:
    moved = [e for e in entries if e.type != e.wanted]
    if moved:
        pairs = sorted({(e.wanted, e.type) for e in moved})
        warnings.warn(
            f"save_gguf: {len(moved)} tensor(s) have rows whose width is not a multiple of "
            f"their type's block size and were written as "
            f"{', '.join(f'{b} instead of {a}' for a, b in pairs)} (as llama-quantize does): "
            f"{', '.join(e.name for e in moved[:4])}{' ...' if len(moved) > 4 else ''}",
            stacklevel=3)


# ----------------------------------------------------------------------------- metadata
def _model_metadata(model, config, arch: str, qtype: str, name) -> dict:
    """The ``general.*`` and ``<arch>.*`` keys (values tagged with their GGUF type), the ones
    :func:`~gradient.models.gguf_loader.config_from_gguf` reads."""
    if name is None:
        source = getattr(model, "name_or_path", None)
        name = (os.path.splitext(os.path.basename(os.path.normpath(os.fspath(source))))[0]
                if source else config.model_type)
    md = {"general.name": str(name),
          "general.file_type": _u32(_FILE_TYPES[qtype]),
          "general.quantization_version": _u32(_QUANT_VERSION)}
    if arch == "gpt2":      # the keys llama.cpp's gpt2 reads
        return {**md,
                "gpt2.vocab_size": _u32(config.vocab_size),
                "gpt2.context_length": _u32(config.n_positions),
                "gpt2.embedding_length": _u32(config.n_embd),
                "gpt2.block_count": _u32(config.n_layer),
                "gpt2.feed_forward_length": _u32(config.n_inner or 4 * config.n_embd),
                "gpt2.attention.head_count": _u32(config.n_head),
                "gpt2.attention.layer_norm_epsilon": _f32(config.layer_norm_epsilon)}
    md = {**md,
          f"{arch}.vocab_size": _u32(config.vocab_size),
          f"{arch}.context_length": _u32(config.max_position_embeddings),
          f"{arch}.embedding_length": _u32(config.hidden_size),
          f"{arch}.block_count": _u32(config.num_hidden_layers),
          f"{arch}.feed_forward_length": _u32(config.intermediate_size),
          f"{arch}.attention.head_count": _u32(config.num_attention_heads),
          f"{arch}.attention.head_count_kv": _u32(config.num_key_value_heads),
          f"{arch}.attention.layer_norm_rms_epsilon": _f32(config.rms_norm_eps),
          f"{arch}.rope.freq_base": _f32(config.rope_theta),
          f"{arch}.rope.dimension_count": _u32(config.head_dim)}
    if config.head_dim != config.hidden_size // config.num_attention_heads:
        md[f"{arch}.attention.key_length"] = _u32(config.head_dim)
        md[f"{arch}.attention.value_length"] = _u32(config.head_dim)
    scaling = _written_rope_scaling(config)
    if scaling is not None:
        md[f"{arch}.rope.scaling.type"] = "linear"
        md[f"{arch}.rope.scaling.factor"] = _f32(scaling["factor"])
    return md


@dataclasses.dataclass(frozen=True)
class _Typed:
    """A number and the GGUF type it is written as; strings, booleans and lists need no tag."""
    kind: str                  # "u32" or "f32"
    value: int | float


def _u32(value) -> _Typed:
    return _Typed("u32", int(value))


def _f32(value) -> _Typed:
    return _Typed("f32", float(value))


def _plain(value):
    return value.value if isinstance(value, _Typed) else value


def _add_value(writer, key: str, value) -> None:
    if isinstance(value, _Typed):
        {"u32": writer.add_uint32, "f32": writer.add_float32}[value.kind](key, value.value)
    elif isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    elif isinstance(value, list):
        writer.add_array(key, value)     # str -> STRING, int -> INT32 (token types)
    else:
        raise ArgumentTypeError(f"save_gguf: metadata {key} has a value of type "
                                f"{type(value).__name__}")   # a bug: every value above is tagged


# ----------------------------------------------------------------------------- tokenizer
# The pre-tokenizers llama.cpp knows (by tokenizer.ggml.pre) that the loader rebuilds, keyed by
# the `tokenizers` pre-tokenizer steps that make them: GPT-2's regex (inside ByteLevel), each
# digit alone then GPT-2's regex, and the Llama 3 and Qwen2 regexes before a plain ByteLevel.
_PRE_NAMES = {
    ("bytelevel+regex",): "gpt-2",
    ("digits", "bytelevel+regex"): "smollm",
    ("split:" + _LLAMA3_REGEX, "bytelevel"): "llama-bpe",
    ("split:" + _QWEN2_REGEX, "bytelevel"): "qwen2",
}

# Texts the written tokenizer must split as the original does (checked before writing).
_PROBE_TEXTS = [
    "Hello world! It's a test, isn't it? I'LL see, we'd've gone.",
    "  leading spaces, trailing spaces   \n\n\ttabs\t\tand newlines\r\n",
    "Numbers: 1 12 123 1234 12345 3.14159 1,000,000 2024-01-15 x1 42km",
    "café résumé naïve Zürich 東京は日本の首都です。 你好，世界 Русский ελληνικά 🚀🎉👍🏽",
    "def f(x):\n    return x ** 2  # square\n<div class=\"x\">&amp;</div> https://a.b/c?d=1",
    "aaaaaaaaaaaaaaaaaaaaaaaa !!!???...,,, ∑ ∫ √ ≤ π ∞ — “quoted” ‘single’ …",
]


def _tokenizer_of(model):
    """The tokenizer next to where ``model`` was loaded from (``save_gguf(tokenizer=None)``)."""
    source = getattr(model, "name_or_path", None)
    if source and os.path.isfile(source) and str(source).lower().endswith(".gguf"):
        from .gguf_loader import load_gguf_tokenizer
        return load_gguf_tokenizer(source)
    if source and os.path.isdir(source):
        from ..tokenizers import Tokenizer
        return Tokenizer.from_pretrained(source)
    raise TokenizerError(
        f"save_gguf: no tokenizer given, and the model has none to take (name_or_path "
        f"{source!r} is not a .gguf file or checkpoint directory); pass "
        f"tokenizer=Tokenizer.from_pretrained(directory), or tokenizer=False to write the "
        f"weights alone (llama.cpp and load_gguf then cannot tokenize text)")


def _tokenizer_metadata(tokenizer, config) -> dict:
    """``tokenizer.ggml.*`` of a byte-level BPE Tokenizer, checked by reading it back."""
    from ..tokenizers import ByteLevelBPE, Tokenizer

    if isinstance(tokenizer, ByteLevelBPE):
        raise UnsupportedError(
            "save_gguf: pass a gradient.tokenizers.Tokenizer; a ByteLevelBPE becomes one with "
            "bpe.save(d) then Tokenizer.from_pretrained(d)")
    if not isinstance(tokenizer, Tokenizer):
        raise ArgumentTypeError(
            f"save_gguf: tokenizer must be a gradient.tokenizers.Tokenizer, None or "
            f"False, got {type(tokenizer).__name__}")
    backend = tokenizer.backend_tokenizer
    spec = json.loads(backend.to_str())
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or \
            model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        kind = model.get("type")
        detail = " with byte fallback (SentencePiece style)" if model.get("byte_fallback") else ""
        raise UnsupportedError(
            f"save_gguf: only byte-level BPE tokenizers (GGUF tokenizer model 'gpt2': GPT-2, "
            f"SmolLM, Llama 3, Qwen2 ...) can be written; this one is a {kind}{detail} model")
    normalizer = spec.get("normalizer")
    if normalizer is not None and normalizer.get("type") != "NFC":
        # NFC (Qwen2) is dropped, as llama.cpp's converter does: it changes nothing on
        # NFC text, which is most text
        raise UnsupportedError(f"save_gguf: the tokenizer normalizes text "
                               f"({normalizer.get('type')}), which llama.cpp's byte-level "
                               f"BPE does not do")
    pre = _pre_tokenizer_name(spec.get("pre_tokenizer"))

    size = max(backend.get_vocab(with_added_tokens=True).values()) + 1
    if size > config.vocab_size:
        raise TokenizerError(f"save_gguf: the tokenizer has ids up to {size - 1}, but the "
                             f"model's embedding has {config.vocab_size} rows")
    added = backend.get_added_tokens_decoder()
    tokens, types = [], []
    for i in range(config.vocab_size):
        token = backend.id_to_token(i) if i < size else None
        if token is None:       # a hole, or the embedding's padding rows: llama.cpp's names
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
        else:
            tokens.append(token)
            types.append(NORMAL if i not in added else
                         CONTROL if added[i].special else USER_DEFINED)
    merges = []
    for m in model.get("merges") or []:
        pair = m if isinstance(m, list) else m.split(" ")
        if len(pair) != 2 or any(" " in p for p in pair):
            raise UnsupportedError(f"save_gguf: the merge {m!r} has a space in a token, "
                                   f"which GGUF's 'left right' merges cannot hold")
        merges.append(" ".join(pair))

    md: dict[str, Any] = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": pre,
                          "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types,
                          "tokenizer.ggml.merges": merges}
    eos = tokenizer.eos_token_id
    if eos is None:
        eos = config.eos_token_id[0] if isinstance(config.eos_token_id, list) and \
            config.eos_token_id else config.eos_token_id
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else config.bos_token_id
    for key, value in (("bos", bos), ("eos", eos), ("unknown", tokenizer.unk_token_id),
                       ("seperator", tokenizer.sep_token_id),   # sic: llama.cpp's key
                       ("padding", tokenizer.pad_token_id)):
        if isinstance(value, int) and 0 <= value < config.vocab_size:
            md[f"tokenizer.ggml.{key}_token_id"] = _u32(value)
    add_bos, add_eos = _added_around(tokenizer)
    md["tokenizer.ggml.add_bos_token"] = add_bos
    md["tokenizer.ggml.add_eos_token"] = add_eos
    template = tokenizer.chat_template
    if isinstance(template, dict):
        named = {k: v for k, v in template.items() if k != "default"}
        if "default" in template:
            md["tokenizer.chat_template"] = template["default"]
        if named:
            md["tokenizer.chat_templates"] = list(named)
            md.update({f"tokenizer.chat_template.{k}": v for k, v in named.items()})
    elif template is not None:
        md["tokenizer.chat_template"] = template
    _check_tokenizer(tokenizer, md, added)
    return md


def _pre_tokenizer_name(pre_tokenizer: dict | None) -> str:
    steps = [] if pre_tokenizer is None else (
        pre_tokenizer.get("pretokenizers", []) if pre_tokenizer.get("type") == "Sequence"
        else [pre_tokenizer])
    signature = []
    for step in steps:
        kind = step.get("type")
        if kind == "ByteLevel" and not step.get("add_prefix_space"):
            signature.append("bytelevel+regex" if step.get("use_regex", True) else "bytelevel")
        elif kind == "Digits" and step.get("individual_digits"):
            signature.append("digits")
        elif kind == "Split" and step.get("behavior") == "Isolated" and not step.get("invert"):
            pattern = step.get("pattern", {})
            regex = pattern.get("Regex")
            signature.append("digits" if regex == r"\p{N}" else f"split:{regex}")
        else:
            signature.append(json.dumps(step, sort_keys=True))
    name = _PRE_NAMES.get(tuple(signature))
    if name is None:
        raise UnsupportedError(
            f"save_gguf: the tokenizer's pre-tokenizer ({json.dumps(pre_tokenizer)[:300]}) is "
            f"not one of those gradient can name for llama.cpp: {', '.join(_PRE_NAMES.values())} "
            f"(ByteLevel without a prefix space, alone or after Digits, or after the Llama 3 or "
            f"Qwen2 Split regex)")
    return name


def _added_around(tokenizer) -> tuple[bool, bool]:
    """Whether encoding with special tokens puts BOS before / EOS after the text."""
    plain = tokenizer.encode("a", add_special_tokens=False)
    full = tokenizer.encode("a", add_special_tokens=True)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    add_bos = bos is not None and len(full) > len(plain) and full[0] == bos
    add_eos = eos is not None and len(full) > len(plain) and full[-1] == eos
    return add_bos, add_eos


def _check_tokenizer(tokenizer, metadata: dict, added: dict) -> None:
    """Read the metadata back as the loader will, and check it splits text as ``tokenizer``
    does: a file whose tokenizer disagrees with its model is worse than no file."""
    plain = {k: _plain(v) for k, v in metadata.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rebuilt = tokenizer_from_gguf(plain, name_or_path="the written tokenizer")
    except Exception as e:  # noqa: BLE001 -- whatever the reader says, name it as ours
        raise TokenizerError(f"save_gguf: the tokenizer metadata does not read back: {e}") from e
    texts = list(_PROBE_TEXTS) + [f"x{t.content} y{t.content}z" for t in added.values()]
    for text in texts:
        for special in (False, True):
            want = tokenizer.encode(text, add_special_tokens=special)
            got = rebuilt.encode(text, add_special_tokens=special)
            if want != got:
                raise TokenizerError(
                    f"save_gguf: this tokenizer cannot be written faithfully as a GGUF "
                    f"'{plain['tokenizer.ggml.pre']}' byte-level BPE: read back, it encodes "
                    f"{text[:60]!r} as {got[:12]} instead of {want[:12]}")
