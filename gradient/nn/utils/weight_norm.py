"""The legacy hook-based weight norm, as ``torch.nn.utils.weight_norm``/``remove_weight_norm``.

``weight`` is replaced by the parameters ``weight_g`` (magnitude) and ``weight_v`` (direction),
and a forward pre-hook recomputes ``module.weight = g * v / ||v||`` (a plain attribute) before
every call. Prefer :func:`gradient.nn.utils.parametrizations.weight_norm`, which PyTorch also
recommends; this one exists so that old scripts and checkpoints (``weight_g``/``weight_v`` keys)
keep working.

Example::

    >>> m = nn.utils.weight_norm(nn.Linear(20, 40))
    >>> list(m.state_dict())
    ['bias', 'weight_g', 'weight_v']
    >>> m = nn.utils.remove_weight_norm(m)
"""

from __future__ import annotations

import warnings

from ...autograd.grad_mode import no_grad
from ..module import Module
from ..parameter import Parameter, is_lazy
from .parametrizations import _norm_except_dim, _weight_norm_dim
from ...errors import ArgumentValueError, UsageError

__all__ = ["weight_norm", "remove_weight_norm"]


class WeightNorm:
    """The forward pre-hook: recompute ``module.<name>`` from ``<name>_g`` and ``<name>_v``."""

    def __init__(self, name: str, dim: int | None) -> None:
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module: Module):
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return v * (g / _norm_except_dim(v, _weight_norm_dim(self.dim, v.ndim)))

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Split ``module.<name>`` into ``<name>_g`` and ``<name>_v`` (deprecated, as in PyTorch:
    use ``nn.utils.parametrizations.weight_norm``). ``dim=None`` (or -1): one magnitude for the
    whole tensor. Returns ``module``.

    Example: ``conv = nn.utils.weight_norm(nn.Conv1d(4, 8, 3))``
    """
    warnings.warn("`gradient.nn.utils.weight_norm` is deprecated in favor of "
                  "`gradient.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=2)
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm) and hook.name == name:
            raise UsageError(f"Cannot register two weight_norm hooks on the same parameter {name}")
    weight = module._parameters.get(name)
    if weight is None:
        raise ArgumentValueError(
            f"weight_norm: module {type(module).__name__} has no parameter '{name}'")
    if is_lazy(weight):
        raise ArgumentValueError(
            "The module passed to `WeightNorm` can't have uninitialized parameters. "
            "Make sure to run the dummy forward before applying weight normalization")
    fn = WeightNorm(name, dim)
    del module._parameters[name]
    with no_grad():
        g = _norm_except_dim(weight, _weight_norm_dim(fn.dim, weight.ndim)).detach()
    module.register_parameter(name + "_g", Parameter(g))
    module.register_parameter(name + "_v", Parameter(weight.detach()))
    setattr(module, name, fn.compute_weight(module))
    module.register_forward_pre_hook(fn)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`weight_norm`: ``<name>`` becomes one parameter again, holding g * v / ||v||.

    Example: ``nn.utils.remove_weight_norm(conv)``
    """
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, WeightNorm) and hook.name == name:
            with no_grad():
                weight = hook.compute_weight(module).detach()
            delattr(module, name)
            del module._parameters[name + "_g"]
            del module._parameters[name + "_v"]
            module.register_parameter(name, Parameter(weight))
            del module._forward_pre_hooks[key]
            module._update_hooks_flag()
            return module
    raise ArgumentValueError(f"weight_norm of '{name}' not found in {module}")
