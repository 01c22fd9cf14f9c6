"""Pretrained model families, one readable file each, with Hugging Face parameter names.

* :mod:`.gpt2` -- GPT-2 (:class:`GPT2LMHeadModel`).
* :mod:`.llama` -- the LLaMA family in one file driven by config (:class:`LlamaForCausalLM`):
  LLaMA 1-3, TinyLlama, SmolLM2, Mistral, Qwen2, Qwen3.
* :mod:`.pretrained` -- loading and saving the Hugging Face layout, and :func:`from_pretrained`,
  which picks the class from ``config.json``.

Example::

    >>> model = gradient.models.from_pretrained("path/to/checkpoint")
"""

from .gpt2 import GPT2Config, GPT2LMHeadModel
from .llama import LlamaConfig, LlamaForCausalLM, LlamaModel
from .pretrained import (MODEL_TYPES, CausalLMOutput, ModelConfig, PreTrainedModel,
                         UnknownArchitectureError, from_pretrained, register_model)

__all__ = ["GPT2Config", "GPT2LMHeadModel", "LlamaConfig", "LlamaForCausalLM", "LlamaModel", "from_pretrained", "PreTrainedModel", "ModelConfig",
           "CausalLMOutput", "register_model", "MODEL_TYPES", "UnknownArchitectureError"]
