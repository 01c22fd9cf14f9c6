"""Sparse tensors in coordinate (COO) format, as PyTorch's ``torch.sparse_coo`` layout.

A graph's adjacency matrix, a bag of words or any matrix that is mostly zeros is held as the
coordinates of the elements present and their values: ``indices`` int64 (sparse_dim, nnz),
``values`` (nnz, *dense_shape), and the ``shape``. A coordinate may appear more than once (its
values add up); :meth:`SparseCOOTensor.coalesce` sorts the coordinates and sums repeats, as
PyTorch's does. Products with a dense matrix (``gradient.sparse.mm``, ``gradient.spmm``,
``gradient.mm``, ``@``: a graph convolution's ``adj @ x``) cost time and memory in the number of
elements present, not in the dense size.

Everything here is written with gradient's differentiable ops on the two dense tensors
(``index_select`` and ``index_add`` over the coordinates), so gradients flow to the dense
operand and to the values, on every device, twice differentiable. A sparse tensor made with
``requires_grad=True`` is a leaf: its ``grad`` after a backward is a sparse tensor of the same
coordinates, as in PyTorch. Operations a sparse tensor does not take (``relu``, indexing ...)
raise :class:`~gradient.errors.LayoutError`, which says to call ``to_dense()``.

Example::

    >>> adj = gradient.sparse_coo_tensor([[0, 1, 1], [1, 0, 2]], [1.0, 1.0, 0.5], (3, 3))
    >>> x = gradient.randn(3, 4, requires_grad=True)
    >>> y = gradient.sparse.mm(adj, x)          # (3, 4), as adj.to_dense() @ x
    >>> y.sum().backward()                      # x.grad
"""

from __future__ import annotations

import numbers
from math import prod

import numpy as np

from .. import layouts
from ..layouts import is_sparse
from ..dtypes import as_dtype, int64
from ..errors import ArgumentTypeError, DTypeError, IndexRangeError, LayoutError, ShapeError
from ..tensor import Size, Tensor
from .creation import tensor as _tensor, zeros
from .index import index_add, index_select
from .shape import cat, reshape, wrap_dim, wrap_dims

__all__ = ["SparseCOOTensor", "sparse_coo_tensor", "sparse_mm", "sparse_sum", "is_sparse",
           "matmul"]

TENSOR_METHODS = ("to_sparse", "to_sparse_coo", "to_dense", "sparse_dim", "dense_dim",
                  "sparse_mask")


class SparseCOOTensor:
    """A sparse tensor: ``indices`` (sparse_dim, nnz) int64 coordinates of the elements present
    in the first ``sparse_dim`` dimensions, ``values`` (nnz, *dense_shape), and the ``shape``.
    Made by :func:`sparse_coo_tensor` or ``dense.to_sparse()``; see the module docstring."""

    __slots__ = ("_idx", "_vals", "_shape", "_coalesced", "__weakref__")
    is_sparse = True
    is_sparse_csr = False
    layout = layouts.sparse_coo
    __array_priority__ = 1001   # NumPy defers to its reflected operators, as to Tensor's

    def __init__(self, *args, **kwargs):
        raise ArgumentTypeError(
            "make a sparse tensor with gradient.sparse_coo_tensor(indices, values, "
            "size) or dense.to_sparse()")

    @classmethod
    def _make(cls, indices: Tensor, values: Tensor, shape, coalesced: bool) -> "SparseCOOTensor":
        s = object.__new__(cls)
        s._idx, s._vals, s._shape, s._coalesced = indices, values, Size(shape), coalesced
        return s

    # ------------------------------------------------------------------ what it is
    @property
    def shape(self) -> Size:
        return self._shape

    def size(self, dim: int | None = None):
        return self._shape if dim is None else self._shape[wrap_dim(dim, len(self._shape))]

    def dim(self) -> int:
        return len(self._shape)

    ndimension = dim

    @property
    def ndim(self) -> int:
        return len(self._shape)

    def numel(self) -> int:
        return prod(self._shape)

    def __len__(self) -> int:
        if not self._shape:
            raise ArgumentTypeError("len() of a 0-d tensor")
        return self._shape[0]

    @property
    def dtype(self):
        return self._vals.dtype

    @property
    def device(self):
        return self._vals.device

    @property
    def is_cuda(self) -> bool:
        return self._vals.is_cuda

    @property
    def is_cpu(self) -> bool:
        return self._vals.is_cpu

    def sparse_dim(self) -> int:
        return self._idx.shape[0]

    def dense_dim(self) -> int:
        return self._vals.ndim - 1

    def _nnz(self) -> int:
        return self._vals.shape[0]

    def _indices(self) -> Tensor:
        """The coordinates as they are (repeats and order kept), as PyTorch's ``_indices``."""
        return self._idx

    def _values(self) -> Tensor:
        """The values as they are, as PyTorch's ``_values``; differentiable."""
        return self._vals

    def indices(self) -> Tensor:
        """The coordinates (sparse_dim, nnz), int64, of a coalesced tensor."""
        self._need_coalesced("indices")
        return self._idx

    def values(self) -> Tensor:
        """The values (nnz, *dense_shape) of a coalesced tensor; differentiable."""
        self._need_coalesced("values")
        return self._vals

    def is_coalesced(self) -> bool:
        """Whether the coordinates are sorted and none repeats (see :meth:`coalesce`)."""
        return self._coalesced

    def _need_coalesced(self, what: str) -> None:
        if not self._coalesced:
            raise LayoutError(f"{what}(): this sparse tensor is not coalesced (its coordinates "
                              f"may repeat); call .coalesce() first, or ._{what}() for them as "
                              f"they are")

    # ------------------------------------------------------------------ autograd
    @property
    def requires_grad(self) -> bool:
        return self._vals.requires_grad

    def requires_grad_(self, requires_grad: bool = True) -> "SparseCOOTensor":
        self._vals.requires_grad_(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        return self._vals.is_leaf

    @property
    def grad_fn(self):
        return self._vals.grad_fn

    @property
    def grad(self) -> "SparseCOOTensor | None":
        """The gradient of a leaf after a backward: a sparse tensor of the same coordinates."""
        g = self._vals.grad
        if g is None or self._coalesced:
            return None if g is None else SparseCOOTensor._make(self._idx, g, self._shape, True)
        # a repeated coordinate's entries each got the whole derivative at that element: the
        # gradient holds it once (as PyTorch's, coalesced)
        linear = _linear(self._idx, tuple(self._shape[:self.sparse_dim()])).numpy()
        _, first = np.unique(linear, return_index=True)
        at = _tensor(first, dtype=int64, device=g.device)
        return SparseCOOTensor._make(index_select(self._idx, 1, at), index_select(g, 0, at),
                                     self._shape, True)

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            raise LayoutError("a sparse tensor's grad can only be set to None")
        self._vals.grad = None

    def detach(self) -> "SparseCOOTensor":
        return SparseCOOTensor._make(self._idx, self._vals.detach(), self._shape,
                                     self._coalesced)

    def clone(self) -> "SparseCOOTensor":
        return SparseCOOTensor._make(self._idx.clone(), self._vals.clone(), self._shape,
                                     self._coalesced)

    def zero_(self) -> "SparseCOOTensor":
        """No elements left (nnz 0), in place, as PyTorch's (``zero_grad(set_to_none=False)``
        on a sparse gradient)."""
        self._idx = self._idx[:, :0]
        self._vals = self._vals.detach()[:0]
        self._coalesced = True
        return self

    # ------------------------------------------------------------------ conversion
    def to(self, *args, **kwargs) -> "SparseCOOTensor":
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)``, as a dense tensor's (the
        dtype is the values')."""
        values = self._vals.to(*args, **kwargs)
        indices = self._idx if values.device == self._idx.device else \
            self._idx.to(values.device)
        return SparseCOOTensor._make(indices, values, self._shape, self._coalesced)

    def cpu(self) -> "SparseCOOTensor":
        return self.to("cpu")

    def cuda(self, device=None) -> "SparseCOOTensor":
        return self.to("cuda" if device is None else device)

    def float(self) -> "SparseCOOTensor":
        return self.to(as_dtype("float32"))

    def double(self) -> "SparseCOOTensor":
        return self.to(as_dtype("float64"))

    def half(self) -> "SparseCOOTensor":
        return self.to(as_dtype("float16"))

    def type_as(self, other) -> "SparseCOOTensor":
        return self.to(other.dtype)

    def to_dense(self) -> Tensor:
        """The dense tensor (repeated coordinates' values added up); differentiable."""
        sparse_shape = tuple(self._shape[:self.sparse_dim()])
        flat = zeros((prod(sparse_shape),) + tuple(self._vals.shape[1:]), dtype=self.dtype,
                     device=self.device)
        flat = index_add(flat, 0, _linear(self._idx, sparse_shape), self._vals)
        return reshape(flat, tuple(self._shape))

    def to_sparse(self, sparse_dim: int | None = None, layout=None) -> "SparseCOOTensor":
        if sparse_dim not in (None, self.sparse_dim()) or layout not in (None, layouts.sparse_coo):
            raise LayoutError("to_sparse(): a sparse tensor converts to its own layout only")
        return self

    to_sparse_coo = to_sparse

    def coalesce(self) -> "SparseCOOTensor":
        """The same tensor with its coordinates sorted (row-major) and each once, the values of
        repeats added up (differentiable), as PyTorch's ``coalesce``."""
        if self._coalesced:
            return self
        sparse_shape = tuple(self._shape[:self.sparse_dim()])
        linear = _linear(self._idx, sparse_shape).numpy()
        unique, inverse = np.unique(linear, return_inverse=True)
        device = self.device
        values = zeros((len(unique),) + tuple(self._vals.shape[1:]), dtype=self.dtype,
                       device=device)
        values = index_add(values, 0, _tensor(inverse.reshape(-1), dtype=int64, device=device),
                           self._vals)
        coords = np.stack(np.unravel_index(unique, sparse_shape)) if sparse_shape else \
            np.zeros((0, len(unique)), np.int64)
        indices = _tensor(coords.reshape(len(sparse_shape), len(unique)), dtype=int64,
                          device=device)
        return SparseCOOTensor._make(indices, values, self._shape, True)

    # ------------------------------------------------------------------ arithmetic
    def t(self) -> "SparseCOOTensor":
        if self.ndim > 2:
            raise ShapeError(f"t(): expects a tensor with at most 2 dimensions, got {self.ndim}")
        return self.transpose(0, 1) if self.ndim == 2 else self

    def transpose(self, dim0: int, dim1: int) -> "SparseCOOTensor":
        """Two sparse dimensions swapped (their coordinates' rows)."""
        d0, d1 = wrap_dim(dim0, self.ndim), wrap_dim(dim1, self.ndim)
        if max(d0, d1) >= self.sparse_dim():
            raise LayoutError("transpose(): gradient swaps a sparse tensor's sparse dimensions "
                              "only; call .to_dense() first")
        order = list(range(self.sparse_dim()))
        order[d0], order[d1] = order[d1], order[d0]
        shape = list(self._shape)
        shape[d0], shape[d1] = shape[d1], shape[d0]
        indices = index_select(self._idx, 0, _tensor(order, dtype=int64,
                                                          device=self._idx.device))
        return SparseCOOTensor._make(indices, self._vals, shape, d0 == d1 and self._coalesced)

    @property
    def T(self) -> "SparseCOOTensor":   # noqa: N802  (torch's name)
        return self.t()

    def __rmatmul__(self, other: Tensor) -> Tensor:
        return matmul(other, self)

    def mm(self, mat2: Tensor) -> Tensor:
        return sparse_mm(self, mat2)

    def matmul(self, other: Tensor) -> Tensor:
        return sparse_mm(self, other)

    __matmul__ = matmul

    def mul(self, other) -> "SparseCOOTensor":
        """Times a number, a 0-d tensor, or a dense tensor of the same shape (read at the
        coordinates present): a sparse tensor of the same coordinates."""
        if isinstance(other, SparseCOOTensor):
            if other._shape != self._shape:
                raise ShapeError(f"mul: sparse shapes {tuple(self._shape)} and "
                                 f"{tuple(other._shape)} differ")
            return _intersection_product(self.coalesce(), other.coalesce())
        if isinstance(other, Tensor) and other.ndim:
            if tuple(other.shape) != tuple(self._shape):
                raise LayoutError(f"mul: a sparse tensor times a dense one of its own shape "
                                  f"{tuple(self._shape)} or a number, got shape "
                                  f"{tuple(other.shape)}")
            coalesced = self.coalesce()
            at = other[tuple(coalesced._idx[d] for d in range(self.sparse_dim()))]
            return SparseCOOTensor._make(coalesced._idx, coalesced._vals * at,
                                         self._shape, True)
        if not isinstance(other, (numbers.Number, Tensor)):
            return NotImplemented
        return SparseCOOTensor._make(self._idx, self._vals * other, self._shape,
                                     self._coalesced)

    __mul__ = __rmul__ = mul

    def div(self, other) -> "SparseCOOTensor":
        if isinstance(other, SparseCOOTensor) or isinstance(other, Tensor) and other.ndim:
            raise LayoutError("div: a sparse tensor divides by a number or a 0-d tensor")
        return SparseCOOTensor._make(self._idx, self._vals / other, self._shape,
                                     self._coalesced)

    __truediv__ = div

    def __neg__(self) -> "SparseCOOTensor":
        return SparseCOOTensor._make(self._idx, -self._vals, self._shape, self._coalesced)

    def add(self, other, *, alpha=1):
        """Plus a sparse tensor of the same shape (a sparse tensor, not coalesced: the two
        sets of coordinates) or a dense one (a dense tensor)."""
        if isinstance(other, SparseCOOTensor):
            if other._shape != self._shape or other.sparse_dim() != self.sparse_dim():
                raise ShapeError(f"add: sparse shapes {tuple(self._shape)} and "
                                 f"{tuple(other._shape)} (sparse dimensions "
                                 f"{self.sparse_dim()} and {other.sparse_dim()}) differ")
            if other.dtype is not self.dtype:
                raise DTypeError(f"add: sparse tensors of {self.dtype} and {other.dtype}; "
                                 f"convert one with .to(dtype)")
            values = other._vals if alpha == 1 else other._vals * alpha
            return SparseCOOTensor._make(cat([self._idx, other._idx], 1),
                                         cat([self._vals, values], 0), self._shape, False)
        if isinstance(other, Tensor):
            return self.to_dense() + (other if alpha == 1 else other * alpha)
        return NotImplemented

    __add__ = add

    def __radd__(self, other):
        return self.add(other)

    def sub(self, other, *, alpha=1):
        return self.add(other, alpha=-alpha)

    __sub__ = sub

    def sum(self, dim=None, keepdim: bool = False, dtype=None):
        """The sum of every element (a 0-d dense tensor), or over ``dim`` as
        :func:`gradient.sparse.sum` (here dense, as a dense tensor's ``sum(dim)`` is)."""
        if keepdim:
            return self.to_dense().sum(dim, keepdim=True, dtype=dtype)
        out = sparse_sum(self, dim, dtype=dtype)
        return out.to_dense() if isinstance(out, SparseCOOTensor) else out

    # ------------------------------------------------------------------ the rest
    def __repr__(self) -> str:
        return (f"tensor(indices={self._idx!r},\n       values={self._vals!r},\n"
                f"       size={tuple(self._shape)}, nnz={self._nnz()}, "
                f"layout=gradient.sparse_coo)")

    def __array__(self, *args, **kwargs):
        raise LayoutError("a sparse tensor has no dense array; call .to_dense() first")

    def __getitem__(self, index):
        raise LayoutError("indexing a sparse tensor is not supported; index .to_dense(), or "
                          "its ._indices() and ._values()")

    def __getattr__(self, name):
        if name.startswith("_") and hasattr(Tensor, name):   # a dense op reached inside
            raise LayoutError("a sparse tensor was given to an operation on dense tensors; "
                              "call .to_dense() first (gradient's sparse tensors take mm/@, "
                              "mul, add, sum, t, coalesce, to, to_dense)")
        if hasattr(Tensor, name):
            raise AttributeError(f"{name}: not supported for a sparse COO tensor; call "
                                 f".to_dense() first (gradient's sparse tensors take mm/@, "
                                 f"mul, add, sum, t, coalesce, to, to_dense)")
        raise AttributeError(f"'SparseCOOTensor' object has no attribute {name!r}")

    def __reduce__(self):
        return (_rebuild, (self._idx, self._vals, tuple(self._shape), self._coalesced))


def _rebuild(indices, values, shape, coalesced):
    return SparseCOOTensor._make(indices, values, shape, coalesced)


def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None, pin_memory=False,
                      requires_grad: bool = False, check_invariants=None,
                      is_coalesced=None) -> SparseCOOTensor:
    """A sparse COO tensor of the elements at ``indices`` (sparse_dim, nnz; integers) with
    ``values`` (nnz, *dense_shape), as ``torch.sparse_coo_tensor``. ``size`` defaults to the
    smallest that holds every coordinate. A coordinate may repeat (its values add up); one
    outside ``size`` is an error. With ``requires_grad=True`` the tensor is a leaf whose
    ``grad`` a backward fills; values that require grad themselves keep their graph.

    Example: ``gradient.sparse_coo_tensor([[0, 2], [1, 0]], [3.0, 4.0], (3, 2)).to_dense()``
    """
    values = values if isinstance(values, Tensor) else _tensor(values, dtype=dtype, device=device)
    if dtype is not None and values.dtype is not as_dtype(dtype):
        values = values.to(as_dtype(dtype))
    if device is not None:
        values = values.to(device)
    if isinstance(indices, Tensor):
        if indices.dtype.is_floating_point or indices.dtype.is_complex:
            raise DTypeError(f"sparse_coo_tensor: indices must be integers, got {indices.dtype}")
        indices = indices.detach().to(values.device, int64)
    else:
        array = np.asarray(indices)
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise DTypeError(f"sparse_coo_tensor: indices must be integers, got {array.dtype}")
        indices = _tensor(array.astype(np.int64), dtype=int64, device=values.device)
    if indices.ndim == 1 and indices.shape[0] == 0:
        indices = reshape(indices, (1, 0))
    if indices.ndim != 2:
        raise ShapeError(f"sparse_coo_tensor: indices must be 2-d (sparse_dim, nnz), got shape "
                         f"{tuple(indices.shape)}")
    if values.ndim == 0:
        raise ShapeError("sparse_coo_tensor: values must be at least 1-d (nnz, *dense_shape), "
                         "got a 0-d tensor")
    sparse_dim, nnz = indices.shape
    if values.shape[0] != nnz:
        raise ShapeError(f"sparse_coo_tensor: {nnz} coordinates (indices' shape "
                         f"{tuple(indices.shape)}) but {values.shape[0]} values (values' shape "
                         f"{tuple(values.shape)})")
    coords = indices.numpy()
    if nnz and coords.min() < 0:
        raise IndexRangeError("sparse_coo_tensor: indices must not be negative, found "
                              f"{int(coords.min())}")
    dense_shape = tuple(values.shape[1:])
    if size is None:
        shape = tuple(int(n) for n in (coords.max(axis=1) + 1 if nnz else
                                       np.zeros(sparse_dim, np.int64))) + dense_shape
    else:
        shape = tuple(int(n) for n in size)
        if len(shape) != sparse_dim + len(dense_shape) or shape[sparse_dim:] != dense_shape:
            raise ShapeError(f"sparse_coo_tensor: size {shape} does not fit {sparse_dim} sparse "
                             f"dimensions (indices' shape {tuple(indices.shape)}) followed by "
                             f"the values' dense shape {dense_shape}")
        if nnz:
            top = coords.max(axis=1)
            for d in range(sparse_dim):
                if top[d] >= shape[d]:
                    raise IndexRangeError(
                        f"sparse_coo_tensor: index {int(top[d])} in dimension {d} "
                        f"is out of bounds for size {shape}")
    if requires_grad:
        values = values.detach().requires_grad_()
    coalesced = nnz <= 1 if is_coalesced is None else bool(is_coalesced)
    return SparseCOOTensor._make(indices, values, shape, coalesced)


def to_sparse(input: Tensor, sparse_dim: int | None = None, *, layout=None) -> SparseCOOTensor:
    """The sparse COO form of a dense tensor: its nonzero elements (differentiable), coalesced.
    With ``sparse_dim`` (fewer than its dimensions), the positions in the first ``sparse_dim``
    dimensions where any element of the rest is nonzero, each with that dense slice.

    Example: ``gradient.tensor([[0.0, 2.0], [3.0, 0.0]]).to_sparse()._nnz() == 2``
    """
    if layout not in (None, layouts.sparse_coo):
        raise LayoutError(f"to_sparse: gradient makes the sparse_coo layout only, not {layout}")
    k = input.ndim if sparse_dim is None else int(sparse_dim)
    if not 0 < k <= input.ndim:
        raise ShapeError(f"to_sparse: sparse_dim must be 1 .. {input.ndim}, got {sparse_dim}")
    present = input.detach().numpy() != 0
    if k < input.ndim:   # (sizes spelled out: -1 cannot be inferred where there are no values)
        present = present.reshape(present.shape[:k] + (prod(present.shape[k:]),)).any(
            axis=-1)
    coords = np.stack(np.nonzero(present)).reshape(k, -1).astype(np.int64)
    indices = _tensor(coords, dtype=int64, device=input.device)
    values = input[tuple(indices[d] for d in range(k))] if coords.shape[1] else \
        reshape(input.detach(), (prod(input.shape[:k]),) + tuple(input.shape[k:]))[:0]
    return SparseCOOTensor._make(indices, values, tuple(input.shape), True)


to_sparse_coo = to_sparse


def sparse_mm(sparse: SparseCOOTensor, dense: Tensor) -> Tensor:
    """``sparse`` (n, k; 2 sparse dimensions) times ``dense`` (k, m) or (k,): a dense tensor,
    each product of an element present with a row of ``dense`` added into its row of the
    result. Differentiable in both (the sparse one through its values)."""
    if not isinstance(sparse, SparseCOOTensor):
        raise LayoutError("sparse.mm: the first argument must be a sparse tensor")
    if isinstance(dense, SparseCOOTensor):
        raise LayoutError("sparse.mm: the product of two sparse tensors is not supported; "
                          "make the second one dense with .to_dense()")
    if not isinstance(dense, Tensor):
        raise ArgumentTypeError(f"sparse.mm: expected a dense Tensor, got {type(dense).__name__}")
    if sparse.ndim != 2 or sparse.sparse_dim() != 2:
        raise ShapeError(f"sparse.mm: expected a 2-d sparse matrix, got shape "
                         f"{tuple(sparse.shape)} with {sparse.sparse_dim()} sparse dimensions")
    if dense.ndim not in (1, 2):
        raise ShapeError(f"sparse.mm: expected a 1-d or 2-d dense tensor, got shape "
                         f"{tuple(dense.shape)}")
    n, k = sparse.shape
    if dense.shape[0] != k:
        raise ShapeError(f"sparse.mm: shapes {tuple(sparse.shape)} and {tuple(dense.shape)} do "
                         f"not align: {k} != {dense.shape[0]}")
    if dense.dtype is not sparse.dtype:
        raise DTypeError(f"sparse.mm: a {sparse.dtype} sparse tensor and a {dense.dtype} dense "
                         f"one; convert one with .to(dtype)")
    indices, values = sparse._idx, sparse._vals
    rows, cols = indices[0], indices[1]
    picked = index_select(dense, 0, cols)
    products = picked * (values if dense.ndim == 1 else reshape(values, (-1, 1)))
    out = zeros((n,) + tuple(dense.shape[1:]), dtype=dense.dtype, device=dense.device)
    return index_add(out, 0, rows, products)


def matmul(input, other) -> Tensor:
    """A product with a sparse operand (``gradient.mm``, ``matmul`` and ``@`` come here): sparse
    times dense, or dense (a matrix or a vector) times sparse, as ``(other.T @ input.T).T``."""
    if is_sparse(input):
        return sparse_mm(input, other)
    if is_sparse(input) == is_sparse(other) or not isinstance(input, Tensor):
        raise LayoutError("matmul: a sparse tensor times a dense one, or a dense one times a "
                          "sparse one; make one of them dense with .to_dense()")
    if input.ndim not in (1, 2):
        raise ShapeError(f"matmul: a dense operand of a sparse product must be 1-d or 2-d, got "
                         f"shape {tuple(input.shape)}")
    product = sparse_mm(other.t(), input.t() if input.ndim == 2 else input)
    return product.t() if input.ndim == 2 else product


def sparse_sum(input: SparseCOOTensor, dim=None, dtype=None):
    """``torch.sparse.sum``: over every dimension (a 0-d dense tensor), or over ``dim`` (an
    int or a tuple): a sparse tensor of the other dimensions, or a dense one where every
    sparse dimension is summed."""
    values = input._vals
    if dtype is not None:
        values = values.to(as_dtype(dtype))
    if dim is None:
        return values.sum()
    dims = wrap_dims(dim, input.ndim)
    k = input.sparse_dim()
    dense_dims = tuple(1 + d - k for d in dims if d >= k)
    if dense_dims:
        values = values.sum(dense_dims)
    sparse_dims = [d for d in dims if d < k]
    kept = [d for d in range(k) if d not in sparse_dims]
    shape = [input.shape[d] for d in range(input.ndim) if d not in dims]
    if not kept:
        return values.sum(0)
    indices = index_select(input._idx, 0,
                           _tensor(kept, dtype=int64, device=values.device))
    return SparseCOOTensor._make(indices, values, shape, False).coalesce()


def _intersection_product(a: SparseCOOTensor, b: SparseCOOTensor) -> SparseCOOTensor:
    """The elementwise product of two coalesced sparse tensors: the coordinates both hold."""
    shape = tuple(a.shape[:a.sparse_dim()])
    la = _linear(a._idx, shape).numpy()
    lb = _linear(b._idx, shape).numpy()
    common, at_a, at_b = np.intersect1d(la, lb, assume_unique=True, return_indices=True)
    device = a.device
    va = index_select(a._vals, 0, _tensor(at_a, dtype=int64, device=device))
    vb = index_select(b._vals, 0, _tensor(at_b, dtype=int64, device=device))
    indices = index_select(a._idx, 1, _tensor(at_a, dtype=int64, device=device))
    return SparseCOOTensor._make(indices, va * vb, a.shape, True)


# ---------------------------------------------------------------------- a dense tensor's answers
def to_dense(input: Tensor, dtype=None, *, masked_grad=None) -> Tensor:
    """A dense tensor is its own dense form (code that takes either layout calls it), in
    ``dtype`` if given."""
    return input if dtype is None else input.to(dtype)


def sparse_dim(input: Tensor) -> int:
    """A dense tensor has no sparse dimensions: 0, as PyTorch answers."""
    return 0


def dense_dim(input: Tensor) -> int:
    """A dense tensor's dimensions are all dense: its ``ndim``, as PyTorch answers."""
    return input.ndim


def sparse_mask(input: Tensor, mask: SparseCOOTensor) -> SparseCOOTensor:
    """The elements of ``input`` at ``mask``'s coordinates, as a sparse tensor of them (the
    mask's values are not used), as ``torch.Tensor.sparse_mask``; differentiable in ``input``.

    Example: ``dense.sparse_mask(grad)`` reads a dense state at the rows a sparse gradient holds.
    """
    if not isinstance(mask, SparseCOOTensor):
        raise LayoutError(f"sparse_mask: the mask must be a sparse COO tensor, got "
                          f"{type(mask).__name__}")
    if tuple(mask.shape) != tuple(input.shape):
        raise ShapeError(f"sparse_mask: the mask's shape {tuple(mask.shape)} differs from the "
                         f"tensor's {tuple(input.shape)}")
    mask = mask.coalesce()
    sparse_shape = tuple(input.shape[:mask.sparse_dim()])
    rows = reshape(input, (prod(sparse_shape),) + tuple(input.shape[len(sparse_shape):]))
    values = index_select(rows, 0, _linear(mask._idx, sparse_shape))
    return SparseCOOTensor._make(mask._idx, values, input.shape, True)


def _linear(indices: Tensor, sparse_shape: tuple) -> Tensor:
    """Each coordinate's row-major position among the sparse dimensions (nnz,) int64."""
    strides = np.cumprod((1,) + tuple(sparse_shape[:0:-1]))[::-1].copy()
    weights = _tensor(strides.reshape(-1, 1), dtype=int64, device=indices.device)
    return (indices * weights).sum(0) if len(sparse_shape) else \
        zeros(indices.shape[1], dtype=int64, device=indices.device)
