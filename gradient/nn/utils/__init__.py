"""Utilities for training, as in ``torch.nn.utils``: gradient clipping and parameter vectors.

Example::

    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
"""

from . import clip_grad, convert_parameters, grad, rnn  # noqa: F401
from .clip_grad import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm  # noqa: F401
from .convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401
