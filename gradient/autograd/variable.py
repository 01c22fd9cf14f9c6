"""``Variable``: PyTorch's wrapper of tensors from before tensors had gradients of their own,
as older programs still write it (``Variable(x, requires_grad=True)``).

Since PyTorch 0.4 a Variable is a tensor: ``Variable(x)`` is ``x`` detached (the same data, a
leaf), with ``requires_grad`` as given, and every tensor is an instance of ``Variable``.

Example::

    >>> from gradient.autograd import Variable
    >>> w = Variable(gradient.ones(3), requires_grad=True)
    >>> isinstance(gradient.zeros(2), Variable)
    True
"""

from __future__ import annotations

import warnings

from ..tensor import Tensor
from ..errors import ArgumentTypeError

__all__ = ["Variable"]


class _VariableType(type):
    def __call__(cls, data, requires_grad: bool = False, volatile: bool = False):
        if not isinstance(data, Tensor):
            raise ArgumentTypeError(
                f"Variable(data): expected a tensor, got {type(data).__name__}; "
                f"make one with gradient.tensor(data)")
        if volatile:
            warnings.warn("volatile has no effect, as in PyTorch since 0.4: use "
                          "'with gradient.no_grad():' instead", UserWarning, stacklevel=2)
        return data.detach().requires_grad_(requires_grad)

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor)


class Variable(metaclass=_VariableType):
    """A tensor (see the module's doc): ``Variable(x, requires_grad=False)`` is
    ``x.detach().requires_grad_(requires_grad)``."""
