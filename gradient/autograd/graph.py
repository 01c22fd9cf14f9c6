"""``gradient.autograd.graph``, as ``torch.autograd.graph``: the nodes of a recorded graph, and
hooks on what the graph saves for backward.

:class:`saved_tensors_hooks` gives every tensor an op saves for its backward to ``pack_hook``
when it is saved and hands back ``unpack_hook(packed)`` when the backward reads it: to move
activations off an accelerator (:class:`save_on_cpu`), compress them, or count them. Hooks
nest (the innermost applies); :class:`disable_saved_tensors_hooks` forbids them in a block.
A packed tensor is not checked for in-place changes after it was saved (the hook may have
copied it), as in PyTorch.

Example::

    >>> from gradient.autograd.graph import saved_tensors_hooks
    >>> sizes = []
    >>> def pack(t):
    ...     sizes.append(t.numel())
    ...     return t
    >>> x = gradient.randn(3, requires_grad=True)
    >>> with saved_tensors_hooks(pack, lambda t: t):
    ...     y = (x * x).sum()                 # mul saves both operands
    >>> sizes
    [3, 3]
"""

from __future__ import annotations

from ..errors import AutogradError
from . import saved_hooks
from .function import AccumulateGrad, Node

__all__ = ["Node", "AccumulateGrad", "saved_tensors_hooks", "save_on_cpu",
           "disable_saved_tensors_hooks"]


class saved_tensors_hooks:
    """Inside the block, each tensor saved for backward is ``pack_hook(tensor)`` (any object)
    and is given back to the backward as ``unpack_hook(that object)`` (a tensor of the same
    shape and dtype)."""

    def __init__(self, pack_hook, unpack_hook):
        self.pack_hook, self.unpack_hook = pack_hook, unpack_hook

    def __enter__(self) -> "saved_tensors_hooks":
        if saved_hooks.disabled:
            raise AutogradError(saved_hooks.disabled[-1])
        saved_hooks.stack.append((self.pack_hook, self.unpack_hook))
        return self

    def __exit__(self, *exc) -> None:
        saved_hooks.stack.pop()


class save_on_cpu(saved_tensors_hooks):
    """Saved tensors wait in CPU memory until the backward needs them, then go back to their
    device: activation memory off the accelerator, for a copy each way. (On the CPU nothing
    moves.) ``pin_memory`` is taken for PyTorch's signature."""

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda"):
        def pack(tensor):
            return tensor.device, tensor.cpu()

        def unpack(packed):
            device, tensor = packed
            return tensor.to(device)

        super().__init__(pack, unpack)


class disable_saved_tensors_hooks:
    """Inside the block, entering :class:`saved_tensors_hooks` raises ``error_message`` (for
    code whose saved tensors must stay as they are)."""

    def __init__(self, error_message: str):
        self.error_message = error_message

    def __enter__(self) -> "disable_saved_tensors_hooks":
        saved_hooks.disabled.append(self.error_message)
        return self

    def __exit__(self, *exc) -> None:
        saved_hooks.disabled.pop()
