"""Pretrained model families, one readable file each, with Hugging Face parameter names.

* :mod:`.gpt2` -- GPT-2 (:class:`GPT2LMHeadModel`).
* :mod:`.llama` -- the LLaMA family in one file driven by config (:class:`LlamaForCausalLM`):
  LLaMA 1-3, TinyLlama, SmolLM2, Mistral, Qwen2, Qwen3.
* :mod:`.pretrained` -- loading and saving the Hugging Face layout, and :func:`from_pretrained`,
  which picks the class from ``config.json``.
* :mod:`.gguf_loader` and :mod:`.gguf_writer` -- llama.cpp's GGUF files in (:func:`load_gguf`)
  and out (:func:`save_gguf`); imported on first use (they bring the quantized kernels).

Example::

    >>> model = gradient.models.from_pretrained("path/to/checkpoint")
"""

from .gpt2 import GPT2Config, GPT2LMHeadModel
from .llama import LlamaConfig, LlamaForCausalLM, LlamaModel
from .tensor_parallel import shard_llama
from .pretrained import (MODEL_TYPES, CausalLMOutput, ModelConfig, PreTrainedModel,
                         UnknownArchitectureError, from_pretrained, register_model)

__all__ = ["GPT2Config", "GPT2LMHeadModel", "LlamaConfig", "LlamaForCausalLM", "LlamaModel",
           "shard_llama",
           "from_pretrained", "PreTrainedModel", "ModelConfig", "CausalLMOutput",
           "register_model", "MODEL_TYPES", "UnknownArchitectureError", "load_gguf", "save_gguf"]


def __getattr__(name):
    if name == "load_gguf":
        from .gguf_loader import load_gguf
        return load_gguf
    if name == "save_gguf":
        from .gguf_writer import save_gguf
        return save_gguf
    raise AttributeError(f"module 'gradient.models' has no attribute {name!r}")
