"""Ready-made parametrizations, as in ``torch.nn.utils.parametrizations``: weight_norm and
spectral_norm, registered with :func:`~gradient.nn.utils.parametrize.register_parametrization`.

Example::

    >>> layer = parametrizations.weight_norm(nn.Linear(20, 40))
    >>> list(layer.state_dict())
    ['bias', 'parametrizations.weight.original0', 'parametrizations.weight.original1']

``original0`` is the magnitude ``g`` and ``original1`` the direction ``v``, as in PyTorch.
``orthogonal`` keeps a matrix (or a batch) orthogonal: its columns (rows, when wider than tall)
orthonormal whatever the optimizer does to the unconstrained parameter behind it.
"""

from __future__ import annotations

import numpy as np

from ...autograd.grad_mode import no_grad
from ...dtypes import finfo
from ...ops.creation import eye, randn, tensor, zeros, zeros_like
from ...ops.linalg_decompositions import householder_product, matrix_exp, solve
from ...ops.linalg_decompositions import linalg_qr as qr
from ...ops.shape import cat
from ...tensor import Tensor
from .. import functional as F
from ..module import Module
from . import parametrize
from ...errors import ArgumentValueError, UnsupportedError

__all__ = ["weight_norm", "spectral_norm", "orthogonal"]

_MAPS = ("matrix_exp", "cayley", "householder")


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
            raise ArgumentValueError(
                "spectral_norm: expected n_power_iterations to be positive, got "
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
        raise ArgumentValueError(
            f"Module '{type(module).__name__}' has no parameter or buffer with name "
            f"'{name}'")
    if dim is None:
        from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    parametrize.register_parametrization(module, name,
                                         _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


class _Orthogonal(Module):
    """An unconstrained matrix ``X`` to an orthogonal one: ``matrix_exp`` or ``cayley`` of the
    skew-symmetric ``A = L - L^T`` (``L`` the lower triangle of ``X``, embedded in a square),
    or ``householder``: the product of the reflectors stored below ``X``'s diagonal, each
    column's sign taken from the diagonal. With a ``base`` (the trivialization, the default)
    the result is ``base @ Q``: registering stores the initial weight, made orthogonal, as
    ``base``, and an unconstrained parameter that maps to the identity."""

    def __init__(self, weight: Tensor, orthogonal_map: str, use_trivialization: bool = True):
        super().__init__()
        self.shape, self.orthogonal_map = tuple(weight.shape), orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:
        transposed = X.shape[-2] < X.shape[-1]
        if transposed:
            X = X.mT
        n, k = X.shape[-2], X.shape[-1]
        if self.orthogonal_map == "householder":
            V = X.tril(-1)
            tau = 2.0 / (1.0 + (V * V).sum(-2))
            # the diagonal holds each column's sign, not learned (cast: no gradient)
            Q = householder_product(V, tau) * X.diagonal(dim1=-2, dim2=-1).int().unsqueeze(-2)
        else:
            L = X.tril()
            if n != k:
                L = cat([L, zeros(*L.shape[:-1], n - k, dtype=L.dtype, device=L.device)], -1)
            A = L - L.mT
            if self.orthogonal_map == "matrix_exp":
                Q = matrix_exp(A)
            else:
                identity = eye(n, dtype=A.dtype, device=A.device)
                Q = solve(identity - 0.5 * A, identity + 0.5 * A)
            Q = Q[..., :k]
        if getattr(self, "base", None) is not None:
            Q = self.base @ Q
        return Q.mT if transposed else Q

    @no_grad()
    def right_inverse(self, Q: Tensor) -> Tensor:
        if tuple(Q.shape) != self.shape:
            raise ArgumentValueError(f"orthogonal: expected a matrix of shape {self.shape}, got "
                                     f"{tuple(Q.shape)}")
        given = Q
        if Q.shape[-2] < Q.shape[-1]:
            Q = Q.mT
        n, k = Q.shape[-2], Q.shape[-1]
        if not hasattr(self, "base"):
            if self.orthogonal_map != "householder":
                raise UnsupportedError(
                    "orthogonal: assigning a weight without the trivialization is only "
                    "possible with orthogonal_map='householder' (matrix_exp and cayley cannot "
                    "be inverted in closed form); use use_trivialization=True")
            stored = _householder_reflectors(Q)
            return stored.mT if given.shape[-2] < given.shape[-1] else stored
        if n != k:        # complete the columns to a square, then orthogonalize
            Q = cat([Q, randn(*Q.shape[:-1], n - k, dtype=Q.dtype, device=Q.device)], -1)
        self.base = Q.clone() if n == k and _is_orthogonal(Q) else _orthogonalized(Q)
        # the parameter that maps to the identity in every map: -1 on the diagonal (the
        # householder map reads signs there; the others ignore it)
        identity = zeros_like(given)
        identity.diagonal(dim1=-2, dim2=-1).fill_(-1.0)
        return identity


def _is_orthogonal(Q: Tensor) -> bool:
    n, k = Q.shape[-2], Q.shape[-1]
    eps = 10.0 * n * finfo(Q.dtype).eps
    gram = (Q.mT @ Q).detach().numpy()
    return bool(np.all(np.abs(gram - np.eye(k)) <= eps))


def _orthogonalized(A: Tensor) -> Tensor:
    """The Q of A's QR decomposition, its columns' signs made those of R's diagonal positive."""
    Q, R = qr(A)
    return Q * R.diagonal(dim1=-2, dim2=-1).sign().unsqueeze(-2)


def _householder_reflectors(Q: Tensor) -> Tensor:
    """A tall orthogonal-ish ``Q`` (..., n, k) as the householder map's parameter: its QR
    decomposition's reflectors below the diagonal (LAPACK's geqrf), the signs of R's diagonal
    on it, negated where a column needed no reflection (the map reflects those)."""
    a = Q.detach().cpu().numpy().astype(np.float64, copy=True)
    batch = a.reshape((-1,) + a.shape[-2:])
    for m in batch:
        n, k = m.shape
        for j in range(k):
            alpha, x = m[j, j], m[j + 1:, j].copy()
            norm = np.linalg.norm(x)
            if norm == 0.0:
                m[j, j] = -np.sign(alpha) if alpha != 0 else -1.0   # tau 0: no reflection
                continue
            beta = -np.copysign(np.hypot(alpha, norm), alpha)
            tau = (beta - alpha) / beta
            v = np.concatenate([[1.0], x / (alpha - beta)])
            rest = m[j:, j + 1:]
            rest -= tau * np.outer(v, v @ rest)
            m[j + 1:, j] = v[1:]
            m[j, j] = np.sign(beta)
    return tensor(batch.reshape(a.shape), dtype=Q.dtype, device=Q.device)


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:
    """Keep ``module.<name>`` (a matrix or a batch) orthogonal: orthonormal columns, or rows
    when it is wider than tall. ``orthogonal_map`` is "matrix_exp" (the default for square
    matrices), "cayley" or "householder" (the default otherwise). With
    ``use_trivialization`` (the default) the map's output multiplies a stored orthogonal
    ``base``; assigning ``module.<name> = Q`` resets the base. Returns ``module``.

    Example::

        >>> rnn = parametrizations.orthogonal(nn.Linear(8, 8))
        >>> w = rnn.weight
        >>> (w.T @ w - gradient.eye(8)).abs().max() < 1e-5
        tensor(True)
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ArgumentValueError(
            f"Module '{type(module).__name__}' has no parameter or buffer with name "
            f"'{name}'")
    if weight.ndim < 2:
        raise ArgumentValueError(
            f"orthogonal: expected a matrix or a batch of matrices, got a tensor of "
            f"{weight.ndim} dimensions")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in _MAPS:
        raise ArgumentValueError(f"orthogonal: orthogonal_map must be one of {_MAPS}, got "
                                 f"{orthogonal_map!r}")
    parametrize.register_parametrization(
        module, name, _Orthogonal(weight, orthogonal_map, use_trivialization), unsafe=True)
    return module
