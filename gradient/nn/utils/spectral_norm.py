"""The legacy hook-based spectral norm, as ``torch.nn.utils.spectral_norm``/``remove_spectral_norm``.

The parameter ``weight`` is renamed ``weight_orig``; the buffers ``weight_u`` and ``weight_v``
hold the power-iteration vectors; a forward pre-hook sets ``module.weight = weight_orig / sigma``
(a plain attribute) before every call, refining ``u`` and ``v`` by ``n_power_iterations`` steps
in training mode. Prefer :func:`gradient.nn.utils.parametrizations.spectral_norm`; this one keeps
old scripts and their checkpoints (``weight_orig``/``weight_u``/``weight_v`` keys) working.

Example::

    >>> d = nn.utils.spectral_norm(nn.Linear(20, 40))
    >>> list(d.state_dict())
    ['bias', 'weight_orig', 'weight_u', 'weight_v']

Difference from PyTorch: the state-dict version hooks that convert checkpoints from PyTorch
versions before 1.1 are not implemented.
"""

from __future__ import annotations

from ...autograd.grad_mode import no_grad
from .. import functional as F
from ..module import Module
from ..parameter import Parameter, is_lazy
from ...errors import ArgumentValueError, UsageError

__all__ = ["spectral_norm", "remove_spectral_norm"]


class SpectralNorm:
    """The forward pre-hook: ``module.<name> = <name>_orig / sigma``."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        if n_power_iterations <= 0:
            raise ArgumentValueError(
                "spectral_norm: expected n_power_iterations to be positive, got "
                f"n_power_iterations={n_power_iterations}")
        self.name, self.dim, self.eps = name, dim, eps
        self.n_power_iterations = n_power_iterations

    def reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            order = [self.dim] + [d for d in range(weight.ndim) if d != self.dim]
            weight = weight.permute(*order)
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module: Module, do_power_iteration: bool):
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():   # the vectors are state, refined in place
                for _ in range(self.n_power_iterations):
                    v.copy_(F.normalize(mat.T @ u, dim=0, eps=self.eps))
                    u.copy_(F.normalize(mat @ v, dim=0, eps=self.eps))
            # clones: the next call changes the buffers in place, which must not touch the
            # tensors this call's graph saved
            u, v = u.clone(), v.clone()
        sigma = (u * (mat @ v)).sum()
        return weight / sigma

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module, module.training))


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Divide ``module.<name>`` by its spectral norm before every call (legacy API).
    ``dim`` defaults to 0, or 1 for transposed convolutions. Returns ``module``.

    Example: ``d = nn.utils.spectral_norm(nn.Conv2d(3, 16, 3))``
    """
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            raise UsageError(f"Cannot register two spectral_norm hooks on the same parameter "
                             f"{name}")
    if dim is None:
        from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    weight = module._parameters.get(name)
    if weight is None:
        raise ArgumentValueError(
            f"`SpectralNorm` cannot be applied as parameter `{name}` is None or "
            f"missing in {type(module).__name__}")
    if is_lazy(weight):
        raise ArgumentValueError(
            "The module passed to `SpectralNorm` can't have uninitialized "
            "parameters. Make sure to run the dummy forward before applying spectral "
            "normalization")
    fn = SpectralNorm(name, n_power_iterations, dim % weight.ndim, eps)
    with no_grad():
        h, w = fn.reshape_weight_to_matrix(weight).shape
        u = F.normalize(weight.new_empty(h).normal_(0, 1), dim=0, eps=eps)
        v = F.normalize(weight.new_empty(w).normal_(0, 1), dim=0, eps=eps)
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    # weight stays readable as a plain attribute (init code may look at it)
    object.__setattr__(module, name, weight.detach())
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    module.register_forward_pre_hook(fn)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`spectral_norm`: ``<name>`` becomes one parameter holding ``orig / sigma``.

    Example: ``nn.utils.remove_spectral_norm(d)``
    """
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            with no_grad():
                weight = hook.compute_weight(module, do_power_iteration=False).detach()
            del module._forward_pre_hooks[key]
            module._update_hooks_flag()
            delattr(module, name)
            del module._parameters[name + "_orig"]
            del module._buffers[name + "_u"]
            del module._buffers[name + "_v"]
            module.register_parameter(name, Parameter(weight))
            return module
    raise ArgumentValueError(f"spectral_norm of '{name}' not found in {module}")
