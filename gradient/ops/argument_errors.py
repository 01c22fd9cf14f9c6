"""PyTorch's TypeError for a call given something other than a Tensor where it takes one.

gradient's functions read their inputs' attributes (``x.dtype``, ``x.shape``) without testing
their types first: that check would cost every call. Given None, a list or a string instead,
they failed with an AttributeError (``'NoneType' object has no attribute 'dtype'``), where
PyTorch raises a TypeError that names the argument. :func:`tensor_arguments` wraps a public
function so that such a failure becomes an :class:`~gradient.errors.ArgumentTypeError` (a
``TypeError``)::

    >>> gradient.abs(None)
    ArgumentTypeError: abs(): argument 'input' (position 1) must be a Tensor, not NoneType

Only where the object that lacked the attribute is one of the call's arguments (or an item of
a list, tuple or string among them) and the attribute is one a Tensor has: any other
AttributeError is a failure of its own and goes on as it is. A call that fails with another
of Python's or NumPy's errors (``'<=' not supported between instances of 'float' and 'tuple'``
for ``F.dropout(x, (0.5,))``) is looked at the same way, after the fact: where an argument's
type is not one its parameter's annotation names (:func:`mistyped_argument`), the error says
so, in PyTorch's words (``dropout(): argument 'p' (position 2) must be float, not tuple``). Nothing is checked on the way in
(a call that works costs one Python frame more), and :func:`wrong_argument` serves callers
that wrap their own calls (``nn.Module.__call__`` for gradient's layers). Sizes and dims, read
by ``int()``, name what they are for the same way (:func:`as_ints`, :func:`as_int`).
"""

from __future__ import annotations

import functools
import inspect
import numbers
import os

from ..errors import ArgumentTypeError, ArgumentValueError, GradientError
from ..tensor import Tensor

__all__ = ["tensor_arguments", "wrong_argument", "mistyped_argument", "guard_namespace", "as_ints",
           "as_int", "one_integer"]

_MISSING = object()
_wrapped: dict = {}     # id(function) -> its wrapper, so that aliases stay one object


def wrong_argument(name: str, fn, args: tuple, kwargs: dict,
                   error: AttributeError) -> ArgumentTypeError | None:
    """The error to raise for ``error``, met by ``fn(*args, **kwargs)`` (reported as ``name``),
    or None where it does not come from an argument that should have been a Tensor."""
    obj = getattr(error, "obj", _MISSING)
    if obj is _MISSING or isinstance(obj, Tensor) or not hasattr(Tensor, error.name or ""):
        return None
    names = _parameter_names(fn, args, kwargs)
    for position, (parameter, value) in enumerate(names):
        if value is obj:
            where = f" (position {position + 1})" if position < len(args) else ""
            return ArgumentTypeError(f"{name}(): argument '{parameter}'{where} must be a Tensor, "
                                     f"not {type(obj).__name__}")
    for parameter, value in names:
        if isinstance(value, (list, tuple, str)):     # (a string: a sequence of its letters)
            for index, item in enumerate(value):
                if item is obj:
                    return ArgumentTypeError(
                        f"{name}(): argument '{parameter}' must hold Tensors, not "
                        f"{type(obj).__name__} (at index {index})")
    return None


def mistyped_argument(name: str, fn, args: tuple, kwargs: dict) -> ArgumentTypeError | None:
    """The error to raise where ``fn(*args, **kwargs)`` (reported as ``name``) failed with a
    Python error of its internals (``'<=' not supported between instances of 'float' and
    'tuple'`` for ``dropout(x, (0.5,))``), or None: the first argument whose type its
    parameter rules out, by the parameter's annotation (``p: float``, ``weight: Tensor |
    None``) or, without one, the type of its default (``inplace=False``). Only a failed call
    comes here, so the check costs nothing; an argument of a type the annotation does not
    name (a one-element Tensor for a float) is not blamed.

    Example: ``mistyped_argument("dropout", F.dropout, (x, (0.5,)), {})`` is
    ``ArgumentTypeError("dropout(): argument 'p' (position 2) must be float, not tuple")``
    """
    try:
        signature = inspect.signature(fn)
        bound = signature.bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    for position, (parameter, value) in enumerate(bound.arguments.items()):
        expected = _expected_types(signature.parameters[parameter])
        if expected is None or any(_is_a(value, kind) for kind in expected):
            continue
        where = f" (position {position + 1})" if position < len(args) else ""
        what = " or ".join(expected)
        hint = ("; convert a NumPy array with gradient.from_numpy(a)"
                if "Tensor" in expected and type(value).__module__ == "numpy" else "")
        return ArgumentTypeError(f"{name}(): argument '{parameter}'{where} must be {what}, not "
                                 f"{type(value).__name__}{hint}")
    return None


#: What a parameter annotated with each of these names takes.
_KINDS = {"Tensor", "float", "int", "bool", "str", "None"}


def _expected_types(parameter) -> tuple | None:
    """The names of the types ``parameter`` takes (a subset of :data:`_KINDS`), or None where
    that is not known: an annotation naming other types, or no annotation and a default
    other than a bool, float or string."""
    if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
        return None
    annotation = parameter.annotation
    if annotation is parameter.empty:
        default = parameter.default
        return ((type(default).__name__,) if type(default) in (bool, float, str) else None)
    if not isinstance(annotation, str):      # (a module without postponed annotations)
        annotation = getattr(annotation, "__name__", "")
    kinds = tuple(part.strip() for part in annotation.split("|"))
    return kinds if all(kind in _KINDS for kind in kinds) else None


def _is_a(value, kind: str) -> bool:
    """Whether ``value`` passes for a ``kind`` argument: numbers of any kind Python or NumPy
    has, and a Tensor for an int or a float (one element makes a number)."""
    if kind == "Tensor":
        return isinstance(value, Tensor)
    if kind == "None":
        return value is None
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, numbers.Integral) or type(value).__name__ == "bool_"
    if isinstance(value, Tensor):
        return True
    if kind == "int":
        return isinstance(value, numbers.Integral)
    return isinstance(value, numbers.Real)        # float


def one_integer(value) -> bool:
    """Whether ``value`` stands for one integer, not a sequence of them: an int, a NumPy
    integer, a 0-d array or tensor (what has ``__index__``; a NumPy array of any shape has
    that method, which only the 0-d one honours).

    Example: ``one_integer(np.int64(3))`` is True, ``one_integer(np.array([3]))`` False
    """
    return isinstance(value, int) or (hasattr(value, "__index__")
                                      and getattr(value, "ndim", 0) == 0)


def as_ints(values, what: str) -> tuple:
    """``values`` (an iterable) as a tuple of Python ints, each read as :func:`as_int` reads
    one; an :class:`~gradient.errors.ArgumentTypeError` naming ``what`` where one is no
    integer (``x.reshape("ab")``, ``x.flip("a")``: Python's "invalid literal for int()"
    before, and ``x.reshape(2.5, -1)`` was ``x.reshape(2, -1)``).

    Example: ``as_ints((2, 3), "reshape: the shape")`` is ``(2, 3)``
    """
    try:
        numbers = tuple(_integer(v) for v in values)
    except TypeError:            # no sequence at all (None, a number)
        numbers = (None,)
    if None in numbers:
        raise ArgumentTypeError(f"{what} must be integers, got {values!r}")
    return numbers


def as_int(value, what: str) -> int:
    """``value`` as a Python int by ``int()`` (so ``3``, ``3.0``, ``numpy.int64(3)`` and a
    one-element integer Tensor are 3), an :class:`~gradient.errors.ArgumentTypeError` naming
    ``what`` where it is no integer: a string, None, or a float with a fraction (``int()``
    would cut ``x.tril(1.5)`` to ``x.tril(1)``; PyTorch refuses it).

    Example: ``as_int(k, "topk: k")``
    """
    number = _integer(value)
    if number is None:
        raise ArgumentTypeError(f"{what} must be an integer, got {value!r}")
    return number


def as_number(value, what: str):
    """``value`` as a Python number: a number as it is (int, float, bool, a NumPy scalar), a
    one-element Tensor's ``item()``; an :class:`~gradient.errors.ArgumentTypeError` naming
    ``what`` for anything else (``F.elu(x, alpha=x)`` of a tensor of several elements was
    NumPy's "could not broadcast" from deep inside; PyTorch says it "must be Number").

    Example: ``alpha = as_number(alpha, "elu: alpha")``
    """
    if type(value) in (float, int, bool):
        return value
    if isinstance(value, Tensor):
        if value.numel() == 1:
            return value.item()
        raise ArgumentTypeError(f"{what} must be a number, got a tensor of shape "
                                f"{tuple(value.shape)}")
    if isinstance(value, numbers.Real):
        return value
    raise ArgumentTypeError(f"{what} must be a number, got {type(value).__name__}")


def check_fits_in_memory(what: str, n_elements: int, itemsize: int) -> None:
    """An :class:`~gradient.errors.ArgumentValueError` where ``n_elements`` values of
    ``itemsize`` bytes would not fit in this machine's memory: for calls that build Python
    lists as long as their output before allocating it (``adaptive_max_pool1d(x, 10**12)``
    grew until the system killed the process; an allocation that large fails at once).

    Example: ``check_fits_in_memory("adaptive_avg_pool2d", n * c * h * w, 4)``
    """
    memory = _physical_memory()
    if memory is not None and n_elements * itemsize > memory:
        gib = n_elements * itemsize / 2 ** 30
        raise ArgumentValueError(f"{what} would hold {_readable(n_elements)} values "
                                 f"({_readable(gib)} GiB), more than this machine's memory "
                                 f"({memory / 2 ** 30:,.0f} GiB)")


@functools.lru_cache(maxsize=None)
def _physical_memory() -> int | None:
    """This machine's memory in bytes (None where the system does not say: Windows)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _readable(n) -> str:
    """A count with thousands separators, in scientific notation past 10**15."""
    return f"{n:,.0f}" if n < 10 ** 15 else f"{float(n):.3g}"


def _integer(value) -> int | None:
    """``value`` as an int, or None where it is no integer (a string, None, a fraction or NaN,
    a tensor of several elements)."""
    if type(value) is int:       # (shapes and dims mostly are: reshape's hot path)
        return value
    try:
        if isinstance(value, Tensor):
            value = value.item()
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == value else None


def _parameter_names(fn, args: tuple, kwargs: dict) -> list:
    """(parameter name, value) of each argument, positional ones first, in order; the names
    from ``fn``'s signature where it has one (else ``argument 1`` ...)."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    named = []
    for i, value in enumerate(args):
        p = parameters[i] if i < len(parameters) else None
        if p is None or p.kind is p.VAR_POSITIONAL:
            named.append((f"{p.name}[{i - parameters.index(p)}]" if p else f"argument {i + 1}",
                          value))
            continue
        named.append((p.name, value))
    named.extend(kwargs.items())
    return named


def tensor_arguments(fn):
    """``fn`` raising :class:`~gradient.errors.ArgumentTypeError` for an argument that should
    have been a Tensor (see the module docstring); the same wrapper for the same function.

    Example: ``abs = tensor_arguments(elementwise.abs)``
    """
    found = _wrapped.get(id(fn))
    if found is not None:
        return found

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GradientError:
            raise
        except AttributeError as error:
            wrong = (wrong_argument(fn.__name__, fn, args, kwargs, error)
                     or mistyped_argument(fn.__name__, fn, args, kwargs))
            if wrong is None:
                raise
            raise wrong from None
        except (TypeError, ValueError, OverflowError) as error:
            wrong = mistyped_argument(fn.__name__, fn, args, kwargs)
            if wrong is None:
                raise
            raise wrong from error

    _wrapped[id(fn)] = checked
    return checked


#: Where the functions :func:`guard_namespace` wraps are defined.
_OPS = ("gradient.ops.", "gradient.nn.functional")


def guard_namespace(namespace: dict, module: str) -> None:
    """Wraps, in a module's ``namespace`` (its ``globals()``), every public function that
    gradient's ops define (:func:`tensor_arguments`), those wrappers then belonging to
    ``module`` (so that pickle finds them there)."""
    for name, value in list(namespace.items()):
        if (not name.startswith("_") and inspect.isfunction(value)
                and value.__module__.startswith(_OPS)):
            checked = tensor_arguments(value)
            if checked.__module__ != module and checked.__name__ == name:
                checked.__module__ = module
            namespace[name] = checked
