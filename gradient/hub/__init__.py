"""The Hugging Face hub: from a model name to a model and tokenizer on this machine.

* :func:`load` -- ``(model, tokenizer)`` from a hub id, a short alias (``"gpt2"``), a local
  directory, or a ``.gguf`` file.
* :func:`download_model` -- fetch a repo's config, safetensors weights and tokenizer into the
  standard Hugging Face cache (``HF_HOME``, ``HF_HUB_OFFLINE``, tokens and revisions as usual)
  and return the snapshot directory (:mod:`gradient.io.download`, where the models' own
  ``from_pretrained`` reach it too).

Example::

    >>> model, tokenizer = gradient.hub.load("gpt2")
    >>> path = gradient.hub.download_model("openai-community/gpt2", revision="main")
"""

from ..errors import HubError, ModelNotFoundError, UnsupportedWeightsError
from ..io.download import ALLOW_PATTERNS, MODEL_ALIASES, download_model, resolve_repo_id
from .load import load, locate

__all__ = ["load", "locate", "download_model", "resolve_repo_id", "MODEL_ALIASES",
           "ALLOW_PATTERNS", "HubError", "ModelNotFoundError", "UnsupportedWeightsError"]
