"""Parametrizations, as in ``torch.nn.utils.parametrize``: a tensor of a module computed from
other tensors each time it is read.

``register_parametrization(module, "weight", P())`` moves the parameter to
``module.parametrizations.weight.original`` and makes ``module.weight`` a property that returns
``P()(original)``. Several parametrizations chain (applied in registration order). If ``P`` has
a ``right_inverse``, it maps the current value to the stored ``original`` (or to several,
``original0``, ``original1``, ...), and assigning ``module.weight = value`` goes through it too.

The property lives on a subclass made for the module (``ParametrizedLinear``), so only that
module changes; :func:`remove_parametrizations` restores the class once the last one is gone.
The state dict keys are PyTorch's (``parametrizations.weight.original``).

Example::

    >>> class Symmetric(nn.Module):
    ...     def forward(self, X):
    ...         return X.triu() + X.triu(1).transpose(-1, -2)
    >>> layer = nn.Linear(3, 3)
    >>> parametrize.register_parametrization(layer, "weight", Symmetric())
    >>> bool((layer.weight == layer.weight.T).all())
    True
"""

from __future__ import annotations

import contextlib

from ...autograd.grad_mode import no_grad
from ...tensor import Tensor
from ..module import Module, _set_data
from ..modules.container import ModuleDict, ModuleList
from ..parameter import Parameter
from ...errors import ArgumentValueError, UsageError

__all__ = ["register_parametrization", "remove_parametrizations", "is_parametrized", "cached",
           "ParametrizationList",
           "type_before_parametrizations"]

# the values read while ``cached()`` is active, by (id(module), name); None when not caching
_cache_depth = 0
_cache: dict = {}


@contextlib.contextmanager
def cached():
    """Compute each parametrized tensor once inside the block (a recurrent network that reads
    its parametrized weight at every step pays for the parametrization once).

    Example::

        >>> with parametrize.cached():
        ...     out = rnn(x)
    """
    global _cache_depth
    _cache_depth += 1
    try:
        yield
    finally:
        _cache_depth -= 1
        if not _cache_depth:
            _cache.clear()


def _register(module: Module, name: str, tensor: Tensor, like: Tensor) -> None:
    """``tensor`` under ``name``: a parameter if ``like`` was one, a buffer otherwise."""
    if isinstance(like, Parameter):
        module.register_parameter(name, tensor if isinstance(tensor, Parameter)
                                  else Parameter(tensor, like.requires_grad))
    else:
        module.register_buffer(name, tensor)


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor (children ``0``, ``1``, ...) and the stored
    ``original`` (or ``original0``, ``original1``, ... when ``right_inverse`` returns several)."""

    def __init__(self, modules, original: Tensor, unsafe: bool = False) -> None:
        super().__init__(modules)
        self.unsafe = unsafe
        # the stored tensors are what right_inverse makes of the current value, last
        # parametrization first; one that cannot invert (NotImplementedError) stores the value
        # as it is, as in PyTorch
        with no_grad():
            new = original
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:
                        pass
        if isinstance(new, Tensor):
            self.is_tensor, self.ntensors = True, 1
            with no_grad():
                if new is not original:
                    _check_same(original, new, "right_inverse", unsafe)
                    _set_data(original, new.detach())  # same object: optimizers keep working
            _register(self, "original", original, original)
        else:
            if not isinstance(new, (tuple, list)) or not all(isinstance(t, Tensor) for t in new):
                raise ArgumentValueError(
                    "'right_inverse' must return a Tensor or a sequence of tensors, "
                    f"got {type(new).__name__}")
            self.is_tensor, self.ntensors = False, len(new)
            for i, t in enumerate(new):
                _register(self, f"original{i}", t.detach(), original)
        if not unsafe:
            value = self()
            _check_same(original, value, "the parametrization", False)

    def right_inverse(self, value: Tensor) -> None:
        """Store what makes the parametrized tensor equal ``value`` (``module.weight = value``)."""
        with no_grad():
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise UsageError(f"parametrization {type(module).__name__} does not "
                                     "implement right_inverse, so the tensor cannot be assigned")
                value = module.right_inverse(value)
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ArgumentValueError(f"right_inverse must return a Tensor, got "
                                             f"{type(value).__name__}")
                self.original.copy_(value)
            else:
                if len(value) != self.ntensors:
                    raise ArgumentValueError(
                        f"right_inverse must return {self.ntensors} tensors, got "
                        f"{len(value)}")
                for i, t in enumerate(value):
                    getattr(self, f"original{i}").copy_(t)

    def forward(self) -> Tensor:
        if self.is_tensor:
            x = self[0](self.original)
        else:
            x = self[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in list(self)[1:]:
            x = module(x)
        return x


def _check_same(original: Tensor, new, what: str, unsafe: bool) -> None:
    if unsafe:
        return
    if not isinstance(new, Tensor):
        raise ArgumentValueError(f"{what} must return a Tensor, got {type(new).__name__} (pass "
                                 "unsafe=True to skip this check)")
    if tuple(new.shape) != tuple(original.shape) or new.dtype != original.dtype:
        raise ArgumentValueError(f"{what} may not change the shape or dtype of the tensor (pass "
                                 f"unsafe=True to allow it): original {tuple(original.shape)} "
                                 f"{original.dtype}, got {tuple(new.shape)} {new.dtype}")


def _property(name: str):
    def get(self):
        plist = self.parametrizations[name]
        if _cache_depth:
            key = (id(self), name)
            if key not in _cache:
                _cache[key] = plist()
            return _cache[key]
        return plist()

    def set(self, value):
        self.parametrizations[name].right_inverse(value)

    return property(get, set)


def _inject_new_class(module: Module) -> None:
    cls = type(module)

    def getstate(self):
        raise UsageError("Serialization of parametrized modules is only supported through "
                         "state_dict()")

    new = type(f"Parametrized{cls.__name__}", (cls,), {"__getstate__": getstate,
                                                        "_original_class": cls})
    module.__class__ = new


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make ``module.<tensor_name>`` be ``parametrization(original)``; returns ``module``.

    ``tensor_name`` is a parameter or buffer of ``module`` (or already parametrized, to chain).
    Unless ``unsafe``, the parametrization must keep the tensor's shape and dtype.

    Example::

        >>> parametrize.register_parametrization(layer, "weight", Symmetric())
        >>> list(layer.state_dict())
        ['bias', 'parametrizations.weight.original']
    """
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        if not unsafe:
            value = module.__getattribute__(tensor_name)
            new = parametrization(value)
            _check_same(value, new, "the parametrization", False)
        plist.append(parametrization)
        plist.unsafe |= unsafe
        return module
    if tensor_name in module._parameters:
        original = module._parameters[tensor_name]
    elif tensor_name in module._buffers:
        original = module._buffers[tensor_name]
    else:
        raise ArgumentValueError(
            f"Module '{type(module).__name__}' does not have a parameter, a buffer, or "
            f"a parametrized element with name '{tensor_name}'")
    if original is None:
        raise ArgumentValueError(
            f"register_parametrization: '{tensor_name}' of {type(module).__name__} "
            "is None; there is nothing to parametrize")
    plist = ParametrizationList([parametrization], original, unsafe=unsafe)
    delattr(module, tensor_name)
    if not is_parametrized(module):
        _inject_new_class(module)
        module.parametrizations = ModuleDict()
    module.parametrizations[tensor_name] = plist
    setattr(type(module), tensor_name, _property(tensor_name))
    return module


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has any parametrization (or one on ``tensor_name``)."""
    parametrizations = module.__dict__.get("_modules", {}).get("parametrizations")
    if parametrizations is None or not isinstance(parametrizations, ModuleDict):
        return False
    return len(parametrizations) > 0 if tensor_name is None else tensor_name in parametrizations


def remove_parametrizations(module: Module, tensor_name: str,
                            leave_parametrized: bool = True) -> Module:
    """Undo :func:`register_parametrization` on ``tensor_name``: it becomes a plain parameter
    (or buffer) again, holding the parametrized value (``leave_parametrized=True``) or the
    stored original.

    Example::

        >>> parametrize.remove_parametrizations(layer, "weight")
        >>> type(layer).__name__
        'Linear'
    """
    if not is_parametrized(module, tensor_name):
        raise ArgumentValueError(
            f"Module {type(module).__name__} does not have a parametrization on "
            f"{tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                value = getattr(module, tensor_name)
                if tuple(value.shape) == tuple(original.shape) and value.dtype == original.dtype:
                    original.copy_(value)   # keep the object: optimizers still hold it
                else:
                    _set_data(original, value.detach())
    else:
        if not leave_parametrized:
            raise ArgumentValueError(
                "Cannot leave unparametrized (`leave_parametrized=False`) a tensor "
                "that is parametrized in terms of a sequence of tensors")
        with no_grad():
            original = getattr(module, tensor_name).detach()
    like = plist.original if plist.is_tensor else plist.original0   # parameter or buffer
    delattr(type(module), tensor_name)
    del module.parametrizations[tensor_name]
    _register(module, tensor_name, original, like)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = type(module)._original_class
    return module


def type_before_parametrizations(module: Module) -> type:
    """The module's class before any parametrization (``Linear`` for a ``ParametrizedLinear``)."""
    return type(module)._original_class if is_parametrized(module) else type(module)

