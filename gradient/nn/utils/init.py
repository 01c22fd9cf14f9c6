"""``skip_init``, as ``torch.nn.utils.skip_init``: a module built without spending time on
initial values its caller overwrites anyway (a checkpoint is loaded next)."""

from __future__ import annotations

import inspect
from ...errors import ArgumentTypeError

__all__ = ["skip_init"]


def skip_init(module_cls, *args, **kwargs):
    """``module_cls(*args, **kwargs)``, whose parameters' values are to be treated as
    uninitialised, as PyTorch's. The class must take a ``device`` argument, as PyTorch
    requires; gradient has no meta device to build on, so the module is built on its device
    directly (its values are those of its own initialisation, which the caller overwrites).

    Example::

        >>> layer = nn.utils.skip_init(nn.Linear, 1024, 1024)
        >>> layer.load_state_dict(weights)
    """
    if "device" not in inspect.signature(module_cls).parameters:
        raise ArgumentTypeError(
            f"skip_init: {module_cls.__name__} must take a 'device' argument (as "
            f"PyTorch requires) to be built with skip_init")
    return module_cls(*args, **kwargs)
