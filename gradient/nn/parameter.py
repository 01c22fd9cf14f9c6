"""Parameter and Buffer: the two kinds of tensor a :class:`~gradient.nn.Module` registers itself.

A :class:`Parameter` is a tensor that a module trains: assigning one to a module attribute puts it
in ``module.parameters()``, which is what an optimizer gets. A :class:`Buffer` is state that is
saved with the model but not trained (BatchNorm's running mean).

Example::

    >>> w = nn.Parameter(gradient.randn(3, 4))
    >>> w.requires_grad, w.is_leaf
    (True, True)
    >>> type(w * 2)          # arithmetic on a parameter gives a plain tensor
    <class 'gradient.tensor.Tensor'>
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..tensor import Tensor
from ..errors import ArgumentTypeError

__all__ = ["Parameter", "Buffer"]


def _as_tensor(data) -> Tensor:
    """``data`` as a tensor: an empty one for None, the tensor itself, or a copy of array data."""
    if data is None:
        from ..ops.creation import zeros
        return zeros(0)
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray) or hasattr(data, "__array__"):
        from ..ops.creation import tensor
        return tensor(data)
    raise ArgumentTypeError(f"expected a gradient.Tensor (or an array), got {type(data).__name__}")


def _share(cls, data: Tensor) -> Tensor:
    """A new ``cls`` instance over the same storage as ``data`` (and the same version counter,
    so in-place writes through either are seen by autograd's saved-tensor checks)."""
    out = cls._make(data._data, False, data._backend)
    out._version = data._version
    return out


class Parameter(Tensor):
    """A tensor that is a module parameter: a leaf that requires grad (unless told otherwise).

    ``Parameter(data)`` shares ``data``'s storage (no copy) and is detached from ``data``'s graph,
    as in PyTorch. Operations on a parameter return plain :class:`~gradient.Tensor` objects.

    Differences from PyTorch: ``data`` may also be a NumPy array (it is copied into a new tensor);
    PyTorch accepts only tensors.

    Example::

        >>> p = nn.Parameter(gradient.zeros(2))
        >>> p
        Parameter containing:
        tensor([0., 0.], requires_grad=True)
    """

    # no __slots__: like PyTorch parameters, a Parameter can carry extra attributes
    # (``p._no_weight_decay = True``) that optimizers or sharding code look at

    def __new__(cls, data=None, requires_grad: bool = True):
        p = _share(cls, _as_tensor(data))
        p.requires_grad_(requires_grad)  # raises for integer data, as PyTorch does
        return p

    def __init__(self, data=None, requires_grad: bool = True):
        pass  # everything happens in __new__ (Tensor.__init__ would make a new tensor)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        """A parameter with copied data and the same requires_grad (its .grad is not copied,
        as in PyTorch)."""
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.detach().clone(), self.requires_grad)
        memo[id(self)] = result
        return result


class Buffer(Tensor):
    """A tensor that a module saves with its state but does not train (PyTorch 2's ``nn.Buffer``).

    Assigning a Buffer to a module attribute registers it as a buffer, like
    ``module.register_buffer(name, data, persistent)``. Non-persistent buffers are left out of
    ``state_dict()``.

    Example::

        >>> class Norm(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.running_mean = nn.Buffer(gradient.zeros(4))
        >>> list(Norm().state_dict())
        ['running_mean']
    """

    __slots__ = ("persistent",)

    def __new__(cls, data=None, *, persistent: bool = True):
        data = _as_tensor(data)
        b = _share(cls, data)
        b._requires_grad = data.requires_grad and data.is_floating_point()
        b.persistent = bool(persistent)
        return b

    def __init__(self, data=None, *, persistent: bool = True):
        pass


# ---------------------------------------------------------------------- lazy placeholders
__all__ += ["UninitializedParameter", "UninitializedBuffer", "is_lazy"]


def _empty_placeholder(device, dtype) -> Tensor:
    from ..ops.creation import empty
    return empty((0,), device=device, dtype=dtype)


class _Uninitialized:
    """What the two placeholders share: ``materialize(shape)`` gives them storage of ``shape``
    and turns them into the class they stand for (``cls_to_become``), in place, so every
    reference to them (an optimizer built before the first forward excepted) sees the result."""

    __slots__ = ()   # so that UninitializedBuffer keeps Tensor's layout
    cls_to_become = Tensor

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Give the placeholder uninitialized storage of ``shape`` (on its device and dtype
        unless given) and make it a plain ``cls_to_become``."""
        from ..ops.creation import empty
        if isinstance(shape, int):
            shape = (shape,)
        new = empty(tuple(shape), device=device or self.device, dtype=dtype or self.dtype)
        self._data, self._backend = new._data, new._backend
        self.__class__ = self.cls_to_become

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class UninitializedParameter(_Uninitialized, Parameter):
    """A parameter whose shape is not known yet (a lazy layer's weight before its first call).

    It holds no data (an empty tensor); :meth:`materialize` gives it a shape and makes it a
    :class:`Parameter`. Difference from PyTorch: reading ``.shape`` of a placeholder gives
    ``(0,)`` instead of raising.

    Example::

        >>> w = nn.UninitializedParameter()
        >>> w.materialize((3, 4)); type(w).__name__, tuple(w.shape)
        ('Parameter', (3, 4))
    """

    cls_to_become = Parameter

    def __new__(cls, requires_grad: bool = True, device=None, dtype=None):
        return Parameter.__new__(cls, _empty_placeholder(device, dtype), requires_grad)

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        pass

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.requires_grad, self.device, self.dtype)
        memo[id(self)] = result
        return result


class UninitializedBuffer(_Uninitialized, Tensor):
    """A buffer whose shape is not known yet (a lazy BatchNorm's running statistics);
    :meth:`materialize` gives it a shape and makes it a plain tensor.

    Example: ``b = nn.UninitializedBuffer(); b.materialize(8)``
    """

    __slots__ = ()   # the layout of Tensor, so that materialize can turn it into one
    cls_to_become = Tensor

    def __new__(cls, requires_grad: bool = False, device=None, dtype=None):
        data = _empty_placeholder(device, dtype)
        out = cls._make(data._data, False, data._backend)
        out._requires_grad = requires_grad
        return out

    def __init__(self, requires_grad: bool = False, device=None, dtype=None):
        pass


def is_lazy(value) -> bool:
    """Whether ``value`` is an uninitialized parameter or buffer (a lazy layer's placeholder)."""
    return isinstance(value, _Uninitialized)


def zero_grad_(parameters: Iterable[Tensor], set_to_none: bool = True) -> None:
    """Forget the gradients of ``parameters``: ``.grad = None`` (default), or zeros in place.

    ``nn.utils.grad.zero_grad_(model.parameters())``; what ``Module.zero_grad`` and
    ``Optimizer.zero_grad`` share.
    """
    for p in parameters:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            if p.grad.grad_fn is not None:
                p.grad.detach_()
            else:
                p.grad.requires_grad_(False)
            p.grad.zero_()
