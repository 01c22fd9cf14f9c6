"""Loading and saving models in the Hugging Face layout: ``config.json`` plus safetensors weights.

A model family (``gpt2.py``, ``llama.py``) subclasses :class:`PreTrainedModel`, names its config
class and the ``model_type`` values it serves, and keeps Hugging Face's parameter names, so a
checkpoint's tensors land on the parameters of the same name. What differs from a family's own
layout (GPT-2's ``Conv1D`` weights are stored transposed) is one pair of hooks next to the model:
``_from_hf_tensor`` and ``_to_hf_tensor``.

Weights are read through :class:`gradient.io.SafetensorsReader` with ``mmap=True``: each tensor
is mapped from the file, in its stored dtype (float32, float16 or bfloat16), and read from disk
once, when first touched. Asking for another ``dtype`` converts tensor by tensor. Sharded
checkpoints (``model.safetensors.index.json`` naming ``model-00001-of-00003.safetensors`` ...)
load the same way, and :meth:`PreTrainedModel.save_pretrained` writes them when a checkpoint is
larger than ``max_shard_size``.

Example::

    >>> model = gradient.models.from_pretrained("path/to/gpt2")      # or a hub id
    >>> model.save_pretrained("copy/")                                # config.json + model.safetensors
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import OrderedDict
from typing import ClassVar

import numpy as np

from ..autograd import is_grad_enabled
from ..dtypes import DType, bfloat16, float16, float32, float64
from ..errors import ArgumentValueError, ConfigError, FileFormatError, UnknownArchitectureError
from ..io import SafetensorsReader, save_safetensors
from ..io.atomic import atomic_write
from ..nn import Module
from ..nn import init as _init
from ..ops.creation import from_numpy
from ..tensor import Tensor

__all__ = ["ModelConfig", "PreTrainedModel", "CausalLMOutput", "from_pretrained",
           "register_model", "MODEL_TYPES", "UnknownArchitectureError"]

WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
CONFIG_NAME = "config.json"
#: The most layers a config may ask for (the largest released models have about 130; llama.cpp
#: stops at 512): more is a corrupt file, whose model would take minutes and memory to build.
MAX_LAYERS = 4096
_DTYPES = {"float32": float32, "float16": float16, "bfloat16": bfloat16, "float64": float64}


# ----------------------------------------------------------------------------- configs
@dataclasses.dataclass
class ModelConfig:
    """Base of the per-family configs: dataclasses whose field names are the keys of Hugging
    Face's ``config.json``. Keys a family does not use are kept in ``extra`` and written back by
    :meth:`to_dict`, so a load/save round trip keeps the file's content."""

    model_type: ClassVar[str] = ""
    extra: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)
    #: integer fields that divide others (attention heads): at least 1
    _divisors: ClassVar[tuple] = ()
    #: integer fields that count layers: at most :data:`MAX_LAYERS`
    _layer_counts: ClassVar[tuple] = ()

    def check_sizes(self) -> None:
        """Refuses (:class:`~gradient.errors.ConfigError`) an integer field that holds no integer
        (``"64"``, ``64.5``, ``true``), a negative one (token ids aside), a divisor below 1 and
        more than :data:`MAX_LAYERS` layers: a ``config.json`` that would otherwise fail deep
        inside the model's construction (dividing by zero heads) or build a billion layers
        before its weights are read. The families call it before they derive their sizes."""
        name = type(self).__name__
        for field in dataclasses.fields(self):
            value, kinds = getattr(self, field.name), str(field.type)
            if (not kinds.startswith("int") or value is None
                    or isinstance(value, list) and "list" in kinds):
                continue
            # (NumPy's integers, from a GGUF file's metadata, are integers too)
            if isinstance(value, bool) or not hasattr(type(value), "__index__"):
                raise ConfigError(f"{name}: {field.name} must be an integer, got "
                                  f"{type(value).__name__} {value!r}")
            least = 1 if field.name in self._divisors else 0
            if value < least and not field.name.endswith("_token_id"):
                raise ConfigError(f"{name}: {field.name} must be at least {least}, got {value}")
            if field.name in self._layer_counts and value > MAX_LAYERS:
                raise ConfigError(f"{name}: {field.name} is {value}; gradient builds at most "
                                  f"{MAX_LAYERS} layers")

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        config = cls(**{k: v for k, v in d.items() if k in names})
        config.extra = {k: v for k, v in d.items() if k not in names}
        return config

    def to_dict(self) -> dict:
        d = dict(self.extra)
        d.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name != "extra"})
        d["model_type"] = self.model_type
        return d


@dataclasses.dataclass
class CausalLMOutput:
    """What a causal language model's forward returns: ``logits`` (B, T, vocab) and, when
    ``labels`` were given, the mean next-token cross-entropy ``loss``."""

    logits: Tensor
    loss: Tensor | None = None


# ----------------------------------------------------------------------------- registry
MODEL_TYPES: dict[str, type] = {}


def register_model(*model_types: str):
    """Class decorator: ``from_pretrained`` builds this class for configs of these model types."""
    def register(cls):
        for t in model_types:
            MODEL_TYPES[t] = cls
        return cls
    return register


def _model_class(config: dict, where: str) -> type:
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        raise UnknownArchitectureError(
            f"{where}: model_type {model_type!r} (architectures {config.get('architectures')}) is "
            f"not one gradient implements; supported model types: {sorted(MODEL_TYPES)}")
    return MODEL_TYPES[model_type]


def from_pretrained(path_or_repo_id, dtype=None, **hub_kwargs) -> "PreTrainedModel":
    """Load any supported causal LM from a directory or a hub repo, choosing the class from
    ``config.json``'s ``model_type`` (``transformers.AutoModelForCausalLM`` for gradient).

    Example: ``model = gradient.models.from_pretrained("HuggingFaceTB/SmolLM2-135M")``
    """
    directory = _resolve(path_or_repo_id, **hub_kwargs)
    config = _read_config(directory)
    return _model_class(config, directory).from_pretrained(directory, dtype=dtype)


def _resolve(path_or_repo_id, **hub_kwargs) -> str:
    path = os.fspath(path_or_repo_id)
    if os.path.isdir(path):
        return path
    from ..io.download import download_model  # huggingface_hub, only when a download is needed
    return download_model(path, **hub_kwargs)


def _read_config(directory: str) -> dict:
    path = os.path.join(directory, CONFIG_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{directory}: no {CONFIG_NAME}; a Hugging Face model directory "
                                f"holds {CONFIG_NAME} and {WEIGHTS_NAME} (or a sharded "
                                f"{WEIGHTS_INDEX_NAME})")
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise FileFormatError(f"{path}: not valid JSON ({e})") from None


def _weight_files(directory: str) -> dict[str, str]:
    """``{tensor name: file}`` for a single-file or a sharded checkpoint."""
    index = os.path.join(directory, WEIGHTS_INDEX_NAME)
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f).get("weight_map")
        if not isinstance(weight_map, dict):
            raise FileFormatError(f"{index}: expected a 'weight_map' object of tensor name -> file")
        for name in set(weight_map.values()):
            if os.path.basename(name) != name or not os.path.isfile(os.path.join(directory, name)):
                raise FileNotFoundError(f"{index} names the shard {name!r}, which is not in "
                                        f"{directory}")
        return {k: os.path.join(directory, v) for k, v in weight_map.items()}
    single = os.path.join(directory, WEIGHTS_NAME)
    if os.path.isfile(single):
        with SafetensorsReader(single) as reader:
            return {name: single for name in reader.entries}
    present = sorted(os.listdir(directory))
    hint = (" (PyTorch .bin checkpoints are pickles, which gradient never loads: convert them to "
            "safetensors)" if any(p.endswith((".bin", ".pt", ".pth")) for p in present) else "")
    raise FileNotFoundError(f"{directory}: no {WEIGHTS_NAME} or {WEIGHTS_INDEX_NAME}; found "
                            f"{present}{hint}")


def _as_dtype(dtype) -> DType | None:
    if dtype is None or isinstance(dtype, DType):
        return dtype
    if dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ArgumentValueError(
        f"dtype must be a gradient floating dtype or one of {sorted(_DTYPES)}, "
        f"got {dtype!r}")


# ----------------------------------------------------------------------------- the base class
class PreTrainedModel(Module):
    """A model that loads from and saves to the Hugging Face layout.

    Subclasses set ``config_class`` and may override:

    * ``_tied_weights``: ``{name: name it shares storage with}``, left out of saved files and
      re-tied after loading (GPT-2's ``lm_head.weight`` is ``transformer.wte.weight``);
    * ``_from_hf_tensor(name, array)`` -> ``(name, array)`` or ``None`` to skip a tensor, and
      ``_to_hf_tensor(name, array)``, its inverse, for layouts that differ from the checkpoint's.
    """

    config_class: ClassVar[type] = ModelConfig
    _tied_weights: ClassVar[dict[str, str]] = {}
    #: The dtype of the KV caches ``new_cache`` makes when none is asked for; None: the
    #: weights' dtype. ``gradient.float16`` (llama.cpp's default cache) halves what a decode
    #: step reads at long context; ``gradient.hub.load(..., kv_cache_dtype="float16")`` sets it,
    #: and a GGUF file loaded with ``activations="int8"`` (llama.cpp's numerics) has it.
    kv_cache_dtype = None

    def __init__(self, config):
        super().__init__()
        self.config = config

    # -- hooks
    @classmethod
    def _from_hf_tensor(cls, name: str, array):
        return name, array

    @classmethod
    def _to_hf_tensor(cls, name: str, array):
        return name, array

    def tie_weights(self) -> None:
        """Make every tied parameter the same Parameter object as its source."""
        for name, source in self._tied_weights_in_use().items():
            owner, _, attr = name.rpartition(".")
            setattr(self.get_submodule(owner) if owner else self, attr, self.get_parameter(source))

    def _tied_weights_in_use(self) -> dict[str, str]:
        return dict(self._tied_weights) if getattr(self.config, "tie_word_embeddings", True) else {}

    # -- generation
    def _inference_cache(self, input_ids, cache):
        """``cache``; or, where none is given, nothing is recorded and the model keeps its keys
        and values in float16 (``kv_cache_dtype``), a fresh cache for this call: attention
        then reads them rounded as generation's cache holds them (as llama.cpp, whose prompt
        attention reads its float16 cache too), so the logits of a forward without a cache are
        those of a cached one, bit for bit."""
        if cache is not None or self.kv_cache_dtype != float16 or is_grad_enabled():
            return cache
        return self.new_cache(input_ids.shape[0], input_ids.shape[1])

    def generate(self, input_ids, max_new_tokens: int = 20, **kwargs):
        """Continue ``input_ids`` by up to ``max_new_tokens`` tokens with the KV cache; see
        :func:`gradient.generation.generate` for the sampling options.

        Example: ``out = model.generate(ids, max_new_tokens=32, do_sample=True, top_p=0.9, seed=0)``
        """
        from ..generation import generate  # generation is the layer above models
        return generate(self, input_ids, max_new_tokens, **kwargs)

    # -- loading
    @classmethod
    def from_pretrained(cls, path_or_repo_id, dtype=None, **hub_kwargs) -> "PreTrainedModel":
        """Build the model from ``config.json`` and load its safetensors weights.

        ``dtype=None`` keeps the checkpoint's stored dtype (a bfloat16 checkpoint gives a
        bfloat16 model); ``dtype=gradient.float32`` (or ``"float32"``) converts. Weights are
        memory-mapped, so a checkpoint is read from disk once.

        Example: ``model = GPT2LMHeadModel.from_pretrained("gpt2-dir", dtype=gradient.float32)``
        """
        directory = _resolve(path_or_repo_id, **hub_kwargs)
        raw = _read_config(directory)
        if MODEL_TYPES.get(raw.get("model_type")) not in (cls, None) and cls is not PreTrainedModel:
            other = MODEL_TYPES[raw["model_type"]].__name__
            raise UnknownArchitectureError(f"{directory}: config.json describes a "
                                           f"{raw['model_type']!r} model ({other}), not "
                                           f"{cls.__name__}; use gradient.models.from_pretrained")
        if raw.get("model_type") not in MODEL_TYPES:
            _model_class(raw, directory)  # raises the error that lists what is supported
        config = cls.config_class.from_dict(raw)
        with _init.skip_init():
            model = cls(config)
        model.load_hf_weights(directory, dtype=_as_dtype(dtype),
                              quantization=raw.get("quantization_config"))
        model.eval()
        return model

    def load_hf_weights(self, directory: str, dtype=None, quantization=None) -> None:
        """Load the safetensors weights in ``directory`` (single file or sharded) into this
        model, converting to ``dtype`` when given; lists missing and unexpected tensors.

        ``quantization``: ``config.json``'s ``quantization_config``: the layers the checkpoint
        holds quantized (GPTQ, AWQ, compressed-tensors; :mod:`gradient.quant.formats`)
        become :class:`~gradient.quant.WeightOnlyLinear` layers, kept quantized."""
        files = _weight_files(directory)
        readers: dict[str, SafetensorsReader] = {}
        state: dict[str, Tensor] = OrderedDict()

        def reader_of(path):
            if path not in readers:
                readers[path] = SafetensorsReader(path, mmap=True)
            return readers[path]
        consumed: set = set()
        try:
            if quantization:
                from ..quant.formats import read_layers
                # copies: the layers keep their arrays after the files close
                layers, consumed = read_layers(
                    quantization, files, lambda n: np.array(reader_of(files[n]).read(n)))
                for name, layer in layers.items():
                    self.set_submodule(name, layer)
            for hf_name, path in files.items():
                if hf_name in consumed:
                    continue
                stored = reader_of(path).read(hf_name)
                mapped = self._from_hf_tensor(hf_name, stored)
                if mapped is None:
                    continue
                name, array = mapped
                if not np.may_share_memory(array, stored):   # the hook copied it: the
                    readers[path].release(hf_name)          # mapped pages can go
                state[name] = from_numpy(array) if dtype is None else \
                    from_numpy(array).to(dtype)
        finally:
            for reader in readers.values():
                reader.close()
        tied = self._tied_weights_in_use()
        expected = set(self.state_dict()) - set(tied)
        missing = sorted(expected - set(state))
        unexpected = sorted(set(state) - expected - set(tied))
        if missing or unexpected:
            raise FileFormatError(
                f"{directory}: the checkpoint does not match {type(self).__name__}"
                + (f"; missing tensors: {missing}" if missing else "")
                + (f"; unexpected tensors: {unexpected}" if unexpected else "")
                + ". Check that config.json belongs to these weights.")
        for name in tied:
            state.pop(name, None)  # the source parameter is loaded; the tie is restored below
        self.load_state_dict(state, strict=False, assign=True)
        self.tie_weights()

    # -- saving
    def save_pretrained(self, directory, max_shard_size: int | str = "5GB",
                        quantization_format: str | None = None) -> None:
        """Write ``config.json`` and the weights in Hugging Face's layout; checkpoints larger
        than ``max_shard_size`` (bytes, or a string like ``"500MB"``) are split into shards
        with a ``model.safetensors.index.json``.

        A model with :class:`~gradient.quant.WeightOnlyLinear` layers (quantized by gradient,
        or loaded quantized) writes them in ``quantization_format``: ``"compressed-tensors"``
        (the default: any of gradient's schemes), ``"gptq"`` or ``"awq"``, with the
        ``quantization_config`` other tools read (:mod:`gradient.quant.formats`).

        Example: ``model.save_pretrained("out/")`` then ``transformers`` loads ``out/``.
        """
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        tied = self._tied_weights_in_use()
        tensors = OrderedDict()
        for name, t in self.state_dict().items():
            if name in tied:
                continue
            hf_name, array = self._to_hf_tensor(name, t.detach().numpy())
            tensors[hf_name] = np.ascontiguousarray(array)
        config = self.config.to_dict()
        config.pop("quantization_config", None)
        from ..quant import QuantizedEmbedding, QuantizedLinear, UnsupportedQuantTypeError
        from ..quant.weight_only import WeightOnlyLinear
        ggml = [n for n, m in self.named_modules()
                if isinstance(m, (QuantizedLinear, QuantizedEmbedding))]
        if ggml:      # their weights are GGML blocks, which no safetensors checkpoint holds
            raise UnsupportedQuantTypeError(
                f"save_pretrained: {len(ggml)} layers ({', '.join(ggml[:3])}"
                f"{' ...' if len(ggml) > 3 else ''}) hold GGML blocks (a GGUF file's); write "
                f"them with gradient.models.save_gguf(model, path, qtype), or load the file "
                f"with quantized=False to save a float checkpoint")
        if any(isinstance(m, WeightOnlyLinear) for m in self.modules()):
            from ..quant.formats import write_layers
            config["quantization_config"], quantized = write_layers(
                self, quantization_format or "compressed-tensors")
            tensors.update(quantized)
        elif quantization_format is not None:
            raise ArgumentValueError("save_pretrained: quantization_format is for models with "
                                     "quantized layers (gradient.quant.quantize, gptq, awq, ...)")
        shards = _shard(tensors, _parse_size(max_shard_size))
        config.setdefault("architectures", [type(self).__name__])
        config["dtype"] = str(next(iter(self.parameters())).dtype).replace("gradient.", "")
        _write_json(os.path.join(directory, CONFIG_NAME), config)
        metadata = {"format": "pt"}  # what transformers expects in the header
        if len(shards) == 1:
            save_safetensors(shards[0], os.path.join(directory, WEIGHTS_NAME), metadata)
            return
        weight_map, total = {}, 0
        for i, shard in enumerate(shards, 1):
            file = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            save_safetensors(shard, os.path.join(directory, file), metadata)
            weight_map.update({name: file for name in shard})
            total += sum(a.nbytes for a in shard.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        _write_json(os.path.join(directory, WEIGHTS_INDEX_NAME), index)


def _write_json(path: str, obj) -> None:
    with atomic_write(path) as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True).encode())


def _parse_size(size) -> int:
    if isinstance(size, int):
        return size
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    text = str(size).strip().upper()
    for unit, factor in sorted(units.items(), key=lambda u: -len(u[0])):
        if text.endswith(unit):
            return int(float(text[:-len(unit)]) * factor)
    raise ArgumentValueError(
        f"max_shard_size: expected bytes or a size like '500MB', got {size!r}")


def _shard(tensors: dict, max_bytes: int) -> list[dict]:
    """Split tensors, in order, into groups of at most ``max_bytes`` (a larger tensor alone)."""
    shards, current, size = [], OrderedDict(), 0
    for name, array in tensors.items():
        if current and size + array.nbytes > max_bytes:
            shards.append(current)
            current, size = OrderedDict(), 0
        current[name] = array
        size += array.nbytes
    shards.append(current)
    return shards
