"""``nn.factory_kwargs``, as PyTorch's: the ``device``/``dtype``/``memory_format`` arguments a
layer's constructor passes on to the functions that make its tensors.

Example::

    class MyModule(nn.Module):
        def __init__(self, **kwargs):
            super().__init__()
            self.weight = nn.Parameter(gradient.empty(10, **nn.factory_kwargs(kwargs)))
"""

from __future__ import annotations
from ..errors import ArgumentTypeError

__all__ = ["factory_kwargs"]

_KEYS = {"device", "dtype", "memory_format"}


def factory_kwargs(kwargs) -> dict:
    """The factory arguments among ``kwargs``, with those of a nested ``factory_kwargs`` dict
    (for a constructor whose own ``dtype`` means something else); anything else, or a key given
    both ways, is a TypeError."""
    if kwargs is None:
        return {}
    unexpected = set(kwargs) - _KEYS - {"factory_kwargs"}
    if unexpected:
        raise ArgumentTypeError(f"factory_kwargs: unexpected keys {sorted(unexpected)}; expected "
                                f"{sorted(_KEYS)} or 'factory_kwargs'")
    out = {k: v for k, v in kwargs.items() if k in _KEYS}
    nested = kwargs.get("factory_kwargs") or {}
    for key, value in nested.items():
        if key not in _KEYS:
            raise ArgumentTypeError(f"factory_kwargs: unexpected key {key!r} in factory_kwargs; "
                                    f"expected one of {sorted(_KEYS)}")
        if key in out:
            raise ArgumentTypeError(f"factory_kwargs: {key!r} given both as an argument and in "
                                    f"factory_kwargs")
        out[key] = value
    return out
