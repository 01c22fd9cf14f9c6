"""``load``: one call from a model name to a model and tokenizer ready to generate.

What the name can be, checked in this order:

1. a path ending in ``.gguf``: a GGUF file, loaded by
   :func:`gradient.models.gguf_loader.load_gguf` (matrices kept in their GGML types);
2. an existing directory: a checkpoint in the Hugging Face layout (``config.json``, safetensors
   weights, ``tokenizer.json``), loaded as is;
3. anything else: a hub repo id (``"HuggingFaceTB/SmolLM2-135M-Instruct"``) or a short alias
   (``"gpt2"``), fetched into the Hugging Face cache by :func:`~gradient.hub.download_model`.

Example::

    >>> model, tokenizer = gradient.hub.load("gpt2")
    >>> ids = tokenizer.encode("Hello, my dog")
"""

from __future__ import annotations

import json
import os

from ..errors import ArgumentValueError, ModelNotFoundError
from ..io.download import download_model

__all__ = ["load", "locate"]


def load(name_or_path, dtype=None, revision=None, token=None, cache_dir=None,
         kv_cache_dtype=None, **hub_kwargs):
    """Load a causal language model and its tokenizer; returns ``(model, tokenizer)``.

    ``name_or_path`` is a hub repo id or alias, a local checkpoint directory, or a ``.gguf``
    file. ``dtype`` (``None`` keeps the stored dtype; ``"float32"``, ``gradient.bfloat16`` ...)
    converts the weights. ``revision``, ``token`` and ``cache_dir`` choose what is fetched from
    the hub and where it is cached (defaults: ``"main"``, the stored token, the standard cache);
    other keyword arguments go to :func:`~gradient.hub.download_model` (``local_files_only=True``
    ...). A ``.gguf`` file keeps its matrices in their GGML types (``quantized=False``
    dequantizes them into a float model; by default it computes exactly, as transformers does
    on the dequantized weights, with a float32 KV cache, and ``activations="int8"`` makes it
    compute as llama.cpp does, int8 activations in the products (bfloat16 ones for a BF16
    file's) and a float16 KV cache). ``kv_cache_dtype="float16"`` makes generation keep its
    keys and values in float16, as llama.cpp does by default: half the memory, and at long
    context faster decoding (a step reads the whole cache); ``"float32"`` keeps them exact;
    None leaves the model's default (a GGUF file's above, else the weights' dtype). The model
    is in eval mode; its ``generation_config`` attribute holds the checkpoint's
    ``generation_config.json`` (an empty dict when there is none).

    Example::

        >>> model, tok = gradient.hub.load("HuggingFaceTB/SmolLM2-135M-Instruct", dtype="float32")
        >>> model, tok = gradient.hub.load("./my-checkpoint")
        >>> model, tok = gradient.hub.load("SmolLM2-135M-Instruct.Q4_1.gguf")
        >>> model, tok = gradient.hub.load("SmolLM2-135M-Instruct.Q4_1.gguf",
        ...                                kv_cache_dtype="float16")
    """
    cache_dtype = _cache_dtype(kv_cache_dtype)
    path = os.path.expanduser(os.fspath(name_or_path))
    if path.lower().endswith(".gguf"):
        model, tokenizer = _load_gguf(path, dtype=dtype, **hub_kwargs)
    else:
        directory = locate(path, revision=revision, token=token, cache_dir=cache_dir,
                           **hub_kwargs)

        from ..models import from_pretrained
        from ..tokenizers import Tokenizer

        model = from_pretrained(directory, dtype=dtype)
        tokenizer = Tokenizer.from_pretrained(directory)
        model.generation_config = _read_generation_config(directory)
        model.name_or_path = directory
    if cache_dtype is not None:
        model.kv_cache_dtype = cache_dtype
    return model, tokenizer


def _cache_dtype(kv_cache_dtype):
    """The KV cache dtype asked for, checked: None, float32 or float16."""
    if kv_cache_dtype is None:
        return None
    from ..dtypes import as_dtype, float16, float32
    try:
        dtype = as_dtype(kv_cache_dtype)
    except (TypeError, ValueError):
        dtype = None
    if dtype not in (float16, float32):
        raise ArgumentValueError(f"load: kv_cache_dtype must be 'float16', 'float32' or None (the "
                                 f"weights' dtype), got {kv_cache_dtype!r}")
    return dtype


def locate(name_or_path, revision=None, token=None, cache_dir=None, **hub_kwargs) -> str:
    """The local directory that holds a model: ``name_or_path`` itself when it is a directory
    (checked to contain ``config.json``), else the hub snapshot (downloaded if needed).

    Example: ``locate("gpt2")`` -> ``~/.cache/huggingface/hub/models--openai-community--gpt2/snapshots/<commit>``
    """
    path = os.path.expanduser(os.fspath(name_or_path))
    if os.path.isdir(path):
        _check_directory(path)
        return path
    if os.path.exists(path):
        raise ModelNotFoundError(f"{path} is a file, not a model directory: pass the directory "
                                 "that holds config.json and the weights, or a .gguf file")
    if _looks_like_path(path):
        raise ModelNotFoundError(f"no such directory: {path}. Pass an existing directory with "
                                 "config.json, safetensors weights and tokenizer.json, or a hub "
                                 "repo id such as 'openai-community/gpt2'")
    return download_model(path, revision=revision, token=token, cache_dir=cache_dir, **hub_kwargs)


# ----------------------------------------------------------------------------- GGUF
# The one place GGUF files enter: gradient.models.gguf_loader builds the model from the file's
# metadata (llama/qwen2/qwen3 architectures), keeps or dequantizes its tensors, and builds the
# tokenizer from its tokenizer.ggml.* keys.
def _load_gguf(path: str, dtype=None, quantized: bool = True, activations: str = "float32"):
    """A ``.gguf`` file (see :func:`gradient.models.gguf_loader.load_gguf`)."""
    if not os.path.isfile(path):
        raise ModelNotFoundError(f"no such GGUF file: {path}")
    from ..models.gguf_loader import load_gguf
    return load_gguf(path, dtype=dtype, quantized=quantized, activations=activations)


# ----------------------------------------------------------------------------- helpers
def _looks_like_path(name: str) -> bool:
    """A name that can only be meant as a filesystem path (a hub id is 'name' or 'org/name')."""
    return (os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name
            or name.count("/") > 1 or name.endswith("/"))


def _check_directory(directory: str) -> None:
    if os.path.isfile(os.path.join(directory, "config.json")):
        return
    present = sorted(os.listdir(directory))
    ggufs = [f for f in present if f.lower().endswith(".gguf")]
    hint = (f" It holds GGUF files: pass one of them ({os.path.join(directory, ggufs[0])})."
            if ggufs else "")
    raise ModelNotFoundError(
        f"{directory}: no config.json. A model directory holds config.json, safetensors weights "
        "(model.safetensors, or model.safetensors.index.json and its shards) and a tokenizer "
        f"(tokenizer.json, tokenizer_config.json); found {present[:20]}.{hint} Write one with "
        "model.save_pretrained(directory), or pass a hub repo id to download one")


def _read_generation_config(directory: str) -> dict:
    path = os.path.join(directory, "generation_config.json")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError):
        return {}  # optional file: defaults are fine without it
    return config if isinstance(config, dict) else {}
