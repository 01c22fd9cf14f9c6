"""Containers as in ``torch.nn``: Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict.

They hold submodules under string keys in ``self._modules`` (registered through ``add_module``,
so parameters, ``.to()``, ``train()`` and ``state_dict()`` see them). Sequential and ModuleList
use the keys "0", "1", ...; deleting or inserting renumbers them, as PyTorch does, so the state
dict keys of a container always follow its current order.

ParameterList and ParameterDict hold parameters the same way, as attributes named "0", "1", ...
or by their keys, so ``named_parameters()`` and ``state_dict()`` give PyTorch's names.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections import abc as _abc
from itertools import islice

from ...errors import (ArgumentTypeError, ArgumentValueError, GradientError, IndexRangeError,
                       UsageError)
from ...tensor import Tensor
from ..module import Module, _addindent
from ..parameter import Parameter

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]


def _renumber(modules: dict) -> None:
    """Re-key ``modules`` (in place) as "0", "1", ... in their current order."""
    values = list(modules.values())
    modules.clear()
    for i, module in enumerate(values):
        modules[str(i)] = module


def _check_module(module, container: str) -> None:
    if not isinstance(module, Module):
        raise ArgumentTypeError(
            f"{container}: expected a gradient.nn.Module, got {type(module).__name__}")


class Sequential(Module):
    """Modules applied one after the other: ``forward(x)`` is ``m_n(...m_1(m_0(x)))``.

    Pass modules positionally (named "0", "1", ...) or one ``OrderedDict`` of named modules.
    Indexing with an int gives a module, with a slice a new Sequential (sharing the modules).

    Example::

        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
        model[0].weight.shape    # (16, 4)
        model.append(nn.Softmax(dim=-1))
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for key, module in args[0].items():
                self.add_module(key, module)
        else:
            for idx, module in enumerate(args):
                self.add_module(str(idx), module)

    def _key_at(self, idx) -> str:
        size = len(self)
        idx = operator.index(idx)
        if not -size <= idx < size:
            raise IndexRangeError(f"Sequential: index {idx} is out of range for {size} modules")
        return next(islice(iter(self._modules), idx % size, None))

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return self.__class__(OrderedDict(list(self._modules.items())[idx]))
        return self._modules[self._key_at(idx)]

    def __setitem__(self, idx, module) -> None:
        setattr(self, self._key_at(idx), module)

    def __delitem__(self, idx) -> None:
        keys = list(self._modules)[idx] if isinstance(idx, slice) else [self._key_at(idx)]
        for key in keys:
            delattr(self, key)
        _renumber(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __add__(self, other) -> Sequential:
        if not isinstance(other, Sequential):
            raise ArgumentValueError(
                f"add operator supports only objects of Sequential class, but "
                f"{type(other)} is given.")
        return Sequential(*self, *other)

    def __iadd__(self, other) -> Sequential:
        if not isinstance(other, Sequential):
            raise ArgumentValueError(
                f"add operator supports only objects of Sequential class, but "
                f"{type(other)} is given.")
        return self.extend(list(other))

    def __mul__(self, other: int) -> Sequential:
        if not isinstance(other, int):
            raise ArgumentTypeError(
                f"unsupported operand type(s) for *: {type(self)} and {type(other)}")
        if other <= 0:
            raise ArgumentValueError(
                f"Non-positive multiplication factor {other} for {type(self)}")
        return Sequential(*(list(self) * other))  # the same modules repeated, as PyTorch

    __rmul__ = __mul__

    def __dir__(self):
        return [key for key in super().__dir__() if not key.isdigit()]

    def pop(self, key) -> Module:
        """Remove and return the module at index ``key``."""
        module = self[key]
        del self[key]
        return module

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end; returns ``self``."""
        self.add_module(str(len(self)), module)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        """Insert ``module`` before position ``index`` (negative counts from the end)."""
        _check_module(module, "Sequential.insert")
        n = len(self._modules)
        if not -n <= index <= n:
            raise IndexRangeError(
                f"Sequential.insert: index {index} is out of range for {n} modules")
        index = index + n if index < 0 else index
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(items):
            self._modules[str(i)] = m
        return self

    def extend(self, sequential) -> Sequential:
        """Append every module of ``sequential`` (any iterable of modules)."""
        for layer in sequential:
            self.append(layer)
        return self

    def forward(self, input):
        for module in self:
            input = module(input)
        return input


class ModuleList(Module):
    """A list of modules, registered so that ``parameters()`` and ``state_dict()`` see them.

    It has no ``forward``: iterate over it in your own module's forward.

    Example::

        self.blocks = nn.ModuleList([Block() for _ in range(4)])
        for block in self.blocks:
            x = block(x)
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __repr__(self) -> str:
        # as torch's: a run of consecutive children with equal reprs prints once,
        # "(0-5): 6 x Block(...)", so a deep stack stays readable
        reprs = [repr(module) for module in self._modules.values()]
        if not reprs:
            return self._get_name() + "()"
        lines, start = [], 0
        for end in range(1, len(reprs) + 1):
            if end == len(reprs) or reprs[end] != reprs[start]:
                body = _addindent(reprs[start], 2)
                lines.append(f"({start}): {body}" if end - start == 1
                             else f"({start}-{end - 1}): {end - start} x {body}")
                start = end
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"

    def _abs_key(self, idx) -> str:
        idx = operator.index(idx)
        n = len(self)
        if not -n <= idx < n:
            raise IndexRangeError(f"ModuleList: index {idx} is out of range for {n} modules")
        return str(idx + n if idx < 0 else idx)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return self.__class__(list(self._modules.values())[idx])
        return self._modules[self._abs_key(idx)]

    def __setitem__(self, idx, module) -> None:
        setattr(self, self._abs_key(idx), module)

    def __delitem__(self, idx) -> None:
        if isinstance(idx, slice):
            for k in range(len(self._modules))[idx]:
                delattr(self, str(k))
        else:
            delattr(self, self._abs_key(idx))
        _renumber(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other) -> ModuleList:
        return ModuleList(list(self) + list(other))

    def __dir__(self):
        return [key for key in super().__dir__() if not key.isdigit()]

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index``, like ``list.insert``."""
        _check_module(module, "ModuleList.insert")
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(items):
            self._modules[str(i)] = m

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; returns ``self``."""
        self.add_module(str(len(self)), module)
        return self

    def pop(self, key=-1) -> Module:
        """Remove and return the module at index ``key`` (the last one by default)."""
        module = self[key]
        del self[key]
        return module

    def extend(self, modules) -> ModuleList:
        """Append every module of the iterable ``modules``; returns ``self``."""
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise ArgumentTypeError(
                "ModuleList.extend should be called with an iterable of modules, "
                f"but got {type(modules).__name__}")
        offset = len(self)
        for i, module in enumerate(modules):
            self.add_module(str(offset + i), module)
        return self


class ModuleDict(Module):
    """An ordered dict of modules with string keys, registered as submodules.

    Example::

        heads = nn.ModuleDict({"cls": nn.Linear(8, 3), "reg": nn.Linear(8, 1)})
        y = heads["cls"](x)
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def clear(self) -> None:
        """Remove every module."""
        self._modules.clear()

    def pop(self, key: str) -> Module:
        """Remove the module under ``key`` and return it."""
        module = self[key]
        del self[key]
        return module

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules) -> None:
        """Add (or replace) modules from a mapping or an iterable of ``(key, module)`` pairs."""
        if hasattr(modules, "items"):
            pairs = modules.items()
        else:
            pairs = []
            for j, pair in enumerate(modules):
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise ArgumentValueError(
                        f"ModuleDict.update: element #{j} should be a (key, module) "
                        f"pair, got {pair!r}")
                pairs.append(pair)
        for key, module in pairs:
            self[key] = module


# ---------------------------------------------------------------------------- parameter containers

# PyTorch's legacy tensor type names, which ParameterDict's repr shows ("torch.FloatTensor");
# ours say "gradient." instead of "torch.".
_LEGACY_TYPE_NAMES = {
    "float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
    "bfloat16": "BFloat16Tensor", "int64": "LongTensor", "int32": "IntTensor",
    "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor",
    "complex64": "ComplexFloatTensor", "complex128": "ComplexDoubleTensor",
}


class _MissingKeyError(GradientError, KeyError, AttributeError):
    """A key that a ParameterDict does not hold. PyTorch raises AttributeError here (its lookup
    is ``getattr``); this is also a KeyError, which is what code written for dicts catches."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


def _as_parameter(value):
    """What the parameter containers store for ``value``: a plain tensor becomes a Parameter
    (over the same storage, requires_grad=True, as PyTorch's containers do); anything else,
    a Parameter included, is stored as it is."""
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


def _describe(value, type_name) -> str:
    """One entry of a parameter container's repr, in PyTorch's words."""
    if not isinstance(value, Tensor):
        return f"Object of type: {type(value).__name__}"
    size = "x".join(str(n) for n in value.shape)
    # PyTorch names the device only when it is not the CPU
    device = "" if value.device.type == "cpu" else f" ({value.device})"
    kind = "Parameter" if isinstance(value, Parameter) else "Tensor"
    return f"{kind} containing: [{type_name(value)} of size {size}{device}]"


def _legacy_type_name(t: Tensor) -> str:
    name = _LEGACY_TYPE_NAMES.get(t.dtype.name, f"{t.dtype.name}Tensor")
    return f"gradient.{name}" if t.device.type == "cpu" else f"gradient.{t.device.type}.{name}"


class ParameterList(Module):
    """A list of parameters, registered so that ``parameters()``, ``state_dict()`` and ``.to()``
    see them (under the names "0", "1", ..., as in PyTorch).

    Assigning a plain tensor (in the constructor, ``append``, ``extend``, ``+=`` or
    ``plist[i] = t``) stores it as a :class:`~gradient.nn.Parameter` over the same storage that
    requires grad; a Parameter is stored as it is (keeping its ``requires_grad``). Other objects
    may be stored too: a Module becomes a child module, anything else a plain attribute. Like
    PyTorch's, the list has no ``insert``, ``pop`` or ``del``. Unlike PyTorch's, a failed
    ``append`` (an integer tensor cannot be a Parameter) leaves the list unchanged.

    Example::

        class Mixture(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.weights = nn.ParameterList([gradient.randn(4, 4) for _ in range(n)])

            def forward(self, x):
                for w in self.weights:
                    x = x @ w
                return x

        [name for name, _ in Mixture(2).named_parameters()]   # ['weights.0', 'weights.1']
    """

    def __init__(self, values=None) -> None:
        super().__init__()
        self._size = 0
        if values is not None:
            self += values

    def _key(self, idx) -> str:
        """The attribute name of entry ``idx`` (negative counts from the end)."""
        idx = operator.index(idx)
        n = self._size
        if not -n <= idx < n:
            raise IndexRangeError(f"ParameterList: index {idx} is out of range for a list of {n}")
        return str(idx + n if idx < 0 else idx)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            out = self.__class__()   # a new list holding the same parameters, as PyTorch's
            for i in range(self._size)[idx]:
                out.append(self[i])
            return out
        return getattr(self, self._key(idx))

    def __setitem__(self, idx, value) -> None:
        setattr(self, self._key(idx), _as_parameter(value))

    def __len__(self) -> int:
        return self._size

    def __iter__(self):
        return iter([self[i] for i in range(self._size)])

    def __iadd__(self, values) -> ParameterList:
        return self.extend(values)

    def __dir__(self):
        return [key for key in super().__dir__() if not key.isdigit()]

    def append(self, value) -> ParameterList:
        """Add ``value`` at the end (a plain tensor becomes a Parameter); returns ``self``."""
        setattr(self, str(self._size), _as_parameter(value))
        self._size += 1   # only once stored: a value that cannot be stored leaves no gap
        return self

    def extend(self, values) -> ParameterList:
        """Append every element of the iterable ``values``; returns ``self``."""
        # a tensor is iterable (over its rows), but extending by one is surely a mistake
        if not isinstance(values, _abc.Iterable) or isinstance(values, Tensor):
            raise ArgumentTypeError(
                "ParameterList.extend should be called with an iterable, but got "
                f"{type(values).__name__}; to add one tensor use append")
        for value in values:
            self.append(value)
        return self

    def extra_repr(self) -> str:
        return "\n".join(f"  ({i}): " + _describe(p, lambda t: f"gradient.{t.dtype.name}")
                         for i, p in enumerate(self))

    def __call__(self, *args, **kwargs):
        raise UsageError("ParameterList should not be called: it has no forward; index or "
                         "iterate over it in your module's forward")


class ParameterDict(Module):
    """An ordered dict of parameters with string keys, registered under those keys so that
    ``parameters()``, ``state_dict()`` and ``.to()`` see them.

    Assigning a plain tensor (in the constructor, ``update``, ``setdefault`` or
    ``pdict[key] = t``) stores it as a :class:`~gradient.nn.Parameter` over the same storage
    that requires grad. As in PyTorch, ``update`` (and so the constructor) with a plain ``dict``
    adds its entries in sorted key order; an ``OrderedDict``, a ParameterDict or a sequence of
    ``(key, value)`` pairs keeps its order.

    Differences from PyTorch: a missing key raises an error that is both a ``KeyError`` and an
    ``AttributeError`` (PyTorch's is an AttributeError); a key naming one of the module's own
    attributes or methods (``"training"``, ``"keys"``) is refused with a KeyError instead of
    replacing the attribute; a failed assignment leaves the dict unchanged.

    Example::

        heads = nn.ParameterDict({"left": gradient.randn(5, 10), "right": gradient.randn(5, 10)})
        y = heads["left"] @ x
        list(heads.state_dict())          # ['left', 'right']
    """

    def __init__(self, parameters=None) -> None:
        super().__init__()
        self._keys: dict = {}
        if parameters is not None:
            self.update(parameters)

    @staticmethod
    def _check_key(key) -> None:
        if not isinstance(key, str):
            raise ArgumentTypeError(
                f"ParameterDict keys must be strings (they become parameter names), "
                f"got {key!r} of type {type(key).__name__}; use str(key)")

    def __getitem__(self, key: str):
        self._check_key(key)
        if key not in self._keys:
            raise _MissingKeyError(f"ParameterDict has no key {key!r}; its keys are "
                                   f"{list(self._keys)}")
        # straight from the registries: getattr would find a method first for a key like "get"
        for registry in (self._parameters, self._buffers, self._modules):
            if key in registry:
                return registry[key]
        return self.__dict__[key]

    def __setitem__(self, key: str, value) -> None:
        self._check_key(key)
        if key not in self._keys and hasattr(self, key):
            raise KeyError(f"ParameterDict: the key {key!r} is the name of an attribute of the "
                           "module itself, which storing an entry under it would replace; "
                           "choose another key")
        setattr(self, key, _as_parameter(value))
        self._keys[key] = None   # only once stored (setattr refuses names with a ".")

    def __delitem__(self, key: str) -> None:
        self[key]   # the missing-key error
        delattr(self, key)
        del self._keys[key]

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def __reversed__(self):
        return reversed(list(self._keys))

    def __contains__(self, key) -> bool:
        return key in self._keys

    def __or__(self, other) -> ParameterDict:
        out = self.copy()
        out.update(other)
        return out

    def __ror__(self, other):
        out = other.copy()
        out.update(self)
        return out

    def __ior__(self, other) -> ParameterDict:
        self.update(other)
        return self

    def copy(self) -> ParameterDict:
        """A new ParameterDict holding the same parameters (not copies of them), in order."""
        return ParameterDict(OrderedDict((k, self[k]) for k in self._keys))

    def setdefault(self, key: str, default=None):
        """``self[key]``, first storing ``default`` under ``key`` if it is missing."""
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        """Remove every entry."""
        for key in list(self._keys):
            del self[key]

    def pop(self, key: str):
        """Remove the entry under ``key`` and return it."""
        value = self[key]
        del self[key]
        return value

    def popitem(self) -> tuple:
        """Remove and return the last inserted ``(key, value)`` pair."""
        if not self._keys:
            raise KeyError("popitem(): ParameterDict is empty")
        key = next(reversed(list(self._keys)))
        return key, self.pop(key)

    def get(self, key: str, default=None):
        """``self[key]`` if the key is present, else ``default``."""
        return self[key] if key in self else default

    def fromkeys(self, keys, default=None) -> ParameterDict:
        """A new ParameterDict with ``default`` under each of ``keys`` (as in PyTorch, a method
        of an instance, not a classmethod)."""
        return ParameterDict((k, default) for k in keys)

    def keys(self):
        return self._keys.keys()

    def items(self):
        return ((k, self[k]) for k in self._keys)

    def values(self):
        return (self[k] for k in self._keys)

    def update(self, parameters) -> None:
        """Add (or replace) entries from a mapping or an iterable of ``(key, value)`` pairs."""
        if not isinstance(parameters, _abc.Iterable):
            raise ArgumentTypeError(
                "ParameterDict.update should be called with a mapping or an iterable "
                f"of (key, value) pairs, but got {type(parameters).__name__}")
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            pairs = list(parameters.items())
        elif isinstance(parameters, _abc.Mapping):
            # PyTorch sorts a plain mapping's keys (from when dicts had no order); so do we,
            # so that parameter and state-dict order match a ParameterDict built by PyTorch
            pairs = sorted(parameters.items(), key=lambda kv: kv[0])
        else:
            pairs = []
            for j, pair in enumerate(parameters):
                if not isinstance(pair, _abc.Iterable):
                    raise ArgumentTypeError(
                        f"ParameterDict update sequence element #{j} should be a "
                        f"(key, value) pair, got {type(pair).__name__}")
                pair = tuple(pair)
                if len(pair) != 2:
                    raise ArgumentValueError(
                        f"ParameterDict update sequence element #{j} has length "
                        f"{len(pair)}; 2 is required (a (key, value) pair)")
                pairs.append(pair)
        for key, value in pairs:
            self[key] = value

    def extra_repr(self) -> str:
        return "\n".join(f"  ({k}): " + _describe(p, _legacy_type_name) for k, p in self.items())

    def __call__(self, *args, **kwargs):
        raise UsageError("ParameterDict should not be called: it has no forward; look its "
                         "entries up by key in your module's forward")
