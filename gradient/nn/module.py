"""Module: the base class of every layer and model, with PyTorch's ``torch.nn.Module`` behaviour.

A module owns three kinds of named things, kept in three ordered dicts:

- ``_parameters``: :class:`~gradient.nn.Parameter` objects (what the optimizer trains),
- ``_buffers``: tensors saved with the model but not trained (running statistics, masks),
- ``_modules``: child modules.

Assigning an attribute files it in the right dict (``self.weight = Parameter(...)`` registers a
parameter, ``self.fc = Linear(...)`` a child), and attribute lookup searches the dicts. Everything
else (``parameters()``, ``state_dict()``, ``to()``, ``train()``) walks the tree of children.

Example::

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 16)
            self.fc2 = nn.Linear(16, 2)

        def forward(self, x):
            return self.fc2(self.fc1(x).relu())

    model = MLP()
    [name for name, _ in model.named_parameters()]   # ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    model.load_state_dict(model.state_dict())

Deliberate differences from PyTorch:

- ``load_state_dict`` raises :class:`StateDictError` (a ``RuntimeError``, like PyTorch's) and
  writes shapes as tuples: ``size mismatch for weight: copying a param with shape (2, 3) ...``.
  It also accepts NumPy arrays as values (what a checkpoint reader may hand over).
- Backward hooks on modules, global hooks, ``_load_from_state_dict`` overrides by subclasses and
  state-dict hooks are not implemented.
"""

from __future__ import annotations

import copy
import itertools
import warnings
from collections import OrderedDict, namedtuple
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from ..autograd.grad_mode import no_grad
from ..device import as_device
from ..dtypes import DType, as_dtype
from ..errors import GradientError
from ..tensor import Tensor
from .parameter import Buffer, Parameter
from .utils.grad import zero_grad_

__all__ = ["Module", "RemovableHandle", "StateDictError"]


class StateDictError(GradientError, RuntimeError):
    """``load_state_dict`` found missing or unexpected keys, or values of the wrong shape."""


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict(..., strict=False)`` returns."""

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class RemovableHandle:
    """What ``register_*_hook`` returns: ``handle.remove()`` unregisters the hook.

    Also a context manager: ``with module.register_forward_hook(f): ...`` removes it on exit.
    """

    _next_id = itertools.count()

    def __init__(self, hooks_dict: dict, *, extra_dicts: tuple = ()):
        self.id = next(RemovableHandle._next_id)
        self._dicts = (hooks_dict, *extra_dicts)

    def remove(self) -> None:
        _changes[0] += 1   # a hook removed: see structure_version
        for d in self._dicts:
            if isinstance(d, dict):
                d.pop(self.id, None)
            else:  # a set of hook ids (with_kwargs, always_call)
                d.discard(self.id)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _typename(obj) -> str:
    if isinstance(obj, Tensor):
        return f"gradient.{type(obj).__name__}"
    module = type(obj).__module__
    return type(obj).__qualname__ if module == "builtins" else f"{module}.{type(obj).__qualname__}"


def _addindent(s: str, spaces: int) -> str:
    """Indent every line of a multi-line string but the first (nested module reprs)."""
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def _set_data(t: Tensor, new: Tensor) -> None:
    """Make ``t`` hold ``new``'s storage, keeping ``t``'s identity (PyTorch's ``t.data = new``).

    Unlike ``Tensor.data = ...`` this also takes over the backend, so it works across devices.
    """
    if new is t:
        return
    count_change()
    t._data = new._data
    t._backend = new._backend
    t._accumulator = None  # the old AccumulateGrad node recorded the old shape and dtype


def _as_value(value) -> Tensor:
    """A state-dict value as a tensor: gradient tensors pass, arrays are wrapped (not copied)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        from ..ops.creation import from_numpy
        arr = np.asarray(value)
        return from_numpy(arr if arr.flags.c_contiguous or arr.ndim == 0 else np.ascontiguousarray(arr))
    if hasattr(value, "__array__"):
        from ..ops.creation import tensor
        return tensor(value)
    return None


def _copy_into_(dst: Tensor, src: Tensor) -> None:
    """Write ``src``'s values into ``dst`` in place (same shape), casting and moving as needed.

    Writes the storage directly instead of calling ``dst.copy_(src)``, which for a tensor that
    requires grad computes ``src + dst * 0`` and so turns the new values into NaN wherever the old
    ones were inf or NaN: exactly the case of loading a checkpoint into a diverged model.
    """
    with no_grad():
        src = src.to(device=dst.device, dtype=dst.dtype)
    dst._backend.setitem(dst._data, Ellipsis, src._data)
    dst._version.bump("copy_")


def _forward_unimplemented(self, *input: Any) -> None:
    raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" '
                              "function; define forward(self, ...) in the subclass")


# How many times any module's attributes, children or forward hooks were set or removed: a
# structure derived from a module tree and cached (a compiled decoder over its layers) stays
# valid while this is unchanged, and is checked again otherwise. A list, so that the class and
# the children dicts below share one count.
_changes = [0]


def count_change() -> None:
    """Count a change that :func:`structure_version` does not see by itself (a parameter's
    storage replaced: ``Tensor.data = ...``, ``Module.to``)."""
    _changes[0] += 1


def structure_version() -> int:
    """The count of changes to any :class:`Module`'s attributes, children or forward hooks, and
    of replaced parameter storage, so far.

    Example: ``v = structure_version(); ...; unchanged = structure_version() == v``
    """
    return _changes[0]


class _Children(OrderedDict):
    """A module's ``_modules``: an ordered dict whose every mutation counts as a change (the
    containers and direct writes alter it without going through ``__setattr__``)."""

    def __setitem__(self, key, value):
        _changes[0] += 1
        super().__setitem__(key, value)

    def __delitem__(self, key):
        _changes[0] += 1
        super().__delitem__(key)

    def clear(self):
        _changes[0] += 1
        super().clear()

    def pop(self, *args):
        _changes[0] += 1
        return super().pop(*args)

    def popitem(self, last=True):
        _changes[0] += 1
        return super().popitem(last)

    def update(self, *args, **kwargs):
        _changes[0] += 1
        super().update(*args, **kwargs)

    def setdefault(self, key, default=None):
        _changes[0] += 1
        return super().setdefault(key, default)

    def move_to_end(self, key, last=True):
        _changes[0] += 1
        super().move_to_end(key, last)


class Module:
    """Base class for all neural-network modules; subclass it and define ``forward``.

    Call ``super().__init__()`` first in ``__init__``, then assign parameters and submodules as
    attributes; call the module (``model(x)``), not ``forward``, so that hooks run.

    Example::

        class Affine(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.scale = nn.Parameter(gradient.ones(n))
                self.register_buffer("shift", gradient.zeros(n))

            def forward(self, x):
                return x * self.scale + self.shift
    """

    training: bool
    forward: Callable[..., Any] = _forward_unimplemented

    def __init__(self) -> None:
        # object.__setattr__: our __setattr__ reads these dicts, which do not exist yet
        setattr_ = object.__setattr__
        setattr_(self, "training", True)
        setattr_(self, "_parameters", OrderedDict())
        setattr_(self, "_buffers", OrderedDict())
        setattr_(self, "_non_persistent_buffers_set", set())
        setattr_(self, "_modules", _Children())
        setattr_(self, "_forward_pre_hooks", OrderedDict())
        setattr_(self, "_forward_pre_hooks_with_kwargs", set())
        setattr_(self, "_forward_hooks", OrderedDict())
        setattr_(self, "_forward_hooks_with_kwargs", set())
        setattr_(self, "_forward_hooks_always_called", set())

    # ------------------------------------------------------------------ registration
    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder, like an absent bias) under ``name``."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call; "
                                 "call super().__init__() first in your __init__")
        if not isinstance(name, str):
            raise TypeError(f"parameter name should be a string, got {_typename(name)}")
        if "." in name:
            raise KeyError(f'parameter name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError('parameter name can\'t be empty string ""')
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{_typename(param)}' object to parameter '{name}' "
                            "(gradient.nn.Parameter or None required)")
        if param is not None and param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be "
                f"created explicitly. To express '{name}' as a function of another Tensor, compute "
                "the value in the forward() method.")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a buffer: a tensor that is module state but not a parameter (running statistics).

        Non-persistent buffers (``persistent=False``) are left out of :meth:`state_dict`.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call; "
                                 "call super().__init__() first in your __init__")
        if not isinstance(name, str):
            raise TypeError(f"buffer name should be a string, got {_typename(name)}")
        if "." in name:
            raise KeyError(f'buffer name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError('buffer name can\'t be empty string ""')
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{_typename(tensor)}' object to buffer '{name}' "
                            "(gradient.Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Add a child module under ``name`` (what ``self.name = module`` does)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string, got {_typename(name)}")
        if "_modules" not in self.__dict__:
            raise AttributeError("cannot assign module before Module.__init__() call; "
                                 "call super().__init__() first in your __init__")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        if "." in name:
            raise KeyError(f'module name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError('module name can\'t be empty string ""')
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value) -> None:
        _changes[0] += 1

        def remove_from(*dicts_or_sets):
            for d in dicts_or_sets:
                if name in d:
                    if isinstance(d, dict):
                        del d[name]
                    else:
                        d.discard(name)

        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call; "
                                     "call super().__init__() first in your __init__")
            remove_from(d, self._buffers, self._modules, self._non_persistent_buffers_set)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as parameter '{name}' "
                                "(gradient.nn.Parameter or None expected); to change its values "
                                f"in place use `with gradient.no_grad(): module.{name}.copy_(value)`")
            self.register_parameter(name, value)
        else:
            modules = d.get("_modules")
            if isinstance(value, Module):
                if modules is None:
                    raise AttributeError("cannot assign module before Module.__init__() call; "
                                         "call super().__init__() first in your __init__")
                remove_from(d, self._parameters, self._buffers, self._non_persistent_buffers_set)
                modules[name] = value
            elif modules is not None and name in modules:
                if value is not None:
                    raise TypeError(f"cannot assign '{_typename(value)}' as child module '{name}' "
                                    "(gradient.nn.Module or None expected)")
                modules[name] = value
            else:
                buffers = d.get("_buffers")
                if isinstance(value, Buffer) or (buffers is not None and name in buffers):
                    if value is not None and not isinstance(value, Tensor):
                        raise TypeError(f"cannot assign '{_typename(value)}' as buffer '{name}' "
                                        "(gradient.nn.Buffer, gradient.Tensor or None expected)")
                    if isinstance(value, Buffer):
                        persistent = value.persistent
                    else:
                        persistent = name not in self._non_persistent_buffers_set
                    self.register_buffer(name, value, persistent)
                else:
                    object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # only called when normal lookup fails: search the three registries
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            items = d.get(registry)
            if items is not None and name in items:
                return items[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        _changes[0] += 1
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers_set.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def __dir__(self):
        keys = itertools.chain(dir(type(self)), self.__dict__, self._parameters, self._modules,
                               self._buffers)
        return sorted({k for k in keys if not k[0].isdigit()})

    # ------------------------------------------------------------------ walking the tree
    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True):
        """Yield ``(name, module)`` for this module and every descendant, depth first.

        A module reachable by two paths is yielded once (unless ``remove_duplicate=False``).
        """
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, prefix + ("." if prefix else "") + name,
                                            remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        """This module and every descendant."""
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """Yield ``(name, module)`` for the direct children."""
        memo = set()
        for name, module in self._modules.items():
            if module is not None and module not in memo:
                memo.add(module)
                yield name, module

    def children(self) -> Iterator["Module"]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, get_members, prefix="", recurse=True, remove_duplicate=True):
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        seen = set()  # ids: a tensor's == is elementwise, so tensors cannot go in a set themselves
        for module_prefix, module in modules:
            for name, value in get_members(module):
                if value is None or id(value) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(name, parameter)``: ``('fc1.weight', Parameter ...)``; a shared parameter once."""
        yield from self._named_members(lambda m: m._parameters.items(), prefix, recurse,
                                       remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter of this module (and its descendants): what an optimizer gets."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members(lambda m: m._buffers.items(), prefix, recurse,
                                       remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> "Module":
        """The descendant at a dotted path: ``model.get_submodule('encoder.layers.0')``."""
        if target == "":
            return self
        mod = self
        for item in target.split("."):
            if not hasattr(mod, item):
                raise AttributeError(f"{mod._get_name()} has no attribute `{item}`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError(f"`{item}` is not an nn.Module")
        return mod

    def set_submodule(self, target: str, module: "Module", strict: bool = False) -> None:
        """Replace (or, unless ``strict``, add) the descendant at a dotted path."""
        if target == "":
            raise ValueError("set_submodule: the target must not be empty")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if strict and not hasattr(parent, name):
            raise AttributeError(f"{parent._get_name()} has no attribute `{name}`")
        if hasattr(parent, name) and not isinstance(getattr(parent, name), (Module, type(None))):
            raise AttributeError(f"`{name}` is not an nn.Module")
        setattr(parent, name, module)

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at a dotted path: ``model.get_parameter('fc1.weight')``."""
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, name):
            raise AttributeError(f"{mod._get_name()} has no attribute `{name}`")
        param = getattr(mod, name)
        if not isinstance(param, Parameter):
            raise AttributeError(f"`{name}` is not an nn.Parameter")
        return param

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at a dotted path: ``model.get_buffer('bn.running_mean')``."""
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, name):
            raise AttributeError(f"{mod._get_name()} has no attribute `{name}`")
        if name not in mod._buffers:
            raise AttributeError(f"`{name}` is not a buffer")
        return getattr(mod, name)

    # ------------------------------------------------------------------ modes and gradients
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (dropout active, batch norm updating) here and in every descendant."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> "Module":
        """Set evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Turn gradient recording on or off for every parameter (e.g. to freeze a backbone)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter: to None (default), or to zeros in place."""
        zero_grad_(self.parameters(), set_to_none)

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        """Call ``fn`` on every descendant, then on this module (children first); returns self.

        Example: ``model.apply(init_weights)``.
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ dtype and device
    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> "Module":
        """Convert every parameter, gradient and buffer with ``fn``.

        Parameters and their gradients keep their identity (their storage is replaced, as
        PyTorch's ``param.data = fn(param)``), so an optimizer built before ``model.to(...)``
        still holds the model's parameters. Buffers are replaced by the converted tensors.
        """
        if recurse:
            for module in self.children():
                module._apply(fn)
        for param in self._parameters.values():
            if param is None:
                continue
            with no_grad():
                _set_data(param, fn(param))
                if param.grad is not None:
                    _set_data(param.grad, fn(param.grad))
        for key, buf in self._buffers.items():
            if buf is not None:
                with no_grad():
                    self._buffers[key] = fn(buf)
        return self

    def to(self, *args, **kwargs) -> "Module":
        """Move and/or cast the parameters and buffers, in place; returns self.

        ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``, or keywords. A dtype
        must be floating and applies to floating parameters and buffers only (integer buffers
        such as step counters keep their dtype), as in PyTorch.

        Example: ``model.to(gradient.bfloat16)``.
        """
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to(): unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, (DType, type)) or (isinstance(a, str) and _is_dtype_name(a)):
                dtype = a
            elif isinstance(a, bool):  # to(device, dtype, non_blocking)
                continue
            elif a is not None:
                device = a
        if dtype is not None:
            dtype = as_dtype(dtype)
            if not dtype.is_floating_point:
                raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired "
                                f"dtype={dtype}; cast integer buffers one by one if you mean to")
        if device is not None:
            device = as_device(device)

        def convert(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return self._apply(convert)

    def cpu(self) -> "Module":
        return self._apply(lambda t: t.cpu())

    def cuda(self, device=None) -> "Module":
        return self._apply(lambda t: t.cuda(device))

    def type(self, dst_type) -> "Module":
        """Cast every parameter and buffer (integer ones too) to ``dst_type``."""
        return self._apply(lambda t: t.to(dtype=dst_type))

    def float(self) -> "Module":
        """Cast floating parameters and buffers to float32."""
        return self._apply(lambda t: t.float() if t.is_floating_point() else t)

    def double(self) -> "Module":
        return self._apply(lambda t: t.double() if t.is_floating_point() else t)

    def half(self) -> "Module":
        return self._apply(lambda t: t.half() if t.is_floating_point() else t)

    def bfloat16(self) -> "Module":
        return self._apply(lambda t: t.bfloat16() if t.is_floating_point() else t)

    def share_memory(self) -> "Module":
        """A no-op kept for PyTorch compatibility (there is no multiprocessing tensor sharing)."""
        return self

    # ------------------------------------------------------------------ state dict
    def get_extra_state(self) -> Any:
        """Override (with :meth:`set_extra_state`) to save non-tensor state under ``_extra_state``."""
        raise RuntimeError("Reached a code path in Module.get_extra_state() that should never be "
                           "called; override get_extra_state in the subclass")

    def set_extra_state(self, state: Any) -> None:
        raise RuntimeError("Reached a code path in Module.set_extra_state() that should never be "
                           "called; override set_extra_state in the subclass")

    def _has_extra_state(self) -> bool:
        return type(self).get_extra_state is not Module.get_extra_state

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """Every parameter and persistent buffer, by dotted name, in registration order.

        Values are detached tensors sharing storage with the module (``keep_vars=True`` gives the
        parameters themselves). Save it with :func:`gradient.save`; restore with
        :meth:`load_state_dict`.

        Example::

            >>> list(nn.Linear(2, 3).state_dict())
            ['weight', 'bias']
        """
        if args:  # PyTorch's old positional form: state_dict(destination, prefix, keep_vars)
            names = ("destination", "prefix", "keep_vars")
            values = dict(zip(names, args))
            destination = values.get("destination", destination)
            prefix = values.get("prefix", prefix)
            keep_vars = values.get("keep_vars", keep_vars)
        if destination is None:
            destination = OrderedDict()
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf if keep_vars else buf.detach()
        if self._has_extra_state():
            destination[prefix + "_extra_state"] = self.get_extra_state()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".",
                                  keep_vars=keep_vars)
        return destination

    def _load_own_state(self, state_dict: dict, prefix: str, strict: bool, assign: bool,
                        missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
        """Load this module's own parameters and persistent buffers (not its children's)."""
        persistent = {k: v for k, v in self._buffers.items()
                      if k not in self._non_persistent_buffers_set}
        local_state = {k: v for k, v in itertools.chain(self._parameters.items(), persistent.items())
                       if v is not None}
        for name, param in local_state.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            value = _as_value(state_dict[key])
            if value is None:
                error_msgs.append(f'While copying the parameter named "{key}", expected '
                                  "gradient.Tensor or an array from checkpoint but received "
                                  f"{type(state_dict[key])}")
                continue
            # PyTorch's backward-compatibility rule: a 1-element 1-d value fills a 0-d parameter
            if param.ndim == 0 and value.ndim == 1 and value.shape[0] == 1:
                value = value.reshape(())
            if tuple(value.shape) != tuple(param.shape):
                error_msgs.append(f"size mismatch for {key}: copying a param with shape "
                                  f"{tuple(value.shape)} from checkpoint, the shape in current "
                                  f"model is {tuple(param.shape)}.")
                continue
            try:
                if assign:
                    with no_grad():
                        if isinstance(param, Parameter):
                            new = value if isinstance(value, Parameter) else \
                                Parameter(value.detach(), requires_grad=param.requires_grad)
                            new.requires_grad_(param.requires_grad)
                        else:
                            new = value.detach()
                    setattr(self, name, new)
                else:
                    _copy_into_(param, value)
            except Exception as ex:  # noqa: BLE001  (reported with the others, as in PyTorch)
                error_msgs.append(f'While copying the parameter named "{key}", whose dimensions in '
                                  f"the model are {tuple(param.shape)} and whose dimensions in the "
                                  f"checkpoint are {tuple(value.shape)}, an exception occurred : "
                                  f"{ex.args}.")
        extra_key = prefix + "_extra_state"
        if self._has_extra_state():
            if extra_key in state_dict:
                self.set_extra_state(state_dict[extra_key])
            elif strict:
                missing_keys.append(extra_key)
        elif strict and extra_key in state_dict:
            unexpected_keys.append(extra_key)
        if strict:
            for key in state_dict:
                if key.startswith(prefix) and key != extra_key:
                    head = key[len(prefix):].split(".", 1)[0]
                    if head not in self._modules and head not in local_state:
                        unexpected_keys.append(key)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False):
        """Copy values from ``state_dict`` into this module's parameters and buffers, in place.

        With ``strict=True`` (default) the keys must match :meth:`state_dict` exactly; otherwise a
        :class:`StateDictError` lists the missing and unexpected keys. Shape mismatches are errors
        either way. Values may be gradient tensors or NumPy arrays; they are cast to each
        parameter's dtype and moved to its device. ``assign=True`` puts the given tensors in
        place of the parameters instead of copying into them (keeping requires_grad).

        Returns ``(missing_keys, unexpected_keys)`` (a named tuple).

        Example::

            >>> result = model.load_state_dict(checkpoint, strict=False)
            >>> result.missing_keys
            ['head.bias']
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing_keys: list[str] = []
        unexpected_keys: list[str] = []
        error_msgs: list[str] = []
        state_dict = OrderedDict(state_dict)

        def load(module: Module, local_state: dict, prefix: str = "") -> None:
            # keys are collected whether or not strict (strict only decides whether to raise)
            module._load_own_state(local_state, prefix, True, assign, missing_keys,
                                   unexpected_keys, error_msgs)
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    load(child, {k: v for k, v in local_state.items() if k.startswith(child_prefix)},
                         child_prefix)

        load(self, state_dict)
        if strict:
            if unexpected_keys:
                error_msgs.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected_keys)))
            if missing_keys:
                error_msgs.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing_keys)))
        if error_msgs:
            raise StateDictError("Error(s) in loading state_dict for {}:\n\t{}".format(
                type(self).__name__, "\n\t".join(error_msgs)))
        return _IncompatibleKeys(missing_keys, unexpected_keys)

    # ------------------------------------------------------------------ hooks and calling
    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before ``forward``; a non-None return replaces ``args``.

        With ``with_kwargs=True`` the hook is ``hook(module, args, kwargs)`` and may return a new
        ``(args, kwargs)`` pair. ``prepend=True`` runs it before the hooks already registered.
        """
        count_change()   # paths that skip hook-less modules must see it (structure_version)
        handle = RemovableHandle(self._forward_pre_hooks,
                                 extra_dicts=(self._forward_pre_hooks_with_kwargs,))
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(handle.id)
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False, always_call: bool = False) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after ``forward``; a non-None return replaces the output.

        With ``with_kwargs=True`` the hook is ``hook(module, args, kwargs, output)``.
        ``always_call=True`` runs it even when ``forward`` raises. Returns a removable handle.

        Example::

            >>> acts = {}
            >>> h = model.fc1.register_forward_hook(lambda m, args, out: acts.update(fc1=out))
            >>> model(x); h.remove()
        """
        count_change()   # as in register_forward_pre_hook
        handle = RemovableHandle(self._forward_hooks, extra_dicts=(
            self._forward_hooks_with_kwargs, self._forward_hooks_always_called))
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
        if always_call:
            self._forward_hooks_always_called.add(handle.id)
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*args, **kwargs)  # the common case: no hooks
        called = set()
        result = None
        try:
            for hook_id, hook in list(self._forward_pre_hooks.items()):
                if hook_id in self._forward_pre_hooks_with_kwargs:
                    out = hook(self, args, kwargs)
                    if out is not None:
                        if not (isinstance(out, tuple) and len(out) == 2):
                            raise RuntimeError("forward pre-hook must return None or a tuple of "
                                               f"(new_args, new_kwargs), but got {out}.")
                        args, kwargs = out
                else:
                    out = hook(self, args)
                    if out is not None:
                        args = out if isinstance(out, tuple) else (out,)
            result = self.forward(*args, **kwargs)
            for hook_id, hook in list(self._forward_hooks.items()):
                called.add(hook_id)
                if hook_id in self._forward_hooks_with_kwargs:
                    out = hook(self, args, kwargs, result)
                else:
                    out = hook(self, args, result)
                if out is not None:
                    result = out
            return result
        except Exception:
            for hook_id, hook in list(self._forward_hooks.items()):
                if hook_id in self._forward_hooks_always_called and hook_id not in called:
                    try:
                        if hook_id in self._forward_hooks_with_kwargs:
                            hook(self, args, kwargs, result)
                        else:
                            hook(self, args, result)
                    except Exception as e:  # noqa: BLE001  (the original error is what matters)
                        warnings.warn(f"forward hook with always_call=True raised an exception "
                                      f"that was silenced, as another error was raised in "
                                      f"forward: {e}", stacklevel=2)
            raise

    # ------------------------------------------------------------------ copying and printing
    def __deepcopy__(self, memo):
        """A deep copy (``copy.deepcopy(model)``) with copied parameters, buffers and grads."""
        if id(self) in memo:
            return memo[id(self)]
        # Tensors are copied here (plain tensors have no __deepcopy__ of their own)
        for value in itertools.chain(self._parameters.values(), self._buffers.values(),
                                     self.__dict__.values()):
            if isinstance(value, Tensor) and id(value) not in memo:
                memo[id(value)] = _copy_tensor(value, memo)
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            object.__setattr__(new, key, copy.deepcopy(value, memo))
        return new

    def extra_repr(self) -> str:
        """Override to show the module's settings in its repr: ``in_features=4, out_features=2``."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({key}): " + _addindent(repr(module), 2)
                       for key, module in self._modules.items()]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


def _copy_tensor(t: Tensor, memo) -> Tensor:
    if isinstance(t, Parameter):
        return copy.deepcopy(t, memo)
    with no_grad():
        out = t.detach().clone()
    if isinstance(t, Buffer):
        out = Buffer(out, persistent=t.persistent)
    out._requires_grad = t.requires_grad
    if t.grad is not None:
        with no_grad():
            out.grad = t.grad.detach().clone()
    return out


def _is_dtype_name(name: str) -> bool:
    try:
        as_dtype(name)
        return True
    except Exception:  # noqa: BLE001
        return False
