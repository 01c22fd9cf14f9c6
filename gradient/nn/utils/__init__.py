"""Utilities for training, as in ``torch.nn.utils``: gradient clipping, parameter vectors,
parametrizations (weight norm, spectral norm), pruning (``prune``), folding batch norms into
the layers before them (``fusion``), ``skip_init``.

Example::

    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
"""

from . import clip_grad, convert_parameters, grad, rnn  # noqa: F401
from .clip_grad import (clip_grad_norm, clip_grad_norm_, clip_grad_value_,  # noqa: F401
                        clip_grads_with_norm_, get_total_norm)
from .convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401
# Bound here, as torch.nn.utils binds them: a function named as its module is the package's
# attribute only where the package binds it before anything imports the module (a first
# `import gradient.nn.utils.weight_norm` binds the module to that name).
from .spectral_norm import remove_spectral_norm, spectral_norm  # noqa: F401
from .weight_norm import remove_weight_norm, weight_norm  # noqa: F401

# Loaded on first use, which keeps `import gradient` from importing them.
_LAZY = {"parametrize": ("parametrize", None), "parametrizations": ("parametrizations", None),
         "fusion": ("fusion", None),
         "fuse_conv_bn_eval": ("fusion", "fuse_conv_bn_eval"),
         "fuse_conv_bn_weights": ("fusion", "fuse_conv_bn_weights"),
         "fuse_linear_bn_eval": ("fusion", "fuse_linear_bn_eval"),
         "fuse_linear_bn_weights": ("fusion", "fuse_linear_bn_weights"),
         "prune": ("prune", None),
         "skip_init": ("init", "skip_init"),
         "stateless": ("stateless", None)}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    module_name, attr = _LAZY[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value
