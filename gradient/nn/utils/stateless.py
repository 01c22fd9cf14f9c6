"""Run a module with other parameters and buffers, as ``torch.nn.utils.stateless`` and
``torch.func.functional_call``.

:func:`functional_call` swaps the given tensors into the module's ``_parameters`` and
``_buffers`` for the length of one call and puts the originals back afterwards, also when the
call raises. The module's own tensors are never modified. This is what makes a model a pure
function of its weights, for ``gradient.func.grad`` and ``gradient.func.vmap`` (per-sample
gradients).

Example::

    >>> model = gradient.nn.Linear(3, 1)
    >>> params = {k: v.detach() for k, v in model.named_parameters()}
    >>> params["bias"] = gradient.zeros(1)
    >>> functional_call(model, params, (gradient.ones(1, 3),)).shape
    gradient.Size([1, 1])
"""

from __future__ import annotations

from contextlib import contextmanager

from ..module import Module, changed
from ...errors import ArgumentValueError

__all__ = ["functional_call"]


def _merge_dicts(parameter_and_buffer_dicts) -> dict:
    """One dict from a dict or a sequence of dicts; a key in two of them is ambiguous."""
    if isinstance(parameter_and_buffer_dicts, dict):
        return dict(parameter_and_buffer_dicts)
    if not isinstance(parameter_and_buffer_dicts, (list, tuple)):
        raise ArgumentValueError(
            "Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of "
            f"dicts, but got {type(parameter_and_buffer_dicts)}")
    merged: dict = {}
    for d in parameter_and_buffer_dicts:
        if not isinstance(d, dict):
            raise ArgumentValueError(
                "Expected parameter_and_buffer_dicts to be a dict, or a list/tuple "
                f"of dicts, but got a sequence holding {type(d)}")
        repeated = [k for k in d if k in merged]
        if repeated:
            raise ArgumentValueError(
                f"{repeated} appeared in multiple dictionaries; behavior of functional "
                "call is ambiguous")
        merged.update(d)
    return merged


def _tied_groups(module: Module) -> list[list[str]]:
    """Names that share one tensor (tied weights), as lists of two or more names."""
    by_id: dict[int, list[str]] = {}
    for get in (module.named_parameters, module.named_buffers):
        for name, t in get(remove_duplicate=False):
            by_id.setdefault(id(t), []).append(name)
    return [names for names in by_id.values() if len(names) > 1]


def _expand_ties(module: Module, values: dict) -> dict:
    """With tied weights, a value given for one name goes to every name of its group."""
    values = dict(values)
    for names in _tied_groups(module):
        given = [n for n in names if n in values]
        if not given:
            continue
        first = values[given[0]]
        if any(values[n] is not first for n in given[1:]):
            raise ArgumentValueError(
                f"functional_call got multiple values for keys {given}, which are "
                "tied. Consider using tie_weights=False")
        for n in names:
            values[n] = first
    return values


def _check_strict(module: Module, values: dict) -> None:
    names = [n for get in (module.named_parameters, module.named_buffers)
             for n, _ in get(remove_duplicate=False)]
    missing = [n for n in names if n not in values]
    unexpected = [n for n in values if n not in set(names)]
    if missing or unexpected:
        lines = [f"Error(s) in reparametrizing for {type(module).__name__}:"]
        if unexpected:
            lines.append("\tUnexpected key(s): " + ", ".join(f"'{k}'" for k in unexpected) + ".")
        if missing:
            lines.append("\tMissing key(s): " + ", ".join(f"'{k}'" for k in sorted(missing)) + ".")
        raise ArgumentValueError("\n".join(lines))


_MISSING = object()


def _swap(module: Module, name: str, value):
    """Put ``value`` at the dotted ``name``; return what was there (``_MISSING`` if nothing)."""
    prefix, _, attr = name.rpartition(".")
    owner = module.get_submodule(prefix)
    changed(owner)   # what was derived from it (a captured step) must see the new tensors
    for registry in (owner._parameters, owner._buffers):
        if attr in registry:
            old = registry[attr]
            registry[attr] = value   # a plain dict write: a Tensor may stand in for a Parameter
            return old
    old = owner.__dict__.get(attr, _MISSING)
    object.__setattr__(owner, attr, value)
    return old


def _unswap(module: Module, name: str, old) -> None:
    prefix, _, attr = name.rpartition(".")
    owner = module.get_submodule(prefix)
    changed(owner)
    for registry in (owner._parameters, owner._buffers):
        if attr in registry:
            registry[attr] = old
            return
    if old is _MISSING:
        owner.__dict__.pop(attr, None)
    else:
        object.__setattr__(owner, attr, old)


@contextmanager
def _reparametrize(module: Module, values: dict):
    swapped = []
    try:
        for name, value in values.items():
            swapped.append((name, _swap(module, name, value)))
        yield
    finally:
        for name, old in reversed(swapped):
            _unswap(module, name, old)


def functional_call(module: Module, parameter_and_buffer_dicts, args=None, kwargs=None, *,
                    tie_weights: bool = True, strict: bool = False):
    """Call ``module(*args, **kwargs)`` with its parameters and buffers replaced by the tensors
    in ``parameter_and_buffer_dicts`` (a dict from dotted names to tensors, or a tuple of such
    dicts, which must not share keys), as ``torch.func.functional_call``.

    Names not given keep the module's own tensors. ``tie_weights=True``: a value given for one
    of several tied names (one tensor registered twice) is used for all of them.
    ``strict=True``: every parameter and buffer must be given, and nothing else. A name that is
    neither a parameter nor a buffer is set as a plain attribute for the call. The originals
    are restored afterwards, also when the call raises; in-place updates the module makes to a
    substituted buffer (batch-norm statistics) land in the substituted tensor.

    Example::

        >>> model = gradient.nn.Linear(2, 1)
        >>> w = {"weight": gradient.ones(1, 2), "bias": gradient.zeros(1)}
        >>> functional_call(model, w, (gradient.tensor([[1.0, 2.0]]),))
        tensor([[3.]])
    """
    values = _merge_dicts(parameter_and_buffer_dicts)
    if tie_weights:
        values = _expand_ties(module, values)
    if strict:
        _check_strict(module, values)
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    with _reparametrize(module, values):
        return module(*args, **(kwargs or {}))
