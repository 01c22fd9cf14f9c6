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
- Module backward hooks follow PyTorch's (see :meth:`Module.register_full_backward_hook`), with
  two differences: the deprecated :meth:`Module.register_backward_hook` runs as a full backward
  hook (PyTorch gives it the gradients of the last autograd node of ``forward``, which miss some
  of ``grad_input``); and an in-place write into a module's hooked input or output is refused
  with gradient's error for in-place writes into views (PyTorch's words it differently).
- Global forward hooks and ``_load_from_state_dict`` overrides by subclasses are not
  implemented (the global backward hooks are: :func:`register_module_full_backward_hook`; the
  state-dict hooks are, with an empty ``local_metadata``: gradient keeps no version metadata).
"""

from __future__ import annotations

import copy
import itertools
import types
import warnings
import weakref
from collections import OrderedDict, namedtuple
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from ..autograd import capture_state, grad_mode
from ..autograd.function import Function
from ..autograd.grad_mode import no_grad
from ..device import as_device
from ..dtypes import DType, as_dtype
from ..errors import (ArgumentTypeError, ArgumentValueError, AutogradError, GradientError,
                      UsageError)
from ..ops.argument_errors import wrong_argument
from ..tensor import Tensor
from .parameter import Buffer, Parameter, zero_grad_

__all__ = ["Module", "ModuleWatch", "RemovableHandle", "StateDictError",
           "register_module_full_backward_hook", "register_module_full_backward_pre_hook",
           "register_module_backward_hook"]


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

    def __init__(self, hooks_dict: dict, *, extra_dict=None, extra_dicts: tuple = (),
                 module=None):
        # (extra_dict: torch's keyword, a dict or a list of dicts, for code that makes handles)
        if extra_dict is not None:
            extra_dicts = (*extra_dicts, *(extra_dict if isinstance(extra_dict, (list, tuple))
                                           else (extra_dict,)))
        self.id = next(RemovableHandle._next_id)
        self._dicts = (hooks_dict, *extra_dicts)
        # the module whose hooks flag to update on removal (weakly: a handle kept around must
        # not keep its module alive)
        self._module = weakref.ref(module) if module is not None else None

    def remove(self) -> None:
        for d in self._dicts:
            if isinstance(d, dict):
                d.pop(self.id, None)
            else:  # a set of hook ids (with_kwargs, always_call)
                d.discard(self.id)
        module = self._module() if self._module is not None else None
        if module is not None:
            module._update_hooks_flag()
            changed(module)   # a hook removed

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


class ModuleWatch:
    """Whether any of some modules changed since the watch began: ``changed`` turns True when
    one of them has an attribute, child, parameter or buffer set or deleted, or a forward hook
    registered or removed. What is derived from a module tree and cached (a captured decode
    step over its layers) keeps one and is rebuilt once it fired; nothing is counted globally.
    (Values changed in place and replaced storage (``Tensor.data = ...``) are not changes of
    the tree: such a cache checks the identity and version of the tensors it read.)

    Example::

        >>> watch = ModuleWatch(model.modules())
        >>> model.layers[0].register_forward_hook(print_shapes)
        >>> watch.changed
        True
    """

    __slots__ = ("changed", "__weakref__")

    def __init__(self, modules):
        self.changed = False
        for module in modules:
            watches = module.__dict__.get("_watches")
            if watches is None:
                watches = weakref.WeakSet()
                object.__setattr__(module, "_watches", watches)
                module._modules.watches = watches
            watches.add(self)


def changed(module) -> None:
    """Tell the watches of ``module`` that it changed (see :class:`ModuleWatch`): for writers
    that go around ``__setattr__`` (``functional_call`` swapping tensors into the registries)."""
    _fire(module.__dict__.get("_watches"))


def _fire(watches) -> None:
    if watches:
        for watch in list(watches):
            watch.changed = True
        watches.clear()


def _add_hook(hooks: OrderedDict, hook: Callable, *, module=None, prepend: bool = False,
              extra_dicts: tuple = ()) -> RemovableHandle:
    """Put ``hook`` into ``hooks`` (before the others with ``prepend``) and return its handle.
    A registration is a change of ``module`` (see :class:`ModuleWatch`) and sets its hooks flag
    (see ``Module.__call__``)."""
    handle = RemovableHandle(hooks, extra_dicts=extra_dicts, module=module)
    hooks[handle.id] = hook
    if module is not None:
        object.__setattr__(module, "_has_hooks", True)
        changed(module)
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


def _check_backward_hook_kind(registered, full: bool, where: str) -> None:
    """PyTorch refuses to mix full and deprecated backward hooks: ``registered`` is True once a
    full one is, False once a deprecated one is, None before either."""
    if registered is (not full):
        raise UsageError("Cannot use both regular backward hooks and full backward hooks "
                         f"{where}. Please use only one of them.")


# Backward hooks for every module (PyTorch's torch.nn.modules.module globals). They run before each
# module's own; _global_is_full_backward_hook[0] says which kind was registered (None: none yet).
_global_backward_pre_hooks: OrderedDict = OrderedDict()
_global_backward_hooks: OrderedDict = OrderedDict()
_global_is_full_backward_hook = [None]


def register_module_full_backward_pre_hook(hook: Callable) -> RemovableHandle:
    """Register ``hook(module, grad_output)`` as a backward pre-hook of every module (for
    debugging and profiling, as in PyTorch); it runs before the modules' own pre-hooks and
    behaves as :meth:`Module.register_full_backward_pre_hook` describes.

    Example::

        >>> h = register_module_full_backward_pre_hook(lambda m, g_out: print(type(m).__name__))
        >>> model(x).sum().backward()        # prints each module's name as its gradients arrive
        >>> h.remove()
    """
    return _add_hook(_global_backward_pre_hooks, hook)


def register_module_full_backward_hook(hook: Callable) -> RemovableHandle:
    """Register ``hook(module, grad_input, grad_output)`` as a full backward hook of every module
    (for debugging and profiling, as in PyTorch); it runs before the modules' own hooks and
    behaves as :meth:`Module.register_full_backward_hook` describes.

    Example::

        >>> norms = {}
        >>> h = register_module_full_backward_hook(
        ...     lambda m, g_in, g_out: norms.setdefault(type(m).__name__, g_out[0].norm()))
        >>> model(x).sum().backward(); h.remove()
    """
    _check_backward_hook_kind(_global_is_full_backward_hook[0], True, "as a global Module hook")
    _global_is_full_backward_hook[0] = True
    return _add_hook(_global_backward_hooks, hook)


def register_module_backward_hook(hook: Callable) -> RemovableHandle:
    """Deprecated, as in PyTorch: use :func:`register_module_full_backward_hook`. The hook runs
    as a full backward hook of every module (see :meth:`Module.register_backward_hook`).

    Example: ``h = register_module_backward_hook(lambda m, g_in, g_out: None)``
    """
    _check_backward_hook_kind(_global_is_full_backward_hook[0], False, "as a global Module hook")
    _global_is_full_backward_hook[0] = False
    return _add_hook(_global_backward_hooks, hook)


class _Children(OrderedDict):
    """A module's ``_modules``: an ordered dict whose every mutation is a change of its module
    (the containers and direct writes alter it without going through ``__setattr__``);
    ``watches`` is its module's (see :class:`ModuleWatch`), set when the first watch begins."""

    watches = None

    def __setitem__(self, key, value):
        _fire(self.watches)
        super().__setitem__(key, value)

    def __delitem__(self, key):
        _fire(self.watches)
        super().__delitem__(key)

    def clear(self):
        _fire(self.watches)
        super().clear()

    def pop(self, *args):
        _fire(self.watches)
        return super().pop(*args)

    def popitem(self, last=True):
        _fire(self.watches)
        return super().popitem(last)

    def update(self, *args, **kwargs):
        _fire(self.watches)
        super().update(*args, **kwargs)

    def setdefault(self, key, default=None):
        _fire(self.watches)
        return super().setdefault(key, default)

    def move_to_end(self, key, last=True):
        _fire(self.watches)
        super().move_to_end(key, last)

    def __deepcopy__(self, memo):
        # a copy's watches are its own (none yet)
        return _Children((k, copy.deepcopy(v, memo)) for k, v in self.items())


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
    _has_hooks = False   # (instances set their own in __init__; see __call__)
    #: Names of caches a subclass derives from its module tree and keeps in ``__dict__`` (a
    #: compiled decode step over its layers): rebuilt on use, so a deep copy leaves them out
    #: rather than copying them, with the arrays they gather, next to the copied parameters.
    _derived_caches: tuple = ()
    # state-dict hooks: a module gets its own dicts at its first registration (see _hooks_of)
    _state_dict_pre_hooks = _state_dict_hooks = types.MappingProxyType({})
    _load_state_dict_pre_hooks = _load_state_dict_post_hooks = types.MappingProxyType({})

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
        setattr_(self, "_backward_pre_hooks", OrderedDict())
        setattr_(self, "_backward_hooks", OrderedDict())
        # True once a full backward hook is registered, False once a deprecated one is: PyTorch
        # refuses to mix the two kinds on one module, so do we
        setattr_(self, "_is_full_backward_hook", None)
        setattr_(self, "_has_hooks", False)   # see __call__

    # ------------------------------------------------------------------ registration
    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder, like an absent bias) under ``name``."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call; "
                                 "call super().__init__() first in your __init__")
        if not isinstance(name, str):
            raise ArgumentTypeError(f"parameter name should be a string, got {_typename(name)}")
        if "." in name:
            raise KeyError(f'parameter name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError('parameter name can\'t be empty string ""')
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise ArgumentTypeError(
                f"cannot assign '{_typename(param)}' object to parameter '{name}' "
                "(gradient.nn.Parameter or None required)")
        if param is not None and param.grad_fn is not None:
            raise ArgumentValueError(
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
            raise ArgumentTypeError(f"buffer name should be a string, got {_typename(name)}")
        if "." in name:
            raise KeyError(f'buffer name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError('buffer name can\'t be empty string ""')
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise ArgumentTypeError(
                f"cannot assign '{_typename(tensor)}' object to buffer '{name}' "
                "(gradient.Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Add a child module under ``name`` (what ``self.name = module`` does)."""
        if module is not None and not isinstance(module, Module):
            raise ArgumentTypeError(f"{_typename(module)} is not a Module subclass")
        if not isinstance(name, str):
            raise ArgumentTypeError(f"module name should be a string, got {_typename(name)}")
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
        _fire(self.__dict__.get("_watches"))

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
                raise ArgumentTypeError(
                    f"cannot assign '{_typename(value)}' as parameter '{name}' "
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
                    raise ArgumentTypeError(
                        f"cannot assign '{_typename(value)}' as child module '{name}' "
                        "(gradient.nn.Module or None expected)")
                modules[name] = value
            else:
                buffers = d.get("_buffers")
                if isinstance(value, Buffer) or (buffers is not None and name in buffers):
                    if value is not None and not isinstance(value, Tensor):
                        raise ArgumentTypeError(
                            f"cannot assign '{_typename(value)}' as buffer '{name}' "
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
        _fire(self.__dict__.get("_watches"))
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
            raise ArgumentValueError("set_submodule: the target must not be empty")
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
            raise ArgumentValueError(f"training mode is expected to be boolean, got {mode!r}")
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
        such as step counters keep their dtype), as in PyTorch; ``memory_format=`` (e.g.
        ``gradient.channels_last``) lays out the 4-d and 5-d ones (see gradient.layouts).

        Example: ``model.to(gradient.bfloat16)``.
        """
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        layout = kwargs.pop("memory_format", None)
        if kwargs:
            raise ArgumentTypeError(f"to(): unexpected keyword arguments {sorted(kwargs)}")
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
                raise ArgumentTypeError(
                    f"nn.Module.to only accepts floating point dtypes, but got desired "
                    f"dtype={dtype}; cast integer buffers one by one if you mean to")
        if device is not None:
            device = as_device(device)

        def convert(t: Tensor) -> Tensor:
            # a layout applies to the 4-d and 5-d parameters and buffers, as in PyTorch
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None,
                        memory_format=layout if t.ndim in (4, 5) else None)

        return self._apply(convert)

    def to_empty(self, *, device, recurse: bool = True) -> "Module":
        """Give every parameter and buffer new, uninitialized memory on ``device`` (their
        shapes and dtypes kept), as ``torch.nn.Module.to_empty``: what a model built on the
        meta device, or built only to be overwritten by a checkpoint, is moved with before
        ``load_state_dict`` or its ``reset_parameters``."""
        from ..ops.creation import empty
        target = as_device(device)
        return self._apply(lambda t: empty(*t.shape, dtype=t.dtype, device=target),
                           recurse=recurse)

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

    def compile(self, *args, **kwargs) -> None:
        """``torch.nn.Module.compile``'s place in a ported script: gradient has no graph
        compiler, so the module stays as it is and runs eagerly (see ``gradient.compile``)."""
        return None

    def share_memory(self) -> "Module":
        """Move every parameter, gradient and buffer into shared memory
        (``Tensor.share_memory_``), so that processes started after it (fork or spawn, see
        :mod:`gradient.multiprocessing`) train this module's parameters in place together
        (Hogwild). Returns the module.

        Example: ``model.share_memory(); mp.Process(target=train, args=(model,)).start()``
        """
        for t in itertools.chain(self.parameters(), self.buffers()):
            t.share_memory_()
            if t.grad is not None:
                t.grad.share_memory_()
        return self

    # ------------------------------------------------------------------ state dict
    def get_extra_state(self) -> Any:
        """Override (with :meth:`set_extra_state`) to save non-tensor state under ``_extra_state``."""
        raise UsageError("Reached a code path in Module.get_extra_state() that should never be "
                         "called; override get_extra_state in the subclass")

    def set_extra_state(self, state: Any) -> None:
        raise UsageError("Reached a code path in Module.set_extra_state() that should never be "
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
        for hook in self._state_dict_pre_hooks.values():
            hook(self, prefix, keep_vars)
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
        for hook in self._state_dict_hooks.values():
            replaced = hook(self, destination, prefix, {})
            if replaced is not None:       # (a _register_state_dict_hook's may replace it)
                destination = replaced
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
            raise ArgumentTypeError(
                f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing_keys: list[str] = []
        unexpected_keys: list[str] = []
        error_msgs: list[str] = []
        state_dict = OrderedDict(state_dict)

        def load(module: Module, local_state: dict, prefix: str = "") -> None:
            for hook in module._load_state_dict_pre_hooks.values():
                hook(module, local_state, prefix, {}, strict, missing_keys, unexpected_keys,
                     error_msgs)
            # keys are collected whether or not strict (strict only decides whether to raise)
            module._load_own_state(local_state, prefix, True, assign, missing_keys,
                                   unexpected_keys, error_msgs)
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    load(child, {k: v for k, v in local_state.items() if k.startswith(child_prefix)},
                         child_prefix)
            incompatible = _IncompatibleKeys(missing_keys, unexpected_keys)
            for hook in module._load_state_dict_post_hooks.values():
                if hook(module, incompatible) is not None:
                    raise UsageError("a load_state_dict post hook must return None; it may "
                                     "change the missing and unexpected keys in place")

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

    # ------------------------------------------------------------------ state-dict hooks
    def _hooks_of(self, kind: str) -> OrderedDict:
        """This module's own dict of state-dict hooks of ``kind``, made at its first use."""
        hooks = self.__dict__.get(kind)
        if hooks is None:
            hooks = OrderedDict()
            object.__setattr__(self, kind, hooks)
        return hooks

    def register_state_dict_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, prefix, keep_vars)`` runs before :meth:`state_dict` collects this
        module's entries."""
        return _add_hook(self._hooks_of("_state_dict_pre_hooks"), hook)

    def register_state_dict_post_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata)`` runs after :meth:`state_dict`
        collected this module's entries and its children's; it may change ``state_dict`` in
        place (``local_metadata`` is empty)."""
        return _add_hook(self._hooks_of("_state_dict_hooks"), hook)

    def _register_state_dict_hook(self, hook: Callable) -> RemovableHandle:
        """PyTorch's older form of :meth:`register_state_dict_post_hook`, whose hook may also
        return a new state dict to use instead."""
        return _add_hook(self._hooks_of("_state_dict_hooks"), hook)

    def register_load_state_dict_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` runs before :meth:`load_state_dict` reads this module's
        entries of ``state_dict`` (the entries under ``prefix``: it may rename or convert them
        in place, as a layer whose parameters changed names does)."""
        return _add_hook(self._hooks_of("_load_state_dict_pre_hooks"), hook)

    def _register_load_state_dict_pre_hook(self, hook: Callable,
                                           with_module: bool = False) -> RemovableHandle:
        """PyTorch's older form of :meth:`register_load_state_dict_pre_hook`: the hook takes no
        module unless ``with_module``."""
        if not with_module:
            bare = hook

            def hook(module, *args):
                return bare(*args)
        return _add_hook(self._hooks_of("_load_state_dict_pre_hooks"), hook)

    def register_load_state_dict_post_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, incompatible_keys)`` runs after :meth:`load_state_dict` loaded this
        module and its children; it may remove entries of ``incompatible_keys.missing_keys``
        and ``.unexpected_keys`` (what ``strict`` then checks) and must return None."""
        return _add_hook(self._hooks_of("_load_state_dict_post_hooks"), hook)

    # ------------------------------------------------------------------ hooks and calling
    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before ``forward``; a non-None return replaces ``args``.

        With ``with_kwargs=True`` the hook is ``hook(module, args, kwargs)`` and may return a new
        ``(args, kwargs)`` pair. ``prepend=True`` runs it before the hooks already registered.
        """
        handle = _add_hook(self._forward_pre_hooks, hook, module=self, prepend=prepend,
                           extra_dicts=(self._forward_pre_hooks_with_kwargs,))
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(handle.id)
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
        handle = _add_hook(self._forward_hooks, hook, module=self, prepend=prepend, extra_dicts=(
            self._forward_hooks_with_kwargs, self._forward_hooks_always_called))
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
        if always_call:
            self._forward_hooks_always_called.add(handle.id)
        return handle

    def register_full_backward_pre_hook(self, hook: Callable,
                                        prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_output)`` when the gradients with respect to the module's
        outputs are ready, before they flow into ``forward``'s operations.

        ``grad_output`` is a tuple with one entry per output (``forward``'s result, or each element
        of a tuple result), None for outputs that are not tensors or do not require grad. A
        non-None return (a tuple of the same length, or a Tensor for a one-output module) replaces
        ``grad_output`` for what follows. ``prepend=True`` runs the hook before those already
        registered; hooks registered with :func:`register_module_full_backward_pre_hook` run
        first. As in PyTorch, the hooks a call will run are those registered when it ran forward.

        Example::

            >>> lin = nn.Linear(3, 2)
            >>> h = lin.register_full_backward_pre_hook(lambda m, g_out: (g_out[0] * 0.5,))
            >>> lin(gradient.ones(1, 3)).sum().backward()      # lin.weight.grad is halved
            >>> h.remove()
        """
        return _add_hook(self._backward_pre_hooks, hook, module=self, prepend=prepend)

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when the gradients with respect to the
        module's inputs have been computed; a non-None return replaces ``grad_input``.

        ``grad_input`` has one entry per positional argument of the call (keyword arguments are
        ignored, as in PyTorch): None for non-tensors, zeros for tensors that do not require grad
        (when another one does); ``grad_output`` is what :meth:`register_full_backward_pre_hook`
        describes, after the pre-hooks. The hook should not modify its arguments; it may return
        a tuple (or list) of the same length as ``grad_input``, whose tensors must keep each
        input's shape and dtype (None stops the gradient of that input).

        PyTorch's firing rules: if no input requires grad, the hook runs when the gradients with
        respect to the outputs are computed, with ``grad_input`` all None (and a warning), and
        must return None; if no output requires grad, it does not run. While hooks are
        registered, ``forward`` receives views of its tensor arguments and the caller views of
        its results, and writing into those in place (with grad recorded) raises an error.
        ``prepend=True`` runs the hook before those already registered.

        Example::

            >>> lin = nn.Linear(3, 2)
            >>> seen = []
            >>> h = lin.register_full_backward_hook(lambda m, g_in, g_out: seen.append(g_in))
            >>> lin(gradient.ones(1, 3, requires_grad=True)).sum().backward()
            >>> seen[0][0].shape                 # d(loss)/d(input)
            gradient.Size([1, 3])
            >>> h.remove()
        """
        _check_backward_hook_kind(self._is_full_backward_hook, True, "on a single Module")
        object.__setattr__(self, "_is_full_backward_hook", True)
        return _add_hook(self._backward_hooks, hook, module=self, prepend=prepend)

    def register_backward_hook(self, hook: Callable) -> RemovableHandle:
        """Deprecated (as in PyTorch): use :meth:`register_full_backward_hook`.

        Kept so that old scripts run: the hook is run as a full backward hook, with the
        documented ``grad_input`` and ``grad_output``, and each call of the module that records
        a graph gives PyTorch's FutureWarning. (PyTorch calls it with the gradients of the last
        autograd node of ``forward``, which for most modules miss some of ``grad_input``.) It
        cannot be mixed with full backward hooks on one module.

        Example: ``h = model.register_backward_hook(lambda m, g_in, g_out: None)`` (warns on use).
        """
        _check_backward_hook_kind(self._is_full_backward_hook, False, "on a single Module")
        object.__setattr__(self, "_is_full_backward_hook", False)
        return _add_hook(self._backward_hooks, hook, module=self)

    def __call__(self, *args, **kwargs):
        # The hot path: three truth tests when there are no hooks. This module's four hook dicts
        # are summed up in one flag, kept by the register_* methods and the handles' remove():
        # each attribute read costs tens of nanoseconds here, a global one a few. (So a hook
        # put into one of the dicts directly, not through register_*, is not seen.)
        try:
            if not (self._has_hooks or _global_backward_hooks or _global_backward_pre_hooks):
                return self.forward(*args, **kwargs)
            return self._call_with_hooks(args, kwargs)
        except AttributeError as error:
            # gradient's layers given None or a list where they take a Tensor: PyTorch's
            # TypeError naming the argument (a layer of the user's own: the error as it is)
            wrong = (wrong_argument(type(self).__name__, self.forward, args, kwargs, error)
                     if type(self).__module__.startswith("gradient.") else None)
            if wrong is None:
                raise
            raise wrong from None

    def _update_hooks_flag(self) -> None:
        object.__setattr__(self, "_has_hooks", bool(
            self._forward_pre_hooks or self._forward_hooks or self._backward_hooks
            or self._backward_pre_hooks))

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        called = set()
        result = None
        try:
            for hook_id, hook in list(self._forward_pre_hooks.items()):
                if hook_id in self._forward_pre_hooks_with_kwargs:
                    out = capture_state.call(hook, self, args, kwargs)
                    if out is not None:
                        if not (isinstance(out, tuple) and len(out) == 2):
                            raise UsageError("forward pre-hook must return None or a tuple of "
                                             f"(new_args, new_kwargs), but got {out}.")
                        args, kwargs = out
                else:
                    out = capture_state.call(hook, self, args)
                    if out is not None:
                        args = out if isinstance(out, tuple) else (out,)
            backward_hook = None
            if (self._backward_hooks or self._backward_pre_hooks or _global_backward_hooks
                    or _global_backward_pre_hooks):
                # the hooks as they are now: this call runs these, whatever is registered later
                full, pre, deprecated = self._backward_hook_lists()
                backward_hook = _BackwardHook(self, full, pre, deprecated)
                args = backward_hook.setup_input_hook(args)
            result = self.forward(*args, **kwargs)
            for hook_id, hook in list(self._forward_hooks.items()):
                called.add(hook_id)
                # (a captured step calls the hook again at this point: gradient.capture)
                if hook_id in self._forward_hooks_with_kwargs:
                    out = capture_state.call(hook, self, args, kwargs, result)
                else:
                    out = capture_state.call(hook, self, args, result)
                if out is not None:
                    result = out
            if backward_hook is not None:
                result = backward_hook.setup_output_hook(result)
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
                                      f"forward: {e}", stacklevel=3)
            raise

    def _backward_hook_lists(self) -> tuple[list, list, bool]:
        """(full hooks, pre-hooks, whether a deprecated hook is among them): the global ones
        first, then this module's, as PyTorch orders them."""
        full = [*_global_backward_hooks.values(), *self._backward_hooks.values()]
        pre = [*_global_backward_pre_hooks.values(), *self._backward_pre_hooks.values()]
        deprecated = bool((_global_backward_hooks and _global_is_full_backward_hook[0] is False)
                          or (self._backward_hooks and self._is_full_backward_hook is False))
        return full, pre, deprecated

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
            if key not in self._derived_caches and key != "_watches":
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


# ---------------------------------------------------------------------- backward hooks
class _BackwardHookFunction(Function):
    """The identity on a module's tensor inputs (or outputs) that require grad, whose backward
    is where the module's backward hooks run: on the inputs' side it receives the gradients with
    respect to the inputs (grad_input), on the outputs' side those with respect to the outputs
    (grad_output), and what it returns is what flows on, so a hook can replace them."""

    @staticmethod
    def forward(ctx, state, inputs_side, *tensors):
        ctx.state, ctx.inputs_side = state, inputs_side
        ctx.set_materialize_grads(False)   # None for an output that got no gradient, as PyTorch
        return tensors

    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        grads = state.input_grads(grads) if ctx.inputs_side else state.output_grads(grads)
        return (None, None, *grads)


def _hook_name(hook) -> str:
    return getattr(hook, "__name__", type(hook).__name__)


def _check_grad(g, meta, hook, what: str, i: int) -> None:
    """Refuse (as PyTorch does) a gradient a hook returned unless it is None or a tensor of the
    shape and dtype of the value it is the gradient of."""
    if g is None:
        return
    shape, dtype = meta[0], meta[1]
    if not isinstance(g, Tensor):
        raise AutogradError(f"backward hook {_hook_name(hook)!r} returned a {type(g).__name__} as "
                            f"{what}[{i}]; return Tensors (or None)")
    if tuple(g.shape) != tuple(shape):
        raise AutogradError(f"backward hook {_hook_name(hook)!r} has changed the size of value: "
                            f"{what}[{i}] has shape {tuple(g.shape)}, expected {tuple(shape)}; "
                            "return a gradient of the same shape")
    if g.dtype is not dtype:
        raise AutogradError(f"backward hook {_hook_name(hook)!r} has changed the type of value: "
                            f"{what}[{i}] has dtype {g.dtype}, expected {dtype}; cast it back "
                            f"with .to({dtype})")


def _as_hook_view(new: Tensor, old: Tensor) -> None:
    """Make ``new`` (the identity's output, over ``old``'s storage) a view of ``old``: it shares
    ``old``'s version counter, so saved copies of ``old`` still notice writes through ``new``,
    and a recorded in-place write into it is refused, as PyTorch refuses in-place writes into a
    hooked module's inputs and outputs (the write would bypass the hook's node)."""
    base = old._base if old._base is not None else old
    new._base, new._base_grad_fn, new._version = base, base.grad_fn, old._version
    new._write_refusal = ("this tensor is an input or output of a module with a full backward "
                          "hook, and a recorded in-place write into it would bypass the hook's "
                          "node (PyTorch refuses it too); modify a clone instead (x = x.clone())")


class _Side:
    """The tensors of one side (the call's arguments, or its results) that a hook sees."""

    __slots__ = ("count", "index", "meta", "wrapped", "hooked")

    def __init__(self, values: tuple):
        self.count = len(values)                                            # entries of the tuple
        self.index = [i for i, v in enumerate(values) if isinstance(v, Tensor)]   # the tensors'
        self.meta = {i: (values[i].shape, values[i].dtype, values[i].device) for i in self.index}
        # the tensors that go through the identity: those that require grad. (The others get no
        # gradient; passing them too would need mark_non_differentiable, which matches arrays by
        # identity and so would also catch a detached alias of a tensor that requires grad.)
        self.wrapped = [i for i in self.index if values[i].requires_grad]
        # whether the identity was applied: something requires grad and grad mode is on
        self.hooked = bool(self.wrapped) and grad_mode.is_grad_enabled()


class _BackwardHook:
    """One call's backward hooks (PyTorch's ``BackwardHook``): the identity on the call's tensor
    arguments and on its results, and the bookkeeping between the two. The output side runs
    first in backward: it runs the pre-hooks and keeps grad_output; the input side then runs the
    full hooks with grad_input and that grad_output."""

    __slots__ = ("module", "hooks", "pre_hooks", "deprecated", "grad_outputs", "inputs", "outputs")

    def __init__(self, module, hooks: list, pre_hooks: list, deprecated: bool):
        self.module, self.hooks, self.pre_hooks = module, hooks, pre_hooks
        self.deprecated = deprecated
        self.grad_outputs = None
        self.inputs = self.outputs = None   # a _Side each

    def _wrap(self, values: tuple, side: _Side, inputs_side: bool):
        """``values`` with each tensor that requires grad replaced by the identity's output
        (unchanged when nothing is recorded)."""
        if not side.hooked:
            return values
        olds = [values[i] for i in side.wrapped]
        outs = _BackwardHookFunction.apply(self, inputs_side, *olds)
        wrapped = list(values)
        for i, new, old in zip(side.wrapped, outs, olds):
            _as_hook_view(new, old)
            wrapped[i] = new
        return tuple(wrapped) if type(values) is tuple else type(values)(*wrapped)  # namedtuples

    def setup_input_hook(self, args: tuple) -> tuple:
        self.inputs = _Side(args)
        return self._wrap(args, self.inputs, True)

    def setup_output_hook(self, result):
        if not isinstance(result, (Tensor, tuple)):
            warnings.warn("For backward hooks to be called, module output should be a Tensor or a "
                          f"tuple of Tensors but received {type(result)}", stacklevel=4)
        single = not isinstance(result, tuple)
        values = (result,) if single else result
        self.outputs = _Side(values)
        values = self._wrap(values, self.outputs, False)
        if self.deprecated and self.outputs.hooked:
            warnings.warn("Using a non-full backward hook (register_backward_hook) is deprecated "
                          "and will be removed in future versions. PyTorch gives it the gradients of "
                          "the last autograd Node of forward, which miss some of grad_input; "
                          "gradient runs it as a full backward hook, with the documented "
                          "grad_input and grad_output. Please use register_full_backward_hook.",
                          FutureWarning, stacklevel=4)
        return values[0] if single else values

    def output_grads(self, grads: tuple) -> list:
        """Backward of the outputs' identity: grad_output through the pre-hooks, kept for the
        full hooks; returns the gradients that flow on into forward's operations."""
        side = self.outputs
        grad_outputs = [None] * side.count     # None for outputs without a gradient, as PyTorch
        for i, g in zip(side.wrapped, grads):
            grad_outputs[i] = g
        grad_outputs = tuple(grad_outputs)
        for hook in self.pre_hooks:
            out = hook(self.module, grad_outputs)
            if out is None:
                continue
            if isinstance(out, Tensor):   # PyTorch documents a Tensor for one output
                out = (out,)
            if not isinstance(out, (tuple, list)):
                raise AutogradError(f"backward pre-hook {_hook_name(hook)!r} returned a "
                                    f"{type(out).__name__}; return None or a tuple of "
                                    f"{len(grad_outputs)} gradient(s) (None allowed)")
            if len(out) != len(grad_outputs):
                raise AutogradError("Backward pre hook returned an invalid number of grad_output, "
                                    f"got {len(out)}, but expected {len(grad_outputs)}")
            for i in side.wrapped:
                _check_grad(out[i], side.meta[i], hook, "grad_output", i)
            grad_outputs = tuple(out)
        self.grad_outputs = grad_outputs
        if not self.inputs.hooked and self.hooks:
            # no input requires grad: the input side never runs, so the full hooks run now
            warnings.warn("Full backward hook is firing when gradients are computed with respect "
                          "to module outputs since no inputs require gradients. See the "
                          "docstring of Module.register_full_backward_hook for more details.",
                          stacklevel=2)
            grad_inputs = (None,) * self.inputs.count
            for hook in self.hooks:
                out = hook(self.module, grad_inputs, grad_outputs)
                if out is not None and not (isinstance(out, (tuple, list))
                                            and all(g is None for g in out)):
                    raise AutogradError("Backward hook for Modules where no input requires "
                                        "gradient should always return None or None for all "
                                        "gradients.")
            self.grad_outputs = None
        return [grad_outputs[i] for i in side.wrapped]

    def input_grads(self, grads: tuple) -> list:
        """Backward of the inputs' identity: the full hooks with grad_input and grad_output;
        returns the gradients that flow on into the module's inputs."""
        if self.grad_outputs is None:
            # the gradient reached the inputs without passing through the outputs (as in a
            # double backward): PyTorch runs no hook then
            return list(grads)
        side = self.inputs
        grad_inputs = [None] * side.count                  # None for non-tensors
        received = dict(zip(side.wrapped, grads))
        for i in side.index:
            g = received.get(i)
            if g is None:
                # zeros for a tensor without a gradient (one that does not require grad, or that
                # forward did not use), as PyTorch gives
                from ..ops.creation import zeros   # ops sit below nn; imported when first needed
                shape, dtype, device = side.meta[i]
                g = zeros(tuple(shape), dtype=dtype, device=device)
            grad_inputs[i] = g
        grad_inputs = tuple(grad_inputs)
        grad_outputs = self.grad_outputs
        for hook in self.hooks:
            out = hook(self.module, grad_inputs, grad_outputs)
            if out is None:
                continue
            if not isinstance(out, (tuple, list)):
                raise AutogradError(f"backward hook {_hook_name(hook)!r} returned a "
                                    f"{type(out).__name__}; return None or a tuple of "
                                    f"{len(grad_inputs)} gradient(s), one per positional "
                                    "input (None allowed)")
            if len(out) != len(grad_inputs):
                raise AutogradError("Backward hook returned an invalid number of grad_input, got "
                                    f"{len(out)}, but expected {len(grad_inputs)}")
            for i in side.wrapped:
                _check_grad(out[i], side.meta[i], hook, "grad_input", i)
            grad_inputs = tuple(out)
        self.grad_outputs = None
        return [grad_inputs[i] for i in side.wrapped]


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
