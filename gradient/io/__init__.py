"""Reading and writing tensors: checkpoints and safetensors weight files, never pickle.

* :func:`save` / :func:`load` -- ``torch.save``/``torch.load`` for gradient: any nesting of dicts,
  lists and tuples around tensors and plain values, in one safetensors file, written atomically.
* :func:`save_safetensors` / :func:`load_safetensors` -- flat ``{name: tensor}`` weight files, as
  Hugging Face ships them (``load_safetensors(path, mmap=True)`` maps the file lazily).
* :mod:`.download` -- a model's files from the Hugging Face hub into its cache (what
  :func:`gradient.hub.download_model` and ``from_pretrained`` of a hub id call).

Example::

    >>> gradient.io.save({"model": model.state_dict(), "step": 3}, "ckpt.safetensors")
    >>> gradient.io.load("ckpt.safetensors")["step"]
    3
"""

from .checkpoint import load, save
from .safetensors import SafetensorsReader, load_safetensors, safetensors_metadata, save_safetensors

__all__ = ["save", "load", "save_safetensors", "load_safetensors", "safetensors_metadata",
           "SafetensorsReader"]
