"""Ready-made parametrizations, as in ``torch.nn.utils.parametrizations``: weight_norm and
spectral_norm, registered with :func:`~gradient.nn.utils.parametrize.register_parametrization`.

Example::

    >>> layer = parametrizations.weight_norm(nn.Linear(20, 40))
    >>> list(layer.state_dict())
    ['bias', 'parametrizations.weight.original0', 'parametrizations.weight.original1']

``original0`` is the magnitude ``g`` and ``original1`` the direction ``v``, as in PyTorch.
``orthogonal`` is not implemented.
"""

from __future__ import annotations

from ...autograd.grad_mode import no_grad
from ...tensor import Tensor
from .. import functional as F
from ..module import Module
from . import parametrize

__all__ = ["weight_norm", "spectral_norm"]


def _norm_except_dim(v: Tensor, dim: int | None) -> Tensor:
    """The 2-norm of ``v`` over every dimension but ``dim``, shaped to broadcast against ``v``
    (a 0-d norm of the whole tensor when ``dim`` is None, PyTorch's ``dim=-1`` there)."""
    if dim is None:
        return v.norm()
    dim = dim % v.ndim
    others = tuple(d for d in range(v.ndim) if d != dim)
    return (v * v).sum(others, keepdim=True).sqrt() if others else v.abs()


def _weight_norm_dim(dim, ndim: int):
    # PyTorch's weight norm reads dim=-1 (and None) as "no dimension": one norm for the whole
    # tensor, not a norm per slice of the last dimension
    return None if dim is None or dim == -1 else dim % ndim


class _WeightNorm(Module):
    """``weight = g * v / ||v||``, the norm over every dimension but ``dim``."""

    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        dim = _weight_norm_dim(self.dim, weight_v.ndim)
        return weight_v * (weight_g / _norm_except_dim(weight_v, dim))

    def right_inverse(self, weight: Tensor):
        dim = _weight_norm_dim(self.dim, weight.ndim)
        return _norm_except_dim(weight, dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize ``module.<name>`` as magnitude times direction, ``g * v / ||v||``
    (Salimans & Kingma); ``dim`` is the dimension that keeps one magnitude per slice
    (None: one magnitude for the whole tensor). Returns ``module``.

    Example::

        >>> m = parametrizations.weight_norm(nn.Linear(20, 40), name="weight")
        >>> m.parametrizations.weight.original0.shape     # g
        gradient.Size([40, 1])
    """
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


class _SpectralNorm(Module):
    """``weight / sigma``, with ``sigma`` the largest singular value of the weight (seen as a
    matrix with ``dim`` first) estimated by power iteration. The vectors ``_u`` and ``_v`` are
    buffers; each training-mode evaluation refines them by ``n_power_iterations`` steps."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if n_power_iterations <= 0:
            raise ValueError("spectral_norm: expected n_power_iterations to be positive, got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            mat = self._reshape_weight_to_matrix(weight)
            h, w = mat.shape
            u = mat.new_empty(h).normal_(0, 1)
            v = mat.new_empty(w).normal_(0, 1)
            self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
            self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
            # start from a good estimate, as PyTorch does
            self._power_method(mat, 15)

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            order = [self.dim] + [d for d in range(weight.ndim) if d != self.dim]
            weight = weight.permute(*order)
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, mat: Tensor, n: int) -> None:
        # in place and without a graph: the vectors are state, not part of the function
        with no_grad():
            for _ in range(n):
                self._u.copy_(F.normalize(mat @ self._v, dim=0, eps=self.eps))
                self._v.copy_(F.normalize(mat.T @ self._u, dim=0, eps=self.eps))

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(mat, self.n_power_iterations)
        # clones: the buffers change in place at the next training-mode call, which must not
        # touch the tensors this graph saved
        u, v = self._u.clone(), self._v.clone()
        sigma = (u * (mat @ v)).sum()
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        # any weight is its own preimage up to scale; keep it as given (PyTorch's choice)
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Divide ``module.<name>`` by its spectral norm (largest singular value), estimated with
    power iteration (Miyato et al., GAN discriminators). ``dim`` defaults to 0, or 1 for
    transposed convolutions. Returns ``module``.

    Example::

        >>> d = parametrizations.spectral_norm(nn.Linear(20, 40))
        >>> list(d.state_dict())
        ['bias', 'parametrizations.weight.original', 'parametrizations.weight.0._u', 'parametrizations.weight.0._v']
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{type(module).__name__}' has no parameter or buffer with name "
                         f"'{name}'")
    if dim is None:
        from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    parametrize.register_parametrization(module, name,
                                         _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
