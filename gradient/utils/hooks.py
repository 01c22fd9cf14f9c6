"""``torch.utils.hooks``: the handle a hook registration returns, for code that keeps hooks of
its own (``handle = RemovableHandle(self._hooks); self._hooks[handle.id] = fn``), and the
marker of hooks that are not meant to be saved.

Example::

    >>> hooks = {}
    >>> handle = RemovableHandle(hooks)
    >>> hooks[handle.id] = print
    >>> handle.remove()            # hooks is empty again
"""

from __future__ import annotations

import warnings

from ..nn.module import RemovableHandle

__all__ = ["RemovableHandle", "unserializable_hook", "warn_if_has_hooks"]


def unserializable_hook(f):
    """Mark ``f`` as a hook that is not saved with its tensor (no warning about it)."""
    f.__torch_unserializable__ = True
    return f


def _tensor_hooks(tensor) -> list:
    """The hooks registered on ``tensor`` with ``register_hook``."""
    if tensor.grad_fn is None:
        return list(tensor._hooks or [])
    return list((tensor.grad_fn.pre_hooks or {}).get(tensor._output_nr, []))


def warn_if_has_hooks(tensor) -> None:
    """Warn about each hook on ``tensor`` that saving it would leave behind (gradient's
    checkpoints hold values, never hooks), unless :func:`unserializable_hook` marked it."""
    for hook in _tensor_hooks(tensor):
        if not hasattr(hook, "__torch_unserializable__"):
            warnings.warn(f"backward hook {hook!r} on tensor will not be serialized. If this is "
                          "expected, you can decorate the function with "
                          "@gradient.utils.hooks.unserializable_hook to suppress this warning",
                          stacklevel=2)
